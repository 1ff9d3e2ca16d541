/*
 * timeseries.c: per-shard rings of per-second counters (see timeseries.h). A slot knows
 * the second it holds; a writer that finds an older second there zeroes the slot before
 * counting, and a reader takes a slot only if it holds the second asked for. A reader may
 * race a writer recycling a slot an hour old: it then sees part of that second, which is
 * the edge of the window anyway.
 */
#include <stdatomic.h>
#include <string.h>

#include "core/mem.h"
#include "router/timeseries.h"

#define LAT_MIN_SHIFT 7 /* latencies under 2^7 µs share bucket 0 */

typedef struct ts_slot {
    _Atomic int64_t sec; /* the second counted here; 0: none yet */
    _Atomic uint64_t requests, errors, prompt, completion;
    _Atomic uint32_t lat[AR_TS_LAT_BUCKETS];
} ts_slot_t;

typedef struct ts_ring {
    ts_slot_t slots[AR_TS_SECONDS];
} ts_ring_t;

struct ar_ts {
    _Atomic(ts_ring_t *) rings[AR_TS_SHARDS_MAX];
};

ar_ts_t *ar_ts_create(void)
{
    return ar_xcalloc(1, sizeof(ar_ts_t));
}

void ar_ts_destroy(ar_ts_t *ts)
{
    if (!ts)
        return;
    for (size_t i = 0; i < AR_TS_SHARDS_MAX; i++)
        ar_free(atomic_load(&ts->rings[i]));
    ar_free(ts);
}

/* Bucket 2b + h holds [2^b, 1.5 * 2^b) µs (h = 0) or [1.5 * 2^b, 2^(b+1)) (h = 1), shifted
 * down by LAT_MIN_SHIFT octaves; the ends are clamped. */
static int lat_bucket(uint64_t us)
{
    if (us < 2)
        return 0;
    int b = 63 - __builtin_clzll(us);
    int half = (int)((us >> (b - 1)) & 1);
    int i = 2 * (b - LAT_MIN_SHIFT) + half;
    if (i < 0)
        return 0;
    return i < AR_TS_LAT_BUCKETS ? i : AR_TS_LAT_BUCKETS - 1;
}

/* The lower bound of bucket i in µs (bucket 0: 0). */
static double lat_lo(int i)
{
    if (i == 0)
        return 0;
    int b = i / 2 + LAT_MIN_SHIFT;
    double base = (double)(1ull << b);
    return i % 2 ? base * 1.5 : base;
}

static double lat_hi(int i)
{
    return lat_lo(i + 1);
}

static size_t slot_of(int64_t sec)
{
    int64_t m = sec % AR_TS_SECONDS;
    return (size_t)(m < 0 ? m + AR_TS_SECONDS : m);
}

static ts_ring_t *ring_of(ar_ts_t *ts, unsigned shard)
{
    _Atomic(ts_ring_t *) *p = &ts->rings[shard % AR_TS_SHARDS_MAX];
    ts_ring_t *r = atomic_load_explicit(p, memory_order_acquire);
    if (r)
        return r;
    ts_ring_t *made = ar_xcalloc(1, sizeof(*made));
    if (atomic_compare_exchange_strong_explicit(p, &r, made, memory_order_acq_rel,
                                                memory_order_acquire))
        return made;
    ar_free(made); /* two shards share a number (more than AR_TS_SHARDS_MAX): theirs won */
    return r;
}

void ar_ts_record(ar_ts_t *ts, unsigned shard, int64_t now_s, bool error, uint64_t latency_us,
                  int64_t prompt_tokens, int64_t completion_tokens)
{
    ts_slot_t *s = &ring_of(ts, shard)->slots[slot_of(now_s)];
    if (atomic_load_explicit(&s->sec, memory_order_relaxed) != now_s) {
        atomic_store_explicit(&s->requests, 0, memory_order_relaxed);
        atomic_store_explicit(&s->errors, 0, memory_order_relaxed);
        atomic_store_explicit(&s->prompt, 0, memory_order_relaxed);
        atomic_store_explicit(&s->completion, 0, memory_order_relaxed);
        for (int i = 0; i < AR_TS_LAT_BUCKETS; i++)
            atomic_store_explicit(&s->lat[i], 0, memory_order_relaxed);
        atomic_store_explicit(&s->sec, now_s, memory_order_release);
    }
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    if (error)
        atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
    if (prompt_tokens > 0)
        atomic_fetch_add_explicit(&s->prompt, (uint64_t)prompt_tokens, memory_order_relaxed);
    if (completion_tokens > 0)
        atomic_fetch_add_explicit(&s->completion, (uint64_t)completion_tokens,
                                  memory_order_relaxed);
    atomic_fetch_add_explicit(&s->lat[lat_bucket(latency_us)], 1, memory_order_relaxed);
}

/* The q-quantile in ms of a merged histogram, interpolated inside its bucket. */
static double quantile_ms(const uint64_t lat[AR_TS_LAT_BUCKETS], uint64_t total, double q)
{
    if (total == 0)
        return -1;
    double want = q * (double)total;
    uint64_t seen = 0;
    for (int i = 0; i < AR_TS_LAT_BUCKETS; i++) {
        if (lat[i] == 0)
            continue;
        if ((double)(seen + lat[i]) >= want) {
            double frac = (want - (double)seen) / (double)lat[i];
            if (frac < 0)
                frac = 0;
            return (lat_lo(i) + (lat_hi(i) - lat_lo(i)) * frac) / 1000.0;
        }
        seen += lat[i];
    }
    return lat_lo(AR_TS_LAT_BUCKETS - 1) / 1000.0;
}

size_t ar_ts_read(const ar_ts_t *ts, int64_t now_s, size_t n, ar_ts_point_t *out)
{
    if (n < 1)
        n = 1;
    if (n > AR_TS_SECONDS)
        n = AR_TS_SECONDS;
    ts_ring_t *rings[AR_TS_SHARDS_MAX];
    size_t rn = 0;
    for (size_t i = 0; i < AR_TS_SHARDS_MAX; i++) {
        ts_ring_t *r = atomic_load_explicit(&ts->rings[i], memory_order_acquire);
        if (r)
            rings[rn++] = r;
    }
    for (size_t k = 0; k < n; k++) {
        int64_t t = now_s - (int64_t)(n - 1 - k);
        ar_ts_point_t *p = &out[k];
        memset(p, 0, sizeof(*p));
        p->t = t;
        uint64_t lat[AR_TS_LAT_BUCKETS] = {0};
        uint64_t in_lat = 0;
        for (size_t j = 0; j < rn; j++) {
            ts_slot_t *s = &rings[j]->slots[slot_of(t)];
            if (atomic_load_explicit(&s->sec, memory_order_acquire) != t)
                continue;
            p->requests += atomic_load_explicit(&s->requests, memory_order_relaxed);
            p->errors += atomic_load_explicit(&s->errors, memory_order_relaxed);
            p->prompt_tokens += atomic_load_explicit(&s->prompt, memory_order_relaxed);
            p->completion_tokens += atomic_load_explicit(&s->completion, memory_order_relaxed);
            for (int i = 0; i < AR_TS_LAT_BUCKETS; i++) {
                uint32_t c = atomic_load_explicit(&s->lat[i], memory_order_relaxed);
                lat[i] += c;
                in_lat += c;
            }
        }
        p->p50_ms = quantile_ms(lat, in_lat, 0.5);
        p->p99_ms = quantile_ms(lat, in_lat, 0.99);
    }
    return n;
}
