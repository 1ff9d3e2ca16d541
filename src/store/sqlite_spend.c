/*
 * sqlite_spend.c: reading the spend ledger of the SQLite backend for reports (the admin
 * API's /admin/spend and /admin/spend.csv): totals per day, key, model or credential, and
 * the records themselves, under one filter (key, model, credential, time range). Quotas and
 * listings read usage_daily (sqlite_ledger.c); these read `spend`, which any filter allows.
 */
#include <string.h>

#include "core/mem.h"
#include "store/sqlite_int.h"

/* Every filter is always bound; an unset one makes its test true. */
#define SPEND_WHERE                                                                                \
    " WHERE (?1 < 0 OR key_id = ?1) AND (?2 IS NULL OR model = ?2)"                                \
    " AND (?3 IS NULL OR credential = ?3) AND (?4 = 0 OR ts_ms >= ?4)"                             \
    " AND (?5 = 0 OR ts_ms < ?5)"

static void bind_filter(sqlite3_stmt *st, const ar_spend_filter_t *f)
{
    sqlite3_bind_int64(st, 1, f->key_id);
    if (f->model)
        sqlite3_bind_text(st, 2, f->model, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    if (f->credential)
        sqlite3_bind_text(st, 3, f->credential, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int64(st, 4, f->from_ms > 0 ? f->from_ms : 0);
    sqlite3_bind_int64(st, 5, f->to_ms > 0 ? f->to_ms : 0);
}

int ar_sq_spend_totals(void *impl, const ar_spend_filter_t *f, ar_spend_group_t by,
                       ar_spend_total_list_t *out)
{
    static const char *const groups[] = {
        [AR_SPEND_GROUP_NONE] = "''",
        [AR_SPEND_GROUP_DAY] = "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')",
        [AR_SPEND_GROUP_KEY] = "CAST(key_id AS TEXT)",
        [AR_SPEND_GROUP_MODEL] = "model",
        [AR_SPEND_GROUP_CREDENTIAL] = "credential",
    };
    sq_t *q = impl;
    char sql[640];
    /* key ids sort as numbers, the rest as text */
    snprintf(sql, sizeof(sql),
             "SELECT %s AS g, COUNT(*), COALESCE(SUM(status >= 400), 0), "
             "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
             "COALESCE(SUM(cost_usd), 0) FROM spend" SPEND_WHERE "%s",
             groups[by],
             by == AR_SPEND_GROUP_NONE  ? ""
             : by == AR_SPEND_GROUP_KEY ? " GROUP BY key_id ORDER BY key_id"
                                        : " GROUP BY g ORDER BY g");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    bind_filter(st, f);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->items = ar_xrealloc(out->items, (out->cnt + 1) * sizeof(*out->items));
        ar_spend_total_t *t = &out->items[out->cnt++];
        t->group = ar_sq_text(st, 0);
        t->requests = sqlite3_column_int64(st, 1);
        t->errors = sqlite3_column_int64(st, 2);
        t->prompt_tokens = sqlite3_column_int64(st, 3);
        t->completion_tokens = sqlite3_column_int64(st, 4);
        t->cost_usd = sqlite3_column_double(st, 5);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ar_store_spend_total_list_free(out);
        return AR_EIO;
    }
    return 0;
}

static void text_into(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", s ? (const char *)s : "");
}

int ar_sq_spend_each(void *impl, const ar_spend_filter_t *f, size_t max, ar_spend_each_fn fn,
                     void *ud)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            q->db,
            "SELECT id, request_id, ts_ms, key_id, model, upstream_model, credential, "
            "prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens, "
            "reasoning_tokens, cost_usd, status, latency_ms, ttfb_ms, stream "
            "FROM spend" SPEND_WHERE " ORDER BY ts_ms, id LIMIT ?6",
            -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    bind_filter(st, f);
    sqlite3_bind_int64(st, 6, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ar_spend_t r;
        memset(&r, 0, sizeof(r));
        text_into(st, 0, r.id, sizeof(r.id));
        text_into(st, 1, r.request_id, sizeof(r.request_id));
        r.ts_ms = sqlite3_column_int64(st, 2);
        r.key_id = sqlite3_column_int64(st, 3);
        /* column texts stay valid until the next step: borrowed for fn's call */
        r.model = (char *)sqlite3_column_text(st, 4);
        r.upstream_model = (char *)sqlite3_column_text(st, 5);
        r.credential = (char *)sqlite3_column_text(st, 6);
        r.prompt_tokens = sqlite3_column_int64(st, 7);
        r.completion_tokens = sqlite3_column_int64(st, 8);
        r.cached_tokens = sqlite3_column_int64(st, 9);
        r.cache_creation_tokens = sqlite3_column_int64(st, 10);
        r.reasoning_tokens = sqlite3_column_int64(st, 11);
        r.cost_usd = sqlite3_column_double(st, 12);
        r.status = sqlite3_column_int(st, 13);
        r.latency_ms = sqlite3_column_int64(st, 14);
        r.ttfb_ms = sqlite3_column_int64(st, 15);
        r.stream = sqlite3_column_int(st, 16) != 0;
        stop = fn(ud, &r);
    }
    sqlite3_finalize(st);
    if (stop)
        return stop;
    return rc == SQLITE_DONE ? 0 : AR_EIO;
}
