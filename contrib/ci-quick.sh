#!/usr/bin/env bash
# Quick checks for CI: `make leakcheck` over LEAK_CALLS (default 30,000)
# cs.predict calls and `make fuzz` for FUZZ_SECONDS (default 5) per target.
# Runs both, prints a line per check, and exits non-zero if either failed.
#
#   contrib/ci-quick.sh
#   LEAK_CALLS=50000 FUZZ_SECONDS=10 contrib/ci-quick.sh
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
leak_calls=${LEAK_CALLS:-30000}
fuzz_seconds=${FUZZ_SECONDS:-5}

failed=()
echo "== make leakcheck LEAK_CALLS=$leak_calls"
make --no-print-directory leakcheck LEAK_CALLS="$leak_calls" || failed+=(leakcheck)
echo "== make fuzz FUZZ_SECONDS=$fuzz_seconds"
make --no-print-directory fuzz FUZZ_SECONDS="$fuzz_seconds" || failed+=(fuzz)

if [ ${#failed[@]} -gt 0 ]; then
    echo "ci-quick: FAILED: ${failed[*]}"
    exit 1
fi
echo "ci-quick: leakcheck and fuzz passed"
