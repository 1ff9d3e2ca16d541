/*
 * anthropic_request.c: the Anthropic Messages front (see anthropic.h), for clients that speak
 * Anthropic (POST /v1/messages): their requests into OpenAI chat requests, and OpenAI
 * answers, chunks and errors back into Anthropic messages, events and error bodies; also the
 * count_tokens estimate. The provider side is providers/anthropic_xlate.h. No I/O, no state
 * outside the structs it is given.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "fronts/fronts_int.h"

/* The Anthropic stop_reason for an OpenAI finish_reason. */
static const char *stop_reason_of(ar_span_t finish)
{
    if (ar_xl_span_is(finish, "length"))
        return "max_tokens";
    if (ar_xl_span_is(finish, "tool_calls") || ar_xl_span_is(finish, "function_call"))
        return "tool_use";
    if (ar_xl_span_is(finish, "content_filter"))
        return "refusal";
    return "end_turn";
}
/* ==== front side: Anthropic request -> OpenAI request ==== */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        rc = AR_EINVAL;                                                                            \
        goto fail;                                                                                 \
    } while (0)

/* An Anthropic source (base64, url, text) as a URL for OpenAI's image_url / file_data. */
static json_t *source_url(const json_t *src)
{
    const char *type = ar_json_str(src, "type");
    if (ar_xl_str_is(type, "url"))
        return json_incref(json_object_get(src, "url"));
    if (!ar_xl_str_is(type, "base64"))
        return NULL;
    ar_span_t mt = ar_json_span(src, "media_type");
    ar_span_t data = ar_json_span(src, "data");
    if (!mt.ptr || !data.ptr)
        return NULL;
    ar_buf_t b;
    ar_buf_init(&b, 1u << 30);
    int rc = ar_buf_append_str(&b, "data:");
    rc = rc ? rc : ar_buf_append_span(&b, mt);
    rc = rc ? rc : ar_buf_append_str(&b, ";base64,");
    rc = rc ? rc : ar_buf_append_span(&b, data);
    json_t *url = rc ? NULL : jstr_span(ar_buf_span(&b));
    ar_buf_dispose(&b);
    return json_is_string(url) ? url : NULL;
}

/* The text of a tool_result's content (a string or text blocks), or parts when it has
 * images (OpenAI tool messages officially hold text, the Anthropic provider takes both). */
static int tool_result_content(const json_t *content, json_t **out, char *err, size_t errlen,
                               size_t mi, size_t bi)
{
    int rc = 0;
    json_t *parts = NULL;
    ar_buf_t text;
    ar_buf_init(&text, 1u << 30);
    bool images = false;
    *out = NULL;
    if (!content || json_is_string(content)) {
        *out = content ? json_incref((json_t *)content) : json_string("");
        return *out ? 0 : AR_ENOMEM;
    }
    if (!json_is_array(content))
        FAIL("messages.%zu.content.%zu.content: Input should be a valid string or list", mi, bi);
    parts = json_array();
    size_t i;
    json_t *b;
    json_array_foreach (content, i, b) {
        const char *type = ar_json_str(b, "type");
        if (ar_xl_str_is(type, "text")) {
            ar_span_t t = ar_json_span(b, "text");
            if (text.len && ar_buf_append_str(&text, "\n"))
                FAIL("messages.%zu.content.%zu.content: too large", mi, bi);
            if (ar_buf_append_span(&text, t))
                FAIL("messages.%zu.content.%zu.content: too large", mi, bi);
            rc = ar_xl_push(parts, json_pack("{s:s,s:o}", "type", "text", "text", jstr_span(t)));
        } else if (ar_xl_str_is(type, "image")) {
            json_t *url = source_url(json_object_get(b, "source"));
            if (!url)
                FAIL("messages.%zu.content.%zu.content.%zu.source: unsupported image source", mi,
                     bi, i);
            images = true;
            rc = ar_xl_push(
                parts, json_pack("{s:s,s:{s:o}}", "type", "image_url", "image_url", "url", url));
        } else {
            FAIL("messages.%zu.content.%zu.content.%zu.type: unsupported block type in a "
                 "tool_result",
                 mi, bi, i);
        }
        if (rc)
            goto fail;
    }
    *out = images ? json_incref(parts) : jstr_span(ar_buf_span(&text));
    rc = *out ? 0 : AR_ENOMEM;
fail:
    json_decref(parts);
    ar_buf_dispose(&text);
    return rc;
}

/* A user turn: tool_result blocks become tool messages (first, as OpenAI wants them right
 * after the assistant's tool calls), the rest one user message with parts. */
