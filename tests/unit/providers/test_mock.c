/*
 * test_mock.c: unit tests of the in-process mock provider (providers/mock.c): the chat
 * answer echoes the last user message with usage numbers; the stream is a role chunk, one
 * chunk per word (or mock_stream_chunks parts), a finish chunk, a usage chunk only when
 * asked, and "data: [DONE]"; text completions; embeddings of `dimensions` values; and the
 * configured latency. Every answer is parsed back as JSON.
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
                           "  - name: plain\n    type: mock\n"
                           "  - name: slow3\n    type: mock\n"
                           "    mock_latency: 20ms\n    mock_stream_chunks: 3\n";

enum { PLAIN, SLOW3 }; /* f->prov */

static fx_t *fx_open(void)
{
    fx_t *f = fx_open_in("providers/mock", yaml);
    assert_true(
        ar_provider_can(f->prov[PLAIN], AR_PROV_INPROCESS | AR_PROV_STREAM | AR_PROV_EMBED));
    return f;
}

/* Answers body (a JSON text) on provider p; the answer lands in f->ans. */
static ar_call_t answer(fx_t *f, ar_provider_t *p, ar_endpoint_t ep, const char *body_json,
                        bool stream, bool wants_usage)
{
    json_error_t je;
    json_t *body = json_loads(body_json, 0, &je);
    if (!body)
        fail_msg("bad test body: %s", je.text);
    ar_call_t c = fx_call(f->pool, ep, body, stream, "mock-upstream");
    c.client_wants_usage = wants_usage;
    c.public_model = "mock-public";
    ar_buf_dispose(&f->ans.body);
    memset(&f->ans, 0, sizeof(f->ans));
    ar_buf_init(&f->ans.body, 1 << 20);
    assert_int_equal(ar_provider_answer(p, &c, &f->ans), 0);
    assert_int_equal(f->ans.status, 200);
    json_decref(body);
    c.body = NULL;
    return c;
}

static json_t *body_json(const fx_t *f)
{
    json_error_t je;
    json_t *v = json_loadb(f->ans.body.ptr, f->ans.body.len, 0, &je);
    if (!v)
        fail_msg("answer is not JSON (%s): %.*s", je.text, (int)f->ans.body.len, f->ans.body.ptr);
    return v;
}

static const char chat_body[] = "{\"model\":\"mock-public\",\"messages\":["
                                "{\"role\":\"system\",\"content\":\"be brief\"},"
                                "{\"role\":\"user\",\"content\":\"first\"},"
                                "{\"role\":\"assistant\",\"content\":\"x\"},"
                                "{\"role\":\"user\",\"content\":\"hello there world\"}]}";

static void test_chat(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_call_t c = answer(f, f->prov[PLAIN], AR_EP_CHAT, chat_body, false, false);
    assert_int_equal(f->ans.latency_ms, 0);
    assert_int_equal(f->ans.events_cnt, 0);
    json_t *v = body_json(f);
    assert_string_equal(json_string_value(json_object_get(v, "object")), "chat.completion");
    assert_string_equal(json_string_value(json_object_get(v, "model")), "mock-upstream");
    assert_true(strncmp(json_string_value(json_object_get(v, "id")), "chatcmpl-", 9) == 0);
    assert_true(json_is_integer(json_object_get(v, "created")));
    json_t *choices = json_object_get(v, "choices");
    assert_int_equal(json_array_size(choices), 1);
    json_t *ch = json_array_get(choices, 0);
    assert_int_equal(json_integer_value(json_object_get(ch, "index")), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "stop");
    json_t *msg = json_object_get(ch, "message");
    assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(msg, "content")),
                        "echo: hello there world");
    /* prompt: ceil(chars of all messages / 4) = ceil((8+5+1+17)/4); completion: words */
    json_t *want_usage = json_pack("{s:i, s:i, s:i}", "prompt_tokens", 8, "completion_tokens", 4,
                                   "total_tokens", 12);
    assert_json_equal(json_object_get(v, "usage"), want_usage);
    assert_true(c.usage.seen);
    assert_int_equal(c.usage.prompt_tokens, 8);
    assert_int_equal(c.usage.completion_tokens, 4);
    assert_int_equal(c.usage.total_tokens, 12);
    json_decref(want_usage);
    json_decref(v);

    /* content parts: the text parts joined by a space; quotes survive escaping */
    answer(f, f->prov[PLAIN], AR_EP_CHAT,
           "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
           "\"say \\\"hi\\\"\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x\"}},"
           "{\"type\":\"text\",\"text\":\"twice\\n\"}]}]}",
           false, false);
    v = body_json(f);
    msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")),
                        "echo: say \"hi\" twice\n");
    json_decref(v);

    /* no user message at all: an empty echo, still a valid answer */
    answer(f, f->prov[PLAIN], AR_EP_CHAT, "{\"messages\":[]}", false, false);
    v = body_json(f);
    msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "echo: ");
    json_decref(v);
    fx_close(f);
}

