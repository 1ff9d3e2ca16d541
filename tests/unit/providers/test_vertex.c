/*
 * test_vertex.c: unit tests of the vertex-ai provider (providers/vertex.c): URLs for a
 * regional location, `global` and a base_url override (chat, stream, :predict); API-key
 * mode; the service-account JWT bearer grant (an RSA key pair is generated here with
 * OpenSSL, the JWT's signature is verified with the public key and its header and claims
 * are checked); token answers, their refresh times and expiry; requests without a token;
 * service accounts that must be refused at start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "provider_fixture.h"

#define TOKEN_URI "https://oauth2.googleapis.com/token"

/* PEM of a private key, malloc'd. */
static char *private_pem(EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)n + 1);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

/* A service-account key file's JSON for key (as Google issues them). */
static char *sa_json_for(EVP_PKEY *key, const char *email, const char *uri)
{
    char *pem = private_pem(key);
    json_t *sa =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "type", "service_account", "project_id",
                  "my-proj", "private_key_id", "0123456789abcdef", "private_key", pem,
                  "client_email", email, "client_id", "123456789012345678901", "auth_uri",
                  "https://accounts.google.com/o/oauth2/auth");
    if (uri)
        json_object_set_new(sa, "token_uri", json_string(uri));
    char *text = json_dumps(sa, JSON_COMPACT);
    char *copy = malloc(strlen(text) + 1);
    strcpy(copy, text);
    ar_test_json_free(text);
    json_decref(sa);
    free(pem);
    return copy;
}

/* The service account of the credentials regional (its key file) and base (inline JSON). */
typedef struct sa_file {
    EVP_PKEY *key;
    char *json; /* the service-account key file's JSON */
    char path[64];
} sa_file_t;

static void sa_file_free(void *arg)
{
    sa_file_t *sa = arg;
    unlink(sa->path);
    free(sa->json);
    EVP_PKEY_free(sa->key);
    free(sa);
}

/* prov: regional (file), global (api key), base (json), base2 (key); f->data: the sa_file_t,
 * released with the pool. */
static fx_t *fx_open(void)
{
    sa_file_t *sa = calloc(1, sizeof(*sa));
    sa->key = EVP_RSA_gen(2048);
    assert_non_null(sa->key);
    sa->json = sa_json_for(sa->key, "router@my-proj.iam.gserviceaccount.com", TOKEN_URI);
    snprintf(sa->path, sizeof(sa->path), "/tmp/airouter-sa-XXXXXX");
    int fd = mkstemp(sa->path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, sa->json, strlen(sa->json)), (ssize_t)strlen(sa->json));
    close(fd);
    /* credentials_json in a single-quoted YAML scalar: the JSON has no single quotes */
    size_t cap = strlen(sa->json) * 2 + 2048;
    char *yaml = malloc(cap);
    snprintf(yaml, cap,
             "credentials:\n"
             "  - name: regional\n"
             "    type: vertex-ai\n"
             "    project_id: my-proj\n"
             "    location: us-central1\n"
             "    credentials_file: %s\n"
             "  - name: global\n"
             "    type: vertex-ai\n"
             "    project_id: example.com:other-proj\n"
             "    location: global\n"
             "    api_key: AQ.test-vertex-key\n"
             "  - name: base\n"
             "    type: vertex-ai\n"
             "    project_id: p3\n"
             "    location: europe-west4\n"
             "    credentials_json: '%s'\n"
             "    base_url: http://127.0.0.1:9999/v1/\n"
             "    headers:\n"
             "      X-Goog-User-Project: billing\n"
             "  - name: base2\n"
             "    type: vertex-ai\n"
             "    project_id: p4\n"
             "    location: global\n"
             "    api_key: k4\n"
             "    base_url: http://127.0.0.1:9999\n",
             sa->path, sa->json);
    fx_t *f = fx_open_in("providers/vertex", yaml);
    free(yaml);
    f->data = sa;
    ar_pool_cleanup_add(f->pool, sa_file_free, sa);
    return f;
}

