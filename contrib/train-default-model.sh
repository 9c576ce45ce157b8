#!/usr/bin/env bash
# make model: trains the shipped models reproducibly on generated demo data,
# evaluates each on customers generated with another seed (none of them seen in
# training), and writes models/<name>.json and models/<name>.metrics:
#   churn_default      churn within the horizon
#   survival_default   the time to churn (kind survival, objective survival:aft), judged by
#                      its concordance on the later period of the held-out seed; trained
#                      with the churn model (MODEL_KINDS must include churn)
#   downgrade_default  a downgrade (cscopilot.downgrade_share of MRR or seats lost, still a customer)
#   payment_default    an invoice failed or more than cscopilot.payment_overdue_days overdue
#   expansion_default  (kind expansion) an expansion (cscopilot.expansion_share of MRR gained); the
#                      amount is the classifier's probability times the typical gain, the
#                      median share of MRR gained by the training expanders (metrics
#                      expansion_amount), judged by MAE and RMSE on the held-out expanders
# Every kind is labelled by cs.build_training_set(dates, horizon, kind) on the same
# customer-dates (the rows of the churn set with cs._outcome of the kind, which is
# what build_training_set computes), and compared on the held-out seed with the
# single feature that predicts it best alone (its AUC, either direction).
# Each .metrics also holds the calibration map cs.train_model fitted on the
# forward validation rows ("calibration_map", stored with the model by CREATE
# EXTENSION) and the held-out Brier score before and after it
# ("calibration_holdout"): on the held-out seed's rows of the forward
# validation period, the period the map was fitted for, and on every date.
#   MODEL_CUSTOMERS (10000), MODEL_DAYS (365), MODEL_SEED (42), HOLDOUT_SEED (4242)
#   MODEL_KINDS ("churn downgrade payment expansion")
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. contrib/cluster.sh
customers=${MODEL_CUSTOMERS:-10000}
days=${MODEL_DAYS:-365}
seed=${MODEL_SEED:-42}
holdout_seed=${HOLDOUT_SEED:-4242}
end_date=${MODEL_END_DATE:-2026-06-30}
port=${MODEL_PORT:-54349}
kinds=${MODEL_KINDS:-churn downgrade payment expansion}
dir=$(cluster_dir "$top/.model")
# Monotone constraints (1: the risk never falls as the input grows; -1: never
# rises), only where the direction is known whatever the product: longer
# inactivity, late or failed invoices, days overdue, open urgent tickets, a
# champion who left and tickets or comments about cancelling or competitors
# never lower the risk; more active days, an active champion, a higher NPS
# and a higher CSAT never raise it.  Ticket volume, engagement, seats and
# revenue are left free: their effect goes either way (an engaged customer
# files tickets; a large one has more of everything).
monotone='{"days_since_last_activity": 1, "late_or_failed_invoices_90d": 1, "days_overdue": 1, "open_high_priority_tickets": 1, "champion_left_90d": 1, "cancellation_mentions_90d": 1, "competitor_mentions_90d": 1, "active_days_30d": -1, "has_active_champion": -1, "last_nps": -1, "mean_csat_90d": -1}'
horizon='90 days'
# The split is forward (the training query has as_of): validation on the latest
# observation dates, training on those whose label window ends before them.
params="{\"max_depth\": 4, \"eta\": 0.05, \"num_round\": 600, \"early_stopping_rounds\": 40, \"min_child_weight\": 5, \"subsample\": 0.8, \"colsample_bytree\": 0.8, \"seed\": 7, \"horizon\": \"$horizon\", \"monotone_constraints\": $monotone}"
# Observation dates: monthly, from 120 days after the start (enough history for
# every feature window) to one horizon before the end (labels are complete).
dates="SELECT array_agg(d::date ORDER BY d) FROM generate_series(date '$end_date' - $days + 120, date '$end_date' - 90, interval '30 days') d"

# Survival: monthly observation dates up to 30 days before the end (censoring
# covers the rows whose churn is not known yet), followed up to 365 days.
surv_dates="SELECT array_agg(d::date ORDER BY d) FROM generate_series(date '$end_date' - $days + 120, date '$end_date' - 30, interval '30 days') d"
surv_params='{"objective": "survival:aft", "aft_loss_distribution": "normal", "aft_loss_distribution_scale": 1.0, "max_depth": 4, "eta": 0.05, "num_round": 400, "early_stopping_rounds": 30, "min_child_weight": 5, "subsample": 0.8, "colsample_bytree": 0.8, "seed": 7}'
# The held-out C-index is on the later period: the last three dates.
surv_later="SELECT array_agg(d::date ORDER BY d) FROM generate_series(date '$end_date' - 90, date '$end_date' - 30, interval '30 days') d"

