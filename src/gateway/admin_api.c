/*
 * admin_api.c: the store's keys, plans and spend for operators and the dashboard (master
 * key only, SPEC sections 3 and 6): GET/POST /admin/keys, POST /admin/keys/{id}/revoke and
 * /limits, GET/POST /admin/plans, GET /admin/spend (totals) and /admin/spend.csv (records).
 * The worker checks the request; the database work runs on the store thread
 * (ar_gw_store_call), which builds the whole answer; the worker sends it. A key that is
 * changed or revoked here is read into the key cache by the same job, so the change holds
 * for the next request, not the next poll. A new key is shown once, in the answer.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/mem.h"
#include "core/str.h"
#include "gateway/gateway_int.h"
#include "tenant/ledger.h"

#define CSV_MAX_ROWS 100000
#define CSV_MAX_BYTES (64u << 20)

/* One admin call: what the worker parsed, then what the store thread answered. */
typedef struct admin_job {
    ar_gateway_t *gw;
    /* in */
    ar_vkey_t key;       /* create; limits: the fields given (has_* say which) */
    char plan_name[256]; /* create, limits: a plan by name ("" none given) */
    bool has_plan, has_models, has_expires;
    bool has[6]; /* limits: rpm, tpm, daily, monthly, limit, budget given */
    char secret[AR_KEY_LEN + 1];
    ar_plan_t plan; /* plan create */
    ar_spend_filter_t filter;
    ar_spend_group_t group;
    bool csv;
    /* out */
    int status;
    const char *err_type, *err_code;
    char err[256];
    char *body; /* malloc'd */
    const char *content_type;
} admin_job_t;

static admin_job_t *job_new(ar_http_request_t *req)
{
    admin_job_t *j = ar_pool_calloc(req->pool, sizeof(*j));
    j->gw = ((ar_gw_worker_t *)req->worker->data)->gw;
    j->key = ar_vkey_unlimited();
    j->filter = ar_spend_filter_all();
    j->status = 200;
    j->content_type = "application/json";
    return j;
}

static void fail(admin_job_t *j, int status, const char *code, const char *fmt, const char *arg)
{
    j->status = status;
    j->err_type = status == 404   ? "not_found_error"
                  : status >= 500 ? "api_error"
                                  : "invalid_request_error";
    j->err_code = code;
    snprintf(j->err, sizeof(j->err), fmt, arg ? arg : "");
}

/* Worker: sends what the store thread made. */
static void done(ar_http_request_t *req, void *arg)
{
    admin_job_t *j = arg;
    if (j->status >= 400 || !j->body) {
        if (j->status < 400)
            fail(j, 500, "internal_error", "%s", "the answer could not be built");
        ar_gw_error(req, j->status, j->err_type, j->err_code, j->err);
    } else {
        ar_http_header_t hs[8];
        size_t n = ar_gw_common_headers(req, ar_gw_rt(req), hs, 6);
        hs[n++] = (ar_http_header_t){AR_LIT("Content-Type"), ar_span_cstr(j->content_type)};
        hs[n++] = (ar_http_header_t){AR_LIT("Cache-Control"), AR_LIT("no-store")};
        ar_http_respond(req, j->status, hs, n, ar_span_cstr(j->body));
    }
    free(j->body);
    j->body = NULL;
    if (j->secret[0])
        memset(j->secret, 0, sizeof(j->secret));
}

static void submit(ar_http_request_t *req, admin_job_t *j, void (*work)(ar_store_t *, void *))
{
    /* spend and usage are read from the database: records still in the journal are
     * applied now rather than at the next timer (the answer may still miss the newest) */
    if (j->gw->tenancy)
        ar_ledger_kick(ar_gw_tenancy_ledger(j->gw->tenancy));
    if (ar_gw_store_call(j->gw, req, work, done, j) != 0)
        ar_gw_error(req, 503, "service_unavailable_error", "no_store",
                    "Keys, plans and spend need the store (storage.database_url)");
}

/* Store thread: doc becomes the answer (consumed). */
static void answer_json(admin_job_t *j, json_t *doc, int status)
{
    j->body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!j->body)
        fail(j, 500, "internal_error", "%s", "out of memory");
    else
        j->status = status;
}

