/*
 * redis.c: the Redis connections of redis.h and the script commands of redis_int.h, the
 * one file that speaks hiredis. Each worker loop has its own connection (hiredis's libuv
 * adapter), its own timer for the answer deadline and its own reconnect timer; the
 * process-wide part is the parsed URL and atomics. A connection is ready once every script
 * of ar_redis_scripts is loaded.
 *
 * A command in flight is an entry in its connection's FIFO: answers arrive in order, so
 * the head is always the oldest. hiredis owns an entry once the command is sent and frees
 * it through the reply callback, which hiredis runs exactly once (with NULL when the
 * connection goes); an entry whose answer was already given (deadline passed) only frees.
 */
#include <netdb.h>
#include <stdatomic.h>
#include <stddef.h>
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
#include "core/str.h"
#include "store/redis_int.h"

#define CONNECT_TIMEOUT_MS 500
#define INLINE_ARGS 40
#define INLINE_BYTES 512
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

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
    bool ready;             /* connected and every script loaded */
    bool announced;         /* "up" was logged: the next loss is logged once */
    bool closing;
    char sha[AR_REDIS_SCRIPTS][41]; /* the scripts' SHA1s ("" until loaded) */
    ar_list_t pending;              /* entries waiting for an answer, oldest first */
    uint64_t connect_deadline_ms;
    uv_timer_t deadline; /* the head's answer deadline, or the connect deadline */
    uv_timer_t retry;    /* reconnect */
    int64_t backoff_ms;
    int handles_open;
    uint64_t epoch; /* connections made ready so far */
};

/* A command: EVALSHA, its script's SHA1, the number of keys, the keys, the arguments. */
struct ar_redis_cmd {
    ar_list_t link; /* in conn->pending while the answer is owed */
    ar_redis_conn_t *c;
    ar_redis_answer_cb cb;
    void *ud;
    bool owed; /* the answer is not given yet */
    bool retried;
    ar_redis_script_id_t script;
    uint64_t deadline_ms;
    int argc, cap;
    char **argv; /* argv_inl until more are needed */
    size_t *argvlen;
    void *scratch[4];
    /* one allocation per command: the arguments live here while they fit */
    char *argv_inl[INLINE_ARGS];
    size_t len_inl[INLINE_ARGS];
    size_t bytes_used;
    char bytes[INLINE_BYTES];
};
typedef struct ar_redis_cmd entry_t;

/* Every shared limit's scripts; their texts live beside the code that uses them. */
const ar_redis_script_t ar_redis_scripts[AR_REDIS_SCRIPTS] = {
    [AR_REDIS_WINDOW] = {"window", ar_redis_window_lua},
    [AR_REDIS_WINDOW_SETTLE] = {"window settle", ar_redis_window_settle_lua},
    [AR_REDIS_QUOTA] = {"quota lease", ar_redis_quota_lua},
    [AR_REDIS_BUCKET] = {"bucket", ar_redis_bucket_lua},
};

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

/* Gives e's answer (once) and takes it off the pending list. Every admission script
 * answers 1 or 0 (admitted or not) first, which the counters count. */
static void give(entry_t *e, int rc, const int64_t *v, size_t n)
{
    if (!e->owed)
        return;
    e->owed = false;
    ar_list_remove(&e->link);
    ar_redis_t *r = e->c->r;
    if (rc == 0) {
        atomic_fetch_add(&r->checks, 1);
        if (n && v[0] == 0)
            atomic_fetch_add(&r->denied, 1);
    } else {
        atomic_fetch_add(&r->unavailable, 1);
    }
    e->cb(e->ud, rc, v, n);
}

static bool inline_arg(const entry_t *e, const char *p)
{
    return p >= e->bytes && p < e->bytes + sizeof(e->bytes);
}

static void entry_free(entry_t *e)
{
    for (int i = 0; i < e->argc; i++) {
        if (!inline_arg(e, e->argv[i]))
            ar_free(e->argv[i]);
    }
    if (e->argv != e->argv_inl) {
        ar_free(e->argv);
        ar_free(e->argvlen);
    }
    ar_free(e);
}

