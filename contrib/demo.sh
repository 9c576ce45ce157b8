#!/usr/bin/env bash
# make demo: a throwaway cluster under the repository (or the server named by PG*
# variables), the extension, demo data, scoring, and what a CSM looks at first.
#   contrib/demo.sh start   (make demo)        contrib/demo.sh stop   (make demo-stop)
# DEMO_CUSTOMERS, DEMO_DAYS, DEMO_SEED size the generated data; DEMO_PORT the port.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. contrib/cluster.sh
customers=${DEMO_CUSTOMERS:-5000}
days=${DEMO_DAYS:-180}
seed=${DEMO_SEED:-42}
port=${DEMO_PORT:-54329}
demo=$(cluster_dir "$top/.demo")

step() { printf '\n== %s\n' "$*"; }

if [ "${1:-start}" = "stop" ]; then
    cluster_stop "$demo"
    echo "demo cluster stopped and removed"
    exit 0
fi

step "installing the extension"
install_extension

if [ -n "${PGHOST:-}${PGPORT:-}${PGDATABASE:-}${PGUSER:-}" ]; then
    step "using the server named by the PG* variables"
    PSQL=(psql -X -v ON_ERROR_STOP=1 -q)
    CONNECT="psql (with the same PG* variables)"
    stop_hint="(your server: nothing to stop)"
else
    step "starting a throwaway cluster in $demo (port $port)"
    cluster_start "$demo" "$port" cscopilot_demo
    stop_hint="make demo-stop   (stops the cluster and removes $demo)"
fi

"${PSQL[@]}" -c "SET client_min_messages = warning" -c "DROP EXTENSION IF EXISTS cscopilot CASCADE" -c "CREATE EXTENSION cscopilot"

step "generating demo data: $customers customers x $days days (seed $seed)"
"${PSQL[@]}" -c "\timing on" -c "SELECT cs.generate_demo_data($customers, $days, $seed) AS rows_generated"

step "scoring every customer (features, health)"
"${PSQL[@]}" -c "\timing on" -c "SELECT cs.refresh_all() AS customers_scored"

step "weekly health history of the last 12 weeks (cs.backfill_health: features and populations as of each week)"
"${PSQL[@]}" -c "\timing on" -c "SELECT cs.backfill_health(12) AS scores_written"

"${PSQL[@]}" -P pager=off -f contrib/demo-report.sql

step "the digest of csm_01 (cs.digest, an HTML page with inline SVG)"
mkdir -p "$top/.demo"
"${PSQL[@]}" -At -c "SELECT cs.digest('csm_01')" > "$top/.demo/digest-csm_01.html"
"${PSQL[@]}" -At -c "SELECT cs.digest_text('csm_01')" > "$top/.demo/digest-csm_01.txt"
echo "written: $top/.demo/digest-csm_01.html (open it in a browser) and digest-csm_01.txt"

step "done"
cat <<MSG
Connect:  $CONNECT
Stop:     $stop_hint
MSG
