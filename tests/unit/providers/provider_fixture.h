/*
 * provider_fixture.h: what the provider tests share: a config loaded from YAML text with a
 * provider for each credential and a pool, calls, header checks, golden files (a fixture in,
 * its .expected.json out) and SSE transcripts fed in two pieces split at any byte. Include it
 * after <cmocka.h>. Fixture names are relative to tests/fixtures/ (testutil.h). Everything is
 * made and released inside each test: cmocka counts blocks still allocated when a test
 * function returns as leaks, so a fixture kept until teardown would be one.
 */
#ifndef AR_TESTS_PROVIDER_FIXTURE_H
#define AR_TESTS_PROVIDER_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "core/sse.h"
#include "providers/provider.h"
#include "testutil.h"

#define FX_SERVER "server:\n  master_key: sk-test-master-key-0123456789\n"
#define FX_PROV_MAX 4

typedef struct fx {
    const char *dir; /* the fixture folder, e.g. "providers/openai" */
    ar_config_t *cfg;
    ar_provider_t *prov[FX_PROV_MAX]; /* one per credential, in the config's order */
    size_t prov_cnt;
    ar_pool_t *pool;
    ar_inproc_answer_t ans; /* where an in-process provider answers; fx_close frees its body */
    void *data;             /* the test file's own state, released by a cleanup on pool */
} fx_t;

/* Loads yaml_body with FX_SERVER in front; any config error fails the test. */
static inline ar_config_t *fx_load(const char *yaml_body)
{
    size_t n = strlen(FX_SERVER) + strlen(yaml_body) + 1;
    char *yaml = malloc(n);
    snprintf(yaml, n, "%s%s", FX_SERVER, yaml_body);
    ar_config_t *cfg = ar_test_config(yaml);
    free(yaml);
    return cfg;
}

/*
 * Loads yaml_body (FX_SERVER in front) and creates a provider for every credential, and a
 * pool. Release it all with fx_close.
 * @param dir the fixture folder that fx_golden reads, e.g. "providers/openai"
 */
static inline fx_t *fx_open_in(const char *dir, const char *yaml_body)
{
    fx_t *f = calloc(1, sizeof(*f));
    f->dir = dir;
    f->cfg = fx_load(yaml_body);
    assert_true(f->cfg->credentials_cnt <= FX_PROV_MAX);
    for (size_t i = 0; i < f->cfg->credentials_cnt; i++) {
        char err[256];
        f->prov[i] = ar_provider_create(&f->cfg->credentials[i], err, sizeof(err));
        if (!f->prov[i])
            fail_msg("provider %zu: %s", i, err);
        f->prov_cnt++;
    }
    f->pool = ar_pool_create(4096);
    return f;
}

static inline void fx_close(fx_t *f)
{
    ar_buf_dispose(&f->ans.body);
    ar_pool_destroy(f->pool);
    for (size_t i = 0; i < f->prov_cnt; i++)
        ar_provider_destroy(f->prov[i]);
    ar_config_unref(f->cfg);
    free(f);
}

/* A call on the tree path: body (borrowed, may be NULL) is the client's request, and its
 * "model" the public model name. */
static inline ar_call_t fx_call(ar_pool_t *pool, ar_endpoint_t ep, json_t *body, bool stream,
                                const char *model)
{
    ar_call_t c;
    memset(&c, 0, sizeof(c));
    c.pool = pool;
    c.endpoint = ep;
    c.body = body;
    c.stream = stream;
    c.model = model;
    c.public_model = json_string_value(json_object_get(body, "model"));
    return c;
}

/* A call on the raw path, set up from the client body the way the gateway scans it
 * (gateway/llm.c): model, stream, stream_options and the extension flag read off raw. */
