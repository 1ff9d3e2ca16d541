#!/bin/sh
# Runs each unit-test binary in its own process with a time limit; fails if any fails.
set -u
build=$1
shift
failed=0
count=0
for t in "$@"; do
    count=$((count + 1))
    if ! timeout 120 "$t" >"$t.log" 2>&1; then
        echo "FAIL $t"
        cat "$t.log"
        failed=$((failed + 1))
    else
        grep -E '^\[  PASSED  \]' "$t.log" | sed "s|^|$(basename "$t"): |"
    fi
done
echo "unit: $count binaries, $failed failed"
[ "$failed" -eq 0 ]
