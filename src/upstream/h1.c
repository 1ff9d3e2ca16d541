/*
 * h1.c: upstream requests to http:// URLs over HTTP/1.1 on the worker's own libuv loop,
 * without libcurl. Why: on plain-HTTP keep-alive upstreams (local model servers, another
 * airouter, sidecars) libcurl 7.88 cost more than the rest of the gateway together and
 * grew with the number of pooled connections: per request two poll(2) liveness checks, a
 * walk over every pooled connection when a handle leaves the multi handle, another to
 * find a free one, a splay-tree timer and a dozen small allocations (see the profile in
 * the commit that added this file). Here a request costs one writev and one read.
 *
 * What it owns: the connection pools (one per host:port, idle connections most recently
 * used first, max_idle_conns over all of them, idle_conn_timeout), connecting (numeric
 * addresses at once, names through libuv's resolver threads, cached for a minute),
 * writing the request (head + the borrowed body, no copy), parsing the answer with llhttp
 * and handing it over as transfer.c's curl path does: the head once, body bytes as they
 * arrive, pause and resume, the same AR_E* errors. HTTPS, HTTP/2 and proxies stay on curl.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "upstream/upstream_int.h"

#define H1_HEAD_MAX (1u << 20) /* a request head: the lines come from config and providers */
#define H1_DNS_TTL_MS 60000
/* A pooled connection the server closed meanwhile fails before any answer byte: the
 * request goes again on a fresh connection, at most this many times. */
#define H1_STALE_RETRIES 2
/* Addresses of a name tried in turn when connecting fails (IPv6 then IPv4, say). */
#define H1_ADDRS_MAX 4

typedef struct h1_pool {
    char *host; /* as in the URL, brackets of an IPv6 literal removed */
    int port;
    char *host_line;                             /* "Host: host[:port]\r\n" */
    struct sockaddr_storage addrs[H1_ADDRS_MAX]; /* in the resolver's order of preference */
    int addrs_cnt;
    bool resolved;
    uint64_t resolved_ms;
    ar_list_t idle; /* its idle connections, most recently used first */
} h1_pool_t;

/* A request write. libuv calls back later even for a write that went out at once, so the
 * answer can be complete and the connection serving further requests before the callback
 * ran: two are embedded, more come from the heap, and seq tells whose callback it is. */
typedef struct h1_write {
    uv_write_t req;
    struct h1_conn *c;
    uint64_t seq;
    bool busy;
    bool heap;
} h1_write_t;

typedef struct h1_conn {
    uv_tcp_t tcp;
    uv_timer_t connect_timer;
    uv_connect_t connect_req;
    h1_write_t writes[2];
    uint64_t seq; /* requests sent on it */
    int addr_idx; /* of pool->addrs, the one connected to */
    llhttp_t parser;
    ar_upstream_t *up;
    h1_pool_t *pool;
    ar_transfer_t *t;  /* the request on it; NULL while idle */
    ar_list_t all;     /* up->h1_conns */
    ar_list_t in_pool; /* pool->idle, while idle */
    ar_list_t lru;     /* up->h1_idle, while idle */
    ar_buf_t out;      /* the request head */
    uint64_t idle_since_ms;
    int handles; /* tcp + timer still open */
    int hstate;  /* 0: before a header, 1: in a name, 2: in a value */
    bool reading;
    bool reused;     /* served a request before this one */
    bool got_bytes;  /* the current answer's first byte arrived */
    bool interim;    /* the answer being parsed is a 1xx */
    bool msg_done;   /* the current answer is complete */
    bool keep_alive; /* ... and the connection may serve another */
    bool closing;
} h1_conn_t;

typedef struct h1_dns {
    uv_getaddrinfo_t req;
    ar_transfer_t *t; /* NULL once the transfer went away */
    ar_upstream_t *up;
    h1_pool_t *pool;
} h1_dns_t;

