/*
 * outcome.c: SPEC section 4's outcome table as one static table (status rows, then
 * network-error rows), not a chain of ifs. Statuses the SPEC does not name are placed by
 * what LiteLLM and Portkey do: 402 (out of credit) and 408 switch, other 4xx return.
 */
#include <stddef.h>

#include "core/err.h"
#include "router/outcome.h"

typedef struct status_row {
    int lo, hi; /* inclusive status range */
    ar_outcome_t o;
} status_row_t;

static const status_row_t status_rows[] = {
    {200, 299, {AR_ACT_RETURN, true, 0, AR_BRK_SUCCESS, 0}},
    {400, 400, {AR_ACT_RETURN_ERROR, false, 0, AR_BRK_NONE, 400}},
    {413, 413, {AR_ACT_RETURN_ERROR, false, 0, AR_BRK_NONE, 413}},
    {422, 422, {AR_ACT_RETURN_ERROR, false, 0, AR_BRK_NONE, 422}},
    {401, 401, {AR_ACT_NEXT_CREDENTIAL, false, 401, AR_BRK_NONE, 401}},
    {403, 403, {AR_ACT_NEXT_CREDENTIAL, false, 403, AR_BRK_NONE, 403}},
    {404, 404, {AR_ACT_NEXT, false, 0, AR_BRK_UNAVAILABLE, 404}},
    {429, 429, {AR_ACT_RETRY_SAME, false, 429, AR_BRK_FAILURE, 429}},
    {402, 402, {AR_ACT_NEXT, false, 0, AR_BRK_NONE, 402}},
    {408, 408, {AR_ACT_NEXT, false, 0, AR_BRK_FAILURE, 408}},
    {500, 599, {AR_ACT_NEXT, false, -1 /* the status itself */, AR_BRK_FAILURE, 0}},
    {300, 499, {AR_ACT_RETURN_ERROR, false, 0, AR_BRK_NONE, 0}},
};

typedef struct err_row {
    int err;
    ar_outcome_t o;
} err_row_t;

static const err_row_t err_rows[] = {
    {AR_ETIMEDOUT, {AR_ACT_NEXT, false, 504, AR_BRK_FAILURE, 504}},
    {AR_ECONNRESET, {AR_ACT_RETRY_SAME, false, 502, AR_BRK_FAILURE, 502}},
    {AR_ENETUNREACH, {AR_ACT_RETRY_SAME, false, 502, AR_BRK_FAILURE, 502}},
    {AR_ECONNREFUSED, {AR_ACT_NEXT, false, 502, AR_BRK_FAILURE, 502}},
    {AR_EHOSTUNREACH, {AR_ACT_NEXT, false, 502, AR_BRK_FAILURE, 502}},
    {AR_EDNS, {AR_ACT_NEXT, false, 502, AR_BRK_FAILURE, 502}},
    {AR_ECONNTIMEOUT, {AR_ACT_NEXT, false, 502, AR_BRK_FAILURE, 502}},
    {AR_ETLS, {AR_ACT_NEXT, false, 502, AR_BRK_FAILURE, 502}},
    {AR_EUPSTREAM, {AR_ACT_NEXT, false, 502, AR_BRK_FAILURE, 502}},
    {AR_EIO, {AR_ACT_NEXT, false, 502, AR_BRK_FAILURE, 502}},
    /* an answer larger than the limit will be as large elsewhere */
    {AR_ETOOBIG, {AR_ACT_RETURN_ERROR, false, 0, AR_BRK_NONE, 502}},
};

ar_outcome_t ar_outcome_classify(int status, int err)
{
    if (err) {
        for (size_t i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++) {
            if (err_rows[i].err == err)
                return err_rows[i].o;
        }
        return (ar_outcome_t){AR_ACT_NEXT, false, 502, AR_BRK_FAILURE, 502};
    }
    for (size_t i = 0; i < sizeof(status_rows) / sizeof(status_rows[0]); i++) {
        const status_row_t *r = &status_rows[i];
        if (status >= r->lo && status <= r->hi) {
            ar_outcome_t o = r->o;
            if (o.ban_code == -1)
                o.ban_code = status;
            if (o.client_status == 0)
                o.client_status = status;
            return o;
        }
    }
    /* 1xx or nonsense: the upstream broke the protocol */
    return (ar_outcome_t){AR_ACT_NEXT, false, 502, AR_BRK_FAILURE, 502};
}
