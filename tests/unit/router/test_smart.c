/*
 * test_smart.c: unit tests of the request filters and smart selection (router/candidates.c,
 * router/strategy.c): each filter (tags, type, min_context_size, json_response,
 * min_success_rate) keeps exactly the deployments that match, on names, priority lists and
 * "auto"; a model whose deployments the filters all remove is 503 naming them; prefer_fast
 * puts the fastest measured deployment first; smart's weighted random pick follows weight x
 * success rate x latency factor with an injected random source; "auto" is smart whatever
 * the configured strategy.
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

/* Three mock credentials; four deployments of "x" and one of "y" with different
 * capabilities, plus an open credential serving any name. */
#define CAPS(strategy)                                                                             \
    "routing:\n  strategy: " strategy "\n"                                                         \
    "credentials:\n"                                                                               \
    "  - name: a\n    type: mock\n"                                                                \
    "  - name: b\n    type: mock\n"                                                                \
    "  - name: c\n    type: openai\n    api_key: sk-c\n"                                           \
    "  - name: open\n    type: mock\n"                                                             \
    "models:\n"                                                                                    \
    "  - name: x\n    credential: a\n    model: xa\n    tags: [code, general]\n"                   \
    "    type: fast\n    context_size: 8000\n    json_response: true\n"                            \
    "  - name: x\n    credential: b\n    model: xb\n    tags: [general]\n"                         \
    "    type: reasoning\n    context_size: 200000\n"                                              \
    "  - name: x\n    credential: c\n    model: xc\n    tags: [code]\n"                            \
    "    context_size: 128000\n    json_response: true\n"                                          \
    "  - name: y\n    credential: a\n    model: ya\n"

/* Candidates for names (NULL-terminated) under filter at now_ms. */
static ar_candidates_t query_f(fx_t *f, const ar_route_filter_t *filter, uint64_t now_ms,
                               const char *const *names)
{
    ar_span_t spans[8];
    size_t n = 0;
    while (names[n]) {
        spans[n] = ar_span_cstr(names[n]);
        n++;
    }
    ar_route_query_t q = {.models = spans, .models_cnt = n, .now_ms = now_ms, .filter = filter};
    ar_candidates_t c;
    memset(&c, 0xee, sizeof(c));
    assert_int_equal(ar_router_candidates(f->r, f->pool, &q, &c), 0);
    return c;
}
#define QF(f, filter, ...) query_f((f), (filter), 2000, (const char *const[]){__VA_ARGS__, NULL})
#define QF0(f, filter) query_f((f), (filter), 2000, (const char *const[]){NULL})

/* Asserts c holds exactly the "cred:upstream" items of want, in any order. */
static void expect_set_v(const ar_candidates_t *c, const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    if (c->cnt != n) {
        for (size_t i = 0; i < c->cnt; i++)
            print_error("  got [%zu] %s\n", i, fx_item(c, i));
        fail_msg("%zu candidates, want %zu", c->cnt, n);
    }
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < c->cnt && !found; k++)
            found = strcmp(fx_item(c, k), want[i]) == 0;
        if (!found)
            fail_msg("missing candidate %s", want[i]);
    }
}
#define expect_set(c, ...) expect_set_v((c), (const char *const[]){__VA_ARGS__, NULL})

/* The deployment "cred:upstream" of name (no filter). */
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

/* An injected random source: returns the bits of a fixed fraction u in [0, 1). */
static uint64_t fixed_rand(void *ud)
{
    double u = *(const double *)ud;
    return (uint64_t)(u * 9007199254740992.0) << 11;
}

