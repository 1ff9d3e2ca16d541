/*
 * request.c: what the mock does with one parsed request. The route table maps method and
 * path to a wire format's hooks; the dispatcher checks the client key, gathers directives
 * (queue, then x-mock-* headers, then a "[mock ...]" bracket in the prompt text), records the
 * request when recording is on, and lets the route build its response. With no queue and
 * recording off, nothing here takes a lock: that is the benchmark path.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mock.h"

/* ---- the route table ---- */

const mock_route_t mock_routes[] = {
    {"POST", "/v1/chat/completions", &mock_openai_api, MOCK_ROUTE_JSON, mock_openai_chat_prepare,
     mock_openai_chat},
    {"POST", "/v1/completions", &mock_openai_api, MOCK_ROUTE_JSON, mock_openai_completions_prepare,
     mock_openai_completions},
    {"POST", "/v1/embeddings", &mock_openai_api, MOCK_ROUTE_JSON, mock_openai_embeddings_prepare,
     mock_openai_embeddings},
    /* OpenAI's Responses API (responses.c) */
    {"POST", "/v1/responses", &mock_openai_api, MOCK_ROUTE_JSON, mock_responses_prepare,
     mock_responses_create},
    {"GET", "/v1/models", &mock_openai_api, 0, NULL, mock_openai_models},
    {"GET", "/v1/models/**", &mock_openai_api, 0, NULL, mock_openai_model_get},
    /* Anthropic's Messages API */
    {"POST", "/v1/messages", &mock_anthropic_api, MOCK_ROUTE_JSON, mock_anthropic_prepare,
     mock_anthropic_messages},
    /* OpenRouter's base URL path (https://openrouter.ai/api/v1) */
    {"POST", "/api/v1/chat/completions", &mock_openai_api, MOCK_ROUTE_JSON,
     mock_openai_chat_prepare, mock_openai_chat},

    /* Azure OpenAI: deployment URLs (api-version required), then the v1 API */
    {"POST", "/openai/deployments/*/chat/completions", &mock_azure_api, MOCK_ROUTE_JSON,
     mock_azure_chat_prepare, mock_openai_chat},
    {"POST", "/openai/deployments/*/completions", &mock_azure_api, MOCK_ROUTE_JSON,
     mock_azure_completions_prepare, mock_openai_completions},
    {"POST", "/openai/deployments/*/embeddings", &mock_azure_api, MOCK_ROUTE_JSON,
     mock_azure_embeddings_prepare, mock_openai_embeddings},
    {"POST", "/openai/v1/chat/completions", &mock_azure_api, MOCK_ROUTE_JSON,
     mock_openai_chat_prepare, mock_openai_chat},
    {"POST", "/openai/v1/completions", &mock_azure_api, MOCK_ROUTE_JSON,
     mock_openai_completions_prepare, mock_openai_completions},
    {"POST", "/openai/v1/embeddings", &mock_azure_api, MOCK_ROUTE_JSON,
     mock_openai_embeddings_prepare, mock_openai_embeddings},

    /* Google: the Gemini API, Vertex AI, and an OAuth token endpoint for service accounts */
    {"POST", "/v1beta/models/*:generateContent", &mock_gemini_api, MOCK_ROUTE_JSON,
     mock_gemini_prepare, mock_gemini_generate},
    {"POST", "/v1beta/models/*:streamGenerateContent", &mock_gemini_api, MOCK_ROUTE_JSON,
     mock_gemini_prepare, mock_gemini_stream},
    {"POST", "/v1beta/models/*:embedContent", &mock_gemini_api, MOCK_ROUTE_JSON,
     mock_gemini_embed_prepare, mock_gemini_embed},
    {"POST", "/v1beta/models/*:batchEmbedContents", &mock_gemini_api, MOCK_ROUTE_JSON,
     mock_gemini_batch_embed_prepare, mock_gemini_batch_embed},
    {"POST", "/v1/projects/*/locations/*/publishers/google/models/*:generateContent",
     &mock_vertex_api, MOCK_ROUTE_JSON, mock_vertex_prepare, mock_gemini_generate},
    {"POST", "/v1/projects/*/locations/*/publishers/google/models/*:streamGenerateContent",
     &mock_vertex_api, MOCK_ROUTE_JSON, mock_vertex_prepare, mock_gemini_stream},
    {"POST", "/v1/projects/*/locations/*/publishers/google/models/*:predict", &mock_vertex_api,
     MOCK_ROUTE_JSON, mock_vertex_predict_prepare, mock_vertex_predict},
    {"POST", "/token", &mock_oauth_api, 0, NULL, mock_oauth_token},

    {"POST", "/_mock/queue", &mock_openai_api, MOCK_ROUTE_CONTROL | MOCK_ROUTE_JSON, NULL,
     mock_control_queue_post},
    {"GET", "/_mock/queue", &mock_openai_api, MOCK_ROUTE_CONTROL, NULL, mock_control_queue_get},
    {"DELETE", "/_mock/queue", &mock_openai_api, MOCK_ROUTE_CONTROL, NULL,
     mock_control_queue_delete},
    {"GET", "/_mock/requests", &mock_openai_api, MOCK_ROUTE_CONTROL, NULL,
     mock_control_requests_get},
    {"DELETE", "/_mock/requests", &mock_openai_api, MOCK_ROUTE_CONTROL, NULL,
     mock_control_requests_delete},
    {"GET", "/_mock/stats", &mock_openai_api, MOCK_ROUTE_CONTROL, NULL, mock_control_stats_get},
    {"DELETE", "/_mock/stats", &mock_openai_api, MOCK_ROUTE_CONTROL, NULL,
     mock_control_stats_delete},
    {"POST", "/_mock/reset", &mock_openai_api, MOCK_ROUTE_CONTROL, NULL, mock_control_reset},
    {"GET", "/_mock/health", &mock_openai_api, MOCK_ROUTE_CONTROL, NULL, mock_control_health},
};

