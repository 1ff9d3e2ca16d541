/*
 * test_transfer.c: the upstream client on a real libuv loop against a one-connection-at-a-
 * time HTTP server on 127.0.0.1 (a thread in this test): what goes on the wire, answers
 * read whole with the collect callbacks, the body cap and connect failures.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "upstream/upstream.h"

/* ---- the server: answers each request with `answer`, records what it received ---- */

typedef struct server {
    int fd;
    int port;
    const char *answer;
    const char *answer2; /* sent after delay_ms, when set */
    int delay_ms;
    int conns;      /* connections served one after another (0: one) */
    char got[8192]; /* the last request, head and body */
    size_t got_len;
    pthread_t thread;
} server_t;

/* Reads one request: the head, then Content-Length bytes of body. */
static void read_request(int c, server_t *s)
{
    s->got_len = 0;
    size_t want = 0;
    for (;;) {
        ssize_t n = read(c, s->got + s->got_len, sizeof(s->got) - 1 - s->got_len);
        if (n <= 0)
            return;
        s->got_len += (size_t)n;
        s->got[s->got_len] = '\0';
        char *end = strstr(s->got, "\r\n\r\n");
        if (!end)
            continue;
        if (!want) {
            const char *cl = strstr(s->got, "Content-Length: ");
            want = (size_t)(end + 4 - s->got) + (cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0);
        }
        if (s->got_len >= want)
            return;
    }
}