static llhttp_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void conn_close(h1_conn_t *c);
static void start_reading(h1_conn_t *c);
static void conn_send(h1_conn_t *c);
static int conn_begin(ar_transfer_t *t, h1_pool_t *pool, bool fresh_only);
static void transfer_fail(ar_transfer_t *t, int err, const char *detail);

/* ---- pools ---- */

/* Splits "http://host[:port]/path?query" into its pool and request target. */
static int parse_url(const char *url, char *host, size_t host_cap, int *port, const char **path)
{
    const char *p = url + 7; /* after "http://" */
    const char *end = p + strcspn(p, "/?#");
    const char *hs = p, *he, *colon;
    if (*p == '[') {
        hs = p + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he)
            return AR_EINVAL;
        colon = he + 1 < end && he[1] == ':' ? he + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        he = colon ? colon : end;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= host_cap)
        return AR_EINVAL;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    *port = 80;
    if (colon) {
        long v = 0;
        const char *q = colon + 1;
        if (q == end)
            return AR_EINVAL;
        for (; q < end; q++) {
            if (*q < '0' || *q > '9' || (v = v * 10 + (*q - '0')) > 65535)
                return AR_EINVAL;
        }
        if (v == 0)
            return AR_EINVAL;
        *port = (int)v;
    }
    *path = *end == '/' ? end : "/"; /* ar_h1__start declined anything else */
    return 0;
}

static h1_pool_t *pool_get(ar_upstream_t *up, const char *host, int port, bool v6)
{
    for (size_t i = 0; i < up->pools_cnt; i++) {
        h1_pool_t *p = up->pools[i];
        if (p->port == port && strcmp(p->host, host) == 0)
            return p;
    }
    h1_pool_t *p = ar_xcalloc(1, sizeof(*p));
    p->host = ar_xstrdup(host);
    p->port = port;
    size_t n = strlen(host) + 32;
    p->host_line = ar_xmalloc(n);
    if (port == 80)
        snprintf(p->host_line, n, "Host: %s%s%s\r\n", v6 ? "[" : "", host, v6 ? "]" : "");
    else
        snprintf(p->host_line, n, "Host: %s%s%s:%d\r\n", v6 ? "[" : "", host, v6 ? "]" : "", port);
    ar_list_init(&p->idle);
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (uv_ip4_addr(host, port, &a4) == 0) {
        memcpy(&p->addrs[0], &a4, sizeof(a4));
        p->addrs_cnt = 1;
        p->resolved = true;
        p->resolved_ms = UINT64_MAX; /* a literal never expires */
    } else if (uv_ip6_addr(host, port, &a6) == 0) {
        memcpy(&p->addrs[0], &a6, sizeof(a6));
        p->addrs_cnt = 1;
        p->resolved = true;
        p->resolved_ms = UINT64_MAX;
    }
    up->pools = ar_xrealloc(up->pools, (up->pools_cnt + 1) * sizeof(*up->pools));
    up->pools[up->pools_cnt++] = p;
    return p;
}

static bool pool_address_fresh(const ar_upstream_t *up, const h1_pool_t *p)
{
    return p->resolved &&
           (p->resolved_ms == UINT64_MAX || uv_now(up->loop) - p->resolved_ms < H1_DNS_TTL_MS);
}

/* Takes the most recently used idle connection that may still be used. */
static h1_conn_t *pool_take(ar_upstream_t *up, h1_pool_t *p)
{
    while (!ar_list_empty(&p->idle)) {
        h1_conn_t *c = ar_container_of(p->idle.next, h1_conn_t, in_pool);
        ar_list_remove(&c->in_pool);
        ar_list_remove(&c->lru);
        up->h1_idle_cnt--;
        if (up->idle_timeout_ms >= 0 &&
            uv_now(up->loop) - c->idle_since_ms >= (uint64_t)up->idle_timeout_ms) {
            conn_close(c);
            continue;
        }
        return c;
    }
    return NULL;
}

