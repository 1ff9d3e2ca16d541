/*
 * server_int.h: what the files of src/server share and nobody else sees: the worker and
 * connection structs. listener.c owns workers and threads, conn.c owns connections and
 * their I/O, http1.c the llhttp callbacks, response.c the response writers.
 */
#ifndef AR_SERVER_SERVER_INT_H
#define AR_SERVER_SERVER_INT_H

#include <llhttp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "core/buf.h"
#include "core/lazy_timer.h"
#include "core/list.h"
#include "server/server.h"

#define AR_MAX_HEADERS 128
#define READ_BUF_BYTES (64u * 1024u)
#define PENDING_IN_MAX (1u << 20) /* pipelined bytes buffered while a request runs */
#define OUT_BUF_MAX ((size_t)1 << 30)
#define POOL_BLOCK_BYTES 8192
#define POOL_CACHE_MAX 1024
/* A Content-Length body up to this size gets its exact size at once, from the request
 * pool (the common case: one allocation, no copy); a larger one grows as its bytes arrive,
 * so a declared length reserves nothing before the bytes exist. */
#define BODY_FIRST_BYTES (64u * 1024u)
/* Connections refused over max_connections that are still being answered and drained
 * (each holds an fd up to LINGER_MS); past this many, a refused one is closed at once. */
#define REFUSING_MAX 64

typedef struct post_item {
    struct post_item *next;
    void (*fn)(ar_worker_t *w, void *arg);
    void *arg;
} post_item_t;

typedef struct worker_impl {
    ar_worker_t pub; /* first: ar_worker_t * converts to worker_impl_t * */
    pthread_t thread;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t async;
    bool listening;
    bool draining;
    bool stopping;
    bool stopped; /* loop ended; posts are dropped */
    pthread_mutex_t post_mu;
    post_item_t *posts;
    ar_list_t conns;
    _Atomic long in_flight;
    char *read_buf;
    bool read_buf_busy;
    uint64_t rid_prefix;
    uint64_t rid_counter;
    char date[64];
    size_t date_len;
    time_t date_sec;
    ar_pool_t *pool_cache[POOL_CACHE_MAX];
    size_t pool_cache_cnt;
} worker_impl_t;

typedef struct hdr_ref {
    uint32_t name_off, name_len, val_off, val_len;
} hdr_ref_t;

typedef struct ar_conn {
    uv_tcp_t tcp;
    ar_lazy_timer_t read_timer; /* idle, head and body timeouts */
    uv_timer_t write_timer;
    llhttp_t parser;
    worker_impl_t *w;
    ar_list_t link;
    int handles_open; /* freed when the last close callback ran */
    bool closing;
    bool reading;
    bool processing;  /* a request was dispatched and has not finished */
    bool in_dispatch; /* inside on_request: a synchronous finish must not re-enter parsing */
    bool keep_alive;  /* of the current request */
    bool close_after_write;
    bool lingering;      /* an error answer is out: read and drop input until EOF */
    bool linger_started; /* FIN sent, the linger timer runs */
    uv_shutdown_t shutdown_req;
    bool request_started;   /* bytes of a request arrived */
    bool head_done;         /* the current request's head is complete (its body may follow) */
    bool in_head;           /* inside cbs.on_head: an answer now is the request's only one */
    bool head_answered;     /* on_head answered: the body is dropped, the connection closes */
    bool counted;           /* in srv->conns_open, or (refused) in srv->conns_refusing */
    bool refused;           /* over max_connections: answered 503, never parsed */
    uint64_t head_deadline; /* loop time (ms) by which the awaited head must be complete; 0: none */
    /* request being parsed */
    ar_buf_t hbuf; /* target, then header names and values, back to back */
    uint32_t target_len;
    hdr_ref_t hdrs[AR_MAX_HEADERS];
    size_t hdrs_cnt;
    bool last_was_value;
    uint64_t head_bytes;
    int cl_count, te_count;
    int parse_error_status; /* set by callbacks: 413, 431, 400 */
    const char *parse_error_msg;
    ar_http_request_t *req;
    ar_buf_t body_dyn; /* chunked bodies, and Content-Length ones over BODY_FIRST_BYTES */
    char *body_fixed;  /* Content-Length bodies up to BODY_FIRST_BYTES, in the request pool */
    uint64_t body_len, body_expected;
    bool message_complete;
    /* pipelined input waiting for the current request to finish */
    ar_buf_t pending_in;
    /* output */
    ar_buf_t out;       /* head and chunk being assembled for the current request */
    size_t chunk_start; /* out[0..chunk_start) is the unsent head */
    size_t wq_bytes;    /* queued in uv_write requests */
    uint64_t wq_total;  /* bytes ever handed to uv_write */
    uint64_t wq_mark;   /* of those, written to the socket when the write timer was armed */
    char client_ip[48];
} ar_conn_t;

