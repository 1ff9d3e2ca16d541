/*
 * curl_uv.c: libcurl's multi_socket API on a libuv loop. curl tells us which sockets to watch
 * and when its timer is due; the sockets sit in an epoll set of our own that libuv watches as
 * one fd (why: see "Socket watching" below), and libuv's timer drives curl's. One instance
 * per worker; nothing here is shared between threads.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "upstream/upstream_int.h"

static void fit_pool(ar_upstream_t *up);

static void check_done(ar_upstream_t *up)
{
    CURLMsg *msg;
    int left;
    for (;;) {
        msg = curl_multi_info_read(up->multi, &left);
        if (!msg)
            break;
        if (msg->msg == CURLMSG_DONE)
            ar_upstream__done(up, msg->easy_handle, msg->data.result);
    }
}

static void socket_action(ar_upstream_t *up, curl_socket_t fd, int flags)
{
    int running;
    fit_pool(up);
    up->in_curl++;
    curl_multi_socket_action(up->multi, fd, flags, &running);
    up->in_curl--;
    if (up->in_curl == 0) {
        ar_upstream__flush_deferred(up);
        check_done(up);
        if (up->settled_cb)
            up->settled_cb(up->settled_ud);
    }
}

void ar_upstream_on_settled(ar_upstream_t *up, void (*cb)(void *ud), void *ud)
{
    up->settled_cb = cb;
    up->settled_ud = ud;
}

void ar_upstream__kick(ar_upstream_t *up)
{
    if (up->in_curl == 0)
        socket_action(up, CURL_SOCKET_TIMEOUT, 0);
}

/*
 * Socket watching. libcurl 7.88 asks for new events two or three times per request on a
 * pooled connection (write, then read, then "remove" when the connection goes idle), and
 * a uv_poll_t turns every such change into an epoll_ctl DEL + ADD: six epoll_ctl calls
 * per request. Instead the client keeps its own epoll set, watched by libuv as one fd:
 * a change is one EPOLL_CTL_MOD, an unchanged interest costs nothing, and "remove" only
 * parks the socket (its registration stays; if a parked socket reports an event it is
 * dropped then). A socket closed by curl leaves the set by itself (close(2)).
 */
#define FD_WATCHED 0x80u /* in the epoll set (possibly parked) */
#define FD_PARKED 0x40u  /* curl no longer asks for events on it */
#define FD_EVENTS 0x3fu  /* EPOLLIN / EPOLLOUT registered */

static uint8_t *fd_state(ar_upstream_t *up, curl_socket_t fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= up->fd_cap) {
        size_t cap = up->fd_cap ? up->fd_cap : 256;
        while (cap <= (size_t)fd)
            cap *= 2;
        up->fd_states = ar_xrealloc(up->fd_states, cap);
        memset(up->fd_states + up->fd_cap, 0, cap - up->fd_cap);
        up->fd_cap = cap;
    }
    return &up->fd_states[fd];
}

