/*
 * keys.c: virtual key material. A key is "sk-" + 48 base62 characters drawn from
 * OpenSSL's generator (285 bits); only its SHA-256 is stored, and listings show a masked
 * form. Rejection sampling keeps the characters uniform.
 */
#include <stdio.h>
#include <string.h>

#include "core/crypto.h"
#include "store/store.h"

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int ar_key_generate(char out[AR_KEY_LEN + 1])
{
    memcpy(out, "sk-", 3);
    size_t n = 3;
    while (n < AR_KEY_LEN) {
        unsigned char r[64];
        if (ar_random_bytes(r, sizeof(r)) != 0)
            return AR_EIO;
        for (size_t i = 0; i < sizeof(r) && n < AR_KEY_LEN; i++) {
            if (r[i] < 248) /* 248 = 4 * 62: the bytes above would favour the first characters */
                out[n++] = base62[r[i] % 62];
        }
    }
    out[n] = '\0';
    return 0;
}

static bool is_base62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool ar_key_well_formed(const char *s)
{
    if (strncmp(s, "sk-", 3) != 0)
        return false;
    size_t n = 0;
    for (const char *p = s + 3; *p; p++, n++) {
        if (!is_base62(*p))
            return false;
    }
    return n >= 40;
}

void ar_key_hash(const char *key, char out[AR_KEY_HASH_LEN + 1])
{
    ar_sha256_hex(ar_span_cstr(key), out);
}

void ar_key_mask(const char *key, char out[AR_KEY_MASKED_MAX])
{
    size_t n = strlen(key);
    if (n < 12) {
        snprintf(out, AR_KEY_MASKED_MAX, "sk-...");
        return;
    }
    snprintf(out, AR_KEY_MASKED_MAX, "%.6s...%s", key, key + n - 3);
}
