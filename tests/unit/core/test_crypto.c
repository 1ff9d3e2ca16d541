/*
 * test_crypto.c: unit tests of core/crypto.c: SHA-256 known vectors, constant-time
 * comparison, randomness, base64 (standard and URL-safe) with every padding case and
 * round trips over all byte values, and RS256 JWT signing: keys generated here with OpenSSL
 * (PKCS#8 and PKCS#1 PEM), signatures verified with the public key, refused keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

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

/* PEM of key (PKCS#8, or the traditional PKCS#1 "RSA PRIVATE KEY" form), malloc'd. */
static char *pem_of(EVP_PKEY *key, bool traditional)
{
    BIO *b = BIO_new(BIO_s_mem());
    int ok = traditional ? PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(ok, 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)n + 1);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

static void test_aes256gcm(void **state)
{
    (void)state;
    unsigned char key[32], other[32];
    memset(key, 7, sizeof(key));
    memset(other, 8, sizeof(other));
    ar_buf_t sealed, plain;
    ar_buf_init(&sealed, 4096);
    ar_buf_init(&plain, 4096);
    assert_int_equal(ar_aes256gcm_seal(key, ar_span_cstr("conn"), ar_span_cstr("hello"), &sealed),
                     0);
    assert_int_equal(sealed.len, AR_GCM_NONCE_LEN + 5 + AR_GCM_TAG_LEN);
    assert_null(memmem(sealed.ptr, sealed.len, "hello", 5));
    assert_int_equal(ar_aes256gcm_open(key, ar_span_cstr("conn"), ar_buf_span(&sealed), &plain), 0);
    assert_int_equal(plain.len, 5);
    assert_memory_equal(plain.ptr, "hello", 5);
    /* a wrong key, a wrong aad, a flipped bit, a short blob: refused, nothing appended */
    ar_buf_reset(&plain);
    assert_int_equal(ar_aes256gcm_open(other, ar_span_cstr("conn"), ar_buf_span(&sealed), &plain),
                     AR_EINVAL);
    assert_int_equal(ar_aes256gcm_open(key, ar_span_cstr("conn2"), ar_buf_span(&sealed), &plain),
                     AR_EINVAL);
    sealed.ptr[AR_GCM_NONCE_LEN] ^= 1;
    assert_int_equal(ar_aes256gcm_open(key, ar_span_cstr("conn"), ar_buf_span(&sealed), &plain),
                     AR_EINVAL);
    assert_int_equal(ar_aes256gcm_open(key, ar_span_cstr("conn"), ar_span(sealed.ptr, 20), &plain),
                     AR_EINVAL);
    assert_int_equal(plain.len, 0);
    /* the same plaintext twice: different nonces, different blobs */
    ar_buf_t a, b;
    ar_buf_init(&a, 256);
    ar_buf_init(&b, 256);
    assert_int_equal(ar_aes256gcm_seal(key, ar_span_cstr(""), ar_span_cstr("x"), &a), 0);
    assert_int_equal(ar_aes256gcm_seal(key, ar_span_cstr(""), ar_span_cstr("x"), &b), 0);
    assert_memory_not_equal(a.ptr, b.ptr, a.len);
    ar_buf_dispose(&a);
    ar_buf_dispose(&b);
    ar_buf_dispose(&sealed);
    ar_buf_dispose(&plain);
}

static void test_rsa_key_check(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char *p8 = pem_of(rsa, false);
    char *p1 = pem_of(rsa, true);
    char *ecp = pem_of(ec, false);
    assert_non_null(strstr(p8, "BEGIN PRIVATE KEY"));
    assert_non_null(strstr(p1, "BEGIN RSA PRIVATE KEY"));
    assert_int_equal(ar_rsa_key_check(ar_span_cstr(p8)), 0);
    assert_int_equal(ar_rsa_key_check(ar_span_cstr(p1)), 0);
    assert_int_equal(ar_rsa_key_check(ar_span_cstr(ecp)), AR_EINVAL); /* not RSA */
    assert_int_equal(ar_rsa_key_check(AR_LIT("")), AR_EINVAL);
    assert_int_equal(ar_rsa_key_check(AR_LIT("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END "
                                             "PRIVATE KEY-----\n")),
                     AR_EINVAL);
    /* a key cut short */
    assert_int_equal(ar_rsa_key_check(ar_span(p8, strlen(p8) / 2)), AR_EINVAL);
    free(p8);
    free(p1);
    free(ecp);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}

