-- Background scoring: batches of dirty customers with poison-customer parking,
-- scheduled jobs and their history, the wake-at-commit triggers and the
-- worker status view.  The workers themselves are C (src/worker.c); all of
-- this also works without them (cs.refresh_batch can be called by hand or
-- from pg_cron).

-- Runs left 'running' by a worker that died (crash, kill -9) are failed.
-- (The times of the job log are taken before the statements that write it:
-- on a Citus cluster it is a reference table, whose UPDATE may call no
-- volatile function.)
CREATE OR REPLACE FUNCTION cs._close_interrupted_runs() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ts timestamptz := clock_timestamp();
    db text := current_database();
    n  bigint;
BEGIN
    UPDATE cs.job_runs SET status = 'failed', finished_at = greatest(started_at, ts),
                           error = 'interrupted: the worker stopped during the run'
     WHERE status = 'running' AND database = db;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._close_interrupted_runs() IS 'Marks job runs left running by a worker that stopped as failed; the worker calls it when it starts.';

------------------------------------------------------------------------------
-- Batches
------------------------------------------------------------------------------

-- The cscopilot.max_attempts setting.
CREATE OR REPLACE FUNCTION cs._max_attempts() RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT cs.setting('cscopilot.max_attempts')::int
$$;
COMMENT ON FUNCTION cs._max_attempts() IS 'The cscopilot.max_attempts setting.';

