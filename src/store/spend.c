/*
 * spend.c: the spend record's line format, the one the journal carries. Encoding runs on a
 * worker for every finished request, so it writes the JSON by hand into the caller's
 * buffer (no jansson tree, no allocation beyond the buffer); decoding runs only on the
 * store thread and uses jansson. The format is one compact JSON object per line with short
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
#include <stdio.h>
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

/* ---- decoding (store thread) ---- */

/* Copies obj[name] (a string shorter than cap) into dst. Missing: "" unless required. */
static int get_fixed(const json_t *obj, const char *name, char *dst, size_t cap, bool required)
{
    json_t *v = json_object_get(obj, name);
    if (!v)
        return required ? AR_EINVAL : 0;
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return AR_EINVAL;
    size_t n = json_string_length(v);
    if (required && n == 0)
        return AR_EINVAL;
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return 0;
}

static int get_str(const json_t *obj, const char *name, char **dst)
{
    json_t *v = json_object_get(obj, name);
    if (v && !json_is_string(v))
        return AR_EINVAL;
    *dst = ar_xstrdup(v ? json_string_value(v) : "");
    return 0;
}

static int get_int(const json_t *obj, const char *name, int64_t *dst)
{
    json_t *v = json_object_get(obj, name);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return AR_EINVAL;
    *dst = (int64_t)json_integer_value(v);
    return 0;
}

int ar_spend_decode(const char *line, size_t len, ar_spend_t *r)
{
    memset(r, 0, sizeof(*r));
    json_t *root = ar_json_parse((ar_span_t){line, len}, NULL, 0);
    if (!root)
        return AR_EINVAL;
    int rc = json_is_object(root) ? 0 : AR_EINVAL;
    int64_t status = 0;
    if (!rc)
        rc = get_fixed(root, "id", r->id, sizeof(r->id), true);
    if (!rc)
        rc = get_fixed(root, "rid", r->request_id, sizeof(r->request_id), false);
    if (!rc)
        rc = get_int(root, "ts", &r->ts_ms);
    if (!rc)
        rc = get_int(root, "k", &r->key_id);
    if (!rc)
        rc = get_str(root, "m", &r->model);
    if (!rc)
        rc = get_str(root, "um", &r->upstream_model);
    if (!rc)
        rc = get_str(root, "c", &r->credential);
    if (!rc)
        rc = get_int(root, "pt", &r->prompt_tokens);
    if (!rc)
        rc = get_int(root, "ct", &r->completion_tokens);
    if (!rc)
        rc = get_int(root, "cr", &r->cached_tokens);
    if (!rc)
        rc = get_int(root, "cw", &r->cache_creation_tokens);
    if (!rc)
        rc = get_int(root, "rt", &r->reasoning_tokens);
    if (!rc) {
        json_t *v = json_object_get(root, "usd");
        if (v && !json_is_number(v))
            rc = AR_EINVAL;
        else if (v)
            r->cost_usd = json_number_value(v);
    }
    if (!rc)
        rc = get_int(root, "st", &status);
    if (!rc && (status < 0 || status > 999))
        rc = AR_EINVAL;
    r->status = (int)status;
    if (!rc)
        rc = get_int(root, "lat", &r->latency_ms);
    if (!rc)
        rc = get_int(root, "tfb", &r->ttfb_ms);
    if (!rc) {
        json_t *v = json_object_get(root, "s");
        if (v && !json_is_boolean(v))
            rc = AR_EINVAL;
        else
            r->stream = json_is_true(v);
    }
    json_decref(root);
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
