/*
 * candidates.c: turning the model a client asked for into the ordered list of
 * deployments to try (SPEC section 4). Names resolve to the `models:` entries that share
 * them, else to open credentials (those without entries, limited to their discovered
 * models when discovery ran); "credential/model" and "type/model" pin a provider. Each
 * name's candidates are ordered by the strategy; names keep the client's priority order;
 * is_fallback credentials go last.
 */
#include <string.h>

#include "router/router_int.h"

typedef struct resolve {
    ar_router_t *r;
    ar_pool_t *pool;
    const ar_deployment_t **items;
    size_t cnt, cap;
    bool matched; /* some deployment serves a name, available or not */
    uint64_t now_ms;
} resolve_t;

static const ar_group_t *find_group(const ar_router_t *r, ar_span_t name)
{
    for (size_t i = 0; i < r->groups_cnt; i++) {
        if (ar_span_eq(ar_span_cstr(r->groups[i].name), name))
            return &r->groups[i];
    }
    return NULL;
}

static bool listed(const ar_strlist_t *l, ar_span_t name)
{
    for (size_t i = 0; i < l->cnt; i++) {
        if (ar_span_eq(ar_span_cstr(l->items[i]), name))
            return true;
    }
    return false;
}

static bool already(const resolve_t *rs, const ar_deployment_t *d)
{
    for (size_t i = 0; i < rs->cnt; i++) {
        const ar_deployment_t *e = rs->items[i];
        if (e == d || (e->cred_idx == d->cred_idx && !e->model && !d->model &&
                       strcmp(e->upstream_model, d->upstream_model) == 0))
            return true;
    }
    return false;
}

static void push(resolve_t *rs, const ar_deployment_t *d)
{
    if (already(rs, d))
        return;
    if (rs->cnt == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 8;
        const ar_deployment_t **n = ar_pool_alloc(rs->pool, cap * sizeof(*n));
        if (rs->cnt)
            memcpy(n, rs->items, rs->cnt * sizeof(*n));
        rs->items = n;
        rs->cap = cap;
    }
    rs->items[rs->cnt++] = d;
}

/* A deployment of an open credential for a model name, made for this request. */
static const ar_deployment_t *implicit(resolve_t *rs, size_t cred_idx, ar_span_t model)
{
    const ar_config_t *cfg = rs->r->cfg;
    const ar_cred_conf_t *c = &cfg->credentials[cred_idx];
    ar_deployment_t *d = ar_pool_calloc(rs->pool, sizeof(*d));
    char *name = ar_pool_strdup_span(rs->pool, model);
    d->cred = c;
    d->cred_idx = cred_idx;
    d->name = name;
    d->upstream_model = name;
    d->weight = c->weight;
    d->is_fallback = c->is_fallback;
    d->cred_state = ar_router_state_get(rs->r->st, c->name, NULL);
    /* Names the upstream listed get a state of their own; any other name shares the
     * credential's "*" state, so client-chosen names cannot grow the table or the
     * metrics' label sets. */
    bool listed_here = rs->r->has_discovered[cred_idx];
    d->dep_state = ar_router_state_get(rs->r->st, c->name, listed_here ? name : "*");
    return d;
}

/* -1: no pin; otherwise credential index, or -(type+2) for a type pin. */
static long pin_of(const ar_router_t *r, ar_span_t prefix)
{
    const ar_config_t *cfg = r->cfg;
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        if (ar_span_eq(ar_span_cstr(cfg->credentials[i].name), prefix))
            return (long)i;
    }
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        if (cfg->credentials[i].type_name &&
            ar_span_eq(ar_span_cstr(cfg->credentials[i].type_name), prefix))
            return -((long)cfg->credentials[i].type + 2);
    }
    return -1;
}

static bool pin_allows(const ar_router_t *r, long pin, size_t cred_idx)
{
    if (pin == -1)
        return true;
    if (pin >= 0)
        return (size_t)pin == cred_idx;
    return (long)r->cfg->credentials[cred_idx].type == -pin - 2;
}

