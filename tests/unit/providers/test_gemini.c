/*
 * test_gemini.c: unit tests of the gemini provider (providers/gemini.c) and the Gemini wire
 * format it shares with vertex-ai (providers/gemini_request.c, gemini_answer.c,
 * gemini_stream.c), with golden files under tests/fixtures/providers/gemini/: OpenAI requests
 * in, Gemini bodies out (text, multi-turn, system prompts, images inline and by URL, tools and
 * tool_choice, function calls and results, JSON mode with a schema, embeddings single and
 * batch); Gemini answers in, OpenAI answers out (text, function calls, several candidates and
 * every finish reason, blocked prompts, thinking, usage, embeddings); SSE transcripts fed whole
 * and split at every byte; malformed events; Google error bodies. Generated ids and timestamps
 * are normalised before comparing ("chatcmpl-*", "call_*", created 0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/crypto.h"
#include "provider_fixture.h"
#include "providers/gemini_xlate.h"

#define FIXTURES "providers/gemini"

static const char yaml[] = "credentials:\n"
                           "  - name: studio\n"
                           "    type: gemini\n"
                           "    api_key: AIzaSy-test-key-0123456789\n"
                           "    headers:\n"
                           "      X-Goog-User-Project: billing-proj\n"
                           "  - name: local\n"
                           "    type: gemini\n"
                           "    api_key: k2\n"
                           "    base_url: http://127.0.0.1:9000/v1beta/\n";

static fx_t *fx_open(void)
{
    return fx_open_in(FIXTURES, yaml);
}

/* tests/fixtures/providers/gemini/<name> as JSON. */
static json_t *fixture(const char *name)
{
    return fx_json(FIXTURES, name, "");
}

/* Replaces generated values: ids "chatcmpl-..." and "call_..." (a thought signature after
 * "__thought__" is kept) and "created". */
static void normalise(json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach (v, i, e)
            normalise(e);
        return;
    }
    if (!json_is_object(v))
        return;
    const char *k;
    json_t *e;
    json_object_foreach (v, k, e) {
        const char *s = json_string_value(e);
        if (strcmp(k, "created") == 0) {
            assert_true(json_is_integer(e) && json_integer_value(e) > 1700000000);
            json_object_set_new(v, k, json_integer(0));
        } else if (strcmp(k, "id") == 0 && s && strncmp(s, "chatcmpl-", 9) == 0) {
            assert_true(strlen(s) > 9);
            json_object_set_new(v, k, json_string("chatcmpl-*"));
        } else if (strcmp(k, "id") == 0 && s && strncmp(s, "call_", 5) == 0) {
            const char *sig = strstr(s, "__thought__");
            char buf[256];
            assert_true(strlen(s) >= 5 + 24);
            snprintf(buf, sizeof(buf), "call_*%s", sig ? sig : "");
            json_object_set_new(v, k, json_string(buf));
        } else {
            normalise(e);
        }
    }
}

/* ---- requests ---- */

static ar_http_req_t golden_request(fx_t *f, const char *name, bool stream, const char *model)
{
    return fx_golden(f, f->prov[0], AR_EP_CHAT, name, stream, model);
}

static void test_chat_requests(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    static const char *const names[] = {
        "chat_text",           "chat_multiturn",   "chat_images",      "chat_tools",
        "chat_tool_roundtrip", "chat_json_schema", "chat_json_object",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ar_http_req_t req = golden_request(f, names[i], false, "gemini-2.0-flash");
        assert_string_equal(
            req.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:"
                     "generateContent");
    }
    /* a stream has the same body, another method and asks for SSE */
    ar_http_req_t req = golden_request(f, "chat_text", true, "gemini-2.0-flash");
    assert_string_equal(req.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                                 "gemini-2.0-flash:streamGenerateContent?alt=sse");
    assert_true(has_header(&req, "Accept: text/event-stream"));
    fx_close(f);
}

