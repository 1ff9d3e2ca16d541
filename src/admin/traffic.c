/*
 * traffic.c: the admin pages the dashboard polls (master key): GET /admin/metrics (request
 * totals per public model name, in the free-model router's camelCase shape), GET
 * /admin/rate-limits (every limiter with its use: client buckets, credential and deployment
 * RPM/TPM windows, virtual keys) and GET /admin/timeseries (the last hour per second).
 * Read-only views of atomics, like the other pages; only the key cache's walk takes its
 * lock (the admin page, never a request, waits on it).
 */
#include <inttypes.h>
#include <string.h>

#include "admin/admin_int.h"
#include "core/mem.h"

static uint64_t load_u64(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* ---- /admin/metrics ---- */

typedef struct model_sum {
    const char *name;
    uint64_t requests, successful, fallbacks, latency_us;
    bool available;
} model_sum_t;

/* Requests answered below 400, of a state's final statuses. */
static uint64_t successes(const ar_target_state_t *s)
{
    uint64_t n = 0;
    for (int i = 0; i < 300; i++)
        n += load_u64(&s->status[i]);
    return n;
}

/* Whether a deployment state could take a request now: breaker not open, credential free. */
static bool available(const ar_admin_view_t *v, const ar_admin_dep_t *d)
{
    ar_breaker_state_t b = ar_admin__breaker(v, d->s);
    if (b == AR_BREAKER_OPEN || b == AR_BREAKER_UNAVAILABLE)
        return false;
    int64_t until;
    return ar_admin__ban(v, ar_router_cred_state(v->router, d->cred_idx), &until) ==
           AR_ADMIN_BAN_NONE;
}

static void put_avg(ar_admin_w_t *w, const char *key, uint64_t sum_us, uint64_t n)
{
    ar_admin__putf(w, ",\"%s\":%.1f", key, n ? (double)sum_us / (double)n / 1000.0 : 0.0);
}

int ar_admin_metrics_json(const ar_admin_view_t *v, ar_buf_t *out)
{
    ar_admin_w_t w = {out, 0};
    ar_admin_deps_t deps;
    ar_admin__deps_collect(v, &deps);
    model_sum_t *sums = ar_xcalloc(deps.cnt ? deps.cnt : 1, sizeof(*sums));
    size_t n = 0;
    for (size_t i = 0; i < deps.cnt; i++) {
        const ar_admin_dep_t *d = &deps.items[i];
        if (!d->is_explicit && !ar_admin__dep_used(d->s))
            continue; /* an open credential's model nobody asked for */
        /* explicit: the public name of its first `models:` entry */
        const char *name = d->is_explicit
                               ? ar_router_dep(v->router, deps.refs[d->first_ref].dep_idx)->name
                               : d->s->model_name;
        model_sum_t *m = NULL;
        for (size_t j = 0; j < n && !m; j++)
            m = strcmp(sums[j].name, name) == 0 ? &sums[j] : NULL;
        if (!m) {
            m = &sums[n++];
            m->name = name;
        }
        m->requests += load_u64(&d->s->duration.count);
        m->latency_us += load_u64(&d->s->duration.sum_us);
        m->successful += successes(d->s);
        m->fallbacks += load_u64(&d->s->fallbacks);
        m->available = m->available || available(v, d);
    }
    const ar_target_state_t *u = ar_router_state_unrouted(v->state);
    uint64_t total = load_u64(&u->duration.count), ok = successes(u), lat = 0, fb = 0;
    size_t avail = 0;
    for (size_t i = 0; i < n; i++) {
        total += sums[i].requests;
        ok += sums[i].successful;
        lat += sums[i].latency_us;
        fb += sums[i].fallbacks;
        avail += sums[i].available;
    }
    lat += load_u64(&u->duration.sum_us);
    ar_admin__putf(&w,
                   "{\"uptime\":%" PRId64 ",\"totalRequests\":%" PRIu64
                   ",\"successfulRequests\":%" PRIu64 ",\"failedRequests\":%" PRIu64
                   ",\"fallbacksUsed\":%" PRIu64,
                   v->uptime_s, total, ok, total > ok ? total - ok : 0, fb);
    put_avg(&w, "avgLatency", lat, total);
    ar_admin__putf(&w, ",\"modelsAvailable\":%zu,\"models\":[", avail);
    for (size_t i = 0; i < n; i++) {
        const model_sum_t *m = &sums[i];
        ar_admin__puts(&w, i ? ",{\"name\":" : "{\"name\":");
        ar_admin__put_jstr(&w, m->name);
        ar_admin__putf(&w,
                       ",\"requests\":%" PRIu64 ",\"successful\":%" PRIu64 ",\"failed\":%" PRIu64,
                       m->requests, m->successful,
                       m->requests > m->successful ? m->requests - m->successful : 0);
        put_avg(&w, "avgLatency", m->latency_us, m->requests);
        ar_admin__puts(&w, m->available ? ",\"available\":true}" : ",\"available\":false}");
    }
    ar_admin__puts(&w, "]}");
    ar_free(sums);
    ar_admin__deps_dispose(&deps);
    return w.rc;
}

/* ---- /admin/rate-limits ---- */

static void put_window(ar_admin_w_t *w, const char *key, const ar_window_t *win, uint64_t now_ms,
                       int64_t limit)
{
    ar_admin__putf(w, ",\"%s\":{\"current\":%" PRId64 ",\"limit\":", key,
                   ar_window_sum(win, now_ms));
    ar_admin__put_i64(w, limit);
    ar_admin__puts(w, "}");
}

/* `"name":{"enabled":..,"requests_per_minute":..,"burst_size":..` (object left open). */
static bool open_bucket(ar_admin_w_t *w, const char *name, const ar_bucket_conf_t *c, bool on,
                        ar_bucket_limit_t *lim)
{
    bool limited =
        on && c->enabled && ar_bucket_limit_init(lim, c->requests_per_minute, c->burst_size);
    ar_admin__putf(w, "\"%s\":{\"enabled\":%s,\"requests_per_minute\":", name,
                   limited ? "true" : "false");
    ar_admin__put_i64(w, c->requests_per_minute);
    ar_admin__puts(w, ",\"burst_size\":");
    ar_admin__put_i64(w, c->burst_size);
    return limited;
}

/* `,"remaining":N,"full_in_ms":N` of a bucket (a bucket never used is full). */
static void put_peek(ar_admin_w_t *w, const ar_bucket_t *b, const ar_bucket_limit_t *lim,
                     uint64_t now_ms)
{
    ar_bucket_result_t r = {.remaining = lim->capacity};
    if (b)
        ar_bucket_peek(b, lim, now_ms, &r);
    ar_admin__putf(w, ",\"remaining\":%" PRId64 ",\"full_in_ms\":%" PRId64, r.remaining, r.full_ms);
}

static void put_client_buckets(ar_admin_w_t *w, const ar_admin_view_t *v)
{
    const ar_ratelimit_conf_t *rc = &v->cfg->rate_limiting;
    const ar_admin_limiter_t *l = &v->limiter;
    ar_bucket_limit_t lim;
    ar_admin__putf(w, "{\"client\":{\"enabled\":%s,", rc->enabled ? "true" : "false");
    if (open_bucket(w, "global", &rc->global, rc->enabled, &lim))
        put_peek(w, l->global, &lim, v->now_ms);
    ar_admin__puts(w, "},");
    open_bucket(w, "per_client", &rc->per_client, rc->enabled, &lim);
    ar_admin__putf(w, ",\"clients_tracked\":%zu,\"overflows\":%" PRIu64 "},",
                   l->clients ? ar_bucket_table_used(l->clients) : 0,
                   l->clients ? ar_bucket_table_overflows(l->clients) : 0);
    bool per_model = open_bucket(w, "per_model", &rc->per_model, rc->enabled, &lim);
    ar_admin__puts(w, ",\"models\":[");
    /* the configured public names (a bucket per name asked for; others are not listed) */
    size_t shown = 0;
    for (size_t i = 0; per_model && i < ar_router_dep_cnt(v->router); i++) {
        const char *name = ar_router_dep(v->router, i)->name;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(ar_router_dep(v->router, j)->name, name) == 0;
        if (seen)
            continue;
        const ar_bucket_t *b =
            l->models ? ar_bucket_table_find(l->models, 'm', ar_span_cstr(name)) : NULL;
        ar_admin__puts(w, shown++ ? ",{\"name\":" : "{\"name\":");
        ar_admin__put_jstr(w, name);
        put_peek(w, b, &lim, v->now_ms);
        ar_admin__puts(w, "}");
    }
    ar_admin__puts(w, "]}}");
}

typedef struct key_walk {
    ar_admin_w_t *w;
    uint64_t now_ms;
    const ar_tkey_state_t **seen; /* one entry per key id (a rotated key has two hashes) */
    size_t cnt, cap;
} key_walk_t;

static void put_key(void *ud, ar_tkey_t *k)
{
    key_walk_t *kw = ud;
    const ar_tkey_conf_t *c = atomic_load_explicit(&k->conf, memory_order_acquire);
    if (c->revoked || !k->state)
        return;
    for (size_t i = 0; i < kw->cnt; i++) {
        if (kw->seen[i] == k->state)
            return;
    }
    if (kw->cnt == kw->cap) {
        kw->cap = kw->cap ? kw->cap * 2 : 32;
        kw->seen = ar_xrealloc(kw->seen, kw->cap * sizeof(*kw->seen));
    }
    kw->seen[kw->cnt++] = k->state;
    ar_admin__puts(kw->w, kw->cnt > 1 ? ",{\"id\":" : "{\"id\":");
    ar_admin__putf(kw->w, "%" PRId64 ",\"name\":", c->id);
    ar_admin__put_jstr(kw->w, c->name);
    ar_admin__puts(kw->w, ",\"masked\":");
    ar_admin__put_jstr(kw->w, c->masked);
    put_window(kw->w, "rpm", &k->state->rpm, kw->now_ms, c->rpm);
    put_window(kw->w, "tpm", &k->state->tpm, kw->now_ms, c->tpm);
    ar_admin__puts(kw->w, "}");
}

int ar_admin_rate_limits_json(const ar_admin_view_t *v, ar_buf_t *out)
{
    ar_admin_w_t w = {out, 0};
    put_client_buckets(&w, v);
    ar_admin__puts(&w, ",\"credentials\":[");
    for (size_t i = 0; i < v->cfg->credentials_cnt; i++) {
        const ar_target_state_t *cs = ar_router_cred_state(v->router, i);
        int64_t rpm, tpm;
        ar_router_cred_limits(v->router, i, &rpm, &tpm);
        ar_admin__puts(&w, i ? ",{\"name\":" : "{\"name\":");
        ar_admin__put_jstr(&w, v->cfg->credentials[i].name);
        put_window(&w, "rpm", &cs->rpm, v->now_ms, rpm);
        put_window(&w, "tpm", &cs->tpm, v->now_ms, tpm);
        ar_admin__putf(&w, ",\"in_flight\":%ld}",
                       atomic_load_explicit(&cs->in_flight, memory_order_relaxed));
    }
    ar_admin__puts(&w, "],\"deployments\":[");
    ar_admin_deps_t deps;
    ar_admin__deps_collect(v, &deps);
    size_t shown = 0;
    for (size_t i = 0; i < deps.cnt; i++) {
        const ar_admin_dep_t *d = &deps.items[i];
        if (!d->is_explicit && !ar_admin__dep_used(d->s))
            continue;
        int64_t rpm, tpm;
        ar_admin__dep_limits(v, &deps, d, &rpm, &tpm);
        ar_admin__puts(&w, shown++ ? ",{\"credential\":" : "{\"credential\":");
        ar_admin__put_jstr(&w, d->s->cred_name);
        ar_admin__puts(&w, ",\"model\":");
        ar_admin__put_jstr(&w, d->s->model_name);
        put_window(&w, "rpm", &d->s->rpm, v->now_ms, rpm);
        put_window(&w, "tpm", &d->s->tpm, v->now_ms, tpm);
        ar_admin__puts(&w, "}");
    }
    ar_admin__deps_dispose(&deps);
    ar_admin__puts(&w, "],\"keys\":[");
    if (v->keys) {
        key_walk_t kw = {.w = &w, .now_ms = v->now_ms};
        ar_keycache_each(v->keys, put_key, &kw);
        ar_free(kw.seen);
    }
    ar_admin__puts(&w, "]}");
    return w.rc;
}

/* ---- /admin/timeseries ---- */

static void put_ms(ar_admin_w_t *w, const char *key, double ms)
{
    if (ms < 0)
        ar_admin__putf(w, ",\"%s\":null", key);
    else
        ar_admin__putf(w, ",\"%s\":%.1f", key, ms);
}

int ar_admin_timeseries_json(const ar_admin_view_t *v, ar_buf_t *out)
{
    ar_admin_w_t w = {out, 0};
    size_t n = v->ts_seconds < 1               ? 1
               : v->ts_seconds > AR_TS_SECONDS ? AR_TS_SECONDS
                                               : v->ts_seconds;
    ar_admin__puts(&w, "{\"interval_s\":1,\"points\":[");
    if (v->timeseries) {
        ar_ts_point_t *pts = ar_xmalloc(n * sizeof(*pts));
        n = ar_ts_read(v->timeseries, v->wall_ms / 1000, n, pts);
        for (size_t i = 0; i < n; i++) {
            const ar_ts_point_t *p = &pts[i];
            ar_admin__putf(&w, "%s{\"t\":%" PRId64 ",\"requests\":%" PRIu64 ",\"errors\":%" PRIu64,
                           i ? "," : "", p->t, p->requests, p->errors);
            put_ms(&w, "p50_ms", p->p50_ms);
            put_ms(&w, "p99_ms", p->p99_ms);
            ar_admin__putf(&w, ",\"prompt_tokens\":%" PRIu64 ",\"completion_tokens\":%" PRIu64 "}",
                           p->prompt_tokens, p->completion_tokens);
        }
        ar_free(pts);
    }
    ar_admin__puts(&w, "]}");
    return w.rc;
}