static int front_user(const json_t *content, size_t mi, json_t *msgs, char *err, size_t errlen)
{
    int rc = 0;
    json_t *parts = json_array();
    if (!parts)
        return AR_ENOMEM;
    size_t i;
    json_t *b;
    json_array_foreach (content, i, b) {
        const char *type = ar_json_str(b, "type");
        json_t *part = NULL;
        if (ar_xl_str_is(type, "text")) {
            json_t *t = json_object_get(b, "text");
            if (!json_is_string(t))
                FAIL("messages.%zu.content.%zu.text: Field required", mi, i);
            part = json_pack("{s:s,s:O}", "type", "text", "text", t);
            if (part && ar_xl_copy_key(part, b, "cache_control")) {
                json_decref(part);
                part = NULL;
            }
        } else if (ar_xl_str_is(type, "image")) {
            json_t *url = source_url(json_object_get(b, "source"));
            if (!url)
                FAIL("messages.%zu.content.%zu.source: unsupported image source (base64 and url "
                     "are translated)",
                     mi, i);
            part = json_pack("{s:s,s:{s:o}}", "type", "image_url", "image_url", "url", url);
        } else if (ar_xl_str_is(type, "document")) {
            json_t *src = json_object_get(b, "source");
            if (ar_xl_str_is(ar_json_str(src, "type"), "text")) {
                part = json_pack("{s:s,s:s}", "type", "text", "text",
                                 str_or(ar_json_str(src, "data"), ""));
            } else {
                json_t *url =
                    ar_xl_str_is(ar_json_str(src, "type"), "base64") ? source_url(src) : NULL;
                if (!url)
                    FAIL("messages.%zu.content.%zu.source: unsupported document source (base64 "
                         "and text are translated)",
                         mi, i);
                part = json_pack("{s:s,s:{s:o}}", "type", "file", "file", "file_data", url);
            }
        } else if (ar_xl_str_is(type, "tool_result")) {
            const char *id = ar_json_str(b, "tool_use_id");
            json_t *c;
            if (!id)
                FAIL("messages.%zu.content.%zu.tool_use_id: Field required", mi, i);
            rc = tool_result_content(json_object_get(b, "content"), &c, err, errlen, mi, i);
            if (rc)
                goto fail;
            /* a tool message cannot come after the user text it answers for: keep them first */
            rc = ar_xl_push(
                msgs, json_pack("{s:s,s:s,s:o}", "role", "tool", "tool_call_id", id, "content", c));
            if (rc)
                goto fail;
            continue;
        } else {
            FAIL("messages.%zu.content.%zu.type: unsupported content block type '%s'", mi, i,
                 type ? type : "");
        }
        rc = ar_xl_push(parts, part);
        if (rc)
            goto fail;
    }
    if (json_array_size(parts))
        rc = ar_xl_push(msgs, json_pack("{s:s,s:O}", "role", "user", "content", parts));
fail:
    json_decref(parts);
    return rc;
}

/* An assistant turn: text blocks joined into content, tool_use blocks into tool_calls;
 * thinking blocks are dropped (their signatures mean nothing to other providers). */
static int front_assistant(const json_t *content, size_t mi, json_t *msgs, char *err, size_t errlen)
{
    int rc = 0;
    json_t *calls = json_array();
    ar_buf_t text;
    ar_buf_init(&text, 1u << 30);
    if (!calls)
        return AR_ENOMEM;
    size_t i;
    json_t *b;
    json_array_foreach (content, i, b) {
        const char *type = ar_json_str(b, "type");
        if (ar_xl_str_is(type, "text")) {
            if (ar_buf_append_span(&text, ar_json_span(b, "text")))
                FAIL("messages.%zu.content: too large", mi);
        } else if (ar_xl_str_is(type, "tool_use")) {
            const char *id = ar_json_str(b, "id");
            const char *name = ar_json_str(b, "name");
            json_t *input = json_object_get(b, "input");
            if (!id || !name)
                FAIL("messages.%zu.content.%zu: tool_use needs 'id' and 'name'", mi, i);
            ar_buf_t args;
            ar_buf_init(&args, 1u << 30);
            rc = input ? ar_json_dump(input, &args) : ar_buf_append_str(&args, "{}");
            if (!rc)
                rc = ar_xl_push(calls, json_pack("{s:s,s:s,s:{s:s,s:o}}", "id", id, "type",
                                                 "function", "function", "name", name, "arguments",
                                                 jstr_span(ar_buf_span(&args))));
            ar_buf_dispose(&args);
            if (rc)
                goto fail;
        } else if (!ar_xl_str_is(type, "thinking") && !ar_xl_str_is(type, "redacted_thinking")) {
            FAIL("messages.%zu.content.%zu.type: unsupported content block type '%s'", mi, i,
                 type ? type : "");
        }
    }
    json_t *m = json_pack("{s:s,s:o}", "role", "assistant", "content",
                          text.len || !json_array_size(calls) ? jstr_span(ar_buf_span(&text))
                                                              : json_null());
    if (m && json_array_size(calls) && json_object_set(m, "tool_calls", calls)) {
        json_decref(m);
        m = NULL;
    }
    rc = ar_xl_push(msgs, m);
fail:
    json_decref(calls);
    ar_buf_dispose(&text);
    return rc;
}

