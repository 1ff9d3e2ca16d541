/*
 * admission.c: the shared admission of an LLM request (storage.redis_url, SPEC section 6
 * and the scale-out of several instances). Once every local check has passed, Redis
 * decides in stages, in the order the local checks ran, each asked only after the one
 * before admitted: a refusal by an early stage charges nothing in the later ones. A stage
 * with nothing to share (no Redis, no limit) costs nothing. Without an answer from Redis a
 * stage falls back to this instance's share of its limit.
 */
#include "gateway/gateway_int.h"

static const ar_gw_admit_stage_fn stages[] = {
    ar_gw_buckets_shared,     /* ratelimit.c: the client buckets (global, client, model) */
    ar_gw_key_windows_shared, /* keyguard.c: the key's RPM and TPM */
    ar_gw_key_quota_shared,   /* keyguard.c: the key's quotas and budget */
};

void ar_gw_admit_next(ar_gw_req_t *g)
{
    while (g->admit_stage < sizeof(stages) / sizeof(stages[0])) {
        if (stages[g->admit_stage++](g))
            return;
    }
    ar_gw_attempt_next(g);
}
