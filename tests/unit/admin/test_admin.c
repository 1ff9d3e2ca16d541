/*
 * test_admin.c: unit tests of src/admin: /health JSON (bans with their end as RFC 3339 or
 * "permanent", breaker states and the degraded rule, RPM current/limit, success rate and
 * p50, implicit deployments once used, embedded proxy health), the Prometheus text
 * (exact counter lines, cumulative buckets ending in +Inf == _count, one HELP/TYPE per
 * family, label escaping), HTML escaping in /vhealth, /admin/state, the OpenAPI document
 * the dashboard pages (/admin/metrics, /admin/rate-limits, /admin/timeseries) and the
 * size cap. The router is driven through its public API with an injected clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/admin.h"
#include "router/router_fixture.h"
#include "testutil.h"

#define WALL_MS 1700000000000 /* 2023-11-14T22:13:20Z */

/* A view over f at monotonic time now_ms (wall clock WALL_MS at that instant). */
static ar_admin_view_t view(fx_t *f, uint64_t now_ms)
{
    ar_admin_view_t v;
    memset(&v, 0, sizeof(v));
    v.cfg = f->cfg;
    v.router = f->r;
    v.state = f->st;
    v.now_ms = now_ms;
    v.wall_ms = WALL_MS;
    v.uptime_s = 42;
    v.in_flight = 3;
    v.conns_open = 5;
    v.conns_max = 480;
    v.log_dropped = 7;
    return v;
}

/* One attempt on d at now_ms ending with status after duration_us; counted as a request. */
static void attempt(fx_t *f, const ar_deployment_t *d, uint64_t now_ms, int status,
                    uint64_t duration_us)
{
    ar_admission_t adm;
    assert_int_equal(ar_router_admit(f->r, d, now_ms, 10, &adm), AR_SKIP_NONE);
    ar_attempt_result_t res = {.status = status,
                               .ttfb_us = duration_us / 2,
                               .duration_us = duration_us,
                               .prompt_tokens = 3,
                               .completion_tokens = 5,
                               .usage_seen = status == 200,
                               .cost_usd = status == 200 ? 0.25 : 0};
    ar_router_report(f->r, d, &adm, &res, now_ms);
    ar_router_record_request(f->r, d, status, duration_us);
}

/* The deployment of `models:` entry i. */
static const ar_deployment_t *dep(fx_t *f, size_t i)
{
    assert_true(i < ar_router_dep_cnt(f->r));
    return ar_router_dep(f->r, i);
}

typedef int (*page_fn)(const ar_admin_view_t *v, ar_buf_t *out);

/* Runs fn and returns the NUL-terminated text (free with ar_buf_dispose). */
static void render(page_fn fn, const ar_admin_view_t *v, ar_buf_t *out)
{
    ar_buf_init(out, 1u << 24);
    assert_int_equal(fn(v, out), 0);
    assert_int_equal(ar_buf_nul(out), 0);
}

static json_t *render_json(page_fn fn, const ar_admin_view_t *v)
{
    ar_buf_t out;
    render(fn, v, &out);
    json_error_t je;
    json_t *j = json_loadb(out.ptr, out.len, 0, &je);
    if (!j)
        fail_msg("not JSON (%s at %d:%d): %s", je.text, je.line, je.column, out.ptr);
    ar_buf_dispose(&out);
    return j;
}

/* The element of array arr whose member key equals val (and, if key2, key2 equals val2). */
static json_t *find(json_t *arr, const char *key, const char *val, const char *key2,
                    const char *val2)
{
    size_t i;
    json_t *e;
    json_array_foreach (arr, i, e) {
        const char *s = json_string_value(json_object_get(e, key));
        if (!s || strcmp(s, val) != 0)
            continue;
        if (key2) {
            const char *s2 = json_string_value(json_object_get(e, key2));
            if (!s2 || strcmp(s2, val2) != 0)
                continue;
        }
        return e;
    }
    fail_msg("no element with %s=%s", key, val);
    return NULL;
}

