/*
 * versions.c: the libraries airouter runs with and their versions, for `airouter
 * --version`. Each version is asked of the module that owns the library (the only one
 * that includes its headers); the gateway is the one module that may include them all.
 */
#include <stddef.h>

#include "config/config.h"
#include "core/crypto.h"
#include "core/json.h"
#include "gateway/gateway.h"
#include "server/server.h"
#include "store/store.h"
#include "upstream/upstream.h"

size_t ar_gw_lib_versions(ar_gw_lib_version_t out[AR_GW_LIB_COUNT])
{
    size_t i = 0;
    out[i++] = (ar_gw_lib_version_t){"libcurl", ar_upstream_curl_version()};
    out[i++] = (ar_gw_lib_version_t){"libuv", ar_server_uv_version()};
    out[i++] = (ar_gw_lib_version_t){"llhttp", ar_server_llhttp_version()};
    out[i++] = (ar_gw_lib_version_t){"OpenSSL", ar_crypto_openssl_version()};
    out[i++] = (ar_gw_lib_version_t){"SQLite", ar_store_sqlite_version()};
    out[i++] = (ar_gw_lib_version_t){"jansson", ar_json_jansson_version()};
    out[i++] = (ar_gw_lib_version_t){"libyaml", ar_config_yaml_version()};
    return i;
}
