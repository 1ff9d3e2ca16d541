/*
 * test_responses.c: unit tests of the Responses front (src/fronts): Responses requests into
 * chat requests (items, tools, tool_choice, text formats, reasoning, history, and every
 * refusal: AR_EINVAL with the field named, AR_ENOTSUP for what needs a native upstream);
 * the request's input as stored items; whole chat answers into response objects; chat chunk
 * streams into the Responses event sequence (text, reasoning, tool calls, usage, incomplete,
 * errors, escapes split across chunks, garbage).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fronts/responses.h"
#include "testutil.h"

static json_t *loads(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    if (!v)
        fail_msg("test JSON: %s: %s", je.text, text);
    return v;
}

/* The chat translation of an inline Responses body (history: NULL or JSON text). */
static json_t *to_chat(const char *body, const char *history, int want_rc, char *err, size_t errlen)
{
    json_t *in = loads(body);
    json_t *hist = history ? loads(history) : NULL;
    json_t *out = NULL;
    char buf[512] = "";
    int rc = ar_resp_request_to_chat(in, hist, &out, buf, sizeof(buf));
    json_decref(in);
    json_decref(hist);
    if (rc != want_rc)
        fail_msg("rc %d, want %d (%s) for %s", rc, want_rc, buf, body);
    if (rc)
        assert_null(out);
    if (err)
        snprintf(err, errlen, "%s", buf);
    return out;
}

/* ---- requests ---- */

static void test_request_string_input(void **state)
{
    (void)state;
    json_t *r = to_chat("{\"model\":\"gpt-x\",\"instructions\":\"Be terse.\",\"input\":\"Hi\","
                        "\"stream\":true,\"temperature\":0.5,\"top_p\":0.9,\"user\":\"u1\","
                        "\"max_output_tokens\":100,\"parallel_tool_calls\":false,"
                        "\"prompt_cache_key\":\"k\",\"safety_identifier\":\"s\","
                        "\"service_tier\":\"flex\",\"store\":true,\"metadata\":{\"a\":\"b\"},"
                        "\"previous_response_id\":null,\"include\":[\"x\"],"
                        "\"truncation\":\"auto\",\"background\":false,\"unknown_field\":1}",
                        NULL, 0, NULL, 0);
    assert_json_str(r, "{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"system\",\"content\":"
                       "\"Be terse.\"},{\"role\":\"user\",\"content\":\"Hi\"}],\"temperature\":"
                       "0.5,\"top_p\":0.9,\"parallel_tool_calls\":false,\"user\":\"u1\","
                       "\"prompt_cache_key\":\"k\",\"safety_identifier\":\"s\",\"service_tier\":"
                       "\"flex\",\"max_completion_tokens\":100,\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true}}");
    json_decref(r);
    /* a model list is passed as given; no stream, no stream_options */
    r = to_chat("{\"model\":[\"a\",\"b\"],\"input\":\"Hi\",\"stream\":false}", NULL, 0, NULL, 0);
    assert_json_str(r, "{\"model\":[\"a\",\"b\"],\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"Hi\"}]}");
    json_decref(r);
}

static void test_request_items(void **state)
{
    (void)state;
    /* every message form, a function call round trip (the assistant's text and its calls in
     * one message), tool outputs as strings and text parts, reasoning dropped */
    json_t *r = to_chat(
        "{\"model\":\"m\",\"input\":["
        "{\"role\":\"developer\",\"content\":\"Rules.\"},"
        "{\"type\":\"message\",\"role\":\"system\",\"content\":[{\"type\":\"input_text\","
        "\"text\":\"A\"},{\"type\":\"input_text\",\"text\":\"B\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Look\"},"
        "{\"type\":\"input_image\",\"image_url\":\"https://x/i.png\",\"detail\":\"low\"},"
        "{\"type\":\"input_file\",\"filename\":\"a.pdf\",\"file_data\":\"data:application/"
        "pdf;base64,AAAA\"}]},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[],\"encrypted_content\":\"xx\"},"
        "{\"type\":\"message\",\"id\":\"msg_1\",\"status\":\"completed\",\"role\":\"assistant\","
        "\"content\":[{\"type\":\"output_text\",\"text\":\"Calling.\",\"annotations\":[]}]},"
        "{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_a\",\"name\":\"f\","
        "\"arguments\":\"{\\\"x\\\":1}\",\"status\":\"completed\"},"
        "{\"type\":\"function_call\",\"call_id\":\"call_b\",\"name\":\"g\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_a\",\"output\":\"42\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_b\",\"output\":[{\"type\":"
        "\"input_text\",\"text\":\"o\"},{\"type\":\"input_text\",\"text\":\"k\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"call_c\",\"name\":\"h\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_c\",\"output\":[{\"type\":"
        "\"input_text\",\"text\":\"see\"},{\"type\":\"input_image\",\"image_url\":"
        "\"data:image/png;base64,AA\"}]},"
        "{\"role\":\"assistant\",\"content\":\"Done.\"}]}",
        NULL, 0, NULL, 0);
    assert_json_str(
        json_object_get(r, "messages"),
        "[{\"role\":\"developer\",\"content\":\"Rules.\"},"
        "{\"role\":\"system\",\"content\":\"AB\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Look\"},{\"type\":"
        "\"image_url\",\"image_url\":{\"url\":\"https://x/i.png\",\"detail\":\"low\"}},"
        "{\"type\":\"file\",\"file\":{\"file_data\":\"data:application/pdf;base64,AAAA\","
        "\"filename\":\"a.pdf\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"Calling.\",\"tool_calls\":["
        "{\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
        "\"{\\\"x\\\":1}\"}},{\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":"
        "\"g\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_a\",\"content\":\"42\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_b\",\"content\":\"ok\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_c\",\"type\":"
        "\"function\",\"function\":{\"name\":\"h\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_c\",\"content\":[{\"type\":\"text\","
        "\"text\":\"see\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/png;base64,AA\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"Done.\"}]");
    json_decref(r);
}

