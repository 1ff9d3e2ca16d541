/*
 * xlate.h: the small JSON helpers every translator shares, the providers' (OpenAI requests
 * to an upstream's format and back) and the fronts' (a client's format to OpenAI and back,
 * src/fronts/): string tests, reads of raw string members with the scanner, and jansson
 * builders that turn a failed constructor into AR_ENOMEM. Header-only; no state.
 */
#ifndef AR_PROVIDERS_XLATE_H
#define AR_PROVIDERS_XLATE_H

#include <stdbool.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/span.h"

/** Whether s (may be NULL) is the string lit. */
static inline bool ar_xl_str_is(const char *s, const char *lit)
{
    return s && strcmp(s, lit) == 0;
}

/** Whether the span holds exactly lit. */
static inline bool ar_xl_span_is(ar_span_t s, const char *lit)
{
    return ar_span_eq(s, ar_span_cstr(lit));
}

/** The inside of obj[key] when it is a JSON string (escapes kept). */
static inline bool ar_xl_raw_str(ar_span_t obj, const char *key, ar_span_t *inner)
{
    ar_span_t v;
    return ar_jscan_get(obj, ar_span_cstr(key), &v) == 0 && ar_jscan_string(v, inner) == 0;
}

/** A string member's raw value (quotes included), checked to be a well-formed JSON string:
 * these are the bytes copied into what the client receives. */
static inline bool ar_xl_raw_str_value(ar_span_t obj, const char *key, ar_span_t *val)
{
    ar_span_t inner;
    if (ar_jscan_get(obj, ar_span_cstr(key), val) != 0)
        return false;
    return ar_jscan_string(*val, &inner) == 0 && ar_json_validate(*val, NULL, 0) == 0;
}

/** Appends a JSON array element (v is taken), turning a failed constructor (NULL) into
 * AR_ENOMEM. */
static inline int ar_xl_push(json_t *arr, json_t *v)
{
    if (!v)
        return AR_ENOMEM;
    return json_array_append_new(arr, v) ? AR_ENOMEM : 0;
}

/** Sets obj[key] = v (v is taken); a NULL v is AR_ENOMEM. */
static inline int ar_xl_set(json_t *obj, const char *key, json_t *v)
{
    if (!v)
        return AR_ENOMEM;
    return json_object_set_new(obj, key, v) ? AR_ENOMEM : 0;
}

/** Copies src[key] into dst when present (shared reference: neither tree is modified). */
static inline int ar_xl_copy_key(json_t *dst, const json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);
    if (!v)
        return 0;
    return json_object_set(dst, key, v) ? AR_ENOMEM : 0;
}

/** {"type":"text","text":s} (an OpenAI text part and an Anthropic text block alike), or NULL. */
static inline json_t *ar_xl_text_block(const char *s, size_t n)
{
    return json_pack("{s:s,s:s%}", "type", "text", "text", s, n);
}

#endif
