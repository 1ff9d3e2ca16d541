/*
 * runtime.c: one config generation made runnable: a provider per credential, the router,
 * the model list. Built on the main thread (at start and on SIGHUP), then shared
 * read-only by every worker; each request holds a reference to the runtime it started
 * with, so a reload never pulls a config from under a running request.
 */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "gateway/gateway_int.h"

ar_runtime_t *ar_runtime_build(ar_config_t *cfg, ar_router_state_t *st, char *err, size_t errlen)
{
    ar_runtime_t *rt = ar_xcalloc(1, sizeof(*rt));
    atomic_init(&rt->refs, 1);
    rt->cfg = ar_config_ref(cfg);
    rt->providers =
        ar_xcalloc(cfg->credentials_cnt ? cfg->credentials_cnt : 1, sizeof(ar_provider_t *));
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        rt->providers[i] = ar_provider_create(&cfg->credentials[i], err, errlen);
        if (!rt->providers[i])
            goto fail;
    }
    rt->router = ar_router_create(cfg, st, err, errlen);
    if (!rt->router)
        goto fail;
    uint64_t mb = (uint64_t)cfg->server.max_body_size_mb;
    uint64_t mult = (uint64_t)cfg->server.response_body_multiplier;
    rt->max_response_bytes = mb * mult * 1024u * 1024u;
    return rt;
fail:
    ar_runtime_release(rt);
    return NULL;
}

ar_runtime_t *ar_runtime_acquire(ar_gateway_t *gw)
{
    /* The main thread swaps gw->rt only after taking the new one's reference and drops the
     * old one after every worker moved on (see gateway.c), so the load-then-ref here
     * cannot see a freed runtime. */
    ar_runtime_t *rt = atomic_load_explicit(&gw->rt, memory_order_acquire);
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
    return rt;
}

void ar_runtime_release(ar_runtime_t *rt)
{
    if (!rt || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
        return;
    ar_router_destroy(rt->router);
    if (rt->providers) {
        for (size_t i = 0; i < rt->cfg->credentials_cnt; i++)
            ar_provider_destroy(rt->providers[i]);
        ar_free(rt->providers);
    }
    ar_free(rt->models_json_mem);
    ar_free(rt->models_anth_json_mem);
    ar_free(rt->token_refresh_at);
    ar_config_unref(rt->cfg);
    ar_free(rt);
}

/* ---- discovery: GET /v1/models of open credentials, at start, on a private loop ---- */

typedef struct discovery {
    ar_collected_t got; /* first: the collect callbacks see the discovery as one */
    ar_runtime_t *rt;
    size_t cred_idx;
    int err;
    bool done;
    ar_pool_t *pool;
} discovery_t;

static void disc_done(void *ud, int err, const char *detail)
{
    discovery_t *d = ud;
    d->err = err;
    d->done = true;
    if (err) {
        const ar_cred_conf_t *c = &d->rt->cfg->credentials[d->cred_idx];
        AR_LOG(AR_LOG_WARN, NULL, "model discovery for credential %s failed: %s (%s)", c->name,
               ar_err_message(err), detail);
    }
}

void ar_runtime_discover(ar_runtime_t *rt)
{
    const ar_config_t *cfg = rt->cfg;
    if (!cfg->server.replace_v1_models)
        return;
    bool *has_models = ar_xcalloc(cfg->credentials_cnt ? cfg->credentials_cnt : 1, sizeof(bool));
    for (size_t i = 0; i < cfg->models_cnt; i++)
        has_models[cfg->models[i].credential_idx] = true;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ar_upstream_opts_t uo = {.max_idle_conns = 4, .idle_conn_timeout_ms = 1000};
    ar_upstream_t *up = ar_upstream_create(&loop, &uo);
    discovery_t *ds = ar_xcalloc(cfg->credentials_cnt ? cfg->credentials_cnt : 1, sizeof(*ds));
    ar_http_req_t *reqs =
        ar_xcalloc(cfg->credentials_cnt ? cfg->credentials_cnt : 1, sizeof(*reqs));
    ar_transfer_cbs_t cbs = {ar_collect_head, ar_collect_data, disc_done};
    ar_transfer_opts_t to = {
        .timeout_ms = 10000, .connect_timeout_ms = 5000, .max_response_bytes = 16u << 20};
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        discovery_t *d = &ds[i];
        d->rt = rt;
        d->cred_idx = i;
        d->done = true;
        ar_buf_init(&d->got.body, 16u << 20);
        ar_provider_t *p = rt->providers[i];
        if (has_models[i] || !ar_provider_can(p, AR_PROV_MODELS) || !up)
            continue;
        d->pool = ar_pool_create(4096);
        if (ar_provider_build_models(p, d->pool, &reqs[i]) != 0)
            continue;
        int err = 0;
        d->done = false;
        if (!ar_transfer_start(up, &reqs[i], &to, &cbs, d, &err))
            d->done = true;
    }
    for (;;) {
        bool pending = false;
        for (size_t i = 0; i < cfg->credentials_cnt; i++)
            pending = pending || !ds[i].done;
        if (!pending)
            break;
        uv_run(&loop, UV_RUN_ONCE); /* idle pooled sockets may stay watched: no DEFAULT */
    }
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        discovery_t *d = &ds[i];
        const ar_cred_conf_t *c = &cfg->credentials[i];
        if (d->pool && d->err == 0 && d->got.status == 200) {
            ar_strlist_t ids = {0};
            if (ar_provider_parse_models(rt->providers[i], ar_buf_span(&d->got.body), &ids) == 0 &&
                ids.cnt > 0) {
                ar_router_set_discovered(rt->router, i, &ids);
                AR_LOG(AR_LOG_INFO, NULL, "credential %s: discovered %zu models", c->name, ids.cnt);
            }
            ar_strlist_dispose(&ids);
        } else if (d->pool && d->err == 0) {
            AR_LOG(AR_LOG_WARN, NULL, "model discovery for credential %s: upstream answered %d",
                   c->name, d->got.status);
        }
        ar_buf_dispose(&d->got.body);
        ar_pool_destroy(d->pool);
    }
    ar_upstream_close(up);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    ar_free(reqs);
    ar_free(ds);
    ar_free(has_models);
}
