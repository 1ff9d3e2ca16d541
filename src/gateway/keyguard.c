/*
 * keyguard.c: what a virtual key may do with an LLM request (SPEC section 6): the models
 * it may use (403 permission_error), its own RPM and TPM (429 limit_type "key"), and its
 * token and budget quotas (429 limit_type "quota" until the period resets), which reserve
 * the request's worst case until it settles with the real usage. The master key has none
 * of these limits.
 */
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "gateway/gateway_int.h"

static int forbid_model(ar_gw_req_t *g, ar_span_t name)
{
    char *msg = ar_pool_printf(g->http->pool, "This key may not use the model '%.*s'",
                               (int)(name.len > 200 ? 200 : name.len), name.ptr);
    ar_gw_error(g->http, 403, "permission_error", "model_not_allowed", msg);
    return AR_ELIMIT;
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
    if (!ar_window_try_add(&st->rpm, now, 1, conf->rpm, &retry_ms)) {
        ar_gw_refuse_limit(g->http, g->rt, "key", retry_ms, "Rate limit exceeded for this key");
        return AR_ELIMIT;
    }
    if (!ar_window_try_add(&st->tpm, now, g->est_tokens, conf->tpm, &retry_ms)) {
        ar_window_sub_at(&st->rpm, now, 1);
        ar_gw_refuse_limit(g->http, g->rt, "key", retry_ms,
                           "Token rate limit exceeded for this key");
        return AR_ELIMIT;
    }
    g->key_tpm_charged = g->est_tokens;
    g->key_charged_ms = now;
    ar_quota_ask_t ask = {.prompt_tokens = g->est_tokens,
                          .max_output_tokens = g->max_output_tokens > 0
                                                   ? g->max_output_tokens
                                                   : g->rt->cfg->storage.default_max_output_tokens};
    /* the price it will likely pay: its first candidate's */
    ar_gw_price_of(g, g->cands.cnt ? g->cands.items[0] : NULL, &ask.input_price, &ask.output_price);
    ar_quota_limits_t lim = ar_tkey_limits(conf);
    int64_t wall = ar_wall_ms();
    ar_quota_verdict_t v = ar_quota_reserve(&st->quota, &lim, &ask, wall, &g->quota_res);
    if (v == AR_QUOTA_OK)
        return 0;
    ar_window_sub_at(&st->rpm, now, 1);
    ar_window_sub_at(&st->tpm, now, g->est_tokens);
    g->key_tpm_charged = 0;
    /* when the quota has room again: the next day or month for those limits, never for a
     * lifetime limit or the budget (Retry-After then says a day: a client must not spin) */
    int64_t reset = ar_quota_next_day_ms(wall);
    if (v == AR_QUOTA_TOKENS && lim.day_tokens < 0 && lim.month_tokens >= 0)
        reset = ar_quota_next_month_ms(wall);
    ar_gw_refuse_limit(g->http, g->rt, "quota", reset - wall,
                       v == AR_QUOTA_BUDGET ? "Budget exceeded for this key"
                                            : "Token quota exceeded for this key");
    return AR_ELIMIT;
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
    g->key_charged_ms = 0;
}
