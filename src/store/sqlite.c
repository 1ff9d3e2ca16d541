/*
 * sqlite.c: the embedded store backend: opening, migrations, plans and keys, and the
 * backend table (the ledger, tenancy, stored responses and backup live in sqlite_*.c). One connection per handle, WAL journal (readers
 * never wait for the writer), a busy timeout so that the CLI and a running server can
 * share the file, foreign keys on. The schema is a list of migrations applied in order at
 * open, each in its own transaction, recorded in schema_version: a database written by an
 * older airouter is brought up to date, one written by a newer one is refused.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "store/sqlite_int.h"

#define BUSY_TIMEOUT_MS 5000

/* Triggers bumping change_counter after every write to a tenancy table. */
#define BUMP(t, op)                                                                                \
    "CREATE TRIGGER " #t "_" #op " AFTER " #op " ON " #t                                           \
    " BEGIN UPDATE change_counter SET seq = seq + 1; END;"
#define BUMPS(t) BUMP(t, INSERT) BUMP(t, UPDATE) BUMP(t, DELETE)

static const char *const migrations[] = {
    /* 1: plans and virtual keys */
    "CREATE TABLE plans ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " description TEXT NOT NULL DEFAULT '',"
    " max_tokens INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE keys ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " hash TEXT NOT NULL UNIQUE,"
    " masked TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL DEFAULT 0,"
    " revoked INTEGER NOT NULL DEFAULT 0,"
    " rpm INTEGER NOT NULL DEFAULT -1,"
    " tpm INTEGER NOT NULL DEFAULT -1,"
    " daily_tokens INTEGER NOT NULL DEFAULT -1,"
    " monthly_tokens INTEGER NOT NULL DEFAULT -1,"
    " limit_tokens INTEGER NOT NULL DEFAULT -1,"
    " max_budget_usd REAL NOT NULL DEFAULT -1,"
    " plan_id INTEGER REFERENCES plans(id),"
    " models TEXT NOT NULL DEFAULT '');",
    /* 2: key change times, the spend ledger and its daily usage, connections with sealed
     * secrets, provider models, their assignment to keys, and the change counter every
     * tenancy write bumps (triggers, so that writes by any process count) */
    "ALTER TABLE keys ADD COLUMN updated_ms INTEGER NOT NULL DEFAULT 0;"
    "UPDATE keys SET updated_ms = created_ms;"
    "CREATE INDEX keys_updated ON keys(updated_ms);"
    "CREATE TABLE spend ("
    " id TEXT PRIMARY KEY,"
    " request_id TEXT NOT NULL,"
    " ts_ms INTEGER NOT NULL,"
    " key_id INTEGER NOT NULL,"
    " model TEXT NOT NULL,"
    " upstream_model TEXT NOT NULL,"
    " credential TEXT NOT NULL,"
    " prompt_tokens INTEGER NOT NULL,"
    " completion_tokens INTEGER NOT NULL,"
    " cached_tokens INTEGER NOT NULL,"
    " cache_creation_tokens INTEGER NOT NULL,"
    " reasoning_tokens INTEGER NOT NULL,"
    " cost_usd REAL NOT NULL,"
    " status INTEGER NOT NULL,"
    " latency_ms INTEGER NOT NULL,"
    " ttfb_ms INTEGER NOT NULL,"
    " stream INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX spend_key_ts ON spend(key_id, ts_ms);"
    "CREATE TABLE usage_daily ("
    " key_id INTEGER NOT NULL,"
    " day TEXT NOT NULL,"
    " requests INTEGER NOT NULL DEFAULT 0,"
    " prompt_tokens INTEGER NOT NULL DEFAULT 0,"
    " completion_tokens INTEGER NOT NULL DEFAULT 0,"
    " cost_usd REAL NOT NULL DEFAULT 0,"
    " PRIMARY KEY (key_id, day));"
    "CREATE TABLE connections ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " provider TEXT NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " secret BLOB NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE TABLE provider_models ("
    " id INTEGER PRIMARY KEY,"
    " conn_id INTEGER NOT NULL REFERENCES connections(id),"
    " name TEXT NOT NULL,"
    " remote TEXT NOT NULL,"
    " deployment TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL,"
    " UNIQUE (conn_id, name));"
    "CREATE TABLE assignments ("
    " id INTEGER PRIMARY KEY,"
    " key_id INTEGER NOT NULL REFERENCES keys(id),"
    " model_id INTEGER NOT NULL REFERENCES provider_models(id),"
    " alias TEXT NOT NULL,"
    " tps REAL NOT NULL DEFAULT -1,"
    " created_ms INTEGER NOT NULL,"
    " UNIQUE (key_id, alias));"
    "CREATE TABLE change_counter (seq INTEGER NOT NULL);"
    "INSERT INTO change_counter VALUES (0);" BUMPS(plans) BUMPS(keys) BUMPS(connections)
        BUMPS(provider_models) BUMPS(assignments),
    /* 3: stored responses of the Responses API. No change-counter triggers: they are not
     * tenancy, and a server must not reload its keys for each response. owner has no
     * foreign key: 0 is the master key, and keys are revoked, never deleted. */
    "CREATE TABLE responses ("
    " id TEXT PRIMARY KEY,"
    " owner INTEGER NOT NULL,"
    " previous_id TEXT,"
    " model TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " input TEXT NOT NULL,"
    " output TEXT NOT NULL);"
    "CREATE INDEX responses_created ON responses(created_ms);",
};
#undef BUMPS
#undef BUMP
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

