/*
 * journal.c: the spend journal's writer thread and its segment files. Appenders copy their
 * line into a record, queue it under a short mutex and return; the "ar-journal" thread
 * takes everything queued at once (group commit), writes it with writev, reports each
 * record's outcome. fdatasync runs on a timer in a second thread, "ar-jsync", so a slow disk
 * never delays a write (a quiet journal still syncs within the interval). A failed write is cut back to the last whole line, so a segment never holds a
 * half line followed by good ones. Reading, listing and removing segments work on the files
 * alone: they need no open journal and hold no record in memory. It never parses a record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/journal.h"

#define SEGMENT_MAX_DEFAULT (16ull << 20)
/* Records of up to SLOT bytes live in recycled slots (a spend line is a few hundred bytes),
 * so steady state allocates nothing per record; at most FREE_MAX slots are kept. */
#define SLOT 512
#define FREE_MAX 1024
#define IOV_BATCH 256
#define READ_CHUNK (64u << 10)

typedef struct rec {
    struct rec *next;
    void (*done)(void *ud, int err);
    void *done_ud;
    size_t len, cap;
    size_t lines; /* records in it: one, or a group (ar_journal_append_lines) */
    char line[];
} rec_t;

struct ar_journal {
    char *dir;
    int64_t fsync_interval_ms;
    uint64_t segment_max_bytes;
    void (*on_written)(void *ud, uint64_t segment, uint64_t end_offset);
    void *ud;
    int lock_fd;
    pthread_t thread;

    pthread_mutex_t mu; /* guards what follows, up to the writer's own state */
    pthread_cond_t cond;
    rec_t *head, *tail;
    rec_t *free;
    size_t free_cnt;
    bool stopping;
    ar_journal_stats_t st;

    /* the writer thread's own */
    int fd;               /* the segment being written; -1: not open (yet, or after a roll) */
    uint64_t seg;         /* its number */
    uint64_t end;         /* its length in whole, good lines */
    bool unsynced;        /* written since the last fdatasync */
    uint64_t sync_due_us; /* monotonic time by which that must be synced */
    bool failing;         /* in a burst of write failures (logged once) */
    uint64_t burst_failed;

    /* The syncer (fsync_interval_ms > 0): a thread that fdatasyncs behind the writer, so a
     * slow sync never holds up a write, nor the answers that wait for their record to be
     * written. It syncs a dup of the segment's fd; the writer syncs a segment itself only
     * when it closes it. */
    bool has_syncer;
    pthread_t syncer;
    pthread_mutex_t smu; /* guards what follows */
    pthread_cond_t scond;
    int sfd;          /* a dup of the segment being written, -1: none */
    bool sdirty;      /* written since the last sync */
    uint64_t sdue_us; /* when that must be synced */
    bool sstop;
    _Atomic bool sfailed; /* a sync failed: the writer starts a new segment */
};

static const ar_log_ctx_t lctx = {.action = "writing the spend journal"};

/* System calls the unit tests replace to inject failures. */
static ssize_t (*sys_writev)(int fd, const struct iovec *iov, int cnt) = writev;
static int (*sys_ftruncate)(int fd, off_t len) = ftruncate;

static void seg_path(char *out, size_t cap, const char *dir, uint64_t seg)
{
    snprintf(out, cap, "%s/%020" PRIu64 ".log", dir, seg);
}

/* ---- directory helpers ---- */

static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return errno;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return errno;
    return 0;
}

