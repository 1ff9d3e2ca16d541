/*
 * test_anthropic.c: unit tests of the anthropic provider (providers/anthropic.c and
 * anthropic_request.c, anthropic_answer.c and anthropic_stream.c, the provider side), on
 * payloads shaped like those of Anthropic's API reference, with golden files under
 * tests/fixtures/providers/anthropic/: OpenAI requests in, Anthropic requests out (system,
 * merged turns, images, tools, tool results, JSON mode, stop sequences); Anthropic messages in,
 * OpenAI completions out (every stop_reason, usage with cache tokens, thinking); error bodies;
 * and SSE transcripts fed whole and split at every byte offset, which must translate to the
 * same OpenAI chunks.
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
#include "providers/anthropic_xlate.h"

#define CREATED 1700000000
#define UPSTREAM_MODEL "claude-3-5-sonnet-20241022"

static const char yaml[] = "credentials:\n"
                           "  - name: claude\n"
                           "    type: anthropic\n"
                           "    api_key: sk-ant-test-0123456789\n"
                           "  - name: claude_local\n"
                           "    type: anthropic\n"
                           "    api_key: sk-ant-local\n"
                           "    base_url: http://127.0.0.1:9/v1\n"
                           "    headers:\n"
                           "      Anthropic-Version: 2024-01-01\n"
                           "      anthropic-beta: prompt-caching-2024-07-31\n";

static fx_t *fx_open(void)
{
    return fx_open_in("providers/anthropic", yaml);
}

static ar_call_t new_call(fx_t *f, json_t *body, bool stream)
{
    ar_call_t c = fx_call(f->pool, AR_EP_CHAT, body, stream, UPSTREAM_MODEL);
    c.public_model = "claude";
    return c;
}

/* Builds the request for fixture `in` and compares its body with `in`.expected.json. */
static ar_http_req_t golden(fx_t *f, ar_provider_t *p, const char *in, int64_t max_out)
{
    ar_call_t call = new_call(f, NULL, false); /* a stream when the fixture says so */
    call.max_output_tokens = max_out;
    return fx_golden_call(f, p, call, in);
}

/* The translated request of an inline OpenAI body, as a tree (json_decref it). */
static json_t *translate(const char *openai, int64_t max_out, int expect_rc, const char **detail)
{
    json_t *in = json_loads(openai, 0, NULL);
    assert_non_null(in);
    json_t *out = NULL;
    const char *d = NULL;
    int rc = ar_anth_request_from_openai(in, "m", max_out, false, &out, &d);
    json_decref(in);
    assert_int_equal(rc, expect_rc);
    if (detail)
        *detail = d;
    if (rc)
        assert_null(out);
    return out;
}

/* ---- requests ---- */

/* reasoning_effort -> thinking with a budget below max_tokens, sampling left out */
static void test_reasoning_effort(void **state)
{
    (void)state;
    static const char msgs[] = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char body[512];
    static const struct {
        const char *effort;
        const char *max; /* the client's max_tokens, "" for none */
        int64_t budget, want_max;
    } cases[] = {
        {"minimal", "", 1024, 4096}, /* the default max is already above the budget */
        {"low", ",\"max_tokens\":1000", 1024, 2024},
        {"medium", "", 4096, 8192}, /* a max equal to the budget is raised too */
        {"high", ",\"max_completion_tokens\":20000", 16384, 20000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body),
                 "{%s,\"reasoning_effort\":\"%s\",\"temperature\":0.2,\"top_p\":0.5,"
                 "\"top_k\":5%s}",
                 msgs, cases[i].effort, cases[i].max);
        json_t *r = translate(body, 0, 0, NULL);
        json_t *th = json_object_get(r, "thinking");
        assert_string_equal(ar_json_str(th, "type"), "enabled");
        assert_int_equal(json_integer_value(json_object_get(th, "budget_tokens")), cases[i].budget);
        assert_int_equal(json_integer_value(json_object_get(r, "max_tokens")), cases[i].want_max);
        assert_null(json_object_get(r, "temperature"));
        assert_null(json_object_get(r, "top_p"));
        assert_null(json_object_get(r, "top_k"));
        assert_null(json_object_get(r, "reasoning_effort"));
        json_decref(r);
    }
    /* "none" (and null): no thinking, sampling kept */
    json_t *r = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                          "\"reasoning_effort\":\"none\",\"temperature\":0.2}",
                          0, 0, NULL);
    assert_null(json_object_get(r, "thinking"));
    assert_json_str(json_object_get(r, "temperature"), "0.2");
    assert_int_equal(json_integer_value(json_object_get(r, "max_tokens")), 4096);
    json_decref(r);
    r = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                  "\"reasoning_effort\":null}",
                  0, 0, NULL);
    assert_null(json_object_get(r, "thinking"));
    json_decref(r);
    /* the client's own thinking wins over reasoning_effort; max_tokens still made room */
    r = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2000,"
                  "\"reasoning_effort\":\"high\",\"thinking\":{\"type\":\"enabled\","
                  "\"budget_tokens\":3000},\"temperature\":0.7}",
                  0, 0, NULL);
    assert_json_str(json_object_get(r, "thinking"),
                    "{\"type\":\"enabled\",\"budget_tokens\":3000}");
    assert_int_equal(json_integer_value(json_object_get(r, "max_tokens")), 5000);
    assert_null(json_object_get(r, "temperature"));
    json_decref(r);
    /* thinking disabled by the client: sampling kept */
    r = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"thinking\":{\"type\":"
                  "\"disabled\"},\"temperature\":0.7}",
                  0, 0, NULL);
    assert_json_str(json_object_get(r, "temperature"), "0.7");
    json_decref(r);
    /* an unknown effort is a clear error */
    const char *detail = NULL;
    assert_null(translate("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                          "\"reasoning_effort\":\"extreme\"}",
                          0, AR_EINVAL, &detail));
    assert_non_null(strstr(detail, "reasoning_effort"));
    assert_null(translate("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                          "\"reasoning_effort\":3}",
                          0, AR_EINVAL, &detail));
    /* the fast path leaves such a request to the tree path */
    ar_buf_t out;
    ar_buf_init(&out, 1u << 20);
    assert_int_equal(ar_anth_request_fast(AR_LIT("{\"messages\":[{\"role\":\"user\",\"content\":"
                                                 "\"x\"}],\"reasoning_effort\":\"low\"}"),
                                          "m", 0, false, &out),
                     AR_EAGAIN);
    ar_buf_dispose(&out);
}

