/*
 * test_http1.c: end-to-end tests of src/server over real loopback sockets. Each test starts
 * a one-worker server on 127.0.0.1 port 0 with small limits, talks raw HTTP/1.x to it with
 * blocking libc sockets, and stops it again, so cmocka's leak check covers the whole server.
 * The test thread only does socket I/O while the server runs; the worker thread's handler
 * records what it saw in counters guarded by a mutex, which the test waits on.
 *
 * cmocka's checked allocator keeps one global list and is not thread-safe. The worker
 * allocates, and so does the test thread when it posts to the worker (ar_server_drain,
 * ar_server_cancel_all, ar_server_stop), so this file interposes _test_malloc and friends
 * with versions that hold one lock around the real ones.
 */
#include <dlfcn.h>
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

/* ---- a thread-safe front for cmocka's allocator ---- */

static pthread_mutex_t alloc_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

typedef void *(*malloc_fn)(const size_t, const char *, const int);
typedef void *(*calloc_fn)(const size_t, const size_t, const char *, const int);
typedef void *(*realloc_fn)(void *, const size_t, const char *, const int);
typedef void (*free_fn)(void *const, const char *, const int);

static void *real_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        fprintf(stderr, "cannot find %s in libcmocka\n", name);
        abort();
    }
    return p;
}

void *_test_malloc(const size_t size, const char *file, const int line)
{
    static malloc_fn real;
    pthread_mutex_lock(&alloc_mu);
    if (!real)
        real = (malloc_fn)real_sym("_test_malloc");
    void *p = real(size, file, line);
    pthread_mutex_unlock(&alloc_mu);
    return p;
}

void *_test_calloc(const size_t n, const size_t size, const char *file, const int line)
{
    static calloc_fn real;
    pthread_mutex_lock(&alloc_mu);
    if (!real)
        real = (calloc_fn)real_sym("_test_calloc");
    void *p = real(n, size, file, line);
    pthread_mutex_unlock(&alloc_mu);
    return p;
}

void *_test_realloc(void *ptr, const size_t size, const char *file, const int line)
{
    static realloc_fn real;
    pthread_mutex_lock(&alloc_mu);
    if (!real)
        real = (realloc_fn)real_sym("_test_realloc");
    void *p = real(ptr, size, file, line);
    pthread_mutex_unlock(&alloc_mu);
    return p;
}

void _test_free(void *const ptr, const char *file, const int line)
{
    static free_fn real;
    pthread_mutex_lock(&alloc_mu);
    if (!real)
        real = (free_fn)real_sym("_test_free");
    real(ptr, file, line);
    pthread_mutex_unlock(&alloc_mu);
}

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

static void bump(int *field)
{
    pthread_mutex_lock(&H.mu);
    (*field)++;
    pthread_cond_broadcast(&H.cv);
    pthread_mutex_unlock(&H.mu);
}

static int get(const int *field)
{
    pthread_mutex_lock(&H.mu);
    int v = *field;
    pthread_mutex_unlock(&H.mu);
    return v;
}

/* Waits until *field >= want or ms pass. @return the final value. */
static int wait_for(const int *field, int want, int ms)
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

static void reset_counters(void)
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

static void on_release(void *arg)
{
    (void)arg;
    bump(&H.released);
}

static void on_timer_closed(uv_handle_t *h)
{
    htimer_t *ht = h->data;
    ar_http_unref(ht->req); /* may free the pool holding ht: nothing touches it after */
}

/* Runs cb(ht) after ms on the request's worker loop, holding a request reference. */
static void start_timer(ar_http_request_t *req, uint64_t ms, uv_timer_cb cb)
{
    htimer_t *ht = ar_pool_calloc(req->pool, sizeof(*ht));
    ht->req = req;
    uv_timer_init(req->worker->loop, &ht->t);
    ht->t.data = ht;
    ar_http_ref(req);
    uv_timer_start(&ht->t, cb, ms, 0);
}

static void timer_done(htimer_t *ht)
{
    uv_close((uv_handle_t *)&ht->t, on_timer_closed);
}

static void respond_default(ar_http_request_t *req)
{
    const char *body = ar_pool_printf(
        req->pool, "{\"path\":\"%.*s\",\"method\":\"%.*s\",\"body_len\":%zu,\"rid\":\"%s\"}",
        AR_SPAN_FMT(req->path), AR_SPAN_FMT(req->method_name), req->body.len, req->request_id);
    ar_http_respond_json(req, 200, NULL, 0, ar_span_cstr(body));
}

static void on_late(uv_timer_t *t)
{
    htimer_t *ht = t->data;
    respond_default(ht->req);
    timer_done(ht);
}

