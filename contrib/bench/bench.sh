#!/usr/bin/env bash
# make bench: figures and ratios against baselines measured in the same run, on a
# throwaway cluster.  BENCH_CUSTOMERS (default 100000) sizes the demo data;
# BENCH_ONLY="load predict" runs only those sections (load, predict, train,
# text, refresh, quality, explain, freshness, dashboard, alerts, onecustomer: the last
# seven share the demo data; text needs none and also runs alone with make bench-text,
# onecustomer with make bench-one); BENCH_RUNS (default 3) runs per figure, BENCH_PORT the server's port.
# BENCH_PRIVATE=1 installs into a private copy of PostgreSQL under the cluster's
# directory (as make bench-text and make bench-one do) instead of system-wide.
# predict and train compare with libxgboost and Debian's python3-xgboost
# (contrib/install-deps.sh --bench).  Writes BENCHMARKS.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. contrib/cluster.sh
customers=${BENCH_CUSTOMERS:-100000}
days=${BENCH_DAYS:-180}
runs=${BENCH_RUNS:-3}
only=${BENCH_ONLY:-"load predict train text refresh quality explain freshness dashboard alerts"}
port=${BENCH_PORT:-54339}
dir=$(cluster_dir "$top/${BENCH_DIR:-.bench}")
if [ "${BENCH_PRIVATE:-0}" = 1 ]; then
    export CLUSTER_PREFIX=${CLUSTER_PREFIX:-$dir/install}
    . contrib/cluster.sh
