/*
 * test_strategy.c: unit tests of router/strategy.c and router/state.c: round_robin spreads
 * the first choice evenly, weighted gives exact proportions over sum(weights) requests
 * (weight 0 never first), least_busy prefers fewer attempts in flight, and the runtime
 * state (in-flight, request and error counters) is keyed by name and survives rebuilding
 * the router, as on SIGHUP.
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

#define MAXN 8

/* Asks for name `calls` times; counts how often each of names[] came first. Also checks
 * every answer lists all n deployments, each once. */
static void first_counts(fx_t *f, const char *name, const char *const *names, size_t n, int calls,
                         int *counts)
{
    memset(counts, 0, n * sizeof(int));
    for (int i = 0; i < calls; i++) {
        ar_candidates_t c = fx_query(f, name);
        assert_int_equal(c.cnt, n);
        int seen[MAXN] = {0};
        for (size_t k = 0; k < n; k++)
            seen[fx_index_of(fx_item(&c, k), names, n)]++;
        for (size_t k = 0; k < n; k++)
            assert_int_equal(seen[k], 1);
        counts[fx_index_of(fx_item(&c, 0), names, n)]++;
    }
}

static void test_round_robin_even(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "  - name: c\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: x\n    credential: b\n"
                "  - name: x\n    credential: c\n");
    static const char *const names[] = {"a:x", "b:x", "c:x"};
    int counts[3];
    first_counts(&f, "x", names, 3, 300, counts);
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 100);
    assert_int_equal(counts[2], 100);

    /* each answer is the same cycle rotated, and consecutive answers start one further */
    ar_candidates_t prev = fx_query(&f, "x");
    for (int i = 0; i < 6; i++) {
        ar_candidates_t c = fx_query(&f, "x");
        size_t p0 = fx_index_of(fx_item(&prev, 0), names, 3);
        size_t c0 = fx_index_of(fx_item(&c, 0), names, 3);
        assert_int_equal(c0, (p0 + 1) % 3);
        for (size_t k = 0; k < 3; k++)
            assert_int_equal(fx_index_of(fx_item(&c, k), names, 3), (c0 + k) % 3);
        prev = c;
    }
    fx_close(&f);
}

static void test_round_robin_skips_unavailable(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "  - name: c\n    type: mock\n"
                "  - name: d\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: x\n    credential: b\n    available: false\n"
                "  - name: x\n    credential: c\n"
                "  - name: x\n    credential: d\n");
    static const char *const names[] = {"a:x", "c:x", "d:x"};
    int counts[3];
    first_counts(&f, "x", names, 3, 300, counts);
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 100);
    assert_int_equal(counts[2], 100);
    fx_close(&f);
}

static void test_weighted_exact_proportions(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "routing:\n  strategy: weighted\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n    weight: 1\n"
                "  - name: x\n    credential: b\n    weight: 3\n");
    assert_int_equal(f.cfg->routing.strategy, AR_STRATEGY_WEIGHTED);
    static const char *const names[] = {"a:x", "b:x"};
    int counts[2];
    first_counts(&f, "x", names, 2, 400, counts);
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 300);
    /* and in every window of sum(weights) consecutive requests, too */
    for (int w = 0; w < 5; w++) {
        first_counts(&f, "x", names, 2, 4, counts);
        assert_int_equal(counts[0], 1);
        assert_int_equal(counts[1], 3);
    }
    fx_close(&f);
}

static void test_weighted_zero_never_first(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "routing:\n  strategy: weighted\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "  - name: c\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n    weight: 0\n"
                "  - name: x\n    credential: b\n    weight: 2\n"
                "  - name: x\n    credential: c\n    weight: 5\n");
    static const char *const names[] = {"a:x", "b:x", "c:x"};
    int counts[3];
    first_counts(&f, "x", names, 3, 700, counts); /* weight 0 is still a candidate */
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 200);
    assert_int_equal(counts[2], 500);
    fx_close(&f);

    /* all weights 0: plain rotation */
    fx_open(&f, "routing:\n  strategy: weighted\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n    weight: 0\n"
                "  - name: x\n    credential: b\n    weight: 0\n");
    first_counts(&f, "x", names, 2, 100, counts);
    assert_int_equal(counts[0], 50);
    assert_int_equal(counts[1], 50);
    fx_close(&f);
}