static void on_stream_step(uv_timer_t *t)
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

static void on_abort(ar_http_request_t *req, int reason)
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
static void big_pump(ar_http_request_t *req)
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

static void on_request(ar_http_request_t *req)
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

static void start_server_w(int64_t idle_ms, int64_t write_ms)
{
    reset_counters();
    ar_server_opts_t o = {
        .host = "127.0.0.1",
        .port = 0,
        .workers = 1,
        .max_body_bytes = 1024,
        .max_header_bytes = 4096,
        .idle_timeout_ms = idle_ms,
        .write_timeout_ms = write_ms,
    };
    ar_server_cbs_t cbs = {.on_request = on_request};
    srv = ar_server_create(&o, &cbs);
    char err[256] = "";
    int rc = ar_server_start(srv, err, sizeof(err));
    if (rc)
        print_message("start: %s\n", err);
    assert_int_equal(rc, 0);
    port = ar_server_port(srv);
    assert_true(port > 0);
}

static void start_server(int64_t idle_ms)
{
    start_server_w(idle_ms, 300);
}

static void stop_server(void)
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

static void set_timeout(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Connects; @return the socket, or -errno. */
static int try_connect(int rcvbuf)
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

static client_t *cli_open_buf(int i, int rcvbuf)
{
    client_t *c = &clients[i];
    c->buf = c->store;
    c->len = 0;
    c->fd = try_connect(rcvbuf);
    assert_true(c->fd >= 0);
    return c;
}

static client_t *cli_open(int i)
{
    return cli_open_buf(i, 0);
}

static void cli_close(client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int cli_send(client_t *c, const void *p, size_t n)
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

static void cli_send_str(client_t *c, const char *s)
{
    assert_int_equal(cli_send(c, s, strlen(s)), 0);
}

/* Reads more bytes. @return >0 bytes read, 0 at EOF, -1 on error or timeout. */
static int cli_fill(client_t *c)
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

static void cli_consume(client_t *c, size_t n)
{
    c->buf += n;
    c->len -= n;
    if (c->len == 0)
        c->buf = c->store;
}

/* Forgets everything buffered (for readers that only count bytes). */
static void cli_discard(client_t *c)
{
    c->buf = c->store;
    c->len = 0;
}

/* Ensures n bytes are buffered. @return 0 or -1. */
static int cli_need(client_t *c, size_t n)
{
    while (c->len < n) {
        if (cli_fill(c) <= 0)
            return -1;
    }
    return 0;
}

/* Finds the end of the next CRLF-terminated line; @return its length without CRLF. */
static long cli_line(client_t *c)
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
static bool cli_eof(client_t *c)
{
    if (c->len)
        return false;
    int n = cli_fill(c);
    if (n == 0)
        return true;
    return n < 0 && errno == ECONNRESET;
}

/* The value of header name in r (case-insensitive), NUL-terminated into out. */
static bool resp_hdr(const resp_t *r, const char *name, char *out, size_t outlen)
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

static bool resp_has(const resp_t *r, const char *name)
{
    char v[8];
    return resp_hdr(r, name, v, sizeof(v));
}

static bool hdr_is(const resp_t *r, const char *name, const char *want)
{
    char v[1024];
    return resp_hdr(r, name, v, sizeof(v)) && strcasecmp(v, want) == 0;
}

/* Reads a status line and headers into r. @return 0 or -1. */
static int read_head(client_t *c, resp_t *r)
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
static long read_chunk(client_t *c, resp_t *r)
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
static int read_response(client_t *c, resp_t *r)
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
static void roundtrip(client_t *c, const char *req, int status)
{
    cli_send_str(c, req);
    assert_int_equal(read_response(c, &R), 0);
    if (R.status != status)
        print_message("got %d: %.*s%s\n", R.status, (int)R.head_len, R.head, R.body);
    assert_int_equal(R.status, status);
}

/* A fresh connection is served: the server survived whatever came before. */
static void assert_serves(void)
{
    client_t *c = cli_open(3);
    roundtrip(c, "GET /alive HTTP/1.1\r\nHost: t\r\n\r\n", 200);
    assert_non_null(strstr(R.body, "\"path\":\"/alive\""));
    cli_close(c);
}

/* The response in R is a JSON error that closes the connection, and the socket did close. */
static void assert_error_close(client_t *c, int status)
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
static void body_rid(char *out, size_t outlen)
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

/* ---- tests ---- */

static void test_get_and_post(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    roundtrip(c, "GET /hello?x=1&y=2 HTTP/1.1\r\nHost: t\r\n\r\n", 200);
    assert_int_equal(R.minor, 1);
    assert_non_null(strstr(R.body, "\"path\":\"/hello\""));
    assert_non_null(strstr(R.body, "\"method\":\"GET\""));
    assert_non_null(strstr(R.body, "\"body_len\":0"));
    assert_true(hdr_is(&R, "content-type", "application/json"));
    assert_true(resp_has(&R, "date"));
    assert_false(resp_has(&R, "connection")); /* HTTP/1.1 keep-alive is the default */

    roundtrip(c,
              "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n"
              "Content-Type: text/plain\r\n\r\nhello world",
              200);
    assert_non_null(strstr(R.body, "\"method\":\"POST\""));
    assert_non_null(strstr(R.body, "\"body_len\":11"));

    /* The body is delivered byte for byte, even when it arrives in pieces. */
    cli_send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234");
    cli_send_str(c, "56789");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "0123456789");

    /* A body of exactly max_body_bytes is accepted. */
    char req[2048];
    int n = snprintf(req, sizeof(req), "POST /p HTTP/1.1\r\nContent-Length: 1024\r\n\r\n");
    memset(req + n, 'a', 1024);
    req[n + 1024] = '\0';
    roundtrip(c, req, 200);
    assert_non_null(strstr(R.body, "\"body_len\":1024"));
    cli_close(c);
    stop_server();
    assert_int_equal(H.requests, 4);
    assert_int_equal(H.released, 4);
}

static void test_header_injection_refused(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    roundtrip(c, "GET /inject HTTP/1.1\r\nHost: t\r\n\r\n", 200);
    assert_false(resp_has(&R, "set-cookie"));
    assert_false(resp_has(&R, "x-model"));
    assert_false(resp_has(&R, "x-nul"));
    assert_false(resp_has(&R, "x-lf"));
    assert_null(strstr(R.head, "x-bad"));
    assert_true(hdr_is(&R, "x-tab", "g\th")); /* a tab is allowed in a value */
    assert_true(hdr_is(&R, "content-type", "application/json"));
    /* the connection is still in sync: the next answer parses */
    roundtrip(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 200);
    cli_close(c);
    stop_server();
}

static void test_chunked_body(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\nhello\r\n1;ext=1\r\n \r\nb\r\nchunked wor\r\n2\r\nld\r\n"
                              "0\r\n\r\n";
    roundtrip(c, req, 200);
    assert_int_equal(R.body_len, 19);
    assert_string_equal(R.body, "hello chunked world");

    /* The same request one byte at a time. */
    for (size_t i = 0; i < sizeof(req) - 1; i++)
        assert_int_equal(cli_send(c, req + i, 1), 0);
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "hello chunked world");
    cli_close(c);
    stop_server();
}

