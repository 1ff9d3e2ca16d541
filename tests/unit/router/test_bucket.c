/*
 * test_bucket.c: unit tests of router/bucket.c with an injected clock: exact refill math
 * (including rates that do not divide a minute), burst, the boundary instants of a refusal,
 * unlimited limits, giving tokens back, limits changed by a reload, threads racing on one
 * bucket at a fixed instant (never more than its capacity, and exact with give-backs), and
 * the keyed table: one bucket per key, a fixed number of slots whatever the number of keys,
 * the overflow bucket, and slots reused only after idling.
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

#include "router/bucket.c"

static ar_bucket_limit_t limit(int64_t rpm, int64_t burst)
{
    ar_bucket_limit_t l;
    assert_true(ar_bucket_limit_init(&l, rpm, burst));
    return l;
}

static void test_limit_init(void **state)
{
    (void)state;
    ar_bucket_limit_t l = limit(60, 10);
    assert_int_equal(l.capacity, 10);
    assert_int_equal(l.interval_ns, 1000000000);
    assert_int_equal(l.tolerance_ns, 10000000000LL);
    l = limit(7, 7);
    assert_int_equal(l.interval_ns, 8571428571LL);

    /* -1 (and anything below 1) is unlimited; so is a rate above one token per ns */
    assert_false(ar_bucket_limit_init(&l, -1, 10));
    assert_false(ar_bucket_limit_init(&l, 60, -1));
    assert_false(ar_bucket_limit_init(&l, 0, 0));
    assert_false(ar_bucket_limit_init(&l, NS_PER_MIN + 1, 5));
    assert_true(ar_bucket_limit_init(&l, NS_PER_MIN, 5));
    assert_int_equal(l.interval_ns, 1);

    /* an absurd burst is clamped to the longest debt a bucket can hold */
    l = limit(1, INT64_MAX);
    assert_int_equal(l.capacity, AR_BUCKET_MAX_NS / NS_PER_MIN);
    assert_true(l.tolerance_ns <= AR_BUCKET_MAX_NS);
}

static void test_burst_then_refusal(void **state)
{
    (void)state;
    ar_bucket_t b;
    ar_bucket_init(&b);
    ar_bucket_limit_t l = limit(60, 3); /* one token a second, three at most */
    ar_bucket_result_t r;
    uint64_t t0 = 5000;

    for (int64_t i = 0; i < 3; i++) {
        assert_true(ar_bucket_take(&b, &l, t0, &r));
        assert_true(r.allowed);
        assert_int_equal(r.limit, 3);
        assert_int_equal(r.remaining, 2 - i);
        assert_int_equal(r.retry_ms, 0);
        assert_int_equal(r.full_ms, 1000 * (i + 1));
    }
    assert_false(ar_bucket_take(&b, &l, t0, &r));
    assert_false(r.allowed);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.retry_ms, 1000);
    assert_int_equal(r.full_ms, 3000);

    /* one ms before the next token: still refused, and the wait counts down exactly */
    assert_false(ar_bucket_take(&b, &l, t0 + 999, &r));
    assert_int_equal(r.retry_ms, 1);
    assert_int_equal(r.full_ms, 2001);
    /* at the instant it arrives: allowed, and the bucket is empty again */
    assert_true(ar_bucket_take(&b, &l, t0 + 1000, &r));
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.full_ms, 3000);
    assert_false(ar_bucket_take(&b, &l, t0 + 1000, &r));
    assert_int_equal(r.retry_ms, 1000);

    /* refill is continuous: 2.5 s later there are 2 whole tokens, not 3 */
    ar_bucket_peek(&b, &l, t0 + 3500, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 2);
    assert_int_equal(r.full_ms, 500);
    assert_true(ar_bucket_take(&b, &l, t0 + 3500, &r));
    assert_true(ar_bucket_take(&b, &l, t0 + 3500, &r));
    assert_int_equal(r.remaining, 0);
    assert_false(ar_bucket_take(&b, &l, t0 + 3500, &r));
    assert_int_equal(r.retry_ms, 500);
}