/* A system prompt (a string or text blocks) as one system message; `where` names it in
 * errors ("system", or "messages.N.content" for a system entry inside messages). */
static int front_system(const json_t *system, const char *where, json_t *msgs, char *err,
                        size_t errlen)
{
    int rc = 0;
    json_t *parts = NULL;
    if (!system)
        return 0;
    if (json_is_string(system)) {
        if (json_string_length(system) == 0)
            return 0;
        return ar_xl_push(msgs, json_pack("{s:s,s:O}", "role", "system", "content", system));
    }
    if (!json_is_array(system))
        FAIL("%s: Input should be a valid string or a list of text blocks", where);
    parts = json_array();
    size_t i;
    json_t *b;
    json_array_foreach (system, i, b) {
        json_t *t = json_object_get(b, "text");
        if (!ar_xl_str_is(ar_json_str(b, "type"), "text") || !json_is_string(t))
            FAIL("%s.%zu: system blocks must be text blocks", where, i);
        json_t *part = json_pack("{s:s,s:O}", "type", "text", "text", t);
        if (part && ar_xl_copy_key(part, b, "cache_control")) {
            json_decref(part);
            part = NULL;
        }
        rc = ar_xl_push(parts, part);
        if (rc)
            goto fail;
    }
    if (json_array_size(parts))
        rc = ar_xl_push(msgs, json_pack("{s:s,s:O}", "role", "system", "content", parts));
fail:
    json_decref(parts);
    return rc;
}

static int front_tools(const json_t *a, json_t *oai, char *err, size_t errlen)
{
    int rc = 0;
    json_t *tools = json_object_get(a, "tools");
    json_t *out = NULL;
    if (!tools)
        return 0;
    if (!json_is_array(tools))
        FAIL("tools: Input should be a valid list");
    out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach (tools, i, t) {
        const char *type = ar_json_str(t, "type");
        const char *name = ar_json_str(t, "name");
        json_t *schema = json_object_get(t, "input_schema");
        if (type && strcmp(type, "custom") != 0)
            FAIL("tools.%zu.type: only client tools are translated, not '%s'", i, type);
        if (!name)
            FAIL("tools.%zu.name: Field required", i);
        if (!json_is_object(schema))
            FAIL("tools.%zu.input_schema: Field required", i);
        json_t *fn = json_pack("{s:s,s:O}", "name", name, "parameters", schema);
        if (fn && json_is_string(json_object_get(t, "description")))
            rc = ar_xl_copy_key(fn, t, "description");
        json_t *tool =
            rc || !fn ? NULL : json_pack("{s:s,s:o}", "type", "function", "function", fn);
        if (!tool)
            json_decref(fn);
        if (tool)
            rc = ar_xl_copy_key(tool, t, "cache_control");
        rc = rc ? rc : ar_xl_push(out, tool);
        if (rc)
            goto fail;
    }
    rc = json_array_size(out) ? ar_xl_set(oai, "tools", json_incref(out)) : 0;
    json_t *tc = json_object_get(a, "tool_choice");
    if (rc || !tc)
        goto fail;
    const char *type = ar_json_str(tc, "type");
    json_t *choice = NULL;
    if (ar_xl_str_is(type, "auto")) {
        choice = json_string("auto");
    } else if (ar_xl_str_is(type, "any")) {
        choice = json_string("required");
    } else if (ar_xl_str_is(type, "none")) {
        choice = json_string("none");
    } else if (ar_xl_str_is(type, "tool") && ar_json_str(tc, "name")) {
        choice = json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name",
                           ar_json_str(tc, "name"));
    } else {
        FAIL("tool_choice: Input should be auto, any, tool (with a name) or none");
    }
    rc = ar_xl_set(oai, "tool_choice", choice);
    if (!rc && json_is_true(json_object_get(tc, "disable_parallel_tool_use")))
        rc = ar_xl_set(oai, "parallel_tool_calls", json_false());
fail:
    json_decref(out);
    return rc;
}

