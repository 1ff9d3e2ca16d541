/*
 * anthropic_answer.c: the Anthropic Messages front (see anthropic.h), answers: OpenAI chat
 * completions, stream chunks and our errors turned into Anthropic messages, SSE events and
 * error bodies for clients that speak Anthropic. Requests are anthropic_request.c. No I/O,
 * no state outside the structs it is given.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "fronts/anthropic.h"
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
    ar_usage_t x = {
        .prompt_tokens = st->in, .completion_tokens = st->out, .cached_tokens = st->cached};
    ar_provider_usage_from_openai(u, &x);
    st->in = x.prompt_tokens;
    st->out = x.completion_tokens;
    st->cached = x.cached_tokens;
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
