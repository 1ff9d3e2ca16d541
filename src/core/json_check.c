/*
 * json_check.c: a strict JSON validator and array/object iterators over raw text. The
 * gateway validates every client body with this (so malformed JSON is a precise 400)
 * and reads the few fields it routes on, without building a jansson tree; a tree is
 * built only when a provider has to translate the body.
 */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "core/json.h"
#include "core/pool.h"
#include "core/str.h"

#define MAX_DEPTH 256

typedef struct vstate {
    const char *start, *p, *end;
    const char *problem;
} vstate_t;

static void skip_ws(vstate_t *v)
{
    while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r'))
        v->p++;
}

static int bad(vstate_t *v, const char *problem)
{
    if (!v->problem)
        v->problem = problem;
    return -1;
}

/* The code unit of the \\uXXXX escape at p (p[0] is the backslash), or -1. */
static long u_escape(const char *p, const char *end)
{
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
        return -1;
    long cu = 0;
    for (int i = 2; i < 6; i++) {
        int h = ar_hexval(p[i]);
        if (h < 0)
            return -1;
        cu = cu * 16 + h;
    }
    return cu;
}

/*
 * Strings must be text every JSON parser reads the same way: what jansson (and the
 * upstreams) refuse, lone UTF-16 surrogates and invalid UTF-8, is refused here too, so a
 * body the gateway accepted can always be translated.
 */
static int check_string(vstate_t *v)
{
    v->p++; /* opening quote */
    while (v->p < v->end) {
        unsigned char c = (unsigned char)*v->p;
        if (c == '"') {
            v->p++;
            return 0;
        }
        if (c < 0x20)
            return bad(v, "control character in string");
        if (c >= 0x80) {
            size_t n = ar_utf8_seq_len(v->p, (size_t)(v->end - v->p));
            if (n == 0)
                return bad(v, "invalid UTF-8 in string");
            v->p += n;
            continue;
        }
        if (c == '\\') {
            if (v->p + 1 >= v->end)
                return bad(v, "unterminated string");
            char e = v->p[1];
            if (e == 'u') {
                long cu = u_escape(v->p, v->end);
                if (cu < 0)
                    return bad(v,
                               v->end - v->p < 6 ? "truncated \\u escape" : "invalid \\u escape");
                if (cu >= 0xdc00 && cu <= 0xdfff)
                    return bad(v, "lone surrogate in \\u escape");
                if (cu >= 0xd800 && cu <= 0xdbff) {
                    long low = u_escape(v->p + 6, v->end);
                    if (low < 0xdc00 || low > 0xdfff)
                        return bad(v, "lone surrogate in \\u escape");
                    v->p += 6;
                }
                v->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return bad(v, "invalid escape in string");
            v->p += 2;
            continue;
        }
        v->p++;
    }
    return bad(v, "unterminated string");
}

static bool digit(const vstate_t *v)
{
    return v->p < v->end && *v->p >= '0' && *v->p <= '9';
}

static int check_number(vstate_t *v)
{
    if (*v->p == '-')
        v->p++;
    if (!digit(v))
        return bad(v, "invalid number");
    if (*v->p == '0') {
        v->p++;
    } else {
        while (digit(v))
            v->p++;
    }
    if (v->p < v->end && *v->p == '.') {
        v->p++;
        if (!digit(v))
            return bad(v, "invalid number");
        while (digit(v))
            v->p++;
    }
    if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
        v->p++;
        if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
            v->p++;
        if (!digit(v))
            return bad(v, "invalid number");
        while (digit(v))
            v->p++;
    }
    return 0;
}

static int check_literal(vstate_t *v, const char *lit, size_t n)
{
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, lit, n) != 0)
        return bad(v, "unexpected token");
    v->p += n;
    return 0;
}

static int check_value(vstate_t *v, int depth);

