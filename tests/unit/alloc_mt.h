/*
 * alloc_mt.h: a thread-safe front for cmocka's checked allocator, for unit tests whose code
 * allocates on more than one thread. cmocka takes no lock around its lists of blocks, so
 * this file interposes _test_malloc and friends (what ar_xmalloc maps to in test builds)
 * with versions that hold one lock around the real ones, found with dlsym(RTLD_NEXT).
 * Include it once per test program, after <cmocka.h> (tests/unit/server/server_fixture.h
 * does, for the server's tests).
 *
 * One more trap: cmocka 1.1's list of blocks is thread-local. A block allocated on a thread
 * is linked into that thread's list, and freeing it unlinks it from there, so a thread that
 * allocates must still be alive when its blocks are freed (and only the test's own thread
 * is leak-checked). Keep such threads waiting until the test has freed what they made.
 */
#ifndef AR_TESTS_ALLOC_MT_H
#define AR_TESTS_ALLOC_MT_H

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t ar_test_alloc_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static inline void *ar_test_real_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        fprintf(stderr, "cannot find %s in libcmocka\n", name);
        abort();
    }
    return p;
}

void *_test_malloc(const size_t size, const char *file, const int line)
{
    static void *(*real)(const size_t, const char *, const int);
    pthread_mutex_lock(&ar_test_alloc_mu);
    if (!real)
        real = (void *(*)(const size_t, const char *, const int))ar_test_real_sym("_test_malloc");
    void *p = real(size, file, line);
    pthread_mutex_unlock(&ar_test_alloc_mu);
    return p;
}

void *_test_calloc(const size_t n, const size_t size, const char *file, const int line)
{
    static void *(*real)(const size_t, const size_t, const char *, const int);
    pthread_mutex_lock(&ar_test_alloc_mu);
    if (!real)
        real = (void *(*)(const size_t, const size_t, const char *, const int))ar_test_real_sym(
            "_test_calloc");
    void *p = real(n, size, file, line);
    pthread_mutex_unlock(&ar_test_alloc_mu);
    return p;
}

void *_test_realloc(void *ptr, const size_t size, const char *file, const int line)
{
    static void *(*real)(void *, const size_t, const char *, const int);
    pthread_mutex_lock(&ar_test_alloc_mu);
    if (!real)
        real = (void *(*)(void *, const size_t, const char *, const int))ar_test_real_sym(
            "_test_realloc");
    void *p = real(ptr, size, file, line);
    pthread_mutex_unlock(&ar_test_alloc_mu);
    return p;
}

void _test_free(void *const ptr, const char *file, const int line)
{
    static void (*real)(void *const, const char *, const int);
    pthread_mutex_lock(&ar_test_alloc_mu);
    if (!real)
        real = (void (*)(void *const, const char *, const int))ar_test_real_sym("_test_free");
    real(ptr, file, line);
    pthread_mutex_unlock(&ar_test_alloc_mu);
}

#endif
