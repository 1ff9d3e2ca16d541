/*
 * import_int.h: what import.c shares with the converters (import_litellm.c,
 * import_freerouter.c), and nothing outside src/config/ may include. A converter reads its
 * source document through the loader's node helpers (config_int.h) and writes airouter
 * YAML text into per-section buffers; import.c owns those buffers, the credentials (one
 * per distinct upstream account) and the final assembly in the loader's section order.
 */
#ifndef AR_CONFIG_IMPORT_INT_H
#define AR_CONFIG_IMPORT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config_int.h"
#include "config/import.h"
#include "core/buf.h"

/* Output sections, in the order they are written. */
typedef enum ar_imp_sec {
    AR_IMP_HEAD, /* comments above everything */
    AR_IMP_SERVER,
    AR_IMP_ROUTING,
    AR_IMP_FAIL2BAN,
    AR_IMP_BREAKER,
    AR_IMP_RATELIMIT,
    AR_IMP_CREDS, /* comments only: the entries come from ar_imp_t.creds */
    AR_IMP_MODELS,
    AR_IMP_SEC_CNT,
} ar_imp_sec_t;

/* One credential of the output. Two sources that agree on every field share one. */
typedef struct ar_imp_cred {
    char *name;
    const char *type; /* a literal: "openai", "azure", ... */
    char *api_key;
    char *base_url;
    char *api_version;
    char *project_id;
    char *location;
    char *credentials_file;
    char *credentials_json;
    bool is_fallback;
    ar_buf_t notes; /* comment lines written above the entry */
} ar_imp_cred_t;

typedef struct ar_imp {
    ar_config_ctx_t *ctx; /* the source being read: node lookups and errors */
    ar_buf_t sec[AR_IMP_SEC_CNT];
    ar_imp_cred_t *creds;
    size_t creds_cnt;
} ar_imp_t;

/** The value of a scalar node, or NULL for a missing, null or non-scalar node. Borrowed. */
const char *ar_imp__str(ar_imp_t *im, yaml_node_t *node);
/** Whether node is a mapping (a sequence) node; reports "PATH: expected a mapping" if not. */
bool ar_imp__is_map(ar_imp_t *im, yaml_node_t *node, const char *path);
bool ar_imp__is_seq(ar_imp_t *im, yaml_node_t *node, const char *path);
/** Reads an integer scalar. @return 0, or -1 after reporting "PATH: expected an integer". */
int ar_imp__int(ar_imp_t *im, yaml_node_t *node, const char *path, int64_t *out);
/** Reads a number (decimals allowed). @return 0, or -1 after reporting. */
int ar_imp__num(ar_imp_t *im, yaml_node_t *node, const char *path, double *out);
/** Reads a boolean (true/false, yes/no, on/off). @return 0, or -1 after reporting. */
int ar_imp__bool(ar_imp_t *im, yaml_node_t *node, const char *path, bool *out);

/** Writes `key: value` at indent (spaces), value quoted for YAML when it needs it. */
void ar_imp__kv(ar_imp_t *im, ar_imp_sec_t sec, int indent, const char *key, const char *value);
/** Writes a list item `- value` at indent, quoted as ar_imp__kv does. */
void ar_imp__item(ar_imp_t *im, ar_imp_sec_t sec, int indent, const char *value);
/** Writes `key: ` + printf text, unquoted (numbers, durations, booleans). */
void ar_imp__kvf(ar_imp_t *im, ar_imp_sec_t sec, int indent, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/** Writes one line of printf text at indent, as is. */
void ar_imp__line(ar_imp_t *im, ar_imp_sec_t sec, int indent, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Writes `# not carried over: PATH (line N): why` at indent (why: printf). */
void ar_imp__skip(ar_imp_t *im, ar_imp_sec_t sec, int indent, const char *path, yaml_node_t *node,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/** The same comment appended to b (a credential's notes). */
void ar_imp__skip_to(ar_imp_t *im, ar_buf_t *b, int indent, const char *path, yaml_node_t *node,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/**
 * A `# not carried over` comment for every key of mapping map (path PATH) that is not in
 * the NULL-terminated list known, with reason why.
 */
void ar_imp__skip_rest(ar_imp_t *im, ar_imp_sec_t sec, int indent, yaml_node_t *map,
                       const char *path, const char *const *known, const char *why);
/** Whether key is in the NULL-terminated list. */
bool ar_imp__known(const char *key, const char *const *list);

/**
 * The credential equal to want in every field (is_fallback and notes aside), or a new one
 * copied from want and named base (base_2, base_3, ... when taken). want's strings are
 * borrowed. @return the credential, owned by im.
 */
ar_imp_cred_t *ar_imp__cred(ar_imp_t *im, const ar_imp_cred_t *want, const char *base);
/** The credential named name, or NULL. */
ar_imp_cred_t *ar_imp__find_cred(ar_imp_t *im, const char *name);

/** Loads the single YAML document of text into ctx->doc. @return its root mapping or NULL
 *  after reporting (ctx->doc is loaded only when non-NULL is returned). */
yaml_node_t *ar_imp__load(ar_config_ctx_t *ctx, const char *text, size_t len);

/* The converters: they read ctx's document (root) and fill im. Problems go to ctx. */
void ar_import__litellm(ar_imp_t *im, yaml_node_t *root);
/**
 * models_ctx/models_root: the models.yaml (NULL when there is none); cfg_root is
 * config.yaml. im->ctx is switched between the two as each is read.
 */
void ar_import__freerouter(ar_imp_t *im, ar_config_ctx_t *cfg_ctx, yaml_node_t *cfg_root,
                           ar_config_ctx_t *models_ctx, yaml_node_t *models_root);

#endif
