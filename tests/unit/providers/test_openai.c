/*
 * test_openai.c: unit tests of the openai provider (providers/openai.c, oai_compat.c), with
 * golden files under tests/fixtures/providers/openai/: each request fixture goes in, and the
 * upstream body that comes out must equal its .expected.json as JSON. Also the URL and
 * headers, the stream usage handling (usage-only chunk dropped unless asked for, usage
 * always recorded), response usage, error normalisation and model discovery.
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
                           "  - name: oa\n"
                           "    type: openai\n"
                           "    api_key: sk-test-openai-0123456789\n"
                           "    headers:\n"
                           "      OpenAI-Organization: org-123\n"
                           "      X-Title: airouter tests\n"
                           "  - name: local\n"
                           "    type: openai\n"
                           "    base_url: http://127.0.0.1:8000/v1\n"
                           "  - name: router\n"
                           "    type: openai\n"
                           "    api_key: sk-or\n"
                           "    base_url: https://openrouter.ai/api/v1/\n"
                           "  - name: px\n"
                           "    type: proxy\n"
                           "    api_key: sk-remote\n"
                           "    base_url: http://10.0.1.50:8080\n";

/* prov: oa, local, router, px */
static fx_t *fx_open(void)
{
    return fx_open_in("providers/openai", yaml);
}

static void test_chat_request(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_http_req_t req =
        fx_golden(f, f->prov[0], AR_EP_CHAT, "chat_request", false, "gpt-4o-2024-08-06");
    assert_string_equal(req.url, "https://api.openai.com/v1/chat/completions");
    assert_true(has_header(&req, "Authorization: Bearer sk-test-openai-0123456789"));
    assert_true(has_header(&req, "Content-Type: application/json"));
    assert_true(has_header(&req, "OpenAI-Organization: org-123"));
    assert_true(has_header(&req, "X-Title: airouter tests"));
    assert_int_equal(headers_named(&req, "Authorization:"), 1);
    assert_int_equal(headers_named(&req, "Accept: text/event-stream"), 0);
    assert_int_equal(req.headers_cnt, 4);
    /* Anthropic-only fields that arrive through /v1/messages (prompt-caching marks,
     * top_k) are dropped: OpenAI's API refuses them */
    fx_golden(f, f->prov[0], AR_EP_CHAT, "chat_cache_control_request", false, "gpt-4o-2024-08-06");
    fx_close(f);
}

static void test_chat_stream_request(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    /* include_usage is added; every other field is untouched */
    ar_http_req_t req =
        fx_golden(f, f->prov[0], AR_EP_CHAT, "chat_stream_request", true, "gpt-4o-2024-08-06");
    assert_true(has_header(&req, "Accept: text/event-stream"));
    assert_int_equal(req.headers_cnt, 5);
    /* the client's own stream_options: include_usage forced on, the rest kept */
    fx_golden(f, f->prov[0], AR_EP_CHAT, "chat_stream_options_request", true, "gpt-4o-2024-08-06");
    fx_close(f);
}

static void test_embeddings_request(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_http_req_t req = fx_golden(f, f->prov[0], AR_EP_EMBEDDINGS, "embeddings_request", false,
                                  "text-embedding-3-small");
    assert_string_equal(req.url, "https://api.openai.com/v1/embeddings");
    /* embeddings never get stream_options, even when a stream flag is set */
    fx_golden(f, f->prov[0], AR_EP_EMBEDDINGS, "embeddings_request", true,
              "text-embedding-3-small");
    fx_close(f);
}

