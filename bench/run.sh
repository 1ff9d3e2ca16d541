#!/usr/bin/env bash
# bench/run.sh BUILD_DIR: `make bench`. wrk against the mock upstream directly, nginx in
# front of it, airouter in front of it (openai credential) and airouter answering in
# process (mock credential), for each request kind, side by side in one run. Prints one
# table and the ratios the team reports, and writes them to bench/out/results.json.
# Benchmarks are not tests: the exit status only says whether the run itself worked.
#
# Extending: a target is `add_target NAME URL PID ROUNDS` after starting its process
# (start_airouter NAME BUILD CONFIG-TEMPLATE, start_nginx ...); a request kind is
# `add_kind NAME LUA-SCRIPT BODY-FILE PATH HEADERS CHECK [TARGETS]`. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

DURATION=${BENCH_SECONDS:-5}
WARMUP=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-2}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
OUT=${BENCH_OUT:-$here/out}

# thousands of connections: the scaling runs need more descriptors than a shell's default
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

for tool in wrk nginx ss curl awk pgrep node; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (scripts/deps.sh bench installs it)"
done
if [ ! -x "$build/airouter" ] || [ ! -x "$build/mock_upstream" ]; then
    die "build $build/airouter and $build/mock_upstream first"
fi

# ---------------------------------------------------------------- registry
TARGETS=()
declare -A T_URL T_PID T_ROUNDS T_KEY
# add_target NAME BASE-URL PID ROUNDS [KEY]: ROUNDS = c64 runs (the best one is reported);
# KEY is the client key the target gets (default: the master key).
add_target() {
    selected "$1" "${BENCH_TARGETS:-}" || return 0
    TARGETS+=("$1")
    T_URL[$1]=$2
    T_PID[$1]=$3
    T_ROUNDS[$1]=$4
    T_KEY[$1]=${5:-$BENCH_MASTER_KEY}
}

KINDS=()
declare -A K_LUA K_BODY K_PATH K_HEADERS K_CHECK K_TARGETS
# add_kind NAME LUA BODY-FILE PATH HEADERS CHECK [TARGETS]: CHECK is `json` or `stream`
# (what the pre-flight request must get back); TARGETS limits the kind to some targets.
add_kind() {
    selected "$1" "${BENCH_KINDS:-}" || return 0
    KINDS+=("$1")
    K_LUA[$1]=$2
    K_BODY[$1]=$3
    K_PATH[$1]=$4
    K_HEADERS[$1]=$5
    K_CHECK[$1]=$6
    K_TARGETS[$1]=${7:-}
}

# selected NAME LIST: true if LIST is empty or names NAME.
selected() {
    [ -z "$2" ] && return 0
    case " $2 " in *" $1 "*) return 0 ;; esac
    return 1
}

runs_on() { selected "$2" "${K_TARGETS[$1]}"; }

declare -A R # R[kind|target|field]
WARNINGS=()
RAW=$OUT/wrk
mkdir -p "$RAW"
rm -f "$RAW"/*.txt

slug() { printf '%s' "$1" | tr -c 'A-Za-z0-9_.-' '_'; }

check_alive() { # TARGET WHAT
    alive "${T_PID[$1]}" && return 0
    log "bench: $1 died during $2; its log:"
    tail -n 40 "$BENCH_TMP"/*/airouter.log "$BENCH_TMP"/mock.log 2>/dev/null >&2 || true
    die "$1 crashed"
}

