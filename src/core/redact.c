/*
 * redact.c: masking secrets (see redact.h). The configured set is published RCU-style: a
 * writer installs a new set with one atomic swap and keeps the old ones until shutdown, so
 * a reader (any worker, the logger) never locks. Key shapes are recognised by prefix and
 * length, the way secret scanners do, so a provider key quoted in an upstream's 401 is
 * masked even when it is not one of ours (a proxy's, say).
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/pool.h"
#include "core/redact.h"

typedef struct secret_set {
    struct secret_set *older; /* kept until shutdown: a reader may still hold it */
    size_t cnt;
    char **val;
    size_t *len;
} secret_set_t;

static _Atomic(secret_set_t *) secrets;

void ar_redact_set_secrets(const char *const *list, size_t cnt)
{
    secret_set_t *s = ar_xcalloc(1, sizeof(*s));
    s->val = ar_xcalloc(cnt ? cnt : 1, sizeof(char *));
    s->len = ar_xcalloc(cnt ? cnt : 1, sizeof(size_t));
    for (size_t i = 0; i < cnt; i++) {
        if (!list[i] || strlen(list[i]) < 6)
            continue;
        s->val[s->cnt] = ar_xstrdup(list[i]);
        s->len[s->cnt] = strlen(list[i]);
        s->cnt++;
    }
    s->older = atomic_load(&secrets);
    while (!atomic_compare_exchange_weak(&secrets, &s->older, s))
        ;
}

void ar_redact_shutdown(void)
{
    secret_set_t *s = atomic_exchange(&secrets, NULL);
    while (s) {
        secret_set_t *older = s->older;
        for (size_t i = 0; i < s->cnt; i++)
            ar_free(s->val[i]);
        ar_free(s->val);
        ar_free(s->len);
        ar_free(s);
        s = older;
    }
}

char *ar_mask_key(ar_span_t key, char *out, size_t outlen)
{
    if (outlen < 16) {
        if (outlen)
            out[0] = '\0';
        return out;
    }
    if (key.len < 12) {
        memcpy(out, "***", 4);
        return out;
    }
    snprintf(out, outlen, "%.6s...%.3s", key.ptr, key.ptr + key.len - 3);
    return out;
}

/* ---- key shapes ---- */

typedef struct shape {
    const char *prefix;
    size_t prefix_len;
    size_t min_body;  /* characters after the prefix for it to count as a key */
    bool dots;        /* '.' belongs to the key (OAuth tokens) */
    bool mask_prefix; /* false: only what follows is the secret ("Bearer ") */
} shape_t;

static const shape_t shapes[] = {
    {"sk-", 3, 16, false, true},     /* OpenAI, Anthropic, DeepSeek, OpenRouter, airouter */
    {"AIza", 4, 30, false, true},    /* Google API keys */
    {"ya29.", 5, 20, true, true},    /* Google OAuth access tokens */
    {"Bearer ", 7, 16, true, false}, /* any token after the auth scheme */
    {"bearer ", 7, 16, true, false},
};

static bool key_char(unsigned char c, bool dots)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || (dots && (c == '.' || c == '~' || c == '+' || c == '/' || c == '='));
}

/* The first bytes of the shapes' prefixes: most bytes of a text are skipped at once. */
static bool shape_start(char c)
{
    return c == 's' || c == 'A' || c == 'y' || c == 'B' || c == 'b';
}

/* The length of the key of shape sh at s[i] (0: none). */
static size_t shape_len(const char *s, size_t len, size_t i, const shape_t *sh)
{
    if (len - i < sh->prefix_len + sh->min_body || memcmp(s + i, sh->prefix, sh->prefix_len) != 0)
        return 0;
    if (i > 0 && key_char((unsigned char)s[i - 1], false))
        return 0; /* inside a word: "risk-assessment-..." is no key */
    size_t n = sh->prefix_len;
    while (i + n < len && key_char((unsigned char)s[i + n], sh->dots))
        n++;
    return n - sh->prefix_len >= sh->min_body ? n : 0;
}

/* Replaces s[at..at+n) by its masked form (never longer). @return the mask's length. */
static size_t mask_at(char *s, size_t *len, size_t at, size_t n)
{
    char masked[32];
    ar_mask_key(ar_span(s + at, n), masked, sizeof(masked));
    size_t mlen = strlen(masked);
    memmove(s + at + mlen, s + at + n, *len - at - n);
    memcpy(s + at, masked, mlen);
    *len -= n - mlen;
    return mlen;
}

static bool mask_configured(char *s, size_t *len)
{
    secret_set_t *set = atomic_load_explicit(&secrets, memory_order_acquire);
    bool hit = false;
    for (size_t k = 0; set && k < set->cnt; k++) {
        size_t from = 0;
        char *p;
        while ((p = memmem(s + from, *len - from, set->val[k], set->len[k]))) {
            from = (size_t)(p - s) + mask_at(s, len, (size_t)(p - s), set->len[k]);
            hit = true;
        }
    }
    return hit;
}

static bool mask_shapes(char *s, size_t *len)
{
    bool hit = false;
    for (size_t i = 0; i < *len; i++) {
        if (!shape_start(s[i]))
            continue;
        for (size_t k = 0; k < AR_ARRAY_CNT(shapes); k++) {
            size_t n = shape_len(s, *len, i, &shapes[k]);
            if (!n)
                continue;
            size_t skip = shapes[k].mask_prefix ? 0 : shapes[k].prefix_len;
            i += skip + mask_at(s, len, i + skip, n - skip) - 1;
            hit = true;
            break;
        }
    }
    return hit;
}

bool ar_redact(char *s, size_t *len)
{
    bool a = mask_configured(s, len);
    bool b = mask_shapes(s, len);
    return a || b;
}

bool ar_redact_needed(ar_span_t s)
{
    secret_set_t *set = atomic_load_explicit(&secrets, memory_order_acquire);
    for (size_t k = 0; set && k < set->cnt; k++) {
        if (ar_span_find(s, ar_span(set->val[k], set->len[k])))
            return true;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (!shape_start(s.ptr[i]))
            continue;
        for (size_t k = 0; k < AR_ARRAY_CNT(shapes); k++) {
            if (shape_len(s.ptr, s.len, i, &shapes[k]))
                return true;
        }
    }
    return false;
}

ar_span_t ar_redact_span(ar_pool_t *pool, ar_span_t s)
{
    if (!s.len || !ar_redact_needed(s))
        return s;
    char *copy = ar_pool_strndup(pool, s.ptr, s.len);
    size_t len = s.len;
    ar_redact(copy, &len);
    copy[len] = '\0';
    return ar_span(copy, len);
}

const char *ar_redact_str(ar_pool_t *pool, const char *s)
{
    return s ? ar_redact_span(pool, ar_span_cstr(s)).ptr : NULL;
}
