-- Install-once: tables of actions, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.playbooks (
    id          int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    action      text NOT NULL,
    answers     text[] NOT NULL DEFAULT '{}',
    template    text,
    outcome_window interval NOT NULL DEFAULT '30 days' CHECK (outcome_window > '0'),
    enabled     boolean NOT NULL DEFAULT true,
    description text
);
COMMENT ON TABLE cs.playbooks IS 'Next best actions: what to do, which risk factors or opportunity kinds it answers, and a message template.';
COMMENT ON COLUMN cs.playbooks.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.playbooks.name IS 'Unique playbook name; cs.actions refer to it.';
COMMENT ON COLUMN cs.playbooks.action IS 'What the CSM should do, in a few words.';
COMMENT ON COLUMN cs.playbooks.enabled IS 'Disabled playbooks are not suggested.';
COMMENT ON COLUMN cs.playbooks.description IS 'Longer explanation of the playbook.';
COMMENT ON COLUMN cs.playbooks.answers IS 'Risk factors (feature names) or opportunity kinds this playbook addresses.';
COMMENT ON COLUMN cs.playbooks.template IS 'Message template with {placeholders} filled from the customer and its scores.';
COMMENT ON COLUMN cs.playbooks.outcome_window IS 'How long after the action its outcome is measured.';

CREATE TABLE cs.alert_feedback (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- no foreign key: cs.alerts is keyed by (customer_id, id) (issue 19) and
    -- cs.record_feedback checks that the alert exists
    alert_id      uuid NOT NULL,
    user_id       varchar(255) NOT NULL DEFAULT current_user,
    feedback_type varchar(50) NOT NULL CHECK (feedback_type IN ('accuracy', 'relevance', 'priority')),
    rating        int NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comments      text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_feedback_alert_idx ON cs.alert_feedback (alert_id);
COMMENT ON TABLE cs.alert_feedback IS 'CSM feedback on alerts.';
COMMENT ON COLUMN cs.alert_feedback.feedback_type IS 'accuracy, relevance or priority.';
COMMENT ON COLUMN cs.alert_feedback.rating IS 'Rating 1-5.';

CREATE TABLE cs.actions (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    alert_id    uuid,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    playbook    text NOT NULL,
    taken_by    text NOT NULL DEFAULT current_user,
    taken_at    timestamptz NOT NULL DEFAULT now(),
    outcome     text CHECK (outcome IN ('recovered', 'renewed', 'expanded', 'churned', 'no_change')),
    outcome_at  timestamptz,
    factors     text[] NOT NULL DEFAULT '{}',
    health_at_action numeric(3,2),
    band_at_action text,
    renewal_date_at_action date,
    outcome_source text CHECK (outcome_source IN ('reported', 'measured')),
    CONSTRAINT actions_outcome_after_action_check CHECK (outcome_at IS NULL OR outcome_at >= taken_at),
    PRIMARY KEY (customer_id, id),
    CONSTRAINT actions_alert_id_fkey FOREIGN KEY (customer_id, alert_id) REFERENCES cs.alerts (customer_id, id)
);
CREATE INDEX actions_customer_idx ON cs.actions (customer_id, taken_at);
-- Effectiveness reads the measured actions of a playbook; measurement finds the unmeasured ones.
CREATE INDEX actions_playbook_measured_idx ON cs.actions (playbook) WHERE outcome IS NOT NULL;
CREATE INDEX actions_unmeasured_idx ON cs.actions (taken_at) WHERE outcome IS NULL;
COMMENT ON TABLE cs.actions IS 'What CSMs did about alerts, and the measured outcome.';
COMMENT ON COLUMN cs.actions.playbook IS 'Playbook name that was applied.';
COMMENT ON COLUMN cs.actions.outcome IS 'recovered, renewed, expanded, churned or no_change.';
COMMENT ON COLUMN cs.actions.factors IS 'Risk factors or opportunity kinds of the alert that the playbook answers: what its outcome teaches about.';
COMMENT ON COLUMN cs.actions.health_at_action IS 'Overall health when the action was taken, to measure recovery.';
COMMENT ON COLUMN cs.actions.band_at_action IS 'Health band when the action was taken.';
COMMENT ON COLUMN cs.actions.renewal_date_at_action IS 'Contract end date when the action was taken; a later one means renewed.';
COMMENT ON COLUMN cs.actions.outcome_source IS 'reported by the CSM in cs.record_action, or measured by cs.measure_action_outcomes.';
