-- Usage metrics as data: definitions, one-pass point-in-time values, feature
-- names, proposals, bulk point-in-time features, models bound by name.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm, contract_start_date, contract_end_date) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 'm-a', 'Alpha', 'smb', 500, 10, 'csm_01', '2025-06-01', '2026-05-31'),
 ('00000000-0000-0000-0000-0000000000a2', 'm-b', 'Beta',  'smb', 300, 5,  'csm_01', '2025-06-01', '2026-05-31'),
 ('00000000-0000-0000-0000-0000000000a3', 'm-c', 'Gamma', 'smb', 300, 5,  'csm_01', '2025-06-01', '2026-05-31'),
 ('00000000-0000-0000-0000-0000000000a4', 'm-d', 'Delta', 'smb', 300, 5,  'csm_01', '2025-06-01', '2026-05-31');

-- as_of 2026-04-01 00:00: the 7-day window is (03-25, 04-01], the previous (03-18, 03-25]
-- Alpha: messages by u1, u2 on two days in the window, one at the window's edge
INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 'u1', 'message', 'chat', 2, '2026-03-31 10:00+00'),
 ('00000000-0000-0000-0000-0000000000a1', 'u1', 'message', 'chat', 1, '2026-03-31 11:00+00'),
 ('00000000-0000-0000-0000-0000000000a1', 'u2', 'message', 'chat', 4, '2026-03-29 09:00+00'),
 ('00000000-0000-0000-0000-0000000000a1', 'u2', 'message', 'chat', 1, '2026-03-25 00:00:01+00'), -- last second of the window
 ('00000000-0000-0000-0000-0000000000a1', 'u1', 'message', 'chat', 1, '2026-03-25 00:00:00+00'), -- previous window
 ('00000000-0000-0000-0000-0000000000a1', 'u1', 'message', 'chat', 1, '2026-03-20 12:00+00'),
 ('00000000-0000-0000-0000-0000000000a1', 'u1', 'friend',  'social', 1, '2026-03-30 12:00+00'),
 ('00000000-0000-0000-0000-0000000000a1', 'u3', 'friend',  'social', 1, '2026-03-27 12:00+00'),
 ('00000000-0000-0000-0000-0000000000a1', 'u1', 'login',   NULL, 1, '2026-03-31 08:00+00'),
 -- after as_of: ignored
 ('00000000-0000-0000-0000-0000000000a1', 'u1', 'message', 'chat', 50, '2026-04-01 00:00:01+00'),
 -- Beta: one message two weeks ago, nothing in the 7-day window
 ('00000000-0000-0000-0000-0000000000a2', 'u7', 'message', 'chat', 1, '2026-03-18 12:00+00'),
 ('00000000-0000-0000-0000-0000000000a2', 'u7', 'login',   NULL, 1, '2026-03-30 08:00+00'),
 -- Gamma: only a login a year ago (usage data, none in any window)
 ('00000000-0000-0000-0000-0000000000a3', 'u8', 'login',   NULL, 1, '2025-03-01 08:00+00');
-- Delta: no usage at all

-- Definitions and their errors.
INSERT INTO cs.usage_metrics (name, events, window_days, aggregate, per, ratio_of, change) VALUES
 ('msg_7d',          '{message}', 7, 'count',          NULL,         NULL,     false),
 ('msg_qty_7d',      '{message}', 7, 'sum_quantity',   NULL,         NULL,     false),
 ('msg_users_7d',    '{message}', 7, 'distinct_users', NULL,         NULL,     false),
 ('msg_days_7d',     '{message}', 7, 'active_days',    NULL,         NULL,     false),
 ('msg_per_user_7d', '{message}', 7, 'count',          'user',       NULL,     false),
 ('msg_per_day_7d',  '{message}', 7, 'count',          'active_day', NULL,     false),
 ('msg_7d_change',   '{message}', 7, 'count',          NULL,         NULL,     true),
 ('all_7d',          NULL,        7, 'count',          NULL,         NULL,     false),
 ('msg_share_7d',    '{message}', 7, 'count',          NULL,         'all_7d', false);
INSERT INTO cs.usage_metrics (name, features, window_days, aggregate) VALUES ('social_7d', '{social}', 7, 'count');
INSERT INTO cs.usage_metrics (name, window_days, aggregate) VALUES ('Bad-Name', 7, 'count');
INSERT INTO cs.usage_metrics (name, window_days, aggregate) VALUES ('seat_utilisation', 7, 'count');
INSERT INTO cs.usage_metrics (name, window_days, aggregate) VALUES ('x_7d', 7, 'median');
INSERT INTO cs.usage_metrics (name, window_days, aggregate) VALUES ('x_7d', 0, 'count');
INSERT INTO cs.usage_metrics (name, window_days, aggregate) VALUES ('x_7d', 366, 'count');
INSERT INTO cs.usage_metrics (name, window_days, aggregate, per) VALUES ('x_7d', 7, 'count', 'week');
INSERT INTO cs.usage_metrics (name, window_days, aggregate, ratio_of) VALUES ('x_7d', 7, 'count', 'nope');
INSERT INTO cs.usage_metrics (name, window_days, aggregate, ratio_of) VALUES ('x_7d', 7, 'count', 'x_7d');
UPDATE cs.usage_metrics SET ratio_of = 'msg_share_7d' WHERE name = 'all_7d';
UPDATE cs.usage_metrics SET enabled = false WHERE name = 'all_7d';

