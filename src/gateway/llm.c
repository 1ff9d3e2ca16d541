/*
 * llm.c: the LLM endpoints (chat, completions, embeddings): parse and validate the body
 * once (SPEC section 10: every malformed request gets a precise 400), strip airouter's
 * request extensions, apply client rate limits, resolve the model to candidates, and hand
 * over to attempt.c.
 */
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "gateway/gateway_int.h"

static void bad_request(ar_http_request_t *req, const char *code, const char *msg)
{
    ar_gw_error(req, 400, "invalid_request_error", code, msg);
}

static void free_req_bufs(void *arg)
{
    ar_gw_req_t *g = arg;
    ar_buf_dispose(&g->up_body);
    ar_buf_dispose(&g->ev_out);
    ar_sse_parser_dispose(&g->sse);
    ar_sse_parser_dispose(&g->front_sse);
    ar_buf_dispose(&g->front_out);
    if (g->inproc_init)
        ar_buf_dispose(&g->inproc.body);
}

/* The top-level members the gateway routes on, found in one pass over the raw body. */
typedef struct fields {
    ar_span_t model, messages, prompt, input, stream, stream_options;
    ar_span_t max_tokens; /* max_completion_tokens, else max_tokens */
    bool has_extension;
    ar_span_t ext[8];     /* the extensions' values, by index in ar_request_extensions */
    ar_jscan_keys_t keys; /* every member's raw key, for the duplicate check */
} fields_t;

/* The index of key in ar_request_extensions, or -1. */
static int extension_of(ar_span_t key)
{
    for (size_t i = 0; i < ar_request_extensions_cnt; i++) {
        if (ar_jscan_key_eq(key, ar_span_cstr(ar_request_extensions[i])))
            return (int)i;
    }
    return -1;
}

/* Keys are compared decoded ("mod\u0065l" is "model" to every parser upstream too).
 * @return false when the (validated) body is not an object. */
static bool scan_fields(ar_pool_t *pool, ar_span_t body, fields_t *f)
{
    memset(f, 0, sizeof(*f));
    ar_jscan_iter_t it;
    ar_span_t k, v;
    if (ar_jscan_object_begin(body, &it) != 0)
        return false;
    while (ar_jscan_object_next(&it, &k, &v)) {
        ar_jscan_keys_add(pool, &f->keys, k);
        if (ar_jscan_key_eq(k, AR_LIT("model")))
            f->model = v;
        else if (ar_jscan_key_eq(k, AR_LIT("max_completion_tokens")) ||
                 (ar_jscan_key_eq(k, AR_LIT("max_tokens")) && !f->max_tokens.len))
            f->max_tokens = v;
        else if (ar_jscan_key_eq(k, AR_LIT("messages")))
            f->messages = v;
        else if (ar_jscan_key_eq(k, AR_LIT("prompt")))
            f->prompt = v;
        else if (ar_jscan_key_eq(k, AR_LIT("input")))
            f->input = v;
        else if (ar_jscan_key_eq(k, AR_LIT("stream")))
            f->stream = v;
        else if (ar_jscan_key_eq(k, AR_LIT("stream_options")))
            f->stream_options = v;
        else if (extension_of(k) >= 0 && (size_t)extension_of(k) < AR_ARRAY_CNT(f->ext)) {
            f->has_extension = true;
            f->ext[extension_of(k)] = v;
        }
    }
    return true;
}

/*
 * A member given twice is read differently by different parsers (the gateway would route
 * and price one value while the upstream uses the other), so it is refused, naming the key.
 * The objects whose members the gateway itself reads are checked: the body and
 * stream_options. @return NULL, or the message.
 */
static const char *duplicate_member(ar_pool_t *pool, fields_t *f)
{
    ar_span_t dup;
    const char *where = NULL;
    if (ar_jscan_keys_duplicate(pool, &f->keys, &dup))
        where = "the request body";
    else if (f->stream_options.len && ar_jscan_object_duplicate(pool, f->stream_options, &dup))
        where = "'stream_options'";
    if (!where)
        return NULL;
    size_t shown = dup.len;
    if (shown > 100) {
        shown = 100;
        while (shown > 0 && ((unsigned char)dup.ptr[shown] & 0xc0) == 0x80)
            shown--; /* never cut a UTF-8 character in two */
    }
    return ar_pool_printf(pool, "Duplicate member '%.*s' in %s", (int)shown, dup.ptr, where);
}

static char first_char(ar_span_t v)
{
    return v.len ? v.ptr[0] : '\0';
}

