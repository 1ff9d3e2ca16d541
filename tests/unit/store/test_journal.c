/*
 * test_journal.c: the spend journal on real files in a temporary directory. Records from
 * several threads all come back exactly once and in each thread's order; a torn tail is
 * never consumed and never appended to; segments roll, list in order and are removed;
 * close drains; a quiet journal syncs within its interval; on_written matches the files;
 * failed writes are cut back to whole lines; the reader copes with long lines. The .c is
 * included so the tests can replace its system calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc_mt.h"
#include "store/journal.c"
#include "testutil.h"

static char dir[64];
static char url[200];

static int setup(void **state)
{
    (void)state;
    ar_test_store_dir("ar-journal", dir, url);
    sys_writev = writev;
    sys_ftruncate = ftruncate;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ar_test_rmdir(dir);
    sys_writev = writev;
    sys_ftruncate = ftruncate;
    return 0;
}

/* ---- helpers ---- */

/* What the journal thread reported: done outcomes and on_written positions. */
typedef struct probe {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int ok, failed;
    uint64_t seg[4096], end[4096];
    size_t nwritten;
} probe_t;

static probe_t *probe_new(void)
{
    probe_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    return p;
}

static void probe_free(probe_t *p)
{
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
    free(p);
}

static void on_done(void *ud, int err)
{
    probe_t *p = ud;
    pthread_mutex_lock(&p->mu);
    if (err == 0)
        p->ok++;
    else
        p->failed++;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

static void on_written(void *ud, uint64_t seg, uint64_t end)
{
    probe_t *p = ud;
    pthread_mutex_lock(&p->mu);
    if (p->nwritten < 4096) {
        p->seg[p->nwritten] = seg;
        p->end[p->nwritten] = end;
    }
    p->nwritten++;
    pthread_mutex_unlock(&p->mu);
}

/* Waits (at most 10 s) until n done callbacks came. */
static void probe_wait(probe_t *p, int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&p->mu);
    while (p->ok + p->failed < n) {
        if (pthread_cond_timedwait(&p->cond, &p->mu, &dl) != 0)
            break;
    }
    int got = p->ok + p->failed;
    pthread_mutex_unlock(&p->mu);
    assert_int_equal(got, n);
}

static ar_journal_t *open_journal(probe_t *p, int64_t fsync_ms, uint64_t seg_max)
{
    ar_journal_opts_t o = {.dir = dir,
                           .fsync_interval_ms = fsync_ms,
                           .segment_max_bytes = seg_max,
                           .on_written = on_written,
                           .ud = p};
    ar_journal_t *j = NULL;
    char err[256] = "";
    int rc = ar_journal_open(&o, &j, err, sizeof(err));
    if (rc)
        fail_msg("open: %s", err);
    return j;
}

static void append(ar_journal_t *j, probe_t *p, const char *text)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "%s\n", text);
    assert_int_equal(ar_journal_append(j, line, (size_t)n, on_done, p), 0);
}

/* Every line of every segment, as one string "a|b|c|" per segment, joined by "#". */
typedef struct collected {
    char *text;
    size_t len, cap;
    size_t lines;
} collected_t;

static int collect_cb(void *ud, const char *line, size_t len)
{
    collected_t *c = ud;
    if (c->len + len + 2 > c->cap) {
        c->cap = (c->len + len + 2) * 2;
        c->text = realloc(c->text, c->cap);
        assert_non_null(c->text);
    }
    memcpy(c->text + c->len, line, len);
    c->len += len;
    c->text[c->len++] = '|';
    c->text[c->len] = '\0';
    c->lines++;
    return 0;
}

