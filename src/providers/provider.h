/*
 * provider.h: the one interface every upstream type implements (openai, azure,
 * anthropic, gemini, vertex-ai, proxy, mock). The router speaks OpenAI chat internally;
 * a provider turns an OpenAI-shaped call into its wire request (URL, auth, body) and
 * turns its answers (whole bodies, SSE events, error bodies) back into OpenAI form,
 * recording usage on the call as it goes. Providers do no I/O and never see libuv or
 * curl (nginx's create_request / process_header split), so fixtures can test them.
 *
 * Callers use the inline wrappers below, never p->ops directly; hooks a provider leaves
 * NULL get the defaults of provider.c at registration.
 */
#ifndef AR_PROVIDERS_PROVIDER_H
#define AR_PROVIDERS_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/pool.h"
#include "core/sse.h"
#include "upstream/http_req.h"

typedef enum ar_endpoint {
    AR_EP_CHAT = 0,    /* /v1/chat/completions */
    AR_EP_COMPLETIONS, /* /v1/completions */
    AR_EP_EMBEDDINGS,  /* /v1/embeddings */
    AR_EP_CNT
} ar_endpoint_t;

/* capabilities */
#define AR_PROV_STREAM (1u << 0)
#define AR_PROV_EMBED (1u << 1)
#define AR_PROV_COMPLETIONS (1u << 2)
#define AR_PROV_TOOLS (1u << 3)
#define AR_PROV_MODELS (1u << 4)      /* can list models (discovery) */
#define AR_PROV_INPROCESS (1u << 5)   /* answers without I/O (mock) */
#define AR_PROV_OPENAI_WIRE (1u << 6) /* speaks OpenAI: its error bodies are relayed as is */
#define AR_PROV_TOKEN (1u << 7)       /* needs an access token fetched by the gateway (vertex) */

/**
 * The client APIs besides OpenAI chat that a provider may speak natively: a request made in
 * one of them goes to such a provider as the client sent it (only the model substituted)
 * and its answers come back untouched; every other provider gets the chat translation.
 */
typedef enum ar_wire {
    AR_WIRE_NONE = 0,  /* the client speaks OpenAI chat (or completions, embeddings) */
    AR_WIRE_RESPONSES, /* OpenAI's Responses API (POST /v1/responses) */
    AR_WIRE_MESSAGES,  /* Anthropic's Messages API (POST /v1/messages) */
} ar_wire_t;

/** The client's request in its own API, for a provider that speaks it (ar_wire_t). */
typedef struct ar_call_native {
    ar_wire_t wire;
    ar_span_t raw;       /* the body to send (validated JSON object) */
    ar_span_t raw_model; /* its raw "model" value, empty when absent */
    /* client headers to forward ("Name: value", checked printable), e.g. anthropic-beta */
    const char *const *headers;
    size_t headers_cnt;
} ar_call_native_t;

/* Usage, normalised across providers: prompt_tokens counts every input token (cached and
 * cache-creation ones included, whatever the upstream's own split), completion_tokens every
 * output token (reasoning included). The details are 0 when the upstream does not say. */
typedef struct ar_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t total_tokens;
    int64_t cached_tokens;         /* prompt tokens read from a cache */
    int64_t cache_creation_tokens; /* prompt tokens written to a cache (Anthropic) */
    int64_t reasoning_tokens;      /* completion tokens spent thinking */
    bool seen;                     /* the upstream reported usage */
} ar_usage_t;

/** One attempt of one client request, as a provider sees it. */
typedef struct ar_call ar_call_t;

