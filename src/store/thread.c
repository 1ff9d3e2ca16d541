/*
 * thread.c: the store thread. Database calls block, so on the server they run here, never
 * on an event loop: a worker submits a job (work runs on this thread with the store), and
 * the job's done callback is handed back through the caller's post function, which puts it
 * on the caller's own loop (the gateway passes ar_worker_post). Jobs run one at a time in
 * submission order. Stopping runs every job already submitted, then joins.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/mem.h"
#include "store/thread.h"

typedef struct job {
    struct job *next;
    ar_store_job_t j;
} job_t;

struct ar_store_thread {
    ar_store_t *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    job_t *head, *tail;
    bool stopping;
    char name[16];
    int nice; /* added to the thread's niceness: a background thread yields to the workers */
};

static void *run(void *arg)
{
    ar_store_thread_t *t = arg;
    pthread_setname_np(pthread_self(), t->name);
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
    for (;;) {
        pthread_mutex_lock(&t->mu);
        while (!t->head && !t->stopping)
            pthread_cond_wait(&t->cond, &t->mu);
        job_t *jb = t->head;
        if (jb) {
            t->head = jb->next;
            if (!t->head)
                t->tail = NULL;
        }
        pthread_mutex_unlock(&t->mu);
        if (!jb)
            return NULL; /* stopping, and nothing left */
        jb->j.work(t->store, jb->j.arg);
        if (jb->j.done)
            jb->j.post(jb->j.post_ud, jb->j.done, jb->j.arg);
        ar_free(jb);
    }
}

int ar_store_thread_start(const char *url, ar_store_thread_t **out, char *err, size_t errlen)
{
    return ar_store_thread_start_as(url, "ar-store", 0, out, err, errlen);
}

int ar_store_thread_start_as(const char *url, const char *name, int nice, ar_store_thread_t **out,
                             char *err, size_t errlen)
{
    *out = NULL;
    ar_store_t *s = NULL;
    int rc = ar_store_open(url, &s, err, errlen);
    if (rc)
        return rc;
    ar_store_thread_t *t = ar_xcalloc(1, sizeof(*t));
    t->store = s;
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->nice = nice;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    if (pthread_create(&t->thread, NULL, run, t) != 0) {
        snprintf(err, errlen, "cannot start the store thread");
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cond);
        ar_store_close(s);
        ar_free(t);
        return AR_EIO;
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
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

void ar_store_thread_stop(ar_store_thread_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
    ar_store_close(t->store);
    ar_free(t);
}
