/*
 * schema.c: the configuration schema of SPEC section 2 as data. Each section is a static
 * table with one row per key: name, type, offsetof into its core/conf.h struct, bounds,
 * default and validator (nginx ngx_command_t). A section's finish hook holds the checks
 * that involve several keys. Only config.c walks these tables; nothing here reads YAML
 * beyond looking up the line of a node for a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_int.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"

/* The latest GA data-plane inference api-version with a date (the deployments URLs need
 * one); the dateless GA API is opted into with `api_version: v1`. */
#define AZURE_DEFAULT_API_VERSION "2024-10-21"
#define V(t) (1u << (t))

_Static_assert(sizeof(ar_strategy_t) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(ar_cred_type_t) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(ar_model_kind_t) == sizeof(int), "enums are stored as int");

/* ---- enums ---- */

static const ar_config_enum_t log_levels[] = {
    {"debug", AR_LOG_DEBUG},
    {"info", AR_LOG_INFO},
    {"warn", AR_LOG_WARN},
    {"error", AR_LOG_ERROR},
    {NULL, 0},
};

static const ar_config_enum_t log_formats[] = {
    {"text", AR_LOG_TEXT},
    {"json", AR_LOG_JSON},
    {NULL, 0},
};

static const ar_config_enum_t strategies[] = {
    {"round_robin", AR_STRATEGY_ROUND_ROBIN},
    {"weighted", AR_STRATEGY_WEIGHTED},
    {"least_busy", AR_STRATEGY_LEAST_BUSY},
    {"lowest_latency", AR_STRATEGY_LOWEST_LATENCY},
    {"smart", AR_STRATEGY_SMART},
    {NULL, 0},
};

static const ar_config_enum_t cred_types[] = {
    {"openai", AR_CRED_OPENAI},       {"azure", AR_CRED_AZURE},
    {"anthropic", AR_CRED_ANTHROPIC}, {"gemini", AR_CRED_GEMINI},
    {"vertex-ai", AR_CRED_VERTEX},    {"proxy", AR_CRED_PROXY},
    {"mock", AR_CRED_MOCK},           {NULL, 0},
};

static const ar_config_enum_t model_kinds[] = {
    {"fast", AR_MODEL_KIND_FAST},
    {"reasoning", AR_MODEL_KIND_REASONING},
    {NULL, 0},
};

static const int default_error_codes[] = {401, 403, 429, 500, 502, 503, 504};

const char *ar_cred_type_name(ar_cred_type_t type)
{
    for (const ar_config_enum_t *e = cred_types; e->name; e++) {
        if (e->value == (int)type)
            return e->name;
    }
    return "unknown";
}

/* ---- validators ---- */

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int bad_url(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, const char *value,
                   const char *schemes)
{
    char show[64];
    ar_config__err(ctx, ar_config__line(node), "%s: must start with %s, got '%s'", path, schemes,
                   ar_config__show(value, show, sizeof(show)));
    return -1;
}

/* base_url: http(s) only, stored without trailing slashes so callers can append paths. */
static int check_http_url(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, void *base,
                          void *field)
{
    char *s = *(char **)field;
    (void)base;
    if (!s)
        return 0;
    size_t scheme;
    if (has_prefix(s, "http://"))
        scheme = strlen("http://");
    else if (has_prefix(s, "https://"))
        scheme = strlen("https://");
    else
        return bad_url(ctx, path, node, s, "http:// or https://");
    size_t len = strlen(s);
    while (len > scheme && s[len - 1] == '/')
        s[--len] = '\0';
    if (len == scheme || s[scheme] == '/') {
        ar_config__err(ctx, ar_config__line(node), "%s: '%s' has no host", path, s);
        return -1;
    }
    return 0;
}

static int check_database_url(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, void *base,
                              void *field)
{
    const char *s = *(char **)field;
    (void)base;
    if (!s || has_prefix(s, "sqlite://") || has_prefix(s, "postgresql://") ||
        has_prefix(s, "postgres://"))
        return 0;
    return bad_url(ctx, path, node, s, "sqlite://, postgresql:// or postgres://");
}

static int check_pg_url(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, void *base,
                        void *field)
{
    const char *s = *(char **)field;
    (void)base;
    if (!s || has_prefix(s, "postgresql://") || has_prefix(s, "postgres://"))
        return 0;
    return bad_url(ctx, path, node, s, "postgresql:// or postgres://");
}

static int check_redis_url(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, void *base,
                           void *field)
{
    const char *s = *(char **)field;
    (void)base;
    if (!s || has_prefix(s, "redis://") || has_prefix(s, "rediss://"))
        return 0;
    return bad_url(ctx, path, node, s, "redis:// or rediss://");
}

