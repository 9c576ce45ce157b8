#!/usr/bin/env bash
# make model: trains the shipped churn model (models/churn_default.json)
# reproducibly on generated demo data, evaluates it on customers generated with
# another seed (none of them seen in training), and writes models/churn_default.metrics;
# then the same for the survival (time to churn) model, models/survival_default.*.
#   MODEL_CUSTOMERS (10000), MODEL_DAYS (365), MODEL_SEED (42), HOLDOUT_SEED (4242)
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
"${PSQL[@]}" -c "CREATE TABLE train AS SELECT * FROM cs.build_training_set(($dates), '$horizon')" \
    -c "SELECT count(*) AS rows, round(avg(label), 4) AS positive_rate FROM train"

step "training"
"${PSQL[@]}" -c "\timing on" -c "SELECT cs.train_model('churn_default', 'churn', 'SELECT features, label, group_key, as_of FROM train', '$params')"
"${PSQL[@]}" -c "SELECT metrics ->> 'split' AS split, metrics -> 'split_window' AS window, metrics -> 'leakage_suspects' AS leakage_suspects FROM cs.models WHERE name = 'churn_default'"
# CREATE EXTENSION deploys the shipped model: a leak would make cs.deploy_model refuse it.
suspects=$("${PSQL[@]}" -At -c "SELECT metrics -> 'leakage_suspects' FROM cs.models WHERE name = 'churn_default'")
if [ "$suspects" != "[]" ]; then
    echo "the leakage audit flags $suspects: not writing a model CREATE EXTENSION would refuse to deploy" >&2
    exit 1
fi
"${PSQL[@]}" -At -c "SELECT encode(model, 'base64') FROM cs.models WHERE name = 'churn_default'" | base64 -d > models/churn_default.json
"${PSQL[@]}" -c "CREATE TABLE train_metrics AS SELECT metrics FROM cs.models WHERE name = 'churn_default'"

step "survival training rows (seed $seed), kept for after the churn evaluation"
"${PSQL[@]}" -c "CREATE TABLE surv_train AS SELECT * FROM cs.build_survival_set(($surv_dates), 365, date '$end_date' + 1)" \
    -c "SELECT count(*) AS rows, count(*) FILTER (WHERE churned) AS churned FROM surv_train"

step "held-out evaluation: customers generated with seed $holdout_seed"
"${PSQL[@]}" -c "SET client_min_messages = warning" -c "DROP EXTENSION cscopilot CASCADE" -c "DROP TABLE train" -c "CREATE EXTENSION cscopilot" -c "DELETE FROM cs.models"
"${PSQL[@]}" -c "SET client_min_messages = warning" -c "SELECT cs.generate_demo_data($customers, $days, $holdout_seed, '$end_date')"
cp models/churn_default.json "$dir/model.json"; [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/model.json"
"${PSQL[@]}" -c "SELECT cs.load_model('churn_default', 'churn', pg_read_binary_file('$dir/model.json'))" >/dev/null
"${PSQL[@]}" -c "CREATE TABLE holdout AS SELECT t.*, cs.predict('churn_default', t.features) AS p FROM cs.build_training_set(($dates), '$horizon') t"
holdout=$("${PSQL[@]}" -At -f contrib/model-metrics.sql)
# training metrics (validation split, importance, parameters) with the held-out ones
"${PSQL[@]}" -At -v holdout="$holdout" -f - > models/churn_default.metrics <<SQL
SELECT jsonb_pretty(metrics || jsonb_build_object(
         'holdout', :'holdout'::jsonb,
         'training_set', jsonb_build_object('customers', $customers, 'days', $days, 'seed', $seed,
                                            'end_date', '$end_date', 'horizon', '$horizon',
                                            'holdout_seed', $holdout_seed)))
  FROM train_metrics;
SQL
cat models/churn_default.metrics
step "wrote models/churn_default.json and models/churn_default.metrics"

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