static void test_expect_continue(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    cli_send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                    "Content-Length: 5\r\n\r\n");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 100);
    assert_int_equal(R.head_len, strlen("HTTP/1.1 100 Continue\r\n\r\n"));
    assert_int_equal(get(&H.requests), 0);
    cli_send_str(c, "abcde");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "abcde");

    /* Without a body there is nothing to continue to. */
    roundtrip(c, "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", 200);
    cli_close(c);
    stop_server();
}

static void test_keep_alive(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    for (int i = 0; i < 3; i++) {
        roundtrip(c, "GET /k HTTP/1.1\r\nHost: t\r\n\r\n", 200);
        assert_false(resp_has(&R, "connection"));
    }
    assert_int_equal(get(&H.requests), 3);
    cli_close(c);
    stop_server();
}

static void test_http10(void **state)
{
    (void)state;
    start_server(5000);
    /* HTTP/1.0 closes by default. */
    client_t *c = cli_open(0);
    roundtrip(c, "GET /old HTTP/1.0\r\n\r\n", 200);
    assert_int_equal(R.minor, 0);
    assert_true(hdr_is(&R, "connection", "close"));
    assert_true(cli_eof(c));
    cli_close(c);

    /* ...unless the client asks for keep-alive. */
    c = cli_open(0);
    roundtrip(c, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200);
    assert_int_equal(R.minor, 0);
    assert_true(hdr_is(&R, "connection", "keep-alive"));
    roundtrip(c, "GET /old2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200);
    assert_non_null(strstr(R.body, "/old2"));
    roundtrip(c, "GET /old3 HTTP/1.0\r\n\r\n", 200);
    assert_true(hdr_is(&R, "connection", "close"));
    assert_true(cli_eof(c));
    cli_close(c);
    stop_server();
}

static void test_connection_close(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    roundtrip(c, "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n", 200);
    assert_true(hdr_is(&R, "connection", "close"));
    assert_true(cli_eof(c));
    cli_close(c);

    /* A request pipelined after "Connection: close" is not answered. */
    c = cli_open(0);
    roundtrip(c, "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\nGET /more HTTP/1.1\r\n\r\n", 200);
    assert_true(cli_eof(c));
    cli_close(c);

    /* ...nor one sent while the closing answer is still going out (a small receive
     * buffer keeps most of it queued in the server). */
    c = cli_open_buf(0, 64 * 1024);
    cli_send_str(c, "GET /blob HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_int_equal(read_head(c, &R), 0);
    assert_int_equal(R.status, 200);
    cli_send_str(c, "GET /more HTTP/1.1\r\n\r\n");
    size_t got = c->len;
    cli_discard(c);
    while (got < BLOB_BYTES) {
        int n = cli_fill(c);
        if (n <= 0)
            break;
        got += (size_t)n;
        cli_discard(c);
    }
    assert_int_equal(got, BLOB_BYTES);
    assert_true(cli_eof(c));
    cli_close(c);
    stop_server();
    assert_int_equal(H.requests, 3);
}

static void test_pipelining_order(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    cli_send_str(c, "GET /late HTTP/1.1\r\nHost: t\r\n\r\n"
                    "POST /second HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /third HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_non_null(strstr(R.body, "\"path\":\"/late\""));
    assert_int_equal(read_response(c, &R), 0);
    assert_non_null(strstr(R.body, "\"path\":\"/second\""));
    assert_non_null(strstr(R.body, "\"body_len\":3"));
    assert_int_equal(read_response(c, &R), 0);
    assert_non_null(strstr(R.body, "\"path\":\"/third\""));

    /* Two late ones in a row, then an immediate one. */
    cli_send_str(c, "GET /late HTTP/1.1\r\n\r\nGET /late HTTP/1.1\r\n\r\n"
                    "GET /now HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(read_response(c, &R), 0);
        assert_int_equal(R.status, 200);
        assert_non_null(strstr(R.body, i < 2 ? "\"path\":\"/late\"" : "\"path\":\"/now\""));
    }
    cli_close(c);
    stop_server();
    assert_int_equal(H.requests, 6);
    assert_int_equal(H.released, 6);
}

static void test_body_too_large(void **state)
{
    (void)state;
    start_server(5000);
    /* Known from Content-Length: refused before the body is sent. */
    client_t *c = cli_open(0);
    roundtrip(c, "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n", 413);
    assert_error_close(c, 413);
    assert_non_null(strstr(R.body, "\"type\":\"invalid_request_error\""));
    cli_close(c);

    /* Chunked: refused once the chunks pass the limit. */
    c = cli_open(0);
    char req[4096];
    int n = snprintf(req, sizeof(req), "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        n += snprintf(req + n, sizeof(req) - (size_t)n, "190\r\n");
        memset(req + n, 'x', 400);
        n += 400;
        n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    }
    n += snprintf(req + n, sizeof(req) - (size_t)n, "0\r\n\r\n");
    roundtrip(c, req, 413);
    assert_error_close(c, 413);
    cli_close(c);
    stop_server();
    assert_int_equal(H.requests, 0);
}

static void test_header_too_large(void **state)
{
    (void)state;
    start_server(5000);
    static char req[8192];
    /* Just under the limit: served. */
    client_t *c = cli_open(0);
    int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'v', 3000);
    n += 3000;
    snprintf(req + n, sizeof(req) - (size_t)n, "\r\n\r\n");
    roundtrip(c, req, 200);

    /* Over it: 431 and close. */
    n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'v', 5000);
    n += 5000;
    snprintf(req + n, sizeof(req) - (size_t)n, "\r\n\r\n");
    roundtrip(c, req, 431);
    assert_error_close(c, 431);
    cli_close(c);

    /* Many small headers count too. */
    c = cli_open(0);
    n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 200; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "X-H%d: 12345678901234567890\r\n", i);
    snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    roundtrip(c, req, 431);
    assert_error_close(c, 431);
    cli_close(c);

    /* A long target counts. */
    c = cli_open(0);
    n = snprintf(req, sizeof(req), "GET /");
    memset(req + n, 'p', 5000);
    n += 5000;
    snprintf(req + n, sizeof(req) - (size_t)n, " HTTP/1.1\r\n\r\n");
    roundtrip(c, req, 431);
    assert_error_close(c, 431);
    cli_close(c);
    stop_server();
    assert_int_equal(H.requests, 1);
}

