/*
 * test_log.c: unit tests of core/log.c: the key mask, secrets masked inside the formatter
 * (text and JSON lines, message and context alike), level filtering, the access line and
 * the asynchronous writer draining on shutdown. fd 2 is pointed at a temporary file for
 * each test and restored afterwards, also when the test fails.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/err.h"
#include "core/log.h"

typedef struct capture {
    int saved_fd2;
    int fd;
    char path[64];
} capture_t;

static int setup(void **state)
{
    capture_t *c = calloc(1, sizeof(*c));
    strcpy(c->path, "/tmp/airouter-test-log-XXXXXX");
    c->fd = mkstemp(c->path);
    if (c->fd < 0)
        return -1;
    fflush(stderr);
    c->saved_fd2 = dup(2);
    dup2(c->fd, 2);
    ar_log_set_level(AR_LOG_INFO);
    ar_log_set_format(AR_LOG_TEXT);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    capture_t *c = *state;
    fflush(stderr);
    dup2(c->saved_fd2, 2);
    close(c->saved_fd2);
    close(c->fd);
    unlink(c->path);
    free(c);
    ar_log_set_level(AR_LOG_INFO);
    ar_log_set_format(AR_LOG_TEXT);
    return 0;
}

/* Everything written to fd 2 so far (malloc'd, NUL-terminated). */
static char *captured(capture_t *c)
{
    off_t n = lseek(c->fd, 0, SEEK_END);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(pread(c->fd, buf, (size_t)n, 0), n);
    buf[n] = '\0';
    return buf;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_mask_key(void **state)
{
    (void)state;
    char out[32];
    assert_string_equal(ar_mask_key(AR_LIT("sk-abcdefghijklmnopqrstuvwxyz"), out, sizeof(out)),
                        "sk-abc...xyz");
    assert_string_equal(ar_mask_key(AR_LIT("sk-123456789"), out, sizeof(out)), "sk-123...789");
    assert_string_equal(ar_mask_key(AR_LIT("sk-12345678"), out, sizeof(out)), "***");
    assert_string_equal(ar_mask_key(AR_LIT("short"), out, sizeof(out)), "***");
    assert_string_equal(ar_mask_key(AR_LIT(""), out, sizeof(out)), "***");
    /* a span: only its own bytes are used */
    assert_string_equal(ar_mask_key(ar_span("sk-test-0123456789abcdefTRAILING", 24), out, 16),
                        "sk-tes...def");
    /* too small an output: empty string, no overflow */
    char tiny[8];
    memset(tiny, 'x', sizeof(tiny));
    assert_ptr_equal(ar_mask_key(AR_LIT("sk-abcdefghijklmnop"), tiny, sizeof(tiny)), tiny);
    assert_string_equal(tiny, "");
}

#define SECRET "sk-live-0123456789abcdef"
#define SECRET2 "another-secret-value-42"

static void test_secrets_masked_text(void **state)
{
    capture_t *c = *state;
    ar_log_init(false);
    const char *const secrets[] = {SECRET, "short", NULL, SECRET2};
    ar_redact_set_secrets(secrets, 4);
    ar_log_ctx_t ctx = {.request_id = "req-1",
                        .credential = "openai_main",
                        .model = SECRET2,
                        .action = "sending upstream"};
    ar_log_write(AR_LOG_ERROR, &ctx, "auth with %s failed (%s); short=%s", SECRET, SECRET, "short");
    ar_log_write(AR_LOG_INFO, NULL, "%sglued%s", SECRET, SECRET2);
    char *out = captured(c);
    assert_null(strstr(out, SECRET));
    assert_null(strstr(out, SECRET2));
    assert_int_equal(count(out, "sk-liv...def"), 3);
    assert_int_equal(count(out, "anothe...-42"), 2);
    /* secrets shorter than 6 bytes are not masked: they would hide ordinary words */
    assert_non_null(strstr(out, "short=short"));
    /* the rest of the line is intact */
    assert_non_null(strstr(out, " error [req-1] sending upstream: auth with sk-liv...def failed "
                                "(sk-liv...def); short=short credential=openai_main "
                                "model=anothe...-42\n"));
    assert_non_null(strstr(out, " info sk-liv...defgluedanothe...-42\n"));
    assert_int_equal(count(out, "\n"), 2);
    free(out);
    ar_log_shutdown();
}

static void test_secrets_masked_json(void **state)
{
    capture_t *c = *state;
    ar_log_init(false);
    const char *const secrets[] = {SECRET};
    ar_redact_set_secrets(secrets, 1);
    ar_log_set_format(AR_LOG_JSON);
    ar_log_ctx_t ctx = {.request_id = "r\"2", .credential = SECRET};
    ar_log_write(AR_LOG_WARN, &ctx, "key %s \"quoted\"\n", SECRET);
    char *out = captured(c);
    assert_null(strstr(out, SECRET));
    json_error_t je;
    json_t *v = json_loads(out, 0, &je);
    if (!v)
        fail_msg("not one JSON line: %s (%s)", out, je.text);
    assert_string_equal(json_string_value(json_object_get(v, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(v, "msg")),
                        "key sk-liv...def \"quoted\"\n");
    assert_string_equal(json_string_value(json_object_get(v, "credential")), "sk-liv...def");
    assert_string_equal(json_string_value(json_object_get(v, "request_id")), "r\"2");
    assert_null(json_object_get(v, "model"));
    assert_non_null(json_string_value(json_object_get(v, "time")));
    json_decref(v);
    free(out);
    ar_log_shutdown();
}

#define PLAIN_SECRET "plain-secret-value-0001" /* not shaped like a key: masked only if set */

static void test_secrets_replaced(void **state)
{
    capture_t *c = *state;
    ar_log_init(false);
    const char *const first[] = {PLAIN_SECRET};
    const char *const second[] = {SECRET2};
    ar_redact_set_secrets(first, 1);
    ar_redact_set_secrets(second, 1); /* replaces the set */
    ar_log_write(AR_LOG_INFO, NULL, "%s %s", PLAIN_SECRET, SECRET2);
    char *out = captured(c);
    assert_non_null(strstr(out, PLAIN_SECRET));
    assert_null(strstr(out, SECRET2));
    free(out);
    ar_log_shutdown();
    /* after shutdown no secret is configured any more */
    ar_log_init(false);
    ar_log_write(AR_LOG_INFO, NULL, "again %s", SECRET2);
    out = captured(c);
    assert_non_null(strstr(out, "again " SECRET2));
    free(out);
    ar_log_shutdown();
}

static void test_levels(void **state)
{
    capture_t *c = *state;
    ar_log_init(false);
    ar_log_set_level(AR_LOG_WARN);
    int evaluated = 0;
    AR_LOG(AR_LOG_INFO, NULL, "hidden %d", ++evaluated);
    AR_DEBUG(NULL, "hidden debug %d", ++evaluated);
    assert_int_equal(evaluated, 0); /* arguments of a disabled call are not evaluated */
    AR_LOG(AR_LOG_WARN, NULL, "shown %d", ++evaluated);
    AR_LOG(AR_LOG_ERROR, NULL, "shown too");
    char *out = captured(c);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, " warn shown 1\n"));
    assert_non_null(strstr(out, " error shown too\n"));
    free(out);
    assert_true(ar_log_enabled(AR_LOG_ERROR));
    assert_false(ar_log_enabled(AR_LOG_INFO));
    ar_log_set_level(AR_LOG_OFF);
    assert_false(ar_log_enabled(AR_LOG_ERROR));
    ar_log_shutdown();

    ar_log_level_t l;
    assert_int_equal(ar_log_level_parse("DEBUG", &l), 0);
    assert_int_equal(l, AR_LOG_DEBUG);
    assert_int_equal(ar_log_level_parse("info", &l), 0);
    assert_int_equal(l, AR_LOG_INFO);
    assert_int_equal(ar_log_level_parse("Warning", &l), 0);
    assert_int_equal(l, AR_LOG_WARN);
    assert_int_equal(ar_log_level_parse("error", &l), 0);
    assert_int_equal(l, AR_LOG_ERROR);
    assert_int_equal(ar_log_level_parse("verbose", &l), AR_EINVAL);
}

