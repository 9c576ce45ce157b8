-- Models a CSM can trust: calibrated probabilities (isotonic and Platt,
-- fitted on the forward validation rows), class weighting only with a
-- calibration, global explanations, and the parameter search of cs.train_model.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET TIME ZONE 'UTC';
SET extra_float_digits = 0;
\set VERBOSITY terse

-- A deterministic world: three inputs, the risk rising with f1, falling with
-- f2, f3 noise; a pseudo-random draw u per row decides the label.  Monthly
-- observation dates; the held-out rows (g > 4000) come later and are used
-- neither for training nor for calibration.
CREATE TABLE rows AS
SELECT g,
       date '2025-01-01' + ((g - 1) % 8)::int * 30 AS as_of,
       ARRAY[((g * 7919) % 1000) / 100.0, ((g * 104729) % 1000) / 100.0, ((g * 31) % 97) / 10.0]::float4[] AS features,
       ((g * 15485863) % 10007) / 10007.0 AS u
  FROM generate_series(1::bigint, 5000) g;
ALTER TABLE rows ADD COLUMN label int;
UPDATE rows SET label = (u < 1 / (1 + exp(-(0.6 * features[1] - 0.5 * features[2] - 1.0))))::int;
UPDATE rows SET as_of = date '2026-01-01' WHERE g > 4000;
SELECT count(*) FILTER (WHERE g <= 4000) AS training_rows, round(avg(label), 2) AS positive_rate FROM rows;

-- Class weighting without a calibration is refused (the probabilities would not be frequencies)
SELECT cs.train_model('w_none', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"scale_pos_weight": 4, "calibration": "none", "horizon": "30 days"}');
SELECT cs.train_model('w_bad', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"calibration": "sigmoid"}');

-- Class weighting with isotonic calibration (auto: enough rows of each class)
SELECT cs.train_model('weighted', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"scale_pos_weight": 4, "max_depth": 3, "eta": 0.1, "num_round": 200, "horizon": "30 days",
                        "calibration": "isotonic"}') > 0 AS trained;
-- auto on the same rows: the method with the lower cross-fitted Brier score, both recorded
SELECT cs.train_model('weighted_auto', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"scale_pos_weight": 4, "max_depth": 3, "eta": 0.1, "num_round": 200, "horizon": "30 days"}') > 0 AS trained;
SELECT metrics -> 'calibration' ->> 'method' AS chosen,
       (metrics -> 'calibration' ->> 'brier_calibrated')::float8
         = least((metrics -> 'calibration' -> 'auto_candidates' ->> 'platt')::float8,
                 (metrics -> 'calibration' -> 'auto_candidates' ->> 'isotonic')::float8) AS chose_the_lower,
       (metrics -> 'calibration' ->> 'brier_calibrated')::float8 < (metrics -> 'calibration' ->> 'brier_raw')::float8 AS lower_than_raw
  FROM cs.models WHERE name = 'weighted_auto';
-- a model whose raw probabilities no method improves keeps none
SELECT cs.train_model('plain_auto', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"max_depth": 3, "eta": 0.1, "num_round": 200, "horizon": "30 days"}') > 0 AS trained;
SELECT coalesce(calibration ->> 'method', 'none') AS method,
       metrics -> 'calibration' ->> 'method' AS metrics_method,
       (metrics -> 'calibration' ->> 'skipped') IS NOT NULL
         = (least((metrics -> 'calibration' -> 'auto_candidates' ->> 'platt')::float8,
                  coalesce((metrics -> 'calibration' -> 'auto_candidates' ->> 'isotonic')::float8, 'Infinity'))
            >= (metrics -> 'calibration' ->> 'brier_raw')::float8) AS none_exactly_when_no_gain
  FROM cs.models WHERE name = 'plain_auto';
SELECT calibration ->> 'method' AS method, metrics -> 'calibration' ->> 'method' AS metrics_method,
       metrics ->> 'split' AS split,
       (metrics -> 'calibration' ->> 'brier_calibrated')::float8 < (metrics -> 'calibration' ->> 'brier_raw')::float8
           AS cross_fitted_brier_lower,
       jsonb_array_length(metrics -> 'calibration' -> 'reliability') AS deciles
  FROM cs.models WHERE name = 'weighted';