int ar_sq_fail(sqlite3 *db, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return AR_EIO;
}

int ar_sq_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return AR_EIO;
}

static int read_version(sqlite3 *db, int *version)
{
    sqlite3_stmt *st;
    *version = 0;
    if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL) != SQLITE_OK)
        return 0; /* no table yet: a new database */
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int migrate(sq_t *q, char *err, size_t errlen)
{
    char what[256];
    if (ar_sq_exec(q->db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                   err, errlen))
        return AR_EIO;
    read_version(q->db, &q->version);
    if (q->version > SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "the database is at schema version %d, newer than this airouter's %d; use the "
                 "airouter that wrote it",
                 q->version, SCHEMA_VERSION);
        return AR_EINVAL;
    }
    for (int v = q->version + 1; v <= SCHEMA_VERSION; v++) {
        char set[96];
        snprintf(set, sizeof(set),
                 "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d);", v);
        int rc = ar_sq_exec(q->db, "BEGIN IMMEDIATE", err, errlen);
        rc = rc ? rc : ar_sq_exec(q->db, migrations[v - 1], err, errlen);
        rc = rc ? rc : ar_sq_exec(q->db, set, err, errlen);
        rc = rc ? rc : ar_sq_exec(q->db, "COMMIT", err, errlen);
        if (rc) {
            snprintf(what, sizeof(what), "%s", err);
            snprintf(err, errlen, "migrating the database to schema version %d: %s", v, what);
            (void)ar_sq_exec(q->db, "ROLLBACK", what, sizeof(what));
            return rc;
        }
        q->version = v;
    }
    return 0;
}

static int sq_open(const char *location, const ar_store_opts_t *o, void **impl, char *err,
                   size_t errlen)
{
    (void)o; /* one local file: nothing to time out */
    if (!*location) {
        snprintf(err, errlen, "storage.database_url: sqlite:// needs a path");
        return AR_EINVAL;
    }
    sq_t *q = ar_xcalloc(1, sizeof(*q));
    /* a handle belongs to one thread at a time (store.h): SQLite's own locking of every
     * call would be pure cost on the store thread's hot path (applying the ledger) */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(location, &q->db, flags, NULL) != SQLITE_OK) {
        int rc = ar_sq_fail(q->db, err, errlen, location);
        sqlite3_close(q->db);
        ar_free(q);
        return rc;
    }
    sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
    int rc =
        strcmp(location, ":memory:") == 0
            ? 0
            : ar_sq_exec(q->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err, errlen);
    rc = rc ? rc : ar_sq_exec(q->db, "PRAGMA foreign_keys=ON", err, errlen);
    rc = rc ? rc : migrate(q, err, errlen);
    if (rc) {
        sqlite3_close(q->db);
        ar_free(q);
        return rc;
    }
    *impl = q;
    return 0;
}

static void sq_close(void *impl)
{
    sq_t *q = impl;
    sqlite3_close(q->db);
    ar_free(q);
}

static int sq_schema_version(void *impl)
{
    return ((sq_t *)impl)->version;
}

char *ar_sq_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return ar_xstrdup(t ? (const char *)t : "");
}

int ar_sq_int64(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    *out = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : AR_EIO;
}

static int sq_plan_create(void *impl, const ar_plan_t *p, int64_t *id, char *err, size_t errlen)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db,
                           "INSERT INTO plans (name, description, max_tokens, created_ms) VALUES "
                           "(?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return ar_sq_fail(q->db, err, errlen, "creating a plan");
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->description ? p->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, p->max_tokens);
    sqlite3_bind_int64(st, 4, ar_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT) {
        snprintf(err, errlen, "a plan named '%s' exists already", p->name);
        return AR_EINVAL;
    }
    if (rc != SQLITE_DONE)
        return ar_sq_fail(q->db, err, errlen, "creating a plan");
    *id = sqlite3_last_insert_rowid(q->db);
    return 0;
}

