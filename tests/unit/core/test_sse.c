/*
 * test_sse.c: unit tests of core/sse.c, the SSE parser and writer. Every transcript is
 * also fed split at every byte offset, byte by byte and in chunks of many sizes, and must
 * give exactly the events it gives when fed whole (fields and raw bytes alike).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/sse.h"
#include "testutil.h"

/* ---- an event recorder (libc memory: it belongs to the test) ---- */

typedef struct rec_ev {
    char *event, *data, *id, *raw;
    size_t event_len, data_len, id_len, raw_len;
} rec_ev_t;

typedef struct rec {
    rec_ev_t *ev;
    size_t cnt, cap;
    size_t fail_at; /* 1-based event number whose callback fails; 0 = never */
    int fail_rc;
    size_t calls;
} rec_t;

static char *dup_span(ar_span_t s, size_t *len)
{
    char *p = malloc(s.len + 1);
    assert_non_null(p);
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    *len = s.len;
    return p;
}

static int record(void *ud, const ar_sse_event_t *ev)
{
    rec_t *r = ud;
    r->calls++;
    if (r->fail_at && r->calls == r->fail_at)
        return r->fail_rc;
    if (r->cnt == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->ev = realloc(r->ev, r->cap * sizeof(*r->ev));
        assert_non_null(r->ev);
    }
    rec_ev_t *e = &r->ev[r->cnt++];
    e->event = dup_span(ev->event, &e->event_len);
    e->data = dup_span(ev->data, &e->data_len);
    e->id = dup_span(ev->id, &e->id_len);
    e->raw = dup_span(ev->raw, &e->raw_len);
    return 0;
}

static void rec_clear(rec_t *r)
{
    for (size_t i = 0; i < r->cnt; i++) {
        free(r->ev[i].event);
        free(r->ev[i].data);
        free(r->ev[i].id);
        free(r->ev[i].raw);
    }
    free(r->ev);
    memset(r, 0, sizeof(*r));
}

static void assert_same_events(const rec_t *got, const rec_t *want, const char *what, size_t k)
{
    if (got->cnt != want->cnt)
        fail_msg("%s %zu: %zu events, want %zu", what, k, got->cnt, want->cnt);
    for (size_t i = 0; i < want->cnt; i++) {
        const rec_ev_t *g = &got->ev[i], *w = &want->ev[i];
        if (g->event_len != w->event_len || memcmp(g->event, w->event, w->event_len) != 0 ||
            g->data_len != w->data_len || memcmp(g->data, w->data, w->data_len) != 0 ||
            g->id_len != w->id_len || memcmp(g->id, w->id, w->id_len) != 0 ||
            g->raw_len != w->raw_len || memcmp(g->raw, w->raw, w->raw_len) != 0)
            fail_msg("%s %zu: event %zu differs: data '%s' want '%s'", what, k, i, g->data,
                     w->data);
    }
}

/* Parses text whole (one feed, then finish) into r. @return the first error. */
static int parse_whole(const char *text, size_t len, size_t cap, rec_t *r)
{
    ar_sse_parser_t p;
    ar_sse_parser_init(&p, cap);
    int rc = ar_sse_feed(&p, ar_span(text, len), record, r);
    if (!rc)
        rc = ar_sse_finish(&p, record, r);
    ar_sse_parser_dispose(&p);
    return rc;
}

/* Feeds text in pieces of `step` bytes (the first piece `first` bytes), then finishes. */
static int parse_pieces(const char *text, size_t len, size_t first, size_t step, size_t cap,
                        rec_t *r)
{
    ar_sse_parser_t p;
    ar_sse_parser_init(&p, cap);
    int rc = ar_sse_feed(&p, ar_span(text, first), record, r);
    for (size_t off = first; !rc && off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        rc = ar_sse_feed(&p, ar_span(text + off, n), record, r);
    }
    if (!rc)
        rc = ar_sse_finish(&p, record, r);
    ar_sse_parser_dispose(&p);
    return rc;
}

