/*
 * ratelimit.c: client rate limiting (SPEC section 4, `rate_limiting`): token buckets per
 * process (global), per client and per requested model, checked in that order before any
 * routing. The buckets live in one object per process that outlives config reloads; the
 * limits come from the request's runtime, so a reload changes them in place. The answer
 * headers (X-RateLimit-*) are left in the request context for every later answer.
 */
#include <string.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/mem.h"
#include "core/str.h"
#include "gateway/gateway_int.h"
#include "router/bucket.h"

#define CLIENT_SLOTS 65536 /* 1.5 MiB of slots; see bucket.h for what happens when full */
#define MODEL_SLOTS 4096   /* model names come from requests, so they are bounded too */

/* The buckets of the process, created on the first request that needs them. */
typedef struct ar_gw_limiter {
    ar_bucket_t global;
    ar_bucket_table_t *clients;
    ar_bucket_table_t *models;
} ar_gw_limiter_t;

static ar_gw_limiter_t *limiter_of(ar_gateway_t *gw)
{
    ar_gw_limiter_t *l = atomic_load_explicit(&gw->limiter, memory_order_acquire);
    if (l)
        return l;
    /* Two workers may race here once: the loser frees its copy, nobody ever used it. */
    ar_gw_limiter_t *made = ar_xcalloc(1, sizeof(*made));
    ar_bucket_init(&made->global);
    made->clients = ar_bucket_table_create(CLIENT_SLOTS, ar_rand_u64());
    made->models = ar_bucket_table_create(MODEL_SLOTS, ar_rand_u64());
    if (atomic_compare_exchange_strong_explicit(&gw->limiter, &l, made, memory_order_acq_rel,
                                                memory_order_acquire))
        return made;
    ar_bucket_table_destroy(made->clients);
    ar_bucket_table_destroy(made->models);
    ar_free(made);
    return l;
}

void ar_gw_ratelimit_view(ar_gateway_t *gw, ar_admin_limiter_t *out)
{
    ar_gw_limiter_t *l = atomic_load_explicit(&gw->limiter, memory_order_acquire);
    *out = l ? (ar_admin_limiter_t){&l->global, l->clients, l->models} : (ar_admin_limiter_t){0};
}

void ar_gw_ratelimit_destroy(ar_gateway_t *gw)
{
    ar_gw_limiter_t *l = atomic_exchange(&gw->limiter, NULL);
    if (!l)
        return;
    ar_bucket_table_destroy(l->clients);
    ar_bucket_table_destroy(l->models);
    ar_free(l);
}

/* The caller's API key, in any of the header spellings auth.c accepts. */
static ar_span_t caller_key(const ar_http_request_t *req)
{
    ar_span_t v = ar_http_header(req, AR_LIT("authorization"));
    if (v.len)
        return ar_span_istarts(v, AR_LIT("bearer ")) ? ar_span_trim(ar_span_skip(v, 7))
                                                     : ar_span_trim(v);
    static const ar_span_t others[] = {AR_LIT("x-api-key"), AR_LIT("api-key"),
                                       AR_LIT("x-goog-api-key")};
    for (size_t i = 0; i < AR_ARRAY_CNT(others); i++) {
        v = ar_span_trim(ar_http_header(req, others[i]));
        if (v.len)
            return v;
    }
    return AR_SPAN_NULL;
}

/*
 * Who the client is: X-Client-ID, else its API key, else its address. The kind byte keeps
 * the three apart (an X-Client-ID cannot pose as another caller's address). The bucket
 * table keeps only a seeded 64-bit hash of the identity, so the key is never stored.
 */
static char client_identity(const ar_http_request_t *req, ar_span_t *id)
{
    *id = ar_span_trim(ar_http_header(req, AR_LIT("x-client-id")));
    if (id->len)
        return 'c';
    *id = caller_key(req);
    if (id->len)
        return 'k';
    *id = ar_span_cstr(req->client_ip ? req->client_ip : "");
    return 'i';
}

typedef struct check {
    const char *type; /* limit_type in a refusal */
    const ar_bucket_conf_t *conf;
    ar_bucket_limit_t lim;
    ar_bucket_t *bucket;
    ar_bucket_result_t res;
} check_t;

/* The X-RateLimit-* values of r, in the pool; Reset is when the bucket is full again. */
static void record_headers(ar_http_request_t *req, const ar_bucket_result_t *r)
{
    ar_gw_rl_headers_t *h = ar_pool_alloc(req->pool, sizeof(*h) + 3 * 24);
    char *p = (char *)(h + 1);
    int64_t reset_s = (ar_wall_ms() + r->full_ms + 999) / 1000;
    size_t n = ar_u64_dec((uint64_t)r->limit, p);
    h->limit = ar_span(p, n);
    p += 24;
    n = ar_u64_dec((uint64_t)r->remaining, p);
    h->remaining = ar_span(p, n);
    p += 24;
    n = ar_u64_dec((uint64_t)reset_s, p);
    h->reset = ar_span(p, n);
    ((ar_gw_ctx_t *)req->data)->rl = h;
}

