/*
 * test_anthropic.c: unit tests of the Anthropic Messages front (fronts/anthropic_request.c and
 * anthropic_answer.c), which serves POST /v1/messages: Anthropic requests in, OpenAI requests
 * out (golden files, a round trip through the provider side back to Anthropic, Anthropic-style
 * validation messages); OpenAI completions in, Anthropic messages out; OpenAI chunk streams in,
 * Anthropic SSE events out (fed whole and split at every byte offset); error bodies and events;
 * count_tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fronts/anthropic.h"
#include "providers/anthropic_xlate.h"
#include "providers/provider_fixture.h"

#define FIXTURES "providers/anthropic"

static json_t *loads(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    if (!v)
        fail_msg("test JSON: %s: %s", je.text, text);
    return v;
}

/* The front translation of an inline Anthropic body; err receives the 400 message. */
static json_t *front(const char *anth, int want_rc, char *err, size_t errlen)
{
    json_t *in = loads(anth);
    json_t *out = NULL;
    char buf[256] = "";
    int rc = ar_anth_front_request(in, false, &out, buf, sizeof(buf));
    json_decref(in);
    if (rc != want_rc)
        fail_msg("rc %d, want %d (%s) for %s", rc, want_rc, buf, anth);
    if (err)
        snprintf(err, errlen, "%s", buf);
    return out;
}

/* ---- requests ---- */

static void test_front_request(void **state)
{
    (void)state;
    json_t *in = ar_test_fixture_json("providers/anthropic/front_request.json");
    json_t *want = ar_test_fixture_json("providers/anthropic/front_request.expected.json");
    json_t *out = NULL;
    char err[256];
    /* system blocks (cache_control kept), images both ways, thinking blocks dropped and
     * the thinking budget as reasoning_effort, tool_use -> tool_calls, tool_result -> tool messages before the user text,
     * tools, tool_choice + disable_parallel_tool_use, stop_sequences, metadata, top_k
     * dropped, streams ask for usage */
    assert_int_equal(ar_anth_front_request(in, true, &out, err, sizeof(err)), 0);
    assert_json_equal(out, want);
    /* without cache_control (what /v1/messages sends today): the same minus the markers */
    json_t *plain = NULL;
    assert_int_equal(ar_anth_front_request(in, false, &plain, err, sizeof(err)), 0);
    json_t *want_plain = json_deep_copy(want);
    json_t *sys_part = json_array_get(
        json_object_get(json_array_get(json_object_get(want_plain, "messages"), 0), "content"), 0);
    json_object_del(sys_part, "cache_control");
    json_object_del(json_array_get(json_object_get(want_plain, "tools"), 1), "cache_control");
    assert_json_equal(plain, want_plain);
    json_decref(want_plain);
    json_decref(plain);

    /* and back through the provider side: the Anthropic request the upstream sees (the
     * implied reasoning_effort goes only to `type: reasoning` deployments: not here) */
    json_object_del(out, "reasoning_effort");
    json_t *back = NULL;
    const char *detail = NULL;
    json_t *rt = ar_test_fixture_json("providers/anthropic/front_roundtrip.expected.json");
    assert_int_equal(
        ar_anth_request_from_openai(out, "claude-3-5-sonnet-20241022", 0, true, &back, &detail), 0);
    assert_json_equal(back, rt);
    json_decref(rt);
    json_decref(back);
    json_decref(out);
    json_decref(want);
    json_decref(in);
}

