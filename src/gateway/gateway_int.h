/*
 * gateway_int.h: what the files of src/gateway share: the runtime (one config
 * generation with its router and providers), the per-worker state, and the state of one
 * client request as it moves through auth, routing and attempts.
 */
#ifndef AR_GATEWAY_GATEWAY_INT_H
#define AR_GATEWAY_GATEWAY_INT_H

#include <stdatomic.h>
#include <stdlib.h>
#include <uv.h>

#include "admin/admin.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/json.h"
#include "core/list.h"
#include "core/sse.h"
#include "gateway/gateway.h"
#include "providers/provider.h"
#include "router/bucket.h"
#include "router/outcome.h"
#include "router/router.h"
#include "router/timeseries.h"
#include "server/server.h"
#include "store/redis.h"
#include "tenant/keycache.h"
#include "upstream/upstream.h"

/** One config generation: immutable once built, shared by all workers, refcounted. */
typedef struct ar_runtime {
    _Atomic long refs;
    ar_config_t *cfg;
    ar_router_t *router;
    ar_provider_t **providers; /* by credential index */
    ar_span_t models_json;     /* the /v1/models answer, built once */
    char *models_json_mem;
    ar_span_t models_anth_json; /* the same in Anthropic's shape (anthropic-version sent) */
    char *models_anth_json_mem;
    uint64_t max_response_bytes;
    int64_t *token_refresh_at; /* tokens.c: when to renew each credential's token (0: none) */
} ar_runtime_t;

/** The last /health of one `type: proxy` credential (another airouter). */
typedef struct ar_proxy_health {
    const char *name;      /* credential name */
    const char *url;       /* its base_url */
    bool reachable;        /* answered 200 with JSON */
    int status;            /* HTTP status of the last check, 0 when none arrived */
    int64_t checked_at_ms; /* wall clock of the last check, 0 before the first */
    char *body;            /* its /health JSON (owned), NULL when unreachable */
    char *error;           /* why it is unreachable (owned), NULL when reachable */
} ar_proxy_health_t;

/** An immutable, refcounted set of proxy health results, swapped by the main thread. */
typedef struct ar_proxy_snapshot {
    _Atomic long refs;
    size_t cnt;
    ar_proxy_health_t items[];
} ar_proxy_snapshot_t;

/**
 * The store's provider connections and models as config entries (tenancy.c reads them on
 * the store thread): connection c is credential "store:c" with its decrypted key, model m
 * of c is model "store:c/m". Owns every string; ar_gw_store_models_free wipes the keys.
 */
typedef struct ar_gw_store_models {
    ar_config_extra_cred_t *creds;
    size_t creds_cnt;
    ar_config_extra_model_t *models;
    size_t models_cnt;
} ar_gw_store_models_t;

struct ar_gateway {
    ar_server_t *server;
    ar_config_t *file_cfg;              /* the config file's, as last loaded (main thread) */
    ar_gw_store_models_t *store_models; /* the store's entries in force (main thread) */
    ar_router_state_t *state;           /* outlives runtimes */
    _Atomic(ar_runtime_t *) rt;
    char *config_path;
    uv_loop_t *main_loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uint64_t drain_started_ms;
    bool draining;
    bool cancelled;
    int exit_code;
    uint64_t started_ms; /* monotonic, for uptime */
    _Atomic(ar_proxy_snapshot_t *) proxies;
    struct ar_proxy_poller *poller; /* proxies.c, main thread */
    struct ar_gw_tokens *tokens;    /* tokens.c, main thread */
    /* ratelimit.c: the client buckets, made on first use, kept across reloads */
    _Atomic(struct ar_gw_limiter *) limiter;
    /* tenancy.c: the store thread, the key cache and the spend ledger (NULL: no store) */
    struct ar_gw_tenancy *tenancy;
    struct ar_gw_prices *prices; /* cost.c: the price table (NULL: no model_prices_link) */
    ar_ts_t *timeseries;         /* the last hour per second (/admin/timeseries) */
    /* shared RPM windows (storage.redis_url as at start; NULL: none or unusable) */
    ar_redis_t *redis;
    bool redis_configured;         /* redis_url set (even if unusable: /health says down) */
    struct ar_gw_litellm *litellm; /* litellm.c: the LiteLLM data plane (NULL: not enabled) */
};

/** Per worker thread. */
typedef struct ar_gw_worker {
    ar_gateway_t *gw;
    ar_worker_t *worker;
    ar_upstream_t *up;
    ar_list_t unflushed;               /* streams with output written since the last flush */
    struct ar_gw_spend_batcher *spend; /* tenancy.c: spend records of this loop turn */
    ar_redis_conn_t *redis;            /* this loop's connection (NULL: no Redis) */
    struct ar_gw_leases *leases;       /* lease.c: this loop's leases of key quotas */
} ar_gw_worker_t;

/** One error of one attempt, for `_router.errors`. */
typedef struct ar_attempt_err {
    const char *credential;
    const char *model;
    int status;
    const char *message;
} ar_attempt_err_t;

#define AR_MAX_ATTEMPT_ERRS 16

