-- Account families, revenue reporting (NRR, GRR, renewals, cohorts) and the
-- metrics postgres_exporter reads.  Every figure is checked against a hand
-- computation written next to it; the reports are called through their as_of
-- functions, so nothing depends on today's date.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET client_min_messages = notice;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- SQLSTATE and message of a statement, or ok.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

------------------------------------------------------------------------------
-- Account families
------------------------------------------------------------------------------
-- P (1000)                  top level
--   A (500)                 child of P
--     A1 (200)              child of A
--   B (300)                 child of P, unscored
--     B1 (100, churned)     child of B: counted in members only
-- plus L (lonely, no family).
INSERT INTO cs.customers (id, external_id, name, segment, csm, mrr, parent_id, churned_at, contract_end_date, created_at) VALUES
  ('00000000-0000-0000-0000-000000000001', 'fam-P',  'Parent Group',  'enterprise', 'csm_a', 1000, NULL, NULL, '2026-04-20', '2025-06-01'),
  ('00000000-0000-0000-0000-000000000002', 'fam-A',  'Subsidiary A',  'mid_market', 'csm_a',  500, '00000000-0000-0000-0000-000000000001', NULL, '2026-05-20', '2025-06-01'),
  ('00000000-0000-0000-0000-000000000003', 'fam-A1', 'Sub-sub A1',    'smb',        'csm_b',  200, '00000000-0000-0000-0000-000000000002', NULL, '2026-06-25', '2025-06-01'),
  ('00000000-0000-0000-0000-000000000004', 'fam-B',  'Subsidiary B',  'smb',        'csm_b',  300, '00000000-0000-0000-0000-000000000001', NULL, '2026-07-15', '2025-06-01'),
  ('00000000-0000-0000-0000-000000000005', 'fam-B1', 'Sub-sub B1',    'smb',        'csm_b',  100, '00000000-0000-0000-0000-000000000004', '2026-03-01', '2026-04-10', '2025-06-01'),
  ('00000000-0000-0000-0000-000000000006', 'fam-L',  'Lonely Ltd',    'smb',        'csm_b',   50, NULL, NULL, NULL, '2025-06-01');

-- Latest health: P 0.80 (an older 0.90 does not count), A 0.50, A1 0.20 red,
-- B none, B1 0.10 red but churned.
INSERT INTO cs.customer_health_scores (customer_id, overall_score, band, calculated_at) VALUES
  ('00000000-0000-0000-0000-000000000001', 0.90, 'green',  '2026-01-01'),
  ('00000000-0000-0000-0000-000000000001', 0.80, 'green',  '2026-02-01'),
  ('00000000-0000-0000-0000-000000000002', 0.50, 'yellow', '2026-02-01'),
  ('00000000-0000-0000-0000-000000000003', 0.20, 'red',    '2026-02-01'),
  ('00000000-0000-0000-0000-000000000005', 0.10, 'red',    '2026-02-01');
-- Latest churn risk: P 0.10 (an older 0.50 does not count), A 0.40, A1 0.90;
-- B has only a downgrade risk, which is not churn.
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, created_at) VALUES
  ('00000000-0000-0000-0000-000000000001', 'churn', 0.50, '2026-01-01'),
  ('00000000-0000-0000-0000-000000000001', 'churn', 0.10, '2026-02-01'),
  ('00000000-0000-0000-0000-000000000002', 'churn', 0.40, '2026-02-01'),
  ('00000000-0000-0000-0000-000000000003', 'churn', 0.90, '2026-02-01'),
  ('00000000-0000-0000-0000-000000000004', 'downgrade', 0.99, '2026-02-01');
-- Unresolved alerts: P acknowledged, A1 open; A's is resolved, B1 is churned.
INSERT INTO cs.alerts (customer_id, alert_type, severity, title, status, mrr_at_risk) VALUES
  ('00000000-0000-0000-0000-000000000001', 'risk', 'high',     'p', 'acknowledged', 1000),
  ('00000000-0000-0000-0000-000000000003', 'risk', 'critical', 'a1', 'open', 200),
  ('00000000-0000-0000-0000-000000000002', 'risk', 'low',      'a', 'resolved', 500),
  ('00000000-0000-0000-0000-000000000005', 'opportunity', 'medium', 'b1', 'open', 100);