static void test_refill_caps_at_capacity(void **state)
{
    (void)state;
    ar_bucket_t b;
    ar_bucket_init(&b);
    ar_bucket_limit_t l = limit(600, 5); /* a token every 100 ms */
    ar_bucket_result_t r;
    for (int i = 0; i < 5; i++)
        assert_true(ar_bucket_take(&b, &l, 0, &r));
    assert_false(ar_bucket_take(&b, &l, 0, &r));
    /* an hour later: full, never more than the capacity */
    ar_bucket_peek(&b, &l, 3600000, &r);
    assert_int_equal(r.remaining, 5);
    assert_int_equal(r.full_ms, 0);
    int taken = 0;
    while (ar_bucket_take(&b, &l, 3600000, &r))
        taken++;
    assert_int_equal(taken, 5);
    /* zeroed memory is a full bucket, at time 0 too */
    ar_bucket_t z;
    memset(&z, 0, sizeof(z));
    ar_bucket_peek(&z, &l, 0, &r);
    assert_int_equal(r.remaining, 5);
}

static void test_uneven_rate(void **state)
{
    (void)state;
    ar_bucket_t b;
    ar_bucket_init(&b);
    ar_bucket_limit_t l = limit(7, 1); /* 8571.428571... ms a token */
    ar_bucket_result_t r;
    assert_true(ar_bucket_take(&b, &l, 0, &r));
    assert_int_equal(r.full_ms, 8572); /* rounded up */
    assert_false(ar_bucket_take(&b, &l, 8571, &r));
    assert_int_equal(r.retry_ms, 1);
    assert_true(ar_bucket_take(&b, &l, 8572, &r));

    /* seven a minute, exactly, over ten minutes: a bucket kept below full wastes no refill
     * time, so the tokens of 70 intervals all arrive by t = 10 min */
    ar_bucket_t c;
    ar_bucket_init(&c);
    l = limit(7, 7);
    int taken = 0;
    for (uint64_t t = 0; t <= 600000; t++) {
        while (ar_bucket_take(&c, &l, t, &r))
            taken++;
    }
    assert_int_equal(taken, 7 + 70);
    assert_int_equal(r.retry_ms, 8572); /* the next is due at 71 intervals: 8.5714 s on */
}

static void test_retry_after_rounding(void **state)
{
    (void)state;
    ar_bucket_t b;
    ar_bucket_init(&b);
    ar_bucket_limit_t l = limit(1, 2); /* a token a minute */
    ar_bucket_result_t r;
    assert_true(ar_bucket_take(&b, &l, 100, &r));
    assert_true(ar_bucket_take(&b, &l, 100, &r));
    assert_false(ar_bucket_take(&b, &l, 30100, &r));
    assert_int_equal(r.retry_ms, 30000);
    assert_int_equal(r.full_ms, 90000);
    assert_false(ar_bucket_take(&b, &l, 60099, &r));
    assert_int_equal(r.retry_ms, 1);
    assert_true(ar_bucket_take(&b, &l, 60100, &r));
}

static void test_give_back(void **state)
{
    (void)state;
    ar_bucket_t b;
    ar_bucket_init(&b);
    ar_bucket_limit_t l = limit(60, 3);
    ar_bucket_result_t r;
    for (int i = 0; i < 3; i++)
        assert_true(ar_bucket_take(&b, &l, 1000, &r));
    ar_bucket_give(&b, &l);
    ar_bucket_peek(&b, &l, 1000, &r);
    assert_int_equal(r.remaining, 1);
    assert_true(ar_bucket_take(&b, &l, 1000, &r));
    assert_false(ar_bucket_take(&b, &l, 1000, &r));

    /* a give long after the take still leaves a full bucket at most */
    ar_bucket_t c;
    ar_bucket_init(&c);
    assert_true(ar_bucket_take(&c, &l, 0, &r));
    ar_bucket_give(&c, &l);
    ar_bucket_peek(&c, &l, 0, &r);
    assert_int_equal(r.remaining, 3);
    assert_true(ar_bucket_take(&c, &l, 0, &r));
    ar_bucket_give(&c, &l);
    ar_bucket_peek(&c, &l, 600000, &r);
    assert_int_equal(r.remaining, 3);
    int taken = 0;
    while (ar_bucket_take(&c, &l, 600000, &r))
        taken++;
    assert_int_equal(taken, 3);
}

