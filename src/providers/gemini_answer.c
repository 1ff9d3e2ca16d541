/*
 * gemini_answer.c: Gemini -> OpenAI whole answers and errors, shared by gemini.c and
 * vertex.c (see gemini_xlate.h): a GenerateContentResponse into a chat.completion, the
 * embedding answers into an OpenAI embeddings list, Google error bodies into OpenAI's error
 * fields; also the pieces the stream shares (usage, tool calls, ids: gemini_int.h). No tree
 * is built: the upstream text is validated, walked with the scanner and its JSON string
 * contents and values copied straight into the output. Requests are gemini_request.c,
 * stream events gemini_stream.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "core/mem.h"
#include "providers/gemini_int.h"

/* ---- answers: common pieces ---- */

const char *ar_gem_finish_reason(ar_span_t r, bool has_tool_call)
{
    static const char *const filtered[] = {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
    };
    if (ar_span_eq(r, AR_LIT("MAX_TOKENS")))
        return "length";
    for (size_t i = 0; i < AR_ARRAY_CNT(filtered); i++) {
        if (ar_span_eq(r, ar_span_cstr(filtered[i])))
            return "content_filter";
    }
    /* STOP and everything else (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, ...) */
    return has_tool_call ? "tool_calls" : "stop";
}

/* Usage from usageMetadata. */
void ar_gem__read_usage(ar_span_t um, ar_usage_t *u)
{
    int64_t prompt = 0, cand = 0, thoughts = 0, tool = 0, total = -1, cached = 0;
    ar_jscan_iter_t it;
    ar_span_t k, v;
    if (ar_jscan_object_begin(um, &it) != 0)
        return;
    while (ar_jscan_object_next(&it, &k, &v)) {
        int64_t *dst = NULL;
        if (ar_span_eq(k, AR_LIT("promptTokenCount")))
            dst = &prompt;
        else if (ar_span_eq(k, AR_LIT("candidatesTokenCount")))
            dst = &cand;
        else if (ar_span_eq(k, AR_LIT("thoughtsTokenCount")))
            dst = &thoughts;
        else if (ar_span_eq(k, AR_LIT("toolUsePromptTokenCount")))
            dst = &tool;
        else if (ar_span_eq(k, AR_LIT("totalTokenCount")))
            dst = &total;
        else if (ar_span_eq(k, AR_LIT("cachedContentTokenCount")))
            dst = &cached;
        if (dst) {
            int64_t n = 0;
            for (size_t i = 0; i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9' && i < 18; i++)
                n = n * 10 + (v.ptr[i] - '0');
            *dst = ar_tokens_clamp(n);
        }
    }
    /* tool-use prompt tokens are input; thoughts are output, as OpenAI counts reasoning */
    u->prompt_tokens = prompt + tool;
    u->completion_tokens = cand + thoughts;
    u->total_tokens = total >= 0 ? total : u->prompt_tokens + u->completion_tokens;
    /* cachedContentTokenCount is part of promptTokenCount */
    u->cached_tokens = cached < prompt ? cached : prompt;
    u->reasoning_tokens = thoughts;
    u->seen = true;
}

int ar_gem__append_usage(ar_buf_t *b, const ar_usage_t *u)
{
    int rc = ar_buf_appendf(b,
                            "\"usage\":{\"prompt_tokens\":%" PRId64
                            ",\"completion_tokens\":%" PRId64 ",\"total_tokens\":%" PRId64,
                            u->prompt_tokens, u->completion_tokens, u->total_tokens);
    if (u->cached_tokens > 0)
        rc = rc ? rc
                : ar_buf_appendf(b, ",\"prompt_tokens_details\":{\"cached_tokens\":%" PRId64 "}",
                                 u->cached_tokens);
    if (u->reasoning_tokens > 0)
        rc = rc ? rc
                : ar_buf_appendf(
                      b, ",\"completion_tokens_details\":{\"reasoning_tokens\":%" PRId64 "}",
                      u->reasoning_tokens);
    return rc ? rc : ar_buf_append_str(b, "}");
}

void ar_gem__new_id(char *id, size_t n, const char *prefix)
{
    snprintf(id, n, "%s%016" PRIx64 "%08" PRIx32, prefix, ar_rand_u64(), (uint32_t)ar_rand_u64());
}

/* One OpenAI tool call (whole-answer shape, with "index" when index >= 0). */
int ar_gem__append_tool_call(ar_buf_t *b, ar_span_t part, ar_span_t fc, int index)
{
    ar_span_t name = AR_SPAN_NULL, args = AR_SPAN_NULL, sig = AR_SPAN_NULL, v;
    if (has(fc, AR_LIT("name"), &v))
        name = raw_string(v);
    if (has(fc, AR_LIT("args"), &v))
        args = v;
    if (has(part, AR_LIT("thoughtSignature"), &v))
        sig = raw_string(v);
    char id[48];
    ar_gem__new_id(id, sizeof(id), "call_");
    int rc = ar_buf_append_str(b, "{");
    if (index >= 0)
        rc = rc ? rc : ar_buf_appendf(b, "\"index\":%d,", index);
    rc = rc ? rc : ar_buf_appendf(b, "\"id\":\"%s", id);
    if (sig.len) {
        rc = rc ? rc : ar_buf_append_str(b, THOUGHT_MARK);
        rc = rc ? rc : ar_buf_append_span(b, sig);
    }
    rc = rc ? rc : ar_buf_append_str(b, "\",\"type\":\"function\",\"function\":{\"name\":\"");
    rc = rc ? rc : ar_buf_append_span(b, name);
    rc = rc ? rc : ar_buf_append_str(b, "\",\"arguments\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(b, args.len ? args : AR_LIT("{}"));
    rc = rc ? rc : ar_buf_append_str(b, "\"}}");
    return rc;
}

/* ---- answers: a whole GenerateContentResponse ---- */

/* Appends the text of a candidate's parts: thought (reasoning) parts or the others.
 * @return whether any such part was there. */
static bool append_texts(ar_buf_t *b, ar_span_t parts, bool thoughts, int *rc)
{
    ar_jscan_iter_t it;
    ar_span_t part, v;
    bool any = false;
    if (ar_jscan_array_begin(parts, &it) != 0)
        return false;
    while (ar_jscan_array_next(&it, &part)) {
        if (!has(part, AR_LIT("text"), &v))
            continue;
        ar_span_t t;
        bool thought = has(part, AR_LIT("thought"), &t) && is_true(t);
        if (thought != thoughts)
            continue;
        any = true;
        if (!*rc)
            *rc = ar_buf_append_span(b, raw_string(v));
    }
    return any;
}

static int whole_choice(ar_buf_t *b, ar_span_t cand, size_t pos)
{
    ar_span_t content = AR_SPAN_NULL, parts = AR_SPAN_NULL, v;
    int64_t index = (int64_t)pos;
    (void)ar_jscan_get_int(cand, AR_LIT("index"), &index);
    if (has(cand, AR_LIT("content"), &content))
        (void)has(content, AR_LIT("parts"), &parts);
    int rc = ar_buf_appendf(b, "%s{\"index\":%" PRId64 ",\"message\":{\"role\":\"assistant\"",
                            pos ? "," : "", index);
    /* content: the joined text, or null when the answer has no text at all */
    size_t mark = b->len;
    rc = rc ? rc : ar_buf_append_str(b, ",\"content\":\"");
    if (append_texts(b, parts, false, &rc)) {
        rc = rc ? rc : ar_buf_append_str(b, "\"");
    } else if (!rc) {
        b->len = mark;
        rc = ar_buf_append_str(b, ",\"content\":null");
    }
    mark = b->len;
    rc = rc ? rc : ar_buf_append_str(b, ",\"reasoning_content\":\"");
    if (append_texts(b, parts, true, &rc))
        rc = rc ? rc : ar_buf_append_str(b, "\"");
    else if (!rc)
        b->len = mark;
    /* tool calls */
    ar_jscan_iter_t it;
    ar_span_t part, fc;
    bool tools = false;
    if (ar_jscan_array_begin(parts, &it) == 0) {
        while (ar_jscan_array_next(&it, &part)) {
            if (!has(part, AR_LIT("functionCall"), &fc))
                continue;
            rc = rc ? rc : ar_buf_append_str(b, tools ? "," : ",\"tool_calls\":[");
            rc = rc ? rc : ar_gem__append_tool_call(b, part, fc, -1);
            tools = true;
        }
    }
    if (tools)
        rc = rc ? rc : ar_buf_append_str(b, "]");
    ar_span_t reason = AR_SPAN_NULL;
    if (has(cand, AR_LIT("finishReason"), &v))
        reason = raw_string(v);
    rc = rc ? rc
            : ar_buf_appendf(b, "},\"logprobs\":null,\"finish_reason\":\"%s\"}",
                             ar_gem_finish_reason(reason, tools));
    return rc;
}

static int whole_chat(ar_call_t *call, ar_span_t body, ar_buf_t *out)
{
    ar_span_t v, cands = AR_SPAN_NULL, rid = AR_SPAN_NULL;
    if (has(body, AR_LIT("usageMetadata"), &v))
        ar_gem__read_usage(v, &call->usage);
    if (has(body, AR_LIT("responseId"), &v))
        rid = raw_string(v);
    char id[48];
    if (rid.len) {
        /* at most 36 bytes, cut before a UTF-8 continuation byte, never inside a character */
        size_t keep = rid.len < 36 ? rid.len : 36;
        while (keep > 0 && keep < rid.len && ((unsigned char)rid.ptr[keep] & 0xc0) == 0x80)
            keep--;
        snprintf(id, sizeof(id), "chatcmpl-%.*s", (int)keep, rid.ptr);
    } else
        ar_gem__new_id(id, sizeof(id), "chatcmpl-");
    for (char *p = id; *p; p++) {
        if (*p == '"' || *p == '\\')
            *p = '_'; /* the raw id may hold escapes; keep the output valid */
    }
    int rc = ar_buf_appendf(out,
                            "{\"id\":\"%s\",\"object\":\"chat.completion\",\"created\":%ld,"
                            "\"model\":\"",
                            id, (long)time(NULL));
    rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(call->model));
    rc = rc ? rc : ar_buf_append_str(out, "\",\"choices\":[");
    size_t n = 0;
    ar_jscan_iter_t it;
    ar_span_t cand;
    if (has(body, AR_LIT("candidates"), &cands) && ar_jscan_array_begin(cands, &it) == 0) {
        while (!rc && ar_jscan_array_next(&it, &cand))
            rc = whole_choice(out, cand, n++);
    }
    if (n == 0) {
        /* nothing generated: a blocked prompt (promptFeedback.blockReason) is a filter */
        ar_span_t pf, br;
        bool blocked =
            has(body, AR_LIT("promptFeedback"), &pf) && has(pf, AR_LIT("blockReason"), &br);
        rc = rc ? rc
                : ar_buf_appendf(out,
                                 "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                                 "null},\"logprobs\":null,\"finish_reason\":\"%s\"}",
                                 blocked ? "content_filter" : "stop");
    }
    rc = rc ? rc : ar_buf_append_str(out, "],");
    rc = rc ? rc : ar_gem__append_usage(out, &call->usage);
    rc = rc ? rc : ar_buf_append_str(out, "}");
    return rc;
}

