/*
 * lease.c: a virtual key's token quotas and budget shared by several instances through
 * Redis, without a Redis round trip per request. Each worker holds a lease per key: a
 * reservation in the fleet's counters (store/redis_quota.c) covering what its requests in
 * flight took plus room for the next ones. A request that fits in the room takes its
 * worst case (prompt + maximum output, priced) from it on the spot; one that does not
 * waits while the lease is renewed (one script: the usage settled since is counted, the
 * old reservation given back, the room for the waiting request checked as tenant/quota.h
 * does, new room reserved). So the fleet never spends more than its limits (every request
 * runs under a reservation), and far from them a worker asks Redis once per CHUNK
 * requests. Near them the room granted shrinks (at most 1/spread of what is left, spread =
 * instances x workers, in whole worst cases) down to one request per ask, as before; an
 * unused lease gives its room back after IDLE_RELEASE_MS, so room held by an idle worker
 * refuses others for that long at most.
 *
 * The invariant: Redis holds for a lease at least in_flight + room + pending (usage settled
 * but not yet counted there). A take moves room to in_flight; a settle moves the request's
 * take out of in_flight into pending (what it used) and room (the rest). No request takes
 * room while a renewal is on its way (the renewal reserves in_flight as it was sent plus
 * the room granted), and a renewal without an answer drops the room.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"
#include "gateway/gateway_int.h"

#define FLUSH_MS 250         /* settled usage reaches the fleet's counters this often */
#define IDLE_RELEASE_MS 2000 /* a lease unused this long gives its room back */
#define IDLE_FORGET_MS 10000 /* and is forgotten once it holds nothing this long */
#define CHUNK 16             /* room asked for: this many of the waiting request's worst case */
#define SLOTS 64

typedef struct ar_gw_lease {
    struct ar_gw_lease *next; /* hash chain */
    struct ar_gw_leases *set;
    int64_t key_id;
    ar_tkey_state_t *state; /* the key's live counters (kept while the cache lives) */
    ar_quota_limits_t lim;  /* the key's limits, as its last request had them */
    ar_redis_amount_t unit; /* the last request's worst case: what room is granted in */
    int64_t hold_ms;        /* the reservation's life in Redis unless renewed */
    char rkey[48];          /* airouter:key:{ID} */
    char member[AR_REDIS_MEMBER_MAX];
    ar_redis_amount_t room, in_flight, pending;
    ar_redis_amount_t sent;         /* pending, as the renewal on its way counts it */
    ar_redis_amount_t room_at_send; /* room when it was sent */
    bool asking;                    /* a renewal is on its way */
    ar_gw_req_t *asked_for;         /* the waiter it was sized for (NULL: none) */
    ar_list_t waiters;              /* requests that did not fit, in arrival order */
    uint64_t used_ms, renewed_ms;   /* last take or settle; last answer from Redis */
    uint64_t epoch;                 /* of the connection that answered last */
} ar_gw_lease_t;

typedef struct ar_gw_leases {
    ar_gw_worker_t *w;
    uv_timer_t timer;
    bool ticking;
    ar_gw_lease_t *slots[SLOTS];
    size_t count;
    int64_t spread;
} ar_gw_leases_t;

static int64_t nano_of(double usd)
{
    return usd > 0 ? (int64_t)ceil(usd * 1e9) : 0;
}

static void tick(uv_timer_t *t);

static void start_ticking(ar_gw_leases_t *set)
{
    if (set->ticking)
        return;
    set->ticking = true;
    uv_timer_start(&set->timer, tick, FLUSH_MS, FLUSH_MS);
}

static ar_gw_lease_t *lease_of(ar_gw_leases_t *set, const ar_gw_req_t *g, int64_t id)
{
    ar_gw_lease_t **slot = &set->slots[(uint64_t)id % SLOTS];
    for (ar_gw_lease_t *l = *slot; l; l = l->next) {
        if (l->key_id == id)
            return l;
    }
    ar_gw_lease_t *l = ar_xcalloc(1, sizeof(*l));
    l->set = set;
    l->key_id = id;
    l->state = g->ctx.key->state;
    snprintf(l->rkey, sizeof(l->rkey), "airouter:key:{%lld}", (long long)id);
    ar_redis_member(set->w->redis, l->member);
    ar_list_init(&l->waiters);
    l->next = *slot;
    *slot = l;
    set->count++;
    start_ticking(set);
    return l;
}

