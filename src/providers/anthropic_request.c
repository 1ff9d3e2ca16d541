/*
 * anthropic_request.c: the provider side of the OpenAI chat <-> Anthropic Messages
 * translation (see anthropic_xlate.h), requests: an OpenAI chat request into an Anthropic
 * Messages request, through a jansson tree once per attempt, or for the common text-only
 * shape straight from the client's raw JSON (the fast path). Answers are anthropic_answer.c,
 * stream events anthropic_stream.c; the front side (Anthropic clients) is in src/fronts/.
 * This file must stay free of I/O and of any state outside the structs it is given.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "providers/anthropic_int.h"

/* ==== provider side: OpenAI request -> Anthropic request ==== */

/*
 * A data: URL ("data:image/png;base64,....") or an http(s) URL as an Anthropic source.
 * Anthropic takes base64 data or a URL; other schemes cannot be expressed.
 */
static int media_source(ar_span_t url, json_t **src, const char **detail)
{
    *src = NULL;
    if (ar_span_istarts(url, AR_LIT("data:"))) {
        const char *comma = memchr(url.ptr, ',', url.len);
        if (!comma) {
            *detail = "a data: URL has no ','";
            return AR_EINVAL;
        }
        ar_span_t meta = ar_span(url.ptr + 5, (size_t)(comma - url.ptr - 5));
        if (meta.len < 7 || memcmp(meta.ptr + meta.len - 7, ";base64", 7) != 0) {
            *detail = "data: URLs must be base64 (data:<media type>;base64,<data>)";
            return AR_EINVAL;
        }
        const char *semi = memchr(meta.ptr, ';', meta.len);
        ar_span_t media = ar_span(meta.ptr, (size_t)(semi - meta.ptr));
        ar_span_t data = ar_span(comma + 1, (size_t)(url.ptr + url.len - comma - 1));
        *src =
            json_pack("{s:s,s:s%,s:s%}", "type", "base64", "media_type", media.len ? media.ptr : "",
                      media.len, "data", data.len ? data.ptr : "", data.len);
    } else if (ar_span_istarts(url, AR_LIT("https://")) ||
               ar_span_istarts(url, AR_LIT("http://"))) {
        *src = json_pack("{s:s,s:s%}", "type", "url", "url", url.ptr, url.len);
    } else {
        *detail = "image and file URLs must be https://, http:// or base64 data: URLs";
        return AR_EINVAL;
    }
    return *src ? 0 : AR_ENOMEM;
}

/* One OpenAI content part as an Anthropic block appended to blocks. */
static int part_block(const json_t *part, json_t *blocks, const char **detail)
{
    const char *type = ar_json_str(part, "type");
    json_t *b = NULL;
    if (ar_xl_str_is(type, "text") || ar_xl_str_is(type, "refusal")) {
        json_t *t = json_object_get(part, type);
        if (!json_is_string(t)) {
            *detail = "a text content part needs a string 'text'";
            return AR_EINVAL;
        }
        if (json_string_length(t) == 0)
            return 0; /* Anthropic refuses empty text blocks */
        b = ar_xl_text_block(json_string_value(t), json_string_length(t));
    } else if (ar_xl_str_is(type, "image_url")) {
        json_t *iu = json_object_get(part, "image_url");
        json_t *url = json_is_object(iu) ? json_object_get(iu, "url") : iu;
        if (!json_is_string(url)) {
            *detail = "an image_url content part needs a string 'image_url.url'";
            return AR_EINVAL;
        }
        json_t *src;
        int rc =
            media_source(ar_span(json_string_value(url), json_string_length(url)), &src, detail);
        if (rc)
            return rc;
        b = json_pack("{s:s,s:o}", "type", "image", "source", src);
    } else if (ar_xl_str_is(type, "file")) {
        json_t *fd = json_object_get(json_object_get(part, "file"), "file_data");
        if (!json_is_string(fd)) {
            *detail =
                "file content parts must carry 'file.file_data' (file ids are not translated)";
            return AR_EINVAL;
        }
        json_t *src;
        int rc = media_source(ar_span(json_string_value(fd), json_string_length(fd)), &src, detail);
        if (rc)
            return rc;
        b = json_pack("{s:s,s:o}", "type", "document", "source", src);
    } else {
        *detail = "unsupported content part type (text, image_url and file are translated)";
        return AR_EINVAL;
    }
    if (!b)
        return AR_ENOMEM;
    int rc = ar_xl_copy_key(b, part, "cache_control"); /* prompt caching survives the trip */
    if (rc) {
        json_decref(b);
        return rc;
    }
    return ar_xl_push(blocks, b);
}

