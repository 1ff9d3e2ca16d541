/*
 * fuzz_common.h: what the libFuzzer targets share (tests/fuzz/fuzz_*.c, built by
 * `make fuzz`): reading option bytes off the front of an input, the invariants every
 * translator output must keep (valid JSON, well-formed SSE frames, UTF-8 kept valid,
 * header lines without CR/LF) and a provider set loaded from YAML once per process.
 * A broken invariant prints what broke and aborts, which libFuzzer reports as a crash
 * and saves the input for. Header-only: each target is one translation unit.
 */
#ifndef AR_TESTS_FUZZ_COMMON_H
#define AR_TESTS_FUZZ_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/pool.h"
#include "core/sse.h"
#include "providers/provider.h"

/* ---- failing ---- */

/* Prints up to 400 bytes of s with non-printable bytes as \xNN, for failure messages. */
static inline void fz_dump(const char *label, ar_span_t s)
{
    fprintf(stderr, "%s (%zu bytes): ", label, s.len);
    for (size_t i = 0; i < s.len && i < 400; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c < 0x7f)
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fputs(s.len > 400 ? "...\n" : "\n", stderr);
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz invariant broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* ---- reading the input ---- */

typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in_t;

/** The next option byte (0 once the input is used up). */
static inline uint8_t fz_byte(fz_in_t *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

/** The rest of the input, as a span. */
static inline ar_span_t fz_rest(const fz_in_t *in)
{
    return ar_span((const char *)in->p, in->n);
}

/* ---- invariants ---- */

/** Whether s is valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). */
static inline bool fz_utf8_valid(ar_span_t s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0;
    while (i < s.len) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= s.len || (p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/**
 * Checks that text is one valid JSON value (ar_json_validate) and, when the input it was
 * made from was valid UTF-8, valid UTF-8 itself. what names the output in the report.
 */
static inline void fz_check_json(ar_span_t text, bool utf8_in, const char *what)
{
    char err[160];
    if (ar_json_validate(text, err, sizeof(err)) != 0) {
        fz_dump(what, text);
        fz_fail("%s is not valid JSON: %s", what, err);
    }
    if (utf8_in && !fz_utf8_valid(text)) {
        fz_dump(what, text);
        fz_fail("%s is not valid UTF-8 although its input was", what);
    }
}

/**
 * Checks a run of SSE frames as the translators write them: each frame is an optional
 * "event: NAME\n" line (only when events is true) and one "data: PAYLOAD\n" line, then a
 * blank line; PAYLOAD is "[DONE]" (only when events is false) or valid JSON.
 */
static inline void fz_check_frames(ar_span_t out, bool events, bool utf8_in, const char *what)
{
    if (!out.len)
        return;
    const char *p = out.ptr, *end = out.ptr + out.len;
    while (p < end) {
        if (events && (size_t)(end - p) >= 7 && memcmp(p, "event: ", 7) == 0) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl || nl == p + 7)
                goto bad;
            for (const char *c = p + 7; c < nl; c++) {
                if ((unsigned char)*c < 0x21 || *c == ':')
                    goto bad;
            }
            p = nl + 1;
        }
        if ((size_t)(end - p) < 6 || memcmp(p, "data: ", 6) != 0)
            goto bad;
        p += 6;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || nl + 1 >= end || nl[1] != '\n')
            goto bad;
        ar_span_t payload = ar_span(p, (size_t)(nl - p));
        if (memchr(payload.ptr, '\r', payload.len))
            goto bad;
        if (!(!events && ar_span_eq(payload, AR_LIT("[DONE]"))))
            fz_check_json(payload, utf8_in, what);
        p = nl + 2;
    }
    return;
bad:
    fz_dump(what, out);
    fz_fail("%s: malformed SSE frame at offset %zu", what, (size_t)(p - out.ptr));
}

/** Checks that an upstream request is one a transfer can send as it is. */
static inline void fz_check_http_req(const ar_http_req_t *r, bool utf8_in, const char *what)
{
    if (!r->method || !r->url || strncmp(r->url, "http", 4) != 0)
        fz_fail("%s: no method or URL", what);
    for (const unsigned char *c = (const unsigned char *)r->url; *c; c++) {
        if (*c <= 0x20 || *c >= 0x7f)
            fz_fail("%s: URL byte 0x%02x unescaped: %s", what, *c, r->url);
    }
    for (size_t i = 0; i < r->headers_cnt; i++) {
        if (strpbrk(r->headers[i], "\r\n"))
            fz_fail("%s: header line %zu holds CR or LF", what, i);
    }
    if (r->body.len)
        fz_check_json(r->body, utf8_in, what);
}

/* ---- providers ---- */

#define FZ_SERVER "server:\n  master_key: sk-fuzz-master-key-0123456789\n"

/**
 * A config loaded from yaml (FZ_SERVER in front) and a provider for every credential, in
 * the config's order. Made once per process (the targets keep it until exit).
 */
typedef struct fz_provs {
    ar_config_t *cfg;
    ar_provider_t *p[8];
    size_t cnt;
} fz_provs_t;

static inline void fz_provs_load(fz_provs_t *f, const char *yaml_body)
{
    size_t n = strlen(FZ_SERVER) + strlen(yaml_body) + 1;
    char *yaml = malloc(n);
    snprintf(yaml, n, "%s%s", FZ_SERVER, yaml_body);
    ar_strlist_t errs = {0};
    int rc = ar_config_load_string("fuzz.yaml", yaml, strlen(yaml), &f->cfg, &errs);
    for (size_t i = 0; i < errs.cnt; i++)
        fprintf(stderr, "config: %s\n", errs.items[i]);
    ar_strlist_dispose(&errs);
    free(yaml);
    if (rc)
        fz_fail("the target's config does not load");
    for (size_t i = 0; i < f->cfg->credentials_cnt && i < 8; i++) {
        char err[256];
        f->p[i] = ar_provider_create(&f->cfg->credentials[i], err, sizeof(err));
        if (!f->p[i])
            fz_fail("provider %zu: %s", i, err);
        f->cnt++;
    }
}

/* Whether the top-level object in raw has a key twice (compared as written). The gateway
 * answers 400 to such bodies before any provider sees them. */
static inline bool fz_duplicate_keys(ar_span_t raw)
{
    ar_jscan_iter_t it, it2;
    ar_span_t k, v, k2, v2;
    if (ar_jscan_object_begin(raw, &it) != 0)
        return false;
    for (size_t i = 0; ar_jscan_object_next(&it, &k, &v); i++) {
        (void)ar_jscan_object_begin(raw, &it2);
        for (size_t j = 0; j < i && ar_jscan_object_next(&it2, &k2, &v2); j++) {
            if (ar_span_eq(k, k2))
                return true;
        }
    }
    return false;
}

static inline void fz_decref(void *v)
{
    json_decref(v);
}

/**
 * Fills call for a client body the way the gateway does (gateway/llm.c): raw is validated
 * JSON whose top level is an object without duplicate keys; model, stream_options,
 * stream and the extension flag are read off it. With tree set, the body is loaded with
 * jansson first and the call carries the tree instead (the POST /v1/messages path); the
 * tree is released with pool.
 * @return false when the gateway would have refused the body before any provider saw it
 */
static inline bool fz_call_from_raw(ar_call_t *call, ar_pool_t *pool, ar_endpoint_t ep,
                                    ar_span_t raw, bool tree, const char *model)
{
    memset(call, 0, sizeof(*call));
    call->pool = pool;
    call->endpoint = ep;
    call->model = model;
    call->public_model = "public";
    if (ar_json_validate(raw, NULL, 0) != 0)
        return false;
    ar_jscan_iter_t it;
    if (ar_jscan_object_begin(raw, &it) != 0 || fz_duplicate_keys(raw))
        return false;
    ar_span_t k, v, stream = AR_SPAN_NULL, so = AR_SPAN_NULL, usage;
    while (ar_jscan_object_next(&it, &k, &v)) {
        if (ar_span_eq(k, AR_LIT("model"))) {
            call->raw_model = v;
        } else if (ar_span_eq(k, AR_LIT("stream"))) {
            stream = v;
        } else if (ar_span_eq(k, AR_LIT("stream_options"))) {
            so = v;
        } else {
            for (size_t i = 0; i < ar_request_extensions_cnt; i++)
                call->raw_has_extensions = call->raw_has_extensions ||
                                           ar_span_eq(k, ar_span_cstr(ar_request_extensions[i]));
        }
    }
    call->stream = ep != AR_EP_EMBEDDINGS && ar_span_eq(stream, AR_LIT("true"));
    call->client_wants_usage = so.len && ar_jscan_get(so, AR_LIT("include_usage"), &usage) == 0 &&
                               ar_span_eq(usage, AR_LIT("true"));
    if (!tree) {
        call->raw = raw;
        call->raw_stream_options = so;
        return true;
    }
    /* the front path: a tree (the gateway has parsed and stripped it), no raw text */
    call->raw_model = AR_SPAN_NULL;
    call->raw_has_extensions = false;
    json_t *body = ar_json_parse(raw, NULL, 0);
    if (!body)
        return false;
    for (size_t i = 0; i < ar_request_extensions_cnt; i++)
        json_object_del(body, ar_request_extensions[i]);
    ar_pool_cleanup_add(pool, fz_decref, body);
    call->body = body;
    return true;
}

/**
 * Builds call on p and checks the verdict: 0 with a sendable request, AR_EINVAL naming the
 * problem in call->error_detail (the client's 400), AR_EUNAVAIL (no token yet, also with
 * error_detail), AR_ENOTFOUND (endpoint not served) or AR_ETOOBIG; nothing else.
 */
static inline int fz_build(ar_provider_t *p, ar_call_t *call, bool utf8_in, const char *what)
{
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    int rc = ar_provider_build(p, call, &req);
    if (rc == 0) {
        fz_check_http_req(&req, utf8_in, what);
    } else if (rc == AR_EINVAL || rc == AR_EUNAVAIL) {
        if (!call->error_detail || !call->error_detail[0])
            fz_fail("%s: %s without error_detail", what, ar_err_name(rc));
    } else if (rc != AR_ENOTFOUND && rc != AR_ETOOBIG) {
        fz_dump("client body", call->raw);
        fz_fail("%s: build_request returned %s", what, ar_err_name(rc));
    }
    return rc;
}

/** parse_error never fails and always names the problem. */
static inline void fz_parse_error(ar_provider_t *p, ar_call_t *call, int status, ar_span_t body)
{
    ar_upstream_err_t e;
    memset(&e, 0x5a, sizeof(e));
    ar_provider_parse_error(p, call, status, body, &e);
    if (e.status != status || !e.message)
        fz_fail("parse_error: status %d message %p", e.status, (const void *)e.message);
    (void)strlen(e.message);
    if (e.type)
        (void)strlen(e.type);
    if (e.code)
        (void)strlen(e.code);
}

/* ---- streams ---- */

typedef struct fz_stream {
    ar_provider_t *p;
    ar_call_t *call;
    ar_buf_t out;
    bool utf8_in;
    bool failed;
    const char *what;
} fz_stream_t;

static inline int fz_stream_event(void *ud, const ar_sse_event_t *ev)
{
    fz_stream_t *s = ud;
    size_t start = s->out.len;
    int rc = ar_provider_parse_event(s->p, s->call, ev, &s->out);
    if (rc < 0 && rc != AR_EUPSTREAM && rc != AR_ETOOBIG)
        fz_fail("%s: parse_event returned %s", s->what, ar_err_name(rc));
    if (rc == AR_PROV_PASS || rc < 0) {
        /* passed through as is, or failed: nothing of ours may have been added */
        if (rc < 0)
            s->out.len = start;
        s->failed = rc < 0;
        return rc < 0 ? rc : 0;
    }
    if (rc != 0)
        fz_fail("%s: parse_event returned %d", s->what, rc);
    return 0;
}

/**
 * Parses text as an SSE stream arriving in pieces whose sizes follow from step (0: all at
 * once), calling cb for each event, then ends it. @return the first error, or 0.
 */
static inline int fz_sse_pieces(ar_span_t text, uint8_t step, ar_sse_event_cb cb, void *ud)
{
    ar_sse_parser_t sp;
    ar_sse_parser_init(&sp, 16u << 20);
    size_t at = 0;
    int rc = 0;
    while (rc == 0 && at < text.len) {
        size_t n = step ? (size_t)step : text.len - at;
        if (n > text.len - at)
            n = text.len - at;
        rc = ar_sse_feed(&sp, ar_span(text.ptr + at, n), cb, ud);
        at += n;
        step = (uint8_t)(step * 31u + 7u);
    }
    if (rc == 0)
        rc = ar_sse_finish(&sp, cb, ud);
    ar_sse_parser_dispose(&sp);
    return rc;
}

/**
 * Feeds text to p on call as an upstream stream would arrive: in pieces whose sizes follow
 * from step (0: whole), then ended (end_stream when no event failed). Every frame the
 * provider writes is checked.
 */
static inline void fz_stream_run(ar_provider_t *p, ar_call_t *call, uint8_t step, ar_span_t text,
                                 const char *what)
{
    fz_stream_t s = {p, call, {0}, fz_utf8_valid(text), false, what};
    ar_buf_init(&s.out, 1u << 26);
    int rc = fz_sse_pieces(text, step, fz_stream_event, &s);
    if (rc == 0 && !s.failed) {
        int erc = ar_provider_end_stream(p, call, &s.out);
        if (erc && erc != AR_ETOOBIG)
            fz_fail("%s: end_stream returned %s", what, ar_err_name(erc));
    }
    fz_check_frames(ar_buf_span(&s.out), false, s.utf8_in, what);
    ar_buf_dispose(&s.out);
}

/**
 * A Vertex service-account key file's JSON with a fresh 2048-bit RSA key (malloc'd, free
 * with free()). It holds no single quote, so it fits a single-quoted YAML scalar.
 */
static inline char *fz_service_account_json(void)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    BIO *b = BIO_new(BIO_s_mem());
    if (!key || !b || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1)
        fz_fail("cannot make an RSA key");
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    json_t *sa =
        json_pack("{s:s, s:s, s:s, s:s%, s:s, s:s}", "type", "service_account", "project_id", "p",
                  "private_key_id", "kid-1", "private_key", pem, (size_t)n, "client_email",
                  "fuzz@p.iam.gserviceaccount.com", "token_uri", "http://127.0.0.1:9/token");
    char *text = json_dumps(sa, JSON_COMPACT);
    char *copy = strdup(text);
    free(text);
    json_decref(sa);
    BIO_free(b);
    EVP_PKEY_free(key);
    return copy;
}