static void test_urls_and_headers(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s, s:[{s:s, s:s}]}", "model", "m", "messages", "role", "user",
                             "content", "hi");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, false, "gemini-1.5-pro");
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[0], &call, &req), 0);
    assert_true(has_header(&req, "x-goog-api-key: AIzaSy-test-key-0123456789"));
    assert_true(has_header(&req, "Content-Type: application/json"));
    assert_true(has_header(&req, "X-Goog-User-Project: billing-proj"));
    assert_false(has_header(&req, "Accept: text/event-stream"));
    assert_int_equal(req.headers_cnt, 3);
    for (size_t i = 0; i < req.headers_cnt; i++)
        assert_null(strstr(req.headers[i], "Authorization"));

    /* a base_url that already ends in /v1beta (trailing slash stripped by the config) */
    call = fx_call(f->pool, AR_EP_CHAT, body, true, "models/gemini-2.5-flash");
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[1], &call, &req), 0);
    assert_string_equal(req.url, "http://127.0.0.1:9000/v1beta/models/gemini-2.5-flash:"
                                 "streamGenerateContent?alt=sse");
    assert_true(has_header(&req, "x-goog-api-key: k2"));

    /* a model name can never change the path or the method */
    call = fx_call(f->pool, AR_EP_CHAT, body, false, "../x:predict?a=b#c d");
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[0], &call, &req), 0);
    assert_string_equal(req.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                                 "..%2Fx%3Apredict%3Fa%3Db%23c%20d:generateContent");
    assert_string_equal(ar_gem_model_segment(f->pool, "tunedModels@001"), "tunedModels@001");

    /* legacy completions are not a Gemini endpoint */
    call = fx_call(f->pool, AR_EP_COMPLETIONS, body, false, "m");
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[0], &call, &req), AR_ENOTFOUND);
    assert_true(ar_provider_can(f->prov[0], AR_PROV_STREAM | AR_PROV_EMBED | AR_PROV_TOOLS));
    assert_false(ar_provider_can(f->prov[0], AR_PROV_TOKEN));
    assert_false(ar_provider_can(f->prov[0], AR_PROV_OPENAI_WIRE));
    json_decref(body);
    fx_close(f);
}

static int build_json(fx_t *f, const char *text, ar_http_req_t *req)
{
    json_t *body = json_loads(text, 0, NULL);
    assert_non_null(body);
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, false, "m");
    memset(req, 0, sizeof(*req));
    int rc = ar_provider_build(f->prov[0], &call, req);
    json_decref(body);
    return rc;
}

