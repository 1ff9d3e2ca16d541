#!/bin/sh
# Installs what airouter needs to build, test and benchmark on Debian 12.
# Idempotent: it asks dpkg first and only calls apt-get for what is missing.
# Usage: scripts/deps.sh [build|test|bench|fuzz|all]   (default: build)
set -eu

BUILD_PKGS="gcc make pkg-config node-llhttp libuv1-dev libcurl4-openssl-dev libjansson-dev
 libyaml-dev libssl-dev libsqlite3-dev libpq-dev libhiredis-dev"
TEST_PKGS="libcmocka-dev curl sqlite3 postgresql redis-server prometheus valgrind chromium"  # sqlite3: e2e tests read the ledger; chromium: the dashboard test (puppeteer-core)
BENCH_PKGS="wrk nginx procps iproute2"  # procps (pgrep) and iproute2 (ss): not in a minimal install
# libFuzzer's runtime is only a recommendation of clang, which --no-install-recommends skips.
FUZZ_PKGS="clang libclang-rt-14-dev"

what=${1:-build}
case "$what" in
    build) want="$BUILD_PKGS" ;;
    test)  want="$BUILD_PKGS $TEST_PKGS" ;;
    bench) want="$BUILD_PKGS $TEST_PKGS $BENCH_PKGS" ;;
    fuzz)  want="$BUILD_PKGS $FUZZ_PKGS" ;;
    all)   want="$BUILD_PKGS $TEST_PKGS $BENCH_PKGS $FUZZ_PKGS" ;;
    *) echo "usage: $0 [build|test|bench|fuzz|all]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
command -v node >/dev/null 2>&1 || { [ "$what" = build ] || [ "$what" = fuzz ] || missing="$missing nodejs npm"; }
# The end-to-end tests need npm too. Debian's nodejs comes without it (and node-llhttp pulls
# nodejs in, so a node on the machine says nothing about npm); NodeSource's nodejs has it.
case "$what" in test|bench|all) command -v npm >/dev/null 2>&1 || missing="$missing npm" ;; esac

if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; then
        echo "deps: missing Debian packages:$missing; run this as root or install sudo" >&2
        exit 1
    fi
    echo "deps: installing:$missing"
    # Another apt-get (or a second make) may hold dpkg's lock: wait for it instead of failing.
    lock="-o DPkg::Lock::Timeout=600"
    $sudo apt-get $lock update -qq
    # Service packages must not start their daemons: tests start their own on 127.0.0.1.
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get $lock install -y -qq --no-install-recommends $missing >/dev/null
fi

# The end-to-end suite (node --test, the openai and @anthropic-ai/sdk packages) runs on
# Debian 12's own nodejs (18.20) as well as on later ones; an older node fails in obscure
# ways, so say so here.
case "$what" in test|bench|all)
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$major" -lt 18 ]; then
        echo "deps: the end-to-end tests need Node.js 18 or later; $(command -v node) is $(node --version 2>/dev/null)" >&2
        exit 1
    fi ;;
esac

if [ "$what" != build ] && [ "$what" != fuzz ]; then
    here=$(cd "$(dirname "$0")/.." && pwd)
    if [ ! -d "$here/tests/e2e/node_modules" ] || [ "$here/tests/e2e/package-lock.json" -nt "$here/tests/e2e/node_modules/.stamp" ]; then
        echo "deps: npm ci in tests/e2e"
        (cd "$here/tests/e2e" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.stamp)
    fi
    # The real coding-agent CLIs of the client smoke tests (e2e/clients.test.mjs): Codex and
    # Claude Code, pinned. npm installs only this platform's binary (optional dependencies).
    if [ ! -d "$here/tests/clients/node_modules" ] || [ "$here/tests/clients/package-lock.json" -nt "$here/tests/clients/node_modules/.stamp" ]; then
        echo "deps: npm ci in tests/clients"
        (cd "$here/tests/clients" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.stamp)
    fi
fi
