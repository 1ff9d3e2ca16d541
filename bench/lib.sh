# shellcheck shell=bash disable=SC2034  # globals (AR_PID, ...) are read by the callers
# bench/lib.sh: helpers shared by bench/run.sh and bench/leakcheck.sh (bash, sourced).
#
# Processes: every process started here is recorded in BENCH_PIDS and stopped by
# bench_cleanup (installed on EXIT by bench_init); temp files live in BENCH_TMP.
# Ports: servers listen on 127.0.0.1 only. The mock picks its own (--port 0 --port-file);
# nginx and airouter get a port below the kernel's ephemeral range (so no outgoing
# connection can hold it), checked free with ss, and after start we verify with ss that
# the listener belongs to the process we started (airouter uses SO_REUSEPORT, so a
# foreign listener on the same port would otherwise silently share it). On a clash the
# start is retried on another port.

BENCH_MASTER_KEY=${BENCH_MASTER_KEY:-sk-bench-master-key-0123456789abcdefghijklmnop}
BENCH_PIDS=()

log() { printf '%s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

bench_init() {
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/airouter-bench.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Stops everything we started (TERM, then KILL after 5 s), then removes BENCH_TMP.
bench_cleanup() {
    local rc=$? pid i
    trap - EXIT
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    # a PostgreSQL started for the shared-state run runs detached (pg_ctl): stop it too
    if [ -n "${BENCH_PG_DIR:-}" ] && [ -d "$BENCH_PG_DIR" ]; then
        "$(dirname "${BASH_SOURCE[0]}")/../tests/pg.sh" stop "$BENCH_PG_DIR" >/dev/null 2>&1 || true
    fi
    if [ -n "${BENCH_TMP:-}" ] && [ -d "$BENCH_TMP" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then
            log "bench: kept $BENCH_TMP"
        else
            rm -rf "$BENCH_TMP"
        fi
    fi
    exit "$rc"
}

alive() { kill -0 "$1" 2>/dev/null; }

# Forgets a pid (after we stopped and reaped it ourselves).
forget_pid() {
    local p keep=()
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
}

# A port outside the ephemeral range that nothing listens on (TCP, any address).
pick_port() {
    local lo hi p i
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    for i in $(seq 1 200); do
        if [ "$lo" -gt 12000 ]; then
            p=$((10000 + RANDOM % (lo - 10000)))
        else
            p=$((hi + 1 + RANDOM % (65535 - hi)))
        fi
        if [ -z "$(ss -Hltn "( sport = :$p )" 2>/dev/null)" ]; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# True if PID is ROOT or a child of ROOT.
in_tree() {
    local pid=$1 root=$2 ppid
    [ "$pid" = "$root" ] && return 0
    ppid=$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$ppid" = "$root" ]
}

# True once something listens on 127.0.0.1:PORT and every listener there belongs to
# ROOT's process tree (ROOT or its direct children).
owns_port() {
    local port=$1 root=$2 lines pids pid
    lines=$(ss -Hltnp "( sport = :$port )" 2>/dev/null) || return 1
    [ -n "$lines" ] || return 1
    pids=$(printf '%s\n' "$lines" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
    [ -n "$pids" ] || return 1
    for pid in $pids; do
        in_tree "$pid" "$root" || return 1
    done
    return 0
}

# wait_listen PORT PID [SECONDS]: 0 when PID owns the port, 1 if PID died or timed out.
wait_listen() {
    local port=$1 pid=$2 secs=${3:-10} i
    for i in $(seq 1 $((secs * 20))); do
        alive "$pid" || return 1
        owns_port "$port" "$pid" && return 0
        sleep 0.05
    done
    return 1
}

# stop_pid PID: SIGTERM and wait for it; prints nothing, returns the exit status.
stop_pid() {
    local pid=$1 rc=0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || rc=$?
    forget_pid "$pid"
    return "$rc"
}

# start_mock BUILD_DIR [extra args...]: sets MOCK_PID, MOCK_PORT, MOCK_LOG.
start_mock() {
    local build=$1 pf _
    shift
    pf=$BENCH_TMP/mock.port
    MOCK_LOG=$BENCH_TMP/mock.log
    "$build/mock_upstream" --port 0 --port-file "$pf" "$@" >"$MOCK_LOG" 2>&1 &
    MOCK_PID=$!
    BENCH_PIDS+=("$MOCK_PID")
    for _ in $(seq 1 400); do
        [ -s "$pf" ] && break
        alive "$MOCK_PID" || { cat "$MOCK_LOG" >&2; die "mock_upstream exited at start"; }
        sleep 0.05
    done
    [ -s "$pf" ] || die "mock_upstream wrote no port file"
    MOCK_PORT=$(cat "$pf")
}

# fill TEMPLATE OUT KEY=VALUE...: copies TEMPLATE with every @KEY@ replaced by VALUE.
fill() {
    local tpl=$1 out=$2 kv expr=()
    shift 2
    for kv in "$@"; do
        expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
    done
    sed "${expr[@]}" "$tpl" >"$out"
}

# start_airouter NAME BUILD_DIR CONFIG_TEMPLATE [KEY=VALUE...]: runs airouter in
# BENCH_TMP/NAME (its working directory, so the SQLite store and logs land there); the
# KEY=VALUEs fill more @KEY@s. Sets AR_PID, AR_PORT, AR_LOG. Retries on another port if the
# chosen one was taken meanwhile.
start_airouter() {
    local name=$1 build=$2 tpl=$3 dir try port pid extra=("${@:4}")
    dir=$BENCH_TMP/$name
    mkdir -p "$dir"
    AR_LOG=$dir/airouter.log
    for try in 1 2 3 4 5; do
        port=$(pick_port)
        fill "$tpl" "$dir/config.yaml" PORT="$port" MOCK_PORT="${MOCK_PORT:-0}" \
            MASTER_KEY="$BENCH_MASTER_KEY" "${extra[@]}"
        (cd "$dir" && exec "$build/airouter" -config "$dir/config.yaml") >"$AR_LOG" 2>&1 &
        pid=$!
        BENCH_PIDS+=("$pid")
        if wait_listen "$port" "$pid" 20; then
            AR_PID=$pid
            AR_PORT=$port
            return 0
        fi
        if alive "$pid"; then # someone else shares the port: try another one
            kill -TERM "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        forget_pid "$pid"
        grep -qi "address already in use\|cannot listen" "$AR_LOG" 2>/dev/null || break
    done
    cat "$AR_LOG" >&2
    die "airouter ($name) did not start"
}

# start_nginx NAME CONFIG_TEMPLATE [KEY=VALUE...]: nginx in the foreground (daemon off) in
# the background, prefix BENCH_TMP/NAME. Sets NGINX_PID (the master), NGINX_PORT.
start_nginx() {
    local name=$1 tpl=$2 dir try port pid extra=("${@:3}")
    dir=$BENCH_TMP/$name
    mkdir -p "$dir"
    for try in 1 2 3 4 5; do
        port=$(pick_port)
        fill "$tpl" "$dir/nginx.conf" DIR="$dir" PORT="$port" MOCK_PORT="$MOCK_PORT" "${extra[@]}"
        nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
        pid=$!
        BENCH_PIDS+=("$pid")
        if wait_listen "$port" "$pid" 20; then
            NGINX_PID=$pid
            NGINX_PORT=$port
            return 0
        fi
        alive "$pid" && kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || true
        forget_pid "$pid"
        grep -qi "address already in use" "$dir/error.log" "$dir/stdout.log" 2>/dev/null || break
    done
    cat "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null
    die "nginx did not start"
}

# rss_kb PID: VmRSS of PID plus its direct children (nginx workers), in kB.
# cpu_ticks PID: user + system CPU of the process so far, in clock ticks (all its threads).
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

rss_kb() {
    local root=$1 total=0 pid kb
    for pid in $root $(pgrep -P "$root" 2>/dev/null); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# wrk_run OUTFILE URL LUA BODY HEADERS KEY WRK-ARGS...: runs wrk, output to OUTFILE.
wrk_run() {
    local out=$1 url=$2 lua=$3 body=$4 headers=$5 key=$6
    shift 6
    BENCH_BODY_FILE=$body BENCH_HEADERS=$headers BENCH_KEY=$key \
        wrk "$@" --latency -s "$lua" "$url" >"$out" 2>&1 || true
}

# wrk_field OUTFILE NAME: a value from the BENCH_RESULT line (empty if absent).
wrk_field() {
    sed -n 's/^BENCH_RESULT //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# ---- report helpers (run.sh and scale.sh)
us() { [ -n "${1:-}" ] && printf '%s' "$1" || printf -- '-'; }
mb() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { # A B -> A/B with 2 decimals
    if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "" }'
    fi
}
# verdict RATIO TARGET: how a ratio compares with its target, or why there is none.
verdict() {
    [ -n "$1" ] || { echo "not measured in this run"; return; }
    awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "meets target" : "below target" }'
}
jnum() { [ -n "${1:-}" ] && printf '%s' "$1" || printf 'null'; }
jarr() { local s; s=$(printf '%s' "${1:-}" | awk '{ $1 = $1; gsub(/ /, ", "); print }'); printf '[%s]' "$s"; }
