/*
 * anthropic.c: Anthropic's Messages API wire format for the mock upstream. POST /v1/messages
 * needs `anthropic-version` (and `x-api-key` under --require-key), is validated the way the
 * real API validates what a translator gets wrong (alternating roles, non-empty text blocks,
 * tool results that answer the previous turn's tool_use), and answers by echoing the last
 * user message (or its tool_result content) as a text block, or as a tool_use block when
 * tools are given and the message says "[tool]". stop_sequences and max_tokens cut the echo
 * as the real model stops. Streams use the real event sequence; errors Anthropic's shape.
 * Answers are written by hand into the connection's buffers, as openai.c does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define TOOL_ARG_PIECES 3

static const char tool_args[] = "{\"x\":1}";

/* ---- errors ---- */

static const char *error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 409: return "conflict_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* The type is decided by the status, as Anthropic does; the dispatcher's OpenAI-flavoured
 * type and code are only used to spot a --require-key refusal. */
static void anthropic_error(mock_req_t *req, int status, const char *type, const char *code,
                            const char *message)
{
    mock_buf_t *o;

    (void)type;
    if (status == 401 && code != NULL && strcmp(code, "invalid_api_key") == 0) {
        message = "invalid x-api-key";
    }
    o = mock_resp_begin(req);
    mock_buf_adds(o, "{\"type\":\"error\",\"error\":{\"type\":\"");
    mock_buf_adds(o, error_type(status));
    mock_buf_adds(o, "\",\"message\":");
    mock_buf_add_jstr(o, (mock_span_t){message, strlen(message)});
    mock_buf_adds(o, "},\"request_id\":\"req_mock_");
    mock_buf_add_u64(o, mock_next_id(req->srv));
    mock_buf_adds(o, "\"}");
    mock_resp_finish(req, status, "application/json");
}

const mock_api_t mock_anthropic_api = {
    .name = "anthropic",
    .auth_header = "x-api-key",
    .auth_prefix = "",
    .error = anthropic_error,
};

/* ---- reading the request ---- */

static int invalid(mock_req_t *req, const char *message)
{
    mock_request_error(req, 400, NULL, NULL, message);
    return -1;
}

/* Appends the text of a content value (string, or its text blocks joined by a space). */
static void add_text(mock_buf_t *b, const json_t *content)
{
    size_t i;
    json_t *block;

    if (json_is_string(content)) {
        mock_buf_add_span(b, mock_json_span(content));
        return;
    }
    json_array_foreach (content, i, block) {
        mock_span_t t = mock_json_str(block, "text");
        if (t.ptr == NULL || !mock_span_eq(mock_json_str(block, "type"), "text")) {
            continue;
        }
        if (b->len > 0) {
            mock_buf_addc(b, ' ');
        }
        mock_buf_add_span(b, t);
    }
}

/* Characters of every text the model would read in a content value. */
static uint64_t content_chars(const json_t *content)
{
    size_t i;
    json_t *block;
    uint64_t n = 0;

    if (json_is_string(content)) {
        return mock_utf8_chars(mock_json_span(content));
    }
    json_array_foreach (content, i, block) {
        n += mock_utf8_chars(mock_json_str(block, "text"));
        n += content_chars(json_object_get(block, "content")); /* tool_result */
    }
    return n;
}

/* Is id the id of a tool_use block of this (assistant) message? */
static int has_tool_use(const json_t *msg, const char *id)
{
    json_t *content = json_object_get(msg, "content");
    size_t i;
    json_t *block;

    json_array_foreach (content, i, block) {
        if (mock_span_eq(mock_json_str(block, "type"), "tool_use") &&
            mock_span_eq(mock_json_str(block, "id"), id)) {
            return 1;
        }
    }
    return 0;
}

