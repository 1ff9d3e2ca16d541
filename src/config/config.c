/*
 * config.c: loads YAML into the configuration tree of core/conf.h. libyaml builds a node
 * tree (so every value keeps its line), then one generic walker reads it through the key
 * tables of schema.c: defaults, types, bounds, unknown keys, required keys, and the free
 * at the end all come from the same rows. Problems are collected, never fatal one by one,
 * and returned sorted by line; a config with problems is freed, never returned.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_int.h"
#include "core/buf.h"
#include "core/mem.h"
#include "core/str.h"

#define MAX_FILE_BYTES (16u << 20)
#define PATH_MAX_LEN 192
#define SHOW_MAX 48

/* ---- errors and warnings ---- */

static void msgs_add(ar_config_ctx_t *ctx, ar_config_msgs_t *m, int line, const char *fmt,
                     va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0)
        n = 0;
    char *msg = ar_xmalloc((size_t)n + 1);
    vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    msg = ar_config__hide_env(ctx, msg);
    if (m->cnt == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->items = ar_xrealloc(m->items, m->cap * sizeof(*m->items));
    }
    m->items[m->cnt].line = line > 0 ? line : 1;
    m->items[m->cnt].seq = m->cnt;
    m->items[m->cnt].msg = msg;
    m->cnt++;
}

void ar_config__err(ar_config_ctx_t *ctx, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msgs_add(ctx, &ctx->errs, line, fmt, ap);
    va_end(ap);
}

void ar_config__warn(ar_config_ctx_t *ctx, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msgs_add(ctx, &ctx->warns, line, fmt, ap);
    va_end(ap);
}

static int err_cmp(const void *a, const void *b)
{
    const ar_config_err_t *x = a;
    const ar_config_err_t *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static void strlist_push(ar_strlist_t *list, char *s)
{
    list->items = ar_xrealloc(list->items, (list->cnt + 1) * sizeof(*list->items));
    list->items[list->cnt++] = s;
}

/* Moves the collected messages, in file order, into out as "FILE:LINE: msg" (NULL: drops
 * them). */
void ar_config__flush(const char *name, ar_config_msgs_t *m, ar_strlist_t *out)
{
    if (m->cnt > 1)
        qsort(m->items, m->cnt, sizeof(*m->items), err_cmp);
    for (size_t i = 0; i < m->cnt; i++) {
        if (out) {
            int n = snprintf(NULL, 0, "%s:%d: %s", name, m->items[i].line, m->items[i].msg);
            char *s = ar_xmalloc((size_t)(n > 0 ? n : 0) + 1);
            snprintf(s, (size_t)(n > 0 ? n : 0) + 1, "%s:%d: %s", name, m->items[i].line,
                     m->items[i].msg);
            strlist_push(out, s);
        }
        ar_free(m->items[i].msg);
    }
    if (m->items)
        ar_free(m->items);
    m->items = NULL;
    m->cnt = 0;
    m->cap = 0;
}

const char *ar_config__show(const char *value, char *out, size_t outlen)
{
    size_t n = strlen(value);
    size_t keep = n;
    bool cut = false;
    if (outlen < 8) {
        out[0] = '\0';
        return out;
    }
    if (keep > SHOW_MAX || keep > outlen - 4) {
        keep = SHOW_MAX < outlen - 4 ? SHOW_MAX : outlen - 4;
        cut = true;
    }
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)value[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cut) {
        memcpy(out + keep, "...", 4);
    } else {
        out[keep] = '\0';
    }
    return out;
}

/* ---- node helpers ---- */

int ar_config__line(const yaml_node_t *node)
{
    return node ? (int)node->start_mark.line + 1 : 1;
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
    size_t len = strlen(s);
    return n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
           memcmp(n->data.scalar.value, s, len) == 0;
}

/* `key:`, `key: ~` and `key: null` mean the same as leaving the key out. */
static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return n->data.scalar.length == 0 || scalar_is(n, "~") || scalar_is(n, "null") ||
           scalar_is(n, "Null") || scalar_is(n, "NULL");
}

static const char *kind_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a scalar";
    }
}

yaml_node_t *ar_config__child_key(ar_config_ctx_t *ctx, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&ctx->doc, p->key);
        if (k && scalar_is(k, key))
            return k;
    }
    return NULL;
}

yaml_node_t *ar_config__child(ar_config_ctx_t *ctx, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&ctx->doc, p->key);
        if (k && scalar_is(k, key))
            return yaml_document_get_node(&ctx->doc, p->value);
    }
    return NULL;
}

yaml_node_t *ar_config__item(ar_config_ctx_t *ctx, yaml_node_t *seq, size_t i)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    size_t cnt = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (i >= cnt)
        return NULL;
    return yaml_document_get_node(&ctx->doc, seq->data.sequence.items.start[i]);
}