static uint64_t file_size(uint64_t seg)
{
    char path[PATH_MAX];
    seg_path(path, sizeof(path), dir, seg);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

static void write_file(uint64_t seg, const char *text, size_t len)
{
    char path[PATH_MAX];
    seg_path(path, sizeof(path), dir, seg);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

/* Reads segment seg whole from 0; returns the offset reached. */
static uint64_t read_all(uint64_t seg, collected_t *c)
{
    uint64_t off = 0;
    assert_int_equal(ar_journal_read(dir, seg, &off, 0, collect_cb, c), 0);
    return off;
}

/* The counters once the writer has published at least min_syncs syncs and min_done
 * records (it does so after their callbacks); gives up after 10 s. */
static ar_journal_stats_t stats_when(ar_journal_t *j, uint64_t min_syncs, uint64_t min_done)
{
    ar_journal_stats_t st;
    uint64_t deadline = ar_now_ms() + 10000;
    for (;;) {
        ar_journal_stats(j, &st);
        if ((st.syncs >= min_syncs && st.written + st.failed >= min_done) || ar_now_ms() > deadline)
            return st;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* ---- tests ---- */

enum { THREADS = 4, PER_THREAD = 500 };

typedef struct producer {
    ar_journal_t *j;
    probe_t *p;
    int t;
} producer_t;

/* cmocka's block lists are per thread (alloc_mt.h): a producer, whose appends allocate the
 * records, lives until the journal that frees them is closed. */
static pthread_mutex_t closed_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t closed_cond = PTHREAD_COND_INITIALIZER;
static int closed;

static void *produce(void *arg)
{
    producer_t *pr = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char text[64];
        snprintf(text, sizeof(text), "{\"t\":%d,\"i\":%d}", pr->t, i);
        append(pr->j, pr->p, text);
    }
    pthread_mutex_lock(&closed_mu);
    while (!closed)
        pthread_cond_wait(&closed_cond, &closed_mu);
    pthread_mutex_unlock(&closed_mu);
    return NULL;
}

static void test_threads_exactly_once(void **state)
{
    (void)state;
    probe_t *p = probe_new();
    ar_journal_t *j = open_journal(p, 5, 0);
    pthread_t th[THREADS];
    producer_t pr[THREADS];
    for (int t = 0; t < THREADS; t++) {
        pr[t] = (producer_t){j, p, t};
        assert_int_equal(pthread_create(&th[t], NULL, produce, &pr[t]), 0);
    }
    probe_wait(p, THREADS * PER_THREAD);
    ar_journal_stats_t st = stats_when(j, 0, THREADS * PER_THREAD);
    ar_journal_close(j);
    pthread_mutex_lock(&closed_mu);
    closed = 1;
    pthread_cond_broadcast(&closed_cond);
    pthread_mutex_unlock(&closed_mu);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(st.written, THREADS * PER_THREAD);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.queued, 0);
    assert_true(st.writes >= 1 && st.writes <= THREADS * PER_THREAD);
    assert_int_equal(p->ok, THREADS * PER_THREAD);
    assert_int_equal(p->failed, 0);

    uint64_t *segs;
    size_t cnt;
    assert_int_equal(ar_journal_segments(dir, &segs, &cnt), 0);
    assert_int_equal(cnt, 1);
    assert_int_equal(segs[0], 1);
    collected_t c = {0};
    uint64_t off = read_all(segs[0], &c);
    assert_int_equal(off, file_size(segs[0]));
    assert_int_equal(c.lines, THREADS * PER_THREAD);
    /* each record exactly once, each thread's in its order */
    int next[THREADS] = {0};
    char *s = c.text;
    for (size_t k = 0; k < c.lines; k++) {
        int t, i;
        assert_int_equal(sscanf(s, "{\"t\":%d,\"i\":%d}|", &t, &i), 2);
        assert_true(t >= 0 && t < THREADS);
        assert_int_equal(i, next[t]);
        next[t]++;
        s = strchr(s, '|') + 1;
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(next[t], PER_THREAD);

    /* on_written: one segment, offsets strictly growing, the last one the file's size */
    assert_true(p->nwritten >= 1 && p->nwritten <= 4096);
    for (size_t k = 0; k < p->nwritten; k++) {
        assert_int_equal(p->seg[k], 1);
        if (k)
            assert_true(p->end[k] > p->end[k - 1]);
    }
    assert_int_equal(p->end[p->nwritten - 1], file_size(1));
    free(c.text);
    ar_free(segs);
    probe_free(p);
}

static void test_torn_tail(void **state)
{
    (void)state;
    const char text[] = "{\"a\":1}\n{\"b\":2}\n{\"c\":";
    write_file(7, text, sizeof(text) - 1);
    collected_t c = {0};
    uint64_t off = read_all(7, &c);
    assert_string_equal(c.text, "{\"a\":1}|{\"b\":2}|");
    assert_int_equal(off, 16);
    /* again from there: nothing complete, the offset stays */
    assert_int_equal(ar_journal_read(dir, 7, &off, 0, collect_cb, &c), 0);
    assert_int_equal(off, 16);
    assert_int_equal(c.lines, 2);

    /* a journal opened now writes to a new segment and leaves the torn one alone */
    probe_t *p = probe_new();
    ar_journal_t *j = open_journal(p, 0, 0);
    ar_journal_stats_t st;
    ar_journal_stats(j, &st);
    assert_int_equal(st.segment, 8);
    append(j, p, "{\"d\":4}");
    ar_journal_close(j);
    assert_int_equal(p->ok, 1);
    assert_int_equal(file_size(7), sizeof(text) - 1);
    uint64_t *segs;
    size_t cnt;
    assert_int_equal(ar_journal_segments(dir, &segs, &cnt), 0);
    assert_int_equal(cnt, 2);
    assert_int_equal(segs[0], 7);
    assert_int_equal(segs[1], 8);
    collected_t c8 = {0};
    read_all(8, &c8);
    assert_string_equal(c8.text, "{\"d\":4}|");
    ar_free(segs);
    free(c.text);
    free(c8.text);
    probe_free(p);
}

/* A journal that writes nothing leaves no empty segment. */
static void test_no_empty_segment(void **state)
{
    (void)state;
    probe_t *p = probe_new();
    ar_journal_close(open_journal(p, 0, 0));
    uint64_t *segs;
    size_t cnt;
    assert_int_equal(ar_journal_segments(dir, &segs, &cnt), 0);
    assert_int_equal(cnt, 0);
    assert_null(segs);
    probe_free(p);
}

static void test_rolling_and_remove(void **state)
{
    (void)state;
    probe_t *p = probe_new();
    ar_journal_t *j = open_journal(p, 1000, 64);
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof(text), "{\"n\":%03d,\"pad\":\"xxxx\"}", i); /* 25 bytes + \n */
        append(j, p, text);
        if (i % 3 == 0)
            probe_wait(p, i + 1); /* vary the batches */
    }
    ar_journal_close(j);
    assert_int_equal(p->ok, N);

    uint64_t *segs;
    size_t cnt;
    assert_int_equal(ar_journal_segments(dir, &segs, &cnt), 0);
    assert_true(cnt >= 3);
    collected_t c = {0};
    for (size_t k = 0; k < cnt; k++) {
        assert_int_equal(segs[k], k + 1); /* ascending, no gaps */
        uint64_t size = file_size(segs[k]);
        if (k + 1 < cnt)
            assert_true(size >= 64);
        assert_int_equal(read_all(segs[k], &c), size);
    }
    assert_int_equal(c.lines, N);
    char *s = c.text;
    for (int i = 0; i < N; i++) {
        int n;
        assert_int_equal(sscanf(s, "{\"n\":%d,", &n), 1);
        assert_int_equal(n, i);
        s = strchr(s, '|') + 1;
    }
    /* on_written: segments never go back, offsets grow within one, and each segment's
     * last report is its size */
    for (size_t k = 0; k < p->nwritten; k++) {
        if (k && p->seg[k] == p->seg[k - 1])
            assert_true(p->end[k] > p->end[k - 1]);
        if (k)
            assert_true(p->seg[k] >= p->seg[k - 1]);
        if (k + 1 == p->nwritten || p->seg[k + 1] != p->seg[k])
            assert_int_equal(p->end[k], file_size(p->seg[k]));
    }

    for (size_t k = 0; k < cnt; k++)
        assert_int_equal(ar_journal_remove(dir, segs[k]), 0);
    assert_int_equal(ar_journal_remove(dir, segs[0]), AR_ENOTFOUND);
    ar_free(segs);
    assert_int_equal(ar_journal_segments(dir, &segs, &cnt), 0);
    assert_int_equal(cnt, 0);
    free(c.text);
    probe_free(p);
}

static void test_close_drains(void **state)
{
    (void)state;
    probe_t *p = probe_new();
    ar_journal_t *j = open_journal(p, 60000, 0);
    for (int i = 0; i < 300; i++)
        append(j, p, "{\"id\":\"x\"}");
    ar_journal_close(j); /* no wait before: close must write them */
    assert_int_equal(p->ok, 300);
    collected_t c = {0};
    assert_int_equal(read_all(1, &c), 300 * 11);
    assert_int_equal(c.lines, 300);
    free(c.text);
    probe_free(p);
}

static void test_append_refused(void **state)
{
    (void)state;
    probe_t *p = probe_new();
    ar_journal_t *j = open_journal(p, 0, 0);
    assert_int_equal(ar_journal_append(j, "", 0, on_done, p), AR_EINVAL);
    assert_int_equal(ar_journal_append(j, "abc", 3, on_done, p), AR_EINVAL);
    assert_int_equal(ar_journal_append(j, "a\nb\n", 4, on_done, p), AR_EINVAL);
    /* once close began */
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    pthread_mutex_unlock(&j->mu);
    assert_int_equal(ar_journal_append(j, "a\n", 2, on_done, p), AR_ESHUTDOWN);
    ar_journal_close(j);
    assert_int_equal(p->ok + p->failed, 0);
    probe_free(p);
}

static void test_fsync_interval(void **state)
{
    (void)state;
    /* a long interval: written, not yet synced */
    probe_t *p = probe_new();
    ar_journal_t *j = open_journal(p, 60000, 0);
    append(j, p, "{\"a\":1}");
    probe_wait(p, 1);
    ar_journal_stats_t st;
    ar_journal_stats(j, &st);
    assert_int_equal(st.syncs, 0);
    ar_journal_close(j);
    probe_free(p);

    /* a quiet journal syncs once the interval has passed, not before */
    p = probe_new();
    j = open_journal(p, 30, 0);
    uint64_t t0 = ar_now_us();
    append(j, p, "{\"b\":2}");
    st = stats_when(j, 1, 0);
    uint64_t elapsed_us = ar_now_us() - t0;
    assert_int_equal(st.syncs, 1);
    assert_true(elapsed_us >= 30000);
    /* and then rests: nothing new to sync */
    append(j, p, "{\"c\":3}");
    st = stats_when(j, 2, 0);
    assert_int_equal(st.syncs, 2);
    ar_journal_close(j);
    probe_free(p);

    /* interval 0: after every batch */
    p = probe_new();
    j = open_journal(p, 0, 0);
    append(j, p, "{\"d\":4}");
    st = stats_when(j, 1, 0);
    assert_int_equal(st.syncs, 1);
    ar_journal_close(j);
    probe_free(p);
}

/* ---- write failures ---- */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open, gate_entered;

/* A record's done that holds the writer until the test has queued the next batch. */
static void gated_done(void *ud, int err)
{
    pthread_mutex_lock(&gate_mu);
    gate_entered = 1;
    pthread_cond_broadcast(&gate_cond);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    on_done(ud, err);
}

/* Appends X with a gated done and returns once the writer is held inside it. */
static void hold_writer(ar_journal_t *j, probe_t *p)
{
    gate_open = 0;
    gate_entered = 0;
    assert_int_equal(ar_journal_append(j, "{\"X\":0}\n", 8, gated_done, p), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&gate_mu);
    while (!gate_entered) {
        if (pthread_cond_timedwait(&gate_cond, &gate_mu, &dl) != 0)
            break;
    }
    int entered = gate_entered;
    pthread_mutex_unlock(&gate_mu);
    assert_true(entered);
}

static void release_writer(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_mu);
}

