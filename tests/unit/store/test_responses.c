/*
 * test_responses.c: the stored responses of the Responses API on a real SQLite file: put
 * and get round trip, bad records refused, a duplicate id refused, owners isolated from
 * each other (get, delete, chain), the chain oldest first and bounded by max, a chain
 * through a deleted link or a cycle, purge by age, a schema-version-2 database migrated
 * with its data kept, and backup -> restore.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/clock.h"
#include "store/store.h"
#include "testutil.h"

static char dir[64];
static char url[200];
static char err[256];
static ar_store_t *s;

#define INPUT "[{\"role\":\"user\",\"content\":\"h\\u00e9llo \\\"you\\\"\"}]"
#define OUTPUT "{\"id\":\"resp_1\",\"object\":\"response\",\"output\":[]}"

static int setup(void **state)
{
    (void)state;
    ar_test_store_dir("ar-responses", dir, url);
    if (ar_store_open(url, &s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ar_store_close(s);
    s = NULL;
    ar_test_rmdir(dir);
    return 0;
}

/* Stores response id of owner, after previous (NULL: none), created at created_ms. */
static void put(const char *id, int64_t owner, const char *previous, int64_t created_ms)
{
    ar_stored_response_t r = {.owner = owner,
                              .previous_id = (char *)previous,
                              .model = "gpt-4o",
                              .created_ms = created_ms,
                              .input = INPUT,
                              .output = OUTPUT};
    snprintf(r.id, sizeof(r.id), "%s", id);
    if (ar_store_response_put(s, &r, err, sizeof(err)) != 0)
        fail_msg("put %s: %s", id, err);
}

/* The ids of owner's chain ending at id, joined by spaces, or the error's name. */
static const char *chain(const char *id, int64_t owner, size_t max)
{
    static char buf[512];
    ar_stored_response_list_t l = {.cnt = 99};
    int rc = ar_store_response_chain(s, id, owner, max, &l);
    if (rc) {
        assert_int_equal(l.cnt, 0);
        assert_null(l.items);
        return ar_err_name(rc);
    }
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l.cnt; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "", l.items[i].id);
    ar_stored_response_list_free(&l);
    return buf;
}

