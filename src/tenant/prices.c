/*
 * prices.c: the price table itself: parsing LiteLLM's JSON into a flat array of entries
 * indexed by an open-addressing hash table, name lookups with LiteLLM's provider-prefix
 * spellings, and the cost arithmetic. A table never changes once built, so lookups take no
 * lock; its lifetime is a reference count. Fetching the text is prices_load.c's job.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "tenant/prices.h"

typedef struct entry {
    char *name;
    size_t name_len;
    uint64_t hash;
    ar_price_t price;
} entry_t;

struct ar_prices {
    atomic_int refs;
    entry_t *entries;
    size_t cnt;
    uint32_t *slots; /* entry index + 1; 0 = empty */
    size_t mask;     /* slot count - 1 (a power of two, at least twice cnt) */
};

/* ---- hashing: FNV-1a, fed in pieces so that "prefix/" + name needs no copy ---- */

#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* The entry named a + b (either part may be empty), or NULL. */
static const entry_t *lookup2(const ar_prices_t *p, const char *a, size_t alen, const char *b,
                              size_t blen)
{
    uint64_t h = fnv(fnv(FNV_OFFSET, a, alen), b, blen);
    for (size_t i = h & p->mask;; i = (i + 1) & p->mask) {
        uint32_t s = p->slots[i];
        if (!s)
            return NULL;
        const entry_t *e = &p->entries[s - 1];
        if (e->hash == h && e->name_len == alen + blen && memcmp(e->name, a, alen) == 0 &&
            memcmp(e->name + alen, b, blen) == 0)
            return e;
    }
}

/* ---- parsing ---- */

/* A usable rate: a finite number >= 0; anything else (null, a string, -1) is unknown. */
static double rate_of(const json_t *v)
{
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    return isfinite(d) && d >= 0 ? d : -1;
}

/* The rates a tier can override, by their LiteLLM base key. */
enum { R_INPUT, R_OUTPUT, R_CACHE_READ, R_CACHE_CREATION, R_CNT };
static const char *const tier_bases[R_CNT] = {
    [R_INPUT] = "input_cost_per_token",
    [R_OUTPUT] = "output_cost_per_token",
    [R_CACHE_READ] = "cache_read_input_token_cost",
    [R_CACHE_CREATION] = "cache_creation_input_token_cost",
};

/*
 * Recognises "<base>_above_<N>k_tokens" exactly (LiteLLM also has variants such as
 * "..._above_200k_tokens_priority" for other service tiers: those are not ours).
 * @return the rate index and *above (N * 1000), or -1.
 */
static int tier_key(const char *key, int64_t *above)
{
    for (int r = 0; r < R_CNT; r++) {
        size_t bl = strlen(tier_bases[r]);
        if (strncmp(key, tier_bases[r], bl) != 0 || strncmp(key + bl, "_above_", 7) != 0)
            continue;
        const char *d = key + bl + 7;
        int64_t n = 0;
        size_t nd = 0;
        while (d[nd] >= '0' && d[nd] <= '9' && nd < 9)
            n = n * 10 + (d[nd++] - '0');
        if (nd == 0 || n == 0 || strcmp(d + nd, "k_tokens") != 0)
            return -1;
        *above = n * 1000;
        return r;
    }
    return -1;
}

static void tier_set(ar_price_t *pr, int64_t above, int r, double v)
{
    struct ar_price_tier *t = NULL;
    for (size_t i = 0; i < pr->tiers_cnt && !t; i++) {
        if (pr->tiers[i].above_tokens == above)
            t = &pr->tiers[i];
    }
    if (!t) {
        if (pr->tiers_cnt == AR_PRICE_TIERS_MAX)
            return; /* no model has that many; the first ones are kept */
        t = &pr->tiers[pr->tiers_cnt++];
        *t = (struct ar_price_tier){.above_tokens = above,
                                    .input = -1,
                                    .output = -1,
                                    .cache_read = -1,
                                    .cache_creation = -1};
    }
    double *dst[R_CNT] = {&t->input, &t->output, &t->cache_read, &t->cache_creation};
    *dst[r] = v;
}

