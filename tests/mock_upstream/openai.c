/*
 * openai.c: the OpenAI wire format of the mock upstream: chat completions (plain, streamed,
 * tool calls), legacy completions, embeddings, the model list, and OpenAI-shaped error
 * bodies. Answers are written by hand into the connection's out buffer (no JSON library on
 * the way out) so the benchmark path allocates nothing beyond parsing the request. Timing
 * and faults are applied by response.c; this file only decides what the bytes are.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mock.h"

#define DEFAULT_EMBED_DIMS 8
#define TOOL_ARG_PIECES 3

static const char tool_args[] = "{\"x\":1}";

/* ---- errors ---- */

typedef struct err_default {
    int status;
    const char *type;
    const char *code;
} err_default_t;

static const err_default_t err_defaults[] = {
    {400, "invalid_request_error", NULL},
    {401, "authentication_error", "invalid_api_key"},
    {403, "permission_error", NULL},
    {404, "not_found_error", "model_not_found"},
    {408, "timeout_error", "timeout"},
    {409, "conflict_error", NULL},
    {413, "invalid_request_error", "request_too_large"},
    {422, "invalid_request_error", NULL},
    {429, "requests", "rate_limit_exceeded"},
    {500, "server_error", NULL},
    {502, "server_error", "bad_gateway"},
    {503, "server_error", "service_unavailable"},
    {504, "server_error", "timeout"},
    {529, "server_error", "overloaded"},
};

static void openai_error(mock_req_t *req, int status, const char *type, const char *code,
                         const char *message)
{
    mock_buf_t *o;

    if (type == NULL) {
        type = status >= 500 ? "server_error" : "invalid_request_error";
        for (size_t i = 0; i < sizeof(err_defaults) / sizeof(err_defaults[0]); i++) {
            if (err_defaults[i].status == status) {
                type = err_defaults[i].type;
                code = code != NULL ? code : err_defaults[i].code;
                break;
            }
        }
    }
    o = mock_resp_begin(req);
    mock_buf_adds(o, "{\"error\":{\"message\":");
    mock_buf_add_jstr(o, (mock_span_t){message, strlen(message)});
    mock_buf_adds(o, ",\"type\":");
    mock_buf_add_jstr(o, (mock_span_t){type, strlen(type)});
    mock_buf_adds(o, ",\"param\":null,\"code\":");
    if (code != NULL) {
        mock_buf_add_jstr(o, (mock_span_t){code, strlen(code)});
    } else {
        mock_buf_adds(o, "null");
    }
    mock_buf_adds(o, "}}");
    mock_resp_finish(req, status, "application/json");
}

const mock_api_t mock_openai_api = {
    .name = "openai",
    .auth_header = "authorization",
    .auth_prefix = "Bearer ",
    .error = openai_error,
};

/* ---- shared pieces ---- */

/* What every answer of one request shares. */
typedef struct oai_ctx {
    mock_req_t *req;
    mock_span_t model;
    int stream;
    int include_usage; /* stream_options.include_usage: chunks carry "usage":null */
    int usage;         /* the usage object / chunk is sent (usage=0 turns it off) */
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    mock_span_t prefix; /* {"id":..,"object":..,"created":..,"model":.. (in conn->aux) */
} oai_ctx_t;

/* object names the response type, chunk_object the type of its stream chunks. */
static void ctx_init(oai_ctx_t *x, mock_req_t *req, const char *id_prefix, const char *object,
                     const char *chunk_object)
{
    mock_buf_t *a = &req->conn->aux;
    json_t *opts = json_object_get(req->json, "stream_options");

    memset(x, 0, sizeof(*x));
    x->req = req;
    x->model = mock_json_str(req->json, "model");
    x->stream = json_is_true(json_object_get(req->json, "stream"));
    x->include_usage = x->stream && json_is_true(json_object_get(opts, "include_usage"));
    x->usage = req->dirs.usage != 0;
    req->id = mock_next_id(req->srv);

    a->len = 0;
    a->failed = 0;
    mock_buf_adds(a, "{\"id\":\"");
    mock_buf_adds(a, id_prefix);
    mock_buf_add_u64(a, req->id);
    mock_buf_adds(a, "\",\"object\":\"");
    mock_buf_adds(a, x->stream ? chunk_object : object);
    mock_buf_adds(a, "\",\"created\":");
    mock_buf_add_i64(a, (int64_t)time(NULL));
    mock_buf_adds(a, ",\"model\":");
    mock_buf_add_jstr(a, x->model);
    x->prefix = a->failed ? MOCK_LIT("{\"id\":\"mock\"") : mock_buf_span(a);
}

