/*
 * keycache.h: the virtual keys a running server knows, shared by all workers. Lookups
 * (every request) take no lock: the table is an array of atomic pointers, replaced whole
 * when it grows, and a key's settings are an immutable snapshot swapped atomically when the
 * store says they changed. Old tables and snapshots are kept until the cache is freed, so a
 * reader never sees freed memory; they grow only with keys and with changes to keys.
 * Unknown keys are remembered briefly (a bounded table) so a client repeating a bad key
 * does not reach the store on every request.
 * Per key id there is one live state (RPM/TPM windows, quota) shared by the key's hashes
 * (a rotated key keeps its counters).
 */
#ifndef AR_TENANT_KEYCACHE_H
#define AR_TENANT_KEYCACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/window.h"
#include "store/store.h"
#include "tenant/quota.h"

/*
 * One assignment of a provider model to a key: the alias the client sends as `model` and
 * the internal model name it routes to, with its own requests-per-second limit.
 */
typedef struct ar_tkey_alias {
    int64_t assign_id;
    char *alias;
    char *target;        /* the provider model's internal name in the running config */
    double tps;          /* requests per second; <= 0: none */
    ar_window_t *window; /* the limit's counter, in the key's state (NULL: no limit) */
} ar_tkey_alias_t;

/* A key's settings, as of the last read from the store. Immutable once published. */
typedef struct ar_tkey_conf {
    int64_t id;
    char *name;
    char masked[AR_KEY_MASKED_MAX];
    int64_t expires_ms; /* 0: never */
    bool revoked;
    int64_t rpm, tpm; /* -1: none */
    ar_quota_limits_t quota;
    char *plan_name;        /* NULL: no plan */
    char *plan_description; /* "" when none */
    int64_t plan_max_tokens;
    char **models; /* allowed model names; none: every model */
    size_t models_cnt;
    ar_tkey_alias_t *aliases; /* its assigned provider models */
    size_t aliases_cnt;
} ar_tkey_conf_t;

/* The live counters of one key id. */
typedef struct ar_tkey_state {
    int64_t id;
    ar_window_t rpm, tpm;
    ar_quota_t quota;
    struct ar_tkey_tps *tps; /* per assignment id, kept while the cache lives */
} ar_tkey_state_t;

/* One key (one hash). */
typedef struct ar_tkey {
    char hash[AR_KEY_HASH_LEN + 1];
    _Atomic(const ar_tkey_conf_t *) conf;
    ar_tkey_state_t *state;
} ar_tkey_t;

typedef struct ar_keycache ar_keycache_t;

ar_keycache_t *ar_keycache_new(void);
void ar_keycache_free(ar_keycache_t *c);
/** The key with this SHA-256 (hex), or NULL when the cache has not seen it. Lock-free. */
ar_tkey_t *ar_keycache_find(ar_keycache_t *c, const char *hash);
/**
 * Adds or refreshes a key from the store: its settings (plan may be NULL) and its
 * assignments (aliases: assign_id, alias, target, tps read and copied; NULL when none)
 * replace the snapshot; a new key id gets its state, its quota starting from the usage
 * given (the ledger's; NULL: none). Each assignment with a tps keeps one counter across
 * refreshes. A hash the negative table holds leaves it. Any thread.
 */
ar_tkey_t *ar_keycache_put(ar_keycache_t *c, const ar_vkey_t *k, const ar_plan_t *plan,
                           const ar_tkey_alias_t *aliases, size_t aliases_cnt,
                           const ar_usage_totals_t usage[3], int64_t now_ms);
/** The key's assignment whose alias is name, or NULL. */
const ar_tkey_alias_t *ar_tkey_alias(const ar_tkey_conf_t *k, const char *name, size_t len);
/**
 * Counts one request to an alias against its tps. @return true when admitted; false with
 * *retry_ms set when the alias is at its limit this second.
 */
bool ar_tkey_alias_admit(const ar_tkey_alias_t *a, uint64_t now_ms, int64_t *retry_ms);
/** Whether hash was recently found in no store (until the time given to remember). */
bool ar_keycache_unknown(ar_keycache_t *c, const char *hash, int64_t now_ms);
/** Remembers that hash is in no store, until until_ms. */
void ar_keycache_remember_unknown(ar_keycache_t *c, const char *hash, int64_t until_ms);
/** Whether the key allows model (its list is empty, or names it or one of its aliases). */
bool ar_tkey_allows(const ar_tkey_conf_t *k, const char *model, size_t len);
/** The quota limits in force: the key's, with the plan's max_tokens as a total limit. */
ar_quota_limits_t ar_tkey_limits(const ar_tkey_conf_t *k);
/**
 * The master key's entry (id 0, no limits): its usage is counted like a key's. It is not
 * found by hash (a new master key in a reloaded config must not leave the old one valid).
 */
ar_tkey_t *ar_keycache_master(ar_keycache_t *c);
/** How many keys (hashes) the cache holds. Any thread. */
long ar_keycache_count(ar_keycache_t *c);
/** Whether a key of this id is cached (under any hash). */
bool ar_keycache_has_id(ar_keycache_t *c, int64_t id);
/**
 * After a rotation: every cached hash of key id but keep_hash is marked revoked (the old
 * secret stops working). Any thread.
 */
void ar_keycache_revoke_others(ar_keycache_t *c, int64_t id, const char *keep_hash);
/** Calls fn for every key id's state (for /admin and tests). */
void ar_keycache_each(ar_keycache_t *c, void (*fn)(void *ud, ar_tkey_t *k), void *ud);

#endif
