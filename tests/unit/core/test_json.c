/*
 * test_json.c: unit tests of core/json.c: the allocation-free scanner (skip, get, get_int,
 * is_null, string) on nested, escaped, spaced and malformed texts, and the jansson
 * helpers (parse errors with their position, compact dump).
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

#define SP(lit) AR_LIT(lit)

/* ar_jscan_get on a literal; checks the raw value text when found. */
static void expect_get(const char *obj, const char *key, int want_rc, const char *want_val)
{
    ar_span_t v = {NULL, 0};
    int rc = ar_jscan_get(ar_span_cstr(obj), ar_span_cstr(key), &v);
    if (rc != want_rc)
        fail_msg("get(%s, %s): rc %d, want %d", obj, key, rc, want_rc);
    if (want_val) {
        if (v.len != strlen(want_val) || memcmp(v.ptr, want_val, v.len) != 0)
            fail_msg("get(%s, %s): '%.*s', want '%s'", obj, key, (int)v.len, v.ptr, want_val);
    }
}

/* ar_jscan_skip over the whole of text: where it stops (offset), or -1 for NULL. */
static long skip_off(const char *text)
{
    const char *end = text + strlen(text);
    const char *q = ar_jscan_skip(text, end);
    return q ? (long)(q - text) : -1;
}

static void test_skip_values(void **state)
{
    (void)state;
    assert_int_equal(skip_off("\"abc\" rest"), 5);
    assert_int_equal(skip_off("  {\"a\":[1,{\"b\":\"}\"}],\"c\":{}} tail"), 28);
    assert_int_equal(skip_off("[[[]],[{}]],"), 11);
    assert_int_equal(skip_off("true,"), 4);
    assert_int_equal(skip_off("false}"), 5);
    assert_int_equal(skip_off("null]"), 4);
    assert_int_equal(skip_off("-12.5e+3,"), 8);
    assert_int_equal(skip_off("1E-7}"), 4);
    assert_int_equal(skip_off("\"a\\\\\\\"b\","), 8); /* "a\\\"b" */
    assert_int_equal(skip_off("\"\\\\\","), 4);       /* "\\" ends at the second quote */
    /* malformed or cut short */
    assert_int_equal(skip_off(""), -1);
    assert_int_equal(skip_off("   "), -1);
    assert_int_equal(skip_off("\"open"), -1);
    assert_int_equal(skip_off("\"esc\\\""), -1); /* the only closing quote is escaped */
    assert_int_equal(skip_off("{\"a\":1"), -1);
    assert_int_equal(skip_off("[1,2"), -1);
    assert_int_equal(skip_off("]"), -1);
    assert_int_equal(skip_off("tru"), -1);
    assert_int_equal(skip_off("nul"), -1);
    assert_int_equal(skip_off("x"), -1);
}

static void test_get_top_level_only(void **state)
{
    (void)state;
    const char *obj = "{\"choices\":[{\"delta\":{\"usage\":1,\"content\":\"x\"}}],"
                      "\"meta\":{\"usage\":{\"n\":2}},\"usage\":{\"prompt_tokens\":3}}";
    expect_get(obj, "usage", 0, "{\"prompt_tokens\":3}");
    expect_get(obj, "content", AR_ENOTFOUND, NULL);
    expect_get(obj, "delta", AR_ENOTFOUND, NULL);
    expect_get(obj, "n", AR_ENOTFOUND, NULL);
    expect_get(obj, "choices", 0, "[{\"delta\":{\"usage\":1,\"content\":\"x\"}}]");
    expect_get(obj, "meta", 0, "{\"usage\":{\"n\":2}}");
    /* a key that only appears inside a string value does not match either */
    expect_get("{\"a\":\"\\\"usage\\\":5\",\"b\":1}", "usage", AR_ENOTFOUND, NULL);
    /* key prefixes and suffixes are different keys */
    expect_get("{\"usage_x\":1,\"xusage\":2,\"usag\":3}", "usage", AR_ENOTFOUND, NULL);
    expect_get("{}", "a", AR_ENOTFOUND, NULL);
    expect_get("{ }", "a", AR_ENOTFOUND, NULL);
}

