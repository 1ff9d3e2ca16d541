/*
 * responses.c: OpenAI's Responses API in front of any provider (Codex CLI, the AI SDK's
 * default provider, LangChain's useResponsesApi). POST /v1/responses goes as the client
 * sent it to credentials that speak the API (openai, proxy: native pass-through) and as
 * its chat translation (fronts/responses.h) to the rest, whose answers the front turns
 * back into response objects and Responses events. Routing, limits, quotas and spend are
 * those of chat.
 *
 * Stored responses (store: true, the default as on OpenAI) belong to the key that made
 * them (the master key's are its own): previous_response_id brings the conversation back
 * from the store before routing; GET and DELETE /v1/responses/{id} and
 * GET /v1/responses/{id}/input_items read and remove them. Every store access is a job on
 * the store thread (ar_gw_store_call); the request waits, the worker does not.
 */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "fronts/responses.h"
#include "gateway/gateway_int.h"

/* The longest conversation previous_response_id may bring back. */
#define CHAIN_MAX 1000

/* One POST /v1/responses, in the request pool. */
typedef struct resp_req {
    ar_http_request_t *http;
    json_t *body;          /* the client's request */
    ar_resp_front_t front; /* the translation's state (front_init done: front_ready) */
    bool front_ready;
    bool store;              /* keep the answer (store is not false) */
    bool stored;             /* ...and it was handed to the store */
    const char *previous_id; /* previous_response_id, NULL when none */
    int64_t owner;           /* the caller's key id, 0 for the master key */
    json_t *history;         /* the conversation before this request (NULL: none) */
    bool edited;             /* body changed since it was read (item references resolved) */
    int chain_rc;            /* the store's answer to the chain lookup */
} resp_req_t;

static void bad_request(ar_http_request_t *req, const char *param, const char *msg)
{
    (void)param;
    ar_gw_error(req, 400, "invalid_request_error", "invalid_request_error", msg);
}

static void dispose_front(void *arg)
{
    resp_req_t *rr = arg;
    if (rr->front_ready)
        ar_resp_front_dispose(&rr->front);
}

/* "resp_" and 48 random hex digits: unguessable, as ids that name stored data must be. */
static const char *new_response_id(ar_pool_t *pool)
{
    unsigned char rnd[24];
    if (ar_random_bytes(rnd, sizeof(rnd)) != 0) {
        for (size_t i = 0; i < sizeof(rnd); i++)
            rnd[i] = (unsigned char)ar_rand_u64(); /* owner-scoped anyway */
    }
    char *id = ar_pool_alloc(pool, 5 + 2 * sizeof(rnd) + 1);
    memcpy(id, "resp_", 5);
    ar_hex_encode(rnd, sizeof(rnd), id + 5);
    return id;
}

/* ---- storing a finished response ---- */

typedef struct put_job {
    ar_stored_response_t rec; /* strings in the request pool (held until done) */
    int rc;
    char err[160];
} put_job_t;

static void put_work(ar_store_t *s, void *arg)
{
    put_job_t *j = arg;
    j->rc = ar_store_response_put(s, &j->rec, j->err, sizeof(j->err));
}

static void put_done(ar_http_request_t *req, void *arg)
{
    put_job_t *j = arg;
    if (j->rc != 0)
        AR_LOG(AR_LOG_ERROR, &((ar_log_ctx_t){req->request_id, NULL, NULL, "storing a response"}),
               "%s", j->err[0] ? j->err : ar_err_message(j->rc));
}

/* The answer is complete: a stored response is handed to the store before its end reaches
 * the client (spend.c holds that end), so a follow-up naming it always finds it. */
