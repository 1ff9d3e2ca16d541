/*
 * vertex.c: the `vertex-ai` provider, Gemini on Google Cloud Vertex AI. URLs are
 * {host}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:M with
 * host https://{location}-aiplatform.googleapis.com (https://aiplatform.googleapis.com for
 * location `global`) unless base_url overrides it; M is generateContent,
 * streamGenerateContent?alt=sse, or predict for embeddings. The body format is
 * gemini_xlate.h's (gemini_request.c, gemini_answer.c, gemini_stream.c).
 *
 * Auth is an API key (x-goog-api-key) or a service account: the gateway's token keeper
 * (gateway/tokens.c) calls token_request / token_response on the main thread to exchange
 * an RS256-signed JWT for an OAuth access token at the account's token_uri, and workers
 * read the current token under a mutex in build_request. Without a valid token an attempt
 * fails with AR_EAUTH and the router moves on; nothing here ever waits for a token. The
 * service-account file is read once, in create (main thread, at start or reload).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/mem.h"
#include "providers/gemini_xlate.h"

#define TOKEN_LIFE_S 3600
#define REFRESH_EARLY_MS 60000
#define DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define SCOPE "https://www.googleapis.com/auth/cloud-platform"

typedef struct vertex {
    ar_provider_t super;
    char *models_url; /* "{host}/v1/projects/P/locations/L/publishers/google/models/" */
    char *key_line;   /* api_key mode: "x-goog-api-key: KEY"; NULL with a service account */
    ar_header_lines_t extra;
    /* service account; all NULL in api_key mode */
    char *client_email;
    char *private_key;
    char *private_key_id;
    char *token_uri;
    /* the current access token, written by the main thread, read by every worker */
    pthread_mutex_t mu;
    char *auth_line;         /* "Authorization: Bearer TOKEN", or NULL */
    int64_t expires_wall_ms; /* when auth_line stops being valid */
} vertex_t;

static void destroy(ar_provider_t *p)
{
    vertex_t *v = (vertex_t *)p;
    ar_free(v->models_url);
    ar_free(v->key_line);
    ar_header_lines_dispose(&v->extra);
    ar_free(v->client_email);
    ar_free(v->private_key);
    ar_free(v->private_key_id);
    ar_free(v->token_uri);
    ar_free(v->auth_line);
    pthread_mutex_destroy(&v->mu);
    ar_free(v);
}

