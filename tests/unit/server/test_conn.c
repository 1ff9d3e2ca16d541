/*
 * test_conn.c: the server's defences against hostile clients, over real sockets
 * (server_fixture.h): request bodies take memory only as their bytes arrive, and a handler
 * may refuse a request at its head, before its body is read; a request head has an
 * absolute deadline (header_timeout) that dribbled bytes do not extend; connections over
 * max_connections are refused whole (503) and counted; and a port another process
 * listens on cannot be taken over.
 */
#include "server_fixture.h"

#include <sys/resource.h>

#include "server/server_int.h" /* REFUSING_MAX */

/* ---- handlers ---- */

/* FNV-1a of the body: proves every byte arrived in order, whatever the buffer did. */
static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int head_calls; /* on_head calls (under H.mu, through bump/get) */
static int head_marker;

/* Refuses /refuse* at the head with 401; marks every other request it sees. */
static void conn_on_head(ar_http_request_t *req)
{
    bump(&head_calls);
    if (ar_span_starts(req->path, AR_LIT("/refuse"))) {
        ar_pool_cleanup_add(req->pool, on_release, NULL);
        ar_span_t body = ar_http_error_body(req, "no key", "authentication_error", "missing");
        ar_http_respond_json(req, 401, NULL, 0, body);
        return;
    }
    req->data = &head_marker;
}

/* ---- a held end (ar_http_hold_end): released when the test says so ---- */

static ar_http_request_t *held_req; /* worker thread only, until the release */

/* Worker: the test asks for the release. */
static void release_held(ar_worker_t *w, void *arg)
{
    (void)w;
    (void)arg;
    ar_http_request_t *req = held_req;
    held_req = NULL;
    ar_http_release_end(req);
    ar_http_unref(req);
}

/* /held: a whole answer; /held-stream: "early" flushed at once, "late" and the end held. */
static bool held_answer(ar_http_request_t *req)
{
    bool whole = ar_span_eq(req->path, AR_LIT("/held"));
    if (!whole && !ar_span_eq(req->path, AR_LIT("/held-stream")))
        return false;
    ar_pool_cleanup_add(req->pool, on_release, NULL);
    ar_http_hold_end(req);
    if (whole) {
        ar_http_respond_json(req, 200, NULL, 0, AR_LIT("{\"held\":true}"));
    } else {
        ar_http_start_stream(req, 200, NULL, 0);
        assert_int_equal(ar_http_write(req, AR_LIT("early\n")), 0);
        ar_http_flush(req);
        assert_int_equal(ar_http_write(req, AR_LIT("late\n")), 0);
        ar_http_end_stream(req);
        ar_http_flush(req); /* a flush after the end sends nothing while held */
    }
    ar_http_ref(req);
    held_req = req;
    bump(&H.requests); /* the test may release it from now on */
    return true;
}

static void conn_on_request(ar_http_request_t *req)
{
    if (held_answer(req))
        return;
    if (ar_span_eq(req->path, AR_LIT("/headcheck"))) {
        bump(&H.requests);
        ar_pool_cleanup_add(req->pool, on_release, NULL);
        const char *body =
            ar_pool_printf(req->pool, "{\"marked\":%s,\"body_len\":%zu}",
                           req->data == &head_marker ? "true" : "false", req->body.len);
        ar_http_respond_json(req, 200, NULL, 0, ar_span_cstr(body));
        return;
    }
    if (ar_span_eq(req->path, AR_LIT("/sum"))) {
        bump(&H.requests);
        ar_pool_cleanup_add(req->pool, on_release, NULL);
        const char *body =
            ar_pool_printf(req->pool, "{\"len\":%zu,\"fnv\":\"%016llx\"}", req->body.len,
                           (unsigned long long)fnv(req->body.ptr, req->body.len));
        ar_http_respond_json(req, 200, NULL, 0, ar_span_cstr(body));
        return;
    }
    on_request(req);
}

static void start_conn_server(ar_server_opts_t *o)
{
    pthread_mutex_lock(&H.mu);
    head_calls = 0;
    pthread_mutex_unlock(&H.mu);
    ar_server_cbs_t cbs = {.on_request = conn_on_request, .on_head = conn_on_head};
    start_server_with(o, &cbs);
}

/* ---- body growth ---- */

#define BIG_BODY (300u * 1024u + 7u)
static char big_body[BIG_BODY];

