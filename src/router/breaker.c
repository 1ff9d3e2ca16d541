/*
 * breaker.c: the circuit breaker (see breaker.h).
 */
#include "router/breaker.h"

void ar_breaker_init(ar_breaker_t *b)
{
    atomic_init(&b->state, AR_BREAKER_CLOSED);
    atomic_init(&b->opened_ms, 0);
    atomic_init(&b->probes, 0);
    pthread_mutex_init(&b->mu, NULL);
    b->half_open_successes = 0;
}

void ar_breaker_dispose(ar_breaker_t *b)
{
    pthread_mutex_destroy(&b->mu);
}

const char *ar_breaker_state_name(ar_breaker_state_t s)
{
    static const char *names[] = {"CLOSED", "OPEN", "HALF_OPEN", "PERMANENTLY_UNAVAILABLE"};
    return (unsigned)s < 4 ? names[s] : "CLOSED";
}

static bool cooled(const ar_breaker_t *b, const ar_breaker_conf_t *conf, uint64_t now_ms)
{
    int64_t opened = atomic_load(&b->opened_ms);
    return (int64_t)now_ms - opened >= conf->cooldown_period_ms;
}

ar_breaker_state_t ar_breaker_state(const ar_breaker_t *b, const ar_breaker_conf_t *conf,
                                    uint64_t now_ms)
{
    int s = atomic_load_explicit(&b->state, memory_order_relaxed);
    if (s == AR_BREAKER_OPEN && cooled(b, conf, now_ms))
        return AR_BREAKER_HALF_OPEN;
    return (ar_breaker_state_t)s;
}

bool ar_breaker_allow(ar_breaker_t *b, const ar_breaker_conf_t *conf, uint64_t now_ms, bool *probe)
{
    *probe = false;
    int s = atomic_load_explicit(&b->state, memory_order_relaxed);
    if (s == AR_BREAKER_CLOSED)
        return true;
    if (s == AR_BREAKER_UNAVAILABLE)
        return false;
    pthread_mutex_lock(&b->mu);
    s = atomic_load(&b->state);
    bool ok = false;
    if (s == AR_BREAKER_CLOSED) {
        ok = true;
    } else if (s == AR_BREAKER_OPEN && cooled(b, conf, now_ms)) {
        atomic_store(&b->state, AR_BREAKER_HALF_OPEN);
        b->half_open_successes = 0;
        s = AR_BREAKER_HALF_OPEN;
    }
    if (s == AR_BREAKER_HALF_OPEN && atomic_load(&b->probes) == 0) {
        atomic_store(&b->probes, 1);
        *probe = true;
        ok = true;
    }
    pthread_mutex_unlock(&b->mu);
    return ok;
}

void ar_breaker_success(ar_breaker_t *b, const ar_breaker_conf_t *conf, bool probe)
{
    if (!probe)
        return; /* CLOSED successes need no bookkeeping: failures are counted in a window */
    pthread_mutex_lock(&b->mu);
    atomic_store(&b->probes, 0);
    if (atomic_load(&b->state) == AR_BREAKER_HALF_OPEN &&
        ++b->half_open_successes >= conf->success_threshold) {
        atomic_store(&b->state, AR_BREAKER_CLOSED);
        for (int i = 0; i < AR_WINDOW_SLOTS; i++)
            atomic_store(&b->failures.slots[i], 0);
    }
    pthread_mutex_unlock(&b->mu);
}

void ar_breaker_failure(ar_breaker_t *b, const ar_breaker_conf_t *conf, uint64_t now_ms, bool probe)
{
    if (conf->failure_threshold < 0 && !probe)
        return; /* the breaker is off */
    ar_window_configure(&b->failures, conf->stats_window_ms);
    pthread_mutex_lock(&b->mu);
    if (probe)
        atomic_store(&b->probes, 0);
    int s = atomic_load(&b->state);
    if (s == AR_BREAKER_HALF_OPEN) {
        atomic_store(&b->opened_ms, (int64_t)now_ms);
        atomic_store(&b->state, AR_BREAKER_OPEN);
    } else if (s == AR_BREAKER_CLOSED && conf->failure_threshold > 0) {
        ar_window_add(&b->failures, now_ms, 1);
        if (ar_window_sum(&b->failures, now_ms) >= conf->failure_threshold) {
            atomic_store(&b->opened_ms, (int64_t)now_ms);
            atomic_store(&b->state, AR_BREAKER_OPEN);
        }
    }
    pthread_mutex_unlock(&b->mu);
}

void ar_breaker_abandon(ar_breaker_t *b, bool probe)
{
    if (probe)
        atomic_store(&b->probes, 0);
}

void ar_breaker_unavailable(ar_breaker_t *b)
{
    atomic_store(&b->state, AR_BREAKER_UNAVAILABLE);
}

void ar_breaker_reset(ar_breaker_t *b)
{
    pthread_mutex_lock(&b->mu);
    atomic_store(&b->state, AR_BREAKER_CLOSED);
    atomic_store(&b->probes, 0);
    b->half_open_successes = 0;
    for (int i = 0; i < AR_WINDOW_SLOTS; i++)
        atomic_store(&b->failures.slots[i], 0);
    pthread_mutex_unlock(&b->mu);
}