static void test_front_request_cases(void **state)
{
    (void)state;
    /* a system string, an assistant string, no stream: no stream_options */
    json_t *r = front("{\"model\":\"m\",\"max_tokens\":5,\"system\":\"Be terse.\",\"messages\":["
                      "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":"
                      "\"Hello\"}],\"stream\":false}",
                      0, NULL, 0);
    assert_json_str(r,
                    "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"system\","
                    "\"content\":\"Be terse.\"},{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
                    "\"assistant\",\"content\":\"Hello\"}]}");
    json_decref(r);
    /* tool_choice any / tool / none */
    static const struct {
        const char *choice, *want;
    } choices[] = {
        {"{\"type\":\"any\"}", "\"required\""},
        {"{\"type\":\"none\"}", "\"none\""},
        {"{\"type\":\"tool\",\"name\":\"f\"}",
         "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}"},
    };
    for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":"
                 "\"x\"}],\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],"
                 "\"tool_choice\":%s}",
                 choices[i].choice);
        r = front(body, 0, NULL, 0);
        assert_json_str(json_object_get(r, "tool_choice"), choices[i].want);
        assert_null(json_object_get(r, "parallel_tool_calls"));
        json_decref(r);
    }
    /* documents (base64 -> file, text -> text); a tool_result with an image keeps parts;
     * an assistant turn of tool calls only has null content */
    r = front("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":"
              "\"application/pdf\",\"data\":\"JVBERi0=\"}},{\"type\":\"document\",\"source\":{"
              "\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":\"plain doc\"}}]},"
              "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":"
              "\"shot\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
              "\"tool_use_id\":\"t1\",\"content\":[{\"type\":\"text\",\"text\":\"see\"},{\"type\":"
              "\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":"
              "\"AAAA\"}}]}]}]}",
              0, NULL, 0);
    assert_json_str(json_object_get(r, "messages"),
                    "[{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{\"file_data\":"
                    "\"data:application/pdf;base64,JVBERi0=\"}},{\"type\":\"text\",\"text\":"
                    "\"plain doc\"}]},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{"
                    "\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"shot\","
                    "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"t1\","
                    "\"content\":[{\"type\":\"text\",\"text\":\"see\"},{\"type\":\"image_url\","
                    "\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}]");
    json_decref(r);
}

static void test_front_mid_system(void **state)
{
    (void)state;
    /* Claude Code 2.1's per-turn controls: system entries inside messages, a string and text
     * blocks (cache_control kept), each a system message at its position */
    json_t *in = loads(
        "{\"model\":\"m\",\"max_tokens\":5,\"system\":\"Top.\",\"messages\":[{\"role\":"
        "\"user\",\"content\":\"Hi\"},{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":"
        "\"assistant\",\"content\":\"Hello\"},{\"role\":\"system\",\"content\":[{\"type\":\"text\","
        "\"text\":\"Plan mode.\",\"cache_control\":{\"type\":\"ephemeral\"}}]},{\"role\":"
        "\"system\",\"content\":\"\"},{\"role\":\"user\",\"content\":\"Go\"}]}");
    json_t *out = NULL;
    char err[256] = "";
    assert_int_equal(ar_anth_front_request(in, true, &out, err, sizeof(err)), 0);
    assert_json_str(
        json_object_get(out, "messages"),
        "[{\"role\":\"system\",\"content\":\"Top.\"},{\"role\":\"user\",\"content\":\"Hi\"},"
        "{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"assistant\",\"content\":"
        "\"Hello\"},{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"Plan mode.\","
        "\"cache_control\":{\"type\":\"ephemeral\"}}]},{\"role\":\"user\",\"content\":\"Go\"}]");
    /* an Anthropic upstream gets one valid request: every system text in the top-level
     * system, in order, and the turns alone in messages */
    json_t *back = NULL;
    const char *detail = NULL;
    assert_int_equal(ar_anth_request_from_openai(out, "claude", 0, false, &back, &detail), 0);
    assert_json_str(json_object_get(back, "system"),
                    "[{\"type\":\"text\",\"text\":\"Top.\"},{\"type\":\"text\",\"text\":"
                    "\"Be brief.\"},{\"type\":\"text\",\"text\":\"Plan mode.\",\"cache_control\":{"
                    "\"type\":\"ephemeral\"}}]");
    json_t *turns = json_object_get(back, "messages");
    assert_int_equal(json_array_size(turns), 3);
    assert_string_equal(ar_json_str(json_array_get(turns, 0), "role"), "user");
    assert_string_equal(ar_json_str(json_array_get(turns, 1), "role"), "assistant");
    assert_string_equal(ar_json_str(json_array_get(turns, 2), "role"), "user");
    json_decref(back);
    json_decref(out);
    /* a system entry between two user turns: the Anthropic turns merge and still alternate */
    json_decref(in);
    in = loads("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":"
               "\"a\"},{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":"
               "\"b\"}]}");
    assert_int_equal(ar_anth_front_request(in, false, &out, err, sizeof(err)), 0);
    assert_int_equal(ar_anth_request_from_openai(out, "claude", 0, false, &back, &detail), 0);
    assert_json_str(json_object_get(back, "system"), "\"s\"");
    assert_int_equal(json_array_size(json_object_get(back, "messages")), 1);
    json_decref(back);
    json_decref(out);
    json_decref(in);
}