/* Sets fd's registered events to want (0: drop it from the set). */
static int epoll_set(ar_upstream_t *up, curl_socket_t fd, uint8_t *st, unsigned want)
{
    struct epoll_event ev = {.events = want, .data.fd = fd};
    int rc;
    if (want == 0) {
        rc = epoll_ctl(up->epfd, EPOLL_CTL_DEL, fd, &ev);
        *st = 0;
        return rc == 0 || errno == ENOENT || errno == EBADF ? 0 : -1;
    }
    /* The state can be stale: a socket closed by curl leaves the set and its number may
     * come back as another socket. MOD on a number not in the set fails with ENOENT. */
    if (*st & FD_WATCHED) {
        rc = epoll_ctl(up->epfd, EPOLL_CTL_MOD, fd, &ev);
        if (rc != 0 && errno == ENOENT)
            rc = epoll_ctl(up->epfd, EPOLL_CTL_ADD, fd, &ev);
    } else {
        rc = epoll_ctl(up->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (rc != 0 && errno == EEXIST)
            rc = epoll_ctl(up->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    *st = rc == 0 ? (uint8_t)(FD_WATCHED | want) : 0;
    return rc;
}

static void on_epoll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    ar_upstream_t *up = h->data;
    struct epoll_event evs[64];
    for (int round = 0; round < 16 && !up->closing; round++) {
        int n = epoll_wait(up->epfd, evs, (int)AR_ARRAY_CNT(evs), 0);
        if (n <= 0)
            return;
        for (int i = 0; i < n && !up->closing; i++) {
            curl_socket_t fd = evs[i].data.fd;
            uint8_t *st = fd_state(up, fd);
            if (*st & FD_PARKED) {
                epoll_set(up, fd, st, 0); /* idle in curl's pool: it learns when reused */
                continue;
            }
            unsigned e = evs[i].events;
            int flags = 0;
            if (e & (EPOLLERR | EPOLLHUP))
                e |= *st & FD_EVENTS; /* what libuv would report: the wanted events */
            if (e & EPOLLIN)
                flags |= CURL_CSELECT_IN;
            if (e & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (e & EPOLLERR)
                flags |= CURL_CSELECT_ERR;
            socket_action(up, fd, flags);
        }
        if (n < (int)AR_ARRAY_CNT(evs))
            return;
    }
}

static void on_timer(uv_timer_t *t)
{
    ar_upstream_t *up = t->data;
    socket_action(up, CURL_SOCKET_TIMEOUT, 0);
}

static void maybe_free(ar_upstream_t *up)
{
    if (up->closing && up->handles_open == 0) {
        ar_h1__dispose(up);
        ar_free(up->fd_states);
        ar_free(up);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    ar_upstream__handle_gone(h->data);
}

static void on_epoll_closed(uv_handle_t *h)
{
    ar_upstream_t *up = h->data;
    close(up->epfd);
    ar_upstream__handle_gone(up);
}

void ar_upstream__handle_gone(ar_upstream_t *up)
{
    up->handles_open--;
    maybe_free(up);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    ar_upstream_t *up = userp;
    uint8_t *st = fd_state(up, fd);
    if (!st)
        return -1;
    bool in_use = (*st & (FD_WATCHED | FD_PARKED)) == FD_WATCHED;
    if (what == CURL_POLL_REMOVE) {
        if (in_use) {
            *st |= FD_PARKED;
            up->socks_in_use--;
        }
        return 0;
    }
    unsigned want = 0;
    if (what & CURL_POLL_IN)
        want |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        want |= EPOLLOUT;
    /* socketp is NULL on curl's first call for a socket (new, or back from the pool): the
     * state may belong to an earlier socket with the same number, so it is set for real. */
    if (socketp && *st == (FD_WATCHED | want))
        return 0;
    if (epoll_set(up, fd, st, want) != 0) {
        AR_LOG(AR_LOG_ERROR, NULL, "upstream: cannot watch socket %d: %s", (int)fd,
               strerror(errno));
        if (in_use)
            up->socks_in_use--;
        return -1;
    }
    if (!in_use)
        up->socks_in_use++;
    if (!socketp)
        curl_multi_assign(up->multi, fd, up);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    ar_upstream_t *up = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&up->timer);
    else
        uv_timer_start(&up->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

ar_upstream_t *ar_upstream_create(struct uv_loop_s *loop, const ar_upstream_opts_t *opts)
{
    pthread_once(&global_once, global_init);
    ar_upstream_t *up = ar_xcalloc(1, sizeof(*up));
    up->loop = loop;
    up->multi = curl_multi_init();
    if (!up->multi) {
        ar_free(up);
        return NULL;
    }
    ar_list_init(&up->active);
    ar_list_init(&up->cache);
    ar_list_init(&up->deferred);
    ar_list_init(&up->h1_conns);
    ar_list_init(&up->h1_idle);
    up->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (up->epfd < 0 || uv_poll_init(loop, &up->epoll, up->epfd) != 0) {
        if (up->epfd >= 0)
            close(up->epfd);
        curl_multi_cleanup(up->multi);
        ar_free(up);
        return NULL;
    }
    up->epoll.data = up;
    uv_poll_start(&up->epoll, UV_READABLE, on_epoll);
    uv_timer_init(loop, &up->timer);
    up->timer.data = up;
    up->handles_open = 2;
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    ar_upstream_set_opts(up, opts);
    return up;
}

void ar_upstream_set_opts(ar_upstream_t *up, const ar_upstream_opts_t *opts)
{
    int64_t max = opts->max_idle_conns;
    up->idle_max = max < 0 ? -1 : max > LONG_MAX / 2 ? LONG_MAX / 2 : (long)max;
    up->forbid_reuse = max == 0 ? 1L : 0L;
    up->curl_only = opts->curl_only;
    up->idle_timeout_ms = opts->idle_conn_timeout_ms;
    up->pool_cap = -1;
    fit_pool(up);
    /* libcurl drops a connection when its idle time in whole seconds, rounded down, exceeds
     * CURLOPT_MAXAGE_CONN: "not reused after T seconds idle" is a maxage of T - 1. */
    int64_t ms = opts->idle_conn_timeout_ms;
    if (ms < 0)
        up->maxage_s = LONG_MAX;
    else
        up->maxage_s = ms >= 1000 ? (long)((ms + 999) / 1000 - 1) : 0L;
}

/*
 * max_idle_conns counts idle connections only, but libcurl's CURLMOPT_MAXCONNECTS caps the
 * whole pool, in use and idle together: with a fixed cap, more concurrent requests than the
 * cap meant a connection closed after every request and a new one opened for the next
 * (connect + close per request: a third of the CPU at 1024 concurrent requests). The cap
 * follows the connections in use instead: the sockets curl watches. It is set before each
 * call into curl (curl refuses options from inside its callbacks) and applied by curl when
 * a finished request hands its connection back, one per socket event: the - 1 is that
 * request's own connection. 0 is libcurl's "no limit"; keeping none is done per transfer
 * (CURLOPT_FORBID_REUSE).
 */
static void fit_pool(ar_upstream_t *up)
{
    long in_use = up->socks_in_use > 0 ? up->socks_in_use - 1 : 0;
    long cap = up->idle_max < 0 ? 0L : up->idle_max == 0 ? 1L : up->idle_max + in_use;
    if (cap != up->pool_cap && curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, cap) == CURLM_OK)
        up->pool_cap = cap;
}

long ar_upstream_active(const ar_upstream_t *up)
{
    return up->active_cnt;
}

void ar_upstream_close(ar_upstream_t *up)
{
    if (!up)
        return;
    ar_list_t *pos, *tmp;
    ar_list_foreach_safe (pos, tmp, &up->active) {
        ar_transfer_t *t = ar_container_of(pos, ar_transfer_t, link);
        ar_upstream__release(up, t);
    }
    ar_upstream__flush_deferred(up);
    ar_h1__close_all(up);
    ar_list_foreach_safe (pos, tmp, &up->cache) {
        ar_transfer_t *t = ar_container_of(pos, ar_transfer_t, link);
        ar_list_remove(&t->link);
        ar_upstream__free_transfer(t);
    }
    up->cache_cnt = 0;
    up->closing = true;
    for (size_t i = 0; i < URL_CACHE_SLOTS; i++) {
        ar_free(up->urls[i].text);
        curl_url_cleanup(up->urls[i].url);
    }
    /* curl_multi_cleanup closes the pooled connections, reporting each socket removal */
    curl_multi_cleanup(up->multi);
    up->multi = NULL;
    uv_timer_stop(&up->timer);
    uv_close((uv_handle_t *)&up->timer, on_handle_closed);
    uv_poll_stop(&up->epoll);
    uv_close((uv_handle_t *)&up->epoll, on_epoll_closed);
}

const char *ar_upstream_curl_version(void)
{
    return curl_version_info(CURLVERSION_NOW)->version;
}