static void join_path(char *out, size_t outlen, const char *path, const char *key)
{
    if (path[0])
        snprintf(out, outlen, "%s.%s", path, key);
    else
        snprintf(out, outlen, "%s", key);
}

/* ---- defaults and dispose ---- */

void ar_config__defaults(const ar_config_section_t *sec, void *base)
{
    for (size_t i = 0; i < sec->cmds_cnt; i++) {
        const ar_config_cmd_t *c = &sec->cmds[i];
        char *f = (char *)base + c->off;
        switch (c->type) {
        case AR_CONFIG_STR: *(char **)f = c->def.s ? ar_xstrdup(c->def.s) : NULL; break;
        case AR_CONFIG_INT:
        case AR_CONFIG_ENUM: *(int *)f = (int)c->def.i; break;
        case AR_CONFIG_I64:
        case AR_CONFIG_DURATION: *(int64_t *)f = c->def.i; break;
        case AR_CONFIG_BOOL: *(bool *)f = c->def.i != 0; break;
        case AR_CONFIG_DOUBLE: *(double *)f = c->def.d; break;
        case AR_CONFIG_INT_LIST: {
            int *arr = NULL;
            if (c->def.ints_cnt) {
                arr = ar_xmalloc(c->def.ints_cnt * sizeof(int));
                memcpy(arr, c->def.ints, c->def.ints_cnt * sizeof(int));
            }
            *(int **)f = arr;
            *(size_t *)((char *)base + c->off2) = c->def.ints_cnt;
            break;
        }
        case AR_CONFIG_STR_LIST:
            ((ar_strlist_t *)f)->items = NULL;
            ((ar_strlist_t *)f)->cnt = 0;
            break;
        case AR_CONFIG_MAP:
        case AR_CONFIG_ITEMS:
            *(void **)f = NULL;
            *(size_t *)((char *)base + c->off2) = 0;
            break;
        case AR_CONFIG_SECTION: ar_config__defaults(c->sub, f); break;
        case AR_CONFIG_REFUSED:
        case AR_CONFIG_IGNORED: break; /* no storage */
        }
    }
    if (sec->mark_present)
        *(bool *)((char *)base + sec->present_off) = false;
}

static void dispose_map(ar_kv_t *kv, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        ar_free(kv[i].key);
        ar_free(kv[i].value);
    }
    if (kv)
        ar_free(kv);
}

void ar_config__dispose(const ar_config_section_t *sec, void *base)
{
    for (size_t i = 0; i < sec->cmds_cnt; i++) {
        const ar_config_cmd_t *c = &sec->cmds[i];
        char *f = (char *)base + c->off;
        size_t *cnt = (size_t *)((char *)base + c->off2);
        switch (c->type) {
        case AR_CONFIG_STR:
            if (*(char **)f)
                ar_free(*(char **)f);
            *(char **)f = NULL;
            break;
        case AR_CONFIG_INT_LIST:
            if (*(int **)f)
                ar_free(*(int **)f);
            *(int **)f = NULL;
            *cnt = 0;
            break;
        case AR_CONFIG_STR_LIST: ar_strlist_dispose((ar_strlist_t *)f); break;
        case AR_CONFIG_MAP:
            dispose_map(*(ar_kv_t **)f, *cnt);
            *(ar_kv_t **)f = NULL;
            *cnt = 0;
            break;
        case AR_CONFIG_SECTION: ar_config__dispose(c->sub, f); break;
        case AR_CONFIG_ITEMS: {
            char *items = *(char **)f;
            for (size_t j = 0; j < *cnt; j++)
                ar_config__dispose(c->sub, items + j * c->sub->size);
            if (items)
                ar_free(items);
            *(char **)f = NULL;
            *cnt = 0;
            break;
        }
        default: break;
        }
    }
    if (sec->dispose)
        sec->dispose(base);
}

static ar_kv_t *copy_map(const ar_kv_t *kv, size_t cnt)
{
    if (!kv)
        return NULL;
    ar_kv_t *n = ar_xcalloc(cnt ? cnt : 1, sizeof(*n));
    for (size_t i = 0; i < cnt; i++) {
        n[i].key = kv[i].key ? ar_xstrdup(kv[i].key) : NULL;
        n[i].value = kv[i].value ? ar_xstrdup(kv[i].value) : NULL;
    }
    return n;
}