static bool is_lit(ar_span_t v, const char *lit)
{
    return ar_span_eq(v, ar_span_cstr(lit));
}

/* Checks the endpoint's required fields. @return NULL when fine, else the message. */
static const char *validate(ar_http_request_t *req, ar_endpoint_t ep, const fields_t *f,
                            const char **code)
{
    *code = "invalid_request_error";
    if (f->stream.len && !is_lit(f->stream, "true") && !is_lit(f->stream, "false") &&
        !is_lit(f->stream, "null"))
        return "'stream' must be a boolean";
    if (f->model.len && first_char(f->model) != '"' && !is_lit(f->model, "null")) {
        bool ok = first_char(f->model) == '[';
        ar_jscan_iter_t it;
        ar_span_t m;
        if (ok && ar_jscan_array_begin(f->model, &it) == 0) {
            while (ar_jscan_array_next(&it, &m))
                ok = ok && first_char(m) == '"';
        }
        if (!ok)
            return "'model' must be a string or an array of strings";
    }
    if (ep == AR_EP_CHAT) {
        if (!f->messages.len) {
            *code = "missing_required_parameter";
            return "Missing required parameter: 'messages'";
        }
        ar_jscan_iter_t it;
        ar_span_t m;
        if (ar_jscan_array_begin(f->messages, &it) != 0)
            return "'messages' must be a non-empty array";
        size_t i = 0;
        for (; ar_jscan_array_next(&it, &m); i++) {
            ar_span_t role;
            if (first_char(m) != '{' || ar_jscan_get(m, AR_LIT("role"), &role) != 0 ||
                first_char(role) != '"')
                return ar_pool_printf(req->pool,
                                      "'messages[%zu]' must be an object with a string 'role'", i);
        }
        if (i == 0)
            return "'messages' must be a non-empty array";
    } else if (ep == AR_EP_COMPLETIONS) {
        if (!f->prompt.len) {
            *code = "missing_required_parameter";
            return "Missing required parameter: 'prompt'";
        }
    } else if (ep == AR_EP_EMBEDDINGS) {
        if (!f->input.len) {
            *code = "missing_required_parameter";
            return "Missing required parameter: 'input'";
        }
        if (first_char(f->input) != '"' && first_char(f->input) != '[')
            return "'input' must be a string or an array";
    }
    return NULL;
}

/* The routing extensions of a raw body (only when it has some: they are rare).
 * @return NULL, or the 400 message. */
static const char *route_filter(ar_http_request_t *req, const fields_t *f, ar_route_filter_t *out)
{
    json_t *obj = json_object();
    if (!obj)
        return "out of memory";
    for (size_t i = 0; i < AR_ARRAY_CNT(f->ext) && i < ar_request_extensions_cnt; i++) {
        if (!f->ext[i].len)
            continue;
        json_error_t jerr;
        json_t *v =
            json_loadb(f->ext[i].ptr, f->ext[i].len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!v) { /* the body is valid JSON: a number too large to read */
            json_decref(obj);
            return ar_pool_printf(req->pool, "'%s' has a value out of range",
                                  ar_request_extensions[i]);
        }
        json_object_set_new(obj, ar_request_extensions[i], v);
    }
    const char *problem = ar_gw_route_filter(req->pool, obj, out);
    json_decref(obj);
    return problem;
}

static ar_gw_req_t *new_req(ar_http_request_t *req, ar_runtime_t *rt, ar_endpoint_t ep)
{
    ar_gw_req_t *g = ar_pool_calloc(req->pool, sizeof(*g));
    g->http = req;
    g->gw = req->worker->data;
    g->rt = rt;
    g->endpoint = ep;
    ar_buf_init(&g->up_body, rt->max_response_bytes);
    ar_buf_init(&g->ev_out, 1u << 26);
    ar_sse_parser_init(&g->sse, 16u << 20);
    ar_sse_parser_init(&g->front_sse, 16u << 20);
    ar_buf_init(&g->front_out, 1u << 26);
    ar_list_init(&g->unflushed_link);
    ar_pool_cleanup_add(req->pool, free_req_bufs, g);
    g->call.pool = req->pool;
    g->call.endpoint = ep;
    return g;
}

/*
 * A virtual key's aliases (its assigned store models): each name that is one of them is
 * replaced by the provider model's internal name, and its tps counted. @return the names
 * to route (names itself when the key has no alias), and in *hits the aliases used (in
 * the pool, *hits_cnt of them); NULL after answering 429 (limit_type "key"), or names
 * (NULL) when there are none.
 */