/* The data of each frame, checked to be exactly one SSE event each. */
static json_t *frame_json(const ar_span_t *ev, bool *is_done)
{
    assert_true(ev->len > 8);
    assert_memory_equal(ev->ptr, "data: ", 6);
    assert_memory_equal(ev->ptr + ev->len - 2, "\n\n", 2);
    ar_span_t data = ar_span(ev->ptr + 6, ev->len - 8);
    assert_null(memchr(data.ptr, '\n', data.len));
    *is_done = ar_span_eq(data, AR_LIT("[DONE]"));
    if (*is_done)
        return NULL;
    json_error_t je;
    json_t *v = json_loadb(data.ptr, data.len, 0, &je);
    if (!v)
        fail_msg("chunk is not JSON (%s): %.*s", je.text, (int)data.len, data.ptr);
    return v;
}

/* Checks the stream in f->ans; returns the number of content chunks and the joined text. */
static size_t check_stream(fx_t *f, bool wants_usage, char *text, size_t text_cap,
                           const ar_call_t *c)
{
    size_t n = f->ans.events_cnt;
    assert_true(n >= 4);
    size_t content_chunks = 0;
    text[0] = '\0';
    const char *id = NULL;
    char id_buf[64] = "";
    for (size_t i = 0; i < n; i++) {
        bool done;
        json_t *v = frame_json(&f->ans.events[i], &done);
        if (i == n - 1) {
            assert_true(done); /* the last frame is exactly "data: [DONE]\n\n" */
            assert_int_equal(f->ans.events[i].len, strlen("data: [DONE]\n\n"));
            break;
        }
        assert_false(done);
        assert_string_equal(json_string_value(json_object_get(v, "object")),
                            "chat.completion.chunk");
        assert_string_equal(json_string_value(json_object_get(v, "model")), "mock-upstream");
        id = json_string_value(json_object_get(v, "id"));
        if (i == 0)
            snprintf(id_buf, sizeof(id_buf), "%s", id);
        assert_string_equal(id, id_buf); /* one id for the whole stream */
        json_t *choices = json_object_get(v, "choices");
        bool usage_chunk = wants_usage && i == n - 2;
        if (usage_chunk) {
            assert_int_equal(json_array_size(choices), 0);
            json_t *want =
                json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)c->usage.prompt_tokens,
                          "completion_tokens", (json_int_t)c->usage.completion_tokens,
                          "total_tokens", (json_int_t)c->usage.total_tokens);
            assert_json_equal(json_object_get(v, "usage"), want);
            json_decref(want);
            json_decref(v);
            continue;
        }
        /* "usage": null on every other chunk when usage was asked for, absent otherwise */
        json_t *u = json_object_get(v, "usage");
        if (wants_usage)
            assert_true(json_is_null(u));
        else
            assert_null(u);
        assert_int_equal(json_array_size(choices), 1);
        json_t *ch = json_array_get(choices, 0);
        json_t *delta = json_object_get(ch, "delta");
        assert_true(json_is_object(delta));
        json_t *fin = json_object_get(ch, "finish_reason");
        size_t finish_at = n - (wants_usage ? 3 : 2);
        if (i == 0) {
            /* the role chunk first */
            assert_string_equal(json_string_value(json_object_get(delta, "role")), "assistant");
            assert_string_equal(json_string_value(json_object_get(delta, "content")), "");
            assert_true(json_is_null(fin));
        } else if (i == finish_at) {
            assert_string_equal(json_string_value(fin), "stop");
            assert_int_equal(json_object_size(delta), 0);
        } else {
            assert_true(json_is_null(fin));
            assert_null(json_object_get(delta, "role"));
            const char *piece = json_string_value(json_object_get(delta, "content"));
            assert_non_null(piece);
            assert_true(strlen(text) + strlen(piece) < text_cap);
            strcat(text, piece);
            content_chunks++;
        }
        json_decref(v);
    }
    return content_chunks;
}

