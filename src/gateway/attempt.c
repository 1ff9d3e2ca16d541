/*
 * attempt.c: running one client request against its candidates, one attempt at a time:
 * build the provider request, stream the answer back as it arrives (SSE events are
 * parsed, translated or passed through untouched, and flushed per upstream read), or
 * collect a whole answer and relay it with `_router` metadata. Failures follow the
 * outcome table (router/outcome.c): the request moves to the next candidate until one
 * succeeds, the table says to return, or candidates run out. Nothing is retried once
 * bytes reached the client.
 *
 * Lifetime: the gateway holds a reference on the HTTP request from ar_gw_llm until
 * ar_gw_req_finish, and every callback holds one while it runs, so a client that
 * disconnects mid-callback cannot free the state under it.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "gateway/gateway_int.h"

static int on_head(void *ud, int status, const ar_header_t *headers, size_t cnt);
static int on_data(void *ud, ar_span_t data);
static void on_done(void *ud, int err, const char *detail);

static const ar_transfer_cbs_t xfer_cbs = {on_head, on_data, on_done};

#define ERROR_BODY_MAX (1u << 20)

/* ---- small helpers ---- */

static const ar_config_t *cfg_of(const ar_gw_req_t *g)
{
    return g->rt->cfg;
}

static void record_error(ar_gw_req_t *g, int status, const char *message)
{
    if (g->errs_cnt == AR_MAX_ATTEMPT_ERRS)
        return;
    ar_attempt_err_t *e = &g->errs[g->errs_cnt++];
    e->credential = g->dep ? g->dep->cred->name : "";
    e->model = g->dep ? g->dep->upstream_model : "";
    e->status = status;
    e->message = message ? message : "";
}

static void end_attempt(ar_gw_req_t *g, bool failed)
{
    if (!g->attempt_open)
        return;
    g->attempt_open = false;
    ar_router_attempt_end(g->dep, failed);
}

static bool capable(const ar_provider_t *p, ar_endpoint_t ep)
{
    if (ep == AR_EP_EMBEDDINGS)
        return ar_provider_can(p, AR_PROV_EMBED);
    if (ep == AR_EP_COMPLETIONS)
        return ar_provider_can(p, AR_PROV_COMPLETIONS);
    return true;
}

/* `"_router":{...}` (without braces around it) appended to out. */
static int append_router_meta(ar_gw_req_t *g, ar_buf_t *out)
{
    const ar_deployment_t *d = g->dep;
    int rc = ar_buf_append_str(out, "\"_router\":{\"provider\":\"");
    rc = rc ? rc : ar_buf_append_str(out, d ? d->cred->type_name : "");
    rc = rc ? rc : ar_buf_append_str(out, "\",\"credential\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(d ? d->cred->name : ""));
    rc = rc ? rc : ar_buf_append_str(out, "\",\"model_name\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(d ? d->upstream_model : ""));
    char num[24];
    size_t nlen = ar_u64_dec((uint64_t)g->attempts, num);
    rc = rc ? rc : ar_buf_append_str(out, "\",\"attempts\":");
    rc = rc ? rc : ar_buf_append(out, num, nlen);
    rc = rc ? rc
            : ar_buf_append_str(out, d && d->is_fallback ? ",\"fallback_used\":true,\"errors\":["
                                                         : ",\"fallback_used\":false,\"errors\":[");
    for (size_t i = 0; i < g->errs_cnt && !rc; i++) {
        const ar_attempt_err_t *e = &g->errs[i];
        rc = ar_buf_append_str(out, i ? ",{\"credential\":\"" : "{\"credential\":\"");
        rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(e->credential));
        rc = rc ? rc : ar_buf_append_str(out, "\",\"model\":\"");
        rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(e->model));
        rc = rc ? rc : ar_buf_appendf(out, "\",\"status\":%d,\"message\":\"", e->status);
        rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(e->message));
        rc = rc ? rc : ar_buf_append_str(out, "\"}");
    }
    rc = rc ? rc : ar_buf_append_str(out, "]}");
    return rc;
}

