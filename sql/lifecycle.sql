-- Model lifecycle: outcome metrics on a hand-made set with known values,
-- calibration, drift against a reference, shadow and A/B scoring of a
-- challenger, the promotion policy, retraining recorded in cs.job_runs, and
-- the model card.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET TIME ZONE 'UTC';
SET extra_float_digits = 0;
\set VERBOSITY terse

-- the shipped model is the champion; no features existed at CREATE EXTENSION,
-- so it has no drift reference
SELECT name, version, status, reference IS NULL AS no_reference FROM cs.models;
SELECT * FROM cs.feature_drift('churn_default', 1);
SELECT cs.drift_status('churn_default', 1);

------------------------------------------------------------------------------
-- Outcome metrics
------------------------------------------------------------------------------
-- Ten judged predictions of churn_default:v1, made 200 days ago (horizon 90):
--   customer  1    2    3    4    5    6    7    8    9    10
--   score    0.90 0.80 0.80 0.70 0.60 0.50 0.30 0.30 0.20 0.10
--   churned   1    1    0    0    1    0    0    1    0    0
-- (customer 9 churned 120 days after the prediction: outside the horizon, 0)
-- By hand:
--   AUC: mid-ranks 0.10:1 0.20:2 0.30:3.5 0.50:5 0.60:6 0.70:7 0.80:8.5 0.90:10;
--        positives' rank sum 10 + 8.5 + 6 + 3.5 = 28; (28 - 4*5/2) / (4*6) = 0.75
--        (pairs: 6 + 5.5 + 4 + 2.5 = 18 of 24 won, ties half)
--   Brier: (.01+.04+.64+.49+.16+.25+.09+.49+.04+.01) / 10 = 0.222
--   log loss: -(2 ln .9 + 2 ln .8 + ln .2 + 2 ln .3 + ln .6 + ln .5 + ln .7) / 10 = 0.6235039
--   threshold 0.6 (rule churn_risk_high): flagged 0.9 0.8 0.8 0.7 0.6, of which
--        1, 2 and 5 churned: precision 3/5 = 0.6, recall 3/4 = 0.75
--   top decile: the top ceil(10/10) = 1 score (0.9) churned: rate 1 / 0.4 = lift 2.5
-- Left out: a prediction 10 days old (not judged yet) and one for customer 11,
-- which had churned before it was made.
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm, churned_at)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(i::text, 2, '0'))::uuid, 'lc-' || i, 'Customer ' || i, 'smb', 100 * i, 10, 'csm_01',
       CASE WHEN i IN (1, 2, 5, 8) THEN (now() - interval '170 days')::date
            WHEN i = 9 THEN (now() - interval '80 days')::date
            WHEN i = 11 THEN (now() - interval '300 days')::date END
  FROM generate_series(1, 11) i;
-- active customers without judged predictions, for the A/B split
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm)
SELECT ('00000000-0000-0000-0000-0000000000' || i)::uuid, 'lc-' || i, 'Customer ' || i, 'mid_market', 1000, 20, 'csm_02'
  FROM generate_series(12, 41) i;
CREATE FUNCTION pg_temp.cid(i int) RETURNS uuid LANGUAGE sql
RETURN ('00000000-0000-0000-0000-0000000000' || lpad(i::text, 2, '0'))::uuid;
CREATE TEMP TABLE hand (i int, p numeric, q numeric);
INSERT INTO hand VALUES (1, 0.90, 0.90), (2, 0.80, 0.80), (3, 0.80, 0.40), (4, 0.70, 0.30), (5, 0.60, 0.70),
                        (6, 0.50, 0.20), (7, 0.30, 0.10), (8, 0.30, 0.60), (9, 0.20, 0.50), (10, 0.10, 0.05);
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, model_version, created_at)
SELECT pg_temp.cid(i), 'churn', p, 'churn_default:v1', date_trunc('day', now()) - interval '200 days' FROM hand
UNION ALL SELECT pg_temp.cid(1), 'churn', 0.95, 'churn_default:v1', now() - interval '10 days'
UNION ALL SELECT pg_temp.cid(11), 'churn', 0.95, 'churn_default:v1', date_trunc('day', now()) - interval '200 days';

