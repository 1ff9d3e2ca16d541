/*
 * span.h: borrowed byte ranges. Network strings are (pointer, length) pairs that are not
 * NUL-terminated; a span never owns its bytes, so its lifetime is that of the buffer it
 * points into. Helpers here never allocate.
 */
#ifndef AR_CORE_SPAN_H
#define AR_CORE_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct ar_span {
    const char *ptr;
    size_t len;
} ar_span_t;

/** A header as a pair of spans (request or response, either direction). */
typedef struct ar_header {
    ar_span_t name;
    ar_span_t value;
} ar_header_t;

#define AR_LIT(s) ((ar_span_t){(s), sizeof(s) - 1})
#define AR_SPAN_NULL ((ar_span_t){NULL, 0})
/* For printf: printf("%.*s", AR_SPAN_FMT(s)). */
#define AR_SPAN_FMT(s) (int)(s).len, (s).ptr

static inline ar_span_t ar_span(const char *ptr, size_t len)
{
    return (ar_span_t){ptr, len};
}

/** A span over a NUL-terminated string; NULL gives the empty span. */
static inline ar_span_t ar_span_cstr(const char *s)
{
    return (ar_span_t){s, s ? strlen(s) : 0};
}

static inline bool ar_span_eq(ar_span_t a, ar_span_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/** ASCII case-insensitive equality (header names). */
static inline bool ar_span_ieq(ar_span_t a, ar_span_t b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool ar_span_starts(ar_span_t s, ar_span_t prefix)
{
    return s.len >= prefix.len && memcmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

static inline bool ar_span_istarts(ar_span_t s, ar_span_t prefix)
{
    return s.len >= prefix.len && strncasecmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

static inline ar_span_t ar_span_skip(ar_span_t s, size_t n)
{
    return n >= s.len ? (ar_span_t){s.ptr + s.len, 0} : (ar_span_t){s.ptr + n, s.len - n};
}

/** Strips ASCII spaces and tabs on both ends. */
static inline ar_span_t ar_span_trim(ar_span_t s)
{
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/** True when s holds an ASCII control character (0x00-0x1f, 0x7f); a tab counts only
 *  when tab_too. Such bytes must never reach a header or a log line raw. */
static inline bool ar_span_has_ctl(ar_span_t s, bool tab_too)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if ((c < 0x20 && (c != '\t' || tab_too)) || c == 0x7f)
            return true;
    }
    return false;
}

/** First occurrence of needle in s, or NULL. */
static inline const char *ar_span_find(ar_span_t s, ar_span_t needle)
{
    if (needle.len == 0)
        return s.ptr;
    return (const char *)memmem(s.ptr, s.len, needle.ptr, needle.len);
}

#endif