static int sq_plan_list(void *impl, ar_plan_list_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    out->items = NULL;
    out->cnt = 0;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT id, name, description, max_tokens, created_ms FROM plans "
                           "ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->items = ar_xrealloc(out->items, (out->cnt + 1) * sizeof(*out->items));
        ar_plan_t *p = &out->items[out->cnt++];
        p->id = sqlite3_column_int64(st, 0);
        p->name = ar_sq_text(st, 1);
        p->description = ar_sq_text(st, 2);
        p->max_tokens = sqlite3_column_int64(st, 3);
        p->created_ms = sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ar_store_plan_list_free(out);
        return AR_EIO;
    }
    return 0;
}

#define KEY_COLUMNS                                                                                \
    "id, name, hash, masked, created_ms, expires_ms, revoked, rpm, tpm, daily_tokens, "            \
    "monthly_tokens, limit_tokens, max_budget_usd, COALESCE(plan_id, 0), models, updated_ms"

static void key_from_row(sqlite3_stmt *st, ar_vkey_t *k)
{
    memset(k, 0, sizeof(*k));
    k->id = sqlite3_column_int64(st, 0);
    k->name = ar_sq_text(st, 1);
    const unsigned char *h = sqlite3_column_text(st, 2);
    snprintf(k->hash, sizeof(k->hash), "%s", h ? (const char *)h : "");
    const unsigned char *m = sqlite3_column_text(st, 3);
    snprintf(k->masked, sizeof(k->masked), "%s", m ? (const char *)m : "");
    k->created_ms = sqlite3_column_int64(st, 4);
    k->expires_ms = sqlite3_column_int64(st, 5);
    k->revoked = sqlite3_column_int(st, 6) != 0;
    k->rpm = sqlite3_column_int64(st, 7);
    k->tpm = sqlite3_column_int64(st, 8);
    k->daily_tokens = sqlite3_column_int64(st, 9);
    k->monthly_tokens = sqlite3_column_int64(st, 10);
    k->limit_tokens = sqlite3_column_int64(st, 11);
    k->max_budget_usd = sqlite3_column_double(st, 12);
    k->plan_id = sqlite3_column_int64(st, 13);
    k->models = ar_sq_text(st, 14);
    k->updated_ms = sqlite3_column_int64(st, 15);
}

/* The columns a key's creation and update both write, bound as ?1..?12 in this order. */
#define KEY_WRITE_COLUMNS                                                                          \
    "name, hash, masked, expires_ms, rpm, tpm, daily_tokens, monthly_tokens, limit_tokens, "       \
    "max_budget_usd, plan_id, models"

static void bind_key(sqlite3_stmt *st, const ar_vkey_t *k)
{
    sqlite3_bind_text(st, 1, k->name ? k->name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->masked, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, k->expires_ms);
    sqlite3_bind_int64(st, 5, k->rpm);
    sqlite3_bind_int64(st, 6, k->tpm);
    sqlite3_bind_int64(st, 7, k->daily_tokens);
    sqlite3_bind_int64(st, 8, k->monthly_tokens);
    sqlite3_bind_int64(st, 9, k->limit_tokens);
    sqlite3_bind_double(st, 10, k->max_budget_usd);
    if (k->plan_id > 0)
        sqlite3_bind_int64(st, 11, k->plan_id);
    else
        sqlite3_bind_null(st, 11);
    sqlite3_bind_text(st, 12, k->models ? k->models : "", -1, SQLITE_STATIC);
}

/* A write to keys ran: its result as the store reports it. */
static int key_written(sq_t *q, int rc, const char *what, char *err, size_t errlen)
{
    if (rc == SQLITE_CONSTRAINT) {
        snprintf(err, errlen, "that key exists already, or its plan does not");
        return AR_EINVAL;
    }
    if (rc != SQLITE_DONE)
        return ar_sq_fail(q->db, err, errlen, what);
    return 0;
}