-- By hand:
-- P: members P, A, A1, B, B1 = 5, active 4, depth 2; family MRR 1000+500+200+300 = 2000;
--    health over the scored active members P, A, A1:
--    (1000*0.80 + 500*0.50 + 200*0.20) / (1000+500+200) = 1090/1700 = 0.6412;
--    MRR at risk 1000*0.10 + 500*0.40 + 200*0.90 = 100+200+180 = 480; worst band red (A1);
--    open alerts 2 (P's and A1's).
-- A: members A, A1, depth 1, MRR 700, health (250+40)/700 = 0.4143, at risk 380, red, 1 alert.
-- B: members B, B1 (churned), active 1, MRR 300, no score: health NULL, at risk 0, no band, 0 alerts.
SELECT external_id, top_level, depth, members, active_members, family_mrr, family_health, scored_members,
       mrr_at_risk, worst_band, red_members, open_alerts
  FROM cs.account_family_health ORDER BY external_id;
SELECT (SELECT row(depth, members, active_members, family_mrr, family_health, mrr_at_risk, worst_band, open_alerts)::text
          FROM cs.account_family_health WHERE external_id = 'fam-P')
       = row(2, 5, 4, 2000.00, 0.6412, 480.00, 'red', 2)::text AS p_as_computed,
       (SELECT row(depth, members, family_mrr, family_health, mrr_at_risk, worst_band, open_alerts)::text
          FROM cs.account_family_health WHERE external_id = 'fam-A')
       = row(1, 2, 700.00, 0.4143, 380.00, 'red', 1)::text AS a_as_computed,
       (SELECT family_health IS NULL AND worst_band IS NULL AND mrr_at_risk = 0 AND active_members = 1
          FROM cs.account_family_health WHERE external_id = 'fam-B') AS b_as_computed,
       NOT EXISTS (SELECT 1 FROM cs.account_family_health WHERE external_id IN ('fam-A1', 'fam-B1', 'fam-L')) AS leaves_have_no_row;

-- Cycles are refused (23514), whatever the length, also within one statement;
-- a move that makes none is not.
SELECT pg_temp.try($$UPDATE cs.customers SET parent_id = '00000000-0000-0000-0000-000000000003' WHERE external_id = 'fam-P'$$) AS p_under_its_grandchild;
SELECT pg_temp.try($$UPDATE cs.customers SET parent_id = '00000000-0000-0000-0000-000000000002' WHERE external_id = 'fam-P'$$) AS p_under_its_child;
SELECT pg_temp.try($$UPDATE cs.customers SET parent_id = id WHERE external_id = 'fam-A'$$) AS own_parent;
SELECT pg_temp.try($$INSERT INTO cs.customers (id, external_id, name, parent_id) VALUES
    ('00000000-0000-0000-0000-0000000000f1', 'fam-X', 'X', '00000000-0000-0000-0000-0000000000f2'),
    ('00000000-0000-0000-0000-0000000000f2', 'fam-Y', 'Y', '00000000-0000-0000-0000-0000000000f1')$$) AS cycle_in_one_insert;
BEGIN;
SELECT pg_temp.try($$UPDATE cs.customers SET parent_id = '00000000-0000-0000-0000-000000000004' WHERE external_id = 'fam-A1'$$) AS a1_moves_to_b;
SELECT external_id, depth, members FROM cs.account_family_health ORDER BY external_id;
ROLLBACK;
\set VERBOSITY default
UPDATE cs.customers SET parent_id = '00000000-0000-0000-0000-000000000003' WHERE external_id = 'fam-P';
\set VERBOSITY terse

