/*
 * postgres.c: the PostgreSQL store backend: the connection (libpq, from the
 * postgresql:// URL as given, within storage.connect_timeout unless the URL sets
 * connect_timeout), running parameterised queries, migrations, plans and keys, and the
 * backend table (the ledger, tenancy, stored responses and backup live in postgres_*.c).
 * The schema is the SQLite backend's, translated (BIGSERIAL ids, BIGINT, DOUBLE PRECISION,
 * BYTEA for the sealed secrets, the change counter bumped by a PL/pgSQL trigger) and
 * applied as the same numbered migrations recorded in schema_version, each in a
 * transaction that holds an advisory lock, so that two processes opening a new database do
 * not both migrate it.
 *
 * Calls are synchronous for the caller, but libpq runs in non-blocking mode under them
 * (pg_wait.h): a query that has no answer within storage.query_timeout fails with AR_EIO
 * ("timed out"), so a paused or overloaded database never holds a store thread forever.
 * That session is dropped (its late answer must not be read as the next query's), and the
 * next call opens a new one. A connection found broken is reset once before a call fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "store/pg_wait.h"
#include "store/postgres_int.h"

#define MIGRATION_LOCK "4242017" /* pg_advisory_xact_lock key of the migrations */

/* The trigger of each tenancy table, per row as in SQLite. */
#define BUMP(t)                                                                                    \
    "CREATE TRIGGER " #t "_bump AFTER INSERT OR UPDATE OR DELETE ON " #t                           \
    " FOR EACH ROW EXECUTE FUNCTION airouter_bump_change_counter();"

