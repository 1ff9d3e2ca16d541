/*
 * test_conn.c: the server's defences against hostile clients, over real sockets
 * (server_fixture.h): request bodies take memory only as their bytes arrive.
 */
#include "server_fixture.h"

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

static void conn_on_request(ar_http_request_t *req)
{
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
    ar_server_cbs_t cbs = {.on_request = conn_on_request};
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

int main(void)
{
    ar_log_set_level(AR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
