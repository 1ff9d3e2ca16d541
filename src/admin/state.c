/*
 * state.c: GET /admin/state (master key): everything the router knows, per credential
 * and per deployment state, as JSON for operators and scripts. Unlike /health it lists
 * every deployment state of the current config (used or not), with the public names
 * that reach it, percentiles, token and status counts. Read-only, no locks.
 */
#include <inttypes.h>
#include <string.h>

#include "admin/admin_int.h"

static uint64_t load_u64(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

static void put_window(ar_admin_w_t *w, const char *key, const ar_window_t *win, uint64_t now_ms,
                       int64_t limit)
{
    ar_admin__putf(w, ",\"%s\":{\"current\":%" PRId64 ",\"limit\":", key,
                   ar_window_sum(win, now_ms));
    ar_admin__put_i64(w, limit);
    ar_admin__puts(w, "}");
}

/* `"upstream_errors":{"timeout":N,...}` with the non-zero kinds only. */
static void put_uperr(ar_admin_w_t *w, const ar_target_state_t *s)
{
    ar_admin__puts(w, ",\"upstream_errors\":{");
    bool first = true;
    for (int k = 0; k < AR_UPERR_KINDS; k++) {
        uint64_t n = load_u64(&s->uperr[k]);
        if (n == 0)
            continue;
        ar_admin__putf(w, "%s\"%s\":%" PRIu64, first ? "" : ",", ar_uperr_kind_name(k), n);
        first = false;
    }
    ar_admin__puts(w, "}");
}

static void put_credentials(ar_admin_w_t *w, const ar_admin_view_t *v)
{
    ar_admin__puts(w, ",\"credentials\":[");
    for (size_t i = 0; i < v->cfg->credentials_cnt; i++) {
        const ar_cred_conf_t *c = &v->cfg->credentials[i];
        const ar_target_state_t *cs = ar_router_cred_state(v->router, i);
        int64_t rpm, tpm, until;
        ar_router_cred_limits(v->router, i, &rpm, &tpm);
        ar_admin_ban_t ban = ar_admin__ban(v, cs, &until);
        ar_admin__puts(w, i ? ",{\"name\":" : "{\"name\":");
        ar_admin__put_jstr(w, c->name);
        ar_admin__puts(w, ",\"type\":");
        ar_admin__put_jstr(w, c->type_name);
        ar_admin__puts(w, c->is_fallback ? ",\"is_fallback\":true" : ",\"is_fallback\":false");
        ar_admin__puts(w, ",\"ban\":{\"banned\":");
        ar_admin__puts(w, ban != AR_ADMIN_BAN_NONE ? "true" : "false");
        ar_admin__puts(w, ",\"until\":");
        ar_admin__put_ban_until(w, ban, until);
        int last = atomic_load_explicit(&cs->ban.last_code, memory_order_relaxed);
        if (last)
            ar_admin__putf(w, ",\"last_code\":%d}", last);
        else
            ar_admin__puts(w, ",\"last_code\":null}");
        put_window(w, "rpm", &cs->rpm, v->now_ms, rpm);
        put_window(w, "tpm", &cs->tpm, v->now_ms, tpm);
        ar_admin__putf(w, ",\"in_flight\":%ld,\"requests\":%" PRIu64 ",\"errors\":%" PRIu64,
                       atomic_load_explicit(&cs->in_flight, memory_order_relaxed),
                       load_u64(&cs->requests), load_u64(&cs->errors));
        put_uperr(w, cs);
        ar_admin__puts(w, "}");
    }
    ar_admin__puts(w, "]");
}

/* The public names of the `models:` entries that use this state (implicit: its own name). */
static void put_public_names(ar_admin_w_t *w, const ar_admin_view_t *v, const ar_admin_deps_t *deps,
                             const ar_admin_dep_t *d)
{
    ar_admin__puts(w, ",\"public_names\":[");
    if (!d->is_explicit) {
        ar_admin__put_jstr(w, d->s->model_name);
    } else {
        for (size_t k = d->first_ref; k < deps->refs_cnt && deps->refs[k].s == d->s; k++) {
            const ar_deployment_t *dep = ar_router_dep(v->router, deps->refs[k].dep_idx);
            /* two entries may give the same deployment the same name on other lines */
            bool seen = false;
            for (size_t j = d->first_ref; j < k; j++) {
                if (strcmp(ar_router_dep(v->router, deps->refs[j].dep_idx)->name, dep->name) == 0)
                    seen = true;
            }
            if (seen)
                continue;
            if (k > d->first_ref)
                ar_admin__puts(w, ",");
            ar_admin__put_jstr(w, dep->name);
        }
    }
    ar_admin__puts(w, "]");
}

static void put_quantile(ar_admin_w_t *w, const char *key, const ar_target_state_t *s,
                         uint64_t now_ms, double q)
{
    double ms = ar_latency_quantile_ms(&s->latency, now_ms, q);
    if (ms < 0)
        ar_admin__putf(w, "\"%s\":null", key);
    else
        ar_admin__putf(w, "\"%s\":%.1f", key, ms);
}

static void put_deployment(ar_admin_w_t *w, const ar_admin_view_t *v, const ar_admin_deps_t *deps,
                           const ar_admin_dep_t *d, bool first)
{
    const ar_target_state_t *s = d->s;
    int64_t rpm, tpm;
    ar_admin__dep_limits(v, deps, d, &rpm, &tpm);
    ar_admin__puts(w, first ? "{\"credential\":" : ",{\"credential\":");
    ar_admin__put_jstr(w, s->cred_name);
    ar_admin__puts(w, ",\"model\":");
    ar_admin__put_jstr(w, s->model_name);
    ar_admin__puts(w, d->is_explicit ? ",\"explicit\":true" : ",\"explicit\":false");
    put_public_names(w, v, deps, d);
    ar_admin__puts(w, ",\"state\":");
    ar_admin__put_jstr(w, ar_breaker_state_name(ar_admin__breaker(v, s)));
    ar_admin__putf(w,
                   ",\"in_flight\":%ld,\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
                   ",\"success_rate\":%.4g,\"latency_ms\":{",
                   atomic_load_explicit(&s->in_flight, memory_order_relaxed),
                   load_u64(&s->requests), load_u64(&s->errors),
                   ar_router_success_rate(s, v->now_ms));
    put_quantile(w, "p50", s, v->now_ms, 0.5);
    ar_admin__puts(w, ",");
    put_quantile(w, "p90", s, v->now_ms, 0.9);
    ar_admin__puts(w, ",");
    put_quantile(w, "p99", s, v->now_ms, 0.99);
    uint64_t ttfb = load_u64(&s->ttfb_ewma_us);
    if (ttfb)
        ar_admin__putf(w, "},\"ttfb_ewma_ms\":%.1f", (double)ttfb / 1000.0);
    else
        ar_admin__puts(w, "},\"ttfb_ewma_ms\":null");
    put_window(w, "rpm", &s->rpm, v->now_ms, rpm);
    put_window(w, "tpm", &s->tpm, v->now_ms, tpm);
    ar_admin__putf(w,
                   ",\"tokens\":{\"prompt\":%" PRIu64 ",\"completion\":%" PRIu64
                   "},\"cost_usd\":%.9g,\"status_counts\":{",
                   load_u64(&s->prompt_tokens), load_u64(&s->completion_tokens),
                   (double)load_u64(&s->cost_nusd) / 1e9);
    bool firsts = true;
    for (int i = 0; i < 500; i++) {
        uint64_t n = load_u64(&s->status[i]);
        if (n == 0)
            continue;
        ar_admin__putf(w, "%s\"%d\":%" PRIu64, firsts ? "" : ",", i + 100, n);
        firsts = false;
    }
    ar_admin__puts(w, "}");
    put_uperr(w, s);
    ar_admin__puts(w, "}");
}

int ar_admin_state_json(const ar_admin_view_t *v, ar_buf_t *out)
{
    ar_admin_w_t w = {out, 0};
    ar_admin_deps_t deps;
    ar_admin__deps_collect(v, &deps);
    bool degraded = ar_admin__degraded(v, &deps);
    ar_admin__putf(&w,
                   "{\"status\":\"%s\",\"uptime_s\":%" PRId64 ",\"in_flight\":%ld,"
                   "\"draining\":%s,\"stats_window_ms\":%" PRId64,
                   degraded ? "degraded" : "ok", v->uptime_s, v->in_flight,
                   v->draining ? "true" : "false", v->cfg->circuit_breaker.stats_window_ms);
    put_credentials(&w, v);
    ar_admin__puts(&w, ",\"deployments\":[");
    for (size_t i = 0; i < deps.cnt; i++)
        put_deployment(&w, v, &deps, &deps.items[i], i == 0);
    ar_admin__puts(&w, "]");
    const ar_target_state_t *u = ar_router_state_unrouted(v->state);
    ar_admin__puts(&w, ",\"unrouted\":{\"status_counts\":{");
    bool first = true;
    for (int i = 0; i < 500; i++) {
        uint64_t n = load_u64(&u->status[i]);
        if (n == 0)
            continue;
        ar_admin__putf(&w, "%s\"%d\":%" PRIu64, first ? "" : ",", i + 100, n);
        first = false;
    }
    ar_admin__puts(&w, "}}}");
    ar_admin__deps_dispose(&deps);
    return w.rc;
}
