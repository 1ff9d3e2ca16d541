/*
 * sqlite_int.h: what the files of the SQLite backend share (sqlite.c: open, migrations,
 * plans and keys; sqlite_ledger.c: spend and usage; sqlite_tenancy.c: connections,
 * provider models, assignments; sqlite_responses.c: stored responses; sqlite_backup.c).
 * Nothing outside src/store includes it.
 */
#ifndef AR_STORE_SQLITE_INT_H
#define AR_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "store/store_int.h"

typedef struct sq {
    sqlite3 *db;
    int version;
} sq_t;

/* sqlite.c: helpers */
/** Writes "what: sqlite's message" into err. @return AR_EIO. */
int ar_sq_fail(sqlite3 *db, char *err, size_t errlen, const char *what);
/** Runs SQL without results. @return 0 or AR_EIO with err set. */
int ar_sq_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);
/** Column i as a malloc'd string ("" for NULL). */
char *ar_sq_text(sqlite3_stmt *st, int i);
/** Runs a query whose one row holds one integer (0 when no row). @return 0 or AR_EIO. */
int ar_sq_int64(sqlite3 *db, const char *sql, int64_t *out);

/* sqlite_ledger.c */
int ar_sq_spend_apply(void *impl, const ar_spend_t *recs, size_t n, size_t *inserted, char *err,
                      size_t errlen);
int ar_sq_spend_count(void *impl, int64_t *n);
int ar_sq_usage(void *impl, int64_t key_id, int64_t now_ms, ar_usage_totals_t *day,
                ar_usage_totals_t *month, ar_usage_totals_t *total);
int ar_sq_usage_by_key(void *impl, int64_t now_ms, ar_key_usage_list_t *out);
int ar_sq_stats(void *impl, int64_t now_ms, ar_store_stats_t *out);

/* sqlite_spend.c */
int ar_sq_spend_totals(void *impl, const ar_spend_filter_t *f, ar_spend_group_t by,
                       ar_spend_total_list_t *out);
int ar_sq_spend_each(void *impl, const ar_spend_filter_t *f, size_t max, ar_spend_each_fn fn,
                     void *ud);

/* sqlite_tenancy.c */
int ar_sq_conn_create(void *impl, const ar_conn_t *c, int64_t *id, char *err, size_t errlen);
int ar_sq_conn_get(void *impl, int64_t id, ar_conn_t *out);
int ar_sq_conn_list(void *impl, ar_conn_list_t *out);
int ar_sq_conn_remove(void *impl, int64_t id, bool force, char *err, size_t errlen);
int ar_sq_model_create(void *impl, const ar_pmodel_t *m, int64_t *id, char *err, size_t errlen);
int ar_sq_model_list(void *impl, int64_t conn_id, ar_pmodel_list_t *out);
int ar_sq_assign_create(void *impl, const ar_assign_t *a, int64_t *id, char *err, size_t errlen);
int ar_sq_assign_list(void *impl, int64_t key_id, ar_assign_list_t *out);
int ar_sq_assign_remove(void *impl, int64_t id);

/* sqlite_responses.c */
int ar_sq_response_put(void *impl, const ar_stored_response_t *r, char *err, size_t errlen);
int ar_sq_response_get(void *impl, const char *id, int64_t owner, ar_stored_response_t *out);
int ar_sq_response_delete(void *impl, const char *id, int64_t owner);
int ar_sq_response_chain(void *impl, const char *id, int64_t owner, size_t max,
                         ar_stored_response_list_t *out);
int ar_sq_responses_purge(void *impl, int64_t before_ms, int64_t *deleted);

/* sqlite_backup.c */
int ar_sq_backup(void *impl, json_t **out, char *err, size_t errlen);
int ar_sq_restore(void *impl, json_t *in, char *err, size_t errlen);

#endif
