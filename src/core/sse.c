/*
 * sse.c: SSE framing (see sse.h). Lines end in "\n", "\r\n" or "\r"; a blank line ends an
 * event; lines starting with ':' are comments; unknown fields are ignored, as the
 * WHATWG EventSource rules say.
 */
#include <stdint.h>
#include <string.h>

#include "core/sse.h"

void ar_sse_parser_init(ar_sse_parser_t *p, size_t max_event_bytes)
{
    /* One byte more than an event may have: an event of exactly the cap whose blank line is
     * a lone "\r" is only known to be complete when the byte after it shows that no "\n"
     * follows, and that byte must fit too. */
    p->max = max_event_bytes < SIZE_MAX ? max_event_bytes : SIZE_MAX - 1;
    ar_buf_init(&p->carry, p->max + 1);
    ar_buf_init(&p->scratch, p->max);
}

void ar_sse_parser_dispose(ar_sse_parser_t *p)
{
    ar_buf_dispose(&p->carry);
    ar_buf_dispose(&p->scratch);
}

/* Finds the end of the line starting at s. Sets *eol_len to the terminator's length.
 * @return the terminator's position, or NULL when no complete line is there yet (a lone
 * '\r' at the very end may still be followed by '\n', so it waits unless final). */
static const char *line_end(const char *s, const char *end, size_t *eol_len, bool final)
{
    /* memchr is vectorised: two passes over a line beat one byte-by-byte loop */
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *cr = memchr(s, '\r', (size_t)((nl ? nl : end) - s));
    if (!cr) {
        *eol_len = 1;
        return nl;
    }
    if (cr + 1 < end) {
        *eol_len = cr[1] == '\n' ? 2 : 1;
        return cr;
    }
    if (final) {
        *eol_len = 1;
        return cr;
    }
    return NULL;
}

/* Parses the event in [s, end) that is known to be complete and delivers it. */
static int deliver(ar_sse_parser_t *p, const char *s, const char *end, ar_sse_event_cb cb, void *ud)
{
    ar_sse_event_t ev = {AR_SPAN_NULL, AR_SPAN_NULL, AR_SPAN_NULL, ar_span(s, (size_t)(end - s))};
    int data_lines = 0;
    /* An event found whole inside one fed piece never passed through the capped carry
     * buffer; check it here so the cap does not depend on how the bytes were split. */
    if (ev.raw.len > p->max)
        return AR_ETOOBIG;
    ar_buf_reset(&p->scratch);
    const char *q = s;
    while (q < end) {
        size_t eol = 0;
        const char *le = line_end(q, end, &eol, true);
        if (!le)
            le = end;
        ar_span_t line = ar_span(q, (size_t)(le - q));
        q = le + eol;
        if (line.len == 0 || line.ptr[0] == ':')
            continue;
        const char *colon = memchr(line.ptr, ':', line.len);
        ar_span_t name = colon ? ar_span(line.ptr, (size_t)(colon - line.ptr)) : line;
        ar_span_t value = AR_SPAN_NULL;
        if (colon) {
            value = ar_span(colon + 1, line.len - name.len - 1);
            if (value.len && value.ptr[0] == ' ')
                value = ar_span_skip(value, 1);
        }
        if (ar_span_eq(name, AR_LIT("data"))) {
            if (data_lines == 0) {
                ev.data = value;
            } else {
                if (data_lines == 1) {
                    int rc = ar_buf_append_span(&p->scratch, ev.data);
                    if (rc)
                        return rc;
                }
                int rc = ar_buf_append(&p->scratch, "\n", 1);
                if (!rc)
                    rc = ar_buf_append_span(&p->scratch, value);
                if (rc)
                    return rc;
                ev.data = ar_buf_span(&p->scratch);
            }
            data_lines++;
        } else if (ar_span_eq(name, AR_LIT("event"))) {
            ev.event = value;
        } else if (ar_span_eq(name, AR_LIT("id"))) {
            ev.id = value;
        }
    }
    if (data_lines == 0 && ev.event.len == 0)
        return 0; /* comments or keep-alives only */
    return cb(ud, &ev);
}

/* Scans [s, end) for complete events, delivering each; returns where the incomplete
 * remainder starts (or end). */
