-- Training on the user's own history: the forward (time-ordered) split with a
-- gap of one horizon, the leakage audit and cs.deploy_model's refusal,
-- monotone constraints, cs.train_from_history on demo data, applicability of
-- a model (no risk alerts from an inapplicable champion) and the readiness
-- report on a database with only usage events.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET TIME ZONE 'UTC';
SET extra_float_digits = 0;
\set VERBOSITY terse

------------------------------------------------------------------------------
-- Forward split
------------------------------------------------------------------------------
-- 12 monthly-ish dates (30 days apart), 50 rows each; the label follows f1
-- with some noise
CREATE TABLE fw AS
SELECT g, (date '2025-01-01' + (g % 12) * 30) AS as_of,
       ARRAY[((g * 7919) % 100), ((g * 104729) % 50)]::float4[] AS features,
       (((g * 7919) % 100 > 50) <> (g % 5 = 0))::int AS label
  FROM generate_series(1, 600) g;
SELECT cs.train_model('fw', 'custom', 'SELECT features, label, as_of FROM fw',
                      '{"num_round": 20, "max_depth": 2, "horizon": "60 days"}') AS fw_id \gset
-- validation: the latest dates (3 of 12 make at least 20% of the rows);
-- training: dates whose 60-day label window closes by the first validation date
SELECT m.metrics ->> 'split' AS split, m.metrics -> 'split_window' ->> 'gap' AS gap,
       (m.metrics -> 'split_window' ->> 'train_from')::timestamptz::date AS train_from,
       (m.metrics -> 'split_window' ->> 'train_to')::timestamptz::date AS train_to,
       (m.metrics -> 'split_window' ->> 'valid_from')::timestamptz::date AS valid_from,
       (m.metrics -> 'split_window' ->> 'valid_to')::timestamptz::date AS valid_to,
       m.metrics -> 'rows_train' AS rows_train, m.metrics -> 'rows_valid' AS rows_valid,
       m.metrics -> 'split_window' -> 'rows_dropped' AS rows_dropped
  FROM cs.models m WHERE m.id = :fw_id;
-- the stored figures agree with the table: every validation date follows
-- every training label's horizon, and the rows in the gap are the dropped ones
WITH w AS (SELECT (m.metrics -> 'split_window' ->> 'valid_from')::timestamptz AS vf,
                  (m.metrics -> 'split_window' ->> 'train_to')::timestamptz AS tt,
                  (m.metrics ->> 'rows_train')::int AS nt, (m.metrics ->> 'rows_valid')::int AS nv,
                  (m.metrics -> 'split_window' ->> 'rows_dropped')::int AS nd
             FROM cs.models m WHERE m.id = :fw_id)
SELECT w.tt + interval '60 days' <= w.vf AS gap_respected,
       (SELECT min(as_of) FROM fw WHERE as_of >= w.vf) = w.vf::date AS valid_from_is_a_date,
       (SELECT count(*) FROM fw WHERE as_of >= w.vf) = w.nv AS valid_rows_match,
       (SELECT count(*) FROM fw WHERE as_of + 60 <= w.vf) = w.nt AS train_rows_match,
       (SELECT count(*) FROM fw WHERE as_of < w.vf AND as_of + 60 > w.vf) = w.nd AS dropped_rows_match,
       w.nv >= 0.2 * 600 AS valid_share_reached
  FROM w;
-- without as_of: the hashed split, as before
SELECT cs.train_model('fw_hashed', 'custom', 'SELECT features, label FROM fw', '{"num_round": 5}') > 0 AS trained;
SELECT metrics ->> 'split' AS split, metrics ? 'split_window' AS has_window FROM cs.models WHERE name = 'fw_hashed';
-- a split that leaves no training rows, a bad as_of, a bad horizon
SELECT cs.train_model('x', 'custom', 'SELECT features, label, as_of FROM fw', '{"horizon": "400 days"}');
SELECT cs.train_model('x', 'custom', 'SELECT features, label, date ''2025-01-01'' AS as_of FROM fw', '{}');
SELECT cs.train_model('x', 'custom', 'SELECT features, label, g AS as_of FROM fw', '{}');
SELECT cs.train_model('x', 'custom', 'SELECT features, label, as_of FROM fw', '{"horizon": "-3 days"}');
SELECT cs.train_model('x', 'custom', 'SELECT features, label, as_of FROM fw', '{"horizon": 60}');

