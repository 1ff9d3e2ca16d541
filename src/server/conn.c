/*
 * conn.c: one client connection: accept (counted against max_connections, refused with a
 * 503 over it), reads, the write queue, timers (idle, header deadline, write stall,
 * linger) and close. A connection is one allocation embedding its tcp handle, both timers
 * and the llhttp parser; it is freed in the last close callback. Writes try the socket
 * first (uv_try_write) and queue a copy only of what it did not take, so the common
 * response costs one syscall and no allocation.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/server_int.h"

typedef struct write_req {
    uv_write_t req;
    ar_conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

static void on_handle_closed(uv_handle_t *h)
{
    ar_conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    if (c->counted) {
        ar_server_t *srv = c->w->pub.server;
        atomic_fetch_sub(c->refused ? &srv->conns_refusing : &srv->conns_open, 1);
    }
    ar_list_remove(&c->link);
    ar_buf_dispose(&c->hbuf);
    ar_buf_dispose(&c->body_dyn);
    ar_buf_dispose(&c->pending_in);
    ar_buf_dispose(&c->out);
    ar_free(c);
}

void ar_server__conn_close(ar_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    ar_http_request_t *req = c->req;
    if (req) {
        if (c->processing)
            ar_server__request_abort(req, AR_ECANCELED);
        else
            ar_server__reset_request_state(c); /* parsed partly, never dispatched */
    }
    c->req = NULL;
    uv_timer_stop(&c->read_timer.timer);
    uv_timer_stop(&c->write_timer);
    uv_close((uv_handle_t *)&c->read_timer.timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->write_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_read_timeout(uv_timer_t *t)
{
    ar_conn_t *c = t->data;
    if (!ar_lazy_timer_expired(&c->read_timer))
        return; /* disarmed since, or fired early and re-armed */
    if (c->request_started && !c->processing) {
        /* A slow client: tell it why, then close. */
        bool head_late =
            !c->head_done && c->head_deadline && uv_now(&c->w->loop) >= c->head_deadline;
        ar_server__conn_fail(c, 408,
                             head_late ? "request head not received within header_timeout"
                                       : "request not received in time");
        return;
    }
    ar_server__conn_close(c); /* idle, or never sent a byte of a request: closed silently */
}

static void arm_write_timer(ar_conn_t *c);
static void refuse(ar_conn_t *c);

#define LINGER_MS 3000

static void on_linger_timeout(uv_timer_t *t)
{
    ar_server__conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    ar_conn_t *c = req->data;
    if (status < 0 && !c->closing)
        ar_server__conn_close(c);
}

/*
 * After an error answer to a client that may still be sending (a 413 while its body is
 * on the way), closing at once would reset the connection and the client would lose the
 * answer. Instead, like nginx's lingering close: send FIN once the answer is out, read
 * and drop whatever still comes, and close at EOF or after LINGER_MS.
 */
static void linger_start(ar_conn_t *c)
{
    if (c->closing || c->linger_started)
        return;
    c->linger_started = true;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        ar_server__conn_close(c);
        return;
    }
    ar_lazy_timer_repurpose(&c->read_timer);
    uv_timer_start(&c->read_timer.timer, on_linger_timeout, LINGER_MS, 0);
}

/* Bytes of the queued writes that the socket has taken so far. */
static uint64_t wq_written(ar_conn_t *c)
{
    return c->wq_total - uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
}

static void on_write_timeout(uv_timer_t *t)
{
    ar_conn_t *c = t->data;
    /* One big uv_write completes only when all of it is sent, so on_write_done alone
     * cannot see a slow reader's progress: any byte taken since arming is progress. */
    if (wq_written(c) > c->wq_mark) {
        arm_write_timer(c);
        return;
    }
    AR_LOG(AR_LOG_INFO, NULL, "closing connection from %s: client stopped reading", c->client_ip);
    ar_server__conn_close(c);
}

void ar_server__conn_head_begins(ar_conn_t *c)
{
    int64_t ms = ar_server__header_ms(c->w->pub.server);
    c->head_deadline = ms > 0 ? uv_now(&c->w->loop) + (uint64_t)ms : 0;
}

