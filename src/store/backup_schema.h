/*
 * backup_schema.h: what a backup holds, shared by the backends (sqlite_backup.c,
 * postgres_backup.c): the document's format and version, and each table with its columns
 * and their kinds, in restore order, so that a backup of one backend restores into the
 * other. Nothing outside src/store includes it.
 */
#ifndef AR_STORE_BACKUP_SCHEMA_H
#define AR_STORE_BACKUP_SCHEMA_H

#include <stddef.h>

#include "core/json.h"

#define AR_BACKUP_FORMAT "airouter-backup"
#define AR_BACKUP_VERSION 1

typedef enum {
    COL_INT,
    COL_REAL,
    COL_TEXT,
    COL_BLOB,
    COL_INT_OR_NULL,
    COL_TEXT_OR_NULL
} col_kind_t;

typedef struct col {
    const char *name;
    col_kind_t kind;
} col_t;

typedef struct table {
    const char *name;
    const char *order; /* ORDER BY of the backup: parents come before children */
    col_t cols[20];
} table_t;

/* In restore order: a row's foreign keys point to tables before it. */
extern const table_t ar_backup_tables[];
extern const size_t ar_backup_tables_cnt;
/* Every table a restore needs empty (the ledger too, which a backup does not hold). */
extern const char *const ar_backup_all_tables[];
extern const size_t ar_backup_all_tables_cnt;

/** How many columns t has. */
size_t ar_backup_cols_cnt(const table_t *t);
/** "a, b, c" of t's columns into buf. */
void ar_backup_col_list(const table_t *t, char *buf, size_t len);
/** Checks the document's format and version. @return 0 or AR_EINVAL with err set. */
int ar_backup_check_header(json_t *in, char *err, size_t errlen);
/** err for a value of the wrong kind. @return AR_EINVAL. */
/** A blob's bytes as the backup's base64 JSON string (NULL when out of memory). */
json_t *ar_backup_blob_json(const void *p, size_t n);
int ar_backup_bad_value(const table_t *t, size_t idx, const col_t *c, char *err, size_t errlen);

#endif
