/*
 * ratelimit.c: client rate limiting (SPEC section 4, `rate_limiting`): token buckets per
 * process (global), per client and per requested model, checked in that order before any
 * routing. The buckets live in one object per process that outlives config reloads; the
 * limits come from the request's runtime, so a reload changes them in place. The answer
 * headers (X-RateLimit-*) are left in the request context for every later answer.
 *
 * With storage.redis_url the buckets are shared by every instance: while Redis is ready the
 * local buckets take the full limits (a cheap first filter) and Redis decides next, in a
 * stage of the shared admission (ar_gw_buckets_shared, admission.c); a refusal there gives
 * the local tokens back. Without an answer, this instance's share of each rate and burst
 * (/ storage.redis_instances) decides instead, as for the RPM windows.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/mem.h"
#include "core/str.h"
#include "core/window.h"
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

/* The buckets in the order they are checked: limit_type of a refusal, config row. */
static const char *const types[3] = {"global", "client", "model"};

static const ar_bucket_conf_t *row_of(const ar_ratelimit_conf_t *conf, size_t i)
{
    return i == 0 ? &conf->global : i == 1 ? &conf->per_client : &conf->per_model;
}

/* The limits of bucket i at share; false when it is off or unlimited. */
static bool limit_of(const ar_ratelimit_conf_t *conf, size_t i, int64_t share,
                     ar_bucket_limit_t *lim)
{
    const ar_bucket_conf_t *row = row_of(conf, i);
    /* -1 limits are unlimited: such a bucket is neither charged nor reported */
    return row->enabled &&
           ar_bucket_limit_init(lim, ar_limit_share(row->requests_per_minute, share),
                                ar_limit_share(row->burst_size, share));
}

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

/* Gives back every token of ch. */
static void give_back(ar_gw_rl_charge_t *ch)
{
    for (size_t i = 0; i < 3; i++) {
        if (ch->bucket[i])
            ar_bucket_give(ch->bucket[i], &ch->lim[i]);
    }
}

/* The request is not served: its tokens go back and ch is left empty (nothing more to give
 * back when it finishes). */
static void drop_charge(ar_gw_rl_charge_t *ch)
{
    give_back(ch);
    memset(ch->bucket, 0, sizeof(ch->bucket));
}

/*
 * Takes a token from every bucket of ch, in order, at its limits. The first without one
 * refuses (429 with its headers): the earlier ones are given back and ch is left empty.
 * Otherwise the tightest bucket's headers are recorded. @return true when all had one.
 */
static bool take_all(ar_http_request_t *req, const ar_runtime_t *rt, ar_gw_rl_charge_t *ch,
                     uint64_t now_ms)
{
    ar_bucket_result_t res, best = {0};
    bool any = false;
    for (size_t i = 0; i < 3; i++) {
        if (!ch->bucket[i])
            continue;
        if (!ar_bucket_take(ch->bucket[i], &ch->lim[i], now_ms, &res)) {
            /* the request is not served: it must not count against earlier buckets */
            ch->bucket[i] = NULL;
            drop_charge(ch);
            record_headers(req, &res);
            ar_gw_refuse_limit(req, rt, types[i], res.retry_ms, "Rate limit exceeded");
            return false;
        }
        if (!any || tighter(&res, &best))
            best = res;
        any = true;
    }
    if (any)
        record_headers(req, &best);
    return true;
}

int ar_gw_ratelimit(ar_http_request_t *req, ar_runtime_t *rt, ar_span_t model,
                    ar_gw_rl_charge_t *ch)
{
    const ar_ratelimit_conf_t *conf = &rt->cfg->rate_limiting;
    ((ar_gw_ctx_t *)req->data)->rl = NULL;
    memset(ch, 0, sizeof(*ch));
    if (!conf->enabled)
        return 0;
    ar_gw_worker_t *w = req->worker->data;
    ar_gw_limiter_t *l = limiter_of(w->gw);
    /* with Redis to decide, the local buckets only filter out what the whole fleet's limit
     * would refuse anyway; without, this instance keeps to its share */
    bool shared = ar_redis_conn_ready(w->redis);
    int64_t share = shared ? 1 : rt->cfg->storage.redis_instances;
    uint64_t now_ms = ar_now_ms();
    bool any = false;
    for (size_t i = 0; i < 3; i++) {
        if (!limit_of(conf, i, share, &ch->lim[i]))
            continue;
        if (i == 0) {
            ch->bucket[i] = &l->global;
        } else if (i == 1) {
            ar_span_t id;
            char kind = client_identity(req, &id);
            ch->bucket[i] = ar_bucket_table_get(l->clients, kind, id, now_ms);
        } else {
            ch->bucket[i] = ar_bucket_table_get(l->models, 'm', model, now_ms);
        }
        any = true;
    }
    if (!take_all(req, rt, ch, now_ms))
        return AR_ELIMIT;
    ch->shared = shared && any;
    return 0;
}

