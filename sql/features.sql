-- Feature store: catalog, point-in-time correctness, NaN for missing data, the dirty queue and refresh.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- start without the shipped churn model: this test's scores must not depend on it
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

SELECT count(*) AS features, min(position), max(position) FROM cs.feature_catalog;

INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm, contract_start_date, contract_end_date) VALUES
 ('00000000-0000-0000-0000-00000000000a', 'f-a', 'Alpha', 'smb', 500, 10, 'csm_01', '2025-06-01', '2026-05-31'),
 ('00000000-0000-0000-0000-00000000000b', 'f-b', 'Beta',  'smb', 300, 5,  'csm_01', NULL, NULL);

-- Alpha: 3 users; 2 active in the last week, 1 more 20 days ago; 4 events 40 days ago
INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at) VALUES
 ('00000000-0000-0000-0000-00000000000a', 'u1', 'session', 'reports',   5, '2026-03-30 10:00+00'),
 ('00000000-0000-0000-0000-00000000000a', 'u2', 'session', 'dashboards',3, '2026-03-28 10:00+00'),
 ('00000000-0000-0000-0000-00000000000a', 'u3', 'session', 'reports',   2, '2026-03-12 10:00+00'),
 ('00000000-0000-0000-0000-00000000000a', 'u1', 'session', 'reports',  20, '2026-02-20 10:00+00'),
 -- a future event (after as_of) must not count
 ('00000000-0000-0000-0000-00000000000a', 'u9', 'session', 'admin',   100, '2026-04-05 10:00+00');
INSERT INTO cs.support_tickets (customer_id, opened_at, closed_at, priority, status, csat) VALUES
 ('00000000-0000-0000-0000-00000000000a', '2026-03-20', '2026-03-21', 'high',   'closed', 4),
 ('00000000-0000-0000-0000-00000000000a', '2026-03-25', NULL,         'urgent', 'open',   NULL),
 ('00000000-0000-0000-0000-00000000000a', '2026-01-10', '2026-01-12', 'normal', 'closed', 2);
INSERT INTO cs.invoices (customer_id, amount, issued_at, due_date, paid_at, status) VALUES
 ('00000000-0000-0000-0000-00000000000a', 500, '2026-02-01', '2026-02-15', '2026-02-20', 'paid'),
 ('00000000-0000-0000-0000-00000000000a', 500, '2026-03-01', '2026-03-15', NULL, 'open');
INSERT INTO cs.engagements (customer_id, kind, occurred_at) VALUES
 ('00000000-0000-0000-0000-00000000000a', 'qbr', '2026-03-01'),
 ('00000000-0000-0000-0000-00000000000a', 'email', '2026-03-25');
INSERT INTO cs.nps_responses (customer_id, score, responded_at) VALUES
 ('00000000-0000-0000-0000-00000000000a', 9, '2025-12-01'),
 ('00000000-0000-0000-0000-00000000000a', 6, '2026-03-01');
INSERT INTO cs.contacts (customer_id, name, is_champion, left_at) VALUES
 ('00000000-0000-0000-0000-00000000000a', 'Chris', true, '2026-03-10'),
 ('00000000-0000-0000-0000-00000000000a', 'Dana', false, NULL);
INSERT INTO cs.subscriptions (customer_id, product, seats, mrr, started_at) VALUES
 ('00000000-0000-0000-0000-00000000000a', 'core', 10, 400, '2025-06-01'),
 ('00000000-0000-0000-0000-00000000000a', 'analytics', 5, 100, '2026-02-15');

-- every feature of Alpha as of 2026-04-01, worked out by hand in the comments of the catalog
SELECT fc.position, fc.name, round(v::numeric, 3) AS value
  FROM cs.feature_catalog fc,
       LATERAL unnest(cs.features('00000000-0000-0000-0000-00000000000a', '2026-04-01 00:00+00')) WITH ORDINALITY AS x(v, pos)
 WHERE x.pos = fc.position
 ORDER BY fc.position;

