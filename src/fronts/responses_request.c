/*
 * responses_request.c: the "in" half of the Responses front (see responses.h): a client's
 * POST /v1/responses body, validated, into the OpenAI chat request airouter routes, and the
 * request's input as stored items. Errors name the field the way the client wrote it
 * ("input[2].content[0].type"). What only a native Responses upstream can do is refused with
 * AR_ENOTSUP rather than silently dropped. No I/O beyond the random item ids.
 */
#include <stdio.h>
#include <string.h>

#include "core/crypto.h"
#include "core/str.h"
#include "fronts/fronts_int.h"
#include "fronts/responses.h"

#define FAIL_RC(code, ...)                                                                         \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        rc = (code);                                                                               \
        goto fail;                                                                                 \
    } while (0)
#define FAIL(...) FAIL_RC(AR_EINVAL, __VA_ARGS__)
#define NOTSUP(...) FAIL_RC(AR_ENOTSUP, __VA_ARGS__)

/* Item types that only an upstream with the Responses API's built-in tools can produce or
 * consume; anything else unknown is a client mistake. */
static const char *const native_items[] = {
    "item_reference",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "web_search_call",
    "image_generation_call",
    "code_interpreter_call",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "custom_tool_call",
    "custom_tool_call_output",
    "compaction",
};

static bool is_native_item(const char *type)
{
    for (size_t i = 0; type && i < sizeof(native_items) / sizeof(native_items[0]); i++) {
        if (strcmp(type, native_items[i]) == 0)
            return true;
    }
    return false;
}

/* The path of an item in errors: "input[3]", or "previous response item 3" for history,
 * which the client did not write itself. */
typedef struct where {
    const char *list; /* "input" or NULL for history */
    size_t i;
} where_t;

static const char *item_path(where_t w, char *buf, size_t n)
{
    if (w.list)
        snprintf(buf, n, "%s[%zu]", w.list, w.i);
    else
        snprintf(buf, n, "previous response item %zu", w.i);
    return buf;
}

/* ---- content ---- */

/* An input_image part as a chat image_url part. */
static int image_part(const json_t *p, const char *path, json_t **out, char *err, size_t errlen)
{
    int rc = 0;
    json_t *url = json_object_get(p, "image_url");
    *out = NULL;
    if (json_object_get(p, "file_id") && !json_is_null(json_object_get(p, "file_id")))
        NOTSUP("%s.file_id: images by file id need an upstream that speaks the Responses API "
               "natively; send image_url (a URL or a data: URL) instead",
               path);
    if (!json_is_string(url))
        FAIL("%s.image_url: Missing required parameter: an image URL or data: URL", path);
    json_t *inner = json_pack("{s:O}", "url", url);
    if (inner && json_is_string(json_object_get(p, "detail")) &&
        ar_xl_copy_key(inner, p, "detail")) {
        json_decref(inner);
        return AR_ENOMEM;
    }
    /* json_pack's o takes the reference, on failure too */
    *out = inner ? json_pack("{s:s,s:o}", "type", "image_url", "image_url", inner) : NULL;
    rc = *out ? 0 : AR_ENOMEM;
fail:
    return rc;
}

/* An input_file part with inline data as a chat file part. */
static int file_part(const json_t *p, const char *path, json_t **out, char *err, size_t errlen)
{
    int rc = 0;
    json_t *data = json_object_get(p, "file_data");
    *out = NULL;
    if (!json_is_string(data))
        NOTSUP("%s: files by file_id or file_url need an upstream that speaks the Responses "
               "API natively; send file_data (a data: URL) instead",
               path);
    json_t *file = json_pack("{s:O}", "file_data", data);
    if (file && json_is_string(json_object_get(p, "filename")))
        rc = ar_xl_copy_key(file, p, "filename");
    if (rc || !file) {
        json_decref(file);
        return AR_ENOMEM;
    }
    *out = json_pack("{s:s,s:o}", "type", "file", "file", file);
    rc = *out ? 0 : AR_ENOMEM;
fail:
    return rc;
}

/*
 * A message's content in chat form: a user message keeps parts (text, images, files,
 * audio); system, developer and assistant messages get their text joined, as chat only
 * takes text there (and several providers only a string).
 */
