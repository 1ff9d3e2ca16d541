/*
 * fuzz_http.c: libFuzzer target for HTTP request intake (server/: llhttp with our
 * callbacks in http1.c, conn.c, response.c). It uses only the public server API: a real
 * server with one worker listens on 127.0.0.1, and each input is written to a fresh
 * loopback connection, which is then half-closed; the target reads until the server
 * closes. So the harness does not depend on how connections and the parser are wired
 * inside, and the server's whole path (reads, pipelining, limits, errors, responses, close)
 * runs for every input. The handler answers with as many bytes as the request body had
 * (streamed for /stream; from a task posted to the worker for /later, so requests also wait
 * with a reference held while the client pipelines more or leaves).
 *
 * Checked, besides the sanitizers: what the handler is given is consistent (path and query
 * inside the target, the body within max_body_bytes, no CR/LF/NUL in header values or the
 * request id), and everything the server sends back parses as HTTP/1.1 responses whose
 * head lines hold no control characters (no client byte may forge a header).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "fuzz_common.h"
#include "server/server.h"

#define MAX_BODY 4096
#define MAX_HEADER 2048

static ar_server_t *srv;
static int port;

static bool has_ctl(ar_span_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

static void on_abort(ar_http_request_t *req, int reason)
{
    (void)reason;
    req->data = NULL; /* nothing to cancel: the posted answer sees ar_http_aborted */
}

/* The answer to /later, from a posted task: the request waited with a reference held,
 * as the gateway's requests wait for upstreams (pipelined input queues meanwhile). */
static void respond_later(ar_worker_t *w, void *arg)
{
    (void)w;
    ar_http_request_t *req = arg;
    if (!ar_http_aborted(req))
        ar_http_respond(req, 200, NULL, 0, AR_LIT("later"));
    ar_http_unref(req);
}

