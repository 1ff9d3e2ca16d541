/*
 * lazy_timer.h: a timeout that is moved far more often than it fires (a connection's idle
 * clock, a request's deadline: moved on every request, firing almost never). A libuv timer
 * is a heap node inside its owner, so every start and stop touches log(n) other owners'
 * memory; at a thousand connections that cost more than the rest of the timer work
 * together. Here arming only records the due time; the libuv timer is restarted only
 * when it would fire too late, and one that fires early re-arms itself for what is left
 * (nginx's timers work the same way). Disarming just forgets the due time: the timer fires
 * once more, finds nothing due, and stops.
 */
#ifndef AR_CORE_LAZY_TIMER_H
#define AR_CORE_LAZY_TIMER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct ar_lazy_timer {
    uv_timer_t timer;  /* first: the callback's uv_timer_t * is the lazy timer */
    uv_timer_cb cb;    /* called when the timer fires; it asks ar_lazy_timer_expired */
    uint64_t due;      /* loop time the timeout runs out; 0: disarmed */
    uint64_t fires_at; /* when the timer, if active for cb, fires; 0: it serves another use */
} ar_lazy_timer_t;

/** Initialises the timer on loop; data goes to lt->timer.data. */
void ar_lazy_timer_init(uv_loop_t *loop, ar_lazy_timer_t *lt, uv_timer_cb cb, void *data);
/** The timeout runs out ms from now. */
void ar_lazy_timer_arm(ar_lazy_timer_t *lt, uint64_t ms);
/** No timeout until the next arm. */
static inline void ar_lazy_timer_disarm(ar_lazy_timer_t *lt)
{
    lt->due = 0;
}
/** Whether a timeout is pending. */
static inline bool ar_lazy_timer_armed(const ar_lazy_timer_t *lt)
{
    return lt->due != 0;
}
/** The owner starts the uv timer for another purpose (its own callback): disarms, and the
 *  next arm restarts the timer for cb. */
static inline void ar_lazy_timer_repurpose(ar_lazy_timer_t *lt)
{
    lt->due = 0;
    lt->fires_at = 0;
}
/**
 * For cb, when the timer fired: true when the timeout really ran out (it is disarmed
 * then); false when it was disarmed or fired early (it re-armed itself for the rest).
 */
bool ar_lazy_timer_expired(ar_lazy_timer_t *lt);

#endif