static void test_chat_request(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    /* system + developer -> system blocks, consecutive turns merged, images by URL and
     * base64, stop string, user -> metadata, OpenAI-only fields dropped */
    ar_http_req_t req = golden(f, f->prov[0], "chat_request", 0);
    assert_string_equal(req.url, "https://api.anthropic.com/v1/messages");
    assert_true(has_header(&req, "x-api-key: sk-ant-test-0123456789"));
    assert_true(has_header(&req, "anthropic-version: 2023-06-01"));
    assert_true(has_header(&req, "Content-Type: application/json"));
    assert_int_equal(headers_named(&req, "Authorization:"), 0);
    assert_int_equal(headers_named(&req, "Accept:"), 0);
    assert_int_equal(req.headers_cnt, 3);
    fx_close(f);
}

static void test_tools_request(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    /* tool calls -> tool_use (arguments parsed, "" -> {}), tool messages -> tool_result
     * blocks of one user turn (first, then the user's text), tool_choice function -> tool,
     * parallel_tool_calls false -> disable_parallel_tool_use, max_completion_tokens wins */
    golden(f, f->prov[0], "tools_request", 0);
    fx_close(f);
}

static void test_json_mode_stream_request(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    /* json_schema -> a system instruction quoting the schema after the client's system
     * block (cache_control kept); max_tokens from the deployment; stream */
    ar_http_req_t req = golden(f, f->prov[0], "json_mode_request", 8192);
    assert_true(has_header(&req, "Accept: text/event-stream"));
    assert_int_equal(req.headers_cnt, 4);
    fx_close(f);
}

static void test_request_defaults(void **state)
{
    (void)state;
    /* no max_tokens anywhere: 4096; a plain system string stays a string */
    json_t *r = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, 0, NULL);
    assert_json_str(r, "{\"model\":\"m\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\","
                       "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}]}");
    json_decref(r);
    /* json_object without a system prompt: the instruction is the system string */
    r = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":"
                  "{\"type\":\"json_object\"},\"max_tokens\":5}",
                  100, 0, NULL);
    assert_true(json_is_string(json_object_get(r, "system")));
    assert_non_null(strstr(json_string_value(json_object_get(r, "system")), "JSON object"));
    assert_int_equal(json_integer_value(json_object_get(r, "max_tokens")), 5);
    json_decref(r);
    /* response_format text: nothing added */
    r = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":"
                  "{\"type\":\"text\"}}",
                  100, 0, NULL);
    assert_null(json_object_get(r, "system"));
    assert_int_equal(json_integer_value(json_object_get(r, "max_tokens")), 100);
    json_decref(r);
    /* tool_choice strings; no tools: no tool_choice at all */
    static const struct {
        const char *choice, *want;
    } choices[] = {
        {"\"auto\"", "{\"type\":\"auto\"}"},
        {"\"none\"", "{\"type\":\"none\"}"},
        {"\"required\"", "{\"type\":\"any\"}"},
    };
    for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":"
                 "\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":%s}",
                 choices[i].choice);
        r = translate(body, 0, 0, NULL);
        assert_json_str(json_object_get(r, "tool_choice"), choices[i].want);
        json_decref(r);
    }
    r = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":"
                  "\"required\"}",
                  0, 0, NULL);
    assert_null(json_object_get(r, "tool_choice"));
    assert_null(json_object_get(r, "tools"));
    json_decref(r);
    /* parallel_tool_calls false alone: auto without parallel use; with none: unchanged */
    r = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":"
                  "\"function\",\"function\":{\"name\":\"f\"}}],\"parallel_tool_calls\":false}",
                  0, 0, NULL);
    assert_json_str(json_object_get(r, "tool_choice"),
                    "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}");
    json_decref(r);
    r = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":"
                  "\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"none\","
                  "\"parallel_tool_calls\":false}",
                  0, 0, NULL);
    assert_json_str(json_object_get(r, "tool_choice"), "{\"type\":\"none\"}");
    json_decref(r);
    /* stop arrays keep their non-empty strings; empty content and empty text parts vanish */
    r = translate("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                  "\"\"},{\"type\":\"text\",\"text\":\"x\"}]},{\"role\":\"assistant\",\"content\":"
                  "\"\"}],\"stop\":[\"END\",\"\",\"STOP\"]}",
                  0, 0, NULL);
    assert_json_str(json_object_get(r, "stop_sequences"), "[\"END\",\"STOP\"]");
    assert_json_str(json_object_get(r, "messages"),
                    "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]");
    json_decref(r);
    /* a tool message first opens a user turn; a file part becomes a document */
    r = translate("{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":null},"
                  "{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{\"file_data\":"
                  "\"data:application/pdf;base64,JVBERi0=\"}}]}],\"thinking\":{\"type\":"
                  "\"enabled\",\"budget_tokens\":1024}}",
                  0, 0, NULL);
    assert_json_str(json_object_get(r, "messages"),
                    "[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
                    "\"t1\",\"content\":\"\"},{\"type\":\"document\",\"source\":{\"type\":"
                    "\"base64\",\"media_type\":\"application/pdf\",\"data\":\"JVBERi0=\"}}]}]");
    assert_json_str(json_object_get(r, "thinking"),
                    "{\"type\":\"enabled\",\"budget_tokens\":1024}");
    json_decref(r);
}

