/*
 * messages.c: POST /v1/messages, Anthropic's Messages API in front of any provider (Claude
 * Code, the Anthropic SDKs). An anthropic credential gets the request as the client sent it
 * (native pass-through: the body with the model substituted, the anthropic-beta and
 * anthropic-version headers) and its answer is relayed untouched. For every other provider
 * the body is translated into an OpenAI chat request once (fronts/anthropic_request.c),
 * routed like any chat request, and the `ar_front_anthropic` hooks turn what comes back
 * (chat completions, chunks, errors) into Anthropic messages, events and error bodies. Also
 * POST /v1/messages/count_tokens, an estimate (characters / 4) in Anthropic's shape.
 * Nothing here talks to an upstream.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "fronts/anthropic.h"
#include "gateway/gateway_int.h"

#define ERROR_BODY_MAX (1u << 20)

static void bad_request(ar_http_request_t *req, const char *msg)
{
    ar_gw_error(req, 400, "invalid_request_error", "invalid_request_error", msg);
}

/* The body as a JSON object, or NULL after answering 400. */
static json_t *parse_body(ar_http_request_t *req)
{
    if (req->body.len == 0) {
        bad_request(req, "Request body is empty: expected a JSON object");
        return NULL;
    }
    char perr[160];
    json_t *v = ar_json_parse(req->body, perr, sizeof(perr));
    if (!v) {
        bad_request(req, ar_pool_printf(req->pool, "Malformed JSON in request body: %s", perr));
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        bad_request(req, "Request body must be a JSON object");
        return NULL;
    }
    return v;
}

/* A client header forwarded upstream as "Name: value", when present and printable. */
static const char *forwarded_header(ar_http_request_t *req, const char *name)
{
    ar_span_t v = ar_span_trim(ar_http_header(req, ar_span_cstr(name)));
    if (!v.len || v.len > 1024 || ar_span_has_ctl(v, true))
        return NULL;
    return ar_pool_printf(req->pool, "%s: %.*s", name, (int)v.len, v.ptr);
}

/* What an anthropic credential gets: the client's bytes, or, when they carry airouter's
 * own routing fields (which Anthropic would refuse as unknown), the body without them. */
static ar_span_t native_body(ar_http_request_t *req, const json_t *anth)
{
    if (!ar_gw_has_extension(anth))
        return req->body;
    json_t *copy = json_copy((json_t *)anth); /* shallow: only top-level members go */
    if (copy)
        ar_gw_strip_extensions(copy);
    char *s = ar_gw_pool_dump(req->pool, copy);
    json_decref(copy);
    /* out of memory: the upstream says what it thinks of the fields */
    return s ? ar_span_cstr(s) : req->body;
}