static void test_set_limits(void **state)
{
    (void)state;
    start_server(5000);
    static char req[4096];
    int n = snprintf(req, sizeof(req), "POST /p HTTP/1.1\r\nContent-Length: 1500\r\n\r\n");
    memset(req + n, 'b', 1500);
    req[n + 1500] = '\0';
    client_t *c = cli_open(0);
    roundtrip(c, req, 413);
    assert_error_close(c, 413);
    cli_close(c);
    /* A reload raises the limit for new requests. */
    ar_server_set_limits(srv, 2048, 5000, 300);
    c = cli_open(0);
    roundtrip(c, req, 200);
    assert_non_null(strstr(R.body, "\"body_len\":1500"));
    cli_close(c);
    stop_server();
}

static void test_smuggling(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    roundtrip(c,
              "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
              "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
              400);
    assert_error_close(c, 400);
    cli_close(c);

    c = cli_open(0);
    roundtrip(c,
              "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
              "Content-Length: 5\r\n\r\n0\r\n\r\n",
              400);
    assert_error_close(c, 400);
    cli_close(c);

    c = cli_open(0);
    roundtrip(c, "POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400);
    assert_error_close(c, 400);
    cli_close(c);

    c = cli_open(0);
    roundtrip(c, "POST /p HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\nabcd", 400);
    assert_error_close(c, 400);
    cli_close(c);

    /* The same after a good request on the connection. */
    c = cli_open(0);
    roundtrip(c, "GET / HTTP/1.1\r\n\r\n", 200);
    roundtrip(c, "POST /p HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", 400);
    assert_error_close(c, 400);
    cli_close(c);
    stop_server();
    assert_int_equal(H.requests, 1);
}

static void test_bad_request_line(void **state)
{
    (void)state;
    start_server(5000);
    static const char *const bad[] = {
        "HELLO WORLD\r\n\r\n",
        "GET\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "\x01\x02\x03 / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nNoColonHere\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < AR_ARRAY_CNT(bad); i++) {
        client_t *c = cli_open(0);
        cli_send_str(c, bad[i]);
        assert_int_equal(read_response(c, &R), 0);
        if (R.status != 400)
            print_message("case %zu: %d\n", i, R.status);
        assert_error_close(c, 400);
        cli_close(c);
    }
    assert_serves();
    stop_server();
    assert_int_equal(H.requests, 1);
}

static void test_request_id(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    char rid[64], rid2[64];
    /* A valid client id is kept. */
    roundtrip(c, "GET / HTTP/1.1\r\nX-Request-Id: client-abc_123.XYZ\r\n\r\n", 200);
    assert_true(resp_hdr(&R, "x-request-id", rid, sizeof(rid)));
    assert_string_equal(rid, "client-abc_123.XYZ");
    body_rid(rid2, sizeof(rid2));
    assert_string_equal(rid2, "client-abc_123.XYZ");

    /* A long (but valid) one is kept whole. */
    char req[512], longid[101];
    memset(longid, 'L', 100);
    longid[100] = '\0';
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nx-request-id: %s\r\n\r\n", longid);
    roundtrip(c, req, 200);
    char got[256];
    assert_true(resp_hdr(&R, "x-request-id", got, sizeof(got)));
    assert_string_equal(got, longid);

    /* Invalid ones are replaced; generated ids are unique. */
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nx-request-id: has\"quote\r\n\r\n",
        "GET / HTTP/1.1\r\nx-request-id: \r\n\r\n",
        "GET / HTTP/1.1\r\nx-request-id: a b\r\n\r\n",
    };
    char seen[AR_ARRAY_CNT(reqs)][64];
    for (size_t i = 0; i < AR_ARRAY_CNT(reqs); i++) {
        roundtrip(c, reqs[i], 200);
        assert_true(resp_hdr(&R, "x-request-id", seen[i], sizeof(seen[i])));
        assert_true(strlen(seen[i]) >= 16);
        body_rid(rid, sizeof(rid));
        assert_string_equal(rid, seen[i]);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
    }
    /* Over 128 bytes: replaced. */
    int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nx-request-id: ");
    memset(req + n, 'i', 200);
    snprintf(req + n + 200, sizeof(req) - (size_t)n - 200, "\r\n\r\n");
    roundtrip(c, req, 200);
    assert_true(resp_hdr(&R, "x-request-id", got, sizeof(got)));
    assert_true(strlen(got) >= 16 && strlen(got) < 40);
    cli_close(c);

    /* Error answers carry one too. */
    c = cli_open(0);
    roundtrip(c, "BAD\r\n\r\n", 400);
    assert_true(resp_hdr(&R, "x-request-id", rid, sizeof(rid)));
    assert_true(strlen(rid) >= 16);
    for (size_t j = 0; j < AR_ARRAY_CNT(reqs); j++)
        assert_string_not_equal(rid, seen[j]);
    cli_close(c);
    stop_server();
}