static size_t fail_after; /* bytes the failing writev still writes before ENOSPC */

static ssize_t failing_writev(int fd, const struct iovec *iov, int cnt)
{
    (void)cnt;
    if (fail_after == 0) {
        errno = ENOSPC;
        return -1;
    }
    size_t n = iov[0].iov_len < fail_after ? iov[0].iov_len : fail_after;
    ssize_t w = write(fd, iov[0].iov_base, n); /* a short write, as a filling disk gives */
    if (w > 0)
        fail_after -= (size_t)w;
    return w;
}

static int failing_ftruncate(int fd, off_t len)
{
    (void)fd;
    (void)len;
    errno = EIO;
    return -1;
}

/* Queues the batch B, C, D behind the held writer; the disk fills 3 bytes into C. */
static void failing_batch(ar_journal_t *j, probe_t *p)
{
    hold_writer(j, p);
    fail_after = 8 + 3;
    sys_writev = failing_writev;
    append(j, p, "{\"B\":1}");
    append(j, p, "{\"C\":2}");
    append(j, p, "{\"D\":3}");
    release_writer();
    probe_wait(p, 4);
    assert_int_equal(p->ok, 2); /* X and B */
    assert_int_equal(p->failed, 2);
    sys_writev = writev;
}

static void test_write_failure_cut_back(void **state)
{
    (void)state;
    probe_t *p = probe_new();
    ar_journal_t *j = open_journal(p, 0, 0);
    failing_batch(j, p);
    /* the half of C is gone: the file ends with B's newline */
    assert_int_equal(file_size(1), 16);
    ar_journal_stats_t st = stats_when(j, 0, 4);
    assert_int_equal(st.failed, 2);
    assert_int_equal(st.end_offset, 16);
    /* the journal goes on, in the same segment */
    append(j, p, "{\"E\":4}");
    probe_wait(p, 5);
    assert_int_equal(p->ok, 3);
    ar_journal_close(j);
    collected_t c = {0};
    assert_int_equal(read_all(1, &c), 24);
    assert_string_equal(c.text, "{\"X\":0}|{\"B\":1}|{\"E\":4}|");
    /* on_written never reported past a good line */
    for (size_t k = 0; k < p->nwritten; k++)
        assert_true(p->end[k] == 8 || p->end[k] == 16 || p->end[k] == 24);
    free(c.text);
    probe_free(p);
}