/* Whether amount a fits in the room of every limited kind. */
static bool fits(const ar_gw_lease_t *l, ar_redis_amount_t a)
{
    return (!ar_quota_limits_tokens(&l->lim) || l->room.tokens >= a.tokens) &&
           (l->lim.budget_usd < 0 || l->room.nano >= a.nano);
}

/* g takes a from the room (a is at most the room in every limited kind). */
static void take(ar_gw_lease_t *l, ar_gw_req_t *g, ar_redis_amount_t a)
{
    if (!ar_quota_limits_tokens(&l->lim))
        a.tokens = 0;
    if (l->lim.budget_usd < 0)
        a.nano = 0;
    l->room.tokens -= a.tokens;
    l->room.nano -= a.nano;
    l->in_flight.tokens += a.tokens;
    l->in_flight.nano += a.nano;
    g->lease = l;
    g->lease_took = a;
}

static void on_answer(void *ud, int rc, const ar_redis_lease_answer_t *a);

/* Renews the lease, sized for head (NULL: a renewal with nothing waiting, which keeps the
 * room unless the lease is idle); answered unless last (the worker is stopping: its usage
 * goes out, nothing comes back). @return 0, or AR_EUNAVAIL (nothing sent). */
static int renew(ar_gw_lease_t *l, ar_gw_req_t *head, uint64_t now, bool last)
{
    int64_t wall = ar_wall_ms();
    const ar_quota_limits_t *lim = &l->lim;
    ar_quota_shared_t seen;
    ar_quota_known(&l->state->quota, wall, &seen);
    ar_redis_lease_ask_t a = {
        .day = ar_quota_day_of(wall),
        .month = ar_quota_month_of(wall),
        .hold_ms = l->hold_ms,
        .day_tokens = lim->day_tokens,
        .month_tokens = lim->month_tokens,
        .total_tokens = lim->total_tokens,
        .budget_nano = lim->budget_usd >= 0 ? (int64_t)floor(lim->budget_usd * 1e9) : -1,
        .usage = l->pending,
        .in_flight = l->in_flight,
        .need_min = {-1, -1},
        .need_max = l->unit,
        .spread = l->set->spread,
        .seed = {seen.day_tokens, seen.month_tokens, seen.total_tokens, nano_of(seen.total_usd)},
    };
    if (head) {
        a.need_min = head->lease_min;
        a.need_max = head->lease_max;
        a.want = (ar_redis_amount_t){CHUNK * head->lease_max.tokens, CHUNK * head->lease_max.nano};
    } else if (now - l->used_ms < IDLE_RELEASE_MS) {
        a.want = l->room;
    }
    if (ar_redis_quota_lease(l->set->w->redis, l->rkey, l->member, &a, last ? NULL : on_answer,
                             l) != 0)
        return AR_EUNAVAIL;
    l->sent = l->pending;
    l->pending = (ar_redis_amount_t){0, 0};
    l->room_at_send = l->room;
    l->asking = true;
    l->asked_for = head;
    return 0;
}

static void unpark(ar_gw_lease_t *l, ar_gw_req_t *g)
{
    ar_list_remove(&g->lease_link);
    g->lease_waiting = false;
    g->lease = NULL;
    if (l->asked_for == g)
        l->asked_for = NULL;
}

/* Redis gave no answer: every waiter decides with this instance's share. */
static void fail_waiters(ar_gw_lease_t *l)
{
    while (!ar_list_empty(&l->waiters)) {
        ar_gw_req_t *g = ar_container_of(l->waiters.next, ar_gw_req_t, lease_link);
        ar_http_request_t *http = g->http;
        unpark(l, g);
        if (ar_gw_key_quota_fallback(g))
            ar_gw_admit_next(g);
        ar_http_unref(http);
    }
}

/* Serves the waiters the room holds, in order; head (the one the renewal was sized for)
 * may take less than its worst case (what was left), or is refused by verdict. Then
 * renews for the first one left, if any. */
