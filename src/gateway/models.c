/*
 * models.c: GET /v1/models and /v1/models/{id}. The list merges the `models:` entries
 * (one object per public name, with tags, type, context_size and available merged over
 * its deployments) and the models discovered on open credentials. It is built once per
 * runtime, so answering costs a copy of nothing. Anthropic's SDKs (the request carries
 * `anthropic-version`) get the same list in Anthropic's shape, also built once:
 * {"data":[{"type":"model","id","display_name","created_at"}],"has_more","first_id","last_id"}.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "gateway/gateway_int.h"

static json_t *find_by_id(json_t *data, const char *id)
{
    size_t i;
    json_t *m;
    json_array_foreach (data, i, m) {
        const char *mid = ar_json_str(m, "id");
        if (mid && strcmp(mid, id) == 0)
            return m;
    }
    return NULL;
}

static json_t *new_model(const char *id, const char *owner, json_int_t created)
{
    json_t *m = json_object();
    json_object_set_new(m, "id", json_string(id));
    json_object_set_new(m, "object", json_string("model"));
    json_object_set_new(m, "created", json_integer(created));
    json_object_set_new(m, "owned_by", json_string(owner));
    return m;
}

static void merge_tags(json_t *m, const ar_strlist_t *tags)
{
    json_t *arr = json_object_get(m, "tags");
    if (!arr) {
        arr = json_array();
        json_object_set_new(m, "tags", arr);
    }
    for (size_t i = 0; i < tags->cnt; i++) {
        bool have = false;
        size_t k;
        json_t *t;
        json_array_foreach (arr, k, t) {
            have = have || strcmp(json_string_value(t), tags->items[i]) == 0;
        }
        if (!have)
            json_array_append_new(arr, json_string(tags->items[i]));
    }
}

/* root compacted into a heap string (mem) and its span. */
static int dump_into(const json_t *root, char **mem, ar_span_t *span)
{
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (!s)
        return AR_ENOMEM;
    *mem = ar_xstrdup(s);
    free(s);
    *span = ar_span_cstr(*mem);
    return 0;
}

/* The Anthropic list for the OpenAI one (data): every model under the same id, its display
 * name the id too (airouter's names are what clients ask for), created_at in RFC 3339. */
static int anthropic_list(ar_runtime_t *rt, const json_t *data, json_int_t created)
{
    char when[32];
    time_t t = (time_t)created;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(when, sizeof(when), "1970-01-01T00:00:00Z");
    json_t *list = json_array();
    size_t i;
    json_t *m;
    json_array_foreach (data, i, m) {
        json_t *id = json_object_get(m, "id");
        json_array_append_new(list, json_pack("{s:s,s:O,s:O,s:s}", "type", "model", "id", id,
                                              "display_name", id, "created_at", when));
    }
    size_t n = json_array_size(data);
    json_t *first = n ? json_object_get(json_array_get(data, 0), "id") : NULL;
    json_t *last = n ? json_object_get(json_array_get(data, n - 1), "id") : NULL;
    json_t *root = json_pack("{s:o,s:b,s:O,s:O}", "data", list, "has_more", 0, "first_id",
                             first ? first : json_null(), "last_id", last ? last : json_null());
    int rc = dump_into(root, &rt->models_anth_json_mem, &rt->models_anth_json);
    json_decref(root);
    return rc;
}

int ar_gw_models_build(ar_runtime_t *rt)
{
    const ar_config_t *cfg = rt->cfg;
    json_int_t created = (json_int_t)time(NULL);
    json_t *data = json_array();
    for (size_t i = 0; i < cfg->models_cnt; i++) {
        const ar_model_conf_t *mc = &cfg->models[i];
        const ar_cred_conf_t *c = &cfg->credentials[mc->credential_idx];
        if (mc->from_store)
            continue; /* internal names: a key reaches them only through its aliases */
        json_t *m = find_by_id(data, mc->name);
        if (!m) {
            m = new_model(mc->name, c->type_name, created);
            json_object_set_new(m, "type",
                                mc->kind == AR_MODEL_KIND_FAST        ? json_string("fast")
                                : mc->kind == AR_MODEL_KIND_REASONING ? json_string("reasoning")
                                                                      : json_null());
            json_object_set_new(m, "context_size", json_integer(mc->context_size));
            json_object_set_new(m, "available", json_boolean(mc->available));
            json_array_append_new(data, m);
        } else {
            json_int_t ctx = json_integer_value(json_object_get(m, "context_size"));
            if (mc->context_size > ctx)
                json_object_set_new(m, "context_size", json_integer(mc->context_size));
            if (mc->available)
                json_object_set_new(m, "available", json_true());
        }
        merge_tags(m, &mc->tags);
    }
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        const ar_strlist_t *ids = ar_router_discovered(rt->router, i);
        if (!ids)
            continue;
        for (size_t k = 0; k < ids->cnt; k++) {
            if (find_by_id(data, ids->items[k]))
                continue;
            json_t *m = new_model(ids->items[k], cfg->credentials[i].type_name, created);
            json_object_set_new(m, "tags", json_array());
            json_object_set_new(m, "type", json_null());
            json_object_set_new(m, "context_size", json_integer(0));
            json_object_set_new(m, "available", json_true());
            json_array_append_new(data, m);
        }
    }
    int rc = anthropic_list(rt, data, created);
    json_t *root = json_object();
    json_object_set_new(root, "object", json_string("list"));
    json_object_set_new(root, "data", data);
    rc = rc ? rc : dump_into(root, &rt->models_json_mem, &rt->models_json);
    json_decref(root);
    return rc;
}

void ar_gw_models(ar_http_request_t *req, ar_runtime_t *rt, ar_span_t id)
{
    const ar_gw_ctx_t *ctx = req->data;
    /* routes.c chose the Anthropic front for a request with anthropic-version */
    ar_span_t list =
        ctx && ctx->front == &ar_front_anthropic ? rt->models_anth_json : rt->models_json;
    ar_http_header_t hs[4];
    size_t n = ar_gw_common_headers(req, rt, hs, AR_ARRAY_CNT(hs));
    if (id.len == 0) {
        ar_http_respond_json(req, 200, hs, n, list);
        return;
    }
    json_t *root = ar_json_parse(list, NULL, 0);
    char *want = ar_pool_strdup_span(req->pool, id);
    json_t *m = root ? find_by_id(json_object_get(root, "data"), want) : NULL;
    if (!m) {
        json_decref(root);
        ar_gw_error(req, 404, "not_found_error", "model_not_found",
                    ar_pool_printf(req->pool, "The model '%s' does not exist", want));
        return;
    }
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(root);
    char *copy = ar_pool_strndup(req->pool, s, strlen(s));
    free(s);
    ar_http_respond_json(req, 200, hs, n, ar_span_cstr(copy));
}
