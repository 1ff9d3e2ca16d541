/*
 * test_store.c: the store on real SQLite files in a temporary directory: migrations (a new
 * file, a reopened one, one from a newer airouter), plans, keys (by hash and by id, listed,
 * revoked), the key itself never reaching the file, foreign keys, refused URLs; and the key
 * material of keys.c; a version-1 database migrated with its data kept; key change times
 * and the change counter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/clock.h"
#include "store/store.h"
#include "testutil.h"

static char dir[64];
static char url[200];
static char path[160];
static char err[256];

static int setup(void **state)
{
    (void)state;
    ar_test_store_dir("ar-store", dir, url);
    snprintf(path, sizeof(path), "%s/airouter.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ar_test_rmdir(dir);
    return 0;
}

static ar_store_t *open_store(void)
{
    ar_store_t *s = NULL;
    int rc = ar_store_open(url, &s, err, sizeof(err));
    if (rc)
        fail_msg("open: %s", err);
    return s;
}

static void test_migrations(void **state)
{
    (void)state;
    ar_store_t *s = open_store();
    assert_int_equal(ar_store_schema_version(s), 3);
    ar_store_close(s);
    s = open_store(); /* reopened: nothing to migrate, nothing lost */
    assert_int_equal(ar_store_schema_version(s), 3);
    ar_store_close(s);

    /* a database written by a newer airouter is refused, not rewritten */
    if (ar_test_pg_url()) {
        ar_test_pg_exec(url, "UPDATE schema_version SET version = 99");
    } else {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(
            sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL),
            SQLITE_OK);
        sqlite3_close(db);
    }
    assert_int_equal(ar_store_open(url, &s, err, sizeof(err)), AR_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err, "schema version 99"));
}

