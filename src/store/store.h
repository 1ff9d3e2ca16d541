/*
 * store.h: the durable state of SPEC section 6 (plans, virtual keys, the spend ledger and
 * its daily usage, provider connections with encrypted secrets, provider models and their
 * assignment to keys, backup and restore) and the stored responses of the Responses API,
 * behind one interface with a backend per database. store.c
 * picks the backend from storage.database_url: sqlite.c is the embedded default,
 * postgres.c the PostgreSQL backend (libpq); both fill the same ar_store_backend_t.
 *
 * Calls are synchronous and a store handle belongs to one thread at a time: the CLI uses
 * it directly, the server only from its store thread (database I/O never runs on an event
 * loop). Strings handed out are owned by the returned records (ar_store_*_free).
 */
#ifndef AR_STORE_STORE_H
#define AR_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/json.h"
#include "store/spend.h"

typedef struct ar_store ar_store_t;

/* A tariff: what a key on this plan may spend in total. */
typedef struct ar_plan {
    int64_t id;
    char *name;
    char *description;
    int64_t max_tokens;
    int64_t created_ms;
} ar_plan_t;

#define AR_KEY_HASH_LEN 64 /* SHA-256, hex */
#define AR_KEY_MASKED_MAX 24

/* A virtual key. The key itself is never stored: its SHA-256 and a masked form are.
 * Limits are -1 when not set. */
typedef struct ar_vkey {
    int64_t id;
    char *name;
    char hash[AR_KEY_HASH_LEN + 1];
    char masked[AR_KEY_MASKED_MAX];
    int64_t created_ms;
    int64_t updated_ms; /* the last create, update or revocation (the store sets it) */
    int64_t expires_ms; /* 0: never */
    bool revoked;
    int64_t rpm, tpm;
    int64_t daily_tokens, monthly_tokens, limit_tokens;
    double max_budget_usd;
    int64_t plan_id; /* 0: none */
    char *models;    /* allowed model aliases, comma-separated; "" = all */
} ar_vkey_t;

/** A key record with every limit unset (-1), to fill in. */
static inline ar_vkey_t ar_vkey_unlimited(void)
{
    return (ar_vkey_t){.rpm = -1,
                       .tpm = -1,
                       .daily_tokens = -1,
                       .monthly_tokens = -1,
                       .limit_tokens = -1,
                       .max_budget_usd = -1};
}

typedef struct ar_plan_list {
    ar_plan_t *items;
    size_t cnt;
} ar_plan_list_t;

typedef struct ar_vkey_list {
    ar_vkey_t *items;
    size_t cnt;
} ar_vkey_list_t;

/* A key's usage today and this month (UTC), for listings. */
typedef struct ar_key_usage {
    int64_t key_id;
    ar_usage_totals_t day, month;
} ar_key_usage_t;

typedef struct ar_key_usage_list {
    ar_key_usage_t *items;
    size_t cnt;
} ar_key_usage_list_t;

/* What `airouter stats` shows. Expired keys that are not revoked count as expired. */
typedef struct ar_store_stats {
    int64_t keys_active, keys_revoked, keys_expired;
    ar_usage_totals_t day, month, total;
} ar_store_stats_t;

/* A provider connection. secret is the sealed blob (secret.h: nonce || ciphertext || tag),
 * never the plaintext; ar_store_conn_secret opens it. */
typedef struct ar_conn {
    int64_t id;
    char *name;
    char *provider; /* a credential type of the config: openai, azure, ... */
    char *endpoint;
    unsigned char *secret;
    size_t secret_len;
    int64_t created_ms, updated_ms;
} ar_conn_t;

typedef struct ar_conn_list {
    ar_conn_t *items;
    size_t cnt;
} ar_conn_list_t;

/* A model served through a connection: name is the alias clients use, remote the upstream
 * model name, deployment an Azure deployment ("" when none). */
typedef struct ar_pmodel {
    int64_t id, conn_id;
    char *name, *remote, *deployment;
    int64_t created_ms;
} ar_pmodel_t;

typedef struct ar_pmodel_list {
    ar_pmodel_t *items;
    size_t cnt;
} ar_pmodel_list_t;

/* A provider model made available to one key under an alias; tps -1: no limit. */
typedef struct ar_assign {
    int64_t id, key_id, model_id;
    char *alias;
    double tps;
    int64_t created_ms;
} ar_assign_t;

typedef struct ar_assign_list {
    ar_assign_t *items;
    size_t cnt;
} ar_assign_list_t;

#define AR_RESPONSE_ID_MAX 72

/* A response of POST /v1/responses kept for previous_response_id and GET/DELETE
 * /v1/responses/{id}. It belongs to the virtual key that made it. */
