/*
 * strategy.c: ordering the candidates of one model group. Each strategy is one function
 * over the same signature; the order decides which deployment is tried first and which
 * next when an attempt fails. Strategies read shared counters but never write them,
 * except the group's rotation counter.
 */
#include <math.h>

#include "core/crypto.h"
#include "router/router_int.h"

static void reverse(const ar_deployment_t **items, size_t from, size_t to)
{
    while (from + 1 < to) {
        const ar_deployment_t *t = items[from];
        items[from++] = items[--to];
        items[to] = t;
    }
}

/* Rotates left so that items[first] comes first, in place (three reversals). */
static void rotate(const ar_deployment_t **items, size_t n, size_t first)
{
    if (n < 2 || first == 0)
        return;
    reverse(items, 0, first);
    reverse(items, first, n);
    reverse(items, 0, n);
}

/* round_robin: each request starts one further along. */
static void order_round_robin(const ar_deployment_t **items, size_t n, _Atomic uint64_t *counter)
{
    uint64_t c = atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    rotate(items, n, (size_t)(c % n));
}

/* weighted: deterministic weighted rotation; over W requests (W = sum of weights) each
 * deployment comes first exactly weight times. Weight 0 is never first. */
static void order_weighted(const ar_deployment_t **items, size_t n, _Atomic uint64_t *counter)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += items[i]->weight > 0 ? (uint64_t)items[i]->weight : 0;
    if (total == 0) {
        order_round_robin(items, n, counter);
        return;
    }
    uint64_t c = atomic_fetch_add_explicit(counter, 1, memory_order_relaxed) % total;
    size_t first = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t w = items[i]->weight > 0 ? (uint64_t)items[i]->weight : 0;
        if (c < w) {
            first = i;
            break;
        }
        c -= w;
    }
    rotate(items, n, first);
}

/* least_busy: fewest attempts in flight first (stable: ties keep rotation order). */
static void order_least_busy(const ar_deployment_t **items, size_t n, _Atomic uint64_t *counter)
{
    order_round_robin(items, n, counter);
    for (size_t i = 1; i < n; i++) {
        const ar_deployment_t *d = items[i];
        long busy = atomic_load_explicit(&d->dep_state->in_flight, memory_order_relaxed);
        size_t j = i;
        while (j > 0 && atomic_load_explicit(&items[j - 1]->dep_state->in_flight,
                                             memory_order_relaxed) > busy) {
            items[j] = items[j - 1];
            j--;
        }
        items[j] = d;
    }
}

/* Sorts items by key ascending, stable (insertion sort: groups are small). */
static void sort_by(const ar_deployment_t **items, double *key, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        const ar_deployment_t *d = items[i];
        double k = key[i];
        size_t j = i;
        while (j > 0 && key[j - 1] > k) {
            items[j] = items[j - 1];
            key[j] = key[j - 1];
            j--;
        }
        items[j] = d;
        key[j] = k;
    }
}

double ar_router__ttfb_us(const ar_deployment_t *d)
{
    return (double)atomic_load_explicit(&d->dep_state->ttfb_ewma_us, memory_order_relaxed);
}

/* lowest_latency: lowest moving average of time to first byte first. Deployments without
 * a measurement yet go first, so every one gets measured. */
static void order_lowest_latency(const ar_deployment_t **items, size_t n, _Atomic uint64_t *counter)
{
    order_round_robin(items, n, counter); /* ties (and the unmeasured) rotate */
    double key[n];
    for (size_t i = 0; i < n; i++)
        key[i] = ar_router__ttfb_us(items[i]);
    sort_by(items, key, n);
}

/* smart: weighted random by score = weight x success rate x latency factor, where the
 * latency factor is the fastest measured TTFB among the candidates over this one's (1 for
 * the fastest, 0.5 for one twice as slow; 1 while unmeasured, so a new deployment gets
 * traffic and is measured); then the rest by score, best first. */
static void order_smart(const ar_router_t *r, const ar_deployment_t **items, size_t n,
                        uint64_t now_ms)
{
    double fastest = 0;
    for (size_t i = 0; i < n; i++) {
        double t = ar_router__ttfb_us(items[i]);
        if (t > 0 && (fastest == 0 || t < fastest))
            fastest = t;
    }
    double score[n], total = 0;
    for (size_t i = 0; i < n; i++) {
        double t = ar_router__ttfb_us(items[i]);
        double w = items[i]->weight > 0 ? (double)items[i]->weight : 0;
        double rate = ar_router_success_rate(items[i]->dep_state, now_ms);
        score[i] = w * rate * (t > 0 && fastest > 0 ? fastest / t : 1.0);
        total += score[i];
    }
    size_t first = 0;
    if (total > 0) {
        uint64_t bits = r->rand ? r->rand(r->rand_ud) : ar_rand_u64();
        double x = (double)(bits >> 11) / 9007199254740992.0 * total; /* [0, total) */
        for (size_t i = 0; i < n; i++)
            first = score[i] > 0 ? i : first; /* rounding may leave x past the last score */
        for (size_t i = 0; i < n; i++) {
            if (x < score[i]) {
                first = i;
                break;
            }
            x -= score[i];
        }
    }
    /* the pick first, the others by score, best first */
    double key[n];
    for (size_t i = 0; i < n; i++)
        key[i] = i == first ? -INFINITY : -score[i];
    sort_by(items, key, n);
}

void ar_router__order(const ar_router_t *r, ar_strategy_t strategy, const ar_deployment_t **items,
                      size_t n, _Atomic uint64_t *counter, uint64_t now_ms)
{
    if (n < 2)
        return;
    switch (strategy) {
    case AR_STRATEGY_WEIGHTED: order_weighted(items, n, counter); break;
    case AR_STRATEGY_LEAST_BUSY: order_least_busy(items, n, counter); break;
    case AR_STRATEGY_LOWEST_LATENCY: order_lowest_latency(items, n, counter); break;
    case AR_STRATEGY_SMART: order_smart(r, items, n, now_ms); break;
    case AR_STRATEGY_ROUND_ROBIN:
    default: order_round_robin(items, n, counter); break;
    }
}
