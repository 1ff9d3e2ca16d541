/*
 * responses.c: OpenAI's Responses API (POST /v1/responses) for the mock upstream, what
 * Codex CLI and the newer OpenAI SDK calls speak. It answers like the chat route does: the
 * echo of the last user input (or of the output of a function_call_output that ends the
 * input) as one `message` output item, or a `function_call` item when function tools are
 * given and the text says "[tool]"; `reasoning.effort` adds a `reasoning` item in front.
 * Streams use the real semantic event sequence (response.created ... response.completed,
 * each event with its sequence_number, no [DONE]). Keys, errors and directives are the
 * OpenAI ones (the route uses mock_openai_api); bytes are written by hand as in openai.c.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mock.h"

#define TOOL_ARG_PIECES 3

static const char tool_args[] = "{\"x\":1}";
static const char reasoning_summary[] = "thinking";

/* ---- reading the request ---- */

static int invalid(mock_req_t *req, const char *message)
{
    mock_request_error(req, 400, "invalid_request_error", NULL, message);
    return -1;
}

/* Appends the text of a message content: a string, or its parts' "text" joined by a space
 * (input_text from the user, output_text in an assistant turn). */
static void add_content_text(mock_buf_t *b, const json_t *content)
{
    size_t i;
    json_t *part;
    size_t start = b->len;

    if (json_is_string(content)) {
        mock_buf_add_span(b, mock_json_span(content));
        return;
    }
    json_array_foreach (content, i, part) {
        mock_span_t t = mock_json_str(part, "text");
        if (t.ptr == NULL) {
            continue;
        }
        if (b->len > start) {
            mock_buf_addc(b, ' ');
        }
        mock_buf_add_span(b, t);
    }
}

static uint64_t content_chars(const json_t *content)
{
    size_t i;
    json_t *part;
    uint64_t n = 0;

    if (json_is_string(content)) {
        return mock_utf8_chars(mock_json_span(content));
    }
    json_array_foreach (content, i, part) {
        n += mock_utf8_chars(mock_json_str(part, "text"));
    }
    return n;
}

int mock_responses_prepare(mock_req_t *req, mock_span_t *text)
{
    json_t *input = json_object_get(req->json, "input");
    mock_buf_t *s = &req->conn->scratch;
    size_t n;

    if (mock_json_str(req->json, "model").ptr == NULL) {
        return invalid(req, "Missing required parameter: 'model'.");
    }
    if (input == NULL || json_is_null(input)) {
        return invalid(req, "Missing required parameter: 'input'.");
    }
    if (!json_is_string(input) && !json_is_array(input)) {
        return invalid(req, "Invalid type for 'input': expected a string or an array of input "
                            "items.");
    }
    if (json_is_string(input)) {
        *text = mock_json_span(input);
        return 0;
    }
    s->len = 0;
    s->failed = 0;
    n = json_array_size(input);
    if (n > 0 &&
        mock_span_eq(mock_json_str(json_array_get(input, n - 1), "type"), "function_call_output")) {
        /* a tool's result is answered with its own output */
        add_content_text(s, json_object_get(json_array_get(input, n - 1), "output"));
    } else {
        for (size_t i = n; i-- > 0;) {
            json_t *item = json_array_get(input, i);
            if (mock_span_eq(mock_json_str(item, "role"), "user")) {
                add_content_text(s, json_object_get(item, "content"));
                break;
            }
        }
    }
    *text = s->failed ? MOCK_LIT("") : mock_buf_span(s);
    return 0;
}

/* ---- answering ---- */

typedef struct resp_ctx {
    mock_req_t *req;
    mock_span_t model;
    mock_span_t answer; /* C */
    mock_span_t tool;   /* the function called, or absent */
    mock_span_t effort; /* reasoning.effort, absent when no reasoning item is sent */
    int usage;          /* usage=0 sends "usage":null */
    int encrypted;      /* reasoning items carry encrypted_content */
    int64_t created;
    uint64_t seq; /* next sequence_number */
    uint64_t input_tokens;
    uint64_t output_tokens;
    uint64_t reasoning_tokens;
    char *tools; /* the request's tools as compact JSON (echoed), or NULL */
} resp_ctx_t;

/* Input tokens: instructions and every text of the input (messages, tool outputs). */
static uint64_t count_input(const json_t *body)
{
    json_t *input = json_object_get(body, "input");
    uint64_t chars = mock_utf8_chars(mock_json_str(body, "instructions"));
    size_t i;
    json_t *item;

    if (json_is_string(input)) {
        chars += mock_utf8_chars(mock_json_span(input));
    }
    json_array_foreach (input, i, item) {
        chars += content_chars(json_object_get(item, "content"));
        chars += content_chars(json_object_get(item, "output"));
    }
    return mock_tokens_of_chars(chars);
}

