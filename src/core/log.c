/*
 * log.c: the logger (see log.h). Callers format into a stack buffer, mask secrets, and
 * append the line to a shared pending buffer under a short mutex; the logger thread swaps
 * buffers and writes them with one write(2) each. Nothing here ever blocks a worker on I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define LINE_MAX_BYTES 16384
#define PENDING_MAX (4u << 20)

_Atomic int ar_log__level = AR_LOG_INFO;
static _Atomic int log_format = AR_LOG_TEXT;

typedef struct secret_set {
    struct secret_set *older; /* kept until shutdown: a reader may still hold it */
    size_t cnt;
    char **val;
    size_t *len;
} secret_set_t;

static _Atomic(secret_set_t *) secrets;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    bool async, running, stop;
    ar_buf_t pending;     /* lines for stderr */
    ar_buf_t pending_err; /* lines for the errors file */
    int err_fd;
    _Atomic uint64_t dropped;
} lg = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .err_fd = -1};

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void *logger_main(void *arg)
{
    (void)arg;
    ar_buf_t out, out_err;
    ar_buf_init(&out, PENDING_MAX);
    ar_buf_init(&out_err, PENDING_MAX);
    pthread_mutex_lock(&lg.mu);
    for (;;) {
        while (!lg.stop && lg.pending.len == 0 && lg.pending_err.len == 0)
            pthread_cond_wait(&lg.cond, &lg.mu);
        ar_buf_t t = lg.pending;
        lg.pending = out;
        out = t;
        t = lg.pending_err;
        lg.pending_err = out_err;
        out_err = t;
        int err_fd = lg.err_fd;
        bool stop = lg.stop;
        pthread_mutex_unlock(&lg.mu);
        write_all(2, out.ptr, out.len);
        if (err_fd >= 0)
            write_all(err_fd, out_err.ptr, out_err.len);
        ar_buf_reset(&out);
        ar_buf_reset(&out_err);
        pthread_mutex_lock(&lg.mu);
        if (stop && lg.pending.len == 0 && lg.pending_err.len == 0)
            break;
    }
    pthread_mutex_unlock(&lg.mu);
    ar_buf_dispose(&out);
    ar_buf_dispose(&out_err);
    return NULL;
}

void ar_log_init(bool async)
{
    ar_buf_init(&lg.pending, PENDING_MAX);
    ar_buf_init(&lg.pending_err, PENDING_MAX);
    lg.async = async;
    lg.stop = false;
    if (async && pthread_create(&lg.thread, NULL, logger_main, NULL) == 0)
        lg.running = true;
    else
        lg.async = false;
}

void ar_log_shutdown(void)
{
    if (lg.running) {
        pthread_mutex_lock(&lg.mu);
        lg.stop = true;
        pthread_cond_signal(&lg.cond);
        pthread_mutex_unlock(&lg.mu);
        pthread_join(lg.thread, NULL);
        lg.running = false;
    }
    lg.async = false;
    ar_buf_dispose(&lg.pending);
    ar_buf_dispose(&lg.pending_err);
    if (lg.err_fd >= 0)
        close(lg.err_fd);
    lg.err_fd = -1;
    secret_set_t *s = atomic_exchange(&secrets, NULL);
    while (s) {
        secret_set_t *older = s->older;
        for (size_t i = 0; i < s->cnt; i++)
            ar_free(s->val[i]);
        ar_free(s->val);
        ar_free(s->len);
        ar_free(s);
        s = older;
    }
}

void ar_log_set_level(ar_log_level_t level)
{
    atomic_store(&ar_log__level, (int)level);
}

void ar_log_set_format(ar_log_format_t format)
{
    atomic_store(&log_format, (int)format);
}

int ar_log_set_error_file(const char *path)
{
    int fd = -1;
    if (path) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            return AR_EIO;
    }
    pthread_mutex_lock(&lg.mu);
    int old = lg.err_fd;
    lg.err_fd = fd;
    pthread_mutex_unlock(&lg.mu);
    if (old >= 0)
        close(old);
    return 0;
}

void ar_log_set_secrets(const char *const *list, size_t cnt)
{
    secret_set_t *s = ar_xcalloc(1, sizeof(*s));
    s->val = ar_xcalloc(cnt ? cnt : 1, sizeof(char *));
    s->len = ar_xcalloc(cnt ? cnt : 1, sizeof(size_t));
    for (size_t i = 0; i < cnt; i++) {
        if (!list[i] || strlen(list[i]) < 6)
            continue;
        s->val[s->cnt] = ar_xstrdup(list[i]);
        s->len[s->cnt] = strlen(list[i]);
        s->cnt++;
    }
    s->older = atomic_load(&secrets);
    while (!atomic_compare_exchange_weak(&secrets, &s->older, s))
        ;
}