static void test_request_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *detail_part;
    } cases[] = {
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"type\":"
         "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{not json\"}}]}]}",
         "arguments is not a JSON object"},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"type\":"
         "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1,2]\"}}]}]}",
         "arguments is not a JSON object"},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}",
         "need an 'id'"},
        {"{\"messages\":[{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}",
         "unsupported message role"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
         "{\"url\":\"ftp://x/y.png\"}}]}]}",
         "must be https://"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
         "{\"url\":\"data:image/png,abc\"}}]}]}",
         "must be base64"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
         "unsupported content part"},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "tool_call_id"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
         "{\"url\":\"https://x/y.png\"}}]},{\"role\":\"user\",\"content\":\"x\"}]}",
         "only hold text"},
        {"{\"messages\":[]}", "non-empty array"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"only a system prompt\"}]}",
         "at least one user or assistant"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
         "\"web_search\"}]}",
         "only tools of type 'function'"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
         "\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"sometimes\"}",
         "'tool_choice' must be"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":42}]}", "must be a string or an array"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *detail = NULL;
        json_t *r = translate(cases[i].body, 0, AR_EINVAL, &detail);
        assert_null(r);
        assert_non_null(detail);
        if (!strstr(detail, cases[i].detail_part))
            fail_msg("case %zu: detail '%s' lacks '%s'", i, detail, cases[i].detail_part);
    }
    /* the provider hook returns the same code */
    fx_t *f = fx_open();
    json_t *body = json_loads(cases[0].body, 0, NULL);
    ar_call_t call = new_call(f, body, false);
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[0], &call, &req), AR_EINVAL);
    json_decref(body);
    fx_close(f);
}

/* Builds the request both ways and checks they mean the same: the raw fast path for the
 * common shape must never drift from the tree translation. */
static void expect_fast_equals_tree(const char *raw, int64_t max_default, bool stream)
{
    json_t *tree_in = json_loads(raw, 0, NULL);
    assert_non_null(tree_in);
    json_t *tree_out = NULL;
    const char *detail = NULL;
    assert_int_equal(
        ar_anth_request_from_openai(tree_in, "claude-x", max_default, stream, &tree_out, &detail),
        0);
    ar_buf_t fast;
    ar_buf_init(&fast, 1u << 20);
    assert_int_equal(
        ar_anth_request_fast(ar_span_cstr(raw), "claude-x", max_default, stream, &fast), 0);
    assert_json_text(fast.ptr, fast.len, tree_out);
    ar_buf_dispose(&fast);
    json_decref(tree_out);
    json_decref(tree_in);
}

static void expect_not_fast(const char *raw)
{
    ar_buf_t fast;
    ar_buf_init(&fast, 1u << 20);
    assert_int_equal(ar_anth_request_fast(ar_span_cstr(raw), "claude-x", 0, false, &fast),
                     AR_EAGAIN);
    ar_buf_dispose(&fast);
}

