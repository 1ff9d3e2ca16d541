/*
 * test_response.c: unit tests of the socket-free parts of src/server/response.c: reason
 * phrases, the OpenAI-shaped error body, header lookup, request references (the last
 * unref returns the pool to the worker's cache and runs its cleanups), request ids, the
 * Date cache, and the splitting of large pieces into uv_buf_t descriptors. No threads and no loop: a zeroed worker_impl_t is enough.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "core/mem.h"
#include "core/pool.h"
#include "server/server_int.h"

static void test_reason(void **state)
{
    (void)state;
    assert_string_equal(ar_http_reason(200), "OK");
    assert_string_equal(ar_http_reason(100), "Continue");
    assert_string_equal(ar_http_reason(404), "Not Found");
    assert_string_equal(ar_http_reason(408), "Request Timeout");
    assert_string_equal(ar_http_reason(413), "Payload Too Large");
    assert_string_equal(ar_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(ar_http_reason(503), "Service Unavailable");
    assert_string_equal(ar_http_reason(299), "OK");
    assert_string_equal(ar_http_reason(450), "Client Error");
    assert_string_equal(ar_http_reason(599), "Server Error");
}

static int cleanups_run;

static void count_cleanup(void *arg)
{
    (void)arg;
    cleanups_run++;
}

/* A request as make_request would build it, on worker w, with its own pool. */
static ar_http_request_t *new_req(worker_impl_t *w)
{
    ar_pool_t *pool = ar_server__pool_get(w);
    ar_http_request_t *req = ar_pool_calloc(pool, sizeof(*req));
    req->pool = pool;
    req->worker = &w->pub;
    req->_refs = 1;
    return req;
}

static void drop_pools(worker_impl_t *w)
{
    for (size_t i = 0; i < w->pool_cache_cnt; i++)
        ar_pool_destroy(w->pool_cache[i]);
    w->pool_cache_cnt = 0;
}

static void test_error_body(void **state)
{
    (void)state;
    static worker_impl_t w;
    ar_http_request_t *req = new_req(&w);
    ar_span_t b = ar_http_error_body(req, "bad \"model\"\n", "invalid_request_error", "x1");
    assert_int_equal(b.len, strlen(b.ptr));
    assert_string_equal(b.ptr, "{\"error\":{\"message\":\"bad \\\"model\\\"\\n\",\"type\":"
                               "\"invalid_request_error\",\"code\":\"x1\",\"param\":null}}");
    b = ar_http_error_body(req, "m", "t", NULL);
    assert_string_equal(b.ptr, "{\"error\":{\"message\":\"m\",\"type\":\"t\",\"code\":null,"
                               "\"param\":null}}");
    ar_http_unref(req);
    drop_pools(&w);
}

static void test_header_lookup(void **state)
{
    (void)state;
    static worker_impl_t w;
    ar_http_request_t *req = new_req(&w);
    ar_http_header_t hs[] = {
        {AR_LIT("Content-Type"), AR_LIT("application/json")},
        {AR_LIT("X-Dup"), AR_LIT("first")},
        {AR_LIT("x-dup"), AR_LIT("second")},
    };
    req->headers = hs;
    req->headers_cnt = AR_ARRAY_CNT(hs);
    ar_span_t v = ar_http_header(req, AR_LIT("content-type"));
    assert_true(ar_span_eq(v, AR_LIT("application/json")));
    v = ar_http_header(req, AR_LIT("X-DUP"));
    assert_true(ar_span_eq(v, AR_LIT("first")));
    v = ar_http_header(req, AR_LIT("missing"));
    assert_int_equal(v.len, 0);
    assert_null(v.ptr);
    v = ar_http_header(req, AR_LIT("content-typ"));
    assert_int_equal(v.len, 0);
    ar_http_unref(req);
    drop_pools(&w);
}

static void test_ref_unref(void **state)
{
    (void)state;
    static worker_impl_t w;
    cleanups_run = 0;
    ar_http_request_t *req = new_req(&w);
    ar_pool_t *pool = req->pool;
    ar_pool_cleanup_add(pool, count_cleanup, NULL);
    ar_http_ref(req);
    ar_http_ref(req);
    ar_http_unref(req);
    ar_http_unref(req);
    assert_int_equal(cleanups_run, 0);
    assert_int_equal(w.pool_cache_cnt, 0);
    ar_http_unref(req); /* the last one: cleanups run, the pool goes back to the cache */
    assert_int_equal(cleanups_run, 1);
    assert_int_equal(w.pool_cache_cnt, 1);
    assert_ptr_equal(w.pool_cache[0], pool);
    /* The next request reuses it, reset. */
    req = new_req(&w);
    assert_ptr_equal(req->pool, pool);
    assert_int_equal(w.pool_cache_cnt, 0);
    ar_http_unref(req);
    assert_int_equal(cleanups_run, 1);

    /* A stopping worker frees pools instead of caching them. */
    w.stopping = true;
    req = new_req(&w);
    ar_http_unref(req);
    assert_int_equal(w.pool_cache_cnt, 0);
    w.stopping = false;
    drop_pools(&w);
}

