/*
 * store_cmds.c: `airouter plan ...` and `airouter key ...` (SPEC section 6), acting on the
 * store of storage.database_url in -config. Human output is a short listing with masked
 * keys; --json prints one JSON document for scripts. A new key is printed once, at
 * creation, alone on its line (the store keeps only its hash).
 * Exit codes: 0 done, 1 the store refused (a duplicate name, an unknown key), 2 bad usage
 * or an invalid config.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/str.h"
#include "store/store.h"

#define MAX_FLAGS 16

typedef struct flags {
    const char *names[MAX_FLAGS];
    const char *values[MAX_FLAGS];
    size_t cnt;
    bool json;
    const char *config_path;
} flags_t;

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "airouter: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 2;
}

/* --name value / --name=value / -name value; --json and -config are taken here too. */
static int parse_flags(int argc, char **argv, int from, flags_t *f)
{
    memset(f, 0, sizeof(*f));
    f->config_path = "config.yaml";
    for (int i = from; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-')
            return usage_error("unexpected argument '%s'", a);
        a += a[1] == '-' ? 2 : 1;
        if (strcmp(a, "json") == 0) {
            f->json = true;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value", argv[i]);
            v = argv[++i];
        }
        if (n == 6 && strncmp(a, "config", 6) == 0) {
            f->config_path = v;
            continue;
        }
        if (f->cnt == MAX_FLAGS)
            return usage_error("too many flags at '%s'", argv[i]);
        char *name = strndup(a, n);
        f->names[f->cnt] = name;
        f->values[f->cnt++] = v;
    }
    return 0;
}

static void flags_free(flags_t *f)
{
    for (size_t i = 0; i < f->cnt; i++)
        free((char *)f->names[i]);
}

/* Takes flag name's value (NULL when absent); a taken flag is not reported as unknown. */
static const char *take(flags_t *f, const char *name)
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

static int unknown_flags(flags_t *f, const char *command)
{
    for (size_t i = 0; i < f->cnt; i++) {
        if (f->names[i]) {
            fprintf(stderr, "airouter: %s: unknown flag --%s\n", command, f->names[i]);
            return 2;
        }
    }
    return 0;
}

/* A count flag: absent -> dflt; else a non-negative integer. @return 0 or 2. */
static int take_count(flags_t *f, const char *name, int64_t dflt, int64_t *out)
{
    const char *v = take(f, name);
    *out = dflt;
    if (!v)
        return 0;
    if (ar_parse_int64(ar_span_cstr(v), out) != 0 || *out < 0)
        return usage_error("--%s needs a whole number >= 0", name);
    return 0;
}

static int open_store(const char *config_path, ar_store_t **s)
{
    ar_config_t *cfg = NULL;
    ar_strlist_t errors = {0};
    if (ar_config_load(config_path, &cfg, &errors) != 0) {
        for (size_t i = 0; i < errors.cnt; i++)
            fprintf(stderr, "%s\n", errors.items[i]);
        ar_strlist_dispose(&errors);
        return 2;
    }
    char err[512];
    int rc = ar_store_open(cfg->storage.database_url, s, err, sizeof(err));
    ar_config_unref(cfg);
    if (rc) {
        fprintf(stderr, "airouter: %s\n", err);
        return rc == AR_EINVAL ? 2 : 1;
    }
    return 0;
}

static void print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    printf("%s\n", s ? s : "null");
    free(s);
    json_decref(doc);
}

/* 1234567 -> "1,234,567"; -1 -> "-" (no limit). */
static const char *thousands(int64_t v, char buf[32])
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

