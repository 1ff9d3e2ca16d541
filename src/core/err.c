/*
 * err.c: lookups into the error table of err.h. Pure data, no state.
 */
#include <stddef.h>

#include "core/err.h"

typedef struct {
    const char *name, *message, *type;
    int status;
    bool retryable;
} err_row_t;

static const err_row_t rows[] = {{"AR_OK", "ok", "", 200, false},
#define AR_ERR_ROW(n, msg, st, ty, re) {#n, msg, ty, st, re},
                                 AR_ERR_MAP(AR_ERR_ROW)
#undef AR_ERR_ROW
};

static const err_row_t *row(int code)
{
    int i = -code;
    if (i < 0 || i >= (int)(sizeof(rows) / sizeof(rows[0])))
        return NULL;
    return &rows[i];
}

const char *ar_err_name(int code)
{
    const err_row_t *r = row(code);
    return r ? r->name : "AR_E?";
}

const char *ar_err_message(int code)
{
    const err_row_t *r = row(code);
    return r ? r->message : "unknown error";
}

int ar_err_http_status(int code)
{
    const err_row_t *r = row(code);
    return r ? r->status : 500;
}

const char *ar_err_type(int code)
{
    const err_row_t *r = row(code);
    return r ? r->type : "server_error";
}

bool ar_err_retryable(int code)
{
    const err_row_t *r = row(code);
    return r ? r->retryable : false;
}
