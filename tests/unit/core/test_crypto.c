/*
 * test_crypto.c: unit tests of core/crypto.c: SHA-256 known vectors, constant-time
 * comparison, randomness, and base64 (standard and URL-safe) with every padding case and
 * round trips over all byte values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/crypto.h"

static void test_sha256(void **state)
{
    (void)state;
    char hex[65];
    ar_sha256_hex(AR_LIT("abc"), hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ar_sha256_hex(AR_LIT(""), hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ar_sha256_hex(AR_LIT("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* a span is hashed by its length, not up to a NUL */
    ar_sha256_hex(ar_span("abcdef", 3), hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(ar_ct_equal(AR_LIT("sk-secret-key"), AR_LIT("sk-secret-key")));
    assert_true(ar_ct_equal(AR_LIT(""), AR_LIT("")));
    assert_false(ar_ct_equal(AR_LIT("sk-secret-key"), AR_LIT("sk-secret-kez")));
    assert_false(ar_ct_equal(AR_LIT("Xk-secret-key"), AR_LIT("sk-secret-key")));
    /* different lengths, including a prefix either way and the empty string */
    assert_false(ar_ct_equal(AR_LIT("sk-secret"), AR_LIT("sk-secret-key")));
    assert_false(ar_ct_equal(AR_LIT("sk-secret-key"), AR_LIT("sk-secret")));
    assert_false(ar_ct_equal(AR_LIT(""), AR_LIT("a")));
    assert_false(ar_ct_equal(AR_LIT("a"), AR_LIT("")));
    /* a NUL in the middle is compared like any other byte */
    assert_false(ar_ct_equal(ar_span("a\0b", 3), ar_span("a\0c", 3)));
    assert_true(ar_ct_equal(ar_span("a\0b", 3), ar_span("a\0b", 3)));
    /* a longer a whose first 256 bytes match b */
    char a[300], b[44];
    memset(a, 'x', sizeof(a));
    memset(b, 'x', sizeof(b));
    assert_false(ar_ct_equal(ar_span(a, 300), ar_span(b, 44)));
    assert_false(ar_ct_equal(ar_span(a, 300), ar_span(a, 44)));
}

static void test_random(void **state)
{
    (void)state;
    unsigned char x[32] = {0}, y[32] = {0};
    assert_int_equal(ar_random_bytes(x, sizeof(x)), 0);
    assert_int_equal(ar_random_bytes(y, sizeof(y)), 0);
    assert_memory_not_equal(x, y, sizeof(x));
    uint64_t r1 = ar_rand_u64(), r2 = ar_rand_u64();
    assert_true(r1 != r2);
}

static void enc(const char *in, size_t n, bool url, const char *want)
{
    ar_buf_t b;
    ar_buf_init(&b, 1024);
    assert_int_equal(ar_buf_append_str(&b, ">"), 0);
    assert_int_equal(ar_base64_encode(ar_span(in, n), url, &b), 0);
    assert_int_equal(b.len, 1 + strlen(want)); /* appends */
    assert_memory_equal(b.ptr + 1, want, b.len - 1);
    ar_buf_dispose(&b);
}

static void dec(const char *in, const char *want, size_t want_len)
{
    ar_buf_t b;
    ar_buf_init(&b, 1024);
    assert_int_equal(ar_base64_decode(ar_span_cstr(in), &b), 0);
    assert_int_equal(b.len, want_len);
    if (want_len)
        assert_memory_equal(b.ptr, want, want_len);
    ar_buf_dispose(&b);
}

static void test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10 */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const std[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        enc(plain[i], strlen(plain[i]), false, std[i]);
        enc(plain[i], strlen(plain[i]), true, url[i]);
        dec(std[i], plain[i], strlen(plain[i]));
        dec(url[i], plain[i], strlen(plain[i]));
    }
    /* the two alphabets differ in 62 and 63 */
    enc("\xfb\xff\xbf", 3, false, "+/+/");
    enc("\xfb\xff\xbf", 3, true, "-_-_");
    enc("\xfb\xff", 2, false, "+/8=");
    enc("\xfb\xff", 2, true, "-_8");
    dec("+/+/", "\xfb\xff\xbf", 3);
    dec("-_-_", "\xfb\xff\xbf", 3);
    dec("-_8", "\xfb\xff", 2);
    /* line breaks (PEM) are skipped */
    dec("Zm9v\nYmFy\r\n", "foobar", 6);
}

static void test_base64_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {"Zm9v!", "Zm 9v", "Zm9v\t", "Zm9v.", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ar_buf_t b;
        ar_buf_init(&b, 1024);
        assert_int_equal(ar_base64_decode(ar_span_cstr(bad[i]), &b), AR_EPARSE);
        ar_buf_dispose(&b);
    }
    /* output over the buffer's cap */
    ar_buf_t b;
    ar_buf_init(&b, 3);
    assert_int_equal(ar_base64_encode(AR_LIT("foob"), false, &b), AR_ETOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(ar_base64_decode(AR_LIT("Zm9vYg=="), &b), AR_ETOOBIG);
    ar_buf_dispose(&b);
}

static void test_base64_round_trips(void **state)
{
    (void)state;
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (int url = 0; url < 2; url++) {
        for (size_t n = 0; n <= 256; n++) {
            ar_buf_t e, d;
            ar_buf_init(&e, 4096);
            ar_buf_init(&d, 4096);
            const char *src = (const char *)all + (256 - n) / 2;
            assert_int_equal(ar_base64_encode(ar_span(src, n), url, &e), 0);
            size_t padded = (n + 2) / 3 * 4;
            size_t unpadded = (n * 4 + 2) / 3;
            assert_int_equal(e.len, url ? unpadded : padded);
            for (size_t i = 0; i < e.len; i++) {
                char c = e.ptr[i];
                assert_true(url ? (c != '+' && c != '/' && c != '=') : (c != '-' && c != '_'));
            }
            assert_int_equal(ar_base64_decode(ar_buf_span(&e), &d), 0);
            assert_int_equal(d.len, n);
            if (n)
                assert_memory_equal(d.ptr, src, n);
            ar_buf_dispose(&e);
            ar_buf_dispose(&d);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),     cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_random),     cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_bad), cmocka_unit_test(test_base64_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