# preflight KIND TARGET: one request with curl; must be 200 (and a complete stream).
preflight() {
    local kind=$1 t=$2 f code hdr=() line chunks=""
    f=$BENCH_TMP/preflight.out
    while IFS= read -r line; do [ -n "$line" ] && hdr+=(-H "$line"); done <<<"${K_HEADERS[$kind]}"
    code=$(curl -sS -o "$f" -w '%{http_code}' --max-time 10 -X POST \
        -H "Authorization: Bearer ${T_KEY[$t]}" -H 'Content-Type: application/json' \
        "${hdr[@]}" --data-binary "@${K_BODY[$kind]}" "${T_URL[$t]}${K_PATH[$kind]}") || code=000
    R[$t|answered]=$((${R[$t|answered]:-0} + 1))
    if [ "$code" != 200 ]; then
        log "bench: pre-flight $kind -> $t: HTTP $code"
        head -c 2000 "$f" >&2 || true
        die "pre-flight request failed"
    fi
    if [ "${K_CHECK[$kind]}" = stream ]; then
        grep -q '^data: \[DONE\]' "$f" || die "pre-flight $kind -> $t: stream without [DONE]"
        chunks=$(grep -c '^data: .*"content":"[^"]' "$f" || true)
        R[$kind|$t|chunks]=$chunks
    elif [ "${K_CHECK[$kind]}" = rstream ]; then
        grep -q '^event: response.completed' "$f" || die "pre-flight $kind -> $t: stream without response.completed"
        chunks=$(grep -c '^event: response.output_text.delta' "$f" || true)
        R[$kind|$t|chunks]=$chunks
    fi
}

