/*
 * test_ban.c: unit tests of router/ban.c, fail2ban per credential (SPEC section 2
 * fail2ban): consecutive counted errors ban, successes reset, uncounted codes are ignored,
 * per-code rules with their own max_attempts and ban_duration, permanent and timed bans,
 * admin reset, and max_attempts -1. Time is injected.
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
#include "router/ban.h"

static int default_codes[] = {401, 403, 429, 500, 502, 503, 504};

/* The SPEC example: 3 attempts, permanent; 429 has 5 attempts and 5 m. */
static ar_ban_rule_t rule_429 = {429, 5, 300000};

static ar_fail2ban_conf_t spec_conf(void)
{
    return (ar_fail2ban_conf_t){3, AR_PERMANENT, default_codes, 7, &rule_429, 1};
}

/* n failures with code at now; asserts none of them started a ban. */
static void fail_n(ar_ban_t *b, const ar_fail2ban_conf_t *c, int code, int n, uint64_t now)
{
    for (int i = 0; i < n; i++) {
        if (ar_ban_failure(b, c, code, now))
            fail_msg("failure %d of code %d banned", i + 1, code);
    }
}

static void test_consecutive_errors_ban(void **state)
{
    (void)state;
    ar_fail2ban_conf_t c = spec_conf();
    ar_ban_t b;
    ar_ban_init(&b);
    assert_false(ar_ban_active(&b, 0));
    fail_n(&b, &c, 500, 2, 1000);
    assert_false(ar_ban_active(&b, 1000));
    assert_true(ar_ban_failure(&b, &c, 500, 1000));
    assert_true(ar_ban_active(&b, 1000));
    assert_int_equal(atomic_load(&b.last_code), 500);
    /* different counted codes add up: 401, 503, 403 */
    ar_ban_reset(&b);
    fail_n(&b, &c, 401, 1, 0);
    fail_n(&b, &c, 503, 1, 0);
    assert_true(ar_ban_failure(&b, &c, 403, 0));
    assert_true(ar_ban_active(&b, 0));
    assert_int_equal(atomic_load(&b.last_code), 403);
    /* errors while banned start no second ban */
    assert_false(ar_ban_failure(&b, &c, 500, 10));
    ar_ban_dispose(&b);
}

static void test_success_resets(void **state)
{
    (void)state;
    ar_fail2ban_conf_t c = spec_conf();
    ar_ban_t b;
    ar_ban_init(&b);
    ar_ban_success(&b); /* nothing to reset */
    fail_n(&b, &c, 500, 2, 0);
    ar_ban_success(&b);
    fail_n(&b, &c, 500, 2, 0);
    assert_false(ar_ban_active(&b, 0));
    ar_ban_success(&b);
    fail_n(&b, &c, 401, 2, 0);
    assert_true(ar_ban_failure(&b, &c, 401, 0));
    /* a success resets the per-rule counts too */
    ar_ban_reset(&b);
    fail_n(&b, &c, 429, 4, 0);
    ar_ban_success(&b);
    fail_n(&b, &c, 429, 4, 0);
    assert_false(ar_ban_active(&b, 0));
    assert_true(ar_ban_failure(&b, &c, 429, 0));
    ar_ban_dispose(&b);
}

static void test_uncounted_codes_ignored(void **state)
{
    (void)state;
    ar_fail2ban_conf_t c = spec_conf();
    ar_ban_t b;
    ar_ban_init(&b);
    static const int ignored[] = {400, 404, 413, 422, 402, 408, 501, 0, -1};
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        fail_n(&b, &c, ignored[i], 10, 0);
    assert_false(ar_ban_active(&b, 0));
    assert_false(atomic_load(&b.dirty));
    /* neither do they reset: 500, 500, 400, 500 bans */
    fail_n(&b, &c, 500, 2, 0);
    fail_n(&b, &c, 400, 5, 0);
    assert_true(ar_ban_failure(&b, &c, 500, 0));
    /* a custom error_codes list replaces the default one */
    ar_ban_reset(&b);
    int only_502[] = {502};
    ar_fail2ban_conf_t c2 = {2, AR_PERMANENT, only_502, 1, NULL, 0};
    fail_n(&b, &c2, 401, 5, 0);
    fail_n(&b, &c2, 500, 5, 0);
    fail_n(&b, &c2, 502, 1, 0);
    assert_true(ar_ban_failure(&b, &c2, 502, 0));
    /* a code with a rule counts even when it is not in error_codes */
    ar_ban_reset(&b);
    ar_ban_rule_t r418 = {418, 2, 1000};
    ar_fail2ban_conf_t c3 = {3, AR_PERMANENT, only_502, 1, &r418, 1};
    fail_n(&b, &c3, 418, 1, 0);
    assert_true(ar_ban_failure(&b, &c3, 418, 0));
    assert_true(ar_ban_active(&b, 999));
    assert_false(ar_ban_active(&b, 1000));
    ar_ban_dispose(&b);
}