/*
 * The core property: split at every offset, byte by byte, and in chunks of many sizes,
 * the events are exactly those of the whole text.
 */
static void check_all_splits(const char *text, size_t len, size_t cap, size_t want_cnt)
{
    rec_t whole = {0};
    assert_int_equal(parse_whole(text, len, cap, &whole), 0);
    assert_int_equal(whole.cnt, want_cnt);
    for (size_t k = 0; k <= len; k++) {
        rec_t r = {0};
        assert_int_equal(parse_pieces(text, len, k, len ? len : 1, cap, &r), 0);
        assert_same_events(&r, &whole, "split at", k);
        rec_clear(&r);
    }
    /* every chunk size up to 256, then sizes growing by half up to the whole text */
    for (size_t step = 1; step <= len; step = step < 256 ? step + 1 : step + step / 2) {
        rec_t r = {0};
        int rc = parse_pieces(text, len, step < len ? step : len, step, cap, &r);
        if (rc)
            fail_msg("chunks of %zu: rc %d", step, rc);
        assert_same_events(&r, &whole, "chunks of", step);
        rec_clear(&r);
    }
    rec_clear(&whole);
}

#define S(lit) lit, sizeof(lit) - 1
#define AR_ARRAY_CNT_(a) (sizeof(a) / sizeof((a)[0]))
#define CAP (1u << 20)

static void assert_ev(const rec_ev_t *e, const char *event, const char *data, const char *id)
{
    assert_string_equal(e->event, event);
    assert_int_equal(e->data_len, strlen(data));
    assert_memory_equal(e->data, data, e->data_len);
    assert_string_equal(e->id, id);
}

/* ---- tests ---- */

static void test_single_event(void **state)
{
    (void)state;
    rec_t r = {0};
    assert_int_equal(parse_whole(S("data: hello\n\n"), CAP, &r), 0);
    assert_int_equal(r.cnt, 1);
    assert_ev(&r.ev[0], "", "hello", "");
    assert_string_equal(r.ev[0].raw, "data: hello\n\n");
    rec_clear(&r);
}

static void test_multiline_data_joined(void **state)
{
    (void)state;
    rec_t r = {0};
    assert_int_equal(parse_whole(S("data: a\ndata: b\ndata:\ndata: c\n\ndata: z\n\n"), CAP, &r), 0);
    assert_int_equal(r.cnt, 2);
    assert_ev(&r.ev[0], "", "a\nb\n\nc", "");
    assert_ev(&r.ev[1], "", "z", "");
    assert_string_equal(r.ev[0].raw, "data: a\ndata: b\ndata:\ndata: c\n\n");
    rec_clear(&r);
    check_all_splits(S("data: a\ndata: b\ndata:\ndata: c\n\ndata: z\n\n"), CAP, 2);
}

static void test_event_and_id_fields(void **state)
{
    (void)state;
    rec_t r = {0};
    const char text[] = "event: message_start\nid: 42\ndata: {\"type\":\"message_start\"}\n\n"
                        "id: 43\nevent: ping\ndata: {}\n\n";
    assert_int_equal(parse_whole(S(text), CAP, &r), 0);
    assert_int_equal(r.cnt, 2);
    assert_ev(&r.ev[0], "message_start", "{\"type\":\"message_start\"}", "42");
    assert_ev(&r.ev[1], "ping", "{}", "43");
    rec_clear(&r);
    check_all_splits(S(text), CAP, 2);
}

static void test_comments_and_keepalives_ignored(void **state)
{
    (void)state;
    rec_t r = {0};
    const char text[] = ": keep-alive\n\n"
                        "\n\n\n"
                        ":ping\ndata: x\n: between\ndata: y\n\n"
                        ": OPENROUTER PROCESSING\r\n\r\n"
                        "retry: 1000\n\n"
                        "id: 7\n\n"
                        "data: last\n\n";
    assert_int_equal(parse_whole(S(text), CAP, &r), 0);
    assert_int_equal(r.cnt, 2);
    assert_ev(&r.ev[0], "", "x\ny", "");
    /* a comment inside an event is part of its raw bytes */
    assert_string_equal(r.ev[0].raw, ":ping\ndata: x\n: between\ndata: y\n\n");
    assert_ev(&r.ev[1], "", "last", "");
    assert_string_equal(r.ev[1].raw, "data: last\n\n");
    rec_clear(&r);
    check_all_splits(S(text), CAP, 2);
}