static const ar_span_t *map_aliases(ar_http_request_t *req, const ar_runtime_t *rt,
                                    const ar_tkey_conf_t *kc, const ar_span_t *names,
                                    size_t names_cnt, const ar_tkey_alias_t ***hits,
                                    size_t *hits_cnt)
{
    *hits = NULL;
    *hits_cnt = 0;
    if (!kc || kc->aliases_cnt == 0 || names_cnt == 0)
        return names;
    ar_span_t *out = ar_pool_alloc(req->pool, names_cnt * sizeof(*out));
    *hits = ar_pool_alloc(req->pool, names_cnt * sizeof(**hits));
    uint64_t now = ar_now_ms();
    for (size_t i = 0; i < names_cnt; i++) {
        const ar_tkey_alias_t *a = ar_tkey_alias(kc, names[i].ptr, names[i].len);
        out[i] = a ? ar_span_cstr(a->target) : names[i];
        if (!a)
            continue;
        int64_t retry_ms = 0;
        if (!ar_tkey_alias_admit(a, now, &retry_ms)) {
            for (size_t j = 0; j < *hits_cnt; j++) {
                if ((*hits)[j]->window)
                    ar_window_sub_at((*hits)[j]->window, now, 1);
            }
            ar_gw_refuse_limit(req, rt, "key", retry_ms > 0 ? retry_ms : 1000,
                               ar_pool_printf(req->pool,
                                              "Rate limit of %g requests per second exceeded "
                                              "for the model '%s' on this key",
                                              a->tps, a->alias));
            return NULL;
        }
        (*hits)[(*hits_cnt)++] = a;
    }
    return out;
}

/* Gives back the tps counted for a request refused after map_aliases. */
static void unmap_aliases(const ar_tkey_alias_t **hits, size_t hits_cnt)
{
    uint64_t now = ar_now_ms();
    for (size_t i = 0; i < hits_cnt; i++) {
        if (hits[i]->window)
            ar_window_sub_at(hits[i]->window, now, 1);
    }
}

static bool hit_targets(const ar_tkey_alias_t **hits, size_t hits_cnt, const char *name)
{
    for (size_t i = 0; i < hits_cnt; i++) {
        if (strcmp(hits[i]->target, name) == 0)
            return true;
    }
    return false;
}

/*
 * Store connections serve only the aliases of the keys they are assigned to: a candidate
 * on one is kept only when the caller's alias led to its model (a client naming the
 * internal name, or pinning "store:conn/anything", gets nothing from it). @return whether
 * any candidate was dropped.
 */
static bool drop_unassigned(ar_candidates_t *c, const ar_tkey_alias_t **hits, size_t hits_cnt)
{
    size_t n = 0, primary = 0;
    for (size_t i = 0; i < c->cnt; i++) {
        const ar_deployment_t *d = c->items[i];
        if (d->cred->from_store &&
            !(d->model && d->model->from_store && hit_targets(hits, hits_cnt, d->model->name)))
            continue;
        if (i < c->primary_cnt)
            primary++;
        c->items[n++] = d;
    }
    bool dropped = n != c->cnt;
    c->cnt = n;
    c->primary_cnt = primary;
    return dropped;
}

/* What every LLM request does once its body is understood: client limits, candidates,
 * then the first attempt. */
