/*
 * router_fixture.h: what the router tests share: a config loaded from YAML text, a state,
 * a router and a request pool, and a way to ask for candidates by model names. Include it
 * after <cmocka.h>. Everything is released by fx_close, so the checked allocator catches
 * any leak in the router.
 */
#ifndef AR_TESTS_ROUTER_FIXTURE_H
#define AR_TESTS_ROUTER_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/pool.h"
#include "router/router.h"
#include "testutil.h"

typedef struct fx {
    ar_config_t *cfg;
    ar_router_state_t *st;
    ar_router_t *r;
    ar_pool_t *pool;
} fx_t;

#define FX_SERVER "server:\n  master_key: sk-test-master-key-0123456789\n"

static inline ar_config_t *fx_load(const char *yaml)
{
    return ar_test_config(yaml);
}

/* An attempt on d begins: admitted at t = 1 s with no token estimate. */
static inline void fx_begin(fx_t *f, const ar_deployment_t *d)
{
    ar_admission_t adm;
    assert_int_equal(ar_router_admit(f->r, d, 1000, 0, &adm), AR_SKIP_NONE);
}

/* The attempt on d ends: 200, or a 500 when failed. */
static inline void fx_end(fx_t *f, const ar_deployment_t *d, bool failed)
{
    ar_admission_t adm = {.at_ms = 1000};
    ar_attempt_result_t res = {.status = failed ? 500 : 200};
    ar_router_report(f->r, d, &adm, &res, 1000);
}

/* Loads yaml (FX_SERVER is prepended) and builds a router over a fresh state. */
static inline void fx_open(fx_t *f, const char *yaml_body)
{
    size_t n = strlen(FX_SERVER) + strlen(yaml_body) + 1;
    char *yaml = malloc(n);
    snprintf(yaml, n, "%s%s", FX_SERVER, yaml_body);
    f->cfg = fx_load(yaml);
    free(yaml);
    f->st = ar_router_state_create();
    char err[256] = "";
    f->r = ar_router_create(f->cfg, f->st, err, sizeof(err));
    if (!f->r)
        fail_msg("router: %s", err);
    f->pool = ar_pool_create(4096);
}

static inline void fx_close(fx_t *f)
{
    ar_pool_destroy(f->pool);
    ar_router_destroy(f->r);
    ar_router_state_destroy(f->st);
    ar_config_unref(f->cfg);
    memset(f, 0, sizeof(*f));
}

/* Candidates for the NULL-terminated list of names (none: an empty query). */
static inline ar_candidates_t fx_query_at_v(fx_t *f, uint64_t now_ms, const char *const *names)
{
    ar_span_t spans[16];
    size_t n = 0;
    while (names[n]) {
        spans[n] = ar_span_cstr(names[n]);
        n++;
    }
    ar_route_query_t q = {.models = spans, .models_cnt = n, .now_ms = now_ms};
    ar_candidates_t c;
    memset(&c, 0xee, sizeof(c)); /* every field must be written */
    assert_int_equal(ar_router_candidates(f->r, f->pool, &q, &c), 0);
    return c;
}
#define fx_query_v(f, names) fx_query_at_v((f), 0, (names))
#define fx_query(f, ...) fx_query_at_v((f), 0, (const char *const[]){__VA_ARGS__, NULL})
/* A query at a given time (strategies that read windowed statistics). */
#define fx_query_at(f, name, now_ms)                                                               \
    fx_query_at_v((f), (now_ms), (const char *const[]){(name), NULL})

/* "credential:upstream_model" of item i, in a static buffer. */
static inline const char *fx_item(const ar_candidates_t *c, size_t i)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    assert_true(i < c->cnt);
    snprintf(buf[k], sizeof(buf[k]), "%s:%s", c->items[i]->cred->name, c->items[i]->upstream_model);
    return buf[k];
}

/* Asserts the exact candidate list, "credential:upstream" each, in order. */
static inline void fx_expect_v(const ar_candidates_t *c, const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    if (c->cnt != n) {
        for (size_t i = 0; i < c->cnt; i++)
            print_error("  got [%zu] %s\n", i, fx_item(c, i));
        fail_msg("%zu candidates, want %zu", c->cnt, n);
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(fx_item(c, i), want[i]);
    assert_int_equal(c->empty_reason, 0);
}
#define fx_expect(c, ...) fx_expect_v((c), (const char *const[]){__VA_ARGS__, NULL})

/* The index in [0, n) of the deployment named "cred:upstream" among names. */
static inline size_t fx_index_of(const char *item, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(item, names[i]) == 0)
            return i;
    }
    fail_msg("unexpected candidate %s", item);
    return 0;
}

#endif