/* The answer on c is complete: c waits for the next request, or closes. */
static void pool_put(h1_conn_t *c)
{
    ar_upstream_t *up = c->up;
    if (up->closing || up->idle_max == 0 || !c->keep_alive) {
        conn_close(c);
        return;
    }
    c->reused = true;
    c->idle_since_ms = uv_now(up->loop);
    start_reading(c); /* an idle connection reads only to see the server close it */
    ar_list_insert_head(&c->pool->idle, &c->in_pool);
    ar_list_insert_head(&up->h1_idle, &c->lru);
    up->h1_idle_cnt++;
    while (up->idle_max > 0 && up->h1_idle_cnt > up->idle_max) {
        h1_conn_t *old = ar_container_of(up->h1_idle.prev, h1_conn_t, lru);
        ar_list_remove(&old->in_pool);
        ar_list_remove(&old->lru);
        up->h1_idle_cnt--;
        conn_close(old);
    }
}

/* ---- connections ---- */

static void on_conn_closed(uv_handle_t *h)
{
    h1_conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    ar_upstream_t *up = c->up;
    ar_buf_dispose(&c->out);
    ar_free(c);
    ar_upstream__handle_gone(up);
}

static void conn_close(h1_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->t) {
        c->t->conn = NULL;
        c->t = NULL;
    }
    ar_list_remove(&c->all);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->connect_timer, on_conn_closed);
}

static h1_conn_t *conn_new(ar_upstream_t *up, h1_pool_t *pool)
{
    h1_conn_t *c = ar_xcalloc(1, sizeof(*c));
    c->up = up;
    c->pool = pool;
    uv_tcp_init(up->loop, &c->tcp);
    uv_timer_init(up->loop, &c->connect_timer);
    c->tcp.data = c;
    c->connect_timer.data = c;
    c->handles = 2;
    up->handles_open++;
    ar_list_init(&c->in_pool);
    ar_list_init(&c->lru);
    ar_list_insert_tail(&up->h1_conns, &c->all);
    ar_buf_init(&c->out, H1_HEAD_MAX);
    llhttp_init(&c->parser, HTTP_RESPONSE, &settings);
    c->parser.data = c;
    return c;
}

static int map_uv_err(int status, int dflt)
{
    switch (status) {
    case UV_ECONNREFUSED: return AR_ECONNREFUSED;
    case UV_EHOSTUNREACH: return AR_EHOSTUNREACH;
    case UV_ENETUNREACH: return AR_ENETUNREACH;
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_EOF: return AR_ECONNRESET;
    case UV_ETIMEDOUT: return AR_ECONNTIMEOUT;
    case UV_ENOMEM:
    case UV_ENOBUFS: return AR_ENOMEM;
    default: return dflt;
    }
}

/* The connection failed under its request. A pooled connection the server had closed fails
 * before any answer byte: then the request goes again on a fresh one. */
static void conn_failed(h1_conn_t *c, int status, const char *what)
{
    ar_transfer_t *t = c->t;
    bool stale = c->reused && !c->got_bytes && t && t->retries < H1_STALE_RETRIES &&
                 (status == UV_EOF || status == UV_ECONNRESET || status == UV_EPIPE);
    conn_close(c);
    if (!t)
        return;
    if (stale) {
        t->retries++;
        t->req_sent = false;
        int rc = conn_begin(t, c->pool, true);
        if (rc == 0)
            return;
        transfer_fail(t, rc, "cannot open a new upstream connection");
        return;
    }
    char detail[160];
    snprintf(detail, sizeof(detail), "%s: %s", what,
             status == UV_EOF ? "connection closed by the upstream" : uv_strerror(status));
    transfer_fail(t, map_uv_err(status, AR_EUPSTREAM), detail);
}

static int conn_connect(h1_conn_t *c, ar_transfer_t *t);
static void settle(ar_upstream_t *up);