static inline ar_call_t fx_raw_call(ar_pool_t *pool, ar_endpoint_t ep, ar_span_t raw,
                                    const char *model)
{
    ar_call_t c = fx_call(pool, ep, NULL, false, model);
    c.raw = raw;
    c.public_model = "public";
    ar_jscan_iter_t it;
    ar_span_t k, v, usage;
    assert_int_equal(ar_jscan_object_begin(raw, &it), 0);
    while (ar_jscan_object_next(&it, &k, &v)) {
        if (ar_span_eq(k, AR_LIT("model"))) {
            c.raw_model = v;
        } else if (ar_span_eq(k, AR_LIT("stream"))) {
            c.stream = ep != AR_EP_EMBEDDINGS && ar_span_eq(v, AR_LIT("true"));
        } else if (ar_span_eq(k, AR_LIT("stream_options"))) {
            c.raw_stream_options = v;
            c.client_wants_usage = ar_jscan_get(v, AR_LIT("include_usage"), &usage) == 0 &&
                                   ar_span_eq(usage, AR_LIT("true"));
        } else {
            for (size_t i = 0; i < ar_request_extensions_cnt; i++)
                c.raw_has_extensions =
                    c.raw_has_extensions || ar_span_eq(k, ar_span_cstr(ar_request_extensions[i]));
        }
    }
    return c;
}

/*
 * Bodies the gateway's validator passes but jansson cannot load (a number out of range, a
 * lone surrogate, invalid UTF-8): building them on p must be the client's 400 (AR_EINVAL),
 * with call->error_detail naming the problem as `want` says, never an upstream failure.
 * fmt is the body with one %s where the bad value goes ("{...,\"max_tokens\":%s}").
 */
static inline void fx_assert_untranslatable(fx_t *f, ar_provider_t *p, ar_endpoint_t ep,
                                            const char *fmt)
{
    static const struct {
        const char *value;
        const char *want;
    } bad[] = {
        {"1e400", "request body cannot be translated: real number overflow near '1e400'"},
        {"\"\\ud800\"", "request body cannot be translated: invalid Unicode '\\uD800'"},
        {"\"caf\xe9\"", "request body cannot be translated: "},
        {"123456789012345678901234567890", "request body cannot be translated: too big integer"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[1024];
        snprintf(body, sizeof(body), fmt, bad[i].value);
        ar_call_t call = fx_raw_call(f->pool, ep, ar_span_cstr(body), "up-model");
        ar_http_req_t req;
        memset(&req, 0, sizeof(req));
        int rc = ar_provider_build(p, &call, &req);
        if (rc != AR_EINVAL)
            fail_msg("%s: build_request returned %s, want AR_EINVAL", body, ar_err_name(rc));
        if (!call.error_detail || strncmp(call.error_detail, bad[i].want, strlen(bad[i].want)))
            fail_msg("%s: error_detail '%s', want '%s...'", body,
                     call.error_detail ? call.error_detail : "(null)", bad[i].want);
        for (const char *c = call.error_detail; *c; c++) {
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                fail_msg("%s: error_detail holds byte 0x%02x", body, (unsigned char)*c);
        }
    }
}

/* Whether r carries exactly the header line `line` ("Name: value"). */
static inline bool has_header(const ar_http_req_t *r, const char *line)
{
    for (size_t i = 0; i < r->headers_cnt; i++) {
        if (strcmp(r->headers[i], line) == 0)
            return true;
    }
    return false;
}

/* How many header lines of r start with prefix, ignoring case. */
static inline size_t headers_named(const ar_http_req_t *r, const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < r->headers_cnt; i++)
        n += strncasecmp(r->headers[i], prefix, strlen(prefix)) == 0;
    return n;
}

/* Builds call on p: it must succeed, as a POST with a body. what names it in a failure. */
static inline ar_http_req_t fx_build_as(ar_provider_t *p, ar_call_t *call, const char *what)
{
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    int rc = ar_provider_build(p, call, &req);
    if (rc)
        fail_msg("%s: build_request failed: %s", what, ar_err_name(rc));
    assert_string_equal(req.method, "POST");
    assert_non_null(req.body.ptr);
    return req;
}

static inline ar_http_req_t fx_build(ar_provider_t *p, ar_call_t *call)
{
    return fx_build_as(p, call, "request");
}

