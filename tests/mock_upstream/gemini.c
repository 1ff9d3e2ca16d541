/*
 * gemini.c: Google's wire formats in the mock upstream: the Gemini API (generateContent,
 * streamGenerateContent with or without alt=sse, embedContent, batchEmbedContents; key in
 * x-goog-api-key or ?key=), the same generation routes under Vertex AI paths plus :predict
 * for text embeddings (an OAuth bearer token this mock issued, or x-goog-api-key), and an
 * OAuth 2.0 token endpoint for service accounts (POST /token: the JWT bearer grant, whose
 * RS256 signature is checked against --oauth-public-key). Errors have Google's shape. The
 * requests are validated the way Google does it (unknown fields, roles, empty parts are
 * 400s), so a translation mistake in airouter fails loudly. Answers are built with jansson:
 * this is not the benchmark path.
 */
#include <math.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define DEFAULT_EMBED_DIMS 8
#define MAX_CANDIDATES 8
#define TOKENS_MAX 4096
#define JWT_MAX_BYTES 16384
#define JWT_SKEW_S 300
#define SCOPE "https://www.googleapis.com/auth/cloud-platform"

/* ---- errors ---- */

static const struct {
    int status;
    const char *name;
} google_statuses[] = {
    {400, "INVALID_ARGUMENT"}, {401, "UNAUTHENTICATED"},   {403, "PERMISSION_DENIED"},
    {404, "NOT_FOUND"},        {409, "ABORTED"},           {429, "RESOURCE_EXHAUSTED"},
    {499, "CANCELLED"},        {500, "INTERNAL"},          {501, "UNIMPLEMENTED"},
    {503, "UNAVAILABLE"},      {504, "DEADLINE_EXCEEDED"},
};

static const char *google_status(int status)
{
    for (size_t i = 0; i < sizeof(google_statuses) / sizeof(google_statuses[0]); i++) {
        if (google_statuses[i].status == status) {
            return google_statuses[i].name;
        }
    }
    return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
}

/* {"error":{"code":N,"message":"...","status":"RESOURCE_EXHAUSTED"}}. type is used as the
 * status when it is one of Google's (upper case); the generic code passes OpenAI types. */
static void google_error(mock_req_t *req, int status, const char *type, const char *code,
                         const char *message)
{
    const char *st =
        type != NULL && type[0] >= 'A' && type[0] <= 'Z' ? type : google_status(status);
    mock_buf_t *o = mock_resp_begin(req);

    (void)code;
    mock_buf_adds(o, "{\"error\":{\"code\":");
    mock_buf_add_u64(o, (uint64_t)status);
    mock_buf_adds(o, ",\"message\":");
    mock_buf_add_jstr(o, (mock_span_t){message, strlen(message)});
    mock_buf_adds(o, ",\"status\":");
    mock_buf_add_jstr(o, (mock_span_t){st, strlen(st)});
    mock_buf_adds(o, "}}");
    mock_resp_finish(req, status, "application/json");
}

/* OAuth errors (RFC 6749 section 5.2): {"error":"invalid_grant","error_description":"..."}. */
static void oauth_error(mock_req_t *req, int status, const char *type, const char *code,
                        const char *message)
{
    const char *err = code != NULL && type == NULL ? code : NULL;
    mock_buf_t *o = mock_resp_begin(req);

    if (err == NULL) {
        err = status == 401 ? "invalid_client" : status >= 500 ? "server_error" : "invalid_request";
    }
    mock_buf_adds(o, "{\"error\":");
    mock_buf_add_jstr(o, (mock_span_t){err, strlen(err)});
    mock_buf_adds(o, ",\"error_description\":");
    mock_buf_add_jstr(o, (mock_span_t){message, strlen(message)});
    mock_buf_addc(o, '}');
    mock_resp_finish(req, status, "application/json");
}

const mock_api_t mock_gemini_api = {
    .name = "gemini",
    .auth_header = "x-goog-api-key",
    .auth_prefix = "",
    .error = google_error,
};

const mock_api_t mock_vertex_api = {
    .name = "vertex",
    .auth_header = "authorization",
    .auth_prefix = "Bearer ",
    .error = google_error,
};

const mock_api_t mock_oauth_api = {
    .name = "oauth",
    .auth_header = "authorization",
    .auth_prefix = "Bearer ",
    .error = oauth_error,
};

static void bad_request(mock_req_t *req, const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, arg != NULL ? arg : "");
    google_error(req, 400, "INVALID_ARGUMENT", NULL, msg);
}

