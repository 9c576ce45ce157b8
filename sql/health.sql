-- Health score: profile validation, worked examples, missing-weight redistribution,
-- drivers, percentile normalisation, history and trend.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- start without the shipped churn model: this test's scores must not depend on it
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

-- profile validation: each bad profile is refused with a clear error, nothing is written
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad1', '{"usage": {"weight": -1, "measures": {"seat_utilisation": 1}}}', '{"seat_utilisation": {"method": "thresholds", "thresholds": [0, 1], "scores": [0, 1]}}');
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad2', '{"usage": {"weight": 0, "measures": {"seat_utilisation": 1}}}', '{"seat_utilisation": {"method": "thresholds", "thresholds": [0, 1], "scores": [0, 1]}}');
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad3', '{"vibes": {"weight": 1, "measures": {"seat_utilisation": 1}}}', '{}');
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad4', '{"usage": {"weight": 1, "measures": {"logins_per_moon": 1}}}', '{}');
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad5', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 1}}}', '{}');
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad6', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 1}}}', '{"seat_utilisation": {"method": "thresholds", "thresholds": [1, 0], "scores": [0, 1]}}');
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad7', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 1}}}', '{"seat_utilisation": {"method": "thresholds", "thresholds": [0, 1], "scores": [0, 2]}}');
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad8', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 0}}}', '{"seat_utilisation": {"method": "thresholds", "thresholds": [0, 1], "scores": [0, 1]}}');
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad9', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 1}}}', '{"seat_utilisation": {"method": "percentile"}}');
INSERT INTO cs.health_profiles (name, weights, bands, normalisation) VALUES ('bad10', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 1}}}', '{"red": 0.8, "yellow": 0.5}', '{"seat_utilisation": {"method": "thresholds", "thresholds": [0, 1], "scores": [0, 1]}}');
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad11', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 1}}}', '{"seat_utilisation": {"method": "magic"}}');
INSERT INTO cs.health_profiles (name, weights, normalisation) VALUES ('bad12', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 1}}}', '{"seat_utilisation": {"method": "thresholds", "thresholds": ["a", 1], "scores": [0, 1]}}');
SELECT name, segment, version FROM cs.health_profiles ORDER BY name;
-- One reader: the trigger checks with cs._check_health_profile, which parses a
-- profile as the scorer does (ParseProfile); it accepts the shipped profiles and
-- refuses a bad one with the trigger's error
SELECT name, cs._check_health_profile(name, weights, bands, normalisation) AS ok
  FROM cs.health_profiles ORDER BY name;
SELECT cs._check_health_profile('bad6', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 1}}}', '{"red": 0.4, "yellow": 0.7}',
                                '{"seat_utilisation": {"method": "thresholds", "thresholds": [1, 0], "scores": [0, 1]}}');
SELECT cs._check_health_profile('bad13', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 1}}}', NULL,
                                '{"seat_utilisation": {"method": null}}');
-- thresholds given as numeric strings are numbers, as jsonb_array_elements_text(..)::float8 reads them
SELECT cs._check_health_profile('strings', '{"usage": {"weight": 1, "measures": {"seat_utilisation": 1}}}', '{"red": 0.4, "yellow": 0.7}',
                                '{"seat_utilisation": {"method": "thresholds", "thresholds": ["0", " 1e0 "], "scores": [0, "1"]}}') AS ok;
-- the percentile measures the population refresh takes come from the same parser:
-- those of a jsonb walk over every profile's measures, whatever their weight
SELECT * FROM cs._profile_percentile_measures() ORDER BY 1;
WITH walk AS (SELECT DISTINCT mm.key AS measure, fc.position
                FROM cs.health_profiles p
               CROSS JOIN LATERAL jsonb_each(p.weights) g
               CROSS JOIN LATERAL jsonb_each(g.value -> 'measures') mm
                JOIN cs.feature_catalog fc ON fc.name = mm.key
               WHERE p.normalisation -> mm.key ->> 'method' = 'percentile'),
     parsed AS (SELECT * FROM cs._profile_percentile_measures())
SELECT (SELECT count(*) FROM walk) AS measures,
       (SELECT count(*) FROM ((SELECT * FROM walk EXCEPT SELECT * FROM parsed)
                              UNION ALL (SELECT * FROM parsed EXCEPT SELECT * FROM walk)) d) AS differing;