/* The whole of a small text file, owned, or NULL with *err set (0: too big or has NUL). */
static char *read_small_file(const char *path, size_t max, int *err)
{
    *err = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    char *buf = ar_xmalloc(max + 1);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *err = errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max)
            break;
    }
    close(fd);
    if (*err || n > max || memchr(buf, '\0', n)) {
        ar_free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* vertex-ai credentials_file: read at start, so a missing file must not pass config check. */
static int check_readable_file(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node,
                               void *base, void *field)
{
    const char *s = *(char **)field;
    char show[64];
    struct stat st;
    (void)base;
    if (!s)
        return 0;
    int fd = open(s, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        ar_config__err(ctx, ar_config__line(node), "%s: cannot read '%s': %s", path,
                       ar_config__show(s, show, sizeof(show)), strerror(e));
        return -1;
    }
    int rc = fstat(fd, &st);
    close(fd);
    if (rc != 0 || !S_ISREG(st.st_mode)) {
        ar_config__err(ctx, ar_config__line(node), "%s: '%s' is not a regular file", path,
                       ar_config__show(s, show, sizeof(show)));
        return -1;
    }
    return 0;
}

static int check_json_object(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, void *base,
                             void *field)
{
    const char *s = *(char **)field;
    char why[160];
    (void)base;
    if (!s)
        return 0;
    json_t *j = ar_json_parse(ar_span_cstr(s), why, sizeof(why));
    if (!j) {
        ar_config__err(ctx, ar_config__line(node), "%s: not valid JSON: %s", path, why);
        return -1;
    }
    bool ok = json_is_object(j);
    json_decref(j);
    if (!ok) {
        ar_config__err(ctx, ar_config__line(node), "%s: expected a JSON object", path);
        return -1;
    }
    return 0;
}

/* api_version (azure): "v1", or a dated version YYYY-MM-DD with an optional "-preview". It
 * goes into the upstream URL's query unescaped, so nothing else may pass. */
static int check_api_version(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, void *base,
                             void *field)
{
    static const char shape[] = "dddd-dd-dd";
    const char *s = *(char **)field;
    char show[64];
    (void)base;
    if (!s || strcmp(s, "v1") == 0)
        return 0;
    bool ok = strlen(s) >= sizeof(shape) - 1;
    for (size_t i = 0; ok && i < sizeof(shape) - 1; i++)
        ok = shape[i] == 'd' ? s[i] >= '0' && s[i] <= '9' : s[i] == '-';
    if (ok)
        ok = s[sizeof(shape) - 1] == '\0' || strcmp(s + sizeof(shape) - 1, "-preview") == 0;
    if (!ok) {
        ar_config__err(ctx, ar_config__line(node),
                       "%s: '%s' is not an Azure api-version (YYYY-MM-DD, YYYY-MM-DD-preview or "
                       "v1)",
                       path, ar_config__show(s, show, sizeof(show)));
        return -1;
    }
    return 0;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* headers: names must be HTTP tokens and values single-line, or they would split requests. */
static int check_headers(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, void *base,
                         void *field)
{
    const ar_cred_conf_t *cred = base;
    char show[64];
    int rc = 0;
    (void)field;
    for (size_t i = 0; i < cred->headers_cnt; i++) {
        const ar_kv_t *kv = &cred->headers[i];
        yaml_node_t *v = ar_config__child(ctx, node, kv->key);
        yaml_node_t *k = ar_config__child_key(ctx, node, kv->key);
        bool token = kv->key[0] != '\0';
        for (const char *p = kv->key; *p; p++)
            token = token && is_tchar((unsigned char)*p);
        if (!token) {
            ar_config__err(ctx, ar_config__line(k), "%s: '%s' is not a valid header name", path,
                           ar_config__show(kv->key, show, sizeof(show)));
            rc = -1;
        }
        if (strpbrk(kv->value, "\r\n")) {
            ar_config__err(ctx, ar_config__line(v), "%s.%s: header values must be one line", path,
                           ar_config__show(kv->key, show, sizeof(show)));
            rc = -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcasecmp(cred->headers[j].key, kv->key) == 0) {
                ar_config__err(ctx, ar_config__line(k), "%s: header '%s' is given twice", path,
                               ar_config__show(kv->key, show, sizeof(show)));
                rc = -1;
                break;
            }
        }
    }
    return rc;
}

static int set_type_name(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, void *base,
                         void *field)
{
    ar_cred_conf_t *cred = base;
    (void)ctx;
    (void)path;
    (void)node;
    (void)field;
    if (cred->type_name)
        ar_free(cred->type_name);
    cred->type_name = ar_xstrdup(ar_cred_type_name(cred->type));
    return 0;
}

/* idle_conn_timeout becomes libcurl's CURLOPT_MAXAGE_CONN, which counts whole seconds: a
 * finer value could not be honoured as written. */
static int check_whole_seconds(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node,
                               void *base, void *field)
{
    int64_t ms = *(int64_t *)field;
    char show[64];
    (void)base;
    if (ms == AR_UNLIMITED || ms % 1000 == 0)
        return 0;
    ar_config__err(ctx, ar_config__line(node),
                   "%s: must be a whole number of seconds (libcurl measures connection idle "
                   "time in seconds), got '%s'",
                   path,
                   ar_config__show((const char *)node->data.scalar.value, show, sizeof(show)));
    return -1;
}

/* ---- server ---- */

/* Why these keys are refused; each message ends up after "PATH: ". */
#define NO_PER_HOST_POOL                                                                           \
    "libcurl keeps one pool of idle upstream connections per worker with no per-host limit "       \
    "(CURLMOPT_MAX_HOST_CONNECTIONS would cap concurrent requests to a host and queue the "        \
    "rest, which is not the same); size the pool with server.max_idle_conns"

#define SRV(f) offsetof(ar_server_conf_t, f)
/* clang-format off */
static const ar_config_cmd_t server_cmds[] = {
    {.name = "host", .type = AR_CONFIG_STR, .off = SRV(host), .flags = AR_CONFIG_F_NONEMPTY,
     .def = {.s = "0.0.0.0"}},
    {.name = "port", .type = AR_CONFIG_INT, .off = SRV(port), .min = 1, .max = 65535,
     .def = {.i = 8080}},
    {.name = "workers", .type = AR_CONFIG_INT, .off = SRV(workers), .max = 1024},
    {.name = "max_body_size_mb", .type = AR_CONFIG_I64, .off = SRV(max_body_size_mb), .min = 1,
     .max = 1 << 20, .def = {.i = 100}},
    {.name = "response_body_multiplier", .type = AR_CONFIG_I64,
     .off = SRV(response_body_multiplier), .min = 1, .max = 1000, .def = {.i = 10}},
    {.name = "request_timeout", .type = AR_CONFIG_DURATION, .off = SRV(request_timeout_ms),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 60000}},
    {.name = "write_timeout", .type = AR_CONFIG_DURATION, .off = SRV(write_timeout_ms),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 60000}},
    {.name = "idle_timeout", .type = AR_CONFIG_DURATION, .off = SRV(idle_timeout_ms),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 120000}},
    {.name = "header_timeout", .type = AR_CONFIG_DURATION, .off = SRV(header_timeout_ms),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 10000}},
    {.name = "max_connections", .type = AR_CONFIG_I64, .off = SRV(max_connections),
     .flags = AR_CONFIG_F_UNLIMITED, .max = 1 << 24},
    {.name = "idle_conn_timeout", .type = AR_CONFIG_DURATION, .off = SRV(idle_conn_timeout_ms),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 120000},
     .check = check_whole_seconds},
    {.name = "max_idle_conns", .type = AR_CONFIG_I64, .off = SRV(max_idle_conns),
     .flags = AR_CONFIG_F_UNLIMITED, .def = {.i = 200}},
    {.name = "max_idle_conns_per_host", .type = AR_CONFIG_IGNORED, .note = NO_PER_HOST_POOL},
    {.name = "shutdown_timeout", .type = AR_CONFIG_DURATION, .off = SRV(shutdown_timeout_ms),
     .flags = AR_CONFIG_F_UNLIMITED, .def = {.i = 10000}},
    {.name = "logging_level", .type = AR_CONFIG_ENUM, .off = SRV(logging_level),
     .enums = log_levels, .def = {.i = AR_LOG_INFO}},
    {.name = "log_format", .type = AR_CONFIG_ENUM, .off = SRV(log_format), .enums = log_formats,
     .def = {.i = AR_LOG_TEXT}},
    {.name = "master_key", .type = AR_CONFIG_STR, .off = SRV(master_key),
     .flags = AR_CONFIG_F_REQUIRED | AR_CONFIG_F_NONEMPTY},
    {.name = "default_models_rpm", .type = AR_CONFIG_I64, .off = SRV(default_models_rpm),
     .flags = AR_CONFIG_F_UNLIMITED, .def = {.i = AR_UNLIMITED}},
    {.name = "model_prices_link", .type = AR_CONFIG_STR, .off = SRV(model_prices_link),
     .flags = AR_CONFIG_F_EMPTY_NULL},
    {.name = "replace_v1_models", .type = AR_CONFIG_BOOL, .off = SRV(replace_v1_models),
     .def = {.i = 1}},
    {.name = "router_metadata", .type = AR_CONFIG_BOOL, .off = SRV(router_metadata),
     .def = {.i = 1}},
    {.name = "cors_origins", .type = AR_CONFIG_STR_LIST, .off = SRV(cors_origins)},
};
/* clang-format on */
#undef SRV

