/*
 * fuzz_gemini.c: libFuzzer target for the Gemini wire format (providers/gemini_request.c,
 * gemini_answer.c, gemini_stream.c) as the gemini and vertex-ai providers use it: OpenAI chat
 * and embeddings bodies into generateContent / embedContent / batchEmbedContents / predict
 * requests, whole answers and embeddings, alt=sse streams, Google error bodies, and the Vertex
 * service-account token answer. The input layout is fz_provider_input's (fuzz_common.h), except
 * that byte 0 with bits 0-1 set and bit 7 set feeds the rest to the token keeper's hooks
 * instead.
 */
#include "fuzz_common.h"

static fz_provs_t provs;

#define SA_INDEX 3 /* the service-account vertex-ai credential */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char *sa = fz_service_account_json();
    size_t n = strlen(sa) + 2048;
    char *yaml = malloc(n);
    snprintf(yaml, n,
             "credentials:\n"
             "  - name: studio\n"
             "    type: gemini\n"
             "    api_key: AIzaSy-fuzz-0123456789\n"
             "    headers:\n"
             "      X-Goog-User-Project: billing\n"
             "  - name: local\n"
             "    type: gemini\n"
             "    api_key: k2\n"
             "    base_url: http://127.0.0.1:9/v1beta/\n"
             "  - name: vx\n"
             "    type: vertex-ai\n"
             "    project_id: my-proj\n"
             "    location: us-central1\n"
             "    api_key: AQ.fuzz-vertex-key\n"
             "  - name: vx_sa\n"
             "    type: vertex-ai\n"
             "    project_id: my-proj\n"
             "    location: global\n"
             "    base_url: http://127.0.0.1:9/v1\n"
             "    credentials_json: '%s'\n",
             sa);
    free(sa);
    fz_provs_load(&provs, yaml);
    free(yaml);
    if (provs.cnt != 4)
        fz_fail("expected 4 providers");
    /* the token request signs a JWT (milliseconds): once, not per input */
    ar_pool_t *pool = ar_pool_create(4096);
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    if (ar_provider_token_request(provs.p[SA_INDEX], pool, 1700000000000, &req) != 0)
        fz_fail("token_request failed");
    ar_pool_destroy(pool);
    return 0;
}

/* The token keeper's answer hook: the rest of the input is the token endpoint's answer. */
static void token_input(fz_in_t *in)
{
    uint8_t opt = fz_byte(in);
    ar_provider_t *p = provs.p[SA_INDEX];
    ar_pool_t *pool = ar_pool_create(4096);
    static const int statuses[] = {200, 400, 401, 500};
    int64_t refresh = 0;
    int rc = ar_provider_token_response(p, statuses[opt & 3], fz_rest(in), 1700000000000, &refresh);
    if (rc == 0 && refresh <= 1700000000000)
        fz_fail("token refresh time %lld is not in the future", (long long)refresh);
    if (rc && rc != AR_EAUTH && rc != AR_EUPSTREAM)
        fz_fail("token_response returned %s", ar_err_name(rc));
    /* a stored token must be usable as a header value */
    ar_call_t call;
    if (rc == 0 && fz_call_from_raw(&call, pool, AR_EP_CHAT, AR_LIT(fz_chat_body), false, "m"))
        (void)fz_build(p, &call, true, "request with a token");
    ar_pool_destroy(pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    if (size && (data[0] & 0x83) == 0x83) {
        (void)fz_byte(&in);
        token_input(&in);
        return 0;
    }
    fz_provider_input(&provs, &in);
    return 0;
}
