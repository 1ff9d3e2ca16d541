/*
 * provider.c: the registry of provider types and the default hooks (curl's
 * Curl_cf_def_* idea): a provider leaves a hook NULL and gets the default here, so no
 * caller ever checks a hook for NULL. Also the small helpers provider files share.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "providers/provider.h"

extern const ar_provider_ops_t ar_openai_ops;
extern const ar_provider_ops_t ar_azure_ops;
extern const ar_provider_ops_t ar_anthropic_ops;
extern const ar_provider_ops_t ar_gemini_ops;
extern const ar_provider_ops_t ar_vertex_ops;
extern const ar_provider_ops_t ar_proxy_ops;
extern const ar_provider_ops_t ar_mock_ops;

static const ar_provider_ops_t *registry[AR_CRED_TYPE_CNT] = {
    [AR_CRED_OPENAI] = &ar_openai_ops,       [AR_CRED_AZURE] = &ar_azure_ops,
    [AR_CRED_ANTHROPIC] = &ar_anthropic_ops, [AR_CRED_GEMINI] = &ar_gemini_ops,
    [AR_CRED_VERTEX] = &ar_vertex_ops,       [AR_CRED_PROXY] = &ar_proxy_ops,
    [AR_CRED_MOCK] = &ar_mock_ops,
};

static int def_parse_response(ar_provider_t *p, ar_call_t *call, ar_span_t body, ar_buf_t *out)
{
    (void)p;
    (void)call;
    (void)body;
    (void)out;
    return 0;
}

static int def_parse_event(ar_provider_t *p, ar_call_t *call, const ar_sse_event_t *ev,
                           ar_buf_t *out)
{
    (void)p;
    (void)call;
    (void)ev;
    (void)out;
    return AR_PROV_PASS;
}

int ar_provider_content_text(const json_t *content, const char *sep, ar_buf_t *out)
{
    if (json_is_string(content))
        return ar_buf_append(out, json_string_value(content), json_string_length(content));
    size_t i;
    json_t *part;
    int rc = 0;
    bool first = true;
    json_array_foreach (content, i, part) {
        const char *type = ar_json_str(part, "type");
        json_t *text = json_object_get(part, "text");
        if (rc || !json_is_string(text) || (type && strcmp(type, "text") != 0))
            continue;
        if (!first)
            rc = ar_buf_append_str(out, sep);
        rc = rc ? rc : ar_buf_append(out, json_string_value(text), json_string_length(text));
        first = false;
    }
    return rc;
}

const char *ar_provider_json_string(ar_pool_t *pool, ar_span_t val)
{
    ar_span_t text = ar_jscan_string_text(pool, val);
    return text.ptr ? ar_pool_strdup_span(pool, text) : NULL;
}

static void def_parse_error(ar_provider_t *p, ar_call_t *call, int status, ar_span_t body,
                            ar_upstream_err_t *out)
{
    (void)p;
    out->status = status;
    out->type = NULL;
    out->code = NULL;
    out->message = NULL;
    /* Most providers wrap errors as {"error": {"message": ...}} or {"error": "text"}. */
    ar_span_t err, v;
    if (ar_jscan_get(body, AR_LIT("error"), &err) == 0) {
        out->message = ar_provider_json_string(call->pool, err);
        if (!out->message) {
            if (ar_jscan_get(err, AR_LIT("message"), &v) == 0)
                out->message = ar_provider_json_string(call->pool, v);
            if (ar_jscan_get(err, AR_LIT("type"), &v) == 0)
                out->type = ar_provider_json_string(call->pool, v);
            if (ar_jscan_get(err, AR_LIT("code"), &v) == 0)
                out->code = ar_provider_json_string(call->pool, v);
        }
    } else if (ar_jscan_get(body, AR_LIT("message"), &v) == 0) {
        out->message = ar_provider_json_string(call->pool, v);
    }
    if (!out->message)
        out->message = ar_provider_error_excerpt(call->pool, body, status);
}

const char *ar_provider_error_excerpt(ar_pool_t *pool, ar_span_t body, int status)
{
    size_t n = body.len < 200 ? body.len : 200;
    if (n == 0)
        return ar_pool_printf(pool, "upstream answered %d", status);
    char *m = ar_pool_strndup(pool, body.ptr, n);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)m[i] < 0x20)
            m[i] = ' ';
    }
    return m;
}

