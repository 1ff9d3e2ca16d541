/*
 * redis.c: the Redis client of redis.h, the one file that speaks hiredis. Each worker loop
 * has its own connection (hiredis's libuv adapter), its own timer for the answer deadline
 * and its own reconnect timer; the process-wide part is the parsed URL and atomics.
 *
 * A check in flight is an entry in its connection's FIFO: answers arrive in order, so the
 * head is always the oldest. hiredis owns an entry once the command is sent and frees it
 * through the reply callback, which hiredis runs exactly once (with NULL when the
 * connection goes); an entry whose verdict was already given (deadline passed) only frees.
 */
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "core/crypto.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/redis.h"

#define MAX_WINDOWS 8
#define CONNECT_TIMEOUT_MS 500
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

/*
 * KEYS: the windows (n of them). ARGV[1]: the window in ms; ARGV[2]: a member unique to this
 * event; ARGV[3..n+2]: each key's limit; ARGV[n+3..2n+2]: each key's cost, 0 for a window
 * that counts admissions (RPM: ZCARD), else the tokens charged to a token window (TPM:
 * members are "COST:member", their sum kept in KEY:sum, which expired members leave).
 * Returns {1, 0} (charged everywhere) or {0, wait_ms}. Time is the server's, so instances
 * with skewed clocks share one window.
 */
static const char script[] =
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
static const char settle_script[] =
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

struct ar_redis {
    char host[64]; /* numeric, resolved once */
    int port;
    char *user, *password; /* NULL: no AUTH */
    int db;
    uint64_t instance; /* random: makes members unique across instances */
    _Atomic long conns, conns_ready;
    _Atomic uint64_t checks, denied, unavailable, timeouts, disconnects, seq;
};

struct ar_redis_conn {
    ar_redis_t *r;
    uv_loop_t *loop;
    redisAsyncContext *ctx; /* NULL while disconnected */
    bool ready;             /* connected and the script loaded */
    bool announced;         /* "up" was logged: the next loss is logged once */
    bool closing;
    char sha[41], settle_sha[41]; /* the scripts' SHA1s ("" until loaded) */
    ar_list_t pending;            /* entries waiting for a verdict, oldest first */
    uint64_t connect_deadline_ms;
    uv_timer_t deadline; /* the head's answer deadline, or the connect deadline */
    uv_timer_t retry;    /* reconnect */
    int64_t backoff_ms;
    int handles_open;
};

typedef struct entry {
    ar_list_t link; /* in conn->pending while the verdict is owed */
    ar_redis_conn_t *c;
    ar_redis_verdict_cb cb;
    void *ud;
    bool owed; /* the verdict is not given yet */
    bool retried;
    const char *text; /* the script's source, for NOSCRIPT */
    size_t textlen;
    uint64_t deadline_ms;
    int argc;
    char *argv[4 + 3 * MAX_WINDOWS];
    size_t argvlen[4 + 3 * MAX_WINDOWS];
} entry_t;

static void start_connect(ar_redis_conn_t *c);
static void drop(ar_redis_conn_t *c, const char *why);

/* ---- the client ---- */

