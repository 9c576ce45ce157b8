-- Install-once: tables of alerts, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.alert_rules (
    id          int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    alert_type  text NOT NULL CHECK (alert_type IN ('risk', 'opportunity', 'model', 'data')),
    condition   jsonb NOT NULL,
    severity_metric jsonb,
    severity_thresholds jsonb NOT NULL DEFAULT '{}',
    base_severity text NOT NULL DEFAULT 'medium' CHECK (base_severity IN ('low', 'medium', 'high', 'critical')),
    title       text,
    cooldown    interval NOT NULL DEFAULT '7 days' CHECK (cooldown >= '0'),
    auto_resolve boolean NOT NULL DEFAULT true,
    enabled     boolean NOT NULL DEFAULT true,
    description text
);
COMMENT ON TABLE cs.alert_rules IS 'Alert rules evaluated over current scores and features.';
COMMENT ON COLUMN cs.alert_rules.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.alert_rules.name IS 'Unique rule name.';
COMMENT ON COLUMN cs.alert_rules.alert_type IS 'risk or opportunity for rules evaluated over customers (model and data are reserved for other parts).';
COMMENT ON COLUMN cs.alert_rules.condition IS 'Structured condition, validated on write: {"all": [...]}, {"any": [...]}, {"not": c}, {"feature": name, "op": op, "value": n}, {"score": name, "op": op, "value": n}, {"band": "red" | [..]}.';
COMMENT ON COLUMN cs.alert_rules.severity_metric IS 'The metric severity is graded on: {"feature": name} or {"score": name}, with "direction": "higher" or "lower" (the direction that is more severe); NULL for a fixed severity.';
COMMENT ON COLUMN cs.alert_rules.severity_thresholds IS 'Metric thresholds for some of low, medium, high and critical, monotonic in the metric direction; the most severe level whose threshold is met applies.';
COMMENT ON COLUMN cs.alert_rules.base_severity IS 'The lowest severity of the rule''s alerts: the severity when there is no metric, the metric is missing or no threshold is met.';
COMMENT ON COLUMN cs.alert_rules.title IS 'Alert title; may use the placeholders of cs.render_template. NULL uses the rule name.';
COMMENT ON COLUMN cs.alert_rules.enabled IS 'Disabled rules are not evaluated (their open alerts are left as they are).';
COMMENT ON COLUMN cs.alert_rules.description IS 'What the rule detects, copied into the alert description.';
COMMENT ON COLUMN cs.alert_rules.cooldown IS 'Minimum time before a resolved alert of this rule may fire again for a customer.';
COMMENT ON COLUMN cs.alert_rules.auto_resolve IS 'Resolve the open alert when the condition clears.';

CREATE TABLE cs.alerts (
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    customer_id       uuid NOT NULL REFERENCES cs.customers (id),
    rule_id           int REFERENCES cs.alert_rules (id),
    alert_type        varchar(50) NOT NULL CHECK (alert_type IN ('risk', 'opportunity', 'task')),
    severity          varchar(20) NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    title             varchar(255) NOT NULL,
    description       text,
    risk_factors      jsonb,
    suggested_actions jsonb,
    status            varchar(20) NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'acknowledged', 'snoozed', 'resolved', 'dismissed')),
    assigned_to       varchar(255),
    snoozed_until     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        text,
    resolved_at       timestamptz,
    last_fired_at     timestamptz,
    escalated_at      timestamptz,
    fire_count        int NOT NULL DEFAULT 1,
    mrr_at_risk       numeric(10,2) NOT NULL DEFAULT 0 CHECK (mrr_at_risk >= 0),
    -- Keyed by the customer (issue 19): actions, tasks and the events
    -- reference (customer_id, id).  Alerts without a customer are in
    -- cs.system_alerts (src/sql/schema/62_system_alerts.sql).
    CONSTRAINT alerts_pkey PRIMARY KEY (customer_id, id)
);
-- At most one unresolved alert per (customer, rule).
CREATE UNIQUE INDEX alerts_one_open_per_rule ON cs.alerts (customer_id, rule_id)
    WHERE status IN ('open', 'acknowledged', 'snoozed');
