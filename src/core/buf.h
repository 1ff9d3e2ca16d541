/*
 * buf.h: a growable byte buffer with a hard cap given at init. Appends past the cap fail
 * with AR_ETOOBIG and leave the buffer as it was, so a client or an upstream can never
 * make us grow without bound. The buffer owns its heap memory; ar_buf_dispose frees it.
 */
#ifndef AR_CORE_BUF_H
#define AR_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/err.h"
#include "core/span.h"

typedef struct ar_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len */
} ar_buf_t;

/** Initialises an empty buffer that may grow to max bytes. Allocates nothing. */
void ar_buf_init(ar_buf_t *b, size_t max);
/** Frees the memory; the buffer is empty and reusable afterwards. */
void ar_buf_dispose(ar_buf_t *b);
/** Empties the buffer, keeping its memory. */
static inline void ar_buf_reset(ar_buf_t *b)
{
    b->len = 0;
}
/** Makes room for n more bytes. @return 0 or AR_ETOOBIG. */
int ar_buf_reserve(ar_buf_t *b, size_t n) AR_MUST_CHECK;
/** Appends n bytes. @return 0 or AR_ETOOBIG (the buffer is unchanged then). */
int ar_buf_append(ar_buf_t *b, const void *p, size_t n) AR_MUST_CHECK;
static inline int ar_buf_append_span(ar_buf_t *b, ar_span_t s) AR_MUST_CHECK;
static inline int ar_buf_append_span(ar_buf_t *b, ar_span_t s)
{
    return ar_buf_append(b, s.ptr, s.len);
}
/** Appends a NUL-terminated string. */
int ar_buf_append_str(ar_buf_t *b, const char *s) AR_MUST_CHECK;
/** Appends printf output. @return 0 or AR_ETOOBIG. */
int ar_buf_appendf(ar_buf_t *b, const char *fmt, ...) AR_MUST_CHECK
    __attribute__((format(printf, 2, 3)));
int ar_buf_vappendf(ar_buf_t *b, const char *fmt, va_list ap) AR_MUST_CHECK;
/** Appends s as the inside of a JSON string literal (no surrounding quotes). */
int ar_buf_append_json_escaped(ar_buf_t *b, ar_span_t s) AR_MUST_CHECK;
/** Ensures ptr[len] == '\0' (not counted in len). @return 0 or AR_ETOOBIG. */
int ar_buf_nul(ar_buf_t *b) AR_MUST_CHECK;
/** The content as a span. */
static inline ar_span_t ar_buf_span(const ar_buf_t *b)
{
    return (ar_span_t){b->ptr, b->len};
}
/** Removes the first n bytes. */
void ar_buf_consume(ar_buf_t *b, size_t n);

#endif
