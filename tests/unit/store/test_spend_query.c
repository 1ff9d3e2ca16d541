/*
 * test_spend_query.c: reports over the spend ledger on a real SQLite file: totals with no
 * grouping and per day, key, model and credential; every filter (key, master key, model,
 * credential, time range with an exclusive end); errors counted by status; the records
 * walked oldest first with a cap, and a callback that stops the walk.
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

#define APR01 1711929600000LL /* 2024-04-01T00:00:00Z */
#define DAY_MS 86400000LL

static ar_spend_t rec(const char *id, int64_t key, int64_t ts, const char *model, const char *cred,
                      int64_t in, int64_t out, double cost, int status)
{
    ar_spend_t r = {.ts_ms = ts,
                    .key_id = key,
                    .model = (char *)model,
                    .upstream_model = "up",
                    .credential = (char *)cred,
                    .prompt_tokens = in,
                    .completion_tokens = out,
                    .cost_usd = cost,
                    .status = status,
                    .latency_ms = 12};
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.request_id, sizeof(r.request_id), "req-%s", id);
    return r;
}

static int setup(void **state)
{
    (void)state;
    ar_test_store_dir("ar-spendq", dir, url);
    if (ar_store_open(url, &s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    ar_spend_t recs[] = {
        rec("a", 1, APR01 + 10, "gpt", "openai", 10, 5, 0.5, 200),
        rec("b", 1, APR01 + DAY_MS, "gpt", "azure", 20, 10, 1.0, 200),
        rec("c", 2, APR01 + 20, "claude", "anthropic", 30, 15, 1.5, 500),
        rec("d", 0, APR01 + 2 * DAY_MS, "gpt", "openai", 40, 20, 2.0, 429),
    };
    assert_int_equal(ar_store_spend_apply(s, recs, 4, NULL, err, sizeof(err)), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ar_store_close(s);
    ar_test_rmdir(dir);
    return 0;
}

static void test_totals(void **state)
{
    (void)state;
    ar_spend_filter_t f = ar_spend_filter_all();
    ar_spend_total_list_t l;
    assert_int_equal(ar_store_spend_totals(s, &f, AR_SPEND_GROUP_NONE, &l), 0);
    assert_int_equal(l.cnt, 1);
    assert_string_equal(l.items[0].group, "");
    assert_int_equal(l.items[0].requests, 4);
    assert_int_equal(l.items[0].errors, 2);
    assert_int_equal(l.items[0].prompt_tokens, 100);
    assert_int_equal(l.items[0].completion_tokens, 50);
    assert_float_equal(l.items[0].cost_usd, 5.0, 1e-9);
    ar_store_spend_total_list_free(&l);
    /* nothing matches: one row of zeros */
    f.model = "none";
    assert_int_equal(ar_store_spend_totals(s, &f, AR_SPEND_GROUP_NONE, &l), 0);
    assert_int_equal(l.cnt, 1);
    assert_int_equal(l.items[0].requests, 0);
    ar_store_spend_total_list_free(&l);
    /* a group that does not exist */
    assert_int_equal(ar_store_spend_totals(s, &f, (ar_spend_group_t)99, &l), AR_EINVAL);
    assert_int_equal(l.cnt, 0);
}

static void test_groups(void **state)
{
    (void)state;
    ar_spend_filter_t f = ar_spend_filter_all();
    ar_spend_total_list_t l;
    assert_int_equal(ar_store_spend_totals(s, &f, AR_SPEND_GROUP_DAY, &l), 0);
    assert_int_equal(l.cnt, 3);
    assert_string_equal(l.items[0].group, "2024-04-01");
    assert_int_equal(l.items[0].requests, 2);
    assert_string_equal(l.items[2].group, "2024-04-03");
    ar_store_spend_total_list_free(&l);
    assert_int_equal(ar_store_spend_totals(s, &f, AR_SPEND_GROUP_KEY, &l), 0);
    assert_int_equal(l.cnt, 3);
    assert_string_equal(l.items[0].group, "0");
    assert_string_equal(l.items[1].group, "1");
    assert_int_equal(l.items[1].prompt_tokens, 30);
    ar_store_spend_total_list_free(&l);
    assert_int_equal(ar_store_spend_totals(s, &f, AR_SPEND_GROUP_MODEL, &l), 0);
    assert_int_equal(l.cnt, 2);
    assert_string_equal(l.items[0].group, "claude");
    assert_string_equal(l.items[1].group, "gpt");
    assert_int_equal(l.items[1].requests, 3);
    assert_int_equal(l.items[1].errors, 1);
    ar_store_spend_total_list_free(&l);
    assert_int_equal(ar_store_spend_totals(s, &f, AR_SPEND_GROUP_CREDENTIAL, &l), 0);
    assert_int_equal(l.cnt, 3);
    assert_string_equal(l.items[2].group, "openai");
    assert_int_equal(l.items[2].completion_tokens, 25);
    ar_store_spend_total_list_free(&l);
}

static int64_t total_requests(const ar_spend_filter_t *f)
{
    ar_spend_total_list_t l;
    assert_int_equal(ar_store_spend_totals(s, f, AR_SPEND_GROUP_NONE, &l), 0);
    int64_t n = l.items[0].requests;
    ar_store_spend_total_list_free(&l);
    return n;
}

static void test_filters(void **state)
{
    (void)state;
    ar_spend_filter_t f = ar_spend_filter_all();
    f.key_id = 1;
    assert_int_equal(total_requests(&f), 2);
    f.key_id = 0; /* the master key */
    assert_int_equal(total_requests(&f), 1);
    f = ar_spend_filter_all();
    f.credential = "openai";
    assert_int_equal(total_requests(&f), 2);
    f.model = "gpt";
    assert_int_equal(total_requests(&f), 2);
    f = ar_spend_filter_all();
    f.from_ms = APR01 + 11; /* after "a" */
    assert_int_equal(total_requests(&f), 3);
    f.to_ms = APR01 + DAY_MS; /* the end is exclusive: "b" is out */
    assert_int_equal(total_requests(&f), 1);
}

typedef struct walk {
    char ids[8][AR_SPEND_ID_MAX];
    size_t n;
    size_t stop_at;
} walk_t;

static int collect(void *ud, const ar_spend_t *r)
{
    walk_t *w = ud;
    snprintf(w->ids[w->n++], AR_SPEND_ID_MAX, "%s", r->id);
    assert_non_null(r->model);
    assert_true(r->latency_ms == 12);
    return w->n == w->stop_at ? 42 : 0;
}

static void test_each(void **state)
{
    (void)state;
    ar_spend_filter_t f = ar_spend_filter_all();
    walk_t w = {0};
    assert_int_equal(ar_store_spend_each(s, &f, 100, collect, &w), 0);
    assert_int_equal(w.n, 4);
    assert_string_equal(w.ids[0], "a"); /* oldest first */
    assert_string_equal(w.ids[1], "c");
    assert_string_equal(w.ids[2], "b");
    assert_string_equal(w.ids[3], "d");
    memset(&w, 0, sizeof(w));
    assert_int_equal(ar_store_spend_each(s, &f, 2, collect, &w), 0);
    assert_int_equal(w.n, 2);
    memset(&w, 0, sizeof(w));
    w.stop_at = 1;
    assert_int_equal(ar_store_spend_each(s, &f, 100, collect, &w), 42);
    assert_int_equal(w.n, 1);
    memset(&w, 0, sizeof(w));
    f.model = "claude";
    assert_int_equal(ar_store_spend_each(s, &f, 100, collect, &w), 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.ids[0], "c");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_totals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
