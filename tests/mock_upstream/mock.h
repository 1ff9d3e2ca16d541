/*
 * mock.h: private header of the mock upstream server, the independent peer that airouter's
 * end-to-end tests and benchmarks talk to. It declares the server, worker, connection and
 * request structs and the functions the files of tests/mock_upstream/ share: util.c (buffers,
 * JSON text), server.c (libuv + llhttp I/O), response.c (response framing and pacing),
 * request.c (route table, auth, directives), control.c (/_mock/ endpoints, shared state) and
 * one file per wire format (openai.c, responses.c, azure.c, gemini.c, anthropic.c). It must
 * never include anything from src/.
 */
#ifndef MOCK_H
#define MOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "llhttp.h"

/* ---- limits ---- */

#define MOCK_HEAD_MAX_BYTES (64 * 1024)  /* request line + headers; above -> 431 */
#define MOCK_HEADERS_MAX 128             /* header lines per request; above -> 431 */
#define MOCK_BODY_MAX_BYTES (128u << 20) /* request body; above -> 413 */
#define MOCK_OUT_MAX_BYTES (512u << 20)  /* one response */
#define MOCK_IN_MAX_BYTES (1u << 20)     /* unparsed pipelined input before reads pause */
#define MOCK_KEEP_BYTES (256 * 1024)     /* per-connection buffers shrink back above this */
#define MOCK_RESP_HEAD_BYTES 512         /* room reserved in front of a body for its head */
#define MOCK_RECORDS_MAX 1000            /* GET /_mock/requests keeps the last N */
#define MOCK_ROUTES_MAX 64               /* size of the per-route stats arrays */
#define MOCK_STATUS_MAX 600              /* statuses 0..599 are counted */
#define MOCK_CHUNKS_MAX 100000           /* cap of the chunks directive */
#define MOCK_EMBED_DIMS_MAX 4096

/* ---- spans and buffers ---- */

/** A byte range that is not NUL-terminated; ptr == NULL means "absent". */
typedef struct mock_span {
    const char *ptr;
    size_t len;
} mock_span_t;

#define MOCK_LIT(s) ((mock_span_t){(s), sizeof(s) - 1})

/**
 * A growable buffer with a hard cap. Errors are sticky: once an append fails (cap reached or
 * out of memory) `failed` is set and every later append is a no-op, so builders check once at
 * the end. A buffer made with mock_buf_init_fixed() never grows and never frees its storage.
 */
typedef struct mock_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    unsigned failed : 1;
    unsigned fixed : 1;
} mock_buf_t;

void mock_buf_init(mock_buf_t *b, size_t max);
void mock_buf_init_fixed(mock_buf_t *b, char *storage, size_t size);
void mock_buf_dispose(mock_buf_t *b);
/** Empties the buffer and clears the error; frees the storage when it grew above keep bytes. */
void mock_buf_reset(mock_buf_t *b, size_t keep);
/** Makes room for n more bytes. @return 0, or -1 (and sets failed). */
int mock_buf_reserve(mock_buf_t *b, size_t n);
void mock_buf_add(mock_buf_t *b, const void *p, size_t n);
void mock_buf_adds(mock_buf_t *b, const char *s);
void mock_buf_addc(mock_buf_t *b, char c);
void mock_buf_add_span(mock_buf_t *b, mock_span_t s);
void mock_buf_add_u64(mock_buf_t *b, uint64_t v);
void mock_buf_add_i64(mock_buf_t *b, int64_t v);
/** Appends s as a JSON string literal, quotes included. */
void mock_buf_add_jstr(mock_buf_t *b, mock_span_t s);
/** Appends the inside of a JSON string literal (no quotes). */
void mock_buf_add_jesc(mock_buf_t *b, mock_span_t s);
static inline mock_span_t mock_buf_span(const mock_buf_t *b)
{
    return (mock_span_t){b->data, b->len};
}

/* ---- small text helpers (util.c) ---- */

