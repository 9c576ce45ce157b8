-- cscopilot 0.2.0 -> 0.3.0: schema changes and data migrations only.
--
-- `make` builds cscopilot--0.2.0--0.3.0.sql from src/sql/pre_install/*.sql,
-- this file, then every re-runnable file src/sql/[0-9]*.sql (95_security.sql
-- last), so functions, views, triggers, comments and grants need nothing here.
-- Put here what CREATE OR REPLACE cannot do, in the order it must happen:
-- ALTER TABLE for a new column (the same column in src/sql/schema/), new
-- tables and indexes, changes to shipped rows, and DROP of a function or
-- view whose signature or columns change, before the re-runnable files create
-- it again.

-- The dirty queue settles a mark only when a refresh counted every row that
-- set it (src/sql/20_health.sql): a generation instead of the mark's time,
-- and when it is due and covered, for rows stamped ahead of the clock.
ALTER TABLE cs.dirty_customers
    ADD COLUMN due_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ADD COLUMN covered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ADD COLUMN generation bigint NOT NULL DEFAULT 0;
-- marks queued before the update are due as they were
UPDATE cs.dirty_customers SET due_at = marked_at, covered_at = marked_at;
CREATE INDEX dirty_customers_due_idx ON cs.dirty_customers (due_at, customer_id) WHERE NOT parked;
COMMENT ON TABLE cs.dirty_customers IS 'Customers whose signals changed since they were last scored; filled by load triggers, drained by cs.refresh().  A refresh removes a mark only when its features, taken as of a time at or after covered_at from a snapshot that holds every load that set the mark, count all of them.';
COMMENT ON COLUMN cs.dirty_customers.marked_at IS 'Last time a load marked the customer.';
COMMENT ON COLUMN cs.dirty_customers.due_at IS 'When the next refresh is due: the load''s time, or for rows stamped ahead of the server''s clock the time of the earliest of them.  cs.refresh() and the worker take marks that are due.';
COMMENT ON COLUMN cs.dirty_customers.generation IS 'Counts the loads that marked the customer again: a refresh removes the mark only if its generation is the one the refresh read.';
COMMENT ON COLUMN cs.dirty_customers.covered_at IS 'The latest time stamped on the rows that set the mark (at least the time of the load): a refresh as of this time or later counts every one of them.';

-- The refresh pipeline takes the time it refreshes as of (cs._refresh_customers).
DROP FUNCTION cs._refresh_customers(uuid[]);

-- One path raises, re-fires, escalates and resolves alerts for rules, model
-- drift and data quality (src/sql/60_alerts.sql): its firing type, and the
-- per-row event logger it replaces.
CREATE TYPE cs.alert_firing AS (
    customer_id       uuid,
    rule_id           int,
    alert_type        text,
    severity          text,
    title             text,
    description       text,
    risk_factors      jsonb,
    suggested_actions jsonb,
    assigned_to       text,
    mrr_at_risk       numeric,
    cooldown          interval,
    details           jsonb
);
COMMENT ON TYPE cs.alert_firing IS 'Internal: an alert condition found true, passed to cs._raise_alerts: the alert''s fields (identified by customer and rule, or for model and data alerts by risk_factors model, or check and subject), the rule''s cooldown (NULL: none) and details for the created event.';
DROP FUNCTION IF EXISTS cs._alert_event(cs.alerts, text, text, text, jsonb);

-- The CSM's workspace: tasks, overdue tasks as alerts of type task, and the
-- outbox that external senders drain (src/sql/schema/73_tasks.sql, 77_outbox.sql).
ALTER TABLE cs.alerts DROP CONSTRAINT alerts_alert_type_check,
    ADD CONSTRAINT alerts_alert_type_check CHECK (alert_type IN ('risk', 'opportunity', 'model', 'data', 'task'));
COMMENT ON COLUMN cs.alerts.alert_type IS 'risk, opportunity, model, data, or task (an overdue task, cs._task_alerts).';
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
    alert_id     uuid REFERENCES cs.alerts (id) ON DELETE SET NULL,
    playbook     text REFERENCES cs.playbooks (name) ON UPDATE CASCADE,
    step         int CHECK (step > 0),
    PRIMARY KEY (customer_id, id),
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
CREATE TABLE cs.outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text NOT NULL CHECK (topic IN ('alert', 'digest')),
    recipient    text,
    subject      text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    leased_until timestamptz,
    leased_by    text,
    attempts     int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    acked_at     timestamptz,
    acked_by     text
);
-- Claims read the unacknowledged messages in id order.
CREATE INDEX outbox_pending_idx ON cs.outbox (id) WHERE acked_at IS NULL;
COMMENT ON TABLE cs.outbox IS 'Messages for external senders, delivered at least once: cs.outbox_claim leases a batch, cs.outbox_ack acknowledges it; a message not acknowledged before its lease ends is claimed again. Alerts (at creation) and digests (cs.enqueue_digest) enqueue messages.';
COMMENT ON COLUMN cs.outbox.id IS 'Message id, in enqueue order.';
COMMENT ON COLUMN cs.outbox.topic IS 'alert or digest.';
COMMENT ON COLUMN cs.outbox.recipient IS 'Role name of the CSM the message is for (the alert''s assignee, the digest''s CSM); NULL when nobody is.';
COMMENT ON COLUMN cs.outbox.subject IS 'Subject line.';
COMMENT ON COLUMN cs.outbox.payload IS 'The message: the alert''s fields, or the digest''s html and text.';
COMMENT ON COLUMN cs.outbox.created_at IS 'When the message was enqueued.';
COMMENT ON COLUMN cs.outbox.leased_until IS 'End of the current lease; the message can be claimed again after it unless acknowledged.';
COMMENT ON COLUMN cs.outbox.leased_by IS 'Consumer that claimed the message last.';
COMMENT ON COLUMN cs.outbox.attempts IS 'How many times the message was claimed.';
COMMENT ON COLUMN cs.outbox.acked_at IS 'When a consumer acknowledged the message (NULL while pending).';
COMMENT ON COLUMN cs.outbox.acked_by IS 'Consumer (role) that acknowledged the message.';

-- The CSM's workspace (src/sql/74_workspace.sql): engagements a CSM logs
-- (kind note, and who logged it), opportunity stages she moves, and the
-- indexes of the account timeline (src/sql/schema/74_workspace.sql).
ALTER TABLE cs.engagements DROP CONSTRAINT engagements_kind_check;
ALTER TABLE cs.engagements
    ADD CONSTRAINT engagements_kind_check
        CHECK (kind IN ('meeting', 'call', 'email', 'qbr', 'training', 'onsite', 'note', 'other')),
    ADD COLUMN logged_by text;
COMMENT ON COLUMN cs.engagements.kind IS 'meeting, call, email, qbr, training, onsite, note (an internal note of the CSM: no touch, counted in no feature) or other.';
COMMENT ON COLUMN cs.engagements.logged_by IS 'Role of the CSM who logged it with cs.log_engagement; NULL for loaded rows.';
ALTER TABLE cs.opportunities
    ADD COLUMN won_mrr numeric(10,2) CHECK (won_mrr >= 0),
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN updated_at timestamptz,
    ADD COLUMN updated_by text,
    ADD CONSTRAINT opportunities_won_mrr_status_check CHECK (won_mrr IS NULL OR status = 'won');
COMMENT ON COLUMN cs.opportunities.won_mrr IS 'MRR actually won, for status won (cs.move_opportunity requires it); NULL otherwise.';
COMMENT ON COLUMN cs.opportunities.closed_at IS 'When the opportunity was won, lost or dismissed.';
COMMENT ON COLUMN cs.opportunities.updated_at IS 'When cs.move_opportunity last moved it; NULL if never moved.';
COMMENT ON COLUMN cs.opportunities.updated_by IS 'Role that last moved it with cs.move_opportunity.';
CREATE INDEX support_tickets_customer_closed_idx ON cs.support_tickets (customer_id, closed_at)
    WHERE closed_at IS NOT NULL;
CREATE INDEX invoices_customer_paid_idx ON cs.invoices (customer_id, paid_at)
    WHERE paid_at IS NOT NULL;
CREATE INDEX invoices_customer_failed_idx ON cs.invoices (customer_id, due_date)
    WHERE status IN ('failed', 'uncollectible');
CREATE INDEX subscriptions_customer_ended_idx ON cs.subscriptions (customer_id, ended_at)
    WHERE ended_at IS NOT NULL;
CREATE INDEX alerts_customer_time_idx ON cs.alerts (customer_id, created_at);
CREATE INDEX actions_customer_outcome_idx ON cs.actions (customer_id, outcome_at)
    WHERE outcome_at IS NOT NULL;
CREATE INDEX opportunities_customer_closed_idx ON cs.opportunities (customer_id, closed_at)
    WHERE closed_at IS NOT NULL;