const size_t mock_routes_cnt = sizeof(mock_routes) / sizeof(mock_routes[0]);

_Static_assert(sizeof(mock_routes) / sizeof(mock_routes[0]) <= MOCK_ROUTES_MAX,
               "raise MOCK_ROUTES_MAX");

/* Matches a path against a pattern: "*" matches a run of characters other than '/',
 * "**" matches the rest of the path. */
static int glob_match(const char *pat, const char *s, const char *end)
{
    while (*pat != '\0') {
        if (pat[0] == '*' && pat[1] == '*') {
            return 1;
        }
        if (*pat == '*') {
            for (const char *q = s;; q++) {
                if (glob_match(pat + 1, q, end)) {
                    return 1;
                }
                if (q == end || *q == '/') {
                    return 0;
                }
            }
        }
        if (s == end || *s != *pat) {
            return 0;
        }
        pat++;
        s++;
    }
    return s == end;
}

/* @return the route index, -1 when no pattern matches, -2 when only the method differs. */
static int route_find(mock_span_t method, mock_span_t path)
{
    int path_seen = 0;
    for (size_t i = 0; i < mock_routes_cnt; i++) {
        if (!glob_match(mock_routes[i].pattern, path.ptr, path.ptr + path.len)) {
            continue;
        }
        if (mock_span_eq(method, mock_routes[i].method)) {
            return (int)i;
        }
        path_seen = 1;
    }
    return path_seen ? -2 : -1;
}

/* ---- directives ---- */

enum dir_type { DIR_INT, DIR_DURATION, DIR_BOOL, DIR_RESET, DIR_TEXT };

typedef struct dir_def {
    const char *name;
    enum dir_type type;
    size_t offset;
    int64_t min, max;
    int header_only; /* not accepted in a bracket (values there cannot hold spaces) */
} dir_def_t;