static void test_request_tools_and_formats(void **state)
{
    (void)state;
    const char *tools =
        "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"description\":\"F\",\"parameters\":"
        "{\"type\":\"object\"},\"strict\":true},{\"type\":\"function\",\"name\":\"g\","
        "\"parameters\":null}]";
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"model\":\"m\",\"input\":\"x\",%s,\"tool_choice\":\"required\",\"reasoning\":"
             "{\"effort\":\"high\",\"summary\":\"auto\"},\"text\":{\"format\":{\"type\":"
             "\"json_schema\",\"name\":\"out\",\"schema\":{\"type\":\"object\"},\"strict\":true,"
             "\"description\":\"D\"},\"verbosity\":\"low\"}}",
             tools);
    json_t *r = to_chat(body, NULL, 0, NULL, 0);
    assert_json_str(json_object_get(r, "tools"),
                    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"F\","
                    "\"parameters\":{\"type\":\"object\"},\"strict\":true}},{\"type\":"
                    "\"function\",\"function\":{\"name\":\"g\"}}]");
    assert_json_str(json_object_get(r, "tool_choice"), "\"required\"");
    assert_json_str(json_object_get(r, "reasoning_effort"), "\"high\"");
    json_decref(r);
    /* built-in tools beside function tools (what Codex sends) are left out */
    r = to_chat(
        "{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"},{\"type\":"
        "\"function\",\"name\":\"f\"},{\"type\":\"namespace\",\"name\":\"ns\",\"tools\":[]}]}",
        NULL, 0, NULL, 0);
    assert_json_str(json_object_get(r, "tools"),
                    "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]");
    json_decref(r);
    r = to_chat(body, NULL, 0, NULL, 0);
    assert_json_str(json_object_get(r, "verbosity"), "\"low\"");
    assert_json_str(json_object_get(r, "response_format"),
                    "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"out\",\"schema\":{"
                    "\"type\":\"object\"},\"strict\":true,\"description\":\"D\"}}");
    json_decref(r);

    static const struct {
        const char *extra, *key, *want;
    } cases[] = {
        {"\"tool_choice\":{\"type\":\"function\",\"name\":\"g\"}", "tool_choice",
         "{\"type\":\"function\",\"function\":{\"name\":\"g\"}}"},
        {"\"tool_choice\":\"none\"", "tool_choice", "\"none\""},
        /* allowed_tools keeps only the allowed tools */
        {"\"tool_choice\":{\"type\":\"allowed_tools\",\"mode\":\"required\",\"tools\":[{"
         "\"type\":\"function\",\"name\":\"g\"}]}",
         "tools", "[{\"type\":\"function\",\"function\":{\"name\":\"g\"}}]"},
        {"\"tool_choice\":{\"type\":\"allowed_tools\",\"mode\":\"required\",\"tools\":[{"
         "\"type\":\"function\",\"name\":\"g\"}]}",
         "tool_choice", "\"required\""},
        {"\"text\":{\"format\":{\"type\":\"json_object\"}}", "response_format",
         "{\"type\":\"json_object\"}"},
        {"\"reasoning\":{\"effort\":\"xhigh\"}", "reasoning_effort", "\"xhigh\""},
        {"\"reasoning\":{\"effort\":\"none\"}", "reasoning_effort", "\"none\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"input\":\"x\",%s,%s}", tools,
                 cases[i].extra);
        r = to_chat(body, NULL, 0, NULL, 0);
        assert_json_str(json_object_get(r, cases[i].key), cases[i].want);
        json_decref(r);
    }
    /* text format "text", null reasoning and tool_choice, no tools: nothing is sent */
    r = to_chat("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"text\"}},"
                "\"reasoning\":null,\"tool_choice\":null,\"tools\":[]}",
                NULL, 0, NULL, 0);
    assert_json_str(r, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    json_decref(r);
}

static void test_request_history(void **state)
{
    (void)state;
    /* history (stored input and output items) goes before the new input, after the
     * instructions; a call in the previous output and its result in the new input */
    json_t *r = to_chat(
        "{\"model\":\"m\",\"instructions\":\"I\",\"input\":[{\"type\":\"function_call_output\","
        "\"call_id\":\"call_1\",\"output\":\"sunny\"}]}",
        "[{\"type\":\"message\",\"id\":\"msg_a\",\"role\":\"user\",\"content\":[{\"type\":"
        "\"input_text\",\"text\":\"Weather?\"}]},{\"type\":\"reasoning\",\"id\":\"rs_b\","
        "\"summary\":[{\"type\":\"summary_text\",\"text\":\"t\"}]},{\"type\":\"function_call\","
        "\"id\":\"fc_c\",\"call_id\":\"call_1\",\"name\":\"weather\",\"arguments\":\"{}\","
        "\"status\":\"completed\"}]",
        0, NULL, 0);
    assert_json_str(json_object_get(r, "messages"),
                    "[{\"role\":\"system\",\"content\":\"I\"},{\"role\":\"user\",\"content\":[{"
                    "\"type\":\"text\",\"text\":\"Weather?\"}]},{\"role\":\"assistant\","
                    "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
                    "\"function\":{\"name\":\"weather\",\"arguments\":\"{}\"}}]},{\"role\":"
                    "\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"}]");
    json_decref(r);
    /* a broken stored item is named as such, not as the client's input */
    char err[512];
    to_chat("{\"model\":\"m\",\"input\":\"x\"}", "[{\"type\":\"message\",\"role\":\"bot\"}]",
            AR_EINVAL, err, sizeof(err));
    assert_string_equal(err, "previous response item 0.role: expected one of 'user', "
                             "'assistant', 'system', 'developer'");
}