static void keep(ar_gw_req_t *g, resp_req_t *rr, const json_t *response)
{
    if (!rr->store || rr->stored || !json_is_object(response))
        return;
    const char *id = json_string_value(json_object_get(response, "id"));
    if (!id || strlen(id) >= AR_RESPONSE_ID_MAX)
        return;
    rr->stored = true;
    ar_pool_t *pool = rr->http->pool;
    put_job_t *j = ar_pool_calloc(pool, sizeof(*j));
    memcpy(j->rec.id, id, strlen(id) + 1);
    j->rec.owner = rr->owner;
    j->rec.previous_id = (char *)rr->previous_id;
    j->rec.model = (char *)(g->call.public_model ? g->call.public_model : "");
    j->rec.created_ms = (int64_t)ar_wall_ms();
    json_t *items = ar_resp_input_items(rr->body);
    j->rec.input = ar_gw_pool_dump(pool, items); /* the request, held until done, owns them */
    j->rec.output = ar_gw_pool_dump(pool, response);
    json_decref(items);
    if (!j->rec.input || !j->rec.output ||
        ar_gw_store_call(g->gw->gw, rr->http, put_work, put_done, j) != 0)
        AR_LOG(AR_LOG_ERROR,
               &((ar_log_ctx_t){rr->http->request_id, NULL, NULL, "storing a response"}),
               "the response %s could not be stored", id);
}

/* ---- the front ---- */

static int front_whole(ar_gw_req_t *g, ar_span_t body, ar_buf_t *out)
{
    resp_req_t *rr = g->ctx.front_state;
    int rc = ar_resp_front_whole(&rr->front, body, out);
    if (rc == 0)
        keep(g, rr, ar_resp_front_final(&rr->front));
    return rc;
}

static int front_chunk(ar_gw_req_t *g, ar_span_t data, ar_buf_t *out)
{
    resp_req_t *rr = g->ctx.front_state;
    int rc = ar_resp_front_chunk(&rr->front, data, out);
    if (rc == 0)
        keep(g, rr, ar_resp_front_final(&rr->front));
    return rc;
}

static int front_stream_end(ar_gw_req_t *g, ar_buf_t *out)
{
    resp_req_t *rr = g->ctx.front_state;
    int rc = ar_resp_front_end(&rr->front, out);
    if (rc == 0)
        keep(g, rr, ar_resp_front_final(&rr->front));
    return rc;
}

static int front_stream_error(ar_gw_req_t *g, const char *type, const char *message, ar_buf_t *out)
{
    resp_req_t *rr = g->ctx.front_state;
    return ar_resp_front_error_event(&rr->front, type, message, out);
}

/* The Responses API's errors are OpenAI's. */
static ar_span_t front_error_body(ar_http_request_t *req, int status, const char *type,
                                  const char *code, const char *message)
{
    (void)status;
    return ar_http_error_body(req, message, type, code);
}

/* A native answer: the whole response object, or the stream's response.completed event
 * (other events are told apart by their name or type without parsing them). */
static void front_native_seen(ar_gw_req_t *g, ar_span_t event, ar_span_t data)
{
    resp_req_t *rr = g->ctx.front_state;
    if (!rr->store || rr->stored)
        return;
    ar_span_t type = event;
    if (!type.len && ar_jscan_get(data, AR_LIT("type"), &type) == 0)
        (void)ar_jscan_string(type, &type);
    bool completed = ar_span_eq(type, AR_LIT("response.completed"));
    if (type.len && !completed)
        return;
    json_t *v = ar_json_parse(data, NULL, 0);
    if (v)
        keep(g, rr, completed ? json_object_get(v, "response") : v);
    json_decref(v);
}

const ar_front_ops_t ar_front_responses = {
    .name = "responses",
    .whole = front_whole,
    .chunk = front_chunk,
    .stream_end = front_stream_end,
    .stream_error = front_stream_error,
    .error_body = front_error_body,
    .native_seen = front_native_seen,
};

/* ---- POST /v1/responses ---- */

/* What a native upstream cannot take back from us: reasoning it returned encrypted can go
 * back, reasoning it only summarised (no encrypted_content) refers to state it never kept. */
