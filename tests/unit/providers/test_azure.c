/*
 * test_azure.c: unit tests of the azure provider (providers/azure.c on oai_compat.c), with
 * golden files under tests/fixtures/providers/azure/: the deployment URLs for every endpoint
 * with the default and a configured api_version, the v1 API form, the api-key and extra
 * headers, the bodies (model removed for deployment URLs, replaced for v1) through both the
 * splice and the tree path, stream usage handling on an Azure transcript (its prompt-filter
 * chunk dropped), chunks without choices, response usage and Azure's error bodies (the content filter sample of its docs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "provider_fixture.h"

static const char yaml[] = "credentials:\n"
                           "  - name: az\n" /* no api_version: the default */
                           "    type: azure\n"
                           "    api_key: azure-key-0123456789abcdef\n"
                           "    base_url: https://my-res.openai.azure.com\n"
                           "    headers:\n"
                           "      X-Team: ml\n"
                           "      x-ms-useragent: airouter-tests\n"
                           "  - name: az_preview\n"
                           "    type: azure\n"
                           "    api_key: azure-key-preview\n"
                           "    base_url: https://my-res.cognitiveservices.azure.com/openai/\n"
                           "    api_version: 2025-04-01-preview\n"
                           "  - name: az_v1\n"
                           "    type: azure\n"
                           "    api_key: azure-key-v1\n"
                           "    base_url: https://my-res.openai.azure.com/openai/v1/\n"
                           "    api_version: v1\n";

#define PROV_CNT 3

/* prov: az, az_preview, az_v1; calls made by fx_call are on the tree path */
static fx_t *fx_open(void)
{
    return fx_open_in("providers/azure", yaml);
}

/* A call on the splice path, set up from the raw body the way the gateway scans it. */
static ar_call_t raw_call(fx_t *f, ar_endpoint_t ep, ar_span_t raw, const char *model)
{
    ar_call_t c = fx_call(f->pool, ep, NULL, false, model);
    c.raw = raw;
    ar_jscan_iter_t it;
    ar_span_t k, v;
    assert_int_equal(ar_jscan_object_begin(raw, &it), 0);
    while (ar_jscan_object_next(&it, &k, &v)) {
        if (ar_span_eq(k, AR_LIT("model")))
            c.raw_model = v;
        else if (ar_span_eq(k, AR_LIT("stream")))
            c.stream = ep != AR_EP_EMBEDDINGS && ar_span_eq(v, AR_LIT("true"));
        else if (ar_span_eq(k, AR_LIT("stream_options")))
            c.raw_stream_options = v;
        for (size_t i = 0; i < ar_request_extensions_cnt; i++)
            c.raw_has_extensions |= ar_span_eq(k, ar_span_cstr(ar_request_extensions[i]));
    }
    ar_span_t u;
    c.client_wants_usage = c.raw_stream_options.len &&
                           ar_jscan_get(c.raw_stream_options, AR_LIT("include_usage"), &u) == 0 &&
                           ar_span_eq(u, AR_LIT("true"));
    return c;
}

/*
 * Builds the request for fixture `in` on both paths (tree and splice) and compares each body
 * with `in`.`suffix`expected.json. @return the splice path's request.
 */
static ar_http_req_t golden(fx_t *f, ar_provider_t *p, ar_endpoint_t ep, const char *in,
                            const char *suffix, const char *upstream_model)
{
    char exp_name[128];
    snprintf(exp_name, sizeof(exp_name), ".%sexpected.json", suffix);
    json_t *want = fx_json(f->dir, in, exp_name);

    json_t *body = fx_json(f->dir, in, ".json");
    bool stream = json_is_true(json_object_get(body, "stream"));
    ar_call_t call = fx_call(f->pool, ep, body, stream, upstream_model);
    ar_http_req_t req = fx_build_as(p, &call, in);
    assert_json_text(req.body.ptr, req.body.len, want);
    json_decref(body);

    size_t len;
    char *text = fx_text(f->dir, in, ".json", &len);
    call = raw_call(f, ep, ar_span(text, len), upstream_model);
    assert_int_equal(call.stream, stream && ep != AR_EP_EMBEDDINGS);
    req = fx_build_as(p, &call, in);
    assert_json_text(req.body.ptr, req.body.len, want);
    free(text);
    json_decref(want);
    return req;
}