static void fill_big_body(void)
{
    for (size_t i = 0; i < BIG_BODY; i++)
        big_body[i] = (char)('a' + (i * 7 + i / 13) % 26);
}

/* Sends a POST /sum head for len bytes (Content-Length, or chunked when len is 0). */
static void send_sum_head(client_t *c, size_t len)
{
    char head[256];
    if (len)
        snprintf(head, sizeof(head), "POST /sum HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", len);
    else
        snprintf(head, sizeof(head), "POST /sum HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    cli_send_str(c, head);
}

static void assert_sum(size_t len)
{
    char want[96];
    snprintf(want, sizeof(want), "{\"len\":%zu,\"fnv\":\"%016llx\"}", len,
             (unsigned long long)fnv(big_body, len));
    assert_string_equal(R.body, want);
}

static void test_body_grows(void **state)
{
    (void)state;
    fill_big_body();
    ar_server_opts_t o = fx_opts(5000, 3000);
    o.max_body_bytes = 1 << 20;
    start_conn_server(&o);
    client_t *c = cli_open(0);

    /* Small bodies (the pool path) and bodies past the first allocation, sent in uneven
     * pieces so the buffer grows several times mid-body. */
    static const size_t sizes[] = {1, 1000, 64 * 1024, 64 * 1024 + 1, 200000, BIG_BODY};
    for (size_t k = 0; k < AR_ARRAY_CNT(sizes); k++) {
        size_t len = sizes[k];
        send_sum_head(c, len);
        size_t off = 0, step = 777;
        while (off < len) {
            size_t n = len - off < step ? len - off : step;
            assert_int_equal(cli_send(c, big_body + off, n), 0);
            off += n;
            step = step * 3 % 40000 + 1;
        }
        assert_int_equal(read_response(c, &R), 0);
        assert_int_equal(R.status, 200);
        assert_sum(len);
    }

    /* A chunked body grows the same way. */
    send_sum_head(c, 0);
    char line[32];
    for (size_t off = 0; off < BIG_BODY;) {
        size_t n = BIG_BODY - off < 50000 ? BIG_BODY - off : 50000;
        snprintf(line, sizeof(line), "%zx\r\n", n);
        cli_send_str(c, line);
        assert_int_equal(cli_send(c, big_body + off, n), 0);
        cli_send_str(c, "\r\n");
        off += n;
    }
    cli_send_str(c, "0\r\n\r\n");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_sum(BIG_BODY);
    cli_close(c);

    /* A declared length at the limit with only part of the body sent, then a hang-up:
     * nothing leaks (cmocka checks at stop). */
    c = cli_open(0);
    send_sum_head(c, 1 << 20);
    assert_int_equal(cli_send(c, big_body, 100000), 0);
    cli_close(c);
    assert_serves();
    stop_server();
}

/* ---- refusing at the head ---- */

static bool cli_has(const client_t *c, const char *s)
{
    return memmem(c->buf, c->len, s, strlen(s)) != NULL;
}

static void test_held_end(void **state)
{
    (void)state;
    ar_server_opts_t o = fx_opts(5000, 3000);
    reset_counters();
    start_conn_server(&o);
    client_t *c = cli_open(0);
    cli_send_str(c, "GET /held HTTP/1.1\r\n\r\n");
    assert_int_equal(wait_for(&H.requests, 1, 3000), 1);
    /* answered but held: nothing arrives (the socket's receive timeout ends the wait) */
    set_timeout(c->fd, 200);
    assert_true(cli_fill(c) < 0);
    set_timeout(c->fd, 5000);
    ar_worker_post(ar_server_worker(srv, 0), release_held, NULL);
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "{\"held\":true}");
    /* the connection goes on after a held answer; a stream's earlier bytes are not held */
    cli_send_str(c, "GET /held-stream HTTP/1.1\r\n\r\n");
    while (!cli_has(c, "early\n"))
        assert_true(cli_fill(c) > 0);
    assert_int_equal(wait_for(&H.requests, 2, 3000), 2);
    set_timeout(c->fd, 200);
    while (cli_fill(c) > 0) /* whatever else could come before the release */
        ;
    set_timeout(c->fd, 5000);
    assert_false(cli_has(c, "late"));
    ar_worker_post(ar_server_worker(srv, 0), release_held, NULL);
    while (!cli_has(c, "\r\n0\r\n\r\n"))
        assert_true(cli_fill(c) > 0);
    assert_true(cli_has(c, "late\n"));
    cli_close(c);
    assert_int_equal(wait_for(&H.released, 2, 3000), 2);
    stop_server();
}

