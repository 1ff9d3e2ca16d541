/*
 * test_litellm.c: the queries on LiteLLM's tables (store/litellm.c). The connection
 * errors (refused; no answer within connect_timeout) run everywhere; the rest needs AR_TEST_PG_URL (tests/pg.sh start prints one) and is
 * skipped without it. Each test gets a fresh database holding the two tables with the
 * columns and constraints of LiteLLM's prisma schema that the queries touch.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/litellm.h"
#include "testutil.h"

static char dir[64];
static char url[200];
static ar_ll_db_t *db;

static const char ddl[] =
    "CREATE TABLE \"LiteLLM_VerificationToken\" (token TEXT PRIMARY KEY, key_alias TEXT,"
    " spend DOUBLE PRECISION NOT NULL DEFAULT 0.0, expires TIMESTAMP(3), models TEXT[],"
    " user_id TEXT, team_id TEXT, blocked BOOLEAN, tpm_limit BIGINT, rpm_limit BIGINT,"
    " max_budget DOUBLE PRECISION);"
    "CREATE TABLE \"LiteLLM_SpendLogs\" (request_id TEXT PRIMARY KEY, call_type TEXT NOT NULL,"
    " api_key TEXT NOT NULL DEFAULT '', spend DOUBLE PRECISION NOT NULL DEFAULT 0.0,"
    " total_tokens INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,"
    " completion_tokens INTEGER NOT NULL DEFAULT 0, \"startTime\" TIMESTAMP(3) NOT NULL,"
    " \"endTime\" TIMESTAMP(3) NOT NULL, request_duration_ms INTEGER,"
    " \"completionStartTime\" TIMESTAMP(3), model TEXT NOT NULL DEFAULT '',"
    " model_group TEXT DEFAULT '', custom_llm_provider TEXT DEFAULT '', api_base TEXT DEFAULT '',"
    " \"user\" TEXT DEFAULT '', metadata JSONB DEFAULT '{}', team_id TEXT, status TEXT);";

static int setup(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        return 0;
    ar_test_store_dir("ar-ll", dir, url);
    ar_test_pg_exec(url, ddl);
    char err[256];
    if (ar_ll_db_open(url, 5000, &db, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        return 0;
    ar_ll_db_close(db);
    db = NULL;
    ar_test_rmdir(dir);
    return 0;
}

/* One value of the first row of sql on the test database, in out. */
static void query1(const char *sql, char *out, size_t len)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(PQntuples(r) > 0);
    snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
}

/* The connections carry an application_name (pg_stat_activity tells them apart); one the
 * URL sets wins. */
static void test_application_name(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    char n[32];
    query1("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
           " AND application_name = '" AR_LL_APPLICATION_NAME "'",
           n, sizeof(n));
    assert_string_equal(n, "1");
    char own[260];
    snprintf(own, sizeof(own), "%s%capplication_name=mine", url, strchr(url, '?') ? '&' : '?');
    ar_ll_db_t *db2 = NULL;
    char err[256];
    assert_int_equal(ar_ll_db_open(own, 5000, &db2, err, sizeof(err)), 0);
    query1("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
           " AND application_name = 'mine'",
           n, sizeof(n));
    assert_string_equal(n, "1");
    ar_ll_db_close(db2);
}

static void test_open_error_hides_password(void **state)
{
    (void)state;
    char err[256];
    ar_ll_db_t *d = NULL;
    int rc = ar_ll_db_open("postgresql://u:hunter2pw@127.0.0.1:1/none", 2000, &d, err, sizeof(err));
    assert_int_equal(rc, AR_EIO);
    assert_null(d);
    assert_non_null(strstr(err, "litellm_db.database_url: cannot connect to PostgreSQL"));
    assert_null(strstr(err, "hunter2pw"));
}

/* A server that completes the TCP handshake and never answers: the open gives up at
 * connect_timeout, and says so without the password. */
static void test_open_gives_up_at_connect_timeout(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char silent[128];
    snprintf(silent, sizeof(silent), "postgresql://u:hunter2pw@127.0.0.1:%d/db?sslmode=disable",
             ntohs(a.sin_port));
    char err[256];
    ar_ll_db_t *d = NULL;
    uint64_t t0 = ar_now_ms();
    assert_int_equal(ar_ll_db_open(silent, 300, &d, err, sizeof(err)), AR_EIO);
    uint64_t took = ar_now_ms() - t0;
    assert_null(d);
    assert_true(took >= 250 && took < 3000);
    assert_non_null(strstr(err, "no answer within 300 ms"));
    assert_null(strstr(err, "hunter2pw"));
    close(fd);
}