static void test_request_edge_cases(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_http_req_t req;
    /* only instructions: they become the user turn Gemini needs */
    assert_int_equal(
        build_json(f, "{\"messages\":[{\"role\":\"system\",\"content\":\"Say hi\"}]}", &req), 0);
    json_t *want = json_loads("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Say "
                              "hi\"}]}]}",
                              0, NULL);
    assert_json_text(req.body.ptr, req.body.len, want);
    json_decref(want);
    /* what Gemini cannot take */
    assert_int_equal(build_json(f, "{\"messages\":[]}", &req), AR_EINVAL);
    assert_int_equal(build_json(f, "{\"model\":\"m\"}", &req), AR_EINVAL);
    assert_int_equal(build_json(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}", &req),
                     AR_EINVAL); /* no text at all: no turn */
    assert_int_equal(
        build_json(f, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", &req), AR_EINVAL);
    assert_int_equal(build_json(f, "{\"messages\":[{\"content\":\"x\"}]}", &req), AR_EINVAL);
    assert_int_equal(build_json(f,
                                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                                "\"video_url\",\"video_url\":\"x\"}]}]}",
                                &req),
                     AR_EINVAL);
    assert_int_equal(build_json(f,
                                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                                "\"image_url\",\"image_url\":{\"url\":\"data:image/png\"}}]}]}",
                                &req),
                     AR_EINVAL); /* a data: URL without data */
    assert_int_equal(build_json(f,
                                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
                                "\"tool\",\"tool_call_id\":\"nope\",\"content\":\"1\"}]}",
                                &req),
                     AR_EINVAL); /* a tool result whose function is unknown */
    assert_int_equal(build_json(f, "{\"messages\":[{\"role\":\"user\",\"content\":42}]}", &req),
                     AR_EINVAL);
    /* the legacy functions / function_call fields and a legacy function result */
    assert_int_equal(build_json(f,
                                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                                "{\"role\":\"assistant\",\"content\":null,\"function_call\":{"
                                "\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}},"
                                "{\"role\":\"function\",\"name\":\"f\",\"content\":\"ok\"}],"
                                "\"functions\":[{\"name\":\"f\"}],\"function_call\":{\"name\":"
                                "\"f\"}}",
                                &req),
                     0);
    want = json_loads(
        "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]},{\"role\":\"model\","
        "\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}}}]},{\"role\":\"user\","
        "\"parts\":[{\"functionResponse\":{\"name\":\"f\",\"response\":{\"content\":\"ok\"}}}]}],"
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\"}]}],\"toolConfig\":{"
        "\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":[\"f\"]}}}",
        0, NULL);
    assert_json_text(req.body.ptr, req.body.len, want);
    json_decref(want);
    /* tool_choice "auto"; tool_choice without tools is not sent */
    assert_int_equal(build_json(f,
                                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":"
                                "[{\"type\":\"function\",\"function\":{\"name\":\"a\"}}],"
                                "\"tool_choice\":\"auto\"}",
                                &req),
                     0);
    assert_non_null(ar_span_find(req.body, AR_LIT("\"mode\":\"AUTO\"")));
    assert_int_equal(build_json(f,
                                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                "\"tool_choice\":\"required\"}",
                                &req),
                     0);
    assert_null(ar_span_find(req.body, AR_LIT("toolConfig")));
    /* a schema nested deeper than allowed, and a self-referencing $ref, still terminate */
    assert_int_equal(
        build_json(f,
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                   "\"function\",\"function\":{\"name\":\"r\",\"parameters\":{\"type\":\"object\","
                   "\"properties\":{\"n\":{\"$ref\":\"#/$defs/N\"}},\"$defs\":{\"N\":{\"type\":"
                   "\"object\",\"properties\":{\"next\":{\"$ref\":\"#/$defs/N\"}}}}}}}]}",
                   &req),
        0);
    fx_close(f);
}

/* reasoning_effort -> generationConfig.thinkingConfig with the thoughts asked for */
static void test_reasoning_effort(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_http_req_t req;
    char body[512];
    static const struct {
        const char *effort;
        const char *max; /* the client's max_tokens, "" for none */
        const char *want;
    } cases[] = {
        {"minimal", "", "{\"thinkingConfig\":{\"thinkingBudget\":512,\"includeThoughts\":true}}"},
        {"low", ",\"temperature\":0.5",
         "{\"temperature\":0.5,\"thinkingConfig\":{\"thinkingBudget\":1024,"
         "\"includeThoughts\":true}}"},
        {"medium", ",\"max_tokens\":4096", /* the budget would eat it whole: raised */
         "{\"maxOutputTokens\":8192,\"thinkingConfig\":{\"thinkingBudget\":4096,"
         "\"includeThoughts\":true}}"},
        {"high", ",\"max_completion_tokens\":30000",
         "{\"maxOutputTokens\":30000,\"thinkingConfig\":{\"thinkingBudget\":16384,"
         "\"includeThoughts\":true}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                 "\"reasoning_effort\":\"%s\"%s}",
                 cases[i].effort, cases[i].max);
        assert_int_equal(build_json(f, body, &req), 0);
        json_t *got = json_loadb(req.body.ptr, req.body.len, 0, NULL);
        assert_json_str(json_object_get(got, "generationConfig"), cases[i].want);
        assert_null(json_object_get(got, "reasoning_effort"));
        json_decref(got);
    }
    /* "none" and null leave the model's default */
    assert_int_equal(build_json(f,
                                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                "\"reasoning_effort\":\"none\"}",
                                &req),
                     0);
    assert_null(ar_span_find(req.body, AR_LIT("generationConfig")));
    assert_int_equal(build_json(f,
                                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                "\"reasoning_effort\":null}",
                                &req),
                     0);
    assert_null(ar_span_find(req.body, AR_LIT("thinkingConfig")));
    /* an unknown effort is a clear error */
    json_t *bad = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                             "\"reasoning_effort\":\"max\"}",
                             0, NULL);
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, bad, false, "m");
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[0], &call, &req), AR_EINVAL);
    assert_non_null(strstr(call.error_detail, "reasoning_effort"));
    json_decref(bad);
    /* Gemini 3 and later: a thinkingLevel (low or high, which every one takes), no budget */
    static const struct {
        const char *model, *effort, *want;
    } levels[] = {
        {"gemini-3-pro-preview", "minimal", "{\"thinkingLevel\":\"low\",\"includeThoughts\":true}"},
        {"gemini-3-flash", "low", "{\"thinkingLevel\":\"low\",\"includeThoughts\":true}"},
        {"gemini-3.1-pro", "medium", "{\"thinkingLevel\":\"high\",\"includeThoughts\":true}"},
        {"gemini-10-ultra", "high", "{\"thinkingLevel\":\"high\",\"includeThoughts\":true}"},
        {"gemini-2.5-pro", "high", "{\"thinkingBudget\":16384,\"includeThoughts\":true}"},
    };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                 "\"reasoning_effort\":\"%s\"}",
                 levels[i].effort);
        json_t *in = json_loads(body, 0, NULL);
        ar_call_t c = fx_call(f->pool, AR_EP_CHAT, in, false, levels[i].model);
        memset(&req, 0, sizeof(req));
        assert_int_equal(ar_provider_build(f->prov[0], &c, &req), 0);
        json_t *got = json_loadb(req.body.ptr, req.body.len, 0, NULL);
        assert_json_str(json_object_get(json_object_get(got, "generationConfig"), "thinkingConfig"),
                        levels[i].want);
        json_decref(got);
        json_decref(in);
    }
    fx_close(f);
}