static json_t *limit_or_null(int64_t v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static json_t *time_or_null(int64_t wall_ms)
{
    if (wall_ms <= 0)
        return json_null();
    char buf[32];
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *usage_json(const ar_usage_totals_t *u)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:f}", "requests", (json_int_t)u->requests, "prompt_tokens",
                     (json_int_t)u->prompt_tokens, "completion_tokens",
                     (json_int_t)u->completion_tokens, "total_tokens",
                     (json_int_t)(u->prompt_tokens + u->completion_tokens), "cost_usd",
                     u->cost_usd);
}

static json_t *models_json(const char *models)
{
    json_t *a = json_array();
    const char *p = models ? models : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n)
            json_array_append_new(a, json_stringn(p, n));
        p += n + (comma ? 1 : 0);
    }
    return a;
}

static const char *plan_name_of(const ar_plan_list_t *plans, int64_t id)
{
    for (size_t i = 0; id > 0 && i < plans->cnt; i++) {
        if (plans->items[i].id == id)
            return plans->items[i].name;
    }
    return NULL;
}

/* A key as every /admin/keys answer shows it; usage NULL: none yet. */
static json_t *key_json(const ar_vkey_t *k, const ar_plan_list_t *plans, const ar_key_usage_t *u)
{
    ar_usage_totals_t zero = {0};
    const char *plan = plan_name_of(plans, k->plan_id);
    json_t *usage = json_pack("{s:o,s:o}", "day", usage_json(u ? &u->day : &zero), "month",
                              usage_json(u ? &u->month : &zero));
    bool expired = k->expires_ms && k->expires_ms <= ar_wall_ms();
    return json_pack(
        "{s:I,s:s,s:s,s:o,s:o,s:b,s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id",
        (json_int_t)k->id, "name", k->name ? k->name : "", "masked", k->masked, "created_at",
        time_or_null(k->created_ms), "expires_at", time_or_null(k->expires_ms), "revoked",
        (int)k->revoked, "expired", (int)expired, "rpm", limit_or_null(k->rpm), "tpm",
        limit_or_null(k->tpm), "daily_tokens", limit_or_null(k->daily_tokens), "monthly_tokens",
        limit_or_null(k->monthly_tokens), "limit_tokens", limit_or_null(k->limit_tokens),
        "max_budget_usd", k->max_budget_usd >= 0 ? json_real(k->max_budget_usd) : json_null(),
        "plan", plan ? json_string(plan) : json_null(), "models", models_json(k->models), "usage",
        usage);
}

/* ---- GET /admin/keys ---- */

static void keys_list_work(ar_store_t *s, void *arg)
{
    admin_job_t *j = arg;
    ar_vkey_list_t keys = {0};
    ar_plan_list_t plans = {0};
    ar_key_usage_list_t usage = {0};
    if (ar_store_key_list(s, &keys) != 0 || ar_store_plan_list(s, &plans) != 0 ||
        ar_store_usage_by_key(s, ar_wall_ms(), &usage) != 0) {
        fail(j, 500, "store_error", "%s", "reading the keys failed");
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < keys.cnt; i++) {
            const ar_key_usage_t *u = NULL;
            for (size_t k = 0; k < usage.cnt && !u; k++)
                u = usage.items[k].key_id == keys.items[i].id ? &usage.items[k] : NULL;
            json_array_append_new(arr, key_json(&keys.items[i], &plans, u));
        }
        answer_json(j, json_pack("{s:o}", "keys", arr), 200);
    }
    ar_store_key_list_free(&keys);
    ar_store_plan_list_free(&plans);
    ar_store_key_usage_list_free(&usage);
}

void ar_gw_admin_keys_list(ar_http_request_t *req)
{
    submit(req, job_new(req), keys_list_work);
}

/* ---- reading a JSON body (worker) ---- */

static json_t *body_object(ar_http_request_t *req)
{
    json_error_t e;
    json_t *doc = req->body.len ? json_loadb(req->body.ptr, req->body.len, 0, &e) : json_object();
    if (!json_is_object(doc)) {
        json_decref(doc);
        ar_gw_error(req, 400, "invalid_request_error", "invalid_json",
                    "The body must be a JSON object");
        return NULL;
    }
    return doc;
}