static const ar_config_section_t server_section = {
    .name = "server",
    .size = sizeof(ar_server_conf_t),
    .cmds = server_cmds,
    .cmds_cnt = AR_ARRAY_CNT(server_cmds),
};

/* ---- fail2ban ---- */

#define RULE(f) offsetof(ar_ban_rule_t, f)
/* clang-format off */
static const ar_config_cmd_t rule_cmds[] = {
    {.name = "code", .type = AR_CONFIG_INT, .off = RULE(code), .flags = AR_CONFIG_F_REQUIRED,
     .min = 100, .max = 599},
    {.name = "max_attempts", .type = AR_CONFIG_I64, .off = RULE(max_attempts),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = AR_CONFIG_UNSET}},
    {.name = "ban_duration", .type = AR_CONFIG_DURATION, .off = RULE(ban_duration_ms),
     .flags = AR_CONFIG_F_PERMANENT, .min = 1, .def = {.i = AR_CONFIG_UNSET}},
};
/* clang-format on */
#undef RULE

static const ar_config_section_t rule_section = {
    .name = "error_code_rules",
    .size = sizeof(ar_ban_rule_t),
    .cmds = rule_cmds,
    .cmds_cnt = AR_ARRAY_CNT(rule_cmds),
};

/* Rules inherit what they do not set from fail2ban itself; one rule per code. */
static void fail2ban_finish(ar_config_ctx_t *ctx, const char *path, int line, yaml_node_t *node,
                            void *base)
{
    ar_fail2ban_conf_t *f = base;
    yaml_node_t *seq = ar_config__child(ctx, node, "error_code_rules");
    (void)line;
    for (size_t i = 0; i < f->rules_cnt; i++) {
        ar_ban_rule_t *r = &f->rules[i];
        if (r->max_attempts == AR_CONFIG_UNSET)
            r->max_attempts = f->max_attempts;
        if (r->ban_duration_ms == AR_CONFIG_UNSET)
            r->ban_duration_ms = f->ban_duration_ms;
        for (size_t j = 0; j < i; j++) {
            if (r->code == 0 || f->rules[j].code != r->code)
                continue;
            yaml_node_t *item = ar_config__item(ctx, seq, i);
            yaml_node_t *first = ar_config__item(ctx, seq, j);
            yaml_node_t *code = ar_config__child(ctx, item, "code");
            ar_config__err(ctx, ar_config__line(code ? code : item),
                           "%s.error_code_rules[%zu].code: a rule for %d already exists (line %d)",
                           path, i, r->code, ar_config__line(ar_config__child(ctx, first, "code")));
            break;
        }
    }
}

#define F2B(f) offsetof(ar_fail2ban_conf_t, f)
/* clang-format off */
static const ar_config_cmd_t fail2ban_cmds[] = {
    {.name = "max_attempts", .type = AR_CONFIG_I64, .off = F2B(max_attempts),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 3}},
    {.name = "ban_duration", .type = AR_CONFIG_DURATION, .off = F2B(ban_duration_ms),
     .flags = AR_CONFIG_F_PERMANENT, .min = 1, .def = {.i = AR_PERMANENT}},
    {.name = "error_codes", .type = AR_CONFIG_INT_LIST, .off = F2B(error_codes),
     .off2 = F2B(error_codes_cnt), .min = 100, .max = 599,
     .def = {.ints = default_error_codes, .ints_cnt = AR_ARRAY_CNT(default_error_codes)}},
    {.name = "error_code_rules", .type = AR_CONFIG_ITEMS, .off = F2B(rules), .off2 = F2B(rules_cnt),
     .sub = &rule_section},
};
/* clang-format on */
#undef F2B

static const ar_config_section_t fail2ban_section = {
    .name = "fail2ban",
    .size = sizeof(ar_fail2ban_conf_t),
    .cmds = fail2ban_cmds,
    .cmds_cnt = AR_ARRAY_CNT(fail2ban_cmds),
    .finish = fail2ban_finish,
};

/* ---- circuit_breaker ---- */

#define CB(f) offsetof(ar_breaker_conf_t, f)
/* clang-format off */
static const ar_config_cmd_t breaker_cmds[] = {
    {.name = "failure_threshold", .type = AR_CONFIG_I64, .off = CB(failure_threshold),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 3}},
    {.name = "cooldown_period", .type = AR_CONFIG_DURATION, .off = CB(cooldown_period_ms),
     .def = {.i = 60000}},
    {.name = "success_threshold", .type = AR_CONFIG_I64, .off = CB(success_threshold), .min = 1,
     .def = {.i = 2}},
    {.name = "stats_window", .type = AR_CONFIG_DURATION, .off = CB(stats_window_ms), .min = 1,
     .def = {.i = 300000}},
};
/* clang-format on */
#undef CB

