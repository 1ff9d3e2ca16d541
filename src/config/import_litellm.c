/*
 * import_litellm.c: a LiteLLM proxy config.yaml converted into airouter configuration
 * (`airouter config import --from litellm`). model_list entries become credentials (one per
 * distinct provider, api_base, api_key and version) and models; router_settings,
 * litellm_settings and general_settings go to the nearest airouter settings. Every key it
 * does not carry over is named in a `# not carried over` comment next to where it would
 * have gone. The mapping is tabled in docs/configuration.md ("Migrating from LiteLLM").
 */
#include <stdio.h>
#include <string.h>

#include "config/import_int.h"
#include "core/mem.h"

/* A LiteLLM provider prefix (`openai/gpt-4o`) and what airouter does with it. */
typedef struct provider {
    const char *prefix;
    const char *type;     /* airouter credential type */
    const char *base_url; /* for OpenAI-compatible services; NULL: the type's default */
    const char *key_env;  /* the variable LiteLLM reads when api_key is not set */
    const char *base_env; /* the variable LiteLLM reads when api_base is required and unset */
} provider_t;

static const provider_t providers[] = {
    {"openai", "openai", NULL, "OPENAI_API_KEY", NULL},
    {"azure", "azure", NULL, "AZURE_API_KEY", "AZURE_API_BASE"},
    {"anthropic", "anthropic", NULL, "ANTHROPIC_API_KEY", NULL},
    {"gemini", "gemini", NULL, "GEMINI_API_KEY", NULL},
    {"vertex_ai", "vertex-ai", NULL, NULL, NULL},
    {"deepseek", "openai", "https://api.deepseek.com", "DEEPSEEK_API_KEY", NULL},
    {"openrouter", "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", NULL},
    {"groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY", NULL},
    {"mistral", "openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", NULL},
    {"together_ai", "openai", "https://api.together.xyz/v1", "TOGETHERAI_API_KEY", NULL},
    {"fireworks_ai", "openai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_AI_API_KEY",
     NULL},
    {"xai", "openai", "https://api.x.ai/v1", "XAI_API_KEY", NULL},
    {"perplexity", "openai", "https://api.perplexity.ai", "PERPLEXITYAI_API_KEY", NULL},
    {"hosted_vllm", "openai", NULL, NULL, "HOSTED_VLLM_API_BASE"},
    {"ollama", "openai", "http://localhost:11434/v1", NULL, NULL},
    {"ollama_chat", "openai", "http://localhost:11434/v1", NULL, NULL},
};

static const provider_t *find_provider(const char *prefix, size_t len)
{
    for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++) {
        if (strlen(providers[i].prefix) == len && strncmp(providers[i].prefix, prefix, len) == 0)
            return &providers[i];
    }
    return NULL;
}

/* A credential name from a URL's host: its first label, [A-Za-z0-9_] only. */
static void host_label(const char *url, char *out, size_t outlen)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = 0;
    for (; *h && *h != '.' && *h != ':' && *h != '/' && n + 1 < outlen; h++) {
        char c = *h;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        out[n++] = ok ? c : '_';
    }
    out[n] = '\0';
}

/* A deployment already written: airouter refuses the same (name, credential, model) twice. */
typedef struct seen {
    char **items;
    size_t cnt;
} seen_t;

static bool seen_add(seen_t *s, const char *name, const char *cred, const char *model)
{
    size_t n = strlen(name) + strlen(cred) + strlen(model) + 3;
    char *k = ar_xmalloc(n);
    snprintf(k, n, "%s\n%s\n%s", name, cred, model);
    for (size_t i = 0; i < s->cnt; i++) {
        if (strcmp(s->items[i], k) == 0) {
            ar_free(k);
            return false;
        }
    }
    s->items = ar_xrealloc(s->items, (s->cnt + 1) * sizeof(char *));
    s->items[s->cnt++] = k;
    return true;
}