/* A new file's name is durable only once its directory is synced. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

static int parse_seg_name(const char *name, uint64_t *seg)
{
    size_t n = strlen(name);
    if (n != 24 || strcmp(name + 20, ".log") != 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *seg = v;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int ar_journal_segments(const char *dir, uint64_t **segs, size_t *cnt)
{
    *segs = NULL;
    *cnt = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : AR_EIO;
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (!e)
            break;
        uint64_t seg;
        if (parse_seg_name(e->d_name, &seg) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = ar_xrealloc(v, cap * sizeof(*v));
        }
        v[n++] = seg;
    }
    int rd_err = errno;
    closedir(d);
    if (rd_err) {
        ar_free(v);
        return AR_EIO;
    }
    if (n)
        qsort(v, n, sizeof(*v), cmp_u64);
    *segs = v;
    *cnt = n;
    return 0;
}

int ar_journal_remove(const char *dir, uint64_t seg)
{
    char path[PATH_MAX];
    seg_path(path, sizeof(path), dir, seg);
    if (unlink(path) == 0)
        return 0;
    return errno == ENOENT ? AR_ENOTFOUND : AR_EIO;
}

/* ---- reading ---- */

int ar_journal_read(const char *dir, uint64_t seg, uint64_t *off, uint64_t max_end,
                    int (*line_cb)(void *ud, const char *line, size_t len), void *ud)
{
    char path[PATH_MAX];
    seg_path(path, sizeof(path), dir, seg);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? AR_ENOTFOUND : AR_EIO;
    size_t cap = READ_CHUNK;
    char *buf = ar_xmalloc(cap);
    size_t have = 0;       /* bytes in buf; buf[0] is at file offset pos */
    uint64_t pos = *off;   /* always the start of a line */
    bool skipping = false; /* inside a line longer than AR_JOURNAL_LINE_MAX */
    int rc = 0;
    for (;;) {
        if (have == cap) {
            /* a line fills the buffer: grow up to the longest line taken, then skip */
            if (cap < AR_JOURNAL_LINE_MAX + 1) {
                cap = cap * 2 > AR_JOURNAL_LINE_MAX + 1 ? AR_JOURNAL_LINE_MAX + 1 : cap * 2;
                buf = ar_xrealloc(buf, cap);
            } else {
                skipping = true;
                pos += have;
                have = 0;
            }
        }
        size_t want = cap - have;
        if (max_end) {
            if (pos + have >= max_end)
                break;
            if (max_end - (pos + have) < want)
                want = (size_t)(max_end - (pos + have));
        }
        ssize_t n = pread(fd, buf + have, want, (off_t)(pos + have));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = AR_EIO;
            break;
        }
        if (n == 0)
            break;
        size_t scan = have;
        have += (size_t)n;
        size_t start = 0;
        for (;;) {
            char *nl = memchr(buf + scan, '\n', have - scan);
            if (!nl)
                break;
            size_t end = (size_t)(nl - buf);
            if (skipping) {
                AR_LOG(AR_LOG_WARN, &lctx,
                       "spend journal %s: skipped a line longer than %u bytes in segment %" PRIu64,
                       dir, AR_JOURNAL_LINE_MAX, seg);
                skipping = false;
            } else {
                rc = line_cb(ud, buf + start, end - start);
                if (rc)
                    goto out;
            }
            start = end + 1;
            scan = start;
            *off = pos + start;
        }
        if (skipping) {
            /* nothing of the long line is worth keeping */
            pos += have;
            have = 0;
        } else if (start) {
            memmove(buf, buf + start, have - start);
            have -= start;
            pos += start;
        }
    }
out:
    ar_free(buf);
    close(fd);
    return rc;
}

/* ---- the writer thread ---- */

/* Called with unsynced data only. */
static void sync_segment(ar_journal_t *j, uint64_t *syncs)
{
    j->unsynced = false;
    if (j->fd < 0)
        return;
    (*syncs)++;
    if (fdatasync(j->fd) == 0)
        return;
    /* After a failed fdatasync the kernel may have dropped the dirty pages: this file can no
     * longer be trusted to hold what it was given, so new records go to a fresh one. */
    AR_LOG(AR_LOG_ERROR, &lctx,
           "spend journal %s: fdatasync of segment %" PRIu64 " failed (%s); records written "
           "since the last sync may be lost if the machine crashes; starting a new segment",
           j->dir, j->seg, strerror(errno));
    close(j->fd);
    j->fd = -1;
    j->seg++;
    j->end = 0;
}

