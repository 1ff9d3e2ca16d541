/*
 * test_json.c: unit tests of core/json.c: the allocation-free scanner (skip, get, get_int,
 * is_null, string) on nested, escaped, spaced and malformed texts, and the jansson
 * helpers (parse errors with their position, compact dump), and ar_json_shorten (what
 * bodies look like in debug logs).
 */
#include <ctype.h>
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

static void test_string_text(void **state)
{
    (void)state;
    ar_pool_t *pool = ar_pool_create(1024);
    /* no escape: the text inside the quotes, not copied */
    ar_span_t raw = SP("\"gpt-4o\"");
    ar_span_t t = ar_jscan_string_text(pool, raw);
    assert_ptr_equal(t.ptr, raw.ptr + 1);
    assert_int_equal(t.len, 6);
    /* escapes decoded into the pool, NUL-terminated */
    t = ar_jscan_string_text(pool, SP("\"a\\n\\\"b\\u00e9\""));
    assert_int_equal(t.len, 6);
    assert_string_equal(t.ptr, "a\n\"b\xc3\xa9");
    /* not a string, or a broken escape */
    assert_null(ar_jscan_string_text(pool, SP("7")).ptr);
    assert_null(ar_jscan_string_text(pool, SP("\"a\\qb\"")).ptr);
    ar_pool_destroy(pool);
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

/* ---- ar_json_shorten ---- */

/* Shortens in (len bytes) into a fresh buffer of cap bytes; checks rc 0 and the text. */
static void expect_shorten_n(const char *in, size_t len, size_t max_string, size_t max_total,
                             size_t cap, const char *want)
{
    ar_buf_t b;
    ar_buf_init(&b, cap);
    int rc = ar_json_shorten(ar_span(in, len), max_string, max_total, &b);
    if (rc != 0)
        fail_msg("shorten: rc %d", rc);
    if (b.len != strlen(want) || memcmp(b.ptr, want, b.len) != 0)
        fail_msg("shorten:\n  got  '%.*s'\n  want '%s'", (int)b.len, b.ptr ? b.ptr : "", want);
    ar_buf_dispose(&b);
}

static void expect_shorten(const char *in, size_t max_string, const char *want)
{
    expect_shorten_n(in, strlen(in), max_string, 1 << 20, 1 << 20, want);
}

/* A growable text for building big inputs. */
static char *cat(char *s, const char *more)
{
    size_t a = s ? strlen(s) : 0, n = strlen(more);
    char *r = realloc(s, a + n + 1);
    memcpy(r + a, more, n + 1);
    return r;
}

/* "[n1,n2,...]" with count numbers of varied shapes. */
static char *numbers(size_t count)
{
    static const char *const shapes[] = {"0.0123", "-1.5e-3", "7", "-0.98765432", "1E+2", "0"};
    char *s = cat(NULL, "[");
    for (size_t i = 0; i < count; i++) {
        if (i)
            s = cat(s, ",");
        s = cat(s, shapes[i % 6]);
    }
    return cat(s, "]");
}

static void test_shorten_embeddings(void **state)
{
    (void)state;
    char *vec = numbers(1536);
    char *in = cat(NULL, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                         "\"embedding\":");
    in = cat(in, vec);
    in = cat(in, "},{\"object\":\"embedding\",\"index\":1,\"embedding\":");
    in = cat(in, vec);
    in = cat(in, "}],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":5,"
                 "\"total_tokens\":5}}");
    expect_shorten(in, 200,
                   "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                   "\"embedding\":[1536 numbers]},{\"object\":\"embedding\",\"index\":1,"
                   "\"embedding\":[1536 numbers]}],\"model\":\"text-embedding-3-small\","
                   "\"usage\":{\"prompt_tokens\":5,\"total_tokens\":5}}");
    /* a request's input may be token arrays: a batch of them */
    free(in);
    in = cat(NULL, "{\"input\":[");
    in = cat(in, vec);
    in = cat(in, ",");
    in = cat(in, vec);
    in = cat(in, "]}");
    expect_shorten(in, 200, "{\"input\":[[1536 numbers],[1536 numbers]]}");
    expect_shorten(vec, 200, "[1536 numbers]");
    free(in);
    free(vec);
    /* 16 numbers are kept, 17 are not */
    vec = numbers(16);
    expect_shorten(vec, 200, vec);
    free(vec);
    vec = numbers(17);
    expect_shorten(vec, 200, "[17 numbers]");
    free(vec);
    expect_shorten("[ 1 , 2 ,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18 ]", 200, "[18 numbers]");
    /* anything but numbers in the array: kept element by element */
    expect_shorten("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,\"x\"]", 200,
                   "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,\"x\"]");
    expect_shorten("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,null]", 200,
                   "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,null]");
}

/* A string of 300 content bytes: prefix, then the rest 'z'. */
static void long_string(char *out, const char *prefix)
{
    size_t n = strlen(prefix);
    out[0] = '"';
    memcpy(out + 1, prefix, n);
    memset(out + 1 + n, 'z', 300 - n);
    strcpy(out + 301, "\"");
}

static void test_shorten_long_strings(void **state)
{
    (void)state;
    /* a 10 000-char base64 image */
    char *b64 = malloc(10001);
    for (size_t i = 0; i < 10000; i++)
        b64[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i * 7 % 64];
    b64[10000] = '\0';
    char *in = cat(NULL, "{\"created\":1,\"data\":[{\"b64_json\":\"");
    in = cat(in, b64);
    in = cat(in, "\"}]}");
    char want[256];
    snprintf(want, sizeof(want),
             "{\"created\":1,\"data\":[{\"b64_json\":\"%.48s...(10000 chars)\"}]}", b64);
    expect_shorten(in, 200, want);
    free(in);
    free(b64);
    /* exactly max_string is kept, one more is shortened */
    char s200[203], s201[204];
    s200[0] = s201[0] = '"';
    memset(s200 + 1, 'x', 200);
    memset(s201 + 1, 'y', 201);
    strcpy(s200 + 201, "\"");
    strcpy(s201 + 202, "\"");
    expect_shorten(s200, 200, s200);
    snprintf(want, sizeof(want), "\"%.48s...(201 chars)\"", s201 + 1);
    expect_shorten(s201, 200, want);
    /* keys are kept whole */
    char key[400];
    long_string(key, "k");
    in = cat(NULL, "{");
    in = cat(in, key);
    in = cat(in, ":1}");
    expect_shorten(in, 200, in);
    free(in);
    /* max_string 0: every non-empty string is shortened, and nothing is read past it */
    expect_shorten("{\"a\":\"b\",\"\":\"\"}", 0, "{\"a\":\"...(1 chars)\",\"\":\"\"}");
}

static void test_shorten_cut_boundaries(void **state)
{
    (void)state;
    char in[400], want[200];
    char a47[48], a46[47];
    memset(a47, 'a', 47);
    a47[47] = '\0';
    memset(a46, 'a', 46);
    a46[46] = '\0';
    char prefix[64];
    /* an escape across the 48th byte is left out whole: \" */
    snprintf(prefix, sizeof(prefix), "%s\\\"", a47);
    long_string(in, prefix);
    snprintf(want, sizeof(want), "\"%s...(300 chars)\"", a47);
    expect_shorten(in, 200, want);
    /* an escaped backslash that ends on the 48th byte is kept */
    snprintf(prefix, sizeof(prefix), "%s\\\\", a46);
    long_string(in, prefix);
    snprintf(want, sizeof(want), "\"%s\\\\...(300 chars)\"", a46);
    expect_shorten(in, 200, want);
    /* a \u escape is never cut */
    snprintf(prefix, sizeof(prefix), "%s\\u00e9", a46);
    long_string(in, prefix);
    snprintf(want, sizeof(want), "\"%s...(300 chars)\"", a46);
    expect_shorten(in, 200, want);
    /* nor is a UTF-8 character: "é" is 2 bytes at bytes 48 and 49 */
    snprintf(prefix, sizeof(prefix), "%s\xc3\xa9", a47);
    long_string(in, prefix);
    snprintf(want, sizeof(want), "\"%s...(300 chars)\"", a47);
    expect_shorten(in, 200, want);
    /* a 4-byte one ending exactly at byte 48 is kept */
    char a44[45];
    memset(a44, 'a', 44);
    a44[44] = '\0';
    snprintf(prefix, sizeof(prefix), "%s\xf0\x9f\x98\x80", a44);
    long_string(in, prefix);
    snprintf(want, sizeof(want), "\"%s\xf0\x9f\x98\x80...(300 chars)\"", a44);
    expect_shorten(in, 200, want);
    /* a stray lead byte (invalid UTF-8) never swallows half of the \u escape after it:
     * such text is not valid JSON, so it is copied, never shortened into a broken escape */
    snprintf(prefix, sizeof(prefix), "%s\xf0\\u00e9", a44);
    long_string(in, prefix);
    ar_buf_t b;
    ar_buf_init(&b, 4096);
    assert_int_equal(ar_json_shorten(ar_span_cstr(in), 200, 1 << 20, &b), 0);
    for (const char *u = memmem(b.ptr, b.len, "\\u", 2); u;
         u = memmem(u + 2, b.len - (size_t)(u + 2 - b.ptr), "\\u", 2)) {
        assert_true(u + 6 <= b.ptr + b.len);
        for (int i = 2; i < 6; i++)
            assert_true(isxdigit((unsigned char)u[i]));
    }
    ar_buf_dispose(&b);
    /* a max_string under 48 keeps max_string bytes (never more than the string has) */
    expect_shorten("[\"abcdefghijklmnopqrst\",\"x\"]", 10, "[\"abcdefghij...(20 chars)\",\"x\"]");
    expect_shorten("\"abcdefghijk\"", 10, "\"abcdefghij...(11 chars)\"");
}

static void test_shorten_unchanged(void **state)
{
    (void)state;
    static const char *const same[] = {
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"hi\"}]}],\"stream\":true,\"n\":1,\"t\":-0.5e-3,\"x\":null,\"y\":false}",
        "{\"a\":{\"b\":{\"c\":[[1,2],[],{}]}},\"d\":[\"e\",[\"f\",{\"g\":\"h\\\"\\\\\\u00e9\"}]]}",
        "[]",
        "{}",
        "\"short\"",
        "42",
        "true",
        "null",
        "[1,2,3]",
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        expect_shorten(same[i], 200, same[i]);
    /* whitespace around and inside is dropped */
    expect_shorten("\n {\n  \"a\" : [ 1 , { \"b\" : \"c\" } ] ,\n  \"d\":\"e\"\n}\n", 200,
                   "{\"a\":[1,{\"b\":\"c\"}],\"d\":\"e\"}");
    expect_shorten("  42 \n", 200, "42");
    expect_shorten("\t\"s\"\r\n", 200, "\"s\"");
    /* nesting deeper than 64 ends in "..." */
    char deep[256], want[256];
    memset(deep, '[', 100);
    deep[100] = '1';
    memset(deep + 101, ']', 100);
    deep[201] = '\0';
    memset(want, '[', 65);
    memcpy(want + 65, "...", 3);
    memset(want + 68, ']', 65);
    want[133] = '\0';
    expect_shorten(deep, 200, want);
}

static void test_shorten_invalid_copied(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"a\":", "not json", "[1,2,]", "{\"a\":1}}", "{'a':1}", "\"open", "[1 2]", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_shorten(bad[i], 200, bad[i]);
    /* even with long strings in it: it is not parsed */
    char in[400];
    long_string(in, "{");
    expect_shorten(in + 1, 10, in + 1);
}

static void test_shorten_max_total(void **state)
{
    (void)state;
    /* valid: the shortened text is cut at max_total bytes */
    char *in = cat(NULL, "[");
    for (int i = 0; i < 100; i++)
        in = cat(in, i ? ",\"xxxxxxxxxx\"" : "\"xxxxxxxxxx\"");
    in = cat(in, "]");
    char want[128];
    snprintf(want, sizeof(want), "%.50s...(cut)", in);
    expect_shorten_n(in, strlen(in), 200, 50, 1 << 20, want);
    /* exactly max_total is not cut */
    expect_shorten_n(in, strlen(in), 200, strlen(in), 1 << 20, in);
    free(in);
    /* invalid: cut as well */
    char junk[10001];
    memset(junk, 'j', 10000);
    junk[10000] = '\0';
    snprintf(want, sizeof(want), "%.100s...(cut)", junk);
    expect_shorten_n(junk, 10000, 200, 100, 1 << 20, want);
    /* the cut bounds the work: a body much larger than the output buffer still gives its
     * first max_total bytes (the gateway logs with a 64 KiB buffer and max_total 8000) */
    expect_shorten_n(junk, 10000, 200, 100, 1024, want);
    in = cat(NULL, "{\"messages\":[");
    for (int i = 0; i < 5000; i++)
        in = cat(in, i ? ",{\"role\":\"user\",\"content\":\"hello\"}"
                       : "{\"role\":\"user\",\"content\":\"hello\"}");
    in = cat(in, "]}");
    assert_true(strlen(in) > 100000);
    snprintf(want, sizeof(want), "%.100s...(cut)", in);
    expect_shorten_n(in, strlen(in), 200, 100, 1024, want);
    free(in);
    /* the cut never splits an escape or a UTF-8 character (a cut log line stays valid) */
    static const struct {
        const char *in;
        size_t max_total;
        const char *want;
    } cuts[] = {
        {"\"aaaaaaaaaaaaa\\u00e9\"", 16, "\"aaaaaaaaaaaaa...(cut)"}, /* inside \u00e9 */
        {"\"aaaaaaaaaaaaa\\u00e9\"", 20, "\"aaaaaaaaaaaaa\\u00e9...(cut)"},
        {"\"aaaaaaaaaaaaaa\\n\"", 16, "\"aaaaaaaaaaaaaa...(cut)"},        /* inside \n */
        {"\"aaaaaaaaaaaa\\\\x\"", 14, "\"aaaaaaaaaaaa...(cut)"},          /* inside \\ */
        {"\"aaaaaaaaaaaa\\\\x\"", 15, "\"aaaaaaaaaaaa\\\\...(cut)"},      /* after it */
        {"\"aaaaaaaaaaaaaa\xc3\xa9\"", 16, "\"aaaaaaaaaaaaaa...(cut)"},   /* inside é */
        {"\"aaaaaaaaaaaaa\xe2\x82\xac\"", 16, "\"aaaaaaaaaaaaa...(cut)"}, /* inside € */
        {"\"aaaaaaaaaaaaa\xe2\x82\xac\"", 17, "\"aaaaaaaaaaaaa\xe2\x82\xac...(cut)"},
    };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        expect_shorten_n(cuts[i].in, strlen(cuts[i].in), 48, cuts[i].max_total, 1024, cuts[i].want);
    /* max_total counts from where this call started appending */
    ar_buf_t b;
    ar_buf_init(&b, 1024);
    assert_int_equal(ar_buf_append_str(&b, "body: "), 0);
    assert_int_equal(ar_json_shorten(ar_span_cstr("[\"abcdef\"]"), 200, 4, &b), 0);
    assert_int_equal(b.len, strlen("body: [\"ab...(cut)"));
    assert_memory_equal(b.ptr, "body: [\"ab...(cut)", b.len);
    ar_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skip_values),
        cmocka_unit_test(test_get_top_level_only),
        cmocka_unit_test(test_get_strings_with_escapes),
        cmocka_unit_test(test_string_text),
        cmocka_unit_test(test_whitespace_everywhere),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_realistic_usage_chunk),
        cmocka_unit_test(test_json_parse_errors),
        cmocka_unit_test(test_json_dump),
        cmocka_unit_test(test_shorten_embeddings),
        cmocka_unit_test(test_shorten_long_strings),
        cmocka_unit_test(test_shorten_cut_boundaries),
        cmocka_unit_test(test_shorten_unchanged),
        cmocka_unit_test(test_shorten_invalid_copied),
        cmocka_unit_test(test_shorten_max_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
