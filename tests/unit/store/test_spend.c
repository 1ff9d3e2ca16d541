/*
 * test_spend.c: the spend record's journal line: every field survives a round trip
 * (quotes, control characters and UTF-8 in names, doubles exactly), every proper prefix of
 * a line is refused with nothing left to free, a line without an id or with a wrong type
 * is refused, and disposing an empty record is safe.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/spend.h"

static ar_spend_t sample(void)
{
    ar_spend_t r = {
        .ts_ms = 1735689600123,
        .key_id = 42,
        .model = "gpt-\"4o\"\\mini\n\t\x01 caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b \xf0\x9f\x98\x80",
        .upstream_model = "gpt-4o-mini-2024-07-18",
        .credential = "azure-east",
        .prompt_tokens = 1234567890123,
        .completion_tokens = 77,
        .cached_tokens = 1000,
        .cache_creation_tokens = 5,
        .reasoning_tokens = 64,
        .cost_usd = 0.1 + 0.2, /* not representable in few digits: must come back bit-exact */
        .status = 499,
        .latency_ms = 15234,
        .ttfb_ms = 321,
        .stream = true,
    };
    snprintf(r.id, sizeof(r.id), "sp-0123456789abcdef");
    snprintf(r.request_id, sizeof(r.request_id), "req \"x\"\x7f");
    return r;
}

static void encode(const ar_spend_t *r, ar_buf_t *b)
{
    ar_buf_init(b, 1 << 20);
    assert_int_equal(ar_spend_encode(r, b), 0);
    assert_true(b->len > 0);
    assert_int_equal(b->ptr[b->len - 1], '\n');
    /* one line: the only newline is the last byte */
    assert_null(memchr(b->ptr, '\n', b->len - 1));
}

static void test_round_trip(void **state)
{
    (void)state;
    ar_spend_t in = sample();
    ar_buf_t b;
    encode(&in, &b);
    ar_spend_t out;
    assert_int_equal(ar_spend_decode(b.ptr, b.len - 1, &out), 0);
    assert_string_equal(out.id, in.id);
    assert_string_equal(out.request_id, in.request_id);
    assert_int_equal(out.ts_ms, in.ts_ms);
    assert_int_equal(out.key_id, in.key_id);
    assert_string_equal(out.model, in.model);
    assert_string_equal(out.upstream_model, in.upstream_model);
    assert_string_equal(out.credential, in.credential);
    assert_int_equal(out.prompt_tokens, in.prompt_tokens);
    assert_int_equal(out.completion_tokens, in.completion_tokens);
    assert_int_equal(out.cached_tokens, in.cached_tokens);
    assert_int_equal(out.cache_creation_tokens, in.cache_creation_tokens);
    assert_int_equal(out.reasoning_tokens, in.reasoning_tokens);
    assert_memory_equal(&out.cost_usd, &in.cost_usd, sizeof(double));
    assert_int_equal(out.status, in.status);
    assert_int_equal(out.latency_ms, in.latency_ms);
    assert_int_equal(out.ttfb_ms, in.ttfb_ms);
    assert_true(out.stream);
    ar_spend_dispose(&out);
    ar_buf_dispose(&b);
}

static void test_doubles_and_extremes(void **state)
{
    (void)state;
    static const double costs[] = {0, 1, 3.0, 1e-300, 123456.789, 5e-324, 1.7976931348623157e308};
    for (size_t i = 0; i < sizeof(costs) / sizeof(costs[0]); i++) {
        ar_spend_t in = sample();
        in.cost_usd = costs[i];
        in.stream = false;
        in.ts_ms = INT64_MIN;
        in.latency_ms = INT64_MAX;
        ar_buf_t b;
        encode(&in, &b);
        ar_spend_t out;
        assert_int_equal(ar_spend_decode(b.ptr, b.len - 1, &out), 0);
        assert_memory_equal(&out.cost_usd, &in.cost_usd, sizeof(double));
        assert_int_equal(out.ts_ms, INT64_MIN);
        assert_int_equal(out.latency_ms, INT64_MAX);
        assert_false(out.stream);
        ar_spend_dispose(&out);
        ar_buf_dispose(&b);
    }
}

/* NULL strings are written as "", NaN as 0; invalid UTF-8 becomes U+FFFD, so the line stays
 * readable (a record that cannot be read back would be lost for good). */