static void test_stream_per_word(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    char text[256];
    ar_call_t c = answer(f, f->prov[PLAIN], AR_EP_CHAT, chat_body, true, false);
    assert_int_equal(f->ans.body.len, 0);
    /* role, 4 words ("echo:", "hello", "there", "world"), finish, [DONE] */
    assert_int_equal(f->ans.events_cnt, 7);
    assert_int_equal(check_stream(f, false, text, sizeof(text), &c), 4);
    assert_string_equal(text, "echo: hello there world");
    assert_true(c.stream_done);
    assert_int_equal(c.usage.completion_tokens, 4);

    /* words split by newlines and tabs too: one non-empty chunk per word */
    c = answer(f, f->prov[PLAIN], AR_EP_CHAT,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"line one\\nline\\ttwo  "
               "end\"}]}",
               true, false);
    assert_int_equal(c.usage.completion_tokens, 6);
    assert_int_equal(f->ans.events_cnt, 1 + 6 + 1 + 1);
    assert_int_equal(check_stream(f, false, text, sizeof(text), &c), 6);
    assert_string_equal(text, "echo: line one\nline\ttwo  end");
    for (size_t i = 1; i <= 6; i++) {
        bool done;
        json_t *v = frame_json(&f->ans.events[i], &done);
        json_t *delta = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "delta");
        const char *piece = json_string_value(json_object_get(delta, "content"));
        size_t words = 0;
        for (const char *q = piece; *q; q++)
            words += (*q != ' ' && *q != '\n' && *q != '\t') &&
                     (q == piece || q[-1] == ' ' || q[-1] == '\n' || q[-1] == '\t');
        assert_int_equal(words, 1);
        json_decref(v);
    }

    /* with usage asked for: one more chunk, right before [DONE] */
    c = answer(f, f->prov[PLAIN], AR_EP_CHAT, chat_body, true, true);
    assert_int_equal(f->ans.events_cnt, 8);
    assert_int_equal(check_stream(f, true, text, sizeof(text), &c), 4);
    assert_string_equal(text, "echo: hello there world");
    fx_close(f);
}

static void test_stream_fixed_chunks(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    char text[256];
    ar_call_t c = answer(f, f->prov[SLOW3], AR_EP_CHAT, chat_body, true, true);
    assert_int_equal(f->ans.latency_ms, 20);
    assert_int_equal(f->ans.events_cnt, 1 + 3 + 1 + 1 + 1);
    assert_int_equal(check_stream(f, true, text, sizeof(text), &c), 3);
    assert_string_equal(text, "echo: hello there world");
    /* a text shorter than the chunk count still streams all of it */
    c = answer(f, f->prov[SLOW3], AR_EP_CHAT, "{\"messages\":[]}", true, false);
    assert_int_equal(check_stream(f, false, text, sizeof(text), &c), 3);
    assert_string_equal(text, "echo: ");
    fx_close(f);
}

typedef struct sse_count {
    const ar_inproc_answer_t *ans;
    size_t cnt;
} sse_count_t;

static int count_event(void *ud, const ar_sse_event_t *ev)
{
    sse_count_t *s = ud;
    assert_true(s->cnt < s->ans->events_cnt);
    /* each parsed event is exactly one frame, byte for byte */
    assert_true(ar_span_eq(ev->raw, s->ans->events[s->cnt]));
    s->cnt++;
    return 0;
}

static void test_stream_frames_parse_as_sse(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    for (int usage = 0; usage < 2; usage++) {
        answer(f, f->prov[PLAIN], AR_EP_CHAT, chat_body, true, usage);
        /* concatenated, the frames are a stream the SSE parser splits back into the frames */
        ar_buf_t all;
        ar_buf_init(&all, 1 << 20);
        for (size_t i = 0; i < f->ans.events_cnt; i++)
            assert_int_equal(ar_buf_append_span(&all, f->ans.events[i]), 0);
        sse_count_t s = {&f->ans, 0};
        assert_int_equal(fx_sse_feed(ar_buf_span(&all), all.len, count_event, &s), 0);
        assert_int_equal(s.cnt, f->ans.events_cnt);
        ar_buf_dispose(&all);
    }
    fx_close(f);
}

static void test_completions(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_call_t c = answer(f, f->prov[PLAIN], AR_EP_COMPLETIONS,
                         "{\"model\":\"m\",\"prompt\":\"say this is a test\",\"max_tokens\":7}",
                         false, false);
    json_t *v = body_json(f);
    assert_string_equal(json_string_value(json_object_get(v, "object")), "text_completion");
    assert_true(strncmp(json_string_value(json_object_get(v, "id")), "cmpl-", 5) == 0);
    json_t *ch = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "text")), "echo: say this is a test");
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "stop");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(v, "usage"), "prompt_tokens")),
        (18 + 3) / 4);
    assert_int_equal(c.usage.completion_tokens, 6);
    json_decref(v);
    /* a prompt list: the first prompt */
    answer(f, f->prov[PLAIN], AR_EP_COMPLETIONS, "{\"prompt\":[\"one\",\"two\"]}", false, false);
    v = body_json(f);
    ch = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "text")), "echo: one");
    json_decref(v);
    fx_close(f);
}

