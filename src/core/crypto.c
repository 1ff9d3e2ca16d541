/*
 * crypto.c: OpenSSL-backed primitives (see crypto.h).
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>
#include <sys/random.h>

#include "core/crypto.h"
#include "core/str.h"

void ar_sha256_hex(ar_span_t in, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)in.ptr, in.len, md);
    ar_hex_encode(md, sizeof(md), out);
}

int ar_random_bytes(void *out, size_t n)
{
    return RAND_bytes(out, (int)n) == 1 ? 0 : AR_EIO;
}

bool ar_ct_equal(ar_span_t a, ar_span_t b)
{
    /* Compare against b's length always, so timing reveals nothing about a's content. */
    unsigned char diff = (unsigned char)(a.len != b.len);
    for (size_t i = 0; i < b.len; i++) {
        unsigned char x = i < a.len ? (unsigned char)a.ptr[i] : 0;
        diff |= x ^ (unsigned char)b.ptr[i];
    }
    return diff == 0;
}

static _Thread_local uint64_t rng_state;

uint64_t ar_rand_u64(void)
{
    if (rng_state == 0) {
        if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state) || rng_state == 0)
            rng_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&rng_state;
    }
    /* xorshift64* */
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

int ar_base64_encode(ar_span_t in, bool url, ar_buf_t *out)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *tab = url ? safe : std;
    int rc = ar_buf_reserve(out, (in.len + 2) / 3 * 4);
    if (rc)
        return rc;
    const unsigned char *p = (const unsigned char *)in.ptr;
    size_t i = 0;
    char *o = out->ptr + out->len;
    for (; i + 2 < in.len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < in.len) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < in.len)
            v |= (uint32_t)p[i + 1] << 8;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        if (i + 1 < in.len)
            *o++ = tab[(v >> 6) & 63];
        else if (!url)
            *o++ = '=';
        if (!url)
            *o++ = '=';
    }
    out->len = (size_t)(o - out->ptr);
    return 0;
}

int ar_base64_decode(ar_span_t in, ar_buf_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || c == '-')
            v = 62;
        else if (c == '/' || c == '_')
            v = 63;
        else if (c == '=' || c == '\n' || c == '\r')
            continue;
        else
            return AR_EPARSE;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char byte = (char)((acc >> bits) & 0xff);
            int rc = ar_buf_append(out, &byte, 1);
            if (rc)
                return rc;
        }
    }
    return 0;
}
