/*
 * fronts_int.h: the small helpers the fronts' files share (both directions of a front),
 * besides the translators' common ones in providers/xlate.h. Private to src/fronts.
 */
#ifndef AR_FRONTS_FRONTS_INT_H
#define AR_FRONTS_FRONTS_INT_H

#include "core/json.h"
#include "providers/provider.h"
#include "providers/xlate.h"

static inline const char *str_or(const char *s, const char *def)
{
    return s ? s : def;
}

static inline json_t *jstr_span(ar_span_t s)
{
    return json_stringn(s.len ? s.ptr : "", s.len);
}

/* A token count (clamped: it is added and subtracted). */
static inline int64_t int_of(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? ar_tokens_clamp((int64_t)json_integer_value(v)) : 0;
}

#endif
