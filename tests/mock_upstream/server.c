/*
 * server.c: the mock upstream's network layer. Each worker owns a libuv loop and its own
 * SO_REUSEPORT listening socket; each connection is one allocation embedding its uv_tcp_t,
 * uv_timer_t and llhttp parser, freed in the last close callback. Requests on a connection
 * are answered strictly in order: parsing pauses at each message end and resumes when the
 * response has been fully written, so pipelined input just waits in the input buffer. This
 * file knows nothing about routes or wire formats; it hands complete requests to request.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mock.h"

#define IN_FIRST_CAP (16 * 1024)
#define IN_MIN_FREE (4 * 1024)
#define LINGER_MS 2000 /* how long we drain input after an error answer before closing */
#define LISTEN_BACKLOG 4096

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static int on_message_begin(llhttp_t *p);
static int on_url(llhttp_t *p, const char *at, size_t len);
static int on_header_field(llhttp_t *p, const char *at, size_t len);
static int on_header_value(llhttp_t *p, const char *at, size_t len);
static int on_header_value_complete(llhttp_t *p);
static int on_headers_complete(llhttp_t *p);
static int on_body(llhttp_t *p, const char *at, size_t len);
static int on_message_complete(llhttp_t *p);

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_process(mock_conn_t *c);
static void conn_close(mock_conn_t *c);

/* ---- connection lifetime ---- */

static void conn_free(mock_conn_t *c)
{
    mock_request_release(&c->req);
    mock_buf_dispose(&c->head);
    mock_buf_dispose(&c->body);
    mock_buf_dispose(&c->out);
    mock_buf_dispose(&c->text);
    mock_buf_dispose(&c->scratch);
    mock_buf_dispose(&c->aux);
    free(c->bounds);
    free(c->in);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    mock_conn_t *c = h->data;
    c->handles--;
    if (c->handles == 0) {
        conn_free(c);
    }
}

