/*
 * test_admit.c: unit tests of router/router.c's admission and accounting, driven through
 * ar_router_admit / ar_router_report with configs from YAML (SPEC sections 2 and 4): RPM
 * and TPM at credential then deployment level (with give-back on refusal and the TPM
 * estimate corrected by real usage), default_models_rpm, max_concurrent, fail2ban and the
 * circuit breaker per the outcome table, cancelled attempts, statistics, admin reset and
 * the routing.fallback deployment. Every call gets its time from the test: no sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/str.h"
#include "router_fixture.h"

/* The explicit deployment "cred:upstream". */
static const ar_deployment_t *dep(fx_t *f, const char *item)
{
    for (size_t i = 0; i < ar_router_dep_cnt(f->r); i++) {
        const ar_deployment_t *d = ar_router_dep(f->r, i);
        char buf[256];
        snprintf(buf, sizeof(buf), "%s:%s", d->cred->name, d->upstream_model);
        if (strcmp(buf, item) == 0)
            return d;
    }
    fail_msg("no deployment %s", item);
    return NULL;
}

/* The only candidate for name (an implicit deployment of an open credential). */
static const ar_deployment_t *only(fx_t *f, const char *name)
{
    ar_candidates_t c = fx_query(f, name);
    assert_int_equal(c.cnt, 1);
    return c.items[0];
}

static ar_skip_t admit(fx_t *f, const ar_deployment_t *d, uint64_t now, int64_t est,
                       ar_admission_t *adm)
{
    return ar_router_admit(f->r, d, now, est, adm);
}

/* Admits one attempt, which must succeed. */
static ar_admission_t admit_ok(fx_t *f, const ar_deployment_t *d, uint64_t now, int64_t est)
{
    ar_admission_t adm;
    ar_skip_t s = admit(f, d, now, est, &adm);
    if (s != AR_SKIP_NONE)
        fail_msg("%s:%s refused (%d) at %llu", d->cred->name, d->upstream_model, s,
                 (unsigned long long)now);
    return adm;
}

/* admit() must answer want; an admitted attempt is then ended as cancelled (it charged
 * its RPM/TPM, but leaves nothing in flight and no verdict). */
static void expect_skip(fx_t *f, const ar_deployment_t *d, uint64_t now, int64_t est,
                        ar_skip_t want)
{
    ar_admission_t adm;
    ar_skip_t s = admit(f, d, now, est, &adm);
    if (s == AR_SKIP_NONE)
        ar_router_report(f->r, d, &adm, &(ar_attempt_result_t){.cancelled = true}, now);
    if (s != want)
        fail_msg("%s:%s: skip %d, want %d", d->cred->name, d->upstream_model, s, want);
    if (s == AR_SKIP_LIMITED && adm.retry_ms <= 0)
        fail_msg("%s:%s: limited without retry_ms", d->cred->name, d->upstream_model);
}

/* Reports an HTTP status (or a network error) for an admitted attempt. */
static ar_outcome_t report(fx_t *f, const ar_deployment_t *d, const ar_admission_t *adm, int status,
                           int err, uint64_t now)
{
    ar_attempt_result_t res = {.status = status, .err = err, .duration_us = 100000};
    return ar_router_report(f->r, d, adm, &res, now);
}

/* One whole attempt: admitted at now and ended with status/err. */
static ar_outcome_t attempt(fx_t *f, const ar_deployment_t *d, uint64_t now, int status, int err)
{
    ar_admission_t adm = admit_ok(f, d, now, 0);
    return report(f, d, &adm, status, err, now);
}

static int64_t sum(const ar_window_t *w, uint64_t now)
{
    return ar_window_sum(w, now);
}

/* ---- RPM ---- */

static void test_credential_rpm(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n    rpm: 2\n"
                "  - name: b\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: y\n    credential: a\n"
                "  - name: x\n    credential: b\n");
    const ar_deployment_t *ax = dep(&f, "a:x"), *ay = dep(&f, "a:y"), *bx = dep(&f, "b:x");
    ar_admission_t a1 = admit_ok(&f, ax, 1000, 0);
    ar_admission_t a2 = admit_ok(&f, ay, 20000, 0);
    /* the credential's limit covers all its deployments */
    ar_admission_t adm;
    assert_int_equal(admit(&f, ax, 30000, 0, &adm), AR_SKIP_LIMITED);
    assert_int_equal(adm.retry_ms, 31000); /* the attempt at 1000 leaves at 61 000 */
    assert_int_equal(admit(&f, ay, 30000, 0, &adm), AR_SKIP_LIMITED);
    assert_int_equal(adm.retry_ms, 31000);
    assert_int_equal(sum(&ax->cred_state->rpm, 30000), 2);
    assert_int_equal(atomic_load(&ax->cred_state->requests), 2);
    /* another credential is not affected */
    ar_admission_t b1 = admit_ok(&f, bx, 30000, 0);
    /* ending attempts gives no room: RPM counts starts, not in-flight */
    report(&f, ax, &a1, 200, 0, 30000);
    report(&f, ay, &a2, 200, 0, 30000);
    report(&f, bx, &b1, 200, 0, 30000);
    expect_skip(&f, ax, 60999, 0, AR_SKIP_LIMITED);
    ar_admission_t a3 = admit_ok(&f, ax, 61000, 0);
    expect_skip(&f, ax, 61000, 0, AR_SKIP_LIMITED);
    report(&f, ax, &a3, 200, 0, 61000);
    fx_close(&f);
}

/* Without the shared windows an instance takes its share of RPM limits; a withdrawn
 * admission leaves nothing behind. */
