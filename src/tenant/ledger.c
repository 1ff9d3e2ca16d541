/*
 * ledger.c: see ledger.h. The journal thread reports each batch it wrote; the first report
 * after an apply queues one apply job on the store thread, which reads the journal from
 * where the last one stopped up to the newest report, in slices of bounded size, and
 * commits a slice's offset only once the database took it. A failed apply loses nothing:
 * the records stay in the journal and the next report (or the next start) applies them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "store/journal.h"
#include "tenant/ledger.h"

#define SLICE_BYTES (256u << 10) /* records held in memory by one apply step at most */
/* The journal is applied when this much is waiting, or when ar_ledger_kick says so (a
 * timer): large batches make the database's share of each record small (one transaction,
 * one file open per batch, not per group commit). */
#define APPLY_BACKLOG_BYTES (512u << 10)
#define BATCH_MAX 512

struct ar_ledger {
    ar_store_thread_t *st;
    ar_journal_t *j; /* NULL: in-memory database, records go straight to the store */
    char dir[1024];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t w_seg, w_end; /* the journal has written up to here (mu) */
    uint64_t q_seg, q_end; /* the last apply job was queued for up to here (mu) */
    bool apply_queued;     /* (mu) */
    bool closing_done;     /* (mu) the final apply ran */
    int replay_rc;         /* (mu) */
    bool replay_done;      /* (mu) */
    _Atomic uint64_t applied, apply_errors, direct_written;
    /* the store thread's own */
    uint64_t a_seg, a_off; /* applied up to here */
    size_t replayed;
    char replay_err[256];
};

void ar_ledger_dir_for(const char *url, char *out, size_t outlen)
{
    if (strncmp(url, "sqlite://", 9) == 0) {
        const char *path = url + 9;
        if (strcmp(path, ":memory:") == 0)
            snprintf(out, outlen, "%s", "");
        else
            snprintf(out, outlen, "%s.spend", path);
        return;
    }
    snprintf(out, outlen, "%s", "./airouter.spend");
}

/* ---- applying (store thread) ---- */

typedef struct batch {
    ar_spend_t recs[BATCH_MAX];
    size_t cnt;
    size_t bad;
} batch_t;

static void batch_clear(batch_t *b)
{
    for (size_t i = 0; i < b->cnt; i++)
        ar_spend_dispose(&b->recs[i]);
    b->cnt = 0;
}

static int on_line(void *ud, const char *line, size_t len)
{
    batch_t *b = ud;
    if (b->cnt == BATCH_MAX)
        return AR_ETOOBIG; /* the slice ends here; the rest is read next time */
    if (ar_spend_decode(line, len, &b->recs[b->cnt]) != 0) {
        b->bad++; /* not a record (a torn line another run left): skipped, said once */
        return 0;
    }
    b->cnt++;
    return 0;
}

/*
 * Applies segment seg from *off up to end (0: its end of file), slice by slice.
 * @return 0 (then *off is where reading stopped), or AR_EIO when the database refused a
 * batch (*off stays before it).
 */
static int apply_segment(ar_store_t *s, ar_ledger_t *l, uint64_t seg, uint64_t *off, uint64_t end,
                         size_t *applied)
{
    batch_t *b = ar_xcalloc(1, sizeof(*b));
    int rc = 0;
    for (;;) {
        uint64_t next = *off;
        uint64_t stop = *off + SLICE_BYTES;
        if (end && stop > end)
            stop = end;
        int rrc = ar_journal_read(l->dir, seg, &next, stop, on_line, b);
        if (rrc != 0 && rrc != AR_ETOOBIG) {
            /* a segment that vanished or cannot be read: nothing more to take from it */
            batch_clear(b);
            break;
        }
        if (b->cnt) {
            char err[256] = "";
            size_t inserted = 0;
            if (ar_store_spend_apply(s, b->recs, b->cnt, &inserted, err, sizeof(err)) != 0) {
                atomic_fetch_add(&l->apply_errors, 1);
                AR_LOG(AR_LOG_ERROR, NULL,
                       "ledger: applying %zu spend records failed (%s); they stay in the journal",
                       b->cnt, err);
                batch_clear(b);
                rc = AR_EIO;
                break;
            }
            *applied += b->cnt;
            atomic_fetch_add(&l->applied, b->cnt);
        }
        if (b->bad)
            AR_LOG(AR_LOG_WARN, NULL,
                   "ledger: %zu unreadable journal lines skipped in segment %llu", b->bad,
                   (unsigned long long)seg);
        b->bad = 0;
        bool progressed = next != *off || b->cnt;
        batch_clear(b);
        *off = next;
        if (!progressed || (end && *off >= end))
            break;
    }
    ar_free(b);
    return rc;
}