static void seen_dispose(seen_t *s)
{
    for (size_t i = 0; i < s->cnt; i++)
        ar_free(s->items[i]);
    if (s->items)
        ar_free(s->items);
}

static yaml_node_t *child(ar_imp_t *im, yaml_node_t *map, const char *key)
{
    return map && map->type == YAML_MAPPING_NODE ? ar_config__child(im->ctx, map, key) : NULL;
}

/* Copies an integer or number key as written (after checking it) into a model entry. */
static void copy_int(ar_imp_t *im, yaml_node_t *map, const char *key, const char *path,
                     const char *to, int64_t min)
{
    yaml_node_t *n = child(im, map, key);
    int64_t v;
    char p[160];
    if (!n || !ar_imp__str(im, n))
        return;
    snprintf(p, sizeof(p), "%s.%s", path, key);
    if (ar_imp__int(im, n, p, &v) != 0)
        return;
    if (v < min) {
        ar_imp__skip(im, AR_IMP_MODELS, 4, p, n, "%lld is below airouter's minimum %lld",
                     (long long)v, (long long)min);
        return;
    }
    ar_imp__kvf(im, AR_IMP_MODELS, 4, to, "%lld", (long long)v);
}

static void copy_num(ar_imp_t *im, yaml_node_t *map, const char *key, const char *path)
{
    yaml_node_t *n = child(im, map, key);
    double v;
    char p[160];
    if (!n || !ar_imp__str(im, n))
        return;
    snprintf(p, sizeof(p), "%s.%s", path, key);
    if (ar_imp__num(im, n, p, &v) == 0)
        ar_imp__kvf(im, AR_IMP_MODELS, 4, key, "%s", ar_imp__str(im, n));
}

static const char *const params_known[] = {
    "model",
    "api_key",
    "api_base",
    "base_url",
    "api_version",
    "rpm",
    "tpm",
    "weight",
    "max_parallel_requests",
    "input_cost_per_token",
    "output_cost_per_token",
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
    NULL,
};
static const char *const info_known[] = {
    "max_input_tokens",     "max_output_tokens",     "max_tokens",
    "input_cost_per_token", "output_cost_per_token", NULL,
};

/* Fills want (strings borrowed from the document) for one deployment's litellm_params. */
static void cred_of(ar_imp_t *im, yaml_node_t *params, const provider_t *pv, ar_imp_cred_t *w,
                    char *base, size_t baselen)
{
    const char *api_base = ar_imp__str(im, child(im, params, "api_base"));
    if (!api_base)
        api_base = ar_imp__str(im, child(im, params, "base_url"));
    const char *api_key = ar_imp__str(im, child(im, params, "api_key"));
    static char key_ref[96], base_ref[96];

    memset(w, 0, sizeof(*w));
    w->type = pv->type;
    w->base_url = (char *)(api_base ? api_base : pv->base_url);
    if (!w->base_url && pv->base_env) {
        snprintf(base_ref, sizeof(base_ref), "os.environ/%s", pv->base_env);
        w->base_url = base_ref;
    }
    w->api_key = (char *)api_key;
    /* LiteLLM falls back on the provider's variable; a self-hosted base needs no key */
    if (!api_key && pv->key_env && !(api_base && strcmp(pv->type, "openai") == 0)) {
        snprintf(key_ref, sizeof(key_ref), "os.environ/%s", pv->key_env);
        w->api_key = key_ref;
    }
    if (strcmp(pv->type, "azure") == 0)
        w->api_version = (char *)ar_imp__str(im, child(im, params, "api_version"));
    if (strcmp(pv->type, "vertex-ai") == 0) {
        const char *vc = ar_imp__str(im, child(im, params, "vertex_credentials"));
        w->project_id = (char *)ar_imp__str(im, child(im, params, "vertex_project"));
        if (!w->project_id)
            w->project_id = "os.environ/VERTEXAI_PROJECT";
        w->location = (char *)ar_imp__str(im, child(im, params, "vertex_location"));
        if (!w->location)
            w->location = "us-central1";
        if (!vc)
            w->credentials_file = "os.environ/GOOGLE_APPLICATION_CREDENTIALS";
        else if (vc[0] == '{' || strncmp(vc, "os.environ/", 11) == 0)
            w->credentials_json = (char *)vc;
        else
            w->credentials_file = (char *)vc;
        if (!api_key)
            w->api_key = NULL;
        else
            w->credentials_file = w->credentials_json = NULL; /* an API key instead */
    }
    char label[48] = "";
    if (api_base && (strcmp(pv->type, "openai") == 0 || strcmp(pv->type, "azure") == 0))
        host_label(api_base, label, sizeof(label));
    if (label[0] && strcmp(pv->type, "azure") == 0)
        snprintf(base, baselen, "azure_%s", label);
    else if (label[0] && strcmp(pv->prefix, "openai") == 0 && strcmp(label, "api") != 0)
        snprintf(base, baselen, "%s", label);
    else
        snprintf(base, baselen, "%s", pv->prefix);
}

