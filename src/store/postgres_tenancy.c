/*
 * postgres_tenancy.c: provider connections, their models, the assignment of models to
 * keys, and the stored responses of the Responses API, in the PostgreSQL backend. The
 * secret column (BYTEA) holds only the sealed blob (secret.h), sent as a binary parameter
 * and read back with PQunescapeBytea; this file never sees a plaintext secret. store.c has
 * checked the stored responses handed in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "store/postgres_int.h"

/* A chain query never walks further than this (a cycle ends as AR_ETOOBIG). */
#define CHAIN_CAP 100000

/* Runs sql with $1 = id; *changes (may be NULL) gets the rows it touched, or the first
 * column of its first row when it returns rows. */
static int run_with_id(pg_t *q, const char *sql, int64_t id, int64_t *changes, char *err,
                       size_t errlen)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_int(&a, id);
    PGresult *r;
    int rc = ar_pg_run(q, sql, &a, &r, "writing the database", err, errlen);
    ar_pg_params_dispose(&a);
    if (rc)
        return rc;
    if (changes)
        *changes = PQresultStatus(r) == PGRES_TUPLES_OK ? (PQntuples(r) ? ar_pg_i64(r, 0, 0) : 0)
                                                        : strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

/* INSERT ... RETURNING id: *id on success; a constraint violation gives AR_EINVAL. */
static int insert_returning(pg_t *q, const char *sql, pg_params_t *a, int64_t *id, const char *what,
                            char *err, size_t errlen)
{
    PGresult *r;
    int rc = ar_pg_run(q, sql, a, &r, what, err, errlen);
    ar_pg_params_dispose(a);
    if (rc)
        return rc;
    *id = ar_pg_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

/* ---- connections ---- */

#define CONN_COLUMNS "id, name, provider, endpoint, secret, created_ms, updated_ms"

static void conn_from_row(const PGresult *r, int i, ar_conn_t *c)
{
    memset(c, 0, sizeof(*c));
    c->id = ar_pg_i64(r, i, 0);
    c->name = ar_pg_str(r, i, 1);
    c->provider = ar_pg_str(r, i, 2);
    c->endpoint = ar_pg_str(r, i, 3);
    size_t n = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 4), &n);
    c->secret = ar_xmalloc(n ? n : 1);
    if (b)
        memcpy(c->secret, b, n);
    c->secret_len = b ? n : 0;
    PQfreemem(b);
    c->created_ms = ar_pg_i64(r, i, 5);
    c->updated_ms = ar_pg_i64(r, i, 6);
}

int ar_pg_conn_create(void *impl, const ar_conn_t *c, int64_t *id, char *err, size_t errlen)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_text(&a, c->name);
    ar_pg_text(&a, c->provider);
    ar_pg_text(&a, c->endpoint);
    ar_pg_bytes(&a, c->secret, c->secret_len);
    ar_pg_int(&a, ar_wall_ms());
    int rc = insert_returning(impl,
                              "INSERT INTO connections (name, provider, endpoint, secret, "
                              "created_ms, updated_ms) VALUES ($1, $2, $3, $4::bytea, $5::bigint, "
                              "$5::bigint) RETURNING id",
                              &a, id, "adding a connection", err, errlen);
    if (rc == AR_EINVAL)
        snprintf(err, errlen, "a connection named '%s' exists already", c->name);
    return rc;
}

int ar_pg_conn_get(void *impl, int64_t id, ar_conn_t *out)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_int(&a, id);
    PGresult *r;
    int rc = ar_pg_run(impl, "SELECT " CONN_COLUMNS " FROM connections WHERE id = $1::bigint", &a,
                       &r, "reading a connection", NULL, 0);
    ar_pg_params_dispose(&a);
    if (rc)
        return AR_EIO;
    rc = PQntuples(r) ? 0 : AR_ENOTFOUND;
    if (rc == 0)
        conn_from_row(r, 0, out);
    PQclear(r);
    return rc;
}

