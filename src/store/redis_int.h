/*
 * redis_int.h: what the files of the Redis client share (redis.c: connections and script
 * commands; redis_window.c: sliding windows; redis_quota.c: key quotas; redis_bucket.c:
 * token buckets). Nothing outside src/store includes it.
 *
 * Every shared limit is a Lua script, loaded on each connection when it connects (the
 * connection is ready once all are) and run by EVALSHA; one whose cache was flushed is
 * sent again whole. A script answers an array of integers; an admission script's first one
 * is 1 (admitted) or 0 (refused), which the /metrics counters count.
 */
#ifndef AR_STORE_REDIS_INT_H
#define AR_STORE_REDIS_INT_H

#include "store/redis.h"

typedef enum ar_redis_script_id {
    AR_REDIS_WINDOW,        /* redis_window.c: admit into sliding windows */
    AR_REDIS_WINDOW_SETTLE, /* redis_window.c: correct a token window's estimate */
    AR_REDIS_QUOTA,         /* redis_quota.c: renew a lease of a key's quotas */
    AR_REDIS_BUCKET,        /* redis_bucket.c: take a token from GCRA buckets */
    AR_REDIS_SCRIPTS
} ar_redis_script_id_t;

typedef struct ar_redis_script {
    const char *name; /* for log lines */
    const char *text;
} ar_redis_script_t;

/* Indexed by ar_redis_script_id_t (redis.c); each file defines its own scripts' texts. */
extern const ar_redis_script_t ar_redis_scripts[AR_REDIS_SCRIPTS];
extern const char ar_redis_window_lua[], ar_redis_window_settle_lua[];
extern const char ar_redis_quota_lua[];
extern const char ar_redis_bucket_lua[];

#define AR_REDIS_ANSWER_MAX 8

/**
 * A script's answer: rc 0 with its integers v[0..n) (n >= 1), or AR_EUNAVAIL when Redis gave
 * no answer within AR_REDIS_TIMEOUT_MS, the connection went, or the answer was not an array
 * of 1..AR_REDIS_ANSWER_MAX integers.
 */
typedef void (*ar_redis_answer_cb)(void *ud, int rc, const int64_t *v, size_t n);

typedef struct ar_redis_cmd ar_redis_cmd_t;

/**
 * Starts an EVALSHA of script with nkeys keys: add the keys, then the arguments, then send.
 * @return NULL when c is not ready (nothing to free). Loop thread.
 */
ar_redis_cmd_t *ar_redis_cmd_new(ar_redis_conn_t *c, ar_redis_script_id_t script, size_t nkeys);
/** Room for 4 pointers that live as long as cmd: pass it as the callback's ud. */
void *ar_redis_cmd_scratch(ar_redis_cmd_t *cmd);
void ar_redis_cmd_str(ar_redis_cmd_t *cmd, const char *s);
void ar_redis_cmd_int(ar_redis_cmd_t *cmd, int64_t v);
void ar_redis_cmd_real(ar_redis_cmd_t *cmd, double v);
/**
 * Sends cmd (taken). With cb, cb runs exactly once, later, on c's loop (never inside this
 * call); without, the answer is dropped. @return 0, or AR_EUNAVAIL (cb will not run).
 */
int ar_redis_cmd_send(ar_redis_cmd_t *cmd, ar_redis_answer_cb cb, void *ud);
/** Sends a plain command of up to 8 words, answer dropped (nothing when c is not ready). */
void ar_redis_cmd_plain(ar_redis_conn_t *c, const char *const *argv, size_t argc);

#endif
