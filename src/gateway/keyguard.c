/*
 * keyguard.c: what a virtual key may do with an LLM request (SPEC section 6): the models
 * it may use (403 permission_error), its own RPM and TPM (429 limit_type "key"), and its
 * token and budget quotas (429 limit_type "quota" until the period resets), which reserve
 * the request's worst case until it settles with the real usage. The master key has none
 * of these limits.
 *
 * With storage.redis_url the key's RPM and TPM windows are shared by every instance: the
 * local windows take the whole limits and Redis decides next (ar_gw_key_windows_shared, a stage of admission.c); without an
 * answer from Redis, this instance's share (limit / storage.redis_instances) decides
 * instead, as for credentials. An RPM admission the request never uses (no upstream
 * attempt) is given back; the TPM estimate is corrected to the billed tokens at the end.
 * The key's token quotas and budget are shared too (ar_gw_key_quota_shared): the local
 * reservation, against the fleet's usage as last heard, filters first, then Redis reserves
 * in the fleet's counters; cut off from Redis, this instance reserves within its share of
 * what was left (ar_quota_share_limits).
 */
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "core/window.h"
#include "gateway/gateway_int.h"

static int forbid_model(ar_gw_req_t *g, ar_span_t name)
{
    char *msg = ar_pool_printf(g->http->pool, "This key may not use the model '%.*s'",
                               (int)(name.len > 200 ? 200 : name.len), name.ptr);
    ar_gw_error(g->http, 403, "permission_error", "model_not_allowed", msg);
    return AR_ELIMIT;
}

/* The worker's Redis connection when the key has an RPM or TPM limit to share and Redis
 * can be asked. */
static ar_redis_conn_t *key_conn(const ar_gw_req_t *g, int64_t rpm, int64_t tpm)
{
    return (rpm >= 0 || tpm >= 0) && ar_redis_conn_ready(g->gw->redis) ? g->gw->redis : NULL;
}

/* Answers 429 "quota" for the limit that refused. */
static void quota_refuse(ar_gw_req_t *g, ar_quota_verdict_t v)
{
    const ar_quota_limits_t *lim = &g->quota_lim;
    int64_t wall = ar_wall_ms();
    /* when the quota has room again: the next day or month for those limits, never for a
     * lifetime limit or the budget (Retry-After then says a day: a client must not spin) */
    int64_t reset = ar_quota_next_day_ms(wall);
    if (v == AR_QUOTA_TOKENS && lim->day_tokens < 0 && lim->month_tokens >= 0)
        reset = ar_quota_next_month_ms(wall);
    ar_gw_refuse_limit(g->http, g->rt, "quota", reset - wall,
                       v == AR_QUOTA_BUDGET ? "Budget exceeded for this key"
                                            : "Token quota exceeded for this key");
}

int ar_gw_key_admit(ar_gw_req_t *g, const ar_span_t *names, size_t names_cnt)
{
    if (g->ctx.ll)
        return ar_gw_litellm_admit(g, names, names_cnt);
    ar_tkey_t *k = g->ctx.key;
    if (!k)
        return 0;
    const ar_tkey_conf_t *conf = atomic_load_explicit(&k->conf, memory_order_acquire);
    if (conf->models_cnt) {
        if (names_cnt == 0)
            return forbid_model(g, AR_LIT("auto"));
        for (size_t i = 0; i < names_cnt; i++) {
            if (!ar_tkey_allows(conf, names[i].ptr, names[i].len))
                return forbid_model(g, names[i]);
        }
    }
    ar_tkey_state_t *st = k->state;
    uint64_t now = ar_now_ms();
    int64_t retry_ms = 0;
    g->key_member[0] = '\0';
    g->key_rpm_limit = conf->rpm;
    g->key_tpm_limit = conf->tpm;
    int64_t share = key_conn(g, conf->rpm, conf->tpm) ? 1 : g->rt->cfg->storage.redis_instances;
    if (!ar_window_try_add(&st->rpm, now, 1, ar_limit_share(conf->rpm, share), &retry_ms)) {
        ar_gw_refuse_limit(g->http, g->rt, "key", retry_ms, "Rate limit exceeded for this key");
        return AR_ELIMIT;
    }
    if (!ar_window_try_add(&st->tpm, now, g->est_tokens, ar_limit_share(conf->tpm, share),
                           &retry_ms)) {
        ar_window_sub_at(&st->rpm, now, 1);
        ar_gw_refuse_limit(g->http, g->rt, "key", retry_ms,
                           "Token rate limit exceeded for this key");
        return AR_ELIMIT;
    }
    g->key_tpm_charged = g->est_tokens;
    g->key_charged_ms = now;
    g->quota_ask =
        (ar_quota_ask_t){.prompt_tokens = g->est_tokens,
                         .max_output_tokens = g->max_output_tokens > 0
                                                  ? g->max_output_tokens
                                                  : g->rt->cfg->storage.default_max_output_tokens};
    /* the price it will likely pay: its first candidate's */
    ar_gw_price_of(g, g->cands.cnt ? g->cands.items[0] : NULL, &g->quota_ask.input_price,
                   &g->quota_ask.output_price);
    g->quota_lim = ar_tkey_limits(conf);
    int64_t wall = ar_wall_ms();
    ar_quota_limits_t lim = g->quota_lim;
    if (ar_quota_limits_any(&lim) && g->gw->redis) {
        g->quota_ask_redis = ar_redis_conn_ready(g->gw->redis);
        if (!g->quota_ask_redis)
            lim =
                ar_quota_share_limits(&st->quota, &lim, g->rt->cfg->storage.redis_instances, wall);
    }
    ar_quota_verdict_t v = ar_quota_reserve(&st->quota, &lim, &g->quota_ask, wall, &g->quota_res);
    if (v == AR_QUOTA_OK)
        return 0;
    ar_window_sub_at(&st->rpm, now, 1);
    ar_window_sub_at(&st->tpm, now, g->est_tokens);
    g->key_tpm_charged = 0;
    quota_refuse(g, v);
    return AR_ELIMIT;
}