/* ---- one input for a provider target ---- */

/* Upstream model names as deployments may spell them (config text: any bytes but NUL). */
static const char *const fz_models[] = {"m", "gpt-4o-mini", "dep/x y?z#w&v=1", "q\"\\\x01\xc3\xa9"};

/* What the parse modes pretend the client asked (ar_call_json reads it). */
static const char fz_chat_body[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                                   "\"content\":\"hi\"}],\"encoding_format\":\"base64\"}";

/**
 * Runs one fuzz input against the providers in f. Byte 0 picks the hook (bits 0-1: build,
 * whole answer, stream, error body + model list) and the provider (bits 2-4); byte 1 the
 * endpoint (bits 0-1), the model (bits 2-3), the tree path (bit 4), whether the client
 * wants stream usage (bit 5) and the deployment's max_output_tokens (bits 6-7). The rest is
 * the client body, the upstream answer, the upstream stream or the error body.
 */
static inline void fz_provider_input(const fz_provs_t *f, fz_in_t *in)
{
    uint8_t op = fz_byte(in);
    uint8_t opt = fz_byte(in);
    ar_provider_t *p = f->p[(op >> 2 & 7) % f->cnt];
    ar_endpoint_t ep = (ar_endpoint_t)((opt & 3) % AR_EP_CNT);
    const char *model = fz_models[opt >> 2 & 3];
    static const int64_t max_out[] = {0, 1, 8192, INT64_MAX};
    ar_span_t rest = fz_rest(in);
    bool utf8 = fz_utf8_valid(rest);
    ar_pool_t *pool = ar_pool_create(4096);
    ar_call_t call;
    if ((op & 3) == 0) {
        if (fz_call_from_raw(&call, pool, ep, rest, opt & 0x10, model)) {
            call.max_output_tokens = max_out[opt >> 6];
            (void)fz_build(p, &call, utf8, "upstream request");
        }
        ar_pool_destroy(pool);
        return;
    }
    if (!fz_call_from_raw(&call, pool, ep, AR_LIT(fz_chat_body), false, model))
        fz_fail("the parse modes' request does not load");
    call.stream = (op & 3) == 2 && ep != AR_EP_EMBEDDINGS;
    call.client_wants_usage = call.stream && (opt & 0x20);
    if ((op & 3) == 1) {
        ar_buf_t out;
        ar_buf_init(&out, 1u << 26);
        int rc = ar_provider_parse_response(p, &call, rest, &out);
        if (rc && rc != AR_EUPSTREAM && rc != AR_ETOOBIG)
            fz_fail("parse_response returned %s", ar_err_name(rc));
        if (rc == 0 && out.len)
            fz_check_json(ar_buf_span(&out), utf8, "translated answer");
        ar_buf_dispose(&out);
    } else if ((op & 3) == 2) {
        uint8_t step = fz_byte(in);
        fz_stream_run(p, &call, step, fz_rest(in), "translated stream");
    } else {
        fz_parse_error(p, &call, 400 + (opt & 0x7f) + (opt & 0x80 ? 100 : 0), rest);
        ar_strlist_t ids = {0};
        (void)ar_provider_parse_models(p, rest, &ids);
        ar_strlist_dispose(&ids);
    }
    ar_pool_destroy(pool);
}

#endif
