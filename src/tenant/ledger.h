/*
 * ledger.h: the spend ledger of a running server (SPEC section 6). Each finished request's
 * record is appended to the journal (store/journal.h) and acknowledged once its bytes are
 * in the kernel, so the gateway can hold the end of the answer until then: a process crash
 * or kill -9 loses no record, a machine crash at most storage.spend_fsync_interval. The
 * store thread then reads the journal back and applies it to the database in batches
 * (idempotent by record id) and deletes the segments it has applied; memory does not grow
 * when the database falls behind, the journal on disk does. At open, whatever an earlier
 * run left in the journal is applied first.
 */
#ifndef AR_TENANT_LEDGER_H
#define AR_TENANT_LEDGER_H

#include "store/spend.h"
#include "store/thread.h"

typedef struct ar_ledger ar_ledger_t;

/**
 * The journal directory for a database URL: PATH.spend next to a SQLite file, "" for an
 * in-memory database (records then go straight to the store, not durably).
 */
void ar_ledger_dir_for(const char *database_url, char *out, size_t outlen);
/**
 * Replays what journal_dir holds into the store (through st, waiting for it), then opens
 * the journal for new records. @return 0, or an AR_E* with err set.
 */
int ar_ledger_open(ar_store_thread_t *st, const char *journal_dir, int64_t fsync_interval_ms,
                   ar_ledger_t **out, char *err, size_t errlen);
/**
 * Appends r (encoded now; r is not kept). done(ud, err) runs on the journal thread once the
 * record's bytes were handed to the kernel (err 0) or could not be (AR_EIO). Any thread.
 * @return 0, or AR_ESHUTDOWN after close began (done is not called).
 */
int ar_ledger_append(ar_ledger_t *l, const ar_spend_t *r, void (*done)(void *ud, int err),
                     void *ud);
/**
 * Queues the application of whatever the journal holds beyond what was applied. The
 * ledger applies on its own once a backlog builds up; a timer calls this so that a quiet
 * server's records reach the database soon too. Any thread.
 */
void ar_ledger_kick(ar_ledger_t *l);
/**
 * ar_ledger_append for cnt records already encoded (ar_spend_encode, one line each) in
 * text: one journal entry, one done(ud, err) for all of them. Any thread.
 */
int ar_ledger_append_lines(ar_ledger_t *l, const char *text, size_t len, size_t cnt,
                           void (*done)(void *ud, int err), void *ud);
/** Records replayed at open (for the log and tests). */
size_t ar_ledger_replayed(const ar_ledger_t *l);

/* What the ledger did since it opened, for /health and /metrics. */
typedef struct ar_ledger_stats {
    uint64_t written;      /* records handed to the kernel */
    uint64_t write_errors; /* records the journal could not write */
    uint64_t applied;      /* records the database took (replayed ones included) */
    uint64_t apply_errors; /* batches the database refused (they stay in the journal) */
    uint64_t replayed;
} ar_ledger_stats_t;
/** Any thread. */
void ar_ledger_stats(ar_ledger_t *l, ar_ledger_stats_t *out);
/**
 * Writes what is queued, syncs, applies everything to the store, and frees. The store
 * thread must still run; it is not stopped.
 */
void ar_ledger_close(ar_ledger_t *l);

#endif