-- Counts a failed refresh against a customer, parking it after max_attempts;
-- returns whether it is parked now.
CREATE OR REPLACE FUNCTION cs._customer_failed(id uuid, error text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    is_parked boolean;
    n         int;
BEGIN
    -- A mark held by a load in progress is being set again: count nothing
    -- rather than wait for the load (the refresh lock is held).
    UPDATE cs.dirty_customers d
       SET attempts = d.attempts + 1, last_error = error, parked = d.attempts + 1 >= cs._max_attempts()
     WHERE d.customer_id = (SELECT x.customer_id FROM cs.dirty_customers x
                             WHERE x.customer_id = _customer_failed.id FOR UPDATE SKIP LOCKED)
    RETURNING d.parked, d.attempts INTO is_parked, n;
    IF is_parked THEN
        RAISE WARNING 'cscopilot: customer % parked after % failed refreshes: %', id, n, error
            USING HINT = 'Fix the cause, then UPDATE cs.dirty_customers SET parked = false, attempts = 0 to retry it.';
    END IF;
    RETURN coalesce(is_parked, false);
END;
$$;
COMMENT ON FUNCTION cs._customer_failed(uuid, text) IS 'Counts a failed refresh against a dirty customer and parks it after cscopilot.max_attempts failures (with a WARNING); returns whether it is parked.';

-- Records a batch or job that failed as a whole.  For a failed job run the
-- run is closed; for a failed batch a row is added.  customers > 0 blames that
-- many of the oldest dirty customers (the worker does so once its batch size
-- is down to one, so that a customer that always exceeds the time limit is
-- parked instead of blocking the queue).
CREATE OR REPLACE FUNCTION cs._record_failure(job text, error text, customers int, run_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    victim uuid;
    ts     timestamptz := clock_timestamp();
BEGIN
    IF coalesce(run_id, 0) <> 0 THEN
        UPDATE cs.job_runs r SET status = 'failed', finished_at = greatest(r.started_at, ts),
                                 error = _record_failure.error
         WHERE r.id = run_id;
    ELSE
        INSERT INTO cs.job_runs (job, started_at, finished_at, status, error)
        VALUES (_record_failure.job, now(), greatest(now(), ts), 'failed', _record_failure.error);
    END IF;
    FOR victim IN SELECT d.customer_id FROM cs.dirty_customers d WHERE NOT d.parked AND d.due_at <= now()
                   ORDER BY d.due_at, d.customer_id LIMIT greatest(customers, 0)
                     FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM cs._customer_failed(victim, _record_failure.error);
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs._record_failure(text, text, int, bigint) IS
    'Records a failed batch or job run in cs.job_runs; optionally counts the failure against the oldest dirty customers.';

------------------------------------------------------------------------------
-- Scheduled jobs
------------------------------------------------------------------------------

-- Whether a job is due.  A job that failed is retried after ten minutes (or
-- its interval, when shorter); one that is running is not started twice.
CREATE OR REPLACE FUNCTION cs._job_due(job text, full_rescore_interval int) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    today timestamptz := date_trunc('day', now());
    retry interval := interval '10 minutes';
    kinds text[] := ARRAY[job];
    every int;
BEGIN
    IF job = 'full_rescore' THEN
        IF coalesce(full_rescore_interval, 0) <= 0 THEN
            RETURN false;
        END IF;
        retry := least(retry, make_interval(secs => full_rescore_interval));
        RETURN NOT EXISTS (SELECT 1 FROM cs.job_runs r WHERE r.job = 'full_rescore' AND r.database = current_database()
                              AND (r.status = 'running'
                                   OR (r.status = 'succeeded' AND r.started_at > now() - make_interval(secs => full_rescore_interval))
                                   OR (r.status = 'failed' AND r.started_at > now() - retry)));
    END IF;
    -- Data quality is checked hourly.
    IF job = 'data_quality' THEN
        RETURN NOT EXISTS (SELECT 1 FROM cs.job_runs r WHERE r.job = 'data_quality' AND r.database = current_database()
                              AND (r.status = 'running'
                                   OR (r.status IN ('succeeded', 'skipped') AND r.started_at > now() - interval '1 hour')
                                   OR (r.status = 'failed' AND r.started_at > now() - retry)));
    END IF;
    -- Scheduled retraining: every cscopilot.retrain_interval seconds (0 = never).
    IF job = 'retrain' THEN
        -- in seconds (current_setting would say '1h')
        every := cs.setting('cscopilot.retrain_interval')::int;
        IF every <= 0 THEN
            RETURN false;
        END IF;
        retry := least(retry, make_interval(secs => every));
        RETURN NOT EXISTS (SELECT 1 FROM cs.job_runs r WHERE r.job = 'retrain' AND r.database = current_database()
                              AND (r.status = 'running'
                                   OR (r.status IN ('succeeded', 'skipped') AND r.started_at > now() - make_interval(secs => every))
                                   OR (r.status = 'failed' AND r.started_at > now() - retry)));
    END IF;
    -- The daily snapshot is whatever full refresh ran today.
    IF job = 'daily_snapshot' THEN
        kinds := ARRAY['full_rescore', 'daily_snapshot'];
    END IF;
    RETURN NOT EXISTS (SELECT 1 FROM cs.job_runs r WHERE r.job = ANY (kinds) AND r.database = current_database()
                          AND (r.status = 'running'
                               OR (r.status IN ('succeeded', 'skipped') AND r.started_at >= today)
                               OR (r.status = 'failed' AND r.job = _job_due.job AND r.started_at > now() - retry)));
END;
$$;
COMMENT ON FUNCTION cs._job_due(text, int) IS
    'Whether a scheduled job is due: full_rescore every full_rescore_interval seconds (0 = never), retrain every cscopilot.retrain_interval seconds (0 = never), data_quality hourly, the others (retention among them) once per day; failed runs are retried after 10 minutes.';

-- Picks the first due job and records its run as running (its own
-- transaction, so the run is visible while it works); no row when none is due.
CREATE OR REPLACE FUNCTION cs._start_due_job(full_rescore_interval int) RETURNS TABLE (id bigint, job text)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    j text;
BEGIN
    -- Only one worker schedules jobs in a database at a time.
    IF NOT pg_try_advisory_xact_lock(hashtext('cscopilot.jobs')) THEN
        RETURN;
    END IF;
    -- A stepped full rescore under way goes on before anything new starts.
    RETURN QUERY SELECT r.id, r.job FROM cs.job_runs r
                  WHERE r.status = 'running' AND r.database = current_database()
                    AND r.job IN ('full_rescore', 'daily_snapshot') AND r.resume_after IS NOT NULL
                  ORDER BY r.id LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    FOREACH j IN ARRAY ARRAY['full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes', 'model_checks', 'retrain',
                             'data_quality', 'retention'] LOOP
        IF cs._job_due(j, full_rescore_interval) THEN
            RETURN QUERY INSERT INTO cs.job_runs AS r (job) VALUES (j) RETURNING r.id, r.job;
            RETURN;
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs._start_due_job(int) IS 'Returns the stepped full rescore under way, if any; else records the first due scheduled job as running and returns its run; nothing when no job is due.';

-- Runs a started job and closes its run (same transaction as the work).  With
-- step_size > 0 a full rescore (or daily snapshot) does one step of that many
-- customers and returns 'running' until none is left, so that the worker can
-- drain the dirty queue between steps and fresh loads never wait for a whole
-- rescore.
CREATE OR REPLACE FUNCTION cs._run_job(run_id bigint, step_size int DEFAULT 0) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    finished    timestamptz;
    j      text;
    n      bigint;
    st     text := 'succeeded';
    after  uuid;
    done   bigint;
    ids    uuid[];
    last_id uuid;
    job_details jsonb;
    err    text;
BEGIN
    -- (on a Citus cluster every job needs it, before its first read)
    PERFORM cs._one_connection_per_node();
    SELECT r.job, r.resume_after, r.customers INTO j, after, done
      FROM cs.job_runs r WHERE r.id = run_id AND r.status = 'running' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job run % is not running', run_id USING ERRCODE = 'no_data_found';
    END IF;
    IF j IN ('full_rescore', 'daily_snapshot') AND coalesce(step_size, 0) > 0 THEN
        -- every step under the refresh lock from its start: on a Citus cluster
        -- it also makes the reads below use one connection per node, which the
        -- writes of reference tables in the refresh require
        PERFORM cs._refresh_lock();
        IF after IS NULL THEN
            -- First step: the statistics of the whole population, which the
            -- steps rank against (percentile populations, opportunity
            -- statistics, the text-signal cache).  With customers missing
            -- from the feature store (a new installation) everyone's features
            -- are computed first.  Under the refresh lock, taken before any
            -- of it, as every refresh does.
            PERFORM cs._refresh_lock();
            PERFORM cs._refresh_statistics(clock_timestamp(),
                                           EXISTS (SELECT 1 FROM cs.customers c
                                                    WHERE NOT EXISTS (SELECT 1 FROM cs.customer_features f
                                                                       WHERE f.customer_id = c.id)));
        END IF;
        IF cs._is_distributed() THEN
            -- On a Citus cluster in the order of the distribution hash, so that
            -- a step's customers share a shard group (a shard is a range of
            -- it): in id order each step of even 10 customers spanned up to
            -- 10 groups, a refresh round each, and the job rescored 11
            -- customers a second, each step holding back the dirty queue.
            EXECUTE 'SELECT ARRAY(SELECT c.id FROM cs.customers c
                                   WHERE $1 IS NULL OR (pg_catalog.worker_hash(c.id), c.id) > (pg_catalog.worker_hash($1), $1)
                                   ORDER BY pg_catalog.worker_hash(c.id), c.id LIMIT $2)'
               INTO ids USING after, step_size;
        ELSE
            ids := ARRAY(SELECT c.id FROM cs.customers c WHERE after IS NULL OR c.id > after ORDER BY c.id LIMIT step_size);
        END IF;
        IF cardinality(ids) > 0 THEN
            PERFORM cs.refresh(ids);
            -- values, not expressions of the array: Citus's deparser crashes on
            -- an array subscript in the SET list of an UPDATE of its tables
            last_id := ids[cardinality(ids)];
            done := coalesce(done, 0) + cardinality(ids);
            UPDATE cs.job_runs r SET resume_after = last_id, customers = done WHERE r.id = run_id;
            RETURN 'running';
        END IF;
        n := coalesce(done, 0);
    ELSE
        CASE j
        WHEN 'full_rescore', 'daily_snapshot' THEN
            n := cs.refresh_all();
        WHEN 'partitions' THEN
            n := cs.ensure_usage_partitions(current_date, current_date + 90)
                 + cs.ensure_history_partitions(current_date, current_date + 90);
        WHEN 'retention' THEN
            -- history older than cscopilot.history_retention (src/sql/61_history.sql)
            SELECT count(*), coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.table_name, r.range_start, r.partition_name), '[]')
              INTO n, job_details
              FROM cs.apply_retention() r;
        WHEN 'action_outcomes' THEN
            n := cs.measure_action_outcomes();
        WHEN 'model_checks' THEN
            job_details := cs.run_model_checks();
        WHEN 'retrain' THEN
            -- cs.retrain does not raise for a failed step: it reports the steps
            job_details := cs.retrain('churn');
            st := job_details ->> 'status';
            err := job_details ->> 'error';
        WHEN 'data_quality' THEN
            n := cs.check_data_quality();
            -- overdue tasks are checked with the hourly job (src/sql/73_tasks.sql)
            PERFORM cs._task_alerts();
        ELSE
            RAISE EXCEPTION 'unknown job %', j USING ERRCODE = 'invalid_parameter_value';
        END CASE;
    END IF;
    finished := clock_timestamp();
    UPDATE cs.job_runs r SET status = st, customers = n, finished_at = greatest(r.started_at, finished),
                             details = job_details, error = err
     WHERE r.id = run_id;
    RETURN st;
