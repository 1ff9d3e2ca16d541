/*
 * postgres_backup.c: backup and restore of the PostgreSQL backend, in the document the
 * SQLite backend writes (backup_schema.h: the same tables, columns and kinds), so a backup
 * moves a deployment from one database to the other. The backup reads one REPEATABLE READ
 * snapshot; a restore runs in one transaction and then moves each id sequence past the
 * ids it wrote, so that the next plan, key or connection does not collide with them.
 */
#include <stdio.h>
#include <string.h>

#include "core/crypto.h"
#include "core/mem.h"
#include "store/backup_schema.h"
#include "store/postgres_int.h"

/* The tables whose id comes from a sequence (BIGSERIAL). */
static const char *const serial_tables[] = {"plans", "keys", "connections", "provider_models",
                                            "assignments"};

static json_t *value_json(const PGresult *r, int row, int i, col_kind_t kind)
{
    bool null = PQgetisnull(r, row, i);
    switch (kind) {
    case COL_INT: return json_integer(ar_pg_i64(r, row, i));
    case COL_INT_OR_NULL: return null ? json_null() : json_integer(ar_pg_i64(r, row, i));
    case COL_REAL: return json_real(ar_pg_f64(r, row, i));
    case COL_TEXT_OR_NULL:
        if (null)
            return json_null();
        /* fall through */
    case COL_TEXT: return json_string(PQgetvalue(r, row, i));
    case COL_BLOB: {
        size_t n = 0;
        unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, i), &n);
        if (!b)
            return NULL;
        json_t *v = ar_backup_blob_json(b, n);
        PQfreemem(b);
        return v;
    }
    }
    return NULL;
}

static int dump_table(pg_t *q, const table_t *t, json_t *rows, char *err, size_t errlen)
{
    char cols[512], sql[700];
    ar_backup_col_list(t, cols, sizeof(cols));
    snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s", cols, t->name, t->order);
    PGresult *r;
    int rc = ar_pg_run(q, sql, NULL, &r, "reading the database", err, errlen);
    if (rc)
        return rc;
    size_t n = ar_backup_cols_cnt(t);
    for (int row = 0; row < PQntuples(r); row++) {
        json_t *o = json_object();
        for (size_t i = 0; i < n; i++)
            json_object_set_new(o, t->cols[i].name, value_json(r, row, (int)i, t->cols[i].kind));
        json_array_append_new(rows, o);
    }
    PQclear(r);
    return 0;
}

