/*
 * candidates.c: turning the model a client asked for into the ordered list of
 * deployments to try (SPEC section 4). Names resolve to the `models:` entries that share
 * them, else to open credentials (those without entries, limited to their discovered
 * models when discovery ran); "credential/model" and "type/model" pin a provider; "auto"
 * (or no name) is every deployment. The request's filters (tags, type, min_context_size,
 * json_response, min_success_rate) drop deployments as they are found. Each name's
 * candidates are ordered by the strategy ("auto"'s by smart); names keep the client's
 * priority order; is_fallback credentials go last; prefer_fast moves the fastest first.
 */
#include <stdio.h>
#include <string.h>

#include "router/router_int.h"

typedef struct resolve {
    ar_router_t *r;
    ar_pool_t *pool;
    const ar_deployment_t **items;
    size_t cnt, cap;
    bool matched; /* some deployment serves a name, available or not */
    uint64_t now_ms;
    const ar_route_filter_t *filter; /* NULL: none */
    unsigned filtered;               /* AR_FILTER_* bits that removed a deployment */
} resolve_t;

static const struct {
    unsigned bit;
    const char *name;
} filter_names[] = {
    {AR_FILTER_TAGS, "tags"},
    {AR_FILTER_TYPE, "type"},
    {AR_FILTER_CONTEXT, "min_context_size"},
    {AR_FILTER_JSON, "json_response"},
    {AR_FILTER_SUCCESS, "min_success_rate"},
};

const char *ar_route_filter_names(unsigned bits, char *buf, size_t len)
{
    size_t n = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof(filter_names) / sizeof(filter_names[0]); i++) {
        if (!(bits & filter_names[i].bit) || n >= len)
            continue;
        int w = snprintf(buf + n, len - n, "%s%s", n ? ", " : "", filter_names[i].name);
        n += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

static bool has_tag(const ar_strlist_t *tags, const char *tag)
{
    for (size_t i = 0; i < tags->cnt; i++) {
        if (strcmp(tags->items[i], tag) == 0)
            return true;
    }
    return false;
}

/* The filters d fails, as AR_FILTER_* bits (0: it passes every one). A deployment without
 * a `models:` entry declares no tags, type, context size or JSON mode. */
static unsigned filter_fails(const resolve_t *rs, const ar_deployment_t *d)
{
    const ar_route_filter_t *f = rs->filter;
    if (!f)
        return 0;
    const ar_model_conf_t *m = d->model;
    unsigned bits = 0;
    for (size_t i = 0; i < f->tags_cnt && !(bits & AR_FILTER_TAGS); i++) {
        if (!m || !has_tag(&m->tags, f->tags[i]))
            bits |= AR_FILTER_TAGS;
    }
    if (f->kind != AR_MODEL_KIND_ANY && (!m || m->kind != f->kind))
        bits |= AR_FILTER_TYPE;
    if (f->min_context_size > 0 && (!m || m->context_size < f->min_context_size))
        bits |= AR_FILTER_CONTEXT;
    if (f->json_response && !(m && m->json_response))
        bits |= AR_FILTER_JSON;
    if (f->min_success_rate > 0 &&
        ar_router_success_rate(d->dep_state, rs->now_ms) < f->min_success_rate)
        bits |= AR_FILTER_SUCCESS;
    return bits;
}

/* Whether d passes the filters; the ones it fails are remembered for the 503 message. */
static bool wanted(resolve_t *rs, const ar_deployment_t *d)
{
    unsigned bits = filter_fails(rs, d);
    rs->filtered |= bits;
    return bits == 0;
}

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
            if ((d->model && !d->model->available) || !wanted(rs, d))
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
            const ar_deployment_t *d = implicit(rs, i, name);
            if (wanted(rs, d))
                push(rs, d);
        }
    }
    if (rs->cnt - start > 1) {
        _Atomic uint64_t *counter = g && explicit_hit ? (_Atomic uint64_t *)&g->rr : &r->open_rr;
        ar_router__order(r, r->cfg->routing.strategy, rs->items + start, rs->cnt - start, counter,
                         rs->now_ms);
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
        if (r->deps[i].model->available && wanted(rs, &r->deps[i]))
            push(rs, &r->deps[i]);
    }
    /* "auto" is smart selection whatever the configured strategy (SPEC section 3) */
    if (rs->cnt - start > 1)
        ar_router__order(r, AR_STRATEGY_SMART, rs->items + start, rs->cnt - start, &r->open_rr,
                         rs->now_ms);
}

/* prefer_fast: the primary with the lowest measured TTFB goes first; the others keep their
 * order behind it. Unmeasured ones are never preferred (nothing says they are fast). */
static void prefer_fast(const ar_deployment_t **items, size_t n)
{
    size_t best = 0;
    double best_us = 0;
    for (size_t i = 0; i < n; i++) {
        double t = ar_router__ttfb_us(items[i]);
        if (t > 0 && (best_us == 0 || t < best_us)) {
            best = i;
            best_us = t;
        }
    }
    const ar_deployment_t *d = items[best];
    memmove(items + 1, items, best * sizeof(*items));
    items[0] = d;
}

int ar_router_candidates(ar_router_t *r, ar_pool_t *pool, const ar_route_query_t *q,
                         ar_candidates_t *out)
{
    resolve_t rs = {.r = r, .pool = pool, .now_ms = q->now_ms, .filter = q->filter};
    /* names in the client's order; "auto" where it stands (usually last) */
    for (size_t i = 0; i < q->models_cnt; i++) {
        if (ar_span_eq(q->models[i], AR_LIT("auto")))
            resolve_auto(&rs);
        else
            resolve_name(&rs, q->models[i]);
    }
    if (q->models_cnt == 0)
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
    if (q->filter && q->filter->prefer_fast && out->primary_cnt > 1)
        prefer_fast(sorted, out->primary_cnt);
    out->items = sorted;
    out->cnt = n;
    out->empty_reason = 0;
    out->unknown_model = NULL;
    out->filtered = rs.filtered;
    if (n == 0) {
        out->empty_reason = rs.matched ? AR_EUNAVAIL : AR_ENOTFOUND;
        if (!rs.matched && q->models_cnt)
            out->unknown_model = ar_pool_strdup_span(pool, q->models[0]);
    }
    return 0;
}