static void on_request(ar_http_request_t *req)
{
    if (req->body.len > MAX_BODY)
        fz_fail("a body of %zu bytes passed a limit of %d", req->body.len, MAX_BODY);
    if (req->path.len > req->target.len || req->query.len > req->target.len)
        fz_fail("path or query longer than the target");
    if (!req->request_id || strpbrk(req->request_id, "\r\n") ||
        has_ctl(ar_span_cstr(req->request_id)))
        fz_fail("a request id with control characters");
    for (size_t i = 0; i < req->headers_cnt; i++) {
        ar_span_t v = req->headers[i].value;
        if (memchr(v.ptr, '\r', v.len) || memchr(v.ptr, '\n', v.len) || memchr(v.ptr, '\0', v.len))
            fz_fail("header value %zu holds CR, LF or NUL", i);
    }
    (void)ar_http_header(req, AR_LIT("content-type"));
    /* as many bytes as the body had, but never the client's bytes: a response body can
     * then never be mistaken for a response head by check_responses */
    static char xs[MAX_BODY];
    memset(xs, 'x', sizeof(xs));
    ar_span_t answer = ar_span(xs, req->body.len);
    ar_http_header_t hs[1] = {{AR_LIT("Content-Type"), AR_LIT("application/octet-stream")}};
    if (ar_span_starts(req->path, AR_LIT("/later"))) {
        ar_http_ref(req);
        req->on_abort = on_abort;
        ar_worker_post(req->worker, respond_later, req);
    } else if (ar_span_eq(req->path, AR_LIT("/stream"))) {
        ar_http_start_stream(req, 200, hs, 1);
        (void)ar_http_write(req, answer);
        (void)ar_http_flush(req);
        (void)ar_http_write(req, AR_LIT("data: [DONE]\n\n"));
        ar_http_end_stream(req);
    } else {
        ar_http_respond(req, req->method == AR_HTTP_POST ? 200 : 404, hs, 1, answer);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    /* one "rejected request" line per malformed input would drown the fuzzer's log */
    ar_log_set_level(AR_LOG_WARN);
    ar_server_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.workers = 1;
    opts.max_body_bytes = MAX_BODY;
    opts.max_header_bytes = MAX_HEADER;
    opts.idle_timeout_ms = 5000;
    opts.write_timeout_ms = 5000;
    ar_server_cbs_t cbs;
    memset(&cbs, 0, sizeof(cbs));
    cbs.on_request = on_request;
    srv = ar_server_create(&opts, &cbs);
    char err[256];
    if (!srv || ar_server_start(srv, err, sizeof(err)) != 0)
        fz_fail("the server does not start: %s", err);
    port = ar_server_port(srv);
    return 0;
}

/* Checks that out is a run of HTTP/1.1 responses (the last may be cut short by the close). */
static void check_responses(ar_span_t out)
{
    if (!out.len)
        return;
    const char *p = out.ptr, *end = out.ptr + out.len;
    while (p < end) {
        const char *head_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!head_end)
            break; /* cut short */
        ar_span_t head = ar_span(p, (size_t)(head_end - p));
        if (head.len < 12 ||
            (memcmp(head.ptr, "HTTP/1.1 ", 9) != 0 && memcmp(head.ptr, "HTTP/1.0 ", 9) != 0))
            goto bad;
        int status = atoi(head.ptr + 9);
        long content_length = -1;
        bool chunked = false;
        const char *line = p;
        while (line < head_end) {
            const char *eol = memmem(line, (size_t)(head_end + 2 - line), "\r\n", 2);
            ar_span_t l = ar_span(line, (size_t)(eol - line));
            if (has_ctl(l))
                goto bad;
            if (line != p) {
                const char *colon = memchr(l.ptr, ':', l.len);
                if (!colon || colon == l.ptr)
                    goto bad;
                ar_span_t name = ar_span(l.ptr, (size_t)(colon - l.ptr));
                ar_span_t value = ar_span_trim(ar_span(colon + 1, l.len - name.len - 1));
                if (ar_span_ieq(name, AR_LIT("content-length")))
                    content_length = strtol(value.ptr, NULL, 10);
                if (ar_span_ieq(name, AR_LIT("transfer-encoding")) &&
                    ar_span_ieq(value, AR_LIT("chunked")))
                    chunked = true;
            }
            line = eol + 2;
        }
        p = head_end + 4;
        /* no body: 1xx, 204, 304, and the answer to HEAD (its Content-Length describes the
         * GET answer; it is recognised by the next head following at once) */
        if (status < 200 || status == 204 || status == 304 ||
            (end - p >= 7 && memcmp(p, "HTTP/1.", 7) == 0))
            continue;
        if (chunked) {
            for (;;) {
                const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
                if (!eol)
                    return;
                long n = strtol(p, NULL, 16);
                if (n < 0)
                    goto bad;
                p = eol + 2;
                if (end - p < n + 2)
                    return;
                p += n;
                if (memcmp(p, "\r\n", 2) != 0)
                    goto bad;
                p += 2;
                if (n == 0)
                    break;
            }
        } else if (content_length >= 0) {
            if (end - p < content_length)
                return;
            p += content_length;
        } else {
            goto bad;
        }
    }
    return;
bad:
    fz_dump("responses", out);
    fz_fail("malformed response at offset %zu", (size_t)(p - out.ptr));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* libFuzzer's timer signal (SIGALRM, once a second) interrupts blocking calls: EINTR
     * means "go on", never a failure. An interrupted connect completes on its own. */
    if (fd < 0)
        fz_fail("no socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        struct pollfd pf = {fd, POLLOUT, 0};
        int err = errno, r = 0;
        socklen_t len = sizeof(err);
        while (err == EINTR && (r = poll(&pf, 1, 8000)) < 0 && errno == EINTR)
            ;
        if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
            err = 0;
        if (err)
            fz_fail("cannot connect: %s", strerror(err));
    }
    ar_buf_t out;
    ar_buf_init(&out, 1u << 24);
    size_t sent = 0;
    bool wr_open = true;
    char buf[65536];
    /* write and read together: the server may answer (and stop reading) before the end */
    for (int idle_ms = 0;;) {
        struct pollfd pf = {fd, POLLIN | (wr_open ? POLLOUT : 0), 0};
        int r = poll(&pf, 1, 100);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 && (idle_ms += 100) >= 8000)
            fz_fail("the server neither answered nor closed within 8 s");
        if (r <= 0)
            continue;
        idle_ms = 0;
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break; /* closed (or reset) by the server */
            if (ar_buf_append(&out, buf, (size_t)n) != 0)
                fz_fail("more than 16 MB of response");
        }
        if (wr_open && (pf.revents & POLLOUT)) {
            ssize_t n = sent < size ? send(fd, data + sent, size - sent, MSG_NOSIGNAL) : 0;
            if (n < 0 && errno == EINTR)
                continue;
            if (n > 0)
                sent += (size_t)n;
            if (n < 0 || sent >= size) {
                shutdown(fd, SHUT_WR);
                wr_open = false;
            }
        }
    }
    close(fd);
    check_responses(ar_buf_span(&out));
    ar_buf_dispose(&out);
    return 0;
}