/* Connecting to c's address failed: t tries the name's next address, if it has one.
 * @return whether it does (c is closed either way). */
static bool connect_next(h1_conn_t *c, ar_transfer_t *t)
{
    int next = c->addr_idx + 1;
    h1_pool_t *pool = c->pool;
    conn_close(c);
    if (!t || next >= pool->addrs_cnt)
        return false;
    h1_conn_t *n = conn_new(t->up, pool);
    n->addr_idx = next;
    n->t = t;
    t->conn = n;
    return conn_connect(n, t) == 0;
}

static void on_connect_timeout(uv_timer_t *h)
{
    h1_conn_t *c = h->data;
    ar_transfer_t *t = c->t;
    ar_upstream_t *up = c->up;
    if (connect_next(c, t) || !t)
        return;
    transfer_fail(t, AR_ECONNTIMEOUT, "connect timed out");
    settle(up);
}

/* ---- the answer ---- */

static h1_conn_t *conn_of(llhttp_t *p)
{
    return p->data;
}

static int on_message_begin(llhttp_t *p)
{
    h1_conn_t *c = conn_of(p);
    c->hstate = 0;
    c->interim = false;
    if (c->t)
        ar_buf_reset(&c->t->head);
    return 0;
}

/* Header names and values are kept as "Name: value" lines, the form the curl path gets. */
static int head_append(h1_conn_t *c, const char *sep, int next, const char *at, size_t len)
{
    ar_transfer_t *t = c->t;
    if (!t)
        return HPE_PAUSED;
    int rc = 0;
    if (c->hstate != next && c->hstate != 0)
        rc = ar_buf_append(&t->head, sep, strlen(sep));
    c->hstate = next;
    if (!rc)
        rc = ar_buf_append(&t->head, at, len);
    if (rc) {
        t->user_err = AR_ETOOBIG;
        return HPE_USER;
    }
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    return head_append(conn_of(p), "\r\n", 1, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    return head_append(conn_of(p), ": ", 2, at, len);
}

static int on_headers_complete(llhttp_t *p)
{
    h1_conn_t *c = conn_of(p);
    ar_transfer_t *t = c->t;
    if (!t)
        return HPE_PAUSED;
    if (p->status_code >= 100 && p->status_code < 200) {
        c->interim = true; /* 100 Continue and the like: the real answer follows */
        return 0;
    }
    if (c->hstate == 2 && ar_buf_append(&t->head, "\r\n", 2) != 0) {
        t->user_err = AR_ETOOBIG;
        return HPE_USER;
    }
    int rc = ar_upstream__deliver_head(t, p->status_code);
    if (t->cancelled)
        return HPE_PAUSED;
    if (rc) {
        t->user_err = rc;
        return HPE_USER;
    }
    return 0;
}

/* Hands body bytes to the transfer. @return 0, AR_EAGAIN (paused) or an error. */
static int deliver_body(ar_transfer_t *t, const char *at, size_t len)
{
    if (t->max_bytes && t->received + len > t->max_bytes)
        return AR_ETOOBIG;
    int rc = t->cbs.on_data(t->ud, ar_span(at, len));
    if (rc == AR_EAGAIN) {
        t->paused = true;
        ar_upstream__clock_stop(t); /* waiting on the client is not upstream time */
        return rc;
    }
    if (rc == 0)
        t->received += len;
    return rc;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    h1_conn_t *c = conn_of(p);
    ar_transfer_t *t = c->t;
    if (!t || t->cancelled)
        return HPE_PAUSED;
    int rc = deliver_body(t, at, len);
    if (t->cancelled)
        return HPE_PAUSED;
    if (rc == AR_EAGAIN) {
        /* the same bytes go again on resume; they end where the parser stops */
        t->pend_body = len;
        ar_buf_reset(&t->pend);
        if (ar_buf_append(&t->pend, at, len) != 0) {
            t->user_err = AR_ENOMEM;
            return HPE_USER;
        }
        return HPE_PAUSED;
    }
    if (rc) {
        t->user_err = rc;
        return HPE_USER;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    h1_conn_t *c = conn_of(p);
    if (c->interim) {
        c->interim = false;
        return 0;
    }
    c->msg_done = true;
    c->keep_alive = llhttp_should_keep_alive(p) != 0;
    return HPE_PAUSED; /* nothing may follow an answer nobody asked for */
}

static void settings_init(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
}

static void transfer_fail(ar_transfer_t *t, int err, const char *detail)
{
    ar_upstream_t *up = t->up;
    ar_transfer_cbs_t cbs = t->cbs;
    void *ud = t->ud;
    ar_upstream__release(up, t);
    cbs.on_done(ud, err, detail);
}

static void transfer_succeed(ar_transfer_t *t)
{
    ar_upstream_t *up = t->up;
    ar_transfer_cbs_t cbs = t->cbs;
    void *ud = t->ud;
    ar_upstream__release(up, t); /* hands the connection back to its pool */
    cbs.on_done(ud, 0, "");
}

static void settle(ar_upstream_t *up)
{
    ar_upstream__flush_deferred(up);
    if (up->settled_cb)
        up->settled_cb(up->settled_ud);
}

/*
 * Parses len bytes of c's answer and acts on where the parser stopped: the answer is
 * complete, the transfer paused (the rest is kept with it) or was cancelled, or the bytes
 * are not HTTP. Callbacks into the transfer run inside (cancellations are deferred).
 */
static void conn_parse(h1_conn_t *c, const char *data, size_t len)
{
    ar_upstream_t *up = c->up;
    ar_transfer_t *t = c->t;
    up->in_curl++;
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    up->in_curl--;
    if (t && t->cancelled) {
        conn_close(c); /* the release is deferred; the answer is cut short */
        return;
    }
    if (e == HPE_OK)
        return;
    const char *pos = llhttp_get_error_pos(&c->parser);
    size_t rest = pos && pos >= data && pos <= data + len ? (size_t)(data + len - pos) : 0;
    if (e == HPE_PAUSED && c->msg_done) {
        if (rest)
            c->keep_alive = false; /* bytes after the answer: the stream cannot be trusted */
        llhttp_resume(&c->parser);
        transfer_succeed(t);
        return;
    }
    if (e == HPE_PAUSED && t && t->paused) {
        if (ar_buf_append(&t->pend, pos, rest) != 0) {
            conn_close(c);
            transfer_fail(t, AR_ENOMEM, "out of memory holding a paused answer");
            return;
        }
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
        return;
    }
    int err = t && t->user_err ? t->user_err : AR_EUPSTREAM;
    char detail[160];
    snprintf(detail, sizeof(detail), "invalid HTTP answer from the upstream: %s",
             llhttp_get_error_reason(&c->parser) ? llhttp_get_error_reason(&c->parser) : "?");
    conn_close(c);
    if (t)
        transfer_fail(t, err, err == AR_EUPSTREAM ? detail : ar_err_message(err));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    h1_conn_t *c = h->data;
    ar_upstream_t *up = c->up;
    if (!up->h1_rbuf)
        up->h1_rbuf = ar_xmalloc(H1_READ_BYTES);
    buf->base = up->h1_rbuf;
    buf->len = H1_READ_BYTES;
}

/* The upstream closed the connection: an answer without a length ends here. */
static void conn_eof(h1_conn_t *c)
{
    ar_transfer_t *t = c->t;
    if (t && c->got_bytes && !c->msg_done) {
        ar_upstream_t *up = c->up;
        up->in_curl++;
        llhttp_errno_t e = llhttp_finish(&c->parser);
        up->in_curl--;
        if ((e == HPE_OK || e == HPE_PAUSED) && c->msg_done && !t->cancelled) {
            c->keep_alive = false;
            transfer_succeed(t);
            return;
        }
        if (t->cancelled) {
            conn_close(c);
            return;
        }
    }
    conn_failed(c, UV_EOF, c->got_bytes ? "answer cut short" : "no answer");
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    h1_conn_t *c = s->data;
    ar_upstream_t *up = c->up;
    if (nread == 0 || c->closing)
        return;
    if (!c->t) {
        /* idle: the server closed it, or sent what nobody asked for */
        ar_list_remove(&c->in_pool);
        ar_list_remove(&c->lru);
        up->h1_idle_cnt--;
        conn_close(c);
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF)
            conn_eof(c);
        else
            conn_failed(c, (int)nread, "upstream read failed");
        settle(up);
        return;
    }
    c->got_bytes = true;
    conn_parse(c, buf->base, (size_t)nread);
    settle(up);
}

/* ---- the request ---- */

/* Whether a header line carries no value: curl's way of saying "do not send this one". */
static bool line_is_removal(const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon)
        return true;
    for (const char *q = colon + 1; *q; q++) {
        if (*q != ' ' && *q != '\t')
            return false;
    }
    return true;
}

