-- Outcomes beyond churn: downgrade, payment and expansion labels, point in
-- time on a hand-made history; models judged on their own outcome; retraining
-- a kind on its own labels.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- start without the shipped models: nothing here depends on them
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

------------------------------------------------------------------------------
-- A hand-made history, every change on 2025-03-01 (or as said):
--   shrinker:  core 1000 (20 seats) replaced by 700 (14 seats): a 30% downgrade
--   churner:   500 until it churns on 2025-03-01: churn, never a downgrade
--   seats:     same MRR, seats 20 -> 10 (a seat downgrade at a flat price)
--   expander:  1000, plus an add-on of 300 (30%): an expansion of 300
--   small:     1000, plus an add-on of 100 (10%): below the expansion share
--   payer:     an invoice due 2025-02-01 never paid (more than 30 days
--              overdue from 2025-03-04), one due 2025-01-01 paid on day 30
--              (not counted) and one due 2025-01-05 paid on day 31
--              (counted from 2025-02-05), one failed and due 2025-04-10
--   steady:    1000 throughout, invoices paid on time
------------------------------------------------------------------------------
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm, churned_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'o1', 'shrinker', 'smb', 700, 14, 'csm_a', NULL),
       ('00000000-0000-0000-0000-000000000002', 'o2', 'churner', 'smb', 0, 10, 'csm_a', '2025-03-01'),
       ('00000000-0000-0000-0000-000000000003', 'o3', 'seats', 'smb', 1000, 10, 'csm_a', NULL),
       ('00000000-0000-0000-0000-000000000004', 'o4', 'expander', 'smb', 1300, 20, 'csm_a', NULL),
       ('00000000-0000-0000-0000-000000000005', 'o5', 'small', 'smb', 1100, 20, 'csm_a', NULL),
       ('00000000-0000-0000-0000-000000000006', 'o6', 'payer', 'smb', 1000, 20, 'csm_a', NULL),
       ('00000000-0000-0000-0000-000000000007', 'o7', 'steady', 'smb', 1000, 20, 'csm_a', NULL);
CREATE FUNCTION pg_temp.cid(n text) RETURNS uuid LANGUAGE sql
AS $$ SELECT id FROM cs.customers WHERE name = n $$;
INSERT INTO cs.subscriptions (customer_id, product, seats, mrr, started_at, ended_at) VALUES
 (pg_temp.cid('shrinker'), 'core', 20, 1000, '2024-01-01', '2025-03-01'),
 (pg_temp.cid('shrinker'), 'core', 14, 700, '2025-03-01', NULL),
 (pg_temp.cid('churner'), 'core', 10, 500, '2024-01-01', '2025-03-01'),
 (pg_temp.cid('seats'), 'core', 20, 1000, '2024-01-01', '2025-03-01'),
 (pg_temp.cid('seats'), 'core', 10, 1000, '2025-03-01', NULL),
 (pg_temp.cid('expander'), 'core', 20, 1000, '2024-01-01', NULL),
 (pg_temp.cid('expander'), 'analytics', 0, 300, '2025-03-01', NULL),
 (pg_temp.cid('small'), 'core', 20, 1000, '2024-01-01', NULL),
 (pg_temp.cid('small'), 'analytics', 0, 100, '2025-03-01', NULL),
 (pg_temp.cid('payer'), 'core', 20, 1000, '2024-01-01', NULL),
 (pg_temp.cid('steady'), 'core', 20, 1000, '2024-01-01', NULL);
INSERT INTO cs.invoices (customer_id, amount, issued_at, due_date, paid_at, status) VALUES
 (pg_temp.cid('payer'), 1000, '2024-12-01', '2025-01-01', '2025-01-31', 'paid'),
 (pg_temp.cid('payer'), 1000, '2024-12-05', '2025-01-05', '2025-02-05', 'paid'),
 (pg_temp.cid('payer'), 1000, '2025-01-01', '2025-02-01', NULL, 'open'),
 (pg_temp.cid('payer'), 1000, '2025-03-10', '2025-04-10', NULL, 'failed'),
 (pg_temp.cid('payer'), 1000, '2025-02-01', '2025-03-01', NULL, 'void'),
 (pg_temp.cid('steady'), 1000, '2025-01-01', '2025-02-01', '2025-02-01', 'paid'),
 (pg_temp.cid('steady'), 1000, '2025-02-01', '2025-03-01', '2025-03-20', 'paid');

-- Labels at dates before, at and after each change, 30-day horizon: a change
-- counts only within (as_of, as_of + 30 days]; at the change date it is
-- already the present.
CREATE TEMP TABLE dates AS
SELECT ARRAY['2025-01-15', '2025-01-30', '2025-02-04', '2025-02-15', '2025-03-01', '2025-03-04',
             '2025-03-10', '2025-03-20', '2025-04-10']::date[] AS d;