static void test_request_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int rc;
        const char *err;
    } cases[] = {
        {"[]", AR_EINVAL, "The request body must be a JSON object"},
        {"{\"input\":\"x\"}", AR_EINVAL, "Missing required parameter: 'model'"},
        {"{\"model\":\"\",\"input\":\"x\"}", AR_EINVAL, "model: expected a non-empty string"},
        {"{\"model\":\"m\"}", AR_EINVAL, "Missing required parameter: 'input'"},
        {"{\"model\":\"m\",\"input\":5}", AR_EINVAL,
         "input: expected a string or an array of input items"},
        {"{\"model\":\"m\",\"input\":[]}", AR_EINVAL, "input: at least one input item is required"},
        {"{\"model\":\"m\",\"input\":[3]}", AR_EINVAL,
         "input[0]: expected an object (an input item)"},
        {"{\"model\":\"m\",\"input\":[{\"type\":7}]}", AR_EINVAL,
         "input[0].type: expected a string"},
        {"{\"model\":\"m\",\"input\":[{\"type\":\"bogus\"}]}", AR_EINVAL,
         "input[0].type: unknown item type 'bogus'"},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"user\"}]}", AR_EINVAL,
         "input[0].content: Missing required parameter"},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":5}]}", AR_EINVAL,
         "input[0].content: expected a string or an array of content parts"},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\","
         "\"content\":\"b\"},{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
         "\"c\"},{\"type\":\"x\"}]}]}",
         AR_EINVAL, "input[2].content[1].type: unknown content type 'x'"},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"text\":\"c\"}]}]}",
         AR_EINVAL, "input[0].content[0].type: Missing required parameter"},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\"}]}"
         "]}",
         AR_EINVAL, "input[0].content[0].text: expected a string"},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"system\",\"content\":[{\"type\":"
         "\"input_image\",\"image_url\":\"u\"}]}]}",
         AR_EINVAL, "input[0].content[0].type: 'input_image' is allowed in user messages only"},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\"}"
         "]}]}",
         AR_EINVAL,
         "input[0].content[0].image_url: Missing required parameter: an image URL or data: URL"},
        {"{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":"
         "\"f\"}]}",
         AR_EINVAL, "input[0].arguments: Missing required parameter (a string)"},
        {"{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"output\":\"o\"}]}",
         AR_EINVAL, "input[0].call_id: Missing required parameter (a string)"},
        {"{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"c\","
         "\"output\":{}}]}",
         AR_EINVAL, "input[0].output: expected a string or an array of content parts"},
        {"{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"c\","
         "\"output\":[{\"type\":\"input_text\",\"text\":\"a\"},{\"type\":\"nope\"}]}]}",
         AR_EINVAL, "input[0].output[1].type: unknown content type 'nope'"},
        {"{\"model\":\"m\",\"input\":\"x\",\"instructions\":5}", AR_EINVAL,
         "instructions: expected a string"},
        {"{\"model\":\"m\",\"input\":\"x\",\"stream\":\"yes\"}", AR_EINVAL,
         "stream: expected a boolean"},
        {"{\"model\":\"m\",\"input\":\"x\",\"temperature\":\"hot\"}", AR_EINVAL,
         "temperature: expected a number"},
        {"{\"model\":\"m\",\"input\":\"x\",\"parallel_tool_calls\":1}", AR_EINVAL,
         "parallel_tool_calls: expected a boolean"},
        {"{\"model\":\"m\",\"input\":\"x\",\"user\":1}", AR_EINVAL, "user: expected a string"},
        {"{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":0}", AR_EINVAL,
         "max_output_tokens: expected an integer greater than or equal to 1"},
        {"{\"model\":\"m\",\"input\":\"x\",\"background\":true}", AR_EINVAL,
         "background: background responses are not supported"},
        {"{\"model\":\"m\",\"input\":\"x\",\"tools\":{}}", AR_EINVAL, "tools: expected an array"},
        {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\"}]}", AR_EINVAL,
         "tools[0].name: Missing required parameter"},
        {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"name\":\"f\"}]}", AR_EINVAL,
         "tools[0].type: Missing required parameter"},
        {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"f\","
         "\"parameters\":[]}]}",
         AR_EINVAL, "tools[0].parameters: expected an object (a JSON schema)"},
        {"{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":\"always\"}", AR_EINVAL,
         "tool_choice: expected 'auto', 'none', 'required' or an object"},
        {"{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{\"type\":\"function\"}}", AR_EINVAL,
         "tool_choice.name: Missing required parameter"},
        {"{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{\"type\":\"allowed_tools\","
         "\"mode\":\"any\",\"tools\":[]}}",
         AR_EINVAL, "tool_choice.mode: expected 'auto' or 'required'"},
        {"{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"yaml\"}}}", AR_EINVAL,
         "text.format.type: expected 'text', 'json_object' or 'json_schema', not 'yaml'"},
        {"{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\","
         "\"schema\":{}}}}",
         AR_EINVAL, "text.format.name: Missing required parameter"},
        {"{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\","
         "\"name\":\"n\"}}}",
         AR_EINVAL, "text.format.schema: Missing required parameter (an object)"},
        {"{\"model\":\"m\",\"input\":\"x\",\"reasoning\":{\"effort\":3}}", AR_EINVAL,
         "reasoning.effort: expected a string ('none', 'minimal', 'low', 'medium', 'high')"},
        /* what only a native Responses upstream can do */
        {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search_preview\"}]}",
         AR_ENOTSUP,
         "tools[0]: the built-in tool 'web_search_preview' runs only on an upstream that speaks "
         "the Responses API natively"},
        {"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"mcp\",\"server_label\":\"s\"}]"
         "}",
         AR_ENOTSUP,
         "tools[0]: the built-in tool 'mcp' runs only on an upstream that speaks the Responses "
         "API natively"},
        {"{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{\"type\":\"file_search\"}}", AR_ENOTSUP,
         "tool_choice: the built-in tool 'file_search' runs only on an upstream that speaks the "
         "Responses API natively"},
        {"{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1\"}]}", AR_ENOTSUP,
         "input[0]: items of type 'item_reference' need an upstream that speaks the Responses "
         "API natively"},
        {"{\"model\":\"m\",\"input\":[{\"type\":\"web_search_call\",\"id\":\"ws_1\"}]}", AR_ENOTSUP,
         "input[0]: items of type 'web_search_call' need an upstream that speaks the Responses "
         "API natively"},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
         "\"file_id\":\"file_1\"}]}]}",
         AR_ENOTSUP,
         "input[0].content[0].file_id: images by file id need an upstream that speaks the "
         "Responses API natively; send image_url (a URL or a data: URL) instead"},
        {"{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_file\","
         "\"file_id\":\"file_1\"}]}]}",
         AR_ENOTSUP,
         "input[0].content[0]: files by file_id or file_url need an upstream that speaks the "
         "Responses API natively; send file_data (a data: URL) instead"},
        {"{\"model\":\"m\",\"input\":\"x\",\"conversation\":\"conv_1\"}", AR_ENOTSUP,
         "conversation: conversations need an upstream that speaks the Responses API "
         "natively; use previous_response_id"},
        {"{\"model\":\"m\",\"input\":\"x\",\"prompt\":{\"id\":\"p\"}}", AR_ENOTSUP,
         "prompt: prompt templates need an upstream that speaks the Responses API natively"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512];
        to_chat(cases[i].body, NULL, cases[i].rc, err, sizeof(err));
        if (strcmp(err, cases[i].err) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].err);
    }
}

