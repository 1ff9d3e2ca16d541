/*
 * test_redis.c: the shared-window client against a real redis-server, started by the test
 * on 127.0.0.1 on a free port (no persistence): the Lua window's limits, all-or-nothing
 * charging and sliding, token windows and their correction, giving back, the verdict
 * deadline, losing the server and reconnecting, a flushed script cache, URL parsing, and
 * the leases of a key's shared quotas (room granted, refusals, usage, periods, expiry,
 * seeding).
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

static long long zcard(const char *key)
{
    redisContext *rc = sync_client();
    assert_non_null(rc);
    redisReply *r = redisCommand(rc, "ZCARD %s", key);
    assert_non_null(r);
    long long n = r->integer;
    freeReplyObject(r);
    redisFree(rc);
    return n;
}

/* An integer the test reads back (GET), 0 when the key is absent. */
static long long get_int(const char *key)
{
    redisContext *rc = sync_client();
    assert_non_null(rc);
    redisReply *r = redisCommand(rc, "GET %s", key);
    assert_non_null(r);
    long long n = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    redisFree(rc);
    return n;
}

static void flushall(void)
{
    redisContext *rc = sync_client();
    assert_non_null(rc);
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    redisFree(rc);
}

/* ---- checks ---- */

typedef struct verdict {
    bool done;
    int rc;
    bool allowed;
    int64_t retry_ms;
} verdict_t;

static void on_verdict(void *ud, int rc, bool allowed, int64_t retry_ms)
{
    verdict_t *v = ud;
    assert_false(v->done); /* exactly once */
    *v = (verdict_t){true, rc, allowed, retry_ms};
}

/* One check, waited for. */
static verdict_t check(fixture_t *f, const ar_redis_window_t *w, size_t n, int64_t window_ms)
{
    verdict_t v = {0};
    assert_int_equal(ar_redis_window_admit(f->c, w, n, window_ms, NULL, on_verdict, &v), 0);
    assert_false(v.done); /* never inside the call */
    assert_true(run_until(f, &v.done, 2000));
    return v;
}

static void test_limit(void **state)
{
    fixture_t *f = *state;
    ar_redis_window_t w = {"airouter:{a}:rpm", 3, 0};
    for (int i = 0; i < 3; i++) {
        verdict_t v = check(f, &w, 1, 60000);
        assert_int_equal(v.rc, 0);
        assert_true(v.allowed);
    }
    verdict_t v = check(f, &w, 1, 60000);
    assert_int_equal(v.rc, 0);
    assert_false(v.allowed);
    assert_true(v.retry_ms >= 59000 && v.retry_ms <= 60000);
    assert_int_equal(zcard("airouter:{a}:rpm"), 3);
    /* a limit of 0 never admits, and says a whole window */
    ar_redis_window_t z = {"airouter:{z}:rpm", 0, 0};
    v = check(f, &z, 1, 60000);
    assert_false(v.allowed);
    assert_int_equal(v.retry_ms, 60000);
    ar_redis_stats_t st;
    ar_redis_stats(f->r, &st);
    assert_true(st.up);
    assert_int_equal(st.conns, 1);
    assert_int_equal(st.checks, 5);
    assert_int_equal(st.denied, 2);
}

/* Concurrent checks from one connection: exactly the limit gets through. */
static void test_concurrent_exact(void **state)
{
    fixture_t *f = *state;
    ar_redis_window_t w = {"airouter:{c}:rpm", 7, 0};
    verdict_t v[20] = {0};
    for (int i = 0; i < 20; i++)
        assert_int_equal(ar_redis_window_admit(f->c, &w, 1, 60000, NULL, on_verdict, &v[i]), 0);
    assert_true(run_until(f, &v[19].done, 2000));
    int allowed = 0;
    for (int i = 0; i < 20; i++) {
        assert_true(v[i].done);
        allowed += v[i].allowed;
    }
    assert_int_equal(allowed, 7);
}