static int front_messages(const json_t *in, json_t *msgs, char *err, size_t errlen)
{
    int rc = 0;
    size_t i;
    json_t *m;
    size_t turns = 0;
    json_array_foreach (in, i, m) {
        const char *role = ar_json_str(m, "role");
        json_t *content = json_object_get(m, "content");
        if (!json_is_object(m))
            FAIL("messages.%zu: Input should be a valid dictionary", i);
        bool system = ar_xl_str_is(role, "system");
        if (!ar_xl_str_is(role, "user") && !ar_xl_str_is(role, "assistant") && !system)
            FAIL("messages.%zu.role: Input should be 'user', 'assistant' or 'system'", i);
        if (!content)
            FAIL("messages.%zu.content: Field required", i);
        turns += !system;
        if (system) {
            /* Claude Code's per-turn controls: a system message at this very position (the
             * Anthropic provider folds it into the top-level system, in order) */
            char where[48];
            snprintf(where, sizeof(where), "messages.%zu.content", i);
            rc = front_system(content, where, msgs, err, errlen);
        } else if (json_is_string(content)) {
            rc = ar_xl_push(msgs, json_pack("{s:s,s:O}", "role", role, "content", content));
        } else if (!json_is_array(content)) {
            FAIL("messages.%zu.content: Input should be a valid string or list", i);
        } else if (role[0] == 'u') {
            rc = front_user(content, i, msgs, err, errlen);
        } else {
            rc = front_assistant(content, i, msgs, err, errlen);
        }
        if (rc)
            goto fail;
    }
    if (turns == 0)
        FAIL("messages: at least one user or assistant message is required");
fail:
    return rc;
}

/* Removes cache_control from message parts and tools: OpenAI's API refuses the field. */
static void strip_cache_control(json_t *oai)
{
    size_t i, k;
    json_t *m, *p;
    json_array_foreach (json_object_get(oai, "messages"), i, m) {
        json_array_foreach (json_object_get(m, "content"), k, p)
            json_object_del(p, "cache_control");
    }
    json_array_foreach (json_object_get(oai, "tools"), i, m)
        json_object_del(m, "cache_control");
}

int ar_anth_front_request(const json_t *a, bool keep_cache_control, json_t **out, char *err,
                          size_t errlen)
{
    int rc = 0;
    json_t *oai = json_object();
    json_t *msgs = json_array();
    *out = NULL;
    if (!oai || !msgs) {
        rc = AR_ENOMEM;
        goto fail;
    }
    if (!json_is_object(a))
        FAIL("The request body must be a JSON object");
    json_t *model = json_object_get(a, "model");
    json_t *max = json_object_get(a, "max_tokens");
    json_t *in = json_object_get(a, "messages");
    if (!model)
        FAIL("model: Field required");
    if (!json_is_string(model) || json_string_length(model) == 0)
        FAIL("model: Input should be a non-empty string");
    if (!max)
        FAIL("max_tokens: Field required");
    if (!json_is_integer(max) || json_integer_value(max) < 1)
        FAIL("max_tokens: Input should be an integer greater than or equal to 1");
    if (!in)
        FAIL("messages: Field required");
    if (!json_is_array(in))
        FAIL("messages: Input should be a valid list");
    if (json_array_size(in) == 0)
        FAIL("messages: at least one message is required");
    json_t *stream = json_object_get(a, "stream");
    if (stream && !json_is_boolean(stream))
        FAIL("stream: Input should be a valid boolean");
    rc = front_system(json_object_get(a, "system"), "system", msgs, err, errlen);
    rc = rc ? rc : front_messages(in, msgs, err, errlen);
    rc = rc ? rc : ar_xl_copy_key(oai, a, "model");
    rc = rc ? rc : (json_object_set(oai, "messages", msgs) ? AR_ENOMEM : 0);
    rc = rc ? rc : ar_xl_copy_key(oai, a, "max_tokens");
    if (rc)
        goto fail;
    /* top_k is left out: OpenAI-wire upstreams refuse unknown parameters */
    static const char *const numbers[] = {"temperature", "top_p"};
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]) && !rc; i++) {
        json_t *v = json_object_get(a, numbers[i]);
        if (v && !json_is_number(v))
            FAIL("%s: Input should be a valid number", numbers[i]);
        rc = v ? ar_xl_copy_key(oai, a, numbers[i]) : 0;
    }
    json_t *stop = json_object_get(a, "stop_sequences");
    if (stop && !json_is_array(stop))
        FAIL("stop_sequences: Input should be a valid list");
    if (!rc && json_array_size(stop))
        rc = ar_xl_set(oai, "stop", json_incref(stop));
    const char *user = ar_json_str(json_object_get(a, "metadata"), "user_id");
    if (!rc && user)
        rc = ar_xl_set(oai, "user", json_string(user));
    if (!rc && json_is_true(stream))
        rc = ar_xl_set(oai, "stream", json_true());
    if (!rc && json_is_true(stream))
        rc = ar_xl_set(oai, "stream_options", json_pack("{s:b}", "include_usage", 1));
    rc = rc ? rc : front_tools(a, oai, err, errlen);
    if (rc)
        goto fail;
    if (!keep_cache_control)
        strip_cache_control(oai);
    *out = oai;
    oai = NULL;