static int sq_key_create(void *impl, const ar_vkey_t *k, int64_t *id, char *err, size_t errlen)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db,
                           "INSERT INTO keys (" KEY_WRITE_COLUMNS
                           ", created_ms, updated_ms) VALUES "
                           "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
                           -1, &st, NULL) != SQLITE_OK)
        return ar_sq_fail(q->db, err, errlen, "creating a key");
    bind_key(st, k);
    sqlite3_bind_int64(st, 13, k->created_ms ? k->created_ms : ar_wall_ms());
    int rc = key_written(q, sqlite3_step(st), "creating a key", err, errlen);
    sqlite3_finalize(st);
    if (rc == 0)
        *id = sqlite3_last_insert_rowid(q->db);
    return rc;
}

static int sq_key_get(void *impl, int64_t id, const char *hash, ar_vkey_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    const char *sql = hash ? "SELECT " KEY_COLUMNS " FROM keys WHERE hash = ?"
                           : "SELECT " KEY_COLUMNS " FROM keys WHERE id = ?";
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    if (hash)
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        key_from_row(st, out);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? AR_ENOTFOUND : AR_EIO;
}

static int sq_keys_changed_since(void *impl, int64_t since_ms, ar_vkey_list_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    out->items = NULL;
    out->cnt = 0;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT " KEY_COLUMNS " FROM keys WHERE updated_ms >= ? ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_int64(st, 1, since_ms);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->items = ar_xrealloc(out->items, (out->cnt + 1) * sizeof(*out->items));
        key_from_row(st, &out->items[out->cnt++]);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ar_store_key_list_free(out);
        return AR_EIO;
    }
    return 0;
}

static int sq_key_list(void *impl, ar_vkey_list_t *out)
{
    return sq_keys_changed_since(impl, INT64_MIN, out);
}

static int sq_change_seq(void *impl, int64_t *seq)
{
    return ar_sq_int64(((sq_t *)impl)->db, "SELECT seq FROM change_counter", seq);
}

static int sq_key_revoke(void *impl, int64_t id)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, "UPDATE keys SET revoked = 1, updated_ms = ? WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_int64(st, 1, ar_wall_ms());
    sqlite3_bind_int64(st, 2, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return AR_EIO;
    return sqlite3_changes(q->db) ? 0 : AR_ENOTFOUND;
}

static int sq_key_update(void *impl, const ar_vkey_t *k, char *err, size_t errlen)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            q->db,
            "UPDATE keys SET (" KEY_WRITE_COLUMNS ", revoked, updated_ms) = "
            "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?15) WHERE id = ?14",
            -1, &st, NULL) != SQLITE_OK)
        return ar_sq_fail(q->db, err, errlen, "updating a key");
    bind_key(st, k);
    sqlite3_bind_int(st, 13, k->revoked ? 1 : 0);
    sqlite3_bind_int64(st, 14, k->id);
    sqlite3_bind_int64(st, 15, ar_wall_ms());
    int rc = key_written(q, sqlite3_step(st), "updating a key", err, errlen);
    sqlite3_finalize(st);
    if (rc == 0 && sqlite3_changes(q->db) == 0) {
        snprintf(err, errlen, "no such key");
        return AR_ENOTFOUND;
    }
    return rc;
}

const ar_store_backend_t ar_store_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .schema_version = sq_schema_version,
    .plan_create = sq_plan_create,
    .plan_list = sq_plan_list,
    .key_create = sq_key_create,
    .key_get = sq_key_get,
    .key_list = sq_key_list,
    .key_revoke = sq_key_revoke,
    .key_update = sq_key_update,
    .keys_changed_since = sq_keys_changed_since,
    .change_seq = sq_change_seq,
    .spend_apply = ar_sq_spend_apply,
    .spend_count = ar_sq_spend_count,
    .usage = ar_sq_usage,
    .usage_by_key = ar_sq_usage_by_key,
    .stats = ar_sq_stats,
    .spend_totals = ar_sq_spend_totals,
    .spend_each = ar_sq_spend_each,
    .conn_create = ar_sq_conn_create,
    .conn_get = ar_sq_conn_get,
    .conn_list = ar_sq_conn_list,
    .conn_remove = ar_sq_conn_remove,
    .model_create = ar_sq_model_create,
    .model_list = ar_sq_model_list,
    .assign_create = ar_sq_assign_create,
    .assign_list = ar_sq_assign_list,
    .assign_remove = ar_sq_assign_remove,
    .response_put = ar_sq_response_put,
    .response_get = ar_sq_response_get,
    .response_delete = ar_sq_response_delete,
    .response_chain = ar_sq_response_chain,
    .responses_purge = ar_sq_responses_purge,
    .backup = ar_sq_backup,
    .restore = ar_sq_restore,
};

const char *ar_store_sqlite_version(void)
{
    return sqlite3_libversion();
}