/* An OpenAI message content (string, parts or null) as Anthropic blocks appended to blocks. */
static int content_blocks(const json_t *content, json_t *blocks, const char **detail)
{
    if (!content || json_is_null(content))
        return 0;
    if (json_is_string(content)) {
        if (json_string_length(content) == 0)
            return 0;
        return ar_xl_push(
            blocks, ar_xl_text_block(json_string_value(content), json_string_length(content)));
    }
    if (!json_is_array(content)) {
        *detail = "message 'content' must be a string or an array of content parts";
        return AR_EINVAL;
    }
    size_t i;
    json_t *part;
    json_array_foreach (content, i, part) {
        int rc = part_block(part, blocks, detail);
        if (rc)
            return rc;
    }
    return 0;
}

/* An assistant tool call as a tool_use block; arguments must be a JSON object. */
static int tool_use_block(const json_t *tc, json_t **out, const char **detail)
{
    json_t *fn = json_object_get(tc, "function");
    const char *id = ar_json_str(tc, "id");
    const char *name = ar_json_str(fn, "name");
    json_t *args = json_object_get(fn, "arguments");
    json_t *input = NULL;
    *out = NULL;
    if (!id || !name) {
        *detail = "assistant tool_calls need an 'id' and a 'function.name'";
        return AR_EINVAL;
    }
    if (json_is_object(args)) {
        input = json_incref(args);
    } else if (!args || json_is_null(args) || json_is_string(args)) {
        ar_span_t s = args && json_is_string(args)
                          ? ar_span(json_string_value(args), json_string_length(args))
                          : AR_SPAN_NULL;
        while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\n' || s.ptr[0] == '\t'))
            s = ar_span_skip(s, 1);
        input = s.len ? ar_json_parse(s, NULL, 0) : json_object();
    }
    if (!json_is_object(input)) {
        json_decref(input);
        *detail = "assistant tool_calls[].function.arguments is not a JSON object";
        return AR_EINVAL;
    }
    *out =
        json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", id, "name", name, "input", input);
    return *out ? 0 : AR_ENOMEM;
}

/* The last turn, when it has the given role. */
static json_t *last_turn(json_t *msgs, const char *role)
{
    size_t n = json_array_size(msgs);
    json_t *last = n ? json_array_get(msgs, n - 1) : NULL;
    return last && ar_xl_str_is(ar_json_str(last, "role"), role) ? last : NULL;
}

/*
 * Adds blocks (taken) as a turn of role. Anthropic wants user and assistant turns to
 * alternate, so a turn of the same role as the previous one is merged into it.
 */
static int push_turn(json_t *msgs, const char *role, json_t *blocks)
{
    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        return 0;
    }
    json_t *last = last_turn(msgs, role);
    if (last) {
        int rc = json_array_extend(json_object_get(last, "content"), blocks) ? AR_ENOMEM : 0;
        json_decref(blocks);
        return rc;
    }
    return ar_xl_push(msgs, json_pack("{s:s,s:o}", "role", role, "content", blocks));
}