static void test_input_items(void **state)
{
    (void)state;
    json_t *req = loads("{\"model\":\"m\",\"input\":\"Hi\"}");
    json_t *items = ar_resp_input_items(req);
    assert_int_equal(json_array_size(items), 1);
    json_t *it = json_array_get(items, 0);
    const char *id = json_string_value(json_object_get(it, "id"));
    assert_non_null(id);
    assert_int_equal(strncmp(id, "msg_", 4), 0);
    assert_int_equal(strlen(id), 4 + 32);
    json_object_del(it, "id");
    assert_json_str(it, "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
                        "\"input_text\",\"text\":\"Hi\"}]}");
    json_decref(items);
    json_decref(req);

    req = loads("{\"model\":\"m\",\"input\":[{\"role\":\"assistant\",\"content\":\"A\"},"
                "{\"type\":\"function_call\",\"id\":\"fc_keep\",\"call_id\":\"c\",\"name\":\"f\","
                "\"arguments\":\"{}\"},{\"type\":\"function_call_output\",\"call_id\":\"c\","
                "\"output\":\"o\"}]}");
    items = ar_resp_input_items(req);
    assert_int_equal(json_array_size(items), 3);
    it = json_array_get(items, 0);
    assert_int_equal(strncmp(json_string_value(json_object_get(it, "id")), "msg_", 4), 0);
    assert_json_str(json_object_get(it, "content"),
                    "[{\"type\":\"output_text\",\"text\":\"A\",\"annotations\":[]}]");
    assert_string_equal(json_string_value(json_object_get(it, "type")), "message");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "id")),
                        "fc_keep");
    assert_int_equal(
        strncmp(json_string_value(json_object_get(json_array_get(items, 2), "id")), "fco_", 4), 0);
    /* the client's body is untouched */
    assert_null(json_object_get(json_array_get(json_object_get(req, "input"), 0), "id"));
    json_decref(items);
    json_decref(req);

    req = loads("{\"model\":\"m\"}");
    assert_null(ar_resp_input_items(req));
    json_decref(req);
}

/* ---- whole answers ---- */

static const char *const REQ =
    "{\"model\":\"gpt-client\",\"input\":\"x\",\"instructions\":\"I\",\"temperature\":0.2,"
    "\"metadata\":{\"k\":\"v\"},\"tools\":[{\"type\":\"function\",\"name\":\"f\"}],"
    "\"reasoning\":{\"effort\":\"low\"},\"max_output_tokens\":50,\"store\":false}";

static void front_open(ar_resp_front_t *st, const char *req_text)
{
    json_t *req = loads(req_text);
    assert_int_equal(ar_resp_front_init(st, req, "resp_abc", 1700000000), 0);
    json_decref(req);
}

static json_t *whole(const char *req_text, const char *chat, int want_rc)
{
    ar_resp_front_t st;
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    front_open(&st, req_text);
    assert_int_equal(ar_resp_front_whole(&st, ar_span_cstr(chat), &out), want_rc);
    json_t *got = NULL;
    if (want_rc == 0) {
        got = json_loadb(out.ptr, out.len, 0, NULL);
        assert_non_null(got);
        /* what the caller stores is what the client got */
        assert_json_equal(ar_resp_front_final(&st), got);
    } else {
        assert_null(ar_resp_front_final(&st));
    }
    ar_resp_front_dispose(&st);
    ar_resp_front_dispose(&st);
    ar_buf_dispose(&out);
    return got;
}

static void test_whole_text(void **state)
{
    (void)state;
    json_t *r = whole(REQ,
                      "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,"
                      "\"model\":\"upstream-model\",\"choices\":[{\"index\":0,\"message\":{"
                      "\"role\":\"assistant\",\"content\":\"Hello \\\"you\\\"\"},"
                      "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,"
                      "\"completion_tokens\":5,\"total_tokens\":15,\"prompt_tokens_details\":{"
                      "\"cached_tokens\":4}}}",
                      0);
    assert_json_str(
        r, "{\"id\":\"resp_abc\",\"object\":\"response\",\"created_at\":1700000000,\"status\":"
           "\"completed\",\"background\":false,\"error\":null,\"incomplete_details\":null,"
           "\"instructions\":\"I\",\"max_output_tokens\":50,\"max_tool_calls\":null,\"model\":"
           "\"gpt-client\",\"output\":[{\"id\":\"msg_abc_0\",\"type\":\"message\",\"status\":"
           "\"completed\",\"content\":[{\"type\":\"output_text\",\"annotations\":[],"
           "\"logprobs\":[],\"text\":\"Hello \\\"you\\\"\"}],\"role\":\"assistant\"}],"
           "\"parallel_tool_calls\":true,\"previous_response_id\":null,\"prompt_cache_key\":"
           "null,\"reasoning\":{\"effort\":\"low\",\"summary\":null},\"safety_identifier\":"
           "null,\"service_tier\":\"default\",\"store\":false,\"temperature\":0.2,\"text\":{"
           "\"format\":{\"type\":\"text\"},\"verbosity\":\"medium\"},\"tool_choice\":\"auto\","
           "\"tools\":[{\"type\":\"function\",\"name\":\"f\"}],\"top_logprobs\":0,\"top_p\":1.0,"
           "\"truncation\":\"disabled\",\"usage\":{\"input_tokens\":10,\"input_tokens_details\":"
           "{\"cached_tokens\":4},\"output_tokens\":5,\"output_tokens_details\":{"
           "\"reasoning_tokens\":0},\"total_tokens\":15},\"user\":null,\"metadata\":{\"k\":"
           "\"v\"}}");
    json_decref(r);
}

