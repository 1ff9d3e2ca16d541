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
#include "core/redact.h"
#include "core/str.h"

#define LINE_MAX_BYTES 16384
#define PENDING_MAX (4u << 20)

_Atomic int ar_log__level = AR_LOG_INFO;
static _Atomic int log_format = AR_LOG_TEXT;

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
    pthread_setname_np(pthread_self(), "ar-log");
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
    ar_redact_shutdown(); /* the logger was the last reader of the secrets */
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

/* Appends an escape sequence whole or not at all: a line cut at its end must not end in
 * half an escape. */
static void put_whole(line_t *l, const char *s, size_t n)
{
    if (n <= l->cap - l->len)
        put(l, s, n);
    else
        l->len = l->cap;
}

/*
 * Appends s[0..n), escaped so that whatever it holds (client strings: model names, paths)
 * can neither forge a line nor break its format. JSON: quotes, backslashes and control
 * characters as JSON escapes, invalid UTF-8 as U+FFFD. Text: control characters, DEL,
 * backslashes and invalid UTF-8 as \n \r \t \\ \xNN; with quote, '"' as \" too.
 */
static void put_escaped(line_t *l, const char *s, size_t n, bool json, bool quote)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* bytes copied as they are, written in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t seq = 1;
        bool plain = c >= 0x20 && c != 0x7f && c != '\\' && !(c == '"' && (json || quote));
        if (c >= 0x80) {
            seq = ar_utf8_seq_len(s + i, n - i);
            plain = seq != 0;
        }
        if (plain) {
            run += seq;
            i += seq - 1;
            continue;
        }
        put(l, s + i - run, run);
        run = 0;
        char e[8];
        size_t elen = 2;
        e[0] = '\\';
        switch (c) {
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\\': e[1] = '\\'; break;
        case '"': e[1] = '"'; break;
        default:
            if (json && c >= 0x80) {
                memcpy(e, "\\ufffd", 6);
                elen = 6;
            } else if (json) {
                memcpy(e, "\\u00", 4);
                e[4] = hex[c >> 4];
                e[5] = hex[c & 15];
                elen = 6;
            } else {
                e[1] = 'x';
                e[2] = hex[c >> 4];
                e[3] = hex[c & 15];
                elen = 4;
            }
        }
        put_whole(l, e, elen);
    }
    put(l, s + n - run, run);
}

static void put_json_str(line_t *l, const char *s, size_t n)
{
    put(l, "\"", 1);
    put_escaped(l, s, n, true, false);
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

/* A text-format value (logfmt): as it is when it is one plain word, else quoted and
 * escaped, so that `model=a credential=x` inside a value cannot pose as two fields. */
static void put_text_value(line_t *l, const char *v, size_t n)
{
    if (n == 0) {
        put(l, "-", 1);
        return;
    }
    bool bare = true;
    for (size_t i = 0; i < n && bare; i++) {
        unsigned char c = (unsigned char)v[i];
        bare = c > 0x20 && c < 0x7f && c != '"' && c != '=' && c != '\\';
    }
    if (bare) {
        put(l, v, n);
        return;
    }
    put(l, "\"", 1);
    put_escaped(l, v, n, false, true);
    put(l, "\"", 1);
}

static void put_text_field(line_t *l, const char *key, const char *val)
{
    puts_(l, key);
    put_text_value(l, val ? val : "-", val ? strlen(val) : 1);
}

static void finish(ar_log_level_t level, line_t *l)
{
    if (l->len == l->cap)
        l->len--; /* make room for the newline */
    size_t len = l->len;
    ar_redact(l->p, &len);
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
    size_t mlen = n < 0 ? 0 : (size_t)n;
    if (mlen >= sizeof(msg)) {
        /* cut well before the end: a secret straddling the cut would escape masking */
        static const char cut[] = "...(cut)";
        mlen = sizeof(msg) - 1 - 64;
        memcpy(msg + mlen, cut, sizeof(cut) - 1);
        mlen += sizeof(cut) - 1;
    }
    /* masked before escaping: escaped client bytes can make the line longer than its cap,
     * and a secret cut at the end of the line would escape the mask in finish() */
    ar_redact(msg, &mlen);

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
            put_escaped(&l, ctx->request_id, strlen(ctx->request_id), false, false);
            put(&l, "] ", 2);
        }
        if (ctx && ctx->action) {
            puts_(&l, ctx->action);
            put(&l, ": ", 2);
        }
        put_escaped(&l, msg, mlen, false, false);
        if (ctx && ctx->credential)
            put_text_field(&l, " credential=", ctx->credential);
        if (ctx && ctx->model)
            put_text_field(&l, " model=", ctx->model);
    }
    finish(level, &l);
}

