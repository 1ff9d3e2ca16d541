/*
 * mock.c: the `mock` provider answers in process, with no upstream: it echoes the last
 * user message ("echo: <text>") as a chat completion, a text completion or a stream of
 * chunks, and returns deterministic embeddings. It honours mock_latency and
 * mock_stream_chunks from its credential. It exists for demos, tests and for measuring
 * airouter's own overhead, so its answers are built with plain appends, not jansson.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "core/mem.h"
#include "providers/provider.h"

typedef struct mock {
    ar_provider_t super;
} mock_t;

static ar_provider_t *create(const ar_cred_conf_t *conf, char *err, size_t errlen)
{
    (void)conf;
    (void)err;
    (void)errlen;
    mock_t *m = ar_xcalloc(1, sizeof(*m));
    return &m->super;
}

static void destroy(ar_provider_t *p)
{
    ar_free(p);
}

/* The text the mock answers to, and the number of characters the prompt had. */
static int prompt_of(const ar_call_t *call, ar_buf_t *text, size_t *prompt_chars)
{
    *prompt_chars = 0;
    json_t *body = ar_call_json((ar_call_t *)call);
    if (!body)
        return AR_EINVAL; /* ar_call_json named the problem */
    if (call->endpoint == AR_EP_CHAT) {
        json_t *msgs = json_object_get(body, "messages");
        size_t i;
        json_t *m;
        const json_t *last_user = NULL;
        json_array_foreach (msgs, i, m) {
            ar_buf_t tmp;
            ar_buf_init(&tmp, 1 << 26);
            int rc = ar_provider_content_text(json_object_get(m, "content"), " ", &tmp);
            *prompt_chars += tmp.len;
            ar_buf_dispose(&tmp);
            if (rc)
                return rc;
            const char *role = ar_json_str(m, "role");
            if (role && strcmp(role, "user") == 0)
                last_user = m;
        }
        return last_user
                   ? ar_provider_content_text(json_object_get(last_user, "content"), " ", text)
                   : 0;
    }
    json_t *v = json_object_get(body, call->endpoint == AR_EP_EMBEDDINGS ? "input" : "prompt");
    if (json_is_array(v))
        v = json_array_get(v, 0);
    if (!json_is_string(v))
        return 0;
    *prompt_chars = json_string_length(v);
    return ar_buf_append(text, json_string_value(v), json_string_length(v));
}

/* Word separators, for counting words and for splitting them into stream chunks alike. */
static bool is_sep(char c)
{
    return c == ' ' || c == '\n' || c == '\t';
}

