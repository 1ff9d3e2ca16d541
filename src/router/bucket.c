/*
 * bucket.c: lock-free token buckets and their fixed-size keyed tables (see bucket.h). A
 * bucket is one atomic "theoretical arrival time" (GCRA, the token bucket written as a
 * single timestamp); a table is an open-addressed array of slots whose keys are claimed by
 * compare-and-swap and never freed while the table lives, only reused. Nothing here reads
 * a clock or allocates after creation.
 */
#include <string.h>

#include "core/mem.h"
#include "router/bucket.h"

#define NS_PER_MS 1000000
#define NS_PER_MIN 60000000000LL
#define TOUCH_MS 500 /* last-use times are refreshed at most this often (fewer writes) */

/* ---- one bucket ---- */

bool ar_bucket_limit_init(ar_bucket_limit_t *lim, int64_t requests_per_minute, int64_t burst_size)
{
    memset(lim, 0, sizeof(*lim));
    if (requests_per_minute < 1 || burst_size < 1 || requests_per_minute > NS_PER_MIN)
        return false;
    lim->interval_ns = NS_PER_MIN / requests_per_minute;
    lim->capacity = burst_size;
    if (burst_size > AR_BUCKET_MAX_NS / lim->interval_ns)
        lim->capacity = AR_BUCKET_MAX_NS / lim->interval_ns;
    lim->tolerance_ns = lim->capacity * lim->interval_ns;
    return true;
}

void ar_bucket_init(ar_bucket_t *b)
{
    atomic_init(&b->_tat_ns, 0);
}

/* The caller's clock in nanoseconds, clamped so that sums below cannot overflow. */
static int64_t to_ns(uint64_t now_ms)
{
    if (now_ms > (uint64_t)(AR_BUCKET_MAX_NS / NS_PER_MS))
        now_ms = (uint64_t)(AR_BUCKET_MAX_NS / NS_PER_MS);
    return (int64_t)now_ms * NS_PER_MS;
}

/* Nanoseconds to milliseconds, rounded up: a client told to wait must not come back early. */
static int64_t ceil_ms(int64_t ns)
{
    return ns <= 0 ? 0 : (ns + NS_PER_MS - 1) / NS_PER_MS;
}

/* Whole tokens in a bucket whose debt (time until full) is debt_ns. */
static int64_t tokens_left(const ar_bucket_limit_t *lim, int64_t debt_ns)
{
    if (debt_ns >= lim->tolerance_ns)
        return 0;
    return (lim->tolerance_ns - debt_ns) / lim->interval_ns;
}

