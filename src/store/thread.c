/*
 * thread.c: the store threads (thread.h). Database calls block, so on the server they run
 * here, never on an event loop: a worker submits a job (work runs on a store thread with
 * that thread's store), and the job's done callback is handed back through the caller's
 * post function, which puts it on the caller's own loop (the gateway passes ar_worker_post).
 *
 * One queue feeds every thread of a pool; a thread takes the first job it may run (an
 * unmarked one, or a serial one while no serial job runs), so jobs start in submission
 * order and serial jobs also run one after the other. A submission that finds more jobs
 * waiting than idle threads starts one more thread, up to max_conns; that thread opens its
 * own store, so the submitter (an event loop) never waits for a connection. Stopping runs
 * every job already submitted, then joins.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/thread.h"

#define GROW_RETRY_MS 1000 /* after a connection failed to open, before the next try */

typedef struct job {
    struct job *next;
    ar_store_job_t j;
} job_t;

typedef struct member {
    ar_store_thread_t *t;
    ar_store_t *store; /* NULL: the thread opens it */
    int index;
} member_t;

struct ar_store_thread {
    char *url;
    ar_store_opts_t opts;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    job_t *head, *tail;
    size_t queued;
    bool stopping;
    bool serial_running;
    int threads;     /* started and not gone (connecting ones included) */
    int connecting;  /* of those, still opening their store */
    int idle;        /* of those, waiting for a job */
    pthread_t *tids; /* [max]: the thread in each slot */
    bool *used;      /* [max]: the slot's thread is to be joined */
    int max;
    uint64_t grow_after_ms; /* ar_now_ms: no new thread before (a failed open) */
    char name[16];
    int nice; /* added to the threads' niceness: background threads yield to the workers */
};

static void set_priority(ar_store_thread_t *t, int index)
{
    char name[32];
    if (index == 0)
        snprintf(name, sizeof(name), "%s", t->name);
    else
        snprintf(name, sizeof(name), "%.10s-%d", t->name, index + 1);
    name[15] = '\0'; /* the kernel's limit */
    pthread_setname_np(pthread_self(), name);
    /* Linux: a thread's niceness is its own (setpriority on its tid); raising it needs no
     * privilege, and failing to is harmless */
    if (t->nice) {
        /* SCHED_IDLE: the thread runs only on a CPU nothing else wants, and any other
         * thread that wakes takes the CPU from it at once (a niced thread can still hold it
         * for a scheduler tick: a millisecond of someone's latency) */
        struct sched_param sp = {.sched_priority = 0};
        if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
            (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), t->nice);
    }
}

/* Under t->mu: the first job this thread may run, unlinked, or NULL. */
static job_t *take(ar_store_thread_t *t)
{
    job_t *prev = NULL;
    for (job_t *jb = t->head; jb; prev = jb, jb = jb->next) {
        if (jb->j.serial && t->serial_running)
            continue;
        if (prev)
            prev->next = jb->next;
        else
            t->head = jb->next;
        if (t->tail == jb)
            t->tail = prev;
        t->queued--;
        if (jb->j.serial)
            t->serial_running = true;
        return jb;
    }
    return NULL;
}

