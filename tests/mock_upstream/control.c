/*
 * control.c: the mock's shared state and its /_mock/ control endpoints: directive queues
 * (POST/GET/DELETE /_mock/queue), the request recorder (GET/DELETE /_mock/requests), counters
 * (GET/DELETE /_mock/stats), POST /_mock/reset and GET /_mock/health. All workers share one
 * mutex here; requests reach it only when recording is on or a queue is non-empty, which the
 * atomic `queued` count tells without locking. No jansson value is ever shared between
 * threads: queued directive sets and records are deep copies owned by this file, handed over
 * or serialised under the mutex (jansson's reference counts are not safe to share).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

int mock_shared_init(mock_shared_t *sh)
{
    memset(sh, 0, sizeof(*sh));
    atomic_init(&sh->queued, 0);
    return pthread_mutex_init(&sh->lock, NULL) == 0 ? 0 : -1;
}

static void queues_clear_locked(mock_shared_t *sh)
{
    for (size_t i = 0; i < sh->queues_cnt; i++) {
        free(sh->queues[i].key);
        json_decref(sh->queues[i].items);
    }
    free(sh->queues);
    sh->queues = NULL;
    sh->queues_cnt = 0;
    atomic_store(&sh->queued, 0);
}

static void records_clear_locked(mock_shared_t *sh)
{
    for (size_t i = 0; i < sh->records_cnt; i++) {
        json_decref(sh->records[(sh->records_start + i) % MOCK_RECORDS_MAX]);
    }
    sh->records_start = 0;
    sh->records_cnt = 0;
}

void mock_shared_dispose(mock_shared_t *sh)
{
    queues_clear_locked(sh);
    records_clear_locked(sh);
    pthread_mutex_destroy(&sh->lock);
}

/* ---- queues ---- */

static mock_queue_t *queue_find_locked(mock_shared_t *sh, const char *key, size_t key_len)
{
    for (size_t i = 0; i < sh->queues_cnt; i++) {
        mock_queue_t *q = &sh->queues[i];
        if (key == NULL ? q->key == NULL
                        : q->key != NULL && strlen(q->key) == key_len &&
                              memcmp(q->key, key, key_len) == 0) {
            return q;
        }
    }
    return NULL;
}

static json_t *queue_take_locked(mock_shared_t *sh, mock_queue_t *q)
{
    json_t *item;

    if (q == NULL || json_array_size(q->items) == 0) {
        return NULL;
    }
    item = json_incref(json_array_get(q->items, 0));
    json_array_remove(q->items, 0);
    atomic_fetch_sub(&sh->queued, 1);
    return item;
}

json_t *mock_queue_pop(mock_server_t *srv, mock_span_t token)
{
    mock_shared_t *sh = &srv->shared;
    json_t *item = NULL;

    pthread_mutex_lock(&sh->lock);
    if (token.ptr != NULL) {
        item = queue_take_locked(sh, queue_find_locked(sh, token.ptr, token.len));
    }
    if (item == NULL) {
        item = queue_take_locked(sh, queue_find_locked(sh, NULL, 0));
    }
    pthread_mutex_unlock(&sh->lock);
    return item;
}

void mock_control_queue_post(mock_req_t *req)
{
    mock_shared_t *sh = &req->srv->shared;
    json_t *key = json_object_get(req->json, "key");
    json_t *dirs = json_object_get(req->json, "directives");
    mock_queue_t *q;
    json_t *resp;
    size_t added = 0;
    size_t pending;

    if (json_is_object(dirs)) {
        dirs = json_pack("[O]", dirs);
    } else {
        dirs = json_incref(dirs);
    }
    if (!json_is_array(dirs) || (key != NULL && !json_is_string(key) && !json_is_null(key))) {
        json_decref(dirs);
        mock_request_error(req, 400, "invalid_request_error", NULL,
                           "expected {\"key\": string (optional), \"directives\": [objects]}");
        return;
    }
    for (size_t i = 0; i < json_array_size(dirs); i++) {
        if (!json_is_object(json_array_get(dirs, i))) {
            json_decref(dirs);
            mock_request_error(req, 400, "invalid_request_error", NULL,
                               "every directive set must be an object");
            return;
        }
    }
    if (!json_is_string(key)) {
        key = NULL;
    }

    pthread_mutex_lock(&sh->lock);
    q = queue_find_locked(sh, key ? json_string_value(key) : NULL,
                          key ? json_string_length(key) : 0);
    if (q == NULL) {
        mock_queue_t *qs = realloc(sh->queues, (sh->queues_cnt + 1) * sizeof(*qs));
        if (qs != NULL) {
            sh->queues = qs;
            q = &qs[sh->queues_cnt++];
            q->key = key ? strdup(json_string_value(key)) : NULL;
            q->items = json_array();
        }
    }
    if (q != NULL) {
        for (size_t i = 0; i < json_array_size(dirs); i++) {
            if (json_array_append_new(q->items, json_deep_copy(json_array_get(dirs, i))) == 0) {
                added++;
            }
        }
        atomic_fetch_add(&sh->queued, (int)added);
    }
    pending = q ? json_array_size(q->items) : 0;
    pthread_mutex_unlock(&sh->lock);
    json_decref(dirs);

    resp = json_pack("{s:b, s:I, s:I}", "ok", 1, "added", (json_int_t)added, "pending",
                     (json_int_t)pending);
    mock_resp_json(req, 200, resp);
    json_decref(resp);
}