void ar_server__conn_arm_read(ar_conn_t *c)
{
    int64_t idle = ar_server__idle_ms(c->w->pub.server);
    int64_t ms = idle > 0 ? idle : -1; /* -1: no timer */
    /* While a head is awaited, received bytes re-arm the idle clock but never its absolute
     * deadline: a client dribbling one byte at a time cannot hold the connection. */
    if (!c->head_done && c->head_deadline) {
        uint64_t now = uv_now(&c->w->loop);
        int64_t left = c->head_deadline > now ? (int64_t)(c->head_deadline - now) : 0;
        if (ms < 0 || left < ms)
            ms = left;
    }
    /* A connection whose answer is still going out is not idle: the write timer watches
     * it, and on_write_done starts this clock once the output has drained. */
    if (ms >= 0 && (c->wq_bytes == 0 || c->request_started))
        ar_server__read_timer_set(c, ms);
    else
        ar_server__read_timer_set(c, -1);
}

/* The read timer moves at least twice per request (disarmed while the request runs, armed
 * after it): a lazy timer (core/lazy_timer.h). */
void ar_server__read_timer_set(ar_conn_t *c, int64_t ms)
{
    if (ms < 0)
        ar_lazy_timer_disarm(&c->read_timer);
    else
        ar_lazy_timer_arm(&c->read_timer, (uint64_t)ms);
}

static void arm_write_timer(ar_conn_t *c)
{
    int64_t ms = ar_server__write_ms(c->w->pub.server);
    c->wq_mark = wq_written(c);
    if (ms > 0)
        uv_timer_start(&c->write_timer, on_write_timeout, (uint64_t)ms, 0);
}

static void on_write_done(uv_write_t *wr, int status)
{
    write_req_t *w = (write_req_t *)wr;
    ar_conn_t *c = w->conn;
    c->wq_bytes -= w->len;
    ar_free(w);
    if (c->closing)
        return;
    if (status < 0) {
        ar_server__conn_close(c);
        return;
    }
    if (c->wq_bytes == 0) {
        uv_timer_stop(&c->write_timer);
        if (c->close_after_write && !c->processing) {
            if (c->lingering)
                linger_start(c);
            else
                ar_server__conn_close(c);
            return;
        }
        if (!c->processing && !c->request_started)
            ar_server__conn_arm_read(c);
    } else {
        arm_write_timer(c); /* progress: restart the stall clock */
    }
    ar_http_request_t *req = c->req;
    if (req && c->processing && req->on_drain && c->wq_bytes <= AR_HTTP_LOW_WATER)
        req->on_drain(req);
}

int ar_server__conn_write(ar_conn_t *c, uv_buf_t *bufs, unsigned nbufs)
{
    if (c->closing)
        return AR_ECANCELED;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    size_t done = 0;
    if (c->wq_bytes == 0) {
        int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (n > 0)
            done = (size_t)n;
        else if (n < 0 && n != UV_EAGAIN) {
            ar_server__conn_close(c);
            return AR_ECANCELED;
        }
        if (done == total)
            return 0;
    }
    /* Queue a copy of what the socket did not take. */
    size_t rest = total - done;
    write_req_t *w = ar_xmalloc(sizeof(*w) + rest);
    w->conn = c;
    w->len = rest;
    size_t off = 0, skip = done;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t blen = bufs[i].len;
        if (skip >= blen) {
            skip -= blen;
            continue;
        }
        memcpy(w->data + off, bufs[i].base + skip, blen - skip);
        off += blen - skip;
        skip = 0;
    }
    /* uv_write copies the descriptors, so they may live on the stack (or briefly on the
     * heap for an answer over 4 GiB, which one uv_buf_t cannot describe). */
    uv_buf_t small[4];
    size_t pieces = ar_server__buf_pieces(rest, UV_BUF_PIECE_MAX);
    uv_buf_t *bv = pieces <= AR_ARRAY_CNT(small) ? small : ar_xmalloc(pieces * sizeof(uv_buf_t));
    unsigned nb = 0;
    ar_server__buf_split(bv, &nb, w->data, rest, UV_BUF_PIECE_MAX);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, bv, nb, on_write_done);
    if (bv != small)
        ar_free(bv);
    if (rc < 0) {
        ar_free(w);
        ar_server__conn_close(c);
        return AR_ECANCELED;
    }
    c->wq_total += rest;
    if (c->wq_bytes == 0)
        arm_write_timer(c);
    c->wq_bytes += rest;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ar_conn_t *c = h->data;
    worker_impl_t *w = c->w;
    /* One read buffer per worker: whatever must outlive the callback is copied out. */
    if (w->read_buf_busy) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    w->read_buf_busy = true;
    buf->base = w->read_buf;
    buf->len = READ_BUF_BYTES;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ar_conn_t *c = s->data;
    worker_impl_t *w = c->w;
    if (buf->base == w->read_buf)
        w->read_buf_busy = false;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or error. A request still running has lost its client. */
        ar_server__conn_close(c);
        return;
    }
    if (c->closing || c->lingering)
        return; /* after an error answer, input is read only to be dropped */
    if (c->processing) {
        /* Pipelined bytes for later: keep them, stop reading if the client floods us. */
        if (ar_buf_append(&c->pending_in, buf->base, (size_t)nread) != 0) {
            ar_server__conn_close(c);
            return;
        }
        if (c->pending_in.len >= PENDING_IN_MAX / 2) {
            uv_read_stop(s);
            c->reading = false;
        }
        return;
    }
    ar_server__conn_process(c, buf->base, (size_t)nread);
}