static json_int_t jint(json_t *obj, const char *path1, const char *path2)
{
    json_t *v = json_object_get(obj, path1);
    if (path2)
        v = json_object_get(v, path2);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static const char two_creds[] = "fail2ban:\n  max_attempts: 2\n  ban_duration: 5m\n"
                                "circuit_breaker:\n  failure_threshold: 2\n"
                                "credentials:\n"
                                "  - name: a\n    type: mock\n    rpm: 10\n    tpm: 1000\n"
                                "  - name: b\n    type: mock\n"
                                "models:\n"
                                "  - name: x\n    credential: a\n    rpm: 5\n"
                                "  - name: x\n    credential: b\n    model: x-up\n";

static void test_health_ban_breaker_and_stats(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, two_creds);
    for (int i = 0; i < 3; i++)
        attempt(&f, dep(&f, 0), 1000, 200, 100000); /* 100 ms each */
    attempt(&f, dep(&f, 1), 1000, 500, 2000);
    attempt(&f, dep(&f, 1), 2000, 500, 2000); /* the second 500: ban + breaker OPEN */

    ar_admin_view_t v = view(&f, 3000);
    json_t *h = render_json(ar_admin_health_json, &v);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "degraded");
    assert_int_equal(jint(h, "uptime_s", NULL), 42);
    assert_int_equal(jint(h, "connections", "open"), 5);
    assert_int_equal(jint(h, "connections", "max"), 480);

    json_t *creds = json_object_get(h, "credentials");
    assert_int_equal(json_array_size(creds), 2);
    json_t *a = find(creds, "name", "a", NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(a, "type")), "mock");
    assert_true(json_is_false(json_object_get(a, "banned")));
    assert_true(json_is_null(json_object_get(a, "ban_until")));
    assert_int_equal(jint(a, "rpm", "current"), 3);
    assert_int_equal(jint(a, "rpm", "limit"), 10);
    assert_int_equal(jint(a, "tpm", "limit"), 1000);
    assert_int_equal(jint(a, "tpm", "current"), 24); /* 3 x (3 + 5) real usage */
    assert_int_equal(jint(a, "requests", NULL), 3);
    assert_int_equal(jint(a, "errors", NULL), 0);
    assert_int_equal(jint(a, "in_flight", NULL), 0);

    json_t *b = find(creds, "name", "b", NULL, NULL);
    assert_true(json_is_true(json_object_get(b, "banned")));
    /* banned at monotonic 2000 for 5 min; seen at 3000 = WALL_MS: ends WALL_MS + 299 s */
    assert_string_equal(json_string_value(json_object_get(b, "ban_until")), "2023-11-14T22:18:19Z");
    assert_int_equal(jint(b, "rpm", "limit"), -1);
    assert_int_equal(jint(b, "errors", NULL), 2);

    json_t *models = json_object_get(h, "models");
    assert_int_equal(json_array_size(models), 2);
    json_t *ma = find(models, "name", "x", "credential", "a");
    assert_string_equal(json_string_value(json_object_get(ma, "state")), "CLOSED");
    assert_int_equal(jint(ma, "rpm", "current"), 3);
    assert_int_equal(jint(ma, "rpm", "limit"), 5);
    assert_int_equal(jint(ma, "tpm", "limit"), -1);
    assert_true(json_number_value(json_object_get(ma, "success_rate")) == 1.0);
    double p50 = json_number_value(json_object_get(ma, "latency_ms_p50"));
    assert_true(p50 >= 64 && p50 <= 128); /* the log2 bucket holding 100 ms */
    json_t *mb = find(models, "name", "x", "credential", "b");
    assert_string_equal(json_string_value(json_object_get(mb, "model")), "x-up");
    assert_string_equal(json_string_value(json_object_get(mb, "state")), "OPEN");
    assert_true(json_number_value(json_object_get(mb, "success_rate")) == 0.0);
    assert_true(json_is_null(json_object_get(mb, "latency_ms_p50")));

    assert_int_equal(json_array_size(json_object_get(h, "proxies")), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(h, "storage"), "type")),
                        "none");
    assert_true(json_is_false(json_object_get(json_object_get(h, "redis"), "configured")));
    json_decref(h);

    /* with a store: its ledger, pending = written - applied (replayed ones are not new) */
    v.storage = (ar_admin_storage_t){.type = "sqlite",
                                     .keys_cached = 3,
                                     .ledger_written = 10,
                                     .ledger_applied = 9,
                                     .ledger_replayed = 2,
                                     .ledger_apply_errors = 1};
    h = render_json(ar_admin_health_json, &v);
    json_t *st = json_object_get(h, "storage");
    assert_string_equal(json_string_value(json_object_get(st, "type")), "sqlite");
    assert_int_equal(json_integer_value(json_object_get(st, "keys_cached")), 3);
    json_t *lg = json_object_get(st, "ledger");
    assert_int_equal(json_integer_value(json_object_get(lg, "written")), 10);
    assert_int_equal(json_integer_value(json_object_get(lg, "applied")), 7);
    assert_int_equal(json_integer_value(json_object_get(lg, "pending")), 3);
    assert_int_equal(json_integer_value(json_object_get(lg, "apply_errors")), 1);
    json_decref(h);
    v.storage = (ar_admin_storage_t){0};

    /* after the ban ran out and the admin reset the breaker, all is well again */
    assert_int_equal(ar_router_reset_model(f.r, "x-up"), 1);
    v = view(&f, 2000 + 300000);
    h = render_json(ar_admin_health_json, &v);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "ok");
    b = find(json_object_get(h, "credentials"), "name", "b", NULL, NULL);
    assert_true(json_is_false(json_object_get(b, "banned")));
    assert_true(json_is_null(json_object_get(b, "ban_until")));
    json_decref(h);
    fx_close(&f);
}

