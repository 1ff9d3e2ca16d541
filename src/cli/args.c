/*
 * args.c: argument parsing for every subcommand. Flags take one or two dashes and either
 * "-flag value" or "-flag=value", as Go's flag package (which operators of the systems
 * we replace are used to) accepts.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* Matches -name / --name, with the value inline (=) or in the next argument. */
static int flag_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    if (a[0] != '-')
        return 0;
    a += a[1] == '-' ? 2 : 1;
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

/* config import --from NAME FILE [MODELS_FILE]: the flag anywhere, the files in order. */
static int parse_import(int argc, char **argv, int i, ar_cli_args_t *out)
{
    out->command = AR_CMD_CONFIG_IMPORT;
    for (; i < argc; i++) {
        const char *v = NULL;
        int m = flag_value(argc, argv, &i, "from", &v);
        if (m < 0) {
            snprintf(out->error, sizeof(out->error), "--from needs litellm or free-llm-router");
            return -1;
        }
        if (m > 0) {
            out->import_from = v;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            snprintf(out->error, sizeof(out->error), "unknown argument '%s'", argv[i]);
            return -1;
        } else if (!out->import_file) {
            out->import_file = argv[i];
        } else if (!out->import_models) {
            out->import_models = argv[i];
        } else {
            snprintf(out->error, sizeof(out->error), "config import takes at most two files");
            return -1;
        }
    }
    if (!out->import_from || !out->import_file) {
        snprintf(out->error, sizeof(out->error),
                 "config import needs --from litellm|free-llm-router and a FILE");
        return -1;
    }
    return 0;
}

int ar_cli_parse(int argc, char **argv, ar_cli_args_t *out)
{
    memset(out, 0, sizeof(*out));
    out->command = AR_CMD_SERVE;
    out->config_path = "config.yaml";
    int i = 1;
    if (i < argc && strcmp(argv[i], "serve") == 0) {
        i++;
    } else if (i + 1 < argc && strcmp(argv[i], "config") == 0 &&
               strcmp(argv[i + 1], "check") == 0) {
        out->command = AR_CMD_CONFIG_CHECK;
        i += 2;
    } else if (i + 1 < argc && strcmp(argv[i], "config") == 0 &&
               strcmp(argv[i + 1], "import") == 0) {
        return parse_import(argc, argv, i + 2, out);
    } else if (i < argc && strcmp(argv[i], "config") == 0) {
        snprintf(out->error, sizeof(out->error), "unknown command 'config %s'",
                 i + 1 < argc ? argv[i + 1] : "");
        return -1;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        int m = flag_value(argc, argv, &i, "config", &v);
        if (m < 0) {
            snprintf(out->error, sizeof(out->error), "%s needs a file name", a);
            return -1;
        }
        if (m > 0) {
            out->config_path = v;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "-help") == 0 ||
            strcmp(a, "help") == 0) {
            out->command = AR_CMD_HELP;
            return 0;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0 || strcmp(a, "-version") == 0 ||
            strcmp(a, "version") == 0) {
            out->command = AR_CMD_VERSION;
            return 0;
        }
        snprintf(out->error, sizeof(out->error), "unknown argument '%s'", a);
        return -1;
    }
    return 0;
}
