/*
 * util.c: the mock upstream's growable buffers and small text helpers (JSON string escaping,
 * integer and duration parsing, UTF-8 character and word counts, splitting a text into
 * stream pieces). Buffers have a hard cap and a sticky error flag so response builders append
 * freely and check once. Nothing here knows about HTTP or about any wire format.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mock.h"

#define BUF_MIN_CAP 1024

void mock_buf_init(mock_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void mock_buf_init_fixed(mock_buf_t *b, char *storage, size_t size)
{
    memset(b, 0, sizeof(*b));
    b->data = storage;
    b->cap = size;
    b->max = size;
    b->fixed = 1;
}

void mock_buf_dispose(mock_buf_t *b)
{
    if (!b->fixed) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    b->len = 0;
    b->failed = 0;
}

void mock_buf_reset(mock_buf_t *b, size_t keep)
{
    if (!b->fixed && b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    b->len = 0;
    b->failed = 0;
}

int mock_buf_reserve(mock_buf_t *b, size_t n)
{
    if (b->failed) {
        return -1;
    }
    if (b->cap - b->len >= n) {
        return 0;
    }
    if (b->fixed || n > b->max - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t want = b->len + n;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < want) {
        cap = cap > b->max / 2 ? b->max : cap * 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void mock_buf_add(mock_buf_t *b, const void *p, size_t n)
{
    if (n == 0 || mock_buf_reserve(b, n) != 0) {
        return;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void mock_buf_adds(mock_buf_t *b, const char *s)
{
    mock_buf_add(b, s, strlen(s));
}

void mock_buf_addc(mock_buf_t *b, char c)
{
    if (mock_buf_reserve(b, 1) != 0) {
        return;
    }
    b->data[b->len++] = c;
}

void mock_buf_add_span(mock_buf_t *b, mock_span_t s)
{
    mock_buf_add(b, s.ptr, s.len);
}

void mock_buf_add_u64(mock_buf_t *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    mock_buf_add(b, tmp + i, sizeof(tmp) - i);
}

void mock_buf_add_i64(mock_buf_t *b, int64_t v)
{
    if (v < 0) {
        mock_buf_addc(b, '-');
        mock_buf_add_u64(b, (uint64_t)0 - (uint64_t)v);
        return;
    }
    mock_buf_add_u64(b, (uint64_t)v);
}

void mock_buf_add_jesc(mock_buf_t *b, mock_span_t s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t run = 0; /* bytes that need no escaping, copied in one go */

    /* Worst case 6 output bytes per input byte; reserve per run instead to stay small. */
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = p[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            run++;
            continue;
        }
        mock_buf_add(b, p + i - run, run);
        run = 0;
        switch (ch) {
        case '"': mock_buf_add(b, "\\\"", 2); break;
        case '\\': mock_buf_add(b, "\\\\", 2); break;
        case '\n': mock_buf_add(b, "\\n", 2); break;
        case '\r': mock_buf_add(b, "\\r", 2); break;
        case '\t': mock_buf_add(b, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            mock_buf_add(b, u, sizeof(u));
            break;
        }
        }
    }
    mock_buf_add(b, p + s.len - run, run);
}

void mock_buf_add_jstr(mock_buf_t *b, mock_span_t s)
{
    mock_buf_addc(b, '"');
    mock_buf_add_jesc(b, s);
    mock_buf_addc(b, '"');
}

int mock_span_eq(mock_span_t a, const char *lit)
{
    size_t n = strlen(lit);
    return a.ptr != NULL && a.len == n && memcmp(a.ptr, lit, n) == 0;
}

int mock_span_caseeq(mock_span_t a, const char *lit)
{
    size_t n = strlen(lit);
    return a.ptr != NULL && a.len == n && strncasecmp(a.ptr, lit, n) == 0;
}