static void test_health_permanent_ban_and_draining(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "fail2ban:\n  max_attempts: 1\n"
                "credentials:\n  - name: a\n    type: mock\n"
                "models:\n  - name: x\n    credential: a\n");
    ar_admin_view_t v = view(&f, 1000);
    json_t *h = render_json(ar_admin_health_json, &v);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "ok");
    json_decref(h);

    v.draining = true;
    h = render_json(ar_admin_health_json, &v);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "degraded");
    json_decref(h);

    attempt(&f, dep(&f, 0), 1000, 401, 1000); /* 401 counts; the default ban is permanent */
    v = view(&f, 1000 + 86400000);
    h = render_json(ar_admin_health_json, &v);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "degraded");
    json_t *a = find(json_object_get(h, "credentials"), "name", "a", NULL, NULL);
    assert_true(json_is_true(json_object_get(a, "banned")));
    assert_string_equal(json_string_value(json_object_get(a, "ban_until")), "permanent");
    json_decref(h);
    fx_close(&f);
}

/* An open credential (no `models:` entry) shows in "models" once a name was used on it. */
static void test_health_implicit_deployments(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n  - name: open\n    type: mock\n"
                "  - name: a\n    type: mock\n"
                "models:\n  - name: x\n    credential: a\n");
    ar_admin_view_t v = view(&f, 1000);
    json_t *h = render_json(ar_admin_health_json, &v);
    assert_int_equal(json_array_size(json_object_get(h, "models")), 1);
    json_decref(h);

    ar_candidates_t c = fx_query(&f, "anything");
    assert_int_equal(c.cnt, 1);
    attempt(&f, c.items[0], 1000, 200, 5000);
    h = render_json(ar_admin_health_json, &v);
    json_t *models = json_object_get(h, "models");
    assert_int_equal(json_array_size(models), 2);
    json_t *m = find(models, "name", "*", "credential", "open");
    assert_string_equal(json_string_value(json_object_get(m, "state")), "CLOSED");
    assert_int_equal(jint(m, "rpm", "current"), 1);
    json_decref(h);
    fx_close(&f);
}

static void test_health_proxies(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n  - name: a\n    type: mock\n");
    ar_admin_proxy_t px[3] = {
        {"up", "http://10.0.0.1:8080", true, 200, WALL_MS, "{\"status\":\"ok\",\"n\":[1,2]}", NULL},
        {"down", "http://10.0.0.2:8080", false, 0, 0, NULL, "connection refused"},
        {"bad", "http://10.0.0.3:8080", true, 200, WALL_MS, "{\"status\":", NULL},
    };
    ar_admin_view_t v = view(&f, 1000);
    v.proxies = px;
    v.proxies_cnt = 3;
    json_t *h = render_json(ar_admin_health_json, &v);
    json_t *ps = json_object_get(h, "proxies");
    assert_int_equal(json_array_size(ps), 3);
    json_t *up = json_array_get(ps, 0);
    assert_string_equal(json_string_value(json_object_get(up, "name")), "up");
    assert_string_equal(json_string_value(json_object_get(up, "url")), "http://10.0.0.1:8080");
    assert_true(json_is_true(json_object_get(up, "reachable")));
    assert_int_equal(jint(up, "status", NULL), 200);
    assert_string_equal(json_string_value(json_object_get(up, "checked_at")),
                        "2023-11-14T22:13:20Z");
    json_t *want = json_pack("{s:s, s:[i,i]}", "status", "ok", "n", 1, 2);
    assert_json_equal(json_object_get(up, "health"), want);
    json_decref(want);
    assert_true(json_is_null(json_object_get(up, "error")));
    json_t *down = json_array_get(ps, 1);
    assert_true(json_is_false(json_object_get(down, "reachable")));
    assert_true(json_is_null(json_object_get(down, "checked_at")));
    assert_true(json_is_null(json_object_get(down, "health")));
    assert_string_equal(json_string_value(json_object_get(down, "error")), "connection refused");
    /* a broken body from a peer is not pasted into our document */
    assert_true(json_is_null(json_object_get(json_array_get(ps, 2), "health")));
    json_decref(h);

    ar_buf_t out;
    render(ar_admin_health_html, &v, &out);
    assert_non_null(strstr(out.ptr, "connection refused"));
    assert_non_null(strstr(out.ptr, "Remote routers"));
    assert_non_null(strstr(out.ptr, "5 of 480 client connections"));
    ar_buf_dispose(&out);
    v.conns_max = -1; /* unlimited: no "of" */
    render(ar_admin_health_html, &v, &out);
    assert_non_null(strstr(out.ptr, "&middot; 5 client connections"));
    ar_buf_dispose(&out);
    fx_close(&f);
}

