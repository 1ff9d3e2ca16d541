/*
 * oai_compat.h: the OpenAI wire format, shared by the openai, azure and proxy providers
 * (their ops tables point at these functions instead of copying them). Requests pass
 * through with the model replaced (or cut out, when it is in the URL as in Azure's
 * deployment URLs); streams gain `stream_options.include_usage` so usage can be accounted,
 * and the usage-only chunk is dropped again when the client did not ask for it. Chunks with
 * neither choices nor usage (Azure's prompt-filter chunk) are dropped: every streamed event
 * a client gets is a chat.completion.chunk.
 */
#ifndef AR_PROVIDERS_OAI_COMPAT_H
#define AR_PROVIDERS_OAI_COMPAT_H

#include "providers/provider.h"

typedef struct ar_oai {
    ar_provider_t super;
    char *auth_line;         /* "Authorization: Bearer KEY", or NULL */
    ar_header_lines_t extra; /* configured extra headers */
    /* Endpoint URLs: whole, or with model_in_url the part before the model, which goes
     * between urls[ep] and url_tails[ep] (Azure: ".../openai/deployments/" MODEL
     * "/chat/completions?api-version=V"). NULL: the endpoint is not served. */
    char *urls[AR_EP_CNT];
    char *url_tails[AR_EP_CNT];
    char *models_url;
    bool model_in_body; /* false for Azure deployment URLs: the member is removed */
    bool model_in_url;  /* the upstream model, percent-encoded, is part of the URL */
    /* The Responses API URL when clients of it are passed through (native_api), else NULL */
    char *responses_url;
} ar_oai_t;

/**
 * Fills o from conf: the key header, the extra headers and, when paths is not NULL, the
 * whole endpoint URLs. auth_name/auth_prefix give the key header ("Authorization",
 * "Bearer "); paths[] are the endpoint paths appended to base_url (NULL entries: not
 * served). A provider whose URLs are shaped otherwise passes paths NULL and fills urls[],
 * url_tails[] and model_in_url itself (owned strings: ar_oai_dispose frees them).
 * @return 0 or AR_EINVAL with err set.
 */
int ar_oai_init(ar_oai_t *o, const ar_cred_conf_t *conf, const char *auth_name,
                const char *auth_prefix, const char *const paths[AR_EP_CNT],
                const char *models_path, char *err, size_t errlen);
void ar_oai_dispose(ar_oai_t *o);

int ar_oai_build_request(ar_provider_t *p, ar_call_t *call, ar_http_req_t *out);
int ar_oai_parse_response(ar_provider_t *p, ar_call_t *call, ar_span_t body, ar_buf_t *out);
int ar_oai_parse_event(ar_provider_t *p, ar_call_t *call, const ar_sse_event_t *ev, ar_buf_t *out);
int ar_oai_build_models_request(ar_provider_t *p, ar_pool_t *pool, ar_http_req_t *out);
int ar_oai_parse_models(ar_provider_t *p, ar_span_t body, ar_strlist_t *ids);
/** Creates a provider with Bearer auth and the standard /v1 paths (openai, proxy). */
ar_provider_t *ar_oai_create_bearer(const ar_cred_conf_t *conf, char *err, size_t errlen);
/** Destroys a provider made by ar_oai_create_bearer. */
void ar_oai_destroy(ar_provider_t *p);
/** Joins base and path, dropping a duplicated "/v1" (base ".../v1" + "/v1/x"). Owned. */
char *ar_oai_join_url(const char *base, const char *path);

#endif
