/*
 * answer.c: how a relayed answer goes to the client: its headers (content type,
 * x-airouter-*, CORS), `_router` metadata spliced into a JSON body without copying it (a
 * remote airouter's own inside as "upstream"), whole answers in the client's format (a
 * front translates them) and the gateway's own errors. attempt.c decides what to send;
 * stream.c sends streams.
 */
#include <string.h>

#include "core/mem.h"
#include "core/redact.h"
#include "core/str.h"
#include "gateway/gateway_int.h"

const char *ar_gw_served_model(const ar_gw_req_t *g)
{
    const ar_deployment_t *d = g->dep;
    if (!d)
        return "";
    if (d->model && d->model->from_store) {
        for (size_t i = 0; i < g->alias_hits_cnt; i++) {
            if (strcmp(g->alias_hits[i][1], d->model->name) == 0)
                return g->alias_hits[i][0];
        }
        return g->call.public_model ? g->call.public_model : "";
    }
    return d->name;
}

/* `"_router":{...}` (without braces around it) appended to out; a remote airouter's own
 * `_router` (chains) goes inside as "upstream". */
static int append_router_meta(ar_gw_req_t *g, ar_buf_t *out, ar_span_t upstream_meta)
{
    const ar_deployment_t *d = g->dep;
    int rc = ar_buf_append_str(out, "\"_router\":{\"provider\":\"");
    rc = rc ? rc : ar_buf_append_str(out, d ? d->cred->type_name : "");
    rc = rc ? rc : ar_buf_append_str(out, "\",\"credential\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(d ? d->cred->name : ""));
    rc = rc ? rc : ar_buf_append_str(out, "\",\"model_name\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(ar_gw_served_model(g)));
    rc = rc ? rc : ar_buf_append_str(out, "\",\"upstream_model\":\"");
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
        nlen = ar_u64_dec((uint64_t)e->status, num);
        rc = rc ? rc : ar_buf_append_str(out, "\",\"status\":");
        rc = rc ? rc : ar_buf_append(out, num, nlen);
        rc = rc ? rc : ar_buf_append_str(out, ",\"message\":\"");
        rc = rc ? rc : ar_buf_append_json_escaped(out, ar_span_cstr(e->message));
        rc = rc ? rc : ar_buf_append_str(out, "\"}");
    }
    rc = rc ? rc : ar_buf_append_str(out, "]");
    if (upstream_meta.len) {
        rc = rc ? rc : ar_buf_append_str(out, ",\"upstream\":");
        rc = rc ? rc : ar_buf_append_span(out, upstream_meta);
    }
    rc = rc ? rc : ar_buf_append_str(out, "}");
    return rc;
}

/* Finds a top-level `_router` member in a proxy's answer: the whole member (key to value,
 * with one neighbouring comma) and the value. @return false when there is none. */
static bool find_remote_meta(ar_span_t body, ar_span_t *member, ar_span_t *value)
{
    ar_jscan_iter_t it;
    ar_span_t k, v;
    const char *prev_end = NULL;
    if (ar_jscan_object_begin(body, &it) != 0)
        return false;
    while (ar_jscan_object_next(&it, &k, &v)) {
        if (ar_span_eq(k, AR_LIT("_router"))) {
            const char *start = k.ptr - 1; /* the opening quote */
            const char *end = v.ptr + v.len;
            if (prev_end) {
                start = prev_end; /* take the comma before it */
            } else {
                const char *q = end;
                const char *limit = body.ptr + body.len;
                while (q < limit && *q != ',' && *q != '}')
                    q++;
                if (q < limit && *q == ',')
                    end = q + 1; /* first member: take the comma after it */
            }
            *member = ar_span(start, (size_t)(end - start));
            *value = v;
            return true;
        }
        prev_end = v.ptr + v.len;
    }
    return false;
}

/* The response headers of an answer: content type, x-airouter-*, CORS, extra. */
size_t ar_gw_answer_headers(ar_gw_req_t *g, ar_http_header_t *hs, size_t max, bool stream,
                            const ar_http_header_t *extra, size_t extra_cnt)
{
    size_t n = 0;
    if (stream) {
        hs[n++] = (ar_http_header_t){AR_LIT("Content-Type"), AR_LIT("text/event-stream")};
        hs[n++] = (ar_http_header_t){AR_LIT("Cache-Control"), AR_LIT("no-cache")};
        hs[n++] = (ar_http_header_t){AR_LIT("X-Accel-Buffering"), AR_LIT("no")};
    } else {
        hs[n++] = (ar_http_header_t){AR_LIT("Content-Type"), AR_LIT("application/json")};
    }
    if (g->rt->cfg->server.router_metadata && g->dep) {
        hs[n++] =
            (ar_http_header_t){AR_LIT("x-airouter-credential"), ar_span_cstr(g->dep->cred->name)};
        hs[n++] =
            (ar_http_header_t){AR_LIT("x-airouter-model"), ar_span_cstr(ar_gw_served_model(g))};
        char *att = ar_pool_alloc(g->http->pool, 24);
        ar_u64_dec((uint64_t)g->attempts, att);
        hs[n++] = (ar_http_header_t){AR_LIT("x-airouter-attempts"), ar_span_cstr(att)};
    }
    for (size_t i = 0; i < extra_cnt && n < max; i++)
        hs[n++] = extra[i];
    n += ar_gw_common_headers(g->http, g->rt, hs + n, max - n);
    return n;
}

/*
 * Sends a JSON object body, with `_router` spliced in before its closing brace when
 * router_metadata is on; the body itself is never copied.
 */
void ar_gw_send_json(ar_gw_req_t *g, int status, ar_span_t body, const ar_http_header_t *extra,
                     size_t extra_cnt)
{
    ar_http_header_t hs[16];
    size_t n = ar_gw_answer_headers(g, hs, AR_ARRAY_CNT(hs), false, extra, extra_cnt);
    ar_span_t parts[3] = {body, AR_SPAN_NULL, AR_SPAN_NULL};
    size_t nparts = 1;
    ar_span_t remote = AR_SPAN_NULL, remote_member = AR_SPAN_NULL;
    bool chained = g->rt->cfg->server.router_metadata && !g->ctx.front && g->dep &&
                   g->dep->cred->type == AR_CRED_PROXY &&
                   find_remote_meta(body, &remote_member, &remote);
    size_t end = body.len;
    while (end > 0 && (body.ptr[end - 1] == ' ' || body.ptr[end - 1] == '\n' ||
                       body.ptr[end - 1] == '\r' || body.ptr[end - 1] == '\t'))
        end--;
    if (g->rt->cfg->server.router_metadata && !g->ctx.front && end > 0 &&
        body.ptr[end - 1] == '}' && body.ptr[0] == '{') {
        size_t before = end - 1;
        while (before > 0 && (body.ptr[before - 1] == ' ' || body.ptr[before - 1] == '\n' ||
                              body.ptr[before - 1] == '\r' || body.ptr[before - 1] == '\t'))
            before--;
        ar_buf_t *meta = &g->ev_out;
        ar_buf_reset(meta);
        bool empty = before <= 1 ||
                     (chained && remote_member.ptr + remote_member.len >= body.ptr + end - 1 &&
                      remote_member.ptr <= body.ptr + 1);
        int rc = ar_buf_append_str(meta, empty ? "" : ",");
        rc = rc ? rc : append_router_meta(g, meta, remote);
        rc = rc ? rc : ar_buf_append_str(meta, "}");
        if (rc == 0 && chained) {
            /* the body around the remote member, then ours with theirs inside */
            parts[0] = ar_span(body.ptr, (size_t)(remote_member.ptr - body.ptr));
            const char *after = remote_member.ptr + remote_member.len;
            parts[1] = ar_span(after, (size_t)(body.ptr + end - 1 - after));
            parts[2] = ar_buf_span(meta);
            nparts = 3;
        } else if (rc == 0) {
            parts[0] = ar_span(body.ptr, end - 1);
            parts[1] = ar_buf_span(meta);
            nparts = 2;
        }
    }
    g->final_status = status;
    ar_http_respond_parts(g->http, status, hs, n, parts, nparts);
}

/* A successful whole answer (OpenAI chat.completion), in the client's format. */
void ar_gw_send_answer(ar_gw_req_t *g, int status, ar_span_t body)
{
    const ar_front_ops_t *front = g->ctx.front;
    if (front && g->call.native) {
        if (front->native_seen)
            front->native_seen(g, AR_SPAN_NULL, body);
    } else if (front) {
        ar_buf_reset(&g->front_out);
        if (front->whole(g, body, &g->front_out) == 0) {
            body = ar_buf_span(&g->front_out);
        } else {
            status = 502;
            ar_gw_set_reason(g->http, "the upstream answer could not be translated");
            body = ar_gw_error_body(g->http, 502, "api_error", "upstream_error",
                                    "the upstream answer could not be translated");
        }
    }
    ar_gw_send_json(g, status, body, NULL, 0);
}

/* An error answer of ours (final statuses), in the client's format. */
void ar_gw_send_error(ar_gw_req_t *g, int status, const char *type, const char *code,
                      const char *message, const ar_http_header_t *extra, size_t extra_cnt)
{
    message = ar_redact_str(g->http->pool, message);
    ar_gw_set_reason(g->http, message);
    ar_gw_send_json(g, status, ar_gw_error_body(g->http, status, type, code, message), extra,
                    extra_cnt);
}