/* The first function tool's name when the text says "[tool]". Codex's tools are
 * {"type":"function","name":..}; the chat shape {"function":{"name":..}} is accepted too. */
static mock_span_t tool_name(mock_req_t *req)
{
    json_t *tools = json_object_get(req->json, "tools");
    size_t i;
    json_t *t;

    if (!mock_span_contains(req->text, "[tool]")) {
        return (mock_span_t){NULL, 0};
    }
    json_array_foreach (tools, i, t) {
        mock_span_t name = mock_json_str(t, "name");
        if (!mock_span_eq(mock_json_str(t, "type"), "function")) {
            continue;
        }
        if (name.ptr == NULL) {
            name = mock_json_str(json_object_get(t, "function"), "name");
        }
        return name.ptr != NULL ? name : MOCK_LIT("tool");
    }
    return (mock_span_t){NULL, 0};
}

static void add_id(mock_buf_t *o, const char *prefix, uint64_t id)
{
    mock_buf_addc(o, '"');
    mock_buf_adds(o, prefix);
    mock_buf_add_u64(o, id);
    mock_buf_addc(o, '"');
}

/* Copies a request field into the answer as the API echoes it, or writes dflt. */
static void add_echo(mock_buf_t *o, const resp_ctx_t *x, const char *key, const char *dflt)
{
    json_t *v = json_object_get(x->req->json, key);

    if (json_is_string(v)) {
        mock_buf_add_jstr(o, mock_json_span(v));
    } else if (json_is_integer(v)) {
        mock_buf_add_i64(o, (int64_t)json_integer_value(v));
    } else if (json_is_boolean(v)) {
        mock_buf_adds(o, json_is_true(v) ? "true" : "false");
    } else {
        mock_buf_adds(o, dflt);
    }
}

/* include: ["reasoning.encrypted_content"] (what Codex asks for with store: false) adds an
 * opaque encrypted_content, as the API does, for the client to send back next turn. */
static void add_reasoning_item(mock_buf_t *o, const resp_ctx_t *x, int done)
{
    mock_buf_adds(o, "{\"id\":\"rs_mock_1\",\"type\":\"reasoning\",\"summary\":[");
    if (done) {
        mock_buf_adds(o, "{\"type\":\"summary_text\",\"text\":\"");
        mock_buf_adds(o, reasoning_summary);
        mock_buf_adds(o, "\"}");
    }
    mock_buf_addc(o, ']');
    if (x->encrypted) {
        mock_buf_adds(o, ",\"encrypted_content\":\"gAAAAA-mock-reasoning\"");
    }
    mock_buf_addc(o, '}');
}