/** The X-RateLimit-* values of one request (ratelimit.c), in its pool. */
typedef struct ar_gw_rl_headers {
    ar_span_t limit, remaining, reset;
} ar_gw_rl_headers_t;

struct ar_gw_req;

/**
 * How answers look to the client. airouter produces everything in the OpenAI format; a
 * front (NULL = OpenAI itself) translates it for another client API, e.g. /v1/messages
 * answers in Anthropic's format. Every hook appends to out; they run on the worker thread.
 */
typedef struct ar_front_ops {
    const char *name;
    /** A whole successful answer (an OpenAI chat.completion object). */
    int (*whole)(struct ar_gw_req *g, ar_span_t openai_body, ar_buf_t *out);
    /** One OpenAI stream payload: the data of one SSE event (a chunk object or "[DONE]"). */
    int (*chunk)(struct ar_gw_req *g, ar_span_t data, ar_buf_t *out);
    /** The stream ended normally: whatever closes it that chunk has not sent yet. */
    int (*stream_end)(struct ar_gw_req *g, ar_buf_t *out);
    /** An SSE error event that ends a broken stream. */
    int (*stream_error)(struct ar_gw_req *g, const char *type, const char *message, ar_buf_t *out);
    /** An error answer's body (OpenAI type and code given), in the request pool. */
    ar_span_t (*error_body)(ar_http_request_t *req, int status, const char *type, const char *code,
                            const char *message);
    /**
     * Optional: sees what an attempt answered in the client's own API (call.native: the
     * provider relayed it untouched and no hook above runs for it): a whole body (event
     * empty) or one SSE event (its name, possibly empty, and data).
     */
    void (*native_seen)(struct ar_gw_req *g, ar_span_t event, ar_span_t data);
} ar_front_ops_t;

struct ar_gw_route;

/** What every request's req->data starts with: the runtime it holds. Zeroed at creation. */
typedef struct ar_gw_ctx {
    ar_runtime_t *rt;
    const ar_front_ops_t *front;  /* NULL: the OpenAI format */
    void *front_state;            /* the front's, in the request pool */
    const ar_gw_rl_headers_t *rl; /* set by ar_gw_ratelimit; NULL: no X-RateLimit-* headers */
    /* routes.c: what the head decided (route found, key checked), kept for the body */
    const struct ar_gw_route *route;
    ar_span_t route_path; /* the path without its /api or /openai prefix */
    /* auth.c: the caller's virtual key (NULL: the master key, or none checked yet) */
    ar_tkey_t *key;
    bool auth_pending;      /* a store lookup of the key is in flight */
    bool auth_waiting;      /* ...and the whole request waits on it */
    bool auth_looked_up;    /* the lookup answered: key set, or the key exists nowhere */
    bool auth_store_failed; /* or the store could not say (a database that did not answer) */
    /* litellm.c: the caller's LiteLLM key (NULL: none), and its lookup answered */
    struct ar_gw_llkey *ll;
    bool ll_looked_up;
    /* for the access line, written when the request is released (routes.c) */
    bool log_access; /* false while only the head was seen: a client gone then is not logged */
    const char *log_model;
    const char *log_credential;
    int log_attempts;
    int64_t log_prompt_tokens;
    int64_t log_completion_tokens;
    bool log_stream;
    const char *log_reason; /* why the gateway answered an error itself (ar_gw_set_reason) */
    size_t ts_seconds;      /* routes.c: /admin/timeseries?seconds= */
} ar_gw_ctx_t;

static inline ar_runtime_t *ar_gw_rt(const ar_http_request_t *req)
{
    return req->data ? ((const ar_gw_ctx_t *)req->data)->rt : NULL;
}

/* ratelimit.c: what the client buckets (global, client, model) charged a request */
typedef struct ar_gw_rl_charge {
    /* the buckets charged (NULL: unlimited or off) and the limits each was charged with;
     * a table's bucket is used for the request's admission only (see bucket.h) */
    ar_bucket_t *bucket[3];
    ar_bucket_limit_t lim[3];
    bool shared; /* charged the full limits while Redis was ready: Redis decides next */
} ar_gw_rl_charge_t;

