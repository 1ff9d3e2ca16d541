/*
 * gateway.c: the service's lifecycle on the main thread: load the config, build the
 * runtime, start the workers (each with its own upstream client), then wait for signals:
 * SIGTERM/SIGINT drain and stop (SPEC section 9), SIGHUP reloads (a new runtime is built
 * beside the old one and swapped in; requests keep the one they started with).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "gateway/gateway_int.h"

#define DRAIN_POLL_MS 20
#define CANCEL_GRACE_MS 2000

static void apply_logging(const ar_config_t *cfg)
{
    ar_log_set_level((ar_log_level_t)cfg->server.logging_level);
    ar_log_set_format((ar_log_format_t)cfg->server.log_format);
    /* every secret in the config is masked in every line */
    size_t n = 0;
    const char **secrets = ar_xcalloc(cfg->credentials_cnt * 2 + 4, sizeof(char *));
    secrets[n++] = cfg->server.master_key;
    secrets[n++] = cfg->storage.secret_key;
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        secrets[n++] = cfg->credentials[i].api_key;
        secrets[n++] = cfg->credentials[i].credentials_json;
    }
    ar_redact_set_secrets(secrets, n);
    ar_free(secrets);
    if (cfg->monitoring.log_errors && cfg->monitoring.errors_log_path) {
        if (ar_log_set_error_file(cfg->monitoring.errors_log_path) != 0)
            AR_LOG(AR_LOG_ERROR, NULL, "cannot open errors log %s",
                   cfg->monitoring.errors_log_path);
    } else {
        (void)ar_log_set_error_file(NULL);
    }
}

/* The server's options from the config: at start, and its limits again on reload. */
static ar_server_opts_t server_opts(const ar_server_conf_t *sc)
{
    ar_server_opts_t o = {
        .host = sc->host,
        .port = sc->port,
        .workers = sc->workers,
        .max_body_bytes = (uint64_t)sc->max_body_size_mb << 20,
        .max_header_bytes = 64u * 1024u,
        .idle_timeout_ms = sc->idle_timeout_ms,
        .write_timeout_ms = sc->write_timeout_ms,
        .header_timeout_ms = sc->header_timeout_ms,
        .max_connections = sc->max_connections,
    };
    return o;
}

/* Keys that are set but do nothing yet: one line each, so they never pass silently. */
static void log_config_warnings(const ar_config_t *cfg)
{
    for (size_t i = 0; i < cfg->warnings.cnt; i++)
        AR_LOG(AR_LOG_WARN, NULL, "%s", cfg->warnings.items[i]);
}

/*
 * The upstream pool settings of worker i of n. libcurl keeps one connection pool per worker,
 * so the process-wide max_idle_conns is split between them: n equal shares, the remainder
 * going to the first workers (a worker whose share is 0 keeps no idle connection).
 */
static ar_upstream_opts_t upstream_opts(const ar_server_conf_t *sc, int i, int n)
{
    int64_t total = sc->max_idle_conns;
    int64_t share = total;
    if (total >= 0 && n > 0)
        share = total / n + (i < total % n ? 1 : 0);
    return (ar_upstream_opts_t){
        .max_idle_conns = share,
        .idle_conn_timeout_ms = sc->idle_conn_timeout_ms,
    };
}

static int worker_init(ar_worker_t *w, void *ud)
{
    ar_gateway_t *gw = ud;
    ar_runtime_t *rt = ar_runtime_acquire(gw);
    ar_upstream_opts_t uo =
        upstream_opts(&rt->cfg->server, w->id, ar_server_worker_cnt(gw->server));
    ar_runtime_release(rt);
    ar_gw_worker_t *gwk = ar_xcalloc(1, sizeof(*gwk));
    gwk->gw = gw;
    gwk->worker = w;
    gwk->up = ar_upstream_create(w->loop, &uo);
    if (!gwk->up) {
        ar_free(gwk);
        return AR_ENOMEM;
    }
    ar_list_init(&gwk->unflushed);
    ar_upstream_on_settled(gwk->up, ar_gw_flush_streams, gwk);
    ar_gw_spend_worker_init(gwk);
    if (gw->redis)
        gwk->redis = ar_redis_conn_open(gw->redis, w->loop);
    w->data = gwk;
    return 0;
}

static void worker_dispose(ar_worker_t *w, void *ud)
{
    (void)ud;
    ar_gw_worker_t *gwk = w->data;
    if (!gwk)
        return;
    ar_gw_leases_dispose(gwk); /* its last renewals go out on the connection */
    ar_redis_conn_close(gwk->redis);
    ar_upstream_close(gwk->up);
    ar_gw_spend_worker_dispose(gwk);
    ar_free(gwk);
    w->data = NULL;
}

