/*
 * curl_uv.c: libcurl's multi_socket API on a libuv loop (the wiring of curl's
 * docs/examples/multi-uv.c, without its globals). curl tells us which sockets to watch
 * and when its timer is due; libuv tells curl when a socket is ready. One instance per
 * worker; nothing here is shared between threads.
 */
#include <limits.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/mem.h"
#include "upstream/upstream_int.h"

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    ar_upstream_t *up;
    ar_list_t link;
} sock_ctx_t;

static void close_sock(sock_ctx_t *s);

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

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx_t *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    socket_action(s->up, s->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    ar_upstream_t *up = t->data;
    socket_action(up, CURL_SOCKET_TIMEOUT, 0);
}

static void maybe_free(ar_upstream_t *up)
{
    if (up->closing && up->handles_open == 0)
        ar_free(up);
}

static void on_poll_closed(uv_handle_t *h)
{
    sock_ctx_t *s = h->data;
    ar_upstream_t *up = s->up;
    ar_free(s);
    up->handles_open--;
    maybe_free(up);
}

static void close_sock(sock_ctx_t *s)
{
    ar_list_remove(&s->link);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

static void on_timer_closed(uv_handle_t *h)
{
    ar_upstream_t *up = h->data;
    up->handles_open--;
    maybe_free(up);
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
    sock_ctx_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            close_sock(s);
            if (!up->closing)
                curl_multi_assign(up->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = ar_xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->up = up;
        if (uv_poll_init_socket(up->loop, &s->poll, fd) != 0) {
            ar_free(s);
            return -1;
        }
        s->poll.data = s;
        up->handles_open++;
        ar_list_insert_tail(&up->socks, &s->link);
        curl_multi_assign(up->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
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
    ar_list_init(&up->socks);
    uv_timer_init(loop, &up->timer);
    up->timer.data = up;
    up->handles_open = 1;
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
    /* CURLMOPT_MAXCONNECTS: 0 is libcurl's "no limit"; unset it would be 4 per easy handle
     * ever added. Keeping none is done per transfer instead (CURLOPT_FORBID_REUSE). */
    int64_t max = opts->max_idle_conns;
    long maxconn = max < 0 ? 0L : max > LONG_MAX ? LONG_MAX : (long)max;
    curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, max == 0 ? 1L : maxconn);
    up->forbid_reuse = max == 0 ? 1L : 0L;
    /* libcurl drops a connection when its idle time in whole seconds, rounded down, exceeds
     * CURLOPT_MAXAGE_CONN: "not reused after T seconds idle" is a maxage of T - 1. */
    int64_t ms = opts->idle_conn_timeout_ms;
    if (ms < 0)
        up->maxage_s = LONG_MAX;
    else
        up->maxage_s = ms >= 1000 ? (long)((ms + 999) / 1000 - 1) : 0L;
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
    ar_list_foreach_safe (pos, tmp, &up->socks) {
        close_sock(ar_container_of(pos, sock_ctx_t, link));
    }
    uv_timer_stop(&up->timer);
    uv_close((uv_handle_t *)&up->timer, on_timer_closed);
}