static bool native_replayable(const json_t *item)
{
    const char *type = json_string_value(json_object_get(item, "type"));
    return !type || strcmp(type, "reasoning") != 0 ||
           json_is_string(json_object_get(item, "encrypted_content"));
}

/* The native request: the client's bytes, or (with a conversation to bring back or
 * airouter's own fields to drop) its tree with the history in front of its input. */
static int native_body(resp_req_t *rr, bool has_extension, ar_span_t *out)
{
    ar_http_request_t *req = rr->http;
    if (!rr->history && !has_extension && !rr->edited) {
        *out = req->body;
        return 0;
    }
    json_t *copy = json_deep_copy(rr->body);
    json_t *input = json_array();
    json_t *own = ar_resp_input_items(rr->body);
    if (!copy || !input || !own) {
        json_decref(copy);
        json_decref(input);
        json_decref(own);
        return AR_ENOMEM;
    }
    size_t i;
    json_t *item;
    json_array_foreach (rr->history, i, item) {
        if (native_replayable(item))
            json_array_append(input, item);
    }
    json_array_extend(input, own);
    json_decref(own);
    json_object_set_new(copy, "input", input);
    json_object_del(copy, "previous_response_id");
    ar_gw_strip_extensions(copy);
    char *s = ar_gw_pool_dump(req->pool, copy);
    json_decref(copy);
    if (!s)
        return AR_ENOMEM;
    *out = ar_span_cstr(s);
    return 0;
}

/* The chat form, for the first attempt on a provider that does not speak the Responses
 * API: a request only native upstreams see is never translated (nor validated here: the
 * upstream does that). */
static int translate(ar_call_t *call)
{
    resp_req_t *rr = call->translate_ud;
    json_t *chat = NULL;
    char err[300];
    int rc = ar_resp_request_to_chat(rr->body, rr->history, &chat, err, sizeof(err));
    if (rc) {
        call->translate_error = ar_pool_strndup(call->pool, err, strlen(err));
        return AR_EINVAL;
    }
    ar_gw_pool_json(call->pool, chat);
    call->body = chat;
    return 0;
}

/* The conversation is known (or there is none): route. */
static void proceed(resp_req_t *rr, ar_runtime_t *rt)
{
    ar_http_request_t *req = rr->http;
    ar_gw_ctx_t *ctx = req->data;
    ar_gw_native_t native = {.client = rr->body, .translate = translate, .translate_ud = rr};
    native.call.wire = AR_WIRE_RESPONSES;
    native.wants_usage = true; /* response.completed carries it */
    if (native_body(rr, ar_gw_has_extension(rr->body), &native.call.raw) != 0) {
        ar_gw_error(req, 500, "api_error", "internal_error", "out of memory");
        return;
    }
    (void)ar_jscan_get(native.call.raw, AR_LIT("model"), &native.call.raw_model);
    if (ar_resp_front_init(&rr->front, rr->body, new_response_id(req->pool),
                           (int64_t)(ar_wall_ms() / 1000)) != 0) {
        ar_gw_error(req, 500, "api_error", "internal_error", "out of memory");
        return;
    }
    rr->front_ready = true;
    ctx->front = &ar_front_responses;
    ctx->front_state = rr;
    ar_gw_llm_json(req, rt, NULL, &native);
}

/* The most item references one request may have resolved. */
#define REFS_MAX 256

/* What comes from the store before routing: the conversation before previous_response_id,
 * and the items that item_reference entries of the input name. */
typedef struct lookup_job {
    resp_req_t *rr;
    int64_t owner;
    char id[AR_RESPONSE_ID_MAX]; /* previous_response_id, "" when none */
    json_t *items;               /* the conversation, built on the store thread */
    int rc;
    /* item references: the ids (borrowed from the body) and what the store has for them */
    const char *refs[REFS_MAX];
    json_t *found[REFS_MAX]; /* NULL: not one of ours, or gone */
    size_t refs_cnt;
} lookup_job_t;

