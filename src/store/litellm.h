/*
 * litellm.h: the two tables of a LiteLLM deployment's PostgreSQL database that airouter
 * uses as its data plane (litellm_db): "LiteLLM_VerificationToken" is read to check a
 * client key, "LiteLLM_SpendLogs" receives one row per request made with such a key and
 * the token's spend grows by the same amount. The tables belong to LiteLLM (its prisma
 * schema creates them); nothing here creates or migrates anything. libpq stays inside
 * litellm.c. Calls are synchronous: one thread owns a handle (each of the gateway's LiteLLM
 * threads has its own), and none waits past its deadline (a paused database costs seconds,
 * not the thread).
 */
#ifndef AR_STORE_LITELLM_H
#define AR_STORE_LITELLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ar_ll_db ar_ll_db_t;

/** The application_name of the connections (pg_stat_activity) when the URL sets none. */
#define AR_LL_APPLICATION_NAME "airouter-litellm"

/** One row of "LiteLLM_VerificationToken", as far as airouter enforces it. */
typedef struct ar_ll_token {
    bool blocked;
    int64_t expires_ms; /* wall clock; 0: never */
    double spend;
    double max_budget; /* < 0: none */
    int64_t rpm_limit; /* < 0: none */
    int64_t tpm_limit; /* < 0: none */
    char **models;     /* empty: every model */
    size_t models_cnt;
    char *key_alias; /* "" when NULL in the table; likewise below */
    char *user_id;
    char *team_id;
} ar_ll_token_t;

/** One request made with a LiteLLM key: a row of "LiteLLM_SpendLogs". */
typedef struct ar_ll_spend {
    char request_id[64];
    char api_key[65]; /* the token (SHA-256 hex of the key) */
    char call_type[24];
    char model[128];       /* the upstream model */
    char model_group[128]; /* the model the client asked for */
    char provider[32];
    char api_base[256];
    char user[128];
    char team_id[128];
    char key_alias[128];
    char status[16]; /* "success" or "failure" */
    double spend;
    int64_t prompt_tokens, completion_tokens;
    int64_t start_ms, end_ms, first_ms; /* wall clock; first_ms 0: no first byte */
} ar_ll_spend_t;

/**
 * Connects to url (a postgresql:// URL) within connect_timeout_ms (<= 0: no limit of ours;
 * a connect_timeout in the URL wins). Each query later gives up after 10 s (AR_EIO).
 * @return 0 and *out, or AR_EIO with a message in err that never holds the password.
 */
int ar_ll_db_open(const char *url, int64_t connect_timeout_ms, ar_ll_db_t **out, char *err,
                  size_t errlen);

/** Closes db (NULL allowed). */
void ar_ll_db_close(ar_ll_db_t *db);

/** A round trip to the server. @return 0, or AR_EIO when the connection is unusable. */
int ar_ll_db_ping(ar_ll_db_t *db);

/**
 * The token whose hash is token (64 hex digits). @return 0 and *out (free with
 * ar_ll_token_free), AR_ENOTFOUND, or AR_EIO (database unreachable or the table missing).
 */
int ar_ll_token_get(ar_ll_db_t *db, const char *token, ar_ll_token_t *out);

/** Frees what ar_ll_token_get filled in (the struct itself is the caller's). */
void ar_ll_token_free(ar_ll_token_t *t);

/**
 * Inserts rows[0..n) into "LiteLLM_SpendLogs" and adds each row's spend to its token, in
 * one transaction. A request id already present is skipped (a retried batch is not counted
 * twice). @return 0, or AR_EIO (nothing of the batch was written).
 */
int ar_ll_spend_write(ar_ll_db_t *db, const ar_ll_spend_t *rows, size_t n);

#endif