/* A limit member: absent (untouched), null (unset: -1) or an integer >= 0. */
static bool take_limit(json_t *doc, const char *name, int64_t *out, bool *given, char *why,
                       size_t whylen)
{
    json_t *v = json_object_get(doc, name);
    if (!v)
        return true;
    *given = true;
    if (json_is_null(v)) {
        *out = -1;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(why, whylen, "'%s' must be an integer >= 0 or null", name);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* The members create and limits share: limits, plan, models, expires. */
static bool take_settings(admin_job_t *j, json_t *doc, char *why, size_t whylen)
{
    ar_vkey_t *k = &j->key;
    int64_t *lims[] = {&k->rpm, &k->tpm, &k->daily_tokens, &k->monthly_tokens, &k->limit_tokens};
    const char *names[] = {"rpm", "tpm", "daily_tokens", "monthly_tokens", "limit_tokens"};
    for (size_t i = 0; i < 5; i++) {
        if (!take_limit(doc, names[i], lims[i], &j->has[i], why, whylen))
            return false;
    }
    json_t *v = json_object_get(doc, "max_budget_usd");
    if (v) {
        j->has[5] = true;
        if (json_is_null(v)) {
            k->max_budget_usd = -1;
        } else if (!json_is_number(v) || json_number_value(v) < 0) {
            snprintf(why, whylen, "'max_budget_usd' must be a number >= 0 or null");
            return false;
        } else {
            k->max_budget_usd = json_number_value(v);
        }
    }
    v = json_object_get(doc, "plan");
    if (v) {
        j->has_plan = true;
        if (!json_is_null(v) && (!json_is_string(v) || !json_string_length(v) ||
                                 json_string_length(v) >= sizeof(j->plan_name))) {
            snprintf(why, whylen, "'plan' must be a plan name or null");
            return false;
        }
        snprintf(j->plan_name, sizeof(j->plan_name), "%s",
                 json_is_null(v) ? "" : json_string_value(v));
    }
    v = json_object_get(doc, "models");
    if (v) {
        j->has_models = true;
        ar_buf_t b;
        ar_buf_init(&b, 1u << 20);
        bool ok = json_is_array(v) || json_is_null(v);
        size_t i;
        json_t *m;
        json_array_foreach (v, i, m) {
            const char *s = json_string_value(m);
            if (!s || !*s || strchr(s, ',')) {
                ok = false;
                break;
            }
            if ((i && ar_buf_append_str(&b, ",") != 0) || ar_buf_append_str(&b, s) != 0)
                ok = false;
        }
        if (!ok) {
            ar_buf_dispose(&b);
            snprintf(why, whylen, "'models' must be an array of model names (no commas)");
            return false;
        }
        k->models = ar_xstrndup(b.ptr ? b.ptr : "", b.len);
        ar_buf_dispose(&b);
    }
    v = json_object_get(doc, "expires");
    if (v) {
        j->has_expires = true;
        int64_t ttl = 0;
        if (json_is_null(v)) {
            k->expires_ms = 0;
        } else if (!json_is_string(v) ||
                   ar_parse_duration_ms(ar_span_cstr(json_string_value(v)), &ttl) != 0 ||
                   ttl <= 0) {
            snprintf(why, whylen,
                     "'expires' must be a duration such as \"30d\" or \"12h\", or null");
            return false;
        } else {
            k->expires_ms = ar_wall_ms() + ttl;
        }
    }
    return true;
}

/* Store thread: the plan named in the job into key->plan_id. @return false (answered) when
 * there is no such plan. */
static bool resolve_plan(ar_store_t *s, admin_job_t *j)
{
    if (!j->has_plan)
        return true;
    j->key.plan_id = 0;
    if (!j->plan_name[0])
        return true;
    ar_plan_list_t plans = {0};
    if (ar_store_plan_list(s, &plans) == 0) {
        for (size_t i = 0; i < plans.cnt; i++) {
            if (strcmp(plans.items[i].name, j->plan_name) == 0)
                j->key.plan_id = plans.items[i].id;
        }
    }
    ar_store_plan_list_free(&plans);
    if (!j->key.plan_id) {
        fail(j, 400, "plan_not_found", "No plan named '%.200s'", j->plan_name);
        return false;
    }
    return true;
}

/* Store thread: key id as the admin API shows it (with its usage), as the answer. */
static void answer_key(ar_store_t *s, admin_job_t *j, int64_t id, int status)
{
    ar_vkey_t k;
    ar_plan_list_t plans = {0};
    ar_usage_totals_t day, month;
    if (ar_store_key_get(s, id, NULL, &k) != 0) {
        fail(j, 500, "store_error", "%s", "the key could not be read back");
        return;
    }
    if (ar_store_plan_list(s, &plans) != 0 ||
        ar_store_usage(s, id, ar_wall_ms(), &day, &month, NULL) != 0) {
        ar_vkey_free(&k);
        ar_store_plan_list_free(&plans);
        fail(j, 500, "store_error", "%s", "the key could not be read back");
        return;
    }
    ar_key_usage_t u = {.key_id = id, .day = day, .month = month};
    json_t *doc = key_json(&k, &plans, &u);
    if (j->secret[0]) /* shown once: the store keeps only its hash */
        json_object_set_new(doc, "key", json_string(j->secret));
    answer_json(j, doc, status);
    ar_vkey_free(&k);
    ar_store_plan_list_free(&plans);
}

/* ---- POST /admin/keys ---- */

static void key_create_work(ar_store_t *s, void *arg)
{
    admin_job_t *j = arg;
    if (!resolve_plan(s, j))
        return;
    int64_t id = 0;
    char why[256] = "";
    if (ar_store_key_create(s, &j->key, &id, why, sizeof(why)) != 0) {
        fail(j, 400, "key_not_created", "The key was not created: %.200s", why);
        return;
    }
    answer_key(s, j, id, 201);
}

static void free_key_strings(void *arg)
{
    admin_job_t *j = arg;
    ar_free(j->key.name);
    ar_free(j->key.models);
}

void ar_gw_admin_key_create(ar_http_request_t *req)
{
    json_t *doc = body_object(req);
    if (!doc)
        return;
    admin_job_t *j = job_new(req);
    ar_pool_cleanup_add(req->pool, free_key_strings, j);
    char why[256] = "";
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (!name || !*name || strlen(name) > 200) {
        snprintf(why, sizeof(why), "'name' is required: a string of 1 to 200 characters");
    } else if (take_settings(j, doc, why, sizeof(why))) {
        j->key.name = ar_xstrdup(name);
        why[0] = '\0';
    }
    json_decref(doc);
    if (why[0]) {
        ar_gw_error(req, 400, "invalid_request_error", "invalid_key_settings", why);
        return;
    }
    if (!j->key.models)
        j->key.models = ar_xstrdup("");
    if (ar_key_generate(j->secret) != 0) {
        ar_gw_error(req, 500, "api_error", "no_randomness", "No randomness available for a key");
        return;
    }
    ar_key_hash(j->secret, j->key.hash);
    ar_key_mask(j->secret, j->key.masked);
    j->key.created_ms = ar_wall_ms();
    submit(req, j, key_create_work);
}

/* ---- POST /admin/keys/{id}/revoke and /limits ---- */

static void key_revoke_work(ar_store_t *s, void *arg)
{
    admin_job_t *j = arg;
    int rc = ar_store_key_revoke(s, j->key.id);
    if (rc == AR_ENOTFOUND) {
        fail(j, 404, "key_not_found", "%s", "No key with this id");
        return;
    }
    if (rc != 0) {
        fail(j, 500, "store_error", "%s", "the key could not be revoked");
        return;
    }
    ar_gw_tenancy_refresh_key(j->gw, s, j->key.id);
    answer_key(s, j, j->key.id, 200);
}

static void key_limits_work(ar_store_t *s, void *arg)
{
    admin_job_t *j = arg;
    ar_vkey_t k;
    if (ar_store_key_get(s, j->key.id, NULL, &k) != 0) {
        fail(j, 404, "key_not_found", "%s", "No key with this id");
        return;
    }
    if (!resolve_plan(s, j)) {
        ar_vkey_free(&k);
        return;
    }
    int64_t *to[] = {&k.rpm, &k.tpm, &k.daily_tokens, &k.monthly_tokens, &k.limit_tokens};
    const int64_t from[] = {j->key.rpm, j->key.tpm, j->key.daily_tokens, j->key.monthly_tokens,
                            j->key.limit_tokens};
    for (size_t i = 0; i < 5; i++) {
        if (j->has[i])
            *to[i] = from[i];
    }
    if (j->has[5])
        k.max_budget_usd = j->key.max_budget_usd;
    if (j->has_plan)
        k.plan_id = j->key.plan_id;
    if (j->has_expires)
        k.expires_ms = j->key.expires_ms;
    char *models = k.models;
    if (j->has_models)
        k.models = j->key.models;
    char why[256] = "";
    int rc = ar_store_key_update(s, &k, why, sizeof(why));
    k.models = models; /* the job's string is the job's to free */
    ar_vkey_free(&k);
    if (rc != 0) {
        fail(j, rc == AR_ENOTFOUND ? 404 : 400, "key_not_updated",
             "The key was not changed: %.200s", why);
        return;
    }
    ar_gw_tenancy_refresh_key(j->gw, s, j->key.id);
    answer_key(s, j, j->key.id, 200);
}

void ar_gw_admin_key_action(ar_http_request_t *req, ar_span_t id, const char *action)
{
    admin_job_t *j = job_new(req);
    ar_pool_cleanup_add(req->pool, free_key_strings, j);
    if (ar_parse_int64(id, &j->key.id) != 0 || j->key.id <= 0) {
        ar_gw_error(req, 400, "invalid_request_error", "invalid_key_id",
                    "The key id must be a positive integer (see GET /admin/keys)");
        return;
    }
    if (strcmp(action, "revoke") == 0) {
        submit(req, j, key_revoke_work);
        return;
    }
    json_t *doc = body_object(req);
    if (!doc)
        return;
    char why[256] = "";
    bool ok = take_settings(j, doc, why, sizeof(why));
    json_decref(doc);
    if (!ok) {
        ar_gw_error(req, 400, "invalid_request_error", "invalid_key_settings", why);
        return;
    }
    submit(req, j, key_limits_work);
}

/* ---- plans ---- */

static json_t *plan_json(const ar_plan_t *p)
{
    return json_pack("{s:I,s:s,s:s,s:o,s:o}", "id", (json_int_t)p->id, "name", p->name,
                     "description", p->description ? p->description : "", "max_tokens",
                     limit_or_null(p->max_tokens), "created_at", time_or_null(p->created_ms));
}

static void plans_list_work(ar_store_t *s, void *arg)
{
    admin_job_t *j = arg;
    ar_plan_list_t plans = {0};
    if (ar_store_plan_list(s, &plans) != 0) {
        fail(j, 500, "store_error", "%s", "reading the plans failed");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < plans.cnt; i++)
        json_array_append_new(arr, plan_json(&plans.items[i]));
    ar_store_plan_list_free(&plans);
    answer_json(j, json_pack("{s:o}", "plans", arr), 200);
}

void ar_gw_admin_plans_list(ar_http_request_t *req)
{
    submit(req, job_new(req), plans_list_work);
}

static void plan_create_work(ar_store_t *s, void *arg)
{
    admin_job_t *j = arg;
    char why[256] = "";
    if (ar_store_plan_create(s, &j->plan, &j->plan.id, why, sizeof(why)) != 0) {
        fail(j, 400, "plan_not_created", "The plan was not created: %.200s", why);
        return;
    }
    answer_json(j, plan_json(&j->plan), 201);
}

void ar_gw_admin_plan_create(ar_http_request_t *req)
{
    json_t *doc = body_object(req);
    if (!doc)
        return;
    admin_job_t *j = job_new(req);
    const char *name = json_string_value(json_object_get(doc, "name"));
    json_t *max = json_object_get(doc, "max_tokens");
    json_t *desc = json_object_get(doc, "description");
    const char *why = NULL;
    if (!name || !*name || strlen(name) > 200)
        why = "'name' is required: a string of 1 to 200 characters";
    else if (!json_is_integer(max) || json_integer_value(max) < 0)
        why = "'max_tokens' is required: an integer >= 0";
    else if (desc && !json_is_string(desc))
        why = "'description' must be a string";
    if (why) {
        json_decref(doc);
        ar_gw_error(req, 400, "invalid_request_error", "invalid_plan", why);
        return;
    }
    j->plan.name = ar_pool_strndup(req->pool, name, strlen(name));
    const char *d = desc ? json_string_value(desc) : "";
    j->plan.description = ar_pool_strndup(req->pool, d, strlen(d));
    j->plan.max_tokens = json_integer_value(max);
    j->plan.created_ms = ar_wall_ms();
    json_decref(doc);
    submit(req, j, plan_create_work);
}

/* ---- spend ---- */

static json_t *total_json(const ar_spend_total_t *t)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:f}", "requests", (json_int_t)t->requests, "errors",
                     (json_int_t)t->errors, "prompt_tokens", (json_int_t)t->prompt_tokens,
                     "completion_tokens", (json_int_t)t->completion_tokens, "total_tokens",
                     (json_int_t)(t->prompt_tokens + t->completion_tokens), "cost_usd",
                     t->cost_usd);
}