static int build(fx_t *f, size_t prov, ar_endpoint_t ep, bool stream, const char *model,
                 ar_http_req_t *req)
{
    json_t *body = ep == AR_EP_EMBEDDINGS ? json_pack("{s:s, s:s}", "model", "e", "input", "hello")
                                          : json_pack("{s:s, s:[{s:s, s:s}]}", "model", "m",
                                                      "messages", "role", "user", "content", "hi");
    ar_call_t call = fx_call(f->pool, ep, body, stream, model);
    memset(req, 0, sizeof(*req));
    int rc = ar_provider_build(f->prov[prov], &call, req);
    json_decref(body);
    return rc;
}

/* Gives provider prov a token as the token endpoint would. */
static void give_token(fx_t *f, size_t prov, const char *token, int64_t expires_in)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"access_token\":\"%s\",\"expires_in\":%lld,\"token_type\":\"Bearer\"}", token,
             (long long)expires_in);
    int64_t at = 0;
    assert_int_equal(
        ar_provider_token_response(f->prov[prov], 200, ar_span_cstr(body), ar_wall_ms(), &at), 0);
}

static void test_urls(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    give_token(f, 0, "ya29.regional", 3599);
    give_token(f, 2, "ya29.base", 3599);
    static const struct {
        size_t prov;
        ar_endpoint_t ep;
        bool stream;
        const char *url;
    } cases[] = {
        {0, AR_EP_CHAT, false,
         "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/"
         "us-central1/publishers/google/models/gemini-2.5-pro:generateContent"},
        {0, AR_EP_CHAT, true,
         "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/"
         "us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"},
        {0, AR_EP_EMBEDDINGS, false,
         "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/"
         "us-central1/publishers/google/models/gemini-2.5-pro:predict"},
        /* global: no location prefix on the host, the path keeps it */
        {1, AR_EP_CHAT, false,
         "https://aiplatform.googleapis.com/v1/projects/example.com:other-proj/locations/"
         "global/publishers/google/models/gemini-2.5-pro:generateContent"},
        {1, AR_EP_EMBEDDINGS, false,
         "https://aiplatform.googleapis.com/v1/projects/example.com:other-proj/locations/"
         "global/publishers/google/models/gemini-2.5-pro:predict"},
        /* base_url replaces the host only (a trailing /v1 is not doubled) */
        {2, AR_EP_CHAT, true,
         "http://127.0.0.1:9999/v1/projects/p3/locations/europe-west4/publishers/google/"
         "models/gemini-2.5-pro:streamGenerateContent?alt=sse"},
        {3, AR_EP_CHAT, false,
         "http://127.0.0.1:9999/v1/projects/p4/locations/global/publishers/google/models/"
         "gemini-2.5-pro:generateContent"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ar_http_req_t req;
        assert_int_equal(
            build(f, cases[i].prov, cases[i].ep, cases[i].stream, "gemini-2.5-pro", &req), 0);
        assert_string_equal(req.url, cases[i].url);
        assert_string_equal(req.method, "POST");
        assert_true(has_header(&req, "Content-Type: application/json"));
        assert_int_equal(headers_named(&req, "Accept: text/event-stream"), cases[i].stream ? 1 : 0);
    }
    ar_http_req_t req;
    assert_int_equal(build(f, 0, AR_EP_CHAT, false, "gemini-2.5-pro", &req), 0);
    assert_true(has_header(&req, "Authorization: Bearer ya29.regional"));
    assert_int_equal(headers_named(&req, "x-goog-api-key"), 0);
    assert_int_equal(build(f, 2, AR_EP_CHAT, false, "gemini-2.5-pro", &req), 0);
    assert_true(has_header(&req, "Authorization: Bearer ya29.base"));
    assert_true(has_header(&req, "X-Goog-User-Project: billing"));
    /* the model is one path segment, whatever it holds */
    assert_int_equal(build(f, 1, AR_EP_CHAT, false, "publishers/x", &req), 0);
    assert_non_null(strstr(req.url, "/models/publishers%2Fx:generateContent"));
    assert_int_equal(build(f, 0, AR_EP_COMPLETIONS, false, "m", &req), AR_ENOTFOUND);
    assert_true(ar_provider_can(f->prov[0], AR_PROV_TOKEN | AR_PROV_EMBED | AR_PROV_STREAM));
    fx_close(f);
}

static void test_api_key_mode(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_http_req_t req;
    assert_int_equal(build(f, 1, AR_EP_CHAT, false, "gemini-2.0-flash", &req), 0);
    assert_true(has_header(&req, "x-goog-api-key: AQ.test-vertex-key"));
    assert_int_equal(headers_named(&req, "Authorization"), 0);
    /* nothing to fetch: the token keeper skips it */
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_token_request(f->prov[1], f->pool, ar_wall_ms(), &req),
                     AR_ENOTFOUND);
    int64_t at = 0;
    assert_int_equal(
        ar_provider_token_response(f->prov[1], 200, AR_LIT("{\"access_token\":\"x\"}"), 0, &at),
        AR_ENOTFOUND);
    fx_close(f);
}