void ar_config__unshare(const ar_config_section_t *sec, void *base)
{
    for (size_t i = 0; i < sec->cmds_cnt; i++) {
        const ar_config_cmd_t *c = &sec->cmds[i];
        char *f = (char *)base + c->off;
        size_t cnt = *(size_t *)((char *)base + c->off2);
        switch (c->type) {
        case AR_CONFIG_STR:
            if (*(char **)f)
                *(char **)f = ar_xstrdup(*(char **)f);
            break;
        case AR_CONFIG_INT_LIST:
            if (*(int **)f) {
                int *arr = ar_xmalloc((cnt ? cnt : 1) * sizeof(int));
                memcpy(arr, *(int **)f, cnt * sizeof(int));
                *(int **)f = arr;
            }
            break;
        case AR_CONFIG_STR_LIST: {
            ar_strlist_t *l = (ar_strlist_t *)f;
            if (l->items) {
                char **items = ar_xcalloc(l->cnt ? l->cnt : 1, sizeof(*items));
                for (size_t j = 0; j < l->cnt; j++)
                    items[j] = l->items[j] ? ar_xstrdup(l->items[j]) : NULL;
                l->items = items;
            }
            break;
        }
        case AR_CONFIG_MAP: *(ar_kv_t **)f = copy_map(*(ar_kv_t **)f, cnt); break;
        case AR_CONFIG_SECTION: ar_config__unshare(c->sub, f); break;
        case AR_CONFIG_ITEMS: {
            const char *items = *(char **)f;
            if (!items)
                break;
            char *n = ar_xmalloc((cnt ? cnt : 1) * c->sub->size);
            memcpy(n, items, cnt * c->sub->size);
            for (size_t j = 0; j < cnt; j++)
                ar_config__unshare(c->sub, n + j * c->sub->size);
            *(char **)f = n;
            break;
        }
        default: break;
        }
    }
    if (sec->unshare)
        sec->unshare(base);
}

/* ---- value setters ---- */

/* The resolved text of a scalar node, or -1 after reporting. */
static int scalar_value(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, const char *what,
                        char **out)
{
    if (node->type != YAML_SCALAR_NODE) {
        ar_config__err(ctx, ar_config__line(node), "%s: expected %s, got %s", path, what,
                       kind_name(node));
        return -1;
    }
    return ar_config__resolve(ctx, path, node, out);
}

static void type_error(ar_config_ctx_t *ctx, const char *path, yaml_node_t *node, const char *what,
                       const char *value)
{
    char show[SHOW_MAX + 8];
    ar_config__err(ctx, ar_config__line(node), "%s: expected %s, got '%s'", path, what,
                   ar_config__show(value, show, sizeof(show)));
}

/* Bounds of a number already parsed; raw is the text for the message. */
static int check_range(ar_config_ctx_t *ctx, const ar_config_cmd_t *c, const char *path,
                       yaml_node_t *node, int64_t *v, const char *raw)
{
    char show[SHOW_MAX + 8];
    int line = ar_config__line(node);
    if (*v == -1 && (c->flags & AR_CONFIG_F_PERMANENT)) {
        *v = AR_PERMANENT;
        return 0;
    }
    if (*v == -1 && (c->flags & AR_CONFIG_F_UNLIMITED)) {
        *v = AR_UNLIMITED;
        return 0;
    }
    int64_t max = c->max;
    if (c->type == AR_CONFIG_INT && (max == 0 || max > INT_MAX))
        max = INT_MAX;
    if (*v >= c->min && (max == 0 || *v <= max))
        return 0;
    const char *unl = (c->flags & AR_CONFIG_F_UNLIMITED) ? " (or -1 for no limit)" : "";
    ar_config__show(raw, show, sizeof(show));
    if (c->type == AR_CONFIG_DURATION && *v == -1)
        ar_config__err(ctx, line, "%s: -1 (no limit) is not allowed here", path);
    else if (c->type == AR_CONFIG_DURATION)
        ar_config__err(ctx, line, "%s: must be greater than 0, got '%s'", path, show);
    else if (max)
        ar_config__err(ctx, line, "%s: must be between %" PRId64 " and %" PRId64 "%s, got %s", path,
                       c->min, max, unl, show);
    else
        ar_config__err(ctx, line, "%s: must be >= %" PRId64 "%s, got %s", path, c->min, unl, show);
    return -1;
}

static int parse_int(ar_config_ctx_t *ctx, const ar_config_cmd_t *c, const char *path,
                     yaml_node_t *node, int64_t *out)
{
    char *s = NULL;
    int rc = -1;
    if (scalar_value(ctx, path, node, "an integer", &s))
        return -1;
    if (ar_parse_int64(ar_span_cstr(s), out)) {
        type_error(ctx, path, node, "an integer", s);
        goto done;
    }
    rc = check_range(ctx, c, path, node, out, s);
done:
    ar_free(s);
    return rc;
}