fi
out=${BENCH_OUT:-$top/BENCHMARKS.md}
rows=()
scratch=$(mktemp -d "${TMPDIR:-/tmp}/cscopilot-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
python=/usr/bin/python3     # Debian's, with python3-xgboost, -numpy and -psycopg2

step() { printf '\n== %s\n' "$*" >&2; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
want() { [[ " $only " == *" $1 "* ]]; }
q() { "${PSQL[@]}" -At -c "$1"; }
# Seconds taken by one SQL statement, measured inside the server, after an
# optional setting statement in the same session.
timed() {
    local out
    out=$("${PSQL[@]}" -At -c "${2:-SELECT}" \
        -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE \$q\$$1\$q\$; RAISE NOTICE 'secs=%', extract(epoch FROM clock_timestamp() - t0); END \$\$" 2>&1) \
        || { printf 'bench: failed: %s\n%s\n' "$1" "$out" >&2; return 1; }
    sed -n 's/.*secs=//p' <<<"$out"
}
row() { rows+=("| $1 | $2 | $3 | $4 |"); printf '%-45s %-22s %-22s %s\n' "$1" "$2" "$3" "$4" >&2; }
# Seconds of one SQL statement as psql's client sees them (round trip and, in
# autocommit, the commit included), after an optional setting statement.
client_timed() {
    "${PSQL[@]}" -At -c "${2:-SELECT}" -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' \
        | awk '{ printf "%.6f\n", $1 / 1000 }'
}
calc() { awk "BEGIN { $1 }"; }
# printf format of a ratio num / den, or "n/a" when either is missing or den is 0 (a small BENCH_CUSTOMERS).
ratio() { awk -v n="$2" -v d="$3" -v f="$1" 'BEGIN { if (n == "" || d == "" || d + 0 == 0) print "n/a"; else printf f, n / d }'; }
sci() { if [ -n "$1" ]; then printf '%.1e' "$1"; else printf 'n/a'; fi; }
# The median of a JSON list field of the Python baselines' output.
pymedian() { $python -c 'import json, sys; print("\n".join(str(v) for v in json.load(sys.stdin)[sys.argv[1]]))' "$1" | median; }

step "installing and starting a throwaway cluster in $dir"
install_extension
trap 'cluster_stop "$dir"; rm -rf "$scratch"' EXIT
cluster_start "$dir" "$port" cscopilot_bench
dsn="host=$dir/sock port=$port dbname=cscopilot_bench user=postgres"
q "SET client_min_messages = warning; CREATE EXTENSION cscopilot"

if want load; then
    step "load overhead: COPY of 1,000,000 usage events with and without the load triggers"
    q "INSERT INTO cs.customers (external_id, name) SELECT 'load-' || g, 'Load ' || g FROM generate_series(1, 10000) g"
    file=$dir/events.csv
    "${PSQL[@]}" -v n=1000000 -v customers=10000 -v file="$file" -f contrib/bench/load_overhead.sql
    on=(); off=()
    for r in $(seq "$runs"); do
        q "TRUNCATE cs.usage_events, cs.dirty_customers; CHECKPOINT"
        on+=("$(timed "COPY cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at) FROM '$file'")")
        q "TRUNCATE cs.usage_events, cs.dirty_customers; CHECKPOINT"
        off+=("$(timed "COPY cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at) FROM '$file'" "SET session_replication_role = replica")")
    done
    m_on=$(printf '%s\n' "${on[@]}" | median); m_off=$(printf '%s\n' "${off[@]}" | median)
    row "COPY 1M usage events, load triggers on" "$(printf '%.2f s' "$m_on")" "$(printf '%.2f s without triggers' "$m_off")" \
        "$(awk -v a="$m_on" -v b="$m_off" 'BEGIN { printf "%.3fx (overhead %+.1f%%; target <= +15%%)", a/b, (a/b-1)*100 }')"
    q "TRUNCATE cs.usage_events, cs.dirty_customers, cs.customers CASCADE"
fi

if want predict; then
    step "predict: 200,000 rows x 30 features, a model of 100 trees of depth 6 (contrib/bench/predict_setup.sql)"
    "${PSQL[@]}" -At -f contrib/bench/predict_setup.sql >&2
    # The floor: libxgboost's own batch predict of the same rows, in C, nthread 1.
    q "SELECT convert_from(model, 'UTF8') FROM cs.models WHERE name = 'bench'" > "$scratch/model.json"
    q "SELECT array_to_string(features, ',') FROM bench_rows ORDER BY id" > "$scratch/rows.csv"
    cc -O2 -o "$scratch/xgb_batch" contrib/bench/xgb_batch.c -lxgboost -lm
    step "predict: libxgboost batch predict, $runs runs"
    xgb_out=$("$scratch/xgb_batch" "$scratch/model.json" "$scratch/rows.csv" "$scratch/ref.txt" "$runs")
    printf '%s\n' "$xgb_out" | head -1 >&2
    t_xgb=$(printf '%s\n' "$xgb_out" | sed -n 's/^secs=\([0-9.]*\).*/\1/p')
    q "CREATE TABLE ref_scores (id int PRIMARY KEY, score float8)"
    awk '{ print NR "\t" $1 }' "$scratch/ref.txt" | "${PSQL[@]}" -c "COPY ref_scores FROM STDIN"

    # PL/Python calling python3-xgboost one row per call, the booster loaded once per session.
    q "SET client_min_messages = warning; CREATE EXTENSION plpython3u"
    q "CREATE FUNCTION py_predict(features float4[]) RETURNS float8 LANGUAGE plpython3u STRICT AS \$py\$
b = SD.get('bst')
if b is None:
    import numpy, xgboost
    raw = plpy.execute(\"SELECT model FROM cs.models WHERE name = 'bench' ORDER BY version DESC LIMIT 1\")[0]['model']
    b = xgboost.Booster()
    b.load_model(bytearray(raw))
    b.set_param({'nthread': 1})
    SD['bst'] = b
    SD['np'] = numpy
np = SD['np']
return float(b.inplace_predict(np.array([features], dtype=np.float32), missing=np.nan)[0])
\$py\$"
    q "CREATE TABLE scores_db (id int, score float8); CREATE TABLE scores_client (id int, score float8)"

    serial="SET max_parallel_workers_per_gather = 0"
    parallel="SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = on"
    warm="SELECT cs.predict('bench', features) FROM bench_rows LIMIT 1"
    sum_q="SELECT sum(cs.predict('bench', features)) FROM bench_rows"
    step "predict: cs.predict serial and parallel, PL/Python on 10,000 rows, in-database INSERT, $runs runs each"
    t_cs=(); t_par=(); t_py=(); t_ins=()
    for r in $(seq "$runs"); do
        t_cs+=("$(timed "$sum_q" "$serial; $warm")")
        t_par+=("$(timed "$sum_q" "$parallel; $warm")")
        t_py+=("$(timed "SELECT sum(py_predict(features)) FROM bench_rows WHERE id <= 10000" \
            "$serial; SELECT py_predict(features) FROM bench_rows LIMIT 1")")
        q "TRUNCATE scores_db; CHECKPOINT"
        t_ins+=("$(client_timed "INSERT INTO scores_db SELECT id, cs.predict('bench', features) FROM bench_rows" "$serial")")
    done
    workers=$("${PSQL[@]}" -At -c "$parallel" -c "EXPLAIN $sum_q" | sed -n 's/.*Workers Planned: //p')
    step "predict: client pipeline (psycopg2 fetch, python3-xgboost batch predict, COPY back), $runs runs"
    q "CHECKPOINT"
    py_out=$($python contrib/bench/xgb_python.py pipeline "$dsn" "$runs")
    m_cs=$(printf '%s\n' "${t_cs[@]}" | median); m_par=$(printf '%s\n' "${t_par[@]}" | median)
    m_py=$(printf '%s\n' "${t_py[@]}" | median); m_ins=$(printf '%s\n' "${t_ins[@]}" | median)
    m_cli=$(printf '%s' "$py_out" | pymedian secs)
    printf 'seconds per run: cs.predict %s; parallel %s; PL/Python (10,000 rows) %s; INSERT %s; client %s; libxgboost (median) %s\n' \
        "${t_cs[*]}" "${t_par[*]}" "${t_py[*]}" "${t_ins[*]}" "$(printf '%s' "$py_out" | $python -c 'import json, sys; print(" ".join("%.6f" % v for v in json.load(sys.stdin)["secs"]))')" "$t_xgb" >&2

    step "predict: agreement of the scores with libxgboost's"
    d_cs=$(q "SELECT max(abs(cs.predict('bench', b.features) - r.score)) FROM bench_rows b JOIN ref_scores r USING (id)")
    d_db=$(q "SELECT CASE WHEN count(*) = 200000 THEN max(abs(s.score - r.score)) END FROM scores_db s JOIN ref_scores r USING (id)")
    d_cli=$(q "SELECT CASE WHEN count(*) = 200000 THEN max(abs(s.score - r.score)) END FROM scores_client s JOIN ref_scores r USING (id)")
    d_py=$(q "SELECT max(abs(py_predict(b.features) - r.score)) FROM bench_rows b JOIN ref_scores r USING (id) WHERE id <= 10000")
    agree=$(calc "ok = 1; n = split(\"$d_cs $d_db $d_cli $d_py\", d, \" \"); for (i = 1; i <= 4; i++) if (d[i] == \"\" || d[i] + 0 >= 1e-6) ok = 0; print (n == 4 && ok) ? \"all < 1e-6: ok\" : \"NOT all < 1e-6\"")

    rps() { calc "printf \"%.0f rows/s\", $1 / $2"; }
    row "cs.predict, 200,000 rows, serial" "$(rps 200000 "$m_cs")" "$(rps 200000 "$t_xgb") libxgboost batch predict (C, nthread 1)" \
        "$(calc "printf \"%.2fx the time (target <= 1.5x)\", $m_cs / $t_xgb")"
    row "cs.predict, parallel query ($workers workers)" "$(rps 200000 "$m_par")" "$(rps 200000 "$m_cs") serial" \
        "$(calc "printf \"%.2fx faster\", $m_cs / $m_par")"
    row "cs.predict vs PL/Python + xgboost per row" "$(rps 200000 "$m_cs")" "$(rps 10000 "$m_py") PL/Python (10,000 rows)" \
        "$(calc "printf \"%.0fx faster (target >= 30x)\", (200000 / $m_cs) / (10000 / $m_py)")"
    row "INSERT INTO scores SELECT id, cs.predict(...)" "$(rps 200000 "$m_ins")" "$(rps 200000 "$m_cli") client: psycopg2 + xgboost + COPY" \
        "$(calc "printf \"%.1fx faster (target >= 5x)\", $m_cli / $m_ins")"
    row "max abs score difference from libxgboost" "cs.predict $(sci "$d_cs"), INSERT $(sci "$d_db")" \
        "PL/Python $(sci "$d_py"), client $(sci "$d_cli")" "$agree"