-- the map is monotone: knots increasing, calibrated values non-decreasing
SELECT bool_and(x.v > lag_x AND y.v >= lag_y) AS monotone, count(*) + 1 AS knots_checked
  FROM (SELECT ordinality AS i, value::float8 AS v,
               lag(value::float8) OVER (ORDER BY ordinality) AS lag_x
          FROM cs.models m, jsonb_array_elements_text(m.calibration -> 'x') WITH ORDINALITY WHERE m.name = 'weighted') x
  JOIN (SELECT ordinality AS i, value::float8 AS v,
               lag(value::float8) OVER (ORDER BY ordinality) AS lag_y
          FROM cs.models m, jsonb_array_elements_text(m.calibration -> 'y') WITH ORDINALITY WHERE m.name = 'weighted') y
    ON x.i = y.i
 WHERE x.lag_x IS NOT NULL;
-- ... and cs.calibrate follows it on a grid of raw probabilities
SELECT bool_and(c >= prev) AS calibrate_monotone
  FROM (SELECT c, lag(c) OVER (ORDER BY p) AS prev
          FROM (SELECT p, cs.calibrate('weighted', p) AS c FROM generate_series(0.0, 1.0, 0.01) p) a) b
 WHERE prev IS NOT NULL;

-- On the held-out rows, calibration lowers the Brier score of the weighted model
SELECT round(avg((p - label) ^ 2)::numeric, 4) < 1 AS sane,
       avg((c - label) ^ 2) <= avg((p - label) ^ 2) AS brier_after_le_before,
       avg(c) - avg(label) BETWEEN -0.05 AND 0.05 AS calibrated_mean_close,
       avg(p) - avg(label) > 0.05 AS weighted_raw_overestimates
  FROM (SELECT label, cs.predict('weighted', features) AS p, cs.predict_calibrated('weighted', features) AS c
          FROM rows WHERE g > 4000) h;

-- Platt, asked for by name: two numbers, a monotone map, lower held-out Brier
SELECT cs.train_model('platt', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"scale_pos_weight": 4, "calibration": "platt", "max_depth": 3, "num_round": 100, "horizon": "30 days"}') > 0 AS trained;
SELECT calibration ->> 'method' AS method, calibration ? 'a' AND calibration ? 'b' AS has_a_b,
       (calibration ->> 'a')::float8 > 0 AS increasing
  FROM cs.models WHERE name = 'platt';
SELECT avg((cs.calibrate('platt', p) - label) ^ 2) <= avg((p - label) ^ 2) AS brier_after_le_before
  FROM (SELECT label, cs.predict('platt', features) AS p FROM rows WHERE g > 4000) h;

-- calibration none stores no map: cs.calibrate is the identity
SELECT cs.train_model('raw', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"calibration": "none", "num_round": 20, "horizon": "30 days"}') > 0 AS trained;
SELECT calibration IS NULL AS no_map, metrics -> 'calibration' ->> 'method' AS method,
       cs.calibrate('raw', 0.35) AS identity
  FROM cs.models WHERE name = 'raw';

-- a corrupt map is an error, not a wrong risk
UPDATE cs.models SET calibration = '{"method": "isotonic", "x": [0.5, 0.2], "y": [0, 1]}' WHERE name = 'raw';
SELECT cs.calibrate('raw', 0.35);
UPDATE cs.models SET calibration = NULL WHERE name = 'raw';
-- a value that is not a probability is refused, not mapped to nonsense
SELECT cs.calibrate('platt', 1.5);
SELECT cs.calibrate('platt', -0.1);
SELECT cs.calibrate('platt', 'NaN');

-- Parameter search: every trial recorded, the chosen one the best by the validation metric
SELECT cs.train_model('searched', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"search": {"max_depth": [2, 4], "eta": [0.1, 0.3], "min_child_weight": [1, 5]},
                        "num_round": 100, "early_stopping_rounds": 10, "horizon": "30 days"}') > 0 AS trained;
SELECT jsonb_array_length(metrics -> 'search_trials') AS trials,
       metrics -> 'search' ->> 'metric' AS metric,
       (metrics -> 'search' ->> 'chosen_trial')::int = (
           SELECT (t ->> 'trial')::int FROM jsonb_array_elements(metrics -> 'search_trials') t
            ORDER BY (t ->> 'valid_metric')::float8, (t ->> 'trial')::int LIMIT 1) AS chosen_is_best,
       metrics -> 'search' -> 'params' = (metrics -> 'search_trials' -> ((metrics -> 'search' ->> 'chosen_trial')::int - 1) -> 'params')
           AS chosen_params_recorded,
       (metrics ->> 'best_iteration')::int = (metrics -> 'search_trials' -> ((metrics -> 'search' ->> 'chosen_trial')::int - 1) ->> 'best_iteration')::int
           AS model_is_chosen_trial,
       round((metrics ->> 'logloss')::numeric, 6) = round((metrics -> 'search_trials' -> ((metrics -> 'search' ->> 'chosen_trial')::int - 1) ->> 'valid_logloss')::numeric, 6)
           AS same_validation_logloss
  FROM cs.models WHERE name = 'searched';