static bool line_is(const char *line, const char *name, size_t n)
{
    return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static int build_head(h1_conn_t *c, ar_transfer_t *t)
{
    const ar_http_req_t *req = t->req;
    ar_buf_t *b = &c->out;
    ar_buf_reset(b);
    bool own_host = false;
    int rc = ar_buf_appendf(b, "%s %s HTTP/1.1\r\n", req->method, t->path);
    for (size_t i = 0; i < req->headers_cnt && !rc; i++) {
        const char *line = req->headers[i];
        /* the body is framed here; a configured Content-Length could only break it */
        if (line_is_removal(line) || line_is(line, "content-length", 14) ||
            line_is(line, "transfer-encoding", 17))
            continue;
        own_host = own_host || line_is(line, "host", 4);
        rc = ar_buf_append(b, line, strlen(line));
        rc = rc ? rc : ar_buf_append(b, "\r\n", 2);
    }
    if (!rc && !own_host)
        rc = ar_buf_append(b, c->pool->host_line, strlen(c->pool->host_line));
    if (!rc && (req->body.len || strcmp(req->method, "GET") != 0))
        rc = ar_buf_appendf(b, "Content-Length: %zu\r\n", req->body.len);
    return rc ? rc : ar_buf_append(b, "\r\n", 2);
}

static void on_written(uv_write_t *req, int status)
{
    h1_write_t *w = req->data;
    h1_conn_t *c = w->c;
    uint64_t seq = w->seq;
    w->busy = false;
    if (w->heap)
        ar_free(w);
    if (c->closing || seq != c->seq || !c->t)
        return; /* an earlier request's write, or nobody waits for it any more */
    if (status < 0) {
        conn_failed(c, status, "sending the request failed");
        settle(c->up);
        return;
    }
    c->t->req_sent = true;
}

static void start_reading(h1_conn_t *c)
{
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

static void conn_send(h1_conn_t *c)
{
    ar_transfer_t *t = c->t;
    int rc = build_head(c, t);
    if (rc) {
        conn_close(c);
        transfer_fail(t, rc, "cannot build the request head");
        return;
    }
    h1_write_t *w = !c->writes[0].busy ? &c->writes[0] : !c->writes[1].busy ? &c->writes[1] : NULL;
    if (!w) {
        w = ar_xcalloc(1, sizeof(*w));
        w->heap = true;
    }
    c->got_bytes = false;
    c->msg_done = false;
    c->keep_alive = false;
    c->hstate = 0;
    llhttp_init(&c->parser, HTTP_RESPONSE, &settings);
    c->parser.data = c;
    start_reading(c);
    uv_buf_t bufs[2] = {uv_buf_init(c->out.ptr, (unsigned)c->out.len),
                        uv_buf_init((char *)t->req->body.ptr, (unsigned)t->req->body.len)};
    w->req.data = w;
    w->c = c;
    w->seq = ++c->seq;
    w->busy = true;
    int uvrc =
        uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, t->req->body.len ? 2 : 1, on_written);
    if (uvrc != 0) {
        w->busy = false;
        if (w->heap)
            ar_free(w);
        conn_failed(c, uvrc, "sending the request failed");
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0)
        t->req_sent = true; /* all of it went out at once */
}

static void on_connected(uv_connect_t *req, int status)
{
    h1_conn_t *c = req->data;
    if (c->closing)
        return;
    uv_timer_stop(&c->connect_timer);
    if (status < 0) {
        ar_transfer_t *t = c->t;
        char detail[160];
        snprintf(detail, sizeof(detail), "cannot connect to %s port %d: %s", c->pool->host,
                 c->pool->port, uv_strerror(status));
        ar_upstream_t *up = c->up;
        if (connect_next(c, t))
            return;
        if (t) {
            transfer_fail(t, map_uv_err(status, AR_ECONNREFUSED), detail);
            settle(up);
        }
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 60);
    if (c->t)
        conn_send(c);
}

static int conn_connect(h1_conn_t *c, ar_transfer_t *t)
{
    c->connect_req.data = c;
    int uvrc = uv_tcp_connect(&c->connect_req, &c->tcp,
                              (struct sockaddr *)&c->pool->addrs[c->addr_idx], on_connected);
    if (uvrc != 0) {
        conn_close(c);
        return map_uv_err(uvrc, AR_ECONNREFUSED);
    }
    uv_timer_start(&c->connect_timer, on_connect_timeout, (uint64_t)t->connect_timeout_ms, 0);
    return 0;
}

/* Puts t on a connection of pool: an idle one (unless fresh_only), else a new one. */
static int conn_begin(ar_transfer_t *t, h1_pool_t *pool, bool fresh_only)
{
    ar_upstream_t *up = t->up;
    h1_conn_t *c = fresh_only ? NULL : pool_take(up, pool);
    if (c) {
        c->t = t;
        t->conn = c;
        conn_send(c);
        return 0;
    }
    c = conn_new(up, pool);
    c->t = t;
    t->conn = c;
    return conn_connect(c, t);
}

/* ---- name lookup ---- */

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    h1_dns_t *d = req->data;
    ar_transfer_t *t = d->t;
    ar_upstream_t *up = d->up;
    int n = 0;
    for (struct addrinfo *a = status == 0 ? res : NULL; a && n < H1_ADDRS_MAX; a = a->ai_next) {
        if (a->ai_addrlen <= sizeof(d->pool->addrs[0]))
            memcpy(&d->pool->addrs[n++], a->ai_addr, a->ai_addrlen);
    }
    if (n) {
        d->pool->addrs_cnt = n;
        d->pool->resolved = true;
        d->pool->resolved_ms = uv_now(up->loop);
    }
    uv_freeaddrinfo(res);
    if (t) {
        t->dns = NULL;
        if (!d->pool->resolved) {
            char detail[160];
            snprintf(detail, sizeof(detail), "could not resolve host %s: %s", d->pool->host,
                     uv_strerror(status ? status : UV_EAI_NONAME));
            transfer_fail(t, AR_EDNS, detail);
        } else {
            int rc = conn_begin(t, d->pool, false);
            if (rc)
                transfer_fail(t, rc, "cannot open an upstream connection");
        }
        settle(up);
    }
    ar_free(d);
    ar_upstream__handle_gone(up);
}