fi

if want train; then
    step "train: 100,000 rows x 30 features, nonlinear label with noise (contrib/bench/train_setup.sql)"
    "${PSQL[@]}" -At -f contrib/bench/train_setup.sql >&2
    params='{"max_depth": 6, "eta": 0.1, "num_round": 200, "early_stopping_rounds": 0, "nthread": 1, "seed": 0}'
    # group_key = id: cs.train_model puts a row in validation when the hash of
    # id::text is below 20% of the range, which is train_rows.is_valid.
    train_q="SELECT cs.train_model('train_bench', 'custom', \$t\$SELECT features, label, id AS group_key FROM train_rows ORDER BY id\$t\$, '$params')"
    step "train: cs.train_model, $runs runs"
    t_cs=()
    for r in $(seq "$runs"); do
        t_cs+=("$(timed "$train_q")")
    done
    m_cs=$(printf '%s\n' "${t_cs[@]}" | median)
    # How much of that is running the training query (python3-xgboost's time leaves the fetch out).
    t_read=$(timed "SELECT sum(cardinality(features)), count(label), count(group_key) FROM (SELECT features, label, id::text AS group_key FROM train_rows ORDER BY id) s")
    IFS='|' read -r auc_cs nvalid ntrees < <(q "SELECT metrics->>'auc', metrics->>'rows_valid', metrics->>'num_trees' FROM cs.models WHERE name = 'train_bench' ORDER BY version DESC LIMIT 1")
    nvalid_sql=$(q "SELECT count(*) FILTER (WHERE is_valid) FROM train_rows")
    step "train: python3-xgboost on the same rows and split, $runs runs"
    py_out=$($python contrib/bench/xgb_python.py train "$dsn" "$runs" "$params")
    m_py=$(printf '%s' "$py_out" | pymedian secs)
    auc_py=$(printf '%s' "$py_out" | pymedian auc)
    printf 'seconds per run: cs.train_model %s; python3-xgboost %s\n' "${t_cs[*]}" \
        "$(printf '%s' "$py_out" | $python -c 'import json, sys; print(" ".join("%.3f" % v for v in json.load(sys.stdin)["secs"]))')" >&2
    nvalid_py=$(printf '%s' "$py_out" | $python -c 'import json, sys; d = json.load(sys.stdin); print(d["rows_valid"], d["trees"])')
    printf "validation rows: cs.train_model %s, train_rows.is_valid %s; python rows, trees: %s; cs.train_model trees: %s\n" \
        "$nvalid" "$nvalid_sql" "$nvalid_py" "$ntrees" >&2
    [ "$nvalid" = "$nvalid_sql" ] || echo "WARNING: the splits differ; the AUC comparison is not like for like" >&2
    row "cs.train_model, 100,000 x 30, 200 rounds depth 6" "$(printf '%.2f s (query %.2f s)' "$m_cs" "$t_read")" "$(printf '%.2f s python3-xgboost (same rows, split, params)' "$m_py")" \
        "$(calc "printf \"%.2fx the time (target <= 1.5x)\", $m_cs / $m_py")"
    row "validation AUC, same split ($nvalid rows)" "$(printf '%.5f' "$auc_cs")" "$(printf '%.5f python3-xgboost' "$auc_py")" \
        "$(calc "d = $auc_cs - $auc_py; printf \"difference %+.5f (target <= 0.005)\", d")"
