-- Install-once: alerts without a customer (model and data alerts) and their
-- event log.  cs.alerts holds the alerts of customers only, keyed by
-- (customer_id, id) so that on Citus it is distributed by customer (issue 19);
-- these two tables have no customer_id and become reference tables
-- (cs.distribution_plan).  Raised, re-fired and resolved by the same path as
-- customer alerts (cs._raise_alerts, cs._resolve_alerts, cs._log_alert_events)
-- and worked with the same lifecycle functions (cs.acknowledge_alert, ...);
-- cs.all_alerts lists both kinds.  Admins only: row-level security shows
-- their rows to members of cscopilot_admin alone (src/sql/95_security.sql).

CREATE TABLE cs.system_alerts (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    alert_type        varchar(50) NOT NULL CHECK (alert_type IN ('model', 'data')),
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
    fire_count        int NOT NULL DEFAULT 1
);
-- At most one unresolved alert per key: the model (and check), or the data
-- check and subject (cs._alert_key, src/sql/pre_install/60_alerts.sql).
CREATE UNIQUE INDEX system_alerts_one_open_per_key ON cs.system_alerts (cs._alert_key(alert_type, NULL::int, risk_factors))
    WHERE status IN ('open', 'acknowledged', 'snoozed');
CREATE INDEX system_alerts_status_idx ON cs.system_alerts (status, severity);
COMMENT ON TABLE cs.system_alerts IS 'Alerts without a customer: model alerts (input drift, a champion that does not apply to this data) and data alerts (data quality, schema drift of sources); at most one unresolved alert per model (and check) or data check and subject. Visible to admins only.';
COMMENT ON COLUMN cs.system_alerts.id IS 'The alert; the lifecycle functions (cs.acknowledge_alert, ...) take it as they take the id of a customer alert.';
COMMENT ON COLUMN cs.system_alerts.alert_type IS 'model or data.';
COMMENT ON COLUMN cs.system_alerts.severity IS 'low, medium, high or critical.';
COMMENT ON COLUMN cs.system_alerts.title IS 'Alert title.';
COMMENT ON COLUMN cs.system_alerts.description IS 'What was found and what to do.';
COMMENT ON COLUMN cs.system_alerts.risk_factors IS 'What the alert is about: model (name:vN), check, subject and the values found; the key among unresolved alerts is read from here.';
COMMENT ON COLUMN cs.system_alerts.suggested_actions IS 'Suggested actions (none are ranked for model and data alerts).';
COMMENT ON COLUMN cs.system_alerts.status IS 'open, acknowledged, snoozed, resolved or dismissed.';
COMMENT ON COLUMN cs.system_alerts.assigned_to IS 'Role the alert is assigned to (the admin_role setting, unless reassigned).';
COMMENT ON COLUMN cs.system_alerts.snoozed_until IS 'End of the snooze; the next full evaluation after it reopens the alert.';
COMMENT ON COLUMN cs.system_alerts.created_at IS 'When the alert was raised.';
COMMENT ON COLUMN cs.system_alerts.updated_at IS 'Last change of the alert.';
COMMENT ON COLUMN cs.system_alerts.updated_by IS 'Role that made the last change.';
COMMENT ON COLUMN cs.system_alerts.resolved_at IS 'When the alert was resolved or dismissed.';
COMMENT ON COLUMN cs.system_alerts.last_fired_at IS 'Last check that found the problem.';
COMMENT ON COLUMN cs.system_alerts.escalated_at IS 'Last time a re-firing raised the severity.';
COMMENT ON COLUMN cs.system_alerts.fire_count IS 'Checks that found the problem while the alert was unresolved.';

CREATE TABLE cs.system_alert_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    uuid NOT NULL REFERENCES cs.system_alerts (id) ON DELETE CASCADE,
    event       text NOT NULL CHECK (event IN ('created', 'escalated', 'acknowledged', 'snoozed', 'reopened',
                                               'resolved', 'auto_resolved', 'dismissed', 'reassigned')),
    from_status text,
    to_status   text,
    actor       text NOT NULL DEFAULT current_user,
    at          timestamptz NOT NULL DEFAULT now(),
    note        text,
    details     jsonb
);
CREATE INDEX system_alert_events_alert_idx ON cs.system_alert_events (alert_id, id);
COMMENT ON TABLE cs.system_alert_events IS 'Audit trail of the alerts without a customer (cs.system_alerts): every creation, escalation and lifecycle transition, with who and when, as cs.alert_events for customer alerts. Not partitioned: model and data alerts are few.';
COMMENT ON COLUMN cs.system_alert_events.id IS 'Surrogate key, in event order.';
COMMENT ON COLUMN cs.system_alert_events.alert_id IS 'The alert (deleted with it).';
COMMENT ON COLUMN cs.system_alert_events.event IS 'created, escalated, acknowledged, snoozed, reopened, resolved, auto_resolved, dismissed or reassigned.';
COMMENT ON COLUMN cs.system_alert_events.from_status IS 'Status before the event.';
COMMENT ON COLUMN cs.system_alert_events.to_status IS 'Status after the event.';
COMMENT ON COLUMN cs.system_alert_events.actor IS 'Role that caused the event (cs.acting_user()).';
COMMENT ON COLUMN cs.system_alert_events.at IS 'When it happened.';
COMMENT ON COLUMN cs.system_alert_events.note IS 'Note given with the transition.';
COMMENT ON COLUMN cs.system_alert_events.details IS 'Event details: severities of an escalation, snooze end, assignees.';

-- Feedback on alerts without a customer (admins rate them through
-- cs.record_feedback as CSMs rate customer alerts, whose feedback is keyed by
-- customer in cs.alert_feedback).
CREATE TABLE cs.system_alert_feedback (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    alert_id      uuid NOT NULL REFERENCES cs.system_alerts (id) ON DELETE CASCADE,
    user_id       varchar(255) NOT NULL DEFAULT current_user,
    feedback_type varchar(50) NOT NULL CHECK (feedback_type IN ('accuracy', 'relevance', 'priority')),
    rating        int NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comments      text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX system_alert_feedback_alert_idx ON cs.system_alert_feedback (alert_id);
COMMENT ON TABLE cs.system_alert_feedback IS 'Admins'' feedback on model and data alerts (cs.system_alerts); feedback on customer alerts is in cs.alert_feedback. Visible to admins only.';
COMMENT ON COLUMN cs.system_alert_feedback.alert_id IS 'The model or data alert rated.';
COMMENT ON COLUMN cs.system_alert_feedback.user_id IS 'Role that gave the feedback.';
COMMENT ON COLUMN cs.system_alert_feedback.feedback_type IS 'accuracy, relevance or priority.';
COMMENT ON COLUMN cs.system_alert_feedback.rating IS 'Rating 1-5.';
COMMENT ON COLUMN cs.system_alert_feedback.comments IS 'Free-text comment.';
COMMENT ON COLUMN cs.system_alert_feedback.created_at IS 'When it was given.';
