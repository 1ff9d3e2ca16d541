/*
 * gateway.h: the running service. It is the only module that wires the others together:
 * it builds a runtime (config + router + providers) from a config, starts the server
 * with one upstream client per worker, serves the client API, and swaps runtimes on
 * reload. The CLI's `serve` calls ar_gateway_run and nothing else.
 */
#ifndef AR_GATEWAY_GATEWAY_H
#define AR_GATEWAY_GATEWAY_H

#include <stddef.h>

#include "core/conf.h"
#include "core/err.h"

typedef struct ar_gateway ar_gateway_t;

/**
 * Serves with the config at path until SIGTERM/SIGINT (graceful shutdown, SPEC section 9);
 * SIGHUP reloads. Main thread. @return the process exit code (0 after a clean shutdown,
 * 1 on a runtime error, 2 when the config is invalid).
 */
int ar_gateway_run(const char *config_path);

/** A library airouter is linked with and the version of it that this process runs. */
typedef struct ar_gw_lib_version {
    const char *name;    /* "libcurl", "OpenSSL", ... */
    const char *version; /* "7.88.1": asked of the library at run time */
} ar_gw_lib_version_t;

/**
 * The libraries airouter runs with (libcurl, libuv, llhttp, OpenSSL, SQLite, jansson,
 * libyaml), each with the version loaded at run time: after an upgrade of a shared library
 * `airouter --version` names the one in use, not the one it was built against.
 * @return the number of entries written to out (AR_GW_LIB_COUNT).
 */
#define AR_GW_LIB_COUNT 7
size_t ar_gw_lib_versions(ar_gw_lib_version_t out[AR_GW_LIB_COUNT]);

#endif