/* Copies [s, s+n) decoded from %XX into a new string. */
static char *dup_decoded(const char *s, size_t n)
{
    char *out = ar_xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (s[i] == '%' && i + 2 < n && sscanf(s + i + 1, "%2x", &v) == 1) {
            out[k++] = (char)v;
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = '\0';
    return out;
}

ar_redis_t *ar_redis_create(const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(err, errlen, "rediss:// (TLS) is not supported by this build");
        return NULL;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "storage.redis_url must start with redis://");
        return NULL;
    }
    ar_redis_t *r = ar_xcalloc(1, sizeof(*r));
    r->port = 6379;
    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p)
                r->user = dup_decoded(p, (size_t)(colon - p));
            r->password = dup_decoded(colon + 1, (size_t)(at - colon - 1));
        } else {
            r->password = dup_decoded(p, (size_t)(at - p));
        }
        p = at + 1;
    }
    char host[256];
    const char *hend = p;
    if (*p == '[') { /* [v6] */
        hend = memchr(p, ']', (size_t)(end - p));
        if (!hend)
            goto bad;
        p++;
    } else {
        while (hend < end && *hend != ':')
            hend++;
    }
    if (hend == p || (size_t)(hend - p) >= sizeof(host))
        goto bad;
    memcpy(host, p, (size_t)(hend - p));
    host[hend - p] = '\0';
    const char *q = hend + (*hend == ']');
    if (q < end && *q == ':') {
        char *e;
        long port = strtol(q + 1, &e, 10);
        if (e != end || port < 1 || port > 65535)
            goto bad;
        r->port = (int)port;
    }
    if (*end == '/' && end[1]) {
        char *e;
        long db = strtol(end + 1, &e, 10);
        if (db < 0 || db > 1000000 || (*e && *e != '?' && *e != '#'))
            goto bad;
        r->db = (int)db;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai) {
        snprintf(err, errlen, "storage.redis_url: cannot resolve host '%s'", host);
        ar_redis_destroy(r);
        return NULL;
    }
    int grc =
        getnameinfo(ai->ai_addr, ai->ai_addrlen, r->host, sizeof(r->host), NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(ai);
    if (grc != 0)
        goto bad;
    r->instance = ar_rand_u64();
    return r;
bad:
    /* the URL may hold a password: never quote it */
    snprintf(err, errlen, "storage.redis_url is not a valid redis:// URL");
    ar_redis_destroy(r);
    return NULL;
}

void ar_redis_destroy(ar_redis_t *r)
{
    if (!r)
        return;
    ar_free(r->user);
    ar_free(r->password);
    ar_free(r);
}

void ar_redis_stats(const ar_redis_t *r, ar_redis_stats_t *out)
{
    ar_redis_t *m = (ar_redis_t *)r; /* atomics are read, never written */
    out->conns = atomic_load(&m->conns);
    out->conns_ready = atomic_load(&m->conns_ready);
    out->up = out->conns_ready > 0;
    out->checks = atomic_load(&m->checks);
    out->denied = atomic_load(&m->denied);
    out->unavailable = atomic_load(&m->unavailable);
    out->timeouts = atomic_load(&m->timeouts);
    out->disconnects = atomic_load(&m->disconnects);
}

/* ---- verdicts ---- */

/* Not uv_now: the loop's cached time lags behind after a long turn, which would make
 * deadlines fall early. */
static uint64_t now_ms(const ar_redis_conn_t *c)
{
    (void)c;
    return uv_hrtime() / 1000000u;
}

/* Gives e's verdict (once) and takes it off the pending list. */
static void give(entry_t *e, int rc, bool allowed, int64_t retry_ms)
{
    if (!e->owed)
        return;
    e->owed = false;
    ar_list_remove(&e->link);
    ar_redis_t *r = e->c->r;
    if (rc == 0) {
        atomic_fetch_add(&r->checks, 1);
        if (!allowed)
            atomic_fetch_add(&r->denied, 1);
    } else {
        atomic_fetch_add(&r->unavailable, 1);
    }
    e->cb(e->ud, rc, allowed, retry_ms);
}

static void entry_free(entry_t *e)
{
    for (int i = 0; i < e->argc; i++)
        ar_free(e->argv[i]);
    ar_free(e);
}

/* Fails every check waiting on c. */
static void fail_pending(ar_redis_conn_t *c)
{
    while (!ar_list_empty(&c->pending)) {
        entry_t *e = ar_container_of(c->pending.next, entry_t, link);
        give(e, AR_EUNAVAIL, false, 0);
    }
}

static void arm_deadline(ar_redis_conn_t *c);

static void on_reply(redisAsyncContext *ac, void *rep, void *priv);

static int send_entry(ar_redis_conn_t *c, entry_t *e)
{
    return redisAsyncCommandArgv(c->ctx, on_reply, e, e->argc, (const char **)e->argv, e->argvlen);
}