static void test_head_refusal(void **state)
{
    (void)state;
    ar_server_opts_t o = fx_opts(5000, 3000);
    o.max_body_bytes = 1 << 20;
    start_conn_server(&o);

    /* Refused before any body byte is sent: the answer closes the connection, and body
     * bytes sent after it are dropped unanswered. */
    client_t *c = cli_open(0);
    cli_send_str(c, "POST /refuse HTTP/1.1\r\nContent-Length: 500000\r\n\r\n");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 401);
    assert_true(hdr_is(&R, "connection", "close"));
    assert_non_null(strstr(R.body, "\"authentication_error\""));
    (void)cli_send(c, big_body, 10000); /* may fail once the server has closed */
    assert_true(cli_eof(c));
    cli_close(c);

    /* Expect: 100-continue gets the refusal instead of 100 Continue. */
    c = cli_open(0);
    cli_send_str(c, "POST /refuse HTTP/1.1\r\nExpect: 100-continue\r\n"
                    "Content-Length: 500000\r\n\r\n");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 401);
    assert_true(cli_eof(c));
    cli_close(c);

    /* A chunked one too, and a request pipelined behind a refused one is never served. */
    c = cli_open(0);
    cli_send_str(c, "POST /refuse HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n0\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 401);
    assert_true(cli_eof(c));
    cli_close(c);
    assert_int_equal(get(&H.requests), 0);
    assert_int_equal(wait_for(&H.released, 3, 3000), 3);

    /* A request the hook lets through keeps what the hook stored, gets its body, and the
     * connection stays open; the hook is not asked about requests without a body. */
    c = cli_open(0);
    cli_send_str(c, "POST /headcheck HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "{\"marked\":true,\"body_len\":5}");
    assert_false(resp_has(&R, "connection"));
    roundtrip(c, "GET /refuse HTTP/1.1\r\n\r\n", 200); /* no body: on_request decides */
    cli_send_str(c, "POST /headcheck HTTP/1.1\r\nExpect: 100-continue\r\n"
                    "Content-Length: 3\r\n\r\n");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 100);
    cli_send_str(c, "abc");
    assert_int_equal(read_response(c, &R), 0);
    assert_string_equal(R.body, "{\"marked\":true,\"body_len\":3}");
    cli_close(c);
    assert_int_equal(get(&head_calls), 5);

    /* Let through, then the client leaves mid-body: released, never dispatched. */
    c = cli_open(0);
    cli_send_str(c, "POST /headcheck HTTP/1.1\r\nContent-Length: 100\r\n\r\nab");
    assert_int_equal(wait_for(&head_calls, 6, 3000), 6);
    cli_close(c);
    assert_serves();
    stop_server();
    assert_int_equal(H.requests, 4); /* the three above and assert_serves */
    assert_int_equal(H.released, 7);
}

/* ---- header_timeout ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct dribble {
    client_t *c;
    const char *bytes;
    int every_ms;
    _Atomic bool stop;
    int sent;
} dribble_t;

/* Sends one byte every every_ms until told to stop, out of bytes, or the socket fails. */
static void *dribbler(void *arg)
{
    dribble_t *d = arg;
    for (size_t i = 0; d->bytes[i] && !atomic_load(&d->stop); i++) {
        if (send(d->c->fd, d->bytes + i, 1, MSG_NOSIGNAL) != 1)
            break;
        d->sent++;
        sleep_ms(d->every_ms);
    }
    return NULL;
}