-- Beta has no signals at all: usage, averages and contract features are missing (NaN), counts are zero
SELECT fc.name, v
  FROM cs.feature_catalog fc,
       LATERAL unnest(cs.features('00000000-0000-0000-0000-00000000000b', '2026-04-01 00:00+00')) WITH ORDINALITY AS x(v, pos)
 WHERE x.pos = fc.position
 ORDER BY fc.position;

-- point-in-time: a later event does not change an earlier as_of
SELECT cs.features('00000000-0000-0000-0000-00000000000a', '2026-04-01 00:00+00') AS before_load \gset
INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at)
VALUES ('00000000-0000-0000-0000-00000000000a', 'u7', 'session', 'api', 50, '2026-04-02 09:00+00');
SELECT cs.features('00000000-0000-0000-0000-00000000000a', '2026-04-01 00:00+00') = :'before_load'::float4[] AS unchanged,
       cs.features('00000000-0000-0000-0000-00000000000a', '2026-04-03 00:00+00') = :'before_load'::float4[] AS later_changed;

-- batch and single computation agree
SELECT bool_and(f.features = cs.features(f.customer_id, '2026-04-01 00:00+00')) AS same
  FROM cs.compute_features(NULL, '2026-04-01 00:00+00') f;

-- errors
SELECT cs.features('00000000-0000-0000-0000-0000000000ff');
SELECT cs.features(NULL);
SELECT cs.features('00000000-0000-0000-0000-00000000000a', 'infinity');
SELECT cs.interpolate(1, '{1,2}', '{0}');
SELECT cs.interpolate(1, '{2,1}', '{0,1}');
SELECT cs.interpolate(1.5, '{1,2,4}', '{0,1,0}') AS mid, cs.interpolate(0, '{1,2}', '{0.2,1}') AS clamped_low,
       cs.interpolate(9, '{1,2}', '{0.2,1}') AS clamped_high, cs.interpolate('NaN', '{1,2}', '{0,1}') AS missing;
SELECT cs.percentile_rank('{1,2,2,3}', 2) AS ties, cs.percentile_rank('{1,2,3}', 0) AS lowest, cs.percentile_rank('{}', 1) AS empty;
SELECT cs.percentile_rank('{1,NULL,3}', 2);
SELECT cs.percentile_rank('{{1,2},{3,4}}', 2);
-- a population stored out of line (as in cs.health_populations) is read once per call
-- site and ranks exactly like the literal: x of 1..5000 ranks (x - 0.5) / 5000
CREATE TEMP TABLE pop (a float8[]);
ALTER TABLE pop ALTER a SET STORAGE EXTERNAL;
INSERT INTO pop SELECT array_agg(g::float8 ORDER BY g) FROM generate_series(1, 5000) g;
SELECT count(*) AS probes, bool_and(cs.percentile_rank(p.a, x) = (x - 0.5) / 5000) AS exact
  FROM pop p, generate_series(1, 5000, 7) x;
SELECT cs.feature_vector(ARRAY[1, NULL, 'Infinity', 1e300]::float8[]);

-- the dirty queue: a load marks exactly its customers; refresh(NULL) drains it
SELECT cs.refresh_all() AS refreshed_all;
SELECT count(*) AS dirty_after_refresh_all FROM cs.dirty_customers;
INSERT INTO cs.nps_responses (customer_id, score, responded_at) VALUES ('00000000-0000-0000-0000-00000000000b', 3, '2026-03-30');
SELECT c.external_id FROM cs.dirty_customers d JOIN cs.customers c ON c.id = d.customer_id ORDER BY 1;
SELECT cs.refresh() AS refreshed;
SELECT count(*) AS dirty_left FROM cs.dirty_customers;
SELECT cs.refresh() AS nothing_to_do;
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-00000000000a'::uuid, '00000000-0000-0000-0000-00000000000a', NULL]) AS explicit;
SELECT c.external_id, array_length(f.features, 1) AS n FROM cs.customer_features f JOIN cs.customers c ON c.id = f.customer_id ORDER BY 1;
-- a mark changed after refresh read it survives (simulated: the mark moves on, the stale one is not deleted)
INSERT INTO cs.nps_responses (customer_id, score, responded_at) VALUES ('00000000-0000-0000-0000-00000000000b', 4, '2026-03-31');
SELECT marked_at AS first_mark FROM cs.dirty_customers \gset
INSERT INTO cs.nps_responses (customer_id, score, responded_at) VALUES ('00000000-0000-0000-0000-00000000000b', 5, '2026-03-31');
SELECT marked_at > :'first_mark' AS remarked FROM cs.dirty_customers;