SELECT (cs.feature_names())[35:] AS names, cardinality(cs.feature_names()) AS n;

-- The metrics of every customer as of 2026-04-01 (names beside values).
SELECT c.name, x.n, round(x.v::numeric, 4) AS v
  FROM cs.compute_features(NULL, '2026-04-01 00:00+00') f
  JOIN cs.customers c ON c.id = f.customer_id
 CROSS JOIN LATERAL unnest(cs.feature_names(), f.features) WITH ORDINALITY x(n, v, i)
 WHERE x.i > 36
 ORDER BY c.name, x.i;

-- Hand counts, in SQL, for Alpha's and Beta's per-event-type counts at several
-- points in time: the metric equals the count of rows in (as_of - 7d, as_of].
WITH t(as_of) AS (VALUES ('2026-03-25 00:00+00'::timestamptz), ('2026-03-25 00:00:01+00'), ('2026-03-31 10:30+00'), ('2026-04-01 00:00+00'), ('2026-04-08 00:00+00')),
pairs AS (SELECT c.id, t.as_of FROM cs.customers c CROSS JOIN t WHERE c.external_id IN ('m-a', 'm-b'))
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE (cs.features(p.id, p.as_of))[array_position(cs.feature_names(), 'msg_7d')]
                       = (SELECT count(*) FROM cs.usage_events e WHERE e.customer_id = p.id AND e.event = 'message'
                             AND e.occurred_at > p.as_of - interval '7 days' AND e.occurred_at <= p.as_of)) AS msg_equal,
       count(*) FILTER (WHERE (cs.features(p.id, p.as_of))[array_position(cs.feature_names(), 'social_7d')]
                       = (SELECT count(*) FROM cs.usage_events e WHERE e.customer_id = p.id AND e.feature = 'social'
                             AND e.occurred_at > p.as_of - interval '7 days' AND e.occurred_at <= p.as_of)) AS social_equal
  FROM pairs p;

-- Bulk point-in-time features equal cs.features pair by pair (dates repeat, one pair twice).
WITH p AS (
    SELECT c.id, t.as_of FROM cs.customers c
     CROSS JOIN (VALUES ('2026-03-20 00:00+00'::timestamptz), ('2026-04-01 00:00+00'), ('2026-04-03 06:00+00')) t(as_of)
    UNION ALL SELECT '00000000-0000-0000-0000-0000000000a1', '2026-04-01 00:00+00'
), r AS (
    SELECT * FROM cs.compute_features_at(ARRAY(SELECT id FROM p ORDER BY id, as_of), ARRAY(SELECT as_of FROM p ORDER BY id, as_of))
)
SELECT (SELECT count(*) FROM p) AS pairs, count(*) AS rows,
       count(*) FILTER (WHERE r.features::text = cs.features(r.customer_id, r.as_of)::text) AS equal
  FROM r;
SELECT * FROM cs.compute_features_at(ARRAY['00000000-0000-0000-0000-0000000000a1']::uuid[], '{}');
SELECT * FROM cs.compute_features_at(ARRAY[NULL]::uuid[], ARRAY['2026-04-01']::timestamptz[]);
SELECT * FROM cs.compute_features_at(ARRAY['00000000-0000-0000-0000-0000000000a1']::uuid[], ARRAY['infinity']::timestamptz[]);
SELECT * FROM cs.compute_features_at(ARRAY['00000000-0000-0000-0000-0000000000ff']::uuid[], ARRAY['2026-04-01']::timestamptz[]);

-- Stored vectors carry their layout; a change of the metric set makes the next
-- refresh (even of one customer) a full one.
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT count(*) AS vectors, count(DISTINCT layout) AS layouts,
       bool_and(cardinality(features) = cardinality(cs.feature_names())) AS full_length
  FROM cs.customer_features;
INSERT INTO cs.usage_metrics (name, events, window_days, aggregate) VALUES ('a_login_7d', '{login}', 7, 'count');
SELECT cs._features_stale() AS stale;
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-0000000000a1']::uuid[]) AS refreshed_one;
SELECT cs._features_stale() AS stale,
       bool_and(cf.layout = (SELECT l.layout_id FROM cs.feature_layouts l WHERE l.names = cs.feature_names())) AS all_current
  FROM cs.customer_features cf;

-- churn_default (the 36 catalog names) scores exactly as with no metrics.
CREATE TEMP TABLE with_metrics AS
SELECT f.customer_id, cs.predict('churn_default', cs._pick_features(f.features, cs._model_positions('churn_default', cs.feature_names()))) AS p
  FROM cs.compute_features(NULL, '2026-04-01 00:00+00') f;
