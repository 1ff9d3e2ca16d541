/*
 * test_ledger.c: the spend ledger on a real SQLite file: a batch applied twice counts
 * once, overlapping batches count each record once, usage per UTC day and calendar month
 * at their boundaries, per-key listings and the stats totals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/store.h"
#include "testutil.h"

static char dir[64];
static char url[200];
static char err[256];
static ar_store_t *s;

static int setup(void **state)
{
    (void)state;
    ar_test_store_dir("ar-ledger", dir, url);
    if (ar_store_open(url, &s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ar_store_close(s);
    ar_test_rmdir(dir);
    return 0;
}

/* 2024-03-31T23:59:59.999Z and the instant after it: a day and a month boundary. */
#define MAR31_END 1711929599999LL
#define APR01 1711929600000LL
#define DAY_MS 86400000LL

static ar_spend_t rec(const char *id, int64_t key, int64_t ts, int64_t in, int64_t out, double cost)
{
    ar_spend_t r = {.ts_ms = ts,
                    .key_id = key,
                    .model = "m",
                    .upstream_model = "up",
                    .credential = "c",
                    .prompt_tokens = in,
                    .completion_tokens = out,
                    .cost_usd = cost,
                    .status = 200,
                    .latency_ms = 12};
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.request_id, sizeof(r.request_id), "req-%s", id);
    return r;
}

static void test_idempotent(void **state)
{
    (void)state;
    ar_spend_t batch[3] = {rec("a", 1, APR01, 10, 5, 0.5), rec("b", 1, APR01 + 1, 20, 5, 1.0),
                           rec("c", 2, APR01 + 2, 1, 1, 0.25)};
    size_t ins = 99;
    assert_int_equal(ar_store_spend_apply(s, batch, 3, &ins, err, sizeof(err)), 0);
    assert_int_equal(ins, 3);
    /* the same batch again (a journal replayed after a crash): nothing changes */
    assert_int_equal(ar_store_spend_apply(s, batch, 3, &ins, err, sizeof(err)), 0);
    assert_int_equal(ins, 0);
    /* an overlapping batch: only the new record counts */
    ar_spend_t more[2] = {rec("c", 2, APR01 + 2, 1, 1, 0.25), rec("d", 2, APR01 + 3, 4, 4, 0.25)};
    assert_int_equal(ar_store_spend_apply(s, more, 2, &ins, err, sizeof(err)), 0);
    assert_int_equal(ins, 1);
    assert_int_equal(ar_store_spend_apply(s, more, 0, &ins, err, sizeof(err)), 0);
    int64_t n = 0;
    assert_int_equal(ar_store_spend_count(s, &n), 0);
    assert_int_equal(n, 4);

    ar_usage_totals_t d, m, t;
    assert_int_equal(ar_store_usage(s, 1, APR01, &d, &m, &t), 0);
    assert_int_equal(d.requests, 2);
    assert_int_equal(d.prompt_tokens, 30);
    assert_int_equal(d.completion_tokens, 10);
    assert_true(d.cost_usd > 1.499 && d.cost_usd < 1.501);
    assert_int_equal(t.requests, 2);
    assert_int_equal(ar_store_usage(s, 2, APR01, &d, NULL, NULL), 0);
    assert_int_equal(d.requests, 2);
    assert_int_equal(d.prompt_tokens, 5);
    /* a key without usage: zeros */
    assert_int_equal(ar_store_usage(s, 77, APR01, &d, &m, &t), 0);
    assert_int_equal(d.requests + m.requests + t.requests, 0);
}

