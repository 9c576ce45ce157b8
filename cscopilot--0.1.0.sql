-- cscopilot 0.1.0: the released install script, frozen (generated from src/sql/*.sql at commit b1a8fe3)

-- source: src/sql/00_schema.sql
-- Canonical schema: signal tables users load, result tables the extension writes,
-- configuration tables admins edit.  Everything lives in schema cs.

\echo Use "CREATE EXTENSION cscopilot" to load this file. \quit

------------------------------------------------------------------------------
-- Signal tables
------------------------------------------------------------------------------

CREATE TABLE cs.customers (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    external_id         varchar(255) NOT NULL UNIQUE,
    name                varchar(255) NOT NULL,
    industry            varchar(100),
    size                varchar(50),
    mrr                 numeric(10,2) CHECK (mrr >= 0),
    contract_start_date date,
    contract_end_date   date,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    segment             text CHECK (segment IN ('smb', 'mid_market', 'enterprise')),
    csm                 text,
    parent_id           uuid REFERENCES cs.customers (id),
    seats_licensed      int CHECK (seats_licensed >= 0),
    churned_at          date,
    CONSTRAINT customers_contract_dates_check
        CHECK (contract_end_date IS NULL OR contract_start_date IS NULL
               OR contract_end_date >= contract_start_date),
    CONSTRAINT customers_not_own_parent_check CHECK (parent_id <> id),
    CONSTRAINT customers_name_not_blank_check CHECK (btrim(name) <> '')
);
CREATE INDEX customers_csm_idx ON cs.customers (csm);
CREATE INDEX customers_segment_idx ON cs.customers (segment);
CREATE INDEX customers_parent_idx ON cs.customers (parent_id) WHERE parent_id IS NOT NULL;
COMMENT ON TABLE cs.customers IS 'One row per customer account (the CRM account). Load by COPY or INSERT; other tables reference id.';
COMMENT ON COLUMN cs.customers.id IS 'Surrogate key, generated when not given.';
COMMENT ON COLUMN cs.customers.external_id IS 'The account id in the source system (CRM); unique, used by loaders to resolve customers.';
COMMENT ON COLUMN cs.customers.name IS 'Account name, not blank.';
COMMENT ON COLUMN cs.customers.industry IS 'Industry of the account, free text.';
COMMENT ON COLUMN cs.customers.size IS 'Company size band as the CRM states it (for example 11-50).';
COMMENT ON COLUMN cs.customers.mrr IS 'Current monthly recurring revenue, non-negative.';
COMMENT ON COLUMN cs.customers.contract_start_date IS 'Start of the current contract.';
COMMENT ON COLUMN cs.customers.contract_end_date IS 'End (renewal date) of the current contract; not before the start.';
COMMENT ON COLUMN cs.customers.created_at IS 'When the row was created.';
COMMENT ON COLUMN cs.customers.updated_at IS 'When the row last changed; maintained by a trigger.';
COMMENT ON COLUMN cs.customers.segment IS 'smb, mid_market or enterprise; selects the health profile.';
COMMENT ON COLUMN cs.customers.csm IS 'Role name of the customer success manager who owns the account.';
COMMENT ON COLUMN cs.customers.parent_id IS 'Parent account for subsidiaries, or NULL.';
COMMENT ON COLUMN cs.customers.seats_licensed IS 'Seats in the licence, non-negative.';
COMMENT ON COLUMN cs.customers.churned_at IS 'Date the customer churned, when known: the ground truth models are trained and judged on.';

CREATE TABLE cs.usage_events (
    customer_id uuid NOT NULL,
    user_id     text,
    event       text NOT NULL,
    feature     text,
    quantity    float8 NOT NULL DEFAULT 1 CHECK (quantity >= 0 AND quantity < 'Infinity'),
    occurred_at timestamptz NOT NULL
) PARTITION BY RANGE (occurred_at);
CREATE TABLE cs.usage_events_default PARTITION OF cs.usage_events DEFAULT;
CREATE INDEX usage_events_customer_time_idx ON cs.usage_events (customer_id, occurred_at);
COMMENT ON TABLE cs.usage_events IS 'Product usage events, range-partitioned by month on occurred_at; a default partition takes any date. Customers are checked per statement by a trigger (no per-row foreign key, for load speed).';
COMMENT ON COLUMN cs.usage_events.customer_id IS 'The customer (cs.customers.id); an unknown id rejects the whole statement.';
COMMENT ON COLUMN cs.usage_events.user_id IS 'The end user in the product analytics source.';
COMMENT ON COLUMN cs.usage_events.event IS 'Event name, for example login or report_created.';
COMMENT ON COLUMN cs.usage_events.feature IS 'Product feature the event belongs to.';
COMMENT ON COLUMN cs.usage_events.quantity IS 'How many times the event happened in this row (aggregated exports), non-negative and finite.';
COMMENT ON COLUMN cs.usage_events.occurred_at IS 'When the event happened; selects the monthly partition.';

CREATE TABLE cs.support_tickets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    external_id text,
    opened_at   timestamptz NOT NULL,
    closed_at   timestamptz,
    priority    text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed')),
    csat        smallint CHECK (csat BETWEEN 1 AND 5),
    subject     text,
    body        text,
    CONSTRAINT support_tickets_closed_after_opened_check CHECK (closed_at IS NULL OR closed_at >= opened_at),
    CONSTRAINT support_tickets_external_id_key UNIQUE (external_id)
);
CREATE INDEX support_tickets_customer_time_idx ON cs.support_tickets (customer_id, opened_at);
COMMENT ON TABLE cs.support_tickets IS 'Support tickets (Zendesk, Intercom, ...).';
COMMENT ON COLUMN cs.support_tickets.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.support_tickets.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.support_tickets.external_id IS 'Ticket id in the source system; unique when given.';
COMMENT ON COLUMN cs.support_tickets.opened_at IS 'When the ticket was opened.';
COMMENT ON COLUMN cs.support_tickets.closed_at IS 'When it was closed, not before opened_at; NULL while open.';
COMMENT ON COLUMN cs.support_tickets.priority IS 'low, normal, high or urgent.';
COMMENT ON COLUMN cs.support_tickets.status IS 'new, open, pending, on_hold, solved or closed.';
COMMENT ON COLUMN cs.support_tickets.csat IS 'Customer satisfaction rating 1-5, when given.';
COMMENT ON COLUMN cs.support_tickets.subject IS 'Ticket subject.';
COMMENT ON COLUMN cs.support_tickets.body IS 'First message of the ticket.';

CREATE TABLE cs.invoices (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    external_id text,
    amount      numeric(12,2) NOT NULL CHECK (amount >= 0),
    issued_at   date NOT NULL,
    due_date    date NOT NULL,
    paid_at     date,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('draft', 'open', 'paid', 'failed', 'void', 'uncollectible')),
    CONSTRAINT invoices_due_after_issue_check CHECK (due_date >= issued_at),
    CONSTRAINT invoices_paid_status_check CHECK (paid_at IS NULL OR status = 'paid'),
    CONSTRAINT invoices_external_id_key UNIQUE (external_id)
);
CREATE INDEX invoices_customer_time_idx ON cs.invoices (customer_id, issued_at);
COMMENT ON TABLE cs.invoices IS 'Invoices and their payment (Stripe, Chargebee, ...).';
COMMENT ON COLUMN cs.invoices.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.invoices.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.invoices.external_id IS 'Invoice id in the billing system; unique when given.';
COMMENT ON COLUMN cs.invoices.amount IS 'Invoice total, non-negative.';
COMMENT ON COLUMN cs.invoices.issued_at IS 'Issue date.';
COMMENT ON COLUMN cs.invoices.due_date IS 'Due date, not before the issue date.';
COMMENT ON COLUMN cs.invoices.paid_at IS 'Payment date; only for status paid. Paid after due_date means late.';
COMMENT ON COLUMN cs.invoices.status IS 'draft, open, paid, failed, void or uncollectible.';

CREATE TABLE cs.engagements (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    kind        text NOT NULL CHECK (kind IN ('meeting', 'call', 'email', 'qbr', 'training', 'onsite', 'other')),
    occurred_at timestamptz NOT NULL,
    notes       text
);
CREATE INDEX engagements_customer_time_idx ON cs.engagements (customer_id, occurred_at);
COMMENT ON TABLE cs.engagements IS 'CSM touches: meetings, calls, emails, QBRs, trainings.';
COMMENT ON COLUMN cs.engagements.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.engagements.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.engagements.kind IS 'meeting, call, email, qbr, training, onsite or other.';
COMMENT ON COLUMN cs.engagements.occurred_at IS 'When it happened.';
COMMENT ON COLUMN cs.engagements.notes IS 'Free-text notes.';

CREATE TABLE cs.nps_responses (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  uuid NOT NULL REFERENCES cs.customers (id),
    score        smallint NOT NULL CHECK (score BETWEEN 0 AND 10),
    comment      text,
    responded_at timestamptz NOT NULL
);
CREATE INDEX nps_responses_customer_time_idx ON cs.nps_responses (customer_id, responded_at);
COMMENT ON TABLE cs.nps_responses IS 'Net promoter score survey answers.';
COMMENT ON COLUMN cs.nps_responses.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.nps_responses.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.nps_responses.score IS 'NPS answer 0-10.';
COMMENT ON COLUMN cs.nps_responses.comment IS 'Free-text comment.';
COMMENT ON COLUMN cs.nps_responses.responded_at IS 'When the answer was given.';

CREATE TABLE cs.contacts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    name        text NOT NULL,
    email       text CHECK (email IS NULL OR email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    role        text,
    is_champion boolean NOT NULL DEFAULT false,
    left_at     timestamptz
);
CREATE INDEX contacts_customer_idx ON cs.contacts (customer_id);
COMMENT ON TABLE cs.contacts IS 'People at the customer; champions matter for risk.';
COMMENT ON COLUMN cs.contacts.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.contacts.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.contacts.name IS 'Full name.';
COMMENT ON COLUMN cs.contacts.email IS 'E-mail address (one @, no spaces).';
COMMENT ON COLUMN cs.contacts.role IS 'Job role, for example VP Operations.';
COMMENT ON COLUMN cs.contacts.is_champion IS 'True for the internal champion of the product.';
COMMENT ON COLUMN cs.contacts.left_at IS 'When the person left the customer, or NULL.';

CREATE TABLE cs.subscriptions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    product     text NOT NULL,
    seats       int NOT NULL DEFAULT 0 CHECK (seats >= 0),
    mrr         numeric(10,2) NOT NULL DEFAULT 0 CHECK (mrr >= 0),
    started_at  date NOT NULL,
    ended_at    date,
    CONSTRAINT subscriptions_dates_check CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX subscriptions_customer_idx ON cs.subscriptions (customer_id, started_at);
COMMENT ON TABLE cs.subscriptions IS 'Products a customer subscribes to, with seats and MRR over time; an expansion is a new or larger subscription.';
COMMENT ON COLUMN cs.subscriptions.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.subscriptions.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.subscriptions.product IS 'Product or plan name.';
COMMENT ON COLUMN cs.subscriptions.seats IS 'Seats in this subscription, non-negative.';
COMMENT ON COLUMN cs.subscriptions.mrr IS 'Monthly recurring revenue of this subscription, non-negative.';
COMMENT ON COLUMN cs.subscriptions.started_at IS 'Start date.';
COMMENT ON COLUMN cs.subscriptions.ended_at IS 'End date, not before the start; NULL while active.';

------------------------------------------------------------------------------
-- Configuration tables (admins)
------------------------------------------------------------------------------

CREATE TABLE cs.health_profiles (
    id          int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    segment     text CHECK (segment IN ('smb', 'mid_market', 'enterprise')),
    version     int NOT NULL DEFAULT 1 CHECK (version >= 1),
    weights     jsonb NOT NULL DEFAULT '{}',
    bands       jsonb NOT NULL DEFAULT '{"red": 0.4, "yellow": 0.7}',
    normalisation jsonb NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX health_profiles_segment_key ON cs.health_profiles (coalesce(segment, ''));
COMMENT ON TABLE cs.health_profiles IS 'Health score profiles: weights, band cut-offs and normalisation; one per segment, NULL segment is the default.';
COMMENT ON COLUMN cs.health_profiles.segment IS 'Segment the profile applies to; NULL for the default profile.';
COMMENT ON COLUMN cs.health_profiles.version IS 'Profile version, stamped on every health score computed with it.';
COMMENT ON COLUMN cs.health_profiles.weights IS 'Weight per measure and group (non-negative, not all zero).';
COMMENT ON COLUMN cs.health_profiles.bands IS 'Band cut-offs: scores below red are red, below yellow yellow, else green.';
COMMENT ON COLUMN cs.health_profiles.normalisation IS 'Per-measure normalisation: thresholds or percentile rank.';

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

CREATE TABLE cs.models (
    id          int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    version     int NOT NULL CHECK (version >= 1),
    kind        text NOT NULL CHECK (kind IN ('churn', 'downgrade', 'payment', 'upsell', 'custom')),
    objective   text NOT NULL,
    feature_names text[] NOT NULL,
    model       bytea NOT NULL,
    metrics     jsonb NOT NULL DEFAULT '{}',
    training_data text,
    status      text NOT NULL DEFAULT 'candidate' CHECK (status IN ('candidate', 'champion', 'retired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT models_name_version_key UNIQUE (name, version)
);
-- One champion per kind (custom models are addressed by name, one champion per name).
CREATE UNIQUE INDEX models_one_champion_per_kind ON cs.models (kind) WHERE status = 'champion' AND kind <> 'custom';
CREATE UNIQUE INDEX models_one_champion_per_custom_name ON cs.models (name) WHERE status = 'champion' AND kind = 'custom';
COMMENT ON TABLE cs.models IS 'Model registry: XGBoost models (JSON or UBJ bytes) with their features, metrics and status.';
COMMENT ON COLUMN cs.models.kind IS 'churn, downgrade, payment, upsell or custom.';
COMMENT ON COLUMN cs.models.objective IS 'XGBoost objective, for example binary:logistic.';
COMMENT ON COLUMN cs.models.feature_names IS 'Input feature names in order; for scoring kinds they equal cs.feature_catalog.';
COMMENT ON COLUMN cs.models.model IS 'The model as XGBoost JSON or UBJ bytes.';
COMMENT ON COLUMN cs.models.metrics IS 'Training and validation metrics.';
COMMENT ON COLUMN cs.models.training_data IS 'Description of the training data.';
COMMENT ON COLUMN cs.models.status IS 'candidate, champion (scores its kind) or retired.';

------------------------------------------------------------------------------
-- Result tables (written by the extension)
------------------------------------------------------------------------------

CREATE TABLE cs.feature_catalog (
    position    int PRIMARY KEY CHECK (position >= 1),
    name        text NOT NULL UNIQUE,
    description text NOT NULL,
    source      text NOT NULL
);
COMMENT ON TABLE cs.feature_catalog IS 'The features of cs.customer_features.features, in array order.';
COMMENT ON COLUMN cs.feature_catalog.position IS '1-based index in the feature array.';
COMMENT ON COLUMN cs.feature_catalog.name IS 'Feature name, as models name their inputs.';
COMMENT ON COLUMN cs.feature_catalog.description IS 'What the feature measures.';
COMMENT ON COLUMN cs.feature_catalog.source IS 'Signal table the feature comes from.';

CREATE TABLE cs.customer_features (
    customer_id uuid PRIMARY KEY REFERENCES cs.customers (id),
    as_of       timestamptz NOT NULL,
    features    float4[] NOT NULL
);
COMMENT ON TABLE cs.customer_features IS 'Feature store: the current feature vector per customer, in cs.feature_catalog order; NaN means missing.';
COMMENT ON COLUMN cs.customer_features.as_of IS 'Point in time the vector describes.';
COMMENT ON COLUMN cs.customer_features.features IS 'Feature values in catalog order; NaN for missing data.';

CREATE TABLE cs.customer_health_scores (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id      uuid NOT NULL REFERENCES cs.customers (id),
    overall_score    numeric(3,2) CHECK (overall_score BETWEEN 0 AND 1),
    usage_score      numeric(3,2) CHECK (usage_score BETWEEN 0 AND 1),
    engagement_score numeric(3,2) CHECK (engagement_score BETWEEN 0 AND 1),
    support_score    numeric(3,2) CHECK (support_score BETWEEN 0 AND 1),
    payment_score    numeric(3,2) CHECK (payment_score BETWEEN 0 AND 1),
    calculated_at    timestamptz NOT NULL DEFAULT now(),
    version          varchar(50),
    band             text CHECK (band IN ('red', 'yellow', 'green')),
    drivers          jsonb
);
CREATE INDEX customer_health_scores_customer_time_idx ON cs.customer_health_scores (customer_id, calculated_at DESC);
COMMENT ON TABLE cs.customer_health_scores IS 'Health score history: every calculation appends a row.';
COMMENT ON COLUMN cs.customer_health_scores.overall_score IS 'Weighted overall health 0-1.';
COMMENT ON COLUMN cs.customer_health_scores.usage_score IS 'Usage sub-score 0-1.';
COMMENT ON COLUMN cs.customer_health_scores.engagement_score IS 'Engagement sub-score 0-1.';
COMMENT ON COLUMN cs.customer_health_scores.support_score IS 'Support sub-score 0-1.';
COMMENT ON COLUMN cs.customer_health_scores.payment_score IS 'Payment sub-score 0-1.';
COMMENT ON COLUMN cs.customer_health_scores.calculated_at IS 'When the score was computed.';
COMMENT ON COLUMN cs.customer_health_scores.version IS 'Health profile name and version used.';
COMMENT ON COLUMN cs.customer_health_scores.band IS 'red, yellow or green, from the profile cut-offs.';
COMMENT ON COLUMN cs.customer_health_scores.drivers IS 'Inputs that pull the score down most, and weights redistributed for missing inputs.';

CREATE TABLE cs.risk_assessments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id      uuid NOT NULL REFERENCES cs.customers (id),
    risk_type        varchar(50) NOT NULL CHECK (risk_type IN ('churn', 'downgrade', 'payment')),
    risk_score       numeric(3,2) CHECK (risk_score BETWEEN 0 AND 1),
    risk_factors     jsonb,
    confidence_score numeric(3,2) CHECK (confidence_score BETWEEN 0 AND 1),
    model_version    varchar(50),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX risk_assessments_customer_time_idx ON cs.risk_assessments (customer_id, risk_type, created_at DESC);
COMMENT ON TABLE cs.risk_assessments IS 'Risk predictions history with their explanations.';
COMMENT ON COLUMN cs.risk_assessments.risk_type IS 'churn, downgrade or payment.';
COMMENT ON COLUMN cs.risk_assessments.risk_score IS 'Predicted probability 0-1.';
COMMENT ON COLUMN cs.risk_assessments.risk_factors IS 'Top contributions: feature, value, contribution (SHAP, log-odds).';
COMMENT ON COLUMN cs.risk_assessments.confidence_score IS 'Confidence 0-1 in the prediction.';
COMMENT ON COLUMN cs.risk_assessments.model_version IS 'Model name and version that produced the score.';

CREATE TABLE cs.opportunities (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id  uuid NOT NULL REFERENCES cs.customers (id),
    kind         text NOT NULL CHECK (kind IN ('upsell', 'cross_sell', 'expansion', 'adoption')),
    score        numeric(4,3) NOT NULL CHECK (score BETWEEN 0 AND 1),
    expected_mrr numeric(10,2) CHECK (expected_mrr >= 0),
    product      text,
    reasons      jsonb,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'won', 'lost', 'dismissed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL DEFAULT 'csm' CHECK (source IN ('system', 'csm'))
);
CREATE INDEX opportunities_customer_idx ON cs.opportunities (customer_id, kind);
COMMENT ON TABLE cs.opportunities IS 'Upsell, cross-sell, expansion and adoption opportunities.';
COMMENT ON COLUMN cs.opportunities.kind IS 'upsell, cross_sell, expansion or adoption.';
COMMENT ON COLUMN cs.opportunities.score IS 'Propensity 0-1.';
COMMENT ON COLUMN cs.opportunities.expected_mrr IS 'Expected MRR uplift.';
COMMENT ON COLUMN cs.opportunities.product IS 'Product to offer, for cross-sell.';
COMMENT ON COLUMN cs.opportunities.reasons IS 'Why the opportunity was raised.';
COMMENT ON COLUMN cs.opportunities.status IS 'open, in_progress, won, lost or dismissed.';
COMMENT ON COLUMN cs.opportunities.source IS 'system for opportunities cs.refresh_opportunities generates (replaced on refresh while open), csm for ones entered by hand.';

CREATE TABLE cs.alerts (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id       uuid REFERENCES cs.customers (id),
    rule_id           int REFERENCES cs.alert_rules (id),
    alert_type        varchar(50) NOT NULL CHECK (alert_type IN ('risk', 'opportunity', 'model', 'data')),
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
-- At most one unresolved alert per (customer, rule).
CREATE UNIQUE INDEX alerts_one_open_per_rule ON cs.alerts (customer_id, rule_id)
    WHERE status IN ('open', 'acknowledged', 'snoozed');
CREATE INDEX alerts_status_idx ON cs.alerts (status, severity);
-- Cooldown checks and per-customer lookups of resolved alerts.
CREATE INDEX alerts_customer_rule_idx ON cs.alerts (customer_id, rule_id, resolved_at);
COMMENT ON TABLE cs.alerts IS 'Alerts raised by rules; at most one unresolved alert per customer and rule.';
COMMENT ON COLUMN cs.alerts.alert_type IS 'risk, opportunity, model or data.';
COMMENT ON COLUMN cs.alerts.severity IS 'low, medium, high or critical.';
COMMENT ON COLUMN cs.alerts.status IS 'open, acknowledged, snoozed, resolved or dismissed.';
COMMENT ON COLUMN cs.alerts.assigned_to IS 'Role name of the CSM the alert is assigned to.';
COMMENT ON COLUMN cs.alerts.risk_factors IS 'Why the alert fired: the condition''s features and scores (source rule), the churn model''s factors (churn_model) and the health drivers (health).';
COMMENT ON COLUMN cs.alerts.suggested_actions IS 'Playbooks answering the alert''s factors, ranked by learned effectiveness, with the rendered message.';
COMMENT ON COLUMN cs.alerts.snoozed_until IS 'End of the snooze; the next evaluation after it reopens the alert.';
COMMENT ON COLUMN cs.alerts.updated_by IS 'Role that made the last change.';
COMMENT ON COLUMN cs.alerts.resolved_at IS 'When the alert was resolved or dismissed; the rule''s cooldown runs from here.';
COMMENT ON COLUMN cs.alerts.last_fired_at IS 'Last evaluation that found the condition true.';
COMMENT ON COLUMN cs.alerts.escalated_at IS 'Last time a re-firing raised the severity.';
COMMENT ON COLUMN cs.alerts.fire_count IS 'Evaluations that found the condition true while the alert was unresolved.';

CREATE TABLE cs.alert_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    uuid NOT NULL REFERENCES cs.alerts (id) ON DELETE CASCADE,
    event       text NOT NULL CHECK (event IN ('created', 'escalated', 'acknowledged', 'snoozed', 'reopened',
                                               'resolved', 'auto_resolved', 'dismissed', 'reassigned')),
    from_status text,
    to_status   text,
    actor       text NOT NULL DEFAULT current_user,
    at          timestamptz NOT NULL DEFAULT now(),
    note        text,
    details     jsonb
);
CREATE INDEX alert_events_alert_idx ON cs.alert_events (alert_id, id);
COMMENT ON TABLE cs.alert_events IS 'Audit trail of alerts: every creation, escalation and lifecycle transition, with who and when.';
COMMENT ON COLUMN cs.alert_events.id IS 'Surrogate key, in event order.';
COMMENT ON COLUMN cs.alert_events.alert_id IS 'The alert (deleted with it).';
COMMENT ON COLUMN cs.alert_events.event IS 'created, escalated, acknowledged, snoozed, reopened, resolved, auto_resolved, dismissed or reassigned.';
COMMENT ON COLUMN cs.alert_events.from_status IS 'Status before the event.';
COMMENT ON COLUMN cs.alert_events.to_status IS 'Status after the event.';
COMMENT ON COLUMN cs.alert_events.actor IS 'Role that caused the event (current_user).';
COMMENT ON COLUMN cs.alert_events.at IS 'When it happened.';
COMMENT ON COLUMN cs.alert_events.note IS 'Note given with the transition.';
COMMENT ON COLUMN cs.alert_events.details IS 'Event details: severities of an escalation, snooze end, assignees.';

CREATE TABLE cs.alert_feedback (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    alert_id      uuid NOT NULL REFERENCES cs.alerts (id),
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
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    uuid REFERENCES cs.alerts (id),
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
    CONSTRAINT actions_outcome_after_action_check CHECK (outcome_at IS NULL OR outcome_at >= taken_at)
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

------------------------------------------------------------------------------
-- Deleting a customer.  Signal and result rows reference the customer without
-- cascading, so a plain DELETE of a customer that has any history fails with a
-- foreign-key violation (usage events are checked by a statement trigger).
-- cs.purge_customer() removes a customer and every row about it on purpose
-- (for example an erasure request) and records that it did in
-- cs.customer_purges.
------------------------------------------------------------------------------

CREATE TABLE cs.customer_purges (
    customer_id  uuid NOT NULL,
    external_id  text NOT NULL,
    purged_by    text NOT NULL DEFAULT current_user,
    purged_at    timestamptz NOT NULL DEFAULT now(),
    rows_deleted jsonb NOT NULL,
    reason       text
);
COMMENT ON TABLE cs.customer_purges IS 'Audit of customers removed with cs.purge_customer: who, when, why and how many rows per table.';

-- source: src/sql/01_loading.sql
-- What happens when data is loaded: monthly partitions of cs.usage_events,
-- the dirty queue that load triggers fill, and the rules for deleting customers.

------------------------------------------------------------------------------
-- Partitions
------------------------------------------------------------------------------

-- Creates the monthly partitions of cs.usage_events covering [from_date, to_date].
-- Rows of those months already in the default partition are moved into the new
-- partition, so creating a partition never fails because of earlier loads.
CREATE FUNCTION cs.ensure_usage_partitions(from_date date, to_date date)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m       date;
    part    text;
    created int := 0;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'partition range must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_date < from_date THEN
        RAISE EXCEPTION 'partition range is empty: % is before %', to_date, from_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_date - from_date > 366 * 20 THEN
        RAISE EXCEPTION 'partition range of % days is too large', to_date - from_date
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Create at most 20 years of monthly partitions per call.';
    END IF;
    m := date_trunc('month', from_date)::date;
    WHILE m <= to_date LOOP
        part := format('usage_events_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF to_regclass(format('cs.%I', part)) IS NULL THEN
            EXECUTE format('CREATE TABLE cs.%I (LIKE cs.usage_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('WITH moved AS (DELETE FROM cs.usage_events_default
                                             WHERE occurred_at >= %L AND occurred_at < %L RETURNING *)
                            INSERT INTO cs.%I SELECT * FROM moved',
                           m, (m + interval '1 month')::date, part);
            EXECUTE format('ALTER TABLE cs.usage_events ATTACH PARTITION cs.%I FOR VALUES FROM (%L) TO (%L)',
                           part, m, (m + interval '1 month')::date);
            created := created + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END;
$$;
COMMENT ON FUNCTION cs.ensure_usage_partitions(date, date) IS
    'Creates the missing monthly partitions of cs.usage_events for a date range, moving matching rows out of the default partition; returns how many it created.';

-- A year back and three months ahead at install time; the worker keeps creating future ones.
SELECT cs.ensure_usage_partitions((date_trunc('month', now()) - interval '12 months')::date,
                                  (date_trunc('month', now()) + interval '3 months')::date);

------------------------------------------------------------------------------
-- Dirty queue: customers whose signals changed since they were last scored
------------------------------------------------------------------------------

CREATE TABLE cs.dirty_customers (
    customer_id uuid PRIMARY KEY REFERENCES cs.customers (id) ON DELETE CASCADE,
    marked_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts    int NOT NULL DEFAULT 0,
    last_error  text,
    parked      boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE cs.dirty_customers IS 'Customers whose signals changed since they were last scored; filled by load triggers, drained by cs.refresh().';
COMMENT ON COLUMN cs.dirty_customers.marked_at IS 'Last time a load marked the customer; a refresh removes the mark only if it is unchanged since the refresh read it.';
COMMENT ON COLUMN cs.dirty_customers.attempts IS 'Failed refresh attempts.';
COMMENT ON COLUMN cs.dirty_customers.last_error IS 'Error of the last failed refresh.';
COMMENT ON COLUMN cs.dirty_customers.parked IS 'True when the customer failed too often and is no longer retried automatically.';

-- Marks the customers of the inserted usage events dirty, after checking that
-- every one of them exists (one set-based check per statement instead of a
-- per-row foreign key, which would dominate the cost of a bulk COPY).
CREATE FUNCTION cs._usage_events_inserted() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    unknown uuid;
BEGIN
    SELECT d.customer_id INTO unknown
      FROM (SELECT DISTINCT customer_id FROM new_rows) d
     WHERE NOT EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = d.customer_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'usage event for unknown customer %', unknown
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'Every usage event must reference a row of cs.customers; nothing of this statement was loaded.',
                  HINT = 'Load the customer first, or map the source id to cs.customers.id.';
    END IF;
    INSERT INTO cs.dirty_customers (customer_id)
    SELECT DISTINCT customer_id FROM new_rows
    ON CONFLICT (customer_id) DO UPDATE SET marked_at = clock_timestamp();
    RETURN NULL;
END;
$$;

-- Same check for updated usage events; both the old and the new customer are dirty.
CREATE FUNCTION cs._usage_events_updated() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    unknown uuid;
BEGIN
    SELECT d.customer_id INTO unknown
      FROM (SELECT DISTINCT customer_id FROM new_rows) d
     WHERE NOT EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = d.customer_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'usage event for unknown customer %', unknown
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    INSERT INTO cs.dirty_customers (customer_id)
    SELECT customer_id FROM new_rows UNION SELECT customer_id FROM old_rows
    ON CONFLICT (customer_id) DO UPDATE SET marked_at = clock_timestamp();
    RETURN NULL;
END;
$$;

-- Marks the customers of new rows dirty (signal tables with a real foreign key).
CREATE FUNCTION cs._mark_dirty_new() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    INSERT INTO cs.dirty_customers (customer_id)
    SELECT DISTINCT customer_id FROM new_rows
    ON CONFLICT (customer_id) DO UPDATE SET marked_at = clock_timestamp();
    RETURN NULL;
END;
$$;

-- Marks the customers of deleted rows dirty (those that still exist).
CREATE FUNCTION cs._mark_dirty_old() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    INSERT INTO cs.dirty_customers (customer_id)
    SELECT DISTINCT o.customer_id FROM old_rows o
     WHERE EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = o.customer_id)
    ON CONFLICT (customer_id) DO UPDATE SET marked_at = clock_timestamp();
    RETURN NULL;
END;
$$;

-- Marks the customers of updated rows dirty, before and after the update.
CREATE FUNCTION cs._mark_dirty_both() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    INSERT INTO cs.dirty_customers (customer_id)
    SELECT customer_id FROM new_rows
    UNION
    SELECT o.customer_id FROM old_rows o
     WHERE EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = o.customer_id)
    ON CONFLICT (customer_id) DO UPDATE SET marked_at = clock_timestamp();
    RETURN NULL;
END;
$$;

CREATE TRIGGER usage_events_mark_dirty_ins AFTER INSERT ON cs.usage_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._usage_events_inserted();
CREATE TRIGGER usage_events_mark_dirty_upd AFTER UPDATE ON cs.usage_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._usage_events_updated();
CREATE TRIGGER usage_events_mark_dirty_del AFTER DELETE ON cs.usage_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._mark_dirty_old();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['support_tickets', 'invoices', 'engagements', 'nps_responses',
                             'contacts', 'subscriptions']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON cs.%I REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cs._mark_dirty_new()', t || '_mark_dirty_ins', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON cs.%I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cs._mark_dirty_both()', t || '_mark_dirty_upd', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON cs.%I REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cs._mark_dirty_old()', t || '_mark_dirty_del', t);
    END LOOP;
END;
$$;

-- New or changed customers are dirty too (contract dates, MRR and seats feed features).
CREATE FUNCTION cs._customers_mark_dirty() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    INSERT INTO cs.dirty_customers (customer_id)
    SELECT id FROM new_rows
    ON CONFLICT (customer_id) DO UPDATE SET marked_at = clock_timestamp();
    RETURN NULL;
END;
$$;
CREATE TRIGGER customers_mark_dirty_ins AFTER INSERT ON cs.customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._customers_mark_dirty();
CREATE TRIGGER customers_mark_dirty_upd AFTER UPDATE ON cs.customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._customers_mark_dirty();

-- Keeps customers.updated_at current.
CREATE FUNCTION cs._touch_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER customers_touch_updated_at BEFORE UPDATE ON cs.customers
    FOR EACH ROW EXECUTE FUNCTION cs._touch_updated_at();

------------------------------------------------------------------------------
-- Deleting customers
------------------------------------------------------------------------------

-- Refuses to delete customers that still have usage events (the foreign keys
-- of the other signal tables refuse it already).
CREATE FUNCTION cs._customers_guard_delete() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    victim text;
BEGIN
    SELECT o.external_id INTO victim
      FROM old_rows o
     WHERE EXISTS (SELECT 1 FROM cs.usage_events e WHERE e.customer_id = o.id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'customer % still has usage events', victim
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'Deleting a customer would silently drop its history.',
                  HINT = 'Use cs.purge_customer(id, reason) to remove a customer and all its data on purpose.';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER customers_guard_delete AFTER DELETE ON cs.customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._customers_guard_delete();

-- Removes a customer and every row about it, and records the removal.
CREATE FUNCTION cs.purge_customer(customer_id uuid, reason text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ext    text;
    counts jsonb := '{}';
    n      bigint;
    t      text;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a reason is required to purge a customer' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.external_id INTO ext FROM cs.customers c WHERE c.id = purge_customer.customer_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', purge_customer.customer_id USING ERRCODE = 'no_data_found';
    END IF;
    IF EXISTS (SELECT 1 FROM cs.customers c WHERE c.parent_id = purge_customer.customer_id) THEN
        RAISE EXCEPTION 'customer % is the parent of other customers', ext
            USING ERRCODE = 'foreign_key_violation', HINT = 'Reassign or purge the subsidiaries first.';
    END IF;
    -- Children of alerts first, then everything keyed by customer.
    DELETE FROM cs.alert_feedback f USING cs.alerts a
     WHERE f.alert_id = a.id AND a.customer_id = purge_customer.customer_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('alert_feedback', n);
    FOREACH t IN ARRAY ARRAY['actions', 'alerts', 'opportunities', 'risk_assessments', 'customer_health_scores', 'demo_ground_truth',
                             'customer_features', 'dirty_customers', 'usage_events', 'support_tickets', 'invoices',
                             'engagements', 'nps_responses', 'contacts', 'subscriptions']
    LOOP
        EXECUTE format('DELETE FROM cs.%I WHERE customer_id = $1', t) USING purge_customer.customer_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        counts := counts || jsonb_build_object(t, n);
    END LOOP;
    DELETE FROM cs.customers c WHERE c.id = purge_customer.customer_id;
    INSERT INTO cs.customer_purges (customer_id, external_id, rows_deleted, reason)
    VALUES (purge_customer.customer_id, ext, counts, reason);
    RETURN counts;
END;
$$;
COMMENT ON FUNCTION cs.purge_customer(uuid, text) IS
    'Deletes a customer and all its signals, scores and alerts on purpose, and records the deletion in cs.customer_purges; returns rows deleted per table.';

-- source: src/sql/05_demo.sql
-- Demo data: a deterministic, realistic synthetic dataset (src/demo.c) and the
-- hidden state it was drawn from, to judge scores, models and alerts against.

------------------------------------------------------------------------------
-- Ground truth
------------------------------------------------------------------------------

CREATE TABLE cs.demo_ground_truth (
    customer_id   uuid PRIMARY KEY REFERENCES cs.customers (id),
    archetype     text NOT NULL CHECK (archetype IN ('stable', 'growing', 'seasonal', 'recovering', 'at_risk',
                                                     'declining_churn', 'sudden_churn')),
    churned_at    date,
    expanded_at   date,
    expansion_mrr numeric,
    health_start  float8 NOT NULL CHECK (health_start BETWEEN 0 AND 1),
    health_end    float8 NOT NULL CHECK (health_end BETWEEN 0 AND 1)
);
COMMENT ON TABLE cs.demo_ground_truth IS 'Hidden state of the customers made by cs.generate_demo_data(): what models and alerts are judged against. Never use it as a feature.';
COMMENT ON COLUMN cs.demo_ground_truth.customer_id IS 'The demo customer (cs.customers.id).';
COMMENT ON COLUMN cs.demo_ground_truth.archetype IS 'Story the customer follows: stable, growing (outgrows its seats, expands), seasonal (noisy), recovering (dip then recovery: a false alarm), at_risk (declining, churns after the window), declining_churn (declines 30-120 days, then churns) or sudden_churn (churns with few warning signs).';
COMMENT ON COLUMN cs.demo_ground_truth.churned_at IS 'Churn date inside the window, as in cs.customers.churned_at; NULL for customers still active at end_date (at_risk ones churn later).';
COMMENT ON COLUMN cs.demo_ground_truth.expanded_at IS 'Date of the expansion (more seats or a new product) recorded in cs.subscriptions, or NULL.';
COMMENT ON COLUMN cs.demo_ground_truth.expansion_mrr IS 'MRR added by the expansion, or NULL.';
COMMENT ON COLUMN cs.demo_ground_truth.health_start IS 'Latent health (0-1) on the first day of the window.';
COMMENT ON COLUMN cs.demo_ground_truth.health_end IS 'Latent health (0-1) on end_date, or on the churn date for churners.';

------------------------------------------------------------------------------
-- Generators: one set-returning function per table, all deterministic
------------------------------------------------------------------------------

CREATE FUNCTION cs._demo_customers(customers int, days int, seed int, end_date date)
RETURNS TABLE (id uuid, external_id text, name text, industry text, size text, mrr numeric,
               contract_start_date date, contract_end_date date, created_at timestamptz,
               updated_at timestamptz, segment text, csm text, parent_id uuid, seats_licensed int,
               churned_at date)
AS 'MODULE_PATHNAME', 'cs_demo_customers'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_customers(int, int, int, date) IS
    'Demo rows for cs.customers, as cs.generate_demo_data() inserts them; internal.';

CREATE FUNCTION cs._demo_ground_truth(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, archetype text, churned_at date, expanded_at date, expansion_mrr numeric,
               health_start float8, health_end float8)
AS 'MODULE_PATHNAME', 'cs_demo_ground_truth'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_ground_truth(int, int, int, date) IS
    'Demo rows for cs.demo_ground_truth, as cs.generate_demo_data() inserts them; internal.';

CREATE FUNCTION cs._demo_subscriptions(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, product text, seats int, mrr numeric, started_at date, ended_at date)
AS 'MODULE_PATHNAME', 'cs_demo_subscriptions'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_subscriptions(int, int, int, date) IS
    'Demo rows for cs.subscriptions, as cs.generate_demo_data() inserts them; internal.';

CREATE FUNCTION cs._demo_contacts(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, name text, email text, role text, is_champion boolean, left_at timestamptz)
AS 'MODULE_PATHNAME', 'cs_demo_contacts'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_contacts(int, int, int, date) IS
    'Demo rows for cs.contacts, as cs.generate_demo_data() inserts them; internal.';

CREATE FUNCTION cs._demo_invoices(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, external_id text, amount numeric, issued_at date, due_date date,
               paid_at date, status text)
AS 'MODULE_PATHNAME', 'cs_demo_invoices'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_invoices(int, int, int, date) IS
    'Demo rows for cs.invoices, as cs.generate_demo_data() inserts them; internal.';

CREATE FUNCTION cs._demo_tickets(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, external_id text, opened_at timestamptz, closed_at timestamptz,
               priority text, status text, csat smallint, subject text, body text)
AS 'MODULE_PATHNAME', 'cs_demo_tickets'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_tickets(int, int, int, date) IS
    'Demo rows for cs.support_tickets, as cs.generate_demo_data() inserts them; internal.';

CREATE FUNCTION cs._demo_engagements(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, kind text, occurred_at timestamptz, notes text)
AS 'MODULE_PATHNAME', 'cs_demo_engagements'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_engagements(int, int, int, date) IS
    'Demo rows for cs.engagements, as cs.generate_demo_data() inserts them; internal.';

CREATE FUNCTION cs._demo_nps(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, score smallint, comment text, responded_at timestamptz)
AS 'MODULE_PATHNAME', 'cs_demo_nps'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_nps(int, int, int, date) IS
    'Demo rows for cs.nps_responses, as cs.generate_demo_data() inserts them; internal.';

CREATE FUNCTION cs._demo_usage(customers int, days int, seed int, end_date date,
                               from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (customer_id uuid, user_id text, event text, feature text, quantity float8,
               occurred_at timestamptz)
AS 'MODULE_PATHNAME', 'cs_demo_usage'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_usage(int, int, int, date, date, date) IS
    'Demo rows for cs.usage_events (one per active user-day) of the days between from_date and to_date (NULL: the whole window), month by month and in customer uuid order; internal.';

------------------------------------------------------------------------------
-- Entry points
------------------------------------------------------------------------------

CREATE FUNCTION cs.generate_demo_data(customers int DEFAULT 1000, days int DEFAULT 180, seed int DEFAULT 42,
                                      end_date date DEFAULT current_date)
RETURNS bigint
AS 'MODULE_PATHNAME', 'cs_generate_demo_data'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cs.generate_demo_data(int, int, int, date) IS
    'Generates a realistic demo dataset covering [end_date - days, end_date] into every signal table plus cs.demo_ground_truth; returns the number of rows inserted. Deterministic: the same arguments give the same rows, ids and timestamps (UTC). customers 1-10,000,000, days 1-3650, no NULL arguments. Refuses (duplicate_object) when demo data (external_id ''demo-...'') already exists: remove it first with cs.drop_demo_data(). Creates the monthly usage partitions it needs, then analyzes the tables. About 3 usage rows per customer-day; about 11% of customers churn per 180 days (constant hazard, no new customers are acquired, so long windows churn most of them). Churned customers keep their last MRR and seats; their contract and subscriptions end on churned_at.';

-- Removes every demo customer and every row about it (signals, scores, alerts).
CREATE FUNCTION cs.drop_demo_data()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    total bigint := 0;
    n     bigint;
    t     text;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS _cs_demo_ids (id uuid PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE _cs_demo_ids;
    INSERT INTO _cs_demo_ids SELECT c.id FROM cs.customers c WHERE c.external_id LIKE 'demo-%';
    ANALYZE _cs_demo_ids;
    DELETE FROM cs.alert_feedback f USING cs.alerts a, _cs_demo_ids d
     WHERE f.alert_id = a.id AND a.customer_id = d.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    FOREACH t IN ARRAY ARRAY['actions', 'alerts', 'opportunities', 'risk_assessments', 'customer_health_scores',
                             'customer_features', 'usage_events', 'support_tickets', 'invoices', 'engagements',
                             'nps_responses', 'contacts', 'subscriptions', 'demo_ground_truth']
    LOOP
        IF to_regclass(format('cs.%I', t)) IS NOT NULL THEN
            EXECUTE format('DELETE FROM cs.%I x USING _cs_demo_ids d WHERE x.customer_id = d.id', t);
            GET DIAGNOSTICS n = ROW_COUNT;
            total := total + n;
        END IF;
    END LOOP;
    DELETE FROM cs.customers c USING _cs_demo_ids d WHERE c.id = d.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    -- their cs.dirty_customers rows, queued by the triggers, go with them (ON DELETE CASCADE)
    DROP TABLE _cs_demo_ids;
    RETURN total;
END;
$$;
COMMENT ON FUNCTION cs.drop_demo_data() IS
    'Deletes every demo customer (external_id ''demo-...'') with all its signals, scores, alerts and ground truth; returns the number of rows deleted. Other customers are untouched.';

-- source: src/sql/10_features.sql
-- Feature store: the catalog, point-in-time feature computation and the
-- current vector per customer.
--
-- Missing data is NaN, never a silent zero: usage features are NaN for a
-- customer with no usage event at all up to as_of (no product analytics for
-- it), averages are NaN when there is nothing to average, contract features are
-- NaN when the dates are unknown.  Counts of tickets or meetings are real zeros.

CREATE FUNCTION cs.feature_vector(float8[]) RETURNS float4[]
    AS 'MODULE_PATHNAME', 'cs_feature_vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.feature_vector(float8[]) IS 'Converts values to a float4 feature vector; NULL and out-of-range values become NaN (missing).';

CREATE FUNCTION cs.interpolate(x float8, thresholds float8[], scores float8[]) RETURNS float8
    AS 'MODULE_PATHNAME', 'cs_interpolate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.interpolate(float8, float8[], float8[]) IS 'Piecewise-linear map of x through (thresholds, scores), constant outside; NULL for NaN.';

CREATE FUNCTION cs.percentile_rank(sorted float8[], x float8) RETURNS float8
    AS 'MODULE_PATHNAME', 'cs_percentile_rank' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.percentile_rank(float8[], float8) IS 'Mid-rank share of an ascending population below x, in [0,1]; NULL for NaN or an empty population.';

CREATE FUNCTION cs._usage_summary_trans(internal, text, text, float8, timestamptz, timestamptz) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_summary_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION cs._usage_summary_final(internal) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'cs_usage_summary_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE cs.usage_summary(user_id text, feature text, quantity float8, occurred_at timestamptz, as_of timestamptz) (
    SFUNC = cs._usage_summary_trans, STYPE = internal, FINALFUNC = cs._usage_summary_final, PARALLEL = SAFE);
COMMENT ON FUNCTION cs._usage_summary_trans(internal, text, text, float8, timestamptz, timestamptz) IS 'Internal: transition function of cs.usage_summary.';
COMMENT ON FUNCTION cs._usage_summary_final(internal) IS 'Internal: final function of cs.usage_summary.';
COMMENT ON AGGREGATE cs.usage_summary(text, text, float8, timestamptz, timestamptz) IS
    'One-pass usage summary of a customer''s events up to as_of: {users 7d, users 30d, quantity 30d, quantity prior 30d, quantity 14d, quantity prior 14d, features 30d, active days 30d, days since last event}; windows are whole days counted back from as_of.';

INSERT INTO cs.feature_catalog (position, name, description, source) VALUES
 ( 1, 'active_users_7d',            'Distinct users with activity in the last 7 days', 'usage_events'),
 ( 2, 'active_users_30d',           'Distinct users with activity in the last 30 days', 'usage_events'),
 ( 3, 'seat_utilisation',           'Active users in 30 days divided by licensed seats (above 1 means over licence)', 'usage_events'),
 ( 4, 'events_per_active_user_30d', 'Event quantity in 30 days per active user', 'usage_events'),
 ( 5, 'feature_breadth_30d',        'Distinct product features used in 30 days', 'usage_events'),
 ( 6, 'days_since_last_activity',   'Days since the last usage event', 'usage_events'),
 ( 7, 'usage_trend_30d',            'Event quantity of the last 30 days over the 30 days before, minus 1', 'usage_events'),
 ( 8, 'usage_trend_14d',            'Event quantity of the last 14 days over the 14 days before, minus 1', 'usage_events'),
 ( 9, 'events_30d',                 'Event quantity in the last 30 days', 'usage_events'),
 (10, 'active_days_30d',            'Days (24-hour periods counted back from as_of) with any activity in the last 30', 'usage_events'),
 (11, 'tickets_30d',                'Support tickets opened in the last 30 days', 'support_tickets'),
 (12, 'tickets_90d',                'Support tickets opened in the last 90 days', 'support_tickets'),
 (13, 'open_high_priority_tickets', 'High or urgent tickets open at as_of', 'support_tickets'),
 (14, 'mean_csat_90d',              'Mean CSAT (1-5) of tickets opened in the last 90 days', 'support_tickets'),
 (15, 'mean_hours_to_close_90d',    'Mean hours to close of tickets opened in the last 90 days and closed by as_of', 'support_tickets'),
 (16, 'late_or_failed_invoices_90d','Invoices due in the last 90 days paid late or not paid by as_of', 'invoices'),
 (17, 'days_overdue',               'Days the oldest invoice unpaid at as_of is past due (0 when none)', 'invoices'),
 (18, 'meetings_90d',               'Meetings, calls, QBRs, trainings and onsites in the last 90 days', 'engagements'),
 (19, 'qbrs_90d',                   'Quarterly business reviews in the last 90 days', 'engagements'),
 (20, 'days_since_last_touch',      'Days since the last engagement of any kind', 'engagements'),
 (21, 'last_nps',                   'Most recent NPS answer (0-10)', 'nps_responses'),
 (22, 'nps_trend',                  'Most recent NPS answer minus the one before', 'nps_responses'),
 (23, 'champion_left_90d',          '1 when a champion left in the last 90 days, else 0', 'contacts'),
 (24, 'has_active_champion',        '1 when a champion is still at the customer, else 0', 'contacts'),
 (25, 'tenure_days',                'Days since the customer started (earliest of created_at and contract start); NaN before', 'customers'),
 (26, 'days_to_renewal',            'Days until the contract term running at as_of ends (terms before the current one assumed of the same length)', 'customers'),
 (27, 'mrr',                        'Monthly recurring revenue at as_of (active subscriptions, else the customer MRR)', 'subscriptions'),
 (28, 'mrr_change_90d',             'Relative change of subscription MRR over 90 days', 'subscriptions'),
 (29, 'active_products',            'Products with an active subscription at as_of', 'subscriptions'),
 (30, 'seats_licensed',             'Seats in the licence', 'customers');

-- Feature vectors for a set of customers (all of them when ids is NULL) as of a
-- point in time: only rows with timestamps at or before as_of count, so models
-- can be trained on history without leakage.  One query serves one customer
-- and a full refresh alike.
CREATE FUNCTION cs.compute_features(ids uuid[], as_of timestamptz)
RETURNS TABLE (customer_id uuid, features float4[])
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
-- room for the per-customer hash aggregates of a full refresh
SET work_mem = '256MB'
AS $fn$
DECLARE
    f text;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A literal predicate gives the planner a plan per case: index scans for a
    -- few customers, hash aggregates over everything for a full refresh.
    f := CASE WHEN ids IS NULL THEN 'true' ELSE 'customer_id = ANY ($1)' END;
    RETURN QUERY EXECUTE format($q$
    WITH c AS (
        SELECT id, mrr, seats_licensed, contract_start_date, contract_end_date,
               least(contract_start_date, created_at::date) AS since
          FROM cs.customers WHERE %1$s
    ), u AS MATERIALIZED (
        SELECT customer_id,
               cs.usage_summary(user_id, feature, quantity, occurred_at, $2) AS us
          FROM cs.usage_events
         WHERE %2$s AND occurred_at > $2 - interval '60 days' AND occurred_at <= $2
         GROUP BY customer_id
    ), u_old AS (
        -- days since the last activity of customers silent for 60 days, by index
        SELECT q.id AS customer_id,
               (SELECT extract(epoch FROM $2 - max(e.occurred_at)) / 86400.0 FROM cs.usage_events e
                 WHERE e.customer_id = q.id AND e.occurred_at <= $2 - interval '60 days') AS days_since
          FROM (SELECT c.id FROM c WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.customer_id = c.id) OFFSET 0) q
    ), t AS (
        SELECT customer_id,
               count(*) FILTER (WHERE opened_at > $2 - interval '30 days') AS t30,
               count(*) AS t90,
               avg(csat) AS csat90,
               avg(extract(epoch FROM closed_at - opened_at) / 3600.0)
                   FILTER (WHERE closed_at <= $2) AS hours_to_close
          FROM cs.support_tickets
         WHERE %2$s AND opened_at > $2 - interval '90 days' AND opened_at <= $2
         GROUP BY customer_id
    ), t_open AS (
        SELECT customer_id, count(*) AS open_high
          FROM cs.support_tickets
         WHERE %2$s AND opened_at <= $2 AND (closed_at IS NULL OR closed_at > $2)
           AND priority IN ('high', 'urgent') AND status NOT IN ('solved', 'closed')
         GROUP BY customer_id
    ), i AS (
        SELECT customer_id,
               count(*) FILTER (WHERE due_date > ($2 - interval '90 days')::date AND due_date <= $2::date
                                  AND status <> 'void'
                                  AND (status = 'failed' OR paid_at IS NULL OR paid_at > due_date
                                       OR paid_at > $2::date)) AS late90,
               coalesce(max($2::date - due_date) FILTER (WHERE due_date < $2::date AND status NOT IN ('void', 'draft')
                                  AND (paid_at IS NULL OR paid_at > $2::date)), 0) AS overdue
          FROM cs.invoices
         WHERE %2$s AND issued_at <= $2::date
         GROUP BY customer_id
    ), e AS (
        SELECT customer_id,
               count(*) FILTER (WHERE occurred_at > $2 - interval '90 days'
                                  AND kind IN ('meeting', 'call', 'qbr', 'training', 'onsite')) AS meetings90,
               count(*) FILTER (WHERE occurred_at > $2 - interval '90 days' AND kind = 'qbr') AS qbr90,
               max(occurred_at) AS last_touch
          FROM cs.engagements
         WHERE %2$s AND occurred_at <= $2
         GROUP BY customer_id
    ), n AS (
        SELECT customer_id,
               (array_agg(score ORDER BY responded_at DESC, id DESC))[1] AS last_nps,
               (array_agg(score ORDER BY responded_at DESC, id DESC))[2] AS prev_nps
          FROM cs.nps_responses
         WHERE %2$s AND responded_at <= $2
         GROUP BY customer_id
    ), k AS (
        SELECT customer_id,
               bool_or(is_champion AND left_at > $2 - interval '90 days' AND left_at <= $2) AS champion_left,
               bool_or(is_champion AND (left_at IS NULL OR left_at > $2)) AS champion_active
          FROM cs.contacts
         WHERE %2$s
         GROUP BY customer_id
    ), s AS (
        SELECT customer_id,
               sum(mrr) FILTER (WHERE started_at <= $2::date AND (ended_at IS NULL OR ended_at > $2::date)) AS mrr_now,
               sum(mrr) FILTER (WHERE started_at <= ($2 - interval '90 days')::date
                                  AND (ended_at IS NULL OR ended_at > ($2 - interval '90 days')::date)) AS mrr_then,
               count(DISTINCT product) FILTER (WHERE started_at <= $2::date
                                                 AND (ended_at IS NULL OR ended_at > $2::date)) AS products
          FROM cs.subscriptions
         WHERE %2$s
         GROUP BY customer_id
    )
    SELECT c.id,
           cs.feature_vector(ARRAY[
             -- us = {users 7d, users 30d, events 30d, events prior 30d, events 14d,
             --       events prior 14d, features 30d, active days 30d, days since last event}
             CASE WHEN u.us IS NOT NULL THEN u.us[1] WHEN uo.days_since IS NOT NULL THEN 0 END,
             CASE WHEN u.us IS NOT NULL THEN u.us[2] WHEN uo.days_since IS NOT NULL THEN 0 END,
             CASE WHEN c.seats_licensed > 0 AND (u.us IS NOT NULL OR uo.days_since IS NOT NULL)
                  THEN coalesce(u.us[2], 0) / c.seats_licensed END,
             CASE WHEN u.us[2] > 0 THEN u.us[3] / u.us[2] END,
             CASE WHEN u.us IS NOT NULL THEN u.us[7] WHEN uo.days_since IS NOT NULL THEN 0 END,
             coalesce(u.us[9], uo.days_since),
             CASE WHEN u.us[4] > 0 THEN u.us[3] / u.us[4] - 1
                  WHEN u.us IS NOT NULL THEN CASE WHEN u.us[3] > 0 THEN 1 ELSE 0 END
                  WHEN uo.days_since IS NOT NULL THEN 0 END,
             CASE WHEN u.us[6] > 0 THEN u.us[5] / u.us[6] - 1
                  WHEN u.us IS NOT NULL THEN CASE WHEN u.us[5] > 0 THEN 1 ELSE 0 END
                  WHEN uo.days_since IS NOT NULL THEN 0 END,
             CASE WHEN u.us IS NOT NULL THEN u.us[3] WHEN uo.days_since IS NOT NULL THEN 0 END,
             CASE WHEN u.us IS NOT NULL THEN u.us[8] WHEN uo.days_since IS NOT NULL THEN 0 END,
             coalesce(t.t30, 0),
             coalesce(t.t90, 0),
             coalesce(t_open.open_high, 0),
             t.csat90,
             t.hours_to_close,
             i.late90,
             i.overdue,
             coalesce(e.meetings90, 0),
             coalesce(e.qbr90, 0),
             extract(epoch FROM $2 - e.last_touch) / 86400.0,
             n.last_nps,
             n.last_nps - n.prev_nps,
             CASE WHEN k.customer_id IS NOT NULL THEN coalesce(k.champion_left, false)::int END,
             CASE WHEN k.customer_id IS NOT NULL THEN coalesce(k.champion_active, false)::int END,
             -- cs.customers holds only the current contract: before it began, the
             -- customer was in an earlier term of the same length, so the renewal
             -- then was the start of a later term (point-in-time; the current end
             -- date would tell the future: whether the customer renewed).
             CASE WHEN c.since <= $2::date THEN $2::date - c.since END,
             CASE WHEN c.contract_end_date IS NULL THEN NULL
                  WHEN c.contract_start_date IS NULL OR $2::date >= c.contract_start_date
                       THEN c.contract_end_date - $2::date
                  ELSE (c.contract_start_date - $2::date - 1)
                       %% greatest(c.contract_end_date - c.contract_start_date, 1) + 1 END,
             coalesce(s.mrr_now, c.mrr),
             CASE WHEN s.mrr_then > 0 THEN coalesce(s.mrr_now, 0) / s.mrr_then - 1 END,
             s.products,
             c.seats_licensed
           ]::float8[])
      FROM c
      LEFT JOIN u ON u.customer_id = c.id
      LEFT JOIN u_old uo ON uo.customer_id = c.id
      LEFT JOIN t ON t.customer_id = c.id
      LEFT JOIN t_open ON t_open.customer_id = c.id
      LEFT JOIN i ON i.customer_id = c.id
      LEFT JOIN e ON e.customer_id = c.id
      LEFT JOIN n ON n.customer_id = c.id
      LEFT JOIN k ON k.customer_id = c.id
      LEFT JOIN s ON s.customer_id = c.id
    $q$, replace(f, 'customer_id', 'id'), f)
    USING ids, as_of;
END;
$fn$;
COMMENT ON FUNCTION cs.compute_features(uuid[], timestamptz) IS
    'Point-in-time feature vectors (cs.feature_catalog order, NaN for missing) for the given customers, or all when ids is NULL; only data stamped at or before as_of counts.';

-- The feature vector of one customer at a point in time.
CREATE FUNCTION cs.features(customer_id uuid, as_of timestamptz DEFAULT now())
RETURNS float4[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    v float4[];
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT f.features INTO v FROM cs.compute_features(ARRAY[customer_id], as_of) f;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v;
END;
$$;
COMMENT ON FUNCTION cs.features(uuid, timestamptz) IS
    'The feature vector of a customer as of a point in time (default now), in cs.feature_catalog order; NaN for missing data.';

-- source: src/sql/20_health.sql
-- Composite health score: per-segment profiles, normalisation, weighting with
-- redistribution of missing inputs, drivers, history; cs.refresh(); the views.

------------------------------------------------------------------------------
-- Profiles
------------------------------------------------------------------------------

-- Refuses a malformed profile before it is written (never half-applied) and
-- bumps its version whenever its scoring changes.
CREATE FUNCTION cs._validate_health_profile() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    g        record;
    m        record;
    norm     jsonb;
    total_gw float8 := 0;
    group_mw float8;
    red      float8;
    yellow   float8;
    xs       float8[];
    ys       float8[];
BEGIN
    IF jsonb_typeof(NEW.weights) IS DISTINCT FROM 'object' OR NEW.weights = '{}' THEN
        RAISE EXCEPTION 'health profile "%": weights must be a non-empty JSON object', NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use {"usage": {"weight": 0.4, "measures": {"seat_utilisation": 1}}, ...}.';
    END IF;
    FOR g IN SELECT key, value FROM jsonb_each(NEW.weights) LOOP
        IF g.key NOT IN ('usage', 'engagement', 'support', 'payment') THEN
            RAISE EXCEPTION 'health profile "%": unknown group "%"', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Groups are usage, engagement, support and payment.';
        END IF;
        IF jsonb_typeof(g.value -> 'weight') IS DISTINCT FROM 'number' OR (g.value ->> 'weight')::float8 < 0 THEN
            RAISE EXCEPTION 'health profile "%": group "%" needs a non-negative numeric weight', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(g.value -> 'measures') IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'health profile "%": group "%" needs a measures object', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        total_gw := total_gw + (g.value ->> 'weight')::float8;
        group_mw := 0;
        FOR m IN SELECT key, value FROM jsonb_each(g.value -> 'measures') LOOP
            IF NOT EXISTS (SELECT 1 FROM cs.feature_catalog WHERE name = m.key) THEN
                RAISE EXCEPTION 'health profile "%": measure "%" is not in cs.feature_catalog', NEW.name, m.key
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF jsonb_typeof(m.value) IS DISTINCT FROM 'number' OR m.value::text::float8 < 0 THEN
                RAISE EXCEPTION 'health profile "%": measure "%" needs a non-negative numeric weight', NEW.name, m.key
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            group_mw := group_mw + m.value::text::float8;
            norm := NEW.normalisation -> m.key;
            IF norm IS NULL THEN
                RAISE EXCEPTION 'health profile "%": measure "%" has no normalisation', NEW.name, m.key
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Add {"method": "thresholds", "thresholds": [...], "scores": [...]} or {"method": "percentile", "direction": "higher_is_better"}.';
            END IF;
            IF norm ->> 'method' = 'thresholds' THEN
                IF jsonb_typeof(norm -> 'thresholds') IS DISTINCT FROM 'array'
                   OR jsonb_typeof(norm -> 'scores') IS DISTINCT FROM 'array' THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" needs thresholds and scores arrays', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                BEGIN
                    xs := ARRAY(SELECT jsonb_array_elements_text(norm -> 'thresholds')::float8);
                    ys := ARRAY(SELECT jsonb_array_elements_text(norm -> 'scores')::float8);
                    PERFORM cs.interpolate(0, xs, ys);
                EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value OR null_value_not_allowed THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" has invalid thresholds or scores', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value',
                              DETAIL = 'Thresholds must be strictly increasing numbers, one score per threshold.';
                END;
                IF EXISTS (SELECT 1 FROM unnest(ys) y WHERE y < 0 OR y > 1) THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" has scores outside [0, 1]', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSIF norm ->> 'method' = 'percentile' THEN
                IF coalesce(norm ->> 'direction', '') NOT IN ('higher_is_better', 'lower_is_better') THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" needs direction higher_is_better or lower_is_better', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSE
                RAISE EXCEPTION 'health profile "%": measure "%" has unknown normalisation method "%"', NEW.name, m.key, norm ->> 'method'
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'Methods are thresholds and percentile.';
            END IF;
        END LOOP;
        IF (g.value ->> 'weight')::float8 > 0 AND group_mw = 0 THEN
            RAISE EXCEPTION 'health profile "%": group "%" has weight but no weighted measure', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF total_gw = 0 THEN
        RAISE EXCEPTION 'health profile "%": all group weights are zero', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(NEW.bands -> 'red') IS DISTINCT FROM 'number' OR jsonb_typeof(NEW.bands -> 'yellow') IS DISTINCT FROM 'number' THEN
        RAISE EXCEPTION 'health profile "%": bands need numeric red and yellow cut-offs', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    red := (NEW.bands ->> 'red')::float8;
    yellow := (NEW.bands ->> 'yellow')::float8;
    IF NOT (0 <= red AND red <= yellow AND yellow <= 1) THEN
        RAISE EXCEPTION 'health profile "%": bands must be ordered 0 <= red <= yellow <= 1 (got red %, yellow %)', NEW.name, red, yellow
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.weights, NEW.bands, NEW.normalisation, NEW.segment)
                            IS DISTINCT FROM (OLD.weights, OLD.bands, OLD.normalisation, OLD.segment) THEN
        NEW.version := OLD.version + 1;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER health_profiles_validate BEFORE INSERT OR UPDATE ON cs.health_profiles
    FOR EACH ROW EXECUTE FUNCTION cs._validate_health_profile();

INSERT INTO cs.health_profiles (name, segment, weights, bands, normalisation) VALUES
('default', NULL,
 '{"usage":      {"weight": 0.60, "measures": {"seat_utilisation": 0.15, "active_days_30d": 0.25, "usage_trend_30d": 0.20,
                                                "feature_breadth_30d": 0.20, "days_since_last_activity": 0.20}},
   "engagement": {"weight": 0.20, "measures": {"meetings_90d": 0.30, "days_since_last_touch": 0.25, "last_nps": 0.25,
                                                "has_active_champion": 0.20}},
   "support":    {"weight": 0.10, "measures": {"tickets_30d": 0.25, "open_high_priority_tickets": 0.30, "mean_csat_90d": 0.30,
                                                "mean_hours_to_close_90d": 0.15}},
   "payment":    {"weight": 0.10, "measures": {"late_or_failed_invoices_90d": 0.50, "days_overdue": 0.50}}}',
 '{"red": 0.45, "yellow": 0.70}',
 '{"seat_utilisation":            {"method": "percentile", "direction": "higher_is_better"},
   "active_days_30d":             {"method": "percentile", "direction": "higher_is_better"},
   "usage_trend_30d":             {"method": "percentile", "direction": "higher_is_better"},
   "feature_breadth_30d":         {"method": "percentile", "direction": "higher_is_better"},
   "days_since_last_activity":    {"method": "percentile", "direction": "lower_is_better"},
   "meetings_90d":                {"method": "thresholds", "thresholds": [0, 2, 5], "scores": [0, 0.6, 1]},
   "days_since_last_touch":       {"method": "thresholds", "thresholds": [14, 45, 90], "scores": [1, 0.5, 0]},
   "last_nps":                    {"method": "thresholds", "thresholds": [3, 7, 9], "scores": [0, 0.6, 1]},
   "has_active_champion":         {"method": "thresholds", "thresholds": [0, 1], "scores": [0, 1]},
   "tickets_30d":                 {"method": "thresholds", "thresholds": [1, 4, 10], "scores": [1, 0.5, 0]},
   "open_high_priority_tickets":  {"method": "thresholds", "thresholds": [0, 1, 3], "scores": [1, 0.5, 0]},
   "mean_csat_90d":               {"method": "thresholds", "thresholds": [2, 3.5, 4.5], "scores": [0, 0.5, 1]},
   "mean_hours_to_close_90d":     {"method": "thresholds", "thresholds": [24, 72, 240], "scores": [1, 0.5, 0]},
   "late_or_failed_invoices_90d": {"method": "thresholds", "thresholds": [0, 1, 3], "scores": [1, 0.5, 0]},
   "days_overdue":                {"method": "thresholds", "thresholds": [0, 15, 60], "scores": [1, 0.5, 0]}}'),
('enterprise', 'enterprise',
 '{"usage":      {"weight": 0.50, "measures": {"seat_utilisation": 0.15, "active_days_30d": 0.25, "usage_trend_30d": 0.20,
                                                "feature_breadth_30d": 0.20, "days_since_last_activity": 0.20}},
   "engagement": {"weight": 0.30, "measures": {"meetings_90d": 0.25, "qbrs_90d": 0.15, "days_since_last_touch": 0.20,
                                                "last_nps": 0.20, "has_active_champion": 0.20}},
   "support":    {"weight": 0.10, "measures": {"tickets_30d": 0.20, "open_high_priority_tickets": 0.35, "mean_csat_90d": 0.30,
                                                "mean_hours_to_close_90d": 0.15}},
   "payment":    {"weight": 0.10, "measures": {"late_or_failed_invoices_90d": 0.50, "days_overdue": 0.50}}}',
 '{"red": 0.45, "yellow": 0.70}',
 '{"seat_utilisation":            {"method": "percentile", "direction": "higher_is_better"},
   "active_days_30d":             {"method": "percentile", "direction": "higher_is_better"},
   "usage_trend_30d":             {"method": "percentile", "direction": "higher_is_better"},
   "feature_breadth_30d":         {"method": "percentile", "direction": "higher_is_better"},
   "days_since_last_activity":    {"method": "percentile", "direction": "lower_is_better"},
   "meetings_90d":                {"method": "thresholds", "thresholds": [0, 3, 8], "scores": [0, 0.6, 1]},
   "qbrs_90d":                    {"method": "thresholds", "thresholds": [0, 1], "scores": [0, 1]},
   "days_since_last_touch":       {"method": "thresholds", "thresholds": [7, 30, 60], "scores": [1, 0.5, 0]},
   "last_nps":                    {"method": "thresholds", "thresholds": [3, 7, 9], "scores": [0, 0.6, 1]},
   "has_active_champion":         {"method": "thresholds", "thresholds": [0, 1], "scores": [0, 1]},
   "tickets_30d":                 {"method": "percentile", "direction": "lower_is_better"},
   "open_high_priority_tickets":  {"method": "thresholds", "thresholds": [0, 1, 3], "scores": [1, 0.5, 0]},
   "mean_csat_90d":               {"method": "thresholds", "thresholds": [2, 3.5, 4.5], "scores": [0, 0.5, 1]},
   "mean_hours_to_close_90d":     {"method": "thresholds", "thresholds": [24, 72, 240], "scores": [1, 0.5, 0]},
   "late_or_failed_invoices_90d": {"method": "thresholds", "thresholds": [0, 1, 3], "scores": [1, 0.5, 0]},
   "days_overdue":                {"method": "thresholds", "thresholds": [0, 15, 60], "scores": [1, 0.5, 0]}}');

------------------------------------------------------------------------------
-- Computation
------------------------------------------------------------------------------

-- Sorted values of the percentile-normalised measures per segment, as of the
-- last full refresh, so that refreshing a few customers ranks them without
-- scanning the whole feature store.
CREATE TABLE cs.health_populations (
    segment     text,
    measure     text NOT NULL,
    sorted      float8[] NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX health_populations_key ON cs.health_populations (coalesce(segment, ''), measure);
COMMENT ON TABLE cs.health_populations IS 'Per segment and percentile-normalised measure, the sorted values of the feature store at the last full refresh; percentile ranks of later partial refreshes use them.';
COMMENT ON COLUMN cs.health_populations.segment IS 'Customer segment (NULL for customers without one).';
COMMENT ON COLUMN cs.health_populations.measure IS 'Feature name.';
COMMENT ON COLUMN cs.health_populations.sorted IS 'Present (non-NaN) values, ascending.';
COMMENT ON COLUMN cs.health_populations.computed_at IS 'When the population was taken.';

-- Retakes the percentile populations from the current feature store.
CREATE FUNCTION cs._refresh_health_populations()
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, cs
BEGIN ATOMIC
    DELETE FROM cs.health_populations;
    INSERT INTO cs.health_populations (segment, measure, sorted)
    SELECT c.segment, m.measure, array_agg(f.features[m.position]::float8 ORDER BY f.features[m.position])
      FROM (SELECT DISTINCT mm.key AS measure, fc.position
              FROM cs.health_profiles p
             CROSS JOIN LATERAL jsonb_each(p.weights) g
             CROSS JOIN LATERAL jsonb_each(g.value -> 'measures') mm
              JOIN cs.feature_catalog fc ON fc.name = mm.key
             WHERE p.normalisation -> mm.key ->> 'method' = 'percentile') m
     CROSS JOIN cs.customer_features f
      JOIN cs.customers c ON c.id = f.customer_id
     WHERE f.features[m.position] <> 'NaN'
     GROUP BY 1, 2;
END;
COMMENT ON FUNCTION cs._refresh_health_populations() IS 'Internal: retakes cs.health_populations from the feature store (run by full refreshes).';

-- Health scores for the given customers (all when ids is NULL) from their
-- stored feature vectors, or from vectors computed as of a point in time when
-- as_of is given.  Returns rows shaped like cs.customer_health_scores (id NULL).
--
-- Per measure: a normalised score in [0,1] (thresholds with linear
-- interpolation, or mid-rank percentile within the customer's segment over the
-- current feature store).  Per group: the weighted mean of its present
-- measures.  Overall: the weighted mean of present groups.  Weights of missing
-- inputs are thereby redistributed proportionally; drivers records which
-- inputs were missing and what share of the weight they had, and the present
-- inputs that cost the most score (effective weight x (1 - score)).
CREATE FUNCTION cs.compute_health(ids uuid[], as_of timestamptz DEFAULT NULL)
RETURNS SETOF cs.customer_health_scores
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $fn$
DECLARE
    fv text;
BEGIN
    IF as_of IS NULL THEN
        fv := format('SELECT customer_id, features, as_of FROM cs.customer_features WHERE %s',
                     CASE WHEN ids IS NULL THEN 'true' ELSE 'customer_id = ANY ($1)' END);
    ELSE
        fv := 'SELECT customer_id, features, $2 AS as_of FROM cs.compute_features($1, $2)';
    END IF;
    RETURN QUERY EXECUTE format($q$
    WITH fv AS (%s),
    -- profiles exploded once: one row per (profile, measure) with its arrays
    prof AS MATERIALIZED (
        SELECT p.id AS profile_id, p.segment, g.key AS grp, (g.value ->> 'weight')::float8 AS gw,
               mm.key AS measure, mm.value::float8 AS mw, fc.position,
               p.normalisation -> mm.key ->> 'method' AS method,
               p.normalisation -> mm.key ->> 'direction' AS direction,
               ARRAY(SELECT jsonb_array_elements_text(p.normalisation -> mm.key -> 'thresholds')::float8) AS xs,
               ARRAY(SELECT jsonb_array_elements_text(p.normalisation -> mm.key -> 'scores')::float8) AS ys
          FROM cs.health_profiles p
         CROSS JOIN LATERAL jsonb_each(p.weights) g
         CROSS JOIN LATERAL jsonb_each_text(g.value -> 'measures') mm
          JOIN cs.feature_catalog fc ON fc.name = mm.key
    ), cust AS (
        SELECT fv.customer_id, fv.features, fv.as_of, c.segment,
               coalesce(ps.id, pd.id) AS profile_id
          FROM fv
          JOIN cs.customers c ON c.id = fv.customer_id
          LEFT JOIN cs.health_profiles ps ON ps.segment = c.segment
          LEFT JOIN cs.health_profiles pd ON pd.segment IS NULL
    ), pop AS (
        -- sorted populations of the segments' percentile measures: as of the
        -- last full refresh (cs.health_populations), else from the feature store
        SELECT hp.segment, hp.measure, hp.sorted FROM cs.health_populations hp
        UNION ALL
        SELECT c.segment, pr.measure,
               array_agg(f.features[pr.position]::float8 ORDER BY f.features[pr.position]) AS sorted
          FROM (SELECT DISTINCT measure, position FROM prof
                 WHERE method = 'percentile'
                   AND measure NOT IN (SELECT measure FROM cs.health_populations)) pr
         CROSS JOIN cs.customer_features f
          JOIN cs.customers c ON c.id = f.customer_id
         WHERE f.features[pr.position] <> 'NaN'
         GROUP BY 1, 2
    ), scored AS (
        SELECT cu.customer_id, pr.grp, pr.gw, pr.measure, pr.mw, v.value,
               CASE WHEN v.value = 'NaN' THEN NULL
                    WHEN pr.method = 'percentile' THEN
                         CASE WHEN pr.direction = 'lower_is_better'
                              THEN 1 - cs.percentile_rank(pop.sorted, v.value)
                              ELSE cs.percentile_rank(pop.sorted, v.value) END
                    ELSE cs.interpolate(v.value, pr.xs, pr.ys)
               END AS s
          FROM cust cu
          JOIN prof pr ON pr.profile_id = cu.profile_id
         CROSS JOIN LATERAL (SELECT cu.features[pr.position]::float8 AS value) v
          LEFT JOIN pop ON pr.method = 'percentile' AND pop.segment IS NOT DISTINCT FROM cu.segment
                       AND pop.measure = pr.measure
         WHERE pr.gw > 0 AND pr.mw > 0
    ), grp AS (
        SELECT customer_id, grp, gw,
               sum(mw) AS mw_total,
               sum(mw) FILTER (WHERE s IS NOT NULL) AS mw_present,
               sum(mw * s) / nullif(sum(mw) FILTER (WHERE s IS NOT NULL), 0) AS gscore
          FROM scored GROUP BY customer_id, grp, gw
    ), tot AS (
        SELECT customer_id,
               sum(gw) AS gw_total,
               sum(gw) FILTER (WHERE gscore IS NOT NULL) AS gw_present,
               sum(gw * gscore) / nullif(sum(gw) FILTER (WHERE gscore IS NOT NULL), 0) AS overall,
               max(gscore) FILTER (WHERE grp = 'usage') AS usage,
               max(gscore) FILTER (WHERE grp = 'engagement') AS engagement,
               max(gscore) FILTER (WHERE grp = 'support') AS support,
               max(gscore) FILTER (WHERE grp = 'payment') AS payment
          FROM grp GROUP BY customer_id
    ), eff AS (
        SELECT s.customer_id, s.grp, s.measure, s.value, s.s,
               -- nominal share of the total weight, and the cost in score after redistribution
               (g.gw / t.gw_total) * (s.mw / g.mw_total) AS nominal,
               (g.gw / t.gw_present) * (s.mw / g.mw_present) * (1 - s.s) AS impact
          FROM scored s
          JOIN grp g USING (customer_id, grp)
          JOIN tot t USING (customer_id)
    ), ranked AS (
        SELECT eff.*, row_number() OVER (PARTITION BY customer_id ORDER BY impact DESC NULLS LAST, measure) AS rk
          FROM eff
    ), drv AS (
        SELECT customer_id,
               coalesce(jsonb_agg(jsonb_build_object('measure', measure, 'group', grp,
                                                     'value', round(value::numeric, 3),
                                                     'score', round(s::numeric, 3),
                                                     'impact', round(impact::numeric, 4))
                                  ORDER BY rk) FILTER (WHERE rk <= 3 AND impact > 0.0005), '[]') AS top,
               coalesce(jsonb_agg(measure ORDER BY measure) FILTER (WHERE s IS NULL), '[]') AS missing,
               round(coalesce(sum(nominal) FILTER (WHERE s IS NULL), 0)::numeric, 4) AS redistributed
          FROM ranked GROUP BY customer_id
    )
    SELECT NULL::uuid,
           cu.customer_id,
           round(t.overall::numeric, 2)::numeric(3,2),
           round(t.usage::numeric, 2)::numeric(3,2),
           round(t.engagement::numeric, 2)::numeric(3,2),
           round(t.support::numeric, 2)::numeric(3,2),
           round(t.payment::numeric, 2)::numeric(3,2),
           cu.as_of,
           (p.name || ':v' || p.version)::varchar(50),
           CASE WHEN t.overall IS NULL THEN NULL
                WHEN round(t.overall::numeric, 2) < (p.bands ->> 'red')::numeric THEN 'red'
                WHEN round(t.overall::numeric, 2) < (p.bands ->> 'yellow')::numeric THEN 'yellow'
                ELSE 'green' END,
           jsonb_build_object('top', coalesce(d.top, '[]'), 'missing', coalesce(d.missing, '[]'),
                              'redistributed_weight', coalesce(d.redistributed, 0))
      FROM cust cu
      JOIN cs.health_profiles p ON p.id = cu.profile_id
      LEFT JOIN tot t USING (customer_id)
      LEFT JOIN drv d USING (customer_id)
    $q$, fv)
    USING ids, as_of;
END;
$fn$;
COMMENT ON FUNCTION cs.compute_health(uuid[], timestamptz) IS
    'Health scores (not stored) for the given customers, or all when NULL: from stored feature vectors, or as of a point in time when as_of is given.';

-- The health score of one customer from its current signals, without storing it.
CREATE FUNCTION cs.health_score(customer_id uuid)
RETURNS cs.customer_health_scores
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    r cs.customer_health_scores;
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO r FROM cs.compute_health(ARRAY[customer_id], now());
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN r;
END;
$$;
COMMENT ON FUNCTION cs.health_score(uuid) IS
    'Health score of a customer computed now from its signals (not stored; cs.refresh stores history). id is NULL.';

------------------------------------------------------------------------------
-- Refresh
------------------------------------------------------------------------------

-- Recomputes and stores features and health for the given customers (all when
-- ids is NULL): features, health, then risk from the deployed champions.
CREATE FUNCTION cs._refresh_customers(ids uuid[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    n bigint;
    t timestamptz := now();
BEGIN
    INSERT INTO cs.customer_features AS cf (customer_id, as_of, features)
    SELECT f.customer_id, t, f.features FROM cs.compute_features(ids, t) f
    ON CONFLICT (customer_id) DO UPDATE SET as_of = excluded.as_of, features = excluded.features;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF ids IS NULL THEN
        PERFORM cs._refresh_health_populations();
    END IF;

    INSERT INTO cs.customer_health_scores (customer_id, overall_score, usage_score, engagement_score, support_score,
                                           payment_score, calculated_at, version, band, drivers)
    SELECT h.customer_id, h.overall_score, h.usage_score, h.engagement_score, h.support_score,
           h.payment_score, h.calculated_at, h.version, h.band, h.drivers
      FROM cs.compute_health(ids) h;

    -- Later stages, in dependency order: risk, opportunities, then alerts
    -- (which read health, churn risk and opportunities).
    PERFORM cs._score_risk(ids);
    PERFORM cs.refresh_opportunities(ids);
    PERFORM cs.evaluate_alerts(ids);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._refresh_customers(uuid[]) IS
    'Internal: recomputes and stores features and health for the given customers (all when NULL), scores risk with the deployed champions, then regenerates their opportunities and evaluates their alerts; returns the number of feature vectors written.';

-- Refreshes the given customers, or every customer a load marked dirty.
CREATE FUNCTION cs.refresh(customer_ids uuid[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    mark_ids uuid[];
    mark_ts  timestamptz[];
    todo     uuid[];
    n        bigint;
BEGIN
    IF customer_ids IS NULL THEN
        SELECT array_agg(customer_id), array_agg(marked_at) INTO mark_ids, mark_ts
          FROM cs.dirty_customers WHERE NOT parked;
        todo := mark_ids;
    ELSE
        IF cardinality(customer_ids) > 10000000 THEN
            RAISE EXCEPTION 'too many customers in one refresh' USING ERRCODE = 'program_limit_exceeded';
        END IF;
        todo := ARRAY(SELECT DISTINCT x FROM unnest(customer_ids) x WHERE x IS NOT NULL);
        SELECT array_agg(d.customer_id), array_agg(d.marked_at) INTO mark_ids, mark_ts
          FROM cs.dirty_customers d WHERE d.customer_id = ANY (todo);
    END IF;
    IF coalesce(cardinality(todo), 0) = 0 THEN
        RETURN 0;
    END IF;
    n := cs._refresh_customers(todo);
    -- Remove only marks unchanged since they were read: a load that committed
    -- meanwhile changed marked_at, and its customer stays dirty.
    DELETE FROM cs.dirty_customers d
     USING unnest(mark_ids, mark_ts) AS m(id, ts)
     WHERE d.customer_id = m.id AND d.marked_at = m.ts;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.refresh(uuid[]) IS
    'Recomputes features, health (and, as they exist, risk, opportunities and alerts) for the given customers, or for every customer marked dirty by a load when NULL; returns the number of customers refreshed.';

-- Refreshes every customer.
CREATE FUNCTION cs.refresh_all()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    mark_ids uuid[];
    mark_ts  timestamptz[];
    n        bigint;
BEGIN
    SELECT array_agg(customer_id), array_agg(marked_at) INTO mark_ids, mark_ts FROM cs.dirty_customers;
    n := cs._refresh_customers(NULL);
    DELETE FROM cs.dirty_customers d
     USING unnest(mark_ids, mark_ts) AS m(id, ts)
     WHERE d.customer_id = m.id AND d.marked_at = m.ts;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.refresh_all() IS 'Recomputes every customer''s features and scores; returns the number of customers.';

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

-- Sparkline glyph for a score in [0,1]; a blank for no score.
CREATE FUNCTION cs.spark(score numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN score IS NULL THEN ' '
            ELSE substr('▁▂▃▄▅▆▇█', 1 + least(7, greatest(0, floor(score * 8)::int)), 1) END;
COMMENT ON FUNCTION cs.spark(numeric) IS 'One sparkline glyph (▁ to █) for a score in [0,1]; a blank when NULL.';

CREATE VIEW cs.account_health_overview WITH (security_invoker = true) AS
SELECT c.id AS customer_id,
       c.external_id,
       c.name,
       c.csm,
       c.segment,
       c.mrr,
       c.contract_end_date AS renewal_date,
       h.overall_score,
       h.usage_score,
       h.engagement_score,
       h.support_score,
       h.payment_score,
       h.band,
       h.overall_score - (SELECT p.overall_score FROM cs.customer_health_scores p
                           WHERE p.customer_id = c.id AND p.calculated_at <= h.calculated_at - interval '7 days'
                           ORDER BY p.calculated_at DESC LIMIT 1) AS trend_7d,
       h.overall_score - (SELECT p.overall_score FROM cs.customer_health_scores p
                           WHERE p.customer_id = c.id AND p.calculated_at <= h.calculated_at - interval '30 days'
                           ORDER BY p.calculated_at DESC LIMIT 1) AS trend_30d,
       CASE WHEN h.overall_score IS NULL THEN NULL
            ELSE coalesce((SELECT CASE WHEN h.overall_score - p.overall_score >= 0.05 THEN '↑'
                                       WHEN h.overall_score - p.overall_score <= -0.05 THEN '↓'
                                       ELSE '→' END
                             FROM cs.customer_health_scores p
                            WHERE p.customer_id = c.id AND p.calculated_at <= h.calculated_at - interval '7 days'
                            ORDER BY p.calculated_at DESC LIMIT 1), '·') END AS trend_arrow,
       (SELECT string_agg(cs.spark((SELECT p.overall_score FROM cs.customer_health_scores p
                                     WHERE p.customer_id = c.id
                                       AND p.calculated_at <= h.calculated_at - make_interval(weeks => w)
                                     ORDER BY p.calculated_at DESC LIMIT 1)), '' ORDER BY w DESC)
          FROM generate_series(0, 11) w
         WHERE h.calculated_at IS NOT NULL) AS sparkline,
       h.drivers -> 'top' -> 0 ->> 'measure' AS top_driver,
       r.risk_score AS churn_risk,
       r.confidence_score AS churn_risk_confidence,
       (SELECT x ->> 'feature' FROM jsonb_array_elements(r.risk_factors) x
         WHERE (x ->> 'contribution')::float8 > 0
         ORDER BY (x ->> 'contribution')::float8 DESC LIMIT 1) AS top_risk_factor,
       h.calculated_at
  FROM cs.customers c
  LEFT JOIN LATERAL (SELECT * FROM cs.customer_health_scores s WHERE s.customer_id = c.id
                      ORDER BY s.calculated_at DESC LIMIT 1) h ON true
  LEFT JOIN LATERAL (SELECT * FROM cs.risk_assessments a WHERE a.customer_id = c.id AND a.risk_type = 'churn'
                      ORDER BY a.created_at DESC LIMIT 1) r ON true
 WHERE c.churned_at IS NULL;
COMMENT ON VIEW cs.account_health_overview IS 'One row per active customer: latest health, sub-scores, band, trend, 12-week sparkline, top driver and churn risk.';
COMMENT ON COLUMN cs.account_health_overview.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.account_health_overview.external_id IS 'Account id in the CRM.';
COMMENT ON COLUMN cs.account_health_overview.name IS 'Account name.';
COMMENT ON COLUMN cs.account_health_overview.csm IS 'Owning CSM (role name).';
COMMENT ON COLUMN cs.account_health_overview.segment IS 'smb, mid_market or enterprise.';
COMMENT ON COLUMN cs.account_health_overview.mrr IS 'Monthly recurring revenue.';
COMMENT ON COLUMN cs.account_health_overview.renewal_date IS 'Contract end date.';
COMMENT ON COLUMN cs.account_health_overview.overall_score IS 'Latest overall health 0-1.';
COMMENT ON COLUMN cs.account_health_overview.usage_score IS 'Latest usage sub-score 0-1.';
COMMENT ON COLUMN cs.account_health_overview.engagement_score IS 'Latest engagement sub-score 0-1.';
COMMENT ON COLUMN cs.account_health_overview.support_score IS 'Latest support sub-score 0-1.';
COMMENT ON COLUMN cs.account_health_overview.payment_score IS 'Latest payment sub-score 0-1.';
COMMENT ON COLUMN cs.account_health_overview.band IS 'red, yellow or green.';
COMMENT ON COLUMN cs.account_health_overview.trend_7d IS 'Change of overall health against the score 7 days earlier.';
COMMENT ON COLUMN cs.account_health_overview.trend_30d IS 'Change of overall health against the score 30 days earlier.';
COMMENT ON COLUMN cs.account_health_overview.trend_arrow IS '↑ or ↓ for a 7-day change of at least 0.05, → otherwise, · without history.';
COMMENT ON COLUMN cs.account_health_overview.sparkline IS 'Overall health at the end of each of the last 12 weeks, oldest first.';
COMMENT ON COLUMN cs.account_health_overview.top_driver IS 'The measure that pulls the health score down most.';
COMMENT ON COLUMN cs.account_health_overview.churn_risk IS 'Latest churn risk 0-1 (NULL until a churn model scores the customer).';
COMMENT ON COLUMN cs.account_health_overview.churn_risk_confidence IS 'Confidence 0-1 of the latest churn risk.';
COMMENT ON COLUMN cs.account_health_overview.top_risk_factor IS 'Feature raising the churn risk most (largest positive SHAP contribution).';
COMMENT ON COLUMN cs.account_health_overview.calculated_at IS 'When the latest health score was computed.';

CREATE VIEW cs.health_trends WITH (security_invoker = true) AS
WITH weekly AS (
    SELECT h.customer_id, c.segment, date_trunc('week', h.calculated_at)::date AS week,
           (array_agg(h.overall_score ORDER BY h.calculated_at DESC))[1] AS overall_score,
           (array_agg(h.band ORDER BY h.calculated_at DESC))[1] AS band
      FROM cs.customer_health_scores h
      JOIN cs.customers c ON c.id = h.customer_id
     GROUP BY 1, 2, 3
)
SELECT 'customer'::text AS grain, customer_id, segment, week, overall_score, band, 1::bigint AS customers
  FROM weekly
UNION ALL
SELECT 'segment', NULL, segment, week, round(avg(overall_score), 2), NULL, count(*)
  FROM weekly GROUP BY segment, week;
COMMENT ON VIEW cs.health_trends IS 'Weekly health: per customer (its last score of the week) and per segment (mean of its customers).';
COMMENT ON COLUMN cs.health_trends.grain IS 'customer or segment.';
COMMENT ON COLUMN cs.health_trends.customer_id IS 'The customer (NULL for segment rows).';
COMMENT ON COLUMN cs.health_trends.segment IS 'Segment of the customer or of the row.';
COMMENT ON COLUMN cs.health_trends.week IS 'Monday of the week.';
COMMENT ON COLUMN cs.health_trends.overall_score IS 'Overall health: last of the week, or the segment mean.';
COMMENT ON COLUMN cs.health_trends.band IS 'Band of the last score of the week (customer rows).';
COMMENT ON COLUMN cs.health_trends.customers IS 'Customers behind the row.';

-- source: src/sql/30_models.sql
-- Model registry, scoring and explanations (src/model.c, src/explain.c, src/train.c).

------------------------------------------------------------------------------
-- Registry
------------------------------------------------------------------------------

CREATE FUNCTION cs.load_model(name text, kind text, model bytea, feature_names text[] DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'cs_load_model'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cs.load_model(text, text, bytea, text[]) IS
    'Registers XGBoost model bytes (JSON or UBJ) as the next version of name, status candidate, after checking them (objective, feature count, feature names against cs.feature_catalog for scoring kinds, agreement of the native evaluator with libxgboost); feature_names default to the names stored in the model. Returns the new cs.models id.';

CREATE FUNCTION cs.load_model_file(name text, kind text, filename text, feature_names text[] DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'cs_load_model_file'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cs.load_model_file(text, text, text, text[]) IS
    'Registers a model shipped with the extension (a file name in SHAREDIR/cscopilot/models, no directories); feature_names default to the names stored in the model. Returns the new cs.models id.';

CREATE FUNCTION cs.deploy_model(name text, version int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m cs.models;
BEGIN
    SELECT * INTO m FROM cs.models AS x WHERE x.name = deploy_model.name AND x.version = deploy_model.version
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    -- One champion per kind; custom models have one champion per name.
    UPDATE cs.models AS x SET status = 'retired'
     WHERE x.status = 'champion' AND x.id <> m.id
       AND ((m.kind <> 'custom' AND x.kind = m.kind) OR (m.kind = 'custom' AND x.kind = 'custom' AND x.name = m.name));
    UPDATE cs.models AS x SET status = 'champion' WHERE x.id = m.id;
END;
$$;
COMMENT ON FUNCTION cs.deploy_model(text, int) IS
    'Makes a model version the champion: it then scores its kind (custom models: its name). The previous champion becomes retired.';

-- Every backend drops what it resolved from cs.models when the table changes.
CREATE FUNCTION cs.models_invalidate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'cs_models_invalidate'
LANGUAGE C;
COMMENT ON FUNCTION cs.models_invalidate() IS
    'Statement trigger on cs.models: signals every backend to resolve model names again, so changes apply without reconnecting.';

CREATE TRIGGER models_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cs.models
    FOR EACH STATEMENT EXECUTE FUNCTION cs.models_invalidate();

------------------------------------------------------------------------------
-- Scoring
------------------------------------------------------------------------------

CREATE FUNCTION cs.predict(model text, features float4[])
RETURNS float8
AS 'MODULE_PATHNAME', 'cs_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.predict(text, float4[]) IS
    'Prediction of the model called model (its champion version, else its latest version) for one feature vector, in the order of its feature_names; NaN means missing. Probability for logistic objectives, margin for binary:logitraw, value for reg:squarederror.';

CREATE FUNCTION cs.model_margin(model text, features float4[])
RETURNS float8
AS 'MODULE_PATHNAME', 'cs_model_margin'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.model_margin(text, float4[]) IS
    'Raw margin (base score plus the sum of the trees, before the logistic link) of the model called model for one feature vector.';

------------------------------------------------------------------------------
-- Explanations
------------------------------------------------------------------------------

CREATE FUNCTION cs.explain(model text, features float4[], top_k int DEFAULT 5)
RETURNS TABLE (feature text, value float4, contribution float8)
AS 'MODULE_PATHNAME', 'cs_explain'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 5;
COMMENT ON FUNCTION cs.explain(text, float4[], int) IS
    'The top_k features behind a prediction: exact SHAP contributions in margin space, largest absolute contribution first (ties by name). All contributions plus the bias add up to cs.model_margin.';

CREATE FUNCTION cs.explain_json(model text, features float4[], top_k int DEFAULT 5)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cs_explain_json'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.explain_json(text, float4[], int) IS
    'Like cs.explain, as jsonb: {"factors": [{"feature", "value", "contribution"}...], "bias", "margin", "prediction", "model", "version"}; a missing (NaN) value is null.';

------------------------------------------------------------------------------
-- Training
------------------------------------------------------------------------------

CREATE FUNCTION cs.train_model(name text, kind text, training_query text, params jsonb DEFAULT '{}')
RETURNS int
AS 'MODULE_PATHNAME', 'cs_train_model'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION cs.train_model(text, text, text, jsonb) IS
    'Trains an XGBoost model on the rows of training_query (columns features float4[], label boolean or numeric, optional group_key for a split that keeps whole customers out) with early stopping on a hashed validation split, and registers it as the next version of name (status candidate) with validation AUC, log loss, Brier score, feature importance and params in metrics. Returns the cs.models id.';

-- source: src/sql/35_risk.sql
-- Risk: churn (and downgrade, payment) risk from the champion model of each
-- kind, with exact SHAP explanations; point-in-time training sets.

CREATE FUNCTION cs.present_share(features float4[]) RETURNS float8
    AS 'MODULE_PATHNAME', 'cs_present_share' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.present_share(float4[]) IS 'Share of a feature vector''s values that are present (not NaN); NULL for an empty vector.';

-- Confidence of a prediction in [0,1]: the share of the model's inputs that are
-- present (missing inputs make the prediction lean on defaults) times how far
-- the probability is from the undecided 0.5, mapped to [0.5, 1]:
--   confidence = present_share * (0.5 + |p - 0.5|)
-- A complete vector predicting 0.95 gets 0.95; half-missing at 0.5 gets 0.25.
CREATE FUNCTION cs.risk_confidence(features float4[], probability float8)
RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN cs.present_share(features) * (0.5 + abs(probability - 0.5));
COMMENT ON FUNCTION cs.risk_confidence(float4[], float8) IS
    'Confidence 0-1 of a risk prediction: share of present (non-NaN) inputs times (0.5 + distance of the probability from 0.5).';

-- The champion model name of a risk kind, or NULL when none is deployed.
CREATE FUNCTION cs.champion(kind text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
RETURN (SELECT m.name FROM cs.models m WHERE m.kind = champion.kind AND m.status = 'champion'
         ORDER BY m.created_at DESC LIMIT 1);
COMMENT ON FUNCTION cs.champion(text) IS 'Name of the champion model of a kind (churn, downgrade, payment, upsell), or NULL.';

-- The champion of a kind, or a clear error when there is none.
CREATE FUNCTION cs._require_champion(kind text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m text := cs.champion(kind);
BEGIN
    IF m IS NULL THEN
        RAISE EXCEPTION 'no % model is deployed', kind
            USING ERRCODE = 'undefined_object',
                  HINT = 'Train one with cs.train_model or load one with cs.load_model, then cs.deploy_model(name, version).';
    END IF;
    RETURN m;
END;
$$;

-- Churn probability of a customer now, from its current signals.
CREATE FUNCTION cs.churn_risk(customer_id uuid)
RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
RETURN cs.predict(cs._require_champion('churn'), cs.features(customer_id, now()));
COMMENT ON FUNCTION cs.churn_risk(uuid) IS
    'Churn probability 0-1 of a customer from its signals now, by the champion churn model.';

-- The factors behind a customer's churn risk: exact SHAP contributions (log-odds).
CREATE FUNCTION cs.explain_risk(customer_id uuid, top_k int DEFAULT 5)
RETURNS TABLE (feature text, value float4, contribution float8)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
BEGIN ATOMIC
    SELECT e.feature, e.value, e.contribution
      FROM cs.explain(cs._require_champion('churn'), cs.features(explain_risk.customer_id, now()), explain_risk.top_k) e;
END;
COMMENT ON FUNCTION cs.explain_risk(uuid, int) IS
    'Top contributions (SHAP, in log-odds; positive raises the risk) to a customer''s churn risk now: feature, its value, contribution. With every feature, contributions plus the bias sum to the model margin.';

-- Scores the stored feature vectors of the given customers (all when NULL)
-- with the champion of every risk kind that has one, appending to
-- cs.risk_assessments, with the top SHAP factors for risks of at least
-- explain_min (below it, cs.explain_risk explains on demand).  Returns the
-- number of assessments written.
CREATE FUNCTION cs._score_risk(ids uuid[], explain_min float8 DEFAULT 0.1)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m     record;
    n     bigint := 0;
    added bigint;
BEGIN
    FOR m IN SELECT x.name, x.version, x.kind FROM cs.models x
              WHERE x.status = 'champion' AND x.kind IN ('churn', 'downgrade', 'payment')
              ORDER BY x.kind
    LOOP
        INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, risk_factors, confidence_score,
                                         model_version, created_at)
        SELECT f.customer_id, m.kind, round(e.p::numeric, 2),
               -- exact SHAP costs about 0.3 ms a row: stored where a CSM will look
               CASE WHEN e.p >= explain_min THEN cs.explain_json(m.name, f.features, 5) -> 'factors' END,
               round(cs.risk_confidence(f.features, e.p)::numeric, 2), m.name || ':v' || m.version, f.as_of
          FROM cs.customer_features f
         CROSS JOIN LATERAL (SELECT cs.predict(m.name, f.features) AS p) e
         WHERE ids IS NULL OR f.customer_id = ANY (ids);
        GET DIAGNOSTICS added = ROW_COUNT;
        n := n + added;
    END LOOP;
    RETURN n;
END;
$$;

-- Labelled point-in-time training rows: for each observation date, every
-- customer that was a customer then and had not churned yet, its features as
-- of that date, and label 1 when it churned within the horizon after it.
-- Customers are the group key, so a split by group holds out whole customers.
CREATE FUNCTION cs.build_training_set(observation_dates date[], horizon interval DEFAULT '90 days')
RETURNS TABLE (customer_id uuid, as_of timestamptz, features float4[], label int, group_key text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    d date;
BEGIN
    IF observation_dates IS NULL OR cardinality(observation_dates) = 0 THEN
        RAISE EXCEPTION 'observation_dates must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF horizon IS NULL OR horizon <= '0' THEN
        RAISE EXCEPTION 'horizon must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH d IN ARRAY observation_dates LOOP
        IF d IS NULL THEN
            RAISE EXCEPTION 'observation dates must not be NULL' USING ERRCODE = 'null_value_not_allowed';
        END IF;
        RETURN QUERY
        SELECT f.customer_id, d::timestamptz, f.features,
               (c.churned_at IS NOT NULL AND c.churned_at <= d + horizon)::int,
               f.customer_id::text
          FROM cs.compute_features(
                   ARRAY(SELECT c2.id FROM cs.customers c2
                          WHERE (c2.churned_at IS NULL OR c2.churned_at > d)
                            AND least(c2.contract_start_date, c2.created_at::date) <= d), d::timestamptz) f
          JOIN cs.customers c ON c.id = f.customer_id;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs.build_training_set(date[], interval) IS
    'Point-in-time training rows: for each observation date, customers active then, their features as of that date, label 1 if they churned within the horizon after it; group_key is the customer (hold out whole customers).';
COMMENT ON FUNCTION cs._require_champion(text) IS 'Internal: the champion model name of a kind, or an error saying how to deploy one.';
COMMENT ON FUNCTION cs._score_risk(uuid[], float8) IS 'Internal: appends risk assessments (score, confidence, model version, and the top SHAP factors when the risk is at least explain_min) for the stored feature vectors of the given customers (all when NULL) with every deployed risk champion; returns the number written.';

-- source: src/sql/40_worker.sql
-- Background scoring: batches of dirty customers with poison-customer parking,
-- scheduled jobs and their history, the wake-at-commit triggers and the
-- worker status view.  The workers themselves are C (src/worker.c); all of
-- this also works without them (cs.refresh_batch can be called by hand or
-- from pg_cron).

------------------------------------------------------------------------------
-- Job history
------------------------------------------------------------------------------

CREATE TABLE cs.job_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text NOT NULL CHECK (job IN ('batch', 'full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes')),
    database    text NOT NULL DEFAULT current_database(),
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    customers   bigint,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
    error       text,
    CONSTRAINT job_runs_finished_after_start_check CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX job_runs_job_time_idx ON cs.job_runs (job, started_at DESC);
COMMENT ON TABLE cs.job_runs IS 'One row per run of a scheduled job of the scoring worker, and per batch that failed as a whole.';
COMMENT ON COLUMN cs.job_runs.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.job_runs.job IS 'batch (failed batches only), full_rescore, daily_snapshot, partitions or action_outcomes.';
COMMENT ON COLUMN cs.job_runs.database IS 'Database the run belongs to.';
COMMENT ON COLUMN cs.job_runs.started_at IS 'When the run started.';
COMMENT ON COLUMN cs.job_runs.finished_at IS 'When it finished; NULL while running.';
COMMENT ON COLUMN cs.job_runs.customers IS 'Customers the run refreshed (or partitions it created, for partitions); NULL when not applicable.';
COMMENT ON COLUMN cs.job_runs.status IS 'running, succeeded, failed or skipped (nothing to do, for example a missing function).';
COMMENT ON COLUMN cs.job_runs.error IS 'Error message of a failed run.';

-- Runs left 'running' by a worker that died (crash, kill -9) are failed.
CREATE FUNCTION cs._close_interrupted_runs() RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, cs
BEGIN ATOMIC
    WITH closed AS (
        UPDATE cs.job_runs SET status = 'failed', finished_at = greatest(started_at, clock_timestamp()),
                               error = 'interrupted: the worker stopped during the run'
         WHERE status = 'running' AND database = current_database()
        RETURNING 1)
    SELECT count(*) FROM closed;
END;
COMMENT ON FUNCTION cs._close_interrupted_runs() IS 'Marks job runs left running by a worker that stopped as failed; the worker calls it when it starts.';

------------------------------------------------------------------------------
-- Batches
------------------------------------------------------------------------------

-- The cscopilot.max_attempts setting (3 when the library is not loaded).
CREATE FUNCTION cs._max_attempts() RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(nullif(current_setting('cscopilot.max_attempts', true), '')::int, 3);
COMMENT ON FUNCTION cs._max_attempts() IS 'The cscopilot.max_attempts setting, 3 when it is not defined.';

-- Counts a failed refresh against a customer, parking it after max_attempts;
-- returns whether it is parked now.
CREATE FUNCTION cs._customer_failed(id uuid, error text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    is_parked boolean;
    n         int;
BEGIN
    UPDATE cs.dirty_customers d
       SET attempts = d.attempts + 1, last_error = error, parked = d.attempts + 1 >= cs._max_attempts()
     WHERE d.customer_id = id
    RETURNING d.parked, d.attempts INTO is_parked, n;
    IF is_parked THEN
        RAISE WARNING 'cscopilot: customer % parked after % failed refreshes: %', id, n, error
            USING HINT = 'Fix the cause, then UPDATE cs.dirty_customers SET parked = false, attempts = 0 to retry it.';
    END IF;
    RETURN coalesce(is_parked, false);
END;
$$;
COMMENT ON FUNCTION cs._customer_failed(uuid, text) IS 'Counts a failed refresh against a dirty customer and parks it after cscopilot.max_attempts failures (with a WARNING); returns whether it is parked.';

-- Refreshes up to batch_size dirty customers, oldest mark first, skipping
-- customers another transaction holds.  If the batch fails, its customers are
-- retried one by one, each in a subtransaction: the good ones are stored,
-- the failing ones get an attempt counted (and are parked after
-- cscopilot.max_attempts).  Cancellation (the batch time limit) is not caught.
CREATE FUNCTION cs.refresh_batch(batch_size int) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    ids  uuid[];
    ts   timestamptz[];
    n    bigint := 0;
    i    int;
    err  text;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(customer_id ORDER BY marked_at, customer_id), array_agg(marked_at ORDER BY marked_at, customer_id)
      INTO ids, ts
      FROM (SELECT d.customer_id, d.marked_at FROM cs.dirty_customers d
             WHERE NOT d.parked
             ORDER BY d.marked_at, d.customer_id
             LIMIT batch_size
               FOR UPDATE SKIP LOCKED) picked;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;

    BEGIN
        n := cs._refresh_customers(ids);
        -- The rows are locked, so the marks are unchanged; the rule stays the
        -- same as cs.refresh(): remove a mark only if it is the one read.
        DELETE FROM cs.dirty_customers d
         USING unnest(ids, ts) AS m(id, ts)
         WHERE d.customer_id = m.id AND d.marked_at = m.ts;
        RETURN n;
    EXCEPTION WHEN OTHERS THEN
        IF cardinality(ids) = 1 THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            PERFORM cs._customer_failed(ids[1], err);
            RETURN 0;
        END IF;
    END;

    -- One by one: find the poison customers, keep the work of the others.
    FOR i IN 1 .. cardinality(ids) LOOP
        BEGIN
            n := n + cs._refresh_customers(ARRAY[ids[i]]);
            DELETE FROM cs.dirty_customers d WHERE d.customer_id = ids[i] AND d.marked_at = ts[i];
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            PERFORM cs._customer_failed(ids[i], err);
        END;
    END LOOP;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.refresh_batch(int) IS
    'Refreshes up to batch_size non-parked dirty customers (oldest mark first, FOR UPDATE SKIP LOCKED) and removes their marks; customers that fail are retried one by one, counted in attempts and parked after cscopilot.max_attempts failures. Returns the number of customers refreshed.';

-- Records a batch or job that failed as a whole.  For a failed job run the
-- run is closed; for a failed batch a row is added.  customers > 0 blames that
-- many of the oldest dirty customers (the worker does so once its batch size
-- is down to one, so that a customer that always exceeds the time limit is
-- parked instead of blocking the queue).
CREATE FUNCTION cs._record_failure(job text, error text, customers int, run_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    victim uuid;
BEGIN
    IF coalesce(run_id, 0) <> 0 THEN
        UPDATE cs.job_runs r SET status = 'failed', finished_at = greatest(r.started_at, clock_timestamp()),
                                 error = _record_failure.error
         WHERE r.id = run_id;
    ELSE
        INSERT INTO cs.job_runs (job, started_at, finished_at, status, error)
        VALUES (_record_failure.job, now(), greatest(now(), clock_timestamp()), 'failed', _record_failure.error);
    END IF;
    FOR victim IN SELECT d.customer_id FROM cs.dirty_customers d WHERE NOT d.parked
                   ORDER BY d.marked_at, d.customer_id LIMIT greatest(customers, 0)
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
CREATE FUNCTION cs._job_due(job text, full_rescore_interval int) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    today timestamptz := date_trunc('day', now());
    retry interval := interval '10 minutes';
    kinds text[] := ARRAY[job];
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
    'Whether a scheduled job is due: full_rescore every full_rescore_interval seconds (0 = never), the others once per day; failed runs are retried after 10 minutes.';

-- Picks the first due job and records its run as running (its own
-- transaction, so the run is visible while it works); no row when none is due.
CREATE FUNCTION cs._start_due_job(full_rescore_interval int) RETURNS TABLE (id bigint, job text)
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
    FOREACH j IN ARRAY ARRAY['full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes'] LOOP
        IF cs._job_due(j, full_rescore_interval) THEN
            RETURN QUERY INSERT INTO cs.job_runs AS r (job) VALUES (j) RETURNING r.id, r.job;
            RETURN;
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs._start_due_job(int) IS 'Records the first due scheduled job as running and returns its run; nothing when no job is due.';

-- Runs a started job and closes its run (same transaction as the work).
CREATE FUNCTION cs._run_job(run_id bigint) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    j      text;
    n      bigint;
    st     text := 'succeeded';
    res    text;
BEGIN
    SELECT r.job INTO j FROM cs.job_runs r WHERE r.id = run_id AND r.status = 'running' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job run % is not running', run_id USING ERRCODE = 'no_data_found';
    END IF;
    CASE j
    WHEN 'full_rescore', 'daily_snapshot' THEN
        n := cs.refresh_all();
    WHEN 'partitions' THEN
        n := cs.ensure_usage_partitions(current_date, current_date + 90);
    WHEN 'action_outcomes' THEN
        -- Defined by a later part of the extension; skipped until it exists.
        IF to_regprocedure('cs.measure_action_outcomes()') IS NULL THEN
            st := 'skipped';
        ELSE
            EXECUTE 'SELECT cs.measure_action_outcomes()::text' INTO res;
            IF res ~ '^[0-9]+$' THEN
                n := res::bigint;
            END IF;
        END IF;
    ELSE
        RAISE EXCEPTION 'unknown job %', j USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    UPDATE cs.job_runs r SET status = st, customers = n, finished_at = greatest(r.started_at, clock_timestamp())
     WHERE r.id = run_id;
    RETURN st;
END;
$$;
COMMENT ON FUNCTION cs._run_job(bigint) IS
    'Runs a scheduled job recorded by cs._start_due_job (full_rescore and daily_snapshot: cs.refresh_all(); partitions: 90 days ahead; action_outcomes: cs.measure_action_outcomes() when it exists) and closes its run.';

------------------------------------------------------------------------------
-- Waking the worker
------------------------------------------------------------------------------

CREATE FUNCTION cs._wake_worker_at_commit() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'cs_wake_worker_at_commit';
COMMENT ON FUNCTION cs._wake_worker_at_commit() IS
    'Statement trigger: wakes the scoring worker of this database when the transaction commits (nothing without preloaded workers).';

CREATE FUNCTION cs.wake_worker() RETURNS boolean
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cs_wake_worker';
COMMENT ON FUNCTION cs.wake_worker() IS
    'Wakes the scoring worker of this database now; false (with a notice) when no worker serves it. Requires cscopilot in shared_preload_libraries.';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'usage_events', 'support_tickets', 'invoices', 'engagements',
                             'nps_responses', 'contacts', 'subscriptions']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON cs.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION cs._wake_worker_at_commit()', t || '_wake_worker', t);
        EXECUTE format('COMMENT ON TRIGGER %I ON cs.%I IS %L', t || '_wake_worker', t,
                       'Wakes the scoring worker of this database when the transaction commits, so the new data is scored at once.');
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- Status
------------------------------------------------------------------------------

CREATE FUNCTION cs._workers_available() RETURNS boolean
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cs_workers_available';
COMMENT ON FUNCTION cs._workers_available() IS 'Whether cscopilot was loaded through shared_preload_libraries, so that workers can run.';

CREATE FUNCTION cs._worker_slots(
    OUT database text, OUT pid int, OUT state text, OUT naptime_ms int, OUT batch_size int,
    OUT started_at timestamptz, OUT last_wake_at timestamptz, OUT last_batch_at timestamptz,
    OUT last_batch_customers bigint, OUT last_batch_status text, OUT batches bigint, OUT customers_scored bigint)
RETURNS SETOF record
LANGUAGE C VOLATILE STRICT AS 'MODULE_PATHNAME', 'cs_worker_slots';
COMMENT ON FUNCTION cs._worker_slots() IS 'The scoring workers as shared memory knows them: one row per database in cscopilot.databases.';

CREATE VIEW cs.worker_status WITH (security_invoker = true) AS
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
           clock_timestamp() - min(d.marked_at) FILTER (WHERE NOT d.parked) AS lag
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
       (SELECT l.error FROM last_runs l WHERE l.status = 'failed' AND here ORDER BY l.started_at DESC LIMIT 1) AS last_error
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
COMMENT ON COLUMN cs.worker_status.lag IS 'Age of the oldest dirty mark: how stale the oldest waiting score is.';
COMMENT ON COLUMN cs.worker_status.last_full_rescore_at IS 'Start of the last full rescore.';
COMMENT ON COLUMN cs.worker_status.last_full_rescore_status IS 'Status of the last full rescore.';
COMMENT ON COLUMN cs.worker_status.last_daily_snapshot_at IS 'Start of the last separate daily snapshot (only when no full rescore ran that day).';
COMMENT ON COLUMN cs.worker_status.last_daily_snapshot_status IS 'Status of the last daily snapshot.';
COMMENT ON COLUMN cs.worker_status.last_partitions_at IS 'Start of the last creation of future usage_events partitions.';
COMMENT ON COLUMN cs.worker_status.last_partitions_status IS 'Status of the last partition creation.';
COMMENT ON COLUMN cs.worker_status.last_action_outcomes_at IS 'Start of the last measurement of action outcomes.';
COMMENT ON COLUMN cs.worker_status.last_action_outcomes_status IS 'Status of the last measurement of action outcomes (skipped while cs.measure_action_outcomes does not exist).';
COMMENT ON COLUMN cs.worker_status.last_error IS 'Error of the most recent failed run of any job or batch.';

-- source: src/sql/50_opportunities.sql
-- Opportunities: upsell propensity, cross-sell by co-occurrence lift, expected
-- MRR uplift and product adoption, regenerated for a set of customers by
-- cs.refresh_opportunities() (called at the end of cs._refresh_customers).

-- The feature vector as a JSON object keyed by feature name; NaN (missing) becomes null.
CREATE FUNCTION cs.feature_map(features float4[]) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
RETURN (SELECT coalesce(jsonb_object_agg(fc.name, CASE WHEN features[fc.position] IS NULL
                                                         OR features[fc.position] = 'NaN' THEN NULL
                                                    ELSE to_jsonb(features[fc.position]) END), '{}')
          FROM cs.feature_catalog fc);
COMMENT ON FUNCTION cs.feature_map(float4[]) IS
    'The feature vector as a JSON object keyed by cs.feature_catalog name; missing (NaN) values are JSON null.';

-- Upsell scoring constants are documented in the function comment; they are
-- plain numbers here rather than settings because the formula is the contract.
CREATE FUNCTION cs.refresh_opportunities(ids uuid[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    n         bigint;
    use_model boolean;
    mname     text;
BEGIN
    -- Open system opportunities are regenerated; anything a CSM touched stays.
    DELETE FROM cs.opportunities o
     WHERE o.source = 'system' AND o.status = 'open'
       AND (ids IS NULL OR o.customer_id = ANY (ids));

    -- The model path: a champion model of kind upsell scored by cs.predict,
    -- when the model part is installed.  Otherwise the documented formula.
    use_model := to_regprocedure('cs.predict(text, real[])') IS NOT NULL;
    IF use_model THEN
        SELECT m.name INTO mname FROM cs.models m WHERE m.kind = 'upsell' AND m.status = 'champion';
        use_model := FOUND;
    END IF;

    -- Dynamic only to call cs.predict when it exists; no user text is interpolated.
    EXECUTE format($q$
    WITH base AS (
        SELECT c.id AS customer_id, c.mrr, c.seats_licensed AS seats, cs.feature_map(cf.features) AS f,
               (SELECT h.overall_score FROM cs.customer_health_scores h WHERE h.customer_id = c.id
                 ORDER BY h.calculated_at DESC LIMIT 1) AS health,
               %s AS model_score
          FROM cs.customers c
          JOIN cs.customer_features cf ON cf.customer_id = c.id
         WHERE c.churned_at IS NULL AND ($1 IS NULL OR c.id = ANY ($1))
    ), b AS (
        SELECT customer_id, mrr, seats, health, model_score,
               (f ->> 'seat_utilisation')::float8 AS util,
               (f ->> 'active_users_30d')::float8 AS au,
               (f ->> 'usage_trend_30d')::float8 AS trend,
               (f ->> 'feature_breadth_30d')::float8 AS breadth
          FROM base
    ), ups AS (
        SELECT b.*,
               least(1, greatest(0, (util - 0.7) / 0.5)) AS s_util,
               least(1, greatest(0, coalesce(trend, 0) / 0.5)) AS s_growth,
               coalesce(health, 0.5) AS s_health,
               greatest(ceil(1.2 * au) - seats, 0) AS extra_seats
          FROM b WHERE util IS NOT NULL AND seats > 0
    ), ups2 AS (
        SELECT u.*,
               round(coalesce(model_score, 0.5 * s_util + 0.25 * s_growth + 0.25 * s_health)::numeric, 3) AS score
          FROM ups u
    ), upsell AS (
        SELECT customer_id, 'upsell'::text AS kind, score,
               round(extra_seats::numeric * coalesce(mrr, 0) / seats * score, 2) AS expected_mrr,
               NULL::text AS product,
               jsonb_build_object('seat_utilisation', round(util::numeric, 3),
                                  'usage_trend_30d', round(trend::numeric, 3),
                                  'health', health,
                                  'extra_seats', extra_seats,
                                  'price_per_seat', round(coalesce(mrr, 0) / seats, 2),
                                  'scored_by', CASE WHEN model_score IS NOT NULL THEN 'model ' || $2 ELSE 'formula' END) AS reasons
          FROM ups2 WHERE score >= 0.5 AND extra_seats > 0
    ), active AS (
        SELECT DISTINCT s.customer_id, s.product
          FROM cs.subscriptions s
          JOIN cs.customers c ON c.id = s.customer_id AND c.churned_at IS NULL
         WHERE s.started_at <= current_date AND (s.ended_at IS NULL OR s.ended_at > current_date)
    ), pmrr AS (
        -- mean MRR of each product's active subscriptions, once (not per candidate)
        SELECT s.product, avg(s.mrr) AS mrr
          FROM cs.subscriptions s
         WHERE s.started_at <= current_date AND (s.ended_at IS NULL OR s.ended_at > current_date)
         GROUP BY s.product
    ), tot AS (
        SELECT count(DISTINCT customer_id)::float8 AS n FROM active
    ), prod AS (
        SELECT product, count(*)::float8 AS n_p FROM active GROUP BY product
    ), pair AS (
        -- lift(B|A) = P(B|A) / P(B) over customers with active subscriptions
        SELECT a.product AS pa, bb.product AS pb, count(*)::float8 AS n_ab,
               count(*) / pa.n_p AS confidence,
               (count(*) / pa.n_p) / (pb_.n_p / tot.n) AS lift, pb_.n_p AS n_b
          FROM active a
          JOIN active bb ON bb.customer_id = a.customer_id AND bb.product <> a.product
          JOIN prod pa ON pa.product = a.product
          JOIN prod pb_ ON pb_.product = bb.product
         CROSS JOIN tot
         GROUP BY a.product, bb.product, pa.n_p, pb_.n_p, tot.n
        HAVING count(*) >= 2 AND count(*) / pa.n_p >= 0.25
    ), cand AS (
        SELECT DISTINCT ON (b.customer_id)
               b.customer_id, p.pa, p.pb, p.lift, p.confidence, p.n_ab, p.n_b
          FROM b
          JOIN active own ON own.customer_id = b.customer_id
          JOIN pair p ON p.pa = own.product AND p.lift > 1
         WHERE NOT EXISTS (SELECT 1 FROM active x WHERE x.customer_id = b.customer_id AND x.product = p.pb)
         ORDER BY b.customer_id, p.lift DESC, p.confidence DESC, p.pb, p.pa
    ), cross_sell AS (
        SELECT c.customer_id, 'cross_sell'::text, round(c.confidence::numeric, 3),
               round(coalesce(pm.mrr, 0) * round(c.confidence::numeric, 3), 2),
               c.pb,
               jsonb_build_object('because_of', c.pa, 'lift', round(c.lift::numeric, 3),
                                  'confidence', round(c.confidence::numeric, 3),
                                  'customers_with_both', c.n_ab, 'customers_with_product', c.n_b)
          FROM cand c
          LEFT JOIN pmrr pm ON pm.product = c.pb
    ), cat AS (
        -- the catalogue: the most product features any customer used in 30 days
        SELECT max(features[fc.position]) FILTER (WHERE features[fc.position] <> 'NaN') AS n
          FROM cs.customer_features, cs.feature_catalog fc WHERE fc.name = 'feature_breadth_30d'
    ), adoption AS (
        SELECT b.customer_id, 'adoption'::text, round((1 - b.breadth / cat.n)::numeric, 3), NULL::numeric, NULL::text,
               jsonb_build_object('feature_breadth_30d', b.breadth, 'catalogue', cat.n,
                                  'adoption_score', round((b.breadth / cat.n)::numeric, 3))
          FROM b CROSS JOIN cat
         WHERE cat.n >= 3 AND b.breadth IS NOT NULL AND b.breadth / cat.n < 0.5
    ), alls AS (
        SELECT * FROM upsell UNION ALL SELECT * FROM cross_sell UNION ALL SELECT * FROM adoption
    )
    INSERT INTO cs.opportunities (customer_id, kind, score, expected_mrr, product, reasons, status, source)
    SELECT a.customer_id, a.kind, a.score, a.expected_mrr, a.product, a.reasons, 'open', 'system'
      FROM alls a
     WHERE NOT EXISTS (SELECT 1 FROM cs.opportunities o
                        WHERE o.customer_id = a.customer_id AND o.kind = a.kind
                          AND o.product IS NOT DISTINCT FROM a.product AND o.status = 'in_progress')
    $q$, CASE WHEN use_model THEN 'cs.predict($2, cf.features)::float8' ELSE 'NULL::float8' END)
    USING ids, mname;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.refresh_opportunities(uuid[]) IS
    'Regenerates the open system opportunities of the given customers (all when NULL) from the feature store; opportunities a CSM moved on, or entered, are kept. '
    'upsell: score = 0.5 x clamp((seat_utilisation - 0.7) / 0.5) + 0.25 x clamp(usage_trend_30d / 0.5) + 0.25 x health (0.5 when unknown), '
    'or the champion upsell model through cs.predict when one is deployed; raised when score >= 0.5 and extra seats > 0, where '
    'extra seats = ceil(1.2 x active_users_30d) - seats_licensed and expected_mrr = extra seats x (mrr / seats_licensed) x score. '
    'cross_sell: the product the customer lacks with the best lift(B|A) = P(B|A) / P(B) over active subscriptions, A a product it has, '
    'with at least 2 customers having both and P(B|A) >= 0.25; score = P(B|A), expected_mrr = mean MRR of B x score. '
    'adoption: feature_breadth_30d over the catalogue (the largest breadth in the feature store, at least 3) below 0.5; score = 1 - adoption. '
    'Returns the number of opportunities written.';

-- source: src/sql/60_alerts.sql
-- Alerts: message templates, structured rule conditions (validated, never SQL
-- text), severity grading, evaluation with deduplication on the partial unique
-- index, escalation, auto-resolution, cooldown, NOTIFY, and the lifecycle.
--
-- Condition grammar (jsonb), evaluated with SQL three-valued logic:
--   {"all": [c, ...]}  {"any": [c, ...]}  {"not": c}
--   {"feature": <cs.feature_catalog name>, "op": <op>, "value": <number>}
--   {"score": <score name>, "op": <op>, "value": <number>}
--   {"band": "red" | ["red", "yellow", ...]}
-- ops: < <= > >= = !=.  A comparison over a missing value (NaN feature, no
-- churn risk yet, no health band) is unknown: the rule does not fire, and an
-- open alert is not auto-resolved either (only a condition known to be false
-- clears it).

------------------------------------------------------------------------------
-- Templates
------------------------------------------------------------------------------

-- The placeholders templates may use, each filled by cs.template_values().
CREATE FUNCTION cs.template_placeholders() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['name', 'external_id', 'csm', 'segment', 'mrr', 'overall_score', 'band', 'churn_risk',
             'top_driver', 'top_risk_factor', 'days_to_renewal', 'renewal_date', 'seat_utilisation',
             'seats_licensed', 'last_nps'];
COMMENT ON FUNCTION cs.template_placeholders() IS 'The {placeholders} message templates may use.';

-- Raises an error naming the first unknown placeholder of a template.
CREATE FUNCTION cs.check_template(template text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    p text;
BEGIN
    FOR p IN SELECT m[1] FROM regexp_matches(coalesce(template, ''), '\{([^{}]*)\}', 'g') m LOOP
        IF NOT p = ANY (cs.template_placeholders()) THEN
            RAISE EXCEPTION 'unknown placeholder {%} in template', p
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Placeholders are ' || array_to_string(ARRAY(SELECT '{' || x || '}' FROM unnest(cs.template_placeholders()) x), ', ') || '.';
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs.check_template(text) IS 'Refuses a template with an unknown {placeholder} (invalid_parameter_value).';

-- The placeholder values of one customer, as text (NULL when unknown).
CREATE FUNCTION cs.template_values(customer_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN (SELECT jsonb_build_object(
             'name', c.name, 'external_id', c.external_id, 'csm', c.csm, 'segment', c.segment,
             'mrr', c.mrr::text,
             'overall_score', h.overall_score::text,
             'band', h.band,
             'churn_risk', r.risk_score::text,
             'top_driver', h.drivers -> 'top' -> 0 ->> 'measure',
             'top_risk_factor', r.risk_factors -> 0 ->> 'feature',
             'days_to_renewal', round((f.m ->> 'days_to_renewal')::numeric)::text,
             'renewal_date', to_char(c.contract_end_date, 'YYYY-MM-DD'),
             'seat_utilisation', round((f.m ->> 'seat_utilisation')::numeric * 100)::text || '%',
             'seats_licensed', c.seats_licensed::text,
             'last_nps', round((f.m ->> 'last_nps')::numeric)::text)
      FROM cs.customers c
      LEFT JOIN LATERAL (SELECT cs.feature_map(cf.features) AS m FROM cs.customer_features cf
                          WHERE cf.customer_id = c.id) f ON true
      LEFT JOIN LATERAL (SELECT s.overall_score, s.band, s.drivers FROM cs.customer_health_scores s
                          WHERE s.customer_id = c.id ORDER BY s.calculated_at DESC LIMIT 1) h ON true
      LEFT JOIN LATERAL (SELECT a.risk_score, a.risk_factors FROM cs.risk_assessments a
                          WHERE a.customer_id = c.id AND a.risk_type = 'churn'
                          ORDER BY a.created_at DESC LIMIT 1) r ON true
     WHERE c.id = template_values.customer_id);
END;
$$;
COMMENT ON FUNCTION cs.template_values(uuid) IS
    'Placeholder values of a customer: its fields, latest health and churn risk, and features (days_to_renewal, seat_utilisation as a percentage, last_nps) from the feature store.';

-- Fills a checked template from a values object; unknown values become n/a.
CREATE FUNCTION cs.fill_template(template text, vals jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    p   text;
    out text := template;
BEGIN
    PERFORM cs.check_template(template);
    FOREACH p IN ARRAY cs.template_placeholders() LOOP
        out := replace(out, '{' || p || '}', coalesce(vals ->> p, 'n/a'));
    END LOOP;
    RETURN out;
END;
$$;
COMMENT ON FUNCTION cs.fill_template(text, jsonb) IS 'Replaces each {placeholder} of a template by its value in vals (n/a when missing); unknown placeholders are an error.';

CREATE FUNCTION cs.render_template(template text, customer_id uuid) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    vals jsonb;
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    vals := cs.template_values(customer_id);
    IF vals IS NULL THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN cs.fill_template(template, vals);
END;
$$;
COMMENT ON FUNCTION cs.render_template(text, uuid) IS
    'A message template with its {placeholders} filled from the customer''s fields, latest scores and features; unknown placeholders are an error, unknown values read n/a.';

------------------------------------------------------------------------------
-- Conditions
------------------------------------------------------------------------------

CREATE FUNCTION cs.condition_scores() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['churn_risk', 'overall_score', 'usage_score', 'engagement_score', 'support_score', 'payment_score',
             'opportunity_score', 'opportunity_mrr'];
COMMENT ON FUNCTION cs.condition_scores() IS
    'Score names a condition may test: latest churn risk, latest health and sub-scores, best open opportunity score, total expected MRR of open opportunities.';

-- Refuses a malformed condition with the JSON path of the offending node.
CREATE FUNCTION cs.validate_condition(cond jsonb, path text DEFAULT '$', depth int DEFAULT 0)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    keys text[];
    k    text;
    i    int;
BEGIN
    IF depth > 16 THEN
        RAISE EXCEPTION 'condition is nested too deeply at %', path
            USING ERRCODE = 'program_limit_exceeded', HINT = 'At most 16 levels of all, any and not.';
    END IF;
    IF jsonb_typeof(cond) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'condition at % must be a JSON object', path
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use {"all": [...]}, {"any": [...]}, {"not": {...}}, {"feature": f, "op": o, "value": n}, {"score": s, "op": o, "value": n} or {"band": b}.';
    END IF;
    keys := ARRAY(SELECT jsonb_object_keys(cond) ORDER BY 1);
    IF keys = ARRAY['all'] OR keys = ARRAY['any'] THEN
        k := keys[1];
        IF jsonb_typeof(cond -> k) IS DISTINCT FROM 'array' OR jsonb_array_length(cond -> k) = 0 THEN
            RAISE EXCEPTION 'condition at %.% must be a non-empty array', path, k USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_array_length(cond -> k) > 100 THEN
            RAISE EXCEPTION 'condition at %.% has more than 100 terms', path, k USING ERRCODE = 'program_limit_exceeded';
        END IF;
        FOR i IN 0 .. jsonb_array_length(cond -> k) - 1 LOOP
            PERFORM cs.validate_condition(cond -> k -> i, format('%s.%s[%s]', path, k, i), depth + 1);
        END LOOP;
    ELSIF keys = ARRAY['not'] THEN
        PERFORM cs.validate_condition(cond -> 'not', path || '.not', depth + 1);
    ELSIF keys = ARRAY['feature', 'op', 'value'] OR keys = ARRAY['op', 'score', 'value'] THEN
        IF cond ? 'feature' THEN
            IF jsonb_typeof(cond -> 'feature') IS DISTINCT FROM 'string'
               OR NOT EXISTS (SELECT 1 FROM cs.feature_catalog WHERE name = cond ->> 'feature') THEN
                RAISE EXCEPTION 'condition at %: unknown feature %', path, cond -> 'feature'
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'Features are the names in cs.feature_catalog.';
            END IF;
        ELSIF jsonb_typeof(cond -> 'score') IS DISTINCT FROM 'string' OR NOT (cond ->> 'score') = ANY (cs.condition_scores()) THEN
            RAISE EXCEPTION 'condition at %: unknown score %', path, cond -> 'score'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Scores are ' || array_to_string(cs.condition_scores(), ', ') || '.';
        END IF;
        IF jsonb_typeof(cond -> 'op') IS DISTINCT FROM 'string' OR NOT (cond ->> 'op') = ANY (ARRAY['<', '<=', '>', '>=', '=', '!=']) THEN
            RAISE EXCEPTION 'condition at %: unknown operator %', path, cond -> 'op'
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Operators are <, <=, >, >=, = and !=.';
        END IF;
        IF jsonb_typeof(cond -> 'value') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'condition at %: value must be a number, not %', path, cond -> 'value'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSIF keys = ARRAY['band'] THEN
        IF NOT (CASE jsonb_typeof(cond -> 'band')
                    WHEN 'string' THEN cond ->> 'band' IN ('red', 'yellow', 'green')
                    WHEN 'array' THEN jsonb_array_length(cond -> 'band') > 0
                                      AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(cond -> 'band') b
                                                       WHERE jsonb_typeof(b) <> 'string'
                                                          OR b #>> '{}' NOT IN ('red', 'yellow', 'green'))
                    ELSE false END) THEN
            RAISE EXCEPTION 'condition at %: band must be red, yellow or green, or an array of them', path
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        RAISE EXCEPTION 'condition at % has unexpected keys %', path, array_to_string(keys, ', ')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A node is {"all": [...]}, {"any": [...]}, {"not": {...}}, {"feature": f, "op": o, "value": n}, {"score": s, "op": o, "value": n} or {"band": b}.';
    END IF;
END;
$$;
COMMENT ON FUNCTION cs.validate_condition(jsonb, text, int) IS
    'Raises invalid_parameter_value, naming the JSON path, unless cond is a well-formed alert condition over known features, scores and bands.';

-- Evaluates a validated condition against a context
-- {"features": {...}, "scores": {...}, "band": text}; NULL means unknown.
CREATE FUNCTION cs.condition_holds(cond jsonb, ctx jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c      jsonb;
    r      boolean;
    result boolean;
    v      float8;
    x      float8;
BEGIN
    IF cond ? 'all' OR cond ? 'any' THEN
        result := cond ? 'all';
        FOR c IN SELECT jsonb_array_elements(coalesce(cond -> 'all', cond -> 'any')) LOOP
            r := cs.condition_holds(c, ctx);
            IF r IS NULL THEN
                result := NULL;
            ELSIF r <> (cond ? 'all') THEN
                RETURN r;     -- false decides all, true decides any
            END IF;
        END LOOP;
        RETURN result;
    ELSIF cond ? 'not' THEN
        RETURN NOT cs.condition_holds(cond -> 'not', ctx);
    ELSIF cond ? 'band' THEN
        IF ctx ->> 'band' IS NULL THEN
            RETURN NULL;
        END IF;
        RETURN CASE jsonb_typeof(cond -> 'band') WHEN 'string' THEN cond ->> 'band' = ctx ->> 'band'
                    ELSE (cond -> 'band') ? (ctx ->> 'band') END;
    END IF;
    v := CASE WHEN cond ? 'feature' THEN (ctx -> 'features' ->> (cond ->> 'feature'))::float8
              ELSE (ctx -> 'scores' ->> (cond ->> 'score'))::float8 END;
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    x := (cond ->> 'value')::float8;
    RETURN CASE cond ->> 'op' WHEN '<' THEN v < x WHEN '<=' THEN v <= x WHEN '>' THEN v > x
                              WHEN '>=' THEN v >= x WHEN '=' THEN v = x WHEN '!=' THEN v <> x END;
END;
$$;
COMMENT ON FUNCTION cs.condition_holds(jsonb, jsonb) IS
    'Evaluates a validated alert condition against {"features": {...}, "scores": {...}, "band": b}: true, false, or NULL when it depends on a missing value.';

CREATE FUNCTION cs.severity_rank(severity text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_position(ARRAY['low', 'medium', 'high', 'critical'], severity);
COMMENT ON FUNCTION cs.severity_rank(text) IS 'Order of a severity: low 1, medium 2, high 3, critical 4.';

-- Validates a rule on write: condition, title template, severity metric and thresholds.
CREATE FUNCTION cs._validate_alert_rule() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m      jsonb := NEW.severity_metric;
    levels text[];
    vals   float8[];
    i      int;
BEGIN
    PERFORM cs.validate_condition(NEW.condition);
    PERFORM cs.check_template(NEW.title);
    IF jsonb_typeof(NEW.severity_thresholds) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'alert rule "%": severity_thresholds must be a JSON object', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(NEW.severity_thresholds) t
                WHERE t.key NOT IN ('low', 'medium', 'high', 'critical') OR jsonb_typeof(t.value) <> 'number') THEN
        RAISE EXCEPTION 'alert rule "%": severity_thresholds takes numbers for low, medium, high and critical', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF m IS NULL THEN
        IF NEW.severity_thresholds <> '{}' THEN
            RAISE EXCEPTION 'alert rule "%": severity thresholds need a severity_metric', NEW.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        IF jsonb_typeof(m) IS DISTINCT FROM 'object'
           OR NOT (ARRAY(SELECT jsonb_object_keys(m) ORDER BY 1) IN (ARRAY['direction', 'feature'], ARRAY['direction', 'score']))
           OR coalesce(m ->> 'direction', '') NOT IN ('higher', 'lower') THEN
            RAISE EXCEPTION 'alert rule "%": severity_metric must be {"feature" or "score": name, "direction": "higher" or "lower"}', NEW.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM cs.validate_condition(m - 'direction' || '{"op": ">=", "value": 0}', '$severity_metric');
        SELECT array_agg(l ORDER BY cs.severity_rank(l)), array_agg((NEW.severity_thresholds ->> l)::float8 ORDER BY cs.severity_rank(l))
          INTO levels, vals
          FROM jsonb_object_keys(NEW.severity_thresholds) l;
        IF levels IS NULL THEN
            RAISE EXCEPTION 'alert rule "%": a severity_metric needs at least one threshold', NEW.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR i IN 2 .. cardinality(vals) LOOP
            IF (m ->> 'direction' = 'higher' AND vals[i] <= vals[i - 1])
               OR (m ->> 'direction' = 'lower' AND vals[i] >= vals[i - 1]) THEN
                RAISE EXCEPTION 'alert rule "%": % threshold % is not % than the % threshold %', NEW.name, levels[i], vals[i],
                                m ->> 'direction', levels[i - 1], vals[i - 1]
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Thresholds must move strictly in the metric''s direction from low to critical.';
            END IF;
        END LOOP;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER alert_rules_validate BEFORE INSERT OR UPDATE ON cs.alert_rules
    FOR EACH ROW EXECUTE FUNCTION cs._validate_alert_rule();

-- The severity of a firing rule: the most severe level whose threshold the
-- metric meets, never below the rule's base severity.
CREATE FUNCTION cs.alert_severity(metric jsonb, thresholds jsonb, base text, ctx jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT l FROM (
          SELECT base AS l
          UNION ALL
          SELECT t.key FROM jsonb_each_text(thresholds) t,
                 LATERAL (SELECT CASE WHEN metric ? 'feature' THEN (ctx -> 'features' ->> (metric ->> 'feature'))::float8
                                      ELSE (ctx -> 'scores' ->> (metric ->> 'score'))::float8 END AS v) mv
           WHERE metric IS NOT NULL
             AND CASE metric ->> 'direction' WHEN 'higher' THEN mv.v >= t.value::float8
                                             ELSE mv.v <= t.value::float8 END) s
        ORDER BY cs.severity_rank(l) DESC LIMIT 1);
COMMENT ON FUNCTION cs.alert_severity(jsonb, jsonb, text, jsonb) IS
    'Severity of a firing rule in a context: the most severe level whose threshold the metric meets (>= for direction higher, <= for lower), at least the base severity.';

------------------------------------------------------------------------------
-- Default rules
------------------------------------------------------------------------------

INSERT INTO cs.alert_rules (name, alert_type, condition, severity_metric, severity_thresholds, base_severity, title, cooldown, description) VALUES
('churn_risk_high', 'risk',
 '{"score": "churn_risk", "op": ">=", "value": 0.6}',
 '{"score": "churn_risk", "direction": "higher"}', '{"high": 0.75, "critical": 0.9}', 'medium',
 'Churn risk {churn_risk} at {name}', '7 days',
 'The churn model gives the customer a churn risk of 0.6 or more.'),
('usage_drop', 'risk',
 '{"any": [{"feature": "usage_trend_14d", "op": "<=", "value": -0.5}, {"feature": "usage_trend_30d", "op": "<=", "value": -0.5}]}',
 '{"feature": "usage_trend_30d", "direction": "lower"}', '{"high": -0.7, "critical": -0.9}', 'medium',
 'Usage dropped by half or more at {name}', '7 days',
 'Usage of the last 14 or 30 days is at most half of the period before.'),
('payment_problem', 'risk',
 '{"any": [{"feature": "days_overdue", "op": ">=", "value": 1}, {"feature": "late_or_failed_invoices_90d", "op": ">=", "value": 1}]}',
 '{"feature": "days_overdue", "direction": "higher"}', '{"medium": 15, "high": 30, "critical": 60}', 'low',
 'Payment overdue or failed at {name}', '7 days',
 'An invoice is past due, or one due in the last 90 days failed or was paid late.'),
('renewal_red_health', 'risk',
 '{"all": [{"feature": "days_to_renewal", "op": ">=", "value": 0}, {"feature": "days_to_renewal", "op": "<=", "value": 90}, {"band": "red"}]}',
 '{"feature": "days_to_renewal", "direction": "lower"}', '{"critical": 30}', 'high',
 'Renewal in {days_to_renewal} days with red health at {name}', '14 days',
 'The contract ends within 90 days and the health band is red.'),
('champion_left', 'risk',
 '{"feature": "champion_left_90d", "op": ">=", "value": 1}',
 NULL, '{}', 'high',
 'Champion left {name}', '30 days',
 'A champion contact left the customer in the last 90 days.'),
('support_escalation', 'risk',
 '{"any": [{"feature": "tickets_30d", "op": ">=", "value": 5}, {"feature": "open_high_priority_tickets", "op": ">=", "value": 2}, {"feature": "mean_csat_90d", "op": "<=", "value": 2.5}]}',
 '{"feature": "open_high_priority_tickets", "direction": "higher"}', '{"high": 3, "critical": 5}', 'medium',
 'Support escalation at {name}', '7 days',
 'A spike of tickets (5 or more in 30 days), 2 or more open high or urgent tickets, or a mean CSAT of 2.5 or less over 90 days.'),
('nps_detractor', 'risk',
 '{"feature": "last_nps", "op": "<=", "value": 6}',
 '{"feature": "last_nps", "direction": "lower"}', '{"medium": 4, "high": 2}', 'low',
 'NPS detractor at {name} (last score {last_nps})', '30 days',
 'The latest NPS answer is 6 or less.'),
('seat_upsell', 'opportunity',
 '{"feature": "seat_utilisation", "op": ">=", "value": 0.9}',
 '{"feature": "seat_utilisation", "direction": "higher"}', '{"medium": 1.0, "high": 1.2}', 'low',
 'Seat utilisation {seat_utilisation} at {name}: upsell', '30 days',
 'Active users fill 90% or more of the licensed seats.');

------------------------------------------------------------------------------
-- Evaluation
------------------------------------------------------------------------------

CREATE SEQUENCE cs.alert_number;
COMMENT ON SEQUENCE cs.alert_number IS 'Numbers alert firings; alert ids are derived from (customer, rule, number), so a fresh database yields the same ids for the same history.';

-- Logs an alert event and, for new and escalated alerts, notifies cs_alerts.
CREATE FUNCTION cs._alert_event(a cs.alerts, ev text, from_status text, note text, details jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, note, details)
    VALUES (a.id, ev, from_status, a.status, note, details);
    IF ev IN ('created', 'escalated') THEN
        PERFORM pg_notify('cs_alerts', jsonb_build_object('event', ev, 'alert_id', a.id, 'customer_id', a.customer_id,
                                                          'severity', a.severity, 'title', a.title,
                                                          'alert_type', a.alert_type, 'assigned_to', a.assigned_to)::text);
    END IF;
END;
$$;
COMMENT ON FUNCTION cs._alert_event(cs.alerts, text, text, text, jsonb) IS
    'Internal: appends to cs.alert_events and sends NOTIFY cs_alerts for created and escalated alerts (delivered at commit).';

CREATE FUNCTION cs.evaluate_alerts(ids uuid[] DEFAULT NULL)
RETURNS TABLE (created int, escalated int, refired int, resolved int, reopened int)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    c        record;
    r        cs.alert_rules;
    a        cs.alerts;
    holds    boolean;
    sev      text;
    old_sev  text;
    factors  jsonb;
    names    text[];
    vals     jsonb;
    ts       timestamptz;
    inserted boolean;
    esc      boolean;
    aid      uuid;
    prev     text;
BEGIN
    created := 0; escalated := 0; refired := 0; resolved := 0; reopened := 0;

    -- Snoozes that have passed: back to open.
    FOR a IN UPDATE cs.alerts al SET status = 'open', snoozed_until = NULL, updated_at = now(), updated_by = current_user
              WHERE al.status = 'snoozed' AND al.snoozed_until <= now()
                AND (ids IS NULL OR al.customer_id = ANY (ids))
             RETURNING al.*
    LOOP
        PERFORM cs._alert_event(a, 'reopened', 'snoozed', 'snooze ended', NULL);
        reopened := reopened + 1;
    END LOOP;

    -- A churned customer is past alerting: close what is still open.
    FOR aid, prev IN SELECT al.id, al.status FROM cs.alerts al JOIN cs.customers cu ON cu.id = al.customer_id
                      WHERE cu.churned_at IS NOT NULL AND al.status IN ('open', 'acknowledged', 'snoozed')
                        AND (ids IS NULL OR al.customer_id = ANY (ids))
                      ORDER BY al.id
                        FOR UPDATE OF al
    LOOP
        UPDATE cs.alerts al SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
                                updated_at = now(), updated_by = current_user
         WHERE al.id = aid RETURNING al.* INTO a;
        PERFORM cs._alert_event(a, 'auto_resolved', prev, 'customer churned', NULL);
        resolved := resolved + 1;
    END LOOP;

    FOR c IN
        SELECT cu.id, cu.csm,
               jsonb_build_object(
                 'features', cs.feature_map(coalesce(cf.features, '{}')),
                 'scores', jsonb_build_object('churn_risk', rk.risk_score, 'overall_score', h.overall_score,
                                              'usage_score', h.usage_score, 'engagement_score', h.engagement_score,
                                              'support_score', h.support_score, 'payment_score', h.payment_score,
                                              'opportunity_score', o.best, 'opportunity_mrr', o.total),
                 'band', h.band) AS ctx,
               rk.risk_factors, h.drivers, o.kinds
          FROM cs.customers cu
          LEFT JOIN cs.customer_features cf ON cf.customer_id = cu.id
          LEFT JOIN LATERAL (SELECT s.* FROM cs.customer_health_scores s WHERE s.customer_id = cu.id
                              ORDER BY s.calculated_at DESC LIMIT 1) h ON true
          LEFT JOIN LATERAL (SELECT x.risk_score, x.risk_factors FROM cs.risk_assessments x
                              WHERE x.customer_id = cu.id AND x.risk_type = 'churn'
                              ORDER BY x.created_at DESC LIMIT 1) rk ON true
          LEFT JOIN LATERAL (SELECT max(op.score) AS best, sum(op.expected_mrr) AS total,
                                    jsonb_agg(jsonb_build_object('source', 'opportunity', 'kind', op.kind, 'score', op.score,
                                                                 'expected_mrr', op.expected_mrr, 'product', op.product)
                                              ORDER BY op.score DESC, op.kind, op.product) AS kinds
                               FROM cs.opportunities op
                              WHERE op.customer_id = cu.id AND op.status IN ('open', 'in_progress')) o ON true
         WHERE cu.churned_at IS NULL AND (ids IS NULL OR cu.id = ANY (ids))
         ORDER BY cu.id
    LOOP
        vals := NULL;
        FOR r IN SELECT * FROM cs.alert_rules WHERE enabled AND alert_type IN ('risk', 'opportunity') ORDER BY id LOOP
            holds := cs.condition_holds(r.condition, c.ctx);
            IF holds IS FALSE AND r.auto_resolve THEN
                FOR aid, prev IN SELECT al.id, al.status FROM cs.alerts al
                                  WHERE al.customer_id = c.id AND al.rule_id = r.id
                                    AND al.status IN ('open', 'acknowledged', 'snoozed')
                                    FOR UPDATE
                LOOP
                    UPDATE cs.alerts al SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
                                            updated_at = now(), updated_by = current_user
                     WHERE al.id = aid RETURNING al.* INTO a;
                    PERFORM cs._alert_event(a, 'auto_resolved', prev, 'condition cleared', NULL);
                    resolved := resolved + 1;
                END LOOP;
            END IF;
            CONTINUE WHEN holds IS NOT TRUE;

            sev := cs.alert_severity(r.severity_metric, r.severity_thresholds, r.base_severity, c.ctx);
            -- Why: the terms of the condition with their current values, and for
            -- risk alerts the churn model's factors and the health drivers; for
            -- opportunity alerts the customer's opportunities.
            SELECT coalesce(jsonb_agg(t.f ORDER BY t.ord, t.name), '[]') INTO factors FROM (
                SELECT 1 AS ord, n.name, jsonb_build_object('source', 'rule', 'feature', n.name,
                                                            'value', c.ctx -> 'features' -> n.name) AS f
                  FROM (SELECT DISTINCT x #>> '{}' AS name FROM jsonb_path_query(r.condition, '$.**.feature') x) n
                UNION ALL
                SELECT 1, n.name, jsonb_build_object('source', 'rule', 'score', n.name, 'value', c.ctx -> 'scores' -> n.name)
                  FROM (SELECT DISTINCT x #>> '{}' AS name FROM jsonb_path_query(r.condition, '$.**.score') x) n
                UNION ALL
                SELECT 1, 'band', jsonb_build_object('source', 'rule', 'band', c.ctx -> 'band')
                 WHERE jsonb_path_exists(r.condition, '$.**.band')
                UNION ALL
                SELECT 2, lpad(e.o::text, 4, '0'), jsonb_build_object('source', 'churn_model') || e.x
                  FROM jsonb_array_elements(CASE WHEN r.alert_type = 'risk' AND jsonb_typeof(c.risk_factors) = 'array'
                                                 THEN c.risk_factors ELSE '[]' END) WITH ORDINALITY e(x, o)
                UNION ALL
                SELECT 3, lpad(e.o::text, 4, '0'),
                       jsonb_build_object('source', 'health', 'feature', e.x ->> 'measure', 'value', e.x -> 'value',
                                          'impact', e.x -> 'impact')
                  FROM jsonb_array_elements(CASE WHEN r.alert_type = 'risk' AND jsonb_typeof(c.drivers -> 'top') = 'array'
                                                 THEN c.drivers -> 'top' ELSE '[]' END) WITH ORDINALITY e(x, o)
                UNION ALL
                SELECT 4, lpad(e.o::text, 4, '0'), e.x
                  FROM jsonb_array_elements(CASE WHEN r.alert_type = 'opportunity' THEN coalesce(c.kinds, '[]')
                                                 ELSE '[]' END) WITH ORDINALITY e(x, o)
            ) t;
            names := ARRAY(SELECT DISTINCT coalesce(f ->> 'feature', f ->> 'score', f ->> 'kind')
                             FROM jsonb_array_elements(factors) f
                            WHERE coalesce(f ->> 'feature', f ->> 'score', f ->> 'kind') IS NOT NULL);
            IF vals IS NULL THEN
                vals := cs.template_values(c.id);
            END IF;
            SELECT al.severity INTO old_sev FROM cs.alerts al
             WHERE al.customer_id = c.id AND al.rule_id = r.id AND al.status IN ('open', 'acknowledged', 'snoozed');
            ts := clock_timestamp();
            -- The partial unique index decides between a new alert and the open
            -- one, also against a concurrent evaluation of the same customer.
            INSERT INTO cs.alerts AS al (id, customer_id, rule_id, alert_type, severity, title, description, risk_factors,
                                         suggested_actions, status, assigned_to, created_at, updated_at, updated_by,
                                         last_fired_at, fire_count)
            SELECT md5(c.id::text || ':' || r.id || ':' || nextval('cs.alert_number'))::uuid, c.id, r.id, r.alert_type, sev,
                   left(cs.fill_template(coalesce(r.title, r.name), vals), 255), r.description, factors,
                   cs.suggest_actions(names, vals), 'open', c.csm, now(), now(), current_user, now(), 1
             WHERE NOT EXISTS (SELECT 1 FROM cs.alerts p
                                WHERE p.customer_id = c.id AND p.rule_id = r.id
                                  AND p.status IN ('resolved', 'dismissed') AND p.resolved_at > now() - r.cooldown)
            ON CONFLICT (customer_id, rule_id) WHERE status IN ('open', 'acknowledged', 'snoozed') DO UPDATE
               SET severity = CASE WHEN cs.severity_rank(excluded.severity) > cs.severity_rank(al.severity)
                                   THEN excluded.severity ELSE al.severity END,
                   escalated_at = CASE WHEN cs.severity_rank(excluded.severity) > cs.severity_rank(al.severity)
                                       THEN ts ELSE al.escalated_at END,
                   updated_at = CASE WHEN cs.severity_rank(excluded.severity) > cs.severity_rank(al.severity)
                                     THEN now() ELSE al.updated_at END,
                   title = excluded.title,
                   risk_factors = excluded.risk_factors,
                   suggested_actions = excluded.suggested_actions,
                   last_fired_at = excluded.last_fired_at,
                   fire_count = al.fire_count + 1
            RETURNING al.id, (al.xmax = 0), (al.escalated_at = ts) INTO aid, inserted, esc;
            CONTINUE WHEN NOT FOUND;    -- in cooldown
            SELECT * INTO a FROM cs.alerts al WHERE al.id = aid;
            IF inserted THEN
                PERFORM cs._alert_event(a, 'created', NULL, NULL, jsonb_build_object('severity', a.severity));
                created := created + 1;
            ELSIF esc THEN
                PERFORM cs._alert_event(a, 'escalated', a.status, NULL,
                                        jsonb_build_object('from', old_sev, 'to', a.severity));
                escalated := escalated + 1;
            ELSE
                refired := refired + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION cs.evaluate_alerts(uuid[]) IS
    'Evaluates the enabled risk and opportunity rules for the given customers (all when NULL) over their stored features, latest health, latest churn risk and open opportunities: '
    'reopens alerts whose snooze has passed, resolves those of churned customers, raises new alerts (unless a resolved or dismissed one is within the rule''s cooldown), updates and escalates open ones, '
    'and resolves open alerts of auto-resolving rules whose condition is now false. New and escalated alerts NOTIFY cs_alerts. Returns the counts.';

------------------------------------------------------------------------------
-- Lifecycle
--
--   open ──acknowledge──> acknowledged      open/acknowledged/snoozed ──resolve──> resolved
--   open/acknowledged/snoozed ──snooze──> snoozed ──(snooze passes, next evaluation)──> open
--   open/acknowledged/snoozed ──dismiss──> dismissed      snoozed ──acknowledge──> acknowledged
-- resolved and dismissed are final; reassigning keeps the status.
------------------------------------------------------------------------------

-- Applies one lifecycle transition under a row lock, or refuses it.
CREATE FUNCTION cs._alert_transition(alert_id uuid, ev text, allowed text[], new_status text, note text,
                                     until timestamptz DEFAULT NULL, assignee text DEFAULT NULL)
RETURNS cs.alerts
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    a    cs.alerts;
    prev text;
    details jsonb;
BEGIN
    IF alert_id IS NULL THEN
        RAISE EXCEPTION 'alert id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO a FROM cs.alerts al WHERE al.id = alert_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT a.status = ANY (allowed) THEN
        RAISE EXCEPTION 'cannot % alert %: it is %',
                        CASE ev WHEN 'acknowledged' THEN 'acknowledge' WHEN 'resolved' THEN 'resolve' WHEN 'dismissed' THEN 'dismiss'
                                WHEN 'snoozed' THEN 'snooze' ELSE 'reassign' END, alert_id, a.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Only %s alerts can be %s.', array_to_string(allowed, ', '), ev);
    END IF;
    prev := a.status;
    details := CASE ev WHEN 'snoozed' THEN jsonb_build_object('until', until)
                       WHEN 'reassigned' THEN jsonb_build_object('from', a.assigned_to, 'to', assignee) END;
    UPDATE cs.alerts al
       SET status = coalesce(new_status, al.status),
           resolved_at = CASE WHEN new_status IN ('resolved', 'dismissed') THEN now() ELSE al.resolved_at END,
           snoozed_until = CASE WHEN new_status = 'snoozed' THEN until
                                WHEN new_status IS NULL THEN al.snoozed_until END,
           assigned_to = coalesce(assignee, al.assigned_to),
           updated_at = now(),
           updated_by = current_user
     WHERE al.id = alert_id
    RETURNING al.* INTO a;
    PERFORM cs._alert_event(a, ev, prev, note, details);
    RETURN a;
END;
$$;
COMMENT ON FUNCTION cs._alert_transition(uuid, text, text[], text, text, timestamptz, text) IS
    'Internal: moves an alert to a new status (NULL keeps it) if its current status allows it (object_not_in_prerequisite_state otherwise), stamps who and when, and logs the event.';

CREATE FUNCTION cs.acknowledge_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SET search_path = pg_catalog, cs
RETURN cs._alert_transition(id, 'acknowledged', ARRAY['open', 'snoozed'], 'acknowledged', note);
COMMENT ON FUNCTION cs.acknowledge_alert(uuid, text) IS 'Marks an open or snoozed alert acknowledged (the CSM is on it); returns the alert.';

CREATE FUNCTION cs.resolve_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SET search_path = pg_catalog, cs
RETURN cs._alert_transition(id, 'resolved', ARRAY['open', 'acknowledged', 'snoozed'], 'resolved', note);
COMMENT ON FUNCTION cs.resolve_alert(uuid, text) IS 'Resolves an unresolved alert (the problem was dealt with); the rule''s cooldown starts. Returns the alert.';

CREATE FUNCTION cs.dismiss_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SET search_path = pg_catalog, cs
RETURN cs._alert_transition(id, 'dismissed', ARRAY['open', 'acknowledged', 'snoozed'], 'dismissed', note);
COMMENT ON FUNCTION cs.dismiss_alert(uuid, text) IS 'Dismisses an unresolved alert (not worth acting on); the rule''s cooldown starts. Returns the alert.';

CREATE FUNCTION cs.snooze_alert(id uuid, until timestamptz) RETURNS cs.alerts
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF until IS NULL THEN
        RAISE EXCEPTION 'snooze end must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF until <= now() OR NOT isfinite(until) THEN
        RAISE EXCEPTION 'snooze end must be a finite time in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN cs._alert_transition(id, 'snoozed', ARRAY['open', 'acknowledged', 'snoozed'], 'snoozed', NULL, until);
END;
$$;
COMMENT ON FUNCTION cs.snooze_alert(uuid, timestamptz) IS 'Snoozes an unresolved alert until a future time; the first evaluation after it reopens the alert. Returns the alert.';

CREATE FUNCTION cs.reassign_alert(id uuid, assignee text) RETURNS cs.alerts
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF assignee IS NULL OR btrim(assignee) = '' THEN
        RAISE EXCEPTION 'assignee must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN cs._alert_transition(id, 'reassigned', ARRAY['open', 'acknowledged', 'snoozed'], NULL, NULL, NULL, assignee);
END;
$$;
COMMENT ON FUNCTION cs.reassign_alert(uuid, text) IS 'Assigns an unresolved alert to another CSM (role name), keeping its status. Returns the alert.';

-- source: src/sql/70_actions.sql
-- Next best action: playbooks, their learned effectiveness (Beta-Binomial),
-- the actions CSMs take and their measured outcomes; alert feedback and
-- quality; the reporting views.

------------------------------------------------------------------------------
-- Playbooks
------------------------------------------------------------------------------

CREATE FUNCTION cs.opportunity_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['upsell', 'cross_sell', 'expansion', 'adoption'];
COMMENT ON FUNCTION cs.opportunity_kinds() IS 'Opportunity kinds a playbook may answer.';

-- Refuses a playbook that answers unknown factors or uses unknown placeholders.
CREATE FUNCTION cs._validate_playbook() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    bad text;
BEGIN
    IF btrim(NEW.name) = '' OR btrim(NEW.action) = '' THEN
        RAISE EXCEPTION 'playbook name and action must not be blank' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(NEW.answers) = 0 THEN
        RAISE EXCEPTION 'playbook "%" must answer at least one risk factor or opportunity kind', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x INTO bad FROM unnest(NEW.answers) x
     WHERE x IS NULL OR NOT (x = ANY (cs.opportunity_kinds()) OR x = ANY (cs.condition_scores())
                             OR EXISTS (SELECT 1 FROM cs.feature_catalog fc WHERE fc.name = x))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'playbook "%" answers unknown factor "%"', NEW.name, bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Answers are cs.feature_catalog names, condition score names (cs.condition_scores()) or opportunity kinds.';
    END IF;
    PERFORM cs.check_template(NEW.template);
    RETURN NEW;
END;
$$;
CREATE TRIGGER playbooks_validate BEFORE INSERT OR UPDATE ON cs.playbooks
    FOR EACH ROW EXECUTE FUNCTION cs._validate_playbook();

INSERT INTO cs.playbooks (name, action, answers, template, outcome_window, description) VALUES
('executive_sponsor_call', 'Call the executive sponsor',
 '{churn_risk,overall_score,champion_left_90d,has_active_champion}',
 'Hello {name} team, I would like to set up a short call with your leadership to review the value you get from us and agree on priorities for the coming months. — {csm}',
 '30 days', 'Escalate the relationship to the sponsor when the account is at risk overall.'),
('usage_recovery_training', 'Offer a re-onboarding training',
 '{usage_trend_14d,usage_trend_30d,active_users_7d,active_users_30d,active_days_30d,days_since_last_activity,usage_score}',
 'Hello {name} team, we noticed your team uses the product less lately. Can we schedule a free training session to help you get more out of it? — {csm}',
 '30 days', 'Win back usage with a hands-on session.'),
('billing_outreach', 'Contact billing about the open invoice',
 '{days_overdue,late_or_failed_invoices_90d,payment_score}',
 'Hello {name} team, an invoice on your account is past due. Could you check with your finance team, or tell us if something needs fixing on our side? — {csm}',
 '30 days', 'Settle payment problems before they turn into churn.'),
('renewal_rescue_plan', 'Build a renewal rescue plan',
 '{days_to_renewal,churn_risk,overall_score}',
 'Hello {name} team, your renewal is in {days_to_renewal} days. I would like to walk through a success plan with you so the next term delivers what you need. — {csm}',
 '60 days', 'A joint plan with concrete goals ahead of a risky renewal.'),
('new_champion_onboarding', 'Find and onboard a new champion',
 '{champion_left_90d,has_active_champion}',
 'Hello {name} team, with the recent change in your team we would love to introduce the product to whoever now owns it. Who should we talk to? — {csm}',
 '45 days', 'Replace a departed champion before the account goes dark.'),
('support_escalation_review', 'Review open tickets with support leadership',
 '{tickets_30d,tickets_90d,open_high_priority_tickets,mean_csat_90d,mean_hours_to_close_90d,support_score}',
 'Hello {name} team, I am sorry about the recent support experience. I have escalated your open tickets and will follow up personally until they are solved. — {csm}',
 '30 days', 'Own the support backlog of an unhappy account.'),
('nps_detractor_followup', 'Call the detractor',
 '{last_nps,nps_trend}',
 'Hello {name} team, thank you for your feedback (you rated us {last_nps}). I would like to understand what we can do better. — {csm}',
 '30 days', 'Close the loop with a detractor.'),
('seat_expansion_offer', 'Offer additional seats',
 '{seat_utilisation,upsell}',
 'Hello {name} team, you are using {seat_utilisation} of your {seats_licensed} seats. We can add seats at your current price so nobody waits for access. — {csm}',
 '45 days', 'Turn high seat utilisation into an expansion.'),
('cross_sell_introduction', 'Introduce a complementary product',
 '{cross_sell,active_products}',
 'Hello {name} team, teams like yours often pair our products to do more. Could I show you a short demo? — {csm}',
 '45 days', 'Introduce the product similar customers adopted.'),
('adoption_workshop', 'Run a feature adoption workshop',
 '{adoption,feature_breadth_30d}',
 'Hello {name} team, you use a part of what your plan includes. A one-hour workshop could show your team the features that fit your goals. — {csm}',
 '30 days', 'Broaden feature adoption.');

------------------------------------------------------------------------------
-- Effectiveness and ranking
--
-- Each measured action is a Bernoulli trial for every factor it addressed
-- (cs.actions.factors): success when the outcome is recovered, renewed or
-- expanded, failure when churned or no_change.  With a Beta(2, 2) prior the
-- posterior mean of a (playbook, factor) is (2 + successes) / (4 + trials):
-- 0.5 with no evidence, moving towards the observed rate as trials accrue.
-- Ranking uses the posterior mean only, so it is deterministic.
------------------------------------------------------------------------------

CREATE VIEW cs.playbook_effectiveness WITH (security_invoker = true) AS
SELECT p.name AS playbook,
       f.factor,
       count(a.id) AS trials,
       count(a.id) FILTER (WHERE a.outcome IN ('recovered', 'renewed', 'expanded')) AS successes,
       count(a.id) FILTER (WHERE a.outcome IN ('churned', 'no_change')) AS failures,
       round((2 + count(a.id) FILTER (WHERE a.outcome IN ('recovered', 'renewed', 'expanded')))::numeric
             / (4 + count(a.id)), 3) AS effectiveness
  FROM cs.playbooks p
 CROSS JOIN LATERAL unnest(p.answers) f(factor)
  LEFT JOIN cs.actions a ON a.playbook = p.name AND a.outcome IS NOT NULL AND f.factor = ANY (a.factors)
 GROUP BY p.name, f.factor;
COMMENT ON VIEW cs.playbook_effectiveness IS 'Learned effectiveness per playbook and the factor it answers: Beta(2,2) posterior mean of success over measured actions.';
COMMENT ON COLUMN cs.playbook_effectiveness.playbook IS 'Playbook name.';
COMMENT ON COLUMN cs.playbook_effectiveness.factor IS 'Risk factor or opportunity kind the playbook answers.';
COMMENT ON COLUMN cs.playbook_effectiveness.trials IS 'Actions with an outcome that addressed this factor with this playbook.';
COMMENT ON COLUMN cs.playbook_effectiveness.successes IS 'Of them, recovered, renewed or expanded.';
COMMENT ON COLUMN cs.playbook_effectiveness.failures IS 'Of them, churned or no_change.';
COMMENT ON COLUMN cs.playbook_effectiveness.effectiveness IS 'Posterior mean (2 + successes) / (4 + trials) under a Beta(2,2) prior.';

-- Applicable playbooks for a set of factors, best first.  plpgsql rather than
-- SQL so that the plan is cached: alert evaluation calls it for every firing.
CREATE FUNCTION cs.rank_playbooks(factors text[])
RETURNS TABLE (rank int, playbook text, action text, matched text[], trials bigint, effectiveness numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN QUERY
    SELECT (row_number() OVER (ORDER BY b.effectiveness DESC, cardinality(b.matched) DESC, b.playbook))::int,
           b.playbook, b.action, b.matched, b.trials, b.effectiveness
      FROM (SELECT p.name AS playbook, p.action,
                   ARRAY(SELECT x FROM unnest(p.answers) x WHERE x = ANY (factors) ORDER BY x) AS matched,
                   best.trials, best.effectiveness
              FROM cs.playbooks p
             CROSS JOIN LATERAL (SELECT e.trials, e.effectiveness FROM cs.playbook_effectiveness e
                                  WHERE e.playbook = p.name AND e.factor = ANY (factors)
                                  ORDER BY e.effectiveness DESC, e.trials DESC LIMIT 1) best
             WHERE p.enabled AND p.answers && factors) b
     ORDER BY 1;
END;
$$;
COMMENT ON FUNCTION cs.rank_playbooks(text[]) IS
    'Enabled playbooks answering any of the factors, ranked by the best posterior mean effectiveness over the matched factors, then by how many factors they match, then by name.';

-- Exploration for those who want it: one Thompson draw per playbook.  For
-- integer shape parameters a Beta(a, b) variate is the a-th smallest of
-- a + b - 1 uniform variates, which needs nothing but random().  Never used by
-- alert evaluation, whose suggestions stay deterministic.
CREATE FUNCTION cs.sample_playbooks(factors text[])
RETURNS TABLE (rank int, playbook text, action text, matched text[], trials bigint, effectiveness numeric, draw float8)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN QUERY
    SELECT (row_number() OVER (ORDER BY d.draw DESC, d.playbook))::int, d.playbook, d.action, d.matched, d.trials,
           d.effectiveness, d.draw
      FROM (SELECT r.*,
                   (SELECT u FROM (SELECT random() AS u FROM generate_series(1, (4 + r.trials - 1)::int)) x
                     ORDER BY u OFFSET (2 + e.successes - 1) LIMIT 1) AS draw
              FROM cs.rank_playbooks(factors) r
              JOIN LATERAL (SELECT pe.successes FROM cs.playbook_effectiveness pe
                             WHERE pe.playbook = r.playbook AND pe.factor = ANY (factors)
                             ORDER BY pe.effectiveness DESC, pe.trials DESC LIMIT 1) e ON true) d
     ORDER BY 1;
END;
$$;
COMMENT ON FUNCTION cs.sample_playbooks(text[]) IS
    'Thompson sampling over the playbooks answering the factors: ranks them by one draw from each Beta(2 + successes, 2 + failures) posterior (of its best matched factor). Volatile; alert suggestions use the deterministic cs.rank_playbooks.';

-- The same from placeholder values already fetched (alert evaluation has them).
CREATE FUNCTION cs.suggest_actions(factors text[], vals jsonb, max_suggestions int DEFAULT 3)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('rank', r.rank, 'playbook', r.playbook, 'action', r.action,
                                                         'matched', to_jsonb(r.matched), 'trials', r.trials,
                                                         'effectiveness', r.effectiveness,
                                                         'message', cs.fill_template(p.template, vals))
                                      ORDER BY r.rank), '[]')
              FROM cs.rank_playbooks(factors) r
              JOIN cs.playbooks p ON p.name = r.playbook
             WHERE r.rank <= max_suggestions);
END;
$$;
COMMENT ON FUNCTION cs.suggest_actions(text[], jsonb, int) IS
    'Up to max_suggestions ranked playbooks for the factors, as JSON, with messages filled from placeholder values (cs.template_values).';

-- The ranked suggestions stored on an alert, with each message rendered for the customer.
CREATE FUNCTION cs.suggest_actions(factors text[], customer_id uuid, max_suggestions int DEFAULT 3)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
RETURN cs.suggest_actions(factors, cs.template_values(customer_id), max_suggestions);
COMMENT ON FUNCTION cs.suggest_actions(text[], uuid, int) IS
    'Up to max_suggestions ranked playbooks for the factors, as JSON with the action, matched factors, effectiveness and the message rendered for the customer.';

------------------------------------------------------------------------------
-- Actions and outcomes
------------------------------------------------------------------------------

CREATE FUNCTION cs.record_action(alert_id uuid, playbook text, outcome text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    a   cs.alerts;
    p   cs.playbooks;
    h   record;
    fs  text[];
    aid bigint;
BEGIN
    IF alert_id IS NULL OR playbook IS NULL THEN
        RAISE EXCEPTION 'alert id and playbook must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF outcome IS NOT NULL AND outcome NOT IN ('recovered', 'renewed', 'expanded', 'churned', 'no_change') THEN
        RAISE EXCEPTION 'unknown outcome "%"', outcome
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Outcomes are recovered, renewed, expanded, churned and no_change.';
    END IF;
    SELECT * INTO a FROM cs.alerts al WHERE al.id = record_action.alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO p FROM cs.playbooks pb WHERE pb.name = record_action.playbook;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'playbook "%" does not exist', playbook USING ERRCODE = 'no_data_found';
    END IF;
    -- What the outcome will teach about: the alert's factors this playbook answers.
    fs := ARRAY(SELECT DISTINCT y.x FROM jsonb_array_elements(coalesce(a.risk_factors, '[]')) f
                 CROSS JOIN LATERAL (SELECT coalesce(f ->> 'feature', f ->> 'score', f ->> 'kind') AS x) y
                 WHERE y.x = ANY (p.answers) ORDER BY y.x);
    SELECT s.overall_score, s.band INTO h FROM cs.customer_health_scores s
     WHERE s.customer_id = a.customer_id ORDER BY s.calculated_at DESC LIMIT 1;
    INSERT INTO cs.actions (alert_id, customer_id, playbook, outcome, outcome_at, outcome_source, factors,
                            health_at_action, band_at_action, renewal_date_at_action)
    SELECT a.id, a.customer_id, p.name, outcome, CASE WHEN outcome IS NOT NULL THEN now() END,
           CASE WHEN outcome IS NOT NULL THEN 'reported' END, fs, h.overall_score, h.band, c.contract_end_date
      FROM cs.customers c WHERE c.id = a.customer_id
    RETURNING id INTO aid;
    IF a.status = 'open' THEN
        PERFORM cs._alert_transition(a.id, 'acknowledged', ARRAY['open'], 'acknowledged', 'action: ' || p.name);
    END IF;
    RETURN aid;
END;
$$;
COMMENT ON FUNCTION cs.record_action(uuid, text, text) IS
    'Logs that the current user applied a playbook to an alert (acknowledging it if open), with the factors it addresses and the health and renewal date to measure against; an outcome given here is stored as reported. Returns the action id.';

CREATE FUNCTION cs.measure_action_outcomes()
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    n int;
BEGIN
    -- First match wins: churned, expanded, renewed, recovered, else no_change.
    UPDATE cs.actions ac
       SET outcome = m.outcome, outcome_at = greatest(now(), ac.taken_at), outcome_source = 'measured'
      FROM (SELECT a.id,
                   CASE WHEN c.churned_at IS NOT NULL AND c.churned_at >= a.taken_at::date THEN 'churned'
                        WHEN EXISTS (SELECT 1 FROM cs.subscriptions s
                                      WHERE s.customer_id = a.customer_id AND s.started_at >= a.taken_at::date) THEN 'expanded'
                        WHEN c.contract_end_date > a.renewal_date_at_action THEN 'renewed'
                        WHEN (a.band_at_action = 'red' AND h.band IN ('yellow', 'green'))
                             OR h.overall_score >= a.health_at_action + 0.1 THEN 'recovered'
                        ELSE 'no_change' END AS outcome
              FROM cs.actions a
              JOIN cs.customers c ON c.id = a.customer_id
              LEFT JOIN cs.playbooks p ON p.name = a.playbook
              LEFT JOIN LATERAL (SELECT s.overall_score, s.band FROM cs.customer_health_scores s
                                  WHERE s.customer_id = a.customer_id
                                  ORDER BY s.calculated_at DESC LIMIT 1) h ON true
             WHERE a.outcome IS NULL
               AND a.taken_at + coalesce(p.outcome_window, interval '30 days') <= now()
             FOR UPDATE OF a SKIP LOCKED) m
     WHERE ac.id = m.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.measure_action_outcomes() IS
    'Measures the outcome of actions whose playbook outcome window has passed: churned (churned since), expanded (a subscription started since), '
    'renewed (contract end moved later), recovered (health back from red to yellow or green, or up by 0.1 or more), else no_change. Returns how many were measured; safe to call periodically and concurrently.';

------------------------------------------------------------------------------
-- Feedback and alert quality
------------------------------------------------------------------------------

CREATE FUNCTION cs.record_feedback(alert_id uuid, feedback_type text, rating int, comments text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    fid uuid;
BEGIN
    IF alert_id IS NULL OR feedback_type IS NULL OR rating IS NULL THEN
        RAISE EXCEPTION 'alert id, feedback type and rating must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF feedback_type NOT IN ('accuracy', 'relevance', 'priority') THEN
        RAISE EXCEPTION 'unknown feedback type "%"', feedback_type
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Feedback types are accuracy, relevance and priority.';
    END IF;
    IF rating NOT BETWEEN 1 AND 5 THEN
        RAISE EXCEPTION 'rating must be between 1 and 5, not %', rating USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cs.alerts a WHERE a.id = record_feedback.alert_id) THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO cs.alert_feedback (alert_id, feedback_type, rating, comments)
    VALUES (alert_id, feedback_type, rating, comments)
    RETURNING id INTO fid;
    RETURN fid;
END;
$$;
COMMENT ON FUNCTION cs.record_feedback(uuid, text, int, text) IS
    'Records the current user''s rating (1-5) of an alert''s accuracy, relevance or priority; returns the feedback id.';

CREATE VIEW cs.alert_quality WITH (security_invoker = true) AS
WITH per_alert AS (
    SELECT a.id, a.rule_id, a.status, a.created_at,
           CASE WHEN a.alert_type = 'risk' THEN c.churned_at IS NOT NULL AND c.churned_at >= a.created_at::date
                WHEN a.alert_type = 'opportunity' THEN EXISTS (SELECT 1 FROM cs.subscriptions s
                                                                WHERE s.customer_id = a.customer_id
                                                                  AND s.started_at >= a.created_at::date) END AS outcome_hit
      FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id
), fb AS (
    SELECT a.rule_id, count(*) AS ratings, count(*) FILTER (WHERE f.rating >= 4) AS accurate
      FROM cs.alert_feedback f JOIN cs.alerts a ON a.id = f.alert_id
     WHERE f.feedback_type = 'accuracy'
     GROUP BY a.rule_id
)
SELECT r.id AS rule_id,
       r.name AS rule,
       r.alert_type,
       count(p.id) AS alerts,
       count(p.id) FILTER (WHERE p.status IN ('open', 'acknowledged', 'snoozed')) AS unresolved,
       count(p.id) FILTER (WHERE p.status = 'dismissed') AS dismissed,
       coalesce(max(fb.ratings), 0) AS accuracy_ratings,
       round(max(fb.accurate)::numeric / nullif(max(fb.ratings), 0), 3) AS feedback_precision,
       count(p.id) FILTER (WHERE p.outcome_hit) AS outcome_hits,
       round((count(p.id) FILTER (WHERE p.outcome_hit))::numeric / nullif(count(p.id), 0), 3) AS outcome_precision
  FROM cs.alert_rules r
  LEFT JOIN per_alert p ON p.rule_id = r.id
  LEFT JOIN fb ON fb.rule_id = r.id
 GROUP BY r.id, r.name, r.alert_type;
COMMENT ON VIEW cs.alert_quality IS 'Per rule: how many alerts it raised and how precise they were, by CSM feedback and by what happened to the customers.';
COMMENT ON COLUMN cs.alert_quality.rule_id IS 'The rule.';
COMMENT ON COLUMN cs.alert_quality.rule IS 'Rule name.';
COMMENT ON COLUMN cs.alert_quality.alert_type IS 'risk or opportunity.';
COMMENT ON COLUMN cs.alert_quality.alerts IS 'Alerts the rule raised.';
COMMENT ON COLUMN cs.alert_quality.unresolved IS 'Of them, open, acknowledged or snoozed.';
COMMENT ON COLUMN cs.alert_quality.dismissed IS 'Of them, dismissed by a CSM.';
COMMENT ON COLUMN cs.alert_quality.accuracy_ratings IS 'Accuracy ratings given on the rule''s alerts.';
COMMENT ON COLUMN cs.alert_quality.feedback_precision IS 'Share of accuracy ratings of 4 or 5; NULL without ratings.';
COMMENT ON COLUMN cs.alert_quality.outcome_hits IS 'Alerts borne out: the customer churned after a risk alert, or started a subscription after an opportunity alert.';
COMMENT ON COLUMN cs.alert_quality.outcome_precision IS 'outcome_hits over alerts; NULL without alerts.';

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

CREATE VIEW cs.risk_alerts WITH (security_invoker = true) AS
SELECT a.id AS alert_id,
       a.customer_id,
       c.name,
       c.segment,
       a.assigned_to,
       r.name AS rule,
       a.severity,
       cs.severity_rank(a.severity) AS severity_rank,
       a.status,
       a.title,
       c.mrr AS mrr_at_risk,
       rk.risk_score AS churn_risk,
       h.band,
       h.overall_score,
       a.risk_factors AS drivers,
       a.suggested_actions -> 0 ->> 'playbook' AS top_suggestion,
       a.suggested_actions,
       a.snoozed_until,
       a.created_at,
       a.updated_at
  FROM cs.alerts a
  JOIN cs.customers c ON c.id = a.customer_id
  LEFT JOIN cs.alert_rules r ON r.id = a.rule_id
  LEFT JOIN LATERAL (SELECT s.overall_score, s.band FROM cs.customer_health_scores s WHERE s.customer_id = a.customer_id
                      ORDER BY s.calculated_at DESC LIMIT 1) h ON true
  LEFT JOIN LATERAL (SELECT x.risk_score FROM cs.risk_assessments x WHERE x.customer_id = a.customer_id AND x.risk_type = 'churn'
                      ORDER BY x.created_at DESC LIMIT 1) rk ON true
 WHERE a.alert_type = 'risk' AND a.status IN ('open', 'acknowledged', 'snoozed') AND c.churned_at IS NULL
 ORDER BY cs.severity_rank(a.severity) DESC, c.mrr DESC NULLS LAST, a.created_at, a.id;
COMMENT ON VIEW cs.risk_alerts IS 'Unresolved risk alerts of active customers, most severe and most MRR at risk first, with their drivers and suggested playbooks.';
COMMENT ON COLUMN cs.risk_alerts.alert_id IS 'The alert.';
COMMENT ON COLUMN cs.risk_alerts.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.risk_alerts.name IS 'Customer name.';
COMMENT ON COLUMN cs.risk_alerts.segment IS 'Customer segment.';
COMMENT ON COLUMN cs.risk_alerts.assigned_to IS 'CSM the alert is assigned to.';
COMMENT ON COLUMN cs.risk_alerts.rule IS 'Rule that raised the alert.';
COMMENT ON COLUMN cs.risk_alerts.severity IS 'low, medium, high or critical.';
COMMENT ON COLUMN cs.risk_alerts.severity_rank IS 'Severity as a number for sorting: low 1 to critical 4.';
COMMENT ON COLUMN cs.risk_alerts.status IS 'open, acknowledged or snoozed.';
COMMENT ON COLUMN cs.risk_alerts.title IS 'Alert title.';
COMMENT ON COLUMN cs.risk_alerts.mrr_at_risk IS 'MRR of the customer.';
COMMENT ON COLUMN cs.risk_alerts.churn_risk IS 'Latest churn risk 0-1 of the customer.';
COMMENT ON COLUMN cs.risk_alerts.band IS 'Latest health band.';
COMMENT ON COLUMN cs.risk_alerts.overall_score IS 'Latest overall health 0-1.';
COMMENT ON COLUMN cs.risk_alerts.drivers IS 'Why the alert fired: rule terms, churn model factors and health drivers.';
COMMENT ON COLUMN cs.risk_alerts.top_suggestion IS 'Best ranked playbook.';
COMMENT ON COLUMN cs.risk_alerts.suggested_actions IS 'Ranked playbooks with rendered messages.';
COMMENT ON COLUMN cs.risk_alerts.snoozed_until IS 'End of the snooze, for snoozed alerts.';
COMMENT ON COLUMN cs.risk_alerts.created_at IS 'When the alert was raised.';
COMMENT ON COLUMN cs.risk_alerts.updated_at IS 'Last change of the alert.';

CREATE VIEW cs.opportunity_pipeline WITH (security_invoker = true) AS
SELECT o.id AS opportunity_id,
       o.customer_id,
       c.name,
       c.segment,
       c.csm,
       o.kind,
       o.product,
       o.score,
       o.expected_mrr,
       o.status,
       o.source,
       o.reasons,
       h.band,
       o.created_at
  FROM cs.opportunities o
  JOIN cs.customers c ON c.id = o.customer_id
  LEFT JOIN LATERAL (SELECT s.band FROM cs.customer_health_scores s WHERE s.customer_id = o.customer_id
                      ORDER BY s.calculated_at DESC LIMIT 1) h ON true
 WHERE o.status IN ('open', 'in_progress') AND c.churned_at IS NULL
 ORDER BY o.expected_mrr DESC NULLS LAST, o.score DESC, o.id;
COMMENT ON VIEW cs.opportunity_pipeline IS 'Open and in-progress opportunities of active customers, largest expected MRR first.';
COMMENT ON COLUMN cs.opportunity_pipeline.opportunity_id IS 'The opportunity.';
COMMENT ON COLUMN cs.opportunity_pipeline.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.opportunity_pipeline.name IS 'Customer name.';
COMMENT ON COLUMN cs.opportunity_pipeline.segment IS 'Customer segment.';
COMMENT ON COLUMN cs.opportunity_pipeline.csm IS 'Owning CSM.';
COMMENT ON COLUMN cs.opportunity_pipeline.kind IS 'upsell, cross_sell, expansion or adoption.';
COMMENT ON COLUMN cs.opportunity_pipeline.product IS 'Product to offer (cross-sell).';
COMMENT ON COLUMN cs.opportunity_pipeline.score IS 'Propensity 0-1.';
COMMENT ON COLUMN cs.opportunity_pipeline.expected_mrr IS 'Expected MRR uplift.';
COMMENT ON COLUMN cs.opportunity_pipeline.status IS 'open or in_progress.';
COMMENT ON COLUMN cs.opportunity_pipeline.source IS 'system or csm.';
COMMENT ON COLUMN cs.opportunity_pipeline.reasons IS 'Why the opportunity was raised.';
COMMENT ON COLUMN cs.opportunity_pipeline.band IS 'Latest health band of the customer.';
COMMENT ON COLUMN cs.opportunity_pipeline.created_at IS 'When the opportunity was raised.';

CREATE VIEW cs.action_tracking WITH (security_invoker = true) AS
SELECT ac.id AS action_id,
       ac.alert_id,
       ac.customer_id,
       c.name,
       r.name AS rule,
       ac.playbook,
       ac.factors,
       ac.taken_by,
       ac.taken_at,
       ac.taken_at + coalesce(p.outcome_window, interval '30 days') AS outcome_due,
       ac.outcome,
       ac.outcome_source,
       ac.outcome_at,
       (SELECT max(e.effectiveness) FROM cs.playbook_effectiveness e
         WHERE e.playbook = ac.playbook AND e.factor = ANY (ac.factors)) AS playbook_effectiveness
  FROM cs.actions ac
  JOIN cs.customers c ON c.id = ac.customer_id
  LEFT JOIN cs.alerts a ON a.id = ac.alert_id
  LEFT JOIN cs.alert_rules r ON r.id = a.rule_id
  LEFT JOIN cs.playbooks p ON p.name = ac.playbook
 ORDER BY ac.taken_at DESC, ac.id DESC;
COMMENT ON VIEW cs.action_tracking IS 'Actions CSMs took, their outcome, and how effective their playbook has been for the factors they addressed.';
COMMENT ON COLUMN cs.action_tracking.action_id IS 'The action.';
COMMENT ON COLUMN cs.action_tracking.alert_id IS 'The alert it answered.';
COMMENT ON COLUMN cs.action_tracking.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.action_tracking.name IS 'Customer name.';
COMMENT ON COLUMN cs.action_tracking.rule IS 'Rule of the alert.';
COMMENT ON COLUMN cs.action_tracking.playbook IS 'Playbook applied.';
COMMENT ON COLUMN cs.action_tracking.factors IS 'Alert factors the playbook answers.';
COMMENT ON COLUMN cs.action_tracking.taken_by IS 'Role that took the action.';
COMMENT ON COLUMN cs.action_tracking.taken_at IS 'When.';
COMMENT ON COLUMN cs.action_tracking.outcome_due IS 'When the outcome gets measured (taken_at plus the playbook outcome window).';
COMMENT ON COLUMN cs.action_tracking.outcome IS 'recovered, renewed, expanded, churned or no_change; NULL until known.';
COMMENT ON COLUMN cs.action_tracking.outcome_source IS 'reported by the CSM or measured.';
COMMENT ON COLUMN cs.action_tracking.outcome_at IS 'When the outcome was recorded.';
COMMENT ON COLUMN cs.action_tracking.playbook_effectiveness IS 'Best posterior mean effectiveness of the playbook over the action''s factors.';

CREATE VIEW cs.portfolio_summary WITH (security_invoker = true) AS
WITH cust AS (
    SELECT c.id, c.csm, c.segment, c.mrr, h.band, rk.risk_score,
           EXISTS (SELECT 1 FROM cs.alerts a WHERE a.customer_id = c.id AND a.alert_type = 'risk'
                      AND a.status IN ('open', 'acknowledged', 'snoozed') AND a.severity IN ('high', 'critical')) AS severe_alert,
           (SELECT count(*) FROM cs.alerts a WHERE a.customer_id = c.id
               AND a.status IN ('open', 'acknowledged', 'snoozed')) AS open_alerts
      FROM cs.customers c
      LEFT JOIN LATERAL (SELECT s.band FROM cs.customer_health_scores s WHERE s.customer_id = c.id
                          ORDER BY s.calculated_at DESC LIMIT 1) h ON true
      LEFT JOIN LATERAL (SELECT x.risk_score FROM cs.risk_assessments x WHERE x.customer_id = c.id AND x.risk_type = 'churn'
                          ORDER BY x.created_at DESC LIMIT 1) rk ON true
     WHERE c.churned_at IS NULL
)
SELECT csm,
       segment,
       count(*) AS accounts,
       coalesce(sum(mrr), 0) AS mrr,
       coalesce(sum(mrr) FILTER (WHERE severe_alert OR risk_score >= 0.6), 0) AS mrr_at_risk,
       count(*) FILTER (WHERE band = 'red') AS red,
       count(*) FILTER (WHERE band = 'yellow') AS yellow,
       count(*) FILTER (WHERE band = 'green') AS green,
       count(*) FILTER (WHERE band IS NULL) AS unscored,
       coalesce(sum(open_alerts), 0) AS open_alerts
  FROM cust
 GROUP BY csm, segment
 ORDER BY csm, segment;
COMMENT ON VIEW cs.portfolio_summary IS 'Per CSM and segment: active accounts, MRR, MRR at risk, health bands and unresolved alerts.';
COMMENT ON COLUMN cs.portfolio_summary.csm IS 'Owning CSM (role name).';
COMMENT ON COLUMN cs.portfolio_summary.segment IS 'Segment.';
COMMENT ON COLUMN cs.portfolio_summary.accounts IS 'Active (not churned) customers.';
COMMENT ON COLUMN cs.portfolio_summary.mrr IS 'Their total MRR.';
COMMENT ON COLUMN cs.portfolio_summary.mrr_at_risk IS 'MRR of customers with an unresolved high or critical risk alert or a latest churn risk of 0.6 or more.';
COMMENT ON COLUMN cs.portfolio_summary.red IS 'Customers whose latest health band is red.';
COMMENT ON COLUMN cs.portfolio_summary.yellow IS 'Customers whose latest health band is yellow.';
COMMENT ON COLUMN cs.portfolio_summary.green IS 'Customers whose latest health band is green.';
COMMENT ON COLUMN cs.portfolio_summary.unscored IS 'Customers without a health score yet.';
COMMENT ON COLUMN cs.portfolio_summary.open_alerts IS 'Unresolved (open, acknowledged, snoozed) alerts of these customers.';

-- source: src/sql/90_default_model.sql
-- The shipped churn model (models/churn_default-0.1.0.json: 0.2.0 retrained
-- models/churn_default.json, so this release loads its frozen copy; trained on generated demo
-- data by `make model`; models/README.md gives its training set and metrics) is
-- the champion from the start, so scores include churn risk without a step.
-- Replace it with cs.train_model on your own history and cs.deploy_model.
DO $$
DECLARE
    f  text := (SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/cscopilot/models/churn_default-0.1.0';
    model_id int;
BEGIN
    IF (pg_stat_file(f || '.json', true)).size IS NULL THEN
        -- Only while `make model` builds the file for the first time.
        RAISE WARNING 'the shipped churn model %.json is not installed', f
            USING HINT = 'Churn risk needs a deployed churn model: cs.train_model, then cs.deploy_model.';
        RETURN;
    END IF;
    model_id := cs.load_model_file('churn_default', 'churn', 'churn_default-0.1.0.json');
    -- training and held-out metrics written by `make model` beside the model
    IF (pg_stat_file(f || '.metrics', true)).size IS NOT NULL THEN
        UPDATE cs.models m
           SET metrics = pg_read_file(f || '.metrics')::jsonb,
               training_data = 'Generated demo data (cs.generate_demo_data), monthly observation dates, 90-day churn horizon; see models/README.md.'
         WHERE m.id = model_id;
    END IF;
    PERFORM cs.deploy_model('churn_default', (SELECT m.version FROM cs.models m WHERE m.id = model_id));
END;
$$;
