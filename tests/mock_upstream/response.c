/*
 * response.c: builds the bytes of a response in the connection's out buffer and sends them
 * with the timing the directives ask for. A fixed-length body is written first, behind room
 * reserved for the head, and the head is then copied in front of it, so a response is one
 * contiguous buffer sent with one write. A stream is the head followed by events, each one
 * HTTP chunk; the event boundaries let latency, chunk_delay and reset pace or cut it. Wire
 * formats (openai.c) call the builders here; they never write to the socket themselves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define CHUNK_HEAD_RESERVE 10 /* 8 hex digits + CRLF */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Site Overloaded";
    default: return "Status";
    }
}

/* Writes the status line and headers. content_length < 0 means a stream.
 * @return the head's length, or 0 when it did not fit (cannot happen with our fields). */
static size_t format_head(mock_req_t *req, int status, const char *content_type,
                          int64_t content_length, char *dst, size_t cap)
{
    mock_conn_t *c = req->conn;
    mock_buf_t h;

    mock_buf_init_fixed(&h, dst, cap);
    mock_buf_add(&h, "HTTP/1.1 ", 9);
    mock_buf_add_u64(&h, (uint64_t)status);
    mock_buf_addc(&h, ' ');
    mock_buf_adds(&h, reason_phrase(status));
    mock_buf_add(&h, "\r\nContent-Type: ", 16);
    mock_buf_adds(&h, content_type);
    if (content_length >= 0) {
        mock_buf_add(&h, "\r\nContent-Length: ", 18);
        mock_buf_add_u64(&h, (uint64_t)content_length);
    } else {
        mock_buf_adds(&h, "\r\nCache-Control: no-cache");
        if (c->chunked) {
            mock_buf_adds(&h, "\r\nTransfer-Encoding: chunked");
        }
    }
    if (req->dirs.retry_after_s >= 0) {
        mock_buf_adds(&h, "\r\nRetry-After: ");
        mock_buf_add_u64(&h, (uint64_t)req->dirs.retry_after_s);
    }
    if (req->dirs.header.ptr != NULL) {
        mock_buf_add(&h, "\r\n", 2);
        mock_buf_add_span(&h, req->dirs.header);
    }
    if (!req->keep_alive) {
        mock_buf_adds(&h, "\r\nConnection: close");
    } else if (req->http_minor == 0) {
        mock_buf_adds(&h, "\r\nConnection: keep-alive");
    }
    mock_buf_add(&h, "\r\n\r\n", 4);
    return h.failed ? 0 : h.len;
}

static void add_bound(mock_conn_t *c, size_t off)
{
    if (c->bounds_cnt == c->bounds_cap) {
        size_t cap = c->bounds_cap ? c->bounds_cap * 2 : 64;
        size_t *p = realloc(c->bounds, cap * sizeof(*p));
        if (p == NULL) {
            c->out.failed = 1;
            return;
        }
        c->bounds = p;
        c->bounds_cap = cap;
    }
    c->bounds[c->bounds_cnt++] = off;
}

/* A directive status below 400 replaces the success status (errors never get here). */
static int effective_status(const mock_req_t *req, int status)
{
    if (status < 300 && req->dirs.status >= 100 && req->dirs.status < 400) {
        return req->dirs.status;
    }
    return status;
}

/* The response did not fit (or memory ran out): answer a small 500 instead, or give up and
 * leave no bounds, which makes mock_resp_start() close the connection. */
static void replace_with_500(mock_req_t *req)
{
    mock_conn_t *c = req->conn;

    c->out.len = 0;
    c->out.failed = 0;
    c->bounds_cnt = 0;
    c->is_stream = 0;
    if (c->fallback) {
        return;
    }
    c->fallback = 1;
    mock_request_error(req, 500, "server_error", NULL, "mock: response too large");
    c->fallback = 0;
}

