/*
 * litellm.c: the queries on a LiteLLM deployment's database (see litellm.h). Every value
 * travels as a query parameter. Timestamps: LiteLLM's columns are TIMESTAMP(3) without a
 * time zone holding UTC, so they are converted AT TIME ZONE 'UTC' both ways.
 *
 * libpq runs in non-blocking mode (pg_wait.h): the connection gives up at connect_timeout
 * and each query at QUERY_TIMEOUT_MS, so a paused database costs a LiteLLM thread a
 * bounded wait, then AR_EIO; a connection whose query timed out answers nothing more (the
 * gateway opens a new one, as for any AR_EIO).
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "store/litellm.h"
#include "store/pg_wait.h"

#define QUERY_TIMEOUT_MS 10000

struct ar_ll_db {
    PGconn *conn;
    bool broken; /* a query timed out or failed half way: the session is unusable */
};

/* Runs sql (n parameters p; p NULL: the simple protocol) within QUERY_TIMEOUT_MS.
 * @return the result (PQclear it; one with PGRES_FATAL_ERROR when the session broke). */
static PGresult *run(ar_ll_db_t *db, const char *sql, int n, const char *const *p)
{
    bool timed_out = false;
    PGresult *r = db->broken
                      ? NULL
                      : ar_pgw_exec(db->conn, sql, n, p, NULL, NULL, QUERY_TIMEOUT_MS, &timed_out);
    if (!r) {
        db->broken = true;
        r = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
    }
    return r;
}

int ar_ll_db_open(const char *url, int64_t connect_timeout_ms, ar_ll_db_t **out, char *err,
                  size_t errlen)
{
    /* a name the operator can find in pg_stat_activity, unless the URL gives its own */
    const char *const keys[] = {"options", "fallback_application_name", "dbname", NULL};
    const char *const vals[] = {"-c client_min_messages=warning", AR_LL_APPLICATION_NAME, url,
                                NULL};
    bool timed_out = false;
    PGconn *c = ar_pgw_connect(keys, vals, connect_timeout_ms, &timed_out);
    if (!c) {
        snprintf(err, errlen, "litellm_db.database_url: out of memory");
        return AR_ENOMEM;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password */
        const char *msg = PQerrorMessage(c);
        if (timed_out)
            snprintf(err, errlen,
                     "litellm_db.database_url: cannot connect to PostgreSQL at %s:%s: no answer "
                     "within %lld ms",
                     PQhost(c), PQport(c), (long long)connect_timeout_ms);
        else
            snprintf(err, errlen, "litellm_db.database_url: cannot connect to PostgreSQL: %.*s",
                     (int)strcspn(msg, "\n"), msg);
        PQfinish(c);
        return AR_EIO;
    }
    ar_ll_db_t *db = ar_xcalloc(1, sizeof(*db));
    db->conn = c;
    *out = db;
    return 0;
}

void ar_ll_db_close(ar_ll_db_t *db)
{
    if (!db)
        return;
    PQfinish(db->conn);
    ar_free(db);
}

int ar_ll_db_ping(ar_ll_db_t *db)
{
    PGresult *r = run(db, "SELECT 1", 0, NULL);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : AR_EIO;
    PQclear(r);
    return rc;
}

static char *text_of(const PGresult *r, int col)
{
    return ar_xstrdup(PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

static int64_t int_of(const PGresult *r, int col, int64_t dflt)
{
    return PQgetisnull(r, 0, col) ? dflt : strtoll(PQgetvalue(r, 0, col), NULL, 10);
}

/* The models array arrives joined by newlines (a model name holds none). */
static void split_models(const char *s, ar_ll_token_t *t)
{
    if (!*s)
        return;
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == '\n';
    t->models = ar_xcalloc(n, sizeof(char *));
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, "\n");
        if (len)
            t->models[t->models_cnt++] = ar_xstrndup(p, len);
        if (!p[len])
            break;
        p += len + 1;
    }
}

int ar_ll_token_get(ar_ll_db_t *db, const char *token, ar_ll_token_t *out)
{
    static const char sql[] =
        "SELECT COALESCE(blocked, false),"
        " (EXTRACT(EPOCH FROM expires AT TIME ZONE 'UTC') * 1000)::bigint,"
        " spend, max_budget, rpm_limit, tpm_limit,"
        " COALESCE(array_to_string(models, E'\\n'), ''), key_alias, user_id, team_id"
        " FROM \"LiteLLM_VerificationToken\" WHERE token = $1";
    const char *params[1] = {token};
    PGresult *r = run(db, sql, 1, params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return AR_EIO;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return AR_ENOTFOUND;
    }
    memset(out, 0, sizeof(*out));
    out->blocked = PQgetvalue(r, 0, 0)[0] == 't';
    out->expires_ms = int_of(r, 1, 0);
    out->spend = PQgetisnull(r, 0, 2) ? 0 : strtod(PQgetvalue(r, 0, 2), NULL);
    out->max_budget = PQgetisnull(r, 0, 3) ? -1 : strtod(PQgetvalue(r, 0, 3), NULL);
    out->rpm_limit = int_of(r, 4, -1);
    out->tpm_limit = int_of(r, 5, -1);
    split_models(PQgetvalue(r, 0, 6), out);
    out->key_alias = text_of(r, 7);
    out->user_id = text_of(r, 8);
    out->team_id = text_of(r, 9);
    PQclear(r);
    return 0;
}

