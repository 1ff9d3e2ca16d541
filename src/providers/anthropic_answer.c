/*
 * anthropic_answer.c: the provider side of the OpenAI chat <-> Anthropic Messages
 * translation (see anthropic_xlate.h), whole answers and errors: an Anthropic message into
 * an OpenAI chat.completion, written straight from the raw text with the scanner, and
 * Anthropic error bodies into OpenAI's error fields. Requests are anthropic_request.c,
 * stream events anthropic_stream.c. No I/O, no state outside the structs it is given.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "providers/anthropic_int.h"

const char *ar_anth_finish_reason(ar_span_t stop)
{
    if (ar_xl_span_is(stop, "max_tokens") || ar_xl_span_is(stop, "model_context_window_exceeded"))
        return "length";
    if (ar_xl_span_is(stop, "tool_use"))
        return "tool_calls";
    if (ar_xl_span_is(stop, "refusal"))
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn, null */
}
/* ==== provider side: Anthropic answer -> OpenAI answer ==== */
/* Appends raw JSON text without the whitespace between tokens (strings kept as they are). */
static int append_compact(ar_buf_t *out, ar_span_t json)
{
    size_t from = 0;
    bool in_str = false;
    int rc = 0;
    for (size_t i = 0; i < json.len && !rc; i++) {
        char c = json.ptr[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            rc = ar_buf_append(out, json.ptr + from, i - from);
            from = i + 1;
        }
    }
    return rc ? rc : ar_buf_append(out, json.ptr + from, json.len - from);
}

/* The inside of a raw JSON string member, or the empty span. */
static ar_span_t raw_member(ar_span_t obj, const char *key)
{
    ar_span_t v, in;
    if (ar_jscan_get(obj, ar_span_cstr(key), &v) != 0 || ar_jscan_string(v, &in) != 0)
        return AR_SPAN_NULL;
    return in;
}

/* A token count from raw JSON, clamped. */
static int64_t raw_int(ar_span_t obj, const char *key)
{
    int64_t n = 0;
    return ar_jscan_get_int(obj, ar_span_cstr(key), &n) == 0 ? ar_tokens_clamp(n) : 0;
}

/*
 * The whole answer is written straight from the raw text with the scanner: this runs for
 * every non-streamed answer, and a jansson tree for it cost more than the rest of the
 * request. Anthropic's text values are valid JSON string contents, so text blocks are
 * joined as they are, escapes and all.
 */
