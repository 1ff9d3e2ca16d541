/*
 * stats.c: histograms, latency windows, EWMA and error kinds (see stats.h).
 */
#include <string.h>

#include "core/err.h"
#include "router/stats.h"

const double ar_histo_bounds_s[AR_HISTO_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                    2.5,   5,    10,    30,   60,  120,  300};

void ar_histo_observe(ar_histo_t *h, uint64_t us)
{
    double s = (double)us / 1e6;
    int i = 0;
    while (i < AR_HISTO_BUCKETS && s > ar_histo_bounds_s[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void ar_latency_configure(ar_latency_t *l, int64_t window_ms)
{
    for (int i = 0; i < AR_LAT_BUCKETS; i++)
        ar_window_configure(&l->buckets[i], window_ms);
}

/* bucket i holds latencies in [2^(i-1), 2^i) ms; bucket 0 is under 1 ms */
static int lat_bucket(uint64_t us)
{
    uint64_t ms = us / 1000;
    int i = 0;
    while (ms && i < AR_LAT_BUCKETS - 1) {
        ms >>= 1;
        i++;
    }
    return i;
}

void ar_latency_observe(ar_latency_t *l, uint64_t now_ms, uint64_t us)
{
    ar_window_add(&l->buckets[lat_bucket(us)], now_ms, 1);
}

double ar_latency_quantile_ms(const ar_latency_t *l, uint64_t now_ms, double q)
{
    int64_t counts[AR_LAT_BUCKETS];
    int64_t total = 0;
    for (int i = 0; i < AR_LAT_BUCKETS; i++) {
        counts[i] = ar_window_sum(&l->buckets[i], now_ms);
        total += counts[i];
    }
    if (total == 0)
        return -1;
    double want = q * (double)total;
    int64_t seen = 0;
    for (int i = 0; i < AR_LAT_BUCKETS; i++) {
        if (counts[i] == 0)
            continue;
        if ((double)(seen + counts[i]) >= want) {
            /* interpolate inside the bucket [lo, hi) */
            double lo = i == 0 ? 0 : (double)(1ull << (i - 1));
            double hi = (double)(1ull << i);
            double frac = counts[i] ? (want - (double)seen) / (double)counts[i] : 0;
            return lo + (hi - lo) * frac;
        }
        seen += counts[i];
    }
    return (double)(1ull << (AR_LAT_BUCKETS - 1));
}

void ar_ewma_observe(_Atomic uint64_t *ewma, uint64_t us)
{
    uint64_t old = atomic_load_explicit(ewma, memory_order_relaxed);
    for (;;) {
        uint64_t next = old == 0 ? us : (old * 4 + us) / 5;
        if (next == 0)
            next = 1;
        if (atomic_compare_exchange_weak_explicit(ewma, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return;
    }
}

const char *ar_uperr_kind_name(ar_uperr_kind_t k)
{
    static const char *names[AR_UPERR_KINDS] = {"timeout",  "connect",  "reset",
                                                "dns",      "tls",      "protocol",
                                                "http_429", "http_4xx", "http_5xx"};
    return (unsigned)k < AR_UPERR_KINDS ? names[k] : "protocol";
}

ar_uperr_kind_t ar_uperr_kind_of(int status, int err)
{
    switch (err) {
    case 0: break;
    case AR_ETIMEDOUT: return AR_UPERR_TIMEOUT;
    case AR_ECONNTIMEOUT:
    case AR_ECONNREFUSED:
    case AR_EHOSTUNREACH:
    case AR_ENETUNREACH: return AR_UPERR_CONNECT;
    case AR_ECONNRESET: return AR_UPERR_RESET;
    case AR_EDNS: return AR_UPERR_DNS;
    case AR_ETLS: return AR_UPERR_TLS;
    default: return AR_UPERR_PROTOCOL;
    }
    if (status == 429)
        return AR_UPERR_HTTP_429;
    if (status >= 500)
        return AR_UPERR_HTTP_5XX;
    return AR_UPERR_HTTP_4XX;
}
