/*
 * attempt.c: running one client request against its candidates (SPEC section 4), the
 * retry machine. Each candidate is first admitted by the router (ban, breaker,
 * max_concurrent, RPM/TPM); an admitted attempt builds the provider request and starts the
 * transfer, whose bytes stream.c pumps to the client; answer.c shapes what is sent.
 * In-process (mock) answers are delivered here too. A failed attempt is reported to the router, which answers with the outcome table's
 * verdict: retry the same deployment (429, ECONNRESET, ENETUNREACH: up to
 * rate_limit_retries, after retry_delay + jitter or the upstream's Retry-After), move to
 * the next candidate (at most max_retries switches), then routing.fallback, or return.
 * Nothing is retried once bytes reached the client.
 *
 * Lifetime: the gateway holds a reference on the HTTP request from ar_gw_llm until
 * ar_gw_req_finish, and every callback holds one while it runs, so a client that
 * disconnects mid-callback cannot free the state under it.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/redact.h"
#include "core/str.h"
#include "gateway/gateway_int.h"

static int on_head(void *ud, int status, const ar_header_t *headers, size_t cnt);
static void on_done(void *ud, int err, const char *detail);

static const ar_transfer_cbs_t xfer_cbs = {on_head, ar_gw_on_upstream_data, on_done};

#define ERROR_BODY_MAX (1u << 20)
#define RETRY_AFTER_MAX_MS 60000

/* ---- small helpers ---- */

static const ar_config_t *cfg_of(const ar_gw_req_t *g)
{
    return g->rt->cfg;
}

static ar_log_ctx_t log_ctx(const ar_gw_req_t *g, const char *action)
{
    return (ar_log_ctx_t){g->http->request_id, g->dep ? g->dep->cred->name : NULL,
                          g->dep ? g->dep->upstream_model : NULL, action};
}

static void record_error(ar_gw_req_t *g, int status, const char *message)
{
    if (g->errs_cnt == AR_MAX_ATTEMPT_ERRS)
        return;
    ar_attempt_err_t *e = &g->errs[g->errs_cnt++];
    e->credential = g->dep ? g->dep->cred->name : "";
    e->model = g->dep ? g->dep->upstream_model : "";
    e->status = status;
    /* upstream words, relayed in _router.errors and final errors: an upstream's 401 may
     * quote the key it was sent */
    e->message = message ? ar_redact_str(g->http->pool, message) : "";
}

static bool capable(const ar_provider_t *p, ar_endpoint_t ep)
{
    if (ep == AR_EP_EMBEDDINGS)
        return ar_provider_can(p, AR_PROV_EMBED);
    if (ep == AR_EP_COMPLETIONS)
        return ar_provider_can(p, AR_PROV_COMPLETIONS);
    return true;
}

/* At debug level: a body, shortened (embedding vectors, base64 data) and masked. */
static void debug_dump(ar_gw_req_t *g, const char *what, ar_span_t body)
{
    if (!ar_log_enabled(AR_LOG_DEBUG))
        return;
    ar_buf_t b;
    ar_buf_init(&b, 64u << 10);
    if (ar_json_shorten(body, 200, 8000, &b) == 0) {
        ar_log_ctx_t lc = log_ctx(g, what);
        AR_DEBUG(&lc, "%.*s", (int)b.len, b.ptr ? b.ptr : "");
    }
    ar_buf_dispose(&b);
}

/* ---- router accounting ---- */

/* The attempt's shared TPM windows get its real usage in place of the estimate, sent
 * before the answer goes out (the sooner it lands, the less the next request overshoots). */
static void settle_shared_tpm(ar_gw_req_t *g, int status)
{
    const ar_usage_t *u = &g->call.usage;
    int64_t used = u->prompt_tokens + u->completion_tokens;
    /* the usage a successful answer bills the key (ar_gw_billed_tokens) */
    if (u->seen && status >= 200 && status < 300)
        ar_gw_key_settle_shared(g, used);
    if (!g->tpm_member[0])
        return;
    /* as the local windows: without usage the estimate stands */
    if (u->seen)
        ar_redis_window_settle(g->gw->redis, g->tpm_keys, g->tpm_keys_cnt, g->tpm_member,
                               g->tpm_charged, used);
    g->tpm_member[0] = '\0';
}

