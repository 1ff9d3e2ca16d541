/*
 * tenancy.c: the running server's side of the store (SPEC section 6). The store threads
 * (a pool with PostgreSQL: thread.h) own the database; workers submit jobs to them and get
 * their answers back on their own loop, so no database call ever runs on an event loop.
 * The poller's jobs are serial (they keep the last change counter and models digest). Two
 * jobs that both put one key into the cache may finish in either order: a lookup that read
 * a key just before an admin change may put the old version back after the admin's
 * refresh; the next poll reads keys changed in the last poll interval plus 2 s again, so
 * such a stale entry lives no longer than one key_cache_ttl, as with a change made by
 * another instance. This file opens the store and the
 * spend ledger, looks keys up for auth.c, keeps the key cache fresh by polling the store
 * for changes, turns the store's connections and models into runtime entries, and counts
 * the work still on its way to a worker so that shutdown waits for it. spend.c writes the
 * records.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "gateway/gateway_int.h"
#include "store/secret.h"
#include "store/thread.h"
#include "tenant/ledger.h"

/* The applier runs SCHED_IDLE; where that is refused, at this niceness. */
#define LEDGER_NICE 10

struct ar_gw_tenancy {
    ar_store_thread_t *store;
    ar_store_thread_t *applier; /* the ledger's (NULL: the store thread applies it) */
    ar_ledger_t *ledger;
    char id_prefix[13]; /* random per process: spend record ids never repeat */
    _Atomic uint64_t id_seq;
    ar_keycache_t *keys;
    int64_t ttl_ms;
    _Atomic long outstanding; /* jobs whose answer a worker has not run yet */
    /* the poller: a timer on the main loop, a job on the store thread */
    uv_timer_t poll;
    bool poll_init;
    _Atomic bool poll_busy;
    _Atomic int64_t polled_since_ms; /* wall clock: keys changed since then are read again */
    /* store connections and models: read again when the store's change counter moves */
    ar_gateway_t *gw;
    char *secret_key;                /* storage.secret_key at start (NULL: none) */
    const char *store_type;          /* "sqlite" or "postgresql" (the admin API says which) */
    int64_t seen_seq;                /* store thread: the counter when last read */
    bool had_assigns;                /* store thread: the last read found assignments */
    unsigned char models_digest[32]; /* store thread: SHA-256 of the last set posted */
    uv_async_t models_async;         /* main loop: a new read is waiting in pending_models */
    bool async_init; /* under async_mu: the store thread sends, the main loop closes */
    pthread_mutex_t async_mu;
    _Atomic(ar_gw_store_models_t *) pending_models;
};

/* Every job handed back to a worker starts with this. */
typedef struct job_hdr {
    void (*done)(void *arg);
    ar_gw_tenancy_t *t;
} job_hdr_t;

ar_keycache_t *ar_gw_tenancy_keys(ar_gw_tenancy_t *t)
{
    return t->keys;
}

int64_t ar_gw_tenancy_ttl_ms(const ar_gateway_t *gw)
{
    return gw->tenancy ? gw->tenancy->ttl_ms : 0;
}

static void run_on_worker(ar_worker_t *w, void *arg)
{
    (void)w;
    job_hdr_t *h = arg;
    ar_gw_tenancy_t *t = h->t;
    h->done(arg);
    atomic_fetch_sub(&t->outstanding, 1);
}

/* The store thread's post function: the answer runs on the submitting worker. */
static void post_to_worker(void *worker, void (*done)(void *arg), void *arg)
{
    ((job_hdr_t *)arg)->done = done;
    ar_worker_post(worker, run_on_worker, arg);
}

static int submit_to_store(ar_gw_tenancy_t *t, ar_worker_t *w, void (*work)(ar_store_t *, void *),
                           void (*done)(void *), job_hdr_t *arg)
{
    arg->t = t;
    atomic_fetch_add(&t->outstanding, 1);
    ar_store_job_t j = {work, done, w ? post_to_worker : NULL, w, arg, false};
    int rc = ar_store_thread_submit(t->store, &j);
    if (rc != 0)
        atomic_fetch_sub(&t->outstanding, 1);
    return rc;
}

/* ---- key lookups ---- */