static void on_reply(redisAsyncContext *ac, void *rep, void *priv)
{
    entry_t *e = priv;
    redisReply *reply = rep;
    ar_redis_conn_t *c = ac->data;
    if (!reply) {
        /* the connection is going: no check may be sent on it from the verdict below */
        if (c && c->ctx == ac && c->ready) {
            c->ready = false;
            atomic_fetch_sub(&c->r->conns_ready, 1);
        }
        give(e, AR_EUNAVAIL, false, 0);
        entry_free(e);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        !e->retried && (e->owed || !e->cb) && c && c->ctx == ac) {
        /* the script cache was flushed (or a failover): send the script itself, which
         * loads it again */
        e->retried = true;
        ar_free(e->argv[0]);
        ar_free(e->argv[1]);
        e->argv[0] = ar_xstrdup("EVAL");
        e->argvlen[0] = 4;
        e->argv[1] = ar_xstrdup(e->text);
        e->argvlen[1] = e->textlen;
        if (send_entry(c, e) == REDIS_OK)
            return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER &&
        reply->element[1]->type == REDIS_REPLY_INTEGER) {
        give(e, 0, reply->element[0]->integer == 1, reply->element[1]->integer);
    } else {
        if (e->owed && reply->type == REDIS_REPLY_ERROR)
            AR_LOG(AR_LOG_WARN, NULL, "redis: window check failed: %.200s", reply->str);
        give(e, AR_EUNAVAIL, false, 0);
    }
    entry_free(e);
    if (c && c->ctx == ac)
        arm_deadline(c);
}

/* ---- connection ---- */

static void set_ready(ar_redis_conn_t *c, bool ready)
{
    if (c->ready == ready)
        return;
    c->ready = ready;
    atomic_fetch_add(&c->r->conns_ready, ready ? 1 : -1);
}

static void announce_down(ar_redis_conn_t *c, const char *why)
{
    if (!c->announced)
        return;
    c->announced = false;
    AR_LOG(AR_LOG_WARN, NULL, "redis %s:%d down (%s): limits fall back to this instance",
           c->r->host, c->r->port, why);
}

static void on_retry(uv_timer_t *t)
{
    start_connect(t->data);
}

