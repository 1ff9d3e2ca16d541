/*
 * fuzz_responses.c: libFuzzer target for the Responses API front (fronts/responses_request.c
 * and responses_answer.c, wired by gateway/responses.c): client POST /v1/responses bodies
 * (with and without a previous response's items) into chat requests and stored input items,
 * and chat completions and chunk streams into response objects and the Responses event
 * sequence, ended normally or by an error. Byte 0, bits 0-1: the request, a whole answer, a
 * stream, an error alone; byte 1: options (the request the answer is for, the response id,
 * how a stream ends).
 */
#include "fronts/responses.h"
#include "fuzz_common.h"

/* What the answer modes pretend the client asked (ar_resp_front_init echoes it). */
static const char *const fz_requests[] = {
    "{\"model\":\"gpt-4o\",\"input\":\"hi\",\"stream\":true}",
    /* a model list: the upstream's model names the response */
    "{\"model\":[\"a\",\"b\"],\"input\":\"hi\"}",
    "{\"model\":\"m\",\"instructions\":\"Be brief.\",\"input\":[{\"role\":\"user\",\"content\":"
    "\"x\"}],\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{}}],"
    "\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"},\"max_output_tokens\":100,"
    "\"reasoning\":{\"effort\":\"high\",\"summary\":\"auto\"},\"text\":{\"format\":{\"type\":"
    "\"json_schema\",\"name\":\"s\",\"schema\":{}},\"verbosity\":\"low\"},\"metadata\":{\"k\":"
    "\"v\"},\"store\":false,\"previous_response_id\":\"resp_prev\",\"user\":\"\\u00e9\"}",
    /* shapes the front does not validate (the request side refuses most of them) */
    ("{\"model\":\"\",\"input\":\"x\",\"reasoning\":\"high\",\"text\":[1],\"metadata\":null,"
     "\"tools\":null,\"temperature\":\"hot\",\"instructions\":\"a\\u0000b\"}"),
};

/* Response ids as the gateway makes them, the longest that fits, and one without "resp_". */
static const char *const fz_ids[] = {
    "resp_0123456789abcdef",
    "resp_abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz012345", /* 63 bytes */
    "x",
    "resp_",
};

/* Separates the payloads of a chat chunk stream (what `data:` lines would hold). */
#define FZ_SEP '\n'

static json_t *fz_load(const char *text)
{
    json_t *v = ar_json_parse(ar_span_cstr(text), NULL, 0);
    if (!v)
        fz_fail("the target's request does not load: %s", text);
    return v;
}

/* ---- checking the events ---- */

typedef struct ev_check {
    int64_t seq;       /* the next sequence_number expected */
    size_t terminal;   /* terminal events seen (completed, incomplete, failed) */
    bool after_end;    /* an event followed the terminal one */
    bool error_before; /* an `error` event came right before the last event */
    bool last_error;   /* the previous event was `error` */
    bool utf8_in;
    char first[2][32]; /* the first two event names */
} ev_check_t;

static bool is_terminal(ar_span_t name)
{
    return ar_span_eq(name, AR_LIT("response.completed")) ||
           ar_span_eq(name, AR_LIT("response.incomplete")) ||
           ar_span_eq(name, AR_LIT("response.failed"));
}

static int on_event(void *ud, const ar_sse_event_t *ev)
{
    ev_check_t *c = ud;
    if (!ev->event.len)
        fz_fail("event %lld has no name", (long long)c->seq);
    fz_check_json(ev->data, c->utf8_in, "event data");
    json_t *d = ar_json_parse(ev->data, NULL, 0);
    if (!json_is_object(d)) {
        fz_dump("event data", ev->data);
        fz_fail("event data is not an object (or has a duplicate key)");
    }
    const char *type = ar_json_str(d, "type");
    json_t *seq = json_object_get(d, "sequence_number");
    if (!type || !ar_span_eq(ev->event, ar_span_cstr(type)))
        fz_fail("event %.*s: data.type is %s", AR_SPAN_FMT(ev->event), type ? type : "missing");
    if (!json_is_integer(seq) || json_integer_value(seq) != c->seq)
        fz_fail("event %s: sequence_number %lld, want %lld", type,
                json_is_integer(seq) ? (long long)json_integer_value(seq) : -1LL,
                (long long)c->seq);
    if (c->seq < 2)
        snprintf(c->first[c->seq], sizeof(c->first[0]), "%s", type);
    if (c->terminal)
        c->after_end = true;
    if (is_terminal(ev->event)) {
        c->terminal++;
        c->error_before = c->last_error;
        json_t *status = json_object_get(json_object_get(d, "response"), "status");
        if (!json_is_string(status))
            fz_fail("%s without response.status", type);
    }
    c->last_error = ar_span_eq(ev->event, AR_LIT("error"));
    c->seq++;
    json_decref(d);
    return 0;
}

