/*
 * health.c: GET /health (JSON, SPEC section 8) and GET /vhealth (the same content as one
 * self-contained HTML page: inline CSS, no scripts, no external assets, every value
 * escaped). Both are written straight into the caller's buffer from the router's atomics,
 * without a JSON tree, because load balancers may poll them often.
 */
#include <inttypes.h>
#include <string.h>

#include "admin/admin_int.h"
#include "core/json.h"

static int64_t load_long(const _Atomic long *p)
{
    return (int64_t)atomic_load_explicit(p, memory_order_relaxed);
}

static uint64_t load_u64(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* `{"current":N,"limit":N}` of a 60 s window (limit -1: unlimited). */
static void put_usage(ar_admin_w_t *w, const ar_window_t *win, uint64_t now_ms, int64_t limit)
{
    ar_admin__putf(w, "{\"current\":%" PRId64 ",\"limit\":", ar_window_sum(win, now_ms));
    ar_admin__put_i64(w, limit);
    ar_admin__puts(w, "}");
}

static void put_credentials_json(ar_admin_w_t *w, const ar_admin_view_t *v)
{
    ar_admin__puts(w, "\"credentials\":[");
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
        ar_admin__puts(w, ban != AR_ADMIN_BAN_NONE ? ",\"banned\":true" : ",\"banned\":false");
        ar_admin__puts(w, ",\"ban_until\":");
        ar_admin__put_ban_until(w, ban, until);
        ar_admin__puts(w, ",\"rpm\":");
        put_usage(w, &cs->rpm, v->now_ms, rpm);
        ar_admin__puts(w, ",\"tpm\":");
        put_usage(w, &cs->tpm, v->now_ms, tpm);
        ar_admin__putf(
            w, ",\"in_flight\":%" PRId64 ",\"requests\":%" PRIu64 ",\"errors\":%" PRIu64 "}",
            load_long(&cs->in_flight), load_u64(&cs->requests), load_u64(&cs->errors));
    }
    ar_admin__puts(w, "]");
}

/* One entry of "models": a deployment's public name, credential and state. */
static void put_model_json(ar_admin_w_t *w, const ar_admin_view_t *v, const char *name,
                           const char *cred, const char *upstream, const ar_target_state_t *s,
                           int64_t rpm, int64_t tpm, bool first)
{
    ar_admin__puts(w, first ? "{\"name\":" : ",{\"name\":");
    ar_admin__put_jstr(w, name);
    ar_admin__puts(w, ",\"credential\":");
    ar_admin__put_jstr(w, cred);
    ar_admin__puts(w, ",\"model\":");
    ar_admin__put_jstr(w, upstream);
    ar_admin__puts(w, ",\"state\":");
    ar_admin__put_jstr(w, ar_breaker_state_name(ar_admin__breaker(v, s)));
    ar_admin__puts(w, ",\"rpm\":");
    put_usage(w, &s->rpm, v->now_ms, rpm);
    ar_admin__puts(w, ",\"tpm\":");
    put_usage(w, &s->tpm, v->now_ms, tpm);
    ar_admin__putf(w, ",\"success_rate\":%.4g", ar_router_success_rate(s, v->now_ms));
    double p50 = ar_latency_quantile_ms(&s->latency, v->now_ms, 0.5);
    if (p50 < 0)
        ar_admin__puts(w, ",\"latency_ms_p50\":null}");
    else
        ar_admin__putf(w, ",\"latency_ms_p50\":%.1f}", p50);
}