static const char *const group_names[] = {NULL, "day", "key", "model", "credential"};

static void spend_json_work(ar_store_t *s, void *arg)
{
    admin_job_t *j = arg;
    ar_spend_total_list_t all = {0}, groups = {0};
    if (ar_store_spend_totals(s, &j->filter, AR_SPEND_GROUP_NONE, &all) != 0 || all.cnt != 1 ||
        (j->group && ar_store_spend_totals(s, &j->filter, j->group, &groups) != 0)) {
        ar_store_spend_total_list_free(&all);
        fail(j, 500, "store_error", "%s", "reading the spend records failed");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < groups.cnt; i++) {
        json_t *g = total_json(&groups.items[i]);
        json_object_set_new(g, "group", json_string(groups.items[i].group));
        json_array_append_new(arr, g);
    }
    const ar_spend_filter_t *f = &j->filter;
    json_t *filters = json_pack("{s:o,s:o,s:o,s:o,s:o}", "key",
                                f->key_id >= 0 ? json_integer(f->key_id) : json_null(), "model",
                                f->model ? json_string(f->model) : json_null(), "credential",
                                f->credential ? json_string(f->credential) : json_null(), "from",
                                time_or_null(f->from_ms), "to", time_or_null(f->to_ms));
    answer_json(j,
                json_pack("{s:o,s:o,s:o,s:o}", "group_by",
                          j->group ? json_string(group_names[j->group]) : json_null(), "filters",
                          filters, "totals", total_json(&all.items[0]), "groups", arr),
                200);
    ar_store_spend_total_list_free(&all);
    ar_store_spend_total_list_free(&groups);
}

