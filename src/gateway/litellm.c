/*
 * litellm.c: the LiteLLM data plane (litellm_db, SPEC section 7). A client key that is
 * neither the master key nor an airouter virtual key is checked against LiteLLM's
 * "LiteLLM_VerificationToken" (by its SHA-256), and every request made with such a key
 * becomes a row of "LiteLLM_SpendLogs" with the token's spend grown to match.
 *
 * One thread owns the libpq connection; workers never touch the database. A worker finds
 * a key in the cache (one mutex, held for a copy) or parks the request and hands the lookup
 * to the thread, whose answer runs on the worker again (ar_worker_post), like tenancy.c's
 * store jobs. Spend rows go into a bounded queue that the thread writes in batches; a full
 * queue drops the row and counts it (/health), so a slow database never holds a worker.
 * A cached key stays usable while the database is down (its last known row decides).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/window.h"
#include "gateway/gateway_int.h"
#include "store/litellm.h"

typedef struct ar_gw_litellm ar_gw_litellm_t;

/* One cached token (or the knowledge that there is none), keyed by its hash. */
typedef struct entry {
    struct entry *next; /* hash chain */
    char token[65];
    bool found;
    ar_ll_token_t row;
    uint64_t fetched_ms; /* monotonic; 0: never answered by the database */
    double local_spend;  /* this instance's spend not yet in a row read back */
    ar_window_t rpm, tpm;
} entry_t;

typedef struct lookup {
    struct lookup *next;
    ar_gw_litellm_t *ll;
    ar_http_request_t *req;
    void (*cb)(ar_http_request_t *req);
    char token[65];
} lookup_t;

/* One connection and the thread that owns it. conns[0] is the writer: the only one that
 * writes spend batches (two batches at once would update the same token rows in two
 * transactions, which serialize or deadlock), and the health check; it takes lookups too
 * while it has no batch to write. The others take lookups only. */
typedef struct conn {
    ar_gw_litellm_t *ll;
    ar_ll_db_t *db; /* NULL: not connected; opened again when next needed */
    pthread_t thread;
    int index;
} conn_t;

struct ar_gw_litellm {
    ar_litellm_conf_t conf; /* as at start; database_url owned */
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* the writer's wake-up: lookups, a full batch, stop */
    pthread_cond_t lcv; /* the lookup threads' wake-up: lookups, stop */
    bool stop;
    conn_t *conns;    /* [max] */
    int max;          /* litellm_db.max_conns */
    int threads;      /* conns[0..threads) have a thread (under mu) */
    int connecting;   /* lookup threads still opening their connection (under mu) */
    int idle;         /* lookup threads waiting for a lookup (under mu) */
    bool writer_idle; /* the writer waits for work (under mu) */
    _Atomic bool up;
    _Atomic int open; /* connections open, for /health */
    /* under mu */
    lookup_t *lookups, *lookups_tail; /* first come, first served */
    size_t lookups_waiting;
    entry_t **buckets;
    size_t nbuckets, cached;
    ar_ll_spend_t *queue; /* a ring of conf.log_queue_size rows */
    size_t q_head, q_cnt;
    uint64_t lookups_done, lookup_errors, logged, log_errors, dropped;
    _Atomic long outstanding; /* lookups whose answer a worker has not run yet */
};

static uint64_t now_ms(void)
{
    return ar_now_ms();
}

static size_t bucket_of(const ar_gw_litellm_t *ll, const char *token)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = token; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (size_t)(h % ll->nbuckets);
}

/* Under mu. */
static entry_t *find(ar_gw_litellm_t *ll, const char *token)
{
    for (entry_t *e = ll->buckets[bucket_of(ll, token)]; e; e = e->next) {
        if (strcmp(e->token, token) == 0)
            return e;
    }
    return NULL;
}

static void entry_free(entry_t *e)
{
    if (e->found)
        ar_ll_token_free(&e->row);
    ar_free(e);
}