static void test_token_get(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    ar_test_pg_exec(url, "INSERT INTO \"LiteLLM_VerificationToken\" (token, key_alias, spend,"
                         " expires, models, user_id, blocked, rpm_limit, max_budget) VALUES"
                         " ('aa', 'alias', 1.5, '2030-01-02 03:04:05', ARRAY['m1','m2'], 'u',"
                         " true, 7, 10), ('bb', NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL)");
    ar_ll_token_t t;
    assert_int_equal(ar_ll_token_get(db, "aa", &t), 0);
    assert_true(t.blocked);
    assert_int_equal(t.expires_ms, 1893553445000LL); /* 2030-01-02T03:04:05Z */
    assert_true(t.spend == 1.5);
    assert_true(t.max_budget == 10);
    assert_int_equal(t.rpm_limit, 7);
    assert_int_equal(t.tpm_limit, -1);
    assert_int_equal(t.models_cnt, 2);
    assert_string_equal(t.models[0], "m1");
    assert_string_equal(t.models[1], "m2");
    assert_string_equal(t.key_alias, "alias");
    assert_string_equal(t.user_id, "u");
    assert_string_equal(t.team_id, "");
    ar_ll_token_free(&t);
    /* NULLs: never blocked, never expires, no budget, every model */
    assert_int_equal(ar_ll_token_get(db, "bb", &t), 0);
    assert_false(t.blocked);
    assert_int_equal(t.expires_ms, 0);
    assert_true(t.max_budget < 0);
    assert_int_equal(t.rpm_limit, -1);
    assert_int_equal(t.models_cnt, 0);
    ar_ll_token_free(&t);
    assert_int_equal(ar_ll_token_get(db, "cc", &t), AR_ENOTFOUND);
    assert_int_equal(ar_ll_db_ping(db), 0);
}

static void test_spend_write(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    ar_test_pg_exec(url, "INSERT INTO \"LiteLLM_VerificationToken\" (token, spend) VALUES"
                         " ('aa', 1)");
    ar_ll_spend_t rows[2] = {
        {.request_id = "r1",
         .api_key = "aa",
         .call_type = "acompletion",
         .model = "gpt",
         .model_group = "m",
         .status = "success",
         .spend = 0.25,
         .prompt_tokens = 10,
         .completion_tokens = 5,
         .start_ms = 1700000000000LL,
         .end_ms = 1700000000250LL,
         .first_ms = 1700000000100LL,
         .key_alias = "al"},
        {.request_id = "r2",
         .api_key = "aa",
         .call_type = "acompletion",
         .status = "failure",
         .start_ms = 1700000000000LL,
         .end_ms = 1700000000001LL,
         .spend = 0.5},
    };
    assert_int_equal(ar_ll_spend_write(db, rows, 2), 0);
    char v[256];
    query1("SELECT spend FROM \"LiteLLM_VerificationToken\" WHERE token = 'aa'", v, sizeof(v));
    assert_string_equal(v, "1.75");
    query1("SELECT total_tokens || '|' || request_duration_ms || '|' || model || '|' ||"
           " model_group || '|' || \"startTime\" || '|' || \"completionStartTime\" || '|' ||"
           " (metadata->>'user_api_key_alias') FROM \"LiteLLM_SpendLogs\" WHERE request_id = 'r1'",
           v, sizeof(v));
    assert_string_equal(v, "15|250|gpt|m|2023-11-14 22:13:20|2023-11-14 22:13:20.1|al");
    /* no first byte, no team: NULLs, as LiteLLM leaves them */
    query1("SELECT (\"completionStartTime\" IS NULL AND team_id IS NULL)::text FROM"
           " \"LiteLLM_SpendLogs\" WHERE request_id = 'r2'",
           v, sizeof(v));
    assert_string_equal(v, "true");
    /* a batch written again (its commit's answer lost) is not counted twice */
    assert_int_equal(ar_ll_spend_write(db, rows, 2), 0);
    query1("SELECT spend FROM \"LiteLLM_VerificationToken\" WHERE token = 'aa'", v, sizeof(v));
    assert_string_equal(v, "1.75");
    query1("SELECT COUNT(*) FROM \"LiteLLM_SpendLogs\"", v, sizeof(v));
    assert_string_equal(v, "2");
}

static void test_missing_table_is_eio(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    ar_test_pg_exec(url, "DROP TABLE \"LiteLLM_SpendLogs\"");
    ar_ll_spend_t row = {.request_id = "r1", .api_key = "aa", .call_type = "acompletion"};
    assert_int_equal(ar_ll_spend_write(db, &row, 1), AR_EIO);
    /* the connection is still usable after the rollback */
    ar_ll_token_t t;
    assert_int_equal(ar_ll_token_get(db, "zz", &t), AR_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_error_hides_password),
        cmocka_unit_test(test_open_gives_up_at_connect_timeout),
        cmocka_unit_test_setup_teardown(test_token_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spend_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_table_is_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_application_name, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
