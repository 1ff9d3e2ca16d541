/*
 * import_freerouter.c: the free-model router's config.yaml and models.yaml converted into
 * airouter configuration (`airouter config import --from free-llm-router`). Its settings
 * are airouter's own under other names (routing, fallback, circuitBreaker, rateLimiting,
 * the smart strategy's weight and maxConcurrent), so most keys carry over one to one;
 * each provider becomes an OpenAI-compatible credential of the same name, so that
 * `provider/model` names keep working. What does not carry over is named in a
 * `# not carried over` comment.
 */
#include <stdio.h>
#include <string.h>

#include "config/import_int.h"
#include "core/mem.h"

static yaml_node_t *child(ar_imp_t *im, yaml_node_t *map, const char *key)
{
    return map && map->type == YAML_MAPPING_NODE ? ar_config__child(im->ctx, map, key) : NULL;
}

/* A value taken from the environment (`${VAR}`, `os.environ/VAR`) is copied as written:
 * airouter substitutes both, in numbers too. */
static bool is_ref(const char *v)
{
    return strstr(v, "${") != NULL || strncmp(v, "os.environ/", 11) == 0;
}

/*
 * Writes key `to` from the integer at map.key (path for messages) followed by unit ("s",
 * "ms", "m" for durations, "" for counts). Values below min are reported as errors.
 */
static void int_kv(ar_imp_t *im, ar_imp_sec_t sec, int indent, yaml_node_t *map, const char *key,
                   const char *path, const char *to, const char *unit, int64_t min)
{
    yaml_node_t *n = child(im, map, key);
    const char *v = ar_imp__str(im, n);
    char p[160];
    int64_t i;
    if (!v)
        return;
    snprintf(p, sizeof(p), "%s.%s", path, key);
    if (is_ref(v)) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s%s", v, unit);
        ar_imp__kv(im, sec, indent, to, buf);
        return;
    }
    if (ar_imp__int(im, n, p, &i) != 0)
        return;
    if (i < min) {
        ar_config__err(im->ctx, ar_config__line(n), "%s: must be at least %lld", p, (long long)min);
        return;
    }
    ar_imp__kvf(im, sec, indent, to, "%lld%s", (long long)i, unit);
}

static void bool_kv(ar_imp_t *im, ar_imp_sec_t sec, int indent, yaml_node_t *map, const char *key,
                    const char *path, const char *to)
{
    yaml_node_t *n = child(im, map, key);
    char p[160];
    bool b;
    if (!ar_imp__str(im, n))
        return;
    snprintf(p, sizeof(p), "%s.%s", path, key);
    if (ar_imp__bool(im, n, p, &b) == 0)
        ar_imp__kvf(im, sec, indent, to, "%s", b ? "true" : "false");
}

/* ---- providers ---- */

/* provider name -> index of its credential (several providers may share one) */
typedef struct prov {
    const char *name; /* borrowed from config.yaml's document */
    long cred;        /* -1: disabled */
} prov_t;

typedef struct provs {
    prov_t *items;
    size_t cnt;
} provs_t;

static const prov_t *find_prov(const provs_t *ps, const char *name)
{
    for (size_t i = 0; i < ps->cnt; i++) {
        if (strcmp(ps->items[i].name, name) == 0)
            return &ps->items[i];
    }
    return NULL;
}

static const struct {
    const char *name;
    const char *base_url;
} known_bases[] = {
    {"openrouter", "https://openrouter.ai/api/v1"},
    {"deepseek", "https://api.deepseek.com"},
};

static void providers(ar_imp_t *im, yaml_node_t *map, provs_t *ps)
{
    static const char *const known[] = {"enabled", "apiKey", "baseUrl", NULL};
    if (!map) {
        ar_config__err(im->ctx, 1, "providers is required (is this a free-llm-router config?)");
        return;
    }
    if (!ar_imp__is_map(im, map, "providers"))
        return;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&im->ctx->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&im->ctx->doc, p->value);
        const char *name = ar_imp__str(im, k);
        char path[128];
        if (!name)
            continue;
        snprintf(path, sizeof(path), "providers.%s", name);
        if (!ar_imp__is_map(im, v, path))
            continue;
        ps->items = ar_xrealloc(ps->items, (ps->cnt + 1) * sizeof(*ps->items));
        prov_t *pv = &ps->items[ps->cnt++];
        pv->name = name;
        pv->cred = -1;
        bool enabled = true;
        yaml_node_t *en = child(im, v, "enabled");
        char epath[160];
        snprintf(epath, sizeof(epath), "%s.enabled", path);
        if (ar_imp__str(im, en) && ar_imp__bool(im, en, epath, &enabled) != 0)
            continue;
        if (!enabled) {
            ar_imp__skip(im, AR_IMP_CREDS, 2, path, k,
                         "disabled (enabled: false); its models are left out too");
            continue;
        }
        ar_imp_cred_t want;
        memset(&want, 0, sizeof(want));
        want.type = "openai";
        want.api_key = (char *)ar_imp__str(im, child(im, v, "apiKey"));
        want.base_url = (char *)ar_imp__str(im, child(im, v, "baseUrl"));
        for (size_t i = 0; !want.base_url && i < sizeof(known_bases) / sizeof(known_bases[0]);
             i++) {
            if (strcmp(known_bases[i].name, name) == 0)
                want.base_url = (char *)known_bases[i].base_url;
        }
        if (!want.base_url) {
            ar_config__err(im->ctx, ar_config__line(k), "%s.baseUrl is required", path);
            continue;
        }
        ar_imp__skip_rest(im, AR_IMP_CREDS, 2, v, path, known,
                          "airouter has no such credential setting");
        ar_imp_cred_t *c = ar_imp__cred(im, &want, name);
        pv->cred = (long)(c - im->creds);
    }
}

