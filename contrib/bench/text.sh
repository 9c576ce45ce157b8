#!/usr/bin/env bash
# make bench-text: the text signals on their own, without demo data, on a
# throwaway cluster run from a private copy of the installation.  Prints the
# evaluation against contrib/text-eval/sentences.tsv (accuracy and macro-F1 of
# cs.sentiment's sign and of cs.ticket_category) and the throughput of
# cs.sentiment, cs.tone and cs.ticket_category on short texts (one backend).
#   TEXT_BENCH_N (200000 texts), BENCH_RUNS (3), TEXT_THRESHOLD (0.1), BENCH_PORT (54359)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. contrib/cluster.sh
port=${BENCH_PORT:-54359}
dir=$(cluster_dir "$top/.bench-text")
export CLUSTER_PREFIX=${CLUSTER_PREFIX:-$dir/install}
. contrib/cluster.sh
trap 'cluster_stop "$dir"' EXIT
install_extension
cluster_start "$dir" "$port" cscopilot_text
"${PSQL[@]}" -c "SET client_min_messages = warning" -c "CREATE EXTENSION cscopilot"
cp contrib/text-eval/sentences.tsv "$dir/sentences.tsv"; chmod a+r "$dir/sentences.tsv"
"${PSQL[@]}" -v file="$dir/sentences.tsv" -v threshold="${TEXT_THRESHOLD:-0.1}" -f contrib/text-eval/eval.sql
echo
echo "== throughput (function, texts, median seconds, texts/s)"
"${PSQL[@]}" -v n="${TEXT_BENCH_N:-200000}" -v runs="${BENCH_RUNS:-3}" -f contrib/bench/text.sql
