/*
 * anthropic_int.h: what the three files of the provider side of the Anthropic translation
 * share (anthropic_request.c, anthropic_answer.c, anthropic_stream.c): the translators'
 * helpers (providers/xlate.h) and the usage arithmetic of answers and streams. Private to
 * src/providers; the front side (Anthropic clients) is in src/fronts/.
 */
#ifndef AR_PROVIDERS_ANTHROPIC_INT_H
#define AR_PROVIDERS_ANTHROPIC_INT_H

#include "core/json.h"
#include "providers/anthropic_xlate.h"
#include "providers/provider.h"
#include "providers/xlate.h"

static inline void set_usage(ar_usage_t *u, int64_t in, int64_t out, int64_t cache_read,
                             int64_t cache_write)
{
    /* OpenAI's prompt_tokens counts every input token; Anthropic splits out the cached ones */
    u->prompt_tokens = in + cache_read + cache_write;
    u->completion_tokens = out;
    u->total_tokens = u->prompt_tokens + out;
    u->cached_tokens = cache_read;
    u->cache_creation_tokens = cache_write;
    u->seen = true;
}

#endif