static void put_models_json(ar_admin_w_t *w, const ar_admin_view_t *v, const ar_admin_deps_t *deps)
{
    ar_admin__puts(w, "\"models\":[");
    bool first = true;
    for (size_t i = 0; i < ar_router_dep_cnt(v->router); i++) {
        const ar_deployment_t *d = ar_router_dep(v->router, i);
        int64_t rpm, tpm;
        ar_router_dep_limits(v->router, d, &rpm, &tpm);
        put_model_json(w, v, d->name, d->cred->name, d->upstream_model, d->dep_state, rpm, tpm,
                       first);
        first = false;
    }
    /* open credentials: the names actually asked for ("*" for any unlisted one) */
    for (size_t i = 0; i < deps->cnt; i++) {
        const ar_admin_dep_t *d = &deps->items[i];
        if (d->is_explicit || !ar_admin__dep_used(d->s))
            continue;
        int64_t rpm, tpm;
        ar_admin__dep_limits(v, deps, d, &rpm, &tpm);
        put_model_json(w, v, d->s->model_name, d->s->cred_name, d->s->model_name, d->s, rpm, tpm,
                       first);
        first = false;
    }
    ar_admin__puts(w, "]");
}

/* The remote /health body is embedded as-is, but only if it is one JSON object: a broken
 * or hostile peer must not be able to break our own document. */
static void put_embedded(ar_admin_w_t *w, const char *json)
{
    ar_span_t s = ar_span_cstr(json);
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\n' || s.ptr[0] == '\r' || s.ptr[0] == '\t'))
        s = ar_span_skip(s, 1);
    if (!s.len || s.ptr[0] != '{' || ar_json_validate(s, NULL, 0) != 0) {
        ar_admin__puts(w, "null");
        return;
    }
    ar_admin__putn(w, s.ptr, s.len);
}

static void put_proxies_json(ar_admin_w_t *w, const ar_admin_view_t *v)
{
    ar_admin__puts(w, "\"proxies\":[");
    for (size_t i = 0; i < v->proxies_cnt; i++) {
        const ar_admin_proxy_t *p = &v->proxies[i];
        ar_admin__puts(w, i ? ",{\"name\":" : "{\"name\":");
        ar_admin__put_jstr(w, p->name);
        ar_admin__puts(w, ",\"url\":");
        ar_admin__put_jstr(w, p->url);
        ar_admin__puts(w, p->reachable ? ",\"reachable\":true" : ",\"reachable\":false");
        ar_admin__putf(w, ",\"status\":%d,\"checked_at\":", p->status);
        if (p->checked_at_ms > 0) {
            char ts[32];
            ar_admin__rfc3339(p->checked_at_ms, ts);
            ar_admin__put_jstr(w, ts);
        } else {
            ar_admin__puts(w, "null");
        }
        ar_admin__puts(w, ",\"error\":");
        ar_admin__put_jstr(w, p->error);
        ar_admin__puts(w, ",\"health\":");
        if (p->health_json)
            put_embedded(w, p->health_json);
        else
            ar_admin__puts(w, "null");
        ar_admin__puts(w, "}");
    }
    ar_admin__puts(w, "]");
}

