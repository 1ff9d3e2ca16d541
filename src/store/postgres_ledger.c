/*
 * postgres_ledger.c: the spend ledger of the PostgreSQL backend: applying batches of spend
 * records, the daily usage every quota check and listing reads, and the reports over the
 * ledger itself (/admin/spend). A batch goes in as one INSERT ... SELECT FROM unnest() of
 * one array per column, ON CONFLICT DO NOTHING RETURNING: the rows returned are the ones
 * actually new, and only they grow usage_daily, in the same transaction, so a replayed
 * journal batch counts once. Arrays, not a VALUES list: a statement of 17 parameters costs
 * PostgreSQL little to parse and plan, where one of a row's 17 parameters per record cost
 * it about as much CPU as the gateway spent serving the requests.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/str.h"
#include "store/postgres_int.h"

#define SPEND_COLS 17
/* Rows per INSERT: bounds the arrays' memory. */
#define ROWS_PER_INSERT 1000

/* "YYYY-MM-DD" of the UTC day containing ms. */
static void utc_day(int64_t ms, char out[16])
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

/* The columns' arrays, one literal per column ({"a","b"} / {1,2}). */
typedef struct cols {
    ar_buf_t b[SPEND_COLS];
} cols_t;

static int put_sep(ar_buf_t *b)
{
    return ar_buf_append(b, b->len ? "," : "{", 1);
}

/* A text element, quoted: only a double quote and a backslash need escaping there. */
static int put_text(ar_buf_t *b, const char *s)
{
    int rc = put_sep(b);
    rc = rc ? rc : ar_buf_append(b, "\"", 1);
    for (const char *p = s ? s : ""; !rc && *p;) {
        size_t plain = strcspn(p, "\"\\");
        rc = ar_buf_append(b, p, plain);
        p += plain;
        if (!rc && *p) {
            char esc[2] = {'\\', *p++};
            rc = ar_buf_append(b, esc, 2);
        }
    }
    return rc ? rc : ar_buf_append(b, "\"", 1);
}

/* Not printf: a batch formats 13 integers per record, and printf's machinery cost more
 * than the rest of the ledger's apply. */
static int put_int(ar_buf_t *b, int64_t v)
{
    char digits[24];
    size_t n = 0;
    if (v < 0)
        digits[n++] = '-';
    n += ar_u64_dec(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, digits + n);
    int rc = put_sep(b);
    return rc ? rc : ar_buf_append(b, digits, n);
}

static int put_spend(cols_t *c, const ar_spend_t *r)
{
    ar_buf_t *b = c->b;
    int rc = put_text(&b[0], r->id);
    rc = rc ? rc : put_text(&b[1], r->request_id);
    rc = rc ? rc : put_int(&b[2], r->ts_ms);
    rc = rc ? rc : put_int(&b[3], r->key_id);
    rc = rc ? rc : put_text(&b[4], r->model);
    rc = rc ? rc : put_text(&b[5], r->upstream_model);
    rc = rc ? rc : put_text(&b[6], r->credential);
    rc = rc ? rc : put_int(&b[7], r->prompt_tokens);
    rc = rc ? rc : put_int(&b[8], r->completion_tokens);
    rc = rc ? rc : put_int(&b[9], r->cached_tokens);
    rc = rc ? rc : put_int(&b[10], r->cache_creation_tokens);
    rc = rc ? rc : put_int(&b[11], r->reasoning_tokens);
    rc = rc ? rc : put_sep(&b[12]);
    rc = rc ? rc : ar_buf_appendf(&b[12], "%.17g", r->cost_usd == r->cost_usd ? r->cost_usd : 0);
    rc = rc ? rc : put_int(&b[13], r->status);
    rc = rc ? rc : put_int(&b[14], r->latency_ms);
    rc = rc ? rc : put_int(&b[15], r->ttfb_ms);
    return rc ? rc : put_int(&b[16], r->stream ? 1 : 0);
}

/* What a batch adds to one key's day: summed in memory, written once per batch. */
typedef struct day_sum {
    int64_t key_id;
    char day[16];
    ar_usage_totals_t t;
} day_sum_t;

