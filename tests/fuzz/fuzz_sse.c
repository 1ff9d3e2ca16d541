/*
 * fuzz_sse.c: libFuzzer target for the SSE parser (core/sse.c). The input after two option
 * bytes is a stream; it is parsed whole, then again fed in pieces at offsets drawn from the
 * input, and both runs are compared with each other and with a slow reference parser
 * written from the rules in sse.h (lines end in \n, \r\n or \r; a blank line ends an event;
 * ':' starts a comment; data lines join with \n; a final event without its blank line is
 * delivered by finish). Option byte 0 picks the event cap (small caps exercise the
 * AR_ETOOBIG paths), byte 1 the piece sizes. ar_sse_write's framing is checked to parse
 * back to what was written.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

typedef struct rec_ev {
    ar_span_t event, data, id, raw; /* malloc'd copies */
} rec_ev_t;

typedef struct rec {
    rec_ev_t *ev;
    size_t cnt, alloc;
    size_t cap; /* the parser's max_event_bytes */
} rec_t;

static char *dup(ar_span_t s)
{
    char *p = malloc(s.len + 1);
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

static void rec_add(rec_t *r, ar_span_t event, ar_span_t data, ar_span_t id, ar_span_t raw)
{
    if (r->cnt == r->alloc) {
        r->alloc = r->alloc ? r->alloc * 2 : 16;
        r->ev = realloc(r->ev, r->alloc * sizeof(*r->ev));
    }
    rec_ev_t *e = &r->ev[r->cnt++];
    e->event = ar_span(dup(event), event.len);
    e->data = ar_span(dup(data), data.len);
    e->id = ar_span(dup(id), id.len);
    e->raw = ar_span(dup(raw), raw.len);
}

static void rec_free(rec_t *r)
{
    for (size_t i = 0; i < r->cnt; i++) {
        free((char *)r->ev[i].event.ptr);
        free((char *)r->ev[i].data.ptr);
        free((char *)r->ev[i].id.ptr);
        free((char *)r->ev[i].raw.ptr);
    }
    free(r->ev);
    r->ev = NULL;
    r->cnt = r->alloc = 0;
}

static int on_event(void *ud, const ar_sse_event_t *ev)
{
    rec_t *r = ud;
    if (ev->raw.len > r->cap)
        fz_fail("an event of %zu bytes was delivered with a cap of %zu", ev->raw.len, r->cap);
    if (ev->data.len > ev->raw.len || ev->event.len > ev->raw.len || ev->id.len > ev->raw.len)
        fz_fail("an event's field is longer than the event");
    rec_add(r, ev->event, ev->data, ev->id, ev->raw);
    return 0;
}

/* ---- the reference ---- */

typedef struct ref {
    ar_buf_t data;
    ar_span_t event, id;
    int data_lines;
    size_t start; /* offset of the event's first byte */
} ref_t;

static void ref_line(ref_t *st, ar_span_t line)
{
    if (line.len == 0 || line.ptr[0] == ':')
        return;
    const char *colon = memchr(line.ptr, ':', line.len);
    ar_span_t name = colon ? ar_span(line.ptr, (size_t)(colon - line.ptr)) : line;
    ar_span_t value = AR_SPAN_NULL;
    if (colon) {
        value = ar_span(colon + 1, line.len - name.len - 1);
        if (value.len && value.ptr[0] == ' ')
            value = ar_span_skip(value, 1);
    }
    if (ar_span_eq(name, AR_LIT("data"))) {
        if (st->data_lines++)
            (void)ar_buf_append(&st->data, "\n", 1);
        (void)ar_buf_append_span(&st->data, value);
    } else if (ar_span_eq(name, AR_LIT("event"))) {
        st->event = value;
    } else if (ar_span_eq(name, AR_LIT("id"))) {
        st->id = value;
    }
}

static void ref_dispatch(ref_t *st, ar_span_t text, size_t end, rec_t *out)
{
    if (st->data_lines || st->event.len)
        rec_add(out, st->event, ar_buf_span(&st->data), st->id,
                ar_span(text.ptr + st->start, end - st->start));
    ar_buf_reset(&st->data);
    st->event = st->id = AR_SPAN_NULL;
    st->data_lines = 0;
    st->start = end;
}

static void ref_parse(ar_span_t text, rec_t *out)
{
    ref_t st = {{0}, AR_SPAN_NULL, AR_SPAN_NULL, 0, 0};
    ar_buf_init(&st.data, SIZE_MAX / 2);
    size_t i = 0;
    bool pending = false; /* lines since the last dispatch */
    while (i < text.len) {
        size_t j = i;
        while (j < text.len && text.ptr[j] != '\n' && text.ptr[j] != '\r')
            j++;
        ar_span_t line = ar_span(text.ptr + i, j - i);
        size_t next = j;
        if (j < text.len)
            next = j + (text.ptr[j] == '\r' && j + 1 < text.len && text.ptr[j + 1] == '\n' ? 2 : 1);
        if (line.len == 0 && j < text.len) {
            ref_dispatch(&st, text, next, out);
            pending = false;
        } else {
            ref_line(&st, line);
            pending = true;
        }
        i = next;
    }
    if (pending) /* the stream ended inside an event: finish delivers it */
        ref_dispatch(&st, text, text.len, out);
    ar_buf_dispose(&st.data);
}

/* ---- runs ---- */

static int run(ar_span_t text, size_t cap, uint8_t step, rec_t *r)
{
    ar_sse_parser_t p;
    ar_sse_parser_init(&p, cap);
    r->cap = cap;
    int rc = 0;
    size_t at = 0;
    while (rc == 0 && at < text.len) {
        size_t n = step ? step : text.len;
        if (n > text.len - at)
            n = text.len - at;
        /* copy each piece: the parser must not keep pointers into what it was fed */
        char *piece = malloc(n ? n : 1);
        memcpy(piece, text.ptr + at, n);
        rc = ar_sse_feed(&p, ar_span(piece, n), on_event, r);
        free(piece);
        at += n;
        step = (uint8_t)(step * 13u + 5u);
    }
    if (rc == 0)
        rc = ar_sse_finish(&p, on_event, r);
    if (rc == 0 && ar_sse_pending(&p))
        fz_fail("bytes still pending after finish");
    ar_sse_parser_dispose(&p);
    return rc;
}

static bool ev_eq(const rec_ev_t *a, const rec_ev_t *b)
{
    return ar_span_eq(a->event, b->event) && ar_span_eq(a->data, b->data) &&
           ar_span_eq(a->id, b->id) && ar_span_eq(a->raw, b->raw);
}

static void compare(const rec_t *a, const rec_t *b, size_t cnt, const char *what)
{
    for (size_t i = 0; i < cnt; i++) {
        if (!ev_eq(&a->ev[i], &b->ev[i])) {
            fz_dump("event", a->ev[i].event);
            fz_dump("data", a->ev[i].data);
            fz_dump("raw", a->ev[i].raw);
            fz_dump("other event", b->ev[i].event);
            fz_dump("other data", b->ev[i].data);
            fz_dump("other raw", b->ev[i].raw);
            fz_fail("%s: event %zu differs", what, i);
        }
    }
}

/* ar_sse_write frames any data (line breaks included) so that it parses back. */
static void check_write(ar_span_t text)
{
    ar_buf_t b;
    ar_buf_init(&b, 1u << 24);
    size_t cut = text.len / 3;
    ar_span_t name = ar_span(text.ptr, cut);
    for (size_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        if (c == '\n' || c == '\r')
            name.len = i; /* event names are the caller's tokens, never line breaks */
    }
    ar_span_t data = ar_span(text.ptr + cut, text.len - cut);
    if (ar_sse_write(&b, name, data) != 0)
        fz_fail("ar_sse_write failed");
    rec_t *r = calloc(1, sizeof(*r));
    r->cap = SIZE_MAX;
    ref_parse(ar_buf_span(&b), r);
    /* A lone "\r" and "\r\n" both become "\n": the reader's view of line breaks. */
    ar_buf_t want;
    ar_buf_init(&want, 1u << 24);
    for (size_t i = 0; i < data.len; i++) {
        char c = data.ptr[i];
        if (c == '\r' && i + 1 < data.len && data.ptr[i + 1] == '\n')
            continue;
        (void)ar_buf_append(&want, c == '\r' ? "\n" : &c, 1);
    }
    if (r->cnt != 1 || !ar_span_eq(r->ev[0].data, ar_buf_span(&want)) ||
        !ar_span_eq(r->ev[0].event, name)) {
        fz_dump("written", ar_buf_span(&b));
        fz_fail("ar_sse_write output does not parse back to its data (%zu events)", r->cnt);
    }
    rec_free(r);
    free(r);
    ar_buf_dispose(&want);
    ar_buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    uint8_t c = fz_byte(&in);
    uint8_t step = fz_byte(&in);
    size_t cap = c & 0x80 ? (size_t)(c & 0x7f) + 1 : (size_t)1 << 20;
    ar_span_t text = fz_rest(&in);

    rec_t *whole = calloc(1, sizeof(*whole));
    rec_t *split = calloc(1, sizeof(*split));
    rec_t *ref = calloc(1, sizeof(*ref));
    int rc_whole = run(text, cap, 0, whole);
    int rc_split = run(text, cap, step ? step : 1, split);
    if (rc_whole != 0 && rc_whole != AR_ETOOBIG)
        fz_fail("ar_sse_feed returned %s", ar_err_name(rc_whole));
    if (rc_whole != rc_split || whole->cnt != split->cnt)
        fz_fail("split feeding changed the outcome: %s/%zu events whole, %s/%zu split",
                ar_err_name(rc_whole), whole->cnt, ar_err_name(rc_split), split->cnt);
    compare(whole, split, whole->cnt, "whole vs split");
    ref->cap = SIZE_MAX;
    ref_parse(text, ref);
    if (rc_whole == 0 && ref->cnt != whole->cnt)
        fz_fail("the reference saw %zu events, the parser %zu", ref->cnt, whole->cnt);
    if (whole->cnt > ref->cnt)
        fz_fail("the parser delivered more events (%zu) than the reference (%zu)", whole->cnt,
                ref->cnt);
    compare(whole, ref, whole->cnt, "parser vs reference");
    rec_free(whole);
    rec_free(split);
    rec_free(ref);
    free(whole);
    free(split);
    free(ref);
    if (!(c & 0x40))
        check_write(text);
    return 0;
}
