/*
 * window.c: lock-free sliding windows (see window.h).
 */
#include "core/window.h"

#define EPOCH(v) ((uint32_t)((v) >> 32))
#define COUNT(v) ((uint32_t)((v)&0xffffffffu))
#define PACK(e, c) (((uint64_t)(e) << 32) | (uint64_t)(uint32_t)(c))

void ar_window_configure(ar_window_t *w, int64_t window_ms)
{
    int64_t slot = window_ms / AR_WINDOW_SLOTS;
    if (slot < 1)
        slot = 1;
    if (atomic_load_explicit(&w->slot_ms, memory_order_relaxed) == slot)
        return; /* the common case: read-only, no cache line bouncing between workers */
    int64_t old = atomic_exchange(&w->slot_ms, slot);
    if (old != slot) {
        for (int i = 0; i < AR_WINDOW_SLOTS; i++)
            atomic_store(&w->slots[i], 0);
    }
}

static int64_t slot_ms(const ar_window_t *w)
{
    int64_t s = atomic_load_explicit(&w->slot_ms, memory_order_relaxed);
    return s > 0 ? s : 1000;
}

/* Epochs start at 1 so that an all-zero slot is never current. */
static uint32_t epoch_of(const ar_window_t *w, uint64_t now_ms)
{
    return (uint32_t)(now_ms / (uint64_t)slot_ms(w)) + 1;
}

static void add_at(ar_window_t *w, uint32_t epoch, int64_t n, bool only_if_current)
{
    _Atomic uint64_t *slot = &w->slots[epoch % AR_WINDOW_SLOTS];
    uint64_t old = atomic_load_explicit(slot, memory_order_relaxed);
    for (;;) {
        int64_t count;
        if (EPOCH(old) == epoch)
            count = (int64_t)COUNT(old) + n;
        else if (only_if_current)
            return;
        else
            count = n;
        if (count < 0)
            count = 0;
        if (count > (int64_t)UINT32_MAX)
            count = UINT32_MAX;
        uint64_t next = PACK(epoch, count);
        if (atomic_compare_exchange_weak_explicit(slot, &old, next, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return;
    }
}

void ar_window_add(ar_window_t *w, uint64_t now_ms, int64_t n)
{
    add_at(w, epoch_of(w, now_ms), n, n < 0);
}

void ar_window_sub_at(ar_window_t *w, uint64_t charged_ms, int64_t n)
{
    add_at(w, epoch_of(w, charged_ms), -n, true);
}

int64_t ar_window_sum(const ar_window_t *w, uint64_t now_ms)
{
    uint32_t now = epoch_of(w, now_ms);
    int64_t sum = 0;
    for (int i = 0; i < AR_WINDOW_SLOTS; i++) {
        uint64_t v = atomic_load_explicit(&w->slots[i], memory_order_acquire);
        uint32_t e = EPOCH(v);
        if (e != 0 && e <= now && now - e < AR_WINDOW_SLOTS)
            sum += COUNT(v);
    }
    return sum;
}

/* How long until the sum drops to at most limit - n, as old slots expire. */
static int64_t time_to_fit(const ar_window_t *w, uint64_t now_ms, int64_t n, int64_t limit)
{
    if (n > limit)
        return 0;
    uint32_t now = epoch_of(w, now_ms);
    int64_t width = slot_ms(w);
    int64_t sum = ar_window_sum(w, now_ms);
    /* Slots leave the window oldest first: slot of epoch e leaves at epoch e + SLOTS. */
    for (uint32_t age = AR_WINDOW_SLOTS - 1;; age--) {
        if (now >= age) {
            uint32_t e = now - age;
            uint64_t v = atomic_load_explicit(&w->slots[e % AR_WINDOW_SLOTS], memory_order_acquire);
            if (EPOCH(v) == e)
                sum -= COUNT(v);
        }
        if (sum + n <= limit) {
            uint64_t leaves_at = (uint64_t)(now - age + AR_WINDOW_SLOTS - 1) * (uint64_t)width;
            return leaves_at > now_ms ? (int64_t)(leaves_at - now_ms) : 1;
        }
        if (age == 0)
            break;
    }
    return (int64_t)AR_WINDOW_SLOTS * width;
}

bool ar_window_try_add(ar_window_t *w, uint64_t now_ms, int64_t n, int64_t limit, int64_t *retry_ms)
{
    if (limit < 0) {
        ar_window_add(w, now_ms, n);
        return true;
    }
    if (ar_window_sum(w, now_ms) + n <= limit) {
        ar_window_add(w, now_ms, n);
        if (ar_window_sum(w, now_ms) <= limit)
            return true;
        ar_window_sub_at(w, now_ms, n); /* lost a race: take ours back */
    }
    if (retry_ms)
        *retry_ms = time_to_fit(w, now_ms, n, limit);
    return false;
}