static void add_message_item(mock_buf_t *o, const resp_ctx_t *x, int done)
{
    mock_buf_adds(o, "{\"id\":");
    add_id(o, "msg_mock_", x->req->id);
    mock_buf_adds(o, ",\"type\":\"message\",\"status\":");
    mock_buf_adds(o, done ? "\"completed\"" : "\"in_progress\"");
    mock_buf_adds(o, ",\"role\":\"assistant\",\"content\":[");
    if (done) {
        mock_buf_adds(o, "{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":");
        mock_buf_add_jstr(o, x->answer);
        mock_buf_addc(o, '}');
    }
    mock_buf_adds(o, "]}");
}

static void add_call_item(mock_buf_t *o, const resp_ctx_t *x, int done)
{
    mock_buf_adds(o, "{\"id\":\"fc_mock_1\",\"type\":\"function_call\",\"status\":");
    mock_buf_adds(o, done ? "\"completed\"" : "\"in_progress\"");
    mock_buf_adds(o, ",\"arguments\":");
    mock_buf_add_jstr(o, done ? MOCK_LIT(tool_args) : MOCK_LIT(""));
    mock_buf_adds(o, ",\"call_id\":\"call_mock_1\",\"name\":");
    mock_buf_add_jstr(o, x->tool);
    mock_buf_addc(o, '}');
}

static void add_usage(mock_buf_t *o, const resp_ctx_t *x)
{
    if (!x->usage) {
        mock_buf_adds(o, "null");
        return;
    }
    mock_buf_adds(o, "{\"input_tokens\":");
    mock_buf_add_u64(o, x->input_tokens);
    mock_buf_adds(o, ",\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":");
    mock_buf_add_u64(o, x->output_tokens);
    mock_buf_adds(o, ",\"output_tokens_details\":{\"reasoning_tokens\":");
    mock_buf_add_u64(o, x->reasoning_tokens);
    mock_buf_adds(o, "},\"total_tokens\":");
    mock_buf_add_u64(o, x->input_tokens + x->output_tokens);
    mock_buf_addc(o, '}');
}

/* The Response object. done: status completed with the output and usage; otherwise the
 * in_progress object of response.created / response.in_progress (no output, usage null). */
static void add_response(mock_buf_t *o, const resp_ctx_t *x, int done)
{
    json_t *reasoning = json_object_get(x->req->json, "reasoning");

    mock_buf_adds(o, "{\"id\":");
    add_id(o, "resp_mock_", x->req->id);
    mock_buf_adds(o, ",\"object\":\"response\",\"created_at\":");
    mock_buf_add_i64(o, x->created);
    mock_buf_adds(o, ",\"status\":");
    mock_buf_adds(o, done ? "\"completed\"" : "\"in_progress\"");
    mock_buf_adds(o, ",\"background\":false,\"error\":null,\"incomplete_details\":null,"
                     "\"instructions\":");
    add_echo(o, x, "instructions", "null");
    mock_buf_adds(o, ",\"max_output_tokens\":");
    add_echo(o, x, "max_output_tokens", "null");
    mock_buf_adds(o, ",\"model\":");
    mock_buf_add_jstr(o, x->model);
    mock_buf_adds(o, ",\"output\":[");
    if (done) {
        if (x->effort.ptr != NULL) {
            add_reasoning_item(o, x, 1);
            mock_buf_addc(o, ',');
        }
        if (x->tool.ptr != NULL) {
            add_call_item(o, x, 1);
        } else {
            add_message_item(o, x, 1);
        }
    }
    mock_buf_adds(o, "],\"parallel_tool_calls\":");
    add_echo(o, x, "parallel_tool_calls", "true");
    mock_buf_adds(o, ",\"previous_response_id\":");
    add_echo(o, x, "previous_response_id", "null");
    mock_buf_adds(o, ",\"reasoning\":{\"effort\":");
    if (json_is_string(json_object_get(reasoning, "effort"))) {
        mock_buf_add_jstr(o, mock_json_str(reasoning, "effort"));
    } else {
        mock_buf_adds(o, "null");
    }
    mock_buf_adds(o, ",\"summary\":");
    if (json_is_string(json_object_get(reasoning, "summary"))) {
        mock_buf_add_jstr(o, mock_json_str(reasoning, "summary"));
    } else {
        mock_buf_adds(o, "null");
    }
    mock_buf_adds(o, "},\"service_tier\":\"default\",\"store\":");
    add_echo(o, x, "store", "true");
    mock_buf_adds(o, ",\"temperature\":1.0,\"text\":{\"format\":{\"type\":\"text\"}},"
                     "\"tool_choice\":");
    add_echo(o, x, "tool_choice", "\"auto\"");
    mock_buf_adds(o, ",\"tools\":");
    mock_buf_adds(o, x->tools != NULL ? x->tools : "[]");
    mock_buf_adds(o, ",\"top_p\":1.0,\"truncation\":\"disabled\",\"usage\":");
    if (done) {
        add_usage(o, x);
    } else {
        mock_buf_adds(o, "null");
    }
    mock_buf_adds(o, ",\"user\":null,\"metadata\":{}}");
}

static void full(const resp_ctx_t *x)
{
    mock_buf_t *o = mock_resp_begin(x->req);

    add_response(o, x, 1);
    mock_resp_finish(x->req, 200, "application/json");
}

/* ---- streaming ---- */

/* One SSE event: "event: TYPE\ndata: {"type":"TYPE"" + the caller's fields, closed by
 * ev_close() with the sequence_number. */
static mock_buf_t *ev_open(resp_ctx_t *x, const char *type)
{
    mock_buf_t *o = mock_resp_event_begin(x->req);
    mock_buf_adds(o, "event: ");
    mock_buf_adds(o, type);
    mock_buf_adds(o, "\ndata: {\"type\":\"");
    mock_buf_adds(o, type);
    mock_buf_addc(o, '"');
    return o;
}

static void ev_close(resp_ctx_t *x, mock_buf_t *o)
{
    mock_buf_adds(o, ",\"sequence_number\":");
    mock_buf_add_u64(o, x->seq++);
    mock_buf_adds(o, "}\n\n");
    mock_resp_event_end(x->req);
}

/* ,"item_id":ID,"output_index":N */
static void add_item_ref(mock_buf_t *o, const char *id_prefix, uint64_t id, int index)
{
    mock_buf_adds(o, ",\"item_id\":\"");
    mock_buf_adds(o, id_prefix);
    if (id > 0) {
        mock_buf_add_u64(o, id);
    }
    mock_buf_adds(o, "\",\"output_index\":");
    mock_buf_add_u64(o, (uint64_t)index);
}

static void stream_reasoning(resp_ctx_t *x)
{
    mock_buf_t *o;

    o = ev_open(x, "response.output_item.added");
    mock_buf_adds(o, ",\"output_index\":0,\"item\":");
    add_reasoning_item(o, x, 0);
    ev_close(x, o);

    o = ev_open(x, "response.reasoning_summary_part.added");
    add_item_ref(o, "rs_mock_1", 0, 0);
    mock_buf_adds(o, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}");
    ev_close(x, o);

    o = ev_open(x, "response.reasoning_summary_text.delta");
    add_item_ref(o, "rs_mock_1", 0, 0);
    mock_buf_adds(o, ",\"summary_index\":0,\"delta\":\"");
    mock_buf_adds(o, reasoning_summary);
    mock_buf_addc(o, '"');
    ev_close(x, o);

    o = ev_open(x, "response.reasoning_summary_text.done");
    add_item_ref(o, "rs_mock_1", 0, 0);
    mock_buf_adds(o, ",\"summary_index\":0,\"text\":\"");
    mock_buf_adds(o, reasoning_summary);
    mock_buf_addc(o, '"');
    ev_close(x, o);

    o = ev_open(x, "response.reasoning_summary_part.done");
    add_item_ref(o, "rs_mock_1", 0, 0);
    mock_buf_adds(o, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"");
    mock_buf_adds(o, reasoning_summary);
    mock_buf_adds(o, "\"}");
    ev_close(x, o);

    o = ev_open(x, "response.output_item.done");
    mock_buf_adds(o, ",\"output_index\":0,\"item\":");
    add_reasoning_item(o, x, 1);
    ev_close(x, o);
}

/* The deltas of the text (or of the call's arguments), marking where reset=mid_stream
 * cuts: after half of them. */
static void stream_deltas(resp_ctx_t *x, int index)
{
    mock_req_t *req = x->req;
    int tool = x->tool.ptr != NULL;
    mock_span_t body = tool ? MOCK_LIT(tool_args) : x->answer;
    int n = req->dirs.chunks > 0 ? req->dirs.chunks : (tool ? TOOL_ARG_PIECES : 0);
    size_t total = mock_pieces_count(body, n);
    size_t k = 0;
    mock_pieces_t p;
    mock_span_t piece;
    mock_buf_t *o;

    if (total / 2 == 0) {
        mock_resp_mark_mid(req);
    }
    mock_pieces_init(&p, body, n);
    while (mock_pieces_next(&p, &piece)) {
        if (tool) {
            o = ev_open(x, "response.function_call_arguments.delta");
            add_item_ref(o, "fc_mock_1", 0, index);
        } else {
            o = ev_open(x, "response.output_text.delta");
            add_item_ref(o, "msg_mock_", req->id, index);
            mock_buf_adds(o, ",\"content_index\":0,\"logprobs\":[]");
        }
        mock_buf_adds(o, ",\"delta\":");
        mock_buf_add_jstr(o, piece);
        ev_close(x, o);
        k++;
        if (k == total / 2) {
            mock_resp_mark_mid(req);
        }
    }
}

static void stream_message(resp_ctx_t *x, int index)
{
    mock_buf_t *o;

    o = ev_open(x, "response.output_item.added");
    mock_buf_adds(o, ",\"output_index\":");
    mock_buf_add_u64(o, (uint64_t)index);
    mock_buf_adds(o, ",\"item\":");
    add_message_item(o, x, 0);
    ev_close(x, o);

    o = ev_open(x, "response.content_part.added");
    add_item_ref(o, "msg_mock_", x->req->id, index);
    mock_buf_adds(o, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],"
                     "\"logprobs\":[],\"text\":\"\"}");
    ev_close(x, o);

    stream_deltas(x, index);

    o = ev_open(x, "response.output_text.done");
    add_item_ref(o, "msg_mock_", x->req->id, index);
    mock_buf_adds(o, ",\"content_index\":0,\"logprobs\":[],\"text\":");
    mock_buf_add_jstr(o, x->answer);
    ev_close(x, o);

    o = ev_open(x, "response.content_part.done");
    add_item_ref(o, "msg_mock_", x->req->id, index);
    mock_buf_adds(o, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],"
                     "\"logprobs\":[],\"text\":");
    mock_buf_add_jstr(o, x->answer);
    mock_buf_addc(o, '}');
    ev_close(x, o);

    o = ev_open(x, "response.output_item.done");
    mock_buf_adds(o, ",\"output_index\":");
    mock_buf_add_u64(o, (uint64_t)index);
    mock_buf_adds(o, ",\"item\":");
    add_message_item(o, x, 1);
    ev_close(x, o);
}