/* thinking and output_config.effort become reasoning_effort for chat upstreams */
static void test_front_reasoning(void **state)
{
    (void)state;
    static const struct {
        const char *extra, *want; /* want NULL: no reasoning_effort */
    } cases[] = {
        {"", NULL},
        {",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}", "low"},
        {",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":4096}", "medium"},
        {",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":31999}", "high"},
        {",\"thinking\":{\"type\":\"adaptive\"}", "medium"},
        {",\"thinking\":{\"type\":\"disabled\"}", NULL},
        {",\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"low\"}", "low"},
        {",\"output_config\":{\"effort\":\"max\"}", "high"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
                 "\"content\":\"x\"}]%s}",
                 cases[i].extra);
        json_t *in = loads(body);
        json_t *out = NULL;
        char err[256] = "";
        assert_int_equal(ar_anth_front_request(in, false, &out, err, sizeof(err)), 0);
        const char *got = ar_json_str(out, "reasoning_effort");
        if (cases[i].want == NULL ? got != NULL : !got || strcmp(got, cases[i].want) != 0)
            fail_msg("%s: reasoning_effort %s, want %s", body, got ? got : "(none)",
                     cases[i].want ? cases[i].want : "(none)");
        json_decref(out);
        json_decref(in);
    }
}

static void test_front_validation(void **state)
{
    (void)state;
    static const struct {
        const char *body, *msg;
    } cases[] = {
        {"[]", "must be a JSON object"},
        {"{\"max_tokens\":5,\"messages\":[]}", "model: Field required"},
        {"{\"model\":7,\"max_tokens\":5,\"messages\":[]}", "model: Input should be"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "max_tokens: Field required"},
        {"{\"model\":\"m\",\"max_tokens\":0,\"messages\":[]}", "max_tokens: Input should be"},
        {"{\"model\":\"m\",\"max_tokens\":\"5\",\"messages\":[]}", "max_tokens: Input should be"},
        {"{\"model\":\"m\",\"max_tokens\":5}", "messages: Field required"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"thinking\":{\"type\":\"enabled\"}}",
         "thinking.budget_tokens: Field required"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"thinking\":{\"type\":\"sometimes\"}}",
         "thinking.type: Input should be"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":{}}", "messages: Input should be"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]}", "at least one message"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]"
         "}",
         "at least one user or assistant message"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
         "messages.0.role: Input should be 'user', 'assistant' or 'system'"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
         "{\"role\":\"system\",\"content\":[{\"type\":\"image\"}]}]}",
         "messages.1.content.0: system blocks must be text blocks"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
         "{\"role\":\"system\",\"content\":7}]}",
         "messages.1.content: Input should be a valid string or a list of text blocks"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\"}]}",
         "messages.0.content: Field required"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":3}]}",
         "messages.0.content: Input should be"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
         "\"type\":\"video\"}]}]}",
         "messages.0.content.0.type"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
         "\"type\":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}",
         "messages.0.content.0.source"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
         "\"type\":\"tool_result\",\"content\":\"x\"}]}]}",
         "tool_use_id: Field required"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{"
         "\"type\":\"tool_use\",\"name\":\"f\",\"input\":{}}]}]}",
         "tool_use needs"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"system\":7,\"messages\":[{\"role\":\"user\","
         "\"content\":\"x\"}]}",
         "system: Input should be"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"system\":[{\"type\":\"image\"}],\"messages\":[{"
         "\"role\":\"user\",\"content\":\"x\"}]}",
         "system.0"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]}",
         "tools.0.type"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"tools\":[{\"name\":\"f\"}]}",
         "tools.0.input_schema"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"tools\":[{\"name\":\"f\",\"input_schema\":{}}],\"tool_choice\":{\"type\":\"tool\"}}",
         "tool_choice"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"stream\":\"yes\"}",
         "stream: Input should be"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"temperature\":\"hot\"}",
         "temperature"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"stop_sequences\":\"END\"}",
         "stop_sequences"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256];
        json_t *r = front(cases[i].body, AR_EINVAL, err, sizeof(err));
        assert_null(r);
        if (!strstr(err, cases[i].msg))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err, cases[i].msg);
    }
}

/* ---- whole answers ---- */

static void whole_golden(const char *name)
{
    fx_gold_t g = fx_gold_open(FIXTURES, name, ".json");
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    assert_int_equal(ar_anth_front_whole(ar_span(g.text, g.len), &out), 0);
    assert_json_text(out.ptr, out.len, g.want);
    ar_buf_dispose(&out);
    fx_gold_close(&g);
}

