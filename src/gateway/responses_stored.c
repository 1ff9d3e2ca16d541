/*
 * responses_stored.c: the stored responses of the Responses API, read back and removed:
 * GET /v1/responses/{id}, DELETE /v1/responses/{id} and GET /v1/responses/{id}/input_items.
 * responses.c stores them; each belongs to the key that made it, so a lookup is by id and
 * owner and another key's response is a 404 like a missing one. The store is read on its
 * thread (ar_gw_store_call) and the answer goes out on the request's worker.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "gateway/gateway_int.h"

static void bad_request(ar_http_request_t *req, const char *msg)
{
    ar_gw_error(req, 400, "invalid_request_error", "invalid_request_error", msg);
}

/* The {id} of /v1/responses/{id}[/input_items]: only the characters ids are made of. */
static bool id_of(ar_span_t path, ar_span_t suffix, char out[AR_RESPONSE_ID_MAX])
{
    ar_span_t id = ar_span_skip(path, AR_LIT("/v1/responses/").len);
    id.len -= suffix.len;
    if (id.len == 0 || id.len >= AR_RESPONSE_ID_MAX)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        char c = id.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    memcpy(out, id.ptr, id.len);
    out[id.len] = '\0';
    return true;
}

typedef enum stored_op { OP_GET, OP_DELETE, OP_ITEMS } stored_op_t;

typedef struct stored_job {
    stored_op_t op;
    char id[AR_RESPONSE_ID_MAX];
    int64_t owner;
    ar_stored_response_t rec; /* OP_GET, OP_ITEMS */
    int rc;
} stored_job_t;

static void stored_work(ar_store_t *s, void *arg)
{
    stored_job_t *j = arg;
    if (j->op == OP_DELETE)
        j->rc = ar_store_response_delete(s, j->id, j->owner);
    else
        j->rc = ar_store_response_get(s, j->id, j->owner, &j->rec);
}

static void respond(ar_http_request_t *req, int status, ar_span_t body)
{
    ar_http_header_t hs[8];
    size_t n = ar_gw_common_headers(req, ar_gw_rt(req), hs, AR_ARRAY_CNT(hs));
    ar_http_respond_json(req, status, hs, n, body);
}

/* GET /v1/responses/{id}/input_items: a page of the input items (limit 1..100, default 20;
 * order desc by default, as OpenAI; after: the id of the item the page follows). */
static void items_page(ar_http_request_t *req, const stored_job_t *j)
{
    json_t *all = json_loads(j->rec.input, 0, NULL);
    if (!json_is_array(all)) {
        json_decref(all);
        ar_gw_error(req, 500, "api_error", "internal_error", "the stored input is unreadable");
        return;
    }
    int64_t limit = 20;
    ar_span_t v = ar_gw_query_param(req->query, "limit");
    if (v.len && (ar_parse_int64(v, &limit) != 0 || limit < 1 || limit > 100)) {
        json_decref(all);
        bad_request(req, "'limit' must be an integer from 1 to 100");
        return;
    }
    ar_span_t order = ar_gw_query_param(req->query, "order");
    bool asc = ar_span_eq(order, AR_LIT("asc"));
    if (order.len && !asc && !ar_span_eq(order, AR_LIT("desc"))) {
        json_decref(all);
        bad_request(req, "'order' must be 'asc' or 'desc'");
        return;
    }
    ar_span_t after = ar_gw_query_param(req->query, "after");
    size_t cnt = json_array_size(all);
    json_t *data = json_array();
    bool started = after.len == 0, more = false;
    for (size_t k = 0; k < cnt; k++) {
        json_t *item = json_array_get(all, asc ? k : cnt - 1 - k);
        if (!started) {
            const char *iid = json_string_value(json_object_get(item, "id"));
            started = iid && ar_span_eq(after, ar_span_cstr(iid));
            continue;
        }
        if ((int64_t)json_array_size(data) == limit) {
            more = true;
            break;
        }
        json_array_append(data, item);
    }
    size_t dn = json_array_size(data);
    json_t *first = dn ? json_object_get(json_array_get(data, 0), "id") : NULL;
    json_t *last = dn ? json_object_get(json_array_get(data, dn - 1), "id") : NULL;
    json_t *page = json_pack("{s:s,s:o,s:O,s:O,s:b}", "object", "list", "data", data, "first_id",
                             first ? first : json_null(), "last_id", last ? last : json_null(),
                             "has_more", more);
    json_decref(all);
    char *s = ar_gw_pool_dump(req->pool, page);
    json_decref(page);
    if (!s) {
        ar_gw_error(req, 500, "api_error", "internal_error", "out of memory");
        return;
    }
    respond(req, 200, ar_span_cstr(s));
}

static void stored_done(ar_http_request_t *req, void *arg)
{
    stored_job_t *j = arg;
    if (!ar_http_aborted(req) && !ar_http_responded(req)) {
        if (j->rc == AR_ENOTFOUND) {
            ar_gw_error(req, 404, "invalid_request_error", "not_found",
                        ar_pool_printf(req->pool, "Response with id '%s' not found.", j->id));
        } else if (j->rc != 0) {
            ar_gw_error(req, 503, "service_unavailable_error", "store_unavailable",
                        "the stored response could not be read");
        } else if (j->op == OP_DELETE) {
            respond(
                req, 200,
                ar_span_cstr(ar_pool_printf(
                    req->pool, "{\"id\":\"%s\",\"object\":\"response\",\"deleted\":true}", j->id)));
        } else if (j->op == OP_GET) {
            respond(req, 200,
                    ar_span(ar_pool_strndup(req->pool, j->rec.output, strlen(j->rec.output)),
                            strlen(j->rec.output)));
        } else {
            items_page(req, j);
        }
    }
    if (j->op != OP_DELETE && j->rc == 0)
        ar_stored_response_dispose(&j->rec);
}

static void stored(ar_http_request_t *req, ar_span_t path, ar_span_t suffix, stored_op_t op)
{
    stored_job_t *j = ar_pool_calloc(req->pool, sizeof(*j));
    j->op = op;
    j->owner = ar_gw_caller_key_id(req);
    if (!id_of(path, suffix, j->id)) {
        ar_gw_error(req, 404, "invalid_request_error", "not_found", "Response not found.");
        return;
    }
    ar_gateway_t *gw = ((ar_gw_worker_t *)req->worker->data)->gw;
    if (ar_gw_store_call(gw, req, stored_work, stored_done, j) != 0)
        ar_gw_error(
            req, 404, "invalid_request_error", "not_found",
            ar_pool_printf(req->pool, "Response with id '%s' not found: no store is open.", j->id));
}

void ar_gw_response_get(ar_http_request_t *req, ar_span_t path)
{
    stored(req, path, AR_SPAN_NULL, OP_GET);
}

void ar_gw_response_delete(ar_http_request_t *req, ar_span_t path)
{
    stored(req, path, AR_SPAN_NULL, OP_DELETE);
}

void ar_gw_response_input_items(ar_http_request_t *req, ar_span_t path)
{
    stored(req, path, AR_LIT("/input_items"), OP_ITEMS);
}
