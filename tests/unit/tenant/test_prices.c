/*
 * test_prices.c: the price table on a LiteLLM excerpt (tests/fixtures/tenant/
 * model_prices.json: OpenAI, Azure, Gemini with 128k/200k tiers and a reasoning rate,
 * Anthropic cache prices, sample_spec and bogus entries): which entries are kept, lookups
 * with and without provider prefixes, the cost of each kind of token and of tier crossings,
 * config prices, and loading: from a file, from a local HTTP server (libcurl), falling back
 * to the cached copy, clear errors, and the loader thread (its result and its cancel).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tenant/prices.h"
#include "testutil.h"

#define FIXTURE "tenant/model_prices.json"

/* cmocka's float assertion is single precision; prices need more. */
#define assert_cost(got, want) assert_cost_at((got), (want), __FILE__, __LINE__)
static void assert_cost_at(double got, double want, const char *file, int line)
{
    if (fabs(got - want) <= 1e-12 + fabs(want) * 1e-9)
        return;
    print_error("%s:%d: cost %.12g, want %.12g\n", file, line, got, want);
    _fail(file, line);
}

static ar_prices_t *fixture_table(void)
{
    size_t n;
    char *text = ar_test_fixture(FIXTURE, &n);
    ar_prices_t *p = NULL;
    char err[256] = "";
    assert_int_equal(ar_prices_parse(text, n, &p, err, sizeof(err)), 0);
    assert_non_null(p);
    free(text);
    return p;
}

/* ---- parsing ---- */

static void test_parse_fixture(void **state)
{
    (void)state;
    ar_prices_t *p = fixture_table();
    /* 13 members: sample_spec, a string, an entry of unusable rates and an image model
     * (no token price) are left out */
    assert_int_equal(ar_prices_count(p), 9);
    assert_null(ar_prices_find(p, NULL, "sample_spec"));
    assert_null(ar_prices_find(p, NULL, "bogus-string"));
    assert_null(ar_prices_find(p, NULL, "bogus-prices"));
    assert_null(ar_prices_find(p, NULL, "1024-x-1024/dall-e-2"));

    const ar_price_t *pr = ar_prices_find(p, NULL, "gpt-4o");
    assert_non_null(pr);
    assert_cost(pr->input, 2.5e-06);
    assert_cost(pr->output, 1e-05);
    assert_cost(pr->cache_read, 1.25e-06);
    assert_true(pr->cache_creation < 0);
    assert_true(pr->reasoning < 0);
    assert_int_equal(pr->tiers_cnt, 0); /* _priority and _batches are not tiers */

    pr = ar_prices_find(p, NULL, "claude-3-5-sonnet-20241022");
    assert_non_null(pr);
    assert_cost(pr->cache_creation, 3.75e-06);
    assert_cost(pr->cache_read, 3e-07);
    assert_int_equal(pr->tiers_cnt, 0); /* cache_creation_..._above_1hr is a duration */

    pr = ar_prices_find(p, NULL, "gemini/gemini-2.5-pro");
    assert_non_null(pr);
    assert_int_equal(pr->tiers_cnt, 1); /* ..._above_200k_tokens_priority is another tier */
    assert_int_equal(pr->tiers[0].above_tokens, 200000);
    assert_cost(pr->tiers[0].input, 2.5e-06);
    assert_cost(pr->tiers[0].output, 1.5e-05);
    assert_cost(pr->tiers[0].cache_read, 6.25e-07);
    assert_true(pr->tiers[0].cache_creation < 0);

    pr = ar_prices_find(p, NULL, "gemini/gemini-2.5-flash-preview-04-17");
    assert_non_null(pr);
    assert_cost(pr->reasoning, 3.5e-06);

    /* one unusable rate is ignored, the entry kept */
    pr = ar_prices_find(p, NULL, "partly-bad");
    assert_non_null(pr);
    assert_cost(pr->input, 1e-06);
    assert_true(pr->cache_read < 0);
    assert_true(pr->reasoning < 0);

    pr = ar_prices_find(p, NULL, "text-embedding-3-small");
    assert_non_null(pr);
    assert_cost(pr->output, 0);
    ar_prices_unref(p);
}