# run_wrk KIND TARGET LABEL CONNS THREADS SECONDS: one wrk run; sets W_* from its output.
run_wrk() {
    local kind=$1 t=$2 label=$3 c=$4 th=$5 d=$6 f cpu0
    f=$RAW/$(slug "$kind-$t-$label").txt
    cpu0=$(cpu_ticks "${T_PID[$t]}")
    wrk_run "$f" "${T_URL[$t]}${K_PATH[$kind]}" "${K_LUA[$kind]}" "${K_BODY[$kind]}" \
        "${K_HEADERS[$kind]}" "${T_KEY[$t]}" -t"$th" -c"$c" -d"${d}s" --timeout 10s
    W_REQ=$(wrk_field "$f" requests)
    [ -n "$W_REQ" ] || { cat "$f" >&2; die "wrk gave no result for $kind -> $t ($label)"; }
    R[$t|answered]=$((${R[$t|answered]:-0} + W_REQ))
    W_DUR=$(wrk_field "$f" duration_us)
    W_RPS=$(awk -v n="$W_REQ" -v d="$W_DUR" 'BEGIN { printf "%.1f", (d > 0 ? n / (d / 1e6) : 0) }')
    # the target process's own CPU per request: what the gateway host pays, whatever else
    # (Redis, PostgreSQL, the load generator) shares this machine's cores
    W_CPU_US=$(awk -v a="$cpu0" -v b="$(cpu_ticks "${T_PID[$t]}")" -v n="$W_REQ" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f", (n > 0 ? (b - a) * 1e6 / hz / n : 0) }')
    W_P50=$(wrk_field "$f" p50_us)
    W_P99=$(wrk_field "$f" p99_us)
    W_NON2XX=$(wrk_field "$f" err_status)
    W_SOCK=$(($(wrk_field "$f" err_connect) + $(wrk_field "$f" err_read) + \
        $(wrk_field "$f" err_write) + $(wrk_field "$f" err_timeout)))
    if [ "$W_NON2XX" != 0 ] || [ "$W_SOCK" != 0 ]; then
        WARNINGS+=("$kind -> $t ($label): $(grep -E 'Non-2xx|Socket errors' "$f" | tr -s ' ' | paste -sd';' -)")
    fi
    R[$kind|$t|non2xx]=$((${R[$kind|$t|non2xx]:-0} + W_NON2XX))
    R[$kind|$t|sockerr]=$((${R[$kind|$t|sockerr]:-0} + W_SOCK))
    check_alive "$t" "$kind $label"
}

measure_kind() {
    local kind=$1 t r rss best
    log "== $kind: pre-flight, warm-up ${WARMUP}s per target"
    for t in "${TARGETS[@]}"; do
        runs_on "$kind" "$t" || continue
        preflight "$kind" "$t"
        run_wrk "$kind" "$t" warmup "$CONNS" "$THREADS" "$WARMUP"
    done
    # c64: targets with ROUNDS > 1 are run alternately (nginx, airouter, nginx, airouter).
    for r in $(seq 1 "$ROUNDS"); do
        for t in "${TARGETS[@]}"; do
            runs_on "$kind" "$t" || continue
            [ "$r" -le "${T_ROUNDS[$t]}" ] || continue
            log "   $kind -> $t: c$CONNS round $r (${DURATION}s)"
            run_wrk "$kind" "$t" "c$CONNS-r$r" "$CONNS" "$THREADS" "$DURATION"
            rss=$(rss_kb "${T_PID[$t]}")
            R[$kind|$t|rss_runs]="${R[$kind|$t|rss_runs]:-} $rss"
            R[$kind|$t|rps_runs]="${R[$kind|$t|rps_runs]:-} $W_RPS"
            best=${R[$kind|$t|rps]:-}
            if [ -z "$best" ] || awk -v a="$W_RPS" -v b="$best" 'BEGIN { exit !(a > b) }'; then
                R[$kind|$t|rps]=$W_RPS
                R[$kind|$t|p50]=$W_P50
                R[$kind|$t|p99]=$W_P99
                R[$kind|$t|cpu_us]=$W_CPU_US
            fi
            if [ -z "${R[$kind|$t|rss]:-}" ] || [ "$rss" -gt "${R[$kind|$t|rss]}" ]; then
                R[$kind|$t|rss]=$rss
            fi
        done
    done
    for t in "${TARGETS[@]}"; do
        runs_on "$kind" "$t" || continue
        log "   $kind -> $t: c1 (${DURATION}s)"
        run_wrk "$kind" "$t" c1 1 1 "$DURATION"
        R[$kind|$t|p50c1]=$W_P50
        R[$kind|$t|p99c1]=$W_P99
    done
}

# ---------------------------------------------------------------- setup
bench_init
log "bench: build $build, ${DURATION}s per run, c$CONNS x$ROUNDS alternating, tmp $BENCH_TMP"

start_mock "$build" --threads 2 --no-record
if [ "${BENCH_ONLY:-}" = scale ]; then
    # shellcheck source=bench/scale.sh
    . "$here/scale.sh"
    exit 0
fi
add_target direct "http://127.0.0.1:$MOCK_PORT" "$MOCK_PID" 1

start_nginx nginx "$here/configs/nginx.conf"
add_target nginx "http://127.0.0.1:$NGINX_PORT" "$NGINX_PID" "$ROUNDS"

start_airouter airouter-openai "$build" "$here/configs/airouter-openai.yaml"
add_target "airouter(openai)" "http://127.0.0.1:$AR_PORT" "$AR_PID" "$ROUNDS"

# The same pass-through, called with a virtual key from the store instead of the master key:
# what key authentication, per-key limits and quotas cost. Its ledger is counted at the end.
VKEY_DIR=$BENCH_TMP/airouter-vkey
mkdir -p "$VKEY_DIR"
printf 'server:\n  master_key: x\nstorage:\n  database_url: sqlite://%s/airouter.db\n' \
    "$VKEY_DIR" >"$VKEY_DIR/cli.yaml"
VKEY=$("$build/airouter" key create --name bench --daily 100000000000 -config "$VKEY_DIR/cli.yaml" 2>/dev/null) ||
    die "could not create the benchmark's virtual key"
start_airouter airouter-vkey "$build" "$here/configs/airouter-openai.yaml"
add_target "airouter(vkey)" "http://127.0.0.1:$AR_PORT" "$AR_PID" "$ROUNDS" "$VKEY"
VKEY_PID=$AR_PID

# The same virtual-key pass-through with the state several instances share: Redis for the
# credential's RPM window, PostgreSQL for keys and the spend ledger (skipped, with a note,
# when redis-server or PostgreSQL is missing).
SHARED_NOTE=""
SHARED_PIDS=()
if selected "airouter(shared)" "${BENCH_TARGETS:-}"; then
    # its own directory: BENCH_TMP is private to us, and postgres runs as its own user
    BENCH_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/airouter-bench-pg.XXXXXX")
    if ! command -v redis-server >/dev/null 2>&1; then
        SHARED_NOTE="skipped: redis-server not installed"
    elif ! PG_URL=$("$here/../tests/pg.sh" start "$BENCH_PG_DIR" 2>"$BENCH_TMP/pg.err"); then
        SHARED_NOTE="skipped: PostgreSQL did not start: $(tail -n 1 "$BENCH_TMP/pg.err" | head -c 200)"
        BENCH_PG_DIR=""
    else
        REDIS_PORT=$(pick_port)
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            >"$BENCH_TMP/redis.log" 2>&1 &
        BENCH_PIDS+=("$!")
        wait_listen "$REDIS_PORT" "$!" 10 || die "redis-server did not start"
        printf 'server:\n  master_key: x\nstorage:\n  database_url: "%s"\n' "$PG_URL" \
            >"$BENCH_TMP/shared-cli.yaml"
        SKEY=$("$build/airouter" key create --name bench --daily 100000000000 \
            -config "$BENCH_TMP/shared-cli.yaml" 2>/dev/null) ||
            die "could not create the shared run's virtual key"
        start_airouter airouter-shared "$build" "$here/configs/airouter-shared.yaml" \
            DB_URL="$PG_URL" REDIS_PORT="$REDIS_PORT" INSTANCES=1
        add_target "airouter(shared)" "http://127.0.0.1:$AR_PORT" "$AR_PID" "$ROUNDS" "$SKEY"
        SHARED_PIDS=("$AR_PID")
        # three instances of it behind nginx, sharing the same Redis and PostgreSQL
        if selected "airouter(3x)" "${BENCH_TARGETS:-}"; then
            trio=()
            for i in 1 2 3; do
                start_airouter "airouter-3x-$i" "$build" "$here/configs/airouter-shared.yaml" \
                    DB_URL="$PG_URL" REDIS_PORT="$REDIS_PORT" INSTANCES=3
                trio+=("$AR_PORT")
                SHARED_PIDS+=("$AR_PID")
            done
            start_nginx nginx-3x "$here/configs/nginx-3x.conf" AR1="${trio[0]}" AR2="${trio[1]}" \
                AR3="${trio[2]}"
            add_target "airouter(3x)" "http://127.0.0.1:$NGINX_PORT" "$NGINX_PID" "$ROUNDS" "$SKEY"
        fi
    fi
fi

start_airouter airouter-routing "$build" "$here/configs/airouter-routing.yaml"
add_target "airouter(routing)" "http://127.0.0.1:$AR_PORT" "$AR_PID" "$ROUNDS"

start_airouter airouter-anthropic "$build" "$here/configs/airouter-anthropic.yaml"
add_target "airouter(anthropic)" "http://127.0.0.1:$AR_PORT" "$AR_PID" "$ROUNDS"

start_airouter airouter-mock "$build" "$here/configs/airouter-mock.yaml"
add_target "airouter(mock)" "http://127.0.0.1:$AR_PORT" "$AR_PID" 1

# POST /v1/responses: airouter(openai) passes it through natively (the mock speaks the
# Responses API); airouter(resp-xlate) translates it into chat and back (native_api: false).
start_airouter airouter-resp-xlate "$build" "$here/configs/airouter-resp-xlate.yaml"
add_target "airouter(resp-xlate)" "http://127.0.0.1:$AR_PORT" "$AR_PID" "$ROUNDS"

# The mock reads x-mock-chunks (direct, nginx pass it on); airouter(openai) adds the same
# header upstream from its credential, airouter(mock) has mock_stream_chunks: 20.
CHAT_TARGETS="direct nginx airouter(openai) airouter(vkey) airouter(shared) airouter(3x) airouter(routing) airouter(anthropic) airouter(mock)"
RESP_TARGETS="direct nginx airouter(openai) airouter(resp-xlate)"
add_kind nonstream "$here/post.lua" "$here/bodies/chat.json" /v1/chat/completions "" json \
    "$CHAT_TARGETS"
add_kind stream "$here/post.lua" "$here/bodies/chat_stream.json" /v1/chat/completions \
    "x-mock-chunks: 20" stream "$CHAT_TARGETS"
add_kind responses "$here/post.lua" "$here/bodies/responses.json" /v1/responses "" json \
    "$RESP_TARGETS"
add_kind rstream "$here/post.lua" "$here/bodies/responses_stream.json" /v1/responses \
    "x-mock-chunks: 20" rstream "$RESP_TARGETS"

if [ "${#TARGETS[@]}" -eq 0 ] || [ "${#KINDS[@]}" -eq 0 ]; then die "nothing selected"; fi

for kind in "${KINDS[@]}"; do
    measure_kind "$kind"
done

# The ledger of airouter(vkey): every answered request (wrk counts those) has its record once
# SIGTERM drained the journal; requests cut at the end of a run have one too (status 499).
LEDGER_RECORDS=""
if selected "airouter(vkey)" "${BENCH_TARGETS:-}"; then
    kill -TERM "$VKEY_PID" 2>/dev/null || true
    wait "$VKEY_PID" 2>/dev/null || true
    forget_pid "$VKEY_PID"
    LEDGER_RECORDS=$(sqlite3 "$VKEY_DIR/airouter.db" 'SELECT COUNT(*) FROM spend' 2>/dev/null || echo "")
    LEDGER_OK=$(sqlite3 "$VKEY_DIR/airouter.db" 'SELECT COUNT(*) FROM spend WHERE status = 200' 2>/dev/null || echo "")
fi

# The PostgreSQL ledger of airouter(shared), counted the same way once SIGTERM drained it.
SHARED_RECORDS=""
if [ "${#SHARED_PIDS[@]}" -gt 0 ]; then
    for pid in "${SHARED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        forget_pid "$pid"
    done
    SHARED_RECORDS=$(psql "$PG_URL" -tAc 'SELECT COUNT(*) FROM spend' 2>/dev/null || echo "")
    SHARED_OK=$(psql "$PG_URL" -tAc 'SELECT COUNT(*) FROM spend WHERE status = 200' 2>/dev/null || echo "")
fi

# ---------------------------------------------------------------- report
added() { # KIND TARGET: p50(c1) - p50(c1) of direct, in us
    local d=${R[$1|direct|p50c1]:-} v=${R[$1|$2|p50c1]:-}
    if [ -n "$d" ] && [ -n "$v" ]; then echo $((v - d)); else echo ""; fi
}
added2() { # KIND TARGET BASE: p50(c1) of TARGET - p50(c1) of BASE, in us
    local b=${R[$1|$3|p50c1]:-} v=${R[$1|$2|p50c1]:-}
    if [ -n "$b" ] && [ -n "$v" ]; then echo $((v - b)); else echo ""; fi
}

echo
echo "airouter benchmark: $(nproc) CPUs, wrk -t$THREADS -c$CONNS and -t1 -c1, ${DURATION}s per run,"
echo "latencies in microseconds. nginx and airouter(openai) c$CONNS: best of $ROUNDS runs taken"
echo "alternately (nginx, airouter, nginx, airouter) to dampen noise; RSS = VmRSS right after"
echo "the c$CONNS runs (max; nginx = master + workers). Shared machine: compare ratios, not times."
echo
fmt='%-10s %-17s %11s %9s %9s %8s %8s %9s %7s %7s\n'
# shellcheck disable=SC2059
printf "$fmt" kind target 'req/s(c64)' 'p50(c64)' 'p99(c64)' 'p50(c1)' 'p99(c1)' 'added p50' 'RSS MB' errors
for kind in "${KINDS[@]}"; do
    for t in "${TARGETS[@]}"; do
        runs_on "$kind" "$t" || continue
        # shellcheck disable=SC2059
        printf "$fmt" "$kind" "$t" "$(us "${R[$kind|$t|rps]:-}")" "$(us "${R[$kind|$t|p50]:-}")" \
            "$(us "${R[$kind|$t|p99]:-}")" "$(us "${R[$kind|$t|p50c1]:-}")" \
            "$(us "${R[$kind|$t|p99c1]:-}")" "$(us "$(added "$kind" "$t")")" \
            "$(mb "${R[$kind|$t|rss]:-0}")" "$((${R[$kind|$t|non2xx]:-0} + ${R[$kind|$t|sockerr]:-0}))"
    done
done
echo "(errors = non-2xx responses + socket errors over all runs of that row, warm-up included)"


echo
echo "Ratios (the numbers to quote):"
for kind in "${KINDS[@]}"; do
    case $kind in responses | rstream) continue ;; esac
    a=${R[$kind|airouter(openai)|rps]:-}
    n=${R[$kind|nginx|rps]:-}
    rr=$(ratio "$a" "$n")
    printf '  %-10s req/s airouter(openai->mock) / nginx        = %s   (target >= 0.8: %s)\n' \
        "$kind" "$(us "$rr")" "$(verdict "$rr" 0.8)"
    printf '  %-10s req/s airouter(mock) / direct mock          = %s\n' "" \
        "$(us "$(ratio "${R[$kind|airouter(mock)|rps]:-}" "${R[$kind|direct|rps]:-}")")"
    printf '  %-10s added p50 latency over direct at c1: nginx %s us, airouter %s us\n' "" \
        "$(us "$(added "$kind" nginx)")" "$(us "$(added "$kind" "airouter(openai)")")"
    printf '  %-10s RSS at %s connections: nginx %s MB, airouter %s MB\n' "" "$CONNS" \
        "$(mb "${R[$kind|nginx|rss]:-0}")" "$(mb "${R[$kind|airouter(openai)|rss]:-0}")"
    rr=$(ratio "${R[$kind|airouter(vkey)|rps]:-}" "${R[$kind|airouter(openai)|rps]:-}")
    printf '  %-10s virtual key / master key req/s = %s   (cost target <= 5%%: ratio >= 0.95: %s); p99 c%s: %s vs %s us\n' "" \
        "$(us "$rr")" "$(verdict "$rr" 0.95)" "$CONNS" "$(us "${R[$kind|airouter(vkey)|p99]:-}")" \
        "$(us "${R[$kind|airouter(openai)|p99]:-}")"
    rr=$(ratio "${R[$kind|airouter(shared)|rps]:-}" "${R[$kind|airouter(vkey)|rps]:-}")
    printf '  %-10s shared state (Redis RPM, PostgreSQL ledger) / local (SQLite) req/s = %s   (cost target <= 15%%: ratio >= 0.85: %s)%s\n' "" \
        "$(us "$rr")" "$(verdict "$rr" 0.85)" "${SHARED_NOTE:+ ($SHARED_NOTE)}"
    rr=$(ratio "${R[$kind|airouter(vkey)|cpu_us]:-}" "${R[$kind|airouter(shared)|cpu_us]:-}")
    printf '  %-10s the gateway'"'"'s own CPU per request, local / shared = %s (%s vs %s us: the cost on the gateway host, Redis and PostgreSQL elsewhere; target >= 0.85: %s)\n' "" \
        "$(us "$rr")" "$(us "${R[$kind|airouter(vkey)|cpu_us]:-}")" "$(us "${R[$kind|airouter(shared)|cpu_us]:-}")" "$(verdict "$rr" 0.85)"
    printf '  %-10s three shared instances behind nginx / one req/s = %s (this machine'"'"'s cores are shared by all of them and the load generator)\n' "" \
        "$(us "$(ratio "${R[$kind|airouter(3x)|rps]:-}" "${R[$kind|airouter(shared)|rps]:-}")")"
    rr=$(ratio "${R[$kind|airouter(routing)|rps]:-}" "${R[$kind|airouter(openai)|rps]:-}")
    printf '  %-10s routing (4 credentials, limits, 1 failing) / plain pass-through req/s = %s   (cost target < 10%%: ratio > 0.9: %s)\n' "" \
        "$(us "$rr")" "$(verdict "$rr" 0.9)"
    printf '  %-10s added p50 at c1 of the routing logic over plain pass-through: %s us\n' "" \
        "$(us "$(added2 "$kind" "airouter(routing)" "airouter(openai)")")"
    rr=$(ratio "${R[$kind|airouter(anthropic)|rps]:-}" "${R[$kind|airouter(openai)|rps]:-}")
    printf '  %-10s Anthropic-translated / OpenAI pass-through req/s = %s   (cost target < 20%%: ratio > 0.8: %s)\n' "" \
        "$(us "$rr")" "$(verdict "$rr" 0.8)"
    printf '  %-10s added p50 at c1 of the translation over pass-through: %s us\n' "" \
        "$(us "$(added2 "$kind" "airouter(anthropic)" "airouter(openai)")")"
    if [ "${K_CHECK[$kind]}" = stream ]; then
        line=""
        for t in "${TARGETS[@]}"; do
            runs_on "$kind" "$t" && line="$line $t=${R[$kind|$t|chunks]:-?}"
        done
        printf '  %-10s content chunks per stream (pre-flight):%s\n' "" "$line"
    fi
