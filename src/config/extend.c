/*
 * extend.c: a config generation made of the file's config plus entries that come from
 * elsewhere (the store's provider connections and models, SPEC section 6). The base is
 * deep-copied through the same schema rows that load and free it, so a new key in the
 * schema is copied without anyone remembering to; the new entries start from the rows'
 * defaults and go through the credential checks of the loader, so a store connection is
 * exactly what the same `credentials:` entry in the file would have been.
 */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/config_int.h"
#include "core/mem.h"

/* The first problem collected in ctx, into err. @return whether there was one. */
static bool first_problem(ar_config_ctx_t *ctx, char *err, size_t errlen)
{
    if (ctx->errs.cnt == 0)
        return false;
    snprintf(err, errlen, "%s", ctx->errs.items[0].msg);
    return true;
}

static void drop_problems(ar_config_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->errs.cnt; i++)
        ar_free(ctx->errs.items[i].msg);
    ar_free(ctx->errs.items);
    ctx->errs.items = NULL;
    ctx->errs.cnt = ctx->errs.cap = 0;
}

static bool http_url(const char *s)
{
    size_t scheme = strncmp(s, "http://", 7) == 0 ? 7 : strncmp(s, "https://", 8) == 0 ? 8 : 0;
    return scheme && s[scheme] && s[scheme] != '/';
}

/* Fills c (zeroed) from e. @return 0, or -1 with err set. */
static int fill_cred(ar_config_ctx_t *ctx, ar_cred_conf_t *c, const ar_config_extra_cred_t *e,
                     char *err, size_t errlen)
{
    ar_config__defaults(&ar_config__cred_section, c);
    c->from_store = true;
    if (!e->name || !*e->name) {
        snprintf(err, errlen, "a connection has no name");
        return -1;
    }
    c->name = ar_xstrdup(e->name);
    if (ar_config__cred_type(e->type, &c->type) != 0) {
        snprintf(err, errlen, "connection '%s': unknown provider type '%.40s'", e->name,
                 e->type ? e->type : "");
        return -1;
    }
    c->type_name = ar_xstrdup(e->type);
    if (e->api_key && *e->api_key)
        c->api_key = ar_xstrdup(e->api_key);
    if (e->base_url && *e->base_url) {
        if (c->type == AR_CRED_MOCK) {
            snprintf(err, errlen, "connection '%s': type mock takes no endpoint", e->name);
            return -1;
        }
        if (!http_url(e->base_url)) {
            snprintf(err, errlen,
                     "connection '%s': the endpoint must be an http(s) URL with a host", e->name);
            return -1;
        }
        size_t len = strlen(e->base_url);
        while (len > 0 && e->base_url[len - 1] == '/')
            len--;
        c->base_url = ar_xstrndup(e->base_url, len);
    }
    char path[160];
    snprintf(path, sizeof(path), "connection '%.100s'", e->name);
    ar_config__cred_finish(ctx, path, c);
    if (first_problem(ctx, err, errlen))
        return -1;
    return 0;
}

int ar_config_extend(const ar_config_t *base, const ar_config_extra_cred_t *creds, size_t n,
                     const ar_config_extra_model_t *models, size_t m, ar_config_t **out, char *err,
                     size_t errlen)
{
    ar_config_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ar_config_t *cfg = ar_xmalloc(sizeof(*cfg));
    memcpy(cfg, base, sizeof(*cfg));
    atomic_init(&cfg->refcnt, 1);
    cfg->path = base->path ? ar_xstrdup(base->path) : NULL;
    cfg->warnings = (ar_strlist_t){0};
    ar_config__unshare(&ar_config__root, cfg);

    size_t c0 = cfg->credentials_cnt;
    if (n) {
        cfg->credentials = ar_xrealloc(cfg->credentials, (c0 + n) * sizeof(*cfg->credentials));
        memset(cfg->credentials + c0, 0, n * sizeof(*cfg->credentials));
    }
    for (size_t i = 0; i < n; i++) {
        ar_cred_conf_t *c = &cfg->credentials[c0 + i];
        cfg->credentials_cnt++; /* counted first: a half-filled entry is freed with the rest */
        if (fill_cred(&ctx, c, &creds[i], err, errlen) != 0)
            goto fail;
        for (size_t j = 0; j < c0 + i; j++) {
            if (strcmp(cfg->credentials[j].name, c->name) == 0) {
                snprintf(err, errlen, "connection '%s': a credential of that name exists", c->name);
                goto fail;
            }
        }
    }

    size_t m0 = cfg->models_cnt;
    if (m) {
        cfg->models = ar_xrealloc(cfg->models, (m0 + m) * sizeof(*cfg->models));
        memset(cfg->models + m0, 0, m * sizeof(*cfg->models));
    }
    for (size_t i = 0; i < m; i++) {
        const ar_config_extra_model_t *e = &models[i];
        ar_model_conf_t *md = &cfg->models[m0 + i];
        cfg->models_cnt++;
        ar_config__defaults(&ar_config__model_section, md);
        md->from_store = true;
        if (!e->name || !*e->name || !e->model || !*e->model) {
            snprintf(err, errlen, "a provider model has no name or no upstream name");
            goto fail;
        }
        md->name = ar_xstrdup(e->name);
        md->model = ar_xstrdup(e->model);
        md->credential = ar_xstrdup(e->credential ? e->credential : "");
        long idx = ar_config_cred_index(cfg, md->credential);
        if (idx < 0) {
            snprintf(err, errlen, "provider model '%s': no connection named '%s'", e->name,
                     md->credential);
            goto fail;
        }
        md->credential_idx = (size_t)idx;
        md->rpm = cfg->server.default_models_rpm; /* as the loader settles an absent rpm */
    }
    drop_problems(&ctx);
    *out = cfg;
    return 0;
fail:
    drop_problems(&ctx);
    ar_config__free(cfg);
    return AR_EINVAL;
}
