/*
 * str.c: value parsers (see str.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"

int ar_parse_int64(ar_span_t s, int64_t *out)
{
    s = ar_span_trim(s);
    if (s.len == 0 || s.len > 20)
        return AR_EINVAL;
    char tmp[24];
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end != '\0' || end == tmp)
        return AR_EINVAL;
    *out = (int64_t)v;
    return 0;
}

int ar_parse_double(ar_span_t s, double *out)
{
    s = ar_span_trim(s);
    if (s.len == 0 || s.len > 63)
        return AR_EINVAL;
    char tmp[64];
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (errno || *end != '\0' || end == tmp)
        return AR_EINVAL;
    *out = v;
    return 0;
}

int ar_parse_bool(ar_span_t s, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"};
    static const char *no[] = {"false", "no", "off", "0"};
    s = ar_span_trim(s);
    for (size_t i = 0; i < 4; i++) {
        if (ar_span_ieq(s, ar_span_cstr(yes[i]))) {
            *out = true;
            return 0;
        }
        if (ar_span_ieq(s, ar_span_cstr(no[i]))) {
            *out = false;
            return 0;
        }
    }
    return AR_EINVAL;
}

int ar_parse_duration_ms(ar_span_t s, int64_t *out_ms)
{
    s = ar_span_trim(s);
    if (s.len == 0)
        return AR_EINVAL;
    if (ar_span_eq(s, AR_LIT("-1"))) {
        *out_ms = AR_UNLIMITED;
        return 0;
    }
    int64_t total = 0;
    size_t i = 0;
    bool any = false;
    while (i < s.len) {
        if (!isdigit((unsigned char)s.ptr[i]))
            return AR_EINVAL;
        double num = 0;
        size_t start = i;
        while (i < s.len && (isdigit((unsigned char)s.ptr[i]) || s.ptr[i] == '.'))
            i++;
        char tmp[32];
        if (i - start >= sizeof(tmp))
            return AR_EINVAL;
        memcpy(tmp, s.ptr + start, i - start);
        tmp[i - start] = '\0';
        char *end;
        num = strtod(tmp, &end);
        if (*end != '\0')
            return AR_EINVAL;
        size_t ustart = i;
        while (i < s.len && isalpha((unsigned char)s.ptr[i]))
            i++;
        ar_span_t unit = ar_span(s.ptr + ustart, i - ustart);
        double mult;
        if (unit.len == 0) {
            if (i != s.len || any)
                return AR_EINVAL; /* a bare number must stand alone */
            mult = 1000;
        } else if (ar_span_eq(unit, AR_LIT("ms"))) {
            mult = 1;
        } else if (ar_span_eq(unit, AR_LIT("s"))) {
            mult = 1000;
        } else if (ar_span_eq(unit, AR_LIT("m"))) {
            mult = 60000;
        } else if (ar_span_eq(unit, AR_LIT("h"))) {
            mult = 3600000;
        } else if (ar_span_eq(unit, AR_LIT("d"))) {
            mult = 86400000;
        } else {
            return AR_EINVAL;
        }
        double v = num * mult;
        if (v > 1e15)
            return AR_EINVAL;
        total += (int64_t)v;
        any = true;
    }
    *out_ms = total;
    return 0;
}

void ar_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t ar_u64_dec(uint64_t v, char *out)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

void ar_u64_hex(uint64_t v, char *out, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = hex[v & 15];
        v >>= 4;
    }
}

size_t ar_utf8_seq_len(const char *s, size_t avail)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* the allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    }
    return n;
}