/* Syncs and closes the segment; the next write creates the one after it. */
static void roll(ar_journal_t *j, uint64_t *syncs)
{
    if (j->has_syncer) {
        pthread_mutex_lock(&j->smu);
        bool dirty = j->sdirty;
        j->sdirty = false;
        if (j->sfd >= 0)
            close(j->sfd);
        j->sfd = -1;
        pthread_mutex_unlock(&j->smu);
        j->unsynced = dirty; /* synced below, by the writer, before the segment closes */
    }
    if (j->unsynced)
        sync_segment(j, syncs);
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
        j->seg++;
        j->end = 0;
    }
}

/* Creates segment j->seg: a segment is never reopened for appending, so a torn tail left
 * by a crash is never followed by new lines. */
static int open_segment(ar_journal_t *j)
{
    char path[PATH_MAX];
    seg_path(path, sizeof(path), j->dir, j->seg);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    j->fd = fd;
    j->end = 0;
    if (j->has_syncer) {
        pthread_mutex_lock(&j->smu);
        if (j->sfd >= 0)
            close(j->sfd);
        j->sfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        pthread_mutex_unlock(&j->smu);
    }
    int e = sync_dir(j->dir);
    if (e)
        AR_LOG(AR_LOG_WARN, &lctx, "spend journal %s: syncing the directory failed (%s)", j->dir,
               strerror(e));
    return 0;
}

/* What one batch came to. */
typedef struct outcome {
    size_t nwhole;     /* leading records written whole */
    int err;           /* errno of the failure that stopped the rest; 0: none */
    uint64_t seg, end; /* where the good lines end (valid when nwhole) */
} outcome_t;

/* Writes batch (a list) at the end of the segment, looping over partial writes. */
static outcome_t write_batch(ar_journal_t *j, rec_t *batch, uint64_t *syncs)
{
    outcome_t o = {.seg = j->seg};
    if (j->fd < 0) {
        o.err = open_segment(j);
        if (o.err)
            return o;
    }
    rec_t *r = batch;
    size_t roff = 0;    /* bytes of r already written */
    uint64_t total = 0; /* bytes of the batch written */
    uint64_t whole = 0; /* bytes of the records written whole */
    while (r) {
        struct iovec iov[IOV_BATCH];
        int cnt = 0;
        for (rec_t *q = r; q && cnt < IOV_BATCH; q = q->next, cnt++) {
            size_t skip = q == r ? roff : 0;
            iov[cnt].iov_base = q->line + skip;
            iov[cnt].iov_len = q->len - skip;
        }
        ssize_t n = sys_writev(j->fd, iov, cnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            o.err = n < 0 ? errno : EIO;
            break;
        }
        total += (uint64_t)n;
        size_t left = (size_t)n;
        while (r && left >= r->len - roff) {
            left -= r->len - roff;
            whole += r->len;
            o.nwhole++;
            r = r->next;
            roff = 0;
        }
        roff += left;
    }
    j->end += whole;
    o.seg = j->seg;
    o.end = j->end;
    if (whole && j->has_syncer) {
        pthread_mutex_lock(&j->smu);
        if (!j->sdirty) {
            j->sdirty = true;
            j->sdue_us = ar_now_us() + (uint64_t)j->fsync_interval_ms * 1000u;
            pthread_cond_signal(&j->scond);
        }
        pthread_mutex_unlock(&j->smu);
    } else if (whole && !j->unsynced) {
        j->unsynced = true;
        j->sync_due_us =
            ar_now_us() + (uint64_t)(j->fsync_interval_ms > 0 ? j->fsync_interval_ms : 0) * 1000u;
    }
    /* Cut the half line off, or the next good line would be glued to it. If that fails
     * too, the segment ends torn: it is closed and later records start a new one. */
    if (total > whole && sys_ftruncate(j->fd, (off_t)j->end) != 0) {
        AR_LOG(AR_LOG_ERROR, &lctx,
               "spend journal %s: cannot cut a failed write off segment %" PRIu64
               " (%s); starting a new segment",
               j->dir, j->seg, strerror(errno));
        roll(j, syncs);
    }
    return o;
}

