/*
 * router.c: building a router from a config generation (deployments, model groups, open
 * credentials) and the attempt accounting. Building happens once per (re)load on the
 * main thread; everything built is read-only afterwards.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "router/router_int.h"

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
    return r;
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

void ar_router_attempt_begin(const ar_deployment_t *d)
{
    atomic_fetch_add_explicit(&d->cred_state->in_flight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->dep_state->in_flight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->cred_state->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->dep_state->requests, 1, memory_order_relaxed);
}

void ar_router_attempt_end(const ar_deployment_t *d, bool failed)
{
    atomic_fetch_sub_explicit(&d->cred_state->in_flight, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&d->dep_state->in_flight, 1, memory_order_relaxed);
    if (failed) {
        atomic_fetch_add_explicit(&d->cred_state->errors, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&d->dep_state->errors, 1, memory_order_relaxed);
    }
}
