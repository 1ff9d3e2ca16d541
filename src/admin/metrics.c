/*
 * metrics.c: GET /metrics in the Prometheus text format 0.0.4 (SPEC section 8). Every
 * family is written once, with # HELP and # TYPE, all its series together. Label values
 * come only from configured names (credentials, deployments' model names, "*" for the
 * unlisted names of open credentials, the upstream's listed names), never from a client,
 * and are escaped as the format requires. Histogram buckets are stored per bucket; they
 * are accumulated here, and _count is their total, so +Inf always equals _count.
 *
 * Breaker states are numbered as ar_breaker_state_t: 0 CLOSED, 1 OPEN, 2 HALF_OPEN,
 * 3 PERMANENTLY_UNAVAILABLE. Remote proxies are not exported here (SPEC section 5).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin_int.h"

static uint64_t load_u64(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

static void family(ar_admin_w_t *w, const char *name, const char *type, const char *help)
{
    ar_admin__putf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value between quotes: backslash, double quote and line feed are escaped. */
static void put_lval(ar_admin_w_t *w, const char *s)
{
    ar_admin__puts(w, "\"");
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *esc = NULL;
        switch (*p) {
        case '\\': esc = "\\\\"; break;
        case '"': esc = "\\\""; break;
        case '\n': esc = "\\n"; break;
        default: continue;
        }
        ar_admin__putn(w, run, (size_t)(p - run));
        ar_admin__puts(w, esc);
        run = p + 1;
    }
    ar_admin__puts(w, run);
    ar_admin__puts(w, "\"");
}

/* `name{model="m",credential="c"` (the brace stays open for more labels). */
static void series_mc(ar_admin_w_t *w, const char *name, const ar_target_state_t *s)
{
    ar_admin__puts(w, name);
    ar_admin__puts(w, "{model=");
    put_lval(w, s->model_name);
    ar_admin__puts(w, ",credential=");
    put_lval(w, s->cred_name);
}

/* `name{credential="c"` (open). */
static void series_c(ar_admin_w_t *w, const char *name, const char *cred)
{
    ar_admin__puts(w, name);
    ar_admin__puts(w, "{credential=");
    put_lval(w, cred);
}

