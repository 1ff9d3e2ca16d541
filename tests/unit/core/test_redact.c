/*
 * test_redact.c: unit tests of src/core/redact.c: configured secrets and key-shaped
 * strings are masked (never lengthening the text), words that merely contain a prefix are
 * left alone, and clean text is returned as it is without a copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/pool.h"
#include "core/redact.h"

/* s redacted, in a static buffer. */
static const char *redacted(const char *s)
{
    static char buf[1024];
    size_t len = strlen(s);
    assert_true(len < sizeof(buf));
    memcpy(buf, s, len);
    ar_redact(buf, &len);
    assert_true(len <= strlen(s));
    buf[len] = '\0';
    return buf;
}

static void test_shapes(void **state)
{
    (void)state;
    assert_string_equal(
        redacted("Incorrect API key provided: sk-proj-AbCdEfGhIjKlMnOpQrStUv. "
                 "You can find your API key at ..."),
        "Incorrect API key provided: sk-pro...tUv. You can find your API key at ...");
    assert_string_equal(
        redacted("x-api-key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123 is invalid"),
        "x-api-key sk-ant...123 is invalid");
    assert_string_equal(redacted("API key not valid: AIzaSyA1234567890abcdefghijklmnopqrstu."),
                        "API key not valid: AIzaSy...stu.");
    assert_string_equal(redacted("token ya29.a0AfH6SMBx-abcdefghijklmnop.qrs expired"),
                        "token ya29.a...qrs expired");
    assert_string_equal(redacted("header Authorization: Bearer abcdefghijklmnopqrstuvwx rejected"),
                        "header Authorization: Bearer abcdef...vwx rejected");
    /* several in one text, and at both ends */
    assert_string_equal(redacted("sk-aaaaaaaaaaaaaaaaaaaa,sk-bbbbbbbbbbbbbbbbbbbbbb"),
                        "sk-aaa...aaa,sk-bbb...bbb");
    /* not keys: too short, or the prefix is inside a word */
    assert_string_equal(redacted("sk-short and risk-assessment-framework-document-v2"),
                        "sk-short and risk-assessment-framework-document-v2");
    assert_string_equal(redacted("Bearer token missing"), "Bearer token missing");
    assert_string_equal(redacted(""), "");
}

static void test_configured(void **state)
{
    (void)state;
    const char *const secrets[] = {"azure-key-0123456789abcdef", "tiny", NULL};
    ar_redact_set_secrets(secrets, 3);
    assert_string_equal(redacted("Access denied: azure-key-0123456789abcdef!"),
                        "Access denied: azure-...def!");
    assert_string_equal(redacted("tiny stays"), "tiny stays"); /* under 6 bytes: ignored */
    assert_true(ar_redact_needed(ar_span_cstr("has azure-key-0123456789abcdef in it")));
    assert_false(ar_redact_needed(ar_span_cstr("nothing to hide here")));
    ar_redact_shutdown();
    assert_string_equal(redacted("azure-key-0123456789abcdef"), "azure-key-0123456789abcdef");
}

static void test_span_copies_only_when_needed(void **state)
{
    (void)state;
    ar_pool_t *pool = ar_pool_create(1024);
    ar_span_t clean = ar_span_cstr("{\"error\":{\"message\":\"mock error 401\"}}");
    ar_span_t out = ar_redact_span(pool, clean);
    assert_ptr_equal(out.ptr, clean.ptr);
    ar_span_t dirty =
        ar_span_cstr("{\"error\":{\"message\":\"bad key sk-abcdefghijklmnopqrstu\"}}");
    out = ar_redact_span(pool, dirty);
    assert_ptr_not_equal(out.ptr, dirty.ptr);
    assert_string_equal(out.ptr, "{\"error\":{\"message\":\"bad key sk-abc...stu\"}}");
    assert_int_equal(out.len, strlen(out.ptr));
    assert_null(ar_redact_str(pool, NULL));
    ar_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_configured),
        cmocka_unit_test(test_span_copies_only_when_needed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
