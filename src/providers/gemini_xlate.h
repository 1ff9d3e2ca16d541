/*
 * gemini_xlate.h: the Gemini wire format (generateContent), shared by the `gemini`
 * (Google AI Studio) and `vertex-ai` providers, which differ only in URLs and auth. It
 * turns OpenAI chat and embeddings requests into Gemini bodies, and Gemini answers, SSE
 * events and error bodies back into OpenAI form. Requests (gemini_request.c) are built with
 * jansson once per attempt; answers and errors (gemini_answer.c) and stream events
 * (gemini_stream.c) are read with the allocation-free scanner and written with plain
 * appends (text and arguments are copied as raw JSON, never decoded).
 * Nothing here does I/O or reads config beyond what the provider passes in.
 */
#ifndef AR_PROVIDERS_GEMINI_XLATE_H
#define AR_PROVIDERS_GEMINI_XLATE_H

#include "providers/provider.h"

/** Which embeddings API a request is for. */
typedef enum ar_gem_embed_api {
    AR_GEM_EMBED_CONTENT = 0, /* Gemini: :embedContent (one input) / :batchEmbedContents */
    AR_GEM_EMBED_PREDICT,     /* Vertex AI: :predict with {"instances":[{"content":...}]} */
} ar_gem_embed_api_t;

/**
 * The model as a URL path segment, in pool: a leading "models/" is dropped and bytes
 * other than letters, digits and "-._@" are percent-encoded, so a model name can never
 * change the path or the method after ':'.
 */
const char *ar_gem_model_segment(ar_pool_t *pool, const char *model);

/**
 * Builds the GenerateContentRequest body for call's OpenAI chat request (ar_call_json):
 * contents, systemInstruction, tools, toolConfig and generationConfig (reasoning_effort as
 * thinkingConfig with includeThoughts). The mapping is
 * documented in the README (Providers: gemini, vertex-ai). Same body for streams.
 * @param out receives the body, in call->pool
 * @return 0, AR_EINVAL (call->error_detail says why) when the body cannot be loaded, has
 * no messages or a message Gemini cannot take, AR_ETOOBIG.
 */
int ar_gem_chat_body(ar_call_t *call, ar_span_t *out) AR_MUST_CHECK;

/**
 * Builds the embeddings body for call's OpenAI embeddings request. For
 * AR_GEM_EMBED_CONTENT one input gives an EmbedContentRequest and several a
 * BatchEmbedContentsRequest (*batch set), whose requests name model_ref ("models/M").
 * `dimensions` becomes outputDimensionality.
 * @return 0, AR_EINVAL (call->error_detail says why: the body cannot be loaded, no input,
 * token-id input, empty strings), AR_ETOOBIG.
 */
int ar_gem_embed_body(ar_call_t *call, ar_gem_embed_api_t api, const char *model_ref,
                      ar_span_t *out, bool *batch) AR_MUST_CHECK;

/**
 * parse_response for both types: a GenerateContentResponse becomes a chat.completion, an
 * embedding answer (embedContent, batchEmbedContents or Vertex predict) an OpenAI
 * embeddings list (base64 when the client asked for encoding_format "base64"). Records
 * usage on call. @return 0 (out holds the translation), AR_EUPSTREAM when the body is not
 * what the endpoint answers, AR_ETOOBIG.
 */
int ar_gem_parse_response(ar_provider_t *p, ar_call_t *call, ar_span_t body,
                          ar_buf_t *out) AR_MUST_CHECK;

/**
 * parse_event: one `alt=sse` event (a GenerateContentResponse) becomes OpenAI chunks: the
 * role chunk before a choice's first delta, text and tool-call deltas, and the finish chunk
 * when a finishReason arrives. Usage is recorded from the latest usageMetadata. State lives
 * in call->pstate (allocated from call->pool on the first event).
 * @return 0 (out may be empty: nothing to send), AR_EUPSTREAM for an event that is not a
 * GenerateContentResponse (malformed, or an error object mid-stream), AR_ETOOBIG.
 */
int ar_gem_parse_event(ar_provider_t *p, ar_call_t *call, const ar_sse_event_t *ev,
                       ar_buf_t *out) AR_MUST_CHECK;

/**
 * end_stream: Gemini streams end without [DONE]. Appends what the client has not had: a
 * finish chunk for every choice that got none, the usage chunk (`"choices": []`) when
 * call->client_wants_usage, and "data: [DONE]". @return 0 or AR_ETOOBIG.
 */
int ar_gem_end_stream(ar_provider_t *p, ar_call_t *call, ar_buf_t *out) AR_MUST_CHECK;

/**
 * parse_error for both types: Google's {"error":{"code","message","status"}} (also inside
 * a one-element array, as non-SSE streams send it). type comes from the status string
 * (INVALID_ARGUMENT -> invalid_request_error, RESOURCE_EXHAUSTED -> rate_limit_error, ...)
 * or else from the HTTP status; code is the status string in lower case. Never fails.
 */
void ar_gem_parse_error(ar_provider_t *p, ar_call_t *call, int status, ar_span_t body,
                        ar_upstream_err_t *out);

/** Maps a Gemini finishReason (the enum name) to an OpenAI finish_reason. */
const char *ar_gem_finish_reason(ar_span_t reason, bool has_tool_call);

#endif
