-- Point in time for real: contract facts from the term history, the customer's
-- start from its real history (never created_at), training membership, health
-- as of a past date with the populations of then, the weekly backfill, and
-- segments in the user's own words.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- start without the shipped churn model: nothing here depends on it
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

------------------------------------------------------------------------------
-- Monthly terms (28 to 31 days): three survivors, three churners whose final
-- term ends when they churn.  Every customer also has its current (or final)
-- term in cs.customers, as a CRM export gives it, and created_at left at the
-- load time.
------------------------------------------------------------------------------
INSERT INTO cs.customers (id, external_id, name, segment, seats_licensed, contract_start_date, contract_end_date, churned_at)
SELECT ('00000000-0000-0000-0000-0000000000' || k)::uuid, 'm-' || k, 'Monthly ' || k, 'prosumer', 5,
       date_trunc('month', e - 1)::date, e, CASE WHEN k LIKE 'c%' THEN e END
  FROM (VALUES ('a1', date '2026-01-01'), ('a2', '2026-01-01'), ('a3', '2026-01-01'),
               ('c1', '2025-07-01'), ('c2', '2025-08-01'), ('c3', '2025-09-01')) t(k, e);
INSERT INTO cs.contract_terms (customer_id, term_start, term_end, mrr)
SELECT c.id, m::date, (m + interval '1 month')::date, 20
  FROM cs.customers c
 CROSS JOIN generate_series(timestamp '2025-01-01', timestamp '2025-12-01', interval '1 month') m
 WHERE c.external_id LIKE 'm-%' AND m::date < c.contract_end_date;
-- activity: one user every few days, a different rhythm per customer, until churn
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT c.id, 'u' || (extract(day FROM d)::int % 3), 'session', d + interval '9 hours'
  FROM cs.customers c
 CROSS JOIN generate_series(timestamp '2025-01-02', timestamp '2025-12-31', interval '1 day') d
 WHERE c.external_id LIKE 'm-%' AND d::date < coalesce(c.churned_at, '2026-01-01')
   AND extract(doy FROM d)::int % (2 + ascii(right(c.external_id, 1)) % 4) = 0;
SELECT external_id, count(*) AS terms, min(term_end - term_start) AS shortest, max(term_end - term_start) AS longest
  FROM cs.contract_terms t JOIN cs.customers c ON c.id = t.customer_id
 GROUP BY 1 ORDER BY 1;

-- The load triggers keep each customer's first activity (the earliest stamp);
-- created_at is the load time, later than all of it.
SELECT external_id, first_seen_at, created_at > first_seen_at AS loaded_later
  FROM cs.customers WHERE external_id LIKE 'm-%' ORDER BY 1;

-- At observation dates with a 30-day horizon, churners (label 1) and survivors
-- (label 0) show the same days_to_renewal: the days left in the monthly term in
-- force; a churner's final term is a term like any other.
SELECT t.as_of::date AS observed, t.label, array_agg(DISTINCT t.features[26] ORDER BY t.features[26]) AS days_to_renewal,
       count(*) AS customers
  FROM cs.build_training_set(ARRAY['2025-03-20', '2025-06-10', '2025-07-10', '2025-08-10']::date[], '30 days') t
  JOIN cs.customers c ON c.id = t.customer_id AND c.external_id LIKE 'm-%'
 GROUP BY 1, 2 ORDER BY 1, 2;
-- the two groups' value sets, per date with churners, are equal
WITH t AS (SELECT t.as_of, t.label, t.features[26] AS v
             FROM cs.build_training_set(ARRAY['2025-06-10', '2025-07-10', '2025-08-10']::date[], '30 days') t
             JOIN cs.customers c ON c.id = t.customer_id AND c.external_id LIKE 'm-%')
SELECT as_of::date AS observed,
       array_agg(DISTINCT v) FILTER (WHERE label = 1) = array_agg(DISTINCT v) FILTER (WHERE label = 0) AS same_values
  FROM t GROUP BY 1 ORDER BY 1;
-- every day of a churner's final term reads like the same day of a survivor's term
SELECT d::date AS day,
       (cs.features('00000000-0000-0000-0000-0000000000c1', d))[26] AS churner,
       (cs.features('00000000-0000-0000-0000-0000000000a1', d))[26] AS survivor
  FROM generate_series(timestamptz '2025-06-01', '2025-06-30', interval '29 days') d ORDER BY 1;

------------------------------------------------------------------------------
-- Tenure from the real start, whatever created_at says
------------------------------------------------------------------------------
INSERT INTO cs.customers (id, external_id, name, segment) VALUES
 ('00000000-0000-0000-0000-0000000000b1', 't-now', 'Loaded today', 'prosumer');
INSERT INTO cs.customers (id, external_id, name, segment, created_at) VALUES
 ('00000000-0000-0000-0000-0000000000b2', 't-old', 'Created long ago', 'prosumer', '2020-01-01'),
 ('00000000-0000-0000-0000-0000000000b3', 't-none', 'No history at all', NULL, '2020-01-01');