static void test_line_endings(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *raw0;
    } cases[] = {
        {"event: e\ndata: a\ndata: b\n\ndata: c\n\n", "event: e\ndata: a\ndata: b\n\n"},
        {"event: e\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n",
         "event: e\r\ndata: a\r\ndata: b\r\n\r\n"},
        {"event: e\rdata: a\rdata: b\r\rdata: c\r\r", "event: e\rdata: a\rdata: b\r\r"},
        /* mixed within one stream */
        {"event: e\r\ndata: a\rdata: b\n\r\ndata: c\r\r", "event: e\r\ndata: a\rdata: b\n\r\n"},
    };
    for (size_t i = 0; i < AR_ARRAY_CNT_(cases); i++) {
        rec_t r = {0};
        size_t len = strlen(cases[i].text);
        assert_int_equal(parse_whole(cases[i].text, len, CAP, &r), 0);
        assert_int_equal(r.cnt, 2);
        assert_ev(&r.ev[0], "e", "a\nb", "");
        assert_ev(&r.ev[1], "", "c", "");
        assert_string_equal(r.ev[0].raw, cases[i].raw0);
        rec_clear(&r);
        check_all_splits(cases[i].text, len, CAP, 2);
    }
}

static void test_data_without_space(void **state)
{
    (void)state;
    rec_t r = {0};
    const char text[] = "data:x\n\ndata:  two spaces\n\ndata\n\nevent:e\ndata:{\"a\":1}\n\n";
    assert_int_equal(parse_whole(S(text), CAP, &r), 0);
    assert_int_equal(r.cnt, 4);
    assert_ev(&r.ev[0], "", "x", "");
    assert_ev(&r.ev[1], "", " two spaces", ""); /* only one leading space is removed */
    assert_ev(&r.ev[2], "", "", "");            /* a bare `data` line is an empty data line */
    assert_ev(&r.ev[3], "e", "{\"a\":1}", "");
    rec_clear(&r);
    check_all_splits(S(text), CAP, 4);
}

/* The fixture's data lines, in order. */
static size_t fixture_data_lines(const char *text, size_t len, char ***out)
{
    size_t cnt = 0;
    char **lines = NULL;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        if ((size_t)(nl - p) > 6 && memcmp(p, "data: ", 6) == 0) {
            lines = realloc(lines, (cnt + 1) * sizeof(*lines));
            size_t n;
            lines[cnt++] = dup_span(ar_span(p + 6, (size_t)(nl - p - 6)), &n);
        }
        p = nl + 1;
    }
    *out = lines;
    return cnt;
}