static void test_parse_tiers_sorted_and_capped(void **state)
{
    (void)state;
    static const char json[] = "{\"m\":{\"input_cost_per_token\":1e-6,"
                               "\"input_cost_per_token_above_500k_tokens\":5e-6,"
                               "\"output_cost_per_token_above_128k_tokens\":2e-6,"
                               "\"input_cost_per_token_above_200k_tokens\":3e-6,"
                               "\"input_cost_per_token_above_128k_tokens\":2e-6,"
                               "\"input_cost_per_token_above_300k_tokens\":4e-6,"
                               "\"input_cost_per_token_above_900k_tokens\":9e-6,"
                               "\"input_cost_per_token_above_0k_tokens\":7e-6,"
                               "\"input_cost_per_token_above_k_tokens\":7e-6,"
                               "\"input_cost_per_token_above_1m_tokens\":7e-6}}";
    ar_prices_t *p = NULL;
    char err[128];
    assert_int_equal(ar_prices_parse(json, sizeof(json) - 1, &p, err, sizeof(err)), 0);
    const ar_price_t *pr = ar_prices_find(p, NULL, "m");
    assert_non_null(pr);
    /* five thresholds: the first four seen are kept, sorted; bad spellings ignored */
    assert_int_equal(pr->tiers_cnt, AR_PRICE_TIERS_MAX);
    assert_int_equal(pr->tiers[0].above_tokens, 128000);
    assert_int_equal(pr->tiers[1].above_tokens, 200000);
    assert_int_equal(pr->tiers[2].above_tokens, 300000);
    assert_int_equal(pr->tiers[3].above_tokens, 500000);
    assert_cost(pr->tiers[0].output, 2e-6);
    assert_true(pr->tiers[1].output < 0);
    /* the highest tier crossed wins; a rate it lacks comes from the base */
    ar_cost_usage_t u = {.prompt_tokens = 250000, .completion_tokens = 10};
    assert_cost(ar_price_cost(pr, &u), 250000 * 3e-6);
    u.prompt_tokens = 150000;
    assert_cost(ar_price_cost(pr, &u), 150000 * 2e-6 + 10 * 2e-6);
    u.prompt_tokens = 600000;
    assert_cost(ar_price_cost(pr, &u), 600000 * 5e-6);
    ar_prices_unref(p);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[1,2]", "must be a JSON object of model name -> prices, not an array"},
        {"42", "not a scalar"},
        {"\"gpt\"", "not a scalar"},
        {"{\"gpt-4o\":", "price table is not JSON: "},
        {"", "price table is not JSON: "},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ar_prices_t *p = (ar_prices_t *)1;
        char err[256] = "";
        assert_int_equal(
            ar_prices_parse(cases[i].text, strlen(cases[i].text), &p, err, sizeof(err)), AR_EPARSE);
        assert_null(p);
        if (!strstr(err, cases[i].want))
            fail_msg("%s: error \"%s\" lacks \"%s\"", cases[i].text, err, cases[i].want);
    }
    /* an empty object is a valid, empty table; a duplicated name keeps the last */
    ar_prices_t *p = NULL;
    char err[64];
    static const char dup[] =
        "{\"a\":{\"input_cost_per_token\":1},\"a\":{\"input_cost_per_token\":2}}";
    assert_int_equal(ar_prices_parse("{}", 2, &p, err, sizeof(err)), 0);
    assert_int_equal(ar_prices_count(p), 0);
    assert_null(ar_prices_find(p, NULL, "a"));
    ar_prices_unref(p);
    assert_int_equal(ar_prices_parse(dup, sizeof(dup) - 1, &p, err, sizeof(err)), 0);
    assert_cost(ar_prices_find(p, NULL, "a")->input, 2);
    ar_prices_unref(p);
}

/* ---- lookups ---- */