int ar_pg_conn_list(void *impl, ar_conn_list_t *out)
{
    out->items = NULL;
    out->cnt = 0;
    PGresult *r;
    if (ar_pg_run(impl, "SELECT " CONN_COLUMNS " FROM connections ORDER BY id", NULL, &r,
                  "listing connections", NULL, 0))
        return AR_EIO;
    int n = PQntuples(r);
    out->items = ar_xcalloc((size_t)n + 1, sizeof(*out->items));
    for (int i = 0; i < n; i++)
        conn_from_row(r, i, &out->items[out->cnt++]);
    PQclear(r);
    return 0;
}

#define ASSIGNED_MODELS "SELECT id FROM provider_models WHERE conn_id = $1::bigint"

int ar_pg_conn_remove(void *impl, int64_t id, bool force, char *err, size_t errlen)
{
    pg_t *q = impl;
    int rc = ar_pg_begin(q, err, errlen);
    if (rc)
        return rc;
    int64_t assigned = 0, removed = 0;
    rc = run_with_id(q, "SELECT COUNT(*) FROM assignments WHERE model_id IN (" ASSIGNED_MODELS ")",
                     id, &assigned, err, errlen);
    if (rc == 0 && assigned > 0 && !force) {
        snprintf(err, errlen,
                 "connection %lld has models assigned to keys (%lld assignment%s); --force "
                 "removes them with it",
                 (long long)id, (long long)assigned, assigned == 1 ? "" : "s");
        rc = AR_EINVAL;
    }
    if (rc == 0)
        rc = run_with_id(q, "DELETE FROM assignments WHERE model_id IN (" ASSIGNED_MODELS ")", id,
                         NULL, err, errlen);
    if (rc == 0)
        rc = run_with_id(q, "DELETE FROM provider_models WHERE conn_id = $1::bigint", id, NULL, err,
                         errlen);
    if (rc == 0)
        rc = run_with_id(q, "DELETE FROM connections WHERE id = $1::bigint", id, &removed, err,
                         errlen);
    if (rc == 0 && removed == 0) {
        snprintf(err, errlen, "no connection with id %lld", (long long)id);
        rc = AR_ENOTFOUND;
    }
    rc = rc ? rc : ar_pg_commit(q, err, errlen);
    if (rc)
        ar_pg_rollback(q);
    return rc;
}

/* ---- provider models and assignments ---- */

static bool exists(pg_t *q, const char *sql_count, int64_t id)
{
    int64_t n = 0;
    return run_with_id(q, sql_count, id, &n, NULL, 0) == 0 && n > 0;
}

int ar_pg_model_create(void *impl, const ar_pmodel_t *m, int64_t *id, char *err, size_t errlen)
{
    if (!exists(impl, "SELECT COUNT(*) FROM connections WHERE id = $1::bigint", m->conn_id)) {
        snprintf(err, errlen, "no connection with id %lld (airouter connection list)",
                 (long long)m->conn_id);
        return AR_EINVAL;
    }
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_int(&a, m->conn_id);
    ar_pg_text(&a, m->name);
    ar_pg_text(&a, m->remote);
    ar_pg_text(&a, m->deployment ? m->deployment : "");
    ar_pg_int(&a, ar_wall_ms());
    int rc =
        insert_returning(impl,
                         "INSERT INTO provider_models (conn_id, name, remote, deployment, "
                         "created_ms) VALUES ($1::bigint, $2, $3, $4, $5::bigint) RETURNING id",
                         &a, id, "adding a model", err, errlen);
    if (rc == AR_EINVAL)
        snprintf(err, errlen, "connection %lld has a model named '%s' already",
                 (long long)m->conn_id, m->name);
    return rc;
}

int ar_pg_model_list(void *impl, int64_t conn_id, ar_pmodel_list_t *out)
{
    out->items = NULL;
    out->cnt = 0;
    PGresult *r;
    int rc =
        ar_pg_select_by(impl,
                        "SELECT id, conn_id, name, remote, deployment, created_ms FROM "
                        "provider_models WHERE $1::bigint = 0 OR conn_id = $1::bigint ORDER BY id",
                        conn_id, &r, "listing models");
    if (rc)
        return AR_EIO;
    int n = PQntuples(r);
    out->items = ar_xcalloc((size_t)n + 1, sizeof(*out->items));
    for (int i = 0; i < n; i++) {
        ar_pmodel_t *m = &out->items[out->cnt++];
        m->id = ar_pg_i64(r, i, 0);
        m->conn_id = ar_pg_i64(r, i, 1);
        m->name = ar_pg_str(r, i, 2);
        m->remote = ar_pg_str(r, i, 3);
        m->deployment = ar_pg_str(r, i, 4);
        m->created_ms = ar_pg_i64(r, i, 5);
    }
    PQclear(r);
    return 0;
}

