/*
 * test_postgres.c: what only the PostgreSQL backend has: a batch larger than one INSERT's
 * parameters, replayed without double counting; a connection the server dropped, reset
 * and used again; a SQLite backup restored into PostgreSQL, with new ids after the
 * restored ones. The other store tests run on PostgreSQL too (tests/run-unit.sh). Every
 * test here is skipped without AR_TEST_PG_URL (tests/pg.sh start prints one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/secret.h"
#include "store/store.h"
#include "testutil.h"

static char dir[64];
static char url[200];
static char err[256];
static ar_store_t *s;

static int setup(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        return 0;
    ar_test_store_dir("ar-pg", dir, url);
    if (ar_store_open(url, &s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        return 0;
    ar_store_close(s);
    s = NULL;
    ar_test_rmdir(dir);
    return 0;
}

#define BIG 2500 /* more rows than one INSERT of the backend takes */

static void test_big_batch_replayed(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    ar_spend_t *recs = calloc(BIG, sizeof(*recs));
    assert_non_null(recs);
    for (int i = 0; i < BIG; i++) {
        snprintf(recs[i].id, sizeof(recs[i].id), "rec-%05d", i);
        snprintf(recs[i].request_id, sizeof(recs[i].request_id), "req-%d", i);
        recs[i].ts_ms = 1700000000000LL + i;
        recs[i].key_id = 1 + i % 3;
        recs[i].model = "gpt-4o";
        recs[i].upstream_model = "gpt-4o-2024";
        recs[i].credential = "it's \"quoted\"; DROP TABLE spend; --";
        recs[i].prompt_tokens = 10;
        recs[i].completion_tokens = 5;
        recs[i].cost_usd = 0.25;
        recs[i].status = 200;
    }
    size_t inserted = 0;
    assert_int_equal(ar_store_spend_apply(s, recs, BIG, &inserted, err, sizeof(err)), 0);
    assert_int_equal(inserted, BIG);
    /* a replay after a crash: nothing new, usage unchanged */
    assert_int_equal(ar_store_spend_apply(s, recs, BIG, &inserted, err, sizeof(err)), 0);
    assert_int_equal(inserted, 0);
    int64_t n = 0;
    assert_int_equal(ar_store_spend_count(s, &n), 0);
    assert_int_equal(n, BIG);
    ar_usage_totals_t total;
    assert_int_equal(ar_store_usage(s, 1, 1700000000000LL, NULL, NULL, &total), 0);
    assert_int_equal(total.requests, (BIG + 2) / 3);
    assert_int_equal(total.prompt_tokens, 10 * ((BIG + 2) / 3));
    ar_spend_filter_t f = ar_spend_filter_all();
    f.credential = recs[0].credential;
    ar_spend_total_list_t l = {0};
    assert_int_equal(ar_store_spend_totals(s, &f, AR_SPEND_GROUP_NONE, &l), 0);
    assert_int_equal(l.cnt, 1);
    assert_int_equal(l.items[0].requests, BIG);
    assert_true(l.items[0].cost_usd > BIG * 0.25 - 1e-6 && l.items[0].cost_usd < BIG * 0.25 + 1e-6);
    ar_store_spend_total_list_free(&l);
    free(recs);
}

static void test_reconnects(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    ar_plan_t p = {.name = "basic", .max_tokens = 100};
    int64_t id = 0;
    assert_int_equal(ar_store_plan_create(s, &p, &id, err, sizeof(err)), 0);
    /* the server ends the session (a restart, an idle timeout): the next call resets it */
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'",
             ar_test_pg_dbname(dir));
    ar_test_pg_exec(ar_test_pg_url(), sql);
    ar_plan_list_t l = {0};
    assert_int_equal(ar_store_plan_list(s, &l), 0);
    assert_int_equal(l.cnt, 1);
    assert_string_equal(l.items[0].name, "basic");
    ar_store_plan_list_free(&l);
}

static void test_sqlite_backup_into_postgres(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    char sdir[64], surl[200];
    snprintf(sdir, sizeof(sdir), "/tmp/ar-pgsq-XXXXXX");
    assert_non_null(mkdtemp(sdir));
    snprintf(surl, sizeof(surl), "sqlite://%s/airouter.db", sdir);
    ar_store_t *sq = NULL;
    assert_int_equal(ar_store_open(surl, &sq, err, sizeof(err)), 0);
    ar_vkey_t k = ar_vkey_unlimited();
    k.name = "alice";
    snprintf(k.hash, sizeof(k.hash), "%064d", 1);
    snprintf(k.masked, sizeof(k.masked), "sk-abc...xyz");
    int64_t kid = 0, cid = 0;
    assert_int_equal(ar_store_key_create(sq, &k, &kid, err, sizeof(err)), 0);
    ar_conn_t c = {.name = "oa", .provider = "openai", .endpoint = "https://api.openai.com/v1"};
    assert_int_equal(
        ar_store_conn_create(sq, &c, "sk-upstream", "a secret key", &cid, err, sizeof(err)), 0);
    json_t *doc = NULL;
    assert_int_equal(ar_store_backup(sq, &doc, err, sizeof(err)), 0);
    ar_store_close(sq);
    ar_test_rmdir(sdir);

    assert_int_equal(ar_store_restore(s, doc, err, sizeof(err)), 0);
    json_decref(doc);
    ar_vkey_t got;
    assert_int_equal(ar_store_key_get(s, kid, NULL, &got), 0);
    assert_string_equal(got.name, "alice");
    ar_vkey_free(&got);
    /* the sealed secret came through BYTEA and still opens */
    char *plain = NULL;
    assert_int_equal(ar_store_conn_secret(s, cid, "a secret key", &plain, err, sizeof(err)), 0);
    assert_string_equal(plain, "sk-upstream");
    ar_secret_free(plain);
    /* new rows get ids after the restored ones */
    int64_t kid2 = 0;
    snprintf(k.hash, sizeof(k.hash), "%064d", 2);
    assert_int_equal(ar_store_key_create(s, &k, &kid2, err, sizeof(err)), 0);
    assert_true(kid2 > kid);
    /* and the database is no longer empty */
    assert_int_equal(ar_store_backup(s, &doc, err, sizeof(err)), 0);
    assert_int_equal(ar_store_restore(s, doc, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "not empty"));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_big_batch_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_backup_into_postgres, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