void mock_control_queue_get(mock_req_t *req)
{
    mock_shared_t *sh = &req->srv->shared;
    json_t *list = json_array();
    json_t *resp;

    pthread_mutex_lock(&sh->lock);
    for (size_t i = 0; i < sh->queues_cnt; i++) {
        mock_queue_t *q = &sh->queues[i];
        /* A deep copy: other workers pop from q->items while this answer is dumped. */
        json_array_append_new(list, json_pack("{s:o, s:o}", "key",
                                              q->key ? json_string(q->key) : json_null(),
                                              "directives", json_deep_copy(q->items)));
    }
    pthread_mutex_unlock(&sh->lock);
    resp = json_pack("{s:o}", "queues", list);
    mock_resp_json(req, 200, resp);
    json_decref(resp);
}

void mock_control_queue_delete(mock_req_t *req)
{
    mock_shared_t *sh = &req->srv->shared;

    pthread_mutex_lock(&sh->lock);
    queues_clear_locked(sh);
    pthread_mutex_unlock(&sh->lock);
    mock_resp_simple(req, 200, "application/json", MOCK_LIT("{\"ok\":true}"));
}

/* ---- records ---- */

void mock_record_add(mock_server_t *srv, json_t *rec)
{
    mock_shared_t *sh = &srv->shared;
    json_t *old = NULL;

    pthread_mutex_lock(&sh->lock);
    if (sh->records_cnt == MOCK_RECORDS_MAX) {
        old = sh->records[sh->records_start];
        sh->records[sh->records_start] = rec;
        sh->records_start = (sh->records_start + 1) % MOCK_RECORDS_MAX;
    } else {
        sh->records[(sh->records_start + sh->records_cnt) % MOCK_RECORDS_MAX] = rec;
        sh->records_cnt++;
    }
    pthread_mutex_unlock(&sh->lock);
    json_decref(old);
}

void mock_control_requests_get(mock_req_t *req)
{
    mock_shared_t *sh = &req->srv->shared;
    mock_buf_t *o = mock_resp_begin(req);

    /* Serialised under the lock: the records belong to the ring, not to this thread. */
    mock_buf_addc(o, '[');
    pthread_mutex_lock(&sh->lock);
    for (size_t i = 0; i < sh->records_cnt && !o->failed; i++) {
        json_t *rec = sh->records[(sh->records_start + i) % MOCK_RECORDS_MAX];
        size_t n = json_dumpb(rec, NULL, 0, JSON_COMPACT);

        if (i > 0) {
            mock_buf_addc(o, ',');
        }
        if (n > 0 && mock_buf_reserve(o, n) == 0) {
            o->len += json_dumpb(rec, o->data + o->len, n, JSON_COMPACT);
        }
    }
    pthread_mutex_unlock(&sh->lock);
    mock_buf_addc(o, ']');
    mock_resp_finish(req, 200, "application/json");
}

void mock_control_requests_delete(mock_req_t *req)
{
    mock_shared_t *sh = &req->srv->shared;

    pthread_mutex_lock(&sh->lock);
    records_clear_locked(sh);
    pthread_mutex_unlock(&sh->lock);
    mock_resp_simple(req, 200, "application/json", MOCK_LIT("{\"ok\":true}"));
}

/* ---- stats ---- */

