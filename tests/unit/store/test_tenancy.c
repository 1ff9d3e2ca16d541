/*
 * test_tenancy.c: connections, provider models and assignments on a real SQLite file: the
 * secret sealed and opened, refused without or with a wrong storage.secret_key, its
 * plaintext never in the database files; removal refused while assigned unless forced;
 * backup -> restore into a fresh database gives the same document; restore into a
 * non-empty database is refused and writes nothing.
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

#define SECRET "sk-upstream-PLAINTEXT-0123456789"
#define SKEY "correct horse battery staple"

static int setup(void **state)
{
    (void)state;
    ar_test_store_dir("ar-tenancy", dir, url);
    if (ar_store_open(url, &s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ar_store_close(s);
    ar_test_rmdir(dir);
    return 0;
}

static bool file_has(const char *suffix, const char *needle)
{
    char p[200];
    snprintf(p, sizeof(p), "%s/airouter.db%s", dir, suffix);
    FILE *f = fopen(p, "rb");
    if (!f)
        return false;
    char *buf = malloc(1 << 22);
    size_t n = fread(buf, 1, 1 << 22, f);
    fclose(f);
    bool hit = memmem(buf, n, needle, strlen(needle)) != NULL;
    free(buf);
    return hit;
}

static int64_t add_key(void)
{
    char key[AR_KEY_LEN + 1];
    assert_int_equal(ar_key_generate(key), 0);
    ar_vkey_t k = {.name = "team", .rpm = -1, .tpm = -1};
    ar_key_hash(key, k.hash);
    ar_key_mask(key, k.masked);
    int64_t id = 0;
    assert_int_equal(ar_store_key_create(s, &k, &id, err, sizeof(err)), 0);
    return id;
}

static int64_t add_conn(const char *name)
{
    ar_conn_t c = {.name = (char *)name, .provider = "openai", .endpoint = "https://api.x"};
    int64_t id = 0;
    if (ar_store_conn_create(s, &c, SECRET, SKEY, &id, err, sizeof(err)) != 0)
        fail_msg("conn create: %s", err);
    return id;
}

static void test_secret(void **state)
{
    (void)state;
    ar_buf_t b;
    ar_buf_init(&b, 4096);
    assert_int_equal(ar_secret_seal(NULL, "c", "x", &b, err, sizeof(err)), AR_EINVAL);
    assert_string_equal(err, "storage.secret_key is required to store provider secrets");
    assert_int_equal(ar_secret_seal("", "c", "x", &b, err, sizeof(err)), AR_EINVAL);
    assert_int_equal(ar_secret_seal(SKEY, "c", SECRET, &b, err, sizeof(err)), 0);
    char *plain = NULL;
    assert_int_equal(
        ar_secret_open(SKEY, "c", (unsigned char *)b.ptr, b.len, &plain, err, sizeof(err)), 0);
    assert_string_equal(plain, SECRET);
    ar_secret_free(plain);
    assert_int_equal(
        ar_secret_open("wrong", "c", (unsigned char *)b.ptr, b.len, &plain, err, sizeof(err)),
        AR_EINVAL);
    assert_null(plain);
    assert_non_null(strstr(err, "cannot decrypt"));
    /* a blob moved onto another connection does not open */
    assert_int_equal(
        ar_secret_open(SKEY, "d", (unsigned char *)b.ptr, b.len, &plain, err, sizeof(err)),
        AR_EINVAL);
    ar_buf_dispose(&b);
}