typedef struct ar_stored_response {
    char id[AR_RESPONSE_ID_MAX]; /* "resp_..." as the client sees it */
    int64_t owner;               /* the virtual key's id; 0 = the master key */
    char *previous_id;           /* NULL when none */
    char *model;                 /* the model the client asked for */
    int64_t created_ms;
    char *input;  /* JSON array: this request's own input items */
    char *output; /* JSON object: the response object as returned */
} ar_stored_response_t;

typedef struct ar_stored_response_list {
    ar_stored_response_t *items;
    size_t cnt;
} ar_stored_response_list_t;

/* Which spend records a query reads; unset fields (-1, NULL, 0) match every record. */
typedef struct ar_spend_filter {
    int64_t key_id;         /* -1: any key; 0: the master key */
    const char *model;      /* the model the client asked for */
    const char *credential; /* the credential that answered (or was tried last) */
    int64_t from_ms, to_ms; /* ts_ms in [from_ms, to_ms); 0: open on that side */
} ar_spend_filter_t;

/** A filter matching every record. */
static inline ar_spend_filter_t ar_spend_filter_all(void)
{
    return (ar_spend_filter_t){.key_id = -1};
}

typedef enum ar_spend_group {
    AR_SPEND_GROUP_NONE = 0, /* one row: the totals */
    AR_SPEND_GROUP_DAY,      /* per UTC day, "YYYY-MM-DD" */
    AR_SPEND_GROUP_KEY,      /* per key id (decimal text; "0": the master key) */
    AR_SPEND_GROUP_MODEL,
    AR_SPEND_GROUP_CREDENTIAL,
} ar_spend_group_t;

/* The totals of one group of spend records. errors: records with status >= 400. */
typedef struct ar_spend_total {
    char *group; /* "" for AR_SPEND_GROUP_NONE */
    int64_t requests, errors;
    int64_t prompt_tokens, completion_tokens;
    double cost_usd;
} ar_spend_total_t;

typedef struct ar_spend_total_list {
    ar_spend_total_t *items;
    size_t cnt;
} ar_spend_total_list_t;

/* Called for each record of ar_store_spend_each (r and its strings are borrowed for the
 * call); a non-zero return stops the walk and is returned. */
typedef int (*ar_spend_each_fn)(void *ud, const ar_spend_t *r);

/* How a store handle talks to its database (PostgreSQL only; SQLite ignores it). */
typedef struct ar_store_opts {
    int64_t connect_timeout_ms; /* each connection attempt; <= 0: 5 s */
    int64_t query_timeout_ms;   /* each query, sending to last result; <= 0: 10 s */
} ar_store_opts_t;

/* What a database backend provides. err/errlen: a message for the operator on failure. */
typedef struct ar_store_backend {
    const char *name; /* "sqlite" */
    int (*open)(const char *location, const ar_store_opts_t *o, void **impl, char *err,
                size_t errlen);
    void (*close)(void *impl);
    int (*schema_version)(void *impl);
    int (*plan_create)(void *impl, const ar_plan_t *p, int64_t *id, char *err, size_t errlen);
    int (*plan_list)(void *impl, ar_plan_list_t *out);
    int (*key_create)(void *impl, const ar_vkey_t *k, int64_t *id, char *err, size_t errlen);
    int (*key_get)(void *impl, int64_t id, const char *hash, ar_vkey_t *out);
    int (*key_list)(void *impl, ar_vkey_list_t *out);
    int (*key_revoke)(void *impl, int64_t id);
    int (*key_update)(void *impl, const ar_vkey_t *k, char *err, size_t errlen);
    int (*keys_changed_since)(void *impl, int64_t since_ms, ar_vkey_list_t *out);
    int (*change_seq)(void *impl, int64_t *seq);
    /* ledger */
    int (*spend_apply)(void *impl, const ar_spend_t *recs, size_t n, size_t *inserted, char *err,
                       size_t errlen);
    int (*spend_count)(void *impl, int64_t *n);
    int (*usage)(void *impl, int64_t key_id, int64_t now_ms, ar_usage_totals_t *day,
                 ar_usage_totals_t *month, ar_usage_totals_t *total);
    int (*usage_by_key)(void *impl, int64_t now_ms, ar_key_usage_list_t *out);
    int (*stats)(void *impl, int64_t now_ms, ar_store_stats_t *out);
    int (*spend_totals)(void *impl, const ar_spend_filter_t *f, ar_spend_group_t by,
                        ar_spend_total_list_t *out);
    int (*spend_each)(void *impl, const ar_spend_filter_t *f, size_t max, ar_spend_each_fn fn,
                      void *ud);
    /* tenancy */
    int (*conn_create)(void *impl, const ar_conn_t *c, int64_t *id, char *err, size_t errlen);
    int (*conn_get)(void *impl, int64_t id, ar_conn_t *out);
    int (*conn_list)(void *impl, ar_conn_list_t *out);
    int (*conn_remove)(void *impl, int64_t id, bool force, char *err, size_t errlen);
    int (*model_create)(void *impl, const ar_pmodel_t *m, int64_t *id, char *err, size_t errlen);
    int (*model_list)(void *impl, int64_t conn_id, ar_pmodel_list_t *out);
    int (*assign_create)(void *impl, const ar_assign_t *a, int64_t *id, char *err, size_t errlen);
    int (*assign_list)(void *impl, int64_t key_id, ar_assign_list_t *out);
    int (*assign_remove)(void *impl, int64_t id);
    /* stored responses (arguments checked by store.c) */
    int (*response_put)(void *impl, const ar_stored_response_t *r, char *err, size_t errlen);
    int (*response_get)(void *impl, const char *id, int64_t owner, ar_stored_response_t *out);
    int (*response_delete)(void *impl, const char *id, int64_t owner);
    int (*response_chain)(void *impl, const char *id, int64_t owner, size_t max,
                          ar_stored_response_list_t *out);
    int (*responses_purge)(void *impl, int64_t before_ms, int64_t *deleted);
    /* backup */
    int (*backup)(void *impl, json_t **out, char *err, size_t errlen);
    int (*restore)(void *impl, json_t *in, char *err, size_t errlen);
} ar_store_backend_t;

