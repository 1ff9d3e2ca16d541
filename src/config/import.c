/*
 * import.c: `airouter config import`, the part every source system shares: reading the
 * source files, typed reads of their nodes with FILE:LINE errors, YAML text output with
 * quoting, the `# not carried over` comments, credentials merged when two sources name the
 * same upstream account, and the assembly of the output in the loader's section order.
 * The converters themselves live in import_litellm.c and import_freerouter.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/import_int.h"
#include "core/mem.h"
#include "core/str.h"

#define MAX_SOURCE_BYTES (16u << 20)
#define MAX_OUTPUT_BYTES (64u << 20)

int ar_config_import_from(const char *name, ar_import_from_t *out)
{
    if (!name)
        return -1;
    if (strcmp(name, "litellm") == 0) {
        *out = AR_IMPORT_LITELLM;
        return 0;
    }
    if (strcmp(name, "free-llm-router") == 0 || strcmp(name, "free-router") == 0) {
        *out = AR_IMPORT_FREE_LLM_ROUTER;
        return 0;
    }
    return -1;
}

/* ---- reading ---- */

const char *ar_imp__str(ar_imp_t *im, yaml_node_t *node)
{
    (void)im;
    if (!node || node->type != YAML_SCALAR_NODE)
        return NULL;
    const char *v = (const char *)node->data.scalar.value;
    if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (v[0] == '\0' || strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0))
        return NULL;
    return v;
}

static const char *kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a scalar";
    }
}

bool ar_imp__is_map(ar_imp_t *im, yaml_node_t *node, const char *path)
{
    if (node && node->type == YAML_MAPPING_NODE)
        return true;
    if (node && ar_imp__str(im, node) == NULL && node->type == YAML_SCALAR_NODE)
        return false; /* null: absent, nothing to say */
    if (node)
        ar_config__err(im->ctx, ar_config__line(node), "%s: expected a mapping, got %s", path,
                       kind(node));
    return false;
}

bool ar_imp__is_seq(ar_imp_t *im, yaml_node_t *node, const char *path)
{
    if (node && node->type == YAML_SEQUENCE_NODE)
        return true;
    if (node && ar_imp__str(im, node) == NULL && node->type == YAML_SCALAR_NODE)
        return false;
    if (node)
        ar_config__err(im->ctx, ar_config__line(node), "%s: expected a list, got %s", path,
                       kind(node));
    return false;
}

static const char *scalar_or_err(ar_imp_t *im, yaml_node_t *node, const char *path,
                                 const char *what)
{
    const char *v = ar_imp__str(im, node);
    if (!v)
        ar_config__err(im->ctx, ar_config__line(node), "%s: expected %s, got %s", path, what,
                       node->type == YAML_SCALAR_NODE ? "nothing" : kind(node));
    return v;
}

int ar_imp__int(ar_imp_t *im, yaml_node_t *node, const char *path, int64_t *out)
{
    const char *v = scalar_or_err(im, node, path, "an integer");
    if (!v)
        return -1;
    if (ar_parse_int64(ar_span_cstr(v), out) != 0) {
        char show[64];
        ar_config__err(im->ctx, ar_config__line(node), "%s: expected an integer, got '%s'", path,
                       ar_config__show(v, show, sizeof(show)));
        return -1;
    }
    return 0;
}

int ar_imp__num(ar_imp_t *im, yaml_node_t *node, const char *path, double *out)
{
    const char *v = scalar_or_err(im, node, path, "a number");
    if (!v)
        return -1;
    if (ar_parse_double(ar_span_cstr(v), out) != 0) {
        char show[64];
        ar_config__err(im->ctx, ar_config__line(node), "%s: expected a number, got '%s'", path,
                       ar_config__show(v, show, sizeof(show)));
        return -1;
    }
    return 0;
}