/* Applies everything up to (seg, end): older segments whole (then deleted), seg to end. */
static int apply_upto(ar_store_t *s, ar_ledger_t *l, uint64_t seg, uint64_t end)
{
    size_t applied = 0;
    if (l->a_seg == 0) {
        l->a_seg = seg;
        l->a_off = 0;
    }
    while (l->a_seg < seg) {
        if (apply_segment(s, l, l->a_seg, &l->a_off, 0, &applied) != 0)
            return AR_EIO;
        ar_journal_remove(l->dir, l->a_seg);
        l->a_seg++;
        l->a_off = 0;
    }
    if (l->a_off < end && apply_segment(s, l, seg, &l->a_off, end, &applied) != 0)
        return AR_EIO;
    return 0;
}

static void apply_work(ar_store_t *s, void *arg)
{
    ar_ledger_t *l = arg;
    pthread_mutex_lock(&l->mu);
    uint64_t seg = l->w_seg, end = l->w_end;
    l->apply_queued = false;
    pthread_mutex_unlock(&l->mu);
    apply_upto(s, l, seg, end);
}

/* Under l->mu: whether an apply job should be queued now; records what it will cover. */
static bool take_apply(ar_ledger_t *l, bool whatever_is_waiting)
{
    if (l->apply_queued || (l->w_seg == l->q_seg && l->w_end == l->q_end))
        return false;
    bool big = l->w_seg != l->q_seg || l->w_end - l->q_end >= APPLY_BACKLOG_BYTES;
    if (!big && !whatever_is_waiting)
        return false;
    l->apply_queued = true;
    l->q_seg = l->w_seg;
    l->q_end = l->w_end;
    return true;
}

static void queue_apply(ar_ledger_t *l)
{
    ar_store_job_t j = {apply_work, NULL, NULL, NULL, l, true};
    if (ar_store_thread_submit(l->st, &j) != 0) {
        pthread_mutex_lock(&l->mu);
        l->apply_queued = false; /* stopping: close applies what is left */
        pthread_mutex_unlock(&l->mu);
    }
}

/* Journal thread: a batch is in the kernel. */
static void on_written(void *ud, uint64_t seg, uint64_t end)
{
    ar_ledger_t *l = ud;
    pthread_mutex_lock(&l->mu);
    l->w_seg = seg;
    l->w_end = end;
    bool queue = take_apply(l, false);
    pthread_mutex_unlock(&l->mu);
    if (queue)
        queue_apply(l);
}

void ar_ledger_kick(ar_ledger_t *l)
{
    if (!l || !l->j)
        return;
    pthread_mutex_lock(&l->mu);
    bool queue = take_apply(l, true);
    pthread_mutex_unlock(&l->mu);
    if (queue)
        queue_apply(l);
}

/* ---- replay at open (store thread) ---- */

