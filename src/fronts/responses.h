/*
 * responses.h: the OpenAI Responses API front (POST /v1/responses) for upstreams that speak
 * OpenAI chat: Responses requests into chat requests (responses_request.c), and chat answers,
 * chunks and errors back into Responses objects and stream events (responses_answer.c).
 * Nothing here does I/O, keeps global state or knows about routes and storage: the gateway
 * wires it, stores the final response object and resolves previous_response_id into the
 * history it passes in. Requests that need what only a native Responses upstream offers
 * (built-in tools, item references) are refused with AR_ENOTSUP so the gateway can send them
 * to such an upstream, or answer 400.
 *
 * Stream chunks are read with the allocation-free scanner (core/json.h) and events written
 * with plain appends; jansson trees are built once per output item and once per response.
 */
#ifndef AR_FRONTS_RESPONSES_H
#define AR_FRONTS_RESPONSES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"

/** Room for a response id ("resp_" + the caller's suffix) with its NUL. */
#define AR_RESP_ID_MAX 64
/** The most bytes of text (or arguments) one output item may gather in a stream. */
#define AR_RESP_ITEM_MAX ((size_t)64 << 20)

/* ---- in: Responses request -> chat request (responses_request.c) ---- */

/**
 * Validates a Responses API request and translates it into an OpenAI chat request.
 * Mapping: model as given; instructions -> a leading system message; input (a string, or
 * items: messages, function_call (consecutive calls, and calls right after an assistant
 * message, become one assistant message's tool_calls), function_call_output (tool
 * messages), reasoning (dropped)); function tools; tool_choice (allowed_tools keeps only the
 * allowed tools and becomes its mode); max_output_tokens -> max_completion_tokens;
 * reasoning.effort -> reasoning_effort; text.format -> response_format; text.verbosity ->
 * verbosity; parallel_tool_calls, temperature, top_p, user, prompt_cache_key,
 * safety_identifier, service_tier copied; stream -> stream with
 * stream_options.include_usage. metadata, store, previous_response_id, include,
 * truncation, top_logprobs, max_tool_calls and unknown fields are not forwarded.
 * @param req the client's body (borrowed, not modified)
 * @param history NULL, or a JSON array of Responses items from earlier turns (inputs and
 *        outputs, oldest first; borrowed) placed before req's input (previous_response_id)
 * @param out receives a new tree (json_decref it) on success, NULL otherwise
 * @param err receives the client-facing message on AR_EINVAL and AR_ENOTSUP, naming the
 *        field ("input[2].content[0].type: unknown content type 'x'")
 * @return 0; AR_EINVAL (a 400 invalid_request_error: bad shapes, background: true);
 *         AR_ENOTSUP when the request needs a native Responses upstream: a tool (or a
 *         tool_choice) of any type but "function", item_reference and built-in tool call
 *         items, input_image by file_id, input_file without file_data, conversation,
 *         prompt; or AR_ENOMEM (err says "out of memory")
 */
int ar_resp_request_to_chat(const json_t *req, const json_t *history, json_t **out, char *err,
                            size_t errlen) AR_MUST_CHECK;

/**
 * The request's input as an array of items, for storage and GET
 * /v1/responses/{id}/input_items: a string input becomes one user message item with an
 * input_text part; items without "type" but with a role get "type": "message"; message
 * content given as a string becomes one input_text part (output_text for assistant); items
 * without an "id" get a fresh one ("msg_", "fc_", "fco_", "rs_" or "item_" and 32 random
 * hex digits). Other fields are copied as they are.
 * @param req the client's body (borrowed; validate it with ar_resp_request_to_chat first)
 * @return a new reference, or NULL when input is missing or neither a string nor an array
 *         (or memory ran out)
 */
json_t *ar_resp_input_items(const json_t *req);

/* ---- out: chat answers -> Responses (responses_answer.c) ---- */

/** Per-response state of the chat-to-Responses translation. Fields with _ are private. */
typedef struct ar_resp_front {
    char id[AR_RESP_ID_MAX]; /* "resp_..." */
    int64_t created_at;      /* unix seconds */
    bool started;            /* response.created and response.in_progress sent */
    bool finished;           /* a terminal event (completed, incomplete, failed) sent */
    int64_t in, out;         /* usage: prompt_tokens, completion_tokens */
    int64_t cached;          /* prompt_tokens_details.cached_tokens */
    int64_t reasoning;       /* completion_tokens_details.reasoning_tokens */
    json_t *_base;           /* the response object minus status/output/usage */
    json_t *_output;         /* finished output items */
    json_t *_final;          /* the terminal response object, NULL before */
    int64_t _seq;            /* the next sequence_number */
    int _kind;           /* the open output item: 0 none, 1 message, 2 function call, 3 reasoning */
    int _items;          /* output items opened so far (the next output_index) */
    int64_t _tool_index; /* chat index of the open tool call */
    const char *_incomplete; /* incomplete_details.reason once the finish chunk said so */
    ar_buf_t _text;          /* the open item's text or arguments, JSON-escaped */
    ar_buf_t _call_id;       /* the open function call's call_id, JSON-escaped */
    ar_buf_t _name;          /* the open function call's name, JSON-escaped */
    /* the open item's `,"item_id":"...","output_index":N` (every event about it carries it) */
    char _item_ref[AR_RESP_ID_MAX + 80];
    size_t _item_ref_len;
} ar_resp_front_t;