int ar_provider_post_json(ar_http_req_t *out, const char *url, bool stream)
{
    out->method = "POST";
    out->url = url;
    int rc = ar_http_req_add_header(out, "Content-Type: application/json");
    if (!rc && stream)
        rc = ar_http_req_add_header(out, "Accept: text/event-stream");
    return rc;
}

static int def_build_models(ar_provider_t *p, ar_pool_t *pool, ar_http_req_t *out)
{
    (void)p;
    (void)pool;
    (void)out;
    return AR_ENOTFOUND;
}

static int def_parse_models(ar_provider_t *p, ar_span_t body, ar_strlist_t *ids)
{
    (void)p;
    (void)body;
    (void)ids;
    return AR_ENOTFOUND;
}

static int def_answer(ar_provider_t *p, ar_call_t *call, ar_inproc_answer_t *out)
{
    (void)p;
    (void)call;
    (void)out;
    return AR_EINVAL;
}

static int def_end_stream(ar_provider_t *p, ar_call_t *call, ar_buf_t *out)
{
    (void)p;
    (void)call;
    (void)out;
    return 0;
}

static int def_token_request(ar_provider_t *p, ar_pool_t *pool, int64_t now_wall_ms,
                             ar_http_req_t *out)
{
    (void)p;
    (void)pool;
    (void)now_wall_ms;
    (void)out;
    return AR_EINVAL;
}

static int def_token_response(ar_provider_t *p, int status, ar_span_t body, int64_t now_wall_ms,
                              int64_t *refresh_at_wall_ms)
{
    (void)p;
    (void)status;
    (void)body;
    (void)now_wall_ms;
    (void)refresh_at_wall_ms;
    return AR_EINVAL;
}

static int def_build_request(ar_provider_t *p, ar_call_t *call, ar_http_req_t *out)
{
    (void)p;
    (void)call;
    (void)out;
    return AR_EINVAL;
}

/* A registered table with every NULL hook replaced by its default. */
static ar_provider_ops_t filled[AR_CRED_TYPE_CNT];
static pthread_once_t filled_once = PTHREAD_ONCE_INIT;

static void fill_defaults(void)
{
    for (size_t i = 0; i < AR_CRED_TYPE_CNT; i++) {
        if (!registry[i])
            continue;
        ar_provider_ops_t o = *registry[i];
        if (!o.build_request)
            o.build_request = def_build_request;
        if (!o.parse_response)
            o.parse_response = def_parse_response;
        if (!o.parse_event)
            o.parse_event = def_parse_event;
        if (!o.parse_error)
            o.parse_error = def_parse_error;
        if (!o.build_models_request)
            o.build_models_request = def_build_models;
        if (!o.parse_models)
            o.parse_models = def_parse_models;
        if (!o.answer)
            o.answer = def_answer;
        if (!o.end_stream)
            o.end_stream = def_end_stream;
        if (!o.token_request)
            o.token_request = def_token_request;
        if (!o.token_response)
            o.token_response = def_token_response;
        filled[i] = o;
    }
}

const ar_provider_ops_t *ar_provider_ops_of(ar_cred_type_t type)
{
    pthread_once(&filled_once, fill_defaults);
    if ((unsigned)type >= AR_CRED_TYPE_CNT || !registry[type])
        return NULL;
    return &filled[type];
}

ar_provider_t *ar_provider_create(const ar_cred_conf_t *conf, char *err, size_t errlen)
{
    const ar_provider_ops_t *ops = ar_provider_ops_of(conf->type);
    if (!ops) {
        snprintf(err, errlen, "credential %s: provider type '%s' is not available in this build",
                 conf->name, conf->type_name ? conf->type_name : "?");
        return NULL;
    }
    ar_provider_t *p = ops->create(conf, err, errlen);
    if (!p)
        return NULL;
    p->ops = ops;
    p->conf = conf;
    return p;
}

void ar_provider_destroy(ar_provider_t *p)
{
    if (p)
        p->ops->destroy(p);
}