/*
 * The access line's reason, masked and then cut to AR_LOG_REASON_MAX bytes without
 * splitting a UTF-8 sequence; "..." marks a cut. Masked before the cut: a secret cut in two
 * would escape the mask. @return its length in out (0: no reason).
 */
static size_t reason_of(const char *reason, char *out, size_t cap)
{
    if (!reason)
        return 0;
    /* far past the cut: a secret straddling cap cannot reach back before it */
    size_t n = strnlen(reason, cap);
    memcpy(out, reason, n);
    ar_redact(out, &n);
    if (n <= AR_LOG_REASON_MAX)
        return n;
    size_t keep = 0;
    while (keep < AR_LOG_REASON_MAX - 3) {
        size_t seq = (unsigned char)out[keep] < 0x80 ? 1 : ar_utf8_seq_len(out + keep, n - keep);
        if (seq == 0)
            seq = 1; /* an invalid byte is escaped on its own */
        if (keep + seq > AR_LOG_REASON_MAX - 3)
            break;
        keep += seq;
    }
    memcpy(out + keep, "...", 3);
    return keep + 3;
}

void ar_log_access(const ar_access_log_t *r)
{
    if (!ar_log_enabled(AR_LOG_INFO))
        return;
    char reason[1024];
    size_t reason_len = reason_of(r->reason, reason, sizeof(reason));
    char buf[LINE_MAX_BYTES];
    line_t l = {buf, 0, sizeof(buf) - 1};
    char ts[40], num[160];
    size_t tlen = timestamp(ts, sizeof(ts));
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
        if (reason_len) {
            put(&l, ",\"reason\":", 10);
            put_json_str(&l, reason, reason_len);
        }
        put_json_field(&l, "model", r->model);
        put_json_field(&l, "credential", r->credential);
        put_json_field(&l, "client", r->client);
        put_json_field(&l, "request_id", r->request_id);
        put(&l, "}", 1);
    } else {
        put(&l, ts, tlen);
        put(&l, " info request", 13);
        put_text_field(&l, " method=", r->method);
        put(&l, " path=", 6);
        put_text_value(&l, r->path.ptr, r->path.len);
        int n = snprintf(num, sizeof(num), " status=%d", r->status);
        put(&l, num, (size_t)n);
        if (reason_len) {
            /* always quoted: a reason is a phrase, and reads as one */
            put(&l, " reason=\"", 9);
            put_escaped(&l, reason, reason_len, false, true);
            put(&l, "\"", 1);
        }
        put_text_field(&l, " model=", r->model);
        put_text_field(&l, " credential=", r->credential);
        n = snprintf(num, sizeof(num),
                     " attempts=%d latency_ms=%.3f prompt_tokens=%lld completion_tokens=%lld "
                     "stream=%s",
                     r->attempts, r->latency_ms, (long long)r->prompt_tokens,
                     (long long)r->completion_tokens, r->stream ? "true" : "false");
        put(&l, num, (size_t)n);
        put_text_field(&l, " client=", r->client);
        put_text_field(&l, " request_id=", r->request_id);
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
