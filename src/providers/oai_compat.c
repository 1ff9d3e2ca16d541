/*
 * oai_compat.c: the OpenAI wire format (see oai_compat.h). Everything on the stream path
 * reads JSON with the allocation-free scanner; only request building uses jansson, once
 * per attempt.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "providers/oai_compat.h"

char *ar_oai_join_url(const char *base, const char *path)
{
    size_t bl = strlen(base);
    if (bl >= 3 && strcmp(base + bl - 3, "/v1") == 0 && strncmp(path, "/v1/", 4) == 0)
        path += 3;
    size_t pl = strlen(path);
    char *u = ar_xmalloc(bl + pl + 1);
    memcpy(u, base, bl);
    memcpy(u + bl, path, pl + 1);
    return u;
}

int ar_oai_init(ar_oai_t *o, const ar_cred_conf_t *conf, const char *auth_name,
                const char *auth_prefix, const char *const paths[AR_EP_CNT],
                const char *models_path, char *err, size_t errlen)
{
    if (!conf->base_url || !conf->base_url[0]) {
        snprintf(err, errlen, "credential %s: base_url is required", conf->name);
        return AR_EINVAL;
    }
    o->model_in_body = true;
    if (conf->api_key && conf->api_key[0]) {
        size_t n = strlen(auth_name) + strlen(auth_prefix) + strlen(conf->api_key) + 3;
        o->auth_line = ar_xmalloc(n);
        snprintf(o->auth_line, n, "%s: %s%s", auth_name, auth_prefix, conf->api_key);
    }
    ar_header_lines_init(&o->extra, conf);
    for (int i = 0; i < AR_EP_CNT; i++)
        o->urls[i] = paths && paths[i] ? ar_oai_join_url(conf->base_url, paths[i]) : NULL;
    o->models_url = models_path ? ar_oai_join_url(conf->base_url, models_path) : NULL;
    return 0;
}

void ar_oai_dispose(ar_oai_t *o)
{
    ar_free(o->auth_line);
    ar_header_lines_dispose(&o->extra);
    for (int i = 0; i < AR_EP_CNT; i++) {
        ar_free(o->urls[i]);
        ar_free(o->url_tails[i]);
    }
    ar_free(o->models_url);
    ar_free(o->responses_url);
}

static int add_common_headers(ar_oai_t *o, ar_http_req_t *out)
{
    int rc = 0;
    if (o->auth_line)
        rc = ar_http_req_add_header(out, o->auth_line);
    return rc ? rc : ar_header_lines_add(&o->extra, out);
}

static const char so_member[] = ",\"stream_options\":{\"include_usage\":true}";

static bool is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/*
 * The spliced body for deployment URLs, where the model is in the URL: the raw body with
 * its "model" member cut out (with one neighbouring comma) and, for streams,
 * stream_options added. raw.ptr[close] is the body's final '}'.
 * @return 0, or AR_EAGAIN when the member is not written the plain way (the tree path).
 */
