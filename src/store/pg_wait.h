/*
 * pg_wait.h: libpq calls that give up at a deadline. libpq's blocking calls (PQconnectdb,
 * PQreset, PQexec) wait as long as the server keeps the socket open: a paused or
 * overloaded database would hold the calling thread forever. These run libpq in
 * non-blocking mode and wait on its socket with poll() until a deadline, so that a store
 * thread (postgres.c) or the LiteLLM thread (litellm.c) gets its answer or an error in
 * bounded time. Nothing outside src/store includes it.
 */
#ifndef AR_STORE_PG_WAIT_H
#define AR_STORE_PG_WAIT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/**
 * Connects with the conninfo keys/vals (expand_dbname: a URL in "dbname" is read as one)
 * within timeout_ms (<= 0: no limit but the server's). A connect_timeout the URL itself
 * sets wins over timeout_ms. The connection is left in non-blocking mode.
 * @return the connection (check PQstatus: not CONNECTION_OK on failure, with
 * PQerrorMessage, or *timed_out set when the deadline passed: libpq's message says nothing
 * then), or NULL when out of memory. PQfinish it either way.
 */
PGconn *ar_pgw_connect(const char *const *keys, const char *const *vals, int64_t timeout_ms,
                       bool *timed_out);

/**
 * A new session on c's parameters (PQresetStart), within timeout_ms like ar_pgw_connect.
 * @return true when c is usable again; false with *timed_out set when the deadline passed.
 */
bool ar_pgw_reset(PGconn *c, int64_t timeout_ms, bool *timed_out);

/**
 * Sends sql (with n parameters when v is not NULL: PQsendQueryParams, text results; else
 * PQsendQuery, which runs several statements) and collects its results until timeout_ms
 * passed (<= 0: no limit). The last result comes back, or the first that failed.
 * A call past its deadline sets *timed_out and returns NULL: the query may still run on
 * the server and its answer would arrive later, so the connection must not be used again
 * before a reset (ar_pgw_reset). NULL without *timed_out: sending or reading failed
 * (PQerrorMessage says why).
 */
PGresult *ar_pgw_exec(PGconn *c, const char *sql, int n, const char *const *v, const int *len,
                      const int *fmt, int64_t timeout_ms, bool *timed_out);

#endif
