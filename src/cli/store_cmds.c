/*
 * store_cmds.c: `airouter plan ...`, `airouter key ...` and `airouter vkey add` (SPEC
 * section 6), and the dispatch of every store command (the others: tenancy_cmds.c,
 * backup_cmds.c), acting on the store of storage.database_url in -config. Human output is a short listing with masked
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
#include "cli/store_cli.h"
#include "core/clock.h"
#include "core/str.h"
#include "store/store.h"

/* ---- plans ---- */

static json_t *plan_json(const ar_plan_t *p)
{
    return json_pack("{sI ss ss sI sI}", "id", (json_int_t)p->id, "name", p->name, "description",
                     p->description ? p->description : "", "max_tokens", (json_int_t)p->max_tokens,
                     "created_ms", (json_int_t)p->created_ms);
}

static int plan_create(ar_cli_ctx_t *c)
{
    ar_store_t *s = c->store;
    ar_cli_flags_t *f = c->f;
    ar_plan_t p = {.name = (char *)ar_cli_take(f, "name"),
                   .description = (char *)ar_cli_take(f, "description")};
    int rc = ar_cli_take_count(f, "max-tokens", -1, &p.max_tokens);
    if (rc || (rc = ar_cli_unknown_flags(f, "plan create")))
        return rc;
    if (!p.name || !*p.name || p.max_tokens < 0)
        return ar_cli_usage_error("%s", "plan create needs --name NAME and --max-tokens N");
    char err[256];
    if (ar_store_plan_create(s, &p, &p.id, err, sizeof(err)) != 0) {
        fprintf(stderr, "airouter: plan create: %s\n", err);
        return 1;
    }
    p.created_ms = ar_wall_ms();
    if (f->json) {
        ar_cli_print_json(plan_json(&p));
    } else {
        char b[32];
        printf("plan %" PRId64 " '%s' created: %s tokens\n", p.id, p.name,
               ar_cli_thousands(p.max_tokens, b));
    }
    return 0;
}