static void deployment(ar_imp_t *im, yaml_node_t *entry, size_t idx, seen_t *seen)
{
    char path[64], ppath[96], ipath[96];
    snprintf(path, sizeof(path), "model_list[%zu]", idx);
    snprintf(ppath, sizeof(ppath), "%s.litellm_params", path);
    snprintf(ipath, sizeof(ipath), "%s.model_info", path);
    if (!ar_imp__is_map(im, entry, path))
        return;
    yaml_node_t *name_n = child(im, entry, "model_name");
    yaml_node_t *params = child(im, entry, "litellm_params");
    yaml_node_t *info = child(im, entry, "model_info");
    const char *name = ar_imp__str(im, name_n);
    if (!name || name_n->type != YAML_SCALAR_NODE) {
        ar_config__err(im->ctx, ar_config__line(entry), "%s.model_name is required", path);
        return;
    }
    if (!params) {
        ar_config__err(im->ctx, ar_config__line(entry), "%s.litellm_params is required", path);
        return;
    }
    if (!ar_imp__is_map(im, params, ppath) || (info && !ar_imp__is_map(im, info, ipath)))
        return;
    yaml_node_t *model_n = child(im, params, "model");
    const char *model = ar_imp__str(im, model_n);
    if (!model) {
        ar_config__err(im->ctx, ar_config__line(params), "%s.model is required", ppath);
        return;
    }

    /* `provider/upstream`; without a prefix LiteLLM guesses from the name */
    const char *slash = strchr(model, '/');
    const provider_t *pv;
    const char *upstream = model;
    if (slash) {
        pv = find_provider(model, (size_t)(slash - model));
        upstream = slash + 1;
        if (!pv) {
            ar_imp__skip(im, AR_IMP_MODELS, 2, path, entry,
                         "model '%s': provider '%.*s' has no airouter credential type", name,
                         (int)(slash - model), model);
            return;
        }
    } else {
        pv = find_provider(strncmp(model, "claude", 6) == 0 ? "anthropic" : "openai",
                           strncmp(model, "claude", 6) == 0 ? 9 : 6);
    }

    ar_imp_cred_t want;
    char base[64];
    cred_of(im, params, pv, &want, base, sizeof(base));
    ar_imp_cred_t *c = ar_imp__cred(im, &want, base);
    if (!seen_add(seen, name, c->name, upstream)) {
        ar_imp__skip(im, AR_IMP_MODELS, 2, path, entry,
                     "the same model '%s' on credential %s was listed before", name, c->name);
        return;
    }

    ar_imp__skip_rest(im, AR_IMP_MODELS, 2, params, ppath, params_known,
                      "a LiteLLM per-deployment parameter airouter has no setting for");
    ar_imp__skip_rest(im, AR_IMP_MODELS, 2, info, ipath, info_known,
                      "model_info that airouter does not use");
    yaml_node_t *ver = child(im, params, "api_version");
    if (strcmp(pv->type, "azure") != 0 && ar_imp__str(im, ver)) {
        char p[128];
        snprintf(p, sizeof(p), "%s.api_version", ppath);
        ar_imp__skip(im, AR_IMP_MODELS, 2, p, ver, "only azure credentials take an api_version");
    }
    ar_imp__kv(im, AR_IMP_MODELS, 2, "- name", name);
    ar_imp__kv(im, AR_IMP_MODELS, 4, "credential", c->name);
    if (strcmp(upstream, name) != 0)
        ar_imp__kv(im, AR_IMP_MODELS, 4, "model", upstream);
    copy_int(im, params, "rpm", ppath, "rpm", -1);
    copy_int(im, params, "tpm", ppath, "tpm", -1);
    copy_int(im, params, "weight", ppath, "weight", 0);
    copy_int(im, params, "max_parallel_requests", ppath, "max_concurrent", 1);
    copy_int(im, info, "max_input_tokens", ipath, "context_size", 0);
    if (child(im, info, "max_output_tokens"))
        copy_int(im, info, "max_output_tokens", ipath, "max_output_tokens", 0);
    else
        copy_int(im, info, "max_tokens", ipath, "max_output_tokens", 0);
    bool in_params = child(im, params, "input_cost_per_token") != NULL ||
                     child(im, params, "output_cost_per_token") != NULL;
    copy_num(im, in_params ? params : info, "input_cost_per_token", in_params ? ppath : ipath);
    copy_num(im, in_params ? params : info, "output_cost_per_token", in_params ? ppath : ipath);
}

