/*
 * server_fixture.h: what the tests of src/server over real sockets share. A test starts a
 * one-worker server on 127.0.0.1 port 0 with small limits, talks raw HTTP/1.x to it with
 * blocking libc sockets, and stops it again, so cmocka's leak check covers the whole server.
 * The test thread only does socket I/O while the server runs; the worker thread's handler
 * records what it saw in counters guarded by a mutex, which the test waits on. Include it
 * first, once per test program: it includes <cmocka.h> and defines cmocka's allocator
 * entry points.
 *
 * cmocka's checked allocator is not thread-safe. The worker allocates, and so does the
 * test thread when it posts to the worker (ar_server_drain, ar_server_cancel_all,
 * ar_server_stop), so this file takes the locked front of tests/unit/alloc_mt.h.
 */
#ifndef AR_TESTS_SERVER_FIXTURE_H
#define AR_TESTS_SERVER_FIXTURE_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/pool.h"
#include "server/server.h"

/* cmocka's allocator made thread-safe: the worker allocates, and so does the test thread */
#include "../alloc_mt.h"

/* ---- what the handler saw (written on the worker, read by the test) ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int requests;        /* on_request calls */
    int aborts_canceled; /* on_abort(AR_ECANCELED) */
    int aborts_shutdown; /* on_abort(AR_ESHUTDOWN) */
    int aborts_other;
    int released;     /* request pools released (cleanup ran) */
    int stream_ended; /* /stream called ar_http_end_stream */
} H = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static inline void bump(int *field)
{
    pthread_mutex_lock(&H.mu);
    (*field)++;
    pthread_cond_broadcast(&H.cv);
    pthread_mutex_unlock(&H.mu);
}

static inline int get(const int *field)
{
    pthread_mutex_lock(&H.mu);
    int v = *field;
    pthread_mutex_unlock(&H.mu);
    return v;
}

/* Waits until *field >= want or ms pass. @return the final value. */
static inline int wait_for(const int *field, int want, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&H.mu);
    while (*field < want) {
        if (pthread_cond_timedwait(&H.cv, &H.mu, &dl) == ETIMEDOUT)
            break;
    }
    int v = *field;
    pthread_mutex_unlock(&H.mu);
    return v;
}

static inline void reset_counters(void)
{
    pthread_mutex_lock(&H.mu);
    H.requests = H.aborts_canceled = H.aborts_shutdown = H.aborts_other = 0;
    H.released = H.stream_ended = 0;
    pthread_mutex_unlock(&H.mu);
}

/* ---- the test handler (worker thread) ---- */

typedef struct htimer {
    uv_timer_t t;
    ar_http_request_t *req;
    int step;
} htimer_t;

static inline void on_release(void *arg)
{
    (void)arg;
    bump(&H.released);
}

static inline void on_timer_closed(uv_handle_t *h)
{
    htimer_t *ht = h->data;
    ar_http_unref(ht->req); /* may free the pool holding ht: nothing touches it after */
}

/* Runs cb(ht) after ms on the request's worker loop, holding a request reference. */
static inline void start_timer(ar_http_request_t *req, uint64_t ms, uv_timer_cb cb)
{
    htimer_t *ht = ar_pool_calloc(req->pool, sizeof(*ht));
    ht->req = req;
    uv_timer_init(req->worker->loop, &ht->t);
    ht->t.data = ht;
    ar_http_ref(req);
    uv_timer_start(&ht->t, cb, ms, 0);
}

static inline void timer_done(htimer_t *ht)
{
    uv_close((uv_handle_t *)&ht->t, on_timer_closed);
}

static inline void respond_default(ar_http_request_t *req)
{
    const char *body = ar_pool_printf(
        req->pool, "{\"path\":\"%.*s\",\"method\":\"%.*s\",\"body_len\":%zu,\"rid\":\"%s\"}",
        AR_SPAN_FMT(req->path), AR_SPAN_FMT(req->method_name), req->body.len, req->request_id);
    ar_http_respond_json(req, 200, NULL, 0, ar_span_cstr(body));
}

static inline void on_late(uv_timer_t *t)
{
    htimer_t *ht = t->data;
    respond_default(ht->req);
    timer_done(ht);
}

static inline void on_stream_step(uv_timer_t *t)
{
    htimer_t *ht = t->data;
    ar_http_request_t *req = ht->req;
    if (++ht->step == 1) {
        if (ar_http_write(req, AR_LIT("data: two\n\n")) == 0)
            ar_http_flush(req);
        uv_timer_start(&ht->t, on_stream_step, 50, 0);
        return;
    }
    (void)ar_http_write(req, AR_LIT("data: three\n\n"));
    bump(&H.stream_ended); /* before the bytes go out: the test reads it after chunk 1 */
    ar_http_end_stream(req);
    timer_done(ht);
}

