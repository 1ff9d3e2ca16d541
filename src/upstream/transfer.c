/*
 * transfer.c: one upstream request on a curl easy handle. Handles are recycled with their
 * transfer struct (curl_easy_reset keeps nothing but memory), header lists are built from
 * nodes embedded in the transfer, so starting a request allocates nothing in the steady
 * state. curl errors are mapped here, once, onto the AR_E* codes of SPEC section 4.
 */
#include <errno.h>
#include <string.h>

#include "core/clock.h"
#include "core/lazy_timer.h"
#include "core/log.h"
#include "core/mem.h"
#include "upstream/upstream_int.h"

CURLU *ar_upstream__url(ar_upstream_t *up, const char *text)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    url_slot_t *s = &up->urls[h % URL_CACHE_SLOTS];
    if (s->text)
        return strcmp(s->text, text) == 0 ? s->url : NULL;
    /* Entries are never replaced: an easy handle keeps pointing at the CURLU it was given,
     * so one must live as long as the client. A colliding URL just goes uncached. */
    CURLU *u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, text, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return NULL;
    }
    s->text = ar_xstrdup(text);
    s->url = u;
    return u;
}

/* A timeout is a connect timeout until the request went out. A reused connection has no
 * connect time; the request was sent if the transfer got past its pre-transfer phase, so
 * that is what tells the two apart. */
static int timeout_err(ar_transfer_t *t)
{
    if (t->native)
        return t->req_sent ? AR_ETIMEDOUT : AR_ECONNTIMEOUT;
    curl_off_t sent_us = 0;
    curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &sent_us);
    return sent_us > 0 ? AR_ETIMEDOUT : AR_ECONNTIMEOUT;
}

/* ---- request_timeout: upstream time only ---- */

/* The clock starts and stops at least once per request: a lazy timer (core/lazy_timer.h). */
typedef struct deadline {
    ar_lazy_timer_t timer;
    ar_transfer_t *t; /* NULL once the transfer is freed */
    ar_upstream_t *up;
} deadline_t;

static void on_deadline_closed(uv_handle_t *h)
{
    deadline_t *d = h->data;
    ar_upstream_t *up = d->up;
    ar_free(d);
    ar_upstream__handle_gone(up);
}

/* The transfer used up its request_timeout: it ends as curl would have ended it, with the
 * connect/answer distinction of map_curl_error. Called from the loop, never inside curl. */
static void on_deadline(uv_timer_t *h)
{
    deadline_t *d = h->data;
    ar_transfer_t *t = d->t;
    if (!t || !t->active || t->cancelled || !ar_lazy_timer_expired(&d->timer))
        return;
    ar_upstream_t *up = t->up;
    int err = timeout_err(t);
    ar_transfer_cbs_t cbs = t->cbs;
    void *ud = t->ud;
    ar_upstream__release(up, t);
    cbs.on_done(ud, err, "request_timeout reached");
    if (up->settled_cb)
        up->settled_cb(up->settled_ud);
}

void ar_upstream__clock_start(ar_transfer_t *t)
{
    if (t->budget_ms < 0)
        return;
    t->running_ms = uv_now(t->up->loop);
    ar_lazy_timer_arm(&t->deadline->timer, (uint64_t)t->budget_ms);
}

void ar_upstream__clock_stop(ar_transfer_t *t)
{
    if (t->budget_ms < 0 || !ar_lazy_timer_armed(&t->deadline->timer))
        return;
    uint64_t used = uv_now(t->up->loop) - t->running_ms;
    t->budget_ms = (int64_t)used < t->budget_ms ? t->budget_ms - (int64_t)used : 0;
    ar_lazy_timer_disarm(&t->deadline->timer);
}