done

# The Responses API against chat: the same exchange, a Responses client's view of it.
for pair in "responses nonstream" "rstream stream"; do
    read -r rk ck <<<"$pair"
    selected "$rk" "${BENCH_KINDS:-}" || continue
    rr=$(ratio "${R[$rk|airouter(resp-xlate)|rps]:-}" "${R[$ck|airouter(openai)|rps]:-}")
    printf '  %-10s Responses translated to chat / chat pass-through req/s = %s   (cost target < 20%%: ratio > 0.8: %s)\n' \
        "$rk" "$(us "$rr")" "$(verdict "$rr" 0.8)"
    printf '  %-10s Responses native / chat pass-through req/s = %s; req/s airouter(openai) / nginx = %s\n' "" \
        "$(us "$(ratio "${R[$rk|airouter(openai)|rps]:-}" "${R[$ck|airouter(openai)|rps]:-}")")" \
        "$(us "$(ratio "${R[$rk|airouter(openai)|rps]:-}" "${R[$rk|nginx|rps]:-}")")"
    b=${R[$ck|airouter(openai)|p50c1]:-}
    v=${R[$rk|airouter(resp-xlate)|p50c1]:-}
    printf '  %-10s added p50 at c1 of the translation over chat pass-through: %s us\n' "" \
        "$(us "$([ -n "$b" ] && [ -n "$v" ] && echo $((v - b)))")"