static int parse_duration(ar_config_ctx_t *ctx, const ar_config_cmd_t *c, const char *path,
                          yaml_node_t *node, int64_t *out)
{
    static const char what[] = "a duration (e.g. 500ms, 30s, 5m, 1h)";
    static const char what_perm[] = "a duration (e.g. 500ms, 30s, 5m, 1h) or 'permanent'";
    const char *w = (c->flags & AR_CONFIG_F_PERMANENT) ? what_perm : what;
    char *s = NULL;
    int rc = -1;
    if (scalar_value(ctx, path, node, w, &s))
        return -1;
    if ((c->flags & AR_CONFIG_F_PERMANENT) && strcmp(s, "permanent") == 0) {
        *out = AR_PERMANENT;
        rc = 0;
        goto done;
    }
    if (ar_parse_duration_ms(ar_span_cstr(s), out)) {
        type_error(ctx, path, node, w, s);
        goto done;
    }
    rc = check_range(ctx, c, path, node, out, s);
done:
    ar_free(s);
    return rc;
}

static int parse_enum(ar_config_ctx_t *ctx, const ar_config_cmd_t *c, const char *path,
                      yaml_node_t *node, int *out)
{
    char what[256] = "one of ";
    size_t wl = strlen(what);
    for (const ar_config_enum_t *e = c->enums; e->name && wl < sizeof(what); e++)
        wl += (size_t)snprintf(what + wl, sizeof(what) - wl, "%s%s", e == c->enums ? "" : ", ",
                               e->name);
    char *s = NULL;
    if (scalar_value(ctx, path, node, what, &s))
        return -1;
    for (const ar_config_enum_t *e = c->enums; e->name; e++) {
        if (strcasecmp(s, e->name) == 0) {
            *out = e->value;
            ar_free(s);
            return 0;
        }
    }
    type_error(ctx, path, node, what, s);
    ar_free(s);
    return -1;
}

static int set_int_list(ar_config_ctx_t *ctx, const ar_config_cmd_t *c, const char *path,
                        yaml_node_t *node, void *base)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        ar_config__err(ctx, ar_config__line(node), "%s: expected a list of integers, got %s", path,
                       kind_name(node));
        return -1;
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    int *arr = n ? ar_xcalloc(n, sizeof(int)) : NULL;
    size_t cnt = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char ipath[PATH_MAX_LEN];
        int64_t v;
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        if (parse_int(ctx, c, ipath, ar_config__item(ctx, node, i), &v)) {
            rc = -1;
            continue;
        }
        arr[cnt++] = (int)v;
    }
    int **field = (int **)((char *)base + c->off);
    if (*field)
        ar_free(*field);
    *field = arr;
    *(size_t *)((char *)base + c->off2) = cnt;
    return rc;
}

static int set_str_list(ar_config_ctx_t *ctx, const ar_config_cmd_t *c, const char *path,
                        yaml_node_t *node, void *base)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        ar_config__err(ctx, ar_config__line(node), "%s: expected a list of strings, got %s", path,
                       kind_name(node));
        return -1;
    }
    ar_strlist_t *list = (ar_strlist_t *)((char *)base + c->off);
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    int rc = 0;
    ar_strlist_dispose(list);
    if (n)
        list->items = ar_xcalloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        char ipath[PATH_MAX_LEN];
        char *s = NULL;
        yaml_node_t *item = ar_config__item(ctx, node, i);
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        if (item->type == YAML_SCALAR_NODE && is_null(item)) {
            ar_config__err(ctx, ar_config__line(item), "%s: expected a string, got null", ipath);
            rc = -1;
            continue;
        }
        if (scalar_value(ctx, ipath, item, "a string", &s)) {
            rc = -1;
            continue;
        }
        list->items[list->cnt++] = s;
    }
    return rc;
}

static int set_map(ar_config_ctx_t *ctx, const ar_config_cmd_t *c, const char *path,
                   yaml_node_t *node, void *base)
{
    if (node->type != YAML_MAPPING_NODE) {
        ar_config__err(ctx, ar_config__line(node), "%s: expected a mapping, got %s", path,
                       kind_name(node));
        return -1;
    }
    ar_kv_t **field = (ar_kv_t **)((char *)base + c->off);
    size_t *cnt = (size_t *)((char *)base + c->off2);
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    int rc = 0;
    dispose_map(*field, *cnt);
    *field = n ? ar_xcalloc(n, sizeof(ar_kv_t)) : NULL;
    *cnt = 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &node->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&ctx->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&ctx->doc, p->value);
        char kpath[PATH_MAX_LEN];
        char *value = NULL;
        if (k->type != YAML_SCALAR_NODE) {
            ar_config__err(ctx, ar_config__line(k), "%s: keys must be strings, got %s", path,
                           kind_name(k));
            rc = -1;
            continue;
        }
        snprintf(kpath, sizeof(kpath), "%s.%s", path, (const char *)k->data.scalar.value);
        if (is_null(v)) {
            ar_config__err(ctx, ar_config__line(v), "%s: expected a string, got null", kpath);
            rc = -1;
            continue;
        }
        if (scalar_value(ctx, kpath, v, "a string", &value)) {
            rc = -1;
            continue;
        }
        (*field)[*cnt].key = ar_xstrndup((const char *)k->data.scalar.value, k->data.scalar.length);
        (*field)[*cnt].value = value;
        (*cnt)++;
    }
    return rc;
}