char *ar_mask_key(ar_span_t key, char *out, size_t outlen)
{
    if (outlen < 16) {
        if (outlen)
            out[0] = '\0';
        return out;
    }
    if (key.len < 12) {
        memcpy(out, "***", 4);
        return out;
    }
    snprintf(out, outlen, "%.6s...%.3s", key.ptr, key.ptr + key.len - 3);
    return out;
}

/* Replaces every configured secret in line[0..*len) by its masked form. */
static void mask_secrets(char *line, size_t *len, size_t cap)
{
    secret_set_t *s = atomic_load_explicit(&secrets, memory_order_acquire);
    if (!s)
        return;
    for (size_t i = 0; i < s->cnt; i++) {
        char *hit;
        char *from = line;
        while ((hit = memmem(from, (size_t)(line + *len - from), s->val[i], s->len[i]))) {
            char masked[32];
            ar_mask_key(ar_span(s->val[i], s->len[i]), masked, sizeof(masked));
            size_t mlen = strlen(masked);
            size_t tail = (size_t)(line + *len - (hit + s->len[i]));
            if (mlen > s->len[i] && *len + mlen - s->len[i] > cap)
                mlen = s->len[i]; /* no room: keep the length, still hide it */
            memmove(hit + mlen, hit + s->len[i], tail);
            memcpy(hit, masked, mlen);
            *len = *len - s->len[i] + mlen;
            from = hit + mlen;
        }
    }
}

static void emit(ar_log_level_t level, char *line, size_t len)
{
    if (!lg.async) {
        write_all(2, line, len);
        if (level >= AR_LOG_ERROR && lg.err_fd >= 0)
            write_all(lg.err_fd, line, len);
        return;
    }
    pthread_mutex_lock(&lg.mu);
    bool was_empty = lg.pending.len == 0 && lg.pending_err.len == 0;
    if (ar_buf_append(&lg.pending, line, len) != 0)
        atomic_fetch_add(&lg.dropped, 1);
    if (level >= AR_LOG_ERROR && lg.err_fd >= 0 && ar_buf_append(&lg.pending_err, line, len))
        atomic_fetch_add(&lg.dropped, 1);
    if (was_empty)
        pthread_cond_signal(&lg.cond);
    pthread_mutex_unlock(&lg.mu);
}

static const char *level_name(ar_log_level_t l)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    return names[l <= AR_LOG_OFF ? l : AR_LOG_OFF];
}

static size_t timestamp(char *out, size_t cap)
{
    int64_t ms = ar_wall_ms();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
    return n;
}

/* A tiny appender over a fixed line buffer: writes what fits, never overflows. */
typedef struct {
    char *p;
    size_t len, cap;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    if (n > l->cap - l->len)
        n = l->cap - l->len;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void puts_(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}

static void put_json_str(line_t *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(l, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(l, e, 6);
        } else {
            put(l, (const char *)&s[i], 1);
        }
    }
    put(l, "\"", 1);
}

static void put_json_field(line_t *l, const char *key, const char *val)
{
    if (!val)
        return;
    put(l, ",\"", 2);
    puts_(l, key);
    put(l, "\":", 2);
    put_json_str(l, val, strlen(val));
}

static void finish(ar_log_level_t level, line_t *l)
{
    if (l->len == l->cap)
        l->len--; /* make room for the newline */
    size_t len = l->len;
    mask_secrets(l->p, &len, l->cap);
    l->p[len++] = '\n';
    emit(level, l->p, len);
}