int ar_imp__bool(ar_imp_t *im, yaml_node_t *node, const char *path, bool *out)
{
    const char *v = scalar_or_err(im, node, path, "true or false");
    if (!v)
        return -1;
    if (ar_parse_bool(ar_span_cstr(v), out) != 0) {
        char show[64];
        ar_config__err(im->ctx, ar_config__line(node), "%s: expected true or false, got '%s'", path,
                       ar_config__show(v, show, sizeof(show)));
        return -1;
    }
    return 0;
}

bool ar_imp__known(const char *key, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(key, *list) == 0)
            return true;
    }
    return false;
}

/* ---- writing ---- */

static void bput(ar_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bput(ar_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* only the 64 MiB cap can fail, and no config comes near it: the output is cut short */
    if (ar_buf_vappendf(b, fmt, ap) != 0)
        (void)0;
    va_end(ap);
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Plain when YAML reads it back as the same string; double-quoted (JSON escapes, which
 * YAML shares) otherwise. A leading digit is quoted too: `2024-10-21` stays a string for
 * every reader, not only for ours. */
static bool plain_ok(const char *s)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off",
                                        "null", "~",     "y",   "n",  NULL};
    if (!s[0] || !(is_alpha(s[0]) || s[0] == '/' || s[0] == '.' || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!(is_alpha(c) || (c >= '0' && c <= '9') || strchr("_./:@+-", c)))
            return false;
    }
    for (const char *const *w = words; *w; w++) {
        if (strcasecmp(s, *w) == 0)
            return false;
    }
    return true;
}

static void put_scalar(ar_buf_t *b, const char *v)
{
    if (plain_ok(v)) {
        bput(b, "%s", v);
        return;
    }
    bput(b, "\"");
    if (ar_buf_append_json_escaped(b, ar_span_cstr(v)) != 0)
        (void)0; /* cap reached: see bput */
    bput(b, "\"");
}

void ar_imp__kv(ar_imp_t *im, ar_imp_sec_t sec, int indent, const char *key, const char *value)
{
    bput(&im->sec[sec], "%*s%s: ", indent, "", key);
    put_scalar(&im->sec[sec], value);
    bput(&im->sec[sec], "\n");
}

void ar_imp__item(ar_imp_t *im, ar_imp_sec_t sec, int indent, const char *value)
{
    bput(&im->sec[sec], "%*s- ", indent, "");
    put_scalar(&im->sec[sec], value);
    bput(&im->sec[sec], "\n");
}

void ar_imp__kvf(ar_imp_t *im, ar_imp_sec_t sec, int indent, const char *key, const char *fmt, ...)
{
    va_list ap;
    bput(&im->sec[sec], "%*s%s: ", indent, "", key);
    va_start(ap, fmt);
    if (ar_buf_vappendf(&im->sec[sec], fmt, ap) != 0)
        (void)0;
    va_end(ap);
    bput(&im->sec[sec], "\n");
}

void ar_imp__line(ar_imp_t *im, ar_imp_sec_t sec, int indent, const char *fmt, ...)
{
    va_list ap;
    bput(&im->sec[sec], "%*s", indent, "");
    va_start(ap, fmt);
    if (ar_buf_vappendf(&im->sec[sec], fmt, ap) != 0)
        (void)0;
    va_end(ap);
    bput(&im->sec[sec], "\n");
}

static void vskip(ar_imp_t *im, ar_buf_t *b, int indent, const char *path, yaml_node_t *node,
                  const char *fmt, va_list ap)
{
    bput(b, "%*s# not carried over: %s", indent, "", path);
    if (node)
        bput(b, " (line %d)", ar_config__line(node));
    bput(b, ": ");
    if (ar_buf_vappendf(b, fmt, ap) != 0)
        (void)0;
    bput(b, "\n");
    (void)im;
}

void ar_imp__skip(ar_imp_t *im, ar_imp_sec_t sec, int indent, const char *path, yaml_node_t *node,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vskip(im, &im->sec[sec], indent, path, node, fmt, ap);
    va_end(ap);
}

