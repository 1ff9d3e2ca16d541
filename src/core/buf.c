/*
 * buf.c: capped growable buffers (see buf.h). Growth doubles, so appending byte by byte is
 * amortised O(1), but callers on hot paths append whole spans.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/str.h"

void ar_buf_init(ar_buf_t *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void ar_buf_dispose(ar_buf_t *b)
{
    if (b->ptr)
        ar_free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
}

int ar_buf_reserve(ar_buf_t *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return AR_ETOOBIG;
    size_t need = b->len + n + 1; /* room for ar_buf_nul */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1 && need <= b->max + 1)
        cap = b->max + 1;
    b->ptr = ar_xrealloc(b->ptr, cap);
    b->cap = cap;
    return 0;
}

int ar_buf_append(ar_buf_t *b, const void *p, size_t n)
{
    int rc = ar_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->ptr + b->len, p, n);
    b->len += n;
    return 0;
}

int ar_buf_append_str(ar_buf_t *b, const char *s)
{
    return ar_buf_append(b, s, strlen(s));
}

int ar_buf_vappendf(ar_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return AR_EINVAL;
    if ((size_t)n < sizeof(small))
        return ar_buf_append(b, small, (size_t)n);
    int rc = ar_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int ar_buf_appendf(ar_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ar_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int ar_buf_append_json_escaped(ar_buf_t *b, ar_span_t s)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        size_t seq = 0;
        if (c >= 0x80) {
            seq = ar_utf8_seq_len(s.ptr + i, s.len - i);
            if (seq) {
                i += seq - 1;
                continue;
            }
        } else if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        int rc = ar_buf_append(b, s.ptr + start, i - start);
        if (rc)
            return rc;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (c >= 0x80) {
                /* not UTF-8 (an upstream's broken text): what is written stays valid JSON */
                memcpy(esc, "\\ufffd", 6);
            } else {
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
            }
            n = 6;
        }
        rc = ar_buf_append(b, esc, n);
        if (rc)
            return rc;
        start = i + 1;
    }
    return ar_buf_append(b, s.ptr + start, s.len - start);
}

int ar_buf_nul(ar_buf_t *b)
{
    int rc = ar_buf_reserve(b, 0);
    if (rc)
        return rc;
    if (!b->ptr) {
        b->ptr = ar_xmalloc(1);
        b->cap = 1;
    }
    b->ptr[b->len] = '\0';
    return 0;
}

void ar_buf_consume(ar_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
}
