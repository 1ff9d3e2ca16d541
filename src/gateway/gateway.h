/*
 * gateway.h: the running service. It is the only module that wires the others together:
 * it builds a runtime (config + router + providers) from a config, starts the server
 * with one upstream client per worker, serves the client API, and swaps runtimes on
 * reload. The CLI's `serve` calls ar_gateway_run and nothing else.
 */
#ifndef AR_GATEWAY_GATEWAY_H
#define AR_GATEWAY_GATEWAY_H

#include "core/conf.h"
#include "core/err.h"

typedef struct ar_gateway ar_gateway_t;

/**
 * Serves with the config at path until SIGTERM/SIGINT (graceful shutdown, SPEC section 9);
 * SIGHUP reloads. Main thread. @return the process exit code (0 after a clean shutdown,
 * 1 on a runtime error, 2 when the config is invalid).
 */
int ar_gateway_run(const char *config_path);

#endif