static void add_usage(mock_buf_t *o, const oai_ctx_t *x)
{
    mock_buf_adds(o, "\"usage\":{\"prompt_tokens\":");
    mock_buf_add_u64(o, x->prompt_tokens);
    mock_buf_adds(o, ",\"completion_tokens\":");
    mock_buf_add_u64(o, x->completion_tokens);
    mock_buf_adds(o, ",\"total_tokens\":");
    mock_buf_add_u64(o, x->prompt_tokens + x->completion_tokens);
    mock_buf_addc(o, '}');
}

/* Stream events: "data: " + prefix + caller's fields + optional "usage":null + "}". */
static mock_buf_t *ev_open(const oai_ctx_t *x)
{
    mock_buf_t *o = mock_resp_event_begin(x->req);
    mock_buf_add(o, "data: ", 6);
    mock_buf_add_span(o, x->prefix);
    return o;
}

static void ev_close(const oai_ctx_t *x, mock_buf_t *o)
{
    if (x->include_usage) {
        mock_buf_adds(o, ",\"usage\":null");
    }
    mock_buf_add(o, "}\n\n", 3);
    mock_resp_event_end(x->req);
}

static void ev_raw(const oai_ctx_t *x, const char *text)
{
    mock_buf_t *o = mock_resp_event_begin(x->req);
    mock_buf_adds(o, text);
    mock_resp_event_end(x->req);
}

/* What Azure sends first in every chat stream, byte for byte: the prompt's content-filter
 * verdict, in a chunk with an empty object and no choices (the prompt_filter directive). */
static void prompt_filter_chunk(const oai_ctx_t *x)
{
    if (x->req->dirs.prompt_filter == 1) {
        ev_raw(x, "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
                  "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}"
                  "\n\n");
    }
}

/* The usage-only chunk, the optional malformed event, then [DONE]. */
static void stream_tail(const oai_ctx_t *x)
{
    if (x->include_usage && x->usage) {
        mock_buf_t *o = ev_open(x);
        mock_buf_adds(o, ",\"choices\":[],");
        add_usage(o, x);
        mock_buf_add(o, "}\n\n", 3);
        mock_resp_event_end(x->req);
    }
    if (x->req->dirs.malformed == 1) {
        ev_raw(x, "data: {not json\n\n");
    }
    ev_raw(x, "data: [DONE]\n\n");
    mock_resp_stream_finish(x->req);
}

/* Text of a message content: a string, or the "text" of its parts joined by spaces (built
 * in scratch). */
static mock_span_t content_text(mock_req_t *req, const json_t *content, mock_buf_t *scratch)
{
    size_t i;
    json_t *part;
    int first = 1;

    if (json_is_string(content)) {
        return mock_json_span(content);
    }
    if (!json_is_array(content)) {
        return MOCK_LIT("");
    }
    (void)req;
    scratch->len = 0;
    scratch->failed = 0;
    json_array_foreach (content, i, part) {
        mock_span_t t = mock_json_str(part, "text");
        if (t.ptr == NULL) {
            continue;
        }
        if (!first) {
            mock_buf_addc(scratch, ' ');
        }
        mock_buf_add_span(scratch, t);
        first = 0;
    }
    return scratch->failed || scratch->len == 0 ? MOCK_LIT("") : mock_buf_span(scratch);
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

static int require_model(mock_req_t *req)
{
    if (mock_json_str(req->json, "model").ptr == NULL) {
        mock_request_error(req, 400, "invalid_request_error", NULL,
                           "you must provide a model parameter");
        return -1;
    }
    return 0;
}

/* The answer text C: the content directive, or "echo: " + the prepared text (in scratch). */
static mock_span_t answer_text(mock_req_t *req)
{
    mock_buf_t *s = &req->conn->scratch;

    if (req->dirs.content.ptr != NULL) {
        return req->dirs.content;
    }
    s->len = 0;
    s->failed = 0;
    mock_buf_add(s, "echo: ", 6);
    mock_buf_add_span(s, req->text);
    return s->failed ? MOCK_LIT("echo: ") : mock_buf_span(s);
}

/* ---- chat completions ---- */

int mock_openai_chat_prepare(mock_req_t *req, mock_span_t *text)
{
    json_t *messages = json_object_get(req->json, "messages");

    if (require_model(req) != 0) {
        return -1;
    }
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        mock_request_error(req, 400, "invalid_request_error", NULL,
                           "Missing required parameter: 'messages'.");
        return -1;
    }
    *text = MOCK_LIT("");
    for (size_t i = json_array_size(messages); i-- > 0;) {
        json_t *m = json_array_get(messages, i);
        if (mock_span_eq(mock_json_str(m, "role"), "user")) {
            *text = content_text(req, json_object_get(m, "content"), &req->conn->scratch);
            break;
        }
    }
    return 0;
}

