/*
 * server.h: the HTTP/1.1 front. N worker threads each run one libuv loop with its own
 * SO_REUSEPORT listener; connections never move between threads. The server parses
 * requests with llhttp (keep-alive, pipelining, chunked bodies), enforces the size limits
 * and timeouts of SPEC sections 3 and 10, and hands each complete request to one handler.
 * It knows nothing about LLMs: routing, auth and upstreams belong to the handler.
 *
 * Threading: everything about a request or connection happens on its worker's thread.
 * Only ar_server_* functions marked "main thread" are called from outside the workers.
 */
#ifndef AR_SERVER_SERVER_H
#define AR_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/pool.h"
#include "core/span.h"

struct uv_loop_s;
typedef struct ar_server ar_server_t;
typedef struct ar_worker ar_worker_t;
typedef struct ar_http_request ar_http_request_t;

typedef enum ar_http_method {
    AR_HTTP_OTHER = 0,
    AR_HTTP_GET,
    AR_HTTP_HEAD,
    AR_HTTP_POST,
    AR_HTTP_PUT,
    AR_HTTP_DELETE,
    AR_HTTP_PATCH,
    AR_HTTP_OPTIONS,
} ar_http_method_t;

typedef ar_header_t ar_http_header_t;

/**
 * Why a request ends before its handler finished it.
 * AR_ECANCELED: the client closed the connection or a write stalled past write_timeout;
 *   nothing more can be sent.
 * AR_ESHUTDOWN: the server's drain time ran out; the handler should still answer (the
 *   cancellation body, or an SSE error event when streaming began) and finish.
 */
typedef void (*ar_http_abort_cb)(ar_http_request_t *req, int reason);
/** The connection's output queue fell below the low-water mark (see ar_http_flush). */
typedef void (*ar_http_drain_cb)(ar_http_request_t *req);

struct ar_http_request {
    ar_pool_t *pool;     /* request-scoped memory, freed with the request */
    ar_worker_t *worker; /* the thread serving it */
    ar_http_method_t method;
    ar_span_t method_name;
    ar_span_t target; /* as sent: path and query */
    ar_span_t path;   /* without the query */
    ar_span_t query;  /* after '?', empty when none */
    ar_http_header_t *headers;
    size_t headers_cnt;
    ar_span_t body;            /* the whole request body */
    const char *request_id;    /* the client's x-request-id when valid, else generated */
    const char *client_ip;     /* the request's own copy: valid after the connection is gone */
    uint64_t start_us;         /* monotonic, first byte of the request */
    int http_minor;            /* 0 or 1 */
    void *data;                /* the handler's */
    ar_http_abort_cb on_abort; /* set by a handler that answers asynchronously */
    ar_http_drain_cb on_drain;
    /* private */
    struct ar_conn *_conn;
    long _refs;
    bool _responded; /* head sent */
    bool _finished;  /* response complete */
    bool _streaming;
    bool _aborted;
    bool _hold_end;      /* ar_http_hold_end: the end waits for ar_http_release_end */
    uint8_t _held;       /* what the hold kept: 0 nothing, 1 a whole response, 2 a stream's end */
    ar_span_t _held_out; /* a held whole response, head and body, in the pool */
    int _status;
    size_t _bytes_out;
    char _rid[40];
    char _client_ip[48];
};

typedef struct ar_server_opts {
    const char *host;
    int port;
    int workers;               /* 0: one per core */
    uint64_t max_body_bytes;   /* larger request bodies: 413 */
    uint64_t max_header_bytes; /* larger header blocks: 431 */
    int64_t idle_timeout_ms;   /* keep-alive idle and read stalls; <= 0: none */
    int64_t write_timeout_ms;  /* output stalled this long: connection closed; <= 0: none */
    /* A request head must be complete this long after it began: after the accept for a
     * connection's first request, after its first byte for a later one. Bytes do not
     * extend it (slowloris); when it passes the client gets 408 and the connection closes
     * (one that sent nothing is closed silently). <= 0: none. */
    int64_t header_timeout_ms;
    /* Open client connections, all workers together. A connection over it is answered
     * 503 (JSON, Connection: close) at once and closed. 0: sized from the fd limit,
     * max(16, (RLIMIT_NOFILE - 64) / 2): each client connection may hold one upstream
     * socket while its request runs, and 64 fds stay for listeners, loops, logs and the
     * store. ar_server_start first raises the soft RLIMIT_NOFILE to the hard one (at most
     * 1,048,576). < 0: unlimited. */
    int64_t max_connections;
} ar_server_opts_t;