static void test_embeddings_requests(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    static const struct {
        const char *in, *want, *model, *url;
    } cases[] = {
        {"embed_single.json", "embed_single.expected.json", "text-embedding-004",
         "https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:"
         "embedContent"},
        {"embed_batch.json", "embed_batch.expected.json", "gemini-embedding-001",
         "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:"
         "batchEmbedContents"},
    };
    for (size_t i = 0; i < 2; i++) {
        json_t *body = fixture(cases[i].in);
        json_t *want = fixture(cases[i].want);
        ar_call_t call = fx_call(f->pool, AR_EP_EMBEDDINGS, body, false, cases[i].model);
        ar_http_req_t req;
        memset(&req, 0, sizeof(req));
        assert_int_equal(ar_provider_build(f->prov[0], &call, &req), 0);
        assert_string_equal(req.url, cases[i].url);
        assert_json_text(req.body.ptr, req.body.len, want);
        assert_true(has_header(&req, "x-goog-api-key: AIzaSy-test-key-0123456789"));
        json_decref(body);
        json_decref(want);
    }
    /* Vertex AI's :predict body for the same inputs */
    json_t *body = fixture("embed_batch.json");
    json_t *want = fixture("embed_predict.expected.json");
    ar_call_t call = fx_call(f->pool, AR_EP_EMBEDDINGS, body, false, "text-embedding-005");
    ar_span_t out;
    bool batch = true;
    assert_int_equal(ar_gem_embed_body(&call, AR_GEM_EMBED_PREDICT, NULL, &out, &batch), 0);
    assert_false(batch);
    assert_json_text(out.ptr, out.len, want);
    json_decref(body);
    json_decref(want);
    /* one input in an array is a single embedContent; dimensions go with predict too */
    body = json_loads("{\"input\":[\"one\"],\"dimensions\":64}", 0, NULL);
    call = fx_call(f->pool, AR_EP_EMBEDDINGS, body, false, "e");
    assert_int_equal(ar_gem_embed_body(&call, AR_GEM_EMBED_CONTENT, "models/e", &out, &batch), 0);
    assert_false(batch);
    want = json_loads("{\"model\":\"models/e\",\"content\":{\"parts\":[{\"text\":\"one\"}]},"
                      "\"outputDimensionality\":64}",
                      0, NULL);
    assert_json_text(out.ptr, out.len, want);
    json_decref(want);
    assert_int_equal(ar_gem_embed_body(&call, AR_GEM_EMBED_PREDICT, NULL, &out, &batch), 0);
    want = json_loads("{\"instances\":[{\"content\":\"one\"}],\"parameters\":{"
                      "\"outputDimensionality\":64}}",
                      0, NULL);
    assert_json_text(out.ptr, out.len, want);
    json_decref(want);
    json_decref(body);
    /* token ids, empty strings and no input have no Gemini form */
    static const char *const bad[] = {"{\"input\":[1,2,3]}", "{\"input\":[[1,2],[3]]}",
                                      "{\"input\":\"\"}", "{\"input\":[]}", "{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        body = json_loads(bad[i], 0, NULL);
        call = fx_call(f->pool, AR_EP_EMBEDDINGS, body, false, "e");
        assert_int_equal(ar_gem_embed_body(&call, AR_GEM_EMBED_CONTENT, "models/e", &out, &batch),
                         AR_EINVAL);
        json_decref(body);
    }
    fx_close(f);
}

/* ---- whole answers ---- */

static void parse_golden(fx_t *f, ar_endpoint_t ep, const char *in, const char *model,
                         json_t *req_body, ar_call_t *call_out)
{
    json_t *want = fx_json(f->dir, in, ".expected.json");
    ar_call_t call = fx_call(f->pool, ep, req_body, false, model);
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    fx_parse_response(f, &call, in, &out);
    json_t *got = json_loadb(out.ptr, out.len, 0, NULL);
    if (!got)
        fail_msg("%s: not JSON: %.*s", in, (int)out.len, out.ptr);
    normalise(got);
    assert_json_equal(got, want);
    json_decref(got);
    json_decref(want);
    ar_buf_dispose(&out);
    if (call_out)
        *call_out = call;
}

static void test_chat_responses(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "x");
    ar_call_t call;
    parse_golden(f, AR_EP_CHAT, "resp_text", "gemini-2.5-flash", body, &call);
    assert_true(call.usage.seen);
    assert_int_equal(call.usage.prompt_tokens, 11);
    assert_int_equal(call.usage.completion_tokens, 1033); /* candidates + thoughts */
    assert_int_equal(call.usage.total_tokens, 1044);
    assert_int_equal(call.usage.cached_tokens, 4);
    assert_int_equal(call.usage.reasoning_tokens, 1018); /* thoughtsTokenCount */
    assert_int_equal(call.usage.cache_creation_tokens, 0);
    parse_golden(f, AR_EP_CHAT, "resp_function_call", "gemini-2.5-flash", body, &call);
    assert_int_equal(call.usage.prompt_tokens, 120);
    parse_golden(f, AR_EP_CHAT, "resp_candidates", "gemini-2.0-flash", body, &call);
    assert_int_equal(call.usage.total_tokens, 20); /* derived: no totalTokenCount */
    parse_golden(f, AR_EP_CHAT, "resp_blocked", "gemini-2.0-flash", body, &call);
    parse_golden(f, AR_EP_CHAT, "resp_thinking", "gemini-2.5-pro", body, &call);
    assert_int_equal(call.usage.completion_tokens, 46);
    assert_int_equal(call.usage.reasoning_tokens, 40);
    assert_int_equal(call.usage.cached_tokens, 0);
    json_decref(body);
    fx_close(f);
}