static void test_header_timeout(void **state)
{
    (void)state;
    ar_server_opts_t o = fx_opts(1500, 3000);
    o.header_timeout_ms = 500;
    start_conn_server(&o);

    /* One byte every 50 ms, far inside idle_timeout: the head's deadline still passes. */
    client_t *c = cli_open(0);
    dribble_t d = {.c = c, .every_ms = 50};
    d.bytes =
        "GET /slowloris HTTP/1.1\r\nHost: t\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    uint64_t t0 = ar_now_ms();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dribbler, &d), 0);
    int rc = read_response(c, &R);
    uint64_t dt = ar_now_ms() - t0;
    atomic_store(&d.stop, true);
    pthread_join(th, NULL);
    assert_int_equal(rc, 0);
    assert_true(d.sent > 3);
    assert_error_close(c, 408);
    assert_non_null(strstr(R.body, "header_timeout"));
    assert_true(dt >= 450 && dt < 1400);
    cli_close(c);

    /* A connection that sends nothing is closed, silently, at the same deadline. */
    c = cli_open(0);
    t0 = ar_now_ms();
    assert_true(cli_eof(c));
    dt = ar_now_ms() - t0;
    assert_true(dt >= 450 && dt < 1400);
    cli_close(c);

    /* A head sent slowly but in time is served; the body that follows is idle_timeout's,
     * and so is a keep-alive pause longer than header_timeout between two requests. */
    c = cli_open(0);
    cli_send_str(c, "POST /headcheck HTTP/1.1\r\nHo");
    sleep_ms(200);
    cli_send_str(c, "st: t\r\nContent-Length: 4\r\n\r\n");
    sleep_ms(700);
    cli_send_str(c, "body");
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "{\"marked\":true,\"body_len\":4}");
    sleep_ms(700);
    roundtrip(c, "GET /again HTTP/1.1\r\n\r\n", 200);
    /* A later request's head is due from its own first byte. */
    cli_send_str(c, "GET /late-head HTTP/1.1\r\n");
    t0 = ar_now_ms();
    assert_int_equal(read_response(c, &R), 0);
    dt = ar_now_ms() - t0;
    assert_error_close(c, 408);
    assert_true(dt >= 450 && dt < 1400);
    cli_close(c);

    /* A reload applies to heads that begin afterwards; none (0) leaves idle_timeout. */
    o.header_timeout_ms = 0;
    ar_server_set_limits(srv, &o);
    c = cli_open(0);
    d = (dribble_t){.c = c, .every_ms = 100};
    d.bytes = "GET /s HTTP/1.1\r\n\r\n";
    assert_int_equal(pthread_create(&th, NULL, dribbler, &d), 0);
    pthread_join(th, NULL); /* about 2 s of dribbling, never cut */
    assert_int_equal(read_response(c, &R), 0);
    assert_int_equal(R.status, 200);
    cli_close(c);
    stop_server();
}

/* ---- max_connections ---- */

/* Waits until the server counts want open connections. @return the last count seen. */
static long wait_open(long want, int ms)
{
    long open = -1, max = 0;
    uint64_t end = ar_now_ms() + (uint64_t)ms;
    for (;;) {
        ar_server_connections(srv, &open, &max);
        if (open == want || ar_now_ms() > end)
            return open;
        sleep_ms(5);
    }
}

