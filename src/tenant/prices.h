/*
 * prices.h: the price table (SPEC section 6: cost = tokens x price, from the model's config,
 * else the table named by server.model_prices_link, in LiteLLM's
 * model_prices_and_context_window.json format) and the cost of one request's usage.
 * A table is built once on a helper thread (prices_load.c fetches it, prices.c parses it),
 * then is immutable and reference-counted, so worker threads look models up without locks.
 * Nothing here runs on an event loop or knows about providers.
 */
#ifndef AR_TENANT_PRICES_H
#define AR_TENANT_PRICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define AR_PRICE_TIERS_MAX 4

/* One model's prices, in USD per token. A rate < 0 is unknown: ar_price_cost then bills
 * those tokens at the plain input (cache rates) or output (reasoning rate) price, and an
 * unknown input or output price counts as 0. */
typedef struct ar_price {
    double input, output;
    double cache_read;     /* cached prompt tokens (cache_read_input_token_cost) */
    double cache_creation; /* prompt tokens written to a cache (cache_creation_input_token_cost) */
    double reasoning;      /* output_cost_per_reasoning_token */
    /* LiteLLM's `*_above_<N>k_tokens` keys: when a request's prompt_tokens exceed
     * above_tokens, the whole request is billed at the highest such tier's rates (a rate
     * < 0 there falls back to the base rate above). Sorted by above_tokens, ascending. */
    size_t tiers_cnt;
    struct ar_price_tier {
        int64_t above_tokens;
        double input, output, cache_read, cache_creation;
    } tiers[AR_PRICE_TIERS_MAX];
} ar_price_t;

/* One request's usage, normalised: prompt_tokens counts every input token, cached and
 * cache-creation ones included; completion_tokens includes reasoning_tokens. */
typedef struct ar_cost_usage {
    int64_t prompt_tokens, completion_tokens;
    int64_t cached_tokens;         /* part of prompt_tokens */
    int64_t cache_creation_tokens; /* part of prompt_tokens */
    int64_t reasoning_tokens;      /* part of completion_tokens */
} ar_cost_usage_t;

/* An immutable, reference-counted table of model name -> ar_price_t. */
typedef struct ar_prices ar_prices_t;

/**
 * Builds a table from LiteLLM-format JSON text (len bytes, NUL not needed): a top-level
 * object of model name -> object of prices. "sample_spec", entries that are not objects and
 * entries with neither a usable input_cost_per_token nor output_cost_per_token are skipped;
 * a single unusable rate (a string, a negative number) is ignored. Any thread; blocking
 * (a 2 MB table takes milliseconds): call it off the event loops.
 * @param out receives the table with one reference (ar_prices_unref), NULL on error.
 * @return 0; AR_EPARSE when the text is not JSON or not an object (err names the problem).
 */
int ar_prices_parse(const char *json, size_t len, ar_prices_t **out, char *err,
                    size_t errlen) AR_MUST_CHECK;

/** Number of models in the table. */
size_t ar_prices_count(const ar_prices_t *p);

/**
 * The prices of model, or NULL when the table does not know it. Tries, in order: LiteLLM's
 * key for the provider ("azure/" + model for provider "azure", "vertex_ai/" for
 * "vertex-ai", ...; skipped when provider is NULL); the exact name; the name without its leading
 * "xxx/" prefixes ("openrouter/openai/gpt-4o" -> "openai/gpt-4o" -> "gpt-4o"); then that
 * base name under the usual provider prefixes (openai/, azure/, anthropic/, gemini/,
 * vertex_ai/). Hash lookups only, no allocation: any thread, per request.
 * @param p a table, or NULL (then NULL is returned).
 * @param provider the credential's config type ("openai", "anthropic", ...), or NULL.
 * @return borrowed from p: valid while the caller holds its reference to p.
 */
const ar_price_t *ar_prices_find(const ar_prices_t *p, const char *provider, const char *model);