/** A client request for an LLM endpoint, from parse to the last byte. In its pool. */
typedef struct ar_gw_req {
    ar_gw_ctx_t ctx; /* first: req->data points here */
    ar_http_request_t *http;
    ar_gw_worker_t *gw;
    ar_runtime_t *rt;
    ar_endpoint_t endpoint;
    ar_call_t call;
    ar_route_filter_t filter; /* the request's routing extensions */
    /* the virtual key's aliases the request used (store models): alias, internal name
     * pairs copied to the pool (the key's config may be replaced while it runs) */
    const char *(*alias_hits)[2];
    size_t alias_hits_cnt;
    ar_candidates_t cands;
    size_t next_cand;
    bool fallback_tried; /* routing.fallback was considered */
    int attempts;        /* upstream attempts made, retries included */
    int switches;        /* deployments moved to after the first (max_retries) */
    int same_retries;    /* retries of the current deployment (rate_limit_retries) */
    int64_t est_tokens;  /* TPM charged before each attempt */
    /* why candidates were skipped, for the final status when none was tried */
    int skipped_limited, skipped_other;
    int64_t retry_ms; /* the soonest a limited candidate frees up */
    bool *bad_creds;  /* by credential index: answered 401/403 to this request (pool) */
    /* the current attempt */
    const ar_deployment_t *dep;
    ar_provider_t *prov;
    ar_admission_t adm;
    bool attempt_open;  /* admitted, not yet reported */
    bool shared_switch; /* waiting on Redis: the attempt counts as a switch once it starts */
    const ar_deployment_t *prev_dep; /* g->dep before the admission Redis may take back */
    /* the attempt's shared TPM windows, charged tpm_charged under tpm_member ("": none) */
    const char *tpm_keys[2];
    size_t tpm_keys_cnt;
    int64_t tpm_charged;
    char tpm_member[AR_REDIS_MEMBER_MAX];
    ar_provider_t *prev_prov;
    ar_transfer_t *xfer;
    ar_http_req_t up_req;
    int up_status;
    int64_t up_retry_after_ms; /* the upstream's Retry-After, -1 when absent */
    bool up_stream;            /* the current answer is an SSE stream */
    uint64_t attempt_start_us;
    uint64_t ttfb_us;
    ar_buf_t up_body; /* a whole answer (or an error body) */
    ar_sse_parser_t sse;
    ar_buf_t ev_out;
    bool paused;
    ar_list_t unflushed_link;  /* in gw->unflushed while output waits */
    ar_sse_parser_t front_sse; /* re-reads translated frames for a front */
    ar_buf_t front_out;
    uv_timer_t timer; /* mock latency and retry delays */
    bool timer_init;
    ar_inproc_answer_t inproc;
    bool inproc_init;
    ar_attempt_err_t errs[AR_MAX_ATTEMPT_ERRS];
    size_t errs_cnt;
    int final_status;
    bool finished;
    /* keyguard.c: what the caller's virtual key was charged */
    ar_reservation_t quota_res;
    int64_t key_tpm_charged; /* tokens added to the key's TPM window */
    uint64_t key_charged_ms; /* when */
    /* the key's admission in Redis (key_member "" when none): its RPM window (NULL: none),
     * given back when the request never reaches an upstream, and its TPM window (NULL:
     * none), charged key_redis_tpm and settled with the billed tokens */
    const char *key_rpm_key, *key_tpm_key;
    int64_t key_rpm_limit, key_tpm_limit; /* the key's limits as of ar_gw_key_admit */
    int64_t key_redis_tpm;
    char key_member[AR_REDIS_MEMBER_MAX];
    /* the key's quotas: what was asked, under which limits, whether Redis is to decide
     * (ar_gw_key_quota_shared); lease.c: what the request needs of its worker's lease of
     * the key, what it took from it, and its place among the lease's waiters */
    ar_quota_ask_t quota_ask;
    ar_quota_limits_t quota_lim;
    bool quota_ask_redis;
    bool lease_waiting;
    ar_redis_amount_t lease_min, lease_max, lease_took;
    struct ar_gw_lease *lease;
    ar_list_t lease_link;
    unsigned admit_stage;        /* the next stage of ar_gw_admit_next */
    ar_gw_rl_charge_t rl_charge; /* ratelimit.c: the client buckets' charge */
    int64_t max_output_tokens;   /* the request's max_tokens / max_completion_tokens, 0: none */
    double cost_usd;             /* what it cost, set when it finishes (ar_gw_cost) */
    const char *reasoning_hint;  /* ar_gw_native_t's, for each attempt's chat body */
} ar_gw_req_t;

/* runtime.c */
ar_runtime_t *ar_runtime_build(ar_config_t *cfg, ar_router_state_t *st, char *err, size_t errlen);
/** Asks upstreams for their models (replace_v1_models) and restricts open credentials. */
void ar_runtime_discover(ar_runtime_t *rt);
ar_runtime_t *ar_runtime_acquire(ar_gateway_t *gw);
void ar_runtime_release(ar_runtime_t *rt);

/* gateway.c */
/**
 * Makes the store's entries (taken) part of the running configuration: a runtime is built
 * from the config file's config plus them and swapped in as a SIGHUP reload does. On
 * failure the running configuration stays. Main thread.
 */
void ar_gw_store_models_apply(ar_gateway_t *gw, ar_gw_store_models_t *sm);

/* proxies.c (main thread, except acquire/release) */
void ar_gw_proxies_start(ar_gateway_t *gw);
void ar_gw_proxies_stop(ar_gateway_t *gw);
/** The current proxy health set (never NULL); release with ar_gw_proxies_release. Any thread. */
ar_proxy_snapshot_t *ar_gw_proxies_acquire(ar_gateway_t *gw);
void ar_gw_proxies_release(ar_proxy_snapshot_t *s);

