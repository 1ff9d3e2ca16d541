/*
 * quota.c: reservation arithmetic (see quota.h). Every decision reads and changes the
 * counters under the key's mutex, so a check and its reservation cannot be split by
 * another request: the check-then-increment race of budgets spent twice does not exist.
 */
#include <string.h>
#include <time.h>

#include "tenant/quota.h"

#define DAY_MS 86400000LL

int64_t ar_quota_day_of(int64_t wall_ms)
{
    return wall_ms >= 0 ? wall_ms / DAY_MS : (wall_ms - DAY_MS + 1) / DAY_MS;
}

int64_t ar_quota_month_of(int64_t wall_ms)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

int64_t ar_quota_next_day_ms(int64_t now_ms)
{
    return (ar_quota_day_of(now_ms) + 1) * DAY_MS;
}

int64_t ar_quota_next_month_ms(int64_t now_ms)
{
    int64_t m = ar_quota_month_of(now_ms) + 1;
    struct tm tm = {.tm_year = (int)(m / 12) - 1900, .tm_mon = (int)(m % 12), .tm_mday = 1};
    return (int64_t)timegm(&tm) * 1000;
}

void ar_quota_init(ar_quota_t *q, const ar_usage_totals_t *day, const ar_usage_totals_t *month,
                   const ar_usage_totals_t *total, int64_t now_ms)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    q->day = ar_quota_day_of(now_ms);
    q->month = ar_quota_month_of(now_ms);
    if (day)
        q->used_day = *day;
    if (month)
        q->used_month = *month;
    if (total)
        q->used_total = *total;
    q->shared_day = day ? day->prompt_tokens + day->completion_tokens : 0;
    q->shared_month = month ? month->prompt_tokens + month->completion_tokens : 0;
    q->shared_total = total ? total->prompt_tokens + total->completion_tokens : 0;
    q->shared_usd = total ? total->cost_usd : 0;
}

void ar_quota_dispose(ar_quota_t *q)
{
    pthread_mutex_destroy(&q->mu);
}

/* Under q->mu: a new day or month starts its counters at zero. */
static void roll(ar_quota_t *q, int64_t now_ms)
{
    int64_t d = ar_quota_day_of(now_ms);
    if (d != q->day) {
        q->day = d;
        memset(&q->used_day, 0, sizeof(q->used_day));
        q->shared_day = q->others_day = 0;
        int64_t m = ar_quota_month_of(now_ms);
        if (m != q->month) {
            q->month = m;
            memset(&q->used_month, 0, sizeof(q->used_month));
            q->shared_month = q->others_month = 0;
        }
    }
}

static int64_t tokens_of(const ar_usage_totals_t *u)
{
    return u->prompt_tokens + u->completion_tokens;
}

/* Under q->mu: the room left under one limit, other instances' usage and reservations
 * deducted (never below 0). */
static int64_t room(int64_t limit, const ar_usage_totals_t *used, int64_t others, int64_t reserved)
{
    int64_t left = limit - tokens_of(used) - others - reserved;
    return left > 0 ? left : 0;
}

/* Under q->mu: the tightest token room, or -1 when no token limit is set. */
static int64_t token_room(const ar_quota_t *q, const ar_quota_limits_t *lim)
{
    int64_t best = -1;
    const int64_t limits[3] = {lim->day_tokens, lim->month_tokens, lim->total_tokens};
    const ar_usage_totals_t *used[3] = {&q->used_day, &q->used_month, &q->used_total};
    const int64_t others[3] = {q->others_day, q->others_month, q->others_total};
    for (int i = 0; i < 3; i++) {
        if (limits[i] < 0)
            continue;
        int64_t r = room(limits[i], used[i], others[i], q->reserved_tokens);
        if (best < 0 || r < best)
            best = r;
    }
    return best;
}

ar_quota_verdict_t ar_quota_reserve(ar_quota_t *q, const ar_quota_limits_t *lim,
                                    const ar_quota_ask_t *ask, int64_t now_ms, ar_reservation_t *r)
{
    memset(r, 0, sizeof(*r));
    /* nothing to check or reserve (the master key, most keys): settling counts the usage */
    if (!ar_quota_limits_any(lim))
        return AR_QUOTA_OK;
    int64_t prompt = ask->prompt_tokens > 0 ? ask->prompt_tokens : 1;
    int64_t worst = prompt + (ask->max_output_tokens > 0 ? ask->max_output_tokens : 0);
    ar_quota_verdict_t v = AR_QUOTA_OK;
    pthread_mutex_lock(&q->mu);
    roll(q, now_ms);
    int64_t tokens_left = token_room(q, lim);
    double usd_left = -1;
    if (lim->budget_usd >= 0) {
        usd_left = lim->budget_usd - q->used_total.cost_usd - q->others_usd - q->reserved_usd;
        if (usd_left < 0)
            usd_left = 0;
    }
    if (tokens_left >= 0 && tokens_left < prompt) {
        v = AR_QUOTA_TOKENS;
    } else if (usd_left >= 0 && (usd_left <= 0 || usd_left < (double)prompt * ask->input_price)) {
        /* an empty budget refuses even when prices are unknown (cost 0) */
        v = AR_QUOTA_BUDGET;
    } else {
        if (tokens_left >= 0)
            r->tokens = worst < tokens_left ? worst : tokens_left;
        if (usd_left >= 0) {
            double cost =
                (double)prompt * ask->input_price + (double)(worst - prompt) * ask->output_price;
            r->usd = cost < usd_left ? cost : usd_left;
        }
        q->reserved_tokens += r->tokens;
        q->reserved_usd += r->usd;
        q->in_flight++;
        r->held = true;
    }
    pthread_mutex_unlock(&q->mu);
    return v;
}

