/*
 * str.h: small parsers for values people write in config files and headers: durations,
 * integers, booleans. They never allocate and report failure with AR_EINVAL.
 */
#ifndef AR_CORE_STR_H
#define AR_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/span.h"

/** Marks "no limit" in durations and counts (the config's -1). */
#define AR_UNLIMITED (-1)

/**
 * Parses a duration: "500ms", "30s", "5m", "1h", "1d", compounds like "1h30m", a bare
 * number of seconds, or "-1" (AR_UNLIMITED). @return 0 or AR_EINVAL.
 */
int ar_parse_duration_ms(ar_span_t s, int64_t *out_ms) AR_MUST_CHECK;
/** Parses a whole decimal integer (optional sign). @return 0 or AR_EINVAL. */
int ar_parse_int64(ar_span_t s, int64_t *out) AR_MUST_CHECK;
/** Parses a decimal number. @return 0 or AR_EINVAL. */
int ar_parse_double(ar_span_t s, double *out) AR_MUST_CHECK;
/** Parses true/false/yes/no/on/off/1/0 (any case). @return 0 or AR_EINVAL. */
int ar_parse_bool(ar_span_t s, bool *out) AR_MUST_CHECK;
/** The value of a hex digit, or -1. */
static inline int ar_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/**
 * The length (2-4) of the well-formed UTF-8 sequence that starts p[0..n) with a byte >= 0x80
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
 */
size_t ar_utf8_seq_len(const char *p, size_t n);

/** Writes v in decimal into out (at least 21 bytes) with a NUL. @return the length. */
size_t ar_u64_dec(uint64_t v, char *out);
/** Writes v as exactly `digits` lower-case hex digits into out (no NUL). */
void ar_u64_hex(uint64_t v, char *out, int digits);
/** Lower-case hex of n bytes into out (2n+1 bytes incl. NUL). */
void ar_hex_encode(const unsigned char *in, size_t n, char *out);

#endif