fi

if want text; then
    step "text signals: labelled sentences (contrib/text-eval) and throughput on short texts (contrib/bench/text.sql)"
    cp contrib/text-eval/sentences.tsv "$dir/sentences.tsv"; chmod a+r "$dir/sentences.tsv"
    ev=$("${PSQL[@]}" -v file="$dir/sentences.tsv" -v threshold=0.1 -f contrib/text-eval/eval.sql)
    echo "$ev" >&2
    read -r s_acc s_f1 _ <<<"$(grep -A2 sentiment_accuracy <<<"$ev" | tail -1 | tr -d '|')"
    read -r c_f1 c_lab c_exact <<<"$(grep -A2 category_macro_f1 <<<"$ev" | tail -1 | tr -d '|')"
    nsent=$(grep -A2 'sentences |' <<<"$ev" | tail -1 | awk '{print $1}')
    row "cs.sentiment sign on $nsent labelled sentences (neutral band 0.1)" "accuracy $s_acc, macro-F1 $s_f1" "3 classes, balanced" \
        "$(calc "printf \"%.2fx the target accuracy 0.80\", $s_acc / 0.80")"
    row "cs.ticket_category on the same sentences (9 categories)" "macro-F1 $c_f1" "exact set match $c_exact" "label accuracy $c_lab"
    tp=$("${PSQL[@]}" -v n=200000 -v runs="$runs" -f contrib/bench/text.sql)
    echo "$tp" >&2
    base=$(awk '$1 == "baseline_(length)" {print $3}' <<<"$tp")
    while read -r fn n secs per; do
        [ "$fn" = "baseline_(length)" ] && continue
        row "$fn, $(printf "%'d" "$n") short texts, one backend" "$(printf "%'d texts/s" "$per")" \
            "$(printf '%.3f s for count(length(text)) of 200,000' "$base")" \
            "$( [ "$fn" = cs.sentiment ] && calc "printf \"%.1fx the target 200,000 texts/s\", $per / 200000" || echo "-")"
    done <<<"$tp"
fi