/**
 * Prepares st for one request.
 * @param req the client's Responses request (borrowed; validated): model (when a string; else
 *        the upstream's model is used) and the fields a response object echoes: instructions,
 *        tools, tool_choice, parallel_tool_calls, temperature, top_p, top_logprobs,
 *        max_output_tokens, max_tool_calls, previous_response_id, reasoning, text, metadata,
 *        store, truncation, user, prompt_cache_key, safety_identifier, service_tier, with
 *        OpenAI's defaults when absent (store: true)
 * @param id the response id, "resp_..." (copied; the caller makes it unique); item ids are
 *        derived from it
 * @param created_at unix seconds
 * @return 0, AR_EINVAL when id does not fit AR_RESP_ID_MAX, or AR_ENOMEM. Call
 *         ar_resp_front_dispose in every case.
 */
int ar_resp_front_init(ar_resp_front_t *st, const json_t *req, const char *id,
                       int64_t created_at) AR_MUST_CHECK;

/** Releases what st holds (the final object included). st may be disposed twice. */
void ar_resp_front_dispose(ar_resp_front_t *st);

/**
 * Turns a whole chat.completion into a `response` object appended to out: status
 * completed, or incomplete with incomplete_details.reason max_output_tokens (finish_reason
 * length) or content_filter. Output items, in order: reasoning (message.reasoning_content
 * as one summary_text), message (output_text with annotations and logprobs empty; refusal
 * as a refusal part), function_call per tool call (id "fc_...", call_id = the tool call id).
 * usage: input_tokens (+ input_tokens_details.cached_tokens), output_tokens
 * (+ output_tokens_details.reasoning_tokens), total_tokens. The object is kept for
 * ar_resp_front_final, and st's usage fields are set.
 * @return 0, AR_EUPSTREAM when the body is not a chat completion, AR_ETOOBIG or AR_ENOMEM
 */
int ar_resp_front_whole(ar_resp_front_t *st, ar_span_t chat_body, ar_buf_t *out) AR_MUST_CHECK;

/**
 * Translates one chat stream payload (a chunk object, or "[DONE]") into Responses SSE events
 * ("event: NAME\ndata: {...}\n\n", each with an increasing sequence_number) appended to out.
 * The first payload sends response.created and response.in_progress. reasoning_content (or
 * reasoning) deltas stream a reasoning item's summary text, content deltas a message's
 * output_text, tool call deltas function_call items; each item is closed (its .done events)
 * when another kind starts or the choice finishes. A usage chunk is recorded; "[DONE]" sends
 * response.completed, or response.incomplete after finish_reason length / content_filter.
 * An error payload ({"error":{...}}) becomes an `error` event and response.failed.
 * Payloads after the terminal event are ignored.
 * @return 0, AR_EUPSTREAM for a payload that is not a JSON object, AR_ETOOBIG or AR_ENOMEM;
 *         on an error nothing is appended (what the payload wrote is taken back, sequence
 *         numbers included): end the stream with ar_resp_front_error_event
 */
int ar_resp_front_chunk(ar_resp_front_t *st, ar_span_t data, ar_buf_t *out) AR_MUST_CHECK;

/**
 * The upstream stream ended: closes the open item and sends response.completed (or
 * response.incomplete) unless a terminal event went out already.
 * @return 0, AR_ETOOBIG or AR_ENOMEM
 */
int ar_resp_front_end(ar_resp_front_t *st, ar_buf_t *out) AR_MUST_CHECK;

/**
 * Ends a broken stream: an `error` event {code: type, message} then response.failed (status
 * failed, error {code, message}, the items finished so far), after response.created and
 * response.in_progress when they had not gone out. Marks st finished; nothing is appended
 * when it was finished already.
 * @param type the OpenAI error type ("server_error", "rate_limit_error", ...; NULL: server_error)
 * @param message the client-facing message (borrowed; NULL: "upstream error")
 * @return 0, AR_ETOOBIG or AR_ENOMEM
 */
int ar_resp_front_error_event(ar_resp_front_t *st, const char *type, const char *message,
                              ar_buf_t *out) AR_MUST_CHECK;

/**
 * The final response object once ar_resp_front_whole succeeded or a stream sent its terminal
 * event (completed, incomplete or failed); NULL before. Borrowed from st (json_incref to
 * keep it past ar_resp_front_dispose); the gateway stores it.
 */
const json_t *ar_resp_front_final(const ar_resp_front_t *st);

#endif
