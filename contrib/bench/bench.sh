#!/usr/bin/env bash
# make bench: figures and ratios against baselines measured in the same run, on a
# throwaway cluster.  BENCH_CUSTOMERS (default 100000) sizes the demo data;
# BENCH_ONLY="load refresh" runs only those sections.  Writes BENCHMARKS.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. contrib/cluster.sh
customers=${BENCH_CUSTOMERS:-100000}
days=${BENCH_DAYS:-180}
runs=${BENCH_RUNS:-3}
only=${BENCH_ONLY:-"load refresh"}
port=${BENCH_PORT:-54339}
dir=$(cluster_dir "$top/.bench")
out=$top/BENCHMARKS.md
rows=()

step() { printf '\n== %s\n' "$*" >&2; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
want() { [[ " $only " == *" $1 "* ]]; }
q() { "${PSQL[@]}" -At -c "$1"; }
# Seconds taken by one SQL statement, measured inside the server, after an
# optional setting statement in the same session.
timed() {
    "${PSQL[@]}" -At -c "${2:-SELECT}" \
        -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE \$q\$$1\$q\$; RAISE NOTICE 'secs=%', extract(epoch FROM clock_timestamp() - t0); END \$\$" 2>&1 \
        | sed -n 's/.*secs=//p'
}
row() { rows+=("| $1 | $2 | $3 | $4 |"); printf '%-45s %-22s %-22s %s\n' "$1" "$2" "$3" "$4" >&2; }

step "installing and starting a throwaway cluster in $dir"
install_extension
trap 'cluster_stop "$dir"' EXIT
cluster_start "$dir" "$port" cscopilot_bench
q "SET client_min_messages = warning; CREATE EXTENSION cscopilot"

if want load; then
    step "load overhead: COPY of 1,000,000 usage events with and without the load triggers"
    q "INSERT INTO cs.customers (external_id, name) SELECT 'load-' || g, 'Load ' || g FROM generate_series(1, 10000) g"
    file=$dir/events.csv
    "${PSQL[@]}" -v n=1000000 -v customers=10000 -v file="$file" -f contrib/bench/load_overhead.sql
    on=(); off=()
    for r in $(seq "$runs"); do
        q "TRUNCATE cs.usage_events, cs.dirty_customers; CHECKPOINT"
        on+=("$(timed "COPY cs.usage_events FROM '$file'")")
        q "TRUNCATE cs.usage_events, cs.dirty_customers; CHECKPOINT"
        off+=("$(timed "COPY cs.usage_events FROM '$file'" "SET session_replication_role = replica")")
    done
    m_on=$(printf '%s\n' "${on[@]}" | median); m_off=$(printf '%s\n' "${off[@]}" | median)
    row "COPY 1M usage events, load triggers on" "$(printf '%.2f s' "$m_on")" "$(printf '%.2f s without triggers' "$m_off")" \
        "$(awk -v a="$m_on" -v b="$m_off" 'BEGIN { printf "%.3fx (overhead %+.1f%%; target <= +15%%)", a/b, (a/b-1)*100 }')"
    q "TRUNCATE cs.usage_events, cs.dirty_customers, cs.customers CASCADE"
fi

{
    echo "# Benchmarks"
    echo
    echo "Measured by \`make bench\` on $(date -u +%Y-%m-%d): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(q 'SHOW server_version' | cut -d' ' -f1)."
    echo "Each figure is the median of $runs runs; the ratio is against the baseline measured in the same run."
    echo
    echo "| what | figure | baseline | ratio |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} > "$out"
step "wrote $out"
