/*
 * test_buf.c: unit tests of core/buf.c: the hard cap (an append past it fails and leaves
 * the contents as they were), growth, printf appends, consume, NUL termination and JSON
 * string escaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "core/buf.h"

static void assert_buf(const ar_buf_t *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    if (b->len)
        assert_memory_equal(b->ptr, want, b->len);
}

static void test_init_allocates_nothing(void **state)
{
    (void)state;
    ar_buf_t b;
    ar_buf_init(&b, 100);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100);
    ar_buf_dispose(&b); /* disposing an untouched buffer is fine */
    assert_null(b.ptr);
}

static void test_cap(void **state)
{
    (void)state;
    ar_buf_t b;
    ar_buf_init(&b, 10);
    assert_int_equal(ar_buf_append(&b, "hello", 5), 0);
    assert_int_equal(ar_buf_append(&b, "world!", 6), AR_ETOOBIG);
    assert_buf(&b, "hello");                            /* unchanged */
    assert_int_equal(ar_buf_append(&b, "world", 5), 0); /* exactly the cap */
    assert_buf(&b, "helloworld");
    assert_int_equal(ar_buf_append(&b, "x", 1), AR_ETOOBIG);
    assert_int_equal(ar_buf_append_str(&b, "x"), AR_ETOOBIG);
    assert_int_equal(ar_buf_appendf(&b, "%d", 1), AR_ETOOBIG);
    assert_int_equal(ar_buf_append_json_escaped(&b, AR_LIT("x")), AR_ETOOBIG);
    assert_int_equal(ar_buf_reserve(&b, 1), AR_ETOOBIG);
    assert_int_equal(ar_buf_reserve(&b, SIZE_MAX), AR_ETOOBIG); /* no overflow */
    assert_buf(&b, "helloworld");
    assert_int_equal(ar_buf_append(&b, "", 0), 0); /* nothing still fits */
    /* the NUL terminator does not count against the cap */
    assert_int_equal(ar_buf_nul(&b), 0);
    assert_string_equal(b.ptr, "helloworld");
    assert_int_equal(b.len, 10);
    ar_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(ar_buf_append(&b, "0123456789", 10), 0);
    ar_buf_dispose(&b);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
    /* reusable after dispose */
    assert_int_equal(ar_buf_append(&b, "again", 5), 0);
    assert_buf(&b, "again");
    ar_buf_dispose(&b);
}

static void test_growth_keeps_content(void **state)
{
    (void)state;
    ar_buf_t b;
    ar_buf_init(&b, 100000);
    for (int i = 0; i < 10000; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(ar_buf_append(&b, &c, 1), 0);
    }
    assert_int_equal(b.len, 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.ptr[i], 'a' + i % 26);
    assert_true(b.len < b.cap);
    ar_buf_dispose(&b);
}

static void test_appendf(void **state)
{
    (void)state;
    ar_buf_t b;
    ar_buf_init(&b, 4096);
    assert_int_equal(ar_buf_appendf(&b, "%s=%d;", "a", 42), 0);
    assert_buf(&b, "a=42;");
    /* longer than the 256-byte stack buffer */
    char big[1000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ar_buf_appendf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 5 + 1001);
    assert_int_equal(b.ptr[5], '[');
    assert_int_equal(b.ptr[6], 'z');
    assert_int_equal(b.ptr[5 + 1000], ']');
    ar_buf_dispose(&b);

    /* a long format over the cap fails and leaves the buffer unchanged */
    ar_buf_init(&b, 600);
    assert_int_equal(ar_buf_append_str(&b, "keep"), 0);
    assert_int_equal(ar_buf_appendf(&b, "%s", big), AR_ETOOBIG);
    assert_buf(&b, "keep");
    ar_buf_dispose(&b);
}

static void test_consume(void **state)
{
    (void)state;
    ar_buf_t b;
    ar_buf_init(&b, 100);
    assert_int_equal(ar_buf_append_str(&b, "abcdef"), 0);
    ar_buf_consume(&b, 2);
    assert_buf(&b, "cdef");
    ar_buf_consume(&b, 0);
    assert_buf(&b, "cdef");
    ar_buf_consume(&b, 100);
    assert_buf(&b, "");
    ar_buf_dispose(&b);
}

static void test_nul_on_empty(void **state)
{
    (void)state;
    ar_buf_t b;
    ar_buf_init(&b, 0);
    assert_int_equal(ar_buf_nul(&b), 0);
    assert_non_null(b.ptr);
    assert_string_equal(b.ptr, "");
    assert_int_equal(ar_buf_append(&b, "x", 1), AR_ETOOBIG);
    ar_buf_dispose(&b);
}

static void check_escape(const char *in, size_t n, const char *want)
{
    ar_buf_t b;
    ar_buf_init(&b, 1024);
    assert_int_equal(ar_buf_append_json_escaped(&b, ar_span(in, n)), 0);
    assert_int_equal(ar_buf_nul(&b), 0);
    assert_string_equal(b.ptr, want);
    ar_buf_dispose(&b);
}

static void test_json_escaping(void **state)
{
    (void)state;
    check_escape("plain", 5, "plain");
    /* UTF-8 stays as it is; bytes that are not UTF-8 become U+FFFD, so the text stays JSON */
    check_escape("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, "caf\xc3\xa9 \xf0\x9f\x98\x80");
    check_escape("a\xff"
                 "b\xc3",
                 4, "a\\ufffdb\\ufffd");
    check_escape("\xed\xa0\x80x", 4, "\\ufffd\\ufffd\\ufffdx"); /* an encoded surrogate */
    check_escape("n\0ul", 4, "n\\u0000ul");
    check_escape("", 0, "");
    check_escape("a\"b", 3, "a\\\"b");
    check_escape("back\\slash", 10, "back\\\\slash");
    check_escape("\n\r\t", 3, "\\n\\r\\t");
    check_escape("\x01\x08\x0c\x1f", 4, "\\u0001\\u0008\\u000c\\u001f");
    check_escape("nul\0byte", 8, "nul\\u0000byte");
    check_escape("\x7f \x20", 3, "\x7f  ");
    check_escape("caf\xc3\xa9 \xe2\x82\xac", 9, "caf\xc3\xa9 \xe2\x82\xac"); /* UTF-8 as is */

    /* every control character and both specials: jansson reads back the original */
    char all[40];
    size_t n = 0;
    for (int c = 0; c < 0x20; c++)
        all[n++] = (char)c;
    all[n++] = '"';
    all[n++] = '\\';
    all[n++] = 'x';
    ar_buf_t b;
    ar_buf_init(&b, 1024);
    assert_int_equal(ar_buf_append(&b, "[\"", 2), 0);
    assert_int_equal(ar_buf_append_json_escaped(&b, ar_span(all, n)), 0);
    assert_int_equal(ar_buf_append(&b, "\"]", 2), 0);
    json_error_t je;
    json_t *v = json_loadb(b.ptr, b.len, JSON_ALLOW_NUL, &je);
    assert_non_null(v);
    json_t *s = json_array_get(v, 0);
    assert_int_equal(json_string_length(s), n);
    assert_memory_equal(json_string_value(s), all, n);
    json_decref(v);
    ar_buf_dispose(&b);

    /* escaping that does not fit fails with the buffer unchanged up to the failing piece */
    ar_buf_init(&b, 3);
    assert_int_equal(ar_buf_append_json_escaped(&b, AR_LIT("a\"bc")), AR_ETOOBIG);
    assert_true(b.len <= 3);
    ar_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_allocates_nothing),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_growth_keeps_content),
        cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_nul_on_empty),
        cmocka_unit_test(test_json_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