/**
 * Opens the database of url (sqlite://REL/PATH from the working directory,
 * sqlite:///ABS/PATH, sqlite://:memory:, or a libpq URL postgresql://USER:PASS@HOST:PORT/DB
 * (postgres:// too) and brings its schema up to date, with the default ar_store_opts_t.
 * With PostgreSQL every call is a synchronous round trip that blocks the calling thread
 * (a store thread in a server) until the answer or the query timeout (then AR_EIO).
 * @return 0, or an AR_E* with err set (AR_EINVAL for a bad URL, AR_EIO when PostgreSQL
 * cannot be reached; the message never holds the password).
 */
int ar_store_open(const char *url, ar_store_t **out, char *err, size_t errlen);
/** ar_store_open with o (NULL: the defaults). A connect_timeout in the URL wins. */
int ar_store_open_opts(const char *url, const ar_store_opts_t *o, ar_store_t **out, char *err,
                       size_t errlen);
void ar_store_close(ar_store_t *s);
/** The schema version the database is at (ar_store_open migrated it). */
int ar_store_schema_version(ar_store_t *s);

/** @return 0 with *id set; AR_EINVAL when the name is taken (err says so). */
int ar_store_plan_create(ar_store_t *s, const ar_plan_t *p, int64_t *id, char *err, size_t errlen);
int ar_store_plan_list(ar_store_t *s, ar_plan_list_t *out);
void ar_store_plan_list_free(ar_plan_list_t *l);

/** Stores k (its hash and masked form, never the key). @return 0 with *id set. */
int ar_store_key_create(ar_store_t *s, const ar_vkey_t *k, int64_t *id, char *err, size_t errlen);
/** By id (hash NULL) or by hash (id 0). @return 0, or AR_ENOTFOUND. */
int ar_store_key_get(ar_store_t *s, int64_t id, const char *hash, ar_vkey_t *out);
int ar_store_key_list(ar_store_t *s, ar_vkey_list_t *out);
/** Revokes a key for good. @return 0, or AR_ENOTFOUND. */
int ar_store_key_revoke(ar_store_t *s, int64_t id);
/**
 * Writes every field of k (by k->id) but its id and creation time: limits, name, models,
 * plan, expiry, and hash + masked form (a rotation). @return 0, AR_ENOTFOUND, or AR_EINVAL
 * (a hash another key has, a plan that does not exist) with err set.
 */
int ar_store_key_update(ar_store_t *s, const ar_vkey_t *k, char *err, size_t errlen);
void ar_vkey_free(ar_vkey_t *k);
void ar_store_key_list_free(ar_vkey_list_t *l);
/**
 * The keys whose updated_ms >= since_ms (created, updated or revoked since then), in id
 * order: a running server polls this to see what the CLI changed.
 */
int ar_store_keys_changed_since(ar_store_t *s, int64_t since_ms, ar_vkey_list_t *out);
/**
 * A counter every write to plans, keys, connections, provider models and assignments
 * bumps (database triggers, so writes from any process, a restore included, count). A
 * server that remembers it and finds it changed reloads its tenancy; one cheap read.
 */
