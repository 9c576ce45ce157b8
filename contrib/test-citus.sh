#!/usr/bin/env bash
# make test-citus: cscopilot on a Citus cluster (a coordinator and two workers
# on loopback, contrib/citus-cluster.sh), end to end, against a single node
# holding the same generated data; prints "N passed, M failed".
#
# Without Citus in the PostgreSQL of pg_config it says so and exits 0 (Citus is
# not in Debian: ../shared/citus/build.sh or Citus's own packages install it).
# Every step runs, whatever failed before it, so that one run shows everything
# that fails; a step's error is printed under its "not ok" line.
#   CITUS_TIMEOUT   seconds for the whole run (default 900); the servers are always stopped
#   KEEP_TMP=1      keep the nodes' directories and logs
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck source=contrib/citus-cluster.sh
. contrib/citus-cluster.sh

if ! citus_installed; then
    echo "Citus is not installed: skipping the distributed tests"
    exit 0
fi

# The generated data, the same on both sides: small, fixed seed and end date;
# scores are compared after a refresh as of the same fixed time.
CUSTOMERS=${CITUS_CUSTOMERS:-300}
DAYS=${CITUS_DAYS:-90}
SEED=17
END_DATE=2026-10-31
VERSION=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$(dirname "$0")/../cscopilot.control")
AS_OF='2026-11-01 00:00:00+00'
DB=cscopilot_citus

work=$(mktemp -d /tmp/cscopilot-citus-test.XXXXXX)
single_dir=$work/single
single_port=
cleanup() {
    if [ -n "$single_port" ] && [ -f "$single_dir/postmaster.pid" ]; then
        "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/pg_ctl" -D "$single_dir" -m immediate stop >/dev/null 2>&1 || true
    fi
    citus_cluster_stop
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "test-citus: stopped (time limit of ${CITUS_TIMEOUT:-900}s, or a signal)" >&2; exit 130' INT TERM
# Bounded: the whole run is killed (and the servers stopped by the trap) after CITUS_TIMEOUT.
# (Its own output goes nowhere, so that a pipe reading this script's sees its end.)
( sleep "${CITUS_TIMEOUT:-900}" & s=$!; trap 'kill $s; exit 0' TERM; wait $s; kill -TERM $$ ) >/dev/null 2>&1 </dev/null &
watchdog=$!

passed=0
failed=0
n=0
# step NAME COMMAND...: runs COMMAND; ok when it exits 0, its output shown when not.
step() {
    local name=$1 out rc; shift
    n=$((n + 1))
    out=$("$@" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1)); echo "ok $n - $name"
    else
        failed=$((failed + 1)); echo "not ok $n - $name"
        sed 's/^/    /' <<<"$out" | head -n 40
    fi
    return $rc
}