static void test_rule_overrides(void **state)
{
    (void)state;
    ar_fail2ban_conf_t c = spec_conf();
    ar_ban_t b;
    ar_ban_init(&b);
    const uint64_t t = 5000000;
    fail_n(&b, &c, 429, 4, t);
    assert_false(ar_ban_active(&b, t));
    assert_true(ar_ban_failure(&b, &c, 429, t));
    assert_int_equal(atomic_load(&b.last_code), 429);
    assert_true(ar_ban_active(&b, t));
    assert_true(ar_ban_active(&b, t + 299999));
    assert_false(ar_ban_active(&b, t + 300000));
    assert_false(ar_ban_active(&b, t + 86400000));
    /* 429s have their own count: 4x 429 and 2x 500 ban nobody */
    ar_ban_reset(&b);
    fail_n(&b, &c, 429, 4, t);
    fail_n(&b, &c, 500, 2, t);
    assert_false(ar_ban_active(&b, t));
    /* the third 500 bans permanently, by the default rule */
    assert_true(ar_ban_failure(&b, &c, 500, t));
    assert_true(ar_ban_active(&b, t + 300000));
    assert_true(ar_ban_active(&b, UINT64_MAX - 1));
    /* several rules, each with its own count */
    ar_ban_reset(&b);
    ar_ban_rule_t rules[] = {{429, 5, 300000}, {503, 2, 10000}, {401, 1, AR_PERMANENT}};
    ar_fail2ban_conf_t c2 = {3, 60000, default_codes, 7, rules, 3};
    fail_n(&b, &c2, 429, 4, 0);
    fail_n(&b, &c2, 503, 1, 0);
    fail_n(&b, &c2, 500, 2, 0);
    assert_false(ar_ban_active(&b, 0));
    assert_true(ar_ban_failure(&b, &c2, 503, 0));
    assert_true(ar_ban_active(&b, 9999));
    assert_false(ar_ban_active(&b, 10000));
    assert_true(ar_ban_failure(&b, &c2, 401, 20000));
    assert_true(ar_ban_active(&b, UINT64_MAX - 1));
    ar_ban_dispose(&b);
}

static void test_permanent(void **state)
{
    (void)state;
    ar_fail2ban_conf_t c = spec_conf();
    ar_ban_t b;
    ar_ban_init(&b);
    fail_n(&b, &c, 502, 2, 0);
    assert_true(ar_ban_failure(&b, &c, 502, 0)); /* even at t = 0 */
    assert_int_equal(atomic_load(&b.until_ms), INT64_MAX);
    assert_true(ar_ban_active(&b, 0));
    assert_true(ar_ban_active(&b, 1000ull * 3600 * 24 * 365 * 100));
    assert_true(ar_ban_active(&b, UINT64_MAX));
    /* successes do not lift a ban */
    ar_ban_success(&b);
    assert_true(ar_ban_active(&b, 1));
    ar_ban_dispose(&b);
}

static void test_expiry_starts_from_zero(void **state)
{
    (void)state;
    ar_fail2ban_conf_t c = {3, 10000, default_codes, 7, NULL, 0};
    ar_ban_t b;
    ar_ban_init(&b);
    fail_n(&b, &c, 500, 2, 1000);
    assert_true(ar_ban_failure(&b, &c, 500, 1000));
    assert_true(ar_ban_active(&b, 10999));
    assert_false(ar_ban_active(&b, 11000));
    /* after the ban, counting starts again from zero */
    fail_n(&b, &c, 500, 2, 11000);
    assert_true(ar_ban_failure(&b, &c, 500, 11000));
    assert_true(ar_ban_active(&b, 20999));
    assert_false(ar_ban_active(&b, 21000));
    /* errors reported while the ban is in force (attempts admitted before it) are the
     * tail of what caused it: they must not count towards the next one */
    fail_n(&b, &c, 500, 5, 15000);
    fail_n(&b, &c, 500, 2, 21000);
    assert_false(ar_ban_active(&b, 21000));
    assert_true(ar_ban_failure(&b, &c, 500, 21000));
    assert_true(ar_ban_active(&b, 21000));
    ar_ban_dispose(&b);
}

static void test_reset_lifts(void **state)
{
    (void)state;
    ar_fail2ban_conf_t c = spec_conf();
    ar_ban_t b;
    ar_ban_init(&b);
    fail_n(&b, &c, 500, 2, 0);
    assert_true(ar_ban_failure(&b, &c, 500, 0));
    ar_ban_reset(&b);
    assert_false(ar_ban_active(&b, 0));
    assert_false(ar_ban_active(&b, UINT64_MAX));
    /* the counts went with it */
    fail_n(&b, &c, 500, 2, 0);
    fail_n(&b, &c, 429, 4, 0);
    ar_ban_reset(&b);
    fail_n(&b, &c, 500, 2, 0);
    fail_n(&b, &c, 429, 4, 0);
    assert_false(ar_ban_active(&b, 0));
    /* a timed ban too */
    assert_true(ar_ban_failure(&b, &c, 429, 0));
    ar_ban_reset(&b);
    assert_false(ar_ban_active(&b, 1));
    ar_ban_dispose(&b);
}

static void test_unlimited_attempts_never_ban(void **state)
{
    (void)state;
    ar_fail2ban_conf_t c = {AR_UNLIMITED, AR_PERMANENT, default_codes, 7, NULL, 0};
    ar_ban_t b;
    ar_ban_init(&b);
    fail_n(&b, &c, 500, 10000, 0);
    fail_n(&b, &c, 401, 10000, 0);
    assert_false(ar_ban_active(&b, 0));
    /* a rule may switch one code off while the others ban */
    ar_ban_rule_t r = {429, AR_UNLIMITED, 300000};
    ar_fail2ban_conf_t c2 = {2, AR_PERMANENT, default_codes, 7, &r, 1};
    ar_ban_reset(&b);
    fail_n(&b, &c2, 429, 10000, 0);
    assert_false(ar_ban_active(&b, 0));
    fail_n(&b, &c2, 500, 1, 0);
    assert_true(ar_ban_failure(&b, &c2, 500, 0));
    ar_ban_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consecutive_errors_ban),
        cmocka_unit_test(test_success_resets),
        cmocka_unit_test(test_uncounted_codes_ignored),
        cmocka_unit_test(test_rule_overrides),
        cmocka_unit_test(test_permanent),
        cmocka_unit_test(test_expiry_starts_from_zero),
        cmocka_unit_test(test_reset_lifts),
        cmocka_unit_test(test_unlimited_attempts_never_ban),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