static void handle_batch(ar_journal_t *j, rec_t *batch, ar_journal_stats_t *delta)
{
    if (atomic_exchange(&j->sfailed, false) && j->fd >= 0) {
        /* the kernel may have dropped this file's dirty pages: it is not trusted again */
        close(j->fd);
        j->fd = -1;
        j->seg++;
        j->end = 0;
    }
    outcome_t o = write_batch(j, batch, &delta->syncs);
    size_t cnt = 0;
    for (rec_t *r = batch; r; r = r->next)
        cnt++;
    size_t nfailed = cnt - o.nwhole;
    if (o.err) {
        if (!j->failing) {
            AR_LOG(AR_LOG_ERROR, &lctx,
                   "spend journal %s: writing segment %" PRIu64 " failed (%s); %zu records "
                   "not journaled; later records are tried again",
                   j->dir, o.seg, strerror(o.err), nfailed);
            j->failing = true;
            j->burst_failed = 0;
        }
        j->burst_failed += nfailed;
    } else if (j->failing) {
        AR_LOG(AR_LOG_WARN, &lctx,
               "spend journal %s: writing works again; %" PRIu64 " records failed meanwhile",
               j->dir, j->burst_failed);
        j->failing = false;
    }
    size_t i = 0;
    uint64_t lines_ok = 0, lines_failed = 0;
    for (rec_t *r = batch; r; r = r->next, i++) {
        if (i < o.nwhole)
            lines_ok += r->lines;
        else
            lines_failed += r->lines;
        if (r->done)
            r->done(r->done_ud, i < o.nwhole ? 0 : AR_EIO);
    }
    delta->writes++;
    delta->written += lines_ok;
    delta->failed += lines_failed;
    if (o.nwhole && j->on_written)
        j->on_written(j->ud, o.seg, o.end);
    if (j->fd >= 0 && j->end >= j->segment_max_bytes)
        roll(j, &delta->syncs);
}

/* Puts a written batch's records back on the free list or frees them. Under mu. */
static void recycle(ar_journal_t *j, rec_t *batch)
{
    while (batch) {
        rec_t *r = batch;
        batch = r->next;
        if (r->cap == SLOT && j->free_cnt < FREE_MAX) {
            r->next = j->free;
            j->free = r;
            j->free_cnt++;
        } else {
            ar_free(r);
        }
    }
}