static void test_front_whole(void **state)
{
    (void)state;
    /* text; input_tokens excludes cached tokens, which go to cache_read_input_tokens */
    whole_golden("front_whole_text");
    /* reasoning -> thinking, tool calls -> tool_use (bad arguments -> {}), the id of an
     * Anthropic answer comes back as it was */
    whole_golden("front_whole_tools");
    static const struct {
        const char *finish, *stop;
    } cases[] = {
        {"\"stop\"", "end_turn"},          {"\"length\"", "max_tokens"},
        {"\"tool_calls\"", "tool_use"},    {"\"function_call\"", "tool_use"},
        {"\"content_filter\"", "refusal"}, {"null", "end_turn"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"id\":\"x-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{"
                 "\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]},"
                 "\"finish_reason\":%s}]}",
                 cases[i].finish);
        ar_buf_t out;
        ar_buf_init(&out, 1 << 20);
        assert_int_equal(ar_anth_front_whole(ar_span_cstr(body), &out), 0);
        json_t *got = json_loadb(out.ptr, out.len, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(got, "stop_reason")), cases[i].stop);
        assert_string_equal(json_string_value(json_object_get(got, "id")), "msg_x-1");
        assert_json_str(json_object_get(got, "content"), "[{\"type\":\"text\",\"text\":\"a\"}]");
        assert_json_str(json_object_get(got, "usage"),
                        "{\"input_tokens\":0,\"output_tokens\":0,\"cache_creation_input_tokens\":0,"
                        "\"cache_read_input_tokens\":0}");
        json_decref(got);
        ar_buf_dispose(&out);
    }
    /* an OpenAI refusal is relayed as text */
    ar_buf_t rout;
    ar_buf_init(&rout, 1 << 20);
    assert_int_equal(ar_anth_front_whole(AR_LIT("{\"id\":\"chatcmpl-r\",\"model\":\"m\","
                                                "\"choices\":[{\"message\":{\"role\":"
                                                "\"assistant\",\"content\":null,\"refusal\":"
                                                "\"I can't help with that.\"},\"finish_reason\":"
                                                "\"stop\"}]}"),
                                         &rout),
                     0);
    json_t *refused = json_loadb(rout.ptr, rout.len, 0, NULL);
    assert_json_str(json_object_get(refused, "content"),
                    "[{\"type\":\"text\",\"text\":\"I can't help with that.\"}]");
    json_decref(refused);
    ar_buf_dispose(&rout);
    static const char *const bad[] = {"not json", "{\"choices\":[]}", "{}", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ar_buf_t out;
        ar_buf_init(&out, 1 << 20);
        assert_int_equal(ar_anth_front_whole(ar_span_cstr(bad[i]), &out), AR_EUPSTREAM);
        ar_buf_dispose(&out);
    }
}

/* ---- streams ---- */

typedef struct run {
    ar_anth_front_t st;
    ar_buf_t out;
} run_t;

static int on_event(void *ud, const ar_sse_event_t *ev)
{
    run_t *r = ud;
    return ar_anth_front_chunk(&r->st, ev->data, &r->out);
}

/* Feeds an OpenAI transcript split at `split` the way the gateway does (re-read by an SSE
 * parser), then ends the stream. */
static int feed(const char *text, size_t len, size_t split, run_t *r)
{
    ar_anth_front_init(&r->st, "requested-model");
    ar_buf_init(&r->out, 1 << 22);
    int rc = fx_sse_feed(ar_span(text, len), split, on_event, r);
    if (rc == 0)
        rc = ar_anth_front_end(&r->st, &r->out);
    return rc;
}

/* The events of Anthropic SSE text as [[name, data], ...]. */
static json_t *events_json(ar_span_t s)
{
    json_t *arr = json_array();
    const char *p = s.ptr;
    const char *end = s.ptr + s.len;
    while (p < end) {
        assert_true(end - p > 7 && memcmp(p, "event: ", 7) == 0);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        json_t *name = json_stringn(p + 7, (size_t)(nl - p - 7));
        p = nl + 1;
        assert_true(end - p > 6 && memcmp(p, "data: ", 6) == 0);
        p += 6;
        const char *e = strstr(p, "\n\n");
        assert_non_null(e);
        json_error_t je;
        json_t *data = json_loadb(p, (size_t)(e - p), 0, &je);
        if (!data)
            fail_msg("event data is not JSON (%s): %.*s", je.text, (int)(e - p), p);
        json_array_append_new(arr, json_pack("[o,o]", name, data));
        p = e + 2;
    }
    return arr;
}

