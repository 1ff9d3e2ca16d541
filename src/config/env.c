/*
 * env.c: value resolution for config scalars. A value is a literal, `os.environ/NAME` (the
 * whole value names a variable) or a string containing `${NAME}` any number of times. It
 * runs on every scalar value before its type is checked, so `port: ${PORT}` works. It only
 * reads the environment (on the thread that loads the config) and never writes it, and it
 * keeps the values it read out of error messages (they are often secrets).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/buf.h"
#include "core/mem.h"

#define ENV_PREFIX "os.environ/"
#define MAX_VALUE_BYTES (1u << 20)

static bool valid_name(ar_span_t name)
{
    if (name.len == 0)
        return false;
    for (size_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        bool ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* The variable's value, or NULL after reporting why there is none. */
static const char *lookup(ar_config_ctx_t *ctx, const char *path, int line, ar_span_t name)
{
    char show[64];
    char tmp[256];
    if (!valid_name(name) || name.len >= sizeof(tmp)) {
        char *s = ar_xstrndup(name.ptr, name.len);
        ar_config__err(ctx, line, "%s: invalid environment variable name '%s'", path,
                       ar_config__show(s, show, sizeof(show)));
        ar_free(s);
        return NULL;
    }
    memcpy(tmp, name.ptr, name.len);
    tmp[name.len] = '\0';
    const char *v = getenv(tmp);
    if (!v) {
        ar_config__err(ctx, line, "environment variable %s is not set", tmp);
        return NULL;
    }
    for (size_t i = 0; i < ctx->env_cnt; i++) {
        if (strcmp(ctx->env[i].name, tmp) == 0)
            return v;
    }
    ctx->env = ar_xrealloc(ctx->env, (ctx->env_cnt + 1) * sizeof(*ctx->env));
    ctx->env[ctx->env_cnt].name = ar_xstrdup(tmp);
    ctx->env[ctx->env_cnt].value = ar_xstrdup(v);
    ctx->env_cnt++;
    return v;
}

/* Values shorter than this are not secrets (ports, flags) and would match too much. */
#define HIDE_MIN 6
/* ar_config__show keeps this much of a value (SHOW_MAX in config.c) */
#define SHOWN_MAX 48

static char shown(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f ? '?' : c;
}

char *ar_config__hide_env(const ar_config_ctx_t *ctx, char *msg)
{
    for (size_t i = 0; i < ctx->env_cnt; i++) {
        const char *v = ctx->env[i].value;
        size_t vlen = strlen(v);
        if (vlen < HIDE_MIN)
            continue;
        /* the value as messages print it: in full, or its first SHOWN_MAX bytes made
         * printable by ar_config__show */
        char needle[SHOWN_MAX];
        size_t nlen = vlen < SHOWN_MAX ? vlen : SHOWN_MAX;
        for (size_t k = 0; k < nlen; k++)
            needle[k] = shown(v[k]);
        ar_buf_t b;
        ar_buf_init(&b, SIZE_MAX / 2);
        size_t mlen = strlen(msg), from = 0;
        bool hit = false;
        int rc = 0;
        for (;;) {
            const char *m = memmem(msg + from, mlen - from, needle, nlen);
            if (!m)
                break;
            size_t at = (size_t)(m - msg), end = at + nlen;
            while (end < mlen && end - at < vlen && msg[end] == shown(v[end - at]))
                end++;
            rc = rc ? rc : ar_buf_append(&b, msg + from, at - from);
            rc = rc ? rc : ar_buf_appendf(&b, "${%s}", ctx->env[i].name);
            from = end;
            hit = true;
        }
        rc = rc ? rc : ar_buf_append(&b, msg + from, mlen - from);
        if (hit) {
            ar_free(msg);
            msg = rc ? ar_xstrdup("(message withheld: it held an environment value)")
                     : ar_xstrndup(b.ptr, b.len);
        }
        ar_buf_dispose(&b);
    }
    return msg;
}

void ar_config__env_dispose(ar_config_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->env_cnt; i++) {
        ar_free(ctx->env[i].name);
        ar_free(ctx->env[i].value);
    }
    ar_free(ctx->env);
    ctx->env = NULL;
    ctx->env_cnt = 0;
}

int ar_config__resolve(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, char **out)
{
    ar_span_t v = ar_span((const char *)node->data.scalar.value, node->data.scalar.length);
    int line = ar_config__line(node);
    ar_buf_t b;
    bool failed = false;

    ar_buf_init(&b, MAX_VALUE_BYTES);
    if (memchr(v.ptr, '\0', v.len)) {
        ar_config__err(ctx, line, "%s: value contains a NUL byte", path);
        goto fail;
    }
    if (ar_span_starts(v, AR_LIT(ENV_PREFIX))) {
        const char *val = lookup(ctx, path, line, ar_span_skip(v, strlen(ENV_PREFIX)));
        if (!val)
            goto fail;
        *out = ar_xstrdup(val);
        return 0;
    }
    size_t i = 0;
    while (i < v.len) {
        const char *ref = ar_span_find(ar_span_skip(v, i), AR_LIT("${"));
        if (!ref) {
            if (ar_buf_append(&b, v.ptr + i, v.len - i))
                goto too_big;
            break;
        }
        size_t at = (size_t)(ref - v.ptr);
        if (ar_buf_append(&b, v.ptr + i, at - i))
            goto too_big;
        const char *end = memchr(ref + 2, '}', v.len - at - 2);
        if (!end) {
            ar_config__err(ctx, line, "%s: unterminated '${' in value", path);
            goto fail;
        }
        ar_span_t name = ar_span(ref + 2, (size_t)(end - ref - 2));
        const char *val = lookup(ctx, path, line, name);
        if (!val)
            failed = true; /* keep going: report every missing variable of this value */
        else if (ar_buf_append_str(&b, val))
            goto too_big;
        i = (size_t)(end - v.ptr) + 1;
    }
    if (failed)
        goto fail;
    *out = ar_xstrndup(b.ptr ? b.ptr : "", b.len);
    ar_buf_dispose(&b);
    return 0;

too_big:
    ar_config__err(ctx, line, "%s: value longer than %u bytes", path, MAX_VALUE_BYTES);
fail:
    ar_buf_dispose(&b);
    return -1;
}
