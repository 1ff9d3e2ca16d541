/*
 * sse.h: Server-Sent Events framing, both ways. The parser turns a byte stream that
 * arrives in arbitrary pieces into whole events; an event that lies entirely inside one
 * fed piece is reported in place, without copying, and only an event split across pieces
 * is assembled in the parser's own buffer (capped). The writer helpers frame events.
 */
#ifndef AR_CORE_SSE_H
#define AR_CORE_SSE_H

#include <stdbool.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/span.h"

typedef struct ar_sse_event {
    ar_span_t event; /* the `event:` field, empty when absent */
    ar_span_t data;  /* `data:` lines joined by "\n" */
    ar_span_t id;
    ar_span_t raw; /* the whole event as received, blank line included */
} ar_sse_event_t;

/**
 * Called once per complete event; the spans are valid only during the call.
 * @return 0 to go on, or a negative AR_E* to stop parsing (returned by ar_sse_feed).
 */
typedef int (*ar_sse_event_cb)(void *ud, const ar_sse_event_t *ev);

typedef struct ar_sse_parser {
    ar_buf_t carry;   /* an incomplete event waiting for more bytes (max + 1: see sse.c) */
    ar_buf_t scratch; /* joined multi-line data */
    size_t max;       /* the largest event accepted, in bytes */
} ar_sse_parser_t;

/** @param max_event_bytes the largest event accepted (larger: AR_ETOOBIG). */
void ar_sse_parser_init(ar_sse_parser_t *p, size_t max_event_bytes);
void ar_sse_parser_dispose(ar_sse_parser_t *p);
/**
 * Feeds bytes; calls cb for each event they complete.
 * @return 0, the callback's error, or AR_ETOOBIG when an event outgrows the cap.
 */
int ar_sse_feed(ar_sse_parser_t *p, ar_span_t in, ar_sse_event_cb cb, void *ud) AR_MUST_CHECK;
/**
 * Ends the stream: a final event without its blank line is delivered (as browsers and the
 * OpenAI SDK do). @return as ar_sse_feed.
 */
int ar_sse_finish(ar_sse_parser_t *p, ar_sse_event_cb cb, void *ud) AR_MUST_CHECK;
/** True when bytes of an incomplete event are pending. */
static inline bool ar_sse_pending(const ar_sse_parser_t *p)
{
    return p->carry.len > 0;
}

/** Appends "event: NAME\n" (when name is non-empty) and "data: DATA\n\n". */
int ar_sse_write(ar_buf_t *out, ar_span_t event, ar_span_t data) AR_MUST_CHECK;

#endif
