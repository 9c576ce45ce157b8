#!/usr/bin/env bash
# Compares cs.predict with libxgboost's batch predict on the same model and rows.
# Needs a running server with cscopilot installed; pass psql connection options
# through the usual PG* environment variables (PGHOST, PGPORT, PGDATABASE, ...).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/cscopilot-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
psql -X -v ON_ERROR_STOP=1 -f "$here/predict_bench.sql"
psql -X -Atc "SELECT convert_from(model, 'UTF8') FROM cs.models WHERE name = 'bench'" > "$tmp/model.json"
psql -X -Atc "SELECT array_to_string(features, ',') FROM bench_rows ORDER BY id" > "$tmp/rows.csv"
psql -X -Atc "SELECT 'cs.predict sum ' || round(sum(cs.predict('bench', features))::numeric, 4) FROM bench_rows"
cc -O2 -o "$tmp/xgb_batch" "$here/xgb_batch.c" -lxgboost -lm
"$tmp/xgb_batch" "$tmp/model.json" "$tmp/rows.csv"