/* One CSV field: quoted when it holds a separator, a quote or a line break; a leading
 * = + - @ gets a ' so that a spreadsheet does not run it as a formula. */
static int csv_field(ar_buf_t *b, const char *s)
{
    bool formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@';
    if (!formula && !strpbrk(s, ",\"\r\n"))
        return ar_buf_append_str(b, s);
    int rc = ar_buf_append_str(b, formula ? "\"'" : "\"");
    for (const char *p = s; *p && rc == 0; p++)
        rc = *p == '"' ? ar_buf_append_str(b, "\"\"") : ar_buf_append(b, p, 1);
    return rc ? rc : ar_buf_append_str(b, "\"");
}

static int csv_row(void *ud, const ar_spend_t *r)
{
    ar_buf_t *b = ud;
    char ts[40], nums[256];
    time_t t = (time_t)(r->ts_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(r->ts_ms % 1000));
    int rc = ar_buf_append_str(b, ts);
    rc = rc ? rc : ar_buf_append_str(b, ",");
    rc = rc ? rc : csv_field(b, r->request_id);
    snprintf(nums, sizeof(nums), ",%lld,", (long long)r->key_id);
    rc = rc ? rc : ar_buf_append_str(b, nums);
    rc = rc ? rc : csv_field(b, r->model ? r->model : "");
    rc = rc ? rc : ar_buf_append_str(b, ",");
    rc = rc ? rc : csv_field(b, r->upstream_model ? r->upstream_model : "");
    rc = rc ? rc : ar_buf_append_str(b, ",");
    rc = rc ? rc : csv_field(b, r->credential ? r->credential : "");
    snprintf(nums, sizeof(nums), ",%lld,%lld,%lld,%lld,%.9g,%d,%lld,%lld,%s\n",
             (long long)r->prompt_tokens, (long long)r->completion_tokens,
             (long long)r->cached_tokens, (long long)r->reasoning_tokens, r->cost_usd, r->status,
             (long long)r->latency_ms, (long long)r->ttfb_ms, r->stream ? "true" : "false");
    rc = rc ? rc : ar_buf_append_str(b, nums);
    return rc;
}