fail:
    json_decref(msgs);
    json_decref(oai);
    return rc;
}

/* ==== front side: OpenAI answers -> Anthropic answers ==== */

/* "msg_" + the OpenAI id without its "chatcmpl-" prefix; an id that came from Anthropic
 * ("chatcmpl-msg_...") gets its original back. */
static int append_msg_id(ar_buf_t *out, ar_span_t oai_id, bool escape)
{
    if (ar_span_starts(oai_id, AR_LIT("chatcmpl-")))
        oai_id = ar_span_skip(oai_id, 9);
    int rc = 0;
    if (!ar_span_starts(oai_id, AR_LIT("msg_")))
        rc = ar_buf_append_str(out, "msg_");
    if (oai_id.len == 0)
        return rc ? rc : ar_buf_append_str(out, "airouter");
    if (escape)
        return rc ? rc : ar_buf_append_json_escaped(out, oai_id);
    return rc ? rc : ar_buf_append_span(out, oai_id);
}

static int whole_blocks(const json_t *msg, json_t *blocks)
{
    ar_buf_t text;
    ar_buf_init(&text, 1u << 30);
    ar_span_t reasoning = ar_json_span(msg, "reasoning_content");
    int rc = 0;
    if (reasoning.len)
        rc = ar_xl_push(blocks, json_pack("{s:s,s:o,s:s}", "type", "thinking", "thinking",
                                          jstr_span(reasoning), "signature", ""));
    rc = rc ? rc : ar_provider_content_text(json_object_get(msg, "content"), "", &text);
    if (!rc && text.len == 0) /* an OpenAI refusal comes as text, like Claude's own refusals */
        rc = ar_buf_append_span(&text, ar_json_span(msg, "refusal"));
    if (!rc && text.len)
        rc = ar_xl_push(blocks, ar_xl_text_block(text.ptr, text.len));
    ar_buf_dispose(&text);
    size_t i;
    json_t *tc;
    json_array_foreach (json_object_get(msg, "tool_calls"), i, tc) {
        json_t *fn = json_object_get(tc, "function");
        ar_span_t args = ar_json_span(fn, "arguments");
        json_t *input = args.len ? ar_json_parse(args, NULL, 0) : NULL;
        if (!json_is_object(input)) {
            /* Anthropic inputs are objects: arguments that are not one cannot be relayed */
            json_decref(input);
            input = json_object();
        }
        if (!rc)
            rc = ar_xl_push(blocks, json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id",
                                              str_or(ar_json_str(tc, "id"), ""), "name",
                                              str_or(ar_json_str(fn, "name"), ""), "input", input));
        else
            json_decref(input);
    }
    return rc;
}

