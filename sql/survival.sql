-- Time to churn: the concordance index by hand, survival training rows on a
-- hand-made history, a survival:aft model trained on a generated set (its
-- predictions against libxgboost's, its probabilities against the AFT
-- formula), cs.time_to_churn on a customer, the renewal forecast's column,
-- and the errors.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET TIME ZONE 'UTC';
SET extra_float_digits = 0;
\set VERBOSITY terse

------------------------------------------------------------------------------
-- Concordance index by hand
------------------------------------------------------------------------------
-- Perfect order: 1.
SELECT cs.concordance_index('{10,20,30,40}', '{5,15,25,35}', '{t,t,t,t}') AS perfect;
-- Reversed: 0.
SELECT cs.concordance_index('{40,30,20,10}', '{5,15,25,35}', '{t,t,t,t}') AS reversed;
-- Rows 1-4 at times 1-4, row 2 censored, predictions 2, 1, 3, 3.
-- Comparable pairs (an event before a later time): (1,2) discordant (2 > 1),
-- (1,3) and (1,4) concordant, (3,4) a tie in the prediction (one half);
-- row 2 is censored, so it is compared only as the later row.  2.5 / 4.
SELECT cs.concordance_index('{2,1,3,3}', '{1,2,3,4}', '{t,f,t,t}') AS with_censoring_and_tie;
-- Equal times are not compared with each other: only (1,3) and (2,3), both concordant.
SELECT cs.concordance_index('{1,2,3}', '{1,1,2}', '{t,t,f}') AS tied_times;
-- No comparable pair: NULL.
SELECT cs.concordance_index('{1,2}', '{1,2}', '{f,f}') IS NULL AS none_comparable;
SELECT cs.concordance_index('{1,2}', '{1,2,3}', '{t,t,t}');
SELECT cs.concordance_index('{1,NULL}', '{1,2}', '{t,t}');