static const char *date_of(int64_t ms, char buf[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%d", &tm);
    return buf;
}

/* ---- plans ---- */

static json_t *plan_json(const ar_plan_t *p)
{
    return json_pack("{sI ss ss sI sI}", "id", (json_int_t)p->id, "name", p->name, "description",
                     p->description ? p->description : "", "max_tokens", (json_int_t)p->max_tokens,
                     "created_ms", (json_int_t)p->created_ms);
}

static int plan_create(ar_store_t *s, flags_t *f)
{
    ar_plan_t p = {.name = (char *)take(f, "name"), .description = (char *)take(f, "description")};
    int rc = take_count(f, "max-tokens", -1, &p.max_tokens);
    if (rc || (rc = unknown_flags(f, "plan create")))
        return rc;
    if (!p.name || !*p.name || p.max_tokens < 0)
        return usage_error("%s", "plan create needs --name NAME and --max-tokens N");
    char err[256];
    if (ar_store_plan_create(s, &p, &p.id, err, sizeof(err)) != 0) {
        fprintf(stderr, "airouter: plan create: %s\n", err);
        return 1;
    }
    p.created_ms = ar_wall_ms();
    if (f->json) {
        print_json(plan_json(&p));
    } else {
        char b[32];
        printf("plan %" PRId64 " '%s' created: %s tokens\n", p.id, p.name,
               thousands(p.max_tokens, b));
    }
    return 0;
}

static int plan_list(ar_store_t *s, flags_t *f)
{
    int rc = unknown_flags(f, "plan list");
    if (rc)
        return rc;
    ar_plan_list_t l;
    if (ar_store_plan_list(s, &l) != 0) {
        fprintf(stderr, "airouter: plan list: cannot read the store\n");
        return 1;
    }
    if (f->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < l.cnt; i++)
            json_array_append_new(a, plan_json(&l.items[i]));
        print_json(json_pack("{so}", "plans", a));
    } else {
        printf("%-5s %-20s %15s  %s\n", "ID", "NAME", "MAX TOKENS", "DESCRIPTION");
        for (size_t i = 0; i < l.cnt; i++) {
            char b[32];
            printf("%-5" PRId64 " %-20s %15s  %s\n", l.items[i].id, l.items[i].name,
                   thousands(l.items[i].max_tokens, b), l.items[i].description);
        }
        printf("%zu plan%s\n", l.cnt, l.cnt == 1 ? "" : "s");
    }
    ar_store_plan_list_free(&l);
    return 0;
}

/* ---- keys ---- */

static json_t *key_json(const ar_vkey_t *k)
{
    return json_pack("{sI ss ss ss sI sI sb sI sI sI sI sI sf sI ss}", "id", (json_int_t)k->id,
                     "name", k->name ? k->name : "", "masked", k->masked, "hash", k->hash,
                     "created_ms", (json_int_t)k->created_ms, "expires_ms",
                     (json_int_t)k->expires_ms, "revoked", k->revoked, "rpm", (json_int_t)k->rpm,
                     "tpm", (json_int_t)k->tpm, "daily_tokens", (json_int_t)k->daily_tokens,
                     "monthly_tokens", (json_int_t)k->monthly_tokens, "limit_tokens",
                     (json_int_t)k->limit_tokens, "max_budget_usd", k->max_budget_usd, "plan_id",
                     (json_int_t)k->plan_id, "models", k->models ? k->models : "");
}

/* A key just made: with --json its record and the key; else the key alone on stdout (for
 * `KEY=$(airouter key create ...)`) and what happened on stderr. Shown this once only. */
static void print_new_key(const ar_vkey_t *k, const char *key, bool json, const char *what)
{
    if (json) {
        json_t *doc = key_json(k);
        json_object_set_new(doc, "key", json_string(key));
        print_json(doc);
        return;
    }
    printf("%s\n", key);
    fprintf(stderr, "key %" PRId64 " '%s' %s\n", k->id, k->name, what);
}

/* --plan NAME -> its id. @return 0, or 1 when there is no such plan. */
static int plan_id_of(ar_store_t *s, const char *name, int64_t *id)
{
    ar_plan_list_t l;
    *id = 0;
    if (ar_store_plan_list(s, &l) != 0)
        return 1;
    for (size_t i = 0; i < l.cnt; i++) {
        if (strcmp(l.items[i].name, name) == 0)
            *id = l.items[i].id;
    }
    ar_store_plan_list_free(&l);
    if (*id)
        return 0;
    fprintf(stderr, "airouter: key create: no plan named '%s' (airouter plan list)\n", name);
    return 1;
}

static int key_create(ar_store_t *s, flags_t *f)
{
    ar_vkey_t k = {.name = (char *)take(f, "name"), .models = (char *)take(f, "models")};
    const char *plan = take(f, "plan"), *budget = take(f, "budget"), *expires = take(f, "expires");
    int rc = take_count(f, "limit", -1, &k.limit_tokens);
    rc = rc ? rc : take_count(f, "daily", -1, &k.daily_tokens);
    rc = rc ? rc : take_count(f, "monthly", -1, &k.monthly_tokens);
    rc = rc ? rc : take_count(f, "rpm", -1, &k.rpm);
    rc = rc ? rc : take_count(f, "tpm", -1, &k.tpm);
    if (rc || (rc = unknown_flags(f, "key create")))
        return rc;
    if (!k.name || !*k.name)
        return usage_error("%s", "key create needs --name NAME");
    k.max_budget_usd = -1;
    if (budget &&
        (ar_parse_double(ar_span_cstr(budget), &k.max_budget_usd) != 0 || k.max_budget_usd < 0))
        return usage_error("--budget needs an amount in USD >= 0, not '%s'", budget);
    int64_t ttl = 0;
    if (expires && (ar_parse_duration_ms(ar_span_cstr(expires), &ttl) != 0 || ttl <= 0))
        return usage_error("--expires needs a duration such as 30d or 12h, not '%s'", expires);
    if (plan && plan_id_of(s, plan, &k.plan_id) != 0)
        return 1;
    char key[AR_KEY_LEN + 1];
    if (ar_key_generate(key) != 0) {
        fprintf(stderr, "airouter: key create: no randomness available\n");
        return 1;
    }
    ar_key_hash(key, k.hash);
    ar_key_mask(key, k.masked);
    k.created_ms = ar_wall_ms();
    k.expires_ms = ttl ? k.created_ms + ttl : 0;
    char err[256];
    if (ar_store_key_create(s, &k, &k.id, err, sizeof(err)) != 0) {
        fprintf(stderr, "airouter: key create: %s\n", err);
        return 1;
    }
    print_new_key(&k, key, f->json, "created; it is shown once: store it now");
    return 0;
}