static void test_put_get(void **state)
{
    (void)state;
    int64_t before = ar_wall_ms();
    put("resp_1", 7, NULL, 0);
    put("resp_2", 7, "resp_1", 1234);
    ar_stored_response_t r;
    assert_int_equal(ar_store_response_get(s, "resp_1", 7, &r), 0);
    assert_string_equal(r.id, "resp_1");
    assert_int_equal(r.owner, 7);
    assert_null(r.previous_id);
    assert_string_equal(r.model, "gpt-4o");
    assert_true(r.created_ms >= before); /* 0: the store's clock */
    assert_string_equal(r.input, INPUT);
    assert_string_equal(r.output, OUTPUT);
    ar_stored_response_dispose(&r);
    assert_null(r.model);
    ar_stored_response_dispose(&r); /* a disposed record may be disposed again */
    assert_int_equal(ar_store_response_get(s, "resp_2", 7, &r), 0);
    assert_string_equal(r.previous_id, "resp_1");
    assert_int_equal(r.created_ms, 1234);
    ar_stored_response_dispose(&r);
    assert_int_equal(ar_store_response_get(s, "resp_3", 7, &r), AR_ENOTFOUND);

    /* bad records: a clear error, nothing stored */
    ar_stored_response_t bad = {.owner = 7, .model = "m", .input = "[]", .output = "{}"};
    assert_int_equal(ar_store_response_put(s, &bad, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "needs an id"));
    memset(bad.id, 'x', sizeof(bad.id)); /* no room for its end */
    assert_int_equal(ar_store_response_put(s, &bad, err, sizeof(err)), AR_EINVAL);
    snprintf(bad.id, sizeof(bad.id), "resp_bad");
    bad.previous_id = "resp_bad";
    assert_int_equal(ar_store_response_put(s, &bad, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "previous_id"));
    bad.previous_id = "";
    assert_int_equal(ar_store_response_put(s, &bad, err, sizeof(err)), AR_EINVAL);
    bad.previous_id = NULL;
    bad.output = NULL;
    assert_int_equal(ar_store_response_put(s, &bad, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "required"));
    assert_int_equal(ar_store_response_get(s, "resp_bad", 7, &r), AR_ENOTFOUND);
    /* ids no record can have */
    char longid[AR_RESPONSE_ID_MAX + 8];
    memset(longid, 'r', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(ar_store_response_get(s, longid, 7, &r), AR_ENOTFOUND);
    assert_int_equal(ar_store_response_get(s, "", 7, &r), AR_ENOTFOUND);
    assert_int_equal(ar_store_response_get(s, NULL, 7, &r), AR_ENOTFOUND);
    assert_int_equal(ar_store_response_delete(s, longid, 7), AR_ENOTFOUND);
    assert_string_equal(chain(longid, 7, 10), "AR_ENOTFOUND");
}

static void test_duplicate(void **state)
{
    (void)state;
    put("resp_1", 7, NULL, 1000);
    ar_stored_response_t r = {.owner = 8, .model = "other", .input = "[]", .output = "{}"};
    snprintf(r.id, sizeof(r.id), "resp_1");
    /* ids are global: another owner cannot take one either */
    assert_int_equal(ar_store_response_put(s, &r, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "'resp_1' exists already"));
    r.owner = 7;
    assert_int_equal(ar_store_response_put(s, &r, err, sizeof(err)), AR_EINVAL);
    ar_stored_response_t got;
    assert_int_equal(ar_store_response_get(s, "resp_1", 7, &got), 0);
    assert_string_equal(got.model, "gpt-4o"); /* the first one, untouched */
    ar_stored_response_dispose(&got);
}

static void test_owners(void **state)
{
    (void)state;
    put("resp_a", 7, NULL, 1000);
    put("resp_m", 0, NULL, 1000); /* the master key's */
    ar_stored_response_t r;
    assert_int_equal(ar_store_response_get(s, "resp_a", 8, &r), AR_ENOTFOUND);
    assert_int_equal(ar_store_response_get(s, "resp_a", 0, &r), AR_ENOTFOUND);
    assert_int_equal(ar_store_response_get(s, "resp_m", 7, &r), AR_ENOTFOUND);
    assert_string_equal(chain("resp_a", 8, 10), "AR_ENOTFOUND");
    assert_string_equal(chain("resp_m", 7, 10), "AR_ENOTFOUND");
    assert_int_equal(ar_store_response_delete(s, "resp_a", 8), AR_ENOTFOUND);
    assert_int_equal(ar_store_response_delete(s, "resp_m", 7), AR_ENOTFOUND);
    /* the refused deletes removed nothing */
    assert_string_equal(chain("resp_a", 7, 10), "resp_a");
    assert_string_equal(chain("resp_m", 0, 10), "resp_m");
    assert_int_equal(ar_store_response_delete(s, "resp_a", 7), 0);
    assert_int_equal(ar_store_response_delete(s, "resp_a", 7), AR_ENOTFOUND);
    assert_int_equal(ar_store_response_get(s, "resp_a", 7, &r), AR_ENOTFOUND);
    assert_int_equal(ar_store_response_get(s, "resp_m", 0, &r), 0);
    ar_stored_response_dispose(&r);

    /* a chain that reaches another owner's response ends before it */
    put("resp_b", 8, "resp_m", 2000);
    assert_string_equal(chain("resp_b", 8, 10), "resp_b");
}

static void test_chain(void **state)
{
    (void)state;
    put("r1", 7, NULL, 1000);
    put("r2", 7, "r1", 2000);
    put("r3", 7, "r2", 3000);
    put("r4", 7, "r3", 4000);
    put("r3b", 7, "r2", 3500); /* a branch: r2 answered twice */
    assert_string_equal(chain("r4", 7, 10), "r1 r2 r3 r4");
    assert_string_equal(chain("r4", 7, 4), "r1 r2 r3 r4");
    assert_string_equal(chain("r4", 7, 3), "AR_ETOOBIG");
    assert_string_equal(chain("r4", 7, 0), "AR_ETOOBIG");
    assert_string_equal(chain("r3b", 7, 10), "r1 r2 r3b");
    assert_string_equal(chain("r1", 7, 1), "r1");
    assert_string_equal(chain("r2", 7, SIZE_MAX), "r1 r2");

    /* the records come whole */
    ar_stored_response_list_t l;
    assert_int_equal(ar_store_response_chain(s, "r2", 7, 5, &l), 0);
    assert_int_equal(l.cnt, 2);
    assert_null(l.items[0].previous_id);
    assert_string_equal(l.items[1].previous_id, "r1");
    assert_int_equal(l.items[1].owner, 7);
    assert_int_equal(l.items[1].created_ms, 2000);
    assert_string_equal(l.items[1].model, "gpt-4o");
    assert_string_equal(l.items[1].input, INPUT);
    assert_string_equal(l.items[1].output, OUTPUT);
    ar_stored_response_list_free(&l);
    assert_int_equal(l.cnt, 0);

    /* a previous that never existed ends the chain like a deleted one */
    put("o2", 7, "o1", 5000);
    assert_string_equal(chain("o2", 7, 10), "o2");
    /* a cycle (each put before the other existed) is never endless */
    put("c1", 7, "c2", 6000);
    put("c2", 7, "c1", 6001);
    assert_string_equal(chain("c1", 7, 50), "AR_ETOOBIG");
    assert_string_equal(chain("c2", 7, SIZE_MAX), "AR_ETOOBIG");
}

static void test_chain_deleted_link(void **state)
{
    (void)state;
    put("r1", 7, NULL, 1000);
    put("r2", 7, "r1", 2000);
    put("r3", 7, "r2", 3000);
    assert_int_equal(ar_store_response_delete(s, "r2", 7), 0);
    assert_string_equal(chain("r3", 7, 10), "r3");
    /* r3 keeps its own record, previous_id included; r1 is untouched */
    ar_stored_response_t r;
    assert_int_equal(ar_store_response_get(s, "r3", 7, &r), 0);
    assert_string_equal(r.previous_id, "r2");
    ar_stored_response_dispose(&r);
    assert_string_equal(chain("r1", 7, 10), "r1");
}

static void test_purge(void **state)
{
    (void)state;
    put("r1", 7, NULL, 1000);
    put("r2", 7, "r1", 2000);
    put("r3", 8, NULL, 3000);
    int64_t n = -1;
    assert_int_equal(ar_store_responses_purge(s, 1000, &n), 0);
    assert_int_equal(n, 0); /* strictly before */
    assert_int_equal(ar_store_responses_purge(s, 2500, &n), 0);
    assert_int_equal(n, 2);
    ar_stored_response_t r;
    assert_int_equal(ar_store_response_get(s, "r2", 7, &r), AR_ENOTFOUND);
    assert_int_equal(ar_store_response_get(s, "r3", 8, &r), 0);
    ar_stored_response_dispose(&r);
    assert_int_equal(ar_store_responses_purge(s, INT64_MAX, NULL), 0);
    assert_int_equal(ar_store_response_get(s, "r3", 8, &r), AR_ENOTFOUND);
}

/* A file at schema version 2 (what the airouter before stored responses wrote) is brought
 * to version 3 with its keys kept. It is made by this store and taken back to version 2:
 * the same tables migrations 1 and 2 create. */
static void test_migration_from_v2(void **state)
{
    (void)state;
    if (ar_test_pg_url())
        skip(); /* the v2 database here is a SQLite file */
    /* its own store, not the fixture's: it is closed and reopened here, and cmocka's
     * leak check does not allow freeing in a test what the setup allocated */
    ar_test_store_dir("ar-responses", dir, url);
    assert_int_equal(ar_store_open(url, &s, err, sizeof(err)), 0);
    char key[AR_KEY_LEN + 1];
    assert_int_equal(ar_key_generate(key), 0);
    ar_vkey_t k = ar_vkey_unlimited();
    k.name = "old";
    ar_key_hash(key, k.hash);
    ar_key_mask(key, k.masked);
    int64_t kid = 0;
    assert_int_equal(ar_store_key_create(s, &k, &kid, err, sizeof(err)), 0);
    ar_store_close(s);
    s = NULL;

    char path[160];
    snprintf(path, sizeof(path), "%s/airouter.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE responses; UPDATE schema_version SET version = 2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(ar_store_open(url, &s, err, sizeof(err)), 0);
    assert_int_equal(ar_store_schema_version(s), 3);
    ar_vkey_t got;
    assert_int_equal(ar_store_key_get(s, kid, NULL, &got), 0);
    assert_string_equal(got.name, "old");
    ar_vkey_free(&got);
    put("resp_1", kid, NULL, 0);
    assert_string_equal(chain("resp_1", kid, 5), "resp_1");
    /* the purge index came with the table */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND "
                                        "tbl_name = 'responses' AND sql LIKE '%created_ms%'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    sqlite3_finalize(st);
    sqlite3_close(db);
    ar_store_close(s);
    s = NULL;
    ar_test_rmdir(dir);
}

static char *dump(json_t *doc)
{
    char *t = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(t);
    return t;
}

static void test_backup_restore(void **state)
{
    (void)state;
    put("r1", 0, NULL, 1000);
    put("r2", 0, "r1", 2000);
    put("r3", 5, NULL, 1500);
    json_t *doc = NULL;
    assert_int_equal(ar_store_backup(s, &doc, err, sizeof(err)), 0);
    json_t *rows = json_object_get(doc, "responses");
    assert_int_equal(json_array_size(rows), 3);
    json_t *first = json_array_get(rows, 0); /* oldest first */
    assert_string_equal(json_string_value(json_object_get(first, "id")), "r1");
    assert_true(json_is_null(json_object_get(first, "previous_id")));
    assert_string_equal(json_string_value(json_object_get(first, "input")), INPUT);
    char *text = dump(doc);

    /* a database holding only responses is not empty */
    char dir2[64], url2[200];
    ar_test_store_dir("ar-restore", dir2, url2);
    ar_store_t *main_store = s;
    assert_int_equal(ar_store_open(url2, &s, err, sizeof(err)), 0);
    put("x", 1, NULL, 1);
    assert_int_equal(ar_store_restore(s, doc, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "responses holds 1 row"));
    ar_store_close(s);
    ar_test_rmdir(dir2);

    /* into a fresh one: the same document back, and the chain works there */
    ar_test_store_dir("ar-restore", dir2, url2);
    assert_int_equal(ar_store_open(url2, &s, err, sizeof(err)), 0);
    assert_int_equal(ar_store_restore(s, doc, err, sizeof(err)), 0);
    json_t *doc2 = NULL;
    assert_int_equal(ar_store_backup(s, &doc2, err, sizeof(err)), 0);
    char *text2 = dump(doc2);
    assert_string_equal(text, text2);
    assert_string_equal(chain("r2", 0, 5), "r1 r2");
    assert_string_equal(chain("r3", 0, 5), "AR_ENOTFOUND");
    ar_test_json_free(text2);
    json_decref(doc2);
    ar_store_close(s);
    ar_test_rmdir(dir2);

    /* a bad row: refused with its place named, nothing written */
    ar_test_store_dir("ar-restore", dir2, url2);
    assert_int_equal(ar_store_open(url2, &s, err, sizeof(err)), 0);
    json_t *bad = json_deep_copy(doc);
    json_object_set_new(json_array_get(json_object_get(bad, "responses"), 1), "previous_id",
                        json_integer(4));
    assert_int_equal(ar_store_restore(s, bad, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "responses[1].previous_id is missing or not a string"));
    assert_string_equal(chain("r1", 0, 5), "AR_ENOTFOUND");
    json_decref(bad);
    /* a backup from before stored responses: restored, with none */
    bad = json_deep_copy(doc);
    json_object_del(bad, "responses");
    assert_int_equal(ar_store_restore(s, bad, err, sizeof(err)), 0);
    assert_string_equal(chain("r1", 0, 5), "AR_ENOTFOUND");
    json_decref(bad);
    ar_store_close(s);
    ar_test_rmdir(dir2);

    s = main_store;
    ar_test_json_free(text);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_deleted_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test(test_migration_from_v2),
        cmocka_unit_test_setup_teardown(test_backup_restore, setup, teardown),
    };
    return cmocka_run_group_tests_name("test_responses", tests, NULL, NULL);
}