typedef struct sums {
    day_sum_t *items;
    size_t cnt;
} sums_t;

static void sum_row(sums_t *s, int64_t key_id, int64_t ts_ms, int64_t prompt, int64_t completion,
                    double cost)
{
    char day[16];
    utc_day(ts_ms, day);
    day_sum_t *d = NULL;
    for (size_t i = 0; i < s->cnt && !d; i++) {
        if (s->items[i].key_id == key_id && strcmp(s->items[i].day, day) == 0)
            d = &s->items[i];
    }
    if (!d) {
        s->items = ar_xrealloc(s->items, (s->cnt + 1) * sizeof(*s->items));
        d = &s->items[s->cnt++];
        memset(d, 0, sizeof(*d));
        d->key_id = key_id;
        memcpy(d->day, day, sizeof(d->day));
    }
    d->t.requests++;
    d->t.prompt_tokens += prompt;
    d->t.completion_tokens += completion;
    d->t.cost_usd += cost;
}

/* Inserts recs[0..n) (n <= ROWS_PER_INSERT) and sums the new ones into s. */
static int insert_rows(pg_t *q, const ar_spend_t *recs, size_t n, sums_t *s, size_t *done,
                       char *err, size_t errlen)
{
    cols_t c;
    int rc = 0;
    for (int i = 0; i < SPEND_COLS; i++)
        ar_buf_init(&c.b[i], SIZE_MAX);
    for (size_t i = 0; i < n && !rc; i++)
        rc = put_spend(&c, &recs[i]);
    pg_params_t a;
    ar_pg_params_init(&a);
    for (int i = 0; i < SPEND_COLS && !rc; i++) {
        rc = ar_buf_append(&c.b[i], "}", 1);
        rc = rc ? rc : ar_buf_nul(&c.b[i]);
        ar_pg_text(&a, c.b[i].ptr);
    }
    PGresult *r = NULL;
    if (rc)
        snprintf(err, errlen, "applying spend records: out of memory");
    else
        rc = ar_pg_run(q,
                       "INSERT INTO spend (id, request_id, ts_ms, key_id, model, upstream_model, "
                       "credential, prompt_tokens, completion_tokens, cached_tokens, "
                       "cache_creation_tokens, reasoning_tokens, cost_usd, status, latency_ms, "
                       "ttfb_ms, stream) SELECT * FROM unnest($1::text[], $2::text[], "
                       "$3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], "
                       "$8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], "
                       "$13::double precision[], $14::integer[], $15::bigint[], $16::bigint[], "
                       "$17::integer[]) ON CONFLICT (id) DO NOTHING RETURNING key_id, ts_ms, "
                       "prompt_tokens, completion_tokens, cost_usd",
                       &a, &r, "applying spend records", err, errlen);
    ar_pg_params_dispose(&a);
    for (int i = 0; i < SPEND_COLS; i++)
        ar_buf_dispose(&c.b[i]);
    if (rc)
        return AR_EIO;
    for (int i = 0; i < PQntuples(r); i++)
        sum_row(s, ar_pg_i64(r, i, 0), ar_pg_i64(r, i, 1), ar_pg_i64(r, i, 2), ar_pg_i64(r, i, 3),
                ar_pg_f64(r, i, 4));
    *done += (size_t)PQntuples(r);
    PQclear(r);
    return 0;
}

static int write_sums(pg_t *q, const sums_t *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->cnt; i++) {
        const day_sum_t *d = &s->items[i];
        pg_params_t a;
        ar_pg_params_init(&a);
        ar_pg_int(&a, d->key_id);
        ar_pg_text(&a, d->day);
        ar_pg_int(&a, d->t.requests);
        ar_pg_int(&a, d->t.prompt_tokens);
        ar_pg_int(&a, d->t.completion_tokens);
        ar_pg_real(&a, d->t.cost_usd);
        int rc = ar_pg_run(
            q,
            "INSERT INTO usage_daily AS u (key_id, day, requests, prompt_tokens, "
            "completion_tokens, cost_usd) VALUES ($1::bigint, $2, $3::bigint, $4::bigint, "
            "$5::bigint, $6::double precision) ON CONFLICT (key_id, day) DO UPDATE SET "
            "requests = u.requests + EXCLUDED.requests, "
            "prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens, "
            "completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens, "
            "cost_usd = u.cost_usd + EXCLUDED.cost_usd",
            &a, NULL, "applying spend records", err, errlen);
        ar_pg_params_dispose(&a);
        if (rc)
            return AR_EIO;
    }
    return 0;
}

