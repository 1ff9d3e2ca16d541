/*
 * tenancy_cmds.c: `airouter connection add|list|remove`, `airouter model add|list` and
 * `airouter assign` (SPEC section 6): provider connections whose API key is stored sealed
 * under storage.secret_key, the models served through them, and their assignment to
 * virtual keys. No command prints a provider secret; a listing says only that it is set.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/store_cli.h"
#include "core/str.h"

/* The credential types of the config (src/config/schema.c's cred_types). */
static const char *const provider_types[] = {"openai",    "azure", "anthropic", "gemini",
                                             "vertex-ai", "proxy", "mock"};

static bool known_provider(const char *t)
{
    for (size_t i = 0; i < sizeof(provider_types) / sizeof(provider_types[0]); i++) {
        if (strcmp(provider_types[i], t) == 0)
            return true;
    }
    return false;
}

static json_t *conn_json(const ar_conn_t *c)
{
    return json_pack("{sI ss ss ss ss sI sI}", "id", (json_int_t)c->id, "name", c->name, "provider",
                     c->provider, "endpoint", c->endpoint, "secret", "encrypted", "created_ms",
                     (json_int_t)c->created_ms, "updated_ms", (json_int_t)c->updated_ms);
}

int ar_cli_connection_add(ar_cli_ctx_t *c)
{
    ar_cli_flags_t *f = c->f;
    ar_conn_t conn = {.name = (char *)ar_cli_take(f, "name"),
                      .provider = (char *)ar_cli_take(f, "provider"),
                      .endpoint = (char *)ar_cli_take(f, "endpoint")};
    const char *api_key = ar_cli_take(f, "api-key");
    int rc = ar_cli_unknown_flags(f, "connection add");
    if (rc)
        return rc;
    if (!conn.name || !*conn.name || !conn.provider || !conn.endpoint || !api_key)
        return ar_cli_usage_error("%s", "connection add needs --name N --provider TYPE "
                                        "--endpoint URL --api-key K");
    if (!known_provider(conn.provider))
        return ar_cli_usage_error("connection add: --provider '%s' is not one of openai, azure, "
                                  "anthropic, gemini, vertex-ai, proxy, mock",
                                  conn.provider);
    if (strncmp(conn.endpoint, "http://", 7) != 0 && strncmp(conn.endpoint, "https://", 8) != 0)
        return ar_cli_usage_error("connection add: --endpoint needs an http:// or https:// URL, "
                                  "not '%s'",
                                  conn.endpoint);
    if (!*api_key)
        return ar_cli_usage_error("%s", "connection add: --api-key is empty");
    if (!c->secret_key) {
        fprintf(stderr, "airouter: connection add: storage.secret_key is required to store "
                        "provider secrets (set it in the config, e.g. "
                        "secret_key: os.environ/AIROUTER_SECRET_KEY)\n");
        return 1;
    }
    char err[256];
    if (ar_store_conn_create(c->store, &conn, api_key, c->secret_key, &conn.id, err, sizeof(err)) !=
        0) {
        fprintf(stderr, "airouter: connection add: %s\n", err);
        return 1;
    }
    if (f->json)
        ar_cli_print_json(json_pack("{sI ss ss ss ss}", "id", (json_int_t)conn.id, "name",
                                    conn.name, "provider", conn.provider, "endpoint", conn.endpoint,
                                    "secret", "encrypted"));
    else
        printf("connection %" PRId64 " '%s' added (%s, %s); its key is stored encrypted\n", conn.id,
               conn.name, conn.provider, conn.endpoint);
    return 0;
}

int ar_cli_connection_list(ar_cli_ctx_t *c)
{
    int rc = ar_cli_unknown_flags(c->f, "connection list");
    if (rc)
        return rc;
    ar_conn_list_t l;
    if (ar_store_conn_list(c->store, &l) != 0) {
        fprintf(stderr, "airouter: connection list: cannot read the store\n");
        return 1;
    }
    if (c->f->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < l.cnt; i++)
            json_array_append_new(a, conn_json(&l.items[i]));
        ar_cli_print_json(json_pack("{so}", "connections", a));
    } else {
        printf("%-5s %-20s %-10s %-40s %-10s %s\n", "ID", "NAME", "PROVIDER", "ENDPOINT", "KEY",
               "CREATED");
        for (size_t i = 0; i < l.cnt; i++) {
            char d[32];
            printf("%-5" PRId64 " %-20s %-10s %-40s %-10s %s\n", l.items[i].id, l.items[i].name,
                   l.items[i].provider, l.items[i].endpoint, "encrypted",
                   ar_cli_date(l.items[i].created_ms, d));
        }
        printf("%zu connection%s\n", l.cnt, l.cnt == 1 ? "" : "s");
    }
    ar_store_conn_list_free(&l);
    return 0;
}