void ar_gw_messages(ar_http_request_t *req, ar_runtime_t *rt)
{
    ar_gw_ctx_t *ctx = req->data;
    json_t *oai = NULL;
    char err[256];
    json_t *anth = parse_body(req);
    if (!anth)
        return;
    ar_gw_pool_json(req->pool, anth); /* the native request reads it */
    /* cache_control is kept: an anthropic credential behind the front caches prompts, and
     * the OpenAI-wire providers strip it (oai_compat.c) before sending. */
    int rc = ar_anth_front_request(anth, true, &oai, err, sizeof(err));
    if (rc && rc != AR_EINVAL) {
        ar_gw_error(req, 500, "api_error", "internal_error", ar_err_message(rc));
        return;
    }
    /* A request the translation refuses may still be valid Anthropic (a server tool, a
     * block type it does not know): an anthropic credential takes it as is, and only when
     * none serves the model is the refusal the answer. Without a model there is no route. */
    if (rc && !json_is_string(json_object_get(anth, "model"))) {
        bad_request(req, err);
        return;
    }
    ar_gw_native_t native = {.client = anth};
    native.call.wire = AR_WIRE_MESSAGES;
    native.call.raw = native_body(req, anth);
    (void)ar_jscan_get(native.call.raw, AR_LIT("model"), &native.call.raw_model);
    const char **hs = ar_pool_alloc(req->pool, 2 * sizeof(*hs));
    static const char *const forwarded[] = {"anthropic-version", "anthropic-beta"};
    for (size_t i = 0; i < AR_ARRAY_CNT(forwarded); i++) {
        const char *h = forwarded_header(req, forwarded[i]);
        if (h)
            hs[native.call.headers_cnt++] = h;
    }
    native.call.headers = hs;
    if (rc)
        native.translate_error = ar_pool_strndup(req->pool, err, strlen(err));
    const char *effort = json_string_value(json_object_get(oai, "reasoning_effort"));
    if (effort) {
        native.reasoning_hint = ar_pool_strndup(req->pool, effort, strlen(effort));
        json_object_del(oai, "reasoning_effort");
    }
    ar_anth_front_t *st = ar_pool_alloc(req->pool, sizeof(*st));
    ar_anth_front_init(st, ar_pool_strdup_span(req->pool, ar_json_span(anth, "model")));
    if (json_is_true(json_object_get(anth, "stream")))
        st->estimate = ar_anth_count_tokens(anth);
    /* the answers (and errors from here on) are shaped by the front */
    ctx->front = &ar_front_anthropic;
    ctx->front_state = st;
    ar_gw_llm_json(req, rt, oai, &native);
}

void ar_gw_messages_count_tokens(ar_http_request_t *req, ar_runtime_t *rt)
{
    json_t *anth = parse_body(req);
    if (!anth)
        return;
    if (!json_is_string(json_object_get(anth, "model"))) {
        json_decref(anth);
        bad_request(req, "model: Field required");
        return;
    }
    if (!json_is_array(json_object_get(anth, "messages"))) {
        json_decref(anth);
        bad_request(req, "messages: Field required");
        return;
    }
    int64_t n = ar_anth_count_tokens(anth);
    json_decref(anth);
    ar_http_header_t hs[8];
    size_t hn = ar_gw_common_headers(req, rt, hs, AR_ARRAY_CNT(hs));
    ar_http_respond_json(
        req, 200, hs, hn,
        ar_span_cstr(ar_pool_printf(req->pool, "{\"input_tokens\":%lld}", (long long)n)));
}

/* ---- the front ---- */

static int front_whole(ar_gw_req_t *g, ar_span_t body, ar_buf_t *out)
{
    (void)g;
    return ar_anth_front_whole(body, out);
}

static int front_chunk(ar_gw_req_t *g, ar_span_t data, ar_buf_t *out)
{
    ar_anth_front_t *st = g->ctx.front_state;
    return st ? ar_anth_front_chunk(st, data, out) : AR_EINVAL;
}

static int front_stream_end(ar_gw_req_t *g, ar_buf_t *out)
{
    ar_anth_front_t *st = g->ctx.front_state;
    return st ? ar_anth_front_end(st, out) : 0;
}

static int front_stream_error(ar_gw_req_t *g, const char *type, const char *message, ar_buf_t *out)
{
    return ar_anth_front_error_event(g->ctx.front_state, type, message, out);
}

static ar_span_t front_error_body(ar_http_request_t *req, int status, const char *type,
                                  const char *code, const char *message)
{
    (void)code; /* Anthropic errors have a type and a message only */
    ar_buf_t b;
    ar_buf_init(&b, ERROR_BODY_MAX);
    int rc = ar_anth_error_json(status, type, message, &b);
    ar_span_t body = rc ? AR_LIT("{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                                 "\"message\":\"error message too large\"}}")
                        : ar_span(ar_pool_strndup(req->pool, b.ptr, b.len), b.len);
    ar_buf_dispose(&b);
    return body;
}

const ar_front_ops_t ar_front_anthropic = {
    .name = "anthropic",
    .whole = front_whole,
    .chunk = front_chunk,
    .stream_end = front_stream_end,
    .stream_error = front_stream_error,
    .error_body = front_error_body,
};
