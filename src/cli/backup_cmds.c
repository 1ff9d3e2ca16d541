/*
 * backup_cmds.c: `airouter backup`, `airouter restore` and `airouter stats` (SPEC section
 * 6). A backup is one JSON document written atomically (a temporary file, fsync, rename)
 * and readable by its owner only (0600): it holds key hashes and the sealed provider
 * secrets. A restore goes into a new, empty database.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/store_cli.h"
#include "core/clock.h"

#define TOP_KEYS 5

/* Writes text to path through path.tmp-PID (0600), fsync, rename. @return 0 or errno. */
static int write_atomically(const char *path, const char *text)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return ENOMEM;
    snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int e = fd < 0 ? errno : 0;
    size_t len = strlen(text), off = 0;
    while (!e && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno != EINTR)
            e = errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (!e && fsync(fd) != 0)
        e = errno;
    if (fd >= 0 && close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e)
        unlink(tmp);
    free(tmp);
    return e;
}

int ar_cli_backup(ar_cli_ctx_t *c)
{
    const char *path = ar_cli_take(c->f, "path");
    int rc = ar_cli_unknown_flags(c->f, "backup");
    if (rc)
        return rc;
    if (!path || !*path)
        return ar_cli_usage_error("%s", "backup needs --path FILE.json");
    json_t *doc = NULL;
    char err[256];
    if (ar_store_backup(c->store, &doc, err, sizeof(err)) != 0) {
        fprintf(stderr, "airouter: backup: %s\n", err);
        return 1;
    }
    char *text = json_dumps(doc, JSON_INDENT(1));
    int e = text ? write_atomically(path, text) : ENOMEM;
    free(text);
    if (e) {
        json_decref(doc);
        fprintf(stderr, "airouter: backup: cannot write %s: %s\n", path, strerror(e));
        return 1;
    }
    size_t keys = json_array_size(json_object_get(doc, "keys"));
    size_t conns = json_array_size(json_object_get(doc, "connections"));
    if (c->f->json)
        ar_cli_print_json(json_pack("{ss sI sI}", "path", path, "keys", (json_int_t)keys,
                                    "connections", (json_int_t)conns));
    else
        printf("backup written to %s: %zu key%s, %zu connection%s\n", path, keys,
               keys == 1 ? "" : "s", conns, conns == 1 ? "" : "s");
    json_decref(doc);
    return 0;
}

int ar_cli_restore(ar_cli_ctx_t *c)
{
    const char *path = ar_cli_take(c->f, "path");
    int rc = ar_cli_unknown_flags(c->f, "restore");
    if (rc)
        return rc;
    if (!path || !*path)
        return ar_cli_usage_error("%s", "restore needs --path FILE.json");
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc) {
        fprintf(stderr, "airouter: restore: %s: %s (line %d)\n", path, je.text, je.line);
        return 1;
    }
    char err[256];
    if (ar_store_restore(c->store, doc, err, sizeof(err)) != 0) {
        json_decref(doc);
        fprintf(stderr, "airouter: restore: %s\n", err);
        return 1;
    }
    size_t keys = json_array_size(json_object_get(doc, "keys"));
    size_t conns = json_array_size(json_object_get(doc, "connections"));
    if (c->f->json)
        ar_cli_print_json(json_pack("{ss sI sI}", "path", path, "keys", (json_int_t)keys,
                                    "connections", (json_int_t)conns));
    else
        printf("restored %s: %zu key%s, %zu connection%s\n", path, keys, keys == 1 ? "" : "s",
               conns, conns == 1 ? "" : "s");
    json_decref(doc);
    return 0;
}

static int by_month_cost(const void *a, const void *b)
{
    const ar_key_usage_t *x = a, *y = b;
    if (x->month.cost_usd != y->month.cost_usd)
        return x->month.cost_usd < y->month.cost_usd ? 1 : -1;
    return x->key_id < y->key_id ? -1 : x->key_id > y->key_id;
}

