/*
 * test_native.c: unit tests of native pass-through (provider.h: ar_call_native_t): a client
 * of the Responses API sent to an openai or proxy credential, a client of the Messages API
 * sent to an anthropic credential, as written (only the model substituted), with the
 * client's betas; the answers relayed untouched while usage is read from them; and the
 * translation taking over where native_api is off or the wire is another.
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
                           "  - name: compat\n"
                           "    type: openai\n"
                           "    base_url: http://127.0.0.1:8000/v1\n"
                           "    native_api: false\n"
                           "  - name: claude\n"
                           "    type: anthropic\n"
                           "    api_key: sk-ant-test-0123456789\n"
                           "  - name: claude_own\n"
                           "    type: anthropic\n"
                           "    api_key: sk-ant-own\n"
                           "    base_url: http://127.0.0.1:9\n"
                           "    headers:\n"
                           "      anthropic-version: 2024-01-01\n";

enum { OA, COMPAT, CLAUDE, CLAUDE_OWN };

static fx_t *fx_open(void)
{
    return fx_open_in("providers/openai", yaml);
}

/* A call from a client of `wire` whose raw request is raw (no chat form). */
static ar_call_t native_call(fx_t *f, ar_wire_t wire, const char *raw, bool stream,
                             const char *const *headers, size_t headers_cnt)
{
    ar_call_t c = fx_call(f->pool, AR_EP_CHAT, NULL, stream, "up-model");
    c.public_model = "public";
    c.native_in.wire = wire;
    c.native_in.raw = ar_span_cstr(raw);
    (void)ar_jscan_get(c.native_in.raw, AR_LIT("model"), &c.native_in.raw_model);
    c.native_in.headers = headers;
    c.native_in.headers_cnt = headers_cnt;
    c.translate_error = "tools[0]: the built-in tool 'web_search' needs a native upstream";
    return c;
}

static void assert_body(const ar_http_req_t *r, const char *want)
{
    if (r->body.len != strlen(want) || memcmp(r->body.ptr, want, r->body.len) != 0)
        fail_msg("body '%.*s', want '%s'", (int)r->body.len, r->body.ptr, want);
}

static void test_model_splice(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"model\":\"gpt\",\"input\":\"hi\"}", "{\"model\":\"up-model\",\"input\":\"hi\"}"},
        {"{ \"input\" : \"hi\" , \"model\" : \"gpt\" }",
         "{ \"input\" : \"hi\" , \"model\" : \"up-model\" }"},
        {"{\"input\":\"hi\"}", "{\"model\":\"up-model\",\"input\":\"hi\"}"},
        {"{}", "{\"model\":\"up-model\"}"},
        {" { \n} ", " {\"model\":\"up-model\" \n} "},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ar_call_t c = native_call(f, AR_WIRE_RESPONSES, cases[i].in, false, NULL, 0);
        ar_span_t out;
        assert_int_equal(ar_provider_native_body(&c, &out), 0);
        if (out.len != strlen(cases[i].out) || memcmp(out.ptr, cases[i].out, out.len))
            fail_msg("%s -> '%.*s', want '%s'", cases[i].in, (int)out.len, out.ptr, cases[i].out);
    }
    /* a model that needs escaping is escaped */
    ar_call_t c = native_call(f, AR_WIRE_RESPONSES, "{\"model\":\"x\"}", false, NULL, 0);
    c.model = "a\"b";
    ar_span_t out;
    assert_int_equal(ar_provider_native_body(&c, &out), 0);
    assert_int_equal(out.len, strlen("{\"model\":\"a\\\"b\"}"));
    assert_memory_equal(out.ptr, "{\"model\":\"a\\\"b\"}", out.len);
    fx_close(f);
}

static void test_responses_native_request(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    const char *raw = "{\"model\":\"public\",\"input\":[{\"type\":\"web_search_call\"}],"
                      "\"tools\":[{\"type\":\"web_search\"}],\"stream\":true}";
    ar_call_t c = native_call(f, AR_WIRE_RESPONSES, raw, true, NULL, 0);
    ar_http_req_t r = fx_build(f->prov[OA], &c);
    assert_true(c.native);
    assert_string_equal(r.url, "https://api.openai.com/v1/responses");
    assert_true(has_header(&r, "Authorization: Bearer sk-test-openai-0123456789"));
    assert_true(has_header(&r, "Accept: text/event-stream"));
    assert_body(&r, "{\"model\":\"up-model\",\"input\":[{\"type\":\"web_search_call\"}],"
                    "\"tools\":[{\"type\":\"web_search\"}],\"stream\":true}");

    /* native_api: false, and no chat form: the client's 400 with the translation's reason */
    ar_call_t c2 = native_call(f, AR_WIRE_RESPONSES, raw, true, NULL, 0);
    ar_http_req_t r2;
    memset(&r2, 0, sizeof(r2));
    assert_int_equal(ar_provider_build(f->prov[COMPAT], &c2, &r2), AR_EINVAL);
    assert_false(c2.native);
    assert_string_equal(c2.error_detail, c2.translate_error);

    /* a Messages client is not the openai provider's to take natively */
    ar_call_t c3 = native_call(f, AR_WIRE_MESSAGES, raw, false, NULL, 0);
    memset(&r2, 0, sizeof(r2));
    assert_int_equal(ar_provider_build(f->prov[OA], &c3, &r2), AR_EINVAL);
    assert_false(c3.native);
    fx_close(f);
}