static int message_content(const json_t *content, bool user, const char *ipath, const char *field,
                           json_t **out, char *err, size_t errlen)
{
    int rc = 0;
    json_t *parts = NULL;
    ar_buf_t text;
    ar_buf_init(&text, AR_RESP_ITEM_MAX);
    *out = NULL;
    if (json_is_string(content)) {
        *out = json_incref((json_t *)content);
        return 0;
    }
    if (!json_is_array(content))
        FAIL("%s.%s: expected a string or an array of content parts", ipath, field);
    parts = json_array();
    if (!parts)
        FAIL_RC(AR_ENOMEM, "out of memory");
    size_t i;
    json_t *p;
    json_array_foreach (content, i, p) {
        char path[96];
        snprintf(path, sizeof(path), "%s.%s[%zu]", ipath, field, i);
        const char *type = ar_json_str(p, "type");
        json_t *part = NULL;
        if (!json_is_object(p))
            FAIL("%s: expected an object", path);
        if (!type)
            FAIL("%s.type: Missing required parameter", path);
        bool is_text = ar_xl_str_is(type, "input_text") || ar_xl_str_is(type, "output_text") ||
                       ar_xl_str_is(type, "text");
        if (is_text || ar_xl_str_is(type, "refusal")) {
            const char *key = is_text ? "text" : "refusal";
            json_t *t = json_object_get(p, key);
            if (!json_is_string(t))
                FAIL("%s.%s: expected a string", path, key);
            if (!user) {
                if (ar_buf_append(&text, json_string_value(t), json_string_length(t)))
                    FAIL_RC(AR_ETOOBIG, "%s: too large", path);
                continue;
            }
            part = json_pack("{s:s,s:O}", "type", "text", "text", t);
        } else if (!user &&
                   (ar_xl_str_is(type, "input_image") || ar_xl_str_is(type, "input_file") ||
                    ar_xl_str_is(type, "input_audio"))) {
            FAIL("%s.type: '%s' is allowed in user messages only", path, type);
        } else if (ar_xl_str_is(type, "input_image")) {
            rc = image_part(p, path, &part, err, errlen);
        } else if (ar_xl_str_is(type, "input_file")) {
            rc = file_part(p, path, &part, err, errlen);
        } else if (ar_xl_str_is(type, "input_audio")) {
            json_t *audio = json_object_get(p, "input_audio");
            if (!json_is_object(audio))
                FAIL("%s.input_audio: Missing required parameter", path);
            part = json_pack("{s:s,s:O}", "type", "input_audio", "input_audio", audio);
        } else {
            FAIL("%s.type: unknown content type '%s'", path, type);
        }
        if (rc)
            goto fail;
        rc = ar_xl_push(parts, part);
        if (rc)
            goto fail;
    }
    *out = user ? json_incref(parts) : jstr_span(ar_buf_span(&text));
    rc = *out ? 0 : AR_ENOMEM;
fail:
    json_decref(parts);
    ar_buf_dispose(&text);
    return rc;
}

/* ---- items ---- */

static json_t *last_msg(json_t *msgs)
{
    size_t n = json_array_size(msgs);
    return n ? json_array_get(msgs, n - 1) : NULL;
}

static int message_item(const json_t *item, const char *ipath, json_t *msgs, char *err,
                        size_t errlen)
{
    int rc = 0;
    const char *role = ar_json_str(item, "role");
    json_t *content = json_object_get(item, "content");
    json_t *c = NULL;
    if (!ar_xl_str_is(role, "user") && !ar_xl_str_is(role, "assistant") &&
        !ar_xl_str_is(role, "system") && !ar_xl_str_is(role, "developer"))
        FAIL("%s.role: expected one of 'user', 'assistant', 'system', 'developer'", ipath);
    if (!content)
        FAIL("%s.content: Missing required parameter", ipath);
    rc = message_content(content, ar_xl_str_is(role, "user"), ipath, "content", &c, err, errlen);
    if (rc)
        goto fail;
    rc = ar_xl_push(msgs, json_pack("{s:s,s:o}", "role", role, "content", c));
fail:
    return rc;
}

