#!/usr/bin/env bash
# COPY of 1,000,000 usage events for 2,000 customers into cs.usage_events, with
# the csm stamp trigger (src/csm_stamp.c) disabled (what 0.2.0 did) and
# enabled, alternately, BENCH_RUNS times each (default 3): the wall time and the
# CPU time of the backend, their medians and the ratios.  Run against a server
# with cscopilot installed (PGHOST, PGPORT, PGUSER as for psql), as a user who
# can read the server's /proc (root, or the server's user); it creates and
# drops the database csm_copy_bench and writes the rows to $DIR (default /tmp).
set -euo pipefail
db=csm_copy_bench
dir=${DIR:-/tmp}
runs=${BENCH_RUNS:-3}
file=$dir/csm_copy_bench.copy
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -d $db <<SQL
SET client_min_messages = warning;
CREATE EXTENSION cscopilot;
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm)
SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(i), 12, '0'))::uuid, 'b' || i, 'Bench ' || i, 'smb', 100, 10,
       'csm_' || (i % 40)
  FROM generate_series(1, 2000) i;
COPY (SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(1 + (i % 2000)), 12, '0'))::uuid, 'u' || (i % 7), 'login',
             NULL, 1.0, date_trunc('month', now()) - interval '1 month' + i * interval '2 seconds'
        FROM generate_series(1, 1000000) i) TO '$file';
SQL
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: > "$dir/csm_copy_bench.off"; : > "$dir/csm_copy_bench.on"
for r in $(seq "$runs"); do
    for m in off on; do
        [ $m = on ] && action=ENABLE || action=DISABLE
        psql -X -q -d $db -c "TRUNCATE cs.usage_events, cs.dirty_customers" \
             -c "ALTER TABLE cs.usage_events $action TRIGGER csm_stamp" -c CHECKPOINT
        out=$(psql -X -At -d $db <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_PID :pid
\! awk '{ print \$14 + \$15 }' /proc/\$BENCH_PID/stat > $dir/csm_copy_bench.cpu0
\timing on
COPY cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at) FROM '$file';
\timing off
\! awk '{ print \$14 + \$15 }' /proc/\$BENCH_PID/stat > $dir/csm_copy_bench.cpu1
SQL
)
        wall=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out")
        cpu=$(( ($(cat "$dir/csm_copy_bench.cpu1") - $(cat "$dir/csm_copy_bench.cpu0")) * 1000 / $(getconf CLK_TCK) ))
        echo "$wall $cpu" >> "$dir/csm_copy_bench.$m"
        echo "stamp $m, run $r: wall $wall ms, backend CPU $cpu ms"
    done
done
psql -X -q -d $db -c "ALTER TABLE cs.usage_events ENABLE TRIGGER csm_stamp"
for m in off on; do
    echo "stamp $m: median wall $(cut -d' ' -f1 "$dir/csm_copy_bench.$m" | median) ms, median backend CPU $(cut -d' ' -f2 "$dir/csm_copy_bench.$m" | median) ms"
done
awk -v wo="$(cut -d' ' -f1 "$dir/csm_copy_bench.off" | median)" -v wn="$(cut -d' ' -f1 "$dir/csm_copy_bench.on" | median)" \
    -v co="$(cut -d' ' -f2 "$dir/csm_copy_bench.off" | median)" -v cn="$(cut -d' ' -f2 "$dir/csm_copy_bench.on" | median)" \
    'BEGIN { printf "ratio on/off: wall %.3f, backend CPU %.3f\n", wn / wo, cn / co }'
psql -X -q -d postgres -c "DROP DATABASE $db"
rm -f "$file" "$dir"/csm_copy_bench.*