static void test_rpm_share_and_withdraw(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n    rpm: 9\n"
                "  - name: b\n    type: mock\n    rpm: 2\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: y\n    credential: b\n    rpm: 1\n    tpm: 100\n");
    const ar_deployment_t *ax = dep(&f, "a:x"), *by = dep(&f, "b:y");
    ar_admission_t adm;
    for (int i = 0; i < 3; i++)
        assert_int_equal(ar_router_admit_share(f.r, ax, 1000, 0, 3, &adm), AR_SKIP_NONE);
    assert_int_equal(ar_router_admit_share(f.r, ax, 1000, 0, 3, &adm), AR_SKIP_LIMITED);
    /* the whole limit again once the shared windows are back */
    assert_int_equal(ar_router_admit_share(f.r, ax, 1000, 0, 1, &adm), AR_SKIP_NONE);
    /* 2 / 3 and 1 / 3 round down to 0: a share never closes what the limit allows */
    assert_int_equal(ar_router_admit_share(f.r, by, 1000, 10, 3, &adm), AR_SKIP_NONE);
    assert_int_equal(ar_router_admit_share(f.r, by, 1000, 10, 3, &adm), AR_SKIP_LIMITED);
    /* withdrawn: counts, windows and in-flight as before */
    assert_int_equal(ar_router_admit_share(f.r, by, 2000, 10, 1, &adm), AR_SKIP_LIMITED);
    /* TPM too: 100 / 3 leaves 33 tokens, where the whole limit takes 40 */
    assert_int_equal(ar_router_admit_share(f.r, by, 70000, 40, 3, &adm), AR_SKIP_LIMITED);
    assert_int_equal(ar_router_admit_share(f.r, by, 70000, 40, 1, &adm), AR_SKIP_NONE);
    ar_router_withdraw(f.r, by, &adm);
    ar_admission_t a1;
    const ar_deployment_t *d1 = by;
    fx_close(&f);
    fx_open(&f, "credentials:\n"
                "  - name: b\n    type: mock\n    rpm: 2\n"
                "models:\n"
                "  - name: y\n    credential: b\n    rpm: 1\n    tpm: 100\n");
    d1 = dep(&f, "b:y");
    assert_int_equal(ar_router_admit(f.r, d1, 1000, 60, &a1), AR_SKIP_NONE);
    ar_router_withdraw(f.r, d1, &a1);
    assert_int_equal(sum(&d1->cred_state->rpm, 1000), 0);
    assert_int_equal(sum(&d1->dep_state->rpm, 1000), 0);
    assert_int_equal(sum(&d1->dep_state->tpm, 1000), 0);
    assert_int_equal(atomic_load(&d1->dep_state->in_flight), 0);
    assert_int_equal(atomic_load(&d1->cred_state->in_flight), 0);
    assert_int_equal(atomic_load(&d1->dep_state->requests), 0);
    a1 = admit_ok(&f, d1, 1000, 60);
    report(&f, d1, &a1, 200, 0, 1000);
    fx_close(&f);
}

static void test_deployment_rpm(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n    rpm: 10\n"
                "models:\n"
                "  - name: x\n    credential: a\n    rpm: 1\n"
                "  - name: y\n    credential: a\n");
    const ar_deployment_t *ax = dep(&f, "a:x"), *ay = dep(&f, "a:y");
    admit_ok(&f, ax, 1000, 0);
    ar_admission_t adm;
    assert_int_equal(admit(&f, ax, 2000, 0, &adm), AR_SKIP_LIMITED);
    assert_int_equal(adm.retry_ms, 59000);
    /* the refusal at deployment level gave back what the credential level charged */
    assert_int_equal(sum(&ax->cred_state->rpm, 2000), 1);
    assert_int_equal(sum(&ax->dep_state->rpm, 2000), 1);
    assert_int_equal(atomic_load(&ax->dep_state->in_flight), 1);
    assert_int_equal(atomic_load(&ax->cred_state->in_flight), 1);
    assert_int_equal(atomic_load(&ax->dep_state->requests), 1);
    /* the other deployment has its own (unlimited) window, under the credential's 10 */
    for (int i = 0; i < 9; i++)
        admit_ok(&f, ay, 3000, 0);
    assert_int_equal(sum(&ay->cred_state->rpm, 3000), 10);
    assert_int_equal(sum(&ay->dep_state->rpm, 3000), 9);
    expect_skip(&f, ay, 3000, 0, AR_SKIP_LIMITED);
    /* both limits: x is free again at 61 000, the credential has room from 61 000 */
    expect_skip(&f, ax, 60999, 0, AR_SKIP_LIMITED);
    admit_ok(&f, ax, 61000, 0);
    assert_int_equal(sum(&ax->cred_state->rpm, 61000), 10);
    fx_close(&f);
}

static void test_default_models_rpm(void **state)
{
    (void)state;
    fx_t f;
    /* the body continues the fixture's server: section */
    fx_open(&f, "  default_models_rpm: 2\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: open\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: y\n    credential: a\n    rpm: 3\n"
                "  - name: z\n    credential: a\n    rpm: -1\n");
    const ar_deployment_t *ax = dep(&f, "a:x"), *ay = dep(&f, "a:y"), *az = dep(&f, "a:z");
    int64_t rpm, tpm;
    ar_router_dep_limits(f.r, ax, &rpm, &tpm);
    assert_int_equal(rpm, 2);
    assert_int_equal(tpm, AR_UNLIMITED);
    ar_router_dep_limits(f.r, ay, &rpm, &tpm);
    assert_int_equal(rpm, 3);
    ar_router_dep_limits(f.r, az, &rpm, &tpm);
    assert_int_equal(rpm, AR_UNLIMITED);
    ar_router_cred_limits(f.r, 0, &rpm, &tpm);
    assert_int_equal(rpm, AR_UNLIMITED);
    assert_int_equal(tpm, AR_UNLIMITED);
    for (int i = 0; i < 2; i++)
        admit_ok(&f, ax, 0, 0);
    expect_skip(&f, ax, 0, 0, AR_SKIP_LIMITED);
    for (int i = 0; i < 3; i++)
        admit_ok(&f, ay, 0, 0);
    expect_skip(&f, ay, 0, 0, AR_SKIP_LIMITED);
    for (int i = 0; i < 50; i++)
        admit_ok(&f, az, 0, 0);
    /* implicit deployments of an open credential get the default too */
    const ar_deployment_t *o = only(&f, "some-model");
    ar_router_dep_limits(f.r, o, &rpm, &tpm);
    assert_int_equal(rpm, 2);
    admit_ok(&f, o, 0, 0);
    admit_ok(&f, o, 0, 0);
    expect_skip(&f, o, 0, 0, AR_SKIP_LIMITED);
    fx_close(&f);
}

