# Sourced by demo.sh and bench.sh: a throwaway PostgreSQL cluster run as the
# postgres user when invoked as root.  Sets PSQL (array) and CONNECT.
#   cluster_start DIR PORT    create (if needed) and start; database cscopilot_<name>
#   cluster_stop DIR
#   CLUSTER_PREFIX=DIR (environment): install into a private copy of the
#   PostgreSQL installation under DIR and run the cluster from it, leaving the
#   system installation untouched (like contrib/run-tests.sh).
CLUSTER_BINDIR=${CLUSTER_PREFIX:+$CLUSTER_PREFIX}$(pg_config --bindir)
CLUSTER_RUN_AS=()
[ "$(id -u)" -eq 0 ] && CLUSTER_RUN_AS=(runuser -u postgres --)

# Prints a directory the server's user can use: DIR itself, or one under /tmp
# when DIR sits below a directory that user cannot enter (a private home).
cluster_dir() {
    local dir=$1
    if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$(dirname "$dir")" 2>/dev/null; then
        echo "/tmp/cscopilot-$(basename "$dir" | tr -d .)-$(echo "$dir" | md5sum | cut -c1-8)"
    else
        echo "$dir"
    fi
}

cluster_start() {
    local dir=$1 port=$2 db=$3
    local pgdata=$dir/data sock=$dir/sock
    if [ ! -f "$pgdata/PG_VERSION" ]; then
        mkdir -p "$dir" "$sock"
        [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
        "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/initdb" -D "$pgdata" -A trust -U postgres --no-sync >/dev/null
        cat >> "$pgdata/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$sock'
shared_preload_libraries = 'cscopilot'
max_worker_processes = 16
shared_buffers = '1GB'
work_mem = '64MB'
maintenance_work_mem = '512MB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
track_commit_timestamp = on
CONF
    fi
    if ! "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
        "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/pg_ctl" -D "$pgdata" -l "$dir/server.log" -w start >/dev/null
    fi
    "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/psql" -X -q -h "$sock" -p "$port" -U postgres -d postgres \
        -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    PSQL=("${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/psql" -X -v ON_ERROR_STOP=1 -q -h "$sock" -p "$port" -U postgres -d "$db")
    CONNECT="psql -h $sock -p $port -U postgres $db"
}

cluster_stop() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/pg_ctl" -D "$dir/data" -m fast stop >/dev/null || true
    fi
    rm -rf "$dir"
}

# Installs the extension system-wide (root, or sudo), or into the private copy
# under CLUSTER_PREFIX when that is set.
install_extension() {
    if [ -n "${CLUSTER_PREFIX:-}" ]; then
        local d
        for d in "$(pg_config --bindir)" "$(pg_config --sharedir)" "$(pg_config --pkglibdir)"; do
            if [ ! -d "$CLUSTER_PREFIX$d" ]; then mkdir -p "$CLUSTER_PREFIX$d"; cp -a "$d/." "$CLUSTER_PREFIX$d/"; fi
        done
        make -s install DESTDIR="$CLUSTER_PREFIX" >/dev/null
        [ "$(id -u)" -eq 0 ] && chmod -R a+rX "$CLUSTER_PREFIX"
        return 0
    fi
    if [ -w "$(pg_config --pkglibdir)" ]; then make -s install >/dev/null; else sudo make -s install >/dev/null; fi
}