static void spend_csv_work(ar_store_t *s, void *arg)
{
    admin_job_t *j = arg;
    ar_buf_t b;
    ar_buf_init(&b, CSV_MAX_BYTES);
    int rc = ar_buf_append_str(&b, "time,request_id,key_id,model,upstream_model,credential,"
                                   "prompt_tokens,completion_tokens,cached_tokens,"
                                   "reasoning_tokens,cost_usd,status,latency_ms,ttfb_ms,stream\n");
    rc = rc ? rc : ar_store_spend_each(s, &j->filter, CSV_MAX_ROWS, csv_row, &b);
    if (rc == 0)
        rc = ar_buf_append(&b, "", 1); /* NUL-terminated: the body is sent as a C string */
    if (rc != 0) {
        ar_buf_dispose(&b);
        fail(j, rc == AR_ETOOBIG ? 400 : 500, "spend_export_failed", "%s",
             rc == AR_ETOOBIG ? "The export is too large: narrow it with from/to"
                              : "reading the spend records failed");
        return;
    }
    j->body = ar_xstrndup(b.ptr, b.len - 1);
    ar_buf_dispose(&b);
    j->content_type = "text/csv; charset=utf-8";
}

/* from/to: unix seconds, "YYYY-MM-DD" (UTC midnight) or "YYYY-MM-DDTHH:MM:SSZ". */
static bool parse_time(ar_pool_t *pool, ar_span_t raw, int64_t *out_ms)
{
    char *s = ar_gw_url_decode(pool, raw);
    int64_t secs;
    if (!s)
        return false;
    if (ar_parse_int64(ar_span_cstr(s), &secs) == 0 && secs >= 0 && secs < 253402300800) {
        *out_ms = secs * 1000;
        return true;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%d", &tm);
    if (end && *end == 'T')
        end = strptime(end + 1, "%H:%M:%SZ", &tm);
    if (!end || *end)
        return false;
    *out_ms = (int64_t)timegm(&tm) * 1000;
    return *out_ms >= 0;
}

void ar_gw_admin_spend(ar_http_request_t *req, bool csv)
{
    admin_job_t *j = job_new(req);
    ar_spend_filter_t *f = &j->filter;
    ar_span_t q = req->query;
    const char *why = NULL;
    ar_span_t v = ar_gw_query_param(q, "key");
    if (v.len && (ar_parse_int64(v, &f->key_id) != 0 || f->key_id < 0))
        why = "'key' must be a key id (0: the master key)";
    v = ar_gw_query_param(q, "model");
    if (!why && v.len && !(f->model = ar_gw_url_decode(req->pool, v)))
        why = "'model' is malformed";
    v = ar_gw_query_param(q, "credential");
    if (!why && v.len && !(f->credential = ar_gw_url_decode(req->pool, v)))
        why = "'credential' is malformed";
    v = ar_gw_query_param(q, "from");
    if (!why && v.len && !parse_time(req->pool, v, &f->from_ms))
        why = "'from' must be unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ";
    v = ar_gw_query_param(q, "to");
    if (!why && v.len && !parse_time(req->pool, v, &f->to_ms))
        why = "'to' must be unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ";
    v = ar_gw_query_param(q, "group_by");
    j->group = AR_SPEND_GROUP_NONE;
    for (int g = 1; !why && v.len && g <= AR_SPEND_GROUP_CREDENTIAL; g++) {
        if (ar_span_eq(v, ar_span_cstr(group_names[g])))
            j->group = (ar_spend_group_t)g;
    }
    if (!why && v.len && j->group == AR_SPEND_GROUP_NONE)
        why = "'group_by' must be day, key, model or credential";
    if (why) {
        ar_gw_error(req, 400, "invalid_request_error", "invalid_spend_query", why);
        return;
    }
    j->csv = csv;
    submit(req, j, csv ? spend_csv_work : spend_json_work);
}