int ar_store_change_seq(ar_store_t *s, int64_t *seq);

/* ---- the ledger ---- */

/**
 * Applies spend records in one transaction: each is inserted unless its id is there
 * already, and the daily usage of its key grows only for the records actually inserted,
 * so replaying a batch (after a crash between apply and journal truncation) changes
 * nothing. @return 0 with *inserted set (may be NULL); AR_EIO with err set and nothing
 * applied.
 */
int ar_store_spend_apply(ar_store_t *s, const ar_spend_t *recs, size_t n, size_t *inserted,
                         char *err, size_t errlen);
/** How many spend records the ledger holds. */
int ar_store_spend_count(ar_store_t *s, int64_t *n);
/**
 * A key's usage on the UTC day and in the calendar month (UTC) containing now_ms, and in
 * all. Any of day, month, total may be NULL. A key without usage gets zeros.
 */
int ar_store_usage(ar_store_t *s, int64_t key_id, int64_t now_ms, ar_usage_totals_t *day,
                   ar_usage_totals_t *month, ar_usage_totals_t *total);
/** Today's and this month's usage of every key that has any this month, by key id. */
int ar_store_usage_by_key(ar_store_t *s, int64_t now_ms, ar_key_usage_list_t *out);
void ar_store_key_usage_list_free(ar_key_usage_list_t *l);
/** Key counts and usage totals over all keys (master key included: key id 0). */
int ar_store_stats(ar_store_t *s, int64_t now_ms, ar_store_stats_t *out);

/**
 * The spend records matching f, summed per group (by), in group order (NONE: one row, zeros
 * when nothing matched). Reads the ledger itself, not the daily usage: any filter and any
 * time range work, at the cost of a scan of the matching records (key and time use an index).
 * @return 0 with *out set (ar_store_spend_total_list_free), AR_EINVAL for a bad group, AR_EIO.
 */
int ar_store_spend_totals(ar_store_t *s, const ar_spend_filter_t *f, ar_spend_group_t by,
                          ar_spend_total_list_t *out);
void ar_store_spend_total_list_free(ar_spend_total_list_t *l);
/**
 * Calls fn for each spend record matching f, oldest first (then by id), at most max of them.
 * @return 0, fn's non-zero return, or AR_EIO.
 */
int ar_store_spend_each(ar_store_t *s, const ar_spend_filter_t *f, size_t max, ar_spend_each_fn fn,
                        void *ud);

/* ---- tenancy: connections, provider models, assignments ---- */

/**
 * Stores a connection with secret sealed under secret_key (c->secret is ignored).
 * @return 0 with *id set; AR_EINVAL when secret_key is NULL or empty ("storage.secret_key
 * is required to store provider secrets"), or the name is taken; err set.
 */
int ar_store_conn_create(ar_store_t *s, const ar_conn_t *c, const char *secret,
                         const char *secret_key, int64_t *id, char *err, size_t errlen);
/** By id, with the sealed secret. @return 0 or AR_ENOTFOUND. */
int ar_store_conn_get(ar_store_t *s, int64_t id, ar_conn_t *out);
int ar_store_conn_list(ar_store_t *s, ar_conn_list_t *out);
/**
 * The plaintext secret of connection id (*plain: malloc'd, NUL-terminated; wipe and free
 * it with ar_secret_free). @return 0; AR_ENOTFOUND; AR_EINVAL when secret_key is missing
 * or is not the one the secret was sealed with ("cannot decrypt ..."), err set.
 */
int ar_store_conn_secret(ar_store_t *s, int64_t id, const char *secret_key, char **plain, char *err,
                         size_t errlen);
/**
 * Removes a connection and its provider models. Refused (AR_EINVAL) while any of its
 * models is assigned to a key, unless force, which removes those assignments too.
 * @return 0, AR_ENOTFOUND or AR_EINVAL, err set.
 */
int ar_store_conn_remove(ar_store_t *s, int64_t id, bool force, char *err, size_t errlen);
void ar_conn_free(ar_conn_t *c);
void ar_store_conn_list_free(ar_conn_list_t *l);

/** @return 0 with *id set; AR_EINVAL (no such connection, a duplicate name on it), err set. */
int ar_store_model_create(ar_store_t *s, const ar_pmodel_t *m, int64_t *id, char *err,
                          size_t errlen);
/** The provider models of connection conn_id (0: all), in id order. */
int ar_store_model_list(ar_store_t *s, int64_t conn_id, ar_pmodel_list_t *out);
void ar_store_model_list_free(ar_pmodel_list_t *l);