static void test_find(void **state)
{
    (void)state;
    ar_prices_t *p = fixture_table();
    const ar_price_t *plain = ar_prices_find(p, NULL, "gpt-4o-mini");
    const ar_price_t *azure = ar_prices_find(p, NULL, "azure/gpt-4o-mini");
    assert_non_null(plain);
    assert_non_null(azure);
    assert_ptr_not_equal(plain, azure);
    /* the provider's own key first, then the plain name */
    assert_ptr_equal(ar_prices_find(p, "azure", "gpt-4o-mini"), azure);
    assert_ptr_equal(ar_prices_find(p, "openai", "gpt-4o-mini"), plain);
    assert_ptr_equal(ar_prices_find(p, "proxy", "gpt-4o-mini"), plain);
    /* a prefix LiteLLM does not have is dropped, one segment at a time */
    const ar_price_t *gpt4o = ar_prices_find(p, NULL, "gpt-4o");
    assert_ptr_equal(ar_prices_find(p, NULL, "openai/gpt-4o"), gpt4o);
    assert_ptr_equal(ar_prices_find(p, "azure", "openrouter/openai/gpt-4o"), gpt4o);
    const ar_price_t *claude = ar_prices_find(p, NULL, "claude-3-5-sonnet-20241022");
    assert_ptr_equal(ar_prices_find(p, "anthropic", "anthropic/claude-3-5-sonnet-20241022"),
                     claude);
    assert_ptr_equal(ar_prices_find(p, NULL, "bedrock/anthropic/claude-3-5-sonnet-20241022"),
                     claude);
    /* LiteLLM keys some models only as "gemini/..." */
    const ar_price_t *pro = ar_prices_find(p, NULL, "gemini/gemini-2.5-pro");
    assert_ptr_equal(ar_prices_find(p, "gemini", "gemini-2.5-pro"), pro);
    assert_ptr_equal(ar_prices_find(p, "vertex-ai", "gemini-2.5-pro"), pro);
    assert_ptr_equal(ar_prices_find(p, NULL, "gemini-2.5-pro"), pro);
    assert_non_null(ar_prices_find(p, "vertex-ai", "gemini-1.5-pro"));
    /* unknown */
    assert_null(ar_prices_find(p, "openai", "gpt-9"));
    assert_null(ar_prices_find(p, NULL, "openai/gpt-9"));
    assert_null(ar_prices_find(p, NULL, ""));
    assert_null(ar_prices_find(p, NULL, NULL));
    assert_null(ar_prices_find(p, NULL, "/"));
    assert_null(ar_prices_find(p, NULL, "gpt-4o/"));
    assert_null(ar_prices_find(p, NULL, "GPT-4O")); /* names are exact */
    assert_null(ar_prices_find(NULL, NULL, "gpt-4o"));
    /* a reference keeps the table alive */
    ar_prices_ref(p);
    ar_prices_unref(p);
    assert_ptr_equal(ar_prices_find(p, NULL, "gpt-4o"), gpt4o);
    ar_prices_unref(p);
    ar_prices_unref(NULL);
}

/* ---- cost ---- */

