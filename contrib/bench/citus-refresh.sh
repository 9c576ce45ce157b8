#!/usr/bin/env bash
# make bench-citus: where the work of a full refresh happens on a Citus
# cluster (a coordinator and two workers on loopback, contrib/citus-cluster.sh)
# against a single node with the same generated data.  For each event volume
# (BENCH_CITUS_DAYS, default "90 180" days of history for the same customers),
# it runs cs.refresh_all() twice and measures the second, from every node's
# pg_stat_database: rows read (tup_returned + tup_fetched) and bytes read
# through the buffer cache ((blks_hit + blks_read) x 8 kB) by that database.
# The coordinator's share must not grow with the events: they are read and
# aggregated on the workers, and only per-customer rows travel.
# What travels: the bytes of the TCP connections to each worker's port during
# the refresh (sent to it, received from it), from the kernel's counters of
# each connection (ss -ti), sampled every 0.2 s: a connection that opened and
# closed between two samples is missed, so these are lower bounds.  Citus keeps
# the coordinator's connection to each worker open across statements.
# Then freshness on the cluster: BENCH_CITUS_LOADS (default 9) loads of 10
# events for one customer each, committed, and the time until that customer's
# new health score is visible on the coordinator (the coordinator's scoring
# worker rescoring it), polled every 10 ms in one session.
#   BENCH_CITUS_CUSTOMERS (2000), BENCH_CITUS_DAYS ("90 180"), BENCH_CITUS_LOADS (9),
#   CITUS_TIMEOUT (3000 s)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
# shellcheck source=contrib/citus-cluster.sh
. contrib/citus-cluster.sh
citus_installed || { echo "Citus is not installed: nothing to measure"; exit 0; }
customers=${BENCH_CITUS_CUSTOMERS:-2000}
days_list=${BENCH_CITUS_DAYS:-90 180}
work=$(mktemp -d /tmp/cscopilot-bench-citus.XXXXXX)
trap 'citus_cluster_stop' EXIT
( sleep "${CITUS_TIMEOUT:-3000}"; kill -TERM $$ ) >/dev/null 2>&1 </dev/null &
citus_cluster_start "$work" bench || { echo "the cluster did not start"; exit 1; }
C=${CITUS_PORTS[0]}
citus_psql "$C" -d bench -c "ALTER SYSTEM SET cscopilot.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
citus_psql "$C" -d postgres -c "CREATE DATABASE single" >/dev/null

# rows and bytes read by database db on the node at port p so far
stats() { citus_psql "$1" -d "$2" -tA -c "SELECT tup_returned + tup_fetched, (blks_hit + blks_read) * 8192 FROM pg_stat_database WHERE datname = '$2'"; }
measure() {  # label port db: the second of two full refreshes, per node
    local label=$1 db=$2; shift 2
    citus_psql "$C" -d "$db" -c "SELECT cs.refresh_all()" >/dev/null
    sleep 1
    declare -A before
    for p in "$@"; do before[$p]=$(stats "$p" "$db"); done
    local t0 t1 poller workers=("${@:2}"); t0=$(date +%s.%N)
    tcp_sample "${workers[@]}" > "$work/tcp.before"
    : > "$work/tcp.during"
    ( while :; do tcp_sample "${workers[@]}" >> "$work/tcp.during"; sleep 0.2; done ) &
    poller=$!
    citus_psql "$C" -d "$db" -c "SELECT cs.refresh_all()" >/dev/null
    t1=$(date +%s.%N)
    kill "$poller" 2>/dev/null; wait "$poller" 2>/dev/null
    sleep 1   # the statistics collector
    for p in "$@"; do
        local a b r0 b0 r1 b1
        a=${before[$p]}; b=$(stats "$p" "$db")
        r0=${a%%|*}; b0=${a##*|}; r1=${b%%|*}; b1=${b##*|}
        printf '%-28s %-12s %14d rows %10.1f MB   (refresh %.1f s)\n' "$label" "$(node_name "$p")" \
            $((r1 - r0)) "$(echo "($b1 - $b0) / 1048576" | bc -l)" "$(echo "$t1 - $t0" | bc -l)"
    done
    [ "${#workers[@]}" -gt 0 ] || return 0
    tcp_delta "$work/tcp.before" "$work/tcp.during" | sort -n | while read -r p sent recv; do
        printf '%-28s %-12s %10.1f MB sent to it, %10.1f MB received from it (TCP, at least)\n' "$label" \
            "$(node_name "$p")" "$(echo "$sent / 1048576" | bc -l)" "$(echo "$recv / 1048576" | bc -l)"
    done
}
# TCP counters of established connections to the given ports, one line per
# connection: "peer_port local:peer bytes_sent bytes_received"
tcp_sample() {
    ss -tinH state established | awk -v ports=" $* " '
        /^[0-9]/ { n = split($(NF), a, ":"); key = $(NF-1) "-" $(NF); port = a[n]; next }
        key != "" { s = 0; r = 0
            for (i = 1; i <= NF; i++) { if ($i ~ /^bytes_sent:/) { split($i, b, ":"); s = b[2] }
                                        if ($i ~ /^bytes_received:/) { split($i, b, ":"); r = b[2] } }
            if (index(ports, " " port " ")) print port, key, s, r; key = "" }'
}
# sent and received per port between a first sample and the largest counters
# of later samples, for each connection: "port sent received"
tcp_delta() {
    awk 'FNR == NR { base[$2] = $3 " " $4; next }
         { if (!($2 in mx) || $3 + $4 > ms[$2]) { mx[$2] = $3 " " $4; ms[$2] = $3 + $4; port[$2] = $1 } }
         END { for (k in mx) { split(mx[k], m, " "); s0 = 0; r0 = 0
                   if (k in base) { split(base[k], b, " "); s0 = b[1]; r0 = b[2] }
                   sent[port[k]] += m[1] - s0; recv[port[k]] += m[2] - r0 }
               for (p in sent) print p, sent[p], recv[p] }' "$1" "$2"
}
node_name() { case $1 in "${CITUS_PORTS[0]}") echo coordinator ;; "${CITUS_PORTS[1]}") echo worker1 ;; *) echo worker2 ;; esac; }