/* The tighter of two passed checks: fewer tokens left, then the longer wait until full. */
static bool tighter(const ar_bucket_result_t *a, const ar_bucket_result_t *b)
{
    if (a->remaining != b->remaining)
        return a->remaining < b->remaining;
    return a->full_ms > b->full_ms;
}

void ar_gw_refuse_limit(ar_http_request_t *req, const ar_runtime_t *rt, const char *limit_type,
                        int64_t retry_ms, const char *message)
{
    char *retry = ar_pool_alloc(req->pool, 24);
    ar_u64_dec((uint64_t)((retry_ms + 999) / 1000), retry);
    ar_http_header_t hs[8];
    hs[0] = (ar_http_header_t){AR_LIT("Retry-After"), ar_span_cstr(retry)};
    size_t n = 1 + ar_gw_common_headers(req, rt, hs + 1, AR_ARRAY_CNT(hs) - 1);
    const ar_gw_ctx_t *ctx = req->data;
    const char *why = ar_pool_printf(req->pool, "%s (%s limit)", message, limit_type);
    ar_gw_set_reason(req, why);
    if (ctx->front) {
        /* another client API (/v1/messages): its own error shape, the limit named inside */
        ar_span_t b = ar_gw_error_body(req, 429, "rate_limit_error", "rate_limit_exceeded", why);
        ar_http_respond_json(req, 429, hs, n, b);
        return;
    }
    ar_buf_t b;
    ar_buf_init(&b, 4096);
    int rc = ar_buf_append_str(&b, "{\"error\":{\"message\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(&b, ar_span_cstr(message));
    rc = rc ? rc : ar_buf_append_str(&b, "\",\"type\":\"rate_limit_error\",\"limit_type\":\"");
    rc = rc ? rc : ar_buf_append_str(&b, limit_type);
    rc = rc ? rc : ar_buf_append_str(&b, "\"}}");
    char *body = rc ? NULL : ar_pool_strndup(req->pool, b.ptr, b.len);
    ar_buf_dispose(&b);
    ar_http_respond_json(req, 429, hs, n, body ? ar_span_cstr(body) : AR_LIT("{}"));
}

int ar_gw_ratelimit(ar_http_request_t *req, ar_runtime_t *rt, ar_span_t model)
{
    const ar_ratelimit_conf_t *conf = &rt->cfg->rate_limiting;
    ((ar_gw_ctx_t *)req->data)->rl = NULL;
    if (!conf->enabled)
        return 0;
    check_t checks[3] = {
        {.type = "global", .conf = &conf->global},
        {.type = "client", .conf = &conf->per_client},
        {.type = "model", .conf = &conf->per_model},
    };
    ar_gw_limiter_t *l = limiter_of(((ar_gw_worker_t *)req->worker->data)->gw);
    uint64_t now_ms = ar_now_ms();
    const check_t *tightest = NULL;
    for (size_t i = 0; i < AR_ARRAY_CNT(checks); i++) {
        check_t *c = &checks[i];
        /* -1 limits are unlimited: such a bucket is neither charged nor reported */
        if (!c->conf->enabled ||
            !ar_bucket_limit_init(&c->lim, c->conf->requests_per_minute, c->conf->burst_size))
            continue;
        if (i == 0) {
            c->bucket = &l->global;
        } else if (i == 1) {
            ar_span_t id;
            char kind = client_identity(req, &id);
            c->bucket = ar_bucket_table_get(l->clients, kind, id, now_ms);
        } else {
            c->bucket = ar_bucket_table_get(l->models, 'm', model, now_ms);
        }
        if (!ar_bucket_take(c->bucket, &c->lim, now_ms, &c->res)) {
            /* the request is not served: it must not count against earlier buckets */
            for (size_t j = 0; j < i; j++) {
                if (checks[j].bucket)
                    ar_bucket_give(checks[j].bucket, &checks[j].lim);
            }
            record_headers(req, &c->res);
            ar_gw_refuse_limit(req, rt, c->type, c->res.retry_ms, "Rate limit exceeded");
            return AR_ELIMIT;
        }
        if (!tightest || tighter(&c->res, &tightest->res))
            tightest = c;
    }
    if (tightest)
        record_headers(req, &tightest->res);
    return 0;
}