static inline void on_abort(ar_http_request_t *req, int reason)
{
    if (reason == AR_ECANCELED) {
        bump(&H.aborts_canceled);
    } else if (reason == AR_ESHUTDOWN) {
        bump(&H.aborts_shutdown);
        ar_span_t body = AR_LIT("{\"statusCode\":503,\"message\":\"Request cancelled: server "
                                "is shutting down\",\"error\":\"Service Unavailable\"}");
        ar_http_respond_json(req, 503, NULL, 0, body);
    } else {
        bump(&H.aborts_other);
    }
}

#define BIG_PIECE (64u * 1024u)
#define BIG_TOTAL ((size_t)1 << 30)
static char big_piece[BIG_PIECE];

/* Streams BIG_TOTAL bytes, pausing above the high-water mark until on_drain. */
static inline void big_pump(ar_http_request_t *req)
{
    size_t *sent = req->data;
    while (*sent < BIG_TOTAL && !ar_http_aborted(req)) {
        if (ar_http_write(req, ar_span(big_piece, BIG_PIECE)) != 0)
            return;
        *sent += BIG_PIECE;
        if (ar_http_flush(req) > AR_HTTP_HIGH_WATER)
            return; /* on_drain resumes */
    }
    if (!ar_http_aborted(req))
        ar_http_end_stream(req);
}

#define BLOB_BYTES ((size_t)16 << 20)
static char blob[BLOB_BYTES];

static inline void on_request(ar_http_request_t *req)
{
    bump(&H.requests);
    ar_pool_cleanup_add(req->pool, on_release, NULL);
    req->on_abort = on_abort;
    if (ar_span_eq(req->path, AR_LIT("/never")))
        return;
    if (ar_span_eq(req->path, AR_LIT("/late"))) {
        start_timer(req, 100, on_late);
        return;
    }
    if (ar_span_eq(req->path, AR_LIT("/stream"))) {
        ar_http_header_t h = {AR_LIT("Content-Type"), AR_LIT("text/event-stream")};
        ar_http_start_stream(req, 200, &h, 1);
        if (ar_http_write(req, AR_LIT("data: one\n\n")) == 0)
            ar_http_flush(req);
        start_timer(req, 50, on_stream_step);
        return;
    }
    if (ar_span_eq(req->path, AR_LIT("/big"))) {
        req->data = ar_pool_calloc(req->pool, sizeof(size_t));
        req->on_drain = big_pump;
        ar_http_start_stream(req, 200, NULL, 0);
        big_pump(req);
        return;
    }
    if (ar_span_eq(req->path, AR_LIT("/blob"))) {
        ar_http_respond(req, 200, NULL, 0, ar_span(blob, BLOB_BYTES));
        return;
    }
    if (ar_span_eq(req->path, AR_LIT("/inject"))) {
        /* header values and names a careless handler might pass on from its input */
        ar_http_header_t hs[] = {
            {AR_LIT("x-model"), AR_LIT("a\r\nSet-Cookie: a=1")},
            {AR_LIT("x-nul"), ar_span("b\0c", 3)},
            {AR_LIT("x-lf"), AR_LIT("d\ne")},
            {AR_LIT("x-bad name"), AR_LIT("f")},
            {AR_LIT("x-tab"), AR_LIT("g\th")},
        };
        ar_http_respond_json(req, 200, hs, AR_ARRAY_CNT(hs), AR_LIT("{}"));
        return;
    }
    if (ar_span_eq(req->path, AR_LIT("/echo"))) {
        ar_http_respond(req, 200, NULL, 0, req->body);
        return;
    }
    respond_default(req);
}

/* ---- server fixture ---- */

static ar_server_t *srv;
static int port;

/* The options every test starts from: one worker on 127.0.0.1, an ephemeral port, small
 * limits. */
static inline ar_server_opts_t fx_opts(int64_t idle_ms, int64_t write_ms)
{
    ar_server_opts_t o = {
        .host = "127.0.0.1",
        .port = 0,
        .workers = 1,
        .max_body_bytes = 1024,
        .max_header_bytes = 4096,
        .idle_timeout_ms = idle_ms,
        .write_timeout_ms = write_ms,
    };
    return o;
}

