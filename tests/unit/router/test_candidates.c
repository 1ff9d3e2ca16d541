/*
 * test_candidates.c: unit tests of router/candidates.c: how the model names a client asks
 * for become the ordered list of deployments (SPEC sections 2 and 4): shared names,
 * `available: false`, unknown names, open and discovered credentials, credential and type
 * pins, names that contain '/', priority lists, "auto", and is_fallback credentials last.
 * Strategy ordering is pinned down in test_strategy.c; here round_robin is the default.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router_fixture.h"

/* The set of candidates, ignoring the strategy's rotation: sorted copies compared. */
typedef struct name_buf {
    char s[256];
} name_buf_t;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const name_buf_t *)a)->s, ((const name_buf_t *)b)->s);
}

static void expect_set_v(const ar_candidates_t *c, const char *const *want)
{
    name_buf_t got[16], exp[16];
    size_t n = 0;
    while (want[n])
        n++;
    assert_true(n <= 16);
    if (c->cnt != n) {
        for (size_t i = 0; i < c->cnt; i++)
            print_error("  got [%zu] %s\n", i, fx_item(c, i));
        fail_msg("%zu candidates, want %zu", c->cnt, n);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(got[i].s, sizeof(got[i].s), "%s", fx_item(c, i));
        snprintf(exp[i].s, sizeof(exp[i].s), "%s", want[i]);
    }
    qsort(got, n, sizeof(got[0]), cmp_name);
    qsort(exp, n, sizeof(exp[0]), cmp_name);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got[i].s, exp[i].s);
    assert_int_equal(c->empty_reason, 0);
}
#define expect_set(c, ...) expect_set_v((c), (const char *const[]){__VA_ARGS__, NULL})

static void test_shared_name(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "  - name: c\n    type: openai\n    api_key: sk-c\n"
                "models:\n"
                "  - name: gpt\n    credential: a\n"
                "  - name: gpt\n    credential: b\n    model: gpt-b-upstream\n"
                "  - name: other\n    credential: a\n"
                "  - name: gpt\n    credential: c\n    model: gpt-4o-2024-08-06\n");
    ar_candidates_t c = fx_query(&f, "gpt");
    expect_set(&c, "a:gpt", "b:gpt-b-upstream", "c:gpt-4o-2024-08-06");
    assert_int_equal(c.primary_cnt, 3);
    assert_null(c.unknown_model);
    for (size_t i = 0; i < c.cnt; i++) {
        assert_string_equal(c.items[i]->name, "gpt");
        assert_non_null(c.items[i]->model);
        assert_ptr_equal(c.items[i]->cred, &f.cfg->credentials[c.items[i]->cred_idx]);
        assert_false(c.items[i]->is_fallback);
        assert_non_null(c.items[i]->dep_state);
        assert_non_null(c.items[i]->cred_state);
    }
    c = fx_query(&f, "other");
    fx_expect(&c, "a:other");
    assert_int_equal(c.primary_cnt, 1);
    /* names are case-sensitive and exact */
    c = fx_query(&f, "GPT");
    assert_int_equal(c.cnt, 0);
    assert_int_equal(c.empty_reason, AR_ENOTFOUND);
    c = fx_query(&f, "gp");
    assert_int_equal(c.empty_reason, AR_ENOTFOUND);
    fx_close(&f);
}

static void test_unavailable(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "models:\n"
                "  - name: gpt\n    credential: a\n    available: false\n"
                "  - name: gpt\n    credential: b\n"
                "  - name: dead\n    credential: a\n    available: false\n"
                "  - name: dead\n    credential: b\n    available: false\n");
    for (int i = 0; i < 4; i++) {
        ar_candidates_t c = fx_query(&f, "gpt");
        fx_expect(&c, "b:gpt");
    }
    ar_candidates_t c = fx_query(&f, "dead");
    assert_int_equal(c.cnt, 0);
    assert_int_equal(c.primary_cnt, 0);
    assert_int_equal(c.empty_reason, AR_EUNAVAIL);
    assert_null(c.unknown_model);
    /* "auto" skips them too */
    c = fx_query(&f, "auto");
    fx_expect(&c, "b:gpt");
    fx_close(&f);
}

