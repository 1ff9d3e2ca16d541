/*
 * thread.h: the store thread, which owns the server's store handle so that database I/O
 * never runs on an event loop. Callers on other threads submit jobs; a job's result comes
 * back through the caller's own post function (on the server: ar_worker_post, so that done
 * runs on the submitting worker's loop).
 */
#ifndef AR_STORE_THREAD_H
#define AR_STORE_THREAD_H

#include "store/store.h"

typedef struct ar_store_thread ar_store_thread_t;

typedef struct ar_store_job {
    /** Runs on the store thread, with the store. */
    void (*work)(ar_store_t *s, void *arg);
    /** Then handed to post (NULL: nothing comes back). */
    void (*done)(void *arg);
    /** Delivers done(arg) where the submitter wants it; called on the store thread. */
    void (*post)(void *post_ud, void (*done)(void *arg), void *arg);
    void *post_ud;
    void *arg;
} ar_store_job_t;

/** Opens the store of url and starts its thread. @return 0, or an AR_E* with err set. */
int ar_store_thread_start(const char *url, ar_store_thread_t **out, char *err, size_t errlen);
/**
 * The same with the thread's name (at most 15 characters) and a niceness added to it: a
 * thread with its own connection for background work (applying the spend ledger) yields
 * the CPU to the workers and to the store thread that answers them.
 */
int ar_store_thread_start_as(const char *url, const char *name, int nice, ar_store_thread_t **out,
                             char *err, size_t errlen);
/** Queues a job (run in submission order). Any thread. @return 0, or AR_ESHUTDOWN once
 *  stopping began (the job is not run). */
int ar_store_thread_submit(ar_store_thread_t *t, const ar_store_job_t *j);
/** Runs every job already submitted, then stops the thread and closes the store. */
void ar_store_thread_stop(ar_store_thread_t *t);

#endif