/* Answers a JSON value (borrowed), with vectors at Gemini's precision. */
static void send_json(mock_req_t *req, const json_t *v)
{
    char *dump = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (dump == NULL) {
        google_error(req, 500, NULL, NULL, "mock: out of memory");
        return;
    }
    mock_resp_simple(req, 200, "application/json", (mock_span_t){dump, strlen(dump)});
    free(dump);
}

/* ---- issued access tokens (shared by all workers) ---- */

typedef struct issued {
    char token[64];
    int64_t expires_ms;
} issued_t;

static struct {
    pthread_mutex_t lock;
    EVP_PKEY *pubkey;
    issued_t *tokens; /* ring of the last TOKENS_MAX */
    size_t cnt, next;
} oauth = {.lock = PTHREAD_MUTEX_INITIALIZER};

int mock_oauth_init(mock_server_t *srv)
{
    const char *path = srv->opts.oauth_public_key;
    FILE *f;

    if (path == NULL) {
        return 0;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "mock_upstream: cannot read --oauth-public-key %s\n", path);
        return -1;
    }
    oauth.pubkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (oauth.pubkey == NULL) {
        fprintf(stderr, "mock_upstream: %s holds no PEM public key\n", path);
        ERR_clear_error();
        return -1;
    }
    oauth.tokens = calloc(TOKENS_MAX, sizeof(issued_t));
    return oauth.tokens != NULL ? 0 : -1;
}

void mock_oauth_dispose(void)
{
    EVP_PKEY_free(oauth.pubkey);
    oauth.pubkey = NULL;
    free(oauth.tokens);
    oauth.tokens = NULL;
}

static int token_valid(mock_span_t t)
{
    int ok = 0;
    int64_t now = mock_now_ms();

    pthread_mutex_lock(&oauth.lock);
    for (size_t i = 0; i < oauth.cnt && !ok; i++) {
        ok = mock_span_eq(t, oauth.tokens[i].token) && oauth.tokens[i].expires_ms > now;
    }
    pthread_mutex_unlock(&oauth.lock);
    return ok;
}

/* ---- small helpers ---- */

/* The value of name in a query or form text (URL-decoded into out). @return 0 or -1. */
static int form_value(mock_span_t q, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    size_t i = 0;

    while (i < q.len) {
        size_t end = i;
        while (end < q.len && q.ptr[end] != '&') {
            end++;
        }
        if (end - i > nl && memcmp(q.ptr + i, name, nl) == 0 && q.ptr[i + nl] == '=') {
            size_t o = 0;
            for (size_t k = i + nl + 1; k < end; k++) {
                char c = q.ptr[k];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && k + 2 < end) {
                    char hx[3] = {q.ptr[k + 1], q.ptr[k + 2], 0};
                    c = (char)strtol(hx, NULL, 16);
                    k += 2;
                }
                if (o + 1 >= cap) {
                    return -1;
                }
                out[o++] = c;
            }
            out[o] = '\0';
            return 0;
        }
        i = end + 1;
    }
    return -1;
}

/* The model segment of a path: between "models/" and ':'. */
static mock_span_t path_model(const mock_req_t *req)
{
    const char *p = req->path.ptr;
    size_t n = req->path.len;
    size_t start = 0;
    size_t end;

    for (size_t i = 0; i + 7 <= n; i++) {
        if (memcmp(p + i, "models/", 7) == 0) {
            start = i + 7;
        }
    }
    end = start;
    while (end < n && p[end] != ':') {
        end++;
    }
    return (mock_span_t){p + start, end - start};
}

static int key_in_query(mock_req_t *req)
{
    char key[256];
    return form_value(req->query, "key", key, sizeof(key)) == 0 && key[0] != '\0';
}

static int check_gemini_auth(mock_req_t *req)
{
    if (req->token.ptr != NULL && req->token.len > 0) {
        return 0;
    }
    if (key_in_query(req)) {
        return 0;
    }
    google_error(req, 403, NULL, NULL,
                 "Method doesn't allow unregistered callers (callers without established "
                 "identity). Please use API Key or other form of API consumer identity to call "
                 "this API.");
    return -1;
}

static int check_vertex_auth(mock_req_t *req)
{
    mock_span_t key = mock_req_header(req, "x-goog-api-key");

    if (req->token.ptr != NULL && req->token.len > 0) {
        if (token_valid(req->token)) {
            return 0;
        }
    } else if (key.ptr != NULL && key.len > 0) {
        return 0;
    }
    google_error(req, 401, NULL, NULL,
                 "Request had invalid authentication credentials. Expected OAuth 2 access "
                 "token, login cookie or other valid authentication credential.");
    return -1;
}

/* ---- request validation ---- */

