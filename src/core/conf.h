/*
 * conf.h: the configuration tree as plain, immutable data. config/ builds it from YAML and
 * validates every value; all other modules only read it, through a const pointer, from
 * the thread that holds a reference (see ar_config_ref in config/config.h). It sits in
 * core so that every module may read its own part without including config/ (the DAG).
 * Conventions: durations are *_ms; AR_UNLIMITED (-1) means "no limit"; strings are owned
 * by the config and NUL-terminated; NULL means "not set".
 */
#ifndef AR_CORE_CONF_H
#define AR_CORE_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_PERMANENT (-2) /* ban_duration: permanent */

typedef struct ar_kv {
    char *key;
    char *value;
} ar_kv_t;

typedef struct ar_strlist {
    char **items;
    size_t cnt;
} ar_strlist_t;

typedef struct ar_server_conf {
    char *host;                       /* "0.0.0.0" */
    int port;                         /* 8080 */
    int workers;                      /* 0 = one per core; resolved by the server at start */
    int64_t max_body_size_mb;         /* 100 */
    int64_t response_body_multiplier; /* 10 */
    int64_t request_timeout_ms;       /* 60000; AR_UNLIMITED = none */
    int64_t write_timeout_ms;         /* 60000 */
    int64_t idle_timeout_ms;          /* 120000 */
    int64_t header_timeout_ms;        /* 10000; AR_UNLIMITED = none */
    int64_t max_connections;          /* 0 = from the fd limit; AR_UNLIMITED = none */
    int64_t idle_conn_timeout_ms;     /* 120000; whole seconds; AR_UNLIMITED = none */
    int64_t max_idle_conns;           /* 200, over all workers; 0 = none; AR_UNLIMITED */
    int64_t shutdown_timeout_ms;      /* 10000 */
    int logging_level;                /* ar_log_level_t; AR_LOG_INFO */
    int log_format;                   /* ar_log_format_t; AR_LOG_TEXT */
    char *master_key;                 /* required */
    int64_t default_models_rpm;       /* AR_UNLIMITED */
    char *model_prices_link;          /* NULL or "" = none */
    bool replace_v1_models;           /* true */
    bool router_metadata;             /* true */
    ar_strlist_t cors_origins;        /* empty */
} ar_server_conf_t;

typedef struct ar_ban_rule {
    int code;
    int64_t max_attempts;
    int64_t ban_duration_ms; /* AR_PERMANENT or ms */
} ar_ban_rule_t;

typedef struct ar_fail2ban_conf {
    int64_t max_attempts;    /* 3 */
    int64_t ban_duration_ms; /* AR_PERMANENT */
    int *error_codes;        /* default 401 403 429 500 502 503 504 */
    size_t error_codes_cnt;
    ar_ban_rule_t *rules;
    size_t rules_cnt;
} ar_fail2ban_conf_t;

typedef struct ar_breaker_conf {
    int64_t failure_threshold;  /* 3 */
    int64_t cooldown_period_ms; /* 60000 */
    int64_t success_threshold;  /* 2 */
    int64_t stats_window_ms;    /* 300000 */
} ar_breaker_conf_t;

typedef enum ar_strategy {
    AR_STRATEGY_ROUND_ROBIN = 0,
    AR_STRATEGY_WEIGHTED,
    AR_STRATEGY_LEAST_BUSY,
    AR_STRATEGY_LOWEST_LATENCY,
    AR_STRATEGY_SMART,
} ar_strategy_t;

typedef struct ar_routing_conf {
    ar_strategy_t strategy;     /* round_robin */
    int64_t max_retries;        /* 3 */
    int64_t rate_limit_retries; /* 2 */
    int64_t retry_delay_ms;     /* 1000 */
    bool fallback_enabled;      /* false */
    char *fallback_credential;  /* required when enabled; must name a credential */
    char *fallback_model;       /* required when enabled */
} ar_routing_conf_t;

typedef struct ar_bucket_conf {
    bool enabled;
    int64_t requests_per_minute;
    int64_t burst_size; /* default: requests_per_minute */
} ar_bucket_conf_t;

typedef struct ar_ratelimit_conf {
    bool enabled;                /* false */
    ar_bucket_conf_t global;     /* enabled when the key is present; rpm 1000 */
    ar_bucket_conf_t per_client; /* enabled true, 60 rpm when present */
    ar_bucket_conf_t per_model;  /* enabled true, 300 rpm when present */
} ar_ratelimit_conf_t;

typedef struct ar_monitoring_conf {
    bool prometheus_enabled; /* true */
    bool log_errors;         /* false */
    char *errors_log_path;   /* "./errors.log" */
} ar_monitoring_conf_t;