/* The checks the real API makes on what a translator produces. */
static int check_messages(mock_req_t *req, const json_t *messages)
{
    size_t i;
    size_t k;
    json_t *m;
    json_t *block;
    json_t *prev = NULL;

    json_array_foreach (messages, i, m) {
        mock_span_t role = mock_json_str(m, "role");
        json_t *content = json_object_get(m, "content");

        /* system entries between the turns (Claude Code's per-turn controls) are accepted
         * and take no part in the alternation */
        if (mock_span_eq(role, "system")) {
            if (!json_is_string(content) && !json_is_array(content)) {
                return invalid(req, "messages: content must be a string or a list of blocks");
            }
            continue;
        }
        if (!mock_span_eq(role, "user") && !mock_span_eq(role, "assistant")) {
            return invalid(req, "messages: roles must be 'user', 'assistant' or 'system'");
        }
        if (prev != NULL && mock_span_eq(mock_json_str(prev, "role"), role.ptr)) {
            return invalid(req, "messages: roles must alternate between 'user' and 'assistant'");
        }
        if (!json_is_string(content) && !json_is_array(content)) {
            return invalid(req, "messages: content must be a string or a list of blocks");
        }
        json_array_foreach (content, k, block) {
            mock_span_t type = mock_json_str(block, "type");
            if (mock_span_eq(type, "text") && mock_json_str(block, "text").len == 0) {
                return invalid(req, "messages: text content blocks must be non-empty");
            }
            if (mock_span_eq(type, "tool_use") &&
                !json_is_object(json_object_get(block, "input"))) {
                return invalid(req, "messages: tool_use.input must be an object");
            }
            if (mock_span_eq(type, "tool_result") &&
                (prev == NULL || mock_json_str(block, "tool_use_id").ptr == NULL ||
                 !has_tool_use(prev, mock_json_str(block, "tool_use_id").ptr))) {
                return invalid(req, "messages: unexpected `tool_use_id` found in `tool_result` "
                                    "blocks: each tool_result must answer a tool_use block of the "
                                    "previous message");
            }
        }
        prev = m;
    }
    return 0;
}

int mock_anthropic_prepare(mock_req_t *req, mock_span_t *text)
{
    json_t *messages = json_object_get(req->json, "messages");
    json_t *max_tokens = json_object_get(req->json, "max_tokens");
    mock_buf_t *s = &req->conn->scratch;
    json_t *last = NULL;
    json_t *block;
    size_t i;

    if (mock_req_header(req, "anthropic-version").ptr == NULL) {
        return invalid(req, "anthropic-version: header is required");
    }
    if (mock_json_str(req->json, "model").ptr == NULL) {
        return invalid(req, "model: Field required");
    }
    if (!json_is_integer(max_tokens) || json_integer_value(max_tokens) < 1) {
        return invalid(req, "max_tokens: Field required");
    }
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        return invalid(req, "messages: Field required");
    }
    if (check_messages(req, messages) != 0) {
        return -1;
    }
    for (i = json_array_size(messages); i-- > 0;) {
        if (mock_span_eq(mock_json_str(json_array_get(messages, i), "role"), "user")) {
            last = json_array_get(messages, i);
            break;
        }
    }
    s->len = 0;
    s->failed = 0;
    if (last != NULL) {
        json_t *content = json_object_get(last, "content");
        json_t *result = NULL;
        json_array_foreach (content, i, block) {
            if (mock_span_eq(mock_json_str(block, "type"), "tool_result")) {
                result = block;
                break;
            }
        }
        /* a tool result is answered with its own content */
        add_text(s, result != NULL ? json_object_get(result, "content") : content);
    }
    *text = s->failed ? MOCK_LIT("") : mock_buf_span(s);
    return 0;
}

/* ---- answering ---- */