echo "== full refresh of $customers customers: rows and bytes read per node (second of two refreshes)"
for days in $days_list; do
    events=""
    # a fresh database each time (DROP EXTENSION cannot undo cs.distribute())
    for p in "${CITUS_PORTS[@]}"; do
        citus_psql "$p" -d postgres -q -c "DROP DATABASE IF EXISTS bench WITH (FORCE)" >/dev/null
    done
    citus_database_create bench || { echo "creating the cluster database failed"; exit 1; }
    citus_psql "$C" -d bench -q -c "SET client_min_messages = warning" \
        -c "CREATE EXTENSION cscopilot" -c "SELECT count(*) FROM cs.distribute()" \
        -c "SELECT cs.generate_demo_data($customers, $days, 42, '2026-10-31')" >/dev/null || { echo "cluster load failed"; exit 1; }
    citus_psql "$C" -d single -q -c "SET client_min_messages = warning" -c "DROP EXTENSION IF EXISTS cscopilot CASCADE" \
        -c "CREATE EXTENSION cscopilot" -c "SELECT cs.generate_demo_data($customers, $days, 42, '2026-10-31')" >/dev/null || { echo "single load failed"; exit 1; }
    events=$(citus_psql "$C" -d single -tA -c "SELECT count(*) FROM cs.usage_events")
    measure "cluster, $days days ($events events)" bench "${CITUS_PORTS[@]}"
    measure "single node, $days days" single "$C"
done

# Freshness: the scoring worker on (the database of the last volume), one load
# at a time; each latency from the load's COMMIT (its statement returned) to
# the first poll that sees a health score of that customer written after it.
loads=${BENCH_CITUS_LOADS:-9}
echo "== freshness on the cluster: load COMMIT to the customer's new health score ($loads loads of 10 events)"
citus_psql "$C" -d bench -q -c "ALTER SYSTEM SET cscopilot.enabled = on" -c "SELECT pg_reload_conf()" >/dev/null
sleep 3
lat=()
for i in $(seq "$loads"); do
    # (a DO block: the load commits inside it, then the same session polls,
    # each poll a statement with its own snapshot)
    ms=$(citus_psql "$C" -d bench -tA -v ON_ERROR_STOP=1 <<SQL
DO \$\$
DECLARE
    cid uuid;
    t0 timestamptz;
    t1 timestamptz;
BEGIN
    SELECT c.id INTO cid FROM cs.customers c WHERE c.churned_at IS NULL ORDER BY md5(c.id::text || '$i') LIMIT 1;
    t0 := clock_timestamp();
    INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at)
    SELECT cid, 'u1', 'session', 'reports', 1, now() FROM generate_series(1, 10);
    COMMIT;
    t1 := clock_timestamp();
    FOR k IN 1 .. 3000 LOOP   -- 30 s at most
        IF EXISTS (SELECT 1 FROM cs.customer_health_scores h WHERE h.customer_id = cid AND h.calculated_at > t0) THEN
            PERFORM set_config('bench.latency_ms', round(extract(epoch FROM clock_timestamp() - t1) * 1000)::text, false);
            RETURN;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    PERFORM set_config('bench.latency_ms', 'timeout', false);
END
\$\$;
SHOW bench.latency_ms;
SQL
)
    echo "load $i: ${ms} ms"
    [[ "$ms" =~ ^[0-9]+$ ]] && lat+=("$ms")
done
if [ "${#lat[@]}" -gt 0 ]; then
    sorted=$(printf '%s\n' "${lat[@]}" | sort -n)
    med=$(sed -n "$(( (${#lat[@]} + 1) / 2 ))p" <<<"$sorted")
    printf 'freshness on the cluster: median %d ms over %d loads (min %d, max %d); target 1000 ms, %.1fx under it\n' \
        "$med" "${#lat[@]}" "$(head -1 <<<"$sorted")" "$(tail -1 <<<"$sorted")" "$(echo "1000 / $med" | bc -l)"
else
    echo "freshness on the cluster: no load was rescored within 30 s"
fi
