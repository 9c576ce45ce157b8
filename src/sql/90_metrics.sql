-- Re-runnable: metrics for monitoring, in the shape postgres_exporter's
-- custom queries read (contrib/postgres_exporter/cscopilot-queries.yaml):
-- one view per metric namespace, label columns first, then one numeric column
-- per metric.  Every query of the YAML file is "SELECT * FROM cs.metrics_<ns>",
-- so what Prometheus sees is defined, commented and tested here.
--
-- Each view is cheap enough to scrape every 15 seconds on a large database:
-- counters of rows written come from the statistics collector
-- (pg_stat_get_tuples_inserted, as pg_stat_user_tables.n_tup_ins) rather than count(*) over score history,
-- queue figures from the dirty queue's index, alert counts from the
-- (status, severity) index.  The views are security_invoker: the exporter's
-- role sees what row-level security shows it, so it should be an admin
-- (README, "Monitoring with Prometheus").

CREATE OR REPLACE VIEW cs.metrics_worker WITH (security_invoker = true) AS
SELECT w.database,
       w.state,
       (w.pid IS NOT NULL AND w.state NOT IN ('stopped', 'disabled', 'no_extension'))::int AS up,
       coalesce(w.queue_depth, 0) AS queue_depth,
       coalesce(w.parked, 0) AS parked,
       coalesce(extract(epoch FROM w.lag), 0)::float8 AS lag_seconds,
       coalesce(w.batches, 0) AS batches_total,
       coalesce(w.customers_scored, 0) AS customers_scored_total,
       coalesce(w.last_batch_customers, 0) AS last_batch_customers,
       extract(epoch FROM clock_timestamp() - w.last_batch_at)::float8 AS last_batch_age_seconds,
       extract(epoch FROM clock_timestamp() - w.started_at)::float8 AS uptime_seconds,
       t.last_batch_seconds,
       coalesce(t.batch_seconds_total, 0) AS batch_seconds_total
  FROM cs.worker_status w
  LEFT JOIN cs._worker_batch_times() t ON t.database = w.database
 WHERE w.database = current_database();
COMMENT ON VIEW cs.metrics_worker IS 'Prometheus metrics of the scoring worker of this database (namespace cscopilot_worker): one row, also when no worker runs (state says why).';
COMMENT ON COLUMN cs.metrics_worker.database IS 'Label: the database.';
COMMENT ON COLUMN cs.metrics_worker.state IS 'Label: worker state as in cs.worker_status (idle, batch, job, ..., not_configured, not_preloaded).';
COMMENT ON COLUMN cs.metrics_worker.up IS 'Gauge: 1 when a worker runs for this database, else 0.';
COMMENT ON COLUMN cs.metrics_worker.queue_depth IS 'Gauge: dirty customers waiting to be rescored.';
COMMENT ON COLUMN cs.metrics_worker.parked IS 'Gauge: customers parked after repeated failed refreshes.';
COMMENT ON COLUMN cs.metrics_worker.lag_seconds IS 'Gauge: how long the earliest due dirty mark has waited, in seconds (0 with an empty queue).';
COMMENT ON COLUMN cs.metrics_worker.batches_total IS 'Counter: batches run since the worker started (resets with the worker).';
COMMENT ON COLUMN cs.metrics_worker.customers_scored_total IS 'Counter: customers refreshed by batches since the worker started.';
COMMENT ON COLUMN cs.metrics_worker.last_batch_customers IS 'Gauge: customers refreshed by the last batch.';
COMMENT ON COLUMN cs.metrics_worker.last_batch_age_seconds IS 'Gauge: seconds since the last batch ended; NULL (NaN) before the first.';
COMMENT ON COLUMN cs.metrics_worker.last_batch_seconds IS 'Gauge: how long the last batch took, in seconds; NULL (NaN) before the first.';
COMMENT ON COLUMN cs.metrics_worker.batch_seconds_total IS 'Counter: seconds spent in batches since the worker started (with batches_total, the mean batch duration).';
COMMENT ON COLUMN cs.metrics_worker.uptime_seconds IS 'Gauge: seconds since the worker started; NULL (NaN) when none runs.';