static const dir_def_t dir_defs[] = {
    {"status", DIR_INT, offsetof(mock_dirs_t, status), 200, 599, 0},
    {"retry_after", DIR_INT, offsetof(mock_dirs_t, retry_after_s), 0, 86400, 0},
    {"latency", DIR_DURATION, offsetof(mock_dirs_t, latency_ms), 0, 3600000, 0},
    {"chunks", DIR_INT, offsetof(mock_dirs_t, chunks), 1, MOCK_CHUNKS_MAX, 0},
    {"chunk_delay", DIR_DURATION, offsetof(mock_dirs_t, chunk_delay_ms), 0, 600000, 0},
    {"reset", DIR_RESET, offsetof(mock_dirs_t, reset), 0, 0, 0},
    {"malformed", DIR_BOOL, offsetof(mock_dirs_t, malformed), 0, 1, 0},
    {"hang", DIR_BOOL, offsetof(mock_dirs_t, hang), 0, 1, 0},
    {"usage", DIR_BOOL, offsetof(mock_dirs_t, usage), 0, 1, 0},
    {"prompt_filter", DIR_BOOL, offsetof(mock_dirs_t, prompt_filter), 0, 1, 0},
    {"content", DIR_TEXT, offsetof(mock_dirs_t, content), 0, 0, 1},
    {"body", DIR_TEXT, offsetof(mock_dirs_t, body), 0, 0, 1},
    {"header", DIR_TEXT, offsetof(mock_dirs_t, header), 0, 0, 1},
};

static void dirs_clear(mock_dirs_t *d)
{
    d->status = -1;
    d->retry_after_s = -1;
    d->latency_ms = -1;
    d->chunk_delay_ms = -1;
    d->chunks = -1;
    d->reset = MOCK_RESET_NONE;
    d->malformed = -1;
    d->hang = -1;
    d->usage = -1;
    d->prompt_filter = -1;
    d->content = (mock_span_t){NULL, 0};
    d->body = (mock_span_t){NULL, 0};
    d->header = (mock_span_t){NULL, 0};
}

/* Directive names compare with '-' and '_' as the same character (headers use dashes). */
static int dir_name_eq(mock_span_t name, const char *def)
{
    size_t n = strlen(def);
    if (name.len != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char a = name.ptr[i] == '-' ? '_' : name.ptr[i];
        if (a >= 'A' && a <= 'Z') {
            a = (char)(a + ('a' - 'A'));
        }
        if (a != def[i]) {
            return 0;
        }
    }
    return 1;
}