static ar_transfer_t *transfer_get(ar_upstream_t *up)
{
    ar_transfer_t *t;
    if (!ar_list_empty(&up->cache)) {
        t = ar_container_of(up->cache.next, ar_transfer_t, link);
        ar_list_remove(&t->link);
        up->cache_cnt--;
        /* No curl_easy_reset: it frees and rebuilds every option. ar_transfer_start sets
         * every option a transfer can change, so the handle needs no reset. */
        return t;
    }
    t = ar_xcalloc(1, sizeof(*t));
    t->up = up;
    t->deadline = ar_xcalloc(1, sizeof(*t->deadline));
    ar_lazy_timer_init(up->loop, &t->deadline->timer, on_deadline, t->deadline);
    t->deadline->t = t;
    t->deadline->up = up;
    up->handles_open++;
    ar_list_init(&t->link);
    ar_buf_init(&t->head, RESP_HEAD_BYTES_MAX);
    ar_buf_init(&t->pend, H1_READ_BYTES);
    return t;
}

void ar_upstream__free_transfer(ar_transfer_t *t)
{
    t->deadline->t = NULL;
    uv_timer_stop(&t->deadline->timer.timer);
    uv_close((uv_handle_t *)&t->deadline->timer.timer, on_deadline_closed);
    if (t->easy)
        curl_easy_cleanup(t->easy);
    ar_buf_dispose(&t->head);
    ar_buf_dispose(&t->pend);
    ar_free(t);
}

static void transfer_put(ar_upstream_t *up, ar_transfer_t *t)
{
    if (up->closing || up->cache_cnt >= TRANSFER_CACHE_MAX) {
        ar_upstream__free_transfer(t);
        return;
    }
    ar_buf_reset(&t->head);
    if (t->head.cap > 8192)
        ar_buf_dispose(&t->head);
    ar_buf_dispose(&t->pend);
    ar_list_insert_tail(&up->cache, &t->link);
    up->cache_cnt++;
}

/* Parses the raw head into t->headers. The status line was already read by curl. */
static void parse_head(ar_transfer_t *t)
{
    t->headers_cnt = 0;
    const char *p = t->head.ptr;
    const char *end = p + t->head.len;
    while (p < end && t->headers_cnt < RESP_HEADERS_MAX) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        ar_span_t line = ar_span(p, (size_t)(le - p));
        if (line.len && line.ptr[line.len - 1] == '\r')
            line.len--;
        p = nl ? nl + 1 : end;
        const char *colon = memchr(line.ptr, ':', line.len);
        if (!colon || ar_span_starts(line, AR_LIT("HTTP/")))
            continue;
        ar_header_t *h = &t->headers[t->headers_cnt++];
        h->name = ar_span(line.ptr, (size_t)(colon - line.ptr));
        h->value = ar_span_trim(ar_span(colon + 1, line.len - h->name.len - 1));
    }
}

int ar_upstream__deliver_head(ar_transfer_t *t, int status)
{
    if (t->head_sent)
        return 0;
    t->head_sent = true;
    t->status = status;
    t->first_byte_us = ar_now_us();
    parse_head(t);
    if (!t->cbs.on_head)
        return 0;
    return t->cbs.on_head(t->ud, t->status, t->headers, t->headers_cnt);
}

/* Delivers the head once. @return 0 or the callback's error. */
static int deliver_head(ar_transfer_t *t)
{
    long code = 0;
    if (!t->head_sent)
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    return ar_upstream__deliver_head(t, (int)code);
}

static size_t header_cb(char *data, size_t size, size_t n, void *ud)
{
    ar_transfer_t *t = ud;
    size_t len = size * n;
    if (t->cancelled)
        return 0;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        ar_buf_reset(&t->head); /* a new head (after 1xx or a redirect) */
        return len;
    }
    if (ar_buf_append(&t->head, data, len) != 0) {
        t->user_err = AR_ETOOBIG;
        return 0;
    }
    return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *ud)
{
    ar_transfer_t *t = ud;
    size_t len = size * n;
    if (t->cancelled)
        return 0;
    if (!t->head_sent) {
        int rc = deliver_head(t);
        if (rc || t->cancelled) {
            t->user_err = rc ? rc : AR_ECANCELED;
            return 0;
        }
    }
    if (t->max_bytes && t->received + len > t->max_bytes) {
        t->user_err = AR_ETOOBIG;
        return 0;
    }
    int rc = t->cbs.on_data(t->ud, ar_span(data, len));
    if (t->cancelled)
        return 0;
    if (rc == AR_EAGAIN) {
        t->paused = true;
        ar_upstream__clock_stop(t); /* waiting on the client is not upstream time */
        return CURL_WRITEFUNC_PAUSE;
    }
    if (rc) {
        t->user_err = rc;
        return 0;
    }
    t->received += len;
    return len;
}