/* When the half line cannot be cut off, the segment is closed torn and later records go
 * to the next one, so no good line ever follows a torn one. */
static void test_write_failure_cannot_cut(void **state)
{
    (void)state;
    probe_t *p = probe_new();
    ar_journal_t *j = open_journal(p, 60000, 0);
    sys_ftruncate = failing_ftruncate;
    failing_batch(j, p);
    sys_ftruncate = ftruncate;
    append(j, p, "{\"E\":4}");
    probe_wait(p, 5);
    ar_journal_close(j);
    assert_int_equal(file_size(1), 19); /* X, B and 3 bytes of C */
    collected_t c = {0};
    assert_int_equal(read_all(1, &c), 16);
    assert_string_equal(c.text, "{\"X\":0}|{\"B\":1}|");
    collected_t c2 = {0};
    assert_int_equal(read_all(2, &c2), 8);
    assert_string_equal(c2.text, "{\"E\":4}|");
    assert_int_equal(p->seg[p->nwritten - 1], 2);
    free(c.text);
    free(c2.text);
    probe_free(p);
}

/* ---- the reader ---- */

static int refuse_second(void *ud, const char *line, size_t len)
{
    collected_t *c = ud;
    if (c->lines == 1)
        return AR_EIO;
    return collect_cb(ud, line, len);
}

