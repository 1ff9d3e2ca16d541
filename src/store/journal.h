/*
 * journal.h: the spend journal, an append-only log of spend record lines (spend.h) in a
 * directory of numbered segment files (%020llu.log). Workers append a line and learn, on
 * the journal's own thread, when write(2) returned for it: only then may the client see
 * the end of its answer (SPEC section 6), so a kill -9 loses no record, and a machine
 * crash loses at most fsync_interval_ms of them. The store thread reads segments back from
 * the files, applies them, and removes what it applied; memory is bounded by the records
 * in flight, never by how far the database lags. Nothing here knows the record format.
 */
#ifndef AR_STORE_JOURNAL_H
#define AR_STORE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Longest line the journal takes (a spend record is a few hundred bytes); the reader skips
 * any longer line as corruption, which keeps its memory bounded. */
#define AR_JOURNAL_LINE_MAX (1u << 20)

typedef struct ar_journal ar_journal_t;

typedef struct ar_journal_opts {
    /** Created if missing (0700, parents too). Holds the segments and a LOCK file that keeps
     *  a second process (or a second open) out. Borrowed for the call. */
    const char *dir;
    /** fdatasync at most this long after the first unsynced write; <= 0: after every batch. */
    int64_t fsync_interval_ms;
    /** Roll to a new segment once one reaches this size; 0: 16 MiB. */
    uint64_t segment_max_bytes;
    /** Journal thread, after each batch that wrote something (after its done callbacks): the
     *  segment and the offset up to which it holds whole, good lines. Offsets grow within a
     *  segment; a higher segment number means every earlier one is complete (its complete
     *  lines are all it will ever hold; it may end torn after a crash or a failed write that
     *  could not be cut off). May be NULL. */
    void (*on_written)(void *ud, uint64_t segment, uint64_t end_offset);
    void *ud;
} ar_journal_opts_t;

typedef struct ar_journal_stats {
    uint64_t segment;    /* the segment new records go to */
    uint64_t end_offset; /* its size, as far as good lines go */
    uint64_t queued;     /* records appended, not yet written */
    uint64_t written;    /* records whose done got 0 */
    uint64_t failed;     /* records whose done got AR_EIO */
    uint64_t writes;     /* batches written (group commits) */
    uint64_t syncs;      /* fdatasync calls on segments */
} ar_journal_stats_t;

/**
 * Opens dir and starts the writer thread ("ar-journal"). New records go to a NEW segment
 * numbered after any present (an old one may end with a torn line; it is never appended
 * to); its file is created by the first write, so a journal that writes nothing leaves no
 * empty segment behind. The segments to replay are those numbered below the stats'
 * `segment` right after open (list them before the first append, or filter by number).
 * @return 0, or AR_EINVAL/AR_EIO with err set (dir not creatable or writable, or in use).
 */
int ar_journal_open(const ar_journal_opts_t *o, ar_journal_t **out, char *err, size_t errlen);

/**
 * Queues one record line (len bytes, copied; it must end with its only '\n' and be at most
 * AR_JOURNAL_LINE_MAX). done(done_ud, err) runs on the journal thread exactly once: err 0
 * once write(2) returned for the whole line, or AR_EIO when the write failed (logged once
 * per burst of failures; later records are tried again). Appenders never wait for the disk,
 * only for a short mutex. Any thread, including from inside done or on_written.
 * @return 0; AR_EINVAL for a line that is not one line; AR_ESHUTDOWN once close began.
 * On an error done is never called.
 */
int ar_journal_append(ar_journal_t *j, const char *line, size_t len,
                      void (*done)(void *ud, int err), void *done_ud);
/**
 * ar_journal_append for a group of lines written together: text holds cnt complete lines
 * (each at most AR_JOURNAL_LINE_MAX, the last ending the text), and done(done_ud, err)
 * runs once for all of them. One queue entry, one lock, one wake-up for a whole group: a
 * worker hands over the records of one loop iteration at once.
 */
int ar_journal_append_lines(ar_journal_t *j, const char *text, size_t len, size_t cnt,
                            void (*done)(void *ud, int err), void *done_ud);

/** A snapshot of the counters, which the writer publishes after each batch's callbacks
 *  returned. Any thread. */
void ar_journal_stats(ar_journal_t *j, ar_journal_stats_t *out);

/**
 * Writes everything queued (their done callbacks run), fdatasyncs, stops the thread and
 * frees j. No append may start after this returns. NULL is a no-op.
 */
void ar_journal_close(ar_journal_t *j);

/**
 * The segments present in dir, ascending. @param segs returned owned (ar_free), NULL when
 * there are none; a missing dir has none. @return 0, or AR_EIO (nothing returned).
 */
int ar_journal_segments(const char *dir, uint64_t **segs, size_t *cnt);

/**
 * Reads the complete ('\n'-ended) lines of segment seg from *off up to max_end (0: the end
 * of the file), calling line_cb(ud, line, len) for each (len without the newline; line is
 * not NUL-terminated and is valid for the call). *off advances past every line the callback
 * accepted; a torn tail is not consumed. A line longer than AR_JOURNAL_LINE_MAX is skipped
 * (logged). Memory is bounded by that (it reads in chunks). Any thread, no open journal
 * needed. The live segment must be read with a max_end from on_written: bytes past it may
 * be a failed write that is about to be cut off.
 * @return 0; AR_ENOTFOUND when there is no such segment; AR_EIO; or line_cb's nonzero
 * result, which stops the read with *off at the start of the line it refused.
 */
int ar_journal_read(const char *dir, uint64_t seg, uint64_t *off, uint64_t max_end,
                    int (*line_cb)(void *ud, const char *line, size_t len), void *ud);

/** Deletes segment seg (it was applied; never the one being written). @return 0,
 *  AR_ENOTFOUND or AR_EIO. */
int ar_journal_remove(const char *dir, uint64_t seg);

#endif
