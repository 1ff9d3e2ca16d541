#!/bin/sh
# Enforces the include table of ../shared/STYLE.md section 2: which src/ modules a module
# may include, and that private headers (*_int.h) stay inside their folder. Prints every
# violation as FILE:LINE and exits 1 if there is any.
set -u
cd "$(dirname "$0")/.."

allowed() {
    case "$1" in
    core)      echo "core" ;;
    config)    echo "core config" ;;
    server)    echo "core server" ;;
    upstream)  echo "core upstream" ;;
    providers) echo "core providers upstream/http_req.h" ;;
    router)    echo "core router" ;;
    store)     echo "core store" ;;
    tenant)    echo "core store tenant" ;;
    fronts)    echo "core providers fronts" ;;
    gateway)   echo "core config server upstream providers fronts router store tenant gateway admin" ;;
    admin)     echo "core server router store tenant admin" ;;
    cli)       echo "core gateway config store tenant cli" ;;
    *)         echo "" ;;
    esac
}

bad=0
for f in $(find src -name '*.[ch]' | sort); do
    mod=$(echo "$f" | cut -d/ -f2)
    ok=$(allowed "$mod")
    grep -n '#include "' "$f" | while IFS= read -r line; do
        n=${line%%:*}
        inc=$(echo "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
        target=${inc%%/*}
        hit=0
        for a in $ok; do
            case "$inc" in
            "$a" | "$a"/*) hit=1 ;;
            esac
        done
        if [ "$hit" -eq 0 ]; then
            echo "$f:$n: module '$mod' may not include \"$inc\""
            echo x >> /tmp/check-includes.$$
        fi
        case "$inc" in
        *_int.h)
            if [ "$target" != "$mod" ]; then
                echo "$f:$n: private header \"$inc\" used outside src/$target"
                echo x >> /tmp/check-includes.$$
            fi ;;
        esac
    done
done
if [ -s /tmp/check-includes.$$ ]; then bad=1; fi
rm -f /tmp/check-includes.$$
[ "$bad" -eq 0 ] && echo "includes: ok"
exit "$bad"