------------------------------------------------------------------------------
-- Leakage audit and cs.deploy_model
------------------------------------------------------------------------------
-- f3 is a copy of the label; f4 is missing exactly for the rows labelled 0
-- (like a tenure known only for churners); f1 and f2 are honest
CREATE TABLE leak AS
SELECT g, ARRAY[((g * 7919) % 100), ((g * 104729) % 50), (((g * 7919) % 100 > 50) <> (g % 5 = 0))::int,
                CASE WHEN (((g * 7919) % 100 > 50) <> (g % 5 = 0)) THEN (g % 30)::float4 ELSE 'NaN'::float4 END]::float4[] AS features,
       (((g * 7919) % 100 > 50) <> (g % 5 = 0))::int AS label
  FROM generate_series(1, 600) g;
SELECT cs.train_model('leaky', 'custom', 'SELECT features, label FROM leak',
                      '{"num_round": 5, "feature_names": ["usage", "noise", "label_copy", "known_for_churners"]}') > 0 AS trained;
SELECT l ->> 'feature' AS feature, round((l ->> 'auc_alone')::numeric, 3) AS auc_alone, l ->> 'point_in_time' AS point_in_time,
       l -> 'suspect' AS suspect
  FROM cs.models m, jsonb_array_elements(m.metrics -> 'leakage') l WHERE m.name = 'leaky';
SELECT metrics -> 'leakage_suspects' AS suspects, metrics -> 'leakage_auc' AS threshold FROM cs.models WHERE name = 'leaky';
-- refused without force (SQLSTATE 55000), deployed and recorded with it
\set VERBOSITY sqlstate
SELECT cs.deploy_model('leaky', 1);
\set VERBOSITY terse
SELECT cs.deploy_model('leaky', 1);
SELECT status FROM cs.models WHERE name = 'leaky';
SELECT cs.deploy_model('leaky', 1, force => true);
SELECT status, jsonb_array_length(metrics -> 'forced_deployments') AS forced,
       metrics -> 'forced_deployments' -> 0 -> 'suspects' AS suspects
  FROM cs.models WHERE name = 'leaky';
-- a model without a suspect deploys with the two-argument call
SELECT cs.deploy_model('fw', 1);
SELECT name, status FROM cs.models WHERE kind = 'custom' AND status = 'champion' ORDER BY name;
-- the catalog's features say whether they were known at as_of
SELECT feature, point_in_time FROM cs.feature_sources() WHERE NOT point_in_time ORDER BY feature;
SELECT count(*) AS catalog_features_without_source
  FROM cs.feature_catalog fc WHERE NOT EXISTS (SELECT 1 FROM cs.feature_sources() s WHERE s.feature = fc.name);

------------------------------------------------------------------------------
-- Monotone constraints
------------------------------------------------------------------------------
-- the label is likelier in the middle of x: unconstrained, the prediction
-- rises then falls; constrained to +1 it never decreases along x
CREATE TABLE mono AS
SELECT g, ARRAY[g % 100, (g * 31) % 17]::float4[] AS features,
       ((g % 100 BETWEEN 30 AND 60) <> (g % 9 = 0))::int AS label
  FROM generate_series(1, 2000) g;
SELECT cs.train_model('mono_free', 'custom', 'SELECT features, label FROM mono',
                      '{"num_round": 30, "max_depth": 3, "feature_names": ["x", "z"]}') > 0 AS trained;
SELECT cs.train_model('mono', 'custom', 'SELECT features, label FROM mono',
                      '{"num_round": 30, "max_depth": 3, "feature_names": ["x", "z"], "monotone_constraints": {"x": 1}}') > 0 AS trained;
SELECT m.metrics -> 'params' -> 'monotone_constraints' AS stored FROM cs.models m WHERE m.name = 'mono';
WITH grid AS (
    SELECT x, z, cs.predict('mono_free', ARRAY[x, z]::float4[]) AS free, cs.predict('mono', ARRAY[x, z]::float4[]) AS constrained
      FROM generate_series(-10, 110) x, generate_series(0, 16, 4) z
), steps AS (
    SELECT free - lag(free) OVER w AS dfree, constrained - lag(constrained) OVER w AS dcon
      FROM grid WINDOW w AS (PARTITION BY z ORDER BY x)
)
SELECT count(*) FILTER (WHERE dfree < 0) > 0 AS free_decreases,
       count(*) FILTER (WHERE dcon < 0) AS constrained_decreases
  FROM steps;
