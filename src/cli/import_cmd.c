/*
 * import_cmd.c: `airouter config import`: converts another router's configuration
 * (config/import.h does the work) and prints the airouter YAML on stdout, the input's
 * problems on stderr.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/import.h"
#include "core/buf.h"

int ar_cli_config_import(const char *from, const char *file, const char *models_file)
{
    ar_import_from_t kind;
    if (ar_config_import_from(from, &kind) != 0) {
        fprintf(stderr, "airouter: config import: unknown --from '%s' (litellm, free-llm-router)\n",
                from);
        return 2;
    }
    if (kind == AR_IMPORT_LITELLM && models_file) {
        fprintf(stderr, "airouter: config import: a LiteLLM config is one file\n");
        return 2;
    }
    ar_buf_t out;
    ar_strlist_t errors = {0};
    ar_buf_init(&out, 64u << 20);
    int rc = ar_config_import(kind, file, models_file, &out, &errors);
    for (size_t i = 0; i < errors.cnt; i++)
        fprintf(stderr, "%s\n", errors.items[i]);
    if (rc == 0) {
        fwrite(out.ptr, 1, out.len, stdout);
    } else {
        fprintf(stderr, "%s: %zu problem%s\n", file, errors.cnt, errors.cnt == 1 ? "" : "s");
    }
    ar_strlist_dispose(&errors);
    ar_buf_dispose(&out);
    return rc == 0 ? 0 : 1;
}
