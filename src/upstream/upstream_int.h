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
#define TRANSFER_CACHE_MAX 128

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
    bool active;     /* added to the multi handle */
    bool configured; /* the handle's fixed options are set */
    int user_err;    /* an error a callback returned */
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

/* curl_uv.c */
/** Lets curl act on what is due now (after adding a handle or unpausing). */
void ar_upstream__kick(ar_upstream_t *up);

#endif