/* A tool_result block (taken) joins the user turn; Anthropic wants tool results first. */
static int push_tool_result(json_t *msgs, json_t *block)
{
    if (!block)
        return AR_ENOMEM;
    json_t *last = last_turn(msgs, "user");
    if (!last) {
        json_t *blocks = json_array();
        if (!blocks || json_array_append_new(blocks, block)) {
            json_decref(blocks);
            return AR_ENOMEM;
        }
        return push_turn(msgs, "user", blocks);
    }
    json_t *content = json_object_get(last, "content");
    size_t at = 0;
    while (at < json_array_size(content) &&
           ar_xl_str_is(ar_json_str(json_array_get(content, at), "type"), "tool_result"))
        at++;
    return json_array_insert_new(content, at, block) ? AR_ENOMEM : 0;
}

static int tool_message(const json_t *m, json_t *msgs, const char **detail)
{
    const char *id = ar_json_str(m, "tool_call_id");
    json_t *content = json_object_get(m, "content");
    json_t *c;
    if (!id) {
        *detail = "tool messages need a 'tool_call_id'";
        return AR_EINVAL;
    }
    if (json_is_array(content)) {
        c = json_array();
        int rc = c ? content_blocks(content, c, detail) : AR_ENOMEM;
        if (rc) {
            json_decref(c);
            return rc;
        }
    } else if (json_is_string(content)) {
        c = json_incref(content);
    } else {
        c = json_string("");
    }
    if (!c)
        return AR_ENOMEM;
    return push_tool_result(
        msgs, json_pack("{s:s,s:s,s:o}", "type", "tool_result", "tool_use_id", id, "content", c));
}

static int assistant_message(const json_t *m, json_t *msgs, const char **detail)
{
    json_t *blocks = json_array();
    if (!blocks)
        return AR_ENOMEM;
    int rc = content_blocks(json_object_get(m, "content"), blocks, detail);
    size_t i;
    json_t *tc;
    json_array_foreach (json_object_get(m, "tool_calls"), i, tc) {
        json_t *b;
        rc = rc ? rc : tool_use_block(tc, &b, detail);
        rc = rc ? rc : ar_xl_push(blocks, b);
    }
    if (rc) {
        json_decref(blocks);
        return rc;
    }
    return push_turn(msgs, "assistant", blocks);
}

/* Every message: system and developer text into sys, the rest into alternating turns. */
static int translate_messages(const json_t *in, json_t *msgs, json_t *sys, const char **detail)
{
    if (!json_is_array(in) || json_array_size(in) == 0) {
        *detail = "'messages' must be a non-empty array";
        return AR_EINVAL;
    }
    size_t i;
    json_t *m;
    json_array_foreach (in, i, m) {
        const char *role = ar_json_str(m, "role");
        json_t *content = json_object_get(m, "content");
        int rc;
        if (ar_xl_str_is(role, "system") || ar_xl_str_is(role, "developer")) {
            size_t before = json_array_size(sys);
            rc = content_blocks(content, sys, detail);
            for (size_t k = before; rc == 0 && k < json_array_size(sys); k++) {
                if (!ar_xl_str_is(ar_json_str(json_array_get(sys, k), "type"), "text")) {
                    *detail = "system messages may only hold text";
                    rc = AR_EINVAL;
                }
            }
        } else if (ar_xl_str_is(role, "user")) {
            json_t *blocks = json_array();
            rc = blocks ? content_blocks(content, blocks, detail) : AR_ENOMEM;
            if (rc)
                json_decref(blocks);
            else
                rc = push_turn(msgs, "user", blocks);
        } else if (ar_xl_str_is(role, "assistant")) {
            rc = assistant_message(m, msgs, detail);
        } else if (ar_xl_str_is(role, "tool")) {
            rc = tool_message(m, msgs, detail);
        } else {
            *detail = "unsupported message role (system, developer, user, assistant and tool "
                      "are translated)";
            rc = AR_EINVAL;
        }
        if (rc)
            return rc;
    }
    if (json_array_size(msgs) == 0) {
        *detail = "'messages' needs at least one user or assistant message with content";
        return AR_EINVAL;
    }
    return 0;
}