int ar_pg_spend_apply(void *impl, const ar_spend_t *recs, size_t n, size_t *inserted, char *err,
                      size_t errlen)
{
    pg_t *q = impl;
    size_t done = 0;
    if (inserted)
        *inserted = 0;
    if (n == 0)
        return 0;
    if (ar_pg_begin(q, err, errlen))
        return AR_EIO;
    sums_t sums = {NULL, 0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i += ROWS_PER_INSERT)
        rc = insert_rows(q, recs + i, n - i < ROWS_PER_INSERT ? n - i : ROWS_PER_INSERT, &sums,
                         &done, err, errlen);
    rc = rc ? rc : write_sums(q, &sums, err, errlen);
    ar_free(sums.items);
    rc = rc ? rc : ar_pg_commit(q, err, errlen);
    if (rc) {
        ar_pg_rollback(q);
        return AR_EIO;
    }
    if (inserted)
        *inserted = done;
    return 0;
}

int ar_pg_spend_count(void *impl, int64_t *n)
{
    return ar_pg_int64(impl, "SELECT COUNT(*) FROM spend", NULL, n);
}

#define SUMS                                                                                       \
    "COALESCE(SUM(requests), 0), COALESCE(SUM(prompt_tokens), 0), "                                \
    "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_usd), 0)"

static void totals_from(const PGresult *r, int row, int col, ar_usage_totals_t *t)
{
    t->requests = ar_pg_i64(r, row, col);
    t->prompt_tokens = ar_pg_i64(r, row, col + 1);
    t->completion_tokens = ar_pg_i64(r, row, col + 2);
    t->cost_usd = ar_pg_f64(r, row, col + 3);
}

/* Sums usage_daily over the rows of key (unless all) whose day is LIKE pattern
 * ("2024-03-05", "2024-03-%", "%"). */
static int sum_usage(pg_t *q, bool all, int64_t key, const char *pattern, ar_usage_totals_t *t)
{
    memset(t, 0, sizeof(*t));
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_text(&a, pattern);
    if (!all)
        ar_pg_int(&a, key);
    PGresult *r;
    int rc = ar_pg_run(q,
                       all ? "SELECT " SUMS " FROM usage_daily WHERE day LIKE $1"
                           : "SELECT " SUMS
                             " FROM usage_daily WHERE key_id = $2::bigint AND day LIKE $1",
                       &a, &r, "reading usage", NULL, 0);
    ar_pg_params_dispose(&a);
    if (rc)
        return AR_EIO;
    if (PQntuples(r) > 0)
        totals_from(r, 0, 0, t);
    PQclear(r);
    return 0;
}

static void periods(int64_t now_ms, char day[16], char month[16])
{
    utc_day(now_ms, day);
    snprintf(month, 16, "%.7s-%%", day);
}

static int usage_of(pg_t *q, bool all, int64_t key_id, int64_t now_ms, ar_usage_totals_t *day,
                    ar_usage_totals_t *month, ar_usage_totals_t *total)
{
    char d[16], m[16];
    periods(now_ms, d, m);
    int rc = day ? sum_usage(q, all, key_id, d, day) : 0;
    rc = rc ? rc : month ? sum_usage(q, all, key_id, m, month) : 0;
    rc = rc ? rc : total ? sum_usage(q, all, key_id, "%", total) : 0;
    return rc;
}