-- The jobs of cs.job_runs, every one of them a row even before its first run,
-- so that its series exist (the list is the table's CHECK constraint; the
-- regression test compares them).
CREATE OR REPLACE VIEW cs.metrics_jobs WITH (security_invoker = true) AS
SELECT j.job,
       count(r.id) AS runs_total,
       count(r.id) FILTER (WHERE r.status = 'failed') AS failures_total,
       count(r.id) FILTER (WHERE r.status = 'running') AS running,
       count(r.id) FILTER (WHERE r.finished_at IS NOT NULL) AS finished_total,
       coalesce(sum(extract(epoch FROM r.finished_at - r.started_at)), 0)::float8 AS duration_seconds_total,
       (SELECT extract(epoch FROM l.finished_at - l.started_at)::float8 FROM cs.job_runs l
         WHERE l.job = j.job AND l.database = current_database() AND l.finished_at IS NOT NULL
         ORDER BY l.started_at DESC, l.id DESC LIMIT 1) AS last_duration_seconds,
       (SELECT l.customers::float8 FROM cs.job_runs l
         WHERE l.job = j.job AND l.database = current_database() AND l.finished_at IS NOT NULL
         ORDER BY l.started_at DESC, l.id DESC LIMIT 1) AS last_customers,
       extract(epoch FROM clock_timestamp() - max(r.finished_at) FILTER (WHERE r.status = 'succeeded'))::float8
           AS last_success_age_seconds
  FROM unnest(ARRAY['batch', 'full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes',
                    'model_checks', 'retrain', 'data_quality', 'retention']) j(job)
  LEFT JOIN cs.job_runs r ON r.job = j.job AND r.database = current_database()
 GROUP BY j.job;
COMMENT ON VIEW cs.metrics_jobs IS 'Prometheus metrics of the worker''s jobs from cs.job_runs (namespace cscopilot_jobs): one row per job. Batches are recorded there only when they fail as a whole, so batch rows count failures.';
COMMENT ON COLUMN cs.metrics_jobs.job IS 'Label: the job (batch, full_rescore, daily_snapshot, partitions, action_outcomes, model_checks, retrain, data_quality, retention).';
COMMENT ON COLUMN cs.metrics_jobs.runs_total IS 'Counter: runs recorded.';
COMMENT ON COLUMN cs.metrics_jobs.failures_total IS 'Counter: runs that failed.';
COMMENT ON COLUMN cs.metrics_jobs.running IS 'Gauge: runs in progress.';
COMMENT ON COLUMN cs.metrics_jobs.finished_total IS 'Counter: runs finished (any status).';
COMMENT ON COLUMN cs.metrics_jobs.duration_seconds_total IS 'Counter: seconds spent in finished runs; rate(duration_seconds_total) / rate(finished_total) is the mean duration.';
COMMENT ON COLUMN cs.metrics_jobs.last_duration_seconds IS 'Gauge: duration of the last finished run, in seconds; NULL (NaN) before the first.';
COMMENT ON COLUMN cs.metrics_jobs.last_customers IS 'Gauge: customers the last finished run refreshed (partitions created, problems found: see cs.job_runs.customers); NULL (NaN) when not applicable.';
COMMENT ON COLUMN cs.metrics_jobs.last_success_age_seconds IS 'Gauge: seconds since the last successful run finished; NULL (NaN) before the first.';

-- Rows written since the statistics were last reset, per result table.
CREATE OR REPLACE VIEW cs.metrics_scoring WITH (security_invoker = true) AS
SELECT current_database()::text AS database,
       (SELECT count(*) FROM cs.customers c WHERE c.churned_at IS NULL) AS active_customers,
       (SELECT count(*) FROM cs.dirty_customers d WHERE NOT d.parked) AS dirty_customers,
       pg_stat_get_tuples_inserted('cs.customer_health_scores'::regclass) AS health_scores_total,
       pg_stat_get_tuples_inserted('cs.risk_assessments'::regclass) AS risk_assessments_total,
       pg_stat_get_tuples_inserted('cs.customer_features'::regclass) + pg_stat_get_tuples_updated('cs.customer_features'::regclass) AS feature_vectors_total,
       pg_stat_get_tuples_inserted('cs.opportunities'::regclass) AS opportunities_total,
       pg_stat_get_tuples_inserted('cs.alerts'::regclass) + pg_stat_get_tuples_inserted('cs.system_alerts'::regclass) AS alerts_raised_total;
COMMENT ON VIEW cs.metrics_scoring IS 'Prometheus metrics of scoring (namespace cscopilot_scoring): customers, the dirty queue, and counters of result rows written (from the statistics of pg_stat_user_tables, so they reset with the statistics, as Prometheus counters may).';
COMMENT ON COLUMN cs.metrics_scoring.database IS 'Label: the database.';
COMMENT ON COLUMN cs.metrics_scoring.active_customers IS 'Gauge: customers not churned.';
COMMENT ON COLUMN cs.metrics_scoring.dirty_customers IS 'Gauge: customers marked dirty and not parked (due now or later).';
COMMENT ON COLUMN cs.metrics_scoring.health_scores_total IS 'Counter: health scores written (rows inserted into cs.customer_health_scores).';
COMMENT ON COLUMN cs.metrics_scoring.risk_assessments_total IS 'Counter: risk assessments written.';
COMMENT ON COLUMN cs.metrics_scoring.feature_vectors_total IS 'Counter: feature vectors written (rows inserted or updated in cs.customer_features).';
COMMENT ON COLUMN cs.metrics_scoring.opportunities_total IS 'Counter: opportunities written.';
COMMENT ON COLUMN cs.metrics_scoring.alerts_raised_total IS 'Counter: alerts raised (rows inserted into cs.alerts and cs.system_alerts; a re-firing alert updates its row).';