static void test_unknown_model(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "models:\n"
                "  - name: gpt\n    credential: a\n");
    ar_candidates_t c = fx_query(&f, "nope");
    assert_int_equal(c.cnt, 0);
    assert_int_equal(c.primary_cnt, 0);
    assert_int_equal(c.empty_reason, AR_ENOTFOUND);
    assert_non_null(c.unknown_model);
    assert_string_equal(c.unknown_model, "nope");
    c = fx_query(&f, "nope1", "nope2");
    assert_int_equal(c.empty_reason, AR_ENOTFOUND);
    assert_string_equal(c.unknown_model, "nope1");
    /* one known name in the list is enough */
    c = fx_query(&f, "nope", "gpt");
    fx_expect(&c, "a:gpt");
    assert_null(c.unknown_model);
    /* a pin to an unknown credential is just an unknown name */
    c = fx_query(&f, "zz/gpt");
    assert_int_equal(c.empty_reason, AR_ENOTFOUND);
    assert_string_equal(c.unknown_model, "zz/gpt");
    /* a name that did not decode arrives as the null span: unknown, never dereferenced */
    ar_span_t null_name = AR_SPAN_NULL;
    ar_route_query_t q = {.models = &null_name, .models_cnt = 1};
    assert_int_equal(ar_router_candidates(f.r, f.pool, &q, &c), 0);
    assert_int_equal(c.cnt, 0);
    assert_int_equal(c.empty_reason, AR_ENOTFOUND);
    fx_close(&f);
}

static void test_open_credentials(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: open1\n    type: mock\n"
                "  - name: open2\n    type: openai\n    api_key: sk-o\n"
                "models:\n"
                "  - name: gpt\n    credential: a\n");
    /* any name is served by the credentials without `models:` entries */
    ar_candidates_t c = fx_query(&f, "llama-3.1-70b");
    expect_set(&c, "open1:llama-3.1-70b", "open2:llama-3.1-70b");
    assert_int_equal(c.primary_cnt, 2);
    for (size_t i = 0; i < c.cnt; i++) {
        assert_null(c.items[i]->model);
        assert_string_equal(c.items[i]->name, "llama-3.1-70b");
        assert_int_equal(c.items[i]->weight, 1);
    }
    /* a configured name goes to its entries only */
    c = fx_query(&f, "gpt");
    fx_expect(&c, "a:gpt");
    /* the implicit deployments share state per (credential, model) across requests */
    ar_candidates_t c1 = fx_query(&f, "m-x");
    ar_candidates_t c2 = fx_query(&f, "m-x");
    assert_int_equal(c1.cnt, 2);
    assert_int_equal(c2.cnt, 2);
    for (size_t i = 0; i < 2; i++) {
        for (size_t k = 0; k < 2; k++) {
            if (c1.items[i]->cred_idx == c2.items[k]->cred_idx) {
                assert_ptr_equal(c1.items[i]->dep_state, c2.items[k]->dep_state);
                assert_ptr_equal(c1.items[i]->cred_state, c2.items[k]->cred_state);
            }
        }
    }
    /* names no upstream listed share the credential's "*" state: clients cannot grow the
     * state table or the metrics' label sets by inventing model names */
    assert_ptr_equal(c1.items[0]->dep_state,
                     ar_router_state_get(f.st, c1.items[0]->cred->name, "*"));
    fx_close(&f);
}