SELECT name, version, status, horizon, threshold, n, positives, round(auc::numeric, 6) AS auc,
       round(log_loss::numeric, 6) AS log_loss, round(brier::numeric, 6) AS brier,
       round("precision"::numeric, 6) AS precision, round(recall::numeric, 6) AS recall,
       round(lift_top_decile::numeric, 6) AS lift_top_decile
  FROM cs.model_performance;
-- one decile per prediction here; ties ordered by customer
SELECT decile, n, round(mean_predicted::numeric, 2) AS mean_predicted, observed_rate, min_predicted, max_predicted
  FROM cs.model_calibration('churn_default', 1);

-- the metrics function alone: one class has no AUC, ties across classes give 0.5
SELECT n, positives, auc, round(brier::numeric, 4) AS brier, precision, recall, lift_top_decile
  FROM cs.classification_metrics(ARRAY[0.2, 0.4], ARRAY[0, 0], 0.5);
SELECT n, positives, auc, round(log_loss::numeric, 6) AS log_loss, precision, recall, lift_top_decile
  FROM cs.classification_metrics(ARRAY[0.5, 0.5, 0.5, 0.5], ARRAY[1, 0, 1, 0], 0.5);
-- a probability of 0 for a churned customer is clamped: -ln(1e-15) / 1 = 34.538776
SELECT round(log_loss::numeric, 6) AS log_loss FROM cs.classification_metrics(ARRAY[0.0], ARRAY[1], 0.5);

-- the alert threshold follows the rule
UPDATE cs.alert_rules SET condition = '{"score": "churn_risk", "op": ">=", "value": 0.8}' WHERE name = 'churn_risk_high';
SELECT threshold, round("precision"::numeric, 6) AS precision, round(recall::numeric, 6) AS recall FROM cs.model_performance;
UPDATE cs.alert_rules SET condition = '{"score": "churn_risk", "op": ">=", "value": 0.6}' WHERE name = 'churn_risk_high';

------------------------------------------------------------------------------
-- Champion and challenger
------------------------------------------------------------------------------
-- a challenger trained in the database: its reference comes from its training rows
CREATE TEMP TABLE train_rows AS
SELECT g,
       ARRAY(SELECT CASE WHEN i = 2 THEN (g * 1299709) % 40
                         WHEN i = 21 AND g % 4 = 0 THEN 'NaN'
                         ELSE ((g * i * 31) % 97) / 10.0 END::float4
               FROM generate_series(1, (SELECT count(*)::int FROM cs.feature_catalog)) i) AS features
  FROM generate_series(1::bigint, 400) g;
ALTER TABLE train_rows ADD COLUMN label int;
UPDATE train_rows SET label = (features[2] < 12)::int;
SELECT cs.train_model('churn_alt', 'churn', 'SELECT features, label FROM train_rows',
                      '{"num_round": 20, "max_depth": 2, "seed": 1}') > 0 AS trained;
SELECT reference ->> 'source' AS source, reference -> 'rows' AS rows, jsonb_array_length(reference -> 'features') AS features,
       reference -> 'features' -> 1 -> 'feature' AS second, reference -> 'features' -> 1 -> 'edges' AS edges,
       reference -> 'features' -> 1 -> 'shares' AS shares,
       reference -> 'features' -> 20 ->> 'missing_rate' AS missing_rate_21
  FROM cs.models WHERE name = 'churn_alt';
SELECT cs.set_challenger('churn_alt', 1);
SELECT cs.set_challenger('churn_default', 1);
SELECT name, version, status FROM cs.models ORDER BY name, version;

-- shadow: the champion is served, the challenger only stored aside
SELECT cs.refresh_all() AS refreshed;
SELECT model_version, count(*) FROM cs.risk_assessments WHERE created_at > now() - interval '1 day' GROUP BY 1;
SELECT model_version, count(*) FROM cs.model_shadow_scores GROUP BY 1;
-- again from stored vectors like the ones the challenger learnt from, so the
-- two models disagree
TRUNCATE cs.model_shadow_scores;
DELETE FROM cs.risk_assessments WHERE created_at > now() - interval '1 day';
UPDATE cs.customer_features f SET features = t.features
  FROM train_rows t WHERE t.g = ('x' || right(f.customer_id::text, 2))::bit(8)::int;