-- a newer event first, then the history from before: first_seen_at goes down only
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT id, 'u1', 'session', '2025-06-01 10:00+00' FROM cs.customers WHERE external_id IN ('t-now', 't-old');
SELECT external_id, first_seen_at FROM cs.customers WHERE external_id LIKE 't-%' ORDER BY 1;
SELECT generation AS generation_before FROM cs.dirty_customers WHERE customer_id = '00000000-0000-0000-0000-0000000000b1' \gset
SELECT updated_at AS updated_before FROM cs.customers WHERE external_id = 't-now' \gset
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT id, 'u1', 'session', '2025-03-05 10:00+00' FROM cs.customers WHERE external_id IN ('t-now', 't-old');
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT id, 'u2', 'session', '2025-07-01 10:00+00' FROM cs.customers WHERE external_id IN ('t-now', 't-old');
-- lowered by the older load, kept by the newer; the row's updated_at is not
-- touched, and each load marks the customer once (two loads: two marks, not
-- another for the update of first_seen_at)
SELECT c.external_id, c.first_seen_at, c.updated_at = :'updated_before' AS updated_at_kept,
       d.generation - :generation_before AS marks
  FROM cs.customers c JOIN cs.dirty_customers d ON d.customer_id = c.id
 WHERE c.external_id = 't-now';
-- the same tenure for both (2025-06-10 - 2025-03-05 = 97 days), none without a start
SELECT c.external_id, (cs.features(c.id, '2025-06-10 00:00+00'))[25] AS tenure_days
  FROM cs.customers c WHERE c.external_id LIKE 't-%' ORDER BY 1;
-- before any known fact, no tenure
SELECT (cs.features('00000000-0000-0000-0000-0000000000b2', '2025-03-01 00:00+00'))[25] AS tenure_before_start;

-- A customer loaded today with history from a year before is a customer at a
-- date long before it was loaded; one with no known start is in no training
-- set, and a NOTICE says how many were skipped and where a start comes from.
SET client_min_messages = notice;
SELECT c.external_id, t.label
  FROM cs.build_training_set(ARRAY['2025-06-10']::date[], '30 days') t
  JOIN cs.customers c ON c.id = t.customer_id
 WHERE c.external_id LIKE 't-%' ORDER BY 1;
SET client_min_messages = warning;

------------------------------------------------------------------------------
-- Features at a past date ignore terms that start later
------------------------------------------------------------------------------
INSERT INTO cs.customers (id, external_id, name, segment, contract_start_date, contract_end_date) VALUES
 ('00000000-0000-0000-0000-0000000000d1', 'p-terms', 'Half year then annual', 'prosumer', '2025-07-01', '2026-07-01'),
 ('00000000-0000-0000-0000-0000000000d2', 'p-contract', 'Current contract only', 'prosumer', '2025-05-01', '2026-05-01'),
 ('00000000-0000-0000-0000-0000000000d3', 'p-later', 'Terms from September', NULL, NULL, NULL);
INSERT INTO cs.contract_terms (customer_id, term_start, term_end) VALUES
 ('00000000-0000-0000-0000-0000000000d1', '2025-01-01', '2025-07-01'),
 ('00000000-0000-0000-0000-0000000000d3', '2025-09-01', '2025-10-01');
-- p-terms on 2025-03-01: 122 days to the end of the half-year term in force,
-- tenure 59; p-contract: its contract had not begun, so nothing is known (no
-- earlier term of the same length is invented), and p-later is not a customer yet
SELECT c.external_id, f.features[25] AS tenure_days, f.features[26] AS days_to_renewal
  FROM cs.compute_features(ARRAY(SELECT id FROM cs.customers WHERE external_id LIKE 'p-%'), '2025-03-01 00:00+00') f
  JOIN cs.customers c ON c.id = f.customer_id ORDER BY 1;
-- the renewal, loaded afterwards, changes nothing at that date ...
INSERT INTO cs.contract_terms (customer_id, term_start, term_end) VALUES
 ('00000000-0000-0000-0000-0000000000d1', '2025-07-01', '2026-07-01');
SELECT c.external_id, f.features[25] AS tenure_days, f.features[26] AS days_to_renewal
  FROM cs.compute_features(ARRAY(SELECT id FROM cs.customers WHERE external_id LIKE 'p-%'), '2025-03-01 00:00+00') f
  JOIN cs.customers c ON c.id = f.customer_id ORDER BY 1;
-- ... and is the term in force once it has begun; the current contract counts
-- once it has begun; p-later's term has ended and nothing follows it
SELECT c.external_id, f.features[25] AS tenure_days, f.features[26] AS days_to_renewal
  FROM cs.compute_features(ARRAY(SELECT id FROM cs.customers WHERE external_id LIKE 'p-%'), '2025-11-01 00:00+00') f
  JOIN cs.customers c ON c.id = f.customer_id ORDER BY 1;

------------------------------------------------------------------------------
-- Segments in the user's own words: any text; a profile where one is defined
-- for that text, the default profile otherwise
------------------------------------------------------------------------------
INSERT INTO cs.customers (id, external_id, name, segment) VALUES
 ('00000000-0000-0000-0000-0000000000e1', 's-team', 'Team plan', 'team plan (EU)');
