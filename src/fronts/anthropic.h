/*
 * anthropic.h: the Anthropic Messages front, for clients that speak Anthropic (POST
 * /v1/messages, wired by gateway/messages.c): their requests into OpenAI chat requests
 * (anthropic_request.c, with the count_tokens estimate), and the OpenAI answers, chunks and
 * errors that come back into Anthropic messages, SSE events and error bodies
 * (anthropic_answer.c). The inverse direction, OpenAI requests to an Anthropic upstream, is
 * the provider side in providers/anthropic_xlate.h. Nothing here does I/O or keeps global
 * state: trees in, trees or bytes out, per-stream state in a struct the caller owns.
 */
#ifndef AR_FRONTS_ANTHROPIC_H
#define AR_FRONTS_ANTHROPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"

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