static void test_cost(void **state)
{
    (void)state;
    ar_prices_t *p = fixture_table();
    const ar_price_t *gpt4o = ar_prices_find(p, NULL, "gpt-4o");
    /* plain */
    ar_cost_usage_t u = {.prompt_tokens = 1000, .completion_tokens = 200};
    assert_cost(ar_price_cost(gpt4o, &u), 1000 * 2.5e-06 + 200 * 1e-05);
    /* cached prompt tokens at the cache-read rate */
    u.cached_tokens = 400;
    assert_cost(ar_price_cost(gpt4o, &u), 600 * 2.5e-06 + 400 * 1.25e-06 + 200 * 1e-05);
    /* no reasoning rate: reasoning tokens are output tokens like the rest */
    u.reasoning_tokens = 150;
    assert_cost(ar_price_cost(gpt4o, &u), 600 * 2.5e-06 + 400 * 1.25e-06 + 200 * 1e-05);
    /* no cache-creation rate: written tokens cost the input rate */
    u = (ar_cost_usage_t){.prompt_tokens = 1000, .cache_creation_tokens = 300};
    assert_cost(ar_price_cost(gpt4o, &u), 1000 * 2.5e-06);

    /* Anthropic: cache reads and cache writes each at their own rate */
    const ar_price_t *claude = ar_prices_find(p, "anthropic", "claude-3-5-sonnet-20241022");
    u = (ar_cost_usage_t){.prompt_tokens = 1000,
                          .cached_tokens = 500,
                          .cache_creation_tokens = 400,
                          .completion_tokens = 50};
    assert_cost(ar_price_cost(claude, &u),
                100 * 3e-06 + 500 * 3e-07 + 400 * 3.75e-06 + 50 * 1.5e-05);

    /* a reasoning rate: the thinking part of the completion at that rate */
    const ar_price_t *flash = ar_prices_find(p, "gemini", "gemini-2.5-flash-preview-04-17");
    u = (ar_cost_usage_t){.prompt_tokens = 100, .completion_tokens = 1000, .reasoning_tokens = 800};
    assert_cost(ar_price_cost(flash, &u), 100 * 1.5e-07 + 200 * 6e-07 + 800 * 3.5e-06);

    /* embeddings: input only */
    u = (ar_cost_usage_t){.prompt_tokens = 5000};
    assert_cost(ar_price_cost(ar_prices_find(p, NULL, "text-embedding-3-small"), &u), 5000 * 2e-08);

    /* unusable rates fall back to the plain ones */
    u = (ar_cost_usage_t){
        .prompt_tokens = 100, .cached_tokens = 50, .completion_tokens = 10, .reasoning_tokens = 5};
    assert_cost(ar_price_cost(ar_prices_find(p, NULL, "partly-bad"), &u), 100 * 1e-06 + 10 * 2e-06);

    /* counts that do not add up are clamped, never negative */
    u = (ar_cost_usage_t){.prompt_tokens = 10, .cached_tokens = 50, .cache_creation_tokens = 9};
    assert_cost(ar_price_cost(gpt4o, &u), 10 * 1.25e-06);
    u = (ar_cost_usage_t){.prompt_tokens = -5, .completion_tokens = -1, .cached_tokens = -3};
    assert_cost(ar_price_cost(gpt4o, &u), 0);
    u = (ar_cost_usage_t){.completion_tokens = 10, .reasoning_tokens = 99};
    assert_cost(ar_price_cost(flash, &u), 10 * 3.5e-06);
    assert_cost(ar_price_cost(NULL, &u), 0);
    ar_prices_unref(p);
}

static void test_cost_tiers(void **state)
{
    (void)state;
    ar_prices_t *p = fixture_table();
    /* Gemini 1.5 Pro: at 128k prompt tokens still the base price... */
    const ar_price_t *g15 = ar_prices_find(p, "vertex-ai", "gemini-1.5-pro");
    ar_cost_usage_t u = {.prompt_tokens = 128000, .completion_tokens = 1000};
    assert_cost(ar_price_cost(g15, &u), 128000 * 1.25e-06 + 1000 * 5e-06);
    /* ...one more and the whole request, output included, moves to the tier */
    u.prompt_tokens = 128001;
    assert_cost(ar_price_cost(g15, &u), 128001 * 2.5e-06 + 1000 * 1e-05);

    /* Gemini 2.5 Pro above 200k: cached tokens at the tier's cache-read rate */
    const ar_price_t *g25 = ar_prices_find(p, "gemini", "gemini-2.5-pro");
    u = (ar_cost_usage_t){
        .prompt_tokens = 300000, .cached_tokens = 100000, .completion_tokens = 1000};
    assert_cost(ar_price_cost(g25, &u), 200000 * 2.5e-06 + 100000 * 6.25e-07 + 1000 * 1.5e-05);
    u.prompt_tokens = 150000;
    assert_cost(ar_price_cost(g25, &u), 50000 * 1.25e-06 + 100000 * 3.125e-07 + 1000 * 1e-05);
    ar_prices_unref(p);
}