/* ---- TPM ---- */

static void test_tpm_estimate_and_correction(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n    tpm: 1000\n"
                "models:\n"
                "  - name: x\n    credential: a\n    tpm: 500\n"
                "  - name: y\n    credential: a\n");
    const ar_deployment_t *ax = dep(&f, "a:x"), *ay = dep(&f, "a:y");
    ar_window_t *ct = &ax->cred_state->tpm, *dt = &ax->dep_state->tpm;
    ar_admission_t a1 = admit_ok(&f, ax, 1000, 100);
    assert_int_equal(a1.tokens, 100);
    assert_int_equal(sum(ct, 1000), 100);
    assert_int_equal(sum(dt, 1000), 100);
    /* the real usage is larger: both windows go up */
    ar_attempt_result_t res = {
        .status = 200, .prompt_tokens = 150, .completion_tokens = 50, .usage_seen = true};
    ar_router_report(f.r, ax, &a1, &res, 3000);
    assert_int_equal(sum(ct, 3000), 200);
    assert_int_equal(sum(dt, 3000), 200);
    assert_int_equal(atomic_load(&ax->dep_state->prompt_tokens), 150);
    assert_int_equal(atomic_load(&ax->dep_state->completion_tokens), 50);
    /* ... and smaller: both go down (from the slot the estimate was charged in) */
    ar_admission_t a2 = admit_ok(&f, ax, 5000, 300);
    assert_int_equal(sum(dt, 5000), 500);
    res = (ar_attempt_result_t){
        .status = 200, .prompt_tokens = 15, .completion_tokens = 5, .usage_seen = true};
    ar_router_report(f.r, ax, &a2, &res, 9000);
    assert_int_equal(sum(ct, 9000), 220);
    assert_int_equal(sum(dt, 9000), 220);
    /* without usage the estimate stands */
    ar_admission_t a3 = admit_ok(&f, ax, 9000, 30);
    report(&f, ax, &a3, 200, 0, 9000);
    assert_int_equal(sum(dt, 9000), 250);
    /* the deployment limit refuses what no longer fits, and charges nothing */
    ar_admission_t adm;
    assert_int_equal(admit(&f, ax, 10000, 251, &adm), AR_SKIP_LIMITED);
    assert_int_equal(adm.retry_ms, 51000); /* the 100 charged at 1000 leave at 61 000 */
    assert_int_equal(sum(ct, 10000), 250);
    assert_int_equal(sum(dt, 10000), 250);
    assert_int_equal(sum(&ax->cred_state->rpm, 10000), 3);
    assert_int_equal(sum(&ax->dep_state->rpm, 10000), 3);
    ar_admission_t a4 = admit_ok(&f, ax, 10000, 250);
    assert_int_equal(sum(dt, 10000), 500);
    /* an estimate larger than the whole limit never fits: a full window to wait */
    assert_int_equal(admit(&f, ay, 10000, 1001, &adm), AR_SKIP_LIMITED);
    assert_int_equal(adm.retry_ms, 60000);
    /* the credential level: y is unlimited itself, the credential has 500 left */
    ar_admission_t a5 = admit_ok(&f, ay, 10000, 500);
    assert_int_equal(sum(ct, 10000), 1000);
    assert_int_equal(admit(&f, ay, 10000, 1, &adm), AR_SKIP_LIMITED);
    /* a correction upwards may take a window over its limit; nothing fits until it drains */
    res = (ar_attempt_result_t){.status = 200, .prompt_tokens = 600, .usage_seen = true};
    ar_router_report(f.r, ay, &a5, &res, 11000);
    assert_int_equal(sum(ct, 11000), 1100);
    assert_int_equal(sum(&ay->dep_state->tpm, 11000), 600);
    assert_int_equal(admit(&f, ay, 11000, 0, &adm), AR_SKIP_LIMITED);
    res = (ar_attempt_result_t){.status = 200, .prompt_tokens = 250, .usage_seen = true};
    ar_router_report(f.r, ax, &a4, &res, 11000);
    /* even in an empty window */
    assert_int_equal(sum(dt, 80000), 0);
    assert_int_equal(admit(&f, ax, 80000, 501, &adm), AR_SKIP_LIMITED);
    assert_int_equal(adm.retry_ms, 60000);
    fx_close(&f);
}

/* ---- max_concurrent ---- */