CREATE TEMP TABLE labels AS
SELECT k.kind, c.name, t.as_of::date AS as_of, t.label, t.target
  FROM unnest(ARRAY['churn', 'downgrade', 'payment', 'expansion']) k(kind)
 CROSS JOIN LATERAL cs.build_training_set((SELECT d FROM dates), '30 days', k.kind) t
  JOIN cs.customers c ON c.id = t.customer_id;
SELECT kind, name, string_agg(to_char(as_of, 'MM-DD') || '=' || label
                              || coalesce('/' || target, ''), ' ' ORDER BY as_of) AS labels
  FROM labels
 GROUP BY kind, name
 ORDER BY array_position(ARRAY['churn', 'downgrade', 'payment', 'expansion'], kind), name;

-- the churn labels are the ones build_training_set always gave
SELECT count(*) AS rows, sum(label) AS churned FROM labels WHERE kind = 'churn';
-- a churner is never a downgrade, whatever its MRR did
SELECT count(*) AS churner_downgrades FROM labels WHERE kind = 'downgrade' AND name = 'churner' AND label = 1;

-- the settings move the thresholds: a 10% expansion counts at 0.1, a 30%
-- downgrade does not at 0.5, and 0 days overdue counts the late payments
SET cscopilot.expansion_share = 0.1;
SET cscopilot.downgrade_share = 0.5;
SET cscopilot.payment_overdue_days = 0;
SELECT k.kind, c.name, string_agg(to_char(t.as_of, 'MM-DD') || '=' || t.label, ' ' ORDER BY t.as_of) AS labels
  FROM unnest(ARRAY['downgrade', 'payment', 'expansion']) k(kind)
 CROSS JOIN LATERAL cs.build_training_set(ARRAY['2025-01-30', '2025-02-15']::date[], '30 days', k.kind) t
  JOIN cs.customers c ON c.id = t.customer_id
 WHERE c.name IN ('shrinker', 'seats', 'small', 'steady')
 GROUP BY k.kind, c.name ORDER BY k.kind, c.name;
SELECT cs.label_definition('downgrade', '30 days') ->> 'downgrade_share' AS downgrade_share,
       cs.label_definition('payment') ->> 'payment_overdue_days' AS overdue_days,
       cs.label_definition('expansion') ->> 'expansion_share' AS expansion_share;
RESET cscopilot.expansion_share;
RESET cscopilot.downgrade_share;
RESET cscopilot.payment_overdue_days;

-- bad kinds
SELECT * FROM cs.build_training_set(ARRAY['2025-01-15']::date[], '30 days', 'refund');
SELECT cs.outcome_kind('upsell') AS upsell, cs.outcome_kind('custom') AS custom;

------------------------------------------------------------------------------
-- Each kind is judged on its own outcome: a downgrade model's predictions of
-- 2025-02-15 are right for the shrinker and the seats customer, not for the
-- churner (a churn, not a downgrade).
------------------------------------------------------------------------------
SET cscopilot.outcome_horizon = 30;
SELECT cs.load_model_file('dg', 'downgrade', 'churn_default.json') > 0 AS loaded;
SELECT cs.load_model_file('ch', 'churn', 'churn_default.json') > 0 AS loaded;
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, model_version, created_at)
SELECT pg_temp.cid(n), k, p, CASE k WHEN 'downgrade' THEN 'dg:v1' ELSE 'ch:v1' END, timestamptz '2025-02-15'
  FROM (VALUES ('shrinker', 0.9), ('seats', 0.7), ('churner', 0.2), ('steady', 0.1), ('expander', 0.3)) v(n, p)
 CROSS JOIN unnest(ARRAY['downgrade', 'churn']) k;
SELECT o.name, c.name AS customer, o.churned, o.outcome
  FROM cs.model_outcomes o JOIN cs.customers c ON c.id = o.customer_id
 ORDER BY o.name, c.name;
SELECT name, kind, n, positives, auc FROM cs.model_performance ORDER BY name;
SELECT decile, n, observed_rate FROM cs.model_calibration('dg', 1) ORDER BY decile;
SELECT cs.model_card('dg', 1) -> 'label' ->> 'kind' AS card_label,
       cs.model_card('dg', 1) -> 'label' ? 'downgrade_share' AS has_share;
RESET cscopilot.outcome_horizon;

