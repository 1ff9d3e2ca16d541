/*
 * test_keycache.c: the server's key cache: keys found by hash after a put and not before,
 * a refresh swaps the settings but keeps the live state, a rotated key (new hash, same id)
 * shares its counters, unknown keys are remembered until their time and forgotten when the
 * key appears, model lists and plan limits, and lookups racing with growth.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tenant/keycache.h"

static ar_vkey_t vkey(int64_t id, const char *key, const char *models)
{
    ar_vkey_t k = ar_vkey_unlimited();
    k.id = id;
    k.name = "team";
    k.models = (char *)models;
    ar_key_hash(key, k.hash);
    ar_key_mask(key, k.masked);
    return k;
}

static void test_put_find_refresh(void **state)
{
    (void)state;
    ar_keycache_t *c = ar_keycache_new();
    ar_vkey_t k = vkey(7, "sk-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "");
    assert_null(ar_keycache_find(c, k.hash));
    ar_usage_totals_t usage[3] = {{.requests = 1, .prompt_tokens = 5}, {0}, {0}};
    ar_tkey_t *e = ar_keycache_put(c, &k, NULL, NULL, 0, usage, 1000);
    assert_ptr_equal(ar_keycache_find(c, k.hash), e);
    const ar_tkey_conf_t *conf = atomic_load(&e->conf);
    assert_int_equal(conf->id, 7);
    assert_string_equal(conf->name, "team");
    assert_false(conf->revoked);
    assert_int_equal(e->state->quota.used_day.prompt_tokens, 5);
    /* a refresh: new settings, the same entry and state */
    k.revoked = true;
    k.rpm = 60;
    ar_tkey_t *again = ar_keycache_put(c, &k, NULL, NULL, 0, NULL, 2000);
    assert_ptr_equal(again, e);
    conf = atomic_load(&e->conf);
    assert_true(conf->revoked);
    assert_int_equal(conf->rpm, 60);
    assert_int_equal(e->state->quota.used_day.prompt_tokens, 5);
    /* a rotation: another hash, the same id shares the state */
    ar_vkey_t rot = vkey(7, "sk-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "");
    ar_tkey_t *r = ar_keycache_put(c, &rot, NULL, NULL, 0, NULL, 3000);
    assert_ptr_not_equal(r, e);
    assert_ptr_equal(r->state, e->state);
    ar_keycache_free(c);
}

static void test_unknown(void **state)
{
    (void)state;
    ar_keycache_t *c = ar_keycache_new();
    ar_vkey_t k = vkey(1, "sk-cccccccccccccccccccccccccccccccccccccccccccc", "");
    assert_false(ar_keycache_unknown(c, k.hash, 100));
    ar_keycache_remember_unknown(c, k.hash, 200);
    assert_true(ar_keycache_unknown(c, k.hash, 100));
    assert_false(ar_keycache_unknown(c, k.hash, 200));
    ar_keycache_remember_unknown(c, k.hash, 500);
    ar_keycache_put(c, &k, NULL, NULL, 0, NULL, 150); /* created since: no longer unknown */
    assert_false(ar_keycache_unknown(c, k.hash, 160));
    ar_keycache_free(c);
}

