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
#include "core/window.h"
#include "router/ban.h"
#include "router/breaker.h"
#include "router/outcome.h"
#include "router/stats.h"

/**
 * Runtime state of one credential (model_name NULL) or one deployment (credential +
 * upstream model). Shared by all workers; every field is an atomic or guarded inside its
 * own module (ban, breaker). Admin code reads it; only router.c writes it.
 */
typedef struct ar_target_state {
    const char *cred_name;  /* owned by the state table */
    const char *model_name; /* NULL for a credential's own state; "*" for any unlisted model */
    _Atomic long in_flight;
    _Atomic uint64_t requests; /* attempts */
    _Atomic uint64_t errors;   /* failed attempts */
    ar_window_t rpm;           /* attempts in the last 60 s */
    ar_window_t tpm;           /* tokens in the last 60 s (estimate, then corrected) */
    ar_ban_t ban;              /* credential states only */
    ar_breaker_t breaker;      /* deployment states only */
    ar_window_t ok, fail;      /* attempt outcomes over stats_window */
    ar_latency_t latency;      /* whole-answer latency over stats_window */
    _Atomic uint64_t ttfb_ewma_us;
    /* cumulative, for /metrics */
    ar_histo_t duration;
    ar_histo_t ttfb;
    _Atomic uint64_t status[500]; /* final statuses 100..599 of requests answered here */
    _Atomic uint64_t prompt_tokens;
    _Atomic uint64_t completion_tokens;
    _Atomic uint64_t cost_nusd; /* nano-dollars */
    _Atomic uint64_t uperr[AR_UPERR_KINDS];
    _Atomic uint64_t fallbacks; /* requests answered here after another deployment or as
                                   routing.fallback */
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

/* The request filters (AR_FILTER_* bits name them in ar_candidates_t.filtered). */
#define AR_FILTER_TAGS 0x01u
#define AR_FILTER_TYPE 0x02u
#define AR_FILTER_CONTEXT 0x04u /* min_context_size */
#define AR_FILTER_JSON 0x08u    /* json_response */
#define AR_FILTER_SUCCESS 0x10u /* min_success_rate */

/**
 * What a request asks of a deployment besides its name (SPEC section 3 extensions). A
 * deployment without a `models:` entry declares nothing: it passes only min_success_rate.
 */
typedef struct ar_route_filter {
    const char *const *tags; /* every one must be among the model's tags */
    size_t tags_cnt;
    ar_model_kind_t kind;     /* AR_MODEL_KIND_ANY: any type */
    int64_t min_context_size; /* 0: any; an unknown context_size (0) fails a larger one */
    bool json_response;       /* only models with json_response: true */
    double min_success_rate;  /* 0..1 over stats_window; deployments without samples pass */
    bool prefer_fast;         /* the lowest measured TTFB first, the rest in strategy order */
} ar_route_filter_t;

typedef struct ar_route_query {
    const ar_span_t *models; /* the names asked for, in priority order */
    size_t models_cnt;
    uint64_t now_ms;                 /* for strategies that read windowed statistics */
    const ar_route_filter_t *filter; /* NULL: none */
} ar_route_query_t;

typedef struct ar_candidates {
    const ar_deployment_t **items; /* in the order to try them; in the request pool */
    size_t cnt;
    size_t primary_cnt; /* items[0..primary_cnt) are primaries, the rest is_fallback */
    /* when cnt == 0: AR_ENOTFOUND (no deployment serves the model) or AR_EUNAVAIL */
    int empty_reason;
    const char *unknown_model; /* the name that matched nothing (for the 404 message) */
    unsigned filtered;         /* AR_FILTER_* bits of the filters that removed some deployment */
} ar_candidates_t;

/**
 * The names of the filters in bits ("tags, min_context_size"), written to buf.
 * @return buf.
 */
const char *ar_route_filter_names(unsigned bits, char *buf, size_t len);

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
 * Resolves the query into candidates: each name's deployments (filtered) ordered by the
 * configured strategy, "auto" (or no name) every deployment ordered by smart, names in the
 * client's order, is_fallback ones last; prefer_fast then moves the fastest primary first.
 * @return 0 (see out->cnt and out->empty_reason).
 */
int ar_router_candidates(ar_router_t *r, ar_pool_t *pool, const ar_route_query_t *q,
                         ar_candidates_t *out);
/**
 * Replaces the random source of the smart strategy (default: ar_rand_u64), for tests that
 * need a known pick. fn(ud) returns 64 random bits. Call before the router serves requests.
 */
void ar_router_set_rand(ar_router_t *r, uint64_t (*fn)(void *ud), void *ud);
/** The routing.fallback deployment, or NULL when it is not enabled. */
const ar_deployment_t *ar_router_fallback(const ar_router_t *r);
/** The config this router was built from. */
const ar_config_t *ar_router_config(const ar_router_t *r);

/* ---- admission and accounting (any worker thread) ---- */

/** Why a candidate was not tried. */
typedef enum ar_skip {
    AR_SKIP_NONE = 0,
    AR_SKIP_BANNED,      /* fail2ban holds its credential */
    AR_SKIP_OPEN,        /* its breaker is OPEN (or a HALF_OPEN trial is running) */
    AR_SKIP_UNAVAILABLE, /* PERMANENTLY_UNAVAILABLE */
    AR_SKIP_BUSY,        /* max_concurrent attempts in flight */
    AR_SKIP_LIMITED,     /* an RPM or TPM window is full */
} ar_skip_t;

/** What ar_router_admit charged, to be handed back to ar_router_report. */
typedef struct ar_admission {
    uint64_t at_ms;
    int64_t tokens;   /* TPM charged up front (the estimate) */
    bool probe;       /* a HALF_OPEN trial */
    int64_t retry_ms; /* AR_SKIP_LIMITED: until a window has room */
} ar_admission_t;

/** How an attempt ended. */
typedef struct ar_attempt_result {
    int status;     /* the upstream HTTP status, 0 when none arrived */
    int err;        /* the AR_E* of a network failure, 0 otherwise */
    bool cancelled; /* ended without a verdict (client gone, shutdown) */
    uint64_t ttfb_us;
    uint64_t duration_us;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    bool usage_seen;
    double cost_usd;
} ar_attempt_result_t;

/**
 * Tries to admit one attempt on d at now_ms: credential ban, breaker, max_concurrent,
 * then RPM and TPM (credential level, then deployment level). On success it charges one
 * request and est_tokens to every window and counts the attempt in flight; the caller
 * must later call ar_router_report exactly once. @return AR_SKIP_NONE or the reason.
 */
ar_skip_t ar_router_admit(ar_router_t *r, const ar_deployment_t *d, uint64_t now_ms,
                          int64_t est_tokens, ar_admission_t *adm);
/**
 * As ar_router_admit, with the RPM and TPM limits (credential and deployment) divided by
 * share (>= 1; a limit above 0 stays at least 1): one instance's share of a limit that
 * several instances enforce together while the windows they share cannot be reached.
 */
ar_skip_t ar_router_admit_share(ar_router_t *r, const ar_deployment_t *d, uint64_t now_ms,
                                int64_t est_tokens, int64_t share, ar_admission_t *adm);
/**
 * Takes back an admission whose attempt never started (a shared window refused it):
 * in-flight and request counts, the window charges, a HALF_OPEN trial. Instead of
 * ar_router_report, not with it.
 */
void ar_router_withdraw(ar_router_t *r, const ar_deployment_t *d, const ar_admission_t *adm);
/**
 * Records an admitted attempt's end: TPM corrected to the real usage, fail2ban and the
 * breaker told per the outcome table, statistics and metrics updated.
 * @return the outcome of the attempt (what to do next).
 */
ar_outcome_t ar_router_report(ar_router_t *r, const ar_deployment_t *d, const ar_admission_t *adm,
                              const ar_attempt_result_t *res, uint64_t now_ms);
/**
 * Counts a finished client request with its final status, against the deployment that
 * answered (or was tried last), or NULL for requests that never reached one.
 */
void ar_router_record_request(ar_router_t *r, const ar_deployment_t *d, int status,
                              uint64_t duration_us);
/** Counts a finished request that d answered though it was not the first choice. */
void ar_router_record_fallback(const ar_deployment_t *d);

/* ---- read access for /health, /metrics, /admin (any thread) ---- */

/** The state of the credential with index i of the router's config. */
ar_target_state_t *ar_router_cred_state(const ar_router_t *r, size_t i);
/** The explicit deployments (one per `models:` entry). */
size_t ar_router_dep_cnt(const ar_router_t *r);
const ar_deployment_t *ar_router_dep(const ar_router_t *r, size_t i);
/** RPM and TPM limits of a credential (AR_UNLIMITED when none). */
void ar_router_cred_limits(const ar_router_t *r, size_t cred_idx, int64_t *rpm, int64_t *tpm);
/** RPM and TPM limits of a deployment. */
void ar_router_dep_limits(const ar_router_t *r, const ar_deployment_t *d, int64_t *rpm,
                          int64_t *tpm);
/** Calls fn for every deployment state in the table (explicit and implicit ones). */
void ar_router_state_foreach(ar_router_state_t *st, void (*fn)(ar_target_state_t *s, void *ud),
                             void *ud);
/** The state counting requests that never reached a deployment. */
ar_target_state_t *ar_router_state_unrouted(ar_router_state_t *st);
/** Lifts bans of the credentials serving `model` and resets its breakers. @return how many. */
size_t ar_router_reset_model(ar_router_t *r, const char *model);
/** The success rate over stats_window (1 when nothing was seen). */
double ar_router_success_rate(const ar_target_state_t *s, uint64_t now_ms);

#endif
