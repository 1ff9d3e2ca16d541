/*
 * test_breaker.c: unit tests of router/breaker.c, the circuit breaker of one deployment
 * (SPEC section 2 circuit_breaker): failures within stats_window open it, OPEN refuses
 * until cooldown_period, HALF_OPEN lets one trial through at a time, success_threshold
 * trial successes close it, a trial failure reopens it, a 404 makes it permanently
 * unavailable. Time is injected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/str.h"
#include "router/breaker.h"

/* failure_threshold 3, cooldown 60 s, success_threshold 2, stats_window 5 m (defaults) */
static const ar_breaker_conf_t defaults = {3, 60000, 2, 300000};

static void init(ar_breaker_t *b)
{
    memset(b, 0, sizeof(*b));
    ar_breaker_init(b);
}

/* allow() must say yes, and whether it is a trial. */
static void expect_allow(ar_breaker_t *b, const ar_breaker_conf_t *c, uint64_t now, bool probe)
{
    bool p = !probe;
    if (!ar_breaker_allow(b, c, now, &p))
        fail_msg("refused at %llu", (unsigned long long)now);
    assert_int_equal(p, probe);
}

static void expect_refuse(ar_breaker_t *b, const ar_breaker_conf_t *c, uint64_t now)
{
    bool p = true;
    if (ar_breaker_allow(b, c, now, &p))
        fail_msg("allowed at %llu", (unsigned long long)now);
    assert_false(p);
}

/* Opens b at now with threshold failures. */
static void open_at(ar_breaker_t *b, const ar_breaker_conf_t *c, uint64_t now)
{
    for (int64_t i = 0; i < c->failure_threshold; i++)
        ar_breaker_failure(b, c, now, false);
    assert_int_equal(ar_breaker_state(b, c, now), AR_BREAKER_OPEN);
}

static void test_threshold_opens(void **state)
{
    (void)state;
    ar_breaker_t b;
    init(&b);
    assert_int_equal(ar_breaker_state(&b, &defaults, 0), AR_BREAKER_CLOSED);
    expect_allow(&b, &defaults, 0, false);
    ar_breaker_failure(&b, &defaults, 0, false);
    ar_breaker_failure(&b, &defaults, 100000, false);
    assert_int_equal(ar_breaker_state(&b, &defaults, 100000), AR_BREAKER_CLOSED);
    expect_allow(&b, &defaults, 100000, false);
    /* CLOSED successes do not forget failures: they are counted in a window */
    ar_breaker_success(&b, &defaults, false);
    ar_breaker_failure(&b, &defaults, 200000, false);
    assert_int_equal(ar_breaker_state(&b, &defaults, 200000), AR_BREAKER_OPEN);
    expect_refuse(&b, &defaults, 200000);
    assert_string_equal(ar_breaker_state_name(ar_breaker_state(&b, &defaults, 200000)), "OPEN");
    /* more failures while OPEN change nothing: the cooldown runs from the opening */
    ar_breaker_failure(&b, &defaults, 250000, false);
    expect_refuse(&b, &defaults, 259999);
    expect_allow(&b, &defaults, 260000, true);
    ar_breaker_dispose(&b);
}

static void test_old_failures_expire(void **state)
{
    (void)state;
    const ar_breaker_conf_t c = {3, 60000, 2, 60000}; /* 1 s slots */
    ar_breaker_t b;
    init(&b);
    ar_breaker_failure(&b, &c, 0, false);
    ar_breaker_failure(&b, &c, 1000, false);
    ar_breaker_failure(&b, &c, 60000, false); /* the one at 0 has left the window */
    assert_int_equal(ar_breaker_state(&b, &c, 60000), AR_BREAKER_CLOSED);
    ar_breaker_failure(&b, &c, 60999, false); /* 1000, 60000, 60999 */
    assert_int_equal(ar_breaker_state(&b, &c, 60999), AR_BREAKER_OPEN);
    ar_breaker_dispose(&b);

    /* the default 5 m window: failures 5 m apart never add up */
    init(&b);
    for (uint64_t t = 0; t < 3000000; t += 150000)
        ar_breaker_failure(&b, &defaults, t, false);
    assert_int_equal(ar_breaker_state(&b, &defaults, 3000000), AR_BREAKER_CLOSED);
    ar_breaker_dispose(&b);
}