static void test_finish_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *gemini, *openai, *with_tool;
    } cases[] = {
        {"STOP", "stop", "tool_calls"},
        {"MAX_TOKENS", "length", "length"},
        {"SAFETY", "content_filter", "content_filter"},
        {"RECITATION", "content_filter", "content_filter"},
        {"BLOCKLIST", "content_filter", "content_filter"},
        {"PROHIBITED_CONTENT", "content_filter", "content_filter"},
        {"SPII", "content_filter", "content_filter"},
        {"IMAGE_SAFETY", "content_filter", "content_filter"},
        {"LANGUAGE", "stop", "tool_calls"},
        {"OTHER", "stop", "tool_calls"},
        {"MALFORMED_FUNCTION_CALL", "stop", "tool_calls"},
        {"FINISH_REASON_UNSPECIFIED", "stop", "tool_calls"},
        {"", "stop", "tool_calls"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_string_equal(ar_gem_finish_reason(ar_span_cstr(cases[i].gemini), false),
                            cases[i].openai);
        assert_string_equal(ar_gem_finish_reason(ar_span_cstr(cases[i].gemini), true),
                            cases[i].with_tool);
    }
    /* and through a whole answer */
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "x");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) - 1; i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
                 "\"finishReason\":\"%s\"}]}",
                 cases[i].gemini);
        ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, false, "m");
        ar_buf_t out;
        ar_buf_init(&out, 1 << 16);
        assert_int_equal(ar_provider_parse_response(f->prov[0], &call, ar_span_cstr(text), &out),
                         0);
        json_t *got = json_loadb(out.ptr, out.len, 0, NULL);
        assert_non_null(got);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(json_object_get(got, "choices"), 0),
                                              "finish_reason")),
            cases[i].openai);
        /* no usageMetadata: usage reported as zeros and not seen */
        assert_false(call.usage.seen);
        json_decref(got);
        ar_buf_dispose(&out);
    }
    json_decref(body);
    fx_close(f);
}

static void test_parse_response_malformed(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "x");
    static const char *const bad[] = {"", "not json", "{\"candidates\":[", "{\"a\":1}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, false, "m");
        ar_buf_t out;
        ar_buf_init(&out, 1 << 16);
        assert_int_equal(ar_provider_parse_response(f->prov[0], &call, ar_span_cstr(bad[i]), &out),
                         AR_EUPSTREAM);
        assert_int_equal(out.len, 0);
        ar_buf_dispose(&out);
    }
    /* an embeddings answer without vectors */
    ar_call_t call = fx_call(f->pool, AR_EP_EMBEDDINGS, body, false, "m");
    ar_buf_t out;
    ar_buf_init(&out, 1 << 16);
    assert_int_equal(
        ar_provider_parse_response(f->prov[0], &call, AR_LIT("{\"embedding\":{}}"), &out),
        AR_EUPSTREAM);
    assert_int_equal(ar_provider_parse_response(f->prov[0], &call, AR_LIT("{\"x\":1}"), &out),
                     AR_EUPSTREAM);
    assert_int_equal(
        ar_provider_parse_response(f->prov[0], &call, AR_LIT("{\"embeddings\":[]}"), &out),
        AR_EUPSTREAM);
    assert_int_equal(out.len, 0);
    ar_buf_dispose(&out);
    json_decref(body);
    fx_close(f);
}

static void test_embeddings_responses(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "x");
    ar_call_t call;
    parse_golden(f, AR_EP_EMBEDDINGS, "embed_batch_response", "gemini-embedding-001", body, &call);
    assert_false(call.usage.seen);
    parse_golden(f, AR_EP_EMBEDDINGS, "predict_response", "text-embedding-005", body, &call);
    assert_true(call.usage.seen);
    assert_int_equal(call.usage.prompt_tokens, 15);
    assert_int_equal(call.usage.total_tokens, 15);
    assert_int_equal(call.usage.completion_tokens, 0);
    json_decref(body);

    /* encoding_format base64 (the openai SDK's default): float32 little-endian */
    body = json_pack("{s:s, s:s}", "input", "x", "encoding_format", "base64");
    call = fx_call(f->pool, AR_EP_EMBEDDINGS, body, false, "text-embedding-004");
    ar_buf_t out;
    ar_buf_init(&out, 1 << 16);
    fx_parse_response(f, &call, "embed_single_response", &out);
    json_t *got = json_loadb(out.ptr, out.len, 0, NULL);
    assert_non_null(got);
    json_t *d0 = json_array_get(json_object_get(got, "data"), 0);
    assert_int_equal(json_integer_value(json_object_get(d0, "index")), 0);
    const char *b64 = json_string_value(json_object_get(d0, "embedding"));
    assert_non_null(b64);
    ar_buf_t bin;
    ar_buf_init(&bin, 1 << 16);
    assert_int_equal(ar_base64_decode(ar_span_cstr(b64), &bin), 0);
    static const float want[] = {0.013168523f, -0.008711934f, -0.046782676f, 0.00069968984f,
                                 -0.009518873f};
    assert_int_equal(bin.len, sizeof(want));
    for (size_t i = 0; i < 5; i++) {
        const unsigned char *p = (const unsigned char *)bin.ptr + i * 4;
        uint32_t w =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        float v;
        memcpy(&v, &w, sizeof(v));
        assert_true(v == want[i]);
    }
    assert_string_equal(json_string_value(json_object_get(got, "model")), "text-embedding-004");
    assert_string_equal(json_string_value(json_object_get(got, "object")), "list");
    ar_buf_dispose(&bin);
    ar_buf_dispose(&out);
    json_decref(got);
    json_decref(body);
    fx_close(f);
}

