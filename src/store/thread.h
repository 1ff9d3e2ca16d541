/*
 * thread.h: the store threads, which own the server's store handles so that database I/O
 * never runs on an event loop. Callers on other threads submit jobs; a job's result comes
 * back through the caller's own post function (on the server: ar_worker_post, so that done
 * runs on the submitting worker's loop).
 *
 * One ar_store_thread_t is a pool: with PostgreSQL up to max_conns threads, each with its
 * own connection (min_conns opened at start, another started when every thread is busy
 * and jobs wait), so that a slow query (a report, a big batch) does not hold up the key
 * lookups behind it. SQLite has one thread whatever is asked (one writer).
 *
 * Ordering: jobs start in submission order, but with more than one thread a later job may
 * run beside an earlier one and finish first. A job marked serial runs alone among serial
 * jobs: after every serial job submitted before it finished, never beside another one
 * (beside unmarked jobs it may run). Mark a job serial when it keeps state between jobs
 * that only one job may touch at a time (the spend ledger's position in its journal, the
 * poller's last-seen change counter). Nothing else in the server relies on one job having
 * finished before a later one starts: a request submits its job and waits for its answer.
 */
#ifndef AR_STORE_THREAD_H
#define AR_STORE_THREAD_H

#include "store/store.h"

typedef struct ar_store_thread ar_store_thread_t;

typedef struct ar_store_job {
    /** Runs on a store thread, with that thread's store. */
    void (*work)(ar_store_t *s, void *arg);
    /** Then handed to post (NULL: nothing comes back). */
    void (*done)(void *arg);
    /** Delivers done(arg) where the submitter wants it; called on the store thread. */
    void (*post)(void *post_ud, void (*done)(void *arg), void *arg);
    void *post_ud;
    void *arg;
    /** Runs after, never beside, the serial jobs submitted before it (see above). */
    bool serial;
} ar_store_job_t;

/** How a pool is started (zeroes: one thread named "ar-store", default timeouts). */
typedef struct ar_store_thread_opts {
    const char *name; /* threads' name, at most 15 characters (the 2nd gets "-2" added) */
    int nice;         /* > 0: background threads that yield the CPU to everything else */
    int min_conns;    /* threads (connections) opened at start; < 1: 1 */
    int max_conns;    /* at most; < min_conns: min_conns. SQLite: always 1 */
    ar_store_opts_t store;
} ar_store_thread_opts_t;

/** Opens the store of url and starts its thread. @return 0, or an AR_E* with err set. */
int ar_store_thread_start(const char *url, ar_store_thread_t **out, char *err, size_t errlen);
/**
 * The same with the thread's name (at most 15 characters) and a niceness added to it: a
 * thread with its own connection for background work (applying the spend ledger) yields
 * the CPU to the workers and to the store thread that answers them.
 */
int ar_store_thread_start_as(const char *url, const char *name, int nice, ar_store_thread_t **out,
                             char *err, size_t errlen);
/**
 * Starts a pool on url: min_conns stores opened here (an error if any fails), more opened
 * by their own threads later on demand (one that fails is logged and tried again no sooner
 * than a second later: the jobs wait for the threads there are).
 */
int ar_store_thread_start_opts(const char *url, const ar_store_thread_opts_t *o,
                               ar_store_thread_t **out, char *err, size_t errlen);
/** Queues a job. Any thread. @return 0, or AR_ESHUTDOWN once stopping began (the job is
 *  not run). */
int ar_store_thread_submit(ar_store_thread_t *t, const ar_store_job_t *j);
/** The threads started so far (connecting ones included). */
int ar_store_thread_count(ar_store_thread_t *t);
/** Runs every job already submitted, then stops the threads and closes their stores. */
void ar_store_thread_stop(ar_store_thread_t *t);

#endif