/* ---- config.yaml settings ---- */

static void routing(ar_imp_t *im, yaml_node_t *r, const provs_t *ps)
{
    static const char *const known[] = {"maxRetries",  "rateLimitRetries", "retryDelay",
                                        "timeoutSecs", "fallback",         NULL};
    static const char *const fb_known[] = {"enabled", "provider", "model", NULL};
    ar_imp__line(im, AR_IMP_ROUTING, 2,
                 "# the free-model router's Smart Strategy: weight x success rate x latency");
    ar_imp__kv(im, AR_IMP_ROUTING, 2, "strategy", "smart");
    if (!r || !ar_imp__is_map(im, r, "routing"))
        return;
    int_kv(im, AR_IMP_ROUTING, 2, r, "maxRetries", "routing", "max_retries", "", 0);
    int_kv(im, AR_IMP_ROUTING, 2, r, "rateLimitRetries", "routing", "rate_limit_retries", "", 0);
    int_kv(im, AR_IMP_ROUTING, 2, r, "retryDelay", "routing", "retry_delay", "ms", 0);
    int_kv(im, AR_IMP_SERVER, 2, r, "timeoutSecs", "routing", "request_timeout", "s", 1);
    ar_imp__skip_rest(im, AR_IMP_ROUTING, 2, r, "routing", known, "airouter has no such setting");

    yaml_node_t *fb = child(im, r, "fallback");
    if (!fb || !ar_imp__is_map(im, fb, "routing.fallback"))
        return;
    bool enabled = false;
    yaml_node_t *en = child(im, fb, "enabled");
    if (ar_imp__str(im, en) && ar_imp__bool(im, en, "routing.fallback.enabled", &enabled) != 0)
        return;
    yaml_node_t *pn = child(im, fb, "provider");
    yaml_node_t *mn = child(im, fb, "model");
    const char *prov = ar_imp__str(im, pn), *model = ar_imp__str(im, mn);
    if (!enabled) {
        ar_imp__skip(im, AR_IMP_ROUTING, 2, "routing.fallback", fb, "disabled");
        return;
    }
    if (!prov || !model) {
        ar_config__err(im->ctx, ar_config__line(fb),
                       "routing.fallback: provider and model are required when enabled");
        return;
    }
    const prov_t *pv = find_prov(ps, prov);
    if (!pv) {
        ar_config__err(im->ctx, ar_config__line(pn), "routing.fallback.provider: no provider '%s'",
                       prov);
        return;
    }
    if (pv->cred < 0) {
        ar_imp__skip(im, AR_IMP_ROUTING, 2, "routing.fallback", fb, "its provider %s is disabled",
                     prov);
        return;
    }
    ar_imp__line(im, AR_IMP_ROUTING, 2, "fallback:");
    ar_imp__kvf(im, AR_IMP_ROUTING, 4, "enabled", "true");
    ar_imp__kv(im, AR_IMP_ROUTING, 4, "credential", im->creds[pv->cred].name);
    ar_imp__kv(im, AR_IMP_ROUTING, 4, "model", model);
    ar_imp__skip_rest(im, AR_IMP_ROUTING, 4, fb, "routing.fallback", fb_known,
                      "airouter has no such setting");
}