void ar_imp__skip_to(ar_imp_t *im, ar_buf_t *b, int indent, const char *path, yaml_node_t *node,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vskip(im, b, indent, path, node, fmt, ap);
    va_end(ap);
}

void ar_imp__skip_rest(ar_imp_t *im, ar_imp_sec_t sec, int indent, yaml_node_t *map,
                       const char *path, const char *const *known, const char *why)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&im->ctx->doc, p->key);
        const char *name = ar_imp__str(im, k);
        if (!name || ar_imp__known(name, known))
            continue;
        char kp[256];
        snprintf(kp, sizeof(kp), "%s%s%s", path, path[0] ? "." : "", name);
        ar_imp__skip(im, sec, indent, kp, k, "%s", why);
    }
}

/* ---- credentials ---- */

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static char *dup_or_null(const char *s)
{
    return s ? ar_xstrdup(s) : NULL;
}

ar_imp_cred_t *ar_imp__find_cred(ar_imp_t *im, const char *name)
{
    for (size_t i = 0; i < im->creds_cnt; i++) {
        if (strcmp(im->creds[i].name, name) == 0)
            return &im->creds[i];
    }
    return NULL;
}

ar_imp_cred_t *ar_imp__cred(ar_imp_t *im, const ar_imp_cred_t *w, const char *base)
{
    for (size_t i = 0; i < im->creds_cnt; i++) {
        ar_imp_cred_t *c = &im->creds[i];
        if (strcmp(c->type, w->type) == 0 && same(c->api_key, w->api_key) &&
            same(c->base_url, w->base_url) && same(c->api_version, w->api_version) &&
            same(c->project_id, w->project_id) && same(c->location, w->location) &&
            same(c->credentials_file, w->credentials_file) &&
            same(c->credentials_json, w->credentials_json))
            return c;
    }
    char name[128];
    snprintf(name, sizeof(name), "%s", base);
    for (int n = 2; ar_imp__find_cred(im, name); n++)
        snprintf(name, sizeof(name), "%s_%d", base, n);
    im->creds = ar_xrealloc(im->creds, (im->creds_cnt + 1) * sizeof(*im->creds));
    ar_imp_cred_t *c = &im->creds[im->creds_cnt++];
    memset(c, 0, sizeof(*c));
    c->name = ar_xstrdup(name);
    c->type = w->type;
    c->api_key = dup_or_null(w->api_key);
    c->base_url = dup_or_null(w->base_url);
    c->api_version = dup_or_null(w->api_version);
    c->project_id = dup_or_null(w->project_id);
    c->location = dup_or_null(w->location);
    c->credentials_file = dup_or_null(w->credentials_file);
    c->credentials_json = dup_or_null(w->credentials_json);
    c->is_fallback = w->is_fallback;
    ar_buf_init(&c->notes, MAX_OUTPUT_BYTES);
    return c;
}

static void put_cred(ar_buf_t *b, const ar_imp_cred_t *c)
{
    if (c->notes.len)
        bput(b, "%.*s", (int)c->notes.len, c->notes.ptr);
    const struct {
        const char *key;
        const char *value;
    } kv[] = {
        {"type", c->type},
        {"api_key", c->api_key},
        {"base_url", c->base_url},
        {"api_version", c->api_version},
        {"project_id", c->project_id},
        {"location", c->location},
        {"credentials_file", c->credentials_file},
        {"credentials_json", c->credentials_json},
    };
    bput(b, "  - name: ");
    put_scalar(b, c->name);
    bput(b, "\n");
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
        if (!kv[i].value)
            continue;
        bput(b, "    %s: ", kv[i].key);
        put_scalar(b, kv[i].value);
        bput(b, "\n");
    }
    if (c->is_fallback)
        bput(b, "    is_fallback: true\n");
}