static void start(ar_http_request_t *req, ar_runtime_t *rt, ar_gw_req_t *g, const ar_span_t *names,
                  size_t names_cnt)
{
    /* A model name reaches headers (x-airouter-model), log lines and upstream URLs: one with
     * control characters (or that did not decode) is refused before anything else. */
    for (size_t i = 0; i < names_cnt; i++) {
        if (!names[i].ptr || names[i].len == 0 || ar_span_has_ctl(names[i], true)) {
            bad_request(req, "invalid_model",
                        "'model' must be a non-empty string without control characters");
            return;
        }
    }
    g->call.public_model = names_cnt ? ar_pool_strdup_span(req->pool, names[0]) : "auto";

    /* Client limits come before routing: a refused request costs no upstream capacity. */
    if (ar_gw_ratelimit(req, rt, names_cnt ? names[0] : AR_LIT("auto"), &g->rl_charge) != 0)
        return;

    /* TPM is charged with an estimate before sending (about 4 bytes a token) and
     * corrected with the real usage afterwards */
    g->est_tokens = (int64_t)(req->body.len / 4) + 1;

    /* the access line names the model even when no deployment serves it */
    ar_gw_ctx_t *ctx = req->data;
    ctx->log_model = g->call.public_model;
    ctx->log_stream = g->call.stream;

    /* a virtual key's aliases route to the store models assigned to it */
    const ar_tkey_conf_t *kc = ctx->key ? atomic_load(&ctx->key->conf) : NULL;
    const ar_tkey_alias_t **hits;
    size_t hits_cnt;
    const ar_span_t *route = map_aliases(req, rt, kc, names, names_cnt, &hits, &hits_cnt);
    if (!route && names_cnt) /* refused (an absent model has no names: NULL is no refusal) */
        return;
    if (hits_cnt) {
        g->alias_hits = ar_pool_alloc(req->pool, hits_cnt * sizeof(*g->alias_hits));
        for (size_t i = 0; i < hits_cnt; i++) {
            g->alias_hits[i][0] = ar_pool_strdup_span(req->pool, ar_span_cstr(hits[i]->alias));
            g->alias_hits[i][1] = ar_pool_strdup_span(req->pool, ar_span_cstr(hits[i]->target));
        }
        g->alias_hits_cnt = hits_cnt;
    }
    ar_route_query_t q = {route, names_cnt, ar_now_ms(), &g->filter};
    ar_router_candidates(rt->router, req->pool, &q, &g->cands);
    if (drop_unassigned(&g->cands, hits, hits_cnt) && g->cands.cnt == 0) {
        g->cands.empty_reason = AR_ENOTFOUND;
        g->cands.unknown_model = NULL;
    }
    if (g->cands.cnt == 0) {
        unmap_aliases(hits, hits_cnt);
        if (g->cands.empty_reason == AR_ENOTFOUND) {
            /* the client's name, never an internal one its alias stood for */
            const char *m =
                hits_cnt || !g->cands.unknown_model ? g->call.public_model : g->cands.unknown_model;
            ar_gw_error(req, 404, "not_found_error", "model_not_found",
                        ar_pool_printf(req->pool,
                                       "The model '%s' does not exist or no credential serves it",
                                       m));
        } else if (g->cands.filtered) {
            char which[96];
            ar_gw_error(
                req, 503, "service_unavailable_error", "no_available_deployment",
                ar_pool_printf(req->pool,
                               "No available deployment for model '%s' matches the "
                               "request's filters (%s)",
                               g->call.public_model,
                               ar_route_filter_names(g->cands.filtered, which, sizeof(which))));
        } else {
            ar_gw_error(req, 503, "service_unavailable_error", "no_available_deployment",
                        ar_pool_printf(req->pool, "No available deployment for model '%s'",
                                       g->call.public_model));
        }
        return;
    }
    g->ctx = *ctx; /* the runtime, the front, the X-RateLimit-* values, the key, the log */
    /* the caller's virtual key: its models, RPM/TPM and quotas (nothing for the master key) */
    if (ar_gw_key_admit(g, names, names_cnt) != 0) {
        unmap_aliases(hits, hits_cnt);
        return;
    }
    ar_http_ref(req); /* released by ar_gw_req_finish */
    req->on_abort = ar_gw_req_abort;
    req->data = g;
    ar_gw_spend_hold(req);
    ar_gw_admit_next(g);
}

bool ar_gw_has_extension(const json_t *body)
{
    for (size_t i = 0; i < ar_request_extensions_cnt; i++) {
        if (json_object_get(body, ar_request_extensions[i]))
            return true;
    }
    return false;
}

void ar_gw_strip_extensions(json_t *body)
{
    for (size_t i = 0; i < ar_request_extensions_cnt; i++)
        json_object_del(body, ar_request_extensions[i]);
}