static void breaker(ar_imp_t *im, yaml_node_t *cb)
{
    static const char *const known[] = {"failureThreshold", "cooldownPeriodSecs",
                                        "successThreshold", "statsWindowSizeMins", NULL};
    if (!cb || !ar_imp__is_map(im, cb, "circuitBreaker"))
        return;
    int_kv(im, AR_IMP_BREAKER, 2, cb, "failureThreshold", "circuitBreaker", "failure_threshold", "",
           1);
    int_kv(im, AR_IMP_BREAKER, 2, cb, "cooldownPeriodSecs", "circuitBreaker", "cooldown_period",
           "s", 1);
    int_kv(im, AR_IMP_BREAKER, 2, cb, "successThreshold", "circuitBreaker", "success_threshold", "",
           1);
    int_kv(im, AR_IMP_BREAKER, 2, cb, "statsWindowSizeMins", "circuitBreaker", "stats_window", "m",
           1);
    ar_imp__skip_rest(im, AR_IMP_BREAKER, 2, cb, "circuitBreaker", known,
                      "airouter has no such setting");
}

static void bucket(ar_imp_t *im, yaml_node_t *rl, const char *key, const char *to)
{
    static const char *const known[] = {"enabled", "requestsPerMinute", "burstSize", NULL};
    yaml_node_t *b = child(im, rl, key);
    char path[64];
    snprintf(path, sizeof(path), "rateLimiting.%s", key);
    if (!b || !ar_imp__is_map(im, b, path))
        return;
    ar_imp__line(im, AR_IMP_RATELIMIT, 2, "%s:", to);
    bool_kv(im, AR_IMP_RATELIMIT, 4, b, "enabled", path, "enabled");
    int_kv(im, AR_IMP_RATELIMIT, 4, b, "requestsPerMinute", path, "requests_per_minute", "", 1);
    int_kv(im, AR_IMP_RATELIMIT, 4, b, "burstSize", path, "burst_size", "", 1);
    ar_imp__skip_rest(im, AR_IMP_RATELIMIT, 4, b, path, known, "airouter has no such setting");
}

static void rate_limiting(ar_imp_t *im, yaml_node_t *rl)
{
    static const char *const known[] = {"enabled", "global", "perClient", "perModel", NULL};
    if (!rl || !ar_imp__is_map(im, rl, "rateLimiting"))
        return;
    bool_kv(im, AR_IMP_RATELIMIT, 2, rl, "enabled", "rateLimiting", "enabled");
    bucket(im, rl, "global", "global");
    bucket(im, rl, "perClient", "per_client");
    bucket(im, rl, "perModel", "per_model");
    ar_imp__skip_rest(im, AR_IMP_RATELIMIT, 2, rl, "rateLimiting", known,
                      "airouter has no such setting");
}

/* ---- models.yaml ---- */

static void model(ar_imp_t *im, yaml_node_t *m, size_t idx, const provs_t *ps, bool *used)
{
    char path[64];
    snprintf(path, sizeof(path), "models[%zu]", idx);
    if (!ar_imp__is_map(im, m, path))
        return;
    const char *name = ar_imp__str(im, child(im, m, "name"));
    const char *prov = ar_imp__str(im, child(im, m, "provider"));
    const char *upstream = ar_imp__str(im, child(im, m, "model"));
    if (!name || !prov || !upstream) {
        ar_config__err(im->ctx, ar_config__line(m), "%s: name, provider and model are required",
                       path);
        return;
    }
    const prov_t *pv = find_prov(ps, prov);
    if (!pv) {
        ar_config__err(im->ctx, ar_config__line(child(im, m, "provider")),
                       "%s.provider: no provider '%s' in the config", path, prov);
        return;
    }
    if (pv->cred < 0) {
        ar_imp__skip(im, AR_IMP_MODELS, 2, path, m, "model '%s': its provider %s is disabled", name,
                     prov);
        return;
    }
    used[pv->cred] = true;
    yaml_node_t *speed = child(im, m, "speedTier");
    char kpath[96];
    snprintf(kpath, sizeof(kpath), "%s.speedTier", path);
    if (speed)
        ar_imp__skip(im, AR_IMP_MODELS, 2, kpath, speed,
                     "airouter measures latency itself (the smart strategy)");
    static const char *const known[] = {
        "name", "provider",     "model",     "type",   "contextSize",   "maxOutputTokens",
        "tags", "jsonResponse", "available", "weight", "maxConcurrent", "speedTier",
        NULL};
    ar_imp__skip_rest(im, AR_IMP_MODELS, 2, m, path, known, "airouter has no such model setting");
    yaml_node_t *type = child(im, m, "type");
    const char *t = ar_imp__str(im, type);
    if (t && strcmp(t, "fast") != 0 && strcmp(t, "reasoning") != 0) {
        snprintf(kpath, sizeof(kpath), "%s.type", path);
        ar_imp__skip(im, AR_IMP_MODELS, 2, kpath, type, "airouter knows fast and reasoning");
        t = NULL;
    }
    ar_imp__kv(im, AR_IMP_MODELS, 2, "- name", name);
    ar_imp__kv(im, AR_IMP_MODELS, 4, "credential", im->creds[pv->cred].name);
    if (strcmp(upstream, name) != 0)
        ar_imp__kv(im, AR_IMP_MODELS, 4, "model", upstream);
    if (t)
        ar_imp__kv(im, AR_IMP_MODELS, 4, "type", t);
    int_kv(im, AR_IMP_MODELS, 4, m, "contextSize", path, "context_size", "", 0);
    int_kv(im, AR_IMP_MODELS, 4, m, "maxOutputTokens", path, "max_output_tokens", "", 0);
    yaml_node_t *tags = child(im, m, "tags");
    char tpath[96];
    snprintf(tpath, sizeof(tpath), "%s.tags", path);
    if (tags && ar_imp__is_seq(im, tags, tpath)) {
        ar_imp__line(im, AR_IMP_MODELS, 4, "tags:");
        for (size_t i = 0;; i++) {
            yaml_node_t *tag = ar_config__item(im->ctx, tags, i);
            if (!tag)
                break;
            const char *tv = ar_imp__str(im, tag);
            if (!tv) {
                ar_config__err(im->ctx, ar_config__line(tag), "%s[%zu]: expected a string", tpath,
                               i);
                continue;
            }
            ar_imp__item(im, AR_IMP_MODELS, 6, tv);
        }
    }
    /* false is airouter's default: only true is worth its "not used yet" warning */
    bool json = false;
    yaml_node_t *jn = child(im, m, "jsonResponse");
    char jpath[96];
    snprintf(jpath, sizeof(jpath), "%s.jsonResponse", path);
    if (ar_imp__str(im, jn) && ar_imp__bool(im, jn, jpath, &json) == 0 && json)
        ar_imp__kvf(im, AR_IMP_MODELS, 4, "json_response", "true");
    bool_kv(im, AR_IMP_MODELS, 4, m, "available", path, "available");
    int_kv(im, AR_IMP_MODELS, 4, m, "weight", path, "weight", "", 0);
    int_kv(im, AR_IMP_MODELS, 4, m, "maxConcurrent", path, "max_concurrent", "", 1);
}