static const ar_config_section_t breaker_section = {
    .name = "circuit_breaker",
    .size = sizeof(ar_breaker_conf_t),
    .cmds = breaker_cmds,
    .cmds_cnt = AR_ARRAY_CNT(breaker_cmds),
};

/* ---- routing ---- */

#define RT(f) offsetof(ar_routing_conf_t, f)
/* routing.fallback is flattened into ar_routing_conf_t: its rows use the same base. */
/* clang-format off */
static const ar_config_cmd_t fallback_cmds[] = {
    {.name = "enabled", .type = AR_CONFIG_BOOL, .off = RT(fallback_enabled)},
    {.name = "credential", .type = AR_CONFIG_STR, .off = RT(fallback_credential),
     .flags = AR_CONFIG_F_NONEMPTY},
    {.name = "model", .type = AR_CONFIG_STR, .off = RT(fallback_model),
     .flags = AR_CONFIG_F_NONEMPTY},
};
/* clang-format on */

static const ar_config_section_t fallback_section = {
    .name = "fallback",
    .size = sizeof(ar_routing_conf_t),
    .cmds = fallback_cmds,
    .cmds_cnt = AR_ARRAY_CNT(fallback_cmds),
};

/* clang-format off */
static const ar_config_cmd_t routing_cmds[] = {
    {.name = "strategy", .type = AR_CONFIG_ENUM, .off = RT(strategy), .enums = strategies,
     .def = {.i = AR_STRATEGY_ROUND_ROBIN}},
    {.name = "max_retries", .type = AR_CONFIG_I64, .off = RT(max_retries), .max = 100,
     .def = {.i = 3}},
    {.name = "rate_limit_retries", .type = AR_CONFIG_I64, .off = RT(rate_limit_retries), .max = 100,
     .def = {.i = 2}},
    {.name = "retry_delay", .type = AR_CONFIG_DURATION, .off = RT(retry_delay_ms),
     .def = {.i = 1000}},
    {.name = "fallback", .type = AR_CONFIG_SECTION, .off = 0, .sub = &fallback_section},
};
/* clang-format on */
#undef RT

static const ar_config_section_t routing_section = {
    .name = "routing",
    .size = sizeof(ar_routing_conf_t),
    .cmds = routing_cmds,
    .cmds_cnt = AR_ARRAY_CNT(routing_cmds),
};

/* ---- rate_limiting ---- */

/* burst_size defaults to requests_per_minute (SPEC section 2). */
static void bucket_finish(ar_config_ctx_t *ctx, const char *path, int line, yaml_node_t *node,
                          void *base)
{
    ar_bucket_conf_t *b = base;
    (void)ctx;
    (void)path;
    (void)line;
    (void)node;
    if (b->burst_size == AR_CONFIG_UNSET)
        b->burst_size = b->requests_per_minute;
}

#define BK(f) offsetof(ar_bucket_conf_t, f)
/* clang-format off */
static const ar_config_cmd_t global_bucket_cmds[] = {
    {.name = "enabled", .type = AR_CONFIG_BOOL, .off = BK(enabled)},
    {.name = "requests_per_minute", .type = AR_CONFIG_I64, .off = BK(requests_per_minute),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 1000}},
    {.name = "burst_size", .type = AR_CONFIG_I64, .off = BK(burst_size),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = AR_CONFIG_UNSET}},
};
/* clang-format on */

/* clang-format off */
static const ar_config_cmd_t client_bucket_cmds[] = {
    {.name = "enabled", .type = AR_CONFIG_BOOL, .off = BK(enabled)},
    {.name = "requests_per_minute", .type = AR_CONFIG_I64, .off = BK(requests_per_minute),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 60}},
    {.name = "burst_size", .type = AR_CONFIG_I64, .off = BK(burst_size),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = AR_CONFIG_UNSET}},
};
/* clang-format on */

/* clang-format off */
static const ar_config_cmd_t model_bucket_cmds[] = {
    {.name = "enabled", .type = AR_CONFIG_BOOL, .off = BK(enabled)},
    {.name = "requests_per_minute", .type = AR_CONFIG_I64, .off = BK(requests_per_minute),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 300}},
    {.name = "burst_size", .type = AR_CONFIG_I64, .off = BK(burst_size),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = AR_CONFIG_UNSET}},
};
/* clang-format on */

/* A bucket block is enabled by being there, unless it says `enabled: false`. */
static const ar_config_section_t global_bucket_section = {
    .name = "global",
    .size = sizeof(ar_bucket_conf_t),
    .cmds = global_bucket_cmds,
    .cmds_cnt = AR_ARRAY_CNT(global_bucket_cmds),
    .mark_present = true,
    .present_off = BK(enabled),
    .finish = bucket_finish,
};

static const ar_config_section_t client_bucket_section = {
    .name = "per_client",
    .size = sizeof(ar_bucket_conf_t),
    .cmds = client_bucket_cmds,
    .cmds_cnt = AR_ARRAY_CNT(client_bucket_cmds),
    .mark_present = true,
    .present_off = BK(enabled),
    .finish = bucket_finish,
};

static const ar_config_section_t model_bucket_section = {
    .name = "per_model",
    .size = sizeof(ar_bucket_conf_t),
    .cmds = model_bucket_cmds,
    .cmds_cnt = AR_ARRAY_CNT(model_bucket_cmds),
    .mark_present = true,
    .present_off = BK(enabled),
    .finish = bucket_finish,
};
#undef BK

#define RL(f) offsetof(ar_ratelimit_conf_t, f)
/* clang-format off */
static const ar_config_cmd_t ratelimit_cmds[] = {
    {.name = "enabled", .type = AR_CONFIG_BOOL, .off = RL(enabled)},
    {.name = "global", .type = AR_CONFIG_SECTION, .off = RL(global), .sub = &global_bucket_section},
    {.name = "per_client", .type = AR_CONFIG_SECTION, .off = RL(per_client),
     .sub = &client_bucket_section},
    {.name = "per_model", .type = AR_CONFIG_SECTION, .off = RL(per_model),
     .sub = &model_bucket_section},
};
/* clang-format on */
#undef RL