static int known(const char *key, const char *const *names)
{
    for (; *names != NULL; names++) {
        if (strcmp(key, *names) == 0) {
            return 1;
        }
    }
    return 0;
}

static int check_fields(mock_req_t *req, const json_t *obj, const char *const *names,
                        const char *where)
{
    const char *key;
    json_t *v;
    char msg[300];

    json_object_foreach ((json_t *)obj, key, v) {
        if (!known(key, names)) {
            snprintf(msg, sizeof(msg),
                     "Invalid JSON payload received. Unknown name \"%s\" at '%s': Cannot find "
                     "field.",
                     key, where);
            google_error(req, 400, "INVALID_ARGUMENT", NULL, msg);
            return -1;
        }
    }
    return 0;
}

static const char *const top_fields[] = {
    "contents",       "systemInstruction", "tools",  "toolConfig", "generationConfig",
    "safetySettings", "cachedContent",     "labels", "model",      NULL};
static const char *const gen_fields[] = {"temperature",
                                         "topP",
                                         "topK",
                                         "candidateCount",
                                         "maxOutputTokens",
                                         "stopSequences",
                                         "responseMimeType",
                                         "responseSchema",
                                         "responseJsonSchema",
                                         "presencePenalty",
                                         "frequencyPenalty",
                                         "seed",
                                         "responseLogprobs",
                                         "logprobs",
                                         "thinkingConfig",
                                         "responseModalities",
                                         NULL};
static const char *const part_data[] = {
    "text",           "inlineData",          "fileData", "functionCall", "functionResponse",
    "executableCode", "codeExecutionResult", NULL};

/* A Content: parts non-empty, each with exactly one data field. */
static int check_content(mock_req_t *req, const json_t *c, int need_role)
{
    json_t *parts = json_object_get(c, "parts");
    const char *role = json_string_value(json_object_get(c, "role"));
    size_t i;
    json_t *p;

    if (!json_is_object(c)) {
        bad_request(req, "Invalid value at 'contents': not an object%s", NULL);
        return -1;
    }
    if (need_role && role != NULL && strcmp(role, "user") != 0 && strcmp(role, "model") != 0) {
        bad_request(req, "Please use a valid role: user, model.%s", NULL);
        return -1;
    }
    if (!json_is_array(parts) || json_array_size(parts) == 0) {
        bad_request(req,
                    "* GenerateContentRequest.contents.parts: contents.parts must not be "
                    "empty.%s",
                    NULL);
        return -1;
    }
    json_array_foreach (parts, i, p) {
        int data = 0;
        const char *key;
        json_t *v;
        json_object_foreach (p, key, v) {
            data += known(key, part_data);
        }
        if (data != 1) {
            bad_request(req, "required oneof field 'data' must have one initialized field%s", NULL);
            return -1;
        }
        if (json_object_get(p, "text") != NULL &&
            (!json_is_string(json_object_get(p, "text")) ||
             json_string_length(json_object_get(p, "text")) == 0)) {
            bad_request(req,
                        "Unable to submit request because it has an empty text "
                        "parameter.%s",
                        NULL);
            return -1;
        }
    }
    return 0;
}

/* Text of a Content's parts joined by a space; a functionResponse contributes its response
 * as compact JSON. Built in conn->scratch. */
static mock_span_t content_text(mock_req_t *req, const json_t *c)
{
    mock_buf_t *s = &req->conn->scratch;
    json_t *parts = json_object_get(c, "parts");
    size_t i;
    json_t *p;

    s->len = 0;
    s->failed = 0;
    json_array_foreach (parts, i, p) {
        json_t *t = json_object_get(p, "text");
        json_t *fr = json_object_get(p, "functionResponse");
        if (json_is_string(t)) {
            if (s->len > 0) {
                mock_buf_addc(s, ' ');
            }
            mock_buf_add_span(s, mock_json_span(t));
        } else if (fr != NULL) {
            char *dump = json_dumps(json_object_get(fr, "response"), JSON_COMPACT | JSON_SORT_KEYS);
            if (dump != NULL) {
                if (s->len > 0) {
                    mock_buf_addc(s, ' ');
                }
                mock_buf_adds(s, dump);
                free(dump);
            }
        }
    }
    return s->failed ? MOCK_LIT("") : mock_buf_span(s);
}

static uint64_t content_chars(const json_t *c)
{
    json_t *parts = json_object_get(c, "parts");
    size_t i;
    json_t *p;
    uint64_t n = 0;

    json_array_foreach (parts, i, p) {
        n += mock_utf8_chars(mock_json_str(p, "text"));
    }
    return n;
}