int ar_pg_assign_create(void *impl, const ar_assign_t *a, int64_t *id, char *err, size_t errlen)
{
    if (!exists(impl, "SELECT COUNT(*) FROM keys WHERE id = $1::bigint", a->key_id)) {
        snprintf(err, errlen, "no key with id %lld (airouter key list)", (long long)a->key_id);
        return AR_EINVAL;
    }
    if (!exists(impl, "SELECT COUNT(*) FROM provider_models WHERE id = $1::bigint", a->model_id)) {
        snprintf(err, errlen, "no model with id %lld", (long long)a->model_id);
        return AR_EINVAL;
    }
    pg_params_t p;
    ar_pg_params_init(&p);
    ar_pg_int(&p, a->key_id);
    ar_pg_int(&p, a->model_id);
    ar_pg_text(&p, a->alias);
    ar_pg_real(&p, a->tps);
    ar_pg_int(&p, ar_wall_ms());
    int rc = insert_returning(impl,
                              "INSERT INTO assignments (key_id, model_id, alias, tps, created_ms) "
                              "VALUES ($1::bigint, $2::bigint, $3, $4::double precision, "
                              "$5::bigint) RETURNING id",
                              &p, id, "assigning a model", err, errlen);
    if (rc == AR_EINVAL)
        snprintf(err, errlen, "key %lld has a model aliased '%s' already", (long long)a->key_id,
                 a->alias);
    return rc;
}

int ar_pg_assign_list(void *impl, int64_t key_id, ar_assign_list_t *out)
{
    out->items = NULL;
    out->cnt = 0;
    PGresult *r;
    int rc = ar_pg_select_by(impl,
                             "SELECT id, key_id, model_id, alias, tps, created_ms FROM assignments "
                             "WHERE $1::bigint = 0 OR key_id = $1::bigint ORDER BY id",
                             key_id, &r, "listing assignments");
    if (rc)
        return AR_EIO;
    int n = PQntuples(r);
    out->items = ar_xcalloc((size_t)n + 1, sizeof(*out->items));
    for (int i = 0; i < n; i++) {
        ar_assign_t *s = &out->items[out->cnt++];
        s->id = ar_pg_i64(r, i, 0);
        s->key_id = ar_pg_i64(r, i, 1);
        s->model_id = ar_pg_i64(r, i, 2);
        s->alias = ar_pg_str(r, i, 3);
        s->tps = ar_pg_f64(r, i, 4);
        s->created_ms = ar_pg_i64(r, i, 5);
    }
    PQclear(r);
    return 0;
}

int ar_pg_assign_remove(void *impl, int64_t id)
{
    int64_t n = 0;
    int rc = run_with_id(impl, "DELETE FROM assignments WHERE id = $1::bigint", id, &n, NULL, 0);
    return rc ? AR_EIO : n ? 0 : AR_ENOTFOUND;
}

/* ---- stored responses ---- */

#define RESPONSE_COLUMNS "id, owner, previous_id, model, created_ms, input, output"

static void response_from_row(const PGresult *r, int i, int first, ar_stored_response_t *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", PQgetvalue(r, i, first));
    s->owner = ar_pg_i64(r, i, first + 1);
    if (!PQgetisnull(r, i, first + 2))
        s->previous_id = ar_pg_str(r, i, first + 2);
    s->model = ar_pg_str(r, i, first + 3);
    s->created_ms = ar_pg_i64(r, i, first + 4);
    s->input = ar_pg_str(r, i, first + 5);
    s->output = ar_pg_str(r, i, first + 6);
}