/* --key KEY or --key ID -> the stored key. @return 0, or 1 when it is not in the store. */
static int key_find(ar_store_t *s, const char *arg, ar_vkey_t *out)
{
    char hash[AR_KEY_HASH_LEN + 1];
    int rc;
    if (!arg) {
        fprintf(stderr, "airouter: --key KEY|ID is needed\n");
        return 2;
    }
    if (strncmp(arg, "sk-", 3) == 0) {
        ar_key_hash(arg, hash);
        rc = ar_store_key_get(s, 0, hash, out);
    } else {
        int64_t n = 0;
        rc = ar_parse_int64(ar_span_cstr(arg), &n) == 0 && n > 0 ? ar_store_key_get(s, n, NULL, out)
                                                                 : AR_ENOTFOUND;
    }
    if (rc) {
        fprintf(stderr,
                "airouter: no such key (give the key or its id from 'airouter key list')\n");
        return 1;
    }
    return 0;
}

static int key_revoke(ar_store_t *s, flags_t *f)
{
    const char *which = take(f, "key");
    int rc = unknown_flags(f, "key revoke");
    if (rc)
        return rc;
    ar_vkey_t k;
    if ((rc = key_find(s, which, &k)) != 0)
        return rc;
    rc = ar_store_key_revoke(s, k.id) == 0 ? 0 : 1;
    if (rc == 0 && f->json)
        print_json(json_pack("{sI sb}", "id", (json_int_t)k.id, "revoked", 1));
    else if (rc == 0)
        printf("key %" PRId64 " revoked\n", k.id);
    ar_vkey_free(&k);
    return rc;
}

/* A limit flag of set-limit: a whole number, or "none" for no limit (-1). @return 0 or 2. */
static int take_limit(flags_t *f, const char *name, int64_t *field, bool *changed)
{
    const char *v = take(f, name);
    if (!v)
        return 0;
    *changed = true;
    if (strcmp(v, "none") == 0) {
        *field = -1;
        return 0;
    }
    if (ar_parse_int64(ar_span_cstr(v), field) != 0 || *field < 0)
        return usage_error("--%s needs a whole number >= 0 or 'none'", name);
    return 0;
}

static int key_set_limit(ar_store_t *s, flags_t *f)
{
    const char *which = take(f, "key"), *budget = take(f, "budget");
    ar_vkey_t k;
    int64_t limit = 0, daily = 0, monthly = 0, rpm = 0, tpm = 0;
    bool c_limit = false, c_daily = false, c_monthly = false, c_rpm = false, c_tpm = false;
    int rc = take_limit(f, "limit", &limit, &c_limit);
    rc = rc ? rc : take_limit(f, "daily", &daily, &c_daily);
    rc = rc ? rc : take_limit(f, "monthly", &monthly, &c_monthly);
    rc = rc ? rc : take_limit(f, "rpm", &rpm, &c_rpm);
    rc = rc ? rc : take_limit(f, "tpm", &tpm, &c_tpm);
    double usd = -1;
    if (!rc && budget && strcmp(budget, "none") != 0 &&
        (ar_parse_double(ar_span_cstr(budget), &usd) != 0 || usd < 0))
        rc = usage_error("--budget needs an amount in USD >= 0 or 'none', not '%s'", budget);
    if (rc || (rc = unknown_flags(f, "key set-limit")))
        return rc;
    if (!(c_limit || c_daily || c_monthly || c_rpm || c_tpm || budget))
        return usage_error("%s", "key set-limit needs one of --limit --daily --monthly --rpm "
                                 "--tpm --budget");
    if ((rc = key_find(s, which, &k)) != 0)
        return rc;
    k.limit_tokens = c_limit ? limit : k.limit_tokens;
    k.daily_tokens = c_daily ? daily : k.daily_tokens;
    k.monthly_tokens = c_monthly ? monthly : k.monthly_tokens;
    k.rpm = c_rpm ? rpm : k.rpm;
    k.tpm = c_tpm ? tpm : k.tpm;
    k.max_budget_usd = budget ? usd : k.max_budget_usd;
    char err[256];
    rc = ar_store_key_update(s, &k, err, sizeof(err)) == 0 ? 0 : 1;
    if (rc)
        fprintf(stderr, "airouter: key set-limit: %s\n", err);
    else if (f->json)
        print_json(key_json(&k));
    else
        printf("key %" PRId64 " '%s' updated\n", k.id, k.name);
    ar_vkey_free(&k);
    return rc;
}