typedef struct lookup {
    job_hdr_t hdr;
    ar_http_request_t *req;
    void (*cb)(ar_http_request_t *req);
    char hash[AR_KEY_HASH_LEN + 1];
    int rc; /* the store's answer */
} lookup_t;

/* The plan of id from the store, or NULL (caller frees with ar_store_plan_list_free). */
static const ar_plan_t *plan_of(ar_store_t *s, int64_t id, ar_plan_list_t *plans)
{
    memset(plans, 0, sizeof(*plans));
    if (id <= 0 || ar_store_plan_list(s, plans) != 0)
        return NULL;
    for (size_t i = 0; i < plans->cnt; i++) {
        if (plans->items[i].id == id)
            return &plans->items[i];
    }
    return NULL;
}

static char *store_cred_name(const char *conn)
{
    size_t n = strlen(conn) + 7;
    char *s = ar_xmalloc(n);
    snprintf(s, n, "store:%s", conn);
    return s;
}

static char *store_model_name(const char *conn, const char *model)
{
    size_t n = strlen(conn) + strlen(model) + 8;
    char *s = ar_xmalloc(n);
    snprintf(s, n, "store:%s/%s", conn, model);
    return s;
}

/* Store thread: the assignments of key id as aliases (targets: internal model names). */
static ar_tkey_alias_t *key_aliases(ar_store_t *s, int64_t key_id, size_t *cnt)
{
    ar_assign_list_t al = {0};
    ar_pmodel_list_t pm = {0};
    ar_conn_list_t cl = {0};
    ar_tkey_alias_t *out = NULL;
    *cnt = 0;
    if (ar_store_assign_list(s, key_id, &al) != 0 || al.cnt == 0)
        goto done;
    if (ar_store_model_list(s, 0, &pm) != 0 || ar_store_conn_list(s, &cl) != 0) {
        AR_LOG(AR_LOG_ERROR, NULL, "store: reading the models of key %lld failed",
               (long long)key_id);
        goto done;
    }
    out = ar_xcalloc(al.cnt, sizeof(*out));
    for (size_t i = 0; i < al.cnt; i++) {
        const ar_pmodel_t *m = NULL;
        const ar_conn_t *c = NULL;
        for (size_t j = 0; j < pm.cnt && !m; j++)
            m = pm.items[j].id == al.items[i].model_id ? &pm.items[j] : NULL;
        for (size_t j = 0; m && j < cl.cnt && !c; j++)
            c = cl.items[j].id == m->conn_id ? &cl.items[j] : NULL;
        if (!c)
            continue;
        ar_tkey_alias_t *a = &out[(*cnt)++];
        a->assign_id = al.items[i].id;
        a->alias = ar_xstrdup(al.items[i].alias);
        a->target = store_model_name(c->name, m->name);
        a->tps = al.items[i].tps;
    }
done:
    ar_store_assign_list_free(&al);
    ar_store_model_list_free(&pm);
    ar_store_conn_list_free(&cl);
    return out;
}

static void aliases_free(ar_tkey_alias_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ar_free(a[i].alias);
        ar_free(a[i].target);
    }
    ar_free(a);
}

/* Store thread: a key read from the store goes into the cache with its plan, usage and
 * assigned models. */
static void cache_key(ar_gw_tenancy_t *t, ar_store_t *s, const ar_vkey_t *k)
{
    ar_plan_list_t plans;
    const ar_plan_t *plan = plan_of(s, k->plan_id, &plans);
    int64_t now = ar_wall_ms();
    ar_usage_totals_t usage[3];
    memset(usage, 0, sizeof(usage));
    if (ar_store_usage(s, k->id, now, &usage[0], &usage[1], &usage[2]) != 0)
        AR_LOG(AR_LOG_ERROR, NULL, "store: reading the usage of key %lld failed", (long long)k->id);
    size_t aliases_cnt = 0;
    ar_tkey_alias_t *aliases = key_aliases(s, k->id, &aliases_cnt);
    ar_keycache_put(t->keys, k, plan, aliases, aliases_cnt, usage, now);
    ar_keycache_revoke_others(t->keys, k->id, k->hash);
    aliases_free(aliases, aliases_cnt);
    ar_store_plan_list_free(&plans);
}