static void test_max_concurrent(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n    max_concurrent: 2\n"
                "  - name: y\n    credential: a\n");
    const ar_deployment_t *ax = dep(&f, "a:x"), *ay = dep(&f, "a:y");
    ar_admission_t a1 = admit_ok(&f, ax, 0, 10);
    ar_admission_t a2 = admit_ok(&f, ax, 0, 10);
    expect_skip(&f, ax, 0, 10, AR_SKIP_BUSY);
    expect_skip(&f, ax, 1000000, 10, AR_SKIP_BUSY); /* time does not help */
    assert_int_equal(atomic_load(&ax->dep_state->in_flight), 2);
    /* a refusal charges nothing */
    assert_int_equal(sum(&ax->cred_state->rpm, 0), 2);
    assert_int_equal(sum(&ax->cred_state->tpm, 0), 20);
    assert_int_equal(atomic_load(&ax->dep_state->requests), 2);
    /* the limit is per deployment */
    ar_admission_t a3 = admit_ok(&f, ay, 0, 0);
    ar_admission_t a4 = admit_ok(&f, ay, 0, 0);
    ar_admission_t a5 = admit_ok(&f, ay, 0, 0);
    assert_int_equal(atomic_load(&ax->cred_state->in_flight), 5);
    report(&f, ax, &a1, 500, 0, 0);
    ar_admission_t a6 = admit_ok(&f, ax, 0, 0);
    expect_skip(&f, ax, 0, 0, AR_SKIP_BUSY);
    /* a cancelled attempt frees its place too */
    ar_router_report(f.r, ax, &a2, &(ar_attempt_result_t){.cancelled = true}, 0);
    ar_admission_t a7 = admit_ok(&f, ax, 0, 0);
    report(&f, ax, &a6, 200, 0, 0);
    report(&f, ax, &a7, 200, 0, 0);
    report(&f, ay, &a3, 200, 0, 0);
    report(&f, ay, &a4, 200, 0, 0);
    report(&f, ay, &a5, 200, 0, 0);
    assert_int_equal(atomic_load(&ax->dep_state->in_flight), 0);
    assert_int_equal(atomic_load(&ay->dep_state->in_flight), 0);
    assert_int_equal(atomic_load(&ax->cred_state->in_flight), 0);
    fx_close(&f);
}

/* ---- fail2ban ---- */

static const char ban_yaml[] = "fail2ban:\n  max_attempts: 3\n"
                               "circuit_breaker:\n  failure_threshold: -1\n"
                               "credentials:\n"
                               "  - name: a\n    type: mock\n"
                               "  - name: b\n    type: mock\n"
                               "models:\n"
                               "  - name: x\n    credential: a\n"
                               "  - name: y\n    credential: a\n"
                               "  - name: x\n    credential: b\n";

static void test_auth_errors_ban_credential(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, ban_yaml);
    const ar_deployment_t *ax = dep(&f, "a:x"), *ay = dep(&f, "a:y"), *bx = dep(&f, "b:x");
    ar_outcome_t oc = attempt(&f, ax, 1000, 401, 0);
    assert_int_equal(oc.action, AR_ACT_NEXT_CREDENTIAL);
    assert_int_equal(oc.ban_code, 401);
    attempt(&f, ay, 1000, 403, 0); /* any deployment of the credential counts */
    expect_skip(&f, ax, 1000, 0, AR_SKIP_NONE);
    assert_false(ar_ban_active(&ax->cred_state->ban, 1000));
    attempt(&f, ax, 2000, 401, 0);
    assert_true(ar_ban_active(&ax->cred_state->ban, 2000));
    /* every deployment on the credential is banned (permanent by default) */
    expect_skip(&f, ax, 2000, 0, AR_SKIP_BANNED);
    expect_skip(&f, ay, 2000, 0, AR_SKIP_BANNED);
    expect_skip(&f, ay, 1000000000, 0, AR_SKIP_BANNED);
    /* a ban is checked first and charges nothing */
    assert_int_equal(sum(&ax->cred_state->rpm, 2000), 4);
    assert_int_equal(atomic_load(&ax->cred_state->in_flight), 0);
    /* ... the other credential serves the same model */
    attempt(&f, bx, 2000, 200, 0);
    /* 401 on a deployment is not a breaker matter */
    assert_int_equal(ar_breaker_state(&ax->dep_state->breaker, &f.cfg->circuit_breaker, 2000),
                     AR_BREAKER_CLOSED);
    fx_close(&f);
}

static void test_success_resets_and_ignored_codes(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, ban_yaml);
    const ar_deployment_t *ax = dep(&f, "a:x"), *ay = dep(&f, "a:y");
    attempt(&f, ax, 0, 401, 0);
    attempt(&f, ax, 0, 500, 0);
    ar_outcome_t oc = attempt(&f, ay, 0, 204, 0); /* a 2xx on any deployment resets */
    assert_true(oc.ban_reset);
    attempt(&f, ax, 0, 401, 0);
    attempt(&f, ax, 0, 503, 0);
    /* 400, 404, 413, 422 neither count nor reset */
    attempt(&f, ax, 0, 400, 0);
    attempt(&f, ax, 0, 422, 0);
    attempt(&f, ay, 0, 404, 0);
    attempt(&f, ax, 0, 413, 0);
    expect_skip(&f, ax, 0, 0, AR_SKIP_NONE);
    attempt(&f, ax, 0, 504, 0);
    expect_skip(&f, ax, 0, 0, AR_SKIP_BANNED);
    fx_close(&f);
}