static void test_cooldown_then_one_trial(void **state)
{
    (void)state;
    ar_breaker_t b;
    init(&b);
    open_at(&b, &defaults, 10000);
    expect_refuse(&b, &defaults, 10000);
    expect_refuse(&b, &defaults, 69999);
    assert_int_equal(ar_breaker_state(&b, &defaults, 69999), AR_BREAKER_OPEN);
    /* past the cooldown it reads HALF_OPEN, even before anyone asks */
    assert_int_equal(ar_breaker_state(&b, &defaults, 70000), AR_BREAKER_HALF_OPEN);
    expect_allow(&b, &defaults, 70000, true);
    assert_int_equal(ar_breaker_state(&b, &defaults, 70000), AR_BREAKER_HALF_OPEN);
    /* one trial at a time */
    expect_refuse(&b, &defaults, 70000);
    expect_refuse(&b, &defaults, 200000);
    ar_breaker_dispose(&b);
}

static void test_trial_successes_close(void **state)
{
    (void)state;
    ar_breaker_t b;
    init(&b);
    open_at(&b, &defaults, 0);
    expect_allow(&b, &defaults, 60000, true);
    ar_breaker_success(&b, &defaults, true);
    /* one success of two: still HALF_OPEN, and the next trial may go */
    assert_int_equal(ar_breaker_state(&b, &defaults, 60000), AR_BREAKER_HALF_OPEN);
    expect_allow(&b, &defaults, 60001, true);
    expect_refuse(&b, &defaults, 60001);
    ar_breaker_success(&b, &defaults, true);
    assert_int_equal(ar_breaker_state(&b, &defaults, 60001), AR_BREAKER_CLOSED);
    expect_allow(&b, &defaults, 60001, false);
    expect_allow(&b, &defaults, 60001, false);
    /* the failures that opened it (still inside stats_window) no longer count */
    ar_breaker_failure(&b, &defaults, 61000, false);
    assert_int_equal(ar_breaker_state(&b, &defaults, 61000), AR_BREAKER_CLOSED);
    ar_breaker_failure(&b, &defaults, 62000, false);
    assert_int_equal(ar_breaker_state(&b, &defaults, 62000), AR_BREAKER_CLOSED);
    ar_breaker_failure(&b, &defaults, 63000, false);
    assert_int_equal(ar_breaker_state(&b, &defaults, 63000), AR_BREAKER_OPEN);
    ar_breaker_dispose(&b);

    /* success_threshold 1 closes on the first trial */
    const ar_breaker_conf_t one = {2, 1000, 1, 300000};
    init(&b);
    open_at(&b, &one, 0);
    expect_allow(&b, &one, 1000, true);
    ar_breaker_success(&b, &one, true);
    assert_int_equal(ar_breaker_state(&b, &one, 1000), AR_BREAKER_CLOSED);
    ar_breaker_dispose(&b);
}

static void test_trial_failure_reopens(void **state)
{
    (void)state;
    ar_breaker_t b;
    init(&b);
    open_at(&b, &defaults, 0);
    expect_allow(&b, &defaults, 60000, true);
    ar_breaker_success(&b, &defaults, true);
    expect_allow(&b, &defaults, 65000, true);
    ar_breaker_failure(&b, &defaults, 70000, true);
    /* a fresh cooldown from the trial's failure */
    assert_int_equal(ar_breaker_state(&b, &defaults, 70000), AR_BREAKER_OPEN);
    expect_refuse(&b, &defaults, 70000);
    expect_refuse(&b, &defaults, 129999);
    expect_allow(&b, &defaults, 130000, true);
    /* the success before the reopening does not carry over: two are needed again */
    ar_breaker_success(&b, &defaults, true);
    assert_int_equal(ar_breaker_state(&b, &defaults, 130000), AR_BREAKER_HALF_OPEN);
    expect_allow(&b, &defaults, 130000, true);
    ar_breaker_success(&b, &defaults, true);
    assert_int_equal(ar_breaker_state(&b, &defaults, 130000), AR_BREAKER_CLOSED);
    ar_breaker_dispose(&b);
}