\set VERBOSITY sqlstate
SELECT cs.train_model('x', 'custom', 'SELECT features, label FROM mono', '{"feature_names": ["x", "z"], "monotone_constraints": {"y": 1}}');
\set VERBOSITY terse
SELECT cs.train_model('x', 'custom', 'SELECT features, label FROM mono', '{"feature_names": ["x", "z"], "monotone_constraints": {"y": 1}}');
SELECT cs.train_model('x', 'custom', 'SELECT features, label FROM mono', '{"monotone_constraints": {"f1": 2}}');
SELECT cs.train_model('x', 'custom', 'SELECT features, label FROM mono', '{"monotone_constraints": [1, 0]}');

------------------------------------------------------------------------------
-- One call on the demo history
------------------------------------------------------------------------------
SELECT cs.generate_demo_data(150, 300, 5) > 0 AS generated;
SELECT cs.train_from_history('history', observations => 20) AS hist_id \gset
SELECT m.kind, m.status, m.metrics ->> 'split' AS split, m.metrics -> 'split_window' ->> 'gap' AS gap,
       (m.metrics -> 'split_window' ->> 'train_to')::timestamptz + interval '90 days'
           <= (m.metrics -> 'split_window' ->> 'valid_from')::timestamptz AS gap_respected,
       jsonb_array_length(m.metrics -> 'training_window' -> 'observation_dates') AS dates,
       m.metrics -> 'training_window' ->> 'step' AS step,
       (m.metrics -> 'training_window' -> 'observation_dates' ->> -1)::date
           = (greatest((SELECT max(occurred_at) FROM cs.usage_events), (SELECT max(opened_at) FROM cs.support_tickets),
                       (SELECT max(occurred_at) FROM cs.engagements), (SELECT max(responded_at) FROM cs.nps_responses),
                       (SELECT max(issued_at) FROM cs.invoices), (SELECT max(churned_at) FROM cs.customers))
              - interval '90 days')::date AS last_date_a_horizon_back,
       (m.metrics ->> 'rows_train')::int + (m.metrics ->> 'rows_valid')::int + (m.metrics -> 'split_window' ->> 'rows_dropped')::int
           = (m.metrics -> 'training_window' ->> 'rows')::int AS rows_add_up,
       (m.metrics ->> 'auc')::float8 > 0.5 AS auc_above_chance,
       jsonb_array_length(m.metrics -> 'leakage') AS audited
  FROM cs.models m WHERE m.id = :hist_id;
SELECT (cs.model_card('history', 1) -> 'validation') ->> 'split' AS card_split,
       (cs.model_card('history', 1) -> 'leakage') ? 'suspects' AS card_leakage;
-- what cannot be trained
SELECT cs.train_from_history('x', 'upsell');
SELECT cs.train_from_history('x', observations => 1);
SELECT cs.train_from_history('x', horizon => '-1 day');
SELECT cs.train_from_history('x', horizon => '300 days');
-- retraining uses the forward split too
SET cscopilot.retrain_observations = 6;
SET cscopilot.outcome_horizon = 60;
SELECT r ->> 'status' AS status, r -> 'steps' -> 2 ->> 'model' AS model
  FROM cs.retrain('churn') r;
SELECT metrics ->> 'split' AS split, metrics -> 'split_window' ->> 'gap' AS gap
  FROM cs.models WHERE name = 'churn_default' AND version = 2;
RESET cscopilot.retrain_observations;
RESET cscopilot.outcome_horizon;
SELECT cs.drop_demo_data() > 0 AS dropped;

------------------------------------------------------------------------------
-- A database with only usage events: readiness and applicability
------------------------------------------------------------------------------
DELETE FROM cs.models WHERE kind <> 'custom';
INSERT INTO cs.customers (id, external_id, name, mrr, seats_licensed, csm)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'u-' || i, 'Usage ' || i, 100 + i, 10, 'csm_01'
  FROM generate_series(1, 40) i;
