/*
 * json.h: JSON in two speeds. The jansson half (json_t trees) is for request bodies that
 * must be edited and for translations; this is the only header that includes jansson.
 * The scanner half reads values out of raw JSON text without allocating, for the hot path
 * (usage in a response, a field of an SSE chunk): it never builds a tree.
 */
#ifndef AR_CORE_JSON_H
#define AR_CORE_JSON_H

#include <jansson.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/span.h"

struct ar_pool;

/* ---- jansson helpers ---- */

/**
 * Parses a whole JSON text. On failure returns NULL and writes a message naming the
 * problem and its position ("unexpected token near 'x' at line 1 column 5") into err.
 * @return a new reference, released with json_decref.
 */
json_t *ar_json_parse(ar_span_t text, char *err, size_t errlen);
/** Appends the compact serialisation of v to out. @return 0 or AR_ETOOBIG. */
int ar_json_dump(const json_t *v, ar_buf_t *out) AR_MUST_CHECK;
/** The string value of obj[key], or NULL when absent or not a string. Borrowed. */
const char *ar_json_str(const json_t *obj, const char *key);
/** obj[key] as a span over its string, or the empty span. Borrowed. */
ar_span_t ar_json_span(const json_t *obj, const char *key);

/* ---- the scanner ---- */

/**
 * Skips one JSON value starting at p (leading whitespace allowed).
 * @return the first byte after the value, or NULL when the text is malformed or ends early.
 */
const char *ar_jscan_skip(const char *p, const char *end);
/**
 * Finds key among the top-level members of the object in obj (keys compared decoded; the
 * first match wins, so callers reject duplicate members first where it matters).
 * @param val receives the raw text of the value (a string keeps its quotes).
 * @return 0, AR_ENOTFOUND, or AR_EPARSE when obj is not a well-formed object.
 */
int ar_jscan_get(ar_span_t obj, ar_span_t key, ar_span_t *val);
/** Like ar_jscan_get, for an integer member. @return 0, AR_ENOTFOUND or AR_EPARSE. */
int ar_jscan_get_int(ar_span_t obj, ar_span_t key, int64_t *out);
/** True when the raw value is JSON null. */
bool ar_jscan_is_null(ar_span_t val);
/**
 * The contents of a raw JSON string value (without quotes, escapes left as they are).
 * @return 0 or AR_EPARSE when val is not a string.
 */
int ar_jscan_string(ar_span_t val, ar_span_t *out);
/**
 * The text of the JSON string val (quotes included) with its escapes decoded: a span into
 * val when it has none, else a NUL-terminated copy in pool (jansson decodes; escapes are
 * rare). @return AR_SPAN_NULL when val is not a well-formed string.
 */
ar_span_t ar_jscan_string_text(struct ar_pool *pool, ar_span_t val);

/* ---- strict validation and iteration (json_check.c) ---- */

/**
 * Checks that text is exactly one well-formed JSON value (RFC 8259; nesting at most 256
 * deep), without allocating. On failure writes "unexpected 'x' at line L column C" (or
 * similar) into err. @return 0 or AR_EPARSE.
 */
int ar_json_validate(ar_span_t text, char *err, size_t errlen);

/** Iterates the elements of a raw JSON array (text already validated). */
typedef struct ar_jscan_iter {
    const char *p, *end;
    bool first;
} ar_jscan_iter_t;

/** @return 0 when arr is an array (iteration may start), else AR_EPARSE. */
int ar_jscan_array_begin(ar_span_t arr, ar_jscan_iter_t *it);
/** @return true and the next element's raw text, or false at the end. */
bool ar_jscan_array_next(ar_jscan_iter_t *it, ar_span_t *elem);
/** Iterates the members of a raw JSON object (text already validated). */
int ar_jscan_object_begin(ar_span_t obj, ar_jscan_iter_t *it);
/** @return true with the next member's key (inside the quotes, escapes as they are) and value. */
bool ar_jscan_object_next(ar_jscan_iter_t *it, ar_span_t *key, ar_span_t *val);

/**
 * True when the raw key (inside the quotes, escapes as written) decodes to name: a client
 * may spell "model" as "mod\u0065l", and every JSON parser upstream reads it as "model".
 */
bool ar_jscan_key_eq(ar_span_t raw_key, ar_span_t name);
/** The decoded text of a raw key: raw itself when it has no escapes, else a copy in pool. */
ar_span_t ar_jscan_key_text(struct ar_pool *pool, ar_span_t raw_key);
/** Raw member keys collected while iterating an object (memory from a pool). */
typedef struct ar_jscan_keys {
    ar_span_t *items;
    size_t cnt, cap;
} ar_jscan_keys_t;

/** Appends a raw key to keys, growing it (doubling) in pool. keys starts zeroed. */
void ar_jscan_keys_add(struct ar_pool *pool, ar_jscan_keys_t *keys, ar_span_t raw_key);
/**
 * True when two of the raw keys decode to the same text; *dup then holds that text
 * (borrowed from keys or pool). keys is rewritten in place (decoded, maybe reordered).
 */
bool ar_jscan_keys_duplicate(struct ar_pool *pool, ar_jscan_keys_t *keys, ar_span_t *dup);
/** ar_jscan_keys_duplicate over the members of the raw object obj (false when not an object). */
bool ar_jscan_object_duplicate(struct ar_pool *pool, ar_span_t obj, ar_span_t *dup);

/**
 * Appends a shortened copy of valid JSON text for logs: strings longer than max_string
 * bytes keep their first 48 bytes plus "...(N chars)", arrays of more than 16 numbers
 * become "[N numbers]" (embedding vectors), and everything past max_total bytes is cut.
 * @return 0 or AR_ETOOBIG.
 */
int ar_json_shorten(ar_span_t json, size_t max_string, size_t max_total,
                    ar_buf_t *out) AR_MUST_CHECK;

/** The version of the jansson library loaded at run time ("2.14"). */
const char *ar_json_jansson_version(void);

#endif