/* Refuses the request admitted locally: its local RPM is taken back (when still charged);
 * finishing settles the rest (TPM and quota with no usage). */
static void key_refuse(ar_gw_req_t *g, int64_t retry_ms, bool rpm_charged)
{
    if (rpm_charged)
        ar_window_sub_at(&g->ctx.key->state->rpm, g->key_charged_ms, 1);
    ar_gw_refuse_limit(g->http, g->rt, "key", retry_ms, "Rate limit exceeded for this key");
    ar_gw_req_finish(g);
}

/* Redis gave no answer: the local windows decide with this instance's share. */
static bool key_fallback(ar_gw_req_t *g)
{
    ar_tkey_state_t *st = g->ctx.key->state;
    int64_t share = g->rt->cfg->storage.redis_instances, retry_ms = 0;
    int64_t n = g->key_tpm_charged;
    uint64_t now = ar_now_ms();
    ar_window_sub_at(&st->rpm, g->key_charged_ms, 1);
    ar_window_sub_at(&st->tpm, g->key_charged_ms, n);
    bool ok =
        ar_window_try_add(&st->rpm, now, 1, ar_limit_share(g->key_rpm_limit, share), &retry_ms);
    if (ok &&
        !ar_window_try_add(&st->tpm, now, n, ar_limit_share(g->key_tpm_limit, share), &retry_ms)) {
        ar_window_sub_at(&st->rpm, now, 1);
        ok = false;
    }
    if (ok) {
        g->key_charged_ms = now;
        return true;
    }
    g->key_tpm_charged = 0; /* nothing is charged here any more */
    key_refuse(g, retry_ms, false);
    return false;
}

static void on_key_verdict(void *ud, int rc, bool allowed, int64_t retry_ms)
{
    ar_gw_req_t *g = ud;
    ar_http_request_t *http = g->http; /* held since the check was sent */
    if (g->finished) {
        /* aborted meanwhile: finishing already gave the admission back */
    } else if (rc == 0 && allowed) {
        ar_gw_admit_next(g);
    } else if (rc == 0) {
        g->key_member[0] = '\0';
        key_refuse(g, retry_ms, true);
    } else {
        g->key_member[0] = '\0';
        if (key_fallback(g))
            ar_gw_admit_next(g);
    }
    ar_http_unref(http);
}

bool ar_gw_key_windows_shared(ar_gw_req_t *g)
{
    ar_redis_conn_t *c = g->ctx.key ? key_conn(g, g->key_rpm_limit, g->key_tpm_limit) : NULL;
    if (c) {
        const ar_tkey_conf_t *conf = atomic_load_explicit(&g->ctx.key->conf, memory_order_acquire);
        ar_pool_t *pool = g->http->pool;
        ar_redis_window_t w[2];
        size_t n = 0;
        /* the hash tag keeps a Redis Cluster happy: a key's windows share one slot */
        g->key_rpm_key = g->key_tpm_key = NULL;
        if (g->key_rpm_limit >= 0) {
            g->key_rpm_key = ar_pool_printf(pool, "airouter:key:{%lld}:rpm", (long long)conf->id);
            w[n++] = (ar_redis_window_t){g->key_rpm_key, g->key_rpm_limit, 0};
        }
        if (g->key_tpm_limit >= 0) {
            g->key_tpm_key = ar_pool_printf(pool, "airouter:key:{%lld}:tpm", (long long)conf->id);
            /* a token window needs a cost of at least 1 (0 marks a counting window) */
            g->key_redis_tpm = g->est_tokens > 0 ? g->est_tokens : 1;
            w[n++] = (ar_redis_window_t){g->key_tpm_key, g->key_tpm_limit, g->key_redis_tpm};
        }
        if (ar_redis_window_admit(c, w, n, 60000, g->key_member, on_key_verdict, g) == 0) {
            ar_http_ref(g->http);
            return true;
        }
        g->key_member[0] = '\0';
        if (!key_fallback(g))
            return true;
    }
    return false;
}

