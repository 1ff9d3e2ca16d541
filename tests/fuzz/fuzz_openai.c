/*
 * fuzz_openai.c: libFuzzer target for the OpenAI wire format (providers/oai_compat.c) as the
 * openai, azure (deployment URLs and the v1 API) and proxy providers use it: client bodies
 * into upstream requests (the splice and the tree path), whole answers, streams, error
 * bodies and model lists. The input layout is fz_provider_input's (fuzz_common.h).
 */
#include "fuzz_common.h"

static fz_provs_t provs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_provs_load(&provs, "credentials:\n"
                          "  - name: oa\n"
                          "    type: openai\n"
                          "    api_key: sk-fuzz-openai-0123456789\n"
                          "    base_url: http://127.0.0.1:9/v1\n"
                          "    headers:\n"
                          "      OpenAI-Organization: org-1\n"
                          "  - name: az\n"
                          "    type: azure\n"
                          "    api_key: azure-key-0123456789\n"
                          "    base_url: https://res.openai.azure.com\n"
                          "    api_version: 2025-04-01-preview\n"
                          "  - name: az_v1\n"
                          "    type: azure\n"
                          "    api_key: azure-key-v1\n"
                          "    base_url: https://res.openai.azure.com/openai/v1/\n"
                          "    api_version: v1\n"
                          "  - name: px\n"
                          "    type: proxy\n"
                          "    api_key: sk-remote-0123456789\n"
                          "    base_url: http://127.0.0.1:9\n");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    fz_provider_input(&provs, &in);
    return 0;
}
