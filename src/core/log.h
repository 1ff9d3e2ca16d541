/*
 * log.h: leveled logging for the whole process. AR_LOG checks the level before it
 * evaluates its arguments, so a disabled call costs one branch. Lines are formatted on the
 * calling thread and written by one logger thread, so a worker never blocks on a slow
 * stderr or disk (lines are dropped, and counted, if the logger falls 4 MiB behind).
 * Secrets (core/redact.h) are masked inside the formatter, and client strings are escaped:
 * call sites never need to do either.
 */
#ifndef AR_CORE_LOG_H
#define AR_CORE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/redact.h"
#include "core/span.h"

typedef enum ar_log_level {
    AR_LOG_DEBUG = 0,
    AR_LOG_INFO = 1,
    AR_LOG_WARN = 2,
    AR_LOG_ERROR = 3,
    AR_LOG_OFF = 4
} ar_log_level_t;

typedef enum ar_log_format { AR_LOG_TEXT = 0, AR_LOG_JSON = 1 } ar_log_format_t;

/** Context that gives a line its meaning; every field may be NULL. Borrowed. */
typedef struct ar_log_ctx {
    const char *request_id;
    const char *credential;
    const char *model;
    const char *action; /* what we were doing, e.g. "reading upstream stream" */
} ar_log_ctx_t;

/** One line per finished request (SPEC section 8). Borrowed for the duration of the call. */
typedef struct ar_access_log {
    const char *method;
    ar_span_t path;
    int status;
    const char *model;
    const char *credential;
    int attempts;
    double latency_ms;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    const char *client;
    const char *request_id;
    bool stream;
    /* why the gateway answered an error itself (NULL: no field); client-influenced, so it is
     * masked, cut to AR_LOG_REASON_MAX bytes and escaped like every other field */
    const char *reason;
} ar_access_log_t;

/** The longest `reason` an access line carries, in bytes (cut at a character boundary). */
#define AR_LOG_REASON_MAX 200

extern _Atomic int ar_log__level;

static inline bool ar_log_enabled(ar_log_level_t level)
{
    return (int)level >= atomic_load_explicit(&ar_log__level, memory_order_relaxed);
}

#define AR_LOG(level, ctx, ...)                                                                    \
    do {                                                                                           \
        if (ar_log_enabled(level))                                                                 \
            ar_log_write((level), (ctx), __VA_ARGS__);                                             \
    } while (0)

#ifdef NDEBUG_LOG
#define AR_DEBUG(ctx, ...) ((void)0)
#else
#define AR_DEBUG(ctx, ...) AR_LOG(AR_LOG_DEBUG, ctx, __VA_ARGS__)
#endif

/**
 * Starts the logger. With async, a logger thread does the writes; without, the calling
 * thread writes (tests, CLI commands). Lines go to fd 2. Call once from the main thread.
 */
void ar_log_init(bool async);
/** Drains pending lines, stops the logger thread and frees everything. Main thread only. */
void ar_log_shutdown(void);
void ar_log_set_level(ar_log_level_t level);
void ar_log_set_format(ar_log_format_t format);
/**
 * Also appends lines at level >= error to path (NULL: stop). @return 0 or a negative
 * AR_E* when the file cannot be opened (the previous setting stays).
 */
int ar_log_set_error_file(const char *path);
/** Formats and queues one line. Use AR_LOG instead, which checks the level first. */
void ar_log_write(ar_log_level_t level, const ar_log_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Queues the access line of a finished request, at info level. */
void ar_log_access(const ar_access_log_t *rec);
/** Lines dropped because the logger was behind. */
uint64_t ar_log_dropped(void);
/** Parses "debug|info|warn|error" (any case). @return 0 or AR_EINVAL. */
int ar_log_level_parse(const char *s, ar_log_level_t *out);

#endif