static void schedule_reconnect(ar_redis_conn_t *c)
{
    if (c->closing)
        return;
    uv_timer_start(&c->retry, on_retry, (uint64_t)c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* Drops the connection (broken, or too slow): its checks fall back, a new one follows. */
static void drop(ar_redis_conn_t *c, const char *why)
{
    set_ready(c, false);
    redisAsyncContext *ac = c->ctx;
    c->ctx = NULL;
    fail_pending(c);
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* its callbacks find their verdicts given: they only free */
        atomic_fetch_add(&c->r->disconnects, 1);
    }
    announce_down(c, why);
    uv_timer_stop(&c->deadline);
    schedule_reconnect(c);
}

static void on_deadline(uv_timer_t *t)
{
    ar_redis_conn_t *c = t->data;
    uint64_t now = now_ms(c);
    if (!c->ready) {
        if (c->ctx && now >= c->connect_deadline_ms)
            drop(c, "connect timed out");
        return;
    }
    if (ar_list_empty(&c->pending))
        return;
    entry_t *head = ar_container_of(c->pending.next, entry_t, link);
    if (now >= head->deadline_ms) {
        atomic_fetch_add(&c->r->timeouts, 1);
        drop(c, "no answer within 50 ms");
        return;
    }
    arm_deadline(c);
}

static void arm_deadline(ar_redis_conn_t *c)
{
    if (c->closing)
        return;
    uint64_t now = now_ms(c), at;
    if (!c->ready) {
        at = c->connect_deadline_ms;
    } else if (!ar_list_empty(&c->pending)) {
        at = ar_container_of(c->pending.next, entry_t, link)->deadline_ms;
    } else {
        uv_timer_stop(&c->deadline);
        return;
    }
    uv_timer_start(&c->deadline, on_deadline, at > now ? at - now : 0, 0);
}

static void on_settle_loaded(redisAsyncContext *ac, void *rep, void *priv)
{
    (void)priv;
    ar_redis_conn_t *c = ac->data;
    redisReply *reply = rep;
    if (!c || c->ctx != ac || !reply || reply->type != REDIS_REPLY_STRING || reply->len != 40)
        return;
    memcpy(c->settle_sha, reply->str, 40);
    c->settle_sha[40] = '\0';
}

static void on_script_loaded(redisAsyncContext *ac, void *rep, void *priv)
{
    (void)priv;
    ar_redis_conn_t *c = ac->data;
    redisReply *reply = rep;
    if (!c || c->ctx != ac || !reply)
        return;
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        AR_LOG(AR_LOG_WARN, NULL, "redis %s:%d: cannot load the window script: %.200s", c->r->host,
               c->r->port, reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        return; /* the connect deadline drops it and tries again */
    }
    memcpy(c->sha, reply->str, 40);
    c->sha[40] = '\0';
    if (!c->settle_sha[0])
        return; /* its load failed: the connect deadline drops it and tries again */
    c->backoff_ms = BACKOFF_MIN_MS;
    set_ready(c, true);
    c->announced = true;
    AR_LOG(AR_LOG_INFO, NULL, "redis %s:%d up: limits are shared", c->r->host, c->r->port);
    arm_deadline(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    ar_redis_conn_t *c = ac->data;
    if (!c || c->ctx != ac || status == REDIS_OK)
        return;
    /* hiredis frees the context after this callback */
    c->ctx = NULL;
    uv_timer_stop(&c->deadline);
    schedule_reconnect(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    ar_redis_conn_t *c = ac->data;
    if (!c || c->ctx != ac)
        return;
    /* hiredis frees the context after this callback */
    c->ctx = NULL;
    set_ready(c, false);
    fail_pending(c);
    atomic_fetch_add(&c->r->disconnects, 1);
    announce_down(c, "connection lost");
    uv_timer_stop(&c->deadline);
    schedule_reconnect(c);
}

static void start_connect(ar_redis_conn_t *c)
{
    if (c->closing || c->ctx)
        return;
    ar_redis_t *r = c->r;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac || ac->err || redisLibuvAttach(ac, c->loop) != REDIS_OK) {
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(c);
        return;
    }
    ac->data = c;
    c->ctx = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* pipelined: a failed AUTH or SELECT makes SCRIPT LOAD fail too (NOAUTH) */
    if (r->password) {
        if (r->user)
            redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", r->user, r->password);
        else
            redisAsyncCommand(ac, NULL, NULL, "AUTH %s", r->password);
    }
    if (r->db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", r->db);
    c->settle_sha[0] = '\0';
    redisAsyncCommand(ac, on_settle_loaded, NULL, "SCRIPT LOAD %s", settle_script);
    redisAsyncCommand(ac, on_script_loaded, NULL, "SCRIPT LOAD %s", script);
    c->connect_deadline_ms = now_ms(c) + CONNECT_TIMEOUT_MS;
    arm_deadline(c);
}

ar_redis_conn_t *ar_redis_conn_open(ar_redis_t *r, uv_loop_t *loop)
{
    ar_redis_conn_t *c = ar_xcalloc(1, sizeof(*c));
    c->r = r;
    c->loop = loop;
    c->backoff_ms = BACKOFF_MIN_MS;
    ar_list_init(&c->pending);
    uv_timer_init(loop, &c->deadline);
    uv_timer_init(loop, &c->retry);
    c->deadline.data = c;
    c->retry.data = c;
    c->handles_open = 2;
    atomic_fetch_add(&r->conns, 1);
    start_connect(c);
    return c;
}

static void on_handle_closed(uv_handle_t *h)
{
    ar_redis_conn_t *c = h->data;
    if (--c->handles_open == 0)
        ar_free(c);
}

void ar_redis_conn_close(ar_redis_conn_t *c)
{
    if (!c)
        return;
    c->closing = true;
    set_ready(c, false);
    redisAsyncContext *ac = c->ctx;
    c->ctx = NULL;
    fail_pending(c);
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    atomic_fetch_sub(&c->r->conns, 1);
    uv_close((uv_handle_t *)&c->deadline, on_handle_closed);
    uv_close((uv_handle_t *)&c->retry, on_handle_closed);
}

bool ar_redis_conn_ready(const ar_redis_conn_t *c)
{
    return c && c->ready && c->ctx;
}

/* ---- checks ---- */

static void set_arg(entry_t *e, const char *s, size_t len)
{
    e->argv[e->argc] = ar_xmalloc(len + 1);
    memcpy(e->argv[e->argc], s, len);
    e->argv[e->argc][len] = '\0';
    e->argvlen[e->argc] = len;
    e->argc++;
}

static void set_int(entry_t *e, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    set_arg(e, tmp, (size_t)n);
}

int ar_redis_window_admit(ar_redis_conn_t *c, const ar_redis_window_t *w, size_t n,
                          int64_t window_ms, char *member_out, ar_redis_verdict_cb cb, void *ud)
{
    if (n == 0 || n > MAX_WINDOWS || window_ms <= 0)
        return AR_EINVAL;
    if (!ar_redis_conn_ready(c))
        return AR_EUNAVAIL;
    entry_t *e = ar_xcalloc(1, sizeof(*e));
    e->c = c;
    e->cb = cb;
    e->ud = ud;
    e->text = script;
    e->textlen = sizeof(script) - 1;
    set_arg(e, "EVALSHA", 7);
    set_arg(e, c->sha, 40);
    set_int(e, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        set_arg(e, w[i].key, strlen(w[i].key));
    set_int(e, window_ms);
    char member[AR_REDIS_MEMBER_MAX];
    int ml = snprintf(member, sizeof(member), "%016llx:%llu", (unsigned long long)c->r->instance,
                      (unsigned long long)atomic_fetch_add(&c->r->seq, 1));
    set_arg(e, member, (size_t)ml);
    if (member_out)
        memcpy(member_out, member, (size_t)ml + 1);
    for (size_t i = 0; i < n; i++)
        set_int(e, w[i].limit < 0 ? 0 : w[i].limit);
    for (size_t i = 0; i < n; i++)
        set_int(e, w[i].cost < 0 ? 0 : w[i].cost);
    if (send_entry(c, e) != REDIS_OK) {
        entry_free(e);
        return AR_EUNAVAIL;
    }
    e->owed = true;
    e->deadline_ms = now_ms(c) + AR_REDIS_TIMEOUT_MS;
    ar_list_insert_tail(&c->pending, &e->link);
    arm_deadline(c);
    return 0;
}

void ar_redis_window_release(ar_redis_conn_t *c, const char *const *keys, size_t n,
                             const char *member)
{
    if (!ar_redis_conn_ready(c) || !member || !member[0])
        return;
    for (size_t i = 0; i < n; i++) {
        /* no callback: hiredis drops the answer; a lost release only ages out */
        const char *argv[3] = {"ZREM", keys[i], member};
        size_t lens[3] = {4, strlen(keys[i]), strlen(member)};
        redisAsyncCommandArgv(c->ctx, NULL, NULL, 3, argv, lens);
    }
}

void ar_redis_window_settle(ar_redis_conn_t *c, const char *const *keys, size_t n,
                            const char *member, int64_t charged, int64_t used)
{
    if (!ar_redis_conn_ready(c) || !member || !member[0] || n == 0 || n > MAX_WINDOWS ||
        charged == used || charged < 1)
        return;
    entry_t *e = ar_xcalloc(1, sizeof(*e));
    e->c = c;
    e->text = settle_script;
    e->textlen = sizeof(settle_script) - 1;
    set_arg(e, "EVALSHA", 7);
    set_arg(e, c->settle_sha, 40);
    set_int(e, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        set_arg(e, keys[i], strlen(keys[i]));
    set_arg(e, member, strlen(member));
    set_int(e, charged);
    set_int(e, used < 0 ? 0 : used);
    /* no verdict is owed (cb NULL): on_reply only frees it, after a NOSCRIPT retry */
    if (send_entry(c, e) != REDIS_OK)
        entry_free(e);
}