/* Reads one model's object. @return false when it has no usable base price. */
static bool read_price(const json_t *obj, ar_price_t *pr)
{
    *pr = (ar_price_t){
        .input = -1, .output = -1, .cache_read = -1, .cache_creation = -1, .reasoning = -1};
    const char *k;
    const json_t *v;
    json_object_foreach ((json_t *)obj, k, v) {
        double d = rate_of(v);
        int64_t above;
        int r;
        if (d < 0)
            continue;
        if (strcmp(k, "input_cost_per_token") == 0)
            pr->input = d;
        else if (strcmp(k, "output_cost_per_token") == 0)
            pr->output = d;
        else if (strcmp(k, "cache_read_input_token_cost") == 0)
            pr->cache_read = d;
        else if (strcmp(k, "cache_creation_input_token_cost") == 0)
            pr->cache_creation = d;
        else if (strcmp(k, "output_cost_per_reasoning_token") == 0)
            pr->reasoning = d;
        else if ((r = tier_key(k, &above)) >= 0)
            tier_set(pr, above, r, d);
    }
    if (pr->input < 0 && pr->output < 0)
        return false;
    /* insertion sort: at most four tiers, and ar_price_cost walks them from the top */
    for (size_t i = 1; i < pr->tiers_cnt; i++) {
        for (size_t j = i; j > 0 && pr->tiers[j].above_tokens < pr->tiers[j - 1].above_tokens;
             j--) {
            struct ar_price_tier tmp = pr->tiers[j];
            pr->tiers[j] = pr->tiers[j - 1];
            pr->tiers[j - 1] = tmp;
        }
    }
    return true;
}

static void index_entries(ar_prices_t *p)
{
    size_t n = 16;
    while (n < p->cnt * 2)
        n <<= 1;
    p->mask = n - 1;
    p->slots = ar_xcalloc(n, sizeof(*p->slots));
    for (size_t e = 0; e < p->cnt; e++) {
        size_t i = p->entries[e].hash & p->mask;
        while (p->slots[i])
            i = (i + 1) & p->mask;
        p->slots[i] = (uint32_t)(e + 1);
    }
}

int ar_prices_parse(const char *json, size_t len, ar_prices_t **out, char *err, size_t errlen)
{
    *out = NULL;
    /* Not ar_json_parse: a duplicated model name in a hand-edited table is not worth
     * losing the whole table over (the last one wins, as in Python's json). */
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_DECODE_ANY, &je);
    if (!root) {
        snprintf(err, errlen, "price table is not JSON: %s at line %d column %d", je.text, je.line,
                 je.column);
        return AR_EPARSE;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "price table must be a JSON object of model name -> prices, not %s",
                 json_is_array(root) ? "an array" : "a scalar");
        json_decref(root);
        return AR_EPARSE;
    }
    ar_prices_t *p = ar_xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    size_t cap = json_object_size(root);
    p->entries = ar_xcalloc(cap ? cap : 1, sizeof(*p->entries));
    const char *k;
    json_t *v;
    json_object_foreach (root, k, v) {
        entry_t *e = &p->entries[p->cnt];
        /* sample_spec documents the format and carries 0.0 prices: not a model */
        if (!json_is_object(v) || strcmp(k, "sample_spec") == 0 || !read_price(v, &e->price))
            continue;
        e->name_len = strlen(k);
        e->name = ar_xstrndup(k, e->name_len);
        e->hash = fnv(FNV_OFFSET, k, e->name_len);
        p->cnt++;
    }
    json_decref(root);
    index_entries(p);
    *out = p;
    return 0;
}

size_t ar_prices_count(const ar_prices_t *p)
{
    return p ? p->cnt : 0;
}

void ar_prices_ref(ar_prices_t *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void ar_prices_unref(ar_prices_t *p)
{
    if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < p->cnt; i++)
        ar_free(p->entries[i].name);
    ar_free(p->entries);
    ar_free(p->slots);
    ar_free(p);
}

/* ---- lookups ---- */

