/*
 * auth.c: who is calling. The key may come in any of the four header spellings of SPEC
 * section 3 (OpenAI, Anthropic, Azure and Google SDKs each use their own) and is compared
 * in constant time. Keys never reach logs or errors.
 */
#include "core/crypto.h"
#include "gateway/gateway_int.h"

/** The key the client sent, or the empty span. */
static ar_span_t client_key(const ar_http_request_t *req)
{
    ar_span_t v = ar_http_header(req, AR_LIT("authorization"));
    if (v.len) {
        if (ar_span_istarts(v, AR_LIT("bearer ")))
            return ar_span_trim(ar_span_skip(v, 7));
        return ar_span_trim(v);
    }
    static const ar_span_t others[] = {AR_LIT("x-api-key"), AR_LIT("api-key"),
                                       AR_LIT("x-goog-api-key")};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        v = ar_http_header(req, others[i]);
        if (v.len)
            return ar_span_trim(v);
    }
    return AR_SPAN_NULL;
}

int ar_gw_authenticate(ar_http_request_t *req, const ar_runtime_t *rt)
{
    ar_span_t key = client_key(req);
    if (key.len == 0) {
        ar_gw_error(req, 401, "authentication_error", "missing_api_key",
                    "Missing API key: send it as 'Authorization: Bearer KEY' (or x-api-key, "
                    "api-key, x-goog-api-key)");
        return AR_EAUTH;
    }
    const char *master = rt->cfg->server.master_key;
    if (master && ar_ct_equal(key, ar_span_cstr(master)))
        return 0;
    ar_gw_error(req, 401, "authentication_error", "invalid_api_key", "Invalid API key");
    return AR_EAUTH;
}