static int generate_prepare(mock_req_t *req, mock_span_t *text)
{
    json_t *contents = json_object_get(req->json, "contents");
    json_t *sys = json_object_get(req->json, "systemInstruction");
    json_t *gc = json_object_get(req->json, "generationConfig");
    json_t *tools = json_object_get(req->json, "tools");
    size_t i;
    json_t *c;

    if (check_fields(req, req->json, top_fields, "") != 0) {
        return -1;
    }
    if (gc != NULL && check_fields(req, gc, gen_fields, "generation_config") != 0) {
        return -1;
    }
    if (!json_is_array(contents) || json_array_size(contents) == 0) {
        bad_request(req, "* GenerateContentRequest.contents: contents is not specified%s", NULL);
        return -1;
    }
    json_array_foreach (contents, i, c) {
        if (check_content(req, c, 1) != 0) {
            return -1;
        }
    }
    if (sys != NULL && check_content(req, sys, 0) != 0) {
        return -1;
    }
    json_array_foreach (tools, i, c) {
        size_t k;
        json_t *d;
        json_array_foreach (json_object_get(c, "functionDeclarations"), k, d) {
            if (mock_json_str(d, "name").ptr == NULL) {
                bad_request(req,
                            "* GenerateContentRequest.tools[0].function_declarations[0]."
                            "name: Name cannot be empty.%s",
                            NULL);
                return -1;
            }
        }
    }
    *text = MOCK_LIT("");
    for (i = json_array_size(contents); i-- > 0;) {
        c = json_array_get(contents, i);
        if (!mock_span_eq(mock_json_str(c, "role"), "model")) {
            *text = content_text(req, c);
            break;
        }
    }
    return 0;
}

int mock_gemini_prepare(mock_req_t *req, mock_span_t *text)
{
    return check_gemini_auth(req) != 0 ? -1 : generate_prepare(req, text);
}

int mock_vertex_prepare(mock_req_t *req, mock_span_t *text)
{
    return check_vertex_auth(req) != 0 ? -1 : generate_prepare(req, text);
}

/* ---- generation ---- */

typedef struct gen {
    mock_req_t *req;
    mock_span_t model;
    mock_span_t tool;   /* the function to call, or absent */
    json_t *answer_val; /* the text part's value */
    int candidates;
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
} gen_t;

static mock_span_t first_declaration(mock_req_t *req)
{
    json_t *tools = json_object_get(req->json, "tools");
    size_t i;
    json_t *t;

    if (!mock_span_contains(req->text, "[tool]")) {
        return (mock_span_t){NULL, 0};
    }
    json_array_foreach (tools, i, t) {
        json_t *d = json_array_get(json_object_get(t, "functionDeclarations"), 0);
        if (d != NULL) {
            return mock_json_str(d, "name");
        }
    }
    return (mock_span_t){NULL, 0};
}

static void gen_init(gen_t *g, mock_req_t *req)
{
    json_t *gc = json_object_get(req->json, "generationConfig");
    json_t *cc = json_object_get(gc, "candidateCount");
    json_t *contents = json_object_get(req->json, "contents");
    mock_buf_t *a = &req->conn->aux;
    mock_span_t answer;
    uint64_t chars = content_chars(json_object_get(req->json, "systemInstruction"));
    size_t i;
    json_t *c;

    memset(g, 0, sizeof(*g));
    g->req = req;
    g->model = path_model(req);
    g->tool = first_declaration(req);
    g->candidates = json_is_integer(cc) ? (int)json_integer_value(cc) : 1;
    if (g->candidates < 1 || g->candidates > MAX_CANDIDATES) {
        g->candidates = 1;
    }
    req->id = mock_next_id(req->srv);
    json_array_foreach (contents, i, c) {
        chars += content_chars(c);
    }
    g->prompt_tokens = mock_tokens_of_chars(chars);

    /* C = the content directive, or "echo: " + the prepared text */
    a->len = 0;
    a->failed = 0;
    if (req->dirs.content.ptr != NULL) {
        mock_buf_add_span(a, req->dirs.content);
    } else {
        mock_buf_adds(a, "echo: ");
        mock_buf_add_span(a, req->text);
    }
    answer = a->failed ? MOCK_LIT("echo: ") : mock_buf_span(a);
    if (mock_span_eq(mock_json_str(gc, "responseMimeType"), "application/json")) {
        /* JSON mode: the answer as a JSON document */
        json_t *doc = json_pack("{s:s%}", "echo", answer.ptr, answer.len);
        char *dump = json_dumps(doc, JSON_COMPACT);
        g->answer_val = json_string(dump != NULL ? dump : "{}");
        free(dump);
        json_decref(doc);
    } else {
        g->answer_val = json_stringn(answer.ptr, answer.len);
    }
    if (g->answer_val == NULL) {
        g->answer_val = json_string("");
    }
    if (g->tool.ptr != NULL) {
        g->completion_tokens = mock_tokens_of_chars(g->tool.len + 7);
    } else {
        g->completion_tokens = mock_count_words(mock_json_span(g->answer_val));
    }
}