-- Contract features are point-in-time too: before the current contract began,
-- with no term history (cs.contract_terms), neither the renewal then nor the
-- tenure is known: no earlier term is invented from the current one (its end
-- would reveal whether the customer renewed; sql/pit.sql tests the history).
INSERT INTO cs.customers (id, external_id, name, contract_start_date, contract_end_date) VALUES
 ('00000000-0000-0000-0000-00000000000c', 'f-c', 'Gamma', '2026-01-01', '2026-12-31');
SELECT (cs.features('00000000-0000-0000-0000-00000000000c', '2025-11-01 00:00+00'))[25:26] AS before_term,
       (cs.features('00000000-0000-0000-0000-00000000000c', '2025-01-05 00:00+00'))[26] AS a_year_before,
       (cs.features('00000000-0000-0000-0000-00000000000c', '2026-03-01 00:00+00'))[25:26] AS in_term;

CREATE FUNCTION pg_temp.explain_lines(q text) RETURNS TABLE ("QUERY PLAN" text) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q;
END $$;
-- The usage aggregate in parallel: partial states of one customer from several
-- workers combine to the serial result (sums, distinct users and features,
-- active days, latest event).
INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at)
SELECT c.id, 'u' || (g % 13), 'e', 'f' || (g % 7), 1 + g % 3, '2026-04-01 00:00+00'::timestamptz - make_interval(hours => g * 5)
  FROM cs.customers c, generate_series(1, 400) g;
CREATE TEMP TABLE usage_serial AS
SELECT customer_id, cs.usage_summary(user_id, feature, quantity, occurred_at, '2026-04-01 00:00+00') AS u
  FROM cs.usage_events GROUP BY 1;
BEGIN;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_partitionwise_aggregate = off;
SELECT count(*) FILTER (WHERE "QUERY PLAN" ~ 'Partial') > 0 AS partial_aggregation
  FROM pg_temp.explain_lines(
         'SELECT customer_id, cs.usage_summary(user_id, feature, quantity, occurred_at, ''2026-04-01 00:00+00'') FROM cs.usage_events GROUP BY 1');
SELECT count(*) AS customers,
       count(*) FILTER (WHERE p.u IS DISTINCT FROM s.u) AS differ
  FROM (SELECT customer_id, cs.usage_summary(user_id, feature, quantity, occurred_at, '2026-04-01 00:00+00') AS u
          FROM cs.usage_events GROUP BY 1) p
  FULL JOIN usage_serial s USING (customer_id);
-- a group whose rows all lack a time has no state in any worker: NULL, not a crash
CREATE TABLE public.usage_no_time AS
SELECT g % 3 AS k, 'u' AS user_id, 'f' AS feature, 1::float8 AS q,
       CASE WHEN g % 3 = 0 THEN NULL ELSE '2026-03-30 00:00+00'::timestamptz END AS t
  FROM generate_series(1, 3000) g;
ANALYZE public.usage_no_time;
SELECT count(*) FILTER (WHERE "QUERY PLAN" ~ 'Partial') > 0 AS partial_aggregation
  FROM pg_temp.explain_lines('SELECT k, cs.usage_summary(user_id, feature, q, t, now()) FROM public.usage_no_time GROUP BY k');
SELECT k, (cs.usage_summary(user_id, feature, q, t, '2026-04-01 00:00+00'))[1:2] AS users_7d_30d
  FROM public.usage_no_time GROUP BY k ORDER BY k;
DROP TABLE public.usage_no_time;
COMMIT;
