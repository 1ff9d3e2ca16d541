/*
 * anthropic_stream.c: the provider side of the OpenAI chat <-> Anthropic Messages
 * translation (see anthropic_xlate.h), streams: Anthropic SSE events into OpenAI chunks.
 * Events are read with the scanner and written with appends, and the raw text of JSON
 * strings (escapes kept) is copied from one format into the other, so no string is decoded
 * on the way. Requests are anthropic_request.c, whole answers and errors anthropic_answer.c.
 * No I/O, no state outside the structs it is given.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "providers/anthropic_int.h"

/* ---- small helpers ---- */

/* The code unit of the \uXXXX at s[i] (i + 6 <= len, hex checked), or -1. */
static long u_unit(ar_span_t s, size_t i)
{
    if (i + 6 > s.len || s.ptr[i] != '\\' || s.ptr[i + 1] != 'u')
        return -1;
    long cu = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = ar_hexval(s.ptr[i + k]);
        if (h < 0)
            return -1;
        cu = cu * 16 + h;
    }
    return cu;
}

/* The length of the well-formed \u escape at s[i]: 6, 12 for a surrogate pair, or 0 (not
 * an escape, or half a pair). */
static size_t u_escape_len(ar_span_t s, size_t i)
{
    long cu = u_unit(s, i);
    if (cu < 0 || (cu >= 0xdc00 && cu <= 0xdfff))
        return 0;
    if (cu >= 0xd800 && cu <= 0xdbff) {
        long low = u_unit(s, i + 6);
        return low >= 0xdc00 && low <= 0xdfff ? 12 : 0;
    }
    return 6;
}

/*
 * Appends the inside of a raw JSON string (escapes kept, as the scanner gives it) so that it
 * is valid inside a JSON string literal whatever the upstream sent: well-formed escapes are
 * copied as they are, raw control characters become \u00XX, invalid UTF-8 and half surrogate
 * pairs become U+FFFD, and a backslash that starts no valid escape is escaped itself. For the
 * short strings of an unvalidated stream event (ids, names, the model), which must never
 * break the chunks they are copied into.
 */
static int append_string_inside(ar_buf_t *out, ar_span_t inner)
{
    static const char hex[] = "0123456789abcdef";
    size_t from = 0;
    int rc = 0;
    if (!inner.len)
        return 0;
    for (size_t i = 0; i < inner.len && !rc; i++) {
        unsigned char c = (unsigned char)inner.ptr[i];
        size_t esc = 0; /* the length of a well-formed escape or UTF-8 character here */
        if (c >= 0x80)
            esc = ar_utf8_seq_len(inner.ptr + i, inner.len - i);
        else if (c >= 0x20 && c != '\\')
            continue;
        if (c == '\\' && i + 1 < inner.len) {
            char e = inner.ptr[i + 1];
            if (e == 'u')
                esc = u_escape_len(inner, i);
            else if (e && strchr("\"\\/bfnrt", e))
                esc = 2;
        }
        if (esc) {
            i += esc - 1;
            continue;
        }
        rc = ar_buf_append(out, inner.ptr + from, i - from);
        if (c >= 0x80 || (c == '\\' && u_unit(inner, i) >= 0)) {
            /* invalid UTF-8, or half a surrogate pair: U+FFFD keeps the chunk valid JSON */
            rc = rc ? rc : ar_buf_append_str(out, "\\ufffd");
            if (c == '\\')
                i += 5;
        } else if (c == '\\') {
            rc = rc ? rc : ar_buf_append_str(out, "\\\\");
        } else {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = rc ? rc : ar_buf_append(out, u, sizeof(u));
        }
        from = i + 1;
    }
    return rc ? rc : ar_buf_append(out, inner.ptr + from, inner.len - from);
}
/* ==== provider side: Anthropic stream events -> OpenAI chunks ==== */

void ar_anth_stream_init(ar_anth_stream_t *st, int64_t created)
{
    memset(st, 0, sizeof(*st));
    st->created = created;
    st->cur_tool = -1;
}

#define DELTA_OPEN "{\"index\":0,\"delta\":{"
#define DELTA_CLOSE "},\"logprobs\":null,\"finish_reason\":null}]}\n\n"