static json_t *usage_json(const gen_t *g)
{
    return json_pack("{s:I, s:I, s:I}", "promptTokenCount", (json_int_t)g->prompt_tokens,
                     "candidatesTokenCount", (json_int_t)g->completion_tokens, "totalTokenCount",
                     (json_int_t)(g->prompt_tokens + g->completion_tokens));
}

/* A candidate with the given parts (taken) and finish reason (NULL: none yet). */
static json_t *candidate(json_t *parts, int index, const char *finish)
{
    json_t *c = json_pack("{s:{s:o, s:s}, s:i}", "content", "parts", parts, "role", "model",
                          "index", index);
    if (finish != NULL) {
        json_object_set_new(c, "finishReason", json_string(finish));
    }
    return c;
}

static json_t *response_json(const gen_t *g, json_t *candidates, int with_usage)
{
    char rid[32];
    json_t *r = json_pack("{s:o, s:s%}", "candidates", candidates, "modelVersion", g->model.ptr,
                          g->model.len);

    snprintf(rid, sizeof(rid), "mock-%llu", (unsigned long long)g->req->id);
    json_object_set_new(r, "responseId", json_string(rid));
    if (with_usage && g->req->dirs.usage != 0) {
        json_object_set_new(r, "usageMetadata", usage_json(g));
    }
    return r;
}

static json_t *call_part(const gen_t *g)
{
    return json_pack("{s:{s:s%, s:{s:i}}}", "functionCall", "name", g->tool.ptr, g->tool.len,
                     "args", "x", 1);
}

static void generate_whole(gen_t *g)
{
    json_t *cands = json_array();
    json_t *r;

    for (int i = 0; i < g->candidates; i++) {
        json_t *part =
            g->tool.ptr != NULL ? call_part(g) : json_pack("{s:O}", "text", g->answer_val);
        json_array_append_new(cands, candidate(json_pack("[o]", part), i, "STOP"));
    }
    r = response_json(g, cands, 1);
    send_json(g->req, r);
    json_decref(r);
}

/* Splits s into words with their trailing whitespace, or n pieces of about equal bytes
 * (never inside a UTF-8 sequence). @return 1 and the next piece, or 0 at the end. */
static int next_piece(mock_span_t s, int n, size_t *pos, int *idx, mock_span_t *out)
{
    size_t start = *pos;
    size_t end;

    if (start >= s.len) {
        return 0;
    }
    if (n > 0) {
        end = s.len * (size_t)(*idx + 1) / (size_t)n;
        if (end > s.len) {
            end = s.len;
        }
        while (end < s.len && ((unsigned char)s.ptr[end] & 0xC0) == 0x80) {
            end++;
        }
        if (end <= start) {
            end = start + 1;
        }
    } else {
        end = start;
        while (end < s.len && s.ptr[end] == ' ') {
            end++;
        }
        while (end < s.len && s.ptr[end] != ' ') {
            end++;
        }
        while (end < s.len && s.ptr[end] == ' ') {
            end++;
        }
    }
    (*idx)++;
    *pos = end;
    *out = (mock_span_t){s.ptr + start, end - start};
    return 1;
}

/* One stream element: an SSE event, or an element of the JSON array stream. */
static void stream_put(gen_t *g, json_t *resp, int sse, int first)
{
    char *dump = json_dumps(resp, JSON_COMPACT);
    mock_buf_t *o = mock_resp_event_begin(g->req);

    if (sse) {
        mock_buf_adds(o, "data: ");
        mock_buf_adds(o, dump != NULL ? dump : "{}");
        mock_buf_adds(o, "\r\n\r\n");
    } else {
        mock_buf_adds(o, first ? "[" : ",\r\n");
        mock_buf_adds(o, dump != NULL ? dump : "{}");
    }
    mock_resp_event_end(g->req);
    free(dump);
    json_decref(resp);
}

