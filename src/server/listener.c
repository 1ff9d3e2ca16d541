/*
 * listener.c: worker threads. Each worker owns a libuv loop, an SO_REUSEPORT listening
 * socket (the kernel spreads connections over them) and an async handle through which
 * other threads post work to it. Workers start one after another so that port 0 resolves
 * to one port that every later worker binds too; a port another process serves is refused
 * before any of them starts (probe_port). Also here: the fd limit behind max_connections.
 * Nothing here touches a connection's bytes; that is conn.c.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/server_int.h"

uint64_t ar_server__max_body(const ar_server_t *srv)
{
    return atomic_load_explicit(&srv->max_body_bytes, memory_order_relaxed);
}

int64_t ar_server__idle_ms(const ar_server_t *srv)
{
    return atomic_load_explicit(&srv->idle_timeout_ms, memory_order_relaxed);
}

int64_t ar_server__write_ms(const ar_server_t *srv)
{
    return atomic_load_explicit(&srv->write_timeout_ms, memory_order_relaxed);
}

int64_t ar_server__header_ms(const ar_server_t *srv)
{
    return atomic_load_explicit(&srv->header_timeout_ms, memory_order_relaxed);
}

/* Each worker's accept queue: a burst of new connections waits there, not in SYN retries a
 * second apart (the kernel caps it at net.core.somaxconn). */
#define LISTEN_BACKLOG 4096
/* fds kept apart from client connections: listeners, loops, logs, the store. */
#define FD_RESERVE 64
/* The most fds the soft RLIMIT_NOFILE is raised to (an unlimited hard limit included). */
#define NOFILE_CAP ((rlim_t)1 << 20)

/* Raises the soft fd limit to the hard one (at most NOFILE_CAP): a server wants every fd
 * it is allowed, and max_connections 0 is sized from the result. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want =
        rl.rlim_max == RLIM_INFINITY || rl.rlim_max > NOFILE_CAP ? NOFILE_CAP : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            AR_LOG(AR_LOG_DEBUG, NULL, "cannot raise RLIMIT_NOFILE: %s", strerror(errno));
    }
}

/* max_connections as configured -> the limit in force (-1: unlimited); see server.h. */
static long resolve_max_conns(int64_t v)
{
    if (v < 0)
        return -1;
    if (v > 0)
        return v > LONG_MAX ? LONG_MAX : (long)v;
    struct rlimit rl;
    rlim_t n = NOFILE_CAP;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < n)
        n = rl.rlim_cur;
    long m = n > FD_RESERVE ? (long)(n - FD_RESERVE) / 2 : 0;
    return m < 16 ? 16 : m;
}

long ar_server__max_conns(const ar_server_t *srv)
{
    return atomic_load_explicit(&srv->max_conns, memory_order_relaxed);
}

void ar_server_connections(const ar_server_t *srv, long *open, long *max)
{
    *open = atomic_load_explicit(&srv->conns_open, memory_order_relaxed);
    *max = ar_server__max_conns(srv);
}

ar_pool_t *ar_server__pool_get(worker_impl_t *w)
{
    if (w->pool_cache_cnt)
        return w->pool_cache[--w->pool_cache_cnt];
    return ar_pool_create(POOL_BLOCK_BYTES);
}

void ar_server__pool_put(worker_impl_t *w, ar_pool_t *pool)
{
    if (w->pool_cache_cnt < POOL_CACHE_MAX && !w->stopping) {
        ar_pool_reset(pool);
        w->pool_cache[w->pool_cache_cnt++] = pool;
        return;
    }
    ar_pool_destroy(pool);
}

ar_server_t *ar_server_create(const ar_server_opts_t *opts, const ar_server_cbs_t *cbs)
{
    ar_server_t *srv = ar_xcalloc(1, sizeof(*srv));
    srv->opts = *opts;
    srv->host = ar_xstrdup(opts->host ? opts->host : "0.0.0.0");
    srv->opts.host = srv->host;
    srv->cbs = *cbs;
    atomic_init(&srv->max_body_bytes, opts->max_body_bytes);
    atomic_init(&srv->idle_timeout_ms, opts->idle_timeout_ms);
    atomic_init(&srv->write_timeout_ms, opts->write_timeout_ms);
    atomic_init(&srv->header_timeout_ms, opts->header_timeout_ms);
    atomic_init(&srv->max_conns, resolve_max_conns(opts->max_connections));
    int n = opts->workers;
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int)cpus : 1;
    }
    srv->nworkers = n;
    srv->workers = ar_xcalloc((size_t)n, sizeof(worker_impl_t));
    pthread_mutex_init(&srv->start_mu, NULL);
    pthread_cond_init(&srv->start_cond, NULL);
    return srv;
}