/* tokens.c (main thread): access tokens of AR_PROV_TOKEN providers (vertex-ai) */
/**
 * Fetches a token for every provider of rt that needs one, before rt serves: the
 * transfers run on a private loop and each has a 10 s deadline, so this returns within
 * about 10 s whatever the token endpoints do. A failed fetch is logged and retried by the
 * renewal timer; requests to that credential fail over meanwhile. Call right after
 * ar_runtime_discover (at start and on reload).
 */
void ar_gw_tokens_prime(ar_runtime_t *rt);
/**
 * Starts the renewal timer on gw->main_loop: each token is fetched again when its provider
 * asks (60 s before expiry), failures are retried with backoff (1 s doubling to 60 s), one
 * request in flight per credential, always for the runtime currently installed.
 */
void ar_gw_tokens_start(ar_gateway_t *gw);
/** Stops the timer and cancels fetches in flight (no callback follows). */
void ar_gw_tokens_stop(ar_gateway_t *gw);

/* routes.c */
/**
 * The server's on_head hook, for requests with a body: finds the route and checks the key
 * before the body is read; answers 404/405/401 (in the route's error shape) at once, or
 * leaves the request (runtime, route, front) in req->data for ar_gw_on_request.
 */
void ar_gw_on_head(ar_http_request_t *req);
/** The server's on_request hook: serves a whole request (after ar_gw_on_head, or alone). */
void ar_gw_on_request(ar_http_request_t *req);

/* auth.c */
typedef enum ar_gw_auth_level { AR_AUTH_PUBLIC, AR_AUTH_KEY, AR_AUTH_MASTER } ar_gw_auth_level_t;
/**
 * Checks the caller's key: the master key, or a virtual key from the key cache. A key the
 * cache has not seen is looked up in the store without blocking: the request is parked
 * (ctx->auth_pending), and ar_gw_on_request runs again for it once the answer is in.
 * @return 0 (ctx->key set for a virtual key), AR_EAGAIN (parked), or AR_EAUTH after
 * answering 401 (no, unknown, revoked or expired key) or 403 (a virtual key on a
 * master-only route).
 */
int ar_gw_authenticate(ar_http_request_t *req, const ar_runtime_t *rt, ar_gw_auth_level_t level);
/** The id of the caller's virtual key, 0 for the master key (what owns stored data). */
int64_t ar_gw_caller_key_id(const ar_http_request_t *req);
/** The raw (still percent-encoded) value of query parameter name in q; empty when absent. */
ar_span_t ar_gw_query_param(ar_span_t q, const char *name);
/** Percent-decodes s into the pool. @return NULL when s is malformed or decodes to a NUL. */
char *ar_gw_url_decode(ar_pool_t *pool, ar_span_t s);
/** The client buckets of ratelimit.c for the admin pages (all NULL before first use). */
void ar_gw_ratelimit_view(ar_gateway_t *gw, ar_admin_limiter_t *out);
/* admin_api.c: the keys, plans and spend of the store (master key; store thread) */
void ar_gw_admin_keys_list(ar_http_request_t *req);
void ar_gw_admin_key_create(ar_http_request_t *req);
/** POST /admin/keys/{id}/revoke (action "revoke") and /admin/keys/{id}/limits ("limits"). */
void ar_gw_admin_key_action(ar_http_request_t *req, ar_span_t id, const char *action);
void ar_gw_admin_plans_list(ar_http_request_t *req);
void ar_gw_admin_plan_create(ar_http_request_t *req);
/** GET /admin/spend (JSON totals) and /admin/spend.csv (the records). */
void ar_gw_admin_spend(ar_http_request_t *req, bool csv);
/**
 * Store thread: reads key id into the key cache again if the cache holds it (after the
 * admin API changed or revoked it), so the next request sees the change.
 */
void ar_gw_tenancy_refresh_key(ar_gateway_t *gw, ar_store_t *s, int64_t id);

/* tenancy.c: the store behind virtual keys, quotas and the ledger */
typedef struct ar_gw_tenancy ar_gw_tenancy_t;
/** The process-wide key cache. Any thread. */
ar_keycache_t *ar_gw_tenancy_keys(ar_gw_tenancy_t *t);
/** Opens the store of storage.database_url and starts its thread. Main thread, at start. */
int ar_gw_tenancy_start(ar_gateway_t *gw, const ar_config_t *cfg, char *err, size_t errlen);
/** Starts polling the store for key changes (every key_cache_ttl / 2). Main thread. */
void ar_gw_tenancy_poll_start(ar_gateway_t *gw);
/** Stops polling. Main thread. */
void ar_gw_tenancy_poll_stop(ar_gateway_t *gw);
/**
 * Reads the store's connections (decrypting their keys with storage.secret_key) and
 * provider models, waiting for the store thread. Main thread, at start, before serving.
 * @return the entries (NULL when the store has no connection with models).
 */