static void replay_work(ar_store_t *s, void *arg)
{
    ar_ledger_t *l = arg;
    uint64_t *segs = NULL;
    size_t cnt = 0;
    int rc = ar_journal_segments(l->dir, &segs, &cnt);
    if (rc != 0)
        snprintf(l->replay_err, sizeof(l->replay_err), "cannot list the journal %.150s", l->dir);
    for (size_t i = 0; i < cnt && rc == 0; i++) {
        uint64_t off = 0;
        rc = apply_segment(s, l, segs[i], &off, 0, &l->replayed);
        if (rc != 0)
            snprintf(l->replay_err, sizeof(l->replay_err),
                     "the database refused spend records of the journal %.150s", l->dir);
        else
            ar_journal_remove(l->dir, segs[i]);
    }
    ar_free(segs);
    pthread_mutex_lock(&l->mu);
    l->replay_rc = rc;
    l->replay_done = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* Runs work on the store thread and waits until it set flag (under l->mu). */
static int run_and_wait(ar_ledger_t *l, void (*work)(ar_store_t *, void *), bool *flag)
{
    ar_store_job_t j = {work, NULL, NULL, NULL, l, true};
    int rc = ar_store_thread_submit(l->st, &j);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&l->mu);
    while (!*flag)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int ar_ledger_open(ar_store_thread_t *st, const char *journal_dir, int64_t fsync_interval_ms,
                   ar_ledger_t **out, char *err, size_t errlen)
{
    ar_ledger_t *l = ar_xcalloc(1, sizeof(*l));
    l->st = st;
    snprintf(l->dir, sizeof(l->dir), "%s", journal_dir ? journal_dir : "");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (l->dir[0]) {
        int rc = run_and_wait(l, replay_work, &l->replay_done);
        if (rc == 0)
            rc = l->replay_rc;
        if (rc != 0) {
            snprintf(err, errlen, "ledger: %s",
                     l->replay_err[0] ? l->replay_err : "the store thread is not running");
            ar_ledger_close(l);
            return rc;
        }
        ar_journal_opts_t o = {.dir = l->dir,
                               .fsync_interval_ms = fsync_interval_ms,
                               .on_written = on_written,
                               .ud = l};
        rc = ar_journal_open(&o, &l->j, err, errlen);
        if (rc != 0) {
            ar_ledger_close(l);
            return rc;
        }
        if (l->replayed)
            AR_LOG(AR_LOG_INFO, NULL, "ledger: %zu spend records replayed from %s", l->replayed,
                   l->dir);
    }
    *out = l;
    return 0;
}

size_t ar_ledger_replayed(const ar_ledger_t *l)
{
    return l->replayed;
}

/* ---- in-memory databases: no journal ---- */

typedef struct direct {
    ar_spend_t r;
    ar_ledger_t *l;
} direct_t;

static void direct_work(ar_store_t *s, void *arg)
{
    direct_t *d = arg;
    char err[256] = "";
    size_t inserted = 0;
    if (ar_store_spend_apply(s, &d->r, 1, &inserted, err, sizeof(err)) != 0) {
        atomic_fetch_add(&d->l->apply_errors, 1);
        AR_LOG(AR_LOG_ERROR, NULL, "ledger: a spend record was refused: %s", err);
    } else {
        atomic_fetch_add(&d->l->applied, 1);
    }
    ar_spend_dispose(&d->r);
    ar_free(d);
}

static int append_direct(ar_ledger_t *l, const ar_spend_t *r)
{
    /* a copy through the codec: the record owns its strings */
    ar_buf_t line;
    ar_buf_init(&line, 1u << 20);
    direct_t *d = ar_xcalloc(1, sizeof(*d));
    d->l = l;
    int rc = ar_spend_encode(r, &line);
    rc = rc ? rc : ar_spend_decode(line.ptr, line.len ? line.len - 1 : 0, &d->r);
    ar_buf_dispose(&line);
    ar_store_job_t j = {direct_work, NULL, NULL, NULL, d, true};
    rc = rc ? rc : ar_store_thread_submit(l->st, &j);
    if (rc != 0) {
        ar_spend_dispose(&d->r);
        ar_free(d);
    }
    return rc;
}

int ar_ledger_append(ar_ledger_t *l, const ar_spend_t *r, void (*done)(void *ud, int err), void *ud)
{
    if (!l->j) {
        int rc = append_direct(l, r);
        if (rc == 0) {
            atomic_fetch_add(&l->direct_written, 1);
            done(ud, 0);
        }
        return rc;
    }
    ar_buf_t line;
    ar_buf_init(&line, 1u << 20);
    int rc = ar_spend_encode(r, &line);
    if (rc == 0)
        rc = ar_journal_append(l->j, line.ptr, line.len, done, ud);
    ar_buf_dispose(&line);
    return rc;
}

void ar_ledger_stats(ar_ledger_t *l, ar_ledger_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (l->j) {
        ar_journal_stats_t js;
        ar_journal_stats(l->j, &js);
        out->written = js.written;
        out->write_errors = js.failed;
    } else {
        out->written = atomic_load(&l->direct_written);
    }
    out->applied = atomic_load(&l->applied);
    out->apply_errors = atomic_load(&l->apply_errors);
    out->replayed = l->replayed;
}

int ar_ledger_append_lines(ar_ledger_t *l, const char *text, size_t len, size_t cnt,
                           void (*done)(void *ud, int err), void *ud)
{
    if (l->j)
        return ar_journal_append_lines(l->j, text, len, cnt, done, ud);
    /* in-memory database: each record to the store as it is */
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        direct_t *d = ar_xcalloc(1, sizeof(*d));
        d->l = l;
        ar_store_job_t j = {direct_work, NULL, NULL, NULL, d, true};
        if (ar_spend_decode(p, n, &d->r) != 0 || ar_store_thread_submit(l->st, &j) != 0) {
            ar_spend_dispose(&d->r);
            ar_free(d);
        } else {
            atomic_fetch_add(&l->direct_written, 1);
        }
        p += n + 1;
    }
    done(ud, 0);
    return 0;
}

/* ---- close ---- */

static void final_work(ar_store_t *s, void *arg)
{
    ar_ledger_t *l = arg;
    pthread_mutex_lock(&l->mu);
    uint64_t seg = l->w_seg, end = l->w_end;
    pthread_mutex_unlock(&l->mu);
    if (seg && apply_upto(s, l, seg, end) == 0 && l->a_off >= end)
        ar_journal_remove(l->dir, seg); /* everything is in the database */
    pthread_mutex_lock(&l->mu);
    l->closing_done = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void ar_ledger_close(ar_ledger_t *l)
{
    if (!l)
        return;
    if (l->j) {
        ar_journal_close(l->j); /* its last reports queue their apply jobs */
        l->j = NULL;
        if (run_and_wait(l, final_work, &l->closing_done) != 0)
            AR_LOG(AR_LOG_WARN, NULL,
                   "ledger: the store stopped first; the journal is applied "
                   "at the next start");
    }
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    ar_free(l);
}
