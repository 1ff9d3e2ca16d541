/*
 * pool.h: request-scoped memory. Everything a request allocates comes from its pool and is
 * released at once by ar_pool_destroy (or ar_pool_reset, which keeps the first block for
 * reuse). Resources that are not memory (curl handles, jansson values, timers) attach a
 * cleanup that runs, newest first, before the memory goes. A pool is not thread-safe:
 * it belongs to the worker thread that serves the request.
 */
#ifndef AR_CORE_POOL_H
#define AR_CORE_POOL_H

#include <stddef.h>

#include "core/span.h"

typedef struct ar_pool ar_pool_t;
typedef void (*ar_pool_cleanup_cb)(void *arg);

/** Creates a pool whose blocks are block_size bytes (larger requests get their own block). */
ar_pool_t *ar_pool_create(size_t block_size);
/** Runs the cleanups (newest first) and frees all memory, including the pool itself. */
void ar_pool_destroy(ar_pool_t *pool);
/** Runs the cleanups and frees all but the first block; the pool is then as if new. */
void ar_pool_reset(ar_pool_t *pool);
/** 16-byte aligned memory valid until destroy/reset; aborts on OOM. Never NULL. */
void *ar_pool_alloc(ar_pool_t *pool, size_t n);
/** Zeroed ar_pool_alloc. */
void *ar_pool_calloc(ar_pool_t *pool, size_t n);
/** Copies len bytes and a NUL terminator into the pool. */
char *ar_pool_strndup(ar_pool_t *pool, const char *s, size_t len);
static inline char *ar_pool_strdup_span(ar_pool_t *pool, ar_span_t s)
{
    return ar_pool_strndup(pool, s.ptr, s.len);
}
/** printf into pool memory. */
char *ar_pool_printf(ar_pool_t *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Registers fn(arg) to run at destroy/reset time, before the memory is freed. */
void ar_pool_cleanup_add(ar_pool_t *pool, ar_pool_cleanup_cb fn, void *arg);
/** Bytes handed out since creation or the last reset (for tests and stats). */
size_t ar_pool_used(const ar_pool_t *pool);

#endif