/* Starts srv with o and cbs (NULL: the handler above) and sets port. */
static inline void start_server_with(const ar_server_opts_t *o, const ar_server_cbs_t *cbs)
{
    reset_counters();
    ar_server_cbs_t def = {.on_request = on_request};
    srv = ar_server_create(o, cbs ? cbs : &def);
    char err[256] = "";
    int rc = ar_server_start(srv, err, sizeof(err));
    if (rc)
        print_message("start: %s\n", err);
    assert_int_equal(rc, 0);
    port = ar_server_port(srv);
    assert_true(port > 0);
}

static inline void start_server_w(int64_t idle_ms, int64_t write_ms)
{
    ar_server_opts_t o = fx_opts(idle_ms, write_ms);
    start_server_with(&o, NULL);
}

static inline void start_server(int64_t idle_ms)
{
    start_server_w(idle_ms, 300);
}

static inline void stop_server(void)
{
    ar_server_stop(srv);
    ar_server_destroy(srv);
    srv = NULL;
}

/* ---- a raw HTTP client ---- */

#define CLI_BUF (512u * 1024u)

typedef struct client {
    int fd;
    char *buf;  /* the unread bytes start here, inside store */
    size_t len; /* unread bytes */
    char store[CLI_BUF];
} client_t;

typedef struct resp {
    int status;
    int minor;
    char head[8192];
    size_t head_len;
    bool chunked;
    int chunks;
    size_t body_len;
    char body[64 * 1024];
} resp_t;

static client_t clients[4];
static resp_t R;

