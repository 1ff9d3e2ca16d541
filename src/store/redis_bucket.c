/*
 * redis_bucket.c: token buckets shared by every instance (client rate limiting: global,
 * per client, per model): the GCRA script that takes one token from several buckets at
 * once, and the reading of its answer. A bucket is one key, its "theoretical arrival time"
 * (the instant it is full again), as router/bucket.c keeps it in memory.
 */
#include "store/redis_int.h"

/*
 * KEYS: the buckets. ARGV[2i-1]: bucket i's capacity; ARGV[2i]: the microseconds one token
 * takes to come back. Time is the server's (microseconds), so instances with skewed clocks
 * share one bucket. A bucket with room when its debt (time until full, after this take)
 * stays within capacity * interval; the first without room refuses for all and nothing is
 * charged. Each key expires when its bucket is full again (a missing key is a full bucket).
 * Returns {1, i, tokens left, ms until full} for the tightest bucket i, or
 * {0, i, ms until a token, ms until full} for the first full bucket i.
 */
const char ar_redis_bucket_lua[] =
    /* a line of its own keeps clang-format from packing the script */
    ""
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local nxt = {}\n"
    "local bi, brem, bdebt = 0, 0, 0\n"
    "for i, k in ipairs(KEYS) do\n"
    "  local cap = tonumber(ARGV[2 * i - 1])\n"
    "  local iv = tonumber(ARGV[2 * i])\n"
    "  local tol = cap * iv\n"
    "  local base = tonumber(redis.call('GET', k) or '0') or 0\n"
    "  if base < now then base = now end\n"
    "  local debt = base + iv - now\n"
    "  if debt > tol then\n"
    "    return {0, i, math.ceil((debt - tol) / 1000), math.ceil((base - now) / 1000)}\n"
    "  end\n"
    "  nxt[i] = base + iv\n"
    "  local rem = math.floor((tol - debt) / iv)\n"
    "  if bi == 0 or rem < brem or (rem == brem and debt > bdebt) then\n"
    "    bi, brem, bdebt = i, rem, debt\n"
    "  end\n"
    "end\n"
    "for i, k in ipairs(KEYS) do\n"
    "  redis.call('SET', k, string.format('%.0f', nxt[i]), 'PX', math.ceil((nxt[i] - now) / "
    "1000))\n"
    "end\n"
    "return {1, bi, brem, math.ceil(bdebt / 1000)}\n";

/* in the command's scratch */
typedef struct take {
    ar_redis_bucket_cb cb;
    void *ud;
    size_t n;
} take_t;
_Static_assert(sizeof(take_t) <= 4 * sizeof(void *), "the scratch holds a take");

static void on_take(void *ud, int rc, const int64_t *v, size_t n)
{
    take_t tk = *(take_t *)ud;
    /* an answer of another shape (a script from another version) is no answer */
    if (rc == 0 && (n != 4 || v[1] < 1 || (uint64_t)v[1] > tk.n))
        rc = AR_EUNAVAIL;
    if (rc != 0) {
        tk.cb(tk.ud, rc, NULL);
        return;
    }
    ar_redis_bucket_verdict_t vd = {.allowed = v[0] == 1, .which = (size_t)v[1] - 1};
    if (vd.allowed) {
        vd.remaining = v[2] < 0 ? 0 : v[2];
    } else {
        vd.retry_ms = v[2] < 1 ? 1 : v[2];
    }
    vd.full_ms = v[3] < 0 ? 0 : v[3];
    tk.cb(tk.ud, 0, &vd);
}

int ar_redis_bucket_take(ar_redis_conn_t *c, const ar_redis_bucket_t *b, size_t n,
                         ar_redis_bucket_cb cb, void *ud)
{
    if (n == 0 || n > AR_REDIS_BUCKETS_MAX || !cb)
        return AR_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!b[i].key || b[i].capacity < 1 || b[i].interval_us < 1)
            return AR_EINVAL;
    }
    ar_redis_cmd_t *cmd = ar_redis_cmd_new(c, AR_REDIS_BUCKET, n);
    if (!cmd)
        return AR_EUNAVAIL;
    for (size_t i = 0; i < n; i++)
        ar_redis_cmd_str(cmd, b[i].key);
    for (size_t i = 0; i < n; i++) {
        ar_redis_cmd_int(cmd, b[i].capacity);
        ar_redis_cmd_int(cmd, b[i].interval_us);
    }
    take_t *tk = ar_redis_cmd_scratch(cmd);
    *tk = (take_t){cb, ud, n};
    return ar_redis_cmd_send(cmd, on_take, tk);
}