struct ar_call {
    ar_pool_t *pool;
    ar_endpoint_t endpoint;
    /* The client's request, OpenAI shape. raw is the body as received (validated JSON);
     * body is its jansson tree with airouter's extensions removed, built on first use by
     * ar_call_json (providers that only pass the body through never need it). */
    ar_span_t raw;
    ar_span_t raw_model;          /* the raw "model" value, empty when absent */
    ar_span_t raw_stream_options; /* the raw "stream_options" value, empty when absent */
    bool raw_has_extensions;      /* raw holds airouter-only fields to strip */
    json_t *body;
    bool stream;               /* the client asked for a stream */
    bool client_wants_usage;   /* ...and for stream usage (stream_options.include_usage) */
    const char *model;         /* the upstream model name for this attempt */
    const char *public_model;  /* the name the client used */
    int64_t max_output_tokens; /* the deployment's, 0 = unknown */
    ar_usage_t usage;          /* written while parsing */
    bool stream_done;          /* the upstream signalled the end of the stream */
    /* Why a hook failed, for the client: build_request's AR_EINVAL (the request cannot be
     * expressed for this provider) or parse_event's error (an error event in the stream).
     * Static text or call->pool; never secrets. */
    const char *error_detail;
    void *pstate; /* the provider's per-attempt state, in the pool */
    /* A client speaking another API (wire != AR_WIRE_NONE): a provider that speaks it sends
     * native.raw and sets `native` for the attempt (its answers are then in the client's
     * API, relayed untouched while usage is read from them). body/raw above hold the chat
     * translation for the others, or nothing when it failed: translate_error says why. */
    ar_call_native_t native_in;
    bool native;
    const char *translate_error;
    /* Builds body on first use (ar_call_json), for a front whose translation only the
     * providers that do not speak the client's API need: 0, or AR_EINVAL with
     * translate_error set. NULL: body and raw are all there is. */
    int (*translate)(ar_call_t *call);
    void *translate_ud;
};

/** An upstream error, normalised. Strings are in the call's pool. */
typedef struct ar_upstream_err {
    int status;
    const char *message;
    const char *type;
    const char *code;
} ar_upstream_err_t;

/** What an in-process provider answers (mock). */
typedef struct ar_inproc_answer {
    int64_t latency_ms;
    int status;
    ar_buf_t body;     /* non-stream: the JSON body */
    ar_span_t *events; /* stream: complete SSE frames, in the pool */
    size_t events_cnt;
} ar_inproc_answer_t;

/**
 * The most tokens one answer may report. Upstream counts are clamped into [0, this] where
 * they are read, before any arithmetic: a broken or hostile upstream must not overflow the
 * sums (prompt + cache + completion), the TPM windows or the spend counters.
 */
#define AR_TOKENS_MAX ((int64_t)1 << 40)

static inline int64_t ar_tokens_clamp(int64_t n)
{
    return n < 0 ? 0 : (n > AR_TOKENS_MAX ? AR_TOKENS_MAX : n);
}

/** parse_event verdicts besides 0 (translated output, possibly empty = dropped). */
#define AR_PROV_PASS 1 /* forward the event's raw bytes unchanged */

typedef struct ar_provider ar_provider_t;