static void test_fast_request_matches_tree(void **state)
{
    (void)state;
    expect_fast_equals_tree(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", 0, false);
    expect_fast_equals_tree(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"a \\\"quoted\\\" \\u00e9\\n line\"},"
        "{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":\"more\"}],"
        "\"max_tokens\":77,\"temperature\":0.2,\"top_p\":0.9,\"stop\":[\"END\",\"\",\"STOP\"],"
        "\"user\":\"u1\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
        1024, true);
    expect_fast_equals_tree(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"one\"},"
        "{\"role\":\"system\",\"content\":\"two\"},{\"role\":\"user\",\"content\":\"x\"}],"
        "\"max_completion_tokens\":5,\"max_tokens\":9,\"stop\":\"END\"}",
        0, false);
    expect_fast_equals_tree("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":null}",
                            333, false);
    /* anything else takes the tree path */
    expect_not_fast("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                    "{\"role\":\"user\",\"content\":\"b\"}]}");
    expect_not_fast("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                    "\"text\",\"text\":\"a\"}]}]}");
    expect_not_fast("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}");
    expect_not_fast(
        "{\"model\":\"m\",\"tools\":[],\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}");
    expect_not_fast(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"name\":\"n\",\"content\":\"a\"}]}");
    expect_not_fast("{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"a\"}]}");
    expect_not_fast("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"only\"}]}");
    expect_not_fast("{\"model\":\"m\",\"max_tokens\":1.5,\"messages\":[{\"role\":\"user\","
                    "\"content\":\"a\"}]}");
    expect_not_fast(
        "{\"model\":\"m\",\"stop\":[1],\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}");
}

static void test_urls_and_headers(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0, NULL);
    ar_call_t call = new_call(f, body, true);
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[1], &call, &req), 0);
    /* a base_url ending in /v1 is not doubled; a configured anthropic-version wins */
    assert_string_equal(req.url, "http://127.0.0.1:9/v1/messages");
    assert_int_equal(headers_named(&req, "anthropic-version:"), 1);
    assert_true(has_header(&req, "Anthropic-Version: 2024-01-01"));
    assert_true(has_header(&req, "anthropic-beta: prompt-caching-2024-07-31"));
    assert_true(has_header(&req, "x-api-key: sk-ant-local"));
    assert_true(has_header(&req, "Accept: text/event-stream"));
    /* chat only: no completions, no embeddings, no model discovery */
    call.endpoint = AR_EP_EMBEDDINGS;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_build(f->prov[0], &call, &req), AR_ENOTFOUND);
    call.endpoint = AR_EP_COMPLETIONS;
    assert_int_equal(ar_provider_build(f->prov[0], &call, &req), AR_ENOTFOUND);
    assert_true(ar_provider_can(f->prov[0], AR_PROV_STREAM | AR_PROV_TOOLS));
    assert_false(ar_provider_can(f->prov[0], AR_PROV_EMBED));
    assert_false(ar_provider_can(f->prov[0], AR_PROV_COMPLETIONS));
    assert_false(ar_provider_can(f->prov[0], AR_PROV_MODELS));
    assert_false(ar_provider_can(f->prov[0], AR_PROV_OPENAI_WIRE));
    json_decref(body);
    fx_close(f);
}

/* ---- whole answers ---- */

static void response_golden(fx_t *f, const char *in, ar_usage_t *u)
{
    fx_gold_t g = fx_gold_open(f->dir, in, ".json");
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    memset(u, 0, sizeof(*u));
    assert_int_equal(ar_anth_response_to_openai(ar_span(g.text, g.len), CREATED, u, &out), 0);
    assert_json_text(out.ptr, out.len, g.want);
    /* the provider hook gives the same answer (with the current time) */
    json_t *req = json_loads("{}", 0, NULL);
    ar_call_t call = new_call(f, req, false);
    ar_buf_reset(&out);
    assert_int_equal(ar_provider_parse_response(f->prov[0], &call, ar_span(g.text, g.len), &out),
                     0);
    json_t *got = json_loadb(out.ptr, out.len, 0, NULL);
    json_object_set_new(got, "created", json_integer(CREATED));
    assert_json_equal(got, g.want);
    assert_int_equal(call.usage.prompt_tokens, u->prompt_tokens);
    assert_int_equal(call.usage.cached_tokens, u->cached_tokens);
    assert_int_equal(call.usage.cache_creation_tokens, u->cache_creation_tokens);
    json_decref(got);
    json_decref(req);
    ar_buf_dispose(&out);
    fx_gold_close(&g);
}

static void test_responses(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_usage_t u;
    /* text blocks joined; prompt = input + cache reads + cache writes */
    response_golden(f, "response_text", &u);
    assert_true(u.seen);
    assert_int_equal(u.prompt_tokens, 2095 + 1800 + 100);
    assert_int_equal(u.completion_tokens, 503);
    assert_int_equal(u.total_tokens, 3995 + 503);
    assert_int_equal(u.cached_tokens, 1800);
    assert_int_equal(u.cache_creation_tokens, 100);
    assert_int_equal(u.reasoning_tokens, 0); /* Anthropic does not count thinking apart */
    /* tool_use -> tool_calls with arguments as JSON text */
    response_golden(f, "response_tool_use", &u);
    assert_int_equal(u.prompt_tokens, 472);
    /* thinking -> reasoning_content; redacted_thinking dropped; max_tokens -> length */
    response_golden(f, "response_thinking", &u);
    fx_close(f);
}