/* An admission given back leaves room for the next one, in every window it was charged to. */
static void test_release(void **state)
{
    fixture_t *f = *state;
    ar_redis_window_t w[2] = {{"airouter:key:{7}:rpm", 1, 0}, {"airouter:{r}:rpm", 5, 0}};
    verdict_t v = {0};
    char member[AR_REDIS_MEMBER_MAX];
    assert_int_equal(ar_redis_window_admit(f->c, w, 2, 60000, member, on_verdict, &v), 0);
    assert_true(run_until(f, &v.done, 2000));
    assert_true(v.allowed);
    assert_false(check(f, w, 1, 60000).allowed);
    const char *keys[2] = {w[0].key, w[1].key};
    ar_redis_window_release(f->c, keys, 2, member);
    /* the release is pipelined ahead of this check on the same connection */
    assert_true(check(f, w, 1, 60000).allowed);
    assert_int_equal(zcard("airouter:key:{7}:rpm"), 1);
    assert_int_equal(zcard("airouter:{r}:rpm"), 0);
}

/* Token windows: the estimate is charged when it fits, then corrected with the real usage;
 * a refusal charges nothing (neither the token window nor a counting one beside it). */
static void test_tokens(void **state)
{
    fixture_t *f = *state;
    ar_redis_window_t w[2] = {{"airouter:{t}:tpm", 100, 40}, {"airouter:{t}:rpm", 10, 0}};
    char m1[AR_REDIS_MEMBER_MAX];
    verdict_t v = {0};
    assert_int_equal(ar_redis_window_admit(f->c, w, 2, 60000, m1, on_verdict, &v), 0);
    assert_true(run_until(f, &v.done, 2000));
    assert_true(v.allowed);
    assert_true(check(f, w, 2, 60000).allowed);
    assert_int_equal(get_int("airouter:{t}:tpm:sum"), 80);
    v = check(f, w, 2, 60000); /* 80 + 40 > 100 */
    assert_false(v.allowed);
    assert_true(v.retry_ms >= 59000 && v.retry_ms <= 60000);
    assert_int_equal(zcard("airouter:{t}:rpm"), 2);
    /* the first used 10 tokens, not 40: room for one more estimate */
    const char *keys[1] = {w[0].key};
    ar_redis_window_settle(f->c, keys, 1, m1, 40, 10);
    assert_true(check(f, w, 2, 60000).allowed);
    assert_int_equal(get_int("airouter:{t}:tpm:sum"), 90);
    /* an unknown member (or one already settled) changes nothing */
    ar_redis_window_settle(f->c, keys, 1, m1, 40, 5);
    ar_redis_window_settle(f->c, keys, 1, "nobody", 40, 0);
    assert_false(check(f, w, 2, 60000).allowed);
    assert_int_equal(get_int("airouter:{t}:tpm:sum"), 90);
    /* more than the whole limit never fits: a whole window */
    ar_redis_window_t big = {"airouter:{u}:tpm", 100, 101};
    v = check(f, &big, 1, 60000);
    assert_false(v.allowed);
    assert_int_equal(v.retry_ms, 60000);
}

/* Token windows slide: expired charges leave the sum. */
static void test_tokens_slide(void **state)
{
    fixture_t *f = *state;
    ar_redis_window_t w = {"airouter:{ts}:tpm", 100, 60};
    assert_true(check(f, &w, 1, 300).allowed);
    verdict_t v = check(f, &w, 1, 300);
    assert_false(v.allowed);
    assert_true(v.retry_ms >= 1 && v.retry_ms <= 300);
    usleep((useconds_t)(v.retry_ms + 5) * 1000);
    assert_true(check(f, &w, 1, 300).allowed);
    assert_int_equal(get_int("airouter:{ts}:tpm:sum"), 60);
}

/* A full window refuses for all: nothing is charged to the others. */
static void test_all_or_nothing(void **state)
{
    fixture_t *f = *state;
    ar_redis_window_t full = {"airouter:{b}:rpm", 1, 0};
    assert_true(check(f, &full, 1, 60000).allowed);
    ar_redis_window_t both[2] = {{"airouter:{b}:rpm:gpt", 5, 0}, {"airouter:{b}:rpm", 1, 0}};
    verdict_t v = check(f, both, 2, 60000);
    assert_false(v.allowed);
    assert_int_equal(zcard("airouter:{b}:rpm:gpt"), 0);
    both[1].limit = 2;
    assert_true(check(f, both, 2, 60000).allowed);
    assert_int_equal(zcard("airouter:{b}:rpm:gpt"), 1);
    assert_int_equal(zcard("airouter:{b}:rpm"), 2);
}