static void test_unavailable_until_reset(void **state)
{
    (void)state;
    ar_breaker_t b;
    init(&b);
    ar_breaker_unavailable(&b);
    assert_int_equal(ar_breaker_state(&b, &defaults, 0), AR_BREAKER_UNAVAILABLE);
    expect_refuse(&b, &defaults, 0);
    expect_refuse(&b, &defaults, 1000000000);
    /* nothing but a reset brings it back */
    ar_breaker_success(&b, &defaults, false);
    ar_breaker_success(&b, &defaults, true);
    ar_breaker_failure(&b, &defaults, 10, true);
    ar_breaker_abandon(&b, true);
    assert_int_equal(ar_breaker_state(&b, &defaults, 2000000000), AR_BREAKER_UNAVAILABLE);
    ar_breaker_reset(&b);
    assert_int_equal(ar_breaker_state(&b, &defaults, 0), AR_BREAKER_CLOSED);
    expect_allow(&b, &defaults, 0, false);
    /* from OPEN and during a trial too */
    open_at(&b, &defaults, 0);
    expect_allow(&b, &defaults, 60000, true);
    ar_breaker_unavailable(&b);
    expect_refuse(&b, &defaults, 60000);
    ar_breaker_success(&b, &defaults, true); /* the trial's late answer */
    assert_int_equal(ar_breaker_state(&b, &defaults, 60000), AR_BREAKER_UNAVAILABLE);
    ar_breaker_dispose(&b);
}

static void test_reset(void **state)
{
    (void)state;
    ar_breaker_t b;
    init(&b);
    open_at(&b, &defaults, 0);
    ar_breaker_reset(&b);
    assert_int_equal(ar_breaker_state(&b, &defaults, 0), AR_BREAKER_CLOSED);
    expect_allow(&b, &defaults, 0, false);
    /* the failures went with it */
    ar_breaker_failure(&b, &defaults, 1, false);
    ar_breaker_failure(&b, &defaults, 2, false);
    assert_int_equal(ar_breaker_state(&b, &defaults, 2), AR_BREAKER_CLOSED);
    /* a reset during a trial frees its slot */
    ar_breaker_failure(&b, &defaults, 3, false);
    expect_allow(&b, &defaults, 60003, true);
    ar_breaker_reset(&b);
    ar_breaker_failure(&b, &defaults, 60004, false);
    ar_breaker_failure(&b, &defaults, 60004, false);
    ar_breaker_failure(&b, &defaults, 60004, false);
    expect_allow(&b, &defaults, 120004, true);
    ar_breaker_dispose(&b);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(ar_breaker_state_name(AR_BREAKER_CLOSED), "CLOSED");
    assert_string_equal(ar_breaker_state_name(AR_BREAKER_OPEN), "OPEN");
    assert_string_equal(ar_breaker_state_name(AR_BREAKER_HALF_OPEN), "HALF_OPEN");
    assert_string_equal(ar_breaker_state_name(AR_BREAKER_UNAVAILABLE), "PERMANENTLY_UNAVAILABLE");
    assert_string_equal(ar_breaker_state_name((ar_breaker_state_t)4), "CLOSED");
    assert_string_equal(ar_breaker_state_name((ar_breaker_state_t)-1), "CLOSED");
}

static void test_abandon_frees_trial(void **state)
{
    (void)state;
    ar_breaker_t b;
    init(&b);
    open_at(&b, &defaults, 0);
    expect_allow(&b, &defaults, 60000, true);
    expect_refuse(&b, &defaults, 60000);
    /* abandoning a request that was not the trial leaves the trial running */
    ar_breaker_abandon(&b, false);
    expect_refuse(&b, &defaults, 60000);
    ar_breaker_abandon(&b, true);
    assert_int_equal(ar_breaker_state(&b, &defaults, 60000), AR_BREAKER_HALF_OPEN);
    expect_allow(&b, &defaults, 60000, true);
    /* an abandoned trial is no verdict: still two successes to close */
    ar_breaker_success(&b, &defaults, true);
    assert_int_equal(ar_breaker_state(&b, &defaults, 60000), AR_BREAKER_HALF_OPEN);
    ar_breaker_dispose(&b);
}

static void test_disabled(void **state)
{
    (void)state;
    const ar_breaker_conf_t off = {AR_UNLIMITED, 60000, 2, 300000};
    ar_breaker_t b;
    init(&b);
    for (int i = 0; i < 1000; i++)
        ar_breaker_failure(&b, &off, (uint64_t)i, false);
    assert_int_equal(ar_breaker_state(&b, &off, 1000), AR_BREAKER_CLOSED);
    expect_allow(&b, &off, 1000, false);
    /* a 404 still makes it unavailable: that is not a failure count */
    ar_breaker_unavailable(&b);
    expect_refuse(&b, &off, 1000);
    ar_breaker_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_opens),
        cmocka_unit_test(test_old_failures_expire),
        cmocka_unit_test(test_cooldown_then_one_trial),
        cmocka_unit_test(test_trial_successes_close),
        cmocka_unit_test(test_trial_failure_reopens),
        cmocka_unit_test(test_unavailable_until_reset),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_abandon_frees_trial),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