int mock_span_eq(mock_span_t a, const char *lit);
int mock_span_caseeq(mock_span_t a, const char *lit);
/** Whether needle occurs anywhere in hay. */
int mock_span_contains(mock_span_t hay, const char *needle);
/** Parses a decimal integer; @return 0, or -1 when s is not entirely digits (sign allowed). */
int mock_span_to_i64(mock_span_t s, int64_t *out);
/** Parses "150ms", "2s", "1.5s", "1m" or a bare number of milliseconds. @return 0 or -1. */
int mock_parse_duration_ms(mock_span_t s, int64_t *out_ms);
/** Counts UTF-8 characters (bytes that are not continuation bytes). */
size_t mock_utf8_chars(mock_span_t s);
/** ceil(chars / 4), at least 1: the mock's token estimate. */
uint64_t mock_tokens_of_chars(uint64_t chars);
/** Number of whitespace-separated words. */
uint64_t mock_count_words(mock_span_t s);
/** The string value of key in obj, or an absent span. */
mock_span_t mock_json_str(const json_t *obj, const char *key);
/** A JSON string's bytes as a span. */
mock_span_t mock_json_span(const json_t *str);
/** Wall-clock milliseconds since the epoch. */
int64_t mock_now_ms(void);

/**
 * Splits text into stream pieces: words with their trailing whitespace (n <= 0; leading
 * whitespace goes with the first word), or n pieces of about equal character counts, never
 * more pieces than characters and never splitting a UTF-8 sequence.
 */
typedef struct mock_pieces {
    mock_span_t s;
    size_t pos;
    int n;      /* 0: by words */
    size_t cnt; /* pieces in chunk mode */
    size_t chars;
    size_t idx;
    size_t char_pos;
} mock_pieces_t;

void mock_pieces_init(mock_pieces_t *p, mock_span_t s, int n);
/** Stores the next piece in *out. @return 1, or 0 when the text is used up. */
int mock_pieces_next(mock_pieces_t *p, mock_span_t *out);
/** How many pieces mock_pieces_next() gives for s. */
size_t mock_pieces_count(mock_span_t s, int n);

/* ---- directives (request.c) ---- */

typedef enum mock_reset {
    MOCK_RESET_NONE = 0,
    MOCK_RESET_BEFORE_HEADERS,
    MOCK_RESET_AFTER_HEADERS,
    MOCK_RESET_MID_STREAM
} mock_reset_t;

/** One request's fault and timing settings. -1 (or a NULL span) means "not set". */
typedef struct mock_dirs {
    int status;
    int retry_after_s;
    int64_t latency_ms;
    int64_t chunk_delay_ms;
    int chunks;
    int reset; /* mock_reset_t; MOCK_RESET_NONE when not set */
    int malformed;
    int hang;
    int usage;
    int prompt_filter; /* streams open with Azure's prompt-filter chunk (empty choices) */
    mock_span_t content;
    mock_span_t body;   /* answer exactly this body (status: `status` below 400, or 200) */
    mock_span_t header; /* one extra response header line, "Name: value", sent as given */
} mock_dirs_t;

/* ---- server, workers, connections ---- */

typedef struct mock_server mock_server_t;
typedef struct mock_worker mock_worker_t;
typedef struct mock_conn mock_conn_t;
typedef struct mock_req mock_req_t;

/** Command-line options; read-only once the workers run. */
typedef struct mock_opts {
    const char *host;
    int port;
    int threads;
    const char *port_file;
    char **models; /* model ids listed by GET /v1/models */
    size_t models_cnt;
    char **keys; /* --require-key values; none -> any key accepted */
    size_t keys_cnt;
    int record;
    const char *oauth_public_key; /* --oauth-public-key: PEM key that verifies JWT grants */
    int64_t oauth_expires_in;     /* --oauth-expires-in: seconds; 0 = 3600 */
} mock_opts_t;

/**
 * Counters of one worker. Only that worker's thread writes them (plain load + store, no lock
 * prefix), any thread may read them, so the hot path never takes a lock or a contended atomic.
 */
typedef struct mock_stats {
    _Atomic uint64_t requests;
    _Atomic int64_t open_conns;
    _Atomic uint64_t by_route[MOCK_ROUTES_MAX + 1]; /* last slot: unknown paths */
    _Atomic uint64_t by_status[MOCK_STATUS_MAX];
} mock_stats_t;

static inline void mock_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/** A directive queue of POST /_mock/queue, matched by key (NULL key matches any request). */
typedef struct mock_queue {
    char *key;
    json_t *items; /* array of directive objects, consumed from the front */
} mock_queue_t;

/** State shared by all workers (control.c). Touched only by control requests, by recording
 * when it is on, and by requests while `queued` is non-zero. */