static int resolve(ar_upstream_t *up, ar_transfer_t *t, h1_pool_t *pool)
{
    h1_dns_t *d = ar_xcalloc(1, sizeof(*d));
    d->t = t;
    d->up = up;
    d->pool = pool;
    d->req.data = d;
    char port[8];
    snprintf(port, sizeof(port), "%d", pool->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(up->loop, &d->req, on_resolved, pool->host, port, &hints);
    if (rc != 0) {
        ar_free(d);
        return AR_EDNS;
    }
    up->handles_open++; /* the lookup holds the client until its callback */
    t->dns = d;
    return 0;
}

/* ---- transfer.c's entry points ---- */

/* http:// URLs that parse here, whose authority is followed by a path or nothing. Any
 * other (https, user info, which curl sends as Basic credentials, a query right after the
 * authority, a malformed port) is declined and stays on curl, which reports it as it always
 * has. */
int ar_h1__start(ar_upstream_t *up, ar_transfer_t *t, const ar_http_req_t *req)
{
    if (strncmp(req->url, "http://", 7) != 0)
        return AR_H1_DECLINED;
    const char *authority = req->url + 7;
    size_t n = strcspn(authority, "/?#@");
    char host[256];
    int port;
    const char *path;
    if ((authority[n] != '\0' && authority[n] != '/') ||
        parse_url(req->url, host, sizeof(host), &port, &path) != 0)
        return AR_H1_DECLINED;
    pthread_once(&settings_once, settings_init);
    t->req = req;
    t->path = path;
    t->conn = NULL;
    t->dns = NULL;
    t->retries = 0;
    t->pend_body = 0;
    ar_buf_reset(&t->pend);
    h1_pool_t *pool = pool_get(up, host, port, strchr(host, ':') != NULL);
    if (!pool_address_fresh(up, pool))
        return resolve(up, t, pool);
    return conn_begin(t, pool, false);
}

void ar_h1__detach(ar_transfer_t *t)
{
    if (t->dns) {
        t->dns->t = NULL;
        uv_cancel((uv_req_t *)&t->dns->req);
        t->dns = NULL;
    }
    h1_conn_t *c = t->conn;
    if (!c)
        return;
    c->t = NULL;
    t->conn = NULL;
    /* reusable when the answer is whole and all of the request went out */
    if (c->msg_done && !t->paused && !c->closing &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0)
        pool_put(c);
    else
        conn_close(c);
}

void ar_h1__resume(ar_transfer_t *t)
{
    h1_conn_t *c = t->conn;
    if (!c)
        return;
    ar_upstream_t *up = t->up;
    /* pend holds the refused body bytes, then the input the parser has not seen */
    ar_buf_t held = t->pend;
    size_t body = t->pend_body;
    ar_buf_init(&t->pend, H1_READ_BYTES);
    t->pend_body = 0;
    up->in_curl++;
    int rc = deliver_body(t, held.ptr, body);
    up->in_curl--;
    if (t->cancelled || rc) {
        if (rc == AR_EAGAIN && !t->cancelled) {
            t->pend = held; /* still no room: keep all of it */
            t->pend_body = body;
            return;
        }
        ar_buf_dispose(&held);
        if (!t->cancelled) {
            conn_close(c);
            transfer_fail(t, rc, ar_err_message(rc));
        }
        settle(up);
        return;
    }
    llhttp_resume(&c->parser);
    conn_parse(c, held.ptr + body, held.len - body);
    ar_buf_dispose(&held);
    if (!c->closing && (c->t == t ? !t->paused : !c->t))
        start_reading(c); /* still answering, or back in the pool */
    settle(up);
}

void ar_h1__close_all(ar_upstream_t *up)
{
    while (!ar_list_empty(&up->h1_conns)) {
        h1_conn_t *c = ar_container_of(up->h1_conns.next, h1_conn_t, all);
        ar_list_remove(&c->in_pool);
        ar_list_remove(&c->lru);
        conn_close(c);
    }
    up->h1_idle_cnt = 0;
}

void ar_h1__dispose(ar_upstream_t *up)
{
    for (size_t i = 0; i < up->pools_cnt; i++) {
        ar_free(up->pools[i]->host);
        ar_free(up->pools[i]->host_line);
        ar_free(up->pools[i]);
    }
    ar_free(up->pools);
    ar_free(up->h1_rbuf);
}
