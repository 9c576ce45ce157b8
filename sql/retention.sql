-- History partitions and retention (src/sql/61_history.sql): the history
-- tables are partitioned by month with a default partition; cs.apply_retention
-- drops months older than the retention and keeps every latest row.  Dates in
-- 2020 and 2021, far before now, keep the output independent of the day it
-- runs (install creates partitions around now only).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

-- the four history tables are partitioned, with a default partition and a
-- key holding the customer and the partition column
SELECT c.relname, pg_get_partkeydef(c.oid) AS partition_key,
       (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k
         WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u')) AS key,
       to_regclass('cs.' || c.relname || '_default') IS NOT NULL AS has_default
  FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind = 'p' AND c.relname IN (SELECT table_name FROM cs.history_tables())
 ORDER BY 1;
-- install created this month's partitions (a year back, three months ahead)
SELECT h.table_name, count(*) AS monthly_partitions
  FROM cs.history_tables() h JOIN pg_inherits i ON i.inhparent = ('cs.' || h.table_name)::regclass
  JOIN pg_class c ON c.oid = i.inhrelid AND c.relname <> h.table_name || '_default'
 GROUP BY 1 ORDER BY 1;
SHOW cscopilot.history_retention;

INSERT INTO cs.customers (id, external_id, name, mrr) VALUES
 ('00000000-0000-0000-0000-00000000000a', 'a', 'Active', 100),
 ('00000000-0000-0000-0000-00000000000b', 'b', 'Dormant', 100),
 ('00000000-0000-0000-0000-00000000000c', 'c', 'Dormant since 2020-01', 100);

-- months of 2020 get their partitions; a row of a month without one (2019-06,
-- 2021-02) lands in the default partition instead of failing
SELECT cs.ensure_history_partitions('2020-01-01', '2020-03-31') AS created;
SELECT cs.ensure_history_partitions('2020-01-01', '2020-03-31') AS created_again;
INSERT INTO cs.customer_health_scores (customer_id, overall_score, calculated_at) VALUES
 ('00000000-0000-0000-0000-00000000000a', 0.50, '2019-06-15'),
 ('00000000-0000-0000-0000-00000000000a', 0.60, '2020-01-10'),
 ('00000000-0000-0000-0000-00000000000a', 0.61, '2020-02-10'),
 ('00000000-0000-0000-0000-00000000000a', 0.70, now()),
 ('00000000-0000-0000-0000-00000000000b', 0.40, '2020-01-20'),
 ('00000000-0000-0000-0000-00000000000b', 0.41, '2020-02-20'),
 ('00000000-0000-0000-0000-00000000000c', 0.30, '2020-01-05'),
 ('00000000-0000-0000-0000-00000000000c', 0.31, '2020-01-25'),
 ('00000000-0000-0000-0000-00000000000a', 0.65, '2021-02-01');
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, created_at) VALUES
 ('00000000-0000-0000-0000-00000000000b', 'churn', 0.20, '2020-01-20'),
 ('00000000-0000-0000-0000-00000000000b', 'churn', 0.21, '2020-03-01'),
 ('00000000-0000-0000-0000-00000000000b', 'payment', 0.10, '2020-01-21'),
 ('00000000-0000-0000-0000-00000000000a', 'churn', 0.30, '2020-02-02'),
 ('00000000-0000-0000-0000-00000000000a', 'churn', 0.35, now());
INSERT INTO cs.model_shadow_scores (customer_id, risk_type, model_version, risk_score, created_at) VALUES
 ('00000000-0000-0000-0000-00000000000b', 'churn', 'x:v2', 0.25, '2020-01-20'),
 ('00000000-0000-0000-0000-00000000000b', 'churn', 'x:v2', 0.26, '2020-02-20');
-- every row is in the partition of its month (or the default one)
SELECT tableoid::regclass AS partition, customer_id, overall_score, calculated_at::date
  FROM cs.customer_health_scores WHERE calculated_at < '2022-01-01' ORDER BY calculated_at;
SELECT tableoid::regclass AS partition, risk_type, risk_score FROM cs.risk_assessments
 WHERE created_at < '2022-01-01' ORDER BY created_at;
-- a partition created later takes the rows of its month out of the default one
SELECT cs.ensure_history_partitions('2021-02-01', '2021-02-01') AS created;
SELECT tableoid::regclass AS partition, overall_score FROM cs.customer_health_scores
 WHERE calculated_at >= '2021-01-01' AND calculated_at < '2022-01-01';

-- alert events follow the alert's customer (model and data alerts: none)
INSERT INTO cs.alerts (id, customer_id, alert_type, severity, title) VALUES
 ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-00000000000b', 'risk', 'high', 'Old alert');