static void test_connections(void **state)
{
    (void)state;
    ar_conn_t c = {.name = "oa", .provider = "openai", .endpoint = "https://api.x"};
    int64_t id = 0;
    assert_int_equal(ar_store_conn_create(s, &c, SECRET, NULL, &id, err, sizeof(err)), AR_EINVAL);
    assert_string_equal(err, "storage.secret_key is required to store provider secrets");
    id = add_conn("oa");
    assert_int_equal(ar_store_conn_create(s, &c, SECRET, SKEY, &id, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "'oa' exists already"));

    ar_conn_list_t l;
    assert_int_equal(ar_store_conn_list(s, &l), 0);
    assert_int_equal(l.cnt, 1);
    assert_string_equal(l.items[0].name, "oa");
    assert_string_equal(l.items[0].provider, "openai");
    assert_string_equal(l.items[0].endpoint, "https://api.x");
    assert_int_equal(l.items[0].secret_len, strlen(SECRET) + 28);
    assert_null(memmem(l.items[0].secret, l.items[0].secret_len, SECRET, strlen(SECRET)));
    ar_store_conn_list_free(&l);

    char *plain = NULL;
    assert_int_equal(ar_store_conn_secret(s, id, SKEY, &plain, err, sizeof(err)), 0);
    assert_string_equal(plain, SECRET);
    ar_secret_free(plain);
    assert_int_equal(ar_store_conn_secret(s, id, "other key", &plain, err, sizeof(err)), AR_EINVAL);
    assert_null(plain);
    assert_non_null(strstr(err, "cannot decrypt"));
    assert_null(strstr(err, SECRET));
    assert_int_equal(ar_store_conn_secret(s, id, NULL, &plain, err, sizeof(err)), AR_EINVAL);
    assert_int_equal(ar_store_conn_secret(s, 999, SKEY, &plain, err, sizeof(err)), AR_ENOTFOUND);

    /* the database and its WAL, as written (a checkpoint only copies WAL pages) */
    assert_false(file_has("", SECRET));
    assert_false(file_has("-wal", SECRET));
    assert_false(file_has("", "PLAINTEXT"));
    assert_false(file_has("-wal", "PLAINTEXT"));
}