END;
$$;
COMMENT ON FUNCTION cs._run_job(bigint, int) IS
    'Runs a scheduled job recorded by cs._start_due_job (full_rescore and daily_snapshot: cs.refresh_all(), or with step_size > 0 one step of that many customers in id order, returning running until the last (on a Citus cluster in the order of the distribution hash, so a step stays within a shard group); partitions: 90 days ahead, of cs.usage_events and the history tables; retention: cs.apply_retention(), what it dropped in details; action_outcomes: cs.measure_action_outcomes(); model_checks: cs.run_model_checks(); retrain: cs.retrain(''churn''), its steps in details; data_quality: cs.check_data_quality() and cs._task_alerts()) and closes its run; returns its status.';

------------------------------------------------------------------------------
-- Waking the worker
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs._wake_worker_at_commit() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'cs_wake_worker_at_commit';
COMMENT ON FUNCTION cs._wake_worker_at_commit() IS
    'Statement trigger: wakes the scoring worker of this database when the transaction commits (nothing without preloaded workers).';

CREATE OR REPLACE FUNCTION cs.wake_worker() RETURNS boolean
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cs_wake_worker';
COMMENT ON FUNCTION cs.wake_worker() IS
    'Wakes the scoring worker of this database now; false (with a notice) when no worker serves it. Requires cscopilot in shared_preload_libraries.';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'usage_events', 'support_tickets', 'invoices', 'engagements',
                             'nps_responses', 'contacts', 'subscriptions', 'contract_terms']
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON cs.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION cs._wake_worker_at_commit()', t || '_wake_worker', t);
        EXECUTE format('COMMENT ON TRIGGER %I ON cs.%I IS %L', t || '_wake_worker', t,
                       'Wakes the scoring worker of this database when the transaction commits, so the new data is scored at once.');
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- Status
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs._workers_available() RETURNS boolean
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cs_workers_available';
COMMENT ON FUNCTION cs._workers_available() IS 'Whether cscopilot was loaded through shared_preload_libraries, so that workers can run.';

