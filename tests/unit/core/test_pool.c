/*
 * test_pool.c: unit tests of core/pool.c: 16-byte alignment, big allocations in blocks of
 * their own, cleanups run newest first (on reset and on destroy, before the memory goes),
 * reset reusing the first block, and the string helpers. The checked allocator makes any
 * block the pool forgets to free fail the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/pool.h"

static void test_alignment(void **state)
{
    (void)state;
    ar_pool_t *p = ar_pool_create(1024);
    static const size_t sizes[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 255, 257, 300, 5000, 0};
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            char *q = ar_pool_alloc(p, sizes[i]);
            assert_non_null(q);
            assert_int_equal((uintptr_t)q % 16, 0);
            memset(q, 0xab, sizes[i]); /* all of it is usable (ASan checks the bounds) */
        }
    }
    ar_pool_destroy(p);
}

static void test_bump_and_used(void **state)
{
    (void)state;
    ar_pool_t *p = ar_pool_create(4096);
    assert_int_equal(ar_pool_used(p), 0);
    char *a = ar_pool_alloc(p, 10);
    char *b = ar_pool_alloc(p, 20);
    assert_ptr_equal(b, a + 16); /* consecutive, rounded up to 16 */
    assert_int_equal(ar_pool_used(p), 16 + 32);
    char *z = ar_pool_calloc(p, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(z[i], 0);
    ar_pool_destroy(p);
}

static void test_big_allocations(void **state)
{
    (void)state;
    ar_pool_t *p = ar_pool_create(1024);
    char *a = ar_pool_alloc(p, 32);
    /* bigger than a quarter block: its own block, the current block keeps its space */
    char *big = ar_pool_alloc(p, 100000);
    memset(big, 1, 100000);
    char *c = ar_pool_alloc(p, 32);
    assert_ptr_equal(c, a + 32);
    char *big2 = ar_pool_alloc(p, 5000);
    memset(big2, 2, 5000);
    assert_int_equal((uintptr_t)big % 16, 0);
    assert_int_equal((uintptr_t)big2 % 16, 0);
    /* many medium allocations spill into new blocks; earlier memory stays intact */
    char *ptrs[200];
    for (int i = 0; i < 200; i++) {
        ptrs[i] = ar_pool_alloc(p, 200);
        memset(ptrs[i], i, 200);
    }
    for (int i = 0; i < 200; i++) {
        assert_int_equal((unsigned char)ptrs[i][0], i);
        assert_int_equal((unsigned char)ptrs[i][199], i);
    }
    assert_int_equal(big[99999], 1);
    assert_int_equal(big2[4999], 2);
    assert_true(ar_pool_used(p) >= 100000 + 5000 + 200 * 200);
    ar_pool_destroy(p); /* every block freed: the checked allocator reports leaks */
}

typedef struct order {
    int seen[16];
    int cnt;
} order_t;

typedef struct cl_arg {
    order_t *order;
    int id;
    char *pool_mem; /* pool memory the cleanup reads: it must still be there */
} cl_arg_t;

static void cl(void *arg)
{
    cl_arg_t *a = arg;
    assert_int_equal(a->pool_mem[0], 'A' + a->id);
    a->order->seen[a->order->cnt++] = a->id;
}

static cl_arg_t *add(ar_pool_t *p, order_t *o, int id)
{
    cl_arg_t *a = ar_pool_alloc(p, sizeof(*a));
    a->order = o;
    a->id = id;
    a->pool_mem = ar_pool_alloc(p, 2000); /* a big block, freed after the cleanups */
    a->pool_mem[0] = (char)('A' + id);
    ar_pool_cleanup_add(p, cl, a);
    return a;
}

static void test_cleanups_newest_first_on_destroy(void **state)
{
    (void)state;
    order_t o = {0};
    ar_pool_t *p = ar_pool_create(1024);
    for (int i = 0; i < 5; i++)
        add(p, &o, i);
    assert_int_equal(o.cnt, 0);
    ar_pool_destroy(p);
    assert_int_equal(o.cnt, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(o.seen[i], 4 - i);
}

static void test_cleanups_on_reset_and_reuse(void **state)
{
    (void)state;
    order_t o = {0};
    ar_pool_t *p = ar_pool_create(1024);
    char *first = ar_pool_alloc(p, 8);
    for (int i = 0; i < 3; i++)
        add(p, &o, i);
    for (int i = 0; i < 50; i++)
        (void)ar_pool_alloc(p, 100); /* spill into extra blocks */
    ar_pool_reset(p);
    assert_int_equal(o.cnt, 3);
    assert_int_equal(o.seen[0], 2);
    assert_int_equal(o.seen[1], 1);
    assert_int_equal(o.seen[2], 0);
    assert_int_equal(ar_pool_used(p), 0);
    /* as if new: the first allocation gets the first block's start again */
    char *again = ar_pool_alloc(p, 8);
    assert_ptr_equal(again, first);
    /* cleanups ran once: a second reset or the destroy does not repeat them */
    ar_pool_reset(p);
    assert_int_equal(o.cnt, 3);
    add(p, &o, 7);
    ar_pool_destroy(p);
    assert_int_equal(o.cnt, 4);
    assert_int_equal(o.seen[3], 7);
}

typedef struct nested {
    ar_pool_t *pool;
    order_t *order;
} nested_t;

static void cl_late(void *arg)
{
    order_t *o = arg;
    o->seen[o->cnt++] = 100;
}

static void cl_adds(void *arg)
{
    nested_t *n = arg;
    n->order->seen[n->order->cnt++] = 50;
    /* a cleanup may allocate and register more cleanups; they run too */
    char *m = ar_pool_alloc(n->pool, 64);
    memset(m, 0, 64);
    ar_pool_cleanup_add(n->pool, cl_late, n->order);
}

static void test_cleanup_adding_cleanup(void **state)
{
    (void)state;
    order_t o = {0};
    ar_pool_t *p = ar_pool_create(1024);
    nested_t *n = ar_pool_alloc(p, sizeof(*n));
    n->pool = p;
    n->order = &o;
    ar_pool_cleanup_add(p, cl_adds, n);
    ar_pool_destroy(p);
    assert_int_equal(o.cnt, 2);
    assert_int_equal(o.seen[0], 50);
    assert_int_equal(o.seen[1], 100);
}

static void test_strings(void **state)
{
    (void)state;
    ar_pool_t *p = ar_pool_create(1024);
    char *s = ar_pool_strndup(p, "hello world", 5);
    assert_string_equal(s, "hello");
    char *e = ar_pool_strndup(p, NULL, 0);
    assert_string_equal(e, "");
    char *d = ar_pool_strdup_span(p, AR_LIT("span"));
    assert_string_equal(d, "span");
    char *f = ar_pool_printf(p, "%s-%d", "x", 42);
    assert_string_equal(f, "x-42");
    char big[600];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *g = ar_pool_printf(p, "<%s>", big);
    assert_int_equal(strlen(g), 601);
    assert_int_equal(g[0], '<');
    assert_int_equal(g[600], '>');
    ar_pool_destroy(p);
    ar_pool_destroy(NULL); /* ignored */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_bump_and_used),
        cmocka_unit_test(test_big_allocations),
        cmocka_unit_test(test_cleanups_newest_first_on_destroy),
        cmocka_unit_test(test_cleanups_on_reset_and_reuse),
        cmocka_unit_test(test_cleanup_adding_cleanup),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