static void stream_call(resp_ctx_t *x, int index)
{
    mock_buf_t *o;

    o = ev_open(x, "response.output_item.added");
    mock_buf_adds(o, ",\"output_index\":");
    mock_buf_add_u64(o, (uint64_t)index);
    mock_buf_adds(o, ",\"item\":");
    add_call_item(o, x, 0);
    ev_close(x, o);

    stream_deltas(x, index);

    o = ev_open(x, "response.function_call_arguments.done");
    add_item_ref(o, "fc_mock_1", 0, index);
    mock_buf_adds(o, ",\"name\":");
    mock_buf_add_jstr(o, x->tool);
    mock_buf_adds(o, ",\"arguments\":");
    mock_buf_add_jstr(o, MOCK_LIT(tool_args));
    ev_close(x, o);

    o = ev_open(x, "response.output_item.done");
    mock_buf_adds(o, ",\"output_index\":");
    mock_buf_add_u64(o, (uint64_t)index);
    mock_buf_adds(o, ",\"item\":");
    add_call_item(o, x, 1);
    ev_close(x, o);
}

static void stream(resp_ctx_t *x)
{
    mock_req_t *req = x->req;
    int index = 0;
    mock_buf_t *o;

    mock_resp_stream_begin(req, 200, "text/event-stream");

    o = ev_open(x, "response.created");
    mock_buf_adds(o, ",\"response\":");
    add_response(o, x, 0);
    ev_close(x, o);

    o = ev_open(x, "response.in_progress");
    mock_buf_adds(o, ",\"response\":");
    add_response(o, x, 0);
    ev_close(x, o);

    if (x->effort.ptr != NULL) {
        stream_reasoning(x);
        index++;
    }
    if (x->tool.ptr != NULL) {
        stream_call(x, index);
    } else {
        stream_message(x, index);
    }
    if (req->dirs.malformed == 1) {
        mock_buf_t *m = mock_resp_event_begin(req);
        mock_buf_adds(m, "event: response.output_text.delta\ndata: {not json\n\n");
        mock_resp_event_end(req);
    }

    o = ev_open(x, "response.completed");
    mock_buf_adds(o, ",\"response\":");
    add_response(o, x, 1);
    ev_close(x, o);
    mock_resp_stream_finish(req);
}

