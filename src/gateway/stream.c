/*
 * stream.c: the pump between an upstream transfer and the client. A whole answer is
 * collected (attempt.c relays it once complete); a stream's SSE events are parsed as they
 * arrive, translated by the provider or passed through untouched, re-shaped by the
 * client's front if it has one, written per upstream chunk and flushed once per upstream
 * batch. When the client reads slower than the upstream writes, the transfer is paused
 * until the client's queue drains.
 */
#include <string.h>

#include "core/mem.h"
#include "core/redact.h"
#include "gateway/gateway_int.h"

static int on_event(void *ud, const ar_sse_event_t *ev);

void ar_gw_stream_begin(ar_gw_req_t *g)
{
    if (ar_http_responded(g->http))
        return;
    ar_http_header_t hs[16];
    size_t n = ar_gw_answer_headers(g, hs, AR_ARRAY_CNT(hs), true, NULL, 0);
    g->final_status = 200;
    ar_http_start_stream(g->http, 200, hs, n);
}

static int front_event(void *ud, const ar_sse_event_t *ev)
{
    ar_gw_req_t *g = ud;
    return g->ctx.front->chunk(g, ev->data, &g->front_out);
}

/*
 * Sends OpenAI stream frames (complete "data: ...\n\n" events) to the client: as they
 * are, or re-read and translated by the front. @return 0 or AR_ECANCELED.
 */
int ar_gw_emit(ar_gw_req_t *g, ar_span_t frames)
{
    if (frames.len == 0)
        return 0;
    ar_gw_stream_begin(g);
    if (!g->ctx.front || g->call.native)
        return ar_http_write(g->http, frames) ? AR_ECANCELED : 0;
    ar_buf_reset(&g->front_out);
    int rc = ar_sse_feed(&g->front_sse, frames, front_event, g);
    if (rc == 0 && g->front_out.len)
        rc = ar_http_write(g->http, ar_buf_span(&g->front_out)) ? AR_ECANCELED : 0;
    return rc;
}

/* The stream ended normally: the provider's closing frames, then the front's. */
void ar_gw_stream_end(ar_gw_req_t *g)
{
    ar_buf_reset(&g->ev_out);
    if (g->prov && ar_provider_end_stream(g->prov, &g->call, &g->ev_out) == 0)
        (void)ar_gw_emit(g, ar_buf_span(&g->ev_out));
    const ar_front_ops_t *front = g->ctx.front;
    if (!front || g->call.native)
        return;
    ar_gw_stream_begin(g);
    ar_buf_reset(&g->front_out);
    int rc = ar_sse_finish(&g->front_sse, front_event, g);
    if (rc == 0)
        rc = front->stream_end(g, &g->front_out);
    if (rc == 0 && g->front_out.len)
        (void)ar_http_write(g->http, ar_buf_span(&g->front_out));
}

/* An SSE `error` event for a stream that cannot go on. */
void ar_gw_stream_error(ar_gw_req_t *g, const char *type, const char *message)
{
    message = ar_redact_str(g->http->pool, message);
    ar_gw_set_reason(g->http, message); /* the status is already 200: this says what broke */
    if (g->ctx.front) {
        ar_buf_reset(&g->front_out);
        if (g->ctx.front->stream_error(g, type, message, &g->front_out) == 0)
            (void)ar_http_write(g->http, ar_buf_span(&g->front_out));
        return;
    }
    ar_buf_t *b = &g->ev_out;
    ar_buf_reset(b);
    int rc = ar_buf_append_str(b, "data: {\"error\":{\"message\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(b, ar_span_cstr(message));
    rc = rc ? rc : ar_buf_append_str(b, "\",\"type\":\"");
    rc = rc ? rc : ar_buf_append_str(b, type);
    rc = rc ? rc : ar_buf_append_str(b, "\",\"code\":null,\"param\":null}}\n\n");
    if (rc == 0)
        (void)ar_http_write(g->http, ar_buf_span(b));
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
    if (g->call.native && g->ctx.front && g->ctx.front->native_seen)
        g->ctx.front->native_seen(g, ev->event, ev->data);
    if (ar_gw_emit(g, out) != 0)
        return AR_ECANCELED;
    /* the last event of a stream may lack its blank line */
    if (rc == AR_PROV_PASS && out.len &&
        !(out.len >= 2 && out.ptr[out.len - 1] == '\n' &&
          (out.ptr[out.len - 2] == '\n' || out.ptr[out.len - 2] == '\r')))
        return ar_gw_emit(g, AR_LIT("\n\n"));
    return 0;
}

static void on_drain(ar_http_request_t *http);

/* Output is written per upstream chunk but flushed once per upstream batch. */
static void mark_unflushed(ar_gw_req_t *g)
{
    if (ar_list_empty(&g->unflushed_link))
        ar_list_insert_tail(&g->gw->unflushed, &g->unflushed_link);
}

static void flush_now(ar_gw_req_t *g)
{
    ar_list_remove(&g->unflushed_link);
    if (g->finished || !ar_http_responded(g->http))
        return;
    if (ar_http_flush(g->http) > AR_HTTP_HIGH_WATER && g->xfer) {
        /* The client reads slower than the upstream writes: hold the upstream. */
        g->paused = true;
        g->http->on_drain = on_drain;
    }
}

void ar_gw_flush_streams(void *gw_worker)
{
    ar_gw_worker_t *gwk = gw_worker;
    while (!ar_list_empty(&gwk->unflushed)) {
        ar_gw_req_t *g = ar_container_of(gwk->unflushed.next, ar_gw_req_t, unflushed_link);
        ar_http_ref(g->http);
        flush_now(g);
        ar_http_unref(g->http);
    }
}

static void on_drain(ar_http_request_t *http)
{
    ar_gw_req_t *g = http->data;
    if (g->paused && g->xfer) {
        g->paused = false;
        ar_transfer_resume(g->xfer);
    }
}

int ar_gw_on_upstream_data(void *ud, ar_span_t data)
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
    if (rc == 0 && !g->finished)
        mark_unflushed(g);
    ar_http_unref(g->http);
    return rc;
}

int ar_gw_stream_finish(ar_gw_req_t *g)
{
    return ar_sse_finish(&g->sse, on_event, g);
}
