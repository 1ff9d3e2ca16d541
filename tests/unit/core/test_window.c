/*
 * test_window.c: unit tests of core/window.c, the lock-free 60-slot sliding window that
 * holds every RPM/TPM count (SPEC section 4 "Limits"): exact sums, where the window slides
 * with an injected clock (1 s slots for 60 s), add-then-check try_add at the limit and its
 * retry_ms, corrections, reconfiguration, and admissions racing from several threads.
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

#include "core/window.h"

/* A 60 s window (1 s slots), as the router configures RPM and TPM. */
static void win60(ar_window_t *w)
{
    memset(w, 0, sizeof(*w));
    ar_window_configure(w, 60000);
}

static void test_exact_sums(void **state)
{
    (void)state;
    ar_window_t w;
    win60(&w);
    assert_int_equal(ar_window_sum(&w, 0), 0);
    ar_window_add(&w, 0, 1);
    ar_window_add(&w, 0, 2);
    ar_window_add(&w, 500, 3);   /* same slot */
    ar_window_add(&w, 1000, 10); /* next slot */
    ar_window_add(&w, 42000, 100);
    ar_window_add(&w, 59999, 1000);
    assert_int_equal(ar_window_sum(&w, 59999), 1116);
    /* zero adds nothing; large counts are exact */
    ar_window_add(&w, 59999, 0);
    ar_window_add(&w, 30000, 3000000000LL);
    assert_int_equal(ar_window_sum(&w, 59999), 3000001116LL);
    /* a window never used reads 0 and behaves as 1 s slots */
    ar_window_t fresh;
    memset(&fresh, 0, sizeof(fresh));
    assert_int_equal(ar_window_sum(&fresh, 123456), 0);
    ar_window_add(&fresh, 0, 7);
    assert_int_equal(ar_window_sum(&fresh, 59999), 7);
    assert_int_equal(ar_window_sum(&fresh, 60000), 0);
}

static void test_sliding_boundaries(void **state)
{
    (void)state;
    ar_window_t w;
    win60(&w);
    ar_window_add(&w, 0, 1);
    assert_int_equal(ar_window_sum(&w, 0), 1);
    assert_int_equal(ar_window_sum(&w, 59999), 1);
    assert_int_equal(ar_window_sum(&w, 60000), 0);
    /* slot granularity is 1 s: a count at 999 ms belongs to the slot [0, 1000) */
    win60(&w);
    ar_window_add(&w, 999, 1);
    assert_int_equal(ar_window_sum(&w, 59999), 1);
    assert_int_equal(ar_window_sum(&w, 60000), 0);
    win60(&w);
    ar_window_add(&w, 1000, 1);
    assert_int_equal(ar_window_sum(&w, 60999), 1);
    assert_int_equal(ar_window_sum(&w, 61000), 0);
    /* one count per second: always exactly the last 60 of them */
    win60(&w);
    for (uint64_t t = 0; t < 200000; t += 1000) {
        ar_window_add(&w, t, 1);
        int64_t want = t / 1000 + 1 < 60 ? (int64_t)(t / 1000 + 1) : 60;
        assert_int_equal(ar_window_sum(&w, t), want);
        assert_int_equal(ar_window_sum(&w, t + 999), want);
    }
    /* a slot reused on a later lap starts from zero */
    win60(&w);
    ar_window_add(&w, 5000, 40);
    ar_window_add(&w, 65000, 2); /* same ring slot, one lap later */
    assert_int_equal(ar_window_sum(&w, 65000), 2);
    /* a long idle gap forgets everything */
    ar_window_add(&w, 10000000, 3);
    assert_int_equal(ar_window_sum(&w, 10000000), 3);
    /* a clock that reads earlier than the counts does not see them */
    assert_int_equal(ar_window_sum(&w, 9000000), 0);
}

static void test_try_add_at_limit(void **state)
{
    (void)state;
    ar_window_t w;
    win60(&w);
    int64_t retry = -7;
    for (int i = 0; i < 100; i++)
        assert_true(ar_window_try_add(&w, 0, 1, 100, &retry));
    assert_int_equal(retry, -7); /* untouched on success */
    assert_int_equal(ar_window_sum(&w, 0), 100);
    assert_false(ar_window_try_add(&w, 0, 1, 100, &retry));
    assert_int_equal(retry, 60000);
    assert_int_equal(ar_window_sum(&w, 0), 100); /* a refusal charges nothing */
    assert_false(ar_window_try_add(&w, 10500, 1, 100, &retry));
    assert_int_equal(retry, 49500);
    assert_false(ar_window_try_add(&w, 59999, 1, 100, NULL)); /* retry_ms is optional */
    assert_true(ar_window_try_add(&w, 60000, 1, 100, &retry));
    /* n that fits exactly */
    win60(&w);
    assert_true(ar_window_try_add(&w, 0, 60, 100, &retry));
    assert_true(ar_window_try_add(&w, 0, 40, 100, &retry));
    assert_false(ar_window_try_add(&w, 0, 1, 100, &retry));
    /* limit 0 refuses any n > 0 for ever */
    win60(&w);
    retry = -7;
    assert_false(ar_window_try_add(&w, 0, 1, 0, &retry));
    assert_int_equal(retry, 0);
}