static void test_max_connections(void **state)
{
    (void)state;
    ar_server_opts_t o = fx_opts(5000, 3000);
    o.max_connections = 2;
    start_conn_server(&o);
    long open, max;
    ar_server_connections(srv, &open, &max);
    assert_int_equal(open, 0);
    assert_int_equal(max, 2);

    client_t *a = cli_open(0);
    client_t *b = cli_open(1);
    roundtrip(a, "GET /a HTTP/1.1\r\n\r\n", 200);
    roundtrip(b, "GET /b HTTP/1.1\r\n\r\n", 200);
    assert_int_equal(wait_open(2, 3000), 2);

    /* The third is answered 503 before anything is read, and closed. */
    client_t *c = cli_open(2);
    assert_int_equal(read_response(c, &R), 0);
    assert_error_close(c, 503);
    assert_non_null(strstr(R.body, "\"code\":\"too_many_connections\""));
    assert_non_null(strstr(R.body, "\"type\":\"service_unavailable_error\""));
    cli_close(c);
    /* ...also when it sent its request first (read and dropped, never served). */
    c = cli_open(2);
    cli_send_str(c, "POST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert_int_equal(read_response(c, &R), 0);
    assert_error_close(c, 503);
    cli_close(c);
    assert_int_equal(wait_open(2, 3000), 2); /* the refused were never counted open */

    /* Closing one makes room. */
    cli_close(a);
    assert_int_equal(wait_open(1, 3000), 1);
    c = cli_open(2);
    roundtrip(c, "GET /c HTTP/1.1\r\n\r\n", 200);
    cli_close(c);
    assert_int_equal(wait_open(1, 3000), 1);

    /* A flood of refusals: REFUSING_MAX of them are answered and linger (these clients
     * neither read nor close), the rest are closed at once without an answer. */
    c = cli_open(2);
    roundtrip(c, "GET /c HTTP/1.1\r\n\r\n", 200);
    enum { FLOOD = REFUSING_MAX + 6 };
    int fds[FLOOD];
    for (int i = 0; i < FLOOD; i++) {
        fds[i] = try_connect(0);
        assert_true(fds[i] >= 0);
    }
    int answered = 0, dropped = 0;
    for (int i = 0; i < FLOOD; i++) {
        char buf[16];
        ssize_t n = recv(fds[i], buf, sizeof(buf), 0);
        if (n > 0 && memcmp(buf, "HTTP/1.1 503", 12) == 0)
            answered++;
        else if (n == 0 || (n < 0 && errno == ECONNRESET))
            dropped++;
    }
    assert_int_equal(answered, REFUSING_MAX);
    assert_int_equal(dropped, FLOOD - REFUSING_MAX);
    for (int i = 0; i < FLOOD; i++)
        close(fds[i]);
    assert_int_equal(wait_open(2, 3000), 2);

    /* A reload lifts the limit (-1: unlimited). */
    o.max_connections = -1;
    ar_server_set_limits(srv, &o);
    ar_server_connections(srv, &open, &max);
    assert_int_equal(max, -1);
    client_t *d = cli_open(3);
    roundtrip(d, "GET /d HTTP/1.1\r\n\r\n", 200);
    assert_int_equal(wait_open(3, 3000), 3);
    cli_close(d);
    cli_close(c);
    cli_close(b);
    assert_int_equal(wait_open(0, 3000), 0);
    stop_server();
}

/* max_connections 0 is sized from the fd limit, raised to the hard limit at start. */
static void test_max_connections_default(void **state)
{
    (void)state;
    ar_server_opts_t o = fx_opts(5000, 3000);
    start_conn_server(&o);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    long open, max;
    ar_server_connections(srv, &open, &max);
    rlim_t n = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > ((rlim_t)1 << 20) ? (rlim_t)1 << 20
                                                                               : rl.rlim_cur;
    assert_int_equal(max, n > 96 ? (long)(n - 64) / 2 : 16);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= ((rlim_t)1 << 20))
        assert_true(rl.rlim_cur == rl.rlim_max); /* raised at start */
    stop_server();
}

/* ---- one port, one instance ---- */

/* Starts a second server on port p: @return ar_server_start's code, its message in err. */
static int start_other(int p, char *err, size_t errlen)
{
    ar_server_opts_t o = fx_opts(5000, 3000);
    o.port = p;
    ar_server_cbs_t cbs = {.on_request = conn_on_request};
    ar_server_t *other = ar_server_create(&o, &cbs);
    int rc = ar_server_start(other, err, errlen);
    ar_server_stop(other);
    ar_server_destroy(other);
    return rc;
}

/* A listening socket on 127.0.0.1:p (0: any), with SO_REUSEPORT if asked. @return fd. */
static int listen_on(int p, bool reuseport, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *bound = ntohs(sa.sin_port);
    return fd;
}

static void assert_port_refused(int p)
{
    char err[256] = "", want[64];
    assert_int_not_equal(start_other(p, err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "127.0.0.1:%d", p);
    if (!strstr(err, want) || !strstr(err, "in use"))
        print_message("message: %s\n", err);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "already in use"));
}

static void test_port_in_use(void **state)
{
    (void)state;
    ar_server_opts_t o = fx_opts(5000, 3000);
    o.workers = 2; /* the workers of one server share the port */
    start_conn_server(&o);
    int p = port;
    /* Another server on the same port, with SO_REUSEPORT like ours: refused. */
    assert_port_refused(p);
    roundtrip(cli_open(0), "GET /still-ours HTTP/1.1\r\nConnection: close\r\n\r\n", 200);
    assert_true(cli_eof(&clients[0])); /* the server closed first: its side is in TIME_WAIT */
    cli_close(&clients[0]);
    stop_server();

    /* A restart on the port just released starts despite the TIME_WAIT left behind. */
    o.port = p;
    start_conn_server(&o);
    assert_int_equal(port, p);
    assert_serves();
    stop_server();

    /* Ports held by other programs, with or without SO_REUSEPORT. */
    int q;
    int fd = listen_on(0, false, &q);
    assert_port_refused(q);
    close(fd);
    fd = listen_on(0, true, &q);
    assert_port_refused(q);
    close(fd);
}

int main(void)
{
    ar_log_set_level(AR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_grows),
        cmocka_unit_test(test_head_refusal),
        cmocka_unit_test(test_header_timeout),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_max_connections_default),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_held_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