typedef struct mock_shared {
    pthread_mutex_t lock;
    atomic_int queued; /* directive sets waiting in all queues */
    mock_queue_t *queues;
    size_t queues_cnt;
    json_t *records[MOCK_RECORDS_MAX]; /* ring */
    size_t records_start;
    size_t records_cnt;
    uint64_t base_requests; /* stats baseline set by DELETE /_mock/stats */
    uint64_t base_by_route[MOCK_ROUTES_MAX + 1];
    uint64_t base_by_status[MOCK_STATUS_MAX];
} mock_shared_t;

struct mock_worker {
    mock_server_t *srv;
    int index;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    uv_signal_t sigterm; /* worker 0 only */
    uv_signal_t sigint;
    uv_thread_t thread;
    mock_conn_t *conns; /* intrusive list of open connections */
    int stopping;
    mock_stats_t stats;
};

struct mock_server {
    mock_opts_t opts;
    mock_shared_t shared;
    mock_worker_t *workers;
    int workers_cnt;
    int port; /* the bound port */
    atomic_int stopping;
    atomic_uint_fast64_t next_id;
    char *models_body; /* GET /v1/models answer, built once */
    size_t models_body_len;
};

/* ---- routes and wire formats ---- */

/** The hooks of one wire format (OpenAI today; Azure, Anthropic, Gemini, Vertex later). */
typedef struct mock_api {
    const char *name;
    /** Lower-case header carrying the client key, and the prefix before the key in it. */
    const char *auth_header;
    const char *auth_prefix;
    /**
     * Builds a complete error response of this format. type and code may be NULL: the
     * format's default for the status is used then. message is borrowed.
     */
    void (*error)(mock_req_t *req, int status, const char *type, const char *code,
                  const char *message);
} mock_api_t;

enum {
    MOCK_ROUTE_CONTROL = 1u << 0, /* /_mock/: no auth, directives, stats or recording */
    MOCK_ROUTE_JSON = 1u << 1     /* the body must be a JSON object (else 400) */
};

typedef struct mock_route {
    const char *method;
    const char *pattern; /* '*' matches a run of characters other than '/' */
    const mock_api_t *api;
    unsigned flags;
    /**
     * Optional. Validates req->json and returns, in *text, the string in which a
     * "[mock ...]" directive bracket is looked for (the last user message, prompt, first
     * input). The span may point into req->json or into conn->scratch.
     * @return 0, or -1 after having built an error response.
     */
    int (*prepare)(mock_req_t *req, mock_span_t *text);
    /** Builds the response. req->text holds the prepared text without the bracket. */
    void (*respond)(mock_req_t *req);
} mock_route_t;

extern const mock_route_t mock_routes[];
extern const size_t mock_routes_cnt;
extern const mock_api_t mock_openai_api;
extern const mock_api_t mock_gemini_api;
extern const mock_api_t mock_vertex_api;
extern const mock_api_t mock_oauth_api;
extern const mock_api_t mock_anthropic_api;
extern const mock_api_t mock_azure_api;

/* ---- requests ---- */

typedef struct mock_header {
    uint32_t name_off, name_len; /* into conn->head; names are lower-cased */
    uint32_t value_off, value_len;
} mock_header_t;

struct mock_req {
    mock_conn_t *conn;
    mock_worker_t *worker;
    mock_server_t *srv;
    const mock_route_t *route;
    int route_slot;
    const mock_api_t *api;
    mock_span_t method;
    mock_span_t path;
    mock_span_t query;
    mock_span_t body;
    json_t *json;       /* parsed body (owned), or NULL */
    json_t *queue_item; /* directive object popped from a queue (owned), or NULL */
    mock_span_t token;  /* client key found with the route's auth scheme */
    mock_span_t text;   /* prepared text, bracket removed (in conn->text) */
    mock_dirs_t dirs;
    uint64_t id;
    int status; /* status of the built response */
    int http_minor;
    unsigned keep_alive : 1;
    unsigned counted : 1; /* counts in stats / records (not a control request) */
};

