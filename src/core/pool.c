/*
 * pool.c: a bump allocator over a chain of blocks (see pool.h). The pool header lives in
 * its first block, so a fresh pool costs one malloc, and a reset pool none.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/pool.h"

#define ALIGN 16
#define ALIGN_UP(n) (((n) + (ALIGN - 1)) & ~(size_t)(ALIGN - 1))

typedef struct block {
    struct block *next;
    size_t size; /* usable bytes after the header */
} block_t;

typedef struct cleanup {
    struct cleanup *next;
    ar_pool_cleanup_cb fn;
    void *arg;
} cleanup_t;

struct ar_pool {
    char *cur, *end;     /* free space in the current block */
    block_t *extra;      /* blocks after the first, newest first */
    cleanup_t *cleanups; /* newest first */
    size_t block_size;
    size_t used;
    char *first_start; /* free space of the first block after this header */
    char *first_end;
};

#define HDR ALIGN_UP(sizeof(block_t))
#define POOL_HDR ALIGN_UP(sizeof(ar_pool_t))

ar_pool_t *ar_pool_create(size_t block_size)
{
    if (block_size < 1024)
        block_size = 1024;
    char *mem = ar_xmalloc(POOL_HDR + block_size);
    ar_pool_t *p = (ar_pool_t *)mem;
    p->first_start = mem + POOL_HDR;
    p->first_end = mem + POOL_HDR + block_size;
    p->cur = p->first_start;
    p->end = p->first_end;
    p->extra = NULL;
    p->cleanups = NULL;
    p->block_size = block_size;
    p->used = 0;
    return p;
}

static void run_cleanups(ar_pool_t *p)
{
    /* A cleanup may allocate from the pool or add cleanups; loop until none are left. */
    while (p->cleanups) {
        cleanup_t *c = p->cleanups;
        p->cleanups = c->next;
        c->fn(c->arg);
    }
}

static void free_extra(ar_pool_t *p)
{
    block_t *b = p->extra;
    while (b) {
        block_t *next = b->next;
        ar_free(b);
        b = next;
    }
    p->extra = NULL;
}

void ar_pool_destroy(ar_pool_t *p)
{
    if (!p)
        return;
    run_cleanups(p);
    free_extra(p);
    ar_free(p);
}

void ar_pool_reset(ar_pool_t *p)
{
    run_cleanups(p);
    free_extra(p);
    p->cur = p->first_start;
    p->end = p->first_end;
    p->used = 0;
}

void *ar_pool_alloc(ar_pool_t *p, size_t n)
{
    n = ALIGN_UP(n ? n : 1);
    p->used += n;
    if ((size_t)(p->end - p->cur) >= n) {
        void *r = p->cur;
        p->cur += n;
        return r;
    }
    if (n > p->block_size / 4) {
        /* Big allocations get a block of their own, so the current block keeps its space. */
        block_t *b = ar_xmalloc(HDR + n);
        b->size = n;
        if (p->extra) {
            b->next = p->extra->next;
            p->extra->next = b;
        } else {
            b->next = NULL;
            p->extra = b;
        }
        return (char *)b + HDR;
    }
    block_t *b = ar_xmalloc(HDR + p->block_size);
    b->size = p->block_size;
    b->next = p->extra;
    p->extra = b;
    p->cur = (char *)b + HDR + n;
    p->end = (char *)b + HDR + p->block_size;
    return (char *)b + HDR;
}

void *ar_pool_calloc(ar_pool_t *p, size_t n)
{
    void *r = ar_pool_alloc(p, n);
    memset(r, 0, n);
    return r;
}

char *ar_pool_strndup(ar_pool_t *p, const char *s, size_t len)
{
    char *r = ar_pool_alloc(p, len + 1);
    if (len)
        memcpy(r, s, len);
    r[len] = '\0';
    return r;
}

char *ar_pool_printf(ar_pool_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *r = ar_pool_alloc(p, (size_t)n + 1);
    if ((size_t)n < sizeof(small))
        memcpy(r, small, (size_t)n + 1);
    else
        vsnprintf(r, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return r;
}

void ar_pool_cleanup_add(ar_pool_t *p, ar_pool_cleanup_cb fn, void *arg)
{
    cleanup_t *c = ar_pool_alloc(p, sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    c->next = p->cleanups;
    p->cleanups = c;
}

size_t ar_pool_used(const ar_pool_t *p)
{
    return p->used;
}