static void test_get_strings_with_escapes(void **state)
{
    (void)state;
    /* value "a\\\"b" (a, backslash, quote, b) followed by another member */
    const char *obj = "{\"s\":\"a\\\\\\\"b\",\"t\":\"}\",\"u\":\"\\\\\",\"v\":7}";
    expect_get(obj, "s", 0, "\"a\\\\\\\"b\"");
    expect_get(obj, "t", 0, "\"}\"");
    expect_get(obj, "u", 0, "\"\\\\\"");
    expect_get(obj, "v", 0, "7");
    /* keys with escaped quotes are compared as raw text */
    expect_get("{\"k\\\"q\":1,\"k\":2}", "k", 0, "2");
    expect_get("{\"k\\\"q\":1,\"k\":2}", "k\\\"q", 0, "1");

    ar_span_t v, s;
    assert_int_equal(ar_jscan_get(ar_span_cstr(obj), SP("s"), &v), 0);
    assert_int_equal(ar_jscan_string(v, &s), 0);
    assert_int_equal(s.len, 6);
    assert_memory_equal(s.ptr, "a\\\\\\\"b", 6); /* escapes are left as they are */
    assert_int_equal(ar_jscan_string(SP("7"), &s), AR_EPARSE);
    assert_int_equal(ar_jscan_string(SP("\""), &s), AR_EPARSE);
    assert_int_equal(ar_jscan_string(SP("\"\""), &s), 0);
    assert_int_equal(s.len, 0);
    assert_int_equal(ar_jscan_string(SP("null"), &s), AR_EPARSE);
}

static void test_whitespace_everywhere(void **state)
{
    (void)state;
    const char *obj = " \r\n\t{ \n \"a\" \t : \r\n [ 1 , 2 ] \n , \"b\"\n:\n\"x\"\n ,\"c\" :{ } ,"
                      " \"n\" : null , \"i\" :  42 \n}\n ";
    expect_get(obj, "a", 0, "[ 1 , 2 ]");
    expect_get(obj, "b", 0, "\"x\"");
    expect_get(obj, "c", 0, "{ }");
    expect_get(obj, "i", 0, "42");
    expect_get(obj, "zz", AR_ENOTFOUND, NULL);
    ar_span_t v;
    assert_int_equal(ar_jscan_get(ar_span_cstr(obj), SP("n"), &v), 0);
    assert_true(ar_jscan_is_null(v));
    assert_int_equal(ar_jscan_get(ar_span_cstr(obj), SP("i"), &v), 0);
    assert_false(ar_jscan_is_null(v));
    assert_false(ar_jscan_is_null(SP("nul")));
    assert_false(ar_jscan_is_null(SP("\"null\"")));
    int64_t n = 0;
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(obj), SP("i"), &n), 0);
    assert_int_equal(n, 42);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "[1,2]",
        "\"str\"",
        "{",
        "{\"a\"",
        "{\"a\":",
        "{\"a\" 1}",         /* missing colon */
        "{\"a\":1 \"b\":2}", /* missing comma */
        "{\"a\":1,}",        /* trailing comma */
        "{a:1}",             /* unquoted key */
        "{\"a\":1 x}",       /* trailing garbage inside */
        "{\"a\":1,\"b\":2",  /* truncated */
        "{\"a\":\"unterminated}",
        "{\"a\":\"esc\\\"}", /* the closing quote is escaped */
        "{\"a\":{\"x\":1}",  /* truncated nested */
        "{\"a\":tru}",
        "{\"a\":}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_get(bad[i], "zz", AR_EPARSE, NULL);
    int64_t n;
    assert_int_equal(ar_jscan_get_int(SP("{\"a\":1"), SP("b"), &n), AR_EPARSE);
}

static void test_numbers(void **state)
{
    (void)state;
    const char *obj = "{\"f\":1.5e3,\"e\":-2E-2,\"big\":12345678901234,\"neg\":-7,"
                      "\"s\":\"12\",\"o\":{\"x\":1},\"z\":0,\"x\":3e2,\"last\":5}";
    expect_get(obj, "f", 0, "1.5e3");
    expect_get(obj, "e", 0, "-2E-2");
    expect_get(obj, "last", 0, "5"); /* found after numbers with exponents */
    int64_t n = -1;
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(obj), SP("big"), &n), 0);
    assert_int_equal(n, 12345678901234LL);
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(obj), SP("neg"), &n), 0);
    assert_int_equal(n, -7);
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(obj), SP("z"), &n), 0);
    assert_int_equal(n, 0);
    /* an integral value written with an exponent or fraction is that integer */
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(obj), SP("f"), &n), 0);
    assert_int_equal(n, 1500);
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(obj), SP("x"), &n), 0);
    assert_int_equal(n, 300);
    assert_int_equal(ar_jscan_get_int(SP("{\"t\":10.0}"), SP("t"), &n), 0);
    assert_int_equal(n, 10);
    /* not integers */
    n = 99;
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(obj), SP("e"), &n), AR_EPARSE);
    assert_int_equal(ar_jscan_get_int(SP("{\"t\":1.5}"), SP("t"), &n), AR_EPARSE);
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(obj), SP("s"), &n), AR_EPARSE);
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(obj), SP("o"), &n), AR_EPARSE);
    assert_int_equal(ar_jscan_get_int(SP("{\"t\":null}"), SP("t"), &n), AR_EPARSE);
    assert_int_equal(ar_jscan_get_int(SP("{\"t\":true}"), SP("t"), &n), AR_EPARSE);
    assert_int_equal(ar_jscan_get_int(SP("{\"t\":99999999999999999999}"), SP("t"), &n),
                     AR_EPARSE); /* out of range */
    assert_int_equal(n, 99);     /* untouched on failure */
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(obj), SP("missing"), &n), AR_ENOTFOUND);
}

