/*
 * lazy_timer.c: see lazy_timer.h for why a per-request timeout is kept this way.
 */
#include "core/lazy_timer.h"

void ar_lazy_timer_init(uv_loop_t *loop, ar_lazy_timer_t *lt, uv_timer_cb cb, void *data)
{
    uv_timer_init(loop, &lt->timer);
    lt->timer.data = data;
    lt->cb = cb;
    lt->due = 0;
    lt->fires_at = 0;
}

void ar_lazy_timer_arm(ar_lazy_timer_t *lt, uint64_t ms)
{
    uint64_t due = uv_now(lt->timer.loop) + ms;
    lt->due = due ? due : 1;
    if (lt->fires_at && lt->fires_at <= lt->due && uv_is_active((uv_handle_t *)&lt->timer))
        return; /* it fires first and re-arms then */
    lt->fires_at = lt->due;
    uv_timer_start(&lt->timer, lt->cb, ms, 0);
}

bool ar_lazy_timer_expired(ar_lazy_timer_t *lt)
{
    if (!lt->due)
        return false;
    uint64_t now = uv_now(lt->timer.loop);
    if (now < lt->due) {
        lt->fires_at = lt->due;
        uv_timer_start(&lt->timer, lt->cb, lt->due - now, 0);
        return false;
    }
    lt->due = 0;
    return true;
}