void ar_server_set_limits(ar_server_t *srv, const ar_server_opts_t *opts)
{
    atomic_store(&srv->max_body_bytes, opts->max_body_bytes);
    atomic_store(&srv->idle_timeout_ms, opts->idle_timeout_ms);
    atomic_store(&srv->write_timeout_ms, opts->write_timeout_ms);
    atomic_store(&srv->header_timeout_ms, opts->header_timeout_ms);
    atomic_store(&srv->max_conns, resolve_max_conns(opts->max_connections));
}

/*
 * Opens a socket bound to host:port with SO_REUSEADDR and, when reuseport, SO_REUSEPORT.
 * @return fd or -errno, with a message naming host:port in err.
 */
static int bind_socket(const char *host, int port, bool reuseport, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", host, gai_strerror(gai));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        freeaddrinfo(res);
        snprintf(err, errlen, "socket: %s", strerror(e));
        return -e;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        int e = errno;
        freeaddrinfo(res);
        close(fd);
        if (e == EADDRINUSE)
            snprintf(err, errlen,
                     "cannot listen on %s:%d: address already in use (another airouter or "
                     "another program is listening there)",
                     host, port);
        else
            snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(e));
        return -e;
    }
    freeaddrinfo(res);
    return fd;
}

/*
 * One port, one instance. The workers' listeners use SO_REUSEPORT so that the kernel
 * spreads connections over them, but SO_REUSEPORT would also let a second airouter (any
 * config, same user) bind a port another one serves and silently take half its
 * connections. So before the workers bind, the port is probed with a socket without
 * SO_REUSEPORT (with SO_REUSEADDR, so that a previous instance's TIME_WAIT leftovers do
 * not block a restart): Linux refuses that bind while any socket listens on the port,
 * whatever that socket's options. The probe is closed again before the first worker
 * binds, because its bind would otherwise conflict with the workers' own. That leaves a
 * window of the time between the probe and the first worker's listen (well under a
 * millisecond) in which a second instance started at the same instant could pass its own
 * probe too; a running instance is always seen. Port 0 needs no probe: it resolves to a
 * port nobody listens on.
 */