/* "data: " + the chunk head + the opening of choice 0's delta, prepared by message_start. */
static int delta_begin(const ar_anth_stream_t *st, ar_buf_t *out)
{
    return ar_buf_append(out, st->head, st->delta_len);
}

static int delta_end(ar_buf_t *out, const char *finish)
{
    if (!finish)
        return ar_buf_append(out, DELTA_CLOSE, sizeof(DELTA_CLOSE) - 1);
    return ar_buf_appendf(out, "},\"logprobs\":null,\"finish_reason\":\"%s\"}]}\n\n", finish);
}

/* One delta chunk whose only member is `"name":` + a raw JSON value (a string). The
 * common case of a stream, so it is four copies into one reservation. */
static int delta_value(const ar_anth_stream_t *st, ar_span_t name, ar_span_t raw, ar_buf_t *out)
{
    size_t n = st->delta_len + name.len + 3 + raw.len + sizeof(DELTA_CLOSE) - 1;
    int rc = ar_buf_reserve(out, n);
    if (rc)
        return rc;
    char *p = out->ptr + out->len;
    memcpy(p, st->head, st->delta_len);
    p += st->delta_len;
    *p++ = '"';
    memcpy(p, name.ptr, name.len);
    p += name.len;
    *p++ = '"';
    *p++ = ':';
    memcpy(p, raw.ptr, raw.len);
    p += raw.len;
    memcpy(p, DELTA_CLOSE, sizeof(DELTA_CLOSE) - 1);
    out->len += n;
    return 0;
}

static void scan_usage(ar_anth_stream_t *st, ar_span_t u, ar_usage_t *usage)
{
    /* message_delta repeats cumulative totals when it has them: overwrite, never add */
    int64_t v;
    if (ar_jscan_get_int(u, AR_LIT("input_tokens"), &v) == 0)
        st->in = ar_tokens_clamp(v);
    if (ar_jscan_get_int(u, AR_LIT("output_tokens"), &v) == 0)
        st->out = ar_tokens_clamp(v);
    if (ar_jscan_get_int(u, AR_LIT("cache_read_input_tokens"), &v) == 0)
        st->cache_read = ar_tokens_clamp(v);
    if (ar_jscan_get_int(u, AR_LIT("cache_creation_input_tokens"), &v) == 0)
        st->cache_write = ar_tokens_clamp(v);
    set_usage(usage, st->in, st->out, st->cache_read, st->cache_write);
}

static int message_start(ar_anth_stream_t *st, ar_span_t data, ar_usage_t *usage, ar_buf_t *out)
{
    ar_span_t msg, id = AR_SPAN_NULL, model = AR_SPAN_NULL, u;
    if (st->started || ar_jscan_get(data, AR_LIT("message"), &msg) != 0)
        return AR_EUPSTREAM;
    (void)ar_xl_raw_str(msg, "id", &id);
    (void)ar_xl_raw_str(msg, "model", &model);
    /* the event is not validated as a whole: id and model are made safe to copy */
    ar_buf_t head;
    ar_buf_init(&head, sizeof(st->head) - sizeof(DELTA_OPEN));
    int rc = ar_buf_append_str(&head, "data: {\"id\":\"chatcmpl-");
    rc = rc ? rc : append_string_inside(&head, id);
    rc = rc ? rc
            : ar_buf_appendf(&head,
                             "\",\"object\":\"chat.completion.chunk\",\"created\":%lld,"
                             "\"model\":\"",
                             (long long)st->created);
    rc = rc ? rc : append_string_inside(&head, model);
    rc = rc ? rc : ar_buf_append_str(&head, "\",\"choices\":[");
    size_t n = head.len;
    if (!rc)
        memcpy(st->head, head.ptr, n);
    ar_buf_dispose(&head);
    if (rc)
        return AR_EUPSTREAM; /* an id or model too long for a chunk head */
    memcpy(st->head + n, DELTA_OPEN, sizeof(DELTA_OPEN) - 1);
    st->frame_len = n;
    st->delta_len = n + sizeof(DELTA_OPEN) - 1;
    st->started = true;
    if (ar_jscan_get(msg, AR_LIT("usage"), &u) == 0 && !ar_jscan_is_null(u))
        scan_usage(st, u, usage);
    rc = delta_begin(st, out);
    rc = rc ? rc : ar_buf_append_str(out, "\"role\":\"assistant\",\"content\":\"\"");
    rc = rc ? rc : delta_end(out, NULL);
    return rc;
}