/* ---- settings ---- */

/* A number of seconds (LiteLLM writes `30` or `0.5`) as an airouter duration. */
static int seconds(ar_imp_t *im, yaml_node_t *n, const char *path, char *out, size_t outlen)
{
    double v;
    if (ar_imp__num(im, n, path, &v) != 0)
        return -1;
    if (v < 0) {
        ar_config__err(im->ctx, ar_config__line(n), "%s: must not be negative", path);
        return -1;
    }
    snprintf(out, outlen, "%ss", ar_imp__str(im, n));
    return 0;
}

/* Why a settings key is not carried over, where there is more to say than "no setting". */
static const struct {
    const char *key;
    const char *why;
} reasons[] = {
    {"fallbacks", "airouter has one fallback for every model (routing.fallback: a credential "
                  "and an upstream model), not one per model group"},
    {"context_window_fallbacks", "airouter does not pick a model by context window"},
    {"content_policy_fallbacks", "airouter does not retry content-policy refusals elsewhere"},
    {"default_fallbacks", "airouter has one fallback (routing.fallback): set it by hand"},
    {"model_group_alias", "airouter has no model aliases in its config (keys have aliases)"},
    {"redis_host", "set storage.redis_url to share RPM limits between instances"},
    {"redis_port", "set storage.redis_url to share RPM limits between instances"},
    {"redis_password", "set storage.redis_url to share RPM limits between instances"},
    {"redis_url", "set storage.redis_url to share RPM limits between instances"},
    {"database_url", "airouter keeps keys, plans and spend in its own store "
                     "(storage.database_url, SQLite); LiteLLM's database is not read"},
    {"drop_params", "airouter translates or drops what each provider does not take itself"},
    {"success_callback", "airouter has no callbacks: use /metrics and its logs"},
    {"failure_callback", "airouter has no callbacks: use /metrics and its logs"},
    {"callbacks", "airouter has no callbacks: use /metrics and its logs"},
    {"cache", "airouter does not cache answers"},
    {"cache_params", "airouter does not cache answers"},
    {"alerting", "airouter has no alerting: use /metrics"},
    {"environment_variables", "set these variables in airouter's environment"},
};

