/*
 * proxies.c: the health of remote airouter instances (`type: proxy` credentials). The
 * main thread fetches each one's /health at start and every 30 s, through an upstream
 * client on the main loop, and publishes the results as an immutable snapshot that
 * /health embeds under `proxies`. Workers only take and drop references to snapshots.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "gateway/gateway_int.h"

#define POLL_INTERVAL_MS 30000
#define PROBE_TIMEOUT_MS 5000
#define PROBE_BODY_MAX (1u << 20)

typedef struct probe {
    ar_collected_t got; /* first: the collect callbacks see the probe as one */
    struct ar_proxy_poller *pp;
    char *name;
    char *url;
    char *health_url;
    char *auth_line;
    ar_http_req_t req;
    ar_transfer_t *xfer;
    int err;
    char detail[160];
} probe_t;

typedef struct ar_proxy_poller {
    ar_gateway_t *gw;
    uv_timer_t timer;
    ar_upstream_t *up;
    probe_t *probes;
    size_t cnt;
    size_t pending;
    ar_proxy_snapshot_t *last; /* the published one (also referenced by gw->proxies) */
} ar_proxy_poller_t;

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;

static ar_proxy_snapshot_t *snapshot_new(size_t cnt)
{
    ar_proxy_snapshot_t *s = ar_xcalloc(1, sizeof(*s) + cnt * sizeof(ar_proxy_health_t));
    atomic_init(&s->refs, 1);
    s->cnt = cnt;
    return s;
}

void ar_gw_proxies_release(ar_proxy_snapshot_t *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->cnt; i++) {
        ar_free((char *)s->items[i].name);
        ar_free((char *)s->items[i].url);
        ar_free(s->items[i].body);
        ar_free(s->items[i].error);
    }
    ar_free(s);
}

ar_proxy_snapshot_t *ar_gw_proxies_acquire(ar_gateway_t *gw)
{
    /* /health is rare: a mutex keeps load-then-ref safe against a concurrent swap */
    pthread_mutex_lock(&snap_mu);
    ar_proxy_snapshot_t *s = atomic_load(&gw->proxies);
    if (!s) {
        s = snapshot_new(0);
        atomic_store(&gw->proxies, s);
    }
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&snap_mu);
    return s;
}

static void publish(ar_gateway_t *gw, ar_proxy_snapshot_t *s)
{
    pthread_mutex_lock(&snap_mu);
    ar_proxy_snapshot_t *old = atomic_exchange(&gw->proxies, s);
    pthread_mutex_unlock(&snap_mu);
    ar_gw_proxies_release(old);
}

static void probe_free(probe_t *p)
{
    if (p->xfer)
        ar_transfer_cancel(p->xfer);
    ar_free(p->name);
    ar_free(p->url);
    ar_free(p->health_url);
    ar_free(p->auth_line);
    ar_buf_dispose(&p->got.body);
}

static void round_free(ar_proxy_poller_t *pp)
{
    for (size_t i = 0; i < pp->cnt; i++)
        probe_free(&pp->probes[i]);
    ar_free(pp->probes);
    pp->probes = NULL;
    pp->cnt = 0;
    pp->pending = 0;
}

/* The results of the finished round become the published snapshot. */
static void round_publish(ar_proxy_poller_t *pp, bool checked)
{
    ar_proxy_snapshot_t *s = snapshot_new(pp->cnt);
    int64_t now = ar_wall_ms();
    for (size_t i = 0; i < pp->cnt; i++) {
        probe_t *p = &pp->probes[i];
        ar_proxy_health_t *h = &s->items[i];
        h->name = ar_xstrdup(p->name);
        h->url = ar_xstrdup(p->url);
        if (!checked)
            continue;
        h->checked_at_ms = now;
        h->status = p->got.status;
        bool json =
            p->got.body.len > 0 && ar_json_validate(ar_buf_span(&p->got.body), NULL, 0) == 0;
        h->reachable = p->err == 0 && p->got.status == 200 && json;
        if (h->reachable) {
            h->body = ar_xstrndup(p->got.body.ptr, p->got.body.len);
        } else {
            char msg[200];
            if (p->err)
                snprintf(msg, sizeof(msg), "%s: %s", ar_err_message(p->err), p->detail);
            else if (p->got.status != 200)
                snprintf(msg, sizeof(msg), "answered %d", p->got.status);
            else
                snprintf(msg, sizeof(msg), "answered 200 without a JSON body");
            h->error = ar_xstrdup(msg);
        }
    }
    publish(pp->gw, s);
}