struct mock_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_write_t creq; /* 100 Continue */
    uv_shutdown_t sreq;
    llhttp_t parser;
    mock_worker_t *worker;
    mock_conn_t *prev, *next;
    int handles; /* handles still to close before free */

    /* input: bytes read but not yet parsed are in[in_off, in_len) */
    char *in;
    size_t in_off, in_len, in_cap;

    /* the request being parsed or answered */
    mock_buf_t head; /* URL, then header names and values */
    uint32_t url_len;
    mock_header_t headers[MOCK_HEADERS_MAX];
    int headers_cnt;
    int header_state; /* 0 none, 1 in name, 2 in value */
    mock_buf_t body;
    int err_status; /* set by a parser callback before failing */
    mock_req_t req;

    /* the response: out[bounds[0], bounds[n-1]) split at event boundaries */
    mock_buf_t out;
    size_t *bounds;
    size_t bounds_cnt, bounds_cap;
    size_t mid;         /* cut point for reset=mid_stream */
    size_t send_pos;    /* next byte to send */
    size_t send_target; /* end of the write in progress */
    size_t ev_start;    /* start of the event being built */
    size_t cut;         /* where a reset stops the response; SIZE_MAX when none */
    int step;           /* events sent so far (paced streams) */
    int64_t pace_ms;    /* delay between events, 0 = all at once */
    int is_stream;

    mock_buf_t text;    /* req->text */
    mock_buf_t scratch; /* scratch space of prepare() and respond() */
    mock_buf_t aux;     /* more scratch for builders */

    unsigned busy : 1;    /* a request is being answered; parsing waits */
    unsigned closing : 1; /* uv_close was called */
    unsigned processing : 1;
    unsigned writing : 1;
    unsigned eof : 1;          /* the client half-closed */
    unsigned read_paused : 1;  /* input buffer full while busy */
    unsigned hanging : 1;      /* hang=1: never answer */
    unsigned head_counted : 1; /* the status went into the stats */
    unsigned discard : 1;      /* after bad input: drain and close */
    unsigned cont_pending : 1; /* a 100 Continue write is queued */
    unsigned chunked : 1;      /* the stream uses chunked framing */
    unsigned fallback : 1;     /* building the 500 that replaces an oversized response */
};

/* ---- server.c ---- */

/** Creates the listening sockets of all workers (SO_REUSEPORT). @return 0 or -1 (stderr). */
int mock_server_listen(mock_server_t *srv);
/** Runs worker w's loop until it is stopped; closes its handles. */
void mock_worker_run(mock_worker_t *w);
/** Asks every worker to close its handles and leave its loop (any thread). */
void mock_server_stop(mock_server_t *srv);
/** Called by the response code when the current response has been fully written. */
void mock_conn_response_done(mock_conn_t *c);
/** Closes the connection abruptly with a TCP RST. */
void mock_conn_reset(mock_conn_t *c);
/** Writes out[from, to) and calls mock_resp_sent() once it is all in the kernel. */
void mock_conn_write(mock_conn_t *c, size_t from, size_t to);
/** The value of a request header (name lower-case), or an absent span. */
mock_span_t mock_req_header(const mock_req_t *req, const char *name);
/** The i-th header's name and value. */
void mock_req_header_at(const mock_req_t *req, int i, mock_span_t *name, mock_span_t *value);

/* ---- response.c ---- */

/** Starts a fixed-length response; returns the buffer to append the body to. */
mock_buf_t *mock_resp_begin(mock_req_t *req);
/** Ends a fixed-length response: writes the head in front of the body. */
void mock_resp_finish(mock_req_t *req, int status, const char *content_type);
/** Writes a complete response whose body is the given bytes. */
void mock_resp_simple(mock_req_t *req, int status, const char *content_type, mock_span_t body);
/** Writes a complete JSON response from a jansson value (borrowed). */
void mock_resp_json(mock_req_t *req, int status, const json_t *body);
/** Starts a streamed (chunked) response. */
void mock_resp_stream_begin(mock_req_t *req, int status, const char *content_type);
/** Starts one stream event; returns the buffer to append its bytes to. */
mock_buf_t *mock_resp_event_begin(mock_req_t *req);
/** Ends the event begun last (frames it as one HTTP chunk). */
void mock_resp_event_end(mock_req_t *req);
/** Marks the current end of the stream as the point where reset=mid_stream cuts. */
void mock_resp_mark_mid(mock_req_t *req);
/** Ends the stream (the terminating chunk goes with the last event). */
void mock_resp_stream_finish(mock_req_t *req);
/** Sends the built response, applying latency, chunk_delay, reset and hang. */
void mock_resp_start(mock_req_t *req);
/** Write completion (from mock_conn_write). */
void mock_resp_sent(mock_conn_t *c);

/* ---- request.c ---- */