int ar_anth_front_whole(ar_span_t body, ar_buf_t *out)
{
    json_t *root = ar_json_parse(body, NULL, 0);
    json_t *res = NULL;
    json_t *blocks = json_array();
    int rc = AR_EUPSTREAM;
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    if (!json_is_object(msg) || !blocks)
        goto done;
    rc = whole_blocks(msg, blocks);
    if (rc)
        goto done;
    json_t *u = json_object_get(root, "usage");
    int64_t cached = int_of(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
    int64_t in = int_of(u, "prompt_tokens") - cached;
    ar_buf_t id;
    ar_buf_init(&id, 4096);
    rc = append_msg_id(&id, ar_json_span(root, "id"), false);
    res =
        rc ? NULL
           : json_pack("{s:o,s:s,s:s,s:s,s:O,s:s,s:n,s:{s:I,s:I,s:I,s:I}}", "id",
                       jstr_span(ar_buf_span(&id)), "type", "message", "role", "assistant", "model",
                       str_or(ar_json_str(root, "model"), ""), "content", blocks, "stop_reason",
                       stop_reason_of(ar_json_span(choice, "finish_reason")), "stop_sequence",
                       "usage", "input_tokens", (json_int_t)(in > 0 ? in : 0), "output_tokens",
                       (json_int_t)int_of(u, "completion_tokens"), "cache_creation_input_tokens",
                       (json_int_t)0, "cache_read_input_tokens", (json_int_t)cached);
    ar_buf_dispose(&id);
    rc = rc ? rc : (res ? ar_json_dump(res, out) : AR_ENOMEM);
done:
    json_decref(blocks);
    json_decref(res);
    json_decref(root);
    return rc;
}

/* ---- front side: OpenAI chunks -> Anthropic events ---- */

enum { BLOCK_NONE = 0, BLOCK_TEXT, BLOCK_TOOL, BLOCK_THINKING };

void ar_anth_front_init(ar_anth_front_t *st, const char *model)
{
    memset(st, 0, sizeof(*st));
    st->model = model;
    st->tool_index = -1;
}

static int event_begin(ar_buf_t *out, const char *name)
{
    return ar_buf_appendf(out, "event: %s\ndata: ", name);
}

static int front_message_start(ar_anth_front_t *st, ar_span_t chunk, ar_buf_t *out)
{
    ar_span_t id = AR_SPAN_NULL, model = AR_SPAN_NULL;
    (void)ar_xl_raw_str(chunk, "id", &id);
    int rc = event_begin(out, "message_start");
    rc = rc ? rc : ar_buf_append_str(out, "{\"type\":\"message_start\",\"message\":{\"id\":\"");
    rc = rc ? rc : append_msg_id(out, id, false);
    rc = rc ? rc
            : ar_buf_append_str(out, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"");
    if (ar_xl_raw_str(chunk, "model", &model) && model.len)
        rc = rc ? rc : ar_buf_append_span(out, model);
    else
        rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(st->model));
    /* the upstream's count when a chunk has carried it already, else the estimate (clients
     * such as LangChain take their input count from this event) */
    int64_t in =
        st->in || st->cached ? (st->in > st->cached ? st->in - st->cached : 0) : st->estimate;
    rc = rc ? rc
            : ar_buf_appendf(out,
                             "\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                             "\"usage\":{\"input_tokens\":%lld,\"output_tokens\":0}}}\n\n",
                             (long long)in);
    st->started = true;
    return rc;
}

static int close_block(ar_anth_front_t *st, ar_buf_t *out)
{
    if (st->kind == BLOCK_NONE)
        return 0;
    st->kind = BLOCK_NONE;
    int rc = event_begin(out, "content_block_stop");
    rc = rc ? rc
            : ar_buf_appendf(out, "{\"type\":\"content_block_stop\",\"index\":%d}\n\n",
                             st->blocks - 1);
    return rc;
}

/* Opens a text or thinking block unless one of that kind is open already. */
static int ensure_block(ar_anth_front_t *st, int kind, ar_buf_t *out)
{
    if (st->kind == kind)
        return 0;
    int rc = close_block(st, out);
    rc = rc ? rc : event_begin(out, "content_block_start");
    rc = rc ? rc
            : ar_buf_appendf(out,
                             "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":%s}"
                             "\n\n",
                             st->blocks,
                             kind == BLOCK_TEXT ? "{\"type\":\"text\",\"text\":\"\"}"
                                                : "{\"type\":\"thinking\",\"thinking\":\"\","
                                                  "\"signature\":\"\"}");
    st->kind = kind;
    st->blocks++;
    return rc;
}

/* A content_block_delta whose delta is {"type":T, field: raw string}. */
static int block_delta_event(const ar_anth_front_t *st, const char *type, const char *field,
                             ar_span_t raw, ar_buf_t *out)
{
    int rc = event_begin(out, "content_block_delta");
    rc = rc ? rc
            : ar_buf_appendf(out,
                             "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                             "\"%s\",\"%s\":",
                             st->blocks - 1, type, field);
    rc = rc ? rc : ar_buf_append_span(out, raw);
    rc = rc ? rc : ar_buf_append_str(out, "}}\n\n");
    return rc;
}

static int front_tool_call(ar_anth_front_t *st, ar_span_t tc, ar_buf_t *out)
{
    int64_t index = 0;
    ar_span_t fn = AR_SPAN_NULL, id = AR_SPAN_NULL, name = AR_SPAN_NULL, args;
    (void)ar_jscan_get_int(tc, AR_LIT("index"), &index);
    (void)ar_jscan_get(tc, AR_LIT("function"), &fn);
    bool has_id = ar_xl_raw_str(tc, "id", &id) && id.len;
    bool has_name = fn.len && ar_xl_raw_str(fn, "name", &name) && name.len;
    int rc = 0;
    if (st->kind != BLOCK_TOOL || has_id || has_name || index != st->tool_index) {
        rc = close_block(st, out);
        rc = rc ? rc : event_begin(out, "content_block_start");
        rc = rc ? rc
                : ar_buf_appendf(out,
                                 "{\"type\":\"content_block_start\",\"index\":%d,"
                                 "\"content_block\":{\"type\":\"tool_use\",\"id\":\"",
                                 st->blocks);
        if (has_id)
            rc = rc ? rc : ar_buf_append_span(out, id);
        else
            rc = rc ? rc : ar_buf_appendf(out, "toolu_airouter_%d", st->blocks);
        rc = rc ? rc
                : ar_buf_appendf(out, "\",\"name\":\"%.*s\",\"input\":{}}}\n\n", AR_SPAN_FMT(name));
        st->kind = BLOCK_TOOL;
        st->tool_index = index;
        st->blocks++;
    }
    ar_span_t inner;
    if (!rc && fn.len && ar_xl_raw_str_value(fn, "arguments", &args) &&
        ar_jscan_string(args, &inner) == 0 && inner.len)
        rc = block_delta_event(st, "input_json_delta", "partial_json", args, out);
    return rc;
}