static int parse_bool(mock_span_t v, int *out)
{
    if (mock_span_eq(v, "1") || mock_span_caseeq(v, "true") || mock_span_caseeq(v, "yes") ||
        mock_span_caseeq(v, "on")) {
        *out = 1;
        return 0;
    }
    if (mock_span_eq(v, "0") || mock_span_caseeq(v, "false") || mock_span_caseeq(v, "no") ||
        mock_span_caseeq(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

int mock_dirs_set(mock_dirs_t *d, mock_span_t name, mock_span_t value, int from_bracket)
{
    const dir_def_t *def = NULL;
    char *field;
    int64_t v = 0;
    int b = 0;

    for (size_t i = 0; i < sizeof(dir_defs) / sizeof(dir_defs[0]); i++) {
        if (dir_name_eq(name, dir_defs[i].name)) {
            def = &dir_defs[i];
            break;
        }
    }
    if (def == NULL || (from_bracket && def->header_only)) {
        return -1;
    }
    field = (char *)d + def->offset;
    switch (def->type) {
    case DIR_INT:
        if (mock_span_to_i64(value, &v) != 0 || v < def->min || v > def->max) {
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    case DIR_DURATION:
        if (mock_parse_duration_ms(value, &v) != 0 || v < def->min || v > def->max) {
            return -1;
        }
        *(int64_t *)field = v;
        return 0;
    case DIR_BOOL:
        if (parse_bool(value, &b) != 0) {
            return -1;
        }
        *(int *)field = b;
        return 0;
    case DIR_RESET:
        if (mock_span_eq(value, "before_headers")) {
            *(int *)field = MOCK_RESET_BEFORE_HEADERS;
        } else if (mock_span_eq(value, "after_headers")) {
            *(int *)field = MOCK_RESET_AFTER_HEADERS;
        } else if (mock_span_eq(value, "mid_stream")) {
            *(int *)field = MOCK_RESET_MID_STREAM;
        } else if (mock_span_eq(value, "none") || mock_span_eq(value, "0")) {
            *(int *)field = MOCK_RESET_NONE;
        } else {
            return -1;
        }
        return 0;
    case DIR_TEXT: *(mock_span_t *)field = value; return 0;
    }
    return -1;
}

/* A queued directive set is a JSON object; numbers and booleans become text first. */
static void dirs_from_json(mock_dirs_t *d, json_t *obj)
{
    const char *key;
    json_t *val;

    json_object_foreach (obj, key, val) {
        char tmp[32];
        mock_span_t v = {tmp, 0};

        if (json_is_string(val)) {
            v = mock_json_span(val);
        } else if (json_is_integer(val)) {
            v.len = (size_t)snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT,
                                     json_integer_value(val));
        } else if (json_is_real(val)) {
            v.len = (size_t)snprintf(tmp, sizeof(tmp), "%g", json_real_value(val));
        } else if (json_is_boolean(val)) {
            v = json_is_true(val) ? MOCK_LIT("1") : MOCK_LIT("0");
        } else {
            continue;
        }
        (void)mock_dirs_set(d, (mock_span_t){key, strlen(key)}, v, 0);
    }
}

static void dirs_from_headers(mock_req_t *req)
{
    static const char prefix[] = "x-mock-";
    for (int i = 0; i < req->conn->headers_cnt; i++) {
        mock_span_t name;
        mock_span_t value;

        mock_req_header_at(req, i, &name, &value);
        if (name.len > sizeof(prefix) - 1 && memcmp(name.ptr, prefix, sizeof(prefix) - 1) == 0) {
            name.ptr += sizeof(prefix) - 1;
            name.len -= sizeof(prefix) - 1;
            (void)mock_dirs_set(&req->dirs, name, value, 0);
        }
    }
}

/* Finds "[mock k=v ...]" in the text (held in conn->text), applies it and cuts it out, with
 * one neighbouring space so "hi [mock x=1] there" echoes as "hi there". */
static void dirs_from_bracket(mock_req_t *req)
{
    mock_buf_t *t = &req->conn->text;
    char *s = t->data;
    size_t len = t->len;
    size_t start = SIZE_MAX;
    size_t end;
    size_t i;

    for (i = 0; i + 5 <= len; i++) {
        if (memcmp(s + i, "[mock", 5) == 0 &&
            (i + 5 == len || s[i + 5] == ' ' || s[i + 5] == ']')) {
            start = i;
            break;
        }
    }
    if (start == SIZE_MAX) {
        return;
    }
    end = start + 5;
    while (end < len && s[end] != ']') {
        end++;
    }
    if (end == len) {
        return; /* not closed: plain text */
    }
    i = start + 5;
    while (i < end) {
        size_t tok;
        size_t eq;

        while (i < end && s[i] == ' ') {
            i++;
        }
        tok = i;
        while (i < end && s[i] != ' ') {
            i++;
        }
        for (eq = tok; eq < i && s[eq] != '='; eq++) {
        }
        if (eq < i) {
            (void)mock_dirs_set(&req->dirs, (mock_span_t){s + tok, eq - tok},
                                (mock_span_t){s + eq + 1, i - eq - 1}, 1);
        }
    }
    end++; /* past ']' */
    if (end < len && s[end] == ' ') {
        end++;
    } else if (start > 0 && s[start - 1] == ' ') {
        start--;
    }
    memmove(s + start, s + end, len - end);
    t->len = len - (end - start);
}

/* ---- keys ---- */

static mock_span_t find_token(mock_req_t *req)
{
    mock_span_t v = mock_req_header(req, req->api->auth_header);
    size_t plen = strlen(req->api->auth_prefix);

    if (v.ptr == NULL) {
        return v;
    }
    if (plen > 0) {
        if (v.len < plen || strncasecmp(v.ptr, req->api->auth_prefix, plen) != 0) {
            return (mock_span_t){NULL, 0};
        }
        v.ptr += plen;
        v.len -= plen;
    }
    while (v.len > 0 && v.ptr[0] == ' ') {
        v.ptr++;
        v.len--;
    }
    while (v.len > 0 && v.ptr[v.len - 1] == ' ') {
        v.len--;
    }
    return v;
}

static int key_allowed(const mock_server_t *srv, mock_span_t token)
{
    if (srv->opts.keys_cnt == 0) {
        return 1;
    }
    for (size_t i = 0; i < srv->opts.keys_cnt; i++) {
        if (mock_span_eq(token, srv->opts.keys[i])) {
            return 1;
        }
    }
    return 0;
}

/* ---- recording ---- */

/* A JSON string from arbitrary bytes: invalid UTF-8 bytes become '?'. */
static json_t *jstr_lossy(mock_span_t s)
{
    json_t *j = json_stringn(s.ptr != NULL ? s.ptr : "", s.len);
    char *copy;

    if (j != NULL) {
        return j;
    }
    copy = malloc(s.len + 1);
    if (copy == NULL) {
        return json_null();
    }
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        copy[i] = ch >= 0x80 || ch == 0 ? '?' : (char)ch;
    }
    j = json_stringn(copy, s.len);
    free(copy);
    return j != NULL ? j : json_null();
}

static void record(mock_req_t *req)
{
    json_t *rec = json_object();
    json_t *hdrs = json_object();

    for (int i = 0; i < req->conn->headers_cnt; i++) {
        mock_span_t name;
        mock_span_t value;
        char key[256];
        json_t *prev;

        mock_req_header_at(req, i, &name, &value);
        if (name.len >= sizeof(key)) {
            continue;
        }
        memcpy(key, name.ptr, name.len);
        key[name.len] = '\0';
        prev = json_object_get(hdrs, key);
        if (json_is_string(prev)) {
            /* Repeated header lines are joined as HTTP allows. */
            size_t plen = json_string_length(prev);
            char *joined = malloc(plen + 2 + value.len);
            if (joined != NULL) {
                memcpy(joined, json_string_value(prev), plen);
                memcpy(joined + plen, ", ", 2);
                memcpy(joined + plen + 2, value.ptr, value.len);
                json_object_set_new(hdrs, key,
                                    jstr_lossy((mock_span_t){joined, plen + 2 + value.len}));
                free(joined);
            }
            continue;
        }
        json_object_set_new(hdrs, key, jstr_lossy(value));
    }
    json_object_set_new(rec, "method", jstr_lossy(req->method));
    json_object_set_new(rec, "path", jstr_lossy(req->path));
    json_object_set_new(rec, "query", jstr_lossy(req->query));
    json_object_set_new(rec, "headers", hdrs);
    if (req->json != NULL) {
        /* A copy: the record outlives the request and is read by other threads. */
        json_object_set_new(rec, "body", json_deep_copy(req->json));
        /* the bytes as sent too: pass-through tests compare them exactly */
        json_object_set_new(rec, "raw", jstr_lossy(req->body));
    } else if (req->body.len > 0) {
        json_object_set_new(rec, "body", jstr_lossy(req->body));
    } else {
        json_object_set_new(rec, "body", json_null());
    }
    json_object_set_new(rec, "time_ms", json_integer(mock_now_ms()));
    mock_record_add(req->srv, rec);
}

/* ---- dispatch ---- */

void mock_request_error(mock_req_t *req, int status, const char *type, const char *code,
                        const char *message)
{
    req->api->error(req, status, type, code, message);
}

uint64_t mock_next_id(mock_server_t *srv)
{
    return atomic_fetch_add_explicit(&srv->next_id, 1, memory_order_relaxed) + 1;
}

void mock_request_release(mock_req_t *req)
{
    if (req->json != NULL) {
        json_decref(req->json);
        req->json = NULL;
    }
    if (req->queue_item != NULL) {
        json_decref(req->queue_item);
        req->queue_item = NULL;
    }
}

static void split_url(mock_req_t *req)
{
    mock_conn_t *c = req->conn;
    const char *u = c->head.data;
    const char *end = u + c->url_len;
    const char *q;

    if (u == NULL) {
        u = "";
        end = u;
    }
    /* Absolute form (a proxy-style request line): skip "scheme://authority". */
    if (end - u > 7 && (memcmp(u, "http://", 7) == 0 || memcmp(u, "https://", 8) == 0)) {
        const char *p = memchr(u, ':', (size_t)(end - u)) + 3;
        while (p < end && *p != '/' && *p != '?') {
            p++;
        }
        u = p;
    }
    q = memchr(u, '?', (size_t)(end - u));
    if (q == NULL) {
        req->path = (mock_span_t){u, (size_t)(end - u)};
        req->query = (mock_span_t){end, 0};
    } else {
        req->path = (mock_span_t){u, (size_t)(q - u)};
        req->query = (mock_span_t){q + 1, (size_t)(end - q - 1)};
    }
    if (req->path.len == 0) {
        req->path = MOCK_LIT("/");
    }
}

static void method_not_allowed(mock_req_t *req)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "Method %.*s is not allowed for %.*s", (int)req->method.len,
             req->method.ptr, (int)(req->path.len > 100 ? 100 : req->path.len), req->path.ptr);
    mock_request_error(req, 405, "invalid_request_error", NULL, msg);
}