static void test_deployment_urls(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    static const struct {
        size_t prov;
        ar_endpoint_t ep;
        const char *model;
        const char *url;
    } cases[] = {
        /* no api_version: the latest GA data-plane version with a date */
        {0, AR_EP_CHAT, "gpt-4o-eu",
         "https://my-res.openai.azure.com/openai/deployments/gpt-4o-eu/chat/completions"
         "?api-version=2024-10-21"},
        {0, AR_EP_COMPLETIONS, "instruct",
         "https://my-res.openai.azure.com/openai/deployments/instruct/completions"
         "?api-version=2024-10-21"},
        {0, AR_EP_EMBEDDINGS, "emb-3-small",
         "https://my-res.openai.azure.com/openai/deployments/emb-3-small/embeddings"
         "?api-version=2024-10-21"},
        /* a configured version; base_url given with its /openai suffix */
        {1, AR_EP_CHAT, "gpt-4.1_mini",
         "https://my-res.cognitiveservices.azure.com/openai/deployments/gpt-4.1_mini/"
         "chat/completions?api-version=2025-04-01-preview"},
        {1, AR_EP_EMBEDDINGS, "emb",
         "https://my-res.cognitiveservices.azure.com/openai/deployments/emb/embeddings"
         "?api-version=2025-04-01-preview"},
        /* a deployment name that is not URL-safe is percent-encoded, never spliced raw */
        {0, AR_EP_CHAT, "team a/gpt?x=1",
         "https://my-res.openai.azure.com/openai/deployments/team%20a%2Fgpt%3Fx%3D1/"
         "chat/completions?api-version=2024-10-21"},
        /* v1: one URL per endpoint, base_url given as Azure's v1 base URL */
        {2, AR_EP_CHAT, "gpt-4o-eu", "https://my-res.openai.azure.com/openai/v1/chat/completions"},
        {2, AR_EP_COMPLETIONS, "instruct", "https://my-res.openai.azure.com/openai/v1/completions"},
        {2, AR_EP_EMBEDDINGS, "emb", "https://my-res.openai.azure.com/openai/v1/embeddings"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body = json_pack("{s:s, s:[]}", "model", "m", "messages");
        ar_call_t call = fx_call(f->pool, cases[i].ep, body, false, cases[i].model);
        ar_http_req_t req = fx_build(f->prov[cases[i].prov], &call);
        assert_string_equal(req.url, cases[i].url);
        json_decref(body);
    }
    /* no upstream model: nothing to put into a deployment URL */
    json_t *body = json_pack("{s:[]}", "messages");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, false, "");
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[0], &call, &req), AR_EINVAL);
    json_decref(body);
    fx_close(f);
}

static void test_headers(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s, s:[]}", "model", "gpt-4o", "messages");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, false, "gpt-4o-eu");
    ar_http_req_t req = fx_build(f->prov[0], &call);
    assert_true(has_header(&req, "api-key: azure-key-0123456789abcdef"));
    assert_true(has_header(&req, "Content-Type: application/json"));
    assert_true(has_header(&req, "X-Team: ml"));
    assert_true(has_header(&req, "x-ms-useragent: airouter-tests"));
    assert_int_equal(headers_named(&req, "Authorization:"), 0); /* never a Bearer */
    assert_int_equal(headers_named(&req, "api-key:"), 1);
    assert_int_equal(headers_named(&req, "Accept: text/event-stream"), 0);
    assert_int_equal(req.headers_cnt, 4);
    /* a stream asks for SSE; the v1 form authenticates the same way */
    call = fx_call(f->pool, AR_EP_CHAT, body, true, "gpt-4o-eu");
    req = fx_build(f->prov[2], &call);
    assert_true(has_header(&req, "api-key: azure-key-v1"));
    assert_true(has_header(&req, "Accept: text/event-stream"));
    assert_int_equal(headers_named(&req, "Authorization:"), 0);
    assert_int_equal(req.headers_cnt, 3);
    json_decref(body);
    fx_close(f);
}

