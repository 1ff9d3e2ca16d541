/*
 * test_import.c: `airouter config import` (config/import.h). Real-looking inputs under
 * tests/fixtures/config/import/ convert to their golden *.expected.yaml text, and the
 * output loads with the configuration loader; identical accounts share one credential;
 * what cannot be carried over is a comment; bad input gets FILE:LINE errors and no output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/import.h"
#include "testutil.h"

#define DIR "tests/fixtures/config/import/"

/* The fixtures are read by path: find the repository root as ar_test_fixture does. */
static void go_to_root(void)
{
    for (int i = 0; i < 5 && access(DIR "litellm.yaml", R_OK) != 0; i++)
        assert_int_equal(chdir(".."), 0);
    assert_int_equal(access(DIR "litellm.yaml", R_OK), 0);
}

static char *convert(ar_import_from_t from, const char *path, const char *models)
{
    ar_buf_t out;
    ar_strlist_t errs = {0};
    ar_buf_init(&out, 1u << 24);
    int rc = ar_config_import(from, path, models, &out, &errs);
    for (size_t i = 0; i < errs.cnt; i++)
        print_message("unexpected: %s\n", errs.items[i]);
    assert_int_equal(rc, 0);
    assert_int_equal(errs.cnt, 0);
    ar_strlist_dispose(&errs);
    char *s = malloc(out.len + 1);
    memcpy(s, out.ptr, out.len);
    s[out.len] = '\0';
    ar_buf_dispose(&out);
    return s;
}

/* The converted text must equal the golden file, and load. */
static ar_config_t *check_golden(const char *got, const char *golden_rel)
{
    char *want = ar_test_fixture(golden_rel, NULL);
    if (strcmp(got, want) != 0)
        print_message("--- got ---\n%s--- end ---\n", got);
    assert_string_equal(got, want);
    free(want);
    ar_config_t *cfg = NULL;
    ar_strlist_t errs = {0};
    int rc = ar_config_load_string("out.yaml", got, strlen(got), &cfg, &errs);
    for (size_t i = 0; i < errs.cnt; i++)
        print_message("loader: %s\n", errs.items[i]);
    assert_int_equal(rc, 0);
    ar_strlist_dispose(&errs);
    return cfg;
}

static const ar_model_conf_t *find_model(const ar_config_t *cfg, const char *name, const char *cred)
{
    for (size_t i = 0; i < cfg->models_cnt; i++) {
        if (strcmp(cfg->models[i].name, name) == 0 && strcmp(cfg->models[i].credential, cred) == 0)
            return &cfg->models[i];
    }
    fail_msg("no model %s on %s", name, cred);
    return NULL;
}

