/*
 * fuzz_config.c: libFuzzer target for the config loader (config/config.c, schema.c, env.c):
 * the input is a YAML file. Environment references resolve against variables set here
 * (AR_FUZZ_KEY, PORT, EMPTY, SA_FILE, which names a service-account key file written at
 * start). Checked: a refused config always says why, as "fuzz.yaml:..." lines; an accepted
 * one yields a provider for each credential, as at start; an environment variable's value
 * (a secret, here) never appears in a message unless the file spelled it out itself; and
 * nothing leaks (libFuzzer's leak check runs after every input).
 */
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_common.h"

#define SECRET "sk-fuzz-env-secret-0123456789"

static char sa_path[] = "/tmp/airouter-fuzz-sa-XXXXXX";

static void remove_sa(void)
{
    unlink(sa_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("AR_FUZZ_KEY", SECRET, 1);
    setenv("PORT", "8080", 1);
    setenv("EMPTY", "", 1);
    int fd = mkstemp(sa_path);
    char *sa = fz_service_account_json();
    if (fd < 0 || write(fd, sa, strlen(sa)) != (ssize_t)strlen(sa))
        fz_fail("cannot write the service-account file");
    close(fd);
    free(sa);
    atexit(remove_sa);
    setenv("SA_FILE", sa_path, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ar_config_t *cfg = NULL;
    ar_strlist_t errs = {0};
    const char *text = (const char *)data;
    int rc = ar_config_load_string("fuzz.yaml", text, size, &cfg, &errs);
    bool spelled = memmem(text, size, SECRET, sizeof(SECRET) - 1) != NULL;
    for (size_t i = 0; i < errs.cnt; i++) {
        const char *m = errs.items[i];
        if (strncmp(m, "fuzz.yaml:", 10) != 0)
            fz_fail("a config message without its file name: %s", m);
        if (!spelled && strstr(m, SECRET))
            fz_fail("an environment variable's value reached a message: %s", m);
    }
    if (rc != 0) {
        if (cfg)
            fz_fail("a refused config came with a config");
        if (errs.cnt == 0)
            fz_fail("a config was refused without a message");
    } else {
        if (!cfg)
            fz_fail("an accepted config is missing");
        for (size_t i = 0; i < cfg->credentials_cnt; i++) {
            char err[256];
            ar_provider_t *p = ar_provider_create(&cfg->credentials[i], err, sizeof(err));
            if (p)
                ar_provider_destroy(p);
            else if (!err[0])
                fz_fail("credential %zu refused without a message", i);
        }
        ar_config_unref(ar_config_ref(cfg));
        ar_config_unref(cfg);
    }
    ar_strlist_dispose(&errs);
    return 0;
}
