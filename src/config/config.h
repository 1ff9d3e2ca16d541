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
/** Frees the strings of a list and empties it. */
void ar_strlist_dispose(ar_strlist_t *list);
/** The config `type:` spelling of a credential type ("vertex-ai"). */
const char *ar_cred_type_name(ar_cred_type_t type);

#endif