int ar_cli_connection_remove(ar_cli_ctx_t *c)
{
    int64_t id = 0;
    const char *force = ar_cli_take(c->f, "force");
    int rc = ar_cli_take_id(c->f, "id", "connection remove", &id);
    if (rc || (rc = ar_cli_unknown_flags(c->f, "connection remove")))
        return rc;
    bool forced = force && strcmp(force, "false") != 0;
    char err[256];
    if (ar_store_conn_remove(c->store, id, forced, err, sizeof(err)) != 0) {
        fprintf(stderr, "airouter: connection remove: %s\n", err);
        return 1;
    }
    if (c->f->json)
        ar_cli_print_json(json_pack("{sI sb}", "id", (json_int_t)id, "removed", 1));
    else
        printf("connection %" PRId64 " removed\n", id);
    return 0;
}

static json_t *model_json(const ar_pmodel_t *m)
{
    return json_pack("{sI sI ss ss ss sI}", "id", (json_int_t)m->id, "conn_id",
                     (json_int_t)m->conn_id, "name", m->name, "remote", m->remote, "deployment",
                     m->deployment ? m->deployment : "", "created_ms", (json_int_t)m->created_ms);
}

int ar_cli_model_add(ar_cli_ctx_t *c)
{
    ar_cli_flags_t *f = c->f;
    ar_pmodel_t m = {.name = (char *)ar_cli_take(f, "name"),
                     .remote = (char *)ar_cli_take(f, "remote"),
                     .deployment = (char *)ar_cli_take(f, "deployment")};
    int rc = ar_cli_take_id(f, "conn-id", "model add", &m.conn_id);
    if (rc || (rc = ar_cli_unknown_flags(f, "model add")))
        return rc;
    if (!m.name || !*m.name || !m.remote || !*m.remote)
        return ar_cli_usage_error("%s", "model add needs --conn-id ID --name ALIAS --remote NAME");
    char err[256];
    if (ar_store_model_create(c->store, &m, &m.id, err, sizeof(err)) != 0) {
        fprintf(stderr, "airouter: model add: %s\n", err);
        return 1;
    }
    if (f->json)
        ar_cli_print_json(model_json(&m));
    else
        printf("model %" PRId64 " '%s' added: %s on connection %" PRId64 "\n", m.id, m.name,
               m.remote, m.conn_id);
    return 0;
}

int ar_cli_model_list(ar_cli_ctx_t *c)
{
    int64_t conn = 0;
    const char *v = ar_cli_take(c->f, "conn-id");
    int rc = ar_cli_unknown_flags(c->f, "model list");
    if (rc)
        return rc;
    if (v && (ar_parse_int64(ar_span_cstr(v), &conn) != 0 || conn <= 0))
        return ar_cli_usage_error("model list: --conn-id needs an id, not '%s'", v);
    ar_pmodel_list_t l;
    if (ar_store_model_list(c->store, conn, &l) != 0) {
        fprintf(stderr, "airouter: model list: cannot read the store\n");
        return 1;
    }
    if (c->f->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < l.cnt; i++)
            json_array_append_new(a, model_json(&l.items[i]));
        ar_cli_print_json(json_pack("{so}", "models", a));
    } else {
        printf("%-5s %-8s %-20s %-30s %s\n", "ID", "CONN", "NAME", "REMOTE", "DEPLOYMENT");
        for (size_t i = 0; i < l.cnt; i++)
            printf("%-5" PRId64 " %-8" PRId64 " %-20s %-30s %s\n", l.items[i].id,
                   l.items[i].conn_id, l.items[i].name, l.items[i].remote,
                   *l.items[i].deployment ? l.items[i].deployment : "-");
        printf("%zu model%s\n", l.cnt, l.cnt == 1 ? "" : "s");
    }
    ar_store_model_list_free(&l);
    return 0;
}

int ar_cli_assign(ar_cli_ctx_t *c)
{
    ar_cli_flags_t *f = c->f;
    ar_assign_t a = {.alias = (char *)ar_cli_take(f, "alias"), .tps = -1};
    const char *tps = ar_cli_take(f, "tps");
    int rc = ar_cli_take_id(f, "vkey-id", "assign", &a.key_id);
    rc = rc ? rc : ar_cli_take_id(f, "model-id", "assign", &a.model_id);
    if (rc || (rc = ar_cli_unknown_flags(f, "assign")))
        return rc;
    if (!a.alias || !*a.alias)
        return ar_cli_usage_error("%s", "assign needs --vkey-id ID --model-id ID --alias NAME");
    if (tps && (ar_parse_double(ar_span_cstr(tps), &a.tps) != 0 || a.tps <= 0))
        return ar_cli_usage_error("assign: --tps needs a number > 0, not '%s'", tps);
    char err[256];
    if (ar_store_assign_create(c->store, &a, &a.id, err, sizeof(err)) != 0) {
        fprintf(stderr, "airouter: assign: %s\n", err);
        return 1;
    }
    if (f->json)
        ar_cli_print_json(json_pack("{sI sI sI ss sf}", "id", (json_int_t)a.id, "vkey_id",
                                    (json_int_t)a.key_id, "model_id", (json_int_t)a.model_id,
                                    "alias", a.alias, "tps", a.tps));
    else
        printf("model %" PRId64 " assigned to key %" PRId64 " as '%s'\n", a.model_id, a.key_id,
               a.alias);
    return 0;
}
