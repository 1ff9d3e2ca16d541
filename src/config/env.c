/*
 * env.c: value resolution for config scalars. A value is a literal, `os.environ/NAME` (the
 * whole value names a variable) or a string containing `${NAME}` any number of times. It
 * runs on every scalar value before its type is checked, so `port: ${PORT}` works. It only
 * reads the environment (on the thread that loads the config) and never writes it.
 */
#include <stdbool.h>
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
    if (!v)
        ar_config__err(ctx, line, "environment variable %s is not set", tmp);
    return v;
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
