/*
 * mem.h: the allocation policy in one place. Fixed-size allocations use ar_xmalloc and
 * friends, which log and abort on OOM (sizes taken from input must instead be capped by
 * the caller and fail with AR_ETOOBIG). Unit-test builds route them through cmocka's
 * checked allocator so that a leak fails the test.
 */
#ifndef AR_CORE_MEM_H
#define AR_CORE_MEM_H

#include <stddef.h>
#include <stdlib.h>

#define ar_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define AR_ARRAY_CNT(a) (sizeof(a) / sizeof((a)[0]))

#ifdef UNIT_TESTING
void *_test_malloc(const size_t size, const char *file, const int line);
void *_test_calloc(const size_t n, const size_t size, const char *file, const int line);
void *_test_realloc(void *ptr, const size_t size, const char *file, const int line);
void _test_free(void *const ptr, const char *file, const int line);
char *ar_test_strdup(const char *s, const char *file, int line);
#define ar_xmalloc(n) _test_malloc((n), __FILE__, __LINE__)
#define ar_xcalloc(n, s) _test_calloc((n), (s), __FILE__, __LINE__)
#define ar_xrealloc(p, n) _test_realloc((p), (n), __FILE__, __LINE__)
#define ar_free(p) _test_free((p), __FILE__, __LINE__)
#define ar_xstrdup(s) ar_test_strdup((s), __FILE__, __LINE__)
#else
/** malloc that aborts with a log line on OOM; never returns NULL. */
void *ar_xmalloc(size_t n);
/** calloc, aborting on OOM. */
void *ar_xcalloc(size_t n, size_t size);
/** realloc, aborting on OOM. */
void *ar_xrealloc(void *p, size_t n);
/** strdup, aborting on OOM; NULL in gives NULL out. */
char *ar_xstrdup(const char *s);
#define ar_free(p) free(p)
#endif

/** Duplicates len bytes and appends a NUL; aborts on OOM. Returned owned, freed with ar_free. */
char *ar_xstrndup(const char *s, size_t len);

#endif