static void release_locked(ar_quota_t *q, ar_reservation_t *r)
{
    if (!r->held)
        return;
    q->reserved_tokens -= r->tokens;
    q->reserved_usd -= r->usd;
    if (--q->in_flight == 0)
        q->reserved_usd = 0; /* no float residue keeps part of a budget reserved */
    r->held = false;
}

static void add_usage(ar_usage_totals_t *u, int64_t prompt, int64_t completion, double cost)
{
    u->requests++;
    u->prompt_tokens += prompt;
    u->completion_tokens += completion;
    u->cost_usd += cost;
}

void ar_quota_settle(ar_quota_t *q, ar_reservation_t *r, int64_t prompt_tokens,
                     int64_t completion_tokens, double cost_usd, int64_t now_ms)
{
    pthread_mutex_lock(&q->mu);
    roll(q, now_ms);
    release_locked(q, r);
    add_usage(&q->used_day, prompt_tokens, completion_tokens, cost_usd);
    add_usage(&q->used_month, prompt_tokens, completion_tokens, cost_usd);
    add_usage(&q->used_total, prompt_tokens, completion_tokens, cost_usd);
    pthread_mutex_unlock(&q->mu);
}

void ar_quota_release(ar_quota_t *q, ar_reservation_t *r)
{
    pthread_mutex_lock(&q->mu);
    release_locked(q, r);
    pthread_mutex_unlock(&q->mu);
}

static int64_t beyond(int64_t fleet, int64_t own)
{
    return fleet > own ? fleet - own : 0;
}

void ar_quota_sync(ar_quota_t *q, const ar_quota_shared_t *fleet, int64_t now_ms)
{
    pthread_mutex_lock(&q->mu);
    roll(q, now_ms);
    q->shared_day = fleet->day_tokens;
    q->shared_month = fleet->month_tokens;
    q->shared_total = fleet->total_tokens;
    q->shared_usd = fleet->total_usd;
    q->others_day = beyond(fleet->day_tokens, tokens_of(&q->used_day));
    q->others_month = beyond(fleet->month_tokens, tokens_of(&q->used_month));
    q->others_total = beyond(fleet->total_tokens, tokens_of(&q->used_total));
    q->others_usd =
        fleet->total_usd > q->used_total.cost_usd ? fleet->total_usd - q->used_total.cost_usd : 0;
    pthread_mutex_unlock(&q->mu);
}

void ar_quota_known(ar_quota_t *q, int64_t now_ms, ar_quota_shared_t *out)
{
    pthread_mutex_lock(&q->mu);
    roll(q, now_ms);
    out->day_tokens = tokens_of(&q->used_day) + q->others_day;
    out->month_tokens = tokens_of(&q->used_month) + q->others_month;
    out->total_tokens = tokens_of(&q->used_total) + q->others_total;
    out->total_usd = q->used_total.cost_usd + q->others_usd;
    pthread_mutex_unlock(&q->mu);
}

/* base plus 1/n of what limit left above it (never less than base: nothing more) */
static int64_t share_tokens(int64_t limit, int64_t base, int64_t n)
{
    if (limit < 0)
        return limit;
    return limit > base ? base + (limit - base) / n : limit;
}

ar_quota_limits_t ar_quota_share_limits(ar_quota_t *q, const ar_quota_limits_t *lim, int64_t n,
                                        int64_t now_ms)
{
    if (n <= 1)
        return *lim;
    pthread_mutex_lock(&q->mu);
    roll(q, now_ms);
    ar_quota_limits_t out = {
        .day_tokens = share_tokens(lim->day_tokens, q->shared_day, n),
        .month_tokens = share_tokens(lim->month_tokens, q->shared_month, n),
        .total_tokens = share_tokens(lim->total_tokens, q->shared_total, n),
        .budget_usd = lim->budget_usd,
    };
    if (lim->budget_usd > q->shared_usd)
        out.budget_usd = q->shared_usd + (lim->budget_usd - q->shared_usd) / (double)n;
    pthread_mutex_unlock(&q->mu);
    return out;
}

void ar_quota_read(ar_quota_t *q, int64_t now_ms, ar_usage_totals_t *day, ar_usage_totals_t *month,
                   ar_usage_totals_t *total, int64_t *reserved_tokens)
{
    pthread_mutex_lock(&q->mu);
    roll(q, now_ms);
    if (day)
        *day = q->used_day;
    if (month)
        *month = q->used_month;
    if (total)
        *total = q->used_total;
    if (reserved_tokens)
        *reserved_tokens = q->reserved_tokens;
    pthread_mutex_unlock(&q->mu);
}

int64_t ar_quota_tokens_left(ar_quota_t *q, const ar_quota_limits_t *lim, int64_t now_ms)
{
    pthread_mutex_lock(&q->mu);
    roll(q, now_ms);
    int64_t left = token_room(q, lim);
    pthread_mutex_unlock(&q->mu);
    return left;
}
