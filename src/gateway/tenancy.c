/*
 * tenancy.c: the running server's side of the store (SPEC section 6). The store thread
 * owns the database; workers submit jobs to it and get their answers back on their own
 * loop, so no database call ever runs on an event loop. This file looks keys up for
 * auth.c, keeps the key cache fresh by polling the store for changes, and counts the jobs
 * whose answers are still on their way so that shutdown waits for them.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "gateway/gateway_int.h"
#include "store/thread.h"
#include "tenant/ledger.h"

struct ar_gw_tenancy {
    ar_store_thread_t *store;
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
    ar_store_job_t j = {work, done, w ? post_to_worker : NULL, w, arg};
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

/* Store thread: a key read from the store goes into the cache with its plan and usage. */
static void cache_key(ar_gw_tenancy_t *t, ar_store_t *s, const ar_vkey_t *k)
{
    ar_plan_list_t plans;
    const ar_plan_t *plan = plan_of(s, k->plan_id, &plans);
    int64_t now = ar_wall_ms();
    ar_usage_totals_t usage[3];
    memset(usage, 0, sizeof(usage));
    if (ar_store_usage(s, k->id, now, &usage[0], &usage[1], &usage[2]) != 0)
        AR_LOG(AR_LOG_ERROR, NULL, "store: reading the usage of key %lld failed", (long long)k->id);
    ar_keycache_put(t->keys, k, plan, usage, now);
    ar_keycache_revoke_others(t->keys, k->id, k->hash);
    ar_store_plan_list_free(&plans);
}

static void lookup_work(ar_store_t *s, void *arg)
{
    lookup_t *l = arg;
    ar_vkey_t k;
    if (ar_store_key_get(s, 0, l->hash, &k) == 0) {
        cache_key(l->hdr.t, s, &k);
        ar_vkey_free(&k);
    } else {
        ar_keycache_remember_unknown(l->hdr.t->keys, l->hash,
                                     (int64_t)ar_now_ms() + l->hdr.t->ttl_ms);
    }
}

static void lookup_done(void *arg)
{
    lookup_t *l = arg;
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
    /* a change written while this poll ran, or stamped by a clock a little behind, is read
     * again next time: reading a key twice is harmless, missing it is not */
    atomic_store(&t->polled_since_ms, started - 2000);
    atomic_store(&t->poll_busy, false);
}

static void on_poll(uv_timer_t *timer)
{
    ar_gw_tenancy_t *t = timer->data;
    if (atomic_exchange(&t->poll_busy, true))
        return;
    ar_store_job_t j = {poll_work, NULL, NULL, NULL, t};
    if (ar_store_thread_submit(t->store, &j) != 0)
        atomic_store(&t->poll_busy, false);
}

void ar_gw_tenancy_poll_start(ar_gateway_t *gw)
{
    ar_gw_tenancy_t *t = gw->tenancy;
    if (!t)
        return;
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
}

/* ---- start and stop ---- */

int ar_gw_tenancy_start(ar_gateway_t *gw, const ar_config_t *cfg, char *err, size_t errlen)
{
    const ar_storage_conf_t *sc = &cfg->storage;
    ar_gw_tenancy_t *t = ar_xcalloc(1, sizeof(*t));
    char why[256] = "";
    int rc = ar_store_thread_start(sc->database_url, &t->store, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "storage.database_url: %s", why);
        ar_free(t);
        return rc;
    }
    char dir[1024];
    ar_ledger_dir_for(sc->database_url, dir, sizeof(dir));
    rc = ar_ledger_open(t->store, dir, sc->spend_fsync_interval_ms, &t->ledger, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "%s", why);
        ar_store_thread_stop(t->store);
        ar_free(t);
        return rc;
    }
    ar_u64_hex(ar_rand_u64(), t->id_prefix, 12);
    t->id_prefix[12] = '\0';
    t->keys = ar_keycache_new();
    t->ttl_ms = sc->key_cache_ttl_ms > 0 ? sc->key_cache_ttl_ms : 0;
    atomic_init(&t->polled_since_ms, ar_wall_ms() - 2000);
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
    ar_store_thread_stop(t->store);
    ar_keycache_free(t->keys);
    ar_free(t);
    gw->tenancy = NULL;
}

/* ---- spend records (worker threads) ---- */

void ar_gw_spend_hold(ar_http_request_t *req)
{
    ar_gw_tenancy_t *t = ((ar_gw_worker_t *)req->worker->data)->gw->tenancy;
    if (t && t->ledger)
        ar_http_hold_end(req);
}

static void spend_acked_on_worker(ar_worker_t *w, void *arg)
{
    (void)w;
    ar_http_request_t *req = arg;
    ar_gw_tenancy_t *t = ((ar_gw_worker_t *)req->worker->data)->gw->tenancy;
    ar_http_release_end(req);
    ar_http_unref(req);
    atomic_fetch_sub(&t->outstanding, 1);
}

/* Journal thread: the record is in the kernel; the worker may end the answer now. */
static void spend_written(void *ud, int err)
{
    ar_http_request_t *req = ud;
    (void)err; /* a failed write was logged by the journal; the answer is not held hostage */
    ar_worker_post(req->worker, spend_acked_on_worker, req);
}

static void copy_id(char dst[AR_SPEND_ID_MAX], const char *src)
{
    snprintf(dst, AR_SPEND_ID_MAX, "%s", src ? src : "");
}

void ar_gw_spend_record(ar_gw_req_t *g)
{
    ar_http_request_t *http = g->http;
    ar_gw_tenancy_t *t = g->gw->gw->tenancy;
    if (!t || !t->ledger)
        return;
    const ar_usage_t *u = &g->call.usage;
    const ar_tkey_t *k = g->ctx.key;
    int status = ar_http_status(http);
    ar_spend_t r = {
        .ts_ms = ar_wall_ms(),
        .key_id = k ? atomic_load(&k->conf)->id : 0,
        .model = (char *)(g->call.public_model ? g->call.public_model : ""),
        .upstream_model = (char *)(g->dep ? g->dep->upstream_model : ""),
        .credential = (char *)(g->dep ? g->dep->cred->name : ""),
        .prompt_tokens = u->seen ? u->prompt_tokens : 0,
        .completion_tokens = u->seen ? u->completion_tokens : 0,
        .cached_tokens = u->seen ? u->cached_tokens : 0,
        .cache_creation_tokens = u->seen ? u->cache_creation_tokens : 0,
        .reasoning_tokens = u->seen ? u->reasoning_tokens : 0,
        .cost_usd = ar_gw_cost(g),
        .status = status && !ar_http_aborted(http) ? status : 499,
        .latency_ms = (int64_t)((ar_now_us() - http->start_us) / 1000),
        .ttfb_ms = (int64_t)(g->ttfb_us / 1000),
        .stream = g->call.stream,
    };
    uint64_t seq = atomic_fetch_add(&t->id_seq, 1) + 1;
    snprintf(r.id, sizeof(r.id), "%s-%llx", t->id_prefix, (unsigned long long)seq);
    copy_id(r.request_id, http->request_id);
    ar_http_ref(http);
    atomic_fetch_add(&t->outstanding, 1);
    if (ar_ledger_append(t->ledger, &r, spend_written, http) != 0) {
        AR_LOG(AR_LOG_ERROR, NULL, "ledger: the spend record of request %s was not written",
               http->request_id);
        atomic_fetch_sub(&t->outstanding, 1);
        ar_http_unref(http);
        ar_http_release_end(http);
    }
}
