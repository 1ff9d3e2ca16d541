/*
 * anthropic_xlate.h: pure translations between the OpenAI chat format (what airouter speaks
 * inside) and Anthropic's Messages API, both ways. The provider side (providers/anthropic.c)
 * turns OpenAI requests into Anthropic requests and Anthropic answers, stream events and
 * errors back into OpenAI form; the front side (gateway/messages.c, POST /v1/messages) does
 * the inverse for clients that speak Anthropic. The provider side is implemented in
 * anthropic_xlate.c, the front side in anthropic_front.c. Nothing here does I/O or keeps
 * global state:
 * trees in, trees or bytes out, per-stream state in a struct the caller owns.
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

/* ---- provider side: OpenAI in, Anthropic out, and back ---- */

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

/* ---- front side: Anthropic in (POST /v1/messages), OpenAI inside, Anthropic out ---- */

/**
 * Validates an Anthropic Messages request and translates it into an OpenAI chat request
 * (streams ask for include_usage so the front can report usage in message_delta).
 * @param anth the client's body (borrowed)
 * @param keep_cache_control carry `cache_control` on text parts, system parts and tools
 *        (LiteLLM's OpenAI-format extension, which the anthropic provider turns back into
 *        prompt caching); false drops it, since OpenAI itself refuses the field
 * @param out receives a new tree (json_decref it) on success
 * @param err receives the message of a 400 invalid_request_error, naming the field
 * @return 0 or AR_EINVAL
 */
int ar_anth_front_request(const json_t *anth, bool keep_cache_control, json_t **out, char *err,
                          size_t errlen) AR_MUST_CHECK;

/**
 * Turns an OpenAI chat.completion into an Anthropic message appended to out.
 * @return 0, AR_EUPSTREAM when body is not a chat completion, or AR_ETOOBIG
 */
int ar_anth_front_whole(ar_span_t openai_body, ar_buf_t *out) AR_MUST_CHECK;

/** Per-stream state of the OpenAI-to-Anthropic event translation. */
typedef struct ar_anth_front {
    const char *model;  /* the model the client asked for (borrowed), for message_start */
    bool started;       /* message_start sent */
    bool finished;      /* message_stop (or an error event) sent */
    int kind;           /* the open content block: 0 none, 1 text, 2 tool_use, 3 thinking */
    int blocks;         /* content blocks opened so far (the next block index) */
    int64_t tool_index; /* OpenAI index of the open tool call */
    const char *stop;   /* Anthropic stop_reason once the finish chunk came, else NULL */
    int64_t in, out;    /* usage from the usage chunk */
    int64_t cached;     /* prompt_tokens_details.cached_tokens */
    int64_t estimate;   /* message_start's input_tokens while the upstream has not said */
} ar_anth_front_t;

/**
 * Prepares st; model (borrowed) names the message until the upstream says otherwise.
 * Set st->estimate afterwards (ar_anth_count_tokens of the request) for message_start's
 * input_tokens: OpenAI-format upstreams report usage only at the end of a stream.
 */
void ar_anth_front_init(ar_anth_front_t *st, const char *model);

/**
 * Translates one OpenAI stream payload (a chunk object, or "[DONE]") into Anthropic SSE
 * events ("event: X\ndata: {...}\n\n") appended to out. An OpenAI error payload
 * ({"error":{...}}) becomes an Anthropic `error` event.
 * @return 0, AR_EUPSTREAM for a payload that is not JSON, or AR_ETOOBIG
 */
int ar_anth_front_chunk(ar_anth_front_t *st, ar_span_t data, ar_buf_t *out) AR_MUST_CHECK;

/** The stream ended: closes what is still open (block, message_delta, message_stop). */
int ar_anth_front_end(ar_anth_front_t *st, ar_buf_t *out) AR_MUST_CHECK;

/** The Anthropic error type for an answer of ours (HTTP status and OpenAI type). */
const char *ar_anth_error_type(int status, const char *openai_type);

/**
 * Appends {"type":"error","error":{"type":T,"message":M}} for an answer of ours.
 * @param status the HTTP status, or 0 inside a stream (the type alone decides then)
 */
int ar_anth_error_json(int status, const char *openai_type, const char *message,
                       ar_buf_t *out) AR_MUST_CHECK;

/** Appends the `error` SSE event that ends a broken stream. Marks st finished. */
int ar_anth_front_error_event(ar_anth_front_t *st, const char *openai_type, const char *message,
                              ar_buf_t *out) AR_MUST_CHECK;

/**
 * An approximate input token count for POST /v1/messages/count_tokens: the characters of
 * every text in system, messages and tools, divided by 4 (rounded up, at least 1). Image
 * and document data are not counted.
 */
int64_t ar_anth_count_tokens(const json_t *anth);

#endif