CREATE OR REPLACE FUNCTION cs._worker_slots(
    OUT database text, OUT pid int, OUT state text, OUT naptime_ms int, OUT batch_size int,
    OUT started_at timestamptz, OUT last_wake_at timestamptz, OUT last_batch_at timestamptz,
    OUT last_batch_customers bigint, OUT last_batch_status text, OUT batches bigint, OUT customers_scored bigint)
RETURNS SETOF record
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cs_worker_slots';
COMMENT ON FUNCTION cs._worker_slots() IS 'The scoring workers as shared memory knows them: one row per database in cscopilot.databases.';

CREATE OR REPLACE FUNCTION cs._worker_batch_times(OUT database text, OUT last_batch_seconds float8,
                                                  OUT batch_seconds_total float8)
RETURNS SETOF record
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cs_worker_batch_times';
COMMENT ON FUNCTION cs._worker_batch_times() IS 'How long the scoring workers'' batches take, as shared memory knows it: per database, the last batch''s duration and the sum over every batch since the worker started.';

CREATE OR REPLACE VIEW cs.worker_status WITH (security_invoker = true) AS
WITH slots AS (
    SELECT * FROM cs._worker_slots()
), rows AS (
    SELECT s.* FROM slots s
    UNION ALL
    SELECT current_database()::text, NULL, CASE WHEN cs._workers_available() THEN 'not_configured' ELSE 'not_preloaded' END,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
     WHERE NOT EXISTS (SELECT 1 FROM slots s WHERE s.database = current_database())
), q AS (
    SELECT count(*) FILTER (WHERE NOT d.parked) AS queue_depth,
           count(*) FILTER (WHERE d.parked) AS parked,
           coalesce(array_agg(d.customer_id ORDER BY d.marked_at) FILTER (WHERE d.parked), '{}') AS parked_customers,
           -- marks stamped ahead wait for their time: they are not late
           CASE WHEN count(*) FILTER (WHERE NOT d.parked) > 0
                THEN greatest(interval '0', clock_timestamp() - min(d.due_at) FILTER (WHERE NOT d.parked)) END AS lag
      FROM cs.dirty_customers d
), last_runs AS (
    SELECT DISTINCT ON (r.job) r.job, r.started_at, r.status, r.error
      FROM cs.job_runs r
     WHERE r.database = current_database()
     ORDER BY r.job, r.started_at DESC, r.id DESC
)
SELECT r.database,
       r.pid,
       r.state,
       CASE r.state
           WHEN 'not_preloaded' THEN 'cscopilot is not in shared_preload_libraries: no worker runs; call cs.refresh() yourself, for example from pg_cron.'
           WHEN 'not_configured' THEN 'This database is not listed in cscopilot.databases.'
           WHEN 'no_extension' THEN 'The extension is not installed in this database; the worker checks again every 30 seconds.'
           WHEN 'stopped' THEN 'No worker runs now; the launcher starts one within seconds.'
           WHEN 'disabled' THEN 'cscopilot.enabled is off.'
           WHEN 'starting' THEN 'The worker is starting.'
           WHEN 'idle' THEN 'Waiting for a load to commit or for the naptime to pass.'
           WHEN 'batch' THEN 'Rescoring a batch of dirty customers.'
           WHEN 'job' THEN 'Running a scheduled job.'
       END AS detail,
       r.naptime_ms,
       r.batch_size,
       r.started_at,
       r.last_wake_at,
       r.last_batch_at,
       r.last_batch_customers,
       r.last_batch_status,
       r.batches,
       r.customers_scored,
       q.queue_depth,
       q.parked,
       q.parked_customers,
       q.lag,
       (SELECT l.started_at FROM last_runs l WHERE l.job = 'full_rescore' AND here) AS last_full_rescore_at,
       (SELECT l.status FROM last_runs l WHERE l.job = 'full_rescore' AND here) AS last_full_rescore_status,
       (SELECT l.started_at FROM last_runs l WHERE l.job = 'daily_snapshot' AND here) AS last_daily_snapshot_at,
       (SELECT l.status FROM last_runs l WHERE l.job = 'daily_snapshot' AND here) AS last_daily_snapshot_status,
       (SELECT l.started_at FROM last_runs l WHERE l.job = 'partitions' AND here) AS last_partitions_at,
       (SELECT l.status FROM last_runs l WHERE l.job = 'partitions' AND here) AS last_partitions_status,
       (SELECT l.started_at FROM last_runs l WHERE l.job = 'action_outcomes' AND here) AS last_action_outcomes_at,
       (SELECT l.status FROM last_runs l WHERE l.job = 'action_outcomes' AND here) AS last_action_outcomes_status,
       (SELECT l.error FROM last_runs l WHERE l.status = 'failed' AND here ORDER BY l.started_at DESC LIMIT 1) AS last_error,
       CASE WHEN here THEN (SELECT coalesce(jsonb_object_agg(m.name || ':v' || m.version,
                                                             coalesce(m.applicability ->> 'verdict', 'not checked')), '{}')
                              FROM cs.models m
                             WHERE m.status = 'champion' AND m.kind IN ('churn', 'downgrade', 'payment')) END
           AS champion_applicability
  FROM rows r
 CROSS JOIN LATERAL (SELECT r.database = current_database() AS here) h
  LEFT JOIN q ON h.here;