typedef struct ar_server_cbs {
    /** Called on the worker thread for each complete request. The handler must end it
     *  with ar_http_respond or ar_http_start_stream + ar_http_end_stream, now or later. */
    void (*on_request)(ar_http_request_t *req);
    /**
     * Optional. Called on the worker thread when the head of a request that announces a
     * body (Content-Length > 0, or chunked) is complete, before any body byte is read or
     * any memory is taken for it, and before "100 Continue" is sent. req has its method,
     * target, headers and request id; req->body is empty. The handler may refuse the
     * request now with ar_http_respond* (never a stream), before returning: then the
     * answer carries "Connection: close", the body is read only to be dropped, the
     * connection closes, and on_request is never called for req. If it does not answer,
     * the body is read and on_request follows with the same req (req->data kept), unless
     * the client leaves first. Requests without a body go straight to on_request.
     */
    void (*on_head)(ar_http_request_t *req);
    /** Called on each worker thread before it serves (set worker->data here). */
    int (*worker_init)(ar_worker_t *w, void *ud);
    /** Called on each worker thread after its last connection closed; must close the
     *  handles it opened on the loop. */
    void (*worker_dispose)(ar_worker_t *w, void *ud);
    /** Called on each worker when ar_server_drain begins, before connections are told. */
    void (*worker_drain)(ar_worker_t *w, void *ud);
    void *ud;
} ar_server_cbs_t;

struct ar_worker {
    int id;
    struct uv_loop_s *loop;
    ar_server_t *server;
    void *data; /* the handler's per-worker state */
};

/* ---- server lifecycle (main thread) ---- */

/** Creates a server; nothing listens yet. opts and cbs are copied. */
ar_server_t *ar_server_create(const ar_server_opts_t *opts, const ar_server_cbs_t *cbs);
/**
 * Starts the workers and their listeners; returns when all listen or one failed. A port
 * that another process listens on (another airouter included, whatever its SO_REUSEPORT)
 * is refused before any worker starts; only this server's workers share it.
 * @return 0, or a negative AR_E* with a message naming host:port in err (e.g. the port is
 * in use). Call ar_server_stop and ar_server_destroy either way.
 */
int ar_server_start(ar_server_t *srv, char *err, size_t errlen) AR_MUST_CHECK;
/** The port actually bound (useful with port 0). */
int ar_server_port(const ar_server_t *srv);
/** The number of worker threads. */
int ar_server_worker_cnt(const ar_server_t *srv);
/** Worker i, for posting work to it. */
ar_worker_t *ar_server_worker(ar_server_t *srv, int i);
/**
 * Replaces the limits used from now on (reload): max_body_bytes, the idle, write and
 * header timeouts and max_connections of opts; host, port, workers and max_header_bytes
 * are fixed at start and ignored. A timer already running keeps its deadline, and a lower
 * max_connections closes no open connection. Any thread.
 */
void ar_server_set_limits(ar_server_t *srv, const ar_server_opts_t *opts);
/**
 * Begins a graceful stop: listeners close, idle connections close, requests arriving on
 * open connections get 503, running requests continue. Returns at once.
 */
void ar_server_drain(ar_server_t *srv);
/** Requests still running, over all workers. Any thread. */
long ar_server_in_flight(const ar_server_t *srv);
/**
 * Client connections open now over all workers (those refused over the limit not
 * counted), and the limit in force (-1: unlimited). Any thread.
 */
void ar_server_connections(const ar_server_t *srv, long *open, long *max);
/** Tells every running request AR_ESHUTDOWN (their handlers answer and finish). */
void ar_server_cancel_all(ar_server_t *srv);
/** Closes every connection, stops the loops and joins the threads. Main thread. */
void ar_server_stop(ar_server_t *srv);
/** Frees a stopped server. */
void ar_server_destroy(ar_server_t *srv);