static void test_jwt_rs256(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    char *pem = pem_of(rsa, false);
    static const char hdr[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    static const char claims[] = "{\"iss\":\"a@b.c\",\"iat\":1,\"exp\":3601,\"x\":\"\xc3\xa9?>\"}";
    ar_buf_t out;
    ar_buf_init(&out, 1 << 16);
    assert_int_equal(ar_buf_append_str(&out, "prefix="), 0);
    assert_int_equal(ar_jwt_rs256(AR_LIT(hdr), AR_LIT(claims), ar_span_cstr(pem), &out), 0);
    /* appended after what was there, in three base64url parts */
    assert_memory_equal(out.ptr, "prefix=", 7);
    const char *jwt = out.ptr + 7;
    size_t n = out.len - 7;
    const char *d1 = memchr(jwt, '.', n);
    assert_non_null(d1);
    const char *d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - jwt));
    assert_non_null(d2);
    assert_null(memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - jwt)));
    for (size_t i = 0; i < n; i++)
        assert_true(jwt[i] != '=' && jwt[i] != '+' && jwt[i] != '/');
    ar_buf_t dec_buf;
    ar_buf_init(&dec_buf, 1 << 16);
    assert_int_equal(ar_base64_decode(ar_span(jwt, (size_t)(d1 - jwt)), &dec_buf), 0);
    assert_true(ar_span_eq(ar_buf_span(&dec_buf), AR_LIT(hdr)));
    ar_buf_reset(&dec_buf);
    assert_int_equal(ar_base64_decode(ar_span(d1 + 1, (size_t)(d2 - d1 - 1)), &dec_buf), 0);
    assert_true(ar_span_eq(ar_buf_span(&dec_buf), AR_LIT(claims)));
    ar_buf_reset(&dec_buf);
    assert_int_equal(ar_base64_decode(ar_span(d2 + 1, n - (size_t)(d2 + 1 - jwt)), &dec_buf), 0);
    assert_int_equal(dec_buf.len, 256);
    /* the signature verifies over "header.claims" with the public key, and only over it */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, rsa), 1);
    assert_int_equal(EVP_DigestVerify(md, (const unsigned char *)dec_buf.ptr, dec_buf.len,
                                      (const unsigned char *)jwt, (size_t)(d2 - jwt)),
                     1);
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, rsa), 1);
    assert_int_not_equal(EVP_DigestVerify(md, (const unsigned char *)dec_buf.ptr, dec_buf.len,
                                          (const unsigned char *)jwt, (size_t)(d2 - jwt) - 1),
                         1);
    EVP_MD_CTX_free(md);
    /* RS256 is deterministic (PKCS#1 v1.5): the same input signs the same */
    ar_buf_t again;
    ar_buf_init(&again, 1 << 16);
    assert_int_equal(ar_jwt_rs256(AR_LIT(hdr), AR_LIT(claims), ar_span_cstr(pem), &again), 0);
    assert_true(ar_span_eq(ar_buf_span(&again), ar_span(jwt, n)));
    /* a bad key, and no room: out is left as it was */
    size_t before = again.len;
    assert_int_equal(ar_jwt_rs256(AR_LIT(hdr), AR_LIT(claims), AR_LIT("not a key"), &again),
                     AR_EINVAL);
    assert_int_equal(again.len, before);
    ar_buf_t small;
    ar_buf_init(&small, 64);
    assert_int_equal(ar_jwt_rs256(AR_LIT(hdr), AR_LIT(claims), ar_span_cstr(pem), &small),
                     AR_ETOOBIG);
    assert_int_equal(small.len, 0);
    ar_buf_dispose(&small);
    ar_buf_dispose(&again);
    ar_buf_dispose(&dec_buf);
    ar_buf_dispose(&out);
    free(pem);
    EVP_PKEY_free(rsa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_random),        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_bad),    cmocka_unit_test(test_base64_round_trips),
        cmocka_unit_test(test_rsa_key_check), cmocka_unit_test(test_jwt_rs256),
        cmocka_unit_test(test_aes256gcm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