/* ---- shared through Redis ---- */

/* Redis gave no answer: the local buckets decide again, with this instance's share. */
static bool shared_fallback(ar_gw_req_t *g)
{
    ar_gw_rl_charge_t *ch = &g->rl_charge;
    const ar_ratelimit_conf_t *conf = &g->rt->cfg->rate_limiting;
    give_back(ch);
    for (size_t i = 0; i < 3; i++) {
        if (ch->bucket[i] && !limit_of(conf, i, g->rt->cfg->storage.redis_instances, &ch->lim[i]))
            ch->bucket[i] = NULL;
    }
    return take_all(g->http, g->rt, ch, ar_now_ms());
}

/* The index in ch of the n-th bucket charged (the order the script got them in). */
static size_t nth_charged(const ar_gw_rl_charge_t *ch, size_t n)
{
    for (size_t i = 0; i < 3; i++) {
        if (ch->bucket[i] && n-- == 0)
            return i;
    }
    return 0; /* not reached: the script answers an index it was given */
}

static void on_shared_verdict(void *ud, int rc, const ar_redis_bucket_verdict_t *v)
{
    ar_gw_req_t *g = ud;
    ar_http_request_t *http = g->http; /* held since the take was sent */
    ar_gw_rl_charge_t *ch = &g->rl_charge;
    if (g->finished) {
        /* aborted meanwhile: its local tokens stay spent, as a local admission's would */
    } else if (rc == 0) {
        size_t i = nth_charged(ch, v->which);
        ar_bucket_result_t res = {.allowed = v->allowed,
                                  .limit = ch->lim[i].capacity,
                                  .remaining = v->remaining,
                                  .retry_ms = v->retry_ms,
                                  .full_ms = v->full_ms};
        /* the fleet's buckets, not this instance's, are what the client is told about */
        record_headers(http, &res);
        if (v->allowed) {
            ar_gw_admit_next(g);
        } else {
            /* not served: the local buckets must not count it (they would then refuse
             * what the fleet still has room for) */
            drop_charge(ch);
            ar_gw_key_give_back(g);
            ar_gw_refuse_limit(http, g->rt, types[i], v->retry_ms, "Rate limit exceeded");
            ar_gw_req_finish(g);
        }
    } else if (shared_fallback(g)) {
        ar_gw_admit_next(g);
    } else {
        ar_gw_key_give_back(g);
        ar_gw_req_finish(g);
    }
    ar_http_unref(http);
}

#define KEY_MAX 64

/* prefix then 32 hex digits of the SHA-256 of id, in out: client bytes never reach a Redis
 * key raw, and every instance names the same bucket the same way. */
static const char *hashed_key(char out[KEY_MAX], const char *prefix, ar_span_t id)
{
    char hex[65];
    ar_sha256_hex(id, hex);
    snprintf(out, KEY_MAX, "%s%.32s", prefix, hex);
    return out;
}

bool ar_gw_buckets_shared(ar_gw_req_t *g)
{
    ar_gw_rl_charge_t *ch = &g->rl_charge;
    if (!ch->shared)
        return false;
    ch->shared = false; /* asked once */
    ar_redis_conn_t *c = g->gw->redis;
    if (ar_redis_conn_ready(c)) {
        char keys[3][KEY_MAX]; /* the take copies them */
        ar_redis_bucket_t b[3];
        size_t n = 0;
        for (size_t i = 0; i < 3; i++) {
            if (!ch->bucket[i])
                continue;
            const char *key = "airouter:rl:global";
            if (i == 1) {
                ar_span_t id;
                /* the kind (c, k or i) keeps an X-Client-ID from posing as another caller's
                 * address */
                static const char *const prefixes[] = {
                    "airouter:rl:client:c", "airouter:rl:client:k", "airouter:rl:client:i"};
                char kind = client_identity(g->http, &id);
                key = hashed_key(keys[i], prefixes[kind == 'c' ? 0 : kind == 'k' ? 1 : 2], id);
            } else if (i == 2) {
                key = hashed_key(keys[i], "airouter:rl:model:", ar_span_cstr(g->call.public_model));
            }
            int64_t us = ch->lim[i].interval_ns / 1000;
            b[n++] = (ar_redis_bucket_t){key, ch->lim[i].capacity, us < 1 ? 1 : us};
        }
        if (ar_redis_bucket_take(c, b, n, on_shared_verdict, g) == 0) {
            ar_http_ref(g->http);
            return true;
        }
    }
    if (shared_fallback(g))
        return false;
    ar_gw_key_give_back(g);
    ar_gw_req_finish(g);
    return true;
}
