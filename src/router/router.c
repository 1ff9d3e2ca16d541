/*
 * router.c: building a router from a config generation (deployments, model groups, open
 * credentials) and the attempt accounting. Building happens once per (re)load on the
 * main thread; everything built is read-only afterwards.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "core/window.h"
#include "router/router_int.h"

/* config/ is not ours to include: find the credential by name here. */
static long find_cred(const ar_config_t *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->credentials_cnt; i++) {
        if (strcmp(cfg->credentials[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

ar_router_t *ar_router_create(const ar_config_t *cfg, ar_router_state_t *st, char *err,
                              size_t errlen)
{
    (void)err;
    (void)errlen;
    ar_router_t *r = ar_xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    r->st = st;
    r->deps_cnt = cfg->models_cnt;
    r->deps = ar_xcalloc(cfg->models_cnt ? cfg->models_cnt : 1, sizeof(ar_deployment_t));
    r->groups = ar_xcalloc(cfg->models_cnt ? cfg->models_cnt : 1, sizeof(ar_group_t));
    bool *has_models = ar_xcalloc(cfg->credentials_cnt ? cfg->credentials_cnt : 1, sizeof(bool));
    for (size_t i = 0; i < cfg->models_cnt; i++) {
        const ar_model_conf_t *m = &cfg->models[i];
        const ar_cred_conf_t *c = &cfg->credentials[m->credential_idx];
        ar_deployment_t *d = &r->deps[i];
        d->cred = c;
        d->cred_idx = m->credential_idx;
        d->model = m;
        d->name = m->name;
        d->upstream_model = m->model ? m->model : m->name;
        d->weight = m->weight;
        d->is_fallback = c->is_fallback;
        d->cred_state = ar_router_state_get(st, c->name, NULL);
        /* limits and breakers belong to the upstream deployment, whatever its alias */
        d->dep_state = ar_router_state_get(st, c->name, d->upstream_model);
        has_models[m->credential_idx] = true;

        ar_group_t *g = NULL;
        for (size_t k = 0; k < r->groups_cnt; k++) {
            if (strcmp(r->groups[k].name, m->name) == 0) {
                g = &r->groups[k];
                break;
            }
        }
        if (!g) {
            g = &r->groups[r->groups_cnt++];
            g->name = m->name;
            g->deps = ar_xcalloc(cfg->models_cnt, sizeof(size_t));
        }
        g->deps[g->deps_cnt++] = i;
    }
    r->open_creds = ar_xcalloc(cfg->credentials_cnt ? cfg->credentials_cnt : 1, sizeof(size_t));
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        if (!has_models[i])
            r->open_creds[r->open_cnt++] = i;
    }
    ar_free(has_models);
    r->discovered =
        ar_xcalloc(cfg->credentials_cnt ? cfg->credentials_cnt : 1, sizeof(ar_strlist_t));
    r->has_discovered = ar_xcalloc(cfg->credentials_cnt ? cfg->credentials_cnt : 1, sizeof(bool));
    const ar_routing_conf_t *rc = &cfg->routing;
    long fi = rc->fallback_enabled ? find_cred(cfg, rc->fallback_credential) : -1;
    if (fi >= 0 && rc->fallback_model) {
        ar_deployment_t *f = &r->fallback;
        f->cred = &cfg->credentials[fi];
        f->cred_idx = (size_t)fi;
        f->name = rc->fallback_model;
        f->upstream_model = rc->fallback_model;
        f->weight = 1;
        f->is_fallback = true; /* whatever the credential says: it is the last resort */
        f->cred_state = ar_router_state_get(st, f->cred->name, NULL);
        f->dep_state = ar_router_state_get(st, f->cred->name, rc->fallback_model);
        r->has_fallback = true;
    }
    return r;
}

void ar_router_set_rand(ar_router_t *r, uint64_t (*fn)(void *ud), void *ud)
{
    r->rand = fn;
    r->rand_ud = ud;
}

const ar_deployment_t *ar_router_fallback(const ar_router_t *r)
{
    return r->has_fallback ? &r->fallback : NULL;
}

void ar_router_destroy(ar_router_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->groups_cnt; i++)
        ar_free(r->groups[i].deps);
    for (size_t i = 0; i < r->cfg->credentials_cnt; i++) {
        for (size_t k = 0; k < r->discovered[i].cnt; k++)
            ar_free(r->discovered[i].items[k]);
        ar_free(r->discovered[i].items);
    }
    ar_free(r->discovered);
    ar_free(r->has_discovered);
    ar_free(r->groups);
    ar_free(r->deps);
    ar_free(r->open_creds);
    ar_free(r);
}

void ar_router_set_discovered(ar_router_t *r, size_t cred_idx, const ar_strlist_t *ids)
{
    ar_strlist_t *l = &r->discovered[cred_idx];
    l->items = ar_xcalloc(ids->cnt ? ids->cnt : 1, sizeof(char *));
    for (size_t i = 0; i < ids->cnt; i++)
        l->items[i] = ar_xstrdup(ids->items[i]);
    l->cnt = ids->cnt;
    r->has_discovered[cred_idx] = true;
}

bool ar_router_has_discovered(const ar_router_t *r, size_t cred_idx)
{
    return r->has_discovered[cred_idx];
}

const ar_strlist_t *ar_router_discovered(const ar_router_t *r, size_t cred_idx)
{
    return r->has_discovered[cred_idx] ? &r->discovered[cred_idx] : NULL;
}

const ar_config_t *ar_router_config(const ar_router_t *r)
{
    return r->cfg;
}

/* ---- limits of a deployment ---- */

void ar_router_cred_limits(const ar_router_t *r, size_t cred_idx, int64_t *rpm, int64_t *tpm)
{
    const ar_cred_conf_t *c = &r->cfg->credentials[cred_idx];
    *rpm = c->rpm;
    *tpm = c->tpm;
}

void ar_router_dep_limits(const ar_router_t *r, const ar_deployment_t *d, int64_t *rpm,
                          int64_t *tpm)
{
    if (d->model) {
        *rpm = d->model->rpm;
        *tpm = d->model->tpm;
    } else {
        /* an implicit deployment has no entry of its own: the server default applies */
        *rpm = r->cfg->server.default_models_rpm;
        *tpm = AR_UNLIMITED;
    }
}

ar_target_state_t *ar_router_cred_state(const ar_router_t *r, size_t i)
{
    return ar_router_state_get(r->st, r->cfg->credentials[i].name, NULL);
}

size_t ar_router_dep_cnt(const ar_router_t *r)
{
    return r->deps_cnt;
}

const ar_deployment_t *ar_router_dep(const ar_router_t *r, size_t i)
{
    return &r->deps[i];
}

double ar_router_success_rate(const ar_target_state_t *s, uint64_t now_ms)
{
    int64_t ok = ar_window_sum(&s->ok, now_ms);
    int64_t fail = ar_window_sum(&s->fail, now_ms);
    return ok + fail ? (double)ok / (double)(ok + fail) : 1.0;
}

/* ---- admission ---- */

/* Charges n to a window under limit; on refusal keeps the smallest wait seen. */
static bool charge(ar_window_t *w, uint64_t now, int64_t n, int64_t limit, ar_admission_t *adm)
{
    int64_t wait = 0;
    if (ar_window_try_add(w, now, n, limit, &wait))
        return true;
    /* a request larger than the whole limit never fits: ask for a full window */
    if (wait <= 0)
        wait = 60000;
    if (adm->retry_ms == 0 || wait < adm->retry_ms)
        adm->retry_ms = wait;
    return false;
}

ar_skip_t ar_router_admit(ar_router_t *r, const ar_deployment_t *d, uint64_t now_ms,
                          int64_t est_tokens, ar_admission_t *adm)
{
    return ar_router_admit_share(r, d, now_ms, est_tokens, 1, adm);
}

ar_skip_t ar_router_admit_share(ar_router_t *r, const ar_deployment_t *d, uint64_t now_ms,
                                int64_t est_tokens, int64_t share, ar_admission_t *adm)
{
    const ar_config_t *cfg = r->cfg;
    ar_target_state_t *cs = d->cred_state;
    ar_target_state_t *ds = d->dep_state;
    memset(adm, 0, sizeof(*adm));
    adm->at_ms = now_ms;
    adm->tokens = est_tokens > 0 ? est_tokens : 0;
    if (ar_ban_active(&cs->ban, now_ms))
        return AR_SKIP_BANNED;
    if (!ar_breaker_allow(&ds->breaker, &cfg->circuit_breaker, now_ms, &adm->probe)) {
        return ar_breaker_state(&ds->breaker, &cfg->circuit_breaker, now_ms) ==
                       AR_BREAKER_UNAVAILABLE
                   ? AR_SKIP_UNAVAILABLE
                   : AR_SKIP_OPEN;
    }
    long max_conc = d->model ? (long)d->model->max_concurrent : -1;
    long busy = atomic_fetch_add_explicit(&ds->in_flight, 1, memory_order_relaxed);
    if (max_conc >= 0 && busy >= max_conc) {
        atomic_fetch_sub_explicit(&ds->in_flight, 1, memory_order_relaxed);
        ar_breaker_abandon(&ds->breaker, adm->probe);
        return AR_SKIP_BUSY;
    }
    int64_t dep_rpm, dep_tpm;
    ar_router_dep_limits(r, d, &dep_rpm, &dep_tpm);
    const ar_cred_conf_t *c = d->cred;
    int64_t n = adm->tokens;
    /* credential level, then deployment level; each refusal takes back what was charged */
    dep_rpm = ar_limit_share(dep_rpm, share);
    dep_tpm = ar_limit_share(dep_tpm, share);
    bool ok = charge(&cs->rpm, now_ms, 1, ar_limit_share(c->rpm, share), adm);
    if (ok && !charge(&cs->tpm, now_ms, n, ar_limit_share(c->tpm, share), adm)) {
        ar_window_sub_at(&cs->rpm, now_ms, 1);
        ok = false;
    }
    if (ok && !charge(&ds->rpm, now_ms, 1, dep_rpm, adm)) {
        ar_window_sub_at(&cs->rpm, now_ms, 1);
        ar_window_sub_at(&cs->tpm, now_ms, n);
        ok = false;
    }
    if (ok && !charge(&ds->tpm, now_ms, n, dep_tpm, adm)) {
        ar_window_sub_at(&cs->rpm, now_ms, 1);
        ar_window_sub_at(&cs->tpm, now_ms, n);
        ar_window_sub_at(&ds->rpm, now_ms, 1);
        ok = false;
    }
    if (!ok) {
        atomic_fetch_sub_explicit(&ds->in_flight, 1, memory_order_relaxed);
        ar_breaker_abandon(&ds->breaker, adm->probe);
        return AR_SKIP_LIMITED;
    }
    atomic_fetch_add_explicit(&cs->in_flight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&cs->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ds->requests, 1, memory_order_relaxed);
    return AR_SKIP_NONE;
}

void ar_router_withdraw(ar_router_t *r, const ar_deployment_t *d, const ar_admission_t *adm)
{
    (void)r;
    ar_target_state_t *cs = d->cred_state;
    ar_target_state_t *ds = d->dep_state;
    atomic_fetch_sub_explicit(&cs->in_flight, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&ds->in_flight, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&cs->requests, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&ds->requests, 1, memory_order_relaxed);
    ar_window_sub_at(&cs->rpm, adm->at_ms, 1);
    ar_window_sub_at(&ds->rpm, adm->at_ms, 1);
    ar_window_sub_at(&cs->tpm, adm->at_ms, adm->tokens);
    ar_window_sub_at(&ds->tpm, adm->at_ms, adm->tokens);
    ar_breaker_abandon(&ds->breaker, adm->probe);
}

/* TPM: the estimate was charged when the attempt started; make it the real usage. */
static void correct_tokens(ar_window_t *w, const ar_admission_t *adm, int64_t actual,
                           uint64_t now_ms)
{
    int64_t delta = actual - adm->tokens;
    if (delta > 0)
        ar_window_add(w, now_ms, delta);
    else if (delta < 0)
        ar_window_sub_at(w, adm->at_ms, -delta);
}

ar_outcome_t ar_router_report(ar_router_t *r, const ar_deployment_t *d, const ar_admission_t *adm,
                              const ar_attempt_result_t *res, uint64_t now_ms)
{
    const ar_config_t *cfg = r->cfg;
    ar_target_state_t *cs = d->cred_state;
    ar_target_state_t *ds = d->dep_state;
    atomic_fetch_sub_explicit(&cs->in_flight, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&ds->in_flight, 1, memory_order_relaxed);
    if (res->usage_seen) {
        int64_t actual = res->prompt_tokens + res->completion_tokens;
        correct_tokens(&cs->tpm, adm, actual, now_ms);
        correct_tokens(&ds->tpm, adm, actual, now_ms);
        atomic_fetch_add_explicit(&ds->prompt_tokens, (uint64_t)res->prompt_tokens,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&ds->completion_tokens, (uint64_t)res->completion_tokens,
                                  memory_order_relaxed);
        if (res->cost_usd > 0)
            atomic_fetch_add_explicit(&ds->cost_nusd, (uint64_t)(res->cost_usd * 1e9),
                                      memory_order_relaxed);
    }
    if (res->cancelled) {
        ar_breaker_abandon(&ds->breaker, adm->probe);
        return (ar_outcome_t){AR_ACT_RETURN, false, 0, AR_BRK_NONE, 499};
    }
    ar_outcome_t oc = ar_outcome_classify(res->status, res->err);
    if (oc.ban_reset)
        ar_ban_success(&cs->ban);
    if (oc.ban_code)
        ar_ban_failure(&cs->ban, &cfg->fail2ban, oc.ban_code, now_ms);
    /* "*" stands for every unlisted name on an open credential: one bad name must not
     * make all the others unavailable */
    bool shared = ds->model_name && ds->model_name[0] == '*';
    switch (oc.breaker) {
    case AR_BRK_SUCCESS: ar_breaker_success(&ds->breaker, &cfg->circuit_breaker, adm->probe); break;
    case AR_BRK_FAILURE:
        ar_breaker_failure(&ds->breaker, &cfg->circuit_breaker, now_ms, adm->probe);
        break;
    case AR_BRK_UNAVAILABLE:
        if (shared)
            ar_breaker_abandon(&ds->breaker, adm->probe);
        else
            ar_breaker_unavailable(&ds->breaker);
        break;
    case AR_BRK_NONE: ar_breaker_abandon(&ds->breaker, adm->probe); break;
    }
    int64_t window = cfg->circuit_breaker.stats_window_ms;
    ar_window_configure(&ds->ok, window);
    ar_window_configure(&ds->fail, window);
    if (oc.action == AR_ACT_RETURN) {
        ar_window_add(&ds->ok, now_ms, 1);
        ar_latency_configure(&ds->latency, window);
        ar_latency_observe(&ds->latency, now_ms, res->duration_us);
        ar_ewma_observe(&ds->ttfb_ewma_us, res->ttfb_us ? res->ttfb_us : res->duration_us);
        ar_histo_observe(&ds->ttfb, res->ttfb_us ? res->ttfb_us : res->duration_us);
    } else if (oc.action != AR_ACT_RETURN_ERROR) {
        ar_window_add(&ds->fail, now_ms, 1);
        atomic_fetch_add_explicit(&cs->errors, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&ds->errors, 1, memory_order_relaxed);
        ar_uperr_kind_t k = ar_uperr_kind_of(res->status, res->err);
        atomic_fetch_add_explicit(&cs->uperr[k], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&ds->uperr[k], 1, memory_order_relaxed);
    }
    return oc;
}

void ar_router_record_request(ar_router_t *r, const ar_deployment_t *d, int status,
                              uint64_t duration_us)
{
    ar_target_state_t *s = d ? d->dep_state : ar_router_state_unrouted(r->st);
    if (status >= 100 && status <= 599)
        atomic_fetch_add_explicit(&s->status[status - 100], 1, memory_order_relaxed);
    ar_histo_observe(&s->duration, duration_us);
}

void ar_router_record_fallback(const ar_deployment_t *d)
{
    atomic_fetch_add_explicit(&d->dep_state->fallbacks, 1, memory_order_relaxed);
}

typedef struct reset_ctx {
    ar_router_t *r;
    const char *model;
    size_t n;
} reset_ctx_t;

/* Implicit deployments (open credentials) have no entry: match their state by name. */
static void reset_state(ar_target_state_t *s, void *ud)
{
    reset_ctx_t *rc = ud;
    if (strcmp(s->model_name, rc->model) != 0)
        return;
    ar_breaker_reset(&s->breaker);
    ar_ban_reset(&ar_router_state_get(rc->r->st, s->cred_name, NULL)->ban);
    rc->n++;
}

size_t ar_router_reset_model(ar_router_t *r, const char *model)
{
    size_t n = 0;
    for (size_t i = 0; i < r->deps_cnt; i++) {
        const ar_deployment_t *d = &r->deps[i];
        if (strcmp(d->name, model) != 0 && strcmp(d->upstream_model, model) != 0)
            continue;
        ar_breaker_reset(&d->dep_state->breaker);
        ar_ban_reset(&d->cred_state->ban);
        n++;
    }
    if (n == 0) {
        reset_ctx_t rc = {r, model, 0};
        ar_router_state_foreach(r->st, reset_state, &rc);
        n = rc.n;
    }
    return n;
}
