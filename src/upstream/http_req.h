/*
 * http_req.h: the plain description of one upstream HTTP request. Providers fill it
 * (they never see curl or libuv); the upstream client sends it. All strings are borrowed
 * from the request pool and must stay valid until the transfer is done or cancelled.
 */
#ifndef AR_UPSTREAM_HTTP_REQ_H
#define AR_UPSTREAM_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/span.h"

#define AR_HTTP_REQ_MAX_HEADERS 24

typedef struct ar_http_req {
    const char *method; /* "POST", "GET" */
    const char *url;    /* absolute, NUL-terminated */
    /* complete header lines, "Name: value", NUL-terminated */
    const char *headers[AR_HTTP_REQ_MAX_HEADERS];
    size_t headers_cnt;
    ar_span_t body;
} ar_http_req_t;

/** Adds a header line; extra lines beyond the maximum are dropped. @return 0 or AR_ETOOBIG. */
static inline int ar_http_req_add_header(ar_http_req_t *r, const char *line)
{
    if (r->headers_cnt >= AR_HTTP_REQ_MAX_HEADERS)
        return AR_ETOOBIG;
    r->headers[r->headers_cnt++] = line;
    return 0;
}

#endif