/* base64url without padding, decoded into a malloc'd NUL-terminated string. */
static char *b64url(const char *s, size_t n, size_t *len)
{
    ar_buf_t b;
    ar_buf_init(&b, 1 << 16);
    assert_int_equal(ar_base64_decode(ar_span(s, n), &b), 0);
    char *out = malloc(b.len + 1);
    memcpy(out, b.ptr, b.len);
    out[b.len] = '\0';
    *len = b.len;
    ar_buf_dispose(&b);
    return out;
}

static void test_jwt_grant(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    const sa_file_t *sa = f->data;
    int64_t now = 1767225600123; /* 2026-01-01T00:00:00.123Z */
    for (size_t prov = 0; prov < 3; prov += 2) {
        ar_http_req_t req;
        memset(&req, 0, sizeof(req));
        assert_int_equal(ar_provider_token_request(f->prov[prov], f->pool, now, &req), 0);
        assert_string_equal(req.method, "POST");
        assert_string_equal(req.url, TOKEN_URI);
        assert_true(has_header(&req, "Content-Type: application/x-www-form-urlencoded"));
        static const char prefix[] =
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
        assert_true(req.body.len > sizeof(prefix));
        assert_memory_equal(req.body.ptr, prefix, sizeof(prefix) - 1);
        const char *jwt = req.body.ptr + sizeof(prefix) - 1;
        size_t jlen = req.body.len - (sizeof(prefix) - 1);
        for (size_t i = 0; i < jlen; i++) {
            char c = jwt[i];
            bool url_safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
            assert_true(url_safe); /* no form encoding needed, no padding */
        }
        const char *d1 = memchr(jwt, '.', jlen);
        assert_non_null(d1);
        const char *d2 = memchr(d1 + 1, '.', jlen - (size_t)(d1 + 1 - jwt));
        assert_non_null(d2);
        size_t n;
        char *hdr = b64url(jwt, (size_t)(d1 - jwt), &n);
        json_t *want =
            json_loads("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"0123456789abcdef\"}", 0, NULL);
        assert_json_text(hdr, n, want);
        json_decref(want);
        char *claims = b64url(d1 + 1, (size_t)(d2 - d1 - 1), &n);
        want =
            json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", "router@my-proj.iam.gserviceaccount.com",
                      "scope", "https://www.googleapis.com/auth/cloud-platform", "aud", TOKEN_URI,
                      "iat", (json_int_t)1767225600, "exp", (json_int_t)(1767225600 + 3600));
        assert_json_text(claims, n, want);
        json_decref(want);
        char *sig = b64url(d2 + 1, jlen - (size_t)(d2 + 1 - jwt), &n);
        assert_int_equal(n, 256); /* RSA-2048 */
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, sa->key), 1);
        assert_int_equal(EVP_DigestVerify(md, (const unsigned char *)sig, n,
                                          (const unsigned char *)jwt, (size_t)(d2 - jwt)),
                         1);
        /* and a changed claim does not verify */
        char *tampered = malloc((size_t)(d2 - jwt));
        memcpy(tampered, jwt, (size_t)(d2 - jwt));
        tampered[(d1 - jwt) + 3] ^= 1;
        assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, sa->key), 1);
        assert_int_not_equal(EVP_DigestVerify(md, (const unsigned char *)sig, n,
                                              (const unsigned char *)tampered, (size_t)(d2 - jwt)),
                             1);
        EVP_MD_CTX_free(md);
        free(tampered);
        free(hdr);
        free(claims);
        free(sig);
    }
    fx_close(f);
}

