/*
 * store.c: the store interface's front. It picks the backend for a database URL, seals and
 * opens provider secrets (secret.h: a backend only ever sees the sealed blob), checks the
 * stored responses handed in (so every backend gets well-formed ones) and frees the
 * records the backends hand out; everything else is the backend's.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "store/secret.h"
#include "store/store_int.h"

struct ar_store {
    const ar_store_backend_t *be;
    void *impl;
};

int ar_store_open(const char *url, ar_store_t **out, char *err, size_t errlen)
{
    return ar_store_open_opts(url, NULL, out, err, errlen);
}

int ar_store_open_opts(const char *url, const ar_store_opts_t *o, ar_store_t **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    const ar_store_backend_t *be = NULL;
    const char *location = NULL;
    if (strncmp(url, "sqlite://", 9) == 0) {
        be = &ar_store_sqlite;
        location = url + 9;
    } else if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
        be = &ar_store_postgres;
        location = url; /* libpq reads the URL as it is */
    } else {
        snprintf(err, errlen, "storage.database_url: expected sqlite://PATH or postgresql://...");
        return AR_EINVAL;
    }
    void *impl = NULL;
    int rc = be->open(location, o, &impl, err, errlen);
    if (rc)
        return rc;
    ar_store_t *s = ar_xcalloc(1, sizeof(*s));
    s->be = be;
    s->impl = impl;
    *out = s;
    return 0;
}

void ar_store_close(ar_store_t *s)
{
    if (!s)
        return;
    s->be->close(s->impl);
    ar_free(s);
}

int ar_store_schema_version(ar_store_t *s)
{
    return s->be->schema_version(s->impl);
}

int ar_store_plan_create(ar_store_t *s, const ar_plan_t *p, int64_t *id, char *err, size_t errlen)
{
    return s->be->plan_create(s->impl, p, id, err, errlen);
}

int ar_store_plan_list(ar_store_t *s, ar_plan_list_t *out)
{
    return s->be->plan_list(s->impl, out);
}

void ar_store_plan_list_free(ar_plan_list_t *l)
{
    for (size_t i = 0; i < l->cnt; i++) {
        ar_free(l->items[i].name);
        ar_free(l->items[i].description);
    }
    ar_free(l->items);
    l->items = NULL;
    l->cnt = 0;
}

int ar_store_key_create(ar_store_t *s, const ar_vkey_t *k, int64_t *id, char *err, size_t errlen)
{
    return s->be->key_create(s->impl, k, id, err, errlen);
}

int ar_store_key_get(ar_store_t *s, int64_t id, const char *hash, ar_vkey_t *out)
{
    return s->be->key_get(s->impl, id, hash, out);
}

int ar_store_key_list(ar_store_t *s, ar_vkey_list_t *out)
{
    return s->be->key_list(s->impl, out);
}

int ar_store_key_revoke(ar_store_t *s, int64_t id)
{
    return s->be->key_revoke(s->impl, id);
}

int ar_store_key_update(ar_store_t *s, const ar_vkey_t *k, char *err, size_t errlen)
{
    return s->be->key_update(s->impl, k, err, errlen);
}

void ar_vkey_free(ar_vkey_t *k)
{
    ar_free(k->name);
    ar_free(k->models);
    k->name = NULL;
    k->models = NULL;
}

void ar_store_key_list_free(ar_vkey_list_t *l)
{
    for (size_t i = 0; i < l->cnt; i++)
        ar_vkey_free(&l->items[i]);
    ar_free(l->items);
    l->items = NULL;
    l->cnt = 0;
}

int ar_store_keys_changed_since(ar_store_t *s, int64_t since_ms, ar_vkey_list_t *out)
{
    return s->be->keys_changed_since(s->impl, since_ms, out);
}

int ar_store_change_seq(ar_store_t *s, int64_t *seq)
{
    return s->be->change_seq(s->impl, seq);
}

/* ---- the ledger ---- */

int ar_store_spend_apply(ar_store_t *s, const ar_spend_t *recs, size_t n, size_t *inserted,
                         char *err, size_t errlen)
{
    return s->be->spend_apply(s->impl, recs, n, inserted, err, errlen);
}

int ar_store_spend_count(ar_store_t *s, int64_t *n)
{
    return s->be->spend_count(s->impl, n);
}

