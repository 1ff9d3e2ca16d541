/*
 * upstream_int.h: what curl_uv.c (the multi handle on libuv) and transfer.c (one easy
 * handle per request) share. Nothing outside src/upstream includes it.
 */
#ifndef AR_UPSTREAM_UPSTREAM_INT_H
#define AR_UPSTREAM_UPSTREAM_INT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <uv.h>

#include "core/buf.h"
#include "core/list.h"
#include "upstream/upstream.h"

#define RESP_HEADERS_MAX 64
#define RESP_HEAD_BYTES_MAX (64u * 1024u)
#define TRANSFER_CACHE_MAX 1024
#define H1_READ_BYTES (64u * 1024u) /* h1.c reads this much at once; a pause holds at most that */

struct ar_transfer {
    ar_upstream_t *up;
    CURL *easy;
    ar_list_t link; /* active list, or the free cache */
    ar_transfer_cbs_t cbs;
    void *ud;
    struct curl_slist slist[AR_HTTP_REQ_MAX_HEADERS + 3]; /* + Expect:, Accept: */
    ar_buf_t head; /* raw response header lines of the final response */
    ar_header_t headers[RESP_HEADERS_MAX];
    size_t headers_cnt;
    int status;
    bool head_sent;
    bool cancelled;
    bool paused;
    bool active;                /* added to the multi handle */
    bool configured;            /* the handle's fixed options are set */
    bool native;                /* on a connection of h1.c, not on curl (easy is unused then) */
    bool req_sent;              /* native: the whole request is written */
    struct h1_conn *conn;       /* native: the connection it runs on, NULL before one is ready */
    const ar_http_req_t *req;   /* native: borrowed, for a retry on a fresh connection */
    const char *path;           /* native: origin-form target within req->url */
    int64_t connect_timeout_ms; /* opts' connect timeout: default 10 s, within timeout_ms */
    int retries;                /* native: stale pooled connections replaced */
    ar_buf_t pend;              /* native, paused: refused body bytes, then unparsed input */
    size_t pend_body;           /* of pend, the refused body bytes at its start */
    struct h1_dns *dns;         /* native: name lookup in flight */
    int user_err;               /* an error a callback returned */
    uint64_t max_bytes;
    uint64_t received;
    uint64_t start_us;
    uint64_t first_byte_us;
    /* request_timeout counts upstream time only: the clock stops while the transfer is
     * paused for a slow client (its own allocation: the handle outlives a freed transfer
     * until its close callback) */
    struct deadline *deadline;
    int64_t budget_ms;   /* what is left of timeout_ms; < 0: no timeout */
    uint64_t running_ms; /* loop time when the clock last started */
    char errbuf[CURL_ERROR_SIZE];
};

#define URL_CACHE_SLOTS 64

/* Parsed URLs by text: curl re-parses a CURLOPT_URL string on every transfer. */
typedef struct url_slot {
    char *text;
    CURLU *url;
} url_slot_t;

struct ar_upstream {
    url_slot_t urls[URL_CACHE_SLOTS];
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    ar_list_t active;
    ar_list_t cache; /* finished transfers kept with their easy handle */
    size_t cache_cnt;
    long active_cnt;
    int in_curl; /* inside curl_multi_socket_action: multi calls must wait */
    bool closing;
    int handles_open;   /* timer, epoll watcher and deadline timers still closing */
    ar_list_t deferred; /* cancelled while in_curl: removed afterwards */
    int epfd;           /* epoll set of curl's sockets (see curl_uv.c) */
    uv_poll_t epoll;    /* libuv watching epfd */
    uint8_t *fd_states; /* per socket number: FD_WATCHED | FD_PARKED | events */
    size_t fd_cap;
    void (*settled_cb)(void *ud);
    void *settled_ud;
    long idle_max;     /* max_idle_conns of this client; -1: no limit */
    long socks_in_use; /* sockets curl watches now (not parked): connections in use */
    long pool_cap;     /* CURLMOPT_MAXCONNECTS in force */
    long maxage_s;     /* CURLOPT_MAXAGE_CONN of every transfer */
    /* h1.c */
    bool curl_only;          /* ar_upstream_opts_t.curl_only */
    int64_t idle_timeout_ms; /* idle_conn_timeout; < 0: none */
    struct h1_pool **pools;  /* one per host:port */
    size_t pools_cnt;
    ar_list_t h1_conns; /* every connection */
    ar_list_t h1_idle;  /* idle connections, most recently used first */
    long h1_idle_cnt;
    char *h1_rbuf;     /* read buffer shared by the connections (copied out on pause) */
    long forbid_reuse; /* CURLOPT_FORBID_REUSE of every transfer (max_idle_conns 0) */
};

/* transfer.c */
/** Handles one CURLMSG_DONE. */
void ar_upstream__done(ar_upstream_t *up, CURL *easy, CURLcode code);
/** Removes a transfer from the multi and recycles it (no callbacks). */
void ar_upstream__release(ar_upstream_t *up, ar_transfer_t *t);
/** Processes cancellations that happened inside curl callbacks. */
void ar_upstream__flush_deferred(ar_upstream_t *up);
/** Frees a transfer and its easy handle. */
void ar_upstream__free_transfer(ar_transfer_t *t);

/** The parsed form of a URL, cached per client (NULL when curl rejects it). */
CURLU *ar_upstream__url(ar_upstream_t *up, const char *text);

/** A handle counted in up->handles_open has closed (the client may be freed now). */
void ar_upstream__handle_gone(ar_upstream_t *up);

/** The final head arrived: records status and time, parses t->head ("Name: value" lines)
 *  and calls on_head once. @return 0 or the callback's error. */
int ar_upstream__deliver_head(ar_transfer_t *t, int status);
/** request_timeout's clock runs only while the transfer waits on the upstream. */
void ar_upstream__clock_start(ar_transfer_t *t);
void ar_upstream__clock_stop(ar_transfer_t *t);

/* h1.c: plain-HTTP/1.1 upstreams on libuv, without curl */
/** What ar_h1__start returns for a URL it leaves to curl (https, user info, odd forms). */
#define AR_H1_DECLINED 1
/** Starts t on a pooled or new connection. No callback runs before it returns.
 *  @return 0, AR_H1_DECLINED, or AR_E* (then nothing was started). */
int ar_h1__start(ar_upstream_t *up, ar_transfer_t *t, const ar_http_req_t *req);
/** Unties t from its connection: pooled again when its answer was whole, else closed. */
void ar_h1__detach(ar_transfer_t *t);
/** Hands over what a pause held back, then reads on. */
void ar_h1__resume(ar_transfer_t *t);
/** Closes every connection (ar_upstream_close, after the transfers were released). */
void ar_h1__close_all(ar_upstream_t *up);
/** Frees the pools (the client is being freed). */
void ar_h1__dispose(ar_upstream_t *up);

/* curl_uv.c */
/** Lets curl act on what is due now (after adding a handle or unpausing). */
void ar_upstream__kick(ar_upstream_t *up);

#endif