static void probe_done(void *ud, int err, const char *detail)
{
    probe_t *p = ud;
    ar_proxy_poller_t *pp = p->pp;
    p->xfer = NULL;
    p->err = err;
    snprintf(p->detail, sizeof(p->detail), "%s", detail ? detail : "");
    if (err)
        AR_LOG(AR_LOG_WARN, NULL, "proxy %s: /health unreachable: %s", p->name,
               ar_err_message(err));
    if (--pp->pending == 0)
        round_publish(pp, true);
}

static const ar_transfer_cbs_t probe_cbs = {ar_collect_head, ar_collect_data, probe_done};

static void start_round(ar_proxy_poller_t *pp)
{
    if (pp->pending > 0)
        return; /* the previous round is still running (timeouts are 5 s) */
    round_free(pp);
    ar_runtime_t *rt = ar_runtime_acquire(pp->gw);
    const ar_config_t *cfg = rt->cfg;
    size_t n = 0;
    for (size_t i = 0; i < cfg->credentials_cnt; i++)
        n += cfg->credentials[i].type == AR_CRED_PROXY;
    pp->probes = ar_xcalloc(n ? n : 1, sizeof(probe_t));
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        const ar_cred_conf_t *c = &cfg->credentials[i];
        if (c->type != AR_CRED_PROXY)
            continue;
        probe_t *p = &pp->probes[pp->cnt++];
        p->pp = pp;
        p->name = ar_xstrdup(c->name);
        p->url = ar_xstrdup(c->base_url ? c->base_url : "");
        size_t ul = strlen(p->url) + 16;
        p->health_url = ar_xmalloc(ul);
        snprintf(p->health_url, ul, "%s/health", p->url);
        ar_buf_init(&p->got.body, PROBE_BODY_MAX);
        p->req.method = "GET";
        p->req.url = p->health_url;
        if (c->api_key) {
            size_t al = strlen(c->api_key) + 32;
            p->auth_line = ar_xmalloc(al);
            snprintf(p->auth_line, al, "Authorization: Bearer %s", c->api_key);
            (void)ar_http_req_add_header(&p->req, p->auth_line);
        }
    }
    ar_runtime_release(rt);
    if (pp->cnt == 0) {
        round_publish(pp, false);
        return;
    }
    ar_transfer_opts_t to = {.timeout_ms = PROBE_TIMEOUT_MS,
                             .connect_timeout_ms = 3000,
                             .max_response_bytes = PROBE_BODY_MAX};
    pp->pending = pp->cnt;
    for (size_t i = 0; i < pp->cnt; i++) {
        probe_t *p = &pp->probes[i];
        int err = 0;
        p->xfer = ar_transfer_start(pp->up, &p->req, &to, &probe_cbs, p, &err);
        if (!p->xfer) {
            p->err = err;
            snprintf(p->detail, sizeof(p->detail), "cannot start the request");
            pp->pending--;
        }
    }
    if (pp->pending == 0)
        round_publish(pp, true);
}

static void on_poll_timer(uv_timer_t *t)
{
    start_round(t->data);
}

void ar_gw_proxies_start(ar_gateway_t *gw)
{
    ar_proxy_poller_t *pp = ar_xcalloc(1, sizeof(*pp));
    pp->gw = gw;
    ar_upstream_opts_t uo = {.max_idle_conns = 8, .idle_conn_timeout_ms = 60000};
    pp->up = ar_upstream_create(gw->main_loop, &uo);
    uv_timer_init(gw->main_loop, &pp->timer);
    pp->timer.data = pp;
    gw->poller = pp;
    /* the first round right away (next loop turn), then every 30 s */
    uv_timer_start(&pp->timer, on_poll_timer, 0, POLL_INTERVAL_MS);
}

static void on_timer_closed(uv_handle_t *h)
{
    ar_free(h->data);
}

void ar_gw_proxies_stop(ar_gateway_t *gw)
{
    ar_proxy_poller_t *pp = gw->poller;
    if (!pp)
        return;
    gw->poller = NULL;
    round_free(pp); /* cancels running probes: no callback follows */
    ar_upstream_close(pp->up);
    uv_timer_stop(&pp->timer);
    uv_close((uv_handle_t *)&pp->timer, on_timer_closed);
    publish(gw, NULL);
}