static void test_limits_change_on_reload(void **state)
{
    (void)state;
    ar_bucket_t b;
    ar_bucket_init(&b);
    ar_bucket_limit_t big = limit(60, 10);
    ar_bucket_limit_t small = limit(60, 2);
    ar_bucket_result_t r;
    for (int i = 0; i < 3; i++)
        assert_true(ar_bucket_take(&b, &big, 0, &r));
    /* 3 s of debt is more than the new capacity holds: wait until a token fits */
    assert_false(ar_bucket_take(&b, &small, 0, &r));
    assert_int_equal(r.limit, 2);
    assert_int_equal(r.retry_ms, 2000);
    assert_true(ar_bucket_take(&b, &small, 2000, &r));
    assert_int_equal(r.remaining, 0);
    /* and growing the capacity makes room at once */
    assert_true(ar_bucket_take(&b, &big, 2000, &r));
    assert_int_equal(r.remaining, 7);
}

/* ---- threads ---- */

#define THREADS 8
#define ATTEMPTS 20000

typedef struct race {
    ar_bucket_t *outer; /* taken first, given back when inner refuses (may be NULL) */
    ar_bucket_t *inner;
    const ar_bucket_limit_t *outer_lim, *inner_lim;
    uint64_t now_ms;
    pthread_barrier_t *start;
    long taken;
} race_t;

static void *race_main(void *arg)
{
    race_t *a = arg;
    ar_bucket_result_t r;
    pthread_barrier_wait(a->start);
    for (int i = 0; i < ATTEMPTS; i++) {
        if (a->outer && !ar_bucket_take(a->outer, a->outer_lim, a->now_ms, &r))
            continue;
        if (ar_bucket_take(a->inner, a->inner_lim, a->now_ms, &r)) {
            a->taken++;
        } else if (a->outer) {
            ar_bucket_give(a->outer, a->outer_lim);
        }
    }
    return NULL;
}

static long run_race(ar_bucket_t *outer, const ar_bucket_limit_t *ol, ar_bucket_t *inner,
                     const ar_bucket_limit_t *il, uint64_t now_ms)
{
    /* Everything is on the stack: cmocka's allocator is not thread-safe. */
    pthread_t th[THREADS];
    race_t args[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (race_t){outer, inner, ol, il, now_ms, &start, 0};
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &args[i]), 0);
    }
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        total += args[i].taken;
    }
    pthread_barrier_destroy(&start);
    return total;
}

static void test_threads_never_exceed_capacity(void **state)
{
    (void)state;
    ar_bucket_t b;
    ar_bucket_init(&b);
    ar_bucket_limit_t l = limit(60, 1000);
    assert_int_equal(run_race(NULL, NULL, &b, &l, 42), 1000);
    ar_bucket_result_t r;
    assert_false(ar_bucket_take(&b, &l, 42, &r));
    /* a second later, exactly one more */
    assert_int_equal(run_race(NULL, NULL, &b, &l, 1042), 1);
}

static void test_threads_give_back_exactly(void **state)
{
    (void)state;
    /* global (5000) then per-client (700): a refusal by the second returns the first's
     * token, so the global bucket ends up charged exactly for the 700 served */
    ar_bucket_t global, client;
    ar_bucket_init(&global);
    ar_bucket_init(&client);
    ar_bucket_limit_t gl = limit(60, 5000), cl = limit(60, 700);
    assert_int_equal(run_race(&global, &gl, &client, &cl, 7), 700);
    ar_bucket_result_t r;
    ar_bucket_peek(&global, &gl, 7, &r);
    assert_int_equal(r.remaining, 5000 - 700);
}

