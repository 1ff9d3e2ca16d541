/*
 * crypto.h: the OpenSSL half of core: hashing, randomness, constant-time comparison and
 * base64. This is the only file that includes OpenSSL headers; later JWT signing and
 * secret encryption land here too.
 */
#ifndef AR_CORE_CRYPTO_H
#define AR_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/span.h"

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

#endif