static int front_finish(ar_anth_front_t *st, ar_buf_t *out)
{
    int rc = 0;
    if (!st->started)
        rc = front_message_start(st, AR_LIT("{}"), out);
    rc = rc ? rc : close_block(st, out);
    rc = rc ? rc : event_begin(out, "message_delta");
    rc = rc ? rc
            : ar_buf_appendf(out,
                             "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                             "\"stop_sequence\":null},\"usage\":{",
                             st->stop ? st->stop : "end_turn");
    if (st->in || st->cached)
        rc = rc ? rc
                : ar_buf_appendf(out, "\"input_tokens\":%lld,\"cache_read_input_tokens\":%lld,",
                                 (long long)(st->in > st->cached ? st->in - st->cached : 0),
                                 (long long)st->cached);
    rc = rc ? rc : ar_buf_appendf(out, "\"output_tokens\":%lld}}\n\n", (long long)st->out);
    rc = rc ? rc : event_begin(out, "message_stop");
    rc = rc ? rc : ar_buf_append_str(out, "{\"type\":\"message_stop\"}\n\n");
    st->finished = true;
    return rc;
}

static int error_event_raw(ar_buf_t *out, const char *type, ar_span_t raw_message)
{
    int rc = event_begin(out, "error");
    rc = rc ? rc
            : ar_buf_appendf(out,
                             "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":", type);
    rc = rc ? rc : ar_buf_append_span(out, raw_message);
    rc = rc ? rc : ar_buf_append_str(out, "}}\n\n");
    return rc;
}

static void front_usage(ar_anth_front_t *st, ar_span_t u)
{
    ar_span_t details;
    int64_t v;
    if (ar_jscan_get_int(u, AR_LIT("prompt_tokens"), &v) == 0)
        st->in = ar_tokens_clamp(v);
    if (ar_jscan_get_int(u, AR_LIT("completion_tokens"), &v) == 0)
        st->out = ar_tokens_clamp(v);
    if (ar_jscan_get(u, AR_LIT("prompt_tokens_details"), &details) == 0 &&
        ar_jscan_get_int(details, AR_LIT("cached_tokens"), &v) == 0)
        st->cached = ar_tokens_clamp(v);
}

static int front_choice(ar_anth_front_t *st, ar_span_t choice, ar_buf_t *out)
{
    ar_span_t delta, v, inner, calls, finish;
    int rc = 0;
    if (ar_jscan_get(choice, AR_LIT("delta"), &delta) == 0 && delta.len && delta.ptr[0] == '{') {
        if (ar_xl_raw_str_value(delta, "reasoning_content", &v) &&
            ar_jscan_string(v, &inner) == 0 && inner.len) {
            rc = ensure_block(st, BLOCK_THINKING, out);
            rc = rc ? rc : block_delta_event(st, "thinking_delta", "thinking", v, out);
        }
        if (!rc && ar_xl_raw_str_value(delta, "content", &v) && ar_jscan_string(v, &inner) == 0 &&
            inner.len) {
            rc = ensure_block(st, BLOCK_TEXT, out);
            rc = rc ? rc : block_delta_event(st, "text_delta", "text", v, out);
        }
        ar_jscan_iter_t it;
        ar_span_t tc;
        if (!rc && ar_jscan_get(delta, AR_LIT("tool_calls"), &calls) == 0 &&
            ar_jscan_array_begin(calls, &it) == 0) {
            while (!rc && ar_jscan_array_next(&it, &tc))
                rc = front_tool_call(st, tc, out);
        }
    }
    if (!rc && ar_xl_raw_str(choice, "finish_reason", &finish)) {
        st->stop = stop_reason_of(finish);
        rc = close_block(st, out);
    }
    return rc;
}

int ar_anth_front_chunk(ar_anth_front_t *st, ar_span_t data, ar_buf_t *out)
{
    ar_span_t v, choices, choice;
    data = ar_span_trim(data);
    if (st->finished)
        return 0;
    if (ar_xl_span_is(data, "[DONE]"))
        return front_finish(st, out);
    if (ar_json_validate(data, NULL, 0) != 0 || !data.len || data.ptr[0] != '{')
        return AR_EUPSTREAM;
    if (ar_jscan_get(data, AR_LIT("error"), &v) == 0 && v.len && v.ptr[0] == '{') {
        ar_span_t msg, type = AR_SPAN_NULL;
        (void)ar_xl_raw_str(v, "type", &type);
        char t[64];
        snprintf(t, sizeof(t), "%.*s", (int)(type.len < 63 ? type.len : 63),
                 type.ptr ? type.ptr : "");
        st->finished = true;
        if (!ar_xl_raw_str_value(v, "message", &msg))
            msg = AR_LIT("\"upstream error\"");
        return error_event_raw(out, ar_anth_error_type(0, t), msg);
    }
    if (ar_jscan_get(data, AR_LIT("usage"), &v) == 0 && v.len && v.ptr[0] == '{')
        front_usage(st, v);
    int rc = st->started ? 0 : front_message_start(st, data, out);
    ar_jscan_iter_t it;
    if (!rc && ar_jscan_get(data, AR_LIT("choices"), &choices) == 0 &&
        ar_jscan_array_begin(choices, &it) == 0 && ar_jscan_array_next(&it, &choice))
        rc = front_choice(st, choice, out); /* n > 1 has no Anthropic form: choice 0 only */
    return rc;
}

int ar_anth_front_end(ar_anth_front_t *st, ar_buf_t *out)
{
    return st->finished ? 0 : front_finish(st, out);
}

/* ---- front side: errors ---- */

const char *ar_anth_error_type(int status, const char *t)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    case 504: return "timeout_error";
    default: break;
    }
    if (status >= 500)
        return "api_error";
    if (status >= 400)
        return "invalid_request_error";
    /* inside a stream only the type is known */
    static const char *const same[] = {
        "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
        "rate_limit_error",      "timeout_error",        "overloaded_error"};
    for (size_t i = 0; t && i < sizeof(same) / sizeof(same[0]); i++) {
        if (strcmp(t, same[i]) == 0)
            return same[i];
    }
    if (ar_xl_str_is(t, "service_unavailable_error"))
        return "overloaded_error";
    return "api_error";
}

