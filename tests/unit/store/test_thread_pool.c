/*
 * test_thread_pool.c: the pool of store threads and PostgreSQL's deadlines. SQLite keeps one
 * thread whatever max_conns says; a connection attempt to a server that never answers
 * gives up at connect_timeout. With PostgreSQL (AR_TEST_PG_URL, else skipped): a job that
 * blocks does not hold up the next one (a second connection is opened for it), min_conns
 * are open at start and no more than max_conns ever; serial jobs run one at a time in
 * submission order; a query to a stopped (SIGSTOP) server backend fails with AR_EIO
 * ("timed out") at query_timeout, and the next query runs on a new session.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc_mt.h"

#include "core/clock.h"
#include "store/thread.h"
#include "testutil.h"

static char dir[64];
static char url[200];
static char err[256];

static int setup(void **state)
{
    (void)state;
    ar_test_store_dir("ar-pool", dir, url);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ar_test_rmdir(dir);
    return 0;
}

/* ---- a gate: jobs that block until the test (or another job) opens it ---- */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;    /* 1: jobs go through */
    int entered; /* jobs that reached the gate */
    int passed;  /* jobs that went through */
} gate_t;

static void gate_init(gate_t *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static void gate_dispose(gate_t *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

static void gate_open(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Waits until *field reaches n or 10 s passed (a pool that cannot run the jobs side by
 * side would otherwise hang the test). @return whether it did. */
static bool gate_wait(gate_t *g, const int *field, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&g->mu);
    while (*field < n) {
        if (pthread_cond_timedwait(&g->cv, &g->mu, &until) != 0)
            break;
    }
    bool ok = *field >= n;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

/* A job that waits at the gate (for at most 10 s). */
static void blocked_job(ar_store_t *s, void *arg)
{
    (void)s;
    gate_t *g = arg;
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    (void)gate_wait(g, &g->open, 1);
    pthread_mutex_lock(&g->mu);
    g->passed++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* A job that opens the gate: with one thread it would never run while blocked_job waits. */
static void opener_job(ar_store_t *s, void *arg)
{
    gate_t *g = arg;
    ar_plan_list_t pl;
    if (ar_store_plan_list(s, &pl) == 0) /* a real query on this thread's connection */
        ar_store_plan_list_free(&pl);
    gate_open(g);
}

static ar_store_thread_t *start_pool(int min, int max)
{
    ar_store_thread_opts_t o = {.name = "ar-test", .min_conns = min, .max_conns = max};
    ar_store_thread_t *t = NULL;
    if (ar_store_thread_start_opts(url, &o, &t, err, sizeof(err)) != 0)
        fail_msg("start: %s", err);
    return t;
}

static void submit(ar_store_thread_t *t, void (*work)(ar_store_t *, void *), void *arg, bool serial)
{
    ar_store_job_t j = {.work = work, .arg = arg, .serial = serial};
    assert_int_equal(ar_store_thread_submit(t, &j), 0);
}

/* ---- SQLite: one thread ---- */

static void test_sqlite_one_thread(void **state)
{
    (void)state;
    if (ar_test_pg_url())
        skip(); /* this one is about SQLite */
    ar_store_thread_t *t = start_pool(3, 8);
    assert_int_equal(ar_store_thread_count(t), 1);
    gate_t g;
    gate_init(&g);
    submit(t, blocked_job, &g, false);
    assert_true(gate_wait(&g, &g.entered, 1));
    for (int i = 0; i < 5; i++)
        submit(t, blocked_job, &g, false); /* all wait: still one thread */
    assert_int_equal(ar_store_thread_count(t), 1);
    assert_int_equal(g.entered, 1);
    gate_open(&g);
    ar_store_thread_stop(t); /* runs the rest first */
    assert_int_equal(g.passed, 6);
    gate_dispose(&g);
}

/* ---- a server that accepts the TCP connection and never answers ---- */

static void test_connect_timeout(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0); /* the kernel completes the handshake; nobody reads */
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char silent[128];
    snprintf(silent, sizeof(silent), "postgresql://airouter@127.0.0.1:%d/db?sslmode=disable",
             ntohs(a.sin_port));
    ar_store_opts_t o = {.connect_timeout_ms = 300};
    ar_store_t *s = NULL;
    uint64_t t0 = ar_now_ms();
    assert_int_equal(ar_store_open_opts(silent, &o, &s, err, sizeof(err)), AR_EIO);
    uint64_t took = ar_now_ms() - t0;
    assert_null(s);
    assert_true(took >= 250 && took < 3000);
    if (!strstr(err, "no answer within 300 ms"))
        fail_msg("%s", err);
    close(fd);
}

/* ---- PostgreSQL: the pool ---- */

static void test_slow_job_does_not_delay_the_next(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    ar_store_thread_t *t = start_pool(1, 3);
    assert_int_equal(ar_store_thread_count(t), 1);
    gate_t g;
    gate_init(&g);
    submit(t, blocked_job, &g, false);
    assert_true(gate_wait(&g, &g.entered, 1));
    /* the only thread is busy: this job gets a thread (and a connection) of its own, and
     * opens the gate the first job waits at */
    submit(t, opener_job, &g, false);
    assert_true(gate_wait(&g, &g.passed, 1));
    assert_int_equal(ar_store_thread_count(t), 2);
    ar_store_thread_stop(t);
    gate_dispose(&g);
}

static void test_min_and_max(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    ar_store_thread_t *t = start_pool(2, 3);
    assert_int_equal(ar_store_thread_count(t), 2);
    gate_t g;
    gate_init(&g);
    for (int i = 0; i < 8; i++)
        submit(t, blocked_job, &g, false);
    assert_true(gate_wait(&g, &g.entered, 3)); /* three side by side ... */
    assert_int_equal(ar_store_thread_count(t), 3);
    assert_int_equal(g.entered, 3); /* ... and never a fourth */
    gate_open(&g);
    assert_true(gate_wait(&g, &g.passed, 8));
    assert_int_equal(ar_store_thread_count(t), 3);
    ar_store_thread_stop(t);
    gate_dispose(&g);
}

typedef struct order {
    pthread_mutex_t mu;
    int seen[64];
    int cnt;
    atomic_int running; /* serial jobs running now */
    atomic_int overlap; /* times two ran at once */
} order_t;

typedef struct serial_arg {
    order_t *o;
    int n;
} serial_arg_t;

static void serial_job(ar_store_t *s, void *arg)
{
    serial_arg_t *a = arg;
    if (atomic_fetch_add(&a->o->running, 1) != 0)
        atomic_fetch_add(&a->o->overlap, 1);
    ar_plan_list_t pl; /* a round trip: long enough for another thread to try */
    if (ar_store_plan_list(s, &pl) == 0)
        ar_store_plan_list_free(&pl);
    pthread_mutex_lock(&a->o->mu);
    a->o->seen[a->o->cnt++] = a->n;
    pthread_mutex_unlock(&a->o->mu);
    atomic_fetch_sub(&a->o->running, 1);
}

static void plain_job(ar_store_t *s, void *arg)
{
    (void)arg;
    ar_plan_list_t pl;
    if (ar_store_plan_list(s, &pl) == 0)
        ar_store_plan_list_free(&pl);
}

static void test_serial_jobs_in_order(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    ar_store_thread_t *t = start_pool(4, 4);
    order_t o = {.cnt = 0};
    pthread_mutex_init(&o.mu, NULL);
    serial_arg_t args[40];
    for (int i = 0; i < 40; i++) {
        args[i] = (serial_arg_t){&o, i};
        submit(t, serial_job, &args[i], true);
        submit(t, plain_job, NULL, false); /* unmarked jobs run beside them */
    }
    ar_store_thread_stop(t);
    assert_int_equal(o.cnt, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(o.seen[i], i);
    assert_int_equal(atomic_load(&o.overlap), 0);
    pthread_mutex_destroy(&o.mu);
}

/* ---- PostgreSQL: a query past its deadline ---- */

/* The process id of the one other session on this test's database (the store's). */
static long store_backend_pid(void)
{
    PGconn *c = PQconnectdb(ar_test_pg_url());
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    const char *params[1] = {ar_test_pg_dbname(dir)};
    PGresult *r = PQexecParams(c,
                               "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND "
                               "pid <> pg_backend_pid()",
                               1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    long pid = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return pid;
}

static void test_query_deadline(void **state)
{
    (void)state;
    if (!ar_test_pg_url())
        skip();
    ar_store_opts_t o = {.connect_timeout_ms = 2000, .query_timeout_ms = 300};
    ar_store_t *s = NULL;
    if (ar_store_open_opts(url, &o, &s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    long pid = store_backend_pid();
    /* the server process of this session stops answering, as a paused database would */
    assert_int_equal(kill((pid_t)pid, SIGSTOP), 0);
    ar_plan_t p = {.name = "during", .max_tokens = 1};
    int64_t id = 0;
    uint64_t t0 = ar_now_ms();
    int rc = ar_store_plan_create(s, &p, &id, err, sizeof(err));
    uint64_t took = ar_now_ms() - t0;
    kill((pid_t)pid, SIGCONT); /* before any assertion: never leave it stopped */
    assert_int_equal(rc, AR_EIO);
    assert_true(took >= 250 && took < 3000);
    assert_non_null(strstr(err, "timed out after 300 ms"));
    /* the next query runs on a new session */
    p.name = "after";
    assert_int_equal(ar_store_plan_create(s, &p, &id, err, sizeof(err)), 0);
    /* whether "during" was taken is unknown to the caller (the server may run it once it
     * reads it): the ledger's batches are idempotent for this reason */
    ar_plan_list_t pl;
    assert_int_equal(ar_store_plan_list(s, &pl), 0);
    assert_true(pl.cnt >= 1);
    assert_string_equal(pl.items[pl.cnt - 1].name, "after");
    ar_store_plan_list_free(&pl);
    ar_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_one_thread, setup, teardown),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test_setup_teardown(test_slow_job_does_not_delay_the_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_min_and_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serial_jobs_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_deadline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