void ar_server__on_connection(uv_stream_t *listener, int status)
{
    worker_impl_t *w = listener->data;
    if (status < 0)
        return;
    ar_conn_t *c = ar_xcalloc(1, sizeof(*c));
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->handles_open = 1;
        ar_list_init(&c->link);
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        return;
    }
    ar_lazy_timer_init(&w->loop, &c->read_timer, on_read_timeout, c);
    uv_timer_init(&w->loop, &c->write_timer);
    c->write_timer.data = c;
    c->handles_open = 3;
    ar_list_insert_tail(&w->conns, &c->link);
    uv_tcp_nodelay(&c->tcp, 1);
    ar_buf_init(&c->hbuf, 0);
    ar_buf_init(&c->body_dyn, 0);
    ar_buf_init(&c->pending_in, PENDING_IN_MAX);
    ar_buf_init(&c->out, OUT_BUF_MAX);

    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->client_ip, sizeof(c->client_ip));
        else if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->client_ip, sizeof(c->client_ip));
    }
    if (!c->client_ip[0])
        memcpy(c->client_ip, "unknown", 8);

    ar_server__parser_init(c);
    if (w->draining) {
        ar_server__conn_close(c);
        return;
    }
    c->reading = true;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    /* One count for the whole process: workers share the fd table. */
    ar_server_t *srv = w->pub.server;
    long max = ar_server__max_conns(srv);
    long open = atomic_fetch_add(&srv->conns_open, 1) + 1;
    if (max >= 0 && open > max) {
        atomic_fetch_sub(&srv->conns_open, 1);
        refuse(c);
        return;
    }
    c->counted = true;
    ar_server__conn_head_begins(c); /* the first request's head is due from the accept on */
    ar_server__conn_arm_read(c);
}

void ar_server__request_abort(ar_http_request_t *req, int reason)
{
    ar_conn_t *c = req->_conn;
    if (req->_finished || !c)
        return;
    if (reason == AR_ESHUTDOWN) {
        if (req->on_abort) {
            ar_http_ref(req);
            req->on_abort(req, reason);
            ar_http_unref(req);
        } else {
            ar_span_t body = AR_LIT("{\"statusCode\":503,\"message\":\"Request cancelled: server "
                                    "is shutting down\",\"error\":\"Service Unavailable\"}");
            ar_http_respond_json(req, 503, NULL, 0, body);
        }
        return;
    }
    /* The client is gone: nothing more can be sent. */
    req->_aborted = true;
    req->_finished = true;
    req->_conn = NULL;
    c->req = NULL;
    c->processing = false;
    atomic_fetch_sub(&c->w->in_flight, 1);
    if (req->on_abort) {
        ar_http_ref(req);
        req->on_abort(req, reason);
        ar_http_unref(req);
    }
    ar_http_unref(req); /* the server's reference */
}

