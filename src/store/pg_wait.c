/*
 * pg_wait.c: see pg_wait.h. Every wait is a poll() on the connection's socket (read again
 * each round: libpq may move to another host's socket while connecting) against one
 * deadline for the whole call, never a blocking libpq call.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "store/pg_wait.h"

/* Waits until c's socket is ready for what events asks or deadline (ar_now_ms; 0: none)
 * passed. @return the ready events, 0 at the deadline, -1 on an error. */
static int wait_sock(PGconn *c, short events, uint64_t deadline)
{
    int fd = PQsocket(c);
    if (fd < 0)
        return -1;
    for (;;) {
        int ms = -1;
        if (deadline) {
            uint64_t now = ar_now_ms();
            if (now >= deadline)
                return 0;
            ms = (int)(deadline - now);
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return p.revents ? p.revents : events;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static uint64_t deadline_of(int64_t timeout_ms)
{
    return timeout_ms > 0 ? ar_now_ms() + (uint64_t)timeout_ms : 0;
}

/* The connect_timeout the URL set (seconds, as libpq counts it), or 0. */
static int64_t url_connect_timeout_ms(PGconn *c)
{
    PQconninfoOption *opts = PQconninfo(c);
    int64_t ms = 0;
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && *o->val)
            ms = strtoll(o->val, NULL, 10) * 1000;
    }
    PQconninfoFree(opts);
    return ms;
}

/* Drives PQconnectPoll or PQresetPoll to the end. @return true when connected. */
static bool finish_connect(PGconn *c, PostgresPollingStatusType (*step)(PGconn *),
                           uint64_t deadline, bool *timed_out)
{
    *timed_out = false;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        if (st == PGRES_POLLING_OK)
            return PQsetnonblocking(c, 1) == 0;
        if (st == PGRES_POLLING_FAILED)
            return false;
        int ev = wait_sock(c, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (ev <= 0) {
            *timed_out = ev == 0;
            return false; /* the caller sees a status other than CONNECTION_OK */
        }
        st = step(c);
    }
}

PGconn *ar_pgw_connect(const char *const *keys, const char *const *vals, int64_t timeout_ms,
                       bool *timed_out)
{
    *timed_out = false;
    PGconn *c = PQconnectStartParams(keys, vals, 1);
    if (!c || PQstatus(c) == CONNECTION_BAD)
        return c;
    int64_t url_ms = url_connect_timeout_ms(c);
    (void)finish_connect(c, PQconnectPoll, deadline_of(url_ms > 0 ? url_ms : timeout_ms),
                         timed_out);
    return c;
}

bool ar_pgw_reset(PGconn *c, int64_t timeout_ms, bool *timed_out)
{
    *timed_out = false;
    if (!PQresetStart(c))
        return false;
    int64_t url_ms = url_connect_timeout_ms(c);
    return finish_connect(c, PQresetPoll, deadline_of(url_ms > 0 ? url_ms : timeout_ms),
                          timed_out) &&
           PQstatus(c) == CONNECTION_OK;
}

PGresult *ar_pgw_exec(PGconn *c, const char *sql, int n, const char *const *v, const int *len,
                      const int *fmt, int64_t timeout_ms, bool *timed_out)
{
    *timed_out = false;
    uint64_t deadline = deadline_of(timeout_ms);
    if (PQisnonblocking(c) == 0 && PQsetnonblocking(c, 1) != 0)
        return NULL;
    int sent = v ? PQsendQueryParams(c, sql, n, NULL, v, len, fmt, 0) : PQsendQuery(c, sql);
    if (!sent)
        return NULL;
    /* a large query may not fit the socket's buffer: write as the server reads, reading
     * what it sends meanwhile so that neither side waits on the other */
    for (;;) {
        int f = PQflush(c);
        if (f == 0)
            break;
        if (f < 0)
            return NULL;
        int ev = wait_sock(c, POLLIN | POLLOUT, deadline);
        if (ev == 0)
            goto timeout;
        if (ev < 0 || ((ev & POLLIN) && !PQconsumeInput(c)))
            return NULL;
    }
    PGresult *keep = NULL;
    for (;;) {
        while (PQisBusy(c)) {
            int ev = wait_sock(c, POLLIN, deadline);
            if (ev == 0) {
                PQclear(keep);
                goto timeout;
            }
            if (ev < 0 || !PQconsumeInput(c)) {
                PQclear(keep);
                return NULL;
            }
        }
        PGresult *r = PQgetResult(c);
        if (!r)
            break;
        ExecStatusType st = PQresultStatus(keep);
        if (keep && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            PQclear(r); /* the first failure is the one to report */
        } else {
            PQclear(keep);
            keep = r;
        }
    }
    return keep;
timeout:
    *timed_out = true;
    return NULL;
}