/**
 * Runs fn(w, arg) on worker w's thread soon. Any thread. The call is dropped (and fn
 * never runs) only if the worker has already stopped.
 */
void ar_worker_post(ar_worker_t *w, void (*fn)(ar_worker_t *w, void *arg), void *arg);
/** True once ar_server_drain began. Worker thread. */
bool ar_worker_draining(const ar_worker_t *w);

/* ---- requests (worker thread) ---- */

/** The value of the first header named name (case-insensitive), or the empty span. */
ar_span_t ar_http_header(const ar_http_request_t *req, ar_span_t name);
/** Takes a reference: the request stays allocated until the matching unref. */
void ar_http_ref(ar_http_request_t *req);
/** Drops a reference; the last one frees the request and its pool. */
void ar_http_unref(ar_http_request_t *req);
/**
 * Sends a whole response with Content-Length. headers are borrowed; body is borrowed
 * (copied only if the socket cannot take it at once). Adds x-request-id, Date,
 * Content-Length and Connection. A response after the first is ignored.
 */
void ar_http_respond(ar_http_request_t *req, int status, const ar_http_header_t *headers,
                     size_t cnt, ar_span_t body);
/** ar_http_respond with a body in several pieces (sent without joining them). */
void ar_http_respond_parts(ar_http_request_t *req, int status, const ar_http_header_t *headers,
                           size_t cnt, const ar_span_t *parts, size_t nparts);
/** ar_http_respond with Content-Type: application/json. */
void ar_http_respond_json(ar_http_request_t *req, int status, const ar_http_header_t *headers,
                          size_t cnt, ar_span_t body);
/** Starts a chunked response (for SSE); the head is sent with the first flush. */
void ar_http_start_stream(ar_http_request_t *req, int status, const ar_http_header_t *headers,
                          size_t cnt);
/**
 * Appends bytes to the stream's pending chunk (copied). Nothing is sent until
 * ar_http_flush. @return 0, or AR_ECANCELED when the client is gone.
 */
int ar_http_write(ar_http_request_t *req, ar_span_t data);
/**
 * Sends the pending chunk. @return the bytes still queued on the socket afterwards; above
 * AR_HTTP_HIGH_WATER the caller should pause its source until on_drain.
 */
size_t ar_http_flush(ar_http_request_t *req);
/** Flushes and sends the terminating chunk; the response is complete. */
void ar_http_end_stream(ar_http_request_t *req);
/**
 * Holds the end of req's response until ar_http_release_end: a whole response
 * (ar_http_respond*) is kept (copied into the pool), and a stream's last pending bytes and
 * terminating chunk (ar_http_end_stream) wait; bytes a stream flushed before its end still
 * go out at once. So a handler can make something durable before the client sees the end
 * of its answer. The request stays in flight until released.
 */
void ar_http_hold_end(ar_http_request_t *req);
/** Sends what the hold kept, if the client is still there, and completes the response. */
void ar_http_release_end(ar_http_request_t *req);
/** True once the head went out (a different answer is impossible then). */
static inline bool ar_http_responded(const ar_http_request_t *req)
{
    return req->_responded;
}
/** True when the client can no longer receive anything. */
static inline bool ar_http_aborted(const ar_http_request_t *req)
{
    return req->_aborted;
}
/** The status sent (0 before the head). */
static inline int ar_http_status(const ar_http_request_t *req)
{
    return req->_status;
}

#define AR_HTTP_HIGH_WATER (256u * 1024u)
#define AR_HTTP_LOW_WATER (64u * 1024u)

/** A JSON error body in the OpenAI shape, built in the request pool. */
ar_span_t ar_http_error_body(ar_http_request_t *req, const char *message, const char *type,
                             const char *code);
/** The reason phrase of a status ("Not Found"). */
const char *ar_http_reason(int status);

/** The version of the libuv library loaded at run time ("1.44.2"). */
const char *ar_server_uv_version(void);
/**
 * The version of llhttp ("8.1.0"): it is compiled into airouter from Debian's sources
 * (see the Makefile), so the version of its headers is the one that runs.
 */
const char *ar_server_llhttp_version(void);

#endif
