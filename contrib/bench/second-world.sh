#!/usr/bin/env bash
# make bench-world2: churn prediction measured on a world the model never saw.
#
# On a throwaway cluster run from a private copy of the installation, for the
# 'consumer' demo world (and the default 'b2b' one beside it): generates the
# world with the training seed, trains in the database on point-in-time labels
# (cs.build_training_set + cs.train_model), then replaces it with the same
# world drawn from another seed and scores it at later dates, a gap of one
# horizon after the last training label.  Prints a Markdown table for
# BENCHMARKS.md:
#   (a) the fixed feature vector (cs.feature_catalog) trained in the database;
#   (b) the same plus the metrics cs.propose_metrics() adds from the event
#       vocabulary (consumer world; "not available" without that function);
#   (c) a baseline: the single feature that ranks the training rows best;
#   (d) the stored validation AUC of (a) and (b) beside their test AUC;
#   (e) the leakage audit's findings (metrics->'leakage' of the models).
# Environment (defaults): W2_ACCOUNTS (3000), W2_DAYS (240), W2_HORIZON (30 days),
# W2_STEP (7), B2B_ACCOUNTS (2000), B2B_DAYS (420), B2B_HORIZON (60 days),
# B2B_STEP (14), W2_WARMUP (42: days of history before the first label),
# W2_TEST_SPAN (28: days of test dates), W2_TRAIN_SEED (42), W2_TEST_SEED (4242),
# W2_END (2026-06-30), W2_WORLDS ("consumer b2b"), W2_PARAMS (training params,
# jsonb), BENCH_PORT (54369).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. contrib/cluster.sh
port=${BENCH_PORT:-54369}
dir=$(cluster_dir "$top/.bench-world2")
export CLUSTER_PREFIX=${CLUSTER_PREFIX:-$dir/install}
. contrib/cluster.sh
train_seed=${W2_TRAIN_SEED:-42}
test_seed=${W2_TEST_SEED:-4242}
end_date=${W2_END:-2026-06-30}
warmup=${W2_WARMUP:-42}
test_span=${W2_TEST_SPAN:-28}
worlds=${W2_WORLDS:-"consumer b2b"}
params=${W2_PARAMS:-'{"max_depth": 4, "eta": 0.1, "num_round": 300, "early_stopping_rounds": 30, "subsample": 0.8, "colsample_bytree": 0.8, "seed": 1, "nthread": 1}'}
rows=()
notes=()