SELECT cs._score_risk(NULL) AS scored;
-- the shadow scores differ from the served ones, and none reaches the views
SELECT count(*) AS pairs, count(*) FILTER (WHERE s.risk_score <> a.risk_score) AS differ,
       bool_and(s.risk_score = round(cs.predict_calibrated('churn_alt:v1', f.features)::numeric, 2)) AS shadow_is_challenger,
       bool_and(a.risk_score = round(cs.predict_calibrated('churn_default', f.features)::numeric, 2)) AS served_is_champion
  FROM cs.model_shadow_scores s
  JOIN cs.risk_assessments a ON a.customer_id = s.customer_id AND a.created_at = s.created_at AND a.risk_type = 'churn'
  JOIN cs.customer_features f ON f.customer_id = s.customer_id;
SELECT count(*) AS overview_rows, count(*) FILTER (WHERE o.churn_risk IS DISTINCT FROM a.risk_score) AS not_from_champion
  FROM cs.account_health_overview o
  JOIN LATERAL (SELECT a.risk_score FROM cs.risk_assessments a WHERE a.customer_id = o.customer_id AND a.risk_type = 'churn'
                 ORDER BY a.created_at DESC LIMIT 1) a ON true;
SELECT count(*) AS challenger_rows_in_assessments FROM cs.risk_assessments WHERE model_version LIKE 'churn_alt%';

-- A/B: half of the customers by a hash of their id are served the challenger,
-- and the champion's score for them goes aside
TRUNCATE cs.model_shadow_scores;
DELETE FROM cs.risk_assessments WHERE created_at > now() - interval '1 day';
SET cscopilot.challenger_share = 0.5;
SELECT cs._score_risk(NULL) AS scored;
SELECT count(*) FILTER (WHERE cs.in_challenger_arm(c.id, 0.5)) AS arm, count(*) AS customers FROM cs.customers c;
SELECT a.model_version, cs.in_challenger_arm(a.customer_id, 0.5) AS in_arm, count(*)
  FROM cs.risk_assessments a WHERE a.created_at > now() - interval '1 day'
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT s.model_version, cs.in_challenger_arm(s.customer_id, 0.5) AS in_arm, count(*)
  FROM cs.model_shadow_scores s GROUP BY 1, 2 ORDER BY 1, 2;
SELECT cs.in_challenger_arm(pg_temp.cid(3), 0.5) = cs.in_challenger_arm(pg_temp.cid(3), 0.5) AS stable,
       cs.in_challenger_arm(pg_temp.cid(3), 0) AS none_at_zero, cs.in_challenger_arm(pg_temp.cid(3), 1) AS all_at_one;
RESET cscopilot.challenger_share;
TRUNCATE cs.model_shadow_scores;

-- comparison on the same outcomes: the challenger's shadow scores for the ten
-- judged predictions rank every churned customer first (AUC 1):
--   churned 0.90 0.80 0.70 0.60 against 0.50 0.40 0.30 0.20 0.10 0.05
-- Brier: (.01+.04+.09+.16 + .16+.09+.04+.01+.25+.0025) / 10 = 0.08525
-- precision at 0.6: 4 of 4 flagged churned; recall 4/4; lift 1 / 0.4 = 2.5
INSERT INTO cs.model_shadow_scores (customer_id, risk_type, model_version, risk_score, created_at)
SELECT pg_temp.cid(i), 'churn', 'churn_alt:v1', q, date_trunc('day', now()) - interval '200 days' FROM hand;
SELECT role, name, version, n, positives, round(auc::numeric, 6) AS auc, round(brier::numeric, 6) AS brier,
       round("precision"::numeric, 6) AS precision, round(recall::numeric, 6) AS recall,
       round(lift_top_decile::numeric, 6) AS lift_top_decile
  FROM cs.compare_models('churn');
SELECT name, version, status, n, round(auc::numeric, 6) AS auc FROM cs.model_performance ORDER BY name;

