/*
 * fuzz_anthropic.c: libFuzzer target for the anthropic provider (providers/anthropic.c and
 * anthropic_request.c, anthropic_answer.c and anthropic_stream.c, the provider side): OpenAI
 * client bodies into Anthropic requests (the raw fast path and the tree path), Anthropic
 * messages into chat completions, Anthropic event streams into OpenAI chunks, and error bodies.
 * The input layout is fz_provider_input's (fuzz_common.h).
 */
#include "fuzz_common.h"

static fz_provs_t provs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_provs_load(&provs, "credentials:\n"
                          "  - name: claude\n"
                          "    type: anthropic\n"
                          "    api_key: sk-ant-fuzz-0123456789\n"
                          "  - name: claude_local\n"
                          "    type: anthropic\n"
                          "    api_key: sk-ant-local\n"
                          "    base_url: http://127.0.0.1:9/v1\n"
                          "    headers:\n"
                          "      anthropic-version: 2024-01-01\n");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    fz_provider_input(&provs, &in);
    return 0;
}
