-- Scoring worker, SQL side: settings, cs.refresh_batch (batch size, order,
-- marks, parking of poison customers), scheduled jobs and their history,
-- cs.worker_status.  The workers themselves are tested by test/t/*.pl.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

-- the settings exist, with their defaults; they change only in the configuration file
SHOW cscopilot.enabled;
SHOW cscopilot.databases;
SHOW cscopilot.naptime;
SHOW cscopilot.batch_size;
SHOW cscopilot.full_rescore_interval;
SHOW cscopilot.max_batch_runtime;
SHOW cscopilot.max_attempts;
SELECT name, setting, unit, context, vartype, min_val, max_val FROM pg_settings WHERE name LIKE 'cscopilot.%' ORDER BY name;
SET cscopilot.batch_size = 5;
-- the prefix is reserved: a typo is refused
SET cscopilot.batchsize = 5;

-- five customers, marked dirty by the load, marks in a known order
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed)
SELECT ('00000000-0000-0000-0000-00000000000' || i)::uuid, 'c' || i, 'Customer ' || i, 'smb', 100, 10
  FROM generate_series(1, 5) i;
UPDATE cs.dirty_customers SET marked_at = '2026-01-01'::timestamptz + (right(customer_id::text, 1)::int * interval '1 minute');
SELECT right(customer_id::text, 1) AS c, attempts, parked FROM cs.dirty_customers ORDER BY marked_at;

-- a batch takes the oldest marks first, at most batch_size of them
SELECT cs.refresh_batch(2);
SELECT right(customer_id::text, 1) AS c FROM cs.dirty_customers ORDER BY marked_at;
SELECT right(customer_id::text, 1) AS c, count(*) FROM cs.customer_health_scores GROUP BY 1 ORDER BY 1;
SELECT right(customer_id::text, 1) AS c FROM cs.customer_features ORDER BY 1;

-- bad batch sizes
SELECT cs.refresh_batch(0);
SELECT cs.refresh_batch(NULL);

-- a poison customer: its health score cannot be stored
CREATE FUNCTION public.poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.customer_id = '00000000-0000-0000-0000-000000000004' THEN
        RAISE EXCEPTION 'poisoned customer %', NEW.customer_id;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER poison BEFORE INSERT ON cs.customer_health_scores FOR EACH ROW EXECUTE FUNCTION public.poison();

-- the batch fails as a whole, is retried one by one: 3 and 5 are stored, 4 gets an attempt
SELECT cs.refresh_batch(10);
SELECT right(customer_id::text, 1) AS c, attempts, last_error, parked FROM cs.dirty_customers ORDER BY marked_at;
SELECT right(customer_id::text, 1) AS c, count(*) FROM cs.customer_health_scores GROUP BY 1 ORDER BY 1;
-- its features were not stored either (the whole refresh of 4 rolled back)
SELECT count(*) FROM cs.customer_features WHERE customer_id = '00000000-0000-0000-0000-000000000004';
-- second and third failure: parked (with a warning) after cscopilot.max_attempts = 3
SELECT cs.refresh_batch(10);
SELECT cs.refresh_batch(10);
SELECT right(customer_id::text, 1) AS c, attempts, parked FROM cs.dirty_customers ORDER BY marked_at;
-- parked customers are no longer picked
SELECT cs.refresh_batch(10);
SELECT attempts FROM cs.dirty_customers;

-- a new load re-stamps the mark of a waiting customer but does not unpark it
INSERT INTO cs.nps_responses (customer_id, score, responded_at) VALUES ('00000000-0000-0000-0000-000000000004', 9, '2026-01-02');
INSERT INTO cs.nps_responses (customer_id, score, responded_at) VALUES ('00000000-0000-0000-0000-000000000002', 9, '2026-01-02');
SELECT right(customer_id::text, 1) AS c, attempts, parked, marked_at > '2026-01-01 01:00' AS restamped FROM cs.dirty_customers ORDER BY 1;
SELECT cs.refresh_batch(10);
SELECT right(customer_id::text, 1) AS c, parked FROM cs.dirty_customers ORDER BY 1;

-- the status view says why no worker serves this database, and shows the queue
SELECT database = current_database() AS here, pid, state, detail, queue_depth, parked, parked_customers, lag IS NULL AS no_lag
  FROM cs.worker_status;
SELECT cs.wake_worker();

-- scheduled jobs: with full rescores off, the daily snapshot is due first
SELECT j, cs._job_due(j, 0) FROM unnest(ARRAY['full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes', 'model_checks', 'retrain']) j;
SELECT job FROM cs._start_due_job(0);
SELECT job, status, finished_at IS NULL AS unfinished FROM cs.job_runs;
-- the snapshot is refresh_all(), which fails while customer 4 is poisoned: the run is recorded as failed
SELECT cs._run_job(max(id)) FROM cs.job_runs;
SELECT cs._record_failure('daily_snapshot', 'poisoned customer', 0, max(id)) FROM cs.job_runs;
SELECT job, status, error, finished_at IS NOT NULL AS finished FROM cs.job_runs ORDER BY id;
-- a failed job is not retried at once: the next due job is partitions
DROP TRIGGER poison ON cs.customer_health_scores;
SELECT job FROM cs._start_due_job(0);
SELECT cs._run_job(max(id)) FROM cs.job_runs;
-- the outcomes of recorded actions: cs.measure_action_outcomes() runs and succeeds, with none to measure yet (customers 0)
SELECT job FROM cs._start_due_job(0);
SELECT cs._run_job(max(id)) FROM cs.job_runs;
-- the daily model checks (drift alerts, promotion policy)
SELECT job FROM cs._start_due_job(0);
SELECT cs._run_job(max(id)) FROM cs.job_runs;
-- the hourly data-quality check
SELECT job FROM cs._start_due_job(0);
SELECT cs._run_job(max(id)) FROM cs.job_runs;
-- nothing else is due now (retraining is off: cscopilot.retrain_interval = 0)
SELECT count(*) FROM cs._start_due_job(0);
-- a full rescore is due with an interval, then not again within it
SELECT job FROM cs._start_due_job(3600);
SELECT cs._run_job(max(id)) FROM cs.job_runs;
SELECT count(*) FROM cs._start_due_job(3600);
SELECT job, status, customers, error FROM cs.job_runs ORDER BY id;
-- the full rescore stored a score for every customer, and the daily snapshot counts it
SELECT count(DISTINCT customer_id) FROM cs.customer_health_scores;
SELECT cs._job_due('daily_snapshot', 0);
SELECT last_full_rescore_status, last_daily_snapshot_status, last_partitions_status, last_action_outcomes_status, last_error
  FROM cs.worker_status;

-- the worker runs a full rescore in steps (of about 200 ms, at most
-- cscopilot.batch_size customers, in id
-- order), between which it drains the dirty queue; a run under way is resumed
-- before any new job starts
SELECT count(*) AS customers FROM cs.customers;
INSERT INTO cs.job_runs (job) VALUES ('full_rescore');
SELECT cs._run_job(max(id), 2) AS step1 FROM cs.job_runs;
SELECT customers, status, right(resume_after::text, 1) AS resume_after FROM cs.job_runs ORDER BY id DESC LIMIT 1;
SELECT job, id = (SELECT max(id) FROM cs.job_runs) AS same_run FROM cs._start_due_job(0);
SELECT cs._run_job(max(id), 2) AS step2 FROM cs.job_runs;
SELECT cs._run_job(max(id), 2) AS step3 FROM cs.job_runs;
-- the step that finds nobody left closes the run
SELECT cs._run_job(max(id), 2) AS step4 FROM cs.job_runs;
SELECT customers, status, finished_at IS NOT NULL AS finished FROM cs.job_runs ORDER BY id DESC LIMIT 1;
SELECT count(*) FROM cs._start_due_job(0);

-- a run left running by a worker that died is closed as failed
INSERT INTO cs.job_runs (job) VALUES ('partitions');
SELECT cs._close_interrupted_runs();
SELECT job, status, error FROM cs.job_runs ORDER BY id DESC LIMIT 1;

-- a failed batch is recorded; blaming counts an attempt against the oldest dirty customer
UPDATE cs.customers SET mrr = 200 WHERE external_id IN ('c1', 'c2');
UPDATE cs.dirty_customers SET marked_at = '2026-01-01'::timestamptz + (right(customer_id::text, 1)::int * interval '1 minute');
SELECT cs._record_failure('batch', 'canceling statement due to statement timeout', 1, 0);
SELECT right(customer_id::text, 1) AS c, attempts, last_error FROM cs.dirty_customers ORDER BY 1;
SELECT job, status, error FROM cs.job_runs ORDER BY id DESC LIMIT 1;

-- the wake trigger is only a trigger
SELECT cs._wake_worker_at_commit();