static void test_embeddings(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_call_t c =
        answer(f, f->prov[PLAIN], AR_EP_EMBEDDINGS,
               "{\"model\":\"e\",\"input\":\"hello world\",\"dimensions\":16}", false, false);
    json_t *v = body_json(f);
    assert_string_equal(json_string_value(json_object_get(v, "object")), "list");
    assert_string_equal(json_string_value(json_object_get(v, "model")), "mock-upstream");
    json_t *data = json_object_get(v, "data");
    assert_int_equal(json_array_size(data), 1);
    json_t *e0 = json_array_get(data, 0);
    assert_string_equal(json_string_value(json_object_get(e0, "object")), "embedding");
    assert_int_equal(json_integer_value(json_object_get(e0, "index")), 0);
    json_t *vec = json_object_get(e0, "embedding");
    assert_int_equal(json_array_size(vec), 16);
    for (size_t i = 0; i < 16; i++) {
        double x = json_number_value(json_array_get(vec, i));
        assert_true(json_is_number(json_array_get(vec, i)));
        assert_true(x >= -1.0 && x <= 1.0);
    }
    json_t *want_usage = json_pack("{s:i, s:i}", "prompt_tokens", 3, "total_tokens", 3);
    assert_json_equal(json_object_get(v, "usage"), want_usage);
    json_decref(want_usage);
    assert_int_equal(c.usage.completion_tokens, 0);
    /* deterministic: the same input gives the same vector */
    json_t *first = json_deep_copy(vec);
    json_decref(v);
    answer(f, f->prov[PLAIN], AR_EP_EMBEDDINGS,
           "{\"model\":\"e\",\"input\":\"hello world\",\"dimensions\":16}", false, false);
    v = body_json(f);
    assert_json_equal(json_object_get(json_array_get(json_object_get(v, "data"), 0), "embedding"),
                      first);
    json_decref(first);
    json_decref(v);

    /* a list of inputs: one embedding each, in order; default dimensions 8 */
    answer(f, f->prov[PLAIN], AR_EP_EMBEDDINGS, "{\"input\":[\"a\",\"bb\",\"ccc\"]}", false, false);
    v = body_json(f);
    data = json_object_get(v, "data");
    assert_int_equal(json_array_size(data), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(data, i);
        assert_int_equal(json_integer_value(json_object_get(e, "index")), (json_int_t)i);
        assert_int_equal(json_array_size(json_object_get(e, "embedding")), 8);
    }
    json_decref(v);

    answer(f, f->prov[PLAIN], AR_EP_EMBEDDINGS, "{\"input\":\"x\",\"dimensions\":3072}", false,
           false);
    v = body_json(f);
    vec = json_object_get(json_array_get(json_object_get(v, "data"), 0), "embedding");
    assert_int_equal(json_array_size(vec), 3072);
    json_decref(v);
    fx_close(f);
}

static void test_latency(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    answer(f, f->prov[SLOW3], AR_EP_CHAT, chat_body, false, false);
    assert_int_equal(f->ans.latency_ms, 20); /* reported, not slept */
    answer(f, f->prov[SLOW3], AR_EP_EMBEDDINGS, "{\"input\":\"x\"}", false, false);
    assert_int_equal(f->ans.latency_ms, 20);
    answer(f, f->prov[PLAIN], AR_EP_CHAT, chat_body, false, false);
    assert_int_equal(f->ans.latency_ms, 0);
    fx_close(f);
}

/* Issue 7, item 4(a): the mock answers in process, and a body jansson cannot load is the
 * client's 400 there too (AR_EINVAL with the reason), not AR_EPARSE. */
static void test_untranslatable_bodies(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    static const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}";
    ar_call_t c = fx_raw_call(f->pool, AR_EP_CHAT, AR_LIT(body), "mock-upstream");
    ar_buf_dispose(&f->ans.body);
    memset(&f->ans, 0, sizeof(f->ans));
    ar_buf_init(&f->ans.body, 1 << 20);
    assert_int_equal(ar_provider_answer(f->prov[PLAIN], &c, &f->ans), AR_EINVAL);
    assert_non_null(c.error_detail);
    assert_non_null(strstr(c.error_detail, "request body cannot be translated: invalid Unicode"));
    fx_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_stream_per_word),
        cmocka_unit_test(test_stream_fixed_chunks),
        cmocka_unit_test(test_stream_frames_parse_as_sse),
        cmocka_unit_test(test_completions),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_untranslatable_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