static void test_whole_tools_reasoning(void **state)
{
    (void)state;
    /* reasoning, text and two calls, in that order; a call without an id gets one; the
     * client named a model list, so the upstream's model names the response */
    json_t *r = whole("{\"model\":[\"a\",\"b\"],\"input\":\"x\"}",
                      "{\"id\":\"c\",\"model\":\"up\",\"choices\":[{\"index\":0,\"message\":{"
                      "\"role\":\"assistant\",\"content\":\"Let me check.\",\"reasoning_content\":"
                      "\"Think\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
                      "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}},{\"type\":"
                      "\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]},"
                      "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":7,"
                      "\"completion_tokens\":20,\"completion_tokens_details\":{"
                      "\"reasoning_tokens\":12}}}",
                      0);
    assert_string_equal(json_string_value(json_object_get(r, "model")), "up");
    assert_string_equal(json_string_value(json_object_get(r, "status")), "completed");
    assert_json_str(
        json_object_get(r, "output"),
        "[{\"id\":\"rs_abc_0\",\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\","
        "\"text\":\"Think\"}]},{\"id\":\"msg_abc_1\",\"type\":\"message\",\"status\":"
        "\"completed\",\"content\":[{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":"
        "[],\"text\":\"Let me check.\"}],\"role\":\"assistant\"},{\"id\":\"fc_abc_2\",\"type\":"
        "\"function_call\",\"status\":\"completed\",\"arguments\":\"{\\\"a\\\":1}\",\"call_id\":"
        "\"call_1\",\"name\":\"f\"},{\"id\":\"fc_abc_3\",\"type\":\"function_call\",\"status\":"
        "\"completed\",\"arguments\":\"{}\",\"call_id\":\"call_abc_3\",\"name\":\"g\"}]");
    assert_json_str(json_object_get(r, "usage"),
                    "{\"input_tokens\":7,\"input_tokens_details\":{\"cached_tokens\":0},"
                    "\"output_tokens\":20,\"output_tokens_details\":{\"reasoning_tokens\":12},"
                    "\"total_tokens\":27}");
    json_decref(r);
    /* calls only: no message item */
    r = whole(REQ,
              "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
              "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
              "\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}",
              0);
    assert_int_equal(json_array_size(json_object_get(r, "output")), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(r, "output"), 0), "type")),
        "function_call");
    json_decref(r);
}

static void test_whole_incomplete(void **state)
{
    (void)state;
    json_t *r = whole(REQ,
                      "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Trunc\"},"
                      "\"finish_reason\":\"length\"}]}",
                      0);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "incomplete");
    assert_json_str(json_object_get(r, "incomplete_details"), "{\"reason\":\"max_output_tokens\"}");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r, "output"), 0), "status")),
                        "incomplete");
    json_decref(r);
    r = whole(REQ,
              "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":"
              "\"No.\"},\"finish_reason\":\"content_filter\"}]}",
              0);
    assert_json_str(json_object_get(r, "incomplete_details"), "{\"reason\":\"content_filter\"}");
    assert_json_str(json_object_get(json_array_get(json_object_get(r, "output"), 0), "content"),
                    "[{\"type\":\"refusal\",\"refusal\":\"No.\"}]");
    json_decref(r);
    /* not a chat completion */
    static const char *const bad[] = {"",
                                      "nope",
                                      "{}",
                                      "{\"choices\":[]}",
                                      "{\"error\":{\"message\":\"x\"}}",
                                      "{\"choices\":[{}]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(whole(REQ, bad[i], AR_EUPSTREAM));
}

/* ---- streams ---- */

typedef struct run {
    ar_resp_front_t st;
    ar_buf_t out;
} run_t;

static void run_open(run_t *r, const char *req)
{
    front_open(&r->st, req);
    ar_buf_init(&r->out, 1 << 20);
}

static void run_close(run_t *r)
{
    ar_resp_front_dispose(&r->st);
    ar_buf_dispose(&r->out);
}

static int chunk(run_t *r, const char *data)
{
    return ar_resp_front_chunk(&r->st, ar_span_cstr(data), &r->out);
}

/* The events of a translated stream as [[name, data], ...]; checks that each data's type is
 * its event name and that sequence numbers count up from 0. */
static json_t *events_json(ar_span_t s)
{
    json_t *arr = json_array();
    const char *p = s.ptr, *end = s.ptr + s.len;
    json_int_t seq = 0;
    while (p < end) {
        assert_true(end - p > 7 && memcmp(p, "event: ", 7) == 0);
        p += 7;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        json_t *name = json_stringn(p, (size_t)(nl - p));
        p = nl + 1;
        assert_true(end - p > 6 && memcmp(p, "data: ", 6) == 0);
        p += 6;
        const char *e = strstr(p, "\n\n");
        assert_non_null(e);
        json_error_t je;
        json_t *data = json_loadb(p, (size_t)(e - p), 0, &je);
        if (!data)
            fail_msg("event data is not JSON (%s): %.*s", je.text, (int)(e - p), p);
        assert_string_equal(json_string_value(json_object_get(data, "type")),
                            json_string_value(name));
        assert_int_equal(json_integer_value(json_object_get(data, "sequence_number")), seq);
        seq++;
        json_array_append_new(arr, json_pack("[o,o]", name, data));
        p = e + 2;
    }
    return arr;
}

static const char *ev_name(json_t *events, size_t i)
{
    return json_string_value(json_array_get(json_array_get(events, i), 0));
}

static json_t *ev_data(json_t *events, size_t i)
{
    return json_array_get(json_array_get(events, i), 1);
}

/* Asserts the event names, in order. */
static void assert_names(json_t *events, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n && i < json_array_size(events); i++) {
        if (strcmp(ev_name(events, i), names[i]) != 0)
            fail_msg("event %zu: %s, want %s", i, ev_name(events, i), names[i]);
    }
    assert_int_equal(json_array_size(events), n);
}

