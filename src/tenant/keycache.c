/*
 * keycache.c: see keycache.h. Open addressing on the first 64 bits of the key's SHA-256
 * (already uniform): a lookup is a few atomic loads. Writers (store results, refreshes)
 * take one mutex; they are rare next to lookups.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "tenant/keycache.h"

#define MIN_CAP 64
#define UNKNOWN_SLOTS 4096 /* bad keys remembered at once: a flood of them cannot grow memory */

typedef struct table {
    size_t cap; /* a power of two, at most half full */
    _Atomic(ar_tkey_t *) slots[];
} table_t;

typedef struct unknown_slot {
    uint64_t h;
    int64_t until_ms;
} unknown_slot_t;

struct ar_keycache {
    _Atomic(table_t *) table;
    pthread_mutex_t mu; /* writers: table, states, retired */
    size_t cnt;
    ar_tkey_state_t **states; /* by id, open addressing, cap states_cap */
    size_t states_cnt, states_cap;
    /* replaced tables and snapshots, which a reader may still hold: freed with the cache */
    void **retired;
    size_t retired_cnt, retired_cap;
    ar_tkey_conf_t **old_confs;
    size_t old_confs_cnt, old_confs_cap;
    pthread_mutex_t unknown_mu;
    unknown_slot_t unknown[UNKNOWN_SLOTS];
    ar_tkey_t *master;
};

static uint64_t hash_bits(const char *hex)
{
    uint64_t h = 0;
    for (int i = 0; i < 16 && hex[i]; i++)
        h = h << 4 | (uint64_t)(ar_hexval(hex[i]) & 0xf);
    return h;
}

/* The tps counter of one assignment, in its key's state: a list only writers (under the
 * cache's mutex) walk; readers reach a counter through their snapshot's alias. */
struct ar_tkey_tps {
    int64_t assign_id;
    int64_t window_ms;
    ar_window_t win;
    struct ar_tkey_tps *next;
};

static ar_tkey_conf_t *conf_new(const ar_vkey_t *k, const ar_plan_t *plan);
static void init_state(ar_tkey_state_t *s, int64_t id, const ar_usage_totals_t usage[3],
                       int64_t now_ms);

static table_t *table_new(size_t cap)
{
    table_t *t = ar_xcalloc(1, sizeof(*t) + cap * sizeof(t->slots[0]));
    t->cap = cap;
    return t;
}

ar_keycache_t *ar_keycache_new(void)
{
    ar_keycache_t *c = ar_xcalloc(1, sizeof(*c));
    atomic_init(&c->table, table_new(MIN_CAP));
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->unknown_mu, NULL);
    ar_vkey_t m = ar_vkey_unlimited();
    m.name = "master";
    snprintf(m.masked, sizeof(m.masked), "master");
    c->master = ar_xcalloc(1, sizeof(*c->master));
    atomic_init(&c->master->conf, conf_new(&m, NULL));
    c->master->state = ar_xcalloc(1, sizeof(*c->master->state));
    init_state(c->master->state, 0, NULL, 0);
    return c;
}

ar_tkey_t *ar_keycache_master(ar_keycache_t *c)
{
    return c->master;
}

static void conf_free(ar_tkey_conf_t *k)
{
    if (!k)
        return;
    ar_free(k->name);
    ar_free(k->plan_name);
    ar_free(k->plan_description);
    for (size_t i = 0; i < k->models_cnt; i++)
        ar_free(k->models[i]);
    ar_free(k->models);
    for (size_t i = 0; i < k->aliases_cnt; i++) {
        ar_free(k->aliases[i].alias);
        ar_free(k->aliases[i].target);
    }
    ar_free(k->aliases);
    ar_free(k);
}

static void state_free(ar_tkey_state_t *s)
{
    ar_quota_dispose(&s->quota);
    while (s->tps) {
        struct ar_tkey_tps *n = s->tps->next;
        ar_free(s->tps);
        s->tps = n;
    }
    ar_free(s);
}

/* Appends p to a growable array of pointers. */
static void keep(void ***arr, size_t *cnt, size_t *cap, void *p)
{
    if (*cnt == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *arr = ar_xrealloc(*arr, *cap * sizeof(**arr));
    }
    (*arr)[(*cnt)++] = p;
}

