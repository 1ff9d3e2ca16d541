/*
 * http1.c: HTTP/1.x request parsing with llhttp. Callbacks copy the target and headers
 * into the connection's header buffer (so the shared read buffer can be reused), enforce
 * the header (431) and body (413) limits and the smuggling rules (400), and pause the
 * parser at the end of each message: one request per connection runs at a time, later
 * pipelined ones wait in order. A request that announces a body is shown to the handler's
 * on_head first, which may refuse it before any body byte is read or reserved.
 */
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/server_int.h"

static ar_conn_t *conn_of(llhttp_t *p)
{
    return p->data;
}

static int fail(ar_conn_t *c, int status, const char *msg)
{
    if (!c->parse_error_status) {
        c->parse_error_status = status;
        c->parse_error_msg = msg;
    }
    return -1;
}

static int count_head(ar_conn_t *c, size_t n)
{
    c->head_bytes += n;
    if (c->head_bytes > c->w->pub.server->opts.max_header_bytes)
        return fail(c, 431, "request header block too large");
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    ar_conn_t *c = conn_of(p);
    c->request_started = true;
    /* A later request's head is due from its first byte (the first one's from the accept,
     * so a connection that sends nothing is held no longer than a slow head). */
    if (!c->head_deadline)
        ar_server__conn_head_begins(c);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    ar_conn_t *c = conn_of(p);
    if (count_head(c, len))
        return -1;
    if (ar_buf_append(&c->hbuf, at, len))
        return fail(c, 431, "request header block too large");
    c->target_len += (uint32_t)len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    ar_conn_t *c = conn_of(p);
    if (count_head(c, len + 4))
        return -1;
    if (c->last_was_value || c->hdrs_cnt == 0) {
        if (c->hdrs_cnt == AR_MAX_HEADERS)
            return fail(c, 431, "too many request headers");
        hdr_ref_t *h = &c->hdrs[c->hdrs_cnt++];
        h->name_off = (uint32_t)c->hbuf.len;
        h->name_len = 0;
        h->val_off = 0;
        h->val_len = 0;
        c->last_was_value = false;
    }
    if (ar_buf_append(&c->hbuf, at, len))
        return fail(c, 431, "request header block too large");
    c->hdrs[c->hdrs_cnt - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    ar_conn_t *c = conn_of(p);
    if (count_head(c, len))
        return -1;
    if (c->hdrs_cnt == 0)
        return fail(c, 400, "header value without a name");
    hdr_ref_t *h = &c->hdrs[c->hdrs_cnt - 1];
    if (!c->last_was_value) {
        h->val_off = (uint32_t)c->hbuf.len;
        c->last_was_value = true;
    }
    if (ar_buf_append(&c->hbuf, at, len))
        return fail(c, 431, "request header block too large");
    h->val_len += (uint32_t)len;
    return 0;
}

static ar_http_method_t method_of(uint8_t m)
{
    switch (m) {
    case HTTP_GET: return AR_HTTP_GET;
    case HTTP_HEAD: return AR_HTTP_HEAD;
    case HTTP_POST: return AR_HTTP_POST;
    case HTTP_PUT: return AR_HTTP_PUT;
    case HTTP_DELETE: return AR_HTTP_DELETE;
    case HTTP_PATCH: return AR_HTTP_PATCH;
    case HTTP_OPTIONS: return AR_HTTP_OPTIONS;
    default: return AR_HTTP_OTHER;
    }
}

static bool valid_request_id(ar_span_t v)
{
    if (v.len == 0 || v.len > 128)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.ptr[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            return false;
    }
    return true;
}

/* Builds the request object from the header buffer: one copy into the request pool. */
static ar_http_request_t *make_request(ar_conn_t *c)
{
    worker_impl_t *w = c->w;
    ar_pool_t *pool = ar_server__pool_get(w);
    ar_http_request_t *req = ar_pool_calloc(pool, sizeof(*req));
    req->pool = pool;
    req->worker = &w->pub;
    req->_conn = c;
    req->_refs = 1;
    req->start_us = ar_now_us();
    /* Copied, not borrowed: a request can outlive its connection (a client that hangs up
     * while a retry timer is pending), and its access line is written at the very end. */
    memcpy(req->_client_ip, c->client_ip, sizeof(req->_client_ip));
    req->client_ip = req->_client_ip;
    req->http_minor = c->parser.http_minor;
    req->method = method_of(c->parser.method);
    const char *mname = llhttp_method_name((llhttp_method_t)c->parser.method);
    req->method_name = ar_span_cstr(mname);

    char *copy = ar_pool_alloc(pool, c->hbuf.len + 1);
    if (c->hbuf.len)
        memcpy(copy, c->hbuf.ptr, c->hbuf.len);
    copy[c->hbuf.len] = '\0';
    req->target = ar_span(copy, c->target_len);
    const char *q = memchr(copy, '?', c->target_len);
    if (q) {
        req->path = ar_span(copy, (size_t)(q - copy));
        req->query = ar_span(q + 1, c->target_len - req->path.len - 1);
    } else {
        req->path = req->target;
        req->query = ar_span(copy + c->target_len, 0);
    }
    req->headers = ar_pool_alloc(pool, sizeof(ar_http_header_t) * (c->hdrs_cnt ? c->hdrs_cnt : 1));
    req->headers_cnt = c->hdrs_cnt;
    for (size_t i = 0; i < c->hdrs_cnt; i++) {
        hdr_ref_t *h = &c->hdrs[i];
        req->headers[i].name = ar_span(copy + h->name_off, h->name_len);
        req->headers[i].value = ar_span_trim(ar_span(copy + h->val_off, h->val_len));
    }
    ar_span_t rid = ar_http_header(req, AR_LIT("x-request-id"));
    if (valid_request_id(rid)) {
        memcpy(req->_rid, rid.ptr,
               rid.len < sizeof(req->_rid) - 1 ? rid.len : sizeof(req->_rid) - 1);
        req->request_id = rid.len < sizeof(req->_rid) ? req->_rid : ar_pool_strdup_span(pool, rid);
    } else {
        ar_server__gen_request_id(w, req->_rid);
        req->request_id = req->_rid;
    }
    return req;
}

static int on_headers_complete(llhttp_t *p)
{
    ar_conn_t *c = conn_of(p);
    c->head_done = true; /* header_timeout is over; idle_timeout watches the body */
    c->head_deadline = 0;
    /* Smuggling: a message framed two ways, or twice, is refused outright. */
    for (size_t i = 0; i < c->hdrs_cnt; i++) {
        ar_span_t name = ar_span(c->hbuf.ptr + c->hdrs[i].name_off, c->hdrs[i].name_len);
        if (ar_span_ieq(name, AR_LIT("content-length")))
            c->cl_count++;
        else if (ar_span_ieq(name, AR_LIT("transfer-encoding")))
            c->te_count++;
    }
    if (c->cl_count > 1)
        return fail(c, 400, "duplicate Content-Length header");
    if (c->cl_count && c->te_count)
        return fail(c, 400, "both Content-Length and Transfer-Encoding present");
    uint64_t max_body = ar_server__max_body(c->w->pub.server);
    if (c->cl_count && p->content_length > max_body)
        return fail(c, 413, "request body too large");

    ar_http_request_t *req = make_request(c);
    c->req = req;
    /* The handler may refuse a request before its body is read (a missing key, an
     * unknown path): then nothing more is read or reserved for it. */
    bool has_body = c->cl_count ? p->content_length > 0 : (p->flags & F_CHUNKED) != 0;
    ar_server_t *srv = c->w->pub.server;
    if (has_body && srv->cbs.on_head) {
        ar_http_ref(req); /* the handler may answer, which releases the server's reference */
        c->in_head = true;
        srv->cbs.on_head(req);
        c->in_head = false;
        bool answered = req->_responded;
        if (answered && !req->_finished && !c->closing) {
            AR_LOG(AR_LOG_ERROR, NULL, "on_head started a stream; closing the connection");
            ar_server__conn_close(c);
        }
        ar_http_unref(req);
        if (c->closing)
            return -1;
        if (answered) {
            c->head_answered = true;
            return -1; /* stops the parser; ar_server__conn_process lingers */
        }
    }
    c->body_len = 0;
    c->body_expected = c->cl_count ? p->content_length : 0;
    /* Memory for the body is taken as its bytes arrive, never for what is only declared:
     * a small body gets its exact size now, a larger one grows (doubling, up to the
     * declared length) in body_dyn; a chunked one grows up to max_body. */
    if (c->body_expected && c->body_expected <= BODY_FIRST_BYTES)
        c->body_fixed = ar_pool_alloc(req->pool, c->body_expected);
    else
        c->body_dyn.max = c->body_expected ? c->body_expected : max_body;
    ar_span_t expect = ar_http_header(req, AR_LIT("expect"));
    if (expect.len && ar_span_ieq(expect, AR_LIT("100-continue")) && req->http_minor >= 1 &&
        (c->body_expected || c->te_count)) {
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
        if (ar_server__conn_write(c, &b, 1) != 0)
            return -1; /* the connection is closed: no body may follow into a freed request */
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    ar_conn_t *c = conn_of(p);
    if (c->body_fixed) {
        if (len > c->body_expected - c->body_len)
            return fail(c, 400, "body longer than Content-Length");
        memcpy(c->body_fixed + c->body_len, at, len);
        c->body_len += len;
        return 0;
    }
    if (ar_buf_append(&c->body_dyn, at, len) != 0) {
        if (c->body_expected)
            return fail(c, 400, "body longer than Content-Length");
        return fail(c, 413, "request body too large");
    }
    c->body_len += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    ar_conn_t *c = conn_of(p);
    ar_http_request_t *req = c->req;
    if (c->body_fixed) {
        req->body = ar_span(c->body_fixed, c->body_len);
    } else if (c->body_dyn.len) {
        /* Hand the grown body's memory to the request. */
        ar_buf_t *b = ar_pool_alloc(req->pool, sizeof(*b));
        *b = c->body_dyn;
        ar_buf_init(&c->body_dyn, 0);
        ar_pool_cleanup_add(req->pool, (ar_pool_cleanup_cb)ar_buf_dispose, b);
        req->body = ar_buf_span(b);
    }
    c->keep_alive = llhttp_should_keep_alive(p) != 0;
    c->message_complete = true;
    return HPE_PAUSED;
}

static llhttp_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void settings_init(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
}

void ar_server__reset_request_state(ar_conn_t *c)
{
    ar_buf_reset(&c->hbuf);
    c->target_len = 0;
    c->hdrs_cnt = 0;
    c->last_was_value = false;
    c->head_bytes = 0;
    c->cl_count = 0;
    c->te_count = 0;
    c->body_fixed = NULL;
    c->body_len = 0;
    c->body_expected = 0;
    ar_buf_dispose(&c->body_dyn);
    c->message_complete = false;
    c->request_started = false;
    c->head_done = false;
    if (c->req && !c->processing) {
        /* parsed but never dispatched: it has only the server's reference */
        ar_http_request_t *req = c->req;
        c->req = NULL;
        req->_conn = NULL;
        req->_finished = true;
        ar_http_unref(req);
    }
}

void ar_server__parser_init(ar_conn_t *c)
{
    pthread_once(&settings_once, settings_init);
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    ar_buf_init(&c->hbuf, 0);
    c->hbuf.max = (size_t)c->w->pub.server->opts.max_header_bytes + 1024;
}

static void dispatch(ar_conn_t *c)
{
    ar_http_request_t *req = c->req;
    /* The request now owns its state; the parser state is reset for the next one. */
    c->req = NULL;
    ar_server__reset_request_state(c);
    c->req = req;
    c->processing = true;
    atomic_fetch_add(&c->w->in_flight, 1);
    ar_server__read_timer_set(c, -1);
    ar_server_t *srv = c->w->pub.server;
    if (c->w->draining) {
        c->keep_alive = false;
        ar_span_t body = ar_http_error_body(req, "server is shutting down",
                                            "service_unavailable_error", "shutting_down");
        ar_http_respond_json(req, 503, NULL, 0, body);
        return;
    }
    srv->cbs.on_request(req);
}

void ar_server__conn_process(ar_conn_t *c, const char *data, size_t len)
{
    /* Still paused after a finished request: its answer closes the connection once
     * written, so bytes sent after it are ignored (not parsed, not answered with 400). */
    if (!c->processing && llhttp_get_errno(&c->parser) == HPE_PAUSED)
        return;
    while (len > 0 && !c->closing) {
        llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
        if (e == HPE_OK) {
            if (c->request_started)
                ar_server__conn_arm_read(c); /* a stall while receiving is cut too */
            return;
        }
        if (e != HPE_PAUSED || !c->message_complete) {
            if (c->closing)
                return;
            if (c->head_answered) {
                ar_server__conn_linger(c); /* the body, if it comes, is dropped */
                return;
            }
            if (c->parse_error_status) {
                ar_server__conn_fail(c, c->parse_error_status, c->parse_error_msg);
            } else {
                const char *reason = llhttp_get_error_reason(&c->parser);
                AR_DEBUG(NULL, "bad request from %s: %s", c->client_ip, reason ? reason : "");
                ar_server__conn_fail(c, 400, "malformed HTTP request");
            }
            return;
        }
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = pos ? (size_t)(pos - data) : len;
        if (used > len)
            used = len;
        data += used;
        len -= used;
        c->in_dispatch = true;
        dispatch(c);
        c->in_dispatch = false;
        if (c->closing)
            return;
        if (c->processing) {
            /* Answered later: keep the rest for when it finishes. */
            if (len && ar_buf_append(&c->pending_in, data, len) != 0)
                ar_server__conn_close(c);
            return;
        }
        if (c->close_after_write)
            return;
        llhttp_resume(&c->parser);
    }
    if (!c->closing && !c->processing && !c->request_started)
        ar_server__conn_arm_read(c);
}