static int set_items(ar_config_ctx_t *ctx, const ar_config_cmd_t *c, const char *path,
                     yaml_node_t *node, void *base)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        ar_config__err(ctx, ar_config__line(node), "%s: expected a list, got %s", path,
                       kind_name(node));
        return -1;
    }
    const ar_config_section_t *sub = c->sub;
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    char *items = n ? ar_xcalloc(n, sub->size) : NULL;
    /* Store the array first so that everything in it is freed whatever happens next. */
    *(char **)((char *)base + c->off) = items;
    *(size_t *)((char *)base + c->off2) = n;
    for (size_t i = 0; i < n; i++) {
        char ipath[PATH_MAX_LEN];
        yaml_node_t *item = ar_config__item(ctx, node, i);
        void *ib = items + i * sub->size;
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        ar_config__defaults(sub, ib);
        if (item->type != YAML_MAPPING_NODE) {
            ar_config__err(ctx, ar_config__line(item), "%s: expected a mapping, got %s", ipath,
                           is_null(item) ? "null" : kind_name(item));
            continue;
        }
        ar_config__parse_section(ctx, sub, ipath, ar_config__line(item), item, ib);
    }
    return 0;
}

/*
 * Stores the value of one key. @return 0 when set, -1 after reporting a problem.
 * Null values never reach here (they count as absent).
 */
static int set_value(ar_config_ctx_t *ctx, const ar_config_cmd_t *c, const char *path,
                     yaml_node_t *key, yaml_node_t *node, void *base)
{
    char *f = (char *)base + c->off;
    char *s = NULL;
    int64_t v;
    switch (c->type) {
    case AR_CONFIG_STR:
        if (scalar_value(ctx, path, node, "a string", &s))
            return -1;
        if (s[0] == '\0' && (c->flags & AR_CONFIG_F_NONEMPTY)) {
            ar_config__err(ctx, ar_config__line(node), "%s: must not be empty", path);
            ar_free(s);
            return -1;
        }
        if (s[0] == '\0' && (c->flags & AR_CONFIG_F_EMPTY_NULL)) {
            ar_free(s);
            s = NULL;
        }
        if (*(char **)f)
            ar_free(*(char **)f);
        *(char **)f = s;
        return 0;
    case AR_CONFIG_INT:
        if (parse_int(ctx, c, path, node, &v))
            return -1;
        *(int *)f = (int)v;
        return 0;
    case AR_CONFIG_I64:
        if (parse_int(ctx, c, path, node, &v))
            return -1;
        *(int64_t *)f = v;
        return 0;
    case AR_CONFIG_DURATION:
        if (parse_duration(ctx, c, path, node, &v))
            return -1;
        *(int64_t *)f = v;
        return 0;
    case AR_CONFIG_BOOL: {
        bool b;
        if (scalar_value(ctx, path, node, "a boolean (true or false)", &s))
            return -1;
        if (ar_parse_bool(ar_span_cstr(s), &b)) {
            type_error(ctx, path, node, "a boolean (true or false)", s);
            ar_free(s);
            return -1;
        }
        ar_free(s);
        *(bool *)f = b;
        return 0;
    }
    case AR_CONFIG_DOUBLE: {
        double d;
        char show[SHOW_MAX + 8];
        if (scalar_value(ctx, path, node, "a number", &s))
            return -1;
        if (ar_parse_double(ar_span_cstr(s), &d) || !isfinite(d)) {
            type_error(ctx, path, node, "a number", s);
            ar_free(s);
            return -1;
        }
        if (d < (double)c->min || (c->max && d > (double)c->max)) {
            ar_config__err(ctx, ar_config__line(node), "%s: must be >= %" PRId64 ", got %s", path,
                           c->min, ar_config__show(s, show, sizeof(show)));
            ar_free(s);
            return -1;
        }
        ar_free(s);
        *(double *)f = d;
        return 0;
    }
    case AR_CONFIG_ENUM: return parse_enum(ctx, c, path, node, (int *)f);
    case AR_CONFIG_INT_LIST: return set_int_list(ctx, c, path, node, base);
    case AR_CONFIG_STR_LIST: return set_str_list(ctx, c, path, node, base);
    case AR_CONFIG_MAP: return set_map(ctx, c, path, node, base);
    case AR_CONFIG_SECTION:
        if (node->type != YAML_MAPPING_NODE) {
            ar_config__err(ctx, ar_config__line(node), "%s: expected a mapping, got %s", path,
                           kind_name(node));
            return -1;
        }
        ar_config__parse_section(ctx, c->sub, path, ar_config__line(key), node, f);
        return 0;
    case AR_CONFIG_ITEMS: return set_items(ctx, c, path, node, base);
    case AR_CONFIG_REFUSED:
    case AR_CONFIG_IGNORED: break; /* reported by the walker; never stored */
    }
    return -1;
}

