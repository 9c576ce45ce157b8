-- Opportunities: upsell propensity and expected MRR, cross-sell by lift,
-- adoption, and refresh keeping what CSMs moved on.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- start without the shipped churn model: this test's scores must not depend on it
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 'o-a1', 'Upsell One',   'smb', 1000, 10, 'csm_a'),
 ('00000000-0000-0000-0000-0000000000a2', 'o-a2', 'Upsell Two',   'smb', 1000, 10, 'csm_a'),
 ('00000000-0000-0000-0000-0000000000a3', 'o-a3', 'Upsell Three', 'smb',  500, 10, 'csm_b'),
 ('00000000-0000-0000-0000-0000000000b1', 'o-b1', 'Prod One',   'smb', 100, NULL, 'csm_b'),
 ('00000000-0000-0000-0000-0000000000b2', 'o-b2', 'Prod Two',   'smb', 100, NULL, 'csm_b'),
 ('00000000-0000-0000-0000-0000000000b3', 'o-b3', 'Prod Three', 'smb', 100, NULL, 'csm_b'),
 ('00000000-0000-0000-0000-0000000000b4', 'o-b4', 'Prod Four',  'smb', 100, NULL, 'csm_b'),
 ('00000000-0000-0000-0000-0000000000b5', 'o-b5', 'Prod Five',  'smb', 100, NULL, 'csm_b'),
 ('00000000-0000-0000-0000-0000000000b6', 'o-b6', 'Prod Six',   'smb', 100, NULL, 'csm_b');

-- Feature vectors by hand: everything missing except what each case needs
-- (2 active_users_30d, 3 seat_utilisation, 5 feature_breadth_30d, 7 usage_trend_30d).
INSERT INTO cs.customer_features (customer_id, as_of, features)
SELECT id, '2026-04-01', array_fill('NaN'::float4, ARRAY[(SELECT count(*)::int FROM cs.feature_catalog)]) FROM cs.customers;
UPDATE cs.customer_features f SET features[2] = t.au, features[3] = t.util, features[5] = t.breadth, features[7] = t.trend
  FROM (VALUES ('o-a1', 12, 1.2, 6, 0.25), ('o-a2', 9, 0.9, 2, 0), ('o-a3', 10, 1.0, 3, 0.5)) t(ext, au, util, breadth, trend),
       cs.customers c
 WHERE c.external_id = t.ext AND f.customer_id = c.id;
INSERT INTO cs.customer_health_scores (customer_id, overall_score, band) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 0.80, 'green'),
 ('00000000-0000-0000-0000-0000000000a2', 0.50, 'yellow');

-- Products: core+analytics x3, core, core+support, support.  N = 6 customers,
-- n(core) = 5, n(analytics) = 3, n(support) = 2.
-- core -> analytics: 3 together, P(analytics|core) = 3/5 = 0.6, P(analytics) = 0.5, lift 1.2
-- core -> support: 1 together, below the support threshold of 2; same for support -> core.
INSERT INTO cs.subscriptions (customer_id, product, mrr, started_at) VALUES
 ('00000000-0000-0000-0000-0000000000b1', 'core', 100, '2025-01-01'), ('00000000-0000-0000-0000-0000000000b1', 'analytics', 100, '2025-01-01'),
 ('00000000-0000-0000-0000-0000000000b2', 'core', 100, '2025-01-01'), ('00000000-0000-0000-0000-0000000000b2', 'analytics', 200, '2025-01-01'),
 ('00000000-0000-0000-0000-0000000000b3', 'core', 100, '2025-01-01'), ('00000000-0000-0000-0000-0000000000b3', 'analytics', 300, '2025-01-01'),
 ('00000000-0000-0000-0000-0000000000b4', 'core', 100, '2025-01-01'),
 ('00000000-0000-0000-0000-0000000000b5', 'core', 100, '2025-01-01'), ('00000000-0000-0000-0000-0000000000b5', 'support', 50, '2025-01-01'),
 ('00000000-0000-0000-0000-0000000000b6', 'support', 50, '2025-01-01'),
 -- an ended subscription does not count
 ('00000000-0000-0000-0000-0000000000b6', 'analytics', 900, '2024-01-01');
UPDATE cs.subscriptions SET ended_at = '2024-06-01' WHERE mrr = 900;

SELECT cs.refresh_opportunities();

-- Upsell One: s_util = clamp((1.2 - 0.7) / 0.5) = 1, s_growth = 0.25 / 0.5 = 0.5, health 0.8:
--   score = 0.5 + 0.125 + 0.2 = 0.825; extra seats ceil(1.2 x 12) - 10 = 5 at 1000/10 = 100:
--   expected 5 x 100 x 0.825 = 412.50.
-- Upsell Two (neighbour): s_util = 0.4, no growth, health 0.5: 0.2 + 0 + 0.125 = 0.325 < 0.5, no upsell;
--   adoption 2 of a catalogue of 6 features = 0.333 < 0.5: adoption opportunity, score 0.667.
-- Upsell Three: s_util 0.6, s_growth 1, health unknown 0.5: 0.3 + 0.25 + 0.125 = 0.675;
--   extra seats 12 - 10 = 2 at 50: 2 x 50 x 0.675 = 67.50; adoption 3/6 = 0.5 is not below 0.5.
-- Prod Four and Prod Five lack analytics: core -> analytics, score 0.6,
--   expected mean analytics MRR (100+200+300)/3 = 200 x 0.6 = 120.00.  Prod Six has only
--   support, whose pairs lack support: nothing.
SELECT c.external_id, o.kind, o.score, o.expected_mrr, o.product, o.reasons, o.status, o.source
  FROM cs.opportunities o JOIN cs.customers c ON c.id = o.customer_id
 ORDER BY 1, 2;