static void test_weighted_open_credentials_use_credential_weight(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "routing:\n  strategy: weighted\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n    weight: 1\n"
                "  - name: b\n    type: mock\n    weight: 2\n");
    static const char *const names[] = {"a:m", "b:m"};
    int counts[2];
    first_counts(&f, "m", names, 2, 300, counts);
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 200);
    fx_close(&f);
}

/* The deployment named "cred:upstream" among the candidates for name. */
static const ar_deployment_t *dep(fx_t *f, const char *name, const char *item)
{
    ar_candidates_t c = fx_query(f, name);
    for (size_t i = 0; i < c.cnt; i++) {
        if (strcmp(fx_item(&c, i), item) == 0)
            return c.items[i];
    }
    fail_msg("no candidate %s for %s", item, name);
    return NULL;
}

static void test_least_busy(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "routing:\n  strategy: least_busy\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "  - name: c\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: x\n    credential: b\n"
                "  - name: x\n    credential: c\n");
    const ar_deployment_t *a = dep(&f, "x", "a:x");
    const ar_deployment_t *b = dep(&f, "x", "b:x");
    const ar_deployment_t *cc = dep(&f, "x", "c:x");
    fx_begin(&f, a);
    fx_begin(&f, a);
    fx_begin(&f, b);
    for (int i = 0; i < 9; i++) {
        ar_candidates_t c = fx_query(&f, "x");
        fx_expect(&c, "c:x", "b:x", "a:x");
    }
    fx_begin(&f, cc);
    fx_begin(&f, cc);
    fx_begin(&f, cc);
    for (int i = 0; i < 9; i++) {
        ar_candidates_t c = fx_query(&f, "x");
        fx_expect(&c, "b:x", "a:x", "c:x");
    }
    /* ties keep the rotation, so equal load spreads evenly */
    fx_end(&f, a, false);
    fx_end(&f, a, false);
    fx_end(&f, b, false);
    fx_end(&f, cc, false);
    fx_end(&f, cc, false);
    fx_end(&f, cc, false);
    static const char *const names[] = {"a:x", "b:x", "c:x"};
    int counts[3];
    first_counts(&f, "x", names, 3, 300, counts);
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 100);
    assert_int_equal(counts[2], 100);
    /* one busy, two idle: the busy one is never first and always last */
    fx_begin(&f, b);
    for (int i = 0; i < 6; i++) {
        ar_candidates_t c = fx_query(&f, "x");
        assert_string_equal(fx_item(&c, 2), "b:x");
    }
    fx_end(&f, b, true);
    fx_close(&f);
}

static void set_ttfb(const ar_deployment_t *d, uint64_t us)
{
    atomic_store(&((ar_target_state_t *)d->dep_state)->ttfb_ewma_us, us);
}

/* ok successes and fail failures at t = 1 s, in the deployment's stats window */
static void set_outcomes(const ar_deployment_t *d, int ok, int fail)
{
    ar_target_state_t *s = d->dep_state;
    ar_window_configure(&s->ok, 300000);
    ar_window_configure(&s->fail, 300000);
    ar_window_add(&s->ok, 1000, ok);
    ar_window_add(&s->fail, 1000, fail);
}

#define THREE_X(strategy)                                                                          \
    "routing:\n  strategy: " strategy "\n"                                                         \
    "credentials:\n"                                                                               \
    "  - name: a\n    type: mock\n"                                                                \
    "  - name: b\n    type: mock\n"                                                                \
    "  - name: c\n    type: mock\n"                                                                \
    "models:\n"                                                                                    \
    "  - name: x\n    credential: a\n"                                                             \
    "  - name: x\n    credential: b\n"                                                             \
    "  - name: x\n    credential: c\n"

static void test_lowest_latency_orders_by_ttfb(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, THREE_X("lowest_latency"));
    set_ttfb(dep(&f, "x", "a:x"), 90000);
    set_ttfb(dep(&f, "x", "b:x"), 20000);
    set_ttfb(dep(&f, "x", "c:x"), 50000);
    for (int i = 0; i < 6; i++) {
        ar_candidates_t c = fx_query(&f, "x");
        fx_expect(&c, "b:x", "c:x", "a:x");
    }
    /* an unmeasured deployment goes first, so it gets measured */
    set_ttfb(dep(&f, "x", "c:x"), 0);
    ar_candidates_t c = fx_query(&f, "x");
    fx_expect(&c, "c:x", "b:x", "a:x");
    fx_close(&f);
}