static void test_network_errors_count_as_502_504(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "fail2ban:\n  max_attempts: 2\n  error_codes: [502]\n"
                "circuit_breaker:\n  failure_threshold: -1\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: x\n    credential: b\n");
    const ar_deployment_t *ax = dep(&f, "a:x"), *bx = dep(&f, "b:x");
    ar_outcome_t oc = attempt(&f, ax, 0, 0, AR_ECONNRESET);
    assert_int_equal(oc.ban_code, 502);
    assert_int_equal(oc.action, AR_ACT_RETRY_SAME);
    expect_skip(&f, ax, 0, 0, AR_SKIP_NONE);
    /* a timeout counts as 504, which this config does not count */
    attempt(&f, ax, 0, 0, AR_ETIMEDOUT);
    attempt(&f, ax, 0, 504, 0);
    expect_skip(&f, ax, 0, 0, AR_SKIP_NONE);
    attempt(&f, ax, 0, 0, AR_ECONNREFUSED);
    expect_skip(&f, ax, 0, 0, AR_SKIP_BANNED);
    assert_int_equal(atomic_load(&ax->cred_state->ban.last_code), 502);
    /* the kinds are counted for /metrics */
    assert_int_equal(atomic_load(&ax->dep_state->uperr[AR_UPERR_RESET]), 1);
    assert_int_equal(atomic_load(&ax->dep_state->uperr[AR_UPERR_TIMEOUT]), 1);
    assert_int_equal(atomic_load(&ax->dep_state->uperr[AR_UPERR_CONNECT]), 1);
    assert_int_equal(atomic_load(&ax->dep_state->uperr[AR_UPERR_HTTP_5XX]), 1);
    assert_int_equal(atomic_load(&ax->cred_state->uperr[AR_UPERR_RESET]), 1);
    /* ENETUNREACH counts as 502 too, like a real 502 */
    attempt(&f, bx, 0, 0, AR_ENETUNREACH);
    attempt(&f, bx, 0, 502, 0);
    expect_skip(&f, bx, 0, 0, AR_SKIP_BANNED);
    fx_close(&f);
}

static void test_timed_ban_via_rule(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "fail2ban:\n  max_attempts: 3\n"
                "  error_code_rules:\n    - code: 429\n      max_attempts: 5\n"
                "      ban_duration: 5m\n"
                "circuit_breaker:\n  failure_threshold: -1\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n");
    const ar_deployment_t *ax = dep(&f, "a:x");
    for (int i = 0; i < 4; i++)
        attempt(&f, ax, 1000, 429, 0);
    expect_skip(&f, ax, 1000, 0, AR_SKIP_NONE);
    attempt(&f, ax, 1000, 429, 0);
    expect_skip(&f, ax, 1000, 0, AR_SKIP_BANNED);
    expect_skip(&f, ax, 300999, 0, AR_SKIP_BANNED);
    expect_skip(&f, ax, 301000, 0, AR_SKIP_NONE);
    fx_close(&f);
}

/* ---- circuit breaker ---- */

static const char brk_yaml[] = "fail2ban:\n  max_attempts: -1\n"
                               "circuit_breaker:\n  failure_threshold: 2\n"
                               "  cooldown_period: 30s\n  success_threshold: 1\n"
                               "credentials:\n"
                               "  - name: a\n    type: mock\n"
                               "  - name: open\n    type: mock\n"
                               "models:\n"
                               "  - name: x\n    credential: a\n"
                               "  - name: y\n    credential: a\n";

static void test_breaker_opens_per_deployment(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, brk_yaml);
    const ar_config_t *cfg = f.cfg;
    const ar_deployment_t *ax = dep(&f, "a:x"), *ay = dep(&f, "a:y");
    ar_outcome_t oc = attempt(&f, ax, 0, 500, 0);
    assert_int_equal(oc.breaker, AR_BRK_FAILURE);
    expect_skip(&f, ax, 0, 0, AR_SKIP_NONE);
    attempt(&f, ax, 1000, 503, 0);
    expect_skip(&f, ax, 1000, 0, AR_SKIP_OPEN);
    assert_int_equal(ar_breaker_state(&ax->dep_state->breaker, &cfg->circuit_breaker, 1000),
                     AR_BREAKER_OPEN);
    /* the other deployment of the same credential stays CLOSED and serves */
    assert_int_equal(ar_breaker_state(&ay->dep_state->breaker, &cfg->circuit_breaker, 1000),
                     AR_BREAKER_CLOSED);
    attempt(&f, ay, 1000, 200, 0);
    /* an OPEN refusal charges nothing (3: two attempts and one cancelled) */
    assert_int_equal(sum(&ax->dep_state->rpm, 1000), 3);
    /* after the cooldown one trial goes through; a second waits */
    expect_skip(&f, ax, 30999, 0, AR_SKIP_OPEN);
    ar_admission_t trial = admit_ok(&f, ax, 31000, 0);
    assert_true(trial.probe);
    expect_skip(&f, ax, 31000, 0, AR_SKIP_OPEN);
    report(&f, ax, &trial, 200, 0, 32000);
    assert_int_equal(ar_breaker_state(&ax->dep_state->breaker, &cfg->circuit_breaker, 32000),
                     AR_BREAKER_CLOSED);
    ar_admission_t a = admit_ok(&f, ax, 32000, 0);
    assert_false(a.probe);
    report(&f, ax, &a, 200, 0, 32000);
    /* 429 and timeouts are failures too; a trial failure reopens */
    attempt(&f, ax, 40000, 429, 0);
    attempt(&f, ax, 40000, 0, AR_ETIMEDOUT);
    expect_skip(&f, ax, 40000, 0, AR_SKIP_OPEN);
    trial = admit_ok(&f, ax, 70000, 0);
    assert_true(trial.probe);
    report(&f, ax, &trial, 0, AR_ECONNREFUSED, 71000);
    expect_skip(&f, ax, 100999, 0, AR_SKIP_OPEN);
    /* 400s and 401s are no verdict on the deployment: the trial slot is freed */
    trial = admit_ok(&f, ax, 101000, 0);
    assert_true(trial.probe);
    report(&f, ax, &trial, 400, 0, 101000);
    trial = admit_ok(&f, ax, 101000, 0);
    assert_true(trial.probe);
    report(&f, ax, &trial, 401, 0, 101000);
    trial = admit_ok(&f, ax, 101000, 0);
    assert_true(trial.probe);
    report(&f, ax, &trial, 200, 0, 101000);
    expect_skip(&f, ax, 101000, 0, AR_SKIP_NONE);
    fx_close(&f);
}