CREATE INDEX alerts_status_idx ON cs.alerts (status, severity);
-- The lifecycle functions, the event logger and feedback find an alert by id alone.
CREATE INDEX alerts_id_idx ON cs.alerts (id);
-- Cooldown checks and per-customer lookups of resolved alerts.
CREATE INDEX alerts_customer_rule_idx ON cs.alerts (customer_id, rule_id, resolved_at);
COMMENT ON TABLE cs.alerts IS 'Alerts of a customer raised by rules and overdue tasks; at most one unresolved alert per customer and rule. Model and data alerts, which have no customer, are in cs.system_alerts.';
COMMENT ON COLUMN cs.alerts.customer_id IS 'The customer the alert is about.';
COMMENT ON COLUMN cs.alerts.alert_type IS 'risk, opportunity or task (an overdue task, cs._task_alerts); model and data alerts are in cs.system_alerts.';
COMMENT ON COLUMN cs.alerts.severity IS 'low, medium, high or critical.';
COMMENT ON COLUMN cs.alerts.status IS 'open, acknowledged, snoozed, resolved or dismissed.';
COMMENT ON COLUMN cs.alerts.assigned_to IS 'Role name of the CSM the alert is assigned to.';
COMMENT ON COLUMN cs.alerts.risk_factors IS 'Why the alert fired: the condition''s features and scores (source rule), the churn model''s factors (churn_model) and the health drivers (health).';
COMMENT ON COLUMN cs.alerts.mrr_at_risk IS 'MRR of the customer when the alert last fired (0 without MRR); stored so that the alert pages read the most severe, largest alerts from an index.';
COMMENT ON COLUMN cs.alerts.suggested_actions IS 'Playbooks answering the alert''s factors, ranked by learned effectiveness, with the rendered message.';
COMMENT ON COLUMN cs.alerts.snoozed_until IS 'End of the snooze; the next evaluation after it reopens the alert.';
COMMENT ON COLUMN cs.alerts.updated_by IS 'Role that made the last change.';
COMMENT ON COLUMN cs.alerts.resolved_at IS 'When the alert was resolved or dismissed; the rule''s cooldown runs from here.';
COMMENT ON COLUMN cs.alerts.last_fired_at IS 'Last evaluation that found the condition true.';
COMMENT ON COLUMN cs.alerts.escalated_at IS 'Last time a re-firing raised the severity.';
COMMENT ON COLUMN cs.alerts.fire_count IS 'Evaluations that found the condition true while the alert was unresolved.';

CREATE TABLE cs.alert_events (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    alert_id    uuid NOT NULL,
    event       text NOT NULL CHECK (event IN ('created', 'escalated', 'acknowledged', 'snoozed', 'reopened',
                                               'resolved', 'auto_resolved', 'dismissed', 'reassigned')),
    from_status text,
    to_status   text,
    actor       text NOT NULL DEFAULT current_user,
    at          timestamptz NOT NULL DEFAULT now(),
    note        text,
    details     jsonb,
    customer_id uuid NOT NULL
) PARTITION BY RANGE (at);
-- Keyed by the customer and the partition column (src/sql/schema/61_history.sql);
-- the events of model and data alerts are in cs.system_alert_events.
ALTER TABLE cs.alert_events
    ADD CONSTRAINT alert_events_pkey PRIMARY KEY (customer_id, id, at),
    ADD CONSTRAINT alert_events_alert_id_fkey FOREIGN KEY (customer_id, alert_id) REFERENCES cs.alerts (customer_id, id) ON DELETE CASCADE;
CREATE TABLE cs.alert_events_default PARTITION OF cs.alert_events DEFAULT;
CREATE INDEX alert_events_alert_idx ON cs.alert_events (alert_id, id);
COMMENT ON TABLE cs.alert_events IS 'Audit trail of the alerts of customers (cs.alerts; model and data alerts log to cs.system_alert_events): every creation, escalation and lifecycle transition, with who and when.  Range-partitioned by month on at (a default partition takes any date); cs.apply_retention drops months older than cscopilot.history_retention, keeping the latest event of every alert.';
COMMENT ON COLUMN cs.alert_events.id IS 'Surrogate key, in event order.';
COMMENT ON COLUMN cs.alert_events.alert_id IS 'The alert (deleted with it).';
COMMENT ON COLUMN cs.alert_events.event IS 'created, escalated, acknowledged, snoozed, reopened, resolved, auto_resolved, dismissed or reassigned.';
COMMENT ON COLUMN cs.alert_events.from_status IS 'Status before the event.';
COMMENT ON COLUMN cs.alert_events.to_status IS 'Status after the event.';
COMMENT ON COLUMN cs.alert_events.actor IS 'Role that caused the event (current_user).';
COMMENT ON COLUMN cs.alert_events.at IS 'When it happened.';
COMMENT ON COLUMN cs.alert_events.note IS 'Note given with the transition.';
COMMENT ON COLUMN cs.alert_events.details IS 'Event details: severities of an escalation, snooze end, assignees.';
COMMENT ON COLUMN cs.alert_events.customer_id IS 'The alert''s customer, copied when the event is logged: the key, the foreign key and row-level security of the events follow the customer.';

-- The open alerts pages (cs.risk_alerts): most severe, then largest, first.
CREATE INDEX alerts_open_rank_idx ON cs.alerts (alert_type, cs.severity_rank(severity) DESC, mrr_at_risk DESC, created_at, id)
    WHERE status IN ('open', 'acknowledged', 'snoozed');

------------------------------------------------------------------------------
-- Evaluation
------------------------------------------------------------------------------

CREATE SEQUENCE cs.alert_number;
COMMENT ON SEQUENCE cs.alert_number IS 'Numbers alert firings; alert ids are derived from (customer, rule, number), so a fresh database yields the same ids for the same history.';

-- One firing of an alert, as the writers of alerts (rules, model drift, data
-- quality) hand it to cs._raise_alerts.
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