static void test_bodies(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    /* deployment URLs: the model is in the URL, so it leaves the body */
    ar_http_req_t req = golden(f, f->prov[0], AR_EP_CHAT, "chat_request", "", "gpt-4o-eu");
    assert_null(memmem(req.body.ptr, req.body.len, "\"model\"", 7)); /* spans: no NUL */
    golden(f, f->prov[1], AR_EP_CHAT, "chat_request", "", "gpt-4o-eu");
    req = golden(f, f->prov[0], AR_EP_COMPLETIONS, "completions_request", "", "instruct");
    assert_string_equal(req.url, "https://my-res.openai.azure.com/openai/deployments/instruct/"
                                 "completions?api-version=2024-10-21");
    golden(f, f->prov[0], AR_EP_EMBEDDINGS, "embeddings_request", "", "emb-3-small");
    /* v1: the model stays in the body, replaced by the upstream name */
    golden(f, f->prov[2], AR_EP_CHAT, "chat_request", "v1.", "gpt-4o-eu");
    fx_close(f);
}

static void test_stream_bodies(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    /* include_usage is asked for (TPM accounting), exactly as for openai */
    ar_http_req_t req = golden(f, f->prov[0], AR_EP_CHAT, "chat_stream_request", "", "gpt-4o-eu");
    assert_true(has_header(&req, "Accept: text/event-stream"));
    /* the client's own stream_options: include_usage forced on, the rest kept (tree path) */
    golden(f, f->prov[0], AR_EP_CHAT, "chat_stream_options_request", "", "gpt-4o-eu");
    fx_close(f);
}

/* The splice path on hand-written raw bodies: the exact bytes that go upstream. */
static void test_splice_cut(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"{\"model\":\"gpt-4o\",\"messages\":[]}", "{\"messages\":[]}"},
        {"{\"messages\":[],\"model\":\"gpt-4o\"}", "{\"messages\":[]}"},
        {"{\"a\":1,\"model\":\"gpt-4o\",\"messages\":[]}", "{\"a\":1,\"messages\":[]}"},
        {"{ \"messages\" : [ ] ,\n  \"model\" : \"gpt-4o\"\n}", "{ \"messages\" : [ ] \n}"},
        {"{\n  \"model\" : \"x\" ,\n  \"messages\": []\n}\n", "{\n  \n  \"messages\": []\n}"},
        /* a model list (priority list of the request) is a member like any other */
        {"{\"model\":[\"a\",\"b\"],\"input\":\"x\"}", "{\"input\":\"x\"}"},
        {"{\"model\":\"m\"}", "{}"},
        /* no model at all (auto): the body passes as it is */
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"model\"}]}",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"model\"}]}"},
        /* a stream gains stream_options after the cut */
        {"{\"model\":\"m\",\"stream\":true,\"messages\":[]}",
         "{\"stream\":true,\"messages\":[],\"stream_options\":{\"include_usage\":true}}"},
        {"{\"stream\":true,\"messages\":[],\"model\":\"m\"}",
         "{\"stream\":true,\"messages\":[],\"stream_options\":{\"include_usage\":true}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ar_call_t call = raw_call(f, AR_EP_CHAT, ar_span_cstr(cases[i].in), "gpt-4o-eu");
        ar_http_req_t req = fx_build(f->prov[0], &call);
        assert_null(call.body); /* spliced, no tree built */
        if (req.body.len != strlen(cases[i].out) ||
            memcmp(req.body.ptr, cases[i].out, req.body.len) != 0)
            fail_msg("case %zu: got %.*s", i, (int)req.body.len, req.body.ptr);
    }
    /* what the splice cannot do goes through the tree: a stream whose object would be left
     * empty, and extensions to strip */
    ar_call_t call = raw_call(f, AR_EP_CHAT, AR_LIT("{ \"model\":\"m\" }"), "x");
    call.stream = true;
    ar_http_req_t req = fx_build(f->prov[0], &call);
    assert_non_null(call.body);
    json_t *want = json_pack("{s:{s:b}}", "stream_options", "include_usage", 1);
    assert_json_text(req.body.ptr, req.body.len, want);
    json_decref(want);
    call =
        raw_call(f, AR_EP_CHAT, AR_LIT("{\"model\":\"m\",\"tags\":[\"a\"],\"messages\":[]}"), "x");
    assert_true(call.raw_has_extensions);
    req = fx_build(f->prov[0], &call);
    want = json_pack("{s:[]}", "messages");
    assert_json_text(req.body.ptr, req.body.len, want);
    json_decref(want);
    /* v1 replaces, on the same splice as openai */
    call = raw_call(f, AR_EP_CHAT, AR_LIT("{\"model\":\"gpt-4o\",\"messages\":[]}"), "gpt-4o-eu");
    req = fx_build(f->prov[2], &call);
    assert_null(call.body);
    assert_int_equal(req.body.len, strlen("{\"model\":\"gpt-4o-eu\",\"messages\":[]}"));
    assert_memory_equal(req.body.ptr, "{\"model\":\"gpt-4o-eu\",\"messages\":[]}", req.body.len);
    fx_close(f);
}