static int plan_list(ar_cli_ctx_t *c)
{
    ar_store_t *s = c->store;
    ar_cli_flags_t *f = c->f;
    int rc = ar_cli_unknown_flags(f, "plan list");
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
        ar_cli_print_json(json_pack("{so}", "plans", a));
    } else {
        printf("%-5s %-20s %15s  %s\n", "ID", "NAME", "MAX TOKENS", "DESCRIPTION");
        for (size_t i = 0; i < l.cnt; i++) {
            char b[32];
            printf("%-5" PRId64 " %-20s %15s  %s\n", l.items[i].id, l.items[i].name,
                   ar_cli_thousands(l.items[i].max_tokens, b), l.items[i].description);
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
        ar_cli_print_json(doc);
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

static int key_create(ar_cli_ctx_t *c)
{
    ar_store_t *s = c->store;
    ar_cli_flags_t *f = c->f;
    ar_vkey_t k = {.name = (char *)ar_cli_take(f, "name"),
                   .models = (char *)ar_cli_take(f, "models")};
    const char *plan = ar_cli_take(f, "plan"), *budget = ar_cli_take(f, "budget"),
               *expires = ar_cli_take(f, "expires");
    int rc = ar_cli_take_count(f, "limit", -1, &k.limit_tokens);
    rc = rc ? rc : ar_cli_take_count(f, "daily", -1, &k.daily_tokens);
    rc = rc ? rc : ar_cli_take_count(f, "monthly", -1, &k.monthly_tokens);
    rc = rc ? rc : ar_cli_take_count(f, "rpm", -1, &k.rpm);
    rc = rc ? rc : ar_cli_take_count(f, "tpm", -1, &k.tpm);
    if (rc || (rc = ar_cli_unknown_flags(f, "key create")))
        return rc;
    if (!k.name || !*k.name)
        return ar_cli_usage_error("%s", "key create needs --name NAME");
    k.max_budget_usd = -1;
    if (budget &&
        (ar_parse_double(ar_span_cstr(budget), &k.max_budget_usd) != 0 || k.max_budget_usd < 0))
        return ar_cli_usage_error("--budget needs an amount in USD >= 0, not '%s'", budget);
    int64_t ttl = 0;
    if (expires && (ar_parse_duration_ms(ar_span_cstr(expires), &ttl) != 0 || ttl <= 0))
        return ar_cli_usage_error("--expires needs a duration such as 30d or 12h, not '%s'",
                                  expires);
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

/* A command whose only flag is --key KEY|ID: the key it names. @return 0, 1 or 2. */
static int take_only_key(ar_cli_ctx_t *c, const char *cmd, ar_vkey_t *k)
{
    const char *which = ar_cli_take(c->f, "key");
    int rc = ar_cli_unknown_flags(c->f, cmd);
    return rc ? rc : key_find(c->store, which, k);
}

static int key_revoke(ar_cli_ctx_t *c)
{
    ar_store_t *s = c->store;
    ar_cli_flags_t *f = c->f;
    ar_vkey_t k;
    int rc = take_only_key(c, "key revoke", &k);
    if (rc)
        return rc;
    rc = ar_store_key_revoke(s, k.id) == 0 ? 0 : 1;
    if (rc == 0 && f->json)
        ar_cli_print_json(json_pack("{sI sb}", "id", (json_int_t)k.id, "revoked", 1));
    else if (rc == 0)
        printf("key %" PRId64 " revoked\n", k.id);
    ar_vkey_free(&k);
    return rc;
}

/* A limit flag of set-limit: a whole number, or "none" for no limit (-1). @return 0 or 2. */
static int take_limit(ar_cli_flags_t *f, const char *name, int64_t *field, bool *changed)
{
    const char *v = ar_cli_take(f, name);
    if (!v)
        return 0;
    *changed = true;
    if (strcmp(v, "none") == 0) {
        *field = -1;
        return 0;
    }
    if (ar_parse_int64(ar_span_cstr(v), field) != 0 || *field < 0)
        return ar_cli_usage_error("--%s needs a whole number >= 0 or 'none'", name);
    return 0;
}

static int key_set_limit(ar_cli_ctx_t *c)
{
    ar_store_t *s = c->store;
    ar_cli_flags_t *f = c->f;
    const char *which = ar_cli_take(f, "key"), *budget = ar_cli_take(f, "budget");
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
        rc = ar_cli_usage_error("--budget needs an amount in USD >= 0 or 'none', not '%s'", budget);
    if (rc || (rc = ar_cli_unknown_flags(f, "key set-limit")))
        return rc;
    if (!(c_limit || c_daily || c_monthly || c_rpm || c_tpm || budget))
        return ar_cli_usage_error("%s",
                                  "key set-limit needs one of --limit --daily --monthly --rpm "
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
        ar_cli_print_json(key_json(&k));
    else
        printf("key %" PRId64 " '%s' updated\n", k.id, k.name);
    ar_vkey_free(&k);
    return rc;
}

/* A new secret for the same key record (limits, usage, plan stay): printed once. */
static int key_rotate(ar_cli_ctx_t *c)
{
    ar_store_t *s = c->store;
    ar_cli_flags_t *f = c->f;
    ar_vkey_t k;
    int rc = take_only_key(c, "key rotate", &k);
    if (rc)
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

/* The usage of key id in l (zeros when it has none this month). */
static const ar_key_usage_t *usage_of(const ar_key_usage_list_t *l, int64_t id)
{
    static const ar_key_usage_t none = {0};
    for (size_t i = 0; i < l->cnt; i++) {
        if (l->items[i].key_id == id)
            return &l->items[i];
    }
    return &none;
}

static int key_list(ar_cli_ctx_t *c)
{
    ar_store_t *s = c->store;
    ar_cli_flags_t *f = c->f;
    const char *stats = ar_cli_take(f, "stats");
    int rc = ar_cli_unknown_flags(f, "key list");
    if (rc)
        return rc;
    ar_vkey_list_t l;
    ar_key_usage_list_t u = {0};
    int64_t now = ar_wall_ms();
    if (ar_store_key_list(s, &l) != 0) {
        fprintf(stderr, "airouter: key list: cannot read the store\n");
        return 1;
    }
    if (stats && ar_store_usage_by_key(s, now, &u) != 0) {
        ar_store_key_list_free(&l);
        fprintf(stderr, "airouter: key list: cannot read the usage\n");
        return 1;
    }
    if (f->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < l.cnt; i++) {
            json_t *k = key_json(&l.items[i]);
            if (stats) {
                const ar_key_usage_t *ku = usage_of(&u, l.items[i].id);
                json_object_set_new(k, "today", ar_cli_usage_json(&ku->day));
                json_object_set_new(k, "month", ar_cli_usage_json(&ku->month));
            }
            json_array_append_new(a, k);
        }
        ar_cli_print_json(json_pack("{so}", "keys", a));
    } else {
        printf("%-5s %-18s %-13s %12s %12s %12s %6s  %-10s %-8s", "ID", "NAME", "KEY", "LIMIT",
               "DAILY", "MONTHLY", "RPM", "CREATED", "STATUS");
        if (stats)
            printf(" %14s %9s %14s %9s %10s", "TOKENS TODAY", "REQ TODAY", "TOKENS MONTH",
                   "REQ MONTH", "COST MONTH");
        printf("\n");
        for (size_t i = 0; i < l.cnt; i++) {
            const ar_vkey_t *k = &l.items[i];
            char a[32], b[32], d[32], e[32], g[32];
            const char *status = k->revoked                              ? "revoked"
                                 : k->expires_ms && k->expires_ms <= now ? "expired"
                                                                         : "active";
            printf("%-5" PRId64 " %-18s %-13s %12s %12s %12s %6s  %-10s %-8s", k->id, k->name,
                   k->masked, ar_cli_thousands(k->limit_tokens, a),
                   ar_cli_thousands(k->daily_tokens, b), ar_cli_thousands(k->monthly_tokens, d),
                   ar_cli_thousands(k->rpm, e), ar_cli_date(k->created_ms, g), status);
            if (stats) {
                const ar_key_usage_t *ku = usage_of(&u, k->id);
                char t1[32], r1[32], t2[32], r2[32];
                printf(" %14s %9s %14s %9s %10.4f",
                       ar_cli_thousands(ku->day.prompt_tokens + ku->day.completion_tokens, t1),
                       ar_cli_thousands(ku->day.requests, r1),
                       ar_cli_thousands(ku->month.prompt_tokens + ku->month.completion_tokens, t2),
                       ar_cli_thousands(ku->month.requests, r2), ku->month.cost_usd);
            }
            printf("\n");
        }
        printf("%zu key%s\n", l.cnt, l.cnt == 1 ? "" : "s");
    }
    ar_store_key_usage_list_free(&u);
    ar_store_key_list_free(&l);
    return 0;
}

/* `vkey add --name N --key K`: an existing key (from another gateway) kept as its hash. The
 * key is not printed back. */
static int vkey_add(ar_cli_ctx_t *c)
{
    ar_cli_flags_t *f = c->f;
    ar_vkey_t k = ar_vkey_unlimited();
    k.name = (char *)ar_cli_take(f, "name");
    const char *key = ar_cli_take(f, "key");
    int rc = ar_cli_unknown_flags(f, "vkey add");
    if (rc)
        return rc;
    if (!k.name || !*k.name || !key)
        return ar_cli_usage_error("%s", "vkey add needs --name NAME and --key KEY");
    if (!ar_key_well_formed(key))
        return ar_cli_usage_error("%s", "vkey add: --key is not a virtual key: expected sk- "
                                        "followed by at least 40 letters and digits");
    ar_key_hash(key, k.hash);
    ar_key_mask(key, k.masked);
    k.created_ms = ar_wall_ms();
    char err[256];
    if (ar_store_key_create(c->store, &k, &k.id, err, sizeof(err)) != 0) {
        fprintf(stderr, "airouter: vkey add: %s\n", err);
        return 1;
    }
    if (f->json)
        ar_cli_print_json(key_json(&k));
    else
        printf("key %" PRId64 " '%s' imported (%s)\n", k.id, k.name, k.masked);
    return 0;
}

typedef struct command {
    const char *group, *verb; /* verb NULL: a one-word command */
    int (*run)(ar_cli_ctx_t *c);
} command_t;

static const command_t commands[] = {
    {"plan", "create", plan_create},
    {"plan", "list", plan_list},
    {"key", "create", key_create},
    {"key", "list", key_list},
    {"key", "revoke", key_revoke},
    {"key", "set-limit", key_set_limit},
    {"key", "rotate", key_rotate},
    {"vkey", "add", vkey_add},
    {"connection", "add", ar_cli_connection_add},
    {"connection", "list", ar_cli_connection_list},
    {"connection", "remove", ar_cli_connection_remove},
    {"model", "add", ar_cli_model_add},
    {"model", "list", ar_cli_model_list},
    {"assign", NULL, ar_cli_assign},
    {"stats", NULL, ar_cli_stats},
    {"backup", NULL, ar_cli_backup},
    {"restore", NULL, ar_cli_restore},
};

bool ar_cli_is_store_command(const char *group)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].group, group) == 0)
            return true;
    }
    return false;
}