static void test_stream_text(void **state)
{
    (void)state;
    run_t r;
    run_open(&r, REQ);
    /* the role chunk alone opens the response */
    assert_int_equal(chunk(&r, "{\"id\":\"c1\",\"model\":\"up\",\"choices\":[{\"index\":0,"
                               "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}"),
                     0);
    assert_true(r.st.started);
    assert_int_equal(chunk(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                               "\"Hel\"}}]}"),
                     0);
    assert_int_equal(chunk(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                               "\"lo \\\"x\\\"\"}}]}"),
                     0);
    assert_int_equal(chunk(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},"
                               "\"finish_reason\":\"stop\"}]}"),
                     0);
    assert_int_equal(chunk(&r, "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
                               "\"completion_tokens\":3,\"prompt_tokens_details\":{"
                               "\"cached_tokens\":2}}}"),
                     0);
    assert_null(ar_resp_front_final(&r.st));
    assert_int_equal(chunk(&r, "[DONE]"), 0);
    assert_true(r.st.finished);
    /* later payloads and the end change nothing */
    size_t len = r.out.len;
    assert_int_equal(chunk(&r, "{\"choices\":[{\"delta\":{\"content\":\"late\"}}]}"), 0);
    assert_int_equal(ar_resp_front_end(&r.st, &r.out), 0);
    assert_int_equal(r.out.len, len);

    json_t *ev = events_json(ar_buf_span(&r.out));
    static const char *const names[] = {"response.created",           "response.in_progress",
                                        "response.output_item.added", "response.content_part.added",
                                        "response.output_text.delta", "response.output_text.delta",
                                        "response.output_text.done",  "response.content_part.done",
                                        "response.output_item.done",  "response.completed"};
    assert_names(ev, names, sizeof(names) / sizeof(names[0]));
    json_t *created = json_object_get(ev_data(ev, 0), "response");
    assert_string_equal(json_string_value(json_object_get(created, "status")), "in_progress");
    assert_string_equal(json_string_value(json_object_get(created, "model")), "gpt-client");
    assert_string_equal(json_string_value(json_object_get(created, "id")), "resp_abc");
    assert_json_str(json_object_get(created, "output"), "[]");
    assert_true(json_is_null(json_object_get(created, "usage")));
    assert_json_str(ev_data(ev, 2),
                    "{\"type\":\"response.output_item.added\",\"sequence_number\":2,"
                    "\"output_index\":0,\"item\":{\"id\":\"msg_abc_0\",\"type\":\"message\","
                    "\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}}");
    assert_json_str(ev_data(ev, 3),
                    "{\"type\":\"response.content_part.added\",\"sequence_number\":3,"
                    "\"item_id\":\"msg_abc_0\",\"output_index\":0,\"content_index\":0,\"part\":{"
                    "\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"\"}}");
    assert_json_str(ev_data(ev, 5),
                    "{\"type\":\"response.output_text.delta\",\"sequence_number\":5,\"item_id\":"
                    "\"msg_abc_0\",\"output_index\":0,\"content_index\":0,\"delta\":"
                    "\"lo \\\"x\\\"\",\"logprobs\":[]}");
    assert_json_str(ev_data(ev, 6),
                    "{\"type\":\"response.output_text.done\",\"sequence_number\":6,\"item_id\":"
                    "\"msg_abc_0\",\"output_index\":0,\"content_index\":0,\"text\":"
                    "\"Hello \\\"x\\\"\",\"logprobs\":[]}");
    assert_json_str(json_object_get(ev_data(ev, 7), "part"),
                    "{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":"
                    "\"Hello \\\"x\\\"\"}");
    json_t *item = json_object_get(ev_data(ev, 8), "item");
    assert_json_str(item, "{\"id\":\"msg_abc_0\",\"type\":\"message\",\"status\":\"completed\","
                          "\"content\":[{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":"
                          "[],\"text\":\"Hello \\\"x\\\"\"}],\"role\":\"assistant\"}");
    json_t *done = json_object_get(ev_data(ev, 9), "response");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    assert_int_equal(json_array_size(json_object_get(done, "output")), 1);
    assert_json_equal(json_array_get(json_object_get(done, "output"), 0), item);
    assert_json_str(json_object_get(done, "usage"),
                    "{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":2},"
                    "\"output_tokens\":3,\"output_tokens_details\":{\"reasoning_tokens\":0},"
                    "\"total_tokens\":12}");
    assert_string_equal(json_string_value(json_object_get(done, "model")), "gpt-client");
    assert_json_equal(ar_resp_front_final(&r.st), done);
    json_decref(ev);
    run_close(&r);
}

