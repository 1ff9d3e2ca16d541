/*
 * redact.h: keeping secrets out of everything airouter writes. One process-wide set of
 * configured secrets (credential keys, the master key, ...) plus the shapes of provider keys
 * (sk-..., AIza..., ya29...., Bearer tokens) are masked as `sk-abc...xyz` in log lines and
 * in every upstream text relayed to a client (error messages, `_router.errors`). Masking
 * never lengthens text, so it works in place on fixed buffers.
 */
#ifndef AR_CORE_REDACT_H
#define AR_CORE_REDACT_H

#include <stddef.h>

#include "core/span.h"

struct ar_pool;

/**
 * Replaces the set of configured secrets. The strings are copied; secrets shorter than 6
 * bytes are ignored (they would mask ordinary words). Any thread; readers never block.
 */
void ar_redact_set_secrets(const char *const *secrets, size_t cnt);
/** Frees every set ever installed. Only when no other thread can read them any more. */
void ar_redact_shutdown(void);
/**
 * Masks configured secrets and key-like strings in s[0..*len) in place; *len may shrink.
 * @return true when something was masked.
 */
bool ar_redact(char *s, size_t *len);
/** True when s holds a configured secret or a key-like string (nothing allocated). */
bool ar_redact_needed(ar_span_t s);
/**
 * s with secrets masked: s itself when there is nothing to mask, else a NUL-terminated copy
 * in pool.
 */
ar_span_t ar_redact_span(struct ar_pool *pool, ar_span_t s);
/** ar_redact_span for a NUL-terminated string (NULL stays NULL). */
const char *ar_redact_str(struct ar_pool *pool, const char *s);
/**
 * Writes a masked form of a key into out ("sk-abc...xyz"; "***" for keys under 12 bytes).
 * @param out at least 16 bytes. @return out.
 */
char *ar_mask_key(ar_span_t key, char *out, size_t outlen);

#endif
