/*
 * clock.h: time sources. Monotonic time measures durations; wall time stamps logs and
 * records. Code that decides on time (limits, bans, breakers) takes `now` as a parameter
 * instead of calling these, so tests can drive it with an injected clock.
 */
#ifndef AR_CORE_CLOCK_H
#define AR_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/** Monotonic microseconds. */
static inline uint64_t ar_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/** Monotonic milliseconds. */
static inline uint64_t ar_now_ms(void)
{
    return ar_now_us() / 1000u;
}

/** Wall-clock milliseconds since the Unix epoch. */
static inline int64_t ar_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
