/*
 * test_versions.c: unit tests of gateway/versions.c, the library table of `airouter
 * --version`: every library is named once with a dotted version number, and each version
 * is that of the library it names (its major number is that of the headers the test is
 * built with, which on a build machine are the libraries' own).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <llhttp.h>
#include <openssl/opensslv.h>
#include <regex.h>
#include <sqlite3.h>
#include <uv.h>
#include <yaml.h>

#include "gateway/gateway.h"

static const char *find(const ar_gw_lib_version_t *v, size_t n, const char *name)
{
    const char *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, name) == 0) {
            assert_null(found); /* named once */
            found = v[i].version;
        }
    }
    assert_non_null(found);
    return found;
}

static void test_every_library_has_a_version(void **state)
{
    (void)state;
    ar_gw_lib_version_t v[AR_GW_LIB_COUNT];
    size_t n = ar_gw_lib_versions(v);
    assert_int_equal(n, AR_GW_LIB_COUNT);
    regex_t re;
    assert_int_equal(regcomp(&re, "^[0-9]+\\.[0-9]+(\\.[0-9]+)?", REG_EXTENDED | REG_NOSUB), 0);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(v[i].name);
        assert_non_null(v[i].version);
        if (regexec(&re, v[i].version, 0, NULL, 0) != 0)
            fail_msg("%s: '%s' is not a version number", v[i].name, v[i].version);
    }
    regfree(&re);
    const char *names[] = {"libcurl", "libuv", "llhttp", "OpenSSL", "SQLite", "jansson", "libyaml"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        find(v, n, names[i]);
}

/* The leading number of a dotted version. */
static long major(const char *version)
{
    return strtol(version, NULL, 10);
}

static void test_versions_are_the_named_libraries(void **state)
{
    (void)state;
    ar_gw_lib_version_t v[AR_GW_LIB_COUNT];
    size_t n = ar_gw_lib_versions(v);
    assert_int_equal(major(find(v, n, "libcurl")), LIBCURL_VERSION_MAJOR);
    assert_int_equal(major(find(v, n, "libuv")), UV_VERSION_MAJOR);
    assert_int_equal(major(find(v, n, "llhttp")), LLHTTP_VERSION_MAJOR);
    assert_int_equal(major(find(v, n, "OpenSSL")), OPENSSL_VERSION_MAJOR);
    assert_int_equal(major(find(v, n, "SQLite")), SQLITE_VERSION_NUMBER / 1000000);
    assert_int_equal(major(find(v, n, "jansson")), JANSSON_MAJOR_VERSION);
    /* libyaml's header has no version macro: compare with its own run-time answer */
    assert_string_equal(find(v, n, "libyaml"), yaml_get_version_string());
    /* llhttp is compiled in: its version is exactly that of its header */
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR,
             LLHTTP_VERSION_PATCH);
    assert_string_equal(find(v, n, "llhttp"), want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_library_has_a_version),
        cmocka_unit_test(test_versions_are_the_named_libraries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