/* ---- streams ---- */

static int collect_frame(void *ud, const ar_sse_event_t *ev)
{
    json_t *arr = ud;
    if (ar_span_eq(ev->data, AR_LIT("[DONE]"))) {
        json_array_append_new(arr, json_string("[DONE]"));
        return 0;
    }
    json_t *v = json_loadb(ev->data.ptr, ev->data.len, 0, NULL);
    if (!v)
        fail_msg("output frame is not JSON: %.*s", (int)ev->data.len, ev->data.ptr);
    normalise(v);
    json_array_append_new(arr, v);
    return 0;
}

/* Feeds text in two pieces split at `at` (or whole when at == len), then ends the stream.
 * @return the output frames as a JSON array. */
static json_t *run_stream(ar_provider_t *prov, ar_span_t text, size_t at, bool want_usage,
                          ar_usage_t *usage, const char *model)
{
    ar_pool_t *pool = ar_pool_create(1024);
    json_t *req = json_pack("{s:s}", "model", "x");
    ar_call_t call = fx_call(pool, AR_EP_CHAT, req, true, model);
    call.client_wants_usage = want_usage;
    ar_buf_t out;
    assert_int_equal(fx_translate(prov, &call, text, at, &out), 0);
    assert_true(call.stream_done);
    json_t *frames = json_array();
    ar_sse_parser_t q;
    ar_sse_parser_init(&q, 1 << 20);
    assert_int_equal(ar_sse_feed(&q, ar_buf_span(&out), collect_frame, frames), 0);
    assert_false(ar_sse_pending(&q)); /* every frame ends with its blank line */
    ar_sse_parser_dispose(&q);
    if (usage)
        *usage = call.usage;
    ar_buf_dispose(&out);
    json_decref(req);
    ar_pool_destroy(pool);
    return frames;
}

static void stream_golden(fx_t *f, const char *name, bool want_usage, const char *model,
                          ar_usage_t *usage)
{
    fx_gold_t g = fx_gold_open(f->dir, name, ".sse");
    for (size_t at = 0; at <= g.len; at++) {
        json_t *got = run_stream(f->prov[0], ar_span(g.text, g.len), at, want_usage,
                                 at == g.len ? usage : NULL, model);
        if (!json_equal(got, g.want))
            print_error("%s split at byte %zu of %zu\n", name, at, g.len);
        assert_json_equal(got, g.want);
        json_decref(got);
    }
    fx_gold_close(&g);
}

static void test_streams(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_usage_t u;
    stream_golden(f, "stream_text", true, "gemini-2.0-flash", &u);
    assert_true(u.seen);
    assert_int_equal(u.prompt_tokens, 9);
    assert_int_equal(u.completion_tokens, 12);
    assert_int_equal(u.total_tokens, 21);
    stream_golden(f, "stream_tool", false, "gemini-2.5-flash", &u);
    assert_int_equal(u.completion_tokens, 30); /* thoughts count as output */
    assert_int_equal(u.reasoning_tokens, 20);
    assert_int_equal(u.total_tokens, 80);
    stream_golden(f, "stream_unfinished", false, "gemini-2.0-flash", &u);
    assert_int_equal(u.total_tokens, 5);

    /* the usage chunk (asked for) carries the cached and reasoning details */
    static const char sse[] =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}],\"role\":"
        "\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{"
        "\"promptTokenCount\":300,\"cachedContentTokenCount\":256,\"candidatesTokenCount\":"
        "2,\"thoughtsTokenCount\":70,\"toolUsePromptTokenCount\":5,\"totalTokenCount\":"
        "377}}\n\n";
    json_t *got = run_stream(f->prov[0], ar_span(sse, sizeof(sse) - 1), 0, true, &u, "m");
    assert_int_equal(u.prompt_tokens, 305);
    assert_int_equal(u.cached_tokens, 256);
    assert_int_equal(u.completion_tokens, 72);
    assert_int_equal(u.reasoning_tokens, 70);
    json_t *last = json_array_get(got, json_array_size(got) - 2); /* before [DONE] */
    assert_json_str(json_object_get(last, "usage"),
                    "{\"prompt_tokens\":305,\"completion_tokens\":72,\"total_tokens\":377,"
                    "\"prompt_tokens_details\":{\"cached_tokens\":256},"
                    "\"completion_tokens_details\":{\"reasoning_tokens\":70}}");
    json_decref(got);

    /* an empty stream still ends well-formed */
    got = run_stream(f->prov[0], AR_LIT(""), 0, true, &u, "m");
    assert_int_equal(json_array_size(got), 4); /* role, finish, usage, [DONE] */
    assert_false(u.seen);
    json_decref(got);
    fx_close(f);
}