static const ar_config_section_t ratelimit_section = {
    .name = "rate_limiting",
    .size = sizeof(ar_ratelimit_conf_t),
    .cmds = ratelimit_cmds,
    .cmds_cnt = AR_ARRAY_CNT(ratelimit_cmds),
};

/* ---- monitoring ---- */

#define MON(f) offsetof(ar_monitoring_conf_t, f)
/* clang-format off */
static const ar_config_cmd_t monitoring_cmds[] = {
    {.name = "prometheus_enabled", .type = AR_CONFIG_BOOL, .off = MON(prometheus_enabled),
     .def = {.i = 1}},
    {.name = "log_errors", .type = AR_CONFIG_BOOL, .off = MON(log_errors)},
    {.name = "errors_log_path", .type = AR_CONFIG_STR, .off = MON(errors_log_path),
     .flags = AR_CONFIG_F_NONEMPTY, .def = {.s = "./errors.log"}},
};
/* clang-format on */
#undef MON

static const ar_config_section_t monitoring_section = {
    .name = "monitoring",
    .size = sizeof(ar_monitoring_conf_t),
    .cmds = monitoring_cmds,
    .cmds_cnt = AR_ARRAY_CNT(monitoring_cmds),
};

/* ---- storage ---- */

#define ST(f) offsetof(ar_storage_conf_t, f)
/* clang-format off */
static const ar_config_cmd_t storage_cmds[] = {
    {.name = "database_url", .type = AR_CONFIG_STR, .off = ST(database_url),
     .flags = AR_CONFIG_F_NONEMPTY, .def = {.s = "sqlite://./airouter.db"},
     .check = check_database_url},
    {.name = "key_cache_ttl", .type = AR_CONFIG_DURATION, .off = ST(key_cache_ttl_ms),
     .def = {.i = 5000}},
    {.name = "redis_url", .type = AR_CONFIG_STR, .off = ST(redis_url),
     .flags = AR_CONFIG_F_EMPTY_NULL, .check = check_redis_url},
    {.name = "redis_instances", .type = AR_CONFIG_I64, .off = ST(redis_instances),
     .def = {.i = 1}, .min = 1, .max = 10000},
    {.name = "secret_key", .type = AR_CONFIG_STR, .off = ST(secret_key),
     .flags = AR_CONFIG_F_EMPTY_NULL},
    {.name = "spend_fsync_interval", .type = AR_CONFIG_DURATION,
     .off = ST(spend_fsync_interval_ms), .def = {.i = 100}},
    {.name = "default_max_output_tokens", .type = AR_CONFIG_I64,
     .off = ST(default_max_output_tokens), .def = {.i = 4096}, .min = 1, .max = 100000000},
    {.name = "min_conns", .type = AR_CONFIG_I64, .off = ST(min_conns), .def = {.i = 1}, .min = 1,
     .max = 1000},
    {.name = "max_conns", .type = AR_CONFIG_I64, .off = ST(max_conns), .def = {.i = 4}, .min = 1,
     .max = 1000},
    {.name = "connect_timeout", .type = AR_CONFIG_DURATION, .off = ST(connect_timeout_ms),
     .min = 1, .def = {.i = 5000}},
    {.name = "query_timeout", .type = AR_CONFIG_DURATION, .off = ST(query_timeout_ms),
     .min = 1, .def = {.i = 10000}},
};
/* clang-format on */
#undef ST

static void storage_finish(ar_config_ctx_t *ctx, const char *path, int line, yaml_node_t *node,
                           void *base)
{
    const ar_storage_conf_t *s = base;
    if (s->min_conns > s->max_conns) {
        yaml_node_t *n = ar_config__child(ctx, node, "min_conns");
        ar_config__err(ctx, n ? ar_config__line(n) : line,
                       "%s.min_conns: must not exceed max_conns (%" PRId64 ")", path, s->max_conns);
    }
}

static const ar_config_section_t storage_section = {
    .name = "storage",
    .size = sizeof(ar_storage_conf_t),
    .cmds = storage_cmds,
    .cmds_cnt = AR_ARRAY_CNT(storage_cmds),
    .finish = storage_finish,
};

/* ---- litellm_db ---- */

static void litellm_finish(ar_config_ctx_t *ctx, const char *path, int line, yaml_node_t *node,
                           void *base)
{
    ar_litellm_conf_t *l = base;
    if (l->enabled && !l->database_url)
        ar_config__err(ctx, line, "%s.database_url is required when enabled", path);
    if (l->min_conns > l->max_conns) {
        yaml_node_t *n = ar_config__child(ctx, node, "min_conns");
        /* a max_conns below the default min_conns is not an error: min_conns follows it */
        if (!n)
            l->min_conns = l->max_conns;
        else
            ar_config__err(ctx, ar_config__line(n),
                           "%s.min_conns: must not exceed max_conns (%" PRId64 ")", path,
                           l->max_conns);
    }
    if (l->log_batch_size > l->log_queue_size) {
        yaml_node_t *n = ar_config__child(ctx, node, "log_batch_size");
        ar_config__err(ctx, n ? ar_config__line(n) : line,
                       "%s.log_batch_size: must not exceed log_queue_size (%" PRId64 ")", path,
                       l->log_queue_size);
    }
}

