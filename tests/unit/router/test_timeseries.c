/*
 * test_timeseries.c: unit tests of router/timeseries.c: counts per second, oldest first;
 * empty seconds; errors and tokens; percentiles within a bucket's width of the truth; a
 * slot reused an hour later starts from zero; several shards merged on read; the window
 * clamped to 1..3600; threads recording on their own shards while a reader reads.
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

#include "router/timeseries.c"

#define T0 1700000000

static ar_ts_point_t pts[AR_TS_SECONDS];

static void test_empty(void **state)
{
    (void)state;
    ar_ts_t *ts = ar_ts_create();
    assert_int_equal(ar_ts_read(ts, T0, 5, pts), 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(pts[i].t, T0 - 4 + i);
        assert_int_equal(pts[i].requests, 0);
        assert_true(pts[i].p50_ms < 0);
        assert_true(pts[i].p99_ms < 0);
    }
    ar_ts_destroy(ts);
}

static void test_counts_per_second(void **state)
{
    (void)state;
    ar_ts_t *ts = ar_ts_create();
    ar_ts_record(ts, 0, T0 - 2, false, 10000, 5, 7);
    ar_ts_record(ts, 0, T0 - 2, true, 20000, 1, 0);
    ar_ts_record(ts, 0, T0, false, 30000, 10, 20);
    ar_ts_record(ts, 0, T0, false, 30000, -3, -1); /* unknown usage: nothing added */
    assert_int_equal(ar_ts_read(ts, T0, 3, pts), 3);
    assert_int_equal(pts[0].t, T0 - 2);
    assert_int_equal(pts[0].requests, 2);
    assert_int_equal(pts[0].errors, 1);
    assert_int_equal(pts[0].prompt_tokens, 6);
    assert_int_equal(pts[0].completion_tokens, 7);
    assert_int_equal(pts[1].requests, 0);
    assert_int_equal(pts[2].t, T0);
    assert_int_equal(pts[2].requests, 2);
    assert_int_equal(pts[2].errors, 0);
    assert_int_equal(pts[2].prompt_tokens, 10);
    assert_int_equal(pts[2].completion_tokens, 20);
    ar_ts_destroy(ts);
}

/* A quantile lies in the bucket of the true value: within [v / 1.5, v * 1.5]. */
static void assert_near(double got_ms, double want_ms)
{
    if (got_ms < want_ms / 1.5 || got_ms > want_ms * 1.5)
        fail_msg("quantile %.3f ms, want about %.3f ms", got_ms, want_ms);
}

static void test_percentiles(void **state)
{
    (void)state;
    ar_ts_t *ts = ar_ts_create();
    /* 98 requests of 10 ms, 2 of 2 s: p50 is 10 ms, p99 is 2 s */
    for (int i = 0; i < 98; i++)
        ar_ts_record(ts, 0, T0, false, 10000, 0, 0);
    ar_ts_record(ts, 0, T0, false, 2000000, 0, 0);
    ar_ts_record(ts, 0, T0, false, 2000000, 0, 0);
    ar_ts_read(ts, T0, 1, pts);
    assert_near(pts[0].p50_ms, 10);
    assert_near(pts[0].p99_ms, 2000);
    /* the ends: under the first bucket, past the last */
    ar_ts_record(ts, 0, T0 + 1, false, 0, 0, 0);
    ar_ts_read(ts, T0 + 1, 1, pts);
    assert_true(pts[0].p50_ms >= 0 && pts[0].p50_ms < 0.2);
    ar_ts_record(ts, 0, T0 + 2, false, UINT64_MAX / 2, 0, 0);
    ar_ts_read(ts, T0 + 2, 1, pts);
    assert_true(pts[0].p99_ms > 1e6);
    ar_ts_destroy(ts);
}

static void test_every_bucket_is_ordered(void **state)
{
    (void)state;
    /* each latency falls in a bucket whose bounds hold it */
    for (uint64_t us = 128; us < (1ull << 31); us = us * 9 / 8 + 1) {
        int b = lat_bucket(us);
        assert_true(lat_lo(b) <= (double)us);
        assert_true((double)us < lat_hi(b));
    }
}