static void chat_stream(oai_ctx_t *x, mock_span_t answer, mock_span_t tool)
{
    mock_req_t *req = x->req;
    mock_span_t body = tool.ptr != NULL ? MOCK_LIT(tool_args) : answer;
    int n = req->dirs.chunks > 0 ? req->dirs.chunks : (tool.ptr != NULL ? TOOL_ARG_PIECES : 0);
    size_t total = mock_pieces_count(body, n);
    size_t k = 0;
    mock_pieces_t p;
    mock_span_t piece;
    mock_buf_t *o;

    mock_resp_stream_begin(req, 200, "text/event-stream");
    prompt_filter_chunk(x);

    o = ev_open(x);
    if (tool.ptr != NULL) {
        mock_buf_adds(o, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                         "\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_mock_1\","
                         "\"type\":\"function\",\"function\":{\"name\":");
        mock_buf_add_jstr(o, tool);
        mock_buf_adds(o, ",\"arguments\":\"\"}}]},\"finish_reason\":null}]");
    } else {
        mock_buf_adds(o, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                         "\"content\":\"\"},\"finish_reason\":null}]");
    }
    ev_close(x, o);
    if (total / 2 == 0) {
        mock_resp_mark_mid(req);
    }

    mock_pieces_init(&p, body, n);
    while (mock_pieces_next(&p, &piece)) {
        o = ev_open(x);
        if (tool.ptr != NULL) {
            mock_buf_adds(o, ",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                             "\"function\":{\"arguments\":");
            mock_buf_add_jstr(o, piece);
            mock_buf_adds(o, "}}]},\"finish_reason\":null}]");
        } else {
            mock_buf_adds(o, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
            mock_buf_add_jstr(o, piece);
            mock_buf_adds(o, "},\"finish_reason\":null}]");
        }
        ev_close(x, o);
        k++;
        if (k == total / 2) {
            mock_resp_mark_mid(req);
        }
    }

    o = ev_open(x);
    mock_buf_adds(o, ",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":");
    mock_buf_adds(o, tool.ptr != NULL ? "\"tool_calls\"}]" : "\"stop\"}]");
    ev_close(x, o);
    stream_tail(x);
}

static void chat_full(oai_ctx_t *x, mock_span_t answer, mock_span_t tool)
{
    mock_buf_t *o = mock_resp_begin(x->req);

    mock_buf_add_span(o, x->prefix);
    mock_buf_adds(o, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",");
    if (tool.ptr != NULL) {
        mock_buf_adds(o, "\"content\":null,\"tool_calls\":[{\"id\":\"call_mock_1\",\"type\":"
                         "\"function\",\"function\":{\"name\":");
        mock_buf_add_jstr(o, tool);
        mock_buf_adds(o, ",\"arguments\":");
        mock_buf_add_jstr(o, MOCK_LIT(tool_args));
        mock_buf_adds(o, "}}]},\"finish_reason\":\"tool_calls\"}]");
    } else {
        mock_buf_adds(o, "\"content\":");
        mock_buf_add_jstr(o, answer);
        mock_buf_adds(o, "},\"finish_reason\":\"stop\"}]");
    }
    if (x->usage) {
        mock_buf_addc(o, ',');
        add_usage(o, x);
    }
    mock_buf_addc(o, '}');
    mock_resp_finish(x->req, 200, "application/json");
}

/* The first tool's name when the request has tools and the prompt says "[tool]". */
static mock_span_t tool_name(mock_req_t *req)
{
    json_t *tools = json_object_get(req->json, "tools");
    json_t *t0;
    mock_span_t name;

    if (json_array_size(tools) == 0 || !mock_span_contains(req->text, "[tool]")) {
        return (mock_span_t){NULL, 0};
    }
    t0 = json_array_get(tools, 0);
    name = mock_json_str(json_object_get(t0, "function"), "name");
    if (name.ptr == NULL) {
        name = mock_json_str(t0, "name");
    }
    return name.ptr != NULL ? name : MOCK_LIT("tool");
}

void mock_openai_chat(mock_req_t *req)
{
    oai_ctx_t x;
    json_t *messages = json_object_get(req->json, "messages");
    json_t *m;
    size_t i;
    uint64_t chars = 0;
    mock_span_t tool;
    mock_span_t answer;

    ctx_init(&x, req, "chatcmpl-mock-", "chat.completion", "chat.completion.chunk");
    json_array_foreach (messages, i, m) {
        chars += content_chars(json_object_get(m, "content"));
    }
    x.prompt_tokens = mock_tokens_of_chars(chars);
    tool = tool_name(req);
    answer = answer_text(req);
    if (tool.ptr != NULL) {
        x.completion_tokens = mock_tokens_of_chars(tool.len + sizeof(tool_args) - 1);
    } else {
        x.completion_tokens = mock_count_words(answer);
    }
    if (x.stream) {
        chat_stream(&x, answer, tool);
        return;
    }
    chat_full(&x, answer, tool);
}

/* ---- legacy completions ---- */

int mock_openai_completions_prepare(mock_req_t *req, mock_span_t *text)
{
    json_t *prompt = json_object_get(req->json, "prompt");

    if (require_model(req) != 0) {
        return -1;
    }
    if (json_is_string(prompt)) {
        *text = mock_json_span(prompt);
    } else if (json_is_array(prompt)) {
        *text = json_is_string(json_array_get(prompt, 0))
                    ? mock_json_span(json_array_get(prompt, 0))
                    : MOCK_LIT("");
    } else {
        mock_request_error(req, 400, "invalid_request_error", NULL,
                           "Missing required parameter: 'prompt'.");
        return -1;
    }
    return 0;
}

/* Prompt size: characters of strings, or the count of token ids. */
static uint64_t prompt_units(const json_t *v, int *is_tokens)
{
    size_t i;
    json_t *e;
    uint64_t n = 0;

    if (json_is_string(v)) {
        return mock_utf8_chars(mock_json_span(v));
    }
    json_array_foreach (v, i, e) {
        if (json_is_integer(e)) {
            *is_tokens = 1;
            n++;
        } else if (json_is_string(e)) {
            n += mock_utf8_chars(mock_json_span(e));
        } else if (json_is_array(e)) {
            *is_tokens = 1;
            n += json_array_size(e);
        }
    }
    return n;
}

void mock_openai_completions(mock_req_t *req)
{
    oai_ctx_t x;
    int tokens = 0;
    uint64_t units = prompt_units(json_object_get(req->json, "prompt"), &tokens);
    mock_span_t answer;
    mock_buf_t *o;

    ctx_init(&x, req, "cmpl-mock-", "text_completion", "text_completion");
    x.prompt_tokens = tokens ? (units ? units : 1) : mock_tokens_of_chars(units);
    answer = answer_text(req);
    x.completion_tokens = mock_count_words(answer);

    if (x.stream) {
        int n = req->dirs.chunks > 0 ? req->dirs.chunks : 0;
        size_t total = mock_pieces_count(answer, n);
        size_t k = 0;
        mock_pieces_t p;
        mock_span_t piece;

        mock_resp_stream_begin(req, 200, "text/event-stream");
        if (total / 2 == 0) {
            mock_resp_mark_mid(req);
        }
        mock_pieces_init(&p, answer, n);
        while (mock_pieces_next(&p, &piece)) {
            o = ev_open(&x);
            mock_buf_adds(o, ",\"choices\":[{\"text\":");
            mock_buf_add_jstr(o, piece);
            mock_buf_adds(o, ",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]");
            ev_close(&x, o);
            k++;
            if (k == total / 2) {
                mock_resp_mark_mid(req);
            }
        }
        o = ev_open(&x);
        mock_buf_adds(o, ",\"choices\":[{\"text\":\"\",\"index\":0,\"logprobs\":null,"
                         "\"finish_reason\":\"stop\"}]");
        ev_close(&x, o);
        stream_tail(&x);
        return;
    }
    o = mock_resp_begin(req);
    mock_buf_add_span(o, x.prefix);
    mock_buf_adds(o, ",\"choices\":[{\"text\":");
    mock_buf_add_jstr(o, answer);
    mock_buf_adds(o, ",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}]");
    if (x.usage) {
        mock_buf_addc(o, ',');
        add_usage(o, &x);
    }
    mock_buf_addc(o, '}');
    mock_resp_finish(req, 200, "application/json");
}

/* ---- embeddings ---- */

int mock_openai_embeddings_prepare(mock_req_t *req, mock_span_t *text)
{
    json_t *input = json_object_get(req->json, "input");
    json_t *dims = json_object_get(req->json, "dimensions");

    if (require_model(req) != 0) {
        return -1;
    }
    if (!json_is_string(input) && (!json_is_array(input) || json_array_size(input) == 0)) {
        mock_request_error(req, 400, "invalid_request_error", NULL,
                           "'input' must be a string, an array of strings or token arrays");
        return -1;
    }
    if (dims != NULL && (!json_is_integer(dims) || json_integer_value(dims) < 1 ||
                         json_integer_value(dims) > MOCK_EMBED_DIMS_MAX)) {
        mock_request_error(req, 400, "invalid_request_error", NULL,
                           "'dimensions' must be an integer between 1 and 4096");
        return -1;
    }
    if (json_is_string(input)) {
        *text = mock_json_span(input);
    } else if (json_is_string(json_array_get(input, 0))) {
        *text = mock_json_span(json_array_get(input, 0));
    } else {
        *text = MOCK_LIT("");
    }
    return 0;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A unit vector derived from the seed only: the same input always gives the same vector. */
static void embed_vector(uint64_t seed, float *v, int dims)
{
    double norm = 0;
    for (int j = 0; j < dims; j++) {
        double d = (double)(splitmix(&seed) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
        v[j] = (float)d;
        norm += d * d;
    }
    norm = norm > 0 ? 1.0 / sqrt(norm) : 0;
    for (int j = 0; j < dims; j++) {
        v[j] = (float)(v[j] * norm);
    }
}

/* Writes v with 6 decimals, without printf. */
static void add_float6(mock_buf_t *o, float v)
{
    int64_t m = (int64_t)(v * 1e6 + (v < 0 ? -0.5 : 0.5));
    char frac[6];

    if (m < 0) {
        mock_buf_addc(o, '-');
        m = -m;
    }
    mock_buf_add_u64(o, (uint64_t)(m / 1000000));
    mock_buf_addc(o, '.');
    m %= 1000000;
    for (int i = 5; i >= 0; i--) {
        frac[i] = (char)('0' + m % 10);
        m /= 10;
    }
    mock_buf_add(o, frac, sizeof(frac));
}

static void add_base64(mock_buf_t *o, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;

    for (; i + 3 <= n; i += 3) {
        char q[4] = {tab[p[i] >> 2], tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
                     tab[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)], tab[p[i + 2] & 63]};
        mock_buf_add(o, q, 4);
    }
    if (n - i == 1) {
        char q[4] = {tab[p[i] >> 2], tab[(p[i] & 3) << 4], '=', '='};
        mock_buf_add(o, q, 4);
    } else if (n - i == 2) {
        char q[4] = {tab[p[i] >> 2], tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
                     tab[(p[i + 1] & 15) << 2], '='};
        mock_buf_add(o, q, 4);
    }
}

/* One input's seed: its text (the first string without its directive bracket), or its
 * token ids. @return the input's size in characters; a token id counts as 4 characters,
 * so that it ends up as one prompt token. */
static uint64_t input_seed(mock_req_t *req, const json_t *in, size_t idx, uint64_t *seed)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;
    json_t *e;

    if (json_is_string(in)) {
        mock_span_t s = idx == 0 ? req->text : mock_json_span(in);
        *seed = fnv1a(h, s.ptr, s.len);
        return mock_utf8_chars(s);
    }
    json_array_foreach (in, i, e) {
        json_int_t t = json_integer_value(e);
        h = fnv1a(h, &t, sizeof(t));
    }
    *seed = h;
    return json_array_size(in) * 4;
}

void mock_openai_embeddings(mock_req_t *req)
{
    json_t *input = json_object_get(req->json, "input");
    json_t *dims_j = json_object_get(req->json, "dimensions");
    int dims = dims_j != NULL ? (int)json_integer_value(dims_j) : DEFAULT_EMBED_DIMS;
    int b64 = mock_span_eq(mock_json_str(req->json, "encoding_format"), "base64");
    float vec[MOCK_EMBED_DIMS_MAX];
    uint64_t chars = 0;
    size_t cnt;
    json_t *single = NULL;
    mock_buf_t *o;
    oai_ctx_t x;

    ctx_init(&x, req, "embd-mock-", "list", "list");
    /* A string, or an array of integers, is one input; other arrays hold one per element. */
    if (json_is_string(input) || json_is_integer(json_array_get(input, 0))) {
        single = input;
        cnt = 1;
    } else {
        cnt = json_array_size(input);
    }
    o = mock_resp_begin(req);
    mock_buf_adds(o, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < cnt; i++) {
        json_t *in = single != NULL ? single : json_array_get(input, i);
        uint64_t seed = 0;

        chars += input_seed(req, in, i, &seed);
        embed_vector(seed, vec, dims);
        if (i > 0) {
            mock_buf_addc(o, ',');
        }
        mock_buf_adds(o, "{\"object\":\"embedding\",\"index\":");
        mock_buf_add_u64(o, i);
        mock_buf_adds(o, ",\"embedding\":");
        if (b64) {
            mock_buf_addc(o, '"');
            add_base64(o, (const unsigned char *)vec, (size_t)dims * sizeof(float));
            mock_buf_addc(o, '"');
        } else {
            mock_buf_addc(o, '[');
            for (int j = 0; j < dims; j++) {
                if (j > 0) {
                    mock_buf_addc(o, ',');
                }
                add_float6(o, vec[j]);
            }
            mock_buf_addc(o, ']');
        }
        mock_buf_addc(o, '}');
    }
    x.prompt_tokens = mock_tokens_of_chars(chars);
    mock_buf_adds(o, "],\"model\":");
    mock_buf_add_jstr(o, x.model);
    if (x.usage) {
        mock_buf_adds(o, ",\"usage\":{\"prompt_tokens\":");
        mock_buf_add_u64(o, x.prompt_tokens);
        mock_buf_adds(o, ",\"total_tokens\":");
        mock_buf_add_u64(o, x.prompt_tokens);
        mock_buf_addc(o, '}');
    }
    mock_buf_addc(o, '}');
    mock_resp_finish(req, 200, "application/json");
}

/* ---- models ---- */

static void add_model(mock_buf_t *b, const char *id)
{
    mock_buf_adds(b, "{\"id\":");
    mock_buf_add_jstr(b, (mock_span_t){id, strlen(id)});
    mock_buf_adds(b, ",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"}");
}

int mock_openai_models_init(mock_server_t *srv)
{
    mock_buf_t b;

    mock_buf_init(&b, 1u << 24);
    mock_buf_adds(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < srv->opts.models_cnt; i++) {
        if (i > 0) {
            mock_buf_addc(&b, ',');
        }
        add_model(&b, srv->opts.models[i]);
    }
    mock_buf_adds(&b, "]}");
    if (b.failed) {
        mock_buf_dispose(&b);
        return -1;
    }
    srv->models_body = b.data;
    srv->models_body_len = b.len;
    return 0;
}

void mock_openai_models(mock_req_t *req)
{
    mock_resp_simple(req, 200, "application/json",
                     (mock_span_t){req->srv->models_body, req->srv->models_body_len});
}

void mock_openai_model_get(mock_req_t *req)
{
    mock_span_t id = {req->path.ptr + 11, req->path.len - 11}; /* after "/v1/models/" */
    char msg[200];

    for (size_t i = 0; i < req->srv->opts.models_cnt; i++) {
        if (mock_span_eq(id, req->srv->opts.models[i])) {
            mock_buf_t *o = mock_resp_begin(req);
            add_model(o, req->srv->opts.models[i]);
            mock_resp_finish(req, 200, "application/json");
            return;
        }
    }
    snprintf(msg, sizeof(msg), "The model '%.*s' does not exist or you do not have access to it.",
             (int)(id.len > 100 ? 100 : id.len), id.ptr);
    mock_request_error(req, 404, "invalid_request_error", "model_not_found", msg);
}
