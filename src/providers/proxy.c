/*
 * proxy.c: the `proxy` provider: another airouter instance. It speaks the OpenAI format
 * with the remote instance's key as Bearer, so the wire format is oai_compat.c; what
 * differs from `openai` (the remote's /health in ours, its _router metadata) lives in the
 * gateway, not here.
 */
#include "providers/oai_compat.h"

const ar_provider_ops_t ar_proxy_ops = {
    .type = "proxy",
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
