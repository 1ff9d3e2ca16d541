/*
 * routes.c: the path table of the client API (SPEC section 3). `/api/v1` is the same as
 * `/v1`. An unknown path is a JSON 404; a known path with the wrong method a JSON 405
 * with Allow. Each request holds the runtime it started with (req->data while routing).
 * A request with a body is routed and its key checked at its head (ar_gw_on_head), so a
 * refused one is answered before its body is read or any memory is taken for it.
 * The observability pages (/health, /vhealth, /metrics, /admin/state, /openapi.json) are
 * formatted by src/admin from a view assembled here; only the /admin pages need a key.
 */
#include <string.h>

#include "admin/admin.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "gateway/gateway_int.h"

/* An admin page larger than this is refused (500) rather than grown without bound. */
#define ADMIN_PAGE_MAX_BYTES (64u << 20)

typedef enum route_id {
    R_CHAT,
    R_COMPLETIONS,
    R_EMBEDDINGS,
    R_MESSAGES,
    R_COUNT_TOKENS,
    R_MODELS,
    R_MODEL,
    R_HEALTH,
    R_VHEALTH,
    R_METRICS,
    R_OPENAPI,
    R_ADMIN_STATE,
    R_ADMIN_RESET,
    R_ADMIN_METRICS,
    R_ADMIN_RATE_LIMITS,
    R_ADMIN_TIMESERIES,
    R_ADMIN_KEYS, /* admin_api.c */
    R_ADMIN_KEY_CREATE,
    R_ADMIN_KEY_REVOKE,
    R_ADMIN_KEY_LIMITS,
    R_ADMIN_PLANS,
    R_ADMIN_PLAN_CREATE,
    R_ADMIN_SPEND,
    R_ADMIN_SPEND_CSV,
    R_AZURE_CHAT, /* Azure OpenAI SDKs: /openai/deployments/{deployment}/... */
    R_AZURE_COMPLETIONS,
    R_AZURE_EMBEDDINGS,
    R_USAGE, /* the calling key's own: usage.c */
    R_LIMITS,
    R_TARIFF,
    R_RATE_LIMIT,
    R_DASHBOARD, /* GET /, /dashboard.js, /dashboard.css */
    R_RESPONSES, /* responses.c */
    R_RESPONSE_ITEMS,
    R_RESPONSE_GET,
    R_RESPONSE_DELETE,
} route_id_t;

typedef struct ar_gw_route {
    ar_span_t path;
    bool prefix;      /* path is a prefix ending in '/' */
    ar_span_t suffix; /* with prefix: what the path must end with (empty: anything) */
    ar_http_method_t method;
    const char *allow;
    route_id_t id;
    ar_gw_auth_level_t auth;
} route_t;

