/*
 * secret.c: provider secrets sealed at rest (see secret.h). The cipher is core/crypto.h's
 * AES-256-GCM; this file owns the key derivation, the associated data and the messages.
 */
#include <stdio.h>
#include <string.h>

#include "core/crypto.h"
#include "core/mem.h"
#include "store/secret.h"

#define SECRET_MAX (64 * 1024)

static int derive(const char *secret_key, unsigned char key[32], char *err, size_t errlen)
{
    if (!secret_key || !*secret_key) {
        snprintf(err, errlen, "storage.secret_key is required to store provider secrets");
        return AR_EINVAL;
    }
    ar_sha256(ar_span_cstr(secret_key), key);
    return 0;
}

int ar_secret_seal(const char *secret_key, const char *name, const char *plain, ar_buf_t *out,
                   char *err, size_t errlen)
{
    unsigned char key[32];
    int rc = derive(secret_key, key, err, errlen);
    if (rc)
        return rc;
    if (strlen(plain) > SECRET_MAX) {
        snprintf(err, errlen, "the secret is longer than %d bytes", SECRET_MAX);
        return AR_EINVAL;
    }
    rc = ar_aes256gcm_seal(key, ar_span_cstr(name), ar_span_cstr(plain), out);
    memset(key, 0, sizeof(key));
    if (rc)
        snprintf(err, errlen, "cannot encrypt the secret");
    return rc ? AR_EIO : 0;
}

int ar_secret_open(const char *secret_key, const char *name, const unsigned char *blob, size_t len,
                   char **plain, char *err, size_t errlen)
{
    unsigned char key[32];
    *plain = NULL;
    int rc = derive(secret_key, key, err, errlen);
    if (rc)
        return rc;
    ar_buf_t b;
    ar_buf_init(&b, SECRET_MAX + 64);
    rc = ar_aes256gcm_open(key, ar_span_cstr(name), ar_span((const char *)blob, len), &b);
    memset(key, 0, sizeof(key));
    if (rc == 0)
        rc = ar_buf_nul(&b);
    if (rc) {
        if (b.ptr)
            memset(b.ptr, 0, b.cap);
        ar_buf_dispose(&b);
        snprintf(err, errlen,
                 "cannot decrypt the secret of connection '%s': storage.secret_key is not the "
                 "one it was stored with, or the database was altered",
                 name);
        return AR_EINVAL;
    }
    *plain = ar_xstrndup(b.ptr, b.len);
    memset(b.ptr, 0, b.cap);
    ar_buf_dispose(&b);
    return 0;
}

void ar_secret_free(char *plain)
{
    if (!plain)
        return;
    memset(plain, 0, strlen(plain));
    ar_free(plain);
}
