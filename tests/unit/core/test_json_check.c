/*
 * test_json_check.c: unit tests of src/core/json_check.c: the strict validator (it must
 * refuse whatever jansson and the upstreams refuse, so a body the gateway accepted can
 * always be translated: lone surrogates, invalid UTF-8), the iterators, and member keys
 * compared and checked for duplicates after decoding their escapes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "core/pool.h"

#define SP(s) ar_span((s), sizeof(s) - 1)

static void expect_valid(ar_span_t text)
{
    char err[160] = "";
    int rc = ar_json_validate(text, err, sizeof(err));
    if (rc != 0)
        fail_msg("refused %.*s: %s", (int)text.len, text.ptr, err);
    /* jansson agrees */
    json_t *v = ar_json_parse(text, NULL, 0);
    assert_non_null(v);
    json_decref(v);
}

static void expect_invalid(ar_span_t text, const char *problem)
{
    char err[160] = "";
    assert_int_equal(ar_json_validate(text, err, sizeof(err)), AR_EPARSE);
    if (!strstr(err, problem))
        fail_msg("%.*s: message '%s' does not say '%s'", (int)text.len, text.ptr, err, problem);
    /* and jansson refuses it as well: the two never disagree on these */
    json_t *v = ar_json_parse(text, NULL, 0);
    assert_null(v);
}

static void test_surrogates(void **state)
{
    (void)state;
    expect_valid(SP("{\"a\":\"\\ud83d\\ude00\"}")); /* a pair: U+1F600 */
    expect_valid(SP("{\"a\":\"x\\uD83D\\uDE00y\"}"));
    expect_valid(SP("{\"a\":\"\\u00e9\\uffff\"}"));
    expect_invalid(SP("{\"a\":\"\\ud800\"}"), "lone surrogate");
    expect_invalid(SP("{\"a\":\"\\ud800x\"}"), "lone surrogate");
    expect_invalid(SP("{\"a\":\"\\ud800\\u0041\"}"), "lone surrogate");
    expect_invalid(SP("{\"a\":\"\\ud800\\ud800\"}"), "lone surrogate");
    expect_invalid(SP("{\"a\":\"\\udc00\"}"), "lone surrogate");
    expect_invalid(SP("{\"\\udfff\":1}"), "lone surrogate"); /* in a key too */
    expect_invalid(SP("{\"a\":\"\\ud8"), "truncated");
}

