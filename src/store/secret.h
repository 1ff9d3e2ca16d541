/*
 * secret.h: provider secrets at rest. A secret is sealed with AES-256-GCM under the
 * SHA-256 of storage.secret_key, with the connection's name as associated data (a blob
 * copied onto another connection does not open), into nonce (12) || ciphertext || tag (16).
 */
#ifndef AR_STORE_SECRET_H
#define AR_STORE_SECRET_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

/**
 * Seals plain under secret_key for connection name, appending the blob to out.
 * @return 0; AR_EINVAL when secret_key is NULL or empty; AR_EIO; err set.
 */
int ar_secret_seal(const char *secret_key, const char *name, const char *plain, ar_buf_t *out,
                   char *err, size_t errlen) AR_MUST_CHECK;
/**
 * Opens a blob ar_secret_seal made. *plain: malloc'd and NUL-terminated (ar_secret_free).
 * @return 0; AR_EINVAL when secret_key is missing or wrong, or the blob was altered:
 * err says "cannot decrypt", and no byte of a wrong decryption is handed out.
 */
int ar_secret_open(const char *secret_key, const char *name, const unsigned char *blob, size_t len,
                   char **plain, char *err, size_t errlen) AR_MUST_CHECK;
/** Wipes and frees a plaintext secret (NULL is fine). */
void ar_secret_free(char *plain);

#endif