static void test_litellm_golden(void **state)
{
    (void)state;
    go_to_root();
    setenv("OPENAI_API_KEY", "sk-openai-test", 1);
    setenv("AZURE_EU_API_KEY", "az-test", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant-test", 1);
    setenv("GEMINI_API_KEY", "gm-test", 1);
    setenv("VERTEX_CREDENTIALS", "{\"type\": \"service_account\"}", 1);
    setenv("DEEPSEEK_API_KEY", "ds-test", 1);
    setenv("LITELLM_MASTER_KEY", "sk-master", 1);
    char *got = convert(AR_IMPORT_LITELLM, DIR "litellm.yaml", NULL);
    ar_config_t *cfg = check_golden(got, "config/import/litellm.expected.yaml");

    /* the three openai deployments with one key share one credential */
    assert_int_equal(cfg->credentials_cnt, 7);
    assert_string_equal(cfg->credentials[0].name, "openai");
    assert_int_equal(cfg->credentials[0].type, AR_CRED_OPENAI);
    assert_string_equal(cfg->credentials[0].api_key, "sk-openai-test");
    const ar_config_t *c = cfg;
    assert_int_equal(find_model(c, "gpt-4o", "openai")->rpm, 500);
    assert_int_equal(find_model(c, "gpt-4o", "openai")->tpm, 200000);
    assert_int_equal(find_model(c, "gpt-4o-mini", "openai")->rpm, 1000);
    find_model(c, "text-embedding-3-small", "openai");
    /* azure: api_base, api_version, the deployment as upstream model */
    const ar_cred_conf_t *az = ar_config_find_cred(c, "azure_my_eu");
    assert_non_null(az);
    assert_int_equal(az->type, AR_CRED_AZURE);
    assert_string_equal(az->base_url, "https://my-eu.openai.azure.com");
    assert_string_equal(az->api_version, "2024-10-21");
    assert_string_equal(find_model(c, "gpt-4o", "azure_my_eu")->model, "gpt-4o-eu");
    assert_int_equal(find_model(c, "gpt-4o", "azure_my_eu")->context_size, 128000);
    assert_int_equal(ar_config_find_cred(c, "anthropic")->type, AR_CRED_ANTHROPIC);
    assert_int_equal(find_model(c, "claude-sonnet", "anthropic")->max_concurrent, 8);
    assert_int_equal(find_model(c, "claude-sonnet", "anthropic")->max_output_tokens, 8192);
    assert_int_equal(ar_config_find_cred(c, "gemini")->type, AR_CRED_GEMINI);
    assert_int_equal(find_model(c, "gemini-flash", "gemini")->weight, 3);
    const ar_cred_conf_t *vx = ar_config_find_cred(c, "vertex_ai");
    assert_int_equal(vx->type, AR_CRED_VERTEX);
    assert_string_equal(vx->project_id, "my-gcp-project");
    assert_string_equal(vx->location, "europe-west4");
    /* an OpenAI-compatible api_base, named after its host */
    const ar_cred_conf_t *vllm = ar_config_find_cred(c, "vllm");
    assert_string_equal(vllm->base_url, "http://vllm.internal:8000/v1");
    const ar_model_conf_t *llama = find_model(c, "llama-3-70b", "vllm");
    assert_string_equal(llama->model, "meta-llama/Meta-Llama-3-70B-Instruct");
    assert_true(llama->input_cost_per_token > 4.9e-7 && llama->input_cost_per_token < 5.1e-7);
    assert_string_equal(ar_config_find_cred(c, "deepseek")->base_url, "https://api.deepseek.com");
    /* settings */
    assert_int_equal(c->routing.strategy, AR_STRATEGY_LEAST_BUSY);
    assert_int_equal(c->routing.max_retries, 2);
    assert_int_equal(c->circuit_breaker.failure_threshold, 4);
    assert_int_equal(c->circuit_breaker.cooldown_period_ms, 30000);
    assert_int_equal(c->server.request_timeout_ms, 120000);
    assert_string_equal(c->server.master_key, "sk-master");
    /* what could not be carried over is named */
    assert_non_null(strstr(got, "# not carried over: model_list[8] (line 55): model "
                                "'bedrock-claude': provider 'bedrock' has no airouter "
                                "credential type\n"));
    assert_non_null(strstr(got, "# not carried over: router_settings.fallbacks (line 74)"));
    assert_non_null(strstr(got, "# not carried over: general_settings.database_url (line 84)"));
    /* secrets stay references: nothing was resolved */
    assert_null(strstr(got, "sk-openai-test"));
    ar_config_unref(cfg);
    free(got);
}

static void test_freerouter_golden(void **state)
{
    (void)state;
    go_to_root();
    setenv("OPENROUTER_API_KEY", "or-test", 1);
    setenv("DEEPSEEK_API_KEY", "ds-test", 1);
    setenv("MASTER_KEY", "sk-master", 1);
    /* the models file named by modelsFile, relative to config.yaml, or given explicitly */
    char *got = convert(AR_IMPORT_FREE_LLM_ROUTER, DIR "freerouter.config.yaml", NULL);
    char *got2 = convert(AR_IMPORT_FREE_LLM_ROUTER, DIR "freerouter.config.yaml",
                         DIR "freerouter.models.yaml");
    assert_string_equal(got, got2);
    free(got2);
    ar_config_t *cfg = check_golden(got, "config/import/freerouter.expected.yaml");
    const ar_config_t *c = cfg;
    assert_int_equal(c->credentials_cnt, 2); /* groq is disabled */
    assert_string_equal(c->credentials[0].name, "openrouter");
    assert_string_equal(c->credentials[0].api_key, "or-test");
    assert_false(c->credentials[0].is_fallback);
    assert_true(c->credentials[1].is_fallback); /* deepseek serves the fallback alone */
    assert_int_equal(c->models_cnt, 3);
    const ar_model_conf_t *r1 = find_model(c, "deepseek-r1", "openrouter");
    assert_string_equal(r1->model, "deepseek/deepseek-r1:free");
    assert_int_equal(r1->kind, AR_MODEL_KIND_REASONING);
    assert_int_equal(r1->context_size, 64000);
    assert_int_equal(r1->max_output_tokens, 8000);
    assert_int_equal(r1->weight, 5);
    assert_int_equal(r1->max_concurrent, 3);
    assert_int_equal(r1->tags.cnt, 3);
    assert_string_equal(r1->tags.items[2], "math");
    assert_false(find_model(c, "qwen-2.5-coder", "openrouter")->available);
    assert_int_equal(c->routing.strategy, AR_STRATEGY_SMART);
    assert_int_equal(c->routing.max_retries, 3);
    assert_int_equal(c->routing.rate_limit_retries, 2);
    assert_int_equal(c->routing.retry_delay_ms, 1000);
    assert_true(c->routing.fallback_enabled);
    assert_string_equal(c->routing.fallback_credential, "deepseek");
    assert_string_equal(c->routing.fallback_model, "deepseek-chat");
    assert_int_equal(c->server.request_timeout_ms, 30000);
    assert_int_equal(c->circuit_breaker.stats_window_ms, 5 * 60000);
    assert_true(c->rate_limiting.enabled);
    assert_int_equal(c->rate_limiting.per_client.burst_size, 5);
    assert_int_equal(c->rate_limiting.per_model.requests_per_minute, 30);
    assert_non_null(strstr(got, "# not carried over: models[3] (line 35): model "
                                "'llama-3.1-8b': its provider groq is disabled\n"));
    assert_non_null(strstr(got, "# not carried over: models[0].speedTier (line 8)"));
    ar_config_unref(cfg);
    free(got);
}

/* ---- bad input ---- */

static void expect_import_errors(ar_import_from_t from, const char *yaml, const char *models,
                                 const char *const *want)
{
    char path[] = "/tmp/ar-import-XXXXXX", mpath[] = "/tmp/ar-import-m-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    if (models) {
        fd = mkstemp(mpath);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, models, strlen(models)), (ssize_t)strlen(models));
        close(fd);
    }
    ar_buf_t out;
    ar_strlist_t errs = {0};
    ar_buf_init(&out, 1u << 20);
    int rc = ar_config_import(from, path, models ? mpath : NULL, &out, &errs);
    size_t n = 0;
    while (want[n])
        n++;
    for (size_t i = 0; i < errs.cnt; i++) {
        const char *msg = errs.items[i];
        const char *rest = strncmp(msg, path, strlen(path)) == 0     ? msg + strlen(path)
                           : strncmp(msg, mpath, strlen(mpath)) == 0 ? msg + strlen(mpath)
                                                                     : msg;
        if (i >= n || strcmp(rest, want[i]) != 0)
            print_message("got [%zu]: %s\n", i, msg);
        if (i < n)
            assert_string_equal(rest, want[i]);
    }
    assert_int_equal(errs.cnt, n);
    assert_int_equal(rc, AR_EINVAL);
    assert_int_equal(out.len, 0);
    ar_strlist_dispose(&errs);
    ar_buf_dispose(&out);
    unlink(path);
    if (models)
        unlink(mpath);
}

