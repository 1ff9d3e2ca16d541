/*
 * fuzz_json.c: libFuzzer target for the JSON validator, the allocation-free scanner and the
 * log shortener (core/json_check.c, core/json.c). The input after two option bytes is the
 * text. Checked:
 *   - ar_json_validate agrees with jansson (the exceptions are what jansson refuses on
 *     top of the grammar: number overflow, lone surrogates, invalid UTF-8, depth);
 *   - everything ar_json_validate accepts iterates without failure: every array element and
 *     object member is reached, ar_jscan_skip ends where the value ends, ar_jscan_get finds
 *     each key's first member, ar_jscan_string_text decodes strings as jansson does;
 *   - the scanner never reads outside arbitrary (invalid) text, since it also reads
 *     upstream bytes nobody validated;
 *   - ar_json_shorten's output of valid UTF-8 JSON is valid UTF-8 without broken escapes
 *     (it is JSON-ish by design: "[18 numbers]", "...(N chars)", "...(cut)").
 * Option byte 0 picks max_string for the shortener, byte 1 max_total.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "fuzz_common.h"

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static bool has_escaped_nul_or_surrogate(ar_span_t s)
{
    for (size_t i = 0; i + 5 < s.len; i++) {
        if (s.ptr[i] != '\\')
            continue;
        if (s.ptr[i + 1] == 'u' && (memcmp(s.ptr + i + 2, "0000", 4) == 0 ||
                                    ((s.ptr[i + 2] == 'd' || s.ptr[i + 2] == 'D') &&
                                     strchr("89abcdefABCDEF", s.ptr[i + 3]))))
            return true;
        i++; /* skip the escaped byte */
    }
    return false;
}

static void walk(ar_pool_t *pool, ar_span_t v, int depth);

static void walk_object(ar_pool_t *pool, ar_span_t v, int depth)
{
    ar_jscan_iter_t it;
    ar_span_t k, val;
    if (ar_jscan_object_begin(v, &it) != 0)
        fz_fail("an object does not begin");
    size_t members = 0;
    while (ar_jscan_object_next(&it, &k, &val)) {
        members++;
        ar_span_t quoted = ar_span(k.ptr - 1, k.len + 2);
        if (ar_json_validate(quoted, NULL, 0) != 0)
            fz_fail("an object key is not a JSON string");
        /* ar_jscan_get compares keys as written and finds the first member so named */
        ar_span_t got;
        if (ar_jscan_get(v, k, &got) != 0)
            fz_fail("ar_jscan_get misses a key that iteration found");
        if (got.ptr > val.ptr)
            fz_fail("ar_jscan_get found a later member than the first");
        int64_t n;
        (void)ar_jscan_get_int(v, k, &n);
        walk(pool, val, depth + 1);
    }
    const char *p = ws(it.p, it.end);
    if (p >= it.end || *p != '}' || ws(p + 1, v.ptr + v.len) != v.ptr + v.len)
        fz_fail("object iteration stopped early after %zu members", members);
}

static void walk_array(ar_pool_t *pool, ar_span_t v, int depth)
{
    ar_jscan_iter_t it;
    ar_span_t e;
    if (ar_jscan_array_begin(v, &it) != 0)
        fz_fail("an array does not begin");
    size_t n = 0;
    while (ar_jscan_array_next(&it, &e)) {
        n++;
        walk(pool, e, depth + 1);
    }
    const char *p = ws(it.p, it.end);
    if (p >= it.end || *p != ']' || ws(p + 1, v.ptr + v.len) != v.ptr + v.len)
        fz_fail("array iteration stopped early after %zu elements", n);
}

