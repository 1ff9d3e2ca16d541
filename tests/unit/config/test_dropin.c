/*
 * test_dropin.c: the config.yaml of each auto_ai_router version loads unchanged
 * (tests/fixtures/config/auto_ai_router_*.yaml): credentials without `type` are openai,
 * keys that mean nothing to airouter are warnings, not errors, and every value lands
 * where auto_ai_router meant it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/str.h"
#include "testutil.h"

static ar_config_t *load_fixture(const char *rel)
{
    size_t len = 0;
    char *text = ar_test_fixture(rel, &len);
    ar_config_t *cfg = NULL;
    ar_strlist_t errs = {0};
    int rc = ar_config_load_string(rel, text, len, &cfg, &errs);
    for (size_t i = 0; i < errs.cnt; i++)
        print_message("unexpected: %s\n", errs.items[i]);
    assert_int_equal(errs.cnt, 0);
    assert_int_equal(rc, 0);
    ar_strlist_dispose(&errs);
    free(text);
    return cfg;
}

/* The early version: no credential types, limits of -1, a 5m timeout. */
static void test_early_version(void **state)
{
    (void)state;
    ar_config_t *cfg = load_fixture("config/auto_ai_router_early.yaml");
    assert_int_equal(cfg->warnings.cnt, 0);
    assert_int_equal(cfg->credentials_cnt, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(cfg->credentials[i].type, AR_CRED_OPENAI);
        assert_string_equal(cfg->credentials[i].type_name, "openai");
    }
    assert_string_equal(cfg->credentials[0].base_url, "https://api.openai.com");
    assert_int_equal(cfg->credentials[0].rpm, 60);
    assert_int_equal(cfg->credentials[1].rpm, AR_UNLIMITED);
    assert_string_equal(cfg->credentials[1].base_url, "https://api.another.com");
    assert_int_equal(cfg->server.request_timeout_ms, 5 * 60 * 1000);
    assert_int_equal(cfg->server.default_models_rpm, 50);
    assert_true(cfg->server.replace_v1_models);
    assert_int_equal(cfg->fail2ban.max_attempts, 3);
    assert_int_equal(cfg->fail2ban.ban_duration_ms, AR_PERMANENT);
    ar_config_unref(cfg);
}

/* The current version: every server key of its README, litellm_db, the three types. */
static void test_full_version(void **state)
{
    (void)state;
    ar_config_t *cfg = load_fixture("config/auto_ai_router_full.yaml");
    assert_int_equal(cfg->credentials_cnt, 4);
    assert_int_equal(cfg->credentials[0].type, AR_CRED_OPENAI);
    assert_int_equal(cfg->credentials[0].tpm, 50000);
    assert_int_equal(cfg->credentials[1].type, AR_CRED_ANTHROPIC);
    assert_int_equal(cfg->credentials[2].type, AR_CRED_VERTEX);
    assert_string_equal(cfg->credentials[2].location, "global");
    assert_int_equal(cfg->credentials[3].type, AR_CRED_PROXY);
    assert_true(cfg->credentials[3].is_fallback);
    assert_int_equal(cfg->models_cnt, 3);
    assert_string_equal(cfg->models[1].credential, "vertex_ai");
    assert_int_equal(cfg->fail2ban.rules_cnt, 1);
    /* max_idle_conns_per_host is ignored with its reason; litellm_db's pool sizes are read */
    assert_int_equal(cfg->warnings.cnt, 1);
    assert_non_null(strstr(cfg->warnings.items[0], "auto_ai_router_full.yaml:13: "
                                                   "server.max_idle_conns_per_host: ignored ("));
    assert_int_equal(cfg->litellm_db.min_conns, 5);
    assert_int_equal(cfg->server.max_idle_conns, 200);
    ar_config_unref(cfg);
}

/* A credential without type is openai in every respect: keys of other types are refused
 * as for `type: openai`, and an explicit null type means the same as none. */
static void test_missing_type_is_openai(void **state)
{
    (void)state;
    static const char bad[] = "server: {master_key: k}\n"
                              "credentials:\n"
                              "  - name: a\n"
                              "    api_version: '2024-10-21'\n";
    ar_config_t *cfg = NULL;
    ar_strlist_t errs = {0};
    assert_int_equal(ar_config_load_string("t.yaml", bad, strlen(bad), &cfg, &errs), AR_EINVAL);
    assert_int_equal(errs.cnt, 1);
    assert_non_null(strstr(errs.items[0], "t.yaml:4: credentials[0].api_version"));
    ar_strlist_dispose(&errs);

    static const char null_type[] = "server: {master_key: k}\n"
                                    "credentials:\n"
                                    "  - {name: a, type: ~}\n";
    assert_int_equal(ar_config_load_string("t.yaml", null_type, strlen(null_type), &cfg, &errs), 0);
    assert_int_equal(cfg->credentials[0].type, AR_CRED_OPENAI);
    assert_string_equal(cfg->credentials[0].base_url, "https://api.openai.com");
    ar_config_unref(cfg);
    ar_strlist_dispose(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_early_version),
        cmocka_unit_test(test_full_version),
        cmocka_unit_test(test_missing_type_is_openai),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
