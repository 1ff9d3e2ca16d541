/*
 * anthropic_xlate.h: the provider side of the translation between the OpenAI chat format
 * (what airouter speaks inside) and Anthropic's Messages API: providers/anthropic.c turns
 * OpenAI requests into Anthropic requests (anthropic_request.c) and Anthropic answers and
 * errors (anthropic_answer.c) and stream events (anthropic_stream.c) back into OpenAI form.
 * The inverse, for clients that speak Anthropic, is the front in fronts/anthropic.h.
 * Nothing here does I/O or keeps global state: trees in, trees or bytes out, per-stream
 * state in a struct the caller owns.
 *
 * Stream events are read with the allocation-free scanner (core/json.h) and written with
 * plain appends, so the per-event path allocates nothing beyond the output buffer's growth.
 */
#ifndef AR_PROVIDERS_ANTHROPIC_XLATE_H
#define AR_PROVIDERS_ANTHROPIC_XLATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/pool.h"
#include "providers/provider.h"

/** The max_tokens sent when neither the client nor the deployment gives one. */
#define AR_ANTH_DEFAULT_MAX_TOKENS 4096
/** The Anthropic API version airouter speaks upstream. */
#define AR_ANTH_VERSION "2023-06-01"
/** Room for a chunk head (id, created, model); longer ids or models fail the stream. */
#define AR_ANTH_HEAD_MAX 640

/**
 * Builds the Anthropic Messages request for an OpenAI chat request.
 * @param oai the client's request (borrowed, not modified)
 * @param model the upstream model name (borrowed)
 * @param max_tokens_default used when the request has neither max_completion_tokens nor
 *        max_tokens (the deployment's max_output_tokens; <= 0 means AR_ANTH_DEFAULT_MAX_TOKENS)
 * @param stream sets "stream": true
 * @param out receives a new tree (json_decref it) on success
 * @param detail receives a static message on AR_EINVAL (the request cannot be expressed:
 *        tool call arguments that are not a JSON object, unsupported parts or roles, an
 *        unknown reasoning_effort)
 * reasoning_effort (minimal/low 1024, medium 4096, high 16384; none: no thinking) becomes
 * thinking with that budget unless the client sent thinking itself; with thinking on,
 * max_tokens is raised by the budget when not above it, and temperature/top_p/top_k are
 * left out as Anthropic refuses them.
 * @return 0 or AR_EINVAL
 */
int ar_anth_request_from_openai(const json_t *oai, const char *model, int64_t max_tokens_default,
                                bool stream, json_t **out, const char **detail) AR_MUST_CHECK;

/**
 * The same translation for the common shape, written straight from the client's raw JSON
 * (validated) without building trees: text-only system/developer/user/assistant messages
 * with non-empty string content and alternating turns, and only the keys model, messages,
 * max_tokens, max_completion_tokens, temperature, top_p, stop, stream, stream_options,
 * user. The output means the same as ar_anth_request_from_openai's.
 * @return 0, or AR_EAGAIN when the request has any other shape (use the tree path).
 */
int ar_anth_request_fast(ar_span_t raw, const char *model, int64_t max_tokens_default, bool stream,
                         ar_buf_t *out) AR_MUST_CHECK;

/**
 * Turns a whole Anthropic message into an OpenAI chat.completion appended to out, and
 * records its usage (prompt = input + cache reads + cache writes; cached = cache reads).
 * @param created the `created` timestamp to write (unix seconds)
 * @return 0, AR_EUPSTREAM when body is not an Anthropic message, or AR_ETOOBIG
 */
int ar_anth_response_to_openai(ar_span_t body, int64_t created, ar_usage_t *usage,
                               ar_buf_t *out) AR_MUST_CHECK;

/** Per-stream state of the Anthropic-to-OpenAI event translation. Zero it, then set created. */
typedef struct ar_anth_stream {
    int64_t created;     /* the chunks' `created` */
    bool started;        /* message_start seen */
    bool finished;       /* message_stop seen ("data: [DONE]" sent) */
    bool finish_sent;    /* the chunk with finish_reason went out */
    int tools;           /* tool_use blocks seen so far (the next OpenAI tool index) */
    int cur_tool;        /* OpenAI index of the open tool_use block, -1 when none */
    const char *finish;  /* mapped stop_reason once message_delta came, else NULL */
    int64_t in, out;     /* Anthropic usage: input_tokens, output_tokens */
    int64_t cache_read;  /* cache_read_input_tokens */
    int64_t cache_write; /* cache_creation_input_tokens */
    /* `data: {"id":..,"object":..,"created":..,"model":..,"choices":[{"index":0,"delta":{`:
     * the first frame_len bytes open every chunk, all delta_len bytes open a delta chunk */
    size_t frame_len, delta_len;
    char head[AR_ANTH_HEAD_MAX];
} ar_anth_stream_t;

/** Prepares st for a new stream. */
void ar_anth_stream_init(ar_anth_stream_t *st, int64_t created);

/**
 * Translates one Anthropic SSE event into OpenAI chunk frames ("data: ...\n\n") appended to
 * out (possibly none: ping, content_block_stop, unknown types). message_stop appends
 * "data: [DONE]"; the usage-only chunk (`"choices":[]`) goes out only when want_usage.
 * usage is updated whenever the upstream reports numbers.
 * @param event the SSE `event:` name (used when the data has no "type")
 * @return 0, AR_EUPSTREAM (malformed JSON, events out of order, or an `error` event), or
 *         AR_ETOOBIG
 */
int ar_anth_stream_event(ar_anth_stream_t *st, ar_span_t event, ar_span_t data, bool want_usage,
                         ar_usage_t *usage, ar_buf_t *out) AR_MUST_CHECK;

/**
 * The upstream stream ended. If it ended after message_delta (finish chunk and usage already
 * sent) but without message_stop, "data: [DONE]" is appended; a stream cut before
 * message_delta gets nothing (the client sees a truncated stream).
 */
int ar_anth_stream_end(ar_anth_stream_t *st, ar_buf_t *out) AR_MUST_CHECK;

/**
 * Normalises an Anthropic error answer ({"type":"error","error":{"type","message"}}):
 * the message, the type mapped to OpenAI's (overloaded_error -> api_error with code
 * "overloaded_error", request_too_large -> invalid_request_error, ...). Strings go into
 * pool. Bodies that are not Anthropic errors give a printable prefix. Never fails.
 */
void ar_anth_error_to_openai(ar_pool_t *pool, int status, ar_span_t body, ar_upstream_err_t *out);

/** The OpenAI finish_reason for an Anthropic stop_reason (NULL or unknown: "stop"). */
const char *ar_anth_finish_reason(ar_span_t stop_reason);

#endif