void mock_responses_create(mock_req_t *req)
{
    mock_buf_t *s = &req->conn->scratch;
    json_t *tools = json_object_get(req->json, "tools");
    json_t *reasoning = json_object_get(req->json, "reasoning");
    mock_span_t effort = mock_json_str(reasoning, "effort");
    json_t *inc;
    size_t i;
    resp_ctx_t x;

    memset(&x, 0, sizeof(x));
    x.req = req;
    x.model = mock_json_str(req->json, "model");
    x.usage = req->dirs.usage != 0;
    x.created = (int64_t)time(NULL);
    req->id = mock_next_id(req->srv);
    x.input_tokens = count_input(req->json);
    x.tool = tool_name(req);
    json_array_foreach (json_object_get(req->json, "include"), i, inc) {
        x.encrypted |= mock_span_eq(mock_json_span(inc), "reasoning.encrypted_content");
    }
    if (effort.ptr != NULL && !mock_span_eq(effort, "none")) {
        x.effort = effort;
        x.reasoning_tokens = 1;
    }
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
        x.output_tokens = mock_tokens_of_chars(x.tool.len + sizeof(tool_args) - 1);
    } else {
        x.output_tokens = mock_count_words(x.answer);
    }
    x.output_tokens += x.reasoning_tokens;
    if (json_is_array(tools)) {
        /* echoed as the API does; allocation is fine off the benchmark path */
        x.tools = json_dumps(tools, JSON_COMPACT);
    }
    if (json_is_true(json_object_get(req->json, "stream"))) {
        stream(&x);
    } else {
        full(&x);
    }
    free(x.tools);
}