typedef struct ar_provider_ops {
    const char *type; /* the config `type:` value */
    unsigned caps;
    /** Allocates the provider for one credential. conf is borrowed for its lifetime. */
    ar_provider_t *(*create)(const ar_cred_conf_t *conf, char *err, size_t errlen);
    void (*destroy)(ar_provider_t *p);
    /**
     * Fills out (URL, headers, body) for call. Strings go into call->pool. @return 0;
     * AR_EINVAL when the client's request cannot be expressed for this provider (the
     * client's fault: a 400 if no other provider takes it); AR_EUNAVAIL when the credential
     * cannot be used just now through no fault of its own (no access token yet); with
     * call->error_detail saying why. Neither counts against the credential.
     */
    int (*build_request)(ar_provider_t *p, ar_call_t *call, ar_http_req_t *out);
    /**
     * Turns a 2xx body into the OpenAI response. Leaving out empty means "the body is
     * already right; send it as is" (pass-through, no copy).
     */
    int (*parse_response)(ar_provider_t *p, ar_call_t *call, ar_span_t body, ar_buf_t *out);
    /**
     * Turns one upstream SSE event into OpenAI chunk events appended to out (complete
     * "data: ...\n\n" frames). @return 0 (out holds the translation, or nothing: drop),
     * AR_PROV_PASS (forward ev->raw unchanged), or a negative AR_E*.
     */
    int (*parse_event)(ar_provider_t *p, ar_call_t *call, const ar_sse_event_t *ev, ar_buf_t *out);
    /** Normalises an error answer (any status >= 400). Never fails. */
    void (*parse_error)(ar_provider_t *p, ar_call_t *call, int status, ar_span_t body,
                        ar_upstream_err_t *out);
    /** Builds the model-list request (AR_PROV_MODELS). */
    int (*build_models_request)(ar_provider_t *p, ar_pool_t *pool, ar_http_req_t *out);
    /** Appends each model id found in a model-list body to ids (owned strings). */
    int (*parse_models)(ar_provider_t *p, ar_span_t body, ar_strlist_t *ids);
    /** Answers in process (AR_PROV_INPROCESS). */
    int (*answer)(ar_provider_t *p, ar_call_t *call, ar_inproc_answer_t *out);
    /**
     * The upstream stream ended normally: append the OpenAI frames that close it (a final
     * chunk, the usage chunk when the client asked for it, "data: [DONE]") for providers
     * whose streams end without them. Default: nothing.
     */
    int (*end_stream)(ar_provider_t *p, ar_call_t *call, ar_buf_t *out);
    /**
     * AR_PROV_TOKEN: the request that fetches an access token (e.g. an RS256-signed JWT
     * exchanged at a service account's token_uri). Strings go into pool. Main thread.
     * @return 0, AR_ENOTFOUND when this credential needs no token (e.g. Vertex with an
     * api_key), or another AR_E*.
     */
    int (*token_request)(ar_provider_t *p, ar_pool_t *pool, int64_t now_wall_ms,
                         ar_http_req_t *out);
    /**
     * AR_PROV_TOKEN: stores the token from the answer to token_request (thread-safe: any
     * worker may be building a request meanwhile). @param refresh_at_wall_ms receives when
     * to fetch the next one (60 s before expiry). @return 0 or an AR_E* when the answer is
     * not a token.
     */
    int (*token_response)(ar_provider_t *p, int status, ar_span_t body, int64_t now_wall_ms,
                          int64_t *refresh_at_wall_ms);
} ar_provider_ops_t;

struct ar_provider {
    const ar_provider_ops_t *ops;
    const ar_cred_conf_t *conf;
};

/**
 * Creates the provider for a credential by its type.
 * @return a provider (destroy with ar_provider_destroy) or NULL with a message in err.
 */
ar_provider_t *ar_provider_create(const ar_cred_conf_t *conf, char *err, size_t errlen);
void ar_provider_destroy(ar_provider_t *p);
/** The ops table of a type, or NULL. */
const ar_provider_ops_t *ar_provider_ops_of(ar_cred_type_t type);

static inline bool ar_provider_can(const ar_provider_t *p, unsigned cap)
{
    return (p->ops->caps & cap) == cap;
}

static inline int ar_provider_build(ar_provider_t *p, ar_call_t *call, ar_http_req_t *out)
{
    return p->ops->build_request(p, call, out);
}

static inline int ar_provider_parse_response(ar_provider_t *p, ar_call_t *call, ar_span_t body,
                                             ar_buf_t *out)
{
    return p->ops->parse_response(p, call, body, out);
}

static inline int ar_provider_parse_event(ar_provider_t *p, ar_call_t *call,
                                          const ar_sse_event_t *ev, ar_buf_t *out)
{
    return p->ops->parse_event(p, call, ev, out);
}

static inline void ar_provider_parse_error(ar_provider_t *p, ar_call_t *call, int status,
                                           ar_span_t body, ar_upstream_err_t *out)
{
    p->ops->parse_error(p, call, status, body, out);
}

static inline int ar_provider_build_models(ar_provider_t *p, ar_pool_t *pool, ar_http_req_t *out)
{
    return p->ops->build_models_request(p, pool, out);
}

static inline int ar_provider_parse_models(ar_provider_t *p, ar_span_t body, ar_strlist_t *ids)
{
    return p->ops->parse_models(p, body, ids);
}

static inline int ar_provider_answer(ar_provider_t *p, ar_call_t *call, ar_inproc_answer_t *out)
{
    return p->ops->answer(p, call, out);
}

static inline int ar_provider_end_stream(ar_provider_t *p, ar_call_t *call, ar_buf_t *out)
{
    return p->ops->end_stream(p, call, out);
}

