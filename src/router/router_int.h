/*
 * router_int.h: what the files of src/router share: the router struct, model groups and
 * the strategy hook. Nothing outside src/router includes it.
 */
#ifndef AR_ROUTER_ROUTER_INT_H
#define AR_ROUTER_ROUTER_INT_H

#include "router/router.h"

/** Every explicit deployment sharing one public name. */
typedef struct ar_group {
    const char *name;
    size_t *deps; /* indices into ar_router.deps */
    size_t deps_cnt;
    _Atomic uint64_t rr; /* rotation counter */
} ar_group_t;

struct ar_router {
    const ar_config_t *cfg;
    ar_router_state_t *st;
    ar_deployment_t *deps; /* one per `models:` entry */
    size_t deps_cnt;
    ar_group_t *groups;
    size_t groups_cnt;
    size_t *open_creds; /* credentials without `models:` entries */
    size_t open_cnt;
    ar_strlist_t *discovered; /* per credential index; cnt == 0 and items NULL: none */
    bool *has_discovered;
    _Atomic uint64_t open_rr;
    ar_deployment_t fallback; /* routing.fallback, when has_fallback */
    bool has_fallback;
    uint64_t (*rand)(void *ud); /* smart's random source; NULL: ar_rand_u64 */
    void *rand_ud;
};

/**
 * Orders items[0..n) in place for one model group, by strategy (the configured one, or
 * smart for "auto"). counter is the group's rotation counter.
 */
void ar_router__order(const ar_router_t *r, ar_strategy_t strategy, const ar_deployment_t **items,
                      size_t n, _Atomic uint64_t *counter, uint64_t now_ms);
/** The moving average of d's time to first byte in µs (0: not measured yet). */
double ar_router__ttfb_us(const ar_deployment_t *d);

#endif