/* ---- sections ---- */

/* Optimal string alignment distance (Levenshtein plus transpositions), capped inputs. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t d[33][33];
    if (la > 32 || lb > 32)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

static const ar_config_cmd_t *find_cmd(const ar_config_section_t *sec, const char *name)
{
    for (size_t i = 0; i < sec->cmds_cnt; i++) {
        if (strcmp(sec->cmds[i].name, name) == 0)
            return &sec->cmds[i];
    }
    return NULL;
}

static void unknown_key(ar_config_ctx_t *ctx, const ar_config_section_t *sec, const char *path,
                        yaml_node_t *key)
{
    char show[SHOW_MAX + 8];
    const char *name = (const char *)key->data.scalar.value;
    const char *best = NULL;
    size_t best_d = 3;
    size_t len = strlen(name);
    for (size_t i = 0; i < sec->cmds_cnt; i++) {
        size_t d = edit_distance(name, sec->cmds[i].name);
        if (d < best_d && d < len && d < strlen(sec->cmds[i].name)) {
            best_d = d;
            best = sec->cmds[i].name;
        }
    }
    ar_config__show(name, show, sizeof(show));
    char where[PATH_MAX_LEN + 8];
    if (path[0])
        snprintf(where, sizeof(where), "in %s", path);
    else
        snprintf(where, sizeof(where), "at top level");
    if (best)
        ar_config__err(ctx, ar_config__line(key), "unknown key '%s' %s; did you mean '%s'?", show,
                       where, best);
    else
        ar_config__err(ctx, ar_config__line(key), "unknown key '%s' %s", show, where);
}

static const char *enum_name(const ar_config_enum_t *e, int value)
{
    for (; e && e->name; e++) {
        if (e->value == value)
            return e->name;
    }
    return "?";
}

static void wrong_variant(ar_config_ctx_t *ctx, const ar_config_section_t *sec,
                          const ar_config_cmd_t *c, const char *path, yaml_node_t *key, int variant)
{
    const ar_config_cmd_t *vc = find_cmd(sec, sec->variant_key);
    char only[128] = "";
    size_t ol = 0;
    for (int v = 0; v < 32 && ol < sizeof(only); v++) {
        if (!(c->variants & (1u << v)))
            continue;
        ol += (size_t)snprintf(only + ol, sizeof(only) - ol, "%s%s", ol ? ", " : "",
                               enum_name(vc->enums, v));
    }
    ar_config__err(ctx, ar_config__line(key), "%s: not valid for %s %s (only for %s)", path,
                   sec->variant_key, enum_name(vc->enums, variant), only);
}

static bool key_seen_before(ar_config_ctx_t *ctx, yaml_node_t *map, size_t idx, yaml_node_t *key,
                            int *first_line)
{
    for (size_t j = 0; j < idx; j++) {
        yaml_node_t *k = yaml_document_get_node(&ctx->doc, map->data.mapping.pairs.start[j].key);
        if (k->type == YAML_SCALAR_NODE && k->data.scalar.length == key->data.scalar.length &&
            memcmp(k->data.scalar.value, key->data.scalar.value, k->data.scalar.length) == 0) {
            *first_line = ar_config__line(k);
            return true;
        }
    }
    return false;
}

/*
 * A key that was set but that nothing reads (yet, or for this credential type) must not
 * pass silently: the operator gets one warning per such key. A string set to "" counts as
 * not set (it is stored as NULL), like an absent key.
 */
static void warn_if_unused(ar_config_ctx_t *ctx, const ar_config_section_t *sec,
                           const ar_config_cmd_t *c, const char *kpath, yaml_node_t *key,
                           const void *base, int variant)
{
    if (c->type == AR_CONFIG_STR && *(char *const *)((const char *)base + c->off) == NULL)
        return;
    const char *why = (c->flags & AR_CONFIG_F_NOT_USED) ? c->note : sec->not_used;
    if (why && c->type != AR_CONFIG_SECTION && c->type != AR_CONFIG_ITEMS) {
        ar_config__warn(ctx, ar_config__line(key), "%s: not used yet (%s)", kpath, why);
        return;
    }
    if (variant >= 0 && (c->inert & (1u << variant))) {
        const ar_config_cmd_t *vc = find_cmd(sec, sec->variant_key);
        ar_config__warn(ctx, ar_config__line(key), "%s: not used by %s %s", kpath, sec->variant_key,
                        enum_name(vc->enums, variant));
    }
}