static void generate_stream(gen_t *g, int sse)
{
    mock_req_t *req = g->req;
    mock_span_t text = mock_json_span(g->answer_val);
    int n = req->dirs.chunks > 0 ? req->dirs.chunks : 0;
    size_t pos = 0;
    int idx = 0;
    int total = 0;
    int k = 0;
    mock_span_t piece;
    json_t *cands;

    mock_resp_stream_begin(req, 200, sse ? "text/event-stream" : "application/json");
    if (g->tool.ptr != NULL) {
        /* a function call arrives whole, in the last element */
        cands = json_array();
        json_array_append_new(cands, candidate(json_pack("[o]", call_part(g)), 0, "STOP"));
        mock_resp_mark_mid(req);
        stream_put(g, response_json(g, cands, 1), sse, 1);
    } else {
        while (next_piece(text, n, &pos, &idx, &piece)) {
            total++;
        }
        pos = 0;
        idx = 0;
        if (total == 0) {
            total = 1;
            piece = MOCK_LIT("");
        }
        for (k = 0; k < total; k++) {
            int last = k + 1 == total;
            if (text.len > 0) {
                next_piece(text, n, &pos, &idx, &piece);
            }
            cands = json_array();
            for (int c = 0; c < g->candidates; c++) {
                json_t *parts = piece.len > 0 ? json_pack("[{s:s%}]", "text", piece.ptr, piece.len)
                                              : json_array();
                json_array_append_new(cands, candidate(parts, c, last ? "STOP" : NULL));
            }
            stream_put(g, response_json(g, cands, last), sse, k == 0);
            if (k + 1 == total / 2) {
                mock_resp_mark_mid(req);
            }
        }
    }
    if (req->dirs.malformed == 1) {
        mock_buf_t *o = mock_resp_event_begin(req);
        mock_buf_adds(o, sse ? "data: {not json\r\n\r\n" : ",{not json");
        mock_resp_event_end(req);
    }
    if (!sse) {
        mock_buf_t *o = mock_resp_event_begin(req);
        mock_buf_adds(o, "]");
        mock_resp_event_end(req);
    }
    mock_resp_stream_finish(req);
}

void mock_gemini_generate(mock_req_t *req)
{
    gen_t g;
    gen_init(&g, req);
    generate_whole(&g);
    json_decref(g.answer_val);
}

void mock_gemini_stream(mock_req_t *req)
{
    char alt[16] = "";
    gen_t g;

    (void)form_value(req->query, "alt", alt, sizeof(alt));
    gen_init(&g, req);
    generate_stream(&g, strcmp(alt, "sse") == 0);
    json_decref(g.answer_val);
}

/* ---- embeddings ---- */

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A deterministic unit vector of the text (FNV-1a seed), rounded to 6 decimals. */
static json_t *vector(mock_span_t text, int dims)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    double v[MOCK_EMBED_DIMS_MAX];
    double norm = 0;
    json_t *arr = json_array();

    for (size_t i = 0; i < text.len; i++) {
        h = (h ^ (unsigned char)text.ptr[i]) * 0x100000001b3ULL;
    }
    for (int j = 0; j < dims; j++) {
        v[j] = (double)(splitmix(&h) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
        norm += v[j] * v[j];
    }
    norm = norm > 0 ? 1.0 / sqrt(norm) : 0;
    for (int j = 0; j < dims; j++) {
        double r = (double)(long long)(v[j] * norm * 1e6 + (v[j] >= 0 ? 0.5 : -0.5)) / 1e6;
        json_array_append_new(arr, json_real(r));
    }
    return arr;
}

static int dims_of(mock_req_t *req, const json_t *dims)
{
    if (dims == NULL) {
        return DEFAULT_EMBED_DIMS;
    }
    if (!json_is_integer(dims) || json_integer_value(dims) < 1 ||
        json_integer_value(dims) > MOCK_EMBED_DIMS_MAX) {
        bad_request(req, "outputDimensionality must be between 1 and 4096%s", NULL);
        return -1;
    }
    return (int)json_integer_value(dims);
}

/* The text of an EmbedContentRequest's content. */
static int embed_request_text(mock_req_t *req, const json_t *r, mock_span_t *text)
{
    json_t *content = json_object_get(r, "content");

    if (check_content(req, content, 0) != 0) {
        return -1;
    }
    *text = mock_json_str(json_array_get(json_object_get(content, "parts"), 0), "text");
    if (text->ptr == NULL) {
        bad_request(req, "embedding content must be text%s", NULL);
        return -1;
    }
    return dims_of(req, json_object_get(r, "outputDimensionality")) < 0 ? -1 : 0;
}

int mock_gemini_embed_prepare(mock_req_t *req, mock_span_t *text)
{
    if (check_gemini_auth(req) != 0) {
        return -1;
    }
    return embed_request_text(req, req->json, text);
}