static void test_urls(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    static const struct {
        size_t prov;
        ar_endpoint_t ep;
        const char *url;
    } cases[] = {
        {0, AR_EP_CHAT, "https://api.openai.com/v1/chat/completions"},
        {0, AR_EP_COMPLETIONS, "https://api.openai.com/v1/completions"},
        {0, AR_EP_EMBEDDINGS, "https://api.openai.com/v1/embeddings"},
        /* a base_url ending in /v1 is not doubled */
        {1, AR_EP_CHAT, "http://127.0.0.1:8000/v1/chat/completions"},
        {1, AR_EP_EMBEDDINGS, "http://127.0.0.1:8000/v1/embeddings"},
        /* ... nor with a trailing slash in the config */
        {2, AR_EP_CHAT, "https://openrouter.ai/api/v1/chat/completions"},
        /* proxy: another airouter, same wire format */
        {3, AR_EP_CHAT, "http://10.0.1.50:8080/v1/chat/completions"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body = json_pack("{s:s, s:[]}", "model", "m", "messages");
        ar_call_t call = fx_call(f->pool, cases[i].ep, body, false, "up");
        ar_http_req_t req;
        memset(&req, 0, sizeof(req));
        assert_int_equal(ar_provider_build(f->prov[cases[i].prov], &call, &req), 0);
        assert_string_equal(req.url, cases[i].url);
        json_decref(body);
    }
    /* no api_key: no Authorization header */
    json_t *body = json_pack("{s:s}", "model", "m");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, false, "up");
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[1], &call, &req), 0);
    assert_int_equal(headers_named(&req, "Authorization:"), 0);
    json_decref(body);
    /* the proxy sends the remote's key */
    body = json_pack("{s:s}", "model", "m");
    call = fx_call(f->pool, AR_EP_CHAT, body, false, "up");
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[3], &call, &req), 0);
    assert_true(has_header(&req, "Authorization: Bearer sk-remote"));
    json_decref(body);
    assert_true(ar_provider_can(f->prov[0], AR_PROV_STREAM | AR_PROV_EMBED | AR_PROV_MODELS));
    assert_false(ar_provider_can(f->prov[0], AR_PROV_INPROCESS));
    fx_close(f);
}

static void run_stream(fx_t *f, ar_call_t *call, fx_verdicts_t *s)
{
    size_t len;
    char *text = ar_test_fixture("providers/openai/stream_usage.sse", &len);
    fx_verdicts(f->prov[0], call, ar_span(text, len), len, s);
    free(text);
    assert_int_equal(s->cnt, 13);
}

static void assert_fixture_usage(const ar_call_t *call)
{
    assert_true(call->usage.seen);
    assert_int_equal(call->usage.prompt_tokens, 19);
    assert_int_equal(call->usage.completion_tokens, 9);
    assert_int_equal(call->usage.total_tokens, 28);
    assert_int_equal(call->usage.cached_tokens, 0);
}

static void test_stream_usage_dropped_when_unasked(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "gpt-4o");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, true, "gpt-4o-2024-08-06");
    call.client_wants_usage = false;
    fx_verdicts_t s;
    run_stream(f, &call, &s);
    for (size_t i = 0; i < 13; i++) {
        if (i == 11) {
            /* the usage-only chunk ("choices":[]): dropped, nothing to send */
            assert_int_equal(s.verdict[i], 0);
            assert_int_equal(s.out_len[i], 0);
        } else {
            assert_int_equal(s.verdict[i], AR_PROV_PASS);
        }
        assert_false(s.done_before[i]);
    }
    assert_true(call.stream_done); /* set by [DONE] */
    assert_fixture_usage(&call);
    json_decref(body);
    fx_close(f);
}

static void test_stream_usage_passed_when_asked(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "gpt-4o");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, true, "gpt-4o-2024-08-06");
    call.client_wants_usage = true;
    fx_verdicts_t s;
    run_stream(f, &call, &s);
    for (size_t i = 0; i < 13; i++)
        assert_int_equal(s.verdict[i], AR_PROV_PASS);
    assert_true(call.stream_done);
    assert_fixture_usage(&call);
    json_decref(body);
    fx_close(f);
}

static int parse_one(fx_t *f, ar_call_t *call, const char *data, size_t *out_len)
{
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    int rc = fx_event(f->prov[0], call, data, &out);
    *out_len = out.len;
    ar_buf_dispose(&out);
    return rc;
}

