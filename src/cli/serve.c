/*
 * serve.c: `airouter serve` and `airouter config check`.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "config/config.h"
#include "core/log.h"
#include "gateway/gateway.h"

int ar_cli_serve(const char *config_path)
{
    ar_log_init(true);
    int rc = ar_gateway_run(config_path);
    ar_log_shutdown();
    return rc;
}

int ar_cli_config_check(const char *config_path)
{
    ar_config_t *cfg = NULL;
    ar_strlist_t errors = {0};
    if (ar_config_load(config_path, &cfg, &errors) != 0) {
        for (size_t i = 0; i < errors.cnt; i++)
            fprintf(stderr, "%s\n", errors.items[i]);
        fprintf(stderr, "%s: %zu problem%s\n", config_path, errors.cnt, errors.cnt == 1 ? "" : "s");
        ar_strlist_dispose(&errors);
        return 1;
    }
    /* Keys that are accepted but do nothing yet are worth knowing, not failing over. */
    for (size_t i = 0; i < cfg->warnings.cnt; i++)
        fprintf(stderr, "warning: %s\n", cfg->warnings.items[i]);
    printf("%s: configuration OK (%zu credentials, %zu models", config_path, cfg->credentials_cnt,
           cfg->models_cnt);
    if (cfg->warnings.cnt)
        printf(", %zu warning%s", cfg->warnings.cnt, cfg->warnings.cnt == 1 ? "" : "s");
    printf(")\n");
    ar_config_unref(cfg);
    return 0;
}