void ar_ll_token_free(ar_ll_token_t *t)
{
    for (size_t i = 0; i < t->models_cnt; i++)
        ar_free(t->models[i]);
    ar_free(t->models);
    ar_free(t->key_alias);
    ar_free(t->user_id);
    ar_free(t->team_id);
    memset(t, 0, sizeof(*t));
}

static bool exec_ok(ar_ll_db_t *db, const char *sql)
{
    PGresult *r = run(db, sql, 0, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

/* One row; *inserted tells whether it was new. */
static int insert_row(ar_ll_db_t *db, const ar_ll_spend_t *s, bool *inserted)
{
    static const char sql[] =
        "INSERT INTO \"LiteLLM_SpendLogs\" (request_id, call_type, api_key, spend,"
        " total_tokens, prompt_tokens, completion_tokens, \"startTime\", \"endTime\","
        " request_duration_ms, \"completionStartTime\", model, model_group,"
        " custom_llm_provider, api_base, \"user\", metadata, team_id, status)"
        " VALUES ($1, $2, $3, $4::float8, $5::int + $6::int, $5::int, $6::int,"
        " to_timestamp($7::text::float8 / 1000) AT TIME ZONE 'UTC',"
        " to_timestamp($8::text::float8 / 1000) AT TIME ZONE 'UTC', ($8::text::bigint - "
        "$7::text::bigint)::int,"
        " CASE WHEN $9::text::bigint > 0 THEN to_timestamp($9::text::float8 / 1000) AT TIME ZONE "
        "'UTC' END,"
        " $10, $11, $12, $13, $14,"
        " jsonb_build_object('user_api_key', $3::text, 'user_api_key_alias', $15::text,"
        " 'user_api_key_user_id', $14::text, 'user_api_key_team_id', $16::text,"
        " 'status', $17::text, 'source', 'airouter'),"
        " NULLIF($16, ''), $17) ON CONFLICT (request_id) DO NOTHING";
    char spend[40], prompt[24], completion[24], start[24], end[24], first[24];
    snprintf(spend, sizeof(spend), "%.17g", s->spend);
    snprintf(prompt, sizeof(prompt), "%lld", (long long)s->prompt_tokens);
    snprintf(completion, sizeof(completion), "%lld", (long long)s->completion_tokens);
    snprintf(start, sizeof(start), "%lld", (long long)s->start_ms);
    snprintf(end, sizeof(end), "%lld", (long long)s->end_ms);
    snprintf(first, sizeof(first), "%lld", (long long)s->first_ms);
    const char *p[17] = {s->request_id,  s->call_type, s->api_key,  spend,   prompt,
                         completion,     start,        end,         first,   s->model,
                         s->model_group, s->provider,  s->api_base, s->user, s->key_alias,
                         s->team_id,     s->status};
    PGresult *r = run(db, sql, 17, p);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    *inserted = ok && strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return ok ? 0 : AR_EIO;
}

static int add_spend(ar_ll_db_t *db, const ar_ll_spend_t *s)
{
    static const char sql[] = "UPDATE \"LiteLLM_VerificationToken\" SET spend = spend + $1::float8"
                              " WHERE token = $2";
    char spend[40];
    snprintf(spend, sizeof(spend), "%.17g", s->spend);
    const char *p[2] = {spend, s->api_key};
    PGresult *r = run(db, sql, 2, p);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : AR_EIO;
    PQclear(r);
    return rc;
}

int ar_ll_spend_write(ar_ll_db_t *db, const ar_ll_spend_t *rows, size_t n)
{
    if (!exec_ok(db, "BEGIN"))
        return AR_EIO;
    for (size_t i = 0; i < n; i++) {
        bool inserted = false;
        if (insert_row(db, &rows[i], &inserted) != 0 ||
            (inserted && rows[i].spend != 0 && add_spend(db, &rows[i]) != 0)) {
            exec_ok(db, "ROLLBACK");
            return AR_EIO;
        }
    }
    return exec_ok(db, "COMMIT") ? 0 : AR_EIO;
}