# The last sections share generated demo data at the configured scale.
if want refresh || want quality || want explain || want freshness || want dashboard || want alerts || want onecustomer; then
    step "demo data: $customers customers x $days days (a few minutes at 100,000)"
    q "SET client_min_messages = warning; TRUNCATE cs.customers CASCADE"
    gen=$(timed "SELECT cs.generate_demo_data($customers, $days, 42)")
    events=$(q "SELECT count(*) FROM cs.usage_events")
    row "generate demo data: $customers customers x $days days" "$(printf '%.1f s' "$gen")" "$(printf "%'d usage events" "$events")" \
        "$(calc "printf \"%.0f customers/s\", $customers / $gen")"
    q "VACUUM ANALYZE"
fi

if want refresh; then
    # Refreshes run without parallel query (cs._refresh_customers sets it off,
    # which this compares: the parallel runs set it to 2 on the throwaway cluster).
    step "full refresh: cs.refresh_all() over $customers customers, as shipped (serial) and with parallel query"
    par=(); ser=()
    setpar() { q "ALTER FUNCTION cs._refresh_customers(uuid[]) SET max_parallel_workers_per_gather = $1" >/dev/null; }
    # the first one after the load creates every alert and fills the text-signal cache
    first=$(timed "SELECT cs.refresh_all()")
    for r in $(seq "$(( runs < 2 ? runs : 2 ))"); do
        setpar 2; par+=("$(timed "SELECT cs.refresh_all()")")
        setpar 0; ser+=("$(timed "SELECT cs.refresh_all()")")
    done
    m_par=$(printf '%s\n' "${par[@]}" | median); m_ser=$(printf '%s\n' "${ser[@]}" | median)
    row "cs.refresh_all(), $customers customers (features, health, risk, opportunities, alerts)" \
        "$(printf '%.1f s (%.0f customers/s)' "$m_ser" "$(calc "print $customers / $m_ser")")" \
        "$(printf '%.1f s with parallel query (2 workers)' "$m_par")" \
        "$(calc "printf \"%.2fx the parallel time; target <= 30 s at 100,000\", $m_ser / $m_par")"
    row "first cs.refresh_all() after the load (creates every alert, fills the text-signal cache)" \
        "$(printf '%.1f s' "$first")" "$(printf '%.1f s later refreshes' "$m_ser")" \
        "$(calc "printf \"%.2fx\", $first / $m_ser")"
    step "incremental refresh: 10,000 new events for 100 customers, then cs.refresh()"
    small=()
    for r in $(seq "$runs"); do
        q "WITH c AS (SELECT id FROM cs.customers WHERE churned_at IS NULL ORDER BY md5(id::text || $r) LIMIT 100)
           INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at)
           SELECT c.id, 'u' || (g % 20), 'session', 'reports', 1, now() - make_interval(mins => g)
             FROM c, generate_series(1, 100) g" >/dev/null
        small+=("$(timed "SELECT cs.refresh()")")
    done
    m_small=$(printf '%s\n' "${small[@]}" | median)
    row "cs.refresh() after 10,000 events for 100 customers" "$(printf '%.0f ms' "$(calc "print $m_small * 1000")")" \
        "$(printf '%.1f s full refresh' "$m_ser")" "$(calc "printf \"%.0fx less; target <= 200 ms\", $m_ser / $m_small")"
fi

if want quality; then
    step "quality on the demo data's ground truth: health 30 days before churn, churn model"
    [ "$(q "SELECT count(*) FROM cs.customer_features")" -gt 0 ] || q "SELECT cs.refresh_all()" >/dev/null
    read -r hauc mauc qrows qchurn <<<"$("${PSQL[@]}" -At -F ' ' -v sample_pct=$(( customers > 20000 ? 5 : 50 )) -f contrib/bench/quality.sql | tail -1)"
    row "health AUC, 30 days before churn ($qchurn churners, $qrows customers)" "$hauc" "0.5 random" "target >= 0.75"
    row "shipped churn model AUC, 90-day horizon, same customer-dates" "$mauc" "$hauc health score" \
        "$(calc "printf \"%+.3f vs health\", $mauc - $hauc")"
fi

