/*
 * responses_answer.c: the "out" half of the Responses front (see responses.h): OpenAI chat
 * answers into Responses API objects: a whole chat.completion into a `response`, a chat
 * chunk stream into the Responses event stream, and a broken stream into `error` +
 * response.failed. The response object echoes the request's settings (built once, at init)
 * and is kept once terminal, for the gateway to store. Chunks are read with the scanner and
 * events written with appends; an item's text is gathered still JSON-escaped (escaped pieces
 * concatenate into the escaped whole) and decoded once, when the item closes.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "fronts/fronts_int.h"
#include "fronts/responses.h"
#include "providers/provider.h"

enum { ITEM_NONE = 0, ITEM_MESSAGE, ITEM_CALL, ITEM_REASONING };

/* An item id: prefix, the response id's suffix, and the output index. */
#define ITEM_ID_MAX (AR_RESP_ID_MAX + 32)
/* call ids and tool names longer than this fail the stream */
#define NAME_MAX_BYTES 4096

static bool span_is(ar_span_t s, const char *lit)
{
    return ar_span_eq(s, ar_span_cstr(lit));
}

/* The inside of obj[key] when it is a JSON string (escapes kept). */
static bool raw_str(ar_span_t obj, const char *key, ar_span_t *inner)
{
    ar_span_t v;
    return ar_jscan_get(obj, ar_span_cstr(key), &v) == 0 && ar_jscan_string(v, inner) == 0;
}

/* Like raw_str, and the string is checked to be well-formed JSON: these bytes are copied
 * into what the client receives. */
static bool raw_str_checked(ar_span_t obj, const char *key, ar_span_t *inner)
{
    ar_span_t v;
    if (ar_jscan_get(obj, ar_span_cstr(key), &v) != 0 || ar_jscan_string(v, inner) != 0)
        return false;
    return ar_json_validate(v, NULL, 0) == 0;
}