static int parse_one(fx_t *f, ar_call_t *call, const char *data, ar_buf_t *out)
{
    return fx_event(f->prov[0], call, data, out);
}

static void test_stream_events(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *req = json_pack("{s:s}", "model", "x");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, req, true, "m");
    ar_buf_t out;
    ar_buf_init(&out, 1 << 16);
    /* malformed events break the stream; nothing is written for them */
    static const char *const bad[] = {
        "not json",
        "{\"candidates\": [",
        "[{\"candidates\":[]}]",
        "{\"error\":{\"code\":500,\"message\":\"Internal error\",\"status\":\"INTERNAL\"}}",
        "\"text\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_one(f, &call, bad[i], &out), AR_EUPSTREAM);
        assert_int_equal(out.len, 0);
    }
    /* keep-alives and responses without candidates send nothing */
    assert_int_equal(parse_one(f, &call, "", &out), 0);
    assert_int_equal(parse_one(f, &call, " \r\n", &out), 0);
    assert_int_equal(parse_one(f, &call, "{}", &out), 0);
    assert_int_equal(out.len, 0);
    /* usage alone is recorded */
    assert_int_equal(parse_one(f, &call,
                               "{\"usageMetadata\":{\"promptTokenCount\":4,"
                               "\"candidatesTokenCount\":2,\"totalTokenCount\":6}}",
                               &out),
                     0);
    assert_true(call.usage.seen);
    assert_int_equal(call.usage.total_tokens, 6);
    assert_int_equal(out.len, 0);
    /* a blocked prompt: role then content_filter */
    assert_int_equal(
        parse_one(f, &call, "{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"}}", &out),
        0);
    assert_non_null(ar_span_find(ar_buf_span(&out), AR_LIT("\"role\":\"assistant\"")));
    assert_non_null(
        ar_span_find(ar_buf_span(&out), AR_LIT("\"finish_reason\":\"content_filter\"")));
    assert_true(call.stream_done);
    /* end_stream then sends only [DONE] (no usage asked) */
    ar_buf_reset(&out);
    assert_int_equal(ar_provider_end_stream(f->prov[0], &call, &out), 0);
    assert_true(ar_span_eq(ar_buf_span(&out), AR_LIT("data: [DONE]\n\n")));
    /* several candidates stream side by side, each with its own role and finish */
    call = fx_call(f->pool, AR_EP_CHAT, req, true, "m");
    ar_buf_reset(&out);
    assert_int_equal(parse_one(f, &call,
                               "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},"
                               "\"index\":0},{\"content\":{\"parts\":[{\"text\":\"b\"}]},"
                               "\"index\":1,\"finishReason\":\"MAX_TOKENS\"}]}",
                               &out),
                     0);
    assert_false(call.stream_done); /* choice 0 is still open */
    assert_non_null(ar_span_find(ar_buf_span(&out), AR_LIT("\"index\":1,\"delta\":{\"role\"")));
    assert_non_null(ar_span_find(ar_buf_span(&out), AR_LIT("\"finish_reason\":\"length\"")));
    ar_buf_reset(&out);
    assert_int_equal(ar_provider_end_stream(f->prov[0], &call, &out), 0);
    assert_non_null(ar_span_find(ar_buf_span(&out), AR_LIT("\"index\":0,\"delta\":{},"
                                                           "\"logprobs\":null,\"finish_reason\":"
                                                           "\"stop\"")));
    assert_null(ar_span_find(ar_buf_span(&out), AR_LIT("\"index\":1,\"delta\":{}")));
    ar_buf_dispose(&out);
    json_decref(req);
    fx_close(f);
}

/* ---- errors ---- */