static int scan(ar_sse_parser_t *p, const char *s, const char *end, bool final, ar_sse_event_cb cb,
                void *ud, const char **rest)
{
    const char *ev_start = s;
    const char *q = s;
    int lines = 0;
    bool plain = true; /* every line of this event so far ended in a bare "\n" */
    while (q < end) {
        size_t eol = 0;
        const char *le = line_end(q, end, &eol, final);
        if (!le)
            break;
        bool blank = le == q;
        plain = plain && eol == 1 && *le == '\n';
        lines++;
        q = le + eol;
        if (!blank)
            continue;
        int rc;
        const char *data_line = ev_start;
        ar_span_t name = AR_SPAN_NULL;
        if (plain && lines == 3 && q - ev_start > 13 && memcmp(ev_start, "event:", 6) == 0) {
            /* "event: NAME\ndata: ...\n\n" (Anthropic): the name, then the data line */
            const char *nl = memchr(ev_start, '\n', (size_t)(q - ev_start));
            const char *n0 = ev_start + 6;
            if (*n0 == ' ')
                n0++;
            name = ar_span(n0, (size_t)(nl - n0));
            data_line = nl + 1;
        }
        if (plain && (lines == 2 || (lines == 3 && name.ptr)) && q - data_line > 7 &&
            memcmp(data_line, "data:", 5) == 0 && (size_t)(q - ev_start) <= p->max) {
            /* the shape of nearly every event: one data line; no need to read it again */
            const char *v = data_line + 5;
            if (*v == ' ')
                v++;
            ar_sse_event_t ev = {name, ar_span(v, (size_t)(q - 2 - v)), AR_SPAN_NULL,
                                 ar_span(ev_start, (size_t)(q - ev_start))};
            rc = cb(ud, &ev);
        } else {
            rc = deliver(p, ev_start, q, cb, ud);
        }
        if (rc)
            return rc;
        ev_start = q;
        lines = 0;
        plain = true;
    }
    *rest = ev_start;
    return 0;
}

int ar_sse_feed(ar_sse_parser_t *p, ar_span_t in, ar_sse_event_cb cb, void *ud)
{
    const char *rest;
    while (in.len) {
        if (p->carry.len == 0) {
            int rc = scan(p, in.ptr, in.ptr + in.len, false, cb, ud, &rest);
            if (rc)
                return rc;
            size_t left = (size_t)(in.ptr + in.len - rest);
            return left ? ar_buf_append(&p->carry, rest, left) : 0;
        }
        /* Top the carry up only as far as the cap allows: the bytes that complete the
         * pending event may be followed by further events, which must not count against
         * it. A carry that is full (the cap plus the one byte that can end a trailing
         * "\r") and still holds no complete event is over the cap. */
        size_t room = p->carry.max - p->carry.len;
        if (room == 0)
            return AR_ETOOBIG;
        size_t n = in.len < room ? in.len : room;
        int rc = ar_buf_append(&p->carry, in.ptr, n);
        if (rc)
            return rc;
        in = ar_span_skip(in, n);
        rc = scan(p, p->carry.ptr, p->carry.ptr + p->carry.len, false, cb, ud, &rest);
        if (rc)
            return rc;
        ar_buf_consume(&p->carry, (size_t)(rest - p->carry.ptr));
    }
    return 0;
}

int ar_sse_finish(ar_sse_parser_t *p, ar_sse_event_cb cb, void *ud)
{
    if (p->carry.len == 0)
        return 0;
    const char *rest;
    int rc = scan(p, p->carry.ptr, p->carry.ptr + p->carry.len, true, cb, ud, &rest);
    if (rc == 0 && rest < p->carry.ptr + p->carry.len)
        rc = deliver(p, rest, p->carry.ptr + p->carry.len, cb, ud);
    ar_buf_reset(&p->carry);
    return rc;
}

int ar_sse_write(ar_buf_t *out, ar_span_t event, ar_span_t data)
{
    int rc = 0;
    if (event.len) {
        rc = ar_buf_append(out, "event: ", 7);
        if (!rc)
            rc = ar_buf_append_span(out, event);
        if (!rc)
            rc = ar_buf_append(out, "\n", 1);
    }
    /* A payload with line breaks ("\n", "\r\n" or a lone "\r", as readers see them)
     * becomes several data lines, so it survives framing. */
    const char *s = data.ptr;
    const char *end = data.ptr + data.len;
    for (;;) {
        const char *le = s;
        while (le < end && *le != '\n' && *le != '\r')
            le++;
        if (!rc)
            rc = ar_buf_append(out, "data: ", 6);
        if (!rc)
            rc = ar_buf_append(out, s, (size_t)(le - s));
        if (!rc)
            rc = ar_buf_append(out, "\n", 1);
        if (le == end)
            break;
        /* a break at the very end still starts an (empty) last line */
        s = le + (*le == '\r' && le + 1 < end && le[1] == '\n' ? 2 : 1);
    }
    if (!rc)
        rc = ar_buf_append(out, "\n", 1);
    return rc;
}
