/*
 * spend.c: the spend records of the LLM requests a worker serves (SPEC section 6). The
 * end of each answer is held (ar_http_hold_end) from the start of the request; when it
 * ends, its record joins the group of this loop turn, and the group goes to the ledger's
 * journal as one entry when the turn ends. Once the journal thread has handed the bytes
 * to the kernel, one post to the worker releases every answer of the group. So no record
 * of an answer a client received is lost to a crash, and the cost per request is an
 * encode and a pointer, not a lock and a thread wake-up.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "gateway/gateway_int.h"
#include "tenant/ledger.h"

void ar_gw_spend_hold(ar_http_request_t *req)
{
    if (ar_gw_tenancy_ledger(((ar_gw_worker_t *)req->worker->data)->gw->tenancy))
        ar_http_hold_end(req);
}

/*
 * Records are handed to the journal in groups: what a worker finished during one turn of
 * its loop goes as one entry (one lock, one wake-up of the journal thread), and comes back
 * as one post that ends all those answers. A uv_check handle, active only while a group is
 * open, closes the group at the end of the turn.
 */
typedef struct spend_group {
    ar_gw_worker_t *gwk;
    ar_buf_t lines;
    ar_http_request_t **reqs;
    size_t cnt, cap;
} spend_group_t;

typedef struct ar_gw_spend_batcher {
    uv_check_t check;
    spend_group_t *open; /* the group of this turn, NULL when none */
} ar_gw_spend_batcher_t;

static void group_free(spend_group_t *grp)
{
    ar_buf_dispose(&grp->lines);
    ar_free(grp->reqs);
    ar_free(grp);
}

/* Worker: the group's records are in the kernel: its answers end now. */
static void group_release(ar_worker_t *w, void *arg)
{
    (void)w;
    spend_group_t *grp = arg;
    ar_gw_tenancy_t *t = grp->gwk->gw->tenancy;
    for (size_t i = 0; i < grp->cnt; i++) {
        ar_http_release_end(grp->reqs[i]);
        ar_http_unref(grp->reqs[i]);
    }
    ar_gw_tenancy_track(t, -(long)grp->cnt);
    group_free(grp);
}

/* Journal thread. A failed write was logged by the journal: the answers are not held
 * hostage to it. */
static void group_written(void *ud, int err)
{
    (void)err;
    spend_group_t *grp = ud;
    ar_worker_post(grp->gwk->worker, group_release, grp);
}

/* The end of a loop turn: the open group goes to the journal. */
static void on_turn_end(uv_check_t *h)
{
    ar_gw_worker_t *gwk = h->data;
    ar_gw_spend_batcher_t *b = gwk->spend;
    spend_group_t *grp = b->open;
    b->open = NULL;
    uv_check_stop(h);
    if (!grp)
        return;
    ar_gw_tenancy_t *t = gwk->gw->tenancy;
    if (ar_ledger_append_lines(ar_gw_tenancy_ledger(t), grp->lines.ptr, grp->lines.len, grp->cnt,
                               group_written, grp) != 0) {
        AR_LOG(AR_LOG_ERROR, NULL, "ledger: %zu spend records were not written", grp->cnt);
        group_release(gwk->worker, grp);
    }
}

static void on_batcher_closed_free(uv_handle_t *h)
{
    ar_free(ar_container_of((uv_check_t *)h, ar_gw_spend_batcher_t, check));
}

void ar_gw_spend_worker_init(ar_gw_worker_t *gwk)
{
    ar_gw_spend_batcher_t *b = ar_xcalloc(1, sizeof(*b));
    uv_check_init(gwk->worker->loop, &b->check);
    b->check.data = gwk;
    gwk->spend = b;
}

void ar_gw_spend_worker_dispose(ar_gw_worker_t *gwk)
{
    ar_gw_spend_batcher_t *b = gwk->spend;
    if (!b)
        return;
    gwk->spend = NULL;
    b->check.data = NULL; /* gwk is freed before the close callback runs */
    uv_close((uv_handle_t *)&b->check, on_batcher_closed_free);
}

static void copy_id(char dst[AR_SPEND_ID_MAX], const char *src)
{
    snprintf(dst, AR_SPEND_ID_MAX, "%s", src ? src : "");
}

void ar_gw_spend_record(ar_gw_req_t *g)
{
    ar_http_request_t *http = g->http;
    ar_gw_tenancy_t *t = g->gw->gw->tenancy;
    ar_gw_litellm_record(g); /* a LiteLLM key's row goes to LiteLLM's database */
    if (!ar_gw_tenancy_ledger(t))
        return;
    const ar_usage_t *u = &g->call.usage;
    int64_t prompt, completion;
    ar_gw_billed_tokens(g, &prompt, &completion);
    const ar_tkey_t *k = g->ctx.key;
    int status = ar_http_status(http);
    ar_spend_t r = {
        .ts_ms = ar_wall_ms(),
        .key_id = k ? atomic_load(&k->conf)->id : 0,
        .model = (char *)(g->call.public_model ? g->call.public_model : ""),
        .upstream_model = (char *)(g->dep ? g->dep->upstream_model : ""),
        .credential = (char *)(g->dep ? g->dep->cred->name : ""),
        .prompt_tokens = prompt,
        .completion_tokens = completion,
        .cached_tokens = u->seen ? u->cached_tokens : 0,
        .cache_creation_tokens = u->seen ? u->cache_creation_tokens : 0,
        .reasoning_tokens = u->seen ? u->reasoning_tokens : 0,
        .cost_usd = g->cost_usd,
        .status = status && !ar_http_aborted(http) ? status : 499,
        .latency_ms = (int64_t)((ar_now_us() - http->start_us) / 1000),
        .ttfb_ms = (int64_t)(g->ttfb_us / 1000),
        .stream = g->call.stream,
    };
    ar_gw_tenancy_record_id(t, r.id);
    copy_id(r.request_id, http->request_id);
    ar_gw_spend_batcher_t *b = g->gw->spend;
    if (!b->open) {
        b->open = ar_xcalloc(1, sizeof(*b->open));
        b->open->gwk = g->gw;
        ar_buf_init(&b->open->lines, 64u << 20);
        uv_check_start(&b->check, on_turn_end);
    }
    spend_group_t *grp = b->open;
    if (ar_spend_encode(&r, &grp->lines) != 0) {
        AR_LOG(AR_LOG_ERROR, NULL, "ledger: the spend record of request %s was not written",
               http->request_id);
        ar_http_release_end(http);
        return;
    }
    if (grp->cnt == grp->cap) {
        grp->cap = grp->cap ? grp->cap * 2 : 16;
        grp->reqs = ar_xrealloc(grp->reqs, grp->cap * sizeof(*grp->reqs));
    }
    grp->reqs[grp->cnt++] = http;
    ar_http_ref(http);
    ar_gw_tenancy_track(t, 1);
}