/* Reports the current attempt to the router. @return the outcome-table verdict. */
static ar_outcome_t report(ar_gw_req_t *g, int status, int err, bool cancelled)
{
    if (!g->attempt_open)
        return ar_outcome_classify(status, err);
    g->attempt_open = false;
    uint64_t now = ar_now_us();
    const ar_usage_t *u = &g->call.usage;
    ar_attempt_result_t res = {
        .status = status,
        .err = err,
        .cancelled = cancelled,
        .ttfb_us = g->ttfb_us,
        .duration_us = now - g->attempt_start_us,
        .prompt_tokens = u->prompt_tokens,
        .completion_tokens = u->completion_tokens,
        .usage_seen = u->seen,
    };
    res.cost_usd = ar_gw_cost(g);
    settle_shared_tpm(g, status);
    return ar_router_report(g->rt->router, g->dep, &g->adm, &res, now / 1000);
}

/* ---- finishing ---- */

static void on_timer_closed(uv_handle_t *h)
{
    ar_gw_req_t *g = h->data;
    ar_http_unref(g->http);
}

void ar_gw_req_finish(ar_gw_req_t *g)
{
    if (g->finished)
        return;
    g->finished = true;
    ar_list_remove(&g->unflushed_link);
    if (g->xfer) {
        ar_transfer_cancel(g->xfer);
        g->xfer = NULL;
    }
    report(g, 0, 0, true);       /* an attempt still open ends without a verdict */
    g->cost_usd = ar_gw_cost(g); /* once: the key's quota and the ledger both take it */
    ar_gw_key_settle(g, g->cost_usd);
    ar_http_request_t *http = g->http;
    http->on_abort = NULL;
    http->on_drain = NULL;
    int status = ar_http_status(http);
    uint64_t took_us = ar_now_us() - http->start_us;
    ar_router_record_request(g->rt->router, g->dep, status ? status : 499, took_us);
    if (g->dep && (g->switches > 0 || g->dep->is_fallback))
        ar_router_record_fallback(g->dep);
    ar_ts_record(((ar_gw_worker_t *)http->worker->data)->gw->timeseries, (unsigned)http->worker->id,
                 ar_wall_ms() / 1000, status == 0 || status >= 400, took_us,
                 g->call.usage.prompt_tokens, g->call.usage.completion_tokens);
    /* the access line itself is written by routes.c when the request is released */
    g->ctx.log_model = g->call.public_model;
    g->ctx.log_credential = g->dep ? g->dep->cred->name : NULL;
    g->ctx.log_attempts = g->attempts;
    g->ctx.log_prompt_tokens = g->call.usage.prompt_tokens;
    g->ctx.log_completion_tokens = g->call.usage.completion_tokens;
    g->ctx.log_stream = g->call.stream;
    ar_gw_spend_record(g); /* the held end of the answer goes out once it is written */
    if (g->timer_init) {
        uv_timer_stop(&g->timer);
        uv_close((uv_handle_t *)&g->timer, on_timer_closed); /* holds a reference */
    }
    ar_http_unref(http);
}