static void not_found(mock_req_t *req)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "Unknown request URL: %.*s %.*s. Please check the URL for typos.",
             (int)req->method.len, req->method.ptr,
             (int)(req->path.len > 100 ? 100 : req->path.len), req->path.ptr);
    mock_request_error(req, 404, "invalid_request_error", "unknown_url", msg);
}

/* Parses the body as JSON. @return 0, or -1 with a message when the route needs an object. */
static int parse_body(mock_req_t *req, char *msg, size_t msglen)
{
    json_error_t jerr;

    if (req->body.len == 0) {
        snprintf(msg, msglen,
                 "We could not parse the JSON body of your request: the body is "
                 "empty.");
        return -1;
    }
    req->json = json_loadb(req->body.ptr, req->body.len, JSON_ALLOW_NUL, &jerr);
    if (req->json == NULL) {
        snprintf(msg, msglen,
                 "We could not parse the JSON body of your request. (HINT: %s at line %d "
                 "column %d)",
                 jerr.text, jerr.line, jerr.column);
        return -1;
    }
    if (!json_is_object(req->json)) {
        snprintf(msg, msglen, "The JSON body of your request must be an object.");
        return -1;
    }
    return 0;
}

static void handle_control(mock_req_t *req, int idx)
{
    char msg[256];

    if (idx == -2) {
        method_not_allowed(req);
        return;
    }
    if (req->body.len > 0 || (req->route->flags & MOCK_ROUTE_JSON)) {
        if (parse_body(req, msg, sizeof(msg)) != 0 && (req->route->flags & MOCK_ROUTE_JSON)) {
            mock_request_error(req, 400, "invalid_request_error", NULL, msg);
            return;
        }
    }
    req->route->respond(req);
}