static void test_discovered_restricts_open(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: open1\n    type: mock\n"
                "  - name: open2\n    type: mock\n");
    assert_false(ar_router_has_discovered(f.r, 0));
    assert_null(ar_router_discovered(f.r, 0));
    char m1[] = "gpt-4o", m2[] = "gpt-4o-mini";
    char *ids[] = {m1, m2};
    ar_strlist_t list = {ids, 2};
    ar_router_set_discovered(f.r, 0, &list);
    m1[0] = 'X'; /* the router copied the ids */
    assert_true(ar_router_has_discovered(f.r, 0));
    assert_false(ar_router_has_discovered(f.r, 1));
    const ar_strlist_t *d = ar_router_discovered(f.r, 0);
    assert_non_null(d);
    assert_int_equal(d->cnt, 2);
    assert_string_equal(d->items[0], "gpt-4o");
    assert_string_equal(d->items[1], "gpt-4o-mini");

    ar_candidates_t c = fx_query(&f, "gpt-4o");
    expect_set(&c, "open1:gpt-4o", "open2:gpt-4o");
    c = fx_query(&f, "claude-3"); /* open2 was not discovered: still open */
    fx_expect(&c, "open2:claude-3");

    /* an empty discovered list serves nothing */
    ar_strlist_t none = {NULL, 0};
    ar_router_set_discovered(f.r, 1, &none);
    c = fx_query(&f, "claude-3");
    assert_int_equal(c.cnt, 0);
    assert_int_equal(c.empty_reason, AR_ENOTFOUND);
    assert_string_equal(c.unknown_model, "claude-3");
    c = fx_query(&f, "gpt-4o-mini");
    fx_expect(&c, "open1:gpt-4o-mini");
    fx_close(&f);
}

static void test_pins(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "  - name: oa\n    type: openai\n    api_key: sk-oa\n"
                "models:\n"
                "  - name: gpt\n    credential: a\n    model: up-a\n"
                "  - name: gpt\n    credential: b\n    model: up-b\n"
                "  - name: gpt\n    credential: oa\n    model: up-oa\n"
                "  - name: small\n    credential: b\n");
    for (int i = 0; i < 3; i++) {
        /* credential_name/model: only that credential, whatever the rotation */
        ar_candidates_t c = fx_query(&f, "b/gpt");
        fx_expect(&c, "b:up-b");
        c = fx_query(&f, "oa/gpt");
        fx_expect(&c, "oa:up-oa");
        /* type/model: every credential of that type */
        c = fx_query(&f, "openai/gpt");
        fx_expect(&c, "oa:up-oa");
        c = fx_query(&f, "mock/gpt");
        expect_set(&c, "a:up-a", "b:up-b");
    }
    /* a credential pinned by name serves the name even without an entry for it */
    ar_candidates_t c = fx_query(&f, "a/brand-new-model");
    fx_expect(&c, "a:brand-new-model");
    assert_null(c.items[0]->model);
    /* ... but a pinned type serves only its entries and open credentials */
    c = fx_query(&f, "openai/small");
    assert_int_equal(c.cnt, 0);
    assert_int_equal(c.empty_reason, AR_ENOTFOUND);
    c = fx_query(&f, "mock/small");
    fx_expect(&c, "b:small");
    fx_close(&f);
}

static void test_name_with_slash_is_not_a_pin(void **state)
{
    (void)state;
    fx_t f;
    /* a credential named like the prefix exists, yet the configured name wins */
    fx_open(&f, "credentials:\n"
                "  - name: meta-llama\n    type: mock\n"
                "  - name: together\n    type: openai\n    api_key: sk-t\n"
                "models:\n"
                "  - name: meta-llama/Llama-3-70b\n    credential: together\n"
                "  - name: Llama-3-70b\n    credential: meta-llama\n    model: local-llama\n");
    ar_candidates_t c = fx_query(&f, "meta-llama/Llama-3-70b");
    fx_expect(&c, "together:meta-llama/Llama-3-70b");
    /* without the configured name, the same prefix is a pin */
    c = fx_query(&f, "meta-llama/Llama-3-70b-x");
    fx_expect(&c, "meta-llama:Llama-3-70b-x");
    c = fx_query(&f, "together/meta-llama/Llama-3-70b");
    fx_expect(&c, "together:meta-llama/Llama-3-70b");
    fx_close(&f);

    /* an open credential gets the whole name when the prefix pins nothing */
    fx_open(&f, "credentials:\n  - name: open\n    type: mock\n");
    c = fx_query(&f, "meta-llama/Llama-3-8b");
    fx_expect(&c, "open:meta-llama/Llama-3-8b");
    c = fx_query(&f, "open/meta-llama/Llama-3-8b");
    fx_expect(&c, "open:meta-llama/Llama-3-8b");
    fx_close(&f);
}