void ar_keycache_free(ar_keycache_t *c)
{
    if (!c)
        return;
    table_t *t = atomic_load(&c->table);
    for (size_t i = 0; i < t->cap; i++) {
        ar_tkey_t *k = atomic_load(&t->slots[i]);
        if (k) {
            conf_free((ar_tkey_conf_t *)atomic_load(&k->conf));
            ar_free(k);
        }
    }
    ar_free(t);
    for (size_t i = 0; i < c->states_cap; i++) {
        if (c->states[i])
            state_free(c->states[i]);
    }
    ar_free(c->states);
    for (size_t i = 0; i < c->retired_cnt; i++)
        ar_free(c->retired[i]); /* old tables: their entries live in the current one */
    ar_free(c->retired);
    for (size_t i = 0; i < c->old_confs_cnt; i++)
        conf_free(c->old_confs[i]);
    ar_free(c->old_confs);
    conf_free((ar_tkey_conf_t *)atomic_load(&c->master->conf));
    state_free(c->master->state);
    ar_free(c->master);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->unknown_mu);
    ar_free(c);
}

ar_tkey_t *ar_keycache_find(ar_keycache_t *c, const char *hash)
{
    table_t *t = atomic_load_explicit(&c->table, memory_order_acquire);
    size_t mask = t->cap - 1;
    for (size_t i = hash_bits(hash) & mask;; i = (i + 1) & mask) {
        ar_tkey_t *k = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (!k)
            return NULL;
        if (memcmp(k->hash, hash, AR_KEY_HASH_LEN) == 0)
            return k;
    }
}

/* Under c->mu. */
static void table_insert(table_t *t, ar_tkey_t *k)
{
    size_t mask = t->cap - 1;
    size_t i = hash_bits(k->hash) & mask;
    while (atomic_load_explicit(&t->slots[i], memory_order_relaxed))
        i = (i + 1) & mask;
    atomic_store_explicit(&t->slots[i], k, memory_order_release);
}

static void init_state(ar_tkey_state_t *s, int64_t id, const ar_usage_totals_t usage[3],
                       int64_t now_ms)
{
    s->id = id;
    ar_window_configure(&s->rpm, 60000);
    ar_window_configure(&s->tpm, 60000);
    ar_quota_init(&s->quota, usage ? &usage[0] : NULL, usage ? &usage[1] : NULL,
                  usage ? &usage[2] : NULL, now_ms);
}

/* Under c->mu: the state of key id, made on first use. */
static ar_tkey_state_t *state_of(ar_keycache_t *c, int64_t id, const ar_usage_totals_t usage[3],
                                 int64_t now_ms)
{
    if ((c->states_cnt + 1) * 2 > c->states_cap) {
        size_t cap = c->states_cap ? c->states_cap * 2 : MIN_CAP;
        ar_tkey_state_t **grown = ar_xcalloc(cap, sizeof(*grown));
        for (size_t i = 0; i < c->states_cap; i++) {
            ar_tkey_state_t *s = c->states[i];
            if (!s)
                continue;
            size_t j = (size_t)s->id & (cap - 1);
            while (grown[j])
                j = (j + 1) & (cap - 1);
            grown[j] = s;
        }
        ar_free(c->states);
        c->states = grown;
        c->states_cap = cap;
    }
    size_t mask = c->states_cap - 1;
    size_t i = (size_t)id & mask;
    for (; c->states[i]; i = (i + 1) & mask) {
        if (c->states[i]->id == id)
            return c->states[i];
    }
    ar_tkey_state_t *s = ar_xcalloc(1, sizeof(*s));
    init_state(s, id, usage, now_ms);
    c->states[i] = s;
    c->states_cnt++;
    return s;
}

static ar_tkey_conf_t *conf_new(const ar_vkey_t *k, const ar_plan_t *plan)
{
    ar_tkey_conf_t *n = ar_xcalloc(1, sizeof(*n));
    n->id = k->id;
    n->name = ar_xstrdup(k->name ? k->name : "");
    memcpy(n->masked, k->masked, sizeof(n->masked));
    n->expires_ms = k->expires_ms;
    n->revoked = k->revoked;
    n->rpm = k->rpm;
    n->tpm = k->tpm;
    n->quota =
        (ar_quota_limits_t){k->daily_tokens, k->monthly_tokens, k->limit_tokens, k->max_budget_usd};
    n->plan_max_tokens = -1;
    if (plan) {
        n->plan_name = ar_xstrdup(plan->name ? plan->name : "");
        n->plan_description = ar_xstrdup(plan->description ? plan->description : "");
        n->plan_max_tokens = plan->max_tokens;
    }
    const char *m = k->models ? k->models : "";
    while (*m) {
        const char *end = strchr(m, ',');
        size_t len = end ? (size_t)(end - m) : strlen(m);
        ar_span_t name = ar_span_trim(ar_span(m, len));
        if (name.len) {
            n->models = ar_xrealloc(n->models, (n->models_cnt + 1) * sizeof(*n->models));
            n->models[n->models_cnt++] = ar_xstrndup(name.ptr, name.len);
        }
        m += len + (end ? 1 : 0);
    }
    return n;
}

