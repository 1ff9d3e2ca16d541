#!/usr/bin/env bash
# bench/leakcheck.sh BUILD_DIR: `make leakcheck`. Runs the ASan+UBSan airouter of
# BUILD_DIR (openai credential -> the mock upstream of BUILD_DIR), sends at least
# LEAK_REQUESTS (default 10000) non-streaming and as many streaming chat requests over
# 4 keep-alive connections (wrk -c4, repeated until the count is reached), then SIGTERM.
# Passes when airouter exits 0 and its output has no AddressSanitizer, LeakSanitizer or
# UBSan ("runtime error:") report, and every request got a 2xx.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: bench/leakcheck.sh BUILD_DIR}" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

WANT=${LEAK_REQUESTS:-10000}
STEP=${LEAK_SECONDS:-4}  # seconds per wrk run; runs repeat until WANT is reached
MAX_RUNS=${LEAK_MAX_RUNS:-30}

for tool in wrk ss curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (scripts/deps.sh bench installs it)"
done
if [ ! -x "$build/airouter" ] || [ ! -x "$build/mock_upstream" ]; then
    die "build $build/airouter and $build/mock_upstream first"
fi
case "$(nm "$build/airouter" 2>/dev/null)" in
    *__asan_init*) ;;
    *) log "leakcheck: warning: $build/airouter has no ASan runtime (build it with SAN=1)" ;;
esac

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
SAN_PATTERN='ERROR: AddressSanitizer|LeakSanitizer|runtime error:'

bench_init
start_mock "$build" --threads 2 --no-record
start_airouter airouter-openai "$build" "$here/configs/airouter-openai.yaml"
url="http://127.0.0.1:$AR_PORT/v1/chat/completions"
log "leakcheck: airouter pid $AR_PID on 127.0.0.1:$AR_PORT -> mock on $MOCK_PORT"

total=0
failed=0
summary=""
# kind body-file
for spec in "nonstream:$here/bodies/chat.json" "stream:$here/bodies/chat_stream.json"; do
    kind=${spec%%:*}
    body=${spec#*:}
    n=0
    non2xx=0
    sock=0
    runs=0
    while [ "$n" -lt "$WANT" ] && [ "$runs" -lt "$MAX_RUNS" ]; do
        runs=$((runs + 1))
        f=$BENCH_TMP/wrk-$kind-$runs.txt
        wrk_run "$f" "$url" "$here/post.lua" "$body" "x-mock-chunks: 20" "$BENCH_MASTER_KEY" \
            -t1 -c4 -d"${STEP}s" --timeout 20s
        got=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$f" | head -1)
        [ -n "$got" ] || { cat "$f" >&2; die "wrk printed no 'N requests in' line"; }
        n=$((n + got))
        non2xx=$((non2xx + $(wrk_field "$f" err_status)))
        sock=$((sock + $(wrk_field "$f" err_connect) + $(wrk_field "$f" err_read) +
            $(wrk_field "$f" err_write) + $(wrk_field "$f" err_timeout)))
        alive "$AR_PID" || break
    done
    log "leakcheck: $kind: $n requests in $runs wrk run(s), non-2xx $non2xx, socket errors $sock"
    summary="${summary:+$summary, }$kind $n"
    total=$((total + n))
    if [ "$n" -lt "$WANT" ]; then
        log "leakcheck: FAIL: only $n $kind requests (wanted $WANT)"
        failed=1
    fi
    if [ "$non2xx" != 0 ]; then
        log "leakcheck: FAIL: $non2xx non-2xx $kind responses"
        grep -h 'Non-2xx' "$BENCH_TMP"/wrk-"$kind"-*.txt >&2 || true
        failed=1
    fi
    alive "$AR_PID" || break
done

if alive "$AR_PID"; then
    rc=0
    kill -TERM "$AR_PID"
    # bounded: shutdown_timeout is 10 s by default; LeakSanitizer needs a moment more
    for _ in $(seq 1 600); do alive "$AR_PID" || break; sleep 0.1; done
    if alive "$AR_PID"; then
        log "leakcheck: FAIL: airouter still running 60 s after SIGTERM"
        kill -KILL "$AR_PID" 2>/dev/null || true
        failed=1
    fi
    wait "$AR_PID" 2>/dev/null || rc=$?
else
    rc=0
    wait "$AR_PID" 2>/dev/null || rc=$?
    log "leakcheck: FAIL: airouter died during the load (exit $rc)"
    failed=1
fi
forget_pid "$AR_PID"

if [ "$rc" != 0 ]; then
    log "leakcheck: FAIL: airouter exit status $rc"
    failed=1
fi
if grep -Eq "$SAN_PATTERN" "$AR_LOG"; then
    log "leakcheck: FAIL: sanitizer report in airouter's output:"
    head -n 80 "$AR_LOG" >&2
    failed=1
fi

# The mock is the same kind of build: a report there is worth knowing, not a failure.
mrc=0
stop_pid "$MOCK_PID" || mrc=$?
if [ "$mrc" != 0 ] || grep -Eq "$SAN_PATTERN" "$MOCK_LOG"; then
    log "leakcheck: warning: mock_upstream exited $mrc or reported:"
    grep -E -A20 "$SAN_PATTERN" "$MOCK_LOG" | head -n 40 >&2 || true
fi

if [ "$failed" != 0 ]; then
    [ -s "$AR_LOG" ] && { log "--- airouter output (tail):"; tail -n 40 "$AR_LOG" >&2; }
    echo "leakcheck: FAILED after $total requests ($summary)"
    exit 1
fi
echo "leakcheck: $total keep-alive requests ($summary) sent; airouter exit 0; no leaks"
echo "leakcheck: no AddressSanitizer, LeakSanitizer or UBSan report"