int ar_anth_response_to_openai(ar_span_t body, int64_t created, ar_usage_t *usage, ar_buf_t *out)
{
    ar_span_t content = AR_SPAN_NULL, u = AR_SPAN_NULL, model = AR_SPAN_NULL, id = AR_SPAN_NULL;
    ar_span_t stop = AR_SPAN_NULL, k, v, block;
    ar_jscan_iter_t it;
    if (ar_json_validate(body, NULL, 0) != 0 || ar_jscan_object_begin(body, &it) != 0)
        return AR_EUPSTREAM;
    /* one pass over the top level */
    while (ar_jscan_object_next(&it, &k, &v)) {
        if (ar_xl_span_is(k, "content"))
            content = v;
        else if (ar_xl_span_is(k, "usage"))
            u = v;
        else if (ar_xl_span_is(k, "model"))
            model = v;
        else if (ar_xl_span_is(k, "id"))
            (void)ar_jscan_string(v, &id);
        else if (ar_xl_span_is(k, "stop_reason"))
            (void)ar_jscan_string(v, &stop);
    }
    if (ar_jscan_array_begin(content, &it) != 0)
        return AR_EUPSTREAM;
    if (u.len && u.ptr[0] == '{')
        set_usage(usage, raw_int(u, "input_tokens"), raw_int(u, "output_tokens"),
                  raw_int(u, "cache_read_input_tokens"), raw_int(u, "cache_creation_input_tokens"));
    ar_buf_t text, thinking, calls;
    ar_buf_init(&text, 1u << 30);
    ar_buf_init(&thinking, 1u << 30);
    ar_buf_init(&calls, 1u << 30);
    int rc = 0;
    size_t ncalls = 0;
    while (!rc && ar_jscan_array_next(&it, &block)) {
        ar_span_t type = raw_member(block, "type");
        if (ar_xl_span_is(type, "text")) {
            rc = ar_buf_append_span(&text, raw_member(block, "text"));
        } else if (ar_xl_span_is(type, "thinking")) {
            rc = ar_buf_append_span(&thinking, raw_member(block, "thinking"));
        } else if (ar_xl_span_is(type, "tool_use")) {
            ar_span_t input;
            ar_buf_t args;
            ar_buf_init(&args, 1u << 30);
            if (ar_jscan_get(block, AR_LIT("input"), &input) == 0)
                rc = append_compact(&args, input);
            else
                rc = ar_buf_append_str(&args, "{}");
            rc = rc ? rc : ar_buf_append_str(&calls, ncalls ? ",{\"id\":\"" : "{\"id\":\"");
            rc = rc ? rc : ar_buf_append_span(&calls, raw_member(block, "id"));
            rc = rc ? rc
                    : ar_buf_append_str(&calls,
                                        "\",\"type\":\"function\",\"function\":{\"name\":\"");
            rc = rc ? rc : ar_buf_append_span(&calls, raw_member(block, "name"));
            rc = rc ? rc : ar_buf_append_str(&calls, "\",\"arguments\":\"");
            rc = rc ? rc : ar_buf_append_json_escaped(&calls, ar_buf_span(&args));
            rc = rc ? rc : ar_buf_append_str(&calls, "\"}}");
            ar_buf_dispose(&args);
            ncalls++;
        }
        /* redacted_thinking, server tool blocks and citations have no OpenAI form */
    }
    if (!model.len || model.ptr[0] != '"')
        model = AR_LIT("\"\"");
    char num[24];
    size_t nlen = ar_u64_dec(created > 0 ? (uint64_t)created : 0, num);
    rc = rc ? rc : ar_buf_append_str(out, "{\"id\":\"chatcmpl-");
    rc = rc ? rc : ar_buf_append_span(out, id);
    rc = rc ? rc : ar_buf_append_str(out, "\",\"object\":\"chat.completion\",\"created\":");
    rc = rc ? rc : ar_buf_append(out, num, nlen);
    rc = rc ? rc : ar_buf_append_str(out, ",\"model\":");
    rc = rc ? rc : ar_buf_append_span(out, model);
    rc = rc ? rc
            : ar_buf_append_str(out,
                                ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\"");
    if (text.len || !ncalls) {
        rc = rc ? rc : ar_buf_append_str(out, ",\"content\":\"");
        rc = rc ? rc : ar_buf_append_span(out, ar_buf_span(&text));
        rc = rc ? rc : ar_buf_append_str(out, "\"");
    } else {
        rc = rc ? rc : ar_buf_append_str(out, ",\"content\":null");
    }
    if (ncalls) {
        rc = rc ? rc : ar_buf_append_str(out, ",\"tool_calls\":[");
        rc = rc ? rc : ar_buf_append_span(out, ar_buf_span(&calls));
        rc = rc ? rc : ar_buf_append_str(out, "]");
    }
    if (thinking.len) {
        rc = rc ? rc : ar_buf_append_str(out, ",\"reasoning_content\":\"");
        rc = rc ? rc : ar_buf_append_span(out, ar_buf_span(&thinking));
        rc = rc ? rc : ar_buf_append_str(out, "\"");
    }
    rc = rc ? rc : ar_buf_append_str(out, "},\"logprobs\":null,\"finish_reason\":\"");
    rc = rc ? rc : ar_buf_append_str(out, ar_anth_finish_reason(stop));
    rc = rc ? rc : ar_buf_append_str(out, "\"}]");
    if (usage->seen)
        rc = rc ? rc
                : ar_buf_appendf(out,
                                 ",\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                                 "\"total_tokens\":%lld,\"prompt_tokens_details\":{"
                                 "\"cached_tokens\":%lld}}",
                                 (long long)usage->prompt_tokens,
                                 (long long)usage->completion_tokens,
                                 (long long)usage->total_tokens, (long long)usage->cached_tokens);
    rc = rc ? rc : ar_buf_append_str(out, "}");
    ar_buf_dispose(&text);
    ar_buf_dispose(&thinking);
    ar_buf_dispose(&calls);
    return rc;
}
/* ==== provider side: errors ==== */

typedef struct type_map {
    const char *anthropic;
    const char *openai;
    const char *code;
} type_map_t;

static const type_map_t error_types[] = {
    {"invalid_request_error", "invalid_request_error", NULL},
    {"authentication_error", "authentication_error", NULL},
    {"permission_error", "permission_error", NULL},
    {"not_found_error", "not_found_error", NULL},
    {"request_too_large", "invalid_request_error", "request_too_large"},
    {"rate_limit_error", "rate_limit_error", NULL},
    {"billing_error", "invalid_request_error", "billing_error"},
    {"conflict_error", "invalid_request_error", "conflict_error"},
    {"timeout_error", "timeout_error", NULL},
    {"api_error", "api_error", NULL},
    {"overloaded_error", "api_error", "overloaded_error"},
};

void ar_anth_error_to_openai(ar_pool_t *pool, int status, ar_span_t body, ar_upstream_err_t *out)
{
    out->status = status;
    out->message = NULL;
    out->type = NULL;
    out->code = NULL;
    json_t *root = ar_json_parse(body, NULL, 0);
    json_t *err = json_object_get(root, "error");
    ar_span_t msg = ar_json_span(err, "message");
    const char *type = ar_json_str(err, "type");
    if (msg.ptr)
        out->message = ar_pool_strdup_span(pool, msg);
    for (size_t i = 0; type && i < sizeof(error_types) / sizeof(error_types[0]); i++) {
        if (strcmp(type, error_types[i].anthropic) == 0) {
            out->type = error_types[i].openai;
            out->code = error_types[i].code;
        }
    }
    if (type && !out->type) /* a type added after this table: keep its name as the code */
        out->code = ar_pool_strdup_span(pool, ar_span_cstr(type));
    json_decref(root);
    if (out->message)
        return;
    /* Not an Anthropic error (a proxy's HTML page...): a printable prefix, to diagnose. */
    size_t n = body.len < 200 ? body.len : 200;
    char *m = ar_pool_strndup(pool, body.ptr ? body.ptr : "", n);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)m[i] < 0x20)
            m[i] = ' ';
    }
    out->message = n ? m : ar_pool_printf(pool, "upstream answered %d", status);
}
