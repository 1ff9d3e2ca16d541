/*
 * redis.h: the Redis client behind limits shared by several airouter instances
 * (storage.redis_url). It owns the parsed URL, one asynchronous connection per worker loop
 * (hiredis on libuv, never blocking the loop), the Lua scripts of the shared limits
 * (sliding windows for RPM/TPM, token buckets for client rate limiting, key quotas and
 * budgets) and the process-wide up/down state and counters that /health and /metrics show.
 *
 * A window check is one EVALSHA: every key is a sorted set of the admissions of the last
 * window_ms (scored by Redis's own clock, so instances need no clock agreement); the script
 * admits only when every key has room, and then charges all of them, atomically. Token
 * windows (TPM) are charged an estimate at admission and corrected with the real usage
 * once it is known (ar_redis_window_settle, a second script). A check
 * that gets no answer within AR_REDIS_TIMEOUT_MS, or a connection that breaks, fails the
 * checks waiting on it with AR_EUNAVAIL (the caller falls back to its local windows),
 * drops the connection and reconnects with backoff (100 ms doubling to 2 s).
 */
#ifndef AR_STORE_REDIS_H
#define AR_STORE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"

#define AR_REDIS_TIMEOUT_MS 50
/* room for the member an admission was charged under (ar_redis_window_release) */
#define AR_REDIS_MEMBER_MAX 48

typedef struct ar_redis ar_redis_t;
typedef struct ar_redis_conn ar_redis_conn_t;

/** What /health and /metrics show. Counters are cumulative. */
typedef struct ar_redis_stats {
    bool up;                 /* at least one worker's connection is ready */
    long conns, conns_ready; /* connections (one per worker), and how many are ready */
    uint64_t checks, denied; /* window checks answered by Redis, and refused among them */
    uint64_t unavailable;    /* checks that fell back to the local windows */
    uint64_t timeouts;       /* of those, no answer within AR_REDIS_TIMEOUT_MS */
    uint64_t disconnects;    /* connections lost or dropped */
} ar_redis_stats_t;

/**
 * Parses url (redis://[[user]:password@]host[:port][/db]; host a name resolved once, here)
 * for the connections to come. Nothing is connected yet. Main thread.
 * @return the client, or NULL with a message in err (a bad URL, an unknown host, rediss://
 * which this build cannot speak).
 */
ar_redis_t *ar_redis_create(const char *url, char *err, size_t errlen);
/** Frees the client once every connection is closed. */
void ar_redis_destroy(ar_redis_t *r);
/** Fills out from the atomics. Any thread. */
void ar_redis_stats(const ar_redis_t *r, ar_redis_stats_t *out);

/** Opens a connection on loop (connects in the background). Loop thread. */
ar_redis_conn_t *ar_redis_conn_open(ar_redis_t *r, uv_loop_t *loop);
/**
 * Closes c: checks still waiting get AR_EUNAVAIL, its handles are closed and c is freed
 * as the loop runs on. Loop thread.
 */
void ar_redis_conn_close(ar_redis_conn_t *c);
/** True when c is connected with the script loaded: a check may be sent. */
bool ar_redis_conn_ready(const ar_redis_conn_t *c);
/** How many times c became ready: what was learned on an earlier connection (a Redis
 *  that restarted may have lost it) can be told apart. */
uint64_t ar_redis_conn_epoch(const ar_redis_conn_t *c);

/**
 * One window of a check: its key and its limit (>= 0); cost 0 for a window that counts
 * admissions (RPM: the limit is the most admissions it holds), else the tokens to charge to
 * a token window (TPM: the limit is the most tokens it holds; keep the key's hash tag: the
 * sum lives in KEY:sum beside it).
 */
typedef struct ar_redis_window {
    const char *key;
    int64_t limit;
    int64_t cost;
} ar_redis_window_t;

/**
 * The answer to a check: rc 0 with allowed (and, when refused, retry_ms until the fullest
 * window has room, >= 1), or rc AR_EUNAVAIL when Redis gave no answer.
 */
typedef void (*ar_redis_verdict_cb)(void *ud, int rc, bool allowed, int64_t retry_ms);

/**
 * Admits one event into every window of w (1..8 of them) over the last window_ms, or none.
 * Keys and limits are copied. When member is not NULL (AR_REDIS_MEMBER_MAX bytes) it
 * receives the name the event is charged under, for ar_redis_window_release. On 0, cb runs
 * exactly once, later, on c's loop (never inside this call). Loop thread.
 * @return 0, AR_EUNAVAIL (c is not ready: cb will not run) or AR_EINVAL.
 */
int ar_redis_window_admit(ar_redis_conn_t *c, const ar_redis_window_t *w, size_t n,
                          int64_t window_ms, char *member, ar_redis_verdict_cb cb,
                          void *ud) AR_MUST_CHECK;

/**
 * Gives back an admission that was never used: removes member from the windows keys[0..n)
 * (one ZREM each, pipelined; no answer is awaited). Without a ready connection the
 * admission simply ages out of its window. Loop thread.
 */
void ar_redis_window_release(ar_redis_conn_t *c, const char *const *keys, size_t n,
                             const char *member);

/**
 * Corrects an admission charged `charged` tokens (>= 1) under member in the token windows
 * keys[0..n) to the `used` tokens the request really took (fire and forget: no answer is
 * awaited). Without a ready connection the estimate stays until it ages out. Loop thread.
 */