/* A function_call item as a tool call of the assistant message just before it (the text of
 * the same turn, or the calls before it), else of a new assistant message: chat holds one
 * turn's text and calls in one message. */
static int call_item(const json_t *item, const char *ipath, json_t *msgs, char *err, size_t errlen)
{
    int rc = 0;
    static const char *const fields[] = {"call_id", "name", "arguments"};
    for (size_t i = 0; i < 3; i++) {
        if (!json_is_string(json_object_get(item, fields[i])))
            FAIL("%s.%s: Missing required parameter (a string)", ipath, fields[i]);
    }
    json_t *call = json_pack("{s:O,s:s,s:{s:O,s:O}}", "id", json_object_get(item, "call_id"),
                             "type", "function", "function", "name", json_object_get(item, "name"),
                             "arguments", json_object_get(item, "arguments"));
    if (!call)
        return AR_ENOMEM;
    json_t *prev = last_msg(msgs);
    if (ar_xl_str_is(ar_json_str(prev, "role"), "assistant")) {
        json_t *calls = json_object_get(prev, "tool_calls");
        if (!calls) {
            calls = json_array();
            rc = ar_xl_set(prev, "tool_calls", calls);
            if (rc) {
                json_decref(call);
                return rc;
            }
        }
        return ar_xl_push(calls, call);
    }
    return ar_xl_push(
        msgs, json_pack("{s:s,s:n,s:[o]}", "role", "assistant", "content", "tool_calls", call));
fail:
    return rc;
}