static bool int_value(ar_span_t v, int64_t *out)
{
    int64_t n = 0;
    if (v.len == 0 || v.len > 18)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return false;
        n = n * 10 + (v.ptr[i] - '0');
    }
    *out = ar_tokens_clamp(n);
    return true;
}

void ar_provider_usage_from_openai(ar_span_t usage, ar_usage_t *u)
{
    /* one pass over the members: this runs for every answer */
    ar_jscan_iter_t it;
    ar_span_t k, v;
    bool total = false;
    if (ar_jscan_object_begin(usage, &it) != 0)
        return;
    while (ar_jscan_object_next(&it, &k, &v)) {
        ar_span_t c;
        if (ar_span_eq(k, AR_LIT("prompt_tokens")) || ar_span_eq(k, AR_LIT("input_tokens"))) {
            int_value(v, &u->prompt_tokens);
        } else if (ar_span_eq(k, AR_LIT("completion_tokens")) ||
                   ar_span_eq(k, AR_LIT("output_tokens"))) {
            int_value(v, &u->completion_tokens);
        } else if (ar_span_eq(k, AR_LIT("total_tokens"))) {
            total = int_value(v, &u->total_tokens);
        } else if (ar_span_eq(k, AR_LIT("prompt_tokens_details")) ||
                   ar_span_eq(k, AR_LIT("input_tokens_details"))) {
            if (ar_jscan_get(v, AR_LIT("cached_tokens"), &c) == 0)
                int_value(c, &u->cached_tokens);
        } else if (ar_span_eq(k, AR_LIT("completion_tokens_details")) ||
                   ar_span_eq(k, AR_LIT("output_tokens_details"))) {
            if (ar_jscan_get(v, AR_LIT("reasoning_tokens"), &c) == 0)
                int_value(c, &u->reasoning_tokens);
        } else if (ar_span_eq(k, AR_LIT("cache_creation_input_tokens"))) {
            int_value(v, &u->cache_creation_tokens);
        }
    }
    if (!total)
        u->total_tokens = u->prompt_tokens + u->completion_tokens;
    /* details are parts of the totals: an upstream that says otherwise is not believed */
    if (u->cached_tokens > u->prompt_tokens)
        u->cached_tokens = u->prompt_tokens;
    if (u->cache_creation_tokens > u->prompt_tokens - u->cached_tokens)
        u->cache_creation_tokens = u->prompt_tokens - u->cached_tokens;
    if (u->reasoning_tokens > u->completion_tokens)
        u->reasoning_tokens = u->completion_tokens;
    u->seen = true;
}

static void free_buf(void *arg)
{
    ar_buf_dispose(arg);
}

int ar_provider_dump_body(ar_call_t *call, const json_t *v, ar_span_t *out)
{
    ar_buf_t *b = ar_pool_alloc(call->pool, sizeof(*b));
    ar_buf_init(b, (size_t)1 << 30);
    ar_pool_cleanup_add(call->pool, free_buf, b);
    int rc = ar_json_dump(v, b);
    if (rc)
        return rc;
    *out = ar_buf_span(b);
    return 0;
}

const char *ar_provider_header_line(ar_pool_t *pool, const char *name, const char *value)
{
    return ar_pool_printf(pool, "%s: %s", name, value);
}

const char *const ar_request_extensions[] = {"tags",          "type",        "min_context_size",
                                             "json_response", "prefer_fast", "min_success_rate"};
const size_t ar_request_extensions_cnt =
    sizeof(ar_request_extensions) / sizeof(ar_request_extensions[0]);

static void decref(void *arg)
{
    json_decref(arg);
}

json_t *ar_call_json(ar_call_t *call)
{
    if (call->body)
        return call->body;
    if (call->translate) {
        int (*translate)(ar_call_t *) = call->translate;
        call->translate = NULL; /* once: a failure is remembered in translate_error */
        if (translate(call) == 0 && call->body)
            return call->body;
    }
    if (!call->raw.len) {
        /* a client of another API whose request has no chat form (built-in tools) */
        call->error_detail = call->translate_error
                                 ? call->translate_error
                                 : "the request has no chat form for this provider";
        return NULL;
    }
    char why[160];
    json_t *v = ar_json_parse(call->raw, why, sizeof(why));
    if (!v) {
        /* The gateway's validator passed the text, so what jansson refuses is beyond the
         * grammar: a number out of range, a lone surrogate escape, invalid UTF-8, a NUL in
         * a key. The client's fault: say what (jansson quotes the text near it, so only
         * printable ASCII of it is kept) and let the build hook answer AR_EINVAL. */
        for (char *c = why; *c; c++) {
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                *c = '?';
        }
        call->error_detail =
            ar_pool_printf(call->pool, "request body cannot be translated: %s", why);
        return NULL;
    }
    ar_pool_cleanup_add(call->pool, decref, v);
    for (size_t i = 0; i < ar_request_extensions_cnt; i++)
        json_object_del(v, ar_request_extensions[i]);
    call->body = v;
    return v;
}

