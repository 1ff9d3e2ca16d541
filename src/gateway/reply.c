/*
 * reply.c: answers the gateway sends itself: JSON errors in the OpenAI shape and the
 * headers every answer carries (CORS, and X-RateLimit-* when client rate limiting is on).
 * Upstream answers are shaped by answer.c, which adds the same common headers. Each error
 * answered here also records its message as the access line's reason.
 */
#include <string.h>

#include "core/mem.h"
#include "gateway/gateway_int.h"

static bool origin_allowed(const ar_config_t *cfg, ar_span_t origin, bool *any)
{
    *any = false;
    const ar_strlist_t *l = &cfg->server.cors_origins;
    for (size_t i = 0; i < l->cnt; i++) {
        if (strcmp(l->items[i], "*") == 0) {
            *any = true;
            return true;
        }
        if (ar_span_eq(ar_span_cstr(l->items[i]), origin))
            return true;
    }
    return false;
}

/* CORS: Access-Control-Allow-Origin (and Vary) when the Origin is allowed. */
static size_t cors_headers(ar_http_request_t *req, const ar_runtime_t *rt, ar_http_header_t *out,
                           size_t max)
{
    size_t n = 0;
    if (rt->cfg->server.cors_origins.cnt == 0 || max < 2)
        return 0;
    ar_span_t origin = ar_http_header(req, AR_LIT("origin"));
    bool any;
    if (!origin.len || !origin_allowed(rt->cfg, origin, &any))
        return 0;
    out[n++] =
        (ar_http_header_t){AR_LIT("Access-Control-Allow-Origin"), any ? AR_LIT("*") : origin};
    if (!any)
        out[n++] = (ar_http_header_t){AR_LIT("Vary"), AR_LIT("Origin")};
    return n;
}

size_t ar_gw_common_headers(ar_http_request_t *req, const ar_runtime_t *rt, ar_http_header_t *out,
                            size_t max)
{
    if (!rt)
        return 0;
    size_t n = cors_headers(req, rt, out, max);
    /* Only a request that went through ar_gw_ratelimit has values: the rest (401, 404,
     * admin pages) was never counted against a bucket. */
    const ar_gw_ctx_t *ctx = req->data;
    if (rt->cfg->rate_limiting.enabled && ctx && ctx->rl && max - n >= 3) {
        out[n++] = (ar_http_header_t){AR_LIT("X-RateLimit-Limit"), ctx->rl->limit};
        out[n++] = (ar_http_header_t){AR_LIT("X-RateLimit-Remaining"), ctx->rl->remaining};
        out[n++] = (ar_http_header_t){AR_LIT("X-RateLimit-Reset"), ctx->rl->reset};
    }
    return n;
}

ar_span_t ar_gw_error_body(ar_http_request_t *req, int status, const char *type, const char *code,
                           const char *message)
{
    const ar_gw_ctx_t *ctx = req->data;
    if (ctx && ctx->front)
        return ctx->front->error_body(req, status, type, code, message);
    return ar_http_error_body(req, message, type, code);
}

void ar_gw_set_reason(ar_http_request_t *req, const char *reason)
{
    ar_gw_ctx_t *ctx = req->data;
    if (!ctx || !reason)
        return;
    /* copied: messages may point into buffers freed before the access line is written */
    ctx->log_reason = ar_pool_strndup(req->pool, reason, strnlen(reason, 1023));
}

void ar_gw_error(ar_http_request_t *req, int status, const char *type, const char *code,
                 const char *message)
{
    ar_gw_set_reason(req, message);
    ar_span_t body = ar_gw_error_body(req, status, type, code, message);
    ar_http_header_t hs[8];
    size_t n = ar_gw_common_headers(req, ar_gw_rt(req), hs, AR_ARRAY_CNT(hs));
    ar_http_respond_json(req, status, hs, n, body);
}