#define LL(f) offsetof(ar_litellm_conf_t, f)
/* clang-format off */
static const ar_config_cmd_t litellm_cmds[] = {
    {.name = "enabled", .type = AR_CONFIG_BOOL, .off = LL(enabled)},
    {.name = "is_required", .type = AR_CONFIG_BOOL, .off = LL(is_required)},
    {.name = "database_url", .type = AR_CONFIG_STR, .off = LL(database_url),
     .flags = AR_CONFIG_F_EMPTY_NULL, .check = check_pg_url},
    {.name = "max_conns", .type = AR_CONFIG_I64, .off = LL(max_conns), .min = 1, .max = 10000,
     .def = {.i = 25}},
    {.name = "min_conns", .type = AR_CONFIG_I64, .off = LL(min_conns), .max = 10000,
     .def = {.i = 5}},
    {.name = "health_check_interval", .type = AR_CONFIG_DURATION,
     .off = LL(health_check_interval_ms), .min = 1, .def = {.i = 10000}},
    {.name = "connect_timeout", .type = AR_CONFIG_DURATION, .off = LL(connect_timeout_ms),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = 5000}},
    {.name = "auth_cache_ttl", .type = AR_CONFIG_DURATION, .off = LL(auth_cache_ttl_ms),
     .def = {.i = 20000}},
    {.name = "auth_cache_size", .type = AR_CONFIG_I64, .off = LL(auth_cache_size),
     .def = {.i = 10000}},
    {.name = "log_queue_size", .type = AR_CONFIG_I64, .off = LL(log_queue_size), .min = 1,
     .def = {.i = 5000}},
    {.name = "log_batch_size", .type = AR_CONFIG_I64, .off = LL(log_batch_size), .min = 1,
     .def = {.i = 100}},
    {.name = "log_flush_interval", .type = AR_CONFIG_DURATION, .off = LL(log_flush_interval_ms),
     .min = 1, .def = {.i = 5000}},
    {.name = "log_retry_attempts", .type = AR_CONFIG_I64, .off = LL(log_retry_attempts),
     .def = {.i = 3}},
    {.name = "log_retry_delay", .type = AR_CONFIG_DURATION, .off = LL(log_retry_delay_ms),
     .def = {.i = 1000}},
};
/* clang-format on */
#undef LL

static const ar_config_section_t litellm_section = {
    .name = "litellm_db",
    .size = sizeof(ar_litellm_conf_t),
    .cmds = litellm_cmds,
    .cmds_cnt = AR_ARRAY_CNT(litellm_cmds),
    .finish = litellm_finish,
};

/* ---- credentials[] ---- */

static void cred_finish(ar_config_ctx_t *ctx, const char *path, int line, yaml_node_t *node,
                        void *base)
{
    ar_cred_conf_t *c = base;
    const char *t = c->type_name;
    (void)node;
    c->line = line;
    if (!t)
        return; /* type missing or invalid: already reported */
    switch (c->type) {
    case AR_CRED_AZURE:
    case AR_CRED_ANTHROPIC:
    case AR_CRED_GEMINI:
        if (!c->api_key)
            ar_config__err(ctx, line, "%s.api_key is required for type %s", path, t);
        break;
    default: break;
    }
    if (!c->base_url) {
        if (c->type == AR_CRED_AZURE || c->type == AR_CRED_PROXY)
            ar_config__err(ctx, line, "%s.base_url is required for type %s", path, t);
        else if (c->type == AR_CRED_OPENAI)
            c->base_url = ar_xstrdup("https://api.openai.com");
        else if (c->type == AR_CRED_ANTHROPIC)
            c->base_url = ar_xstrdup("https://api.anthropic.com");
        else if (c->type == AR_CRED_GEMINI)
            c->base_url = ar_xstrdup("https://generativelanguage.googleapis.com");
    }
    if (c->type == AR_CRED_AZURE && !c->api_version)
        c->api_version = ar_xstrdup(AZURE_DEFAULT_API_VERSION);
    if (c->type == AR_CRED_VERTEX) {
        int ways =
            (c->credentials_file != NULL) + (c->credentials_json != NULL) + (c->api_key != NULL);
        if (!c->project_id)
            ar_config__err(ctx, line, "%s.project_id is required for type vertex-ai", path);
        if (!c->location)
            ar_config__err(ctx, line, "%s.location is required for type vertex-ai", path);
        if (ways == 0)
            ar_config__err(ctx, line,
                           "%s: type vertex-ai needs one of credentials_file, credentials_json "
                           "or api_key",
                           path);
        else if (ways > 1)
            ar_config__err(ctx, line,
                           "%s: type vertex-ai takes only one of credentials_file, "
                           "credentials_json and api_key",
                           path);
        /* The key file is read here, with the config: providers do no I/O, and a reload
         * picks up a rotated key. Its contents are then a secret like credentials_json
         * (masked in every log line). */
        if (ways == 1 && c->credentials_file) {
            int e = 0;
            c->credentials_json = read_small_file(c->credentials_file, 1u << 20, &e);
            /* an unreadable file was already reported, at its own line, by its key check */
            if (!c->credentials_json && e == 0)
                ar_config__err(ctx, line,
                               "%s.credentials_file: '%s' is larger than 1 MiB or "
                               "not text",
                               path, c->credentials_file);
        }
    }
}

void ar_config__cred_finish(ar_config_ctx_t *ctx, const char *path, ar_cred_conf_t *c)
{
    cred_finish(ctx, path, c->line, NULL, c);
}

int ar_config__cred_type(const char *name, ar_cred_type_t *out)
{
    for (const ar_config_enum_t *e = cred_types; name && e->name; e++) {
        if (strcmp(e->name, name) == 0) {
            *out = (ar_cred_type_t)e->value;
            return 0;
        }
    }
    return -1;
}

static void cred_unshare(void *base)
{
    ar_cred_conf_t *c = base;
    if (c->type_name)
        c->type_name = ar_xstrdup(c->type_name);
}

static void cred_dispose(void *base)
{
    ar_cred_conf_t *c = base;
    if (c->type_name)
        ar_free(c->type_name);
    c->type_name = NULL;
}

/* base_url means nothing to the in-process mock. */
enum {
    NOT_MOCK = V(AR_CRED_OPENAI) | V(AR_CRED_AZURE) | V(AR_CRED_ANTHROPIC) | V(AR_CRED_GEMINI) |
               V(AR_CRED_VERTEX) | V(AR_CRED_PROXY)
};