static inline void set_timeout(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Connects; @return the socket, or -errno. */
static inline int try_connect(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    set_timeout(fd, 3000);
    return fd;
}

static inline client_t *cli_open_buf(int i, int rcvbuf)
{
    client_t *c = &clients[i];
    c->buf = c->store;
    c->len = 0;
    c->fd = try_connect(rcvbuf);
    assert_true(c->fd >= 0);
    return c;
}

static inline client_t *cli_open(int i)
{
    return cli_open_buf(i, 0);
}

static inline void cli_close(client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static inline int cli_send(client_t *c, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static inline void cli_send_str(client_t *c, const char *s)
{
    assert_int_equal(cli_send(c, s, strlen(s)), 0);
}

/* Reads more bytes. @return >0 bytes read, 0 at EOF, -1 on error or timeout. */
static inline int cli_fill(client_t *c)
{
    if (c->len == CLI_BUF)
        return -1;
    if (c->buf + c->len == c->store + CLI_BUF) {
        memmove(c->store, c->buf, c->len);
        c->buf = c->store;
    }
    for (;;) {
        size_t room = (size_t)(c->store + CLI_BUF - (c->buf + c->len));
        ssize_t n = recv(c->fd, c->buf + c->len, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            c->len += (size_t)n;
        return n < 0 ? -1 : (int)n;
    }
}

static inline void cli_consume(client_t *c, size_t n)
{
    c->buf += n;
    c->len -= n;
    if (c->len == 0)
        c->buf = c->store;
}

/* Forgets everything buffered (for readers that only count bytes). */
static inline void cli_discard(client_t *c)
{
    c->buf = c->store;
    c->len = 0;
}

/* Ensures n bytes are buffered. @return 0 or -1. */
static inline int cli_need(client_t *c, size_t n)
{
    while (c->len < n) {
        if (cli_fill(c) <= 0)
            return -1;
    }
    return 0;
}

/* Finds the end of the next CRLF-terminated line; @return its length without CRLF. */
static inline long cli_line(client_t *c)
{
    for (;;) {
        char *e = memmem(c->buf, c->len, "\r\n", 2);
        if (e)
            return e - c->buf;
        if (cli_fill(c) <= 0)
            return -1;
    }
}

/* True when the server closed the connection (EOF or reset) within the timeout, with no
 * further bytes. */
static inline bool cli_eof(client_t *c)
{
    if (c->len)
        return false;
    int n = cli_fill(c);
    if (n == 0)
        return true;
    return n < 0 && errno == ECONNRESET;
}

/* The value of header name in r (case-insensitive), NUL-terminated into out. */
static inline bool resp_hdr(const resp_t *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = r->head;
    const char *end = r->head + r->head_len;
    p = memmem(p, (size_t)(end - p), "\r\n", 2); /* skip the status line */
    while (p && p + 2 < end) {
        p += 2;
        const char *e = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!e)
            e = end;
        if ((size_t)(e - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < e && *v == ' ')
                v++;
            size_t vl = (size_t)(e - v);
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        p = e;
    }
    return false;
}

static inline bool resp_has(const resp_t *r, const char *name)
{
    char v[8];
    return resp_hdr(r, name, v, sizeof(v));
}

static inline bool hdr_is(const resp_t *r, const char *name, const char *want)
{
    char v[1024];
    return resp_hdr(r, name, v, sizeof(v)) && strcasecmp(v, want) == 0;
}

/* Reads a status line and headers into r. @return 0 or -1. */
static inline int read_head(client_t *c, resp_t *r)
{
    memset(r, 0, offsetof(resp_t, body));
    char *e;
    for (;;) {
        e = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (e)
            break;
        if (cli_fill(c) <= 0)
            return -1;
    }
    size_t hl = (size_t)(e - c->buf) + 4;
    if (hl > sizeof(r->head) || sscanf(c->buf, "HTTP/1.%d %d", &r->minor, &r->status) != 2)
        return -1;
    memcpy(r->head, c->buf, hl);
    r->head_len = hl;
    cli_consume(c, hl);
    r->chunked = hdr_is(r, "transfer-encoding", "chunked");
    return 0;
}

/* Reads one chunk of a chunked body, appending it to r->body.
 * @return the chunk size (0 for the last chunk), or -1 on bad framing. */
static inline long read_chunk(client_t *c, resp_t *r)
{
    long ll = cli_line(c);
    if (ll <= 0)
        return -1;
    char *endp;
    long size = strtol(c->buf, &endp, 16);
    if (endp != c->buf + ll || size < 0)
        return -1; /* exactly hex digits, no extensions from us */
    cli_consume(c, (size_t)ll + 2);
    if (cli_need(c, (size_t)size + 2) != 0)
        return -1;
    if (c->buf[size] != '\r' || c->buf[size + 1] != '\n')
        return -1;
    if (r->body_len + (size_t)size > sizeof(r->body))
        return -1;
    memcpy(r->body + r->body_len, c->buf, (size_t)size);
    r->body_len += (size_t)size;
    cli_consume(c, (size_t)size + 2);
    if (size)
        r->chunks++;
    return size;
}

/* Reads one whole response (a 1xx is returned alone). @return 0 or -1. */
static inline int read_response(client_t *c, resp_t *r)
{
    if (read_head(c, r) != 0)
        return -1;
    r->body_len = 0;
    r->body[0] = '\0';
    if (r->status < 200)
        return 0;
    if (r->chunked) {
        long n;
        do {
            n = read_chunk(c, r);
            if (n < 0)
                return -1;
        } while (n > 0);
    } else {
        char v[32];
        if (!resp_hdr(r, "content-length", v, sizeof(v)))
            return -1; /* the server always frames its answers */
        size_t cl = strtoul(v, NULL, 10);
        if (cl >= sizeof(r->body) || cli_need(c, cl) != 0)
            return -1;
        memcpy(r->body, c->buf, cl);
        r->body_len = cl;
        cli_consume(c, cl);
    }
    r->body[r->body_len] = '\0';
    return 0;
}

/* Sends req, reads one response into R and checks its status. */
static inline void roundtrip(client_t *c, const char *req, int status)
{
    cli_send_str(c, req);
    assert_int_equal(read_response(c, &R), 0);
    if (R.status != status)
        print_message("got %d: %.*s%s\n", R.status, (int)R.head_len, R.head, R.body);
    assert_int_equal(R.status, status);
}

/* A fresh connection is served: the server survived whatever came before. */
static inline void assert_serves(void)
{
    client_t *c = cli_open(3);
    roundtrip(c, "GET /alive HTTP/1.1\r\nHost: t\r\n\r\n", 200);
    assert_non_null(strstr(R.body, "\"path\":\"/alive\""));
    cli_close(c);
}

/* The response in R is a JSON error that closes the connection, and the socket did close. */
static inline void assert_error_close(client_t *c, int status)
{
    assert_int_equal(R.status, status);
    assert_true(hdr_is(&R, "connection", "close"));
    assert_true(hdr_is(&R, "content-type", "application/json"));
    char rid[64];
    assert_true(resp_hdr(&R, "x-request-id", rid, sizeof(rid)));
    assert_true(rid[0] != '\0');
    assert_non_null(strstr(R.body, "{\"error\":{\"message\":"));
    assert_true(cli_eof(c));
}

/* The "rid" field of the default JSON answer in R. */
static inline void body_rid(char *out, size_t outlen)
{
    const char *p = strstr(R.body, "\"rid\":\"");
    assert_non_null(p);
    p += 7;
    const char *e = strchr(p, '"');
    assert_non_null(e);
    size_t n = (size_t)(e - p);
    assert_true(n < outlen);
    memcpy(out, p, n);
    out[n] = '\0';
}

#endif