typedef struct totals {
    uint64_t requests;
    int64_t open_conns;
    uint64_t by_route[MOCK_ROUTES_MAX + 1];
    uint64_t by_status[MOCK_STATUS_MAX];
} totals_t;

static void sum_stats(mock_server_t *srv, totals_t *t)
{
    memset(t, 0, sizeof(*t));
    for (int w = 0; w < srv->workers_cnt; w++) {
        mock_stats_t *s = &srv->workers[w].stats;
        t->requests += atomic_load_explicit(&s->requests, memory_order_relaxed);
        t->open_conns += atomic_load_explicit(&s->open_conns, memory_order_relaxed);
        for (size_t i = 0; i <= MOCK_ROUTES_MAX; i++) {
            t->by_route[i] += atomic_load_explicit(&s->by_route[i], memory_order_relaxed);
        }
        for (size_t i = 0; i < MOCK_STATUS_MAX; i++) {
            t->by_status[i] += atomic_load_explicit(&s->by_status[i], memory_order_relaxed);
        }
    }
}

void mock_control_stats_get(mock_req_t *req)
{
    mock_shared_t *sh = &req->srv->shared;
    totals_t t;
    json_t *by_path = json_object();
    json_t *by_status = json_object();
    json_t *resp;

    sum_stats(req->srv, &t);
    pthread_mutex_lock(&sh->lock);
    t.requests -= sh->base_requests;
    for (size_t i = 0; i <= MOCK_ROUTES_MAX; i++) {
        t.by_route[i] -= sh->base_by_route[i];
    }
    for (size_t i = 0; i < MOCK_STATUS_MAX; i++) {
        t.by_status[i] -= sh->base_by_status[i];
    }
    pthread_mutex_unlock(&sh->lock);

    for (size_t i = 0; i < mock_routes_cnt; i++) {
        if (t.by_route[i] == 0) {
            continue;
        }
        /* Several methods share a path: add them up under the path. */
        json_t *prev = json_object_get(by_path, mock_routes[i].pattern);
        json_int_t n = (json_int_t)t.by_route[i] + (prev ? json_integer_value(prev) : 0);
        json_object_set_new(by_path, mock_routes[i].pattern, json_integer(n));
    }
    if (t.by_route[MOCK_ROUTES_MAX] != 0) {
        json_object_set_new(by_path, "(unknown)",
                            json_integer((json_int_t)t.by_route[MOCK_ROUTES_MAX]));
    }
    for (size_t i = 0; i < MOCK_STATUS_MAX; i++) {
        char key[8];
        if (t.by_status[i] == 0) {
            continue;
        }
        snprintf(key, sizeof(key), "%zu", i);
        json_object_set_new(by_status, key, json_integer((json_int_t)t.by_status[i]));
    }
    resp = json_pack("{s:I, s:o, s:o, s:I}", "requests", (json_int_t)t.requests, "by_path", by_path,
                     "by_status", by_status, "open_connections", (json_int_t)t.open_conns);
    mock_resp_json(req, 200, resp);
    json_decref(resp);
}

static void stats_rebase(mock_server_t *srv)
{
    mock_shared_t *sh = &srv->shared;
    totals_t t;

    /* Workers keep counting; "reset" moves the baseline, so no worker counter is written
     * by a foreign thread. */
    sum_stats(srv, &t);
    pthread_mutex_lock(&sh->lock);
    sh->base_requests = t.requests;
    memcpy(sh->base_by_route, t.by_route, sizeof(sh->base_by_route));
    memcpy(sh->base_by_status, t.by_status, sizeof(sh->base_by_status));
    pthread_mutex_unlock(&sh->lock);
}

void mock_control_stats_delete(mock_req_t *req)
{
    stats_rebase(req->srv);
    mock_resp_simple(req, 200, "application/json", MOCK_LIT("{\"ok\":true}"));
}

void mock_control_reset(mock_req_t *req)
{
    mock_shared_t *sh = &req->srv->shared;

    pthread_mutex_lock(&sh->lock);
    queues_clear_locked(sh);
    records_clear_locked(sh);
    pthread_mutex_unlock(&sh->lock);
    stats_rebase(req->srv);
    mock_resp_simple(req, 200, "application/json", MOCK_LIT("{\"ok\":true}"));
}

void mock_control_health(mock_req_t *req)
{
    mock_resp_simple(req, 200, "application/json", MOCK_LIT("{\"status\":\"ok\"}"));
}