-- promotion policy: too few outcomes, then not enough margin, then promoted
SET cscopilot.promotion_min_outcomes = 20;
SELECT p ->> 'decision' AS decision, p ->> 'reason' AS reason FROM cs.apply_promotion_policy('churn') p;
SELECT name, version, status FROM cs.models ORDER BY name, version;
SET cscopilot.promotion_min_outcomes = 10;
SET cscopilot.promotion_auc_margin = 0.3;
SELECT p ->> 'decision' AS decision, p -> 'champion_auc' AS champion_auc, p -> 'challenger_auc' AS challenger_auc
  FROM cs.apply_promotion_policy('churn') p;
SELECT name, version, status FROM cs.models ORDER BY name, version;
SELECT cs.set_challenger('churn_alt', 1);
SET cscopilot.promotion_auc_margin = 0.2;
SELECT p ->> 'decision' AS decision, p -> 'outcomes' AS outcomes FROM cs.apply_promotion_policy('churn') p;
SELECT name, version, status FROM cs.models ORDER BY name, version;
SELECT p ->> 'decision' AS decision FROM cs.apply_promotion_policy('churn') p;
SELECT metrics -> 'promotion' ->> 'decision' AS recorded FROM cs.models WHERE name = 'churn_alt';
RESET cscopilot.promotion_min_outcomes;
RESET cscopilot.promotion_auc_margin;
SELECT * FROM cs.compare_models('churn');
-- name:vN addresses one version
SELECT cs.predict('churn_default:v1', ARRAY(SELECT 'NaN'::float4 FROM generate_series(1, (SELECT count(*)::int FROM cs.feature_catalog))))
     = cs.predict('churn_default', ARRAY(SELECT 'NaN'::float4 FROM generate_series(1, (SELECT count(*)::int FROM cs.feature_catalog)))) AS same_version;

------------------------------------------------------------------------------
-- Drift
------------------------------------------------------------------------------
-- Reference for churn_default from hand rows: feature 1 and 2 take 1..10,
-- feature 3 is always 5, the rest missing.  Edges of 1..10: positions
-- floor(10k/10) = k, values 2..10; every bin holds 0.1.
CREATE TEMP TABLE ref_rows AS
SELECT ARRAY(SELECT CASE WHEN i IN (1, 2) THEN g::float4 WHEN i = 3 THEN 5 ELSE 'NaN' END::float4
               FROM generate_series(1, (SELECT count(*)::int FROM cs.feature_catalog)) i) AS features
  FROM generate_series(1, 10) g;
SELECT r -> 'rows' AS rows, r -> 'features' -> 0 -> 'edges' AS edges, r -> 'features' -> 0 -> 'shares' AS shares,
       r -> 'features' -> 2 -> 'edges' AS const_edges, r -> 'features' -> 2 -> 'shares' AS const_shares,
       r -> 'features' -> 3 AS missing
  FROM cs.set_model_reference('churn_default', 1, 'SELECT features FROM ref_rows') r;
-- Current vectors: feature 1 unchanged (PSI 0, ok); feature 2 shifted to 6..15:
-- bins 0-4 empty (floored 0.0001), 5-8 hold 0.1, bin 9 holds 0.6:
--   PSI = 5 (0.0001 - 0.1) ln(0.0001 / 0.1) + (0.6 - 0.1) ln 6 = 3.450424 + 0.895880 = 4.346303 (act);
-- feature 3 is missing for 2 of 10 now: missing rate +0.2 (watch), PSI 0.
DELETE FROM cs.customer_features;
INSERT INTO cs.customer_features (customer_id, as_of, features)
SELECT pg_temp.cid(g), now(),
       ARRAY(SELECT CASE WHEN i = 1 THEN g::float4 WHEN i = 2 THEN g + 5 WHEN i = 3 AND g > 2 THEN 5 ELSE 'NaN' END::float4
               FROM generate_series(1, (SELECT count(*)::int FROM cs.feature_catalog)) i)
  FROM generate_series(1, 10) g;
SELECT feature, round(psi::numeric, 6) AS psi, reference_missing_rate, current_missing_rate,
       round(missing_rate_change::numeric, 6) AS missing_rate_change, status
  FROM cs.feature_drift('churn_default', 1) LIMIT 5;
SELECT status, count(*) FROM cs.feature_drift('churn_default', 1) GROUP BY status ORDER BY status;
SELECT cs.drift_status('churn_default', 1);