/** @return 0 with *id set; AR_EINVAL (no such key or model, the alias taken on the key). */
int ar_store_assign_create(ar_store_t *s, const ar_assign_t *a, int64_t *id, char *err,
                           size_t errlen);
/** The assignments of key key_id (0: all), in id order. */
int ar_store_assign_list(ar_store_t *s, int64_t key_id, ar_assign_list_t *out);
/** @return 0 or AR_ENOTFOUND. */
int ar_store_assign_remove(ar_store_t *s, int64_t id);
void ar_store_assign_list_free(ar_assign_list_t *l);

/* ---- stored responses (the Responses API) ---- */

/**
 * Saves r: id 1..AR_RESPONSE_ID_MAX-1 characters, model, input and output set (the JSON
 * texts are kept as given), previous_id NULL or another id (it need not exist: a chain
 * ends at a missing link), created_ms 0 for now. Keys are revoked, never deleted, so
 * there is no link to them to keep: owner is any key id, 0 the master key.
 * @return 0; AR_EINVAL with err set for a bad record or an id that exists already (the
 * store's convention for a taken name: there is no AR_EEXIST).
 */
int ar_store_response_put(ar_store_t *s, const ar_stored_response_t *r, char *err, size_t errlen);
/**
 * The response id of owner into *out (ar_stored_response_dispose it; zeroed on failure).
 * @return 0; AR_ENOTFOUND when absent or another owner's (the two look the same to a
 * client); AR_EIO.
 */
int ar_store_response_get(ar_store_t *s, const char *id, int64_t owner, ar_stored_response_t *out);
/**
 * Deletes the response id of owner. Responses that named it as previous keep their own
 * records (their chains end after it). @return 0, AR_ENOTFOUND as for get, AR_EIO.
 */
int ar_store_response_delete(ar_store_t *s, const char *id, int64_t owner);
/**
 * The conversation that ends with response id: that response and its previous_id chain,
 * oldest first, at most max records, read in one query (a recursive CTE, which a
 * PostgreSQL backend can run as is). A link that is missing (deleted, purged) or another
 * owner's ends the chain there. @return 0 with *out set (ar_stored_response_list_free);
 * AR_ENOTFOUND when id is not owner's; AR_ETOOBIG when the chain has more than max
 * records (max above 100,000 counts as 100,000; a cycle, records each naming the other
 * as previous before it existed, counts as endless); AR_EIO. On failure *out is empty.
 */
int ar_store_response_chain(ar_store_t *s, const char *id, int64_t owner, size_t max,
                            ar_stored_response_list_t *out);
/** Deletes the responses created before before_ms; *deleted (may be NULL) gets their count. */
int ar_store_responses_purge(ar_store_t *s, int64_t before_ms, int64_t *deleted);
/** Frees what r holds (not r) and zeroes it; a zeroed record is fine. */
void ar_stored_response_dispose(ar_stored_response_t *r);
void ar_stored_response_list_free(ar_stored_response_list_t *l);

/* ---- backup ---- */

/**
 * The whole tenancy and usage as one JSON document: plans, keys (hash and masked form),
 * connections (sealed secret as base64), provider models, assignments, usage_daily and the
 * stored responses; not the spend records. *out: a new reference.
 */
int ar_store_backup(ar_store_t *s, json_t **out, char *err, size_t errlen);
/**
 * Loads a backup into an EMPTY database (AR_EINVAL otherwise), ids preserved, in one
 * transaction: on any error nothing is written. @return 0, AR_EINVAL or AR_EIO, err set.
 */
int ar_store_restore(ar_store_t *s, json_t *in, char *err, size_t errlen);

/* keys.c: key material */
#define AR_KEY_RANDOM_CHARS 48
#define AR_KEY_LEN (3 + AR_KEY_RANDOM_CHARS) /* "sk-" + base62 */
/** A new key: "sk-" + 48 random base62 characters (OpenSSL's generator). @return 0 or AR_EIO. */
int ar_key_generate(char out[AR_KEY_LEN + 1]) AR_MUST_CHECK;
/** Whether s has a virtual key's shape: "sk-" + at least 40 base62 characters. */
bool ar_key_well_formed(const char *s);
/** SHA-256 of the key, lowercase hex: what the store keeps. */
void ar_key_hash(const char *key, char out[AR_KEY_HASH_LEN + 1]);
/** "sk-abc...xyz": the first 6 and last 3 characters. */
void ar_key_mask(const char *key, char out[AR_KEY_MASKED_MAX]);

/** The version of the SQLite library loaded at run time ("3.40.1"). */
const char *ar_store_sqlite_version(void);

#endif