void ar_config__parse_section(ar_config_ctx_t *ctx, const ar_config_section_t *sec,
                              const char *path, int line, yaml_node_t *node, void *base)
{
    uint64_t present = 0;
    int variant = -1;
    char kpath[PATH_MAX_LEN];

    assert(sec->cmds_cnt <= 64);
    if (node && sec->mark_present)
        *(bool *)((char *)base + sec->present_off) = true;

    /* The variant key first: it decides which other keys are allowed. */
    if (node && sec->variant_key) {
        const ar_config_cmd_t *vc = find_cmd(sec, sec->variant_key);
        yaml_node_t *k = ar_config__child_key(ctx, node, sec->variant_key);
        yaml_node_t *v = ar_config__child(ctx, node, sec->variant_key);
        if (k && !is_null(v)) {
            present |= 1ull << (vc - sec->cmds);
            join_path(kpath, sizeof(kpath), path, vc->name);
            if (set_value(ctx, vc, kpath, k, v, base) == 0) {
                variant = *(int *)((char *)base + vc->off);
                if (vc->check && vc->check(ctx, kpath, v, base, (char *)base + vc->off))
                    variant = -1;
            }
        } else if (!(vc->flags & AR_CONFIG_F_REQUIRED)) {
            /* Left out: the default (credentials of auto_ai_router's early config.yaml have
             * no type; they are all OpenAI-compatible). Its check runs as if it were set. */
            variant = *(int *)((char *)base + vc->off);
            join_path(kpath, sizeof(kpath), path, vc->name);
            if (vc->check && vc->check(ctx, kpath, node, base, (char *)base + vc->off))
                variant = -1;
        }
    }

    size_t n = node ? (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start) : 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &node->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&ctx->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&ctx->doc, p->value);
        int first_line;
        if (k->type != YAML_SCALAR_NODE) {
            ar_config__err(ctx, ar_config__line(k), "%s%skeys must be strings, got %s", path,
                           path[0] ? ": " : "", kind_name(k));
            continue;
        }
        const char *name = (const char *)k->data.scalar.value;
        join_path(kpath, sizeof(kpath), path, name);
        if (key_seen_before(ctx, node, i, k, &first_line)) {
            ar_config__err(ctx, ar_config__line(k), "%s: duplicate key (first at line %d)", kpath,
                           first_line);
            continue;
        }
        const ar_config_cmd_t *c = find_cmd(sec, name);
        if (!c) {
            unknown_key(ctx, sec, path, k);
            continue;
        }
        if (sec->variant_key && strcmp(name, sec->variant_key) == 0)
            continue; /* read above */
        if (c->variants && variant >= 0 && !(c->variants & (1u << variant))) {
            wrong_variant(ctx, sec, c, kpath, k, variant);
            continue;
        }
        if (is_null(v))
            continue;
        if (c->type == AR_CONFIG_REFUSED) {
            ar_config__err(ctx, ar_config__line(k), "%s: %s", kpath, c->note);
            continue;
        }
        if (c->type == AR_CONFIG_IGNORED) {
            ar_config__warn(ctx, ar_config__line(k), "%s: ignored (%s)", kpath, c->note);
            continue;
        }
        present |= 1ull << (c - sec->cmds);
        if (set_value(ctx, c, kpath, k, v, base) != 0)
            continue;
        if (c->check && c->check(ctx, kpath, v, base, (char *)base + c->off) != 0)
            continue;
        warn_if_unused(ctx, sec, c, kpath, k, base, variant);
    }

    for (size_t i = 0; i < sec->cmds_cnt; i++) {
        const ar_config_cmd_t *c = &sec->cmds[i];
        if (present & (1ull << i))
            continue;
        join_path(kpath, sizeof(kpath), path, c->name);
        if (c->flags & AR_CONFIG_F_REQUIRED)
            ar_config__err(ctx, line, "%s is required", kpath);
        if (c->type == AR_CONFIG_SECTION)
            ar_config__parse_section(ctx, c->sub, kpath, line, NULL, (char *)base + c->off);
    }
    if (sec->finish)
        sec->finish(ctx, path, line, node, base);
}

/* ---- loading ---- */

void ar_config__free(ar_config_t *cfg)
{
    ar_config__dispose(&ar_config__root, cfg);
    ar_strlist_dispose(&cfg->warnings);
    if (cfg->path)
        ar_free(cfg->path);
    ar_free(cfg);
}