static void stream_golden(const char *name)
{
    fx_gold_t g = fx_gold_open(FIXTURES, name, ".sse");
    run_t whole;
    assert_int_equal(feed(g.text, g.len, g.len, &whole), 0);
    assert_true(whole.st.finished);
    json_t *got = events_json(ar_buf_span(&whole.out));
    assert_json_equal(got, g.want);
    json_decref(got);
    for (size_t split = 0; split < g.len; split++) {
        run_t r;
        assert_int_equal(feed(g.text, g.len, split, &r), 0);
        fx_assert_split_same(name, split, ar_buf_span(&r.out), ar_buf_span(&whole.out));
        ar_buf_dispose(&r.out);
    }
    ar_buf_dispose(&whole.out);
    fx_gold_close(&g);
}

static void test_front_stream_text(void **state)
{
    (void)state;
    /* the role chunk opens the message, the usage chunk's numbers end up in message_delta */
    stream_golden("openai_stream_text");
}

static void test_front_stream_tools(void **state)
{
    (void)state;
    /* reasoning, text and two tool calls each get their own block, in order; the last
     * frame lacks its blank line */
    stream_golden("openai_stream_tools");
}

static int chunk(run_t *r, const char *data)
{
    return ar_anth_front_chunk(&r->st, ar_span_cstr(data), &r->out);
}

/* The usage object of event i of a translated stream. */
static json_t *event_usage(json_t *events, size_t i)
{
    json_t *data = json_array_get(json_array_get(events, i), 1);
    json_t *msg = json_object_get(data, "message");
    return json_object_get(msg ? msg : data, "usage");
}

static void test_front_stream_estimate(void **state)
{
    (void)state;
    /* an OpenAI upstream reports usage at the end only: message_start carries the
     * count_tokens estimate of the request, message_delta the upstream's real numbers */
    json_t *a = loads("{\"model\":\"m\",\"max_tokens\":5,\"system\":\"0123456789\",\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"0123456789\"}],\"stream\":true}");
    run_t r;
    ar_anth_front_init(&r.st, "m");
    r.st.estimate = ar_anth_count_tokens(a);
    assert_int_equal(r.st.estimate, 5);
    json_decref(a);
    ar_buf_init(&r.out, 1 << 20);
    assert_int_equal(chunk(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
                               "\"assistant\",\"content\":\"Hi\"}}]}"),
                     0);
    assert_int_equal(chunk(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},"
                               "\"finish_reason\":\"stop\"}]}"),
                     0);
    assert_int_equal(chunk(&r, "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
                               "\"completion_tokens\":1,\"prompt_tokens_details\":{"
                               "\"cached_tokens\":2}}}"),
                     0);
    assert_int_equal(chunk(&r, "[DONE]"), 0);
    json_t *got = events_json(ar_buf_span(&r.out));
    assert_string_equal(json_string_value(json_array_get(json_array_get(got, 0), 0)),
                        "message_start");
    assert_json_str(event_usage(got, 0), "{\"input_tokens\":5,\"output_tokens\":0}");
    size_t last = json_array_size(got) - 2;
    assert_string_equal(json_string_value(json_array_get(json_array_get(got, last), 0)),
                        "message_delta");
    assert_json_str(event_usage(got, last),
                    "{\"input_tokens\":7,\"cache_read_input_tokens\":2,\"output_tokens\":1}");
    json_decref(got);
    ar_buf_dispose(&r.out);

    /* a count the upstream gave before message_start wins over the estimate */
    ar_anth_front_init(&r.st, "m");
    r.st.estimate = 5;
    ar_buf_init(&r.out, 1 << 20);
    assert_int_equal(chunk(&r, "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,"
                               "\"completion_tokens\":0}}"),
                     0);
    got = events_json(ar_buf_span(&r.out));
    assert_json_str(event_usage(got, 0), "{\"input_tokens\":30,\"output_tokens\":0}");
    json_decref(got);
    ar_buf_dispose(&r.out);
}