if want explain; then
    step "explanations: exact SHAP of the shipped churn model for every customer a full refresh explains"
    [ "$(q "SELECT count(*) FROM cs.customer_features")" -gt 0 ] || q "SELECT cs.refresh_all()" >/dev/null
    xwhere="WHERE cs.predict('churn_default', f.features) >= 0.1"
    xn=$(q "SELECT count(*) FROM cs.customer_features f $xwhere")
    xq="SELECT count(cs.explain_json('churn_default', f.features, 5)) FROM cs.customer_features f $xwhere"
    xall="SELECT f.customer_id, x.feature, x.contribution FROM cs.customer_features f
            CROSS JOIN LATERAL cs.explain('churn_default', f.features, 100) x $xwhere"
    xt=(); xw=(); xl=()
    for r in $(seq "$runs"); do
        xt+=("$(timed "$xq" "SET cscopilot.shap_method = tables")")
        xw+=("$(timed "$xq" "SET cscopilot.shap_method = native")")
        xl+=("$(timed "$xq" "SET cscopilot.shap_method = libxgboost")")
    done
    m_xt=$(printf '%s\n' "${xt[@]}" | median); m_xw=$(printf '%s\n' "${xw[@]}" | median)
    m_xl=$(printf '%s\n' "${xl[@]}" | median)
    # the same contributions: every method against libxgboost, every feature of every row
    read -r dt dw <<<"$("${PSQL[@]}" -At -F ' ' \
        -c "SET cscopilot.shap_method = libxgboost" \
        -c "CREATE TEMP TABLE x_l AS $xall" \
        -c "SET cscopilot.shap_method = native" \
        -c "CREATE TEMP TABLE x_w AS $xall" \
        -c "RESET cscopilot.shap_method" \
        -c "CREATE TEMP TABLE x_t AS $xall" \
        -c "SELECT trim(to_char(max(abs(t.contribution - l.contribution)), '9.9EEEE')), trim(to_char(max(abs(w.contribution - l.contribution)), '9.9EEEE'))
              FROM x_l l JOIN x_t t USING (customer_id, feature) JOIN x_w w USING (customer_id, feature)" | tail -1)"
    row "cs.explain_json, shipped churn model, $xn customers at risk >= 0.1, per-leaf tables (default)" \
        "$(printf '%.0f us a row' "$(calc "print $m_xt / $xn * 1e6")")" \
        "$(printf '%.0f us a row through libxgboost pred_contribs' "$(calc "print $m_xl / $xn * 1e6")")" \
        "$(calc "printf \"%.2fx the time\", $m_xt / $m_xl")"
    row "same, native tree walk (libxgboost's algorithm)" \
        "$(printf '%.0f us a row' "$(calc "print $m_xw / $xn * 1e6")")" \
        "$(printf '%.0f us a row through libxgboost' "$(calc "print $m_xl / $xn * 1e6")")" \
        "$(calc "printf \"%.2fx the time\", $m_xw / $m_xl")"
    row "max abs contribution difference from libxgboost, every feature of those rows" \
        "tables $dt, tree walk $dw" "-" "exact TreeSHAP: float rounding only"
fi

if want freshness; then
    step "freshness: COMMIT of a load to its customers' new health score, worker on"
    # from an empty queue: what the generator marked is not part of the measurement
    q "TRUNCATE cs.dirty_customers" >/dev/null
    q "ALTER SYSTEM SET cscopilot.databases = 'cscopilot_bench'" >/dev/null
    q "SELECT pg_reload_conf()" >/dev/null
    sleep 3
    lat=()
    for i in $(seq 20); do
        n=$(( (i * 7919) % 10000 + 1 ))
        # one load of n events over up to 100 customers; latency from its commit
        # to the commit of the last of their new health scores (commit timestamps)
        read -r xid ids <<<"$(q "WITH c AS (SELECT id FROM cs.customers WHERE churned_at IS NULL
                                             ORDER BY md5(id::text || $i) LIMIT $(( n < 100 ? n : 100 ))),
                                   ins AS (INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at)
                                           SELECT c.id, 'u1', 'session', 'reports', 1, now()
                                             FROM c, generate_series(1, greatest($n / 100, 1)) RETURNING customer_id)
                              SELECT txid_current() % 4294967296, array_agg(DISTINCT customer_id) FROM ins" | tr '|' ' ')"
        for _ in $(seq 500); do
            [ "$(q "SELECT count(*) FROM cs.dirty_customers WHERE NOT parked")" = 0 ] && break
            sleep 0.02
        done
        lat+=("$(q "SELECT 1000 * extract(epoch FROM max(pg_xact_commit_timestamp(h.xmin)) - pg_xact_commit_timestamp('$xid'::xid))
                      FROM cs.customer_health_scores h WHERE h.customer_id = ANY ('$ids')
                       AND pg_xact_commit_timestamp(h.xmin) > pg_xact_commit_timestamp('$xid'::xid)")")
    done
    sorted=$(printf '%s\n' "${lat[@]}" | sort -g)
    p50=$(median <<<"$sorted"); p95=$(sed -n "$(( (${#lat[@]} * 95 + 99) / 100 ))p" <<<"$sorted")
    row "freshness: load COMMIT to scores visible (20 loads of 1-10,000 events)" "$(printf 'median %.0f ms, p95 %.0f ms' "$p50" "$p95")" \
        "1000 ms target (p95)" "$(calc "printf \"%.1fx under the target\", 1000 / $p95")"
    q "ALTER SYSTEM RESET cscopilot.databases" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null
