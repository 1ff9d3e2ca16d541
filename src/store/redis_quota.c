/*
 * redis_quota.c: a virtual key's token quotas and budget shared by every instance, as
 * leases. One hash per key (KEY:quota: the day and month periods, their tokens, the total
 * tokens, the total spend and what is reserved, money in nano-USD so that no float drifts)
 * and its leases: a sorted set of members by expiry (KEY:resv) with each one's reserved
 * tokens and nano-USD (KEY:resa). A lease is one worker's reservation for a key: what its
 * requests in flight took plus room for the next ones, renewed with the usage they settled.
 * One script does it all atomically: it counts the usage, gives the old reservation back,
 * checks the room for the request waiting (if any) as tenant/quota.h does, and reserves
 * what is in flight plus the room granted. A lease whose instance died expires and is
 * given back; a hash Redis lost, or one idle for a day, is seeded again from the asking
 * instance's own view of the usage.
 */
#include <stdio.h>
#include <string.h>

#include "store/redis_int.h"

#define IDLE_MS 86400000LL

/*
 * KEYS: KEY:quota, KEY:resv, KEY:resa. ARGV: 1 member, 2 day, 3 month, 4 the lease's
 * lifetime (ms), 5 the idle expiry, 6..8 the day, month and total token limits, 9 the
 * budget (nano-USD; < 0: none of them), 10..11 the usage to count (tokens, nano-USD),
 * 12..13 what is in flight, 14..15 what the waiting request needs at least (its prompt;
 * tokens < 0: no request waits, nothing to refuse), 16..17 what it needs at most (its worst
 * case; the unit of the room granted), 18..19 the room wanted, 20 how many leases may share
 * what is left (the room granted is at most 1/spread of it, unless the request needs
 * more), 21..24 the seeds (day,
 * month and total tokens, nano-USD). Returns {admitted, verdict (0, 1 tokens, 2 budget),
 * room granted (tokens, nano-USD), day, month and total tokens, nano-USD}.
 */
const char ar_redis_quota_lua[] =
    /* a line of its own keeps clang-format from packing the script */
    ""
    "local q, rz, ra = KEYS[1], KEYS[2], KEYS[3]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local A = {}\n"
    "for i = 2, 24 do A[i] = tonumber(ARGV[i]) end\n"
    "local h = redis.call('HMGET', q, 'day', 'month', 'dt', 'mt', 'tt', 'usd', 'rt', 'ru')\n"
    "if not h[1] then h = {A[2], A[3], A[21], A[22], A[23], A[24], 0, 0} end\n"
    "for i = 1, 8 do h[i] = tonumber(h[i]) end\n"
    "local day, month, dt, mt, tt, usd, rt, ru = unpack(h)\n"
    /* a period only moves forward: an instance whose clock lags cannot roll it back */
    "if A[2] > day then day = A[2]; dt = 0 end\n"
    "if A[3] > month then month = A[3]; mt = 0 end\n"
    "local function drop(m)\n"
    "  local a = redis.call('HGET', ra, m)\n"
    "  if a then\n"
    "    local x, y = string.match(a, '^(%-?%d+) (%-?%d+)$')\n"
    "    rt = rt - tonumber(x)\n"
    "    ru = ru - tonumber(y)\n"
    "    redis.call('HDEL', ra, m)\n"
    "  end\n"
    "  redis.call('ZREM', rz, m)\n"
    "end\n"
    "for _, m in ipairs(redis.call('ZRANGEBYSCORE', rz, '-inf', now)) do drop(m) end\n"
    "drop(ARGV[1])\n"
    "if rt < 0 then rt = 0 end\n"
    "if ru < 0 then ru = 0 end\n"
    "dt = dt + A[10]; mt = mt + A[10]; tt = tt + A[10]; usd = usd + A[11]\n"
    "local tl = A[6] >= 0 or A[7] >= 0 or A[8] >= 0\n"
    "local bl = A[9] >= 0\n"
    "local at, au = 0, 0\n"
    "if tl then\n"
    "  at = -1\n"
    "  local used = {dt, mt, tt}\n"
    "  for i = 1, 3 do\n"
    "    if A[5 + i] >= 0 then\n"
    "      local r = A[5 + i] - used[i] - rt\n"
    "      if at < 0 or r < at then at = r end\n"
    "    end\n"
    "  end\n"
    "  at = at - A[12]\n"
    "end\n"
    "if bl then au = A[9] - usd - ru - A[13] end\n"
    "local verdict = 0\n"
    "if A[14] >= 0 then\n"
    "  if tl and at < A[14] then verdict = 1\n"
    "  elseif bl and (au <= 0 or au < A[15]) then verdict = 2 end\n"
    "end\n"
    /* whole worst cases only (room for a part of one request would sit unused), at
     * least one for a waiting request, never more than is left */
    "local function grant(avail, unit, want)\n"
    "  if avail <= 0 then return 0 end\n"
    "  local g = math.floor(avail / A[20])\n"
    "  if want < g then g = want end\n"
    "  if unit > 0 then g = math.floor(g / unit) * unit end\n"
    "  if A[14] >= 0 and unit > g then g = unit end\n"
    "  if avail < g then g = avail end\n"
    "  return g\n"
    "end\n"
    "local gt, gu = 0, 0\n"
    "if verdict == 0 then\n"
    "  if tl then gt = grant(at, A[16], A[18]) end\n"
    "  if bl then gu = grant(au, A[17], A[19]) end\n"
    "end\n"
    "local kt, ku = A[12] + gt, A[13] + gu\n"
    "rt = rt + kt; ru = ru + ku\n"
    "local f = '%d'\n"
    "redis.call('HSET', q, 'day', string.format(f, day), 'month', string.format(f, month),\n"
    "           'dt', string.format(f, dt), 'mt', string.format(f, mt),\n"
    "           'tt', string.format(f, tt), 'usd', string.format(f, usd),\n"
    "           'rt', string.format(f, rt), 'ru', string.format(f, ru))\n"
    "if kt > 0 or ku > 0 then\n"
    "  redis.call('ZADD', rz, now + A[4], ARGV[1])\n"
    "  redis.call('HSET', ra, ARGV[1], string.format('%d %d', kt, ku))\n"
    "end\n"
    "for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, A[5]) end\n"
    "local ok = 0\n"
    "if verdict == 0 then ok = 1 end\n"
    "return {ok, verdict, gt, gu, dt, mt, tt, usd}\n";