/* Feeds the Azure transcript split at byte `split` (0: in one piece). */
static void run_stream_split(fx_t *f, ar_call_t *call, fx_verdicts_t *s, const char *text,
                             size_t len, size_t split)
{
    fx_verdicts(f->prov[0], call, ar_span(text, len), split, s);
    assert_int_equal(s->cnt, 15);
}

static void run_stream(fx_t *f, ar_call_t *call, fx_verdicts_t *s)
{
    size_t len;
    char *text = ar_test_fixture("providers/azure/stream_usage.sse", &len);
    run_stream_split(f, call, s, text, len, 0);
    free(text);
}

static void assert_fixture_usage(const ar_call_t *call)
{
    assert_true(call->usage.seen);
    assert_int_equal(call->usage.prompt_tokens, 14);
    assert_int_equal(call->usage.completion_tokens, 10);
    assert_int_equal(call->usage.total_tokens, 24);
    assert_true(call->stream_done);
}

static void test_stream_usage(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "gpt-4o");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, true, "gpt-4o-eu");
    fx_verdicts_t s;
    /* unasked: Azure's prompt-filter chunk (0: "choices":[], "usage":null) is no chunk a
     * client can read and is dropped, and so is the usage-only chunk (13) */
    call.client_wants_usage = false;
    run_stream(f, &call, &s);
    for (size_t i = 0; i < 15; i++) {
        assert_int_equal(s.verdict[i], i == 0 || i == 13 ? 0 : AR_PROV_PASS);
        assert_int_equal(s.out_len[i], 0);
    }
    assert_fixture_usage(&call);
    /* asked: the usage chunk passes too, usage is still recorded; the prompt filter's not */
    memset(&call.usage, 0, sizeof(call.usage));
    call.stream_done = false;
    call.client_wants_usage = true;
    run_stream(f, &call, &s);
    for (size_t i = 0; i < 15; i++)
        assert_int_equal(s.verdict[i], i == 0 ? 0 : AR_PROV_PASS);
    assert_fixture_usage(&call);
    /* the same verdicts wherever the transport splits the bytes */
    size_t len;
    char *text = ar_test_fixture("providers/azure/stream_usage.sse", &len);
    call.client_wants_usage = false;
    for (size_t split = 1; split < len; split++) {
        memset(&call.usage, 0, sizeof(call.usage));
        call.stream_done = false;
        run_stream_split(f, &call, &s, text, len, split);
        for (size_t i = 0; i < 15; i++)
            assert_int_equal(s.verdict[i], i == 0 || i == 13 ? 0 : AR_PROV_PASS);
        assert_fixture_usage(&call);
    }
    free(text);
    json_decref(body);
    fx_close(f);
}

/* One event's verdict, alone. */
static int verdict_of(fx_t *f, ar_call_t *call, const char *data)
{
    ar_sse_event_t ev = {.data = ar_span_cstr(data), .raw = ar_span_cstr(data)};
    ar_buf_t out;
    ar_buf_init(&out, 1 << 16);
    int rc = ar_provider_parse_event(f->prov[0], call, &ev, &out);
    assert_int_equal(out.len, 0);
    ar_buf_dispose(&out);
    return rc;
}

/* Every event a client gets is a chunk: one with neither choices nor usage is dropped in
 * each form Azure writes it (no usage member at all, as without include_usage; spaced),
 * while chunks that merely contain "[]" elsewhere, usage chunks and errors pass. */