void ar_server__request_finished(ar_conn_t *c, ar_http_request_t *req)
{
    req->_finished = true;
    req->_conn = NULL;
    c->req = NULL;
    c->processing = false;
    atomic_fetch_sub(&c->w->in_flight, 1);
    ar_http_unref(req);
    if (c->closing)
        return;
    if (!c->keep_alive || c->w->draining)
        c->close_after_write = true;
    if (c->close_after_write) {
        if (c->wq_bytes == 0)
            ar_server__conn_close(c);
        return;
    }
    if (c->in_dispatch)
        return; /* ar_server__conn_process continues with the bytes it holds */
    llhttp_resume(&c->parser);
    if (!c->reading) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    if (c->pending_in.len == 0) {
        ar_server__conn_arm_read(c);
        return;
    }
    /* Parse what arrived meanwhile; take it out first, parsing may queue new leftovers. */
    ar_buf_t in = c->pending_in;
    ar_buf_init(&c->pending_in, PENDING_IN_MAX);
    ar_server__conn_process(c, in.ptr, in.len);
    ar_buf_dispose(&in);
}

/* Sends a JSON error that ends the connection; code NULL: the status number. */
static void send_error_close(ar_conn_t *c, int status, const char *type, const char *code,
                             const char *message)
{
    char rid[40];
    ar_server__gen_request_id(c->w, rid);
    char num[8];
    if (!code) {
        snprintf(num, sizeof(num), "%d", status);
        code = num;
    }
    char body[512];
    /* message, type and code are ours (static text), never client bytes: no escaping */
    int n = snprintf(body, sizeof(body),
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"code\":\"%s\","
                     "\"param\":null}}",
                     message, type, code);
    char head[512];
    size_t dlen = 0;
    const char *date = ar_server__date(c->w, &dlen);
    int h = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n%.*sContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nx-request-id: %s\r\nConnection: close\r\n\r\n",
                     status, ar_http_reason(status), (int)dlen, date, n, rid);
    uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)h), uv_buf_init(body, (unsigned)n)};
    c->close_after_write = true;
    c->lingering = true; /* keep reading: the client may still be sending */
    if (ar_server__conn_write(c, bufs, 2) == 0)
        ar_server__conn_linger(c);
}

void ar_server__conn_fail(ar_conn_t *c, int status, const char *message)
{
    AR_LOG(AR_LOG_INFO, NULL, "rejected request from %s: %d %s", c->client_ip, status, message);
    send_error_close(c, status, "invalid_request_error", NULL, message);
}

#define REFUSAL_LOG_EVERY_MS 10000

/*
 * A connection over max_connections. It is answered at once, before anything is read:
 * a 503 that says why and closes the connection, then the lingering close so the client
 * can read it (closing with its request unread would reset the connection and lose the
 * answer). That is a whole, short answer, never a half-served request. Refused
 * connections are counted apart (conns_refusing), and past REFUSING_MAX of them still
 * lingering one is closed at once instead: a flood of refusals must not use up the fds
 * that max_connections keeps for upstreams.
 */
static void refuse(ar_conn_t *c)
{
    ar_server_t *srv = c->w->pub.server;
    uint64_t total = atomic_fetch_add(&srv->refused_total, 1) + 1;
    uint64_t now = uv_now(&c->w->loop);
    uint64_t last = atomic_load(&srv->refused_logged_ms);
    if ((last == 0 || now - last >= REFUSAL_LOG_EVERY_MS) &&
        atomic_compare_exchange_strong(&srv->refused_logged_ms, &last, now))
        AR_LOG(AR_LOG_WARN, NULL,
               "max_connections (%ld) reached: refusing new connections (%" PRIu64
               " refused so far)",
               ar_server__max_conns(srv), total);
    if (atomic_fetch_add(&srv->conns_refusing, 1) >= REFUSING_MAX) {
        atomic_fetch_sub(&srv->conns_refusing, 1);
        ar_server__conn_close(c);
        return;
    }
    c->counted = true;
    c->refused = true;
    send_error_close(c, 503, "service_unavailable_error", "too_many_connections",
                     "Too many connections: the server is at its max_connections limit");
}

void ar_server__conn_linger(ar_conn_t *c)
{
    c->close_after_write = true;
    c->lingering = true;
    ar_lazy_timer_repurpose(&c->read_timer);
    uv_timer_stop(&c->read_timer.timer);
    if (c->wq_bytes == 0)
        linger_start(c); /* else on_write_done starts it once the answer is out */
}

void ar_server__head_answered(ar_conn_t *c, ar_http_request_t *req)
{
    /* Never dispatched: no in-flight count to return, only the server's reference. */
    req->_finished = true;
    req->_conn = NULL;
    c->req = NULL;
    ar_http_unref(req);
}