static void test_stop_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *stop, *finish;
    } cases[] = {
        {"\"end_turn\"", "stop"},
        {"\"stop_sequence\"", "stop"},
        {"\"max_tokens\"", "length"},
        {"\"tool_use\"", "tool_calls"},
        {"\"refusal\"", "content_filter"},
        {"\"pause_turn\"", "stop"},
        {"\"model_context_window_exceeded\"", "length"},
        {"null", "stop"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"id\":\"msg_1\",\"model\":\"c\",\"content\":[{\"type\":\"text\",\"text\":"
                 "\"x\"}],\"stop_reason\":%s}",
                 cases[i].stop);
        ar_buf_t out;
        ar_buf_init(&out, 1 << 20);
        ar_usage_t u = {0};
        assert_int_equal(ar_anth_response_to_openai(ar_span_cstr(body), CREATED, &u, &out), 0);
        json_t *got = json_loadb(out.ptr, out.len, 0, NULL);
        json_t *choice = json_array_get(json_object_get(got, "choices"), 0);
        assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")),
                            cases[i].finish);
        /* no usage in the answer: none invented */
        assert_false(u.seen);
        assert_null(json_object_get(got, "usage"));
        json_decref(got);
        ar_buf_dispose(&out);
    }
    /* the stream events use the same table */
    assert_string_equal(ar_anth_finish_reason(AR_LIT("refusal")), "content_filter");
    assert_string_equal(ar_anth_finish_reason(AR_SPAN_NULL), "stop");
}

static void test_response_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {"not json", "{\"content\":\"x\"}", "[1]", "",
                                      "{\"id\":\"m\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ar_buf_t out;
        ar_buf_init(&out, 1 << 20);
        ar_usage_t u = {0};
        assert_int_equal(ar_anth_response_to_openai(ar_span_cstr(bad[i]), CREATED, &u, &out),
                         AR_EUPSTREAM);
        ar_buf_dispose(&out);
    }
    /* an empty content list is a valid (empty) answer */
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    ar_usage_t u = {0};
    assert_int_equal(ar_anth_response_to_openai(AR_LIT("{\"id\":\"m\",\"content\":[],"
                                                       "\"stop_reason\":\"end_turn\"}"),
                                                CREATED, &u, &out),
                     0);
    json_t *got = json_loadb(out.ptr, out.len, 0, NULL);
    assert_json_str(json_object_get(json_array_get(json_object_get(got, "choices"), 0), "message"),
                    "{\"role\":\"assistant\",\"content\":\"\"}");
    json_decref(got);
    ar_buf_dispose(&out);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_upstream_err_t e;
    fx_parse_error_fixture(f, 529, "error_overloaded", &e);
    assert_int_equal(e.status, 529);
    assert_string_equal(e.message, "Overloaded");
    assert_string_equal(e.type, "api_error");
    assert_string_equal(e.code, "overloaded_error");

    fx_parse_error_fixture(f, 400, "error_invalid_request", &e);
    assert_string_equal(e.type, "invalid_request_error");
    assert_null(e.code);
    assert_true(
        strncmp(e.message, "messages.1.content.0.tool_result: unexpected `tool_use_id`", 58) == 0);
    assert_non_null(strstr(e.message, "previous message.\n")); /* decoded, not escaped */

    static const struct {
        int status;
        const char *anth, *type, *code;
    } types[] = {
        {401, "authentication_error", "authentication_error", NULL},
        {403, "permission_error", "permission_error", NULL},
        {404, "not_found_error", "not_found_error", NULL},
        {413, "request_too_large", "invalid_request_error", "request_too_large"},
        {429, "rate_limit_error", "rate_limit_error", NULL},
        {500, "api_error", "api_error", NULL},
        {504, "timeout_error", "timeout_error", NULL},
        {402, "billing_error", "invalid_request_error", "billing_error"},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"m%zu\"}}",
                 types[i].anth, i);
        fx_parse_error(f, types[i].status, ar_span_cstr(body), &e);
        assert_string_equal(e.type, types[i].type);
        if (types[i].code)
            assert_string_equal(e.code, types[i].code);
        else
            assert_null(e.code);
        char m[8];
        snprintf(m, sizeof(m), "m%zu", i);
        assert_string_equal(e.message, m);
    }
    /* a type this table does not know: no OpenAI type (the status decides), name kept */
    fx_parse_error(f, 418,
                   AR_LIT("{\"type\":\"error\",\"error\":{\"type\":\"teapot_error\","
                          "\"message\":\"short and stout\"}}"),
                   &e);
    assert_null(e.type);
    assert_string_equal(e.code, "teapot_error");
    assert_string_equal(e.message, "short and stout");
    /* not Anthropic's shape: a printable prefix; nothing: the status */
    fx_parse_error(f, 502, AR_LIT("<html>\r\n<h1>502 Bad Gateway</h1>\n</html>"), &e);
    assert_string_equal(e.message, "<html>  <h1>502 Bad Gateway</h1> </html>");
    assert_null(e.type);
    fx_parse_error(f, 529, AR_SPAN_NULL, &e);
    assert_string_equal(e.message, "upstream answered 529");
    fx_close(f);
}

/* ---- streams ---- */

/* A fresh call whose stream state has a fixed `created`. */
static ar_call_t stream_call(fx_t *f, json_t *body, bool want_usage)
{
    ar_call_t call = new_call(f, body, true);
    call.client_wants_usage = want_usage;
    ar_anth_stream_t *st = ar_pool_alloc(f->pool, sizeof(*st));
    ar_anth_stream_init(st, CREATED);
    call.pstate = st;
    return call;
}