static void test_smart_scores(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, THREE_X("smart"));
    const ar_deployment_t *a = dep(&f, "x", "a:x");
    const ar_deployment_t *b = dep(&f, "x", "b:x");
    const ar_deployment_t *cc = dep(&f, "x", "c:x");
    /* same latency and weight; a never succeeds, b always, c half the time */
    set_ttfb(a, 10000);
    set_ttfb(b, 10000);
    set_ttfb(cc, 10000);
    set_outcomes(a, 0, 10);
    set_outcomes(b, 10, 0);
    set_outcomes(cc, 5, 5);
    static const char *const names[] = {"a:x", "b:x", "c:x"};
    int counts[3];
    memset(counts, 0, sizeof(counts));
    for (int i = 0; i < 3000; i++) {
        ar_candidates_t c = fx_query_at(&f, "x", 2000);
        counts[fx_index_of(fx_item(&c, 0), names, 3)]++;
        /* score 0 is never first, and the rest follow by score */
        assert_string_equal(fx_item(&c, 2), "a:x");
    }
    assert_int_equal(counts[0], 0);
    /* expected 2:1 for b:c (scores 1.0 and 0.5): allow a wide margin, it is random */
    assert_in_range(counts[1], 1700, 2300);
    assert_in_range(counts[2], 700, 1300);
    fx_close(&f);

    /* latency: b twice as slow as c, same success: c is picked about twice as often */
    fx_open(&f, THREE_X("smart"));
    a = dep(&f, "x", "a:x");
    b = dep(&f, "x", "b:x");
    cc = dep(&f, "x", "c:x");
    set_outcomes(a, 0, 10);
    set_ttfb(a, 10000);
    set_ttfb(b, 20000);
    set_ttfb(cc, 10000);
    memset(counts, 0, sizeof(counts));
    for (int i = 0; i < 3000; i++) {
        ar_candidates_t c = fx_query_at(&f, "x", 2000);
        counts[fx_index_of(fx_item(&c, 0), names, 3)]++;
    }
    assert_int_equal(counts[0], 0);
    assert_in_range(counts[2], 1700, 2300);
    fx_close(&f);
}

static void test_latency_strategies_list_everything(void **state)
{
    (void)state;
    static const char *const strategies[] = {"lowest_latency", "smart"};
    for (size_t s = 0; s < 2; s++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "routing:\n  strategy: %s\n"
                 "credentials:\n"
                 "  - name: a\n    type: mock\n"
                 "  - name: b\n    type: mock\n"
                 "models:\n"
                 "  - name: x\n    credential: a\n"
                 "  - name: x\n    credential: b\n",
                 strategies[s]);
        fx_t f;
        fx_open(&f, yaml);
        static const char *const names[] = {"a:x", "b:x"};
        int counts[2];
        first_counts(&f, "x", names, 2, 10, counts);
        assert_int_equal(counts[0] + counts[1], 10);
        fx_close(&f);
    }
}

static void test_state_keys(void **state)
{
    (void)state;
    ar_router_state_t *st = ar_router_state_create();
    ar_target_state_t *c1 = ar_router_state_get(st, "cred", NULL);
    ar_target_state_t *d1 = ar_router_state_get(st, "cred", "gpt");
    assert_ptr_equal(ar_router_state_get(st, "cred", NULL), c1);
    assert_ptr_equal(ar_router_state_get(st, "cred", "gpt"), d1);
    assert_ptr_not_equal(c1, d1);
    assert_string_equal(c1->cred_name, "cred");
    assert_null(c1->model_name);
    assert_string_equal(d1->cred_name, "cred");
    assert_string_equal(d1->model_name, "gpt");
    /* keys do not run together, and the empty model is not "no model" */
    ar_target_state_t *x1 = ar_router_state_get(st, "ab", "c");
    ar_target_state_t *x2 = ar_router_state_get(st, "a", "bc");
    ar_target_state_t *x3 = ar_router_state_get(st, "abc", NULL);
    ar_target_state_t *x4 = ar_router_state_get(st, "abc", "");
    assert_ptr_not_equal(x1, x2);
    assert_ptr_not_equal(x1, x3);
    assert_ptr_not_equal(x2, x3);
    assert_ptr_not_equal(x3, x4);
    assert_ptr_equal(ar_router_state_get(st, "abc", ""), x4);
    /* the caller's strings are copied */
    char name[] = "temp";
    ar_target_state_t *t = ar_router_state_get(st, name, name);
    name[0] = 'X';
    assert_string_equal(t->cred_name, "temp");
    assert_ptr_equal(ar_router_state_get(st, "temp", "temp"), t);
    /* many keys: every one stays distinct and stable */
    ar_target_state_t *many[500];
    for (int i = 0; i < 500; i++) {
        char m[32];
        snprintf(m, sizeof(m), "model-%d", i);
        many[i] = ar_router_state_get(st, "c", m);
        assert_string_equal(many[i]->model_name, m);
    }
    for (int i = 0; i < 500; i++) {
        char m[32];
        snprintf(m, sizeof(m), "model-%d", i);
        assert_ptr_equal(ar_router_state_get(st, "c", m), many[i]);
    }
    ar_router_state_destroy(st);
}