SELECT t ->> 'trial' AS trial, t -> 'params' AS params, (t ->> 'best_iteration')::int >= 0 AS has_best_iteration,
       (t ->> 'valid_auc')::float8 BETWEEN 0.5 AND 1 AS auc_ok, (t ->> 'valid_logloss')::float8 > 0 AS logloss_ok
  FROM cs.models m, jsonb_array_elements(m.metrics -> 'search_trials') t
 WHERE m.name = 'searched' ORDER BY (t ->> 'trial')::int;
-- deterministic: the same search chooses the same trial with the same trees
SELECT cs.train_model('searched', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"search": {"max_depth": [2, 4], "eta": [0.1, 0.3], "min_child_weight": [1, 5]},
                        "num_round": 100, "early_stopping_rounds": 10, "horizon": "30 days"}') > 0 AS retrained;
SELECT count(DISTINCT model) AS distinct_models, count(DISTINCT metrics -> 'search') AS distinct_choices
  FROM cs.models WHERE name = 'searched';
-- bounded, and only known parameters
SELECT cs.train_model('too_many', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"search": {"max_depth": [2, 3, 4, 5, 6], "eta": [0.1, 0.2, 0.3], "min_child_weight": [1, 5]}}');
SELECT cs.train_model('bad_search', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"search": {"num_round": [10, 20]}}');
SELECT cs.train_model('bad_search', 'custom', 'SELECT features, label, as_of FROM rows WHERE g <= 4000',
                      '{"search": {"max_depth": []}}');

-- Global explanations: demo customers scored by the shipped churn model
SELECT cs.generate_demo_data(40, 120, 3, '2026-01-31') > 0 AS generated;
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT count(*) > 0 AS features_ranked, min(rank) AS first_rank, max(customers) AS customers,
       max(population) AS population
  FROM cs.global_explanations WHERE model = 'churn_default';
-- equals the mean of |cs.explain| contributions computed by hand
WITH byhand AS (
    SELECT e.feature, avg(abs(e.contribution)) AS mean_abs
      FROM cs.customer_features f
      JOIN cs._model_layout_positions('churn_default') pos ON pos.layout = coalesce(f.layout, 0)
     CROSS JOIN LATERAL cs.explain('churn_default', cs._pick_features(f.features, pos.positions), 1000) e
     GROUP BY e.feature)
SELECT count(*) AS features, bool_and(abs(g.mean_abs_shap - b.mean_abs) < 1e-9) AS equal_by_hand
  FROM cs.global_explanations g JOIN byhand b ON b.feature = g.feature
 WHERE g.model = 'churn_default';
-- ranks follow mean |SHAP|
SELECT bool_and(prev >= mean_abs_shap) AS ranked
  FROM (SELECT mean_abs_shap, lag(mean_abs_shap) OVER (ORDER BY rank) AS prev
          FROM cs.global_explanations WHERE model = 'churn_default') r
 WHERE prev IS NOT NULL;
-- a deterministic sample when the population is larger than the setting
SET cscopilot.global_explain_customers = 10;
SELECT cs.compute_global_explanations('churn_default', 1) AS explained;
WITH sample AS (
    SELECT f.customer_id, cs._pick_features(f.features, pos.positions) AS x
      FROM cs.customer_features f
      JOIN cs._model_layout_positions('churn_default') pos ON pos.layout = coalesce(f.layout, 0)
     ORDER BY md5(f.customer_id::text) LIMIT 10),
byhand AS (
    SELECT e.feature, avg(abs(e.contribution)) AS mean_abs
      FROM sample s CROSS JOIN LATERAL cs.explain('churn_default', s.x, 1000) e GROUP BY e.feature)
SELECT bool_and(abs(g.mean_abs_shap - b.mean_abs) < 1e-9) AS sample_equal_by_hand, min(g.customers) AS customers
  FROM cs.global_explanations g JOIN byhand b ON b.feature = g.feature
 WHERE g.model = 'churn_default';
RESET cscopilot.global_explain_customers;
SELECT cs.compute_global_explanations('searched', 1);

-- the model card shows reliability before and after calibration
SELECT c -> 'reliability' ->> 'method' AS method,
       jsonb_array_length(c -> 'reliability' -> 'deciles') AS deciles,
       (SELECT bool_and((d ->> 'n')::int > 0 AND d ? 'mean_raw' AND d ? 'mean_calibrated' AND d ? 'observed_rate')
          FROM jsonb_array_elements(c -> 'reliability' -> 'deciles') d) AS decile_columns
  FROM cs.model_card('weighted', 1) c;