static inline int ar_provider_token_request(ar_provider_t *p, ar_pool_t *pool, int64_t now_wall_ms,
                                            ar_http_req_t *out)
{
    return p->ops->token_request(p, pool, now_wall_ms, out);
}

static inline int ar_provider_token_response(ar_provider_t *p, int status, ar_span_t body,
                                             int64_t now_wall_ms, int64_t *refresh_at_wall_ms)
{
    return p->ops->token_response(p, status, body, now_wall_ms, refresh_at_wall_ms);
}

/* ---- helpers shared by provider files ---- */

/** The airouter-only request fields (SPEC section 3), removed before forwarding. */
extern const char *const ar_request_extensions[];
extern const size_t ar_request_extensions_cnt;
/**
 * The request as a jansson tree, extensions removed; parsed from call->raw on first use
 * and owned by the call's pool. @return the tree, or NULL when jansson cannot load raw
 * (a number out of range, a lone surrogate, invalid UTF-8): call->error_detail then names
 * the problem, and a build_request hook returns AR_EINVAL (the client's 400; nothing is
 * counted against the credential).
 */
json_t *ar_call_json(ar_call_t *call);

/**
 * Reads usage from an OpenAI-style `usage` object (raw JSON) into u: Chat Completions'
 * names (prompt_tokens, prompt_tokens_details.cached_tokens,
 * completion_tokens_details.reasoning_tokens) or the Responses API's (input_tokens,
 * input_tokens_details, output_tokens, output_tokens_details), and the
 * cache_creation_input_tokens some OpenAI-compatible proxies add for Anthropic models.
 */
void ar_provider_usage_from_openai(ar_span_t usage_json, ar_usage_t *u);
/**
 * The native body of call (call->native_in.raw) with its model replaced by call->model (or
 * added when absent), spliced without re-serialising; in the pool.
 */
int ar_provider_native_body(ar_call_t *call, ar_span_t *out) AR_MUST_CHECK;
/** Adds the client headers of call->native_in to out. @return 0 or AR_ETOOBIG. */
int ar_provider_native_headers(const ar_call_t *call, ar_http_req_t *out) AR_MUST_CHECK;
/** Serialises v into a new buffer owned by the pool. */
int ar_provider_dump_body(ar_call_t *call, const json_t *v, ar_span_t *out) AR_MUST_CHECK;
/** Starts a JSON POST to url: method, Content-Type, and Accept: text/event-stream for streams. */
int ar_provider_post_json(ar_http_req_t *out, const char *url, bool stream) AR_MUST_CHECK;
/**
 * For an error body that is not JSON: its first 200 bytes with control characters blanked
 * (enough to diagnose), or "upstream answered STATUS" when empty. In pool.
 */
const char *ar_provider_error_excerpt(ar_pool_t *pool, ar_span_t body, int status);
/**
 * The decoded text of a raw JSON string value, NUL-terminated in the pool; NULL when val is
 * not a string. For error messages: the scanner keeps escapes, and a message handed on
 * with them would be escaped twice in the client's error body.
 */
const char *ar_provider_json_string(ar_pool_t *pool, ar_span_t val);
/**
 * Appends the text of an OpenAI message content: the string itself, or the `text` of its
 * text parts with sep between them (images, audio and files are skipped).
 * @return 0 or AR_ETOOBIG
 */
int ar_provider_content_text(const json_t *content, const char *sep, ar_buf_t *out) AR_MUST_CHECK;
/** A credential's configured extra headers as "Name: value" lines, owned. */
typedef struct ar_header_lines {
    char **lines;
    size_t cnt;
} ar_header_lines_t;

/** Copies conf->headers into h as "Name: value" lines. */
void ar_header_lines_init(ar_header_lines_t *h, const ar_cred_conf_t *conf);
void ar_header_lines_dispose(ar_header_lines_t *h);
/** Adds the lines to out. @return 0 or AR_ETOOBIG. */
int ar_header_lines_add(const ar_header_lines_t *h, ar_http_req_t *out) AR_MUST_CHECK;
/** "Name: value" in the pool. */
const char *ar_provider_header_line(ar_pool_t *pool, const char *name, const char *value);

#endif