static ar_transfer_t *transfer_started(ar_upstream_t *up, ar_transfer_t *t)
{
    t->active = true;
    ar_list_insert_tail(&up->active, &t->link);
    up->active_cnt++;
    ar_upstream__clock_start(t);
    return t;
}

ar_transfer_t *ar_transfer_start(ar_upstream_t *up, const ar_http_req_t *req,
                                 const ar_transfer_opts_t *opts, const ar_transfer_cbs_t *cbs,
                                 void *ud, int *err)
{
    ar_transfer_t *t = transfer_get(up);
    if (!t) {
        *err = AR_ENOMEM;
        return NULL;
    }
    t->up = up;
    t->cbs = *cbs;
    t->ud = ud;
    t->status = 0;
    t->head_sent = false;
    t->cancelled = false;
    t->paused = false;
    t->user_err = 0;
    t->received = 0;
    t->max_bytes = opts->max_response_bytes;
    t->start_us = ar_now_us();
    t->first_byte_us = 0;
    t->errbuf[0] = '\0';
    t->req_sent = false;
    ar_buf_reset(&t->head);
    t->budget_ms = opts->timeout_ms > 0 ? opts->timeout_ms : -1;
    t->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
    if (opts->timeout_ms > 0 && t->connect_timeout_ms > opts->timeout_ms)
        t->connect_timeout_ms = opts->timeout_ms;

    t->native = !up->curl_only;
    if (t->native) {
        int rc = ar_h1__start(up, t, req);
        if (rc == 0)
            return transfer_started(up, t);
        t->native = false;
        if (rc != AR_H1_DECLINED) {
            transfer_put(up, t);
            *err = rc;
            return NULL;
        }
    }
    if (!t->easy && !(t->easy = curl_easy_init())) {
        transfer_put(up, t);
        *err = AR_ENOMEM;
        return NULL;
    }
    CURL *e = t->easy;
    if (!t->configured) {
        /* Options that never change for a handle, set once in its life. */
        curl_easy_setopt(e, CURLOPT_PRIVATE, t);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
        /* Proxies come from config, never from the environment: without this curl reads
         * http_proxy/no_proxy on every transfer. */
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->slist);
        t->configured = true;
    }
    CURLU *u = ar_upstream__url(up, req->url);
    /* Waiting for a connection to show whether it multiplexes only pays off for HTTP/2,
     * which needs TLS here: on http:// it would queue requests behind the first answer. */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, strncmp(req->url, "https:", 6) == 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_CURLU, u); /* NULL clears it, so the string below counts */
    if (!u)
        curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L); /* the deadline timer: curl's would not pause */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_bytes);
    /* The pool settings (ar_upstream_opts_t) can change on reload: set them every time. */
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, up->maxage_s);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, up->forbid_reuse);
    bool get = strcmp(req->method, "GET") == 0;
    if (get) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body.ptr ? req->body.ptr : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
    }
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
                     get || strcmp(req->method, "POST") == 0 ? NULL : req->method);

    /* The header list lives in the transfer: no allocation per request. */
    size_t n = 0;
    for (size_t i = 0; i < req->headers_cnt; i++)
        t->slist[n++].data = (char *)req->headers[i];
    t->slist[n++].data = (char *)"Expect:"; /* no 100-continue round trip */
    /* curl's default Accept line (any type) says nothing an LLM API uses, and curl 7.88 formats its
     * request head a byte at a time (~80 instructions per byte): drop it. A provider's own
     * Accept line comes first in the list and still wins. */
    t->slist[n++].data = (char *)"Accept:";
    for (size_t i = 0; i < n; i++)
        t->slist[i].next = i + 1 < n ? &t->slist[i + 1] : NULL;

    CURLMcode mc = curl_multi_add_handle(up->multi, e);
    if (mc != CURLM_OK) {
        transfer_put(up, t);
        *err = AR_EIO;
        return NULL;
    }
    return transfer_started(up, t);
}