/* The fixture <dir>/<name><ext>, whole (ar_test_fixture; free() it). */
static inline char *fx_text(const char *dir, const char *name, const char *ext, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s%s", dir, name, ext);
    return ar_test_fixture(path, len);
}

/* The fixture <dir>/<name><ext> as JSON (ar_test_fixture_json; json_decref it). */
static inline json_t *fx_json(const char *dir, const char *name, const char *ext)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s%s", dir, name, ext);
    return ar_test_fixture_json(path);
}

/* A golden pair: an input fixture as bytes and the JSON it must turn into. */
typedef struct fx_gold {
    char *text; /* <dir>/<name><ext> */
    size_t len;
    json_t *want; /* <dir>/<name>.expected.json */
} fx_gold_t;

static inline fx_gold_t fx_gold_open(const char *dir, const char *name, const char *ext)
{
    fx_gold_t g;
    g.text = fx_text(dir, name, ext, &g.len);
    g.want = fx_json(dir, name, ".expected.json");
    return g;
}

static inline void fx_gold_close(fx_gold_t *g)
{
    json_decref(g->want);
    free(g->text);
}

/*
 * Golden request: fixture <dir>/<in>.json becomes the body of call, which is built on p; the
 * body sent must equal <dir>/<in>.expected.json as JSON. The call streams when call.stream is
 * set or, as the gateway reads it, when the fixture says "stream": true.
 * @return the request (its strings are in the call's pool)
 */
static inline ar_http_req_t fx_golden_call(fx_t *f, ar_provider_t *p, ar_call_t call,
                                           const char *in)
{
    json_t *body = fx_json(f->dir, in, ".json");
    json_t *want = fx_json(f->dir, in, ".expected.json");
    call.body = body;
    call.stream = call.stream || json_is_true(json_object_get(body, "stream"));
    if (!call.public_model)
        call.public_model = json_string_value(json_object_get(body, "model"));
    ar_http_req_t req = fx_build_as(p, &call, in);
    assert_json_text(req.body.ptr, req.body.len, want);
    json_decref(body);
    json_decref(want);
    return req;
}

/* fx_golden_call for a call on ep to the upstream model. */
static inline ar_http_req_t fx_golden(fx_t *f, ar_provider_t *p, ar_endpoint_t ep, const char *in,
                                      bool stream, const char *model)
{
    return fx_golden_call(f, p, fx_call(f->pool, ep, NULL, stream, model), in);
}

/* Normalises an error answer (status, body) with the first provider; e is poisoned first,
 * so every field must be written. */
static inline void fx_parse_error(fx_t *f, int status, ar_span_t body, ar_upstream_err_t *e)
{
    json_t *req = json_pack("{s:s}", "model", "m");
    ar_call_t call = fx_call(f->pool, AR_EP_CHAT, req, false, "m");
    memset(e, 0x5a, sizeof(*e));
    ar_provider_parse_error(f->prov[0], &call, status, body, e);
    json_decref(req);
}

/* fx_parse_error on the error answer in fixture <dir>/<name>.json. */
static inline void fx_parse_error_fixture(fx_t *f, int status, const char *name,
                                          ar_upstream_err_t *e)
{
    size_t len;
    char *text = fx_text(f->dir, name, ".json", &len);
    fx_parse_error(f, status, ar_span(text, len), e);
    free(text);
}

/* Parses the whole answer in fixture <dir>/<name>.json with the first provider on call; it
 * must succeed. out (initialised by the caller) receives the translation, if any. */
static inline void fx_parse_response(fx_t *f, ar_call_t *call, const char *name, ar_buf_t *out)
{
    size_t len;
    char *text = fx_text(f->dir, name, ".json", &len);
    int rc = ar_provider_parse_response(f->prov[0], call, ar_span(text, len), out);
    if (rc)
        fail_msg("%s: %s", name, ar_err_name(rc));
    free(text);
}

/* Hands p one stream event whose data (and raw bytes) are `data`. @return its verdict. */
static inline int fx_event(ar_provider_t *p, ar_call_t *call, const char *data, ar_buf_t *out)
{
    ar_sse_event_t ev = {AR_SPAN_NULL, ar_span_cstr(data), AR_SPAN_NULL, ar_span_cstr(data)};
    return ar_provider_parse_event(p, call, &ev, out);
}

