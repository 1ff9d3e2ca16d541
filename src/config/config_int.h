/*
 * config_int.h: what config.c, schema.c and env.c share, and nothing outside src/config/
 * may include. The schema is data: one ar_config_cmd_t row per YAML key (nginx ngx_command_t),
 * grouped in ar_config_section_t tables, and one generic walker applies defaults, parses,
 * validates and finally frees every section from those rows. Errors are collected in a
 * load context and sorted into file order at the end; nothing here stops at the first one.
 */
#ifndef AR_CONFIG_CONFIG_INT_H
#define AR_CONFIG_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/conf.h"

/* "Not set by the file": merged later from another value (nginx NGX_CONF_UNSET). */
#define AR_CONFIG_UNSET INT64_MIN

typedef enum ar_config_type {
    AR_CONFIG_STR,      /* char * (owned) */
    AR_CONFIG_INT,      /* int */
    AR_CONFIG_I64,      /* int64_t */
    AR_CONFIG_BOOL,     /* bool */
    AR_CONFIG_DURATION, /* int64_t milliseconds */
    AR_CONFIG_DOUBLE,   /* double */
    AR_CONFIG_ENUM,     /* an enum stored as int; names in ar_config_cmd_t.enums */
    AR_CONFIG_INT_LIST, /* int * at off, size_t count at off2 */
    AR_CONFIG_STR_LIST, /* ar_strlist_t */
    AR_CONFIG_MAP,      /* ar_kv_t * at off, size_t count at off2 (string -> string) */
    AR_CONFIG_SECTION,  /* nested mapping parsed with ar_config_cmd_t.sub; base = parent + off */
    AR_CONFIG_ITEMS,    /* sequence of mappings: array of sub->size items at off, count at off2 */
    AR_CONFIG_REFUSED,  /* a key that is recognised only to be refused: .note says why and
                           what to use instead (better than "unknown key") */
    AR_CONFIG_IGNORED,  /* a key of a system airouter replaces that has no meaning here: any
                           value is accepted, not stored, and warned about ("PATH: ignored
                           (.note)"), so that such a file loads unchanged */
} ar_config_type_t;

/* ar_config_cmd_t.flags */
#define AR_CONFIG_F_REQUIRED 0x01u   /* missing key is an error */
#define AR_CONFIG_F_NONEMPTY 0x02u   /* strings: "" is an error */
#define AR_CONFIG_F_EMPTY_NULL 0x04u /* strings: "" is stored as NULL (= not set) */
#define AR_CONFIG_F_UNLIMITED 0x08u  /* numbers and durations: -1 (AR_UNLIMITED) is accepted */
#define AR_CONFIG_F_PERMANENT 0x10u  /* durations: "permanent" (and -1) give AR_PERMANENT */
/* Parsed and validated, but nothing reads it yet (a later version implements it): setting it
 * is not an error but a warning "PATH: not used yet (.note)", so it never passes silently.
 * ar_config_section_t.not_used does the same for every key of a section. */
#define AR_CONFIG_F_NOT_USED 0x20u

typedef struct ar_config_ctx ar_config_ctx_t;
typedef struct ar_config_cmd ar_config_cmd_t;
typedef struct ar_config_section ar_config_section_t;

typedef struct ar_config_enum {
    const char *name;
    int value;
} ar_config_enum_t;

typedef struct ar_config_default {
    int64_t i;       /* INT, I64, BOOL, DURATION, ENUM */
    double d;        /* DOUBLE */
    const char *s;   /* STR: copied; NULL = not set */
    const int *ints; /* INT_LIST */
    size_t ints_cnt;
} ar_config_default_t;

/**
 * Validates (and may normalise) a value the walker has just stored. base is the section
 * struct, field points into it, node is the value node (for its line), path the key's full
 * name ("credentials[2].base_url"). @return 0, or -1 after reporting with ar_config__err.
 */
typedef int (*ar_config_check_fn)(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node,
                                  void *base, void *field);

/**
 * Runs once a section has been read (also when its key is absent: node is NULL then), for
 * checks across keys and defaults that depend on other keys. line is where the section was
 * named (line 1 for an absent top-level section). Reports with ar_config__err.
 */
typedef void (*ar_config_finish_fn)(ar_config_ctx_t *ctx, const char *path, int line,
                                    yaml_node_t *node, void *base);

struct ar_config_cmd {
    const char *name;
    ar_config_type_t type;
    size_t off;
    size_t off2;
    unsigned flags;
    int64_t min; /* numbers (ms for durations): smallest allowed value (besides -1 when
                    AR_CONFIG_F_UNLIMITED); rows that leave it 0 reject negative values */
    int64_t max; /* largest allowed value; 0 = no upper bound */
    ar_config_default_t def;
    const ar_config_enum_t *enums;  /* ENUM: NULL-terminated */
    const ar_config_section_t *sub; /* SECTION, ITEMS */
    ar_config_check_fn check;
    unsigned variants; /* bit set of the section's variant values allowed; 0 = all */
    unsigned inert;    /* variant values for which the key is accepted but does nothing: a
                          warning "PATH: not used by type T" */
    const char *note;  /* AR_CONFIG_REFUSED: the error; AR_CONFIG_IGNORED and
                          AR_CONFIG_F_NOT_USED: the reason */
};