-- A simple default profile whose scores can be worked out by hand.
UPDATE cs.health_profiles SET
  weights = '{"usage": {"weight": 0.5, "measures": {"seat_utilisation": 1}},
              "support": {"weight": 0.25, "measures": {"tickets_30d": 1}},
              "payment": {"weight": 0.25, "measures": {"days_overdue": 1}},
              "engagement": {"weight": 0, "measures": {"last_nps": 1}}}',
  bands = '{"red": 0.5, "yellow": 0.75}',
  normalisation = '{"seat_utilisation": {"method": "thresholds", "thresholds": [0, 1], "scores": [0, 1]},
                    "tickets_30d": {"method": "thresholds", "thresholds": [0, 4], "scores": [1, 0]},
                    "days_overdue": {"method": "thresholds", "thresholds": [0, 30], "scores": [1, 0]},
                    "last_nps": {"method": "thresholds", "thresholds": [0, 10], "scores": [0, 1]}}'
WHERE name = 'default';
-- a bad update is refused and leaves the profile as it was
UPDATE cs.health_profiles SET bands = '{"red": 2, "yellow": 3}' WHERE name = 'default';
SELECT name, version, bands FROM cs.health_profiles WHERE name = 'default';

INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm) VALUES
 ('00000000-0000-0000-0000-00000000000a', 'h-a', 'Alpha', 'smb', 500, 10, 'csm_01'),
 ('00000000-0000-0000-0000-00000000000b', 'h-b', 'Beta',  'smb', 300, NULL, 'csm_01'),
 ('00000000-0000-0000-0000-0000000000e1', 'h-e1', 'Ent One', 'enterprise', 9000, 100, 'csm_02'),
 ('00000000-0000-0000-0000-0000000000e2', 'h-e2', 'Ent Two', 'enterprise', 9000, 100, 'csm_02'),
 ('00000000-0000-0000-0000-0000000000e3', 'h-e3', 'Ent Three', 'enterprise', 9000, 100, 'csm_02');
-- Alpha: 3 of 10 seats active, 2 tickets in 30 days, an invoice 17 days overdue on 2026-04-01
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at) VALUES
 ('00000000-0000-0000-0000-00000000000a', 'u1', 'session', '2026-03-30'),
 ('00000000-0000-0000-0000-00000000000a', 'u2', 'session', '2026-03-28'),
 ('00000000-0000-0000-0000-00000000000a', 'u3', 'session', '2026-03-12');
INSERT INTO cs.support_tickets (customer_id, opened_at) VALUES
 ('00000000-0000-0000-0000-00000000000a', '2026-03-20'), ('00000000-0000-0000-0000-00000000000a', '2026-03-25');
INSERT INTO cs.invoices (customer_id, amount, issued_at, due_date) VALUES
 ('00000000-0000-0000-0000-00000000000a', 500, '2026-03-01', '2026-03-15');

-- Alpha: usage 0.3; support 1 - 2/4 = 0.5; payment 1 - 17/30 = 0.433;
-- overall 0.5*0.3 + 0.25*0.5 + 0.25*0.433 = 0.383 -> 0.38, red.  Drivers by
-- impact: seat_utilisation 0.5*0.7 = 0.35, days_overdue 0.25*0.567 = 0.1417, tickets_30d 0.125.
-- Beta: no usage and no invoices (missing), no tickets: support 1.0 carries all the
-- weight; usage's 0.5 and payment's 0.25 are redistributed (0.75), overall 1.00, green.
SELECT c.external_id, h.overall_score, h.usage_score, h.engagement_score, h.support_score, h.payment_score,
       h.band, h.version, h.drivers
  FROM cs.compute_health(ARRAY['00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b']::uuid[],
                         '2026-04-01 00:00+00') h
  JOIN cs.customers c ON c.id = h.customer_id
 ORDER BY 1;

-- The scorer reads a stored profile with the same parser: one written behind the
-- trigger's back fails scoring with the error the trigger gives its author.
BEGIN;
ALTER TABLE cs.health_profiles DISABLE TRIGGER health_profiles_validate;
UPDATE cs.health_profiles SET bands = '{"red": 2, "yellow": 3}' WHERE name = 'default';
SELECT count(*) FROM cs.compute_health(ARRAY['00000000-0000-0000-0000-00000000000a']::uuid[], '2026-04-01 00:00+00');
ROLLBACK;
-- A measure the feature catalog no longer has is refused on write but left out of
-- scoring, as the join with the catalog left it out (Alpha: no usage group at all).
BEGIN;
UPDATE cs.feature_catalog SET name = 'seat_utilisation_v0' WHERE name = 'seat_utilisation';
SELECT h.overall_score, h.usage_score, h.support_score, h.payment_score, h.drivers -> 'missing' AS missing
  FROM cs.compute_health(ARRAY['00000000-0000-0000-0000-00000000000a']::uuid[], '2026-04-01 00:00+00') h;