/* The lines of text that start with prefix, counted. */
static int count_prefix(const char *text, const char *prefix)
{
    int n = 0;
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, pl) == 0)
            n++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return n;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = strstr(text, line); p; p = strstr(p + 1, line)) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    }
    return false;
}

#define assert_line(text, line)                                                                    \
    do {                                                                                           \
        if (!has_line((text), (line)))                                                             \
            fail_msg("missing line: %s\n%s", (line), (text));                                      \
    } while (0)

static void test_metrics(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n"
                "  - name: a\n    type: mock\n    rpm: 10\n"
                "  - name: 'q\"uo\\te'\n    type: mock\n"
                "circuit_breaker:\n  failure_threshold: 1\n"
                "models:\n"
                "  - name: x\n    credential: a\n"
                "  - name: y\n    credential: 'q\"uo\\te'\n");
    attempt(&f, dep(&f, 0), 1000, 200, 3000);      /* 3 ms: le=0.005 */
    attempt(&f, dep(&f, 0), 1000, 200, 700000);    /* 0.7 s: le=1 */
    attempt(&f, dep(&f, 0), 1000, 200, 400000000); /* 400 s: only +Inf */
    attempt(&f, dep(&f, 1), 1000, 503, 1000);
    ar_router_record_request(f.r, NULL, 404, 100);
    ar_router_record_request(f.r, NULL, 404, 100);

    ar_admin_view_t v = view(&f, 1500);
    ar_buf_t out;
    render(ar_admin_metrics, &v, &out);
    const char *m = out.ptr;

    assert_line(m, "# TYPE airouter_requests_total counter");
    assert_line(m, "airouter_requests_total{model=\"x\",credential=\"a\",status=\"200\"} 3");
    assert_line(
        m, "airouter_requests_total{model=\"y\",credential=\"q\\\"uo\\\\te\",status=\"503\"} 1");
    assert_line(m, "airouter_requests_total{model=\"\",credential=\"\",status=\"404\"} 2");
    assert_line(m, "airouter_request_duration_seconds_bucket{model=\"x\",credential=\"a\","
                   "le=\"0.005\"} 1");
    assert_line(m, "airouter_request_duration_seconds_bucket{model=\"x\",credential=\"a\","
                   "le=\"0.5\"} 1");
    assert_line(m, "airouter_request_duration_seconds_bucket{model=\"x\",credential=\"a\","
                   "le=\"1\"} 2");
    assert_line(m, "airouter_request_duration_seconds_bucket{model=\"x\",credential=\"a\","
                   "le=\"300\"} 2");
    assert_line(m, "airouter_request_duration_seconds_bucket{model=\"x\",credential=\"a\","
                   "le=\"+Inf\"} 3");
    assert_line(m, "airouter_request_duration_seconds_count{model=\"x\",credential=\"a\"} 3");
    assert_line(m,
                "airouter_request_duration_seconds_sum{model=\"x\",credential=\"a\"} 400.703000");
    assert_line(m, "airouter_time_to_first_byte_seconds_count{model=\"x\",credential=\"a\"} 3");
    assert_line(m, "airouter_tokens_total{model=\"x\",credential=\"a\",kind=\"prompt\"} 9");
    assert_line(m, "airouter_tokens_total{model=\"x\",credential=\"a\",kind=\"completion\"} 15");
    assert_line(m, "airouter_cost_usd_total{model=\"x\",credential=\"a\"} 0.750000000");
    assert_line(m, "airouter_breaker_state{model=\"x\",credential=\"a\"} 0");
    assert_line(m, "airouter_breaker_state{model=\"y\",credential=\"q\\\"uo\\\\te\"} 1");
    assert_line(m, "airouter_credential_rpm_current{credential=\"a\"} 3");
    assert_line(m, "airouter_credential_rpm_limit{credential=\"a\"} 10");
    assert_line(m, "airouter_credential_rpm_limit{credential=\"q\\\"uo\\\\te\"} -1");
    assert_line(m, "airouter_credential_tpm_current{credential=\"a\"} 24");
    assert_line(m, "airouter_credential_banned{credential=\"a\"} 0");
    assert_line(m,
                "airouter_upstream_errors_total{credential=\"q\\\"uo\\\\te\",kind=\"http_5xx\"} 1");
    assert_line(m, "airouter_upstream_errors_total{credential=\"a\",kind=\"http_5xx\"} 0");
    assert_line(m, "airouter_in_flight 3");
    assert_line(m, "airouter_client_connections 5");
    assert_line(m, "airouter_client_connections_max 480");
    assert_line(m, "airouter_uptime_seconds 42");
    assert_line(m, "airouter_log_lines_dropped_total 7");

    /* every family once, its HELP right before its TYPE */
    static const char *const families[] = {"airouter_requests_total",
                                           "airouter_request_duration_seconds",
                                           "airouter_time_to_first_byte_seconds",
                                           "airouter_tokens_total",
                                           "airouter_cost_usd_total",
                                           "airouter_credential_rpm_current",
                                           "airouter_credential_tpm_current",
                                           "airouter_credential_banned",
                                           "airouter_breaker_state",
                                           "airouter_in_flight",
                                           "airouter_client_connections",
                                           "airouter_client_connections_max",
                                           "airouter_upstream_errors_total",
                                           "airouter_uptime_seconds",
                                           "airouter_log_lines_dropped_total",
                                           "airouter_credential_rpm_limit"};
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char help[128], type[128];
        snprintf(help, sizeof(help), "# HELP %s ", families[i]);
        snprintf(type, sizeof(type), "# TYPE %s ", families[i]);
        assert_int_equal(count_prefix(m, help), 1);
        assert_int_equal(count_prefix(m, type), 1);
        const char *hp = strstr(m, help);
        assert_ptr_equal(strstr(m, type), strchr(hp, '\n') + 1);
    }
    /* no TYPE line appears twice at all */
    assert_int_equal(count_prefix(m, "# TYPE "), count_prefix(m, "# HELP "));
    ar_buf_dispose(&out);
    fx_close(&f);
}