static void test_slides(void **state)
{
    fixture_t *f = *state;
    ar_redis_window_t w = {"airouter:{s}:rpm", 2, 0};
    assert_true(check(f, &w, 1, 300).allowed);
    assert_true(check(f, &w, 1, 300).allowed);
    verdict_t v = check(f, &w, 1, 300);
    assert_false(v.allowed);
    assert_true(v.retry_ms >= 1 && v.retry_ms <= 300);
    usleep((useconds_t)(v.retry_ms + 5) * 1000);
    assert_true(check(f, &w, 1, 300).allowed);
}

static void test_noscript(void **state)
{
    fixture_t *f = *state;
    redisContext *rc = sync_client();
    freeReplyObject(redisCommand(rc, "SCRIPT FLUSH"));
    redisFree(rc);
    ar_redis_window_t w = {"airouter:{n}:rpm", 1, 0};
    verdict_t v = check(f, &w, 1, 60000);
    assert_int_equal(v.rc, 0);
    assert_true(v.allowed);
    v = check(f, &w, 1, 60000);
    assert_false(v.allowed);
    /* the correction script too */
    ar_redis_window_t t = {"airouter:{n}:tpm", 100, 50};
    char m[AR_REDIS_MEMBER_MAX];
    v = (verdict_t){0};
    assert_int_equal(ar_redis_window_admit(f->c, &t, 1, 60000, m, on_verdict, &v), 0);
    assert_true(run_until(f, &v.done, 2000));
    assert_true(v.allowed);
    rc = sync_client();
    freeReplyObject(redisCommand(rc, "SCRIPT FLUSH"));
    redisFree(rc);
    const char *keys[1] = {t.key};
    ar_redis_window_settle(f->c, keys, 1, m, 50, 20);
    assert_true(check(f, &t, 1, 60000).allowed); /* 20 + 50 */
    assert_int_equal(get_int("airouter:{n}:tpm:sum"), 70);
}

/* A server that stops answering: the verdict comes after the deadline, the connection is
 * dropped and made again once the server answers. */
static void test_timeout(void **state)
{
    fixture_t *f = *state;
    flushall();
    kill(server, SIGSTOP);
    ar_redis_window_t w = {"airouter:{t}:rpm", 5, 0};
    uint64_t t0 = uv_now(&f->loop);
    verdict_t v = check(f, &w, 1, 60000);
    uv_update_time(&f->loop);
    assert_int_equal(v.rc, AR_EUNAVAIL);
    assert_true(uv_now(&f->loop) - t0 >= AR_REDIS_TIMEOUT_MS - 1);
    assert_true(uv_now(&f->loop) - t0 < 1000);
    assert_false(ar_redis_conn_ready(f->c));
    verdict_t v2 = {0};
    assert_int_equal(ar_redis_window_admit(f->c, &w, 1, 60000, NULL, on_verdict, &v2), AR_EUNAVAIL);
    ar_redis_stats_t st;
    ar_redis_stats(f->r, &st);
    assert_false(st.up);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.unavailable, 1);
    kill(server, SIGCONT);
    assert_true(run_until_ready(f, true, 5000));
    assert_true(check(f, &w, 1, 60000).allowed);
}

static void test_lost_and_back(void **state)
{
    fixture_t *f = *state;
    verdict_t v = {0};
    ar_redis_window_t w = {"airouter:{l}:rpm", 5, 0};
    assert_int_equal(ar_redis_window_admit(f->c, &w, 1, 60000, NULL, on_verdict, &v), 0);
    stop_server();
    assert_true(run_until(f, &v.done, 2000));
    /* answered before the kill, or failed by it: either way exactly once */
    assert_true(run_until_ready(f, false, 2000));
    assert_int_equal(ar_redis_window_admit(f->c, &w, 1, 60000, NULL, on_verdict, &v), AR_EUNAVAIL);
    ar_redis_stats_t st;
    ar_redis_stats(f->r, &st);
    assert_false(st.up);
    start_server();
    assert_true(run_until_ready(f, true, 5000));
    ar_redis_stats(f->r, &st);
    assert_true(st.up);
    assert_true(st.disconnects >= 1);
    assert_true(check(f, &w, 1, 60000).allowed);
}

