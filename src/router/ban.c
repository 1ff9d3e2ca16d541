/*
 * ban.c: fail2ban (see ban.h).
 */
#include <stdint.h>

#include "router/ban.h"

void ar_ban_init(ar_ban_t *b)
{
    atomic_init(&b->until_ms, 0);
    atomic_init(&b->last_code, 0);
    atomic_init(&b->dirty, false);
    pthread_mutex_init(&b->mu, NULL);
    b->count = 0;
    for (int i = 0; i < AR_BAN_RULES_MAX; i++) {
        b->rule_codes[i] = 0;
        b->rule_counts[i] = 0;
    }
}

void ar_ban_dispose(ar_ban_t *b)
{
    pthread_mutex_destroy(&b->mu);
}

bool ar_ban_active(const ar_ban_t *b, uint64_t now_ms)
{
    int64_t until = atomic_load_explicit(&b->until_ms, memory_order_relaxed);
    return until != 0 && (until == INT64_MAX || (uint64_t)until > now_ms);
}

static void reset_counts(ar_ban_t *b)
{
    atomic_store(&b->dirty, false);
    b->count = 0;
    for (int i = 0; i < AR_BAN_RULES_MAX; i++)
        b->rule_counts[i] = 0;
}

void ar_ban_success(ar_ban_t *b)
{
    /* Successes are the hot path: only lock when there is something to reset. */
    if (!atomic_load_explicit(&b->dirty, memory_order_relaxed))
        return;
    pthread_mutex_lock(&b->mu);
    reset_counts(b);
    pthread_mutex_unlock(&b->mu);
}

void ar_ban_reset(ar_ban_t *b)
{
    pthread_mutex_lock(&b->mu);
    reset_counts(b);
    atomic_store(&b->until_ms, 0);
    pthread_mutex_unlock(&b->mu);
}

static const ar_ban_rule_t *rule_for(const ar_fail2ban_conf_t *conf, int code)
{
    for (size_t i = 0; i < conf->rules_cnt; i++) {
        if (conf->rules[i].code == code)
            return &conf->rules[i];
    }
    return NULL;
}

static bool counted(const ar_fail2ban_conf_t *conf, int code)
{
    for (size_t i = 0; i < conf->error_codes_cnt; i++) {
        if (conf->error_codes[i] == code)
            return true;
    }
    return rule_for(conf, code) != NULL;
}

bool ar_ban_failure(ar_ban_t *b, const ar_fail2ban_conf_t *conf, int code, uint64_t now_ms)
{
    if (code <= 0 || !counted(conf, code))
        return false;
    const ar_ban_rule_t *rule = rule_for(conf, code);
    int64_t max_attempts = rule ? rule->max_attempts : conf->max_attempts;
    int64_t duration = rule ? rule->ban_duration_ms : conf->ban_duration_ms;
    bool banned = false;
    pthread_mutex_lock(&b->mu);
    if (ar_ban_active(b, now_ms)) {
        /* attempts admitted before the ban report late: they are the tail of what caused
         * it, and must not count towards the next ban once this one expires */
        pthread_mutex_unlock(&b->mu);
        return false;
    }
    int64_t *count = &b->count;
    if (rule) {
        int slot = -1;
        for (int i = 0; i < AR_BAN_RULES_MAX && slot < 0; i++) {
            if (b->rule_codes[i] == code || b->rule_codes[i] == 0)
                slot = i;
        }
        if (slot >= 0) {
            b->rule_codes[slot] = code;
            count = &b->rule_counts[slot];
        }
    }
    (*count)++;
    atomic_store(&b->dirty, true);
    if (max_attempts > 0 && *count >= max_attempts) {
        int64_t until = duration < 0 ? INT64_MAX : (int64_t)now_ms + duration;
        if (until == 0)
            until = 1;
        atomic_store(&b->until_ms, until);
        atomic_store(&b->last_code, code);
        reset_counts(b);
        banned = true;
    }
    pthread_mutex_unlock(&b->mu);
    return banned;
}