/* ---- keyed tables ---- */

static ar_span_t key_of(char *buf, size_t cap, int i)
{
    int n = snprintf(buf, cap, "client-%d", i);
    return ar_span(buf, (size_t)n);
}

static bool in_slots(const ar_bucket_table_t *t, const ar_bucket_t *b)
{
    return (const char *)b >= (const char *)&t->slots[0] &&
           (const char *)b < (const char *)&t->slots[t->mask + 1];
}

static void test_table_same_key_same_bucket(void **state)
{
    (void)state;
    ar_bucket_table_t *t = ar_bucket_table_create(100, 12345);
    assert_int_equal(t->mask + 1, 128);
    ar_bucket_t *a = ar_bucket_table_get(t, 'c', AR_LIT("alice"), 0);
    ar_bucket_t *b = ar_bucket_table_get(t, 'c', AR_LIT("bob"), 0);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(ar_bucket_table_get(t, 'c', AR_LIT("alice"), 10), a);
    /* the kind is part of the key: an X-Client-ID cannot pose as an IP address */
    assert_ptr_not_equal(ar_bucket_table_get(t, 'i', AR_LIT("alice"), 0), a);
    assert_int_equal(ar_bucket_table_used(t), 3);
    assert_int_equal(ar_bucket_table_overflows(t), 0);
    /* find reads without creating */
    assert_ptr_equal(ar_bucket_table_find(t, 'c', AR_LIT("alice")), a);
    assert_null(ar_bucket_table_find(t, 'c', AR_LIT("carol")));
    assert_int_equal(ar_bucket_table_used(t), 3);
    /* another seed, other hashes */
    assert_int_not_equal(hash_key(1, 'c', AR_LIT("alice")), hash_key(2, 'c', AR_LIT("alice")));
    ar_bucket_table_destroy(t);
    ar_bucket_table_destroy(NULL);
}

static void test_table_is_bounded(void **state)
{
    (void)state;
    ar_bucket_table_t *t = ar_bucket_table_create(64, 99);
    ar_bucket_limit_t slow = limit(1, 1); /* a taken token comes back after a minute */
    ar_bucket_result_t r;
    char buf[32];
    int own = 0;
    for (int i = 0; i < 10000; i++) {
        ar_bucket_t *b = ar_bucket_table_get(t, 'c', key_of(buf, sizeof(buf), i), 1000);
        assert_true(in_slots(t, b) || b == &t->overflow);
        if (in_slots(t, b)) {
            own++;
            assert_true(ar_bucket_take(b, &slow, 1000, &r));
        }
    }
    assert_true(ar_bucket_table_used(t) <= 64);
    assert_int_equal(own, ar_bucket_table_used(t));
    assert_int_equal(own, 64); /* every probe window met enough keys to fill up */
    assert_int_equal(ar_bucket_table_overflows(t), 10000 - own);

    /* the overflow bucket is shared: one token for all of them */
    ar_bucket_t *o1 = ar_bucket_table_get(t, 'c', AR_LIT("newcomer-1"), 1000);
    ar_bucket_t *o2 = ar_bucket_table_get(t, 'c', AR_LIT("newcomer-2"), 1000);
    if (o1 == &t->overflow && o2 == &t->overflow) {
        assert_true(ar_bucket_take(o1, &slow, 1000, &r));
        assert_false(ar_bucket_take(o2, &slow, 1000, &r));
    }

    /* 5 s later the owners are idle but their buckets are not full: nothing is reused */
    uint64_t before = ar_bucket_table_overflows(t);
    for (int i = 10000; i < 10100; i++)
        (void)ar_bucket_table_get(t, 'c', key_of(buf, sizeof(buf), i), 6000);
    assert_int_equal(ar_bucket_table_overflows(t), before + 100);

    /* idle for more than 10 minutes: slots go to new keys, each with a full bucket */
    uint64_t later = 1000 + AR_BUCKET_IDLE_MS + 1;
    for (int i = 20000; i < 20032; i++) {
        ar_bucket_t *b = ar_bucket_table_get(t, 'c', key_of(buf, sizeof(buf), i), later);
        if (in_slots(t, b)) {
            ar_bucket_peek(b, &slow, later, &r);
            assert_int_equal(r.remaining, 1);
        }
    }
    assert_true(ar_bucket_table_used(t) <= 64);
    assert_int_equal(ar_bucket_table_overflows(t), before + 100);
    ar_bucket_table_destroy(t);
}