/*
 * Checks a whole event stream: well-formed frames, each one's data a JSON object whose type
 * is the event's name and whose sequence_number counts up from 0 by one; it opens with
 * response.created and response.in_progress and ends with exactly one terminal event
 * (response.failed right after an `error`). @return the number of events.
 */
static int64_t check_events(ar_span_t out, bool utf8_in, bool failed)
{
    fz_check_frames(out, true, utf8_in, "response events");
    ev_check_t c = {0};
    c.utf8_in = utf8_in;
    ar_sse_parser_t sp;
    ar_sse_parser_init(&sp, 1u << 28);
    if (ar_sse_feed(&sp, out, on_event, &c) != 0 || ar_sse_finish(&sp, on_event, &c) != 0)
        fz_fail("the events do not parse back");
    ar_sse_parser_dispose(&sp);
    if (!c.seq)
        fz_fail("a finished stream sent no events");
    if (strcmp(c.first[0], "response.created") != 0 ||
        (c.seq > 1 && strcmp(c.first[1], "response.in_progress") != 0))
        fz_fail("the stream opens with %s, %s", c.first[0], c.first[1]);
    if (c.terminal != 1 || c.after_end)
        fz_fail("%zu terminal events, %s", c.terminal,
                c.after_end ? "one not last" : "the last one last");
    if (failed && !c.error_before)
        fz_fail("response.failed without an error event before it");
    return c.seq;
}

/* The kept response object: present once terminal, in one of the terminal states. */
static void check_final(const ar_resp_front_t *st)
{
    const json_t *f = ar_resp_front_final(st);
    const char *status = ar_json_str(f, "status");
    if (!f || !status)
        fz_fail("no final response object after the end");
    if (strcmp(status, "completed") && strcmp(status, "incomplete") && strcmp(status, "failed"))
        fz_fail("final response status %s", status);
    if (!json_is_array(json_object_get(f, "output")))
        fz_fail("final response without an output array");
}

/* ---- requests ---- */

/* err: set, NUL-terminated, without control bytes unless the client wrote escapes (its own
 * strings are quoted in messages; raw JSON text holds none below 0x20), valid UTF-8 unless
 * cut at the end. */
static void check_err(const char *err, size_t errlen, ar_span_t body, const char *what)
{
    size_t n = strnlen(err, errlen);
    if (n == errlen || n == 0)
        fz_fail("%s: refused without a message", what);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)err[i];
        if (c < 0x20 && !memchr(body.ptr, '\\', body.len)) {
            fz_dump("message", ar_span(err, n));
            fz_fail("%s: message holds control byte 0x%02x", what, c);
        }
    }
    if (n < errlen - 1 && !fz_utf8_valid(ar_span(err, n))) {
        fz_dump("message", ar_span(err, n));
        fz_fail("%s: message is not valid UTF-8", what);
    }
}

/* The stored input items: a JSON array of objects carrying string ids, as listed by GET
 * /v1/responses/{id}/input_items. */
static void check_input_items(const json_t *req)
{
    json_t *input = json_object_get(req, "input");
    json_t *items = ar_resp_input_items(req);
    if (!items) {
        if (json_is_string(input) || json_is_array(input))
            fz_fail("ar_resp_input_items gave nothing for a string or array input");
        return;
    }
    if (!json_is_array(items) ||
        json_array_size(items) != (json_is_string(input) ? 1 : json_array_size(input)))
        fz_fail("ar_resp_input_items: not one item per input");
    ar_buf_t b;
    ar_buf_init(&b, 1u << 26);
    if (ar_json_dump(items, &b) != 0)
        fz_fail("the input items do not serialise");
    fz_check_json(ar_buf_span(&b), true, "input items");
    ar_buf_dispose(&b);
    size_t i;
    json_t *it;
    json_array_foreach (items, i, it) {
        if (json_is_object(it) && !json_is_string(json_object_get(it, "id")))
            fz_fail("input item %zu without a string id", i);
    }
    json_decref(items);
}