static void test_front_stream_edges(void **state)
{
    (void)state;
    run_t r;
    json_t *got;
    /* nothing came at all: the stream is still closed properly, with the requested model */
    ar_anth_front_init(&r.st, "claude-x");
    ar_buf_init(&r.out, 1 << 20);
    assert_int_equal(ar_anth_front_end(&r.st, &r.out), 0);
    got = events_json(ar_buf_span(&r.out));
    assert_json_str(got,
                    "[[\"message_start\",{\"type\":\"message_start\",\"message\":{\"id\":"
                    "\"msg_airouter\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                    "\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                    "\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}],"
                    "[\"message_delta\",{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                    "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":0}}],"
                    "[\"message_stop\",{\"type\":\"message_stop\"}]]");
    json_decref(got);
    /* ... and only once */
    size_t n = r.out.len;
    assert_int_equal(ar_anth_front_end(&r.st, &r.out), 0);
    assert_int_equal(chunk(&r, "[DONE]"), 0);
    assert_int_equal(r.out.len, n);
    ar_buf_dispose(&r.out);

    /* a stream cut after some text: the open block is closed at the end; usage carried by
     * the first chunk is in message_start */
    ar_anth_front_init(&r.st, "m");
    ar_buf_init(&r.out, 1 << 20);
    assert_int_equal(chunk(&r,
                           "{\"id\":\"c1\",\"model\":\"m2\",\"choices\":[{\"index\":0,\"delta\":"
                           "{\"content\":\"Hi\"}}],\"usage\":{\"prompt_tokens\":11,"
                           "\"completion_tokens\":1}}"),
                     0);
    assert_int_equal(ar_anth_front_end(&r.st, &r.out), 0);
    got = events_json(ar_buf_span(&r.out));
    assert_int_equal(json_array_size(got), 6);
    assert_json_str(
        json_object_get(json_object_get(json_array_get(json_array_get(got, 0), 1), "message"),
                        "usage"),
        "{\"input_tokens\":11,\"output_tokens\":0}");
    assert_json_str(json_array_get(got, 3), "[\"content_block_stop\",{\"type\":"
                                            "\"content_block_stop\",\"index\":0}]");
    json_decref(got);
    ar_buf_dispose(&r.out);

    /* an OpenAI error payload mid-stream becomes an Anthropic error event, and ends it */
    ar_anth_front_init(&r.st, "m");
    ar_buf_init(&r.out, 1 << 20);
    assert_int_equal(chunk(&r, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                               "\"Hi\"}}]}"),
                     0);
    n = r.out.len;
    assert_int_equal(chunk(&r, "{\"error\":{\"message\":\"Rate \\\"limit\\\" reached\",\"type\":"
                               "\"rate_limit_error\",\"code\":null}}"),
                     0);
    assert_true(r.st.finished);
    got = events_json(ar_span(r.out.ptr + n, r.out.len - n));
    assert_json_str(got, "[[\"error\",{\"type\":\"error\",\"error\":{\"type\":"
                         "\"rate_limit_error\",\"message\":\"Rate \\\"limit\\\" reached\"}}]]");
    json_decref(got);
    n = r.out.len;
    assert_int_equal(chunk(&r, "[DONE]"), 0);
    assert_int_equal(ar_anth_front_end(&r.st, &r.out), 0);
    assert_int_equal(r.out.len, n);
    ar_buf_dispose(&r.out);

    /* payloads that are not JSON */
    ar_anth_front_init(&r.st, "m");
    ar_buf_init(&r.out, 1 << 20);
    assert_int_equal(chunk(&r, "{not json"), AR_EUPSTREAM);
    assert_int_equal(chunk(&r, "[1,2]"), AR_EUPSTREAM);
    ar_buf_dispose(&r.out);

    /* a tool call delta without an id that continues the open call, then a new index */
    ar_anth_front_init(&r.st, "m");
    ar_buf_init(&r.out, 1 << 20);
    assert_int_equal(chunk(&r, "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
                               "[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\"\"}}]}}]}"),
                     0);
    assert_int_equal(chunk(&r, "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
                               "[{\"index\":0,\"function\":{\"arguments\":\":1}\"}},{\"index\":1,"
                               "\"function\":{\"arguments\":\"{}\"}}]}}]}"),
                     0);
    got = events_json(ar_buf_span(&r.out));
    /* message_start, start#0 (generated id), delta, delta, stop#0, start#1, delta */
    assert_int_equal(json_array_size(got), 7);
    assert_json_str(json_array_get(got, 1),
                    "[\"content_block_start\",{\"type\":\"content_block_start\",\"index\":0,"
                    "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_airouter_0\",\"name\":"
                    "\"\",\"input\":{}}}]");
    assert_json_str(json_array_get(got, 3),
                    "[\"content_block_delta\",{\"type\":\"content_block_delta\",\"index\":0,"
                    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\":1}\"}}]");
    assert_json_str(json_array_get(got, 6),
                    "[\"content_block_delta\",{\"type\":\"content_block_delta\",\"index\":1,"
                    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}]");
    json_decref(got);
    ar_buf_dispose(&r.out);
}

