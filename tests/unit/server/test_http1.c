/*
 * test_http1.c: end-to-end tests of src/server over real loopback sockets (server_fixture.h):
 * parsing, keep-alive, pipelining, limits, timeouts, streaming, drain and shutdown.
 */
#include "server_fixture.h"

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
    ar_server_opts_t o = fx_opts(5000, 300);
    o.max_body_bytes = 2048;
    ar_server_set_limits(srv, &o);
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
    start_server(600); /* wide margins: the suite also runs on busy machines */
    client_t *c = cli_open(0);
    roundtrip(c, "GET / HTTP/1.1\r\n\r\n", 200);
    uint64_t t0 = ar_now_ms();
    assert_true(cli_eof(c));
    uint64_t dt = ar_now_ms() - t0;
    assert_true(dt >= 550);
    cli_close(c);

    /* The clock restarts with each request: the read timer is lazy (armed once, it re-arms
     * itself when it fires before the latest deadline), which must not close early. */
    c = cli_open(0);
    roundtrip(c, "GET / HTTP/1.1\r\n\r\n", 200);
    usleep(200 * 1000);
    roundtrip(c, "GET / HTTP/1.1\r\n\r\n", 200);
    t0 = ar_now_ms();
    assert_true(cli_eof(c));
    dt = ar_now_ms() - t0;
    assert_true(dt >= 550);
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