static void test_retry_ms(void **state)
{
    (void)state;
    ar_window_t w;
    win60(&w);
    int64_t retry = 0;
    assert_true(ar_window_try_add(&w, 0, 1, 2, &retry));
    assert_true(ar_window_try_add(&w, 30000, 1, 2, &retry));
    assert_false(ar_window_try_add(&w, 45000, 1, 2, &retry));
    assert_int_equal(retry, 15000); /* the slot of t=0 leaves at 60 000 */
    /* waiting exactly that long is enough */
    assert_true(ar_window_try_add(&w, 45000 + (uint64_t)retry, 1, 2, &retry));
    /* now t=30 000 and t=60 000 are in; the next room is when t=30 000 leaves */
    assert_false(ar_window_try_add(&w, 61000, 1, 2, &retry));
    assert_int_equal(retry, 29000);

    /* n = 2 needs two slots to leave: the second-oldest decides */
    win60(&w);
    ar_window_add(&w, 0, 1);
    ar_window_add(&w, 10000, 1);
    ar_window_add(&w, 20000, 1);
    assert_false(ar_window_try_add(&w, 30000, 2, 3, &retry));
    assert_int_equal(retry, 40000);
    assert_false(ar_window_try_add(&w, 69999, 2, 3, &retry));
    assert_int_equal(retry, 1);
    assert_true(ar_window_try_add(&w, 70000, 2, 3, &retry));

    /* a slot leaves at the end of its second: a count at 999 ms leaves at 60 000 */
    win60(&w);
    ar_window_add(&w, 999, 5);
    assert_false(ar_window_try_add(&w, 1500, 1, 5, &retry));
    assert_int_equal(retry, 58500);
}

static void test_n_over_limit(void **state)
{
    (void)state;
    ar_window_t w;
    win60(&w);
    int64_t retry = -7;
    assert_false(ar_window_try_add(&w, 0, 101, 100, &retry));
    assert_int_equal(retry, 0);
    assert_int_equal(ar_window_sum(&w, 0), 0);
    ar_window_add(&w, 0, 50);
    retry = -7;
    assert_false(ar_window_try_add(&w, 1000, 101, 100, &retry));
    assert_int_equal(retry, 0);
    assert_int_equal(ar_window_sum(&w, 1000), 50);
}

static void test_unlimited(void **state)
{
    (void)state;
    ar_window_t w;
    win60(&w);
    int64_t retry = -7;
    for (int i = 0; i < 1000; i++)
        assert_true(ar_window_try_add(&w, (uint64_t)i, 1, -1, &retry));
    assert_true(ar_window_try_add(&w, 1000, 1000000, -1, &retry));
    assert_int_equal(retry, -7);
    assert_int_equal(ar_window_sum(&w, 1000), 1001000);
    /* the counts are real: a limit set later sees them */
    assert_true(ar_window_try_add(&w, 1000, 1, 2000000, &retry));
    assert_false(ar_window_try_add(&w, 1000, 1, 1000000, &retry));
}