------------------------------------------------------------------------------
-- Survival rows on a hand-made history
------------------------------------------------------------------------------
-- Data known up to 2026-01-01.  A churns 2025-03-11 (69 days after
-- 2025-01-01), B never, C on 2025-12-01 (beyond max_days 200 from
-- 2025-01-01), D on 2026-02-01 (after the data's end: unknown then).
INSERT INTO cs.customers (id, external_id, name, contract_start_date, contract_end_date, churned_at) VALUES
  ('00000000-0000-0000-0000-00000000000a', 'A', 'A', '2024-01-01', '2025-12-31', '2025-03-11'),
  ('00000000-0000-0000-0000-00000000000b', 'B', 'B', '2024-01-01', '2026-12-31', NULL),
  ('00000000-0000-0000-0000-00000000000c', 'C', 'C', '2024-01-01', '2025-12-31', '2025-12-01'),
  ('00000000-0000-0000-0000-00000000000d', 'D', 'D', '2024-01-01', '2026-06-30', '2026-02-01');
SELECT c.external_id, s.as_of::date, round(s.label_lower::numeric, 2) AS lower,
       s.label_upper, s.churned, cardinality(s.features) = cardinality(cs.feature_names()) AS full_vector
  FROM cs.build_survival_set('{2025-01-01,2025-06-01}', 200, '2026-01-01') s
  JOIN cs.customers c ON c.id = s.customer_id
 ORDER BY 2, 1;
-- nothing after the data's end
SELECT count(*) FROM cs.build_survival_set('{2025-06-01,2026-01-01}', 200, '2026-01-01');
SELECT count(*) FROM cs.build_survival_set('{2025-06-01}', 0, '2026-01-01');
DELETE FROM cs.customers;

------------------------------------------------------------------------------
-- Training on a generated set
------------------------------------------------------------------------------
-- A feature vector in cs.feature_names() order (what a scoring kind takes)
-- with inactivity x1 in days_since_last_activity, x2 in active_days_30d, the
-- rest missing.
CREATE FUNCTION pg_temp.vec(x1 float8, x2 float8) RETURNS float4[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY(SELECT CASE n WHEN 'days_since_last_activity' THEN x1 WHEN 'active_days_30d' THEN x2
                               ELSE 'NaN' END::float4
                   FROM unnest(cs.feature_names()) WITH ORDINALITY u(n, i) ORDER BY i)
$$;
-- 400 rows on 8 dates; the time to churn falls with the first input
-- (inactivity) and rises with the second; rows still there after 150 days,
-- or at the end of the data (as_of + 200 days for the last dates), are
-- censored.
CREATE TABLE st AS
SELECT g, as_of, features, t,
       least(t, 150, follow) AS label_lower,
       CASE WHEN t <= least(150, follow) THEN t ELSE 'Infinity' END::float8 AS label_upper
  FROM (SELECT g, date '2025-01-01' + (g % 8) * 30 AS as_of,
               pg_temp.vec(x1, x2) AS features,
               round(exp(5.0 - 1.2 * x1 + 0.4 * x2 + ((g * 37) % 11 - 5) / 10.0)::numeric, 1)::float8 AS t,
               (date '2025-12-01' - (date '2025-01-01' + (g % 8) * 30))::float8 AS follow
          FROM (SELECT g, ((g * 7919) % 100) / 25.0 AS x1, ((g * 104729) % 40) / 20.0 AS x2
                  FROM generate_series(1, 400) g) r) q;
SELECT count(*) AS rows, count(*) FILTER (WHERE label_upper = 'Infinity') AS censored FROM st;
SELECT cs.train_model('ttc', 'survival', 'SELECT features, label_lower, label_upper, as_of FROM st',
                      '{"objective": "survival:aft", "aft_loss_distribution": "logistic",
                        "aft_loss_distribution_scale": 0.8, "num_round": 60, "max_depth": 3, "eta": 0.2}') AS ttc_id \gset
SELECT kind, objective, status, feature_names = cs.feature_names() AS catalog_inputs FROM cs.models WHERE id = :ttc_id;
-- the forward split censors training rows at the first validation date
SELECT m.metrics ->> 'split' AS split, m.metrics ->> 'eval_metric' AS eval_metric,
       m.metrics ->> 'aft_loss_distribution' AS distribution,
       m.metrics ->> 'aft_loss_distribution_scale' AS scale,
       (m.metrics ->> 'concordance_index')::float8 > 0.8 AS concordant,
       (m.metrics ->> 'train_censored_at_split')::int > 0 AS censored_at_split,
       (m.metrics ->> 'valid_events')::int + (m.metrics ->> 'valid_censored')::int = (m.metrics ->> 'rows_valid')::int AS counts,
       m.metrics ? 'auc' AS has_auc
  FROM cs.models m WHERE m.id = :ttc_id;
-- The stored concordance is cs.concordance_index over the validation rows
-- (the two latest dates) with the model's predictions.
SELECT abs(cs.concordance_index(array_agg(cs.predict('ttc', features)), array_agg(label_lower),
                                array_agg(label_upper < 'Infinity'))
           - (SELECT (metrics ->> 'concordance_index')::float8 FROM cs.models WHERE id = :ttc_id)) < 1e-9 AS stored_c_index
  FROM st WHERE as_of >= date '2025-01-01' + 6 * 30;
-- Predicted days equal libxgboost's own predictions (exp of the margin).
SELECT count(*) AS rows,
       count(*) FILTER (WHERE abs(p.native - l.p) <= 1e-6 * greatest(1, abs(l.p))) AS equal_to_libxgboost,
       count(*) FILTER (WHERE abs(p.native - exp(p.margin)) <= 1e-5 * p.native) AS exp_of_margin,
       count(DISTINCT round(p.native::numeric, 3)) > 10 AS varied
  FROM (SELECT g, cs.predict('ttc', features) AS native, cs.model_margin('ttc', features) AS margin FROM st) p
  JOIN unnest((SELECT array_agg(g ORDER BY g) FROM st),
              cs._xgboost_predict('ttc', (SELECT array_agg(features ORDER BY g) FROM st))) AS l(g, p) USING (g);
-- The probability of churning within t days is the logistic CDF at
-- (ln t - margin) / scale (0.8 as the model stores it, in float), rises with t, is 0 at 0 days and 1 at +Infinity,
-- and one half at the predicted time.
SELECT (metrics ->> 'aft_loss_distribution_scale')::float8 AS scale FROM cs.models WHERE id = :ttc_id \gset
SELECT count(*) FILTER (WHERE abs(cs.survival_probability('ttc', features, d)
                                  - 1 / (1 + exp(-(ln(d) - cs.model_margin('ttc', features)) / :scale))) < 1e-12) AS formula,
       count(*) AS checked
  FROM st CROSS JOIN (VALUES (1.0), (30.0), (365.0)) v(d) WHERE g <= 20;
SELECT bool_and(p1 < p2 AND p2 < p3 AND p3 < p4) AS monotone_in_days,
       bool_and(p0 = 0 AND pinf = 1) AS bounds,
       bool_and(abs(pmid - 0.5) < 1e-5) AS half_at_predicted_time
  FROM (SELECT cs.survival_probability('ttc', features, 0) AS p0,
               cs.survival_probability('ttc', features, 7) AS p1,
               cs.survival_probability('ttc', features, 30) AS p2,
               cs.survival_probability('ttc', features, 90) AS p3,
               cs.survival_probability('ttc', features, 365) AS p4,
               cs.survival_probability('ttc', features, 'Infinity') AS pinf,
               cs.survival_probability('ttc', features, cs.predict('ttc', features)) AS pmid
          FROM st WHERE g <= 50) x;
-- Inactive customers (first input high) are predicted to churn sooner.
SELECT cs.predict('ttc', pg_temp.vec(3.5, 1)) < cs.predict('ttc', pg_temp.vec(0.5, 1)) AS inactive_sooner;

------------------------------------------------------------------------------
-- Time to churn of a customer
------------------------------------------------------------------------------
INSERT INTO cs.customers (id, external_id, name, mrr, contract_start_date, contract_end_date, churned_at) VALUES
  ('00000000-0000-0000-0000-0000000000e1', 'E1', 'Inactive', 500, '2025-01-01', '2026-12-31', NULL),
  ('00000000-0000-0000-0000-0000000000e2', 'E2', 'Active', 800, '2025-01-01', '2026-04-15', NULL),
  ('00000000-0000-0000-0000-0000000000e3', 'E3', 'Gone', 100, '2025-01-01', '2026-12-31', '2026-01-15'),
  ('00000000-0000-0000-0000-0000000000e4', 'E4', 'Never refreshed', 100, '2025-01-01', '2026-12-31', NULL);
-- E1's term in force ends on 2026-03-31 (the renewal), before its contract end.
INSERT INTO cs.contract_terms (customer_id, term_start, term_end, mrr) VALUES
  ('00000000-0000-0000-0000-0000000000e1', '2025-04-01', '2026-03-31', 500);
-- Stored vectors dated 2026-02-01.
INSERT INTO cs.customer_features (customer_id, as_of, features)
SELECT c.id, '2026-02-01', pg_temp.vec(v.x1, 1)
  FROM cs.customers c JOIN (VALUES ('E1', 3.5), ('E2', 0.5)) v(ext, x1) ON v.ext = c.external_id;
-- No survival model deployed yet (the shipped one retired).
UPDATE cs.models SET status = 'retired' WHERE kind = 'survival' AND status = 'champion';
SELECT * FROM cs.time_to_churn('00000000-0000-0000-0000-0000000000e1');
SELECT cs.deploy_model('ttc', 1);
SELECT c.external_id, round(t.expected_days::numeric, 1) = round(cs.predict('ttc', pg_temp.vec(x1, 1))::numeric, 1) AS days_as_predicted,
       t.renewal_date,
       round(t.churn_probability_by_renewal::numeric, 6)
         = round(cs.survival_probability('ttc', pg_temp.vec(x1, 1), t.renewal_date - date '2026-02-01')::numeric, 6) AS probability_as_computed,
       t.model
  FROM cs.customers c
  JOIN (VALUES ('E1', 3.5), ('E2', 0.5)) v(ext, x1) ON v.ext = c.external_id
 CROSS JOIN LATERAL cs.time_to_churn(c.id) t
 ORDER BY 1;
-- the inactive customer is likelier to churn before a nearer renewal
SELECT (SELECT churn_probability_by_renewal FROM cs.time_to_churn('00000000-0000-0000-0000-0000000000e1'))
     > (SELECT churn_probability_by_renewal FROM cs.time_to_churn('00000000-0000-0000-0000-0000000000e2')) AS inactive_riskier;
-- The renewal forecast shows it as the risk of each renewal (E2's contract
-- ends 2026-04-15, E1's 2026-12-31 in cs.customers).
SELECT a.as_of, external_id, renewal_date, days_to_renewal,
       churn_probability_by_renewal
         = round(cs.survival_probability('ttc', pg_temp.vec(x1, 1), renewal_date - date '2026-02-01')::numeric, 2) AS risk_of_renewal
  FROM (VALUES (date '2026-02-15'), (date '2026-10-15')) a(as_of)
 CROSS JOIN LATERAL cs.renewal_forecast_as_of(a.as_of) f
  JOIN (VALUES ('E1', 3.5), ('E2', 0.5)) v(ext, x1) ON v.ext = f.external_id
 ORDER BY 1, 2;
-- before the stored vector's date: no probability
SELECT external_id, churn_probability_by_renewal FROM cs.renewal_forecast_as_of('2026-01-20') ORDER BY 1;

------------------------------------------------------------------------------
-- Errors
------------------------------------------------------------------------------
SELECT * FROM cs.time_to_churn('00000000-0000-0000-0000-000000000999');
SELECT * FROM cs.time_to_churn('00000000-0000-0000-0000-0000000000e3');
SELECT * FROM cs.time_to_churn('00000000-0000-0000-0000-0000000000e4');
-- a churn model is not a survival model
SELECT cs.survival_probability('churn_default', cs.features('00000000-0000-0000-0000-0000000000e2', '2026-02-01'), 30);
-- kind and objective go together
SELECT cs.train_model('bad', 'churn', 'SELECT features, label_lower, label_upper FROM st', '{"objective": "survival:aft"}');
SELECT cs.train_model('bad', 'survival', 'SELECT features, t AS label FROM st', '{}');
-- the time bounds
SELECT cs.train_model('bad', 'survival', 'SELECT features, t AS label FROM st', '{"objective": "survival:aft"}');
SELECT cs.train_model('bad', 'survival', 'SELECT features, label_lower, ''Infinity''::float8 AS label_upper FROM st',
                      '{"objective": "survival:aft"}');
SELECT cs.train_model('bad', 'survival', 'SELECT features, label_lower, label_lower - 1 AS label_upper FROM st',
                      '{"objective": "survival:aft"}');
SELECT cs.train_model('bad', 'survival', 'SELECT features, label_lower, label_upper FROM st',
                      '{"objective": "survival:aft", "aft_loss_distribution": "weibull"}');