static void conn_unlink(mock_conn_t *c)
{
    mock_worker_t *w = c->worker;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = NULL;
    c->next = NULL;
    atomic_store_explicit(&w->stats.open_conns,
                          atomic_load_explicit(&w->stats.open_conns, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

/* Closes both handles; the memory goes in the last close callback. Pending writes are
 * cancelled by libuv before that, so their callbacks still see a valid connection. */
static void conn_close(mock_conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    conn_unlink(c);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

void mock_conn_reset(mock_conn_t *c)
{
    uv_os_fd_t fd;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    if (c->closing) {
        return;
    }
    /* With a zero linger time close() discards unsent data and sends RST, not FIN. */
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    conn_close(c);
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

/* After an error answer to unparseable input, closing at once could turn unread input into
 * an RST that destroys the answer in flight; so send FIN, drain input for a while, close. */
static void conn_linger(mock_conn_t *c)
{
    c->discard = 1;
    c->in_off = 0;
    c->in_len = 0;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    if (c->read_paused) {
        c->read_paused = 0;
        (void)uv_read_start((uv_stream_t *)&c->tcp, NULL, NULL);
    }
    uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
}

void mock_conn_response_done(mock_conn_t *c)
{
    mock_request_release(&c->req);
    c->busy = 0;
    c->hanging = 0;
    c->head_counted = 0;
    /* One huge request must not pin its memory for the connection's lifetime. */
    mock_buf_reset(&c->out, MOCK_KEEP_BYTES);
    mock_buf_reset(&c->body, MOCK_KEEP_BYTES);
    mock_buf_reset(&c->text, MOCK_KEEP_BYTES);
    mock_buf_reset(&c->scratch, MOCK_KEEP_BYTES);
    mock_buf_reset(&c->aux, MOCK_KEEP_BYTES);
    if (c->bounds_cap > 4096) {
        free(c->bounds);
        c->bounds = NULL;
        c->bounds_cap = 0;
    }
    c->bounds_cnt = 0;
    if (c->discard) {
        conn_linger(c);
        return;
    }
    if (!c->req.keep_alive) {
        conn_close(c);
        return;
    }
    if (!c->processing) {
        conn_process(c);
    }
}

/* ---- writing ---- */

static void on_write(uv_write_t *wr, int status)
{
    mock_conn_t *c = wr->data;
    c->writing = 0;
    if (c->closing) {
        return;
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    mock_resp_sent(c);
}

void mock_conn_write(mock_conn_t *c, size_t from, size_t to)
{
    uv_buf_t b = uv_buf_init(c->out.data + from, (unsigned int)(to - from));
    int n;

    if (c->closing) {
        return;
    }
    if (b.len == 0) {
        mock_resp_sent(c);
        return;
    }
    /* The common case: the whole response fits in the socket buffer, no request object. */
    n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS) {
        n = 0;
    }
    if (n < 0) {
        conn_close(c);
        return;
    }
    if ((size_t)n == b.len) {
        mock_resp_sent(c);
        return;
    }
    b.base += n;
    b.len -= (unsigned int)n;
    c->writing = 1;
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        c->writing = 0;
        conn_close(c);
    }
}

static void on_continue_written(uv_write_t *wr, int status)
{
    mock_conn_t *c = wr->data;
    (void)status;
    c->cont_pending = 0;
}

static void send_continue(mock_conn_t *c)
{
    uv_buf_t b = uv_buf_init((char *)continue_line, sizeof(continue_line) - 1);
    int n;

    if (c->cont_pending) {
        return;
    }
    n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN) {
        n = 0;
    }
    if (n < 0 || (size_t)n == b.len) {
        return; /* a broken socket shows up on the next read or write */
    }
    b.base += n;
    b.len -= (unsigned int)n;
    c->creq.data = c;
    if (uv_write(&c->creq, (uv_stream_t *)&c->tcp, &b, 1, on_continue_written) == 0) {
        c->cont_pending = 1;
    }
}

/* ---- parsing ---- */

static int head_add(mock_conn_t *c, const char *at, size_t len, int lower)
{
    size_t start = c->head.len;
    if (start + len > MOCK_HEAD_MAX_BYTES) {
        c->err_status = 431;
        return -1;
    }
    mock_buf_add(&c->head, at, len);
    if (c->head.failed) {
        c->err_status = 431;
        return -1;
    }
    if (lower) {
        for (size_t i = start; i < c->head.len; i++) {
            char ch = c->head.data[i];
            if (ch >= 'A' && ch <= 'Z') {
                c->head.data[i] = (char)(ch + ('a' - 'A'));
            }
        }
    }
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    mock_conn_t *c = p->data;
    c->head.len = 0;
    c->head.failed = 0;
    c->body.len = 0;
    c->body.failed = 0;
    c->url_len = 0;
    c->headers_cnt = 0;
    c->header_state = 0;
    c->err_status = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    mock_conn_t *c = p->data;
    if (head_add(c, at, len, 0) != 0) {
        return -1;
    }
    c->url_len += (uint32_t)len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    mock_conn_t *c = p->data;
    mock_header_t *h;

    if (c->header_state != 1) {
        if (c->headers_cnt == MOCK_HEADERS_MAX) {
            c->err_status = 431;
            return -1;
        }
        h = &c->headers[c->headers_cnt];
        h->name_off = (uint32_t)c->head.len;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        c->header_state = 1;
    }
    h = &c->headers[c->headers_cnt];
    if (head_add(c, at, len, 1) != 0) {
        return -1;
    }
    h->name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    mock_conn_t *c = p->data;
    mock_header_t *h = &c->headers[c->headers_cnt];

    if (c->header_state != 2) {
        h->value_off = (uint32_t)c->head.len;
        c->header_state = 2;
    }
    if (head_add(c, at, len, 0) != 0) {
        return -1;
    }
    h->value_len += (uint32_t)len;
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    mock_conn_t *c = p->data;
    mock_header_t *h = &c->headers[c->headers_cnt];

    if (c->header_state != 2) { /* empty value: no on_header_value call */
        h->value_off = (uint32_t)c->head.len;
        h->value_len = 0;
    }
    c->headers_cnt++;
    c->header_state = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    mock_conn_t *c = p->data;
    mock_span_t expect;

    /* Upgrade and CONNECT are answered like any other request (404/405), never switched. */
    p->upgrade = 0;
    if (!(p->flags & F_CHUNKED) && p->content_length > MOCK_BODY_MAX_BYTES) {
        c->err_status = 413;
        return -1;
    }
    expect = mock_req_header(&c->req, "expect");
    if (p->http_major == 1 && p->http_minor >= 1 && mock_span_caseeq(expect, "100-continue")) {
        send_continue(c);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    mock_conn_t *c = p->data;
    if (c->body.len + len > MOCK_BODY_MAX_BYTES) {
        c->err_status = 413;
        return -1;
    }
    mock_buf_add(&c->body, at, len);
    if (c->body.failed) {
        c->err_status = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    (void)p;
    /* Stop here: the next pipelined request is parsed only after this one is answered. */
    return HPE_PAUSED;
}

mock_span_t mock_req_header(const mock_req_t *req, const char *name)
{
    const mock_conn_t *c = req->conn;
    size_t n = strlen(name);

    for (int i = 0; i < c->headers_cnt; i++) {
        const mock_header_t *h = &c->headers[i];
        if (h->name_len == n && memcmp(c->head.data + h->name_off, name, n) == 0) {
            return (mock_span_t){c->head.data + h->value_off, h->value_len};
        }
    }
    return (mock_span_t){NULL, 0};
}

void mock_req_header_at(const mock_req_t *req, int i, mock_span_t *name, mock_span_t *value)
{
    const mock_conn_t *c = req->conn;
    const mock_header_t *h = &c->headers[i];
    *name = (mock_span_t){c->head.data + h->name_off, h->name_len};
    *value = (mock_span_t){c->head.data + h->value_off, h->value_len};
}

/* Answers input llhttp rejected, then closes (lingering). */
static void conn_bad_input(mock_conn_t *c, llhttp_errno_t err)
{
    mock_req_t *req = &c->req;
    int status = c->err_status ? c->err_status : 400;
    const char *msg = "mock: malformed HTTP request";

    if (status == 431) {
        msg = "mock: request header fields too large";
    } else if (status == 413) {
        msg = "mock: request body too large";
    } else if (err == HPE_INVALID_METHOD) {
        msg = "mock: invalid HTTP method";
    }
    memset(req, 0, sizeof(*req));
    req->conn = c;
    req->worker = c->worker;
    req->srv = c->worker->srv;
    req->api = &mock_openai_api;
    req->keep_alive = 0;
    req->http_minor = 1;
    req->dirs.status = -1;
    req->dirs.retry_after_s = -1;
    req->dirs.latency_ms = -1;
    req->dirs.chunk_delay_ms = -1;
    req->dirs.malformed = -1;
    req->dirs.hang = -1;
    req->dirs.usage = -1;
    c->busy = 1;
    c->discard = 1;
    mock_request_error(req, status, "invalid_request_error", NULL, msg);
    mock_resp_start(req);
}

static void conn_process(mock_conn_t *c)
{
    if (c->processing) {
        return;
    }
    c->processing = 1;
    while (!c->closing && !c->busy && !c->discard && c->in_off < c->in_len) {
        const char *data = c->in + c->in_off;
        size_t len = c->in_len - c->in_off;
        llhttp_errno_t err = llhttp_execute(&c->parser, data, len);

        if (err == HPE_OK) {
            c->in_off = c->in_len;
            break;
        }
        if (err != HPE_PAUSED) {
            c->in_off = c->in_len;
            conn_bad_input(c, err);
            break;
        }
        c->in_off += (size_t)(llhttp_get_error_pos(&c->parser) - data);
        llhttp_resume(&c->parser);
        c->busy = 1;
        mock_request_handle(c);
    }
    if (c->in_off == c->in_len) {
        c->in_off = 0;
        c->in_len = 0;
        if (c->in_cap > 4 * IN_FIRST_CAP && !c->read_paused) {
            /* A burst of pipelined input grew the buffer; the next read allocates anew. */
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
    }
    c->processing = 0;
    if (c->closing) {
        return;
    }
    if (!c->busy && c->eof) {
        conn_close(c);
        return;
    }
    if (c->read_paused && !c->busy) {
        c->read_paused = 0;
        (void)uv_read_start((uv_stream_t *)&c->tcp, NULL, NULL);
    }
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mock_conn_t *c = h->data;
    (void)suggested;

    if (c->in_cap - c->in_len < IN_MIN_FREE && c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_cap - c->in_len < IN_MIN_FREE && c->in_cap < MOCK_IN_MAX_BYTES) {
        size_t cap = c->in_cap ? c->in_cap * 2 : IN_FIRST_CAP;
        char *p = realloc(c->in, cap);
        if (p != NULL) {
            c->in = p;
            c->in_cap = cap;
        }
    }
    /* A zero-length buffer makes libuv report UV_ENOBUFS: reading pauses (see on_read). */
    buf->base = c->in + c->in_len;
    buf->len = c->in_cap - c->in_len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mock_conn_t *c = s->data;
    (void)buf;

    if (c->closing) {
        return;
    }
    if (nread == UV_ENOBUFS) {
        uv_read_stop(s);
        c->read_paused = 1;
        return;
    }
    if (nread < 0) {
        /* A half-closed client still gets the answer in progress; hang=1 never answers, so
         * any EOF ends it, as does an error. */
        if (nread == UV_EOF && c->busy && !c->hanging && !c->discard) {
            c->eof = 1;
            uv_read_stop(s);
            return;
        }
        conn_close(c);
        return;
    }
    if (c->discard) {
        c->in_off = 0;
        c->in_len = 0;
        return;
    }
    c->in_len += (size_t)nread;
    conn_process(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    mock_worker_t *w = server->data;
    mock_conn_t *c;

    if (status < 0 || w->stopping) {
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fprintf(stderr, "mock_upstream: out of memory\n");
        abort();
    }
    c->worker = w;
    if (uv_tcp_init(&w->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->timer.data = c;
    uv_timer_init(&w->loop, &c->timer);
    c->handles = 2;
    mock_buf_init(&c->head, MOCK_HEAD_MAX_BYTES);
    mock_buf_init(&c->body, MOCK_BODY_MAX_BYTES);
    mock_buf_init(&c->out, MOCK_OUT_MAX_BYTES);
    mock_buf_init(&c->text, MOCK_BODY_MAX_BYTES);
    mock_buf_init(&c->scratch, MOCK_OUT_MAX_BYTES);
    mock_buf_init(&c->aux, MOCK_OUT_MAX_BYTES);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    c->req.conn = c;

    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    atomic_store_explicit(&w->stats.open_conns,
                          atomic_load_explicit(&w->stats.open_conns, memory_order_relaxed) + 1,
                          memory_order_relaxed);

    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    (void)uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
    }
}

/* ---- listening, running, stopping ---- */

static int make_addr(const char *host, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strcmp(host, "localhost") == 0) {
        host = "127.0.0.1";
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) {
        return 0;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) {
        return 0;
    }
    return -1;
}

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    } else {
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    }
}

/* Binds a throwaway socket without SO_REUSEPORT: fails when another process listens on the
 * port (so two mocks never silently share one), and picks the port when asked for 0.
 * @return the port, or -errno. */
static int probe_port(struct sockaddr_storage *ss)
{
    struct sockaddr_storage got;
    socklen_t len = sizeof(got);
    int one = 1;
    int port = -EINVAL;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -errno;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)ss, addr_len(ss)) != 0) {
        port = -errno;
    } else if (getsockname(fd, (struct sockaddr *)&got, &len) == 0) {
        port = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&got)->sin_port);
    }
    close(fd);
    return port;
}