static int output_item(const json_t *item, const char *ipath, json_t *msgs, char *err,
                       size_t errlen)
{
    int rc = 0;
    json_t *id = json_object_get(item, "call_id");
    json_t *output = json_object_get(item, "output");
    json_t *c = NULL;
    if (!json_is_string(id))
        FAIL("%s.call_id: Missing required parameter (a string)", ipath);
    if (json_is_array(output)) {
        /* text-only results become a string, which every provider takes for a tool message */
        bool text_only = true;
        size_t i;
        json_t *p;
        json_array_foreach (output, i, p)
            text_only = text_only && ar_xl_str_is(ar_json_str(p, "type"), "input_text");
        rc = message_content(output, !text_only, ipath, "output", &c, err, errlen);
        if (rc)
            goto fail;
    } else if (json_is_string(output)) {
        c = json_incref(output);
    } else {
        FAIL("%s.output: expected a string or an array of content parts", ipath);
    }
    rc = ar_xl_push(msgs,
                    json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id", id, "content", c));
fail:
    return rc;
}

static int one_item(const json_t *item, where_t w, json_t *msgs, char *err, size_t errlen)
{
    int rc = 0;
    char ipath[64];
    item_path(w, ipath, sizeof(ipath));
    if (!json_is_object(item))
        FAIL("%s: expected an object (an input item)", ipath);
    json_t *jtype = json_object_get(item, "type");
    const char *type = json_string_value(jtype);
    if (jtype && !type)
        FAIL("%s.type: expected a string", ipath);
    if (!type || ar_xl_str_is(type, "message"))
        return message_item(item, ipath, msgs, err, errlen);
    if (ar_xl_str_is(type, "function_call"))
        return call_item(item, ipath, msgs, err, errlen);
    if (ar_xl_str_is(type, "function_call_output"))
        return output_item(item, ipath, msgs, err, errlen);
    /* reasoning items carry the upstream's own (often encrypted) state: chat has no place
     * for it, and the text is the model's own scratch work */
    if (ar_xl_str_is(type, "reasoning"))
        return 0;
    if (is_native_item(type))
        NOTSUP("%s: items of type '%s' need an upstream that speaks the Responses API natively",
               ipath, type);
    FAIL("%s.type: unknown item type '%s'", ipath, type);
fail:
    return rc;
}

static int items(const json_t *arr, const char *list, json_t *msgs, char *err, size_t errlen)
{
    size_t i;
    json_t *item;
    json_array_foreach (arr, i, item) {
        int rc = one_item(item, (where_t){list, i}, msgs, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- tools ---- */

static bool allowed(const json_t *allow, const char *name)
{
    size_t i;
    json_t *t;
    if (!allow)
        return true;
    json_array_foreach (allow, i, t) {
        if (ar_xl_str_is(ar_json_str(t, "name"), name))
            return true;
    }
    return false;
}

/* tool_choice: the chat form in *choice (new ref, or NULL to send none), and in *allow the
 * allowed_tools list (borrowed) that filters the tools. */
static int tool_choice(const json_t *tc, json_t **choice, const json_t **allow, char *err,
                       size_t errlen)
{
    int rc = 0;
    *choice = NULL;
    *allow = NULL;
    if (!tc || json_is_null(tc))
        return 0;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (!ar_xl_str_is(s, "auto") && !ar_xl_str_is(s, "none") && !ar_xl_str_is(s, "required"))
            FAIL("tool_choice: expected 'auto', 'none', 'required' or an object");
        *choice = json_incref((json_t *)tc);
        return 0;
    }
    const char *type = ar_json_str(tc, "type");
    if (!json_is_object(tc) || !type)
        FAIL("tool_choice: expected 'auto', 'none', 'required' or an object with a type");
    if (ar_xl_str_is(type, "function")) {
        const char *name = ar_json_str(tc, "name");
        if (!name)
            FAIL("tool_choice.name: Missing required parameter");
        *choice = json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name", name);
        return *choice ? 0 : AR_ENOMEM;
    }
    if (ar_xl_str_is(type, "allowed_tools")) {
        const char *mode = ar_json_str(tc, "mode");
        json_t *tools = json_object_get(tc, "tools");
        if (!ar_xl_str_is(mode, "auto") && !ar_xl_str_is(mode, "required"))
            FAIL("tool_choice.mode: expected 'auto' or 'required'");
        if (!json_is_array(tools))
            FAIL("tool_choice.tools: Missing required parameter (an array)");
        size_t i;
        json_t *t;
        json_array_foreach (tools, i, t) {
            const char *tt = ar_json_str(t, "type");
            if (!ar_xl_str_is(tt, "function"))
                NOTSUP("tool_choice.tools[%zu]: the built-in tool '%s' runs only on an upstream "
                       "that speaks the Responses API natively",
                       i, tt ? tt : "");
            if (!ar_json_str(t, "name"))
                FAIL("tool_choice.tools[%zu].name: Missing required parameter", i);
        }
        *choice = json_string(mode);
        *allow = tools;
        return *choice ? 0 : AR_ENOMEM;
    }
    NOTSUP("tool_choice: the built-in tool '%s' runs only on an upstream that speaks the "
           "Responses API natively",
           type);
fail:
    return rc;
}

static int tools(const json_t *req, json_t *chat, char *err, size_t errlen)
{
    int rc = 0;
    json_t *in = json_object_get(req, "tools");
    json_t *out = NULL, *choice = NULL;
    const json_t *allow = NULL;
    if (in && !json_is_null(in) && !json_is_array(in))
        FAIL("tools: expected an array");
    rc = tool_choice(json_object_get(req, "tool_choice"), &choice, &allow, err, errlen);
    if (rc)
        goto fail;
    out = json_array();
    if (!out)
        FAIL_RC(AR_ENOMEM, "out of memory");
    size_t i;
    json_t *t;
    /* Built-in tools offered beside function tools (Codex always adds web_search and a
     * namespace of agent tools) are left out: the model works with the functions. Alone,
     * they are what the client wants, and only a native upstream has them. */
    bool functions = false;
    json_array_foreach (in, i, t) {
        functions = functions || ar_xl_str_is(ar_json_str(t, "type"), "function");
    }
    json_array_foreach (in, i, t) {
        const char *type = ar_json_str(t, "type");
        if (!json_is_object(t))
            FAIL("tools[%zu]: expected an object", i);
        if (!type)
            FAIL("tools[%zu].type: Missing required parameter", i);
        if (!ar_xl_str_is(type, "function") && functions)
            continue;
        if (!ar_xl_str_is(type, "function"))
            NOTSUP("tools[%zu]: the built-in tool '%s' runs only on an upstream that speaks the "
                   "Responses API natively",
                   i, type);
        const char *name = ar_json_str(t, "name");
        json_t *params = json_object_get(t, "parameters");
        json_t *strict = json_object_get(t, "strict");
        json_t *desc = json_object_get(t, "description");
        if (!name || !*name)
            FAIL("tools[%zu].name: Missing required parameter", i);
        if (params && !json_is_null(params) && !json_is_object(params))
            FAIL("tools[%zu].parameters: expected an object (a JSON schema)", i);
        if (strict && !json_is_null(strict) && !json_is_boolean(strict))
            FAIL("tools[%zu].strict: expected a boolean", i);
        if (desc && !json_is_null(desc) && !json_is_string(desc))
            FAIL("tools[%zu].description: expected a string", i);
        if (!allowed(allow, name))
            continue;
        json_t *fn = json_pack("{s:s}", "name", name);
        if (fn && json_is_string(desc))
            rc = ar_xl_copy_key(fn, t, "description");
        if (fn && !rc && json_is_object(params))
            rc = ar_xl_copy_key(fn, t, "parameters");
        if (fn && !rc && json_is_boolean(strict))
            rc = ar_xl_copy_key(fn, t, "strict");
        if (!fn || rc) {
            json_decref(fn);
            FAIL_RC(AR_ENOMEM, "out of memory");
        }
        rc = ar_xl_push(out, json_pack("{s:s,s:o}", "type", "function", "function", fn));
        if (rc)
            goto fail;
    }
    if (json_array_size(out))
        rc = ar_xl_set(chat, "tools", json_incref(out));
    if (!rc && choice) {
        /* a choice that names tools needs tools to name: none left (all filtered, or none
         * sent) means the model answers in text, which "none" says to chat upstreams */
        if (!json_array_size(out) && !ar_xl_str_is(json_string_value(choice), "none"))
            rc = allow ? ar_xl_set(chat, "tool_choice", json_string("none")) : 0;
        else
            rc = ar_xl_set(chat, "tool_choice", json_incref(choice));
    }
fail:
    json_decref(choice);
    json_decref(out);
    return rc;
}

/* ---- text, reasoning and the scalars ---- */

static int text_format(const json_t *req, json_t *chat, char *err, size_t errlen)
{
    int rc = 0;
    json_t *text = json_object_get(req, "text");
    if (!text || json_is_null(text))
        return 0;
    if (!json_is_object(text))
        FAIL("text: expected an object");
    json_t *verb = json_object_get(text, "verbosity");
    if (verb && !json_is_null(verb)) {
        if (!json_is_string(verb))
            FAIL("text.verbosity: expected 'low', 'medium' or 'high'");
        rc = ar_xl_set(chat, "verbosity", json_incref(verb));
        if (rc)
            goto fail;
    }
    json_t *f = json_object_get(text, "format");
    if (!f || json_is_null(f))
        return 0;
    const char *type = ar_json_str(f, "type");
    if (!json_is_object(f) || !type)
        FAIL("text.format.type: Missing required parameter");
    if (ar_xl_str_is(type, "text"))
        return 0;
    if (ar_xl_str_is(type, "json_object"))
        return ar_xl_set(chat, "response_format", json_pack("{s:s}", "type", "json_object"));
    if (!ar_xl_str_is(type, "json_schema"))
        FAIL("text.format.type: expected 'text', 'json_object' or 'json_schema', not '%s'", type);
    if (!ar_json_str(f, "name"))
        FAIL("text.format.name: Missing required parameter");
    if (!json_is_object(json_object_get(f, "schema")))
        FAIL("text.format.schema: Missing required parameter (an object)");
    json_t *js = json_object();
    static const char *const keys[] = {"name", "schema", "strict", "description"};
    for (size_t i = 0; js && !rc && i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(f, keys[i]);
        rc = v && !json_is_null(v) ? ar_xl_copy_key(js, f, keys[i]) : 0;
    }
    if (!js || rc) {
        json_decref(js);
        return AR_ENOMEM;
    }
    rc = ar_xl_set(chat, "response_format",
                   json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js));
fail:
    return rc;
}

static int reasoning(const json_t *req, json_t *chat, char *err, size_t errlen)
{
    int rc = 0;
    json_t *r = json_object_get(req, "reasoning");
    if (!r || json_is_null(r))
        return 0;
    if (!json_is_object(r))
        FAIL("reasoning: expected an object");
    json_t *effort = json_object_get(r, "effort");
    if (!effort || json_is_null(effort))
        return 0;
    if (!json_is_string(effort))
        FAIL("reasoning.effort: expected a string ('none', 'minimal', 'low', 'medium', 'high')");
    rc = ar_xl_set(chat, "reasoning_effort", json_incref(effort));
fail:
    return rc;
}

typedef enum { T_NUMBER, T_BOOL, T_STRING, T_POSINT } kind_t;

/* Fields copied as they are, after a type check; null means "not given". */
static const struct {
    const char *name, *to;
    kind_t kind;
} scalars[] = {
    {"temperature", "temperature", T_NUMBER},
    {"top_p", "top_p", T_NUMBER},
    {"parallel_tool_calls", "parallel_tool_calls", T_BOOL},
    {"user", "user", T_STRING},
    {"prompt_cache_key", "prompt_cache_key", T_STRING},
    {"safety_identifier", "safety_identifier", T_STRING},
    {"service_tier", "service_tier", T_STRING},
    {"max_output_tokens", "max_completion_tokens", T_POSINT},
};

static int copy_scalars(const json_t *req, json_t *chat, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        json_t *v = json_object_get(req, scalars[i].name);
        if (!v || json_is_null(v))
            continue;
        switch (scalars[i].kind) {
        case T_NUMBER:
            if (!json_is_number(v))
                FAIL("%s: expected a number", scalars[i].name);
            break;
        case T_BOOL:
            if (!json_is_boolean(v))
                FAIL("%s: expected a boolean", scalars[i].name);
            break;
        case T_STRING:
            if (!json_is_string(v))
                FAIL("%s: expected a string", scalars[i].name);
            break;
        case T_POSINT:
            if (!json_is_integer(v) || json_integer_value(v) < 1)
                FAIL("%s: expected an integer greater than or equal to 1", scalars[i].name);
            break;
        }
        rc = ar_xl_set(chat, scalars[i].to, json_incref(v));
        if (rc)
            goto fail;
    }
fail:
    return rc;
}

/* Checks the fields that change what the request means but have no chat form. */
static int unsupported(const json_t *req, char *err, size_t errlen)
{
    int rc = 0;
    json_t *bg = json_object_get(req, "background");
    if (bg && !json_is_null(bg) && !json_is_boolean(bg))
        FAIL("background: expected a boolean");
    if (json_is_true(bg))
        FAIL("background: background responses are not supported");
    json_t *conv = json_object_get(req, "conversation");
    if (conv && !json_is_null(conv))
        NOTSUP("conversation: conversations need an upstream that speaks the Responses API "
               "natively; use previous_response_id");
    json_t *prompt = json_object_get(req, "prompt");
    if (prompt && !json_is_null(prompt))
        NOTSUP("prompt: prompt templates need an upstream that speaks the Responses API "
               "natively");
fail:
    return rc;
}

int ar_resp_request_to_chat(const json_t *req, const json_t *history, json_t **out, char *err,
                            size_t errlen)
{
    int rc = 0;
    json_t *chat = json_object();
    json_t *msgs = json_array();
    *out = NULL;
    if (!chat || !msgs)
        FAIL_RC(AR_ENOMEM, "out of memory");
    if (!json_is_object(req))
        FAIL("The request body must be a JSON object");
    json_t *model = json_object_get(req, "model");
    json_t *input = json_object_get(req, "input");
    json_t *instr = json_object_get(req, "instructions");
    json_t *stream = json_object_get(req, "stream");
    if (!model || json_is_null(model))
        FAIL("Missing required parameter: 'model'");
    if (!(json_is_string(model) && json_string_length(model)) && !json_is_array(model))
        FAIL("model: expected a non-empty string");
    if (!input || json_is_null(input))
        FAIL("Missing required parameter: 'input'");
    if (!json_is_string(input) && !json_is_array(input))
        FAIL("input: expected a string or an array of input items");
    if (instr && !json_is_null(instr) && !json_is_string(instr))
        FAIL("instructions: expected a string");
    if (stream && !json_is_null(stream) && !json_is_boolean(stream))
        FAIL("stream: expected a boolean");
    if (history && !json_is_array(history))
        FAIL_RC(AR_EINVAL, "the previous response's items are not an array");
    rc = unsupported(req, err, errlen);
    if (rc)
        goto fail;
    if (json_is_string(instr) && json_string_length(instr))
        rc = ar_xl_push(msgs, json_pack("{s:s,s:O}", "role", "system", "content", instr));
    rc = rc ? rc : items(history, NULL, msgs, err, errlen);
    if (!rc && json_is_string(input))
        rc = ar_xl_push(msgs, json_pack("{s:s,s:O}", "role", "user", "content", input));
    else if (!rc)
        rc = items(input, "input", msgs, err, errlen);
    if (rc)
        goto fail;
    if (json_array_size(msgs) == 0)
        FAIL("input: at least one input item is required");
    rc = ar_xl_copy_key(chat, req, "model");
    rc = rc ? rc : ar_xl_set(chat, "messages", json_incref(msgs));
    rc = rc ? rc : copy_scalars(req, chat, err, errlen);
    rc = rc ? rc : tools(req, chat, err, errlen);
    rc = rc ? rc : text_format(req, chat, err, errlen);
    rc = rc ? rc : reasoning(req, chat, err, errlen);
    if (!rc && json_is_true(stream)) {
        rc = ar_xl_set(chat, "stream", json_true());
        rc = rc ? rc : ar_xl_set(chat, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    if (rc)
        goto fail;
    *out = chat;
    chat = NULL;
fail:
    if (rc == AR_ENOMEM)
        snprintf(err, errlen, "out of memory");
    json_decref(msgs);
    json_decref(chat);
    return rc;
}

/* ---- input items for storage ---- */

static const char *id_prefix(const char *type)
{
    if (ar_xl_str_is(type, "message"))
        return "msg_";
    if (ar_xl_str_is(type, "function_call"))
        return "fc_";
    if (ar_xl_str_is(type, "function_call_output"))
        return "fco_";
    if (ar_xl_str_is(type, "reasoning"))
        return "rs_";
    return "item_";
}

static json_t *fresh_id(const char *type)
{
    unsigned char raw[16];
    char hex[33], id[48];
    if (ar_random_bytes(raw, sizeof(raw)) != 0)
        return NULL;
    ar_hex_encode(raw, sizeof(raw), hex);
    snprintf(id, sizeof(id), "%s%s", id_prefix(type), hex);
    return json_string(id);
}

/* A message's string content as one part, the way the Responses API lists input items. */
static int content_as_parts(json_t *item)
{
    json_t *c = json_object_get(item, "content");
    if (!json_is_string(c))
        return 0;
    bool assistant = ar_xl_str_is(ar_json_str(item, "role"), "assistant");
    json_t *parts =
        assistant ? json_pack("[{s:s,s:O,s:[]}]", "type", "output_text", "text", c, "annotations")
                  : json_pack("[{s:s,s:O}]", "type", "input_text", "text", c);
    return ar_xl_set(item, "content", parts);
}

json_t *ar_resp_input_items(const json_t *req)
{
    json_t *input = json_object_get(req, "input");
    json_t *arr = NULL;
    int rc = 0;
    if (json_is_string(input)) {
        arr = json_pack("[{s:s,s:s,s:[{s:s,s:O}]}]", "type", "message", "role", "user", "content",
                        "type", "input_text", "text", input);
    } else if (json_is_array(input)) {
        arr = json_deep_copy(input);
    }
    if (!arr)
        return NULL;
    size_t i;
    json_t *item;
    json_array_foreach (arr, i, item) {
        if (!json_is_object(item))
            continue;
        if (!json_object_get(item, "type") && json_object_get(item, "role"))
            rc = rc ? rc : ar_xl_set(item, "type", json_string("message"));
        const char *type = ar_json_str(item, "type");
        if (!rc && ar_xl_str_is(type, "message"))
            rc = content_as_parts(item);
        if (!rc && !json_is_string(json_object_get(item, "id")))
            rc = ar_xl_set(item, "id", fresh_id(type));
    }
    if (rc) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}
