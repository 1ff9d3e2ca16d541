# bench/scale.sh: the scaling part of `make bench`, sourced by bench/run.sh after its main
# table (it uses lib.sh's helpers and run.sh's wrk_run/wrk_field). Three things:
#  1. req/s, p99 and errors of non-streaming requests at 64, 256, 1024 and 4096
#     connections, for 1 and 2 workers, airouter and nginx side by side in the same run,
#     with RSS after each run and, for 2 workers, the share of CPU each worker thread got;
#  2. memory per idle keep-alive client connection (4096 of them, one request each);
#  3. 10,000 concurrent slow streams (20 chunks, 100 ms apart), each on its own connection:
#     errors, p50/p99 time to first byte, peak RSS.
# Knobs: BENCH_SCALE_SECONDS (5), BENCH_SCALE_CONNS ("64 256 1024 4096"),
# BENCH_SSE_STREAMS (10000), BENCH_SSE_RAMP_MS (2000). Output: a table on stdout and
# $OUT/scaling.json.

SCALE_SECONDS=${BENCH_SCALE_SECONDS:-5}
SCALE_CONNS=${BENCH_SCALE_CONNS:-64 256 1024 4096}
SSE_STREAMS=${BENCH_SSE_STREAMS:-10000}
SSE_RAMP_MS=${BENCH_SSE_RAMP_MS:-2000}
declare -A S # S[workers|conns|target|field]
# One process proxies a stream with two descriptors (client and upstream connection), so
# its open-file limit caps the streams: airouter's default max_connections is
# (limit - 64) / 2 and refuses the rest with a 503. nginx's worker processes each have
# the limit. Where run.sh could not raise the limit, a second run stays 5 % below the cap
# (a finished stream's connection counts until the server has seen it close).
NOFILE=$(ulimit -n)
SSE_FIT=$(((NOFILE - 64) / 2 * 95 / 100))