void ar_gw_key_give_back(ar_gw_req_t *g)
{
    if (!g->ctx.key || !g->key_charged_ms)
        return;
    ar_tkey_state_t *st = g->ctx.key->state;
    ar_quota_release(&st->quota, &g->quota_res);
    ar_window_sub_at(&st->rpm, g->key_charged_ms, 1);
    ar_window_sub_at(&st->tpm, g->key_charged_ms, g->key_tpm_charged);
    if (g->key_member[0]) {
        if (g->key_rpm_key)
            ar_redis_window_release(g->gw->redis, &g->key_rpm_key, 1, g->key_member);
        ar_gw_key_settle_shared(g, 0);
    }
    ar_gw_lease_settle(g, 0, 0);
    g->key_member[0] = '\0';
    g->key_charged_ms = 0;
    g->key_tpm_charged = 0;
}

void ar_gw_key_quota_refused(ar_gw_req_t *g, ar_quota_verdict_t v)
{
    ar_gw_key_give_back(g);
    quota_refuse(g, v);
    ar_gw_req_finish(g);
}

bool ar_gw_key_quota_fallback(ar_gw_req_t *g)
{
    ar_quota_t *q = &g->ctx.key->state->quota;
    int64_t wall = ar_wall_ms();
    ar_quota_release(q, &g->quota_res);
    ar_quota_limits_t lim =
        ar_quota_share_limits(q, &g->quota_lim, g->rt->cfg->storage.redis_instances, wall);
    ar_quota_verdict_t v = ar_quota_reserve(q, &lim, &g->quota_ask, wall, &g->quota_res);
    if (v == AR_QUOTA_OK)
        return true;
    ar_gw_key_quota_refused(g, v);
    return false;
}

/* Past any request's end (attempts and retries included), and an hour without a timeout. */
int64_t ar_gw_key_quota_hold_ms(const ar_gw_req_t *g)
{
    int64_t t = g->rt->cfg->server.request_timeout_ms;
    return t > 0 ? 2 * t + 60000 : 3600000;
}

bool ar_gw_key_quota_shared(ar_gw_req_t *g)
{
    if (!g->quota_ask_redis || !g->quota_res.held)
        return false;
    if (ar_redis_conn_ready(g->gw->redis))
        return ar_gw_lease_take(g);
    return !ar_gw_key_quota_fallback(g);
}

void ar_gw_billed_tokens(const ar_gw_req_t *g, int64_t *prompt, int64_t *completion)
{
    const ar_usage_t *u = &g->call.usage;
    *prompt = *completion = 0;
    if (u->seen) {
        *prompt = u->prompt_tokens;
        *completion = u->completion_tokens;
    } else if (g->dep && g->up_status >= 200 && g->up_status < 300) {
        /* the upstream answered but its usage never came (a stream the client cut, or one
         * that broke): the prompt was spent all the same, and cancelling must not be free */
        *prompt = g->est_tokens;
    }
}

void ar_gw_key_settle_shared(ar_gw_req_t *g, int64_t used)
{
    if (!g->key_member[0] || !g->key_tpm_key)
        return;
    ar_redis_window_settle(g->gw->redis, &g->key_tpm_key, 1, g->key_member, g->key_redis_tpm, used);
    g->key_tpm_key = NULL; /* once */
}

void ar_gw_key_settle(ar_gw_req_t *g, double cost_usd)
{
    ar_tkey_t *k = g->ctx.key;
    if (!k || !g->key_charged_ms)
        return;
    int64_t prompt, completion;
    ar_gw_billed_tokens(g, &prompt, &completion);
    int64_t used = prompt + completion;
    if (used != g->key_tpm_charged)
        ar_window_add(&k->state->tpm, ar_now_ms(), used - g->key_tpm_charged);
    ar_quota_settle(&k->state->quota, &g->quota_res, prompt, completion, cost_usd, ar_wall_ms());
    if (g->key_member[0]) {
        /* pipelined behind the admission on the same connection: they run after it */
        if (g->key_rpm_key && g->attempts == 0)
            ar_redis_window_release(g->gw->redis, &g->key_rpm_key, 1, g->key_member);
        ar_gw_key_settle_shared(g, used);
    }
    ar_gw_lease_settle(g, used, cost_usd);
    g->key_member[0] = '\0';
    g->key_charged_ms = 0;
}