/** Handles the request parsed into c (called with c->busy set). */
void mock_request_handle(mock_conn_t *c);
/** Releases what the finished request holds. */
void mock_request_release(mock_req_t *req);
/** Answers an error in the request's wire format. */
void mock_request_error(mock_req_t *req, int status, const char *type, const char *code,
                        const char *message);
/** Applies a "name=value" directive from the given source. @return 0, or -1 if unknown. */
int mock_dirs_set(mock_dirs_t *d, mock_span_t name, mock_span_t value, int from_bracket);
/** Next response id (chatcmpl-mock-N). */
uint64_t mock_next_id(mock_server_t *srv);

/* ---- control.c ---- */

int mock_shared_init(mock_shared_t *sh);
void mock_shared_dispose(mock_shared_t *sh);
/** Pops the next directive set for the key (NULL/absent = any queue). @return owned or NULL. */
json_t *mock_queue_pop(mock_server_t *srv, mock_span_t token);
/** Adds a request record; rec is taken. */
void mock_record_add(mock_server_t *srv, json_t *rec);
void mock_control_queue_post(mock_req_t *req);
void mock_control_queue_get(mock_req_t *req);
void mock_control_queue_delete(mock_req_t *req);
void mock_control_requests_get(mock_req_t *req);
void mock_control_requests_delete(mock_req_t *req);
void mock_control_stats_get(mock_req_t *req);
void mock_control_stats_delete(mock_req_t *req);
void mock_control_reset(mock_req_t *req);
void mock_control_health(mock_req_t *req);

/* ---- openai.c ---- */

/** Builds the GET /v1/models body from opts.models. @return 0 or -1. */
int mock_openai_models_init(mock_server_t *srv);
int mock_openai_chat_prepare(mock_req_t *req, mock_span_t *text);
void mock_openai_chat(mock_req_t *req);
int mock_openai_completions_prepare(mock_req_t *req, mock_span_t *text);
void mock_openai_completions(mock_req_t *req);
int mock_openai_embeddings_prepare(mock_req_t *req, mock_span_t *text);
void mock_openai_embeddings(mock_req_t *req);
void mock_openai_models(mock_req_t *req);
void mock_openai_model_get(mock_req_t *req);

/* ---- responses.c ---- */

/* POST /v1/responses: model and input required; the echo as a message (or function_call)
 * output item, plain or as the Responses API's semantic SSE events. */
int mock_responses_prepare(mock_req_t *req, mock_span_t *text);
void mock_responses_create(mock_req_t *req);

/* ---- azure.c ---- */

/* /openai/deployments/{d}/...: api-version required, the deployment becomes the model, then
 * openai.c's prepare. The v1 routes (/openai/v1/...) use openai.c's hooks as they are. */
int mock_azure_chat_prepare(mock_req_t *req, mock_span_t *text);
int mock_azure_completions_prepare(mock_req_t *req, mock_span_t *text);
int mock_azure_embeddings_prepare(mock_req_t *req, mock_span_t *text);

/* ---- anthropic.c ---- */

/* POST /v1/messages: anthropic-version required, Anthropic's request checks, then the echo. */
int mock_anthropic_prepare(mock_req_t *req, mock_span_t *text);
void mock_anthropic_messages(mock_req_t *req);

/* ---- gemini.c: Gemini API, Vertex AI, OAuth token endpoint ---- */

/** Loads --oauth-public-key (if given). @return 0, or -1 after printing the problem. */
int mock_oauth_init(mock_server_t *srv);
void mock_oauth_dispose(void);
/* /v1beta/models/{m}:generateContent|:streamGenerateContent (x-goog-api-key or ?key=) */
int mock_gemini_prepare(mock_req_t *req, mock_span_t *text);
void mock_gemini_generate(mock_req_t *req);
void mock_gemini_stream(mock_req_t *req); /* SSE with ?alt=sse, else a JSON array */
int mock_gemini_embed_prepare(mock_req_t *req, mock_span_t *text);
void mock_gemini_embed(mock_req_t *req);
int mock_gemini_batch_embed_prepare(mock_req_t *req, mock_span_t *text);
void mock_gemini_batch_embed(mock_req_t *req);
/* /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:... (Bearer token from
 * POST /token, or x-goog-api-key) */
int mock_vertex_prepare(mock_req_t *req, mock_span_t *text);
int mock_vertex_predict_prepare(mock_req_t *req, mock_span_t *text);
void mock_vertex_predict(mock_req_t *req);
/* POST /token: grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT */
void mock_oauth_token(mock_req_t *req);

#endif
