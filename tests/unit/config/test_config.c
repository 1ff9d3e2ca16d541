/*
 * test_config.c: unit tests of config/ (loader, schema tables, env resolution). They load
 * YAML from memory (and once from disk) and check every parsed value of the SPEC section 2
 * example, the defaults, and each kind of error with its exact "FILE:LINE: message".
 * Every allocation goes through cmocka's checked allocator, so a leak fails the test.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"

#define BASE "server:\n  master_key: k\n"

static int load(const char *yaml, ar_config_t **cfg, ar_strlist_t *errs)
{
    return ar_config_load_string("t.yaml", yaml, strlen(yaml), cfg, errs);
}

/* Loads yaml, which must succeed; the caller unrefs. */
static ar_config_t *load_ok(const char *yaml)
{
    ar_config_t *cfg = NULL;
    ar_strlist_t errs = {0};
    int rc = load(yaml, &cfg, &errs);
    for (size_t i = 0; i < errs.cnt; i++)
        print_message("unexpected: %s\n", errs.items[i]);
    assert_int_equal(errs.cnt, 0);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    ar_strlist_dispose(&errs);
    return cfg;
}

/* Loads yaml, which must fail with exactly the NULL-terminated list of messages want. */
static void expect_errors(const char *yaml, const char *const *want)
{
    ar_config_t *cfg = NULL;
    ar_strlist_t errs = {0};
    size_t n = 0;
    int rc = load(yaml, &cfg, &errs);
    while (want[n])
        n++;
    for (size_t i = 0; i < errs.cnt; i++) {
        if (i >= n || strcmp(errs.items[i], want[i]) != 0)
            print_message("got [%zu]: %s\n", i, errs.items[i]);
    }
    assert_int_equal(rc, AR_EINVAL);
    assert_null(cfg);
    assert_int_equal(errs.cnt, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(errs.items[i], want[i]);
    ar_strlist_dispose(&errs);
}

static void expect_error(const char *yaml, const char *want)
{
    expect_errors(yaml, (const char *const[]){want, NULL});
}

/* cfg's warnings must be exactly the NULL-terminated list want, in that order. */
static void expect_warnings(const ar_config_t *cfg, const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    for (size_t i = 0; i < cfg->warnings.cnt; i++) {
        if (i >= n || strcmp(cfg->warnings.items[i], want[i]) != 0)
            print_message("got warning [%zu]: %s\n", i, cfg->warnings.items[i]);
    }
    assert_int_equal(cfg->warnings.cnt, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(cfg->warnings.items[i], want[i]);
}

/* ---- the SPEC section 2 example ---- */

static const char spec_yaml[] =
    "server:\n"
    "  host: 0.0.0.0               # default 0.0.0.0\n"
    "  port: 8080                  # default 8080\n"
    "  workers: 0                  # event-loop threads; 0 = one per CPU core\n"
    "  max_body_size_mb: 100       # request body limit -> 413\n"
    "  response_body_multiplier: 10   # max upstream response = max_body_size_mb * this\n"
    "  request_timeout: 60s        # whole upstream exchange; -1 = none\n"
    "  write_timeout: 60s          # client write stall limit\n"
    "  idle_timeout: 2m            # idle client keep-alive connection\n"
    "  idle_conn_timeout: 120s     # idle upstream pooled connection\n"
    "  max_idle_conns: 200         # upstream pool size (all hosts)\n"
    "  # max_idle_conns_per_host: 20   (ignored: see test_ignored_key)\n"
    "  shutdown_timeout: 10s       # drain time on SIGTERM\n"
    "  logging_level: info         # debug | info | error\n"
    "  log_format: text            # text | json\n"
    "  master_key: \"os.environ/MASTER_KEY\"   # required: admin + client key\n"
    "  default_models_rpm: -1      # RPM for deployments without their own rpm\n"
    "  model_prices_link: \"\"       # URL or file path, LiteLLM model_prices JSON format\n"
    "  replace_v1_models: true     # discover models from upstream /v1/models at start, for\n"
    "                              # credentials that have no entry under `models:`\n"
    "  router_metadata: true       # add \"_router\" to JSON responses + x-airouter-* headers\n"
    "  cors_origins: []            # e.g. [\"*\"] or [\"https://app.example.com\"]\n"
    "\n"
    "fail2ban:                      # per credential\n"
    "  max_attempts: 3             # consecutive counted errors before a ban\n"
    "  ban_duration: permanent     # or a duration\n"
    "  error_codes: [401, 403, 429, 500, 502, 503, 504]\n"
    "  error_code_rules:           # per-code overrides\n"
    "    - code: 429\n"
    "      max_attempts: 5\n"
    "      ban_duration: 5m\n"
    "\n"
    "circuit_breaker:               # per deployment (credential + model)\n"
    "  failure_threshold: 3        # failures in window -> OPEN\n"
    "  cooldown_period: 60s        # OPEN -> HALF_OPEN after this\n"
    "  success_threshold: 2        # HALF_OPEN successes -> CLOSED\n"
    "  stats_window: 5m            # window for success rate / latency stats\n"
    "\n"
    "routing:\n"
    "  strategy: round_robin       # round_robin | weighted | least_busy | lowest_latency | smart\n"
    "  max_retries: 3              # deployment switches per request\n"
    "  rate_limit_retries: 2       # same-deployment retries on 429 / ECONNRESET / ENETUNREACH\n"
    "  retry_delay: 1s\n"
    "  fallback:                   # last resort after all candidates failed\n"
    "    enabled: false\n"
    "    credential: deepseek_paid\n"
    "    model: deepseek-chat      # the upstream model name sent to that credential\n"
    "\n"
    "rate_limiting:                 # limits on clients (token bucket), off by default\n"
    "  enabled: false\n"
    "  global:    { requests_per_minute: 1000 }\n"
    "  per_client: { enabled: true, requests_per_minute: 60, burst_size: 10 }\n"
    "  # each bucket holds burst_size tokens (default: requests_per_minute) and refills\n"
    "  # requests_per_minute tokens per 60 s\n"
    "  per_model: { enabled: true, requests_per_minute: 300 }\n"
    "\n"
    "monitoring:\n"
    "  prometheus_enabled: true    # GET /metrics\n"
    "  log_errors: false\n"
    "  errors_log_path: ./errors.log\n"
    "\n"
    "storage:\n"
    "  database_url: \"sqlite://./airouter.db\"\n"
    "                                            # or postgresql://user:pass@host/db\n"
    "  key_cache_ttl: 5s\n"
    "  redis_url: \"\"\n"
    "  secret_key: \"os.environ/AIROUTER_SECRET\"\n"
    "\n"
    "litellm_db:\n"
    "  enabled: false\n"
    "  is_required: false          # true: refuse to start without the database\n"
    "  database_url: \"os.environ/LITELLM_DATABASE_URL\"\n"
    "  max_conns: 25\n"
    "  min_conns: 5\n"
    "  health_check_interval: 10s\n"
    "  connect_timeout: 5s\n"
    "  auth_cache_ttl: 20s\n"
    "  auth_cache_size: 10000\n"
    "  log_queue_size: 5000\n"
    "  log_batch_size: 100\n"
    "  log_flush_interval: 5s\n"
    "  log_retry_attempts: 3\n"
    "  log_retry_delay: 1s\n"
    "\n"
    "credentials:                   # upstream accounts (\"connections\")\n"
    "  - name: openai_main          # unique\n"
    "    type: openai\n"
    "    api_key: \"os.environ/OPENAI_API_KEY\"\n"
    "    base_url: https://api.openai.com\n"
    "    rpm: 100                   # -1 or absent = unlimited\n"
    "    tpm: 50000\n"
    "    weight: 1                  # for weighted strategy\n"
    "    is_fallback: false         # true: used only when no primary can serve\n"
    "    headers: {}                # extra headers sent upstream\n"
    "  - name: azure_eu\n"
    "    type: azure\n"
    "    api_key: \"os.environ/AZURE_KEY\"\n"
    "    base_url: https://my-res.openai.azure.com\n"
    "    api_version: 2024-10-21    # absent -> a current default; \"v1\" -> /openai/v1/ paths\n"
    "  - name: claude\n"
    "    type: anthropic\n"
    "    api_key: \"os.environ/ANTHROPIC_API_KEY\"\n"
    "    base_url: https://api.anthropic.com\n"
    "  - name: gemini_studio\n"
    "    type: gemini               # Google AI Studio, x-goog-api-key\n"
    "    api_key: \"os.environ/GEMINI_API_KEY\"\n"
    "    base_url: https://generativelanguage.googleapis.com\n"
    "  - name: vertex_ai\n"
    "    type: vertex-ai\n"
    "    project_id: my-project\n"
    "    location: global           # or a region, e.g. us-central1\n"
    "    credentials_file: sa.json\n"
    "  - name: backup_router\n"
    "    type: proxy                # another airouter instance\n"
    "    base_url: http://10.0.1.50:8080\n"
    "    api_key: \"os.environ/REMOTE_KEY\"\n"
    "    is_fallback: true\n"
    "  - name: local_mock\n"
    "    type: mock\n"
    "\n"
    "models:                        # deployments; absent = every model on every credential\n"
    "  - name: gpt-4o               # public name clients ask for\n"
    "    credential: openai_main\n"
    "    model: gpt-4o-2024-08-06   # upstream name (Azure: deployment name); default = name\n"
    "    rpm: 100\n"
    "    tpm: 50000\n"
    "    weight: 5                  # smart/weighted strategy\n"
    "    max_concurrent: 3          # in-flight limit for this deployment\n"
    "    tags: [general, code]\n"
    "    type: fast                 # fast | reasoning\n"
    "    context_size: 128000\n"
    "    max_output_tokens: 16384\n"
    "    json_response: true\n"
    "    available: true\n"
    "    input_cost_per_token: 0.0000025    # overrides the price table\n"
    "    output_cost_per_token: 0.00001\n";

static const char *const spec_env[][2] = {
    {"MASTER_KEY", "sk-master-123"},
    {"AIROUTER_SECRET", "secret-xyz"},
    {"LITELLM_DATABASE_URL", "postgresql://u:p@db/litellm"},
    {"OPENAI_API_KEY", "sk-openai"},
    {"AZURE_KEY", "az-key"},
    {"ANTHROPIC_API_KEY", "sk-ant"},
    {"GEMINI_API_KEY", "gem-key"},
    {"REMOTE_KEY", "remote-key"},
};

static void test_spec_example(void **state)
{
    char dir[] = "/tmp/ar_cfg_XXXXXX";
    char old[4096];
    (void)state;
    for (size_t i = 0; i < AR_ARRAY_CNT(spec_env); i++)
        setenv(spec_env[i][0], spec_env[i][1], 1);
    /* credentials_file: sa.json must exist, relative to the working directory. */
    assert_non_null(getcwd(old, sizeof(old)));
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);
    FILE *f = fopen("sa.json", "w");
    assert_non_null(f);
    fputs("{}", f);
    fclose(f);

    ar_config_t *cfg = load_ok(spec_yaml);

    unlink("sa.json");
    assert_int_equal(chdir(old), 0);
    rmdir(dir);

    assert_string_equal(cfg->path, "t.yaml");
    assert_int_equal(cfg->refcnt, 1);

    const ar_server_conf_t *s = &cfg->server;
    assert_string_equal(s->host, "0.0.0.0");
    assert_int_equal(s->port, 8080);
    assert_int_equal(s->workers, 0);
    assert_int_equal(s->max_body_size_mb, 100);
    assert_int_equal(s->response_body_multiplier, 10);
    assert_int_equal(s->request_timeout_ms, 60000);
    assert_int_equal(s->write_timeout_ms, 60000);
    assert_int_equal(s->idle_timeout_ms, 120000);
    assert_int_equal(s->idle_conn_timeout_ms, 120000);
    assert_int_equal(s->max_idle_conns, 200);
    assert_int_equal(s->shutdown_timeout_ms, 10000);
    assert_int_equal(s->logging_level, AR_LOG_INFO);
    assert_int_equal(s->log_format, AR_LOG_TEXT);
    assert_string_equal(s->master_key, "sk-master-123");
    assert_int_equal(s->default_models_rpm, AR_UNLIMITED);
    assert_null(s->model_prices_link);
    assert_true(s->replace_v1_models);
    assert_true(s->router_metadata);
    assert_int_equal(s->cors_origins.cnt, 0);

    const ar_fail2ban_conf_t *fb = &cfg->fail2ban;
    static const int codes[] = {401, 403, 429, 500, 502, 503, 504};
    assert_int_equal(fb->max_attempts, 3);
    assert_int_equal(fb->ban_duration_ms, AR_PERMANENT);
    assert_int_equal(fb->error_codes_cnt, 7);
    assert_memory_equal(fb->error_codes, codes, sizeof(codes));
    assert_int_equal(fb->rules_cnt, 1);
    assert_int_equal(fb->rules[0].code, 429);
    assert_int_equal(fb->rules[0].max_attempts, 5);
    assert_int_equal(fb->rules[0].ban_duration_ms, 300000);

    assert_int_equal(cfg->circuit_breaker.failure_threshold, 3);
    assert_int_equal(cfg->circuit_breaker.cooldown_period_ms, 60000);
    assert_int_equal(cfg->circuit_breaker.success_threshold, 2);
    assert_int_equal(cfg->circuit_breaker.stats_window_ms, 300000);

    const ar_routing_conf_t *r = &cfg->routing;
    assert_int_equal(r->strategy, AR_STRATEGY_ROUND_ROBIN);
    assert_int_equal(r->max_retries, 3);
    assert_int_equal(r->rate_limit_retries, 2);
    assert_int_equal(r->retry_delay_ms, 1000);
    assert_false(r->fallback_enabled);
    /* Disabled: the credential need not exist (deepseek_paid is not defined). */
    assert_string_equal(r->fallback_credential, "deepseek_paid");
    assert_string_equal(r->fallback_model, "deepseek-chat");

    const ar_ratelimit_conf_t *rl = &cfg->rate_limiting;
    assert_false(rl->enabled);
    assert_true(rl->global.enabled);
    assert_int_equal(rl->global.requests_per_minute, 1000);
    assert_int_equal(rl->global.burst_size, 1000);
    assert_true(rl->per_client.enabled);
    assert_int_equal(rl->per_client.requests_per_minute, 60);
    assert_int_equal(rl->per_client.burst_size, 10);
    assert_true(rl->per_model.enabled);
    assert_int_equal(rl->per_model.requests_per_minute, 300);
    assert_int_equal(rl->per_model.burst_size, 300);

    assert_true(cfg->monitoring.prometheus_enabled);
    assert_false(cfg->monitoring.log_errors);
    assert_string_equal(cfg->monitoring.errors_log_path, "./errors.log");

    assert_string_equal(cfg->storage.database_url, "sqlite://./airouter.db");
    assert_int_equal(cfg->storage.key_cache_ttl_ms, 5000);
    assert_null(cfg->storage.redis_url);
    assert_int_equal(cfg->storage.redis_instances, 1);
    assert_string_equal(cfg->storage.secret_key, "secret-xyz");

    const ar_litellm_conf_t *l = &cfg->litellm_db;
    assert_false(l->enabled);
    assert_false(l->is_required);
    assert_string_equal(l->database_url, "postgresql://u:p@db/litellm");
    assert_int_equal(l->max_conns, 25);
    assert_int_equal(l->min_conns, 5);
    assert_int_equal(l->health_check_interval_ms, 10000);
    assert_int_equal(l->connect_timeout_ms, 5000);
    assert_int_equal(l->auth_cache_ttl_ms, 20000);
    assert_int_equal(l->auth_cache_size, 10000);
    assert_int_equal(l->log_queue_size, 5000);
    assert_int_equal(l->log_batch_size, 100);
    assert_int_equal(l->log_flush_interval_ms, 5000);
    assert_int_equal(l->log_retry_attempts, 3);
    assert_int_equal(l->log_retry_delay_ms, 1000);

    assert_int_equal(cfg->credentials_cnt, 7);
    const ar_cred_conf_t *c = cfg->credentials;
    assert_string_equal(c[0].name, "openai_main");
    assert_int_equal(c[0].type, AR_CRED_OPENAI);
    assert_string_equal(c[0].type_name, "openai");
    assert_string_equal(c[0].api_key, "sk-openai");
    assert_string_equal(c[0].base_url, "https://api.openai.com");
    assert_int_equal(c[0].rpm, 100);
    assert_int_equal(c[0].tpm, 50000);
    assert_int_equal(c[0].weight, 1);
    assert_false(c[0].is_fallback);
    assert_int_equal(c[0].headers_cnt, 0);
    assert_int_equal(c[0].line, 86);

    assert_string_equal(c[1].name, "azure_eu");
    assert_int_equal(c[1].type, AR_CRED_AZURE);
    assert_string_equal(c[1].api_key, "az-key");
    assert_string_equal(c[1].base_url, "https://my-res.openai.azure.com");
    assert_string_equal(c[1].api_version, "2024-10-21");
    assert_int_equal(c[1].rpm, AR_UNLIMITED);
    assert_int_equal(c[1].tpm, AR_UNLIMITED);

    assert_string_equal(c[2].name, "claude");
    assert_int_equal(c[2].type, AR_CRED_ANTHROPIC);
    assert_string_equal(c[2].api_key, "sk-ant");
    assert_string_equal(c[2].base_url, "https://api.anthropic.com");

    assert_string_equal(c[3].name, "gemini_studio");
    assert_int_equal(c[3].type, AR_CRED_GEMINI);
    assert_string_equal(c[3].api_key, "gem-key");
    assert_string_equal(c[3].base_url, "https://generativelanguage.googleapis.com");

    assert_string_equal(c[4].name, "vertex_ai");
    assert_int_equal(c[4].type, AR_CRED_VERTEX);
    assert_string_equal(c[4].type_name, "vertex-ai");
    assert_string_equal(c[4].project_id, "my-project");
    assert_string_equal(c[4].location, "global");
    assert_string_equal(c[4].credentials_file, "sa.json");
    /* the key file is read with the config (providers do no I/O) */
    assert_string_equal(c[4].credentials_json, "{}");
    assert_null(c[4].api_key);
    assert_null(c[4].base_url);

    assert_string_equal(c[5].name, "backup_router");
    assert_int_equal(c[5].type, AR_CRED_PROXY);
    assert_string_equal(c[5].base_url, "http://10.0.1.50:8080");
    assert_string_equal(c[5].api_key, "remote-key");
    assert_true(c[5].is_fallback);

    assert_string_equal(c[6].name, "local_mock");
    assert_int_equal(c[6].type, AR_CRED_MOCK);
    assert_null(c[6].base_url);
    assert_null(c[6].api_key);
    assert_int_equal(c[6].mock_latency_ms, 0);
    assert_int_equal(c[6].mock_stream_chunks, 0);
    assert_int_equal(c[6].line, 118);

    assert_int_equal(cfg->models_cnt, 1);
    const ar_model_conf_t *m = cfg->models;
    assert_string_equal(m->name, "gpt-4o");
    assert_string_equal(m->credential, "openai_main");
    assert_int_equal(m->credential_idx, 0);
    assert_string_equal(m->model, "gpt-4o-2024-08-06");
    assert_int_equal(m->rpm, 100);
    assert_int_equal(m->tpm, 50000);
    assert_int_equal(m->weight, 5);
    assert_int_equal(m->max_concurrent, 3);
    assert_int_equal(m->tags.cnt, 2);
    assert_string_equal(m->tags.items[0], "general");
    assert_string_equal(m->tags.items[1], "code");
    assert_int_equal(m->kind, AR_MODEL_KIND_FAST);
    assert_int_equal(m->context_size, 128000);
    assert_int_equal(m->max_output_tokens, 16384);
    assert_true(m->json_response);
    assert_true(m->available);
    assert_true(fabs(m->input_cost_per_token - 0.0000025) < 1e-15);
    assert_true(fabs(m->output_cost_per_token - 0.00001) < 1e-15);
    assert_int_equal(m->line, 122);

    /* every key of the example is read (litellm_db's pool sizes too; redis_url "" is not
     * set; json_response is read by the request filter): no warning */
    assert_int_equal(cfg->warnings.cnt, 0);

    ar_config_unref(cfg);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    ar_config_t *cfg = load_ok(BASE "credentials:\n"
                                    "  - name: a\n"
                                    "    type: openai\n"
                                    "models:\n"
                                    "  - name: m\n"
                                    "    credential: a\n");
    const ar_server_conf_t *s = &cfg->server;
    assert_string_equal(s->host, "0.0.0.0");
    assert_int_equal(s->port, 8080);
    assert_int_equal(s->workers, 0);
    assert_int_equal(s->max_body_size_mb, 100);
    assert_int_equal(s->response_body_multiplier, 10);
    assert_int_equal(s->request_timeout_ms, 60000);
    assert_int_equal(s->write_timeout_ms, 60000);
    assert_int_equal(s->idle_timeout_ms, 120000);
    assert_int_equal(s->idle_conn_timeout_ms, 120000);
    assert_int_equal(s->max_idle_conns, 200);
    assert_int_equal(s->shutdown_timeout_ms, 10000);
    assert_int_equal(s->logging_level, AR_LOG_INFO);
    assert_int_equal(s->log_format, AR_LOG_TEXT);
    assert_string_equal(s->master_key, "k");
    assert_int_equal(s->default_models_rpm, AR_UNLIMITED);
    assert_null(s->model_prices_link);
    assert_true(s->replace_v1_models);
    assert_true(s->router_metadata);
    assert_int_equal(s->cors_origins.cnt, 0);
    assert_null(s->cors_origins.items);

    static const int codes[] = {401, 403, 429, 500, 502, 503, 504};
    assert_int_equal(cfg->fail2ban.max_attempts, 3);
    assert_int_equal(cfg->fail2ban.ban_duration_ms, AR_PERMANENT);
    assert_int_equal(cfg->fail2ban.error_codes_cnt, 7);
    assert_memory_equal(cfg->fail2ban.error_codes, codes, sizeof(codes));
    assert_int_equal(cfg->fail2ban.rules_cnt, 0);
    assert_null(cfg->fail2ban.rules);

    assert_int_equal(cfg->circuit_breaker.failure_threshold, 3);
    assert_int_equal(cfg->circuit_breaker.cooldown_period_ms, 60000);
    assert_int_equal(cfg->circuit_breaker.success_threshold, 2);
    assert_int_equal(cfg->circuit_breaker.stats_window_ms, 300000);

    assert_int_equal(cfg->routing.strategy, AR_STRATEGY_ROUND_ROBIN);
    assert_int_equal(cfg->routing.max_retries, 3);
    assert_int_equal(cfg->routing.rate_limit_retries, 2);
    assert_int_equal(cfg->routing.retry_delay_ms, 1000);
    assert_false(cfg->routing.fallback_enabled);
    assert_null(cfg->routing.fallback_credential);
    assert_null(cfg->routing.fallback_model);

    const ar_ratelimit_conf_t *rl = &cfg->rate_limiting;
    assert_false(rl->enabled);
    assert_false(rl->global.enabled);
    assert_int_equal(rl->global.requests_per_minute, 1000);
    assert_int_equal(rl->global.burst_size, 1000);
    assert_false(rl->per_client.enabled);
    assert_int_equal(rl->per_client.requests_per_minute, 60);
    assert_int_equal(rl->per_client.burst_size, 60);
    assert_false(rl->per_model.enabled);
    assert_int_equal(rl->per_model.requests_per_minute, 300);
    assert_int_equal(rl->per_model.burst_size, 300);

    assert_true(cfg->monitoring.prometheus_enabled);
    assert_false(cfg->monitoring.log_errors);
    assert_string_equal(cfg->monitoring.errors_log_path, "./errors.log");

    assert_string_equal(cfg->storage.database_url, "sqlite://./airouter.db");
    assert_int_equal(cfg->storage.key_cache_ttl_ms, 5000);
    assert_null(cfg->storage.redis_url);
    assert_null(cfg->storage.secret_key);

    const ar_litellm_conf_t *l = &cfg->litellm_db;
    assert_false(l->enabled);
    assert_false(l->is_required);
    assert_null(l->database_url);
    assert_int_equal(l->max_conns, 25);
    assert_int_equal(l->min_conns, 5);
    assert_int_equal(l->health_check_interval_ms, 10000);
    assert_int_equal(l->connect_timeout_ms, 5000);
    assert_int_equal(l->auth_cache_ttl_ms, 20000);
    assert_int_equal(l->auth_cache_size, 10000);
    assert_int_equal(l->log_queue_size, 5000);
    assert_int_equal(l->log_batch_size, 100);
    assert_int_equal(l->log_flush_interval_ms, 5000);
    assert_int_equal(l->log_retry_attempts, 3);
    assert_int_equal(l->log_retry_delay_ms, 1000);

    assert_int_equal(cfg->credentials_cnt, 1);
    const ar_cred_conf_t *c = &cfg->credentials[0];
    assert_string_equal(c->name, "a");
    assert_int_equal(c->type, AR_CRED_OPENAI);
    assert_string_equal(c->type_name, "openai");
    assert_null(c->api_key);
    assert_string_equal(c->base_url, "https://api.openai.com");
    assert_int_equal(c->rpm, AR_UNLIMITED);
    assert_int_equal(c->tpm, AR_UNLIMITED);
    assert_int_equal(c->weight, 1);
    assert_false(c->is_fallback);
    assert_null(c->headers);
    assert_int_equal(c->headers_cnt, 0);
    assert_null(c->api_version);
    assert_int_equal(c->line, 4);

    assert_int_equal(cfg->models_cnt, 1);
    const ar_model_conf_t *m = &cfg->models[0];
    assert_string_equal(m->name, "m");
    assert_string_equal(m->model, "m");
    assert_int_equal(m->credential_idx, 0);
    assert_int_equal(m->rpm, AR_UNLIMITED);
    assert_int_equal(m->tpm, AR_UNLIMITED);
    assert_int_equal(m->weight, 1);
    assert_int_equal(m->max_concurrent, AR_UNLIMITED);
    assert_int_equal(m->tags.cnt, 0);
    assert_int_equal(m->kind, AR_MODEL_KIND_ANY);
    assert_int_equal(m->context_size, 0);
    assert_int_equal(m->max_output_tokens, 0);
    assert_false(m->json_response);
    assert_true(m->available);
    assert_true(m->input_cost_per_token < 0);
    assert_true(m->output_cost_per_token < 0);
    assert_int_equal(m->line, 7);
    ar_config_unref(cfg);
}

/* Sections may come in any order: models read before server still get its default rpm. */
static void test_default_models_rpm_any_order(void **state)
{
    (void)state;
    ar_config_t *cfg = load_ok("models:\n"
                               "  - name: m\n"
                               "    credential: b\n"
                               "  - name: m\n"
                               "    credential: a\n"
                               "    rpm: 7\n"
                               "credentials:\n"
                               "  - {name: a, type: mock}\n"
                               "  - {name: b, type: mock, mock_latency: 20ms, "
                               "mock_stream_chunks: 4}\n"
                               "server:\n"
                               "  master_key: k\n"
                               "  default_models_rpm: 50\n");
    assert_int_equal(cfg->models_cnt, 2);
    assert_int_equal(cfg->models[0].rpm, 50);
    assert_int_equal(cfg->models[0].credential_idx, 1);
    assert_int_equal(cfg->models[1].rpm, 7);
    assert_int_equal(cfg->models[1].credential_idx, 0);
    assert_int_equal(cfg->credentials[1].mock_latency_ms, 20);
    assert_int_equal(cfg->credentials[1].mock_stream_chunks, 4);
    ar_config_unref(cfg);
}

static void test_values(void **state)
{
    (void)state;
    setenv("AR_T_JSON", "{\"type\": \"service_account\"}", 1);
    ar_config_t *cfg = load_ok("server:\n"
                               "  master_key: k\n"
                               "  host: 127.0.0.1\n"
                               "  port: 9090\n"
                               "  workers: 4\n"
                               "  request_timeout: -1\n"
                               "  idle_timeout: 1h30m\n"
                               "  write_timeout: 45\n"
                               "  logging_level: WARN\n"
                               "  log_format: json\n"
                               "  model_prices_link: ./prices.json\n"
                               "  replace_v1_models: no\n"
                               "  cors_origins: ['*', https://app.example.com]\n"
                               "fail2ban:\n"
                               "  ban_duration: 10m\n"
                               "  max_attempts: -1\n"
                               "  error_codes: []\n"
                               "  error_code_rules:\n"
                               "    - code: 500\n"
                               "    - code: 401\n"
                               "      ban_duration: permanent\n"
                               "routing:\n"
                               "  strategy: smart\n"
                               "  retry_delay: 250ms\n"
                               "  fallback: {enabled: true, credential: az, model: gpt-4o-mini}\n"
                               "rate_limiting:\n"
                               "  enabled: true\n"
                               "  per_client: {enabled: false, requests_per_minute: -1}\n"
                               "storage:\n"
                               "  database_url: postgresql://u@h/db\n"
                               "  redis_url: redis://127.0.0.1:6379/0\n"
                               "  redis_instances: 3\n"
                               "credentials:\n"
                               "  - name: az\n"
                               "    type: azure\n"
                               "    api_key: x\n"
                               "    base_url: https://r.openai.azure.com//\n"
                               "    api_version: v1\n"
                               "    headers: {X-Team: ml, X-Env: prod}\n"
                               "  - name: v\n"
                               "    type: vertex-ai\n"
                               "    project_id: p\n"
                               "    location: us-central1\n"
                               "    credentials_json: os.environ/AR_T_JSON\n"
                               "    base_url: http://127.0.0.1:9999/\n"
                               "  - name: ol\n"
                               "    type: openai\n"
                               "    base_url: http://localhost:11434\n"
                               "    api_key: ''\n");
    const ar_server_conf_t *s = &cfg->server;
    assert_string_equal(s->host, "127.0.0.1");
    assert_int_equal(s->port, 9090);
    assert_int_equal(s->workers, 4);
    assert_int_equal(s->request_timeout_ms, AR_UNLIMITED);
    assert_int_equal(s->idle_timeout_ms, 5400000);
    assert_int_equal(s->write_timeout_ms, 45000);
    assert_int_equal(s->logging_level, AR_LOG_WARN);
    assert_int_equal(s->log_format, AR_LOG_JSON);
    assert_string_equal(s->model_prices_link, "./prices.json");
    assert_false(s->replace_v1_models);
    assert_int_equal(s->cors_origins.cnt, 2);
    assert_string_equal(s->cors_origins.items[0], "*");
    assert_string_equal(s->cors_origins.items[1], "https://app.example.com");

    const ar_fail2ban_conf_t *fb = &cfg->fail2ban;
    assert_int_equal(fb->ban_duration_ms, 600000);
    assert_int_equal(fb->max_attempts, AR_UNLIMITED);
    assert_int_equal(fb->error_codes_cnt, 0);
    assert_int_equal(fb->rules_cnt, 2);
    /* Rules inherit what they leave out from fail2ban itself. */
    assert_int_equal(fb->rules[0].code, 500);
    assert_int_equal(fb->rules[0].max_attempts, AR_UNLIMITED);
    assert_int_equal(fb->rules[0].ban_duration_ms, 600000);
    assert_int_equal(fb->rules[1].code, 401);
    assert_int_equal(fb->rules[1].ban_duration_ms, AR_PERMANENT);

    assert_int_equal(cfg->routing.strategy, AR_STRATEGY_SMART);
    assert_int_equal(cfg->routing.retry_delay_ms, 250);
    assert_true(cfg->routing.fallback_enabled);
    assert_string_equal(cfg->routing.fallback_credential, "az");
    assert_string_equal(cfg->routing.fallback_model, "gpt-4o-mini");

    assert_true(cfg->rate_limiting.enabled);
    assert_false(cfg->rate_limiting.global.enabled);
    assert_false(cfg->rate_limiting.per_client.enabled);
    assert_int_equal(cfg->rate_limiting.per_client.requests_per_minute, AR_UNLIMITED);
    assert_int_equal(cfg->rate_limiting.per_client.burst_size, AR_UNLIMITED);

    assert_string_equal(cfg->storage.database_url, "postgresql://u@h/db");
    assert_string_equal(cfg->storage.redis_url, "redis://127.0.0.1:6379/0");
    assert_int_equal(cfg->storage.redis_instances, 3);

    const ar_cred_conf_t *c = cfg->credentials;
    assert_string_equal(c[0].base_url, "https://r.openai.azure.com");
    assert_string_equal(c[0].api_version, "v1");
    assert_int_equal(c[0].headers_cnt, 2);
    assert_string_equal(c[0].headers[0].key, "X-Team");
    assert_string_equal(c[0].headers[0].value, "ml");
    assert_string_equal(c[0].headers[1].key, "X-Env");
    assert_string_equal(c[0].headers[1].value, "prod");
    assert_string_equal(c[1].credentials_json, "{\"type\": \"service_account\"}");
    assert_string_equal(c[1].base_url, "http://127.0.0.1:9999");
    assert_string_equal(c[2].base_url, "http://localhost:11434");
    assert_null(c[2].api_key); /* vLLM / Ollama: no key */

    assert_ptr_equal(ar_config_find_cred(cfg, "v"), &c[1]);
    assert_null(ar_config_find_cred(cfg, "nope"));
    assert_int_equal(ar_config_cred_index(cfg, "ol"), 2);
    assert_int_equal(ar_config_cred_index(cfg, "nope"), -1);
    ar_config_unref(cfg);
    unsetenv("AR_T_JSON");
}

/* `key:` and `key: null` mean the key is absent. */
static void test_null_is_absent(void **state)
{
    (void)state;
    ar_config_t *cfg = load_ok(BASE "  port:\n"
                                    "  host: ~\n"
                                    "rate_limiting:\n"
                                    "  global: null\n"
                                    "models:\n");
    assert_int_equal(cfg->server.port, 8080);
    assert_string_equal(cfg->server.host, "0.0.0.0");
    assert_false(cfg->rate_limiting.global.enabled);
    assert_int_equal(cfg->models_cnt, 0);
    ar_config_unref(cfg);
}

/* ---- environment ---- */

static void test_env_interpolation(void **state)
{
    (void)state;
    setenv("AR_T_A", "alpha", 1);
    setenv("AR_T_B", "beta", 1);
    setenv("AR_T_PORT", "9191", 1);
    setenv("AR_T_KEY", "sk-from-env", 1);
    ar_config_t *cfg = load_ok("server:\n"
                               "  master_key: os.environ/AR_T_KEY\n"
                               "  host: ${AR_T_A}-${AR_T_B}\n"
                               "  port: ${AR_T_PORT}\n"
                               "  model_prices_link: \"x${AR_T_A}y${AR_T_A}z$HOME\"\n");
    assert_string_equal(cfg->server.master_key, "sk-from-env");
    assert_string_equal(cfg->server.host, "alpha-beta");
    assert_int_equal(cfg->server.port, 9191);
    assert_string_equal(cfg->server.model_prices_link, "xalphayalphaz$HOME");
    ar_config_unref(cfg);

    /* A substituted value is type-checked like a literal. */
    setenv("AR_T_PORT", "abc", 1);
    expect_error(BASE "  port: ${AR_T_PORT}\n",
                 "t.yaml:3: server.port: expected an integer, got 'abc'");
    unsetenv("AR_T_A");
    unsetenv("AR_T_B");
    unsetenv("AR_T_PORT");
    unsetenv("AR_T_KEY");
}

static void test_env_missing(void **state)
{
    (void)state;
    unsetenv("AR_T_NOPE");
    unsetenv("AR_T_NOPE2");
    expect_error("server:\n"
                 "  master_key: os.environ/AR_T_NOPE\n",
                 "t.yaml:2: environment variable AR_T_NOPE is not set");
    expect_errors(BASE "  host: \"${AR_T_NOPE}:${AR_T_NOPE2}\"\n"
                       "credentials:\n"
                       "  - name: a\n"
                       "    type: openai\n"
                       "    api_key: ${AR_T_NOPE}\n",
                  (const char *const[]){
                      "t.yaml:3: environment variable AR_T_NOPE is not set",
                      "t.yaml:3: environment variable AR_T_NOPE2 is not set",
                      "t.yaml:7: environment variable AR_T_NOPE is not set",
                      NULL,
                  });
    expect_error(BASE "  host: ${AR_T_NOPE\n", "t.yaml:3: server.host: unterminated '${' in value");
    expect_error(BASE "  host: ${}\n", "t.yaml:3: server.host: invalid environment variable "
                                       "name ''");
}

/* Found by fuzzing (tests/fuzz/fuzz_config.c): a value read from the environment was
 * printed in full when it did not fit its key, so an API key put into the wrong field (or
 * a typo in a variable name) reached stderr and the reload log. Messages show the
 * reference instead; short values (ports, flags) are shown as they are. */
static void test_env_values_kept_out_of_messages(void **state)
{
    (void)state;
    setenv("AR_T_SECRET", "sk-live-0123456789abcdef", 1);
    setenv("AR_T_LONG", "sk-long-0123456789abcdef0123456789abcdef0123456789abcdef-end", 1);
    setenv("AR_T_PORT", "abc", 1);
    expect_errors(BASE "  port: ${AR_T_PORT}\n"
                       "routing:\n"
                       "  strategy: os.environ/AR_T_SECRET\n"
                       "  retry_delay: x${AR_T_SECRET}y\n"
                       "  max_retries: ${AR_T_LONG}\n",
                  (const char *const[]){
                      "t.yaml:3: server.port: expected an integer, got 'abc'",
                      "t.yaml:5: routing.strategy: expected one of round_robin, weighted, "
                      "least_busy, lowest_latency, smart, got '${AR_T_SECRET}'",
                      "t.yaml:6: routing.retry_delay: expected a duration (e.g. 500ms, 30s, "
                      "5m, 1h), got 'x${AR_T_SECRET}y'",
                      "t.yaml:7: routing.max_retries: expected an integer, got '${AR_T_LONG}...'",
                      NULL,
                  });
    unsetenv("AR_T_SECRET");
    unsetenv("AR_T_LONG");
    unsetenv("AR_T_PORT");
}

/* ---- errors ---- */

static void test_unknown_key(void **state)
{
    (void)state;
    expect_error(BASE "  prot: 80\n", "t.yaml:3: unknown key 'prot' in server; did you mean "
                                      "'port'?");
    expect_errors("sever:\n  master_key: k\n",
                  (const char *const[]){
                      "t.yaml:1: unknown key 'sever' at top level; did you mean 'server'?",
                      "t.yaml:1: server.master_key is required",
                      NULL,
                  });
    expect_error(BASE "  completely_wrong: 1\n",
                 "t.yaml:3: unknown key 'completely_wrong' in server");
    expect_error(BASE "credentials:\n"
                      "  - name: a\n"
                      "    type: openai\n"
                      "    api_kye: x\n",
                 "t.yaml:6: unknown key 'api_kye' in credentials[0]; did you mean 'api_key'?");
    expect_error(BASE "rate_limiting:\n"
                      "  per_client: {requests_per_minute: 5, brust_size: 3}\n",
                 "t.yaml:4: unknown key 'brust_size' in rate_limiting.per_client; did you mean "
                 "'burst_size'?");
    expect_error(BASE "  port: 1\n  port: 2\n",
                 "t.yaml:4: server.port: duplicate key (first at line 3)");
}

static void test_wrong_type(void **state)
{
    (void)state;
    expect_error(BASE "  port: abc\n", "t.yaml:3: server.port: expected an integer, got 'abc'");
    expect_error(BASE "  port: 80.5\n", "t.yaml:3: server.port: expected an integer, got '80.5'");
    expect_error(BASE "  router_metadata: maybe\n",
                 "t.yaml:3: server.router_metadata: expected a boolean (true or false), got "
                 "'maybe'");
    expect_error(BASE "  host: [a, b]\n", "t.yaml:3: server.host: expected a string, got a list");
    expect_error(BASE "  cors_origins: '*'\n",
                 "t.yaml:3: server.cors_origins: expected a list of strings, got a scalar");
    expect_error(BASE "fail2ban:\n  error_codes: [401, x]\n",
                 "t.yaml:4: fail2ban.error_codes[1]: expected an integer, got 'x'");
    expect_error(BASE "monitoring: yes\n",
                 "t.yaml:3: monitoring: expected a mapping, got a scalar");
    expect_error(BASE "credentials:\n  name: a\n",
                 "t.yaml:4: credentials: expected a list, got a mapping");
    expect_error(BASE "credentials:\n  - a\n",
                 "t.yaml:4: credentials[0]: expected a mapping, got a scalar");
    expect_error(BASE "models:\n"
                      "  - {name: m, credential: a, input_cost_per_token: cheap}\n"
                      "credentials: [{name: a, type: mock}]\n",
                 "t.yaml:4: models[0].input_cost_per_token: expected a number, got 'cheap'");
}

static void test_bad_duration(void **state)
{
    (void)state;
    expect_error(BASE "  request_timeout: 10 minutes\n",
                 "t.yaml:3: server.request_timeout: expected a duration (e.g. 500ms, 30s, 5m, "
                 "1h), got '10 minutes'");
    expect_error(BASE "  idle_timeout: -5s\n",
                 "t.yaml:3: server.idle_timeout: expected a duration (e.g. 500ms, 30s, 5m, 1h), "
                 "got '-5s'");
    expect_error(BASE "routing:\n  retry_delay: -1\n",
                 "t.yaml:4: routing.retry_delay: -1 (no limit) is not allowed here");
    expect_error(BASE "circuit_breaker:\n  stats_window: 0s\n",
                 "t.yaml:4: circuit_breaker.stats_window: must be greater than 0, got '0s'");
    expect_error(BASE "  write_timeout: permanent\n",
                 "t.yaml:3: server.write_timeout: expected a duration (e.g. 500ms, 30s, 5m, 1h), "
                 "got 'permanent'");
    expect_error(BASE "fail2ban:\n  ban_duration: forever\n",
                 "t.yaml:4: fail2ban.ban_duration: expected a duration (e.g. 500ms, 30s, 5m, 1h) "
                 "or 'permanent', got 'forever'");

    ar_config_t *cfg = load_ok(BASE "fail2ban:\n  ban_duration: -1\n");
    assert_int_equal(cfg->fail2ban.ban_duration_ms, AR_PERMANENT);
    ar_config_unref(cfg);
}

static void test_bad_enum(void **state)
{
    (void)state;
    expect_error(BASE "routing:\n  strategy: fastest\n",
                 "t.yaml:4: routing.strategy: expected one of round_robin, weighted, least_busy, "
                 "lowest_latency, smart, got 'fastest'");
    expect_error(BASE "  logging_level: verbose\n",
                 "t.yaml:3: server.logging_level: expected one of debug, info, warn, error, got "
                 "'verbose'");
    expect_error(BASE "  log_format: xml\n",
                 "t.yaml:3: server.log_format: expected one of text, json, got 'xml'");
    expect_error(BASE "credentials:\n  - name: a\n    type: bedrock\n",
                 "t.yaml:5: credentials[0].type: expected one of openai, azure, anthropic, "
                 "gemini, vertex-ai, proxy, mock, got 'bedrock'");
    expect_error(BASE "credentials: [{name: a, type: mock}]\n"
                      "models: [{name: m, credential: a, type: slow}]\n",
                 "t.yaml:4: models[0].type: expected one of fast, reasoning, got 'slow'");
}

static void test_ranges(void **state)
{
    (void)state;
    expect_error(BASE "  port: 70000\n",
                 "t.yaml:3: server.port: must be between 1 and 65535, got 70000");
    expect_error(BASE "  port: 0\n", "t.yaml:3: server.port: must be between 1 and 65535, got 0");
    expect_error(BASE "  workers: -1\n",
                 "t.yaml:3: server.workers: must be between 0 and 1024, got -1");
    expect_error(BASE "  max_body_size_mb: 0\n",
                 "t.yaml:3: server.max_body_size_mb: must be between 1 and 1048576, got 0");
    expect_error(BASE "  response_body_multiplier: -1\n",
                 "t.yaml:3: server.response_body_multiplier: must be between 1 and 1000, got -1");
    expect_error(BASE "  default_models_rpm: -2\n",
                 "t.yaml:3: server.default_models_rpm: must be >= 0 (or -1 for no limit), got -2");
    expect_error(BASE "fail2ban:\n  max_attempts: 0\n",
                 "t.yaml:4: fail2ban.max_attempts: must be >= 1 (or -1 for no limit), got 0");
    expect_error(BASE "fail2ban:\n  error_code_rules: [{code: 99}]\n",
                 "t.yaml:4: fail2ban.error_code_rules[0].code: must be between 100 and 599, got "
                 "99");
    expect_error(BASE "credentials: [{name: a, type: mock, weight: -1}]\n",
                 "t.yaml:3: credentials[0].weight: must be >= 0, got -1");
    expect_error(BASE "credentials: [{name: a, type: mock}]\n"
                      "models: [{name: m, credential: a, output_cost_per_token: -0.5}]\n",
                 "t.yaml:4: models[0].output_cost_per_token: must be >= 0, got -0.5");
    expect_error(BASE "credentials: [{name: a, type: mock}]\n"
                      "models: [{name: m, credential: a, max_concurrent: 0}]\n",
                 "t.yaml:4: models[0].max_concurrent: must be >= 1 (or -1 for no limit), got 0");
    expect_error(BASE "litellm_db:\n  max_conns: 2\n  min_conns: 3\n",
                 "t.yaml:5: litellm_db.min_conns: must not exceed max_conns (2)");
    expect_error(BASE "litellm_db:\n  min_conns: 26\n",
                 "t.yaml:4: litellm_db.min_conns: must not exceed max_conns (25)");
}

/* litellm_db's pool sizes are read (no "not used yet" warning); a max_conns below the
 * default min_conns (5) takes min_conns down with it, one set explicitly is kept. */
static void test_litellm_pool_sizes(void **state)
{
    (void)state;
    ar_config_t *cfg = load_ok(BASE "litellm_db:\n  max_conns: 2\n");
    assert_int_equal(cfg->litellm_db.max_conns, 2);
    assert_int_equal(cfg->litellm_db.min_conns, 2);
    assert_int_equal(cfg->warnings.cnt, 0);
    ar_config_unref(cfg);
    cfg = load_ok(BASE "litellm_db:\n  max_conns: 3\n  min_conns: 0\n");
    assert_int_equal(cfg->litellm_db.max_conns, 3);
    assert_int_equal(cfg->litellm_db.min_conns, 0);
    assert_int_equal(cfg->warnings.cnt, 0);
    ar_config_unref(cfg);
    cfg = load_ok(BASE "litellm_db:\n  enabled: false\n");
    assert_int_equal(cfg->litellm_db.max_conns, 25);
    assert_int_equal(cfg->litellm_db.min_conns, 5);
    ar_config_unref(cfg);
    expect_error(BASE "litellm_db:\n  max_conns: 0\n",
                 "t.yaml:4: litellm_db.max_conns: must be between 1 and 10000, got 0");
}

static void test_missing_master_key(void **state)
{
    (void)state;
    expect_error("\n"
                 "server:\n"
                 "  port: 8080\n",
                 "t.yaml:2: server.master_key is required");
    expect_error("routing:\n  strategy: weighted\n", "t.yaml:1: server.master_key is required");
    expect_error("server:\n  master_key: \"\"\n", "t.yaml:2: server.master_key: must not be empty");
}

static void test_duplicate_credential(void **state)
{
    (void)state;
    expect_error(BASE "credentials:\n"
                      "  - name: a\n"
                      "    type: mock\n"
                      "  - type: mock\n"
                      "    name: a\n",
                 "t.yaml:7: credentials[1].name: duplicate credential 'a' (first defined at "
                 "line 4)");
}

static void test_model_credential(void **state)
{
    (void)state;
    expect_error(BASE "credentials:\n"
                      "  - {name: a, type: mock}\n"
                      "models:\n"
                      "  - {name: m, credential: a}\n"
                      "  - name: m\n"
                      "    credential: x\n",
                 "t.yaml:8: models[1].credential: no credential named 'x'");
    expect_errors(BASE "credentials:\n"
                       "  - {name: a, type: mock}\n"
                       "models:\n"
                       "  - {name: m}\n",
                  (const char *const[]){"t.yaml:6: models[0].credential is required", NULL});
    /* The same name on two credentials, or on two upstream models of one credential, is
     * balancing; the same deployment (credential + upstream model) twice is a mistake. */
    expect_error(BASE "credentials:\n"
                      "  - {name: a, type: mock}\n"
                      "  - {name: b, type: mock}\n"
                      "models:\n"
                      "  - {name: m, credential: a}\n"
                      "  - {name: m, credential: b}\n"
                      "  - {name: m, credential: a, model: other}\n"
                      "  - {name: m, credential: a, model: m}\n",
                 "t.yaml:10: models[3]: model 'm' (upstream 'm') on credential 'a' is already "
                 "defined at line 7");
}

static void test_credential_types(void **state)
{
    (void)state;
    expect_error(BASE "credentials:\n"
                      "  - name: a\n"
                      "    type: openai\n"
                      "    project_id: p\n",
                 "t.yaml:6: credentials[0].project_id: not valid for type openai (only for "
                 "vertex-ai)");
    expect_error(BASE "credentials:\n"
                      "  - name: a\n"
                      "    mock_latency: 1s\n"
                      "    type: anthropic\n"
                      "    api_key: k\n",
                 "t.yaml:5: credentials[0].mock_latency: not valid for type anthropic (only for "
                 "mock)");
    expect_error(BASE "credentials:\n  - {name: a, type: mock, base_url: http://x}\n",
                 "t.yaml:4: credentials[0].base_url: not valid for type mock (only for openai, "
                 "azure, anthropic, gemini, vertex-ai, proxy)");
    expect_errors(BASE "credentials:\n"
                       "  - name: c\n"
                       "    type: anthropic\n"
                       "  - name: az\n"
                       "    type: azure\n"
                       "  - name: p\n"
                       "    type: proxy\n"
                       "    base_url: ftp://x\n"
                       "  - name: g\n"
                       "    type: gemini\n"
                       "    api_key: ''\n",
                  (const char *const[]){
                      "t.yaml:4: credentials[0].api_key is required for type anthropic",
                      "t.yaml:6: credentials[1].api_key is required for type azure",
                      "t.yaml:6: credentials[1].base_url is required for type azure",
                      "t.yaml:10: credentials[2].base_url: must start with http:// or "
                      "https://, got 'ftp://x'",
                      "t.yaml:11: credentials[3].api_key is required for type gemini",
                      NULL,
                  });
    expect_errors(BASE "credentials:\n  - api_key: x\n",
                  (const char *const[]){
                      "t.yaml:4: credentials[0].name is required",
                      NULL,
                  });
    expect_error(BASE "credentials:\n  - {name: a, type: openai, base_url: 'https:///'}\n",
                 "t.yaml:4: credentials[0].base_url: 'https://' has no host");
    expect_error(BASE "credentials:\n  - name: a\n    type: mock\n    headers: {'Bad Name': x}\n",
                 "t.yaml:6: credentials[0].headers: 'Bad Name' is not a valid header name");
    /* api_version goes into the upstream URL: dated (GA or -preview) or v1, nothing else */
    static const char *const bad_versions[] = {"latest", "2024-10-21 ",     "2024-1-21",
                                               "v2",     "2025-04-01-beta", "2024-10-21&x=1"};
    for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
        char yaml[512], want[256];
        snprintf(yaml, sizeof(yaml),
                 BASE "credentials:\n  - name: az\n    type: azure\n    api_key: k\n"
                      "    base_url: https://r.openai.azure.com\n    api_version: '%s'\n",
                 bad_versions[i]);
        snprintf(want, sizeof(want),
                 "t.yaml:8: credentials[0].api_version: '%s' is not an Azure api-version "
                 "(YYYY-MM-DD, YYYY-MM-DD-preview or v1)",
                 bad_versions[i]);
        expect_error(yaml, want);
    }
    static const char *const good_versions[] = {"2024-10-21", "2025-04-01-preview", "v1"};
    for (size_t i = 0; i < sizeof(good_versions) / sizeof(good_versions[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 BASE "credentials:\n  - name: az\n    type: azure\n    api_key: k\n"
                      "    base_url: https://r.openai.azure.com\n    api_version: %s\n",
                 good_versions[i]);
        ar_config_t *cfg = load_ok(yaml);
        assert_string_equal(cfg->credentials[0].api_version, good_versions[i]);
        ar_config_unref(cfg);
    }
}

static void test_vertex(void **state)
{
    (void)state;
    expect_error(BASE "credentials:\n"
                      "  - name: v\n"
                      "    type: vertex-ai\n"
                      "    project_id: p\n"
                      "    location: global\n"
                      "    credentials_file: /nonexistent/sa.json\n",
                 "t.yaml:8: credentials[0].credentials_file: cannot read '/nonexistent/sa.json': "
                 "No such file or directory");
    expect_errors(BASE "credentials:\n"
                       "  - name: v\n"
                       "    type: vertex-ai\n",
                  (const char *const[]){
                      "t.yaml:4: credentials[0].project_id is required for type vertex-ai",
                      "t.yaml:4: credentials[0].location is required for type vertex-ai",
                      "t.yaml:4: credentials[0]: type vertex-ai needs one of credentials_file, "
                      "credentials_json or api_key",
                      NULL,
                  });
    expect_error(BASE "credentials:\n"
                      "  - name: v\n"
                      "    type: vertex-ai\n"
                      "    project_id: p\n"
                      "    location: global\n"
                      "    api_key: k\n"
                      "    credentials_json: '{}'\n",
                 "t.yaml:4: credentials[0]: type vertex-ai takes only one of credentials_file, "
                 "credentials_json and api_key");
    expect_error(BASE "credentials:\n"
                      "  - name: v\n"
                      "    type: vertex-ai\n"
                      "    project_id: p\n"
                      "    location: global\n"
                      "    credentials_json: '[1]'\n",
                 "t.yaml:8: credentials[0].credentials_json: expected a JSON object");
}

static void test_fallback(void **state)
{
    (void)state;
    expect_errors(BASE "routing:\n"
                       "  fallback:\n"
                       "    enabled: true\n"
                       "    credential: ghost\n",
                  (const char *const[]){
                      "t.yaml:4: routing.fallback.model is required when enabled",
                      "t.yaml:6: routing.fallback.credential: no credential named 'ghost'",
                      NULL,
                  });
    expect_errors(BASE "routing:\n  fallback: {enabled: true}\n",
                  (const char *const[]){
                      "t.yaml:4: routing.fallback.credential is required when enabled",
                      "t.yaml:4: routing.fallback.model is required when enabled",
                      NULL,
                  });
}

static void test_litellm_enabled(void **state)
{
    (void)state;
    expect_error(BASE "litellm_db:\n  enabled: true\n",
                 "t.yaml:3: litellm_db.database_url is required when enabled");
    expect_error(BASE "litellm_db:\n  database_url: mysql://x\n",
                 "t.yaml:4: litellm_db.database_url: must start with postgresql:// or "
                 "postgres://, got 'mysql://x'");
}

static void test_yaml_syntax_error(void **state)
{
    (void)state;
    expect_error("server:\n"
                 "  master_key: k\n"
                 "  port: [8080\n"
                 "  host: x\n",
                 "t.yaml:4: YAML syntax error: did not find expected ',' or ']'");
    expect_error("server:\n  master_key: k\n   bad: indent\n",
                 "t.yaml:3: YAML syntax error: mapping values are not allowed in this context");
    expect_error(BASE "---\nserver: {}\n", "t.yaml:3: only one YAML document is allowed");
}

static void test_empty_and_non_mapping(void **state)
{
    (void)state;
    expect_error("", "t.yaml:1: the configuration is empty");
    expect_error("# nothing here\n\n", "t.yaml:1: the configuration is empty");
    expect_error("\n\n- a\n- b\n", "t.yaml:1: the top level must be a mapping, got a list");
}

/* All problems, not just the first, sorted by line whatever the order they were found in. */
static void test_many_errors_in_file_order(void **state)
{
    (void)state;
    unsetenv("AR_T_NOPE");
    expect_errors("models:\n"                   /* 1 */
                  "  - name: m\n"               /* 2 */
                  "    credential: ghost\n"     /* 3 */
                  "server:\n"                   /* 4 */
                  "  prot: 1\n"                 /* 5 */
                  "  port: x\n"                 /* 6 */
                  "routing:\n"                  /* 7 */
                  "  strategy: best\n"          /* 8 */
                  "  retry_delay: soon\n"       /* 9 */
                  "credentials:\n"              /* 10 */
                  "  - name: a\n"               /* 11 */
                  "    type: openai\n"          /* 12 */
                  "    api_key: ${AR_T_NOPE}\n" /* 13 */
                  "  - name: a\n"               /* 14 */
                  "    type: openai\n",         /* 15 */
                  (const char *const[]){
                      "t.yaml:3: models[0].credential: no credential named 'ghost'",
                      "t.yaml:4: server.master_key is required",
                      "t.yaml:5: unknown key 'prot' in server; did you mean 'port'?",
                      "t.yaml:6: server.port: expected an integer, got 'x'",
                      "t.yaml:8: routing.strategy: expected one of round_robin, weighted, "
                      "least_busy, lowest_latency, smart, got 'best'",
                      "t.yaml:9: routing.retry_delay: expected a duration (e.g. 500ms, 30s, 5m, "
                      "1h), got 'soon'",
                      "t.yaml:13: environment variable AR_T_NOPE is not set",
                      "t.yaml:14: credentials[1].name: duplicate credential 'a' (first defined "
                      "at line 11)",
                      NULL,
                  });
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/ar_cfg_file_XXXXXX";
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "server:\n  master_key: k\n  port: 1234\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);

    ar_config_t *cfg = NULL;
    ar_strlist_t errs = {0};
    assert_int_equal(ar_config_load(path, &cfg, &errs), 0);
    assert_int_equal(errs.cnt, 0);
    assert_string_equal(cfg->path, path);
    assert_int_equal(cfg->server.port, 1234);
    ar_config_unref(cfg);
    cfg = NULL;

    /* Messages name the file. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("server:\n  port: 1\n", f);
    fclose(f);
    assert_int_equal(ar_config_load(path, &cfg, &errs), AR_EINVAL);
    assert_null(cfg);
    assert_int_equal(errs.cnt, 1);
    char want[128];
    snprintf(want, sizeof(want), "%s:1: server.master_key is required", path);
    assert_string_equal(errs.items[0], want);
    ar_strlist_dispose(&errs);
    unlink(path);

    assert_int_equal(ar_config_load(path, &cfg, &errs), AR_EIO);
    assert_null(cfg);
    assert_int_equal(errs.cnt, 1);
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
    assert_string_equal(errs.items[0], want);
    ar_strlist_dispose(&errs);

    assert_int_equal(ar_config_load("/tmp", &cfg, &errs), AR_EIO);
    assert_int_equal(errs.cnt, 1);
    assert_string_equal(errs.items[0], "/tmp: cannot read: Is a directory");
    ar_strlist_dispose(&errs);

    /* errors may be NULL. */
    assert_int_equal(ar_config_load(path, &cfg, NULL), AR_EIO);
    assert_int_equal(ar_config_load_string("x", "server: 1\n", 10, &cfg, NULL), AR_EINVAL);
    assert_null(cfg);
}

static void test_ref_unref(void **state)
{
    (void)state;
    ar_config_t *cfg = load_ok(BASE);
    assert_ptr_equal(ar_config_ref(cfg), cfg);
    assert_int_equal(cfg->refcnt, 2);
    ar_config_unref(cfg);
    assert_int_equal(cfg->refcnt, 1);
    assert_string_equal(cfg->server.master_key, "k"); /* still alive */
    ar_config_unref(cfg); /* frees: the leak checker would complain otherwise */
    ar_config_unref(NULL);
}

/* ---- keys that would do nothing ---- */

/* libcurl has no per-host idle limit: auto_ai_router's key is accepted, with a warning
 * saying why it does nothing, so that its config.yaml loads unchanged. */
static void test_ignored_key(void **state)
{
    (void)state;
    ar_config_t *cfg = load_ok(BASE "  max_idle_conns_per_host: 20\n");
    assert_int_equal(cfg->warnings.cnt, 1);
    assert_string_equal(cfg->warnings.items[0],
                        "t.yaml:3: server.max_idle_conns_per_host: ignored (libcurl keeps one "
                        "pool of idle upstream connections per worker with no per-host limit "
                        "(CURLMOPT_MAX_HOST_CONNECTIONS would cap concurrent requests to a host "
                        "and queue the rest, which is not the same); size the pool with "
                        "server.max_idle_conns)");
    ar_config_unref(cfg);
    /* null means absent, like every other key */
    cfg = load_ok(BASE "  max_idle_conns_per_host:\n");
    assert_int_equal(cfg->warnings.cnt, 0);
    ar_config_unref(cfg);
}

/* idle_conn_timeout is libcurl's CURLOPT_MAXAGE_CONN: whole seconds, or -1. */
static void test_idle_conn_timeout(void **state)
{
    (void)state;
    ar_config_t *cfg = load_ok(BASE "  idle_conn_timeout: 2m\n  max_idle_conns: 0\n");
    assert_int_equal(cfg->server.idle_conn_timeout_ms, 120000);
    assert_int_equal(cfg->server.max_idle_conns, 0);
    ar_config_unref(cfg);
    cfg = load_ok(BASE "  idle_conn_timeout: -1\n  max_idle_conns: -1\n");
    assert_int_equal(cfg->server.idle_conn_timeout_ms, AR_UNLIMITED);
    assert_int_equal(cfg->server.max_idle_conns, AR_UNLIMITED);
    ar_config_unref(cfg);
    expect_error(BASE "  idle_conn_timeout: 1500ms\n",
                 "t.yaml:3: server.idle_conn_timeout: must be a whole number of seconds (libcurl "
                 "measures connection idle time in seconds), got '1500ms'");
    expect_error(BASE "  idle_conn_timeout: 500ms\n",
                 "t.yaml:3: server.idle_conn_timeout: must be a whole number of seconds (libcurl "
                 "measures connection idle time in seconds), got '500ms'");
}

/* Keys set but read by nothing load with one warning each, in file order; "" and null count
 * as not set. */
static void test_not_used_warnings(void **state)
{
    (void)state;
    ar_config_t *cfg = load_ok(BASE "  model_prices_link: ./prices.json\n"
                                    "storage:\n"
                                    "  redis_url: redis://127.0.0.1:6379/0\n"
                                    "  secret_key: \"\"\n"
                                    "  key_cache_ttl:\n"
                                    "litellm_db:\n"
                                    "  max_conns: 10\n"
                                    "credentials:\n"
                                    "  - name: m\n"
                                    "    type: mock\n"
                                    "    api_key: sk-unused-0123\n"
                                    "    headers: {X-A: b}\n"
                                    "  - name: o\n"
                                    "    type: openai\n"
                                    "    api_key: sk-used-0123\n"
                                    "    headers: {X-A: b}\n"
                                    "models:\n"
                                    "  - name: a\n"
                                    "    credential: m\n"
                                    "    json_response: false\n");
    expect_warnings(cfg, (const char *const[]){
                             "t.yaml:13: credentials[0].api_key: not used by type mock",
                             "t.yaml:14: credentials[0].headers: not used by type mock", NULL});
    ar_config_unref(cfg);

    /* a config without such keys has none; one with errors reports only the errors */
    cfg = load_ok(BASE "credentials:\n  - name: m\n    type: mock\n");
    assert_int_equal(cfg->warnings.cnt, 0);
    ar_config_unref(cfg);
    expect_error(BASE "  model_prices_link: ./p.json\n  port: 0\n",
                 "t.yaml:4: server.port: must be between 1 and 65535, got 0");
}

/* The PostgreSQL pool and its deadlines: defaults, values, and FILE:LINE errors. */
static void test_storage_pool(void **state)
{
    (void)state;
    ar_config_t *cfg = load_ok(BASE "credentials:\n  - name: m\n    type: mock\n");
    const ar_storage_conf_t *st = &cfg->storage;
    assert_int_equal(st->min_conns, 1);
    assert_int_equal(st->max_conns, 4);
    assert_int_equal(st->connect_timeout_ms, 5000);
    assert_int_equal(st->query_timeout_ms, 10000);
    ar_config_unref(cfg);

    cfg = load_ok(BASE "storage:\n"
                       "  database_url: postgresql://u@db/airouter\n"
                       "  min_conns: 2\n"
                       "  max_conns: 8\n"
                       "  connect_timeout: 1500ms\n"
                       "  query_timeout: 30s\n"
                       "credentials:\n  - name: m\n    type: mock\n");
    st = &cfg->storage;
    assert_int_equal(st->min_conns, 2);
    assert_int_equal(st->max_conns, 8);
    assert_int_equal(st->connect_timeout_ms, 1500);
    assert_int_equal(st->query_timeout_ms, 30000);
    assert_int_equal(cfg->warnings.cnt, 0);
    ar_config_unref(cfg);

    expect_error(BASE "storage:\n  max_conns: 2\n  min_conns: 3\n",
                 "t.yaml:5: storage.min_conns: must not exceed max_conns (2)");
    expect_error(BASE "storage:\n  min_conns: 5\n",
                 "t.yaml:4: storage.min_conns: must not exceed max_conns (4)");
    expect_error(BASE "storage:\n  min_conns: 0\n",
                 "t.yaml:4: storage.min_conns: must be between 1 and 1000, got 0");
    expect_error(BASE "storage:\n  max_conns: 0\n",
                 "t.yaml:4: storage.max_conns: must be between 1 and 1000, got 0");
    expect_error(BASE "storage:\n  query_timeout: 0s\n",
                 "t.yaml:4: storage.query_timeout: must be greater than 0, got '0s'");
    expect_error(BASE "storage:\n  connect_timeout: soon\n",
                 "t.yaml:4: storage.connect_timeout: expected a duration (e.g. 500ms, 30s, 5m, "
                 "1h), got 'soon'");
}

static void test_cred_type_names(void **state)
{
    (void)state;
    assert_string_equal(ar_cred_type_name(AR_CRED_OPENAI), "openai");
    assert_string_equal(ar_cred_type_name(AR_CRED_AZURE), "azure");
    assert_string_equal(ar_cred_type_name(AR_CRED_ANTHROPIC), "anthropic");
    assert_string_equal(ar_cred_type_name(AR_CRED_GEMINI), "gemini");
    assert_string_equal(ar_cred_type_name(AR_CRED_VERTEX), "vertex-ai");
    assert_string_equal(ar_cred_type_name(AR_CRED_PROXY), "proxy");
    assert_string_equal(ar_cred_type_name(AR_CRED_MOCK), "mock");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_default_models_rpm_any_order),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_null_is_absent),
        cmocka_unit_test(test_env_interpolation),
        cmocka_unit_test(test_env_missing),
        cmocka_unit_test(test_env_values_kept_out_of_messages),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_bad_duration),
        cmocka_unit_test(test_bad_enum),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_missing_master_key),
        cmocka_unit_test(test_duplicate_credential),
        cmocka_unit_test(test_model_credential),
        cmocka_unit_test(test_credential_types),
        cmocka_unit_test(test_vertex),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_litellm_enabled),
        cmocka_unit_test(test_litellm_pool_sizes),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_empty_and_non_mapping),
        cmocka_unit_test(test_many_errors_in_file_order),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_ref_unref),
        cmocka_unit_test(test_ignored_key),
        cmocka_unit_test(test_idle_conn_timeout),
        cmocka_unit_test(test_not_used_warnings),
        cmocka_unit_test(test_storage_pool),
        cmocka_unit_test(test_cred_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