------------------------------------------------------------------------------
-- Revenue retention: MRR movements, NRR and GRR
------------------------------------------------------------------------------
-- Subscriptions (ended_at is the first day without it); MRR at Jan 1, Feb 1, Mar 1, Apr 1:
--   R1 smb/csm_a:  core 100 from 2025-12-01 to 2026-03-10, then core 80; addon 50 from 2026-01-15
--                                                   100, 150, 150, 130
--   R2 smb/csm_a:  core 200 2025-11-01 to 2026-02-20 200, 200,   0,   0
--   R3 smb/csm_a:  core 300 from 2026-02-10, churned_at 2026-03-15 (subscription left open)
--                                                     0,   0, 300,   0
--   R4 mid/csm_b:  core 400 2025-10-01 to 2026-01-20, then core 250; addon 100 from 2026-03-05
--                                                   400, 250, 250, 350
--   R5 mid/csm_b:  core 70 2026-01-05 to 2026-01-25   0,   0,   0,   0  (never billed on a month start)
--   R6 smb/csm_a:  core 60 2025-12-15 to 2026-02-10, churned_at 2026-02-10
--                                                    60,  60,   0,   0
INSERT INTO cs.customers (id, external_id, name, segment, csm, mrr, churned_at, contract_end_date, created_at) VALUES
  ('00000000-0000-0000-0000-000000000011', 'rev-R1', 'R1', 'smb',        'csm_a', 130, NULL,         NULL,         '2025-12-01'),
  ('00000000-0000-0000-0000-000000000012', 'rev-R2', 'R2', 'smb',        'csm_a',   0, NULL,         NULL,         '2025-11-01'),
  ('00000000-0000-0000-0000-000000000013', 'rev-R3', 'R3', 'smb',        'csm_a', 300, '2026-03-15', NULL,         '2026-02-10'),
  ('00000000-0000-0000-0000-000000000014', 'rev-R4', 'R4', 'mid_market', 'csm_b', 350, NULL,         '2026-04-30', '2025-10-01'),
  ('00000000-0000-0000-0000-000000000015', 'rev-R5', 'R5', 'mid_market', 'csm_b',   0, NULL,         NULL,         '2026-01-05'),
  ('00000000-0000-0000-0000-000000000016', 'rev-R6', 'R6', 'smb',        'csm_a',   0, '2026-02-10', NULL,         '2025-12-15');
INSERT INTO cs.subscriptions (customer_id, product, seats, mrr, started_at, ended_at) VALUES
  ('00000000-0000-0000-0000-000000000011', 'core',  10, 100, '2025-12-01', '2026-03-10'),
  ('00000000-0000-0000-0000-000000000011', 'core',   8,  80, '2026-03-10', NULL),
  ('00000000-0000-0000-0000-000000000011', 'addon',  5,  50, '2026-01-15', NULL),
  ('00000000-0000-0000-0000-000000000012', 'core',  20, 200, '2025-11-01', '2026-02-20'),
  ('00000000-0000-0000-0000-000000000013', 'core',  30, 300, '2026-02-10', NULL),
  ('00000000-0000-0000-0000-000000000014', 'core',  40, 400, '2025-10-01', '2026-01-20'),
  ('00000000-0000-0000-0000-000000000014', 'core',  25, 250, '2026-01-20', NULL),
  ('00000000-0000-0000-0000-000000000014', 'addon', 10, 100, '2026-03-05', NULL),
  ('00000000-0000-0000-0000-000000000015', 'core',   7,  70, '2026-01-05', '2026-01-25'),
  ('00000000-0000-0000-0000-000000000016', 'core',   6,  60, '2025-12-15', '2026-02-10');