int ar_pg_usage(void *impl, int64_t key_id, int64_t now_ms, ar_usage_totals_t *day,
                ar_usage_totals_t *month, ar_usage_totals_t *total)
{
    return usage_of(impl, false, key_id, now_ms, day, month, total);
}

int ar_pg_usage_by_key(void *impl, int64_t now_ms, ar_key_usage_list_t *out)
{
    char d[16], m[16];
    periods(now_ms, d, m);
    out->items = NULL;
    out->cnt = 0;
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_text(&a, d);
    ar_pg_text(&a, m);
    PGresult *r;
    int rc = ar_pg_run(impl,
                       "SELECT key_id, " SUMS ", "
                       "COALESCE(SUM(requests) FILTER (WHERE day = $1), 0), "
                       "COALESCE(SUM(prompt_tokens) FILTER (WHERE day = $1), 0), "
                       "COALESCE(SUM(completion_tokens) FILTER (WHERE day = $1), 0), "
                       "COALESCE(SUM(cost_usd) FILTER (WHERE day = $1), 0) "
                       "FROM usage_daily WHERE day LIKE $2 GROUP BY key_id ORDER BY key_id",
                       &a, &r, "reading usage", NULL, 0);
    ar_pg_params_dispose(&a);
    if (rc)
        return AR_EIO;
    int n = PQntuples(r);
    out->items = ar_xcalloc((size_t)n + 1, sizeof(*out->items));
    for (int i = 0; i < n; i++) {
        ar_key_usage_t *u = &out->items[out->cnt++];
        u->key_id = ar_pg_i64(r, i, 0);
        totals_from(r, i, 1, &u->month);
        totals_from(r, i, 5, &u->day);
    }
    PQclear(r);
    return 0;
}

int ar_pg_stats(void *impl, int64_t now_ms, ar_store_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_int(&a, now_ms);
    PGresult *r;
    int rc = ar_pg_run(
        impl,
        "SELECT COUNT(*) FILTER (WHERE revoked = 0 AND (expires_ms = 0 OR expires_ms > "
        "$1::bigint)), "
        "COUNT(*) FILTER (WHERE revoked != 0), "
        "COUNT(*) FILTER (WHERE revoked = 0 AND expires_ms != 0 AND expires_ms <= $1::bigint) "
        "FROM keys",
        &a, &r, "reading stats", NULL, 0);
    ar_pg_params_dispose(&a);
    if (rc)
        return AR_EIO;
    out->keys_active = ar_pg_i64(r, 0, 0);
    out->keys_revoked = ar_pg_i64(r, 0, 1);
    out->keys_expired = ar_pg_i64(r, 0, 2);
    PQclear(r);
    return usage_of(impl, true, 0, now_ms, &out->day, &out->month, &out->total);
}

/* ---- reports over the ledger ---- */

/* Every filter is always bound; an unset one makes its test true. */
#define SPEND_WHERE                                                                                \
    " WHERE ($1::bigint < 0 OR key_id = $1::bigint) AND ($2::text IS NULL OR model = $2::text)"    \
    " AND ($3::text IS NULL OR credential = $3::text) AND ($4::bigint = 0 OR ts_ms >= $4::bigint)" \
    " AND ($5::bigint = 0 OR ts_ms < $5::bigint)"

static void bind_filter(pg_params_t *a, const ar_spend_filter_t *f)
{
    ar_pg_int(a, f->key_id);
    ar_pg_text(a, f->model);
    ar_pg_text(a, f->credential);
    ar_pg_int(a, f->from_ms > 0 ? f->from_ms : 0);
    ar_pg_int(a, f->to_ms > 0 ? f->to_ms : 0);
}