/* LiteLLM's key prefix for a credential type; NULL when it has none (proxy, mock). */
static const char *provider_prefix(const char *provider)
{
    static const char *const map[][2] = {
        {"openai", "openai/"}, {"azure", "azure/"},         {"anthropic", "anthropic/"},
        {"gemini", "gemini/"}, {"vertex-ai", "vertex_ai/"}, {"vertex_ai", "vertex_ai/"},
    };
    for (size_t i = 0; provider && i < AR_ARRAY_CNT(map); i++) {
        if (strcmp(provider, map[i][0]) == 0)
            return map[i][1];
    }
    return NULL;
}

const ar_price_t *ar_prices_find(const ar_prices_t *p, const char *provider, const char *model)
{
    static const char *const common[] = {"openai/", "azure/", "anthropic/", "gemini/",
                                         "vertex_ai/"};
    if (!p || !model || !*model)
        return NULL;
    size_t n = strlen(model);
    /* the provider's own key first: LiteLLM prices "azure/gpt-4o-mini" apart from OpenAI's */
    const char *pre = provider_prefix(provider);
    const entry_t *e = pre ? lookup2(p, pre, strlen(pre), model, n) : NULL;
    if (!e)
        e = lookup2(p, "", 0, model, n);
    /* a routed name ("openrouter/openai/gpt-4o"): drop one prefix at a time */
    const char *base = model;
    for (const char *s = strchr(base, '/'); !e && s && s[1]; s = strchr(base, '/')) {
        base = s + 1;
        e = lookup2(p, "", 0, base, strlen(base));
    }
    size_t bl = strlen(base);
    for (size_t i = 0; !e && i < AR_ARRAY_CNT(common); i++)
        e = lookup2(p, common[i], strlen(common[i]), base, bl);
    return e ? &e->price : NULL;
}

/* ---- cost ---- */

bool ar_price_from_config(double input_cost_per_token, double output_cost_per_token, ar_price_t *pr)
{
    if (!(input_cost_per_token >= 0) || !(output_cost_per_token >= 0))
        return false;
    *pr = (ar_price_t){.input = input_cost_per_token,
                       .output = output_cost_per_token,
                       .cache_read = -1,
                       .cache_creation = -1,
                       .reasoning = -1};
    return true;
}

static int64_t clamp(int64_t v, int64_t hi)
{
    return v < 0 ? 0 : (v > hi ? hi : v);
}

double ar_price_cost(const ar_price_t *pr, const ar_cost_usage_t *u)
{
    if (!pr || !u)
        return 0;
    int64_t prompt = clamp(u->prompt_tokens, INT64_MAX);
    int64_t completion = clamp(u->completion_tokens, INT64_MAX);
    int64_t cached = clamp(u->cached_tokens, prompt);
    int64_t creation = clamp(u->cache_creation_tokens, prompt - cached);
    int64_t reasoning = clamp(u->reasoning_tokens, completion);
    double in = pr->input, out = pr->output, cr = pr->cache_read, cc = pr->cache_creation;
    /* a long prompt moves the whole request to the highest tier it crosses (LiteLLM) */
    for (size_t i = pr->tiers_cnt; i-- > 0;) {
        const struct ar_price_tier *t = &pr->tiers[i];
        if (prompt <= t->above_tokens)
            continue;
        in = t->input >= 0 ? t->input : in;
        out = t->output >= 0 ? t->output : out;
        cr = t->cache_read >= 0 ? t->cache_read : cr;
        cc = t->cache_creation >= 0 ? t->cache_creation : cc;
        break;
    }
    in = in >= 0 ? in : 0;
    out = out >= 0 ? out : 0;
    cr = cr >= 0 ? cr : in;
    cc = cc >= 0 ? cc : in;
    double cost =
        (double)(prompt - cached - creation) * in + (double)cached * cr + (double)creation * cc;
    if (pr->reasoning >= 0)
        cost += (double)(completion - reasoning) * out + (double)reasoning * pr->reasoning;
    else
        cost += (double)completion * out;
    return cost;
}