fi

if want dashboard; then
    step "dashboard load: pgbench, 8 clients, ${BENCH_DASHBOARD_SECONDS:-20} s per page"
    [ "$(q "SELECT count(*) FROM cs.customer_features")" -gt 0 ] || q "SELECT cs.refresh_all()" >/dev/null
    accounts=$("${PSQL[@]}" -At -f contrib/bench/dashboard/setup.sql | tail -1)
    cp contrib/bench/dashboard/*.sql "$scratch/"; chmod a+r "$scratch"/*.sql; chmod a+rx "$scratch"
    # Each page with prepared statements (what drivers and pools do with a
    # repeated query) and with the simple protocol (planned every time).
    pgb() {  # page, protocol -> "p50 p95 tps"
        local logdir; logdir=$(mktemp -d "$scratch/pgbench.XXXX"); [ "$(id -u)" -eq 0 ] && chown postgres: "$logdir"
        local tps; tps=$(cd "$logdir" && "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/pgbench" -n -h "$dir/sock" -p "$port" -U postgres \
                -c 8 -j 2 -T "${BENCH_DASHBOARD_SECONDS:-20}" -M "$2" -D accounts="$accounts" -l \
                -f "$scratch/$1.sql" cscopilot_bench 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
        # per-transaction latencies (microseconds, third column of pgbench's log)
        local lat; lat=$(cat "$logdir"/pgbench_log.* | awk '{print $3 / 1000}' | sort -g)
        local nlat; nlat=$(wc -l <<<"$lat")
        echo "$(sed -n "$(( (nlat + 1) / 2 ))p" <<<"$lat") $(sed -n "$(( (nlat * 95 + 99) / 100 ))p" <<<"$lat") $tps"
    }
    for page in overview alerts account; do
        read -r p50 p95 tps <<<"$(pgb "$page" prepared)"
        read -r s50 s95 stps <<<"$(pgb "$page" simple)"
        label=$(case $page in overview) echo "a CSM's top 50 accounts";; alerts) echo "open risk alerts page (50)";;
                              account) echo "one account with alerts and explanation";; esac)
        row "dashboard: $label, 8 clients, prepared" "$(printf 'p50 %.1f ms, p95 %.1f ms, %.0f TPS' "$p50" "$p95" "$tps")" \
            "$(printf 'simple protocol: p95 %.1f ms, %.0f TPS' "$s95" "$stps")" \
            "$(calc "printf \"p95 %.2fx the 10 ms target\", $p95 / 10")"
    done
fi

if want alerts; then
    step "alert quality: weekly replay of the alert rules against the demo data's ground truth"
    [ "$(q "SELECT count(*) FROM cs.customer_features")" -gt 0 ] || q "SELECT cs.refresh_all()" >/dev/null
    out_aq=$("${PSQL[@]}" -At -F '|' -v sample_pct=$(( customers > 20000 ? 5 : 30 )) -f contrib/bench/alert_quality.sql)
    echo "$out_aq" >&2
    IFS='|' read -r nch recall nal prec_churn prec_risk base_risk nup up_exp base_exp <<<"$(head -1 <<<"$out_aq")"
    row "churners with a risk alert 30-90 days before churn ($nch churners)" "$recall" "target >= 0.70" \
        "$(ratio "%.2fx the target" "$recall" 0.70)"
    row "alerted customers genuinely at risk ($nal alerted)" "$prec_risk (churned within 90 days: $prec_churn)" \
        "$base_risk of all customers" "$(ratio "%.1fx the base rate" "$prec_risk" "$base_risk")"
    row "seat_upsell alerts that later expanded ($nup alerted)" "$up_exp" "$base_exp of surviving customers expand" \
        "$(ratio "%.1fx the base rate" "$up_exp" "$base_exp")"
fi

if want onecustomer; then
    # One customer through the same pipeline, against the time of fetching that
    # customer's rows through its indexes (contrib/bench/onecustomer/lookup.sql).
    warm_calls=${BENCH_ONE_CALLS:-300}; new_calls=${BENCH_ONE_SESSIONS:-100}
    step "one customer: cs.features, cs.churn_risk, cs.refresh(ARRAY[id]) of random customers, $warm_calls calls in one session and $new_calls new sessions, $runs runs"
    [ "$(q "SELECT count(*) FROM cs.customer_features")" -gt 0 ] || q "SELECT cs.refresh_all()" >/dev/null
    accounts=$("${PSQL[@]}" -At -f contrib/bench/dashboard/setup.sql | tail -1)
    cp contrib/bench/onecustomer/*.sql "$scratch/"; chmod a+r "$scratch"/*.sql; chmod a+rx "$scratch"
    # script, warm|new -> "p50 p99" in ms: warm is one session (its first 10
    # calls left out), new a fresh connection per call (pgbench -C, which
    # leaves the connection time out of the latency)
    one() {
        local logdir; logdir=$(mktemp -d "$scratch/pgbench.XXXX"); [ "$(id -u)" -eq 0 ] && chown postgres: "$logdir"
        local opts=(-t "$(( warm_calls + 10 ))") skip=10
        [ "$2" = new ] && { opts=(-C -t "$new_calls"); skip=0; }
        (cd "$logdir" && "${CLUSTER_RUN_AS[@]}" "$CLUSTER_BINDIR/pgbench" -n -h "$dir/sock" -p "$port" -U postgres \
            -c 1 -j 1 "${opts[@]}" -M prepared -D accounts="$accounts" -l -f "$scratch/$1.sql" cscopilot_bench >/dev/null 2>&1) \
            || { echo "bench: pgbench $1 $2 failed" >&2; return 1; }
        tail -n +$(( skip + 1 )) "$logdir"/pgbench_log.* | awk '{print $3 / 1000}' | sort -g \
            | awk '{a[NR] = $1} END {printf "%.3f %.3f\n", a[int((NR + 1) / 2)], a[int((NR * 99 + 99) / 100)]}'
    }
    declare -A p50s p99s
    for r in $(seq "$runs"); do
        for s in lookup features risk refresh; do
            for mode in warm new; do
                read -r a b <<<"$(one "$s" "$mode")"
                p50s[$s.$mode]+="$a "; p99s[$s.$mode]+="$b "
            done
        done
    done
    med() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | median; }
    printf 'p50 and p99 (ms) per run:\n' >&2
    for k in "${!p50s[@]}"; do printf '  %-16s p50 %s p99 %s\n' "$k" "${p50s[$k]}" "${p99s[$k]}" >&2; done
    for mode in warm new; do
        l50=$(med "${p50s[lookup.$mode]}"); l99=$(med "${p99s[lookup.$mode]}")
        label=$([ "$mode" = warm ] && echo "warm session, $warm_calls calls" || echo "new session per call, $new_calls calls")
        row "index lookups of one customer's rows (baseline), $label" "$(printf 'p50 %.2f ms, p99 %.2f ms' "$l50" "$l99")" "-" "1x"
        for s in features risk refresh; do
            m50=$(med "${p50s[$s.$mode]}"); m99=$(med "${p99s[$s.$mode]}")
            fn=$(case $s in features) echo "cs.features(id)";; risk) echo "cs.churn_risk(id)";; refresh) echo "cs.refresh(ARRAY[id])";; esac)
            target=$([ "$mode" = warm ] && [ "$s" != refresh ] && echo "; target p99 <= 5 ms" || true)
            row "$fn, $label" "$(printf 'p50 %.2f ms, p99 %.2f ms' "$m50" "$m99")" \
                "$(printf 'lookups p50 %.2f ms, p99 %.2f ms' "$l50" "$l99")" \
                "$(ratio "p50 %.1fx" "$m50" "$l50"), $(ratio "p99 %.1fx the lookups" "$m99" "$l99")$target"
        done
    done
fi

table() {
    echo "# Benchmarks"
    echo
    echo "Measured by \`make bench\` on $(date -u +%Y-%m-%d): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(q 'SHOW server_version' | cut -d' ' -f1)."
    echo "Each figure is the median of $runs runs; the ratio is against the baseline measured in the same run."
    echo
    echo "| what | figure | baseline | ratio |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
}
# BENCH_OUT=- prints the table (make bench-one) instead of writing a file
if [ "$out" = - ]; then table; else table > "$out"; step "wrote $out"; fi