static void *run(void *arg)
{
    member_t *m = arg;
    ar_store_thread_t *t = m->t;
    set_priority(t, m->index);
    if (!m->store) {
        char err[256] = "";
        int rc = ar_store_open_opts(t->url, &t->opts, &m->store, err, sizeof(err));
        pthread_mutex_lock(&t->mu);
        t->connecting--;
        if (rc != 0) {
            /* the slot is free for a later try; nobody joins this thread, and t is not
             * touched after the unlock (stop may free it). Once stopping began, stop
             * joins it instead. */
            t->threads--;
            t->grow_after_ms = ar_now_ms() + GROW_RETRY_MS;
            if (!t->stopping) {
                t->used[m->index] = false;
                pthread_detach(pthread_self());
            }
            pthread_mutex_unlock(&t->mu);
            AR_LOG(AR_LOG_WARN, NULL, "store: another connection could not be opened: %s", err);
            ar_free(m);
            return NULL;
        }
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_lock(&t->mu);
    for (;;) {
        job_t *jb = take(t);
        if (!jb) {
            if (t->stopping && !t->head)
                break; /* stopping, and nothing left */
            t->idle++;
            pthread_cond_wait(&t->cond, &t->mu);
            t->idle--;
            continue;
        }
        pthread_mutex_unlock(&t->mu);
        jb->j.work(m->store, jb->j.arg);
        if (jb->j.done)
            jb->j.post(jb->j.post_ud, jb->j.done, jb->j.arg);
        pthread_mutex_lock(&t->mu);
        if (jb->j.serial) {
            t->serial_running = false;
            if (t->head)
                pthread_cond_broadcast(&t->cond); /* a serial job may be waiting for this */
        }
        ar_free(jb);
    }
    t->threads--;
    pthread_cond_broadcast(&t->cond); /* the others may be waiting out a serial job */
    pthread_mutex_unlock(&t->mu);
    ar_store_close(m->store);
    ar_free(m);
    return NULL;
}

/* Under t->mu: starts a thread for m in a free slot. @return 0 or AR_EIO. */
static int spawn(ar_store_thread_t *t, member_t *m)
{
    int slot = 0;
    while (slot < t->max && t->used[slot])
        slot++;
    if (slot == t->max)
        return AR_EIO;
    m->t = t;
    m->index = slot;
    if (pthread_create(&t->tids[slot], NULL, run, m) != 0)
        return AR_EIO;
    t->used[slot] = true;
    t->threads++;
    if (!m->store)
        t->connecting++;
    return 0;
}

static void destroy(ar_store_thread_t *t)
{
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
    ar_free(t->url);
    ar_free(t->tids);
    ar_free(t->used);
    ar_free(t);
}

int ar_store_thread_start(const char *url, ar_store_thread_t **out, char *err, size_t errlen)
{
    return ar_store_thread_start_opts(url, NULL, out, err, errlen);
}

int ar_store_thread_start_as(const char *url, const char *name, int nice, ar_store_thread_t **out,
                             char *err, size_t errlen)
{
    ar_store_thread_opts_t o = {.name = name, .nice = nice};
    return ar_store_thread_start_opts(url, &o, out, err, errlen);
}

int ar_store_thread_start_opts(const char *url, const ar_store_thread_opts_t *o,
                               ar_store_thread_t **out, char *err, size_t errlen)
{
    *out = NULL;
    ar_store_thread_opts_t d = {0};
    if (!o)
        o = &d;
    int min = o->min_conns < 1 ? 1 : o->min_conns;
    int max = o->max_conns < min ? min : o->max_conns;
    if (strncmp(url, "sqlite://", 9) == 0)
        min = max = 1; /* one writer: a second connection would only wait for the lock */
    ar_store_thread_t *t = ar_xcalloc(1, sizeof(*t));
    t->url = ar_xstrdup(url);
    t->opts = o->store;
    t->max = max;
    t->tids = ar_xcalloc((size_t)max, sizeof(*t->tids));
    t->used = ar_xcalloc((size_t)max, sizeof(*t->used));
    snprintf(t->name, sizeof(t->name), "%s", o->name && *o->name ? o->name : "ar-store");
    t->nice = o->nice;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    /* the first connections open here: a database that cannot be reached fails the start */
    member_t **ms = ar_xcalloc((size_t)min, sizeof(*ms));
    int rc = 0;
    for (int i = 0; i < min && rc == 0; i++) {
        ms[i] = ar_xcalloc(1, sizeof(*ms[i]));
        rc = ar_store_open_opts(url, &t->opts, &ms[i]->store, err, errlen);
    }
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < min && rc == 0; i++) {
        rc = spawn(t, ms[i]);
        if (rc == 0)
            ms[i] = NULL; /* the thread's now */
        else
            snprintf(err, errlen, "cannot start the store thread");
    }
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < min; i++) {
        if (ms[i]) {
            ar_store_close(ms[i]->store);
            ar_free(ms[i]);
        }
    }
    ar_free(ms);
    if (rc != 0) {
        ar_store_thread_stop(t);
        return rc;
    }
    *out = t;
    return 0;
}

int ar_store_thread_submit(ar_store_thread_t *t, const ar_store_job_t *j)
{
    job_t *jb = ar_xcalloc(1, sizeof(*jb));
    jb->j = *j;
    pthread_mutex_lock(&t->mu);
    if (t->stopping) {
        pthread_mutex_unlock(&t->mu);
        ar_free(jb);
        return AR_ESHUTDOWN;
    }
    if (t->tail)
        t->tail->next = jb;
    else
        t->head = jb;
    t->tail = jb;
    t->queued++;
    /* every thread busy (the connecting ones will take a job soon): one more */
    if (t->queued > (size_t)(t->idle + t->connecting) && t->threads < t->max &&
        ar_now_ms() >= t->grow_after_ms) {
        member_t *m = ar_xcalloc(1, sizeof(*m));
        if (spawn(t, m) != 0)
            ar_free(m); /* the threads there are take the job */
    }
    /* broadcast: a signal could wake a thread that may not take a waiting serial job */
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

int ar_store_thread_count(ar_store_thread_t *t)
{
    pthread_mutex_lock(&t->mu);
    int n = t->threads;
    pthread_mutex_unlock(&t->mu);
    return n;
}

void ar_store_thread_stop(ar_store_thread_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
    /* no thread starts once stopping; one that fails to connect frees its slot itself */
    for (int i = 0; i < t->max; i++) {
        pthread_mutex_lock(&t->mu);
        bool join = t->used[i];
        pthread_mutex_unlock(&t->mu);
        if (join)
            pthread_join(t->tids[i], NULL);
    }
    destroy(t);
}
