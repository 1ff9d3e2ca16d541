/*
 * main.c: the command line (SPEC section 1). It parses the command and its flags and
 * calls the module that does the work; it holds no logic of its own. Exit codes: 0 ok,
 * 1 runtime error, 2 bad usage or invalid config (`config check` exits 1 on problems).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "gateway/gateway.h"

#ifndef AR_VERSION
#define AR_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "airouter %s: an LLM API gateway\n"
            "\n"
            "usage:\n"
            "  airouter [serve] -config FILE      serve (also --config FILE)\n"
            "  airouter config check -config FILE validate a config, print problems\n"
            "  airouter config import --from litellm FILE\n"
            "  airouter config import --from free-llm-router CONFIG [MODELS]\n"
            "      convert another router's config into airouter YAML on stdout\n"
            "  airouter plan create --name NAME --max-tokens N [--description TEXT]\n"
            "  airouter plan list\n"
            "  airouter key create --name NAME [--limit N] [--daily N] [--monthly N] [--rpm N]\n"
            "                      [--tpm N] [--budget USD] [--models a,b] [--expires 30d]\n"
            "                      [--plan NAME]\n"
            "  airouter key list | key revoke --key KEY|ID | key rotate --key KEY|ID\n"
            "  airouter key set-limit --key KEY|ID [--limit N] [--daily N] [--monthly N]\n"
            "                         [--rpm N] [--tpm N] [--budget USD]   (N or none)\n"
            "  airouter key list --stats          with today's and this month's usage\n"
            "  airouter vkey add --name N --key K import an existing key\n"
            "  airouter stats                     key counts, usage today/month/all, top keys\n"
            "  airouter backup --path FILE.json | restore --path FILE.json (a new database)\n"
            "  airouter connection add --name N --provider TYPE --endpoint URL --api-key K\n"
            "      (the key is stored encrypted with storage.secret_key)\n"
            "  airouter connection list | connection remove --id ID [--force]\n"
            "  airouter model add --conn-id ID --name ALIAS --remote NAME [--deployment D]\n"
            "  airouter model list [--conn-id ID]\n"
            "  airouter assign --vkey-id ID --model-id ID --alias NAME [--tps N]\n"
            "      (these commands act on storage.database_url of -config FILE;\n"
            "       --json prints one JSON document)\n"
            "  airouter --version | --help\n",
            AR_VERSION);
}

/* The first line is what scripts match ("airouter 0.1.0..."); then one library a line. */
static void print_version(void)
{
    printf("airouter %s\n", AR_VERSION);
    ar_gw_lib_version_t libs[AR_GW_LIB_COUNT];
    size_t n = ar_gw_lib_versions(libs);
    for (size_t i = 0; i < n; i++)
        printf("  %-8s %s\n", libs[i].name, libs[i].version ? libs[i].version : "unknown");
}

int main(int argc, char **argv)
{
    if (argc > 1 && ar_cli_is_store_command(argv[1]))
        return ar_cli_store(argc, argv);
    ar_cli_args_t a;
    int rc = ar_cli_parse(argc, argv, &a);
    if (rc != 0) {
        fprintf(stderr, "airouter: %s\n\n", a.error);
        usage(stderr);
        return 2;
    }
    switch (a.command) {
    case AR_CMD_HELP: usage(stdout); return 0;
    case AR_CMD_VERSION: print_version(); return 0;
    case AR_CMD_CONFIG_CHECK: return ar_cli_config_check(a.config_path);
    case AR_CMD_CONFIG_IMPORT:
        return ar_cli_config_import(a.import_from, a.import_file, a.import_models);
    case AR_CMD_SERVE:
    default: return ar_cli_serve(a.config_path);
    }
}
