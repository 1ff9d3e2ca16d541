/*
 * redis_quota.c: a virtual key's token quotas and budget shared by every instance: the
 * same reservation arithmetic as tenant/quota.c, run atomically in Redis over the fleet's
 * counters. One hash per key (KEY:quota: the day and month periods, their tokens, the
 * total tokens and USD, and what is reserved), and its reservations: a sorted set of
 * members by expiry (KEY:resv) with each one's amounts (KEY:resa). A reservation whose
 * instance died before settling expires and is given back; a hash Redis lost, or one idle
 * for a day, is seeded again from the asking instance's own view of the usage.
 */
#include <stdio.h>
#include <string.h>

#include "store/redis_int.h"

#define IDLE_MS 86400000LL

/* What both scripts share: the keys, Redis's clock, the period numbers of the asking
 * instance (a period only moves forward), and giving reservations back. */
#define QUOTA_LUA_COMMON                                                                           \
    "local q, rz, ra = KEYS[1], KEYS[2], KEYS[3]\n"                                                \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local day, month = tonumber(ARGV[2]), tonumber(ARGV[3])\n"                                    \
    "local function give_back(m)\n"                                                                \
    "  local a = redis.call('HGET', ra, m)\n"                                                      \
    "  if a then\n"                                                                                \
    "    local tk, us = string.match(a, '^(%S+) (%S+)$')\n"                                        \
    "    redis.call('HINCRBY', q, 'rt', string.format('%d', -tonumber(tk)))\n"                     \
    "    redis.call('HINCRBYFLOAT', q, 'ru', string.format('%.17g', -tonumber(us)))\n"             \
    "    redis.call('HDEL', ra, m)\n"                                                              \
    "  end\n"                                                                                      \
    "  redis.call('ZREM', rz, m)\n"                                                                \
    "end\n"                                                                                        \
    "local function expire_and_roll()\n"                                                           \
    "  for _, m in ipairs(redis.call('ZRANGEBYSCORE', rz, '-inf', now)) do give_back(m) end\n"     \
    "  if redis.call('ZCARD', rz) == 0 then redis.call('HSET', q, 'rt', 0, 'ru', 0) end\n"         \
    "  local h = redis.call('HMGET', q, 'day', 'month')\n"                                         \
    "  if day > tonumber(h[1]) then redis.call('HSET', q, 'day', day, 'dt', 0) end\n"              \
    "  if month > tonumber(h[2]) then redis.call('HSET', q, 'month', month, 'mt', 0) end\n"        \
    "end\n"                                                                                        \
    "local function keep(idle)\n"                                                                  \
    "  for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, idle) end\n"                           \
    "end\n"

/*
 * ARGV: 1 member, 2 day, 3 month, 4 the reservation's lifetime (ms), 5 the idle expiry,
 * 6..8 the day, month and total token limits, 9 the budget (USD; < 0: none of them), 10 the
 * prompt estimate, 11 the worst case (prompt + maximum output), 12..13 the input and output
 * prices, 14..17 the seeds (day, month and total tokens, total USD). Returns {admitted,
 * verdict (0, 1 tokens, 2 budget), day, month and total tokens, total nano-USD}.
 */
const char ar_redis_quota_lua[] = QUOTA_LUA_COMMON
    "if redis.call('EXISTS', q) == 0 then\n"
    "  redis.call('DEL', rz, ra)\n"
    "  redis.call('HSET', q, 'day', day, 'month', month, 'dt', ARGV[14], 'mt', ARGV[15],\n"
    "             'tt', ARGV[16], 'usd', ARGV[17], 'rt', 0, 'ru', 0)\n"
    "end\n"
    "expire_and_roll()\n"
    "local h = redis.call('HMGET', q, 'dt', 'mt', 'tt', 'usd', 'rt', 'ru')\n"
    "local used = {tonumber(h[1]), tonumber(h[2]), tonumber(h[3])}\n"
    "local usd, rt, ru = tonumber(h[4]), tonumber(h[5]), tonumber(h[6])\n"
    "local prompt, worst = tonumber(ARGV[10]), tonumber(ARGV[11])\n"
    "local inp, outp = tonumber(ARGV[12]), tonumber(ARGV[13])\n"
    "local left = -1\n"
    "for i = 1, 3 do\n"
    "  local lim = tonumber(ARGV[5 + i])\n"
    "  if lim >= 0 then\n"
    "    local r = lim - used[i] - rt\n"
    "    if r < 0 then r = 0 end\n"
    "    if left < 0 or r < left then left = r end\n"
    "  end\n"
    "end\n"
    "local budget = tonumber(ARGV[9])\n"
    "local uleft = -1\n"
    "if budget >= 0 then\n"
    "  uleft = budget - usd - ru\n"
    "  if uleft < 0 then uleft = 0 end\n"
    "end\n"
    "local verdict = 0\n"
    "if left >= 0 and left < prompt then\n"
    "  verdict = 1\n"
    "elseif uleft >= 0 and (uleft <= 0 or uleft < prompt * inp) then\n"
    "  verdict = 2\n"
    "else\n"
    "  local tk, us = 0, 0\n"
    "  if left >= 0 then tk = math.min(worst, left) end\n"
    "  if uleft >= 0 then us = math.min(prompt * inp + (worst - prompt) * outp, uleft) end\n"
    "  redis.call('HINCRBY', q, 'rt', string.format('%d', tk))\n"
    "  redis.call('HINCRBYFLOAT', q, 'ru', string.format('%.17g', us))\n"
    "  redis.call('ZADD', rz, now + tonumber(ARGV[4]), ARGV[1])\n"
    "  redis.call('HSET', ra, ARGV[1], string.format('%d %.17g', tk, us))\n"
    "end\n"
    "keep(tonumber(ARGV[5]))\n"
    "local ok = 0\n"
    "if verdict == 0 then ok = 1 end\n"
    "return {ok, verdict, used[1], used[2], used[3], math.floor(usd * 1e9)}\n";

