/*
 * common.c: what every admin page shares (see admin_int.h): the sticky-error writer, the
 * ordered list of deployment states, ban and breaker conversions and the degraded rule.
 * It only reads the router's state, through its getters and atomics; it takes no lock
 * and changes nothing.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_int.h"
#include "core/mem.h"

/* ---- writer ---- */

void ar_admin__putn(ar_admin_w_t *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = ar_buf_append(w->out, s, n);
}

void ar_admin__puts(ar_admin_w_t *w, const char *s)
{
    ar_admin__putn(w, s, strlen(s));
}

void ar_admin__putf(ar_admin_w_t *w, const char *fmt, ...)
{
    if (w->rc != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    w->rc = ar_buf_vappendf(w->out, fmt, ap);
    va_end(ap);
}

void ar_admin__put_jstr(ar_admin_w_t *w, const char *s)
{
    if (!s) {
        ar_admin__putn(w, "null", 4);
        return;
    }
    ar_admin__putn(w, "\"", 1);
    if (w->rc == 0)
        w->rc = ar_buf_append_json_escaped(w->out, ar_span_cstr(s));
    ar_admin__putn(w, "\"", 1);
}

void ar_admin__put_i64(ar_admin_w_t *w, int64_t v)
{
    ar_admin__putf(w, "%" PRId64, v < 0 ? (int64_t)-1 : v);
}

void ar_admin__put_html(ar_admin_w_t *w, const char *s)
{
    if (!s)
        return;
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *ent = NULL;
        switch (*p) {
        case '&': ent = "&amp;"; break;
        case '<': ent = "&lt;"; break;
        case '>': ent = "&gt;"; break;
        case '"': ent = "&quot;"; break;
        case '\'': ent = "&#39;"; break;
        default: continue;
        }
        ar_admin__putn(w, run, (size_t)(p - run));
        ar_admin__puts(w, ent);
        run = p + 1;
    }
    ar_admin__puts(w, run);
}

/* ---- the deployment states of the current config ---- */

typedef struct cred_key {
    const char *name;
    size_t idx;
} cred_key_t;

static int cmp_cred_key(const void *a, const void *b)
{
    return strcmp(((const cred_key_t *)a)->name, ((const cred_key_t *)b)->name);
}

static int cmp_ref(const void *a, const void *b)
{
    const ar_admin_ref_t *x = a;
    const ar_admin_ref_t *y = b;
    if (x->s != y->s)
        return (uintptr_t)x->s < (uintptr_t)y->s ? -1 : 1;
    return x->dep_idx < y->dep_idx ? -1 : x->dep_idx > y->dep_idx;
}

static int cmp_dep(const void *a, const void *b)
{
    const ar_admin_dep_t *x = a;
    const ar_admin_dep_t *y = b;
    if (x->cred_idx != y->cred_idx)
        return x->cred_idx < y->cred_idx ? -1 : 1;
    return strcmp(x->s->model_name, y->s->model_name);
}

typedef struct collect {
    ar_admin_deps_t *out;
    const cred_key_t *creds;
    size_t creds_cnt;
} collect_t;

static void collect_one(ar_target_state_t *s, void *ud)
{
    collect_t *c = ud;
    cred_key_t key = {s->cred_name, 0};
    const cred_key_t *hit = bsearch(&key, c->creds, c->creds_cnt, sizeof(key), cmp_cred_key);
    if (!hit)
        return; /* a credential an earlier config had */
    ar_admin_deps_t *d = c->out;
    if (d->cnt == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->items = ar_xrealloc(d->items, d->cap * sizeof(*d->items));
    }
    ar_admin_ref_t probe = {s, 0};
    ar_admin_dep_t *it = &d->items[d->cnt++];
    it->s = s;
    it->cred_idx = hit->idx;
    it->is_explicit = false;
    it->first_ref = 0;
    /* refs is sorted by state, then index: the lower bound of (s, 0) is its first entry */
    size_t lo = 0;
    size_t hi = d->refs_cnt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_ref(&d->refs[mid], &probe) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < d->refs_cnt && d->refs[lo].s == s) {
        it->is_explicit = true;
        it->first_ref = lo;
    }
}

