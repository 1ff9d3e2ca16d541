/*
 * store.h: the durable state of SPEC section 6 (plans, virtual keys; usage, spend and
 * connections come next), behind one interface with a backend per database. store.c
 * picks the backend from storage.database_url; sqlite.c is the embedded default, and a
 * PostgreSQL backend is one more file that fills the same ar_store_backend_t.
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
    int64_t expires_ms; /* 0: never */
    bool revoked;
    int64_t rpm, tpm;
    int64_t daily_tokens, monthly_tokens, limit_tokens;
    double max_budget_usd;
    int64_t plan_id; /* 0: none */
    char *models;    /* allowed model aliases, comma-separated; "" = all */
} ar_vkey_t;

typedef struct ar_plan_list {
    ar_plan_t *items;
    size_t cnt;
} ar_plan_list_t;

typedef struct ar_vkey_list {
    ar_vkey_t *items;
    size_t cnt;
} ar_vkey_list_t;

/* What a database backend provides. err/errlen: a message for the operator on failure. */
typedef struct ar_store_backend {
    const char *name; /* "sqlite" */
    int (*open)(const char *location, void **impl, char *err, size_t errlen);
    void (*close)(void *impl);
    int (*schema_version)(void *impl);
    int (*plan_create)(void *impl, const ar_plan_t *p, int64_t *id, char *err, size_t errlen);
    int (*plan_list)(void *impl, ar_plan_list_t *out);
    int (*key_create)(void *impl, const ar_vkey_t *k, int64_t *id, char *err, size_t errlen);
    int (*key_get)(void *impl, int64_t id, const char *hash, ar_vkey_t *out);
    int (*key_list)(void *impl, ar_vkey_list_t *out);
    int (*key_revoke)(void *impl, int64_t id);
    int (*key_update)(void *impl, const ar_vkey_t *k, char *err, size_t errlen);
} ar_store_backend_t;

/**
 * Opens the database of url (sqlite://REL/PATH from the working directory,
 * sqlite:///ABS/PATH, sqlite://:memory:) and brings its schema up to date.
 * @return 0, or an AR_E* with err set (a PostgreSQL URL is refused until its backend
 * exists: AR_EINVAL).
 */
int ar_store_open(const char *url, ar_store_t **out, char *err, size_t errlen);
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

#endif
