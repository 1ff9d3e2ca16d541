/*
 * store_cli.h: what the store commands (store_cmds.c: plans, keys; tenancy_cmds.c:
 * connections, models, assignments; backup_cmds.c: backup, restore, stats) share: flag
 * parsing, opening the store of -config, and output helpers (store_util.c).
 */
#ifndef AR_CLI_STORE_CLI_H
#define AR_CLI_STORE_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define AR_CLI_MAX_FLAGS 16

typedef struct ar_cli_flags {
    const char *names[AR_CLI_MAX_FLAGS];
    const char *values[AR_CLI_MAX_FLAGS];
    size_t cnt;
    bool json;
    const char *config_path;
} ar_cli_flags_t;

/* What a command gets: the open store, its flags, and storage.secret_key (NULL: none). */
typedef struct ar_cli_ctx {
    ar_store_t *store;
    ar_cli_flags_t *f;
    const char *secret_key;
} ar_cli_ctx_t;

/** Prints "airouter: " fmt (with arg) on stderr. @return 2 (bad usage). */
int ar_cli_usage_error(const char *fmt, const char *arg);
/**
 * --name value / --name=value / -name value from argv[from]; --json and -config are taken
 * here; a bare flag in bare (NULL-terminated names) takes no value ("true").
 * @return 0 or 2.
 */
int ar_cli_parse_flags(int argc, char **argv, int from, const char *const *bare, ar_cli_flags_t *f);
void ar_cli_flags_free(ar_cli_flags_t *f);
/** Takes flag name's value (NULL when absent); a taken flag is not reported as unknown. */
const char *ar_cli_take(ar_cli_flags_t *f, const char *name);
/** @return 2 with a message when a flag was not taken, else 0. */
int ar_cli_unknown_flags(ar_cli_flags_t *f, const char *command);
/** A count flag: absent -> dflt; else a whole number >= 0. @return 0 or 2. */
int ar_cli_take_count(ar_cli_flags_t *f, const char *name, int64_t dflt, int64_t *out);
/** A required id flag (a whole number > 0). @return 0 or 2. */
int ar_cli_take_id(ar_cli_flags_t *f, const char *name, const char *command, int64_t *out);
/**
 * Loads the config and opens its store. *secret_key: storage.secret_key resolved (env
 * references included), malloc'd or NULL. @return 0, 1 or 2 (message printed).
 */
int ar_cli_open_store(const char *config_path, ar_store_t **s, char **secret_key);
/** Prints doc compactly on its own line and releases it. */
void ar_cli_print_json(json_t *doc);
/** 1234567 -> "1,234,567"; -1 -> "-" (no limit). */
const char *ar_cli_thousands(int64_t v, char buf[32]);
/** "YYYY-MM-DD" (UTC) of ms. */
const char *ar_cli_date(int64_t ms, char buf[32]);
/** Usage totals as JSON: requests, prompt/completion/total tokens, cost_usd. */
json_t *ar_cli_usage_json(const ar_usage_totals_t *u);

/* The commands: each returns the exit code. */
int ar_cli_connection_add(ar_cli_ctx_t *c);
int ar_cli_connection_list(ar_cli_ctx_t *c);
int ar_cli_connection_remove(ar_cli_ctx_t *c);
int ar_cli_model_add(ar_cli_ctx_t *c);
int ar_cli_model_list(ar_cli_ctx_t *c);
int ar_cli_assign(ar_cli_ctx_t *c);
int ar_cli_backup(ar_cli_ctx_t *c);
int ar_cli_restore(ar_cli_ctx_t *c);
int ar_cli_stats(ar_cli_ctx_t *c);

#endif