/*
 * POST /v1/responses: rest is the body, or, when it holds a NUL byte, the previous response's
 * items (any JSON: the store gives an array) before it and the body after it. An accepted
 * request is also answered at once with an empty stream or an error, so that its fields are
 * echoed into response objects.
 */
static void request(uint8_t opt, ar_span_t rest)
{
    const char *nul = memchr(rest.ptr, 0, rest.len);
    ar_span_t body = rest;
    json_t *history = NULL;
    if (nul) {
        history = ar_json_parse(ar_span(rest.ptr, (size_t)(nul - rest.ptr)), NULL, 0);
        body = ar_span(nul + 1, rest.len - (size_t)(nul - rest.ptr) - 1);
        if (!history)
            return;
    }
    json_t *req = ar_json_parse(body, NULL, 0);
    if (!req) {
        json_decref(history);
        return;
    }
    json_t *chat = (json_t *)&chat; /* must be set to NULL on failure */
    char err[300];
    memset(err, 'x', sizeof(err));
    int rc = ar_resp_request_to_chat(req, history, &chat, err, sizeof(err));
    if (rc && rc != AR_EINVAL && rc != AR_ENOTSUP && rc != AR_ENOMEM && rc != AR_ETOOBIG)
        fz_fail("ar_resp_request_to_chat returned %s", ar_err_name(rc));
    if (rc) {
        if (chat)
            fz_fail("ar_resp_request_to_chat failed but set out");
        check_err(err, sizeof(err), rest, "ar_resp_request_to_chat");
    } else {
        if (!json_is_object(chat) || !json_is_array(json_object_get(chat, "messages")))
            fz_fail("the chat request is not an object with messages");
        ar_buf_t b;
        ar_buf_init(&b, 1u << 26);
        if (ar_json_dump(chat, &b) != 0)
            fz_fail("the chat request does not serialise");
        fz_check_json(ar_buf_span(&b), true, "chat request");
        ar_buf_dispose(&b);
        json_decref(chat);
    }
    if (json_is_object(req))
        check_input_items(req);
    if (rc == 0) {
        ar_resp_front_t st;
        if (ar_resp_front_init(&st, req, fz_ids[opt >> 3 & 3], 1700000000) != 0)
            fz_fail("ar_resp_front_init refused an accepted request");
        ar_buf_t out;
        ar_buf_init(&out, 1u << 26);
        bool failed = opt & 1;
        int erc = failed ? ar_resp_front_error_event(&st, NULL, NULL, &out)
                         : ar_resp_front_end(&st, &out);
        if (erc)
            fz_fail("ending an empty stream returned %s", ar_err_name(erc));
        (void)check_events(ar_buf_span(&out), true, failed);
        check_final(&st);
        ar_buf_dispose(&out);
        ar_resp_front_dispose(&st);
    }
    json_decref(req);
    json_decref(history);
}

/* ---- answers ---- */

static void front_open(ar_resp_front_t *st, uint8_t opt, json_t **req)
{
    *req = fz_load(fz_requests[opt >> 1 & 3]);
    if (ar_resp_front_init(st, *req, fz_ids[opt >> 3 & 3], 1700000000) != 0)
        fz_fail("ar_resp_front_init failed");
}

static void front_close(ar_resp_front_t *st, json_t *req)
{
    ar_resp_front_dispose(st);
    ar_resp_front_dispose(st); /* allowed twice */
    json_decref(req);
}