static int splice_drop_model(ar_call_t *call, ar_span_t raw, size_t close, bool add_so,
                             ar_span_t *out)
{
    size_t from = close; /* the cut is [from, to); empty without a model member */
    size_t to = close;
    if (call->raw_model.len) {
        size_t at = (size_t)(call->raw_model.ptr - raw.ptr);
        size_t k = at;
        while (k > 0 && is_ws(raw.ptr[k - 1]))
            k--;
        if (k == 0 || raw.ptr[k - 1] != ':')
            return AR_EAGAIN;
        k--;
        while (k > 0 && is_ws(raw.ptr[k - 1]))
            k--;
        if (k < 7 || memcmp(raw.ptr + k - 7, "\"model\"", 7) != 0)
            return AR_EAGAIN;
        from = k - 7;
        to = at + call->raw_model.len;
        size_t next = to;
        while (next < close && is_ws(raw.ptr[next]))
            next++;
        if (next < close && raw.ptr[next] == ',') {
            to = next + 1; /* a member follows: take the comma after the model */
        } else {
            size_t prev = from; /* the last member: take the comma before it */
            while (prev > 0 && is_ws(raw.ptr[prev - 1]))
                prev--;
            if (prev > 0 && raw.ptr[prev - 1] == ',')
                from = prev - 1;
        }
    }
    if (add_so) {
        /* An object left empty cannot take ",stream_options". The gateway never sends one
         * (it requires messages, prompt or input), but the tree path copes if it ever does. */
        size_t last = from;
        while (last > 0 && is_ws(raw.ptr[last - 1]))
            last--;
        size_t rest = to;
        while (rest < close && is_ws(raw.ptr[rest]))
            rest++;
        if (last > 0 && raw.ptr[last - 1] == '{' && rest == close)
            return AR_EAGAIN;
    }
    char *b = ar_pool_alloc(call->pool, raw.len + sizeof(so_member));
    memcpy(b, raw.ptr, from);
    size_t n = from;
    memcpy(b + n, raw.ptr + to, close - to);
    n += close - to;
    if (add_so) {
        memcpy(b + n, so_member, sizeof(so_member) - 1);
        n += sizeof(so_member) - 1;
    }
    b[n++] = '}';
    *out = ar_span(b, n);
    return 0;
}

/*
 * The pass-through body, spliced: the raw client body with the model value replaced (or
 * removed, for deployment URLs) and, for streams, stream_options added. No tree is built
 * and nothing is re-serialised.
 * @return 0, or AR_EAGAIN when the body needs a real edit (the tree path does it).
 */
static int splice_body(const ar_oai_t *o, ar_call_t *call, ar_span_t *out)
{
    bool stream = call->stream && call->endpoint != AR_EP_EMBEDDINGS;
    if (!call->raw.len || call->raw_has_extensions)
        return AR_EAGAIN;
    if (stream && call->raw_stream_options.len && !call->client_wants_usage)
        return AR_EAGAIN; /* include_usage must be switched on inside the client's object */
    ar_span_t raw = call->raw;
    size_t close = raw.len;
    while (close > 0 && raw.ptr[close - 1] != '}')
        close--;
    if (close == 0)
        return AR_EAGAIN;
    close--; /* index of the final '}' */
    bool add_so = stream && !call->raw_stream_options.len;
    if (!o->model_in_body)
        return splice_drop_model(call, raw, close, add_so, out);
    ar_buf_t model;
    ar_buf_init(&model, 4096);
    int rc = ar_buf_append(&model, "\"", 1);
    rc = rc ? rc : ar_buf_append_json_escaped(&model, ar_span_cstr(call->model));
    rc = rc ? rc : ar_buf_append(&model, "\"", 1);
    if (rc) {
        ar_buf_dispose(&model);
        return AR_EAGAIN;
    }
    size_t cap = raw.len + model.len + sizeof(so_member) + 16;
    char *b = ar_pool_alloc(call->pool, cap);
    size_t n = 0;
    if (call->raw_model.len) {
        size_t at = (size_t)(call->raw_model.ptr - raw.ptr);
        memcpy(b, raw.ptr, at);
        n = at;
        memcpy(b + n, model.ptr, model.len);
        n += model.len;
        size_t after = at + call->raw_model.len;
        memcpy(b + n, raw.ptr + after, close - after);
        n += close - after;
    } else {
        size_t open = 0;
        while (raw.ptr[open] != '{')
            open++;
        memcpy(b, raw.ptr, open + 1);
        n = open + 1;
        memcpy(b + n, "\"model\":", 8);
        n += 8;
        memcpy(b + n, model.ptr, model.len);
        n += model.len;
        size_t first = open + 1;
        while (first < close && is_ws(raw.ptr[first]))
            first++;
        if (first < close) /* members follow (an empty object takes no comma) */
            b[n++] = ',';
        memcpy(b + n, raw.ptr + open + 1, close - open - 1);
        n += close - open - 1;
    }
    if (add_so) {
        memcpy(b + n, so_member, sizeof(so_member) - 1);
        n += sizeof(so_member) - 1;
    }
    b[n++] = '}';
    ar_buf_dispose(&model);
    *out = ar_span(b, n);
    return 0;
}

