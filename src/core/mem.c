/*
 * mem.c: aborting allocators. The OOM policy lives here and nowhere else: a process that
 * cannot allocate a few bytes cannot answer anyone, so it says why and stops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"

static void oom(size_t n)
{
    char msg[96];
    int len = snprintf(msg, sizeof(msg), "airouter: out of memory allocating %zu bytes\n", n);
    if (len > 0 && write(2, msg, (size_t)len) < 0)
        abort();
    abort();
}

#ifndef UNIT_TESTING
void *ar_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *ar_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *ar_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *ar_xstrdup(const char *s)
{
    if (!s)
        return NULL;
    return ar_xstrndup(s, strlen(s));
}
#else
char *ar_test_strdup(const char *s, const char *file, int line)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *p = _test_malloc(n + 1, file, line);
    memcpy(p, s, n + 1);
    return p;
}
#endif

char *ar_xstrndup(const char *s, size_t len)
{
    char *p = ar_xmalloc(len + 1);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    (void)oom;
    return p;
}