------------------------------------------------------------------------------
-- cs.retrain(kind) trains each kind on its own labels: payment on generated
-- data, its positive rate that of the payment labels (not churn's).
------------------------------------------------------------------------------
SET client_min_messages = warning;
DROP EXTENSION cscopilot CASCADE;
CREATE EXTENSION cscopilot;
DELETE FROM cs.models;
SELECT cs.generate_demo_data(400, 300, 11) > 0 AS generated;
SET cscopilot.retrain_observations = 4;
CREATE TEMP TABLE run AS SELECT cs.retrain('payment') AS r;
SELECT r ->> 'status' AS status,
       r -> 'steps' -> 1 -> 'label' ->> 'kind' AS step_label,
       r -> 'steps' -> 3 ->> 'status' AS registered, r ->> 'error' AS error
  FROM run;
CREATE TEMP TABLE rows_of AS
SELECT k.kind, t.label
  FROM run, unnest(ARRAY['payment', 'churn']) k(kind)
 CROSS JOIN LATERAL cs.build_training_set(ARRAY(SELECT jsonb_array_elements_text(run.r -> 'steps' -> 1 -> 'observation_dates'))::date[],
                                          '90 days', k.kind) t;
SELECT m.kind, m.status, m.training_data LIKE '%''payment'')' AS payment_rows,
       m.metrics -> 'label' ->> 'kind' AS label_kind,
       (m.metrics -> 'training_window' ->> 'positives')::bigint
           = (SELECT sum(label) FROM rows_of WHERE kind = 'payment') AS payment_positives,
       (m.metrics -> 'training_window' ->> 'positives')::bigint
           <> (SELECT sum(label) FROM rows_of WHERE kind = 'churn') AS not_churn_positives,
       (SELECT sum(label) FROM rows_of WHERE kind = 'payment') >= 10 AS enough,
       cs.model_card(m.name, m.version) -> 'label' ->> 'payment_overdue_days' AS card_days
  FROM cs.models m;

------------------------------------------------------------------------------
-- The generator's contractions, expansions and payment crises stay
-- consistent, for several seeds and sizes: no line ends before it starts
-- (an add-on bought after the contraction day is never the one dropped), no
-- negative MRR or seats, core lines never overlap, a paid invoice has status
-- paid (a crisis payment replaces an earlier write-off), the customer's MRR
-- and seats are those of its lines at the end date, and contractions do
-- happen.
------------------------------------------------------------------------------
CREATE TEMP TABLE gen AS
SELECT s AS seed, n, d FROM generate_series(1, 3) s, (VALUES (800, 365), (1500, 180), (1500, 730)) v(n, d);
SELECT g.seed, g.n, g.d,
       (SELECT count(*) FROM cs._demo_subscriptions(g.n, g.d, g.seed, '2026-06-30') s
         WHERE s.ended_at < s.started_at OR s.mrr < 0 OR s.seats < 0) AS bad_lines,
       (SELECT count(*) FROM cs._demo_subscriptions(g.n, g.d, g.seed, '2026-06-30') a
          JOIN cs._demo_subscriptions(g.n, g.d, g.seed, '2026-06-30') b
            ON a.customer_id = b.customer_id AND a.product = 'core' AND b.product = 'core'
           AND a.started_at < b.started_at AND (a.ended_at IS NULL OR a.ended_at > b.started_at)) AS overlapping_core,
       (SELECT count(*) FROM cs._demo_invoices(g.n, g.d, g.seed, '2026-06-30') i
         WHERE (i.paid_at IS NOT NULL AND i.status <> 'paid') OR i.amount < 0
            OR i.due_date < i.issued_at OR i.paid_at < i.issued_at) AS bad_invoices,
       (SELECT count(*) FROM cs._demo_customers(g.n, g.d, g.seed, '2026-06-30') c
          LEFT JOIN (SELECT s.customer_id, sum(s.mrr) AS mrr, sum(s.seats) FILTER (WHERE s.product = 'core') AS seats
                       FROM cs._demo_subscriptions(g.n, g.d, g.seed, '2026-06-30') s
                      WHERE s.ended_at IS NULL OR s.ended_at > '2026-06-30'
                      GROUP BY s.customer_id) a ON a.customer_id = c.id
         WHERE c.mrr < 0 OR c.seats_licensed < 0
            OR (c.churned_at IS NULL AND (abs(c.mrr - a.mrr) > 0.05 OR c.seats_licensed <> a.seats))
            OR (c.churned_at IS NOT NULL AND a.customer_id IS NOT NULL)) AS inconsistent_customers,
       (SELECT count(*) FROM cs._demo_subscriptions(g.n, g.d, g.seed, '2026-06-30') a
          JOIN cs._demo_subscriptions(g.n, g.d, g.seed, '2026-06-30') b
            ON a.customer_id = b.customer_id AND a.product = 'core' AND b.product = 'core'
           AND a.ended_at = b.started_at AND b.seats < a.seats) > 0 AS has_contractions
  FROM gen g ORDER BY 1, 2, 3;