static const char *const migrations[] = {
    /* 1: plans and virtual keys */
    "CREATE TABLE plans ("
    " id BIGSERIAL PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " description TEXT NOT NULL DEFAULT '',"
    " max_tokens BIGINT NOT NULL,"
    " created_ms BIGINT NOT NULL);"
    "CREATE TABLE keys ("
    " id BIGSERIAL PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " hash TEXT NOT NULL UNIQUE,"
    " masked TEXT NOT NULL,"
    " created_ms BIGINT NOT NULL,"
    " expires_ms BIGINT NOT NULL DEFAULT 0,"
    " revoked INTEGER NOT NULL DEFAULT 0,"
    " rpm BIGINT NOT NULL DEFAULT -1,"
    " tpm BIGINT NOT NULL DEFAULT -1,"
    " daily_tokens BIGINT NOT NULL DEFAULT -1,"
    " monthly_tokens BIGINT NOT NULL DEFAULT -1,"
    " limit_tokens BIGINT NOT NULL DEFAULT -1,"
    " max_budget_usd DOUBLE PRECISION NOT NULL DEFAULT -1,"
    " plan_id BIGINT REFERENCES plans(id),"
    " models TEXT NOT NULL DEFAULT '');",
    /* 2: key change times, the ledger, usage, connections, provider models, assignments,
     * and the change counter */
    "ALTER TABLE keys ADD COLUMN updated_ms BIGINT NOT NULL DEFAULT 0;"
    "UPDATE keys SET updated_ms = created_ms;"
    "CREATE INDEX keys_updated ON keys(updated_ms);"
    "CREATE TABLE spend ("
    " id TEXT PRIMARY KEY,"
    " request_id TEXT NOT NULL,"
    " ts_ms BIGINT NOT NULL,"
    " key_id BIGINT NOT NULL,"
    " model TEXT NOT NULL,"
    " upstream_model TEXT NOT NULL,"
    " credential TEXT NOT NULL,"
    " prompt_tokens BIGINT NOT NULL,"
    " completion_tokens BIGINT NOT NULL,"
    " cached_tokens BIGINT NOT NULL,"
    " cache_creation_tokens BIGINT NOT NULL,"
    " reasoning_tokens BIGINT NOT NULL,"
    " cost_usd DOUBLE PRECISION NOT NULL,"
    " status INTEGER NOT NULL,"
    " latency_ms BIGINT NOT NULL,"
    " ttfb_ms BIGINT NOT NULL,"
    " stream INTEGER NOT NULL);"
    "CREATE INDEX spend_key_ts ON spend(key_id, ts_ms);"
    "CREATE TABLE usage_daily ("
    " key_id BIGINT NOT NULL,"
    " day TEXT NOT NULL,"
    " requests BIGINT NOT NULL DEFAULT 0,"
    " prompt_tokens BIGINT NOT NULL DEFAULT 0,"
    " completion_tokens BIGINT NOT NULL DEFAULT 0,"
    " cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,"
    " PRIMARY KEY (key_id, day));"
    "CREATE TABLE connections ("
    " id BIGSERIAL PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " provider TEXT NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " secret BYTEA NOT NULL,"
    " created_ms BIGINT NOT NULL,"
    " updated_ms BIGINT NOT NULL);"
    "CREATE TABLE provider_models ("
    " id BIGSERIAL PRIMARY KEY,"
    " conn_id BIGINT NOT NULL REFERENCES connections(id),"
    " name TEXT NOT NULL,"
    " remote TEXT NOT NULL,"
    " deployment TEXT NOT NULL DEFAULT '',"
    " created_ms BIGINT NOT NULL,"
    " UNIQUE (conn_id, name));"
    "CREATE TABLE assignments ("
    " id BIGSERIAL PRIMARY KEY,"
    " key_id BIGINT NOT NULL REFERENCES keys(id),"
    " model_id BIGINT NOT NULL REFERENCES provider_models(id),"
    " alias TEXT NOT NULL,"
    " tps DOUBLE PRECISION NOT NULL DEFAULT -1,"
    " created_ms BIGINT NOT NULL,"
    " UNIQUE (key_id, alias));"
    "CREATE TABLE change_counter (seq BIGINT NOT NULL);"
    "INSERT INTO change_counter VALUES (0);"
    "CREATE FUNCTION airouter_bump_change_counter() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN UPDATE change_counter SET seq = seq + 1; RETURN NULL; END $$;" BUMP(plans) BUMP(keys)
        BUMP(connections) BUMP(provider_models) BUMP(assignments),
    /* 3: stored responses (no change-counter trigger: not tenancy) */
    "CREATE TABLE responses ("
    " id TEXT PRIMARY KEY,"
    " owner BIGINT NOT NULL,"
    " previous_id TEXT,"
    " model TEXT NOT NULL,"
    " created_ms BIGINT NOT NULL,"
    " input TEXT NOT NULL,"
    " output TEXT NOT NULL);"
    "CREATE INDEX responses_created ON responses(created_ms);",
};
#undef BUMP
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- parameters ---- */

void ar_pg_params_init(pg_params_t *p)
{
    memset(p, 0, sizeof(*p));
}

void ar_pg_params_dispose(pg_params_t *p)
{
    for (int i = 0; i < p->n; i++)
        ar_free(p->own[i]);
    ar_free(p->v);
    ar_free(p->len);
    ar_free(p->fmt);
    ar_free(p->own);
    memset(p, 0, sizeof(*p));
}

static int add(pg_params_t *p, const char *v, int len, int fmt, char *own)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->v = ar_xrealloc(p->v, (size_t)p->cap * sizeof(*p->v));
        p->len = ar_xrealloc(p->len, (size_t)p->cap * sizeof(*p->len));
        p->fmt = ar_xrealloc(p->fmt, (size_t)p->cap * sizeof(*p->fmt));
        p->own = ar_xrealloc(p->own, (size_t)p->cap * sizeof(*p->own));
    }
    p->v[p->n] = v;
    p->len[p->n] = len;
    p->fmt[p->n] = fmt;
    p->own[p->n] = own;
    return p->n++;
}

void ar_pg_int(pg_params_t *p, int64_t x)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", (long long)x);
    char *s = ar_xstrdup(buf);
    add(p, s, 0, 0, s);
}