int mock_gemini_batch_embed_prepare(mock_req_t *req, mock_span_t *text)
{
    json_t *reqs = json_object_get(req->json, "requests");
    mock_span_t model = path_model(req);
    size_t i;
    json_t *r;
    char want[300];

    if (check_gemini_auth(req) != 0) {
        return -1;
    }
    if (!json_is_array(reqs) || json_array_size(reqs) == 0) {
        bad_request(req, "* BatchEmbedContentsRequest.requests: requests is not specified%s", NULL);
        return -1;
    }
    snprintf(want, sizeof(want), "models/%.*s", (int)(model.len > 200 ? 200 : model.len),
             model.ptr);
    json_array_foreach (reqs, i, r) {
        mock_span_t t;
        if (!mock_span_eq(mock_json_str(r, "model"), want)) {
            bad_request(req,
                        "* BatchEmbedContentsRequest.requests[].model: the model must be "
                        "%s",
                        want);
            return -1;
        }
        if (embed_request_text(req, r, &t) != 0) {
            return -1;
        }
        if (i == 0) {
            *text = t;
        }
    }
    return 0;
}

void mock_gemini_embed(mock_req_t *req)
{
    int dims = dims_of(req, json_object_get(req->json, "outputDimensionality"));
    json_t *r = json_pack("{s:{s:o}}", "embedding", "values", vector(req->text, dims));
    send_json(req, r);
    json_decref(r);
}

void mock_gemini_batch_embed(mock_req_t *req)
{
    json_t *reqs = json_object_get(req->json, "requests");
    json_t *out = json_array();
    size_t i;
    json_t *r;

    json_array_foreach (reqs, i, r) {
        mock_span_t t =
            i == 0 ? req->text
                   : mock_json_str(
                         json_array_get(json_object_get(json_object_get(r, "content"), "parts"), 0),
                         "text");
        int dims = dims_of(req, json_object_get(r, "outputDimensionality"));
        json_array_append_new(out, json_pack("{s:o}", "values", vector(t, dims)));
    }
    r = json_pack("{s:o}", "embeddings", out);
    send_json(req, r);
    json_decref(r);
}

int mock_vertex_predict_prepare(mock_req_t *req, mock_span_t *text)
{
    json_t *inst = json_object_get(req->json, "instances");
    json_t *params = json_object_get(req->json, "parameters");
    size_t i;
    json_t *in;

    if (check_vertex_auth(req) != 0) {
        return -1;
    }
    if (!json_is_array(inst) || json_array_size(inst) == 0) {
        bad_request(req, "instances must be a non-empty array%s", NULL);
        return -1;
    }
    json_array_foreach (inst, i, in) {
        if (!json_is_string(json_object_get(in, "content"))) {
            bad_request(req, "instances[].content must be a string%s", NULL);
            return -1;
        }
    }
    if (dims_of(req, json_object_get(params, "outputDimensionality")) < 0) {
        return -1;
    }
    *text = mock_json_str(json_array_get(inst, 0), "content");
    return 0;
}

void mock_vertex_predict(mock_req_t *req)
{
    json_t *inst = json_object_get(req->json, "instances");
    int dims = dims_of(
        req, json_object_get(json_object_get(req->json, "parameters"), "outputDimensionality"));
    json_t *preds = json_array();
    uint64_t chars = 0;
    size_t i;
    json_t *in;
    json_t *r;

    json_array_foreach (inst, i, in) {
        mock_span_t t = i == 0 ? req->text : mock_json_str(in, "content");
        uint64_t n = mock_utf8_chars(t);
        chars += n;
        json_array_append_new(preds,
                              json_pack("{s:{s:o, s:{s:I, s:b}}}", "embeddings", "values",
                                        vector(t, dims), "statistics", "token_count",
                                        (json_int_t)mock_tokens_of_chars(n), "truncated", 0));
    }
    r = json_pack("{s:o, s:{s:I}}", "predictions", preds, "metadata", "billableCharacterCount",
                  (json_int_t)chars);
    send_json(req, r);
    json_decref(r);
}

/* ---- OAuth 2.0 token endpoint (JWT bearer grant, RFC 7523) ---- */

static int b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *len)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;
        } else if (c == '-') {
            v = 62;
        } else if (c == '_') {
            v = 63;
        } else {
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) {
                return -1;
            }
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *len = o;
    return 0;
}

static json_t *b64url_json(const char *in, size_t n)
{
    unsigned char buf[JWT_MAX_BYTES];
    size_t len;
    if (b64url_decode(in, n, buf, sizeof(buf), &len) != 0) {
        return NULL;
    }
    return json_loadb((const char *)buf, len, 0, NULL);
}

static int verify_rs256(const char *input, size_t n, const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && oauth.pubkey != NULL &&
             EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, oauth.pubkey) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, n) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

