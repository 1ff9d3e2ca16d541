/*
 * cli.h: the subcommands of the airouter binary, one function each, and the argument
 * parser they share. Each returns the process exit code.
 */
#ifndef AR_CLI_CLI_H
#define AR_CLI_CLI_H

#include <stdbool.h>

typedef enum ar_cli_cmd {
    AR_CMD_SERVE = 0,
    AR_CMD_CONFIG_CHECK,
    AR_CMD_CONFIG_IMPORT,
    AR_CMD_HELP,
    AR_CMD_VERSION,
} ar_cli_cmd_t;

typedef struct ar_cli_args {
    ar_cli_cmd_t command;
    const char *config_path;   /* "config.yaml" when not given */
    const char *import_from;   /* config import: --from NAME */
    const char *import_file;   /* config import: FILE */
    const char *import_models; /* config import: MODELS_FILE, or NULL */
    char error[160];           /* set when parsing fails */
} ar_cli_args_t;

/** Parses argv. @return 0, or -1 with out->error set. */
int ar_cli_parse(int argc, char **argv, ar_cli_args_t *out);
/** `airouter [serve] -config FILE`. */
int ar_cli_serve(const char *config_path);
/** `airouter config check -config FILE`: 0 when valid, 1 with problems on stderr. */
int ar_cli_config_check(const char *config_path);
/**
 * `airouter config import --from litellm|free-llm-router FILE [MODELS_FILE]`: the converted
 * configuration on stdout; 0, or 1 with the input's problems (FILE:LINE) on stderr.
 */
int ar_cli_config_import(const char *from, const char *file, const char *models_file);
/**
 * The store commands (SPEC section 6): `airouter plan|key|vkey|connection|model VERB` and
 * `airouter assign|stats|backup|restore`, with [flags] [--json] [-config FILE]
 * (store_cmds.c); argv as main's.
 */
int ar_cli_store(int argc, char **argv);
/** Whether argv[1] names a store command (ar_cli_store takes it). */
bool ar_cli_is_store_command(const char *group);

#endif