/* The conversation as items, oldest first: each response's input, then its output. */
static void chain_work(ar_store_t *s, lookup_job_t *j)
{
    ar_stored_response_list_t l = {0};
    j->rc = ar_store_response_chain(s, j->id, j->owner, CHAIN_MAX, &l);
    if (j->rc != 0)
        return;
    j->items = json_array();
    for (size_t i = 0; i < l.cnt && j->items; i++) {
        json_t *in = json_loads(l.items[i].input, 0, NULL);
        json_t *resp = json_loads(l.items[i].output, 0, NULL);
        if (json_is_array(in))
            json_array_extend(j->items, in);
        if (json_is_array(json_object_get(resp, "output")))
            json_array_extend(j->items, json_object_get(resp, "output"));
        json_decref(in);
        json_decref(resp);
    }
    ar_stored_response_list_free(&l);
}

/*
 * The response an item id of ours belongs to: the output items of a translated response
 * are named PREFIX_ + the response id's 48 hex digits + "_" + the output index. @return
 * false for any other id (an upstream's own, which only that upstream can resolve).
 */
static bool response_of_item(const char *item, char out[AR_RESPONSE_ID_MAX])
{
    const char *us = strchr(item, '_');
    if (!us || us - item > 8)
        return false;
    const char *hex = us + 1;
    for (int i = 0; i < 48; i++) {
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    if (hex[48] != '_' || !hex[49])
        return false;
    memcpy(out, "resp_", 5);
    memcpy(out + 5, hex, 48);
    out[53] = '\0';
    return true;
}

/* The stored items that the input's item references name, where the caller owns them. */
static void refs_work(ar_store_t *s, lookup_job_t *j)
{
    for (size_t i = 0; i < j->refs_cnt; i++) {
        char rid[AR_RESPONSE_ID_MAX];
        ar_stored_response_t rec;
        if (!response_of_item(j->refs[i], rid) ||
            ar_store_response_get(s, rid, j->owner, &rec) != 0)
            continue;
        json_t *resp = json_loads(rec.output, 0, NULL);
        size_t k;
        json_t *item;
        json_array_foreach (json_object_get(resp, "output"), k, item) {
            const char *id = json_string_value(json_object_get(item, "id"));
            if (id && strcmp(id, j->refs[i]) == 0) {
                j->found[i] = json_deep_copy(item);
                break;
            }
        }
        json_decref(resp);
        ar_stored_response_dispose(&rec);
    }
}

static void lookup_work(ar_store_t *s, void *arg)
{
    lookup_job_t *j = arg;
    if (j->id[0])
        chain_work(s, j);
    if (j->rc == 0)
        refs_work(s, j);
}

static bool is_reference(const json_t *item)
{
    const char *type = json_string_value(json_object_get(item, "type"));
    return type && strcmp(type, "item_reference") == 0;
}

/* Replaces each resolved item_reference of the input by the item itself; the found items
 * are taken (or released) whatever happens next. */
static void apply_refs(resp_req_t *rr, lookup_job_t *j)
{
    json_t *input = json_object_get(rr->body, "input");
    size_t i, r = 0;
    json_t *item;
    json_array_foreach (input, i, item) {
        if (r == j->refs_cnt)
            break;
        if (!is_reference(item))
            continue;
        if (j->found[r]) {
            json_array_set_new(input, i, j->found[r]);
            j->found[r] = NULL;
            rr->edited = true;
        }
        r++;
    }
    for (r = 0; r < j->refs_cnt; r++)
        json_decref(j->found[r]);
}

static void lookup_done(ar_http_request_t *req, void *arg)
{
    lookup_job_t *j = arg;
    resp_req_t *rr = j->rr;
    if (j->items)
        ar_gw_pool_json(req->pool, j->items);
    apply_refs(rr, j);
    if (ar_http_aborted(req) || ar_http_responded(req))
        return;
    if (j->rc == AR_ENOTFOUND) {
        ar_gw_error(req, 404, "invalid_request_error", "previous_response_not_found",
                    ar_pool_printf(req->pool, "Previous response with id '%s' not found.", j->id));
        return;
    }
    if (j->rc == AR_ETOOBIG) {
        bad_request(req, "previous_response_id",
                    ar_pool_printf(req->pool,
                                   "previous_response_id: the conversation is longer than %d "
                                   "responses",
                                   CHAIN_MAX));
        return;
    }
    if (j->rc != 0 || (j->id[0] && !j->items)) {
        ar_gw_error(req, 503, "service_unavailable_error", "store_unavailable",
                    "the stored conversation could not be read");
        return;
    }
    rr->history = j->items;
    proceed(rr, ar_gw_rt(req));
}

/* The ids of the input's item references (clients such as the AI SDK send their earlier
 * answers so when they count on the store). @return how many were taken into j. */
static size_t collect_refs(const json_t *body, lookup_job_t *j)
{
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get(body, "input"), i, item) {
        if (!is_reference(item))
            continue;
        if (j->refs_cnt == REFS_MAX)
            break;
        const char *id = json_string_value(json_object_get(item, "id"));
        j->refs[j->refs_cnt++] = id ? id : "";
    }
    return j->refs_cnt;
}

