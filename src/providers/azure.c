/*
 * azure.c: the `azure` provider, Azure OpenAI (and Foundry resources serving its API). It
 * speaks the OpenAI wire format with an `api-key` header, so this file only lays out the
 * URLs and reuses oai_compat.c for everything else. A dated api_version puts the upstream
 * model (the deployment name) into the URL, {base_url}/openai/deployments/{model}/...
 * ?api-version=V, and drops `model` from the body; `api_version: v1` uses the v1 API,
 * {base_url}/openai/v1/..., with `model` in the body. No model discovery: Azure lists
 * models, not deployments, on its data plane, and only deployment names can be called.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "providers/oai_compat.h"

/* Per endpoint: the path of the v1 API and the path after the deployment name. */
static const char *const v1_paths[AR_EP_CNT] = {
    [AR_EP_CHAT] = "/openai/v1/chat/completions",
    [AR_EP_COMPLETIONS] = "/openai/v1/completions",
    [AR_EP_EMBEDDINGS] = "/openai/v1/embeddings",
};

static const char *const deployment_paths[AR_EP_CNT] = {
    [AR_EP_CHAT] = "/chat/completions",
    [AR_EP_COMPLETIONS] = "/completions",
    [AR_EP_EMBEDDINGS] = "/embeddings",
};

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/*
 * The resource endpoint, owned: base_url without trailing slashes and without a trailing
 * "/openai" or "/openai/v1", so that the endpoint copied from the portal and the v1 base URL
 * of Azure's own examples (https://RES.openai.azure.com/openai/v1/) both work.
 */
static char *resource_endpoint(const char *base)
{
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    if (has_suffix(base, len, "/openai/v1"))
        len -= strlen("/openai/v1");
    else if (has_suffix(base, len, "/openai"))
        len -= strlen("/openai");
    char *r = ar_xmalloc(len + 1);
    memcpy(r, base, len);
    r[len] = '\0';
    return r;
}

static char *concat(const char *a, const char *b, const char *c)
{
    size_t al = strlen(a);
    size_t bl = strlen(b);
    size_t cl = strlen(c);
    char *r = ar_xmalloc(al + bl + cl + 1);
    memcpy(r, a, al);
    memcpy(r + al, b, bl);
    memcpy(r + al + bl, c, cl + 1);
    return r;
}

static ar_provider_t *azure_create(const ar_cred_conf_t *conf, char *err, size_t errlen)
{
    ar_oai_t *o = ar_xcalloc(1, sizeof(*o));
    char *endpoint = NULL;
    if (ar_oai_init(o, conf, "api-key", "", NULL, NULL, err, errlen))
        goto fail;
    if (!conf->api_version || !conf->api_version[0]) {
        snprintf(err, errlen, "credential %s: api_version is required", conf->name);
        goto fail;
    }
    endpoint = resource_endpoint(conf->base_url);
    if (strcmp(conf->api_version, "v1") == 0) {
        for (int i = 0; i < AR_EP_CNT; i++)
            o->urls[i] = concat(endpoint, v1_paths[i], "");
    } else {
        o->model_in_body = false;
        o->model_in_url = true;
        for (int i = 0; i < AR_EP_CNT; i++) {
            o->urls[i] = concat(endpoint, "/openai/deployments/", "");
            o->url_tails[i] = concat(deployment_paths[i], "?api-version=", conf->api_version);
        }
    }
    ar_free(endpoint);
    return &o->super;
fail:
    ar_free(endpoint);
    ar_oai_destroy(&o->super);
    return NULL;
}

const ar_provider_ops_t ar_azure_ops = {
    .type = "azure",
    .caps =
        AR_PROV_STREAM | AR_PROV_EMBED | AR_PROV_COMPLETIONS | AR_PROV_TOOLS | AR_PROV_OPENAI_WIRE,
    .create = azure_create,
    .destroy = ar_oai_destroy,
    .build_request = ar_oai_build_request,
    .parse_response = ar_oai_parse_response,
    .parse_event = ar_oai_parse_event,
};
