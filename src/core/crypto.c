/*
 * crypto.c: OpenSSL-backed primitives (see crypto.h).
 */
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>
#include <sys/random.h>

#include "core/crypto.h"
#include "core/str.h"

void ar_sha256(ar_span_t in, unsigned char out[32])
{
    SHA256((const unsigned char *)in.ptr, in.len, out);
}

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

/* Reads an RSA private key from PEM text. @return the key (EVP_PKEY_free) or NULL. */
int ar_aes256gcm_seal(const unsigned char key[32], ar_span_t aad, ar_span_t plain, ar_buf_t *out)
{
    if (plain.len > INT_MAX || aad.len > INT_MAX)
        return AR_ETOOBIG;
    size_t start = out->len;
    int rc = ar_buf_reserve(out, AR_GCM_NONCE_LEN + plain.len + AR_GCM_TAG_LEN);
    if (rc)
        return rc;
    unsigned char *nonce = (unsigned char *)out->ptr + start;
    unsigned char *ct = nonce + AR_GCM_NONCE_LEN;
    if (RAND_bytes(nonce, AR_GCM_NONCE_LEN) != 1)
        return AR_EIO;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    bool ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
              (aad.len == 0 ||
               EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)aad.ptr, (int)aad.len) == 1) &&
              EVP_EncryptUpdate(c, ct, &n, (const unsigned char *)plain.ptr, (int)plain.len) == 1 &&
              EVP_EncryptFinal_ex(c, ct + n, &fin) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, AR_GCM_TAG_LEN, ct + plain.len) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        return AR_EIO;
    out->len = start + AR_GCM_NONCE_LEN + plain.len + AR_GCM_TAG_LEN;
    return 0;
}

int ar_aes256gcm_open(const unsigned char key[32], ar_span_t aad, ar_span_t blob, ar_buf_t *out)
{
    if (blob.len < AR_GCM_NONCE_LEN + AR_GCM_TAG_LEN || blob.len > INT_MAX || aad.len > INT_MAX)
        return AR_EINVAL;
    const unsigned char *nonce = (const unsigned char *)blob.ptr;
    const unsigned char *ct = nonce + AR_GCM_NONCE_LEN;
    size_t ct_len = blob.len - AR_GCM_NONCE_LEN - AR_GCM_TAG_LEN;
    size_t start = out->len;
    int rc = ar_buf_reserve(out, ct_len + 1);
    if (rc)
        return rc;
    unsigned char *pt = (unsigned char *)out->ptr + start;
    unsigned char tag[AR_GCM_TAG_LEN];
    memcpy(tag, ct + ct_len, sizeof(tag));
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    bool ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
              (aad.len == 0 ||
               EVP_DecryptUpdate(c, NULL, &n, (const unsigned char *)aad.ptr, (int)aad.len) == 1) &&
              EVP_DecryptUpdate(c, pt, &n, ct, (int)ct_len) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, AR_GCM_TAG_LEN, tag) == 1 &&
              EVP_DecryptFinal_ex(c, pt + n, &fin) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        /* a wrong key decrypts to garbage before the tag check fails: leave none of it */
        OPENSSL_cleanse(pt, ct_len);
        return AR_EINVAL;
    }
    out->len = start + ct_len;
    return 0;
}

static EVP_PKEY *read_rsa_key(ar_span_t pem)
{
    if (pem.len == 0 || pem.len > INT_MAX)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
    if (!bio)
        return NULL;
    /* a NULL password callback with an empty passphrase: encrypted keys fail, never prompt */
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
    BIO_free(bio);
    if (key && EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    ERR_clear_error(); /* leave nothing queued for the next OpenSSL caller on this thread */
    return key;
}

int ar_rsa_key_check(ar_span_t pem)
{
    EVP_PKEY *key = read_rsa_key(pem);
    if (!key)
        return AR_EINVAL;
    EVP_PKEY_free(key);
    return 0;
}

int ar_jwt_rs256(ar_span_t header_json, ar_span_t claims_json, ar_span_t pem_key, ar_buf_t *out)
{
    size_t start = out->len;
    unsigned char *sig = NULL;
    EVP_MD_CTX *md = NULL;
    int rc = AR_EINVAL;
    EVP_PKEY *key = read_rsa_key(pem_key);
    if (!key)
        goto fail;
    rc = ar_base64_encode(header_json, true, out);
    rc = rc ? rc : ar_buf_append(out, ".", 1);
    rc = rc ? rc : ar_base64_encode(claims_json, true, out);
    if (rc)
        goto fail;
    /* the signing input is what was just appended: header "." claims */
    rc = AR_EIO;
    md = EVP_MD_CTX_new();
    size_t sig_len = 0;
    const unsigned char *input = (const unsigned char *)out->ptr + start;
    size_t input_len = out->len - start;
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &sig_len, input, input_len) != 1)
        goto fail;
    sig = OPENSSL_malloc(sig_len);
    if (!sig || EVP_DigestSign(md, sig, &sig_len, input, input_len) != 1)
        goto fail;
    rc = ar_buf_append(out, ".", 1);
    rc = rc ? rc : ar_base64_encode(ar_span((const char *)sig, sig_len), true, out);
fail:
    if (rc)
        out->len = start;
    OPENSSL_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}

const char *ar_crypto_openssl_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION_STRING);
}
