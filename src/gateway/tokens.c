/*
 * tokens.c: access tokens for providers that need one (AR_PROV_TOKEN: vertex-ai with a
 * service account). Before a runtime serves, ar_gw_tokens_prime fetches every token on a
 * private loop with bounded timeouts (as ar_runtime_discover does), so the first requests
 * already have one. Afterwards a main-loop timer renews each token when its provider says
 * (60 s before expiry), retrying with backoff on failure, with at most one request in
 * flight per credential, always for the providers of the runtime currently installed.
 * Workers never wait for a token: a provider without one skips its attempt (AR_EUNAVAIL: not counted against it).
 * Everything here runs on the main thread.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "gateway/gateway_int.h"

#define TICK_MS 500
#define FETCH_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 5000
#define TOKEN_BODY_MAX (64u << 10)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

/* One credential's token fetch, reused for every renewal. */
typedef struct tok_slot {
    ar_collected_t got; /* first: the collect callbacks see the slot as one */
    ar_provider_t *prov;
    const char *name; /* the credential's, owned by the runtime's config */
    ar_pool_t *pool;  /* the request of the fetch in flight */
    ar_http_req_t req;
    ar_transfer_t *xfer;
    bool busy;     /* a fetch is in flight */
    bool unneeded; /* the provider has no token to fetch (vertex-ai with an api_key) */
    int failures;
    int64_t refresh_at_wall_ms;
} tok_slot_t;

struct ar_gw_tokens {
    ar_gateway_t *gw;
    uv_timer_t timer;
    ar_upstream_t *up;
    ar_runtime_t *rt; /* whose providers the slots refresh (a reference) */
    tok_slot_t *slots;
    size_t cnt;
};

/* Prepares the slot of credential i. @return whether its provider may need a token. */
static bool slot_init(tok_slot_t *s, ar_runtime_t *rt, size_t i)
{
    memset(s, 0, sizeof(*s));
    s->prov = rt->providers[i];
    s->name = rt->cfg->credentials[i].name;
    ar_buf_init(&s->got.body, TOKEN_BODY_MAX);
    return ar_provider_can(s->prov, AR_PROV_TOKEN);
}

static void slot_reset(tok_slot_t *s)
{
    if (s->xfer)
        ar_transfer_cancel(s->xfer);
    s->xfer = NULL;
    s->busy = false;
    ar_pool_destroy(s->pool);
    s->pool = NULL;
}

static void slot_dispose(tok_slot_t *s)
{
    slot_reset(s);
    ar_buf_dispose(&s->got.body);
}