UPDATE cs.usage_metrics SET enabled = false WHERE ratio_of IS NOT NULL;
UPDATE cs.usage_metrics SET enabled = false;
SELECT cardinality(cs.feature_names()) AS n_without_metrics;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE w.p = cs.predict('churn_default', f.features)) AS same_score
  FROM cs.compute_features(NULL, '2026-04-01 00:00+00') f JOIN with_metrics w USING (customer_id);
UPDATE cs.usage_metrics SET enabled = true;
-- and through the refresh: stored risk of the default model equals its score on the 36 features
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT count(*) AS assessed,
       count(*) FILTER (WHERE r.risk_score = round(cs.predict_calibrated('churn_default', f.features[1:36])::numeric, 2)) AS same_risk
  FROM cs.risk_assessments r JOIN cs.customer_features f USING (customer_id)
 WHERE r.model_version LIKE 'churn_default%' AND r.created_at = f.as_of;
SELECT round(cs.churn_risk('00000000-0000-0000-0000-0000000000a1')::numeric, 6)
     = round(cs.predict_calibrated('churn_default', (cs.features('00000000-0000-0000-0000-0000000000a1'))[1:36])::numeric, 6) AS churn_risk_same;

-- A model trained on names that include a metric scores through the name
-- mapping, also after a new metric shifts the positions.
CREATE TEMP TABLE train_rows AS
SELECT f.features, (f.features[array_position(cs.feature_names(), 'msg_7d')] > 2)::int AS label
  FROM cs.compute_features_at(ARRAY(SELECT c.id FROM cs.customers c, generate_series(1, 20) g ORDER BY c.id, g),
                              ARRAY(SELECT '2026-03-10'::timestamptz + g * interval '1 day' FROM cs.customers c, generate_series(1, 20) g ORDER BY c.id, g)) f;
SELECT cs.train_model('metric_churn', 'churn', 'SELECT features, label FROM train_rows', '{"num_round": 5, "seed": 1}') > 0 AS trained;
SELECT cardinality(feature_names) AS n, 'msg_7d' = ANY (feature_names) AS has_metric FROM cs.models WHERE name = 'metric_churn';
CREATE TEMP TABLE before_shift AS
SELECT c.id, cs.predict('metric_churn', cs.features(c.id, '2026-04-01 00:00+00')) AS p FROM cs.customers c;
INSERT INTO cs.usage_metrics (name, events, window_days, aggregate) VALUES ('aa_first_7d', '{login}', 7, 'count');
SELECT array_position(cs.feature_names(), 'msg_7d') AS msg_position_now;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE b.p = cs.predict('metric_churn', cs._pick_features(cs.features(b.id, '2026-04-01 00:00+00'),
                                                            cs._model_positions('metric_churn', cs.feature_names())))) AS same_by_name
  FROM before_shift b;
-- a vector of another layout is read by its own names
SELECT cs._model_positions('metric_churn', ARRAY['msg_7d', 'active_users_7d'])
       = ARRAY(SELECT CASE n WHEN 'msg_7d' THEN 1 WHEN 'active_users_7d' THEN 2 END
                 FROM unnest(feature_names) WITH ORDINALITY x(n, i) ORDER BY i) AS mapped
  FROM cs.models WHERE name = 'metric_churn';

-- readiness and applicability find the metrics by name in the stored vectors
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT feature, position > 36 AS after_catalog, source_table, present_share FROM cs.readiness_report()
 WHERE feature IN ('msg_7d', 'aa_first_7d') ORDER BY feature;
SELECT feature, present_share, usable FROM cs.model_applicability('metric_churn', 1)
 WHERE feature IN ('msg_7d', 'active_users_7d') ORDER BY feature;
SELECT feature, source_table, point_in_time FROM cs.feature_sources() WHERE feature = 'msg_7d';

-- propose_metrics: three event types, one without variance (every customer one ping a day).
DELETE FROM cs.usage_metrics WHERE ratio_of IS NOT NULL;
DELETE FROM cs.usage_metrics;
DELETE FROM cs.usage_events;
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT c.id, 'u', 'ping', '2026-03-01'::timestamptz + d * interval '1 day'
  FROM cs.customers c, generate_series(0, 27) d;
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT c.id, 'u', 'Send Message', '2026-03-01'::timestamptz + d * interval '1 day'
  FROM cs.customers c, generate_series(0, 27) d WHERE d % (1 + (c.external_id = 'm-a')::int * 2) = 0;
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT c.id, 'u', 'unfriend', '2026-03-01'::timestamptz + d * interval '1 day'
  FROM cs.customers c, generate_series(0, 27) d WHERE c.external_id IN ('m-a', 'm-b') AND d < 20 + (c.external_id = 'm-a')::int * 5;
SELECT name, definition, reason FROM cs.propose_metrics(0.05, 10) ORDER BY name;
SELECT count(*) AS added_again FROM cs.propose_metrics(0.05, 10);
SELECT name, events, window_days, aggregate, per, change FROM cs.usage_metrics ORDER BY name;
SELECT cs.propose_metrics(2, 10);