COMMENT ON VIEW cs.worker_status IS 'The scoring workers: one row per database they serve (queue and job columns only for the current database), or one row saying why no worker serves this database.';
COMMENT ON COLUMN cs.worker_status.database IS 'Database the worker serves.';
COMMENT ON COLUMN cs.worker_status.pid IS 'Process id of the worker; NULL when none runs.';
COMMENT ON COLUMN cs.worker_status.state IS 'starting, idle, batch, job, no_extension, stopped, disabled; not_configured or not_preloaded when no worker can serve this database.';
COMMENT ON COLUMN cs.worker_status.detail IS 'What the state means, in a sentence.';
COMMENT ON COLUMN cs.worker_status.naptime_ms IS 'cscopilot.naptime in effect in the worker, in milliseconds (changes after a configuration reload).';
COMMENT ON COLUMN cs.worker_status.batch_size IS 'cscopilot.batch_size in effect in the worker.';
COMMENT ON COLUMN cs.worker_status.started_at IS 'When the worker started.';
COMMENT ON COLUMN cs.worker_status.last_wake_at IS 'Last time a committed load woke the worker.';
COMMENT ON COLUMN cs.worker_status.last_batch_at IS 'When the last batch ended.';
COMMENT ON COLUMN cs.worker_status.last_batch_customers IS 'Customers refreshed by the last batch.';
COMMENT ON COLUMN cs.worker_status.last_batch_status IS 'succeeded or failed (failed batches are also in cs.job_runs).';
COMMENT ON COLUMN cs.worker_status.batches IS 'Batches run since the worker started.';
COMMENT ON COLUMN cs.worker_status.customers_scored IS 'Customers refreshed by batches since the worker started.';
COMMENT ON COLUMN cs.worker_status.queue_depth IS 'Dirty customers waiting to be rescored (not parked).';
COMMENT ON COLUMN cs.worker_status.parked IS 'Customers parked after too many failed refreshes.';
COMMENT ON COLUMN cs.worker_status.parked_customers IS 'Ids of the parked customers (see cs.dirty_customers.last_error).';
COMMENT ON COLUMN cs.worker_status.lag IS 'How long the earliest due dirty mark has waited: how stale the oldest waiting score is (zero when no mark is due yet).';
COMMENT ON COLUMN cs.worker_status.last_full_rescore_at IS 'Start of the last full rescore.';
COMMENT ON COLUMN cs.worker_status.last_full_rescore_status IS 'Status of the last full rescore.';
COMMENT ON COLUMN cs.worker_status.last_daily_snapshot_at IS 'Start of the last separate daily snapshot (only when no full rescore ran that day).';
COMMENT ON COLUMN cs.worker_status.last_daily_snapshot_status IS 'Status of the last daily snapshot.';
COMMENT ON COLUMN cs.worker_status.last_partitions_at IS 'Start of the last creation of future usage_events partitions.';
COMMENT ON COLUMN cs.worker_status.last_partitions_status IS 'Status of the last partition creation.';
COMMENT ON COLUMN cs.worker_status.last_action_outcomes_at IS 'Start of the last measurement of action outcomes.';
COMMENT ON COLUMN cs.worker_status.last_action_outcomes_status IS 'Status of the last measurement of action outcomes (skipped while cs.measure_action_outcomes does not exist).';
COMMENT ON COLUMN cs.worker_status.last_error IS 'Error of the most recent failed run of any job or batch.';
COMMENT ON COLUMN cs.worker_status.champion_applicability IS 'Per risk champion (name:vN), whether it applies to this data as last checked (cs.model_applicability: applicable, not applicable, no data, not checked); an inapplicable champion raises no risk alerts.';