/* The tree path: for bodies that need edits the splice cannot do. */
/* Anthropic's prompt-caching marks (they reach the tree from /v1/messages): an OpenAI API
 * rejects them, an Anthropic upstream needs them, so they are dropped only here. */
static void strip_cache_control(json_t *body)
{
    json_t *msgs = json_object_get(body, "messages");
    size_t i, k;
    json_t *m, *part;
    json_array_foreach (msgs, i, m) {
        json_object_del(m, "cache_control");
        json_array_foreach (json_object_get(m, "content"), k, part) {
            json_object_del(part, "cache_control");
        }
    }
    json_array_foreach (json_object_get(body, "tools"), i, part) {
        json_object_del(part, "cache_control");
    }
    json_object_del(body, "top_k");
}

static int tree_body(const ar_oai_t *o, ar_call_t *call, ar_span_t *out)
{
    json_t *body = ar_call_json(call);
    if (!body)
        return AR_EINVAL; /* ar_call_json named the problem */
    strip_cache_control(body);
    if (o->model_in_body)
        json_object_set_new(body, "model", json_string(call->model));
    else
        json_object_del(body, "model");
    if (call->stream && call->endpoint != AR_EP_EMBEDDINGS) {
        /* Always ask for usage: TPM accounting needs it (dropped again if unasked). */
        json_t *so = json_object_get(body, "stream_options");
        if (!json_is_object(so)) {
            so = json_object();
            json_object_set_new(body, "stream_options", so);
        }
        json_object_set_new(so, "include_usage", json_true());
    }
    return ar_provider_dump_body(call, body, out);
}

static bool url_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* urls[ep] + the model, percent-encoded (RFC 3986 unreserved bytes stay) + url_tails[ep],
 * measured, then allocated once from the pool. NULL when there is no model to put there. */
static const char *model_url(const ar_oai_t *o, ar_call_t *call)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *head = o->urls[call->endpoint];
    const char *tail = o->url_tails[call->endpoint];
    const unsigned char *m = (const unsigned char *)(call->model ? call->model : "");
    if (!m[0])
        return NULL;
    size_t hl = strlen(head);
    size_t tl = tail ? strlen(tail) : 0;
    size_t ml = 0;
    for (const unsigned char *c = m; *c; c++)
        ml += url_unreserved(*c) ? 1 : 3;
    char *u = ar_pool_alloc(call->pool, hl + ml + tl + 1);
    memcpy(u, head, hl);
    char *w = u + hl;
    for (const unsigned char *c = m; *c; c++) {
        if (url_unreserved(*c)) {
            *w++ = (char)*c;
        } else {
            *w++ = '%';
            *w++ = hex[*c >> 4];
            *w++ = hex[*c & 15];
        }
    }
    memcpy(w, tail ? tail : "", tl + 1);
    return u;
}

/* A Responses API client's request, as sent (model substituted). */
static int native_request(ar_oai_t *o, ar_call_t *call, ar_http_req_t *out)
{
    int rc = ar_provider_native_body(call, &out->body);
    rc = rc ? rc : ar_provider_post_json(out, o->responses_url, call->stream);
    rc = rc ? rc : add_common_headers(o, out);
    rc = rc ? rc : ar_provider_native_headers(call, out);
    call->native = rc == 0;
    return rc;
}

int ar_oai_build_request(ar_provider_t *p, ar_call_t *call, ar_http_req_t *out)
{
    ar_oai_t *o = (ar_oai_t *)p;
    if (o->responses_url && call->native_in.wire == AR_WIRE_RESPONSES)
        return native_request(o, call, out);
    const char *url = o->urls[call->endpoint];
    if (!url)
        return AR_ENOTFOUND;
    if (o->model_in_url) {
        url = model_url(o, call);
        if (!url) {
            call->error_detail = "no deployment name to put in the URL";
            return AR_EINVAL;
        }
    }
    int rc = call->body ? AR_EAGAIN : splice_body(o, call, &out->body);
    if (rc == AR_EAGAIN)
        rc = tree_body(o, call, &out->body);
    if (rc)
        return rc;
    rc = ar_provider_post_json(out, url, call->stream);
    if (!rc)
        rc = add_common_headers(o, out);
    return rc;
}