-- drift alerts: type model, no customer, assigned to the admin role
SET cscopilot.admin_role = 'cs_admin';
UPDATE cs.models SET status = 'challenger' WHERE name = 'churn_default';
SELECT * FROM cs.check_model_drift() WHERE model = 'churn_default:v1';
SELECT alert_type, customer_id, severity, title, assigned_to, status, fire_count, risk_factors -> 'features' -> 0 ->> 'feature' AS top
  FROM cs.all_alerts WHERE risk_factors ->> 'model' = 'churn_default:v1' AND risk_factors ? 'drift';
SELECT * FROM cs.check_model_drift() WHERE model = 'churn_default:v1';
SELECT fire_count FROM cs.system_alerts WHERE risk_factors ->> 'model' = 'churn_default:v1' AND risk_factors ? 'drift';
-- Model alerts take the path of every alert (src/sql/60_alerts.sql): a
-- snooze stays through re-firing, and an alert less severe than its drift is
-- now escalates, as a rule alert does.
SELECT status FROM cs.snooze_alert((SELECT id FROM cs.system_alerts WHERE risk_factors ->> 'model' = 'churn_default:v1' AND risk_factors ? 'drift'),
                                   now() + interval '7 days');
UPDATE cs.system_alerts SET severity = 'medium' WHERE risk_factors ->> 'model' = 'churn_default:v1' AND risk_factors ? 'drift';
SELECT * FROM cs.check_model_drift() WHERE model = 'churn_default:v1';
SELECT severity, status, fire_count, escalated_at IS NOT NULL AS escalated FROM cs.system_alerts WHERE risk_factors ->> 'model' = 'churn_default:v1' AND risk_factors ? 'drift';
SELECT e.event, e.from_status, e.to_status, e.details FROM cs.system_alert_events e JOIN cs.system_alerts a ON a.id = e.alert_id
 WHERE a.risk_factors ->> 'model' = 'churn_default:v1' AND risk_factors ? 'drift' AND e.event = 'escalated';
SELECT count(*) AS model_alerts_in_risk_view FROM cs.risk_alerts;
-- the data is back to the reference: the alert resolves
UPDATE cs.customer_features SET features = (SELECT r.features FROM ref_rows r WHERE r.features[1] = customer_features.features[1]);
SELECT * FROM cs.check_model_drift() WHERE model = 'churn_default:v1';
SELECT status, (SELECT array_agg(e.event ORDER BY e.id) FROM cs.system_alert_events e WHERE e.alert_id = a.id) AS events
  FROM cs.system_alerts a WHERE risk_factors ->> 'model' = 'churn_default:v1' AND risk_factors ? 'drift';
-- resolved from the status it had (snoozed), the snooze over
SELECT e.from_status, e.to_status, a.snoozed_until IS NULL AS no_snooze, a.resolved_at IS NOT NULL AS resolved_at_set
  FROM cs.system_alerts a JOIN cs.system_alert_events e ON e.alert_id = a.id AND e.event = 'auto_resolved'
 WHERE a.risk_factors ->> 'model' = 'churn_default:v1' AND risk_factors ? 'drift';
CREATE OR REPLACE FUNCTION pg_temp.event_log_faults(kind text) RETURNS TABLE (alerts bigint, status_not_last_event bigint, broken_chain bigint)
LANGUAGE sql AS $$
    -- the event log is true when the alert's status is the to_status of its
    -- last event, and every event after the creation starts from the status
    -- the one before it left
    SELECT count(*),
           count(*) FILTER (WHERE a.status IS DISTINCT FROM (SELECT e.to_status FROM cs.system_alert_events e
                                                              WHERE e.alert_id = a.id ORDER BY e.id DESC LIMIT 1)),
           coalesce(sum((SELECT count(*) FROM (SELECT e.event, e.from_status, lag(e.to_status) OVER (ORDER BY e.id) AS prev
                                                  FROM cs.system_alert_events e WHERE e.alert_id = a.id) x
                          WHERE x.event <> 'created' AND x.from_status IS DISTINCT FROM x.prev)), 0)
      FROM cs.system_alerts a WHERE a.alert_type = kind;