void ar_admin__deps_collect(const ar_admin_view_t *v, ar_admin_deps_t *out)
{
    memset(out, 0, sizeof(*out));
    const ar_config_t *cfg = v->cfg;
    size_t n = ar_router_dep_cnt(v->router);
    out->refs = ar_xcalloc(n ? n : 1, sizeof(*out->refs));
    for (size_t i = 0; i < n; i++)
        out->refs[i] = (ar_admin_ref_t){ar_router_dep(v->router, i)->dep_state, i};
    out->refs_cnt = n;
    qsort(out->refs, n, sizeof(*out->refs), cmp_ref);

    size_t cc = cfg->credentials_cnt;
    cred_key_t *creds = ar_xcalloc(cc ? cc : 1, sizeof(*creds));
    for (size_t i = 0; i < cc; i++)
        creds[i] = (cred_key_t){cfg->credentials[i].name, i};
    qsort(creds, cc, sizeof(*creds), cmp_cred_key);
    collect_t c = {out, creds, cc};
    ar_router_state_foreach(v->state, collect_one, &c);
    ar_free(creds);
    if (out->cnt)
        qsort(out->items, out->cnt, sizeof(*out->items), cmp_dep);
}

void ar_admin__deps_dispose(ar_admin_deps_t *d)
{
    ar_free(d->items);
    ar_free(d->refs);
    memset(d, 0, sizeof(*d));
}

bool ar_admin__dep_used(const ar_target_state_t *s)
{
    return atomic_load_explicit(&s->requests, memory_order_relaxed) > 0 ||
           atomic_load_explicit(&s->in_flight, memory_order_relaxed) > 0;
}

/* ---- conversions ---- */

void ar_admin__rfc3339(int64_t wall_ms, char out[32])
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

ar_admin_ban_t ar_admin__ban(const ar_admin_view_t *v, const ar_target_state_t *cs,
                             int64_t *until_wall_ms)
{
    *until_wall_ms = 0;
    if (!ar_ban_active(&cs->ban, v->now_ms))
        return AR_ADMIN_BAN_NONE;
    int64_t until = atomic_load_explicit(&cs->ban.until_ms, memory_order_relaxed);
    if (until == INT64_MAX)
        return AR_ADMIN_BAN_PERMANENT;
    /* the ban ends on the monotonic clock: shift it onto the wall clock of this view */
    *until_wall_ms = v->wall_ms + (until - (int64_t)v->now_ms);
    return AR_ADMIN_BAN_UNTIL;
}

void ar_admin__put_ban_until(ar_admin_w_t *w, ar_admin_ban_t b, int64_t until_wall_ms)
{
    char ts[32];
    switch (b) {
    case AR_ADMIN_BAN_NONE: ar_admin__puts(w, "null"); break;
    case AR_ADMIN_BAN_PERMANENT: ar_admin__puts(w, "\"permanent\""); break;
    case AR_ADMIN_BAN_UNTIL:
        ar_admin__rfc3339(until_wall_ms, ts);
        ar_admin__put_jstr(w, ts);
        break;
    }
}

ar_breaker_state_t ar_admin__breaker(const ar_admin_view_t *v, const ar_target_state_t *s)
{
    return ar_breaker_state(&s->breaker, &v->cfg->circuit_breaker, v->now_ms);
}

void ar_admin__dep_limits(const ar_admin_view_t *v, const ar_admin_deps_t *deps,
                          const ar_admin_dep_t *d, int64_t *rpm, int64_t *tpm)
{
    if (d->is_explicit) {
        ar_router_dep_limits(v->router, ar_router_dep(v->router, deps->refs[d->first_ref].dep_idx),
                             rpm, tpm);
        return;
    }
    /* no `models:` entry: the router applies what it applies to implicit deployments */
    ar_deployment_t implicit;
    memset(&implicit, 0, sizeof(implicit));
    implicit.cred = &v->cfg->credentials[d->cred_idx];
    implicit.cred_idx = d->cred_idx;
    ar_router_dep_limits(v->router, &implicit, rpm, tpm);
}

bool ar_admin__degraded(const ar_admin_view_t *v, const ar_admin_deps_t *deps)
{
    if (v->draining)
        return true;
    /* the fleet's limits are this instance's share of them until Redis is back */
    if (v->redis_configured && !v->redis.up)
        return true;
    for (size_t i = 0; i < v->cfg->credentials_cnt; i++) {
        if (ar_ban_active(&ar_router_cred_state(v->router, i)->ban, v->now_ms))
            return true;
    }
    for (size_t i = 0; i < deps->cnt; i++) {
        const ar_admin_dep_t *d = &deps->items[i];
        if (!d->is_explicit && !ar_admin__dep_used(d->s))
            continue;
        if (ar_admin__breaker(v, d->s) != AR_BREAKER_CLOSED)
            return true;
    }
    return false;
}