void ar_gw_tenancy_refresh_key(ar_gateway_t *gw, ar_store_t *s, int64_t id)
{
    ar_gw_tenancy_t *t = gw->tenancy;
    if (!t || !ar_keycache_has_id(t->keys, id))
        return; /* a key never used here is read when first used */
    ar_vkey_t k;
    if (ar_store_key_get(s, id, NULL, &k) == 0) {
        cache_key(t, s, &k);
        ar_vkey_free(&k);
    }
}

static void lookup_work(ar_store_t *s, void *arg)
{
    lookup_t *l = arg;
    ar_vkey_t k;
    int rc = l->rc = ar_store_key_get(s, 0, l->hash, &k);
    if (rc == 0) {
        cache_key(l->hdr.t, s, &k);
        ar_vkey_free(&k);
    } else if (rc == AR_ENOTFOUND) {
        /* a database that did not answer (AR_EIO) says nothing of the key: the next
         * request with it asks again */
        ar_keycache_remember_unknown(l->hdr.t->keys, l->hash,
                                     (int64_t)ar_now_ms() + l->hdr.t->ttl_ms);
    }
}

static void lookup_done(void *arg)
{
    lookup_t *l = arg;
    if (l->rc != 0 && l->rc != AR_ENOTFOUND)
        ((ar_gw_ctx_t *)l->req->data)->auth_store_failed = true;
    l->cb(l->req);
    ar_http_unref(l->req);
    ar_free(l);
}

int ar_gw_key_lookup(ar_http_request_t *req, const char *hash, void (*cb)(ar_http_request_t *req))
{
    ar_gw_tenancy_t *t = ((ar_gw_worker_t *)req->worker->data)->gw->tenancy;
    if (!t)
        return AR_ESHUTDOWN;
    lookup_t *l = ar_xcalloc(1, sizeof(*l));
    l->req = req;
    l->cb = cb;
    memcpy(l->hash, hash, sizeof(l->hash));
    ar_http_ref(req);
    int rc = submit_to_store(t, req->worker, lookup_work, lookup_done, &l->hdr);
    if (rc != 0) {
        ar_http_unref(req);
        ar_free(l);
    }
    return rc;
}

/* ---- jobs of other gateway files ---- */

typedef struct store_call {
    job_hdr_t hdr; /* first: the job's argument */
    ar_http_request_t *req;
    void (*work)(ar_store_t *s, void *arg);
    void (*done)(ar_http_request_t *req, void *arg);
    void *arg;
} store_call_t;

static void store_call_work(ar_store_t *s, void *arg)
{
    store_call_t *c = arg;
    c->work(s, c->arg);
}

static void store_call_done(void *arg)
{
    store_call_t *c = arg;
    if (c->done)
        c->done(c->req, c->arg);
    ar_http_unref(c->req);
    ar_free(c);
}

int ar_gw_store_call(ar_gateway_t *gw, ar_http_request_t *req,
                     void (*work)(ar_store_t *s, void *arg),
                     void (*done)(ar_http_request_t *req, void *arg), void *arg)
{
    ar_gw_tenancy_t *t = gw->tenancy;
    if (!t)
        return AR_ESHUTDOWN;
    store_call_t *c = ar_xcalloc(1, sizeof(*c));
    *c = (store_call_t){.req = req, .work = work, .done = done, .arg = arg};
    ar_http_ref(req);
    int rc = submit_to_store(t, req->worker, store_call_work, store_call_done, &c->hdr);
    if (rc != 0) {
        ar_http_unref(req);
        ar_free(c);
    }
    return rc;
}

/* ---- store connections and provider models ---- */

void ar_gw_store_models_free(ar_gw_store_models_t *sm)
{
    if (!sm)
        return;
    for (size_t i = 0; i < sm->creds_cnt; i++) {
        ar_config_extra_cred_t *c = &sm->creds[i];
        ar_free((char *)c->name);
        ar_free((char *)c->type);
        ar_free((char *)c->base_url);
        ar_secret_free((char *)c->api_key);
    }
    for (size_t i = 0; i < sm->models_cnt; i++) {
        ar_free((char *)sm->models[i].name);
        ar_free((char *)sm->models[i].credential);
        ar_free((char *)sm->models[i].model);
    }
    ar_free(sm->creds);
    ar_free(sm->models);
    ar_free(sm);
}