static void serve_one(server_t *s)
{
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return;
    read_request(c, s);
    const char *parts[2] = {s->answer, s->answer2};
    for (int i = 0; i < 2 && parts[i]; i++) {
        if (i)
            usleep((useconds_t)s->delay_ms * 1000);
        size_t off = 0, len = strlen(parts[i]);
        while (off < len) {
            ssize_t n = write(c, parts[i] + off, len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
    }
    close(c);
}

static void *serve(void *ud)
{
    server_t *s = ud;
    for (int i = 0; i < (s->conns > 0 ? s->conns : 1); i++)
        serve_one(s);
    return NULL;
}

static int listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void server_start2(server_t *s, const char *answer, const char *answer2, int delay_ms)
{
    memset(s, 0, sizeof(*s));
    s->answer = answer;
    s->answer2 = answer2;
    s->delay_ms = delay_ms;
    s->fd = listen_local(&s->port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_start(server_t *s, const char *answer)
{
    server_start2(s, answer, NULL, 0);
}

static void server_start_many(server_t *s, const char *answer, int conns)
{
    memset(s, 0, sizeof(*s));
    s->answer = answer;
    s->conns = conns;
    s->fd = listen_local(&s->port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(server_t *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* ---- the client side ---- */

/* Every test runs twice: on the built-in HTTP/1.1 client (h1.c) and on libcurl. */
static bool curl_only;

/* A fresh loop and client on it, with max_idle_conns idle connections kept. */
static ar_upstream_t *client_open(uv_loop_t *loop, int64_t max_idle_conns)
{
    uv_loop_init(loop);
    ar_upstream_opts_t uo = {
        .max_idle_conns = max_idle_conns, .idle_conn_timeout_ms = 60000, .curl_only = curl_only};
    ar_upstream_t *up = ar_upstream_create(loop, &uo);
    assert_non_null(up);
    return up;
}

/* Closes the client and checks that nothing is left on its loop. */
static void client_close(uv_loop_t *loop, ar_upstream_t *up)
{
    ar_upstream_close(up);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

typedef struct fetch {
    ar_collected_t got; /* first, as ar_collect_* require */
    int err;
    bool done;
    uv_loop_t *loop;
    ar_transfer_t *xfer;
    uv_timer_t pause_timer;
    int pauses;
    uint64_t paused_ms; /* how long the first pause lasts */
} fetch_t;

static void on_done(void *ud, int err, const char *detail)
{
    (void)detail;
    fetch_t *f = ud;
    f->err = err;
    f->done = true;
}

static const ar_transfer_cbs_t cbs = {ar_collect_head, ar_collect_data, on_done};

/* Runs one request to completion on a fresh loop and client. */
static void run_with(const ar_http_req_t *req, size_t body_cap, int64_t timeout_ms,
                     const ar_transfer_cbs_t *with, fetch_t *f);

static void run(const ar_http_req_t *req, size_t body_cap, fetch_t *f)
{
    f->paused_ms = 0;
    run_with(req, body_cap, 5000, &cbs, f);
}

static void run_with(const ar_http_req_t *req, size_t body_cap, int64_t timeout_ms,
                     const ar_transfer_cbs_t *with, fetch_t *f)
{
    uv_loop_t loop;
    ar_upstream_t *up = client_open(&loop, 4);
    uint64_t paused_ms = f->paused_ms; /* the one setting a caller may preset */
    memset(f, 0, sizeof(*f));
    f->paused_ms = paused_ms;
    ar_buf_init(&f->got.body, body_cap);
    ar_transfer_opts_t to = {.timeout_ms = timeout_ms};
    int err = 0;
    f->loop = &loop;
    f->xfer = ar_transfer_start(up, req, &to, with, f, &err);
    assert_non_null(f->xfer);
    while (!f->done)
        uv_run(&loop, UV_RUN_ONCE);
    client_close(&loop, up);
}

static void url_of(const server_t *s, const char *path, char *out, size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%d%s", s->port, path);
}

static void test_post_collected(void **state)
{
    (void)state;
    server_t s;
    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
                     "Connection: close\r\n\r\n{\"ok\":true}");
    char url[64];
    url_of(&s, "/v1/chat/completions", url, sizeof(url));
    ar_http_req_t req = {.method = "POST", .url = url, .body = ar_span_cstr("{\"a\":1}")};
    assert_int_equal(ar_http_req_add_header(&req, "Content-Type: application/json"), 0);
    assert_int_equal(ar_http_req_add_header(&req, "Authorization: Bearer sk-test"), 0);
    fetch_t f;
    run(&req, 1024, &f);
    server_stop(&s);

    assert_int_equal(f.err, 0);
    assert_int_equal(f.got.status, 200);
    assert_int_equal(f.got.body.len, 11);
    assert_memory_equal(f.got.body.ptr, "{\"ok\":true}", 11);
    /* on the wire: our lines, the body, no 100-continue and no curl default Accept line */
    assert_non_null(strstr(s.got, "POST /v1/chat/completions HTTP/1.1\r\n"));
    assert_non_null(strstr(s.got, "\r\nAuthorization: Bearer sk-test\r\n"));
    assert_non_null(strstr(s.got, "\r\nContent-Length: 7\r\n"));
    assert_null(strstr(s.got, "Expect:"));
    assert_null(strstr(s.got, "Accept:"));
    assert_string_equal(strstr(s.got, "\r\n\r\n") + 4, "{\"a\":1}");
    ar_buf_dispose(&f.got.body);
}

static void test_provider_accept_kept(void **state)
{
    (void)state;
    server_t s;
    server_start(&s, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    char url[64];
    url_of(&s, "/models", url, sizeof(url));
    ar_http_req_t req = {.method = "GET", .url = url};
    assert_int_equal(ar_http_req_add_header(&req, "Accept: text/event-stream"), 0);
    fetch_t f;
    run(&req, 1024, &f);
    server_stop(&s);
    assert_int_equal(f.err, 0);
    assert_int_equal(f.got.status, 204);
    assert_int_equal(f.got.body.len, 0);
    assert_non_null(strstr(s.got, "GET /models HTTP/1.1\r\n"));
    assert_non_null(strstr(s.got, "\r\nAccept: text/event-stream\r\n"));
}

static void test_body_cap(void **state)
{
    (void)state;
    server_t s;
    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 26\r\nConnection: close\r\n\r\n"
                     "abcdefghijklmnopqrstuvwxyz");
    char url[64];
    url_of(&s, "/", url, sizeof(url));
    ar_http_req_t req = {.method = "GET", .url = url};
    fetch_t f;
    run(&req, 10, &f);
    server_stop(&s);
    assert_int_equal(f.err, AR_ETOOBIG);
    assert_int_equal(f.got.status, 200);
    assert_true(f.got.body.len <= 10);
    ar_buf_dispose(&f.got.body);
}

/* request_timeout counts upstream time: an upstream that stalls past it fails with
 * AR_ETIMEDOUT (an answer had begun: not a connect timeout). */
static void test_timeout(void **state)
{
    (void)state;
    server_t s;
    server_start2(&s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n01234",
                  "56789", 1500);
    char url[64];
    url_of(&s, "/", url, sizeof(url));
    ar_http_req_t req = {.method = "GET", .url = url};
    fetch_t f;
    run_with(&req, 1024, 200, &cbs, &f);
    server_stop(&s);
    assert_int_equal(f.err, AR_ETIMEDOUT);
    ar_buf_dispose(&f.got.body);
}

static void on_pause_over(uv_timer_t *t)
{
    fetch_t *f = t->data;
    uv_close((uv_handle_t *)t, NULL);
    ar_transfer_resume(f->xfer);
}

/* A slow client: the first body bytes are refused (paused) for paused_ms. */
static int pausing_data(void *ud, ar_span_t data)
{
    fetch_t *f = ud;
    if (f->pauses++ == 0) {
        uv_timer_init(f->loop, &f->pause_timer);
        f->pause_timer.data = f;
        uv_timer_start(&f->pause_timer, on_pause_over, f->paused_ms, 0);
        return AR_EAGAIN;
    }
    return ar_collect_data(ud, data);
}

/* Time paused for the client is not upstream time: a pause three times as long as
 * request_timeout does not time the transfer out. */
static void test_paused_time_not_counted(void **state)
{
    (void)state;
    server_t s;
    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
                     "0123456789");
    char url[64];
    url_of(&s, "/", url, sizeof(url));
    ar_http_req_t req = {.method = "GET", .url = url};
    const ar_transfer_cbs_t pausing = {ar_collect_head, pausing_data, on_done};
    fetch_t f;
    memset(&f, 0, sizeof(f));
    f.paused_ms = 600;
    uint64_t t0 = uv_hrtime();
    run_with(&req, 1024, 200, &pausing, &f);
    server_stop(&s);
    assert_true(uv_hrtime() - t0 >= 600 * 1000000ull); /* it really waited */
    assert_int_equal(f.err, 0);
    assert_int_equal(f.got.status, 200);
    assert_int_equal(f.got.body.len, 10);
    ar_buf_dispose(&f.got.body);
}

static void test_connect_refused(void **state)
{
    (void)state;
    int port;
    close(listen_local(&port)); /* a port nobody listens on */
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    ar_http_req_t req = {.method = "GET", .url = url};
    fetch_t f;
    run(&req, 1024, &f);
    assert_int_equal(f.err, AR_ECONNREFUSED);
    assert_int_equal(f.got.status, 0);
}

/* Sockets are watched in an epoll set of the client's own, with what was registered
 * remembered per socket number. Here curl closes every connection when its request ends
 * (max_idle_conns 0), and the next connection gets the same number, which the set must not
 * mistake for the old socket (that would be a stall, then a timeout). */
static void test_socket_numbers_come_back(void **state)
{
    (void)state;
    enum { N = 12 };
    server_t s;
    server_start_many(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", N);
    char url[64];
    url_of(&s, "/", url, sizeof(url));
    ar_http_req_t req = {.method = "GET", .url = url};
    uv_loop_t loop;
    ar_upstream_t *up = client_open(&loop, 0);
    ar_transfer_opts_t to = {.timeout_ms = 2000};
    for (int i = 0; i < N; i++) {
        fetch_t f;
        memset(&f, 0, sizeof(f));
        ar_buf_init(&f.got.body, 64);
        int err = 0;
        assert_non_null(ar_transfer_start(up, &req, &to, &cbs, &f, &err));
        while (!f.done)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(f.err, 0);
        assert_int_equal(f.got.status, 200);
        assert_int_equal(f.got.body.len, 2);
        ar_buf_dispose(&f.got.body);
    }
    client_close(&loop, up);
    server_stop(&s);
}

/* Answers the built-in client must read as curl does: 1xx heads skipped, chunked bodies
 * decoded, a body without a length read to the close; what is not HTTP is AR_EUPSTREAM. */
static void fetch_answer(const char *answer, fetch_t *f)
{
    server_t s;
    server_start(&s, answer);
    char url[64];
    url_of(&s, "/x", url, sizeof(url));
    ar_http_req_t req = {.method = "POST", .url = url, .body = ar_span_cstr("{}")};
    run(&req, 1024, f);
    server_stop(&s);
}

static void test_answer_shapes(void **state)
{
    (void)state;
    fetch_t f;
    fetch_answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                 "X-Id: 7\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
                 &f);
    assert_int_equal(f.err, 0);
    assert_int_equal(f.got.status, 200);
    assert_int_equal(f.got.body.len, 7);
    assert_memory_equal(f.got.body.ptr, "abcdefg", 7);
    ar_buf_dispose(&f.got.body);

    fetch_answer("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", &f);
    assert_int_equal(f.err, 0);
    assert_int_equal(f.got.body.len, 13);
    ar_buf_dispose(&f.got.body);

    fetch_answer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", &f);
    assert_int_equal(f.err, AR_ECONNRESET); /* cut short: not a complete answer */
    ar_buf_dispose(&f.got.body);

    fetch_answer("SSH-2.0-OpenSSH_9.2\r\n", &f);
    assert_int_equal(f.err, AR_EUPSTREAM);
    assert_int_equal(f.got.status, 0);
    ar_buf_dispose(&f.got.body);
}

/* A pooled connection the server closed meanwhile: the request it was given fails before
 * any answer byte and goes again on a new connection, invisibly to the caller. */
typedef struct chain {
    fetch_t first, second;
    ar_upstream_t *up;
    const ar_http_req_t *req;
} chain_t;

static void on_first_done(void *ud, int err, const char *detail)
{
    (void)detail;
    chain_t *ch = ud;
    ch->first.err = err;
    ch->first.done = true;
    /* at once, before the loop sees the server's close of the pooled connection */
    ar_transfer_opts_t to = {.timeout_ms = 3000};
    int e = 0;
    assert_non_null(ar_transfer_start(ch->up, ch->req, &to, &cbs, &ch->second, &e));
}

static void test_stale_pooled_connection(void **state)
{
    (void)state;
    server_t s;
    /* each connection answers one request, keep-alive promised, then closes */
    server_start_many(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 2);
    usleep(1000);
    char url[64];
    url_of(&s, "/", url, sizeof(url));
    ar_http_req_t req = {.method = "GET", .url = url};
    uv_loop_t loop;
    ar_upstream_t *up = client_open(&loop, 4);
    chain_t ch = {.up = up, .req = &req};
    ar_buf_init(&ch.first.got.body, 64);
    ar_buf_init(&ch.second.got.body, 64);
    const ar_transfer_cbs_t first_cbs = {ar_collect_head, ar_collect_data, on_first_done};
    ar_transfer_opts_t to = {.timeout_ms = 3000};
    int err = 0;
    assert_non_null(ar_transfer_start(up, &req, &to, &first_cbs, &ch, &err));
    while (!ch.second.done)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(ch.first.err, 0);
    assert_int_equal(ch.second.err, 0);
    assert_int_equal(ch.second.got.status, 200);
    ar_buf_dispose(&ch.first.got.body);
    ar_buf_dispose(&ch.second.got.body);
    client_close(&loop, up);
    server_stop(&s);
}

/* A pause in the middle of a chunked answer: the refused bytes and the rest of what was
 * read come again, in order, after the resume. */
static void test_pause_mid_answer(void **state)
{
    (void)state;
    server_t s;
    server_start(&s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                     "1\r\n \r\n5\r\nworld\r\n0\r\n\r\n");
    char url[64];
    url_of(&s, "/", url, sizeof(url));
    ar_http_req_t req = {.method = "GET", .url = url};
    const ar_transfer_cbs_t pausing = {ar_collect_head, pausing_data, on_done};
    fetch_t f = {.paused_ms = 50};
    run_with(&req, 1024, 2000, &pausing, &f);
    server_stop(&s);
    assert_int_equal(f.err, 0);
    assert_int_equal(f.got.body.len, 11);
    assert_memory_equal(f.got.body.ptr, "hello world", 11);
    ar_buf_dispose(&f.got.body);
}

/* A host name goes through the resolver (libuv's threads for the built-in client); a URL
 * with user info stays on curl, which sends it as Basic credentials. */
static void test_names_and_user_info(void **state)
{
    (void)state;
    const char *answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    server_t s;
    char url[96];
    fetch_t f;
    server_start(&s, answer);
    snprintf(url, sizeof(url), "http://localhost:%d/named", s.port);
    ar_http_req_t named = {.method = "GET", .url = url};
    run(&named, 64, &f);
    server_stop(&s);
    assert_int_equal(f.err, 0);
    assert_int_equal(f.got.status, 200);
    assert_non_null(strstr(s.got, "GET /named HTTP/1.1\r\n"));
    assert_non_null(strstr(s.got, "\r\nHost: localhost:"));
    ar_buf_dispose(&f.got.body);

    server_start(&s, answer);
    snprintf(url, sizeof(url), "http://user:pw@127.0.0.1:%d/", s.port);
    ar_http_req_t with_user = {.method = "GET", .url = url};
    run(&with_user, 64, &f);
    server_stop(&s);
    assert_int_equal(f.err, 0);
    assert_non_null(strstr(s.got, "\r\nAuthorization: Basic dXNlcjpwdw==\r\n"));
    ar_buf_dispose(&f.got.body);
}

/* request_timeout's timer is lazy: a transfer struct comes back from the cache with its
 * timer still set for the previous, shorter budget. It fires early and must re-arm for what
 * is left: the stalled second request times out at its own budget, not the first's. */
static void test_deadline_after_reuse(void **state)
{
    (void)state;
    server_t quick, stall;
    server_start(&quick, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    server_start2(&stall, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab",
                  "cd", 1500);
    char u1[64], u2[64];
    url_of(&quick, "/", u1, sizeof(u1));
    url_of(&stall, "/", u2, sizeof(u2));
    ar_http_req_t r1 = {.method = "GET", .url = u1}, r2 = {.method = "GET", .url = u2};
    uv_loop_t loop;
    ar_upstream_t *up = client_open(&loop, 4);
    fetch_t f1 = {0}, f2 = {0};
    ar_buf_init(&f1.got.body, 64);
    ar_buf_init(&f2.got.body, 64);
    int err = 0;
    ar_transfer_opts_t short_budget = {.timeout_ms = 300}, long_budget = {.timeout_ms = 700};
    assert_non_null(ar_transfer_start(up, &r1, &short_budget, &cbs, &f1, &err));
    while (!f1.done)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(f1.err, 0);
    uint64_t t0 = uv_hrtime();
    assert_non_null(ar_transfer_start(up, &r2, &long_budget, &cbs, &f2, &err));
    while (!f2.done)
        uv_run(&loop, UV_RUN_ONCE);
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(f2.err, AR_ETIMEDOUT);
    assert_true(ms >= 650); /* not at the first request's 300 ms */
    assert_true(ms < 1400); /* and not when the server finally answers */
    ar_buf_dispose(&f1.got.body);
    ar_buf_dispose(&f2.got.body);
    client_close(&loop, up);
    server_stop(&quick);
    server_stop(&stall);
}

int main(void)
{
    /* the test server writes the rest of an answer after the client gave up on it; as in
     * airouter (gateway.c), a write to a reset connection must be an error, not a kill */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_collected),
        cmocka_unit_test(test_provider_accept_kept),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_paused_time_not_counted),
        cmocka_unit_test(test_socket_numbers_come_back),
        cmocka_unit_test(test_answer_shapes),
        cmocka_unit_test(test_stale_pooled_connection),
        cmocka_unit_test(test_pause_mid_answer),
        cmocka_unit_test(test_names_and_user_info),
        cmocka_unit_test(test_deadline_after_reuse),
    };
    int failed =
        cmocka_run_group_tests_name("test_transfer (built-in HTTP/1.1)", tests, NULL, NULL);
    curl_only = true;
    return failed + cmocka_run_group_tests_name("test_transfer (libcurl)", tests, NULL, NULL);
}