static const char persist_yaml[] = FX_SERVER "credentials:\n"
                                             "  - name: a\n    type: mock\n"
                                             "  - name: b\n    type: mock\n"
                                             "models:\n"
                                             "  - name: x\n    credential: a\n"
                                             "  - name: y\n    credential: a\n"
                                             "  - name: x\n    credential: b\n";

static void test_accounting_and_state_survive_rebuild(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, persist_yaml + strlen(FX_SERVER));
    const ar_deployment_t *ax = dep(&f, "x", "a:x");
    const ar_deployment_t *ay = dep(&f, "y", "a:y");
    const ar_deployment_t *bx = dep(&f, "x", "b:x");
    /* deployments of one credential share its state; each has its own */
    assert_ptr_equal(ax->cred_state, ay->cred_state);
    assert_ptr_not_equal(ax->dep_state, ay->dep_state);
    assert_ptr_not_equal(ax->cred_state, bx->cred_state);
    assert_ptr_equal(ax->dep_state, ar_router_state_get(f.st, "a", "x"));
    assert_ptr_equal(ax->cred_state, ar_router_state_get(f.st, "a", NULL));

    fx_begin(&f, ax);
    fx_begin(&f, ax);
    fx_begin(&f, ay);
    fx_end(&f, ax, true);
    assert_int_equal(atomic_load(&ax->dep_state->in_flight), 1);
    assert_int_equal(atomic_load(&ax->dep_state->requests), 2);
    assert_int_equal(atomic_load(&ax->dep_state->errors), 1);
    assert_int_equal(atomic_load(&ay->dep_state->in_flight), 1);
    assert_int_equal(atomic_load(&ay->dep_state->errors), 0);
    assert_int_equal(atomic_load(&ax->cred_state->in_flight), 2);
    assert_int_equal(atomic_load(&ax->cred_state->requests), 3);
    assert_int_equal(atomic_load(&ax->cred_state->errors), 1);
    assert_int_equal(atomic_load(&bx->cred_state->requests), 0);

    /* a reload: a new config generation and router over the same state */
    ar_target_state_t *old_dep = ax->dep_state, *old_cred = ax->cred_state;
    ar_router_destroy(f.r);
    ar_config_unref(f.cfg);
    f.cfg = fx_load(persist_yaml);
    f.r = ar_router_create(f.cfg, f.st, NULL, 0);
    assert_non_null(f.r);
    const ar_deployment_t *ax2 = dep(&f, "x", "a:x");
    assert_ptr_equal(ax2->dep_state, old_dep);
    assert_ptr_equal(ax2->cred_state, old_cred);
    assert_int_equal(atomic_load(&ax2->dep_state->in_flight), 1);
    assert_int_equal(atomic_load(&ax2->dep_state->requests), 2);
    assert_int_equal(atomic_load(&ax2->dep_state->errors), 1);
    /* the attempt begun before the reload ends on the new router's deployment */
    fx_end(&f, ax2, false);
    assert_int_equal(atomic_load(&old_dep->in_flight), 0);
    assert_int_equal(atomic_load(&old_cred->in_flight), 1);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_even),
        cmocka_unit_test(test_round_robin_skips_unavailable),
        cmocka_unit_test(test_weighted_exact_proportions),
        cmocka_unit_test(test_weighted_zero_never_first),
        cmocka_unit_test(test_weighted_open_credentials_use_credential_weight),
        cmocka_unit_test(test_least_busy),
        cmocka_unit_test(test_latency_strategies_list_everything),
        cmocka_unit_test(test_lowest_latency_orders_by_ttfb),
        cmocka_unit_test(test_smart_scores),
        cmocka_unit_test(test_state_keys),
        cmocka_unit_test(test_accounting_and_state_survive_rebuild),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