# worker_cpu PID: "ar-worker-0=TICKS ar-worker-1=TICKS ..." (utime + stime of each thread)
worker_cpu() {
    local t
    for t in /proc/"$1"/task/*; do
        case $(cat "$t/comm" 2>/dev/null) in
        ar-worker-*) printf '%s=%s ' "$(cat "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")" ;;
        esac
    done
}

# shares BEFORE AFTER: the smallest share of the workers' CPU one worker got, in percent,
# and every share ("42 ar-worker-0=58% ar-worker-1=42%").
shares() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); before[kv[1]] = kv[2] }
        n = split(b, y, " "); for (i = 1; i <= n; i++) { split(y[i], kv, "="); d[kv[1]] = kv[2] - before[kv[1]]; tot += d[kv[1]] }
        min = 100; line = ""
        for (k in d) { p = tot > 0 ? 100 * d[k] / tot : 0; if (p < min) min = p; line = line sprintf(" %s=%.0f%%", k, p) }
        printf "%.0f%s", min, line }'
}

# scale_run WORKERS CONNS TARGET URL PID: one wrk run of non-streaming requests.
scale_run() {
    local w=$1 c=$2 t=$3 url=$4 pid=$5 f before after threads=2
    f=$RAW/$(slug "scale-w$w-c$c-$t").txt
    [ "$c" -lt "$threads" ] && threads=$c
    before=$(worker_cpu "$pid")
    wrk_run "$f" "$url/v1/chat/completions" "$here/post.lua" "$here/bodies/chat.json" "" \
        "$BENCH_MASTER_KEY" -t"$threads" -c"$c" -d"${SCALE_SECONDS}s" --timeout 10s
    after=$(worker_cpu "$pid")
    local req dur
    req=$(wrk_field "$f" requests)
    [ -n "$req" ] || { cat "$f" >&2; die "wrk gave no result for the scaling run $t w$w c$c"; }
    dur=$(wrk_field "$f" duration_us)
    S[$w|$c|$t|rps]=$(awk -v n="$req" -v d="$dur" 'BEGIN { printf "%.0f", (d > 0 ? n / (d / 1e6) : 0) }')
    S[$w|$c|$t|p99]=$(wrk_field "$f" p99_us)
    S[$w|$c|$t|err]=$(($(wrk_field "$f" err_status) + $(wrk_field "$f" err_connect) + \
        $(wrk_field "$f" err_read) + $(wrk_field "$f" err_write) + $(wrk_field "$f" err_timeout)))
    S[$w|$c|$t|rss]=$(rss_kb "$pid")
    if [ -n "$before" ] && [ "$w" -gt 1 ]; then
        S[$w|$c|$t|shares]=$(shares "$before" "$after")
    fi
    alive "$pid" || die "$t (w$w) died during the c$c scaling run"
}

# peak_rss PID FILE: samples VmRSS (with children) every 100 ms into FILE until killed.
peak_rss() {
    local max=0 kb
    while alive "$1"; do
        kb=$(rss_kb "$1")
        [ "$kb" -gt "$max" ] && max=$kb && echo "$max" >"$2"
        sleep 0.1
    done
}

# settle_connections URL: waits (up to 10 s) until airouter's /health shows no client
# connection but the asking one, so that a run does not start with the last one's still
# closing (they count against max_connections). nginx has no such page: no wait.
settle_connections() {
    local i open
    for i in $(seq 1 100); do
        open=$(curl -s -m 2 "$1/health" | grep -o '"connections":{"open":[0-9]*' | grep -o '[0-9]*$')
        [ -z "$open" ] || [ "$open" -le 1 ] && return 0
        sleep 0.1
    done
    log "bench: $1 still has $open connections open after 10 s"
}

# sse_run WORKERS TARGET URL PID HEADERS STREAMS: the concurrent slow streams against one
# target.
sse_run() {
    local w=$1 t=$2 url=$3 pid=$4 headers=$5 streams=$6 out sampler peakf
    peakf=$BENCH_TMP/peak.$t
    [ "$t" = airouter ] && settle_connections "$url"
    echo 0 >"$peakf"
    peak_rss "$pid" "$peakf" &
    sampler=$!
    out=$(SSE_HEADERS=$headers node "$here/sse_load.mjs" "$url/v1/chat/completions" \
        "$BENCH_MASTER_KEY" "$here/bodies/chat_stream.json" "$streams" "$SSE_RAMP_MS" 60000)
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    S[$w|sse|$t|json]=$out
    S[$w|sse|$t|peak]=$(cat "$peakf")
    alive "$pid" || die "$t died during the concurrent streams"
}

jget() { # JSON FIELD: a top-level number from sse_load's line
    printf '%s' "$1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];console.log(typeof v==="object"?JSON.stringify(v):v)})' "$2"
}

log "== scaling: ${SCALE_SECONDS}s per run, connections $SCALE_CONNS, 1 and 2 workers"
for w in 1 2; do
    start_nginx "nginx-scale-w$w" "$here/configs/nginx-scale.conf" WORKERS="$w"
    ng_url="http://127.0.0.1:$NGINX_PORT" ng_pid=$NGINX_PID
    start_airouter "airouter-scale-w$w" "$build" "$here/configs/airouter-scale.yaml" WORKERS="$w"
    ar_url="http://127.0.0.1:$AR_PORT" ar_pid=$AR_PID
    for c in $SCALE_CONNS; do
        log "   w$w c$c: nginx, airouter"
        # one second of warm-up each opens the connections and fills the pools
        wrk_run "$RAW/scale-warm.txt" "$ng_url/v1/chat/completions" "$here/post.lua" \
            "$here/bodies/chat.json" "" "$BENCH_MASTER_KEY" -t2 -c"$c" -d1s --timeout 10s
        scale_run "$w" "$c" nginx "$ng_url" "$ng_pid"
        wrk_run "$RAW/scale-warm.txt" "$ar_url/v1/chat/completions" "$here/post.lua" \
            "$here/bodies/chat.json" "" "$BENCH_MASTER_KEY" -t2 -c"$c" -d1s --timeout 10s
        scale_run "$w" "$c" airouter "$ar_url" "$ar_pid"
    done
    if [ "$w" = 2 ]; then
        log "   $SSE_STREAMS concurrent streams (20 chunks, 100 ms apart): nginx, airouter"
        sse_run "$w" nginx "$ng_url" "$ng_pid" $'x-mock-chunks: 20\nx-mock-chunk-delay: 100ms' \
            "$SSE_STREAMS"
        sse_run "$w" airouter "$ar_url" "$ar_pid" "" "$SSE_STREAMS"
        if [ "$SSE_FIT" -lt "$SSE_STREAMS" ]; then
            log "   $SSE_FIT concurrent streams (what the open-file limit lets one process proxy)"
            sse_run fit airouter "$ar_url" "$ar_pid" "" "$SSE_FIT"
        fi
    fi
    stop_pid "$ng_pid" || true
    stop_pid "$ar_pid" || true
done

log "   memory per idle keep-alive connection (4096, one request each)"
start_airouter airouter-idle "$build" "$here/configs/airouter-scale.yaml" WORKERS=1
idle_before=$(rss_kb "$AR_PID")
coproc IDLE { node "$here/idle_conns.mjs" "http://127.0.0.1:$AR_PORT/v1/chat/completions" \
    "$BENCH_MASTER_KEY" "$here/bodies/chat.json" 4096 60; }
read -r idle_line <&"${IDLE[0]}" || idle_line='{}'
idle_after=$(rss_kb "$AR_PID")
kill "$IDLE_PID" 2>/dev/null || true
wait "$IDLE_PID" 2>/dev/null || true
stop_pid "$AR_PID" || true
idle_per_conn=$(((idle_after - idle_before) * 1024 / 4096))

# ---------------------------------------------------------------- report
echo
echo "Scaling: wrk -t2 -cN ${SCALE_SECONDS}s, non-streaming; p99 in microseconds; RSS after the"
echo "run (MB); errors = non-2xx + socket errors; shares = CPU per worker thread (2 workers)."
sfmt='%-8s %-6s %10s %10s %10s %10s %7s %7s %7s %7s  %s\n'
# shellcheck disable=SC2059
printf "$sfmt" workers conns 'nginx r/s' 'airtr r/s' 'nginx p99' 'airtr p99' ratio 'ng RSS' 'ar RSS' errors shares
for w in 1 2; do
    for c in $SCALE_CONNS; do
        # shellcheck disable=SC2059
        printf "$sfmt" "$w" "$c" "${S[$w|$c|nginx|rps]}" "${S[$w|$c|airouter|rps]}" \
            "${S[$w|$c|nginx|p99]}" "${S[$w|$c|airouter|p99]}" \
            "$(ratio "${S[$w|$c|airouter|rps]}" "${S[$w|$c|nginx|rps]}")" \
            "$(mb "${S[$w|$c|nginx|rss]}")" "$(mb "${S[$w|$c|airouter|rss]}")" \
            "${S[$w|$c|nginx|err]}/${S[$w|$c|airouter|err]}" "${S[$w|$c|airouter|shares]:-}"
    done
done
first_c=${SCALE_CONNS%% *}
echo
echo "Concurrent streams ($SSE_STREAMS, 2 workers, 20 chunks 100 ms apart, started over ${SSE_RAMP_MS} ms):"
for t in nginx airouter; do
    j=${S[2|sse|$t|json]}
    printf '  %-9s errors %s %s, TTFB p50 %s ms p99 %s ms, stream p99 %s ms, peak RSS %s MB\n' "$t" \
        "$(jget "$j" errors)" "$(jget "$j" error_kinds)" "$(jget "$j" ttfb_p50_ms)" \
        "$(jget "$j" ttfb_p99_ms)" "$(jget "$j" duration_p99_ms)" "$(mb "${S[2|sse|$t|peak]}")"
done
if [ "$SSE_FIT" -lt "$SSE_STREAMS" ]; then
    j=${S[fit|sse|airouter|json]}
    echo "  The open-file limit here is $NOFILE (run.sh could not raise it): one airouter process can"
    echo "  proxy $(((NOFILE - 64) / 2)) streams (max_connections), the rest are refused with 503 by design."
    printf '  airouter, %s streams: errors %s %s, TTFB p50 %s ms p99 %s ms, stream p99 %s ms, peak RSS %s MB\n' \
        "$SSE_FIT" "$(jget "$j" errors)" "$(jget "$j" error_kinds)" "$(jget "$j" ttfb_p50_ms)" \
        "$(jget "$j" ttfb_p99_ms)" "$(jget "$j" duration_p99_ms)" "$(mb "${S[fit|sse|airouter|peak]}")"
fi
echo "Idle keep-alive connections: $(jget "$idle_line" ok) of 4096 answered; RSS $(mb "$idle_before") -> $(mb "$idle_after") MB = $idle_per_conn bytes per connection"

echo
echo "Scaling targets:"
r=$(ratio "${S[1|1024|airouter|rps]:-}" "${S[1|$first_c|airouter|rps]:-}")
printf '  one worker, req/s at c1024 / c%s           = %s   (target >= 0.85: %s)\n' "$first_c" "$(us "$r")" "$(verdict "$r" 0.85)"
sh=${S[2|256|airouter|shares]:-}
printf '  two workers, c256, smallest worker share   = %s%%   (target >= 30%%: %s)\n' "$(us "${sh%% *}")" \
    "$(verdict "${sh%% *}" 30)"
r=$(ratio "${S[2|4096|nginx|p99]:-}" "${S[2|4096|airouter|p99]:-}")
printf '  two workers, c4096: errors %s, p99 nginx/airouter = %s (target >= 0.33: %s), RSS %s MB (target <= 96 MiB: %s)\n' \
    "${S[2|4096|airouter|err]:-?}" "$(us "$r")" "$(verdict "$r" 0.333)" "$(mb "${S[2|4096|airouter|rss]:-0}")" \
    "$(awk -v k="${S[2|4096|airouter|rss]:-0}" 'BEGIN { print (k > 0 && k <= 96 * 1024) ? "meets target" : "below target" }')"
e=$(jget "${S[2|sse|airouter|json]}" errors)
printf '  %s concurrent slow streams: %s errors   (target 0: %s)\n' "$SSE_STREAMS" "$e" \
    "$([ "$e" = 0 ] && echo "meets target" || echo "below target")"
if [ "$SSE_FIT" -lt "$SSE_STREAMS" ]; then
    e=$(jget "${S[fit|sse|airouter|json]}" errors)
    printf '  %s concurrent slow streams (the open-file limit of %s): %s errors   (target 0: %s)\n' \
        "$SSE_FIT" "$NOFILE" "$e" "$([ "$e" = 0 ] && echo "meets target" || echo "below target")"
fi
printf '  memory per idle keep-alive connection      = %s bytes   (target <= 16384: %s)\n' "$idle_per_conn" \
    "$([ "$idle_per_conn" -le 16384 ] && echo "meets target" || echo "below target")"

{
    printf '{"seconds": %s, "runs": [\n' "$SCALE_SECONDS"
    sep=''
    for w in 1 2; do
        for c in $SCALE_CONNS; do
            for t in nginx airouter; do
                printf '%s  {"workers": %s, "connections": %s, "target": "%s", "rps": %s, "p99_us": %s, "errors": %s, "rss_mb": %s, "shares": "%s"}' \
                    "$sep" "$w" "$c" "$t" "$(jnum "${S[$w|$c|$t|rps]:-}")" "$(jnum "${S[$w|$c|$t|p99]:-}")" \
                    "$(jnum "${S[$w|$c|$t|err]:-}")" "$(mb "${S[$w|$c|$t|rss]:-0}")" "${S[$w|$c|$t|shares]:-}"
                sep=$',\n'
            done
        done
    done
    printf '\n], "open_file_limit": %s, "streams_within_limit": %s,\n' "$NOFILE" "${S[fit|sse|airouter|json]:-null}"
    printf '"streams": {"nginx": %s, "airouter": %s, "peak_rss_mb": {"nginx": %s, "airouter": %s}},\n' \
        "${S[2|sse|nginx|json]:-null}" "${S[2|sse|airouter|json]:-null}" \
        "$(mb "${S[2|sse|nginx|peak]:-0}")" "$(mb "${S[2|sse|airouter|peak]:-0}")"
    printf '"idle_connection_bytes": %s}\n' "$idle_per_conn"
} >"$OUT/scaling.json"
echo "Scaling results: $OUT/scaling.json"