static void test_realistic_usage_chunk(void **state)
{
    (void)state;
    const char *chunk =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,"
        "\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":19,"
        "\"completion_tokens\":9,\"total_tokens\":28,\"prompt_tokens_details\":"
        "{\"cached_tokens\":4}}}";
    ar_span_t usage, details;
    assert_int_equal(ar_jscan_get(ar_span_cstr(chunk), SP("usage"), &usage), 0);
    int64_t v;
    assert_int_equal(ar_jscan_get_int(usage, SP("prompt_tokens"), &v), 0);
    assert_int_equal(v, 19);
    assert_int_equal(ar_jscan_get_int(usage, SP("total_tokens"), &v), 0);
    assert_int_equal(v, 28);
    assert_int_equal(ar_jscan_get_int(usage, SP("cached_tokens"), &v), AR_ENOTFOUND);
    assert_int_equal(ar_jscan_get(usage, SP("prompt_tokens_details"), &details), 0);
    assert_int_equal(ar_jscan_get_int(details, SP("cached_tokens"), &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(ar_jscan_get_int(ar_span_cstr(chunk), SP("prompt_tokens"), &v), AR_ENOTFOUND);
    /* a span that is cut inside the object is not read past its end */
    ar_span_t cut = ar_span(chunk, strlen(chunk) - 40);
    assert_int_equal(ar_jscan_get(cut, SP("usage"), &usage), AR_EPARSE);
}

static void test_json_parse_errors(void **state)
{
    (void)state;
    char err[200];
    json_t *v = ar_json_parse(SP("{\"a\":1,\n  \"b\": x}"), err, sizeof(err));
    assert_null(v);
    assert_non_null(strstr(err, "line 2"));
    assert_non_null(strstr(err, "column"));
    const char *col = strstr(err, "column ");
    assert_non_null(col);
    assert_true(atoi(col + 7) >= 7 && atoi(col + 7) <= 9);

    v = ar_json_parse(SP("{\"a\":1,\"a\":2}"), err, sizeof(err));
    assert_null(v); /* duplicate keys are rejected */
    assert_non_null(strstr(err, "line 1"));

    v = ar_json_parse(SP("[1,2"), NULL, 0); /* no error buffer: still just NULL */
    assert_null(v);

    /* text that is not NUL-terminated is read only up to its length */
    const char text[] = "{\"k\":\"v\"}GARBAGE";
    v = ar_json_parse(ar_span(text, 9), err, sizeof(err));
    assert_non_null(v);
    assert_string_equal(ar_json_str(v, "k"), "v");
    ar_span_t s = ar_json_span(v, "k");
    assert_int_equal(s.len, 1);
    assert_memory_equal(s.ptr, "v", 1);
    assert_null(ar_json_str(v, "missing"));
    assert_int_equal(ar_json_span(v, "missing").len, 0);
    json_decref(v);
}

static void test_json_dump(void **state)
{
    (void)state;
    json_t *v =
        json_pack("{s:s, s:[i, b, n], s:{s:f}}", "s", "a\"b\n\xc3\xa9", "arr", 1, 1, "o", "x", 0.5);
    assert_non_null(v);
    ar_buf_t b;
    ar_buf_init(&b, 1024);
    assert_int_equal(ar_json_dump(v, &b), 0);
    /* compact: no spaces; parsing it back gives the same value */
    assert_null(memchr(b.ptr, ' ', b.len));
    json_t *back = json_loadb(b.ptr, b.len, 0, NULL);
    assert_non_null(back);
    assert_true(json_equal(v, back));
    json_decref(back);
    /* dumping appends */
    size_t first = b.len;
    assert_int_equal(ar_json_dump(v, &b), 0);
    assert_int_equal(b.len, 2 * first);
    assert_memory_equal(b.ptr, b.ptr + first, first);
    ar_buf_dispose(&b);

    /* a scalar is dumped too */
    json_t *s = json_string("x");
    ar_buf_init(&b, 1024);
    assert_int_equal(ar_json_dump(s, &b), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.ptr, "\"x\"", 3);
    ar_buf_dispose(&b);
    json_decref(s);

    /* over the buffer's cap: AR_ETOOBIG */
    ar_buf_init(&b, 8);
    assert_int_equal(ar_json_dump(v, &b), AR_ETOOBIG);
    ar_buf_dispose(&b);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skip_values),
        cmocka_unit_test(test_get_top_level_only),
        cmocka_unit_test(test_get_strings_with_escapes),
        cmocka_unit_test(test_whitespace_everywhere),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_realistic_usage_chunk),
        cmocka_unit_test(test_json_parse_errors),
        cmocka_unit_test(test_json_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