static const route_t routes[] = {
    {AR_LIT("/v1/chat/completions"), false, AR_SPAN_NULL, AR_HTTP_POST, "POST", R_CHAT,
     AR_AUTH_KEY},
    {AR_LIT("/v1/completions"), false, AR_SPAN_NULL, AR_HTTP_POST, "POST", R_COMPLETIONS,
     AR_AUTH_KEY},
    {AR_LIT("/v1/embeddings"), false, AR_SPAN_NULL, AR_HTTP_POST, "POST", R_EMBEDDINGS,
     AR_AUTH_KEY},
    {AR_LIT("/v1/messages"), false, AR_SPAN_NULL, AR_HTTP_POST, "POST", R_MESSAGES, AR_AUTH_KEY},
    {AR_LIT("/v1/messages/count_tokens"), false, AR_SPAN_NULL, AR_HTTP_POST, "POST", R_COUNT_TOKENS,
     AR_AUTH_KEY},
    {AR_LIT("/v1/responses"), false, AR_SPAN_NULL, AR_HTTP_POST, "POST", R_RESPONSES, AR_AUTH_KEY},
    /* input_items first: the id routes below take any suffix */
    {AR_LIT("/v1/responses/"), true, AR_LIT("/input_items"), AR_HTTP_GET, "GET", R_RESPONSE_ITEMS,
     AR_AUTH_KEY},
    {AR_LIT("/v1/responses/"), true, AR_SPAN_NULL, AR_HTTP_GET, "GET, DELETE", R_RESPONSE_GET,
     AR_AUTH_KEY},
    {AR_LIT("/v1/responses/"), true, AR_SPAN_NULL, AR_HTTP_DELETE, "GET, DELETE", R_RESPONSE_DELETE,
     AR_AUTH_KEY},
    {AR_LIT("/v1/models"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_MODELS, AR_AUTH_KEY},
    {AR_LIT("/v1/models/"), true, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_MODEL, AR_AUTH_KEY},
    {AR_LIT("/health"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_HEALTH, AR_AUTH_PUBLIC},
    {AR_LIT("/"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_DASHBOARD, AR_AUTH_PUBLIC},
    {AR_LIT("/dashboard.js"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_DASHBOARD, AR_AUTH_PUBLIC},
    {AR_LIT("/dashboard.css"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_DASHBOARD,
     AR_AUTH_PUBLIC},
    {AR_LIT("/vhealth"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_VHEALTH, AR_AUTH_PUBLIC},
    {AR_LIT("/metrics"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_METRICS, AR_AUTH_PUBLIC},
    {AR_LIT("/openapi.json"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_OPENAPI, AR_AUTH_PUBLIC},
    {AR_LIT("/admin/state"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_ADMIN_STATE,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/state/"), true, AR_LIT("/reset"), AR_HTTP_POST, "POST", R_ADMIN_RESET,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/metrics"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_ADMIN_METRICS,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/rate-limits"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_ADMIN_RATE_LIMITS,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/timeseries"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_ADMIN_TIMESERIES,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/keys"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET, POST", R_ADMIN_KEYS,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/keys"), false, AR_SPAN_NULL, AR_HTTP_POST, "GET, POST", R_ADMIN_KEY_CREATE,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/keys/"), true, AR_LIT("/revoke"), AR_HTTP_POST, "POST", R_ADMIN_KEY_REVOKE,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/keys/"), true, AR_LIT("/limits"), AR_HTTP_POST, "POST", R_ADMIN_KEY_LIMITS,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/plans"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET, POST", R_ADMIN_PLANS,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/plans"), false, AR_SPAN_NULL, AR_HTTP_POST, "GET, POST", R_ADMIN_PLAN_CREATE,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/spend"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_ADMIN_SPEND,
     AR_AUTH_MASTER},
    {AR_LIT("/admin/spend.csv"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_ADMIN_SPEND_CSV,
     AR_AUTH_MASTER},
    {AR_LIT("/usage"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_USAGE, AR_AUTH_KEY},
    {AR_LIT("/limits"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_LIMITS, AR_AUTH_KEY},
    {AR_LIT("/tariff"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_TARIFF, AR_AUTH_KEY},
    {AR_LIT("/rate-limit"), false, AR_SPAN_NULL, AR_HTTP_GET, "GET", R_RATE_LIMIT, AR_AUTH_KEY},
    /* chat first: its suffix also ends in /completions */
    {AR_LIT("/openai/deployments/"), true, AR_LIT("/chat/completions"), AR_HTTP_POST, "POST",
     R_AZURE_CHAT, AR_AUTH_KEY},
    {AR_LIT("/openai/deployments/"), true, AR_LIT("/completions"), AR_HTTP_POST, "POST",
     R_AZURE_COMPLETIONS, AR_AUTH_KEY},
    {AR_LIT("/openai/deployments/"), true, AR_LIT("/embeddings"), AR_HTTP_POST, "POST",
     R_AZURE_EMBEDDINGS, AR_AUTH_KEY},
};

/* The deployment of an Azure path: what lies between the prefix and the suffix. */
static ar_span_t azure_deployment(ar_span_t path, ar_span_t suffix)
{
    ar_span_t d = ar_span_skip(path, AR_LIT("/openai/deployments/").len);
    d.len -= suffix.len;
    return d;
}

/* The {id} of /admin/keys/{id}/...: what lies between the prefix and the suffix. */
static ar_span_t admin_id(ar_span_t path, ar_span_t suffix)
{
    ar_span_t d = ar_span_skip(path, AR_LIT("/admin/keys/").len);
    d.len -= suffix.len;
    return d;
}

/* ---- observability (src/admin formats, this file assembles the view) ---- */

typedef int (*admin_page_fn)(const ar_admin_view_t *v, ar_buf_t *out);

/* What the admin pages read: this runtime's config and router, the shared state, clocks. */
static void admin_view(ar_http_request_t *req, ar_runtime_t *rt, ar_admin_view_t *v)
{
    ar_gateway_t *gw = ((ar_gw_worker_t *)req->worker->data)->gw;
    memset(v, 0, sizeof(*v));
    v->cfg = rt->cfg;
    v->router = rt->router;
    v->state = gw->state;
    v->now_ms = ar_now_ms();
    v->wall_ms = ar_wall_ms();
    /* started_ms is 0 until the gateway has set it */
    uint64_t started = gw->started_ms;
    v->uptime_s = started && v->now_ms > started ? (int64_t)((v->now_ms - started) / 1000) : 0;
    /* not counting the request asking */
    long busy = ar_server_in_flight(gw->server) - 1;
    v->in_flight = busy > 0 ? busy : 0;
    ar_server_connections(gw->server, &v->conns_open, &v->conns_max);
    v->log_dropped = ar_log_dropped();
    v->draining = ar_worker_draining(req->worker);
    ar_gw_tenancy_storage(gw, &v->storage);
    v->timeseries = gw->timeseries;
    v->ts_seconds = ((ar_gw_ctx_t *)req->data)->ts_seconds;
    ar_gw_ratelimit_view(gw, &v->limiter);
    v->keys = gw->tenancy ? ar_gw_tenancy_keys(gw->tenancy) : NULL;
    v->redis_configured = gw->redis_configured;
    if (gw->redis)
        ar_redis_stats(gw->redis, &v->redis);
    ar_gw_litellm_view(gw, &v->litellm);
}

/* Formats one admin page with fn and answers it; /health pages also show the proxies. */
static void admin_page(ar_http_request_t *req, ar_runtime_t *rt, admin_page_fn fn,
                       ar_span_t content_type, bool with_proxies, int status)
{
    ar_admin_view_t v;
    admin_view(req, rt, &v);
    ar_proxy_snapshot_t *snap = NULL;
    if (with_proxies) {
        ar_gateway_t *gw = ((ar_gw_worker_t *)req->worker->data)->gw;
        snap = ar_gw_proxies_acquire(gw);
        ar_admin_proxy_t *px = ar_pool_calloc(req->pool, sizeof(*px) * (snap->cnt ? snap->cnt : 1));
        for (size_t i = 0; i < snap->cnt; i++) {
            const ar_proxy_health_t *h = &snap->items[i];
            px[i] = (ar_admin_proxy_t){h->name,          h->url,  h->reachable, h->status,
                                       h->checked_at_ms, h->body, h->error};
        }
        v.proxies = px;
        v.proxies_cnt = snap->cnt;
    }
    /* a load balancer should stop sending traffic to an instance that is draining */
    if (status == 200 && with_proxies && v.draining)
        status = 503;
    ar_buf_t out;
    ar_buf_init(&out, ADMIN_PAGE_MAX_BYTES);
    int rc = fn(&v, &out);
    ar_gw_proxies_release(snap);
    if (rc != 0) {
        ar_buf_dispose(&out);
        ar_gw_error(req, 500, "api_error", "response_too_large", "The page is too large");
        return;
    }
    ar_http_header_t hs[8];
    size_t n = ar_gw_common_headers(req, rt, hs, 6);
    hs[n++] = (ar_http_header_t){AR_LIT("Content-Type"), content_type};
    hs[n++] = (ar_http_header_t){AR_LIT("Cache-Control"), AR_LIT("no-store")};
    ar_http_respond(req, status, hs, n, ar_buf_span(&out));
    ar_buf_dispose(&out); /* the body is borrowed only until ar_http_respond returns */
}

ar_span_t ar_gw_query_param(ar_span_t q, const char *name)
{
    size_t nl = strlen(name);
    while (q.len) {
        const char *amp = memchr(q.ptr, '&', q.len);
        ar_span_t pair = ar_span(q.ptr, amp ? (size_t)(amp - q.ptr) : q.len);
        if (pair.len > nl && memcmp(pair.ptr, name, nl) == 0 && pair.ptr[nl] == '=')
            return ar_span_skip(pair, nl + 1);
        q = amp ? ar_span_skip(q, pair.len + 1) : AR_SPAN_NULL;
    }
    return AR_SPAN_NULL;
}

/* GET /admin/timeseries?seconds=N (1..3600, default 300). */
static void admin_timeseries(ar_http_request_t *req, ar_runtime_t *rt)
{
    int64_t secs = 300;
    ar_span_t v = ar_gw_query_param(req->query, "seconds");
    if (v.len && (ar_parse_int64(v, &secs) != 0 || secs < 1 || secs > AR_TS_SECONDS)) {
        ar_gw_error(req, 400, "invalid_request_error", "invalid_seconds",
                    "'seconds' must be an integer from 1 to 3600");
        return;
    }
    ((ar_gw_ctx_t *)req->data)->ts_seconds = (size_t)secs;
    admin_page(req, rt, ar_admin_timeseries_json, AR_LIT("application/json"), false, 200);
}

static int openapi_page(const ar_admin_view_t *v, ar_buf_t *out)
{
    (void)v;
    return ar_admin_openapi(out);
}

char *ar_gw_url_decode(ar_pool_t *pool, ar_span_t s)
{
    char *out = ar_pool_alloc(pool, s.len + 1);
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == '%') {
            int hi = i + 2 < s.len ? ar_hexval(s.ptr[i + 1]) : -1;
            int lo = hi >= 0 ? ar_hexval(s.ptr[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0))
                return NULL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
}

/* The dashboard's files, with headers that keep the page to itself: only its own script
 * and style run, nothing frames it, no referrer leaves it. */
static void dashboard(ar_http_request_t *req, ar_runtime_t *rt, ar_span_t path)
{
    ar_admin_asset_t a;
    if (!ar_admin_dashboard_asset(path, &a)) {
        ar_gw_error(req, 404, "not_found_error", "not_found", "Unknown dashboard file");
        return;
    }
    ar_http_header_t hs[12];
    size_t n = ar_gw_common_headers(req, rt, hs, 4);
    hs[n++] = (ar_http_header_t){AR_LIT("Content-Type"), ar_span_cstr(a.content_type)};
    hs[n++] = (ar_http_header_t){AR_LIT("Content-Security-Policy"), AR_LIT(AR_ADMIN_DASHBOARD_CSP)};
    hs[n++] = (ar_http_header_t){AR_LIT("X-Content-Type-Options"), AR_LIT("nosniff")};
    hs[n++] = (ar_http_header_t){AR_LIT("X-Frame-Options"), AR_LIT("DENY")};
    hs[n++] = (ar_http_header_t){AR_LIT("Referrer-Policy"), AR_LIT("no-referrer")};
    hs[n++] = (ar_http_header_t){AR_LIT("Cache-Control"), AR_LIT("no-cache")};
    ar_http_respond(req, 200, hs, n, a.body);
}

/* POST /admin/state/{model}/reset: breakers of the model's deployments closed, bans lifted. */
static void admin_reset(ar_http_request_t *req, ar_runtime_t *rt, ar_span_t path)
{
    ar_span_t prefix = AR_LIT("/admin/state/");
    ar_span_t enc = ar_span(path.ptr + prefix.len, path.len - prefix.len - AR_LIT("/reset").len);
    char *model = ar_gw_url_decode(req->pool, enc);
    if (!model || !model[0]) {
        ar_gw_error(req, 400, "invalid_request_error", "invalid_model", "Malformed model name");
        return;
    }
    size_t n = ar_router_reset_model(rt->router, model);
    if (n == 0) {
        char *msg = ar_pool_printf(req->pool, "No deployment serves model '%.200s'", model);
        ar_gw_error(req, 404, "not_found_error", "model_not_found", msg);
        return;
    }
    AR_LOG(AR_LOG_INFO, NULL, "admin: reset %zu deployment(s) of model %.200s", n, model);
    ar_http_header_t hs[4];
    size_t hn = ar_gw_common_headers(req, rt, hs, 3);
    char *body = ar_pool_printf(req->pool, "{\"reset\":%zu}", n);
    ar_http_respond_json(req, 200, hs, hn, ar_span_cstr(body));
}

static void log_access(void *arg)
{
    ar_http_request_t *req = arg;
    const ar_gw_ctx_t *ctx = req->data; /* the LLM path's ar_gw_req_t starts with its ctx */
    if (!ctx->log_access)
        return; /* authenticated at its head, gone before its body was complete */
    int status = ar_http_status(req);
    ar_access_log_t rec = {
        .method = req->method_name.ptr ? req->method_name.ptr : "-",
        .path = req->path,
        .status = status ? status : 499,
        .model = ctx->log_model,
        .credential = ctx->log_credential,
        .attempts = ctx->log_attempts,
        .latency_ms = (double)(ar_now_us() - req->start_us) / 1000.0,
        .prompt_tokens = ctx->log_prompt_tokens,
        .completion_tokens = ctx->log_completion_tokens,
        .client = req->client_ip,
        .request_id = req->request_id,
        .stream = ctx->log_stream,
        .reason = ctx->log_reason,
    };
    ar_log_access(&rec);
}

static void release_rt(void *arg)
{
    ar_runtime_release(arg);
}

static void preflight(ar_http_request_t *req, ar_runtime_t *rt)
{
    ar_http_header_t hs[8];
    size_t n = ar_gw_common_headers(req, rt, hs, 4);
    hs[n++] = (ar_http_header_t){AR_LIT("Access-Control-Allow-Methods"),
                                 AR_LIT("GET, POST, DELETE, OPTIONS")};
    hs[n++] = (ar_http_header_t){
        AR_LIT("Access-Control-Allow-Headers"),
        AR_LIT("Authorization, Content-Type, x-api-key, api-key, x-goog-api-key, "
               "anthropic-version, x-request-id, x-client-id")};
    hs[n++] = (ar_http_header_t){AR_LIT("Access-Control-Max-Age"), AR_LIT("86400")};
    ar_http_respond(req, 204, hs, n, AR_SPAN_NULL);
}

/* Gives the request its context: the runtime it keeps to the end, and the access line. */
static ar_gw_ctx_t *begin(ar_http_request_t *req)
{
    ar_gw_worker_t *gw = req->worker->data;
    ar_runtime_t *rt = ar_runtime_acquire(gw->gw);
    ar_pool_cleanup_add(req->pool, release_rt, rt);
    ar_gw_ctx_t *ctx = ar_pool_calloc(req->pool, sizeof(*ctx)); /* rl and later fields: NULL */
    ctx->rt = rt;
    req->data = ctx;
    /* one access line per request, whatever answered it, once its answer is done */
    ar_pool_cleanup_add(req->pool, log_access, req);
    return ctx;
}

/*
 * What can be decided from the head alone: the route (404, 405 with Allow, the CORS
 * preflight) and the key (401, 403). Answers those itself and returns AR_EAUTH; otherwise
 * records the route in ctx and returns 0, or AR_EAGAIN while the key is looked up.
 */
static int admit(ar_http_request_t *req, ar_gw_ctx_t *ctx)
{
    ar_runtime_t *rt = ctx->rt;
    ar_span_t path = req->path;
    if (ar_span_starts(path, AR_LIT("/api/v1/")) || ar_span_eq(path, AR_LIT("/api/v1")))
        path = ar_span_skip(path, 4);
    else if (ar_span_starts(path, AR_LIT("/openai/v1/"))) /* Azure's v1 API shape */
        path = ar_span_skip(path, 7);
    const route_t *hit = NULL;
    const route_t *known = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const route_t *r = &routes[i];
        bool match =
            r->prefix ? (ar_span_starts(path, r->path) && path.len > r->path.len + r->suffix.len &&
                         ar_span_eq(ar_span_skip(path, path.len - r->suffix.len), r->suffix))
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
            return AR_EAUTH;
        }
        if (known) {
            ar_http_header_t hs[4];
            size_t n = ar_gw_common_headers(req, rt, hs, 3);
            hs[n++] = (ar_http_header_t){AR_LIT("Allow"), ar_span_cstr(known->allow)};
            ar_gw_set_reason(req, "Method not allowed for this path");
            ar_span_t body = ar_http_error_body(req, "Method not allowed for this path",
                                                "invalid_request_error", "method_not_allowed");
            ar_http_respond_json(req, 405, hs, n, body);
            return AR_EAUTH;
        }
        char *msg = ar_pool_printf(req->pool, "Unknown path: %.*s",
                                   (int)(req->path.len > 200 ? 200 : req->path.len), req->path.ptr);
        ar_gw_error(req, 404, "not_found_error", "not_found", msg);
        return AR_EAUTH;
    }
    /* Anthropic clients get Anthropic-shaped errors from the start, a 401 included; on
     * /v1/models the anthropic-version header (which Anthropic's SDKs always send) tells
     * them apart, and chooses the shape of the list too */
    if (hit->id == R_MESSAGES || hit->id == R_COUNT_TOKENS)
        ctx->front = &ar_front_anthropic;
    if ((hit->id == R_MODELS || hit->id == R_MODEL) &&
        ar_http_header(req, AR_LIT("anthropic-version")).len)
        ctx->front = &ar_front_anthropic;
    ctx->route = hit;
    ctx->route_path = path;
    return hit->auth == AR_AUTH_PUBLIC ? 0 : ar_gw_authenticate(req, rt, hit->auth);
}

void ar_gw_on_head(ar_http_request_t *req)
{
    ar_gw_ctx_t *ctx = begin(req);
    ctx->log_access = true; /* for an answer given now */
    if (admit(req, ctx) != AR_EAUTH)
        ctx->log_access = false; /* the body comes next; ar_gw_on_request logs */
}

void ar_gw_on_request(ar_http_request_t *req)
{
    ar_gw_ctx_t *ctx = req->data; /* set at the head when the request has a body */
    if (!ctx) {
        ctx = begin(req);
        ctx->log_access = true;
        int rc = admit(req, ctx);
        if (rc == AR_EAGAIN)
            ctx->auth_waiting = true; /* auth.c runs this again once the store answered */
        if (rc != 0)
            return;
    } else if (ctx->auth_pending) {
        ctx->auth_waiting = true; /* the key's lookup, started at the head, is not back */
        return;
    } else if ((ctx->auth_looked_up || ctx->ll_looked_up) && !ctx->key && !ctx->ll &&
               ctx->route->auth != AR_AUTH_PUBLIC) {
        /* looked up at the head (or just now): decide with the cache's answer */
        ctx->log_access = true;
        int rc = ar_gw_authenticate(req, ctx->rt, ctx->route->auth);
        if (rc == AR_EAGAIN)
            ctx->auth_waiting = true; /* an airouter key missing: LiteLLM's database next */
        if (rc != 0)
            return;
    }
    ctx->log_access = true;
    ar_runtime_t *rt = ctx->rt;
    const route_t *hit = ctx->route;
    ar_span_t path = ctx->route_path;
    switch (hit->id) {
    case R_CHAT: ar_gw_llm(req, rt, AR_EP_CHAT, AR_SPAN_NULL); break;
    case R_COMPLETIONS: ar_gw_llm(req, rt, AR_EP_COMPLETIONS, AR_SPAN_NULL); break;
    case R_EMBEDDINGS: ar_gw_llm(req, rt, AR_EP_EMBEDDINGS, AR_SPAN_NULL); break;
    case R_AZURE_CHAT: ar_gw_llm(req, rt, AR_EP_CHAT, azure_deployment(path, hit->suffix)); break;
    case R_AZURE_COMPLETIONS:
        ar_gw_llm(req, rt, AR_EP_COMPLETIONS, azure_deployment(path, hit->suffix));
        break;
    case R_AZURE_EMBEDDINGS:
        ar_gw_llm(req, rt, AR_EP_EMBEDDINGS, azure_deployment(path, hit->suffix));
        break;
    case R_MESSAGES: ar_gw_messages(req, rt); break;
    case R_RESPONSES: ar_gw_responses(req, rt); break;
    case R_RESPONSE_ITEMS: ar_gw_response_input_items(req, path); break;
    case R_RESPONSE_GET: ar_gw_response_get(req, path); break;
    case R_RESPONSE_DELETE: ar_gw_response_delete(req, path); break;
    case R_COUNT_TOKENS: ar_gw_messages_count_tokens(req, rt); break;
    case R_MODELS: ar_gw_models(req, rt, AR_SPAN_NULL); break;
    case R_MODEL: ar_gw_models(req, rt, ar_span_skip(path, AR_LIT("/v1/models/").len)); break;
    case R_HEALTH:
        admin_page(req, rt, ar_admin_health_json, AR_LIT("application/json"), true, 200);
        break;
    case R_DASHBOARD: dashboard(req, rt, path); break;
    case R_VHEALTH:
        admin_page(req, rt, ar_admin_health_html, AR_LIT("text/html; charset=utf-8"), true, 200);
        break;
    case R_METRICS:
        if (!rt->cfg->monitoring.prometheus_enabled) {
            ar_gw_error(req, 404, "not_found_error", "not_found",
                        "Metrics are disabled (monitoring.prometheus_enabled: false)");
            break;
        }
        admin_page(req, rt, ar_admin_metrics, AR_LIT("text/plain; version=0.0.4; charset=utf-8"),
                   false, 200);
        break;
    case R_OPENAPI:
        admin_page(req, rt, openapi_page, AR_LIT("application/json"), false, 200);
        break;
    case R_ADMIN_STATE:
        admin_page(req, rt, ar_admin_state_json, AR_LIT("application/json"), false, 200);
        break;
    case R_ADMIN_RESET: admin_reset(req, rt, path); break;
    case R_ADMIN_METRICS:
        admin_page(req, rt, ar_admin_metrics_json, AR_LIT("application/json"), false, 200);
        break;
    case R_ADMIN_RATE_LIMITS:
        admin_page(req, rt, ar_admin_rate_limits_json, AR_LIT("application/json"), false, 200);
        break;
    case R_ADMIN_TIMESERIES: admin_timeseries(req, rt); break;
    case R_ADMIN_KEYS: ar_gw_admin_keys_list(req); break;
    case R_ADMIN_KEY_CREATE: ar_gw_admin_key_create(req); break;
    case R_ADMIN_KEY_REVOKE:
        ar_gw_admin_key_action(req, admin_id(path, hit->suffix), "revoke");
        break;
    case R_ADMIN_KEY_LIMITS:
        ar_gw_admin_key_action(req, admin_id(path, hit->suffix), "limits");
        break;
    case R_ADMIN_PLANS: ar_gw_admin_plans_list(req); break;
    case R_ADMIN_PLAN_CREATE: ar_gw_admin_plan_create(req); break;
    case R_ADMIN_SPEND: ar_gw_admin_spend(req, false); break;
    case R_ADMIN_SPEND_CSV: ar_gw_admin_spend(req, true); break;
    case R_USAGE: ar_gw_key_usage(req, rt); break;
    case R_LIMITS: ar_gw_key_limits(req, rt); break;
    case R_TARIFF: ar_gw_key_tariff(req, rt); break;
    case R_RATE_LIMIT: ar_gw_key_rate_limit(req, rt); break;
    }
}
