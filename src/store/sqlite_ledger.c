/*
 * sqlite_ledger.c: the spend ledger of the SQLite backend. Spend records land in `spend`
 * (one row per finished request, the record's id as primary key) and, in the same
 * transaction, in `usage_daily` (per key and UTC day), which every usage read uses: a
 * quota check or a listing never scans the ledger. A record whose id is there already is
 * ignored, aggregate included, so a replayed journal batch counts once.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "store/sqlite_int.h"

/* "YYYY-MM-DD" of the UTC day containing ms. */
static void utc_day(int64_t ms, char out[16])
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

#define SPEND_INSERT                                                                               \
    "INSERT OR IGNORE INTO spend (id, request_id, ts_ms, key_id, model, upstream_model, "          \
    "credential, prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens, "         \
    "reasoning_tokens, cost_usd, status, latency_ms, ttfb_ms, stream) VALUES "                     \
    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"

#define USAGE_ADD                                                                                  \
    "INSERT INTO usage_daily (key_id, day, requests, prompt_tokens, completion_tokens, cost_usd) " \
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key_id, day) DO UPDATE SET "                     \
    "requests = requests + ?3, prompt_tokens = prompt_tokens + ?4, "                               \
    "completion_tokens = completion_tokens + ?5, cost_usd = cost_usd + ?6"

static void bind_spend(sqlite3_stmt *st, const ar_spend_t *r)
{
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->ts_ms);
    sqlite3_bind_int64(st, 4, r->key_id);
    sqlite3_bind_text(st, 5, r->model ? r->model : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r->upstream_model ? r->upstream_model : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, r->credential ? r->credential : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, r->prompt_tokens);
    sqlite3_bind_int64(st, 9, r->completion_tokens);
    sqlite3_bind_int64(st, 10, r->cached_tokens);
    sqlite3_bind_int64(st, 11, r->cache_creation_tokens);
    sqlite3_bind_int64(st, 12, r->reasoning_tokens);
    sqlite3_bind_double(st, 13, r->cost_usd);
    sqlite3_bind_int(st, 14, r->status);
    sqlite3_bind_int64(st, 15, r->latency_ms);
    sqlite3_bind_int64(st, 16, r->ttfb_ms);
    sqlite3_bind_int(st, 17, r->stream ? 1 : 0);
}

/* What a batch adds to one key's day: summed in memory, written once per batch. */
typedef struct day_sum {
    int64_t key_id;
    char day[16];
    ar_usage_totals_t t;
} day_sum_t;

#define DAY_SUMS_MAX 64 /* distinct (key, day) pairs held before they are written */

typedef struct batch_sums {
    day_sum_t items[DAY_SUMS_MAX];
    size_t cnt;
} batch_sums_t;

static int write_sums(sqlite3_stmt *add, batch_sums_t *b)
{
    for (size_t i = 0; i < b->cnt; i++) {
        const day_sum_t *d = &b->items[i];
        sqlite3_reset(add);
        sqlite3_bind_int64(add, 1, d->key_id);
        sqlite3_bind_text(add, 2, d->day, -1, SQLITE_STATIC);
        sqlite3_bind_int64(add, 3, d->t.requests);
        sqlite3_bind_int64(add, 4, d->t.prompt_tokens);
        sqlite3_bind_int64(add, 5, d->t.completion_tokens);
        sqlite3_bind_double(add, 6, d->t.cost_usd);
        if (sqlite3_step(add) != SQLITE_DONE)
            return AR_EIO;
    }
    b->cnt = 0;
    return 0;
}

/* One record: the ledger row, and (when the row is new) its share of its key's day. */
static int apply_one(sq_t *q, sqlite3_stmt *ins, sqlite3_stmt *add, batch_sums_t *sums,
                     const ar_spend_t *r, size_t *inserted)
{
    sqlite3_reset(ins);
    bind_spend(ins, r);
    if (sqlite3_step(ins) != SQLITE_DONE)
        return AR_EIO;
    if (sqlite3_changes(q->db) == 0)
        return 0; /* applied before */
    (*inserted)++;
    char day[16];
    utc_day(r->ts_ms, day);
    day_sum_t *d = NULL;
    for (size_t i = 0; i < sums->cnt && !d; i++) {
        if (sums->items[i].key_id == r->key_id && strcmp(sums->items[i].day, day) == 0)
            d = &sums->items[i];
    }
    if (!d) {
        if (sums->cnt == DAY_SUMS_MAX && write_sums(add, sums) != 0)
            return AR_EIO;
        d = &sums->items[sums->cnt++];
        memset(d, 0, sizeof(*d));
        d->key_id = r->key_id;
        memcpy(d->day, day, sizeof(d->day));
    }
    d->t.requests++;
    d->t.prompt_tokens += r->prompt_tokens;
    d->t.completion_tokens += r->completion_tokens;
    d->t.cost_usd += r->cost_usd;
    return 0;
}

