/*
 * window.h: a sliding-window counter shared by all worker threads without a lock. The
 * window is cut into 60 slots (1 s each for the 60 s RPM/TPM windows); each slot packs its
 * epoch and its count into one 64-bit atomic, so a slot from an earlier lap is recognised
 * and restarted by compare-and-swap. Limits use add-then-check: a thread that pushes the
 * sum over the limit takes its own addition back, so concurrent admissions can only
 * under-admit, never exceed the limit. Time is passed in (now_ms), never read here.
 */
#ifndef AR_CORE_WINDOW_H
#define AR_CORE_WINDOW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define AR_WINDOW_SLOTS 60

typedef struct ar_window {
    _Atomic uint64_t slots[AR_WINDOW_SLOTS]; /* epoch (high 32 bits) | count (low 32 bits) */
    _Atomic int64_t slot_ms;                 /* slot width; 0 before the first use */
} ar_window_t;

/** Sets the window length (a multiple of 60 ms is best). A change of length restarts it. */
void ar_window_configure(ar_window_t *w, int64_t window_ms);
/** Adds n at now_ms (n may be negative: a correction; counts never go below 0). */
void ar_window_add(ar_window_t *w, uint64_t now_ms, int64_t n);
/** The sum over the window ending at now_ms. */
int64_t ar_window_sum(const ar_window_t *w, uint64_t now_ms);
/**
 * Adds n unless that would take the sum over limit (limit < 0: no limit, always adds).
 * @return true when added. On false, *retry_ms (if given) is how long until enough of the
 * window has expired for n to fit (0 when n alone exceeds the limit: it never fits).
 */
bool ar_window_try_add(ar_window_t *w, uint64_t now_ms, int64_t n, int64_t limit,
                       int64_t *retry_ms);
/** Subtracts n from the slot of charged_ms if that slot is still current (an undo). */
void ar_window_sub_at(ar_window_t *w, uint64_t charged_ms, int64_t n);

/**
 * One of `share` instances' part of a limit that they enforce together while the state
 * they share (Redis) cannot be reached: limit / share, but never 0 where the limit is not
 * (a share of 0 would shut what the fleet may still use); a negative (no) limit or a share
 * of 1 or less is the limit itself. For windows and token buckets alike.
 */
static inline int64_t ar_limit_share(int64_t limit, int64_t share)
{
    if (limit < 0 || share <= 1)
        return limit;
    int64_t v = limit / share;
    return v > 0 || limit == 0 ? v : 1;
}

#endif
