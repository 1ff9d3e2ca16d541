/*
 * test_quota.c: the reservation arithmetic of tenant/quota.c: admission needs room for
 * the prompt, the worst case is reserved capped at the room, settlement releases the rest;
 * budgets; day and month rollover; and exactness when 60 threads race for a quota that
 * fits 10 requests (at most one request's overrun); the fleet's usage from the shared
 * counters counted against the limits but never reported, and the share of one of n
 * instances cut off from them.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tenant/quota.h"

#define T0 1764892800000LL /* 2025-12-05 00:00:00 UTC */
#define DAY 86400000LL

static const ar_quota_limits_t none = {-1, -1, -1, -1};

static void test_periods(void **state)
{
    (void)state;
    assert_int_equal(ar_quota_day_of(T0) + 1, ar_quota_day_of(T0 + DAY));
    assert_int_equal(ar_quota_day_of(T0 - 1) + 1, ar_quota_day_of(T0));
    assert_int_equal(ar_quota_next_day_ms(T0 - 1), T0);
    assert_int_equal(ar_quota_month_of(T0), 2025 * 12 + 11);
    /* 2026-01-01 00:00:00 UTC */
    assert_int_equal(ar_quota_next_month_ms(T0), 1767225600000LL);
    assert_int_equal(ar_quota_month_of(1767225600000LL), 2026 * 12);
    assert_int_equal(ar_quota_month_of(1767225600000LL - 1), 2025 * 12 + 11);
}

static void test_unlimited_counts(void **state)
{
    (void)state;
    ar_quota_t q;
    ar_quota_init(&q, NULL, NULL, NULL, T0);
    ar_quota_ask_t ask = {.prompt_tokens = 10, .max_output_tokens = 100};
    ar_reservation_t r;
    assert_int_equal(ar_quota_reserve(&q, &none, &ask, T0, &r), AR_QUOTA_OK);
    assert_int_equal(r.tokens, 0);
    ar_quota_settle(&q, &r, 10, 20, 0.5, T0);
    ar_usage_totals_t d, m, t;
    int64_t reserved;
    ar_quota_read(&q, T0, &d, &m, &t, &reserved);
    assert_int_equal(d.requests, 1);
    assert_int_equal(m.prompt_tokens, 10);
    assert_int_equal(t.completion_tokens, 20);
    assert_true(t.cost_usd == 0.5);
    assert_int_equal(reserved, 0);
    assert_int_equal(ar_quota_tokens_left(&q, &none, T0), -1);
    ar_quota_dispose(&q);
}

static void test_reserve_capped_and_settle(void **state)
{
    (void)state;
    ar_quota_t q;
    ar_usage_totals_t used = {.requests = 3, .prompt_tokens = 600, .completion_tokens = 200};
    ar_quota_init(&q, &used, &used, &used, T0);
    ar_quota_limits_t lim = {1000, -1, -1, -1}; /* 200 left today */
    ar_quota_ask_t ask = {.prompt_tokens = 50, .max_output_tokens = 100};
    ar_reservation_t a, b, c;
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0, &a), AR_QUOTA_OK);
    assert_int_equal(a.tokens, 150);
    /* 50 left: exactly the prompt; the reservation is capped there */
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0, &b), AR_QUOTA_OK);
    assert_int_equal(b.tokens, 50);
    assert_int_equal(ar_quota_tokens_left(&q, &lim, T0), 0);
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0, &c), AR_QUOTA_TOKENS);
    assert_false(c.held);
    /* a settles with less than it reserved: the rest is free again */
    ar_quota_settle(&q, &a, 50, 10, 0, T0);
    assert_int_equal(ar_quota_tokens_left(&q, &lim, T0), 200 - 60 - 50);
    ar_quota_settle(&q, &a, 0, 0, 0, T0); /* a settled reservation releases nothing twice */
    ar_usage_totals_t d;
    int64_t reserved;
    ar_quota_read(&q, T0, &d, NULL, NULL, &reserved);
    assert_int_equal(reserved, 50);
    assert_int_equal(d.requests, 5);
    ar_quota_settle(&q, &b, 50, 100, 0, T0); /* b overran by 100: the bounded overshoot */
    assert_int_equal(ar_quota_tokens_left(&q, &lim, T0), 0);
    ar_quota_dispose(&q);
}