static void test_openai_transcript(void **state)
{
    (void)state;
    size_t len;
    char *text = ar_test_fixture("providers/openai/stream_usage.sse", &len);
    char **lines;
    size_t n = fixture_data_lines(text, len, &lines);
    assert_int_equal(n, 13);

    rec_t r = {0};
    assert_int_equal(parse_whole(text, len, 64 * 1024, &r), 0);
    assert_int_equal(r.cnt, 13);
    size_t raw_total = 0;
    for (size_t i = 0; i < r.cnt; i++) {
        assert_ev(&r.ev[i], "", lines[i], "");
        /* raw is exactly the original bytes of the event, blank line included */
        assert_int_equal(r.ev[i].raw_len, 6 + strlen(lines[i]) + 2);
        assert_memory_equal(r.ev[i].raw, text + raw_total, r.ev[i].raw_len);
        raw_total += r.ev[i].raw_len;
    }
    assert_int_equal(raw_total, len);
    assert_string_equal(r.ev[12].data, "[DONE]");
    assert_non_null(strstr(r.ev[11].data, "\"choices\":[]"));
    rec_clear(&r);

    /* The largest event is under 700 bytes: a 1 KiB cap must never trip, however split. */
    check_all_splits(text, len, 1024, 13);

    /* The same transcript with CRLF and with CR line endings. */
    for (int mode = 0; mode < 2; mode++) {
        char *conv = malloc(2 * len + 1);
        size_t m = 0;
        for (size_t i = 0; i < len; i++) {
            if (text[i] == '\n') {
                conv[m++] = '\r';
                if (mode == 0)
                    conv[m++] = '\n';
            } else {
                conv[m++] = text[i];
            }
        }
        rec_t c = {0};
        assert_int_equal(parse_whole(conv, m, 1024, &c), 0);
        assert_int_equal(c.cnt, 13);
        for (size_t i = 0; i < c.cnt; i++)
            assert_ev(&c.ev[i], "", lines[i], "");
        rec_clear(&c);
        check_all_splits(conv, m, 1024, 13);
        free(conv);
    }
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(text);
}

static void test_byte_by_byte_events_arrive_on_time(void **state)
{
    (void)state;
    /* Each event is reported by the feed that completes it, not later. */
    const char text[] = "data: one\n\ndata: two\r\n\r\n";
    ar_sse_parser_t p;
    ar_sse_parser_init(&p, CAP);
    rec_t r = {0};
    size_t first_done = strlen("data: one\n\n");
    for (size_t i = 0; i < sizeof(text) - 1; i++) {
        assert_int_equal(ar_sse_feed(&p, ar_span(text + i, 1), record, &r), 0);
        size_t want = i + 1 >= first_done ? 1 : 0;
        if (i + 1 == sizeof(text) - 1)
            want = 2;
        assert_int_equal(r.cnt, want);
        assert_int_equal(ar_sse_pending(&p), i + 1 != first_done && i + 1 != sizeof(text) - 1);
    }
    assert_int_equal(ar_sse_finish(&p, record, &r), 0);
    assert_int_equal(r.cnt, 2);
    ar_sse_parser_dispose(&p);
    rec_clear(&r);
}

static void test_event_over_cap(void **state)
{
    (void)state;
    char big[200];
    memcpy(big, "data: ", 6);
    memset(big + 6, 'x', 150);
    memcpy(big + 156, "\n\n", 2);
    size_t len = 158;

    /* whole, and split at every offset: always AR_ETOOBIG, never an event */
    rec_t r = {0};
    assert_int_equal(parse_whole(big, len, 100, &r), AR_ETOOBIG);
    assert_int_equal(r.cnt, 0);
    for (size_t k = 0; k <= len; k++) {
        rec_t s = {0};
        assert_int_equal(parse_pieces(big, len, k, len, 100, &s), AR_ETOOBIG);
        assert_int_equal(s.cnt, 0);
        rec_clear(&s);
    }
    /* an incomplete event over the cap fails before its end arrives */
    ar_sse_parser_t p;
    ar_sse_parser_init(&p, 100);
    assert_int_equal(ar_sse_feed(&p, ar_span(big, 50), record, &r), 0);
    assert_int_equal(ar_sse_feed(&p, ar_span(big + 50, 60), record, &r), AR_ETOOBIG);
    ar_sse_parser_dispose(&p);

    /* an event of exactly the cap is accepted, however split */
    check_all_splits(big, len, len, 1);
    rec_clear(&r);
}

/* Found by fuzzing (tests/fuzz/corpus/sse/cap-lone-cr): an event of exactly the cap whose
 * blank line is a lone "\r" was refused when a piece ended right after that "\r" (the carry
 * was full, and whether "\n" followed was not known yet), but accepted when fed whole. */