static void test_tags(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, CAPS("round_robin"));
    const char *code[] = {"code"};
    ar_route_filter_t flt = {.tags = code, .tags_cnt = 1};
    ar_candidates_t c = QF(&f, &flt, "x");
    expect_set(&c, "a:xa", "c:xc");
    assert_int_equal(c.filtered, AR_FILTER_TAGS);
    /* all must match */
    const char *both[] = {"code", "general"};
    flt.tags = both;
    flt.tags_cnt = 2;
    c = QF(&f, &flt, "x");
    expect_set(&c, "a:xa");
    /* a tag nobody has: the model exists, so 503 (EUNAVAIL) naming the filter, not 404 */
    const char *none[] = {"vision"};
    flt.tags = none;
    flt.tags_cnt = 1;
    c = QF(&f, &flt, "x");
    assert_int_equal(c.cnt, 0);
    assert_int_equal(c.empty_reason, AR_EUNAVAIL);
    assert_int_equal(c.filtered, AR_FILTER_TAGS);
    /* a name pinned to a credential without an entry for it */
    c = QF(&f, &flt, "a/zzz");
    assert_int_equal(c.cnt, 0); /* the implicit deployment declares no tags */
    assert_int_equal(c.empty_reason, AR_EUNAVAIL);
    /* an empty tag list filters nothing */
    flt.tags_cnt = 0;
    c = QF(&f, &flt, "x");
    assert_int_equal(c.cnt, 3);
    assert_int_equal(c.filtered, 0);
    fx_close(&f);
}

static void test_unknown_name_is_404_with_filters(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n  - name: a\n    type: mock\n"
                "models:\n  - name: x\n    credential: a\n");
    ar_route_filter_t flt = {.kind = AR_MODEL_KIND_FAST};
    ar_candidates_t c = QF(&f, &flt, "nope");
    assert_int_equal(c.cnt, 0);
    assert_int_equal(c.empty_reason, AR_ENOTFOUND);
    assert_string_equal(c.unknown_model, "nope");
    c = QF(&f, &flt, "x");
    assert_int_equal(c.empty_reason, AR_EUNAVAIL);
    assert_int_equal(c.filtered, AR_FILTER_TYPE);
    fx_close(&f);
}

static void test_type(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, CAPS("round_robin"));
    ar_route_filter_t flt = {.kind = AR_MODEL_KIND_FAST};
    for (int i = 0; i < 4; i++) {
        ar_candidates_t c = QF(&f, &flt, "x");
        fx_expect(&c, "a:xa");
    }
    flt.kind = AR_MODEL_KIND_REASONING;
    ar_candidates_t c = QF(&f, &flt, "x");
    fx_expect(&c, "b:xb");
    assert_int_equal(c.filtered, AR_FILTER_TYPE);
    fx_close(&f);
}

static void test_min_context_size(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, CAPS("round_robin"));
    ar_route_filter_t flt = {.min_context_size = 100000};
    ar_candidates_t c = QF(&f, &flt, "x");
    expect_set(&c, "b:xb", "c:xc");
    flt.min_context_size = 128000; /* inclusive */
    c = QF(&f, &flt, "x");
    expect_set(&c, "b:xb", "c:xc");
    flt.min_context_size = 128001;
    c = QF(&f, &flt, "x");
    fx_expect(&c, "b:xb");
    assert_int_equal(c.filtered, AR_FILTER_CONTEXT);
    /* y has no context_size (unknown): it fails any minimum */
    flt.min_context_size = 1;
    c = QF(&f, &flt, "y");
    assert_int_equal(c.cnt, 0);
    assert_int_equal(c.empty_reason, AR_EUNAVAIL);
    fx_close(&f);
}

static void test_json_response(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, CAPS("round_robin"));
    ar_route_filter_t flt = {.json_response = true};
    ar_candidates_t c = QF(&f, &flt, "x");
    expect_set(&c, "a:xa", "c:xc");
    assert_int_equal(c.filtered, AR_FILTER_JSON);
    flt.json_response = false;
    c = QF(&f, &flt, "x");
    assert_int_equal(c.cnt, 3);
    fx_close(&f);
}

static void test_min_success_rate(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, CAPS("round_robin"));
    set_outcomes(dep(&f, "x", "a:xa"), 1, 9); /* 0.1 */
    set_outcomes(dep(&f, "x", "b:xb"), 8, 2); /* 0.8 */
    /* c: no samples, passes */
    ar_route_filter_t flt = {.min_success_rate = 0.8};
    ar_candidates_t c = QF(&f, &flt, "x");
    expect_set(&c, "b:xb", "c:xc");
    assert_int_equal(c.filtered, AR_FILTER_SUCCESS);
    flt.min_success_rate = 0.81;
    c = QF(&f, &flt, "x");
    fx_expect(&c, "c:xc");
    /* past the window the samples are gone and everything passes again */
    c = query_f(&f, &flt, 1000 + 300000 + 2000, (const char *const[]){"x", NULL});
    assert_int_equal(c.cnt, 3);
    fx_close(&f);
}