SELECT cs._log_alert_events(ARRAY['00000000-0000-0000-0000-0000000000e1'::uuid], ARRAY['created'], ARRAY[NULL::text], NULL);
UPDATE cs.alert_events SET at = '2020-01-22' WHERE alert_id = '00000000-0000-0000-0000-0000000000e1';
SELECT tableoid::regclass AS partition, customer_id, event FROM cs.alert_events;

-- the latest score of each customer, before retention
CREATE TEMP TABLE latest_before AS
SELECT customer_id, overall_score, calculated_at, churn_risk FROM cs.account_health_overview ORDER BY 1;
SELECT customer_id, overall_score, calculated_at < '2022-01-01' AS old, churn_risk FROM latest_before ORDER BY 1;

-- retention: the partitions of 2020 (older than 400 days) go; rows that are
-- still the latest of their key move to the default partition
SELECT table_name, partition_name, range_start::date, range_end::date, rows_dropped, rows_kept
  FROM cs.apply_retention(interval '400 days')
 WHERE range_start IS NULL OR range_start < '2022-01-01'
 ORDER BY table_name, range_start NULLS LAST, partition_name;
-- no partition of 2020 is left
SELECT count(*) AS partitions_of_2020 FROM pg_class
 WHERE relnamespace = 'cs'::regnamespace AND relname ~ '_y2020m';
-- every customer keeps its latest score, even the dormant ones
SELECT b.customer_id, b.overall_score, l.overall_score AS after, b.calculated_at = l.calculated_at AS same_time,
       b.churn_risk IS NOT DISTINCT FROM l.churn_risk AS same_risk
  FROM latest_before b LEFT JOIN cs.account_health_overview l USING (customer_id) ORDER BY 1;
SELECT tableoid::regclass AS partition, customer_id, overall_score, calculated_at::date
  FROM cs.customer_health_scores WHERE calculated_at < '2022-01-01' ORDER BY calculated_at;
-- the latest churn and payment assessment of the dormant customer, its latest shadow score and alert event
SELECT tableoid::regclass AS partition, customer_id, risk_type, risk_score FROM cs.risk_assessments
 WHERE created_at < '2022-01-01' ORDER BY customer_id, risk_type;
SELECT tableoid::regclass AS partition, risk_score FROM cs.model_shadow_scores;
SELECT tableoid::regclass AS partition, event FROM cs.alert_events;
-- idempotent: a second run drops nothing
SELECT count(*) AS dropped_again FROM cs.apply_retention(interval '400 days') WHERE range_start IS NULL OR range_start < '2022-01-01';

-- a newer score of the dormant customer supersedes its kept old one: the next
-- run deletes it from the default partition
INSERT INTO cs.customer_health_scores (customer_id, overall_score, calculated_at)
VALUES ('00000000-0000-0000-0000-00000000000b', 0.45, now());
SELECT table_name, partition_name, rows_dropped FROM cs.apply_retention(interval '400 days') ORDER BY 1;
SELECT customer_id, overall_score, calculated_at < '2022-01-01' AS old
  FROM cs.customer_health_scores WHERE customer_id = '00000000-0000-0000-0000-00000000000b';

-- bad input
SELECT * FROM cs.apply_retention(interval '-1 day');
SELECT * FROM cs.apply_retention(interval '0');
SELECT cs.ensure_history_partitions('2020-03-01', '2020-01-01');

-- only admins: viewers may not run it
CREATE ROLE retention_viewer;
GRANT cscopilot_viewer TO retention_viewer;
SET ROLE retention_viewer;
SELECT * FROM cs.apply_retention();
RESET ROLE;
DROP ROLE retention_viewer;

-- the worker's daily job: scheduled (due once a day), recorded in cs.job_runs
-- with what it dropped
INSERT INTO cs.customer_health_scores (customer_id, overall_score, calculated_at)
VALUES ('00000000-0000-0000-0000-00000000000a', 0.55, '2020-06-10');
SELECT cs.ensure_history_partitions('2020-06-01', '2020-06-01') AS created;
INSERT INTO cs.job_runs (job, status, started_at, finished_at)
SELECT j, 'succeeded', now(), now() FROM unnest(ARRAY['full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes',
                                               'model_checks', 'retrain', 'data_quality']) j;
SELECT cs._job_due('retention', 0) AS due;
SELECT job FROM cs._start_due_job(0);
SELECT cs._run_job(max(id)) FROM cs.job_runs WHERE job = 'retention';
SELECT job, status, customers, jsonb_path_query_array(details, '$[*].partition_name') AS dropped
  FROM cs.job_runs WHERE job = 'retention';
SELECT cs._job_due('retention', 0) AS due_again;
SELECT count(*) AS partitions_of_2020 FROM pg_class
 WHERE relnamespace = 'cs'::regnamespace AND relname ~ '_y2020m';

-- the partitions job creates history months ahead too
SELECT cs.ensure_history_partitions(current_date, current_date + 90) AS missing_ahead;
