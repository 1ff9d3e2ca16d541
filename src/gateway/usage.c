/*
 * usage.c: what a caller may read about its own key (SPEC section 6): GET /usage (tokens,
 * requests and cost today, this month and in total), /limits (the limits in force and what
 * is left of them), /tariff (the plan and how much of it is used) and /rate-limit (the
 * key's RPM window). Answered from the key cache and the live counters, never the store:
 * the numbers include requests that finished a moment ago.
 */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/mem.h"
#include "gateway/gateway_int.h"

/* The caller's key: ctx->key (auth.c set it; the master key has one of its own). */
static ar_tkey_t *caller(ar_http_request_t *req, const ar_tkey_conf_t **conf)
{
    ar_tkey_t *k = ((ar_gw_ctx_t *)req->data)->key;
    if (!k) {
        ar_gw_error(req, 503, "service_unavailable_error", "no_store",
                    "Usage is not tracked: the store is not open");
        return NULL;
    }
    *conf = atomic_load_explicit(&k->conf, memory_order_acquire);
    return k;
}

static void answer(ar_http_request_t *req, const ar_runtime_t *rt, json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    ar_http_header_t hs[8];
    size_t n = ar_gw_common_headers(req, rt, hs, 6);
    hs[n++] = (ar_http_header_t){AR_LIT("Cache-Control"), AR_LIT("no-store")};
    if (!s) {
        ar_gw_error(req, 500, "api_error", "out_of_memory", "Out of memory");
        return;
    }
    ar_http_respond_json(req, 200, hs, n, ar_span_cstr(s));
    free(s);
}

static json_t *limit_or_null(int64_t v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static json_t *key_json(const ar_tkey_conf_t *c)
{
    return json_pack("{s:I,s:s,s:s}", "id", (json_int_t)c->id, "name", c->name, "masked",
                     c->masked);
}

static json_t *period_json(const ar_usage_totals_t *u, int64_t limit)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:f,s:o}", "requests", (json_int_t)u->requests,
                     "prompt_tokens", (json_int_t)u->prompt_tokens, "completion_tokens",
                     (json_int_t)u->completion_tokens, "total_tokens",
                     (json_int_t)(u->prompt_tokens + u->completion_tokens), "cost_usd", u->cost_usd,
                     "limit_tokens", limit_or_null(limit));
}

static json_t *iso_time(int64_t wall_ms)
{
    char buf[32];
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

void ar_gw_key_usage(ar_http_request_t *req, ar_runtime_t *rt)
{
    const ar_tkey_conf_t *c;
    ar_tkey_t *k = caller(req, &c);
    if (!k)
        return;
    ar_usage_totals_t day, month, total;
    ar_quota_read(&k->state->quota, ar_wall_ms(), &day, &month, &total, NULL);
    ar_quota_limits_t lim = ar_tkey_limits(c);
    answer(req, rt,
           json_pack("{s:o,s:o,s:o,s:o}", "key", key_json(c), "day",
                     period_json(&day, lim.day_tokens), "month",
                     period_json(&month, lim.month_tokens), "total",
                     period_json(&total, lim.total_tokens)));
}

/* What is left under a limit, reservations of running requests deducted; null: none. */
static json_t *left(int64_t limit, const ar_usage_totals_t *u, int64_t reserved)
{
    if (limit < 0)
        return json_null();
    int64_t l = limit - u->prompt_tokens - u->completion_tokens - reserved;
    return json_integer(l > 0 ? l : 0);
}

void ar_gw_key_limits(ar_http_request_t *req, ar_runtime_t *rt)
{
    const ar_tkey_conf_t *c;
    ar_tkey_t *k = caller(req, &c);
    if (!k)
        return;
    int64_t now = ar_wall_ms();
    ar_usage_totals_t day, month, total;
    int64_t reserved;
    ar_quota_read(&k->state->quota, now, &day, &month, &total, &reserved);
    ar_quota_limits_t lim = ar_tkey_limits(c);
    json_t *models = json_array();
    for (size_t i = 0; i < c->models_cnt; i++)
        json_array_append_new(models, json_string(c->models[i]));
    json_t *budget_left = json_null();
    if (lim.budget_usd >= 0) {
        double b = lim.budget_usd - total.cost_usd;
        budget_left = json_real(b > 0 ? b : 0);
    }
    json_t *limits = json_pack(
        "{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "rpm", limit_or_null(c->rpm), "tpm",
        limit_or_null(c->tpm), "daily_tokens", limit_or_null(lim.day_tokens), "monthly_tokens",
        limit_or_null(lim.month_tokens), "limit_tokens", limit_or_null(lim.total_tokens),
        "max_budget_usd", lim.budget_usd >= 0 ? json_real(lim.budget_usd) : json_null(), "models",
        models, "expires_at", c->expires_ms ? iso_time(c->expires_ms) : json_null());
    json_t *remaining =
        json_pack("{s:o,s:o,s:o,s:o,s:I}", "day_tokens", left(lim.day_tokens, &day, reserved),
                  "month_tokens", left(lim.month_tokens, &month, reserved), "total_tokens",
                  left(lim.total_tokens, &total, reserved), "budget_usd", budget_left,
                  "reserved_tokens", (json_int_t)reserved);
    json_t *resets = json_pack("{s:o,s:o}", "day", iso_time(ar_quota_next_day_ms(now)), "month",
                               iso_time(ar_quota_next_month_ms(now)));
    answer(req, rt,
           json_pack("{s:o,s:o,s:o,s:o}", "key", key_json(c), "limits", limits, "remaining",
                     remaining, "resets", resets));
}

void ar_gw_key_tariff(ar_http_request_t *req, ar_runtime_t *rt)
{
    const ar_tkey_conf_t *c;
    ar_tkey_t *k = caller(req, &c);
    if (!k)
        return;
    ar_usage_totals_t total;
    ar_quota_read(&k->state->quota, ar_wall_ms(), NULL, NULL, &total, NULL);
    int64_t used = total.prompt_tokens + total.completion_tokens;
    int64_t max = ar_tkey_limits(c).total_tokens;
    json_t *remaining = json_null(), *pct = json_null();
    if (max >= 0) {
        remaining = json_integer(max > used ? max - used : 0);
        pct = json_real(max > 0 ? (double)used * 100.0 / (double)max : 100.0);
    }
    json_t *tariff = json_pack(
        "{s:o,s:o,s:o,s:s}", "max_tokens", limit_or_null(max), "name",
        c->plan_name ? json_string(c->plan_name) : json_null(), "description",
        c->plan_description ? json_string(c->plan_description) : json_null(), "api_key", c->masked);
    json_t *usage = json_pack("{s:I,s:o,s:o}", "used_tokens", (json_int_t)used, "remaining_tokens",
                              remaining, "usage_percentage", pct);
    answer(req, rt, json_pack("{s:o,s:o}", "tariff", tariff, "usage", usage));
}

void ar_gw_key_rate_limit(ar_http_request_t *req, ar_runtime_t *rt)
{
    const ar_tkey_conf_t *c;
    ar_tkey_t *k = caller(req, &c);
    if (!k)
        return;
    int64_t count = ar_window_sum(&k->state->rpm, ar_now_ms());
    json_t *remaining = json_null();
    if (c->rpm >= 0)
        remaining = json_integer(c->rpm > count ? c->rpm - count : 0);
    answer(req, rt,
           json_pack("{s:s,s:o,s:i,s:I,s:o,s:s}", "api_key", c->masked, "limit",
                     limit_or_null(c->rpm), "window_seconds", 60, "current_count",
                     (json_int_t)count, "remaining", remaining, "storage", "memory"));
}
