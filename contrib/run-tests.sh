#!/usr/bin/env bash
# Runs the whole test suite against a temporary instance and prints "N passed, M failed".
#
# The extension is installed into a private copy of the PostgreSQL installation
# (like core's `make check`), so the suite never depends on, or disturbs, what is
# installed system-wide, and several checkouts can test at once.  Servers refuse
# to run as root: when run as root, the instance runs as the postgres user.
#
#   contrib/run-tests.sh                 pg_regress suite, isolation specs, then TAP tests
#   TESTS="schema demo" contrib/run-tests.sh   only these pg_regress tests (TESTS=none: skip them)
#   SPECS="dirty_queue" contrib/run-tests.sh   only these isolation specs (SPECS=none: skip them)
#   TAP=0 contrib/run-tests.sh           skip the TAP tests
#   PROVE_TESTS=t/002_worker_crash.pl contrib/run-tests.sh   only this TAP test (path under test/)
#   ACCEPT=1 TESTS=x contrib/run-tests.sh  write results of x to expected/ (then review git diff)
#   SERVER_ENV="LD_PRELOAD=... ASAN_OPTIONS=..." contrib/run-tests.sh  extra environment for
#                                        pg_regress and the servers it starts (contrib/asan.sh)
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$($PG_CONFIG --bindir)
sharedir=$($PG_CONFIG --sharedir)
pkglibdir=$($PG_CONFIG --pkglibdir)
pgxs=$($PG_CONFIG --pgxs)
pg_regress=$(dirname "$pgxs")/../test/regress/pg_regress