static void grant_error(mock_req_t *req, const char *err, const char *description)
{
    oauth_error(req, 400, NULL, err, description);
}

void mock_oauth_token(mock_req_t *req)
{
    char grant[128];
    char msg[300];
    const char *dot1;
    const char *dot2;
    unsigned char sig[1024];
    size_t sig_len;
    json_t *hdr = NULL;
    json_t *claims = NULL;
    mock_span_t host = mock_req_header(req, "host");
    int64_t now = mock_now_ms() / 1000;
    json_int_t iat;
    json_int_t exp;
    unsigned char rnd[16];
    char token[64];
    int64_t life = req->srv->opts.oauth_expires_in > 0 ? req->srv->opts.oauth_expires_in : 3600;
    json_t *r;

    if (oauth.pubkey == NULL) {
        oauth_error(req, 500, NULL, "server_error", "mock: start with --oauth-public-key FILE");
        return;
    }
    if (form_value(req->body, "grant_type", grant, sizeof(grant)) != 0 ||
        strcmp(grant, "urn:ietf:params:oauth:grant-type:jwt-bearer") != 0) {
        grant_error(req, "unsupported_grant_type", "Invalid grant_type.");
        return;
    }
    {
        char *a = malloc(JWT_MAX_BYTES);
        int got = a != NULL && form_value(req->body, "assertion", a, JWT_MAX_BYTES) == 0;
        size_t alen = got ? strlen(a) : 0;

        dot1 = got ? memchr(a, '.', alen) : NULL;
        dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', alen - (size_t)(dot1 + 1 - a)) : NULL;
        if (dot2 == NULL) {
            free(a);
            grant_error(req, "invalid_grant",
                        "Invalid JWT: Token must be a short-lived token "
                        "and in a reasonable timeframe.");
            return;
        }
        hdr = b64url_json(a, (size_t)(dot1 - a));
        claims = b64url_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
        if (hdr == NULL || claims == NULL || !mock_span_eq(mock_json_str(hdr, "alg"), "RS256") ||
            b64url_decode(dot2 + 1, alen - (size_t)(dot2 + 1 - a), sig, sizeof(sig), &sig_len) !=
                0 ||
            !verify_rs256(a, (size_t)(dot2 - a), sig, sig_len)) {
            free(a);
            json_decref(hdr);
            json_decref(claims);
            grant_error(req, "invalid_grant", "Invalid JWT Signature.");
            return;
        }
        free(a);
    }
    snprintf(msg, sizeof(msg), "http://%.*s/token", (int)(host.len > 200 ? 200 : host.len),
             host.ptr != NULL ? host.ptr : "");
    iat = json_integer_value(json_object_get(claims, "iat"));
    exp = json_integer_value(json_object_get(claims, "exp"));
    if (mock_json_str(claims, "iss").len == 0) {
        grant_error(req, "invalid_grant", "Invalid JWT: no issuer (iss).");
    } else if (!mock_span_eq(mock_json_str(claims, "aud"), msg)) {
        grant_error(req, "invalid_grant", "Invalid JWT: the audience (aud) must be the token URL.");
    } else if (!mock_span_contains(mock_json_str(claims, "scope"), SCOPE)) {
        grant_error(req, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");
    } else if (iat > now + JWT_SKEW_S || iat < now - JWT_SKEW_S || exp <= now || exp - iat > 3600) {
        grant_error(req, "invalid_grant",
                    "Invalid JWT: Token must be a short-lived token (60 "
                    "minutes) and in a reasonable timeframe.");
    } else {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            memset(rnd, 0x5a, sizeof(rnd));
        }
        int o = snprintf(token, sizeof(token), "ya29.mock-");
        for (size_t i = 0; i < sizeof(rnd); i++) {
            o += snprintf(token + o, sizeof(token) - (size_t)o, "%02x", rnd[i]);
        }
        pthread_mutex_lock(&oauth.lock);
        issued_t *t = &oauth.tokens[oauth.next];
        snprintf(t->token, sizeof(t->token), "%s", token);
        t->expires_ms = mock_now_ms() + life * 1000;
        oauth.next = (oauth.next + 1) % TOKENS_MAX;
        if (oauth.cnt < TOKENS_MAX) {
            oauth.cnt++;
        }
        pthread_mutex_unlock(&oauth.lock);
        r = json_pack("{s:s, s:I, s:s}", "access_token", token, "expires_in", (json_int_t)life,
                      "token_type", "Bearer");
        send_json(req, r);
        json_decref(r);
    }
    json_decref(hdr);
    json_decref(claims);
}