static void *run(void *arg)
{
    ar_journal_t *j = arg;
    pthread_setname_np(pthread_self(), "ar-journal");
    rec_t *batch = NULL;
    ar_journal_stats_t delta = {0};
    pthread_mutex_lock(&j->mu);
    for (;;) {
        recycle(j, batch);
        j->st.written += delta.written;
        j->st.failed += delta.failed;
        j->st.writes += delta.writes;
        j->st.syncs += delta.syncs;
        j->st.segment = j->seg;
        j->st.end_offset = j->end;
        memset(&delta, 0, sizeof(delta));
        while (!j->head && !j->stopping) {
            if (!j->unsynced) {
                pthread_cond_wait(&j->cond, &j->mu);
                continue;
            }
            uint64_t due = j->sync_due_us;
            if (ar_now_us() >= due)
                break;
            struct timespec ts = {.tv_sec = (time_t)(due / 1000000u),
                                  .tv_nsec = (long)(due % 1000000u) * 1000};
            pthread_cond_timedwait(&j->cond, &j->mu, &ts);
        }
        batch = j->head;
        j->head = j->tail = NULL;
        j->st.queued = 0;
        bool stop = j->stopping;
        pthread_mutex_unlock(&j->mu);

        if (batch)
            handle_batch(j, batch, &delta);
        bool last = !batch && stop;
        if (j->unsynced && (j->fsync_interval_ms <= 0 || last || ar_now_us() >= j->sync_due_us))
            sync_segment(j, &delta.syncs);
        pthread_mutex_lock(&j->mu);
        if (last)
            break;
    }
    j->st.syncs += delta.syncs;
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static void *run_syncer(void *arg)
{
    ar_journal_t *j = arg;
    pthread_setname_np(pthread_self(), "ar-jsync");
    pthread_mutex_lock(&j->smu);
    while (!j->sstop) {
        if (!j->sdirty || j->sfd < 0) {
            pthread_cond_wait(&j->scond, &j->smu);
            continue;
        }
        uint64_t due = j->sdue_us;
        if (ar_now_us() < due) {
            struct timespec ts = {.tv_sec = (time_t)(due / 1000000u),
                                  .tv_nsec = (long)(due % 1000000u) * 1000};
            pthread_cond_timedwait(&j->scond, &j->smu, &ts);
            continue;
        }
        j->sdirty = false;
        int fd = fcntl(j->sfd, F_DUPFD_CLOEXEC, 0); /* the writer may close sfd meanwhile */
        pthread_mutex_unlock(&j->smu);
        int rc = fd >= 0 ? fdatasync(fd) : -1;
        int e = errno;
        if (fd >= 0)
            close(fd);
        pthread_mutex_lock(&j->mu);
        j->st.syncs++;
        pthread_mutex_unlock(&j->mu);
        if (rc != 0) {
            AR_LOG(AR_LOG_ERROR, &lctx,
                   "spend journal %s: fdatasync failed (%s); records written since the last "
                   "sync may be lost if the machine crashes; starting a new segment",
                   j->dir, strerror(e));
            atomic_store(&j->sfailed, true);
        }
        pthread_mutex_lock(&j->smu);
    }
    pthread_mutex_unlock(&j->smu);
    return NULL;
}

/* Stops and joins the syncer (the writer has stopped, or never started). */
static void stop_syncer(ar_journal_t *j)
{
    if (!j->has_syncer)
        return;
    pthread_mutex_lock(&j->smu);
    j->sstop = true;
    pthread_cond_signal(&j->scond);
    pthread_mutex_unlock(&j->smu);
    pthread_join(j->syncer, NULL);
    pthread_mutex_destroy(&j->smu);
    pthread_cond_destroy(&j->scond);
    j->has_syncer = false;
}

/* ---- the appenders' side ---- */

int ar_journal_append(ar_journal_t *j, const char *line, size_t len,
                      void (*done)(void *ud, int err), void *done_ud)
{
    if (len == 0 || len > AR_JOURNAL_LINE_MAX || line[len - 1] != '\n' ||
        memchr(line, '\n', len - 1))
        return AR_EINVAL;
    return ar_journal_append_lines(j, line, len, 1, done, done_ud);
}

int ar_journal_append_lines(ar_journal_t *j, const char *lines, size_t len, size_t cnt,
                            void (*done)(void *ud, int err), void *done_ud)
{
    const char *line = lines;
    if (len == 0 || cnt == 0 || line[len - 1] != '\n')
        return AR_EINVAL;
    rec_t *r = NULL;
    pthread_mutex_lock(&j->mu);
    if (j->stopping) {
        pthread_mutex_unlock(&j->mu);
        return AR_ESHUTDOWN;
    }
    if (len <= SLOT && j->free) {
        r = j->free;
        j->free = r->next;
        j->free_cnt--;
    } else {
        /* allocate and copy outside the lock, then come back to queue */
        pthread_mutex_unlock(&j->mu);
        size_t cap = len <= SLOT ? SLOT : len;
        r = ar_xmalloc(sizeof(*r) + cap);
        r->cap = cap;
        pthread_mutex_lock(&j->mu);
        if (j->stopping) {
            pthread_mutex_unlock(&j->mu);
            ar_free(r);
            return AR_ESHUTDOWN;
        }
    }
    memcpy(r->line, line, len);
    r->len = len;
    r->lines = cnt;
    r->done = done;
    r->done_ud = done_ud;
    r->next = NULL;
    if (j->tail) {
        j->tail->next = r;
    } else {
        j->head = r;
        pthread_cond_signal(&j->cond); /* the writer waits only on an empty queue */
    }
    j->tail = r;
    j->st.queued += cnt;
    pthread_mutex_unlock(&j->mu);
    return 0;
}

void ar_journal_stats(ar_journal_t *j, ar_journal_stats_t *out)
{
    pthread_mutex_lock(&j->mu);
    *out = j->st;
    pthread_mutex_unlock(&j->mu);
}

/* ---- open and close ---- */

int ar_journal_open(const ar_journal_opts_t *o, ar_journal_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!o->dir || !*o->dir) {
        snprintf(err, errlen, "spend journal: no directory given");
        return AR_EINVAL;
    }
    int e = mkdir_p(o->dir);
    if (e) {
        snprintf(err, errlen, "spend journal: cannot create %s: %s", o->dir, strerror(e));
        return AR_EIO;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/LOCK", o->dir);
    int lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
        snprintf(err, errlen, "spend journal: cannot write in %s: %s", o->dir, strerror(errno));
        return AR_EIO;
    }
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "spend journal: %s is in use by another journal (%s)", o->dir,
                 errno == EWOULDBLOCK ? "locked" : strerror(errno));
        close(lock_fd);
        return AR_EIO;
    }
    uint64_t *segs = NULL;
    size_t cnt = 0;
    if (ar_journal_segments(o->dir, &segs, &cnt) != 0) {
        snprintf(err, errlen, "spend journal: cannot list %s", o->dir);
        close(lock_fd);
        return AR_EIO;
    }
    uint64_t next = cnt ? segs[cnt - 1] + 1 : 1;
    ar_free(segs);

    ar_journal_t *j = ar_xcalloc(1, sizeof(*j));
    j->dir = ar_xstrdup(o->dir);
    j->fsync_interval_ms = o->fsync_interval_ms;
    j->segment_max_bytes = o->segment_max_bytes ? o->segment_max_bytes : SEGMENT_MAX_DEFAULT;
    j->on_written = o->on_written;
    j->ud = o->ud;
    j->lock_fd = lock_fd;
    j->fd = -1;
    j->seg = next;
    j->st.segment = next;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* ar_now_us's clock */
    pthread_cond_init(&j->cond, &ca);
    j->sfd = -1;
    if (j->fsync_interval_ms > 0) {
        pthread_mutex_init(&j->smu, NULL);
        pthread_cond_init(&j->scond, &ca);
        j->has_syncer = pthread_create(&j->syncer, NULL, run_syncer, j) == 0;
        if (!j->has_syncer) { /* the writer syncs, as with an interval of 0 */
            pthread_mutex_destroy(&j->smu);
            pthread_cond_destroy(&j->scond);
        }
    }
    pthread_condattr_destroy(&ca);
    if (pthread_create(&j->thread, NULL, run, j) != 0) {
        snprintf(err, errlen, "spend journal: cannot start its thread");
        stop_syncer(j);
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->cond);
        close(lock_fd);
        ar_free(j->dir);
        ar_free(j);
        return AR_EIO;
    }
    *out = j;
    return 0;
}

void ar_journal_close(ar_journal_t *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    stop_syncer(j);
    /* what the syncer had not synced yet: the last sync is the closer's */
    if (j->sdirty && j->fd >= 0 && fdatasync(j->fd) == 0)
        j->st.syncs++;
    if (j->sfd >= 0)
        close(j->sfd);
    if (j->fd >= 0)
        close(j->fd);
    recycle(j, NULL);
    while (j->free) {
        rec_t *r = j->free;
        j->free = r->next;
        ar_free(r);
    }
    close(j->lock_fd);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cond);
    ar_free(j->dir);
    ar_free(j);
}
