/*
 * upstream.h: the HTTP client every upstream call goes through. One ar_upstream_t per
 * worker drives a libcurl multi handle from that worker's libuv loop (multi_socket API):
 * pooled keep-alive connections, HTTP/2 multiplexing over TLS when the server offers it,
 * asynchronous DNS. Response bytes are handed to the caller as they arrive (no
 * buffering), and the caller can pause the flow when its client is slow.
 *
 * Threading: a client and its transfers belong to one worker thread.
 */
#ifndef AR_UPSTREAM_UPSTREAM_H
#define AR_UPSTREAM_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/span.h"
#include "upstream/http_req.h"

struct uv_loop_s;
typedef struct ar_upstream ar_upstream_t;
typedef struct ar_transfer ar_transfer_t;

/*
 * The connection pool of one client (libcurl's connection cache; it has no per-host limit).
 * max_idle_conns: idle connections kept open for reuse (connections in use do not count;
 *   when a request ends and more are idle, the one idle longest is closed); 0 keeps none
 *   (every connection closes after its request); < 0: no limit.
 * idle_conn_timeout_ms: a connection idle this long is not reused; libcurl closes it the
 *   next time this client starts a request. Whole seconds (libcurl's resolution; a
 *   fraction rounds up); < 0: no limit.
 */
typedef struct ar_upstream_opts {
    int64_t max_idle_conns;
    int64_t idle_conn_timeout_ms;
    bool curl_only; /* http:// through libcurl too, not the built-in HTTP/1.1 client (tests) */
} ar_upstream_opts_t;

typedef struct ar_transfer_opts {
    int64_t timeout_ms;          /* whole exchange; <= 0: none */
    int64_t connect_timeout_ms;  /* <= 0: 10 s */
    uint64_t max_response_bytes; /* larger bodies fail with AR_ETOOBIG; 0: no limit */
} ar_transfer_opts_t;

/**
 * Callbacks of one transfer. They run on the worker thread, from inside the client's
 * processing: a callback may start new transfers and cancel any transfer (its own too),
 * but must not destroy the client.
 */
typedef struct ar_transfer_cbs {
    /**
     * The final response head arrived (1xx heads are skipped). Header spans are valid
     * only during the call. @return 0, or a negative AR_E* to abort the transfer (on_done
     * then reports that code).
     */
    int (*on_head)(void *ud, int status, const ar_header_t *headers, size_t cnt);
    /**
     * Body bytes, valid only during the call. @return 0 when consumed; AR_EAGAIN to pause
     * (the same bytes come again after ar_transfer_resume); another negative AR_E* to
     * abort (on_done then reports that code).
     */
    int (*on_data)(void *ud, ar_span_t data);
    /**
     * The transfer ended: err is 0 when the whole response arrived, else the AR_E* that
     * describes the failure (AR_ETIMEDOUT, AR_ECONNRESET, AR_ECONNREFUSED, ...), with
     * a short detail for logs (no secrets). Called exactly once unless cancelled.
     */
    void (*on_done)(void *ud, int err, const char *detail);
} ar_transfer_cbs_t;

/** Creates the client of a worker on loop. Worker thread. */
ar_upstream_t *ar_upstream_create(struct uv_loop_s *loop, const ar_upstream_opts_t *opts);
/**
 * Changes the pool settings (config reload); transfers started afterwards follow them.
 * Worker thread, outside the client's callbacks.
 */
void ar_upstream_set_opts(ar_upstream_t *up, const ar_upstream_opts_t *opts);
/**
 * Cancels all transfers (no callbacks) and closes the client; its memory is released
 * once libuv has closed its handles, so the loop must run afterwards.
 */
void ar_upstream_close(ar_upstream_t *up);
/**
 * Registers cb(ud), called each time the client has finished handing over what one
 * socket event or timer brought (after every on_data of that batch). Callers batch their
 * own output there: libcurl hands a chunked body over one chunk at a time, so flushing per
 * on_data would cost one write(2) per upstream chunk.
 */
void ar_upstream_on_settled(ar_upstream_t *up, void (*cb)(void *ud), void *ud);
/** Transfers running on this client. */
long ar_upstream_active(const ar_upstream_t *up);

/**
 * Starts a request. req, cbs and everything req points to are borrowed until on_done
 * or ar_transfer_cancel. @return the transfer, or NULL with *err set (then no callback
 * is ever called).
 */
ar_transfer_t *ar_transfer_start(ar_upstream_t *up, const ar_http_req_t *req,
                                 const ar_transfer_opts_t *opts, const ar_transfer_cbs_t *cbs,
                                 void *ud, int *err);
/** Stops a transfer; no callback is called for it afterwards. Safe inside callbacks. */
void ar_transfer_cancel(ar_transfer_t *t);
/** Resumes a transfer paused by on_data returning AR_EAGAIN. */
void ar_transfer_resume(ar_transfer_t *t);
/** Microseconds from start to the first response byte (0 before it). */
uint64_t ar_transfer_ttfb_us(const ar_transfer_t *t);

/**
 * A small answer read whole (health probes, model discovery, token exchange). Make it the
 * first member of the transfer's ud and use ar_collect_head / ar_collect_data as on_head
 * and on_data: they record the status and append to body, within the cap body was
 * initialised with (a longer answer aborts the transfer with AR_ETOOBIG).
 */
typedef struct ar_collected {
    int status;
    ar_buf_t body;
} ar_collected_t;

int ar_collect_head(void *ud, int status, const ar_header_t *h, size_t n);
int ar_collect_data(void *ud, ar_span_t data);

/** The version of the libcurl library loaded at run time ("7.88.1"). */
const char *ar_upstream_curl_version(void);

#endif