static void serve_waiters(ar_gw_lease_t *l, ar_gw_req_t *head, int verdict)
{
    while (!ar_list_empty(&l->waiters)) {
        ar_gw_req_t *g = ar_container_of(l->waiters.next, ar_gw_req_t, lease_link);
        ar_http_request_t *http = g->http;
        if (fits(l, g->lease_max)) {
            unpark(l, g);
            take(l, g, g->lease_max);
            ar_gw_admit_next(g);
        } else if (g == head && verdict == 0) {
            /* less was left than its worst case: it takes what there is, as a local
             * quota's last request does */
            ar_redis_amount_t a = {
                l->room.tokens < g->lease_max.tokens ? l->room.tokens : g->lease_max.tokens,
                l->room.nano < g->lease_max.nano ? l->room.nano : g->lease_max.nano};
            unpark(l, g);
            take(l, g, a);
            ar_gw_admit_next(g);
        } else if (g == head) {
            unpark(l, g);
            ar_gw_key_quota_refused(g, verdict == 2 ? AR_QUOTA_BUDGET : AR_QUOTA_TOKENS);
        } else {
            break;
        }
        head = NULL;
        ar_http_unref(http);
    }
    if (!ar_list_empty(&l->waiters) && !l->asking &&
        renew(l, ar_container_of(l->waiters.next, ar_gw_req_t, lease_link), ar_now_ms(), false) !=
            0)
        fail_waiters(l);
}

static void on_answer(void *ud, int rc, const ar_redis_lease_answer_t *a)
{
    ar_gw_lease_t *l = ud;
    ar_gw_req_t *head = l->asked_for;
    l->asking = false;
    l->asked_for = NULL;
    if (rc != 0) {
        /* renewed or not, nobody knows: the room may no longer be reserved */
        l->pending.tokens += l->sent.tokens;
        l->pending.nano += l->sent.nano;
        l->room = (ar_redis_amount_t){0, 0};
        l->sent = l->room;
        fail_waiters(l);
        return;
    }
    /* no take ran meanwhile: the room only grew, by what settled requests gave back */
    l->room.tokens = a->room_tokens + (l->room.tokens - l->room_at_send.tokens);
    l->room.nano = a->room_nano + (l->room.nano - l->room_at_send.nano);
    l->sent = (ar_redis_amount_t){0, 0};
    l->renewed_ms = ar_now_ms();
    l->epoch = ar_redis_conn_epoch(l->set->w->redis);
    ar_quota_shared_t fleet = {a->used.day_tokens, a->used.month_tokens, a->used.total_tokens,
                               (double)a->used.total_nano / 1e9};
    ar_quota_sync(&l->state->quota, &fleet, ar_wall_ms());
    serve_waiters(l, head, a->verdict);
}

bool ar_gw_lease_take(ar_gw_req_t *g)
{
    ar_gw_worker_t *w = g->gw;
    if (!w->leases)
        ar_gw_leases_init(w);
    ar_gw_leases_t *set = w->leases;
    set->spread = g->rt->cfg->storage.redis_instances * ar_server_worker_cnt(w->gw->server);
    const ar_tkey_conf_t *conf = atomic_load_explicit(&g->ctx.key->conf, memory_order_acquire);
    ar_gw_lease_t *l = lease_of(set, g, conf->id);
    const ar_quota_ask_t *ask = &g->quota_ask;
    int64_t prompt = ask->prompt_tokens > 0 ? ask->prompt_tokens : 1;
    int64_t out = ask->max_output_tokens > 0 ? ask->max_output_tokens : 0;
    g->lease_min = (ar_redis_amount_t){prompt, nano_of((double)prompt * ask->input_price)};
    g->lease_max = (ar_redis_amount_t){
        prompt + out, nano_of((double)prompt * ask->input_price + (double)out * ask->output_price)};
    /* room granted under other limits (the key's were just changed: a budget lowered)
     * is not used before Redis weighs it against the new ones */
    bool same_limits = memcmp(&l->lim, &g->quota_lim, sizeof(l->lim)) == 0;
    l->lim = g->quota_lim;
    l->unit = g->lease_max;
    l->hold_ms = ar_gw_key_quota_hold_ms(g);
    uint64_t now = ar_now_ms();
    l->used_ms = now;
    /* a lease not renewed for half its life may have expired in Redis, and one granted
     * before the connection was lost may be gone with a Redis that restarted */
    bool fresh = same_limits && l->renewed_ms && now - l->renewed_ms < (uint64_t)l->hold_ms / 2 &&
                 l->epoch == ar_redis_conn_epoch(w->redis);
    if (!l->asking && ar_list_empty(&l->waiters) && fresh && fits(l, g->lease_max)) {
        take(l, g, g->lease_max);
        return false;
    }
    if (!fresh && !l->asking)
        l->room = (ar_redis_amount_t){0, 0};
    ar_list_insert_tail(&l->waiters, &g->lease_link);
    g->lease_waiting = true;
    g->lease = l;
    ar_http_ref(g->http);
    if (!l->asking && renew(l, g, now, false) != 0) {
        unpark(l, g);
        ar_http_unref(g->http);
        return !ar_gw_key_quota_fallback(g);
    }
    return true;
}