static bool conn_has_models(const ar_pmodel_list_t *pm, int64_t conn_id)
{
    for (size_t i = 0; i < pm->cnt; i++) {
        if (pm->items[i].conn_id == conn_id)
            return true;
    }
    return false;
}

/*
 * Store thread: the connections that have models, with their keys decrypted, and their
 * models. A connection whose key cannot be opened is left out with one error naming it
 * (never the key). A connection without models would serve any name to anyone (an open
 * credential): it is left out too. @return NULL when none remains or on a read error.
 */
static ar_gw_store_models_t *read_models(ar_gw_tenancy_t *t, ar_store_t *s, bool *failed)
{
    ar_conn_list_t cl = {0};
    ar_pmodel_list_t pm = {0};
    ar_gw_store_models_t *sm = NULL;
    *failed = false;
    if (ar_store_conn_list(s, &cl) != 0 || ar_store_model_list(s, 0, &pm) != 0) {
        AR_LOG(AR_LOG_ERROR, NULL, "store: reading connections and models failed");
        *failed = true;
        goto done;
    }
    if (cl.cnt == 0)
        goto done;
    sm = ar_xcalloc(1, sizeof(*sm));
    sm->creds = ar_xcalloc(cl.cnt, sizeof(*sm->creds));
    sm->models = ar_xcalloc(pm.cnt ? pm.cnt : 1, sizeof(*sm->models));
    for (size_t i = 0; i < cl.cnt; i++) {
        const ar_conn_t *c = &cl.items[i];
        if (!conn_has_models(&pm, c->id))
            continue;
        char *plain = NULL;
        char why[256] = "";
        if (ar_store_conn_secret(s, c->id, t->secret_key, &plain, why, sizeof(why)) != 0) {
            AR_LOG(AR_LOG_ERROR, NULL, "store: connection '%s' is not served: %s", c->name, why);
            continue;
        }
        ar_config_extra_cred_t *e = &sm->creds[sm->creds_cnt++];
        e->name = store_cred_name(c->name);
        e->type = ar_xstrdup(c->provider);
        e->base_url = ar_xstrdup(c->endpoint);
        e->api_key = plain;
        bool azure = strcmp(c->provider, "azure") == 0;
        for (size_t j = 0; j < pm.cnt; j++) {
            const ar_pmodel_t *m = &pm.items[j];
            if (m->conn_id != c->id)
                continue;
            ar_config_extra_model_t *em = &sm->models[sm->models_cnt++];
            em->name = store_model_name(c->name, m->name);
            em->credential = ar_xstrdup(e->name);
            em->model =
                ar_xstrdup(azure && m->deployment && *m->deployment ? m->deployment : m->remote);
        }
    }
    if (sm->creds_cnt == 0) {
        ar_gw_store_models_free(sm);
        sm = NULL;
    }
done:
    ar_store_conn_list_free(&cl);
    ar_store_model_list_free(&pm);
    return sm;
}

/* A digest of everything in sm (keys included, never kept): an unchanged set is not posted
 * again, so a change to keys or plans costs no runtime rebuild. */
static void models_digest(const ar_gw_store_models_t *sm, unsigned char out[32])
{
    ar_buf_t b;
    ar_buf_init(&b, 64u << 20);
    for (size_t i = 0; sm && i < sm->creds_cnt; i++) {
        const ar_config_extra_cred_t *c = &sm->creds[i];
        const char *f[] = {c->name, c->type, c->base_url, c->api_key};
        for (size_t j = 0; j < 4; j++)
            if (ar_buf_append(&b, f[j] ? f[j] : "", strlen(f[j] ? f[j] : "") + 1) != 0)
                break; /* 64 MiB of names: the digest covers a prefix, still a change */
    }
    for (size_t i = 0; sm && i < sm->models_cnt; i++) {
        const ar_config_extra_model_t *m = &sm->models[i];
        const char *f[] = {m->name, m->credential, m->model};
        for (size_t j = 0; j < 3; j++)
            if (ar_buf_append(&b, f[j], strlen(f[j]) + 1) != 0)
                break;
    }
    ar_sha256(ar_buf_span(&b), out);
    if (b.ptr)
        memset(b.ptr, 0, b.len);
    ar_buf_dispose(&b);
}

typedef struct sync_load {
    ar_gw_tenancy_t *t;
    ar_gw_store_models_t *out;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} sync_load_t;