static int block_start(ar_anth_stream_t *st, ar_span_t data, ar_buf_t *out)
{
    ar_span_t block, type, v;
    st->cur_tool = -1;
    if (ar_jscan_get(data, AR_LIT("content_block"), &block) != 0 ||
        !ar_xl_raw_str(block, "type", &type))
        return AR_EUPSTREAM;
    if (ar_xl_span_is(type, "text")) {
        ar_span_t inner;
        /* the opening text is empty in practice; send it when it is not */
        if (ar_xl_raw_str_value(block, "text", &v) && ar_jscan_string(v, &inner) == 0 && inner.len)
            return delta_value(st, AR_LIT("content"), v, out);
        return 0;
    }
    if (!ar_xl_span_is(type, "tool_use"))
        return 0; /* thinking opens empty; redacted_thinking and server tools have no form */
    ar_span_t id = AR_SPAN_NULL, name = AR_SPAN_NULL;
    (void)ar_xl_raw_str(block, "id", &id);
    (void)ar_xl_raw_str(block, "name", &name);
    st->cur_tool = st->tools++;
    int rc = delta_begin(st, out);
    rc = rc ? rc : ar_buf_appendf(out, "\"tool_calls\":[{\"index\":%d,\"id\":\"", st->cur_tool);
    rc = rc ? rc : append_string_inside(out, id);
    rc = rc ? rc : ar_buf_append_str(out, "\",\"type\":\"function\",\"function\":{\"name\":\"");
    rc = rc ? rc : append_string_inside(out, name);
    rc = rc ? rc : ar_buf_append_str(out, "\",\"arguments\":\"\"}}]");
    rc = rc ? rc : delta_end(out, NULL);
    return rc;
}

static int block_delta(ar_anth_stream_t *st, ar_span_t data, ar_buf_t *out)
{
    ar_span_t delta, type, v, inner;
    if (ar_jscan_get(data, AR_LIT("delta"), &delta) != 0 || !ar_xl_raw_str(delta, "type", &type))
        return AR_EUPSTREAM;
    if (ar_xl_span_is(type, "text_delta")) {
        if (!ar_xl_raw_str_value(delta, "text", &v))
            return AR_EUPSTREAM;
        return delta_value(st, AR_LIT("content"), v, out);
    }
    if (ar_xl_span_is(type, "thinking_delta")) {
        if (!ar_xl_raw_str_value(delta, "thinking", &v))
            return AR_EUPSTREAM;
        return delta_value(st, AR_LIT("reasoning_content"), v, out);
    }
    if (ar_xl_span_is(type, "input_json_delta")) {
        if (!ar_xl_raw_str_value(delta, "partial_json", &v) || ar_jscan_string(v, &inner) != 0)
            return AR_EUPSTREAM;
        if (inner.len == 0 || st->cur_tool < 0)
            return 0; /* the opening empty piece, or a server tool's input */
        int rc = delta_begin(st, out);
        rc = rc ? rc
                : ar_buf_appendf(out, "\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":",
                                 st->cur_tool);
        rc = rc ? rc : ar_buf_append_span(out, v);
        rc = rc ? rc : ar_buf_append_str(out, "}}]");
        rc = rc ? rc : delta_end(out, NULL);
        return rc;
    }
    return 0; /* signature_delta, citations_delta: nothing to say in OpenAI terms */
}

static int usage_chunk(const ar_anth_stream_t *st, const ar_usage_t *u, ar_buf_t *out)
{
    int rc = ar_buf_append(out, st->head, st->frame_len);
    rc = rc ? rc
            : ar_buf_appendf(out,
                             "],\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                             "\"total_tokens\":%lld,\"prompt_tokens_details\":{\"cached_tokens\":"
                             "%lld}}}\n\n",
                             (long long)u->prompt_tokens, (long long)u->completion_tokens,
                             (long long)u->total_tokens, (long long)u->cached_tokens);
    return rc;
}

