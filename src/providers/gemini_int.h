/*
 * gemini_int.h: what the three files of the Gemini wire format share (gemini_request.c,
 * gemini_answer.c, gemini_stream.c): the thought-signature marker in tool-call ids, the
 * scanner shorthands of the answer side, and the answer pieces the stream reuses (defined
 * in gemini_answer.c). Private to src/providers.
 */
#ifndef AR_PROVIDERS_GEMINI_INT_H
#define AR_PROVIDERS_GEMINI_INT_H

#include "core/json.h"
#include "providers/gemini_xlate.h"
#include "providers/provider.h"
#include "providers/xlate.h"

/* An OpenAI tool-call id carries a Gemini thoughtSignature after this marker, so that the
 * signature comes back with the call in the next turn (Gemini 3 requires it). */
#define THOUGHT_MARK "__thought__"

/* The contents of a raw JSON string value, or the empty span. */
static inline ar_span_t raw_string(ar_span_t v)
{
    ar_span_t s;
    return ar_jscan_string(v, &s) == 0 ? s : AR_SPAN_NULL;
}

static inline bool is_true(ar_span_t v)
{
    return ar_span_eq(v, AR_LIT("true"));
}

static inline bool has(ar_span_t obj, ar_span_t key, ar_span_t *val)
{
    return ar_jscan_get(obj, key, val) == 0 && !ar_jscan_is_null(*val);
}

/** Records usage from a usageMetadata object (prompt + tool-use prompt tokens in, candidates
 * + thoughts out, cached and reasoning tokens). */
void ar_gem__read_usage(ar_span_t um, ar_usage_t *u);

/** Appends `"usage":{...}` in OpenAI's shape. @return 0 or AR_ETOOBIG. */
int ar_gem__append_usage(ar_buf_t *b, const ar_usage_t *u) AR_MUST_CHECK;

/** Writes prefix + 24 random hex digits into id (n bytes). */
void ar_gem__new_id(char *id, size_t n, const char *prefix);

/**
 * Appends one OpenAI tool call for the functionCall fc of part (whole-answer shape, with
 * "index" when index >= 0); a thoughtSignature rides in the id after THOUGHT_MARK.
 * @return 0 or AR_ETOOBIG.
 */
int ar_gem__append_tool_call(ar_buf_t *b, ar_span_t part, ar_span_t fc, int index) AR_MUST_CHECK;

#endif