static void test_boundaries(void **state)
{
    (void)state;
    ar_spend_t recs[] = {
        rec("mar1", 1, MAR31_END - 30 * DAY_MS, 1000, 0, 1), /* 2024-03-01 23:59:59.999 */
        rec("mar31", 1, MAR31_END, 100, 0, 0.1),             /* last instant of March */
        rec("apr1", 1, APR01, 10, 0, 0.01),                  /* first instant of April */
        rec("apr1b", 1, APR01 + DAY_MS - 1, 1, 0, 0.001),    /* last instant of April 1st */
        rec("apr2", 1, APR01 + DAY_MS, 2, 0, 0.002),         /* April 2nd */
    };
    assert_int_equal(ar_store_spend_apply(s, recs, 5, NULL, err, sizeof(err)), 0);
    ar_usage_totals_t d, m, t;
    /* as seen on March 31st */
    assert_int_equal(ar_store_usage(s, 1, MAR31_END, &d, &m, &t), 0);
    assert_int_equal(d.prompt_tokens, 100);
    assert_int_equal(m.prompt_tokens, 1100);
    assert_int_equal(t.prompt_tokens, 1113);
    /* as seen on April 1st: March is another month, April 2nd another day */
    assert_int_equal(ar_store_usage(s, 1, APR01 + 5000, &d, &m, &t), 0);
    assert_int_equal(d.prompt_tokens, 11);
    assert_int_equal(d.requests, 2);
    assert_int_equal(m.prompt_tokens, 13);
    assert_int_equal(m.requests, 3);
    assert_int_equal(t.requests, 5);
    /* as seen on April 2nd */
    assert_int_equal(ar_store_usage(s, 1, APR01 + DAY_MS, &d, &m, NULL), 0);
    assert_int_equal(d.prompt_tokens, 2);
    assert_int_equal(m.prompt_tokens, 13);
}

static void test_by_key_and_stats(void **state)
{
    (void)state;
    char key[AR_KEY_LEN + 1];
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ar_key_generate(key), 0);
        ar_vkey_t k = {.name = "k", .rpm = -1};
        ar_key_hash(key, k.hash);
        ar_key_mask(key, k.masked);
        k.expires_ms = i == 2 ? 1000 : 0; /* long expired */
        assert_int_equal(ar_store_key_create(s, &k, &ids[i], err, sizeof(err)), 0);
    }
    assert_int_equal(ar_store_key_revoke(s, ids[1]), 0);
    ar_spend_t recs[] = {
        rec("x1", ids[0], APR01, 10, 1, 1),           rec("x2", ids[0], APR01 + DAY_MS, 20, 2, 2),
        rec("x3", ids[1], APR01 + DAY_MS, 5, 5, 0.5), rec("x4", ids[1], MAR31_END, 7, 7, 7),
        rec("x5", 0, APR01 + DAY_MS, 1, 1, 0), /* the master key */
    };
    assert_int_equal(ar_store_spend_apply(s, recs, 5, NULL, err, sizeof(err)), 0);
    ar_key_usage_list_t l;
    assert_int_equal(ar_store_usage_by_key(s, APR01 + DAY_MS, &l), 0);
    assert_int_equal(l.cnt, 3);
    assert_int_equal(l.items[0].key_id, 0);
    assert_int_equal(l.items[1].key_id, ids[0]);
    assert_int_equal(l.items[1].day.prompt_tokens, 20);
    assert_int_equal(l.items[1].month.prompt_tokens, 30);
    assert_int_equal(l.items[1].month.requests, 2);
    assert_int_equal(l.items[2].key_id, ids[1]);
    assert_int_equal(l.items[2].month.requests, 1); /* March's record is not this month */
    ar_store_key_usage_list_free(&l);

    ar_store_stats_t st;
    assert_int_equal(ar_store_stats(s, APR01 + DAY_MS, &st), 0);
    assert_int_equal(st.keys_active, 1);
    assert_int_equal(st.keys_revoked, 1);
    assert_int_equal(st.keys_expired, 1);
    assert_int_equal(st.day.requests, 3);
    assert_int_equal(st.day.prompt_tokens, 26);
    assert_int_equal(st.month.requests, 4);
    assert_int_equal(st.total.requests, 5);
    assert_true(st.total.cost_usd > 10.49 && st.total.cost_usd < 10.51);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_by_key_and_stats, setup, teardown),
    };
    return cmocka_run_group_tests_name("test_ledger", tests, NULL, NULL);
}