static ar_sse_event_t event(const char *name, const char *data)
{
    ar_sse_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.event = ar_span_cstr(name);
    ev.data = ar_span_cstr(data);
    ev.raw = ev.data;
    return ev;
}

static void test_responses_native_answers(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_call_t c =
        native_call(f, AR_WIRE_RESPONSES, "{\"model\":\"m\",\"input\":\"x\"}", true, NULL, 0);
    ar_http_req_t r = fx_build(f->prov[OA], &c);
    (void)r;
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    ar_sse_event_t ev =
        event("response.created", "{\"type\":\"response.created\",\"response\":{\"usage\":null}}");
    assert_int_equal(ar_provider_parse_event(f->prov[OA], &c, &ev, &out), AR_PROV_PASS);
    ev = event("response.output_text.delta", "{\"type\":\"response.output_text.delta\"}");
    assert_int_equal(ar_provider_parse_event(f->prov[OA], &c, &ev, &out), AR_PROV_PASS);
    assert_false(c.usage.seen);
    assert_false(c.stream_done);
    /* the event name may be absent: the type in the data says it */
    ev = event("", "{\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":30,"
                   "\"input_tokens_details\":{\"cached_tokens\":10},\"output_tokens\":7,"
                   "\"output_tokens_details\":{\"reasoning_tokens\":5},\"total_tokens\":37}}}");
    assert_int_equal(ar_provider_parse_event(f->prov[OA], &c, &ev, &out), AR_PROV_PASS);
    assert_true(c.stream_done);
    assert_int_equal(c.usage.prompt_tokens, 30);
    assert_int_equal(c.usage.cached_tokens, 10);
    assert_int_equal(c.usage.completion_tokens, 7);
    assert_int_equal(c.usage.reasoning_tokens, 5);
    assert_int_equal(out.len, 0);
    /* an event that is not JSON breaks the stream, with a reason */
    ev = event("response.output_text.delta", "{not json");
    assert_int_equal(ar_provider_parse_event(f->prov[OA], &c, &ev, &out), AR_EUPSTREAM);
    assert_non_null(c.error_detail);

    /* a whole response: passed through (nothing in out), usage read */
    ar_call_t w =
        native_call(f, AR_WIRE_RESPONSES, "{\"model\":\"m\",\"input\":\"x\"}", false, NULL, 0);
    r = fx_build(f->prov[OA], &w);
    const char *body = "{\"id\":\"resp_1\",\"object\":\"response\",\"output\":[],\"usage\":{"
                       "\"input_tokens\":4,\"output_tokens\":2,\"total_tokens\":6}}";
    assert_int_equal(ar_provider_parse_response(f->prov[OA], &w, ar_span_cstr(body), &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(w.usage.prompt_tokens, 4);
    assert_int_equal(w.usage.completion_tokens, 2);
    ar_buf_dispose(&out);
    fx_close(f);
}

static void test_messages_native_request(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    const char *raw = "{\"model\":\"claude\",\"max_tokens\":100,\"thinking\":{\"type\":\"enabled\","
                      "\"budget_tokens\":2048},\"context_management\":{\"edits\":[]},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    const char *const hs[] = {"anthropic-version: 2023-06-01",
                              "anthropic-beta: context-management-2025-06-27"};
    ar_call_t c = native_call(f, AR_WIRE_MESSAGES, raw, false, hs, 2);
    ar_http_req_t r = fx_build(f->prov[CLAUDE], &c);
    assert_true(c.native);
    assert_string_equal(r.url, "https://api.anthropic.com/v1/messages");
    assert_true(has_header(&r, "x-api-key: sk-ant-test-0123456789"));
    assert_true(has_header(&r, "anthropic-version: 2023-06-01"));
    assert_true(has_header(&r, "anthropic-beta: context-management-2025-06-27"));
    assert_int_equal(headers_named(&r, "anthropic-version:"), 1);
    assert_body(&r, "{\"model\":\"up-model\",\"max_tokens\":100,\"thinking\":{\"type\":\"enabled\","
                    "\"budget_tokens\":2048},\"context_management\":{\"edits\":[]},"
                    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");

    /* no version from the client: airouter's; a configured one wins over the client's */
    ar_call_t c2 = native_call(f, AR_WIRE_MESSAGES, raw, false, NULL, 0);
    r = fx_build(f->prov[CLAUDE], &c2);
    assert_true(has_header(&r, "anthropic-version: 2023-06-01"));
    ar_call_t c3 = native_call(f, AR_WIRE_MESSAGES, raw, true, hs, 2);
    r = fx_build(f->prov[CLAUDE_OWN], &c3);
    assert_int_equal(headers_named(&r, "anthropic-version:"), 1);
    assert_true(has_header(&r, "anthropic-version: 2024-01-01"));
    assert_true(has_header(&r, "Accept: text/event-stream"));

    /* a Responses client is translated for an anthropic credential */
    ar_call_t c4 = native_call(f, AR_WIRE_RESPONSES, raw, false, NULL, 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(ar_provider_build(f->prov[CLAUDE], &c4, &r), AR_EINVAL);
    assert_false(c4.native);
    fx_close(f);
}

static void test_messages_native_answers(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    const char *raw = "{\"model\":\"claude\",\"max_tokens\":10,\"messages\":[]}";
    ar_call_t c = native_call(f, AR_WIRE_MESSAGES, raw, true, NULL, 0);
    ar_http_req_t r = fx_build(f->prov[CLAUDE], &c);
    (void)r;
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    ar_sse_event_t ev = event(
        "message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{"
                         "\"input_tokens\":20,\"cache_read_input_tokens\":100,"
                         "\"cache_creation_input_tokens\":5,\"output_tokens\":1}}}");
    assert_int_equal(ar_provider_parse_event(f->prov[CLAUDE], &c, &ev, &out), AR_PROV_PASS);
    assert_int_equal(c.usage.prompt_tokens, 125);
    assert_int_equal(c.usage.cached_tokens, 100);
    assert_int_equal(c.usage.cache_creation_tokens, 5);
    ev =
        event("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,"
                                     "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"x\"}}");
    assert_int_equal(ar_provider_parse_event(f->prov[CLAUDE], &c, &ev, &out), AR_PROV_PASS);
    ev = event("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                                "\"end_turn\"},\"usage\":{\"output_tokens\":42}}");
    assert_int_equal(ar_provider_parse_event(f->prov[CLAUDE], &c, &ev, &out), AR_PROV_PASS);
    assert_int_equal(c.usage.completion_tokens, 42);
    assert_int_equal(c.usage.prompt_tokens, 125); /* message_delta without input keeps it */
    assert_false(c.stream_done);
    ev = event("message_stop", "{\"type\":\"message_stop\"}");
    assert_int_equal(ar_provider_parse_event(f->prov[CLAUDE], &c, &ev, &out), AR_PROV_PASS);
    assert_true(c.stream_done);
    assert_int_equal(out.len, 0);
    /* nothing to close at the end: the upstream's own events were the stream */
    assert_int_equal(ar_provider_end_stream(f->prov[CLAUDE], &c, &out), 0);
    assert_int_equal(out.len, 0);
    /* an error event ends the stream, with the upstream's message */
    ev = event("error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                        "\"message\":\"Overloaded\"}}");
    assert_int_equal(ar_provider_parse_event(f->prov[CLAUDE], &c, &ev, &out), AR_EUPSTREAM);
    assert_string_equal(c.error_detail, "the upstream reported: Overloaded");

    /* a whole message: relayed, usage read */
    ar_call_t w = native_call(f, AR_WIRE_MESSAGES, raw, false, NULL, 0);
    r = fx_build(f->prov[CLAUDE], &w);
    const char *body = "{\"type\":\"message\",\"content\":[],\"usage\":{\"input_tokens\":3,"
                       "\"cache_read_input_tokens\":4,\"output_tokens\":9}}";
    assert_int_equal(ar_provider_parse_response(f->prov[CLAUDE], &w, ar_span_cstr(body), &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(w.usage.prompt_tokens, 7);
    assert_int_equal(w.usage.cached_tokens, 4);
    assert_int_equal(w.usage.completion_tokens, 9);
    assert_int_equal(w.usage.total_tokens, 16);
    ar_buf_dispose(&out);
    fx_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_splice),
        cmocka_unit_test(test_responses_native_request),
        cmocka_unit_test(test_responses_native_answers),
        cmocka_unit_test(test_messages_native_request),
        cmocka_unit_test(test_messages_native_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