static void sync_load_work(ar_store_t *s, void *arg)
{
    sync_load_t *l = arg;
    int64_t seq = 0;
    if (ar_store_change_seq(s, &seq) == 0)
        l->t->seen_seq = seq; /* read first: a change made meanwhile is seen by the poll */
    bool failed;
    l->out = read_models(l->t, s, &failed);
    models_digest(l->out, l->t->models_digest);
    ar_assign_list_t al = {0};
    l->t->had_assigns = ar_store_assign_list(s, 0, &al) == 0 && al.cnt > 0;
    ar_store_assign_list_free(&al);
    pthread_mutex_lock(&l->mu);
    l->done = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

ar_gw_store_models_t *ar_gw_tenancy_load_models(ar_gateway_t *gw)
{
    ar_gw_tenancy_t *t = gw->tenancy;
    if (!t)
        return NULL;
    sync_load_t l = {.t = t};
    pthread_mutex_init(&l.mu, NULL);
    pthread_cond_init(&l.cv, NULL);
    ar_store_job_t j = {sync_load_work, NULL, NULL, NULL, &l, true};
    if (ar_store_thread_submit(t->store, &j) == 0) {
        pthread_mutex_lock(&l.mu);
        while (!l.done)
            pthread_cond_wait(&l.cv, &l.mu);
        pthread_mutex_unlock(&l.mu);
    }
    pthread_mutex_destroy(&l.mu);
    pthread_cond_destroy(&l.cv);
    return l.out;
}

static void on_models_async(uv_async_t *a)
{
    ar_gw_tenancy_t *t = a->data;
    ar_gw_store_models_t *sm = atomic_exchange(&t->pending_models, NULL);
    if (!sm)
        return;
    if (t->gw->draining) {
        ar_gw_store_models_free(sm);
        return;
    }
    /* an empty set (every connection gone) is posted as one with no entries */
    if (sm->creds_cnt == 0) {
        ar_gw_store_models_free(sm);
        sm = NULL;
    }
    ar_gw_store_models_apply(t->gw, sm);
}

typedef struct id_set {
    int64_t *ids;
    size_t cnt, cap;
} id_set_t;

static void collect_id(void *ud, ar_tkey_t *k)
{
    id_set_t *set = ud;
    int64_t id = atomic_load(&k->conf)->id;
    for (size_t i = 0; i < set->cnt; i++) {
        if (set->ids[i] == id)
            return;
    }
    if (set->cnt == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 16;
        set->ids = ar_xrealloc(set->ids, set->cap * sizeof(*set->ids));
    }
    set->ids[set->cnt++] = id;
}

/*
 * Store thread, when the change counter moved: assignments reach the cached keys (they
 * do not touch a key's own updated_ms), and a changed set of connections and models goes
 * to the main loop (only when it differs from the last one: nothing is rebuilt for a store
 * without connections, or for a change to keys or plans).
 */
static void store_changed(ar_gw_tenancy_t *t, ar_store_t *s)
{
    ar_assign_list_t al = {0};
    bool assigns = ar_store_assign_list(s, 0, &al) == 0 && al.cnt > 0;
    ar_store_assign_list_free(&al);
    if (assigns || t->had_assigns) {
        id_set_t set = {0};
        ar_keycache_each(t->keys, collect_id, &set); /* ids first: put takes the same lock */
        for (size_t i = 0; i < set.cnt; i++) {
            ar_vkey_t k;
            if (ar_store_key_get(s, set.ids[i], NULL, &k) == 0) {
                cache_key(t, s, &k);
                ar_vkey_free(&k);
            }
        }
        ar_free(set.ids);
    }
    t->had_assigns = assigns;
    bool failed;
    ar_gw_store_models_t *sm = read_models(t, s, &failed);
    unsigned char digest[32];
    models_digest(sm, digest);
    if (failed || memcmp(digest, t->models_digest, sizeof(digest)) == 0) {
        ar_gw_store_models_free(sm); /* a read error keeps what runs; so does no change */
        return;
    }
    memcpy(t->models_digest, digest, sizeof(digest));
    if (!sm)
        sm = ar_xcalloc(1, sizeof(*sm));
    ar_gw_store_models_free(atomic_exchange(&t->pending_models, sm));
    pthread_mutex_lock(&t->async_mu);
    if (t->async_init)
        uv_async_send(&t->models_async);
    pthread_mutex_unlock(&t->async_mu);
}

/* ---- polling for changes made elsewhere (the CLI, another instance) ---- */

/* Store thread: reads the keys changed since the last poll into the cache. The job
 * carries nothing back; the flags it clears are atomics the main thread reads. */
static void poll_work(ar_store_t *s, void *arg)
{
    ar_gw_tenancy_t *t = arg;
    int64_t started = ar_wall_ms();
    ar_vkey_list_t changed;
    if (ar_store_keys_changed_since(s, atomic_load(&t->polled_since_ms), &changed) != 0) {
        AR_LOG(AR_LOG_ERROR, NULL, "store: reading changed keys failed; retrying");
        atomic_store(&t->poll_busy, false);
        return;
    }
    for (size_t i = 0; i < changed.cnt; i++) {
        const ar_vkey_t *k = &changed.items[i];
        /* keys never used here are read when first used */
        if (ar_keycache_find(t->keys, k->hash) || ar_keycache_has_id(t->keys, k->id))
            cache_key(t, s, k);
    }
    ar_store_key_list_free(&changed);
    int64_t seq = 0;
    if (ar_store_change_seq(s, &seq) == 0 && seq != t->seen_seq) {
        t->seen_seq = seq;
        store_changed(t, s);
    }
    /* a change written while this poll ran, or stamped by a clock a little behind, is read
     * again next time: reading a key twice is harmless, missing it is not */
    atomic_store(&t->polled_since_ms, started - 2000);
    atomic_store(&t->poll_busy, false);
}

static void on_poll(uv_timer_t *timer)
{
    ar_gw_tenancy_t *t = timer->data;
    /* spend records of a quiet server reach the database too (a busy one applies on its own) */
    ar_ledger_kick(t->ledger);
    if (atomic_exchange(&t->poll_busy, true))
        return;
    ar_store_job_t j = {poll_work, NULL, NULL, NULL, t, true};
    if (ar_store_thread_submit(t->store, &j) != 0)
        atomic_store(&t->poll_busy, false);
}

void ar_gw_tenancy_poll_start(ar_gateway_t *gw)
{
    ar_gw_tenancy_t *t = gw->tenancy;
    if (!t)
        return;
    uv_async_init(gw->main_loop, &t->models_async, on_models_async);
    t->models_async.data = t;
    pthread_mutex_lock(&t->async_mu);
    t->async_init = true;
    pthread_mutex_unlock(&t->async_mu);
    uv_timer_init(gw->main_loop, &t->poll);
    t->poll.data = t;
    t->poll_init = true;
    uint64_t every = (uint64_t)(t->ttl_ms / 2 > 50 ? t->ttl_ms / 2 : 50);
    uv_timer_start(&t->poll, on_poll, every, every);
}

static void on_closed_noop(uv_handle_t *h)
{
    (void)h;
}

void ar_gw_tenancy_poll_stop(ar_gateway_t *gw)
{
    ar_gw_tenancy_t *t = gw->tenancy;
    if (t && t->poll_init) {
        uv_timer_stop(&t->poll);
        uv_close((uv_handle_t *)&t->poll, on_closed_noop);
        t->poll_init = false;
    }
    if (t && t->async_init) {
        pthread_mutex_lock(&t->async_mu);
        t->async_init = false;
        pthread_mutex_unlock(&t->async_mu);
        uv_close((uv_handle_t *)&t->models_async, on_closed_noop);
    }
}

/* ---- start and stop ---- */

int ar_gw_tenancy_start(ar_gateway_t *gw, const ar_config_t *cfg, char *err, size_t errlen)
{
    const ar_storage_conf_t *sc = &cfg->storage;
    ar_gw_tenancy_t *t = ar_xcalloc(1, sizeof(*t));
    t->store_type = strncmp(sc->database_url, "sqlite://", 9) == 0 ? "sqlite" : "postgresql";
    char why[256] = "";
    /* PostgreSQL: a pool of store threads, so that a slow query does not hold up the key
     * lookups behind it (SQLite gets one thread whatever max_conns says) */
    ar_store_opts_t so = {.connect_timeout_ms = sc->connect_timeout_ms,
                          .query_timeout_ms = sc->query_timeout_ms};
    ar_store_thread_opts_t po = {.name = "ar-store",
                                 .min_conns = (int)sc->min_conns,
                                 .max_conns = (int)sc->max_conns,
                                 .store = so};
    int rc = ar_store_thread_start_opts(sc->database_url, &po, &t->store, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "storage.database_url: %s", why);
        ar_free(t);
        return rc;
    }
    char dir[1024];
    ar_ledger_dir_for(sc->database_url, dir, sizeof(dir));
    /* The ledger is applied by a thread of its own, with its own connection and a lower
     * priority: under load its batches wait, the workers and key lookups do not. (An
     * in-memory database has one connection: the store thread applies it.) */
    ar_store_thread_t *applier = t->store;
    if (dir[0]) {
        /* one thread: the ledger's jobs are serial anyway */
        ar_store_thread_opts_t lo = {.name = "ar-ledger", .nice = LEDGER_NICE, .store = so};
        rc = ar_store_thread_start_opts(sc->database_url, &lo, &t->applier, why, sizeof(why));
    }
    if (rc == 0 && t->applier)
        applier = t->applier;
    if (rc == 0)
        rc =
            ar_ledger_open(applier, dir, sc->spend_fsync_interval_ms, &t->ledger, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "%s", why);
        if (t->applier)
            ar_store_thread_stop(t->applier);
        ar_store_thread_stop(t->store);
        ar_free(t);
        return rc;
    }
    ar_u64_hex(ar_rand_u64(), t->id_prefix, 12);
    t->id_prefix[12] = '\0';
    t->keys = ar_keycache_new();
    t->ttl_ms = sc->key_cache_ttl_ms > 0 ? sc->key_cache_ttl_ms : 0;
    atomic_init(&t->polled_since_ms, ar_wall_ms() - 2000);
    t->gw = gw;
    pthread_mutex_init(&t->async_mu, NULL);
    t->secret_key = sc->secret_key ? ar_xstrdup(sc->secret_key) : NULL;
    gw->tenancy = t;
    return 0;
}