static int message_delta(ar_anth_stream_t *st, ar_span_t data, bool want_usage, ar_usage_t *usage,
                         ar_buf_t *out)
{
    ar_span_t delta, stop = AR_SPAN_NULL, u;
    if (ar_jscan_get(data, AR_LIT("delta"), &delta) == 0)
        (void)ar_xl_raw_str(delta, "stop_reason", &stop);
    if (ar_jscan_get(data, AR_LIT("usage"), &u) == 0 && !ar_jscan_is_null(u))
        scan_usage(st, u, usage);
    st->finish = ar_anth_finish_reason(stop);
    st->finish_sent = true;
    int rc = delta_begin(st, out);
    rc = rc ? rc : delta_end(out, st->finish);
    /* the usage-only chunk OpenAI sends after the finish chunk, when asked for */
    if (!rc && want_usage && usage->seen)
        rc = usage_chunk(st, usage, out);
    return rc;
}

/* Anthropic's own compact spelling of the commonest event, recognised without a key scan:
 * {"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"..."}}.
 * Anything else (other spacing or key order included) takes the general path. */
static bool text_delta_fast(ar_span_t data, ar_span_t *text)
{
    static const char pre[] = "{\"type\":\"content_block_delta\",\"index\":";
    static const char mid[] = ",\"delta\":{\"type\":\"text_delta\",\"text\":";
    const char *p = data.ptr, *end = data.ptr + data.len;
    if (data.len < sizeof(pre) + sizeof(mid) + 2 || memcmp(p, pre, sizeof(pre) - 1) != 0)
        return false;
    p += sizeof(pre) - 1;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    if (p == digits || (size_t)(end - p) < sizeof(mid) + 3 || memcmp(p, mid, sizeof(mid) - 1) != 0)
        return false;
    p += sizeof(mid) - 1;
    if (*p != '"')
        return false;
    const char *q = ar_jscan_skip(p, end);
    if (!q || end - q != 2 || q[0] != '}' || q[1] != '}')
        return false;
    *text = ar_span(p, (size_t)(q - p));
    return ar_json_validate(*text, NULL, 0) == 0;
}

int ar_anth_stream_event(ar_anth_stream_t *st, ar_span_t event, ar_span_t data, bool want_usage,
                         ar_usage_t *usage, ar_buf_t *out)
{
    ar_span_t type = event;
    if (st->finished)
        return 0;
    while (data.len && (data.ptr[0] == ' ' || data.ptr[0] == '\n' || data.ptr[0] == '\r'))
        data = ar_span_skip(data, 1);
    if (data.len == 0)
        return 0;
    /* No whole-event validation (it cost more than the translation): the scanner reports
     * broken structure, and the values copied into the output are checked one by one. */
    if (data.ptr[0] != '{' || data.ptr[data.len - 1] != '}')
        return AR_EUPSTREAM;
    ar_span_t text;
    if (st->started && text_delta_fast(data, &text))
        return delta_value(st, AR_LIT("content"), text, out);
    (void)ar_xl_raw_str(data, "type", &type);
    if (ar_xl_span_is(type, "ping"))
        return 0;
    if (ar_xl_span_is(type, "error"))
        return AR_EUPSTREAM; /* overloaded mid-stream and the like: the gateway ends it */
    if (ar_xl_span_is(type, "message_start"))
        return message_start(st, data, usage, out);
    if (!st->started)
        return AR_EUPSTREAM;
    if (ar_xl_span_is(type, "content_block_start"))
        return block_start(st, data, out);
    if (ar_xl_span_is(type, "content_block_delta"))
        return block_delta(st, data, out);
    if (ar_xl_span_is(type, "content_block_stop")) {
        st->cur_tool = -1;
        return 0;
    }
    if (ar_xl_span_is(type, "message_delta"))
        return message_delta(st, data, want_usage, usage, out);
    if (ar_xl_span_is(type, "message_stop")) {
        st->finished = true;
        return ar_buf_append_str(out, "data: [DONE]\n\n");
    }
    return 0; /* event types added later are skipped, as Anthropic's versioning asks */
}

int ar_anth_stream_end(ar_anth_stream_t *st, ar_buf_t *out)
{
    if (st->finished || !st->finish_sent)
        return 0;
    st->finished = true;
    return ar_buf_append_str(out, "data: [DONE]\n\n");
}
