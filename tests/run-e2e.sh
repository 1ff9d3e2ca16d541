#!/bin/sh
# Runs the end-to-end suite (node --test) against the binaries in $AIROUTER_BUILD.
# Each test file starts its own airouter and mock upstream on 127.0.0.1.
set -eu
cd "$(dirname "$0")/e2e"
: "${AIROUTER_BUILD:=build}"
export AIROUTER_BUILD
# ASan builds are slower and the leak checker must see a clean exit from every process.
if [ "${AIROUTER_BUILD#*asan}" != "$AIROUTER_BUILD" ]; then
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
# A per-test time limit where node has one (20.11+); Debian 12's node 18 does not, and every
# wait in the harness has its own deadline anyway.
limit=""
node --test-timeout=1 -e 0 >/dev/null 2>&1 && limit="--test-timeout=300000"
exec node --test --test-concurrency=1 $limit ${E2E_FILES:-*.test.mjs}