static void test_idle_timeout(void **state)
{
    (void)state;
    start_server(300);
    client_t *c = cli_open(0);
    roundtrip(c, "GET / HTTP/1.1\r\n\r\n", 200);
    uint64_t t0 = ar_now_ms();
    assert_true(cli_eof(c));
    uint64_t dt = ar_now_ms() - t0;
    assert_true(dt >= 250);
    cli_close(c);

    /* A connection that never sends anything is closed too, silently. */
    c = cli_open(0);
    assert_true(cli_eof(c));
    cli_close(c);
    stop_server();
}

static void test_stalled_request(void **state)
{
    (void)state;
    start_server(300);
    /* Half the headers, then nothing. */
    client_t *c = cli_open(0);
    uint64_t t0 = ar_now_ms();
    cli_send_str(c, "GET /slow HTTP/1.1\r\nHost: t\r\n");
    assert_int_equal(read_response(c, &R), 0);
    assert_true(ar_now_ms() - t0 >= 250);
    assert_error_close(c, 408);
    cli_close(c);

    /* Headers whole, body short. */
    c = cli_open(0);
    cli_send_str(c, "POST /slow HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
    assert_int_equal(read_response(c, &R), 0);
    assert_error_close(c, 408);
    cli_close(c);

    /* After a completed request, a second one that stalls also gets 408. */
    c = cli_open(0);
    roundtrip(c, "GET / HTTP/1.1\r\n\r\n", 200);
    cli_send_str(c, "GET / HT");
    assert_int_equal(read_response(c, &R), 0);
    assert_error_close(c, 408);
    cli_close(c);
    stop_server();
    assert_int_equal(H.requests, 1);
}

static void test_streaming(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    cli_send_str(c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_head(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_true(R.chunked);
    assert_false(resp_has(&R, "content-length"));
    assert_true(hdr_is(&R, "content-type", "text/event-stream"));
    assert_true(resp_has(&R, "x-request-id"));
    R.body_len = 0;
    /* The first chunk arrives while the handler has not ended the stream. */
    assert_int_equal(read_chunk(c, &R), 11);
    assert_int_equal(get(&H.stream_ended), 0);
    assert_int_equal(read_chunk(c, &R), 11);
    assert_int_equal(read_chunk(c, &R), 13);
    assert_int_equal(read_chunk(c, &R), 0);
    assert_int_equal(get(&H.stream_ended), 1);
    R.body[R.body_len] = '\0';
    assert_string_equal(R.body, "data: one\n\ndata: two\n\ndata: three\n\n");
    assert_int_equal(R.chunks, 3);

    /* The connection is reusable after the terminating chunk. */
    roundtrip(c, "GET /after HTTP/1.1\r\n\r\n", 200);
    assert_non_null(strstr(R.body, "/after"));

    /* HEAD gets the head only. */
    cli_send_str(c, "HEAD /stream HTTP/1.1\r\n\r\n");
    assert_int_equal(read_head(c, &R), 0);
    assert_int_equal(R.status, 200);
    roundtrip(c, "GET /after2 HTTP/1.1\r\n\r\n", 200);
    assert_non_null(strstr(R.body, "/after2"));
    cli_close(c);
    stop_server();
}

static void test_client_disconnect(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    cli_send_str(c, "GET /never HTTP/1.1\r\n\r\n");
    assert_int_equal(wait_for(&H.requests, 1, 3000), 1);
    assert_int_equal(ar_server_in_flight(srv), 1);
    cli_close(c);
    assert_int_equal(wait_for(&H.released, 1, 3000), 1);
    assert_int_equal(get(&H.aborts_canceled), 1);
    assert_int_equal(ar_server_in_flight(srv), 0);

    /* Gone mid-stream: the stream handler's later writes go nowhere. */
    c = cli_open(0);
    cli_send_str(c, "GET /stream HTTP/1.1\r\n\r\n");
    assert_int_equal(read_head(c, &R), 0);
    cli_close(c);
    assert_int_equal(wait_for(&H.released, 2, 3000), 2);
    assert_int_equal(get(&H.aborts_canceled), 2);

    /* Gone with pipelined requests queued behind a pending one. */
    c = cli_open(0);
    cli_send_str(c, "GET /never HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n");
    assert_int_equal(wait_for(&H.requests, 3, 3000), 3);
    cli_close(c);
    assert_int_equal(wait_for(&H.released, 3, 3000), 3);

    assert_serves();
    stop_server();
    assert_int_equal(H.aborts_canceled, 3);
    assert_int_equal(H.aborts_shutdown, 0);
    assert_int_equal(H.aborts_other, 0);
    assert_int_equal(H.requests, 4);
    assert_int_equal(H.released, 4);
}

static void test_write_timeout(void **state)
{
    (void)state;
    start_server(5000);
    /* A client that asks for a huge stream and never reads. */
    client_t *c = cli_open_buf(0, 4096);
    cli_send_str(c, "GET /big HTTP/1.1\r\n\r\n");
    assert_int_equal(wait_for(&H.aborts_canceled, 1, 5000), 1);
    assert_int_equal(wait_for(&H.released, 1, 3000), 1);
    assert_int_equal(ar_server_in_flight(srv), 0);
    cli_close(c);
    assert_serves();
    stop_server();
    assert_int_equal(H.aborts_canceled, 1);
}

static void test_slow_reader_not_idle(void **state)
{
    (void)state;
    start_server(300);
    /* A client that reads a big answer steadily but slowly: the connection is not idle
     * while its output drains, so the idle timeout must not cut the answer. */
    client_t *c = cli_open(0);
    cli_send_str(c, "GET /blob HTTP/1.1\r\n\r\n");
    assert_int_equal(read_head(c, &R), 0);
    assert_int_equal(R.status, 200);
    size_t got = c->len;
    cli_discard(c);
    uint64_t t0 = ar_now_ms();
    while (got < BLOB_BYTES) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL); /* the slow client */
        ssize_t n = recv(c->fd, c->store, 256 * 1024, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    assert_int_equal(got, BLOB_BYTES);
    assert_true(ar_now_ms() - t0 > 300);
    /* Once the output is drained the idle clock runs again. */
    assert_true(cli_eof(c));
    cli_close(c);
    stop_server();
}

static void test_drain(void **state)
{
    (void)state;
    start_server(10000);
    client_t *idle = cli_open(0);
    roundtrip(idle, "GET /first HTTP/1.1\r\n\r\n", 200);
    client_t *pending = cli_open(1);
    cli_send_str(pending, "GET /never HTTP/1.1\r\n\r\n");
    assert_int_equal(wait_for(&H.requests, 2, 3000), 2);
    /* The 100 Continue proves the server parsed these headers before the drain. */
    client_t *half = cli_open(2);
    cli_send_str(half, "POST /late-arrival HTTP/1.1\r\nExpect: 100-continue\r\n"
                       "Content-Length: 5\r\n\r\n");
    assert_int_equal(read_response(half, &R), 0);
    assert_int_equal(R.status, 100);
    assert_int_equal(ar_server_in_flight(srv), 1);

    ar_server_drain(srv);
    /* SPEC section 9: a request arriving on an open (idle keep-alive) connection gets 503
     * and the connection closes after it; the listener is gone. */
    cli_send_str(idle, "GET /second HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(idle, &R), 0);
    assert_error_close(idle, 503);
    assert_true(cli_eof(idle));
    cli_close(idle);
    int fd = try_connect(0);
    if (fd >= 0)
        close(fd);
    assert_int_equal(fd, -ECONNREFUSED);

    /* The request that completes now is refused with 503 and close. */
    cli_send_str(half, "hello");
    assert_int_equal(read_response(half, &R), 0);
    assert_error_close(half, 503);
    assert_non_null(strstr(R.body, "shutting down"));
    cli_close(half);

    /* The running request continues until cancelled; then it answers and closes. */
    assert_int_equal(ar_server_in_flight(srv), 1);
    assert_int_equal(get(&H.aborts_shutdown), 0);
    ar_server_cancel_all(srv);
    assert_int_equal(read_response(pending, &R), 0);
    assert_int_equal(R.status, 503);
    assert_string_equal(R.body, "{\"statusCode\":503,\"message\":\"Request cancelled: server is "
                                "shutting down\",\"error\":\"Service Unavailable\"}");
    assert_true(hdr_is(&R, "connection", "close"));
    assert_true(cli_eof(pending));
    cli_close(pending);
    assert_int_equal(ar_server_in_flight(srv), 0);
    stop_server();
    assert_int_equal(H.aborts_shutdown, 1);
    assert_int_equal(H.aborts_canceled, 0);
    assert_int_equal(H.requests, 2);
    assert_int_equal(H.released, 2);
}

static void test_cancel_all_keeps_connection(void **state)
{
    (void)state;
    start_server(5000);
    client_t *c = cli_open(0);
    cli_send_str(c, "GET /never HTTP/1.1\r\n\r\n");
    assert_int_equal(wait_for(&H.requests, 1, 3000), 1);
    ar_server_cancel_all(srv);
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 503);
    assert_int_equal(get(&H.aborts_shutdown), 1);
    /* Not draining: the connection stays usable. */
    assert_false(resp_has(&R, "connection"));
    roundtrip(c, "GET /next HTTP/1.1\r\n\r\n", 200);
    cli_close(c);
    stop_server();
    assert_int_equal(H.aborts_shutdown, 1);
    assert_int_equal(H.aborts_canceled, 0);
}

static void test_stop_with_pending(void **state)
{
    (void)state;
    start_server(5000);
    client_t *a = cli_open(0);
    client_t *b = cli_open(1);
    cli_send_str(a, "GET /never HTTP/1.1\r\n\r\n");
    cli_send_str(b, "GET /stream HTTP/1.1\r\n\r\n");
    assert_int_equal(wait_for(&H.requests, 2, 3000), 2);
    assert_int_equal(read_head(b, &R), 0);
    client_t *idle = cli_open(2);
    cli_send_str(idle, "GET /partial HTTP/1.1\r\n");
    stop_server();
    assert_int_equal(H.aborts_canceled, 2);
    assert_int_equal(H.released, 2);
    cli_close(a);
    cli_close(b);
    cli_close(idle);
}

static char random_buf[1 << 20];

static void test_random_bytes(void **state)
{
    (void)state;
    start_server(5000);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof(random_buf); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random_buf[i] = (char)(x >> 24);
    }
    client_t *c = cli_open(0);
    (void)cli_send(c, random_buf, sizeof(random_buf)); /* the server may close early */
    if (read_response(c, &R) == 0)
        assert_int_equal(R.status, 400);
    cli_close(c);

    /* Random bytes after a valid request line. */
    c = cli_open(0);
    cli_send_str(c, "POST / HTTP/1.1\r\n");
    (void)cli_send(c, random_buf, 64 * 1024);
    if (read_response(c, &R) == 0)
        assert_true(R.status == 400 || R.status == 431);
    cli_close(c);
    assert_serves();
    stop_server();
}

#define PIPE_CNT 10000
static const char tiny_req[] = "GET /p HTTP/1.1\r\nHost: t\r\n\r\n";
static char pipe_buf[PIPE_CNT * (sizeof(tiny_req) - 1)];

static int pipe_reps;

static void *pipe_sender(void *arg)
{
    client_t *c = arg;
    for (int i = 0; i < pipe_reps; i++) {
        if (cli_send(c, pipe_buf, sizeof(pipe_buf)) != 0)
            break;
    }
    return NULL;
}

static void test_many_pipelined(void **state)
{
    (void)state;
    start_server_w(5000, 3000); /* the reader may lag on a loaded machine */
    for (size_t i = 0; i < PIPE_CNT; i++)
        memcpy(pipe_buf + i * (sizeof(tiny_req) - 1), tiny_req, sizeof(tiny_req) - 1);
    client_t *c = cli_open(0);
    pthread_t th;
    pipe_reps = 1;
    assert_int_equal(pthread_create(&th, NULL, pipe_sender, c), 0);
    int ok = 0;
    for (int i = 0; i < PIPE_CNT; i++) {
        if (read_response(c, &R) != 0 || R.status != 200)
            break;
        ok++;
    }
    pthread_join(th, NULL);
    assert_int_equal(ok, PIPE_CNT);
    cli_close(c);

    /* With a late one at the head, the rest queue up behind it: more than the server
     * buffers (it stops reading, then resumes when the late one is answered). */
    c = cli_open(0);
    cli_send_str(c, "GET /late HTTP/1.1\r\n\r\n");
    pipe_reps = 3;
    assert_int_equal(pthread_create(&th, NULL, pipe_sender, c), 0);
    ok = 0;
    for (int i = 0; i < 3 * PIPE_CNT + 1; i++) {
        if (read_response(c, &R) != 0 || R.status != 200)
            break;
        if (i == 0)
            assert_non_null(strstr(R.body, "\"path\":\"/late\""));
        ok++;
    }
    pthread_join(th, NULL);
    assert_int_equal(ok, 3 * PIPE_CNT + 1);
    cli_close(c);
    assert_serves();
    stop_server();
    assert_int_equal(H.requests, H.released);
}

int main(void)
{
    ar_log_set_level(AR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post),
        cmocka_unit_test(test_header_injection_refused),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_pipelining_order),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_set_limits),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_bad_request_line),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_stalled_request),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_client_disconnect),
        cmocka_unit_test(test_write_timeout),
        cmocka_unit_test(test_slow_reader_not_idle),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_cancel_all_keeps_connection),
        cmocka_unit_test(test_stop_with_pending),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_many_pipelined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