int ar_config_load_string(const char *name, const char *yaml, size_t len, ar_config_t **out,
                          ar_strlist_t *errors)
{
    ar_config_ctx_t ctx;
    yaml_parser_t parser;
    bool have_doc = false;
    ar_config_t *cfg = NULL;
    int rc = AR_EINVAL;

    memset(&ctx, 0, sizeof(ctx));
    ctx.name = name ? name : "<config>";
    if (!yaml_parser_initialize(&parser)) {
        ar_config__err(&ctx, 1, "cannot initialise the YAML parser");
        goto done_errors;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(yaml ? yaml : ""),
                                 yaml ? len : 0);
    if (!yaml_parser_load(&parser, &ctx.doc)) {
        ar_config__err(&ctx, (int)parser.problem_mark.line + 1, "YAML syntax error: %s",
                       parser.problem ? parser.problem : "unknown problem");
        goto done;
    }
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&ctx.doc);
    if (!root || is_null(root)) {
        ar_config__err(&ctx, 1, "the configuration is empty");
        goto done;
    }
    if (root->type != YAML_MAPPING_NODE) {
        ar_config__err(&ctx, 1, "the top level must be a mapping, got %s", kind_name(root));
        goto done;
    }

    /* Only one document: a second one would be silently ignored otherwise. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        ar_config__err(&ctx, (int)parser.problem_mark.line + 1, "YAML syntax error: %s",
                       parser.problem ? parser.problem : "unknown problem");
    } else {
        yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
        if (extra_root)
            ar_config__err(&ctx, (int)extra.start_mark.line + 1,
                           "only one YAML document is allowed");
        yaml_document_delete(&extra);
    }

    cfg = ar_xcalloc(1, sizeof(*cfg));
    atomic_init(&cfg->refcnt, 1);
    cfg->path = ar_xstrdup(ctx.name);
    ar_config__defaults(&ar_config__root, cfg);
    ar_config__parse_section(&ctx, &ar_config__root, "", 1, root, cfg);
    if (ctx.errs.cnt == 0) {
        ar_config__flush(ctx.name, &ctx.warns, &cfg->warnings);
        *out = cfg;
        cfg = NULL;
        rc = 0;
    }

done:
    if (cfg)
        ar_config__free(cfg);
    if (have_doc)
        yaml_document_delete(&ctx.doc);
    yaml_parser_delete(&parser);
done_errors:
    ar_config__flush(ctx.name, &ctx.errs, errors);
    ar_config__flush(ctx.name, &ctx.warns, NULL); /* a config with errors has no warnings to show */
    ar_config__env_dispose(&ctx);
    return rc;
}

int ar_config__read_file(const char *path, ar_buf_t *b, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = errno;
        return -1;
    }
    char chunk[16384];
    int rc = 0;
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        if (n && ar_buf_append(b, chunk, n)) {
            *err = EFBIG;
            rc = -1;
            break;
        }
        if (n < sizeof(chunk)) {
            if (ferror(f)) {
                *err = errno ? errno : EIO;
                rc = -1;
            }
            break;
        }
    }
    fclose(f);
    return rc;
}

int ar_config_load(const char *path, ar_config_t **out, ar_strlist_t *errors)
{
    ar_buf_t b;
    int err = 0;
    int rc;

    if (!path) {
        if (errors)
            strlist_push(errors, ar_xstrdup("(null): cannot read: no file name"));
        return AR_EINVAL;
    }
    ar_buf_init(&b, MAX_FILE_BYTES);
    errno = 0;
    if (ar_config__read_file(path, &b, &err)) {
        if (errors) {
            const char *why = strerror(err);
            int n = snprintf(NULL, 0, "%s: cannot read: %s", path, why);
            char *s = ar_xmalloc((size_t)(n > 0 ? n : 0) + 1);
            snprintf(s, (size_t)(n > 0 ? n : 0) + 1, "%s: cannot read: %s", path, why);
            strlist_push(errors, s);
        }
        ar_buf_dispose(&b);
        return AR_EIO;
    }
    rc = ar_config_load_string(path, b.ptr, b.len, out, errors);
    ar_buf_dispose(&b);
    return rc;
}

/* ---- references and lookups ---- */

ar_config_t *ar_config_ref(ar_config_t *cfg)
{
    atomic_fetch_add_explicit(&cfg->refcnt, 1, memory_order_relaxed);
    return cfg;
}

void ar_config_unref(ar_config_t *cfg)
{
    if (!cfg)
        return;
    if (atomic_fetch_sub_explicit(&cfg->refcnt, 1, memory_order_acq_rel) == 1)
        ar_config__free(cfg);
}

long ar_config_cred_index(const ar_config_t *cfg, const char *name)
{
    if (!cfg || !name)
        return -1;
    for (size_t i = 0; i < cfg->credentials_cnt; i++) {
        if (cfg->credentials[i].name && strcmp(cfg->credentials[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

const ar_cred_conf_t *ar_config_find_cred(const ar_config_t *cfg, const char *name)
{
    long i = ar_config_cred_index(cfg, name);
    return i < 0 ? NULL : &cfg->credentials[i];
}

void ar_strlist_dispose(ar_strlist_t *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->cnt; i++) {
        if (list->items[i])
            ar_free(list->items[i]);
    }
    if (list->items)
        ar_free(list->items);
    list->items = NULL;
    list->cnt = 0;
}

const char *ar_config_yaml_version(void)
{
    return yaml_get_version_string();
}