-- daily activity for 60 days; every fourth customer stopped 40 days ago
INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'user' || (d % (1 + i % 5)), 'login',
       'f' || (d % (1 + i % 3)), 1 + (i * d) % 4, now() - make_interval(days => d, hours => i % 12)
  FROM generate_series(1, 40) i, generate_series(1, 60) d
 WHERE i % 4 <> 0 OR d > 40;
-- history too short for one-call training
SELECT cs.train_from_history('x');
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT feature, source_table, present_share, varies, supported, load_next
  FROM cs.readiness_report() WHERE source_table IN ('support_tickets', 'invoices', 'usage_events')
 ORDER BY supported, "position";

-- a churn model leaning on NPS and CSAT (missing here): it predicts high
-- risk when they are missing, and does not apply to this data
CREATE TABLE nps_rows AS
SELECT g, ARRAY(SELECT CASE WHEN i = 21 THEN CASE WHEN g % 3 = 0 THEN 'NaN' ELSE (g % 11)::float4 END
                            WHEN i = 14 THEN CASE WHEN g % 3 = 0 THEN 'NaN' ELSE (g % 5 + 1)::float4 END
                            ELSE 1 END::float4
                  FROM generate_series(1, 36) i) AS features,
       ((g % 3 = 0 OR g % 11 < 4) <> (g % 7 = 0))::int AS label
  FROM generate_series(1, 600) g;
SELECT cs.train_model('nps_model', 'churn', 'SELECT features, label FROM nps_rows', '{"num_round": 20, "max_depth": 2}') > 0 AS trained;
SELECT cs.deploy_model('nps_model', 1);
SELECT feature, gain_share > 0 AS weighs, present_share, varies, usable, verdict
  FROM cs.model_applicability('nps_model', 1) WHERE gain_share > 0 ORDER BY feature;
SELECT DISTINCT verdict, unusable_gain_share FROM cs.model_applicability('nps_model', 1);
SELECT cs.refresh_all() > 0 AS refreshed;
-- the scores are written, flagged, and would have alerted; no churn alert is raised
SELECT count(*) AS scores, count(*) FILTER (WHERE NOT model_applicable) AS flagged,
       count(*) FILTER (WHERE risk_score >= cs.risk_alert_threshold()) AS above_threshold
  FROM cs.risk_assessments WHERE model_version = 'nps_model:v1';
SELECT count(*) AS churn_alerts FROM cs.alerts a JOIN cs.alert_rules r ON r.id = a.rule_id WHERE r.name = 'churn_risk_high';
-- a model alert says so, in the card and the worker status too
SELECT alert_type, severity, title, risk_factors ->> 'check' AS "check", risk_factors -> 'features' AS features, status
  FROM cs.system_alerts WHERE alert_type = 'model';
SELECT cs.model_card('nps_model', 1) -> 'applicability' ->> 'verdict' AS card_verdict;
SELECT champion_applicability FROM cs.worker_status;

-- a model trained here on what this data has (activity) replaces it: scores
-- raise alerts again and the model alert is resolved
CREATE TABLE act_rows AS
SELECT g, ARRAY(SELECT CASE WHEN i = 6 THEN g % 60 WHEN i = 10 THEN 30 - least(g % 60, 30) ELSE 1 END::float4
                  FROM generate_series(1, 36) i) AS features,
       ((g % 60 > 20) <> (g % 7 = 0))::int AS label
  FROM generate_series(1, 600) g;
SELECT cs.train_model('activity_model', 'churn', 'SELECT features, label FROM act_rows', '{"num_round": 20, "max_depth": 2}') > 0 AS trained;
SELECT cs.deploy_model('activity_model', 1);
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT DISTINCT verdict FROM cs.model_applicability('activity_model', 1);
SELECT count(*) AS scores, count(*) FILTER (WHERE NOT model_applicable) AS flagged
  FROM cs.risk_assessments WHERE model_version = 'activity_model:v1';
SELECT count(*) > 0 AS churn_alerts FROM cs.alerts a JOIN cs.alert_rules r ON r.id = a.rule_id WHERE r.name = 'churn_risk_high';
SELECT title, status FROM cs.system_alerts WHERE alert_type = 'model';
SELECT champion_applicability FROM cs.worker_status;
SELECT model, verdict FROM cs.check_model_applicability();
