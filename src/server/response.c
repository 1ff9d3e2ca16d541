/*
 * response.c: writing responses. A whole response goes out as one iovec write of head and
 * body; a stream assembles each chunk in the connection's output buffer and sends it with
 * its chunk framing on ar_http_flush. Also: request references, the Date cache and
 * request ids.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "server/server_int.h"

const char *ar_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

const char *ar_server__date(worker_impl_t *w, size_t *len)
{
    time_t now = time(NULL);
    if (now != w->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        w->date_len =
            strftime(w->date, sizeof(w->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        w->date_sec = now;
    }
    *len = w->date_len;
    return w->date;
}

void ar_server__gen_request_id(worker_impl_t *w, char out[40])
{
    /* A random per-worker prefix plus a counter: unique without a syscall per request. */
    uint64_t n = ++w->rid_counter;
    ar_u64_hex(w->rid_prefix, out, 16);
    ar_u64_hex(n, out + 16, 10);
    ar_u64_hex((uint64_t)w->pub.id, out + 26, 2);
    out[28] = '\0';
}

void ar_server__buf_split(uv_buf_t *out, unsigned *n, const char *p, size_t len, size_t max)
{
    while (len > 0) {
        size_t piece = len < max ? len : max;
        out[(*n)++] = uv_buf_init((char *)p, (unsigned)piece);
        p += piece;
        len -= piece;
    }
}

ar_span_t ar_http_header(const ar_http_request_t *req, ar_span_t name)
{
    for (size_t i = 0; i < req->headers_cnt; i++) {
        if (ar_span_ieq(req->headers[i].name, name))
            return req->headers[i].value;
    }
    return AR_SPAN_NULL;
}

void ar_http_ref(ar_http_request_t *req)
{
    req->_refs++;
}

void ar_http_unref(ar_http_request_t *req)
{
    if (--req->_refs > 0)
        return;
    worker_impl_t *w = worker_impl(req->worker);
    ar_server__pool_put(w, req->pool);
}