void ar_gw_responses(ar_http_request_t *req, ar_runtime_t *rt)
{
    if (req->body.len == 0) {
        bad_request(req, NULL, "Request body is empty: expected a JSON object");
        return;
    }
    char perr[160];
    json_t *body = ar_json_parse(req->body, perr, sizeof(perr));
    if (!body) {
        bad_request(req, NULL,
                    ar_pool_printf(req->pool, "Malformed JSON in request body: %s", perr));
        return;
    }
    ar_gw_pool_json(req->pool, body);
    if (!json_is_object(body)) {
        bad_request(req, NULL, "Request body must be a JSON object");
        return;
    }
    resp_req_t *rr = ar_pool_calloc(req->pool, sizeof(*rr));
    rr->http = req;
    rr->body = body;
    ar_pool_cleanup_add(req->pool, dispose_front, rr);
    json_t *store = json_object_get(body, "store");
    if (store && !json_is_boolean(store) && !json_is_null(store)) {
        bad_request(req, "store", "'store' must be a boolean");
        return;
    }
    rr->store = !json_is_false(store);
    json_t *prev = json_object_get(body, "previous_response_id");
    if (prev && !json_is_string(prev) && !json_is_null(prev)) {
        bad_request(req, "previous_response_id", "'previous_response_id' must be a string");
        return;
    }
    rr->owner = ar_gw_caller_key_id(req);
    ar_gateway_t *gw = ((ar_gw_worker_t *)req->worker->data)->gw;
    if (rr->store && !gw->tenancy)
        rr->store = false; /* nowhere to keep it: answered, not stored (as store: false) */
    lookup_job_t *j = ar_pool_calloc(req->pool, sizeof(*j));
    j->rr = rr;
    j->owner = rr->owner;
    if (json_is_string(prev)) {
        rr->previous_id = json_string_value(prev);
        size_t n = strlen(rr->previous_id);
        if (n == 0 || n >= sizeof(j->id)) {
            ar_gw_error(req, 404, "invalid_request_error", "previous_response_not_found",
                        "Previous response not found.");
            return;
        }
        memcpy(j->id, rr->previous_id, n + 1);
    }
    if (gw->tenancy)
        (void)collect_refs(body, j);
    if (!j->id[0] && j->refs_cnt == 0) {
        proceed(rr, rt); /* nothing to look up */
        return;
    }
    if (ar_gw_store_call(gw, req, lookup_work, lookup_done, j) != 0)
        bad_request(req, "previous_response_id",
                    "previous_response_id needs a store (storage.database_url): none is open");
}