/* Under mu: room for one more entry, by dropping stale ones, else any one (a full cache of
 * live keys costs a lookup more, never a wrong answer). */
static void make_room(ar_gw_litellm_t *ll)
{
    if ((int64_t)ll->cached < ll->conf.auth_cache_size || ll->cached == 0)
        return;
    uint64_t now = now_ms();
    entry_t *victim = NULL;
    for (size_t b = 0; b < ll->nbuckets; b++) {
        for (entry_t **pp = &ll->buckets[b]; *pp;) {
            entry_t *e = *pp;
            if (e->fetched_ms + (uint64_t)ll->conf.auth_cache_ttl_ms <= now) {
                *pp = e->next;
                entry_free(e);
                ll->cached--;
                continue;
            }
            if (!victim)
                victim = e;
            pp = &e->next;
        }
    }
    if ((int64_t)ll->cached < ll->conf.auth_cache_size || !victim)
        return;
    for (entry_t **pp = &ll->buckets[bucket_of(ll, victim->token)]; *pp; pp = &(*pp)->next) {
        if (*pp == victim) {
            *pp = victim->next;
            entry_free(victim);
            ll->cached--;
            return;
        }
    }
}

/* Under mu: the database's answer (row NULL: no such token) replaces the cached one; the
 * windows and the spend not yet read back stay. */
static void store_answer(ar_gw_litellm_t *ll, const char *token, ar_ll_token_t *row)
{
    entry_t *e = find(ll, token);
    if (!e) {
        make_room(ll);
        e = ar_xcalloc(1, sizeof(*e));
        snprintf(e->token, sizeof(e->token), "%s", token);
        ar_window_configure(&e->rpm, 60000);
        ar_window_configure(&e->tpm, 60000);
        size_t b = bucket_of(ll, token);
        e->next = ll->buckets[b];
        ll->buckets[b] = e;
        ll->cached++;
    }
    if (e->found)
        ar_ll_token_free(&e->row);
    e->found = row != NULL;
    if (row)
        e->row = *row;
    e->local_spend = 0; /* the row read now holds every batch written so far */
    e->fetched_ms = now_ms();
}

/* ---- the threads ---- */

/* Opens c's connection. With report, the data plane's state follows (up, a log line on a
 * change): the writer's and the lookups' attempts say whether the database answers. */
static int connect_db(conn_t *c, char *why, size_t whylen)
{
    ar_gw_litellm_t *ll = c->ll;
    char err[256];
    if (!why) {
        why = err;
        whylen = sizeof(err);
    }
    if (ar_ll_db_open(ll->conf.database_url, ll->conf.connect_timeout_ms, &c->db, why, whylen) ==
        0) {
        atomic_fetch_add(&ll->open, 1);
        if (!atomic_exchange(&ll->up, true))
            AR_LOG(AR_LOG_INFO, NULL, "litellm_db: connected");
        return 0;
    }
    if (atomic_exchange(&ll->up, false) && why == err)
        AR_LOG(AR_LOG_WARN, NULL, "%s", err);
    return AR_EIO;
}

static void close_db(conn_t *c)
{
    if (!c->db)
        return;
    ar_ll_db_close(c->db);
    c->db = NULL;
    atomic_fetch_sub(&c->ll->open, 1);
}

static void lost_db(conn_t *c)
{
    close_db(c);
    if (atomic_exchange(&c->ll->up, false))
        AR_LOG(AR_LOG_WARN, NULL,
               "litellm_db: the database stopped answering; cached keys "
               "keep working, spend rows wait in the queue");
}

static void lookup_answered(ar_worker_t *w, void *arg)
{
    (void)w;
    lookup_t *l = arg;
    ar_gw_litellm_t *ll = l->ll;
    l->cb(l->req);
    ar_http_unref(l->req);
    ar_free(l);
    atomic_fetch_sub(&ll->outstanding, 1);
}