/* in the command's scratch */
typedef struct lease_wait {
    ar_redis_lease_cb cb;
    void *ud;
} lease_wait_t;
_Static_assert(sizeof(lease_wait_t) <= 4 * sizeof(void *), "the scratch holds the callback");

static void on_lease(void *ud, int rc, const int64_t *v, size_t n)
{
    lease_wait_t w = *(lease_wait_t *)ud;
    ar_redis_lease_answer_t a = {0};
    if (rc == 0 && n != 8)
        rc = AR_EUNAVAIL;
    if (rc == 0)
        a = (ar_redis_lease_answer_t){(int)v[1], v[2], v[3], {v[4], v[5], v[6], v[7]}};
    w.cb(w.ud, rc, &a);
}

int ar_redis_quota_lease(ar_redis_conn_t *c, const char *key, const char *member,
                         const ar_redis_lease_ask_t *ask, ar_redis_lease_cb cb, void *ud)
{
    ar_redis_cmd_t *cmd = ar_redis_cmd_new(c, AR_REDIS_QUOTA, 3);
    if (!cmd)
        return AR_EUNAVAIL;
    static const char *const tails[3] = {":quota", ":resv", ":resa"};
    char name[256];
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s%s", key, tails[i]);
        ar_redis_cmd_str(cmd, name);
    }
    ar_redis_cmd_str(cmd, member);
    const int64_t args[] = {ask->day,
                            ask->month,
                            ask->hold_ms > 0 ? ask->hold_ms : 1,
                            IDLE_MS,
                            ask->day_tokens,
                            ask->month_tokens,
                            ask->total_tokens,
                            ask->budget_nano,
                            ask->usage.tokens,
                            ask->usage.nano,
                            ask->in_flight.tokens,
                            ask->in_flight.nano,
                            ask->need_min.tokens,
                            ask->need_min.nano,
                            ask->need_max.tokens,
                            ask->need_max.nano,
                            ask->want.tokens,
                            ask->want.nano,
                            ask->spread > 0 ? ask->spread : 1,
                            ask->seed.day_tokens,
                            ask->seed.month_tokens,
                            ask->seed.total_tokens,
                            ask->seed.total_nano};
    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
        ar_redis_cmd_int(cmd, args[i]);
    lease_wait_t *w = ar_redis_cmd_scratch(cmd);
    *w = (lease_wait_t){cb, ud};
    return ar_redis_cmd_send(cmd, cb ? on_lease : NULL, cb ? w : NULL);
}