static int translate_tools(const json_t *tools, json_t *req, const char **detail)
{
    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return 0;
    json_t *out = json_array();
    int rc = out ? 0 : AR_ENOMEM;
    size_t i;
    json_t *t;
    json_array_foreach (tools, i, t) {
        const char *type = ar_json_str(t, "type");
        json_t *fn = json_object_get(t, "function");
        const char *name = ar_json_str(fn, "name");
        if (rc)
            break;
        if ((type && strcmp(type, "function") != 0) || !name) {
            *detail = "only tools of type 'function' with a 'function.name' are translated";
            rc = AR_EINVAL;
            break;
        }
        json_t *params = json_object_get(fn, "parameters");
        json_t *schema = json_is_object(params)
                             ? json_incref(params)
                             : json_pack("{s:s,s:{}}", "type", "object", "properties");
        json_t *tool = json_pack("{s:s,s:o}", "name", name, "input_schema", schema);
        if (!tool) {
            rc = AR_ENOMEM;
            break;
        }
        if (json_is_string(json_object_get(fn, "description")))
            rc = ar_xl_copy_key(tool, fn, "description");
        rc = rc ? rc
                : ar_xl_copy_key(tool, json_object_get(t, "cache_control") ? t : fn,
                                 "cache_control");
        if (rc)
            json_decref(tool);
        else
            rc = ar_xl_push(out, tool);
    }
    if (rc) {
        json_decref(out);
        return rc;
    }
    return ar_xl_set(req, "tools", out);
}

/* tool_choice and parallel_tool_calls, only meaningful when tools went out. */
static int translate_tool_choice(const json_t *oai, json_t *req, const char **detail)
{
    json_t *tc = json_object_get(oai, "tool_choice");
    json_t *parallel = json_object_get(oai, "parallel_tool_calls");
    json_t *choice = NULL;
    if (!json_object_get(req, "tools"))
        return 0;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "auto") == 0) {
            choice = json_pack("{s:s}", "type", "auto");
        } else if (strcmp(s, "none") == 0) {
            choice = json_pack("{s:s}", "type", "none");
        } else if (strcmp(s, "required") == 0) {
            choice = json_pack("{s:s}", "type", "any");
        } else {
            *detail = "'tool_choice' must be auto, none, required or a function";
            return AR_EINVAL;
        }
        if (!choice)
            return AR_ENOMEM;
    } else if (json_is_object(tc)) {
        const char *name = ar_json_str(json_object_get(tc, "function"), "name");
        if (!name) {
            *detail = "'tool_choice' names no function ('function.name')";
            return AR_EINVAL;
        }
        choice = json_pack("{s:s,s:s}", "type", "tool", "name", name);
        if (!choice)
            return AR_ENOMEM;
    }
    if (json_is_false(parallel)) {
        if (!choice)
            choice = json_pack("{s:s}", "type", "auto");
        if (!choice)
            return AR_ENOMEM;
        if (!ar_xl_str_is(ar_json_str(choice, "type"), "none") &&
            json_object_set_new(choice, "disable_parallel_tool_use", json_true())) {
            json_decref(choice);
            return AR_ENOMEM;
        }
    }
    return choice ? ar_xl_set(req, "tool_choice", choice) : 0;
}

/*
 * response_format: Anthropic has no JSON mode, so the model is told in the system prompt to
 * answer with JSON only, quoting the schema when one is given; the answer is not validated.
 * (LiteLLM forces a tool call carrying the schema instead; a prompt keeps the answer in
 * plain text content, whole and streamed, and leaves the client's own tools alone.)
 */
static int json_mode(const json_t *rf, json_t *sys)
{
    static const char object_only[] = "Respond only with a single valid JSON object. Do not add "
                                      "any text, explanation or Markdown code fences before or "
                                      "after it.";
    const char *type = ar_json_str(rf, "type");
    if (ar_xl_str_is(type, "json_object"))
        return ar_xl_push(sys, ar_xl_text_block(object_only, sizeof(object_only) - 1));
    if (!ar_xl_str_is(type, "json_schema"))
        return 0;
    json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    ar_buf_t b;
    ar_buf_init(&b, 16u << 20);
    int rc = ar_buf_append_str(&b, "Respond only with a single valid JSON object that conforms to "
                                   "this JSON schema. Do not add any text, explanation or "
                                   "Markdown code fences before or after it. Schema: ");
    rc = rc ? rc : (schema ? ar_json_dump(schema, &b) : ar_buf_append_str(&b, "{}"));
    if (!rc)
        rc = ar_xl_push(sys, ar_xl_text_block(b.ptr, b.len));
    ar_buf_dispose(&b);
    return rc;
}