long ar_gw_tenancy_outstanding(const ar_gateway_t *gw)
{
    return gw->tenancy ? atomic_load(&gw->tenancy->outstanding) : 0;
}

void ar_gw_tenancy_stop(ar_gateway_t *gw)
{
    ar_gw_tenancy_t *t = gw->tenancy;
    if (!t)
        return;
    ar_ledger_close(t->ledger); /* the journal applied whole: nothing left for a replay */
    if (t->applier)
        ar_store_thread_stop(t->applier);
    ar_store_thread_stop(t->store);
    ar_keycache_free(t->keys);
    ar_gw_store_models_free(atomic_exchange(&t->pending_models, NULL));
    ar_secret_free(t->secret_key);
    pthread_mutex_destroy(&t->async_mu);
    ar_free(t);
    gw->tenancy = NULL;
}

/* ---- what the spend ledger's side (spend.c) needs ---- */

ar_ledger_t *ar_gw_tenancy_ledger(ar_gw_tenancy_t *t)
{
    return t ? t->ledger : NULL;
}

void ar_gw_tenancy_track(ar_gw_tenancy_t *t, long delta)
{
    atomic_fetch_add(&t->outstanding, delta);
}

void ar_gw_tenancy_record_id(ar_gw_tenancy_t *t, char out[AR_SPEND_ID_MAX])
{
    uint64_t seq = atomic_fetch_add(&t->id_seq, 1) + 1;
    snprintf(out, AR_SPEND_ID_MAX, "%s-%llx", t->id_prefix, (unsigned long long)seq);
}

void ar_gw_tenancy_storage(const ar_gateway_t *gw, ar_admin_storage_t *out)
{
    memset(out, 0, sizeof(*out));
    ar_gw_tenancy_t *t = gw->tenancy;
    if (!t)
        return;
    out->type = t->store_type;
    out->keys_cached = ar_keycache_count(t->keys);
    ar_ledger_stats_t ls;
    ar_ledger_stats(t->ledger, &ls);
    out->ledger_written = ls.written;
    out->ledger_applied = ls.applied;
    out->ledger_write_errors = ls.write_errors;
    out->ledger_apply_errors = ls.apply_errors;
    out->ledger_replayed = ls.replayed;
}
