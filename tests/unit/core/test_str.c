/*
 * test_str.c: unit tests of core/str.c: durations (units, compounds, fractions, the
 * unlimited -1, bare seconds, and what must be rejected), booleans, 64-bit integers with
 * their overflow edges, doubles and hex encoding.
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

static void dur_ok(const char *s, int64_t want)
{
    int64_t v = 12345;
    int rc = ar_parse_duration_ms(ar_span_cstr(s), &v);
    if (rc != 0 || v != want)
        fail_msg("duration '%s': rc %d value %lld, want %lld", s, rc, (long long)v,
                 (long long)want);
}

static void dur_bad(const char *s)
{
    int64_t v = 12345;
    int rc = ar_parse_duration_ms(ar_span_cstr(s), &v);
    if (rc != AR_EINVAL || v != 12345)
        fail_msg("duration '%s': rc %d value %lld, want AR_EINVAL and no write", s, rc,
                 (long long)v);
}

static void test_duration(void **state)
{
    (void)state;
    dur_ok("500ms", 500);
    dur_ok("30s", 30000);
    dur_ok("5m", 300000);
    dur_ok("1h", 3600000);
    dur_ok("1d", 86400000);
    dur_ok("1h30m", 5400000);
    dur_ok("1d2h3m4s5ms", 86400000 + 7200000 + 180000 + 4000 + 5);
    dur_ok("2.5s", 2500);
    dur_ok("0.5m", 30000);
    dur_ok("1.5h", 5400000);
    dur_ok("10", 10000); /* a bare number is seconds */
    dur_ok("0", 0);
    dur_ok("0s", 0);
    dur_ok("-1", AR_UNLIMITED);
    dur_ok(" 30s ", 30000); /* surrounding blanks are trimmed */
    dur_ok("120s", 120000);

    dur_bad("");
    dur_bad("   ");
    dur_bad("5x");
    dur_bad("m");
    dur_bad("ms");
    dur_bad("1h-");
    dur_bad("--1");
    dur_bad("-2");
    dur_bad("-1s");
    dur_bad("1h30"); /* a bare number only stands alone */
    dur_bad("1.2.3s");
    dur_bad("1 s");
    dur_bad("1S"); /* units are lower case */
    dur_bad("1sec");
    dur_bad("s1");
    dur_bad("permanent");
    dur_bad("99999999999999999999d");
    dur_bad("1e3s");
}

static void test_duration_span_not_nul_terminated(void **state)
{
    (void)state;
    const char text[] = "30s5m";
    int64_t v = 0;
    assert_int_equal(ar_parse_duration_ms(ar_span(text, 3), &v), 0);
    assert_int_equal(v, 30000);
}

static void bool_is(const char *s, int want)
{
    bool v = !want;
    int rc = ar_parse_bool(ar_span_cstr(s), &v);
    if (want < 0) {
        if (rc != AR_EINVAL)
            fail_msg("bool '%s': rc %d, want AR_EINVAL", s, rc);
        return;
    }
    if (rc != 0 || v != (bool)want)
        fail_msg("bool '%s': rc %d value %d, want %d", s, rc, v, want);
}

static void test_bool(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "TRUE", "True", "yes", "Yes", "on", "ON", "1"};
    static const char *const no[] = {"false", "FALSE", "no", "No", "off", "OFF", "0", " false "};
    for (size_t i = 0; i < 8; i++) {
        bool_is(yes[i], 1);
        bool_is(no[i], 0);
    }
    static const char *const bad[] = {"", "2", "tru", "truee", "y", "n", "yess", "-1", "t"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        bool_is(bad[i], -1);
}

static void int_ok(const char *s, int64_t want)
{
    int64_t v = 7;
    int rc = ar_parse_int64(ar_span_cstr(s), &v);
    if (rc != 0 || v != want)
        fail_msg("int '%s': rc %d value %lld", s, rc, (long long)v);
}

static void int_bad(const char *s)
{
    int64_t v = 7;
    int rc = ar_parse_int64(ar_span_cstr(s), &v);
    if (rc != AR_EINVAL || v != 7)
        fail_msg("int '%s': rc %d value %lld, want AR_EINVAL", s, rc, (long long)v);
}

static void test_int64(void **state)
{
    (void)state;
    int_ok("0", 0);
    int_ok("42", 42);
    int_ok("-42", -42);
    int_ok("+42", 42);
    int_ok(" 17 ", 17);
    int_ok("9223372036854775807", INT64_MAX);
    int_ok("-9223372036854775808", INT64_MIN);
    int_bad("9223372036854775808"); /* overflow */
    int_bad("-9223372036854775809");
    int_bad("99999999999999999999");
    int_bad("123456789012345678901234");
    int_bad("");
    int_bad("-");
    int_bad("12a");
    int_bad("1.5");
    int_bad("0x10");
    int_bad("4 2");
}

static void test_double(void **state)
{
    (void)state;
    double d = 0;
    assert_int_equal(ar_parse_double(AR_LIT("0.0000025"), &d), 0);
    assert_true(d == 0.0000025);
    assert_int_equal(ar_parse_double(AR_LIT("-1e3"), &d), 0);
    assert_true(d == -1000);
    assert_int_equal(ar_parse_double(AR_LIT("1e999"), &d), AR_EINVAL);
    assert_int_equal(ar_parse_double(AR_LIT("abc"), &d), AR_EINVAL);
    assert_int_equal(ar_parse_double(AR_LIT("1.5x"), &d), AR_EINVAL);
    assert_int_equal(ar_parse_double(AR_LIT(""), &d), AR_EINVAL);
}

static void test_hex(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0x01, 0xab, 0xff, 0x10};
    char out[11];
    ar_hex_encode(in, sizeof(in), out);
    assert_string_equal(out, "0001abff10");
    ar_hex_encode(in, 0, out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration), cmocka_unit_test(test_duration_span_not_nul_terminated),
        cmocka_unit_test(test_bool),     cmocka_unit_test(test_int64),
        cmocka_unit_test(test_double),   cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