int ar_store_usage(ar_store_t *s, int64_t key_id, int64_t now_ms, ar_usage_totals_t *day,
                   ar_usage_totals_t *month, ar_usage_totals_t *total)
{
    return s->be->usage(s->impl, key_id, now_ms, day, month, total);
}

int ar_store_usage_by_key(ar_store_t *s, int64_t now_ms, ar_key_usage_list_t *out)
{
    return s->be->usage_by_key(s->impl, now_ms, out);
}

void ar_store_key_usage_list_free(ar_key_usage_list_t *l)
{
    ar_free(l->items);
    l->items = NULL;
    l->cnt = 0;
}

int ar_store_stats(ar_store_t *s, int64_t now_ms, ar_store_stats_t *out)
{
    return s->be->stats(s->impl, now_ms, out);
}

int ar_store_spend_totals(ar_store_t *s, const ar_spend_filter_t *f, ar_spend_group_t by,
                          ar_spend_total_list_t *out)
{
    out->items = NULL;
    out->cnt = 0;
    if ((unsigned)by > AR_SPEND_GROUP_CREDENTIAL)
        return AR_EINVAL;
    return s->be->spend_totals(s->impl, f, by, out);
}

void ar_store_spend_total_list_free(ar_spend_total_list_t *l)
{
    for (size_t i = 0; i < l->cnt; i++)
        ar_free(l->items[i].group);
    ar_free(l->items);
    l->items = NULL;
    l->cnt = 0;
}

int ar_store_spend_each(ar_store_t *s, const ar_spend_filter_t *f, size_t max, ar_spend_each_fn fn,
                        void *ud)
{
    return s->be->spend_each(s->impl, f, max, fn, ud);
}

/* ---- tenancy ---- */

int ar_store_conn_create(ar_store_t *s, const ar_conn_t *c, const char *secret,
                         const char *secret_key, int64_t *id, char *err, size_t errlen)
{
    ar_buf_t blob;
    ar_buf_init(&blob, 1 << 20);
    int rc = ar_secret_seal(secret_key, c->name, secret ? secret : "", &blob, err, errlen);
    if (rc == 0) {
        ar_conn_t sealed = *c;
        sealed.secret = (unsigned char *)blob.ptr;
        sealed.secret_len = blob.len;
        rc = s->be->conn_create(s->impl, &sealed, id, err, errlen);
    }
    ar_buf_dispose(&blob);
    return rc;
}

int ar_store_conn_get(ar_store_t *s, int64_t id, ar_conn_t *out)
{
    return s->be->conn_get(s->impl, id, out);
}

int ar_store_conn_list(ar_store_t *s, ar_conn_list_t *out)
{
    return s->be->conn_list(s->impl, out);
}

int ar_store_conn_secret(ar_store_t *s, int64_t id, const char *secret_key, char **plain, char *err,
                         size_t errlen)
{
    ar_conn_t c;
    *plain = NULL;
    int rc = s->be->conn_get(s->impl, id, &c);
    if (rc) {
        snprintf(err, errlen, "no connection with id %lld", (long long)id);
        return rc;
    }
    rc = ar_secret_open(secret_key, c.name, c.secret, c.secret_len, plain, err, errlen);
    ar_conn_free(&c);
    return rc;
}

int ar_store_conn_remove(ar_store_t *s, int64_t id, bool force, char *err, size_t errlen)
{
    return s->be->conn_remove(s->impl, id, force, err, errlen);
}

void ar_conn_free(ar_conn_t *c)
{
    ar_free(c->name);
    ar_free(c->provider);
    ar_free(c->endpoint);
    ar_free(c->secret);
    memset(c, 0, sizeof(*c));
}

void ar_store_conn_list_free(ar_conn_list_t *l)
{
    for (size_t i = 0; i < l->cnt; i++)
        ar_conn_free(&l->items[i]);
    ar_free(l->items);
    l->items = NULL;
    l->cnt = 0;
}

int ar_store_model_create(ar_store_t *s, const ar_pmodel_t *m, int64_t *id, char *err,
                          size_t errlen)
{
    return s->be->model_create(s->impl, m, id, err, errlen);
}