void ar_gw_lease_settle(ar_gw_req_t *g, int64_t tokens, double cost_usd)
{
    ar_gw_lease_t *l = g->lease;
    if (!l)
        return;
    if (g->lease_waiting) {
        /* finished while waiting (aborted): it leaves the line, having used nothing; a
         * renewal sized for it serves the next one */
        unpark(l, g);
        ar_http_unref(g->http);
        return;
    }
    g->lease = NULL;
    ar_redis_amount_t took = g->lease_took, used = {tokens > 0 ? tokens : 0, nano_of(cost_usd)};
    l->in_flight.tokens -= took.tokens;
    l->in_flight.nano -= took.nano;
    if (ar_quota_limits_tokens(&l->lim))
        l->room.tokens += took.tokens - used.tokens;
    if (l->lim.budget_usd >= 0)
        l->room.nano += took.nano - used.nano;
    l->pending.tokens += used.tokens;
    l->pending.nano += used.nano;
    l->used_ms = ar_now_ms();
}

/* ---- the timer: renewals, idle leases ---- */

static void forget(ar_gw_leases_t *set, ar_gw_lease_t **at)
{
    ar_gw_lease_t *l = *at;
    *at = l->next;
    set->count--;
    ar_free(l);
}

static void tick(uv_timer_t *t)
{
    ar_gw_leases_t *set = t->data;
    uint64_t now = ar_now_ms();
    bool ready = ar_redis_conn_ready(set->w->redis);
    for (size_t i = 0; i < SLOTS; i++) {
        for (ar_gw_lease_t **at = &set->slots[i]; *at;) {
            ar_gw_lease_t *l = *at;
            bool holds = l->room.tokens > 0 || l->room.nano > 0 || l->in_flight.tokens > 0 ||
                         l->in_flight.nano > 0;
            bool owes = l->pending.tokens > 0 || l->pending.nano > 0;
            bool idle = now - l->used_ms >= IDLE_RELEASE_MS;
            if (!l->asking && ar_list_empty(&l->waiters) && !holds && !owes &&
                now - l->used_ms >= IDLE_FORGET_MS) {
                forget(set, at);
                continue;
            }
            bool due = l->renewed_ms && now - l->renewed_ms >= (uint64_t)l->hold_ms / 2 && holds;
            if (ready && !l->asking && (owes || due || (idle && holds)))
                (void)renew(l, NULL, now, false);
            at = &l->next;
        }
    }
    if (set->count == 0) {
        uv_timer_stop(&set->timer);
        set->ticking = false;
    }
}

void ar_gw_leases_init(ar_gw_worker_t *w)
{
    ar_gw_leases_t *set = ar_xcalloc(1, sizeof(*set));
    set->w = w;
    uv_timer_init(w->worker->loop, &set->timer);
    set->timer.data = set;
    w->leases = set;
}

static void on_timer_closed(uv_handle_t *h)
{
    ar_gw_leases_t *set = h->data;
    for (size_t i = 0; i < SLOTS; i++) {
        while (set->slots[i])
            forget(set, &set->slots[i]);
    }
    ar_free(set);
}

void ar_gw_leases_dispose(ar_gw_worker_t *w)
{
    ar_gw_leases_t *set = w->leases;
    if (!set)
        return;
    w->leases = NULL;
    /* the usage settled since the last renewal, once more (best effort: the loop may not
     * turn again to send it; the ledger has it either way) */
    uint64_t now = ar_now_ms();
    for (size_t i = 0; i < SLOTS; i++) {
        for (ar_gw_lease_t *l = set->slots[i]; l; l = l->next) {
            if (!l->asking && (l->pending.tokens > 0 || l->pending.nano > 0)) {
                l->used_ms = 0; /* idle: the room goes back too */
                (void)renew(l, NULL, now, true);
            }
        }
    }
    uv_close((uv_handle_t *)&set->timer, on_timer_closed);
}