static void test_utf8(void **state)
{
    (void)state;
    expect_valid(SP("{\"a\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}"));
    expect_valid(SP("{\"a\":\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"}")); /* U+FFFF, U+10FFFF */
    expect_invalid(SP("{\"a\":\"\xff\"}"), "invalid UTF-8");
    expect_invalid(SP("{\"a\":\"\xc3\"}"), "invalid UTF-8");             /* cut short */
    expect_invalid(SP("{\"a\":\"\xc0\xaf\"}"), "invalid UTF-8");         /* overlong '/' */
    expect_invalid(SP("{\"a\":\"\xe0\x80\xaf\"}"), "invalid UTF-8");     /* overlong */
    expect_invalid(SP("{\"a\":\"\xed\xa0\x80\"}"), "invalid UTF-8");     /* a surrogate */
    expect_invalid(SP("{\"a\":\"\xf4\x90\x80\x80\"}"), "invalid UTF-8"); /* > U+10FFFF */
    expect_invalid(SP("{\"a\":\"\xe2\x82x\"}"), "invalid UTF-8");        /* bad continuation */
    expect_invalid(SP("{\"\x80\":1}"), "invalid UTF-8");
}

static void test_key_eq(void **state)
{
    (void)state;
    assert_true(ar_jscan_key_eq(SP("model"), SP("model")));
    assert_true(ar_jscan_key_eq(SP("mod\\u0065l"), SP("model")));
    assert_true(ar_jscan_key_eq(SP("\\u006d\\u006F\\u0064\\u0065\\u006c"), SP("model")));
    assert_true(ar_jscan_key_eq(SP("a\\\"b"), SP("a\"b")));
    assert_true(ar_jscan_key_eq(SP("a\\/b\\n"), SP("a/b\n")));
    assert_true(ar_jscan_key_eq(SP("caf\\u00e9"), SP("caf\xc3\xa9")));
    assert_true(ar_jscan_key_eq(SP("\\ud83d\\ude00"), SP("\xf0\x9f\x98\x80")));
    assert_false(ar_jscan_key_eq(SP("model"), SP("models")));
    assert_false(ar_jscan_key_eq(SP("mod\\u0065"), SP("model")));
    assert_false(ar_jscan_key_eq(SP("mod\\u0065ll"), SP("model")));
    assert_false(ar_jscan_key_eq(SP("mode\\u006c2"), SP("model")));
    assert_false(ar_jscan_key_eq(SP(""), SP("model")));
    assert_true(ar_jscan_key_eq(SP(""), SP("")));
}

static void test_get_with_escaped_keys(void **state)
{
    (void)state;
    const char obj[] = "{\"str\\u0065am\":true,\"stream_options\":{\"include_\\u0075sage\":true}}";
    ar_span_t v, u;
    assert_int_equal(ar_jscan_get(SP(obj), SP("stream"), &v), 0);
    assert_true(ar_span_eq(v, SP("true")));
    assert_int_equal(ar_jscan_get(SP(obj), SP("stream_options"), &v), 0);
    assert_int_equal(ar_jscan_get(v, SP("include_usage"), &u), 0);
    assert_true(ar_span_eq(u, SP("true")));
    assert_int_equal(ar_jscan_get(SP(obj), SP("strea"), &v), AR_ENOTFOUND);
}

static void test_key_text(void **state)
{
    (void)state;
    ar_pool_t *pool = ar_pool_create(1024);
    const char raw[] = "mod\\u0065l";
    ar_span_t t = ar_jscan_key_text(pool, SP(raw));
    assert_int_equal(t.len, 5);
    assert_memory_equal(t.ptr, "model", 5);
    t = ar_jscan_key_text(pool, SP("plain"));
    assert_memory_equal(t.ptr, "plain", 5);
    t = ar_jscan_key_text(pool, SP("x\\ud800y")); /* the validator refuses it; never worse */
    assert_int_equal(t.len, 5);
    assert_memory_equal(t.ptr, "x\xef\xbf\xbdy", 5);
    ar_pool_destroy(pool);
}

static void test_duplicates(void **state)
{
    (void)state;
    ar_pool_t *pool = ar_pool_create(1024);
    ar_span_t dup = AR_SPAN_NULL;
    assert_false(ar_jscan_object_duplicate(pool, SP("{\"a\":1,\"b\":2,\"ab\":3}"), &dup));
    assert_false(ar_jscan_object_duplicate(pool, SP("{}"), &dup));
    assert_false(ar_jscan_object_duplicate(pool, SP("[1,1]"), &dup));
    assert_true(ar_jscan_object_duplicate(pool, SP("{\"a\":1,\"b\":2,\"a\":3}"), &dup));
    assert_true(ar_span_eq(dup, SP("a")));
    /* equal only once decoded */
    assert_true(ar_jscan_object_duplicate(
        pool, SP("{\"model\":\"cheap\",\"x\":1,\"mod\\u0065l\":\"expensive\"}"), &dup));
    assert_true(ar_span_eq(dup, SP("model")));
    /* nested members with the same key are not the object's own duplicates */
    assert_false(ar_jscan_object_duplicate(pool, SP("{\"a\":{\"a\":1},\"b\":{\"a\":2}}"), &dup));

    /* many members: sorted, not compared pair by pair */
    size_t n = 5000;
    char *big = malloc(n * 16 + 16);
    size_t len = 0;
    big[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(big + len, "%s\"k%zu\":0", i ? "," : "", i);
    big[len++] = '}';
    assert_false(ar_jscan_object_duplicate(pool, ar_span(big, len), &dup));
    len--; /* add one that repeats an early key, escaped */
    len += (size_t)sprintf(big + len, ",\"k\\u00317\":1}");
    assert_true(ar_jscan_object_duplicate(pool, ar_span(big, len), &dup));
    assert_true(ar_span_eq(dup, SP("k17")));
    free(big);
    ar_pool_destroy(pool);
}

/* An absent member is the null span {NULL, 0}: every entry point refuses it without doing
 * arithmetic on the null pointer (UBSan: "applying zero offset to null pointer"). */
static void test_null_span(void **state)
{
    (void)state;
    ar_jscan_iter_t it;
    ar_span_t v;
    int64_t n;
    assert_int_equal(ar_jscan_array_begin(AR_SPAN_NULL, &it), AR_EPARSE);
    assert_int_equal(ar_jscan_object_begin(AR_SPAN_NULL, &it), AR_EPARSE);
    assert_int_equal(ar_jscan_get(AR_SPAN_NULL, SP("a"), &v), AR_EPARSE);
    assert_int_equal(ar_jscan_get_int(AR_SPAN_NULL, SP("a"), &n), AR_EPARSE);
    assert_int_equal(ar_json_validate(AR_SPAN_NULL, NULL, 0), AR_EPARSE);
    assert_null(ar_jscan_skip(NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_surrogates), cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_key_eq),     cmocka_unit_test(test_get_with_escaped_keys),
        cmocka_unit_test(test_key_text),   cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_null_span),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