/* In every histogram, buckets never decrease and +Inf equals _count. */
static void test_metrics_histograms_consistent(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n  - name: a\n    type: mock\n"
                "models:\n  - name: x\n    credential: a\n");
    uint64_t us = 1;
    for (int i = 0; i < 40; i++) {
        attempt(&f, dep(&f, 0), 1000, 200, us);
        us = us * 3 + 7;
        if (us > 600000000)
            us = 2;
    }
    ar_admin_view_t v = view(&f, 1500);
    ar_buf_t out;
    render(ar_admin_metrics, &v, &out);
    int histos = 0;
    uint64_t last = 0;
    for (const char *p = out.ptr; *p;) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        if (strstr(p, "_bucket{") && strstr(p, "_bucket{") < eol) {
            const char *sp = eol;
            while (sp > p && sp[-1] != ' ')
                sp--;
            uint64_t n = strtoull(sp, NULL, 10);
            bool inf = strstr(p, "le=\"+Inf\"") && strstr(p, "le=\"+Inf\"") < eol;
            bool first = strstr(p, "le=\"0.005\"") && strstr(p, "le=\"0.005\"") < eol;
            if (!first)
                assert_true(n >= last);
            last = n;
            if (inf) {
                /* the next lines are _sum and _count */
                const char *cnt = strchr(strchr(eol + 1, '\n') + 1, ' ');
                assert_int_equal(strtoull(cnt + 1, NULL, 10), n);
                histos++;
            }
        }
        p = eol + 1;
    }
    assert_int_equal(histos, 3); /* duration and ttfb of x, duration of the unrouted */
    ar_buf_dispose(&out);
    fx_close(&f);
}

static void test_vhealth_escapes(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "credentials:\n  - name: '<script>'\n    type: mock\n"
                "  - name: 'a&b'\n    type: mock\n"
                "models:\n  - name: '\"x\"'\n    credential: '<script>'\n");
    ar_admin_view_t v = view(&f, 1000);
    ar_buf_t out;
    render(ar_admin_health_html, &v, &out);
    const char *html = out.ptr;
    assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    assert_non_null(strstr(html, "<meta http-equiv=\"refresh\" content=\"10\">"));
    assert_non_null(strstr(html, "&lt;script&gt;"));
    assert_null(strstr(html, "<script"));
    assert_non_null(strstr(html, "a&amp;b"));
    assert_non_null(strstr(html, "&quot;x&quot;"));
    assert_non_null(strstr(html, ">CLOSED<"));
    assert_non_null(strstr(html, "</html>"));
    ar_buf_dispose(&out);
    fx_close(&f);
}