$$;
SELECT * FROM pg_temp.event_log_faults('model');
RESET cscopilot.admin_role;
UPDATE cs.models SET status = 'retired' WHERE name = 'churn_default';

-- errors
SELECT cs.set_model_reference('churn_default', 1, 'SELECT 1 AS features');
SELECT cs.set_model_reference('churn_default', 1, 'SELECT features FROM ref_rows WHERE false');
SELECT cs.set_model_reference('churn_default', 1, 'SELECT ARRAY[1, 2]::float4[] AS features');
SELECT cs.feature_drift('nope', 1);
SELECT cs.set_challenger('churn_alt', 1);
SELECT * FROM cs.compare_models('payment');

------------------------------------------------------------------------------
-- Scheduled retraining (the worker's job, run here by hand)
------------------------------------------------------------------------------
-- off by default (cscopilot.retrain_interval = 0; it is set in the server configuration)
SHOW cscopilot.retrain_interval;
SELECT cs._job_due('retrain', 0) AS retrain_due;
-- too little history: the run is skipped, its steps recorded
INSERT INTO cs.job_runs (job) VALUES ('retrain') RETURNING id AS run \gset
SELECT cs._run_job(:run);
SELECT job, status, error, jsonb_path_query_array(details, '$.steps[*].step') AS steps,
       details -> 'steps' -> -1 ->> 'skipped' AS why
  FROM cs.job_runs WHERE id = :run;
-- with a year of demo history: trained, registered as challenger, not deployed
SELECT cs.generate_demo_data(300, 200, 7, current_date) > 0 AS generated;
SET cscopilot.outcome_horizon = 60;
SET cscopilot.retrain_observations = 3;
INSERT INTO cs.job_runs (job) VALUES ('retrain') RETURNING id AS run \gset
SELECT cs._run_job(:run);
SELECT job, status, error, jsonb_path_query_array(details, '$.steps[*].step') AS steps,
       details -> 'steps' -> 1 -> 'rows' > '100' AS rows_ok,
       jsonb_array_length(details -> 'steps' -> 1 -> 'observation_dates') AS dates,
       details -> 'steps' -> 2 ->> 'model' AS model, details -> 'steps' -> 3 ->> 'status' AS registered_as
  FROM cs.job_runs WHERE id = :run;
SELECT name, version, status, reference ->> 'source' AS reference, metrics -> 'training_window' ->> 'horizon' AS horizon
  FROM cs.models ORDER BY name, version;
-- the next run waits for the challenger's outcomes
INSERT INTO cs.job_runs (job) VALUES ('retrain') RETURNING id AS run \gset
SELECT cs._run_job(:run);
SELECT status, details -> 'steps' -> 0 ->> 'decision' AS policy, details -> 'steps' -> 1 ->> 'skipped' AS why
  FROM cs.job_runs WHERE id = :run;
-- the daily model checks
INSERT INTO cs.job_runs (job) VALUES ('model_checks') RETURNING id AS run \gset
SELECT cs._run_job(:run);
SELECT status, jsonb_array_length(details -> 'drift') AS models_checked, details -> 'promotion' -> 0 ->> 'decision' AS policy
  FROM cs.job_runs WHERE id = :run;

------------------------------------------------------------------------------
-- Model card
------------------------------------------------------------------------------
SELECT c ->> 'model' AS model, c ->> 'status' AS status, jsonb_array_length(c -> 'features') AS features,
       c -> 'parameters' AS parameters, c -> 'validation' ? 'auc' AS has_validation,
       c -> 'training' -> 'rows_train' IS NOT NULL AS has_rows, c -> 'drift' ->> 'status' AS drift,
       c -> 'promotion' ->> 'decision' AS promotion
  FROM cs.model_card('churn_alt', 1) c;
RESET cscopilot.outcome_horizon;
SELECT c -> 'outcomes' -> 'n' AS n, c -> 'outcomes' -> 'auc' AS auc, jsonb_array_length(c -> 'calibration') AS deciles,
       c -> 'drift' -> 'reference' ->> 'source' AS reference
  FROM cs.model_card('churn_default', 1) c;
SELECT cs.model_card('nope', 1);