static bool is_plain_text(const json_t *block)
{
    return json_object_size(block) == 2 && json_is_string(json_object_get(block, "text"));
}

/*
 * OpenAI's reasoning_effort as a thinking budget in tokens; 0 for "none" (no thinking).
 * Anthropic's least budget is 1024 tokens, so "minimal" and "low" share it.
 */
static int effort_budget(const json_t *effort, json_int_t *budget, const char **detail)
{
    static const struct {
        const char *name;
        json_int_t budget;
    } levels[] = {{"none", 0}, {"minimal", 1024}, {"low", 1024}, {"medium", 4096}, {"high", 16384}};
    for (size_t i = 0; json_is_string(effort) && i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (ar_xl_str_is(json_string_value(effort), levels[i].name)) {
            *budget = levels[i].budget;
            return 0;
        }
    }
    *detail = "'reasoning_effort' must be none, minimal, low, medium or high";
    return AR_EINVAL;
}

/*
 * thinking: the client's own Anthropic parameter, else one made from reasoning_effort.
 * Sets *budget to the thinking budget (0 without one) and *on when thinking is asked for.
 */
static int translate_thinking(const json_t *oai, json_t *req, json_int_t *budget, bool *on,
                              const char **detail)
{
    json_t *thinking = json_object_get(oai, "thinking");
    json_t *effort = json_object_get(oai, "reasoning_effort");
    *budget = 0;
    *on = false;
    if (json_is_object(thinking)) {
        /* extended thinking: passed through for clients that know Anthropic's parameter */
        json_t *b = json_object_get(thinking, "budget_tokens");
        *on = !ar_xl_str_is(ar_json_str(thinking, "type"), "disabled");
        *budget = json_is_integer(b) ? json_integer_value(b) : 0;
        return ar_xl_copy_key(req, oai, "thinking");
    }
    if (!effort || json_is_null(effort))
        return 0;
    int rc = effort_budget(effort, budget, detail);
    if (rc || *budget == 0)
        return rc;
    *on = true;
    return ar_xl_set(req, "thinking",
                     json_pack("{s:s,s:I}", "type", "enabled", "budget_tokens", *budget));
}

/* The sampling and limit parameters that map one to one, or nearly. */
static int translate_params(const json_t *oai, int64_t max_default, bool stream, json_t *req,
                            const char **detail)
{
    json_t *mct = json_object_get(oai, "max_completion_tokens");
    json_t *mt = json_object_get(oai, "max_tokens");
    json_int_t max = max_default > 0 ? (json_int_t)max_default : AR_ANTH_DEFAULT_MAX_TOKENS;
    if (json_is_integer(mct))
        max = json_integer_value(mct);
    else if (json_is_integer(mt))
        max = json_integer_value(mt);
    json_int_t budget;
    bool thinking;
    int rc = translate_thinking(oai, req, &budget, &thinking, detail);
    if (rc)
        return rc;
    /* Anthropic refuses max_tokens <= budget_tokens; the limit the client gave is then read as
     * what it wants of the answer, on top of the thinking (LiteLLM raises it likewise) */
    if (budget > 0 && max <= budget)
        max += budget;
    rc = ar_xl_set(req, "max_tokens", json_integer(max));
    static const char *const numbers[] = {"temperature", "top_p", "top_k"};
    /* with thinking on, Anthropic refuses temperature and top_k and narrows top_p: the model's
     * own sampling is kept rather than the request refused */
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]) && !rc && !thinking; i++) {
        if (json_is_number(json_object_get(oai, numbers[i])))
            rc = ar_xl_copy_key(req, oai, numbers[i]);
    }
    json_t *stop = json_object_get(oai, "stop");
    if (!rc && json_is_string(stop) && json_string_length(stop)) {
        rc = ar_xl_set(req, "stop_sequences", json_pack("[O]", stop));
    } else if (!rc && json_is_array(stop)) {
        json_t *seqs = json_array();
        size_t i;
        json_t *s;
        rc = seqs ? 0 : AR_ENOMEM;
        json_array_foreach (stop, i, s) {
            if (!rc && json_is_string(s) && json_string_length(s))
                rc = json_array_append(seqs, s) ? AR_ENOMEM : 0;
        }
        if (!rc && json_array_size(seqs))
            rc = ar_xl_set(req, "stop_sequences", json_incref(seqs));
        json_decref(seqs);
    }
    if (!rc && stream)
        rc = ar_xl_set(req, "stream", json_true());
    const char *user = ar_json_str(oai, "user");
    if (!rc && user)
        rc = ar_xl_set(req, "metadata", json_pack("{s:s}", "user_id", user));
    return rc;
}