static void test_token_response(void **state)
{
    (void)state;
    fx_t *f = fx_open();
    ar_provider_t *p = f->prov[0];
    ar_http_req_t req;
    /* no token yet: the attempt fails at once (the router moves on), nothing waits */
    assert_int_equal(build(f, 0, AR_EP_CHAT, false, "m", &req), AR_EUNAVAIL);
    assert_int_equal(build(f, 0, AR_EP_EMBEDDINGS, false, "m", &req), AR_EUNAVAIL);

    int64_t now = ar_wall_ms();
    int64_t at = 0;
    assert_int_equal(ar_provider_token_response(
                         p, 200,
                         AR_LIT("{\n  \"access_token\": \"ya29.c.b0AXv0zTN\",\n  \"expires_in\": "
                                "3599,\n  \"token_type\": \"Bearer\"\n}"),
                         now, &at),
                     0);
    assert_int_equal(at, now + 3599000 - 60000); /* 60 s before expiry */
    assert_int_equal(build(f, 0, AR_EP_CHAT, false, "m", &req), 0);
    assert_true(has_header(&req, "Authorization: Bearer ya29.c.b0AXv0zTN"));

    /* a short life: still 60 s early while that is in the future... */
    assert_int_equal(ar_provider_token_response(
                         p, 200, AR_LIT("{\"access_token\":\"t62\",\"expires_in\":62}"), now, &at),
                     0);
    assert_int_equal(at, now + 2000);
    /* ...otherwise at half the life, and never sooner than a second */
    assert_int_equal(ar_provider_token_response(
                         p, 200, AR_LIT("{\"access_token\":\"t30\",\"expires_in\":30}"), now, &at),
                     0);
    assert_int_equal(at, now + 15000);
    assert_int_equal(ar_provider_token_response(
                         p, 200, AR_LIT("{\"access_token\":\"t1\",\"expires_in\":1}"), now, &at),
                     0);
    assert_int_equal(at, now + 1000);
    /* no expires_in: an hour */
    assert_int_equal(
        ar_provider_token_response(p, 200, AR_LIT("{\"access_token\":\"t3600\"}"), now, &at), 0);
    assert_int_equal(at, now + 3540000);
    assert_int_equal(build(f, 0, AR_EP_CHAT, false, "m", &req), 0);
    assert_true(has_header(&req, "Authorization: Bearer t3600"));

    /* answers that are not tokens leave the current one in place */
    static const struct {
        int status;
        const char *body;
        int rc;
    } bad[] = {
        {400, "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}",
         AR_EAUTH},
        {401, "{\"error\":\"invalid_client\"}", AR_EAUTH},
        {500, "oops", AR_EUPSTREAM},
        {200, "not json", AR_EUPSTREAM},
        {200, "{\"token_type\":\"Bearer\"}", AR_EUPSTREAM},
        {200, "{\"access_token\":\"\"}", AR_EUPSTREAM},
        {200, "{\"access_token\":42}", AR_EUPSTREAM},
        {200, "{\"access_token\":\"a b\"}", AR_EUPSTREAM},
        {200, "{\"access_token\":\"a\\r\\nX-Evil: 1\"}", AR_EUPSTREAM},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        at = -1;
        assert_int_equal(
            ar_provider_token_response(p, bad[i].status, ar_span_cstr(bad[i].body), now, &at),
            bad[i].rc);
        assert_int_equal(at, -1);
    }
    assert_int_equal(build(f, 0, AR_EP_CHAT, false, "m", &req), 0);
    assert_true(has_header(&req, "Authorization: Bearer t3600"));

    /* a token that has lapsed is not used */
    assert_int_equal(
        ar_provider_token_response(p, 200, AR_LIT("{\"access_token\":\"old\",\"expires_in\":2}"),
                                   now - 5000, &at),
        0);
    assert_int_equal(build(f, 0, AR_EP_CHAT, false, "m", &req), AR_EUNAVAIL);
    fx_close(f);
}