void ar_pg_real(pg_params_t *p, double x)
{
    char buf[40];
    snprintf(buf, sizeof(buf), "%.17g", x); /* round-trips every double */
    char *s = ar_xstrdup(buf);
    add(p, s, 0, 0, s);
}

void ar_pg_text(pg_params_t *p, const char *s)
{
    add(p, s, 0, 0, NULL);
}

void ar_pg_bytes(pg_params_t *p, const void *b, size_t n)
{
    add(p, b ? b : "", (int)n, 1, NULL);
}

/* ---- queries ---- */

static int fail(pg_t *q, PGresult *r, const char *what, char *err, size_t errlen)
{
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(q->conn);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    int rc = state && strncmp(state, "23", 2) == 0 ? AR_EINVAL : AR_EIO;
    /* libpq's messages end with a newline */
    int n = (int)strcspn(msg, "\n");
    if (!r && q->connect_timed_out) /* libpq's message says nothing of it */
        snprintf(err, errlen, "%s: cannot connect to PostgreSQL: no answer within %lld ms", what,
                 (long long)q->connect_timeout_ms);
    else
        snprintf(err, errlen, "%s: %.*s", what, n, msg);
    PQclear(r);
    return rc;
}

static PGresult *exec(pg_t *q, const char *sql, const pg_params_t *p)
{
    /* no values: the SQL is a constant of this backend (migrations hold several statements,
     * which only the simple protocol runs) */
    PGresult *r = ar_pgw_exec(q->conn, sql, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                              p ? p->fmt : NULL, q->query_timeout_ms, &q->timed_out);
    if (!r)
        q->broken = true; /* a query may be on its way: this session answers nothing else */
    return r;
}

static bool ok(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* A new session when the last one broke (never inside a transaction: its work is gone). */
static bool usable(pg_t *q)
{
    if (q->in_tx)
        return !q->broken && PQstatus(q->conn) == CONNECTION_OK;
    if (!q->broken && PQstatus(q->conn) == CONNECTION_OK)
        return true;
    q->broken = !ar_pgw_reset(q->conn, q->connect_timeout_ms, &q->connect_timed_out);
    return !q->broken;
}

int ar_pg_run(pg_t *q, const char *sql, const pg_params_t *p, PGresult **res, const char *what,
              char *err, size_t errlen)
{
    char ignored[8];
    if (!err) {
        err = ignored;
        errlen = sizeof(ignored);
    }
    if (res)
        *res = NULL;
    q->timed_out = false;
    if (!usable(q)) {
        if (q->in_tx)
            snprintf(err, errlen, "%s: the connection to PostgreSQL was lost in a transaction",
                     what);
        else
            fail(q, NULL, what, err, errlen);
        return AR_EIO;
    }
    PGresult *r = exec(q, sql, p);
    if (!ok(r) && !q->timed_out && PQstatus(q->conn) == CONNECTION_BAD && !q->in_tx) {
        /* the server restarted or the connection dropped: one new session, one more try */
        PQclear(r);
        q->broken = !ar_pgw_reset(q->conn, q->connect_timeout_ms, &q->connect_timed_out);
        r = q->broken ? NULL : exec(q, sql, p);
    }
    if (q->timed_out) {
        snprintf(err, errlen, "%s: timed out after %lld ms (PostgreSQL did not answer)", what,
                 (long long)q->query_timeout_ms);
        return AR_EIO;
    }
    if (!ok(r))
        return fail(q, r, what, err, errlen);
    if (res)
        *res = r;
    else
        PQclear(r);
    return 0;
}

int ar_pg_select_by(pg_t *q, const char *sql, int64_t v, PGresult **res, const char *what)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_int(&a, v);
    int rc = ar_pg_run(q, sql, &a, res, what, NULL, 0);
    ar_pg_params_dispose(&a);
    return rc;
}

int ar_pg_begin(pg_t *q, char *err, size_t errlen)
{
    int rc = ar_pg_run(q, "BEGIN", NULL, NULL, "starting a transaction", err, errlen);
    q->in_tx = rc == 0;
    return rc;
}