void ar_log_write(ar_log_level_t level, const ar_log_ctx_t *ctx, const char *fmt, ...)
{
    char msg[LINE_MAX_BYTES / 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mlen = n < 0 ? 0 : ((size_t)n >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)n);

    char buf[LINE_MAX_BYTES];
    line_t l = {buf, 0, sizeof(buf) - 1};
    char ts[40];
    size_t tlen = timestamp(ts, sizeof(ts));
    if (atomic_load_explicit(&log_format, memory_order_relaxed) == AR_LOG_JSON) {
        put(&l, "{\"time\":\"", 9);
        put(&l, ts, tlen);
        put(&l, "\",\"level\":\"", 11);
        puts_(&l, level_name(level));
        put(&l, "\",\"msg\":", 8);
        put_json_str(&l, msg, mlen);
        if (ctx) {
            put_json_field(&l, "request_id", ctx->request_id);
            put_json_field(&l, "credential", ctx->credential);
            put_json_field(&l, "model", ctx->model);
            put_json_field(&l, "action", ctx->action);
        }
        put(&l, "}", 1);
    } else {
        put(&l, ts, tlen);
        put(&l, " ", 1);
        puts_(&l, level_name(level));
        put(&l, " ", 1);
        if (ctx && ctx->request_id) {
            put(&l, "[", 1);
            puts_(&l, ctx->request_id);
            put(&l, "] ", 2);
        }
        if (ctx && ctx->action) {
            puts_(&l, ctx->action);
            put(&l, ": ", 2);
        }
        put(&l, msg, mlen);
        if (ctx && ctx->credential) {
            put(&l, " credential=", 12);
            puts_(&l, ctx->credential);
        }
        if (ctx && ctx->model) {
            put(&l, " model=", 7);
            puts_(&l, ctx->model);
        }
    }
    finish(level, &l);
}

void ar_log_access(const ar_access_log_t *r)
{
    if (!ar_log_enabled(AR_LOG_INFO))
        return;
    char buf[LINE_MAX_BYTES];
    line_t l = {buf, 0, sizeof(buf) - 1};
    char ts[40], num[160];
    size_t tlen = timestamp(ts, sizeof(ts));
    const char *model = r->model ? r->model : "-";
    const char *cred = r->credential ? r->credential : "-";
    if (atomic_load_explicit(&log_format, memory_order_relaxed) == AR_LOG_JSON) {
        put(&l, "{\"time\":\"", 9);
        put(&l, ts, tlen);
        puts_(&l, "\",\"level\":\"info\",\"msg\":\"request\"");
        put_json_field(&l, "method", r->method);
        put(&l, ",\"path\":", 8);
        put_json_str(&l, r->path.ptr, r->path.len);
        int n =
            snprintf(num, sizeof(num),
                     ",\"status\":%d,\"attempts\":%d,\"latency_ms\":%.3f,\"prompt_tokens\":%lld,"
                     "\"completion_tokens\":%lld,\"stream\":%s",
                     r->status, r->attempts, r->latency_ms, (long long)r->prompt_tokens,
                     (long long)r->completion_tokens, r->stream ? "true" : "false");
        put(&l, num, (size_t)n);
        put_json_field(&l, "model", r->model);
        put_json_field(&l, "credential", r->credential);
        put_json_field(&l, "client", r->client);
        put_json_field(&l, "request_id", r->request_id);
        put(&l, "}", 1);
    } else {
        put(&l, ts, tlen);
        put(&l, " info request method=", 21);
        puts_(&l, r->method ? r->method : "-");
        put(&l, " path=", 6);
        put(&l, r->path.ptr, r->path.len);
        int n = snprintf(num, sizeof(num), " status=%d model=", r->status);
        put(&l, num, (size_t)n);
        puts_(&l, model);
        put(&l, " credential=", 12);
        puts_(&l, cred);
        n = snprintf(num, sizeof(num),
                     " attempts=%d latency_ms=%.3f prompt_tokens=%lld completion_tokens=%lld "
                     "stream=%s client=",
                     r->attempts, r->latency_ms, (long long)r->prompt_tokens,
                     (long long)r->completion_tokens, r->stream ? "true" : "false");
        put(&l, num, (size_t)n);
        puts_(&l, r->client ? r->client : "-");
        put(&l, " request_id=", 12);
        puts_(&l, r->request_id ? r->request_id : "-");
    }
    finish(AR_LOG_INFO, &l);
}

uint64_t ar_log_dropped(void)
{
    return atomic_load(&lg.dropped);
}

int ar_log_level_parse(const char *s, ar_log_level_t *out)
{
    static const struct {
        const char *name;
        ar_log_level_t level;
    } names[] = {{"debug", AR_LOG_DEBUG},  {"info", AR_LOG_INFO},   {"warn", AR_LOG_WARN},
                 {"warning", AR_LOG_WARN}, {"error", AR_LOG_ERROR}, {"off", AR_LOG_OFF}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return AR_EINVAL;
}
