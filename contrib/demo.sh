#!/usr/bin/env bash
# make demo: a throwaway cluster under the repository (or the server named by PG*
# variables), the extension, demo data, scoring, and what a CSM looks at first.
#   contrib/demo.sh start   (make demo)        contrib/demo.sh stop   (make demo-stop)
# DEMO_CUSTOMERS, DEMO_DAYS, DEMO_SEED size the generated data.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
customers=${DEMO_CUSTOMERS:-5000}
days=${DEMO_DAYS:-180}
seed=${DEMO_SEED:-42}
port=${DEMO_PORT:-54329}
bindir=$(pg_config --bindir)
demo=$top/.demo

run_as=()
[ "$(id -u)" -eq 0 ] && run_as=(runuser -u postgres --)
# The server's user must reach the data directory; a checkout under a private
# home directory cannot host it, so fall back to /tmp there.
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$top" 2>/dev/null; then
    demo=/tmp/cscopilot-demo-$(echo "$top" | md5sum | cut -c1-8)
fi
pgdata=$demo/data
sock=$demo/sock

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "${1:-start}" = "stop" ]; then
    if [ -f "$pgdata/postmaster.pid" ]; then
        "${run_as[@]}" "$bindir/pg_ctl" -D "$pgdata" -m fast stop
    fi
    rm -rf "$demo"
    echo "demo cluster stopped and removed"
    exit 0
fi

step "installing the extension"
if [ -w "$(pg_config --pkglibdir)" ]; then make -s install >/dev/null; else sudo make -s install >/dev/null; fi

if [ -n "${PGHOST:-}${PGPORT:-}${PGDATABASE:-}${PGUSER:-}" ]; then
    step "using the server named by the PG* variables"
    PSQL=(psql -X -v ON_ERROR_STOP=1 -q)
    connect="psql (with the same PG* variables)"
else
    if [ ! -f "$pgdata/PG_VERSION" ]; then
        step "creating a throwaway cluster in $pgdata (port $port)"
        mkdir -p "$demo" "$sock"
        [ "$(id -u)" -eq 0 ] && chown -R postgres: "$demo"
        "${run_as[@]}" "$bindir/initdb" -D "$pgdata" -A trust -U postgres --no-sync >/dev/null
        cat >> "$pgdata/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$sock'
shared_preload_libraries = 'cscopilot'
max_worker_processes = 16
CONF
    fi
    if ! "${run_as[@]}" "$bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
        "${run_as[@]}" "$bindir/pg_ctl" -D "$pgdata" -l "$demo/server.log" -w start >/dev/null
    fi
    "${run_as[@]}" "$bindir/psql" -X -q -h "$sock" -p "$port" -U postgres -d postgres \
        -c "DROP DATABASE IF EXISTS cscopilot_demo" -c "CREATE DATABASE cscopilot_demo" >/dev/null
    PSQL=("${run_as[@]}" "$bindir/psql" -X -v ON_ERROR_STOP=1 -q -h "$sock" -p "$port" -U postgres -d cscopilot_demo)
    connect="psql -h $sock -p $port -U postgres cscopilot_demo"
fi

"${PSQL[@]}" -c "DROP EXTENSION IF EXISTS cscopilot CASCADE" -c "CREATE EXTENSION cscopilot" 2>&1 | grep -v NOTICE || true

step "generating demo data: $customers customers x $days days (seed $seed)"
start=$(date +%s.%N)
"${PSQL[@]}" -c "SET client_min_messages = notice" -c "SELECT cs.generate_demo_data($customers, $days, $seed) AS rows_generated"
awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "generated in %.1f s\n", e - s }'

if [ -f contrib/demo-report.sql ]; then
    "${PSQL[@]}" -P pager=off -f contrib/demo-report.sql
fi

step "done"
cat <<MSG
Connect:      $connect
Stop:         make demo-stop   (stops the cluster and removes $demo)
MSG
