/*
 * test_extend.c: unit tests of ar_config_extend: store connections and provider models
 * appended to a loaded config get the loader's defaults, keep their secret, are marked
 * from_store, leave the base untouched, and refuse what the loader would refuse. Every
 * allocation goes through cmocka's checked allocator, so a leak or double free fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/str.h"

static const char base_yaml[] = "server:\n"
                                "  master_key: k\n"
                                "  default_models_rpm: 77\n"
                                "fail2ban:\n"
                                "  error_code_rules:\n"
                                "    - code: 429\n"
                                "      max_attempts: 5\n"
                                "credentials:\n"
                                "  - name: main\n"
                                "    type: openai\n"
                                "    api_key: sk-file\n"
                                "    headers: {X-A: b}\n"
                                "models:\n"
                                "  - name: gpt\n"
                                "    credential: main\n"
                                "    tags: [a, b]\n";

static ar_config_t *load_base(void)
{
    ar_config_t *cfg = NULL;
    ar_strlist_t errs = {0};
    assert_int_equal(ar_config_load_string("b.yaml", base_yaml, strlen(base_yaml), &cfg, &errs), 0);
    ar_strlist_dispose(&errs);
    return cfg;
}

static void test_extend_defaults(void **state)
{
    (void)state;
    ar_config_t *base = load_base();
    ar_config_extra_cred_t creds[] = {
        {"store:oa", "openai", "http://127.0.0.1:9/v1/", "sk-stored-secret"},
        {"store:az", "azure", "https://az.example", "az-secret"},
    };
    ar_config_extra_model_t models[] = {
        {"store:oa/fast", "store:oa", "gpt-4o-mini"},
        {"store:az/big", "store:az", "my-deployment"},
    };
    ar_config_t *cfg = NULL;
    char err[256] = "";
    assert_int_equal(ar_config_extend(base, creds, 2, models, 2, &cfg, err, sizeof(err)), 0);
    assert_non_null(cfg);
    assert_ptr_not_equal(cfg, base);

    /* the base is unchanged */
    assert_int_equal(base->credentials_cnt, 1);
    assert_int_equal(base->models_cnt, 1);

    /* the copy holds the base, deep */
    assert_int_equal(cfg->credentials_cnt, 3);
    assert_int_equal(cfg->models_cnt, 3);
    assert_string_equal(cfg->credentials[0].name, "main");
    assert_ptr_not_equal(cfg->credentials[0].name, base->credentials[0].name);
    assert_string_equal(cfg->credentials[0].headers[0].value, "b");
    assert_ptr_not_equal(cfg->credentials[0].headers, base->credentials[0].headers);
    assert_string_equal(cfg->models[0].tags.items[1], "b");
    assert_ptr_not_equal(cfg->models[0].tags.items, base->models[0].tags.items);
    assert_int_equal(cfg->fail2ban.rules_cnt, 1);
    assert_ptr_not_equal(cfg->fail2ban.rules, base->fail2ban.rules);
    assert_string_equal(cfg->server.master_key, "k");
    assert_ptr_not_equal(cfg->server.master_key, base->server.master_key);
    assert_false(cfg->credentials[0].from_store);
    assert_false(cfg->models[0].from_store);

    /* the store's credentials: the loader's defaults, the secret, the trailing / gone */
    const ar_cred_conf_t *oa = ar_config_find_cred(cfg, "store:oa");
    assert_non_null(oa);
    assert_true(oa->from_store);
    assert_int_equal(oa->type, AR_CRED_OPENAI);
    assert_string_equal(oa->type_name, "openai");
    assert_string_equal(oa->base_url, "http://127.0.0.1:9/v1");
    assert_string_equal(oa->api_key, "sk-stored-secret");
    assert_int_equal(oa->rpm, AR_UNLIMITED);
    assert_int_equal(oa->tpm, AR_UNLIMITED);
    assert_int_equal(oa->weight, 1);
    assert_false(oa->is_fallback);
    const ar_cred_conf_t *az = ar_config_find_cred(cfg, "store:az");
    assert_string_equal(az->api_version, "2024-10-21");

    /* the store's models */
    const ar_model_conf_t *m = &cfg->models[1];
    assert_true(m->from_store);
    assert_string_equal(m->name, "store:oa/fast");
    assert_string_equal(m->model, "gpt-4o-mini");
    assert_string_equal(m->credential, "store:oa");
    assert_int_equal(m->credential_idx, 1);
    assert_int_equal(m->rpm, 77);
    assert_int_equal(m->tpm, AR_UNLIMITED);
    assert_int_equal(m->max_concurrent, AR_UNLIMITED);
    assert_int_equal(m->weight, 1);
    assert_true(m->available);
    assert_true(m->input_cost_per_token < 0);
    assert_int_equal(cfg->models[2].credential_idx, 2);

    /* each frees on its own, in either order */
    ar_config_unref(base);
    ar_config_unref(cfg);
}

static void test_extend_nothing(void **state)
{
    (void)state;
    ar_config_t *base = load_base();
    ar_config_t *cfg = NULL;
    char err[128];
    assert_int_equal(ar_config_extend(base, NULL, 0, NULL, 0, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->credentials_cnt, 1);
    assert_int_equal(cfg->models_cnt, 1);
    ar_config_unref(cfg);
    ar_config_unref(base);
}

static void expect_refused(const ar_config_extra_cred_t *c, size_t n,
                           const ar_config_extra_model_t *m, size_t mn, const char *want)
{
    ar_config_t *base = load_base();
    ar_config_t *cfg = NULL;
    char err[256] = "";
    assert_int_equal(ar_config_extend(base, c, n, m, mn, &cfg, err, sizeof(err)), AR_EINVAL);
    assert_null(cfg);
    assert_string_equal(err, want);
    assert_int_equal(base->credentials_cnt, 1);
    ar_config_unref(base);
}

static void test_extend_refused(void **state)
{
    (void)state;
    ar_config_extra_cred_t bad_type = {"store:x", "nope", "http://h", "secret-1"};
    expect_refused(&bad_type, 1, NULL, 0, "connection 'store:x': unknown provider type 'nope'");
    ar_config_extra_cred_t bad_url = {"store:x", "openai", "ftp://h", "secret-1"};
    expect_refused(&bad_url, 1, NULL, 0,
                   "connection 'store:x': the endpoint must be an http(s) URL with a host");
    ar_config_extra_cred_t dup = {"main", "openai", "http://h", "secret-1"};
    expect_refused(&dup, 1, NULL, 0, "connection 'main': a credential of that name exists");
    ar_config_extra_cred_t nokey = {"store:c", "anthropic", "http://h", ""};
    expect_refused(&nokey, 1, NULL, 0,
                   "connection 'store:c'.api_key is required for type anthropic");
    ar_config_extra_cred_t vx = {"store:v", "vertex-ai", "http://h", "k-123"};
    expect_refused(&vx, 1, NULL, 0,
                   "connection 'store:v'.project_id is required for type vertex-ai");
    ar_config_extra_cred_t ok = {"store:ok", "openai", "http://h", "secret-1"};
    ar_config_extra_model_t orphan = {"store:z/m", "store:z", "m"};
    expect_refused(&ok, 1, &orphan, 1, "provider model 'store:z/m': no connection named 'store:z'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extend_defaults),
        cmocka_unit_test(test_extend_nothing),
        cmocka_unit_test(test_extend_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