static int listen_fd(const struct sockaddr_storage *ss)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -errno;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)ss, addr_len(ss)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static void on_stop(uv_async_t *a);
static void on_signal(uv_signal_t *s, int signum);

/* Binds every worker's socket to the same port; with port 0 retries a few times in case the
 * probed port is taken between probe and bind. */
static int bind_all(mock_server_t *srv, int *fds)
{
    struct sockaddr_storage ss;
    int attempts = srv->opts.port == 0 ? 5 : 1;

    if (make_addr(srv->opts.host, srv->opts.port, &ss) != 0) {
        fprintf(stderr, "mock_upstream: bad --host %s (an IPv4 or IPv6 address)\n", srv->opts.host);
        return -1;
    }
    for (int a = 0; a < attempts; a++) {
        int port;
        int i;

        set_port(&ss, srv->opts.port);
        port = probe_port(&ss);
        if (port < 0) {
            fprintf(stderr, "mock_upstream: cannot bind %s:%d: %s\n", srv->opts.host,
                    srv->opts.port, strerror(-port));
            return -1;
        }
        set_port(&ss, port);
        for (i = 0; i < srv->workers_cnt; i++) {
            fds[i] = listen_fd(&ss);
            if (fds[i] < 0) {
                break;
            }
        }
        if (i == srv->workers_cnt) {
            srv->port = port;
            return 0;
        }
        int e = -fds[i];
        while (i-- > 0) {
            close(fds[i]);
        }
        if (a + 1 == attempts) {
            fprintf(stderr, "mock_upstream: cannot bind %s:%d: %s\n", srv->opts.host, port,
                    strerror(e));
        }
    }
    return -1;
}

