/*
 * anthropic_request.c: the Anthropic Messages front (see anthropic.h), requests: the body of
 * POST /v1/messages validated (with Anthropic-style messages naming the field) and turned
 * into an OpenAI chat request, and the count_tokens estimate. Answers, chunks and errors
 * going back to the client are anthropic_answer.c. No I/O, no state outside the structs it
 * is given.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "fronts/anthropic.h"
#include "fronts/fronts_int.h"

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

/*
 * thinking and output_config.effort become reasoning_effort: output_config's effort as it
 * is ("max" is "high"), else the thinking budget's size (under 2048 tokens "low", under
 * 8192 "medium", more "high"; adaptive thinking "medium"); disabled thinking sets nothing.
 */
static int front_reasoning(const json_t *a, json_t *oai, char *err, size_t errlen)
{
    int rc = 0;
    const char *effort = NULL;
    json_t *oc = json_object_get(a, "output_config");
    json_t *e = json_object_get(oc, "effort");
    json_t *t = json_object_get(a, "thinking");
    if (e && !json_is_string(e))
        FAIL("output_config.effort: Input should be a valid string");
    if (t && !json_is_null(t) && !json_is_object(t))
        FAIL("thinking: Input should be a valid object");
    const char *type = ar_json_str(t, "type");
    if (json_is_string(e)) {
        effort = json_string_value(e);
        if (ar_xl_str_is(effort, "max"))
            effort = "high";
    } else if (ar_xl_str_is(type, "enabled")) {
        json_t *b = json_object_get(t, "budget_tokens");
        if (!json_is_integer(b))
            FAIL("thinking.budget_tokens: Field required");
        json_int_t n = json_integer_value(b);
        effort = n < 2048 ? "low" : n < 8192 ? "medium" : "high";
    } else if (ar_xl_str_is(type, "adaptive")) {
        effort = "medium";
    } else if (type && !ar_xl_str_is(type, "disabled")) {
        FAIL("thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'");
    }
    if (effort)
        rc = ar_xl_set(oai, "reasoning_effort", json_string(effort));
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
    rc = rc ? rc : front_reasoning(a, oai, err, errlen);
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