static void test_read_long_lines_and_limits(void **state)
{
    (void)state;
    /* a line longer than the read chunk, one longer than any record may be, and a torn tail */
    size_t big = 200000, huge = AR_JOURNAL_LINE_MAX + 5000;
    size_t total = big + 1 + 3 + huge + 1 + 4 + 2;
    char *text = malloc(total);
    assert_non_null(text);
    char *w = text;
    memset(w, 'b', big);
    w += big;
    *w++ = '\n';
    memcpy(w, "ok\n", 3);
    w += 3;
    memset(w, 'h', huge);
    w += huge;
    *w++ = '\n';
    memcpy(w, "end\n", 4);
    w += 4;
    memcpy(w, "xx", 2);
    write_file(3, text, total);
    free(text);

    collected_t c = {0};
    uint64_t off = read_all(3, &c);
    assert_int_equal(off, total - 2);
    assert_int_equal(c.lines, 3);
    assert_int_equal(c.len, big + 1 + 3 + 4);
    assert_memory_equal(c.text + big, "|ok|end|", 8);
    free(c.text);

    /* max_end inside "ok": only the big line */
    collected_t c2 = {0};
    off = 0;
    assert_int_equal(ar_journal_read(dir, 3, &off, big + 3, collect_cb, &c2), 0);
    assert_int_equal(off, big + 1);
    assert_int_equal(c2.lines, 1);
    /* and on from there to the end of "ok" */
    assert_int_equal(ar_journal_read(dir, 3, &off, big + 4, collect_cb, &c2), 0);
    assert_int_equal(off, big + 4);
    assert_int_equal(c2.lines, 2);
    free(c2.text);

    /* a refusing callback stops the read before its line */
    collected_t c3 = {0};
    off = 0;
    assert_int_equal(ar_journal_read(dir, 3, &off, 0, refuse_second, &c3), AR_EIO);
    assert_int_equal(off, big + 1);
    free(c3.text);

    off = 0;
    assert_int_equal(ar_journal_read(dir, 99, &off, 0, collect_cb, &c3), AR_ENOTFOUND);
}