int ar_anth_request_from_openai(const json_t *oai, const char *model, int64_t max_tokens_default,
                                bool stream, json_t **out, const char **detail)
{
    json_t *req = json_object();
    json_t *msgs = json_array();
    json_t *sys = json_array();
    int rc = AR_ENOMEM;
    *out = NULL;
    *detail = NULL;
    if (!req || !msgs || !sys)
        goto fail;
    if (!json_is_object(oai)) {
        *detail = "the request is not a JSON object";
        rc = AR_EINVAL;
        goto fail;
    }
    rc = ar_xl_set(req, "model", json_string(model));
    rc = rc ? rc : translate_messages(json_object_get(oai, "messages"), msgs, sys, detail);
    rc = rc ? rc : json_mode(json_object_get(oai, "response_format"), sys);
    if (rc)
        goto fail;
    /* one plain system text goes as a string, anything else as blocks */
    json_t *system = sys;
    if (json_array_size(sys) == 1 && is_plain_text(json_array_get(sys, 0)))
        system = json_object_get(json_array_get(sys, 0), "text");
    if (json_array_size(sys) > 0)
        rc = json_object_set(req, "system", system) ? AR_ENOMEM : 0;
    rc = rc ? rc : (json_object_set(req, "messages", msgs) ? AR_ENOMEM : 0);
    rc = rc ? rc : translate_params(oai, max_tokens_default, stream, req, detail);
    rc = rc ? rc : translate_tools(json_object_get(oai, "tools"), req, detail);
    rc = rc ? rc : translate_tool_choice(oai, req, detail);
    if (rc)
        goto fail;
    *out = req;
    req = NULL;
fail:
    json_decref(sys);
    json_decref(msgs);
    json_decref(req);
    return rc;
}

/* ---- the common request shape, straight from the raw text ---- */

static bool raw_is_int(ar_span_t v)
{
    if (!v.len)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        if (!(v.ptr[i] >= '0' && v.ptr[i] <= '9') && !(i == 0 && v.ptr[i] == '-'))
            return false;
    }
    return true;
}

static bool raw_is_number(ar_span_t v)
{
    return v.len && (v.ptr[0] == '-' || (v.ptr[0] >= '0' && v.ptr[0] <= '9'));
}

/* A non-empty raw JSON string. */
static bool raw_is_text(ar_span_t v)
{
    return v.len > 2 && v.ptr[0] == '"';
}

static int raw_text_block(ar_buf_t *out, ar_span_t raw_str, bool first)
{
    int rc = ar_buf_append_str(out, first ? "[{\"type\":\"text\",\"text\":"
                                          : ",{\"type\":\"text\",\"text\":");
    rc = rc ? rc : ar_buf_append_span(out, raw_str);
    return rc ? rc : ar_buf_append_str(out, "}");
}

