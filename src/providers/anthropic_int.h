/*
 * anthropic_int.h: the small helpers both halves of the Anthropic translation share: the
 * provider side (anthropic_xlate.c: OpenAI requests to Anthropic, Anthropic answers back)
 * and the front side (anthropic_front.c: Anthropic clients' requests to OpenAI, answers
 * back). Private to src/providers.
 */
#ifndef AR_PROVIDERS_ANTHROPIC_INT_H
#define AR_PROVIDERS_ANTHROPIC_INT_H

#include <string.h>

#include "core/json.h"
#include "providers/anthropic_xlate.h"
#include "providers/provider.h"

static inline bool str_is(const char *s, const char *lit)
{
    return s && strcmp(s, lit) == 0;
}

static inline bool span_is(ar_span_t s, const char *lit)
{
    return ar_span_eq(s, ar_span_cstr(lit));
}

/* The inside of obj[key] when it is a JSON string (escapes kept). */
static inline bool raw_str(ar_span_t obj, const char *key, ar_span_t *inner)
{
    ar_span_t v;
    return ar_jscan_get(obj, ar_span_cstr(key), &v) == 0 && ar_jscan_string(v, inner) == 0;
}

/* A string member's raw value (quotes included), checked to be a well-formed JSON string:
 * these are the bytes copied into what the client receives. */
static inline bool raw_str_value(ar_span_t obj, const char *key, ar_span_t *val)
{
    ar_span_t inner;
    if (ar_jscan_get(obj, ar_span_cstr(key), val) != 0)
        return false;
    return ar_jscan_string(*val, &inner) == 0 && ar_json_validate(*val, NULL, 0) == 0;
}

/* Appends a JSON array element, turning a failed constructor (NULL) into AR_ENOMEM. */
static inline int push(json_t *arr, json_t *v)
{
    if (!v)
        return AR_ENOMEM;
    return json_array_append_new(arr, v) ? AR_ENOMEM : 0;
}

static inline int set(json_t *obj, const char *key, json_t *v)
{
    if (!v)
        return AR_ENOMEM;
    return json_object_set_new(obj, key, v) ? AR_ENOMEM : 0;
}

/* Copies src[key] into dst when present (shared reference: neither tree is modified). */
static inline int copy_key(json_t *dst, const json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);
    if (!v)
        return 0;
    return json_object_set(dst, key, v) ? AR_ENOMEM : 0;
}

static inline json_t *text_block(const char *s, size_t n)
{
    return json_pack("{s:s,s:s%}", "type", "text", "text", s, n);
}

/* A token count (clamped: it is added and subtracted). */
static inline int64_t int_of(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? ar_tokens_clamp((int64_t)json_integer_value(v)) : 0;
}

#endif