int ar_pg_spend_totals(void *impl, const ar_spend_filter_t *f, ar_spend_group_t by,
                       ar_spend_total_list_t *out)
{
    static const char *const groups[] = {
        [AR_SPEND_GROUP_NONE] = "''",
        [AR_SPEND_GROUP_DAY] =
            "to_char(to_timestamp(ts_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        [AR_SPEND_GROUP_KEY] = "key_id::text",
        [AR_SPEND_GROUP_MODEL] = "model COLLATE \"C\"",
        [AR_SPEND_GROUP_CREDENTIAL] = "credential COLLATE \"C\"",
    };
    char sql[1100];
    /* key ids sort as numbers, the rest as text in byte order, as SQLite's */
    snprintf(sql, sizeof(sql),
             "SELECT %s AS g, COUNT(*), COUNT(*) FILTER (WHERE status >= 400), "
             "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
             "COALESCE(SUM(cost_usd), 0) FROM spend" SPEND_WHERE "%s%s",
             groups[by], by == AR_SPEND_GROUP_NONE ? "" : " GROUP BY 1",
             by == AR_SPEND_GROUP_NONE  ? ""
             : by == AR_SPEND_GROUP_KEY ? " ORDER BY MIN(key_id)"
                                        : " ORDER BY 1");
    pg_params_t a;
    ar_pg_params_init(&a);
    bind_filter(&a, f);
    PGresult *r;
    int rc = ar_pg_run(impl, sql, &a, &r, "reading spend", NULL, 0);
    ar_pg_params_dispose(&a);
    if (rc)
        return AR_EIO;
    int n = PQntuples(r);
    out->items = ar_xrealloc(out->items, (out->cnt + (size_t)n + 1) * sizeof(*out->items));
    for (int i = 0; i < n; i++) {
        ar_spend_total_t *t = &out->items[out->cnt++];
        t->group = ar_pg_str(r, i, 0);
        t->requests = ar_pg_i64(r, i, 1);
        t->errors = ar_pg_i64(r, i, 2);
        t->prompt_tokens = ar_pg_i64(r, i, 3);
        t->completion_tokens = ar_pg_i64(r, i, 4);
        t->cost_usd = ar_pg_f64(r, i, 5);
    }
    PQclear(r);
    return 0;
}

int ar_pg_spend_each(void *impl, const ar_spend_filter_t *f, size_t max, ar_spend_each_fn fn,
                     void *ud)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    bind_filter(&a, f);
    ar_pg_int(&a, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    PGresult *r;
    int rc =
        ar_pg_run(impl,
                  "SELECT id, request_id, ts_ms, key_id, model, upstream_model, credential, "
                  "prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens, "
                  "reasoning_tokens, cost_usd, status, latency_ms, ttfb_ms, stream "
                  "FROM spend" SPEND_WHERE " ORDER BY ts_ms, id COLLATE \"C\" LIMIT $6::bigint",
                  &a, &r, "reading spend", NULL, 0);
    ar_pg_params_dispose(&a);
    if (rc)
        return AR_EIO;
    int stop = 0;
    for (int i = 0; i < PQntuples(r) && !stop; i++) {
        ar_spend_t s;
        memset(&s, 0, sizeof(s));
        snprintf(s.id, sizeof(s.id), "%s", PQgetvalue(r, i, 0));
        snprintf(s.request_id, sizeof(s.request_id), "%s", PQgetvalue(r, i, 1));
        s.ts_ms = ar_pg_i64(r, i, 2);
        s.key_id = ar_pg_i64(r, i, 3);
        /* the result's texts live until PQclear: borrowed for fn's call */
        s.model = PQgetvalue(r, i, 4);
        s.upstream_model = PQgetvalue(r, i, 5);
        s.credential = PQgetvalue(r, i, 6);
        s.prompt_tokens = ar_pg_i64(r, i, 7);
        s.completion_tokens = ar_pg_i64(r, i, 8);
        s.cached_tokens = ar_pg_i64(r, i, 9);
        s.cache_creation_tokens = ar_pg_i64(r, i, 10);
        s.reasoning_tokens = ar_pg_i64(r, i, 11);
        s.cost_usd = ar_pg_f64(r, i, 12);
        s.status = (int)ar_pg_i64(r, i, 13);
        s.latency_ms = ar_pg_i64(r, i, 14);
        s.ttfb_ms = ar_pg_i64(r, i, 15);
        s.stream = ar_pg_i64(r, i, 16) != 0;
        stop = fn(ud, &s);
    }
    PQclear(r);
    return stop;
}
