#!/usr/bin/env bash
# A Citus cluster on loopback: a coordinator and two workers, each its own
# initdb on a free port, in a private directory, running as the postgres user
# when invoked as root, with this checkout's cscopilot installed into a private
# copy of the PostgreSQL installation (contrib/cluster.sh, CLUSTER_PREFIX) and
# Citus taken from that same copy: Citus is installed system-wide, as its own
# packages or ../shared/citus/build.sh install it, and the copy includes it.
#
# Sourced (contrib/test-citus.sh):
#   citus_installed                  true when the PostgreSQL of pg_config has citus.so and citus.control
#   citus_cluster_start DIR DB       install, start three nodes, CREATE EXTENSION citus in DB on each,
#                                    register the coordinator and the workers; sets CITUS_PORTS (coordinator
#                                    first), CITUS_SOCK, citus_psql (function: citus_psql PORT [psql args])
#   citus_database_create DB         another database on every node, Citus in it, nodes registered
#   citus_cluster_stop               stops every node started, removes DIR
# Run:
#   contrib/citus-cluster.sh [COMMAND...]   starts a cluster, runs COMMAND with PGHOST, PGPORT (the
#                                    coordinator), PGDATABASE, PGUSER and CITUS_WORKER_PORTS set (without a
#                                    command: prints the nodes), then stops it.  CITUS_TIMEOUT (seconds,
#                                    default 900) bounds the whole run.
#
# Every node has shared_preload_libraries = 'citus,cscopilot': Citus refuses to
# start unless it is loaded first.  Only the coordinator runs cscopilot's
# scoring worker (cscopilot.databases = DB); the workers' is left off, their
# data is reached through the coordinator.

CITUS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CITUS_DIR=
CITUS_PORTS=()
CITUS_SOCK=
CITUS_DB=

citus_installed() {
    [ -f "$(pg_config --pkglibdir)/citus.so" ] && [ -f "$(pg_config --sharedir)/extension/citus.control" ]
}

# A port nothing listens on, neither on loopback nor as a socket file.
citus_free_port() {
    local p tries=0
    while [ $tries -lt 200 ]; do
        p=$((56000 + RANDOM % 8000)); tries=$((tries + 1))
        (: </dev/tcp/127.0.0.1/$p) 2>/dev/null && continue
        ls /tmp/.s.PGSQL.$p /var/run/postgresql/.s.PGSQL.$p >/dev/null 2>&1 && continue
        case " ${CITUS_PORTS[*]} " in *" $p "*) continue ;; esac
        echo "$p"; return 0
    done
    return 1
}

citus_psql() {
    local port=$1; shift
    "${CLUSTER_RUN_AS[@]}" env PGOPTIONS="${CITUS_PGOPTIONS:-}" "$CLUSTER_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$CITUS_SOCK" -p "$port" -U postgres "$@"
}

# citus_node_start NAME PORT PRELOAD DATABASES: initdb and start one node.
citus_node_start() {
    local name=$1 port=$2 preload=$3 dbs=$4 pgdata=$CITUS_DIR/$1
    "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/initdb" -D "$pgdata" -A trust -U postgres --no-sync >/dev/null || return 1
    cat >> "$pgdata/postgresql.conf" <<CONF
port = $port
listen_addresses = 'localhost'
unix_socket_directories = '$CITUS_SOCK'
shared_preload_libraries = '$preload'
cscopilot.databases = '$dbs'
max_worker_processes = 16
max_connections = 60
max_prepared_transactions = 60
shared_buffers = '64MB'
work_mem = '16MB'
fsync = off
synchronous_commit = off
full_page_writes = off
citus.shard_count = 8
citus.log_remote_commands = off
CONF
    "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/pg_ctl" -D "$pgdata" -l "$CITUS_DIR/$name.log" -w -t 60 start >/dev/null
}