ar_gw_store_models_t *ar_gw_tenancy_load_models(ar_gateway_t *gw);
void ar_gw_store_models_free(ar_gw_store_models_t *sm);
/** Drains and closes everything, once the workers have stopped. Main thread. */
void ar_gw_tenancy_stop(ar_gateway_t *gw);
/** The spend ledger (NULL without a store). Any thread. */
struct ar_ledger *ar_gw_tenancy_ledger(ar_gw_tenancy_t *t);
/** Counts work on its way to a worker (delta > 0) or done (< 0): shutdown waits for it. */
void ar_gw_tenancy_track(ar_gw_tenancy_t *t, long delta);
/** A spend record id no other record of any run has: a random prefix per process + a count. */
void ar_gw_tenancy_record_id(ar_gw_tenancy_t *t, char out[AR_SPEND_ID_MAX]);
/** What /health and /metrics show of the store and the ledger. Any thread. */
void ar_gw_tenancy_storage(const ar_gateway_t *gw, ar_admin_storage_t *out);
/** Store answers still on their way to a worker: shutdown waits for them. Any thread. */
long ar_gw_tenancy_outstanding(const ar_gateway_t *gw);
/** How long storage answers are trusted (key_cache_ttl). */
int64_t ar_gw_tenancy_ttl_ms(const ar_gateway_t *gw);
/**
 * Looks the key with this hash up in the store; cb(req) runs on req's worker afterwards,
 * with the key in the cache (ar_keycache_find) or remembered as unknown. Holds a
 * reference on req until then. @return 0, or AR_ESHUTDOWN (no store: cb never runs).
 */
int ar_gw_key_lookup(ar_http_request_t *req, const char *hash, void (*cb)(ar_http_request_t *req));

/**
 * Runs work(store, arg) on the store thread, then done(req, arg) (may be NULL) on req's
 * worker. req is held until then, so arg may point into its pool. Any gateway file's
 * store access goes through here. @return 0, or AR_ESHUTDOWN (no store: nothing runs).
 */
int ar_gw_store_call(ar_gateway_t *gw, ar_http_request_t *req,
                     void (*work)(ar_store_t *s, void *arg),
                     void (*done)(ar_http_request_t *req, void *arg), void *arg);

/* usage.c: GET /usage, /limits, /tariff, /rate-limit for the calling key */
void ar_gw_key_usage(ar_http_request_t *req, ar_runtime_t *rt);
void ar_gw_key_limits(ar_http_request_t *req, ar_runtime_t *rt);
void ar_gw_key_tariff(ar_http_request_t *req, ar_runtime_t *rt);
void ar_gw_key_rate_limit(ar_http_request_t *req, ar_runtime_t *rt);

/* cost.c: what a request costs */
/** Loads server.model_prices_link on a helper thread (start, SIGHUP). Main thread. */
void ar_gw_prices_load(ar_gateway_t *gw, const ar_config_t *cfg);
/** Stops a load still running and frees every table. Main thread, at exit. */
void ar_gw_prices_stop(ar_gateway_t *gw);
/** dep's model's prices per token (input, output): config, else the table; 0 unknown. */
void ar_gw_price_of(const ar_gw_req_t *g, const ar_deployment_t *dep, double *in, double *out);
/** The cost in USD of the usage the request's current deployment reported. */
double ar_gw_cost(const ar_gw_req_t *g);

/* spend.c: the spend record of each LLM request, written before the answer ends */
/** The worker's spend record batcher (a uv_check on its loop). Worker thread. */
void ar_gw_spend_worker_init(ar_gw_worker_t *gwk);
/** Closes it; nothing may be pending (shutdown waits for ar_gw_tenancy_outstanding). */
void ar_gw_spend_worker_dispose(ar_gw_worker_t *gwk);
/** Holds the end of an LLM answer until its spend record is written (with a ledger). */
void ar_gw_spend_hold(ar_http_request_t *req);
/**
 * Writes the finished request's spend record to the ledger; once its bytes are in the
 * kernel the held end of the answer goes out. Worker thread, from ar_gw_req_finish.
 */
void ar_gw_spend_record(ar_gw_req_t *g);

/* admission.c: the shared admission, worker thread */
/**
 * A stage of the shared admission, with the request taken over (ar_gw_req_finish ends it).
 * @return false when it has nothing to ask (the next stage runs at once); true when it
 * went on without the caller: it sent a check whose answer calls ar_gw_admit_next, or it
 * refused and finished the request.
 */
typedef bool (*ar_gw_admit_stage_fn)(ar_gw_req_t *g);
/**
 * Runs the remaining stages of the request's shared admission (after ar_gw_key_admit: the
 * local checks all passed), then routing (ar_gw_attempt_next). Called once by the request's
 * start, then by each stage that answered asynchronously and admitted.
 */
void ar_gw_admit_next(ar_gw_req_t *g);

/* keyguard.c: what a virtual key may do, worker thread */
/**
 * The key's checks for an LLM request about to be routed: the models it may use (403),
 * its RPM and TPM (429 limit_type "key"), its token and budget quotas (429 "quota"), which
 * reserve the request's worst case. @return 0, or AR_ELIMIT after answering.
 */
int ar_gw_key_admit(ar_gw_req_t *g, const ar_span_t *names, size_t names_cnt);
/**
 * The admission stage of the key's RPM and TPM shared through Redis (see admission.c):
 * Redis decides (a refusal answers 429 "key", no answer falls back to this instance's share
 * of the limit).
 */