int ar_pg_commit(pg_t *q, char *err, size_t errlen)
{
    int rc = ar_pg_run(q, "COMMIT", NULL, NULL, "committing", err, errlen);
    q->in_tx = false;
    return rc;
}

void ar_pg_rollback(pg_t *q)
{
    (void)ar_pg_run(q, "ROLLBACK", NULL, NULL, "rolling back", NULL, 0);
    q->in_tx = false;
}

int64_t ar_pg_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

double ar_pg_f64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}

char *ar_pg_str(const PGresult *r, int row, int col)
{
    return ar_xstrdup(PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

int ar_pg_int64(pg_t *q, const char *sql, const pg_params_t *p, int64_t *out)
{
    PGresult *r;
    *out = 0;
    if (ar_pg_run(q, sql, p, &r, "reading", NULL, 0) != 0)
        return AR_EIO;
    if (PQntuples(r) > 0)
        *out = ar_pg_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

/* ---- opening ---- */

static int migrate(pg_t *q, char *err, size_t errlen)
{
    /* the lock serialises migrations between processes; the version is read under it */
    int rc = ar_pg_begin(q, err, errlen);
    rc = rc ? rc
            : ar_pg_run(q, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")", NULL, NULL,
                        "locking the schema", err, errlen);
    rc = rc ? rc
            : ar_pg_run(q, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                        NULL, NULL, "creating schema_version", err, errlen);
    int64_t v = 0;
    rc = rc ? rc : ar_pg_int64(q, "SELECT version FROM schema_version", NULL, &v);
    if (rc == 0 && v > SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "the database is at schema version %lld, newer than this airouter's %d; use the "
                 "airouter that wrote it",
                 (long long)v, SCHEMA_VERSION);
        rc = AR_EINVAL;
    }
    q->version = (int)v;
    for (int n = q->version + 1; n <= SCHEMA_VERSION && !rc; n++) {
        char what[64];
        snprintf(what, sizeof(what), "migrating the database to schema version %d", n);
        pg_params_t p;
        ar_pg_params_init(&p);
        ar_pg_int(&p, n);
        rc = ar_pg_run(q, migrations[n - 1], NULL, NULL, what, err, errlen);
        rc = rc ? rc : ar_pg_run(q, "DELETE FROM schema_version", NULL, NULL, what, err, errlen);
        rc = rc ? rc
                : ar_pg_run(q, "INSERT INTO schema_version VALUES ($1::integer)", &p, NULL, what,
                            err, errlen);
        ar_pg_params_dispose(&p);
        if (rc == 0)
            q->version = n;
    }
    if (rc) {
        ar_pg_rollback(q);
        return rc;
    }
    return ar_pg_commit(q, err, errlen);
}

#define CONNECT_TIMEOUT_MS 5000
#define QUERY_TIMEOUT_MS 10000

static int pg_open(const char *location, const ar_store_opts_t *o, void **impl, char *err,
                   size_t errlen)
{
    pg_t *q = ar_xcalloc(1, sizeof(*q));
    q->connect_timeout_ms =
        o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms : CONNECT_TIMEOUT_MS;
    q->query_timeout_ms = o && o->query_timeout_ms > 0 ? o->query_timeout_ms : QUERY_TIMEOUT_MS;
    /* options first: the URL's own, if any, win; these survive a reset, unlike a SET */
    const char *const keys[] = {"options", "dbname", NULL};
    const char *const vals[] = {"-c client_min_messages=warning", location, NULL};
    q->conn = ar_pgw_connect(keys, vals, q->connect_timeout_ms, &q->connect_timed_out);
    if (!q->conn) {
        ar_free(q);
        snprintf(err, errlen, "storage.database_url: out of memory");
        return AR_ENOMEM;
    }
    if (PQstatus(q->conn) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password */
        const char *msg = PQerrorMessage(q->conn);
        int n = (int)strcspn(msg, "\n");
        if (q->connect_timed_out)
            snprintf(err, errlen,
                     "storage.database_url: cannot connect to PostgreSQL at %s:%s: no answer "
                     "within %lld ms",
                     PQhost(q->conn), PQport(q->conn), (long long)q->connect_timeout_ms);
        else
            snprintf(err, errlen, "storage.database_url: cannot connect to PostgreSQL: %.*s", n,
                     msg);
        PQfinish(q->conn);
        ar_free(q);
        return AR_EIO;
    }
    /* notices (CREATE TABLE IF NOT EXISTS ... skipping) are not the operator's business,
     * whatever options the URL set */
    int rc =
        ar_pg_run(q, "SET client_min_messages = warning", NULL, NULL, "configuring", err, errlen);
    rc = rc ? rc : migrate(q, err, errlen);
    if (rc) {
        PQfinish(q->conn);
        ar_free(q);
        return rc;
    }
    *impl = q;
    return 0;
}

static void pg_close(void *impl)
{
    pg_t *q = impl;
    PQfinish(q->conn);
    ar_free(q);
}

static int pg_schema_version(void *impl)
{
    return ((pg_t *)impl)->version;
}

/* ---- plans and keys ---- */

static int pg_plan_create(void *impl, const ar_plan_t *p, int64_t *id, char *err, size_t errlen)
{
    pg_t *q = impl;
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_text(&a, p->name);
    ar_pg_text(&a, p->description ? p->description : "");
    ar_pg_int(&a, p->max_tokens);
    ar_pg_int(&a, ar_wall_ms());
    PGresult *r;
    int rc = ar_pg_run(q,
                       "INSERT INTO plans (name, description, max_tokens, created_ms) VALUES "
                       "($1, $2, $3::bigint, $4::bigint) RETURNING id",
                       &a, &r, "creating a plan", err, errlen);
    ar_pg_params_dispose(&a);
    if (rc == AR_EINVAL)
        snprintf(err, errlen, "a plan named '%s' exists already", p->name);
    if (rc)
        return rc;
    *id = ar_pg_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

static int pg_plan_list(void *impl, ar_plan_list_t *out)
{
    PGresult *r;
    out->items = NULL;
    out->cnt = 0;
    if (ar_pg_run(impl,
                  "SELECT id, name, description, max_tokens, created_ms FROM plans ORDER BY id",
                  NULL, &r, "listing plans", NULL, 0))
        return AR_EIO;
    int n = PQntuples(r);
    out->items = ar_xcalloc((size_t)n + 1, sizeof(*out->items));
    for (int i = 0; i < n; i++) {
        ar_plan_t *p = &out->items[out->cnt++];
        p->id = ar_pg_i64(r, i, 0);
        p->name = ar_pg_str(r, i, 1);
        p->description = ar_pg_str(r, i, 2);
        p->max_tokens = ar_pg_i64(r, i, 3);
        p->created_ms = ar_pg_i64(r, i, 4);
    }
    PQclear(r);
    return 0;
}

#define KEY_COLUMNS                                                                                \
    "id, name, hash, masked, created_ms, expires_ms, revoked, rpm, tpm, daily_tokens, "            \
    "monthly_tokens, limit_tokens, max_budget_usd, COALESCE(plan_id, 0), models, updated_ms"

static void key_from_row(const PGresult *r, int i, ar_vkey_t *k)
{
    memset(k, 0, sizeof(*k));
    k->id = ar_pg_i64(r, i, 0);
    k->name = ar_pg_str(r, i, 1);
    snprintf(k->hash, sizeof(k->hash), "%s", PQgetvalue(r, i, 2));
    snprintf(k->masked, sizeof(k->masked), "%s", PQgetvalue(r, i, 3));
    k->created_ms = ar_pg_i64(r, i, 4);
    k->expires_ms = ar_pg_i64(r, i, 5);
    k->revoked = ar_pg_i64(r, i, 6) != 0;
    k->rpm = ar_pg_i64(r, i, 7);
    k->tpm = ar_pg_i64(r, i, 8);
    k->daily_tokens = ar_pg_i64(r, i, 9);
    k->monthly_tokens = ar_pg_i64(r, i, 10);
    k->limit_tokens = ar_pg_i64(r, i, 11);
    k->max_budget_usd = ar_pg_f64(r, i, 12);
    k->plan_id = ar_pg_i64(r, i, 13);
    k->models = ar_pg_str(r, i, 14);
    k->updated_ms = ar_pg_i64(r, i, 15);
}

/* The columns a key's creation and update both write, as $1..$12 in this order. */
#define KEY_WRITE_COLUMNS                                                                          \
    "name, hash, masked, expires_ms, rpm, tpm, daily_tokens, monthly_tokens, limit_tokens, "       \
    "max_budget_usd, plan_id, models"
#define KEY_WRITE_VALUES                                                                           \
    "$1, $2, $3, $4::bigint, $5::bigint, $6::bigint, $7::bigint, $8::bigint, $9::bigint, "         \
    "$10::double precision, $11::bigint, $12"

static void bind_key(pg_params_t *a, const ar_vkey_t *k)
{
    ar_pg_text(a, k->name ? k->name : "");
    ar_pg_text(a, k->hash);
    ar_pg_text(a, k->masked);
    ar_pg_int(a, k->expires_ms);
    ar_pg_int(a, k->rpm);
    ar_pg_int(a, k->tpm);
    ar_pg_int(a, k->daily_tokens);
    ar_pg_int(a, k->monthly_tokens);
    ar_pg_int(a, k->limit_tokens);
    ar_pg_real(a, k->max_budget_usd);
    if (k->plan_id > 0)
        ar_pg_int(a, k->plan_id);
    else
        ar_pg_text(a, NULL);
    ar_pg_text(a, k->models ? k->models : "");
}

/* Runs a key's INSERT or UPDATE (a) and disposes a; a constraint broken says which. */
static int write_key(void *impl, const char *sql, pg_params_t *a, PGresult **r, const char *what,
                     char *err, size_t errlen)
{
    int rc = ar_pg_run(impl, sql, a, r, what, err, errlen);
    ar_pg_params_dispose(a);
    if (rc == AR_EINVAL)
        snprintf(err, errlen, "that key exists already, or its plan does not");
    return rc;
}

static int pg_key_create(void *impl, const ar_vkey_t *k, int64_t *id, char *err, size_t errlen)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    bind_key(&a, k);
    ar_pg_int(&a, k->created_ms ? k->created_ms : ar_wall_ms());
    PGresult *r;
    int rc = write_key(impl,
                       "INSERT INTO keys (" KEY_WRITE_COLUMNS ", created_ms, updated_ms) VALUES "
                       "(" KEY_WRITE_VALUES ", $13::bigint, $13::bigint) RETURNING id",
                       &a, &r, "creating a key", err, errlen);
    if (rc)
        return rc;
    *id = ar_pg_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

static int pg_key_get(void *impl, int64_t id, const char *hash, ar_vkey_t *out)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    if (hash)
        ar_pg_text(&a, hash);
    else
        ar_pg_int(&a, id);
    PGresult *r;
    int rc = ar_pg_run(impl,
                       hash ? "SELECT " KEY_COLUMNS " FROM keys WHERE hash = $1"
                            : "SELECT " KEY_COLUMNS " FROM keys WHERE id = $1::bigint",
                       &a, &r, "reading a key", NULL, 0);
    ar_pg_params_dispose(&a);
    if (rc)
        return AR_EIO;
    rc = PQntuples(r) ? 0 : AR_ENOTFOUND;
    if (rc == 0)
        key_from_row(r, 0, out);
    PQclear(r);
    return rc;
}

static int pg_keys_changed_since(void *impl, int64_t since_ms, ar_vkey_list_t *out)
{
    out->items = NULL;
    out->cnt = 0;
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_int(&a, since_ms);
    PGresult *r;
    int rc = ar_pg_run(
        impl, "SELECT " KEY_COLUMNS " FROM keys WHERE updated_ms >= $1::bigint ORDER BY id", &a, &r,
        "listing keys", NULL, 0);
    ar_pg_params_dispose(&a);
    if (rc)
        return AR_EIO;
    int n = PQntuples(r);
    out->items = ar_xcalloc((size_t)n + 1, sizeof(*out->items));
    for (int i = 0; i < n; i++)
        key_from_row(r, i, &out->items[out->cnt++]);
    PQclear(r);
    return 0;
}

static int pg_key_list(void *impl, ar_vkey_list_t *out)
{
    return pg_keys_changed_since(impl, INT64_MIN, out);
}

static int pg_change_seq(void *impl, int64_t *seq)
{
    return ar_pg_int64(impl, "SELECT seq FROM change_counter", NULL, seq);
}

static int pg_key_revoke(void *impl, int64_t id)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_int(&a, ar_wall_ms());
    ar_pg_int(&a, id);
    PGresult *r;
    int rc = ar_pg_run(impl,
                       "UPDATE keys SET revoked = 1, updated_ms = $1::bigint WHERE id = $2::bigint",
                       &a, &r, "revoking a key", NULL, 0);
    ar_pg_params_dispose(&a);
    if (rc)
        return AR_EIO;
    rc = strcmp(PQcmdTuples(r), "0") == 0 ? AR_ENOTFOUND : 0;
    PQclear(r);
    return rc;
}

static int pg_key_update(void *impl, const ar_vkey_t *k, char *err, size_t errlen)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    bind_key(&a, k);
    ar_pg_int(&a, k->revoked ? 1 : 0);
    ar_pg_int(&a, k->id);
    ar_pg_int(&a, ar_wall_ms());
    PGresult *r;
    int rc = write_key(impl,
                       "UPDATE keys SET (" KEY_WRITE_COLUMNS ", revoked, updated_ms) = "
                       "(" KEY_WRITE_VALUES ", $13::integer, $15::bigint) WHERE id = $14::bigint",
                       &a, &r, "updating a key", err, errlen);
    if (rc)
        return rc;
    rc = strcmp(PQcmdTuples(r), "0") == 0 ? AR_ENOTFOUND : 0;
    PQclear(r);
    if (rc)
        snprintf(err, errlen, "no such key");
    return rc;
}