static void test_stream_event_edge_cases(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "gpt-4o");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, true, "gpt-4o");
    size_t n;
    /* usage on a chunk that also carries choices (some compatible servers): never dropped */
    assert_int_equal(parse_one(f, &call,
                               "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
                               "\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":"
                               "7}}",
                               &n),
                     AR_PROV_PASS);
    assert_true(call.usage.seen);
    assert_int_equal(call.usage.prompt_tokens, 5);
    assert_int_equal(call.usage.completion_tokens, 7);
    assert_int_equal(call.usage.total_tokens, 12); /* derived when absent */
    /* "usage": null and no usage at all: passed, usage untouched; without choices either,
     * the event is no chunk a client can read (Azure's prompt-filter chunk) and is dropped */
    memset(&call.usage, 0, sizeof(call.usage));
    assert_int_equal(parse_one(f, &call, "{\"choices\":[],\"usage\":null}", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(parse_one(f, &call, "{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}", &n),
                     AR_PROV_PASS);
    assert_false(call.usage.seen);
    /* whitespace inside the empty choices array still makes it a usage-only chunk */
    assert_int_equal(
        parse_one(f, &call, "{\"choices\": [ ], \"usage\": {\"prompt_tokens\": 3}}", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(call.usage.prompt_tokens, 3);
    /* a reasoning model's usage chunk: the details are recorded too */
    assert_int_equal(parse_one(f, &call,
                               "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_"
                               "tokens\":4,\"prompt_tokens_details\":{\"cached_tokens\":8},"
                               "\"completion_tokens_details\":{\"reasoning_tokens\":2}}}",
                               &n),
                     0);
    assert_int_equal(call.usage.cached_tokens, 8);
    assert_int_equal(call.usage.reasoning_tokens, 2);
    assert_int_equal(call.usage.completion_tokens, 4);
    /* not JSON: forwarded as is */
    assert_int_equal(parse_one(f, &call, "keep going", &n), AR_PROV_PASS);
    assert_false(call.stream_done);
    assert_int_equal(parse_one(f, &call, " [DONE] ", &n), AR_PROV_PASS);
    assert_true(call.stream_done);
    json_decref(body);
    fx_close(f);
}

static void test_parse_response_usage(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_pack("{s:s}", "model", "gpt-4o");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, body, false, "gpt-4o-2024-08-06");
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    fx_parse_response(f, &call, "chat_response", &out);
    assert_int_equal(out.len, 0); /* the body passes through untouched */
    assert_true(call.usage.seen);
    assert_int_equal(call.usage.prompt_tokens, 1117);
    assert_int_equal(call.usage.completion_tokens, 12);
    assert_int_equal(call.usage.total_tokens, 1129);
    assert_int_equal(call.usage.cached_tokens, 1024);
    assert_int_equal(call.usage.reasoning_tokens, 0);
    assert_int_equal(call.usage.cache_creation_tokens, 0);
    /* a reasoning model's answer */
    memset(&call.usage, 0, sizeof(call.usage));
    assert_int_equal(
        ar_provider_parse_response(
            f->prov[0], &call,
            AR_LIT("{\"id\":\"x\",\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":"
                   "900,\"total_tokens\":950,\"prompt_tokens_details\":{\"cached_tokens\":"
                   "32},\"completion_tokens_details\":{\"reasoning_tokens\":768}}}"),
            &out),
        0);
    assert_int_equal(call.usage.prompt_tokens, 50);
    assert_int_equal(call.usage.cached_tokens, 32);
    assert_int_equal(call.usage.completion_tokens, 900);
    assert_int_equal(call.usage.reasoning_tokens, 768);
    /* an answer without usage leaves it unseen */
    memset(&call.usage, 0, sizeof(call.usage));
    assert_int_equal(ar_provider_parse_response(f->prov[0], &call,
                                                AR_LIT("{\"id\":\"x\",\"usage\":null}"), &out),
                     0);
    assert_false(call.usage.seen);
    ar_buf_dispose(&out);
    json_decref(body);
    fx_close(f);
}

static ar_usage_t usage_of(const char *json)
{
    ar_usage_t u = {0};
    ar_provider_usage_from_openai(ar_span_cstr(json), &u);
    return u;
}

static void test_usage_details(void **state)
{
    (void)state;
    /* the Responses API's names */
    ar_usage_t u = usage_of("{\"input_tokens\":328,\"input_tokens_details\":{\"cached_tokens\":"
                            "256},\"output_tokens\":52,\"output_tokens_details\":{"
                            "\"reasoning_tokens\":40},\"total_tokens\":380}");
    assert_true(u.seen);
    assert_int_equal(u.prompt_tokens, 328);
    assert_int_equal(u.cached_tokens, 256);
    assert_int_equal(u.completion_tokens, 52);
    assert_int_equal(u.reasoning_tokens, 40);
    assert_int_equal(u.total_tokens, 380);
    /* an OpenAI-compatible proxy in front of Anthropic adds the cache writes */
    u = usage_of("{\"prompt_tokens\":1000,\"completion_tokens\":5,\"prompt_tokens_details\":{"
                 "\"cached_tokens\":600},\"cache_creation_input_tokens\":300,"
                 "\"cache_read_input_tokens\":600}");
    assert_int_equal(u.cached_tokens, 600);
    assert_int_equal(u.cache_creation_tokens, 300);
    assert_int_equal(u.total_tokens, 1005);
    /* details larger than their totals are cut to them; junk is ignored */
    u = usage_of("{\"prompt_tokens\":10,\"completion_tokens\":3,\"prompt_tokens_details\":{"
                 "\"cached_tokens\":50},\"cache_creation_input_tokens\":9,"
                 "\"completion_tokens_details\":{\"reasoning_tokens\":7}}");
    assert_int_equal(u.cached_tokens, 10);
    assert_int_equal(u.cache_creation_tokens, 0);
    assert_int_equal(u.reasoning_tokens, 3);
    u = usage_of("{\"prompt_tokens\":10,\"completion_tokens_details\":{\"reasoning_tokens\":"
                 "-4},\"prompt_tokens_details\":null}");
    assert_int_equal(u.prompt_tokens, 10);
    assert_int_equal(u.reasoning_tokens, 0);
    assert_int_equal(u.cached_tokens, 0);
}

static void test_parse_error(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_upstream_err_t e;
    fx_parse_error_fixture(f, 400, "error_invalid_request", &e);
    assert_int_equal(e.status, 400);
    /* the message is the decoded string, ready to be escaped again for the client */
    assert_string_equal(e.message,
                        "Invalid value: 'bot'. Supported values are: 'system', 'assistant', "
                        "'user', 'function', 'tool', and 'developer'.\nSee \"messages[0].role\".");
    assert_string_equal(e.type, "invalid_request_error");
    assert_string_equal(e.code, "invalid_value");

    fx_parse_error_fixture(f, 429, "error_rate_limit", &e);
    assert_int_equal(e.status, 429);
    assert_non_null(strstr(e.message, "Please try again in 140ms."));
    assert_string_equal(e.type, "tokens");
    assert_string_equal(e.code, "rate_limit_exceeded");

    /* "code": null -> no code */
    fx_parse_error(f, 500,
                   AR_LIT("{\"error\":{\"message\":\"boom\",\"type\":\"server_error\","
                          "\"code\":null}}"),
                   &e);
    assert_string_equal(e.message, "boom");
    assert_null(e.code);
    /* {"error": "text"} and {"message": "text"} */
    fx_parse_error(f, 503, AR_LIT("{\"error\":\"overloaded \\u00e9\"}"), &e);
    assert_string_equal(e.message, "overloaded \xc3\xa9");
    assert_null(e.type);
    fx_parse_error(f, 502, AR_LIT("{\"message\":\"bad gateway\"}"), &e);
    assert_string_equal(e.message, "bad gateway");
    /* not JSON: a printable prefix of the text */
    fx_parse_error(f, 502, AR_LIT("<html>\r\n<h1>502 Bad Gateway</h1>\n</html>"), &e);
    assert_int_equal(e.status, 502);
    assert_string_equal(e.message, "<html>  <h1>502 Bad Gateway</h1> </html>");
    assert_null(e.type);
    assert_null(e.code);
    char long_text[600];
    memset(long_text, 'e', sizeof(long_text));
    fx_parse_error(f, 500, ar_span(long_text, sizeof(long_text)), &e);
    assert_int_equal(strlen(e.message), 200);
    /* empty body */
    fx_parse_error(f, 504, AR_SPAN_NULL, &e);
    assert_string_equal(e.message, "upstream answered 504");
    fx_close(f);
}

static void test_models(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build_models(f->prov[0], f->pool, &req), 0);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.url, "https://api.openai.com/v1/models");
    assert_int_equal(req.body.len, 0);
    assert_true(has_header(&req, "Authorization: Bearer sk-test-openai-0123456789"));
    assert_true(has_header(&req, "OpenAI-Organization: org-123"));
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build_models(f->prov[1], f->pool, &req), 0);
    assert_string_equal(req.url, "http://127.0.0.1:8000/v1/models");

    size_t len;
    char *text = ar_test_fixture("providers/openai/models.json", &len);
    ar_strlist_t ids = {0};
    assert_int_equal(ar_provider_parse_models(f->prov[0], ar_span(text, len), &ids), 0);
    assert_int_equal(ids.cnt, 3); /* the entry without an id is skipped */
    assert_string_equal(ids.items[0], "gpt-4o-2024-08-06");
    assert_string_equal(ids.items[1], "text-embedding-3-small");
    assert_string_equal(ids.items[2], "ft:gpt-4o-mini:org:custom:abc123");
    /* a second body appends */
    assert_int_equal(
        ar_provider_parse_models(f->prov[0], AR_LIT("{\"data\":[{\"id\":\"extra\"}]}"), &ids), 0);
    assert_int_equal(ids.cnt, 4);
    assert_string_equal(ids.items[3], "extra");
    ar_strlist_dispose(&ids);
    free(text);
    assert_int_equal(ar_provider_parse_models(f->prov[0], AR_LIT("<html>"), &ids), AR_EPARSE);
    assert_int_equal(ar_provider_parse_models(f->prov[0], AR_LIT("{\"data\":{}}"), &ids),
                     AR_EPARSE);
    assert_int_equal(ids.cnt, 0);
    fx_close(f);
}

