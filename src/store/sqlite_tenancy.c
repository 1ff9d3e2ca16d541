/*
 * sqlite_tenancy.c: provider connections, their models and the assignment of models to
 * keys, in the SQLite backend. The secret column holds only the sealed blob (secret.h);
 * this file never sees a plaintext secret.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "store/sqlite_int.h"

#define CONN_COLUMNS "id, name, provider, endpoint, secret, created_ms, updated_ms"

static void conn_from_row(sqlite3_stmt *st, ar_conn_t *c)
{
    memset(c, 0, sizeof(*c));
    c->id = sqlite3_column_int64(st, 0);
    c->name = ar_sq_text(st, 1);
    c->provider = ar_sq_text(st, 2);
    c->endpoint = ar_sq_text(st, 3);
    const void *b = sqlite3_column_blob(st, 4);
    c->secret_len = (size_t)sqlite3_column_bytes(st, 4);
    c->secret = ar_xmalloc(c->secret_len ? c->secret_len : 1);
    if (b)
        memcpy(c->secret, b, c->secret_len);
    c->created_ms = sqlite3_column_int64(st, 5);
    c->updated_ms = sqlite3_column_int64(st, 6);
}

int ar_sq_conn_create(void *impl, const ar_conn_t *c, int64_t *id, char *err, size_t errlen)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db,
                           "INSERT INTO connections (name, provider, endpoint, secret, created_ms, "
                           "updated_ms) VALUES (?, ?, ?, ?, ?5, ?5)",
                           -1, &st, NULL) != SQLITE_OK)
        return ar_sq_fail(q->db, err, errlen, "adding a connection");
    sqlite3_bind_text(st, 1, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, c->secret, (int)c->secret_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, ar_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT) {
        snprintf(err, errlen, "a connection named '%s' exists already", c->name);
        return AR_EINVAL;
    }
    if (rc != SQLITE_DONE)
        return ar_sq_fail(q->db, err, errlen, "adding a connection");
    *id = sqlite3_last_insert_rowid(q->db);
    return 0;
}

int ar_sq_conn_get(void *impl, int64_t id, ar_conn_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, "SELECT " CONN_COLUMNS " FROM connections WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        conn_from_row(st, out);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? AR_ENOTFOUND : AR_EIO;
}

int ar_sq_conn_list(void *impl, ar_conn_list_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    out->items = NULL;
    out->cnt = 0;
    if (sqlite3_prepare_v2(q->db, "SELECT " CONN_COLUMNS " FROM connections ORDER BY id", -1, &st,
                           NULL) != SQLITE_OK)
        return AR_EIO;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->items = ar_xrealloc(out->items, (out->cnt + 1) * sizeof(*out->items));
        conn_from_row(st, &out->items[out->cnt++]);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ar_store_conn_list_free(out);
        return AR_EIO;
    }
    return 0;
}

/* Runs one statement with ?1 = id. @return 0 or AR_EIO. */
static int run_with_id(sq_t *q, const char *sql, int64_t id, int64_t *changes)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (changes)
        *changes = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : sqlite3_changes(q->db);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : AR_EIO;
}

#define ASSIGNED_MODELS "SELECT id FROM provider_models WHERE conn_id = ?1"

int ar_sq_conn_remove(void *impl, int64_t id, bool force, char *err, size_t errlen)
{
    sq_t *q = impl;
    int rc = ar_sq_exec(q->db, "BEGIN IMMEDIATE", err, errlen);
    if (rc)
        return rc;
    int64_t assigned = 0, removed = 0;
    rc = run_with_id(q, "SELECT COUNT(*) FROM assignments WHERE model_id IN (" ASSIGNED_MODELS ")",
                     id, &assigned);
    if (rc == 0 && assigned > 0 && !force) {
        snprintf(err, errlen,
                 "connection %lld has models assigned to keys (%lld assignment%s); --force "
                 "removes them with it",
                 (long long)id, (long long)assigned, assigned == 1 ? "" : "s");
        rc = AR_EINVAL;
    }
    if (rc == 0)
        rc = run_with_id(q, "DELETE FROM assignments WHERE model_id IN (" ASSIGNED_MODELS ")", id,
                         NULL);
    if (rc == 0)
        rc = run_with_id(q, "DELETE FROM provider_models WHERE conn_id = ?1", id, NULL);
    if (rc == 0)
        rc = run_with_id(q, "DELETE FROM connections WHERE id = ?1", id, &removed);
    if (rc == 0 && removed == 0) {
        snprintf(err, errlen, "no connection with id %lld", (long long)id);
        rc = AR_ENOTFOUND;
    }
    if (rc == AR_EIO)
        ar_sq_fail(q->db, err, errlen, "removing a connection");
    if (rc == 0)
        rc = ar_sq_exec(q->db, "COMMIT", err, errlen);
    if (rc) {
        char ignored[64];
        (void)ar_sq_exec(q->db, "ROLLBACK", ignored, sizeof(ignored));
    }
    return rc;
}