static void test_refused_trial_frees_slot(void **state)
{
    (void)state;
    fx_t f;
    /* two names for one upstream deployment: one state, one breaker, one in-flight count,
     * but max_concurrent only on the first */
    fx_open(&f, "circuit_breaker:\n  failure_threshold: 1\n  cooldown_period: 1s\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n    tpm: 100\n"
                "models:\n"
                "  - name: x1\n    credential: a\n    model: up\n    max_concurrent: 1\n"
                "  - name: x2\n    credential: a\n    model: up\n");
    const ar_deployment_t *d1 = ar_router_dep(f.r, 0), *d2 = ar_router_dep(f.r, 1);
    assert_ptr_equal(d1->dep_state, d2->dep_state);
    ar_admission_t held = admit_ok(&f, d2, 0, 0);
    attempt(&f, d2, 0, 500, 0);
    expect_skip(&f, d2, 500, 0, AR_SKIP_OPEN);
    /* past the cooldown, the trial granted to d1 is refused by max_concurrent, the one
     * granted to d2 by TPM: each gives its trial slot back */
    expect_skip(&f, d1, 1000, 0, AR_SKIP_BUSY);
    expect_skip(&f, d2, 1000, 101, AR_SKIP_LIMITED);
    ar_router_report(f.r, d2, &held, &(ar_attempt_result_t){.cancelled = true}, 1000);
    ar_admission_t t = admit_ok(&f, d1, 1000, 0);
    assert_true(t.probe);
    expect_skip(&f, d2, 1000, 0, AR_SKIP_OPEN);
    report(&f, d1, &t, 200, 0, 1000);
    t = admit_ok(&f, d2, 1000, 0);
    assert_true(t.probe);
    report(&f, d2, &t, 200, 0, 1000);
    expect_skip(&f, d1, 1000, 0, AR_SKIP_NONE);
    fx_close(&f);
}

static void test_not_found(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, brk_yaml);
    const ar_deployment_t *ax = dep(&f, "a:x"), *ay = dep(&f, "a:y");
    ar_outcome_t oc = attempt(&f, ax, 0, 404, 0);
    assert_int_equal(oc.action, AR_ACT_NEXT);
    assert_int_equal(oc.breaker, AR_BRK_UNAVAILABLE);
    expect_skip(&f, ax, 0, 0, AR_SKIP_UNAVAILABLE);
    expect_skip(&f, ax, 1000000000, 0, AR_SKIP_UNAVAILABLE);
    assert_int_equal(ar_breaker_state(&ax->dep_state->breaker, &f.cfg->circuit_breaker, 0),
                     AR_BREAKER_UNAVAILABLE);
    attempt(&f, ay, 0, 200, 0);
    /* an open credential: an unlisted name shares the "*" state, and one bad name must not
     * make every other name unavailable */
    const ar_deployment_t *bad = only(&f, "no-such-model");
    assert_ptr_equal(bad->dep_state, ar_router_state_get(f.st, "open", "*"));
    ar_admission_t adm = admit_ok(&f, bad, 0, 0);
    oc = report(&f, bad, &adm, 404, 0, 0);
    assert_int_equal(oc.action, AR_ACT_NEXT);
    assert_int_equal(ar_breaker_state(&bad->dep_state->breaker, &f.cfg->circuit_breaker, 0),
                     AR_BREAKER_CLOSED);
    const ar_deployment_t *good = only(&f, "real-model");
    attempt(&f, good, 0, 200, 0);
    expect_skip(&f, bad, 0, 0, AR_SKIP_NONE);
    /* a trial on the shared state ending in 404 frees the trial slot */
    attempt(&f, good, 0, 500, 0);
    attempt(&f, good, 0, 500, 0);
    expect_skip(&f, good, 0, 0, AR_SKIP_OPEN);
    adm = admit_ok(&f, bad, 30000, 0);
    assert_true(adm.probe);
    report(&f, bad, &adm, 404, 0, 30000);
    adm = admit_ok(&f, good, 30000, 0);
    assert_true(adm.probe);
    report(&f, good, &adm, 200, 0, 30000);
    fx_close(&f);
}

static void test_not_found_discovered_name(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n  - name: open\n    type: mock\n");
    /* a name the upstream listed has a state of its own: a 404 there sticks */
    char m1s[] = "m1", m2s[] = "m2";
    char *ids_items[] = {m1s, m2s};
    ar_strlist_t ids = {ids_items, 2};
    ar_router_set_discovered(f.r, 0, &ids);
    const ar_deployment_t *m1 = only(&f, "m1");
    assert_ptr_equal(m1->dep_state, ar_router_state_get(f.st, "open", "m1"));
    attempt(&f, m1, 0, 404, 0);
    expect_skip(&f, only(&f, "m1"), 0, 0, AR_SKIP_UNAVAILABLE);
    expect_skip(&f, only(&f, "m2"), 0, 0, AR_SKIP_NONE);
    fx_close(&f);
}

/* ---- cancelled attempts ---- */