static void test_filters_combine_and_name_themselves(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, CAPS("round_robin"));
    const char *code[] = {"code"};
    ar_route_filter_t flt = {
        .tags = code, .tags_cnt = 1, .json_response = true, .min_context_size = 100000};
    ar_candidates_t c = QF(&f, &flt, "x");
    fx_expect(&c, "c:xc");
    assert_int_equal(c.filtered, AR_FILTER_TAGS | AR_FILTER_CONTEXT | AR_FILTER_JSON);
    char buf[96];
    assert_string_equal(ar_route_filter_names(c.filtered, buf, sizeof(buf)),
                        "tags, min_context_size, json_response");
    assert_string_equal(ar_route_filter_names(AR_FILTER_SUCCESS | AR_FILTER_TYPE, buf, 96),
                        "type, min_success_rate");
    assert_string_equal(ar_route_filter_names(0, buf, sizeof(buf)), "");
    /* a small buffer is cut, never overrun */
    assert_string_equal(ar_route_filter_names(AR_FILTER_TAGS | AR_FILTER_TYPE, buf, 6), "tags,");
    fx_close(&f);
}

static void test_filters_on_lists_and_auto(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, CAPS("round_robin"));
    ar_route_filter_t flt = {.kind = AR_MODEL_KIND_REASONING};
    /* a priority list: each name filtered; y (no type) drops out */
    ar_candidates_t c = QF(&f, &flt, "y", "x");
    fx_expect(&c, "b:xb");
    /* "auto" and no model: every entry, filtered (open credentials are not in auto) */
    c = QF(&f, &flt, "auto");
    fx_expect(&c, "b:xb");
    c = QF0(&f, &flt);
    fx_expect(&c, "b:xb");
    const char *code[] = {"code"};
    ar_route_filter_t tf = {.tags = code, .tags_cnt = 1};
    c = QF0(&f, &tf);
    expect_set(&c, "a:xa", "c:xc");
    /* pins are filtered too */
    c = QF(&f, &tf, "b/x");
    assert_int_equal(c.cnt, 0);
    assert_int_equal(c.empty_reason, AR_EUNAVAIL);
    c = QF(&f, &tf, "openai/x");
    fx_expect(&c, "c:xc");
    /* an open credential's deployment declares nothing: it passes only min_success_rate */
    c = QF(&f, &tf, "open/whatever");
    assert_int_equal(c.cnt, 0);
    ar_route_filter_t rf = {.min_success_rate = 0.5};
    c = QF(&f, &rf, "open/whatever");
    fx_expect(&c, "open:whatever");
    fx_close(&f);
}

static void test_prefer_fast(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, CAPS("round_robin"));
    set_ttfb(dep(&f, "x", "a:xa"), 90000);
    set_ttfb(dep(&f, "x", "b:xb"), 20000);
    set_ttfb(dep(&f, "x", "c:xc"), 50000);
    ar_route_filter_t flt = {.prefer_fast = true};
    /* b first whatever the rotation; the others keep the round-robin order behind it */
    const char *seconds[3] = {0};
    for (int i = 0; i < 6; i++) {
        ar_candidates_t c = QF(&f, &flt, "x");
        assert_int_equal(c.cnt, 3);
        assert_string_equal(fx_item(&c, 0), "b:xb");
        seconds[i % 3] = c.items[1]->cred->name;
    }
    /* the rotation still moves the rest: both a and c come second at some point */
    bool a2 = false, c2 = false;
    for (int i = 0; i < 3; i++) {
        a2 = a2 || strcmp(seconds[i], "a") == 0;
        c2 = c2 || strcmp(seconds[i], "c") == 0;
    }
    assert_true(a2 && c2);
    /* unmeasured deployments are never preferred */
    set_ttfb(dep(&f, "x", "b:xb"), 0);
    ar_candidates_t c = QF(&f, &flt, "x");
    assert_string_equal(fx_item(&c, 0), "c:xc");
    /* across a priority list too, and combined with a filter */
    ar_route_filter_t both = {.prefer_fast = true, .json_response = true};
    c = QF(&f, &both, "y", "x");
    assert_string_equal(fx_item(&c, 0), "c:xc");
    assert_int_equal(c.cnt, 2);
    /* nothing measured: the strategy order stands */
    fx_close(&f);
    fx_open(&f, CAPS("round_robin"));
    ar_candidates_t plain = fx_query(&f, "x");
    c = QF(&f, &flt, "x");
    /* round_robin moved one further: prefer_fast did not reorder */
    assert_string_not_equal(fx_item(&c, 0), fx_item(&plain, 0));
    fx_close(&f);
}

