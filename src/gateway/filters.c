/*
 * filters.c: reading the request extensions that steer routing (SPEC section 3: tags,
 * type, min_context_size, json_response, prefer_fast, min_success_rate) into an
 * ar_route_filter_t, with a precise 400 message naming the member when one has the wrong
 * type. llm.c removes them before forwarding; the router applies them.
 */
#include <math.h>
#include <string.h>

#include "gateway/gateway_int.h"

/* A boolean member; null and absence are false. @return false when it is something else. */
static bool read_bool(const json_t *v, bool *out)
{
    *out = json_is_true(v);
    return !v || json_is_null(v) || json_is_boolean(v);
}

const char *ar_gw_route_filter(ar_pool_t *pool, const json_t *src, ar_route_filter_t *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = AR_MODEL_KIND_ANY;
    if (!json_is_object(src))
        return NULL;

    const json_t *tags = json_object_get(src, "tags");
    if (tags && !json_is_null(tags)) {
        if (!json_is_array(tags))
            return "'tags' must be an array of strings";
        size_t n = json_array_size(tags);
        const char **items = ar_pool_alloc(pool, (n ? n : 1) * sizeof(*items));
        for (size_t i = 0; i < n; i++) {
            const json_t *t = json_array_get(tags, i);
            if (!json_is_string(t))
                return "'tags' must be an array of strings";
            items[i] = ar_pool_strndup(pool, json_string_value(t), json_string_length(t));
        }
        out->tags = items;
        out->tags_cnt = n;
    }

    const json_t *type = json_object_get(src, "type");
    if (type && !json_is_null(type)) {
        const char *t = json_string_value(type);
        if (t && strcmp(t, "fast") == 0)
            out->kind = AR_MODEL_KIND_FAST;
        else if (t && strcmp(t, "reasoning") == 0)
            out->kind = AR_MODEL_KIND_REASONING;
        else
            return "'type' must be \"fast\" or \"reasoning\"";
    }

    const json_t *ctx = json_object_get(src, "min_context_size");
    if (ctx && !json_is_null(ctx)) {
        if (!json_is_integer(ctx) || json_integer_value(ctx) < 0)
            return "'min_context_size' must be an integer >= 0";
        out->min_context_size = json_integer_value(ctx);
    }

    if (!read_bool(json_object_get(src, "json_response"), &out->json_response))
        return "'json_response' must be a boolean";
    if (!read_bool(json_object_get(src, "prefer_fast"), &out->prefer_fast))
        return "'prefer_fast' must be a boolean";

    const json_t *rate = json_object_get(src, "min_success_rate");
    if (rate && !json_is_null(rate)) {
        double r = json_is_number(rate) ? json_number_value(rate) : -1;
        if (!json_is_number(rate) || !isfinite(r) || r < 0 || r > 1)
            return "'min_success_rate' must be a number from 0 to 1";
        out->min_success_rate = r;
    }
    return NULL;
}
