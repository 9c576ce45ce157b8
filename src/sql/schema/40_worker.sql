-- Install-once: tables of worker, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

------------------------------------------------------------------------------
-- Job history
------------------------------------------------------------------------------

CREATE TABLE cs.job_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text NOT NULL CHECK (job IN ('batch', 'full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes',
                                         'model_checks', 'retrain', 'data_quality', 'retention')),
    database    text NOT NULL DEFAULT current_database(),
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    customers   bigint,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
    error       text,
    resume_after uuid,
    details     jsonb,
    CONSTRAINT job_runs_finished_after_start_check CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX job_runs_job_time_idx ON cs.job_runs (job, started_at DESC);
COMMENT ON TABLE cs.job_runs IS 'One row per run of a scheduled job of the scoring worker, and per batch that failed as a whole.';
COMMENT ON COLUMN cs.job_runs.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.job_runs.job IS 'batch (failed batches only), full_rescore, daily_snapshot, partitions, action_outcomes, model_checks, retrain, data_quality or retention.';
COMMENT ON COLUMN cs.job_runs.database IS 'Database the run belongs to.';
COMMENT ON COLUMN cs.job_runs.started_at IS 'When the run started.';
COMMENT ON COLUMN cs.job_runs.finished_at IS 'When it finished; NULL while running.';
COMMENT ON COLUMN cs.job_runs.customers IS 'Customers the run refreshed (partitions it created, for partitions; problems found, for data_quality; partitions dropped or swept, for retention); NULL when not applicable.';
COMMENT ON COLUMN cs.job_runs.status IS 'running, succeeded, failed or skipped (nothing to do, for example a missing function).';
COMMENT ON COLUMN cs.job_runs.error IS 'Error message of a failed run.';
COMMENT ON COLUMN cs.job_runs.resume_after IS 'Full rescores and daily snapshots run by the worker in steps: the last customer id refreshed so far (customers go in id order); NULL before the first step.';
COMMENT ON COLUMN cs.job_runs.details IS 'What the run did, step by step: for retrain the steps of cs.retrain (policy, training set, training, registration), for model_checks the drift checks and promotion decisions, for retention the partitions dropped (cs.apply_retention).';