typedef struct anth_ctx {
    mock_req_t *req;
    mock_span_t model;
    mock_span_t answer; /* the text, after the cuts */
    mock_span_t tool;   /* the tool called, or absent */
    const char *stop_reason;
    mock_span_t stop_sequence; /* absent unless stop_reason is stop_sequence */
    uint64_t input_tokens;
    uint64_t cache_read;
    uint64_t output_tokens;
} anth_ctx_t;

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Cuts the answer at the first stop sequence it contains. */
static void apply_stop_sequences(anth_ctx_t *x)
{
    json_t *seqs = json_object_get(x->req->json, "stop_sequences");
    size_t best = SIZE_MAX;
    size_t i;
    json_t *seq;

    json_array_foreach (seqs, i, seq) {
        mock_span_t s = mock_json_span(seq);
        if (s.len == 0 || s.len > x->answer.len) {
            continue;
        }
        for (size_t at = 0; at + s.len <= x->answer.len && at < best; at++) {
            if (memcmp(x->answer.ptr + at, s.ptr, s.len) == 0) {
                best = at;
                x->stop_sequence = s;
                break;
            }
        }
    }
    if (best != SIZE_MAX) {
        x->answer.len = best;
        x->stop_reason = "stop_sequence";
    }
}

/* Cuts the answer after max_tokens words (one word is one token here). */
static void apply_max_tokens(anth_ctx_t *x)
{
    json_int_t max = json_integer_value(json_object_get(x->req->json, "max_tokens"));
    const char *s = x->answer.ptr;
    size_t len = x->answer.len;
    size_t pos = 0;
    json_int_t words = 0;

    if ((uint64_t)max >= mock_count_words(x->answer)) {
        return;
    }
    while (pos < len && words < max) {
        while (pos < len && is_space(s[pos])) {
            pos++;
        }
        while (pos < len && !is_space(s[pos])) {
            pos++;
        }
        words++;
    }
    x->answer.len = pos;
    x->stop_reason = "max_tokens";
    x->stop_sequence = (mock_span_t){NULL, 0};
}

static mock_span_t tool_name(mock_req_t *req)
{
    json_t *tools = json_object_get(req->json, "tools");
    mock_span_t name;

    if (json_array_size(tools) == 0 || !mock_span_contains(req->text, "[tool]")) {
        return (mock_span_t){NULL, 0};
    }
    name = mock_json_str(json_array_get(tools, 0), "name");
    return name.ptr != NULL ? name : MOCK_LIT("tool");
}

/* Input tokens: all text the model reads; system blocks marked cache_control count as a
 * cache hit (cache_read_input_tokens), so the usage mapping can be tested end to end. */
static void count_input(anth_ctx_t *x)
{
    json_t *system = json_object_get(x->req->json, "system");
    json_t *messages = json_object_get(x->req->json, "messages");
    uint64_t chars = 0;
    uint64_t cached = 0;
    size_t i;
    json_t *v;

    if (json_is_string(system)) {
        chars += mock_utf8_chars(mock_json_span(system));
    }
    json_array_foreach (system, i, v) {
        uint64_t n = mock_utf8_chars(mock_json_str(v, "text"));
        if (json_object_get(v, "cache_control") != NULL) {
            cached += n;
        } else {
            chars += n;
        }
    }
    json_array_foreach (messages, i, v) {
        chars += content_chars(json_object_get(v, "content"));
    }
    x->input_tokens = mock_tokens_of_chars(chars);
    x->cache_read = cached > 0 ? mock_tokens_of_chars(cached) : 0;
}

static void add_usage(mock_buf_t *o, const anth_ctx_t *x, uint64_t output_tokens)
{
    mock_buf_adds(o, "\"usage\":{\"input_tokens\":");
    mock_buf_add_u64(o, x->input_tokens);
    mock_buf_adds(o, ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":");
    mock_buf_add_u64(o, x->cache_read);
    mock_buf_adds(o, ",\"output_tokens\":");
    mock_buf_add_u64(o, output_tokens);
    mock_buf_addc(o, '}');
}

static void add_stop(mock_buf_t *o, const anth_ctx_t *x)
{
    mock_buf_adds(o, "\"stop_reason\":\"");
    mock_buf_adds(o, x->stop_reason);
    mock_buf_adds(o, "\",\"stop_sequence\":");
    if (x->stop_sequence.ptr != NULL) {
        mock_buf_add_jstr(o, x->stop_sequence);
    } else {
        mock_buf_adds(o, "null");
    }
}