static void test_admin_state(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "fail2ban:\n  max_attempts: 1\n  ban_duration: 1m\n"
                "credentials:\n  - name: a\n    type: mock\n    rpm: 10\n"
                "  - name: b\n    type: mock\n"
                "models:\n"
                "  - name: x\n    credential: a\n    model: up\n"
                "  - name: alias\n    credential: a\n    model: up\n"
                "  - name: x\n    credential: b\n");
    attempt(&f, dep(&f, 0), 1000, 200, 20000);
    attempt(&f, dep(&f, 0), 1000, 200, 20000);
    attempt(&f, dep(&f, 2), 1000, 429, 1000);
    ar_admin_view_t v = view(&f, 1500);
    json_t *s = render_json(ar_admin_state_json, &v);
    assert_string_equal(json_string_value(json_object_get(s, "status")), "degraded");

    json_t *deps = json_object_get(s, "deployments");
    assert_int_equal(json_array_size(deps), 2); /* x and alias share a:up */
    json_t *d = find(deps, "credential", "a", "model", "up");
    assert_true(json_is_true(json_object_get(d, "explicit")));
    json_t *names = json_pack("[s,s]", "x", "alias");
    assert_json_equal(json_object_get(d, "public_names"), names);
    json_decref(names);
    assert_string_equal(json_string_value(json_object_get(d, "state")), "CLOSED");
    assert_int_equal(jint(d, "requests", NULL), 2);
    assert_int_equal(jint(d, "rpm", "current"), 2);
    assert_int_equal(jint(d, "tokens", "prompt"), 6);
    json_t *counts = json_pack("{s:i}", "200", 2);
    assert_json_equal(json_object_get(d, "status_counts"), counts);
    json_decref(counts);
    assert_true(json_is_number(json_object_get(json_object_get(d, "latency_ms"), "p99")));
    assert_true(json_is_number(json_object_get(d, "ttfb_ewma_ms")));

    json_t *db = find(deps, "credential", "b", "model", "x");
    json_t *uperr = json_pack("{s:i}", "http_429", 1);
    assert_json_equal(json_object_get(db, "upstream_errors"), uperr);
    json_decref(uperr);
    assert_true(json_is_null(json_object_get(json_object_get(db, "latency_ms"), "p50")));

    json_t *cb = find(json_object_get(s, "credentials"), "name", "b", NULL, NULL);
    json_t *ban = json_object_get(cb, "ban");
    assert_true(json_is_true(json_object_get(ban, "banned")));
    assert_int_equal(jint(ban, "last_code", NULL), 429);
    assert_string_equal(json_string_value(json_object_get(ban, "until")), "2023-11-14T22:14:19Z");
    assert_int_equal(jint(cb, "errors", NULL), 1);
    json_decref(s);
    fx_close(&f);
}

static void test_openapi(void **state)
{
    (void)state;
    ar_buf_t out;
    ar_buf_init(&out, 1u << 20);
    assert_int_equal(ar_admin_openapi(&out), 0);
    assert_int_equal(ar_buf_nul(&out), 0);
    json_error_t je;
    json_t *doc = json_loadb(out.ptr, out.len, 0, &je);
    if (!doc)
        fail_msg("openapi.json: %s at column %d", je.text, je.column);
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
    json_t *paths = json_object_get(doc, "paths");
    static const char *const want[] = {"/v1/chat/completions",
                                       "/v1/completions",
                                       "/v1/embeddings",
                                       "/v1/models",
                                       "/v1/models/{id}",
                                       "/health",
                                       "/vhealth",
                                       "/metrics",
                                       "/admin/state",
                                       "/admin/state/{model}/reset",
                                       "/openapi.json",
                                       "/v1/responses",
                                       "/v1/responses/{id}",
                                       "/v1/responses/{id}/input_items",
                                       "/admin/metrics",
                                       "/admin/rate-limits",
                                       "/admin/timeseries",
                                       "/admin/keys",
                                       "/admin/keys/{id}/revoke",
                                       "/admin/keys/{id}/limits",
                                       "/admin/plans",
                                       "/admin/spend",
                                       "/admin/spend.csv"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!json_object_get(paths, want[i]))
            fail_msg("path %s missing", want[i]);
    }
    /* the Responses routes: both methods on {id}, the paging parameters on input_items */
    json_t *by_id = json_object_get(paths, "/v1/responses/{id}");
    assert_non_null(json_object_get(by_id, "get"));
    assert_non_null(json_object_get(by_id, "delete"));
    assert_non_null(json_object_get(json_object_get(paths, "/v1/responses"), "post"));
    json_t *params = json_object_get(
        json_object_get(json_object_get(paths, "/v1/responses/{id}/input_items"), "get"),
        "parameters");
    static const char *const names[] = {"id", "limit", "order", "after"};
    assert_int_equal(json_array_size(params), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(params, i), "name")),
                            names[i]);
    json_t *schemes = json_object_get(json_object_get(doc, "components"), "securitySchemes");
    assert_int_equal(json_object_size(schemes), 4);
    /* every local $ref resolves */
    for (const char *p = strstr(out.ptr, "\"$ref\":\"#/"); p; p = strstr(p, "\"$ref\":\"#/")) {
        p += strlen("\"$ref\":\"#/");
        const char *end = strchr(p, '"');
        char ref[128];
        snprintf(ref, sizeof(ref), "%.*s", (int)(end - p), p);
        json_t *at = doc;
        for (char *tok = strtok(ref, "/"); tok; tok = strtok(NULL, "/"))
            at = json_object_get(at, tok);
        if (!at)
            fail_msg("dangling $ref %.*s", (int)(end - p), p);
    }
    json_decref(doc);
    ar_buf_dispose(&out);
}

