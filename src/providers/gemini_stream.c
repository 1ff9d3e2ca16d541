/*
 * gemini_stream.c: Gemini `alt=sse` events -> OpenAI chunks, shared by gemini.c and
 * vertex.c (see gemini_xlate.h): role, text, reasoning and tool-call deltas per candidate,
 * finish chunks, and the end of a stream that Gemini closes without [DONE]. Events are read
 * with the scanner and written with appends, so an event costs no allocation beyond the
 * output buffer. Requests are gemini_request.c, whole answers gemini_answer.c.
 */
#include <time.h>

#include "providers/gemini_int.h"

/* Candidates are tracked in 32-bit masks; Gemini allows at most 8 (candidateCount). */
#define MAX_CANDIDATES 32

/* ---- answers: the stream ---- */

typedef struct gem_stream {
    char id[48];
    long created;
    uint32_t role_sent;   /* per candidate index: the role chunk went out */
    uint32_t finish_sent; /* ... its finish chunk went out */
    uint32_t tool_seen;   /* ... it called a function */
    int tool_next[MAX_CANDIDATES];
} gem_stream_t;

static gem_stream_t *stream_state(ar_call_t *call)
{
    gem_stream_t *st = call->pstate;
    if (!st) {
        st = ar_pool_calloc(call->pool, sizeof(*st));
        ar_gem__new_id(st->id, sizeof(st->id), "chatcmpl-");
        st->created = (long)time(NULL);
        call->pstate = st;
    }
    return st;
}

/* "data: {"id":..,"object":"chat.completion.chunk",..,"choices":[{"index":I,"delta":{" */
static int chunk_open(ar_buf_t *b, const gem_stream_t *st, const ar_call_t *call, int index)
{
    int rc = ar_buf_appendf(b,
                            "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\","
                            "\"created\":%ld,\"model\":\"",
                            st->id, st->created);
    rc = rc ? rc : ar_buf_append_json_escaped(b, ar_span_cstr(call->model));
    rc = rc ? rc : ar_buf_appendf(b, "\",\"choices\":[{\"index\":%d,\"delta\":{", index);
    return rc;
}