struct ar_config_section {
    const char *name;
    size_t size; /* sizeof the struct (ITEMS allocate arrays of it) */
    const ar_config_cmd_t *cmds;
    size_t cmds_cnt;
    /*
     * A variant key (credentials' `type`) is read before the others; rows whose variants
     * mask excludes the value read are rejected. When it is left out, its row's default is
     * the variant (unless the row is required). NULL: no variants.
     */
    const char *variant_key;
    /* With mark_present, the bool at present_off is true iff the section is in the file. */
    bool mark_present;
    size_t present_off;
    ar_config_finish_fn finish;
    void (*dispose)(void *base); /* frees what the rows do not describe; may be NULL */
    void (*unshare)(void *base); /* copies what the rows do not describe; may be NULL */
    /* Non-NULL: nothing reads this section yet; every key set in it is a warning "PATH: not
     * used yet (not_used)", as for rows with AR_CONFIG_F_NOT_USED. */
    const char *not_used;
};

typedef struct ar_config_err {
    int line;
    size_t seq;
    char *msg;
} ar_config_err_t;

/* Problems or warnings, collected in any order and reported in file order. */
typedef struct ar_config_msgs {
    ar_config_err_t *items;
    size_t cnt;
    size_t cap;
} ar_config_msgs_t;

/* A variable a value was read from: its value is kept out of messages (env.c). */
typedef struct ar_config_env_ref {
    char *name;
    char *value;
} ar_config_env_ref_t;

struct ar_config_ctx {
    const char *name; /* FILE in messages */
    yaml_document_t doc;
    ar_config_msgs_t errs;
    ar_config_msgs_t warns;   /* handed to ar_config_t.warnings when the config loads */
    ar_config_env_ref_t *env; /* the variables read so far */
    size_t env_cnt;
};

/* ---- schema.c ---- */

/*
 * The top-level table: one row per section of SPEC section 2. Its finish hook does the
 * checks across sections (models -> credentials, duplicates, routing.fallback).
 */
extern const ar_config_section_t ar_config__root;
/** The credentials[] and models[] item sections (ar_config_extend fills items from them). */
extern const ar_config_section_t ar_config__cred_section;
extern const ar_config_section_t ar_config__model_section;
/** Runs the per-type checks and defaults of a credential read (or filled) into c. */
void ar_config__cred_finish(ar_config_ctx_t *ctx, const char *path, ar_cred_conf_t *c);
/** Parses a `type:` spelling. @return 0, or -1 when it is no credential type. */
int ar_config__cred_type(const char *name, ar_cred_type_t *out);

/* ---- config.c: the table walker and helpers ---- */

/**
 * Records "message" at line (1-based). printf-style. The value of any environment variable
 * a value was read from is replaced by its reference ("${NAME}") in the message: such
 * values are often secrets, and a key put in the wrong field must not be printed.
 */
void ar_config__err(ar_config_ctx_t *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Records a warning at line: the config still loads. printf-style, values hidden alike. */
void ar_config__warn(ar_config_ctx_t *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* env.c: the variables a value was read from, and keeping their values out of messages */
/** Takes msg (owned) and returns it, or a copy with every variable value read so far (of 6
 *  bytes or more, as ar_config__show prints it) replaced by "${NAME}". */
char *ar_config__hide_env(const ar_config_ctx_t *ctx, char *msg);
void ar_config__env_dispose(ar_config_ctx_t *ctx);
/** 1-based line of a node. */
int ar_config__line(const yaml_node_t *node);
/** The value node of key in a mapping node, or NULL. Borrowed. */
yaml_node_t *ar_config__child(ar_config_ctx_t *ctx, yaml_node_t *map, const char *key);
/** The key node of key in a mapping node, or NULL. Borrowed. */
yaml_node_t *ar_config__child_key(ar_config_ctx_t *ctx, yaml_node_t *map, const char *key);
/** Item i of a sequence node, or NULL. Borrowed. */
yaml_node_t *ar_config__item(ar_config_ctx_t *ctx, yaml_node_t *seq, size_t i);
/** Sets every field of a section to its default (strings are copied). */
void ar_config__defaults(const ar_config_section_t *sec, void *base);
/**
 * Reads mapping node (NULL: the key is absent) into base, which holds the defaults. Runs
 * the section's finish hook, also for absent sub-sections.
 */
void ar_config__parse_section(ar_config_ctx_t *ctx, const ar_config_section_t *sec,
                              const char *path, int line, yaml_node_t *node, void *base);
/**
 * After a shallow copy (memcpy) of a section: replaces every pointer the rows of sec
 * describe (and its unshare hook) by a copy, so that the copy owns what it points to.
 */
void ar_config__unshare(const ar_config_section_t *sec, void *base);
/** Moves the messages of m into out (NULL: drops them) as "NAME:LINE: msg", in file order. */
void ar_config__flush(const char *name, ar_config_msgs_t *m, ar_strlist_t *out);
/** Appends the whole file at path to b. @return 0, or -1 with *err an errno value. */
int ar_config__read_file(const char *path, ar_buf_t *b, int *err);
/** Frees a whole config (what ar_config_unref does with the last reference). */
void ar_config__free(ar_config_t *cfg);
/** Frees everything the rows of sec describe (and its dispose hook); base is not freed. */
void ar_config__dispose(const ar_config_section_t *sec, void *base);
/** A value shortened and made printable for a message, into out. */
const char *ar_config__show(const char *value, char *out, size_t outlen);

/* ---- env.c ---- */

/**
 * The value of a scalar node after environment substitution: the whole value
 * `os.environ/NAME`, or each `${NAME}` inside it. Every missing variable is reported.
 * @param out receives an owned string (ar_free) on success.
 * @return 0, or -1 after reporting.
 */
int ar_config__resolve(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node,
                       char **out) AR_MUST_CHECK;

#endif