void ar_gw_llm_json(ar_http_request_t *req, ar_runtime_t *rt, json_t *body,
                    const ar_gw_native_t *native)
{
    ar_gw_pool_json(req->pool, body);
    ar_gw_req_t *g = new_req(req, rt, AR_EP_CHAT);
    /* without a chat form, what routing needs comes from the client's own request */
    const json_t *src = body ? body : native->client;
    json_t *model = json_object_get(src, "model");
    ar_span_t *names = NULL;
    size_t names_cnt = 0;
    if (json_is_string(model)) {
        names = ar_pool_alloc(req->pool, sizeof(*names));
        names[0] = ar_span(json_string_value(model), json_string_length(model));
        names_cnt = 1;
    } else if (json_is_array(model)) {
        names = ar_pool_alloc(req->pool, sizeof(*names) * (json_array_size(model) + 1));
        size_t i;
        json_t *m;
        json_array_foreach (model, i, m) {
            if (json_is_string(m))
                names[names_cnt++] = ar_span(json_string_value(m), json_string_length(m));
        }
    }
    /* the routing extensions come from the client's own request (a front's translation
     * does not carry them) */
    const char *bad =
        ar_gw_route_filter(req->pool, native && native->client ? native->client : body, &g->filter);
    if (bad) {
        bad_request(req, "invalid_request_error", bad);
        return;
    }
    if (body)
        ar_gw_strip_extensions(body);
    g->call.body = body;
    static const char *const max_keys[] = {"max_completion_tokens", "max_tokens",
                                           "max_output_tokens"};
    for (size_t i = 0; i < AR_ARRAY_CNT(max_keys) && !g->max_output_tokens; i++) {
        json_t *max = json_object_get(src, max_keys[i]);
        g->max_output_tokens = json_is_integer(max) ? json_integer_value(max) : 0;
    }
    g->call.stream = json_is_true(json_object_get(src, "stream"));
    g->call.client_wants_usage =
        json_is_true(json_object_get(json_object_get(src, "stream_options"), "include_usage"));
    if (native) {
        g->call.native_in = native->call;
        g->call.translate_error = native->translate_error;
        g->reasoning_hint = native->reasoning_hint;
        g->call.translate = native->translate;
        g->call.translate_ud = native->translate_ud;
        g->call.client_wants_usage = g->call.client_wants_usage || native->wants_usage;
    }
    start(req, rt, g, names, names_cnt);
}

void ar_gw_llm(ar_http_request_t *req, ar_runtime_t *rt, ar_endpoint_t ep, ar_span_t url_model)
{
    if (req->body.len == 0) {
        bad_request(req, "invalid_json", "Request body is empty: expected a JSON object");
        return;
    }
    char perr[160];
    if (ar_json_validate(req->body, perr, sizeof(perr)) != 0) {
        bad_request(req, "invalid_json",
                    ar_pool_printf(req->pool, "Malformed JSON in request body: %s", perr));
        return;
    }
    fields_t f;
    if (!scan_fields(req->pool, req->body, &f)) {
        bad_request(req, "invalid_json", "Request body must be a JSON object");
        return;
    }
    const char *dup = duplicate_member(req->pool, &f);
    if (dup) {
        bad_request(req, "duplicate_key", dup);
        return;
    }
    const char *code;
    const char *problem = validate(req, ep, &f, &code);
    if (problem) {
        bad_request(req, code, problem);
        return;
    }

    ar_gw_req_t *g = new_req(req, rt, ep);
    if (f.has_extension && (problem = route_filter(req, &f, &g->filter)) != NULL) {
        bad_request(req, "invalid_request_error", problem);
        return;
    }

    /* The model spec: a name, a priority list, "auto", or nothing (= auto). */
    ar_span_t *names = NULL;
    size_t names_cnt = 0;
    if (url_model.len) {
        names = ar_pool_alloc(req->pool, sizeof(*names));
        names[0] = url_model;
        names_cnt = 1;
    } else if (first_char(f.model) == '"') {
        names = ar_pool_alloc(req->pool, sizeof(*names));
        names[0] = ar_jscan_string_text(req->pool, f.model);
        names_cnt = 1;
    } else if (first_char(f.model) == '[') {
        ar_jscan_iter_t it;
        ar_span_t m;
        size_t cap = 0;
        (void)ar_jscan_array_begin(f.model, &it);
        while (ar_jscan_array_next(&it, &m))
            cap++;
        names = ar_pool_alloc(req->pool, sizeof(*names) * (cap ? cap : 1));
        (void)ar_jscan_array_begin(f.model, &it);
        while (ar_jscan_array_next(&it, &m))
            names[names_cnt++] = ar_jscan_string_text(req->pool, m);
    }
    g->call.raw = req->body;
    if (f.max_tokens.len == 0 || ar_parse_int64(f.max_tokens, &g->max_output_tokens) != 0)
        g->max_output_tokens = 0; /* absent, or not an integer: the upstream will say so */
    g->call.raw_model = f.model;
    g->call.raw_stream_options = f.stream_options;
    g->call.raw_has_extensions = f.has_extension;
    g->call.stream = ep != AR_EP_EMBEDDINGS && is_lit(f.stream, "true");
    ar_span_t usage;
    g->call.client_wants_usage =
        f.stream_options.len &&
        ar_jscan_get(f.stream_options, AR_LIT("include_usage"), &usage) == 0 &&
        is_lit(usage, "true");
    start(req, rt, g, names, names_cnt);
}