/* ---- answers: embeddings ---- */

/* Appends the float32 little-endian base64 of a raw JSON array of numbers. */
static int append_base64_vector(ar_buf_t *out, ar_span_t values)
{
    ar_jscan_iter_t it;
    ar_span_t e;
    ar_buf_t bin;
    ar_buf_init(&bin, values.len * 4 + 16);
    int rc = ar_jscan_array_begin(values, &it) == 0 ? 0 : AR_EUPSTREAM;
    while (!rc && ar_jscan_array_next(&it, &e)) {
        char tmp[64];
        if (e.len == 0 || e.len >= sizeof(tmp)) {
            rc = AR_EUPSTREAM;
            break;
        }
        memcpy(tmp, e.ptr, e.len);
        tmp[e.len] = '\0';
        char *end = NULL;
        float f = (float)strtod(tmp, &end);
        if (end != tmp + e.len) {
            rc = AR_EUPSTREAM;
            break;
        }
        uint32_t w;
        memcpy(&w, &f, sizeof(w));
        unsigned char le[4] = {(unsigned char)w, (unsigned char)(w >> 8), (unsigned char)(w >> 16),
                               (unsigned char)(w >> 24)};
        rc = ar_buf_append(&bin, le, sizeof(le));
    }
    rc = rc ? rc : ar_buf_append_str(out, "\"");
    rc = rc ? rc : ar_base64_encode(ar_buf_span(&bin), false, out);
    rc = rc ? rc : ar_buf_append_str(out, "\"");
    ar_buf_dispose(&bin);
    return rc;
}