static void test_slot_reused_after_an_hour(void **state)
{
    (void)state;
    ar_ts_t *ts = ar_ts_create();
    ar_ts_record(ts, 0, T0, true, 1000, 100, 100);
    ar_ts_record(ts, 0, T0 + AR_TS_SECONDS, false, 1000, 1, 2);
    ar_ts_read(ts, T0 + AR_TS_SECONDS, AR_TS_SECONDS, pts);
    ar_ts_point_t *last = &pts[AR_TS_SECONDS - 1];
    assert_int_equal(last->t, T0 + AR_TS_SECONDS);
    assert_int_equal(last->requests, 1);
    assert_int_equal(last->errors, 0);
    assert_int_equal(last->prompt_tokens, 1);
    /* the old second is outside the window, and its slot no longer claims it */
    ar_ts_read(ts, T0, 1, pts);
    assert_int_equal(pts[0].requests, 0);
    ar_ts_destroy(ts);
}

static void test_shards_merge(void **state)
{
    (void)state;
    ar_ts_t *ts = ar_ts_create();
    ar_ts_record(ts, 0, T0, false, 1000, 1, 1);
    ar_ts_record(ts, 3, T0, true, 1000, 2, 2);
    ar_ts_record(ts, 3 + AR_TS_SHARDS_MAX, T0, false, 1000, 4, 4); /* wraps onto shard 3 */
    ar_ts_read(ts, T0, 1, pts);
    assert_int_equal(pts[0].requests, 3);
    assert_int_equal(pts[0].errors, 1);
    assert_int_equal(pts[0].prompt_tokens, 7);
    ar_ts_destroy(ts);
}

static void test_window_clamped(void **state)
{
    (void)state;
    ar_ts_t *ts = ar_ts_create();
    assert_int_equal(ar_ts_read(ts, T0, 0, pts), 1);
    assert_int_equal(pts[0].t, T0);
    assert_int_equal(ar_ts_read(ts, T0, 100000, pts), AR_TS_SECONDS);
    assert_int_equal(pts[0].t, T0 - AR_TS_SECONDS + 1);
    ar_ts_destroy(ts);
}

#define THREADS 4
#define PER_THREAD 20000

typedef struct racer {
    ar_ts_t *ts;
    unsigned shard;
} racer_t;

static void *record_many(void *arg)
{
    racer_t *r = arg;
    for (int i = 0; i < PER_THREAD; i++)
        ar_ts_record(r->ts, r->shard, T0 + i % 10, i % 4 == 0, 5000, 1, 2);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    ar_ts_t *ts = ar_ts_create();
    pthread_t th[THREADS];
    racer_t rs[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        rs[i] = (racer_t){ts, i};
        assert_int_equal(pthread_create(&th[i], NULL, record_many, &rs[i]), 0);
    }
    for (int k = 0; k < 50; k++)
        ar_ts_read(ts, T0 + 9, 10, pts); /* a reader meanwhile: never a crash */
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    ar_ts_read(ts, T0 + 9, 10, pts);
    uint64_t req = 0, err = 0, prompt = 0, completion = 0;
    for (int i = 0; i < 10; i++) {
        req += pts[i].requests;
        err += pts[i].errors;
        prompt += pts[i].prompt_tokens;
        completion += pts[i].completion_tokens;
    }
    assert_int_equal(req, THREADS * PER_THREAD);
    assert_int_equal(err, THREADS * PER_THREAD / 4);
    assert_int_equal(prompt, THREADS * PER_THREAD);
    assert_int_equal(completion, 2 * THREADS * PER_THREAD);
    ar_ts_destroy(ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_counts_per_second),
        cmocka_unit_test(test_percentiles),
        cmocka_unit_test(test_every_bucket_is_ordered),
        cmocka_unit_test(test_slot_reused_after_an_hour),
        cmocka_unit_test(test_shards_merge),
        cmocka_unit_test(test_window_clamped),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
