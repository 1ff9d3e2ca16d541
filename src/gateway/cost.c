/*
 * cost.c: the price of a request (SPEC section 6): a model's own config prices
 * (input_cost_per_token, output_cost_per_token) when it has both, else the price table of
 * server.model_prices_link (LiteLLM's format), with cache-read, cache-creation, reasoning
 * and tiered rates. The table is loaded by a helper thread at start and on SIGHUP, never on
 * an event loop; a replaced table is kept until exit, so a request may read the table it
 * found without a reference count on the hot path.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "gateway/gateway_int.h"
#include "tenant/ledger.h"
#include "tenant/prices.h"

struct ar_gw_prices {
    _Atomic(ar_prices_t *) current;
    pthread_mutex_t mu; /* old and loader */
    ar_prices_t **old;
    size_t old_cnt;
    ar_prices_loader_t *loader;
    _Atomic bool loading;
    char link[1024];
    char cache[1100];
};

/* The loader's thread. */
static void loaded(void *ud, int rc, ar_prices_t *p, const char *err)
{
    struct ar_gw_prices *gp = ud;
    if (p) {
        size_t count = ar_prices_count(p);
        /* published before the log line says so: whoever reads the line sees the table */
        ar_prices_t *was = atomic_exchange(&gp->current, p);
        AR_LOG(rc == 0 ? AR_LOG_INFO : AR_LOG_WARN, NULL, "price table: %zu models loaded%s%s",
               count, err && err[0] ? ": " : "", err && err[0] ? err : "");
        if (was) {
            pthread_mutex_lock(&gp->mu);
            gp->old = ar_xrealloc(gp->old, (gp->old_cnt + 1) * sizeof(*gp->old));
            gp->old[gp->old_cnt++] = was;
            pthread_mutex_unlock(&gp->mu);
        }
    } else if (rc != AR_ECANCELED) {
        AR_LOG(AR_LOG_ERROR, NULL, "price table not loaded: %s", err ? err : "unknown error");
    }
    atomic_store(&gp->loading, false);
}

void ar_gw_prices_load(ar_gateway_t *gw, const ar_config_t *cfg)
{
    const char *link = cfg->server.model_prices_link;
    if (!link || !link[0])
        return;
    struct ar_gw_prices *gp = gw->prices;
    if (!gp) {
        gp = ar_xcalloc(1, sizeof(*gp));
        pthread_mutex_init(&gp->mu, NULL);
        gw->prices = gp;
    }
    if (atomic_load(&gp->loading)) {
        AR_LOG(AR_LOG_WARN, NULL, "price table: a load is still running; not started again");
        return;
    }
    ar_prices_load_stop(gp->loader); /* done already: joins at once */
    gp->loader = NULL;
    snprintf(gp->link, sizeof(gp->link), "%s", link);
    /* the last good copy lives next to the database (none for an in-memory one) */
    char dir[1024];
    ar_ledger_dir_for(cfg->storage.database_url, dir, sizeof(dir));
    if (dir[0])
        snprintf(gp->cache, sizeof(gp->cache), "%.*s.prices.json", (int)(strlen(dir) - 6), dir);
    else
        gp->cache[0] = '\0';
    atomic_store(&gp->loading, true);
    if (ar_prices_load_start(gp->link, gp->cache[0] ? gp->cache : NULL, loaded, gp, &gp->loader) !=
        0) {
        atomic_store(&gp->loading, false);
        AR_LOG(AR_LOG_ERROR, NULL, "price table: could not start loading it");
    }
}

void ar_gw_prices_stop(ar_gateway_t *gw)
{
    struct ar_gw_prices *gp = gw->prices;
    if (!gp)
        return;
    ar_prices_load_stop(gp->loader);
    ar_prices_unref(atomic_load(&gp->current));
    for (size_t i = 0; i < gp->old_cnt; i++)
        ar_prices_unref(gp->old[i]);
    ar_free(gp->old);
    pthread_mutex_destroy(&gp->mu);
    ar_free(gp);
    gw->prices = NULL;
}

/* dep's price: its model's config when both prices are set, else the table's, else none. */
static bool price_of(const ar_gw_req_t *g, const ar_deployment_t *dep, ar_price_t *out)
{
    if (!dep)
        return false;
    const ar_model_conf_t *m = dep->model;
    if (m && ar_price_from_config(m->input_cost_per_token, m->output_cost_per_token, out))
        return true;
    struct ar_gw_prices *gp = g->gw->gw->prices;
    const ar_prices_t *table = gp ? atomic_load_explicit(&gp->current, memory_order_acquire) : NULL;
    const ar_price_t *p = ar_prices_find(table, dep->cred->type_name, dep->upstream_model);
    if (!p && g->call.public_model)
        p = ar_prices_find(table, dep->cred->type_name, g->call.public_model);
    if (!p)
        return false;
    *out = *p;
    return true;
}

void ar_gw_price_of(const ar_gw_req_t *g, const ar_deployment_t *dep, double *in, double *out)
{
    ar_price_t p;
    *in = *out = 0;
    if (!price_of(g, dep, &p))
        return;
    *in = p.input > 0 ? p.input : 0;
    *out = p.output > 0 ? p.output : 0;
}

double ar_gw_cost(const ar_gw_req_t *g)
{
    ar_price_t p;
    if (!price_of(g, g->dep, &p))
        return 0;
    const ar_usage_t *u = &g->call.usage;
    ar_cost_usage_t cu = {0};
    if (u->seen) /* the cache and reasoning detail exists only in a reported usage */
        cu = (ar_cost_usage_t){0, 0, u->cached_tokens, u->cache_creation_tokens,
                               u->reasoning_tokens};
    ar_gw_billed_tokens(g, &cu.prompt_tokens, &cu.completion_tokens);
    return cu.prompt_tokens || cu.completion_tokens ? ar_price_cost(&p, &cu) : 0;
}