/* Issue 7, item 4(a): a body that needs the tree path (an airouter extension field to strip)
 * and that jansson cannot load is the client's 400, never an upstream failure: build
 * returned AR_EPARSE before, which the gateway answered 502 and counted against the
 * credential. */
static void test_untranslatable_bodies(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    static const char fmt[] = "{\"model\":\"gpt\",\"tags\":[\"t\"],\"messages\":[{\"role\":"
                              "\"user\",\"content\":\"hi\"}],\"max_tokens\":%s}";
    fx_assert_untranslatable(f, f->prov[0], AR_EP_CHAT, fmt);
    fx_assert_untranslatable(f, f->prov[3], AR_EP_CHAT, fmt); /* proxy */
    fx_assert_untranslatable(f, f->prov[0], AR_EP_EMBEDDINGS,
                             "{\"type\":\"x\",\"input\":[\"a\",%s]}");
    fx_close(f);
}

/* Found by fuzzing (tests/fuzz/corpus/openai/splice-empty-object): the splice path put the
 * model into an empty object with a trailing comma, {"model":"m",}. */
static void test_splice_into_empty_object(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    static const char *const bodies[] = {"{}", " { \n } ", "{}\n"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        for (int stream = 0; stream < 2; stream++) {
            ar_call_t call = fx_raw_call(f->pool, AR_EP_CHAT, ar_span_cstr(bodies[i]), "m");
            call.stream = stream;
            ar_http_req_t req = fx_build(f->prov[0], &call);
            json_t *want = stream ? json_pack("{s:s,s:{s:b}}", "model", "m", "stream_options",
                                              "include_usage", 1)
                                  : json_pack("{s:s}", "model", "m");
            assert_json_text(req.body.ptr, req.body.len, want);
            json_decref(want);
        }
    }
    fx_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_request),
        cmocka_unit_test(test_chat_stream_request),
        cmocka_unit_test(test_embeddings_request),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_stream_usage_dropped_when_unasked),
        cmocka_unit_test(test_stream_usage_passed_when_asked),
        cmocka_unit_test(test_stream_event_edge_cases),
        cmocka_unit_test(test_parse_response_usage),
        cmocka_unit_test(test_usage_details),
        cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_untranslatable_bodies),
        cmocka_unit_test(test_splice_into_empty_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