/* A whole chat completion; afterwards the front takes nothing more. */
static void whole(uint8_t opt, ar_span_t body)
{
    ar_resp_front_t st;
    json_t *req;
    front_open(&st, opt, &req);
    ar_buf_t out;
    ar_buf_init(&out, 1u << 26);
    int rc = ar_resp_front_whole(&st, body, &out);
    if (rc && rc != AR_EUPSTREAM && rc != AR_ETOOBIG)
        fz_fail("ar_resp_front_whole returned %s", ar_err_name(rc));
    if (rc == 0) {
        fz_check_json(ar_buf_span(&out), fz_utf8_valid(body), "response object");
        check_final(&st);
        size_t len = out.len;
        if (ar_resp_front_chunk(&st, AR_LIT("[DONE]"), &out) || ar_resp_front_end(&st, &out) ||
            ar_resp_front_error_event(&st, NULL, NULL, &out) || out.len != len)
            fz_fail("the front went on after a whole answer");
    } else if (out.len) {
        fz_fail("ar_resp_front_whole failed but wrote %zu bytes", out.len);
    }
    ar_buf_dispose(&out);
    front_close(&st, req);
}

/* Payloads separated by FZ_SEP, each handed over as the gateway does; a refused payload is
 * dropped with what it wrote and ends the stream with an error (as ar_gw_stream_error does).
 * opt bit 0 cuts a stream that did not fail with an error instead of its end. */
static void stream(uint8_t opt, ar_span_t text)
{
    ar_resp_front_t st;
    json_t *req;
    front_open(&st, opt, &req);
    bool utf8 = fz_utf8_valid(text);
    ar_buf_t out;
    ar_buf_init(&out, 1u << 26);
    const char *p = text.ptr, *end = text.ptr + text.len;
    bool failed = false;
    while (!failed && text.len && p <= end) {
        const char *sep = memchr(p, FZ_SEP, (size_t)(end - p));
        ar_span_t payload = ar_span(p, (size_t)((sep ? sep : end) - p));
        size_t start = out.len;
        int rc = ar_resp_front_chunk(&st, payload, &out);
        if (rc && rc != AR_EUPSTREAM && rc != AR_ETOOBIG)
            fz_fail("ar_resp_front_chunk returned %s", ar_err_name(rc));
        if (rc) {
            out.len = start;
            failed = true;
        }
        if (!sep)
            break;
        p = sep + 1;
    }
    int rc;
    if (failed || (opt & 1))
        rc = ar_resp_front_error_event(&st, "server_error", "upstream protocol error", &out);
    else
        rc = ar_resp_front_end(&st, &out);
    if (rc)
        fz_fail("ending the stream returned %s", ar_err_name(rc));
    check_final(&st);
    /* response.failed is the terminal event whether it went out now or for an error chunk */
    bool ended_failed = strcmp(ar_json_str(ar_resp_front_final(&st), "status"), "failed") == 0;
    (void)check_events(ar_buf_span(&out), utf8, ended_failed);
    ar_buf_dispose(&out);
    front_close(&st, req);
}

/* An error before anything was sent (the upstream refused): type and message of any bytes. */
static void error_only(uint8_t opt, ar_span_t text)
{
    ar_resp_front_t st;
    json_t *req;
    front_open(&st, opt, &req);
    size_t cut = text.len < 40 ? text.len / 2 : 20;
    char *type = strndup(text.ptr ? text.ptr : "", cut);
    char *msg = strndup(text.ptr ? text.ptr + cut : "", text.len - cut);
    ar_buf_t out;
    ar_buf_init(&out, 1u << 26);
    int rc = ar_resp_front_error_event(&st, opt & 1 ? NULL : type, opt & 0x20 ? NULL : msg, &out);
    if (rc)
        fz_fail("ar_resp_front_error_event returned %s", ar_err_name(rc));
    /* a message that is not UTF-8 is replaced (jansson refuses it): nothing else may break */
    (void)check_events(ar_buf_span(&out), fz_utf8_valid(ar_span_cstr(msg)), true);
    check_final(&st);
    ar_buf_dispose(&out);
    free(type);
    free(msg);
    front_close(&st, req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    uint8_t op = fz_byte(&in);
    uint8_t opt = fz_byte(&in);
    ar_span_t rest = fz_rest(&in);
    if (!rest.ptr)
        rest = AR_LIT("");
    switch (op & 3) {
    case 0: request(opt, rest); break;
    case 1: whole(opt, rest); break;
    case 2: stream(opt, rest); break;
    default: error_only(opt, rest); break;
    }
    return 0;
}