-- By hand, all customers:
-- Jan: start 100+200+400+60 = 760; expansion R1 +50; contraction R4 -150; end 150+200+250+60 = 660
--      NRR (760+50-150-0)/760 = 0.8684, GRR (760-150-0)/760 = 0.8026
-- Feb: start 150+200+250+60 = 660; new R3 300; churned R2 200 + R6 60 = 260; end 150+300+250 = 700
--      NRR (660-260)/660 = 0.6061, GRR 0.6061
-- Mar: start 150+300+250 = 700; expansion R4 +100; contraction R1 -20; churned R3 300 (churned_at);
--      end 130+350 = 480; NRR (700+100-20-300)/700 = 0.6857, GRR (700-20-300)/700 = 0.5429
-- Segment smb (R1, R2, R3, R6): Jan 360 -> 410, NRR 410/360 = 1.1389, GRR 1;
--      Feb 410 -> 450 (new 300, churned 260), NRR 150/410 = 0.3659; Mar 450 -> 130, NRR = GRR 130/450 = 0.2889
-- Segment mid_market (R4, R5): Jan 400 -> 250, NRR = GRR 0.6250; Feb 1, 1; Mar 250 -> 350, NRR 1.4, GRR 1
SELECT month, period_end, dimension, dimension_value, starting_customers AS start_n, new_customers AS new_n,
       churned_customers AS churned_n, ending_customers AS end_n, starting_mrr, new_mrr, expansion_mrr,
       contraction_mrr, churned_mrr, ending_mrr, nrr, grr
  FROM cs.revenue_retention_as_of('2026-04-01', 4)
 WHERE month < '2026-04-01';
WITH expected(month, dimension, dimension_value, starting_mrr, new_mrr, expansion_mrr, contraction_mrr, churned_mrr, ending_mrr, nrr, grr) AS (
    VALUES ('2026-01-01'::date, 'all', 'all', 760, 0, 50, 150, 0, 660, 0.8684, 0.8026),
           ('2026-02-01', 'all', 'all', 660, 300, 0, 0, 260, 700, 0.6061, 0.6061),
           ('2026-03-01', 'all', 'all', 700, 0, 100, 20, 300, 480, 0.6857, 0.5429),
           ('2026-01-01', 'segment', 'smb', 360, 0, 50, 0, 0, 410, 1.1389, 1.0000),
           ('2026-02-01', 'segment', 'smb', 410, 300, 0, 0, 260, 450, 0.3659, 0.3659),
           ('2026-03-01', 'segment', 'smb', 450, 0, 0, 20, 300, 130, 0.2889, 0.2889),
           ('2026-01-01', 'segment', 'mid_market', 400, 0, 0, 150, 0, 250, 0.6250, 0.6250),
           ('2026-02-01', 'segment', 'mid_market', 250, 0, 0, 0, 0, 250, 1.0000, 1.0000),
           ('2026-03-01', 'segment', 'mid_market', 250, 0, 100, 0, 0, 350, 1.4000, 1.0000)
)
SELECT e.month, e.dimension, e.dimension_value,
       r.starting_mrr = e.starting_mrr AND r.new_mrr = e.new_mrr AND r.expansion_mrr = e.expansion_mrr
       AND r.contraction_mrr = e.contraction_mrr AND r.churned_mrr = e.churned_mrr AND r.ending_mrr = e.ending_mrr
       AND r.nrr = e.nrr AND r.grr = e.grr AS as_computed
  FROM expected e
  LEFT JOIN cs.revenue_retention_as_of('2026-04-01', 4) r USING (month, dimension, dimension_value)
 ORDER BY e.dimension, e.dimension_value, e.month;
-- Every row balances, and the segments, CSMs and cohorts each add up to the whole.
SELECT count(*) FILTER (WHERE ending_mrr <> starting_mrr + new_mrr + expansion_mrr - contraction_mrr - churned_mrr) AS unbalanced,
       count(*) AS rows
  FROM cs.revenue_retention_as_of('2026-04-01', 4);
SELECT r.dimension, bool_and(r.sum_start = a.starting_mrr AND r.sum_end = a.ending_mrr AND r.sum_churn = a.churned_mrr) AS adds_up
  FROM (SELECT month, dimension, sum(starting_mrr) AS sum_start, sum(ending_mrr) AS sum_end, sum(churned_mrr) AS sum_churn
          FROM cs.revenue_retention_as_of('2026-04-01', 4) WHERE dimension <> 'all' GROUP BY month, dimension) r
  JOIN cs.revenue_retention_as_of('2026-04-01', 4) a ON a.month = r.month AND a.dimension = 'all'
 GROUP BY r.dimension ORDER BY r.dimension;
