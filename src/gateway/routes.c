/*
 * routes.c: the path table of the client API (SPEC section 3). `/api/v1` is the same as
 * `/v1`. An unknown path is a JSON 404; a known path with the wrong method a JSON 405
 * with Allow. Each request holds the runtime it started with (req->data while routing).
 */
#include <string.h>

#include "core/log.h"
#include "gateway/gateway_int.h"

typedef enum route_id {
    R_CHAT,
    R_COMPLETIONS,
    R_EMBEDDINGS,
    R_MODELS,
    R_MODEL,
    R_HEALTH,
} route_id_t;

typedef struct route {
    ar_span_t path;
    bool prefix; /* path is a prefix ending in '/' */
    ar_http_method_t method;
    const char *allow;
    route_id_t id;
    bool auth;
} route_t;

static const route_t routes[] = {
    {AR_LIT("/v1/chat/completions"), false, AR_HTTP_POST, "POST", R_CHAT, true},
    {AR_LIT("/v1/completions"), false, AR_HTTP_POST, "POST", R_COMPLETIONS, true},
    {AR_LIT("/v1/embeddings"), false, AR_HTTP_POST, "POST", R_EMBEDDINGS, true},
    {AR_LIT("/v1/models"), false, AR_HTTP_GET, "GET", R_MODELS, true},
    {AR_LIT("/v1/models/"), true, AR_HTTP_GET, "GET", R_MODEL, true},
    {AR_LIT("/health"), false, AR_HTTP_GET, "GET", R_HEALTH, false},
};

static void release_rt(void *arg)
{
    ar_runtime_release(arg);
}

static void preflight(ar_http_request_t *req, ar_runtime_t *rt)
{
    ar_http_header_t hs[8];
    size_t n = ar_gw_common_headers(req, rt, hs, 4);
    hs[n++] =
        (ar_http_header_t){AR_LIT("Access-Control-Allow-Methods"), AR_LIT("GET, POST, OPTIONS")};
    hs[n++] = (ar_http_header_t){
        AR_LIT("Access-Control-Allow-Headers"),
        AR_LIT("Authorization, Content-Type, x-api-key, api-key, x-goog-api-key, "
               "anthropic-version, x-request-id, x-client-id")};
    hs[n++] = (ar_http_header_t){AR_LIT("Access-Control-Max-Age"), AR_LIT("86400")};
    ar_http_respond(req, 204, hs, n, AR_SPAN_NULL);
}

void ar_gw_on_request(ar_http_request_t *req)
{
    ar_gw_worker_t *gw = req->worker->data;
    ar_runtime_t *rt = ar_runtime_acquire(gw->gw);
    ar_pool_cleanup_add(req->pool, release_rt, rt);
    ar_gw_ctx_t *ctx = ar_pool_alloc(req->pool, sizeof(*ctx));
    ctx->rt = rt;
    req->data = ctx;

    ar_span_t path = req->path;
    if (ar_span_starts(path, AR_LIT("/api/v1/")) || ar_span_eq(path, AR_LIT("/api/v1")))
        path = ar_span_skip(path, 4);
    const route_t *hit = NULL;
    const route_t *known = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const route_t *r = &routes[i];
        bool match = r->prefix ? (ar_span_starts(path, r->path) && path.len > r->path.len)
                               : ar_span_eq(path, r->path);
        if (!match)
            continue;
        known = r;
        if (r->method == req->method || (r->method == AR_HTTP_GET && req->method == AR_HTTP_HEAD)) {
            hit = r;
            break;
        }
    }
    if (!hit) {
        if (known && req->method == AR_HTTP_OPTIONS) {
            preflight(req, rt);
            return;
        }
        if (known) {
            ar_http_header_t hs[4];
            size_t n = ar_gw_common_headers(req, rt, hs, 3);
            hs[n++] = (ar_http_header_t){AR_LIT("Allow"), ar_span_cstr(known->allow)};
            ar_span_t body = ar_http_error_body(req, "Method not allowed for this path",
                                                "invalid_request_error", "method_not_allowed");
            ar_http_respond_json(req, 405, hs, n, body);
            return;
        }
        char *msg = ar_pool_printf(req->pool, "Unknown path: %.*s",
                                   (int)(req->path.len > 200 ? 200 : req->path.len), req->path.ptr);
        ar_gw_error(req, 404, "not_found_error", "not_found", msg);
        return;
    }
    if (hit->auth && ar_gw_authenticate(req, rt) != 0)
        return;
    switch (hit->id) {
    case R_CHAT: ar_gw_llm(req, rt, AR_EP_CHAT); break;
    case R_COMPLETIONS: ar_gw_llm(req, rt, AR_EP_COMPLETIONS); break;
    case R_EMBEDDINGS: ar_gw_llm(req, rt, AR_EP_EMBEDDINGS); break;
    case R_MODELS: ar_gw_models(req, rt, AR_SPAN_NULL); break;
    case R_MODEL: ar_gw_models(req, rt, ar_span_skip(path, AR_LIT("/v1/models/").len)); break;
    case R_HEALTH: ar_http_respond_json(req, 200, NULL, 0, AR_LIT("{\"status\":\"ok\"}")); break;
    }
}