/* ---- shutdown ---- */

static void on_closed_noop(uv_handle_t *h)
{
    (void)h;
}

static void stop_now(ar_gateway_t *gw)
{
    uv_timer_stop(&gw->drain_timer);
    uv_close((uv_handle_t *)&gw->drain_timer, on_closed_noop);
    uv_close((uv_handle_t *)&gw->sig_term, on_closed_noop);
    uv_close((uv_handle_t *)&gw->sig_int, on_closed_noop);
    uv_close((uv_handle_t *)&gw->sig_hup, on_closed_noop);
    ar_gw_proxies_stop(gw);
    ar_gw_tokens_stop(gw);
    ar_gw_tenancy_poll_stop(gw);
    ar_server_stop(gw->server);
    AR_LOG(AR_LOG_INFO, NULL, "stopped");
}

static void on_drain_tick(uv_timer_t *t)
{
    ar_gateway_t *gw = t->data;
    ar_runtime_t *rt = atomic_load(&gw->rt);
    long in_flight = ar_server_in_flight(gw->server);
    uint64_t elapsed = ar_now_ms() - gw->drain_started_ms;
    int64_t limit = rt->cfg->server.shutdown_timeout_ms;
    /* store answers and spend acknowledgements on their way to a worker count as running */
    in_flight += ar_gw_tenancy_outstanding(gw);
    in_flight += ar_gw_litellm_outstanding(gw);
    if (in_flight == 0) {
        stop_now(gw);
        return;
    }
    if (!gw->cancelled && limit >= 0 && elapsed >= (uint64_t)limit) {
        AR_LOG(AR_LOG_INFO, NULL, "shutdown timeout: cancelling %ld running requests", in_flight);
        gw->cancelled = true;
        ar_server_cancel_all(gw->server);
        return;
    }
    if (gw->cancelled && limit >= 0 && elapsed >= (uint64_t)limit + CANCEL_GRACE_MS)
        stop_now(gw); /* whatever is left could not even be cancelled in time */
}

static void begin_shutdown(ar_gateway_t *gw, const char *why)
{
    if (gw->draining) {
        if (!gw->cancelled) {
            AR_LOG(AR_LOG_INFO, NULL, "%s again: cancelling running requests now", why);
            gw->cancelled = true;
            ar_server_cancel_all(gw->server);
        }
        return;
    }
    AR_LOG(AR_LOG_INFO, NULL, "%s: draining (%ld requests running)", why,
           ar_server_in_flight(gw->server));
    gw->draining = true;
    gw->drain_started_ms = ar_now_ms();
    ar_server_drain(gw->server);
    uv_timer_start(&gw->drain_timer, on_drain_tick, DRAIN_POLL_MS, DRAIN_POLL_MS);
}

/* ---- reload ---- */

typedef struct swap {
    ar_gateway_t *gw;
    ar_runtime_t *old;
    _Atomic int pending;
    uv_async_t done;
} swap_t;

static void on_swap_closed(uv_handle_t *h)
{
    swap_t *s = h->data;
    ar_runtime_release(s->old); /* the gateway's reference; requests may still hold theirs */
    ar_free(s);
}

static void on_swap_done(uv_async_t *a)
{
    uv_close((uv_handle_t *)a, on_swap_closed);
}

static void worker_passed(ar_worker_t *w, void *arg)
{
    swap_t *s = arg;
    ar_gw_worker_t *gwk = w->data;
    /* The upstream pool follows the new configuration from the next transfer on. */
    if (gwk) {
        ar_runtime_t *rt = ar_runtime_acquire(s->gw);
        ar_upstream_opts_t uo =
            upstream_opts(&rt->cfg->server, w->id, ar_server_worker_cnt(s->gw->server));
        ar_upstream_set_opts(gwk->up, &uo);
        ar_runtime_release(rt);
    }
    if (atomic_fetch_sub(&s->pending, 1) == 1)
        uv_async_send(&s->done);
}

/*
 * A runtime from the config file's config plus the store's entries (sm, may be NULL), made
 * ready to serve. When the entries cannot be added and without_store_ok, the file's
 * config alone is used (a reload must not fail for the store's sake). @return NULL with err
 * set on failure.
 */
