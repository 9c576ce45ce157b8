-- Install-once: the CSM's tasks (Gainsight's calls to action).  A change here
-- needs the same change, as ALTER, in src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.tasks (
    customer_id  uuid NOT NULL REFERENCES cs.customers (id) ON DELETE CASCADE,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    title        text NOT NULL CHECK (btrim(title) <> '' AND length(title) <= 255),
    detail       text,
    due_at       timestamptz NOT NULL CHECK (isfinite(due_at)),
    assigned_to  text NOT NULL,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    completed_by text,
    note         text,
    alert_id     uuid,
    playbook     text REFERENCES cs.playbooks (name) ON UPDATE CASCADE,
    step         int CHECK (step > 0),
    PRIMARY KEY (customer_id, id),
    -- No ON DELETE SET NULL (alert_id): Citus refuses SET NULL on a key that
    -- includes the distribution column; the trigger tasks_forget_alert on
    -- cs.alerts (src/sql/73_tasks.sql) clears alert_id instead.
    CONSTRAINT tasks_alert_id_fkey FOREIGN KEY (customer_id, alert_id) REFERENCES cs.alerts (customer_id, id),
    CHECK ((status = 'done') = (completed_at IS NOT NULL)),
    CHECK (step IS NULL OR playbook IS NOT NULL)
);
-- The task functions address a task by its id alone.
CREATE INDEX tasks_id_idx ON cs.tasks (id);
-- A CSM's open tasks by due date (the digest), and the overdue scan.
CREATE INDEX tasks_open_due_idx ON cs.tasks (assigned_to, due_at) WHERE status = 'open';
CREATE INDEX tasks_alert_idx ON cs.tasks (alert_id) WHERE alert_id IS NOT NULL;
COMMENT ON TABLE cs.tasks IS 'Tasks of CSMs about their customers (calls to action): written through cs.create_task, cs.assign_task, cs.complete_task and cs.reopen_task; an open task past its due date raises an alert of type task.';
COMMENT ON COLUMN cs.tasks.customer_id IS 'The customer the task is about.';
COMMENT ON COLUMN cs.tasks.id IS 'The task.';
COMMENT ON COLUMN cs.tasks.title IS 'What to do, in a line.';
COMMENT ON COLUMN cs.tasks.detail IS 'Longer description.';
COMMENT ON COLUMN cs.tasks.due_at IS 'When it must be done; an open task past it is overdue.';
COMMENT ON COLUMN cs.tasks.assigned_to IS 'Role name of the CSM who does it (the creator unless given).';
COMMENT ON COLUMN cs.tasks.status IS 'open or done.';
COMMENT ON COLUMN cs.tasks.created_by IS 'Role that created the task.';
COMMENT ON COLUMN cs.tasks.created_at IS 'When the task was created.';
COMMENT ON COLUMN cs.tasks.updated_at IS 'Last change of the task.';
COMMENT ON COLUMN cs.tasks.completed_at IS 'When the task was completed (NULL while open).';
COMMENT ON COLUMN cs.tasks.completed_by IS 'Role that completed the task last.';
COMMENT ON COLUMN cs.tasks.note IS 'Note given when the task was completed.';
COMMENT ON COLUMN cs.tasks.alert_id IS 'The alert the task answers, if any.';
COMMENT ON COLUMN cs.tasks.playbook IS 'The playbook the task carries out, if any.';
COMMENT ON COLUMN cs.tasks.step IS 'Step of the playbook (1 = first), if any.';