static void test_open_errors_and_listing(void **state)
{
    (void)state;
    /* a missing dir lists no segments */
    uint64_t *segs = (uint64_t *)1;
    size_t cnt = 9;
    assert_int_equal(ar_journal_segments("/nonexistent/ar-journal", &segs, &cnt), 0);
    assert_null(segs);
    assert_int_equal(cnt, 0);

    /* only well-formed names count */
    write_file(12, "", 0);
    write_file(3, "", 0);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/00000000000000000005.log.tmp", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(ar_journal_segments(dir, &segs, &cnt), 0);
    assert_int_equal(cnt, 2);
    assert_int_equal(segs[0], 3);
    assert_int_equal(segs[1], 12);
    ar_free(segs);

    /* one journal per directory */
    probe_t *p = probe_new();
    ar_journal_t *j = open_journal(p, 0, 0);
    ar_journal_opts_t o = {.dir = dir};
    ar_journal_t *j2 = (ar_journal_t *)1;
    char err[256] = "";
    assert_int_equal(ar_journal_open(&o, &j2, err, sizeof(err)), AR_EIO);
    assert_null(j2);
    assert_non_null(strstr(err, "in use"));
    ar_journal_close(j);

    /* a parent that is a file */
    snprintf(path, sizeof(path), "%s/00000000000000000003.log/sub", dir);
    o.dir = path;
    assert_int_equal(ar_journal_open(&o, &j2, err, sizeof(err)), AR_EIO);
    assert_non_null(strstr(err, "cannot create"));

    /* a nested dir is created */
    snprintf(path, sizeof(path), "%s/a/b/c", dir);
    o.dir = path;
    assert_int_equal(ar_journal_open(&o, &j2, err, sizeof(err)), 0);
    ar_journal_close(j2);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    probe_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_threads_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_empty_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rolling_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_cut_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_cannot_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_long_lines_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors_and_listing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