int mock_span_contains(mock_span_t hay, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; hay.ptr != NULL && i + n <= hay.len; i++) {
        if (memcmp(hay.ptr + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

int mock_span_to_i64(mock_span_t s, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    int64_t v = 0;

    if (s.ptr == NULL || s.len == 0) {
        return -1;
    }
    if (s.ptr[0] == '-' || s.ptr[0] == '+') {
        neg = s.ptr[0] == '-';
        i = 1;
    }
    if (i == s.len || s.len - i > 18) {
        return -1;
    }
    for (; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9') {
            return -1;
        }
        v = v * 10 + (s.ptr[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

int mock_parse_duration_ms(mock_span_t s, int64_t *out_ms)
{
    char tmp[32];
    char *end = NULL;
    double v;
    double unit = 1.0;

    if (s.ptr == NULL || s.len == 0 || s.len >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = '\0';
    v = strtod(tmp, &end);
    if (end == tmp || v < 0 || v > 1e9) {
        return -1;
    }
    if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0) {
        unit = 1.0;
    } else if (strcmp(end, "s") == 0) {
        unit = 1000.0;
    } else if (strcmp(end, "m") == 0) {
        unit = 60000.0;
    } else if (strcmp(end, "us") == 0) {
        unit = 0.001;
    } else {
        return -1;
    }
    *out_ms = (int64_t)(v * unit + 0.5);
    return 0;
}

size_t mock_utf8_chars(mock_span_t s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        n += ((unsigned char)s.ptr[i] & 0xC0) != 0x80;
    }
    return n;
}

uint64_t mock_tokens_of_chars(uint64_t chars)
{
    uint64_t t = (chars + 3) / 4;
    return t ? t : 1;
}

uint64_t mock_count_words(mock_span_t s)
{
    uint64_t n = 0;
    int in_word = 0;
    for (size_t i = 0; i < s.len; i++) {
        int ws = isspace((unsigned char)s.ptr[i]) != 0;
        if (!ws && !in_word) {
            n++;
        }
        in_word = !ws;
    }
    return n;
}

mock_span_t mock_json_span(const json_t *str)
{
    if (!json_is_string(str)) {
        return (mock_span_t){NULL, 0};
    }
    return (mock_span_t){json_string_value(str), json_string_length(str)};
}

mock_span_t mock_json_str(const json_t *obj, const char *key)
{
    return mock_json_span(json_object_get(obj, key));
}

int64_t mock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- stream pieces ---- */

static int piece_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

void mock_pieces_init(mock_pieces_t *p, mock_span_t s, int n)
{
    memset(p, 0, sizeof(*p));
    p->s = s;
    p->n = n > 0 ? n : 0;
    if (p->n > 0) {
        p->chars = mock_utf8_chars(s);
        p->cnt = (size_t)p->n < p->chars ? (size_t)p->n : p->chars;
    }
}

int mock_pieces_next(mock_pieces_t *p, mock_span_t *out)
{
    const char *s = p->s.ptr;
    size_t len = p->s.len;
    size_t start = p->pos;

    if (p->pos >= len) {
        return 0;
    }
    if (p->n == 0) {
        if (p->pos == 0) {
            while (p->pos < len && piece_space(s[p->pos])) {
                p->pos++;
            }
        }
        while (p->pos < len && !piece_space(s[p->pos])) {
            p->pos++;
        }
        while (p->pos < len && piece_space(s[p->pos])) {
            p->pos++;
        }
    } else {
        size_t end_char = (p->idx + 1) * p->chars / p->cnt;
        while (p->pos < len &&
               (p->char_pos < end_char || ((unsigned char)s[p->pos] & 0xC0) == 0x80)) {
            if (((unsigned char)s[p->pos] & 0xC0) != 0x80) {
                p->char_pos++;
            }
            p->pos++;
        }
        p->idx++;
    }
    *out = (mock_span_t){s + start, p->pos - start};
    return 1;
}

size_t mock_pieces_count(mock_span_t s, int n)
{
    mock_pieces_t p;
    mock_span_t piece;
    size_t cnt = 0;

    mock_pieces_init(&p, s, n);
    while (mock_pieces_next(&p, &piece)) {
        cnt++;
    }
    return cnt;
}
