/*
 * spend.c: the spend record's line format, the one the journal carries. Encoding runs on a
 * worker for every finished request, so it writes the JSON by hand into the caller's
 * buffer (no jansson tree, no allocation beyond the buffer); decoding runs only on the
 * store thread with the allocation-free scanner. The format is one compact JSON object per line with short
 * member names (they are written for every request):
 *
 *   id   record id            rid  request_id         ts   ts_ms (wall clock)
 *   k    key_id               m    model              um   upstream_model
 *   c    credential           pt   prompt_tokens      ct   completion_tokens
 *   cr   cached_tokens        cw   cache_creation_tokens
 *   rt   reasoning_tokens     usd  cost_usd           st   status
 *   lat  latency_ms           tfb  ttfb_ms            s    stream (true/false)
 *
 * Only "id" is required when reading: a member that is missing reads as 0 or "", so a
 * newer writer may add members and an older reader still applies the record.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "store/spend.h"

static int put_str(ar_buf_t *b, const char *name, const char *s)
{
    int rc = ar_buf_appendf(b, ",\"%s\":\"", name);
    if (!rc)
        rc = ar_buf_append_json_escaped(b, ar_span_cstr(s ? s : ""));
    if (!rc)
        rc = ar_buf_append(b, "\"", 1);
    return rc;
}

static int put_int(ar_buf_t *b, const char *name, int64_t v)
{
    return ar_buf_appendf(b, ",\"%s\":%lld", name, (long long)v);
}

/* %.17g reads back as the same double. The decimal point is whatever LC_NUMERIC says; the
 * process never changes it from "C", but a ',' would make the line unreadable, so it is
 * mended here rather than trusted. JSON has no NaN or infinity: those are written as 0. */
static int put_double(ar_buf_t *b, const char *name, double v)
{
    char num[40];
    if (!isfinite(v))
        v = 0;
    snprintf(num, sizeof(num), "%.17g", v);
    for (char *p = num; *p; p++) {
        if (*p == ',')
            *p = '.';
    }
    return ar_buf_appendf(b, ",\"%s\":%s", name, num);
}

int ar_spend_encode(const ar_spend_t *r, ar_buf_t *out)
{
    size_t start = out->len;
    /* id and request_id are fixed arrays: bound the read even if one lacks its NUL */
    int rc = ar_buf_append_str(out, "{\"id\":\"");
    if (!rc)
        rc = ar_buf_append_json_escaped(out, (ar_span_t){r->id, strnlen(r->id, sizeof(r->id))});
    if (!rc)
        rc = ar_buf_append(out, "\"", 1);
    if (!rc)
        rc = ar_buf_append_str(out, ",\"rid\":\"");
    if (!rc)
        rc = ar_buf_append_json_escaped(
            out, (ar_span_t){r->request_id, strnlen(r->request_id, sizeof(r->request_id))});
    if (!rc)
        rc = ar_buf_append(out, "\"", 1);
    if (!rc)
        rc = put_int(out, "ts", r->ts_ms);
    if (!rc)
        rc = put_int(out, "k", r->key_id);
    if (!rc)
        rc = put_str(out, "m", r->model);
    if (!rc)
        rc = put_str(out, "um", r->upstream_model);
    if (!rc)
        rc = put_str(out, "c", r->credential);
    if (!rc)
        rc = put_int(out, "pt", r->prompt_tokens);
    if (!rc)
        rc = put_int(out, "ct", r->completion_tokens);
    if (!rc)
        rc = put_int(out, "cr", r->cached_tokens);
    if (!rc)
        rc = put_int(out, "cw", r->cache_creation_tokens);
    if (!rc)
        rc = put_int(out, "rt", r->reasoning_tokens);
    if (!rc)
        rc = put_double(out, "usd", r->cost_usd);
    if (!rc)
        rc = put_int(out, "st", r->status);
    if (!rc)
        rc = put_int(out, "lat", r->latency_ms);
    if (!rc)
        rc = put_int(out, "tfb", r->ttfb_ms);
    if (!rc)
        rc = ar_buf_append_str(out, r->stream ? ",\"s\":true}\n" : ",\"s\":false}\n");
    if (rc)
        out->len = start; /* all or nothing: a half record must never reach the journal */
    return rc;
}

/* ---- decoding (store thread) ----
 * The store thread decodes every record the server writes, so this reads the line with
 * the allocation-free scanner (core/json.h) rather than building a jansson tree: a strict
 * validation first, then one pass over the members. Only a string with escapes (rare: the
 * writer escapes nothing but quotes, backslashes and control characters) goes to jansson.
 */

enum {
    F_ID,
    F_RID,
    F_TS,
    F_K,
    F_M,
    F_UM,
    F_C,
    F_PT,
    F_CT,
    F_CR,
    F_CW,
    F_RT,
    F_USD,
    F_ST,
    F_LAT,
    F_TFB,
    F_S,
    F_CNT
};
#define FIELD(s)                                                                                   \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
static const ar_span_t field_names[F_CNT] = {
    FIELD("id"),  FIELD("rid"), FIELD("ts"),  FIELD("k"),   FIELD("m"),  FIELD("um"),
    FIELD("c"),   FIELD("pt"),  FIELD("ct"),  FIELD("cr"),  FIELD("cw"), FIELD("rt"),
    FIELD("usd"), FIELD("st"),  FIELD("lat"), FIELD("tfb"), FIELD("s")};
#undef FIELD

/* Which field a raw key names, or -1. The writer's order is tried first (expect), so a
 * line this server wrote costs one comparison per member; escapes go the slow way. */