int ar_admin_health_json(const ar_admin_view_t *v, ar_buf_t *out)
{
    ar_admin_w_t w = {out, 0};
    ar_admin_deps_t deps;
    ar_admin__deps_collect(v, &deps);
    bool degraded = ar_admin__degraded(v, &deps);
    ar_admin__putf(&w,
                   "{\"status\":\"%s\",\"uptime_s\":%" PRId64
                   ",\"connections\":{\"open\":%ld,\"max\":%ld},",
                   degraded ? "degraded" : "ok", v->uptime_s, v->conns_open, v->conns_max);
    put_credentials_json(&w, v);
    ar_admin__puts(&w, ",");
    put_models_json(&w, v, &deps);
    ar_admin__puts(&w, ",");
    put_proxies_json(&w, v);
    const ar_admin_storage_t *st = &v->storage;
    if (!st->type) {
        ar_admin__puts(&w, ",\"storage\":{\"type\":\"none\"}");
    } else {
        uint64_t done =
            st->ledger_applied > st->ledger_replayed ? st->ledger_applied - st->ledger_replayed : 0;
        ar_admin__putf(&w,
                       ",\"storage\":{\"type\":\"%s\",\"keys_cached\":%ld,\"ledger\":{"
                       "\"written\":%" PRIu64 ",\"applied\":%" PRIu64 ",\"pending\":%" PRIu64
                       ",\"replayed\":%" PRIu64 ",\"write_errors\":%" PRIu64
                       ",\"apply_errors\":%" PRIu64 "}}",
                       st->type, st->keys_cached, st->ledger_written, done,
                       st->ledger_written > done ? st->ledger_written - done : 0,
                       st->ledger_replayed, st->ledger_write_errors, st->ledger_apply_errors);
    }
    const ar_admin_litellm_t *ll = &v->litellm;
    if (ll->configured)
        /* down is not degraded: cached keys keep working, rows wait in the queue */
        ar_admin__putf(&w,
                       ",\"litellm_db\":{\"up\":%s,\"connections\":%d,\"threads\":%d,"
                       "\"max_conns\":%d,\"keys_cached\":%ld,\"lookups\":%" PRIu64
                       ",\"lookup_errors\":%" PRIu64 ",\"spend_logs\":{\"queued\":%ld,"
                       "\"queue_size\":%" PRId64 ",\"written\":%" PRIu64 ",\"failed\":%" PRIu64
                       ",\"dropped\":%" PRIu64 "}}",
                       ll->up ? "true" : "false", ll->conns, ll->threads, ll->max_conns,
                       ll->keys_cached, ll->lookups, ll->lookup_errors, ll->queued, ll->queue_size,
                       ll->logged, ll->log_errors, ll->dropped);
    const ar_redis_stats_t *rs = &v->redis;
    if (!v->redis_configured)
        ar_admin__puts(&w, ",\"redis\":{\"configured\":false}}");
    else
        /* down is degraded (ar_admin__degraded): limits fall back to this instance's share */
        ar_admin__putf(&w,
                       ",\"redis\":{\"configured\":true,\"up\":%s,\"connections\":%ld,"
                       "\"connections_ready\":%ld,\"checks\":%" PRIu64 ",\"denied\":%" PRIu64
                       ",\"fallbacks\":%" PRIu64 ",\"timeouts\":%" PRIu64
                       ",\"disconnects\":%" PRIu64 ",\"instances\":%lld}}",
                       rs->up ? "true" : "false", rs->conns, rs->conns_ready, rs->checks,
                       rs->denied, rs->unavailable, rs->timeouts, rs->disconnects,
                       (long long)v->cfg->storage.redis_instances);
    ar_admin__deps_dispose(&deps);
    return w.rc;
}

/* ---- /vhealth ---- */

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta http-equiv=\"refresh\" content=\"10\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>airouter health</title><style>"
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;background:#fafafa}"
    "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}"
    "table{border-collapse:collapse;background:#fff;min-width:40em}"
    "th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}"
    "th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:8px;font-weight:600}"
    ".ok{background:#d8f5d8;color:#145214}.warn{background:#fff0c2;color:#6b4e00}"
    ".bad{background:#fbd5d5;color:#7a1010}.muted{color:#888}"
    "</style></head><body>\n";

/* The CSS class of a breaker state: green, amber while testing, red when refusing. */
static const char *breaker_class(ar_breaker_state_t s)
{
    switch (s) {
    case AR_BREAKER_CLOSED: return "ok";
    case AR_BREAKER_HALF_OPEN: return "warn";
    case AR_BREAKER_OPEN:
    case AR_BREAKER_UNAVAILABLE: return "bad";
    }
    return "bad";
}

static void put_usage_cell(ar_admin_w_t *w, const ar_window_t *win, uint64_t now_ms, int64_t limit)
{
    ar_admin__putf(w, "<td class=\"n\">%" PRId64 " / ", ar_window_sum(win, now_ms));
    if (limit < 0)
        ar_admin__puts(w, "&infin;</td>");
    else
        ar_admin__putf(w, "%" PRId64 "</td>", limit);
}

