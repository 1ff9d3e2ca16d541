/*
 * sqlite_responses.c: the stored responses of the Responses API in the SQLite backend:
 * one row per response, found by id and owner together (another key's response reads as
 * absent), the conversation behind previous_response_id read as one recursive query, and
 * the purge of old ones. store.c has checked the records handed in.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "store/sqlite_int.h"

/* A chain query never walks further than this, so a cycle ends as AR_ETOOBIG: put refuses
 * itself as previous, but a previous need not exist yet, and a backup can hold anything. */
#define CHAIN_CAP 100000

#define RESPONSE_COLUMNS "id, owner, previous_id, model, created_ms, input, output"

static void response_from_row(sqlite3_stmt *st, int first, ar_stored_response_t *r)
{
    memset(r, 0, sizeof(*r));
    const unsigned char *id = sqlite3_column_text(st, first);
    snprintf(r->id, sizeof(r->id), "%s", id ? (const char *)id : "");
    r->owner = sqlite3_column_int64(st, first + 1);
    if (sqlite3_column_type(st, first + 2) != SQLITE_NULL)
        r->previous_id = ar_sq_text(st, first + 2);
    r->model = ar_sq_text(st, first + 3);
    r->created_ms = sqlite3_column_int64(st, first + 4);
    r->input = ar_sq_text(st, first + 5);
    r->output = ar_sq_text(st, first + 6);
}

int ar_sq_response_put(void *impl, const ar_stored_response_t *r, char *err, size_t errlen)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            q->db, "INSERT INTO responses (" RESPONSE_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?)", -1,
            &st, NULL) != SQLITE_OK)
        return ar_sq_fail(q->db, err, errlen, "storing a response");
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->owner);
    if (r->previous_id)
        sqlite3_bind_text(st, 3, r->previous_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, r->model, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->created_ms ? r->created_ms : ar_wall_ms());
    sqlite3_bind_text(st, 6, r->input, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, r->output, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT) {
        snprintf(err, errlen, "a response with id '%s' exists already", r->id);
        return AR_EINVAL;
    }
    if (rc != SQLITE_DONE)
        return ar_sq_fail(q->db, err, errlen, "storing a response");
    return 0;
}

int ar_sq_response_get(void *impl, const char *id, int64_t owner, ar_stored_response_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT " RESPONSE_COLUMNS " FROM responses WHERE id = ? AND owner = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, owner);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        response_from_row(st, 0, out);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? AR_ENOTFOUND : AR_EIO;
}

int ar_sq_response_delete(void *impl, const char *id, int64_t owner)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, "DELETE FROM responses WHERE id = ? AND owner = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, owner);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return AR_EIO;
    return sqlite3_changes(q->db) ? 0 : AR_ENOTFOUND;
}

/*
 * Walks from ?1 back along previous_id while the links are ?2's, at most ?3 steps, and
 * returns the walk deepest (oldest) first. The walk carries only ids; the full rows are
 * joined in at the end. Standard SQL, so a PostgreSQL backend runs the same text.
 */
#define CHAIN_SQL                                                                                  \
    "WITH RECURSIVE chain (id, previous_id, depth) AS ("                                           \
    " SELECT id, previous_id, 0 FROM responses WHERE id = ?1 AND owner = ?2"                       \
    " UNION ALL"                                                                                   \
    " SELECT r.id, r.previous_id, c.depth + 1 FROM chain c JOIN responses r"                       \
    " ON r.id = c.previous_id WHERE r.owner = ?2 AND c.depth < ?3)"                                \
    " SELECT c.depth, r.id, r.owner, r.previous_id, r.model, r.created_ms, r.input, r.output"      \
    " FROM chain c JOIN responses r ON r.id = c.id ORDER BY c.depth DESC"

int ar_sq_response_chain(void *impl, const char *id, int64_t owner, size_t max,
                         ar_stored_response_list_t *out)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, CHAIN_SQL, -1, &st, NULL) != SQLITE_OK)
        return AR_EIO;
    int64_t limit = max > CHAIN_CAP ? CHAIN_CAP : (int64_t)max;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, owner);
    sqlite3_bind_int64(st, 3, limit);
    /* the first row is the deepest: its depth says how long the chain is before any of
     * the (large) rows are copied */
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t len = sqlite3_column_int64(st, 0) + 1;
        if (len > limit) {
            sqlite3_finalize(st);
            return AR_ETOOBIG;
        }
        out->items = ar_xcalloc((size_t)len, sizeof(*out->items));
        do {
            if (out->cnt == (size_t)len) { /* cannot happen: depths are distinct */
                rc = SQLITE_ERROR;
                break;
            }
            response_from_row(st, 1, &out->items[out->cnt++]);
        } while ((rc = sqlite3_step(st)) == SQLITE_ROW);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ar_stored_response_list_free(out);
        return AR_EIO;
    }
    return out->cnt ? 0 : AR_ENOTFOUND;
}

int ar_sq_responses_purge(void *impl, int64_t before_ms, int64_t *deleted)
{
    sq_t *q = impl;
    sqlite3_stmt *st;
    *deleted = 0;
    if (sqlite3_prepare_v2(q->db, "DELETE FROM responses WHERE created_ms < ?", -1, &st, NULL) !=
        SQLITE_OK)
        return AR_EIO;
    sqlite3_bind_int64(st, 1, before_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return AR_EIO;
    *deleted = sqlite3_changes(q->db);
    return 0;
}