static void test_choiceless_chunks(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "gpt-4o");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, true, "gpt-4o-eu");
    static const char *const dropped[] = {
        "{\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
        "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}",
        "{\"choices\": [ ],\"object\":\"\",\"usage\":null}",
        "{\"object\":\"\",\"usage\":null,\"choices\":[]}",
    };
    static const char *const passed[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"[]\"}}],\"object\":\"chat."
        "completion.chunk\"}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[]}}],\"usage\":null}",
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{}}],\"prompt_filter_results\":[]}",
        "{\"error\":{\"message\":\"boom\",\"details\":[]}}",
        "not json []",
    };
    for (int wants = 0; wants < 2; wants++) {
        call.client_wants_usage = wants;
        for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
            assert_int_equal(verdict_of(f, &call, dropped[i]), 0);
        for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++)
            assert_int_equal(verdict_of(f, &call, passed[i]), AR_PROV_PASS);
        /* an event without data: its span has no pointer (found by the fuzzer: UBSan's
         * "applying zero offset to null pointer") */
        ar_sse_event_t empty = {.data = AR_SPAN_NULL, .raw = AR_SPAN_NULL};
        ar_buf_t out;
        ar_buf_init(&out, 1 << 16);
        (void)ar_provider_parse_event(f->prov[0], &call, &empty, &out);
        ar_buf_dispose(&out);
        /* the include_usage chunk: choices empty, usage there */
        memset(&call.usage, 0, sizeof(call.usage));
        assert_int_equal(verdict_of(f, &call,
                                    "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
                                    "\"completion_tokens\":2,\"total_tokens\":5}}"),
                         wants ? AR_PROV_PASS : 0);
        assert_true(call.usage.seen);
        assert_int_equal(call.usage.total_tokens, 5);
    }
    json_decref(body);
    fx_close(f);
}

static void test_parse_response_usage(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "gpt-4o");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, false, "gpt-4o-eu");
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    fx_parse_response(f, &call, "chat_response", &out);
    assert_int_equal(out.len, 0); /* passed through untouched, filter results included */
    assert_true(call.usage.seen);
    assert_int_equal(call.usage.prompt_tokens, 1544);
    assert_int_equal(call.usage.completion_tokens, 7);
    assert_int_equal(call.usage.total_tokens, 1551);
    assert_int_equal(call.usage.cached_tokens, 1408);
    ar_buf_dispose(&out);
    json_decref(body);
    fx_close(f);
}

static void test_parse_error(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_upstream_err_t e;
    /* the content filter sample: "type": null, the code says what happened */
    fx_parse_error_fixture(f, 400, "error_content_filter", &e);
    assert_int_equal(e.status, 400);
    assert_non_null(strstr(e.message, "triggering Azure OpenAI's content management policy"));
    assert_null(e.type);
    assert_string_equal(e.code, "content_filter");
    /* platform errors: {"error": {"code", "message"}} */
    fx_parse_error_fixture(f, 429, "error_rate_limit", &e);
    assert_int_equal(e.status, 429);
    assert_non_null(strstr(e.message, "Please retry after 6 seconds."));
    assert_null(e.type);
    assert_string_equal(e.code, "429");
    fx_parse_error_fixture(f, 404, "error_deployment_not_found", &e);
    assert_int_equal(e.status, 404);
    assert_string_equal(e.code, "DeploymentNotFound");
    assert_non_null(strstr(e.message, "The API deployment for this resource does not exist."));
    fx_close(f);
}

static void test_caps(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    for (size_t i = 0; i < PROV_CNT; i++) {
        assert_true(ar_provider_can(f->prov[i], AR_PROV_STREAM | AR_PROV_EMBED |
                                                    AR_PROV_COMPLETIONS | AR_PROV_TOOLS |
                                                    AR_PROV_OPENAI_WIRE));
        /* Azure's data plane lists models, not deployments: no discovery */
        assert_false(ar_provider_can(f->prov[i], AR_PROV_MODELS));
        assert_false(ar_provider_can(f->prov[i], AR_PROV_INPROCESS));
        ar_http_req_t req;
        memset(&req, 0, sizeof(req));
        assert_int_equal(ar_provider_build_models(f->prov[i], f->pool, &req), AR_ENOTFOUND);
    }
    assert_string_equal(f->prov[0]->ops->type, "azure");
    /* a credential struct made without the schema's default is refused, not guessed */
    ar_cred_conf_t c = f->cfg->credentials[0];
    c.api_version = NULL;
    char err[256];
    assert_null(ar_provider_create(&c, err, sizeof(err)));
    assert_string_equal(err, "credential az: api_version is required");
    c.base_url = NULL;
    assert_null(ar_provider_create(&c, err, sizeof(err)));
    assert_string_equal(err, "credential az: base_url is required");
    fx_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deployment_urls),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_stream_bodies),
        cmocka_unit_test(test_splice_cut),
        cmocka_unit_test(test_stream_usage),
        cmocka_unit_test(test_choiceless_chunks),
        cmocka_unit_test(test_parse_response_usage),
        cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
