/*
 * bucket.h: token buckets for client rate limiting (SPEC section 4), shared by all worker
 * threads without a lock. A bucket holds `capacity` tokens and refills continuously at one
 * token per `interval`; a request takes one token or learns how long to wait. A keyed table
 * of buckets (per client, per model) has a fixed size set at creation and never grows.
 * Time is passed in (now_ms, monotonic), never read here; limits are passed on every call,
 * so a bucket survives a config reload and simply follows the new limits.
 */
#ifndef AR_ROUTER_BUCKET_H
#define AR_ROUTER_BUCKET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/span.h"

/**
 * The limits of a bucket, from a config row (see ar_bucket_limit_init). Plain data: build
 * it on the stack for each check, it costs one division.
 */
typedef struct ar_bucket_limit {
    int64_t capacity;     /* tokens when full (burst_size) */
    int64_t interval_ns;  /* time to refill one token (60 s / requests_per_minute) */
    int64_t tolerance_ns; /* capacity * interval_ns, clamped to AR_BUCKET_MAX_NS */
} ar_bucket_limit_t;

/** Longest debt a bucket can hold (about 73 years); larger capacities are clamped to it. */
#define AR_BUCKET_MAX_NS (INT64_MAX / 4)

/**
 * One bucket. The whole state is the "theoretical arrival time" (GCRA): the instant at
 * which the bucket would be full again, in nanoseconds of the caller's clock. Taking a
 * token moves it one interval later; time moving past it is the refill. One 64-bit atomic
 * updated by compare-and-swap, so it packs tokens and timestamp at full precision without
 * the overflow limits of a tokens|time bit split. Zeroed memory is a full bucket.
 */
typedef struct ar_bucket {
    _Atomic int64_t _tat_ns;
} ar_bucket_t;

/** What a take (or peek) found. */
typedef struct ar_bucket_result {
    bool allowed;      /* the token was taken (peek: one is available) */
    int64_t limit;     /* capacity */
    int64_t remaining; /* whole tokens left after this call, 0..capacity */
    int64_t retry_ms;  /* refused: until the next token arrives (rounded up); else 0 */
    int64_t full_ms;   /* until the bucket is full again (rounded up); 0 when full */
} ar_bucket_result_t;

/**
 * Builds the limits of a bucket holding burst_size tokens and refilling requests_per_minute
 * tokens per 60 s. @return false when the bucket is unlimited (either value -1 or below 1,
 * or a rate above one token per nanosecond): the caller then skips it.
 */
bool ar_bucket_limit_init(ar_bucket_limit_t *lim, int64_t requests_per_minute, int64_t burst_size);

/** Makes b a full bucket (zeroed memory is one too). Not concurrent with other calls. */
void ar_bucket_init(ar_bucket_t *b);

/**
 * Takes one token at now_ms if there is one. Any thread; lock-free. Concurrent takers at
 * the same instant never get more than the tokens the bucket holds.
 * @param b the bucket (borrowed)
 * @param lim its limits (borrowed; may differ from the previous call's: a reload)
 * @param out filled in either case (borrowed)
 * @return true when the token was taken.
 */
bool ar_bucket_take(ar_bucket_t *b, const ar_bucket_limit_t *lim, uint64_t now_ms,
                    ar_bucket_result_t *out);

/**
 * Gives back one token taken by ar_bucket_take with the same limits (a request refused by a
 * later bucket was not served, so it must not count). Exact whenever it happens: the time
 * elapsed since the take does not matter. Any thread.
 */
void ar_bucket_give(ar_bucket_t *b, const ar_bucket_limit_t *lim);

/** Reads the bucket at now_ms without taking anything (admin pages). Any thread. */
void ar_bucket_peek(const ar_bucket_t *b, const ar_bucket_limit_t *lim, uint64_t now_ms,
                    ar_bucket_result_t *out);

/* ---- keyed tables ---- */

/**
 * A fixed-size table of buckets keyed by (kind, identity), e.g. ('c', X-Client-ID). Keys
 * are stored only as a seeded 64-bit hash, never as the identity itself (an API key used as
 * identity is not kept). Lookups probe AR_BUCKET_PROBE slots and take no lock. A slot is
 * reused for a new key when its owner has been idle longer than AR_BUCKET_IDLE_MS, or
 * idle longer than AR_BUCKET_SHORT_IDLE_MS with a full bucket (a full bucket is the same as
 * a new one, so reusing it loses nothing). When every probed slot is in use, the key gets
 * the table's single overflow bucket, shared by all such keys: memory stays bounded
 * whatever clients send, and a flood of new identities is limited together rather than
 * let through.
 */
typedef struct ar_bucket_table ar_bucket_table_t;

#define AR_BUCKET_PROBE 8
#define AR_BUCKET_IDLE_MS (10 * 60 * 1000)
#define AR_BUCKET_SHORT_IDLE_MS 2000

/**
 * Creates a table of slots buckets (rounded up to a power of two, at least
 * AR_BUCKET_PROBE). seed keys the hash (pass a random value so clients cannot aim at one
 * probe window). @return the table, owned, freed with ar_bucket_table_destroy; aborts on OOM.
 */
ar_bucket_table_t *ar_bucket_table_create(size_t slots, uint64_t seed);

/** Frees a table; no other thread may use it any more. NULL is ignored. */
void ar_bucket_table_destroy(ar_bucket_table_t *t);

/**
 * The bucket of (kind, id) at now_ms, created (or a slot reused) when needed. Any thread;
 * lock-free. @param id borrowed, any bytes; only its hash is stored.
 * @return never NULL: the key's own bucket, or the shared overflow bucket. The pointer is
 * valid for the table's life; use it at once (its slot may be reused after idling).
 */
ar_bucket_t *ar_bucket_table_get(ar_bucket_table_t *t, char kind, ar_span_t id, uint64_t now_ms);

/**
 * The bucket of (kind, id) if the table holds one, else NULL; creates and touches nothing
 * (admin pages read it with ar_bucket_peek). Any thread.
 */
const ar_bucket_t *ar_bucket_table_find(const ar_bucket_table_t *t, char kind, ar_span_t id);
/** Slots holding a key (a scan: tests and admin pages). */
size_t ar_bucket_table_used(const ar_bucket_table_t *t);

/** Lookups that got the overflow bucket since creation. */
uint64_t ar_bucket_table_overflows(const ar_bucket_table_t *t);

#endif
