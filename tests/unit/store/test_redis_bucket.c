/*
 * test_redis_bucket.c: the shared token buckets (ar_redis_bucket_take) against a real
 * redis-server started by the test on a free port: capacity and refill, all-or-nothing
 * over several buckets, the tightest bucket reported, exactness under concurrent takes,
 * keys that vanish once a bucket is full again, and a server that is gone.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include <cmocka.h>

#include "redis_server.h"
#include "store/redis.h"
#include "testutil.h"

/* ---- takes ---- */

typedef struct verdict {
    bool done;
    int rc;
    ar_redis_bucket_verdict_t v;
} verdict_t;

static void on_verdict(void *ud, int rc, const ar_redis_bucket_verdict_t *v)
{
    verdict_t *out = ud;
    assert_false(out->done); /* exactly once */
    out->done = true;
    out->rc = rc;
    if (rc == 0) {
        assert_non_null(v);
        out->v = *v;
    } else {
        assert_null(v);
    }
}

/* One take, waited for. */
static verdict_t take(fixture_t *f, const ar_redis_bucket_t *b, size_t n)
{
    verdict_t v = {0};
    assert_int_equal(ar_redis_bucket_take(f->c, b, n, on_verdict, &v), 0);
    assert_false(v.done); /* never inside the call */
    assert_true(run_until(f, &v.done, 2000));
    return v;
}

static long long pttl(const char *key)
{
    redisContext *rc = sync_client();
    assert_non_null(rc);
    redisReply *r = redisCommand(rc, "PTTL %s", key);
    assert_non_null(r);
    long long n = r->integer;
    freeReplyObject(r);
    redisFree(rc);
    return n;
}

/* 3 tokens, one back every minute: three takes, then a refusal that says a minute. */
static void test_capacity(void **state)
{
    fixture_t *f = *state;
    ar_redis_bucket_t b = {"airouter:rl:client:aa", 3, 60000000};
    for (int i = 0; i < 3; i++) {
        verdict_t v = take(f, &b, 1);
        assert_int_equal(v.rc, 0);
        assert_true(v.v.allowed);
        assert_int_equal(v.v.which, 0);
        assert_int_equal(v.v.remaining, 2 - i);
        assert_true(v.v.full_ms > (i + 1) * 60000 - 1000 && v.v.full_ms <= (i + 1) * 60000);
    }
    verdict_t v = take(f, &b, 1);
    assert_int_equal(v.rc, 0);
    assert_false(v.v.allowed);
    assert_int_equal(v.v.which, 0);
    assert_int_equal(v.v.remaining, 0);
    assert_true(v.v.retry_ms > 59000 && v.v.retry_ms <= 60000);
    assert_true(v.v.full_ms > 179000 && v.v.full_ms <= 180000);
    /* the key lives until the bucket is full again, no longer */
    long long ttl = pttl(b.key);
    assert_true(ttl > 179000 && ttl <= 180000);
    ar_redis_stats_t st;
    ar_redis_stats(f->r, &st);
    assert_int_equal(st.checks, 4);
    assert_int_equal(st.denied, 1);
}

/* A refill of one token every 100 ms: the refusal's retry_ms is when one is back. */
static void test_refill(void **state)
{
    fixture_t *f = *state;
    ar_redis_bucket_t b = {"airouter:rl:global", 2, 100000};
    assert_true(take(f, &b, 1).v.allowed);
    assert_true(take(f, &b, 1).v.allowed);
    verdict_t v = take(f, &b, 1);
    assert_false(v.v.allowed);
    assert_true(v.v.retry_ms >= 1 && v.v.retry_ms <= 100);
    usleep((useconds_t)(v.v.retry_ms + 5) * 1000);
    assert_true(take(f, &b, 1).v.allowed);
    /* once full again the key is gone: an idle bucket costs nothing */
    usleep(250 * 1000);
    assert_int_equal(pttl(b.key), -2);
}

/* A bucket without a token refuses for all: nothing is charged to the others. The
 * refusal names the first full bucket; an admission the tightest. */
static void test_all_or_nothing(void **state)
{
    fixture_t *f = *state;
    ar_redis_bucket_t b[3] = {{"airouter:rl:global", 10, 60000000},
                              {"airouter:rl:client:c1", 1, 60000000},
                              {"airouter:rl:model:m1", 5, 60000000}};
    verdict_t v = take(f, b, 3);
    assert_true(v.v.allowed);
    assert_int_equal(v.v.which, 1); /* 0 tokens left there */
    assert_int_equal(v.v.remaining, 0);
    v = take(f, b, 3);
    assert_false(v.v.allowed);
    assert_int_equal(v.v.which, 1);
    /* the refusal charged neither the global nor the model bucket: 9 and 4 are left */
    b[1].key = "airouter:rl:client:c2";
    b[1].capacity = 100;
    v = take(f, b, 3);
    assert_true(v.v.allowed);
    assert_int_equal(v.v.which, 2);
    assert_int_equal(v.v.remaining, 3);
    /* equal tokens left: the bucket longer from full is the tighter */
    ar_redis_bucket_t two[2] = {{"airouter:rl:model:m2", 5, 1000000},
                                {"airouter:rl:model:m3", 5, 60000000}};
    v = take(f, two, 2);
    assert_true(v.v.allowed);
    assert_int_equal(v.v.which, 1);
    assert_int_equal(v.v.remaining, 4);
}