static void test_models_and_plan(void **state)
{
    (void)state;
    ar_keycache_t *c = ar_keycache_new();
    ar_vkey_t k = vkey(2, "sk-dddddddddddddddddddddddddddddddddddddddddddd", "gpt-4o, claude ,");
    k.limit_tokens = 5000;
    ar_plan_t plan = {.id = 1, .name = "basic", .description = "small", .max_tokens = 1000};
    ar_tkey_t *e = ar_keycache_put(c, &k, &plan, NULL, 0, NULL, 0);
    const ar_tkey_conf_t *conf = atomic_load(&e->conf);
    assert_int_equal(conf->models_cnt, 2);
    assert_true(ar_tkey_allows(conf, "gpt-4o", 6));
    assert_true(ar_tkey_allows(conf, "claude", 6));
    assert_false(ar_tkey_allows(conf, "gpt-4", 5));
    assert_string_equal(conf->plan_name, "basic");
    assert_int_equal(ar_tkey_limits(conf).total_tokens, 1000); /* the tighter of the two */
    ar_vkey_t all = vkey(3, "sk-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "");
    conf = atomic_load(&ar_keycache_put(c, &all, NULL, NULL, 0, NULL, 0)->conf);
    assert_true(ar_tkey_allows(conf, "anything", 8));
    assert_int_equal(ar_tkey_limits(conf).total_tokens, -1);
    ar_keycache_free(c);
}

static void test_aliases_and_tps(void **state)
{
    (void)state;
    ar_keycache_t *c = ar_keycache_new();
    ar_vkey_t k = vkey(4, "sk-ffffffffffffffffffffffffffffffffffffffffffff", "gpt-4o");
    ar_tkey_alias_t in[] = {
        {.assign_id = 10, .alias = "fast", .target = "store:oa/mini", .tps = 2},
        {.assign_id = 11, .alias = "free", .target = "store:oa/big", .tps = -1},
    };
    ar_tkey_t *e = ar_keycache_put(c, &k, NULL, in, 2, NULL, 0);
    const ar_tkey_conf_t *conf = atomic_load(&e->conf);
    assert_int_equal(conf->aliases_cnt, 2);
    const ar_tkey_alias_t *a = ar_tkey_alias(conf, "fast", 4);
    assert_non_null(a);
    assert_string_equal(a->target, "store:oa/mini");
    assert_ptr_not_equal(a->target, in[0].target);
    assert_null(ar_tkey_alias(conf, "fas", 3));
    /* the allow-list accepts the key's aliases besides its own models */
    assert_true(ar_tkey_allows(conf, "fast", 4));
    assert_true(ar_tkey_allows(conf, "gpt-4o", 6));
    assert_false(ar_tkey_allows(conf, "store:oa/mini", 13));

    /* 2 per second, then refused until the second has passed */
    int64_t retry = 0;
    assert_true(ar_tkey_alias_admit(a, 100000, &retry));
    assert_true(ar_tkey_alias_admit(a, 100010, &retry));
    assert_false(ar_tkey_alias_admit(a, 100020, &retry));
    assert_true(retry > 0 && retry <= 1000);
    assert_true(ar_tkey_alias_admit(a, 101100, &retry));
    /* no limit */
    const ar_tkey_alias_t *f = ar_tkey_alias(conf, "free", 4);
    for (int i = 0; i < 100; i++)
        assert_true(ar_tkey_alias_admit(f, 100000, &retry));

    /* a refresh keeps the counter of the same assignment */
    e = ar_keycache_put(c, &k, NULL, in, 2, NULL, 0);
    const ar_tkey_conf_t *conf2 = atomic_load(&e->conf);
    assert_ptr_not_equal(conf2, conf);
    const ar_tkey_alias_t *a2 = ar_tkey_alias(conf2, "fast", 4);
    assert_ptr_equal(a2->window, a->window);
    assert_true(ar_tkey_alias_admit(a2, 101110, &retry));
    assert_false(ar_tkey_alias_admit(a2, 101120, &retry));
    /* a refresh without the assignment drops the alias */
    e = ar_keycache_put(c, &k, NULL, NULL, 0, NULL, 0);
    assert_null(ar_tkey_alias(atomic_load(&e->conf), "fast", 4));
    assert_false(ar_tkey_allows(atomic_load(&e->conf), "fast", 4));
    ar_keycache_free(c);
}

/* ---- readers race with a writer that grows the table ---- */

enum { KEYS = 2000 };
static char hashes[KEYS][AR_KEY_HASH_LEN + 1];
static _Atomic int published;

static void *reader(void *arg)
{
    ar_keycache_t *c = arg;
    int misses = 0;
    for (int round = 0; round < 20; round++) {
        int n = atomic_load(&published);
        for (int i = 0; i < n; i++)
            misses += ar_keycache_find(c, hashes[i]) == NULL;
    }
    return (void *)(intptr_t)misses;
}

static void test_concurrent_growth(void **state)
{
    (void)state;
    ar_keycache_t *c = ar_keycache_new();
    ar_vkey_t ks[KEYS];
    for (int i = 0; i < KEYS; i++) {
        char key[64];
        snprintf(key, sizeof(key), "sk-%044d", i);
        ks[i] = vkey(i + 1, key, "");
        memcpy(hashes[i], ks[i].hash, sizeof(hashes[i]));
    }
    atomic_store(&published, 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader, c), 0);
    for (int i = 0; i < KEYS; i++) {
        ar_keycache_put(c, &ks[i], NULL, NULL, 0, NULL, 0);
        atomic_store(&published, i + 1);
    }
    for (int i = 0; i < 3; i++) {
        void *misses;
        pthread_join(th[i], &misses);
        assert_int_equal((intptr_t)misses, 0); /* a published key is always found */
    }
    for (int i = 0; i < KEYS; i++)
        assert_int_equal(atomic_load(&ar_keycache_find(c, hashes[i])->conf)->id, i + 1);
    ar_keycache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_find_refresh),  cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_models_and_plan),   cmocka_unit_test(test_aliases_and_tps),
        cmocka_unit_test(test_concurrent_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