static void test_prefer_fast_keeps_fallbacks_last(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: fb\n    type: mock\n    is_fallback: true\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: x\n    credential: fb\n");
    set_ttfb(dep(&f, "x", "a:x"), 90000);
    set_ttfb(dep(&f, "x", "fb:x"), 1000);
    ar_route_filter_t flt = {.prefer_fast = true};
    ar_candidates_t c = QF(&f, &flt, "x");
    fx_expect(&c, "a:x", "fb:x");
    assert_int_equal(c.primary_cnt, 1);
    fx_close(&f);
}

#define SMART3                                                                                     \
    "routing:\n  strategy: smart\n"                                                                \
    "credentials:\n"                                                                               \
    "  - name: a\n    type: mock\n"                                                                \
    "  - name: b\n    type: mock\n"                                                                \
    "  - name: c\n    type: mock\n"                                                                \
    "models:\n"                                                                                    \
    "  - name: x\n    credential: a\n    weight: 1\n"                                              \
    "  - name: x\n    credential: b\n    weight: 3\n"                                              \
    "  - name: x\n    credential: c\n    weight: 2\n"

/* The first pick and the whole order for the fraction u of the total score. */
static ar_candidates_t smart_at(fx_t *f, double *u, double value)
{
    *u = value;
    return fx_query_at(f, "x", 2000);
}

static void test_smart_deterministic(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, SMART3);
    double u = 0;
    ar_router_set_rand(f.r, fixed_rand, &u);
    /* no samples: score = weight: a 1, b 3, c 2; total 6; the pick covers [0,1) [1,4) [4,6) */
    ar_candidates_t c = smart_at(&f, &u, 0.0);
    fx_expect(&c, "a:x", "b:x", "c:x"); /* the pick, then by score */
    c = smart_at(&f, &u, 0.16);         /* 0.96 */
    fx_expect(&c, "a:x", "b:x", "c:x");
    c = smart_at(&f, &u, 0.17); /* 1.02 */
    fx_expect(&c, "b:x", "c:x", "a:x");
    c = smart_at(&f, &u, 0.66); /* 3.96 */
    assert_string_equal(fx_item(&c, 0), "b:x");
    c = smart_at(&f, &u, 0.67); /* 4.02 */
    fx_expect(&c, "c:x", "b:x", "a:x");
    c = smart_at(&f, &u, 0.999999);
    assert_string_equal(fx_item(&c, 0), "c:x");

    /* success rate: b succeeds half the time: b 1.5, a 1, c 2; total 4.5 */
    set_outcomes(dep(&f, "x", "b:x"), 5, 5);
    c = smart_at(&f, &u, 0.5); /* 2.25: in b's [1, 2.5) */
    fx_expect(&c, "b:x", "c:x", "a:x");
    c = smart_at(&f, &u, 0.6); /* 2.7: in c's [2.5, 4.5) */
    fx_expect(&c, "c:x", "b:x", "a:x");

    /* latency factor = fastest TTFB / this TTFB: c twice as slow as a -> c 2 x 0.5 = 1;
     * b unmeasured keeps factor 1 -> 1.5; a 1; total 3.5: [0,1) a, [1,2.5) b, [2.5,3.5) c */
    set_ttfb(dep(&f, "x", "a:x"), 10000);
    set_ttfb(dep(&f, "x", "c:x"), 20000);
    c = smart_at(&f, &u, 0.27); /* 0.945 */
    fx_expect(&c, "a:x", "b:x", "c:x");
    c = smart_at(&f, &u, 0.70); /* 2.45 */
    assert_string_equal(fx_item(&c, 0), "b:x");
    c = smart_at(&f, &u, 0.73); /* 2.555 */
    fx_expect(&c, "c:x", "b:x", "a:x");

    /* a deployment that never succeeds (score 0) is never picked, even at the very end */
    set_outcomes(dep(&f, "x", "c:x"), 0, 10);
    c = smart_at(&f, &u, 0.999999);
    assert_string_equal(fx_item(&c, 0), "b:x");
    assert_string_equal(fx_item(&c, 2), "c:x");
    fx_close(&f);
}

