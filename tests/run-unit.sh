#!/bin/sh
# Runs each unit-test binary in its own process with a time limit; fails if any fails.
# The store's binaries run twice: on SQLite, then on PostgreSQL (a throwaway server from
# tests/pg.sh, AR_TEST_PG_URL set), skipped with a message when PostgreSQL is not installed.
set -u
build=$1
shift
failed=0
count=0
run() { # run BINARY LOG LABEL
    count=$((count + 1))
    if ! timeout 120 "$1" >"$2" 2>&1; then
        echo "FAIL $3"
        cat "$2"
        failed=$((failed + 1))
    else
        grep -E '^\[  PASSED  \]' "$2" | sed "s|^|$3: |"
    fi
}
store_bins=
for t in "$@"; do
    run "$t" "$t.log" "$(basename "$t")"
    case "$t" in */tests/unit/store/test_*) store_bins="$store_bins $t" ;; esac
done
if [ -n "$store_bins" ]; then
    pgdir=$(mktemp -u /tmp/airouter-pg-XXXXXX)
    pgurl=$(tests/pg.sh start "$pgdir" 2>"$build/pg-start.log")
    pgrc=$?
    if [ "$pgrc" -eq 2 ]; then
        echo "unit: PostgreSQL is not installed: the store tests on PostgreSQL are skipped ($(cat "$build/pg-start.log"))"
    elif [ "$pgrc" -ne 0 ]; then
        echo "FAIL could not start PostgreSQL for the store tests:"
        cat "$build/pg-start.log"
        failed=$((failed + 1))
    else
        for t in $store_bins; do
            AR_TEST_PG_URL=$pgurl run "$t" "$t.pg.log" "$(basename "$t") (postgres)"
        done
    fi
    tests/pg.sh stop "$pgdir"
fi
echo "unit: $count runs, $failed failed"
[ "$failed" -eq 0 ]
