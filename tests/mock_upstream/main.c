/*
 * main.c: command line, start-up and shutdown of the mock upstream. It parses the options,
 * binds one SO_REUSEPORT listener per worker, writes --port-file atomically (temp file +
 * rename) once every listener is up, runs worker 0's loop on the main thread and the others
 * on their own threads, and on SIGTERM/SIGINT closes every handle and loop so that a run
 * under valgrind ends with nothing leaked.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mock.h"

#define THREADS_MAX 256

static const char *const default_models[] = {"mock-gpt-4o", "mock-gpt-4o-mini",
                                             "text-embedding-3-small"};

static void usage(FILE *f)
{
    fprintf(f, "usage: mock_upstream --port N [--host ADDR] [--threads N] [--port-file PATH]\n"
               "                     [--models a,b,c] [--require-key KEY]... [--no-record]\n"
               "  --port N          port to listen on; 0 picks a free one\n"
               "  --host ADDR       IPv4 or IPv6 address (default 127.0.0.1)\n"
               "  --threads N       event loops, each with its own SO_REUSEPORT listener "
               "(default 1)\n"
               "  --port-file PATH  write the bound port to PATH once listening\n"
               "  --models LIST     model ids listed by GET /v1/models\n"
               "  --require-key K   accept only 'Authorization: Bearer K' (repeatable)\n"
               "  --no-record       do not record requests (GET /_mock/requests stays empty)\n"
               "  --oauth-public-key FILE  PEM key that verifies POST /token JWT grants\n"
               "  --oauth-expires-in N     expires_in of issued tokens (default 3600)\n");
}

static int push_str(char ***arr, size_t *cnt, const char *s, size_t len)
{
    char **p = realloc(*arr, (*cnt + 1) * sizeof(*p));
    if (p == NULL) {
        return -1;
    }
    *arr = p;
    p[*cnt] = strndup(s, len);
    if (p[*cnt] == NULL) {
        return -1;
    }
    (*cnt)++;
    return 0;
}

static void free_strs(char **arr, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        free(arr[i]);
    }
    free(arr);
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* @return 0, 1 for --help, or -1 after printing the problem. */
static int parse_args(int argc, char **argv, mock_opts_t *o)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"host", required_argument, NULL, 'H'},
        {"threads", required_argument, NULL, 't'},
        {"port-file", required_argument, NULL, 'f'},
        {"models", required_argument, NULL, 'm'},
        {"require-key", required_argument, NULL, 'k'},
        {"no-record", no_argument, NULL, 'n'},
        {"oauth-public-key", required_argument, NULL, 'O'},
        {"oauth-expires-in", required_argument, NULL, 'E'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int have_port = 0;
    int models_given = 0;
    long v;

    o->host = "127.0.0.1";
    o->threads = 1;
    o->record = 1;
    for (;;) {
        int ch = getopt_long(argc, argv, "", longopts, NULL);
        if (ch == -1) {
            break;
        }
        switch (ch) {
        case 'p':
            if (parse_int(optarg, 0, 65535, &v) != 0) {
                fprintf(stderr, "mock_upstream: bad --port %s\n", optarg);
                return -1;
            }
            o->port = (int)v;
            have_port = 1;
            break;
        case 'H': o->host = optarg; break;
        case 't':
            if (parse_int(optarg, 1, THREADS_MAX, &v) != 0) {
                fprintf(stderr, "mock_upstream: bad --threads %s (1..%d)\n", optarg, THREADS_MAX);
                return -1;
            }
            o->threads = (int)v;
            break;
        case 'f': o->port_file = optarg; break;
        case 'm': {
            const char *s = optarg;
            models_given = 1;
            while (*s != '\0') {
                size_t n = strcspn(s, ",");
                if (n > 0 && push_str(&o->models, &o->models_cnt, s, n) != 0) {
                    return -1;
                }
                s += n;
                s += *s == ',';
            }
            break;
        }
        case 'k':
            if (push_str(&o->keys, &o->keys_cnt, optarg, strlen(optarg)) != 0) {
                return -1;
            }
            break;
        case 'n': o->record = 0; break;
        case 'O': o->oauth_public_key = optarg; break;
        case 'E':
            if (parse_int(optarg, 1, 86400 * 365, &v) != 0) {
                fprintf(stderr, "mock_upstream: bad --oauth-expires-in %s\n", optarg);
                return -1;
            }
            o->oauth_expires_in = v;
            break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mock_upstream: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    if (!have_port) {
        fprintf(stderr, "mock_upstream: --port is required (0 picks a free port)\n");
        usage(stderr);
        return -1;
    }
    if (!models_given) {
        for (size_t i = 0; i < sizeof(default_models) / sizeof(default_models[0]); i++) {
            if (push_str(&o->models, &o->models_cnt, default_models[i],
                         strlen(default_models[i])) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Readers must never see a partial file: write a sibling temp file, then rename it. */
static int write_port_file(const char *path, int port)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    FILE *f;
    int ok;

    if (tmp == NULL) {
        return -1;
    }
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "mock_upstream: cannot write %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    ok = fprintf(f, "%d\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "mock_upstream: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

static void thread_main(void *arg)
{
    mock_worker_run(arg);
}

int main(int argc, char **argv)
{
    mock_server_t *srv = calloc(1, sizeof(*srv));
    int rc = 1;
    int loops = 0;
    int started = 1;
    int parsed;

    if (srv == NULL) {
        fprintf(stderr, "mock_upstream: out of memory\n");
        return 1;
    }
    parsed = parse_args(argc, argv, &srv->opts);
    if (parsed != 0) {
        rc = parsed > 0 ? 0 : 2;
        goto out_opts;
    }
    /* Writes to a peer that went away must fail with EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    /* Seed jansson's hash once here, before threads can race to do it. */
    json_object_seed(0);
    if (mock_shared_init(&srv->shared) != 0) {
        fprintf(stderr, "mock_upstream: initialisation failed\n");
        goto out_opts;
    }
    if (mock_openai_models_init(srv) != 0) {
        fprintf(stderr, "mock_upstream: initialisation failed\n");
        goto out_shared;
    }
    if (mock_oauth_init(srv) != 0) {
        goto out_shared;
    }
    srv->workers_cnt = srv->opts.threads;
    srv->workers = calloc((size_t)srv->workers_cnt, sizeof(*srv->workers));
    if (srv->workers == NULL) {
        goto out_shared;
    }
    for (; loops < srv->workers_cnt; loops++) {
        mock_worker_t *w = &srv->workers[loops];
        w->srv = srv;
        w->index = loops;
        if (uv_loop_init(&w->loop) != 0) {
            break;
        }
    }
    if (loops < srv->workers_cnt || mock_server_listen(srv) != 0) {
        goto out_loops;
    }
    if (srv->opts.port_file != NULL && write_port_file(srv->opts.port_file, srv->port) != 0) {
        mock_server_stop(srv);
        mock_worker_run(&srv->workers[0]);
        for (int i = 1; i < srv->workers_cnt; i++) {
            mock_worker_run(&srv->workers[i]);
        }
        goto out_loops;
    }
    printf("mock_upstream: listening on %s:%d (%d thread%s)\n", srv->opts.host, srv->port,
           srv->workers_cnt, srv->workers_cnt == 1 ? "" : "s");
    fflush(stdout);

    for (; started < srv->workers_cnt; started++) {
        mock_worker_t *w = &srv->workers[started];
        if (uv_thread_create(&w->thread, thread_main, w) != 0) {
            fprintf(stderr, "mock_upstream: cannot start thread %d\n", started);
            mock_server_stop(srv);
            break;
        }
    }
    mock_worker_run(&srv->workers[0]);
    for (int i = 1; i < started; i++) {
        uv_thread_join(&srv->workers[i].thread);
    }
    /* Workers that never got a thread still have to close their handles. */
    for (int i = started; i < srv->workers_cnt; i++) {
        mock_worker_run(&srv->workers[i]);
    }
    rc = 0;

out_loops:
    for (int i = 0; i < loops; i++) {
        if (uv_loop_close(&srv->workers[i].loop) != 0) {
            fprintf(stderr, "mock_upstream: worker %d still had open handles\n", i);
            rc = 1;
        }
    }
    free(srv->workers);
out_shared:
    mock_shared_dispose(&srv->shared);
    mock_oauth_dispose();
    free(srv->models_body);
out_opts:
    free_strs(srv->opts.models, srv->opts.models_cnt);
    free_strs(srv->opts.keys, srv->opts.keys_cnt);
    free(srv);
    uv_library_shutdown();
    return rc;
}