int mock_server_listen(mock_server_t *srv)
{
    int *fds = calloc((size_t)srv->workers_cnt, sizeof(int));
    int rc = -1;
    int i = 0;

    if (fds == NULL || bind_all(srv, fds) != 0) {
        free(fds);
        return -1;
    }
    for (; i < srv->workers_cnt; i++) {
        mock_worker_t *w = &srv->workers[i];
        int err;

        if (uv_tcp_init(&w->loop, &w->listener) != 0) {
            break;
        }
        w->listener.data = w;
        err = uv_tcp_open(&w->listener, fds[i]);
        if (err == 0) {
            fds[i] = -1; /* owned by the handle now */
            err = uv_listen((uv_stream_t *)&w->listener, LISTEN_BACKLOG, on_connection);
        }
        if (err != 0) {
            fprintf(stderr, "mock_upstream: listen: %s\n", uv_strerror(err));
            uv_close((uv_handle_t *)&w->listener, NULL);
            break;
        }
        uv_async_init(&w->loop, &w->stop, on_stop);
        w->stop.data = w;
        if (i == 0) {
            uv_signal_init(&w->loop, &w->sigterm);
            uv_signal_init(&w->loop, &w->sigint);
            w->sigterm.data = srv;
            w->sigint.data = srv;
            uv_signal_start(&w->sigterm, on_signal, SIGTERM);
            uv_signal_start(&w->sigint, on_signal, SIGINT);
        }
    }
    if (i == srv->workers_cnt) {
        rc = 0;
    } else {
        /* Undo what was set up so that every loop can still be closed cleanly. */
        for (int j = 0; j < i; j++) {
            mock_worker_t *w = &srv->workers[j];
            uv_close((uv_handle_t *)&w->listener, NULL);
            uv_close((uv_handle_t *)&w->stop, NULL);
            if (j == 0) {
                uv_close((uv_handle_t *)&w->sigterm, NULL);
                uv_close((uv_handle_t *)&w->sigint, NULL);
            }
            uv_run(&w->loop, UV_RUN_DEFAULT);
        }
        if (i < srv->workers_cnt) {
            uv_run(&srv->workers[i].loop, UV_RUN_DEFAULT);
        }
    }
    for (int j = 0; j < srv->workers_cnt; j++) {
        if (fds[j] >= 0) {
            close(fds[j]);
        }
    }
    free(fds);
    return rc;
}

static void on_stop(uv_async_t *a)
{
    mock_worker_t *w = a->data;

    w->stopping = 1;
    uv_close((uv_handle_t *)&w->listener, NULL);
    while (w->conns != NULL) {
        conn_close(w->conns);
    }
    uv_close((uv_handle_t *)&w->stop, NULL);
    if (w->index == 0) {
        uv_close((uv_handle_t *)&w->sigterm, NULL);
        uv_close((uv_handle_t *)&w->sigint, NULL);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_signal_stop(s);
    mock_server_stop(s->data);
}

void mock_server_stop(mock_server_t *srv)
{
    if (atomic_exchange(&srv->stopping, 1) != 0) {
        return;
    }
    for (int i = 0; i < srv->workers_cnt; i++) {
        uv_async_send(&srv->workers[i].stop);
    }
}

void mock_worker_run(mock_worker_t *w)
{
    uv_run(&w->loop, UV_RUN_DEFAULT);
}