static int field_of(ar_span_t key, int expect)
{
    bool plain = !memchr(key.ptr, '\\', key.len);
    if (plain && expect < F_CNT && ar_span_eq(key, field_names[expect]))
        return expect;
    for (int f = 0; f < F_CNT; f++) {
        if (plain ? ar_span_eq(key, field_names[f]) : ar_jscan_key_eq(key, field_names[f]))
            return f;
    }
    return -1;
}

/* The decoded text of a raw JSON string value, malloc'd. @return NULL when not a string. */
static char *string_of(ar_span_t val)
{
    ar_span_t raw;
    if (ar_jscan_string(val, &raw) != 0)
        return NULL;
    if (!memchr(raw.ptr, '\\', raw.len))
        return ar_xstrndup(raw.ptr, raw.len);
    json_t *v = json_loadb(val.ptr, val.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    char *out = json_is_string(v) && !memchr(json_string_value(v), '\0', json_string_length(v))
                    ? ar_xstrndup(json_string_value(v), json_string_length(v))
                    : NULL;
    json_decref(v);
    return out;
}

/* An integer value: digits with an optional minus, in int64_t. */
static int int_of(ar_span_t val, int64_t *out)
{
    size_t i = val.len && val.ptr[0] == '-' ? 1 : 0;
    if (i == val.len || val.len > 20)
        return AR_EINVAL;
    uint64_t n = 0;
    for (size_t j = i; j < val.len; j++) {
        unsigned d = (unsigned)(val.ptr[j] - '0');
        if (d > 9 || n > (UINT64_MAX - d) / 10)
            return AR_EINVAL;
        n = n * 10 + d;
    }
    if (i ? n > (uint64_t)INT64_MAX + 1 : n > (uint64_t)INT64_MAX)
        return AR_EINVAL;
    *out = i ? (int64_t)(0 - n) : (int64_t)n;
    return 0;
}

static int double_of(ar_span_t val, double *out)
{
    char num[64];
    if (val.len == 0 || val.len >= sizeof(num) || val.ptr[0] == '"' || val.ptr[0] == 't' ||
        val.ptr[0] == 'f' || val.ptr[0] == 'n' || val.ptr[0] == '{' || val.ptr[0] == '[')
        return AR_EINVAL;
    memcpy(num, val.ptr, val.len);
    num[val.len] = '\0';
    char *end;
    *out = strtod(num, &end);
    return *end == '\0' ? 0 : AR_EINVAL;
}

/* One member into r. */
static int put_field(ar_spend_t *r, int f, ar_span_t val)
{
    int64_t *ints[F_CNT] = {[F_TS] = &r->ts_ms,
                            [F_K] = &r->key_id,
                            [F_PT] = &r->prompt_tokens,
                            [F_CT] = &r->completion_tokens,
                            [F_CR] = &r->cached_tokens,
                            [F_CW] = &r->cache_creation_tokens,
                            [F_RT] = &r->reasoning_tokens,
                            [F_LAT] = &r->latency_ms,
                            [F_TFB] = &r->ttfb_ms};
    if (ints[f])
        return int_of(val, ints[f]);
    switch (f) {
    case F_ID:
    case F_RID: {
        char *text = string_of(val);
        char *dst = f == F_ID ? r->id : r->request_id;
        size_t n = text ? strlen(text) : 0;
        int rc = text && n < AR_SPEND_ID_MAX && (f != F_ID || n) ? 0 : AR_EINVAL;
        if (!rc)
            memcpy(dst, text, n + 1);
        ar_free(text);
        return rc;
    }
    case F_M:
    case F_UM:
    case F_C: {
        char **dst = f == F_M ? &r->model : f == F_UM ? &r->upstream_model : &r->credential;
        *dst = string_of(val);
        return *dst ? 0 : AR_EINVAL;
    }
    case F_USD: return double_of(val, &r->cost_usd);
    case F_ST: {
        int64_t st;
        if (int_of(val, &st) != 0 || st < 0 || st > 999)
            return AR_EINVAL;
        r->status = (int)st;
        return 0;
    }
    case F_S:
        if (ar_span_eq(val, AR_LIT("true")) || ar_span_eq(val, AR_LIT("false"))) {
            r->stream = val.ptr[0] == 't';
            return 0;
        }
        return AR_EINVAL;
    }
    return 0;
}

int ar_spend_decode(const char *line, size_t len, ar_spend_t *r)
{
    memset(r, 0, sizeof(*r));
    ar_span_t text = {line, len};
    ar_jscan_iter_t it;
    if (ar_json_validate(text, NULL, 0) != 0 || ar_jscan_object_begin(text, &it) != 0)
        return AR_EINVAL;
    unsigned seen = 0;
    ar_span_t key, val;
    int rc = 0;
    int f = -1;
    while (!rc && ar_jscan_object_next(&it, &key, &val)) {
        f = field_of(key, f + 1);
        if (f < 0)
            continue; /* a member a newer writer added */
        /* a member twice is not a record this writer made */
        rc = seen & (1u << f) ? AR_EINVAL : put_field(r, f, val);
        seen |= 1u << f;
    }
    if (!rc && !(seen & (1u << F_ID)))
        rc = AR_EINVAL;
    for (int m = F_M; !rc && m <= F_C; m++) {
        char **dst = m == F_M ? &r->model : m == F_UM ? &r->upstream_model : &r->credential;
        if (!*dst)
            *dst = ar_xstrdup("");
    }
    if (rc)
        ar_spend_dispose(r);
    return rc;
}

void ar_spend_dispose(ar_spend_t *r)
{
    if (!r)
        return;
    ar_free(r->model);
    ar_free(r->upstream_model);
    ar_free(r->credential);
    memset(r, 0, sizeof(*r));
}