bool ar_gw_key_windows_shared(ar_gw_req_t *g);
/**
 * The admission stage of the key's token quotas and budget shared through Redis: the
 * fleet's counters decide (a refusal answers 429 "quota" and gives back all the key was
 * charged; no answer falls back to this instance's share of what was left).
 */
bool ar_gw_key_quota_shared(ar_gw_req_t *g);
/* lease.c: key quotas shared through Redis as leases, worker thread */
/** The stage of ar_gw_key_quota_shared once the local checks passed with Redis ready. */
bool ar_gw_lease_take(ar_gw_req_t *g);
/** The request is done (used tokens and cost; 0 for one refused before any attempt):
 *  what it took goes back to its lease, its usage into the lease's next renewal, and a
 *  request still waiting leaves the waiters. Idempotent. */
void ar_gw_lease_settle(ar_gw_req_t *g, int64_t tokens, double cost_usd);
/** Starts and stops a worker's leases (dispose: on the worker's loop, before its Redis
 *  connection closes: the settled usage is sent one last time). */
void ar_gw_leases_init(ar_gw_worker_t *w);
void ar_gw_leases_dispose(ar_gw_worker_t *w);
/* keyguard.c, for lease.c */
/** Redis gave no answer: reserves within this instance's share. @return true when
 *  admitted; false when refused and finished. */
bool ar_gw_key_quota_fallback(ar_gw_req_t *g);
/** The shared counters refused (AR_QUOTA_TOKENS or AR_QUOTA_BUDGET): gives back what the
 *  key was charged, answers 429 "quota" and finishes. */
void ar_gw_key_quota_refused(ar_gw_req_t *g, ar_quota_verdict_t v);
/** How long a reservation in Redis outlives its request should the instance die. */
int64_t ar_gw_key_quota_hold_ms(const ar_gw_req_t *g);
/**
 * Gives back everything ar_gw_key_admit and the key's shared stages charged (RPM, TPM,
 * quota reservation, here and in Redis) without counting anything: for a request a later
 * check refused before any attempt. Idempotent.
 */
void ar_gw_key_give_back(ar_gw_req_t *g);
/**
 * The prompt and completion tokens the request is billed for (quotas, ledger, cost): the
 * upstream's usage, else, when an answer began but its usage never came, the prompt
 * estimate.
 */
void ar_gw_billed_tokens(const ar_gw_req_t *g, int64_t *prompt, int64_t *completion);
/**
 * Settles the key's shared TPM window (Redis) with the used tokens, once: as soon as a
 * successful attempt has its usage, before the answer goes out (the sooner the correction
 * lands, the less the next request overshoots); else ar_gw_key_settle does it.
 */
void ar_gw_key_settle_shared(ar_gw_req_t *g, int64_t used);
/** Settles what ar_gw_key_admit charged with the request's real usage. Idempotent. */
void ar_gw_key_settle(ar_gw_req_t *g, double cost_usd);

/* reply.c */
/**
 * The public name of the deployment that served (`_router.model_name`, x-airouter-model):
 * its `models:` name; for a store model, the caller's alias that led to it (its internal
 * name is never shown). "" before a deployment was chosen.
 */
const char *ar_gw_served_model(const ar_gw_req_t *g);
/** An error body in the client's format (the request's front, else OpenAI's shape). */
ar_span_t ar_gw_error_body(ar_http_request_t *req, int status, const char *type, const char *code,
                           const char *message);
/** Answers an error of the gateway's own, in the client's format; message is the reason. */
void ar_gw_error(ar_http_request_t *req, int status, const char *type, const char *code,
                 const char *message);
/**
 * Records why the gateway answers this request with an error of its own, for the access
 * line's `reason` field (the last one recorded wins). reason is copied into the request's
 * pool (at most about 1 KiB of it; the logger masks and cuts it further). Every error
 * helper here calls it; call it directly only for an answer sent another way.
 */
void ar_gw_set_reason(ar_http_request_t *req, const char *reason);
/**
 * Headers common to every answer: CORS, and X-RateLimit-* once ar_gw_ratelimit ran (3 of
 * them; a group that does not fit in max is left out). Fills out, returns the count.
 */
size_t ar_gw_common_headers(ar_http_request_t *req, const ar_runtime_t *rt, ar_http_header_t *out,
                            size_t max);

/* ratelimit.c */
/**
 * Client rate limiting (SPEC section 4): when rate_limiting.enabled, takes a token from the
 * global, then the per-client, then the per-model bucket, and records the X-RateLimit-*
 * headers of the most restrictive one in the request's ar_gw_ctx_t (req->data), which
 * ar_gw_common_headers adds to every later answer. Worker thread.
 * With a ready Redis connection the buckets take the full limits (a cheap first filter) and
 * Redis decides next (ar_gw_buckets_shared); without one, this instance's share of each
 * rate and burst (/ storage.redis_instances, at least 1).
 * @param model the first model name the client asked for (borrowed), "auto" when none
 * @param charge receives what was charged (the request's own, for ar_gw_buckets_shared)
 * @return 0 to go on; AR_ELIMIT after answering 429 (tokens taken from the buckets that
 * passed are given back, so a refused request counts nowhere).
 */