static void resolve_name(resolve_t *rs, ar_span_t spec)
{
    ar_router_t *r = rs->r;
    ar_span_t name = spec;
    long pin = -1;
    const char *slash = spec.len ? memchr(spec.ptr, '/', spec.len) : NULL; /* ptr may be NULL */
    if (slash && !find_group(r, spec)) {
        ar_span_t prefix = ar_span(spec.ptr, (size_t)(slash - spec.ptr));
        long p = pin_of(r, prefix);
        if (p != -1) {
            pin = p;
            name = ar_span(slash + 1, spec.len - prefix.len - 1);
        }
    }
    size_t start = rs->cnt;
    const ar_group_t *g = find_group(r, name);
    bool explicit_hit = false;
    if (g) {
        for (size_t i = 0; i < g->deps_cnt; i++) {
            const ar_deployment_t *d = &r->deps[g->deps[i]];
            if (!pin_allows(r, pin, d->cred_idx))
                continue;
            rs->matched = true;
            explicit_hit = true;
            if (d->model && !d->model->available)
                continue;
            push(rs, d);
        }
    }
    if (!explicit_hit) {
        /* Open credentials serve any name (or their discovered ones); a credential
         * pinned by name serves the name even if it has entries for others. */
        for (size_t i = 0; i < r->cfg->credentials_cnt; i++) {
            bool open = false;
            for (size_t k = 0; k < r->open_cnt; k++)
                open = open || r->open_creds[k] == i;
            if (!(open || pin == (long)i) || !pin_allows(r, pin, i))
                continue;
            if (r->has_discovered[i] && !listed(&r->discovered[i], name))
                continue;
            rs->matched = true;
            push(rs, implicit(rs, i, name));
        }
    }
    if (rs->cnt - start > 1) {
        _Atomic uint64_t *counter = g && explicit_hit ? (_Atomic uint64_t *)&g->rr : &r->open_rr;
        ar_router__order(r, rs->items + start, rs->cnt - start, counter, rs->now_ms);
    }
}

static void resolve_auto(resolve_t *rs)
{
    ar_router_t *r = rs->r;
    size_t start = rs->cnt;
    for (size_t i = 0; i < r->deps_cnt; i++) {
        if (r->deps[i].model->from_store)
            continue; /* reached only through the alias of a key it is assigned to */
        rs->matched = true;
        if (r->deps[i].model->available)
            push(rs, &r->deps[i]);
    }
    if (rs->cnt - start > 1)
        ar_router__order(r, rs->items + start, rs->cnt - start, &r->open_rr, rs->now_ms);
}

int ar_router_candidates(ar_router_t *r, ar_pool_t *pool, const ar_route_query_t *q,
                         ar_candidates_t *out)
{
    resolve_t rs = {.r = r, .pool = pool, .now_ms = q->now_ms};
    bool any_auto = q->models_cnt == 0;
    for (size_t i = 0; i < q->models_cnt; i++) {
        if (ar_span_eq(q->models[i], AR_LIT("auto")))
            any_auto = true;
        else
            resolve_name(&rs, q->models[i]);
    }
    if (any_auto)
        resolve_auto(&rs);
    /* primaries first, then is_fallback ones, each keeping its order */
    const ar_deployment_t **sorted = ar_pool_alloc(pool, (rs.cnt ? rs.cnt : 1) * sizeof(*sorted));
    size_t n = 0;
    for (size_t i = 0; i < rs.cnt; i++) {
        if (!rs.items[i]->is_fallback)
            sorted[n++] = rs.items[i];
    }
    out->primary_cnt = n;
    for (size_t i = 0; i < rs.cnt; i++) {
        if (rs.items[i]->is_fallback)
            sorted[n++] = rs.items[i];
    }
    out->items = sorted;
    out->cnt = n;
    out->empty_reason = 0;
    out->unknown_model = NULL;
    if (n == 0) {
        out->empty_reason = rs.matched ? AR_EUNAVAIL : AR_ENOTFOUND;
        if (!rs.matched && q->models_cnt)
            out->unknown_model = ar_pool_strdup_span(pool, q->models[0]);
    }
    return 0;
}