int ar_pg_response_put(void *impl, const ar_stored_response_t *s, char *err, size_t errlen)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_text(&a, s->id);
    ar_pg_int(&a, s->owner);
    ar_pg_text(&a, s->previous_id);
    ar_pg_text(&a, s->model);
    ar_pg_int(&a, s->created_ms ? s->created_ms : ar_wall_ms());
    ar_pg_text(&a, s->input);
    ar_pg_text(&a, s->output);
    int rc = ar_pg_run(impl,
                       "INSERT INTO responses (" RESPONSE_COLUMNS ") VALUES ($1, $2::bigint, $3, "
                       "$4, $5::bigint, $6, $7)",
                       &a, NULL, "storing a response", err, errlen);
    ar_pg_params_dispose(&a);
    if (rc == AR_EINVAL)
        snprintf(err, errlen, "a response with id '%s' exists already", s->id);
    return rc;
}

/* Runs sql with $1 = id, $2 = owner. */
static int run_id_owner(pg_t *q, const char *sql, const char *id, int64_t owner, PGresult **r)
{
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_text(&a, id);
    ar_pg_int(&a, owner);
    int rc = ar_pg_run(q, sql, &a, r, "reading responses", NULL, 0);
    ar_pg_params_dispose(&a);
    return rc ? AR_EIO : 0;
}

int ar_pg_response_get(void *impl, const char *id, int64_t owner, ar_stored_response_t *out)
{
    PGresult *r;
    if (run_id_owner(impl,
                     "SELECT " RESPONSE_COLUMNS " FROM responses WHERE id = $1 AND owner = "
                     "$2::bigint",
                     id, owner, &r))
        return AR_EIO;
    int rc = PQntuples(r) ? 0 : AR_ENOTFOUND;
    if (rc == 0)
        response_from_row(r, 0, 0, out);
    PQclear(r);
    return rc;
}

int ar_pg_response_delete(void *impl, const char *id, int64_t owner)
{
    PGresult *r;
    if (run_id_owner(impl, "DELETE FROM responses WHERE id = $1 AND owner = $2::bigint", id, owner,
                     &r))
        return AR_EIO;
    int rc = strcmp(PQcmdTuples(r), "0") == 0 ? AR_ENOTFOUND : 0;
    PQclear(r);
    return rc;
}

/* The SQLite backend's recursive walk (sqlite_responses.c), with typed parameters. */
#define CHAIN_SQL                                                                                  \
    "WITH RECURSIVE chain (id, previous_id, depth) AS ("                                           \
    " SELECT id, previous_id, 0 FROM responses WHERE id = $1 AND owner = $2::bigint"               \
    " UNION ALL"                                                                                   \
    " SELECT r.id, r.previous_id, c.depth + 1 FROM chain c JOIN responses r"                       \
    " ON r.id = c.previous_id WHERE r.owner = $2::bigint AND c.depth < $3::integer)"               \
    " SELECT c.depth, r.id, r.owner, r.previous_id, r.model, r.created_ms, r.input, r.output"      \
    " FROM chain c JOIN responses r ON r.id = c.id ORDER BY c.depth DESC"

int ar_pg_response_chain(void *impl, const char *id, int64_t owner, size_t max,
                         ar_stored_response_list_t *out)
{
    int64_t limit = max > CHAIN_CAP ? CHAIN_CAP : (int64_t)max;
    pg_params_t a;
    ar_pg_params_init(&a);
    ar_pg_text(&a, id);
    ar_pg_int(&a, owner);
    ar_pg_int(&a, limit);
    PGresult *r;
    int rc = ar_pg_run(impl, CHAIN_SQL, &a, &r, "reading responses", NULL, 0);
    ar_pg_params_dispose(&a);
    if (rc)
        return AR_EIO;
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        return AR_ENOTFOUND;
    }
    /* the first row is the deepest: its depth is the chain's length less one */
    if (ar_pg_i64(r, 0, 0) + 1 > limit) {
        PQclear(r);
        return AR_ETOOBIG;
    }
    out->items = ar_xcalloc((size_t)n, sizeof(*out->items));
    for (int i = 0; i < n; i++)
        response_from_row(r, i, 1, &out->items[out->cnt++]);
    PQclear(r);
    return 0;
}

int ar_pg_responses_purge(void *impl, int64_t before_ms, int64_t *deleted)
{
    *deleted = 0;
    return run_with_id(impl, "DELETE FROM responses WHERE created_ms < $1::bigint", before_ms,
                       deleted, NULL, 0)
               ? AR_EIO
               : 0;
}