/* Under mu: the oldest lookup waiting, unlinked, or NULL. */
static lookup_t *take_lookup(ar_gw_litellm_t *ll)
{
    lookup_t *l = ll->lookups;
    if (!l)
        return NULL;
    ll->lookups = l->next;
    if (!ll->lookups)
        ll->lookups_tail = NULL;
    ll->lookups_waiting--;
    return l;
}

static void run_lookup(conn_t *c, lookup_t *l)
{
    ar_gw_litellm_t *ll = c->ll;
    if (!c->db)
        connect_db(c, NULL, 0);
    int rc = AR_EIO;
    ar_ll_token_t row;
    if (c->db) {
        rc = ar_ll_token_get(c->db, l->token, &row);
        if (rc == AR_EIO)
            lost_db(c);
    }
    pthread_mutex_lock(&ll->mu);
    ll->lookups_done++;
    if (rc == 0)
        store_answer(ll, l->token, &row);
    else if (rc == AR_ENOTFOUND)
        store_answer(ll, l->token, NULL);
    else
        ll->lookup_errors++;
    pthread_mutex_unlock(&ll->mu);
    ar_worker_post(l->req->worker, lookup_answered, l);
}

/* Waits on cv until deadline (monotonic ms) or a wake-up; under mu. */
static void wait_until(ar_gw_litellm_t *ll, pthread_cond_t *cv, uint64_t deadline)
{
    uint64_t now = now_ms();
    if (deadline <= now)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (deadline - now) * 1000000ull;
    ts.tv_sec += (time_t)(ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    pthread_cond_timedwait(cv, &ll->mu, &ts);
}

/* Writes up to one batch from the head of the queue, on the writer's connection; the rows
 * leave the queue once written, or after the last retry fails (counted in log_errors). */
static int flush_batch(conn_t *c, bool final)
{
    ar_gw_litellm_t *ll = c->ll;
    size_t cap = (size_t)ll->conf.log_queue_size;
    pthread_mutex_lock(&ll->mu);
    size_t n =
        ll->q_cnt < (size_t)ll->conf.log_batch_size ? ll->q_cnt : (size_t)ll->conf.log_batch_size;
    ar_ll_spend_t *rows = n ? ar_xcalloc(n, sizeof(*rows)) : NULL;
    for (size_t i = 0; i < n; i++)
        rows[i] = ll->queue[(ll->q_head + i) % cap];
    pthread_mutex_unlock(&ll->mu);
    if (!n)
        return 0;
    /* at shutdown one try: exit must not wait out every retry of every batch */
    int64_t attempts = final ? 1 : ll->conf.log_retry_attempts + 1;
    int rc = AR_EIO;
    for (int64_t a = 0; a < attempts && rc != 0; a++) {
        if (a > 0) {
            pthread_mutex_lock(&ll->mu);
            wait_until(ll, &ll->cv, now_ms() + (uint64_t)ll->conf.log_retry_delay_ms);
            pthread_mutex_unlock(&ll->mu);
        }
        if (!c->db)
            connect_db(c, NULL, 0);
        if (!c->db)
            continue;
        rc = ar_ll_spend_write(c->db, rows, n);
        if (rc != 0 && ar_ll_db_ping(c->db) != 0)
            lost_db(c);
    }
    pthread_mutex_lock(&ll->mu);
    ll->q_head = (ll->q_head + n) % cap;
    ll->q_cnt -= n;
    if (rc == 0)
        ll->logged += n;
    else
        ll->log_errors += n;
    pthread_mutex_unlock(&ll->mu);
    if (rc != 0)
        AR_LOG(AR_LOG_ERROR, NULL, "litellm_db: %zu spend rows were not written after %lld tries",
               n, (long long)attempts);
    ar_free(rows);
    return rc;
}

/* conns[0]: spend batches, the health check, and lookups while it has nothing else. */
static void *writer_main(void *arg)
{
    conn_t *c = arg;
    ar_gw_litellm_t *ll = c->ll;
    pthread_setname_np(pthread_self(), "ar-litellm");
    uint64_t next_flush = now_ms() + (uint64_t)ll->conf.log_flush_interval_ms;
    uint64_t next_check = now_ms() + (uint64_t)ll->conf.health_check_interval_ms;
    pthread_mutex_lock(&ll->mu);
    for (;;) {
        bool full = ll->q_cnt >= (size_t)ll->conf.log_batch_size;
        if (!ll->stop && !ll->lookups && !full) {
            ll->writer_idle = true;
            wait_until(ll, &ll->cv, next_flush < next_check ? next_flush : next_check);
            ll->writer_idle = false;
        }
        /* one lookup at a time: a batch that came due meanwhile is not held up by a queue of
         * them (the lookup threads take the rest) */
        lookup_t *l = take_lookup(ll);
        bool stop = ll->stop;
        uint64_t now = now_ms();
        bool flush = ll->q_cnt &&
                     (ll->q_cnt >= (size_t)ll->conf.log_batch_size || now >= next_flush || stop);
        pthread_mutex_unlock(&ll->mu);
        if (l)
            run_lookup(c, l);
        if (flush) {
            if (flush_batch(c, stop) != 0 && stop) {
                /* the database is gone at shutdown: the other rows would fail alike */
                pthread_mutex_lock(&ll->mu);
                size_t left = ll->q_cnt;
                ll->log_errors += left;
                ll->q_cnt = 0;
                pthread_mutex_unlock(&ll->mu);
                if (left)
                    AR_LOG(AR_LOG_ERROR, NULL, "litellm_db: %zu spend rows were not written", left);
            }
            next_flush = now_ms() + (uint64_t)ll->conf.log_flush_interval_ms;
        } else if (now >= next_flush) {
            next_flush = now + (uint64_t)ll->conf.log_flush_interval_ms;
        }
        if (now >= next_check) {
            if (!c->db)
                connect_db(c, NULL, 0);
            else if (ar_ll_db_ping(c->db) != 0)
                lost_db(c);
            next_check = now_ms() + (uint64_t)ll->conf.health_check_interval_ms;
        }
        pthread_mutex_lock(&ll->mu);
        if (stop && !ll->q_cnt && !ll->lookups)
            break;
    }
    pthread_mutex_unlock(&ll->mu);
    return NULL;
}

/* conns[1..]: lookups only. An idle connection is checked every health_check_interval and
 * closed when it no longer answers (quietly: the writer's check reports the database); a
 * thread without one connects again for its next lookup. */
static void *lookup_main(void *arg)
{
    conn_t *c = arg;
    ar_gw_litellm_t *ll = c->ll;
    char name[32];
    snprintf(name, sizeof(name), "ar-litellm-%d", c->index + 1);
    name[15] = '\0'; /* the kernel's limit */
    pthread_setname_np(pthread_self(), name);
    if (!c->db)
        connect_db(c, NULL, 0);
    uint64_t next_check = now_ms() + (uint64_t)ll->conf.health_check_interval_ms;
    pthread_mutex_lock(&ll->mu);
    ll->connecting--;
    for (;;) {
        lookup_t *l = take_lookup(ll);
        if (l) {
            pthread_mutex_unlock(&ll->mu);
            run_lookup(c, l);
            pthread_mutex_lock(&ll->mu);
            continue;
        }
        if (ll->stop)
            break;
        ll->idle++;
        wait_until(ll, &ll->lcv, next_check);
        ll->idle--;
        if (now_ms() >= next_check && !ll->lookups) {
            pthread_mutex_unlock(&ll->mu);
            if (c->db && ar_ll_db_ping(c->db) != 0)
                close_db(c);
            next_check = now_ms() + (uint64_t)ll->conf.health_check_interval_ms;
            pthread_mutex_lock(&ll->mu);
        }
    }
    pthread_mutex_unlock(&ll->mu);
    return NULL;
}

/* Under mu: starts the thread of conns[threads] (its connection opened already, or by the
 * thread itself). @return 0 or AR_ENOMEM. */
static int spawn(ar_gw_litellm_t *ll)
{
    conn_t *c = &ll->conns[ll->threads];
    c->ll = ll;
    c->index = ll->threads;
    if (pthread_create(&c->thread, NULL, c->index == 0 ? writer_main : lookup_main, c) != 0)
        return AR_ENOMEM;
    if (c->index > 0)
        ll->connecting++;
    ll->threads++;
    return 0;
}

/* ---- start and stop ---- */

int ar_gw_litellm_start(ar_gateway_t *gw, const ar_config_t *cfg, char *err, size_t errlen)
{
    const ar_litellm_conf_t *c = &cfg->litellm_db;
    if (!c->enabled || !c->database_url)
        return 0;
    ar_gw_litellm_t *ll = ar_xcalloc(1, sizeof(*ll));
    ll->conf = *c;
    ll->conf.database_url = ar_xstrdup(c->database_url);
    ll->nbuckets = 1024;
    ll->buckets = ar_xcalloc(ll->nbuckets, sizeof(entry_t *));
    ll->queue = ar_xcalloc((size_t)c->log_queue_size, sizeof(ar_ll_spend_t));
    ll->max = c->max_conns < 1 ? 1 : (int)c->max_conns;
    /* the writer's connection opens at start whatever min_conns says: is_required needs it */
    int min = c->min_conns < 1 ? 1 : (int)c->min_conns;
    if (min > ll->max)
        min = ll->max;
    ll->conns = ar_xcalloc((size_t)ll->max, sizeof(conn_t));
    for (int i = 0; i < ll->max; i++)
        ll->conns[i].ll = ll;
    pthread_mutex_init(&ll->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ll->cv, &ca);
    pthread_cond_init(&ll->lcv, &ca);
    pthread_condattr_destroy(&ca);
    gw->litellm = ll;
    char why[256] = "";
    int rc = 0;
    for (int i = 0; i < min && rc == 0; i++)
        rc = connect_db(&ll->conns[i], why, sizeof(why));
    if (rc != 0 && c->is_required) {
        snprintf(err, errlen, "%s (litellm_db.is_required is true)", why);
        ar_gw_litellm_stop(gw);
        return AR_EIO;
    }
    if (rc != 0)
        AR_LOG(AR_LOG_WARN, NULL, "%s; retrying every %lld ms (litellm_db.is_required is false)",
               why, (long long)c->health_check_interval_ms);
    /* the connections that did not open are tried again by their threads */
    pthread_mutex_lock(&ll->mu);
    for (int i = 0; i < min && rc != AR_ENOMEM; i++)
        rc = spawn(ll);
    pthread_mutex_unlock(&ll->mu);
    if (rc == AR_ENOMEM) {
        snprintf(err, errlen, "litellm_db: cannot start its threads");
        ar_gw_litellm_stop(gw);
        return AR_ENOMEM;
    }
    return 0;
}

void ar_gw_litellm_stop(ar_gateway_t *gw)
{
    ar_gw_litellm_t *ll = gw->litellm;
    if (!ll)
        return;
    gw->litellm = NULL;
    pthread_mutex_lock(&ll->mu);
    ll->stop = true; /* no thread starts after this */
    pthread_cond_broadcast(&ll->cv);
    pthread_cond_broadcast(&ll->lcv);
    int threads = ll->threads;
    pthread_mutex_unlock(&ll->mu);
    for (int i = 0; i < threads; i++)
        pthread_join(ll->conns[i].thread, NULL);
    for (int i = 0; i < ll->max; i++)
        close_db(&ll->conns[i]);
    for (size_t b = 0; b < ll->nbuckets; b++) {
        while (ll->buckets[b]) {
            entry_t *e = ll->buckets[b];
            ll->buckets[b] = e->next;
            entry_free(e);
        }
    }
    ar_free(ll->buckets);
    ar_free(ll->queue);
    ar_free(ll->conns);
    ar_free(ll->conf.database_url);
    pthread_cond_destroy(&ll->cv);
    pthread_cond_destroy(&ll->lcv);
    pthread_mutex_destroy(&ll->mu);
    ar_free(ll);
}

long ar_gw_litellm_outstanding(const ar_gateway_t *gw)
{
    return gw->litellm ? atomic_load(&gw->litellm->outstanding) : 0;
}

/* ---- workers: authentication ---- */

static int refuse(ar_http_request_t *req, int status, const char *type, const char *code,
                  const char *message)
{
    ar_gw_error(req, status, type, code, message);
    return AR_EAUTH;
}

/* The parts of a cached row a request keeps, in its pool. */
static ar_gw_llkey_t *keep(ar_http_request_t *req, const entry_t *e)
{
    ar_gw_llkey_t *k = ar_pool_calloc(req->pool, sizeof(*k));
    memcpy(k->token, e->token, sizeof(k->token));
    k->models_cnt = e->row.models_cnt;
    k->models = ar_pool_calloc(req->pool, (k->models_cnt ? k->models_cnt : 1) * sizeof(char *));
    for (size_t i = 0; i < k->models_cnt; i++)
        k->models[i] = ar_pool_strdup_span(req->pool, ar_span_cstr(e->row.models[i]));
    k->user_id = ar_pool_strdup_span(req->pool, ar_span_cstr(e->row.user_id));
    k->team_id = ar_pool_strdup_span(req->pool, ar_span_cstr(e->row.team_id));
    k->key_alias = ar_pool_strdup_span(req->pool, ar_span_cstr(e->row.key_alias));
    return k;
}

/* Under mu: the verdict on a cached row. */
static int decide(ar_http_request_t *req, entry_t *e, ar_gw_auth_level_t level)
{
    const ar_ll_token_t *r = &e->row;
    if (!e->found)
        return refuse(req, 401, "authentication_error", "invalid_api_key", "Invalid API key");
    if (r->blocked)
        return refuse(req, 401, "authentication_error", "key_blocked",
                      "Invalid API key: it is blocked");
    if (r->expires_ms && r->expires_ms <= ar_wall_ms())
        return refuse(req, 401, "authentication_error", "key_expired",
                      "Invalid API key: it expired");
    if (level == AR_AUTH_MASTER)
        return refuse(req, 403, "permission_error", "master_key_required",
                      "This endpoint needs the master key");
    if (r->max_budget >= 0 && r->spend + e->local_spend >= r->max_budget)
        return refuse(req, 429, "budget_exceeded", "budget_exceeded",
                      "Budget exceeded for this key");
    uint64_t now = now_ms();
    int64_t retry_ms = 0;
    if (!ar_window_try_add(&e->rpm, now, 1, r->rpm_limit, &retry_ms)) {
        ar_gw_refuse_limit(req, ((ar_gw_ctx_t *)req->data)->rt, "key", retry_ms,
                           "Rate limit exceeded for this key");
        return AR_EAUTH; /* answered: routes.c treats every refusal alike */
    }
    /* the tokens of a request are known when it ends: a key is refused once the minute's
     * tokens reached its limit */
    if (r->tpm_limit >= 0 && ar_window_sum(&e->tpm, now) >= r->tpm_limit) {
        ar_window_sub_at(&e->rpm, now, 1);
        ar_gw_refuse_limit(req, ((ar_gw_ctx_t *)req->data)->rt, "key", 1000,
                           "Token rate limit exceeded for this key");
        return AR_EAUTH;
    }
    ((ar_gw_ctx_t *)req->data)->ll = keep(req, e);
    return 0;
}

int ar_gw_litellm_auth(ar_http_request_t *req, const char *token, ar_gw_auth_level_t level,
                       void (*cb)(ar_http_request_t *req))
{
    ar_gw_ctx_t *ctx = req->data;
    ar_gw_litellm_t *ll = ((ar_gw_worker_t *)req->worker->data)->gw->litellm;
    pthread_mutex_lock(&ll->mu);
    entry_t *e = find(ll, token);
    bool fresh = e && e->fetched_ms + (uint64_t)ll->conf.auth_cache_ttl_ms > now_ms();
    /* answered for this request already: a stale row still decides (the database is down) */
    if (e && (fresh || ctx->ll_looked_up)) {
        int rc = decide(req, e, level);
        pthread_mutex_unlock(&ll->mu);
        return rc;
    }
    if (ctx->ll_looked_up || ll->stop) {
        pthread_mutex_unlock(&ll->mu);
        return refuse(req, 503, "service_unavailable_error", "litellm_db_unavailable",
                      "The key could not be checked: LiteLLM's database is unreachable");
    }
    lookup_t *l = ar_xcalloc(1, sizeof(*l));
    l->ll = ll;
    l->req = req;
    l->cb = cb;
    memcpy(l->token, token, sizeof(l->token));
    ar_http_ref(req);
    atomic_fetch_add(&ll->outstanding, 1);
    if (ll->lookups_tail)
        ll->lookups_tail->next = l;
    else
        ll->lookups = l;
    ll->lookups_tail = l;
    ll->lookups_waiting++;
    /* every thread that takes lookups busy (a batch being written, a slow query): one more
     * thread, which opens its connection itself (a worker never waits for one) */
    size_t takers = (size_t)(ll->idle + ll->connecting) + (ll->writer_idle ? 1 : 0);
    if (ll->lookups_waiting > takers && ll->threads < ll->max && spawn(ll) != 0)
        AR_LOG(AR_LOG_WARN, NULL, "litellm_db: cannot start another lookup thread");
    /* the lookup threads first: the writer had better stay free for its batches */
    if (ll->idle)
        pthread_cond_signal(&ll->lcv);
    if (ll->lookups_waiting > (size_t)ll->idle)
        pthread_cond_signal(&ll->cv);
    pthread_mutex_unlock(&ll->mu);
    return AR_EAGAIN;
}

int ar_gw_litellm_admit(ar_gw_req_t *g, const ar_span_t *names, size_t names_cnt)
{
    const ar_gw_llkey_t *k = g->ctx.ll;
    if (!k || !k->models_cnt)
        return 0;
    for (size_t i = 0; i < k->models_cnt; i++) {
        /* LiteLLM's own spelling of "every model" */
        if (strcmp(k->models[i], "all-proxy-models") == 0)
            return 0;
    }
    ar_span_t bad = AR_LIT("auto");
    bool ok = names_cnt > 0;
    for (size_t i = 0; ok && i < names_cnt; i++) {
        bool hit = false;
        for (size_t j = 0; j < k->models_cnt && !hit; j++)
            hit = ar_span_eq(names[i], ar_span_cstr(k->models[j]));
        if (!hit) {
            ok = false;
            bad = names[i];
        }
    }
    if (ok)
        return 0;
    char *msg = ar_pool_printf(g->http->pool, "This key may not use the model '%.*s'",
                               (int)(bad.len > 200 ? 200 : bad.len), bad.ptr);
    ar_gw_error(g->http, 403, "permission_error", "model_not_allowed", msg);
    return AR_ELIMIT;
}

/* ---- workers: spend rows ---- */

static const char *call_type(ar_endpoint_t ep)
{
    switch (ep) {
    case AR_EP_COMPLETIONS: return "atext_completion";
    case AR_EP_EMBEDDINGS: return "aembedding";
    default: return "acompletion";
    }
}

void ar_gw_litellm_record(ar_gw_req_t *g)
{
    ar_gw_litellm_t *ll = g->gw->gw->litellm;
    const ar_gw_llkey_t *k = g->ctx.ll;
    if (!ll || !k)
        return;
    ar_http_request_t *http = g->http;
    int64_t prompt, completion;
    ar_gw_billed_tokens(g, &prompt, &completion);
    int status = ar_http_status(http);
    ar_ll_spend_t r = {
        .spend = g->cost_usd,
        .prompt_tokens = prompt,
        .completion_tokens = completion,
        .end_ms = ar_wall_ms(),
    };
    r.start_ms = r.end_ms - (int64_t)((ar_now_us() - http->start_us) / 1000);
    if (g->ttfb_us)
        r.first_ms = r.start_ms + (int64_t)(g->ttfb_us / 1000);
    snprintf(r.request_id, sizeof(r.request_id), "%s", http->request_id);
    memcpy(r.api_key, k->token, sizeof(r.api_key));
    snprintf(r.call_type, sizeof(r.call_type), "%s", call_type(g->endpoint));
    snprintf(r.model, sizeof(r.model), "%s", g->dep ? g->dep->upstream_model : "");
    snprintf(r.model_group, sizeof(r.model_group), "%s",
             g->call.public_model ? g->call.public_model : "");
    snprintf(r.provider, sizeof(r.provider), "%s",
             g->dep && g->dep->cred->type_name ? g->dep->cred->type_name : "");
    snprintf(r.api_base, sizeof(r.api_base), "%s",
             g->dep && g->dep->cred->base_url ? g->dep->cred->base_url : "");
    snprintf(r.user, sizeof(r.user), "%s", k->user_id);
    snprintf(r.team_id, sizeof(r.team_id), "%s", k->team_id);
    snprintf(r.key_alias, sizeof(r.key_alias), "%s", k->key_alias);
    bool ok = status >= 200 && status < 300 && !ar_http_aborted(http);
    snprintf(r.status, sizeof(r.status), "%s", ok ? "success" : "failure");
    size_t cap = (size_t)ll->conf.log_queue_size;
    pthread_mutex_lock(&ll->mu);
    entry_t *e = find(ll, k->token);
    if (e) {
        e->local_spend += r.spend;
        ar_window_add(&e->tpm, now_ms(), prompt + completion);
    }
    bool dropped = ll->q_cnt >= cap;
    if (dropped) {
        ll->dropped++;
    } else {
        ll->queue[(ll->q_head + ll->q_cnt) % cap] = r;
        ll->q_cnt++;
        if (ll->q_cnt >= (size_t)ll->conf.log_batch_size)
            pthread_cond_signal(&ll->cv);
    }
    pthread_mutex_unlock(&ll->mu);
    if (dropped)
        AR_LOG(AR_LOG_WARN, NULL,
               "litellm_db: the spend queue is full (%zu rows): the row of request %s is dropped",
               cap, http->request_id);
}

void ar_gw_litellm_view(const ar_gateway_t *gw, ar_admin_litellm_t *out)
{
    memset(out, 0, sizeof(*out));
    ar_gw_litellm_t *ll = gw->litellm;
    if (!ll)
        return;
    out->configured = true;
    out->up = atomic_load(&ll->up);
    out->conns = atomic_load(&ll->open);
    pthread_mutex_lock(&ll->mu);
    out->threads = ll->threads;
    out->max_conns = ll->max;
    out->keys_cached = (long)ll->cached;
    out->lookups = ll->lookups_done;
    out->lookup_errors = ll->lookup_errors;
    out->queued = (long)ll->q_cnt;
    out->queue_size = ll->conf.log_queue_size;
    out->logged = ll->logged;
    out->log_errors = ll->log_errors;
    out->dropped = ll->dropped;
    pthread_mutex_unlock(&ll->mu);
}