work=$(mktemp -d /tmp/cscopilot-test.XXXXXX)
keep=${KEEP_TMP:-0}
cleanup() { [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

rm -f "$top/regression.diffs"

# 1. A private installation: the server's files plus this build.
inst=$work/install
mkdir -p "$inst$bindir" "$inst$sharedir" "$inst$pkglibdir"
cp -a "$bindir/." "$inst$bindir/"
cp -a "$sharedir/." "$inst$sharedir/"
cp -a "$pkglibdir/." "$inst$pkglibdir/"
make -s install DESTDIR="$inst" >/dev/null || { echo "install into the temporary installation failed"; exit 1; }
tbindir=$inst$bindir

# 2. Inputs and outputs where the server's user can read and write.
mkdir -p "$work/in" "$work/out"
cp -a sql expected specs "$work/in/"
[ -d test/data ] && mkdir -p "$work/in/test" && cp -a test/data "$work/in/test/"
# sql/revenue.sql runs every query of the postgres_exporter file
mkdir -p "$work/in/contrib" && cp -a contrib/postgres_exporter "$work/in/contrib/"
cat > "$work/temp.conf" <<CONF
shared_preload_libraries = 'cscopilot'
max_worker_processes = 16
CONF
run_as=()
if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$work"
    chmod 755 "$work"
    run_as=(runuser -u postgres --)
fi

if [ -n "${TESTS:-}" ]; then
    read -r -a tests <<<"$TESTS"
else
    tests=()
    for f in sql/*.sql; do tests+=("$(basename "$f" .sql)"); done
fi

port=${PGPORT_TEST:-$((55000 + RANDOM % 5000))}
passed=0
failed=0
read -r -a server_env <<<"${SERVER_ENV:-}"
if [ "${tests[*]}" != none ]; then
    echo "== pg_regress: ${#tests[@]} tests"
    out=$(cd "$work/in" && "${run_as[@]}" env PATH="$tbindir:$PATH" "${server_env[@]}" "$pg_regress" \
            --bindir="$tbindir" --inputdir="$work/in" --outputdir="$work/out" \
            --temp-instance="$work/tmp_instance" --temp-config="$work/temp.conf" --port="$port" \
            --dbname=contrib_regression "${tests[@]}" 2>&1)
    rc=$?
    echo "$out"
    p=$(grep -cE '^ *test .* \.\.\. ok|^ok ' <<<"$out" || true)
    f=$(grep -cE '\.\.\. FAILED|^not ok |\.\.\. failed' <<<"$out" || true)
    passed=$((passed + p)); failed=$((failed + f))
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); fi
    # ACCEPT=1 takes the results as the new expected output (review git diff afterwards).
    if [ "${ACCEPT:-0}" = 1 ]; then
        for r in "$work"/out/results/*.out; do [ -e "$r" ] && cp "$r" expected/; done
    fi
    if [ -s "$work/out/regression.diffs" ]; then
        echo "== regression.diffs"
        cat "$work/out/regression.diffs"
        cp "$work/out/regression.diffs" "$top/regression.diffs" 2>/dev/null || true
    fi
fi

# 3. Isolation specs (specs/*.spec, pg_isolation_regress): races between
# loads, refreshes and the worker's steps, each permutation in a fixed order.
# Workers stay off (cscopilot.databases is empty) so that only the spec's
# sessions act.
if [ -n "${SPECS:-}" ]; then
    read -r -a specs <<<"$SPECS"
else
    specs=()
    for f in specs/*.spec; do specs+=("$(basename "$f" .spec)"); done
fi
if [ "${specs[*]}" != none ] && [ ${#specs[@]} -gt 0 ]; then
    pg_isolation_regress=$(dirname "$pgxs")/../test/isolation/pg_isolation_regress
    echo "== isolation: ${#specs[@]} specs"
    mkdir -p "$work/iso"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$work/iso"
    iout=$(cd "$work/in" && "${run_as[@]}" env PATH="$tbindir:$PATH" "${server_env[@]}" "$pg_isolation_regress" \
            --bindir="$tbindir" --inputdir="$work/in" --outputdir="$work/iso" \
            --temp-instance="$work/iso_instance" --temp-config="$work/temp.conf" --port="$((port + 2))" \
            "${specs[@]}" 2>&1)
    irc=$?
    echo "$iout"
    p=$(grep -cE '^ *test .* \.\.\. ok|^ok ' <<<"$iout" || true)
    f=$(grep -cE '\.\.\. FAILED|^not ok |\.\.\. failed' <<<"$iout" || true)
    passed=$((passed + p)); failed=$((failed + f))
    if [ $irc -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); fi
    if [ "${ACCEPT:-0}" = 1 ]; then
        for r in "$work"/iso/results/*.out; do [ -e "$r" ] && cp "$r" expected/; done
    fi
    if [ -s "$work/iso/regression.diffs" ]; then
        echo "== isolation regression.diffs"
        cat "$work/iso/regression.diffs"
        cat "$work/iso/regression.diffs" >> "$top/regression.diffs" 2>/dev/null || true
    fi
fi

# 4. TAP tests (PostgreSQL::Test::Cluster), with the same private installation.
if [ "${TAP:-1}" != 0 ] && ls test/t/*.pl >/dev/null 2>&1; then
    echo "== TAP tests"
    cp -a test "$work/tap"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$work/tap"
    tapout=$(cd "$work/tap" && "${run_as[@]}" env PATH="$tbindir:$PATH" \
        PERL5LIB="$(dirname "$pgxs")/../test/perl" PG_REGRESS="$pg_regress" \
        TESTDIR="$work/tap" PGPORT="$((port + 1))" CSCOPILOT_SRC="$top" \
        PG_TEST_TIMEOUT_DEFAULT="${PG_TEST_TIMEOUT_DEFAULT:-45}" \
        prove --nocolor -v --ext .pl ${PROVE_TESTS:-t/} 2>&1)
    echo "$tapout"
    tp=$(grep -cE '^ok [0-9]' <<<"$tapout" || true)
    tf=$(grep -cE '^not ok [0-9]' <<<"$tapout" || true)
    passed=$((passed + tp)); failed=$((failed + tf))
    if ! grep -q '^Result: PASS' <<<"$tapout"; then
        [ "$tf" -eq 0 ] && failed=$((failed + 1))
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