-- The month in progress ends at as_of: on 2026-03-20, R1 still has core 80 + addon 50, R3 is billed.
SELECT month, period_end, starting_mrr, ending_mrr FROM cs.revenue_retention_as_of('2026-03-20', 1) WHERE dimension = 'all';
SELECT dimension_value AS cohort, starting_mrr, ending_mrr FROM cs.revenue_retention_as_of('2026-04-01', 4)
 WHERE dimension = 'cohort' AND month = '2026-02-01' ORDER BY 1;
-- The view is the function at today's date.
SELECT (SELECT count(*) FROM cs.revenue_retention) = (SELECT count(*) FROM cs.revenue_retention_as_of(current_date, 12)) AS view_is_today;
SELECT pg_temp.try($$SELECT * FROM cs.revenue_retention_as_of(NULL)$$) AS null_as_of,
       pg_temp.try($$SELECT * FROM cs.revenue_retention_as_of('2026-01-01', 0)$$) AS zero_months,
       pg_temp.try($$SELECT * FROM cs.revenue_retention_as_of('infinity', 3)$$) AS infinite_as_of;

------------------------------------------------------------------------------
-- Cohort retention
------------------------------------------------------------------------------
-- Cohorts of the six months up to 2026-04-01 (R4's, 2025-10, is older):
--   2025-11 R2: 200 at signup; 200 on Dec 1, Jan 1, Feb 1; gone on 2026-02-20: 0 from Mar 1
--   2025-12 R1 (100 at signup) + R6 (60 at signup) = 160: Jan 1 160 (1.0); Feb 1 150+60 = 210 (1.3125);
--           Mar 1 R6 gone: 150 (0.9375), logo 1/2; Apr 1 130 (0.8125), logo 1/2
--   2026-01 R5: 70 at signup, gone 2026-01-25: logo 0 and MRR 0 from Feb 1
--   2026-02 R3: 300 at signup, Mar 1 300, churned 2026-03-15: logo 0 on Apr 1
SELECT cohort, months_since_start AS k, measured_at, customers, retained_customers, logo_retention,
       starting_mrr, mrr, mrr_retention
  FROM cs.cohort_retention_as_of('2026-04-01', 6)
 ORDER BY cohort, k;
SELECT (SELECT array_agg(mrr_retention ORDER BY months_since_start) FROM cs.cohort_retention_as_of('2026-04-01', 6)
         WHERE cohort = '2025-12-01') = '{1.0000,1.0000,1.3125,0.9375,0.8125}' AS cohort_2025_12_mrr_as_computed,
       (SELECT array_agg(logo_retention ORDER BY months_since_start) FROM cs.cohort_retention_as_of('2026-04-01', 6)
         WHERE cohort = '2025-12-01') = '{1.0000,1.0000,1.0000,0.5000,0.5000}' AS cohort_2025_12_logos_as_computed;

------------------------------------------------------------------------------
-- Renewal forecast
------------------------------------------------------------------------------
-- As of 2026-04-01, renewals within 90 days of active customers:
--   P  2026-04-20 (19 days, 30): 1000 x 0.10 = 100 at risk, 900 expected
--   R4 2026-04-30 (29 days, 30): 350, no churn risk
--   A  2026-05-20 (49 days, 60):  500 x 0.40 = 200, 300
--   A1 2026-06-25 (85 days, 90):  200 x 0.90 = 180, 20
--   not B (105 days), not B1 (churned).
-- Cumulative: 30 days 2 renewals, 1350 MRR, 100 at risk, 1250 expected, 1 unscored;
--             60 days 3, 1850, 300, 1550, 1; 90 days 4, 2050, 480, 1570, 1.
SELECT external_id, renewal_date, days_to_renewal, horizon_days, mrr, churn_risk, risk_weighted_mrr, expected_mrr, band
  FROM cs.renewal_forecast_as_of('2026-04-01');
SELECT * FROM cs.renewal_forecast_summary_as_of('2026-04-01') WHERE dimension = 'all';
SELECT array_agg(ARRAY[renewals, renewing_mrr, risk_weighted_mrr, expected_mrr, unscored] ORDER BY horizon_days)
       = '{{2,1350,100,1250,1},{3,1850,300,1550,1},{4,2050,480,1570,1}}'::numeric[] AS summary_as_computed
  FROM cs.renewal_forecast_summary_as_of('2026-04-01') WHERE dimension = 'all';
SELECT horizon_days, dimension, dimension_value, renewals, renewing_mrr, risk_weighted_mrr
  FROM cs.renewal_forecast_summary_as_of('2026-04-01') WHERE dimension <> 'all' AND horizon_days = 90;
-- Point in time: on 2026-01-25 P's churn risk was 0.50, and A's was not yet scored.
SELECT external_id, days_to_renewal, churn_risk, risk_weighted_mrr
  FROM cs.renewal_forecast_as_of('2026-01-25');

------------------------------------------------------------------------------
-- Metrics for postgres_exporter
------------------------------------------------------------------------------
INSERT INTO cs.job_runs (job, started_at, finished_at, customers, status, error) VALUES
  ('full_rescore', '2026-01-01 10:00:00', '2026-01-01 10:00:30', 100, 'succeeded', NULL),
  ('full_rescore', '2026-01-02 10:00:00', '2026-01-02 10:00:05', NULL, 'failed', 'boom'),
  ('batch',        '2026-01-02 11:00:00', '2026-01-02 11:00:02', 20, 'failed', 'bad row'),
  ('data_quality', '2026-01-02 12:00:00', NULL, NULL, 'running', NULL);
-- full_rescore: 2 runs, 1 failure, 35 s in all, last 5 s; batch: 1 failure of 2 s; data_quality running.
SELECT job, runs_total, failures_total, running, finished_total, duration_seconds_total, last_duration_seconds,
       last_customers, last_success_age_seconds > 0 AS succeeded_once
  FROM cs.metrics_jobs ORDER BY job;
-- The jobs listed are those cs.job_runs allows.
SELECT (SELECT array_agg(job ORDER BY job) FROM cs.metrics_jobs)
       = (SELECT array_agg(m[1] ORDER BY m[1])
            FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') m
           WHERE c.conrelid = 'cs.job_runs'::regclass AND pg_get_constraintdef(c.oid) LIKE '%job = ANY%') AS every_job;
-- Unresolved alerts by type, severity and status: P's high acknowledged, A1's critical open,
-- B1's medium opportunity; A's resolved alert does not count.
SELECT alert_type, severity, status, alerts, mrr_at_risk FROM cs.metrics_alerts WHERE alerts > 0 ORDER BY 1, 2, 3;
SELECT count(*) AS alert_series, sum(alerts) AS alerts FROM cs.metrics_alerts;
-- No worker serves the test database: one row saying so; the queue holds the customers loaded above.
SELECT database = current_database() AS this_db, state, up, queue_depth, parked, lag_seconds >= 0 AS lag_ok,
       batches_total, customers_scored_total
  FROM cs.metrics_worker;
SELECT database = current_database() AS this_db, active_customers, dirty_customers,
       health_scores_total >= 0 AND risk_assessments_total >= 0 AND feature_vectors_total >= 0
       AND opportunities_total >= 0 AND alerts_raised_total >= 0 AS counters_ok
  FROM cs.metrics_scoring;
SELECT split_part(metric, '_', 2) AS namespace, count(*) AS samples, count(DISTINCT metric) AS metrics
  FROM cs.metrics GROUP BY 1 ORDER BY 1;

-- Every query of contrib/postgres_exporter/cscopilot-queries.yaml runs, returns rows,
-- and has every column the file lists, with a numeric type for GAUGE and COUNTER.
\getenv abs_srcdir PG_ABS_SRCDIR
\set yaml_path :abs_srcdir '/contrib/postgres_exporter/cscopilot-queries.yaml'
CREATE TEMP TABLE yaml AS SELECT pg_read_file(:'yaml_path') AS body;
CREATE TEMP TABLE yaml_queries AS
SELECT b[1] AS namespace, b[2] AS query, b[3] AS metrics
  FROM yaml, regexp_matches(body, E'\\n([a-z_]+):\\n  query: "([^"]+)"\\n  metrics:\\n((?:    [^\\n]*\\n)+)', 'g') b;
CREATE TEMP TABLE yaml_metrics AS
SELECT q.namespace, q.query, m[1] AS col, m[2] AS usage
  FROM yaml_queries q, regexp_matches(q.metrics, E'- ([a-z_]+):\\n        usage: "([A-Z]+)"', 'g') m;
SELECT namespace, query, (SELECT count(*) FROM yaml_metrics m WHERE m.namespace = q.namespace) AS metrics
  FROM yaml_queries q ORDER BY namespace;
CREATE FUNCTION pg_temp.check_query(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    problems text := '';
    m record;
    t regtype;
BEGIN
    EXECUTE format('SELECT count(*) FROM (%s) x', q) INTO n;
    IF n = 0 THEN problems := problems || ' no rows'; END IF;
    FOR m IN SELECT * FROM yaml_metrics WHERE query = q LOOP
        BEGIN
            EXECUTE format('SELECT pg_typeof(%I)::regtype FROM (%s) x LIMIT 1', m.col, q) INTO t;
            IF m.usage IN ('GAUGE', 'COUNTER') AND t NOT IN ('bigint', 'integer', 'double precision', 'numeric') THEN
                problems := problems || format(' %s is %s', m.col, t);
            ELSIF m.usage = 'LABEL' AND t <> 'text'::regtype THEN
                problems := problems || format(' label %s is %s', m.col, t);
            ELSIF m.usage NOT IN ('GAUGE', 'COUNTER', 'LABEL') THEN
                problems := problems || format(' %s has usage %s', m.col, m.usage);
            END IF;
        EXCEPTION WHEN undefined_column THEN
            problems := problems || format(' no column %s', m.col);
        END;
    END LOOP;
    RETURN CASE WHEN problems = '' THEN format('ok (%s rows)', n) ELSE problems END;
END;
$$;
SELECT namespace, pg_temp.check_query(query) FROM yaml_queries ORDER BY namespace;
-- ... and lists every column of its view.
SELECT q.namespace, a.attname AS column_not_in_yaml
  FROM yaml_queries q
  JOIN pg_attribute a ON a.attrelid = ('cs.metrics_' || substr(q.namespace, length('cscopilot_') + 1))::regclass
 WHERE a.attnum > 0 AND NOT EXISTS (SELECT 1 FROM yaml_metrics m WHERE m.namespace = q.namespace AND m.col = a.attname)
 ORDER BY 1, 2;

------------------------------------------------------------------------------
-- On generated data: logo retention never increases with months since start
------------------------------------------------------------------------------
SET client_min_messages = warning;
SELECT cs.generate_demo_data(300, 60, 7, '2026-06-30') > 0 AS generated;
SET client_min_messages = notice;
SELECT count(DISTINCT cohort) > 10 AS many_cohorts,
       count(*) FILTER (WHERE retained_customers > prev_retained) AS logo_increases,
       count(*) FILTER (WHERE retained_customers > customers OR logo_retention > 1) AS over_one,
       count(*) FILTER (WHERE months_since_start = 0 AND logo_retention <> 1) AS month0_not_whole
  FROM (SELECT *, lag(retained_customers) OVER (PARTITION BY cohort ORDER BY months_since_start) AS prev_retained
          FROM cs.cohort_retention_as_of('2026-06-30', 60)) x;
SELECT count(*) FILTER (WHERE ending_mrr <> starting_mrr + new_mrr + expansion_mrr - contraction_mrr - churned_mrr) AS unbalanced,
       count(*) FILTER (WHERE dimension = 'all') AS months,
       bool_and(grr <= 1 AND nrr >= grr) FILTER (WHERE starting_mrr > 0) AS grr_at_most_1_and_nrr
  FROM cs.revenue_retention_as_of('2026-06-30', 12);