static int64_t backoff_ms(int failures)
{
    int64_t d = BACKOFF_MIN_MS;
    for (int i = 1; i < failures && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

/* A fetch ended (err = transport error, else the answer is in status/body). */
static void slot_finish(tok_slot_t *s, int err, const char *detail)
{
    int64_t now = ar_wall_ms();
    int64_t at = 0;
    int rc = err ? err
                 : ar_provider_token_response(s->prov, s->got.status, ar_buf_span(&s->got.body),
                                              now, &at);
    if (rc == 0) {
        if (s->failures)
            AR_LOG(AR_LOG_INFO, NULL, "credential %s: access token obtained again", s->name);
        s->failures = 0;
        s->refresh_at_wall_ms = at;
    } else {
        s->failures++;
        s->refresh_at_wall_ms = now + backoff_ms(s->failures);
        ar_log_ctx_t lc = {NULL, s->name, NULL, "fetching an access token"};
        if (err)
            AR_LOG(AR_LOG_WARN, &lc, "%s (%s); retrying in %lld ms", ar_err_message(err),
                   detail ? detail : "", (long long)(s->refresh_at_wall_ms - now));
        else
            AR_LOG(AR_LOG_WARN, &lc, "token endpoint answered %d: %s; retrying in %lld ms",
                   s->got.status, ar_err_message(rc), (long long)(s->refresh_at_wall_ms - now));
    }
    s->busy = false;
    ar_pool_destroy(s->pool);
    s->pool = NULL;
}

static void on_done(void *ud, int err, const char *detail)
{
    tok_slot_t *s = ud;
    s->xfer = NULL;
    slot_finish(s, err, detail);
}

static const ar_transfer_cbs_t fetch_cbs = {ar_collect_head, ar_collect_data, on_done};

/* Starts the fetch of s on up. @return false when it could not start (s is finished). */
static bool slot_start(tok_slot_t *s, ar_upstream_t *up)
{
    static const ar_transfer_opts_t to = {.timeout_ms = FETCH_TIMEOUT_MS,
                                          .connect_timeout_ms = CONNECT_TIMEOUT_MS,
                                          .max_response_bytes = TOKEN_BODY_MAX};
    s->pool = ar_pool_create(4096);
    s->got.status = 0;
    ar_buf_reset(&s->got.body);
    memset(&s->req, 0, sizeof(s->req));
    s->busy = true;
    int err = ar_provider_token_request(s->prov, s->pool, ar_wall_ms(), &s->req);
    if (err == AR_ENOTFOUND) {
        s->unneeded = true;
        s->busy = false;
        ar_pool_destroy(s->pool);
        s->pool = NULL;
        return false;
    }
    if (!err && up)
        s->xfer = ar_transfer_start(up, &s->req, &to, &fetch_cbs, s, &err);
    else if (!err)
        err = AR_ENOMEM;
    if (!s->xfer) {
        slot_finish(s, err, "cannot start the request");
        return false;
    }
    return true;
}

/* ---- priming, before a runtime serves ---- */

void ar_gw_tokens_prime(ar_runtime_t *rt)
{
    const ar_config_t *cfg = rt->cfg;
    size_t n = cfg->credentials_cnt;
    /* when to renew each token: the timer reads it when it adopts this runtime */
    ar_free(rt->token_refresh_at);
    rt->token_refresh_at = ar_xcalloc(n ? n : 1, sizeof(int64_t));
    tok_slot_t *slots = ar_xcalloc(n ? n : 1, sizeof(*slots));
    bool *wanted = ar_xcalloc(n ? n : 1, sizeof(bool));
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        wanted[i] = slot_init(&slots[i], rt, i);
        any = any || wanted[i];
    }
    if (any) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        ar_upstream_opts_t uo = {.max_idle_conns = 4, .idle_conn_timeout_ms = 1000};
        ar_upstream_t *up = ar_upstream_create(&loop, &uo);
        for (size_t i = 0; i < n; i++) {
            if (wanted[i])
                slot_start(&slots[i], up);
        }
        /* every transfer has a deadline, so this ends within FETCH_TIMEOUT_MS */
        for (;;) {
            bool pending = false;
            for (size_t i = 0; i < n; i++)
                pending = pending || slots[i].busy;
            if (!pending)
                break;
            uv_run(&loop, UV_RUN_ONCE);
        }
        ar_upstream_close(up);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    for (size_t i = 0; i < n; i++) {
        if (wanted[i] && !slots[i].unneeded) {
            rt->token_refresh_at[i] = slots[i].refresh_at_wall_ms;
            if (slots[i].failures == 0)
                AR_LOG(AR_LOG_INFO, NULL, "credential %s: access token obtained", slots[i].name);
        }
        slot_dispose(&slots[i]);
    }
    ar_free(wanted);
    ar_free(slots);
}

/* ---- the renewal timer, on the main loop ---- */

static void drop_slots(struct ar_gw_tokens *tk)
{
    for (size_t i = 0; i < tk->cnt; i++)
        slot_dispose(&tk->slots[i]);
    ar_free(tk->slots);
    tk->slots = NULL;
    tk->cnt = 0;
    ar_runtime_release(tk->rt);
    tk->rt = NULL;
}

/* Switches to the runtime now installed: its providers, with the times its prime set. */
static void adopt(struct ar_gw_tokens *tk)
{
    drop_slots(tk);
    tk->rt = ar_runtime_acquire(tk->gw);
    ar_runtime_t *rt = tk->rt;
    size_t n = rt->cfg->credentials_cnt;
    tk->slots = ar_xcalloc(n ? n : 1, sizeof(tok_slot_t));
    int64_t now = ar_wall_ms();
    const int64_t *primed = rt->token_refresh_at;
    for (size_t i = 0; i < n; i++) {
        tok_slot_t tmp;
        if (!slot_init(&tmp, rt, i)) {
            ar_buf_dispose(&tmp.got.body);
            continue;
        }
        tok_slot_t *s = &tk->slots[tk->cnt++];
        *s = tmp;
        /* 0: not primed (a credential without a token, or a runtime that was never
         * primed): ask right away; a provider without a token then says so once */
        s->refresh_at_wall_ms = primed && primed[i] ? primed[i] : now;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct ar_gw_tokens *tk = t->data;
    ar_runtime_t *cur = atomic_load(&tk->gw->rt);
    if (cur != tk->rt)
        adopt(tk);
    int64_t now = ar_wall_ms();
    for (size_t i = 0; i < tk->cnt; i++) {
        tok_slot_t *s = &tk->slots[i];
        if (!s->busy && !s->unneeded && s->refresh_at_wall_ms <= now)
            slot_start(s, tk->up);
    }
}

void ar_gw_tokens_start(ar_gateway_t *gw)
{
    struct ar_gw_tokens *tk = ar_xcalloc(1, sizeof(*tk));
    tk->gw = gw;
    ar_upstream_opts_t uo = {.max_idle_conns = 4, .idle_conn_timeout_ms = 60000};
    tk->up = ar_upstream_create(gw->main_loop, &uo);
    uv_timer_init(gw->main_loop, &tk->timer);
    tk->timer.data = tk;
    gw->tokens = tk;
    /* adopt the installed runtime on the next loop turn, then look every TICK_MS: a
     * reload is noticed within one tick, a renewal is late by at most one */
    uv_timer_start(&tk->timer, on_tick, 0, TICK_MS);
}

static void on_timer_closed(uv_handle_t *h)
{
    ar_free(h->data);
}

void ar_gw_tokens_stop(ar_gateway_t *gw)
{
    struct ar_gw_tokens *tk = gw->tokens;
    if (!tk)
        return;
    gw->tokens = NULL;
    drop_slots(tk); /* cancels fetches in flight: no callback follows */
    ar_upstream_close(tk->up);
    uv_timer_stop(&tk->timer);
    uv_close((uv_handle_t *)&tk->timer, on_timer_closed);
}