ar_span_t ar_http_error_body(ar_http_request_t *req, const char *message, const char *type,
                             const char *code)
{
    ar_buf_t b;
    ar_buf_init(&b, 1 << 20);
    int rc = ar_buf_append_str(&b, "{\"error\":{\"message\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(&b, ar_span_cstr(message));
    rc = rc ? rc : ar_buf_append_str(&b, "\",\"type\":\"");
    rc = rc ? rc : ar_buf_append_json_escaped(&b, ar_span_cstr(type));
    if (code) {
        rc = rc ? rc : ar_buf_append_str(&b, "\",\"code\":\"");
        rc = rc ? rc : ar_buf_append_json_escaped(&b, ar_span_cstr(code));
        rc = rc ? rc : ar_buf_append_str(&b, "\",\"param\":null}}");
    } else {
        rc = rc ? rc : ar_buf_append_str(&b, "\",\"code\":null,\"param\":null}}");
    }
    ar_span_t out = AR_SPAN_NULL;
    if (rc == 0) {
        char *copy = ar_pool_strndup(req->pool, b.ptr, b.len);
        out = ar_span(copy, b.len);
    }
    ar_buf_dispose(&b);
    return out;
}

/* RFC 9110 tchar: the bytes a header name may hold. A table, not strchr per byte: every
 * header of every response passes here. */
static const bool tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,  ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1,  ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,  ['v'] = 1, ['w'] = 1,
    ['x'] = 1, ['y'] = 1, ['z'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,  ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,  ['L'] = 1, ['M'] = 1,
    ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,  ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
};

/* A header may be sent only when its name is a token and its value has no control
 * characters but tabs (RFC 9110 section 5.5). */
static bool header_ok(const ar_http_header_t *h)
{
    if (h->name.len == 0 || ar_span_has_ctl(h->value, false))
        return false;
    for (size_t i = 0; i < h->name.len; i++) {
        if (!tchar[(unsigned char)h->name.ptr[i]])
            return false;
    }
    return true;
}

/* Appends the status line and common headers to out. */
static int build_head(ar_http_request_t *req, ar_conn_t *c, int status,
                      const ar_http_header_t *headers, size_t cnt, bool chunked, size_t content_len,
                      ar_buf_t *out)
{
    size_t dlen;
    const char *date = ar_server__date(c->w, &dlen);
    char line[16] = "HTTP/1.1 000 ";
    line[7] = req->http_minor ? '1' : '0';
    int st = status >= 100 && status <= 999 ? status : 500;
    line[9] = (char)('0' + st / 100);
    line[10] = (char)('0' + st / 10 % 10);
    line[11] = (char)('0' + st % 10);
    int rc = ar_buf_append(out, line, 13);
    rc = rc ? rc : ar_buf_append_str(out, ar_http_reason(status));
    rc = rc ? rc : ar_buf_append(out, "\r\n", 2);
    rc = rc ? rc : ar_buf_append(out, date, dlen);
    for (size_t i = 0; i < cnt && !rc; i++) {
        if (!header_ok(&headers[i])) {
            /* Whatever produced it, a value with CR or LF would split the head (header
             * injection, response splitting): such a header is never sent. */
            ar_span_t shown =
                ar_span_has_ctl(headers[i].name, true) ? AR_LIT("(unprintable)") : headers[i].name;
            AR_LOG(AR_LOG_ERROR, NULL, "response header %.*s dropped: invalid characters",
                   (int)(shown.len > 64 ? 64 : shown.len), shown.ptr);
            continue;
        }
        rc = ar_buf_append_span(out, headers[i].name);
        rc = rc ? rc : ar_buf_append(out, ": ", 2);
        rc = rc ? rc : ar_buf_append_span(out, headers[i].value);
        rc = rc ? rc : ar_buf_append(out, "\r\n", 2);
    }
    if (!rc && chunked)
        rc = ar_buf_append_str(out, "Transfer-Encoding: chunked\r\n");
    else if (!rc) {
        char num[24];
        size_t nlen = ar_u64_dec(content_len, num);
        rc = ar_buf_append(out, "Content-Length: ", 16);
        rc = rc ? rc : ar_buf_append(out, num, nlen);
        rc = rc ? rc : ar_buf_append(out, "\r\n", 2);
    }
    rc = rc ? rc : ar_buf_append_str(out, "x-request-id: ");
    rc = rc ? rc : ar_buf_append_str(out, req->request_id);
    rc = rc ? rc : ar_buf_append(out, "\r\n", 2);
    bool close = !c->keep_alive || c->close_after_write || c->w->draining;
    if (close)
        rc = rc ? rc : ar_buf_append_str(out, "Connection: close\r\n");
    else if (req->http_minor == 0)
        rc = rc ? rc : ar_buf_append_str(out, "Connection: keep-alive\r\n");
    rc = rc ? rc : ar_buf_append(out, "\r\n", 2);
    return rc;
}

void ar_http_respond_parts(ar_http_request_t *req, int status, const ar_http_header_t *headers,
                           size_t cnt, const ar_span_t *parts, size_t nparts)
{
    ar_conn_t *c = req->_conn;
    if (req->_responded || req->_finished)
        return;
    req->_responded = true;
    req->_status = status;
    if (!c)
        return;
    size_t body_len = 0;
    for (size_t i = 0; i < nparts; i++)
        body_len += parts[i].len;
    if (c->in_head) {
        /* Refused at its head: the body is still on its way and will not be read, so this
         * answer ends the connection (said in the head, done by ar_server__conn_linger). */
        c->close_after_write = true;
        c->lingering = true;
    }
    ar_buf_reset(&c->out);
    if (build_head(req, c, status, headers, cnt, false, body_len, &c->out) != 0) {
        ar_server__conn_close(c);
        return;
    }
    /* One piece for the head, and each part split where it exceeds what a uv_buf_t holds. */
    size_t pieces = 1;
    for (size_t i = 0; i < nparts; i++)
        pieces += ar_server__buf_pieces(parts[i].len, UV_BUF_PIECE_MAX);
    uv_buf_t small[8];
    uv_buf_t *bufs =
        pieces <= AR_ARRAY_CNT(small) ? small : ar_pool_alloc(req->pool, sizeof(uv_buf_t) * pieces);
    unsigned n = 0;
    ar_server__buf_split(bufs, &n, c->out.ptr, c->out.len, UV_BUF_PIECE_MAX);
    if (req->method != AR_HTTP_HEAD) {
        for (size_t i = 0; i < nparts; i++)
            ar_server__buf_split(bufs, &n, parts[i].ptr, parts[i].len, UV_BUF_PIECE_MAX);
    }
    req->_bytes_out = body_len;
    if (req->_hold_end) {
        size_t total = 0;
        for (unsigned i = 0; i < n; i++)
            total += bufs[i].len;
        char *copy = ar_pool_alloc(req->pool, total ? total : 1);
        size_t off = 0;
        for (unsigned i = 0; i < n; i++) {
            memcpy(copy + off, bufs[i].base, bufs[i].len);
            off += bufs[i].len;
        }
        req->_held_out = ar_span(copy, total);
        req->_held = 1;
        ar_buf_reset(&c->out);
        return;
    }
    ar_http_ref(req);
    int rc = ar_server__conn_write(c, bufs, n);
    if (req->_conn) {
        ar_buf_reset(&c->out);
        if (rc == 0 && c->in_head)
            ar_server__head_answered(c, req);
        else if (rc == 0)
            ar_server__request_finished(c, req);
    }
    ar_http_unref(req);
}

void ar_http_respond(ar_http_request_t *req, int status, const ar_http_header_t *headers,
                     size_t cnt, ar_span_t body)
{
    ar_http_respond_parts(req, status, headers, cnt, &body, 1);
}

void ar_http_respond_json(ar_http_request_t *req, int status, const ar_http_header_t *headers,
                          size_t cnt, ar_span_t body)
{
    ar_http_header_t hs[32];
    size_t n = 0;
    hs[n++] = (ar_http_header_t){AR_LIT("Content-Type"), AR_LIT("application/json")};
    for (size_t i = 0; i < cnt && n < AR_ARRAY_CNT(hs); i++)
        hs[n++] = headers[i];
    ar_http_respond(req, status, hs, n, body);
}

void ar_http_start_stream(ar_http_request_t *req, int status, const ar_http_header_t *headers,
                          size_t cnt)
{
    ar_conn_t *c = req->_conn;
    if (req->_responded || req->_finished)
        return;
    req->_responded = true;
    req->_streaming = true;
    req->_status = status;
    if (!c)
        return;
    ar_buf_reset(&c->out);
    if (build_head(req, c, status, headers, cnt, true, 0, &c->out) != 0) {
        ar_server__conn_close(c);
        return;
    }
    c->chunk_start = c->out.len;
}

int ar_http_write(ar_http_request_t *req, ar_span_t data)
{
    ar_conn_t *c = req->_conn;
    if (!c || !req->_streaming || req->_finished)
        return AR_ECANCELED;
    if (ar_buf_append_span(&c->out, data) != 0) {
        ar_server__conn_close(c);
        return AR_ECANCELED;
    }
    req->_bytes_out += data.len;
    return 0;
}

/* The stream's head and chunk live in c->out, which never exceeds one uv_buf_t piece. */
_Static_assert(OUT_BUF_MAX <= UV_BUF_PIECE_MAX, "a stream chunk must fit one uv_buf_t");

/* Sends the unsent head (if any), the pending chunk with its framing, and, when last,
 * the terminating chunk, as one write. */
static int send_chunk(ar_http_request_t *req, ar_conn_t *c, bool last)
{
    size_t data_len = c->out.len - c->chunk_start;
    char size_line[24];
    int sl = data_len ? snprintf(size_line, sizeof(size_line), "%zx\r\n", data_len) : 0;
    uv_buf_t bufs[5];
    unsigned n = 0;
    if (c->chunk_start)
        bufs[n++] = uv_buf_init(c->out.ptr, (unsigned)c->chunk_start);
    if (req->method != AR_HTTP_HEAD) {
        if (data_len) {
            bufs[n++] = uv_buf_init(size_line, (unsigned)sl);
            bufs[n++] = uv_buf_init(c->out.ptr + c->chunk_start, (unsigned)data_len);
            bufs[n++] = uv_buf_init("\r\n", 2);
        }
        if (last)
            bufs[n++] = uv_buf_init("0\r\n\r\n", 5);
    }
    int rc = n ? ar_server__conn_write(c, bufs, n) : 0;
    if (req->_conn) {
        ar_buf_reset(&c->out);
        c->chunk_start = 0;
    }
    return rc;
}

size_t ar_http_flush(ar_http_request_t *req)
{
    ar_conn_t *c = req->_conn;
    if (!c || !req->_streaming || c->out.len == 0 || req->_held)
        return c ? c->wq_bytes : 0;
    ar_http_ref(req);
    send_chunk(req, c, false);
    size_t queued = req->_conn ? c->wq_bytes : 0;
    ar_http_unref(req);
    return queued;
}

void ar_http_end_stream(ar_http_request_t *req)
{
    if (req->_finished || req->_held)
        return;
    if (!req->_streaming)
        ar_http_start_stream(req, 200, NULL, 0);
    ar_conn_t *c = req->_conn;
    if (!c)
        return;
    if (req->_hold_end) {
        req->_held = 2; /* c->out keeps the pending bytes until the release */
        return;
    }
    ar_http_ref(req);
    int rc = send_chunk(req, c, true);
    if (rc == 0 && req->_conn)
        ar_server__request_finished(c, req);
    ar_http_unref(req);
}

void ar_http_hold_end(ar_http_request_t *req)
{
    req->_hold_end = true;
}

void ar_http_release_end(ar_http_request_t *req)
{
    uint8_t held = req->_held;
    req->_hold_end = false;
    req->_held = 0;
    ar_conn_t *c = req->_conn;
    if (!held || !c || req->_finished)
        return;
    ar_http_ref(req);
    int rc;
    if (held == 1) {
        uv_buf_t bufs[8];
        unsigned n = 0;
        ar_server__buf_split(bufs, &n, req->_held_out.ptr, req->_held_out.len, UV_BUF_PIECE_MAX);
        rc = ar_server__conn_write(c, bufs, n);
    } else {
        rc = send_chunk(req, c, true);
    }
    if (rc == 0 && req->_conn)
        ar_server__request_finished(c, req);
    ar_http_unref(req);
}