static void test_parse_error(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_upstream_err_t e;
    fx_parse_error_fixture(f, 400, "error_invalid_argument", &e);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.type, "invalid_request_error");
    assert_string_equal(e.code, "invalid_argument");
    assert_string_equal(e.message,
                        "* GenerateContentRequest.contents: contents is not specified\n");
    fx_parse_error_fixture(f, 429, "error_resource_exhausted", &e);
    assert_string_equal(e.type, "rate_limit_error");
    assert_string_equal(e.code, "resource_exhausted");
    assert_string_equal(e.message,
                        "You exceeded your current quota, please check your plan and billing "
                        "details.");
    fx_parse_error_fixture(f, 403, "error_array", &e);
    assert_string_equal(e.type, "permission_error");
    assert_string_equal(e.code, "permission_denied");
    assert_string_equal(e.message, "Permission denied on resource project my-project.");

    static const struct {
        const char *status;
        int http;
        const char *type;
    } map[] = {
        {"UNAUTHENTICATED", 401, "authentication_error"},
        {"NOT_FOUND", 404, "not_found_error"},
        {"FAILED_PRECONDITION", 400, "invalid_request_error"},
        {"DEADLINE_EXCEEDED", 504, "timeout_error"},
        {"UNAVAILABLE", 503, "api_error"},
        {"INTERNAL", 500, "api_error"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"error\":{\"code\":%d,\"message\":\"m\\u00e9 \\\"q\\\"\",\"status\":\"%s\"}}",
                 map[i].http, map[i].status);
        fx_parse_error(f, map[i].http, ar_span_cstr(body), &e);
        assert_string_equal(e.type, map[i].type);
        assert_string_equal(e.message, "m\xc3\xa9 \"q\""); /* escapes decoded once */
    }
    /* OAuth errors from a token endpoint */
    fx_parse_error(f, 400,
                   AR_LIT("{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT "
                          "Signature.\"}"),
                   &e);
    assert_string_equal(e.code, "invalid_grant");
    assert_string_equal(e.message, "Invalid JWT Signature.");
    assert_string_equal(e.type, "invalid_request_error");
    /* not JSON: a printable prefix; type from the HTTP status */
    fx_parse_error(f, 502, AR_LIT("<html>\n<body>Bad Gateway</body></html>"), &e);
    assert_string_equal(e.message, "<html> <body>Bad Gateway</body></html>");
    assert_string_equal(e.type, "api_error");
    assert_null(e.code);
    fx_parse_error(f, 429, AR_LIT(""), &e);
    assert_string_equal(e.message, "upstream answered 429");
    assert_string_equal(e.type, "rate_limit_error");
    fx_parse_error(f, 401, AR_LIT("{\"error\":{\"code\":401}}"), &e);
    assert_string_equal(e.type, "authentication_error");
    assert_string_equal(e.message, "{\"error\":{\"code\":401}}");
    fx_close(f);
}

/* Issue 7, item 4(a): bodies jansson cannot load are the client's 400 (AR_EINVAL with the
 * reason), not AR_EPARSE (a 502 counted against the credential). */
static void test_untranslatable_bodies(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    fx_assert_untranslatable(f, f->prov[0], AR_EP_CHAT,
                             "{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"hi\"}],\"temperature\":%s}");
    fx_assert_untranslatable(f, f->prov[0], AR_EP_EMBEDDINGS, "{\"input\":[\"a\",%s]}");
    /* input Gemini cannot take says why too */
    ar_call_t call =
        fx_raw_call(f->pool, AR_EP_EMBEDDINGS, AR_LIT("{\"input\":[1,2,3]}"), "text-embedding");
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[0], &call, &req), AR_EINVAL);
    assert_non_null(strstr(call.error_detail, "token ids"));
    fx_close(f);
}

/* Found by fuzzing (tests/fuzz/corpus/gemini/response-id-cut-utf8): a responseId longer
 * than the 36 bytes kept was cut inside a UTF-8 character, so the answer was not valid
 * UTF-8 (jansson and strict clients refuse it). */
static void test_response_id_cut_on_a_character(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *req = json_pack("{s:s}", "model", "g");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, req, false, "gemini-2.5-flash");
    static const char body[] =
        "{\"responseId\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\xc3\xa9\",\"candidates\":[]"
        "}";
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    assert_int_equal(ar_provider_parse_response(f->prov[0], &call, AR_LIT(body), &out), 0);
    json_error_t je;
    json_t *v = json_loadb(out.ptr, out.len, 0, &je);
    if (!v)
        fail_msg("answer is not valid JSON: %s", je.text);
    assert_string_equal(ar_json_str(v, "id"), "chatcmpl-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    json_decref(v);
    ar_buf_dispose(&out);
    json_decref(req);
    fx_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_requests),
        cmocka_unit_test(test_urls_and_headers),
        cmocka_unit_test(test_request_edge_cases),
        cmocka_unit_test(test_reasoning_effort),
        cmocka_unit_test(test_embeddings_requests),
        cmocka_unit_test(test_chat_responses),
        cmocka_unit_test(test_finish_reasons),
        cmocka_unit_test(test_parse_response_malformed),
        cmocka_unit_test(test_embeddings_responses),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_stream_events),
        cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_untranslatable_bodies),
        cmocka_unit_test(test_response_id_cut_on_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
