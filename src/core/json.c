/*
 * json.c: jansson helpers and the allocation-free scanner (see json.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/pool.h"

json_t *ar_json_parse(ar_span_t text, char *err, size_t errlen)
{
    json_error_t je;
    json_t *v = json_loadb(text.ptr, text.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!v && err && errlen)
        snprintf(err, errlen, "%s at line %d column %d", je.text, je.line, je.column);
    return v;
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return ar_buf_append((ar_buf_t *)data, buffer, size) ? -1 : 0;
}

int ar_json_dump(const json_t *v, ar_buf_t *out)
{
    if (json_dump_callback(v, dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        return AR_ETOOBIG;
    return 0;
}

const char *ar_json_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

ar_span_t ar_json_span(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return AR_SPAN_NULL;
    return ar_span(json_string_value(v), json_string_length(v));
}

/* ---- scanner ---- */

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *skip_string(const char *p, const char *end)
{
    /* p points at the opening quote */
    p++;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return NULL;
        /* count the backslashes right before the quote */
        const char *b = q;
        while (b > p && b[-1] == '\\')
            b--;
        if (((q - b) & 1) == 0)
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

static const char *skip_literal(const char *p, const char *end, const char *lit, size_t n)
{
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

/* Bytes that matter while skipping: 1 = structural ({ [ } ] "), 2 = part of a number. */
static const unsigned char cls[256] = {
    ['{'] = 1, ['['] = 1, ['}'] = 1, [']'] = 1, ['"'] = 1, ['+'] = 2, ['-'] = 2,
    ['.'] = 2, ['e'] = 2, ['E'] = 2, ['0'] = 2, ['1'] = 2, ['2'] = 2, ['3'] = 2,
    ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2, ['8'] = 2, ['9'] = 2,
};

static const char *skip_number(const char *p, const char *end)
{
    const char *s = p;
    while (p < end && cls[(unsigned char)*p] == 2)
        p++;
    return p > s ? p : NULL;
}

/* Containers are skipped with an explicit depth counter, so deep nesting costs no stack. */
static const char *skip_container(const char *p, const char *end)
{
    size_t depth = 0;
    while (p < end) {
        while (p < end && cls[(unsigned char)*p] != 1)
            p++;
        if (p >= end)
            break;
        char c = *p;
        if (c == '"') {
            p = skip_string(p, end);
            if (!p)
                return NULL;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return NULL;
            if (--depth == 0)
                return p + 1;
        }
        p++;
    }
    return NULL;
}

const char *ar_jscan_skip(const char *p, const char *end)
{
    p = ws(p, end);
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"': return skip_string(p, end);
    case '{':
    case '[': return skip_container(p, end);
    case 't': return skip_literal(p, end, "true", 4);
    case 'f': return skip_literal(p, end, "false", 5);
    case 'n': return skip_literal(p, end, "null", 4);
    default: return skip_number(p, end);
    }
}

int ar_jscan_get(ar_span_t obj, ar_span_t key, ar_span_t *val)
{
    if (!obj.len)
        return AR_EPARSE; /* also the null span of an absent member: NULL + 0 is undefined */
    const char *end = obj.ptr + obj.len;
    const char *p = ws(obj.ptr, end);
    if (p >= end || *p != '{')
        return AR_EPARSE;
    p = ws(p + 1, end);
    if (p < end && *p == '}')
        return AR_ENOTFOUND;
    while (p < end) {
        if (*p != '"')
            return AR_EPARSE;
        const char *kend = skip_string(p, end);
        if (!kend)
            return AR_EPARSE;
        bool match = ar_jscan_key_eq(ar_span(p + 1, (size_t)(kend - p - 2)), key);
        p = ws(kend, end);
        if (p >= end || *p != ':')
            return AR_EPARSE;
        const char *vstart = ws(p + 1, end);
        const char *vend = ar_jscan_skip(vstart, end);
        if (!vend)
            return AR_EPARSE;
        if (match) {
            *val = ar_span(vstart, (size_t)(vend - vstart));
            return 0;
        }
        p = ws(vend, end);
        if (p >= end)
            return AR_EPARSE;
        if (*p == '}')
            return AR_ENOTFOUND;
        if (*p != ',')
            return AR_EPARSE;
        p = ws(p + 1, end);
    }
    return AR_EPARSE;
}

int ar_jscan_get_int(ar_span_t obj, ar_span_t key, int64_t *out)
{
    ar_span_t v;
    int rc = ar_jscan_get(obj, key, &v);
    if (rc)
        return rc;
    if (v.len == 0 || v.len > 24)
        return AR_EPARSE;
    char tmp[32];
    memcpy(tmp, v.ptr, v.len);
    tmp[v.len] = '\0';
    char *e;
    errno = 0;
    long long n = strtoll(tmp, &e, 10);
    if (e == tmp || errno)
        return AR_EPARSE;
    if (*e != '\0') {
        /* "1.5e3" or "10.0": JSON has one number type, so an integral value may be written
         * with a fraction or an exponent; anything else is not an integer. */
        if (*e != '.' && *e != 'e' && *e != 'E')
            return AR_EPARSE;
        double d = strtod(tmp, &e);
        if (*e != '\0' || errno || d != floor(d) || d < -9.2e18 || d > 9.2e18)
            return AR_EPARSE;
        n = (long long)d;
    }
    *out = (int64_t)n;
    return 0;
}

bool ar_jscan_is_null(ar_span_t val)
{
    return val.len == 4 && memcmp(val.ptr, "null", 4) == 0;
}

int ar_jscan_string(ar_span_t val, ar_span_t *out)
{
    if (val.len < 2 || val.ptr[0] != '"' || val.ptr[val.len - 1] != '"')
        return AR_EPARSE;
    *out = ar_span(val.ptr + 1, val.len - 2);
    return 0;
}

ar_span_t ar_jscan_string_text(ar_pool_t *pool, ar_span_t val)
{
    ar_span_t inner;
    if (ar_jscan_string(val, &inner) != 0)
        return AR_SPAN_NULL;
    if (!memchr(inner.ptr, '\\', inner.len))
        return inner;
    json_t *v = json_loadb(val.ptr, val.len, JSON_DECODE_ANY, NULL);
    ar_span_t out = AR_SPAN_NULL;
    if (json_is_string(v))
        out = ar_span(ar_pool_strndup(pool, json_string_value(v), json_string_length(v)),
                      json_string_length(v));
    json_decref(v);
    return out;
}

const char *ar_json_jansson_version(void)
{
    return jansson_version_str();
}