static void add_id(mock_buf_t *o, const anth_ctx_t *x)
{
    mock_buf_adds(o, "\"id\":\"msg_mock_");
    mock_buf_add_u64(o, x->req->id);
    mock_buf_adds(o, "\"");
}

static void full(const anth_ctx_t *x)
{
    mock_buf_t *o = mock_resp_begin(x->req);

    mock_buf_addc(o, '{');
    add_id(o, x);
    mock_buf_adds(o, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    mock_buf_add_jstr(o, x->model);
    if (x->tool.ptr != NULL) {
        mock_buf_adds(o, ",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_mock_1\",\"name\":");
        mock_buf_add_jstr(o, x->tool);
        mock_buf_adds(o, ",\"input\":");
        mock_buf_adds(o, tool_args);
        mock_buf_adds(o, "}],");
    } else {
        mock_buf_adds(o, ",\"content\":[{\"type\":\"text\",\"text\":");
        mock_buf_add_jstr(o, x->answer);
        mock_buf_adds(o, "}],");
    }
    add_stop(o, x);
    mock_buf_addc(o, ',');
    add_usage(o, x, x->output_tokens);
    mock_buf_addc(o, '}');
    mock_resp_finish(x->req, 200, "application/json");
}

/* One SSE event: "event: NAME\ndata: " + the caller's JSON + "\n\n". */
static mock_buf_t *ev_open(const anth_ctx_t *x, const char *name)
{
    mock_buf_t *o = mock_resp_event_begin(x->req);
    mock_buf_adds(o, "event: ");
    mock_buf_adds(o, name);
    mock_buf_adds(o, "\ndata: ");
    return o;
}

static void ev_close(const anth_ctx_t *x, mock_buf_t *o)
{
    mock_buf_add(o, "\n\n", 2);
    mock_resp_event_end(x->req);
}

/* The next piece of s from *pos: a word with its trailing whitespace, or, with n pieces
 * wanted, about len/n bytes (never splitting a UTF-8 sequence). */
static int next_piece(mock_span_t s, size_t *pos, int n, size_t idx, mock_span_t *out)
{
    size_t start = *pos;
    size_t p = *pos;

    if (p >= s.len) {
        return 0;
    }
    if (n <= 0) {
        while (p < s.len && is_space(s.ptr[p])) {
            p++;
        }
        while (p < s.len && !is_space(s.ptr[p])) {
            p++;
        }
        while (p < s.len && is_space(s.ptr[p])) {
            p++;
        }
    } else {
        size_t end = (idx + 1) * s.len / (size_t)n;
        p = end > p ? end : p + 1;
        while (p < s.len && ((unsigned char)s.ptr[p] & 0xC0) == 0x80) {
            p++;
        }
    }
    *pos = p;
    *out = (mock_span_t){s.ptr + start, p - start};
    return 1;
}

static size_t count_pieces(mock_span_t s, int n)
{
    size_t pos = 0;
    size_t cnt = 0;
    mock_span_t piece;

    while (next_piece(s, &pos, n, cnt, &piece)) {
        cnt++;
    }
    return cnt;
}

static void stream(const anth_ctx_t *x)
{
    mock_req_t *req = x->req;
    int tool = x->tool.ptr != NULL;
    mock_span_t body = tool ? MOCK_LIT(tool_args) : x->answer;
    int n = req->dirs.chunks > 0 ? req->dirs.chunks : (tool ? TOOL_ARG_PIECES : 0);
    size_t total = count_pieces(body, n);
    size_t pos = 0;
    size_t k = 0;
    mock_span_t piece;
    mock_buf_t *o;

    mock_resp_stream_begin(req, 200, "text/event-stream");

    o = ev_open(x, "message_start");
    mock_buf_adds(o, "{\"type\":\"message_start\",\"message\":{");
    add_id(o, x);
    mock_buf_adds(o, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    mock_buf_add_jstr(o, x->model);
    mock_buf_adds(o, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,");
    add_usage(o, x, 1);
    mock_buf_adds(o, "}}");
    ev_close(x, o);

    o = ev_open(x, "content_block_start");
    if (tool) {
        mock_buf_adds(o,
                      "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
                      "\"tool_use\",\"id\":\"toolu_mock_1\",\"name\":");
        mock_buf_add_jstr(o, x->tool);
        mock_buf_adds(o, ",\"input\":{}}}");
    } else {
        mock_buf_adds(o,
                      "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
                      "\"text\",\"text\":\"\"}}");
    }
    ev_close(x, o);

    o = ev_open(x, "ping");
    mock_buf_adds(o, "{\"type\": \"ping\"}");
    ev_close(x, o);
    if (tool) {
        /* the API opens a tool input with an empty piece */
        o = ev_open(x, "content_block_delta");
        mock_buf_adds(o, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                         "\"input_json_delta\",\"partial_json\":\"\"}}");
        ev_close(x, o);
    }
    if (total / 2 == 0) {
        mock_resp_mark_mid(req);
    }

    while (next_piece(body, &pos, n, k, &piece)) {
        o = ev_open(x, "content_block_delta");
        if (tool) {
            mock_buf_adds(o, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                             "\"input_json_delta\",\"partial_json\":");
        } else {
            mock_buf_adds(o, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                             "\"text_delta\",\"text\":");
        }
        mock_buf_add_jstr(o, piece);
        mock_buf_adds(o, "}}");
        ev_close(x, o);
        k++;
        if (k == total / 2) {
            mock_resp_mark_mid(req);
        }
    }

    o = ev_open(x, "content_block_stop");
    mock_buf_adds(o, "{\"type\":\"content_block_stop\",\"index\":0}");
    ev_close(x, o);

    o = ev_open(x, "message_delta");
    mock_buf_adds(o, "{\"type\":\"message_delta\",\"delta\":{");
    add_stop(o, x);
    mock_buf_adds(o, "},\"usage\":{\"output_tokens\":");
    mock_buf_add_u64(o, x->output_tokens);
    mock_buf_adds(o, "}}");
    ev_close(x, o);

    if (req->dirs.malformed == 1) {
        o = ev_open(x, "content_block_delta");
        mock_buf_adds(o, "{not json");
        ev_close(x, o);
    }
    o = ev_open(x, "message_stop");
    mock_buf_adds(o, "{\"type\":\"message_stop\"}");
    ev_close(x, o);
    mock_resp_stream_finish(req);
}

void mock_anthropic_messages(mock_req_t *req)
{
    mock_buf_t *s = &req->conn->scratch;
    anth_ctx_t x;

    memset(&x, 0, sizeof(x));
    x.req = req;
    x.model = mock_json_str(req->json, "model");
    x.stop_reason = "end_turn";
    req->id = mock_next_id(req->srv);
    count_input(&x);
    x.tool = tool_name(req);
    if (req->dirs.content.ptr != NULL) {
        x.answer = req->dirs.content;
    } else {
        s->len = 0;
        s->failed = 0;
        mock_buf_add(s, "echo: ", 6);
        mock_buf_add_span(s, req->text);
        x.answer = s->failed ? MOCK_LIT("echo: ") : mock_buf_span(s);
    }
    if (x.tool.ptr != NULL) {
        x.stop_reason = "tool_use";
        x.output_tokens = mock_tokens_of_chars(x.tool.len + sizeof(tool_args) - 1);
    } else {
        apply_stop_sequences(&x);
        apply_max_tokens(&x);
        x.output_tokens = mock_count_words(x.answer);
    }
    if (json_is_true(json_object_get(req->json, "stream"))) {
        stream(&x);
        return;
    }
    full(&x);
}