static void test_config_price(void **state)
{
    (void)state;
    ar_price_t pr = {.input = 42};
    assert_false(ar_price_from_config(-1, 1e-06, &pr));
    assert_false(ar_price_from_config(1e-06, -1, &pr));
    assert_false(ar_price_from_config(NAN, 1e-06, &pr));
    assert_cost(pr.input, 42); /* untouched */
    assert_true(ar_price_from_config(1e-06, 2e-06, &pr));
    assert_int_equal(pr.tiers_cnt, 0);
    /* the flat config prices: cached and reasoning tokens cost the same as the others */
    ar_cost_usage_t u = {.prompt_tokens = 1000,
                         .cached_tokens = 600,
                         .cache_creation_tokens = 100,
                         .completion_tokens = 300,
                         .reasoning_tokens = 200};
    assert_cost(ar_price_cost(&pr, &u), 1000 * 1e-06 + 300 * 2e-06);
    assert_true(ar_price_from_config(0, 0, &pr));
    assert_cost(ar_price_cost(&pr, &u), 0);
}

/* ---- loading from files ---- */

static char dir[64];

static int setup_dir(void **state)
{
    (void)state;
    char url[200];
    ar_test_store_dir("ar-prices", dir, url);
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    ar_test_rmdir(dir);
    return 0;
}