static void cred_dispose(ar_imp_cred_t *c)
{
    char *strs[] = {c->name,       c->api_key,  c->base_url,         c->api_version,
                    c->project_id, c->location, c->credentials_file, c->credentials_json};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (strs[i])
            ar_free(strs[i]);
    }
    ar_buf_dispose(&c->notes);
}

/* ---- assembly ---- */

static void assemble(ar_imp_t *im, ar_buf_t *out)
{
    static const char *const names[AR_IMP_SEC_CNT] = {
        [AR_IMP_SERVER] = "server",           [AR_IMP_ROUTING] = "routing",
        [AR_IMP_FAIL2BAN] = "fail2ban",       [AR_IMP_BREAKER] = "circuit_breaker",
        [AR_IMP_RATELIMIT] = "rate_limiting", [AR_IMP_CREDS] = "credentials",
        [AR_IMP_MODELS] = "models",
    };
    for (int s = 0; s < AR_IMP_SEC_CNT; s++) {
        ar_buf_t *b = &im->sec[s];
        if (s == AR_IMP_HEAD) {
            bput(out, "%.*s", (int)b->len, b->ptr ? b->ptr : "");
            continue;
        }
        if (b->len == 0 && !(s == AR_IMP_CREDS && im->creds_cnt))
            continue;
        bput(out, "\n%s:\n%.*s", names[s], (int)b->len, b->ptr ? b->ptr : "");
        if (s == AR_IMP_CREDS) {
            for (size_t i = 0; i < im->creds_cnt; i++)
                put_cred(out, &im->creds[i]);
        }
    }
}

/* ---- loading ---- */

