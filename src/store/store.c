/*
 * store.c: the store interface's front. It picks the backend for a database URL and
 * frees the records the backends hand out; everything else is the backend's.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "store/store_int.h"

struct ar_store {
    const ar_store_backend_t *be;
    void *impl;
};

int ar_store_open(const char *url, ar_store_t **out, char *err, size_t errlen)
{
    *out = NULL;
    const ar_store_backend_t *be = NULL;
    const char *location = NULL;
    if (strncmp(url, "sqlite://", 9) == 0) {
        be = &ar_store_sqlite;
        location = url + 9;
    } else if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
        snprintf(err, errlen,
                 "storage.database_url: PostgreSQL is not supported yet; use sqlite://");
        return AR_EINVAL;
    } else {
        snprintf(err, errlen, "storage.database_url: expected sqlite://PATH");
        return AR_EINVAL;
    }
    void *impl = NULL;
    int rc = be->open(location, &impl, err, errlen);
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