/** Takes one more reference. Any thread. */
void ar_prices_ref(ar_prices_t *p);
/** Drops a reference; the last one frees the table. NULL is a no-op. Any thread. */
void ar_prices_unref(ar_prices_t *p);

/**
 * Fills pr from a model's config prices (models[].input_cost_per_token and
 * output_cost_per_token; < 0 = not set), which take precedence over the table.
 * @return true when both are set (pr then holds them, other rates unknown, no tiers);
 *         false when either is missing (pr is left untouched: use the table).
 */
bool ar_price_from_config(double input_cost_per_token, double output_cost_per_token,
                          ar_price_t *pr);

/**
 * The cost of u in USD at pr: cached and cache-creation prompt tokens at their own rates,
 * the rest of the prompt at the input rate; reasoning tokens at the reasoning rate when pr
 * has one, the rest of the completion at the output rate; all at a tier's rates when
 * prompt_tokens exceeds its threshold. Counts that do not add up (cached > prompt, ...) are
 * clamped, never negative. @return >= 0; 0 when pr is NULL.
 */
double ar_price_cost(const ar_price_t *pr, const ar_cost_usage_t *u);

/* ---- loading (prices_load.c): blocking, for helper threads ---- */

/* ar_prices_load's result when the link failed and the cached copy was used instead. */
#define AR_PRICES_FROM_CACHE 1
#define AR_PRICES_MAX_BYTES ((size_t)32 << 20)
#define AR_PRICES_TIMEOUT_S 30

/**
 * Loads a table from link: a file path (or file://path) or an http(s):// URL (libcurl,
 * 30 s timeout, at most AR_PRICES_MAX_BYTES, HTTP 200 only). On success, when cache_path is
 * not NULL, writes the text there atomically (a temporary file, then rename) as the last
 * good copy. When the link fails (unreachable, not JSON...), loads cache_path's copy
 * instead. Blocks: call it on a helper thread, never on an event loop. The caller must
 * have called curl_global_init (the server does at start) before any thread calls this.
 * Error texts name file paths but never a URL (it may carry a token).
 * @param out receives the table with one reference, NULL on error.
 * @return 0 (err empty, or naming a cache file that could not be written: a warning);
 *         AR_PRICES_FROM_CACHE (err says why the link failed); or a negative AR_E* (err
 *         says why the link and the cached copy failed): AR_EINVAL (no link), AR_ENOTFOUND,
 *         AR_EIO, AR_ETIMEDOUT, AR_ETOOBIG, AR_EPARSE.
 */
int ar_prices_load(const char *link, const char *cache_path, ar_prices_t **out, char *err,
                   size_t errlen) AR_MUST_CHECK;

/**
 * Called once per ar_prices_load_start, on the loader's own thread (post the result to a
 * loop from there). rc and err are ar_prices_load's (AR_ECANCELED after ar_prices_load_stop
 * cut a download short). p is taken by the callee (NULL when rc < 0); err is borrowed for
 * the call.
 */
typedef void (*ar_prices_done_cb)(void *ud, int rc, ar_prices_t *p, const char *err);

typedef struct ar_prices_loader ar_prices_loader_t;

/**
 * Runs ar_prices_load(link, cache_path) on a new thread, then done(ud, ...) on that thread.
 * link and cache_path are copied. Every successful start must be ended with
 * ar_prices_load_stop, also after done ran (it joins the thread and frees the loader).
 * @return 0 (done will be called exactly once), or AR_EINVAL / AR_ENOMEM (it never will).
 */
int ar_prices_load_start(const char *link, const char *cache_path, ar_prices_done_cb done, void *ud,
                         ar_prices_loader_t **out) AR_MUST_CHECK;

/**
 * Aborts a download still running (done then gets AR_ECANCELED, within about a second:
 * libcurl's progress callback is where the flag is seen; a file being read is finished),
 * waits for done to return, and frees l. Not from inside done. NULL is a no-op.
 */
void ar_prices_load_stop(ar_prices_loader_t *l);

#endif
