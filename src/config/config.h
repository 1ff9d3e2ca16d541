/*
 * config.h: loading the YAML configuration into the immutable tree of core/conf.h.
 * Every key of SPEC section 2 is parsed and validated here, including those of features
 * that other modules implement; values may be literals, `os.environ/NAME` or contain
 * `${NAME}`. Every problem is reported as "FILE:LINE: message" and a config with problems
 * is never returned. Configs are reference-counted: each request keeps the one it started
 * with while SIGHUP swaps in a new one.
 */
#ifndef AR_CONFIG_CONFIG_H
#define AR_CONFIG_CONFIG_H

#include <stddef.h>

#include "core/conf.h"
#include "core/err.h"

/**
 * Loads and validates the file at path.
 * @param out receives a new config (refcount 1) on success; untouched on failure.
 * @param errors every problem found is appended as an owned "FILE:LINE: message" string
 *        (the caller releases them with ar_strlist_dispose); may be NULL.
 * @return 0, AR_EIO when the file cannot be read, or AR_EINVAL when it has problems.
 */
int ar_config_load(const char *path, ar_config_t **out, ar_strlist_t *errors) AR_MUST_CHECK;
/**
 * Same as ar_config_load for YAML text in memory; name is used as FILE in messages.
 */
int ar_config_load_string(const char *name, const char *yaml, size_t len, ar_config_t **out,
                          ar_strlist_t *errors) AR_MUST_CHECK;
/** Takes a reference. Any thread. @return cfg. */
ar_config_t *ar_config_ref(ar_config_t *cfg);
/** Drops a reference; the last one frees the whole tree. Any thread; NULL is ignored. */
void ar_config_unref(ar_config_t *cfg);
/** The credential named name, or NULL. */
const ar_cred_conf_t *ar_config_find_cred(const ar_config_t *cfg, const char *name);
/** The index of the credential named name, or -1. */
long ar_config_cred_index(const ar_config_t *cfg, const char *name);
/** A credential to add to a config (a store connection). Strings are borrowed. */
typedef struct ar_config_extra_cred {
    const char *name;     /* unique among all credentials */
    const char *type;     /* a `type:` spelling: "openai", "azure", ... */
    const char *base_url; /* http(s); trailing '/' removed; NULL: the type's default */
    const char *api_key;  /* NULL or "": none */
} ar_config_extra_cred_t;

/** A model entry to add to a config (a store provider model). Strings are borrowed. */
typedef struct ar_config_extra_model {
    const char *name;       /* the internal name it is routed by */
    const char *credential; /* a base or extra credential */
    const char *model;      /* upstream name (Azure: the deployment) */
} ar_config_extra_model_t;

/**
 * A new config (refcount 1): a deep copy of base with n more credentials and m more models
 * appended, every field the entries do not give at the default the YAML loader would give
 * (per-type base_url and api_version included), both marked from_store. base is not
 * changed; its warnings are not copied (they were shown when it loaded).
 * @return 0; AR_EINVAL with err set (naming the entry, never a secret) for an unknown type,
 * a bad URL, a duplicate credential name, a model whose credential does not exist, or a
 * type that needs what an entry cannot give (vertex-ai; anthropic/gemini/azure without key).
 */
int ar_config_extend(const ar_config_t *base, const ar_config_extra_cred_t *creds, size_t n,
                     const ar_config_extra_model_t *models, size_t m, ar_config_t **out, char *err,
                     size_t errlen) AR_MUST_CHECK;
/** Frees the strings of a list and empties it. */
void ar_strlist_dispose(ar_strlist_t *list);
/** The config `type:` spelling of a credential type ("vertex-ai"). */
const char *ar_cred_type_name(ar_cred_type_t type);

/** The version of the libyaml library loaded at run time ("0.2.5"). */
const char *ar_config_yaml_version(void);

#endif
