/*
 * prices_load.c: getting the price table's text: from a file or an http(s) URL (libcurl's
 * easy API, blocking), keeping the last good copy in a cache file (written atomically) and
 * falling back to it when the link fails, and a one-shot loader thread so that none of
 * this runs on an event loop. Parsing is prices.c's job.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "tenant/prices.h"

/* ---- reading ---- */

static int read_file(const char *path, ar_buf_t *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT ? AR_ENOTFOUND : AR_EIO;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        rc = AR_EIO;
    } else if ((uint64_t)st.st_size > AR_PRICES_MAX_BYTES) {
        snprintf(err, errlen, "%s: larger than %zu bytes", path, AR_PRICES_MAX_BYTES);
        rc = AR_ETOOBIG;
    }
    char chunk[65536];
    while (!rc) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            rc = AR_EIO;
        } else if (n == 0) {
            break;
        } else if (ar_buf_append(out, chunk, (size_t)n) != 0) {
            snprintf(err, errlen, "%s: larger than %zu bytes", path, AR_PRICES_MAX_BYTES);
            rc = AR_ETOOBIG; /* it grew after fstat */
        }
    }
    close(fd);
    return rc;
}

typedef struct fetch {
    ar_buf_t *body;
    bool too_big;
    const atomic_bool *cancel;
} fetch_t;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    fetch_t *f = ud;
    if (ar_buf_append(f->body, p, size * n) != 0) {
        f->too_big = true; /* decompressed size: MAXFILESIZE only sees the wire's */
        return 0;
    }
    return size * n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const fetch_t *f = ud;
    return f->cancel && atomic_load(f->cancel) ? 1 : 0;
}

/* Error texts name no URL: a link may carry a token in its query. */
static int read_url(const char *url, const atomic_bool *cancel, ar_buf_t *out, char *err,
                    size_t errlen)
{
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "price table download: cannot start libcurl");
        return AR_ENOMEM;
    }
    fetch_t f = {.body = out, .cancel = cancel};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)AR_PRICES_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* a helper thread: no SIGALRM for DNS */
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)AR_PRICES_MAX_BYTES);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "airouter");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &f);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(err, errlen, "price table download: canceled");
        return AR_ECANCELED;
    }
    if (f.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(err, errlen, "price table download: larger than %zu bytes", AR_PRICES_MAX_BYTES);
        return AR_ETOOBIG;
    }
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(err, errlen, "price table download: timed out");
        return AR_ETIMEDOUT;
    }
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "price table download: %s", curl_easy_strerror(cc));
        return AR_EIO;
    }
    if (status != 200) {
        snprintf(err, errlen, "price table download: HTTP status %ld", status);
        return AR_EIO;
    }
    return 0;
}

static bool is_url(const char *link)
{
    return strncmp(link, "http://", 7) == 0 || strncmp(link, "https://", 8) == 0;
}

/* ---- the cached copy ---- */

/* Writes text to path through a temporary file and a rename, so that a reader (or a crash)
 * sees the old copy or the new one, never half of one. */
static int write_cache(const char *path, const ar_buf_t *text, char *err, size_t errlen)
{
    size_t n = strlen(path) + 8;
    char *tmp = ar_xmalloc(n);
    snprintf(tmp, n, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    int rc = fd < 0 ? AR_EIO : 0;
    for (size_t off = 0; !rc && off < text->len;) {
        ssize_t w = write(fd, text->ptr + off, text->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = AR_EIO;
        else
            off += (size_t)w;
    }
    if (!rc && fsync(fd) != 0)
        rc = AR_EIO;
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && !rc) {
        e = errno;
        rc = AR_EIO;
    }
    if (!rc && rename(tmp, path) != 0) {
        e = errno;
        rc = AR_EIO;
    }
    if (rc) {
        snprintf(err, errlen, "price table cache %s not written: %s", path, strerror(e));
        if (fd >= 0)
            unlink(tmp);
    }
    ar_free(tmp);
    return rc;
}

static int load(const char *link, const char *cache_path, const atomic_bool *cancel,
                ar_prices_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    if (!link || !*link) {
        snprintf(err, errlen, "no price table link");
        return AR_EINVAL;
    }
    ar_buf_t text;
    ar_buf_init(&text, AR_PRICES_MAX_BYTES);
    char why[256] = "";
    const char *path = strncmp(link, "file://", 7) == 0 ? link + 7 : link;
    int rc = is_url(link) ? read_url(link, cancel, &text, why, sizeof(why))
                          : read_file(path, &text, why, sizeof(why));
    if (!rc)
        rc = ar_prices_parse(text.ptr ? text.ptr : "", text.len, out, why, sizeof(why));
    if (!rc) {
        if (cache_path && (is_url(link) || strcmp(path, cache_path) != 0))
            (void)write_cache(cache_path, &text, err, errlen); /* a warning, in err */
        ar_buf_dispose(&text);
        return 0;
    }
    ar_buf_dispose(&text);
    if (rc == AR_ECANCELED || !cache_path) {
        snprintf(err, errlen, "%s", why);
        return rc;
    }
    /* the link failed: the last good copy is better than no prices at all */
    char cwhy[256];
    ar_buf_init(&text, AR_PRICES_MAX_BYTES);
    int crc = read_file(cache_path, &text, cwhy, sizeof(cwhy));
    if (!crc)
        crc = ar_prices_parse(text.ptr ? text.ptr : "", text.len, out, cwhy, sizeof(cwhy));
    ar_buf_dispose(&text);
    if (!crc) {
        snprintf(err, errlen, "%s; using the cached copy %s", why, cache_path);
        return AR_PRICES_FROM_CACHE;
    }
    if (crc == AR_ENOTFOUND)
        snprintf(err, errlen, "%s (no cached copy at %s)", why, cache_path);
    else
        snprintf(err, errlen, "%s (cached copy: %s)", why, cwhy);
    return rc;
}

int ar_prices_load(const char *link, const char *cache_path, ar_prices_t **out, char *err,
                   size_t errlen)
{
    return load(link, cache_path, NULL, out, err, errlen);
}

/* ---- the loader thread ---- */

struct ar_prices_loader {
    pthread_t thread;
    atomic_bool cancel;
    char *link, *cache_path;
    ar_prices_done_cb done;
    void *ud;
};

static void *run(void *arg)
{
    ar_prices_loader_t *l = arg;
    ar_prices_t *p = NULL;
    char err[512];
    int rc = load(l->link, l->cache_path, &l->cancel, &p, err, sizeof(err));
    l->done(l->ud, rc, p, err);
    return NULL;
}

int ar_prices_load_start(const char *link, const char *cache_path, ar_prices_done_cb done, void *ud,
                         ar_prices_loader_t **out)
{
    *out = NULL;
    if (!link || !*link || !done)
        return AR_EINVAL;
    ar_prices_loader_t *l = ar_xcalloc(1, sizeof(*l));
    atomic_init(&l->cancel, false);
    l->link = ar_xstrdup(link);
    l->cache_path = cache_path ? ar_xstrdup(cache_path) : NULL;
    l->done = done;
    l->ud = ud;
    if (pthread_create(&l->thread, NULL, run, l) != 0) {
        ar_free(l->link);
        ar_free(l->cache_path);
        ar_free(l);
        return AR_ENOMEM;
    }
    *out = l;
    return 0;
}

void ar_prices_load_stop(ar_prices_loader_t *l)
{
    if (!l)
        return;
    atomic_store(&l->cancel, true);
    pthread_join(l->thread, NULL);
    ar_free(l->link);
    ar_free(l->cache_path);
    ar_free(l);
}