void ar_upstream__release(ar_upstream_t *up, ar_transfer_t *t)
{
    ar_lazy_timer_disarm(&t->deadline->timer);
    ar_list_remove(&t->link);
    if (t->active) {
        if (t->native)
            ar_h1__detach(t);
        else
            curl_multi_remove_handle(up->multi, t->easy);
        t->active = false;
        up->active_cnt--;
    }
    transfer_put(up, t);
}

void ar_upstream__flush_deferred(ar_upstream_t *up)
{
    while (!ar_list_empty(&up->deferred)) {
        ar_transfer_t *t = ar_container_of(up->deferred.next, ar_transfer_t, link);
        ar_upstream__release(up, t);
    }
}

void ar_transfer_cancel(ar_transfer_t *t)
{
    if (!t || t->cancelled)
        return;
    ar_upstream_t *up = t->up;
    t->cancelled = true;
    if (up->in_curl) {
        /* Inside curl: removing the handle now would be a recursive API call. */
        ar_list_remove(&t->link);
        ar_list_insert_tail(&up->deferred, &t->link);
        return;
    }
    ar_upstream__release(up, t);
}

void ar_transfer_resume(ar_transfer_t *t)
{
    if (!t || !t->paused || t->cancelled)
        return;
    t->paused = false;
    ar_upstream__clock_start(t);
    if (t->native) {
        ar_h1__resume(t);
        return;
    }
    curl_easy_pause(t->easy, CURLPAUSE_CONT);
    ar_upstream__kick(t->up);
}

uint64_t ar_transfer_ttfb_us(const ar_transfer_t *t)
{
    return t->first_byte_us ? t->first_byte_us - t->start_us : 0;
}

static int map_os_errno(long os_err, int dflt)
{
    switch (os_err) {
    case ECONNREFUSED: return AR_ECONNREFUSED;
    case EHOSTUNREACH: return AR_EHOSTUNREACH;
    case ENETUNREACH: return AR_ENETUNREACH;
    case ECONNRESET:
    case EPIPE: return AR_ECONNRESET;
    case ETIMEDOUT: return AR_ECONNTIMEOUT;
    default: return dflt;
    }
}

static int map_curl_error(ar_transfer_t *t, CURLcode code)
{
    long os_err = 0;
    curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_err);
    switch (code) {
    case CURLE_OK: return 0;
    case CURLE_OPERATION_TIMEDOUT: return timeout_err(t);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return AR_EDNS;
    case CURLE_COULDNT_CONNECT: return map_os_errno(os_err, AR_ECONNREFUSED);
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return map_os_errno(os_err, AR_ECONNRESET);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE: return AR_ETLS;
    case CURLE_FILESIZE_EXCEEDED: return AR_ETOOBIG;
    case CURLE_OUT_OF_MEMORY: return AR_ENOMEM;
    default: return AR_EUPSTREAM;
    }
}

void ar_upstream__done(ar_upstream_t *up, CURL *easy, CURLcode code)
{
    ar_transfer_t *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    if (!t)
        return;
    if (t->cancelled) {
        ar_upstream__release(up, t);
        return;
    }
    int err = t->user_err ? t->user_err : map_curl_error(t, code);
    if (err == 0 && !t->head_sent) {
        /* A response without a body. The callback may cancel: defer that like in curl. */
        up->in_curl++;
        err = deliver_head(t);
        up->in_curl--;
    }
    const char *detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
    /* Detach before the callback: it may start a new transfer that reuses this one. */
    ar_transfer_cbs_t cbs = t->cbs;
    void *ud = t->ud;
    char detail_copy[CURL_ERROR_SIZE];
    snprintf(detail_copy, sizeof(detail_copy), "%s", err ? detail : "");
    if (t->cancelled) {
        ar_upstream__release(up, t);
        return;
    }
    ar_upstream__release(up, t);
    cbs.on_done(ud, err, detail_copy);
}

int ar_collect_head(void *ud, int status, const ar_header_t *h, size_t n)
{
    (void)h;
    (void)n;
    ((ar_collected_t *)ud)->status = status;
    return 0;
}

int ar_collect_data(void *ud, ar_span_t data)
{
    return ar_buf_append_span(&((ar_collected_t *)ud)->body, data);
}