int ar_store_model_list(ar_store_t *s, int64_t conn_id, ar_pmodel_list_t *out)
{
    return s->be->model_list(s->impl, conn_id, out);
}

void ar_store_model_list_free(ar_pmodel_list_t *l)
{
    for (size_t i = 0; i < l->cnt; i++) {
        ar_free(l->items[i].name);
        ar_free(l->items[i].remote);
        ar_free(l->items[i].deployment);
    }
    ar_free(l->items);
    l->items = NULL;
    l->cnt = 0;
}

int ar_store_assign_create(ar_store_t *s, const ar_assign_t *a, int64_t *id, char *err,
                           size_t errlen)
{
    return s->be->assign_create(s->impl, a, id, err, errlen);
}

int ar_store_assign_list(ar_store_t *s, int64_t key_id, ar_assign_list_t *out)
{
    return s->be->assign_list(s->impl, key_id, out);
}

int ar_store_assign_remove(ar_store_t *s, int64_t id)
{
    return s->be->assign_remove(s->impl, id);
}

void ar_store_assign_list_free(ar_assign_list_t *l)
{
    for (size_t i = 0; i < l->cnt; i++)
        ar_free(l->items[i].alias);
    ar_free(l->items);
    l->items = NULL;
    l->cnt = 0;
}

/* ---- stored responses ---- */

/* Whether id is a response id the store can hold: 1..AR_RESPONSE_ID_MAX-1 characters. */
static bool response_id_ok(const char *id)
{
    return id && id[0] && memchr(id, '\0', AR_RESPONSE_ID_MAX) != NULL;
}

int ar_store_response_put(ar_store_t *s, const ar_stored_response_t *r, char *err, size_t errlen)
{
    if (!response_id_ok(r->id)) {
        snprintf(err, errlen, "a stored response needs an id of 1 to %d characters",
                 AR_RESPONSE_ID_MAX - 1);
        return AR_EINVAL;
    }
    if (r->previous_id && (!response_id_ok(r->previous_id) || !strcmp(r->previous_id, r->id))) {
        snprintf(err, errlen, "response %s: previous_id is empty, too long or itself", r->id);
        return AR_EINVAL;
    }
    if (!r->model || !r->input || !r->output) {
        snprintf(err, errlen, "response %s: model, input and output are required", r->id);
        return AR_EINVAL;
    }
    return s->be->response_put(s->impl, r, err, errlen);
}

int ar_store_response_get(ar_store_t *s, const char *id, int64_t owner, ar_stored_response_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!response_id_ok(id))
        return AR_ENOTFOUND; /* no such id can have been stored */
    return s->be->response_get(s->impl, id, owner, out);
}

int ar_store_response_delete(ar_store_t *s, const char *id, int64_t owner)
{
    if (!response_id_ok(id))
        return AR_ENOTFOUND;
    return s->be->response_delete(s->impl, id, owner);
}

int ar_store_response_chain(ar_store_t *s, const char *id, int64_t owner, size_t max,
                            ar_stored_response_list_t *out)
{
    out->items = NULL;
    out->cnt = 0;
    if (!response_id_ok(id))
        return AR_ENOTFOUND;
    return s->be->response_chain(s->impl, id, owner, max, out);
}

int ar_store_responses_purge(ar_store_t *s, int64_t before_ms, int64_t *deleted)
{
    int64_t ignored;
    return s->be->responses_purge(s->impl, before_ms, deleted ? deleted : &ignored);
}

void ar_stored_response_dispose(ar_stored_response_t *r)
{
    ar_free(r->previous_id);
    ar_free(r->model);
    ar_free(r->input);
    ar_free(r->output);
    memset(r, 0, sizeof(*r));
}

void ar_stored_response_list_free(ar_stored_response_list_t *l)
{
    for (size_t i = 0; i < l->cnt; i++)
        ar_stored_response_dispose(&l->items[i]);
    ar_free(l->items);
    l->items = NULL;
    l->cnt = 0;
}

/* ---- backup ---- */

int ar_store_backup(ar_store_t *s, json_t **out, char *err, size_t errlen)
{
    return s->be->backup(s->impl, out, err, errlen);
}

int ar_store_restore(ar_store_t *s, json_t *in, char *err, size_t errlen)
{
    return s->be->restore(s->impl, in, err, errlen);
}