/* Project ids may be domain-scoped ("example.com:proj"); nothing may change the path. */
static bool path_safe(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

/* Takes client_email, private_key, private_key_id and token_uri from the key file's JSON. */
static int load_service_account(vertex_t *v, const char *text, const ar_cred_conf_t *conf,
                                char *err, size_t errlen)
{
    char jerr[160] = "";
    json_t *sa = ar_json_parse(ar_span_cstr(text), jerr, sizeof(jerr));
    int rc = AR_EINVAL;
    if (!json_is_object(sa)) {
        snprintf(err, errlen, "credential %s: the service account is not a JSON object%s%s",
                 conf->name, jerr[0] ? ": " : "", jerr);
        goto out;
    }
    const char *type = ar_json_str(sa, "type");
    if (type && strcmp(type, "service_account") != 0) {
        snprintf(err, errlen,
                 "credential %s: credentials of type '%s' are not supported (a service account "
                 "key is needed)",
                 conf->name, type);
        goto out;
    }
    const char *email = ar_json_str(sa, "client_email");
    const char *key = ar_json_str(sa, "private_key");
    if (!email || !*email || !key || !*key) {
        snprintf(err, errlen,
                 "credential %s: the service account needs client_email and "
                 "private_key",
                 conf->name);
        goto out;
    }
    if (ar_rsa_key_check(ar_span_cstr(key)) != 0) {
        snprintf(err, errlen,
                 "credential %s: the service account's private_key is not a "
                 "readable RSA key",
                 conf->name);
        goto out;
    }
    const char *uri = ar_json_str(sa, "token_uri");
    if (uri && strncmp(uri, "https://", 8) != 0 && strncmp(uri, "http://", 7) != 0) {
        snprintf(err, errlen, "credential %s: token_uri must be an http(s) URL", conf->name);
        goto out;
    }
    v->client_email = ar_xstrdup(email);
    v->private_key = ar_xstrdup(key);
    v->private_key_id = ar_xstrdup(ar_json_str(sa, "private_key_id"));
    v->token_uri = ar_xstrdup(uri ? uri : DEFAULT_TOKEN_URI);
    rc = 0;
out:
    json_decref(sa);
    return rc;
}

static ar_provider_t *create(const ar_cred_conf_t *conf, char *err, size_t errlen)
{
    if (!path_safe(conf->project_id) || !path_safe(conf->location)) {
        snprintf(err, errlen, "credential %s: project_id and location must be plain names",
                 conf->name);
        return NULL;
    }
    vertex_t *v = ar_xcalloc(1, sizeof(*v));
    pthread_mutex_init(&v->mu, NULL);
    ar_header_lines_init(&v->extra, conf);
    char host[512];
    if (conf->base_url) {
        /* tests and private endpoints: the host changes, the path stays */
        size_t bl = strlen(conf->base_url);
        bool v1 = bl >= 3 && strcmp(conf->base_url + bl - 3, "/v1") == 0;
        snprintf(host, sizeof(host), "%.*s", (int)(v1 ? bl - 3 : bl), conf->base_url);
    } else if (strcmp(conf->location, "global") == 0) {
        snprintf(host, sizeof(host), "https://aiplatform.googleapis.com");
    } else {
        snprintf(host, sizeof(host), "https://%s-aiplatform.googleapis.com", conf->location);
    }
    size_t n = strlen(host) + strlen(conf->project_id) + strlen(conf->location) + 64;
    v->models_url = ar_xmalloc(n);
    snprintf(v->models_url, n, "%s/v1/projects/%s/locations/%s/publishers/google/models/", host,
             conf->project_id, conf->location);
    if (conf->api_key) {
        n = strlen(conf->api_key) + 32;
        v->key_line = ar_xmalloc(n);
        snprintf(v->key_line, n, "x-goog-api-key: %s", conf->api_key);
        return &v->super;
    }
    char *text = NULL;
    /* a credentials_file was read into credentials_json by the config loader */
    if (conf->credentials_json)
        text = ar_xstrdup(conf->credentials_json);
    else
        snprintf(err, errlen,
                 "credential %s: type vertex-ai needs credentials_file, "
                 "credentials_json or api_key",
                 conf->name);
    int rc = text ? load_service_account(v, text, conf, err, errlen) : AR_EINVAL;
    ar_free(text);
    if (rc) {
        destroy(&v->super);
        return NULL;
    }
    return &v->super;
}

/* The current token's header line, copied into pool. @return NULL when there is none. */
static const char *current_auth(vertex_t *v, ar_pool_t *pool)
{
    const char *line = NULL;
    int64_t now = ar_wall_ms();
    pthread_mutex_lock(&v->mu);
    if (v->auth_line && now < v->expires_wall_ms)
        line = ar_pool_strndup(pool, v->auth_line, strlen(v->auth_line));
    pthread_mutex_unlock(&v->mu);
    return line;
}

static int build_request(ar_provider_t *p, ar_call_t *call, ar_http_req_t *out)
{
    vertex_t *v = (vertex_t *)p;
    const char *auth = v->key_line;
    if (!auth) {
        auth = current_auth(v, call->pool);
        if (!auth) {
            /* no token yet, or it lapsed while the token endpoint is down: a transient state
             * of ours, not a fault of the credential (the router moves on, counting nothing) */
            call->error_detail = "no access token yet: the token endpoint has not answered";
            return AR_EUNAVAIL;
        }
    }
    const char *model = ar_gem_model_segment(call->pool, call->model);
    const char *method;
    int rc;
    if (call->endpoint == AR_EP_CHAT) {
        rc = ar_gem_chat_body(call, &out->body);
        method = call->stream ? "streamGenerateContent?alt=sse" : "generateContent";
    } else if (call->endpoint == AR_EP_EMBEDDINGS) {
        bool batch = false;
        rc = ar_gem_embed_body(call, AR_GEM_EMBED_PREDICT, NULL, &out->body, &batch);
        method = "predict";
    } else {
        return AR_ENOTFOUND;
    }
    if (rc)
        return rc;
    rc = ar_provider_post_json(out,
                               ar_pool_printf(call->pool, "%s%s:%s", v->models_url, model, method),
                               call->stream && call->endpoint == AR_EP_CHAT);
    rc = rc ? rc : ar_http_req_add_header(out, auth);
    rc = rc ? rc : ar_header_lines_add(&v->extra, out);
    return rc;
}

/* ---- service-account tokens (main thread) ---- */

static int token_request(ar_provider_t *p, ar_pool_t *pool, int64_t now_wall_ms, ar_http_req_t *out)
{
    vertex_t *v = (vertex_t *)p;
    if (!v->private_key)
        return AR_ENOTFOUND; /* api_key mode: no token to fetch */
    int64_t iat = now_wall_ms / 1000;
    ar_buf_t hdr, claims, jwt;
    ar_buf_init(&hdr, 4096);
    ar_buf_init(&claims, 16384);
    ar_buf_init(&jwt, 65536);
    int rc = ar_buf_append_str(&hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\"");
    if (v->private_key_id && *v->private_key_id) {
        rc = rc ? rc : ar_buf_append_str(&hdr, ",\"kid\":\"");
        rc = rc ? rc : ar_buf_append_json_escaped(&hdr, ar_span_cstr(v->private_key_id));
        rc = rc ? rc : ar_buf_append_str(&hdr, "\"");
    }
    rc = rc ? rc : ar_buf_append_str(&hdr, "}");
    rc = rc ? rc : ar_buf_append_str(&claims, "{\"iss\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(&claims, ar_span_cstr(v->client_email));
    rc = rc ? rc : ar_buf_append_str(&claims, "\",\"scope\":\"" SCOPE "\",\"aud\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(&claims, ar_span_cstr(v->token_uri));
    rc = rc ? rc
            : ar_buf_appendf(&claims, "\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}", iat,
                             iat + TOKEN_LIFE_S);
    rc = rc ? rc
            : ar_buf_append_str(&jwt, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type"
                                      "%3Ajwt-bearer&assertion=");
    /* base64url needs no form encoding */
    rc = rc ? rc
            : ar_jwt_rs256(ar_buf_span(&hdr), ar_buf_span(&claims), ar_span_cstr(v->private_key),
                           &jwt);
    if (rc == 0) {
        out->method = "POST";
        out->url = ar_pool_strndup(pool, v->token_uri, strlen(v->token_uri));
        out->body = ar_span(ar_pool_strndup(pool, jwt.ptr, jwt.len), jwt.len);
        rc = ar_http_req_add_header(out, "Content-Type: application/x-www-form-urlencoded");
        rc = rc ? rc : ar_http_req_add_header(out, "Accept: application/json");
    }
    ar_buf_dispose(&hdr);
    ar_buf_dispose(&claims);
    ar_buf_dispose(&jwt);
    return rc;
}

static int token_response(ar_provider_t *p, int status, ar_span_t body, int64_t now_wall_ms,
                          int64_t *refresh_at_wall_ms)
{
    vertex_t *v = (vertex_t *)p;
    if (!v->private_key)
        return AR_ENOTFOUND;
    if (status != 200)
        return status == 400 || status == 401 || status == 403 ? AR_EAUTH : AR_EUPSTREAM;
    ar_span_t tok, raw;
    if (ar_json_validate(body, NULL, 0) != 0 ||
        ar_jscan_get(body, AR_LIT("access_token"), &raw) != 0 || ar_jscan_string(raw, &tok) != 0 ||
        tok.len == 0 || tok.len > 8192)
        return AR_EUPSTREAM;
    for (size_t i = 0; i < tok.len; i++) {
        unsigned char c = (unsigned char)tok.ptr[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '"')
            return AR_EUPSTREAM; /* a token must be usable as a header value as it is */
    }
    int64_t life_s = TOKEN_LIFE_S;
    if (ar_jscan_get_int(body, AR_LIT("expires_in"), &life_s) != 0 || life_s <= 0)
        life_s = TOKEN_LIFE_S;
    if (life_s > 86400 * 365)
        life_s = 86400 * 365;
    size_t n = tok.len + 32;
    char *line = ar_xmalloc(n);
    snprintf(line, n, "Authorization: Bearer %.*s", (int)tok.len, tok.ptr);
    int64_t expires = now_wall_ms + life_s * 1000;
    pthread_mutex_lock(&v->mu);
    char *old = v->auth_line;
    v->auth_line = line;
    v->expires_wall_ms = expires;
    pthread_mutex_unlock(&v->mu);
    ar_free(old);
    /* 60 s before expiry; a token that lives barely longer (or less) is renewed at half
     * its life, never sooner than a second from now */
    int64_t at = expires - REFRESH_EARLY_MS;
    if (at < now_wall_ms + 1000) {
        at = now_wall_ms + life_s * 500;
        if (at < now_wall_ms + 1000)
            at = now_wall_ms + 1000;
    }
    *refresh_at_wall_ms = at;
    return 0;
}

const ar_provider_ops_t ar_vertex_ops = {
    .type = "vertex-ai",
    .caps = AR_PROV_STREAM | AR_PROV_EMBED | AR_PROV_TOOLS | AR_PROV_TOKEN,
    .create = create,
    .destroy = destroy,
    .build_request = build_request,
    .parse_response = ar_gem_parse_response,
    .parse_event = ar_gem_parse_event,
    .parse_error = ar_gem_parse_error,
    .end_stream = ar_gem_end_stream,
    .token_request = token_request,
    .token_response = token_response,
};