static void test_table_reuses_full_buckets_early(void **state)
{
    (void)state;
    ar_bucket_table_t *t = ar_bucket_table_create(8, 7);
    ar_bucket_limit_t fast = limit(60000, 1); /* full again 1 ms after a take */
    ar_bucket_result_t r;
    char buf[32];
    for (int i = 0; i < 8; i++) {
        ar_bucket_t *b = ar_bucket_table_get(t, 'c', key_of(buf, sizeof(buf), i), 0);
        assert_true(in_slots(t, b));
        assert_true(ar_bucket_take(b, &fast, 0, &r));
    }
    /* full, but touched too recently to change owner */
    assert_ptr_equal(ar_bucket_table_get(t, 'c', AR_LIT("x"), AR_BUCKET_SHORT_IDLE_MS),
                     &t->overflow);
    /* full and idle a little longer: reused, losing nothing */
    ar_bucket_t *b = ar_bucket_table_get(t, 'c', AR_LIT("x"), AR_BUCKET_SHORT_IDLE_MS + 1);
    assert_true(in_slots(t, b));
    assert_ptr_equal(ar_bucket_table_get(t, 'c', AR_LIT("x"), AR_BUCKET_SHORT_IDLE_MS + 2), b);
    assert_int_equal(ar_bucket_table_used(t), 8);
    ar_bucket_table_destroy(t);
}

typedef struct churn {
    ar_bucket_table_t *t;
    int id;
    pthread_barrier_t *start;
} churn_t;

static void *churn_main(void *arg)
{
    churn_t *c = arg;
    ar_bucket_limit_t l;
    (void)ar_bucket_limit_init(&l, 60000, 2);
    ar_bucket_result_t r;
    char buf[32];
    pthread_barrier_wait(c->start);
    for (int i = 0; i < 50000; i++) {
        uint64_t now = (uint64_t)i; /* each thread's clock advances: slots get reused */
        int n = snprintf(buf, sizeof(buf), "%d-%d", c->id, i % 3000);
        ar_bucket_t *b = ar_bucket_table_get(c->t, 'c', ar_span(buf, (size_t)n), now);
        (void)ar_bucket_take(b, &l, now, &r);
    }
    return NULL;
}

static void test_table_threads(void **state)
{
    (void)state;
    ar_bucket_table_t *t = ar_bucket_table_create(1024, 5); /* allocated before the threads */
    pthread_t th[THREADS];
    churn_t args[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (churn_t){t, i, &start};
        assert_int_equal(pthread_create(&th[i], NULL, churn_main, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    assert_true(ar_bucket_table_used(t) <= 1024);
    ar_bucket_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_init),
        cmocka_unit_test(test_burst_then_refusal),
        cmocka_unit_test(test_refill_caps_at_capacity),
        cmocka_unit_test(test_uneven_rate),
        cmocka_unit_test(test_retry_after_rounding),
        cmocka_unit_test(test_give_back),
        cmocka_unit_test(test_limits_change_on_reload),
        cmocka_unit_test(test_threads_never_exceed_capacity),
        cmocka_unit_test(test_threads_give_back_exactly),
        cmocka_unit_test(test_table_same_key_same_bucket),
        cmocka_unit_test(test_table_is_bounded),
        cmocka_unit_test(test_table_reuses_full_buckets_early),
        cmocka_unit_test(test_table_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