static void test_stream_tools_reasoning(void **state)
{
    (void)state;
    run_t r;
    /* a model list: the upstream's model names the response */
    run_open(&r, "{\"model\":[\"a\",\"b\"],\"input\":\"x\",\"stream\":true}");
    static const char *const chunks[] = {
        "{\"id\":\"c\",\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
        "\"assistant\",\"reasoning_content\":\"Think\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"ing\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Ok.\"}}]}",
        /* the first call's id comes on every delta (some upstreams repeat it) */
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\","
        "\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
        "\"arguments\":\"1}\"}}]}}]}",
        /* the second call has no id at all */
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{"
        "\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":{"
        "\"prompt_tokens\":5,\"completion_tokens\":8,\"completion_tokens_details\":{"
        "\"reasoning_tokens\":3}}}",
    };
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
        assert_int_equal(chunk(&r, chunks[i]), 0);
    /* no [DONE]: the end completes the response */
    assert_int_equal(ar_resp_front_end(&r.st, &r.out), 0);
    json_t *ev = events_json(ar_buf_span(&r.out));
    static const char *const names[] = {
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    };
    assert_names(ev, names, sizeof(names) / sizeof(names[0]));
    assert_json_str(ev_data(ev, 2), "{\"type\":\"response.output_item.added\",\"sequence_number\":"
                                    "2,\"output_index\":0,\"item\":{\"id\":\"rs_abc_0\",\"type\":"
                                    "\"reasoning\",\"summary\":[]}}");
    assert_json_str(ev_data(ev, 3),
                    "{\"type\":\"response.reasoning_summary_part.added\",\"sequence_number\":3,"
                    "\"item_id\":\"rs_abc_0\",\"output_index\":0,\"summary_index\":0,\"part\":{"
                    "\"type\":\"summary_text\",\"text\":\"\"}}");
    assert_json_str(ev_data(ev, 4),
                    "{\"type\":\"response.reasoning_summary_text.delta\",\"sequence_number\":4,"
                    "\"item_id\":\"rs_abc_0\",\"output_index\":0,\"summary_index\":0,\"delta\":"
                    "\"Think\"}");
    assert_json_str(ev_data(ev, 6),
                    "{\"type\":\"response.reasoning_summary_text.done\",\"sequence_number\":6,"
                    "\"item_id\":\"rs_abc_0\",\"output_index\":0,\"summary_index\":0,\"text\":"
                    "\"Thinking\"}");
    assert_json_str(ev_data(ev, 15),
                    "{\"type\":\"response.output_item.added\",\"sequence_number\":15,"
                    "\"output_index\":2,\"item\":{\"id\":\"fc_abc_2\",\"type\":\"function_call\","
                    "\"status\":\"in_progress\",\"arguments\":\"\",\"call_id\":\"call_1\","
                    "\"name\":\"f\"}}");
    assert_json_str(ev_data(ev, 16),
                    "{\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":16,"
                    "\"item_id\":\"fc_abc_2\",\"output_index\":2,\"delta\":\"{\\\"a\\\":\"}");
    assert_json_str(ev_data(ev, 18),
                    "{\"type\":\"response.function_call_arguments.done\",\"sequence_number\":18,"
                    "\"item_id\":\"fc_abc_2\",\"output_index\":2,\"name\":\"f\",\"arguments\":"
                    "\"{\\\"a\\\":1}\"}");
    json_t *done = json_object_get(ev_data(ev, 24), "response");
    assert_string_equal(json_string_value(json_object_get(done, "model")), "up");
    assert_json_str(
        json_object_get(done, "output"),
        "[{\"id\":\"rs_abc_0\",\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\","
        "\"text\":\"Thinking\"}]},{\"id\":\"msg_abc_1\",\"type\":\"message\",\"status\":"
        "\"completed\",\"content\":[{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":"
        "[],\"text\":\"Ok.\"}],\"role\":\"assistant\"},{\"id\":\"fc_abc_2\",\"type\":"
        "\"function_call\",\"status\":\"completed\",\"arguments\":\"{\\\"a\\\":1}\",\"call_id\":"
        "\"call_1\",\"name\":\"f\"},{\"id\":\"fc_abc_3\",\"type\":\"function_call\",\"status\":"
        "\"completed\",\"arguments\":\"{}\",\"call_id\":\"call_abc_3\",\"name\":\"g\"}]");
    assert_json_str(json_object_get(done, "usage"),
                    "{\"input_tokens\":5,\"input_tokens_details\":{\"cached_tokens\":0},"
                    "\"output_tokens\":8,\"output_tokens_details\":{\"reasoning_tokens\":3},"
                    "\"total_tokens\":13}");
    /* each output_item.done carries the item the final response lists */
    assert_json_equal(json_object_get(ev_data(ev, 19), "item"),
                      json_array_get(json_object_get(done, "output"), 2));
    assert_int_equal(r.st.in, 5);
    assert_int_equal(r.st.out, 8);
    json_decref(ev);
    run_close(&r);
}

static void test_stream_incomplete_and_escapes(void **state)
{
    (void)state;
    run_t r;
    run_open(&r, REQ);
    /* an escaped emoji (a surrogate pair), a newline and a quote, then raw UTF-8: escaped
     * pieces are gathered as they are and decoded once */
    assert_int_equal(
        chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\ud83d\\ude00\"}}]}"), 0);
    assert_int_equal(
        chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\n\\\"\xc3\xa9\"}}]}"), 0);
    assert_int_equal(chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
                               "\"length\"}]}"),
                     0);
    assert_int_equal(chunk(&r, "[DONE]"), 0);
    json_t *ev = events_json(ar_buf_span(&r.out));
    size_t n = json_array_size(ev);
    assert_string_equal(ev_name(ev, n - 1), "response.incomplete");
    json_t *res = json_object_get(ev_data(ev, n - 1), "response");
    assert_string_equal(json_string_value(json_object_get(res, "status")), "incomplete");
    assert_json_str(json_object_get(res, "incomplete_details"),
                    "{\"reason\":\"max_output_tokens\"}");
    json_t *item = json_array_get(json_object_get(res, "output"), 0);
    assert_string_equal(json_string_value(json_object_get(item, "status")), "incomplete");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(item, "content"), 0), "text")),
                        "a\xf0\x9f\x98\x80\n\"\xc3\xa9");
    assert_string_equal(json_string_value(json_object_get(ev_data(ev, 6), "text")),
                        "a\xf0\x9f\x98\x80\n\"\xc3\xa9");
    assert_json_equal(ar_resp_front_final(&r.st), res);
    json_decref(ev);
    run_close(&r);

    /* nothing came at all: the end still gives a well-formed, empty response */
    run_open(&r, REQ);
    assert_int_equal(ar_resp_front_end(&r.st, &r.out), 0);
    ev = events_json(ar_buf_span(&r.out));
    static const char *const names[] = {"response.created", "response.in_progress",
                                        "response.completed"};
    assert_names(ev, names, 3);
    assert_json_str(json_object_get(json_object_get(ev_data(ev, 2), "response"), "output"), "[]");
    json_decref(ev);
    run_close(&r);
}