static void test_null_nan_and_bad_utf8(void **state)
{
    (void)state;
    ar_spend_t in = sample();
    in.model = "bad\xff\xfe utf8";
    in.upstream_model = NULL;
    in.credential = NULL;
    in.cost_usd = NAN;
    ar_buf_t b;
    encode(&in, &b);
    ar_spend_t out;
    assert_int_equal(ar_spend_decode(b.ptr, b.len - 1, &out), 0);
    assert_string_equal(out.model, "bad\xef\xbf\xbd\xef\xbf\xbd utf8");
    assert_string_equal(out.upstream_model, "");
    assert_string_equal(out.credential, "");
    assert_true(out.cost_usd == 0);
    ar_spend_dispose(&out);
    ar_buf_dispose(&b);
}

static void test_every_prefix_rejected(void **state)
{
    (void)state;
    ar_spend_t in = sample();
    ar_buf_t b;
    encode(&in, &b);
    size_t full = b.len - 1;
    for (size_t n = 0; n < full; n++) {
        ar_spend_t out;
        memset(&out, 0x5a, sizeof(out));
        assert_int_equal(ar_spend_decode(b.ptr, n, &out), AR_EINVAL);
        assert_null(out.model);
        assert_null(out.upstream_model);
        assert_null(out.credential);
        assert_int_equal(out.id[0], '\0');
    }
    ar_spend_t out;
    assert_int_equal(ar_spend_decode(b.ptr, full, &out), 0);
    ar_spend_dispose(&out);
    ar_buf_dispose(&b);
}

static void test_bad_lines_rejected(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "garbage",
        "[]",
        "\"id\"",
        "{}",
        "{\"rid\":\"r\",\"m\":\"x\"}",                           /* no id */
        "{\"id\":\"\"}",                                         /* empty id */
        "{\"id\":7}",                                            /* id not a string */
        "{\"id\":\"0123456789012345678901234567890123456789\"}", /* id too long */
        "{\"id\":\"a\",\"pt\":\"12\"}",                          /* tokens as a string */
        "{\"id\":\"a\",\"pt\":1.5}",                             /* tokens not integral */
        "{\"id\":\"a\",\"m\":3}",                                /* model not a string */
        "{\"id\":\"a\",\"usd\":\"1\"}",                          /* cost not a number */
        "{\"id\":\"a\",\"s\":1}",                                /* stream not a boolean */
        "{\"id\":\"a\",\"st\":100000}",                          /* no such status */
        "{\"id\":\"a\"}{\"id\":\"b\"}",                          /* two records glued together */
        "{\"id\":\"a\",\"id\":\"b\"}",                           /* duplicate member */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ar_spend_t out;
        if (ar_spend_decode(bad[i], strlen(bad[i]), &out) != AR_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_null(out.model);
    }
}

/* Only the id is required: members a newer writer adds, or an older one lacks, do not
 * make a record unreadable. */
static void test_minimal_and_unknown_members(void **state)
{
    (void)state;
    const char *line = "{\"id\":\"abc\",\"future\":{\"x\":[1,2]},\"pt\":9}";
    ar_spend_t out;
    assert_int_equal(ar_spend_decode(line, strlen(line), &out), 0);
    assert_string_equal(out.id, "abc");
    assert_string_equal(out.request_id, "");
    assert_string_equal(out.model, "");
    assert_int_equal(out.prompt_tokens, 9);
    assert_int_equal(out.status, 0);
    assert_false(out.stream);
    ar_spend_dispose(&out);
}

/* A buffer too small for the record is left as it was: no half line. */
static void test_encode_cap(void **state)
{
    (void)state;
    ar_spend_t in = sample();
    ar_buf_t b;
    ar_buf_init(&b, 64);
    assert_int_equal(ar_buf_append(&b, "x", 1), 0);
    assert_int_equal(ar_spend_encode(&in, &b), AR_ETOOBIG);
    assert_int_equal(b.len, 1);
    ar_buf_dispose(&b);
}

static void test_dispose_empty(void **state)
{
    (void)state;
    ar_spend_t r;
    memset(&r, 0, sizeof(r));
    ar_spend_dispose(&r);
    ar_spend_dispose(&r);
    ar_spend_dispose(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_doubles_and_extremes),
        cmocka_unit_test(test_null_nan_and_bad_utf8),
        cmocka_unit_test(test_every_prefix_rejected),
        cmocka_unit_test(test_bad_lines_rejected),
        cmocka_unit_test(test_minimal_and_unknown_members),
        cmocka_unit_test(test_encode_cap),
        cmocka_unit_test(test_dispose_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