static int64_t count_words(ar_span_t s)
{
    int64_t n = 0;
    bool in = false;
    for (size_t i = 0; i < s.len; i++) {
        bool sp = is_sep(s.ptr[i]);
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

static void set_usage(ar_call_t *call, size_t prompt_chars, ar_span_t answer)
{
    call->usage.prompt_tokens = (int64_t)(prompt_chars + 3) / 4;
    if (call->usage.prompt_tokens < 1)
        call->usage.prompt_tokens = 1;
    call->usage.completion_tokens = call->endpoint == AR_EP_EMBEDDINGS ? 0 : count_words(answer);
    call->usage.total_tokens = call->usage.prompt_tokens + call->usage.completion_tokens;
    call->usage.seen = true;
}

static int append_usage(ar_buf_t *b, const ar_usage_t *u, bool embeddings)
{
    if (embeddings)
        return ar_buf_appendf(b, "\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}",
                              (long long)u->prompt_tokens, (long long)u->total_tokens);
    return ar_buf_appendf(b,
                          "\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                          "\"total_tokens\":%lld}",
                          (long long)u->prompt_tokens, (long long)u->completion_tokens,
                          (long long)u->total_tokens);
}

static int embeddings(ar_call_t *call, ar_span_t text, ar_buf_t *b)
{
    json_t *dims_v = json_object_get(ar_call_json(call), "dimensions");
    json_int_t dims = json_is_integer(dims_v) ? json_integer_value(dims_v) : 8;
    if (dims < 1 || dims > 4096)
        dims = 8;
    json_t *input = json_object_get(ar_call_json(call), "input");
    size_t n = json_is_array(input) && !json_is_integer(json_array_get(input, 0))
                   ? json_array_size(input)
                   : 1;
    int rc = ar_buf_append_str(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        rc = ar_buf_appendf(b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":[",
                            i ? "," : "", i);
        uint32_t h = 2166136261u;
        for (size_t k = 0; k < text.len; k++)
            h = (h ^ (unsigned char)text.ptr[k]) * 16777619u;
        for (json_int_t d = 0; d < dims && !rc; d++) {
            h = h * 1103515245u + 12345u + (uint32_t)i;
            rc = ar_buf_appendf(b, "%s%.6f", d ? "," : "", (double)(h % 2000) / 1000.0 - 1.0);
        }
        rc = rc ? rc : ar_buf_append_str(b, "]}");
    }
    rc = rc ? rc : ar_buf_append_str(b, "],\"model\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(b, ar_span_cstr(call->model));
    rc = rc ? rc : ar_buf_append_str(b, "\",");
    rc = rc ? rc : append_usage(b, &call->usage, true);
    rc = rc ? rc : ar_buf_append_str(b, "}");
    return rc;
}

/* The object head shared by whole answers and chunks. */
static int append_head(ar_buf_t *b, const char *id, const char *object, long created,
                       const char *model)
{
    int rc = ar_buf_appendf(b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":\"", id,
                            object, created);
    rc = rc ? rc : ar_buf_append_json_escaped(b, ar_span_cstr(model));
    rc = rc ? rc : ar_buf_append_str(b, "\",");
    return rc;
}

static int whole_answer(ar_call_t *call, const char *id, long created, ar_span_t answer,
                        ar_buf_t *b)
{
    bool chat = call->endpoint == AR_EP_CHAT;
    int rc = append_head(b, id, chat ? "chat.completion" : "text_completion", created, call->model);
    if (chat)
        rc = rc ? rc
                : ar_buf_append_str(b, "\"choices\":[{\"index\":0,\"message\":{\"role\":"
                                       "\"assistant\",\"content\":\"");
    else
        rc = rc ? rc : ar_buf_append_str(b, "\"choices\":[{\"index\":0,\"text\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(b, answer);
    rc = rc ? rc
            : ar_buf_append_str(b, chat ? "\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                                        : "\",\"logprobs\":null,\"finish_reason\":\"stop\"}],");
    rc = rc ? rc : append_usage(b, &call->usage, false);
    rc = rc ? rc : ar_buf_append_str(b, "}");
    return rc;
}

/* One stream chunk as a complete SSE frame in the pool. */
static ar_span_t chunk(ar_call_t *call, const char *id, long created, const char *delta_json,
                       ar_span_t text, const char *finish)
{
    bool chat = call->endpoint == AR_EP_CHAT;
    ar_buf_t b;
    ar_buf_init(&b, 1 << 26);
    int rc = ar_buf_append_str(&b, "data: ");
    rc = rc ? rc
            : append_head(&b, id, chat ? "chat.completion.chunk" : "text_completion", created,
                          call->model);
    if (chat) {
        rc = rc ? rc : ar_buf_appendf(&b, "\"choices\":[{\"index\":0,\"delta\":{%s", delta_json);
        if (text.ptr) {
            rc = rc ? rc : ar_buf_append_str(&b, "\"content\":\"");
            rc = rc ? rc : ar_buf_append_json_escaped(&b, text);
            rc = rc ? rc : ar_buf_append_str(&b, "\"");
        }
        rc = rc ? rc : ar_buf_append_str(&b, "}");
    } else {
        rc = rc ? rc : ar_buf_append_str(&b, "\"choices\":[{\"index\":0,\"text\":\"");
        rc = rc ? rc : ar_buf_append_json_escaped(&b, text);
        rc = rc ? rc : ar_buf_append_str(&b, "\"");
    }
    if (finish)
        rc = rc ? rc : ar_buf_appendf(&b, ",\"finish_reason\":\"%s\"}]", finish);
    else
        rc = rc ? rc : ar_buf_append_str(&b, ",\"finish_reason\":null}]");
    if (call->client_wants_usage)
        rc = rc ? rc : ar_buf_append_str(&b, ",\"usage\":null");
    rc = rc ? rc : ar_buf_append_str(&b, "}\n\n");
    ar_span_t out = rc ? AR_SPAN_NULL : ar_span(ar_pool_strndup(call->pool, b.ptr, b.len), b.len);
    ar_buf_dispose(&b);
    return out;
}

static ar_span_t frame(ar_call_t *call, const char *s)
{
    return ar_span(ar_pool_strndup(call->pool, s, strlen(s)), strlen(s));
}

static int stream_answer(ar_call_t *call, const ar_cred_conf_t *conf, const char *id, long created,
                         ar_span_t answer, ar_inproc_answer_t *out)
{
    /* pieces: one per word (with the separators before it) or mock_stream_chunks equal
     * parts */
    size_t pieces = conf->mock_stream_chunks > 0 ? (size_t)conf->mock_stream_chunks
                                                 : (size_t)count_words(answer);
    if (pieces == 0)
        pieces = 1;
    if (pieces > answer.len && answer.len > 0)
        pieces = answer.len;
    out->events = ar_pool_alloc(call->pool, sizeof(ar_span_t) * (pieces + 4));
    size_t n = 0;
    bool chat = call->endpoint == AR_EP_CHAT;
    if (chat)
        out->events[n++] = chunk(call, id, created, "\"role\":\"assistant\",", AR_LIT(""), NULL);
    size_t pos = 0;
    for (size_t i = 0; i < pieces; i++) {
        size_t end;
        if (conf->mock_stream_chunks > 0) {
            end = answer.len * (i + 1) / pieces;
        } else {
            end = pos;
            while (end < answer.len && is_sep(answer.ptr[end]))
                end++;
            while (end < answer.len && !is_sep(answer.ptr[end]))
                end++;
            if (i + 1 == pieces)
                end = answer.len;
        }
        out->events[n++] = chunk(call, id, created, "", ar_span(answer.ptr + pos, end - pos), NULL);
        pos = end;
    }
    out->events[n++] = chunk(call, id, created, "", chat ? AR_SPAN_NULL : AR_LIT(""), "stop");
    if (call->client_wants_usage) {
        ar_buf_t b;
        ar_buf_init(&b, 4096);
        int rc = ar_buf_append_str(&b, "data: ");
        rc = rc ? rc
                : append_head(&b, id, chat ? "chat.completion.chunk" : "text_completion", created,
                              call->model);
        rc = rc ? rc : ar_buf_append_str(&b, "\"choices\":[],");
        rc = rc ? rc : append_usage(&b, &call->usage, false);
        rc = rc ? rc : ar_buf_append_str(&b, "}\n\n");
        if (!rc)
            out->events[n++] = ar_span(ar_pool_strndup(call->pool, b.ptr, b.len), b.len);
        ar_buf_dispose(&b);
    }
    out->events[n++] = frame(call, "data: [DONE]\n\n");
    out->events_cnt = n;
    for (size_t i = 0; i < n; i++) {
        if (!out->events[i].ptr)
            return AR_ETOOBIG;
    }
    call->stream_done = true;
    return 0;
}

static int answer(ar_provider_t *p, ar_call_t *call, ar_inproc_answer_t *out)
{
    const ar_cred_conf_t *conf = p->conf;
    out->latency_ms = conf->mock_latency_ms > 0 ? conf->mock_latency_ms : 0;
    out->status = 200;
    ar_buf_t text;
    ar_buf_init(&text, 1 << 26);
    size_t prompt_chars = 0;
    int rc = prompt_of(call, &text, &prompt_chars);
    ar_buf_t ans;
    ar_buf_init(&ans, (1 << 26) + 16);
    if (!rc && call->endpoint != AR_EP_EMBEDDINGS) {
        rc = ar_buf_append_str(&ans, "echo: ");
        rc = rc ? rc : ar_buf_append_span(&ans, ar_buf_span(&text));
    }
    set_usage(call, prompt_chars, ar_buf_span(&ans));
    char id[48];
    snprintf(id, sizeof(id), "%s-mock-%016llx", call->endpoint == AR_EP_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)ar_rand_u64());
    long created = (long)time(NULL);
    if (!rc) {
        if (call->endpoint == AR_EP_EMBEDDINGS)
            rc = embeddings(call, ar_buf_span(&text), &out->body);
        else if (call->stream)
            rc = stream_answer(call, conf, id, created, ar_buf_span(&ans), out);
        else
            rc = whole_answer(call, id, created, ar_buf_span(&ans), &out->body);
    }
    ar_buf_dispose(&text);
    ar_buf_dispose(&ans);
    return rc;
}

const ar_provider_ops_t ar_mock_ops = {
    .type = "mock",
    .caps = AR_PROV_STREAM | AR_PROV_EMBED | AR_PROV_COMPLETIONS | AR_PROV_INPROCESS |
            AR_PROV_OPENAI_WIRE,
    .create = create,
    .destroy = destroy,
    .answer = answer,
};
