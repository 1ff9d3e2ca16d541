/*
 * openai.c: the `openai` provider: OpenAI itself and every OpenAI-compatible API
 * (DeepSeek, OpenRouter, Bedrock's OpenAI endpoint, vLLM, Ollama). Bearer auth,
 * {base_url}/v1/...; all of the wire format is in oai_compat.c.
 */
#include "providers/oai_compat.h"

const ar_provider_ops_t ar_openai_ops = {
    .type = "openai",
    .caps = AR_PROV_STREAM | AR_PROV_EMBED | AR_PROV_COMPLETIONS | AR_PROV_TOOLS | AR_PROV_MODELS |
            AR_PROV_OPENAI_WIRE,
    .create = ar_oai_create_bearer,
    .destroy = ar_oai_destroy,
    .build_request = ar_oai_build_request,
    .parse_response = ar_oai_parse_response,
    .parse_event = ar_oai_parse_event,
    .build_models_request = ar_oai_build_models_request,
    .parse_models = ar_oai_parse_models,
};