static int check_container(vstate_t *v, int depth, bool object)
{
    if (depth >= MAX_DEPTH)
        return bad(v, "nesting too deep");
    char close = object ? '}' : ']';
    v->p++;
    skip_ws(v);
    if (v->p < v->end && *v->p == close) {
        v->p++;
        return 0;
    }
    for (;;) {
        skip_ws(v);
        if (object) {
            if (v->p >= v->end || *v->p != '"')
                return bad(v, v->p >= v->end ? "unexpected end of input" : "expected a string key");
            if (check_string(v))
                return -1;
            skip_ws(v);
            if (v->p >= v->end || *v->p != ':')
                return bad(v, v->p >= v->end ? "unexpected end of input" : "expected ':'");
            v->p++;
        }
        if (check_value(v, depth + 1))
            return -1;
        skip_ws(v);
        if (v->p >= v->end)
            return bad(v, "unexpected end of input");
        if (*v->p == ',') {
            v->p++;
            continue;
        }
        if (*v->p == close) {
            v->p++;
            return 0;
        }
        return bad(v, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int check_value(vstate_t *v, int depth)
{
    skip_ws(v);
    if (v->p >= v->end)
        return bad(v, "unexpected end of input");
    switch (*v->p) {
    case '{': return check_container(v, depth, true);
    case '[': return check_container(v, depth, false);
    case '"': return check_string(v);
    case 't': return check_literal(v, "true", 4);
    case 'f': return check_literal(v, "false", 5);
    case 'n': return check_literal(v, "null", 4);
    default:
        if (*v->p == '-' || (*v->p >= '0' && *v->p <= '9'))
            return check_number(v);
        return bad(v, "unexpected token");
    }
}

int ar_json_validate(ar_span_t text, char *err, size_t errlen)
{
    static const char empty[1] = "";
    if (!text.ptr)
        text = ar_span(empty, 0); /* the null span: NULL + 0 is undefined */
    vstate_t v = {text.ptr, text.ptr, text.ptr + text.len, NULL};
    int rc = check_value(&v, 0);
    if (rc == 0) {
        skip_ws(&v);
        if (v.p < v.end)
            rc = bad(&v, "unexpected data after the JSON value");
    }
    if (rc == 0)
        return 0;
    if (err && errlen) {
        int line = 1, col = 1;
        for (const char *q = v.start; q < v.p && q < v.end; q++) {
            if (*q == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        if (v.p < v.end && (unsigned char)*v.p >= 0x20 && (unsigned char)*v.p < 0x7f)
            snprintf(err, errlen, "%s near '%c' at line %d column %d", v.problem, *v.p, line, col);
        else
            snprintf(err, errlen, "%s at line %d column %d", v.problem, line, col);
    }
    return AR_EPARSE;
}

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int begin(ar_span_t s, char open, ar_jscan_iter_t *it)
{
    if (!s.len)
        return AR_EPARSE; /* also the null span of an absent member: NULL + 0 is undefined */
    const char *end = s.ptr + s.len;
    const char *p = ws(s.ptr, end);
    if (p >= end || *p != open)
        return AR_EPARSE;
    it->p = p + 1;
    it->end = end;
    it->first = true;
    return 0;
}

int ar_jscan_array_begin(ar_span_t arr, ar_jscan_iter_t *it)
{
    return begin(arr, '[', it);
}

int ar_jscan_object_begin(ar_span_t obj, ar_jscan_iter_t *it)
{
    return begin(obj, '{', it);
}

/* Moves past the separator before the next member; false at the closing bracket. */
static bool step(ar_jscan_iter_t *it, char close)
{
    it->p = ws(it->p, it->end);
    if (it->p >= it->end || *it->p == close)
        return false;
    if (!it->first) {
        if (*it->p != ',')
            return false;
        it->p = ws(it->p + 1, it->end);
    }
    it->first = false;
    return it->p < it->end;
}

bool ar_jscan_array_next(ar_jscan_iter_t *it, ar_span_t *elem)
{
    if (!step(it, ']'))
        return false;
    const char *e = ar_jscan_skip(it->p, it->end);
    if (!e)
        return false;
    *elem = ar_span(it->p, (size_t)(e - it->p));
    it->p = e;
    return true;
}

bool ar_jscan_object_next(ar_jscan_iter_t *it, ar_span_t *key, ar_span_t *val)
{
    if (!step(it, '}') || *it->p != '"')
        return false;
    const char *kend = ar_jscan_skip(it->p, it->end);
    if (!kend)
        return false;
    *key = ar_span(it->p + 1, (size_t)(kend - it->p - 2));
    const char *p = ws(kend, it->end);
    if (p >= it->end || *p != ':')
        return false;
    p = ws(p + 1, it->end);
    const char *vend = ar_jscan_skip(p, it->end);
    if (!vend)
        return false;
    *val = ar_span(p, (size_t)(vend - p));
    it->p = vend;
    return true;
}

/* ---- member keys, decoded ---- */

/* Appends code point cp to out as UTF-8. @return the length (1-4). */
static size_t put_utf8(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Decodes the next character of raw string content (escapes as written) at *p into out.
 * Escapes the validator refuses (lone surrogates) become U+FFFD rather than failing.
 * @return the bytes written (1-4), or 0 at the end.
 */
static size_t next_char(const char **p, const char *end, char out[4])
{
    const char *q = *p;
    if (q >= end)
        return 0;
    if (*q != '\\' || q + 1 >= end) {
        out[0] = *q;
        *p = q + 1;
        return 1;
    }
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *e = strchr(from, q[1]);
    if (q[1] != 'u' && e && q[1]) {
        out[0] = to[e - from];
        *p = q + 2;
        return 1;
    }
    long cu = u_escape(q, end);
    if (cu < 0) {
        out[0] = *q; /* not an escape the validator lets through: keep the byte */
        *p = q + 1;
        return 1;
    }
    *p = q + 6;
    unsigned long cp = (unsigned long)cu;
    if (cu >= 0xd800 && cu <= 0xdbff) {
        long low = u_escape(q + 6, end);
        if (low >= 0xdc00 && low <= 0xdfff) {
            cp = 0x10000 + (((unsigned long)cu - 0xd800) << 10) + ((unsigned long)low - 0xdc00);
            *p = q + 12;
        } else {
            cp = 0xfffd;
        }
    } else if (cu >= 0xdc00 && cu <= 0xdfff) {
        cp = 0xfffd;
    }
    return put_utf8(cp, out);
}

bool ar_jscan_key_eq(ar_span_t raw, ar_span_t name)
{
    if (ar_span_eq(raw, name))
        return true;
    /* an escape always takes more bytes than what it stands for */
    if (raw.len <= name.len || !memchr(raw.ptr, '\\', raw.len))
        return false;
    const char *p = raw.ptr, *end = raw.ptr + raw.len;
    size_t at = 0, n;
    char ch[4];
    while ((n = next_char(&p, end, ch)) > 0) {
        if (n > name.len - at || memcmp(name.ptr + at, ch, n) != 0)
            return false;
        at += n;
    }
    return at == name.len;
}

ar_span_t ar_jscan_key_text(ar_pool_t *pool, ar_span_t raw)
{
    if (!memchr(raw.ptr, '\\', raw.len))
        return raw;
    char *out = ar_pool_alloc(pool, raw.len + 1); /* decoding never lengthens */
    const char *p = raw.ptr, *end = raw.ptr + raw.len;
    size_t len = 0, n;
    while ((n = next_char(&p, end, out + len)) > 0)
        len += n;
    out[len] = '\0';
    return ar_span(out, len);
}

static int span_cmp(const void *a, const void *b)
{
    const ar_span_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

void ar_jscan_keys_add(ar_pool_t *pool, ar_jscan_keys_t *keys, ar_span_t raw_key)
{
    if (keys->cnt == keys->cap) {
        size_t cap = keys->cap ? 2 * keys->cap : 16;
        ar_span_t *bigger = ar_pool_alloc(pool, cap * sizeof(*bigger));
        if (keys->cnt)
            memcpy(bigger, keys->items, keys->cnt * sizeof(*bigger));
        keys->items = bigger;
        keys->cap = cap;
    }
    keys->items[keys->cnt++] = raw_key;
}

bool ar_jscan_keys_duplicate(ar_pool_t *pool, ar_jscan_keys_t *list, ar_span_t *dup)
{
    ar_span_t *keys = list->items;
    size_t cnt = list->cnt;
    for (size_t i = 0; i < cnt; i++)
        keys[i] = ar_jscan_key_text(pool, keys[i]);
    if (cnt <= 16) {
        for (size_t i = 1; i < cnt; i++) {
            for (size_t j = 0; j < i; j++) {
                if (ar_span_eq(keys[i], keys[j])) {
                    *dup = keys[i];
                    return true;
                }
            }
        }
        return false;
    }
    /* many members (a hostile body may have millions): sort instead of comparing pairs */
    qsort(keys, cnt, sizeof(*keys), span_cmp);
    for (size_t i = 1; i < cnt; i++) {
        if (ar_span_eq(keys[i], keys[i - 1])) {
            *dup = keys[i];
            return true;
        }
    }
    return false;
}

bool ar_jscan_object_duplicate(ar_pool_t *pool, ar_span_t obj, ar_span_t *dup)
{
    ar_jscan_iter_t it;
    ar_span_t k, v;
    ar_jscan_keys_t keys = {0};
    if (ar_jscan_object_begin(obj, &it) != 0)
        return false;
    while (ar_jscan_object_next(&it, &k, &v))
        ar_jscan_keys_add(pool, &keys, k);
    return ar_jscan_keys_duplicate(pool, &keys, dup);
}

/* ---- shortening for logs ---- */

static bool is_number_start(char c)
{
    return c == '-' || (c >= '0' && c <= '9');
}

/* Bytes of the string content s[0..n) to keep: at most limit, never cutting an escape
 * sequence or a UTF-8 character in two. */
static size_t string_keep(const char *s, size_t n, size_t limit)
{
    size_t keep = 0;
    while (keep < n) {
        unsigned char c = (unsigned char)s[keep];
        size_t step = 1;
        if (c == '\\') {
            step = keep + 1 < n && s[keep + 1] == 'u' ? 6 : 2;
        } else if (c >= 0x80) {
            /* a lead byte is trusted only with its continuation bytes: taking 4 bytes after a
             * stray 0xf0 could swallow half of a following \u escape */
            step = ar_utf8_seq_len(s + keep, n - keep);
            step = step ? step : 1;
        }
        if (keep + step > limit)
            break;
        keep += step;
    }
    return keep;
}

/* stop: once out->len passes it, the rest is not written (the caller cuts there). */
static int append_capped(ar_buf_t *out, const char *p, size_t n, size_t stop)
{
    size_t room = out->len <= stop ? stop - out->len + 1 : 0;
    return ar_buf_append(out, p, n < room ? n : room);
}

static int shorten_value(ar_span_t v, size_t max_string, ar_buf_t *out, size_t stop, int depth);

static int shorten_array(ar_span_t v, size_t max_string, ar_buf_t *out, size_t stop, int depth)
{
    ar_jscan_iter_t it;
    ar_span_t e;
    size_t n = 0;
    bool numbers = true;
    (void)ar_jscan_array_begin(v, &it);
    while (ar_jscan_array_next(&it, &e)) {
        n++;
        numbers = numbers && e.len && is_number_start(e.ptr[0]);
    }
    if (numbers && n > 16)
        return ar_buf_appendf(out, "[%zu numbers]", n);
    int rc = ar_buf_append(out, "[", 1);
    bool first = true;
    (void)ar_jscan_array_begin(v, &it);
    while (!rc && out->len <= stop && ar_jscan_array_next(&it, &e)) {
        if (!first)
            rc = ar_buf_append(out, ",", 1);
        first = false;
        rc = rc ? rc : shorten_value(e, max_string, out, stop, depth + 1);
    }
    return rc ? rc : ar_buf_append(out, "]", 1);
}

static int shorten_object(ar_span_t v, size_t max_string, ar_buf_t *out, size_t stop, int depth)
{
    ar_jscan_iter_t it;
    ar_span_t k, val;
    int rc = ar_buf_append(out, "{", 1);
    bool first = true;
    (void)ar_jscan_object_begin(v, &it);
    while (!rc && out->len <= stop && ar_jscan_object_next(&it, &k, &val)) {
        if (!first)
            rc = ar_buf_append(out, ",", 1);
        first = false;
        rc = rc ? rc : ar_buf_append(out, "\"", 1);
        rc = rc ? rc : append_capped(out, k.ptr, k.len, stop);
        rc = rc ? rc : ar_buf_append(out, "\":", 2);
        rc = rc ? rc : shorten_value(val, max_string, out, stop, depth + 1);
    }
    return rc ? rc : ar_buf_append(out, "}", 1);
}

static int shorten_value(ar_span_t v, size_t max_string, ar_buf_t *out, size_t stop, int depth)
{
    if (v.len == 0)
        return 0;
    if (depth > 64)
        return ar_buf_append(out, "...", 3);
    if (v.ptr[0] == '"' && v.len > max_string + 2) {
        size_t keep = string_keep(v.ptr + 1, v.len - 2, max_string < 48 ? max_string : 48);
        int rc = ar_buf_append(out, v.ptr, keep + 1);
        return rc ? rc : ar_buf_appendf(out, "...(%zu chars)\"", v.len - 2);
    }
    if (v.ptr[0] == '[')
        return shorten_array(v, max_string, out, stop, depth);
    if (v.ptr[0] == '{')
        return shorten_object(v, max_string, out, stop, depth);
    return append_capped(out, v.ptr, v.len, stop);
}

/*
 * Where to cut text s at (at most) n bytes so that no escape sequence and no UTF-8
 * character is split: a cut log line must still be valid text, its escapes whole.
 */
static size_t safe_cut(const char *s, size_t n)
{
    /* an escape that starts in the last 5 bytes and runs past the cut goes whole */
    for (size_t b = n > 5 ? n - 5 : 0; b < n; b++) {
        if (s[b] != '\\')
            continue;
        size_t run = 0; /* backslashes right before: an odd count makes this one escaped */
        while (run < b && s[b - 1 - run] == '\\')
            run++;
        if (run % 2)
            continue;
        size_t len = b + 1 < n && s[b + 1] == 'u' ? 6 : 2;
        if (b + len > n) {
            n = b;
            break;
        }
        b += len - 1;
    }
    /* a UTF-8 character whose lead byte is before the cut and whose tail is after it */
    size_t k = n;
    while (k > 0 && ((unsigned char)s[k - 1] & 0xc0) == 0x80 && n - k < 3)
        k--;
    if (k > 0 && (unsigned char)s[k - 1] >= 0xc0) {
        unsigned char lead = (unsigned char)s[k - 1];
        size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
        if (k - 1 + want > n)
            n = k - 1;
    }
    return n;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int ar_json_shorten(ar_span_t json, size_t max_string, size_t max_total, ar_buf_t *out)
{
    size_t start = out->len;
    ar_span_t v = json;
    while (v.len && is_ws(v.ptr[0]))
        v = ar_span_skip(v, 1);
    while (v.len && is_ws(v.ptr[v.len - 1]))
        v.len--;
    /* never write much more than max_total: a huge body must not need a huge buffer */
    size_t stop = max_total < SIZE_MAX - start ? start + max_total : SIZE_MAX - 1;
    int rc = ar_json_validate(v, NULL, 0) == 0 ? shorten_value(v, max_string, out, stop, 0)
                                               : append_capped(out, v.ptr, v.len, stop);
    if (rc == 0 && out->len - start > max_total) {
        out->len = start + safe_cut(out->ptr + start, max_total);
        rc = ar_buf_append_str(out, "...(cut)");
    }
    return rc;
}
