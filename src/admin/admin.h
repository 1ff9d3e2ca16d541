/*
 * admin.h: what airouter tells about itself: /health (JSON, SPEC section 8), /vhealth
 * (the same as a self-contained HTML page), /metrics (Prometheus text), /admin/state and
 * /openapi.json. Every function formats a read-only view of the router's shared state
 * into a buffer; none of them does I/O, takes a lock, or changes anything.
 */
#ifndef AR_ADMIN_ADMIN_H
#define AR_ADMIN_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/err.h"
#include "router/bucket.h"
#include "router/router.h"
#include "router/timeseries.h"
#include "store/redis.h"
#include "tenant/keycache.h"

/** One remote airouter (`type: proxy`) as last seen. Strings are borrowed. */
typedef struct ar_admin_proxy {
    const char *name;
    const char *url;
    bool reachable;
    int status;
    int64_t checked_at_ms;   /* wall clock; 0 = never */
    const char *health_json; /* its /health body, or NULL */
    const char *error;       /* or NULL */
} ar_admin_proxy_t;

/** Everything the admin pages read, borrowed for the duration of one call. */
/* The store and its spend ledger, as /health and /metrics show them. */
typedef struct ar_admin_storage {
    const char *type; /* "sqlite" or "postgresql"; NULL: no store */
    long keys_cached; /* virtual keys the server has seen */
    uint64_t ledger_written, ledger_applied, ledger_write_errors, ledger_apply_errors,
        ledger_replayed;
} ar_admin_storage_t;

/* The client rate-limit buckets (rate_limiting); all NULL before the first request used them. */
typedef struct ar_admin_limiter {
    const ar_bucket_t *global;
    const ar_bucket_table_t *clients; /* keyed by a hash of the client: counted, not listed */
    const ar_bucket_table_t *models;  /* keyed by the model name asked for */
} ar_admin_limiter_t;

/** The LiteLLM data plane's state (litellm_db). */
typedef struct ar_admin_litellm {
    bool configured; /* litellm_db.enabled */
    bool up;         /* the last contact with the database succeeded */
    int conns;       /* connections open */
    int threads;     /* threads started (the writer and the lookup threads) */
    int max_conns;   /* litellm_db.max_conns */
    long keys_cached;
    uint64_t lookups, lookup_errors;
    long queued;         /* spend rows waiting */
    int64_t queue_size;  /* litellm_db.log_queue_size */
    uint64_t logged;     /* spend rows written */
    uint64_t log_errors; /* spend rows given up after the retries */
    uint64_t dropped;    /* spend rows refused by a full queue */
} ar_admin_litellm_t;

typedef struct ar_admin_view {
    const ar_config_t *cfg;
    ar_router_t *router;
    ar_router_state_t *state;
    uint64_t now_ms; /* monotonic: windows, bans, breakers */
    int64_t wall_ms; /* wall clock: timestamps shown to people */
    int64_t uptime_s;
    long in_flight;  /* client requests running, all workers */
    long conns_open; /* client connections open, all workers */
    long conns_max;  /* server.max_connections in force; -1: unlimited */
    const ar_admin_proxy_t *proxies;
    size_t proxies_cnt;
    uint64_t log_dropped;
    bool draining;
    ar_admin_storage_t storage;
    const ar_ts_t *timeseries; /* NULL: none kept */
    size_t ts_seconds;         /* /admin/timeseries?seconds= (1..3600) */
    ar_admin_limiter_t limiter;
    ar_keycache_t *keys;    /* the virtual keys in use (NULL: no store) */
    bool redis_configured;  /* storage.redis_url is set */
    ar_redis_stats_t redis; /* zero when unusable (a bad URL): down */
    ar_admin_litellm_t litellm;
} ar_admin_view_t;

/** GET /health: `{"status":"ok|degraded", ...}` exactly as SPEC section 8. */
int ar_admin_health_json(const ar_admin_view_t *v, ar_buf_t *out) AR_MUST_CHECK;
/** GET /vhealth: the same content as a readable, self-contained HTML page. */
int ar_admin_health_html(const ar_admin_view_t *v, ar_buf_t *out) AR_MUST_CHECK;
/** GET /metrics: Prometheus text format 0.0.4 (passes `promtool check metrics`). */
int ar_admin_metrics(const ar_admin_view_t *v, ar_buf_t *out) AR_MUST_CHECK;
/** GET /admin/state: per-deployment state and statistics (JSON). */
int ar_admin_state_json(const ar_admin_view_t *v, ar_buf_t *out) AR_MUST_CHECK;
/**
 * GET /admin/metrics: the free-model router's summary, camelCase: `{"uptime","totalRequests",
 * "successfulRequests","failedRequests","fallbacksUsed","avgLatency","modelsAvailable",
 * "models":[{"name","requests","successful","failed","avgLatency","available"}]}` (latency in
 * ms; a request is successful when its final status is below 400).
 */
int ar_admin_metrics_json(const ar_admin_view_t *v, ar_buf_t *out) AR_MUST_CHECK;
/**
 * GET /admin/rate-limits: the client buckets, credential and deployment RPM/TPM windows and
 * the virtual keys' RPM/TPM windows, each with its limit (null: none).
 */
int ar_admin_rate_limits_json(const ar_admin_view_t *v, ar_buf_t *out) AR_MUST_CHECK;
/** GET /admin/timeseries: the last v->ts_seconds seconds, oldest first. */
int ar_admin_timeseries_json(const ar_admin_view_t *v, ar_buf_t *out) AR_MUST_CHECK;
/** One file of the dashboard, compiled into the binary. */
typedef struct ar_admin_asset {
    const char *path;         /* "/", "/dashboard.js", "/dashboard.css" */
    const char *content_type; /* with charset */
    ar_span_t body;
} ar_admin_asset_t;

/**
 * The dashboard file served at path: fills out and returns true, or false. The page loads only these files (the
 * Content-Security-Policy the gateway sends allows nothing else) and talks to the admin
 * API with the master key the user types in.
 */
bool ar_admin_dashboard_asset(ar_span_t path, ar_admin_asset_t *out);
/** The Content-Security-Policy of the dashboard's files. */
#define AR_ADMIN_DASHBOARD_CSP                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** GET /openapi.json: OpenAPI 3 description of every endpoint. */
int ar_admin_openapi(ar_buf_t *out) AR_MUST_CHECK;

#endif