echo "== starting a Citus coordinator and two workers"
if ! citus_cluster_start "$work" "$DB"; then
    echo "not ok - the cluster did not start; logs:"
    tail -n 20 "$work"/nodes/*.log 2>/dev/null
    echo "0 passed, 1 failed"
    exit 1
fi
C=${CITUS_PORTS[0]}
W1=${CITUS_PORTS[1]}
W2=${CITUS_PORTS[2]}
echo "coordinator $C, workers $W1 $W2"
coord() { citus_psql "$C" -d "$DB" "$@"; }
coord_val() { citus_psql "$C" -d "$DB" -tA "$@"; }

# The single node: the same private installation, no Citus.
start_single() {
    [ -n "$single_port" ] || return 1
    "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/initdb" -D "$single_dir" -A trust -U postgres --no-sync >/dev/null || return 1
    cat >> "$single_dir/postgresql.conf" <<CONF
port = $single_port
listen_addresses = ''
unix_socket_directories = '$CITUS_SOCK'
shared_preload_libraries = 'cscopilot'
cscopilot.databases = ''
shared_buffers = '64MB'
fsync = off
synchronous_commit = off
CONF
    "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/pg_ctl" -D "$single_dir" -l "$work/single.log" -w -t 60 start >/dev/null || return 1
    citus_psql "$single_port" -d postgres -c "CREATE DATABASE $DB"
}
single() { citus_psql "$single_port" -d "$DB" "$@"; }

# Rows COPYed into both after the first refresh: 40 events for 4 customers, at a
# time in the generated window's last day (so already due).
# With them, a ticket whose text the category rules classify (cancellation,
# competitor), so that the text classification runs on both sides.
copy_events() {
    "$1" -c "COPY cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at) FROM STDIN" < "$work/events.tsv" || return 1
    "$1" -c "INSERT INTO cs.support_tickets (customer_id, external_id, opened_at, priority, subject, body)
             SELECT '$(head -n 1 "$work/events.tsv" | cut -f1)', 'citus-ticket-1', '$END_DATE 09:00+00', 'high',
                    'Cancellation', 'We will cancel our subscription and switch to a competitor unless this is fixed'"
}

# What is compared: every customer's health and churn risk of the refresh as of
# the fixed time (both sides also scored at the wall clock's time before, in a
# different order: those rows are not the same refresh), and the open alerts
# and opportunities that refresh left, one line per customer, sorted.
cat > "$work/compare.sql" <<SQL
COPY (
SELECT c.id,
       h.overall_score, h.usage_score, h.engagement_score, h.support_score, h.payment_score, h.band,
       r.risk_score, r.confidence_score, r.model_version,
       (SELECT string_agg(ar.name || ':' || a.severity, ',' ORDER BY ar.name)
          FROM cs.alerts a JOIN cs.alert_rules ar ON ar.id = a.rule_id
         WHERE a.customer_id = c.id AND a.status IN ('open', 'acknowledged', 'snoozed')) AS alerts,
       (SELECT string_agg(o.kind || ':' || coalesce(o.product, '') || ':' || o.score || ':' || coalesce(o.expected_mrr::text, ''),
                          ',' ORDER BY o.kind, o.product, o.score)
          FROM cs.opportunities o WHERE o.customer_id = c.id AND o.status = 'open') AS opportunities
  FROM cs.customers c
  LEFT JOIN LATERAL (SELECT * FROM cs.customer_health_scores s WHERE s.customer_id = c.id
                        AND s.calculated_at = '$AS_OF') h ON true
  LEFT JOIN LATERAL (SELECT * FROM cs.risk_assessments s WHERE s.customer_id = c.id AND s.risk_type = 'churn'
                        AND s.created_at = '$AS_OF') r ON true
 ORDER BY c.id) TO STDOUT
SQL

# The steps, each a function: step runs it in a subshell and counts it.
t_nodes() {
    local r; r=$(coord_val -c "SELECT count(*) FROM pg_dist_node WHERE isactive AND noderole = 'primary'") || return 1
    [ "$r" = 3 ] || { echo "$r active nodes"; return 1; }
}
t_create_extension() {
    local v w p
    coord -c "CREATE EXTENSION cscopilot" || return 1
    v=$(coord_val -c "SELECT extversion FROM pg_extension WHERE extname = 'cscopilot'")
    for p in "$W1" "$W2"; do
        w=$(citus_psql "$p" -d "$DB" -tA -c "SELECT extversion FROM pg_extension WHERE extname = 'cscopilot'")
        [ "$w" = "$v" ] || { echo "worker $p has cscopilot '$w', the coordinator '$v'"; return 1; }
    done
}
t_distributed_as_planned() {
    local bad
    # pg_dist_partition, not citus_tables: that view leaves out tables that
    # belong to an extension.
    bad=$(coord_val -c "
        WITH t AS (SELECT d.logicalrelid AS rel, d.colocationid,
                          CASE d.partmethod WHEN 'h' THEN 'distributed'
                                            WHEN 'n' THEN CASE WHEN d.repmodel = 't' THEN 'reference' ELSE 'citus local' END END AS kind,
                          column_to_column_name(d.logicalrelid, d.partkey) AS dist_column
                     FROM pg_dist_partition d)
        SELECT string_agg(p.table_name || ' planned ' || p.kind || ', is ' || coalesce(t.kind, 'local'), E'\n')
          FROM cs.distribution_plan() p
          LEFT JOIN t ON t.rel = p.table_name
         WHERE t.kind IS DISTINCT FROM p.kind
            OR (p.kind = 'distributed' AND (t.dist_column <> p.distribution_column
                OR t.colocationid <> (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'cs.customers'::regclass)))") || return 1
    [ -z "$bad" ] || { echo "$bad"; return 1; }
}
t_distribute_again() {
    local out
    out=$(coord_val -c "SELECT count(*) FILTER (WHERE action NOT LIKE 'already %') || ' of ' || count(*) FROM cs.distribute()") || return 1
    case "$out" in "0 of "*) ;; *) echo "the second run changed $out tables"; return 1 ;; esac
}
t_refresh_all() {
    # (the refresh in a statement of its own: a query of distributed tables
    # earlier in its transaction, run over several connections per node, would
    # keep it from writing the reference tables it writes)
    local r n; r=$(coord_val -c "SELECT cs.refresh_all()") || return 1
    n=$(coord_val -c "SELECT count(*) FROM cs.customers") || return 1
    [ "$r" = "$n" ] || { echo "cs.refresh_all() scored $r of $n customers"; return 1; }
}
t_copy_rescored() {
    local before left newer i
    [ -s "$work/events.tsv" ] || { echo "no customers to load events for"; return 1; }
    before=$(coord_val -c "SELECT coalesce(max(as_of), '-infinity') FROM cs.customer_features") || return 1
    copy_events coord || return 1
    for i in $(seq 1 60); do
        left=$(coord_val -c "SELECT count(*) FROM cs.dirty_customers") || return 1
        newer=$(coord_val -c "SELECT count(*) FROM cs.customer_features WHERE as_of > '$before'") || return 1
        [ "$left" = 0 ] && [ "$newer" -ge 4 ] && return 0
        sleep 0.5
    done
    echo "after 30 s: $left dirty customers left, $newer rescored; worker status:"
    coord -x -c "SELECT * FROM cs.worker_status" 2>&1 | head -n 30
    return 1
}
# Two customers merged the same way on both sides (the 5th into the 6th by id):
# on the cluster their rows move between shards by copy and delete.
merge_two() {
    local ids; ids=$("$1" -tA -c "SELECT string_agg(id::text, ' ' ORDER BY id) FROM (SELECT id FROM cs.customers ORDER BY id OFFSET 4 LIMIT 2) x") || return 1
    set -- "$1" $ids
    "$1" -c "SELECT cs.merge_customers('$3', '$2') ->> 'usage_events' AS events_moved"
}
t_merge() {
    local before after
    before=$(coord_val -c "SELECT count(*) FROM cs.usage_events") || return 1
    merge_two coord >/dev/null || return 1
    after=$(coord_val -c "SELECT (SELECT count(*) FROM cs.usage_events)::text || ' ' || (SELECT count(*) FROM cs.customers)::text") || return 1
    [ "$after" = "$before $((CUSTOMERS - 1))" ] || {
        echo "after the merge: events and customers '$after', events before $before"; return 1; }
}
t_views() {
    local v out fails=0
    for v in $(coord_val -c "SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind = 'v' ORDER BY 1"); do
        out=$(coord_val -c "SELECT count(*) FROM $v" 2>&1) || { echo "$v: $out"; fails=$((fails + 1)); }
    done
    [ $fails -eq 0 ]
}
t_csm_rls() {
    local csm want got others
    csm=$(coord_val -c "SELECT csm FROM cs.customers WHERE csm IS NOT NULL GROUP BY csm ORDER BY count(*) DESC, csm LIMIT 1") || return 1
    [ -n "$csm" ] || { echo "no customer has a CSM"; return 1; }
    coord_val -c "CREATE ROLE \"$csm\" LOGIN" -c "SELECT cs.grant_role('csm', '$csm')" >/dev/null || return 1
    want=$(coord_val -c "SELECT (SELECT count(*) FROM cs.customers WHERE csm = '$csm')::text || ' ' || (SELECT count(*) FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id WHERE c.csm = '$csm')::text") || return 1
    # (two queries: Citus pushes no subquery of the select list down with an aggregate)
    got=$(coord_val -c "SET ROLE \"$csm\"" -c "SELECT (SELECT count(*) FROM cs.customers)::text || ' ' || (SELECT count(*) FROM cs.alerts)::text") || return 1
    others=$(coord_val -c "SET ROLE \"$csm\"" -c "SELECT count(*) FROM cs.account_health_overview WHERE csm IS DISTINCT FROM '$csm'") || return 1
    [ "$got" = "$want" ] && [ "$others" = 0 ] || {
        echo "$csm sees customers and alerts '$got', has '$want'; $others overview rows of other CSMs"; return 1; }
    # the rows the refresh wrote on the shards carry their customer's csm (the
    # stamp reads the colocated customers shard there)
    local t n
    for t in customer_health_scores risk_assessments opportunities alerts customer_features; do
        n=$(coord_val -c "SELECT count(*) FILTER (WHERE x.csm IS DISTINCT FROM c.csm) || ' '
                                  || count(*) FILTER (WHERE x.csm IS NOT NULL)
                             FROM cs.$t x JOIN cs.customers c ON c.id = x.customer_id") || return 1
        case "$n" in
            "0 0") echo "cs.$t: no row stamped with a csm"; return 1 ;;
            "0 "*) ;;
            *) echo "cs.$t: ${n%% *} rows without their customer's csm"; return 1 ;;
        esac
    done
}
# What a CSM writes, as that CSM, on one of her customers: an alert
# acknowledged, rated and resolved, an overdue task (its alert raised, moved to
# a new assignee, resolved when the task is done), an action measured by the
# worker's outcome job (taken 90 days ago, as an admin sets it).  Each call
# locates its row by id, locks it on its customer's shard, and writes shards
# and reference tables in one transaction.
t_csm_writes() {
    local csm cust aid tid pb got
    csm=$(coord_val -c "SELECT csm FROM cs.customers WHERE csm IS NOT NULL GROUP BY csm ORDER BY count(*) DESC, csm LIMIT 1") || return 1
    read -r cust aid <<<"$(coord_val -F ' ' -c "SELECT a.customer_id, a.id FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id
                                               WHERE c.csm = '$csm' AND a.status = 'open' AND a.rule_id IS NOT NULL
                                               ORDER BY a.customer_id, a.id LIMIT 1")"
    [ -n "$aid" ] || { echo "no open alert of $csm"; return 1; }
    pb=$(coord_val -c "SELECT name FROM cs.playbooks WHERE enabled ORDER BY name LIMIT 1") || return 1
    as_csm() { coord_val -c "SET ROLE \"$csm\"" "$@"; }
    got=$(as_csm -c "SELECT (cs.acknowledge_alert('$aid', 'calling them')).status" \
                 -c "SELECT cs.record_feedback('$aid', 'accuracy', 4) IS NOT NULL" \
                 -c "SELECT cs.record_action('$aid', '$pb') > 0" \
                 -c "SELECT (cs.resolve_alert('$aid', 'saved')).status" | tr '\n' ' ') || return 1
    [ "$got" = "acknowledged t t resolved " ] || { echo "alert lifecycle: '$got'"; return 1; }
    tid=$(as_csm -c "SELECT (cs.create_task('$cust', 'call the sponsor', now() - interval '1 day')).id") || return 1
    got=$(coord_val -c "SELECT status || ':' || assigned_to FROM cs.alerts WHERE customer_id = '$cust' AND alert_type = 'task'") || return 1
    [ "$got" = "open:$csm" ] || { echo "task alert after create_task: '$got'"; return 1; }
    as_csm -c "SELECT cs.assign_task('$tid', 'cscopilot_admin')" >/dev/null || return 1
    got=$(coord_val -c "SELECT status || ':' || assigned_to FROM cs.alerts WHERE customer_id = '$cust' AND alert_type = 'task'") || return 1
    [ "$got" = "open:cscopilot_admin" ] || { echo "task alert after assign_task: '$got'"; return 1; }
    coord_val -c "SELECT cs.complete_task('$tid')" >/dev/null || return 1
    got=$(coord_val -c "SELECT status FROM cs.alerts WHERE customer_id = '$cust' AND alert_type = 'task'") || return 1
    [ "$got" = "resolved" ] || { echo "task alert after complete_task: '$got'"; return 1; }
    coord_val -c "UPDATE cs.actions SET taken_at = now() - interval '90 days' WHERE customer_id = '$cust'" >/dev/null || return 1
    got=$(coord_val -c "SELECT cs.measure_action_outcomes()" -c "SELECT count(*) FROM cs.actions WHERE customer_id = '$cust' AND outcome IS NULL" | tr '\n' ' ') || return 1
    [ "$got" = "1 0 " ] || { echo "actions measured, then unmeasured: '$got'"; return 1; }
}
# Every scheduled job of the coordinator's worker, run as it runs them: a run
# recorded, then cs._run_job until it is no longer running (the full rescore
# in steps of 40 customers, each step its own transaction).
t_worker_jobs() {
    local j id st k fails=0
    for j in full_rescore daily_snapshot partitions action_outcomes model_checks data_quality retention; do
        id=$(coord_val -c "INSERT INTO cs.job_runs (job) VALUES ('$j') RETURNING id" | head -1) || return 1
        st=running
        for k in $(seq 30); do
            st=$(coord_val -c "SELECT cs._run_job($id, 40)" 2>&1) || { echo "$j: $st"; break; }
            [ "$st" = running ] || break
        done
        [ "$st" = succeeded ] || { echo "job $j: $st"; fails=$((fails + 1)); }
    done
    st=$(coord_val -c "SELECT customers FROM cs.job_runs WHERE job = 'full_rescore' ORDER BY id DESC LIMIT 1") || return 1
    [ "$st" = "$((CUSTOMERS - 1))" ] || { echo "the full rescore scored $st customers, not $((CUSTOMERS - 1))"; fails=$((fails + 1)); }
    # each of them once: its steps walk the customers in the order of the
    # distribution hash, resuming after the last one done
    st=$(coord_val -c "SELECT count(DISTINCT h.customer_id) || ' ' || count(*)
                         FROM cs.customer_health_scores h
                         JOIN (SELECT started_at, finished_at FROM cs.job_runs WHERE job = 'full_rescore'
                                ORDER BY id DESC LIMIT 1) r ON h.calculated_at BETWEEN r.started_at AND r.finished_at") || return 1
    [ "$st" = "$((CUSTOMERS - 1)) $((CUSTOMERS - 1))" ] || {
        echo "the full rescore wrote health scores (customers, rows) '$st', not $((CUSTOMERS - 1)) each"; fails=$((fails + 1)); }
    [ $fails -eq 0 ]
}
# How an update reaches a distributed installation (README, "Upgrades on a
# cluster"): Citus runs ALTER EXTENSION ... UPDATE on every node, so each
# worker's copy of the extension (its shells) runs the script, and the DDL the
# coordinator's run makes on a distributed table is sent again to the workers
# (shell and shards): an update script alters existing tables with IF NOT
# EXISTS / IF EXISTS, so that the second pass is a no-op on the shells and
# reaches the shards; new tables are distributed by cs.distribute() after it.
# A probe update to a version that exists only in this test's private
# installation, in a database of its own: a column added to two distributed
# tables, a new reference table and a new customer-keyed table.
t_update_distributed() {
    local U=cscopilot_update ext got p
    ext="$CLUSTER_PREFIX$(pg_config --sharedir)/extension"
    cat > "$ext/cscopilot--$VERSION--$VERSION.probe.sql" <<'SQL' || return 1
ALTER TABLE cs.customers ADD COLUMN IF NOT EXISTS probe_note text;
ALTER TABLE cs.usage_events ADD COLUMN IF NOT EXISTS probe_weight int NOT NULL DEFAULT 1;
CREATE TABLE cs.probe_settings (k text PRIMARY KEY, v text);
CREATE TABLE cs.probe_marks (customer_id uuid NOT NULL REFERENCES cs.customers (id),
                             id bigint GENERATED ALWAYS AS IDENTITY, PRIMARY KEY (customer_id, id));
SQL
    chmod a+r "$ext/cscopilot--$VERSION--$VERSION.probe.sql"
    citus_database_create "$U" || return 1
    citus_psql "$C" -d "$U" -c "SET client_min_messages = warning" \
        -c "CREATE EXTENSION cscopilot" -c "SELECT count(*) FROM cs.distribute()" \
        -c "SELECT cs.generate_demo_data(40, 30, 5, '$END_DATE')" \
        -c "ALTER EXTENSION cscopilot UPDATE TO '$VERSION.probe'" \
        -c "SELECT count(*) FROM cs.distribute()" >/dev/null || return 1
    # every node at the new version, the columns on every shell and shard
    for p in "${CITUS_PORTS[@]}"; do
        got=$(citus_psql "$p" -d "$U" -tA -c "SET citus.show_shards_for_app_name_prefixes = '*'" \
              -c "SELECT extversion FROM pg_extension WHERE extname = 'cscopilot'" \
              -c "SELECT count(*) FROM pg_class c
                   WHERE c.relnamespace = 'cs'::regnamespace AND c.relname ~ '^(customers|usage_events)(_[0-9]+)?\$'
                     AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                                        AND a.attname IN ('probe_note', 'probe_weight'))" | tr '\n' ' ') || return 1
        [ "$got" = "$VERSION.probe 0 " ] || { echo "node $p: version and tables without the new column: '$got'"; return 1; }
    done
    # the new tables distributed as planned, and written and read through
    got=$(citus_psql "$C" -d "$U" -tA \
          -c "SELECT string_agg(logicalrelid::text || ':' || partmethod::text, ' ' ORDER BY logicalrelid::text)
                FROM pg_dist_partition WHERE logicalrelid::text LIKE 'cs.probe%'" \
          -c "INSERT INTO cs.probe_marks (customer_id) SELECT id FROM cs.customers ORDER BY id LIMIT 3" \
          -c "UPDATE cs.customers SET probe_note = 'kept' WHERE churned_at IS NULL" \
          -c "SELECT (SELECT count(*) FROM cs.probe_marks)::text || ' ' || (SELECT count(*) FROM cs.customers WHERE probe_note = 'kept')::text
                     || ' ' || (SELECT min(probe_weight) FROM cs.usage_events)::text" \
          -c "SELECT cs.refresh_all() > 0" | grep -v '^INSERT\|^UPDATE' | tr '\n' ' ') || return 1
    local active; active=$(citus_psql "$C" -d "$U" -tA -c "SELECT count(*) FROM cs.customers WHERE churned_at IS NULL") || return 1
    [ "$got" = "cs.probe_marks:h cs.probe_settings:n 3 $active 1 t " ] || { echo "after the update: '$got'"; return 1; }
}
t_refuse_without_citus() {
    single -c "CREATE EXTENSION cscopilot" -c "
        DO \$\$ BEGIN PERFORM cs.distribute(); RAISE EXCEPTION 'cs.distribute() ran without Citus';
        EXCEPTION WHEN feature_not_supported THEN NULL; END \$\$"
}
t_single_load() {
    single -c "SELECT cs.generate_demo_data($CUSTOMERS, $DAYS, $SEED, '$END_DATE')" -c "SELECT cs.refresh_all()" >/dev/null || return 1
    copy_events single || return 1
    merge_two single >/dev/null || return 1
    single -c "SELECT cs.refresh()" >/dev/null
}
t_compare() {
    coord -f "$work/compare.sql" > "$work/cluster.out" || return 1
    single -f "$work/compare.sql" > "$work/single.out" || return 1
    [ -s "$work/single.out" ] || { echo "no customers on the single node"; return 1; }
    if ! diff "$work/single.out" "$work/cluster.out" > "$work/compare.diff"; then
        echo "$(grep -c '^[<>]' "$work/compare.diff") differing lines (< single node, > cluster):"
        head -n 20 "$work/compare.diff"
        return 1
    fi
}

echo "== cluster"
step "coordinator and two workers registered and active" t_nodes
step "CREATE EXTENSION cscopilot on the coordinator reaches both workers" t_create_extension

echo "== cs.distribute()"
step "SELECT cs.distribute()" coord -c "SELECT * FROM cs.distribute()"
step "customer-keyed tables distributed by customer and colocated, the rest reference tables" t_distributed_as_planned
step "cs.distribute() again changes nothing" t_distribute_again

echo "== the distributed path"
step "cs.generate_demo_data($CUSTOMERS, $DAYS, $SEED, '$END_DATE')" \
    coord -c "SELECT cs.generate_demo_data($CUSTOMERS, $DAYS, $SEED, '$END_DATE')"
step "cs.refresh_all() scores every customer" t_refresh_all

coord_val -c "SELECT id FROM cs.customers ORDER BY id LIMIT 4" 2>/dev/null > "$work/ids" || true
: > "$work/events.tsv"
while read -r id; do
    [ -n "$id" ] || continue
    for i in $(seq 1 10); do
        printf '%s\tcitus-user-%s\tfeature_used\treports\t1\t%s 12:%02d:00+00\n' "$id" "$i" "$END_DATE" "$i" >> "$work/events.tsv"
    done
done < "$work/ids"

step "a COPY of events is rescored by the coordinator's worker within 30 s" t_copy_rescored
step "cs.merge_customers moves a customer's rows to another shard, none lost" t_merge
step "every view of cs answers" t_views
step "a CSM under row-level security sees exactly her customers" t_csm_rls

echo "== the same on a single node"
single_port=$(citus_free_port)
step "a single node without Citus starts" start_single
step "cs.distribute() refuses without Citus (feature_not_supported)" t_refuse_without_citus
step "the same data, refresh and COPY on the single node" t_single_load

echo "== every customer's scores: cluster against single node"
# The coordinator's scoring worker stops first: a full rescore of its own (as of
# now) after the fixed-time refresh would be the latest scores.
coord -c "ALTER SYSTEM SET cscopilot.enabled = off" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
sleep 2
step "a refresh of the cluster as of $AS_OF" coord -c "SELECT cs._refresh_customers(NULL, '$AS_OF')"
step "a refresh of the single node as of $AS_OF" single -c "SELECT cs._refresh_customers(NULL, '$AS_OF')"
step "health, churn risk, alerts and opportunities identical for every customer" t_compare

echo "== CSM writes and the worker's jobs on the cluster"
step "a CSM's alert, task and action functions work on her customers' shards" t_csm_writes
step "every scheduled job of the worker succeeds, the full rescore in steps" t_worker_jobs
step "ALTER EXTENSION UPDATE reaches the workers' shells and shards, cs.distribute() the new tables" t_update_distributed

kill "$watchdog" 2>/dev/null
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