/* ---- errors ---- */

static void test_error_types(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *type, *want;
    } cases[] = {
        {400, "invalid_request_error", "invalid_request_error"},
        {401, "authentication_error", "authentication_error"},
        {402, "invalid_request_error", "billing_error"},
        {403, "permission_error", "permission_error"},
        {404, "not_found_error", "not_found_error"},
        {413, "invalid_request_error", "request_too_large"},
        {422, "invalid_request_error", "invalid_request_error"},
        {429, "rate_limit_error", "rate_limit_error"},
        {500, "api_error", "api_error"},
        {502, "api_error", "api_error"},
        {503, "service_unavailable_error", "overloaded_error"},
        {504, "timeout_error", "timeout_error"},
        {529, "api_error", "overloaded_error"},
        /* inside a stream only the OpenAI type is known */
        {0, "rate_limit_error", "rate_limit_error"},
        {0, "service_unavailable_error", "overloaded_error"},
        {0, "api_error", "api_error"},
        {0, "server_error", "api_error"},
        {0, NULL, "api_error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (strcmp(ar_anth_error_type(cases[i].status, cases[i].type), cases[i].want) != 0)
            fail_msg("case %zu: %s", i, ar_anth_error_type(cases[i].status, cases[i].type));
    }
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    assert_int_equal(
        ar_anth_error_json(404, "not_found_error", "The model 'x\"y' does not exist\n", &out), 0);
    json_t *want = loads("{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
                         "\"message\":\"The model 'x\\\"y' does not exist\\n\"}}");
    assert_json_text(out.ptr, out.len, want);
    json_decref(want);
    ar_buf_reset(&out);
    ar_anth_front_t st;
    ar_anth_front_init(&st, "m");
    assert_int_equal(ar_anth_front_error_event(&st, "api_error", "upstream stream broke", &out), 0);
    assert_true(st.finished);
    json_t *got = events_json(ar_buf_span(&out));
    assert_json_str(got, "[[\"error\",{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                         "\"message\":\"upstream stream broke\"}}]]");
    json_decref(got);
    ar_buf_dispose(&out);
}

static void test_count_tokens(void **state)
{
    (void)state;
    /* 40 characters of text -> 10; image data, types and ids are not counted */
    json_t *a =
        loads("{\"model\":\"m\",\"system\":\"0123456789\",\"messages\":[{\"role\":\"user\","
              "\"content\":[{\"type\":\"text\",\"text\":\"0123456789\"},{\"type\":\"image\","
              "\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":"
              "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}]},{\"role\":\"assistant\","
              "\"content\":\"01234567890123456789\"}]}");
    assert_int_equal(ar_anth_count_tokens(a), 10);
    json_decref(a);
    /* tools count whole; nothing at all still counts one */
    a = loads("{\"model\":\"m\",\"messages\":[],\"tools\":[{\"name\":\"f\",\"input_schema\":{}}]}");
    assert_true(ar_anth_count_tokens(a) >= 8);
    json_decref(a);
    a = loads("{\"model\":\"m\",\"messages\":[]}");
    assert_int_equal(ar_anth_count_tokens(a), 1);
    json_decref(a);
    /* multi-byte characters count once */
    a = loads("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"ééééééééé\"}]}");
    assert_int_equal(ar_anth_count_tokens(a), 3);
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_front_request),         cmocka_unit_test(test_front_request_cases),
        cmocka_unit_test(test_front_mid_system),      cmocka_unit_test(test_front_validation),
        cmocka_unit_test(test_front_whole),           cmocka_unit_test(test_front_stream_text),
        cmocka_unit_test(test_front_stream_tools),    cmocka_unit_test(test_front_stream_edges),
        cmocka_unit_test(test_front_stream_estimate), cmocka_unit_test(test_error_types),
        cmocka_unit_test(test_count_tokens),          cmocka_unit_test(test_front_reasoning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
