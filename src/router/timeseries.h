/*
 * timeseries.h: the last hour of traffic, second by second (GET /admin/timeseries): per
 * second the finished client requests, the failed ones, their latency (a small log-scale
 * histogram, so p50 and p99 come without keeping samples) and their tokens. Each recording
 * thread (shard: a worker) owns a ring of 3600 slots it alone writes, allocated once on its
 * first request; readers merge the rings. Nothing is allocated or locked per request.
 */
#ifndef AR_ROUTER_TIMESERIES_H
#define AR_ROUTER_TIMESERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AR_TS_SECONDS 3600   /* the ring: one hour */
#define AR_TS_SHARDS_MAX 256 /* shard numbers are taken modulo this */
#define AR_TS_LAT_BUCKETS 48 /* half-octaves from 128 µs up to about 36 minutes */

typedef struct ar_ts ar_ts_t;

/* One second as read back. p50_ms and p99_ms are -1 when the second had no request. */
typedef struct ar_ts_point {
    int64_t t; /* unix seconds */
    uint64_t requests, errors;
    uint64_t prompt_tokens, completion_tokens;
    double p50_ms, p99_ms;
} ar_ts_point_t;

/** An empty series (its rings are made on first use). Aborts on OOM. */
ar_ts_t *ar_ts_create(void);
/** Frees it; nobody may record or read any more. NULL is ignored. */
void ar_ts_destroy(ar_ts_t *ts);
/**
 * Counts one finished request in second now_s. Only one thread may record with a given
 * shard at a time (a worker passes its own id); any number of readers may run meanwhile.
 * The first call of a shard allocates its ring (once); later calls allocate nothing.
 * Negative token counts count as 0.
 */
void ar_ts_record(ar_ts_t *ts, unsigned shard, int64_t now_s, bool error, uint64_t latency_us,
                  int64_t prompt_tokens, int64_t completion_tokens);
/**
 * The seconds now_s - n + 1 .. now_s, oldest first, into out (n entries; n is clamped to
 * 1..AR_TS_SECONDS). Seconds without requests are zero points. Any thread.
 * @return the number of points written.
 */
size_t ar_ts_read(const ar_ts_t *ts, int64_t now_s, size_t n, ar_ts_point_t *out);

#endif