static int append_embedding(ar_buf_t *out, size_t index, ar_span_t values, bool b64)
{
    if (values.len == 0 || values.ptr[0] != '[')
        return AR_EUPSTREAM;
    int rc = ar_buf_appendf(
        out, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", index ? "," : "", index);
    rc = rc ? rc : (b64 ? append_base64_vector(out, values) : ar_buf_append_span(out, values));
    rc = rc ? rc : ar_buf_append_str(out, "}");
    return rc;
}

static int whole_embeddings(ar_call_t *call, ar_span_t body, ar_buf_t *out)
{
    bool b64 = ar_xl_str_is(ar_json_str(ar_call_json(call), "encoding_format"), "base64");
    ar_span_t v, arr, e, inner;
    ar_jscan_iter_t it;
    size_t n = 0;
    int64_t tokens = 0;
    bool counted = false;
    int rc = ar_buf_append_str(out, "{\"object\":\"list\",\"data\":[");
    if (has(body, AR_LIT("embedding"), &v)) {
        /* embedContent: {"embedding": {"values": [...]}} */
        rc = rc ? rc
                : (has(v, AR_LIT("values"), &inner) ? append_embedding(out, n++, inner, b64)
                                                    : AR_EUPSTREAM);
    } else if (has(body, AR_LIT("embeddings"), &arr) && ar_jscan_array_begin(arr, &it) == 0) {
        /* batchEmbedContents: {"embeddings": [{"values": [...]}, ...]} */
        while (!rc && ar_jscan_array_next(&it, &e))
            rc = has(e, AR_LIT("values"), &inner) ? append_embedding(out, n++, inner, b64)
                                                  : AR_EUPSTREAM;
    } else if (has(body, AR_LIT("predictions"), &arr) && ar_jscan_array_begin(arr, &it) == 0) {
        /* Vertex predict: {"predictions": [{"embeddings": {"values": [...],
         * "statistics": {"token_count": N}}}]} */
        while (!rc && ar_jscan_array_next(&it, &e)) {
            ar_span_t emb, st;
            if (!has(e, AR_LIT("embeddings"), &emb) || !has(emb, AR_LIT("values"), &inner)) {
                rc = AR_EUPSTREAM;
                break;
            }
            int64_t tc = 0;
            if (has(emb, AR_LIT("statistics"), &st) &&
                ar_jscan_get_int(st, AR_LIT("token_count"), &tc) == 0) {
                tokens = ar_tokens_clamp(tokens + ar_tokens_clamp(tc));
                counted = true;
            }
            rc = append_embedding(out, n++, inner, b64);
        }
    } else {
        rc = rc ? rc : AR_EUPSTREAM;
    }
    if (!rc && n == 0)
        rc = AR_EUPSTREAM;
    if (!counted && has(body, AR_LIT("usageMetadata"), &v)) {
        counted = ar_jscan_get_int(v, AR_LIT("promptTokenCount"), &tokens) == 0;
        tokens = ar_tokens_clamp(tokens);
    }
    call->usage.prompt_tokens = tokens;
    call->usage.completion_tokens = 0;
    call->usage.total_tokens = tokens;
    call->usage.seen = counted;
    rc = rc ? rc : ar_buf_append_str(out, "],\"model\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(call->model));
    rc = rc ? rc
            : ar_buf_appendf(
                  out, "\",\"usage\":{\"prompt_tokens\":%" PRId64 ",\"total_tokens\":%" PRId64 "}}",
                  tokens, tokens);
    return rc;
}

int ar_gem_parse_response(ar_provider_t *p, ar_call_t *call, ar_span_t body, ar_buf_t *out)
{
    (void)p;
    if (ar_json_validate(body, NULL, 0) != 0 || body.len == 0)
        return AR_EUPSTREAM;
    size_t start = out->len;
    int rc = call->endpoint == AR_EP_EMBEDDINGS ? whole_embeddings(call, body, out)
                                                : whole_chat(call, body, out);
    if (rc) {
        out->len = start;
        return rc == AR_ETOOBIG ? rc : AR_EUPSTREAM;
    }
    return 0;
}
/* ---- errors ---- */

static const struct {
    const char *status;
    const char *type;
} status_types[] = {
    {"INVALID_ARGUMENT", "invalid_request_error"}, {"FAILED_PRECONDITION", "invalid_request_error"},
    {"OUT_OF_RANGE", "invalid_request_error"},     {"UNAUTHENTICATED", "authentication_error"},
    {"PERMISSION_DENIED", "permission_error"},     {"NOT_FOUND", "not_found_error"},
    {"RESOURCE_EXHAUSTED", "rate_limit_error"},    {"DEADLINE_EXCEEDED", "timeout_error"},
};

static const char *type_of_http(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

void ar_gem_parse_error(ar_provider_t *p, ar_call_t *call, int status, ar_span_t body,
                        ar_upstream_err_t *out)
{
    (void)p;
    out->status = status;
    out->message = NULL;
    out->type = NULL;
    out->code = NULL;
    ar_span_t b = body, err, v;
    while (b.len && (b.ptr[0] == ' ' || b.ptr[0] == '\n' || b.ptr[0] == '\r' || b.ptr[0] == '\t'))
        b = ar_span_skip(b, 1);
    if (b.len && ar_json_validate(b, NULL, 0) == 0) {
        ar_jscan_iter_t it;
        ar_span_t first;
        if (b.ptr[0] == '[' && ar_jscan_array_begin(b, &it) == 0 &&
            ar_jscan_array_next(&it, &first))
            b = first; /* [{"error": ...}] from a non-SSE stream */
        if (has(b, AR_LIT("error"), &err)) {
            if (err.ptr[0] == '"') {
                /* OAuth style: {"error": "invalid_grant", "error_description": "..."} */
                out->code = ar_provider_json_string(call->pool, err);
                if (has(b, AR_LIT("error_description"), &v))
                    out->message = ar_provider_json_string(call->pool, v);
                if (!out->message)
                    out->message = out->code;
            } else {
                if (has(err, AR_LIT("message"), &v))
                    out->message = ar_provider_json_string(call->pool, v);
                if (has(err, AR_LIT("status"), &v)) {
                    ar_span_t st = raw_string(v);
                    for (size_t i = 0; i < AR_ARRAY_CNT(status_types); i++) {
                        if (ar_span_eq(st, ar_span_cstr(status_types[i].status)))
                            out->type = status_types[i].type;
                    }
                    char *code = ar_pool_strdup_span(call->pool, st);
                    for (char *c = code; *c; c++)
                        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
                    out->code = st.len ? code : NULL;
                }
            }
        }
    }
    if (!out->type)
        out->type = type_of_http(status);
    if (!out->message)
        out->message = ar_provider_error_excerpt(call->pool, body, status);
}