static ar_tkey_conf_t *conf_copy(const ar_tkey_conf_t *k)
{
    ar_tkey_conf_t *n = ar_xcalloc(1, sizeof(*n));
    *n = *k;
    n->name = ar_xstrdup(k->name);
    n->plan_name = k->plan_name ? ar_xstrdup(k->plan_name) : NULL;
    n->plan_description = k->plan_description ? ar_xstrdup(k->plan_description) : NULL;
    n->models = k->models_cnt ? ar_xcalloc(k->models_cnt, sizeof(*n->models)) : NULL;
    for (size_t i = 0; i < k->models_cnt; i++)
        n->models[i] = ar_xstrdup(k->models[i]);
    return n;
}

/* A tps limit as a sliding window: one second, or 1/tps seconds for one request when
 * tps < 1 (0.5: one request every 2 s). */
static void tps_shape(double tps, int64_t *window_ms, int64_t *limit)
{
    if (tps >= 1) {
        *window_ms = 1000;
        *limit = (int64_t)tps;
    } else {
        *window_ms = (int64_t)(1000.0 / tps);
        *limit = 1;
    }
}

/* Under c->mu: the counter of assignment id in state s, made on first use. */
static ar_window_t *tps_window(ar_tkey_state_t *s, int64_t assign_id, double tps)
{
    int64_t window_ms, limit;
    tps_shape(tps, &window_ms, &limit);
    struct ar_tkey_tps *t = s->tps;
    while (t && t->assign_id != assign_id)
        t = t->next;
    if (!t) {
        t = ar_xcalloc(1, sizeof(*t));
        t->assign_id = assign_id;
        t->next = s->tps;
        s->tps = t;
    }
    if (t->window_ms != window_ms) {
        ar_window_configure(&t->win, window_ms);
        t->window_ms = window_ms;
    }
    return &t->win;
}

/* Under c->mu: the aliases of conf, copied, with their counters in state s. */
static void conf_set_aliases(ar_tkey_conf_t *conf, ar_tkey_state_t *s, const ar_tkey_alias_t *a,
                             size_t n)
{
    if (!n)
        return;
    conf->aliases = ar_xcalloc(n, sizeof(*conf->aliases));
    for (size_t i = 0; i < n; i++) {
        ar_tkey_alias_t *d = &conf->aliases[conf->aliases_cnt++];
        d->assign_id = a[i].assign_id;
        d->alias = ar_xstrdup(a[i].alias ? a[i].alias : "");
        d->target = ar_xstrdup(a[i].target ? a[i].target : "");
        d->tps = a[i].tps;
        d->window = a[i].tps > 0 ? tps_window(s, a[i].assign_id, a[i].tps) : NULL;
    }
}

ar_tkey_t *ar_keycache_put(ar_keycache_t *c, const ar_vkey_t *k, const ar_plan_t *plan,
                           const ar_tkey_alias_t *aliases, size_t aliases_cnt,
                           const ar_usage_totals_t usage[3], int64_t now_ms)
{
    ar_tkey_conf_t *conf = conf_new(k, plan);
    pthread_mutex_lock(&c->mu);
    ar_tkey_t *e = ar_keycache_find(c, k->hash);
    if (e) {
        conf_set_aliases(conf, e->state, aliases, aliases_cnt);
        const ar_tkey_conf_t *old = atomic_exchange(&e->conf, conf);
        keep((void ***)&c->old_confs, &c->old_confs_cnt, &c->old_confs_cap, (void *)old);
        pthread_mutex_unlock(&c->mu);
        return e;
    }
    e = ar_xcalloc(1, sizeof(*e));
    memcpy(e->hash, k->hash, sizeof(e->hash));
    atomic_init(&e->conf, conf);
    e->state = state_of(c, k->id, usage, now_ms);
    conf_set_aliases(conf, e->state, aliases, aliases_cnt); /* before e is published */
    table_t *t = atomic_load(&c->table);
    if ((c->cnt + 1) * 2 > t->cap) {
        table_t *grown = table_new(t->cap * 2);
        for (size_t i = 0; i < t->cap; i++) {
            ar_tkey_t *old = atomic_load(&t->slots[i]);
            if (old)
                table_insert(grown, old);
        }
        atomic_store_explicit(&c->table, grown, memory_order_release);
        keep(&c->retired, &c->retired_cnt, &c->retired_cap, t);
        t = grown;
    }
    table_insert(t, e);
    c->cnt++;
    pthread_mutex_unlock(&c->mu);
    /* known now: a negative answer remembered earlier must not outlive the key's creation */
    pthread_mutex_lock(&c->unknown_mu);
    unknown_slot_t *u = &c->unknown[hash_bits(k->hash) % UNKNOWN_SLOTS];
    if (u->h == hash_bits(k->hash))
        u->until_ms = 0;
    pthread_mutex_unlock(&c->unknown_mu);
    return e;
}

