/*
 * redis_window.c: sliding windows shared by every instance (RPM and TPM of credentials,
 * deployments and virtual keys): the admission script, the correction of a token
 * window's estimate, and giving back an admission that was never used.
 */
#include <string.h>

#include "store/redis_int.h"

#define MAX_WINDOWS 8

/*
 * KEYS: the windows (n of them). ARGV[1]: the window in ms; ARGV[2]: a member unique to this
 * event; ARGV[3..n+2]: each key's limit; ARGV[n+3..2n+2]: each key's cost, 0 for a window
 * that counts admissions (RPM: ZCARD), else the tokens charged to a token window (TPM:
 * members are "COST:member", their sum kept in KEY:sum, which expired members leave).
 * Returns {1, 0} (charged everywhere) or {0, wait_ms}. Time is the server's, so instances
 * with skewed clocks share one window.
 */
const char ar_redis_window_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local win = tonumber(ARGV[1])\n"
    "local n = #KEYS\n"
    "local wait = -1\n"
    "for i, k in ipairs(KEYS) do\n"
    "  local limit = tonumber(ARGV[i + 2])\n"
    "  local cost = tonumber(ARGV[n + i + 2])\n"
    "  local w = -1\n"
    "  if cost == 0 then\n"
    "    redis.call('ZREMRANGEBYSCORE', k, '-inf', now - win)\n"
    "    local c = redis.call('ZCARD', k)\n"
    "    if c >= limit then\n"
    "      w = win\n"
    "      if limit > 0 then\n"
    /* room comes back when the (c - limit + 1)-th oldest admission leaves the window */
    "        local e = redis.call('ZRANGE', k, c - limit, c - limit, 'WITHSCORES')\n"
    "        w = tonumber(e[2]) + win - now\n"
    "      end\n"
    "    end\n"
    "  else\n"
    "    local sk = k .. ':sum'\n"
    "    local sum = tonumber(redis.call('GET', sk) or '0')\n"
    "    local old = redis.call('ZRANGEBYSCORE', k, '-inf', now - win)\n"
    "    if #old > 0 then\n"
    "      for _, m in ipairs(old) do sum = sum - tonumber(string.match(m, '^(%d+):')) end\n"
    "      redis.call('ZREMRANGEBYSCORE', k, '-inf', now - win)\n"
    "      if sum < 0 then sum = 0 end\n"
    "      redis.call('SET', sk, sum, 'PX', win)\n"
    "    end\n"
    "    if sum + cost > limit then\n"
    "      w = win\n"
    "      if cost <= limit then\n"
    /* refused (rare): walk the oldest until enough tokens would have left */
    "        local e = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')\n"
    "        local freed = 0\n"
    "        for j = 1, #e, 2 do\n"
    "          freed = freed + tonumber(string.match(e[j], '^(%d+):'))\n"
    "          if sum - freed + cost <= limit then\n"
    "            w = tonumber(e[j + 1]) + win - now\n"
    "            break\n"
    "          end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if w >= 0 then\n"
    "    if w < 1 then w = 1 end\n"
    "    if w > wait then wait = w end\n"
    "  end\n"
    "end\n"
    "if wait >= 0 then return {0, wait} end\n"
    "for i, k in ipairs(KEYS) do\n"
    "  local cost = tonumber(ARGV[n + i + 2])\n"
    "  if cost == 0 then\n"
    "    redis.call('ZADD', k, now, ARGV[2])\n"
    "  else\n"
    "    redis.call('ZADD', k, now, cost .. ':' .. ARGV[2])\n"
    "    redis.call('INCRBY', k .. ':sum', cost)\n"
    "    redis.call('PEXPIRE', k .. ':sum', win)\n"
    "  end\n"
    "  redis.call('PEXPIRE', k, win)\n"
    "end\n"
    "return {1, 0}\n";

/*
 * The correction of token windows once the real usage is known. KEYS: the token windows;
 * ARGV[1]: the member; ARGV[2]: the tokens it was charged; ARGV[3]: the tokens used. The
 * entry keeps its time (the window it counts in does not move) and takes the new cost; an
 * entry already gone from its window is left alone. Returns how many were corrected.
 */