/* Creates a vertex-ai provider from credentials_json; @return it or NULL with err set. */
static ar_provider_t *create_with(const char *json_text, char *err, size_t errlen,
                                  ar_config_t **cfg)
{
    size_t cap = strlen(json_text) * 2 + 1024;
    char *yaml = malloc(cap);
    snprintf(yaml, cap,
             "credentials:\n"
             "  - name: sa\n"
             "    type: vertex-ai\n"
             "    project_id: p\n"
             "    location: us-east5\n"
             "    credentials_json: '%s'\n",
             json_text);
    *cfg = fx_load(yaml);
    free(yaml);
    return ar_provider_create(&(*cfg)->credentials[0], err, errlen);
}

static void test_bad_service_accounts(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char *pem = private_pem(key);
    char *ec_pem = private_pem(ec);
    char *ok = sa_json_for(key, "a@b.iam.gserviceaccount.com", NULL);
    const struct {
        const char *what;
        json_t *sa;
    } cases[] = {
        {"client_email", json_pack("{s:s}", "private_key", pem)},
        {"client_email", json_pack("{s:s, s:s}", "client_email", "a@b", "private_key", "")},
        {"RSA key", json_pack("{s:s, s:s}", "client_email", "a@b", "private_key",
                              "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----")},
        {"RSA key", json_pack("{s:s, s:s}", "client_email", "a@b", "private_key", ec_pem)},
        {"not supported", json_pack("{s:s, s:s, s:s}", "type", "authorized_user", "client_id", "x",
                                    "refresh_token", "y")},
        {"token_uri", json_pack("{s:s, s:s, s:s}", "client_email", "a@b", "private_key", pem,
                                "token_uri", "file:///etc/passwd")},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = json_dumps(cases[i].sa, JSON_COMPACT);
        char err[256] = "";
        ar_config_t *cfg = NULL;
        ar_provider_t *p = create_with(t, err, sizeof(err), &cfg);
        if (p)
            fail_msg("case %zu was accepted", i);
        if (!strstr(err, cases[i].what))
            fail_msg("case %zu: '%s' does not mention '%s'", i, err, cases[i].what);
        assert_non_null(strstr(err, "credential sa"));
        ar_config_unref(cfg);
        ar_test_json_free(t);
        json_decref(cases[i].sa);
    }
    /* the default token_uri when the file has none */
    char err[256];
    ar_config_t *cfg = NULL;
    ar_provider_t *p = create_with(ok, err, sizeof(err), &cfg);
    assert_non_null(p);
    ar_pool_t *pool = ar_pool_create(1024);
    ar_http_req_t req;
    memset(&req, 0, sizeof(req));
    assert_int_equal(ar_provider_token_request(p, pool, ar_wall_ms(), &req), 0);
    assert_string_equal(req.url, TOKEN_URI);
    ar_pool_destroy(pool);
    ar_provider_destroy(p);
    ar_config_unref(cfg);
    free(ok);
    free(pem);
    free(ec_pem);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_api_key_mode),
        cmocka_unit_test(test_jwt_grant),
        cmocka_unit_test(test_token_response),
        cmocka_unit_test(test_bad_service_accounts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
