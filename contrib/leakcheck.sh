#!/usr/bin/env bash
# `make leakcheck`: the resident memory of one backend over LEAK_CALLS
# (default 1,000,000) cs.predict calls, in a throwaway cluster with this build.
# Prints RSS and anonymous RSS after each tenth of the calls; fails when the
# anonymous memory grows by more than LEAK_MAX_GROWTH_KB (default 2048) from
# the first tenth (which warms the model cache) to the end, and exits non-zero.
# The vectors have as many features as the champion of churn_default takes
# (cs.models.feature_names), so the check follows the feature catalog.
#
#   LEAK_CALLS=30000 contrib/leakcheck.sh     quick run (CI: contrib/ci-quick.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
calls=${LEAK_CALLS:-1000000}
max_kb=${LEAK_MAX_GROWTH_KB:-2048}
case "$calls$max_kb" in *[!0-9]*) echo "leakcheck: LEAK_CALLS and LEAK_MAX_GROWTH_KB must be whole numbers"; exit 2;; esac
[ "$calls" -ge 10 ] || { echo "leakcheck: LEAK_CALLS must be at least 10"; exit 2; }
bindir=$(pg_config --bindir); sharedir=$(pg_config --sharedir); pkglibdir=$(pg_config --pkglibdir)
work=$(mktemp -d /tmp/cscopilot-leak.XXXXXX)
inst=$work/install
run_as=()
[ "$(id -u)" -eq 0 ] && run_as=(runuser -u postgres --)
cleanup() {
    "${run_as[@]}" "$inst$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$inst$bindir" "$inst$sharedir" "$inst$pkglibdir"
cp -a "$bindir/." "$inst$bindir/"; cp -a "$sharedir/." "$inst$sharedir/"; cp -a "$pkglibdir/." "$inst$pkglibdir/"
make -s install DESTDIR="$inst" >/dev/null
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$work"
port=$((56000 + RANDOM % 1000))
"${run_as[@]}" "$inst$bindir/initdb" -D "$work/data" -A trust >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
port = $port
CONF
"${run_as[@]}" "$inst$bindir/pg_ctl" -D "$work/data" -l "$work/log" -w start >/dev/null
psql=("${run_as[@]}" "$inst$bindir/psql" -h "$work" -p "$port" -X -q -At -v ON_ERROR_STOP=1 postgres)
"${psql[@]}" -c "CREATE EXTENSION cscopilot" >/dev/null
nfeatures=$("${psql[@]}" -c "SELECT cardinality(feature_names) FROM cs.models
                              WHERE name = 'churn_default' ORDER BY status = 'champion' DESC, version DESC LIMIT 1")
case "$nfeatures" in ''|*[!0-9]*) echo "leakcheck: no churn_default model to call"; exit 1;; esac

step=$((calls / 10))
# The backend reads its own /proc status (superuser: pg_read_file takes absolute paths).
rss="SELECT @CALLS@, (regexp_match(s, 'VmRSS:\\s+(\\d+)'))[1], (regexp_match(s, 'RssAnon:\\s+(\\d+)'))[1]
       FROM pg_read_file('/proc/' || pg_backend_pid() || '/status') s;"
{
    for i in $(seq 1 10); do
        echo "SELECT count(cs.predict('churn_default', array_fill(((g % 97) - 3)::float4, ARRAY[$nfeatures]))) FROM generate_series(1, $step) g \\g /dev/null"
        echo "${rss//@CALLS@/$((i * step))}"
    done
} > "$work/leak.sql"
chmod 644 "$work/leak.sql"
"${psql[@]}" -F ' ' -f "$work/leak.sql" > "$work/rss.txt"
echo "calls     RSS kB   anon kB"
awk '{printf "%-9s %-8s %s\n", $1, $2, $3}' "$work/rss.txt"
first=$(awk 'NR==1 {print $3}' "$work/rss.txt")
last=$(awk 'END {print $3}' "$work/rss.txt")
[ -n "$first" ] && [ -n "$last" ] || { echo "leakcheck: could not read the backend's memory"; cat "$work/rss.txt"; exit 1; }
growth=$((last - first))
second=$(awk 'NR==2 {print $3}' "$work/rss.txt")
echo "leakcheck: $calls cs.predict calls ($nfeatures features) in one backend; anonymous RSS after the first tenth ${first} kB, at the end ${last} kB, growth ${growth} kB ($((last - second)) kB over the last eight tenths)"
if [ "$growth" -gt "$max_kb" ]; then
    echo "leakcheck: FAILED: anonymous RSS grew by ${growth} kB, more than LEAK_MAX_GROWTH_KB=${max_kb} kB"
    exit 1
fi
echo "leakcheck: passed (growth ${growth} kB <= ${max_kb} kB)"