int ar_anth_error_json(int status, const char *openai_type, const char *message, ar_buf_t *out)
{
    int rc = ar_buf_appendf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"",
                            ar_anth_error_type(status, openai_type));
    rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(message ? message : ""));
    rc = rc ? rc : ar_buf_append_str(out, "\"}}");
    return rc;
}

int ar_anth_front_error_event(ar_anth_front_t *st, const char *openai_type, const char *message,
                              ar_buf_t *out)
{
    if (st)
        st->finished = true;
    int rc = event_begin(out, "error");
    rc = rc ? rc : ar_anth_error_json(0, openai_type, message, out);
    rc = rc ? rc : ar_buf_append_str(out, "\n\n");
    return rc;
}

/* ---- count_tokens ---- */

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Characters of the texts in v; media data, ids and type tags are not text the model reads
 * as such. */
static size_t text_chars(const json_t *v, int depth)
{
    if (depth > 64)
        return 0;
    if (json_is_string(v))
        return utf8_chars(json_string_value(v), json_string_length(v));
    size_t n = 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach (v, i, e)
            n += text_chars(e, depth + 1);
        return n;
    }
    const char *k;
    json_t *e;
    json_object_foreach ((json_t *)v, k, e) {
        static const char *const skip[] = {"type",      "data",        "media_type",
                                           "id",        "tool_use_id", "cache_control",
                                           "signature", "source",      "role"};
        bool skipped = false;
        for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
            skipped = skipped || strcmp(k, skip[i]) == 0;
        if (!skipped)
            n += text_chars(e, depth + 1);
    }
    return n;
}

int64_t ar_anth_count_tokens(const json_t *a)
{
    size_t chars =
        text_chars(json_object_get(a, "system"), 0) + text_chars(json_object_get(a, "messages"), 0);
    /* a tool definition is read whole, keys and all */
    ar_buf_t b;
    ar_buf_init(&b, 64u << 20);
    json_t *tools = json_object_get(a, "tools");
    if (tools && ar_json_dump(tools, &b) == 0)
        chars += utf8_chars(b.ptr, b.len);
    ar_buf_dispose(&b);
    int64_t n = (int64_t)((chars + 3) / 4);
    return n > 0 ? n : 1;
}