static void put_credentials_html(ar_admin_w_t *w, const ar_admin_view_t *v)
{
    ar_admin__puts(w, "<h2>Credentials</h2>\n<table><tr><th>name</th><th>type</th><th>ban</th>"
                      "<th>rpm</th><th>tpm</th><th>in flight</th><th>requests</th>"
                      "<th>errors</th></tr>\n");
    for (size_t i = 0; i < v->cfg->credentials_cnt; i++) {
        const ar_cred_conf_t *c = &v->cfg->credentials[i];
        const ar_target_state_t *cs = ar_router_cred_state(v->router, i);
        int64_t rpm, tpm, until;
        ar_router_cred_limits(v->router, i, &rpm, &tpm);
        ar_admin_ban_t ban = ar_admin__ban(v, cs, &until);
        ar_admin__puts(w, "<tr><td>");
        ar_admin__put_html(w, c->name);
        ar_admin__puts(w, "</td><td>");
        ar_admin__put_html(w, c->type_name);
        ar_admin__puts(w, "</td><td>");
        if (ban == AR_ADMIN_BAN_NONE) {
            ar_admin__puts(w, "<span class=\"badge ok\">active</span>");
        } else if (ban == AR_ADMIN_BAN_PERMANENT) {
            ar_admin__puts(w, "<span class=\"badge bad\">banned (permanent)</span>");
        } else {
            char ts[32];
            ar_admin__rfc3339(until, ts);
            ar_admin__putf(w, "<span class=\"badge bad\">banned until %s</span>", ts);
        }
        ar_admin__puts(w, "</td>");
        put_usage_cell(w, &cs->rpm, v->now_ms, rpm);
        put_usage_cell(w, &cs->tpm, v->now_ms, tpm);
        ar_admin__putf(w,
                       "<td class=\"n\">%" PRId64 "</td><td class=\"n\">%" PRIu64
                       "</td><td class=\"n\">%" PRIu64 "</td></tr>\n",
                       load_long(&cs->in_flight), load_u64(&cs->requests), load_u64(&cs->errors));
    }
    ar_admin__puts(w, "</table>\n");
}

static void put_model_row(ar_admin_w_t *w, const ar_admin_view_t *v, const char *name,
                          const char *cred, const char *upstream, const ar_target_state_t *s,
                          int64_t rpm, int64_t tpm)
{
    ar_breaker_state_t st = ar_admin__breaker(v, s);
    ar_admin__puts(w, "<tr><td>");
    ar_admin__put_html(w, name);
    ar_admin__puts(w, "</td><td>");
    ar_admin__put_html(w, cred);
    ar_admin__puts(w, "</td><td>");
    ar_admin__put_html(w, upstream);
    ar_admin__putf(w, "</td><td><span class=\"badge %s\">%s</span></td>", breaker_class(st),
                   ar_breaker_state_name(st));
    put_usage_cell(w, &s->rpm, v->now_ms, rpm);
    put_usage_cell(w, &s->tpm, v->now_ms, tpm);
    ar_admin__putf(w, "<td class=\"n\">%.1f%%</td>", 100 * ar_router_success_rate(s, v->now_ms));
    double p50 = ar_latency_quantile_ms(&s->latency, v->now_ms, 0.5);
    if (p50 < 0)
        ar_admin__puts(w, "<td class=\"n muted\">&ndash;</td></tr>\n");
    else
        ar_admin__putf(w, "<td class=\"n\">%.1f ms</td></tr>\n", p50);
}

