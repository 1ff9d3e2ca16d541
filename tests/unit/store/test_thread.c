/*
 * test_thread.c: the store thread on a real SQLite file: jobs from two producer threads
 * all run, in each producer's order, with their done callbacks handed to the submitter's
 * post function; stopping runs what was queued; a submission after stopping began is
 * refused.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/thread.h"
#include "testutil.h"

static char dir[64];
static char url[200];

static int setup(void **state)
{
    (void)state;
    ar_test_store_dir("ar-storethr", dir, url);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ar_test_rmdir(dir);
    return 0;
}

/* ---- the submitter's side: post collects done callbacks, as a worker's loop would ---- */

typedef struct inbox {
    pthread_mutex_t mu;
    int posted;
    int done;
} inbox_t;

static void post(void *ud, void (*done)(void *arg), void *arg)
{
    inbox_t *in = ud;
    pthread_mutex_lock(&in->mu);
    in->posted++;
    pthread_mutex_unlock(&in->mu);
    done(arg);
}

typedef struct plan_job {
    char name[32];
    int64_t id;
    int rc;
    inbox_t *in;
} plan_job_t;

static void create_plan(ar_store_t *s, void *arg)
{
    plan_job_t *pj = arg;
    char err[128];
    ar_plan_t p = {.name = pj->name, .max_tokens = 1};
    pj->rc = ar_store_plan_create(s, &p, &pj->id, err, sizeof(err));
}

static void plan_done(void *arg)
{
    plan_job_t *pj = arg;
    pthread_mutex_lock(&pj->in->mu);
    pj->in->done++;
    pthread_mutex_unlock(&pj->in->mu);
}

enum { PER_PRODUCER = 150 };

typedef struct producer {
    ar_store_thread_t *t;
    inbox_t *in;
    int which;
    plan_job_t jobs[PER_PRODUCER];
} producer_t;

static void *produce(void *arg)
{
    producer_t *p = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        plan_job_t *pj = &p->jobs[i];
        snprintf(pj->name, sizeof(pj->name), "p%d-%d", p->which, i);
        pj->in = p->in;
        ar_store_job_t j = {create_plan, plan_done, post, p->in, pj, false};
        if (ar_store_thread_submit(p->t, &j) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_jobs_from_two_threads(void **state)
{
    (void)state;
    char err[256];
    ar_store_thread_t *t = NULL;
    assert_int_equal(ar_store_thread_start(url, &t, err, sizeof(err)), 0);
    inbox_t in = {.mu = PTHREAD_MUTEX_INITIALIZER};
    static producer_t p[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        p[k] = (producer_t){.t = t, .in = &in, .which = k};
        assert_int_equal(pthread_create(&th[k], NULL, produce, &p[k]), 0);
    }
    for (int k = 0; k < 2; k++) {
        void *r;
        pthread_join(th[k], &r);
        assert_null(r);
    }
    ar_store_thread_stop(t); /* runs what is queued */
    assert_int_equal(in.posted, 2 * PER_PRODUCER);
    assert_int_equal(in.done, 2 * PER_PRODUCER);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < PER_PRODUCER; i++) {
            assert_int_equal(p[k].jobs[i].rc, 0);
            if (i) /* each producer's jobs ran in its order */
                assert_true(p[k].jobs[i].id > p[k].jobs[i - 1].id);
        }
    }
    ar_store_t *s = NULL;
    assert_int_equal(ar_store_open(url, &s, err, sizeof(err)), 0);
    ar_plan_list_t l;
    assert_int_equal(ar_store_plan_list(s, &l), 0);
    assert_int_equal(l.cnt, 2 * PER_PRODUCER);
    ar_store_plan_list_free(&l);
    ar_store_close(s);
}

/* A job that keeps submitting until the thread says it is stopping. */
typedef struct resubmit {
    ar_store_thread_t *t;
    int accepted;
    int refused;
    int ran;
} resubmit_t;

static void count_run(ar_store_t *s, void *arg)
{
    (void)s;
    ((resubmit_t *)arg)->ran++;
}

static void until_refused(ar_store_t *s, void *arg)
{
    (void)s;
    resubmit_t *r = arg;
    for (int i = 0; i < 100000 && !r->refused; i++) {
        ar_store_job_t j = {.work = count_run, .arg = r};
        if (ar_store_thread_submit(r->t, &j) == AR_ESHUTDOWN)
            r->refused = 1;
        else
            r->accepted++;
        usleep(100); /* polls for stop to begin (it begins on the main thread) */
    }
}

static void test_stop_drains_then_refuses(void **state)
{
    (void)state;
    char err[256];
    resubmit_t r = {0};
    assert_int_equal(ar_store_thread_start(url, &r.t, err, sizeof(err)), 0);
    for (int i = 0; i < 20; i++) {
        ar_store_job_t j = {.work = count_run, .arg = &r};
        assert_int_equal(ar_store_thread_submit(r.t, &j), 0);
    }
    ar_store_job_t first = {.work = until_refused, .arg = &r};
    assert_int_equal(ar_store_thread_submit(r.t, &first), 0);
    ar_store_thread_stop(r.t);
    assert_int_equal(r.refused, 1);
    assert_int_equal(r.ran, 20 + r.accepted); /* everything accepted ran */
}

static void test_bad_url(void **state)
{
    (void)state;
    char err[256];
    ar_store_thread_t *t = NULL;
    assert_int_equal(ar_store_thread_start("mysql://x/y", &t, err, sizeof(err)), AR_EINVAL);
    assert_null(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_from_two_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains_then_refuses, setup, teardown),
        cmocka_unit_test(test_bad_url),
    };
    return cmocka_run_group_tests_name("test_thread", tests, NULL, NULL);
}