/* ---- quota leases ---- */

typedef struct lease_answer {
    bool done;
    int rc;
    ar_redis_lease_answer_t a;
} lease_answer_t;

static void on_lease(void *ud, int rc, const ar_redis_lease_answer_t *a)
{
    lease_answer_t *la = ud;
    assert_false(la->done);
    *la = (lease_answer_t){true, rc, *a};
}

static ar_redis_lease_answer_t lease(fixture_t *f, const char *member, ar_redis_lease_ask_t ask)
{
    lease_answer_t la = {0};
    assert_int_equal(ar_redis_quota_lease(f->c, "airouter:key:{9}", member, &ask, on_lease, &la),
                     0);
    assert_false(la.done);
    assert_true(run_until(f, &la.done, 2000));
    assert_int_equal(la.rc, 0);
    return la.a;
}

/* A total of 100 tokens; requests of prompt 30, worst case 60. */
static ar_redis_lease_ask_t tokens_ask(void)
{
    return (ar_redis_lease_ask_t){.day = 100,
                                  .month = 40,
                                  .hold_ms = 60000,
                                  .day_tokens = -1,
                                  .month_tokens = -1,
                                  .total_tokens = 100,
                                  .budget_nano = -1,
                                  .need_min = {30, 0},
                                  .need_max = {60, 0},
                                  .want = {960, 0},
                                  .spread = 1};
}

/* Room is granted in whole worst cases, at least the waiting request's (capped at what is
 * left), refused when not even its prompt fits; a renewal counts the usage and gives the
 * room back; what is in flight stays reserved. */
static void test_lease_tokens(void **state)
{
    fixture_t *f = *state;
    ar_redis_lease_ask_t ask = tokens_ask();
    ar_redis_lease_answer_t a = lease(f, "A", ask);
    assert_int_equal(a.verdict, 0);
    assert_int_equal(a.room_tokens, 60); /* 100 in whole worst cases */
    assert_int_equal(a.used.total_tokens, 0);
    a = lease(f, "B", ask);
    assert_int_equal(a.verdict, 0);
    assert_int_equal(a.room_tokens, 40); /* less than a worst case was left */
    a = lease(f, "C", ask);
    assert_int_equal(a.verdict, 1);
    assert_int_equal(a.room_tokens, 0);
    /* A: its request used 20 and is done, nothing waits, no room wanted */
    ar_redis_lease_ask_t done = tokens_ask();
    done.usage = (ar_redis_amount_t){20, 0};
    done.need_min = (ar_redis_amount_t){-1, -1};
    done.want = (ar_redis_amount_t){0, 0};
    a = lease(f, "A", done);
    assert_int_equal(a.room_tokens, 0);
    assert_int_equal(a.used.total_tokens, 20);
    a = lease(f, "C", ask); /* 100 - 20 used - 40 of B */
    assert_int_equal(a.verdict, 0);
    assert_int_equal(a.room_tokens, 40);
    /* B renews with 30 in flight: kept, even with nothing left beyond */
    ar_redis_lease_ask_t keep = done;
    keep.usage = (ar_redis_amount_t){0, 0};
    keep.in_flight = (ar_redis_amount_t){30, 0};
    keep.want = (ar_redis_amount_t){60, 0};
    a = lease(f, "B", keep);
    assert_int_equal(a.room_tokens, 0); /* 100 - 20 - 40 of C - 30 in flight: 10, no whole unit */
    ask.need_min = (ar_redis_amount_t){11, 0};
    assert_int_equal(lease(f, "D", ask).verdict, 1);
    ask.need_min = (ar_redis_amount_t){10, 0};
    a = lease(f, "D", ask);
    assert_int_equal(a.verdict, 0);
    assert_int_equal(a.room_tokens, 10);
    /* a new day: the day's count starts at zero, the total stays */
    ar_redis_lease_ask_t next = done;
    next.day = 101;
    next.usage = (ar_redis_amount_t){0, 0};
    a = lease(f, "E", next);
    assert_int_equal(a.used.day_tokens, 0);
    assert_int_equal(a.used.total_tokens, 20);
    ar_redis_stats_t st;
    ar_redis_stats(f->r, &st);
    assert_int_equal(st.denied, 2);
}