step() { printf '\n== %s\n' "$*"; }
trap 'cluster_stop "$dir"' EXIT
step "installing and starting a throwaway cluster"
install_extension
cluster_start "$dir" "$port" cscopilot_model

step "training data: $customers customers x $days days, seed $seed, ending $end_date"
"${PSQL[@]}" -c "SET client_min_messages = warning" -c "CREATE EXTENSION cscopilot" -c "DELETE FROM cs.models"
"${PSQL[@]}" -c "SET client_min_messages = warning" -c "SELECT cs.generate_demo_data($customers, $days, $seed, '$end_date')"
# labels of every kind on the same customer-dates (cs._outcome is build_training_set's labeller)
label_sets() {
    "${PSQL[@]}" -c "CREATE TABLE $1 AS SELECT * FROM cs.build_training_set(($dates), '$horizon')"
    for kind in $kinds; do
        [ "$kind" = churn ] && continue
        "${PSQL[@]}" -c "CREATE TABLE ${1}_$kind AS SELECT t.customer_id, t.as_of, t.features, o.label, t.group_key, o.target
                           FROM $1 t CROSS JOIN LATERAL cs._outcome('$kind', t.customer_id, t.as_of, '$horizon') o"
    done
}
set_of() { [ "$2" = churn ] && echo "$1" || echo "${1}_$2"; }
name_of() { echo "${1}_default"; }
model_kind() { echo "$1"; }
label_sets train
for kind in $kinds; do
    "${PSQL[@]}" -c "SELECT '$kind' AS kind, count(*) AS rows, sum(label) AS positives, round(avg(label), 4) AS positive_rate FROM $(set_of train "$kind")"
done

# Monotone constraints per kind, only where the direction is known: for payment,
# late invoices and days overdue never lower the risk; downgrade and expansion
# are left free (usage and seats go either way with size).
monotone_of() {
    case "$1" in
        churn) echo "$monotone" ;;
        payment) echo '{"late_or_failed_invoices_90d": 1, "days_overdue": 1}' ;;
        *) echo '{}' ;;
    esac
}
for kind in $kinds; do
    name=$(name_of "$kind")
    p="{\"max_depth\": 4, \"eta\": 0.05, \"num_round\": 600, \"early_stopping_rounds\": 40, \"min_child_weight\": 5, \"subsample\": 0.8, \"colsample_bytree\": 0.8, \"seed\": 7, \"horizon\": \"$horizon\", \"monotone_constraints\": $(monotone_of "$kind")}"
    step "training $name ($kind)"
    "${PSQL[@]}" -c "\timing on" -c "SELECT cs.train_model('$name', '$(model_kind "$kind")', 'SELECT features, label, group_key, as_of FROM $(set_of train "$kind")', '$p')"
    "${PSQL[@]}" -c "SELECT metrics ->> 'split' AS split, metrics -> 'split_window' AS window, metrics -> 'leakage_suspects' AS leakage_suspects FROM cs.models WHERE name = '$name'"
    # CREATE EXTENSION deploys the shipped model: a leak would make cs.deploy_model refuse it.
    suspects=$("${PSQL[@]}" -At -c "SELECT metrics -> 'leakage_suspects' FROM cs.models WHERE name = '$name'")
    if [ "$suspects" != "[]" ]; then
        echo "the leakage audit flags $suspects in $name: not writing a model CREATE EXTENSION would refuse to deploy" >&2
        exit 1
    fi
    "${PSQL[@]}" -At -c "SELECT encode(model, 'base64') FROM cs.models WHERE name = '$name'" | base64 -d > "models/$name.json"
    # the label's definition, and for expansion the typical gain (median share of
    # the MRR at the observation date gained by the training expanders)
    "${PSQL[@]}" -c "CREATE TABLE ${name}_metrics AS SELECT metrics || jsonb_build_object('label', cs.label_definition('$kind', '$horizon'))
                       || CASE WHEN '$kind' = 'expansion' THEN jsonb_build_object('expansion_amount', (
                            SELECT jsonb_build_object('median_share_of_mrr', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.target / t.features[fc.position])::numeric, 4),
                                                      'median_amount', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.target)::numeric, 2),
                                                      'expanders', count(*))
                              FROM $(set_of train "$kind") t JOIN cs.feature_catalog fc ON fc.name = 'mrr'
                             WHERE t.label = 1 AND t.features[fc.position] > 0)) ELSE '{}' END
                       -- the calibration map fitted on the forward validation rows
                       || jsonb_build_object('calibration_map', calibration) AS metrics
                       FROM cs.models WHERE name = '$name'"
