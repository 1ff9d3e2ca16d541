/*
 * store_util.c: flag parsing, store opening and output helpers of the store commands
 * (store_cli.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/store_cli.h"
#include "config/config.h"
#include "core/str.h"

int ar_cli_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "airouter: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 2;
}

static bool is_bare(const char *const *bare, const char *a, size_t n)
{
    for (; bare && *bare; bare++) {
        if (strlen(*bare) == n && strncmp(*bare, a, n) == 0)
            return true;
    }
    return false;
}

int ar_cli_parse_flags(int argc, char **argv, int from, const char *const *bare, ar_cli_flags_t *f)
{
    memset(f, 0, sizeof(*f));
    f->config_path = "config.yaml";
    for (int i = from; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-')
            return ar_cli_usage_error("unexpected argument '%s'", a);
        a += a[1] == '-' ? 2 : 1;
        if (strcmp(a, "json") == 0) {
            f->json = true;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && is_bare(bare, a, n))
            v = "true";
        if (!v) {
            if (i + 1 >= argc)
                return ar_cli_usage_error("%s needs a value", argv[i]);
            v = argv[++i];
        }
        if (n == 6 && strncmp(a, "config", 6) == 0) {
            f->config_path = v;
            continue;
        }
        if (f->cnt == AR_CLI_MAX_FLAGS)
            return ar_cli_usage_error("too many flags at '%s'", argv[i]);
        f->names[f->cnt] = strndup(a, n);
        f->values[f->cnt++] = v;
    }
    return 0;
}

void ar_cli_flags_free(ar_cli_flags_t *f)
{
    for (size_t i = 0; i < f->cnt; i++)
        free((char *)f->names[i]);
}

const char *ar_cli_take(ar_cli_flags_t *f, const char *name)
{
    for (size_t i = 0; i < f->cnt; i++) {
        if (f->names[i] && strcmp(f->names[i], name) == 0) {
            free((char *)f->names[i]);
            f->names[i] = NULL;
            return f->values[i];
        }
    }
    return NULL;
}

int ar_cli_unknown_flags(ar_cli_flags_t *f, const char *command)
{
    for (size_t i = 0; i < f->cnt; i++) {
        if (f->names[i]) {
            fprintf(stderr, "airouter: %s: unknown flag --%s\n", command, f->names[i]);
            return 2;
        }
    }
    return 0;
}

int ar_cli_take_count(ar_cli_flags_t *f, const char *name, int64_t dflt, int64_t *out)
{
    const char *v = ar_cli_take(f, name);
    *out = dflt;
    if (!v)
        return 0;
    if (ar_parse_int64(ar_span_cstr(v), out) != 0 || *out < 0)
        return ar_cli_usage_error("--%s needs a whole number >= 0", name);
    return 0;
}

int ar_cli_take_id(ar_cli_flags_t *f, const char *name, const char *command, int64_t *out)
{
    const char *v = ar_cli_take(f, name);
    *out = 0;
    if (!v) {
        fprintf(stderr, "airouter: %s needs --%s ID\n", command, name);
        return 2;
    }
    if (ar_parse_int64(ar_span_cstr(v), out) != 0 || *out <= 0) {
        fprintf(stderr, "airouter: %s: --%s needs an id (a whole number > 0), not '%s'\n", command,
                name, v);
        return 2;
    }
    return 0;
}

int ar_cli_open_store(const char *config_path, ar_store_t **s, char **secret_key)
{
    ar_config_t *cfg = NULL;
    ar_strlist_t errors = {0};
    *secret_key = NULL;
    if (ar_config_load(config_path, &cfg, &errors) != 0) {
        for (size_t i = 0; i < errors.cnt; i++)
            fprintf(stderr, "%s\n", errors.items[i]);
        ar_strlist_dispose(&errors);
        return 2;
    }
    char err[512];
    int rc = ar_store_open(cfg->storage.database_url, s, err, sizeof(err));
    if (rc == 0 && cfg->storage.secret_key)
        *secret_key = strdup(cfg->storage.secret_key);
    ar_config_unref(cfg);
    if (rc) {
        fprintf(stderr, "airouter: %s\n", err);
        return rc == AR_EINVAL ? 2 : 1;
    }
    return 0;
}

void ar_cli_print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    printf("%s\n", s ? s : "null");
    free(s);
    json_decref(doc);
}

const char *ar_cli_thousands(int64_t v, char buf[32])
{
    if (v < 0)
        return "-";
    char raw[24];
    int n = snprintf(raw, sizeof(raw), "%" PRId64, v);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

const char *ar_cli_date(int64_t ms, char buf[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%d", &tm);
    return buf;
}

json_t *ar_cli_usage_json(const ar_usage_totals_t *u)
{
    return json_pack("{sI sI sI sI sf}", "requests", (json_int_t)u->requests, "prompt_tokens",
                     (json_int_t)u->prompt_tokens, "completion_tokens",
                     (json_int_t)u->completion_tokens, "total_tokens",
                     (json_int_t)(u->prompt_tokens + u->completion_tokens), "cost_usd",
                     u->cost_usd);
}