/* A JSON text (a string value with its quotes) decoded; NULL when malformed. */
static json_t *decode(ar_span_t json)
{
    return json_loadb(json.ptr, json.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}

static void item_id(const ar_resp_front_t *st, const char *prefix, int index, char *out)
{
    const char *suffix = strncmp(st->id, "resp_", 5) == 0 ? st->id + 5 : st->id;
    snprintf(out, ITEM_ID_MAX, "%s%s_%d", prefix, suffix, index);
}

static const char *item_prefix(int kind)
{
    return kind == ITEM_MESSAGE ? "msg_" : kind == ITEM_CALL ? "fc_" : "rs_";
}

/* ---- the response object ---- */

/* base[key] = req[key] when given (not null), else def (taken). */
static int echo(json_t *base, const json_t *req, const char *key, json_t *def)
{
    json_t *v = json_object_get(req, key);
    if (v && !json_is_null(v)) {
        json_decref(def);
        return ar_xl_set(base, key, json_incref(v));
    }
    return ar_xl_set(base, key, def);
}

static json_t *base_object(const ar_resp_front_t *st, const json_t *req)
{
    json_t *b = json_object();
    json_t *model = json_object_get(req, "model");
    json_t *r = json_object_get(req, "reasoning");
    json_t *t = json_object_get(req, "text");
    int rc = b ? 0 : AR_ENOMEM;
    /* the order OpenAI writes them in; status, output and usage are filled per event */
    rc = rc ? rc : ar_xl_set(b, "id", json_string(st->id));
    rc = rc ? rc : ar_xl_set(b, "object", json_string("response"));
    rc = rc ? rc : ar_xl_set(b, "created_at", json_integer(st->created_at));
    rc = rc ? rc : ar_xl_set(b, "status", json_string("in_progress"));
    rc = rc ? rc : ar_xl_set(b, "background", json_false());
    rc = rc ? rc : ar_xl_set(b, "error", json_null());
    rc = rc ? rc : ar_xl_set(b, "incomplete_details", json_null());
    rc = rc ? rc : echo(b, req, "instructions", json_null());
    rc = rc ? rc : echo(b, req, "max_output_tokens", json_null());
    rc = rc ? rc : echo(b, req, "max_tool_calls", json_null());
    /* a model list (fallbacks) names no one model: the upstream's fills it in */
    rc = rc ? rc
            : ar_xl_set(b, "model", json_is_string(model) ? json_incref(model) : json_string(""));
    rc = rc ? rc : ar_xl_set(b, "output", json_array());
    rc = rc ? rc : echo(b, req, "parallel_tool_calls", json_true());
    rc = rc ? rc : echo(b, req, "previous_response_id", json_null());
    rc = rc ? rc : echo(b, req, "prompt_cache_key", json_null());
    json_t *reasoning = json_object();
    rc = rc ? rc : (reasoning ? 0 : AR_ENOMEM);
    rc = rc ? rc : echo(reasoning, r, "effort", json_null());
    rc = rc ? rc : echo(reasoning, r, "summary", json_null());
    rc = rc ? rc : ar_xl_set(b, "reasoning", json_incref(reasoning));
    json_decref(reasoning);
    rc = rc ? rc : echo(b, req, "safety_identifier", json_null());
    rc = rc ? rc : echo(b, req, "service_tier", json_string("default"));
    rc = rc ? rc : echo(b, req, "store", json_true());
    rc = rc ? rc : echo(b, req, "temperature", json_real(1.0));
    json_t *text = json_object();
    rc = rc ? rc : (text ? 0 : AR_ENOMEM);
    rc = rc ? rc : echo(text, t, "format", json_pack("{s:s}", "type", "text"));
    rc = rc ? rc : echo(text, t, "verbosity", json_string("medium"));
    rc = rc ? rc : ar_xl_set(b, "text", json_incref(text));
    json_decref(text);
    rc = rc ? rc : echo(b, req, "tool_choice", json_string("auto"));
    rc = rc ? rc : echo(b, req, "tools", json_array());
    rc = rc ? rc : echo(b, req, "top_logprobs", json_integer(0));
    rc = rc ? rc : echo(b, req, "top_p", json_real(1.0));
    rc = rc ? rc : echo(b, req, "truncation", json_string("disabled"));
    rc = rc ? rc : ar_xl_set(b, "usage", json_null());
    rc = rc ? rc : echo(b, req, "user", json_null());
    rc = rc ? rc : echo(b, req, "metadata", json_object());
    if (rc) {
        json_decref(b);
        return NULL;
    }
    return b;
}

int ar_resp_front_init(ar_resp_front_t *st, const json_t *req, const char *id, int64_t created_at)
{
    memset(st, 0, sizeof(*st));
    ar_buf_init(&st->_text, AR_RESP_ITEM_MAX);
    ar_buf_init(&st->_call_id, NAME_MAX_BYTES);
    ar_buf_init(&st->_name, NAME_MAX_BYTES);
    st->_tool_index = -1;
    st->created_at = created_at;
    if (!id || strlen(id) >= sizeof(st->id))
        return AR_EINVAL;
    memcpy(st->id, id, strlen(id) + 1);
    st->_base = base_object(st, req);
    st->_output = json_array();
    return st->_base && st->_output ? 0 : AR_ENOMEM;
}

void ar_resp_front_dispose(ar_resp_front_t *st)
{
    json_decref(st->_base);
    json_decref(st->_output);
    json_decref(st->_final);
    st->_base = st->_output = st->_final = NULL;
    ar_buf_dispose(&st->_text);
    ar_buf_dispose(&st->_call_id);
    ar_buf_dispose(&st->_name);
}

const json_t *ar_resp_front_final(const ar_resp_front_t *st)
{
    return st->_final;
}

static json_t *usage_object(const ar_resp_front_t *st)
{
    return json_pack("{s:I,s:{s:I},s:I,s:{s:I},s:I}", "input_tokens", (json_int_t)st->in,
                     "input_tokens_details", "cached_tokens", (json_int_t)st->cached,
                     "output_tokens", (json_int_t)st->out, "output_tokens_details",
                     "reasoning_tokens", (json_int_t)st->reasoning, "total_tokens",
                     (json_int_t)(st->in + st->out));
}

/* The response object with status (a shallow copy of the base: only dumped or kept). */
static json_t *response_object(const ar_resp_front_t *st, const char *status, bool with_output)
{
    json_t *r = json_copy(st->_base);
    int rc = r ? 0 : AR_ENOMEM;
    rc = rc ? rc : ar_xl_set(r, "status", json_string(status));
    if (with_output) {
        rc = rc ? rc : ar_xl_set(r, "output", json_incref(st->_output));
        rc = rc ? rc : ar_xl_set(r, "usage", usage_object(st));
    }
    if (rc) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* Sets the model from the upstream's when the client named none (a model list). */
static void upstream_model(ar_resp_front_t *st, json_t *model)
{
    const char *m = ar_json_str(st->_base, "model");
    if (m && !*m && json_is_string(model) && json_string_length(model))
        (void)json_object_set(st->_base, "model", model); /* on failure the "" stays */
}

/* The terminal object: completed, or incomplete with the reason the finish chunk gave. */
static json_t *final_object(ar_resp_front_t *st)
{
    json_t *r = response_object(st, st->_incomplete ? "incomplete" : "completed", true);
    if (r && st->_incomplete &&
        ar_xl_set(r, "incomplete_details", json_pack("{s:s}", "reason", st->_incomplete))) {
        json_decref(r);
        r = NULL;
    }
    return r;
}

/* incomplete_details.reason for a chat finish_reason, NULL when the answer is complete. */
static const char *incomplete_reason(ar_span_t finish)
{
    if (span_is(finish, "length"))
        return "max_output_tokens";
    if (span_is(finish, "content_filter"))
        return "content_filter";
    return NULL;
}

/* ---- whole answers ---- */

static int whole_usage(ar_resp_front_t *st, const json_t *u)
{
    json_t *v = json_object_get(u, "prompt_tokens");
    st->in = json_is_integer(v) ? ar_tokens_clamp(json_integer_value(v)) : 0;
    v = json_object_get(u, "completion_tokens");
    st->out = json_is_integer(v) ? ar_tokens_clamp(json_integer_value(v)) : 0;
    v = json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
    st->cached = json_is_integer(v) ? ar_tokens_clamp(json_integer_value(v)) : 0;
    v = json_object_get(json_object_get(u, "completion_tokens_details"), "reasoning_tokens");
    st->reasoning = json_is_integer(v) ? ar_tokens_clamp(json_integer_value(v)) : 0;
    return 0;
}

static int whole_items(ar_resp_front_t *st, const json_t *msg)
{
    char id[ITEM_ID_MAX];
    int rc = 0;
    json_t *reasoning = json_object_get(msg, "reasoning_content");
    if (!json_is_string(reasoning))
        reasoning = json_object_get(msg, "reasoning");
    if (json_is_string(reasoning) && json_string_length(reasoning)) {
        item_id(st, "rs_", st->_items++, id);
        rc = ar_xl_push(st->_output,
                        json_pack("{s:s,s:s,s:[{s:s,s:O}]}", "id", id, "type", "reasoning",
                                  "summary", "type", "summary_text", "text", reasoning));
    }
    ar_buf_t text;
    ar_buf_init(&text, AR_RESP_ITEM_MAX);
    rc = rc ? rc : ar_provider_content_text(json_object_get(msg, "content"), "", &text);
    json_t *calls = json_object_get(msg, "tool_calls");
    const char *refusal = ar_json_str(msg, "refusal");
    if (!rc && (text.len || (refusal && *refusal) || !json_array_size(calls))) {
        json_t *part = refusal && *refusal && !text.len
                           ? json_pack("{s:s,s:s}", "type", "refusal", "refusal", refusal)
                           : json_pack("{s:s,s:[],s:[],s:o}", "type", "output_text", "annotations",
                                       "logprobs", "text", jstr_span(ar_buf_span(&text)));
        item_id(st, "msg_", st->_items++, id);
        rc = ar_xl_push(
            st->_output,
            part ? json_pack("{s:s,s:s,s:s,s:[o],s:s}", "id", id, "type", "message", "status",
                             ar_xl_str_is(st->_incomplete, "max_output_tokens") ? "incomplete"
                                                                                : "completed",
                             "content", part, "role", "assistant")
                 : NULL);
    }
    ar_buf_dispose(&text);
    size_t i;
    json_t *tc;
    json_array_foreach (calls, i, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *args = ar_json_str(fn, "arguments");
        char call_id[ITEM_ID_MAX];
        item_id(st, "fc_", st->_items, id);
        item_id(st, "call_", st->_items++, call_id);
        rc = rc ? rc
                : ar_xl_push(
                      st->_output,
                      json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "type", "function_call",
                                "status", "completed", "arguments", args ? args : "", "call_id",
                                ar_json_str(tc, "id") ? ar_json_str(tc, "id") : call_id, "name",
                                ar_json_str(fn, "name") ? ar_json_str(fn, "name") : ""));
    }
    return rc;
}

int ar_resp_front_whole(ar_resp_front_t *st, ar_span_t body, ar_buf_t *out)
{
    json_t *root = ar_json_parse(body, NULL, 0);
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *res = NULL;
    int rc = AR_EUPSTREAM;
    if (!json_is_object(msg) || st->finished)
        goto done;
    upstream_model(st, json_object_get(root, "model"));
    st->_incomplete = incomplete_reason(ar_json_span(choice, "finish_reason"));
    rc = whole_usage(st, json_object_get(root, "usage"));
    rc = rc ? rc : whole_items(st, msg);
    res = rc ? NULL : final_object(st);
    rc = rc ? rc : (res ? ar_json_dump(res, out) : AR_ENOMEM);
    if (!rc) {
        st->_final = res;
        res = NULL;
        st->started = st->finished = true;
    }
done:
    json_decref(res);
    json_decref(root);
    return rc;
}

/* ---- stream events ---- */

/* `event: NAME\ndata: {"type":NAME,"sequence_number":N` (the caller closes it with ev_end). */
static int ev_begin(ar_resp_front_t *st, const char *name, ar_buf_t *out)
{
    /* per streamed delta: plain appends, no formatting */
    char num[24];
    size_t n = ar_u64_dec((uint64_t)st->_seq++, num);
    int rc = ar_buf_append_str(out, "event: ");
    rc = rc ? rc : ar_buf_append_str(out, name);
    rc = rc ? rc : ar_buf_append_str(out, "\ndata: {\"type\":\"");
    rc = rc ? rc : ar_buf_append_str(out, name);
    rc = rc ? rc : ar_buf_append_str(out, "\",\"sequence_number\":");
    return rc ? rc : ar_buf_append(out, num, n);
}

static int ev_end(ar_buf_t *out)
{
    return ar_buf_append_str(out, "}\n\n");
}

/* An event about the open item: its item_id and output_index, then the caller's fields. */
static int ev_item(ar_resp_front_t *st, const char *name, ar_buf_t *out)
{
    int rc = ev_begin(st, name, out);
    return rc ? rc : ar_buf_append(out, st->_item_ref, st->_item_ref_len);
}

/* An event whose payload member key holds the JSON value v (taken). */
static int ev_with(ar_resp_front_t *st, const char *name, const char *key, json_t *v, int index,
                   ar_buf_t *out)
{
    if (!v)
        return AR_ENOMEM;
    int rc = ev_begin(st, name, out);
    if (index >= 0)
        rc = rc ? rc : ar_buf_appendf(out, ",\"output_index\":%d", index);
    rc = rc ? rc : ar_buf_appendf(out, ",\"%s\":", key);
    rc = rc ? rc : ar_json_dump(v, out);
    rc = rc ? rc : ev_end(out);
    json_decref(v);
    return rc;
}

static int start(ar_resp_front_t *st, ar_buf_t *out)
{
    if (st->started)
        return 0;
    st->started = true;
    /* the same object in both events: serialised once */
    ar_buf_t obj;
    ar_buf_init(&obj, AR_RESP_ITEM_MAX);
    json_t *r = response_object(st, "in_progress", false);
    int rc = r ? ar_json_dump(r, &obj) : AR_ENOMEM;
    json_decref(r);
    static const char *const names[] = {"response.created", "response.in_progress"};
    for (size_t i = 0; i < 2 && !rc; i++) {
        rc = ev_begin(st, names[i], out);
        rc = rc ? rc : ar_buf_append_str(out, ",\"response\":");
        rc = rc ? rc : ar_buf_append_span(out, ar_buf_span(&obj));
        rc = rc ? rc : ev_end(out);
    }
    ar_buf_dispose(&obj);
    return rc;
}

/* Opens an output item of kind (the open one is closed by the caller first). */
static int open_item(ar_resp_front_t *st, int kind, ar_buf_t *out)
{
    char id[ITEM_ID_MAX];
    int index = st->_items++;
    st->_kind = kind;
    ar_buf_reset(&st->_text);
    int rc = ar_buf_append_str(&st->_text, "\""); /* the gathered text is a JSON string */
    item_id(st, item_prefix(kind), index, id);
    int n = snprintf(st->_item_ref, sizeof(st->_item_ref),
                     ",\"item_id\":\"%s\",\"output_index\":%d", id, index);
    st->_item_ref_len = n > 0 && (size_t)n < sizeof(st->_item_ref) ? (size_t)n : 0;
    rc = rc ? rc : ev_begin(st, "response.output_item.added", out);
    rc = rc ? rc : ar_buf_appendf(out, ",\"output_index\":%d,\"item\":{\"id\":\"%s\",", index, id);
    if (kind == ITEM_MESSAGE) {
        rc = rc ? rc
                : ar_buf_append_str(out, "\"type\":\"message\",\"status\":\"in_progress\","
                                         "\"content\":[],\"role\":\"assistant\"}");
        rc = rc ? rc : ev_end(out);
        rc = rc ? rc : ev_item(st, "response.content_part.added", out);
        rc = rc ? rc
                : ar_buf_append_str(out, ",\"content_index\":0,\"part\":{\"type\":\"output_text\","
                                         "\"annotations\":[],\"logprobs\":[],\"text\":\"\"}");
    } else if (kind == ITEM_REASONING) {
        rc = rc ? rc : ar_buf_append_str(out, "\"type\":\"reasoning\",\"summary\":[]}");
        rc = rc ? rc : ev_end(out);
        rc = rc ? rc : ev_item(st, "response.reasoning_summary_part.added", out);
        rc = rc ? rc
                : ar_buf_append_str(out, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\","
                                         "\"text\":\"\"}");
    } else {
        rc = rc ? rc
                : ar_buf_append_str(out, "\"type\":\"function_call\",\"status\":\"in_progress\","
                                         "\"arguments\":\"\",\"call_id\":\"");
        rc = rc ? rc : ar_buf_append_span(out, ar_buf_span(&st->_call_id));
        rc = rc ? rc : ar_buf_append_str(out, "\",\"name\":\"");
        rc = rc ? rc : ar_buf_append_span(out, ar_buf_span(&st->_name));
        rc = rc ? rc : ar_buf_append_str(out, "\"}");
    }
    rc = rc ? rc : ev_end(out);
    return rc;
}

/* An escaped string gathered for the open call (call_id or name), decoded. */
static json_t *decode_inner(ar_span_t inner)
{
    ar_buf_t q;
    ar_buf_init(&q, 3 * NAME_MAX_BYTES);
    int rc = ar_buf_append_str(&q, "\"");
    rc = rc ? rc : ar_buf_append_span(&q, inner);
    rc = rc ? rc : ar_buf_append_str(&q, "\"");
    json_t *v = rc ? NULL : decode(ar_buf_span(&q));
    ar_buf_dispose(&q);
    if (!json_is_string(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* The finished item as a tree, text decoded from the gathered escaped string. */
static json_t *item_object(ar_resp_front_t *st, json_t *text)
{
    char id[ITEM_ID_MAX];
    item_id(st, item_prefix(st->_kind), st->_items - 1, id);
    if (st->_kind == ITEM_MESSAGE)
        return json_pack(
            "{s:s,s:s,s:s,s:[{s:s,s:[],s:[],s:O}],s:s}", "id", id, "type", "message", "status",
            ar_xl_str_is(st->_incomplete, "max_output_tokens") ? "incomplete" : "completed",
            "content", "type", "output_text", "annotations", "logprobs", "text", text, "role",
            "assistant");
    if (st->_kind == ITEM_REASONING)
        return json_pack("{s:s,s:s,s:[{s:s,s:O}]}", "id", id, "type", "reasoning", "summary",
                         "type", "summary_text", "text", text);
    json_t *call_id = decode_inner(ar_buf_span(&st->_call_id));
    json_t *name = decode_inner(ar_buf_span(&st->_name));
    if (!call_id || !name) {
        json_decref(call_id);
        json_decref(name);
        return NULL;
    }
    return json_pack("{s:s,s:s,s:s,s:O,s:o,s:o}", "id", id, "type", "function_call", "status",
                     "completed", "arguments", text, "call_id", call_id, "name", name);
}

static int close_item(ar_resp_front_t *st, ar_buf_t *out)
{
    if (st->_kind == ITEM_NONE)
        return 0;
    int rc = ar_buf_append_str(&st->_text, "\"");
    ar_span_t raw = ar_buf_span(&st->_text); /* with its quotes */
    json_t *text = rc ? NULL : decode(raw);
    json_t *item = NULL;
    if (!rc && !json_is_string(text))
        rc = AR_EUPSTREAM; /* escapes that only made sense in pieces */
    if (!rc && st->_kind == ITEM_MESSAGE) {
        rc = ev_item(st, "response.output_text.done", out);
        rc = rc ? rc : ar_buf_append_str(out, ",\"content_index\":0,\"text\":");
        rc = rc ? rc : ar_buf_append_span(out, raw);
        rc = rc ? rc : ar_buf_append_str(out, ",\"logprobs\":[]");
        rc = rc ? rc : ev_end(out);
        rc = rc ? rc : ev_item(st, "response.content_part.done", out);
        rc = rc ? rc
                : ar_buf_append_str(out, ",\"content_index\":0,\"part\":{\"type\":\"output_text\","
                                         "\"annotations\":[],\"logprobs\":[],\"text\":");
        rc = rc ? rc : ar_buf_append_span(out, raw);
        rc = rc ? rc : ar_buf_append_str(out, "}");
        rc = rc ? rc : ev_end(out);
    } else if (!rc && st->_kind == ITEM_REASONING) {
        rc = ev_item(st, "response.reasoning_summary_text.done", out);
        rc = rc ? rc : ar_buf_append_str(out, ",\"summary_index\":0,\"text\":");
        rc = rc ? rc : ar_buf_append_span(out, raw);
        rc = rc ? rc : ev_end(out);
        rc = rc ? rc : ev_item(st, "response.reasoning_summary_part.done", out);
        rc = rc ? rc
                : ar_buf_append_str(out, ",\"summary_index\":0,\"part\":{\"type\":"
                                         "\"summary_text\",\"text\":");
        rc = rc ? rc : ar_buf_append_span(out, raw);
        rc = rc ? rc : ar_buf_append_str(out, "}");
        rc = rc ? rc : ev_end(out);
    } else if (!rc) {
        rc = ev_item(st, "response.function_call_arguments.done", out);
        rc = rc ? rc : ar_buf_append_str(out, ",\"name\":\"");
        rc = rc ? rc : ar_buf_append_span(out, ar_buf_span(&st->_name));
        rc = rc ? rc : ar_buf_append_str(out, "\",\"arguments\":");
        rc = rc ? rc : ar_buf_append_span(out, raw);
        rc = rc ? rc : ev_end(out);
    }
    if (!rc) {
        item = item_object(st, text);
        rc = item ? 0 : AR_EUPSTREAM; /* a call id or name that does not decode */
    }
    rc = rc ? rc
            : ev_with(st, "response.output_item.done", "item", json_incref(item), st->_items - 1,
                      out);
    rc = rc ? rc : ar_xl_push(st->_output, json_incref(item));
    json_decref(item);
    json_decref(text);
    st->_kind = ITEM_NONE;
    return rc;
}

/* Text or reasoning text (raw: the inside of a JSON string) for an item of kind. */
static int text_delta(ar_resp_front_t *st, int kind, ar_span_t raw, ar_buf_t *out)
{
    int rc = 0;
    if (st->_kind != kind) {
        rc = close_item(st, out);
        rc = rc ? rc : open_item(st, kind, out);
    }
    rc = rc ? rc : ar_buf_append_span(&st->_text, raw);
    if (kind == ITEM_MESSAGE) {
        rc = rc ? rc : ev_item(st, "response.output_text.delta", out);
        rc = rc ? rc : ar_buf_append_str(out, ",\"content_index\":0,\"delta\":\"");
        rc = rc ? rc : ar_buf_append_span(out, raw);
        rc = rc ? rc : ar_buf_append_str(out, "\",\"logprobs\":[]");
    } else {
        rc = rc ? rc : ev_item(st, "response.reasoning_summary_text.delta", out);
        rc = rc ? rc : ar_buf_append_str(out, ",\"summary_index\":0,\"delta\":\"");
        rc = rc ? rc : ar_buf_append_span(out, raw);
        rc = rc ? rc : ar_buf_append_str(out, "\"");
    }
    return rc ? rc : ev_end(out);
}

/* A call id for an upstream call that came without one (unique within the response). */
static int append_call_id(const ar_resp_front_t *st, ar_buf_t *b)
{
    char id[ITEM_ID_MAX];
    item_id(st, "call_", st->_items, id);
    return ar_buf_append_str(b, id);
}

static int tool_delta(ar_resp_front_t *st, ar_span_t tc, ar_buf_t *out)
{
    int64_t index = 0;
    ar_span_t fn = AR_SPAN_NULL, id = AR_SPAN_NULL, name = AR_SPAN_NULL, args = AR_SPAN_NULL;
    if (!tc.len || tc.ptr[0] != '{')
        return 0;
    (void)ar_jscan_get_int(tc, AR_LIT("index"), &index);
    (void)ar_jscan_get(tc, AR_LIT("function"), &fn);
    bool has_id = raw_str_checked(tc, "id", &id) && id.len;
    bool has_name = fn.len && raw_str_checked(fn, "name", &name) && name.len;
    int rc = 0;
    /* some upstreams repeat the id on every delta of a call: only a new id opens a call */
    if (st->_kind != ITEM_CALL || index != st->_tool_index ||
        (has_id && !ar_span_eq(id, ar_buf_span(&st->_call_id)))) {
        rc = close_item(st, out);
        ar_buf_reset(&st->_call_id);
        ar_buf_reset(&st->_name);
        if (has_id)
            rc = rc ? rc : ar_buf_append_span(&st->_call_id, id);
        else
            rc = rc ? rc : append_call_id(st, &st->_call_id);
        if (has_name)
            rc = rc ? rc : ar_buf_append_span(&st->_name, name);
        st->_tool_index = index;
        rc = rc ? rc : open_item(st, ITEM_CALL, out);
    }
    if (!rc && fn.len && raw_str_checked(fn, "arguments", &args) && args.len) {
        rc = ar_buf_append_span(&st->_text, args);
        rc = rc ? rc : ev_item(st, "response.function_call_arguments.delta", out);
        rc = rc ? rc : ar_buf_append_str(out, ",\"delta\":\"");
        rc = rc ? rc : ar_buf_append_span(out, args);
        rc = rc ? rc : ar_buf_append_str(out, "\"");
        rc = rc ? rc : ev_end(out);
    }
    return rc;
}

static int choice_delta(ar_resp_front_t *st, ar_span_t choice, ar_buf_t *out)
{
    ar_span_t delta, v, calls, finish;
    int rc = 0;
    if (ar_jscan_get(choice, AR_LIT("delta"), &delta) == 0 && delta.len && delta.ptr[0] == '{') {
        if ((raw_str_checked(delta, "reasoning_content", &v) ||
             raw_str_checked(delta, "reasoning", &v)) &&
            v.len)
            rc = text_delta(st, ITEM_REASONING, v, out);
        if (!rc && raw_str_checked(delta, "content", &v) && v.len)
            rc = text_delta(st, ITEM_MESSAGE, v, out);
        ar_jscan_iter_t it;
        ar_span_t tc;
        if (!rc && ar_jscan_get(delta, AR_LIT("tool_calls"), &calls) == 0 &&
            ar_jscan_array_begin(calls, &it) == 0) {
            while (!rc && ar_jscan_array_next(&it, &tc))
                rc = tool_delta(st, tc, out);
        }
    }
    if (!rc && raw_str(choice, "finish_reason", &finish)) {
        st->_incomplete = incomplete_reason(finish);
        rc = close_item(st, out);
    }
    return rc;
}

static void stream_usage(ar_resp_front_t *st, ar_span_t u)
{
    ar_usage_t x = {.prompt_tokens = st->in,
                    .completion_tokens = st->out,
                    .cached_tokens = st->cached,
                    .reasoning_tokens = st->reasoning};
    ar_provider_usage_from_openai(u, &x);
    st->in = x.prompt_tokens;
    st->out = x.completion_tokens;
    st->cached = x.cached_tokens;
    st->reasoning = x.reasoning_tokens;
}

static int finish(ar_resp_front_t *st, ar_buf_t *out)
{
    int rc = start(st, out);
    rc = rc ? rc : close_item(st, out);
    json_t *res = rc ? NULL : final_object(st);
    if (!rc && !res)
        rc = AR_ENOMEM;
    rc = rc ? rc
            : ev_with(st, st->_incomplete ? "response.incomplete" : "response.completed",
                      "response", json_incref(res), -1, out);
    if (!rc) {
        st->_final = res;
        res = NULL;
    }
    json_decref(res);
    st->finished = true;
    return rc;
}

/* The `error` event and response.failed, with code and message as given. */
static int fail_stream(ar_resp_front_t *st, const char *code, json_t *message, ar_buf_t *out)
{
    int rc = message ? start(st, out) : AR_ENOMEM;
    st->finished = true;
    json_t *err = rc ? NULL : json_pack("{s:s,s:O}", "code", code, "message", message);
    json_t *res = err ? response_object(st, "failed", false) : NULL;
    if (!rc && (!res || ar_xl_set(res, "output", json_incref(st->_output)) ||
                ar_xl_set(res, "error", json_incref(err))))
        rc = AR_ENOMEM;
    rc = rc ? rc : ev_begin(st, "error", out);
    rc = rc ? rc : ar_buf_appendf(out, ",\"code\":\"%s\",\"message\":", code);
    rc = rc ? rc : ar_json_dump(message, out);
    rc = rc ? rc : ar_buf_append_str(out, ",\"param\":null");
    rc = rc ? rc : ev_end(out);
    rc = rc ? rc : ev_with(st, "response.failed", "response", json_incref(res), -1, out);
    if (!rc) {
        st->_final = res;
        res = NULL;
    }
    json_decref(res);
    json_decref(err);
    json_decref(message);
    return rc;
}

/* The Responses error code for an OpenAI error type or code (both are snake_case words). */
static const char *error_code(ar_span_t type)
{
    static const char *const known[] = {
        "server_error",
        "rate_limit_exceeded",
        "invalid_request_error",
        "timeout_error",
        "api_connection_error",
        "service_unavailable_error",
        "invalid_prompt",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "api_error",
        "context_length_exceeded",
        "insufficient_quota",
        "content_filter",
    };
    if (span_is(type, "rate_limit_error"))
        return "rate_limit_exceeded";
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (span_is(type, known[i]))
            return known[i];
    }
    return "server_error";
}

/* message as a JSON string; jansson refuses bytes that are not UTF-8 (an upstream's broken
 * error text), which the escaper replaces with U+FFFD. NULL when memory runs out. */
static json_t *message_string(const char *message)
{
    json_t *v = json_string(message);
    if (v)
        return v;
    ar_buf_t q;
    ar_buf_init(&q, 8 * strlen(message) + 3);
    int rc = ar_buf_append_str(&q, "\"");
    rc = rc ? rc : ar_buf_append_json_escaped(&q, ar_span_cstr(message));
    rc = rc ? rc : ar_buf_append_str(&q, "\"");
    v = rc ? NULL : decode(ar_buf_span(&q));
    ar_buf_dispose(&q);
    return v;
}

int ar_resp_front_error_event(ar_resp_front_t *st, const char *type, const char *message,
                              ar_buf_t *out)
{
    if (st->finished)
        return 0;
    return fail_stream(st, error_code(ar_span_cstr(type ? type : "server_error")),
                       message_string(message ? message : "upstream error"), out);
}

/* An error payload inside the chat stream ({"error":{"message","type","code"}}). */
static int chunk_error(ar_resp_front_t *st, ar_span_t e, ar_buf_t *out)
{
    ar_span_t code = AR_SPAN_NULL, msg;
    if (!raw_str(e, "code", &code) || !code.len)
        (void)raw_str(e, "type", &code);
    json_t *m = NULL;
    if (ar_jscan_get(e, AR_LIT("message"), &msg) == 0)
        m = decode(msg);
    if (!json_is_string(m)) {
        json_decref(m);
        m = json_string("upstream error");
    }
    return fail_stream(st, error_code(code), m, out);
}

static int chunk(ar_resp_front_t *st, ar_span_t data, ar_buf_t *out)
{
    ar_span_t v, choices, choice;
    data = ar_span_trim(data);
    if (st->finished)
        return 0;
    if (span_is(data, "[DONE]"))
        return finish(st, out);
    if (!data.len || data.ptr[0] != '{' || ar_json_validate(data, NULL, 0) != 0)
        return AR_EUPSTREAM;
    /* one pass over the chunk's members (the last of a repeated key wins, as in jansson) */
    ar_span_t err = AR_SPAN_NULL, model = AR_SPAN_NULL, usage = AR_SPAN_NULL;
    choices = AR_SPAN_NULL;
    ar_jscan_iter_t mi;
    ar_span_t k;
    if (ar_jscan_object_begin(data, &mi) != 0)
        return AR_EUPSTREAM;
    while (ar_jscan_object_next(&mi, &k, &v)) {
        if (ar_jscan_key_eq(k, AR_LIT("choices")))
            choices = v;
        else if (ar_jscan_key_eq(k, AR_LIT("usage")))
            usage = v;
        else if (ar_jscan_key_eq(k, AR_LIT("model")))
            model = v;
        else if (ar_jscan_key_eq(k, AR_LIT("error")))
            err = v;
    }
    if (err.len && err.ptr[0] == '{')
        return chunk_error(st, err, out);
    if (!st->started && model.len) {
        json_t *m = decode(model);
        upstream_model(st, m);
        json_decref(m);
    }
    if (usage.len && usage.ptr[0] == '{')
        stream_usage(st, usage);
    int rc = start(st, out);
    ar_jscan_iter_t it;
    /* n > 1 has no Responses form: choice 0 only */
    if (!rc && choices.len && ar_jscan_array_begin(choices, &it) == 0 &&
        ar_jscan_array_next(&it, &choice))
        rc = choice_delta(st, choice, out);
    return rc;
}

int ar_resp_front_chunk(ar_resp_front_t *st, ar_span_t data, ar_buf_t *out)
{
    size_t len = out->len;
    int64_t seq = st->_seq;
    int rc = chunk(st, data, out);
    if (rc) {
        /* the gateway drops a refused payload's output: its events, and so their sequence
         * numbers, never reach the client, and what follows must count on from before it */
        out->len = len;
        st->_seq = seq;
    }
    return rc;
}

int ar_resp_front_end(ar_resp_front_t *st, ar_buf_t *out)
{
    return st->finished ? 0 : finish(st, out);
}