static int chunk_close(ar_buf_t *b, const char *finish)
{
    if (!finish)
        return ar_buf_append_str(b, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    return ar_buf_appendf(b, "},\"logprobs\":null,\"finish_reason\":\"%s\"}]}\n\n", finish);
}

static int role_chunk(ar_buf_t *b, gem_stream_t *st, const ar_call_t *call, int index)
{
    if (st->role_sent & (1u << index))
        return 0;
    st->role_sent |= 1u << index;
    int rc = chunk_open(b, st, call, index);
    rc = rc ? rc : ar_buf_append_str(b, "\"role\":\"assistant\",\"content\":\"\"");
    return rc ? rc : chunk_close(b, NULL);
}

static int finish_chunk(ar_buf_t *b, gem_stream_t *st, ar_call_t *call, int index,
                        const char *reason)
{
    if (st->finish_sent & (1u << index))
        return 0;
    st->finish_sent |= 1u << index;
    if ((st->finish_sent & st->role_sent) == st->role_sent)
        call->stream_done = true;
    int rc = chunk_open(b, st, call, index);
    return rc ? rc : chunk_close(b, reason);
}

static int text_chunk(ar_buf_t *b, gem_stream_t *st, const ar_call_t *call, int index,
                      ar_span_t raw_text, bool thought)
{
    if (raw_text.len == 0)
        return 0;
    int rc = chunk_open(b, st, call, index);
    rc = rc ? rc : ar_buf_append_str(b, thought ? "\"reasoning_content\":\"" : "\"content\":\"");
    rc = rc ? rc : ar_buf_append_span(b, raw_text);
    rc = rc ? rc : ar_buf_append_str(b, "\"");
    return rc ? rc : chunk_close(b, NULL);
}

static int stream_candidate(ar_buf_t *b, gem_stream_t *st, ar_call_t *call, ar_span_t cand,
                            size_t pos)
{
    int64_t index = (int64_t)pos;
    (void)ar_jscan_get_int(cand, AR_LIT("index"), &index);
    if (index < 0 || index >= MAX_CANDIDATES)
        return 0; /* never asked for: Gemini allows 8 */
    int i = (int)index;
    int rc = role_chunk(b, st, call, i);
    ar_span_t content, parts, part, v, fc;
    ar_jscan_iter_t it;
    if (has(cand, AR_LIT("content"), &content) && has(content, AR_LIT("parts"), &parts) &&
        ar_jscan_array_begin(parts, &it) == 0) {
        while (!rc && ar_jscan_array_next(&it, &part)) {
            if (has(part, AR_LIT("functionCall"), &fc)) {
                /* Gemini sends a call whole: one complete tool_calls delta */
                st->tool_seen |= 1u << i;
                rc = chunk_open(b, st, call, i);
                rc = rc ? rc : ar_buf_append_str(b, "\"tool_calls\":[");
                rc = rc ? rc : ar_gem__append_tool_call(b, part, fc, st->tool_next[i]++);
                rc = rc ? rc : ar_buf_append_str(b, "]");
                rc = rc ? rc : chunk_close(b, NULL);
            } else if (has(part, AR_LIT("text"), &v)) {
                ar_span_t t;
                bool thought = has(part, AR_LIT("thought"), &t) && is_true(t);
                rc = text_chunk(b, st, call, i, raw_string(v), thought);
            }
        }
    }
    if (!rc && has(cand, AR_LIT("finishReason"), &v))
        rc = finish_chunk(b, st, call, i,
                          ar_gem_finish_reason(raw_string(v), st->tool_seen & (1u << i)));
    return rc;
}

int ar_gem_parse_event(ar_provider_t *p, ar_call_t *call, const ar_sse_event_t *ev, ar_buf_t *out)
{
    (void)p;
    ar_span_t data = ev->data;
    while (data.len && (data.ptr[0] == ' ' || data.ptr[0] == '\n' || data.ptr[0] == '\r'))
        data = ar_span_skip(data, 1);
    while (data.len && (data.ptr[data.len - 1] == ' ' || data.ptr[data.len - 1] == '\n' ||
                        data.ptr[data.len - 1] == '\r'))
        data.len--;
    if (data.len == 0)
        return 0; /* a keep-alive */
    if (data.ptr[0] != '{' || ar_json_validate(data, NULL, 0) != 0)
        return AR_EUPSTREAM;
    ar_span_t v, cands, cand;
    if (has(data, AR_LIT("error"), &v))
        return AR_EUPSTREAM; /* an error object instead of a response: the stream failed */
    gem_stream_t *st = stream_state(call);
    if (has(data, AR_LIT("usageMetadata"), &v))
        ar_gem__read_usage(v, &call->usage);
    size_t start = out->len;
    int rc = 0;
    size_t n = 0;
    ar_jscan_iter_t it;
    if (has(data, AR_LIT("candidates"), &cands) && ar_jscan_array_begin(cands, &it) == 0) {
        while (!rc && ar_jscan_array_next(&it, &cand))
            rc = stream_candidate(out, st, call, cand, n++);
    }
    ar_span_t pf, br;
    if (!rc && n == 0 && has(data, AR_LIT("promptFeedback"), &pf) &&
        has(pf, AR_LIT("blockReason"), &br)) {
        rc = role_chunk(out, st, call, 0);
        rc = rc ? rc : finish_chunk(out, st, call, 0, "content_filter");
    }
    if (rc)
        out->len = start;
    return rc;
}

int ar_gem_end_stream(ar_provider_t *p, ar_call_t *call, ar_buf_t *out)
{
    (void)p;
    gem_stream_t *st = stream_state(call);
    int rc = 0;
    if (st->role_sent == 0)
        rc = role_chunk(out, st, call, 0);
    for (int i = 0; i < MAX_CANDIDATES && !rc; i++) {
        uint32_t bit = 1u << i;
        if ((st->role_sent & bit) && !(st->finish_sent & bit))
            rc = finish_chunk(out, st, call, i, st->tool_seen & bit ? "tool_calls" : "stop");
    }
    if (!rc && call->client_wants_usage) {
        rc = ar_buf_appendf(out,
                            "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\","
                            "\"created\":%ld,\"model\":\"",
                            st->id, st->created);
        rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(call->model));
        rc = rc ? rc : ar_buf_append_str(out, "\",\"choices\":[],");
        rc = rc ? rc : ar_gem__append_usage(out, &call->usage);
        rc = rc ? rc : ar_buf_append_str(out, "}\n\n");
    }
    rc = rc ? rc : ar_buf_append_str(out, "data: [DONE]\n\n");
    call->stream_done = true;
    return rc;
}