/* The response headers of an answer from the current deployment. */
static size_t answer_headers(ar_gw_req_t *g, ar_http_header_t *hs, size_t max, bool stream)
{
    size_t n = 0;
    if (stream) {
        hs[n++] = (ar_http_header_t){AR_LIT("Content-Type"), AR_LIT("text/event-stream")};
        hs[n++] = (ar_http_header_t){AR_LIT("Cache-Control"), AR_LIT("no-cache")};
        hs[n++] = (ar_http_header_t){AR_LIT("X-Accel-Buffering"), AR_LIT("no")};
    } else {
        hs[n++] = (ar_http_header_t){AR_LIT("Content-Type"), AR_LIT("application/json")};
    }
    if (cfg_of(g)->server.router_metadata && g->dep) {
        hs[n++] =
            (ar_http_header_t){AR_LIT("x-airouter-credential"), ar_span_cstr(g->dep->cred->name)};
        hs[n++] =
            (ar_http_header_t){AR_LIT("x-airouter-model"), ar_span_cstr(g->dep->upstream_model)};
        char *att = ar_pool_alloc(g->http->pool, 24);
        ar_u64_dec((uint64_t)g->attempts, att);
        hs[n++] = (ar_http_header_t){AR_LIT("x-airouter-attempts"), ar_span_cstr(att)};
    }
    n += ar_gw_common_headers(g->http, g->rt, hs + n, max - n);
    return n;
}

/*
 * Sends a JSON object body, with `_router` spliced in before its closing brace when
 * router_metadata is on; the body itself is never copied.
 */
static void send_json(ar_gw_req_t *g, int status, ar_span_t body)
{
    ar_http_header_t hs[12];
    size_t n = answer_headers(g, hs, AR_ARRAY_CNT(hs), false);
    ar_span_t parts[2] = {body, AR_SPAN_NULL};
    size_t nparts = 1;
    size_t end = body.len;
    while (end > 0 && (body.ptr[end - 1] == ' ' || body.ptr[end - 1] == '\n' ||
                       body.ptr[end - 1] == '\r' || body.ptr[end - 1] == '\t'))
        end--;
    if (cfg_of(g)->server.router_metadata && end > 0 && body.ptr[end - 1] == '}' &&
        body.ptr[0] == '{') {
        size_t before = end - 1;
        while (before > 0 && (body.ptr[before - 1] == ' ' || body.ptr[before - 1] == '\n' ||
                              body.ptr[before - 1] == '\r' || body.ptr[before - 1] == '\t'))
            before--;
        ar_buf_t *meta = &g->ev_out;
        ar_buf_reset(meta);
        int rc = ar_buf_append_str(meta, before > 1 ? "," : "");
        rc = rc ? rc : append_router_meta(g, meta);
        rc = rc ? rc : ar_buf_append_str(meta, "}");
        if (rc == 0) {
            parts[0] = ar_span(body.ptr, end - 1);
            parts[1] = ar_buf_span(meta);
            nparts = 2;
        }
    }
    g->final_status = status;
    ar_http_respond_parts(g->http, status, hs, n, parts, nparts);
}

static void ensure_stream(ar_gw_req_t *g)
{
    if (ar_http_responded(g->http))
        return;
    ar_http_header_t hs[12];
    size_t n = answer_headers(g, hs, AR_ARRAY_CNT(hs), true);
    g->final_status = 200;
    ar_http_start_stream(g->http, 200, hs, n);
}