static int probe_port(const char *host, int port, char *err, size_t errlen)
{
    if (port == 0)
        return 0;
    int fd = bind_socket(host, port, false, err, errlen);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

/* Opens a listening socket with SO_REUSEPORT on host:port. @return fd or -errno. */
static int open_listener(const char *host, int port, int *bound_port, char *err, size_t errlen)
{
    int fd = bind_socket(host, port, true, err, errlen);
    if (fd < 0)
        return fd;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

static void run_posts(worker_impl_t *w)
{
    pthread_mutex_lock(&w->post_mu);
    post_item_t *list = w->posts;
    w->posts = NULL;
    pthread_mutex_unlock(&w->post_mu);
    /* the list is newest first; run oldest first */
    post_item_t *rev = NULL;
    while (list) {
        post_item_t *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        post_item_t *next = rev->next;
        rev->fn(&w->pub, rev->arg);
        ar_free(rev);
        rev = next;
    }
}

static void on_async(uv_async_t *h)
{
    run_posts(h->data);
}

void ar_worker_post(ar_worker_t *pw, void (*fn)(ar_worker_t *w, void *arg), void *arg)
{
    worker_impl_t *w = worker_impl(pw);
    post_item_t *it = ar_xmalloc(sizeof(*it));
    it->fn = fn;
    it->arg = arg;
    pthread_mutex_lock(&w->post_mu);
    if (w->stopped) {
        pthread_mutex_unlock(&w->post_mu);
        ar_free(it);
        return;
    }
    it->next = w->posts;
    w->posts = it;
    uv_async_send(&w->async);
    pthread_mutex_unlock(&w->post_mu);
}

bool ar_worker_draining(const ar_worker_t *pw)
{
    return ((const worker_impl_t *)pw)->draining;
}

static void report_start(ar_server_t *srv, int rc, const char *err)
{
    pthread_mutex_lock(&srv->start_mu);
    if (rc && !srv->start_rc) {
        srv->start_rc = rc;
        snprintf(srv->start_err, sizeof(srv->start_err), "%s", err);
    }
    srv->started++;
    pthread_cond_signal(&srv->start_cond);
    pthread_mutex_unlock(&srv->start_mu);
}

static void *worker_main(void *arg)
{
    worker_impl_t *w = arg;
    ar_server_t *srv = w->pub.server;
    char err[256] = "";
    int rc = 0;
    char name[16]; /* what top -H, perf and the bench's per-worker shares show */
    snprintf(name, sizeof(name), "ar-worker-%d", w->pub.id);
    pthread_setname_np(pthread_self(), name);
    uv_loop_init(&w->loop);
    w->pub.loop = &w->loop;
    uv_async_init(&w->loop, &w->async, on_async);
    w->async.data = w;
    ar_list_init(&w->conns);
    w->read_buf = ar_xmalloc(READ_BUF_BYTES);
    if (ar_random_bytes(&w->rid_prefix, sizeof(w->rid_prefix)) != 0)
        w->rid_prefix = ar_rand_u64();

    int port = srv->bound_port ? srv->bound_port : srv->opts.port;
    int bound = port;
    int fd = open_listener(srv->host, port, &bound, err, sizeof(err));
    if (fd < 0) {
        rc = AR_EIO;
        goto fail;
    }
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    int uvrc = uv_tcp_open(&w->listener, fd);
    if (uvrc == 0)
        uvrc = uv_listen((uv_stream_t *)&w->listener, LISTEN_BACKLOG, ar_server__on_connection);
    w->listening = true;
    if (uvrc != 0) {
        snprintf(err, sizeof(err), "listen: %s", uv_strerror(uvrc));
        rc = AR_EIO;
        goto fail;
    }
    if (!srv->bound_port)
        srv->bound_port = bound;
    if (srv->cbs.worker_init) {
        rc = srv->cbs.worker_init(&w->pub, srv->cbs.ud);
        if (rc) {
            snprintf(err, sizeof(err), "worker %d failed to initialise: %s", w->pub.id,
                     ar_err_message(rc));
            goto fail;
        }
    }
    report_start(srv, 0, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    goto done;

fail:
    report_start(srv, rc, err);
    if (w->listening)
        uv_close((uv_handle_t *)&w->listener, NULL);
    w->listening = false;
    pthread_mutex_lock(&w->post_mu);
    w->stopped = true;
    pthread_mutex_unlock(&w->post_mu);
    uv_close((uv_handle_t *)&w->async, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
done:
    run_posts(w); /* frees posts that raced with the stop */
    if (uv_loop_close(&w->loop) != 0)
        AR_LOG(AR_LOG_ERROR, NULL, "worker %d: handles left open at exit", w->pub.id);
    for (size_t i = 0; i < w->pool_cache_cnt; i++)
        ar_pool_destroy(w->pool_cache[i]);
    w->pool_cache_cnt = 0;
    ar_free(w->read_buf);
    return NULL;
}

int ar_server_start(ar_server_t *srv, char *err, size_t errlen)
{
    raise_nofile();
    atomic_store(&srv->max_conns, resolve_max_conns(srv->opts.max_connections));
    if (probe_port(srv->host, srv->opts.port, err, errlen) != 0) {
        srv->nworkers = 0; /* none started: ar_server_stop has nothing to join */
        return AR_EIO;
    }
    for (int i = 0; i < srv->nworkers; i++) {
        worker_impl_t *w = &srv->workers[i];
        w->pub.id = i;
        w->pub.server = srv;
        pthread_mutex_init(&w->post_mu, NULL);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            srv->nworkers = i;
            return AR_EIO;
        }
        /* Start the next worker only once this one listens: port 0 must resolve once. */
        pthread_mutex_lock(&srv->start_mu);
        while (srv->started <= i)
            pthread_cond_wait(&srv->start_cond, &srv->start_mu);
        int rc = srv->start_rc;
        pthread_mutex_unlock(&srv->start_mu);
        if (rc) {
            snprintf(err, errlen, "%s", srv->start_err);
            srv->nworkers = i + 1;
            return rc;
        }
    }
    return 0;
}

int ar_server_port(const ar_server_t *srv)
{
    return srv->bound_port;
}

int ar_server_worker_cnt(const ar_server_t *srv)
{
    return srv->nworkers;
}

ar_worker_t *ar_server_worker(ar_server_t *srv, int i)
{
    return &srv->workers[i].pub;
}

static void close_listener(worker_impl_t *w)
{
    if (w->listening) {
        w->listening = false;
        uv_close((uv_handle_t *)&w->listener, NULL);
    }
}

static void do_drain(ar_worker_t *pw, void *arg)
{
    (void)arg;
    worker_impl_t *w = worker_impl(pw);
    if (w->draining)
        return;
    w->draining = true;
    close_listener(w);
    ar_server_t *srv = pw->server;
    if (srv->cbs.worker_drain)
        srv->cbs.worker_drain(pw, srv->cbs.ud);
    /* Open connections stay open: SPEC section 9 answers a request arriving on one with
     * 503 (and Connection: close); what is left is closed by ar_server_stop. */
    ar_list_t *pos, *tmp;
    ar_list_foreach_safe (pos, tmp, &w->conns) {
        ar_conn_t *c = ar_container_of(pos, ar_conn_t, link);
        if (c->processing || c->request_started || c->wq_bytes)
            c->close_after_write = true;
    }
}

void ar_server_drain(ar_server_t *srv)
{
    for (int i = 0; i < srv->nworkers; i++)
        ar_worker_post(&srv->workers[i].pub, do_drain, NULL);
}

long ar_server_in_flight(const ar_server_t *srv)
{
    long n = 0;
    for (int i = 0; i < srv->nworkers; i++)
        n += atomic_load(&srv->workers[i].in_flight);
    return n;
}

static void do_cancel(ar_worker_t *pw, void *arg)
{
    (void)arg;
    worker_impl_t *w = worker_impl(pw);
    ar_list_t *pos, *tmp;
    ar_list_foreach_safe (pos, tmp, &w->conns) {
        ar_conn_t *c = ar_container_of(pos, ar_conn_t, link);
        if (c->processing && c->req)
            ar_server__request_abort(c->req, AR_ESHUTDOWN);
    }
}

void ar_server_cancel_all(ar_server_t *srv)
{
    for (int i = 0; i < srv->nworkers; i++)
        ar_worker_post(&srv->workers[i].pub, do_cancel, NULL);
}

static void do_stop(ar_worker_t *pw, void *arg)
{
    (void)arg;
    worker_impl_t *w = worker_impl(pw);
    w->stopping = true;
    w->draining = true;
    close_listener(w);
    ar_list_t *pos, *tmp;
    ar_list_foreach_safe (pos, tmp, &w->conns) {
        ar_server__conn_close(ar_container_of(pos, ar_conn_t, link));
    }
    ar_server_t *srv = pw->server;
    if (srv->cbs.worker_dispose)
        srv->cbs.worker_dispose(pw, srv->cbs.ud);
    pthread_mutex_lock(&w->post_mu);
    w->stopped = true;
    pthread_mutex_unlock(&w->post_mu);
    uv_close((uv_handle_t *)&w->async, NULL);
}

void ar_server_stop(ar_server_t *srv)
{
    for (int i = 0; i < srv->nworkers; i++)
        ar_worker_post(&srv->workers[i].pub, do_stop, NULL);
    for (int i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i].thread, NULL);
}

void ar_server_destroy(ar_server_t *srv)
{
    if (!srv)
        return;
    for (int i = 0; i < srv->nworkers; i++)
        pthread_mutex_destroy(&srv->workers[i].post_mu);
    pthread_mutex_destroy(&srv->start_mu);
    pthread_cond_destroy(&srv->start_cond);
    ar_free(srv->workers);
    ar_free(srv->host);
    ar_free(srv);
}

const char *ar_server_uv_version(void)
{
    return uv_version_string();
}

/* Two expansions, so that the macros' values are turned into text, not their names. */
#define AR_STR_(x) #x
#define AR_STR(x) AR_STR_(x)

const char *ar_server_llhttp_version(void)
{
    return AR_STR(LLHTTP_VERSION_MAJOR) "." AR_STR(LLHTTP_VERSION_MINOR) "." AR_STR(
        LLHTTP_VERSION_PATCH);
}