static void test_cancelled_changes_only_in_flight(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "fail2ban:\n  max_attempts: 1\n"
                "circuit_breaker:\n  failure_threshold: 1\n  success_threshold: 2\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n");
    const ar_deployment_t *ax = dep(&f, "a:x");
    ar_target_state_t *cs = ax->cred_state, *ds = ax->dep_state;
    ar_admission_t adm = admit_ok(&f, ax, 1000, 100);
    assert_int_equal(atomic_load(&ds->in_flight), 1);
    assert_int_equal(atomic_load(&cs->in_flight), 1);
    /* whatever the status says, a cancelled attempt has no verdict */
    ar_attempt_result_t res = {.cancelled = true, .status = 500, .duration_us = 5000};
    ar_outcome_t oc = ar_router_report(f.r, ax, &adm, &res, 2000);
    assert_int_equal(oc.client_status, 499);
    assert_int_equal(atomic_load(&ds->in_flight), 0);
    assert_int_equal(atomic_load(&cs->in_flight), 0);
    assert_int_equal(atomic_load(&ds->errors), 0);
    assert_int_equal(atomic_load(&cs->errors), 0);
    assert_int_equal(atomic_load(&ds->requests), 1);
    assert_int_equal(sum(&ds->ok, 2000), 0);
    assert_int_equal(sum(&ds->fail, 2000), 0);
    assert_int_equal(sum(&ds->tpm, 2000), 100);
    assert_int_equal(atomic_load(&ds->ttfb_ewma_us), 0);
    assert_int_equal(atomic_load(&ds->ttfb.count), 0);
    assert_false(ar_ban_active(&cs->ban, 2000));
    assert_false(atomic_load(&cs->ban.dirty));
    assert_int_equal(ar_breaker_state(&ds->breaker, &f.cfg->circuit_breaker, 2000),
                     AR_BREAKER_CLOSED);
    for (int k = 0; k < AR_UPERR_KINDS; k++)
        assert_int_equal(atomic_load(&ds->uperr[k]), 0);
    assert_true(ar_router_success_rate(ds, 2000) == 1.0);
    /* a cancelled trial frees the trial slot and counts no success */
    attempt(&f, ax, 3000, 502, 0); /* opens the breaker and bans */
    ar_ban_reset(&cs->ban);
    ar_admission_t t = admit_ok(&f, ax, 63000, 0);
    assert_true(t.probe);
    ar_router_report(f.r, ax, &t, &(ar_attempt_result_t){.cancelled = true, .status = 200}, 63000);
    assert_int_equal(ar_breaker_state(&ds->breaker, &f.cfg->circuit_breaker, 63000),
                     AR_BREAKER_HALF_OPEN);
    t = admit_ok(&f, ax, 63000, 0);
    assert_true(t.probe);
    report(&f, ax, &t, 200, 0, 63000);
    assert_int_equal(ar_breaker_state(&ds->breaker, &f.cfg->circuit_breaker, 63000),
                     AR_BREAKER_HALF_OPEN);
    fx_close(&f);
}

/* ---- statistics ---- */

static void test_success_rate_and_latency(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "fail2ban:\n  max_attempts: -1\n"
                "circuit_breaker:\n  failure_threshold: -1\n  stats_window: 1m\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n");
    const ar_deployment_t *ax = dep(&f, "a:x");
    ar_target_state_t *ds = ax->dep_state;
    assert_true(ar_router_success_rate(ds, 0) == 1.0);
    assert_true(ar_latency_quantile_ms(&ds->latency, 0, 0.5) < 0);
    /* 3 successes of 100 ms, 1 of 10 ms, 1 of 2 s, a 503 and a timeout */
    static const uint64_t durs_ms[] = {100, 100, 100, 10, 2000};
    for (size_t i = 0; i < 5; i++) {
        ar_admission_t adm = admit_ok(&f, ax, 1000, 0);
        ar_attempt_result_t res = {
            .status = 200, .duration_us = durs_ms[i] * 1000, .ttfb_us = durs_ms[i] * 500};
        ar_router_report(f.r, ax, &adm, &res, 1000);
    }
    attempt(&f, ax, 1000, 503, 0);
    attempt(&f, ax, 1000, 0, AR_ETIMEDOUT);
    /* errors the client caused are nobody's failure */
    attempt(&f, ax, 1000, 400, 0);
    attempt(&f, ax, 1000, 422, 0);
    double rate = ar_router_success_rate(ds, 1000);
    assert_true(rate > 5.0 / 7 - 1e-9 && rate < 5.0 / 7 + 1e-9);
    assert_int_equal(atomic_load(&ds->errors), 2);
    assert_int_equal(atomic_load(&ds->requests), 9);
    double p50 = ar_latency_quantile_ms(&ds->latency, 1000, 0.5);
    if (p50 < 64 || p50 > 128) /* the log2 bucket holding 100 ms */
        fail_msg("p50 %.1f ms", p50);
    double p99 = ar_latency_quantile_ms(&ds->latency, 1000, 0.99);
    if (p99 < 1024 || p99 > 2048)
        fail_msg("p99 %.1f ms", p99);
    double p0 = ar_latency_quantile_ms(&ds->latency, 1000, 0.0);
    if (p0 < 8 || p0 > 16)
        fail_msg("p0 %.1f ms", p0);
    assert_true(atomic_load(&ds->ttfb_ewma_us) > 0);
    assert_int_equal(atomic_load(&ds->ttfb.count), 5);
    /* the window is stats_window (1 m): everything is forgotten after it */
    assert_true(ar_router_success_rate(ds, 61000) == 1.0);
    assert_true(ar_latency_quantile_ms(&ds->latency, 61000, 0.5) < 0);
    attempt(&f, ax, 61000, 500, 0);
    assert_true(ar_router_success_rate(ds, 61000) == 0.0);
    /* cumulative counters are not windowed */
    assert_int_equal(atomic_load(&ds->errors), 3);
    fx_close(&f);
}