-- Every type x severity x unresolved status is a row, zero when there is no
-- such alert, so a series drops to 0 instead of disappearing.
CREATE OR REPLACE VIEW cs.metrics_alerts WITH (security_invoker = true) AS
WITH unresolved AS (
    -- one pass over the unresolved alerts (indexes alerts_status_idx and system_alerts_status_idx)
    SELECT a.alert_type::text AS alert_type, a.severity::text AS severity, a.status::text AS status,
           count(*) AS alerts, sum(a.mrr_at_risk) AS mrr_at_risk
      FROM (SELECT x.alert_type, x.severity, x.status, x.mrr_at_risk FROM cs.alerts x
             WHERE x.status IN ('open', 'acknowledged', 'snoozed')
            UNION ALL
            SELECT x.alert_type, x.severity, x.status, 0 FROM cs.system_alerts x
             WHERE x.status IN ('open', 'acknowledged', 'snoozed')) a
     GROUP BY 1, 2, 3
)
SELECT t.alert_type,
       s.severity,
       st.status,
       coalesce(u.alerts, 0) AS alerts,
       coalesce(u.mrr_at_risk, 0)::float8 AS mrr_at_risk
  FROM unnest(ARRAY['risk', 'opportunity', 'model', 'data']) t(alert_type)
 CROSS JOIN unnest(ARRAY['low', 'medium', 'high', 'critical']) s(severity)
 CROSS JOIN unnest(ARRAY['open', 'acknowledged', 'snoozed']) st(status)
  LEFT JOIN unresolved u ON u.alert_type = t.alert_type AND u.severity = s.severity AND u.status = st.status;
COMMENT ON VIEW cs.metrics_alerts IS 'Prometheus metrics of unresolved alerts (namespace cscopilot_alerts): one row per alert type, severity and status (open, acknowledged, snoozed), zero included.';
COMMENT ON COLUMN cs.metrics_alerts.alert_type IS 'Label: risk, opportunity, model or data.';
COMMENT ON COLUMN cs.metrics_alerts.severity IS 'Label: low, medium, high or critical.';
COMMENT ON COLUMN cs.metrics_alerts.status IS 'Label: open, acknowledged or snoozed.';
COMMENT ON COLUMN cs.metrics_alerts.alerts IS 'Gauge: unresolved alerts.';
COMMENT ON COLUMN cs.metrics_alerts.mrr_at_risk IS 'Gauge: their MRR at risk (cs.alerts.mrr_at_risk).';

-- All of the above in one long table, for psql and tests: one row per sample.
CREATE OR REPLACE VIEW cs.metrics WITH (security_invoker = true) AS
SELECT 'cscopilot_worker_' || m.key AS metric, jsonb_build_object('database', w.database, 'state', w.state) AS labels,
       m.value::float8 AS value
  FROM cs.metrics_worker w
 CROSS JOIN LATERAL jsonb_each_text(to_jsonb(w) - 'database' - 'state') m
UNION ALL
SELECT 'cscopilot_jobs_' || m.key, jsonb_build_object('job', j.job), m.value::float8
  FROM cs.metrics_jobs j
 CROSS JOIN LATERAL jsonb_each_text(to_jsonb(j) - 'job') m
UNION ALL
SELECT 'cscopilot_scoring_' || m.key, jsonb_build_object('database', s.database), m.value::float8
  FROM cs.metrics_scoring s
 CROSS JOIN LATERAL jsonb_each_text(to_jsonb(s) - 'database') m
UNION ALL
SELECT 'cscopilot_alerts_' || m.key, jsonb_build_object('alert_type', a.alert_type, 'severity', a.severity, 'status', a.status),
       m.value::float8
  FROM cs.metrics_alerts a
 CROSS JOIN LATERAL jsonb_each_text(to_jsonb(a) - 'alert_type' - 'severity' - 'status') m;
COMMENT ON VIEW cs.metrics IS 'Every sample of cs.metrics_worker, metrics_jobs, metrics_scoring and metrics_alerts as Prometheus names them (namespace_column), with its labels: for a look in psql; the exporter reads the four views.';
COMMENT ON COLUMN cs.metrics.metric IS 'Prometheus metric name: cscopilot_<namespace>_<column>.';
COMMENT ON COLUMN cs.metrics.labels IS 'Label names and values of the sample.';
COMMENT ON COLUMN cs.metrics.value IS 'Value; NULL where the exporter reports NaN.';