void ar_header_lines_init(ar_header_lines_t *h, const ar_cred_conf_t *conf)
{
    h->lines = NULL;
    h->cnt = 0;
    if (!conf->headers_cnt)
        return;
    h->lines = ar_xcalloc(conf->headers_cnt, sizeof(char *));
    for (size_t i = 0; i < conf->headers_cnt; i++) {
        size_t n = strlen(conf->headers[i].key) + strlen(conf->headers[i].value) + 3;
        h->lines[i] = ar_xmalloc(n);
        snprintf(h->lines[i], n, "%s: %s", conf->headers[i].key, conf->headers[i].value);
    }
    h->cnt = conf->headers_cnt;
}

void ar_header_lines_dispose(ar_header_lines_t *h)
{
    for (size_t i = 0; i < h->cnt; i++)
        ar_free(h->lines[i]);
    ar_free(h->lines);
    h->lines = NULL;
    h->cnt = 0;
}

int ar_header_lines_add(const ar_header_lines_t *h, ar_http_req_t *out)
{
    int rc = 0;
    for (size_t i = 0; i < h->cnt && !rc; i++)
        rc = ar_http_req_add_header(out, h->lines[i]);
    return rc;
}

int ar_provider_native_body(ar_call_t *call, ar_span_t *out)
{
    ar_span_t raw = call->native_in.raw;
    ar_span_t at = call->native_in.raw_model;
    ar_buf_t model;
    ar_buf_init(&model, 4096);
    int rc = ar_buf_append_str(&model, "\"");
    rc = rc ? rc : ar_buf_append_json_escaped(&model, ar_span_cstr(call->model));
    rc = rc ? rc : ar_buf_append_str(&model, at.len ? "\"" : "\",");
    size_t open = 0;
    while (open < raw.len && raw.ptr[open] != '{')
        open++;
    if (rc || open == raw.len) {
        ar_buf_dispose(&model);
        return rc ? rc : AR_EINVAL;
    }
    /* the value replaced where it stands, or "model":"...", first when there was none */
    size_t cut_from = at.len ? (size_t)(at.ptr - raw.ptr) : open + 1;
    size_t cut_to = at.len ? cut_from + at.len : open + 1;
    const char *key = at.len ? "" : "\"model\":";
    size_t rest = cut_to;
    while (!at.len && rest < raw.len &&
           (raw.ptr[rest] == ' ' || raw.ptr[rest] == '\n' || raw.ptr[rest] == '\r' ||
            raw.ptr[rest] == '\t'))
        rest++;
    bool empty = !at.len && rest < raw.len && raw.ptr[rest] == '}';
    size_t mlen = model.len - (empty ? 1 : 0); /* no comma before the closing brace */
    size_t klen = strlen(key);
    size_t n = cut_from + klen + mlen + (raw.len - cut_to);
    char *b = ar_pool_alloc(call->pool, n + 1);
    memcpy(b, raw.ptr, cut_from);
    memcpy(b + cut_from, key, klen);
    memcpy(b + cut_from + klen, model.ptr, mlen);
    memcpy(b + cut_from + klen + mlen, raw.ptr + cut_to, raw.len - cut_to);
    b[n] = '\0';
    ar_buf_dispose(&model);
    *out = ar_span(b, n);
    return 0;
}

int ar_provider_native_headers(const ar_call_t *call, ar_http_req_t *out)
{
    for (size_t i = 0; i < call->native_in.headers_cnt; i++) {
        int rc = ar_http_req_add_header(out, call->native_in.headers[i]);
        if (rc)
            return rc;
    }
    return 0;
}