static void test_litellm_bad_input(void **state)
{
    (void)state;
    expect_import_errors(AR_IMPORT_LITELLM,
                         "model_list:\n"
                         "  - model_name: a\n"
                         "    litellm_params:\n"
                         "      api_key: x\n"
                         "  - litellm_params: {model: openai/b}\n"
                         "  - model_name: c\n"
                         "    litellm_params:\n"
                         "      model: openai/c\n"
                         "      rpm: lots\n"
                         "  - model_name: d\n"
                         "    litellm_params: [1]\n"
                         "router_settings:\n"
                         "  cooldown_time: -5\n",
                         NULL,
                         (const char *const[]){
                             ":4: model_list[0].litellm_params.model is required",
                             ":5: model_list[1].model_name is required",
                             ":9: model_list[2].litellm_params.rpm: expected an integer, got "
                             "'lots'",
                             ":11: model_list[3].litellm_params: expected a mapping, got a list",
                             ":13: router_settings.cooldown_time: must not be negative",
                             NULL,
                         });
    expect_import_errors(AR_IMPORT_LITELLM, "general_settings: {master_key: k}\n", NULL,
                         (const char *const[]){
                             ":1: model_list is required (is this a LiteLLM config?)",
                             NULL,
                         });
    expect_import_errors(AR_IMPORT_LITELLM, "model_list:\n  - [unclosed\n", NULL,
                         (const char *const[]){
                             ":3: YAML syntax error: did not find expected ',' or ']'",
                             NULL,
                         });
}