int ar_cli_store(int argc, char **argv)
{
    static const char *const bare[] = {"stats", "force", NULL}; /* flags without a value */
    const char *group = argv[1], *verb = argc > 2 ? argv[2] : NULL;
    const command_t *cmd = NULL;
    bool grouped = false;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]) && !cmd; i++) {
        if (strcmp(commands[i].group, group) != 0)
            continue;
        grouped = commands[i].verb != NULL;
        if (!commands[i].verb || (verb && strcmp(commands[i].verb, verb) == 0))
            cmd = &commands[i];
    }
    if (!cmd && (!verb || verb[0] == '-'))
        return ar_cli_usage_error("'%s' needs a subcommand (see airouter --help)", group);
    if (!cmd) {
        fprintf(stderr, "airouter: unknown command '%s %s'\n", group, verb);
        return 2;
    }
    ar_cli_flags_t f;
    ar_cli_ctx_t c = {.f = &f};
    char *secret_key = NULL;
    int rc = ar_cli_parse_flags(argc, argv, grouped ? 3 : 2, bare, &f);
    if (rc == 0)
        rc = ar_cli_open_store(f.config_path, &c.store, &secret_key);
    c.secret_key = secret_key;
    if (rc == 0)
        rc = cmd->run(&c);
    ar_store_close(c.store);
    if (secret_key) {
        memset(secret_key, 0, strlen(secret_key));
        free(secret_key);
    }
    ar_cli_flags_free(&f);
    return rc;
}