step() { printf '== %s\n' "$*" >&2; }
q() { "${PSQL[@]}" -At -c "SET client_min_messages = warning" -c "$1"; }
# Like q, but a failure writes the server's message to $errfile and returns 1 instead of ending the run.
errfile=$(mktemp "${TMPDIR:-/tmp}/cscopilot-world2.XXXXXX")
try_q() {
    local out
    if out=$("${PSQL[@]}" -At -c "SET client_min_messages = warning" -c "$1" 2>&1); then printf '%s' "$out"; return 0; fi
    sed -n 's/^.*ERROR: *//p' <<<"$out" | head -1 > "$errfile"; return 1
}
has() { [ "$(q "SELECT to_regproc('$1') IS NOT NULL")" = t ]; }
row() { rows+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 |"); printf '%s | %s | %s | %s | %s | %s | %s\n' "$@" >&2; }

step "installing and starting a throwaway cluster in $dir"
install_extension
trap 'cluster_stop "$dir"; rm -f "$errfile"' EXIT

# AUC, top-decile lift, rows and positives of a score over test rows, as "auc|lift|n|pos".
evaluate() {
    q "SELECT coalesce(round(m.auc::numeric, 3)::text, 'n/a'), coalesce(round(m.lift_top_decile::numeric, 2)::text, 'n/a'),
              m.n, m.positives
         FROM (SELECT array_agg(($1)::float8 ORDER BY customer_id, as_of) p, array_agg(label ORDER BY customer_id, as_of) y
                 FROM test_rows) s,
              cs.classification_metrics(s.p, s.y, 0.5) m"
}
stored_auc() { q "SELECT coalesce(round((metrics->>'auc')::numeric, 3)::text, 'n/a') FROM cs.models WHERE id = $1"; }
# The leakage audit's findings of model id $1: the suspect features, "none", or "not available".
leakage() {
    q "SELECT CASE WHEN NOT (metrics ? 'leakage') THEN 'not available'
                   ELSE coalesce((SELECT string_agg(format('%s (AUC alone %s%s)', l->>'feature',
                                                           round((l->>'auc_alone')::numeric, 3),
                                                           CASE WHEN (l->>'point_in_time')::boolean IS FALSE
                                                                THEN ', not known at as_of' ELSE '' END), '; ')
                                    FROM jsonb_array_elements(metrics->'leakage') l
                                   WHERE (l->>'suspect')::boolean), 'none') END
         FROM cs.models WHERE id = $1"
}
# The names of the features (cs.feature_names() when it exists, else the catalog).
feature_names() {
    if has cs.feature_names; then q "SELECT to_jsonb(cs.feature_names())"
    else q "SELECT jsonb_agg(name ORDER BY position) FROM cs.feature_catalog"; fi
}

run_world() {
    local profile=$1 accounts=$2 days=$3 horizon=$4 step_days=$5
    local db=cscopilot_w2_$profile
    step "$profile world: $accounts accounts x $days days, horizon $horizon, seeds $train_seed (train) and $test_seed (test)"
    cluster_start "$dir" "$port" "$db"
    q "CREATE EXTENSION cscopilot"
    # Dates: training labels end one horizon before the first test date.
    local dates
    dates=$(q "WITH w AS (SELECT '$end_date'::date - $days AS s, '$end_date'::date AS e, '$horizon'::interval AS h),
                    b AS (SELECT s + $warmup AS lo, (e - h)::date AS hi, h FROM w),
                    t AS (SELECT lo, hi, (hi - $test_span) AS t0, (hi - $test_span - 2 * h)::date AS t1 FROM b)
               SELECT (SELECT array_agg(d::date ORDER BY d) FROM generate_series(lo, t1, '$step_days days') d),
                      (SELECT array_agg(d::date ORDER BY d) FROM generate_series(t0, hi, '7 days') d)
                 FROM t WHERE t1 >= lo + 2 * $step_days")
    [ -n "$dates" ] || { echo "second-world: $days days are too few for a warm-up of $warmup days, two horizons of $horizon and $test_span test days" >&2; exit 1; }
    local train_dates=${dates%%|*} test_dates=${dates##*|}
    step "training dates $train_dates; test dates $test_dates"

    step "generating the training world (seed $train_seed)"
    local t0=$SECONDS
    q "SELECT cs.generate_demo_data($accounts, $days, $train_seed, '$end_date', '$profile')" >/dev/null
    local gen_secs=$((SECONDS - t0))
    q "CREATE TABLE train_a AS SELECT * FROM cs.build_training_set('$train_dates'::date[], '$horizon')"
    local nf_a
    nf_a=$(q "SELECT max(cardinality(features)) FROM train_a")
    local train_n
    train_n=$(q "SELECT count(*) || ' (' || sum(label) || ')' FROM train_a")
    step "training (a) on $train_n rows (positives) x $nf_a features"
    local model_a err_a=""
    model_a=$(try_q "SELECT cs.train_model('w2_fixed', 'churn',
                   'SELECT features, label, group_key, as_of FROM train_a ORDER BY as_of, customer_id',
                   '$params'::jsonb || jsonb_build_object('horizon', '$horizon', 'feature_names', (SELECT jsonb_agg(name ORDER BY position) FROM cs.feature_catalog WHERE position <= $nf_a)))") \
        || { model_a=""; err_a="training failed: $(cat "$errfile")"; }
    # (c): the single feature that ranks the training rows best, in its better direction
    local base
    base=$(q "WITH f AS (SELECT i, fc.name,
                                (SELECT m.auc FROM (SELECT array_agg(CASE WHEN t.features[i] = 'NaN' THEN NULL ELSE t.features[i] END::float8) p,
                                                           array_agg(t.label) y FROM train_a t) s,
                                        cs.classification_metrics(s.p, s.y, 0.5) m) AS auc
                           FROM generate_series(1, $nf_a) i JOIN cs.feature_catalog fc ON fc.position = i)
              SELECT i, name, CASE WHEN auc >= 0.5 THEN 1 ELSE -1 END, round(greatest(auc, 1 - auc)::numeric, 3)
                FROM f WHERE auc IS NOT NULL ORDER BY abs(auc - 0.5) DESC, i LIMIT 1")
    local base_i base_name base_sign base_train
    IFS='|' read -r base_i base_name base_sign base_train <<<"$base"

    local model_b="" added="" train_nb="" nf_b="" err_b=""
    if [ "$profile" = consumer ]; then
        if has cs.propose_metrics && has cs.feature_names; then
            step "(b): cs.propose_metrics() on the training world"
            added=$(q "SELECT string_agg(x::text, '; ') FROM cs.propose_metrics() x" || true)
            q "CREATE TABLE train_b AS SELECT * FROM cs.build_training_set('$train_dates'::date[], '$horizon')"
            nf_b=$(q "SELECT max(cardinality(features)) FROM train_b")
            train_nb=$(q "SELECT count(*) || ' (' || sum(label) || ')' FROM train_b")
            step "training (b) on $train_nb rows (positives) x $nf_b features"
            model_b=$(try_q "SELECT cs.train_model('w2_metrics', 'churn',
                           'SELECT features, label, group_key, as_of FROM train_b ORDER BY as_of, customer_id',
                           '$params'::jsonb || jsonb_build_object('horizon', '$horizon', 'feature_names', '$(feature_names)'::jsonb))") \
                || { model_b=""; err_b="training failed: $(cat "$errfile")"; }
        else
            notes+=("- $profile (b): not available: cs.propose_metrics() and cs.feature_names() are not in this build.")
        fi
    fi

    step "replacing it with the test world (seed $test_seed) and scoring later dates"
    q "SELECT cs.drop_demo_data()" >/dev/null
    q "SELECT cs.generate_demo_data($accounts, $days, $test_seed, '$end_date', '$profile')" >/dev/null
    q "CREATE TABLE test_rows AS SELECT * FROM cs.build_training_set('$test_dates'::date[], '$horizon')"
    local test_n
    test_n=$(q "SELECT count(*) || ' (' || coalesce(sum(label), 0) || ')' FROM test_rows")

    local auc lift n pos
    if [ -n "$model_a" ]; then
        IFS='|' read -r auc lift n pos < <(evaluate "cs.predict('w2_fixed', features[1:$nf_a])")
        row "$profile" "(a) fixed $nf_a features, cs.train_model" "$train_n" "$test_n" "$(stored_auc "$model_a")" "$auc" "$lift"
    else
        row "$profile" "(a) fixed $nf_a features, cs.train_model" "$train_n" "$test_n" "$err_a" "n/a" "n/a"
    fi
    if [ -n "$model_b" ]; then
        IFS='|' read -r auc lift n pos < <(evaluate "cs.predict('w2_metrics', features)")
        row "$profile" "(b) $nf_a + $((nf_b - nf_a)) proposed metrics, cs.train_model" "$train_nb" "$test_n" "$(stored_auc "$model_b")" "$auc" "$lift"
    elif [ -n "$err_b" ]; then
        row "$profile" "(b) $nf_a + $((nf_b - nf_a)) proposed metrics, cs.train_model" "$train_nb" "$test_n" "$err_b" "n/a" "n/a"
    elif [ "$profile" = consumer ]; then
        row "$profile" "(b) + proposed metrics" "not available" "not available" "not available" "not available" "not available"
    fi
    if [ -n "$base_i" ]; then
        IFS='|' read -r auc lift n pos < <(evaluate "CASE WHEN features[$base_i] = 'NaN' THEN -1e30 ELSE $base_sign * features[$base_i] END")
        row "$profile" "(c) baseline: $([ "$base_sign" = 1 ] && echo higher || echo lower) $base_name alone" "$train_n" "$test_n" "$base_train (training rows)" "$auc" "$lift"
    else
        row "$profile" "(c) baseline: the best single feature" "$train_n" "$test_n" "n/a: no feature ranks the training rows (one class)" "n/a" "n/a"
    fi

    [ -n "$model_a" ] && notes+=("- $profile (e) leakage audit of (a): $(leakage "$model_a")")
    [ -n "$model_b" ] && notes+=("- $profile (e) leakage audit of (b): $(leakage "$model_b")")
    [ -n "$added" ] && notes+=("- $profile (b) metrics proposed: $added")
    notes+=("- $profile: generating $accounts accounts x $days days took ${gen_secs} s; training dates $train_dates, test dates $test_dates (horizon $horizon).")
}

for w in $worlds; do
    case $w in
        consumer) run_world consumer "${W2_ACCOUNTS:-3000}" "${W2_DAYS:-240}" "${W2_HORIZON:-30 days}" "${W2_STEP:-7}" ;;
        b2b) run_world b2b "${B2B_ACCOUNTS:-2000}" "${B2B_DAYS:-420}" "${B2B_HORIZON:-60 days}" "${B2B_STEP:-14}" ;;
        *) echo "second-world: unknown world $w (consumer, b2b)" >&2; exit 1 ;;
    esac
done

echo
echo "| world | method | training rows (churners) | test rows (churners) | stored validation AUC | test AUC | top-decile lift |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
printf '%s\n' "${notes[@]}"