static void test_request_ids(void **state)
{
    (void)state;
    static worker_impl_t w;
    w.rid_prefix = 0x0123456789abcdefull;
    w.pub.id = 3;
    char a[40], b[40];
    ar_server__gen_request_id(&w, a);
    ar_server__gen_request_id(&w, b);
    /* The worker's random prefix, then a counter and the worker id, all hex. */
    assert_true(strlen(a) >= 20 && strlen(a) < 40);
    assert_int_equal(strlen(a), strlen(b));
    assert_memory_equal(a, "0123456789abcdef", 16);
    assert_int_equal(strspn(a, "0123456789abcdef"), strlen(a));
    assert_string_not_equal(a, b);
    assert_true(strcmp(a, b) < 0);
    w.pub.id = 4;
    w.rid_counter = 0;
    ar_server__gen_request_id(&w, b);
    assert_string_not_equal(a, b); /* same counter, another worker */
}

static void test_date(void **state)
{
    (void)state;
    static worker_impl_t w;
    size_t len = 0;
    const char *d = ar_server__date(&w, &len);
    assert_int_equal(len, strlen("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
    assert_memory_equal(d, "Date: ", 6);
    assert_memory_equal(d + len - 5, "GMT\r\n", 5);
    char day[4], mon[4];
    int dd, yy, hh, mm, ss;
    assert_int_equal(
        sscanf(d, "Date: %3s, %d %3s %d %d:%d:%d GMT", day, &dd, mon, &yy, &hh, &mm, &ss), 7);
    assert_true(yy >= 2024);
    size_t len2 = 0;
    assert_ptr_equal(ar_server__date(&w, &len2), d); /* cached in the worker */
}

static void test_buf_split(void **state)
{
    (void)state;
    static char data[25];
    uv_buf_t out[8];
    unsigned n = 0;
    /* Nothing for an empty span; one piece when it fits; the rest in max-sized pieces. */
    ar_server__buf_split(out, &n, data, 0, 10);
    assert_int_equal(n, 0);
    assert_int_equal(ar_server__buf_pieces(0, 10), 0);
    ar_server__buf_split(out, &n, data, 10, 10);
    assert_int_equal(n, 1);
    assert_int_equal(ar_server__buf_pieces(10, 10), 1);
    ar_server__buf_split(out, &n, data, 25, 10);
    assert_int_equal(ar_server__buf_pieces(25, 10), 3);
    assert_int_equal(n, 4); /* appended after what was there */
    assert_ptr_equal(out[0].base, data);
    assert_int_equal(out[0].len, 10);
    assert_ptr_equal(out[1].base, data);
    assert_int_equal(out[1].len, 10);
    assert_ptr_equal(out[2].base, data + 10);
    assert_int_equal(out[2].len, 10);
    assert_ptr_equal(out[3].base, data + 20);
    assert_int_equal(out[3].len, 5);

    /* 5 GiB + 3 with the real limit: 6 pieces that add up, none truncated to 32 bits (a
     * single uv_buf_init((unsigned)len) would have said 1 GiB + 3). The bytes are never
     * touched, so an address with nothing behind it is enough. */
    size_t big = ((size_t)5 << 30) + 3;
    const char *base = (const char *)(uintptr_t)0x100000;
    n = 0;
    assert_int_equal(ar_server__buf_pieces(big, UV_BUF_PIECE_MAX), 6);
    ar_server__buf_split(out, &n, base, big, UV_BUF_PIECE_MAX);
    assert_int_equal(n, 6);
    size_t sum = 0;
    for (unsigned i = 0; i < n; i++) {
        assert_ptr_equal(out[i].base, base + sum);
        assert_true(out[i].len <= UV_BUF_PIECE_MAX);
        sum += out[i].len;
    }
    assert_true(sum == big);
    assert_int_equal(out[5].len, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason),        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_header_lookup), cmocka_unit_test(test_ref_unref),
        cmocka_unit_test(test_request_ids),   cmocka_unit_test(test_date),
        cmocka_unit_test(test_buf_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