/* /admin/metrics: totals over every deployment and the unrouted requests, one entry per
 * public name (both deployments of x merged), availability, fallbacks. */
static void test_admin_metrics(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, two_creds);
    for (int i = 0; i < 3; i++)
        attempt(&f, dep(&f, 0), 1000, 200, 100000);
    attempt(&f, dep(&f, 1), 1000, 500, 2000);
    attempt(&f, dep(&f, 1), 2000, 500, 2000); /* b banned, its breaker OPEN */
    ar_router_record_fallback(dep(&f, 0));
    ar_router_record_request(f.r, NULL, 404, 10000);
    ar_admin_view_t v = view(&f, 3000);
    json_t *m = render_json(ar_admin_metrics_json, &v);
    assert_int_equal(jint(m, "uptime", NULL), 42);
    assert_int_equal(jint(m, "totalRequests", NULL), 6);
    assert_int_equal(jint(m, "successfulRequests", NULL), 3);
    assert_int_equal(jint(m, "failedRequests", NULL), 3);
    assert_int_equal(jint(m, "fallbacksUsed", NULL), 1);
    assert_int_equal(jint(m, "modelsAvailable", NULL), 1);
    assert_float_equal(json_real_value(json_object_get(m, "avgLatency")), 314000.0 / 6 / 1000,
                       0.06);
    json_t *models = json_object_get(m, "models");
    assert_int_equal(json_array_size(models), 1);
    json_t *x = find(models, "name", "x", NULL, NULL);
    assert_int_equal(jint(x, "requests", NULL), 5);
    assert_int_equal(jint(x, "successful", NULL), 3);
    assert_int_equal(jint(x, "failed", NULL), 2);
    assert_float_equal(json_real_value(json_object_get(x, "avgLatency")), 60.8, 0.06);
    assert_true(json_is_true(json_object_get(x, "available")));
    json_decref(m);
    fx_close(&f);
}

static const char limited[] = "rate_limiting:\n  enabled: true\n"
                              "  global: { requests_per_minute: 10, burst_size: 10 }\n"
                              "  per_model: { requests_per_minute: 5 }\n"
                              "credentials:\n"
                              "  - name: a\n    type: mock\n    rpm: 10\n"
                              "models:\n"
                              "  - name: x\n    credential: a\n    rpm: 5\n"
                              "  - name: y\n    credential: a\n";

