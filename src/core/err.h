/*
 * err.h: the one error table. Fallible functions return 0 or a negative AR_E* code; the
 * X-macro below gives each code its name, message, the HTTP status a client sees when the
 * code ends a request, the OpenAI error type, and whether a retry elsewhere may help.
 * The SPEC section 4 outcome table (router/outcome.c) reads the upstream rows.
 */
#ifndef AR_CORE_ERR_H
#define AR_CORE_ERR_H

#include <stdbool.h>

#define AR_MUST_CHECK __attribute__((warn_unused_result))

/* X(name, message, http_status, openai_type, retryable) */
#define AR_ERR_MAP(X)                                                                              \
    X(AR_ENOMEM, "out of memory", 500, "server_error", false)                                      \
    X(AR_EINVAL, "invalid argument", 400, "invalid_request_error", false)                          \
    X(AR_EAGAIN, "need more input", 500, "server_error", false)                                    \
    X(AR_ETOOBIG, "too large", 413, "invalid_request_error", false)                                \
    X(AR_EPARSE, "malformed input", 400, "invalid_request_error", false)                           \
    X(AR_ENOTFOUND, "not found", 404, "not_found_error", false)                                    \
    X(AR_EAUTH, "authentication failed", 401, "authentication_error", false)                       \
    X(AR_EPERM, "permission denied", 403, "permission_error", false)                               \
    X(AR_ELIMIT, "rate limit exceeded", 429, "rate_limit_error", false)                            \
    X(AR_EUNAVAIL, "no available deployment", 503, "service_unavailable_error", false)             \
    X(AR_ESHUTDOWN, "server is shutting down", 503, "service_unavailable_error", false)            \
    X(AR_ECANCELED, "canceled", 499, "server_error", false)                                        \
    X(AR_ETIMEDOUT, "upstream timed out", 504, "timeout_error", true)                              \
    X(AR_ECONNTIMEOUT, "upstream connect timed out", 502, "api_connection_error", true)            \
    X(AR_ECONNRESET, "upstream connection reset", 502, "api_connection_error", true)               \
    X(AR_ECONNREFUSED, "upstream connection refused", 502, "api_connection_error", true)           \
    X(AR_EHOSTUNREACH, "upstream host unreachable", 502, "api_connection_error", true)             \
    X(AR_ENETUNREACH, "upstream network unreachable", 502, "api_connection_error", true)           \
    X(AR_EDNS, "upstream name resolution failed", 502, "api_connection_error", true)               \
    X(AR_ETLS, "upstream TLS failure", 502, "api_connection_error", true)                          \
    X(AR_EIO, "I/O error", 502, "api_connection_error", true)                                      \
    X(AR_EUPSTREAM, "upstream protocol error", 502, "api_error", true)                             \
    X(AR_ENOTSUP, "needs an upstream that supports it natively", 400, "invalid_request_error",     \
      false)

enum {
    AR_OK = 0,
#define AR_ERR_ENUM(name, msg, status, type, retry) name##_,
    AR_ERR_MAP(AR_ERR_ENUM)
#undef AR_ERR_ENUM
        AR_ERR_COUNT_
};

/* Codes are negative: AR_ENOMEM == -1, and so on. */
#define AR_ERR_NEG(name, msg, status, type, retry) enum { name = -(name##_) };
AR_ERR_MAP(AR_ERR_NEG)
#undef AR_ERR_NEG

/** The symbolic name ("AR_ETIMEDOUT") of a code; "AR_OK" for 0, "AR_E?" when unknown. */
const char *ar_err_name(int code);
/** A short human message for a code. */
const char *ar_err_message(int code);
/** The HTTP status a client sees when this code ends its request. */
int ar_err_http_status(int code);
/** The OpenAI error `type` for this code. */
const char *ar_err_type(int code);
/** Whether another attempt (elsewhere) may succeed. */
bool ar_err_retryable(int code);

#endif