/*
 * Feeds an SSE transcript to cb the way a socket may deliver it: in two pieces split at byte
 * `split` (from in.len on: in one piece), then ends it.
 * @return 0, or the first error of cb or of the parser
 */
static inline int fx_sse_feed(ar_span_t in, size_t split, ar_sse_event_cb cb, void *ud)
{
    if (split > in.len)
        split = in.len;
    ar_sse_parser_t p;
    ar_sse_parser_init(&p, 1 << 20);
    int rc = ar_sse_feed(&p, ar_span(in.ptr, split), cb, ud);
    if (rc == 0)
        rc = ar_sse_feed(&p, ar_span(in.ptr + split, in.len - split), cb, ud);
    if (rc == 0)
        rc = ar_sse_finish(&p, cb, ud);
    ar_sse_parser_dispose(&p);
    return rc;
}

/* Fails unless the output of the run split at `split` is, byte for byte, the whole run's. */
static inline void fx_assert_split_same(const char *name, size_t split, ar_span_t got,
                                        ar_span_t whole)
{
    if (got.len != whole.len || memcmp(got.ptr, whole.ptr, got.len) != 0)
        fail_msg("%s split at %zu: output differs", name, split);
}

/* The verdicts of one run of an OpenAI-wire transcript through parse_event, per event. */
typedef struct fx_verdicts {
    ar_provider_t *prov;
    ar_call_t *call;
    int verdict[32];
    size_t out_len[32];   /* bytes of translated output (0: nothing, or passed as is) */
    bool done_before[32]; /* call->stream_done when the event came */
    size_t cnt;
} fx_verdicts_t;

static inline int fx_verdict_event(void *ud, const ar_sse_event_t *ev)
{
    fx_verdicts_t *v = ud;
    ar_buf_t out;
    ar_buf_init(&out, 1 << 20);
    assert_true(v->cnt < 32);
    v->done_before[v->cnt] = v->call->stream_done;
    int rc = ar_provider_parse_event(v->prov, v->call, ev, &out);
    v->verdict[v->cnt] = rc;
    v->out_len[v->cnt] = out.len;
    v->cnt++;
    ar_buf_dispose(&out);
    return rc < 0 ? rc : 0;
}

/* Feeds in, split at `split` (fx_sse_feed), to p on call and records every verdict in v. */
static inline void fx_verdicts(ar_provider_t *p, ar_call_t *call, ar_span_t in, size_t split,
                               fx_verdicts_t *v)
{
    memset(v, 0, sizeof(*v));
    v->prov = p;
    v->call = call;
    assert_int_equal(fx_sse_feed(in, split, fx_verdict_event, v), 0);
}

/* A run of a transcript through a provider that translates every event (never
 * AR_PROV_PASS): all the output, in order. */
typedef struct fx_xlate {
    ar_provider_t *prov;
    ar_call_t *call;
    ar_buf_t out;
} fx_xlate_t;

static inline int fx_xlate_event(void *ud, const ar_sse_event_t *ev)
{
    fx_xlate_t *x = ud;
    int rc = ar_provider_parse_event(x->prov, x->call, ev, &x->out);
    assert_true(rc <= 0); /* never AR_PROV_PASS: every event is translated */
    return rc;
}

/*
 * Feeds in, split at `split` (fx_sse_feed), to p on call, then ends the stream
 * (ar_provider_end_stream). out is initialised here and receives all the output (dispose it).
 * @return 0, or the first error
 */
static inline int fx_translate(ar_provider_t *p, ar_call_t *call, ar_span_t in, size_t split,
                               ar_buf_t *out)
{
    fx_xlate_t x = {p, call, {0}};
    ar_buf_init(&x.out, 1 << 22);
    int rc = fx_sse_feed(in, split, fx_xlate_event, &x);
    if (rc == 0)
        rc = ar_provider_end_stream(p, call, &x.out);
    *out = x.out;
    return rc;
}

#endif