citus_cluster_start() {
    local dir=$1 db=$2 port i
    CITUS_DB=$db
    # contrib/cluster.sh reads CLUSTER_PREFIX when sourced
    CLUSTER_PREFIX=$dir/install
    # shellcheck source=contrib/cluster.sh
    . "$CITUS_TOP/contrib/cluster.sh"
    CITUS_DIR=$dir/nodes
    CITUS_SOCK=$dir/sock
    mkdir -p "$CITUS_DIR" "$CITUS_SOCK"
    (cd "$CITUS_TOP" && install_extension) || { echo "citus-cluster: installing cscopilot into $CLUSTER_PREFIX failed" >&2; return 1; }
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir" && chmod 755 "$dir"
    [ -f "$CLUSTER_PREFIX$(pg_config --pkglibdir)/citus.so" ] || { echo "citus-cluster: no citus.so in $CLUSTER_PREFIX" >&2; return 1; }
    for i in 0 1 2; do
        port=$(citus_free_port) || { echo "citus-cluster: no free port" >&2; return 1; }
        CITUS_PORTS+=("$port")
    done
    citus_node_start coordinator "${CITUS_PORTS[0]}" citus,cscopilot "$db" || return 1
    citus_node_start worker1 "${CITUS_PORTS[1]}" citus,cscopilot '' || return 1
    citus_node_start worker2 "${CITUS_PORTS[2]}" citus,cscopilot '' || return 1
    citus_database_create "$db"
}

# citus_database_create DB: database DB on every node of the running cluster,
# with Citus in it and the coordinator and workers registered there (Citus
# keeps its nodes per database).
citus_database_create() {
    local db=$1 port
    for port in "${CITUS_PORTS[@]}"; do
        citus_psql "$port" -d postgres -c "CREATE DATABASE $db" >/dev/null || return 1
        citus_psql "$port" -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null || return 1
    done
    citus_psql "${CITUS_PORTS[0]}" -d "$db" -c "SET client_min_messages = warning" \
        -c "SELECT citus_set_coordinator_host('localhost', ${CITUS_PORTS[0]})" \
        -c "SELECT citus_add_node('localhost', ${CITUS_PORTS[1]})" \
        -c "SELECT citus_add_node('localhost', ${CITUS_PORTS[2]})" >/dev/null
}

citus_cluster_stop() {
    local name
    [ -n "$CITUS_DIR" ] || return 0
    for name in worker2 worker1 coordinator; do
        if [ -f "$CITUS_DIR/$name/postmaster.pid" ]; then
            "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/pg_ctl" -D "$CITUS_DIR/$name" -m immediate -t 30 stop >/dev/null 2>&1 || true
        fi
    done
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$(dirname "$CITUS_DIR")"
    CITUS_DIR=
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -uo pipefail
    if ! citus_installed; then
        echo "Citus is not installed in $(pg_config --pkglibdir)" >&2
        exit 1
    fi
    run_dir=$(mktemp -d /tmp/cscopilot-citus.XXXXXX)
    trap 'citus_cluster_stop' EXIT
    trap 'exit 130' INT TERM
    citus_cluster_start "$run_dir" cscopilot_citus || { echo "citus-cluster: start failed (logs in $run_dir/nodes)" >&2; KEEP_TMP=1; exit 1; }
    if [ $# -eq 0 ]; then
        citus_psql "${CITUS_PORTS[0]}" -d cscopilot_citus -c "SELECT nodename, nodeport, groupid, noderole FROM pg_dist_node ORDER BY groupid"
        exit $?
    fi
    "${CLUSTER_RUN_AS[@]}" env PGHOST="$CITUS_SOCK" PGPORT="${CITUS_PORTS[0]}" PGDATABASE=cscopilot_citus PGUSER=postgres \
        PATH="$CLUSTER_BINDIR:$PATH" CITUS_WORKER_PORTS="${CITUS_PORTS[1]} ${CITUS_PORTS[2]}" \
        timeout "${CITUS_TIMEOUT:-900}" "$@"
    exit $?
fi