static void skip_settings(ar_imp_t *im, ar_imp_sec_t sec, int indent, yaml_node_t *map,
                          const char *path, const char *const *known)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&im->ctx->doc, p->key);
        const char *name = ar_imp__str(im, k);
        if (!name || ar_imp__known(name, known))
            continue;
        const char *why = "airouter has no such setting";
        for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
            if (strcmp(reasons[i].key, name) == 0)
                why = reasons[i].why;
        }
        char kp[160];
        snprintf(kp, sizeof(kp), "%s%s%s", path, path[0] ? "." : "", name);
        ar_imp__skip(im, sec, indent, kp, k, "%s", why);
    }
}

static const struct {
    const char *litellm;
    const char *airouter; /* NULL: none */
} strategies[] = {
    {"simple-shuffle", "weighted"},
    {"least-busy", "least_busy"},
    {"latency-based-routing", "lowest_latency"},
    {"usage-based-routing", NULL},
    {"usage-based-routing-v2", NULL},
    {"cost-based-routing", NULL},
};

static void router_settings(ar_imp_t *im, yaml_node_t *rs, yaml_node_t *ls)
{
    static const char *const known[] = {
        "routing_strategy", "num_retries", "allowed_fails", "cooldown_time", "retry_after",
        "timeout",          NULL};
    char v[64];
    yaml_node_t *n;
    if ((n = child(im, rs, "routing_strategy")) && ar_imp__str(im, n)) {
        const char *s = ar_imp__str(im, n);
        size_t i = 0;
        while (i < sizeof(strategies) / sizeof(strategies[0]) && strcmp(strategies[i].litellm, s))
            i++;
        if (i < sizeof(strategies) / sizeof(strategies[0]) && strategies[i].airouter)
            ar_imp__kv(im, AR_IMP_ROUTING, 2, "strategy", strategies[i].airouter);
        else
            ar_imp__skip(im, AR_IMP_ROUTING, 2, "router_settings.routing_strategy", n,
                         "airouter has no '%s' strategy (round_robin is used; rpm and tpm "
                         "limits still apply to each deployment)",
                         s);
    }
    /* router_settings win over litellm_settings, as in LiteLLM */
    const char *rpath = "router_settings.num_retries";
    if (!((n = child(im, rs, "num_retries")) && ar_imp__str(im, n))) {
        n = child(im, ls, "num_retries");
        rpath = "litellm_settings.num_retries";
    } else if (ar_imp__str(im, child(im, ls, "num_retries"))) {
        ar_imp__skip(im, AR_IMP_ROUTING, 2, "litellm_settings.num_retries",
                     child(im, ls, "num_retries"), "router_settings.num_retries wins");
    }
    int64_t i64;
    if (n && ar_imp__str(im, n) && ar_imp__int(im, n, rpath, &i64) == 0) {
        if (i64 >= 0 && i64 <= 100)
            ar_imp__kvf(im, AR_IMP_ROUTING, 2, "max_retries", "%lld", (long long)i64);
        else
            ar_imp__skip(im, AR_IMP_ROUTING, 2, rpath, n, "routing.max_retries is 0-100");
    }
    if ((n = child(im, rs, "retry_after")) && ar_imp__str(im, n) &&
        seconds(im, n, "router_settings.retry_after", v, sizeof(v)) == 0)
        ar_imp__kvf(im, AR_IMP_ROUTING, 2, "retry_delay", "%s", v);
    if ((n = child(im, rs, "allowed_fails")) && ar_imp__str(im, n) &&
        ar_imp__int(im, n, "router_settings.allowed_fails", &i64) == 0 && i64 >= 0) {
        ar_imp__line(im, AR_IMP_BREAKER, 2,
                     "# LiteLLM cools a deployment down after more than allowed_fails (%lld) "
                     "failures in a minute",
                     (long long)i64);
        ar_imp__kvf(im, AR_IMP_BREAKER, 2, "failure_threshold", "%lld", (long long)i64 + 1);
        ar_imp__kvf(im, AR_IMP_BREAKER, 2, "stats_window", "1m");
    }
    if ((n = child(im, rs, "cooldown_time")) && ar_imp__str(im, n) &&
        seconds(im, n, "router_settings.cooldown_time", v, sizeof(v)) == 0)
        ar_imp__kvf(im, AR_IMP_BREAKER, 2, "cooldown_period", "%s", v);
    skip_settings(im, AR_IMP_ROUTING, 2, rs, "router_settings", known);
}

