/*
 * anthropic.c: the `anthropic` provider: Anthropic's Messages API behind the OpenAI chat
 * interface. x-api-key auth, `anthropic-version: 2023-06-01` (unless the credential's
 * headers set their own), {base_url}/v1/messages. Chat only: Anthropic has no embeddings
 * and no legacy completions. All of the wire format is in anthropic_xlate.c; this file only
 * wires it to the provider hooks and keeps the per-attempt stream state in the call's pool.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mem.h"
#include "providers/anthropic_xlate.h"
#include "providers/oai_compat.h"

typedef struct anthropic {
    ar_oai_t base;    /* auth line, extra header lines, the /v1/messages URL */
    bool own_version; /* the configured headers carry an anthropic-version */
} anthropic_t;

static const char *const paths[AR_EP_CNT] = {
    [AR_EP_CHAT] = "/v1/messages",
};

static ar_provider_t *create(const ar_cred_conf_t *conf, char *err, size_t errlen)
{
    anthropic_t *a = ar_xcalloc(1, sizeof(*a));
    if (ar_oai_init(&a->base, conf, "x-api-key", "", paths, NULL, err, errlen) != 0) {
        ar_oai_dispose(&a->base);
        ar_free(a);
        return NULL;
    }
    for (size_t i = 0; i < conf->headers_cnt; i++)
        a->own_version =
            a->own_version || strcasecmp(conf->headers[i].key, "anthropic-version") == 0;
    return &a->base.super;
}

static void destroy(ar_provider_t *p)
{
    anthropic_t *a = (anthropic_t *)p;
    ar_oai_dispose(&a->base);
    ar_free(a);
}

static void free_buf(void *arg)
{
    ar_buf_dispose(arg);
}

/* The common request shape, written from the raw body (no trees). AR_EAGAIN: not it. */
static int fast_body(ar_call_t *call, ar_span_t *out)
{
    if (!call->raw.len || call->raw_has_extensions || call->body)
        return AR_EAGAIN;
    ar_buf_t *b = ar_pool_alloc(call->pool, sizeof(*b));
    ar_buf_init(b, (size_t)1 << 30);
    ar_pool_cleanup_add(call->pool, free_buf, b);
    int rc = ar_anth_request_fast(call->raw, call->model, call->max_output_tokens, call->stream, b);
    if (rc == 0)
        *out = ar_buf_span(b);
    return rc;
}

static int build_request(ar_provider_t *p, ar_call_t *call, ar_http_req_t *out)
{
    anthropic_t *a = (anthropic_t *)p;
    const char *url = a->base.urls[call->endpoint];
    if (!url)
        return AR_ENOTFOUND;
    int rc = fast_body(call, &out->body);
    if (rc == AR_EAGAIN) {
        json_t *body = ar_call_json(call);
        json_t *req = NULL;
        const char *detail = NULL;
        if (!body)
            return AR_EINVAL; /* ar_call_json named the problem */
        rc = ar_anth_request_from_openai(body, call->model, call->max_output_tokens, call->stream,
                                         &req, &detail);
        if (rc) {
            call->error_detail = detail;
            return rc;
        }
        rc = ar_provider_dump_body(call, req, &out->body);
        json_decref(req);
    }
    if (rc)
        return rc;
    rc = ar_provider_post_json(out, url, call->stream);
    if (!rc && !a->own_version)
        rc = ar_http_req_add_header(out, "anthropic-version: " AR_ANTH_VERSION);
    if (!rc && a->base.auth_line)
        rc = ar_http_req_add_header(out, a->base.auth_line);
    return rc ? rc : ar_header_lines_add(&a->base.extra, out);
}

static int parse_response(ar_provider_t *p, ar_call_t *call, ar_span_t body, ar_buf_t *out)
{
    (void)p;
    return ar_anth_response_to_openai(body, (int64_t)time(NULL), &call->usage, out);
}

/* The stream state lives in the attempt's pool; attempt.c clears pstate per attempt. */
static ar_anth_stream_t *stream_of(ar_call_t *call)
{
    if (!call->pstate) {
        ar_anth_stream_t *st = ar_pool_alloc(call->pool, sizeof(*st));
        ar_anth_stream_init(st, (int64_t)time(NULL));
        call->pstate = st;
    }
    return call->pstate;
}

static int parse_event(ar_provider_t *p, ar_call_t *call, const ar_sse_event_t *ev, ar_buf_t *out)
{
    (void)p;
    ar_anth_stream_t *st = stream_of(call);
    int rc =
        ar_anth_stream_event(st, ev->event, ev->data, call->client_wants_usage, &call->usage, out);
    call->stream_done = st->finished;
    ar_span_t err, msg;
    if (rc && ar_jscan_get(ev->data, AR_LIT("error"), &err) == 0 &&
        ar_jscan_get(err, AR_LIT("message"), &msg) == 0 && ar_jscan_string(msg, &msg) == 0)
        call->error_detail = ar_pool_printf(call->pool, "the upstream reported: %.*s",
                                            (int)(msg.len > 300 ? 300 : msg.len), msg.ptr);
    return rc;
}

static int end_stream(ar_provider_t *p, ar_call_t *call, ar_buf_t *out)
{
    (void)p;
    if (!call->pstate)
        return 0;
    ar_anth_stream_t *st = call->pstate;
    int rc = ar_anth_stream_end(st, out);
    call->stream_done = st->finished;
    return rc;
}

static void parse_error(ar_provider_t *p, ar_call_t *call, int status, ar_span_t body,
                        ar_upstream_err_t *out)
{
    (void)p;
    ar_anth_error_to_openai(call->pool, status, body, out);
}

const ar_provider_ops_t ar_anthropic_ops = {
    .type = "anthropic",
    .caps = AR_PROV_STREAM | AR_PROV_TOOLS,
    .create = create,
    .destroy = destroy,
    .build_request = build_request,
    .parse_response = parse_response,
    .parse_event = parse_event,
    .parse_error = parse_error,
    .end_stream = end_stream,
};