static void test_access_line(void **state)
{
    capture_t *c = *state;
    ar_log_init(false);
    const char *const secrets[] = {SECRET};
    ar_redact_set_secrets(secrets, 1);
    ar_access_log_t rec = {.method = "POST",
                           .path = AR_LIT("/v1/chat/completions"),
                           .status = 200,
                           .model = "gpt-4o",
                           .credential = "openai_main",
                           .attempts = 2,
                           .latency_ms = 12.5,
                           .prompt_tokens = 19,
                           .completion_tokens = 9,
                           .client = SECRET,
                           .request_id = "req-9",
                           .stream = true};
    ar_log_access(&rec);
    char *out = captured(c);
    assert_non_null(strstr(out, " info request method=POST path=/v1/chat/completions status=200 "
                                "model=gpt-4o credential=openai_main attempts=2 latency_ms=12.500 "
                                "prompt_tokens=19 completion_tokens=9 stream=true "
                                "client=sk-liv...def request_id=req-9\n"));
    free(out);
    ar_log_shutdown();
}

/* Client strings (model names, paths, messages quoting them) cannot forge a line or a
 * field, in either format, and invalid UTF-8 never makes a JSON line unreadable. */
static void test_client_strings_escaped(void **state)
{
    capture_t *c = *state;
    ar_log_init(false);
    ar_access_log_t rec = {.method = "POST",
                           .path = AR_LIT("/v1/x\x7f"),
                           .status = 400,
                           .model = "m\n2026-01-01T00:00:00.000Z info request method=GET",
                           .credential = "cred a=b",
                           .client = "127.0.0.1",
                           .request_id = "r1"};
    ar_log_access(&rec);
    ar_log_ctx_t ctx = {.request_id = "r1", .model = "x\r\ny"};
    ar_log_write(AR_LOG_INFO, &ctx, "refused '%s' \\ \x1b[31m", "a\nb\tc\xff");
    char *out = captured(c);
    assert_int_equal(count(out, "\n"), 2); /* two lines, nothing forged */
    assert_non_null(strstr(out,
                           " path=\"/v1/x\\x7f\" status=400 model=\"m\\n2026-01-01T00:00:00.000Z "
                           "info request method=GET\" credential=\"cred a=b\" attempts=0"));
    assert_non_null(strstr(out, "refused 'a\\nb\\tc\\xff' \\\\ \\x1b[31m model=\"x\\r\\ny\"\n"));
    free(out);

    ar_log_set_format(AR_LOG_JSON);
    ar_log_write(AR_LOG_INFO, &ctx, "bad utf8 \xc3( \xed\xa0\x80 ok \xc3\xa9 del \x7f");
    ar_log_access(&rec);
    out = captured(c); /* everything written so far: the two text lines, then two more */
    assert_int_equal(count(out, "\n"), 4);
    char *first = strchr(strchr(out, '\n') + 1, '\n') + 1;
    char *second = strchr(first, '\n') + 1;
    second[-1] = '\0';
    json_error_t je;
    json_t *v = json_loads(first, 0, &je);
    if (!v)
        fail_msg("not JSON: %s (%s)", first, je.text);
    assert_string_equal(
        json_string_value(json_object_get(v, "msg")),
        "bad utf8 \xef\xbf\xbd( \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ok \xc3\xa9 del \x7f");
    json_decref(v);
    v = json_loads(second, 0, &je);
    if (!v)
        fail_msg("not JSON: %s (%s)", second, je.text);
    assert_string_equal(json_string_value(json_object_get(v, "path")), "/v1/x\x7f");
    json_decref(v);
    free(out);
    ar_log_shutdown();
}