/* /admin/rate-limits: the client buckets read without being charged, and the windows. */
static void test_admin_rate_limits(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, limited);
    attempt(&f, dep(&f, 0), 1000, 200, 1000);
    ar_bucket_t global;
    ar_bucket_init(&global);
    ar_bucket_table_t *models = ar_bucket_table_create(64, 7);
    ar_bucket_limit_t lim;
    ar_bucket_result_t r;
    assert_true(ar_bucket_limit_init(&lim, 10, 10));
    assert_true(ar_bucket_take(&global, &lim, 1000, &r));
    assert_true(ar_bucket_limit_init(&lim, 5, 5));
    assert_true(
        ar_bucket_take(ar_bucket_table_get(models, 'm', AR_LIT("x"), 1000), &lim, 1000, &r));
    ar_admin_view_t v = view(&f, 1000);
    v.limiter = (ar_admin_limiter_t){&global, NULL, models};
    for (int round = 0; round < 2; round++) { /* reading twice changes nothing */
        json_t *j = render_json(ar_admin_rate_limits_json, &v);
        json_t *c = json_object_get(j, "client");
        assert_true(json_is_true(json_object_get(c, "enabled")));
        assert_int_equal(jint(c, "global", "remaining"), 9);
        assert_false(json_is_true(json_object_get(json_object_get(c, "per_client"), "enabled")));
        assert_int_equal(jint(c, "per_client", "clients_tracked"), 0);
        json_t *pm = json_object_get(json_object_get(c, "per_model"), "models");
        assert_int_equal(json_array_size(pm), 2);
        assert_int_equal(jint(find(pm, "name", "x", NULL, NULL), "remaining", NULL), 4);
        assert_int_equal(jint(find(pm, "name", "y", NULL, NULL), "remaining", NULL), 5);
        json_t *a = find(json_object_get(j, "credentials"), "name", "a", NULL, NULL);
        assert_int_equal(jint(a, "rpm", "current"), 1);
        assert_int_equal(jint(a, "rpm", "limit"), 10);
        assert_int_equal(jint(a, "tpm", "limit"), -1);
        json_t *d = find(json_object_get(j, "deployments"), "credential", "a", "model", "x");
        assert_int_equal(jint(d, "rpm", "limit"), 5);
        assert_int_equal(json_array_size(json_object_get(j, "keys")), 0);
        json_decref(j);
    }
    assert_int_equal(ar_bucket_table_used(models), 1);
    ar_bucket_table_destroy(models);
    fx_close(&f);
}

/* /admin/timeseries: ts_seconds points ending at the wall clock's second, oldest first. */
static void test_admin_timeseries(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, two_creds);
    ar_ts_t *ts = ar_ts_create();
    ar_ts_record(ts, 0, WALL_MS / 1000, false, 20000, 3, 5);
    ar_ts_record(ts, 1, WALL_MS / 1000, true, 20000, 0, 0);
    ar_admin_view_t v = view(&f, 1000);
    v.timeseries = ts;
    v.ts_seconds = 3;
    json_t *j = render_json(ar_admin_timeseries_json, &v);
    assert_int_equal(jint(j, "interval_s", NULL), 1);
    json_t *pts = json_object_get(j, "points");
    assert_int_equal(json_array_size(pts), 3);
    json_t *first = json_array_get(pts, 0), *last = json_array_get(pts, 2);
    assert_int_equal(jint(first, "t", NULL), WALL_MS / 1000 - 2);
    assert_int_equal(jint(first, "requests", NULL), 0);
    assert_true(json_is_null(json_object_get(first, "p50_ms")));
    assert_int_equal(jint(last, "t", NULL), WALL_MS / 1000);
    assert_int_equal(jint(last, "requests", NULL), 2);
    assert_int_equal(jint(last, "errors", NULL), 1);
    assert_int_equal(jint(last, "prompt_tokens", NULL), 3);
    assert_int_equal(jint(last, "completion_tokens", NULL), 5);
    double p50 = json_real_value(json_object_get(last, "p50_ms"));
    assert_true(p50 > 13 && p50 < 30);
    json_decref(j);
    /* no series kept: an empty list */
    v.timeseries = NULL;
    j = render_json(ar_admin_timeseries_json, &v);
    assert_int_equal(json_array_size(json_object_get(j, "points")), 0);
    json_decref(j);
    ar_ts_destroy(ts);
    fx_close(&f);
}

/* A page that does not fit the buffer's cap fails cleanly with AR_ETOOBIG. */
static void test_cap(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, two_creds);
    ar_admin_view_t v = view(&f, 1000);
    page_fn fns[] = {ar_admin_health_json, ar_admin_health_html,  ar_admin_metrics,
                     ar_admin_state_json,  ar_admin_metrics_json, ar_admin_rate_limits_json};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        ar_buf_t out;
        ar_buf_init(&out, 200);
        assert_int_equal(fns[i](&v, &out), AR_ETOOBIG);
        ar_buf_dispose(&out);
    }
    ar_buf_t out;
    ar_buf_init(&out, 100);
    assert_int_equal(ar_admin_openapi(&out), AR_ETOOBIG);
    ar_buf_dispose(&out);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_ban_breaker_and_stats),
        cmocka_unit_test(test_health_permanent_ban_and_draining),
        cmocka_unit_test(test_health_implicit_deployments),
        cmocka_unit_test(test_health_proxies),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_metrics_histograms_consistent),
        cmocka_unit_test(test_vhealth_escapes),
        cmocka_unit_test(test_admin_state),
        cmocka_unit_test(test_openapi),
        cmocka_unit_test(test_admin_metrics),
        cmocka_unit_test(test_admin_rate_limits),
        cmocka_unit_test(test_admin_timeseries),
        cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
