/*
 * ban.h: fail2ban for one credential. Consecutive counted errors (codes in
 * fail2ban.error_codes, or with an error_code_rule) lead to a ban for ban_duration, or
 * for ever; a success resets the counts; a ban expires on time. The hot path only reads
 * one atomic (ar_ban_active); counting takes a small per-credential lock, on errors only.
 */
#ifndef AR_ROUTER_BAN_H
#define AR_ROUTER_BAN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/conf.h"

#define AR_BAN_RULES_MAX 16

typedef struct ar_ban {
    _Atomic int64_t until_ms; /* 0: not banned; INT64_MAX: permanent; else monotonic ms */
    _Atomic int last_code;    /* the code that caused the current/last ban */
    _Atomic bool dirty;       /* some count is non-zero: a success has work to do */
    pthread_mutex_t mu;
    int64_t count;                    /* consecutive counted errors without a rule */
    int rule_codes[AR_BAN_RULES_MAX]; /* codes with their own rule */
    int64_t rule_counts[AR_BAN_RULES_MAX];
} ar_ban_t;

void ar_ban_init(ar_ban_t *b);
void ar_ban_dispose(ar_ban_t *b);
/** True while a ban is in force at now_ms. */
bool ar_ban_active(const ar_ban_t *b, uint64_t now_ms);
/** A success: counts reset. */
void ar_ban_success(ar_ban_t *b);
/**
 * A failure counted as code (an HTTP status, or 502/504 for network errors). Codes that
 * are neither in error_codes nor in a rule are ignored, and so are failures while a ban
 * is in force (late reports of attempts admitted before it). @return true when this error
 * started a ban.
 */
bool ar_ban_failure(ar_ban_t *b, const ar_fail2ban_conf_t *conf, int code, uint64_t now_ms);
/** Lifts a ban and resets the counts (admin reset). */
void ar_ban_reset(ar_ban_t *b);

#endif
