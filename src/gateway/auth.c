/*
 * auth.c: who is calling. The key may come in any of the four header spellings of SPEC
 * section 3 (OpenAI, Anthropic, Azure and Google SDKs each use their own) and is compared
 * in constant time. Keys never reach logs or errors. The master key is checked first;
 * a virtual key is found by its SHA-256 in the process-wide key cache (no lock), and only a
 * key the cache has never seen waits for the store. Any other key, with litellm_db enabled,
 * is looked up in LiteLLM's database by the same SHA-256 (litellm.c).
 */
#include <string.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "gateway/gateway_int.h"

/** The key the client sent, or the empty span. */
static ar_span_t client_key(const ar_http_request_t *req)
{
    ar_span_t v = ar_http_header(req, AR_LIT("authorization"));
    if (v.len) {
        if (ar_span_istarts(v, AR_LIT("bearer ")))
            return ar_span_trim(ar_span_skip(v, 7));
        return ar_span_trim(v);
    }
    static const ar_span_t others[] = {AR_LIT("x-api-key"), AR_LIT("api-key"),
                                       AR_LIT("x-goog-api-key")};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        v = ar_http_header(req, others[i]);
        if (v.len)
            return ar_span_trim(v);
    }
    return AR_SPAN_NULL;
}

static int refuse(ar_http_request_t *req, const char *code, const char *message)
{
    ar_gw_error(req, 401, "authentication_error", code, message);
    return AR_EAUTH;
}

/* A known virtual key: usable now, or refused. */
static int check_key(ar_http_request_t *req, ar_tkey_t *k, ar_gw_auth_level_t level)
{
    const ar_tkey_conf_t *conf = atomic_load_explicit(&k->conf, memory_order_acquire);
    if (conf->revoked)
        return refuse(req, "invalid_api_key", "Invalid API key: it was revoked");
    if (conf->expires_ms && conf->expires_ms <= ar_wall_ms())
        return refuse(req, "invalid_api_key", "Invalid API key: it expired");
    if (level == AR_AUTH_MASTER) {
        ar_gw_error(req, 403, "permission_error", "master_key_required",
                    "This endpoint needs the master key");
        return AR_EAUTH;
    }
    ((ar_gw_ctx_t *)req->data)->key = k;
    return 0;
}

/* The store answered: run the request again, now that the cache knows the key. */
static void answered(ar_http_request_t *req)
{
    ar_gw_ctx_t *ctx = req->data;
    ctx->auth_pending = false;
    /* a client gone, or a request answered meanwhile (a shutdown's 503), is not run again */
    if (ctx->auth_waiting && !ar_http_aborted(req) && !ar_http_responded(req)) {
        ctx->auth_waiting = false;
        ar_gw_on_request(req);
    }
}

static void looked_up(ar_http_request_t *req)
{
    ((ar_gw_ctx_t *)req->data)->auth_looked_up = true;
    answered(req);
}

/* LiteLLM's database answered (litellm.c cached the row, or learnt it cannot say). */
static void ll_looked_up(ar_http_request_t *req)
{
    ((ar_gw_ctx_t *)req->data)->ll_looked_up = true;
    answered(req);
}

int ar_gw_authenticate(ar_http_request_t *req, const ar_runtime_t *rt, ar_gw_auth_level_t level)
{
    ar_gw_ctx_t *ctx = req->data;
    ctx->key = NULL;
    ctx->ll = NULL;
    ar_span_t key = client_key(req);
    if (key.len == 0)
        return refuse(req, "missing_api_key",
                      "Missing API key: send it as 'Authorization: Bearer KEY' (or x-api-key, "
                      "api-key, x-goog-api-key)");
    ar_gateway_t *gw = ((ar_gw_worker_t *)req->worker->data)->gw;
    ar_gw_tenancy_t *t = gw->tenancy;
    const char *master = rt->cfg->server.master_key;
    if (master && ar_ct_equal(key, ar_span_cstr(master))) {
        ctx->key = t ? ar_keycache_master(ar_gw_tenancy_keys(t)) : NULL;
        return 0;
    }
    char text[256];
    if ((!t && !gw->litellm) || key.len >= sizeof(text))
        return refuse(req, "invalid_api_key", "Invalid API key");
    memcpy(text, key.ptr, key.len);
    text[key.len] = '\0';
    bool ours = t && ar_key_well_formed(text);
    /* LiteLLM stores a key as the SHA-256 hex of its text too: one hash serves both */
    char hash[AR_KEY_HASH_LEN + 1];
    ar_key_hash(text, hash);
    explicit_bzero(text, sizeof(text));
    if (ours) {
        ar_keycache_t *cache = ar_gw_tenancy_keys(t);
        ar_tkey_t *k = ar_keycache_find(cache, hash);
        if (k)
            return check_key(req, k, level);
        /* not asked yet, nor known to be missing: the store first */
        if (!ctx->auth_looked_up && !ar_keycache_unknown(cache, hash, (int64_t)ar_now_ms())) {
            if (ar_gw_key_lookup(req, hash, looked_up) != 0)
                return refuse(req, "invalid_api_key", "Invalid API key");
            ctx->auth_pending = true;
            return AR_EAGAIN;
        }
    }
    /* neither the master key nor an airouter key: perhaps one of LiteLLM's */
    if (!gw->litellm && ctx->auth_store_failed) {
        /* the key may well be valid: a 401 would tell its client to give up on it */
        ar_gw_error(req, 503, "service_unavailable_error", "key_store_unavailable",
                    "The key store did not answer; try again");
        return AR_EAUTH;
    }
    if (!gw->litellm)
        return refuse(req, "invalid_api_key", "Invalid API key");
    int rc = ar_gw_litellm_auth(req, hash, level, ll_looked_up);
    if (rc == AR_EAGAIN)
        ctx->auth_pending = true;
    return rc;
}

int64_t ar_gw_caller_key_id(const ar_http_request_t *req)
{
    const ar_gw_ctx_t *ctx = req->data;
    const ar_tkey_conf_t *kc = ctx && ctx->key ? atomic_load(&ctx->key->conf) : NULL;
    return kc ? kc->id : 0;
}