/* An SSE `error` event for a stream that cannot go on. */
static void stream_error(ar_gw_req_t *g, const char *type, const char *message)
{
    ar_buf_t *b = &g->ev_out;
    ar_buf_reset(b);
    int rc = ar_buf_append_str(b, "data: {\"error\":{\"message\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(b, ar_span_cstr(message));
    rc = rc ? rc : ar_buf_appendf(b, "\",\"type\":\"%s\",\"code\":null,\"param\":null}}\n\n", type);
    if (rc == 0)
        (void)ar_http_write(g->http, ar_buf_span(b));
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
    if (g->xfer) {
        ar_transfer_cancel(g->xfer);
        g->xfer = NULL;
    }
    end_attempt(g, false);
    ar_http_request_t *http = g->http;
    http->on_abort = NULL;
    http->on_drain = NULL;
    int status = ar_http_status(http);
    ar_access_log_t rec = {
        .method = http->method_name.ptr ? http->method_name.ptr : "-",
        .path = http->path,
        .status = status ? status : 499,
        .model = g->call.public_model,
        .credential = g->dep ? g->dep->cred->name : NULL,
        .attempts = g->attempts,
        .latency_ms = (double)(ar_now_us() - http->start_us) / 1000.0,
        .prompt_tokens = g->call.usage.prompt_tokens,
        .completion_tokens = g->call.usage.completion_tokens,
        .client = http->client_ip,
        .request_id = http->request_id,
        .stream = g->call.stream,
    };
    ar_log_access(&rec);
    if (g->timer_init) {
        uv_timer_stop(&g->timer);
        uv_close((uv_handle_t *)&g->timer, on_timer_closed); /* holds a reference */
    }
    ar_http_unref(http);
}

/* Every candidate failed or was skipped: SPEC section 4's final status rules. */
static void fail_all(ar_gw_req_t *g)
{
    if (g->errs_cnt == 0 || g->attempts == 0) {
        ar_span_t body = ar_http_error_body(g->http,
                                            ar_pool_printf(g->http->pool,
                                                           "No available deployment for model '%s'",
                                                           g->call.public_model),
                                            "service_unavailable_error", "no_available_deployment");
        send_json(g, 503, body);
        ar_gw_req_finish(g);
        return;
    }
    const ar_attempt_err_t *last = &g->errs[g->errs_cnt - 1];
    int status = last->status >= 400 ? last->status : 502;
    const char *type = status == 429   ? "rate_limit_error"
                       : status == 401 ? "authentication_error"
                       : status == 403 ? "permission_error"
                       : status == 404 ? "not_found_error"
                       : status == 504 ? "timeout_error"
                       : status >= 500 ? "api_error"
                                       : "invalid_request_error";
    ar_span_t body = ar_http_error_body(g->http, last->message, type, "upstream_error");
    send_json(g, status, body);
    ar_gw_req_finish(g);
}

/* ---- in-process answers (mock) ---- */

static void inproc_deliver(ar_gw_req_t *g)
{
    end_attempt(g, false);
    if (g->call.stream) {
        ensure_stream(g);
        for (size_t i = 0; i < g->inproc.events_cnt; i++) {
            if (ar_http_write(g->http, g->inproc.events[i]) != 0)
                break;
        }
        ar_http_end_stream(g->http);
    } else {
        send_json(g, g->inproc.status, ar_buf_span(&g->inproc.body));
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
    memset(&g->inproc, 0, sizeof(g->inproc));
    ar_buf_init(&g->inproc.body, g->rt->max_response_bytes);
    g->inproc_init = true;
    int rc = ar_provider_answer(g->prov, &g->call, &g->inproc);
    if (rc)
        return rc;
    if (g->inproc.latency_ms <= 0) {
        inproc_deliver(g);
        return 0;
    }
    if (!g->timer_init) {
        uv_timer_init(g->http->worker->loop, &g->timer);
        g->timer.data = g;
        g->timer_init = true;
        ar_http_ref(g->http); /* released in on_timer_closed */
    }
    uv_timer_start(&g->timer, on_inproc_timer, (uint64_t)g->inproc.latency_ms, 0);
    return 0;
}

/* ---- upstream attempts ---- */

static int start_attempt(ar_gw_req_t *g, const ar_deployment_t *d, ar_provider_t *prov)
{
    g->dep = d;
    g->prov = prov;
    g->up_status = 0;
    g->up_stream = false;
    g->paused = false;
    ar_buf_reset(&g->up_body);
    ar_sse_parser_dispose(&g->sse);
    ar_sse_parser_init(&g->sse, 16u << 20);
    memset(&g->up_req, 0, sizeof(g->up_req));
    memset(&g->call.usage, 0, sizeof(g->call.usage));
    g->call.stream_done = false;
    g->call.pstate = NULL;
    g->call.model = d->upstream_model;
    g->call.max_output_tokens = d->model ? d->model->max_output_tokens : 0;
    g->attempts++;
    ar_router_attempt_begin(d);
    g->attempt_open = true;

    if (ar_provider_can(prov, AR_PROV_INPROCESS))
        return inproc_start(g);
    int rc = ar_provider_build(prov, &g->call, &g->up_req);
    if (rc)
        return rc;
    const ar_config_t *cfg = cfg_of(g);
    ar_transfer_opts_t opts = {
        .timeout_ms = cfg->server.request_timeout_ms > 0 ? cfg->server.request_timeout_ms : 0,
        .connect_timeout_ms = 10000,
        .max_response_bytes = g->rt->max_response_bytes,
    };
    g->xfer = ar_transfer_start(g->gw->up, &g->up_req, &opts, &xfer_cbs, g, &rc);
    return g->xfer ? 0 : rc;
}

void ar_gw_attempt_next(ar_gw_req_t *g)
{
    const ar_config_t *cfg = cfg_of(g);
    int64_t max_attempts = cfg->routing.max_retries >= 0 ? cfg->routing.max_retries + 1 : 1;
    while (!g->finished && g->next_cand < g->cands.cnt && g->attempts < max_attempts) {
        const ar_deployment_t *d = g->cands.items[g->next_cand++];
        ar_provider_t *prov = g->rt->providers[d->cred_idx];
        if (!capable(prov, g->endpoint))
            continue;
        int rc = start_attempt(g, d, prov);
        if (rc == 0)
            return;
        end_attempt(g, true);
        record_error(g, 502,
                     ar_pool_printf(g->http->pool, "cannot send request: %s", ar_err_message(rc)));
        AR_LOG(AR_LOG_ERROR,
               (&(ar_log_ctx_t){g->http->request_id, d->cred->name, d->upstream_model,
                                "building upstream request"}),
               "%s", ar_err_message(rc));
    }
    if (!g->finished)
        fail_all(g);
}

static int on_head(void *ud, int status, const ar_header_t *headers, size_t cnt)
{
    ar_gw_req_t *g = ud;
    g->up_status = status;
    if (status >= 200 && status < 300 && g->call.stream) {
        for (size_t i = 0; i < cnt; i++) {
            if (ar_span_ieq(headers[i].name, AR_LIT("content-type")))
                g->up_stream = ar_span_istarts(headers[i].value, AR_LIT("text/event-stream"));
        }
    }
    if (status >= 300)
        g->up_body.max = ERROR_BODY_MAX;
    else
        g->up_body.max = g->rt->max_response_bytes;
    return 0;
}

static int on_event(void *ud, const ar_sse_event_t *ev)
{
    ar_gw_req_t *g = ud;
    if (g->finished || ar_http_aborted(g->http))
        return AR_ECANCELED;
    ar_buf_reset(&g->ev_out);
    int rc = ar_provider_parse_event(g->prov, &g->call, ev, &g->ev_out);
    if (rc < 0)
        return rc;
    ar_span_t out = rc == AR_PROV_PASS ? ev->raw : ar_buf_span(&g->ev_out);
    if (out.len == 0)
        return 0;
    ensure_stream(g);
    if (ar_http_write(g->http, out) != 0)
        return AR_ECANCELED;
    /* the last event of a stream may lack its blank line */
    if (rc == AR_PROV_PASS && !(out.len >= 2 && out.ptr[out.len - 1] == '\n' &&
                                (out.ptr[out.len - 2] == '\n' || out.ptr[out.len - 2] == '\r')))
        return ar_http_write(g->http, AR_LIT("\n\n")) ? AR_ECANCELED : 0;
    return 0;
}

static void on_drain(ar_http_request_t *http)
{
    ar_gw_req_t *g = http->data;
    if (g->paused && g->xfer) {
        g->paused = false;
        ar_transfer_resume(g->xfer);
    }
}

static int on_data(void *ud, ar_span_t data)
{
    ar_gw_req_t *g = ud;
    if (g->finished)
        return AR_ECANCELED;
    if (!g->up_stream)
        return ar_buf_append_span(&g->up_body, data) ? AR_ETOOBIG : 0;
    if (g->paused)
        return AR_EAGAIN;
    ar_http_ref(g->http);
    int rc = ar_sse_feed(&g->sse, data, on_event, g);
    if (rc == 0 && !g->finished && ar_http_flush(g->http) > AR_HTTP_HIGH_WATER) {
        /* The client reads slower than the upstream writes: hold the upstream. */
        g->paused = true;
        g->http->on_drain = on_drain;
    }
    ar_http_unref(g->http);
    return rc;
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
    if (out->len) {
        /* send_json reuses ev_out for the metadata: move the translation aside first */
        char *copy = ar_pool_strndup(g->http->pool, body.ptr, body.len);
        body = ar_span(copy, body.len);
    }
    send_json(g, g->up_status, body);
    return 0;
}

static void on_done(void *ud, int err, const char *detail)
{
    ar_gw_req_t *g = ud;
    g->xfer = NULL;
    if (g->finished)
        return;
    ar_http_ref(g->http);
    if (g->up_stream && err == 0) {
        err = ar_sse_finish(&g->sse, on_event, g);
        if (err == AR_ECANCELED || g->finished) {
            ar_gw_req_finish(g);
            goto out;
        }
    }
    bool success = err == 0 && g->up_status >= 200 && g->up_status < 300;
    if (success && g->up_stream) {
        end_attempt(g, false);
        ensure_stream(g);
        ar_http_end_stream(g->http);
        ar_gw_req_finish(g);
        goto out;
    }
    if (success) {
        err = deliver_whole(g);
        if (err == 0) {
            end_attempt(g, false);
            ar_gw_req_finish(g);
            goto out;
        }
        detail = "the upstream answer could not be read";
    }
    if (ar_http_responded(g->http)) {
        /* Bytes reached the client: no retry, end the stream with an error event. */
        end_attempt(g, true);
        const char *msg =
            ar_pool_printf(g->http->pool, "upstream stream broke: %s", ar_err_message(err));
        AR_LOG(AR_LOG_ERROR,
               (&(ar_log_ctx_t){g->http->request_id, g->dep->cred->name, g->dep->upstream_model,
                                "reading upstream stream"}),
               "%s (%s)", msg, detail);
        stream_error(g, "api_error", msg);
        ar_http_end_stream(g->http);
        ar_gw_req_finish(g);
        goto out;
    }
    ar_outcome_t oc = ar_outcome_classify(g->up_status, err);
    const char *message;
    if (err) {
        message = ar_pool_printf(g->http->pool, "%s: %s", ar_err_message(err), detail);
    } else {
        ar_upstream_err_t ue;
        ar_provider_parse_error(g->prov, &g->call, g->up_status, ar_buf_span(&g->up_body), &ue);
        message = ue.message;
    }
    record_error(g, oc.client_status, message);
    end_attempt(g, true);
    AR_LOG(AR_LOG_INFO,
           (&(ar_log_ctx_t){g->http->request_id, g->dep->cred->name, g->dep->upstream_model,
                            "upstream attempt failed"}),
           "status %d: %s", oc.client_status, message);
    if (oc.action == AR_ACT_RETURN_ERROR && !err) {
        send_json(g, g->up_status, ar_buf_span(&g->up_body)); /* the upstream's own error */
        ar_gw_req_finish(g);
    } else if (oc.action == AR_ACT_RETURN_ERROR) {
        fail_all(g);
    } else {
        ar_gw_attempt_next(g);
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
        if (ar_http_responded(http)) {
            stream_error(g, "service_unavailable_error", msg);
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
