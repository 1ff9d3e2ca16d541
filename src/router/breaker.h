/*
 * breaker.h: the circuit breaker of one deployment (SPEC section 2 circuit_breaker).
 * CLOSED: failure_threshold failures within stats_window open it. OPEN: refuses until
 * cooldown_period has passed, then HALF_OPEN lets trial requests through one at a time;
 * success_threshold successes close it, a failure opens it again. A 404 (the model does
 * not exist there) makes it PERMANENTLY_UNAVAILABLE until an admin reset or restart.
 * The state is one atomic read on the hot path; transitions take a small lock.
 */
#ifndef AR_ROUTER_BREAKER_H
#define AR_ROUTER_BREAKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/window.h"

typedef enum ar_breaker_state {
    AR_BREAKER_CLOSED = 0,
    AR_BREAKER_OPEN = 1,
    AR_BREAKER_HALF_OPEN = 2,
    AR_BREAKER_UNAVAILABLE = 3, /* PERMANENTLY_UNAVAILABLE */
} ar_breaker_state_t;

typedef struct ar_breaker {
    _Atomic int state;
    _Atomic int64_t opened_ms;
    _Atomic int probes; /* trial requests in flight while HALF_OPEN */
    pthread_mutex_t mu;
    int64_t half_open_successes;
    ar_window_t failures; /* within stats_window */
} ar_breaker_t;

void ar_breaker_init(ar_breaker_t *b);
void ar_breaker_dispose(ar_breaker_t *b);
/**
 * May a request go to this deployment now? Moves OPEN to HALF_OPEN after the cooldown.
 * @param probe set true when the request is a HALF_OPEN trial (report it with the
 *        matching success/failure call).
 */
bool ar_breaker_allow(ar_breaker_t *b, const ar_breaker_conf_t *conf, uint64_t now_ms, bool *probe);
void ar_breaker_success(ar_breaker_t *b, const ar_breaker_conf_t *conf, bool probe);
void ar_breaker_failure(ar_breaker_t *b, const ar_breaker_conf_t *conf, uint64_t now_ms,
                        bool probe);
/** A trial request ended without an upstream verdict (cancelled): frees its slot. */
void ar_breaker_abandon(ar_breaker_t *b, bool probe);
void ar_breaker_unavailable(ar_breaker_t *b);
/** The state as seen now (OPEN past its cooldown reads as HALF_OPEN). */
ar_breaker_state_t ar_breaker_state(const ar_breaker_t *b, const ar_breaker_conf_t *conf,
                                    uint64_t now_ms);
void ar_breaker_reset(ar_breaker_t *b);
/** "CLOSED", "OPEN", "HALF_OPEN", "PERMANENTLY_UNAVAILABLE". */
const char *ar_breaker_state_name(ar_breaker_state_t s);

#endif