static void test_record_request(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: y\n    credential: a\n");
    const ar_deployment_t *ax = dep(&f, "a:x"), *ay = dep(&f, "a:y");
    ar_router_record_request(f.r, ax, 200, 1000);
    ar_router_record_request(f.r, ax, 200, 2000);
    ar_router_record_request(f.r, ax, 503, 3000);
    ar_router_record_request(f.r, ay, 429, 4000);
    ar_router_record_request(f.r, NULL, 404, 5000);
    ar_router_record_request(f.r, NULL, 100, 5000);
    ar_router_record_request(f.r, NULL, 599, 5000);
    /* out of range: no status, but the duration is still observed */
    ar_router_record_request(f.r, NULL, 0, 5000);
    ar_router_record_request(f.r, NULL, 600, 5000);
    ar_target_state_t *ds = ax->dep_state;
    ar_target_state_t *un = ar_router_state_unrouted(f.st);
    assert_int_equal(atomic_load(&ds->status[200 - 100]), 2);
    assert_int_equal(atomic_load(&ds->status[503 - 100]), 1);
    assert_int_equal(atomic_load(&ds->status[429 - 100]), 0);
    assert_int_equal(atomic_load(&ay->dep_state->status[429 - 100]), 1);
    assert_int_equal(atomic_load(&un->status[404 - 100]), 1);
    assert_int_equal(atomic_load(&un->status[0]), 1);
    assert_int_equal(atomic_load(&un->status[499]), 1);
    assert_int_equal(atomic_load(&ds->duration.count), 3);
    assert_int_equal(atomic_load(&ds->duration.sum_us), 6000);
    assert_int_equal(atomic_load(&un->duration.count), 5);
    /* a request is not an attempt */
    assert_int_equal(atomic_load(&ds->requests), 0);
    assert_int_equal(atomic_load(&ax->cred_state->status[200 - 100]), 0);
    fx_close(&f);
}

/* ---- admin reset ---- */

static void test_reset_model(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "fail2ban:\n  max_attempts: 2\n"
                "circuit_breaker:\n  failure_threshold: 1\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: b\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n    model: x-up\n"
                "  - name: x\n    credential: b\n"
                "  - name: z\n    credential: b\n");
    const ar_deployment_t *ax = dep(&f, "a:x-up"), *bx = dep(&f, "b:x"), *bz = dep(&f, "b:z");
    attempt(&f, ax, 0, 401, 0);
    attempt(&f, ax, 0, 401, 0);
    expect_skip(&f, ax, 0, 0, AR_SKIP_BANNED);
    attempt(&f, bx, 0, 404, 0);
    attempt(&f, bz, 0, 500, 0);
    expect_skip(&f, bx, 0, 0, AR_SKIP_UNAVAILABLE);
    expect_skip(&f, bz, 0, 0, AR_SKIP_OPEN);
    assert_int_equal(ar_router_reset_model(f.r, "nothing"), 0);
    assert_int_equal(ar_router_reset_model(f.r, "x"), 2);
    expect_skip(&f, ax, 0, 0, AR_SKIP_NONE);
    expect_skip(&f, bx, 0, 0, AR_SKIP_NONE);
    expect_skip(&f, bz, 0, 0, AR_SKIP_OPEN); /* another model keeps its breaker */
    /* by upstream name too */
    attempt(&f, ax, 0, 404, 0);
    expect_skip(&f, ax, 0, 0, AR_SKIP_UNAVAILABLE);
    assert_int_equal(ar_router_reset_model(f.r, "x-up"), 1);
    expect_skip(&f, ax, 0, 0, AR_SKIP_NONE);
    /* the ban counts went with the ban: one more 401 does not ban */
    attempt(&f, ax, 0, 401, 0);
    expect_skip(&f, ax, 0, 0, AR_SKIP_NONE);
    fx_close(&f);
}

/* ---- routing.fallback ---- */

static void test_fallback_deployment(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: last\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n");
    assert_null(ar_router_fallback(f.r));
    fx_close(&f);
    fx_open(&f, "routing:\n  fallback:\n    enabled: false\n    credential: last\n"
                "    model: deep\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: last\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n");
    assert_null(ar_router_fallback(f.r));
    fx_close(&f);
    fx_open(&f, "  default_models_rpm: 1\n"
                "routing:\n  fallback:\n    enabled: true\n    credential: last\n"
                "    model: deepseek-chat\n"
                "credentials:\n"
                "  - name: a\n    type: mock\n"
                "  - name: last\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: y\n    credential: last\n");
    const ar_deployment_t *fb = ar_router_fallback(f.r);
    assert_non_null(fb);
    assert_string_equal(fb->cred->name, "last");
    assert_int_equal(fb->cred_idx, 1);
    assert_ptr_equal(fb->cred, &f.cfg->credentials[1]);
    assert_string_equal(fb->upstream_model, "deepseek-chat");
    assert_string_equal(fb->name, "deepseek-chat");
    assert_null(fb->model);
    assert_true(fb->is_fallback);
    assert_ptr_equal(fb->cred_state, ar_router_state_get(f.st, "last", NULL));
    assert_ptr_equal(fb->dep_state, ar_router_state_get(f.st, "last", "deepseek-chat"));
    /* it is admitted like any deployment, and shares its credential's limits and ban */
    ar_admission_t adm = admit_ok(&f, fb, 0, 0);
    expect_skip(&f, fb, 0, 0, AR_SKIP_LIMITED); /* default_models_rpm: 1 */
    report(&f, fb, &adm, 200, 0, 0);
    assert_int_equal(atomic_load(&fb->cred_state->requests), 1);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credential_rpm),
        cmocka_unit_test(test_deployment_rpm),
        cmocka_unit_test(test_default_models_rpm),
        cmocka_unit_test(test_tpm_estimate_and_correction),
        cmocka_unit_test(test_max_concurrent),
        cmocka_unit_test(test_auth_errors_ban_credential),
        cmocka_unit_test(test_success_resets_and_ignored_codes),
        cmocka_unit_test(test_network_errors_count_as_502_504),
        cmocka_unit_test(test_timed_ban_via_rule),
        cmocka_unit_test(test_breaker_opens_per_deployment),
        cmocka_unit_test(test_refused_trial_frees_slot),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_not_found_discovered_name),
        cmocka_unit_test(test_cancelled_changes_only_in_flight),
        cmocka_unit_test(test_success_rate_and_latency),
        cmocka_unit_test(test_rpm_share_and_withdraw),
        cmocka_unit_test(test_record_request),
        cmocka_unit_test(test_reset_model),
        cmocka_unit_test(test_fallback_deployment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
