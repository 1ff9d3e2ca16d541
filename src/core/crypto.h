/*
 * crypto.h: the OpenSSL half of core: hashing, randomness, constant-time comparison,
 * base64 and RS256 JWT signing (Google service accounts). This is the only file that
 * includes OpenSSL headers; secret encryption lands here too.
 */
#ifndef AR_CORE_CRYPTO_H
#define AR_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/span.h"

/** SHA-256 of in, raw. */
void ar_sha256(ar_span_t in, unsigned char out[32]);
/** SHA-256 of in as 64 lower-case hex chars plus NUL. */
void ar_sha256_hex(ar_span_t in, char out[65]);
/** Fills out with n cryptographically random bytes. @return 0 or AR_EIO. */
int ar_random_bytes(void *out, size_t n) AR_MUST_CHECK;
/** Compares in time that depends only on the lengths, never on where they differ. */
bool ar_ct_equal(ar_span_t a, ar_span_t b);
/** A fast non-cryptographic random number (per-thread xorshift, seeded once). */
uint64_t ar_rand_u64(void);
/** Appends the standard (pad=true) or URL-safe unpadded base64 of in. */
int ar_base64_encode(ar_span_t in, bool url, ar_buf_t *out) AR_MUST_CHECK;
/** Decodes standard or URL-safe base64 (padding optional). @return 0 or AR_EPARSE. */
int ar_base64_decode(ar_span_t in, ar_buf_t *out) AR_MUST_CHECK;

#define AR_GCM_NONCE_LEN 12
#define AR_GCM_TAG_LEN 16
/**
 * AES-256-GCM: appends nonce (12 random bytes) || ciphertext || tag (16 bytes) of plain
 * to out, authenticating aad too. @return 0, AR_EIO (no randomness, cipher failure) or
 * AR_ETOOBIG (out full).
 */
int ar_aes256gcm_seal(const unsigned char key[32], ar_span_t aad, ar_span_t plain,
                      ar_buf_t *out) AR_MUST_CHECK;
/**
 * Opens what ar_aes256gcm_seal made with the same key and aad, appending the plaintext to
 * out. @return 0; AR_EINVAL when the blob is too short, was altered, or the key or aad
 * differ (nothing is appended then); AR_ETOOBIG when out is full.
 */
int ar_aes256gcm_open(const unsigned char key[32], ar_span_t aad, ar_span_t blob,
                      ar_buf_t *out) AR_MUST_CHECK;

/**
 * Checks that pem holds an RSA private key OpenSSL can read (PKCS#8 "BEGIN PRIVATE KEY"
 * or PKCS#1 "BEGIN RSA PRIVATE KEY", unencrypted), so a bad key is reported at start.
 * @param pem borrowed. @return 0 or AR_EINVAL.
 */
int ar_rsa_key_check(ar_span_t pem) AR_MUST_CHECK;
/**
 * Appends a compact RS256 JWT to out: base64url(header_json) "." base64url(claims_json)
 * "." base64url(RSASSA-PKCS1-v1_5 SHA-256 signature of the first two parts), RFC 7515.
 * The JSON texts are signed as given (the caller serialises them).
 * @param pem_key an unencrypted RSA private key in PEM, borrowed
 * @return 0; AR_EINVAL when the key cannot be read or is not RSA; AR_EIO when signing
 * fails; AR_ETOOBIG when out is full (out is then left as it was). Any thread.
 */
int ar_jwt_rs256(ar_span_t header_json, ar_span_t claims_json, ar_span_t pem_key,
                 ar_buf_t *out) AR_MUST_CHECK;

/** The version of the OpenSSL library loaded at run time ("3.0.11"), not the headers'. */
const char *ar_crypto_openssl_version(void);

#endif