static void handle_api(mock_req_t *req, int idx)
{
    mock_server_t *srv = req->srv;
    mock_conn_t *c = req->conn;
    const mock_route_t *route = req->route;
    char msg[256];
    int body_ok = 1;

    mock_stat_add(&req->worker->stats.requests, 1);
    mock_stat_add(&req->worker->stats.by_route[idx >= 0 ? idx : MOCK_ROUTES_MAX], 1);
    if (req->body.len > 0) {
        body_ok = parse_body(req, msg, sizeof(msg)) == 0;
    }
    if (srv->opts.record) {
        record(req);
    }
    if (idx == -1) {
        not_found(req);
        return;
    }
    if (idx == -2) {
        method_not_allowed(req);
        return;
    }
    req->token = find_token(req);
    if (!key_allowed(srv, req->token)) {
        snprintf(msg, sizeof(msg),
                 "Incorrect API key provided. You can find your API key at "
                 "https://platform.openai.com/account/api-keys.");
        mock_request_error(req, 401, "invalid_request_error", "invalid_api_key", msg);
        return;
    }
    if (atomic_load_explicit(&srv->shared.queued, memory_order_relaxed) > 0) {
        req->queue_item = mock_queue_pop(srv, req->token);
        if (req->queue_item != NULL) {
            dirs_from_json(&req->dirs, req->queue_item);
        }
    }
    dirs_from_headers(req);
    if (route->flags & MOCK_ROUTE_JSON) {
        if (req->body.len == 0) {
            body_ok = parse_body(req, msg, sizeof(msg)) == 0;
        }
        if (!body_ok) {
            mock_request_error(req, 400, "invalid_request_error", NULL, msg);
            return;
        }
    }
    if (route->prepare != NULL) {
        mock_span_t text = {NULL, 0};
        if (route->prepare(req, &text) != 0) {
            return;
        }
        c->text.len = 0;
        c->text.failed = 0;
        mock_buf_add_span(&c->text, text);
        if (c->text.failed) {
            mock_request_error(req, 413, "invalid_request_error", NULL, "mock: text too large");
            return;
        }
        dirs_from_bracket(req);
        req->text = mock_buf_span(&c->text);
    }
    if (req->dirs.body.ptr != NULL) {
        /* a body as broken (or as odd) as a test needs, with the status asked for */
        int status = req->dirs.status >= 100 ? req->dirs.status : 200;
        mock_resp_simple(req, status, "application/json", req->dirs.body);
        return;
    }
    if (req->dirs.status >= 400) {
        snprintf(msg, sizeof(msg), "mock error %d", req->dirs.status);
        mock_request_error(req, req->dirs.status, NULL, NULL, msg);
        return;
    }
    route->respond(req);
}

