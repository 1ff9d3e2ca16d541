/*
 * fuzz_anthropic_front.c: libFuzzer target for the Anthropic Messages front
 * (fronts/anthropic_request.c and anthropic_answer.c, wired by gateway/messages.c): client
 * Anthropic bodies into OpenAI requests (then built for an anthropic and an openai credential,
 * as POST /v1/messages does), OpenAI chat completions and chunk streams into Anthropic messages
 * and events, and the Anthropic error shapes. Byte 0, bits 0-1: the request, a whole answer, a
 * stream, errors; byte 1: options.
 */
#include "fronts/anthropic.h"
#include "fuzz_common.h"

static fz_provs_t provs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_provs_load(&provs, "credentials:\n"
                          "  - name: claude\n"
                          "    type: anthropic\n"
                          "    api_key: sk-ant-fuzz-0123456789\n"
                          "  - name: oa\n"
                          "    type: openai\n"
                          "    api_key: sk-fuzz-openai-0123456789\n");
    return 0;
}

/* POST /v1/messages: the body as messages.c reads it, translated, then built upstream. */
static void request(uint8_t opt, ar_span_t body, bool utf8)
{
    json_t *anth = ar_json_parse(body, NULL, 0);
    if (!json_is_object(anth)) {
        json_decref(anth);
        return;
    }
    (void)ar_anth_count_tokens(anth);
    json_t *oai = NULL;
    char err[256] = "";
    int rc = ar_anth_front_request(anth, opt & 1, &oai, err, sizeof(err));
    json_decref(anth);
    if (rc == AR_EINVAL) {
        if (!err[0])
            fz_fail("front request refused without a message");
        return;
    }
    if (rc)
        fz_fail("ar_anth_front_request returned %s", ar_err_name(rc));
    ar_buf_t b;
    ar_buf_init(&b, 1u << 26);
    if (ar_json_dump(oai, &b) != 0)
        fz_fail("the translated request does not serialise");
    fz_check_json(ar_buf_span(&b), utf8, "translated request");
    ar_buf_dispose(&b);
    /* the gateway routes the tree like any chat request (ar_gw_llm_json) */
    for (size_t i = 0; i < provs.cnt; i++) {
        ar_pool_t *pool = ar_pool_create(4096);
        ar_call_t call;
        memset(&call, 0, sizeof(call));
        call.pool = pool;
        call.endpoint = AR_EP_CHAT;
        call.body = oai;
        call.model = fz_models[opt >> 1 & 3];
        call.public_model = "public";
        call.stream = json_is_true(json_object_get(oai, "stream"));
        call.client_wants_usage = call.stream;
        (void)fz_build(provs.p[i], &call, utf8, "upstream request from the front");
        ar_pool_destroy(pool);
    }
    json_decref(oai);
}

typedef struct front_run {
    ar_anth_front_t st;
    ar_buf_t out;
    bool failed;
} front_run_t;

static int on_chunk(void *ud, const ar_sse_event_t *ev)
{
    front_run_t *r = ud;
    size_t start = r->out.len;
    int rc = ar_anth_front_chunk(&r->st, ev->data, &r->out);
    if (rc && rc != AR_EUPSTREAM && rc != AR_ETOOBIG)
        fz_fail("ar_anth_front_chunk returned %s", ar_err_name(rc));
    if (rc) {
        r->out.len = start;
        r->failed = true;
    }
    return rc;
}

/* A stream of OpenAI chunks (any upstream's, relayed or translated) into Anthropic events;
 * a failed chunk ends it with the error event, as the gateway does. */
static void stream(uint8_t opt, uint8_t step, ar_span_t text, bool utf8)
{
    front_run_t r;
    ar_anth_front_init(&r.st, fz_models[opt >> 1 & 3]);
    ar_buf_init(&r.out, 1u << 26);
    r.failed = false;
    int rc = fz_sse_pieces(text, step, on_chunk, &r);
    if (rc == 0 && ar_anth_front_end(&r.st, &r.out) != 0)
        fz_fail("ar_anth_front_end failed");
    if (rc && ar_anth_front_error_event(&r.st, "api_error", "upstream protocol error", &r.out))
        fz_fail("ar_anth_front_error_event failed");
    fz_check_frames(ar_buf_span(&r.out), true, utf8, "translated events");
    ar_buf_dispose(&r.out);
}

/* Our errors in Anthropic's shape: any message, any type name. */
static void errors(uint8_t opt, ar_span_t text)
{
    size_t cut = text.len < 40 ? text.len / 2 : 20;
    char *type = strndup(text.ptr ? text.ptr : "", cut);
    char *msg = strndup(text.ptr ? text.ptr + cut : "", text.len - cut);
    bool utf8 = fz_utf8_valid(ar_span_cstr(msg));
    static const int statuses[] = {0, 400, 401, 402, 403, 404, 413, 429, 500, 502, 503, 504, 529};
    int status = statuses[opt % (sizeof(statuses) / sizeof(statuses[0]))];
    if (!ar_anth_error_type(status, type))
        fz_fail("no error type");
    ar_buf_t b;
    ar_buf_init(&b, 1u << 26);
    if (ar_anth_error_json(status, type, msg, &b) != 0)
        fz_fail("ar_anth_error_json failed");
    fz_check_json(ar_buf_span(&b), utf8, "error body");
    ar_buf_reset(&b);
    if (ar_anth_front_error_event(NULL, type, msg, &b) != 0)
        fz_fail("ar_anth_front_error_event failed");
    fz_check_frames(ar_buf_span(&b), true, utf8, "error event");
    ar_buf_dispose(&b);
    free(type);
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    uint8_t op = fz_byte(&in);
    uint8_t opt = fz_byte(&in);
    ar_span_t rest = fz_rest(&in);
    bool utf8 = fz_utf8_valid(rest);
    switch (op & 3) {
    case 0: request(opt, rest, utf8); break;
    case 1: {
        ar_buf_t out;
        ar_buf_init(&out, 1u << 26);
        int rc = ar_anth_front_whole(rest, &out);
        if (rc && rc != AR_EUPSTREAM && rc != AR_ETOOBIG)
            fz_fail("ar_anth_front_whole returned %s", ar_err_name(rc));
        if (rc == 0)
            fz_check_json(ar_buf_span(&out), utf8, "translated message");
        ar_buf_dispose(&out);
        break;
    }
    case 2: {
        uint8_t step = fz_byte(&in);
        rest = fz_rest(&in);
        stream(opt, step, rest, fz_utf8_valid(rest));
        break;
    }
    default: errors(opt, rest); break;
    }
    return 0;
}