static void put_models_html(ar_admin_w_t *w, const ar_admin_view_t *v, const ar_admin_deps_t *deps)
{
    ar_admin__puts(w, "<h2>Models</h2>\n<table><tr><th>name</th><th>credential</th>"
                      "<th>upstream model</th><th>breaker</th><th>rpm</th><th>tpm</th>"
                      "<th>success</th><th>latency p50</th></tr>\n");
    for (size_t i = 0; i < ar_router_dep_cnt(v->router); i++) {
        const ar_deployment_t *d = ar_router_dep(v->router, i);
        int64_t rpm, tpm;
        ar_router_dep_limits(v->router, d, &rpm, &tpm);
        put_model_row(w, v, d->name, d->cred->name, d->upstream_model, d->dep_state, rpm, tpm);
    }
    for (size_t i = 0; i < deps->cnt; i++) {
        const ar_admin_dep_t *d = &deps->items[i];
        if (d->is_explicit || !ar_admin__dep_used(d->s))
            continue;
        int64_t rpm, tpm;
        ar_admin__dep_limits(v, deps, d, &rpm, &tpm);
        put_model_row(w, v, d->s->model_name, d->s->cred_name, d->s->model_name, d->s, rpm, tpm);
    }
    ar_admin__puts(w, "</table>\n");
}

static void put_proxies_html(ar_admin_w_t *w, const ar_admin_view_t *v)
{
    if (v->proxies_cnt == 0)
        return;
    ar_admin__puts(w, "<h2>Remote routers</h2>\n<table><tr><th>name</th><th>url</th>"
                      "<th>reachable</th><th>status</th><th>checked at</th><th>error</th>"
                      "</tr>\n");
    for (size_t i = 0; i < v->proxies_cnt; i++) {
        const ar_admin_proxy_t *p = &v->proxies[i];
        ar_admin__puts(w, "<tr><td>");
        ar_admin__put_html(w, p->name);
        ar_admin__puts(w, "</td><td>");
        ar_admin__put_html(w, p->url);
        ar_admin__puts(w, p->reachable ? "</td><td><span class=\"badge ok\">yes</span>"
                                       : "</td><td><span class=\"badge bad\">no</span>");
        ar_admin__putf(w, "</td><td class=\"n\">%d</td><td>", p->status);
        if (p->checked_at_ms > 0) {
            char ts[32];
            ar_admin__rfc3339(p->checked_at_ms, ts);
            ar_admin__puts(w, ts);
        } else {
            ar_admin__puts(w, "<span class=\"muted\">never</span>");
        }
        ar_admin__puts(w, "</td><td>");
        ar_admin__put_html(w, p->error);
        ar_admin__puts(w, "</td></tr>\n");
    }
    ar_admin__puts(w, "</table>\n");
}

int ar_admin_health_html(const ar_admin_view_t *v, ar_buf_t *out)
{
    ar_admin_w_t w = {out, 0};
    ar_admin_deps_t deps;
    ar_admin__deps_collect(v, &deps);
    bool degraded = ar_admin__degraded(v, &deps);
    char now[32];
    ar_admin__rfc3339(v->wall_ms, now);
    ar_admin__puts(&w, page_head);
    ar_admin__putf(&w,
                   "<h1>airouter <span class=\"badge %s\">%s</span></h1>\n"
                   "<p>uptime %" PRId64 " s &middot; %ld requests in flight &middot; %ld",
                   degraded ? "bad" : "ok", degraded ? "degraded" : "ok", v->uptime_s, v->in_flight,
                   v->conns_open);
    if (v->conns_max >= 0)
        ar_admin__putf(&w, " of %ld", v->conns_max);
    ar_admin__putf(&w, " client connections &middot; as of %s%s</p>\n", now,
                   v->draining ? " &middot; <b>shutting down</b>" : "");
    put_credentials_html(&w, v);
    put_models_html(&w, v, &deps);
    put_proxies_html(&w, v);
    ar_admin__puts(&w, "<h2>Storage</h2>\n<p>none &middot; Redis: not configured</p>\n"
                       "<p class=\"muted\">JSON: <a href=\"health\">/health</a> &middot; "
                       "<a href=\"metrics\">/metrics</a> &middot; "
                       "<a href=\"openapi.json\">/openapi.json</a></p>\n</body></html>\n");
    ar_admin__deps_dispose(&deps);
    return w.rc;
}