#define CR(f) offsetof(ar_cred_conf_t, f)
/* clang-format off */
static const ar_config_cmd_t cred_cmds[] = {
    {.name = "name", .type = AR_CONFIG_STR, .off = CR(name),
     .flags = AR_CONFIG_F_REQUIRED | AR_CONFIG_F_NONEMPTY},
    /* Not required: openai when left out, as auto_ai_router's early config.yaml means it. */
    {.name = "type", .type = AR_CONFIG_ENUM, .off = CR(type), .def = {.i = AR_CRED_OPENAI},
     .enums = cred_types, .check = set_type_name},
    {.name = "api_key", .type = AR_CONFIG_STR, .off = CR(api_key), .flags = AR_CONFIG_F_EMPTY_NULL,
     .inert = V(AR_CRED_MOCK)},
    {.name = "base_url", .type = AR_CONFIG_STR, .off = CR(base_url), .flags = AR_CONFIG_F_NONEMPTY,
     .check = check_http_url, .variants = NOT_MOCK},
    {.name = "rpm", .type = AR_CONFIG_I64, .off = CR(rpm), .flags = AR_CONFIG_F_UNLIMITED,
     .def = {.i = AR_UNLIMITED}},
    {.name = "tpm", .type = AR_CONFIG_I64, .off = CR(tpm), .flags = AR_CONFIG_F_UNLIMITED,
     .def = {.i = AR_UNLIMITED}},
    {.name = "weight", .type = AR_CONFIG_I64, .off = CR(weight), .def = {.i = 1}},
    {.name = "is_fallback", .type = AR_CONFIG_BOOL, .off = CR(is_fallback)},
    {.name = "native_api", .type = AR_CONFIG_BOOL, .off = CR(native_api), .def = {.i = 1},
     .variants = V(AR_CRED_OPENAI) | V(AR_CRED_PROXY) | V(AR_CRED_ANTHROPIC)},
    {.name = "headers", .type = AR_CONFIG_MAP, .off = CR(headers), .off2 = CR(headers_cnt),
     .check = check_headers, .inert = V(AR_CRED_MOCK)},
    {.name = "api_version", .type = AR_CONFIG_STR, .off = CR(api_version),
     .flags = AR_CONFIG_F_NONEMPTY, .check = check_api_version, .variants = V(AR_CRED_AZURE)},
    {.name = "project_id", .type = AR_CONFIG_STR, .off = CR(project_id),
     .flags = AR_CONFIG_F_NONEMPTY, .variants = V(AR_CRED_VERTEX)},
    {.name = "location", .type = AR_CONFIG_STR, .off = CR(location), .flags = AR_CONFIG_F_NONEMPTY,
     .variants = V(AR_CRED_VERTEX)},
    {.name = "credentials_file", .type = AR_CONFIG_STR, .off = CR(credentials_file),
     .flags = AR_CONFIG_F_NONEMPTY, .check = check_readable_file, .variants = V(AR_CRED_VERTEX)},
    {.name = "credentials_json", .type = AR_CONFIG_STR, .off = CR(credentials_json),
     .flags = AR_CONFIG_F_NONEMPTY, .check = check_json_object, .variants = V(AR_CRED_VERTEX)},
    {.name = "mock_latency", .type = AR_CONFIG_DURATION, .off = CR(mock_latency_ms),
     .variants = V(AR_CRED_MOCK)},
    {.name = "mock_stream_chunks", .type = AR_CONFIG_I64, .off = CR(mock_stream_chunks),
     .max = 100000, .variants = V(AR_CRED_MOCK)},
};
/* clang-format on */
#undef CR

const ar_config_section_t ar_config__cred_section = {
    .name = "credentials",
    .size = sizeof(ar_cred_conf_t),
    .cmds = cred_cmds,
    .cmds_cnt = AR_ARRAY_CNT(cred_cmds),
    .variant_key = "type",
    .finish = cred_finish,
    .dispose = cred_dispose,
    .unshare = cred_unshare,
};

/* ---- models[] ---- */

static void model_finish(ar_config_ctx_t *ctx, const char *path, int line, yaml_node_t *node,
                         void *base)
{
    ar_model_conf_t *m = base;
    (void)ctx;
    (void)path;
    (void)node;
    m->line = line;
    if (!m->model && m->name)
        m->model = ar_xstrdup(m->name);
}

#define MD(f) offsetof(ar_model_conf_t, f)
/* clang-format off */
static const ar_config_cmd_t model_cmds[] = {
    {.name = "name", .type = AR_CONFIG_STR, .off = MD(name),
     .flags = AR_CONFIG_F_REQUIRED | AR_CONFIG_F_NONEMPTY},
    {.name = "credential", .type = AR_CONFIG_STR, .off = MD(credential),
     .flags = AR_CONFIG_F_REQUIRED | AR_CONFIG_F_NONEMPTY},
    {.name = "model", .type = AR_CONFIG_STR, .off = MD(model), .flags = AR_CONFIG_F_NONEMPTY},
    {.name = "rpm", .type = AR_CONFIG_I64, .off = MD(rpm), .flags = AR_CONFIG_F_UNLIMITED,
     .def = {.i = AR_CONFIG_UNSET}},
    {.name = "tpm", .type = AR_CONFIG_I64, .off = MD(tpm), .flags = AR_CONFIG_F_UNLIMITED,
     .def = {.i = AR_UNLIMITED}},
    {.name = "weight", .type = AR_CONFIG_I64, .off = MD(weight), .def = {.i = 1}},
    {.name = "max_concurrent", .type = AR_CONFIG_I64, .off = MD(max_concurrent),
     .flags = AR_CONFIG_F_UNLIMITED, .min = 1, .def = {.i = AR_UNLIMITED}},
    {.name = "tags", .type = AR_CONFIG_STR_LIST, .off = MD(tags)},
    {.name = "type", .type = AR_CONFIG_ENUM, .off = MD(kind), .enums = model_kinds,
     .def = {.i = AR_MODEL_KIND_ANY}},
    {.name = "context_size", .type = AR_CONFIG_I64, .off = MD(context_size)},
    {.name = "max_output_tokens", .type = AR_CONFIG_I64, .off = MD(max_output_tokens)},
    {.name = "json_response", .type = AR_CONFIG_BOOL, .off = MD(json_response)},
    {.name = "available", .type = AR_CONFIG_BOOL, .off = MD(available), .def = {.i = 1}},
    {.name = "input_cost_per_token", .type = AR_CONFIG_DOUBLE, .off = MD(input_cost_per_token),
     .def = {.d = -1}},
    {.name = "output_cost_per_token", .type = AR_CONFIG_DOUBLE, .off = MD(output_cost_per_token),
     .def = {.d = -1}},
};
/* clang-format on */
#undef MD