yaml_node_t *ar_imp__load(ar_config_ctx_t *ctx, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_node_t *root = NULL;
    if (!yaml_parser_initialize(&parser)) {
        ar_config__err(ctx, 1, "cannot initialise the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &ctx->doc)) {
        ar_config__err(ctx, (int)parser.problem_mark.line + 1, "YAML syntax error: %s",
                       parser.problem ? parser.problem : "unknown problem");
        yaml_parser_delete(&parser);
        return NULL;
    }
    root = yaml_document_get_root_node(&ctx->doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        ar_config__err(ctx, 1, "the top level must be a mapping, got %s",
                       root ? kind(root) : "nothing");
        yaml_document_delete(&ctx->doc);
        root = NULL;
    }
    yaml_parser_delete(&parser);
    return root;
}

typedef struct source {
    ar_config_ctx_t ctx;
    char *path; /* ctx.name */
    ar_buf_t text;
    yaml_node_t *root;
    bool loaded;
} source_t;

static void source_error(ar_strlist_t *errors, const char *path, int err)
{
    if (!errors)
        return;
    const char *why = strerror(err);
    int n = snprintf(NULL, 0, "%s: cannot read: %s", path, why);
    char *s = ar_xmalloc((size_t)(n > 0 ? n : 0) + 1);
    snprintf(s, (size_t)(n > 0 ? n : 0) + 1, "%s: cannot read: %s", path, why);
    errors->items = ar_xrealloc(errors->items, (errors->cnt + 1) * sizeof(char *));
    errors->items[errors->cnt++] = s;
}

/* Reads and parses path. @return 0, AR_EIO (reported to errors), or AR_EINVAL (in ctx). */
static int source_open(source_t *s, const char *path, ar_strlist_t *errors)
{
    int err = 0;
    memset(s, 0, sizeof(*s));
    s->path = ar_xstrdup(path);
    s->ctx.name = s->path;
    ar_buf_init(&s->text, MAX_SOURCE_BYTES);
    if (ar_config__read_file(path, &s->text, &err) != 0) {
        source_error(errors, path, err);
        return AR_EIO;
    }
    s->root = ar_imp__load(&s->ctx, s->text.ptr ? s->text.ptr : "", s->text.len);
    s->loaded = s->root != NULL;
    return s->root ? 0 : AR_EINVAL;
}

/* Reports the source's problems; @return how many there were. */
static size_t source_close(source_t *s, ar_strlist_t *errors)
{
    size_t n = s->ctx.errs.cnt;
    if (s->loaded)
        yaml_document_delete(&s->ctx.doc);
    ar_config__flush(s->ctx.name, &s->ctx.errs, errors);
    ar_config__flush(s->ctx.name, &s->ctx.warns, NULL);
    ar_config__env_dispose(&s->ctx);
    ar_buf_dispose(&s->text);
    ar_free(s->path);
    return n;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* free-llm-router's config.yaml names its models.yaml, relative to itself. */
static char *models_path_of(source_t *cfg, const char *cfg_path)
{
    yaml_node_t *n = ar_config__child(&cfg->ctx, cfg->root, "modelsFile");
    const char *v = n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
    if (!v || !v[0]) {
        ar_config__err(&cfg->ctx, 1,
                       "no modelsFile: give the models.yaml as the second file "
                       "(airouter config import --from free-llm-router CONFIG MODELS)");
        return NULL;
    }
    if (strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0) {
        ar_config__err(&cfg->ctx, ar_config__line(n),
                       "modelsFile is a URL: download it and give it as the second file");
        return NULL;
    }
    const char *slash = strrchr(cfg_path, '/');
    if (v[0] == '/' || !slash)
        return ar_xstrdup(v);
    size_t dir = (size_t)(slash - cfg_path) + 1, len = strlen(v);
    char *p = ar_xmalloc(dir + len + 1);
    memcpy(p, cfg_path, dir);
    memcpy(p + dir, v, len + 1);
    return p;
}

int ar_config_import(ar_import_from_t from, const char *path, const char *models_path,
                     ar_buf_t *out, ar_strlist_t *errors)
{
    ar_imp_t im;
    source_t cfg, models;
    bool have_models = false;
    int rc;

    memset(&im, 0, sizeof(im));
    memset(&models, 0, sizeof(models));
    for (int s = 0; s < AR_IMP_SEC_CNT; s++)
        ar_buf_init(&im.sec[s], MAX_OUTPUT_BYTES);
    rc = source_open(&cfg, path, errors);
    if (rc == 0 && from == AR_IMPORT_FREE_LLM_ROUTER) {
        char *mp = models_path ? ar_xstrdup(models_path) : models_path_of(&cfg, path);
        if (mp) {
            rc = source_open(&models, mp, errors);
            have_models = true;
            ar_free(mp);
        } else {
            rc = AR_EINVAL;
        }
    }
    if (rc == 0) {
        im.ctx = &cfg.ctx;
        ar_imp__line(&im, AR_IMP_HEAD, 0, "# airouter configuration converted from %s %s",
                     from == AR_IMPORT_LITELLM ? "the LiteLLM proxy config"
                                               : "the free-llm-router config",
                     base_name(path));
        if (have_models)
            ar_imp__line(&im, AR_IMP_HEAD, 0, "# and %s", base_name(models.ctx.name));
        ar_imp__line(&im, AR_IMP_HEAD, 0,
                     "# by `airouter config import`. Check it with `airouter config check "
                     "-config FILE`.");
        if (from == AR_IMPORT_LITELLM)
            ar_import__litellm(&im, cfg.root);
        else
            ar_import__freerouter(&im, &cfg.ctx, cfg.root, &models.ctx, models.root);
    }
    size_t problems = source_close(&cfg, errors);
    if (have_models && models.path)
        problems += source_close(&models, errors);
    if (rc == 0 && problems)
        rc = AR_EINVAL;
    if (rc == 0)
        assemble(&im, out);
    for (int s = 0; s < AR_IMP_SEC_CNT; s++)
        ar_buf_dispose(&im.sec[s]);
    for (size_t i = 0; i < im.creds_cnt; i++)
        cred_dispose(&im.creds[i]);
    if (im.creds)
        ar_free(im.creds);
    return rc;
}