void ar_redis_window_settle(ar_redis_conn_t *c, const char *const *keys, size_t n,
                            const char *member, int64_t charged, int64_t used);

/* ---- key quotas and budgets (redis_quota.c) ---- */

/** An amount of a quota: tokens, and money in nano-USD. */
typedef struct ar_redis_amount {
    int64_t tokens, nano;
} ar_redis_amount_t;

/** A key's usage across the fleet in the current periods (tokens; nano-USD all time). */
typedef struct ar_redis_quota_used {
    int64_t day_tokens, month_tokens, total_tokens, total_nano;
} ar_redis_quota_used_t;

/** What a lease asks of the shared counters; limits < 0 are none. */
typedef struct ar_redis_lease_ask {
    int64_t day, month; /* the periods now (tenant/quota.h's numbers) */
    int64_t hold_ms;    /* how long the lease lives unless renewed */
    int64_t day_tokens, month_tokens, total_tokens, budget_nano;
    ar_redis_amount_t usage;     /* settled since the last ask: counted now */
    ar_redis_amount_t in_flight; /* taken by requests still running: kept reserved */
    ar_redis_amount_t need_min;  /* the waiting request's prompt (tokens < 0: none waits) */
    ar_redis_amount_t need_max;  /* its worst case (prompt + maximum output) */
    ar_redis_amount_t want;      /* the room wanted for the requests to come */
    int64_t spread;              /* leases that may share what is left (>= 1) */
    ar_redis_quota_used_t seed;  /* this instance's view, should Redis hold none */
} ar_redis_lease_ask_t;

/** The answer: verdict 0 (room granted), 1 (a token limit has no room for the waiting
 *  request's prompt) or 2 (the budget has none); the room granted; the fleet's usage. */
typedef struct ar_redis_lease_answer {
    int verdict;
    int64_t room_tokens, room_nano;
    ar_redis_quota_used_t used;
} ar_redis_lease_answer_t;

typedef void (*ar_redis_lease_cb)(void *ud, int rc, const ar_redis_lease_answer_t *a);

/** A name unique to one event or lease across instances (a sorted-set member). */
void ar_redis_member(const ar_redis_conn_t *c, char out[AR_REDIS_MEMBER_MAX]);

/**
 * Renews the lease member of the key whose Redis prefix is key ("airouter:key:{ID}"),
 * atomically: counts ask->usage, gives the lease's old reservation back, and reserves
 * in_flight plus the room granted: nothing when a waiting request's need_min does not fit
 * (the verdict says which limit), else whole multiples of need_max up to want or 1/spread
 * of what is left, whichever is less, but at least need_max for a waiting request, and
 * never more than is left. cb (NULL: fire and forget) runs
 * once, later, on c's loop; rc AR_EUNAVAIL when Redis gave no answer (the lease may or may
 * not have been renewed). Loop thread.
 * @return 0, or AR_EUNAVAIL (c is not ready: cb will not run).
 */
int ar_redis_quota_lease(ar_redis_conn_t *c, const char *key, const char *member,
                         const ar_redis_lease_ask_t *ask, ar_redis_lease_cb cb,
                         void *ud) AR_MUST_CHECK;

/* ---- token buckets (client rate limiting) ---- */

/** Most buckets one take may check (global, client, model). */
#define AR_REDIS_BUCKETS_MAX 4

/**
 * One GCRA token bucket of a take: its key, capacity (tokens when full, >= 1) and the time
 * one token takes to come back (interval_us >= 1). The key holds the bucket's "theoretical
 * arrival time" in microseconds of Redis's clock and expires once the bucket is full again,
 * so an idle bucket costs nothing.
 */
typedef struct ar_redis_bucket {
    const char *key;
    int64_t capacity;
    int64_t interval_us;
} ar_redis_bucket_t;

/** What a take found, in the terms of ar_bucket_result_t (router/bucket.h). */
typedef struct ar_redis_bucket_verdict {
    bool allowed;
    size_t which;      /* refused: the first bucket without a token; admitted: the tightest
                        * (fewest tokens left, then the longest until full) */
    int64_t remaining; /* admitted: whole tokens left in `which`; refused: 0 */
    int64_t retry_ms;  /* refused: until `which` has a token (>= 1); admitted: 0 */
    int64_t full_ms;   /* until `which` is full again */
} ar_redis_bucket_verdict_t;

/** The answer to a take: rc 0 with v, or AR_EUNAVAIL (v NULL) when Redis gave no answer. */
typedef void (*ar_redis_bucket_cb)(void *ud, int rc, const ar_redis_bucket_verdict_t *v);

/**
 * Takes one token from every bucket of b (1..AR_REDIS_BUCKETS_MAX), atomically: only when
 * each has one, else none is charged. Timed by Redis's clock (instances need no clock
 * agreement). Keys are copied; a key is any string the caller built (keep client-chosen
 * bytes out of it). On 0, cb runs exactly once, later, on c's loop. Loop thread.
 * @return 0, AR_EUNAVAIL (c is not ready: cb will not run) or AR_EINVAL.
 */
int ar_redis_bucket_take(ar_redis_conn_t *c, const ar_redis_bucket_t *b, size_t n,
                         ar_redis_bucket_cb cb, void *ud) AR_MUST_CHECK;

#endif