static void test_priority_list_order(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "  - name: c\n    type: mock\n"
                "  - name: d\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: c\n"
                "  - name: y\n    credential: a\n"
                "  - name: x\n    credential: d\n"
                "  - name: y\n    credential: b\n");
    for (int i = 0; i < 6; i++) {
        ar_candidates_t c = fx_query(&f, "x", "y");
        assert_int_equal(c.cnt, 4);
        assert_int_equal(c.primary_cnt, 4);
        for (size_t k = 0; k < 2; k++)
            assert_string_equal(c.items[k]->name, "x");
        for (size_t k = 2; k < 4; k++)
            assert_string_equal(c.items[k]->name, "y");
        c = fx_query(&f, "y", "x");
        for (size_t k = 0; k < 2; k++)
            assert_string_equal(c.items[k]->name, "y");
        for (size_t k = 2; k < 4; k++)
            assert_string_equal(c.items[k]->name, "x");
        /* a pinned name first, then the rest; nothing is listed twice */
        c = fx_query(&f, "d/x", "x");
        assert_int_equal(c.cnt, 2);
        assert_string_equal(fx_item(&c, 0), "d:x");
        assert_string_equal(fx_item(&c, 1), "c:x");
        c = fx_query(&f, "x", "x");
        assert_int_equal(c.cnt, 2);
    }
    /* an empty query and "auto" mean every available deployment */
    ar_candidates_t c = fx_query_v(&f, (const char *const[]){NULL});
    expect_set(&c, "a:y", "b:y", "c:x", "d:x");
    c = fx_query(&f, "auto");
    expect_set(&c, "a:y", "b:y", "c:x", "d:x");
    /* a list ending in "auto": the named ones first, then the rest */
    c = fx_query(&f, "y", "auto");
    assert_int_equal(c.cnt, 4);
    assert_string_equal(c.items[0]->name, "y");
    assert_string_equal(c.items[1]->name, "y");
    fx_close(&f);
}

static void test_fallback_after_primaries(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: fb\n    type: mock\n    is_fallback: true\n"
                "  - name: a\n    type: mock\n"
                "  - name: fb2\n    type: openai\n    api_key: sk-f\n    is_fallback: true\n"
                "  - name: b\n    type: mock\n"
                "models:\n"
                "  - name: gpt\n    credential: fb\n"
                "  - name: gpt\n    credential: a\n"
                "  - name: gpt\n    credential: fb2\n"
                "  - name: gpt\n    credential: b\n"
                "  - name: only-fb\n    credential: fb\n"
                "  - name: z\n    credential: b\n");
    for (int i = 0; i < 8; i++) {
        ar_candidates_t c = fx_query(&f, "gpt");
        assert_int_equal(c.cnt, 4);
        assert_int_equal(c.primary_cnt, 2);
        assert_false(c.items[0]->is_fallback);
        assert_false(c.items[1]->is_fallback);
        assert_true(c.items[2]->is_fallback);
        assert_true(c.items[3]->is_fallback);
        /* a fallback of the first name still comes after a primary of the second */
        c = fx_query(&f, "only-fb", "z");
        fx_expect(&c, "b:z", "fb:only-fb");
        assert_int_equal(c.primary_cnt, 1);
    }
    ar_candidates_t c = fx_query(&f, "only-fb");
    fx_expect(&c, "fb:only-fb");
    assert_int_equal(c.primary_cnt, 0);
    fx_close(&f);
}

static void test_rotation_per_name(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: x\n    credential: b\n"
                "  - name: y\n    credential: a\n"
                "  - name: y\n    credential: b\n");
    /* each name has its own rotation: asking for y does not move x along */
    ar_candidates_t c = fx_query(&f, "x");
    const char *first_x = c.items[0]->cred->name;
    for (int i = 0; i < 3; i++)
        (void)fx_query(&f, "y");
    c = fx_query(&f, "x");
    assert_string_not_equal(c.items[0]->cred->name, first_x);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_name),
        cmocka_unit_test(test_unavailable),
        cmocka_unit_test(test_unknown_model),
        cmocka_unit_test(test_open_credentials),
        cmocka_unit_test(test_discovered_restricts_open),
        cmocka_unit_test(test_pins),
        cmocka_unit_test(test_name_with_slash_is_not_a_pin),
        cmocka_unit_test(test_priority_list_order),
        cmocka_unit_test(test_fallback_after_primaries),
        cmocka_unit_test(test_rotation_per_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