-- A CSM works on Upsell One's upsell and enters an opportunity by hand: refresh keeps both
-- and does not raise a second upsell for Upsell One; the other open ones are regenerated.
UPDATE cs.opportunities SET status = 'in_progress'
 WHERE customer_id = '00000000-0000-0000-0000-0000000000a1' AND kind = 'upsell';
INSERT INTO cs.opportunities (customer_id, kind, score, expected_mrr, reasons)
VALUES ('00000000-0000-0000-0000-0000000000a2', 'expansion', 0.9, 5000, '{"note": "new division"}');
SELECT cs.refresh_opportunities();
SELECT c.external_id, o.kind, o.score, o.expected_mrr, o.product, o.status, o.source
  FROM cs.opportunities o JOIN cs.customers c ON c.id = o.customer_id
 ORDER BY 1, 2;

-- Refresh of one customer leaves the others alone; a worse utilisation removes its upsell.
UPDATE cs.customer_features SET features[3] = 0.5, features[2] = 5
 WHERE customer_id = '00000000-0000-0000-0000-0000000000a3';
SELECT cs.refresh_opportunities(ARRAY['00000000-0000-0000-0000-0000000000a3']::uuid[]);
SELECT c.external_id, o.kind, o.status, o.source
  FROM cs.opportunities o JOIN cs.customers c ON c.id = o.customer_id
 ORDER BY 1, 2;

-- Churned customers get no opportunities (2 written: Upsell Two's adoption, Prod Five's cross-sell).
UPDATE cs.customers SET churned_at = '2026-03-01' WHERE external_id = 'o-b4';
SELECT cs.refresh_opportunities();
SELECT count(*) FROM cs.opportunities o JOIN cs.customers c ON c.id = o.customer_id WHERE c.external_id = 'o-b4';

-- the refresh hook: cs.refresh regenerates opportunities too.  Prod Four's churn took it
-- out of the population: N = 5, n(core) = 4, 3 with both: P(analytics|core) = 0.75,
-- lift 0.75 / (3/5) = 1.25, so Prod Five's cross-sell score is now 0.750.
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-0000000000b5']::uuid[]);
SELECT c.external_id, o.kind, o.product, o.score FROM cs.opportunities o JOIN cs.customers c ON c.id = o.customer_id
 WHERE c.external_id = 'o-b5';

-- cross-sell statistics are taken by full refreshes and reused by partial ones:
-- a new subscription (Prod Five takes analytics: 4 of the 5 have core and
-- analytics) changes them only at the next full refresh
SELECT product_a, product_b, n_ab, round(confidence::numeric, 3) AS confidence, round(lift::numeric, 3) AS lift, n_b, mean_mrr_b
  FROM cs.cross_sell_stats ORDER BY 1, 2;
SELECT computed_at AS stats_at FROM cs.cross_sell_stats LIMIT 1 \gset
INSERT INTO cs.subscriptions (customer_id, product, mrr, started_at)
SELECT id, 'analytics', 500, '2024-01-01' FROM cs.customers WHERE external_id = 'o-b5';
SELECT cs.refresh_opportunities(ARRAY['00000000-0000-0000-0000-0000000000b5']::uuid[]) > 0 AS partial_refreshed;
SELECT count(*) AS unchanged FROM cs.cross_sell_stats WHERE computed_at = :'stats_at';
SELECT cs.refresh_opportunities() > 0 AS full_refreshed;
SELECT product_a, product_b, n_ab, round(confidence::numeric, 3) AS confidence, round(lift::numeric, 3) AS lift, n_b
  FROM cs.cross_sell_stats ORDER BY 1, 2;

-- so is the adoption catalogue: the largest feature breadth in the feature
-- store, which a partial refresh does not retake
SELECT a.catalogue, a.catalogue = (SELECT max(features[5]) FILTER (WHERE features[5] <> 'NaN')
                                     FROM cs.customer_features) AS is_max
  FROM cs.adoption_stats a;
SELECT computed_at AS adoption_at FROM cs.adoption_stats \gset
SELECT cs.refresh_opportunities(ARRAY['00000000-0000-0000-0000-0000000000b5']::uuid[]) > 0 AS partial_refreshed;
SELECT count(*) AS unchanged FROM cs.adoption_stats WHERE computed_at = :'adoption_at';

-- cs.feature_map (C) against its definition in SQL: every catalog name, NaN,
-- missing positions and NULL elements as JSON null, numbers as to_jsonb(real)
SELECT coalesce(cardinality(v), -1) AS length, left(v::text, 20) AS head,
       cs.feature_map(v) = (SELECT coalesce(jsonb_object_agg(fc.name, CASE WHEN v[fc.position] IS NULL
                                                                      OR v[fc.position] = 'NaN' THEN NULL
                                                                 ELSE to_jsonb(v[fc.position]) END), '{}')
                              FROM cs.feature_catalog fc) AS same,
       jsonb_typeof(cs.feature_map(v) -> 'active_users_7d') AS first
  FROM (VALUES (ARRAY[1.5, 'NaN', 3e-7, -0.1, 123456.79]::float4[]),
               ('{}'::float4[]),
               (ARRAY[NULL, 2]::float4[]),
               (NULL::float4[]),
               ((SELECT array_agg((x / 3.0)::float4) FROM generate_series(1, 40) x))) t(v)
 ORDER BY 1;
SELECT count(*) AS keys FROM jsonb_object_keys(cs.feature_map('{}'));
