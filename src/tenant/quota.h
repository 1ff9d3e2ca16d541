/*
 * quota.h: a virtual key's token and budget quotas, exact under concurrency (SPEC
 * section 6). A request is admitted only when the key's unreserved remainder covers its
 * prompt estimate; it then reserves its worst case (prompt + maximum output) capped at that
 * remainder, and settles with its real usage when it ends, which releases the rest. So a
 * key with little left can still make a request, and the overshoot of a limit is at most
 * one request's overrun. Day (UTC) and month counters restart when their period changes.
 * One mutex per key: only requests of the same key ever wait on each other.
 *
 * With several instances the shared counters (Redis) decide, and each answer brings the
 * fleet's usage here (ar_quota_sync): what other instances used is counted against the
 * limits, never reported as this key's usage on this instance. Without Redis an instance
 * may spend only its share of what was left when it last heard (ar_quota_share_limits).
 */
#ifndef AR_TENANT_QUOTA_H
#define AR_TENANT_QUOTA_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/spend.h"

/* What a key may spend; -1 (< 0 for the budget) = no limit. */
typedef struct ar_quota_limits {
    int64_t day_tokens, month_tokens, total_tokens;
    double budget_usd; /* all time */
} ar_quota_limits_t;

typedef struct ar_quota {
    pthread_mutex_t mu;
    int64_t day, month; /* the periods day/month hold: days since 1970, year*12 + month */
    ar_usage_totals_t used_day, used_month, used_total;
    int64_t reserved_tokens;
    double reserved_usd;
    int64_t in_flight; /* reservations not settled yet */
    /* the fleet's usage as the shared counters said last (ar_quota_sync; at start, what the
     * ledger held), and how much of it other instances used beyond the counters above */
    int64_t shared_day, shared_month, shared_total;
    double shared_usd;
    int64_t others_day, others_month, others_total;
    double others_usd;
} ar_quota_t;

/* The fleet's usage of a key in its current periods (tokens; the budget's USD all time). */
typedef struct ar_quota_shared {
    int64_t day_tokens, month_tokens, total_tokens;
    double total_usd;
} ar_quota_shared_t;

/* What a request asks for. */
typedef struct ar_quota_ask {
    int64_t prompt_tokens;            /* the estimate */
    int64_t max_output_tokens;        /* max_tokens, else storage.default_max_output_tokens */
    double input_price, output_price; /* USD per token; 0 when unknown */
} ar_quota_ask_t;

/* What one admitted request holds until it settles. */
typedef struct ar_reservation {
    int64_t tokens;
    double usd;
    bool held;
} ar_reservation_t;

/* Which limit refused a request. */
typedef enum ar_quota_verdict {
    AR_QUOTA_OK = 0,
    AR_QUOTA_TOKENS, /* a token limit (day, month or total) has no room for the prompt */
    AR_QUOTA_BUDGET, /* the budget has no room for the prompt's cost */
} ar_quota_verdict_t;

/** Whether lim limits tokens (a day, month or total limit), anything at all (or a budget). */
static inline bool ar_quota_limits_tokens(const ar_quota_limits_t *lim)
{
    return lim->day_tokens >= 0 || lim->month_tokens >= 0 || lim->total_tokens >= 0;
}
static inline bool ar_quota_limits_any(const ar_quota_limits_t *lim)
{
    return ar_quota_limits_tokens(lim) || lim->budget_usd >= 0;
}

/** Starts a quota with the usage the ledger holds (any may be NULL: zero). */
void ar_quota_init(ar_quota_t *q, const ar_usage_totals_t *day, const ar_usage_totals_t *month,
                   const ar_usage_totals_t *total, int64_t now_ms);
void ar_quota_dispose(ar_quota_t *q);
/** The period numbers of a wall-clock time (UTC). */
int64_t ar_quota_day_of(int64_t wall_ms);
int64_t ar_quota_month_of(int64_t wall_ms);
/** Wall-clock ms when the period after now_ms's day / month begins. */
int64_t ar_quota_next_day_ms(int64_t now_ms);
int64_t ar_quota_next_month_ms(int64_t now_ms);

/**
 * Admits and reserves, atomically. @return AR_QUOTA_OK with *r held, or the limit that
 * refused (nothing reserved).
 */
ar_quota_verdict_t ar_quota_reserve(ar_quota_t *q, const ar_quota_limits_t *lim,
                                    const ar_quota_ask_t *ask, int64_t now_ms, ar_reservation_t *r);
/**
 * Counts a finished request (held reservation or none: a request of a key without quotas
 * is counted too) and releases its reservation. Idempotent on r (a settled r is not held).
 */
void ar_quota_settle(ar_quota_t *q, ar_reservation_t *r, int64_t prompt_tokens,
                     int64_t completion_tokens, double cost_usd, int64_t now_ms);
/** Gives back a held reservation without counting any usage. Idempotent. */
void ar_quota_release(ar_quota_t *q, ar_reservation_t *r);
/** Takes the fleet's usage the shared counters answered (for now_ms's periods). */
void ar_quota_sync(ar_quota_t *q, const ar_quota_shared_t *fleet, int64_t now_ms);
/** The usage this instance knows of: its own plus what other instances used, as last
 *  synced (what seeds the shared counters when Redis has none). */
void ar_quota_known(ar_quota_t *q, int64_t now_ms, ar_quota_shared_t *out);
/**
 * The limits of one of n instances that cannot reach the shared counters: the usage last
 * synced plus 1/n of the room left then, so that n instances together stay within lim.
 */
ar_quota_limits_t ar_quota_share_limits(ar_quota_t *q, const ar_quota_limits_t *lim, int64_t n,
                                        int64_t now_ms);
/** The usage now (periods rolled to now_ms) and what is reserved. */
void ar_quota_read(ar_quota_t *q, int64_t now_ms, ar_usage_totals_t *day, ar_usage_totals_t *month,
                   ar_usage_totals_t *total, int64_t *reserved_tokens);
/** Tokens left under the tightest token limit, reservations deducted; -1 when none is set. */
int64_t ar_quota_tokens_left(ar_quota_t *q, const ar_quota_limits_t *lim, int64_t now_ms);

#endif