/* The payloads of "data: X\n\n" frames as a JSON array ("[DONE]" stays a string). */
static json_t *frames_json(ar_span_t s)
{
    json_t *arr = json_array();
    const char *p = s.ptr;
    const char *end = s.ptr + s.len;
    while (p < end) {
        assert_true(end - p > 6 && memcmp(p, "data: ", 6) == 0);
        p += 6;
        const char *e = strstr(p, "\n\n");
        assert_non_null(e);
        if (e - p == 6 && memcmp(p, "[DONE]", 6) == 0) {
            json_array_append_new(arr, json_string("[DONE]"));
        } else {
            json_error_t je;
            json_t *v = json_loadb(p, (size_t)(e - p), 0, &je);
            if (!v)
                fail_msg("frame is not JSON (%s): %.*s", je.text, (int)(e - p), p);
            json_array_append_new(arr, v);
        }
        p = e + 2;
    }
    return arr;
}

/* Runs a transcript whole, checks it against its golden chunks, then split at every byte
 * offset (which must give the same bytes). @return the usage of the whole run. */
static ar_usage_t stream_golden(fx_t *f, const char *name, bool want_usage)
{
    fx_gold_t g = fx_gold_open(f->dir, name, ".sse");
    if (!want_usage) {
        /* without include_usage the usage-only chunk is left out */
        for (size_t i = 0; i < json_array_size(g.want); i++) {
            json_t *c = json_object_get(json_array_get(g.want, i), "choices");
            if (json_is_array(c) && json_array_size(c) == 0)
                json_array_remove(g.want, i--);
        }
    }
    json_t *body = json_loads("{\"stream\":true}", 0, NULL);
    ar_call_t call = stream_call(f, body, want_usage);
    ar_buf_t whole;
    assert_int_equal(fx_translate(f->prov[0], &call, ar_span(g.text, g.len), g.len, &whole), 0);
    assert_true(call.stream_done);
    json_t *got = frames_json(ar_buf_span(&whole));
    assert_json_equal(got, g.want);
    json_decref(got);
    ar_usage_t usage = call.usage;
    for (size_t split = 0; split < g.len; split++) {
        ar_call_t c2 = stream_call(f, body, want_usage);
        ar_buf_t out;
        assert_int_equal(fx_translate(f->prov[0], &c2, ar_span(g.text, g.len), split, &out), 0);
        fx_assert_split_same(name, split, ar_buf_span(&out), ar_buf_span(&whole));
        assert_true(c2.stream_done);
        assert_int_equal(c2.usage.prompt_tokens, usage.prompt_tokens);
        assert_int_equal(c2.usage.completion_tokens, usage.completion_tokens);
        ar_buf_dispose(&out);
    }
    ar_buf_dispose(&whole);
    json_decref(body);
    fx_gold_close(&g);
    return usage;
}

static void test_stream_text(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    /* escapes and UTF-8 copied as they are; usage chunk after the finish chunk */
    ar_usage_t u = stream_golden(f, "stream_text", true);
    assert_true(u.seen);
    assert_int_equal(u.prompt_tokens, 35);
    assert_int_equal(u.completion_tokens, 15);
    assert_int_equal(u.cached_tokens, 10);
    assert_int_equal(u.cache_creation_tokens, 0);
    /* usage recorded even when the client did not ask for the chunk */
    u = stream_golden(f, "stream_text", false);
    assert_true(u.seen);
    assert_int_equal(u.total_tokens, 50);
    fx_close(f);
}

static void test_stream_tool_use(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    /* text, then two tool_use blocks: OpenAI indexes 0 and 1, arguments in pieces, the
     * empty opening piece dropped; the final event lacks its blank line */
    ar_usage_t u = stream_golden(f, "stream_tool_use", false);
    assert_int_equal(u.prompt_tokens, 472);
    assert_int_equal(u.completion_tokens, 89);
    fx_close(f);
}

static void test_stream_thinking(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    /* thinking_delta -> reasoning_content, signature_delta dropped, max_tokens -> length */
    stream_golden(f, "stream_thinking", false);
    fx_close(f);
}

/* Feeds single events (data only) to one fresh stream; returns the last rc. */
static int events(fx_t *f, ar_call_t *call, const char *const *data, size_t cnt, ar_buf_t *out)
{
    int rc = 0;
    for (size_t i = 0; i < cnt && rc == 0; i++)
        rc = fx_event(f->prov[0], call, data[i], out);
    return rc;
}

#define START                                                                                      \
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\",\"usage\":{"        \
    "\"input_tokens\":3,\"output_tokens\":1}}}"