int ar_pg_backup(void *impl, json_t **out, char *err, size_t errlen)
{
    pg_t *q = impl;
    *out = NULL;
    int rc = ar_pg_begin(q, err, errlen);
    rc = rc ? rc
            : ar_pg_run(q, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, NULL,
                        "reading the database", err, errlen);
    json_t *doc = json_pack("{ss si si}", "format", AR_BACKUP_FORMAT, "version", AR_BACKUP_VERSION,
                            "schema_version", q->version);
    for (size_t i = 0; i < ar_backup_tables_cnt && !rc; i++) {
        json_t *rows = json_array();
        json_object_set_new(doc, ar_backup_tables[i].name, rows);
        rc = dump_table(q, &ar_backup_tables[i], rows, err, errlen);
    }
    ar_pg_rollback(q); /* read only: nothing to keep */
    if (rc) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

/* Adds row[c] to a, checking its kind. @return 0 or AR_EINVAL with err set. */
static int bind_value(pg_params_t *a, const table_t *t, const col_t *c, json_t *row, size_t idx,
                      ar_buf_t *blob, char *err, size_t errlen)
{
    json_t *v = json_object_get(row, c->name);
    switch (c->kind) {
    case COL_INT_OR_NULL:
    case COL_TEXT_OR_NULL:
        if (json_is_null(v)) {
            ar_pg_text(a, NULL);
            return 0;
        }
        break;
    default: break;
    }
    switch (c->kind) {
    case COL_INT_OR_NULL:
    case COL_INT:
        if (!json_is_integer(v))
            break;
        ar_pg_int(a, json_integer_value(v));
        return 0;
    case COL_REAL:
        if (!json_is_number(v))
            break;
        ar_pg_real(a, json_number_value(v));
        return 0;
    case COL_TEXT_OR_NULL:
    case COL_TEXT:
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            break; /* PostgreSQL's text holds no NUL */
        ar_pg_text(a, json_string_value(v));
        return 0;
    case COL_BLOB:
        if (!json_is_string(v) ||
            ar_base64_decode(ar_span(json_string_value(v), json_string_length(v)), blob) != 0)
            break;
        ar_pg_bytes(a, blob->ptr, blob->len);
        return 0;
    }
    return ar_backup_bad_value(t, idx, c, err, errlen);
}

/* The cast of a column's parameter. */
static const char *cast_of(col_kind_t kind)
{
    switch (kind) {
    case COL_INT:
    case COL_INT_OR_NULL: return "::bigint";
    case COL_REAL: return "::double precision";
    case COL_BLOB: return "::bytea";
    default: return "::text";
    }
}

static int load_table(pg_t *q, const table_t *t, json_t *rows, char *err, size_t errlen)
{
    if (!rows)
        return 0; /* a table the backup does not have: stays empty */
    if (!json_is_array(rows)) {
        snprintf(err, errlen, "the backup's %s is not an array", t->name);
        return AR_EINVAL;
    }
    char cols[512], sql[1200], marks[600];
    size_t n = ar_backup_cols_cnt(t), o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(marks + o, sizeof(marks) - o, "%s$%zu%s", i ? ", " : "", i + 1,
                              cast_of(t->cols[i].kind));
    ar_backup_col_list(t, cols, sizeof(cols));
    snprintf(sql, sizeof(sql), "INSERT INTO %s (%s) VALUES (%s)", t->name, cols, marks);
    ar_buf_t blob;
    ar_buf_init(&blob, 1 << 20);
    int rc = 0;
    size_t idx;
    json_t *row;
    json_array_foreach (rows, idx, row) {
        if (!json_is_object(row)) {
            snprintf(err, errlen, "the backup's %s[%zu] is not an object", t->name, idx);
            rc = AR_EINVAL;
            break;
        }
        ar_buf_reset(&blob);
        pg_params_t a;
        ar_pg_params_init(&a);
        for (size_t i = 0; i < n && !rc; i++)
            rc = bind_value(&a, t, &t->cols[i], row, idx, &blob, err, errlen);
        char what[96];
        snprintf(what, sizeof(what), "the backup's %s[%zu]", t->name, idx);
        if (rc == 0 && (rc = ar_pg_run(q, sql, &a, NULL, what, err, errlen)) == AR_EINVAL) {
            char msg[256];
            snprintf(msg, sizeof(msg), "%s", err + strlen(what) + 2);
            snprintf(err, errlen,
                     "the backup's %s[%zu] conflicts with another row or points to a missing "
                     "one: %s",
                     t->name, idx, msg);
        }
        ar_pg_params_dispose(&a);
        if (rc)
            break;
    }
    ar_buf_dispose(&blob);
    return rc;
}

static int check_empty(pg_t *q, char *err, size_t errlen)
{
    for (size_t i = 0; i < ar_backup_all_tables_cnt; i++) {
        char sql[96];
        int64_t n = 0;
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", ar_backup_all_tables[i]);
        if (ar_pg_int64(q, sql, NULL, &n) != 0) {
            snprintf(err, errlen, "reading the database failed");
            return AR_EIO;
        }
        if (n > 0) {
            snprintf(err, errlen,
                     "the database is not empty (%s holds %lld row%s): restore only into a new "
                     "database",
                     ar_backup_all_tables[i], (long long)n, n == 1 ? "" : "s");
            return AR_EINVAL;
        }
    }
    return 0;
}

/* Moves each id sequence past the largest id restored. */
static int bump_sequences(pg_t *q, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof(serial_tables) / sizeof(serial_tables[0]) && !rc; i++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT setval(pg_get_serial_sequence('%s', 'id'), COALESCE(MAX(id), 0) + 1, "
                 "false) FROM %s",
                 serial_tables[i], serial_tables[i]);
        rc = ar_pg_run(q, sql, NULL, NULL, "restoring", err, errlen);
    }
    return rc;
}

int ar_pg_restore(void *impl, json_t *in, char *err, size_t errlen)
{
    pg_t *q = impl;
    if (ar_backup_check_header(in, err, errlen))
        return AR_EINVAL;
    int rc = ar_pg_begin(q, err, errlen);
    if (rc)
        return rc;
    /* nobody else writes until the restore is in: the emptiness check stays true */
    rc = ar_pg_run(q,
                   "LOCK TABLE plans, keys, connections, provider_models, assignments, "
                   "usage_daily, spend, responses IN EXCLUSIVE MODE",
                   NULL, NULL, "restoring", err, errlen);
    rc = rc ? rc : check_empty(q, err, errlen);
    for (size_t i = 0; i < ar_backup_tables_cnt && !rc; i++)
        rc = load_table(q, &ar_backup_tables[i], json_object_get(in, ar_backup_tables[i].name), err,
                        errlen);
    rc = rc ? rc : bump_sequences(q, err, errlen);
    rc = rc ? rc : ar_pg_commit(q, err, errlen);
    if (rc)
        ar_pg_rollback(q);
    return rc;
}