bool ar_keycache_unknown(ar_keycache_t *c, const char *hash, int64_t now_ms)
{
    uint64_t h = hash_bits(hash);
    pthread_mutex_lock(&c->unknown_mu);
    const unknown_slot_t *u = &c->unknown[h % UNKNOWN_SLOTS];
    bool hit = u->h == h && u->until_ms > now_ms;
    pthread_mutex_unlock(&c->unknown_mu);
    return hit;
}

void ar_keycache_remember_unknown(ar_keycache_t *c, const char *hash, int64_t until_ms)
{
    uint64_t h = hash_bits(hash);
    pthread_mutex_lock(&c->unknown_mu);
    c->unknown[h % UNKNOWN_SLOTS] = (unknown_slot_t){h, until_ms};
    pthread_mutex_unlock(&c->unknown_mu);
}

bool ar_tkey_allows(const ar_tkey_conf_t *k, const char *model, size_t len)
{
    if (k->models_cnt == 0 || ar_tkey_alias(k, model, len))
        return true;
    for (size_t i = 0; i < k->models_cnt; i++) {
        if (strlen(k->models[i]) == len && memcmp(k->models[i], model, len) == 0)
            return true;
    }
    return false;
}

const ar_tkey_alias_t *ar_tkey_alias(const ar_tkey_conf_t *k, const char *name, size_t len)
{
    for (size_t i = 0; i < k->aliases_cnt; i++) {
        const ar_tkey_alias_t *a = &k->aliases[i];
        if (strlen(a->alias) == len && memcmp(a->alias, name, len) == 0)
            return a;
    }
    return NULL;
}

bool ar_tkey_alias_admit(const ar_tkey_alias_t *a, uint64_t now_ms, int64_t *retry_ms)
{
    if (!a->window || a->tps <= 0)
        return true;
    int64_t window_ms, limit;
    tps_shape(a->tps, &window_ms, &limit);
    return ar_window_try_add(a->window, now_ms, 1, limit, retry_ms);
}

ar_quota_limits_t ar_tkey_limits(const ar_tkey_conf_t *k)
{
    ar_quota_limits_t l = k->quota;
    if (k->plan_max_tokens >= 0 && (l.total_tokens < 0 || k->plan_max_tokens < l.total_tokens))
        l.total_tokens = k->plan_max_tokens;
    return l;
}

void ar_keycache_each(ar_keycache_t *c, void (*fn)(void *ud, ar_tkey_t *k), void *ud)
{
    pthread_mutex_lock(&c->mu);
    table_t *t = atomic_load(&c->table);
    for (size_t i = 0; i < t->cap; i++) {
        ar_tkey_t *k = atomic_load(&t->slots[i]);
        if (k)
            fn(ud, k);
    }
    pthread_mutex_unlock(&c->mu);
}

bool ar_keycache_has_id(ar_keycache_t *c, int64_t id)
{
    pthread_mutex_lock(&c->mu);
    bool found = false;
    if (c->states_cap) {
        size_t mask = c->states_cap - 1;
        for (size_t i = (size_t)id & mask; c->states[i] && !found; i = (i + 1) & mask)
            found = c->states[i]->id == id;
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

void ar_keycache_revoke_others(ar_keycache_t *c, int64_t id, const char *keep_hash)
{
    pthread_mutex_lock(&c->mu);
    table_t *t = atomic_load(&c->table);
    for (size_t i = 0; i < t->cap; i++) {
        ar_tkey_t *k = atomic_load(&t->slots[i]);
        const ar_tkey_conf_t *old = k ? atomic_load(&k->conf) : NULL;
        if (!old || old->id != id || old->revoked ||
            memcmp(k->hash, keep_hash, AR_KEY_HASH_LEN) == 0)
            continue;
        ar_tkey_conf_t *gone = conf_copy(old);
        gone->revoked = true;
        atomic_store(&k->conf, gone);
        keep((void ***)&c->old_confs, &c->old_confs_cnt, &c->old_confs_cap, (void *)old);
    }
    pthread_mutex_unlock(&c->mu);
}

long ar_keycache_count(ar_keycache_t *c)
{
    pthread_mutex_lock(&c->mu);
    long n = (long)c->cnt;
    pthread_mutex_unlock(&c->mu);
    return n;
}