static void test_event_of_cap_ending_in_lone_cr(void **state)
{
    (void)state;
    static const char text[] = "data: abc\r\rdata: z\r\r:\rdata: e\r";
    check_all_splits(text, sizeof(text) - 1, 11, 3);
    /* one byte more than the cap is refused however it arrives */
    rec_t r = {0};
    assert_int_equal(parse_whole(S("data: abcd\r\r"), 11, &r), AR_ETOOBIG);
    for (size_t k = 0; k <= 12; k++) {
        rec_t s = {0};
        assert_int_equal(parse_pieces(S("data: abcd\r\r"), k, 1, 11, &s), AR_ETOOBIG);
        assert_int_equal(s.cnt, 0);
        rec_clear(&s);
    }
    rec_clear(&r);
}

static void test_cap_counts_one_event_not_the_carry(void **state)
{
    (void)state;
    /* Many 40-byte events under a 48-byte cap: a piece that completes one event and starts
     * the next must not count the two together against the cap. */
    char text[40 * 12 + 1];
    static const char tmpl[] = "data: event number NN padding.........\n\n";
    for (int i = 0; i < 12; i++) {
        memcpy(text + 40 * i, tmpl, 40);
        text[40 * i + 19] = (char)('0' + i / 10);
        text[40 * i + 20] = (char)('0' + i % 10);
    }
    text[40 * 12] = '\0';
    size_t len = 40 * 12;
    assert_int_equal(strlen(text), len);
    check_all_splits(text, len, 48, 12);
}

static void test_finish_delivers_unterminated_event(void **state)
{
    (void)state;
    static const char *const texts[] = {"data: last", "data: last\n", "data: last\r",
                                        "data: last\r\n", "data: last\n\r"};
    for (size_t i = 0; i < AR_ARRAY_CNT_(texts); i++) {
        size_t len = strlen(texts[i]);
        for (size_t k = 0; k <= len; k++) {
            ar_sse_parser_t p;
            ar_sse_parser_init(&p, CAP);
            rec_t r = {0};
            assert_int_equal(ar_sse_feed(&p, ar_span(texts[i], k), record, &r), 0);
            assert_int_equal(ar_sse_feed(&p, ar_span(texts[i] + k, len - k), record, &r), 0);
            assert_int_equal(r.cnt, 0);
            assert_true(ar_sse_pending(&p));
            assert_int_equal(ar_sse_finish(&p, record, &r), 0);
            assert_int_equal(r.cnt, 1);
            assert_ev(&r.ev[0], "", "last", "");
            assert_string_equal(r.ev[0].raw, texts[i]);
            assert_false(ar_sse_pending(&p));
            /* finishing twice delivers nothing more */
            assert_int_equal(ar_sse_finish(&p, record, &r), 0);
            assert_int_equal(r.cnt, 1);
            ar_sse_parser_dispose(&p);
            rec_clear(&r);
        }
    }
    /* nothing pending, or only a comment: nothing delivered */
    rec_t r = {0};
    assert_int_equal(parse_whole(S(""), CAP, &r), 0);
    assert_int_equal(parse_whole(S(": just a comment"), CAP, &r), 0);
    assert_int_equal(r.cnt, 0);
    rec_clear(&r);
}