static ar_runtime_t *build_runtime(ar_gateway_t *gw, ar_config_t *file_cfg,
                                   const ar_gw_store_models_t *sm, bool without_store_ok, char *err,
                                   size_t errlen)
{
    ar_config_t *cfg = NULL;
    if (sm && sm->creds_cnt) {
        char why[256] = "";
        if (ar_config_extend(file_cfg, sm->creds, sm->creds_cnt, sm->models, sm->models_cnt, &cfg,
                             why, sizeof(why)) != 0) {
            if (!without_store_ok) {
                snprintf(err, errlen, "store connections: %s", why);
                return NULL;
            }
            AR_LOG(AR_LOG_ERROR, NULL, "store connections not served: %s", why);
        }
    }
    if (!cfg)
        cfg = ar_config_ref(file_cfg);
    ar_runtime_t *rt = ar_runtime_build(cfg, gw->state, err, errlen);
    ar_config_unref(cfg);
    if (!rt)
        return NULL;
    ar_runtime_discover(rt);
    ar_gw_tokens_prime(rt);
    if (ar_gw_models_build(rt) != 0) {
        ar_runtime_release(rt);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return rt;
}

/* Installs rt (taken) in place of the running runtime: logging, limits, then the swap. */
static void swap_in(ar_gateway_t *gw, ar_runtime_t *rt)
{
    ar_runtime_t *cur = atomic_load(&gw->rt);
    const ar_server_conf_t *a = &cur->cfg->server, *b = &rt->cfg->server;
    if (a->port != b->port || strcmp(a->host, b->host) != 0 || a->workers != b->workers)
        AR_LOG(AR_LOG_WARN, NULL, "reload: host, port and workers change only on restart");
    apply_logging(rt->cfg); /* the new secrets are masked before anything can log them */
    ar_server_opts_t limits = server_opts(b);
    ar_server_set_limits(gw->server, &limits);
    /* Swap, then free the old runtime only after every worker passed a quiescent point:
     * a worker that loaded the old pointer has taken its reference by then. */
    swap_t *s = ar_xcalloc(1, sizeof(*s));
    s->gw = gw;
    s->old = atomic_exchange(&gw->rt, rt);
    int n = ar_server_worker_cnt(gw->server);
    atomic_init(&s->pending, n);
    uv_async_init(gw->main_loop, &s->done, on_swap_done);
    s->done.data = s;
    for (int i = 0; i < n; i++)
        ar_worker_post(ar_server_worker(gw->server, i), worker_passed, s);
}

static void reload(ar_gateway_t *gw)
{
    ar_config_t *cfg = NULL;
    ar_strlist_t errors = {0};
    if (ar_config_load(gw->config_path, &cfg, &errors) != 0) {
        for (size_t i = 0; i < errors.cnt; i++)
            AR_LOG(AR_LOG_ERROR, NULL, "reload rejected: %s", errors.items[i]);
        ar_strlist_dispose(&errors);
        AR_LOG(AR_LOG_ERROR, NULL, "reload rejected: keeping the running configuration");
        return;
    }
    char err[256] = "";
    ar_runtime_t *rt = build_runtime(gw, cfg, gw->store_models, true, err, sizeof(err));
    if (!rt) {
        ar_config_unref(cfg);
        AR_LOG(AR_LOG_ERROR, NULL, "reload rejected: %s", err);
        return;
    }
    log_config_warnings(cfg);
    ar_config_unref(gw->file_cfg);
    gw->file_cfg = cfg;
    swap_in(gw, rt);
    ar_gw_prices_load(gw, rt->cfg);
    AR_LOG(AR_LOG_INFO, NULL, "configuration reloaded from %s", gw->config_path);
}

void ar_gw_store_models_apply(ar_gateway_t *gw, ar_gw_store_models_t *sm)
{
    char err[256] = "";
    ar_runtime_t *rt = build_runtime(gw, gw->file_cfg, sm, false, err, sizeof(err));
    if (!rt) {
        AR_LOG(AR_LOG_ERROR, NULL,
               "store change not applied: %s; keeping the running "
               "configuration",
               err);
        ar_gw_store_models_free(sm);
        return;
    }
    ar_gw_store_models_free(gw->store_models);
    gw->store_models = sm;
    swap_in(gw, rt);
    AR_LOG(AR_LOG_INFO, NULL, "store connections applied: %zu connections, %zu models",
           sm ? sm->creds_cnt : 0, sm ? sm->models_cnt : 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    ar_gateway_t *gw = h->data;
    if (signum == SIGHUP) {
        if (!gw->draining)
            reload(gw);
        return;
    }
    begin_shutdown(gw, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

int ar_gateway_run(const char *config_path)
{
    ar_config_t *cfg = NULL;
    ar_strlist_t errors = {0};
    int rc = ar_config_load(config_path, &cfg, &errors);
    if (rc != 0) {
        for (size_t i = 0; i < errors.cnt; i++)
            fprintf(stderr, "%s\n", errors.items[i]);
        ar_strlist_dispose(&errors);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    apply_logging(cfg);
    log_config_warnings(cfg);

    ar_gateway_t *gw = ar_xcalloc(1, sizeof(*gw));
    gw->started_ms = ar_now_ms();
    gw->config_path = ar_xstrdup(config_path);
    gw->state = ar_router_state_create();
    gw->timeseries = ar_ts_create();
    gw->file_cfg = cfg;
    char err[256] = "";
    int exit_code = 0;
    ar_runtime_t *rt = NULL;
    /* the store first: an unapplied journal is replayed before any request is served, and
     * its connections serve from the first request on */
    if (ar_gw_tenancy_start(gw, cfg, err, sizeof(err)) != 0) {
        AR_LOG(AR_LOG_ERROR, NULL, "%s", err);
        exit_code = 1;
        goto out;
    }
    if (ar_gw_litellm_start(gw, cfg, err, sizeof(err)) != 0) {
        AR_LOG(AR_LOG_ERROR, NULL, "%s", err);
        exit_code = 1;
        goto out;
    }
    gw->store_models = ar_gw_tenancy_load_models(gw);
    rt = build_runtime(gw, cfg, gw->store_models, true, err, sizeof(err));
    if (!rt) {
        fprintf(stderr, "%s: %s\n", config_path, err);
        exit_code = 2;
        goto out;
    }
    apply_logging(rt->cfg);
    atomic_store(&gw->rt, rt);

    if (cfg->storage.redis_url) {
        /* read once: a reload keeps the connections it has */
        gw->redis_configured = true;
        gw->redis = ar_redis_create(cfg->storage.redis_url, err, sizeof(err));
        if (!gw->redis)
            AR_LOG(AR_LOG_ERROR, NULL, "%s: shared limits stay per instance (divided by %lld)", err,
                   (long long)cfg->storage.redis_instances);
    }
    const ar_server_conf_t *sc = &rt->cfg->server;
    ar_server_opts_t opts = server_opts(sc);
    ar_server_cbs_t cbs = {
        .on_request = ar_gw_on_request,
        .on_head = ar_gw_on_head,
        .worker_init = worker_init,
        .worker_dispose = worker_dispose,
        .ud = gw,
    };
    /* signals first: a SIGTERM that arrives as soon as the port opens must drain, not kill */
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw->main_loop = &loop;
    uv_timer_init(&loop, &gw->drain_timer);
    gw->drain_timer.data = gw;
    uv_signal_t *sigs[] = {&gw->sig_term, &gw->sig_int, &gw->sig_hup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&loop, sigs[i]);
        sigs[i]->data = gw;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    gw->server = ar_server_create(&opts, &cbs);
    if (ar_server_start(gw->server, err, sizeof(err)) != 0) {
        AR_LOG(AR_LOG_ERROR, NULL, "%s", err);
        ar_server_stop(gw->server);
        for (int i = 0; i < 3; i++)
            uv_close((uv_handle_t *)sigs[i], on_closed_noop);
        uv_close((uv_handle_t *)&gw->drain_timer, on_closed_noop);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        exit_code = 1;
        goto out;
    }
    ar_gw_proxies_start(gw);
    ar_gw_tokens_start(gw);
    ar_gw_tenancy_poll_start(gw);
    ar_gw_prices_load(gw, rt->cfg); /* after the workers: libcurl is initialised */
    AR_LOG(AR_LOG_INFO, NULL,
           "airouter listening on %s:%d (%d workers, %zu credentials, %zu models)", sc->host,
           ar_server_port(gw->server), ar_server_worker_cnt(gw->server), rt->cfg->credentials_cnt,
           rt->cfg->models_cnt);

    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    exit_code = gw->exit_code;

out:
    if (gw->server)
        ar_server_destroy(gw->server);
    ar_gw_tenancy_stop(gw); /* the spend journal is applied whole before exit */
    ar_gw_litellm_stop(gw); /* the spend rows still queued are written */
    ar_gw_prices_stop(gw);
    ar_runtime_release(atomic_load(&gw->rt));
    ar_config_unref(gw->file_cfg);
    ar_gw_store_models_free(gw->store_models);
    ar_gw_ratelimit_destroy(gw);
    ar_router_state_destroy(gw->state);
    ar_ts_destroy(gw->timeseries);
    ar_redis_destroy(gw->redis);
    ar_free(gw->config_path);
    ar_free(gw);
    return exit_code;
}
