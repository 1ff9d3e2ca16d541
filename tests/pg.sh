#!/bin/sh
# tests/pg.sh start|stop|pause|resume|freeze|thaw|url DIR: a throwaway PostgreSQL server for the tests.
#   start: initdb into DIR/data and start postgres there, listening on 127.0.0.1 on a free
#          port only (no Unix socket outside DIR), trust authentication for the "airouter"
#          role; prints the URL (postgresql://airouter@127.0.0.1:PORT/postgres) and keeps
#          it in DIR/url. Exit status 2 (and a message on stderr) when PostgreSQL's binaries
#          are not installed, so that callers can skip.
#   stop:  stops the server and removes DIR.
#   pause: stops the server but keeps DIR (an outage); resume: starts it again on the same
#          port and data.
#   freeze: SIGSTOPs the server and its processes (a database that hangs: connections are
#          accepted by the kernel and nothing answers); thaw: SIGCONTs them.
#   url:   prints the URL of a running one.
# PostgreSQL refuses to run as root: as root the server runs as the postgres user
# (runuser), which owns DIR/data.
set -eu
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|pause|resume|freeze|thaw|url DIR" >&2; exit 64; }

bindir=
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && { bindir=$d; break; }
done
if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1; then
    bindir=$(dirname "$(command -v initdb)")
fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    if [ -z "$bindir" ]; then
        echo "tests/pg.sh: PostgreSQL is not installed (initdb, postgres); scripts/deps.sh installs it" >&2
        exit 2
    fi
    mkdir -p "$dir/data" "$dir/run"
    [ "$(id -u)" = 0 ] && chown -R postgres "$dir"
    chmod 700 "$dir/data"
    as_owner "$bindir/initdb" -D "$dir/data" -U airouter -A trust -E UTF8 --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # a free port: bind port 0 and take what the kernel gave (racy only against others
    # doing the same between here and postgres's bind; a failure says so)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
        -o "-h 127.0.0.1 -p $port -k $dir/run -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
    url="postgresql://airouter@127.0.0.1:$port/postgres"
    echo "$url" >"$dir/url"
    echo "$url"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ] && [ -n "$bindir" ]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
pause)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
resume)
    port=$(sed 's/.*:\([0-9]*\)\/.*/\1/' "$dir/url")
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
        -o "-h 127.0.0.1 -p $port -k $dir/run -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
    ;;
freeze | thaw)
    sig=STOP
    [ "$cmd" = thaw ] && sig=CONT
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    # the postmaster and its children, by process id
    kill -s "$sig" "$pid" $(ps -o pid= --ppid "$pid")
    ;;
url)
    cat "$dir/url"
    ;;
*)
    echo "usage: $0 start|stop|pause|resume|freeze|thaw|url DIR" >&2
    exit 64
    ;;
esac