static void write_text(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static bool same_file_text(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char *buf = malloc(n + 1);
    size_t got = fread(buf, 1, n + 1, f);
    fclose(f);
    bool same = got == n && memcmp(buf, text, n) == 0;
    free(buf);
    return same;
}

static void test_load_file_and_cache(void **state)
{
    (void)state;
    char link[128], cache[128], err[512];
    snprintf(link, sizeof(link), "%s/prices.json", dir);
    snprintf(cache, sizeof(cache), "%s/prices.cache.json", dir);
    size_t n;
    char *text = ar_test_fixture(FIXTURE, &n);
    write_text(link, text, n);

    /* a good link: loaded, and its text kept as the cached copy */
    ar_prices_t *p = NULL;
    assert_int_equal(ar_prices_load(link, cache, &p, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(ar_prices_count(p), 9);
    assert_true(same_file_text(cache, text, n));
    ar_prices_unref(p);

    /* a cache that cannot be written: the table all the same, and a warning */
    char nocache[160];
    snprintf(nocache, sizeof(nocache), "%s/no-such-dir/cache.json", dir);
    assert_int_equal(ar_prices_load(link, nocache, &p, err, sizeof(err)), 0);
    assert_int_equal(ar_prices_count(p), 9);
    assert_non_null(strstr(err, "not written"));
    ar_prices_unref(p);

    /* file:// spelling */
    char flink[160];
    snprintf(flink, sizeof(flink), "file://%s", link);
    assert_int_equal(ar_prices_load(flink, NULL, &p, err, sizeof(err)), 0);
    assert_int_equal(ar_prices_count(p), 9);
    ar_prices_unref(p);

    /* the link gone: the cached copy, and err says why */
    assert_int_equal(unlink(link), 0);
    assert_int_equal(ar_prices_load(link, cache, &p, err, sizeof(err)), AR_PRICES_FROM_CACHE);
    assert_non_null(p);
    assert_int_equal(ar_prices_count(p), 9);
    assert_non_null(strstr(err, "No such file or directory"));
    assert_non_null(strstr(err, "using the cached copy"));
    ar_prices_unref(p);

    /* the link is not an object: a clear error, and still the cached copy */
    write_text(link, "[\"gpt-4o\"]", 10);
    assert_int_equal(ar_prices_load(link, NULL, &p, err, sizeof(err)), AR_EPARSE);
    assert_null(p);
    assert_non_null(strstr(err, "must be a JSON object"));
    assert_int_equal(ar_prices_load(link, cache, &p, err, sizeof(err)), AR_PRICES_FROM_CACHE);
    assert_non_null(strstr(err, "must be a JSON object"));
    ar_prices_unref(p);
    assert_true(same_file_text(cache, text, n)); /* a bad table never replaces the copy */

    /* neither works */
    assert_int_equal(unlink(cache), 0);
    assert_int_equal(unlink(link), 0);
    assert_int_equal(ar_prices_load(link, cache, &p, err, sizeof(err)), AR_ENOTFOUND);
    assert_null(p);
    assert_non_null(strstr(err, "no cached copy"));
    write_text(cache, "{oops", 5);
    assert_int_equal(ar_prices_load(link, cache, &p, err, sizeof(err)), AR_ENOTFOUND);
    assert_non_null(strstr(err, "cached copy: price table is not JSON"));
    assert_int_equal(ar_prices_load(dir, NULL, &p, err, sizeof(err)), AR_EIO); /* a directory */
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(ar_prices_load("", NULL, &p, err, sizeof(err)), AR_EINVAL);
    assert_int_equal(ar_prices_load(NULL, cache, &p, err, sizeof(err)), AR_EINVAL);
    free(text);
}

/* ---- loading over HTTP: a one-connection server on a thread ---- */

typedef struct srv {
    int lfd, port;
    const char *head; /* status line and headers, or NULL: never answer */
    const char *body;
    size_t body_len;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool got_request;
    char path[64];
} srv_t;

static void *serve(void *arg)
{
    srv_t *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char req[4096];
    size_t n = 0;
    while (n < sizeof(req) - 1) {
        ssize_t r = read(fd, req + n, sizeof(req) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[n] = '\0';
    pthread_mutex_lock(&s->mu);
    sscanf(req, "GET %63s", s->path);
    s->got_request = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    if (s->head) {
        char h[256];
        int hl = snprintf(h, sizeof(h), "%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                          s->head, s->body_len);
        if (write(fd, h, (size_t)hl) == hl && s->body_len)
            (void)!write(fd, s->body, s->body_len);
    } else {
        while (read(fd, req, sizeof(req)) > 0) /* until the client gives up */
            ;
    }
    close(fd);
    return NULL;
}

static void srv_start(srv_t *s, const char *head, const char *body, size_t body_len)
{
    memset(s, 0, sizeof(*s));
    s->head = head;
    s->body = body;
    s->body_len = body_len;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void srv_wait_request(srv_t *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->got_request)
        pthread_cond_wait(&s->cond, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void srv_stop(srv_t *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
}

static void test_load_http(void **state)
{
    (void)state;
    char url[128], cache[128], err[512];
    size_t n;
    char *text = ar_test_fixture(FIXTURE, &n);
    snprintf(cache, sizeof(cache), "%s/http.cache.json", dir);

    srv_t s;
    srv_start(&s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", text, n);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/prices.json?token=secret", s.port);
    ar_prices_t *p = NULL;
    assert_int_equal(ar_prices_load(url, cache, &p, err, sizeof(err)), 0);
    srv_stop(&s);
    assert_string_equal(s.path, "/prices.json?token=secret");
    assert_int_equal(ar_prices_count(p), 9);
    assert_true(same_file_text(cache, text, n));
    ar_prices_unref(p);

    /* an error status: the cached copy; the URL (and its token) stays out of err */
    srv_start(&s, "HTTP/1.1 404 Not Found\r\n", "nope", 4);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/prices.json?token=secret", s.port);
    assert_int_equal(ar_prices_load(url, cache, &p, err, sizeof(err)), AR_PRICES_FROM_CACHE);
    srv_stop(&s);
    assert_non_null(strstr(err, "HTTP status 404"));
    assert_null(strstr(err, "secret"));
    assert_int_equal(ar_prices_count(p), 9);
    ar_prices_unref(p);

    /* a 200 that is not a table: not cached, an error */
    srv_start(&s, "HTTP/1.1 200 OK\r\n", "<html>", 6);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    assert_int_equal(ar_prices_load(url, NULL, &p, err, sizeof(err)), AR_EPARSE);
    srv_stop(&s);
    assert_non_null(strstr(err, "price table is not JSON"));
    assert_true(same_file_text(cache, text, n));

    /* nobody listening: a connection error, no URL in it */
    int port = s.port; /* closed by srv_stop */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/?token=secret", port);
    assert_int_equal(ar_prices_load(url, NULL, &p, err, sizeof(err)), AR_EIO);
    assert_non_null(strstr(err, "price table download: "));
    assert_null(strstr(err, "secret"));
    free(text);
}

/* ---- the loader thread ---- */

typedef struct result {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int calls;
    int rc;
    ar_prices_t *p;
    char err[512];
} result_t;

static void on_loaded(void *ud, int rc, ar_prices_t *p, const char *err)
{
    result_t *r = ud;
    pthread_mutex_lock(&r->mu);
    r->calls++;
    r->rc = rc;
    r->p = p;
    snprintf(r->err, sizeof(r->err), "%s", err);
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void test_loader_thread(void **state)
{
    (void)state;
    result_t r = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    char link[128], cache[128];
    snprintf(link, sizeof(link), "%s/async.json", dir);
    snprintf(cache, sizeof(cache), "%s/async.cache.json", dir);
    size_t n;
    char *text = ar_test_fixture(FIXTURE, &n);
    write_text(link, text, n);
    free(text);

    ar_prices_loader_t *l = NULL;
    assert_int_equal(ar_prices_load_start(link, cache, on_loaded, &r, &l), 0);
    pthread_mutex_lock(&r.mu);
    while (!r.calls)
        pthread_cond_wait(&r.cond, &r.mu);
    pthread_mutex_unlock(&r.mu);
    ar_prices_load_stop(l);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(ar_prices_count(r.p), 9);
    ar_prices_unref(r.p);

    /* a missing file: done still runs once, with the error */
    r.calls = 0;
    snprintf(link, sizeof(link), "%s/missing.json", dir);
    assert_int_equal(ar_prices_load_start(link, NULL, on_loaded, &r, &l), 0);
    ar_prices_load_stop(l); /* joins: done has run */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, AR_ENOTFOUND);
    assert_null(r.p);
    assert_non_null(strstr(r.err, "missing.json"));

    /* refused starts never call done */
    assert_int_equal(ar_prices_load_start("", NULL, on_loaded, &r, &l), AR_EINVAL);
    assert_null(l);
    assert_int_equal(ar_prices_load_start(link, NULL, NULL, &r, &l), AR_EINVAL);
    ar_prices_load_stop(NULL);
}

static void test_loader_cancel(void **state)
{
    (void)state;
    result_t r = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    srv_t s;
    srv_start(&s, NULL, NULL, 0); /* accepts, never answers */
    char url[128], cache[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", s.port);
    snprintf(cache, sizeof(cache), "%s/http.cache.json", dir);
    ar_prices_loader_t *l = NULL;
    assert_int_equal(ar_prices_load_start(url, cache, on_loaded, &r, &l), 0);
    srv_wait_request(&s);
    ar_prices_load_stop(l); /* well before the 30 s timeout */
    srv_stop(&s);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, AR_ECANCELED);
    assert_null(r.p);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fixture), cmocka_unit_test(test_parse_tiers_sorted_and_capped),
        cmocka_unit_test(test_parse_errors),  cmocka_unit_test(test_find),
        cmocka_unit_test(test_cost),          cmocka_unit_test(test_cost_tiers),
        cmocka_unit_test(test_config_price),  cmocka_unit_test(test_load_file_and_cache),
        cmocka_unit_test(test_load_http),     cmocka_unit_test(test_loader_thread),
        cmocka_unit_test(test_loader_cancel),
    };
    int rc = cmocka_run_group_tests(tests, setup_dir, teardown_dir);
    curl_global_cleanup();
    return rc;
}
