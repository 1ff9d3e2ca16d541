/*
 * redis_server.h: what the Redis client's tests share: a real redis-server started on a
 * free port of 127.0.0.1 (no persistence) for each test, a synchronous client for the
 * test's own look at it, and a libuv loop with the client's connection to run until a
 * condition holds. Include it once per test binary, after cmocka.h.
 */
#ifndef AR_TESTS_REDIS_SERVER_H
#define AR_TESTS_REDIS_SERVER_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "store/redis.h"

static int port;
static pid_t server = -1;

static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A synchronous client for the test's own look at the server; NULL while it is not up. */
static inline redisContext *sync_client(void)
{
    struct timeval tv = {0, 200000};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (rc && rc->err) {
        redisFree(rc);
        return NULL;
    }
    return rc;
}

static inline void start_server(void)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    server = fork();
    assert_true(server >= 0);
    if (server == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 1);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        redisContext *rc = sync_client();
        if (rc) {
            redisReply *r = redisCommand(rc, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(rc);
            if (ok)
                return;
        }
        usleep(10000);
    }
    fail_msg("redis-server did not start");
}

static inline void stop_server(void)
{
    if (server <= 0)
        return;
    kill(server, SIGCONT);
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    server = -1;
}

/* ---- a loop to run the client on ---- */

typedef struct fixture {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps the loop turning while a test waits on a condition */
    ar_redis_t *r;
    ar_redis_conn_t *c;
} fixture_t;

static inline void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag is true or ms pass. @return *flag. */
static inline bool run_until(fixture_t *f, const bool *flag, uint64_t ms)
{
    uint64_t end = uv_now(&f->loop) + ms;
    while (!*flag && uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    return *flag;
}

static inline bool run_until_ready(fixture_t *f, bool want, uint64_t ms)
{
    uint64_t end = uv_now(&f->loop) + ms;
    while (ar_redis_conn_ready(f->c) != want && uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    return ar_redis_conn_ready(f->c) == want;
}

static inline int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 5, 5);
    port = free_port();
    start_server();
    char url[64], err[200];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    f->r = ar_redis_create(url, err, sizeof(err));
    assert_non_null(f->r);
    f->c = ar_redis_conn_open(f->r, &f->loop);
    assert_true(run_until_ready(f, true, 3000));
    *state = f;
    return 0;
}

static inline void on_closed(uv_handle_t *h)
{
    (void)h;
}

static inline int teardown(void **state)
{
    fixture_t *f = *state;
    ar_redis_conn_close(f->c);
    uv_close((uv_handle_t *)&f->tick, on_closed);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    ar_redis_destroy(f->r);
    free(f);
    stop_server();
    return 0;
}

#endif