static void test_auto_is_smart(void **state)
{
    (void)state;
    fx_t f;
    /* round_robin configured: names rotate, but "auto" follows smart's scores */
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n    weight: 1\n"
                "  - name: y\n    credential: b\n    weight: 3\n");
    double u = 0.5; /* 2 of a total 4: y's [1, 4) */
    ar_router_set_rand(f.r, fixed_rand, &u);
    for (int i = 0; i < 5; i++) {
        ar_candidates_t c = fx_query(&f, "auto");
        fx_expect(&c, "b:y", "a:x");
        c = fx_query_v(&f, (const char *const[]){NULL});
        fx_expect(&c, "b:y", "a:x");
    }
    u = 0.1; /* 0.4: x's [0, 1) */
    ar_candidates_t c = fx_query(&f, "auto");
    fx_expect(&c, "a:x", "b:y");
    /* in a list, "auto" adds the rest where it stands */
    u = 0.9;
    c = fx_query(&f, "x", "auto");
    fx_expect(&c, "a:x", "b:y");
    fx_close(&f);
}

static void test_list_with_pins_and_trailing_auto(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "  - name: oa\n    type: openai\n    api_key: sk-oa\n"
                "models:\n"
                "  - name: gpt\n    credential: a\n    model: up-a\n    tags: [t]\n"
                "  - name: gpt\n    credential: b\n    model: up-b\n"
                "  - name: gpt\n    credential: oa\n    model: up-oa\n    tags: [t]\n"
                "  - name: other\n    credential: b\n    model: up-other\n    tags: [t]\n");
    double u = 0;
    ar_router_set_rand(f.r, fixed_rand, &u);
    for (int i = 0; i < 3; i++) {
        ar_candidates_t c = fx_query(&f, "b/gpt", "openai/gpt", "auto");
        assert_int_equal(c.cnt, 4);
        assert_string_equal(fx_item(&c, 0), "b:up-b");
        assert_string_equal(fx_item(&c, 1), "oa:up-oa");
        /* the rest (a:up-a, b:up-other) come from auto */
        expect_set_v(&(ar_candidates_t){.items = c.items + 2, .cnt = 2},
                     (const char *const[]){"a:up-a", "b:up-other", NULL});
    }
    /* with a tag filter the pinned b drops out; auto adds only tagged ones */
    const char *t[] = {"t"};
    ar_route_filter_t flt = {.tags = t, .tags_cnt = 1};
    ar_candidates_t c = QF(&f, &flt, "b/gpt", "openai/gpt", "auto");
    assert_int_equal(c.cnt, 3);
    assert_string_equal(fx_item(&c, 0), "oa:up-oa");
    assert_int_equal(c.filtered, AR_FILTER_TAGS);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_unknown_name_is_404_with_filters),
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_min_context_size),
        cmocka_unit_test(test_json_response),
        cmocka_unit_test(test_min_success_rate),
        cmocka_unit_test(test_filters_combine_and_name_themselves),
        cmocka_unit_test(test_filters_on_lists_and_auto),
        cmocka_unit_test(test_prefer_fast),
        cmocka_unit_test(test_prefer_fast_keeps_fallbacks_last),
        cmocka_unit_test(test_smart_deterministic),
        cmocka_unit_test(test_auto_is_smart),
        cmocka_unit_test(test_list_with_pins_and_trailing_auto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