bool ar_bucket_take(ar_bucket_t *b, const ar_bucket_limit_t *lim, uint64_t now_ms,
                    ar_bucket_result_t *out)
{
    int64_t now = to_ns(now_ms);
    int64_t tat = atomic_load_explicit(&b->_tat_ns, memory_order_relaxed);
    out->limit = lim->capacity;
    for (;;) {
        /* a time in the past means the bucket refilled completely meanwhile */
        int64_t base = tat > now ? tat : now;
        int64_t next = base + lim->interval_ns;
        int64_t debt = next - now;
        if (debt > lim->tolerance_ns) {
            out->allowed = false;
            out->remaining = 0;
            out->retry_ms = ceil_ms(debt - lim->tolerance_ns);
            out->full_ms = ceil_ms(base - now);
            return false;
        }
        if (atomic_compare_exchange_weak_explicit(&b->_tat_ns, &tat, next, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            out->allowed = true;
            out->remaining = tokens_left(lim, debt);
            out->retry_ms = 0;
            out->full_ms = ceil_ms(debt);
            return true;
        }
    }
}

void ar_bucket_give(ar_bucket_t *b, const ar_bucket_limit_t *lim)
{
    /* Takes add one interval each, so subtracting one undoes exactly one take whatever
     * happened in between; a result in the past reads as a full bucket. */
    atomic_fetch_sub_explicit(&b->_tat_ns, lim->interval_ns, memory_order_acq_rel);
}

void ar_bucket_peek(const ar_bucket_t *b, const ar_bucket_limit_t *lim, uint64_t now_ms,
                    ar_bucket_result_t *out)
{
    int64_t now = to_ns(now_ms);
    int64_t tat = atomic_load_explicit(&b->_tat_ns, memory_order_acquire);
    int64_t debt = tat > now ? tat - now : 0;
    int64_t over = debt + lim->interval_ns - lim->tolerance_ns;
    out->limit = lim->capacity;
    out->allowed = over <= 0;
    out->remaining = tokens_left(lim, debt);
    out->retry_ms = over > 0 ? ceil_ms(over) : 0;
    out->full_ms = ceil_ms(debt);
}

/* ---- keyed tables ---- */

typedef struct slot {
    _Atomic uint64_t key;    /* hash of (kind, id); 0 = never used */
    _Atomic int64_t last_ms; /* last lookup, refreshed every TOUCH_MS at most */
    ar_bucket_t bucket;
} slot_t;

struct ar_bucket_table {
    size_t mask;
    uint64_t seed;
    _Atomic uint64_t overflows;
    ar_bucket_t overflow; /* shared by keys that found no slot */
    slot_t slots[];
};

ar_bucket_table_t *ar_bucket_table_create(size_t slots, uint64_t seed)
{
    size_t n = AR_BUCKET_PROBE;
    while (n < slots)
        n <<= 1;
    ar_bucket_table_t *t = ar_xcalloc(1, sizeof(*t) + n * sizeof(slot_t));
    t->mask = n - 1;
    t->seed = seed;
    return t;
}

void ar_bucket_table_destroy(ar_bucket_table_t *t)
{
    if (t)
        ar_free(t);
}

/* FNV-1a from a seeded start, then a 64-bit finaliser (murmur3 fmix64) so that the low
 * bits, which pick the probe window, depend on every input byte. Never 0 (= empty). */
static uint64_t hash_key(uint64_t seed, char kind, ar_span_t id)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    h = (h ^ (unsigned char)kind) * 0x100000001b3ull;
    for (size_t i = 0; i < id.len; i++)
        h = (h ^ (unsigned char)id.ptr[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h ? h : 1;
}

static void touch(slot_t *s, int64_t now_ms)
{
    int64_t last = atomic_load_explicit(&s->last_ms, memory_order_relaxed);
    if (now_ms - last >= TOUCH_MS)
        atomic_store_explicit(&s->last_ms, now_ms, memory_order_relaxed);
}

/* A slot may change owner after a long idle time, or a short one if its bucket is full
 * again: a full bucket carries no state a new one would not have. */
static bool reusable(slot_t *s, int64_t last_ms, int64_t now_ms)
{
    int64_t idle = now_ms - last_ms;
    if (idle > AR_BUCKET_IDLE_MS)
        return true;
    return idle > AR_BUCKET_SHORT_IDLE_MS &&
           atomic_load_explicit(&s->bucket._tat_ns, memory_order_relaxed) <= to_ns(now_ms);
}

const ar_bucket_t *ar_bucket_table_find(const ar_bucket_table_t *t, char kind, ar_span_t id)
{
    uint64_t h = hash_key(t->seed, kind, id);
    for (size_t i = 0; i < AR_BUCKET_PROBE; i++) {
        const slot_t *s = &t->slots[(h + i) & t->mask];
        uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
        if (k == h)
            return &s->bucket;
        if (k == 0)
            return NULL;
    }
    return NULL;
}

ar_bucket_t *ar_bucket_table_get(ar_bucket_table_t *t, char kind, ar_span_t id, uint64_t now_ms)
{
    uint64_t h = hash_key(t->seed, kind, id);
    int64_t now = (int64_t)now_ms;
    /* A lost race (another thread claimed the slot we chose) rescans; a few rounds are
     * plenty, since each lost race means a slot in this window changed owner. */
    for (int round = 0; round < 4; round++) {
        slot_t *empty = NULL;
        slot_t *old = NULL;
        int64_t old_last = 0;
        for (size_t i = 0; i < AR_BUCKET_PROBE; i++) {
            slot_t *s = &t->slots[(h + i) & t->mask];
            uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
            if (k == h) {
                touch(s, now);
                return &s->bucket;
            }
            if (k == 0) {
                /* keys are never removed, so h cannot sit beyond a never-used slot */
                empty = s;
                break;
            }
            if (!old) {
                int64_t last = atomic_load_explicit(&s->last_ms, memory_order_relaxed);
                if (reusable(s, last, now)) {
                    old = s;
                    old_last = last;
                }
            }
        }
        if (empty) {
            uint64_t zero = 0;
            atomic_store_explicit(&empty->last_ms, now, memory_order_relaxed);
            if (atomic_compare_exchange_strong_explicit(&empty->key, &zero, h, memory_order_acq_rel,
                                                        memory_order_acquire))
                return &empty->bucket;
            continue;
        }
        if (old) {
            /* Claiming the last-use time first makes one thread the reuser, and fails if
             * the old owner came back meanwhile. The bucket is reset before the new key is
             * published (release), so its first reader sees a full bucket. */
            if (!atomic_compare_exchange_strong_explicit(
                    &old->last_ms, &old_last, now, memory_order_acq_rel, memory_order_relaxed))
                continue;
            atomic_store_explicit(&old->bucket._tat_ns, 0, memory_order_relaxed);
            atomic_store_explicit(&old->key, h, memory_order_release);
            return &old->bucket;
        }
        break;
    }
    atomic_fetch_add_explicit(&t->overflows, 1, memory_order_relaxed);
    return &t->overflow;
}

size_t ar_bucket_table_used(const ar_bucket_table_t *t)
{
    size_t n = 0;
    for (size_t i = 0; i <= t->mask; i++)
        n += atomic_load_explicit(&t->slots[i].key, memory_order_relaxed) != 0;
    return n;
}

uint64_t ar_bucket_table_overflows(const ar_bucket_table_t *t)
{
    return atomic_load_explicit(&t->overflows, memory_order_relaxed);
}