/* A budget in nano-USD: the seed says what was spent (only when Redis holds nothing), an
 * empty budget refuses, spread shares what is left. */
static void test_lease_budget(void **state)
{
    fixture_t *f = *state;
    ar_redis_lease_ask_t ask = {.day = 1,
                                .month = 1,
                                .hold_ms = 60000,
                                .day_tokens = -1,
                                .month_tokens = -1,
                                .total_tokens = -1,
                                .budget_nano = 1000000000,
                                .need_min = {5, 10000000},
                                .need_max = {15, 20000000},
                                .want = {240, 320000000},
                                .spread = 2,
                                .seed = {7, 7, 7, 600000000}};
    ar_redis_lease_answer_t a = lease(f, "A", ask);
    assert_int_equal(a.verdict, 0);
    assert_int_equal(a.room_nano, 200000000); /* 400000000 left, half of it */
    assert_int_equal(a.room_tokens, 0);       /* no token limit */
    assert_int_equal(a.used.total_nano, 600000000);
    ask.seed = (ar_redis_quota_used_t){0}; /* Redis holds the counters: a seed is ignored */
    a = lease(f, "B", ask);
    assert_int_equal(a.room_nano, 100000000); /* half of the 200000000 left */
    a = lease(f, "C", ask);                   /* half of 100000000, in whole worst cases */
    assert_int_equal(a.room_nano, 40000000);
    ask.spread = 1;
    a = lease(f, "D", ask); /* all that is left */
    assert_int_equal(a.room_nano, 60000000);
    a = lease(f, "E", ask);
    assert_int_equal(a.verdict, 2);
    assert_int_equal(a.room_nano, 0);
    /* A spent 50000000 of its room and gives the rest back */
    ask.usage = (ar_redis_amount_t){3, 50000000};
    ask.need_min = (ar_redis_amount_t){-1, -1};
    ask.want = (ar_redis_amount_t){0, 0};
    a = lease(f, "A", ask);
    assert_int_equal(a.used.total_nano, 650000000);
    assert_int_equal(a.used.total_tokens, 10);
}

/* A lease nobody renews (its instance died) is given back when it expires. */
static void test_lease_expiry(void **state)
{
    fixture_t *f = *state;
    ar_redis_lease_ask_t ask = tokens_ask();
    ask.hold_ms = 100;
    ask.total_tokens = 60;
    assert_int_equal(lease(f, "A", ask).verdict, 0);
    assert_int_equal(lease(f, "B", ask).verdict, 1);
    usleep(150000);
    assert_int_equal(lease(f, "B", ask).verdict, 0);
    assert_int_equal(lease(f, "C", ask).verdict, 1);
}

/* A check whose arguments outgrow the command's inline room (8 windows with long names)
 * is sent whole all the same. */
static void test_long_command(void **state)
{
    fixture_t *f = *state;
    char names[8][200];
    ar_redis_window_t w[8];
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof(names[i]), "airouter:{long}:%0140d:%d", 0, i);
        w[i] = (ar_redis_window_t){names[i], i % 2 ? 50 : 5, i % 2 ? 10 : 0};
    }
    verdict_t v = check(f, w, 8, 60000);
    assert_int_equal(v.rc, 0);
    assert_true(v.allowed);
    assert_int_equal(zcard(names[0]), 1);
    char sum[240];
    snprintf(sum, sizeof(sum), "%s:sum", names[1]);
    assert_int_equal(get_int(sum), 10);
}

static void test_urls(void **state)
{
    (void)state;
    char err[200];
    static const char *const bad[] = {"rediss://127.0.0.1:6379",
                                      "http://x",
                                      "redis://",
                                      "redis://127.0.0.1:99999",
                                      "redis://127.0.0.1:6379/x",
                                      "redis://:secret@no-such-host.invalid:6379"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_null(ar_redis_create(bad[i], err, sizeof(err)));
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "secret"));
    }
    ar_redis_t *r = ar_redis_create("redis://user:p%40ss@localhost:6390/2", err, sizeof(err));
    assert_non_null(r);
    ar_redis_destroy(r);
    r = ar_redis_create("redis://[::1]", err, sizeof(err));
    assert_non_null(r);
    ar_redis_destroy(r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_slide, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noscript, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_command, setup, teardown),
        cmocka_unit_test(test_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