/* The reason of a refused request: quoted and escaped (a client's quote or newline inside
 * cannot end the field or the line), masked, cut at 200 bytes on a character boundary, a
 * JSON string in JSON lines, and absent when there is none (test_access_line). */
static void test_access_reason(void **state)
{
    capture_t *c = *state;
    ar_log_init(false);
    const char *const secrets[] = {SECRET};
    ar_redact_set_secrets(secrets, 1);
    ar_access_log_t rec = {.method = "POST",
                           .path = AR_LIT("/v1/chat/completions"),
                           .status = 404,
                           .model = "x",
                           .client = "127.0.0.1",
                           .request_id = "r7",
                           .reason = "No model 'a\"\nb status=200' for key " SECRET};
    ar_log_access(&rec);
    char *out = captured(c);
    assert_int_equal(count(out, "\n"), 1);
    assert_non_null(strstr(out, " status=404 reason=\"No model 'a\\\"\\nb status=200' for key "
                                "sk-liv...def\" model=x credential=- "));
    assert_null(strstr(out, SECRET));
    free(out);

    /* 300 bytes of two-byte characters after one ASCII byte: cut to 197 bytes plus "..." */
    char long_reason[302];
    long_reason[0] = 'x';
    for (size_t i = 1; i + 1 < 301; i += 2)
        memcpy(long_reason + i, "\xc3\xa9", 2);
    long_reason[301] = '\0';
    rec.reason = long_reason;
    ar_log_set_format(AR_LOG_JSON);
    ar_log_access(&rec);
    out = captured(c);
    char *line = strchr(out, '\n') + 1;
    *strchr(line, '\n') = '\0';
    json_error_t je;
    json_t *v = json_loads(line, 0, &je);
    if (!v)
        fail_msg("not JSON: %s (%s)", line, je.text);
    const char *got = json_string_value(json_object_get(v, "reason"));
    assert_non_null(got);
    assert_int_equal(strlen(got), 1 + 98 * 2 + 3); /* 197 whole bytes, never half an é */
    assert_memory_equal(got, long_reason, 197);
    assert_string_equal(got + 197, "...");
    assert_int_equal(json_integer_value(json_object_get(v, "status")), 404);
    json_decref(v);
    free(out);

    rec.reason = NULL;
    ar_log_access(&rec);
    out = captured(c);
    assert_null(strstr(strrchr(out, '{'), "reason"));
    free(out);
    ar_log_shutdown();
}

static void test_async_drains_on_shutdown(void **state)
{
    capture_t *c = *state;
    ar_log_init(true);
    const char *const secrets[] = {SECRET};
    ar_redact_set_secrets(secrets, 1);
    for (int i = 0; i < 100; i++)
        ar_log_write(AR_LOG_INFO, NULL, "line %03d %s", i, SECRET);
    ar_log_shutdown(); /* joins the logger thread after it wrote everything */
    char *out = captured(c);
    assert_int_equal(count(out, "\n"), 100);
    assert_int_equal(count(out, "sk-liv...def"), 100);
    assert_non_null(strstr(out, " info line 000 "));
    assert_non_null(strstr(out, " info line 099 "));
    assert_true(strstr(out, "line 000") < strstr(out, "line 099")); /* in order */
    assert_null(strstr(out, SECRET));
    assert_int_equal(ar_log_dropped(), 0);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_key),
        cmocka_unit_test_setup_teardown(test_secrets_masked_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_masked_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_strings_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_drains_on_shutdown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