done

if [ -n "$LEDGER_RECORDS" ]; then
    printf '  ledger     airouter(vkey): %s answers counted by wrk and curl, %s spend records with status 200, %s in all (%s)\n' \
        "${R[airouter(vkey)|answered]:-0}" "${LEDGER_OK:-?}" "$LEDGER_RECORDS" \
        "$([ "${LEDGER_OK:-0}" -ge "${R[airouter(vkey)|answered]:-0}" ] && echo "none lost" || echo "RECORDS MISSING")"
fi

if [ -n "$SHARED_RECORDS" ]; then
    shared_answered=$((${R[airouter(shared)|answered]:-0} + ${R[airouter(3x)|answered]:-0}))
    printf '  ledger     airouter(shared) and airouter(3x), one PostgreSQL: %s answers counted by wrk and curl, %s spend records with status 200, %s in all (%s)\n' \
        "$shared_answered" "${SHARED_OK:-?}" "$SHARED_RECORDS" \
        "$([ "${SHARED_OK:-0}" -ge "$shared_answered" ] && echo "none lost" || echo "RECORDS MISSING")"
fi

if [ "${#WARNINGS[@]}" -gt 0 ]; then
    echo
    echo "WARNING: errors during the runs (raw wrk output in $RAW):"
    printf '  %s\n' "${WARNINGS[@]}"