static const char *type_for_status(int status)
{
    switch (status) {
    case 429: return "rate_limit_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* Nothing succeeded: SPEC section 4's final status rules. */
static void fail_all(ar_gw_req_t *g)
{
    ar_http_request_t *http = g->http;
    if (g->attempts == 0 && g->skipped_limited > 0) {
        /* every candidate that could be tried was over an RPM/TPM window */
        int64_t secs = (g->retry_ms + 999) / 1000;
        if (secs < 1)
            secs = 1;
        char *ra = ar_pool_alloc(http->pool, 24);
        ar_u64_dec((uint64_t)secs, ra);
        ar_http_header_t extra[1] = {{AR_LIT("Retry-After"), ar_span_cstr(ra)}};
        ar_gw_send_error(
            g, 429, "rate_limit_error", "rate_limit_exceeded",
            ar_pool_printf(http->pool,
                           "Rate limit reached for model '%s' on every deployment; retry "
                           "in %llds",
                           g->call.public_model, (long long)secs),
            extra, 1);
        ar_gw_req_finish(g);
        return;
    }
    if (g->attempts == 0 || g->errs_cnt == 0) {
        ar_gw_send_error(g, 503, "service_unavailable_error", "no_available_deployment",
                         ar_pool_printf(http->pool, "No available deployment for model '%s'",
                                        g->call.public_model),
                         NULL, 0);
        ar_gw_req_finish(g);
        return;
    }
    const ar_attempt_err_t *last = &g->errs[g->errs_cnt - 1];
    int status = last->status >= 400 ? last->status : 502;
    ar_gw_send_error(g, status, type_for_status(status), "upstream_error", last->message, NULL, 0);
    ar_gw_req_finish(g);
}

/* ---- timers: mock latency and retry delays ---- */

static void start_timer(ar_gw_req_t *g, uint64_t delay_ms, uv_timer_cb cb)
{
    if (!g->timer_init) {
        uv_timer_init(g->http->worker->loop, &g->timer);
        g->timer.data = g;
        g->timer_init = true;
        ar_http_ref(g->http); /* released in on_timer_closed */
    }
    uv_timer_start(&g->timer, cb, delay_ms, 0);
}

/* ---- in-process answers (mock) ---- */

static void inproc_deliver(ar_gw_req_t *g)
{
    g->ttfb_us = ar_now_us() - g->attempt_start_us;
    report(g, g->inproc.status, 0, false);
    if (g->call.stream) {
        ar_gw_stream_begin(g);
        for (size_t i = 0; i < g->inproc.events_cnt; i++) {
            if (ar_gw_emit(g, g->inproc.events[i]) != 0)
                break;
        }
        ar_gw_stream_end(g);
        ar_http_end_stream(g->http);
    } else {
        ar_gw_send_answer(g, g->inproc.status, ar_buf_span(&g->inproc.body));
    }
    ar_gw_req_finish(g);
}

static void on_inproc_timer(uv_timer_t *t)
{
    ar_gw_req_t *g = t->data;
    if (g->finished)
        return;
    ar_http_ref(g->http);
    inproc_deliver(g);
    ar_http_unref(g->http);
}

static int inproc_start(ar_gw_req_t *g)
{
    if (g->inproc_init)
        ar_buf_dispose(&g->inproc.body);
    memset(&g->inproc, 0, sizeof(g->inproc));
    ar_buf_init(&g->inproc.body, g->rt->max_response_bytes);
    g->inproc_init = true;
    int rc = ar_provider_answer(g->prov, &g->call, &g->inproc);
    if (rc)
        return rc;
    if (g->inproc.latency_ms <= 0)
        inproc_deliver(g);
    else
        start_timer(g, (uint64_t)g->inproc.latency_ms, on_inproc_timer);
    return 0;
}

/* ---- attempts ---- */

/* Starts the admitted attempt on g->dep. @return 0, or an error (nothing was sent). */
static int launch(ar_gw_req_t *g)
{
    const ar_deployment_t *d = g->dep;
    g->up_status = 0;
    g->up_retry_after_ms = -1;
    g->up_stream = false;
    g->paused = false;
    g->ttfb_us = 0;
    g->attempt_start_us = ar_now_us();
    ar_buf_reset(&g->up_body);
    ar_sse_parser_dispose(&g->sse);
    ar_sse_parser_init(&g->sse, 16u << 20);
    memset(&g->up_req, 0, sizeof(g->up_req));
    memset(&g->call.usage, 0, sizeof(g->call.usage));
    g->call.stream_done = false;
    g->call.error_detail = NULL;
    g->call.pstate = NULL;
    g->call.native = false; /* the provider says whether it takes this one natively */
    g->call.model = d->upstream_model;
    g->call.max_output_tokens = d->model ? d->model->max_output_tokens : 0;
    g->attempts++;
    if (g->reasoning_hint && g->call.body) {
        /* models that cannot reason refuse reasoning_effort: only a `type: reasoning`
         * deployment gets an effort the client implied */
        if (d->model && d->model->kind == AR_MODEL_KIND_REASONING)
            json_object_set_new(g->call.body, "reasoning_effort", json_string(g->reasoning_hint));
        else
            json_object_del(g->call.body, "reasoning_effort");
    }

    if (ar_provider_can(g->prov, AR_PROV_INPROCESS))
        return inproc_start(g);
    int rc = ar_provider_build(g->prov, &g->call, &g->up_req);
    if (rc)
        return rc;
    const ar_config_t *cfg = cfg_of(g);
    ar_transfer_opts_t opts = {
        .timeout_ms = cfg->server.request_timeout_ms > 0 ? cfg->server.request_timeout_ms : 0,
        .connect_timeout_ms = 10000,
        .max_response_bytes = g->rt->max_response_bytes,
    };
    debug_dump(g, "upstream request body", g->up_req.body);
    g->xfer = ar_transfer_start(g->gw->up, &g->up_req, &opts, &xfer_cbs, g, &rc);
    return g->xfer ? 0 : rc;
}

/* The worker's Redis connection when d has an RPM or TPM limit to share and it can be
 * asked. */
static ar_redis_conn_t *shared_conn(ar_gw_req_t *g, const ar_deployment_t *d)
{
    ar_redis_conn_t *c = g->gw->redis;
    if (!ar_redis_conn_ready(c))
        return NULL;
    int64_t rpm, tpm;
    ar_router_dep_limits(g->rt->router, d, &rpm, &tpm);
    return d->cred->rpm >= 0 || rpm >= 0 || d->cred->tpm >= 0 || tpm >= 0 ? c : NULL;
}

static void limited(ar_gw_req_t *g, int64_t retry_ms)
{
    g->skipped_limited++;
    if (g->retry_ms == 0 || retry_ms < g->retry_ms)
        g->retry_ms = retry_ms;
}

/*
 * Admits d in this instance's windows; on refusal remembers why (for the final status).
 * While Redis holds the shared RPM windows the local ones take the whole limit (Redis
 * decides next); otherwise, local_only or not, this instance's share of it.
 */
static bool admit_as(ar_gw_req_t *g, const ar_deployment_t *d, bool local_only)
{
    ar_admission_t adm;
    int64_t share = !local_only && shared_conn(g, d) ? 1 : cfg_of(g)->storage.redis_instances;
    ar_skip_t why =
        ar_router_admit_share(g->rt->router, d, ar_now_ms(), g->est_tokens, share, &adm);
    if (why == AR_SKIP_NONE) {
        g->prev_dep = g->dep;
        g->prev_prov = g->prov;
        g->dep = d;
        g->prov = g->rt->providers[d->cred_idx];
        g->adm = adm;
        g->attempt_open = true;
        return true;
    }
    if (why == AR_SKIP_LIMITED)
        limited(g, adm.retry_ms);
    else
        g->skipped_other++;
    AR_DEBUG((&(ar_log_ctx_t){g->http->request_id, d->cred->name, d->upstream_model,
                              "choosing a deployment"}),
             "skipped (%d)", (int)why);
    return false;
}

static bool admit(ar_gw_req_t *g, const ar_deployment_t *d)
{
    return admit_as(g, d, false);
}

/* Takes back the admission of g->dep, which never started. */
static void withdraw(ar_gw_req_t *g)
{
    ar_router_withdraw(g->rt->router, g->dep, &g->adm);
    g->attempt_open = false;
    g->dep = g->prev_dep;
    g->prov = g->prev_prov;
}

/* An attempt could not even start: count it as a failed attempt on its deployment. */
static void launch_failed(ar_gw_req_t *g, int rc)
{
    if (rc == AR_EINVAL || rc == AR_EUNAVAIL) {
        /* Not the deployment's fault, so no verdict: AR_EINVAL, the request cannot be
         * expressed for this provider (the client's: a 400 if no other provider takes it);
         * AR_EUNAVAIL, transient on our side (a Vertex token not fetched yet, so a
         * token-endpoint outage never bans the credential). The next candidate may serve. */
        const char *why = g->call.error_detail ? g->call.error_detail : ar_err_message(rc);
        record_error(g, rc == AR_EINVAL ? 400 : 503, why);
        report(g, 0, 0, true);
        ar_log_ctx_t lc = log_ctx(g, "building upstream request");
        AR_LOG(AR_LOG_INFO, &lc, "%s", why);
        g->call.error_detail = NULL;
        return;
    }
    record_error(g, 502,
                 ar_pool_printf(g->http->pool, "cannot send request: %s", ar_err_message(rc)));
    report(g, 0, AR_EUPSTREAM, false);
    ar_log_ctx_t lc = log_ctx(g, "building upstream request");
    AR_LOG(AR_LOG_ERROR, &lc, "%s", ar_err_message(rc));
}

/* A credential that answered 401/403 is bad for this request: none of its deployments is
 * tried again (SPEC section 4), whatever model they serve. */
static void mark_bad_credential(ar_gw_req_t *g)
{
    if (!g->bad_creds)
        g->bad_creds = ar_pool_calloc(g->http->pool, cfg_of(g)->credentials_cnt);
    g->bad_creds[g->dep->cred_idx] = true;
}

static bool usable(ar_gw_req_t *g, const ar_deployment_t *d)
{
    if (g->bad_creds && g->bad_creds[d->cred_idx])
        return false;
    return capable(g->rt->providers[d->cred_idx], g->endpoint) && admit(g, d);
}

/* Starts the admitted attempt. @return true when it started (false: it could not). */
static bool start(ar_gw_req_t *g, bool is_switch)
{
    if (is_switch)
        g->switches++;
    int rc = launch(g);
    if (rc == 0)
        return true;
    launch_failed(g, rc);
    return false;
}

static void on_shared_verdict(void *ud, int rc, bool allowed, int64_t retry_ms)
{
    ar_gw_req_t *g = ud;
    ar_http_request_t *http = g->http; /* held since the check was sent */
    if (g->finished) {
        ar_http_unref(http);
        return;
    }
    if (rc == 0 && allowed) {
        if (!start(g, g->shared_switch))
            ar_gw_attempt_next(g);
    } else {
        const ar_deployment_t *d = g->dep;
        bool sw = g->shared_switch;
        g->tpm_member[0] = '\0'; /* nothing was charged, or no answer says it was */
        withdraw(g);
        if (rc == 0) {
            limited(g, retry_ms);
            ar_gw_attempt_next(g);
        } else if (!(admit_as(g, d, true) && start(g, sw))) {
            /* Redis gave no answer: this instance's share of the limit decides */
            ar_gw_attempt_next(g);
        }
    }
    ar_http_unref(http);
}

/*
 * g->dep was admitted here: when its RPM limits are shared, Redis decides before it
 * starts (on_shared_verdict continues); otherwise it starts now.
 * @return true when the attempt started or waits for Redis.
 */
static bool go(ar_gw_req_t *g, bool is_switch)
{
    const ar_deployment_t *d = g->dep;
    ar_redis_conn_t *c = shared_conn(g, d);
    if (c) {
        int64_t rpm, tpm;
        ar_router_dep_limits(g->rt->router, d, &rpm, &tpm);
        ar_pool_t *pool = g->http->pool;
        ar_redis_window_t w[4];
        size_t n = 0;
        /* a token window needs a cost of at least 1 (0 marks a counting window) */
        int64_t est = g->est_tokens > 0 ? g->est_tokens : 1;
        /* one hash tag per credential: all its keys live in one Redis Cluster slot */
        if (d->cred->rpm >= 0)
            w[n++] = (ar_redis_window_t){ar_pool_printf(pool, "airouter:{%s}:rpm", d->cred->name),
                                         d->cred->rpm, 0};
        if (rpm >= 0)
            w[n++] = (ar_redis_window_t){
                ar_pool_printf(pool, "airouter:{%s}:rpm:%s", d->cred->name, d->upstream_model), rpm,
                0};
        g->tpm_keys_cnt = 0;
        if (d->cred->tpm >= 0)
            w[n++] = (ar_redis_window_t){ar_pool_printf(pool, "airouter:{%s}:tpm", d->cred->name),
                                         d->cred->tpm, est};
        if (tpm >= 0)
            w[n++] = (ar_redis_window_t){
                ar_pool_printf(pool, "airouter:{%s}:tpm:%s", d->cred->name, d->upstream_model), tpm,
                est};
        for (size_t i = 0; i < n; i++) {
            if (w[i].cost)
                g->tpm_keys[g->tpm_keys_cnt++] = w[i].key;
        }
        g->tpm_charged = est;
        g->shared_switch = is_switch;
        if (ar_redis_window_admit(c, w, n, 60000, g->tpm_member, on_shared_verdict, g) == 0) {
            if (!g->tpm_keys_cnt)
                g->tpm_member[0] = '\0';
            ar_http_ref(g->http);
            return true;
        }
        g->tpm_member[0] = '\0';
        withdraw(g);
        if (!admit_as(g, d, true))
            return false;
    }
    return start(g, is_switch);
}

void ar_gw_attempt_next(ar_gw_req_t *g)
{
    const ar_config_t *cfg = cfg_of(g);
    int64_t max_switches = cfg->routing.max_retries >= 0 ? cfg->routing.max_retries : 0;
    g->same_retries = 0;
    while (!g->finished && g->next_cand < g->cands.cnt) {
        if (g->attempts > 0 && g->switches >= max_switches)
            break;
        const ar_deployment_t *d = g->cands.items[g->next_cand++];
        if (!usable(g, d))
            continue;
        if (go(g, g->attempts > 0))
            return;
    }
    /* routing.fallback: the last resort, whatever stopped the candidates */
    const ar_deployment_t *fb = ar_router_fallback(g->rt->router);
    if (!g->finished && fb && !g->fallback_tried) {
        g->fallback_tried = true;
        if (usable(g, fb) && go(g, false))
            return;
    }
    if (!g->finished)
        fail_all(g);
}

static void on_retry_timer(uv_timer_t *t)
{
    ar_gw_req_t *g = t->data;
    if (g->finished)
        return;
    ar_http_ref(g->http);
    if (!(admit(g, g->dep) && go(g, false)))
        ar_gw_attempt_next(g);
    ar_http_unref(g->http);
}

/* After a failed attempt: the outcome table decides between retry, next, and return. */
static void after_failure(ar_gw_req_t *g, ar_outcome_t oc)
{
    const ar_config_t *cfg = cfg_of(g);
    if (oc.action == AR_ACT_NEXT_CREDENTIAL)
        mark_bad_credential(g);
    if (oc.action == AR_ACT_RETRY_SAME && g->same_retries < cfg->routing.rate_limit_retries) {
        g->same_retries++;
        int64_t delay = cfg->routing.retry_delay_ms;
        if (g->up_retry_after_ms >= 0 && g->up_retry_after_ms <= RETRY_AFTER_MAX_MS)
            delay = g->up_retry_after_ms; /* the upstream knows best, within reason */
        else if (delay > 0)
            delay += (int64_t)(ar_rand_u64() % (uint64_t)(delay / 2 + 1)); /* +0-50% */
        ar_log_ctx_t lc = log_ctx(g, "retrying the same deployment");
        AR_LOG(AR_LOG_INFO, &lc, "retry %d of %lld in %lld ms", g->same_retries,
               (long long)cfg->routing.rate_limit_retries, (long long)delay);
        start_timer(g, delay > 0 ? (uint64_t)delay : 0, on_retry_timer);
        return;
    }
    ar_gw_attempt_next(g);
}

/* Retry-After: delta-seconds or an HTTP date. @return ms, or -1. */
static int64_t parse_retry_after(ar_span_t v)
{
    int64_t secs;
    if (ar_parse_int64(v, &secs) == 0) {
        /* any value beyond a day is "not soon" alike; the cap keeps * 1000 from overflowing */
        if (secs > 86400)
            secs = 86400;
        return secs >= 0 ? secs * 1000 : -1;
    }
    char tmp[64];
    if (v.len >= sizeof(tmp))
        return -1;
    memcpy(tmp, v.ptr, v.len);
    tmp[v.len] = '\0';
    struct tm tm = {0};
    if (!strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm))
        return -1;
    int64_t at = (int64_t)timegm(&tm) * 1000;
    int64_t now = ar_wall_ms();
    return at > now ? at - now : 0;
}

static int on_head(void *ud, int status, const ar_header_t *headers, size_t cnt)
{
    ar_gw_req_t *g = ud;
    g->up_status = status;
    g->ttfb_us = ar_now_us() - g->attempt_start_us;
    for (size_t i = 0; i < cnt; i++) {
        if (status >= 200 && status < 300 && g->call.stream &&
            ar_span_ieq(headers[i].name, AR_LIT("content-type")))
            g->up_stream = ar_span_istarts(headers[i].value, AR_LIT("text/event-stream"));
        else if (status >= 400 && ar_span_ieq(headers[i].name, AR_LIT("retry-after")))
            g->up_retry_after_ms = parse_retry_after(headers[i].value);
    }
    g->up_body.max = status >= 300 ? ERROR_BODY_MAX : g->rt->max_response_bytes;
    return 0;
}

static bool is_json_object(ar_span_t body)
{
    ar_jscan_iter_t it;
    return ar_jscan_object_begin(body, &it) == 0 && ar_json_validate(body, NULL, 0) == 0;
}

/* A whole 2xx answer: translate if needed, then send with metadata. */
static int deliver_whole(ar_gw_req_t *g)
{
    ar_buf_t *out = &g->ev_out;
    ar_buf_reset(out);
    int rc = ar_provider_parse_response(g->prov, &g->call, ar_buf_span(&g->up_body), out);
    if (rc)
        return rc;
    ar_span_t body = out->len ? ar_buf_span(out) : ar_buf_span(&g->up_body);
    if (!out->len && !is_json_object(body)) {
        /* a pass-through 2xx must still be an answer: a proxy error page or a cut body
         * relayed as a success would hide an upstream failure from routing and the client */
        g->call.error_detail = "the upstream answered 2xx with a body that is not a JSON object";
        return AR_EUPSTREAM;
    }
    if (out->len) {
        /* send_json reuses ev_out for the metadata: move the translation aside first */
        char *copy = ar_pool_strndup(g->http->pool, body.ptr, body.len);
        body = ar_span(copy, body.len);
    }
    report(g, g->up_status, 0, false);
    ar_gw_send_answer(g, g->up_status, body);
    return 0;
}

static void on_done(void *ud, int err, const char *detail)
{
    ar_gw_req_t *g = ud;
    g->xfer = NULL;
    if (g->finished)
        return;
    ar_http_ref(g->http);
    if (!g->up_stream)
        debug_dump(g, "upstream response body", ar_buf_span(&g->up_body));
    if (g->up_stream && err == 0) {
        err = ar_gw_stream_finish(g);
        if (err == AR_ECANCELED || g->finished) {
            ar_gw_req_finish(g);
            goto out;
        }
    }
    bool success = err == 0 && g->up_status >= 200 && g->up_status < 300;
    if (success && g->up_stream) {
        report(g, g->up_status, 0, false);
        ar_gw_stream_begin(g);
        ar_gw_stream_end(g);
        ar_http_end_stream(g->http);
        ar_gw_req_finish(g);
        goto out;
    }
    if (success) {
        err = deliver_whole(g);
        if (err == 0) {
            ar_gw_req_finish(g);
            goto out;
        }
        detail =
            g->call.error_detail ? g->call.error_detail : "the upstream answer could not be read";
        err = AR_EUPSTREAM;
    }
    if (ar_http_responded(g->http)) {
        /* Bytes reached the client: no retry, end the stream with an error event. */
        report(g, 0, err ? err : AR_EUPSTREAM, false);
        const char *msg = g->call.error_detail
                              ? g->call.error_detail
                              : ar_pool_printf(g->http->pool, "upstream stream broke: %s",
                                               ar_err_message(err ? err : AR_EUPSTREAM));
        ar_log_ctx_t lc = log_ctx(g, "reading upstream stream");
        AR_LOG(AR_LOG_ERROR, &lc, "%s (%s)", msg, detail);
        ar_gw_stream_error(g, "api_error", msg);
        ar_http_end_stream(g->http);
        ar_gw_req_finish(g);
        goto out;
    }
    const char *message;
    if (err) {
        message = ar_pool_printf(g->http->pool, "%s: %s", ar_err_message(err), detail);
    } else {
        ar_upstream_err_t ue;
        ar_provider_parse_error(g->prov, &g->call, g->up_status, ar_buf_span(&g->up_body), &ue);
        message = ue.message;
    }
    ar_outcome_t oc = report(g, err ? 0 : g->up_status, err, false);
    record_error(g, oc.client_status, message);
    ar_log_ctx_t lc = log_ctx(g, "upstream attempt failed");
    AR_LOG(AR_LOG_INFO, &lc, "status %d: %s", oc.client_status, message);
    if (oc.action == AR_ACT_RETURN_ERROR && !err) {
        if (ar_provider_can(g->prov, AR_PROV_OPENAI_WIRE) && !g->ctx.front) {
            /* the upstream's own error, keys it quotes masked */
            ar_gw_send_json(g, g->up_status,
                            ar_redact_span(g->http->pool, ar_buf_span(&g->up_body)), NULL, 0);
        } else {
            /* translated: the client gets its own format, with the upstream's words */
            ar_upstream_err_t ue;
            ar_provider_parse_error(g->prov, &g->call, g->up_status, ar_buf_span(&g->up_body), &ue);
            ar_gw_send_error(g, g->up_status, ue.type ? ue.type : type_for_status(g->up_status),
                             ue.code, ue.message, NULL, 0);
            g->ctx.log_reason = NULL; /* relayed: the upstream's error, not a refusal of ours */
        }
        ar_gw_req_finish(g);
    } else if (oc.action == AR_ACT_RETURN_ERROR) {
        fail_all(g);
    } else {
        after_failure(g, oc);
    }
out:
    ar_http_unref(g->http);
}

void ar_gw_req_abort(ar_http_request_t *http, int reason)
{
    ar_gw_req_t *g = http->data;
    if (g->finished)
        return;
    if (reason == AR_ESHUTDOWN) {
        static const char msg[] = "Request cancelled: server is shutting down";
        ar_gw_set_reason(http, msg);
        if (ar_http_responded(http)) {
            ar_gw_stream_error(g, "service_unavailable_error", msg);
            ar_http_end_stream(http);
        } else {
            g->final_status = 503;
            ar_http_respond_json(http, 503, NULL, 0,
                                 AR_LIT("{\"statusCode\":503,\"message\":\"Request cancelled: "
                                        "server is shutting down\",\"error\":\"Service "
                                        "Unavailable\"}"));
        }
    }
    ar_gw_req_finish(g);
}