static void test_stream_errors(void **state)
{
    (void)state;
    run_t r;
    /* an error payload from the upstream mid-stream: the open item stays out of the output */
    run_open(&r, REQ);
    assert_int_equal(chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}"), 0);
    assert_int_equal(chunk(&r, "{\"error\":{\"message\":\"Rate \\\"limit\\\"\",\"type\":"
                               "\"rate_limit_error\",\"code\":null}}"),
                     0);
    assert_true(r.st.finished);
    size_t len = r.out.len;
    assert_int_equal(chunk(&r, "[DONE]"), 0);
    assert_int_equal(ar_resp_front_end(&r.st, &r.out), 0);
    assert_int_equal(ar_resp_front_error_event(&r.st, "server_error", "again", &r.out), 0);
    assert_int_equal(r.out.len, len);
    json_t *ev = events_json(ar_buf_span(&r.out));
    static const char *const names[] = {"response.created",
                                        "response.in_progress",
                                        "response.output_item.added",
                                        "response.content_part.added",
                                        "response.output_text.delta",
                                        "error",
                                        "response.failed"};
    assert_names(ev, names, sizeof(names) / sizeof(names[0]));
    assert_json_str(ev_data(ev, 5), "{\"type\":\"error\",\"sequence_number\":5,\"code\":"
                                    "\"rate_limit_exceeded\",\"message\":\"Rate \\\"limit\\\"\","
                                    "\"param\":null}");
    json_t *res = json_object_get(ev_data(ev, 6), "response");
    assert_string_equal(json_string_value(json_object_get(res, "status")), "failed");
    assert_json_str(json_object_get(res, "error"),
                    "{\"code\":\"rate_limit_exceeded\",\"message\":\"Rate \\\"limit\\\"\"}");
    assert_json_str(json_object_get(res, "output"), "[]");
    assert_json_equal(ar_resp_front_final(&r.st), res);
    json_decref(ev);
    run_close(&r);

    /* the gateway's own error before anything came: created, in_progress, error, failed */
    run_open(&r, REQ);
    assert_int_equal(
        ar_resp_front_error_event(&r.st, "timeout_error", "upstream timed out", &r.out), 0);
    ev = events_json(ar_buf_span(&r.out));
    static const char *const names2[] = {"response.created", "response.in_progress", "error",
                                         "response.failed"};
    assert_names(ev, names2, 4);
    assert_json_str(json_object_get(json_object_get(ev_data(ev, 3), "response"), "error"),
                    "{\"code\":\"timeout_error\",\"message\":\"upstream timed out\"}");
    json_decref(ev);
    run_close(&r);
}

static void test_stream_garbage(void **state)
{
    (void)state;
    run_t r;
    run_open(&r, REQ);
    assert_int_equal(chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}"), 0);
    size_t len = r.out.len;
    /* payloads that are not JSON objects are refused and leave nothing behind */
    static const char *const bad[] = {
        "",          "garbage", "{\"choices\":[",
        "[1,2]",     "\"str\"", "{\"choices\":[{\"delta\":{\"content\":\"\\x\"}}]}",
        "{\"a\":1}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chunk(&r, bad[i]), AR_EUPSTREAM);
        assert_int_equal(r.out.len, len);
    }
    /* well-formed JSON of odd shapes is skipped without output */
    static const char *const odd[] = {
        "{}",
        "{\"choices\":7}",
        "{\"choices\":[5]}",
        "{\"choices\":[{\"delta\":\"x\"}]}",
        "{\"choices\":[{\"delta\":{\"content\":7,\"tool_calls\":{}}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[7]}}]}",
        "{\"usage\":5,\"choices\":[{\"delta\":{\"content\":null}}]}",
        "{\"error\":\"flat\"}",
    };
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        assert_int_equal(chunk(&r, odd[i]), 0);
        assert_int_equal(r.out.len, len);
    }
    /* the gateway ends such a stream with an error; the defaults fill in */
    assert_int_equal(ar_resp_front_error_event(&r.st, NULL, NULL, &r.out), 0);
    json_t *ev = events_json(ar_buf_span(&r.out));
    size_t n = json_array_size(ev);
    assert_string_equal(ev_name(ev, n - 1), "response.failed");
    assert_json_str(ev_data(ev, n - 2), "{\"type\":\"error\",\"sequence_number\":5,\"code\":"
                                        "\"server_error\",\"message\":\"upstream error\","
                                        "\"param\":null}");
    json_decref(ev);
    run_close(&r);
}

/* Found by fuzz_responses (corpus/responses/regress_error_not_utf8): an error message that is
 * not UTF-8 (an upstream's broken bytes) still ends the stream, with the bytes replaced. */
static void test_stream_error_not_utf8(void **state)
{
    (void)state;
    run_t r;
    run_open(&r, REQ);
    assert_int_equal(chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}"), 0);
    assert_int_equal(
        ar_resp_front_error_event(&r.st, "rate_limit_error", "busy \x96 retry", &r.out), 0);
    json_t *ev = events_json(ar_buf_span(&r.out));
    size_t n = json_array_size(ev);
    assert_string_equal(ev_name(ev, n - 1), "response.failed");
    assert_json_str(ev_data(ev, n - 2),
                    "{\"type\":\"error\",\"sequence_number\":5,\"code\":\"rate_limit_exceeded\","
                    "\"message\":\"busy \\ufffd retry\",\"param\":null}");
    assert_string_equal(ar_json_str(ar_resp_front_final(&r.st), "status"), "failed");
    json_decref(ev);
    run_close(&r);
}

/* A payload refused part way (a call id over the limit after the message closed) takes back
 * what it wrote, sequence numbers included: the gateway drops its output. */
static void test_stream_refused_takes_back(void **state)
{
    (void)state;
    run_t r;
    run_open(&r, REQ);
    assert_int_equal(chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}"), 0);
    size_t len = r.out.len;
    char *big = malloc(6000);
    int n = snprintf(big, 6000,
                     "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                     "\"id\":\"%05000d\",\"function\":{\"name\":\"f\"}}]}}]}",
                     7);
    assert_true(n > 5000 && n < 6000);
    assert_int_equal(chunk(&r, big), AR_ETOOBIG);
    free(big);
    assert_int_equal(r.out.len, len);
    assert_int_equal(ar_resp_front_error_event(&r.st, NULL, NULL, &r.out), 0);
    json_t *ev = events_json(ar_buf_span(&r.out)); /* sequence numbers without a gap */
    assert_string_equal(ev_name(ev, json_array_size(ev) - 1), "response.failed");
    json_decref(ev);
    run_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_string_input),
        cmocka_unit_test(test_request_items),
        cmocka_unit_test(test_request_tools_and_formats),
        cmocka_unit_test(test_request_history),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_input_items),
        cmocka_unit_test(test_whole_text),
        cmocka_unit_test(test_whole_tools_reasoning),
        cmocka_unit_test(test_whole_incomplete),
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_tools_reasoning),
        cmocka_unit_test(test_stream_incomplete_and_escapes),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_garbage),
        cmocka_unit_test(test_stream_error_not_utf8),
        cmocka_unit_test(test_stream_refused_takes_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
