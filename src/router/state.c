/*
 * state.c: the table of runtime states, keyed by (credential, model). Slots are atomic
 * pointers filled once by compare-and-swap and never emptied while the process runs, so
 * lookups take no lock and a pointer, once handed out, stays valid across reloads.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "router/router_int.h"

#define STATE_SLOTS 16384 /* power of two */

struct ar_router_state {
    _Atomic(ar_target_state_t *) slots[STATE_SLOTS];
    ar_target_state_t *overflow; /* shared by whatever does not fit: counts stay correct */
    ar_target_state_t *unrouted; /* requests that never reached a deployment */
};

static void state_init(ar_target_state_t *s)
{
    ar_ban_init(&s->ban);
    ar_breaker_init(&s->breaker);
    ar_window_configure(&s->rpm, 60000);
    ar_window_configure(&s->tpm, 60000);
}

static void state_free(ar_target_state_t *s)
{
    ar_ban_dispose(&s->ban);
    ar_breaker_dispose(&s->breaker);
    ar_free(s);
}

static uint64_t hash_key(const char *cred, const char *model)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = cred; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    if (model) {
        for (const char *p = model; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    return h;
}

static bool same_key(const ar_target_state_t *s, const char *cred, const char *model)
{
    if (strcmp(s->cred_name, cred) != 0)
        return false;
    if (!model || !s->model_name)
        return model == s->model_name;
    return strcmp(s->model_name, model) == 0;
}

static ar_target_state_t *new_state(const char *cred, const char *model);

ar_router_state_t *ar_router_state_create(void)
{
    ar_router_state_t *st = ar_xcalloc(1, sizeof(*st));
    st->overflow = new_state("(overflow)", "*");
    st->unrouted = new_state("", "");
    return st;
}

ar_target_state_t *ar_router_state_unrouted(ar_router_state_t *st)
{
    return st->unrouted;
}

void ar_router_state_foreach(ar_router_state_t *st, void (*fn)(ar_target_state_t *s, void *ud),
                             void *ud)
{
    for (size_t i = 0; i < STATE_SLOTS; i++) {
        ar_target_state_t *s = atomic_load_explicit(&st->slots[i], memory_order_acquire);
        if (s && s->model_name)
            fn(s, ud);
    }
}

void ar_router_state_destroy(ar_router_state_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < STATE_SLOTS; i++) {
        ar_target_state_t *s = atomic_load(&st->slots[i]);
        if (s)
            state_free(s);
    }
    state_free(st->overflow);
    state_free(st->unrouted);
    ar_free(st);
}

static ar_target_state_t *new_state(const char *cred, const char *model)
{
    size_t cl = strlen(cred) + 1;
    size_t ml = model ? strlen(model) + 1 : 0;
    ar_target_state_t *s = ar_xcalloc(1, sizeof(*s) + cl + ml);
    char *names = (char *)(s + 1);
    memcpy(names, cred, cl);
    s->cred_name = names;
    if (model) {
        memcpy(names + cl, model, ml);
        s->model_name = names + cl;
    }
    state_init(s);
    return s;
}

ar_target_state_t *ar_router_state_get(ar_router_state_t *st, const char *cred, const char *model)
{
    uint64_t h = hash_key(cred, model);
    ar_target_state_t *fresh = NULL;
    for (size_t probe = 0; probe < STATE_SLOTS; probe++) {
        _Atomic(ar_target_state_t *) *slot = &st->slots[(h + probe) & (STATE_SLOTS - 1)];
        ar_target_state_t *s = atomic_load_explicit(slot, memory_order_acquire);
        if (!s) {
            if (!fresh)
                fresh = new_state(cred, model);
            ar_target_state_t *expected = NULL;
            if (atomic_compare_exchange_strong_explicit(slot, &expected, fresh,
                                                        memory_order_acq_rel, memory_order_acquire))
                return fresh;
            s = expected; /* another thread filled the slot first */
        }
        if (same_key(s, cred, model)) {
            if (fresh)
                state_free(fresh);
            return s;
        }
    }
    if (fresh)
        state_free(fresh);
    return st->overflow;
}