int ar_oai_parse_response(ar_provider_t *p, ar_call_t *call, ar_span_t body, ar_buf_t *out)
{
    (void)p;
    (void)out;
    ar_span_t usage;
    if (ar_jscan_get(body, AR_LIT("usage"), &usage) == 0 && !ar_jscan_is_null(usage))
        ar_provider_usage_from_openai(usage, &call->usage);
    return 0; /* pass the body through untouched */
}

static bool is_empty_array(ar_span_t v)
{
    if (v.len < 2 || v.ptr[0] != '[')
        return false;
    for (size_t i = 1; i < v.len - 1; i++) {
        if (v.ptr[i] != ' ' && v.ptr[i] != '\n' && v.ptr[i] != '\t' && v.ptr[i] != '\r')
            return false;
    }
    return v.ptr[v.len - 1] == ']';
}

/* True when some ']' in s closes an empty array ("[]", "[ ]"): a cheap byte scan that lets
 * almost every chunk skip the real look at "choices" below. */
static bool may_hold_empty_array(ar_span_t s)
{
    if (s.len == 0)
        return false; /* an event without data has a NULL ptr: no pointer arithmetic on it */
    const char *p = s.ptr;
    const char *end = s.ptr + s.len;
    while ((p = memchr(p, ']', (size_t)(end - p))) != NULL) {
        const char *q = p;
        while (q > s.ptr && is_ws(q[-1]))
            q--;
        if (q > s.ptr && q[-1] == '[')
            return true;
        p++;
    }
    return false;
}

/* A chunk without choices and without usage tells a client nothing a chat.completion.chunk
 * can carry: Azure's first chunk (empty object, prompt_filter_results) is one. Typed clients
 * expect every event to be a chunk with choices, so it is dropped, as LiteLLM does. */
static bool is_choiceless(ar_span_t data)
{
    ar_span_t choices;
    return may_hold_empty_array(data) && ar_jscan_get(data, AR_LIT("choices"), &choices) == 0 &&
           is_empty_array(choices);
}

/*
 * A Responses API stream, relayed untouched: the terminal events (completed, incomplete,
 * failed) carry the response with its usage.
 */
static int native_event(ar_call_t *call, const ar_sse_event_t *ev)
{
    ar_span_t type = ev->event;
    if (ev->data.len && ar_json_validate(ev->data, NULL, 0) != 0) {
        call->error_detail = "the upstream sent a stream event that is not JSON";
        return AR_EUPSTREAM;
    }
    if (!type.len && ar_jscan_get(ev->data, AR_LIT("type"), &type) == 0)
        (void)ar_jscan_string(type, &type);
    if (!ar_span_starts(type, AR_LIT("response.")) && !ar_span_eq(type, AR_LIT("error")))
        return AR_PROV_PASS;
    if (ar_span_eq(type, AR_LIT("response.completed")) ||
        ar_span_eq(type, AR_LIT("response.incomplete")) ||
        ar_span_eq(type, AR_LIT("response.failed")) || ar_span_eq(type, AR_LIT("error"))) {
        ar_span_t resp, usage;
        if (ar_jscan_get(ev->data, AR_LIT("response"), &resp) == 0 &&
            ar_jscan_get(resp, AR_LIT("usage"), &usage) == 0 && !ar_jscan_is_null(usage))
            ar_provider_usage_from_openai(usage, &call->usage);
        call->stream_done = true;
    }
    return AR_PROV_PASS;
}