const char ar_redis_window_settle_lua[] =
    /* a line of its own keeps clang-format from packing the script */
    ""
    "local old = ARGV[2] .. ':' .. ARGV[1]\n"
    "local d = tonumber(ARGV[3]) - tonumber(ARGV[2])\n"
    "local done = 0\n"
    "for _, k in ipairs(KEYS) do\n"
    "  local s = redis.call('ZSCORE', k, old)\n"
    "  if s then\n"
    "    redis.call('ZREM', k, old)\n"
    "    redis.call('ZADD', k, s, ARGV[3] .. ':' .. ARGV[1])\n"
    "    if redis.call('INCRBY', k .. ':sum', d) < 0 then\n"
    "      redis.call('SET', k .. ':sum', 0, 'KEEPTTL')\n"
    "    end\n"
    "    done = done + 1\n"
    "  end\n"
    "end\n"
    "return done\n";

/* in the command's scratch */
typedef struct verdict {
    ar_redis_verdict_cb cb;
    void *ud;
} verdict_t;
_Static_assert(sizeof(verdict_t) <= 4 * sizeof(void *), "the scratch holds a verdict");

static void on_window(void *ud, int rc, const int64_t *v, size_t n)
{
    verdict_t vd = *(verdict_t *)ud;
    if (rc == 0 && n != 2)
        rc = AR_EUNAVAIL;
    vd.cb(vd.ud, rc, rc == 0 && v[0] == 1, rc == 0 ? v[1] : 0);
}

int ar_redis_window_admit(ar_redis_conn_t *c, const ar_redis_window_t *w, size_t n,
                          int64_t window_ms, char *member_out, ar_redis_verdict_cb cb, void *ud)
{
    if (n == 0 || n > MAX_WINDOWS || window_ms <= 0)
        return AR_EINVAL;
    ar_redis_cmd_t *cmd = ar_redis_cmd_new(c, AR_REDIS_WINDOW, n);
    if (!cmd)
        return AR_EUNAVAIL;
    for (size_t i = 0; i < n; i++)
        ar_redis_cmd_str(cmd, w[i].key);
    ar_redis_cmd_int(cmd, window_ms);
    char member[AR_REDIS_MEMBER_MAX];
    ar_redis_member(c, member);
    ar_redis_cmd_str(cmd, member);
    if (member_out)
        memcpy(member_out, member, strlen(member) + 1);
    for (size_t i = 0; i < n; i++)
        ar_redis_cmd_int(cmd, w[i].limit < 0 ? 0 : w[i].limit);
    for (size_t i = 0; i < n; i++)
        ar_redis_cmd_int(cmd, w[i].cost < 0 ? 0 : w[i].cost);
    verdict_t *vd = ar_redis_cmd_scratch(cmd);
    *vd = (verdict_t){cb, ud};
    return ar_redis_cmd_send(cmd, on_window, vd);
}

void ar_redis_window_release(ar_redis_conn_t *c, const char *const *keys, size_t n,
                             const char *member)
{
    if (!member || !member[0])
        return;
    /* a lost release only ages out */
    for (size_t i = 0; i < n; i++)
        ar_redis_cmd_plain(c, (const char *const[]){"ZREM", keys[i], member}, 3);
}

void ar_redis_window_settle(ar_redis_conn_t *c, const char *const *keys, size_t n,
                            const char *member, int64_t charged, int64_t used)
{
    if (!member || !member[0] || n == 0 || n > MAX_WINDOWS || charged == used || charged < 1)
        return;
    ar_redis_cmd_t *cmd = ar_redis_cmd_new(c, AR_REDIS_WINDOW_SETTLE, n);
    if (!cmd)
        return;
    for (size_t i = 0; i < n; i++)
        ar_redis_cmd_str(cmd, keys[i]);
    ar_redis_cmd_str(cmd, member);
    ar_redis_cmd_int(cmd, charged);
    ar_redis_cmd_int(cmd, used < 0 ? 0 : used);
    (void)ar_redis_cmd_send(cmd, NULL, NULL);
}