static void test_models_and_assignments(void **state)
{
    (void)state;
    int64_t key = add_key(), conn = add_conn("az"), other = add_conn("oa");
    ar_pmodel_t m = {.conn_id = conn, .name = "gpt", .remote = "gpt-4o", .deployment = "prod"};
    int64_t mid = 0, mid2 = 0, aid = 0, aid2 = 0;
    assert_int_equal(ar_store_model_create(s, &m, &mid, err, sizeof(err)), 0);
    assert_int_equal(ar_store_model_create(s, &m, &mid2, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "has a model named 'gpt' already"));
    m.conn_id = 999;
    assert_int_equal(ar_store_model_create(s, &m, &mid2, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "no connection with id 999"));
    ar_pmodel_t m2 = {.conn_id = other, .name = "gpt", .remote = "gpt-4o-mini"};
    assert_int_equal(ar_store_model_create(s, &m2, &mid2, err, sizeof(err)), 0);
    ar_pmodel_list_t ml;
    assert_int_equal(ar_store_model_list(s, conn, &ml), 0);
    assert_int_equal(ml.cnt, 1);
    assert_string_equal(ml.items[0].deployment, "prod");
    ar_store_model_list_free(&ml);
    assert_int_equal(ar_store_model_list(s, 0, &ml), 0);
    assert_int_equal(ml.cnt, 2);
    assert_string_equal(ml.items[1].deployment, "");
    ar_store_model_list_free(&ml);

    ar_assign_t a = {.key_id = key, .model_id = mid, .alias = "fast", .tps = 5};
    assert_int_equal(ar_store_assign_create(s, &a, &aid, err, sizeof(err)), 0);
    assert_int_equal(ar_store_assign_create(s, &a, &aid2, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "aliased 'fast' already"));
    a.key_id = 999;
    assert_int_equal(ar_store_assign_create(s, &a, &aid2, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "no key with id 999"));
    ar_assign_t b = {.key_id = key, .model_id = 999, .alias = "x", .tps = -1};
    assert_int_equal(ar_store_assign_create(s, &b, &aid2, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "no model with id 999"));
    b.model_id = mid2;
    assert_int_equal(ar_store_assign_create(s, &b, &aid2, err, sizeof(err)), 0);
    ar_assign_list_t al;
    assert_int_equal(ar_store_assign_list(s, key, &al), 0);
    assert_int_equal(al.cnt, 2);
    assert_string_equal(al.items[0].alias, "fast");
    assert_true(al.items[0].tps == 5);
    assert_true(al.items[1].tps == -1);
    ar_store_assign_list_free(&al);

    /* removal: refused while assigned, then forced; an unassigned one goes with its models */
    assert_int_equal(ar_store_conn_remove(s, conn, false, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "assigned"));
    assert_int_equal(ar_store_assign_remove(s, aid2), 0);
    assert_int_equal(ar_store_assign_remove(s, aid2), AR_ENOTFOUND);
    assert_int_equal(ar_store_conn_remove(s, other, false, err, sizeof(err)), 0);
    assert_int_equal(ar_store_conn_remove(s, conn, true, err, sizeof(err)), 0);
    assert_int_equal(ar_store_conn_remove(s, conn, true, err, sizeof(err)), AR_ENOTFOUND);
    assert_int_equal(ar_store_model_list(s, 0, &ml), 0);
    assert_int_equal(ml.cnt, 0);
    ar_store_model_list_free(&ml);
    assert_int_equal(ar_store_assign_list(s, 0, &al), 0);
    assert_int_equal(al.cnt, 0);
    ar_store_assign_list_free(&al);
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
    ar_plan_t p = {.name = "pro", .description = "d", .max_tokens = 5};
    int64_t pid = 0, mid = 0, aid = 0;
    assert_int_equal(ar_store_plan_create(s, &p, &pid, err, sizeof(err)), 0);
    int64_t key = add_key(), key2 = add_key(), conn = add_conn("oa");
    assert_int_equal(ar_store_key_revoke(s, key2), 0);
    ar_pmodel_t m = {.conn_id = conn, .name = "gpt", .remote = "gpt-4o"};
    assert_int_equal(ar_store_model_create(s, &m, &mid, err, sizeof(err)), 0);
    ar_assign_t a = {.key_id = key, .model_id = mid, .alias = "fast", .tps = 2.5};
    assert_int_equal(ar_store_assign_create(s, &a, &aid, err, sizeof(err)), 0);
    ar_spend_t r = {.id = "s1",
                    .ts_ms = 1711929600000LL,
                    .key_id = key,
                    .model = "gpt",
                    .prompt_tokens = 10,
                    .completion_tokens = 3,
                    .cost_usd = 0.125};
    assert_int_equal(ar_store_spend_apply(s, &r, 1, NULL, err, sizeof(err)), 0);

    json_t *doc = NULL;
    assert_int_equal(ar_store_backup(s, &doc, err, sizeof(err)), 0);
    char *text = dump(doc);
    assert_null(strstr(text, SECRET));
    assert_non_null(strstr(text, "\"usage_daily\":[{"));

    /* into this (non-empty) database: refused, nothing written */
    int64_t seq0 = 0, seq1 = 0;
    assert_int_equal(ar_store_change_seq(s, &seq0), 0);
    assert_int_equal(ar_store_restore(s, doc, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "not empty"));
    assert_int_equal(ar_store_change_seq(s, &seq1), 0);
    assert_int_equal(seq0, seq1);

    /* into a fresh one: the same document comes back, the secret still opens */
    char dir2[64], url2[200];
    ar_test_store_dir("ar-restore", dir2, url2);
    ar_store_t *s2 = NULL;
    assert_int_equal(ar_store_open(url2, &s2, err, sizeof(err)), 0);
    assert_int_equal(ar_store_restore(s2, doc, err, sizeof(err)), 0);
    json_t *doc2 = NULL;
    assert_int_equal(ar_store_backup(s2, &doc2, err, sizeof(err)), 0);
    char *text2 = dump(doc2);
    assert_string_equal(text, text2);
    char *plain = NULL;
    assert_int_equal(ar_store_conn_secret(s2, conn, SKEY, &plain, err, sizeof(err)), 0);
    assert_string_equal(plain, SECRET);
    ar_secret_free(plain);
    ar_usage_totals_t t;
    assert_int_equal(ar_store_usage(s2, key, 0, NULL, NULL, &t), 0);
    assert_int_equal(t.prompt_tokens, 10);
    ar_test_json_free(text2);
    json_decref(doc2);
    ar_store_close(s2);
    ar_test_rmdir(dir2);

    /* a bad document: refused with a message, and the fresh database stays empty */
    ar_test_store_dir("ar-restore", dir2, url2);
    assert_int_equal(ar_store_open(url2, &s2, err, sizeof(err)), 0);
    json_t *bad = json_deep_copy(doc);
    json_object_set_new(json_array_get(json_object_get(bad, "assignments"), 0), "alias",
                        json_integer(3));
    assert_int_equal(ar_store_restore(s2, bad, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "assignments[0].alias"));
    ar_vkey_list_t kl;
    assert_int_equal(ar_store_key_list(s2, &kl), 0);
    assert_int_equal(kl.cnt, 0);
    ar_store_key_list_free(&kl);
    json_decref(bad);
    bad = json_pack("{ss}", "format", "something else");
    assert_int_equal(ar_store_restore(s2, bad, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "not an airouter backup"));
    json_decref(bad);
    ar_store_close(s2);
    ar_test_rmdir(dir2);

    ar_test_json_free(text);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret),
        cmocka_unit_test_setup_teardown(test_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_models_and_assignments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_restore, setup, teardown),
    };
    return cmocka_run_group_tests_name("test_tenancy", tests, NULL, NULL);
}