/* Fails every command waiting on c. */
static void fail_pending(ar_redis_conn_t *c)
{
    while (!ar_list_empty(&c->pending)) {
        entry_t *e = ar_container_of(c->pending.next, entry_t, link);
        give(e, AR_EUNAVAIL, NULL, 0);
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
        give(e, AR_EUNAVAIL, NULL, 0);
        entry_free(e);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        !e->retried && (e->owed || !e->cb) && c && c->ctx == ac) {
        /* the script cache was flushed (or a failover): send the script itself, which
         * loads it again */
        e->retried = true;
        for (int i = 0; i < 2; i++) {
            if (!inline_arg(e, e->argv[i]))
                ar_free(e->argv[i]);
        }
        e->argv[0] = ar_xstrdup("EVAL");
        e->argvlen[0] = 4;
        e->argv[1] = ar_xstrdup(ar_redis_scripts[e->script].text);
        e->argvlen[1] = strlen(e->argv[1]);
        if (send_entry(c, e) == REDIS_OK)
            return;
    }
    int64_t v[AR_REDIS_ANSWER_MAX];
    size_t n = 0;
    bool ints = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                reply->elements <= AR_REDIS_ANSWER_MAX;
    for (size_t i = 0; ints && i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER)
            ints = false;
        else
            v[n++] = reply->element[i]->integer;
    }
    if (ints) {
        give(e, 0, v, n);
    } else {
        if (e->owed && reply->type == REDIS_REPLY_ERROR)
            AR_LOG(AR_LOG_WARN, NULL, "redis: %s script failed: %.200s",
                   ar_redis_scripts[e->script].name, reply->str);
        give(e, AR_EUNAVAIL, NULL, 0);
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

static void on_script_loaded(redisAsyncContext *ac, void *rep, void *priv)
{
    ar_redis_conn_t *c = ac->data;
    redisReply *reply = rep;
    size_t id = (size_t)(uintptr_t)priv;
    if (!c || c->ctx != ac || !reply)
        return;
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        AR_LOG(AR_LOG_WARN, NULL, "redis %s:%d: cannot load the %s script: %.200s", c->r->host,
               c->r->port, ar_redis_scripts[id].name,
               reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        return; /* the connect deadline drops it and tries again */
    }
    memcpy(c->sha[id], reply->str, 40);
    c->sha[id][40] = '\0';
    for (size_t i = 0; i < AR_REDIS_SCRIPTS; i++) {
        if (!c->sha[i][0])
            return; /* loads in order: the last one's answer makes it ready */
    }
    c->backoff_ms = BACKOFF_MIN_MS;
    c->epoch++;
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
    for (size_t i = 0; i < AR_REDIS_SCRIPTS; i++) {
        c->sha[i][0] = '\0';
        redisAsyncCommand(ac, on_script_loaded, (void *)(uintptr_t)i, "SCRIPT LOAD %s",
                          ar_redis_scripts[i].text);
    }
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

uint64_t ar_redis_conn_epoch(const ar_redis_conn_t *c)
{
    return c ? c->epoch : 0;
}

bool ar_redis_conn_ready(const ar_redis_conn_t *c)
{
    return c && c->ready && c->ctx;
}

/* ---- script commands ---- */

static void add_arg(entry_t *e, const char *s, size_t len)
{
    if (e->argc == e->cap) {
        e->cap *= 2;
        if (e->argv == e->argv_inl) {
            e->argv = ar_xmalloc((size_t)e->cap * sizeof(*e->argv));
            e->argvlen = ar_xmalloc((size_t)e->cap * sizeof(*e->argvlen));
            memcpy(e->argv, e->argv_inl, sizeof(e->argv_inl));
            memcpy(e->argvlen, e->len_inl, sizeof(e->len_inl));
        } else {
            e->argv = ar_xrealloc(e->argv, (size_t)e->cap * sizeof(*e->argv));
            e->argvlen = ar_xrealloc(e->argvlen, (size_t)e->cap * sizeof(*e->argvlen));
        }
    }
    if (e->bytes_used + len + 1 <= sizeof(e->bytes)) {
        e->argv[e->argc] = e->bytes + e->bytes_used;
        e->bytes_used += len + 1;
    } else {
        e->argv[e->argc] = ar_xmalloc(len + 1);
    }
    memcpy(e->argv[e->argc], s, len);
    e->argv[e->argc][len] = '\0';
    e->argvlen[e->argc] = len;
    e->argc++;
}

ar_redis_cmd_t *ar_redis_cmd_new(ar_redis_conn_t *c, ar_redis_script_id_t script, size_t nkeys)
{
    if (!ar_redis_conn_ready(c) || script >= AR_REDIS_SCRIPTS)
        return NULL;
    entry_t *e = ar_xmalloc(sizeof(*e));
    /* the inline arrays and bytes are written before they are read: not zeroed */
    memset(e, 0, offsetof(entry_t, argv_inl));
    e->c = c;
    e->script = script;
    e->argv = e->argv_inl;
    e->argvlen = e->len_inl;
    e->cap = INLINE_ARGS;
    add_arg(e, "EVALSHA", 7);
    add_arg(e, c->sha[script], 40);
    ar_redis_cmd_int(e, (int64_t)nkeys);
    return e;
}

void *ar_redis_cmd_scratch(ar_redis_cmd_t *cmd)
{
    return cmd->scratch;
}

void ar_redis_cmd_str(ar_redis_cmd_t *e, const char *s)
{
    add_arg(e, s, strlen(s));
}

void ar_redis_cmd_int(ar_redis_cmd_t *e, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    if (v < 0)
        tmp[n++] = '-';
    n += ar_u64_dec(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, tmp + n);
    add_arg(e, tmp, n);
}

void ar_redis_cmd_real(ar_redis_cmd_t *e, double v)
{
    char tmp[40];
    int n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    add_arg(e, tmp, (size_t)n);
}

int ar_redis_cmd_send(ar_redis_cmd_t *e, ar_redis_answer_cb cb, void *ud)
{
    ar_redis_conn_t *c = e->c;
    e->cb = cb;
    e->ud = ud;
    if (!ar_redis_conn_ready(c) || send_entry(c, e) != REDIS_OK) {
        entry_free(e);
        return AR_EUNAVAIL;
    }
    if (!cb)
        return 0; /* nothing is owed: on_reply only frees it, after a NOSCRIPT retry */
    e->owed = true;
    e->deadline_ms = now_ms(c) + AR_REDIS_TIMEOUT_MS;
    ar_list_insert_tail(&c->pending, &e->link);
    arm_deadline(c);
    return 0;
}

void ar_redis_member(const ar_redis_conn_t *c, char out[AR_REDIS_MEMBER_MAX])
{
    snprintf(out, AR_REDIS_MEMBER_MAX, "%016llx:%llu", (unsigned long long)c->r->instance,
             (unsigned long long)atomic_fetch_add(&c->r->seq, 1));
}

void ar_redis_cmd_plain(ar_redis_conn_t *c, const char *const *argv, size_t argc)
{
    if (!ar_redis_conn_ready(c) || argc > 8)
        return;
    size_t lens[8];
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    /* no callback: hiredis drops the answer */
    redisAsyncCommandArgv(c->ctx, NULL, NULL, (int)argc, (const char **)argv, lens);
}
