/*
 * backup_schema.c: the tables of a backup and their columns (backup_schema.h), and the
 * checks both backends' restores share.
 */
#include <stdio.h>
#include <string.h>

#include "core/crypto.h"
#include "core/err.h"
#include "store/backup_schema.h"

/* In restore order: a row's foreign keys point to tables before it. */
const table_t ar_backup_tables[] = {
    {"plans",
     "id",
     {{"id", COL_INT},
      {"name", COL_TEXT},
      {"description", COL_TEXT},
      {"max_tokens", COL_INT},
      {"created_ms", COL_INT}}},
    {"keys",
     "id",
     {{"id", COL_INT},
      {"name", COL_TEXT},
      {"hash", COL_TEXT},
      {"masked", COL_TEXT},
      {"created_ms", COL_INT},
      {"updated_ms", COL_INT},
      {"expires_ms", COL_INT},
      {"revoked", COL_INT},
      {"rpm", COL_INT},
      {"tpm", COL_INT},
      {"daily_tokens", COL_INT},
      {"monthly_tokens", COL_INT},
      {"limit_tokens", COL_INT},
      {"max_budget_usd", COL_REAL},
      {"plan_id", COL_INT_OR_NULL},
      {"models", COL_TEXT}}},
    {"connections",
     "id",
     {{"id", COL_INT},
      {"name", COL_TEXT},
      {"provider", COL_TEXT},
      {"endpoint", COL_TEXT},
      {"secret", COL_BLOB},
      {"created_ms", COL_INT},
      {"updated_ms", COL_INT}}},
    {"provider_models",
     "id",
     {{"id", COL_INT},
      {"conn_id", COL_INT},
      {"name", COL_TEXT},
      {"remote", COL_TEXT},
      {"deployment", COL_TEXT},
      {"created_ms", COL_INT}}},
    {"assignments",
     "id",
     {{"id", COL_INT},
      {"key_id", COL_INT},
      {"model_id", COL_INT},
      {"alias", COL_TEXT},
      {"tps", COL_REAL},
      {"created_ms", COL_INT}}},
    {"usage_daily",
     "key_id, day",
     {{"key_id", COL_INT},
      {"day", COL_TEXT},
      {"requests", COL_INT},
      {"prompt_tokens", COL_INT},
      {"completion_tokens", COL_INT},
      {"cost_usd", COL_REAL}}},
    {"responses",
     "created_ms, id",
     {{"id", COL_TEXT},
      {"owner", COL_INT},
      {"previous_id", COL_TEXT_OR_NULL},
      {"model", COL_TEXT},
      {"created_ms", COL_INT},
      {"input", COL_TEXT},
      {"output", COL_TEXT}}},
};
const size_t ar_backup_tables_cnt = sizeof(ar_backup_tables) / sizeof(ar_backup_tables[0]);

const char *const ar_backup_all_tables[] = {"plans",           "keys",        "connections",
                                            "provider_models", "assignments", "usage_daily",
                                            "spend",           "responses"};
const size_t ar_backup_all_tables_cnt =
    sizeof(ar_backup_all_tables) / sizeof(ar_backup_all_tables[0]);

size_t ar_backup_cols_cnt(const table_t *t)
{
    size_t n = 0;
    while (n < sizeof(t->cols) / sizeof(t->cols[0]) && t->cols[n].name)
        n++;
    return n;
}

void ar_backup_col_list(const table_t *t, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ar_backup_cols_cnt(t); i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", t->cols[i].name);
}

int ar_backup_check_header(json_t *in, char *err, size_t errlen)
{
    const char *format = json_string_value(json_object_get(in, "format"));
    json_t *version = json_object_get(in, "version");
    if (!json_is_object(in) || !format || strcmp(format, AR_BACKUP_FORMAT) != 0) {
        snprintf(err, errlen, "not an airouter backup (no \"format\": \"%s\")", AR_BACKUP_FORMAT);
        return AR_EINVAL;
    }
    if (!json_is_integer(version) || json_integer_value(version) != AR_BACKUP_VERSION) {
        snprintf(err, errlen, "backup version %lld is not supported (this airouter reads %d)",
                 json_is_integer(version) ? (long long)json_integer_value(version) : -1LL,
                 AR_BACKUP_VERSION);
        return AR_EINVAL;
    }
    return 0;
}

int ar_backup_bad_value(const table_t *t, size_t idx, const col_t *c, char *err, size_t errlen)
{
    snprintf(err, errlen, "the backup's %s[%zu].%s is missing or not a%s", t->name, idx, c->name,
             c->kind == COL_TEXT || c->kind == COL_TEXT_OR_NULL ? " string"
             : c->kind == COL_BLOB                              ? " base64 string"
             : c->kind == COL_REAL                              ? " number"
                                                                : "n integer");
    return AR_EINVAL;
}

json_t *ar_backup_blob_json(const void *p, size_t n)
{
    ar_buf_t b;
    ar_buf_init(&b, 1 << 20);
    json_t *v = NULL;
    if (ar_base64_encode(ar_span(p ? p : "", n), false, &b) == 0)
        v = json_stringn(b.ptr ? b.ptr : "", b.len);
    ar_buf_dispose(&b);
    return v;
}
