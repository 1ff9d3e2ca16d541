/*
 * anthropic.c: the `anthropic` provider: Anthropic's Messages API behind the OpenAI chat
 * interface. x-api-key auth, `anthropic-version: 2023-06-01` (unless the credential's
 * headers set their own), {base_url}/v1/messages. Chat only: Anthropic has no embeddings
 * and no legacy completions. The translations are in anthropic_request.c,
 * anthropic_answer.c and anthropic_stream.c; this file wires them to the provider hooks and
 * keeps the per-attempt stream state in the call's pool. Clients of the Messages API itself
 * are passed through (native_api): their body and betas as sent, the answer relayed
 * untouched with its usage read on the way.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mem.h"
#include "core/str.h"
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

/*
 * A Messages API client's request, as sent (model substituted), with its anthropic-beta
 * and anthropic-version headers: thinking, context management, server tools and betas
 * reach Anthropic exactly as the client wrote them.
 */
static int native_request(anthropic_t *a, ar_call_t *call, ar_http_req_t *out)
{
    int rc = ar_provider_native_body(call, &out->body);
    rc = rc ? rc : ar_provider_post_json(out, a->base.urls[AR_EP_CHAT], call->stream);
    bool version = a->own_version;
    for (size_t i = 0; i < call->native_in.headers_cnt && !rc; i++) {
        const char *h = call->native_in.headers[i];
        bool is_version = strncasecmp(h, "anthropic-version:", 18) == 0;
        if (is_version && a->own_version)
            continue; /* the credential's configured version wins */
        version = version || is_version;
        rc = ar_http_req_add_header(out, h);
    }
    if (!rc && !version)
        rc = ar_http_req_add_header(out, "anthropic-version: " AR_ANTH_VERSION);
    if (!rc && a->base.auth_line)
        rc = ar_http_req_add_header(out, a->base.auth_line);
    rc = rc ? rc : ar_header_lines_add(&a->base.extra, out);
    call->native = rc == 0;
    return rc;
}

static int build_request(ar_provider_t *p, ar_call_t *call, ar_http_req_t *out)
{
    anthropic_t *a = (anthropic_t *)p;
    const char *url = a->base.urls[call->endpoint];
    if (!url)
        return AR_ENOTFOUND;
    if (p->conf->native_api && call->native_in.wire == AR_WIRE_MESSAGES)
        return native_request(a, call, out);
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

/* An Anthropic usage object's numbers into u (those present; output only when given). */
static void native_usage(ar_span_t usage, ar_usage_t *u)
{
    static const char *const names[] = {"input_tokens", "cache_read_input_tokens",
                                        "cache_creation_input_tokens", "output_tokens"};
    int64_t *slots[] = {&u->prompt_tokens, &u->cached_tokens, &u->cache_creation_tokens,
                        &u->completion_tokens};
    int64_t v[4] = {0};
    bool seen[4] = {false};
    ar_span_t n;
    for (size_t i = 0; i < 4; i++)
        seen[i] =
            ar_jscan_get(usage, ar_span_cstr(names[i]), &n) == 0 && ar_parse_int64(n, &v[i]) == 0;
    if (!seen[0] && !seen[1] && !seen[2] && !seen[3])
        return;
    /* message_delta repeats the input numbers when it has them: the latest count wins */
    int64_t in = seen[0] ? ar_tokens_clamp(v[0]) : -1;
    for (size_t i = 1; i < 4; i++) {
        if (seen[i])
            *slots[i] = ar_tokens_clamp(v[i]);
    }
    if (in >= 0 || seen[1] || seen[2]) {
        int64_t base =
            in >= 0 ? in : u->prompt_tokens - u->cached_tokens - u->cache_creation_tokens;
        u->prompt_tokens = (base > 0 ? base : 0) + u->cached_tokens + u->cache_creation_tokens;
    }
    u->total_tokens = u->prompt_tokens + u->completion_tokens;
    u->seen = true;
}

static int parse_response(ar_provider_t *p, ar_call_t *call, ar_span_t body, ar_buf_t *out)
{
    (void)p;
    if (call->native) {
        ar_span_t usage;
        if (ar_jscan_get(body, AR_LIT("usage"), &usage) == 0)
            native_usage(usage, &call->usage);
        return 0; /* relayed as is */
    }
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

/* A Messages stream relayed untouched: usage from message_start and message_delta. */
static int native_event(ar_call_t *call, const ar_sse_event_t *ev)
{
    ar_span_t type = ev->event, v;
    if (ev->data.len && ar_json_validate(ev->data, NULL, 0) != 0) {
        call->error_detail = "the upstream sent a stream event that is not JSON";
        return AR_EUPSTREAM;
    }
    if (!type.len && ar_jscan_get(ev->data, AR_LIT("type"), &type) == 0)
        (void)ar_jscan_string(type, &type);
    if (ar_span_eq(type, AR_LIT("message_start"))) {
        if (ar_jscan_get(ev->data, AR_LIT("message"), &v) == 0 &&
            ar_jscan_get(v, AR_LIT("usage"), &v) == 0)
            native_usage(v, &call->usage);
    } else if (ar_span_eq(type, AR_LIT("message_delta"))) {
        if (ar_jscan_get(ev->data, AR_LIT("usage"), &v) == 0)
            native_usage(v, &call->usage);
    } else if (ar_span_eq(type, AR_LIT("message_stop"))) {
        call->stream_done = true;
    } else if (ar_span_eq(type, AR_LIT("error"))) {
        ar_span_t msg;
        if (ar_jscan_get(ev->data, AR_LIT("error"), &v) == 0 &&
            ar_jscan_get(v, AR_LIT("message"), &msg) == 0 && ar_jscan_string(msg, &msg) == 0)
            call->error_detail = ar_pool_printf(call->pool, "the upstream reported: %.*s",
                                                (int)(msg.len > 300 ? 300 : msg.len), msg.ptr);
        return AR_EUPSTREAM; /* the gateway ends the stream with its error event */
    }
    return AR_PROV_PASS;
}

static int parse_event(ar_provider_t *p, ar_call_t *call, const ar_sse_event_t *ev, ar_buf_t *out)
{
    (void)p;
    if (call->native)
        return native_event(call, ev);
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
    if (!call->pstate || call->native)
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