static void walk(ar_pool_t *pool, ar_span_t v, int depth)
{
    if (depth > 300)
        fz_fail("deeper than the validator allows");
    const char *end = ar_jscan_skip(v.ptr, v.ptr + v.len);
    if (end != v.ptr + v.len) {
        fz_dump("value", v);
        fz_fail("ar_jscan_skip does not end where the value ends");
    }
    if (v.ptr[0] == '{') {
        walk_object(pool, v, depth);
    } else if (v.ptr[0] == '[') {
        walk_array(pool, v, depth);
    } else if (v.ptr[0] == '"') {
        ar_span_t inner;
        if (ar_jscan_string(v, &inner) != 0)
            fz_fail("ar_jscan_string refuses a string");
        ar_span_t text = ar_jscan_string_text(pool, v);
        json_t *j = json_loadb(v.ptr, v.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (json_is_string(j) && !has_escaped_nul_or_surrogate(inner)) {
            if (!text.ptr ||
                !ar_span_eq(text, ar_span(json_string_value(j), json_string_length(j))))
                fz_fail("ar_jscan_string_text decodes differently from jansson");
        }
        json_decref(j);
    }
}

/* The scanner on text nobody validated: it may fail, never read outside. */
static void scan_anything(ar_pool_t *pool, ar_span_t text)
{
    ar_span_t v, k, e;
    int64_t n;
    (void)ar_jscan_skip(text.ptr, text.ptr + text.len);
    (void)ar_jscan_get(text, AR_LIT("model"), &v);
    (void)ar_jscan_get_int(text, AR_LIT("n"), &n);
    (void)ar_jscan_string_text(pool, text);
    ar_jscan_iter_t it;
    if (ar_jscan_object_begin(text, &it) == 0) {
        for (int i = 0; i < 10000 && ar_jscan_object_next(&it, &k, &v); i++) {
            (void)ar_jscan_get(text, k, &e);
            (void)ar_jscan_get_int(v, AR_LIT("x"), &n);
            (void)ar_jscan_string_text(pool, v);
        }
    }
    if (ar_jscan_array_begin(text, &it) == 0) {
        for (int i = 0; i < 10000 && ar_jscan_array_next(&it, &e); i++)
            (void)ar_jscan_is_null(e);
    }
}

/* The offset of the first byte of s that is not valid UTF-8 or starts a broken escape (a
 * backslash not followed by a complete JSON escape), or SIZE_MAX. */
static size_t first_bad(ar_span_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x80) {
            size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (i + n > s.len || !fz_utf8_valid(ar_span(s.ptr + i, n)))
                return i;
            i += n - 1;
            continue;
        }
        if (c != '\\')
            continue;
        char e = i + 1 < s.len ? s.ptr[i + 1] : '\0';
        bool ok = e && strchr("\"\\/bfnrtu", e);
        for (size_t k = 2; ok && e == 'u' && k < 6; k++)
            ok = i + k < s.len && s.ptr[i + k] && strchr("0123456789abcdefABCDEF", s.ptr[i + k]);
        if (!ok)
            return i;
        i += e == 'u' ? 5 : 1;
    }
    return SIZE_MAX;
}

/* The shortener writes JSON-ish text ("[N numbers]", "...(N chars)" inside strings,
 * "...(cut)" at the end): of valid UTF-8 JSON it must write valid UTF-8 in which every
 * backslash starts a complete escape. */
static void check_shortened(ar_span_t out)
{
    size_t bad = first_bad(out);
    if (bad == SIZE_MAX)
        return;
    fz_dump("shortened", out);
    fz_fail("the shortened JSON has invalid UTF-8 or a broken escape at offset %zu", bad);
}

/* jansson's refusals that are no grammar error: the validator accepts these texts (lone
 * surrogates and invalid UTF-8 are refused by both). */
static bool beyond_grammar(const char *jerr)
{
    return strstr(jerr, "real number overflow") || strstr(jerr, "too big") ||
           strstr(jerr, "maximum parsing depth") || strstr(jerr, "NUL byte in object key");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    size_t max_string = fz_byte(&in);
    size_t max_total = (size_t)fz_byte(&in) * 16;
    ar_span_t text = fz_rest(&in);
    /* a copy of exactly the input's size, so ASan sees any read past the end */
    char *copy = malloc(text.len ? text.len : 1);
    memcpy(copy, text.ptr, text.len);
    text.ptr = copy;
    ar_pool_t *pool = ar_pool_create(4096);
    bool utf8 = fz_utf8_valid(text);

    char verr[160] = "";
    int valid = ar_json_validate(text, verr, sizeof(verr));
    json_error_t je;
    json_t *j = json_loadb(text.ptr, text.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    /* jansson stops at a raw NUL byte as if the text ended there */
    bool nul = memchr(text.ptr, '\0', text.len) != NULL;
    if (j && valid != 0 && !nul && !strstr(verr, "nesting too deep")) {
        fz_dump("text", text);
        fz_fail("jansson accepts what ar_json_validate refuses (%s)", verr);
    }
    if (!j && valid == 0 && utf8 && !beyond_grammar(je.text)) {
        fz_dump("text", text);
        fz_fail("ar_json_validate accepts what jansson refuses (%s)", je.text);
    }
    json_decref(j);

    scan_anything(pool, text);
    if (valid == 0) {
        const char *end = text.ptr + text.len;
        const char *p = ws(text.ptr, end);
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
            e--;
        walk(pool, ar_span(p, (size_t)(e - p)), 0);
    }

    /* Room to spare: with a tiny max_string a shortened string can be longer than itself
     * ("x" becomes "...(1 chars)", about five times as long); a cut never exceeds
     * max_total plus its marker. */
    ar_buf_t out;
    ar_buf_init(&out, (max_total ? max_total : 6 * text.len) + 4096);
    if (ar_json_shorten(text, max_string, max_total ? max_total : SIZE_MAX, &out) != 0)
        fz_fail("ar_json_shorten failed with room to spare");
    if (valid == 0 && utf8)
        check_shortened(ar_buf_span(&out));
    ar_buf_dispose(&out);

    ar_pool_destroy(pool);
    free(copy);
    return 0;
}