/* Concurrent takes from one connection: exactly the capacity gets through. */
static void test_concurrent_exact(void **state)
{
    fixture_t *f = *state;
    ar_redis_bucket_t b[2] = {{"airouter:rl:global", 7, 60000000},
                              {"airouter:rl:client:x", 100, 60000000}};
    verdict_t v[30] = {0};
    for (int i = 0; i < 30; i++)
        assert_int_equal(ar_redis_bucket_take(f->c, b, 2, on_verdict, &v[i]), 0);
    assert_true(run_until(f, &v[29].done, 2000));
    int allowed = 0;
    for (int i = 0; i < 30; i++) {
        assert_true(v[i].done);
        assert_int_equal(v[i].rc, 0);
        allowed += v[i].v.allowed;
    }
    assert_int_equal(allowed, 7);
    /* the client bucket was charged only for the admitted ones */
    ar_redis_bucket_t c = {"airouter:rl:client:x", 100, 60000000};
    assert_int_equal(take(f, &c, 1).v.remaining, 100 - 7 - 1);
}

static void test_bad_input(void **state)
{
    fixture_t *f = *state;
    verdict_t v = {0};
    ar_redis_bucket_t b[5] = {{"a", 1, 1}, {"b", 1, 1}, {"c", 1, 1}, {"d", 1, 1}, {"e", 1, 1}};
    assert_int_equal(ar_redis_bucket_take(f->c, b, 0, on_verdict, &v), AR_EINVAL);
    assert_int_equal(ar_redis_bucket_take(f->c, b, 5, on_verdict, &v), AR_EINVAL);
    ar_redis_bucket_t zero = {"z", 0, 1000};
    assert_int_equal(ar_redis_bucket_take(f->c, &zero, 1, on_verdict, &v), AR_EINVAL);
    ar_redis_bucket_t noint = {"z", 1, 0};
    assert_int_equal(ar_redis_bucket_take(f->c, &noint, 1, on_verdict, &v), AR_EINVAL);
    /* a key that is not a bucket (another program's) is no answer, never a crash */
    redisContext *rc = sync_client();
    freeReplyObject(redisCommand(rc, "LPUSH airouter:rl:client:list x"));
    freeReplyObject(redisCommand(rc, "SET airouter:rl:client:text hello"));
    redisFree(rc);
    ar_redis_bucket_t list = {"airouter:rl:client:list", 1, 1000};
    assert_int_equal(take(f, &list, 1).rc, AR_EUNAVAIL);
    ar_redis_bucket_t text = {"airouter:rl:client:text", 1, 1000};
    assert_true(take(f, &text, 1).v.allowed);
    assert_false(take(f, &text, 1).v.allowed);
    assert_false(v.done);
}

/* The script is loaded with the others; a flushed cache is sent again whole. */
static void test_noscript(void **state)
{
    fixture_t *f = *state;
    redisContext *rc = sync_client();
    freeReplyObject(redisCommand(rc, "SCRIPT FLUSH"));
    redisFree(rc);
    ar_redis_bucket_t b = {"airouter:rl:model:n", 1, 60000000};
    verdict_t v = take(f, &b, 1);
    assert_int_equal(v.rc, 0);
    assert_true(v.v.allowed);
    assert_false(take(f, &b, 1).v.allowed);
}

/* Gone: a take in flight gets its answer or AR_EUNAVAIL, once; none can be sent until the
 * connection is back. */
static void test_gone(void **state)
{
    fixture_t *f = *state;
    ar_redis_bucket_t b = {"airouter:rl:global", 5, 60000000};
    verdict_t v = {0};
    assert_int_equal(ar_redis_bucket_take(f->c, &b, 1, on_verdict, &v), 0);
    stop_server();
    assert_true(run_until(f, &v.done, 2000));
    assert_true(run_until_ready(f, false, 2000));
    verdict_t v2 = {0};
    assert_int_equal(ar_redis_bucket_take(f->c, &b, 1, on_verdict, &v2), AR_EUNAVAIL);
    start_server();
    assert_true(run_until_ready(f, true, 5000));
    assert_true(take(f, &b, 1).v.allowed);
    assert_false(v2.done);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noscript, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