int ar_gw_ratelimit(ar_http_request_t *req, ar_runtime_t *rt, ar_span_t model,
                    ar_gw_rl_charge_t *charge);
/**
 * The admission stage of the client buckets shared through Redis (see admission.c): one
 * script takes a token from the global, client and model buckets of every instance at once
 * (keys airouter:rl:global, airouter:rl:client:HASH, airouter:rl:model:HASH). A refusal
 * answers as a local bucket's does (429, its limit_type, Retry-After, X-RateLimit-*) and
 * gives back the local tokens; no answer falls back to this instance's share. Nothing to
 * do (and no cost) without Redis or without rate_limiting.
 */
bool ar_gw_buckets_shared(ar_gw_req_t *g);
/** A 429 naming the limit (limit_type) with Retry-After, in the client's format. */
void ar_gw_refuse_limit(ar_http_request_t *req, const ar_runtime_t *rt, const char *limit_type,
                        int64_t retry_ms, const char *message);
/** Frees the process-wide buckets. Main thread, once the workers have stopped. */
void ar_gw_ratelimit_destroy(ar_gateway_t *gw);

/* filters.c */
/**
 * Reads the routing extensions of src (a request body object; NULL or no object: none)
 * into out; strings are copied to pool. @return NULL, or the 400 message naming the
 * member that has the wrong type.
 */
const char *ar_gw_route_filter(ar_pool_t *pool, const json_t *src, ar_route_filter_t *out);

/* llm.c */
/**
 * The OpenAI-format LLM endpoints. url_model (an Azure deployment in the URL), when not
 * empty, names the model instead of the body's `model`.
 */
void ar_gw_llm(ar_http_request_t *req, ar_runtime_t *rt, ar_endpoint_t ep, ar_span_t url_model);
/* ---- jansson values that live as long as a request's pool ---- */
static inline void ar_gw__json_decref(void *v)
{
    json_decref(v);
}

static inline void ar_gw__free(void *p)
{
    free(p);
}

/** Releases v (taken; NULL is fine) with pool. @return v. */
static inline json_t *ar_gw_pool_json(ar_pool_t *pool, json_t *v)
{
    if (v)
        ar_pool_cleanup_add(pool, ar_gw__json_decref, v);
    return v;
}

/** v as compact JSON text that pool owns (no copy made), or NULL when out of memory. */
static inline char *ar_gw_pool_dump(ar_pool_t *pool, const json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    if (s)
        ar_pool_cleanup_add(pool, ar_gw__free, s);
    return s;
}

/** Whether body holds any of airouter's own request fields (ar_request_extensions). */
bool ar_gw_has_extension(const json_t *body);
/** Removes them from body. */
void ar_gw_strip_extensions(json_t *body);

/** A front's request in its own API, for providers that speak that API natively. */
typedef struct ar_gw_native {
    ar_call_native_t call;       /* what such a provider sends */
    const json_t *client;        /* the client's request tree (borrowed, lives as long) */
    const char *translate_error; /* why there is no chat form (body NULL); in the pool */
    /* a reasoning_effort the client implied (Anthropic's thinking) rather than asked for:
     * sent only to deployments of `type: reasoning`, which are known to take it */
    const char *reasoning_hint;
    /* the chat form built only when an attempt needs it (body NULL): see ar_call_t */
    int (*translate)(ar_call_t *call);
    void *translate_ud;
    bool wants_usage; /* the front needs the stream's usage chunk (a lazy chat form) */
} ar_gw_native_t;

/**
 * Starts a chat request given as an OpenAI-shaped JSON tree (a front translated it from
 * its own API). body is taken (released with the request); the request's ctx->front
 * shapes the answers. Validation errors are the caller's to answer before this.
 * native (NULL: none) offers the client's own request to providers that speak its API;
 * body may then be NULL when it has no chat form (only those providers can serve it: the
 * others refuse with native->translate_error, a 400 when no candidate is left). The model,
 * stream and max tokens are then read from native->client.
 */
void ar_gw_llm_json(ar_http_request_t *req, ar_runtime_t *rt, json_t *body,
                    const ar_gw_native_t *native);

/* responses.c: POST /v1/responses; responses_stored.c: the stored responses */
void ar_gw_responses(ar_http_request_t *req, ar_runtime_t *rt);
/** GET /v1/responses/{id} (path: the route path). */
void ar_gw_response_get(ar_http_request_t *req, ar_span_t path);
/** DELETE /v1/responses/{id}. */
void ar_gw_response_delete(ar_http_request_t *req, ar_span_t path);
/** GET /v1/responses/{id}/input_items. */
void ar_gw_response_input_items(ar_http_request_t *req, ar_span_t path);
extern const ar_front_ops_t ar_front_responses;