static void test_stream_errors(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_loads("{\"stream\":true}", 0, NULL);
    static const struct {
        const char *data[3];
        size_t cnt;
        int rc;
    } cases[] = {
        /* malformed event JSON */
        {{START, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                 "\"text_delta\",\"text\":\"unterminated}}"},
         2,
         AR_EUPSTREAM},
        {{"{not json"}, 1, AR_EUPSTREAM},
        {{"[DONE]"}, 1, AR_EUPSTREAM},
        /* an error event mid-stream (overloaded) */
        {{START, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                 "\"Overloaded\"}}"},
         2,
         AR_EUPSTREAM},
        /* content before message_start */
        {{"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
          "\"text\":\"x\"}}"},
         1,
         AR_EUPSTREAM},
        /* the compact spelling (recognised without a key scan) checks its text all the
         * same: a raw control character, a bad escape */
        {{START, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                 "\"text_delta\",\"text\":\"a\x01b\"}}"},
         2,
         AR_EUPSTREAM},
        {{START, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                 "\"text_delta\",\"text\":\"a\\qb\"}}"},
         2,
         AR_EUPSTREAM},
        /* nearly compact (a member after the text) takes the general path and works */
        {{START, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                 "\"text_delta\",\"text\":\"ab\",\"x\":1}}"},
         2,
         0},
        /* a delta without its field */
        {{START, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                 "\"text_delta\"}}"},
         2,
         AR_EUPSTREAM},
        /* a second message_start */
        {{START, START}, 2, AR_EUPSTREAM},
        /* ping, unknown types and blank data are no-ops */
        {{START, "{\"type\": \"ping\"}", "{\"type\":\"future_event\",\"x\":1}"}, 3, 0},
        {{"{\"type\":\"ping\"}", "  "}, 2, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ar_call_t call = stream_call(f, body, false);
        ar_buf_t out;
        ar_buf_init(&out, 1 << 20);
        int rc = events(f, &call, cases[i].data, cases[i].cnt, &out);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, want %d", i, rc, cases[i].rc);
        ar_buf_dispose(&out);
    }
    /* a message too long for a chunk head fails instead of being cut */
    char big[1024];
    int n = snprintf(big, sizeof(big), "{\"type\":\"message_start\",\"message\":{\"id\":\"");
    memset(big + n, 'x', 700);
    snprintf(big + n + 700, sizeof(big) - (size_t)n - 700, "\",\"model\":\"c\"}}");
    const char *one[] = {big};
    ar_call_t call = stream_call(f, body, false);
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    assert_int_equal(events(f, &call, one, 1, &out), AR_EUPSTREAM);
    ar_buf_dispose(&out);
    json_decref(body);
    fx_close(f);
}

static void test_stream_cache_usage(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_loads("{\"stream\":true}", 0, NULL);
    /* cache reads and writes come with message_start; message_delta repeats totals */
    const char *ev[] = {
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\",\"usage\":{"
        "\"input_tokens\":5,\"cache_creation_input_tokens\":2000,\"cache_read_input_tokens\":"
        "300,\"output_tokens\":1}}}",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{"
        "\"input_tokens\":5,\"cache_creation_input_tokens\":2000,\"cache_read_input_tokens\":"
        "300,\"output_tokens\":40}}"};
    ar_call_t call = stream_call(f, body, true);
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    assert_int_equal(events(f, &call, ev, 2, &out), 0);
    assert_int_equal(call.usage.prompt_tokens, 2305);
    assert_int_equal(call.usage.cached_tokens, 300);
    assert_int_equal(call.usage.cache_creation_tokens, 2000);
    assert_int_equal(call.usage.completion_tokens, 40);
    assert_int_equal(call.usage.total_tokens, 2345);
    static const char want[] = "\"usage\":{\"prompt_tokens\":2305,\"completion_tokens\":40,"
                               "\"total_tokens\":2345,\"prompt_tokens_details\":{"
                               "\"cached_tokens\":300}}";
    assert_non_null(memmem(out.ptr, out.len, want, sizeof(want) - 1));
    ar_buf_dispose(&out);
    json_decref(body);
    fx_close(f);
}

static void test_stream_end(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_loads("{\"stream\":true}", 0, NULL);
    /* cut after message_delta: [DONE] is added at the end */
    const char *cut[] = {START,
                         "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                         "\"usage\":{\"output_tokens\":4}}"};
    ar_call_t call = stream_call(f, body, true);
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    assert_int_equal(events(f, &call, cut, 2, &out), 0);
    assert_false(call.stream_done);
    size_t before = out.len;
    assert_int_equal(ar_provider_end_stream(f->prov[0], &call, &out), 0);
    assert_true(call.stream_done);
    assert_int_equal(out.len - before, strlen("data: [DONE]\n\n"));
    assert_memory_equal(out.ptr + before, "data: [DONE]\n\n", out.len - before);
    /* the usage chunk (asked for) came with message_delta */
    assert_non_null(memmem(out.ptr, before, "\"choices\":[],\"usage\":{\"prompt_tokens\":3,", 39));
    /* a second end adds nothing */
    before = out.len;
    assert_int_equal(ar_provider_end_stream(f->prov[0], &call, &out), 0);
    assert_int_equal(out.len, before);
    /* cut before message_delta: nothing, the stream stays unfinished */
    call = stream_call(f, body, false);
    ar_buf_reset(&out);
    assert_int_equal(events(f, &call, cut, 1, &out), 0);
    before = out.len;
    assert_int_equal(ar_provider_end_stream(f->prov[0], &call, &out), 0);
    assert_int_equal(out.len, before);
    assert_false(call.stream_done);
    /* no event at all: no state, nothing */
    ar_call_t empty = new_call(f, body, true);
    assert_int_equal(ar_provider_end_stream(f->prov[0], &empty, &out), 0);
    assert_null(empty.pstate);
    ar_buf_dispose(&out);
    json_decref(body);
    fx_close(f);
}

/* Issue 7, item 4(a): bodies the tree path cannot load are the client's 400 (AR_EINVAL with
 * the reason), not AR_EPARSE, which the gateway answered 502 and counted against the
 * credential. */
static void test_untranslatable_bodies(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    fx_assert_untranslatable(f, f->prov[0], AR_EP_CHAT,
                             "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"hi\"}],\"max_tokens\":%s}");
    fx_assert_untranslatable(f, f->prov[0], AR_EP_CHAT,
                             "{\"model\":\"c\",\"tags\":[\"x\"],\"messages\":[{\"role\":\"user\","
                             "\"content\":[{\"type\":\"text\",\"text\":%s}]}]}");
    fx_close(f);
}

/* The frames of out, each parsed by jansson (which also checks UTF-8); the array of
 * chunks (json_decref it). */
static json_t *chunks_of(ar_span_t out)
{
    json_t *all = json_array();
    const char *p = out.ptr, *end = out.ptr + out.len;
    while (p < end) {
        assert_true(end - p > 6 && memcmp(p, "data: ", 6) == 0);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        json_error_t je;
        json_t *v = json_loadb(p + 6, (size_t)(nl - p - 6), 0, &je);
        if (!v)
            fail_msg("chunk is not JSON (%s): %.*s", je.text, (int)(nl - p), p);
        json_array_append_new(all, v);
        p = nl + 2;
    }
    return all;
}

/* Issue 7, item 8: message_start's id and model and a tool_use block's id and name were
 * copied into every chunk as they came: raw control characters or a broken escape in them
 * made each chunk invalid JSON. They are escaped now. */
static void test_stream_ids_escaped(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    json_t *body = json_loads("{\"stream\":true}", 0, NULL);
    const char *data[] = {
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_\x01\\\"q\\\"\\u00e9\\x\","
        "\"model\":\"claude\tx\\\\\",\"usage\":{\"input_tokens\":3}}}",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_\x1f\",\"name\":\"get\ntime\\u12\",\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"hi\"}}",
    };
    ar_call_t call = stream_call(f, body, false);
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    assert_int_equal(events(f, &call, data, 3, &out), 0);
    json_t *chunks = chunks_of(ar_buf_span(&out));
    assert_int_equal(json_array_size(chunks), 3);
    size_t i;
    json_t *c;
    json_array_foreach (chunks, i, c) {
        assert_string_equal(ar_json_str(c, "id"), "chatcmpl-msg_\x01\"q\"\xc3\xa9\\x");
        assert_string_equal(ar_json_str(c, "model"), "claude\tx\\");
    }
    json_t *tc = json_array_get(
        json_object_get(
            json_object_get(
                json_array_get(json_object_get(json_array_get(chunks, 1), "choices"), 0), "delta"),
            "tool_calls"),
        0);
    assert_string_equal(ar_json_str(tc, "id"), "toolu_\x1f");
    assert_string_equal(ar_json_str(json_object_get(tc, "function"), "name"), "get\ntime\\u12");
    json_decref(chunks);
    ar_buf_dispose(&out);
    json_decref(body);

    /* bytes that are not UTF-8 and half surrogate pairs in the id become U+FFFD: a chunk
     * with them would be refused by a strict JSON reader (and by airouter's own validator) */
    body = json_loads("{\"stream\":true}", 0, NULL);
    const char *odd[] = {
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_\xff\\ud800x\\udc00\\ud83d\\ude00\","
        "\"model\":\"c\xc3\",\"usage\":{\"input_tokens\":3}}}",
    };
    call = stream_call(f, body, false);
    ar_buf_init(&out, 1 << 20);
    assert_int_equal(events(f, &call, odd, 1, &out), 0);
    ar_span_t frame = ar_buf_span(&out);
    assert_true(frame.len > 8 && memcmp(frame.ptr, "data: ", 6) == 0);
    frame = ar_span(frame.ptr + 6, frame.len - 8); /* without "data: " and the blank line */
    assert_int_equal(ar_json_validate(frame, NULL, 0), 0);
    chunks = chunks_of(ar_buf_span(&out));
    c = json_array_get(chunks, 0);
    assert_string_equal(ar_json_str(c, "id"),
                        "chatcmpl-msg_\xef\xbf\xbd\xef\xbf\xbdx\xef\xbf\xbd\xf0\x9f\x98\x80");
    assert_string_equal(ar_json_str(c, "model"), "c\xef\xbf\xbd");
    json_decref(chunks);
    ar_buf_dispose(&out);
    json_decref(body);
    fx_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_request),
        cmocka_unit_test(test_reasoning_effort),
        cmocka_unit_test(test_fast_request_matches_tree),
        cmocka_unit_test(test_tools_request),
        cmocka_unit_test(test_json_mode_stream_request),
        cmocka_unit_test(test_request_defaults),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_urls_and_headers),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_stop_reasons),
        cmocka_unit_test(test_response_malformed),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_tool_use),
        cmocka_unit_test(test_stream_thinking),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_end),
        cmocka_unit_test(test_stream_cache_usage),
        cmocka_unit_test(test_untranslatable_bodies),
        cmocka_unit_test(test_stream_ids_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