int ar_anth_request_fast(ar_span_t raw, const char *model, int64_t max_tokens_default, bool stream,
                         ar_buf_t *out)
{
    ar_span_t msgs = AR_SPAN_NULL, mt = AR_SPAN_NULL, mct = AR_SPAN_NULL, temp = AR_SPAN_NULL;
    ar_span_t top_p = AR_SPAN_NULL, stop = AR_SPAN_NULL, user = AR_SPAN_NULL, k, v;
    ar_jscan_iter_t it;
    if (ar_jscan_object_begin(raw, &it) != 0)
        return AR_EAGAIN;
    while (ar_jscan_object_next(&it, &k, &v)) {
        if (ar_xl_span_is(k, "messages"))
            msgs = v;
        else if (ar_xl_span_is(k, "max_tokens"))
            mt = v;
        else if (ar_xl_span_is(k, "max_completion_tokens"))
            mct = v;
        else if (ar_xl_span_is(k, "temperature"))
            temp = v;
        else if (ar_xl_span_is(k, "top_p"))
            top_p = v;
        else if (ar_xl_span_is(k, "stop"))
            stop = v;
        else if (ar_xl_span_is(k, "user"))
            user = v;
        else if (!ar_xl_span_is(k, "model") && !ar_xl_span_is(k, "stream") &&
                 !ar_xl_span_is(k, "stream_options"))
            return AR_EAGAIN; /* tools, response_format, thinking...: the tree path */
    }
    if ((mt.len && !raw_is_int(mt)) || (mct.len && !raw_is_int(mct)) ||
        (temp.len && !raw_is_number(temp)) || (top_p.len && !raw_is_number(top_p)) ||
        (user.len && !raw_is_text(user)))
        return AR_EAGAIN;
    /* messages: text only, turns alternating once system messages are taken out */
    ar_buf_t turns, system;
    ar_buf_init(&turns, 1u << 30);
    ar_buf_init(&system, 1u << 30);
    int rc = ar_jscan_array_begin(msgs, &it) == 0 ? 0 : AR_EAGAIN;
    ar_span_t m, last_role = AR_SPAN_NULL;
    size_t nsys = 0, nturns = 0;
    ar_span_t first_sys = AR_SPAN_NULL;
    while (!rc && ar_jscan_array_next(&it, &m)) {
        ar_jscan_iter_t mi;
        ar_span_t role = AR_SPAN_NULL, content = AR_SPAN_NULL;
        if (ar_jscan_object_begin(m, &mi) != 0) {
            rc = AR_EAGAIN;
            break;
        }
        while (ar_jscan_object_next(&mi, &k, &v)) {
            if (ar_xl_span_is(k, "role"))
                (void)ar_jscan_string(v, &role);
            else if (ar_xl_span_is(k, "content"))
                content = v;
            else
                rc = AR_EAGAIN; /* name, tool_calls...: the tree path */
        }
        if (rc || !raw_is_text(content)) {
            rc = AR_EAGAIN;
            break;
        }
        if (ar_xl_span_is(role, "system") || ar_xl_span_is(role, "developer")) {
            if (nsys++ == 0)
                first_sys = content;
            rc = raw_text_block(&system, content, nsys == 1);
        } else if (ar_xl_span_is(role, "user") || ar_xl_span_is(role, "assistant")) {
            if (ar_span_eq(role, last_role)) {
                rc = AR_EAGAIN; /* merging turns: the tree path */
                break;
            }
            last_role = role;
            rc = ar_buf_append_str(&turns, nturns++ ? ",{\"role\":\"" : "[{\"role\":\"");
            rc = rc ? rc : ar_buf_append_span(&turns, role);
            rc = rc ? rc : ar_buf_append_str(&turns, "\",\"content\":");
            rc = rc ? rc : raw_text_block(&turns, content, true);
            rc = rc ? rc : ar_buf_append_str(&turns, "]}");
        } else {
            rc = AR_EAGAIN;
        }
    }
    if (!rc && nturns == 0)
        rc = AR_EAGAIN; /* the tree path words the error */
    int64_t max = max_tokens_default > 0 ? max_tokens_default : AR_ANTH_DEFAULT_MAX_TOKENS;
    int64_t n, n2;
    /* a limit out of int64 range is not dropped for the default: the tree path refuses it */
    if ((mct.len && ar_parse_int64(mct, &n) != 0) || (mt.len && ar_parse_int64(mt, &n2) != 0))
        rc = rc ? rc : AR_EAGAIN;
    else if (mct.len)
        max = n;
    else if (mt.len)
        max = n2;
    /* stop: a string or strings; empty ones are dropped, as the tree path drops them */
    ar_buf_t seqs;
    ar_buf_init(&seqs, 1u << 20);
    size_t nseqs = 0;
    if (!rc && raw_is_text(stop)) {
        rc = ar_buf_append_span(&seqs, stop);
        nseqs = 1;
    } else if (!rc && stop.len && stop.ptr[0] == '[') {
        ar_jscan_iter_t si;
        ar_span_t e;
        (void)ar_jscan_array_begin(stop, &si);
        while (!rc && ar_jscan_array_next(&si, &e)) {
            if (e.len < 2 || e.ptr[0] != '"') {
                rc = AR_EAGAIN;
            } else if (e.len > 2) {
                rc = nseqs++ ? ar_buf_append(&seqs, ",", 1) : 0;
                rc = rc ? rc : ar_buf_append_span(&seqs, e);
            }
        }
    } else if (!rc && stop.len && !(stop.len == 4 && memcmp(stop.ptr, "null", 4) == 0) &&
               !(stop.len == 2 && stop.ptr[0] == '"')) {
        rc = AR_EAGAIN;
    }
    if (!rc) {
        char num[24];
        size_t nl = ar_u64_dec(max > 0 ? (uint64_t)max : 0, num);
        rc = ar_buf_append_str(out, "{\"model\":\"");
        rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(model));
        rc = rc ? rc : ar_buf_append_str(out, "\",\"messages\":");
        rc = rc ? rc : ar_buf_append_span(out, ar_buf_span(&turns));
        rc = rc ? rc : ar_buf_append_str(out, "]");
        if (nsys == 1) { /* one plain system text goes as a string */
            rc = rc ? rc : ar_buf_append_str(out, ",\"system\":");
            rc = rc ? rc : ar_buf_append_span(out, first_sys);
        } else if (nsys > 1) {
            rc = rc ? rc : ar_buf_append_str(out, ",\"system\":");
            rc = rc ? rc : ar_buf_append_span(out, ar_buf_span(&system));
            rc = rc ? rc : ar_buf_append_str(out, "]");
        }
        rc = rc ? rc : ar_buf_append_str(out, ",\"max_tokens\":");
        rc = rc ? rc : ar_buf_append(out, num, nl);
        if (temp.len) {
            rc = rc ? rc : ar_buf_append_str(out, ",\"temperature\":");
            rc = rc ? rc : ar_buf_append_span(out, temp);
        }
        if (top_p.len) {
            rc = rc ? rc : ar_buf_append_str(out, ",\"top_p\":");
            rc = rc ? rc : ar_buf_append_span(out, top_p);
        }
        if (nseqs) {
            rc = rc ? rc : ar_buf_append_str(out, ",\"stop_sequences\":[");
            rc = rc ? rc : ar_buf_append_span(out, ar_buf_span(&seqs));
            rc = rc ? rc : ar_buf_append_str(out, "]");
        }
        if (stream)
            rc = rc ? rc : ar_buf_append_str(out, ",\"stream\":true");
        if (user.len) {
            rc = rc ? rc : ar_buf_append_str(out, ",\"metadata\":{\"user_id\":");
            rc = rc ? rc : ar_buf_append_span(out, user);
            rc = rc ? rc : ar_buf_append_str(out, "}");
        }
        rc = rc ? rc : ar_buf_append_str(out, "}");
    }
    ar_buf_dispose(&turns);
    ar_buf_dispose(&system);
    ar_buf_dispose(&seqs);
    return rc;
}