/* A new secret for the same key record (limits, usage, plan stay): printed once. */
static int key_rotate(ar_store_t *s, flags_t *f)
{
    const char *which = take(f, "key");
    int rc = unknown_flags(f, "key rotate");
    if (rc)
        return rc;
    ar_vkey_t k;
    if ((rc = key_find(s, which, &k)) != 0)
        return rc;
    char key[AR_KEY_LEN + 1], err[256];
    if (ar_key_generate(key) != 0) {
        ar_vkey_free(&k);
        fprintf(stderr, "airouter: key rotate: no randomness available\n");
        return 1;
    }
    ar_key_hash(key, k.hash);
    ar_key_mask(key, k.masked);
    rc = ar_store_key_update(s, &k, err, sizeof(err)) == 0 ? 0 : 1;
    if (rc) {
        fprintf(stderr, "airouter: key rotate: %s\n", err);
    } else {
        print_new_key(&k, key, f->json,
                      "rotated: the old key no longer works; the new one is shown once");
    }
    ar_vkey_free(&k);
    return rc;
}

static int key_list(ar_store_t *s, flags_t *f)
{
    int rc = unknown_flags(f, "key list");
    if (rc)
        return rc;
    ar_vkey_list_t l;
    if (ar_store_key_list(s, &l) != 0) {
        fprintf(stderr, "airouter: key list: cannot read the store\n");
        return 1;
    }
    if (f->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < l.cnt; i++)
            json_array_append_new(a, key_json(&l.items[i]));
        print_json(json_pack("{so}", "keys", a));
    } else {
        printf("%-5s %-18s %-13s %12s %12s %12s %6s  %-10s %s\n", "ID", "NAME", "KEY", "LIMIT",
               "DAILY", "MONTHLY", "RPM", "CREATED", "STATUS");
        int64_t now = ar_wall_ms();
        for (size_t i = 0; i < l.cnt; i++) {
            const ar_vkey_t *k = &l.items[i];
            char a[32], b[32], c[32], d[32], e[32];
            const char *status = k->revoked                              ? "revoked"
                                 : k->expires_ms && k->expires_ms <= now ? "expired"
                                                                         : "active";
            printf("%-5" PRId64 " %-18s %-13s %12s %12s %12s %6s  %-10s %s\n", k->id, k->name,
                   k->masked, thousands(k->limit_tokens, a), thousands(k->daily_tokens, b),
                   thousands(k->monthly_tokens, c), thousands(k->rpm, d), date_of(k->created_ms, e),
                   status);
        }
        printf("%zu key%s\n", l.cnt, l.cnt == 1 ? "" : "s");
    }
    ar_store_key_list_free(&l);
    return 0;
}

int ar_cli_store(int argc, char **argv)
{
    if (argc < 3)
        return usage_error("'%s' needs a subcommand (see airouter --help)", argv[1]);
    const char *group = argv[1], *verb = argv[2];
    int (*run)(ar_store_t *, flags_t *) = NULL;
    if (strcmp(group, "plan") == 0 && strcmp(verb, "create") == 0)
        run = plan_create;
    else if (strcmp(group, "plan") == 0 && strcmp(verb, "list") == 0)
        run = plan_list;
    else if (strcmp(group, "key") == 0 && strcmp(verb, "create") == 0)
        run = key_create;
    else if (strcmp(group, "key") == 0 && strcmp(verb, "list") == 0)
        run = key_list;
    else if (strcmp(group, "key") == 0 && strcmp(verb, "revoke") == 0)
        run = key_revoke;
    else if (strcmp(group, "key") == 0 && strcmp(verb, "set-limit") == 0)
        run = key_set_limit;
    else if (strcmp(group, "key") == 0 && strcmp(verb, "rotate") == 0)
        run = key_rotate;
    if (!run) {
        fprintf(stderr, "airouter: unknown command '%s %s'\n", group, verb);
        return 2;
    }
    flags_t f;
    int rc = parse_flags(argc, argv, 3, &f);
    ar_store_t *s = NULL;
    if (rc == 0)
        rc = open_store(f.config_path, &s);
    if (rc == 0)
        rc = run(s, &f);
    ar_store_close(s);
    flags_free(&f);
    return rc;
}