/*
 * ARGV: 1 member, 2 day, 3 month, 4 the tokens used, 5 the cost (USD), 6 the idle expiry.
 * Gives the member's reservation back and counts the usage; a hash Redis lost is left
 * alone (the next reservation seeds it from a view that holds this usage). Returns {done}.
 */
const char ar_redis_quota_settle_lua[] = QUOTA_LUA_COMMON
    "if redis.call('EXISTS', q) == 0 then return {0} end\n"
    "give_back(ARGV[1])\n"
    "expire_and_roll()\n"
    "local n = tonumber(ARGV[4])\n"
    "if n > 0 then\n"
    "  redis.call('HINCRBY', q, 'dt', ARGV[4])\n"
    "  redis.call('HINCRBY', q, 'mt', ARGV[4])\n"
    "  redis.call('HINCRBY', q, 'tt', ARGV[4])\n"
    "end\n"
    "if tonumber(ARGV[5]) > 0 then redis.call('HINCRBYFLOAT', q, 'usd', ARGV[5]) end\n"
    "keep(tonumber(ARGV[6]))\n"
    "return {1}\n";

/* in the command's scratch */
typedef struct quota_wait {
    ar_redis_quota_cb cb;
    void *ud;
} quota_wait_t;
_Static_assert(sizeof(quota_wait_t) <= 4 * sizeof(void *), "the scratch holds the callback");

static void on_quota(void *ud, int rc, const int64_t *v, size_t n)
{
    quota_wait_t w = *(quota_wait_t *)ud;
    ar_redis_quota_used_t used = {0};
    int verdict = 0;
    if (rc == 0 && n != 6)
        rc = AR_EUNAVAIL;
    if (rc == 0) {
        verdict = (int)v[1];
        used = (ar_redis_quota_used_t){v[2], v[3], v[4], (double)v[5] / 1e9};
    }
    w.cb(w.ud, rc, verdict, &used);
}

/* Adds the three keys of the key whose prefix is key ("airouter:key:{ID}"). */
static ar_redis_cmd_t *quota_cmd(ar_redis_conn_t *c, ar_redis_script_id_t script, const char *key)
{
    ar_redis_cmd_t *cmd = ar_redis_cmd_new(c, script, 3);
    if (!cmd)
        return NULL;
    static const char *const tails[3] = {":quota", ":resv", ":resa"};
    char name[256];
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s%s", key, tails[i]);
        ar_redis_cmd_str(cmd, name);
    }
    return cmd;
}

int ar_redis_quota_reserve(ar_redis_conn_t *c, const char *key, const ar_redis_quota_ask_t *ask,
                           char *member_out, ar_redis_quota_cb cb, void *ud)
{
    ar_redis_cmd_t *cmd = quota_cmd(c, AR_REDIS_QUOTA, key);
    if (!cmd)
        return AR_EUNAVAIL;
    ar_redis_cmd_member(c, member_out);
    ar_redis_cmd_str(cmd, member_out);
    ar_redis_cmd_int(cmd, ask->day);
    ar_redis_cmd_int(cmd, ask->month);
    ar_redis_cmd_int(cmd, ask->hold_ms > 0 ? ask->hold_ms : 1);
    ar_redis_cmd_int(cmd, IDLE_MS);
    ar_redis_cmd_int(cmd, ask->day_tokens);
    ar_redis_cmd_int(cmd, ask->month_tokens);
    ar_redis_cmd_int(cmd, ask->total_tokens);
    ar_redis_cmd_real(cmd, ask->budget_usd);
    ar_redis_cmd_int(cmd, ask->prompt_tokens);
    ar_redis_cmd_int(cmd, ask->worst_tokens);
    ar_redis_cmd_real(cmd, ask->input_price);
    ar_redis_cmd_real(cmd, ask->output_price);
    ar_redis_cmd_int(cmd, ask->seed.day_tokens);
    ar_redis_cmd_int(cmd, ask->seed.month_tokens);
    ar_redis_cmd_int(cmd, ask->seed.total_tokens);
    ar_redis_cmd_real(cmd, ask->seed.total_usd);
    quota_wait_t *w = ar_redis_cmd_scratch(cmd);
    *w = (quota_wait_t){cb, ud};
    return ar_redis_cmd_send(cmd, on_quota, w);
}

void ar_redis_quota_settle(ar_redis_conn_t *c, const char *key, const char *member, int64_t day,
                           int64_t month, int64_t tokens, double cost_usd)
{
    if (!member || !member[0])
        return;
    ar_redis_cmd_t *cmd = quota_cmd(c, AR_REDIS_QUOTA_SETTLE, key);
    if (!cmd)
        return; /* the reservation expires; the usage is in this instance's view */
    ar_redis_cmd_str(cmd, member);
    ar_redis_cmd_int(cmd, day);
    ar_redis_cmd_int(cmd, month);
    ar_redis_cmd_int(cmd, tokens > 0 ? tokens : 0);
    ar_redis_cmd_real(cmd, cost_usd > 0 ? cost_usd : 0);
    ar_redis_cmd_int(cmd, IDLE_MS);
    (void)ar_redis_cmd_send(cmd, NULL, NULL);
}
