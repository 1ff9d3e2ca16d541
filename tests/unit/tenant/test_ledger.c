/*
 * test_ledger.c: the spend ledger on real files (a SQLite database and its journal
 * directory, store thread running): appended records are acknowledged once written and
 * are all in the database after close, with no segment left; at open, a journal an earlier
 * run left (duplicate records, a record the database already has, a torn last line) is
 * replayed idempotently and removed.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "alloc_mt.h"
#include "core/buf.h"
#include "store/journal.h"
#include "tenant/ledger.h"
#include "testutil.h"

static char dir[64];
static char url[200];
static char jdir[300];

static int setup(void **state)
{
    (void)state;
    ar_test_store_dir("ar-ledger", dir, url);
    ar_ledger_dir_for(url, jdir, sizeof(jdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", jdir);
    assert_int_equal(system(cmd), 0);
    ar_test_rmdir(dir);
    return 0;
}

static int64_t count_rows(void)
{
    ar_store_t *s;
    char err[256];
    assert_int_equal(ar_store_open(url, &s, err, sizeof(err)), 0);
    int64_t n = -1;
    assert_int_equal(ar_store_spend_count(s, &n), 0);
    ar_store_close(s);
    return n;
}

static size_t segments_left(void)
{
    uint64_t *segs = NULL;
    size_t cnt = 0;
    assert_int_equal(ar_journal_segments(jdir, &segs, &cnt), 0);
    free(segs);
    return cnt;
}

static ar_spend_t record(int i)
{
    ar_spend_t r = {.ts_ms = 1764892800000LL + i,
                    .key_id = 1,
                    .model = "m",
                    .upstream_model = "gpt",
                    .credential = "c",
                    .prompt_tokens = 10,
                    .completion_tokens = i,
                    .cost_usd = 0.001,
                    .status = 200};
    snprintf(r.id, sizeof(r.id), "rec-%d", i);
    snprintf(r.request_id, sizeof(r.request_id), "req-%d", i);
    return r;
}

static pthread_mutex_t acks_mu = PTHREAD_MUTEX_INITIALIZER;
static int acks, ack_errors;

static void on_ack(void *ud, int err)
{
    (void)ud;
    pthread_mutex_lock(&acks_mu);
    acks++;
    ack_errors += err != 0;
    pthread_mutex_unlock(&acks_mu);
}

static void test_append_then_close(void **state)
{
    (void)state;
    ar_store_thread_t *st;
    char err[256];
    assert_int_equal(ar_store_thread_start(url, &st, err, sizeof(err)), 0);
    ar_ledger_t *l;
    assert_int_equal(ar_ledger_open(st, jdir, 20, &l, err, sizeof(err)), 0);
    assert_int_equal(ar_ledger_replayed(l), 0);
    acks = ack_errors = 0;
    for (int i = 0; i < 300; i++) {
        ar_spend_t r = record(i);
        assert_int_equal(ar_ledger_append(l, &r, on_ack, NULL), 0);
    }
    ar_ledger_close(l); /* writes, applies, removes the applied segment */
    ar_store_thread_stop(st);
    assert_int_equal(acks, 300);
    assert_int_equal(ack_errors, 0);
    assert_int_equal(count_rows(), 300);
    assert_int_equal(segments_left(), 0);
}

/* Writes a journal segment the way a killed run leaves it. */
static void write_segment(uint64_t seg, const char *text)
{
    mkdir(jdir, 0700);
    char path[400];
    snprintf(path, sizeof(path), "%s/%020llu.log", jdir, (unsigned long long)seg);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *line_of(int i)
{
    ar_buf_t b;
    ar_buf_init(&b, 4096);
    ar_spend_t r = record(i);
    assert_int_equal(ar_spend_encode(&r, &b), 0);
    char *s = malloc(b.len + 1); /* cmocka's checked malloc, as free() below is */
    memcpy(s, b.ptr, b.len);
    s[b.len] = '\0';
    ar_buf_dispose(&b);
    return s;
}

static void test_replay(void **state)
{
    (void)state;
    /* rec-0 is in the database already (applied before the crash) */
    ar_store_t *s;
    char err[256];
    assert_int_equal(ar_store_open(url, &s, err, sizeof(err)), 0);
    ar_spend_t r0 = record(0);
    size_t inserted = 0;
    assert_int_equal(ar_store_spend_apply(s, &r0, 1, &inserted, err, sizeof(err)), 0);
    ar_store_close(s);
    char *l0 = line_of(0), *l1 = line_of(1), *l2 = line_of(2), *l3 = line_of(3);
    char text[4096];
    /* segment 1: rec-0, rec-1, rec-1 again; segment 2: rec-2, then rec-3 torn mid-line */
    snprintf(text, sizeof(text), "%s%s%s", l0, l1, l1);
    write_segment(1, text);
    snprintf(text, sizeof(text), "%s%.*s", l2, (int)(strlen(l3) / 2), l3);
    write_segment(2, text);
    free(l0);
    free(l1);
    free(l2);
    free(l3);

    ar_store_thread_t *st;
    assert_int_equal(ar_store_thread_start(url, &st, err, sizeof(err)), 0);
    ar_ledger_t *l;
    assert_int_equal(ar_ledger_open(st, jdir, 20, &l, err, sizeof(err)), 0);
    assert_int_equal(ar_ledger_replayed(l), 4); /* read: 0, 1, 1, 2; the torn line is not one */
    ar_ledger_close(l);
    ar_store_thread_stop(st);
    assert_int_equal(count_rows(), 3); /* rec-0, rec-1, rec-2: each once */
    assert_int_equal(segments_left(), 0);

    /* a second open finds nothing more to replay */
    assert_int_equal(ar_store_thread_start(url, &st, err, sizeof(err)), 0);
    assert_int_equal(ar_ledger_open(st, jdir, 20, &l, err, sizeof(err)), 0);
    assert_int_equal(ar_ledger_replayed(l), 0);
    ar_ledger_close(l);
    ar_store_thread_stop(st);
    assert_int_equal(count_rows(), 3);
}

static void test_dir_for(void **state)
{
    (void)state;
    char out[256];
    ar_ledger_dir_for("sqlite://./airouter.db", out, sizeof(out));
    assert_string_equal(out, "./airouter.db.spend");
    ar_ledger_dir_for("sqlite:///var/lib/a.db", out, sizeof(out));
    assert_string_equal(out, "/var/lib/a.db.spend");
    ar_ledger_dir_for("sqlite://:memory:", out, sizeof(out));
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_then_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test(test_dir_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