int ar_sq_spend_apply(void *impl, const ar_spend_t *recs, size_t n, size_t *inserted, char *err,
                      size_t errlen)
{
    sq_t *q = impl;
    size_t done = 0;
    if (inserted)
        *inserted = 0;
    if (n == 0)
        return 0;
    sqlite3_stmt *ins = NULL, *add = NULL;
    int rc = ar_sq_exec(q->db, "BEGIN IMMEDIATE", err, errlen);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(q->db, SPEND_INSERT, -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(q->db, USAGE_ADD, -1, &add, NULL) != SQLITE_OK)
        rc = AR_EIO;
    batch_sums_t sums = {.cnt = 0};
    for (size_t i = 0; i < n && !rc; i++)
        rc = apply_one(q, ins, add, &sums, &recs[i], &done);
    if (rc == 0 && write_sums(add, &sums) != 0)
        rc = AR_EIO;
    if (rc)
        ar_sq_fail(q->db, err, errlen, "applying spend records");
    sqlite3_finalize(ins);
    sqlite3_finalize(add);
    if (rc == 0)
        rc = ar_sq_exec(q->db, "COMMIT", err, errlen);
    if (rc) {
        char ignored[64];
        (void)ar_sq_exec(q->db, "ROLLBACK", ignored, sizeof(ignored));
        return AR_EIO;
    }
    if (inserted)
        *inserted = done;
    return 0;
}

int ar_sq_spend_count(void *impl, int64_t *n)
{
    return ar_sq_int64(((sq_t *)impl)->db, "SELECT COUNT(*) FROM spend", n);
}

#define SUMS                                                                                       \
    "COALESCE(SUM(requests), 0), COALESCE(SUM(prompt_tokens), 0), "                                \
    "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_usd), 0)"

static void totals_from(sqlite3_stmt *st, int col, ar_usage_totals_t *t)
{
    t->requests = sqlite3_column_int64(st, col);
    t->prompt_tokens = sqlite3_column_int64(st, col + 1);
    t->completion_tokens = sqlite3_column_int64(st, col + 2);
    t->cost_usd = sqlite3_column_double(st, col + 3);
}

/* Sums usage_daily over the rows where (key_id = key, unless all) and day matches the
 * pattern (GLOB: "2024-03-05", "2024-03-*", "*"). */
static int sum_usage(sq_t *q, bool all, int64_t key, const char *pattern, ar_usage_totals_t *t)
{
    sqlite3_stmt *st;
    memset(t, 0, sizeof(*t));
    const char *sql = all ? "SELECT " SUMS " FROM usage_daily WHERE day GLOB ?1"
                          : "SELECT " SUMS " FROM usage_daily WHERE key_id = ?2 AND day GLOB ?1";
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
    if (!all)
        sqlite3_bind_int64(st, 2, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        totals_from(st, 0, t);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : AR_EIO;
}

/* The GLOB patterns of now's day and month. */
static void periods(int64_t now_ms, char day[16], char month[16])
{
    utc_day(now_ms, day);
    snprintf(month, 16, "%.7s-*", day);
}

static int usage_of(sq_t *q, bool all, int64_t key_id, int64_t now_ms, ar_usage_totals_t *day,
                    ar_usage_totals_t *month, ar_usage_totals_t *total)
{
    char d[16], m[16];
    periods(now_ms, d, m);
    int rc = day ? sum_usage(q, all, key_id, d, day) : 0;
    rc = rc ? rc : month ? sum_usage(q, all, key_id, m, month) : 0;
    rc = rc ? rc : total ? sum_usage(q, all, key_id, "*", total) : 0;
    return rc;
}

int ar_sq_usage(void *impl, int64_t key_id, int64_t now_ms, ar_usage_totals_t *day,
                ar_usage_totals_t *month, ar_usage_totals_t *total)
{
    return usage_of(impl, false, key_id, now_ms, day, month, total);
}

int ar_sq_usage_by_key(void *impl, int64_t now_ms, ar_key_usage_list_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    char d[16], m[16];
    periods(now_ms, d, m);
    out->items = NULL;
    out->cnt = 0;
    /* one pass over this month's rows: the month's sums, and today's with a filter */
    if (sqlite3_prepare_v2(q->db,
                           "SELECT key_id, " SUMS ", "
                           "COALESCE(SUM(requests) FILTER (WHERE day = ?1), 0), "
                           "COALESCE(SUM(prompt_tokens) FILTER (WHERE day = ?1), 0), "
                           "COALESCE(SUM(completion_tokens) FILTER (WHERE day = ?1), 0), "
                           "COALESCE(SUM(cost_usd) FILTER (WHERE day = ?1), 0) "
                           "FROM usage_daily WHERE day GLOB ?2 GROUP BY key_id ORDER BY key_id",
                           -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_text(st, 1, d, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->items = ar_xrealloc(out->items, (out->cnt + 1) * sizeof(*out->items));
        ar_key_usage_t *u = &out->items[out->cnt++];
        u->key_id = sqlite3_column_int64(st, 0);
        totals_from(st, 1, &u->month);
        totals_from(st, 5, &u->day);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ar_store_key_usage_list_free(out);
        return AR_EIO;
    }
    return 0;
}

int ar_sq_stats(void *impl, int64_t now_ms, ar_store_stats_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    memset(out, 0, sizeof(*out));
    if (sqlite3_prepare_v2(
            q->db,
            "SELECT COALESCE(SUM(revoked = 0 AND (expires_ms = 0 OR expires_ms > ?1)), "
            "0), COALESCE(SUM(revoked != 0), 0), "
            "COALESCE(SUM(revoked = 0 AND expires_ms != 0 AND expires_ms <= ?1), 0) "
            "FROM keys",
            -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->keys_active = sqlite3_column_int64(st, 0);
        out->keys_revoked = sqlite3_column_int64(st, 1);
        out->keys_expired = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return AR_EIO;
    return usage_of(q, true, 0, now_ms, &out->day, &out->month, &out->total);
}