/* A key's name and masked form for the top list ("master key" for id 0). */
static void key_label(const ar_vkey_list_t *keys, int64_t id, const char **name,
                      const char **masked)
{
    *name = id == 0 ? "master key" : "(unknown)";
    *masked = "";
    for (size_t i = 0; i < keys->cnt; i++) {
        if (keys->items[i].id == id) {
            *name = keys->items[i].name;
            *masked = keys->items[i].masked;
        }
    }
}

static void print_totals(const char *label, const ar_usage_totals_t *u)
{
    char r[32], p[32], o[32], t[32];
    printf("%-10s %12s %14s %14s %14s %12.4f\n", label, ar_cli_thousands(u->requests, r),
           ar_cli_thousands(u->prompt_tokens, p), ar_cli_thousands(u->completion_tokens, o),
           ar_cli_thousands(u->prompt_tokens + u->completion_tokens, t), u->cost_usd);
}

int ar_cli_stats(ar_cli_ctx_t *c)
{
    int rc = ar_cli_unknown_flags(c->f, "stats");
    if (rc)
        return rc;
    int64_t now = ar_wall_ms();
    ar_store_stats_t st;
    ar_key_usage_list_t u = {0};
    ar_vkey_list_t keys = {0};
    if (ar_store_stats(c->store, now, &st) != 0 || ar_store_usage_by_key(c->store, now, &u) != 0 ||
        ar_store_key_list(c->store, &keys) != 0) {
        ar_store_key_usage_list_free(&u);
        fprintf(stderr, "airouter: stats: cannot read the store\n");
        return 1;
    }
    if (u.cnt)
        qsort(u.items, u.cnt, sizeof(*u.items), by_month_cost);
    size_t top = u.cnt < TOP_KEYS ? u.cnt : TOP_KEYS;
    if (c->f->json) {
        json_t *t = json_array();
        for (size_t i = 0; i < top; i++) {
            const char *name, *masked;
            key_label(&keys, u.items[i].key_id, &name, &masked);
            json_t *k = ar_cli_usage_json(&u.items[i].month);
            json_object_set_new(k, "id", json_integer(u.items[i].key_id));
            json_object_set_new(k, "name", json_string(name));
            json_object_set_new(k, "masked", json_string(masked));
            json_array_append_new(t, k);
        }
        ar_cli_print_json(json_pack(
            "{s{sI sI sI} so so so so}", "keys", "active", (json_int_t)st.keys_active, "revoked",
            (json_int_t)st.keys_revoked, "expired", (json_int_t)st.keys_expired, "today",
            ar_cli_usage_json(&st.day), "month", ar_cli_usage_json(&st.month), "total",
            ar_cli_usage_json(&st.total), "top_keys_month", t));
    } else {
        printf("keys: %" PRId64 " active, %" PRId64 " revoked, %" PRId64 " expired\n\n",
               st.keys_active, st.keys_revoked, st.keys_expired);
        printf("%-10s %12s %14s %14s %14s %12s\n", "PERIOD", "REQUESTS", "PROMPT", "COMPLETION",
               "TOKENS", "COST USD");
        print_totals("today", &st.day);
        print_totals("month", &st.month);
        print_totals("all time", &st.total);
        printf("\ntop keys by cost this month:\n");
        if (top == 0)
            printf("  (no usage this month)\n");
        for (size_t i = 0; i < top; i++) {
            const char *name, *masked;
            char r[32], t[32];
            const ar_usage_totals_t *m = &u.items[i].month;
            key_label(&keys, u.items[i].key_id, &name, &masked);
            printf("  %-5" PRId64 " %-18s %-13s %12.4f USD %14s tokens %10s requests\n",
                   u.items[i].key_id, name, masked, m->cost_usd,
                   ar_cli_thousands(m->prompt_tokens + m->completion_tokens, t),
                   ar_cli_thousands(m->requests, r));
        }
    }
    ar_store_key_list_free(&keys);
    ar_store_key_usage_list_free(&u);
    return 0;
}