int ar_oai_parse_event(ar_provider_t *p, ar_call_t *call, const ar_sse_event_t *ev, ar_buf_t *out)
{
    (void)p;
    (void)out;
    if (call->native)
        return native_event(call, ev);
    ar_span_t data = ar_span_trim(ev->data);
    if (ar_span_eq(data, AR_LIT("[DONE]"))) {
        call->stream_done = true;
        return AR_PROV_PASS;
    }
    /* Fast reject, per event: with include_usage on, every chunk but the last carries
     * "usage":null as its last member. A bare "usage" in raw JSON can only be a key or the
     * string value "usage" (quotes inside strings are escaped), so when its last
     * occurrence reads "usage":null there is no usage here; anything else gets a real
     * scan. */
    /* backwards from the end, quote by quote: usage is the last member, so the hit is
     * usually the first quote looked at */
    const char *u = NULL;
    size_t left = data.len;
    while (left >= 7) {
        const char *q = memrchr(data.ptr, '"', left);
        if (!q)
            break;
        if (q - data.ptr >= 6 && memcmp(q - 6, "\"usage", 6) == 0) {
            u = q - 6;
            break;
        }
        left = (size_t)(q - data.ptr);
    }
    if (!u)
        return is_choiceless(data) ? 0 : AR_PROV_PASS;
    ar_span_t after = ar_span_trim(ar_span(u + 7, (size_t)(data.ptr + data.len - u - 7)));
    if (after.len && after.ptr[0] == ':') {
        after = ar_span_trim(ar_span_skip(after, 1));
        if (ar_span_starts(after, AR_LIT("null")))
            return is_choiceless(data) ? 0 : AR_PROV_PASS;
    }
    ar_span_t usage;
    if (ar_jscan_get(data, AR_LIT("usage"), &usage) != 0 || ar_jscan_is_null(usage))
        return is_choiceless(data) ? 0 : AR_PROV_PASS;
    ar_provider_usage_from_openai(usage, &call->usage);
    if (call->client_wants_usage)
        return AR_PROV_PASS;
    ar_span_t choices;
    if (ar_jscan_get(data, AR_LIT("choices"), &choices) == 0 && is_empty_array(choices))
        return 0; /* the usage-only chunk the client did not ask for */
    return AR_PROV_PASS;
}

int ar_oai_build_models_request(ar_provider_t *p, ar_pool_t *pool, ar_http_req_t *out)
{
    (void)pool;
    ar_oai_t *o = (ar_oai_t *)p;
    if (!o->models_url)
        return AR_ENOTFOUND;
    out->method = "GET";
    out->url = o->models_url;
    out->body = AR_SPAN_NULL;
    return add_common_headers(o, out);
}

int ar_oai_parse_models(ar_provider_t *p, ar_span_t body, ar_strlist_t *ids)
{
    (void)p;
    json_t *root = ar_json_parse(body, NULL, 0);
    if (!root)
        return AR_EPARSE;
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(data)) {
        json_decref(root);
        return AR_EPARSE;
    }
    size_t i;
    json_t *m;
    json_array_foreach (data, i, m) {
        const char *id = ar_json_str(m, "id");
        if (!id)
            continue;
        ids->items = ar_xrealloc(ids->items, (ids->cnt + 1) * sizeof(char *));
        ids->items[ids->cnt++] = ar_xstrdup(id);
    }
    json_decref(root);
    return 0;
}

static const char *const v1_paths[AR_EP_CNT] = {
    [AR_EP_CHAT] = "/v1/chat/completions",
    [AR_EP_COMPLETIONS] = "/v1/completions",
    [AR_EP_EMBEDDINGS] = "/v1/embeddings",
};

ar_provider_t *ar_oai_create_bearer(const ar_cred_conf_t *conf, char *err, size_t errlen)
{
    ar_oai_t *o = ar_xcalloc(1, sizeof(*o));
    if (ar_oai_init(o, conf, "Authorization", "Bearer ", v1_paths, "/v1/models", err, errlen)) {
        ar_oai_destroy(&o->super);
        return NULL;
    }
    if (conf->native_api)
        o->responses_url = ar_oai_join_url(conf->base_url, "/v1/responses");
    return &o->super;
}

void ar_oai_destroy(ar_provider_t *p)
{
    ar_oai_t *o = (ar_oai_t *)p;
    ar_oai_dispose(o);
    ar_free(o);
}