static void test_tightest_limit(void **state)
{
    (void)state;
    ar_quota_t q;
    ar_usage_totals_t month = {.prompt_tokens = 990};
    ar_quota_init(&q, NULL, &month, &month, T0);
    ar_quota_limits_t lim = {5000, 1000, 100000, -1};
    assert_int_equal(ar_quota_tokens_left(&q, &lim, T0), 10);
    ar_quota_ask_t ask = {.prompt_tokens = 11};
    ar_reservation_t r;
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0, &r), AR_QUOTA_TOKENS);
    ask.prompt_tokens = 10;
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0, &r), AR_QUOTA_OK);
    ar_quota_settle(&q, &r, 10, 0, 0, T0);
    ar_quota_dispose(&q);
}

static void test_budget(void **state)
{
    (void)state;
    ar_quota_t q;
    ar_usage_totals_t total = {.cost_usd = 0.9};
    ar_quota_init(&q, NULL, NULL, &total, T0);
    ar_quota_limits_t lim = {-1, -1, -1, 1.0};
    ar_quota_ask_t ask = {.prompt_tokens = 100,
                          .max_output_tokens = 100,
                          .input_price = 0.0001,
                          .output_price = 0.001};
    ar_reservation_t a, b;
    /* prompt costs 0.01 and fits; worst case 0.11 is capped at the 0.1 left */
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0, &a), AR_QUOTA_OK);
    assert_true(a.usd > 0.0999 && a.usd < 0.1001);
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0, &b), AR_QUOTA_BUDGET);
    ar_quota_settle(&q, &a, 100, 100, 0.11, T0);
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0, &b), AR_QUOTA_BUDGET);
    /* unknown prices (0): an exhausted budget still refuses */
    ask.input_price = ask.output_price = 0;
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0, &b), AR_QUOTA_BUDGET);
    ar_quota_dispose(&q);
}

static void test_rollover(void **state)
{
    (void)state;
    ar_quota_t q;
    ar_quota_init(&q, NULL, NULL, NULL, T0 + DAY - 1);
    ar_quota_limits_t lim = {100, 150, -1, -1};
    ar_quota_ask_t ask = {.prompt_tokens = 100};
    ar_reservation_t r;
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0 + DAY - 1, &r), AR_QUOTA_OK);
    ar_quota_settle(&q, &r, 100, 0, 0, T0 + DAY - 1);
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0 + DAY - 1, &r), AR_QUOTA_TOKENS);
    /* the next day: the daily limit has room again, the month only 50 */
    assert_int_equal(ar_quota_tokens_left(&q, &lim, T0 + DAY), 50);
    ask.prompt_tokens = 50;
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0 + DAY, &r), AR_QUOTA_OK);
    ar_quota_settle(&q, &r, 50, 0, 0, T0 + DAY);
    ar_usage_totals_t d, m;
    ar_quota_read(&q, T0 + DAY, &d, &m, NULL, NULL);
    assert_int_equal(d.prompt_tokens, 50);
    assert_int_equal(m.prompt_tokens, 150);
    /* a new month (2026-01-01) */
    ar_quota_read(&q, 1767225600000LL, &d, &m, NULL, NULL);
    assert_int_equal(m.prompt_tokens, 0);
    ar_quota_dispose(&q);
}

/* ---- 60 threads race for a quota that fits 10 requests ---- */

typedef struct racer {
    ar_quota_t *q;
    const ar_quota_limits_t *lim;
    pthread_barrier_t *go;
    ar_reservation_t r;
    ar_quota_verdict_t v;
} racer_t;

static void *race(void *arg)
{
    racer_t *x = arg;
    ar_quota_ask_t ask = {.prompt_tokens = 20, .max_output_tokens = 80};
    pthread_barrier_wait(x->go);
    x->v = ar_quota_reserve(x->q, x->lim, &ask, T0, &x->r);
    return NULL;
}

static void test_concurrent_exactness(void **state)
{
    (void)state;
    enum { N = 60 };
    ar_quota_t q;
    ar_quota_init(&q, NULL, NULL, NULL, T0);
    ar_quota_limits_t lim = {-1, -1, 1000, -1}; /* 10 requests of 100 */
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    racer_t xs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        xs[i] = (racer_t){.q = &q, .lim = &lim, .go = &go};
        assert_int_equal(pthread_create(&th[i], NULL, race, &xs[i]), 0);
    }
    int admitted = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        admitted += xs[i].v == AR_QUOTA_OK;
    }
    assert_int_equal(admitted, 10);
    for (int i = 0; i < N; i++) {
        if (xs[i].v == AR_QUOTA_OK)
            ar_quota_settle(&q, &xs[i].r, 20, 80, 0, T0);
    }
    ar_usage_totals_t t;
    int64_t reserved;
    ar_quota_read(&q, T0, NULL, NULL, &t, &reserved);
    assert_int_equal(t.prompt_tokens + t.completion_tokens, 1000);
    assert_int_equal(reserved, 0);
    pthread_barrier_destroy(&go);
    ar_quota_dispose(&q);
}

