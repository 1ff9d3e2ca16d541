#!/bin/sh
# Runs libFuzzer targets one after the other (the machine's cores are shared) and prints,
# per target, the inputs executed, the rate, the corpus size and the verdict.
#   run.sh smoke BUILD SECONDS NAME...   a fresh scratch corpus per run, seeded from
#                                        tests/fuzz/corpus/NAME (nothing committed changes)
#   run.sh long BUILD SECONDS NAME...    the work corpus BUILD/corpus/NAME is kept between
#                                        runs, so long runs build on each other
# A crash, a leak, a sanitizer report or a broken invariant fails the run; the input is
# saved as BUILD/artifacts/NAME-crash-... and the log's tail is printed.
set -u
mode=$1
build=$2
seconds=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
failed=0
printf '%-16s %12s %8s %8s %8s  %s\n' target executed exec/s corpus seconds result
for name in "$@"; do
    bin="$build/fuzz_$name"
    seeds="$here/corpus/$name"
    work="$build/corpus/$name"
    [ "$mode" = smoke ] && work="$build/smoke-corpus/$name" && rm -rf "$work"
    mkdir -p "$work" "$build/artifacts" "$seeds"
    dict=""
    [ -f "$here/$name.dict" ] && dict="-dict=$here/$name.dict"
    log="$build/fuzz_$name.log"
    start=$(date +%s)
    # -timeout: one input may take at most 10 s; -rss_limit_mb: a runaway allocation is a
    # finding; stdin is /dev/null so nothing a target opens can wait on a terminal.
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$name-" $dict "$work" "$seeds" \
        </dev/null >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    units=$(find "$work" -type f | wc -l)
    result=ok
    if [ "$rc" -ne 0 ]; then
        result="FAILED (exit $rc)"
        failed=$((failed + 1))
    fi
    printf '%-16s %12s %8s %8s %8s  %s\n' "$name" "${runs:-?}" "${rate:-?}" "$units" "$took" \
        "$result"
    if [ "$rc" -ne 0 ]; then
        tail -n 60 "$log" | sed 's/^/    /'
    fi
done
[ "$failed" -eq 0 ] || { echo "fuzz: $failed target(s) failed; inputs in $build/artifacts/"; exit 1; }