void mock_request_handle(mock_conn_t *c)
{
    mock_req_t *req = &c->req;
    const char *m = llhttp_method_name((llhttp_method_t)c->parser.method);
    int idx;

    mock_request_release(req);
    req->conn = c;
    req->worker = c->worker;
    req->srv = c->worker->srv;
    req->api = &mock_openai_api;
    req->method = (mock_span_t){m, strlen(m)};
    req->body = mock_buf_span(&c->body);
    req->token = (mock_span_t){NULL, 0};
    req->text = (mock_span_t){NULL, 0};
    req->status = 0;
    req->id = 0;
    req->http_minor = c->parser.http_major == 1 ? c->parser.http_minor : 1;
    req->keep_alive = llhttp_should_keep_alive(&c->parser) != 0;
    req->counted = 0;
    dirs_clear(&req->dirs);
    split_url(req);

    idx = route_find(req->method, req->path);
    req->route = idx >= 0 ? &mock_routes[idx] : NULL;
    if (req->route != NULL) {
        req->api = req->route->api;
    }
    if (req->route != NULL && (req->route->flags & MOCK_ROUTE_CONTROL)) {
        handle_control(req, idx);
    } else if (idx == -2 && req->path.len >= 7 && memcmp(req->path.ptr, "/_mock/", 7) == 0) {
        handle_control(req, idx);
    } else {
        req->counted = 1;
        handle_api(req, idx);
    }
    mock_resp_start(req);
}