static void test_callback_error_stops(void **state)
{
    (void)state;
    const char text[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    rec_t r = {.fail_at = 2, .fail_rc = AR_ECANCELED};
    ar_sse_parser_t p;
    ar_sse_parser_init(&p, CAP);
    assert_int_equal(ar_sse_feed(&p, ar_span(text, sizeof(text) - 1), record, &r), AR_ECANCELED);
    assert_int_equal(r.calls, 2); /* the third event is never reported */
    assert_int_equal(r.cnt, 1);
    assert_string_equal(r.ev[0].data, "1");
    ar_sse_parser_dispose(&p);
    rec_clear(&r);

    /* the same from ar_sse_finish and from the carried (split) path */
    rec_t f = {.fail_at = 1, .fail_rc = AR_EUPSTREAM};
    ar_sse_parser_init(&p, CAP);
    assert_int_equal(ar_sse_feed(&p, AR_LIT("data: 1"), record, &f), 0);
    assert_int_equal(ar_sse_finish(&p, record, &f), AR_EUPSTREAM);
    assert_int_equal(f.calls, 1);
    ar_sse_parser_dispose(&p);
    rec_clear(&f);

    rec_t c = {.fail_at = 1, .fail_rc = AR_EPARSE};
    ar_sse_parser_init(&p, CAP);
    assert_int_equal(ar_sse_feed(&p, AR_LIT("data: 1\n"), record, &c), 0);
    assert_int_equal(ar_sse_feed(&p, AR_LIT("\ndata: 2\n\n"), record, &c), AR_EPARSE);
    assert_int_equal(c.calls, 1);
    ar_sse_parser_dispose(&p);
    rec_clear(&c);
}

static void test_write_framing(void **state)
{
    (void)state;
    ar_buf_t b;
    ar_buf_init(&b, 4096);
    assert_int_equal(ar_sse_write(&b, AR_SPAN_NULL, AR_LIT("{\"a\":1}")), 0);
    assert_int_equal(ar_sse_write(&b, AR_LIT("error"), AR_LIT("line1\nline2\n\nline4")), 0);
    assert_int_equal(ar_sse_write(&b, AR_SPAN_NULL, AR_LIT("")), 0);
    const char want[] = "data: {\"a\":1}\n\n"
                        "event: error\ndata: line1\ndata: line2\ndata: \ndata: line4\n\n"
                        "data: \n\n";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.ptr, want, b.len);

    /* what the writer frames, the parser reads back unchanged */
    rec_t r = {0};
    assert_int_equal(parse_whole(b.ptr, b.len, CAP, &r), 0);
    assert_int_equal(r.cnt, 3);
    assert_ev(&r.ev[0], "", "{\"a\":1}", "");
    assert_ev(&r.ev[1], "error", "line1\nline2\n\nline4", "");
    assert_ev(&r.ev[2], "", "", "");
    rec_clear(&r);

    /* a CR inside a payload is a line break to every SSE reader: it must be framed too */
    ar_buf_reset(&b);
    assert_int_equal(ar_sse_write(&b, AR_SPAN_NULL, AR_LIT("a\rb\r\nc\nd")), 0);
    assert_int_equal(parse_whole(b.ptr, b.len, CAP, &r), 0);
    assert_int_equal(r.cnt, 1);
    assert_ev(&r.ev[0], "", "a\nb\nc\nd", "");
    rec_clear(&r);

    /* a trailing line break is kept: it becomes an empty last data line */
    ar_buf_reset(&b);
    assert_int_equal(ar_sse_write(&b, AR_SPAN_NULL, AR_LIT("a\n")), 0);
    assert_int_equal(b.len, strlen("data: a\ndata: \n\n"));
    assert_memory_equal(b.ptr, "data: a\ndata: \n\n", b.len);
    assert_int_equal(parse_whole(b.ptr, b.len, CAP, &r), 0);
    assert_int_equal(r.cnt, 1);
    assert_ev(&r.ev[0], "", "a\n", "");
    rec_clear(&r);

    /* a full buffer fails with AR_ETOOBIG */
    ar_buf_t small;
    ar_buf_init(&small, 10);
    assert_int_equal(ar_sse_write(&small, AR_SPAN_NULL, AR_LIT("0123456789")), AR_ETOOBIG);
    ar_buf_dispose(&small);
    ar_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_event),
        cmocka_unit_test(test_multiline_data_joined),
        cmocka_unit_test(test_event_and_id_fields),
        cmocka_unit_test(test_comments_and_keepalives_ignored),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_data_without_space),
        cmocka_unit_test(test_openai_transcript),
        cmocka_unit_test(test_byte_by_byte_events_arrive_on_time),
        cmocka_unit_test(test_event_over_cap),
        cmocka_unit_test(test_event_of_cap_ending_in_lone_cr),
        cmocka_unit_test(test_cap_counts_one_event_not_the_carry),
        cmocka_unit_test(test_finish_delivers_unterminated_event),
        cmocka_unit_test(test_callback_error_stops),
        cmocka_unit_test(test_write_framing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