static void server_settings(ar_imp_t *im, yaml_node_t *rs, yaml_node_t *ls, yaml_node_t *gs)
{
    static const char *const ls_known[] = {"num_retries", "request_timeout", "json_logs",
                                           "set_verbose", NULL};
    static const char *const gs_known[] = {"master_key", NULL};
    yaml_node_t *n = child(im, gs, "master_key");
    char v[64];
    if (ar_imp__str(im, n)) {
        ar_imp__kv(im, AR_IMP_SERVER, 2, "master_key", ar_imp__str(im, n));
    } else {
        ar_imp__line(im, AR_IMP_SERVER, 2,
                     "# general_settings has no master_key (LiteLLM then asks for no key); "
                     "airouter requires one");
        ar_imp__kv(im, AR_IMP_SERVER, 2, "master_key", "os.environ/LITELLM_MASTER_KEY");
    }
    const char *tpath = "router_settings.timeout";
    if (!((n = child(im, rs, "timeout")) && ar_imp__str(im, n))) {
        n = child(im, ls, "request_timeout");
        tpath = "litellm_settings.request_timeout";
    } else if (ar_imp__str(im, child(im, ls, "request_timeout"))) {
        ar_imp__skip(im, AR_IMP_SERVER, 2, "litellm_settings.request_timeout",
                     child(im, ls, "request_timeout"), "router_settings.timeout wins");
    }
    if (n && ar_imp__str(im, n) && seconds(im, n, tpath, v, sizeof(v)) == 0)
        ar_imp__kvf(im, AR_IMP_SERVER, 2, "request_timeout", "%s", v);
    bool b;
    if ((n = child(im, ls, "json_logs")) && ar_imp__str(im, n) &&
        ar_imp__bool(im, n, "litellm_settings.json_logs", &b) == 0 && b)
        ar_imp__kv(im, AR_IMP_SERVER, 2, "log_format", "json");
    if ((n = child(im, ls, "set_verbose")) && ar_imp__str(im, n) &&
        ar_imp__bool(im, n, "litellm_settings.set_verbose", &b) == 0 && b)
        ar_imp__kv(im, AR_IMP_SERVER, 2, "logging_level", "debug");
    skip_settings(im, AR_IMP_SERVER, 2, ls, "litellm_settings", ls_known);
    skip_settings(im, AR_IMP_SERVER, 2, gs, "general_settings", gs_known);
}

void ar_import__litellm(ar_imp_t *im, yaml_node_t *root)
{
    static const char *const known[] = {"model_list", "router_settings", "litellm_settings",
                                        "general_settings", NULL};
    yaml_node_t *list = child(im, root, "model_list");
    yaml_node_t *rs = child(im, root, "router_settings");
    yaml_node_t *ls = child(im, root, "litellm_settings");
    yaml_node_t *gs = child(im, root, "general_settings");
    seen_t seen = {0};

    if (!list) {
        ar_config__err(im->ctx, 1, "model_list is required (is this a LiteLLM config?)");
        return;
    }
    if (rs && !ar_imp__is_map(im, rs, "router_settings"))
        rs = NULL;
    if (ls && !ar_imp__is_map(im, ls, "litellm_settings"))
        ls = NULL;
    if (gs && !ar_imp__is_map(im, gs, "general_settings"))
        gs = NULL;
    skip_settings(im, AR_IMP_HEAD, 0, root, "", known);
    server_settings(im, rs, ls, gs);
    router_settings(im, rs, ls);
    if (ar_imp__is_seq(im, list, "model_list")) {
        for (size_t i = 0;; i++) {
            yaml_node_t *e = ar_config__item(im->ctx, list, i);
            if (!e)
                break;
            deployment(im, e, i, &seen);
        }
    }
    seen_dispose(&seen);
}