mock_buf_t *mock_resp_begin(mock_req_t *req)
{
    mock_conn_t *c = req->conn;
    mock_buf_t *o = &c->out;

    o->len = 0;
    o->failed = 0;
    c->bounds_cnt = 0;
    c->mid = 0;
    c->is_stream = 0;
    if (mock_buf_reserve(o, MOCK_RESP_HEAD_BYTES + 2048) == 0) {
        o->len = MOCK_RESP_HEAD_BYTES;
    }
    return o;
}

void mock_resp_finish(mock_req_t *req, int status, const char *content_type)
{
    mock_conn_t *c = req->conn;
    mock_buf_t *o = &c->out;
    char head[MOCK_RESP_HEAD_BYTES];
    size_t body_start = MOCK_RESP_HEAD_BYTES;
    size_t body_len;
    size_t hl;

    if (o->failed) {
        replace_with_500(req);
        return;
    }
    status = effective_status(req, status);
    body_len = o->len - body_start;
    /* malformed=1: cut a successful body in half, which can never be valid JSON. */
    if (req->dirs.malformed == 1 && status < 300 && body_len > 1) {
        body_len /= 2;
        o->len = body_start + body_len;
    }
    if (status == 204 || status == 304) {
        body_len = 0; /* these never carry a body */
        o->len = body_start;
    }
    hl = format_head(req, status, content_type, (int64_t)body_len, head, sizeof(head));
    if (hl == 0) {
        replace_with_500(req);
        return;
    }
    memcpy(o->data + body_start - hl, head, hl);
    c->bounds_cnt = 0;
    add_bound(c, body_start - hl);
    add_bound(c, body_start);
    add_bound(c, o->len);
    c->mid = body_start + body_len / 2;
    req->status = status;
    if (o->failed) {
        replace_with_500(req);
    }
}

void mock_resp_simple(mock_req_t *req, int status, const char *content_type, mock_span_t body)
{
    mock_buf_t *o = mock_resp_begin(req);
    mock_buf_add_span(o, body);
    mock_resp_finish(req, status, content_type);
}

void mock_resp_json(mock_req_t *req, int status, const json_t *body)
{
    mock_buf_t *o = mock_resp_begin(req);
    size_t n = json_dumpb(body, NULL, 0, JSON_COMPACT);

    if (n == 0 || mock_buf_reserve(o, n) != 0) {
        o->failed = 1;
    } else {
        o->len += json_dumpb(body, o->data + o->len, n, JSON_COMPACT);
    }
    mock_resp_finish(req, status, "application/json");
}

void mock_resp_stream_begin(mock_req_t *req, int status, const char *content_type)
{
    mock_conn_t *c = req->conn;
    mock_buf_t *o = &c->out;
    char head[MOCK_RESP_HEAD_BYTES];
    size_t hl;

    o->len = 0;
    o->failed = 0;
    c->bounds_cnt = 0;
    c->mid = 0;
    c->is_stream = 1;
    /* HTTP/1.0 has no chunked encoding: the stream then ends when the connection does. */
    c->chunked = req->http_minor >= 1;
    if (!c->chunked) {
        req->keep_alive = 0;
    }
    status = effective_status(req, status);
    hl = format_head(req, status, content_type, -1, head, sizeof(head));
    mock_buf_add(o, head, hl);
    add_bound(c, 0);
    add_bound(c, o->len);
    req->status = status;
}

mock_buf_t *mock_resp_event_begin(mock_req_t *req)
{
    mock_conn_t *c = req->conn;
    mock_buf_t *o = &c->out;

    c->ev_start = o->len;
    if (c->chunked && mock_buf_reserve(o, CHUNK_HEAD_RESERVE + 256) == 0) {
        o->len += CHUNK_HEAD_RESERVE;
    }
    return o;
}

