/*
 * spend.h: one spend record (a finished request, SPEC section 6) and the usage totals
 * built from them. The record is what the journal carries (one JSON line each, spend.c)
 * and what the store's ledger table holds; totals are what /usage and quotas read.
 */
#ifndef AR_STORE_SPEND_H
#define AR_STORE_SPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define AR_SPEND_ID_MAX 40

/* One finished request. Strings are borrowed by the encoder and owned (malloc) when
 * decoded (ar_spend_dispose). */
typedef struct ar_spend {
    char id[AR_SPEND_ID_MAX];         /* unique per record: the ledger's idempotency key */
    char request_id[AR_SPEND_ID_MAX]; /* x-request-id (may come from the client: not unique) */
    int64_t ts_ms;                    /* wall clock when the request ended */
    int64_t key_id;                   /* 0: the master key */
    char *model;                      /* the model the client asked for */
    char *upstream_model;             /* the deployment's model, "" when none was tried */
    char *credential;                 /* "" when none was tried */
    int64_t prompt_tokens, completion_tokens;
    int64_t cached_tokens;         /* prompt tokens read from a cache (part of prompt_tokens) */
    int64_t cache_creation_tokens; /* prompt tokens written to a cache (part of prompt_tokens) */
    int64_t reasoning_tokens;      /* part of completion_tokens */
    double cost_usd;
    int status; /* HTTP status sent; 499: the client left */
    int64_t latency_ms, ttfb_ms;
    bool stream;
} ar_spend_t;

/* Usage over a period (SPEC section 6's U, limit_tokens aside). */
typedef struct ar_usage_totals {
    int64_t requests;
    int64_t prompt_tokens, completion_tokens;
    double cost_usd;
} ar_usage_totals_t;

/** Appends r as one JSON object and a newline (member names: spend.c). NULL strings are
 *  written as "". Worker-safe: no allocation beyond out. @return 0, or AR_ETOOBIG when out's
 *  cap is reached (out is then as it was). */
int ar_spend_encode(const ar_spend_t *r, ar_buf_t *out);
/**
 * Reads one record from a line (without its newline). @return 0, or AR_EINVAL when the
 * line is not a whole record (a torn tail, garbage); r is then left empty.
 */
int ar_spend_decode(const char *line, size_t len, ar_spend_t *r);
void ar_spend_dispose(ar_spend_t *r);

#endif
