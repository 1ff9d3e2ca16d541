/*
 * responses_int.h: the small tree helpers both halves of the Responses front share
 * (responses_request.c, responses_answer.c). Private to src/fronts.
 */
#ifndef AR_FRONTS_RESPONSES_INT_H
#define AR_FRONTS_RESPONSES_INT_H

#include <string.h>

#include "core/json.h"
#include "fronts/responses.h"

static inline bool str_is(const char *s, const char *lit)
{
    return s && strcmp(s, lit) == 0;
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

static inline json_t *jstr_span(ar_span_t s)
{
    return json_stringn(s.len ? s.ptr : "", s.len);
}

#endif