done

step "survival training rows (seed $seed), kept for after the churn evaluation"
"${PSQL[@]}" -c "CREATE TABLE surv_train AS SELECT * FROM cs.build_survival_set(($surv_dates), 365, date '$end_date' + 1)" \
    -c "SELECT count(*) AS rows, count(*) FILTER (WHERE churned) AS churned FROM surv_train"

step "held-out evaluation: customers generated with seed $holdout_seed"
"${PSQL[@]}" -c "SET client_min_messages = warning" -c "CREATE TABLE keep_metrics AS SELECT * FROM (VALUES (NULL::text, NULL::jsonb)) v(name, metrics) WHERE false"
for kind in $kinds; do
    "${PSQL[@]}" -c "INSERT INTO keep_metrics SELECT '$(name_of "$kind")', metrics FROM $(name_of "$kind")_metrics"
done
"${PSQL[@]}" -c "SET client_min_messages = warning" -c "CREATE TABLE keep AS SELECT * FROM keep_metrics" \
    -c "DROP EXTENSION cscopilot CASCADE" -c "CREATE EXTENSION cscopilot" -c "DELETE FROM cs.models"
"${PSQL[@]}" -c "SET client_min_messages = warning" -c "SELECT cs.generate_demo_data($customers, $days, $holdout_seed, '$end_date')"
label_sets heldout
for kind in $kinds; do
    name=$(name_of "$kind")
    cp "models/$name.json" "$dir/model.json"; [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/model.json"
    "${PSQL[@]}" -c "SELECT cs.load_model('$name', '$(model_kind "$kind")', pg_read_binary_file('$dir/model.json'))" >/dev/null
    "${PSQL[@]}" -c "UPDATE cs.models m SET calibration = nullif(k.metrics -> 'calibration_map', 'null')
                       FROM keep k WHERE k.name = '$name' AND m.name = '$name'" >/dev/null
    "${PSQL[@]}" -c "DROP TABLE IF EXISTS holdout" \
        -c "CREATE TABLE holdout AS SELECT t.*, cs.predict('$name', t.features) AS p FROM $(set_of heldout "$kind") t"
    holdout=$("${PSQL[@]}" -At -f contrib/model-metrics.sql)
    # calibration on the held-out seed: neither training nor the map saw these
    # customers.  Judged forward in time, as the map is used: on the held-out
    # rows of the period the map was fitted for (observation dates from the
    # forward split's valid_from on), and, for comparison, on every date.
    calibration_holdout=$("${PSQL[@]}" -At -c "
        WITH v AS (SELECT (metrics -> 'split_window' ->> 'valid_from')::timestamptz AS valid_from
                     FROM keep WHERE name = '$name'),
             s AS (SELECT h.as_of >= v.valid_from AS later, h.label, h.p, cs.calibrate('$name', h.p) AS q
                     FROM holdout h, v)
        SELECT jsonb_build_object('rows', count(*) FILTER (WHERE later),
                  'period', 'observation dates from ' || (SELECT valid_from::date FROM v),
                  'method', (SELECT calibration ->> 'method' FROM cs.models WHERE name = '$name'),
                  'brier_raw', round(avg((p - label) ^ 2) FILTER (WHERE later)::numeric, 5),
                  'brier_calibrated', round(avg((q - label) ^ 2) FILTER (WHERE later)::numeric, 5),
                  'all_dates', jsonb_build_object('rows', count(*),
                                  'brier_raw', round(avg((p - label) ^ 2)::numeric, 5),
                                  'brier_calibrated', round(avg((q - label) ^ 2)::numeric, 5)))
          FROM s")
    echo "calibration on the held-out seed: $calibration_holdout"
    # the baseline: the feature that best predicts the label alone (AUC either
    # direction; a missing value ranks lowest)
    baseline=$("${PSQL[@]}" -At -c "
        SELECT jsonb_build_object('feature', fc.name, 'auc', round(greatest(x.auc, 1 - x.auc)::numeric, 4))
          FROM cs.feature_catalog fc
         CROSS JOIN LATERAL (SELECT array_agg(CASE WHEN h.features[fc.position] = 'NaN' OR h.features[fc.position] IS NULL
                                                   THEN -1e30 ELSE h.features[fc.position] END) AS p,
                                    array_agg(h.label) AS y FROM holdout h) a
         CROSS JOIN LATERAL cs.classification_metrics(a.p, a.y, 0.5) x
         WHERE x.auc IS NOT NULL
         ORDER BY greatest(x.auc, 1 - x.auc) DESC, fc.position LIMIT 1")
    extra='{}'
    if [ "$kind" = expansion ]; then
        # amount given an expansion: the typical share times the MRR at the
        # observation date, against the median amount of the training expanders
        extra=$("${PSQL[@]}" -At -c "
            WITH k AS (SELECT (metrics -> 'expansion_amount' ->> 'median_share_of_mrr')::float8 AS share,
                              (metrics -> 'expansion_amount' ->> 'median_amount')::float8 AS amount
                         FROM keep WHERE name = '$name'),
                 e AS (SELECT h.target, k.share * h.features[fc.position] AS pred, k.amount AS base
                         FROM holdout h, k, cs.feature_catalog fc WHERE fc.name = 'mrr' AND h.label = 1)
            SELECT jsonb_build_object('amount', jsonb_build_object(
                       'expanders', count(*),
                       'mae', round(avg(abs(e.pred - e.target))::numeric, 2),
                       'rmse', round(sqrt(avg((e.pred - e.target) ^ 2))::numeric, 2),
                       'baseline_median_amount_mae', round(avg(abs(e.base - e.target))::numeric, 2),
                       'baseline_median_amount_rmse', round(sqrt(avg((e.base - e.target) ^ 2))::numeric, 2)))
              FROM e")
    fi
    # training metrics (validation split, importance, parameters) with the held-out ones
    "${PSQL[@]}" -At -v holdout="$holdout" -v baseline="$baseline" -v extra="$extra" -v calibration_holdout="$calibration_holdout" -f - > "models/$name.metrics" <<SQL
SELECT jsonb_pretty(metrics || jsonb_build_object(
         'holdout', :'holdout'::jsonb || jsonb_build_object('single_feature_baseline', :'baseline'::jsonb) || :'extra'::jsonb,
         'calibration_holdout', :'calibration_holdout'::jsonb,
         'training_set', jsonb_build_object('customers', $customers, 'days', $days, 'seed', $seed,
                                            'end_date', '$end_date', 'horizon', '$horizon',
                                            'holdout_seed', $holdout_seed)))
  FROM keep WHERE name = '$name';
SQL
    cat "models/$name.metrics"
    step "wrote models/$name.json and models/$name.metrics"
done

if [[ " $kinds " == *" churn "* ]]; then
step "survival model: training on the seed $seed rows"
"${PSQL[@]}" -c "\timing on" -c "SELECT cs.train_model('survival_default', 'survival', 'SELECT features, label_lower, label_upper, group_key, as_of FROM surv_train', '$surv_params')"
"${PSQL[@]}" -At -c "SELECT encode(model, 'base64') FROM cs.models WHERE name = 'survival_default'" | base64 -d > models/survival_default.json
cp models/survival_default.json "$dir/survival.json"; [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/survival.json"
step "survival model: concordance on the later period of seed $holdout_seed"
"${PSQL[@]}" -c "SET client_min_messages = warning" \
    -c "CREATE TABLE surv_holdout AS SELECT s.*, cs.predict('survival_default', s.features) AS predicted_days, cs.predict('churn_default', s.features) AS churn_risk, s.features[array_position(cs.feature_names(), 'days_since_last_activity')] AS inactive_days FROM cs.build_survival_set(($surv_later), 365, date '$end_date' + 1) s"
# Baselines ordered the same way (a higher risk or longer inactivity: sooner).
"${PSQL[@]}" -At -f - > models/survival_default.metrics <<SQL
SELECT jsonb_pretty(m.metrics || jsonb_build_object(
         'holdout', (SELECT jsonb_build_object(
                        'rows', count(*), 'churned', count(*) FILTER (WHERE churned),
                        'observation_dates', ($surv_later),
                        'concordance_index', round(cs.concordance_index(array_agg(predicted_days), array_agg(label_lower), array_agg(churned))::numeric, 4),
                        'baseline_churn_model_concordance', round(cs.concordance_index(array_agg(-churn_risk), array_agg(label_lower), array_agg(churned))::numeric, 4),
                        'baseline_days_since_last_activity_concordance', round(cs.concordance_index(array_agg(-coalesce(nullif(inactive_days, 'NaN'), 1e6)::float8), array_agg(label_lower), array_agg(churned))::numeric, 4),
                        'median_predicted_days', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY predicted_days)::numeric, 1))
                       FROM surv_holdout),
         'training_set', jsonb_build_object('customers', $customers, 'days', $days, 'seed', $seed,
                                            'end_date', '$end_date', 'max_days', 365,
                                            'holdout_seed', $holdout_seed)))
  FROM cs.models m WHERE m.name = 'survival_default';
SQL
cat models/survival_default.metrics
step "wrote models/survival_default.json and models/survival_default.metrics"
fi
