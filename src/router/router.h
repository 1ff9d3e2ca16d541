/*
 * router.h: choosing where a request goes. A router is built from one config generation
 * (immutable, shared by all workers); the runtime state it reads and updates (in-flight
 * counts, request and error counters, and later limit windows, bans and breakers) lives
 * in an ar_router_state_t that outlives reloads, keyed by credential and model names, so
 * a SIGHUP keeps the state of credentials that still exist.
 *
 * The router does no I/O and reads no clock: callers pass `now_ms`. Its shared counters
 * are atomics in per-target slots; no global lock is taken on the request path.
 */
#ifndef AR_ROUTER_ROUTER_H
#define AR_ROUTER_ROUTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/err.h"
#include "core/pool.h"
#include "core/span.h"

/** Runtime state of one credential or one deployment (credential + model). */
typedef struct ar_target_state {
    const char *cred_name;  /* owned by the state table */
    const char *model_name; /* NULL for a credential's own state */
    _Atomic long in_flight;
    _Atomic uint64_t requests;
    _Atomic uint64_t errors;
} ar_target_state_t;

typedef struct ar_router_state ar_router_state_t;
typedef struct ar_router ar_router_t;

/** One place a request can go: a credential and the model name it is sent there. */
typedef struct ar_deployment {
    const ar_cred_conf_t *cred;
    size_t cred_idx;
    const ar_model_conf_t *model; /* the `models:` entry, NULL when implicit */
    const char *name;             /* public name */
    const char *upstream_model;   /* sent upstream */
    int64_t weight;
    bool is_fallback;
    ar_target_state_t *cred_state;
    ar_target_state_t *dep_state;
} ar_deployment_t;

typedef struct ar_route_query {
    const ar_span_t *models; /* the names asked for, in priority order */
    size_t models_cnt;
} ar_route_query_t;

typedef struct ar_candidates {
    const ar_deployment_t **items; /* in the order to try them; in the request pool */
    size_t cnt;
    size_t primary_cnt; /* items[0..primary_cnt) are primaries, the rest is_fallback */
    /* when cnt == 0: AR_ENOTFOUND (no deployment serves the model) or AR_EUNAVAIL */
    int empty_reason;
    const char *unknown_model; /* the name that matched nothing (for the 404 message) */
} ar_candidates_t;

/* ---- state (process lifetime) ---- */

ar_router_state_t *ar_router_state_create(void);
void ar_router_state_destroy(ar_router_state_t *st);
/**
 * The state of credential cred (model NULL) or deployment (cred, model); created on first
 * use. Thread-safe and lock-free; the pointer is valid until the state is destroyed.
 */
ar_target_state_t *ar_router_state_get(ar_router_state_t *st, const char *cred, const char *model);

/* ---- router (one per config generation) ---- */

/**
 * Builds the router for cfg. cfg and st are borrowed for the router's lifetime.
 * @return the router, or NULL with a message in err.
 */
ar_router_t *ar_router_create(const ar_config_t *cfg, ar_router_state_t *st, char *err,
                              size_t errlen);
void ar_router_destroy(ar_router_t *r);
/**
 * Restricts an open credential (one without `models:` entries) to the models its
 * upstream listed; ids are copied. Call before the router serves requests.
 */
void ar_router_set_discovered(ar_router_t *r, size_t cred_idx, const ar_strlist_t *ids);
/** True when the credential has a discovered model list. */
bool ar_router_has_discovered(const ar_router_t *r, size_t cred_idx);
/** The discovered models of a credential (NULL when none). */
const ar_strlist_t *ar_router_discovered(const ar_router_t *r, size_t cred_idx);
/**
 * Resolves the query into candidates ordered by the configured strategy.
 * @return 0 (see out->cnt and out->empty_reason).
 */
int ar_router_candidates(ar_router_t *r, ar_pool_t *pool, const ar_route_query_t *q,
                         ar_candidates_t *out);
/** The config this router was built from. */
const ar_config_t *ar_router_config(const ar_router_t *r);

/* ---- accounting (any worker thread) ---- */

/** An attempt on d starts. */
void ar_router_attempt_begin(const ar_deployment_t *d);
/** An attempt on d ended; failed counts it as an error. */
void ar_router_attempt_end(const ar_deployment_t *d, bool failed);

#endif