static void histogram(ar_admin_w_t *w, const char *name, const ar_target_state_t *s,
                      const ar_histo_t *h)
{
    char line[128];
    uint64_t cum = 0;
    for (int i = 0; i <= AR_HISTO_BUCKETS; i++) {
        cum += load_u64(&h->buckets[i]);
        snprintf(line, sizeof(line), "%s_bucket", name);
        series_mc(w, line, s);
        if (i < AR_HISTO_BUCKETS)
            ar_admin__putf(w, ",le=\"%g\"} %" PRIu64 "\n", ar_histo_bounds_s[i], cum);
        else
            ar_admin__putf(w, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
    }
    snprintf(line, sizeof(line), "%s_sum", name);
    series_mc(w, line, s);
    ar_admin__putf(w, "} %.6f\n", (double)load_u64(&h->sum_us) / 1e6);
    snprintf(line, sizeof(line), "%s_count", name);
    series_mc(w, line, s);
    ar_admin__putf(w, "} %" PRIu64 "\n", cum);
}

static void put_requests(ar_admin_w_t *w, const ar_target_state_t *s)
{
    for (int i = 0; i < 500; i++) {
        uint64_t n = load_u64(&s->status[i]);
        if (n == 0)
            continue;
        series_mc(w, "airouter_requests_total", s);
        ar_admin__putf(w, ",status=\"%d\"} %" PRIu64 "\n", i + 100, n);
    }
}

static void deployment_families(ar_admin_w_t *w, const ar_admin_view_t *v,
                                const ar_admin_deps_t *deps)
{
    const ar_target_state_t *unrouted = ar_router_state_unrouted(v->state);

    family(w, "airouter_requests_total", "counter",
           "Client requests by final status, per deployment that answered (model and "
           "credential empty: the request reached no deployment).");
    for (size_t i = 0; i < deps->cnt; i++)
        put_requests(w, deps->items[i].s);
    put_requests(w, unrouted);

    family(w, "airouter_request_duration_seconds", "histogram",
           "Whole client request duration, per deployment that answered.");
    for (size_t i = 0; i < deps->cnt; i++)
        histogram(w, "airouter_request_duration_seconds", deps->items[i].s,
                  &deps->items[i].s->duration);
    histogram(w, "airouter_request_duration_seconds", unrouted, &unrouted->duration);

    family(w, "airouter_time_to_first_byte_seconds", "histogram",
           "Time from sending an attempt upstream to its first answer byte.");
    for (size_t i = 0; i < deps->cnt; i++)
        histogram(w, "airouter_time_to_first_byte_seconds", deps->items[i].s,
                  &deps->items[i].s->ttfb);

    family(w, "airouter_tokens_total", "counter", "Tokens reported by upstreams.");
    for (size_t i = 0; i < deps->cnt; i++) {
        const ar_target_state_t *s = deps->items[i].s;
        series_mc(w, "airouter_tokens_total", s);
        ar_admin__putf(w, ",kind=\"prompt\"} %" PRIu64 "\n", load_u64(&s->prompt_tokens));
        series_mc(w, "airouter_tokens_total", s);
        ar_admin__putf(w, ",kind=\"completion\"} %" PRIu64 "\n", load_u64(&s->completion_tokens));
    }

    family(w, "airouter_cost_usd_total", "counter", "Cost of the tokens, in US dollars.");
    for (size_t i = 0; i < deps->cnt; i++) {
        const ar_target_state_t *s = deps->items[i].s;
        series_mc(w, "airouter_cost_usd_total", s);
        ar_admin__putf(w, "} %.9f\n", (double)load_u64(&s->cost_nusd) / 1e9);
    }

    family(w, "airouter_breaker_state", "gauge",
           "Circuit breaker: 0 closed, 1 open, 2 half_open, 3 permanently_unavailable.");
    for (size_t i = 0; i < deps->cnt; i++) {
        series_mc(w, "airouter_breaker_state", deps->items[i].s);
        ar_admin__putf(w, "} %d\n", (int)ar_admin__breaker(v, deps->items[i].s));
    }

    family(w, "airouter_deployment_in_flight", "gauge", "Attempts running on a deployment.");
    for (size_t i = 0; i < deps->cnt; i++) {
        const ar_target_state_t *s = deps->items[i].s;
        series_mc(w, "airouter_deployment_in_flight", s);
        ar_admin__putf(w, "} %ld\n", atomic_load_explicit(&s->in_flight, memory_order_relaxed));
    }
}

/* One gauge per credential, valued by fn. */
static void cred_gauge(ar_admin_w_t *w, const ar_admin_view_t *v, const char *name,
                       const char *help, int64_t (*fn)(const ar_admin_view_t *v, size_t i))
{
    family(w, name, "gauge", help);
    for (size_t i = 0; i < v->cfg->credentials_cnt; i++) {
        series_c(w, name, v->cfg->credentials[i].name);
        ar_admin__putf(w, "} %" PRId64 "\n", fn(v, i));
    }
}

static int64_t rpm_current(const ar_admin_view_t *v, size_t i)
{
    return ar_window_sum(&ar_router_cred_state(v->router, i)->rpm, v->now_ms);
}

static int64_t tpm_current(const ar_admin_view_t *v, size_t i)
{
    return ar_window_sum(&ar_router_cred_state(v->router, i)->tpm, v->now_ms);
}

static int64_t rpm_limit(const ar_admin_view_t *v, size_t i)
{
    int64_t rpm, tpm;
    ar_router_cred_limits(v->router, i, &rpm, &tpm);
    return rpm < 0 ? -1 : rpm;
}

static int64_t tpm_limit(const ar_admin_view_t *v, size_t i)
{
    int64_t rpm, tpm;
    ar_router_cred_limits(v->router, i, &rpm, &tpm);
    return tpm < 0 ? -1 : tpm;
}

static int64_t banned(const ar_admin_view_t *v, size_t i)
{
    return ar_ban_active(&ar_router_cred_state(v->router, i)->ban, v->now_ms) ? 1 : 0;
}

static int64_t cred_in_flight(const ar_admin_view_t *v, size_t i)
{
    return atomic_load_explicit(&ar_router_cred_state(v->router, i)->in_flight,
                                memory_order_relaxed);
}

static void credential_families(ar_admin_w_t *w, const ar_admin_view_t *v)
{
    cred_gauge(w, v, "airouter_credential_rpm_current", "Requests sent in the last 60 s.",
               rpm_current);
    cred_gauge(w, v, "airouter_credential_rpm_limit", "RPM limit (-1: unlimited).", rpm_limit);
    cred_gauge(w, v, "airouter_credential_tpm_current", "Tokens charged in the last 60 s.",
               tpm_current);
    cred_gauge(w, v, "airouter_credential_tpm_limit", "TPM limit (-1: unlimited).", tpm_limit);
    cred_gauge(w, v, "airouter_credential_banned", "1 while fail2ban holds the credential.",
               banned);
    cred_gauge(w, v, "airouter_credential_in_flight", "Attempts running on the credential.",
               cred_in_flight);

    family(w, "airouter_upstream_errors_total", "counter",
           "Failed upstream attempts by kind (timeout, connect, reset, dns, tls, protocol, "
           "http_429, http_4xx, http_5xx).");
    for (size_t i = 0; i < v->cfg->credentials_cnt; i++) {
        const ar_target_state_t *cs = ar_router_cred_state(v->router, i);
        for (int k = 0; k < AR_UPERR_KINDS; k++) {
            series_c(w, "airouter_upstream_errors_total", v->cfg->credentials[i].name);
            ar_admin__putf(w, ",kind=\"%s\"} %" PRIu64 "\n", ar_uperr_kind_name(k),
                           load_u64(&cs->uperr[k]));
        }
    }
}

int ar_admin_metrics(const ar_admin_view_t *v, ar_buf_t *out)
{
    ar_admin_w_t w = {out, 0};
    ar_admin_deps_t deps;
    ar_admin__deps_collect(v, &deps);
    deployment_families(&w, v, &deps);
    credential_families(&w, v);
    family(&w, "airouter_in_flight", "gauge", "Client requests being served.");
    ar_admin__putf(&w, "airouter_in_flight %ld\n", v->in_flight);
    family(&w, "airouter_client_connections", "gauge", "Client connections open.");
    ar_admin__putf(&w, "airouter_client_connections %ld\n", v->conns_open);
    family(&w, "airouter_client_connections_max", "gauge",
           "server.max_connections in force (-1: unlimited).");
    ar_admin__putf(&w, "airouter_client_connections_max %ld\n", v->conns_max);
    family(&w, "airouter_uptime_seconds", "gauge", "Seconds since the server started.");
    ar_admin__putf(&w, "airouter_uptime_seconds %" PRId64 "\n", v->uptime_s);
    family(&w, "airouter_draining", "gauge", "1 while shutting down.");
    ar_admin__putf(&w, "airouter_draining %d\n", v->draining ? 1 : 0);
    family(&w, "airouter_log_lines_dropped_total", "counter",
           "Log lines dropped because the log writer fell behind.");
    ar_admin__putf(&w, "airouter_log_lines_dropped_total %" PRIu64 "\n", v->log_dropped);
    const ar_admin_storage_t *st = &v->storage;
    if (st->type) {
        family(&w, "airouter_virtual_keys_cached", "gauge",
               "Virtual keys the server has read from the store.");
        ar_admin__putf(&w, "airouter_virtual_keys_cached %ld\n", st->keys_cached);
        family(&w, "airouter_ledger_records_total", "counter",
               "Spend records: written to the journal, applied to the database (replayed "
               "ones included).");
        ar_admin__putf(&w, "airouter_ledger_records_total{state=\"written\"} %" PRIu64 "\n",
                       st->ledger_written);
        ar_admin__putf(&w, "airouter_ledger_records_total{state=\"applied\"} %" PRIu64 "\n",
                       st->ledger_applied);
        family(&w, "airouter_ledger_errors_total", "counter",
               "Spend records the journal could not write, batches the database refused.");
        ar_admin__putf(&w, "airouter_ledger_errors_total{kind=\"write\"} %" PRIu64 "\n",
                       st->ledger_write_errors);
        ar_admin__putf(&w, "airouter_ledger_errors_total{kind=\"apply\"} %" PRIu64 "\n",
                       st->ledger_apply_errors);
    }
    if (v->redis_configured) {
        const ar_redis_stats_t *rs = &v->redis;
        family(&w, "airouter_redis_up", "gauge",
               "1 while Redis holds the shared limits (a worker's connection is ready).");
        ar_admin__putf(&w, "airouter_redis_up %d\n", rs->up ? 1 : 0);
        family(&w, "airouter_redis_checks_total", "counter",
               "Shared window checks: answered by Redis (allowed, denied), or fallen back to "
               "this instance's share (fallback).");
        ar_admin__putf(&w, "airouter_redis_checks_total{result=\"allowed\"} %" PRIu64 "\n",
                       rs->checks - rs->denied);
        ar_admin__putf(&w, "airouter_redis_checks_total{result=\"denied\"} %" PRIu64 "\n",
                       rs->denied);
        ar_admin__putf(&w, "airouter_redis_checks_total{result=\"fallback\"} %" PRIu64 "\n",
                       rs->unavailable);
        family(&w, "airouter_redis_disconnects_total", "counter",
               "Redis connections lost or dropped (no answer within 50 ms).");
        ar_admin__putf(&w, "airouter_redis_disconnects_total %" PRIu64 "\n", rs->disconnects);
    }
    if (v->litellm.configured) {
        const ar_admin_litellm_t *ll = &v->litellm;
        family(&w, "airouter_litellm_db_up", "gauge",
               "1 while LiteLLM's database answered the last contact (litellm_db).");
        ar_admin__putf(&w, "airouter_litellm_db_up %d\n", ll->up ? 1 : 0);
        family(&w, "airouter_litellm_db_connections", "gauge",
               "Connections open to LiteLLM's database.");
        ar_admin__putf(&w, "airouter_litellm_db_connections %d\n", ll->conns);
        family(&w, "airouter_litellm_key_lookups_total", "counter",
               "LiteLLM keys looked up in LiteLLM_VerificationToken (ok, error: no answer).");
        ar_admin__putf(&w, "airouter_litellm_key_lookups_total{result=\"ok\"} %" PRIu64 "\n",
                       ll->lookups - ll->lookup_errors);
        ar_admin__putf(&w, "airouter_litellm_key_lookups_total{result=\"error\"} %" PRIu64 "\n",
                       ll->lookup_errors);
        family(&w, "airouter_litellm_spend_rows_total", "counter",
               "LiteLLM_SpendLogs rows: written, failed (given up after the retries), dropped "
               "(the queue was full).");
        ar_admin__putf(&w, "airouter_litellm_spend_rows_total{result=\"written\"} %" PRIu64 "\n",
                       ll->logged);
        ar_admin__putf(&w, "airouter_litellm_spend_rows_total{result=\"failed\"} %" PRIu64 "\n",
                       ll->log_errors);
        ar_admin__putf(&w, "airouter_litellm_spend_rows_total{result=\"dropped\"} %" PRIu64 "\n",
                       ll->dropped);
        family(&w, "airouter_litellm_spend_queue", "gauge", "LiteLLM spend rows waiting.");
        ar_admin__putf(&w, "airouter_litellm_spend_queue %ld\n", ll->queued);
    }
    ar_admin__deps_dispose(&deps);
    return w.rc;
}