void mock_resp_event_end(mock_req_t *req)
{
    mock_conn_t *c = req->conn;
    mock_buf_t *o = &c->out;

    if (o->failed) {
        return;
    }
    if (c->chunked) {
        size_t payload = o->len - c->ev_start - CHUNK_HEAD_RESERVE;
        char hex[CHUNK_HEAD_RESERVE + 1];
        int hl = snprintf(hex, sizeof(hex), "%zx\r\n", payload);

        /* The size is known only now: move the payload up against its exact-size line. */
        memmove(o->data + c->ev_start + hl, o->data + c->ev_start + CHUNK_HEAD_RESERVE, payload);
        memcpy(o->data + c->ev_start, hex, (size_t)hl);
        o->len = c->ev_start + (size_t)hl + payload;
        mock_buf_add(o, "\r\n", 2);
    }
    add_bound(c, o->len);
}

void mock_resp_mark_mid(mock_req_t *req)
{
    req->conn->mid = req->conn->out.len;
}

void mock_resp_stream_finish(mock_req_t *req)
{
    mock_conn_t *c = req->conn;
    mock_buf_t *o = &c->out;

    if (c->chunked) {
        /* The terminating chunk travels with the last event, so it needs no pacing step. */
        mock_buf_add(o, "0\r\n\r\n", 5);
        if (c->bounds_cnt > 2) {
            c->bounds[c->bounds_cnt - 1] = o->len;
        } else {
            add_bound(c, o->len);
        }
    }
    if (o->failed) {
        replace_with_500(req);
    }
}

/* ---- sending ---- */

static void count_status(mock_conn_t *c)
{
    mock_req_t *req = &c->req;
    if (c->head_counted || !req->counted) {
        return;
    }
    c->head_counted = 1;
    if (req->status > 0 && req->status < MOCK_STATUS_MAX) {
        mock_stat_add(&c->worker->stats.by_status[req->status], 1);
    }
}

static void resp_step(mock_conn_t *c)
{
    size_t last = c->bounds_cnt - 1;
    size_t target = c->bounds[last];

    if (c->pace_ms > 0) {
        /* The first step carries the head and the first event together. */
        size_t idx = (size_t)c->step + 2;
        target = c->bounds[idx < last ? idx : last];
    }
    if (target > c->cut) {
        target = c->cut;
    }
    if (c->send_pos >= target) {
        mock_conn_reset(c); /* only reached at the cut */
        return;
    }
    if (target >= c->bounds[1]) {
        count_status(c);
    }
    c->step++;
    c->send_target = target;
    mock_conn_write(c, c->send_pos, target);
}

static void on_timer(uv_timer_t *t)
{
    resp_step(t->data);
}

void mock_resp_sent(mock_conn_t *c)
{
    c->send_pos = c->send_target;
    if (c->send_pos >= c->cut) {
        mock_conn_reset(c);
        return;
    }
    if (c->send_pos >= c->bounds[c->bounds_cnt - 1]) {
        mock_conn_response_done(c);
        return;
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)c->pace_ms, 0);
}

void mock_resp_start(mock_req_t *req)
{
    mock_conn_t *c = req->conn;
    const mock_dirs_t *d = &req->dirs;

    if (c->closing) {
        return;
    }
    if (d->hang == 1) {
        c->hanging = 1; /* answered never; the connection ends when the client leaves */
        return;
    }
    if (c->bounds_cnt < 3) {
        mock_conn_reset(c); /* nothing could be built */
        return;
    }
    c->send_pos = c->bounds[0];
    c->send_target = c->send_pos;
    c->cut = SIZE_MAX;
    c->step = 0;
    c->pace_ms = c->is_stream && d->chunk_delay_ms > 0 ? d->chunk_delay_ms : 0;
    switch (d->reset) {
    case MOCK_RESET_BEFORE_HEADERS: c->cut = c->bounds[0]; break;
    case MOCK_RESET_AFTER_HEADERS: c->cut = c->bounds[1]; break;
    case MOCK_RESET_MID_STREAM: c->cut = c->mid > c->bounds[1] ? c->mid : c->bounds[1]; break;
    default: break;
    }
    if (d->latency_ms > 0) {
        uv_timer_start(&c->timer, on_timer, (uint64_t)d->latency_ms, 0);
        return;
    }
    resp_step(c);
}