static void test_freerouter_bad_input(void **state)
{
    (void)state;
    expect_import_errors(AR_IMPORT_FREE_LLM_ROUTER,
                         "providers:\n"
                         "  openrouter: {apiKey: k}\n"
                         "  mine: {apiKey: k}\n"
                         "routing:\n"
                         "  maxRetries: three\n"
                         "  fallback: {enabled: true, provider: nope, model: m}\n",
                         "models:\n"
                         "  - {name: a, provider: openrouter, model: x, weight: heavy}\n"
                         "  - {name: b, provider: elsewhere, model: y}\n"
                         "  - {name: c}\n",
                         (const char *const[]){
                             ":3: providers.mine.baseUrl is required",
                             ":5: routing.maxRetries: expected an integer, got 'three'",
                             ":6: routing.fallback.provider: no provider 'nope'",
                             ":2: models[0].weight: expected an integer, got 'heavy'",
                             ":3: models[1].provider: no provider 'elsewhere' in the config",
                             ":4: models[2]: name, provider and model are required",
                             NULL,
                         });
    /* no modelsFile and no second file */
    expect_import_errors(AR_IMPORT_FREE_LLM_ROUTER, "providers: {openrouter: {apiKey: k}}\n", NULL,
                         (const char *const[]){
                             ":1: no modelsFile: give the models.yaml as the second file "
                             "(airouter config import --from free-llm-router CONFIG MODELS)",
                             NULL,
                         });
}

static void test_unreadable_and_names(void **state)
{
    (void)state;
    ar_buf_t out;
    ar_strlist_t errs = {0};
    ar_buf_init(&out, 1u << 20);
    assert_int_equal(ar_config_import(AR_IMPORT_LITELLM, "/nonexistent/x.yaml", NULL, &out, &errs),
                     AR_EIO);
    assert_int_equal(errs.cnt, 1);
    assert_string_equal(errs.items[0],
                        "/nonexistent/x.yaml: cannot read: No such file or directory");
    ar_strlist_dispose(&errs);
    ar_buf_dispose(&out);
    ar_import_from_t f;
    assert_int_equal(ar_config_import_from("litellm", &f), 0);
    assert_int_equal(f, AR_IMPORT_LITELLM);
    assert_int_equal(ar_config_import_from("free-llm-router", &f), 0);
    assert_int_equal(f, AR_IMPORT_FREE_LLM_ROUTER);
    assert_int_equal(ar_config_import_from("portkey", &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_litellm_golden),       cmocka_unit_test(test_freerouter_golden),
        cmocka_unit_test(test_litellm_bad_input),    cmocka_unit_test(test_freerouter_bad_input),
        cmocka_unit_test(test_unreadable_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