const ar_store_backend_t ar_store_postgres = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .schema_version = pg_schema_version,
    .plan_create = pg_plan_create,
    .plan_list = pg_plan_list,
    .key_create = pg_key_create,
    .key_get = pg_key_get,
    .key_list = pg_key_list,
    .key_revoke = pg_key_revoke,
    .key_update = pg_key_update,
    .keys_changed_since = pg_keys_changed_since,
    .change_seq = pg_change_seq,
    .spend_apply = ar_pg_spend_apply,
    .spend_count = ar_pg_spend_count,
    .usage = ar_pg_usage,
    .usage_by_key = ar_pg_usage_by_key,
    .stats = ar_pg_stats,
    .spend_totals = ar_pg_spend_totals,
    .spend_each = ar_pg_spend_each,
    .conn_create = ar_pg_conn_create,
    .conn_get = ar_pg_conn_get,
    .conn_list = ar_pg_conn_list,
    .conn_remove = ar_pg_conn_remove,
    .model_create = ar_pg_model_create,
    .model_list = ar_pg_model_list,
    .assign_create = ar_pg_assign_create,
    .assign_list = ar_pg_assign_list,
    .assign_remove = ar_pg_assign_remove,
    .response_put = ar_pg_response_put,
    .response_get = ar_pg_response_get,
    .response_delete = ar_pg_response_delete,
    .response_chain = ar_pg_response_chain,
    .responses_purge = ar_pg_responses_purge,
    .backup = ar_pg_backup,
    .restore = ar_pg_restore,
};
