/*
 * stats.h: what the router measures per deployment and credential, for routing
 * (lowest_latency, smart), /health and /metrics: cumulative Prometheus histograms, a
 * windowed latency distribution for the p50 over stats_window, an EWMA of time to first
 * byte, and counters by status and error kind. Everything is an atomic: any worker
 * records, anyone reads, nobody locks.
 */
#ifndef AR_ROUTER_STATS_H
#define AR_ROUTER_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/window.h"

#define AR_HISTO_BUCKETS 15 /* + the implicit +Inf */

/** Upper bounds in seconds of the Prometheus buckets (airouter_*_seconds). */
extern const double ar_histo_bounds_s[AR_HISTO_BUCKETS];

/** A cumulative histogram (Prometheus semantics: counts per upper bound, plus +Inf). */
typedef struct ar_histo {
    _Atomic uint64_t buckets[AR_HISTO_BUCKETS + 1]; /* non-cumulative; last = over the top */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
} ar_histo_t;

void ar_histo_observe(ar_histo_t *h, uint64_t us);

#define AR_LAT_BUCKETS 24 /* log2 buckets from 1 ms up */

/** Latency over the stats window: a windowed log2 histogram, for percentiles. */
typedef struct ar_latency {
    ar_window_t buckets[AR_LAT_BUCKETS];
} ar_latency_t;

void ar_latency_configure(ar_latency_t *l, int64_t window_ms);
void ar_latency_observe(ar_latency_t *l, uint64_t now_ms, uint64_t us);
/** The q-quantile (0..1) in ms over the window, or -1 when nothing was observed. */
double ar_latency_quantile_ms(const ar_latency_t *l, uint64_t now_ms, double q);

/** Moving average (alpha 0.2) of a value in µs; 0 until the first sample. */
void ar_ewma_observe(_Atomic uint64_t *ewma, uint64_t us);

/* Upstream error kinds for airouter_upstream_errors_total{kind}. */
typedef enum ar_uperr_kind {
    AR_UPERR_TIMEOUT = 0,
    AR_UPERR_CONNECT,
    AR_UPERR_RESET,
    AR_UPERR_DNS,
    AR_UPERR_TLS,
    AR_UPERR_PROTOCOL,
    AR_UPERR_HTTP_429,
    AR_UPERR_HTTP_4XX,
    AR_UPERR_HTTP_5XX,
    AR_UPERR_KINDS
} ar_uperr_kind_t;

/** "timeout", "connect", ... */
const char *ar_uperr_kind_name(ar_uperr_kind_t k);
/** The kind of an attempt's failure (err: an AR_E* or 0 with an HTTP status). */
ar_uperr_kind_t ar_uperr_kind_of(int status, int err);

#endif