const ar_config_section_t ar_config__model_section = {
    .name = "models",
    .size = sizeof(ar_model_conf_t),
    .cmds = model_cmds,
    .cmds_cnt = AR_ARRAY_CNT(model_cmds),
    .finish = model_finish,
};

/* ---- the root ---- */

/* The line of item i's `key` value, else of the item. */
static int item_line(ar_config_ctx_t *ctx, yaml_node_t *seq, size_t i, const char *key)
{
    yaml_node_t *item = ar_config__item(ctx, seq, i);
    yaml_node_t *v = ar_config__child(ctx, item, key);
    return ar_config__line(v ? v : item);
}

static void check_credentials(ar_config_ctx_t *ctx, ar_config_t *cfg, yaml_node_t *seq)
{
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        const char *name = cfg->credentials[i].name;
        if (!name)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (cfg->credentials[j].name && strcmp(cfg->credentials[j].name, name) == 0) {
                ar_config__err(ctx, item_line(ctx, seq, i, "name"),
                               "credentials[%zu].name: duplicate credential '%s' (first defined "
                               "at line %d)",
                               i, name, item_line(ctx, seq, j, "name"));
                break;
            }
        }
    }
}

static void check_models(ar_config_ctx_t *ctx, ar_config_t *cfg, yaml_node_t *seq)
{
    char show[64];
    for (size_t i = 0; i < cfg->models_cnt; i++) {
        ar_model_conf_t *m = &cfg->models[i];
        if (m->rpm == AR_CONFIG_UNSET)
            m->rpm = cfg->server.default_models_rpm;
        if (!m->credential)
            continue;
        long idx = ar_config_cred_index(cfg, m->credential);
        if (idx < 0) {
            ar_config__err(ctx, item_line(ctx, seq, i, "credential"),
                           "models[%zu].credential: no credential named '%s'", i,
                           ar_config__show(m->credential, show, sizeof(show)));
            continue;
        }
        m->credential_idx = (size_t)idx;
        if (!m->name)
            continue;
        /* A deployment is (credential, upstream model): the same one twice under one name
         * is a typo; two upstream models on one credential under one name is balancing. */
        const char *mu = m->model ? m->model : m->name;
        for (size_t j = 0; j < i; j++) {
            const ar_model_conf_t *o = &cfg->models[j];
            const char *ou = o->model ? o->model : o->name;
            if (o->name && o->credential && ou && strcmp(o->name, m->name) == 0 &&
                strcmp(o->credential, m->credential) == 0 && strcmp(ou, mu) == 0) {
                ar_config__err(ctx, item_line(ctx, seq, i, "name"),
                               "models[%zu]: model '%s' (upstream '%s') on credential '%s' is "
                               "already defined at line %d",
                               i, m->name, mu, m->credential, item_line(ctx, seq, j, "name"));
                break;
            }
        }
    }
}

static void check_fallback(ar_config_ctx_t *ctx, ar_config_t *cfg, yaml_node_t *root)
{
    const ar_routing_conf_t *r = &cfg->routing;
    char show[64];
    if (!r->fallback_enabled)
        return;
    yaml_node_t *routing = ar_config__child(ctx, root, "routing");
    yaml_node_t *key = ar_config__child_key(ctx, routing, "fallback");
    yaml_node_t *fb = ar_config__child(ctx, routing, "fallback");
    int line = ar_config__line(key);
    if (!r->fallback_credential) {
        ar_config__err(ctx, line, "routing.fallback.credential is required when enabled");
    } else if (ar_config_cred_index(cfg, r->fallback_credential) < 0) {
        yaml_node_t *n = ar_config__child(ctx, fb, "credential");
        ar_config__err(ctx, n ? ar_config__line(n) : line,
                       "routing.fallback.credential: no credential named '%s'",
                       ar_config__show(r->fallback_credential, show, sizeof(show)));
    }
    if (!r->fallback_model)
        ar_config__err(ctx, line, "routing.fallback.model is required when enabled");
}

static void root_finish(ar_config_ctx_t *ctx, const char *path, int line, yaml_node_t *node,
                        void *base)
{
    ar_config_t *cfg = base;
    (void)path;
    (void)line;
    check_credentials(ctx, cfg, ar_config__child(ctx, node, "credentials"));
    check_models(ctx, cfg, ar_config__child(ctx, node, "models"));
    check_fallback(ctx, cfg, node);
}

#define CF(f) offsetof(ar_config_t, f)
/* clang-format off */
static const ar_config_cmd_t root_cmds[] = {
    {.name = "server", .type = AR_CONFIG_SECTION, .off = CF(server), .sub = &server_section},
    {.name = "fail2ban", .type = AR_CONFIG_SECTION, .off = CF(fail2ban), .sub = &fail2ban_section},
    {.name = "circuit_breaker", .type = AR_CONFIG_SECTION, .off = CF(circuit_breaker),
     .sub = &breaker_section},
    {.name = "routing", .type = AR_CONFIG_SECTION, .off = CF(routing), .sub = &routing_section},
    {.name = "rate_limiting", .type = AR_CONFIG_SECTION, .off = CF(rate_limiting),
     .sub = &ratelimit_section},
    {.name = "monitoring", .type = AR_CONFIG_SECTION, .off = CF(monitoring),
     .sub = &monitoring_section},
    {.name = "storage", .type = AR_CONFIG_SECTION, .off = CF(storage), .sub = &storage_section},
    {.name = "litellm_db", .type = AR_CONFIG_SECTION, .off = CF(litellm_db),
     .sub = &litellm_section},
    {.name = "credentials", .type = AR_CONFIG_ITEMS, .off = CF(credentials),
     .off2 = CF(credentials_cnt), .sub = &ar_config__cred_section},
    {.name = "models", .type = AR_CONFIG_ITEMS, .off = CF(models), .off2 = CF(models_cnt),
     .sub = &ar_config__model_section},
};
/* clang-format on */
#undef CF

const ar_config_section_t ar_config__root = {
    .name = "",
    .size = sizeof(ar_config_t),
    .cmds = root_cmds,
    .cmds_cnt = AR_ARRAY_CNT(root_cmds),
    .finish = root_finish,
};
