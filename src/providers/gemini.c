/*
 * gemini.c: the `gemini` provider, Google AI Studio's Gemini API. Auth is the
 * `x-goog-api-key` header; chat goes to {base_url}/v1beta/models/{model}:generateContent
 * (streams: :streamGenerateContent?alt=sse), embeddings to :embedContent (one input) or
 * :batchEmbedContents (several). The wire format itself lives in gemini_request.c,
 * gemini_answer.c and gemini_stream.c (gemini_xlate.h), shared with vertex.c; this file only
 * knows URLs and headers.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "providers/gemini_xlate.h"

typedef struct gemini {
    ar_provider_t super;
    char *key_line;   /* "x-goog-api-key: KEY" */
    char *models_url; /* "{base_url}/v1beta/models/" */
    ar_header_lines_t extra;
} gemini_t;

static void destroy(ar_provider_t *p)
{
    gemini_t *g = (gemini_t *)p;
    ar_free(g->key_line);
    ar_free(g->models_url);
    ar_header_lines_dispose(&g->extra);
    ar_free(g);
}

static ar_provider_t *create(const ar_cred_conf_t *conf, char *err, size_t errlen)
{
    if (!conf->base_url || !conf->api_key) {
        snprintf(err, errlen, "credential %s: type gemini needs api_key and base_url", conf->name);
        return NULL;
    }
    gemini_t *g = ar_xcalloc(1, sizeof(*g));
    size_t n = strlen(conf->api_key) + 32;
    g->key_line = ar_xmalloc(n);
    snprintf(g->key_line, n, "x-goog-api-key: %s", conf->api_key);
    /* a base_url that already names the API version is not doubled */
    size_t bl = strlen(conf->base_url);
    bool versioned = bl >= 7 && strcmp(conf->base_url + bl - 7, "/v1beta") == 0;
    n = bl + 32;
    g->models_url = ar_xmalloc(n);
    snprintf(g->models_url, n, "%s%s/models/", conf->base_url, versioned ? "" : "/v1beta");
    ar_header_lines_init(&g->extra, conf);
    return &g->super;
}

static int build_request(ar_provider_t *p, ar_call_t *call, ar_http_req_t *out)
{
    gemini_t *g = (gemini_t *)p;
    const char *model = ar_gem_model_segment(call->pool, call->model);
    const char *method;
    int rc;
    if (call->endpoint == AR_EP_CHAT) {
        rc = ar_gem_chat_body(call, &out->body);
        method = call->stream ? "streamGenerateContent?alt=sse" : "generateContent";
    } else if (call->endpoint == AR_EP_EMBEDDINGS) {
        bool batch = false;
        const char *ref = ar_pool_printf(call->pool, "models/%s", model);
        rc = ar_gem_embed_body(call, AR_GEM_EMBED_CONTENT, ref, &out->body, &batch);
        method = batch ? "batchEmbedContents" : "embedContent";
    } else {
        return AR_ENOTFOUND;
    }
    if (rc)
        return rc;
    rc = ar_provider_post_json(out,
                               ar_pool_printf(call->pool, "%s%s:%s", g->models_url, model, method),
                               call->stream && call->endpoint == AR_EP_CHAT);
    rc = rc ? rc : ar_http_req_add_header(out, g->key_line);
    rc = rc ? rc : ar_header_lines_add(&g->extra, out);
    return rc;
}

const ar_provider_ops_t ar_gemini_ops = {
    .type = "gemini",
    .caps = AR_PROV_STREAM | AR_PROV_EMBED | AR_PROV_TOOLS,
    .create = create,
    .destroy = destroy,
    .build_request = build_request,
    .parse_response = ar_gem_parse_response,
    .parse_event = ar_gem_parse_event,
    .parse_error = ar_gem_parse_error,
    .end_stream = ar_gem_end_stream,
};