SELECT (cs.health_score('00000000-0000-0000-0000-0000000000e1')).version AS team_plan_profile,
       (cs.health_score('00000000-0000-0000-0000-0000000000a1')).version AS prosumer_profile;
INSERT INTO cs.health_profiles (name, segment, weights, normalisation) VALUES
 ('prosumer', 'prosumer',
  '{"usage": {"weight": 1, "measures": {"active_days_30d": 1, "days_since_last_activity": 1}}}',
  '{"active_days_30d": {"method": "percentile", "direction": "higher_is_better"},
    "days_since_last_activity": {"method": "thresholds", "thresholds": [0, 30], "scores": [1, 0]}}');
SELECT (cs.health_score('00000000-0000-0000-0000-0000000000e1')).version AS team_plan_profile,
       (cs.health_score('00000000-0000-0000-0000-0000000000a1')).version AS prosumer_profile;

------------------------------------------------------------------------------
-- Health as of a past date equals the health a refresh stored then, even after
-- a later refresh has retaken the percentile populations
------------------------------------------------------------------------------
SELECT cs._refresh_customers(NULL, '2025-06-10 00:00+00') AS june_vectors;
SELECT cs._refresh_customers(NULL, '2025-08-10 00:00+00') AS august_vectors;
WITH stored AS (SELECT * FROM cs.customer_health_scores WHERE calculated_at = '2025-06-10 00:00+00'),
     asof AS (SELECT * FROM cs.compute_health(NULL, '2025-06-10 00:00+00'))
SELECT count(a.customer_id) AS compared,
       count(*) FILTER (WHERE a.customer_id IS NOT NULL
                          AND (s.overall_score, s.usage_score, s.engagement_score, s.support_score, s.payment_score,
                               s.version, s.band, s.drivers)
                              IS DISTINCT FROM
                              (a.overall_score, a.usage_score, a.engagement_score, a.support_score, a.payment_score,
                               a.version, a.band, a.drivers)) AS differing,
       array_agg(c.external_id ORDER BY c.external_id) FILTER (WHERE a.customer_id IS NULL) AS not_customers_then
  FROM stored s LEFT JOIN asof a USING (customer_id) JOIN cs.customers c ON c.id = s.customer_id;
-- one customer through cs.health_score(customer, as_of)
SELECT (h).overall_score = s.overall_score AND (h).drivers = s.drivers AS same_as_stored, (h).version
  FROM (SELECT cs.health_score('00000000-0000-0000-0000-0000000000a2', '2025-06-10 00:00+00') AS h) x,
       cs.customer_health_scores s
 WHERE s.customer_id = '00000000-0000-0000-0000-0000000000a2' AND s.calculated_at = '2025-06-10 00:00+00';
-- not vacuous: the June vectors ranked within today's (August) populations differ
SELECT count(*) FILTER (WHERE (x.h).overall_score IS DISTINCT FROM s.overall_score) > 0 AS august_ranks_differ
  FROM (SELECT f.customer_id, cs._health_of(f.customer_id, c.segment, f.features, '2025-06-10 00:00+00') AS h
          FROM cs.compute_features(NULL, '2025-06-10 00:00+00') f JOIN cs.customers c ON c.id = f.customer_id) x
  JOIN cs.customer_health_scores s ON s.customer_id = x.customer_id AND s.calculated_at = '2025-06-10 00:00+00';
-- only admins ask for a past date (it ranks among every customer)
SET ROLE cscopilot_viewer;
SELECT cs.health_score('00000000-0000-0000-0000-0000000000a2', '2025-06-10 00:00+00');
RESET ROLE;
SELECT cs.health_score('00000000-0000-0000-0000-0000000000a2', NULL);
SELECT cs.health_score('00000000-0000-0000-0000-0000000000ff', '2025-06-10 00:00+00');

------------------------------------------------------------------------------
-- The weekly backfill: one row per week and customer active then, the health
-- as of that week; a second call adds nothing
------------------------------------------------------------------------------
SELECT cs.backfill_health(0);
SELECT cs.backfill_health(3) = 3 * (SELECT count(*) FROM cs._customer_starts() s JOIN cs.customers c ON c.id = s.customer_id
                                     WHERE s.started_at IS NOT NULL AND c.churned_at IS NULL) AS one_per_week_and_customer;
SELECT cs.backfill_health(3) AS second_call;
SELECT count(DISTINCT calculated_at) AS weeks,
       bool_and(extract(isodow FROM calculated_at) = 1 AND calculated_at::time = '00:00') AS mondays
  FROM cs.customer_health_scores WHERE calculated_at > '2025-08-10 00:00+00';
-- each backfilled row is the health as of its week
WITH w AS (SELECT max(calculated_at) AS d FROM cs.customer_health_scores)
SELECT count(*) AS compared,
       count(*) FILTER (WHERE (s.overall_score, s.band, s.drivers) IS DISTINCT FROM (a.overall_score, a.band, a.drivers)) AS differing
  FROM w, cs.customer_health_scores s
  JOIN LATERAL cs.compute_health(ARRAY[s.customer_id], s.calculated_at) a ON true
 WHERE s.calculated_at = w.d;
