-- Risk: a churn model trained in the database on all the catalog's features,
-- deployed, scoring customers in cs.refresh with exact explanations.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET TIME ZONE 'UTC';
SET extra_float_digits = 0;
\set VERBOSITY terse

-- CREATE EXTENSION deploys the shipped churn model
SELECT name, version, kind, status, array_length(feature_names, 1) AS features,
       (metrics ->> 'auc')::float8 >= 0.8 AS validation_auc_ok
  FROM cs.models;
DELETE FROM cs.models;

-- without a deployed churn model, risk functions say what to do
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm) VALUES
 ('00000000-0000-0000-0000-00000000000a', 'r-a', 'Alpha', 'smb', 500, 10, 'csm_01'),
 ('00000000-0000-0000-0000-00000000000b', 'r-b', 'Beta',  'smb', 300, 10, 'csm_01');
SELECT cs.churn_risk('00000000-0000-0000-0000-00000000000a');
SELECT * FROM cs.explain_risk('00000000-0000-0000-0000-00000000000a');
SELECT cs.refresh_all() AS refreshed;
SELECT count(*) AS assessments_without_model FROM cs.risk_assessments;

-- synthetic training rows: churn is likelier with falling usage (feature 7) and
-- overdue days (feature 17), less likely with many active users (feature 2)
CREATE TABLE train_rows AS
SELECT g,
       ARRAY(SELECT CASE WHEN i = 7 THEN ((g * 7919) % 200) / 100.0 - 1
                         WHEN i = 17 THEN (g * 104729) % 60
                         WHEN i = 2 THEN (g * 1299709) % 40
                         WHEN i = 21 AND g % 5 = 0 THEN 'NaN'
                         ELSE ((g * i * 31) % 97) / 10.0 END::float4
               FROM generate_series(1, (SELECT max(position) FROM cs.feature_catalog)) i) AS features
  FROM generate_series(1::bigint, 3000) g;
ALTER TABLE train_rows ADD COLUMN label int;
UPDATE train_rows SET label = (-2.0 * features[7] + features[17] / 20.0 - features[2] / 20.0
                               + ((g * 15485863) % 100) / 50.0 - 1.2 > 0)::int;
SELECT round(avg(label), 2) AS positive_rate FROM train_rows;
SELECT cs.train_model('churn_test', 'churn',
                      'SELECT features, label, g::text AS group_key FROM train_rows',
                      '{"max_depth": 3, "eta": 0.3, "num_round": 40, "seed": 7}') AS model_id \gset
SELECT name, version, kind, status, (metrics ->> 'auc')::float8 > 0.8 AS good_auc,
       array_length(feature_names, 1) AS features, feature_names[7] AS f7
  FROM cs.models;
SELECT cs.deploy_model('churn_test', 1);
SELECT cs.champion('churn');

-- churn_risk is the model's prediction on the customer's current features
SELECT abs(cs.churn_risk('00000000-0000-0000-0000-00000000000a')
           - cs.predict_calibrated('churn_test', cs.features('00000000-0000-0000-0000-00000000000a'))) < 1e-12 AS same;
-- every contribution plus the bias is the margin
SELECT abs(sum(contribution) + (cs.explain_json('churn_test', cs.features('00000000-0000-0000-0000-00000000000a'), 100) ->> 'bias')::float8
           - cs.model_margin('churn_test', cs.features('00000000-0000-0000-0000-00000000000a'))) < 1e-5 AS sums_to_margin
  FROM cs.explain_risk('00000000-0000-0000-0000-00000000000a', 100);
SELECT count(*) AS top3 FROM cs.explain_risk('00000000-0000-0000-0000-00000000000a', 3);

-- refresh writes one churn assessment per customer with confidence and version, and
-- the top SHAP factors when the risk is at least 0.1
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT '00000000-0000-0000-0000-00000000000a', 'u' || g, 'session', now() - make_interval(days => g) FROM generate_series(1, 50) g;
SELECT cs.refresh_all() AS refreshed;
SELECT c.external_id, a.risk_type, a.risk_score BETWEEN 0 AND 1 AS score_ok,
       a.confidence_score BETWEEN 0 AND 1 AS confidence_ok, a.model_version,
       coalesce(jsonb_array_length(a.risk_factors), 0) AS factors,
       (a.risk_factors IS NOT NULL) = (a.risk_score >= 0.1) AS explained_iff_risk_from_0_1,
       abs(a.risk_score - round(cs.predict_calibrated('churn_test', f.features)::numeric, 2)) = 0 AS matches_predict
  FROM cs.risk_assessments a JOIN cs.customers c ON c.id = a.customer_id
  JOIN cs.customer_features f ON f.customer_id = a.customer_id
 ORDER BY 1;
-- the factors are the largest contributions, in order
SELECT bool_and(abs(c) >= abs(coalesce(next_c, 0))) AS ordered
  FROM (SELECT (x ->> 'contribution')::float8 AS c,
               lead((x ->> 'contribution')::float8) OVER (PARTITION BY a.id ORDER BY o) AS next_c
          FROM cs.risk_assessments a, jsonb_array_elements(a.risk_factors) WITH ORDINALITY AS t(x, o)) s;
SELECT external_id, churn_risk IS NOT NULL AS has_risk, churn_risk_confidence IS NOT NULL AS has_confidence
  FROM cs.account_health_overview ORDER BY 1;

-- confidence: complete and decisive is high; half missing and undecided is low
SELECT cs.risk_confidence('{1,2,3,4}', 0.95) AS complete_decisive,
       cs.risk_confidence('{1,NaN,3,NaN}', 0.5) AS half_missing_undecided;

-- a point-in-time training set labels churn within the horizon after each date
UPDATE cs.customers SET churned_at = '2026-03-15', contract_start_date = '2025-01-01'
 WHERE external_id = 'r-a';
UPDATE cs.customers SET contract_start_date = '2025-01-01' WHERE external_id = 'r-b';
SELECT c.external_id, t.as_of::date, t.label, array_length(t.features, 1) AS n, t.group_key = c.id::text AS grouped
  FROM cs.build_training_set(ARRAY['2026-01-01', '2026-03-01', '2026-04-01']::date[], '30 days') t
  JOIN cs.customers c ON c.id = t.customer_id
 ORDER BY 2, 1;
SELECT * FROM cs.build_training_set('{}', '30 days');
SELECT * FROM cs.build_training_set(ARRAY['2026-01-01']::date[], '-1 day');