static void test_corrections(void **state)
{
    (void)state;
    ar_window_t w;
    win60(&w);
    ar_window_add(&w, 0, 5);
    ar_window_add(&w, 1000, 3);
    /* negative adds never take a slot below 0 */
    ar_window_add(&w, 1000, -10);
    assert_int_equal(ar_window_sum(&w, 1000), 5);
    /* a negative add on a slot not yet started (or stale) does nothing */
    ar_window_add(&w, 2000, -4);
    assert_int_equal(ar_window_sum(&w, 2000), 5);
    ar_window_add(&w, 2000, 2);
    assert_int_equal(ar_window_sum(&w, 2000), 7);
    /* sub_at affects only the slot of its own time */
    ar_window_sub_at(&w, 0, 2);
    assert_int_equal(ar_window_sum(&w, 2000), 5);
    ar_window_sub_at(&w, 500, 2); /* the same slot as t=0 */
    assert_int_equal(ar_window_sum(&w, 2000), 3);
    ar_window_sub_at(&w, 0, 100);
    assert_int_equal(ar_window_sum(&w, 2000), 2);
    ar_window_sub_at(&w, 1000, 1); /* the slot of t=1000 is empty: stays 0 */
    assert_int_equal(ar_window_sum(&w, 2000), 2);
    /* the slot of t=0 was reused one lap later: an undo for t=0 must not touch it */
    ar_window_add(&w, 60000, 9);
    ar_window_sub_at(&w, 0, 5);
    assert_int_equal(ar_window_sum(&w, 60000), 11);
    ar_window_sub_at(&w, 60000, 5);
    assert_int_equal(ar_window_sum(&w, 60000), 6);
    /* an undo of a slot that never existed does not create it */
    ar_window_sub_at(&w, 7000, 5);
    assert_int_equal(ar_window_sum(&w, 60000), 6);
    assert_int_equal(atomic_load(&w.slots[8]), 0);
}

static void test_configure(void **state)
{
    (void)state;
    ar_window_t w;
    win60(&w);
    ar_window_add(&w, 0, 5);
    /* the same length again keeps the counts */
    ar_window_configure(&w, 60000);
    assert_int_equal(ar_window_sum(&w, 0), 5);
    /* another length restarts the window */
    ar_window_configure(&w, 120000);
    assert_int_equal(ar_window_sum(&w, 0), 0);
    /* 2 s slots: a count at 0 is kept until 119 999 */
    ar_window_add(&w, 0, 4);
    ar_window_add(&w, 1999, 1);
    assert_int_equal(ar_window_sum(&w, 119999), 5);
    assert_int_equal(ar_window_sum(&w, 120000), 0);
    int64_t retry = 0;
    ar_window_add(&w, 2000, 1);
    assert_false(ar_window_try_add(&w, 30000, 1, 6, &retry));
    assert_int_equal(retry, 90000);
    /* a 5 m window (the breaker's stats_window): 5 s slots */
    ar_window_configure(&w, 300000);
    assert_int_equal(ar_window_sum(&w, 2000), 0);
    ar_window_add(&w, 4999, 1);
    assert_int_equal(ar_window_sum(&w, 299999), 1);
    assert_int_equal(ar_window_sum(&w, 300000), 0);
    /* windows shorter than 60 ms still work, with 1 ms slots */
    ar_window_configure(&w, 10);
    ar_window_add(&w, 100, 1);
    assert_int_equal(ar_window_sum(&w, 159), 1);
    assert_int_equal(ar_window_sum(&w, 160), 0);
}

/* ---- concurrency ---- */

#define THREADS 4
#define PER_THREAD 10000
#define LIMIT 5000

typedef struct race {
    ar_window_t *w;
    uint64_t now;
    pthread_barrier_t *start;
    long admitted;
} race_t;

static void *racer(void *arg)
{
    race_t *r = arg;
    pthread_barrier_wait(r->start);
    for (int i = 0; i < PER_THREAD; i++) {
        int64_t retry = 0;
        if (ar_window_try_add(r->w, r->now, 1, LIMIT, &retry))
            r->admitted++;
    }
    return NULL;
}

static void test_concurrent_try_add_never_over_limit(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        ar_window_t w;
        win60(&w);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, THREADS);
        race_t races[THREADS];
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++) {
            races[i] = (race_t){&w, 123456, &start, 0};
            assert_int_equal(pthread_create(&th[i], NULL, racer, &races[i]), 0);
        }
        long admitted = 0;
        for (int i = 0; i < THREADS; i++) {
            pthread_join(th[i], NULL);
            admitted += races[i].admitted;
        }
        pthread_barrier_destroy(&start);
        if (admitted > LIMIT)
            fail_msg("round %d: %ld admitted over a limit of %d", round, admitted, LIMIT);
        assert_int_equal(ar_window_sum(&w, 123456), admitted);
        /* under-admission is allowed (a lost race takes its count back), but with 40 000
         * tries it stays transient: report how close we came */
        assert_true(admitted > 0);
        if (admitted < LIMIT)
            print_message("round %d: %ld of %d admitted\n", round, admitted, LIMIT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_sums),
        cmocka_unit_test(test_sliding_boundaries),
        cmocka_unit_test(test_try_add_at_limit),
        cmocka_unit_test(test_retry_ms),
        cmocka_unit_test(test_n_over_limit),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_corrections),
        cmocka_unit_test(test_configure),
        cmocka_unit_test(test_concurrent_try_add_never_over_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