void ar_import__freerouter(ar_imp_t *im, ar_config_ctx_t *cfg_ctx, yaml_node_t *cfg_root,
                           ar_config_ctx_t *models_ctx, yaml_node_t *models_root)
{
    static const char *const known[] = {"modelsFile",     "providers",    "routing",
                                        "circuitBreaker", "rateLimiting", NULL};
    provs_t ps = {0};
    im->ctx = cfg_ctx;
    ar_imp__line(im, AR_IMP_HEAD, 0,
                 "# Clients now call http://HOST:8080/v1/... (the router served /api/v1).");
    ar_imp__skip_rest(im, AR_IMP_HEAD, 0, cfg_root, "", known, "airouter has no such setting");
    ar_imp__line(im, AR_IMP_SERVER, 2,
                 "# the free-model router asked clients for no key; airouter requires a master "
                 "key");
    ar_imp__kv(im, AR_IMP_SERVER, 2, "master_key", "os.environ/MASTER_KEY");
    providers(im, child(im, cfg_root, "providers"), &ps);
    routing(im, child(im, cfg_root, "routing"), &ps);
    breaker(im, child(im, cfg_root, "circuitBreaker"));
    rate_limiting(im, child(im, cfg_root, "rateLimiting"));

    im->ctx = models_ctx;
    bool *used = ar_xcalloc(im->creds_cnt + 1, sizeof(bool));
    yaml_node_t *list = child(im, models_root, "models");
    if (!list)
        ar_config__err(models_ctx, 1,
                       "models is required (is this a free-llm-router models.yaml?)");
    else if (ar_imp__is_seq(im, list, "models")) {
        for (size_t i = 0;; i++) {
            yaml_node_t *m = ar_config__item(im->ctx, list, i);
            if (!m)
                break;
            model(im, m, i, &ps, used);
        }
    }
    /* A provider that serves no listed model is there for the fallback alone: like the
     * paid model of the free-model router, it is tried only when the others failed. */
    for (size_t i = 0; i < im->creds_cnt; i++) {
        if (!used[i]) {
            im->creds[i].is_fallback = true;
            if (ar_buf_appendf(&im->creds[i].notes,
                               "  # serves no model of models.yaml: kept for routing.fallback "
                               "alone, tried only when the others failed\n") != 0)
                (void)0; /* the output cap: no config comes near it */
        }
    }
    ar_free(used);
    if (ps.items)
        ar_free(ps.items);
    im->ctx = cfg_ctx;
}