fi

# ---------------------------------------------------------------- JSON
{
    printf '{\n  "meta": {"date": "%s", "cpus": %s, "seconds": %s, "warmup_seconds": %s, ' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "$DURATION" "$WARMUP"
    printf '"connections": %s, "wrk_threads": %s, "rounds": %s,\n' "$CONNS" "$THREADS" "$ROUNDS"
    printf '    "git": "%s", "nginx": "%s", "latency_unit": "us", "rss_unit": "MB"},\n' \
        "$(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        "$(nginx -v 2>&1 | sed 's/.*nginx\///')"
    printf '  "results": [\n'
    first=1
    for kind in "${KINDS[@]}"; do
        for t in "${TARGETS[@]}"; do
            runs_on "$kind" "$t" || continue
            [ $first = 1 ] || printf ',\n'
            first=0
            printf '    {"kind": "%s", "target": "%s",\n' "$kind" "$t"
            printf '     "c64": {"rps": %s, "p50_us": %s, "p99_us": %s, "rps_runs": %s},\n' \
                "$(jnum "${R[$kind|$t|rps]:-}")" "$(jnum "${R[$kind|$t|p50]:-}")" \
                "$(jnum "${R[$kind|$t|p99]:-}")" "$(jarr "${R[$kind|$t|rps_runs]:-}")"
            printf '     "c1": {"p50_us": %s, "p99_us": %s}, "added_p50_c1_us": %s,\n' \
                "$(jnum "${R[$kind|$t|p50c1]:-}")" "$(jnum "${R[$kind|$t|p99c1]:-}")" \
                "$(jnum "$(added "$kind" "$t")")"
            printf '     "rss_mb": %s, "non2xx": %s, "socket_errors": %s, "stream_chunks": %s}' \
                "$(mb "${R[$kind|$t|rss]:-0}")" "${R[$kind|$t|non2xx]:-0}" \
                "${R[$kind|$t|sockerr]:-0}" "$(jnum "${R[$kind|$t|chunks]:-}")"
        done
    done
    printf '\n  ],\n  "ratios": {\n'
    first=1
    for kind in "${KINDS[@]}"; do
        [ $first = 1 ] || printf ',\n'
        first=0
        printf '    "%s": {"rps_airouter_over_nginx": %s, "rps_airouter_mock_over_direct": %s, ' "$kind" \
            "$(jnum "$(ratio "${R[$kind|airouter(openai)|rps]:-}" "${R[$kind|nginx|rps]:-}")")" \
            "$(jnum "$(ratio "${R[$kind|airouter(mock)|rps]:-}" "${R[$kind|direct|rps]:-}")")"
        printf '"rps_anthropic_over_passthrough": %s, ' \
            "$(jnum "$(ratio "${R[$kind|airouter(anthropic)|rps]:-}" "${R[$kind|airouter(openai)|rps]:-}")")"
        printf '"rps_vkey_over_master_key": %s, ' \
            "$(jnum "$(ratio "${R[$kind|airouter(vkey)|rps]:-}" "${R[$kind|airouter(openai)|rps]:-}")")"
        printf '"rps_shared_over_local": %s, ' \
            "$(jnum "$(ratio "${R[$kind|airouter(shared)|rps]:-}" "${R[$kind|airouter(vkey)|rps]:-}")")"
        printf '"cpu_per_request_local_over_shared": %s, ' \
            "$(jnum "$(ratio "${R[$kind|airouter(vkey)|cpu_us]:-}" "${R[$kind|airouter(shared)|cpu_us]:-}")")"
        printf '"rps_routing_over_passthrough": %s, ' \
            "$(jnum "$(ratio "${R[$kind|airouter(routing)|rps]:-}" "${R[$kind|airouter(openai)|rps]:-}")")"
        case $kind in
        responses) ck=nonstream ;;
        rstream) ck=stream ;;
        *) ck="" ;;
        esac
        if [ -n "$ck" ]; then
            printf '"rps_translated_over_chat_passthrough": %s, ' \
                "$(jnum "$(ratio "${R[$kind|airouter(resp-xlate)|rps]:-}" "${R[$ck|airouter(openai)|rps]:-}")")"
        fi
        printf '"rps_target": 0.8,\n      "added_p50_c1_us": {"nginx": %s, "airouter": %s}, ' \
            "$(jnum "$(added "$kind" nginx)")" "$(jnum "$(added "$kind" "airouter(openai)")")"
        printf '"rss_mb": {"nginx": %s, "airouter": %s}}' \
            "$(mb "${R[$kind|nginx|rss]:-0}")" "$(mb "${R[$kind|airouter(openai)|rss]:-0}")"
    done
    printf '\n  },\n  "ledger": {"answered": %s, "records_200": %s, "records": %s},\n' \
        "${R[airouter(vkey)|answered]:-0}" "$(jnum "${LEDGER_OK:-}")" "$(jnum "$LEDGER_RECORDS")"
    printf '  "warnings": %s\n}\n' "$(
        printf '['
        sep=''
        for w in "${WARNINGS[@]}"; do
            printf '%s"%s"' "$sep" "$(printf '%s' "$w" | sed 's/\\/\\\\/g; s/"/\\"/g')"
            sep=', '
        done
        printf ']'
    )"
} >"$OUT/results.json"
echo
echo "Results: $OUT/results.json (raw wrk output: $RAW/)"

if [ "${BENCH_SCALE:-1}" != 0 ]; then
    # shellcheck source=bench/scale.sh
    . "$here/scale.sh"
fi