/* Whether a row with this id exists in table (a fixed name). */
static bool exists(sq_t *q, const char *sql_count, int64_t id)
{
    int64_t n = 0;
    return run_with_id(q, sql_count, id, &n) == 0 && n > 0;
}

int ar_sq_model_create(void *impl, const ar_pmodel_t *m, int64_t *id, char *err, size_t errlen)
{
    sq_t *q = impl;
    if (!exists(q, "SELECT COUNT(*) FROM connections WHERE id = ?1", m->conn_id)) {
        snprintf(err, errlen, "no connection with id %lld (airouter connection list)",
                 (long long)m->conn_id);
        return AR_EINVAL;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db,
                           "INSERT INTO provider_models (conn_id, name, remote, deployment, "
                           "created_ms) VALUES (?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return ar_sq_fail(q->db, err, errlen, "adding a model");
    sqlite3_bind_int64(st, 1, m->conn_id);
    sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, m->remote, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, m->deployment ? m->deployment : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, ar_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT) {
        snprintf(err, errlen, "connection %lld has a model named '%s' already",
                 (long long)m->conn_id, m->name);
        return AR_EINVAL;
    }
    if (rc != SQLITE_DONE)
        return ar_sq_fail(q->db, err, errlen, "adding a model");
    *id = sqlite3_last_insert_rowid(q->db);
    return 0;
}

int ar_sq_model_list(void *impl, int64_t conn_id, ar_pmodel_list_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    out->items = NULL;
    out->cnt = 0;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT id, conn_id, name, remote, deployment, created_ms FROM "
                           "provider_models WHERE ?1 = 0 OR conn_id = ?1 ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_int64(st, 1, conn_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->items = ar_xrealloc(out->items, (out->cnt + 1) * sizeof(*out->items));
        ar_pmodel_t *m = &out->items[out->cnt++];
        m->id = sqlite3_column_int64(st, 0);
        m->conn_id = sqlite3_column_int64(st, 1);
        m->name = ar_sq_text(st, 2);
        m->remote = ar_sq_text(st, 3);
        m->deployment = ar_sq_text(st, 4);
        m->created_ms = sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ar_store_model_list_free(out);
        return AR_EIO;
    }
    return 0;
}

int ar_sq_assign_create(void *impl, const ar_assign_t *a, int64_t *id, char *err, size_t errlen)
{
    sq_t *q = impl;
    if (!exists(q, "SELECT COUNT(*) FROM keys WHERE id = ?1", a->key_id)) {
        snprintf(err, errlen, "no key with id %lld (airouter key list)", (long long)a->key_id);
        return AR_EINVAL;
    }
    if (!exists(q, "SELECT COUNT(*) FROM provider_models WHERE id = ?1", a->model_id)) {
        snprintf(err, errlen, "no model with id %lld", (long long)a->model_id);
        return AR_EINVAL;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db,
                           "INSERT INTO assignments (key_id, model_id, alias, tps, created_ms) "
                           "VALUES (?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return ar_sq_fail(q->db, err, errlen, "assigning a model");
    sqlite3_bind_int64(st, 1, a->key_id);
    sqlite3_bind_int64(st, 2, a->model_id);
    sqlite3_bind_text(st, 3, a->alias, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, a->tps);
    sqlite3_bind_int64(st, 5, ar_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT) {
        snprintf(err, errlen, "key %lld has a model aliased '%s' already", (long long)a->key_id,
                 a->alias);
        return AR_EINVAL;
    }
    if (rc != SQLITE_DONE)
        return ar_sq_fail(q->db, err, errlen, "assigning a model");
    *id = sqlite3_last_insert_rowid(q->db);
    return 0;
}

int ar_sq_assign_list(void *impl, int64_t key_id, ar_assign_list_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    out->items = NULL;
    out->cnt = 0;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT id, key_id, model_id, alias, tps, created_ms FROM assignments "
                           "WHERE ?1 = 0 OR key_id = ?1 ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_int64(st, 1, key_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->items = ar_xrealloc(out->items, (out->cnt + 1) * sizeof(*out->items));
        ar_assign_t *a = &out->items[out->cnt++];
        a->id = sqlite3_column_int64(st, 0);
        a->key_id = sqlite3_column_int64(st, 1);
        a->model_id = sqlite3_column_int64(st, 2);
        a->alias = ar_sq_text(st, 3);
        a->tps = sqlite3_column_double(st, 4);
        a->created_ms = sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ar_store_assign_list_free(out);
        return AR_EIO;
    }
    return 0;
}

int ar_sq_assign_remove(void *impl, int64_t id)
{
    int64_t n = 0;
    int rc = run_with_id(impl, "DELETE FROM assignments WHERE id = ?1", id, &n);
    return rc ? rc : n ? 0 : AR_ENOTFOUND;
}