/* Other instances' usage counts against the limits, is not this key's usage here, and
 * follows the periods. */
static void test_sync_counts_others(void **state)
{
    (void)state;
    ar_quota_t q;
    ar_usage_totals_t day = {.requests = 1, .prompt_tokens = 100, .completion_tokens = 100};
    ar_quota_init(&q, &day, &day, &day, T0);
    ar_quota_limits_t lim = {
        .day_tokens = 1000, .month_tokens = -1, .total_tokens = -1, .budget_usd = -1};
    assert_int_equal(ar_quota_tokens_left(&q, &lim, T0), 800);
    ar_quota_shared_t fleet = {
        .day_tokens = 900, .month_tokens = 900, .total_tokens = 900, .total_usd = 2};
    ar_quota_sync(&q, &fleet, T0);
    assert_int_equal(ar_quota_tokens_left(&q, &lim, T0), 100);
    ar_usage_totals_t d;
    ar_quota_read(&q, T0, &d, NULL, NULL, NULL);
    assert_int_equal(d.prompt_tokens + d.completion_tokens, 200); /* own usage only */
    ar_quota_shared_t known;
    ar_quota_known(&q, T0, &known);
    assert_int_equal(known.day_tokens, 900);
    assert_true(known.total_usd == 2);
    ar_quota_ask_t ask = {.prompt_tokens = 150, .max_output_tokens = 10};
    ar_reservation_t r;
    assert_int_equal(ar_quota_reserve(&q, &lim, &ask, T0, &r), AR_QUOTA_TOKENS);
    /* a budget: other instances' spend counts too */
    ar_quota_limits_t budget = {-1, -1, -1, 2.5};
    ar_quota_ask_t priced = {.prompt_tokens = 10, .input_price = 0.1};
    assert_int_equal(ar_quota_reserve(&q, &budget, &priced, T0, &r), AR_QUOTA_BUDGET);
    /* the next day the others' day usage is gone with the period */
    assert_int_equal(ar_quota_tokens_left(&q, &lim, T0 + DAY), 1000);
    ar_quota_dispose(&q);
}

/* Cut off from Redis, each of 3 instances may spend a third of what was left; release
 * gives a reservation back without counting it. */
static void test_share_limits_and_release(void **state)
{
    (void)state;
    ar_quota_t q;
    ar_quota_init(&q, NULL, NULL, NULL, T0);
    ar_quota_shared_t fleet = {
        .day_tokens = 400, .month_tokens = 400, .total_tokens = 400, .total_usd = 4};
    ar_quota_sync(&q, &fleet, T0);
    ar_quota_limits_t lim = {
        .day_tokens = 1000, .month_tokens = -1, .total_tokens = 300, .budget_usd = 10};
    ar_quota_limits_t s = ar_quota_share_limits(&q, &lim, 3, T0);
    assert_int_equal(s.day_tokens, 600); /* 400 + 600 / 3 */
    assert_int_equal(s.month_tokens, -1);
    assert_int_equal(s.total_tokens, 300); /* already over: nothing more */
    assert_true(s.budget_usd == 6);        /* 4 + 6 / 3 */
    ar_quota_limits_t one = ar_quota_share_limits(&q, &lim, 1, T0);
    assert_int_equal(one.day_tokens, 1000);
    ar_quota_limits_t day_only = {
        .day_tokens = 1000, .month_tokens = -1, .total_tokens = -1, .budget_usd = -1};
    s = ar_quota_share_limits(&q, &day_only, 3, T0);
    ar_quota_ask_t ask = {.prompt_tokens = 50, .max_output_tokens = 50};
    ar_reservation_t r;
    assert_int_equal(ar_quota_reserve(&q, &s, &ask, T0, &r), AR_QUOTA_OK);
    assert_int_equal(ar_quota_tokens_left(&q, &s, T0), 100);
    ar_quota_release(&q, &r);
    ar_quota_release(&q, &r); /* idempotent */
    assert_int_equal(ar_quota_tokens_left(&q, &s, T0), 200);
    ar_usage_totals_t d;
    ar_quota_read(&q, T0, &d, NULL, NULL, NULL);
    assert_int_equal(d.requests, 0);
    ar_quota_dispose(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_periods),
        cmocka_unit_test(test_unlimited_counts),
        cmocka_unit_test(test_reserve_capped_and_settle),
        cmocka_unit_test(test_tightest_limit),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_rollover),
        cmocka_unit_test(test_concurrent_exactness),
        cmocka_unit_test(test_sync_counts_others),
        cmocka_unit_test(test_share_limits_and_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