typedef struct ar_storage_conf {
    char *database_url;                /* "sqlite://./airouter.db" */
    int64_t key_cache_ttl_ms;          /* 5000 */
    char *redis_url;                   /* NULL = none: limits are per instance */
    int64_t redis_instances;           /* 1: local windows take limit / this without Redis */
    char *secret_key;                  /* NULL = none */
    int64_t spend_fsync_interval_ms;   /* 100 */
    int64_t default_max_output_tokens; /* 4096 */
    int64_t min_conns;                 /* 1: PostgreSQL connections opened at start */
    int64_t max_conns;                 /* 4: PostgreSQL store threads at most */
    int64_t connect_timeout_ms;        /* 5000 */
    int64_t query_timeout_ms;          /* 10000 */
} ar_storage_conf_t;

typedef struct ar_litellm_conf {
    bool enabled;
    bool is_required;
    char *database_url;
    int64_t max_conns;                /* 25: connections (threads) at most */
    int64_t min_conns;                /* 5: opened at start (0: 1) */
    int64_t health_check_interval_ms; /* 10000 */
    int64_t connect_timeout_ms;       /* 5000 */
    int64_t auth_cache_ttl_ms;        /* 20000 */
    int64_t auth_cache_size;          /* 10000 */
    int64_t log_queue_size;           /* 5000 */
    int64_t log_batch_size;           /* 100 */
    int64_t log_flush_interval_ms;    /* 5000 */
    int64_t log_retry_attempts;       /* 3 */
    int64_t log_retry_delay_ms;       /* 1000 */
} ar_litellm_conf_t;

typedef enum ar_cred_type {
    AR_CRED_OPENAI = 0,
    AR_CRED_AZURE,
    AR_CRED_ANTHROPIC,
    AR_CRED_GEMINI,
    AR_CRED_VERTEX,
    AR_CRED_PROXY,
    AR_CRED_MOCK,
    AR_CRED_TYPE_CNT
} ar_cred_type_t;

typedef struct ar_cred_conf {
    char *name; /* unique */
    ar_cred_type_t type;
    char *type_name; /* "openai", "vertex-ai", ... as written */
    char *api_key;
    char *base_url; /* without trailing '/'; per-type default when absent */
    int64_t rpm;    /* AR_UNLIMITED when absent */
    int64_t tpm;    /* AR_UNLIMITED when absent */
    int64_t weight; /* 1 */
    bool is_fallback;
    /* openai, proxy: Responses API clients' requests go to {base_url}/v1/responses as sent;
     * anthropic: Messages API clients' go to /v1/messages as sent. false: both translated. */
    bool native_api;
    ar_kv_t *headers;
    size_t headers_cnt;
    char *api_version;          /* azure; "2024-10-21" when absent */
    char *project_id;           /* vertex-ai */
    char *location;             /* vertex-ai */
    char *credentials_file;     /* vertex-ai */
    char *credentials_json;     /* vertex-ai */
    int64_t mock_latency_ms;    /* mock: 0 */
    int64_t mock_stream_chunks; /* mock: 0 = one chunk per word */
    int line;                   /* where it was defined */
    bool from_store;            /* a store connection (ar_config_extend), not the file's */
} ar_cred_conf_t;

typedef enum ar_model_kind {
    AR_MODEL_KIND_ANY = 0, /* type not set */
    AR_MODEL_KIND_FAST,
    AR_MODEL_KIND_REASONING,
} ar_model_kind_t;

typedef struct ar_model_conf {
    char *name;             /* public name */
    char *credential;       /* name of a credential (validated) */
    size_t credential_idx;  /* index into ar_config_t.credentials */
    char *model;            /* upstream name; defaults to name */
    int64_t rpm;            /* absent: server.default_models_rpm */
    int64_t tpm;            /* AR_UNLIMITED when absent */
    int64_t weight;         /* 1 */
    int64_t max_concurrent; /* AR_UNLIMITED when absent */
    ar_strlist_t tags;
    ar_model_kind_t kind;      /* `type:` */
    int64_t context_size;      /* 0 = unknown */
    int64_t max_output_tokens; /* 0 = unknown */
    bool json_response;
    bool available;               /* true */
    double input_cost_per_token;  /* < 0 = not set (use the price table) */
    double output_cost_per_token; /* < 0 = not set */
    int line;
    /* a store provider model (ar_config_extend): reached only through a key's alias, never
     * by its internal name, "auto" or the model list */
    bool from_store;
} ar_model_conf_t;

typedef struct ar_config {
    _Atomic long refcnt;
    char *path;            /* the file it came from */
    ar_strlist_t warnings; /* "FILE:LINE: PATH: not used yet (...)", in file order */
    ar_server_conf_t server;
    ar_fail2ban_conf_t fail2ban;
    ar_breaker_conf_t circuit_breaker;
    ar_routing_conf_t routing;
    ar_ratelimit_conf_t rate_limiting;
    ar_monitoring_conf_t monitoring;
    ar_storage_conf_t storage;
    ar_litellm_conf_t litellm_db;
    ar_cred_conf_t *credentials;
    size_t credentials_cnt;
    ar_model_conf_t *models;
    size_t models_cnt;
} ar_config_t;

#endif