SELECT cs._check_health_profile(name, weights, bands, normalisation) FROM cs.health_profiles WHERE name = 'default';
ROLLBACK;

-- Percentile normalisation within the segment: enterprise profile scores tickets_30d by
-- rank (lower is better) among the enterprise vectors in the feature store: 0, 1 and 2
-- tickets rank 1/6, 3/6, 5/6 -> scores 0.83, 0.50, 0.17.
UPDATE cs.health_profiles SET
  weights = '{"support": {"weight": 1, "measures": {"tickets_30d": 1}}}',
  normalisation = '{"tickets_30d": {"method": "percentile", "direction": "lower_is_better"}}'
WHERE name = 'enterprise';
INSERT INTO cs.customer_features (customer_id, as_of, features)
SELECT id, '2026-04-01', array_fill('NaN'::float4, ARRAY[(SELECT count(*)::int FROM cs.feature_catalog)])
  FROM cs.customers WHERE segment = 'enterprise';
UPDATE cs.customer_features f SET features[11] = t.n
  FROM (VALUES ('h-e1', 0), ('h-e2', 1), ('h-e3', 2)) t(ext, n), cs.customers c
 WHERE c.external_id = t.ext AND f.customer_id = c.id;
SELECT c.external_id, h.overall_score, h.support_score, h.band, h.version
  FROM cs.compute_health(ARRAY(SELECT id FROM cs.customers WHERE segment = 'enterprise')) h
  JOIN cs.customers c ON c.id = h.customer_id ORDER BY 1;
-- the same ranks from the populations a full refresh stores for partial refreshes
SELECT cs._refresh_health_populations();
SELECT segment, measure, sorted FROM cs.health_populations ORDER BY 1, 2;
SELECT c.external_id, h.overall_score, h.support_score, h.band, h.version
  FROM cs.compute_health(ARRAY(SELECT id FROM cs.customers WHERE segment = 'enterprise')) h
  JOIN cs.customers c ON c.id = h.customer_id ORDER BY 1;

-- cs.health_score computes now from current signals; unknown ids are an error
SELECT (cs.health_score('00000000-0000-0000-0000-00000000000b')).overall_score AS beta_now;
SELECT cs.health_score('00000000-0000-0000-0000-0000000000ff');
SELECT cs.health_score(NULL);

-- History: every refresh appends; trend against 7 and 30 days ago; sparkline.
INSERT INTO cs.customer_health_scores (customer_id, overall_score, calculated_at, version, band)
SELECT '00000000-0000-0000-0000-00000000000b', s, now() - make_interval(days => d), 'default:v1', 'green'
  FROM (VALUES (0.20, 70), (0.40, 35), (0.90, 8)) v(s, d);
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-00000000000b'::uuid]);
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-00000000000b'::uuid]);
SELECT count(*) AS history_rows FROM cs.customer_health_scores WHERE customer_id = '00000000-0000-0000-0000-00000000000b';
SELECT external_id, overall_score, band, trend_7d, trend_30d, trend_arrow, sparkline, top_driver, churn_risk
  FROM cs.account_health_overview WHERE external_id = 'h-b';
SELECT grain, segment, overall_score, customers
  FROM cs.health_trends WHERE week = date_trunc('week', now())::date AND grain = 'segment' ORDER BY segment;
-- the sparkline (one range scan) equals, for every customer, the latest score at
-- or before each of the 12 week ends, looked up one by one; a history of 140 days
-- with gaps, and one whose oldest scores are older than the 12 weeks
INSERT INTO cs.customer_health_scores (customer_id, overall_score, calculated_at, version, band)
SELECT '00000000-0000-0000-0000-00000000000a', (('x' || left(md5(d::text), 4))::bit(16)::int % 101) / 100.0,
       now() - make_interval(days => d, hours => d % 5), 'default:v1', 'green'
  FROM generate_series(1, 140) d WHERE d % 9 NOT IN (0, 4) OR d > 100;
SELECT o.external_id, o.sparkline = (SELECT string_agg(cs.spark((SELECT p.overall_score FROM cs.customer_health_scores p
                                                               WHERE p.customer_id = o.customer_id
                                                                 AND p.calculated_at <= o.calculated_at - make_interval(weeks => w)
                                                               ORDER BY p.calculated_at DESC LIMIT 1)), '' ORDER BY w DESC)
                                      FROM generate_series(0, 11) w) AS same, length(o.sparkline) AS glyphs
  FROM cs.account_health_overview o WHERE o.calculated_at IS NOT NULL ORDER BY 1;

-- every view column has a comment
SELECT c.relname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'cs' AND c.relkind = 'v' AND a.attnum > 0 AND col_description(c.oid, a.attnum) IS NULL
 ORDER BY 1, 2;
