/*
 * postgres_int.h: what the files of the PostgreSQL backend share (postgres.c: connection,
 * queries, migrations, plans and keys; postgres_ledger.c: spend, usage and the spend
 * reports; postgres_tenancy.c: connections, provider models, assignments, stored
 * responses; postgres_backup.c). Nothing outside src/store includes it.
 *
 * Every value travels as a query parameter (PQsendQueryParams), never inside the SQL text.
 * Calls are synchronous: a call blocks the thread that owns the store handle (a store
 * thread in a server, the CLI's one thread) while PostgreSQL answers, never an event loop,
 * and for no longer than the query timeout (pg_wait.h).
 */
#ifndef AR_STORE_POSTGRES_INT_H
#define AR_STORE_POSTGRES_INT_H

#include <libpq-fe.h>

#include "store/store_int.h"

typedef struct pg {
    PGconn *conn;
    int version;
    bool in_tx;     /* inside BEGIN ... COMMIT: a broken connection is not retried */
    bool broken;    /* a query timed out or failed half way: a new session before the next */
    bool timed_out; /* the last query ran past query_timeout_ms */
    bool connect_timed_out;     /* the last (re)connection ran past connect_timeout_ms */
    int64_t connect_timeout_ms; /* each (re)connection */
    int64_t query_timeout_ms;   /* each query, from sending it to its last result */
} pg_t;

/* The parameters of one query, $1..$n in the order added. Numbers are formatted into
 * storage the list owns; texts and bytes are borrowed until the query ran. */
typedef struct pg_params {
    const char **v;
    int *len, *fmt;
    char **own; /* formatted numbers, freed by ar_pg_params_dispose */
    int n, cap;
} pg_params_t;

void ar_pg_params_init(pg_params_t *p);
void ar_pg_params_dispose(pg_params_t *p);
void ar_pg_int(pg_params_t *p, int64_t x);
void ar_pg_real(pg_params_t *p, double x);
/** s NULL: SQL NULL. */
void ar_pg_text(pg_params_t *p, const char *s);
/** Binary (a BYTEA). */
void ar_pg_bytes(pg_params_t *p, const void *b, size_t n);

/**
 * Runs sql with the parameters p (may be NULL) within q->query_timeout_ms. A connection
 * found broken is reset and the query tried once more, unless a transaction is open (its
 * work is gone with the session) or the query timed out (its error says "timed out"; the
 * session is dropped, and the next call starts a new one).
 * @return 0 with *res set (PQclear it; res may be NULL); AR_EINVAL for a constraint
 * violation (SQLSTATE class 23) and AR_EIO otherwise, err set ("what: message"), no result.
 */
int ar_pg_run(pg_t *q, const char *sql, const pg_params_t *p, PGresult **res, const char *what,
              char *err, size_t errlen);
/** ar_pg_run of a query whose only parameter ($1) is the integer v, for its rows. */
int ar_pg_select_by(pg_t *q, const char *sql, int64_t v, PGresult **res, const char *what);
/** BEGIN, COMMIT, ROLLBACK (errors of ROLLBACK ignored). */
int ar_pg_begin(pg_t *q, char *err, size_t errlen);
int ar_pg_commit(pg_t *q, char *err, size_t errlen);
void ar_pg_rollback(pg_t *q);
/** A result value as an integer / a double (0 for NULL). */
int64_t ar_pg_i64(const PGresult *r, int row, int col);
double ar_pg_f64(const PGresult *r, int row, int col);
/** A result value as a malloc'd string ("" for NULL). */
char *ar_pg_str(const PGresult *r, int row, int col);
/** Runs a query whose one row holds one integer (0 when no row). @return 0 or AR_EIO. */
int ar_pg_int64(pg_t *q, const char *sql, const pg_params_t *p, int64_t *out);

/* postgres_ledger.c */
int ar_pg_spend_apply(void *impl, const ar_spend_t *recs, size_t n, size_t *inserted, char *err,
                      size_t errlen);
int ar_pg_spend_count(void *impl, int64_t *n);
int ar_pg_usage(void *impl, int64_t key_id, int64_t now_ms, ar_usage_totals_t *day,
                ar_usage_totals_t *month, ar_usage_totals_t *total);
int ar_pg_usage_by_key(void *impl, int64_t now_ms, ar_key_usage_list_t *out);
int ar_pg_stats(void *impl, int64_t now_ms, ar_store_stats_t *out);
int ar_pg_spend_totals(void *impl, const ar_spend_filter_t *f, ar_spend_group_t by,
                       ar_spend_total_list_t *out);
int ar_pg_spend_each(void *impl, const ar_spend_filter_t *f, size_t max, ar_spend_each_fn fn,
                     void *ud);

/* postgres_tenancy.c */
int ar_pg_conn_create(void *impl, const ar_conn_t *c, int64_t *id, char *err, size_t errlen);
int ar_pg_conn_get(void *impl, int64_t id, ar_conn_t *out);
int ar_pg_conn_list(void *impl, ar_conn_list_t *out);
int ar_pg_conn_remove(void *impl, int64_t id, bool force, char *err, size_t errlen);
int ar_pg_model_create(void *impl, const ar_pmodel_t *m, int64_t *id, char *err, size_t errlen);
int ar_pg_model_list(void *impl, int64_t conn_id, ar_pmodel_list_t *out);
int ar_pg_assign_create(void *impl, const ar_assign_t *a, int64_t *id, char *err, size_t errlen);
int ar_pg_assign_list(void *impl, int64_t key_id, ar_assign_list_t *out);
int ar_pg_assign_remove(void *impl, int64_t id);
int ar_pg_response_put(void *impl, const ar_stored_response_t *r, char *err, size_t errlen);
int ar_pg_response_get(void *impl, const char *id, int64_t owner, ar_stored_response_t *out);
int ar_pg_response_delete(void *impl, const char *id, int64_t owner);
int ar_pg_response_chain(void *impl, const char *id, int64_t owner, size_t max,
                         ar_stored_response_list_t *out);
int ar_pg_responses_purge(void *impl, int64_t before_ms, int64_t *deleted);

/* postgres_backup.c */
int ar_pg_backup(void *impl, json_t **out, char *err, size_t errlen);
int ar_pg_restore(void *impl, json_t *in, char *err, size_t errlen);

#endif