/* messages.c: POST /v1/messages, Anthropic's Messages API in and out */
void ar_gw_messages(ar_http_request_t *req, ar_runtime_t *rt);
/** POST /v1/messages/count_tokens: {"input_tokens": N}, N about characters / 4. */
void ar_gw_messages_count_tokens(ar_http_request_t *req, ar_runtime_t *rt);
extern const ar_front_ops_t ar_front_anthropic;

/* attempt.c: the retry machine (candidates, admission, retries, fallback, final errors) */
void ar_gw_attempt_next(ar_gw_req_t *g);
void ar_gw_req_abort(ar_http_request_t *http, int reason);
void ar_gw_req_finish(ar_gw_req_t *g);

/* answer.c: what a relayed answer looks like to the client */
/** The headers of an answer: content type, x-airouter-*, CORS, then extra. @return count. */
size_t ar_gw_answer_headers(ar_gw_req_t *g, ar_http_header_t *hs, size_t max, bool stream,
                            const ar_http_header_t *extra, size_t extra_cnt);
/** Sends a JSON object body with `_router` spliced in (router_metadata), never copied. */
void ar_gw_send_json(ar_gw_req_t *g, int status, ar_span_t body, const ar_http_header_t *extra,
                     size_t extra_cnt);
/** A successful whole answer (OpenAI chat.completion), in the client's format. */
void ar_gw_send_answer(ar_gw_req_t *g, int status, ar_span_t body);
/** An error answer of the gateway's own, in the client's format, its message masked. */
void ar_gw_send_error(ar_gw_req_t *g, int status, const char *type, const char *code,
                      const char *message, const ar_http_header_t *extra, size_t extra_cnt);

/* stream.c: the pump from an upstream transfer to the client */
/** The transfer's on_data: collects a whole answer, or parses and forwards stream events. */
int ar_gw_on_upstream_data(void *ud, ar_span_t data);
/** Parses what the stream's last read left (its last event may lack the blank line). */
int ar_gw_stream_finish(ar_gw_req_t *g);
/** Sends the stream's head once (200, text/event-stream). */
void ar_gw_stream_begin(ar_gw_req_t *g);
/** Sends OpenAI stream frames, through the front if any. @return 0 or AR_ECANCELED. */
int ar_gw_emit(ar_gw_req_t *g, ar_span_t frames);
/** The stream ended normally: the provider's closing frames, then the front's. */
void ar_gw_stream_end(ar_gw_req_t *g);
/** An SSE error event for a stream that cannot go on, its message masked. */
void ar_gw_stream_error(ar_gw_req_t *g, const char *type, const char *message);
/** Flushes every stream that wrote since the last upstream batch (worker thread). */
void ar_gw_flush_streams(void *gw_worker);

/* models.c */
void ar_gw_models(ar_http_request_t *req, ar_runtime_t *rt, ar_span_t id);
int ar_gw_models_build(ar_runtime_t *rt);

/* litellm.c: the LiteLLM data plane (litellm_db) */
/** What a request keeps of its LiteLLM key (its pool). */
typedef struct ar_gw_llkey {
    char token[65]; /* SHA-256 hex of the key: "LiteLLM_VerificationToken".token */
    char **models;  /* models_cnt == 0: every model */
    size_t models_cnt;
    const char *user_id, *team_id, *key_alias; /* "" when none */
} ar_gw_llkey_t;
/**
 * Connects to litellm_db.database_url and starts the thread that owns the connection
 * (nothing when litellm_db is not enabled). Unreachable: an error when is_required, else a
 * warning and the thread keeps trying. @return 0, or an AR_E* code with err filled.
 */
int ar_gw_litellm_start(ar_gateway_t *gw, const ar_config_t *cfg, char *err, size_t errlen);
/** Writes the spend rows still queued (one try per batch), stops the thread, frees all. */
void ar_gw_litellm_stop(ar_gateway_t *gw);
/** Lookups whose answer has not run on its worker yet (shutdown waits for them). */
long ar_gw_litellm_outstanding(const ar_gateway_t *gw);
/**
 * Authenticates req with the LiteLLM token token (64 hex digits) from the cache, or parks
 * it: AR_EAGAIN, and cb runs on the worker once the database answered (the caller sets
 * ctx->ll_looked_up there and runs the request again). @return 0 (ctx->ll set), AR_EAUTH
 * after answering (401 unknown, blocked or expired; 403 for a master-key
 * route; 429 budget or RPM/TPM; 503 when the database cannot say), or AR_EAGAIN.
 */
int ar_gw_litellm_auth(ar_http_request_t *req, const char *token, ar_gw_auth_level_t level,
                       void (*cb)(ar_http_request_t *req));
/** The LiteLLM key's models for an LLM request (403 model_not_allowed). @return 0 or
 * AR_ELIMIT after answering. */
int ar_gw_litellm_admit(ar_gw_req_t *g, const ar_span_t *names, size_t names_cnt);
/** Queues the finished request's "LiteLLM_SpendLogs" row (a full queue drops it). */
void ar_gw_litellm_record(ar_gw_req_t *g);
/** The figures /health shows. */
void ar_gw_litellm_view(const ar_gateway_t *gw, ar_admin_litellm_t *out);

#endif