static inline worker_impl_t *worker_impl(ar_worker_t *w)
{
    return (worker_impl_t *)w;
}

struct ar_server {
    ar_server_opts_t opts;
    char *host;
    ar_server_cbs_t cbs;
    int nworkers;
    worker_impl_t *workers;
    int bound_port;
    _Atomic uint64_t max_body_bytes;
    _Atomic int64_t idle_timeout_ms;
    _Atomic int64_t write_timeout_ms;
    _Atomic int64_t header_timeout_ms;
    _Atomic long max_conns; /* resolved from opts.max_connections; -1: unlimited */
    _Atomic long conns_open;
    _Atomic long conns_refusing;        /* refused, still answering or lingering */
    _Atomic uint64_t refused_total;     /* connections refused since start */
    _Atomic uint64_t refused_logged_ms; /* when a refusal was last logged */
    pthread_mutex_t start_mu;
    pthread_cond_t start_cond;
    int started;
    int start_rc;
    char start_err[256];
};

/* conn.c */
void ar_server__on_connection(uv_stream_t *listener, int status);
void ar_server__conn_close(ar_conn_t *c);
/** Writes bufs in order after anything already queued. @return 0 or AR_ECANCELED. */
int ar_server__conn_write(ar_conn_t *c, uv_buf_t *bufs, unsigned nbufs);
/** Called when the current request's response is complete. */
void ar_server__request_finished(ar_conn_t *c, ar_http_request_t *req);
/** Tells the request it is over (reason as ar_http_abort_cb). */
void ar_server__request_abort(ar_http_request_t *req, int reason);
/** Sends a complete error response for a request that never reached a handler. */
void ar_server__conn_fail(ar_conn_t *c, int status, const char *message);
/**
 * After an answer that ends the connection while the client may still be sending: drop
 * whatever input still comes, send FIN once the answer is out, close at EOF or after a
 * short linger time.
 */
void ar_server__conn_linger(ar_conn_t *c);
/** on_head answered req (its answer is out or queued): the request is over, its body will
 *  not be read. */
void ar_server__head_answered(ar_conn_t *c, ar_http_request_t *req);
/**
 * Arms the read timer for the connection's state: idle_timeout while it waits between
 * requests or receives a body; while a head is awaited, the sooner of idle_timeout (since
 * the last byte) and the head's absolute deadline (header_timeout), which bytes do not move.
 */
void ar_server__conn_arm_read(ar_conn_t *c);
/** Arms the read timeout ms from now (ms < 0: disarms it). */
void ar_server__read_timer_set(ar_conn_t *c, int64_t ms);
/** Starts the head deadline of the connection's next request, now (if header_timeout). */
void ar_server__conn_head_begins(ar_conn_t *c);

/* http1.c */
void ar_server__parser_init(ar_conn_t *c);
/** Feeds bytes; dispatches every complete request. Handles pipelining. */
void ar_server__conn_process(ar_conn_t *c, const char *data, size_t len);
void ar_server__reset_request_state(ar_conn_t *c);

/* response.c */
/** The cached Date header line for this second ("Date: ...\r\n"). */
const char *ar_server__date(worker_impl_t *w, size_t *len);
void ar_server__gen_request_id(worker_impl_t *w, char out[40]);
/* The largest piece handed to one uv_buf_t (whose length is an unsigned int). */
#define UV_BUF_PIECE_MAX ((size_t)1 << 30)
/** How many pieces ar_server__buf_split makes of len bytes. */
static inline size_t ar_server__buf_pieces(size_t len, size_t max)
{
    return len / max + (len % max != 0);
}
/**
 * Appends len bytes at p to out[*n..] as uv_buf_t pieces of at most max bytes each
 * (uv_buf_init takes an unsigned int length: a larger size_t would be truncated). out
 * must have room for ar_server__buf_pieces(len, max) more; an empty span adds nothing.
 */
void ar_server__buf_split(uv_buf_t *out, unsigned *n, const char *p, size_t len, size_t max);

/* listener.c */
ar_pool_t *ar_server__pool_get(worker_impl_t *w);
void ar_server__pool_put(worker_impl_t *w, ar_pool_t *pool);
uint64_t ar_server__max_body(const ar_server_t *srv);
int64_t ar_server__idle_ms(const ar_server_t *srv);
int64_t ar_server__write_ms(const ar_server_t *srv);
int64_t ar_server__header_ms(const ar_server_t *srv);
long ar_server__max_conns(const ar_server_t *srv);

#endif