/* A database written by the airouter of schema version 1 (plans and keys only). */
static const char v1_schema[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version VALUES (1);"
    "CREATE TABLE plans (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT "
    "NOT NULL DEFAULT '', max_tokens INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE keys (id INTEGER PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,"
    " masked TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL DEFAULT 0,"
    " revoked INTEGER NOT NULL DEFAULT 0, rpm INTEGER NOT NULL DEFAULT -1, tpm INTEGER NOT NULL "
    "DEFAULT -1, daily_tokens INTEGER NOT NULL DEFAULT -1, monthly_tokens INTEGER NOT NULL "
    "DEFAULT -1, limit_tokens INTEGER NOT NULL DEFAULT -1, max_budget_usd REAL NOT NULL DEFAULT "
    "-1, plan_id INTEGER REFERENCES plans(id), models TEXT NOT NULL DEFAULT '');"
    "INSERT INTO plans (name, max_tokens, created_ms) VALUES ('basic', 1000, 1700000000000);"
    "INSERT INTO keys (name, hash, masked, created_ms, rpm, plan_id) VALUES "
    "('old', 'abc123', 'sk-abc...xyz', 1700000000123, 60, 1);";

static void test_migration_from_v1(void **state)
{
    (void)state;
    if (ar_test_pg_url())
        skip(); /* the v1 database here is a SQLite file */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    ar_store_t *s = open_store();
    assert_int_equal(ar_store_schema_version(s), 3);
    ar_vkey_t k;
    assert_int_equal(ar_store_key_get(s, 0, "abc123", &k), 0);
    assert_string_equal(k.name, "old");
    assert_int_equal(k.rpm, 60);
    assert_int_equal(k.plan_id, 1);
    assert_int_equal(k.created_ms, 1700000000123);
    assert_int_equal(k.updated_ms, 1700000000123); /* the creation time until changed */
    ar_vkey_free(&k);
    ar_plan_list_t pl;
    assert_int_equal(ar_store_plan_list(s, &pl), 0);
    assert_int_equal(pl.cnt, 1);
    ar_store_plan_list_free(&pl);
    /* the new tables are there and work */
    int64_t n = -1;
    assert_int_equal(ar_store_spend_count(s, &n), 0);
    assert_int_equal(n, 0);
    ar_store_close(s);
}

/* keys_changed_since sees creations, updates and revocations; the change counter moves
 * with every tenancy write. */
static void test_changes(void **state)
{
    (void)state;
    ar_store_t *s = open_store();
    int64_t seq0 = -1, seq1 = -1, seq2 = -1;
    assert_int_equal(ar_store_change_seq(s, &seq0), 0);
    char key[AR_KEY_LEN + 1];
    assert_int_equal(ar_key_generate(key), 0);
    ar_vkey_t k = {.name = "a", .rpm = -1, .tpm = -1, .created_ms = 1000};
    ar_key_hash(key, k.hash);
    ar_key_mask(key, k.masked);
    int64_t id1 = 0, id2 = 0;
    assert_int_equal(ar_store_key_create(s, &k, &id1, err, sizeof(err)), 0);
    assert_int_equal(ar_key_generate(key), 0);
    ar_key_hash(key, k.hash);
    k.created_ms = 0; /* now */
    assert_int_equal(ar_store_key_create(s, &k, &id2, err, sizeof(err)), 0);
    assert_int_equal(ar_store_change_seq(s, &seq1), 0);
    assert_true(seq1 >= seq0 + 2);

    ar_vkey_list_t l;
    assert_int_equal(ar_store_keys_changed_since(s, 0, &l), 0);
    assert_int_equal(l.cnt, 2);
    ar_store_key_list_free(&l);
    assert_int_equal(ar_store_keys_changed_since(s, 2000, &l), 0);
    assert_int_equal(l.cnt, 1); /* the one created at 1000 is older */
    assert_int_equal(l.items[0].id, id2);
    int64_t mark = l.items[0].updated_ms + 1;
    ar_store_key_list_free(&l);

    /* wait for the wall clock to pass mark, so the revocation's time is after it */
    while (ar_wall_ms() < mark)
        ;
    assert_int_equal(ar_store_key_revoke(s, id1), 0);
    assert_int_equal(ar_store_keys_changed_since(s, mark, &l), 0);
    assert_int_equal(l.cnt, 1);
    assert_int_equal(l.items[0].id, id1);
    assert_true(l.items[0].revoked);
    ar_store_key_list_free(&l);
    assert_int_equal(ar_store_change_seq(s, &seq2), 0);
    assert_true(seq2 > seq1);
    ar_store_close(s);
}

static void test_refused_urls(void **state)
{
    (void)state;
    ar_store_t *s = NULL;
    /* a PostgreSQL server that is not there: refused quickly, the password not echoed */
    assert_int_equal(ar_store_open("postgresql://u:s3cretpw@127.0.0.1:1/db", &s, err, sizeof(err)),
                     AR_EIO);
    assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
    assert_null(strstr(err, "s3cretpw"));
    assert_null(s);
    assert_int_equal(ar_store_open("mysql://x", &s, err, sizeof(err)), AR_EINVAL);
    assert_int_equal(ar_store_open("sqlite://", &s, err, sizeof(err)), AR_EINVAL);
    assert_int_equal(ar_store_open("sqlite:///nonexistent-dir/x/y.db", &s, err, sizeof(err)),
                     AR_EIO);
    assert_non_null(strstr(err, "/nonexistent-dir/x/y.db"));
    assert_null(s);
}

static void test_plans(void **state)
{
    (void)state;
    ar_store_t *s = open_store();
    int64_t id1 = 0, id2 = 0, id3 = 0;
    ar_plan_t basic = {.name = "basic", .description = "small", .max_tokens = 100000};
    ar_plan_t pro = {.name = "pro", .max_tokens = 5000000};
    assert_int_equal(ar_store_plan_create(s, &basic, &id1, err, sizeof(err)), 0);
    assert_int_equal(ar_store_plan_create(s, &pro, &id2, err, sizeof(err)), 0);
    assert_true(id2 > id1);
    assert_int_equal(ar_store_plan_create(s, &basic, &id3, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "'basic' exists already"));
    ar_plan_list_t l;
    assert_int_equal(ar_store_plan_list(s, &l), 0);
    assert_int_equal(l.cnt, 2);
    assert_string_equal(l.items[0].name, "basic");
    assert_string_equal(l.items[0].description, "small");
    assert_int_equal(l.items[0].max_tokens, 100000);
    assert_string_equal(l.items[1].description, "");
    assert_true(l.items[1].created_ms > 0);
    ar_store_plan_list_free(&l);
    ar_store_close(s);
}

/* Reads the whole database file (and its WAL) into a string. */
static char *slurp(const char *suffix, size_t *len)
{
    char p[200];
    snprintf(p, sizeof(p), "%s%s", path, suffix);
    FILE *f = fopen(p, "rb");
    *len = 0;
    if (!f)
        return NULL;
    char *buf = malloc(1 << 22);
    *len = fread(buf, 1, (1 << 22) - 1, f);
    fclose(f);
    return buf;
}

static bool file_has(const char *needle)
{
    const char *suffixes[] = {"", "-wal"};
    for (size_t i = 0; i < 2; i++) {
        size_t n;
        char *b = slurp(suffixes[i], &n);
        bool hit = b && memmem(b, n, needle, strlen(needle));
        free(b);
        if (hit)
            return true;
    }
    return false;
}

static void test_keys(void **state)
{
    (void)state;
    ar_store_t *s = open_store();
    int64_t plan = 0;
    ar_plan_t basic = {.name = "basic", .max_tokens = 1000};
    assert_int_equal(ar_store_plan_create(s, &basic, &plan, err, sizeof(err)), 0);

    char key[AR_KEY_LEN + 1];
    assert_int_equal(ar_key_generate(key), 0);
    ar_vkey_t k = {.name = "team-a",
                   .rpm = 60,
                   .tpm = -1,
                   .daily_tokens = 5000,
                   .monthly_tokens = -1,
                   .limit_tokens = -1,
                   .max_budget_usd = 12.5,
                   .plan_id = plan,
                   .models = "gpt-4o,claude"};
    ar_key_hash(key, k.hash);
    ar_key_mask(key, k.masked);
    int64_t id = 0;
    assert_int_equal(ar_store_key_create(s, &k, &id, err, sizeof(err)), 0);
    assert_true(id > 0);

    ar_vkey_t got;
    assert_int_equal(ar_store_key_get(s, 0, k.hash, &got), 0);
    assert_int_equal(got.id, id);
    assert_string_equal(got.name, "team-a");
    assert_string_equal(got.masked, k.masked);
    assert_int_equal(got.rpm, 60);
    assert_int_equal(got.tpm, -1);
    assert_int_equal(got.daily_tokens, 5000);
    assert_true(got.max_budget_usd == 12.5);
    assert_int_equal(got.plan_id, plan);
    assert_string_equal(got.models, "gpt-4o,claude");
    assert_false(got.revoked);
    assert_int_equal(got.expires_ms, 0);
    ar_vkey_free(&got);

    /* the same key twice, a plan that does not exist: refused */
    assert_int_equal(ar_store_key_create(s, &k, &id, err, sizeof(err)), AR_EINVAL);
    char key2[AR_KEY_LEN + 1];
    assert_int_equal(ar_key_generate(key2), 0);
    ar_vkey_t k2 = {.name = "b", .rpm = -1, .plan_id = 999};
    ar_key_hash(key2, k2.hash);
    ar_key_mask(key2, k2.masked);
    assert_int_equal(ar_store_key_create(s, &k2, &id, err, sizeof(err)), AR_EINVAL);
    k2.plan_id = 0;
    int64_t id2 = 0;
    assert_int_equal(ar_store_key_create(s, &k2, &id2, err, sizeof(err)), 0);

    ar_vkey_list_t l;
    assert_int_equal(ar_store_key_list(s, &l), 0);
    assert_int_equal(l.cnt, 2);
    assert_string_equal(l.items[1].name, "b");
    assert_int_equal(l.items[1].plan_id, 0);
    ar_store_key_list_free(&l);

    /* an update writes limits and, for a rotation, the new hash: the old one no longer finds it */
    ar_vkey_t upd;
    assert_int_equal(ar_store_key_get(s, id2, NULL, &upd), 0);
    char old_hash[AR_KEY_HASH_LEN + 1];
    memcpy(old_hash, upd.hash, sizeof(old_hash));
    char rotated[AR_KEY_LEN + 1];
    assert_int_equal(ar_key_generate(rotated), 0);
    ar_key_hash(rotated, upd.hash);
    ar_key_mask(rotated, upd.masked);
    upd.rpm = 7;
    assert_int_equal(ar_store_key_update(s, &upd, err, sizeof(err)), 0);
    ar_vkey_free(&upd);
    assert_int_equal(ar_store_key_get(s, 0, old_hash, &got), AR_ENOTFOUND);
    char new_hash[AR_KEY_HASH_LEN + 1];
    ar_key_hash(rotated, new_hash);
    assert_int_equal(ar_store_key_get(s, 0, new_hash, &got), 0);
    assert_int_equal(got.id, id2);
    assert_int_equal(got.rpm, 7);
    /* taking another key's hash, or a plan that does not exist, is refused */
    memcpy(got.hash, k.hash, sizeof(got.hash));
    assert_int_equal(ar_store_key_update(s, &got, err, sizeof(err)), AR_EINVAL);
    ar_key_hash(rotated, got.hash);
    got.plan_id = 999;
    assert_int_equal(ar_store_key_update(s, &got, err, sizeof(err)), AR_EINVAL);
    got.id = 4242;
    got.plan_id = 0;
    assert_int_equal(ar_store_key_update(s, &got, err, sizeof(err)), AR_ENOTFOUND);
    ar_vkey_free(&got);

    assert_int_equal(ar_store_key_revoke(s, id), 0);
    assert_int_equal(ar_store_key_get(s, id, NULL, &got), 0);
    assert_true(got.revoked);
    ar_vkey_free(&got);
    assert_int_equal(ar_store_key_revoke(s, 12345), AR_ENOTFOUND);
    assert_int_equal(ar_store_key_get(s, 0, "00", &got), AR_ENOTFOUND);
    ar_store_close(s);

    /* only the hash and the masked form reach the disk */
    if (ar_test_pg_url())
        return; /* the database is not a file here */
    assert_true(file_has(k.hash));
    assert_false(file_has(key));
    assert_false(file_has(key + 10));
}

static void test_key_material(void **state)
{
    (void)state;
    char a[AR_KEY_LEN + 1], b[AR_KEY_LEN + 1];
    assert_int_equal(ar_key_generate(a), 0);
    assert_int_equal(ar_key_generate(b), 0);
    assert_int_equal(strlen(a), 51);
    assert_true(ar_key_well_formed(a));
    assert_string_not_equal(a, b);
    assert_true(ar_key_well_formed("sk-0123456789012345678901234567890123456789"));
    assert_false(ar_key_well_formed("sk-012345678901234567890123456789012345678")); /* 39 */
    assert_false(ar_key_well_formed("sk-0123456789012345678901234567890123456789-"));
    assert_false(ar_key_well_formed("pk-0123456789012345678901234567890123456789"));
    char m[AR_KEY_MASKED_MAX];
    ar_key_mask("sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL", m);
    assert_string_equal(m, "sk-abc...JKL");
    ar_key_mask("sk-short", m);
    assert_string_equal(m, "sk-...");
    /* uniform characters: over 200 keys every base62 character shows up */
    int seen[128] = {0};
    for (int i = 0; i < 200; i++) {
        assert_int_equal(ar_key_generate(a), 0);
        for (const char *p = a + 3; *p; p++)
            seen[(unsigned char)*p]++;
    }
    int kinds = 0;
    for (int c = 0; c < 128; c++)
        kinds += seen[c] > 0;
    assert_int_equal(kinds, 62);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
        cmocka_unit_test(test_refused_urls),
        cmocka_unit_test_setup_teardown(test_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test(test_key_material),
    };
    return cmocka_run_group_tests_name("test_store", tests, NULL, NULL);
}
