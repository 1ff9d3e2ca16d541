/*
 * sqlite_backup.c: backup and restore of the SQLite backend as one JSON document. Each
 * table is listed with its columns and their kinds; a row becomes an object keyed by
 * column name (a BLOB, the sealed secrets, as base64), so the document is readable and a
 * restore checks every value's kind before anything is written. The spend ledger is not
 * part of it: usage_daily carries the totals. A backup made before a table existed (the
 * stored responses) restores with that table empty.
 */
#include <stdio.h>
#include <string.h>

#include "core/crypto.h"
#include "core/mem.h"
#include "store/backup_schema.h"
#include "store/sqlite_int.h"

static json_t *value_json(sqlite3_stmt *st, int i, col_kind_t kind)
{
    switch (kind) {
    case COL_INT: return json_integer(sqlite3_column_int64(st, i));
    case COL_INT_OR_NULL:
        return sqlite3_column_type(st, i) == SQLITE_NULL
                   ? json_null()
                   : json_integer(sqlite3_column_int64(st, i));
    case COL_REAL: return json_real(sqlite3_column_double(st, i));
    case COL_TEXT_OR_NULL:
        if (sqlite3_column_type(st, i) == SQLITE_NULL)
            return json_null();
        /* fall through */
    case COL_TEXT: {
        const unsigned char *t = sqlite3_column_text(st, i);
        return json_string(t ? (const char *)t : "");
    }
    case COL_BLOB: {
        int n = sqlite3_column_bytes(st, i);
        return ar_backup_blob_json(sqlite3_column_blob(st, i), (size_t)n);
    }
    }
    return NULL;
}

static int dump_table(sq_t *q, const table_t *t, json_t *rows, char *err, size_t errlen)
{
    char cols[512], sql[700];
    ar_backup_col_list(t, cols, sizeof(cols));
    snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s", cols, t->name, t->order);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return ar_sq_fail(q->db, err, errlen, "reading the database");
    int rc;
    size_t n = ar_backup_cols_cnt(t);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_object();
        for (size_t i = 0; i < n; i++)
            json_object_set_new(row, t->cols[i].name, value_json(st, (int)i, t->cols[i].kind));
        json_array_append_new(rows, row);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ar_sq_fail(q->db, err, errlen, "reading the database");
    return 0;
}

int ar_sq_backup(void *impl, json_t **out, char *err, size_t errlen)
{
    sq_t *q = impl;
    *out = NULL;
    /* one read transaction: a consistent snapshot while a server keeps writing */
    int rc = ar_sq_exec(q->db, "BEGIN", err, errlen);
    if (rc)
        return rc;
    json_t *doc = json_pack("{ss si si}", "format", AR_BACKUP_FORMAT, "version", AR_BACKUP_VERSION,
                            "schema_version", q->version);
    for (size_t i = 0; i < ar_backup_tables_cnt && !rc; i++) {
        json_t *rows = json_array();
        json_object_set_new(doc, ar_backup_tables[i].name, rows);
        rc = dump_table(q, &ar_backup_tables[i], rows, err, errlen);
    }
    char ignored[64];
    (void)ar_sq_exec(q->db, "COMMIT", ignored, sizeof(ignored));
    if (rc) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

/* Binds row[col] as parameter i, checking its kind. @return 0 or AR_EINVAL with err set. */
static int bind_value(sqlite3_stmt *st, int i, const table_t *t, const col_t *c, json_t *row,
                      size_t idx, ar_buf_t *blob, char *err, size_t errlen)
{
    json_t *v = json_object_get(row, c->name);
    bool ok = false;
    switch (c->kind) {
    case COL_INT_OR_NULL:
        if (json_is_null(v)) {
            sqlite3_bind_null(st, i);
            return 0;
        }
        /* fall through */
    case COL_INT:
        ok = json_is_integer(v);
        if (ok)
            sqlite3_bind_int64(st, i, json_integer_value(v));
        break;
    case COL_REAL:
        ok = json_is_number(v);
        if (ok)
            sqlite3_bind_double(st, i, json_number_value(v));
        break;
    case COL_TEXT_OR_NULL:
        if (json_is_null(v)) {
            sqlite3_bind_null(st, i);
            return 0;
        }
        /* fall through */
    case COL_TEXT:
        ok = json_is_string(v);
        if (ok)
            sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v),
                              SQLITE_STATIC);
        break;
    case COL_BLOB:
        ar_buf_reset(blob);
        ok = json_is_string(v) &&
             ar_base64_decode(ar_span(json_string_value(v), json_string_length(v)), blob) == 0;
        if (ok)
            sqlite3_bind_blob(st, i, blob->ptr ? blob->ptr : "", (int)blob->len, SQLITE_TRANSIENT);
        break;
    }
    if (ok)
        return 0;
    return ar_backup_bad_value(t, idx, c, err, errlen);
}

static int load_table(sq_t *q, const table_t *t, json_t *rows, char *err, size_t errlen)
{
    if (!rows)
        return 0; /* a table the backup does not have: stays empty */
    if (!json_is_array(rows)) {
        snprintf(err, errlen, "the backup's %s is not an array", t->name);
        return AR_EINVAL;
    }
    char cols[512], sql[900], marks[120] = "";
    size_t n = ar_backup_cols_cnt(t);
    for (size_t i = 0; i < n; i++)
        strcat(marks, i ? ", ?" : "?");
    ar_backup_col_list(t, cols, sizeof(cols));
    snprintf(sql, sizeof(sql), "INSERT INTO %s (%s) VALUES (%s)", t->name, cols, marks);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return ar_sq_fail(q->db, err, errlen, "restoring");
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
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        for (size_t i = 0; i < n && !rc; i++)
            rc = bind_value(st, (int)i + 1, t, &t->cols[i], row, idx, &blob, err, errlen);
        if (rc)
            break;
        int s = sqlite3_step(st);
        if (s == SQLITE_CONSTRAINT) {
            snprintf(err, errlen,
                     "the backup's %s[%zu] conflicts with another row or points to "
                     "a missing one: %s",
                     t->name, idx, sqlite3_errmsg(q->db));
            rc = AR_EINVAL;
        } else if (s != SQLITE_DONE) {
            rc = ar_sq_fail(q->db, err, errlen, "restoring");
        }
    }
    ar_buf_dispose(&blob);
    sqlite3_finalize(st);
    return rc;
}

/* Whether the database holds anything a restore would collide with. */
static int check_empty(sq_t *q, char *err, size_t errlen)
{
    for (size_t i = 0; i < ar_backup_all_tables_cnt; i++) {
        char sql[96];
        int64_t n = 0;
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", ar_backup_all_tables[i]);
        if (ar_sq_int64(q->db, sql, &n) != 0)
            return ar_sq_fail(q->db, err, errlen, "reading the database");
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

int ar_sq_restore(void *impl, json_t *in, char *err, size_t errlen)
{
    sq_t *q = impl;
    if (ar_backup_check_header(in, err, errlen))
        return AR_EINVAL;
    int rc = ar_sq_exec(q->db, "BEGIN IMMEDIATE", err, errlen);
    if (rc)
        return rc;
    rc = check_empty(q, err, errlen);
    for (size_t i = 0; i < ar_backup_tables_cnt && !rc; i++)
        rc = load_table(q, &ar_backup_tables[i], json_object_get(in, ar_backup_tables[i].name), err,
                        errlen);
    if (rc == 0)
        rc = ar_sq_exec(q->db, "COMMIT", err, errlen);
    if (rc) {
        char ignored[64];
        (void)ar_sq_exec(q->db, "ROLLBACK", ignored, sizeof(ignored));
    }
    return rc;
}
