-- cscopilot 0.2.0: generated from src/sql/*.sql by make; do not edit

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
-- A CSM's accounts, largest first (the account overview's page).
CREATE INDEX customers_csm_mrr_idx ON cs.customers (csm, mrr DESC);
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
    status      text NOT NULL DEFAULT 'candidate' CHECK (status IN ('candidate', 'challenger', 'champion', 'retired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    reference   jsonb,
    CONSTRAINT models_name_version_key UNIQUE (name, version)
);
-- One champion per kind (custom models are addressed by name, one champion per name).
CREATE UNIQUE INDEX models_one_champion_per_kind ON cs.models (kind) WHERE status = 'champion' AND kind <> 'custom';
CREATE UNIQUE INDEX models_one_champion_per_custom_name ON cs.models (name) WHERE status = 'champion' AND kind = 'custom';
-- One challenger per kind (custom models: per name), judged against the champion.
CREATE UNIQUE INDEX models_one_challenger_per_kind ON cs.models (kind) WHERE status = 'challenger' AND kind <> 'custom';
CREATE UNIQUE INDEX models_one_challenger_per_custom_name ON cs.models (name) WHERE status = 'challenger' AND kind = 'custom';
COMMENT ON TABLE cs.models IS 'Model registry: XGBoost models (JSON or UBJ bytes) with their features, metrics and status.';
COMMENT ON COLUMN cs.models.kind IS 'churn, downgrade, payment, upsell or custom.';
COMMENT ON COLUMN cs.models.objective IS 'XGBoost objective, for example binary:logistic.';
COMMENT ON COLUMN cs.models.feature_names IS 'Input feature names in order; for scoring kinds the first names of cs.feature_catalog (all of them, or a prefix for a model registered before the catalog grew).';
COMMENT ON COLUMN cs.models.model IS 'The model as XGBoost JSON or UBJ bytes.';
COMMENT ON COLUMN cs.models.metrics IS 'Training and validation metrics.';
COMMENT ON COLUMN cs.models.training_data IS 'Description of the training data.';
COMMENT ON COLUMN cs.models.status IS 'candidate, challenger (scored in shadow or on an A/B share, judged against the champion), champion (scores its kind) or retired.';
COMMENT ON COLUMN cs.models.reference IS 'Reference distribution of the inputs the model learnt from (missing rate, decile edges and bin shares per feature), for cs.feature_drift; NULL when unknown.';

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
    fire_count        int NOT NULL DEFAULT 1,
    mrr_at_risk       numeric(10,2) NOT NULL DEFAULT 0 CHECK (mrr_at_risk >= 0)
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
COMMENT ON COLUMN cs.alerts.mrr_at_risk IS 'MRR of the customer when the alert last fired (0 without a customer or MRR); stored so that the alert pages read the most severe, largest alerts from an index.';
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

-- source: src/sql/08_text.sql
-- Text signals of support tickets and NPS comments: lexicon sentiment, tone
-- indicators and rule-based categories (src/text.c, README "Text signals").

CREATE FUNCTION cs.sentiment(body text) RETURNS float8
    AS 'MODULE_PATHNAME', 'cs_sentiment' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.sentiment(text) IS
    'Sentiment of a text in [-1, 1] (VADER lexicon and rules: negation, boosters, but-clauses, exclamation, capitals, emoticons); 0 when no word carries sentiment, NULL for NULL; text invalid in the database encoding raises 22021.';

CREATE FUNCTION cs.tone(body text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'cs_tone' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.tone(text) IS
    'Tone of a text: {"urgency", "anger", "politeness"} scores in [0, 1] and "cues", the words, phrases and marks (exclamation, capitals, negative sentiment) behind each.';

CREATE FUNCTION cs._text_prefix(body text, max_bytes int) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_text_prefix' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._text_prefix(text, int) IS
    'Internal: the text cut to at most max_bytes bytes of whole characters; text invalid in the database encoding raises 22021.';

CREATE TABLE cs.text_category_rules (
    category  text   NOT NULL,
    kind      text   NOT NULL,
    term      text   NOT NULL,
    weight    float8 NOT NULL DEFAULT 1,
    query     tsquery NOT NULL,
    PRIMARY KEY (category, kind, term)
);
COMMENT ON TABLE cs.text_category_rules IS
    'Rules of cs.ticket_category: a text belongs to a category when the weights of the category''s rules it matches sum to 1 or more.  Validated on write.';
COMMENT ON COLUMN cs.text_category_rules.category IS 'Category name: lower-case letters, digits and underscores, starting with a letter.';
COMMENT ON COLUMN cs.text_category_rules.kind IS 'word (one word, any inflection) or phrase (two or more words in order, any inflections).';
COMMENT ON COLUMN cs.text_category_rules.term IS 'The word or phrase, matched after English stemming (to_tsvector(''english'', ...)); stop words cannot be matched.';
COMMENT ON COLUMN cs.text_category_rules.weight IS 'Contribution to the category, non-zero between -10 and 10; a negative weight counts against it.';
COMMENT ON COLUMN cs.text_category_rules.query IS 'The term as a text search query; set on write.';

-- Validates a rule and derives its query.
CREATE FUNCTION cs._text_category_rules_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    nlex int;
BEGIN
    IF NEW.category IS NULL OR NEW.category !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid text category "%"', NEW.category
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Categories are lower-case letters, digits and underscores, starting with a letter, at most 63 characters.';
    END IF;
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('word', 'phrase') THEN
        RAISE EXCEPTION 'invalid text category rule kind "%"', NEW.kind
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The kind is word or phrase.';
    END IF;
    IF NEW.weight IS NULL OR NEW.weight = 0 OR NOT (NEW.weight BETWEEN -10 AND 10) THEN
        RAISE EXCEPTION 'text category rule weight must be non-zero between -10 and 10, not %', NEW.weight
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.term IS NULL OR btrim(NEW.term) = '' OR length(NEW.term) > 200 THEN
        RAISE EXCEPTION 'text category rule term must be 1 to 200 characters, not blank'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    NEW.term := btrim(NEW.term);
    nlex := coalesce(array_length(tsvector_to_array(to_tsvector('english', NEW.term)), 1), 0);
    IF NEW.kind = 'word' THEN
        IF NEW.term ~ '\s' OR nlex <> 1 THEN
            RAISE EXCEPTION 'text category rule "%": "%" is not one indexable word', NEW.category, NEW.term
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A word rule needs one word that is not an English stop word; use kind phrase for several.';
        END IF;
        NEW.query := plainto_tsquery('english', NEW.term);
    ELSE
        NEW.query := phraseto_tsquery('english', NEW.term);
        IF nlex < 2 OR length(regexp_replace(NEW.query::text, '[^<]', '', 'g')) < 1 THEN
            RAISE EXCEPTION 'text category rule "%": phrase "%" has fewer than two indexable words', NEW.category, NEW.term
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Stop words (not, to, how, ...) are not indexed: a phrase needs at least two other words.';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION cs._text_category_rules_check() IS 'Internal: validates a cs.text_category_rules row and sets its query.';
CREATE TRIGGER text_category_rules_check BEFORE INSERT OR UPDATE ON cs.text_category_rules
    FOR EACH ROW EXECUTE FUNCTION cs._text_category_rules_check();

-- Per category, the OR of its positive rules: a text that matches none of them
-- cannot reach the category's threshold, so most texts cost one match per
-- category instead of one per rule.
CREATE TABLE cs.text_category_filters (
    category  text PRIMARY KEY,
    query     tsquery NOT NULL
);
COMMENT ON TABLE cs.text_category_filters IS
    'Internal: per category the OR of the queries of its positive-weight rules in cs.text_category_rules, rebuilt on every change of the rules.';
COMMENT ON COLUMN cs.text_category_filters.category IS 'The category.';
COMMENT ON COLUMN cs.text_category_filters.query IS 'Matches every text that matches one of the category''s positive-weight rules.';

-- Rebuilds cs.text_category_filters from the rules.
CREATE FUNCTION cs._text_category_filters_rebuild() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    DELETE FROM cs.text_category_filters;
    INSERT INTO cs.text_category_filters (category, query)
    SELECT category, string_agg('(' || query::text || ')', ' | ' ORDER BY kind, term)::tsquery
      FROM cs.text_category_rules WHERE weight > 0
     GROUP BY category;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION cs._text_category_filters_rebuild() IS 'Internal: rebuilds cs.text_category_filters after a change of cs.text_category_rules.';
CREATE TRIGGER text_category_filters_rebuild AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cs.text_category_rules
    FOR EACH STATEMENT EXECUTE FUNCTION cs._text_category_filters_rebuild();

INSERT INTO cs.text_category_rules (category, kind, term, weight, query)
SELECT category, kind, term, weight, ''::tsquery FROM (VALUES
 ('billing', 'word', 'invoice', 1), ('billing', 'word', 'billing', 1), ('billing', 'word', 'bill', 1),
 ('billing', 'word', 'charge', 1), ('billing', 'word', 'overcharged', 1), ('billing', 'word', 'refund', 1),
 ('billing', 'word', 'payment', 1), ('billing', 'word', 'pricing', 1), ('billing', 'word', 'price', 0.6),
 ('billing', 'word', 'receipt', 1), ('billing', 'word', 'vat', 1), ('billing', 'word', 'tax', 0.6),
 ('billing', 'word', 'subscription', 0.5), ('billing', 'phrase', 'credit card', 1),
 ('billing', 'phrase', 'purchase order', 1), ('billing', 'word', 'discount', 0.6),
 ('bug', 'word', 'bug', 1), ('bug', 'word', 'buggy', 1), ('bug', 'word', 'error', 1),
 ('bug', 'word', 'crash', 1), ('bug', 'word', 'broken', 1), ('bug', 'word', 'glitch', 1),
 ('bug', 'word', 'exception', 0.8), ('bug', 'word', 'fail', 0.6), ('bug', 'word', 'wrong', 0.5),
 ('bug', 'phrase', 'stopped working', 1),
 ('bug', 'word', 'blank', 0.5), ('bug', 'word', 'incorrect', 0.6), ('bug', 'word', 'regression', 0.8),
 ('performance', 'word', 'slow', 1), ('performance', 'word', 'latency', 1), ('performance', 'word', 'timeout', 1),
 ('performance', 'word', 'lag', 1), ('performance', 'word', 'laggy', 1), ('performance', 'word', 'sluggish', 1),
 ('performance', 'word', 'performance', 0.7), ('performance', 'word', 'speed', 0.6),
 ('performance', 'phrase', 'takes forever', 1), ('performance', 'word', 'loading', 0.4),
 ('performance', 'word', 'seconds', 0.4), ('performance', 'word', 'minutes', 0.4), ('performance', 'word', 'faster', 0.6),
 ('feature_request', 'phrase', 'feature request', 1), ('feature_request', 'word', 'suggestion', 1),
 ('feature_request', 'word', 'roadmap', 1), ('feature_request', 'word', 'wish', 0.7),
 ('feature_request', 'phrase', 'would be nice', 1), ('feature_request', 'phrase', 'would be great', 1),
 ('feature_request', 'phrase', 'would love', 1), ('feature_request', 'phrase', 'please add', 1),
 ('feature_request', 'phrase', 'add support', 0.8), ('feature_request', 'phrase', 'missing feature', 1),
 ('feature_request', 'word', 'request', 0.5),
 ('feature_request', 'word', 'option', 0.4),
 ('onboarding_howto', 'word', 'tutorial', 1), ('onboarding_howto', 'word', 'documentation', 1),
 ('onboarding_howto', 'word', 'docs', 1), ('onboarding_howto', 'word', 'guide', 1),
 ('onboarding_howto', 'word', 'onboarding', 1), ('onboarding_howto', 'word', 'training', 1),
 ('onboarding_howto', 'word', 'setup', 0.7), ('onboarding_howto', 'phrase', 'get started', 1),
 ('onboarding_howto', 'phrase', 'add a user', 1), ('onboarding_howto', 'word', 'configure', 0.6),
 ('onboarding_howto', 'word', 'question', 0.5), ('onboarding_howto', 'word', 'invite', 0.6),
 ('onboarding_howto', 'word', 'explain', 0.6), ('onboarding_howto', 'word', 'walkthrough', 1),
 ('integration', 'word', 'integration', 1), ('integration', 'word', 'api', 1), ('integration', 'word', 'webhook', 1),
 ('integration', 'word', 'salesforce', 1), ('integration', 'word', 'hubspot', 1), ('integration', 'word', 'slack', 1),
 ('integration', 'word', 'zapier', 1), ('integration', 'word', 'connector', 1), ('integration', 'word', 'sync', 0.7),
 ('integration', 'word', 'import', 0.5), ('integration', 'word', 'export', 0.5), ('integration', 'word', 'endpoint', 1),
 ('integration', 'word', 'token', 0.5), ('integration', 'word', 'jira', 1),
 ('security', 'word', 'security', 1), ('security', 'word', 'breach', 1), ('security', 'word', 'vulnerability', 1),
 ('security', 'word', 'password', 0.7), ('security', 'word', '2fa', 1), ('security', 'word', 'mfa', 1),
 ('security', 'word', 'gdpr', 1), ('security', 'word', 'phishing', 1), ('security', 'phrase', 'unauthorized access', 1),
 ('security', 'phrase', 'data leak', 1), ('security', 'word', 'permissions', 0.6), ('security', 'word', 'compliance', 0.7),
 ('security', 'word', 'sso', 0.6), ('security', 'word', 'encryption', 1), ('security', 'word', 'audit', 0.6),
 ('security', 'word', 'suspicious', 1),
 ('cancellation_intent', 'word', 'cancel', 1), ('cancellation_intent', 'word', 'cancellation', 1),
 ('cancellation_intent', 'word', 'terminate', 1), ('cancellation_intent', 'word', 'termination', 1),
 ('cancellation_intent', 'phrase', 'end our contract', 1), ('cancellation_intent', 'phrase', 'close our account', 1),
 ('cancellation_intent', 'phrase', 'stop paying', 1), ('cancellation_intent', 'word', 'churn', 1),
 ('cancellation_intent', 'word', 'unsubscribe', 0.6), ('cancellation_intent', 'word', 'downgrade', 0.6),
 ('cancellation_intent', 'phrase', 'keep paying', 1),
 ('cancellation_intent', 'phrase', 'won''t renew', 1),
 ('competitor_mention', 'word', 'competitor', 1), ('competitor_mention', 'word', 'alternative', 0.8),
 ('competitor_mention', 'word', 'vendor', 0.6), ('competitor_mention', 'word', 'switch', 0.5),
 ('competitor_mention', 'word', 'evaluating', 0.5), ('competitor_mention', 'word', 'cheaper', 0.5),
 ('competitor_mention', 'phrase', 'another tool', 1), ('competitor_mention', 'phrase', 'another provider', 1),
 ('competitor_mention', 'word', 'migrate', 0.5), ('competitor_mention', 'phrase', 'switch to another', 1)
) AS r (category, kind, term, weight);

-- The categories of a text among the wanted ones (all when NULL), sorted; the
-- first 100 kB count.
CREATE FUNCTION cs._text_categories(body text, wanted text[]) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(m.category ORDER BY m.category), '{}'::text[])
      FROM (SELECT r.category
              FROM pg_catalog.to_tsvector('english'::regconfig, cs._text_prefix(body, 100000)) v,
                   cs.text_category_filters f, cs.text_category_rules r
             WHERE (wanted IS NULL OR f.category OPERATOR(pg_catalog.=) ANY (wanted))
               AND v OPERATOR(pg_catalog.@@) f.query
               AND r.category OPERATOR(pg_catalog.=) f.category
               AND v OPERATOR(pg_catalog.@@) r.query
             GROUP BY r.category
            HAVING sum(r.weight) >= 1) m
$$;
COMMENT ON FUNCTION cs._text_categories(text, text[]) IS
    'Internal: cs.ticket_category restricted to the wanted categories (all when wanted is NULL); NULL text gives {}.';

-- Not STRICT, so that it inlines into the calling query: a wrapper that is
-- executed as a function of its own would plan the inner query on every call.
CREATE FUNCTION cs.ticket_category(body text) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN body IS NOT NULL THEN cs._text_categories(body, NULL) END;
COMMENT ON FUNCTION cs.ticket_category(text) IS
    'Categories of a ticket or comment text (billing, bug, performance, feature_request, onboarding_howto, integration, security, cancellation_intent, competitor_mention by default), sorted, from the rules in cs.text_category_rules matched after English stemming; the first 100 kB of the text count; {} when none, NULL for NULL.';

-- Statistics for the planner from the start: without them it scans these
-- small tables through their indexes, several times slower per text.
ANALYZE cs.text_category_rules, cs.text_category_filters;

-- Cache of the text signals the features read: a full refresh classifies
-- about two texts per customer, each stemmed for the category prefilter, and
-- most of them did not change since the refresh before.  Entries are checked
-- against the text and the rules at every read, so a missing or stale entry
-- never changes a feature: it is only slower (the text is classified inline).
CREATE TABLE cs.text_signals (
    source       text    NOT NULL CHECK (source IN ('ticket', 'nps_comment')),
    id           bigint  NOT NULL,
    text_hash    bigint  NOT NULL,
    rules_stamp  bigint  NOT NULL,
    sentiment    float8,
    categories   text[],
    PRIMARY KEY (source, id)
);
COMMENT ON TABLE cs.text_signals IS
    'Internal: cached text signals of the tickets and NPS comments of the last 90 days, filled by cs._refresh_text_signals() (full refreshes) and read by cs.compute_features() when text_hash and rules_stamp still match.';
COMMENT ON COLUMN cs.text_signals.source IS 'ticket (cs.support_tickets) or nps_comment (cs.nps_responses).';
COMMENT ON COLUMN cs.text_signals.id IS 'The id of the ticket or NPS response.';
COMMENT ON COLUMN cs.text_signals.text_hash IS 'hashtextextended(text, 0) of the text classified: "subject. body" of a ticket (trimmed, blank parts left out), the comment of an NPS response.';
COMMENT ON COLUMN cs.text_signals.rules_stamp IS 'cs._text_signals_stamp() when the entry was computed; an entry of another stamp is ignored.';
COMMENT ON COLUMN cs.text_signals.sentiment IS 'cs.sentiment of a ticket''s text; NULL for NPS comments (the features take no sentiment of them in the 90-day window).';
COMMENT ON COLUMN cs.text_signals.categories IS 'Categories cancellation_intent and competitor_mention of the text, as cs.compute_features() computes them: NULL when the text matches no positive rule of either.';

-- What the cached signals depend on besides the text: the rules and filters of
-- the two categories the features count, and the extension version (the
-- sentiment lexicon ships with it).  A change to any of them gives another
-- stamp, read in the same snapshot as the rules themselves, so concurrent
-- rule changes cannot leave an entry that passes for current.
CREATE FUNCTION cs._text_signals_stamp() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT hashtextextended(concat_ws(E'\n',
        (SELECT extversion FROM pg_extension WHERE extname = 'cscopilot'),
        (SELECT string_agg(concat_ws(' ', category, kind, term, weight, query), E'\n' ORDER BY category, kind, term)
           FROM cs.text_category_rules WHERE category IN ('cancellation_intent', 'competitor_mention')),
        '--',
        (SELECT string_agg(concat_ws(' ', category, query), E'\n' ORDER BY category)
           FROM cs.text_category_filters WHERE category IN ('cancellation_intent', 'competitor_mention'))), 0)
$$;
COMMENT ON FUNCTION cs._text_signals_stamp() IS
    'Internal: hash of what cached text signals depend on besides the text (extension version, rules and filters of cancellation_intent and competitor_mention); cs.text_signals entries of another stamp are ignored.';

-- Brings the cache up to date for the texts of the last 90 days (relative to
-- now()): computes the entries missing or stale, removes those of tickets and
-- responses gone or older than 97 days (a week of margin, so that texts
-- leaving the window are not computed again by a refresh with an earlier
-- as_of).  The expressions are those of cs.compute_features(), character for
-- character.  Returns the number of entries computed.
CREATE FUNCTION cs._refresh_text_signals() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
SET jit = off
SET work_mem = '256MB'
AS $$
DECLARE
    stamp bigint := cs._text_signals_stamp();
    n bigint;
BEGIN
    INSERT INTO cs.text_signals AS s (source, id, text_hash, rules_stamp, sentiment, categories)
    SELECT x.source, x.id, x.h, stamp, x.sent, x.cats
      FROM (SELECT 'ticket' AS source, x.id, x.h, cs.sentiment(txt) AS sent,
                   CASE WHEN to_tsvector('english', cs._text_prefix(txt, 100000)) @@ mf.q
                        THEN cs._text_categories(txt, '{cancellation_intent,competitor_mention}') END AS cats
              FROM (SELECT id, txt, hashtextextended(txt, 0) AS h
                      FROM (-- OFFSET 0: each text is built once, not once per use
                            SELECT id,
                                   nullif(btrim(concat_ws('. ', nullif(btrim(subject), ''), nullif(btrim(body), ''))), '') AS txt
                              FROM cs.support_tickets
                             WHERE opened_at > now() - interval '90 days' AND opened_at <= now()
                            OFFSET 0) t
                     WHERE txt IS NOT NULL) x
             CROSS JOIN (SELECT string_agg('(' || query::text || ')', ' | ')::tsquery AS q
                           FROM cs.text_category_filters
                          WHERE category IN ('cancellation_intent', 'competitor_mention')) mf
             WHERE NOT EXISTS (SELECT 1 FROM cs.text_signals c
                                WHERE c.source = 'ticket' AND c.id = x.id
                                  AND c.text_hash = x.h AND c.rules_stamp = stamp)
            UNION ALL
            SELECT 'nps_comment', x.id, x.h, NULL,
                   CASE WHEN to_tsvector('english', cs._text_prefix(comment, 100000)) @@ mf.q
                        THEN cs._text_categories(comment, '{cancellation_intent,competitor_mention}') END
              FROM (SELECT id, comment, hashtextextended(comment, 0) AS h
                      FROM cs.nps_responses
                     WHERE responded_at > now() - interval '90 days' AND responded_at <= now()
                       AND btrim(comment) <> '') x
             CROSS JOIN (SELECT string_agg('(' || query::text || ')', ' | ')::tsquery AS q
                           FROM cs.text_category_filters
                          WHERE category IN ('cancellation_intent', 'competitor_mention')) mf
             WHERE NOT EXISTS (SELECT 1 FROM cs.text_signals c
                                WHERE c.source = 'nps_comment' AND c.id = x.id
                                  AND c.text_hash = x.h AND c.rules_stamp = stamp)) x
    ON CONFLICT (source, id) DO UPDATE
       SET text_hash = excluded.text_hash, rules_stamp = excluded.rules_stamp,
           sentiment = excluded.sentiment, categories = excluded.categories;
    GET DIAGNOSTICS n = ROW_COUNT;

    DELETE FROM cs.text_signals s
     WHERE s.source = 'ticket'
       AND NOT EXISTS (SELECT 1 FROM cs.support_tickets t
                        WHERE t.id = s.id AND t.opened_at > now() - interval '97 days');
    DELETE FROM cs.text_signals s
     WHERE s.source = 'nps_comment'
       AND NOT EXISTS (SELECT 1 FROM cs.nps_responses r
                        WHERE r.id = s.id AND r.responded_at > now() - interval '97 days');
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._refresh_text_signals() IS
    'Internal: computes the cs.text_signals entries missing or stale for the tickets and NPS comments of the last 90 days and removes those of rows gone or older than 97 days; returns the number computed.  Called by full refreshes.';

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
CREATE FUNCTION cs._usage_summary_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_summary_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION cs._usage_summary_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'cs_usage_summary_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION cs._usage_summary_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_summary_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._usage_summary_combine(internal, internal) IS 'Internal: combine function of cs.usage_summary (parallel aggregation).';
COMMENT ON FUNCTION cs._usage_summary_serialize(internal) IS 'Internal: serializes a cs.usage_summary state for parallel aggregation.';
COMMENT ON FUNCTION cs._usage_summary_deserialize(bytea, internal) IS 'Internal: deserializes a cs.usage_summary state for parallel aggregation.';
CREATE AGGREGATE cs.usage_summary(user_id text, feature text, quantity float8, occurred_at timestamptz, as_of timestamptz) (
    SFUNC = cs._usage_summary_trans, STYPE = internal, FINALFUNC = cs._usage_summary_final,
    COMBINEFUNC = cs._usage_summary_combine, SERIALFUNC = cs._usage_summary_serialize,
    DESERIALFUNC = cs._usage_summary_deserialize, PARALLEL = SAFE);
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
 (30, 'seats_licensed',             'Seats in the licence', 'customers'),
 (31, 'ticket_sentiment_30d',       'Mean sentiment (cs.sentiment of subject and body, -1..1) of tickets with text opened in the last 30 days', 'support_tickets'),
 (32, 'ticket_sentiment_90d',       'Mean sentiment of tickets with text opened in the last 90 days', 'support_tickets'),
 (33, 'negative_ticket_share_90d',  'Share of tickets with text opened in the last 90 days whose sentiment is -0.1 or less (negative)', 'support_tickets'),
 (34, 'cancellation_mentions_90d',  'Tickets and NPS comments of the last 90 days in category cancellation_intent (cs.ticket_category); NaN without any text', 'support_tickets'),
 (35, 'competitor_mentions_90d',    'Tickets and NPS comments of the last 90 days in category competitor_mention; NaN without any text', 'support_tickets'),
 (36, 'nps_comment_sentiment',      'Sentiment of the most recent non-blank NPS comment', 'nps_responses');

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
-- the usage aggregate combines partial states: two workers took a full
-- refresh's features from 14.3 s to 10.4 s at 100,000 customers (the refresh
-- itself runs without parallel query, which slowed its other stages)
SET max_parallel_workers_per_gather = 2
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
    ), mf AS (
        -- one query matching any positive rule of the two categories: the
        -- few texts it matches go through the rules
        SELECT string_agg('(' || query::text || ')', ' | ')::tsquery AS q,
               cs._text_signals_stamp() AS stamp
          FROM cs.text_category_filters
         WHERE category IN ('cancellation_intent', 'competitor_mention')
    ), tt AS (
        -- texts of the tickets of the last 90 days: subject and body as
        -- sentences; the cached signals of a text when it and the rules are
        -- those they were computed from, else computed here
        SELECT x.customer_id, x.opened_at,
               CASE WHEN ts.id IS NOT NULL THEN ts.sentiment ELSE cs.sentiment(txt) END AS sent,
               CASE WHEN ts.id IS NOT NULL THEN ts.categories
                    WHEN to_tsvector('english', cs._text_prefix(txt, 100000)) @@ mf.q
                    THEN cs._text_categories(txt, '{cancellation_intent,competitor_mention}') END AS cats
          FROM (SELECT id, customer_id, opened_at,
                       nullif(btrim(concat_ws('. ', nullif(btrim(subject), ''), nullif(btrim(body), ''))), '') AS txt
                  FROM cs.support_tickets
                 WHERE %2$s AND opened_at > $2 - interval '90 days' AND opened_at <= $2
                OFFSET 0) x  -- OFFSET 0: each text is built once, not once per use
         CROSS JOIN mf
          LEFT JOIN %3$s ts ON ts.source = 'ticket' AND ts.id = x.id
                AND ts.text_hash = hashtextextended(x.txt, 0) AND ts.rules_stamp = mf.stamp
         WHERE txt IS NOT NULL
    ), nc AS (
        SELECT r.customer_id,
               CASE WHEN ts.id IS NOT NULL THEN ts.categories
                    WHEN to_tsvector('english', cs._text_prefix(comment, 100000)) @@ mf.q
                    THEN cs._text_categories(comment, '{cancellation_intent,competitor_mention}') END AS cats
          FROM cs.nps_responses r CROSS JOIN mf
          LEFT JOIN %3$s ts ON ts.source = 'nps_comment' AND ts.id = r.id
                AND ts.text_hash = hashtextextended(r.comment, 0) AND ts.rules_stamp = mf.stamp
         WHERE %4$s AND responded_at > $2 - interval '90 days' AND responded_at <= $2
           AND btrim(comment) <> ''
    ), tx AS (
        SELECT customer_id,
               avg(sent) FILTER (WHERE src = 't' AND opened_at > $2 - interval '30 days') AS sent30,
               avg(sent) FILTER (WHERE src = 't') AS sent90,
               avg((sent <= -0.1)::int) FILTER (WHERE src = 't') AS neg_share,
               count(*) FILTER (WHERE 'cancellation_intent' = ANY (cats)) AS cancel90,
               count(*) FILTER (WHERE 'competitor_mention' = ANY (cats)) AS competitor90
          FROM (SELECT customer_id, 't' AS src, opened_at, sent, cats FROM tt
                UNION ALL
                SELECT customer_id, 'n', NULL, NULL, cats FROM nc) y
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
               (array_agg(score ORDER BY responded_at DESC, id DESC))[2] AS prev_nps,
               (array_agg(cs.sentiment(comment) ORDER BY responded_at DESC, id DESC)
                    FILTER (WHERE btrim(comment) <> ''))[1] AS comment_sent
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
             c.seats_licensed,
             tx.sent30,
             tx.sent90,
             tx.neg_share,
             tx.cancel90,
             tx.competitor90,
             n.comment_sent
           ]::float8[])
      FROM c
      LEFT JOIN u ON u.customer_id = c.id
      LEFT JOIN u_old uo ON uo.customer_id = c.id
      LEFT JOIN t ON t.customer_id = c.id
      LEFT JOIN t_open ON t_open.customer_id = c.id
      LEFT JOIN tx ON tx.customer_id = c.id
      LEFT JOIN i ON i.customer_id = c.id
      LEFT JOIN e ON e.customer_id = c.id
      LEFT JOIN n ON n.customer_id = c.id
      LEFT JOIN k ON k.customer_id = c.id
      LEFT JOIN s ON s.customer_id = c.id
    $q$, replace(f, 'customer_id', 'id'), f,
       -- the cache of text signals, for the users who may read it (it is
       -- internal: viewers and CSMs compute every text)
       CASE WHEN has_table_privilege('cs.text_signals', 'SELECT') THEN 'cs.text_signals'
            ELSE '(SELECT NULL::text AS source, NULL::bigint AS id, NULL::bigint AS text_hash,
                          NULL::bigint AS rules_stamp, NULL::float8 AS sentiment, NULL::text[] AS categories
                    WHERE false)' END,
       replace(f, 'customer_id', 'r.customer_id'))
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
    -- An insert keeps a given time (a restore brings the original one back).
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
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
-- inputs that cost the most score (effective weight x (1 - score)).  The
-- per-customer arithmetic is C (cs._health_of, src/health.c) over profiles and
-- populations it reads once per query.
CREATE FUNCTION cs._health_of(customer_id uuid, segment text, features float4[], as_of timestamptz)
RETURNS cs.customer_health_scores
AS 'MODULE_PATHNAME', 'cs_health_of'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._health_of(uuid, text, float4[], timestamptz) IS
    'Internal: the cs.compute_health row of one customer from its segment and feature vector (a row of NULLs when no profile applies); reads the profiles and percentile populations once per query.';

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
    -- One call per customer; the offset keeps (h).* from calling it once per column.
    RETURN QUERY EXECUTE format($q$
    SELECT (h).*
      FROM (SELECT cs._health_of(fv.customer_id, c.segment, fv.features, fv.as_of) AS h
              FROM (%s) fv
              JOIN cs.customers c ON c.id = fv.customer_id
            OFFSET 0) s
     WHERE (h).customer_id IS NOT NULL
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
-- Parallel query made a full refresh slower, not faster: 67.0 s against 40.9 s
-- at 100,000 customers (make bench, 2 cores); only cs.compute_features, whose
-- usage aggregate combines partial states, sets two workers again.
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    n bigint;
    t timestamptz := now();
BEGIN
    -- A full refresh first brings the cache of text signals up to date, so
    -- that the features classify only the texts new or changed since the last.
    IF ids IS NULL THEN
        PERFORM cs._refresh_text_signals();
    END IF;
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
    -- One refresh at a time per database: concurrent refreshes upsert the
    -- same result rows and remove the same dirty marks in different orders.
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot'), 1);
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
    -- One refresh at a time per database: concurrent refreshes upsert the
    -- same result rows and remove the same dirty marks in different orders.
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot'), 1);
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

CREATE FUNCTION cs._sparkline(at timestamptz, ts timestamptz[], scores numeric[]) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_sparkline' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._sparkline(timestamptz, timestamptz[], numeric[]) IS
    'Internal: twelve cs.spark() glyphs, oldest first, for the latest score at or before at minus 11, 10, ... 0 weeks, from ascending timestamps and their scores.';

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
       -- one range scan of the 12 weeks (and the score just before them)
       (SELECT cs._sparkline(h.calculated_at, array_agg(p.calculated_at ORDER BY p.calculated_at),
                             array_agg(p.overall_score ORDER BY p.calculated_at))
          FROM cs.customer_health_scores p
         WHERE p.customer_id = c.id AND p.calculated_at <= h.calculated_at
           AND p.calculated_at >= coalesce((SELECT q.calculated_at FROM cs.customer_health_scores q
                                             WHERE q.customer_id = c.id
                                               AND q.calculated_at <= h.calculated_at - interval '11 weeks'
                                             ORDER BY q.calculated_at DESC LIMIT 1), '-infinity')) AS sparkline,
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
    IF name IS NULL OR version IS NULL THEN
        RAISE EXCEPTION 'model name and version must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
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

-- The same, times the freshness of the data sources (cs.data_freshness_factor(),
-- 1 when every monitored source is fresh): a score computed while sources are
-- stale is built on old signals and says so.
--   confidence = present_share * (0.5 + |p - 0.5|) * freshness
CREATE FUNCTION cs.risk_confidence(features float4[], probability float8, freshness float8)
RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN cs.present_share(features) * (0.5 + abs(probability - 0.5)) * least(greatest(freshness, 0), 1);
COMMENT ON FUNCTION cs.risk_confidence(float4[], float8, float8) IS
    'Confidence 0-1 of a risk prediction on possibly stale data: share of present inputs times (0.5 + distance of the probability from 0.5) times the freshness factor (clamped to 0-1).';

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
-- explain_min (below it, cs.explain_risk explains on demand).  When the kind
-- also has a challenger, the customers of the A/B share
-- (cs.in_challenger_arm) are served the challenger's score instead, and the
-- score of the model not served is kept in cs.model_shadow_scores, so both
-- models are judged on the same customers and prediction times.  Returns the
-- number of assessments written.
CREATE FUNCTION cs._score_risk(ids uuid[], explain_min float8 DEFAULT 0.1)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m     record;
    ch    record;
    share float8;
    n     bigint := 0;
    added bigint;
    arm   boolean;
    served text;
    served_label text;
    other text;
    other_label text;
    fresh float8 := cs.data_freshness_factor();
BEGIN
    FOR m IN SELECT x.name, x.version, x.kind FROM cs.models x
              WHERE x.status = 'champion' AND x.kind IN ('churn', 'downgrade', 'payment')
              ORDER BY x.kind
    LOOP
        SELECT x.name, x.version INTO ch FROM cs.models x WHERE x.status = 'challenger' AND x.kind = m.kind;
        share := CASE WHEN FOUND THEN cs._challenger_share() ELSE 0 END;
        FOREACH arm IN ARRAY ARRAY[false, true] LOOP
            CONTINUE WHEN arm AND ch.name IS NULL;
            -- the champion by name (as before); the challenger by name:vN
            served := CASE WHEN arm THEN ch.name || ':v' || ch.version ELSE m.name END;
            served_label := CASE WHEN arm THEN ch.name || ':v' || ch.version ELSE m.name || ':v' || m.version END;
            INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, risk_factors, confidence_score,
                                             model_version, created_at)
            SELECT f.customer_id, m.kind, round(e.p::numeric, 2),
                   -- exact SHAP (about 35 us a row): stored only where a CSM will look
                   CASE WHEN e.p >= explain_min THEN cs.explain_json(served, f.features, 5) -> 'factors' END,
                   round(cs.risk_confidence(f.features, e.p, fresh)::numeric, 2), served_label, f.as_of
              FROM cs.customer_features f
             CROSS JOIN LATERAL (SELECT cs.predict(served, f.features) AS p) e
             WHERE (ids IS NULL OR f.customer_id = ANY (ids))
               AND cs.in_challenger_arm(f.customer_id, share) = arm;
            GET DIAGNOSTICS added = ROW_COUNT;
            n := n + added;
            CONTINUE WHEN ch.name IS NULL;
            -- the model not served, in shadow, at the same precision
            other := CASE WHEN arm THEN m.name ELSE ch.name || ':v' || ch.version END;
            other_label := CASE WHEN arm THEN m.name || ':v' || m.version ELSE ch.name || ':v' || ch.version END;
            INSERT INTO cs.model_shadow_scores (customer_id, risk_type, model_version, risk_score, created_at)
            SELECT f.customer_id, m.kind, other_label, round(cs.predict(other, f.features)::numeric, 2), f.as_of
              FROM cs.customer_features f
             WHERE (ids IS NULL OR f.customer_id = ANY (ids))
               AND cs.in_challenger_arm(f.customer_id, share) = arm;
        END LOOP;
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
COMMENT ON FUNCTION cs._score_risk(uuid[], float8) IS 'Internal: appends risk assessments (score, confidence lowered by stale sources, model version, and the top SHAP factors when the risk is at least explain_min) for the stored feature vectors of the given customers (all when NULL) with every deployed risk champion, or its challenger for customers of the A/B share; the score of the model not served goes to cs.model_shadow_scores. Returns the number written.';

-- source: src/sql/38_lifecycle.sql
-- Model lifecycle: outcome-based performance, calibration, input drift,
-- champion and challenger (shadow or A/B), the promotion policy, scheduled
-- retraining and model cards.  Reference distributions are computed in C
-- (src/lifecycle.c); everything else is SQL.
--
-- Outcomes.  A prediction (a row of cs.risk_assessments, or of
-- cs.model_shadow_scores for the model not served) made at time t is judged
-- once t is at least cscopilot.outcome_horizon days old: its outcome is 1 when
-- the customer churned (cs.customers.churned_at) within the horizon after t,
-- else 0.  Predictions for customers that had churned by t are left out.

------------------------------------------------------------------------------
-- Settings (defined in C; these defaults apply when the library is not loaded)
------------------------------------------------------------------------------

CREATE FUNCTION cs._outcome_horizon() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
RETURN make_interval(days => coalesce(nullif(current_setting('cscopilot.outcome_horizon', true), '')::int, 90));
COMMENT ON FUNCTION cs._outcome_horizon() IS 'The cscopilot.outcome_horizon setting as an interval (90 days when it is not defined).';

CREATE FUNCTION cs._challenger_share() RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(nullif(current_setting('cscopilot.challenger_share', true), '')::float8, 0);
COMMENT ON FUNCTION cs._challenger_share() IS 'The cscopilot.challenger_share setting (0 when it is not defined).';

CREATE FUNCTION cs._promotion_auc_margin() RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(nullif(current_setting('cscopilot.promotion_auc_margin', true), '')::float8, 0.02);
COMMENT ON FUNCTION cs._promotion_auc_margin() IS 'The cscopilot.promotion_auc_margin setting (0.02 when it is not defined).';

CREATE FUNCTION cs._promotion_min_outcomes() RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(nullif(current_setting('cscopilot.promotion_min_outcomes', true), '')::int, 200);
COMMENT ON FUNCTION cs._promotion_min_outcomes() IS 'The cscopilot.promotion_min_outcomes setting (200 when it is not defined).';

CREATE FUNCTION cs._admin_role() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(nullif(current_setting('cscopilot.admin_role', true), ''),
                (SELECT n.nspowner::regrole::text FROM pg_catalog.pg_namespace n WHERE n.nspname = 'cs'));
COMMENT ON FUNCTION cs._admin_role() IS 'The role model alerts are assigned to: cscopilot.admin_role, else the owner of schema cs.';

-- The probability at which a churn risk raises an alert: the threshold of the
-- churn_risk_high rule when it is a plain churn_risk >= x (or > x) condition,
-- else 0.6 (that rule's shipped threshold).  Used for precision and recall.
CREATE FUNCTION cs.risk_alert_threshold() RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
RETURN coalesce((SELECT (r.condition ->> 'value')::float8 FROM cs.alert_rules r
                  WHERE r.name = 'churn_risk_high' AND r.enabled AND r.condition ->> 'score' = 'churn_risk'
                    AND r.condition ->> 'op' IN ('>=', '>')), 0.6);
COMMENT ON FUNCTION cs.risk_alert_threshold() IS
    'Risk at which an alert is raised, for precision and recall: the value of the churn_risk_high rule when its condition is churn_risk >= value (or >), else 0.6.';

------------------------------------------------------------------------------
-- Champion and challenger
------------------------------------------------------------------------------

-- Whether a customer is in the challenger arm of an A/B split of the given
-- share: a hash of its id, the same on every run, so a customer keeps its arm.
CREATE FUNCTION cs.in_challenger_arm(customer_id uuid, share float8) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN share > 0 AND (hashtextextended(customer_id::text, 0) & 1073741823) / 1073741824.0 < share;
COMMENT ON FUNCTION cs.in_challenger_arm(uuid, float8) IS
    'Whether the customer is served by the challenger under an A/B split giving it share (0-1) of the customers: a deterministic hash of the customer id.';

CREATE TABLE cs.model_shadow_scores (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id   uuid NOT NULL REFERENCES cs.customers (id),
    risk_type     varchar(50) NOT NULL CHECK (risk_type IN ('churn', 'downgrade', 'payment')),
    model_version varchar(50) NOT NULL,
    risk_score    numeric(3,2) NOT NULL CHECK (risk_score BETWEEN 0 AND 1),
    created_at    timestamptz NOT NULL
);
CREATE INDEX model_shadow_scores_model_time_idx ON cs.model_shadow_scores (model_version, created_at);
COMMENT ON TABLE cs.model_shadow_scores IS 'Scores of the model not served while a challenger runs (the challenger in shadow, or the champion for customers of the A/B share): kept to judge both on the same outcomes, never shown in cs.risk_assessments or the views.';
COMMENT ON COLUMN cs.model_shadow_scores.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.model_shadow_scores.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.model_shadow_scores.risk_type IS 'churn, downgrade or payment.';
COMMENT ON COLUMN cs.model_shadow_scores.model_version IS 'Model name and version (name:vN) that produced the score.';
COMMENT ON COLUMN cs.model_shadow_scores.risk_score IS 'Predicted probability 0-1, rounded like cs.risk_assessments.risk_score.';
COMMENT ON COLUMN cs.model_shadow_scores.created_at IS 'Point in time of the feature vector scored (same as the served assessment).';

-- Makes a model version the challenger of its kind (custom: of its name); an
-- earlier challenger is retired.
CREATE FUNCTION cs.set_challenger(name text, version int) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m cs.models;
BEGIN
    SELECT * INTO m FROM cs.models AS x WHERE x.name = set_challenger.name AND x.version = set_challenger.version
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object', HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    IF m.status = 'champion' THEN
        RAISE EXCEPTION 'model "%" version % is the champion', name, version
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A challenger is judged against the champion: pick another version.';
    END IF;
    UPDATE cs.models AS x SET status = 'retired'
     WHERE x.status = 'challenger' AND x.id <> m.id
       AND ((m.kind <> 'custom' AND x.kind = m.kind) OR (m.kind = 'custom' AND x.kind = 'custom' AND x.name = m.name));
    UPDATE cs.models AS x SET status = 'challenger' WHERE x.id = m.id;
END;
$$;
COMMENT ON FUNCTION cs.set_challenger(text, int) IS
    'Makes a model version the challenger of its kind: it is scored beside the champion (in shadow, or served to the cscopilot.challenger_share of customers) and judged on the same outcomes. An earlier challenger is retired; cs.deploy_model promotes.';

------------------------------------------------------------------------------
-- Outcome metrics
------------------------------------------------------------------------------

-- Binary classification metrics of probabilities p against outcomes y (0/1):
--   auc: rank-sum (Mann-Whitney) AUC, tied scores sharing their mean rank;
--   log_loss: mean of -(y ln p + (1-y) ln(1-p)), p clamped to [1e-15, 1-1e-15];
--   brier: mean of (p - y)^2;
--   precision and recall of p >= threshold;
--   lift_top_decile: outcome rate among the top decile (scores at least the
--     ceil(n/10)-th highest score, ties included) over the overall rate.
CREATE FUNCTION cs.classification_metrics(p float8[], y int[], threshold float8,
    OUT n bigint, OUT positives bigint, OUT auc float8, OUT log_loss float8, OUT brier float8,
    OUT "precision" float8, OUT recall float8, OUT lift_top_decile float8)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
WITH d AS (
    SELECT u.p, u.y FROM unnest(p, y) AS u(p, y) WHERE u.p IS NOT NULL AND u.y IS NOT NULL
), r AS (
    SELECT d.p, d.y,
           (rank() OVER (ORDER BY d.p) + (count(*) OVER (PARTITION BY d.p) - 1) / 2.0)::float8 AS midrank,
           least(greatest(d.p, 1e-15), 1 - 1e-15) AS pc
      FROM d
), a AS (
    SELECT count(*) AS n, coalesce(sum(r.y), 0) AS pos,
           sum(r.midrank) FILTER (WHERE r.y = 1) AS rank_sum,
           avg(-(r.y * ln(r.pc) + (1 - r.y) * ln(1 - r.pc))) AS ll,
           avg((r.p - r.y) ^ 2) AS br,
           count(*) FILTER (WHERE r.p >= threshold) AS flagged,
           count(*) FILTER (WHERE r.p >= threshold AND r.y = 1) AS tp
      FROM r
), cut AS (
    SELECT d.p FROM d ORDER BY d.p DESC
    OFFSET greatest(ceil((SELECT a.n FROM a) / 10.0)::bigint - 1, 0) LIMIT 1
), top AS (
    SELECT avg(d.y)::float8 AS rate FROM d WHERE d.p >= (SELECT cut.p FROM cut)
)
SELECT a.n, a.pos,
       CASE WHEN a.pos > 0 AND a.pos < a.n
            THEN (a.rank_sum - a.pos * (a.pos + 1) / 2.0) / (a.pos::float8 * (a.n - a.pos)) END,
       a.ll, a.br,
       CASE WHEN a.flagged > 0 THEN a.tp::float8 / a.flagged END,
       CASE WHEN a.pos > 0 THEN a.tp::float8 / a.pos END,
       CASE WHEN a.pos > 0 THEN (SELECT top.rate FROM top) / (a.pos::float8 / a.n) END
  FROM a
$$;
COMMENT ON FUNCTION cs.classification_metrics(float8[], int[], float8) IS
    'Metrics of probabilities p against 0/1 outcomes y: n, positives, AUC (ties share their mean rank; NULL with one class), log loss (p clamped to 1e-15), Brier score, precision and recall of p >= threshold, and lift of the top decile (scores at least the ceil(n/10)-th highest).';

-- Every judged prediction of every registered model: served and shadow scores
-- with their outcome; one row per model, customer and prediction time.
CREATE VIEW cs.model_outcomes WITH (security_invoker = true) AS
WITH scores AS (
    SELECT ra.model_version, ra.risk_type, ra.customer_id, ra.created_at, ra.risk_score, 'served' AS scored
      FROM cs.risk_assessments ra
     WHERE ra.created_at <= now() - cs._outcome_horizon()
    UNION ALL
    SELECT s.model_version, s.risk_type, s.customer_id, s.created_at, s.risk_score, 'shadow'
      FROM cs.model_shadow_scores s
     WHERE s.created_at <= now() - cs._outcome_horizon()
)
SELECT DISTINCT ON (m.id, s.customer_id, s.created_at)
       m.name, m.version, m.kind, s.customer_id, s.created_at, s.risk_score::float8 AS risk_score,
       (c.churned_at IS NOT NULL AND c.churned_at <= s.created_at + cs._outcome_horizon())::int AS churned,
       s.scored
  FROM scores s
  JOIN cs.models m ON m.name || ':v' || m.version = s.model_version AND m.kind = s.risk_type
  JOIN cs.customers c ON c.id = s.customer_id
 WHERE c.churned_at IS NULL OR c.churned_at > s.created_at
 ORDER BY m.id, s.customer_id, s.created_at, s.scored;
COMMENT ON VIEW cs.model_outcomes IS 'Predictions old enough to be judged (made at least cscopilot.outcome_horizon ago, customer not churned yet then), served or shadow, with their outcome.';
COMMENT ON COLUMN cs.model_outcomes.name IS 'Model name.';
COMMENT ON COLUMN cs.model_outcomes.version IS 'Model version.';
COMMENT ON COLUMN cs.model_outcomes.kind IS 'Risk kind the model predicts.';
COMMENT ON COLUMN cs.model_outcomes.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.model_outcomes.created_at IS 'Point in time of the prediction.';
COMMENT ON COLUMN cs.model_outcomes.risk_score IS 'Predicted probability.';
COMMENT ON COLUMN cs.model_outcomes.churned IS '1 when the customer churned within the horizon after the prediction, else 0.';
COMMENT ON COLUMN cs.model_outcomes.scored IS 'served (cs.risk_assessments) or shadow (cs.model_shadow_scores).';

CREATE VIEW cs.model_performance WITH (security_invoker = true) AS
SELECT m.name, m.version, m.kind, m.status,
       cs._outcome_horizon() AS horizon,
       cs.risk_alert_threshold() AS threshold,
       coalesce(x.n, 0) AS n, coalesce(x.positives, 0) AS positives,
       x.auc, x.log_loss, x.brier, x."precision", x.recall, x.lift_top_decile,
       g.first_prediction, g.last_prediction,
       (m.metrics ->> 'auc')::float8 AS validation_auc
  FROM cs.models m
  LEFT JOIN LATERAL (SELECT array_agg(o.risk_score) AS p, array_agg(o.churned) AS y,
                            min(o.created_at) AS first_prediction, max(o.created_at) AS last_prediction
                       FROM cs.model_outcomes o WHERE o.name = m.name AND o.version = m.version) g ON true
  LEFT JOIN LATERAL cs.classification_metrics(g.p, g.y, cs.risk_alert_threshold()) x ON true
 WHERE m.kind IN ('churn', 'downgrade', 'payment');
COMMENT ON VIEW cs.model_performance IS 'Per risk model version: metrics of its predictions against real outcomes (cs.model_outcomes) beside its validation AUC.';
COMMENT ON COLUMN cs.model_performance.name IS 'Model name.';
COMMENT ON COLUMN cs.model_performance.version IS 'Model version.';
COMMENT ON COLUMN cs.model_performance.kind IS 'churn, downgrade or payment.';
COMMENT ON COLUMN cs.model_performance.status IS 'candidate, challenger, champion or retired.';
COMMENT ON COLUMN cs.model_performance.horizon IS 'Outcome horizon (cscopilot.outcome_horizon): predictions are judged once this old.';
COMMENT ON COLUMN cs.model_performance.threshold IS 'Alert threshold precision and recall are taken at (cs.risk_alert_threshold()).';
COMMENT ON COLUMN cs.model_performance.n IS 'Judged predictions.';
COMMENT ON COLUMN cs.model_performance.positives IS 'Judged predictions whose customer churned within the horizon.';
COMMENT ON COLUMN cs.model_performance.auc IS 'ROC AUC, tied scores sharing their mean rank; NULL with one class.';
COMMENT ON COLUMN cs.model_performance.log_loss IS 'Mean log loss (probabilities clamped to 1e-15).';
COMMENT ON COLUMN cs.model_performance.brier IS 'Brier score: mean squared error of the probability.';
COMMENT ON COLUMN cs.model_performance."precision" IS 'Share of predictions at or above the threshold that churned.';
COMMENT ON COLUMN cs.model_performance.recall IS 'Share of churned predictions at or above the threshold.';
COMMENT ON COLUMN cs.model_performance.lift_top_decile IS 'Churn rate of the top-scored decile over the overall churn rate.';
COMMENT ON COLUMN cs.model_performance.first_prediction IS 'Earliest judged prediction.';
COMMENT ON COLUMN cs.model_performance.last_prediction IS 'Latest judged prediction.';
COMMENT ON COLUMN cs.model_performance.validation_auc IS 'AUC on the validation split at training (metrics.auc), for comparison.';

-- Predicted against observed churn by decile of the predicted probability
-- (ntile over the judged predictions ordered by score, customer, time).
CREATE FUNCTION cs.model_calibration(name text, version int)
RETURNS TABLE (decile int, n bigint, mean_predicted float8, observed_rate float8, min_predicted float8, max_predicted float8)
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
BEGIN ATOMIC
    SELECT b.decile, count(*), avg(b.risk_score), avg(b.churned)::float8, min(b.risk_score), max(b.risk_score)
      FROM (SELECT o.risk_score, o.churned,
                   ntile(10) OVER (ORDER BY o.risk_score, o.customer_id, o.created_at) AS decile
              FROM cs.model_outcomes o
             WHERE o.name = model_calibration.name AND o.version = model_calibration.version) b
     GROUP BY b.decile
     ORDER BY b.decile;
END;
COMMENT ON FUNCTION cs.model_calibration(text, int) IS
    'Calibration of a model version on judged predictions: per decile of predicted probability, count, mean predicted, observed churn rate, and the score range.';

------------------------------------------------------------------------------
-- Drift
------------------------------------------------------------------------------

CREATE FUNCTION cs._feature_reference(query text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'cs_feature_reference'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION cs._feature_reference(text) IS
    'Internal: reference distribution (per feature: missing rate, decile edges, bin shares) of the feature vectors (column features) a query returns, as {"rows", "features"}.';

-- Stores a reference with a model, naming each feature after the model's inputs.
CREATE FUNCTION cs._store_reference(id int, source text, rows bigint, features jsonb) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, cs
BEGIN ATOMIC
    UPDATE cs.models m
       SET reference = jsonb_build_object(
               'source', _store_reference.source, 'rows', _store_reference.rows, 'computed_at', now(),
               'features', (SELECT coalesce(jsonb_agg(f.e || jsonb_build_object('feature', m.feature_names[(f.e ->> 'position')::int])
                                                      ORDER BY (f.e ->> 'position')::int), '[]')
                              FROM jsonb_array_elements(_store_reference.features) f(e)))
     WHERE m.id = _store_reference.id;
END;
COMMENT ON FUNCTION cs._store_reference(int, text, bigint, jsonb) IS
    'Internal: stores a reference distribution with model id (cs.models.reference), named after its feature_names.';

-- No SET search_path: the query is the caller's and resolves names as they
-- would (everything here is schema-qualified).
CREATE FUNCTION cs.set_model_reference(name text, version int, training_query text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    m   cs.models;
    ref jsonb;
    q   text := coalesce(training_query, 'SELECT features FROM cs.customer_features');
BEGIN
    SELECT * INTO m FROM cs.models AS x WHERE x.name = set_model_reference.name AND x.version = set_model_reference.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object', HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    ref := cs._feature_reference(q);
    IF jsonb_array_length(ref -> 'features') <> cardinality(m.feature_names) THEN
        RAISE EXCEPTION 'the reference rows have % features, model "%" has %', jsonb_array_length(ref -> 'features'),
                        name, cardinality(m.feature_names)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Return the vectors the model takes, in its feature_names order.';
    END IF;
    PERFORM cs._store_reference(m.id, CASE WHEN training_query IS NULL THEN 'current features' ELSE 'query' END,
                                (ref ->> 'rows')::bigint, ref -> 'features');
    RETURN (SELECT x.reference FROM cs.models x WHERE x.id = m.id);
END;
$$;
COMMENT ON FUNCTION cs.set_model_reference(text, int, text) IS
    'Sets the reference distribution of a model version from the feature vectors (column features) of training_query, or from the current cs.customer_features when it is NULL; for models loaded from files. cs.train_model sets it from its training rows. Returns the reference.';

-- Population stability index (PSI) and missing-rate change per input of a
-- model, current cs.customer_features against the model's reference:
--   PSI = sum over bins of (cur - ref) * ln(cur / ref), shares of the present
--   values in the reference's decile bins, each floored at 0.0001.
-- A feature is 'watch' when PSI >= 0.1 or the missing rate moved by 0.1 or
-- more, 'act' at 0.25; else 'ok'.  Features are found in the feature vectors
-- by name (cs.feature_catalog).
CREATE FUNCTION cs.feature_drift(name text, version int)
RETURNS TABLE (feature text, psi float8, reference_missing_rate float8, current_missing_rate float8,
               missing_rate_change float8, status text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ref jsonb;
BEGIN
    SELECT m.reference INTO ref FROM cs.models m WHERE m.name = feature_drift.name AND m.version = feature_drift.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object', HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    IF ref IS NULL THEN
        RETURN QUERY SELECT NULL::text, NULL::float8, NULL::float8, NULL::float8, NULL::float8, 'no reference'::text;
        RETURN;
    END IF;
    RETURN QUERY
    WITH r AS (
        SELECT e ->> 'feature' AS feature, o AS ord, (e ->> 'missing_rate')::float8 AS ref_missing,
               ARRAY(SELECT x::float8 FROM jsonb_array_elements_text(e -> 'edges') x) AS edges,
               ARRAY(SELECT x::float8 FROM jsonb_array_elements_text(e -> 'shares') x) AS shares,
               fc.position
          FROM jsonb_array_elements(ref -> 'features') WITH ORDINALITY AS j(e, o)
          LEFT JOIN cs.feature_catalog fc ON fc.name = j.e ->> 'feature'
    ), v AS (
        SELECT r.ord, cf.features[r.position]::float8 AS v
          FROM r JOIN cs.customer_features cf ON r.position IS NOT NULL
    ), cur AS (
        SELECT v.ord, count(*) AS total,
               count(*) FILTER (WHERE v.v NOT IN ('NaN', 'Infinity', '-Infinity')) AS present
          FROM v GROUP BY v.ord
    ), bins AS (
        SELECT v.ord, CASE WHEN cardinality(r.edges) > 0 THEN width_bucket(v.v, r.edges) ELSE 0 END AS b, count(*) AS k
          FROM v JOIN r ON r.ord = v.ord
         WHERE v.v NOT IN ('NaN', 'Infinity', '-Infinity')
         GROUP BY v.ord, 2
    ), psi AS (
        SELECT r.ord,
               sum((c_share - r_share) * ln(c_share / r_share)) AS psi
          FROM r
          JOIN cur ON cur.ord = r.ord AND cur.present > 0
         CROSS JOIN LATERAL generate_series(0, cardinality(r.edges)) AS g(b)
          LEFT JOIN bins ON bins.ord = r.ord AND bins.b = g.b
         CROSS JOIN LATERAL (SELECT greatest(coalesce(bins.k, 0)::float8 / cur.present, 0.0001) AS c_share,
                                    greatest(r.shares[g.b + 1], 0.0001) AS r_share) s
         WHERE cardinality(r.shares) > 0
         GROUP BY r.ord
    )
    SELECT r.feature, p.psi, r.ref_missing,
           CASE WHEN cur.total > 0 THEN 1 - cur.present::float8 / cur.total END,
           CASE WHEN cur.total > 0 THEN 1 - cur.present::float8 / cur.total - r.ref_missing END,
           CASE WHEN r.position IS NULL THEN 'not in feature store'
                WHEN cur.total IS NULL THEN 'no data'
                WHEN p.psi >= 0.25 OR abs(1 - cur.present::float8 / cur.total - r.ref_missing) >= 0.25 THEN 'act'
                WHEN p.psi >= 0.1 OR abs(1 - cur.present::float8 / cur.total - r.ref_missing) >= 0.1 THEN 'watch'
                ELSE 'ok' END
      FROM r
      LEFT JOIN cur ON cur.ord = r.ord
      LEFT JOIN psi p ON p.ord = r.ord
     ORDER BY r.ord;
END;
$$;
COMMENT ON FUNCTION cs.feature_drift(text, int) IS
    'Drift of each input of a model version, current cs.customer_features against its reference: PSI over the reference decile bins, missing rates and their change, and status ok, watch (PSI or missing-rate change >= 0.1) or act (>= 0.25); one row "no reference" when the model has none.';

-- The worst drift status of a model version: act, watch, ok, no data or no reference.
CREATE FUNCTION cs.drift_status(name text, version int) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
RETURN (SELECT d.status FROM cs.feature_drift(name, version) d
         ORDER BY array_position(ARRAY['act', 'watch', 'ok', 'no data', 'not in feature store', 'no reference'], d.status)
         LIMIT 1);
COMMENT ON FUNCTION cs.drift_status(text, int) IS 'Worst drift status over the inputs of a model version: act, watch, ok, no data, or no reference.';

-- Raises, escalates or resolves one model alert (type model, no customer,
-- assigned to cs._admin_role()) per champion and challenger, from its drift.
CREATE FUNCTION cs.check_model_drift()
RETURNS TABLE (model text, drift text, flagged_features text[], alert text)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m       record;
    a       cs.alerts;
    st      text;
    sev     text;
    flagged jsonb;
    label   text;
BEGIN
    FOR m IN SELECT x.name, x.version FROM cs.models x WHERE x.status IN ('champion', 'challenger')
              ORDER BY x.kind, x.status, x.name
    LOOP
        label := m.name || ':v' || m.version;
        st := cs.drift_status(m.name, m.version);
        SELECT coalesce(jsonb_agg(jsonb_build_object('feature', d.feature, 'psi', round(d.psi::numeric, 4),
                                                     'missing_rate_change', round(d.missing_rate_change::numeric, 4),
                                                     'status', d.status) ORDER BY d.psi DESC NULLS LAST), '[]')
          INTO flagged FROM cs.feature_drift(m.name, m.version) d WHERE d.status IN ('watch', 'act');
        SELECT * INTO a FROM cs.alerts al
         WHERE al.alert_type = 'model' AND al.customer_id IS NULL AND al.risk_factors ->> 'model' = label
           AND al.status IN ('open', 'acknowledged', 'snoozed')
         ORDER BY al.created_at DESC LIMIT 1 FOR UPDATE;
        model := label; drift := st;
        flagged_features := ARRAY(SELECT f ->> 'feature' FROM jsonb_array_elements(flagged) f);
        alert := NULL;
        IF st IN ('watch', 'act') THEN
            sev := CASE st WHEN 'act' THEN 'high' ELSE 'medium' END;
            IF a.id IS NULL THEN
                INSERT INTO cs.alerts AS al (alert_type, severity, title, description, risk_factors, assigned_to, last_fired_at)
                VALUES ('model', sev, format('Input drift (%s) for model %s', st, label),
                        format('%s of the inputs of %s moved away from the data it learnt from (PSI or missing rate); check the data feeds, then retrain if the change is real.',
                               jsonb_array_length(flagged), label),
                        jsonb_build_object('model', label, 'drift', st, 'features', flagged), cs._admin_role(), now())
                RETURNING al.* INTO a;
                PERFORM cs._alert_event(a, 'created', NULL, NULL, NULL);
                alert := 'created';
            ELSE
                UPDATE cs.alerts al SET fire_count = al.fire_count + 1, last_fired_at = now(), updated_at = now(),
                                        risk_factors = jsonb_build_object('model', label, 'drift', st, 'features', flagged),
                                        severity = CASE WHEN cs.severity_rank(sev) > cs.severity_rank(al.severity) THEN sev ELSE al.severity END,
                                        escalated_at = CASE WHEN cs.severity_rank(sev) > cs.severity_rank(al.severity) THEN now() ELSE al.escalated_at END
                 WHERE al.id = a.id RETURNING al.* INTO a;
                IF a.escalated_at = now() THEN
                    PERFORM cs._alert_event(a, 'escalated', a.status, NULL, jsonb_build_object('severity', sev));
                    alert := 'escalated';
                ELSE
                    alert := 'refired';
                END IF;
            END IF;
        ELSIF st = 'ok' AND a.id IS NOT NULL THEN
            sev := a.status;
            UPDATE cs.alerts al SET status = 'resolved', resolved_at = now(), snoozed_until = NULL, updated_at = now(),
                                    updated_by = current_user
             WHERE al.id = a.id RETURNING al.* INTO a;
            PERFORM cs._alert_event(a, 'auto_resolved', sev, 'drift cleared', NULL);
            alert := 'resolved';
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs.check_model_drift() IS
    'Checks the drift of every champion and challenger: raises a model alert (customer NULL, assigned to cscopilot.admin_role) at watch (medium) or act (high), escalates or re-fires an open one, resolves it when the drift cleared. Returns one row per model.';

------------------------------------------------------------------------------
-- Comparison and promotion
------------------------------------------------------------------------------

CREATE FUNCTION cs.compare_models(kind text)
RETURNS TABLE (role text, name text, version int, n bigint, positives bigint, auc float8, log_loss float8,
               brier float8, "precision" float8, recall float8, lift_top_decile float8)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    champ record;
    chall record;
BEGIN
    SELECT m.name, m.version INTO champ FROM cs.models m WHERE m.kind = compare_models.kind AND m.status = 'champion'
     ORDER BY m.id DESC LIMIT 1;
    SELECT m.name, m.version INTO chall FROM cs.models m WHERE m.kind = compare_models.kind AND m.status = 'challenger'
     ORDER BY m.id DESC LIMIT 1;
    IF champ.name IS NULL OR chall.name IS NULL THEN
        RAISE EXCEPTION '% has no % to compare', kind, CASE WHEN champ.name IS NULL THEN 'champion' ELSE 'challenger' END
            USING ERRCODE = 'undefined_object',
                  HINT = 'cs.deploy_model(name, version) sets the champion, cs.set_challenger(name, version) the challenger.';
    END IF;
    RETURN QUERY
    WITH pairs AS (
        SELECT a.risk_score AS pa, b.risk_score AS pb, a.churned
          FROM cs.model_outcomes a
          JOIN cs.model_outcomes b ON b.customer_id = a.customer_id AND b.created_at = a.created_at
         WHERE a.name = champ.name AND a.version = champ.version
           AND b.name = chall.name AND b.version = chall.version
    ), agg AS (
        SELECT array_agg(pairs.pa) AS pa, array_agg(pairs.pb) AS pb, array_agg(pairs.churned) AS y FROM pairs
    )
    SELECT 'champion', champ.name, champ.version, x.*
      FROM agg CROSS JOIN LATERAL cs.classification_metrics(agg.pa, agg.y, cs.risk_alert_threshold()) x
    UNION ALL
    SELECT 'challenger', chall.name, chall.version, x.*
      FROM agg CROSS JOIN LATERAL cs.classification_metrics(agg.pb, agg.y, cs.risk_alert_threshold()) x;
END;
$$;
COMMENT ON FUNCTION cs.compare_models(text) IS
    'Champion against challenger of a kind on the same judged predictions (same customers and prediction times): the metrics of cs.model_performance for each.';

-- The promotion policy: once the champion and challenger share at least
-- cscopilot.promotion_min_outcomes judged predictions (both classes present),
-- the challenger is promoted if its AUC beats the champion's by
-- cscopilot.promotion_auc_margin, else retired.  The decision is recorded in
-- the challenger's metrics (key promotion) and returned.
CREATE FUNCTION cs.apply_promotion_policy(kind text) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    chall  cs.models;
    champ  cs.models;
    c1     record;
    c2     record;
    margin float8 := cs._promotion_auc_margin();
    need   int := cs._promotion_min_outcomes();
    res    jsonb;
BEGIN
    SELECT * INTO chall FROM cs.models m WHERE m.kind = apply_promotion_policy.kind AND m.status = 'challenger'
     ORDER BY m.id DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('kind', kind, 'decision', 'none', 'reason', 'no challenger');
    END IF;
    SELECT * INTO champ FROM cs.models m WHERE m.kind = apply_promotion_policy.kind AND m.status = 'champion'
     ORDER BY m.id DESC LIMIT 1;
    IF NOT FOUND THEN
        res := jsonb_build_object('decision', 'promoted', 'reason', 'no champion');
    ELSE
        SELECT * INTO c1 FROM cs.compare_models(kind) x WHERE x.role = 'champion';
        SELECT * INTO c2 FROM cs.compare_models(kind) x WHERE x.role = 'challenger';
        res := jsonb_build_object('champion', champ.name || ':v' || champ.version, 'outcomes', c1.n,
                                  'positives', c1.positives, 'champion_auc', round(c1.auc::numeric, 4),
                                  'challenger_auc', round(c2.auc::numeric, 4), 'margin', margin,
                                  'min_outcomes', need);
        IF c1.n < need OR c1.auc IS NULL OR c2.auc IS NULL THEN
            RETURN jsonb_build_object('kind', kind, 'challenger', chall.name || ':v' || chall.version,
                                      'decision', 'waiting',
                                      'reason', format('%s of %s outcomes with both classes', c1.n, need)) || res;
        END IF;
        IF c2.auc >= c1.auc + margin THEN
            res := res || jsonb_build_object('decision', 'promoted', 'reason', 'challenger AUC beats the champion by the margin');
        ELSE
            res := res || jsonb_build_object('decision', 'retired', 'reason', 'challenger AUC does not beat the champion by the margin');
        END IF;
    END IF;
    res := jsonb_build_object('kind', kind, 'challenger', chall.name || ':v' || chall.version, 'decided_at', now()) || res;
    UPDATE cs.models m SET metrics = m.metrics || jsonb_build_object('promotion', res) WHERE m.id = chall.id;
    IF res ->> 'decision' = 'promoted' THEN
        PERFORM cs.deploy_model(chall.name, chall.version);
    ELSE
        UPDATE cs.models m SET status = 'retired' WHERE m.id = chall.id;
    END IF;
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs.apply_promotion_policy(text) IS
    'Applies the promotion policy to the challenger of a kind: waiting until champion and challenger share cscopilot.promotion_min_outcomes judged predictions, then promoted (cs.deploy_model) if its AUC beats the champion''s by cscopilot.promotion_auc_margin, else retired. Records the decision in the challenger''s metrics and returns it.';

------------------------------------------------------------------------------
-- Scheduled retraining and checks
------------------------------------------------------------------------------

-- Retrains a kind: applies the promotion policy to a pending challenger;
-- unless one is still collecting outcomes, builds a point-in-time training set
-- (cscopilot.retrain_observations monthly dates, the last one at least the
-- outcome horizon ago), trains the next version of the champion's name with
-- the champion's parameters, and registers it as the challenger (or deploys
-- it when there is no champion).  Never raises for a failed step: returns
-- {"status": succeeded | skipped | failed, "steps": [...], "error"}.
CREATE FUNCTION cs.retrain(kind text DEFAULT 'churn') RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    steps   jsonb := '[]';
    step    text;
    horizon interval := cs._outcome_horizon();
    nobs    int := coalesce(nullif(current_setting('cscopilot.retrain_observations', true), '')::int, 12);
    dates   date[];
    champ   cs.models;
    mname   text;
    params  jsonb;
    nrows   bigint;
    pos     bigint;
    mid     int;
    v       int;
    pending text;
    err     text;
BEGIN
    IF kind NOT IN ('churn', 'downgrade', 'payment') THEN
        RAISE EXCEPTION 'cannot retrain kind "%"', kind USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Scheduled retraining builds churn-labelled sets: use churn (or downgrade, payment with your own labels).';
    END IF;
    step := 'promotion_policy';
    steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'at', clock_timestamp()) || cs.apply_promotion_policy(kind));
    SELECT m.name || ':v' || m.version INTO pending FROM cs.models m WHERE m.kind = retrain.kind AND m.status = 'challenger';
    IF pending IS NOT NULL THEN
        steps := steps || jsonb_build_array(jsonb_build_object('step', 'train', 'skipped',
                                                               format('challenger %s is still collecting outcomes', pending)));
        RETURN jsonb_build_object('status', 'skipped', 'steps', steps);
    END IF;
    BEGIN
        step := 'build_training_set';
        dates := ARRAY(SELECT (date_trunc('month', current_date - horizon) - make_interval(months => k))::date
                         FROM generate_series(nobs - 1, 0, -1) k);
        IF to_regclass('pg_temp.cs_retrain_rows') IS NOT NULL THEN
            DROP TABLE pg_temp.cs_retrain_rows;
        END IF;
        CREATE TEMP TABLE cs_retrain_rows ON COMMIT DROP AS
            SELECT t.features, t.label, t.group_key FROM cs.build_training_set(dates, horizon) t;
        SELECT count(*), coalesce(sum(t.label), 0) INTO nrows, pos FROM pg_temp.cs_retrain_rows t;
        steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'at', clock_timestamp(), 'rows', nrows,
                                                               'positives', pos, 'observation_dates', to_jsonb(dates),
                                                               'horizon', horizon::text));
        IF pos < 10 OR nrows - pos < 10 THEN
            steps := steps || jsonb_build_array(jsonb_build_object('step', 'train', 'skipped',
                                                                   'fewer than 10 rows of each class'));
            RETURN jsonb_build_object('status', 'skipped', 'steps', steps);
        END IF;

        step := 'train';
        SELECT * INTO champ FROM cs.models m WHERE m.kind = retrain.kind AND m.status = 'champion' ORDER BY m.id DESC LIMIT 1;
        mname := coalesce(champ.name, kind || '_model');
        params := CASE WHEN jsonb_typeof(champ.metrics -> 'params') = 'object' THEN (champ.metrics -> 'params') - 'feature_names'
                       ELSE '{}' END;
        mid := cs.train_model(mname, kind, 'SELECT features, label, group_key FROM pg_temp.cs_retrain_rows', params);
        UPDATE cs.models m
           SET training_data = format('Scheduled retraining: cs.build_training_set(%L, %L)', dates, horizon),
               metrics = m.metrics || jsonb_build_object('training_window',
                             jsonb_build_object('observation_dates', to_jsonb(dates), 'horizon', horizon::text))
         WHERE m.id = mid
        RETURNING m.version INTO v;
        steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'at', clock_timestamp(), 'model', mname,
                                                               'version', v, 'params', params,
                                                               'validation_auc', (SELECT m.metrics -> 'auc' FROM cs.models m WHERE m.id = mid)));

        step := 'register';
        IF champ.id IS NULL THEN
            PERFORM cs.deploy_model(mname, v);
            steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'status', 'champion', 'reason', 'no champion'));
        ELSE
            PERFORM cs.set_challenger(mname, v);
            steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'status', 'challenger',
                                                                   'champion', champ.name || ':v' || champ.version));
        END IF;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'at', clock_timestamp(), 'error', err));
        RETURN jsonb_build_object('status', 'failed', 'steps', steps, 'error', format('%s: %s', step, err));
    END;
    RETURN jsonb_build_object('status', 'succeeded', 'steps', steps);
END;
$$;
COMMENT ON FUNCTION cs.retrain(text) IS
    'One retraining of a kind: promotion policy for a pending challenger, then (unless a challenger is still collecting outcomes) a point-in-time training set of cscopilot.retrain_observations monthly dates, cs.train_model as the next version of the champion''s name with its parameters, registered as challenger. Returns {"status", "steps", "error"}; the worker''s retrain job stores it in cs.job_runs.details.';

-- The daily model checks of the worker: drift alerts, then the promotion
-- policy for every kind with a challenger.
CREATE FUNCTION cs.run_model_checks() RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    drift jsonb;
    promo jsonb;
BEGIN
    SELECT coalesce(jsonb_agg(to_jsonb(d)), '[]') INTO drift FROM cs.check_model_drift() d;
    SELECT coalesce(jsonb_agg(cs.apply_promotion_policy(k.kind) ORDER BY k.kind), '[]') INTO promo
      FROM (SELECT DISTINCT m.kind FROM cs.models m WHERE m.status = 'challenger' AND m.kind <> 'custom') k;
    RETURN jsonb_build_object('drift', drift, 'promotion', promo);
END;
$$;
COMMENT ON FUNCTION cs.run_model_checks() IS
    'Model checks the worker runs daily (job model_checks): cs.check_model_drift(), then cs.apply_promotion_policy for each kind with a challenger; returns what happened.';

------------------------------------------------------------------------------
-- Model card
------------------------------------------------------------------------------

CREATE FUNCTION cs.model_card(name text, version int) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m    cs.models;
    perf jsonb;
    cal  jsonb;
    dr   jsonb;
BEGIN
    SELECT * INTO m FROM cs.models AS x WHERE x.name = model_card.name AND x.version = model_card.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object', HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    SELECT to_jsonb(p) - 'name' - 'version' - 'kind' - 'status' - 'validation_auc' INTO perf
      FROM cs.model_performance p WHERE p.name = m.name AND p.version = m.version;
    SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.decile), '[]') INTO cal FROM cs.model_calibration(m.name, m.version) c;
    SELECT coalesce(jsonb_agg(to_jsonb(d)) FILTER (WHERE d.status IN ('watch', 'act')), '[]') INTO dr
      FROM cs.feature_drift(m.name, m.version) d;
    RETURN jsonb_build_object(
        'model', m.name, 'version', m.version, 'kind', m.kind, 'status', m.status, 'objective', m.objective,
        'created_at', m.created_at,
        'features', to_jsonb(m.feature_names),
        'training', jsonb_build_object('data', m.training_data,
                                       'window', m.metrics -> 'training_window',
                                       'rows_train', m.metrics -> 'rows_train', 'rows_valid', m.metrics -> 'rows_valid',
                                       'positive_rate', m.metrics -> 'positive_rate'),
        'parameters', m.metrics -> 'params',
        'validation', jsonb_build_object('auc', m.metrics -> 'auc', 'log_loss', m.metrics -> 'logloss',
                                         'brier', m.metrics -> 'brier', 'best_iteration', m.metrics -> 'best_iteration',
                                         'holdout', m.metrics -> 'holdout'),
        'top_features', (SELECT jsonb_agg(i.key ORDER BY i.value::float8 DESC, i.key)
                           FROM (SELECT * FROM jsonb_each_text(m.metrics -> 'feature_importance_gain')
                                  ORDER BY value::float8 DESC, key LIMIT 5) i),
        'outcomes', perf,
        'calibration', cal,
        'drift', jsonb_build_object('status', cs.drift_status(m.name, m.version),
                                    'reference', m.reference - 'features',
                                    'flagged', dr),
        'promotion', m.metrics -> 'promotion');
END;
$$;
COMMENT ON FUNCTION cs.model_card(text, int) IS
    'Readable summary of a model version as jsonb: features, training data and window, parameters, validation metrics, outcome metrics (cs.model_performance) and calibration, drift status with the flagged features, and the last promotion decision. jsonb_pretty() prints it.';

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
    job         text NOT NULL CHECK (job IN ('batch', 'full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes',
                                         'model_checks', 'retrain', 'data_quality')),
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
COMMENT ON COLUMN cs.job_runs.job IS 'batch (failed batches only), full_rescore, daily_snapshot, partitions, action_outcomes, model_checks, retrain or data_quality.';
COMMENT ON COLUMN cs.job_runs.database IS 'Database the run belongs to.';
COMMENT ON COLUMN cs.job_runs.started_at IS 'When the run started.';
COMMENT ON COLUMN cs.job_runs.finished_at IS 'When it finished; NULL while running.';
COMMENT ON COLUMN cs.job_runs.customers IS 'Customers the run refreshed (partitions it created, for partitions; problems found, for data_quality); NULL when not applicable.';
COMMENT ON COLUMN cs.job_runs.status IS 'running, succeeded, failed or skipped (nothing to do, for example a missing function).';
COMMENT ON COLUMN cs.job_runs.error IS 'Error message of a failed run.';
COMMENT ON COLUMN cs.job_runs.resume_after IS 'Full rescores and daily snapshots run by the worker in steps: the last customer id refreshed so far (customers go in id order); NULL before the first step.';
COMMENT ON COLUMN cs.job_runs.details IS 'What the run did, step by step: for retrain the steps of cs.retrain (policy, training set, training, registration), for model_checks the drift checks and promotion decisions.';

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
    -- One refresh at a time per database: concurrent refreshes upsert the
    -- same result rows and remove the same dirty marks in different orders.
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot'), 1);
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
        -- pg_settings has it in seconds (current_setting would say '1h')
        every := coalesce((SELECT s.setting::int FROM pg_settings s WHERE s.name = 'cscopilot.retrain_interval'), 0);
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
    'Whether a scheduled job is due: full_rescore every full_rescore_interval seconds (0 = never), retrain every cscopilot.retrain_interval seconds (0 = never), data_quality hourly, the others once per day; failed runs are retried after 10 minutes.';

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
    -- A stepped full rescore under way goes on before anything new starts.
    RETURN QUERY SELECT r.id, r.job FROM cs.job_runs r
                  WHERE r.status = 'running' AND r.database = current_database()
                    AND r.job IN ('full_rescore', 'daily_snapshot') AND r.resume_after IS NOT NULL
                  ORDER BY r.id LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    FOREACH j IN ARRAY ARRAY['full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes', 'model_checks', 'retrain',
                             'data_quality'] LOOP
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
CREATE FUNCTION cs._run_job(run_id bigint, step_size int DEFAULT 0) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    j      text;
    n      bigint;
    st     text := 'succeeded';
    res    text;
    after  uuid;
    done   bigint;
    ids    uuid[];
    job_details jsonb;
    err    text;
BEGIN
    SELECT r.job, r.resume_after, r.customers INTO j, after, done
      FROM cs.job_runs r WHERE r.id = run_id AND r.status = 'running' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job run % is not running', run_id USING ERRCODE = 'no_data_found';
    END IF;
    IF j IN ('full_rescore', 'daily_snapshot') AND coalesce(step_size, 0) > 0 THEN
        IF after IS NULL THEN
            -- First step.  Percentile normalisation ranks within the whole
            -- segment: with customers missing from the feature store (a new
            -- installation) compute everyone's features first, then retake the
            -- populations the steps rank against.  The texts classified since
            -- the last full rescore go into the text-signal cache, which the
            -- steps then read.
            PERFORM cs._refresh_text_signals();
            IF EXISTS (SELECT 1 FROM cs.customers c
                        WHERE NOT EXISTS (SELECT 1 FROM cs.customer_features f WHERE f.customer_id = c.id)) THEN
                INSERT INTO cs.customer_features AS cf (customer_id, as_of, features)
                SELECT f.customer_id, now(), f.features FROM cs.compute_features(NULL, now()) f
                ON CONFLICT (customer_id) DO UPDATE SET as_of = excluded.as_of, features = excluded.features;
            END IF;
            PERFORM cs._refresh_health_populations();
            PERFORM cs._refresh_opportunity_stats();
        END IF;
        ids := ARRAY(SELECT c.id FROM cs.customers c WHERE after IS NULL OR c.id > after ORDER BY c.id LIMIT step_size);
        IF cardinality(ids) > 0 THEN
            PERFORM cs.refresh(ids);
            UPDATE cs.job_runs r SET resume_after = ids[cardinality(ids)], customers = coalesce(done, 0) + cardinality(ids)
             WHERE r.id = run_id;
            RETURN 'running';
        END IF;
        n := coalesce(done, 0);
    ELSE
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
        WHEN 'model_checks' THEN
            job_details := cs.run_model_checks();
        WHEN 'retrain' THEN
            -- cs.retrain does not raise for a failed step: it reports the steps
            job_details := cs.retrain('churn');
            st := job_details ->> 'status';
            err := job_details ->> 'error';
        WHEN 'data_quality' THEN
            n := cs.check_data_quality();
        ELSE
            RAISE EXCEPTION 'unknown job %', j USING ERRCODE = 'invalid_parameter_value';
        END CASE;
    END IF;
    UPDATE cs.job_runs r SET status = st, customers = n, finished_at = greatest(r.started_at, clock_timestamp()),
                             details = job_details, error = err
     WHERE r.id = run_id;
    RETURN st;
END;
$$;
COMMENT ON FUNCTION cs._run_job(bigint, int) IS
    'Runs a scheduled job recorded by cs._start_due_job (full_rescore and daily_snapshot: cs.refresh_all(), or with step_size > 0 one step of that many customers in id order, returning running until the last; partitions: 90 days ahead; action_outcomes: cs.measure_action_outcomes() when it exists; model_checks: cs.run_model_checks(); retrain: cs.retrain(''churn''), its steps in details; data_quality: cs.check_data_quality()) and closes its run; returns its status.';

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
    AS 'MODULE_PATHNAME', 'cs_feature_map' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs.feature_map(float4[]) IS
    'The feature vector as a JSON object keyed by cs.feature_catalog name; missing (NaN) values are JSON null.';

-- Cross-sell statistics over every customer's active subscriptions: taken by
-- full refreshes (and whenever missing), reused by partial ones, which would
-- otherwise rescan every subscription to score a handful of customers.
CREATE TABLE cs.cross_sell_stats (
    product_a   text NOT NULL,
    product_b   text NOT NULL,
    n_ab        float8 NOT NULL,
    confidence  float8 NOT NULL,
    lift        float8 NOT NULL,
    n_b         float8 NOT NULL,
    mean_mrr_b  numeric,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_a, product_b)
);
COMMENT ON TABLE cs.cross_sell_stats IS 'Product pairs with lift(B|A) > 0 over active subscriptions (at least 2 customers with both, P(B|A) >= 0.25), as of the last full refresh of opportunities; partial refreshes rank cross-sell candidates with them.';
COMMENT ON COLUMN cs.cross_sell_stats.product_a IS 'A product the customer has.';
COMMENT ON COLUMN cs.cross_sell_stats.product_b IS 'The product to offer.';
COMMENT ON COLUMN cs.cross_sell_stats.n_ab IS 'Customers with both products active.';
COMMENT ON COLUMN cs.cross_sell_stats.confidence IS 'P(B|A).';
COMMENT ON COLUMN cs.cross_sell_stats.lift IS 'P(B|A) / P(B).';
COMMENT ON COLUMN cs.cross_sell_stats.n_b IS 'Customers with B active.';
COMMENT ON COLUMN cs.cross_sell_stats.mean_mrr_b IS 'Mean MRR of the active subscriptions of B.';
COMMENT ON COLUMN cs.cross_sell_stats.computed_at IS 'When the statistics were taken.';

-- The adoption catalogue (the largest feature breadth in the feature store),
-- taken with the cross-sell statistics.
CREATE TABLE cs.adoption_stats (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    catalogue   float8,
    computed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cs.adoption_stats IS 'One row: the adoption catalogue as of the last full refresh of opportunities; partial refreshes score adoption against it.';
COMMENT ON COLUMN cs.adoption_stats.singleton IS 'Always true: the table holds one row.';
COMMENT ON COLUMN cs.adoption_stats.catalogue IS 'The most product features (feature_breadth_30d) any customer used in 30 days; NULL without any.';
COMMENT ON COLUMN cs.adoption_stats.computed_at IS 'When it was taken.';

-- Upsell scoring constants are documented in the function comment; they are
-- plain numbers here rather than settings because the formula is the contract.
-- Statistics over the whole customer base that opportunities use: cross-sell
-- lift between products and the adoption catalogue.  Taken by full refreshes,
-- the first step of the worker's full rescore, and whenever missing; partial
-- refreshes reuse them, which would otherwise rescan every subscription and
-- every feature vector to score a handful of customers.
CREATE FUNCTION cs._refresh_opportunity_stats() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    DELETE FROM cs.cross_sell_stats;
    WITH active AS (
        SELECT DISTINCT s.customer_id, s.product
          FROM cs.subscriptions s
          JOIN cs.customers c ON c.id = s.customer_id AND c.churned_at IS NULL
         WHERE s.started_at <= current_date AND (s.ended_at IS NULL OR s.ended_at > current_date)
    ), pmrr AS (
        -- mean MRR of each product's active subscriptions
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
    )
    INSERT INTO cs.cross_sell_stats (product_a, product_b, n_ab, confidence, lift, n_b, mean_mrr_b)
    SELECT p.pa, p.pb, p.n_ab, p.confidence, p.lift, p.n_b, pm.mrr
      FROM pair p LEFT JOIN pmrr pm ON pm.product = p.pb;
    DELETE FROM cs.adoption_stats;
    INSERT INTO cs.adoption_stats (catalogue)
    SELECT max(cf.features[fc.position]) FILTER (WHERE cf.features[fc.position] <> 'NaN')
      FROM cs.customer_features cf, cs.feature_catalog fc WHERE fc.name = 'feature_breadth_30d';
END;
$$;
COMMENT ON FUNCTION cs._refresh_opportunity_stats() IS
    'Internal: retakes cs.cross_sell_stats and cs.adoption_stats from every customer''s active subscriptions and feature vector.';

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

    IF ids IS NULL OR NOT EXISTS (SELECT 1 FROM cs.cross_sell_stats)
       OR NOT EXISTS (SELECT 1 FROM cs.adoption_stats) THEN
        PERFORM cs._refresh_opportunity_stats();
    END IF;

    -- Dynamic only to call cs.predict when it exists; no user text is interpolated.
    EXECUTE format($q$
    WITH base AS (
        SELECT c.id AS customer_id, c.mrr, c.seats_licensed AS seats, cf.features AS f,
               (SELECT h.overall_score FROM cs.customer_health_scores h WHERE h.customer_id = c.id
                 ORDER BY h.calculated_at DESC LIMIT 1) AS health,
               %s AS model_score
          FROM cs.customers c
          JOIN cs.customer_features cf ON cf.customer_id = c.id
         WHERE c.churned_at IS NULL AND ($1 IS NULL OR c.id = ANY ($1))
    ), b AS (
        SELECT customer_id, mrr, seats, health, model_score,
               -- by catalog position (each looked up once); NaN (missing) is NULL
               nullif(f[(SELECT position FROM cs.feature_catalog WHERE name = 'seat_utilisation')], 'NaN')::float8 AS util,
               nullif(f[(SELECT position FROM cs.feature_catalog WHERE name = 'active_users_30d')], 'NaN')::float8 AS au,
               nullif(f[(SELECT position FROM cs.feature_catalog WHERE name = 'usage_trend_30d')], 'NaN')::float8 AS trend,
               nullif(f[(SELECT position FROM cs.feature_catalog WHERE name = 'feature_breadth_30d')], 'NaN')::float8 AS breadth
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
        -- the active products of each customer being refreshed, as one array:
        -- the candidates below then need no join and no sort per product
        SELECT s.customer_id, array_agg(DISTINCT s.product) AS products
          FROM cs.subscriptions s
          JOIN b ON b.customer_id = s.customer_id
         WHERE s.started_at <= current_date AND (s.ended_at IS NULL OR s.ended_at > current_date)
         GROUP BY s.customer_id
    ), cand AS (
        SELECT DISTINCT ON (own.customer_id)
               own.customer_id, p.product_a AS pa, p.product_b AS pb, p.lift, p.confidence, p.n_ab, p.n_b, p.mean_mrr_b
          FROM active own
          JOIN cs.cross_sell_stats p ON p.product_a = ANY (own.products) AND p.lift > 1
         WHERE NOT (p.product_b = ANY (own.products))
         ORDER BY own.customer_id, p.lift DESC, p.confidence DESC, p.product_b, p.product_a
    ), cross_sell AS (
        SELECT c.customer_id, 'cross_sell'::text, round(c.confidence::numeric, 3),
               round(coalesce(c.mean_mrr_b, 0) * round(c.confidence::numeric, 3), 2),
               c.pb,
               jsonb_build_object('because_of', c.pa, 'lift', round(c.lift::numeric, 3),
                                  'confidence', round(c.confidence::numeric, 3),
                                  'customers_with_both', c.n_ab, 'customers_with_product', c.n_b)
          FROM cand c
    ), cat AS (
        -- the catalogue: the most product features any customer used in 30 days
        SELECT catalogue AS n FROM cs.adoption_stats
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
    'with at least 2 customers having both and P(B|A) >= 0.25; score = P(B|A), expected_mrr = mean MRR of B x score; lift and mean MRR are taken by full refreshes into cs.cross_sell_stats and reused by partial ones. '
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
BEGIN
    -- filling a template checks each of its placeholders (src/alerts.c)
    PERFORM cs._fill_template(template, '{}', cs.template_placeholders());
END;
$$;
COMMENT ON FUNCTION cs.check_template(text) IS 'Refuses a template with an unknown {placeholder} (invalid_parameter_value).';

-- The placeholder values of a customer from what alert evaluation has already
-- fetched: its row, its feature map, latest health and latest churn risk.
CREATE FUNCTION cs._template_values(c cs.customers, fm jsonb, overall_score numeric, band text, drivers jsonb,
                                    risk_score numeric, risk_factors jsonb)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object(
         'name', c.name, 'external_id', c.external_id, 'csm', c.csm, 'segment', c.segment,
         'mrr', c.mrr::text,
         'overall_score', overall_score::text,
         'band', band,
         'churn_risk', risk_score::text,
         'top_driver', drivers -> 'top' -> 0 ->> 'measure',
         'top_risk_factor', risk_factors -> 0 ->> 'feature',
         'days_to_renewal', round((fm ->> 'days_to_renewal')::numeric)::text,
         'renewal_date', to_char(c.contract_end_date, 'YYYY-MM-DD'),
         'seat_utilisation', round((fm ->> 'seat_utilisation')::numeric * 100)::text || '%',
         'seats_licensed', c.seats_licensed::text,
         'last_nps', round((fm ->> 'last_nps')::numeric)::text);
COMMENT ON FUNCTION cs._template_values(cs.customers, jsonb, numeric, text, jsonb, numeric, jsonb) IS
    'Internal: the placeholder values of cs.template_values() from a customer row, its feature map, latest health (score, band, drivers) and latest churn risk (score, factors).';

-- The placeholder values of one customer, as text (NULL when unknown).
CREATE FUNCTION cs.template_values(customer_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN (SELECT cs._template_values(c, f.m, h.overall_score, h.band, h.drivers, r.risk_score, r.risk_factors)
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

-- Fills a template from a values object in one pass; unknown values become n/a.
CREATE FUNCTION cs._fill_template(template text, vals jsonb, placeholders text[]) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_fill_template' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._fill_template(text, jsonb, text[]) IS
    'Internal: replaces each {placeholder} of a template by its value in vals (n/a when missing or null), in one pass; a {name} not among placeholders is an error.';

CREATE FUNCTION cs.fill_template(template text, vals jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN cs._fill_template(template, coalesce(vals, '{}'), cs.template_placeholders());
COMMENT ON FUNCTION cs.fill_template(text, jsonb) IS 'Replaces each {placeholder} of a template by its value in vals (n/a when missing); unknown placeholders are an error (invalid_parameter_value).';

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
-- C (src/alerts.c): a full evaluation calls it for every customer and rule.
CREATE FUNCTION cs.condition_holds(cond jsonb, ctx jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'cs_condition_holds' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.condition_holds(jsonb, jsonb) IS
    'Evaluates a validated alert condition against {"features": {...}, "scores": {...}, "band": b}: true, false, or NULL when it depends on a missing value; a malformed condition is an error (invalid_parameter_value).';

-- The factors of a firing rule and the names playbooks are ranked by (C: a
-- full evaluation builds them for every firing alert).
CREATE FUNCTION cs._alert_factors(ctx jsonb, cfeatures text[], cscores text[], cband boolean, alert_type text,
                                  risk_factors jsonb, drivers jsonb, kinds jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'cs_alert_factors' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._alert_factors(jsonb, text[], text[], boolean, text, jsonb, jsonb, jsonb) IS
    'Internal: the factors of a firing rule as a jsonb array: the condition''s features, scores and band with their values in ctx (sorted by name), then for risk alerts the churn model''s factors (source churn_model) and the health drivers'' top (source health), for opportunity alerts the opportunities in kinds.';
CREATE FUNCTION cs._factor_names(factors jsonb) RETURNS text[]
    AS 'MODULE_PATHNAME', 'cs_factor_names' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._factor_names(jsonb) IS
    'Internal: the distinct names of a factors array, sorted: per factor the first string among feature, score and kind (an opportunity''s numeric score is not a name, its kind is).';

CREATE FUNCTION cs.severity_rank(severity text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_position(ARRAY['low', 'medium', 'high', 'critical'], severity);
COMMENT ON FUNCTION cs.severity_rank(text) IS 'Order of a severity: low 1, medium 2, high 3, critical 4.';

-- The open alerts pages (cs.risk_alerts): most severe, then largest, first.
CREATE INDEX alerts_open_rank_idx ON cs.alerts (alert_type, cs.severity_rank(severity) DESC, mrr_at_risk DESC, created_at, id)
    WHERE status IN ('open', 'acknowledged', 'snoozed');

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
 'Active users fill 90% or more of the licensed seats.'),
('cancellation_intent', 'risk',
 '{"feature": "cancellation_mentions_90d", "op": ">=", "value": 1}',
 '{"feature": "cancellation_mentions_90d", "direction": "higher"}', '{"critical": 2}', 'high',
 'Cancellation intent at {name}', '14 days',
 'A support ticket or NPS comment of the last 90 days talks about cancelling (cs.ticket_category: cancellation_intent).');

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
    INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, actor, note, details)
    VALUES (a.id, ev, from_status, a.status, cs.acting_user(), note, details);
    IF ev IN ('created', 'escalated') THEN
        PERFORM pg_notify('cs_alerts', jsonb_build_object('event', ev, 'alert_id', a.id, 'customer_id', a.customer_id,
                                                          'severity', a.severity, 'title', a.title,
                                                          'alert_type', a.alert_type, 'assigned_to', a.assigned_to)::text);
    END IF;
END;
$$;
COMMENT ON FUNCTION cs._alert_event(cs.alerts, text, text, text, jsonb) IS
    'Internal: appends to cs.alert_events, with cs.acting_user() as actor, and sends NOTIFY cs_alerts for created and escalated alerts (delivered at commit).';

CREATE FUNCTION cs.evaluate_alerts(ids uuid[] DEFAULT NULL)
RETURNS TABLE (created int, escalated int, refired int, resolved int, reopened int)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    a          cs.alerts;
    ts         timestamptz;
    aid        uuid;
    prev       text;
    n_resolved bigint;
    n_notified bigint;
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

    -- Every rule against every customer at once: the context of each customer
    -- is built once, each (customer, rule) pair is decided by the C condition
    -- evaluator, and the writes are set-based.  Alert ids come from the
    -- sequence in (customer, rule) order, as a fresh database replays them.
    ts := clock_timestamp();
    WITH rinfo AS MATERIALIZED (
        -- per rule, once: the features and scores its condition names, and
        -- whether it tests the band
        SELECT r.*,
               ARRAY(SELECT DISTINCT x #>> '{}' FROM jsonb_path_query(r.condition, '$.**.feature') x) AS cfeatures,
               ARRAY(SELECT DISTINCT x #>> '{}' FROM jsonb_path_query(r.condition, '$.**.score') x) AS cscores,
               jsonb_path_exists(r.condition, '$.**.band') AS cband
          FROM cs.alert_rules r
         WHERE r.enabled AND r.alert_type IN ('risk', 'opportunity')
    ), ctx AS MATERIALIZED (
        -- each customer's context, and which rules hold for it (in rule id
        -- order): kept with the customer, so the pairs need no join back
        SELECT x.*, h.rule_ids, h.holds, h.autos FROM (
        SELECT cu.id AS customer_id, cu.csm, coalesce(cu.mrr, 0) AS mrr,
               jsonb_build_object(
                 'features', fm.m,
                 'scores', jsonb_build_object('churn_risk', rk.risk_score, 'overall_score', h.overall_score,
                                              'usage_score', h.usage_score, 'engagement_score', h.engagement_score,
                                              'support_score', h.support_score, 'payment_score', h.payment_score,
                                              'opportunity_score', o.best, 'opportunity_mrr', o.total),
                 'band', h.band) AS ctx,
               rk.risk_factors, h.drivers, o.kinds,
               cs._template_values(cu, fm.m, h.overall_score, h.band, h.drivers, rk.risk_score, rk.risk_factors) AS vals
          FROM cs.customers cu
          LEFT JOIN cs.customer_features cf ON cf.customer_id = cu.id
         -- OFFSET 0 keeps the map computed once per customer, not once per use
         CROSS JOIN LATERAL (SELECT cs.feature_map(coalesce(cf.features, '{}')) AS m OFFSET 0) fm
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
        OFFSET 0) x
         CROSS JOIN LATERAL (SELECT array_agg(r.id ORDER BY r.id) AS rule_ids,
                                    array_agg(cs.condition_holds(r.condition, x.ctx) ORDER BY r.id) AS holds,
                                    array_agg(r.auto_resolve ORDER BY r.id) AS autos
                               FROM rinfo r) h
    ), ev AS (
        SELECT c.customer_id, e.rule_id, e.holds, e.auto_resolve
          FROM ctx c
         CROSS JOIN LATERAL unnest(c.rule_ids, c.holds, c.autos) AS e (rule_id, holds, auto_resolve)
    ), cleared AS (
        -- auto-resolving rules whose condition is now known to be false
        SELECT al.id, al.status AS was
          FROM cs.alerts al
          JOIN ev ON ev.customer_id = al.customer_id AND ev.rule_id = al.rule_id
         WHERE ev.holds IS FALSE AND ev.auto_resolve AND al.status IN ('open', 'acknowledged', 'snoozed')
         ORDER BY al.id
           FOR UPDATE OF al
    ), res AS (
        UPDATE cs.alerts al SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
                                updated_at = now(), updated_by = current_user
          FROM cleared
         WHERE al.id = cleared.id
        RETURNING al.id, al.status, cleared.was
    ), res_events AS (
        INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, note, details)
        SELECT id, 'auto_resolved', was, status, 'condition cleared', NULL FROM res
        RETURNING 1
    ), fire AS MATERIALIZED (
        -- Why: the terms of the condition with their current values, and for
        -- risk alerts the churn model's factors and the health drivers; for
        -- opportunity alerts the customer's opportunities.
        -- (only what the writes need: these rows are sorted and hashed below)
        SELECT ev.customer_id, ev.rule_id, ev.csm, ev.mrr, ev.vals, r.alert_type,
               r.title AS rtitle, r.name AS rname, r.description, r.cooldown,
               cs.alert_severity(r.severity_metric, r.severity_thresholds, r.base_severity, ev.ctx) AS sev,
               fx.factors, cs._factor_names(fx.factors) AS names, r.cfeatures || r.cscores AS terms
          FROM (SELECT c.*, e.rule_id
                  FROM ctx c
                 CROSS JOIN LATERAL unnest(c.rule_ids, c.holds) AS e (rule_id, holds)
                 WHERE e.holds) ev
          JOIN rinfo r ON r.id = ev.rule_id
         CROSS JOIN LATERAL (SELECT cs._alert_factors(ev.ctx, r.cfeatures, r.cscores, r.cband, r.alert_type,
                                                      ev.risk_factors, ev.drivers, ev.kinds) AS factors
                              OFFSET 0) fx
    ), ranked AS MATERIALIZED (
        -- the playbooks answering each distinct set of factors, ranked once:
        -- those answering a term of the rule's own condition (what the alert
        -- is about) first
        SELECT n.names, n.terms,
               jsonb_agg(jsonb_build_object('rank', k.rank, 'playbook', k.playbook, 'action', k.action,
                                            'matched', to_jsonb(k.matched), 'trials', k.trials,
                                            'effectiveness', k.effectiveness, 'template', p.template)
                         ORDER BY k.rank) AS items
          FROM (SELECT DISTINCT names, terms FROM fire) n
         CROSS JOIN LATERAL cs.rank_playbooks(n.names, n.terms) k
          JOIN cs.playbooks p ON p.name = k.playbook
         WHERE k.rank <= 3
         GROUP BY n.names, n.terms
    ), old AS (
        SELECT al.customer_id, al.rule_id, al.severity
          FROM cs.alerts al
          JOIN fire f ON f.customer_id = al.customer_id AND f.rule_id = al.rule_id
         WHERE al.status IN ('open', 'acknowledged', 'snoozed')
    ), up AS (
        -- The partial unique index decides between a new alert and the open
        -- one, also against a concurrent evaluation of the same customer.
        INSERT INTO cs.alerts AS al (id, customer_id, rule_id, alert_type, severity, title, description, risk_factors,
                                     suggested_actions, status, assigned_to, created_at, updated_at, updated_by,
                                     last_fired_at, fire_count, mrr_at_risk)
        SELECT md5(s.customer_id::text || ':' || s.rule_id || ':' || nextval('cs.alert_number'))::uuid,
               s.customer_id, s.rule_id, s.alert_type, s.sev,
               left(cs.fill_template(coalesce(s.rtitle, s.rname), s.vals), 255), s.description, s.factors,
               s.suggested, 'open', s.csm, now(), now(), current_user, now(), 1, s.mrr
          FROM (SELECT f.*,
                       (SELECT coalesce(jsonb_agg((e.x - 'template')
                                                  || jsonb_build_object('message', cs.fill_template(e.x ->> 'template', f.vals))
                                                  ORDER BY e.o), '[]')
                          FROM jsonb_array_elements(k.items) WITH ORDINALITY e(x, o)) AS suggested
                  FROM fire f
                  LEFT JOIN ranked k ON k.names = f.names AND k.terms = f.terms
                 WHERE NOT EXISTS (SELECT 1 FROM cs.alerts p
                                    WHERE p.customer_id = f.customer_id AND p.rule_id = f.rule_id
                                      AND p.status IN ('resolved', 'dismissed') AND p.resolved_at > now() - f.cooldown)
                 ORDER BY f.customer_id, f.rule_id) s
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
               fire_count = al.fire_count + 1,
               mrr_at_risk = excluded.mrr_at_risk
        RETURNING al.*, (al.xmax = 0) AS inserted, (al.escalated_at IS NOT DISTINCT FROM ts AND al.xmax <> 0) AS esc
    ), up_events AS (
        INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, note, details)
        SELECT u.id, CASE WHEN u.inserted THEN 'created' ELSE 'escalated' END,
               CASE WHEN u.inserted THEN NULL ELSE u.status END, u.status, NULL,
               CASE WHEN u.inserted THEN jsonb_build_object('severity', u.severity)
                    ELSE jsonb_build_object('from', o.severity, 'to', u.severity) END
          FROM up u
          LEFT JOIN old o ON o.customer_id = u.customer_id AND o.rule_id = u.rule_id
         WHERE u.inserted OR u.esc
         ORDER BY u.customer_id, u.rule_id
        RETURNING 1
    ), notified AS (
        SELECT pg_notify('cs_alerts', jsonb_build_object('event', CASE WHEN n.inserted THEN 'created' ELSE 'escalated' END,
                                                         'alert_id', n.id, 'customer_id', n.customer_id,
                                                         'severity', n.severity, 'title', n.title,
                                                         'alert_type', n.alert_type, 'assigned_to', n.assigned_to)::text)
          FROM (SELECT * FROM up WHERE inserted OR esc ORDER BY customer_id, rule_id) n
    )
    -- (data-modifying CTEs always run; notified is read so that it runs too)
    SELECT (SELECT count(*) FROM up WHERE inserted),
           (SELECT count(*) FROM up WHERE esc),
           (SELECT count(*) FROM up WHERE NOT inserted AND NOT esc),
           (SELECT count(*) FROM res),
           (SELECT count(*) FROM notified)
      INTO created, escalated, refired, n_resolved, n_notified;
    resolved := resolved + n_resolved;
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
--
-- These functions are the only way for anybody but an admin to change an
-- alert: CSMs hold no UPDATE on cs.alerts and no INSERT on cs.alert_events.
-- They are SECURITY DEFINER (search_path pinned, pg_temp last), and
-- cs._alert_transition checks the caller: a member of cscopilot_csm (cs._require_csm) who may see
-- the alert's customer under the rule of the row-level security policies
-- (cs._user_sees_customer); an alert the caller may not see "does not exist",
-- as it did under RLS.  The caller (cs.acting_user()) is recorded as
-- updated_by and as the event's actor.
------------------------------------------------------------------------------

-- Applies one lifecycle transition under a row lock, or refuses it.
CREATE FUNCTION cs._alert_transition(alert_id uuid, ev text, allowed text[], new_status text, note text,
                                     until timestamptz DEFAULT NULL, assignee text DEFAULT NULL)
RETURNS cs.alerts
LANGUAGE plpgsql
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    a    cs.alerts;
    prev text;
    details jsonb;
    who  name;
BEGIN
    who := cs._require_csm(CASE ev WHEN 'acknowledged' THEN 'acknowledge' WHEN 'resolved' THEN 'resolve'
                                   WHEN 'dismissed' THEN 'dismiss' WHEN 'snoozed' THEN 'snooze'
                                   ELSE 'reassign' END || ' alerts');
    IF alert_id IS NULL THEN
        RAISE EXCEPTION 'alert id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- An alert the caller may not see is neither locked nor found.
    SELECT * INTO a FROM cs.alerts al WHERE al.id = alert_id AND cs._user_sees_customer(who, al.customer_id) FOR UPDATE;
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
           updated_by = who
     WHERE al.id = alert_id
    RETURNING al.* INTO a;
    PERFORM cs._alert_event(a, ev, prev, note, details);
    RETURN a;
END;
$$;
COMMENT ON FUNCTION cs._alert_transition(uuid, text, text[], text, text, timestamptz, text) IS
    'Internal, called by the SECURITY DEFINER lifecycle functions: for a CSM who may see the alert''s customer (insufficient_privilege for others; an alert they may not see does not exist, no_data_found), moves the alert to a new status (NULL keeps it) if its current status allows it (object_not_in_prerequisite_state otherwise), stamps who and when, and logs the event.';

CREATE FUNCTION cs.acknowledge_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
RETURN cs._alert_transition(id, 'acknowledged', ARRAY['open', 'snoozed'], 'acknowledged', note);
COMMENT ON FUNCTION cs.acknowledge_alert(uuid, text) IS 'Marks an open or snoozed alert acknowledged (the CSM is on it); returns the alert.';

CREATE FUNCTION cs.resolve_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
RETURN cs._alert_transition(id, 'resolved', ARRAY['open', 'acknowledged', 'snoozed'], 'resolved', note);
COMMENT ON FUNCTION cs.resolve_alert(uuid, text) IS 'Resolves an unresolved alert (the problem was dealt with); the rule''s cooldown starts. Returns the alert.';

CREATE FUNCTION cs.dismiss_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
RETURN cs._alert_transition(id, 'dismissed', ARRAY['open', 'acknowledged', 'snoozed'], 'dismissed', note);
COMMENT ON FUNCTION cs.dismiss_alert(uuid, text) IS 'Dismisses an unresolved alert (not worth acting on); the rule''s cooldown starts. Returns the alert.';

CREATE FUNCTION cs.snooze_alert(id uuid, until timestamptz) RETURNS cs.alerts
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
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
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
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
 '30 days', 'Broaden feature adoption.'),
('cancellation_save_call', 'Call the decision maker about the cancellation',
 '{cancellation_mentions_90d,competitor_mentions_90d,ticket_sentiment_30d,ticket_sentiment_90d,negative_ticket_share_90d,nps_comment_sentiment}',
 'Hello {name} team, I read that you are thinking about cancelling. Before you decide, I would like to hear what went wrong and what it would take to fix it. Do you have 30 minutes this week? — {csm}',
 '30 days', 'Talk to whoever decides the renewal as soon as a ticket or comment mentions cancelling, and agree on fixes.');

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
CREATE FUNCTION cs.rank_playbooks(factors text[], condition_terms text[] DEFAULT '{}')
RETURNS TABLE (rank int, playbook text, action text, matched text[], trials bigint, effectiveness numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN QUERY
    SELECT (row_number() OVER (ORDER BY coalesce(b.matched && condition_terms, false) DESC, b.effectiveness DESC,
                                        cardinality(b.matched) DESC, b.playbook))::int,
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
COMMENT ON FUNCTION cs.rank_playbooks(text[], text[]) IS
    'Enabled playbooks answering any of the factors, ranked first those answering any of condition_terms (an alert''s own condition terms), then by the best posterior mean effectiveness over the matched factors, then by how many factors they match, then by name.';

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
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    a   cs.alerts;
    p   cs.playbooks;
    h   record;
    fs  text[];
    aid bigint;
    who name := cs._require_csm('record actions');
BEGIN
    IF alert_id IS NULL OR playbook IS NULL THEN
        RAISE EXCEPTION 'alert id and playbook must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF outcome IS NOT NULL AND outcome NOT IN ('recovered', 'renewed', 'expanded', 'churned', 'no_change') THEN
        RAISE EXCEPTION 'unknown outcome "%"', outcome
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Outcomes are recovered, renewed, expanded, churned and no_change.';
    END IF;
    SELECT * INTO a FROM cs.alerts al WHERE al.id = record_action.alert_id;
    IF NOT FOUND OR NOT cs._user_sees_customer(who, a.customer_id) THEN
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
    INSERT INTO cs.actions (alert_id, customer_id, playbook, taken_by, outcome, outcome_at, outcome_source, factors,
                            health_at_action, band_at_action, renewal_date_at_action)
    SELECT a.id, a.customer_id, p.name, who, outcome, CASE WHEN outcome IS NOT NULL THEN now() END,
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
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    fid uuid;
    who name := cs._require_csm('record feedback');
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
    IF NOT EXISTS (SELECT 1 FROM cs.alerts a WHERE a.id = record_feedback.alert_id
                      AND cs._user_sees_customer(who, a.customer_id)) THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO cs.alert_feedback (alert_id, user_id, feedback_type, rating, comments)
    VALUES (alert_id, who, feedback_type, rating, comments)
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
       a.mrr_at_risk,
       -- scalar subqueries, not lateral joins: the planner memoizes lateral
       -- lookups with a hash table sized for every open alert, which cost the
       -- alerts page more than its lookups (4x its time at 100,000 customers)
       (SELECT x.risk_score FROM cs.risk_assessments x WHERE x.customer_id = a.customer_id AND x.risk_type = 'churn'
         ORDER BY x.created_at DESC LIMIT 1) AS churn_risk,
       (SELECT s.band FROM cs.customer_health_scores s WHERE s.customer_id = a.customer_id
         ORDER BY s.calculated_at DESC LIMIT 1) AS band,
       (SELECT s.overall_score FROM cs.customer_health_scores s WHERE s.customer_id = a.customer_id
         ORDER BY s.calculated_at DESC LIMIT 1) AS overall_score,
       a.risk_factors AS drivers,
       a.suggested_actions -> 0 ->> 'playbook' AS top_suggestion,
       a.suggested_actions,
       a.snoozed_until,
       a.created_at,
       a.updated_at
  FROM cs.alerts a
  JOIN cs.customers c ON c.id = a.customer_id
  LEFT JOIN cs.alert_rules r ON r.id = a.rule_id
 WHERE a.alert_type = 'risk' AND a.status IN ('open', 'acknowledged', 'snoozed') AND c.churned_at IS NULL;
COMMENT ON VIEW cs.risk_alerts IS 'Unresolved risk alerts of active customers with their drivers and suggested playbooks. ORDER BY severity_rank DESC, mrr_at_risk DESC (LIMIT n) reads the most severe and largest first from an index.';
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
COMMENT ON COLUMN cs.risk_alerts.mrr_at_risk IS 'MRR of the customer when the alert last fired.';
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

-- source: src/sql/80_integrations.sql
-- Integrations: loaders for what real tools export (Stripe, Zendesk, HubSpot,
-- Mixpanel, Amplitude, any CSV with a column mapping).  Every loader maps
-- into the canonical signal tables idempotently (an upsert on the source's
-- id that leaves unchanged rows alone), resolves customers by external_id or
-- through cs.customer_keys, and puts what it cannot load into
-- cs.ingest_rejects with the reason: nothing is dropped silently.

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE TABLE cs.data_sources (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    format         text NOT NULL CHECK (format IN ('stripe_invoice', 'stripe_invoice_csv', 'zendesk_ticket',
                                                   'hubspot_company', 'hubspot_contact', 'mixpanel', 'amplitude', 'csv')),
    system         text NOT NULL CHECK (system ~ '^[a-z][a-z0-9_]*$' AND system <> 'any'),
    options        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    expected_every interval CHECK (expected_every > '0'),
    enabled        boolean NOT NULL DEFAULT true,
    description    text
);
COMMENT ON TABLE cs.data_sources IS 'Where data comes from: one row per loadable source, its format, options and how often data is expected.';
COMMENT ON COLUMN cs.data_sources.name IS 'Source name, passed to cs.ingest and the command-line loader.';
COMMENT ON COLUMN cs.data_sources.format IS 'stripe_invoice (API JSON), stripe_invoice_csv (Dashboard export), zendesk_ticket (API JSON), hubspot_company, hubspot_contact (CSV exports), mixpanel, amplitude (NDJSON exports) or csv (generic, with a column mapping in options).';
COMMENT ON COLUMN cs.data_sources.system IS 'The system the source''s ids belong to; cs.customer_keys are looked up under it (and under any).';
COMMENT ON COLUMN cs.data_sources.options IS 'Format options: customer_property and feature_property (events), metadata_key (Stripe), and for csv: target, mapping {column: header}, customer (header), customer_key_kind.';
COMMENT ON COLUMN cs.data_sources.expected_every IS 'Data is expected at least this often; a longer silence is a freshness problem and lowers risk confidence. NULL: not monitored.';
COMMENT ON COLUMN cs.data_sources.enabled IS 'Disabled sources refuse loads and are not monitored.';
COMMENT ON COLUMN cs.data_sources.description IS 'Free text.';

INSERT INTO cs.data_sources (name, format, system, options, description) VALUES
    ('stripe_invoices', 'stripe_invoice', 'stripe', '{"metadata_key": "external_id"}',
     'Stripe invoice objects as the API and webhooks return them (single object, event envelope or list).'),
    ('stripe_invoices_csv', 'stripe_invoice_csv', 'stripe', '{"metadata_key": "external_id"}',
     'Stripe Dashboard invoice export (CSV).'),
    ('zendesk_tickets', 'zendesk_ticket', 'zendesk', '{}',
     'Zendesk ticket objects as the API returns them (single, {"ticket": ...} or {"tickets": [...]}).'),
    ('hubspot_companies', 'hubspot_company', 'hubspot', '{}', 'HubSpot companies export (CSV).'),
    ('hubspot_contacts', 'hubspot_contact', 'hubspot', '{}', 'HubSpot contacts export (CSV).'),
    ('mixpanel', 'mixpanel', 'mixpanel', '{"customer_property": "company_id", "feature_property": "feature"}',
     'Mixpanel raw event export (NDJSON).'),
    ('amplitude', 'amplitude', 'amplitude', '{"customer_property": "company_id", "feature_property": "feature"}',
     'Amplitude event export (NDJSON).');

CREATE TABLE cs.customer_keys (
    source      text NOT NULL,
    key_kind    text NOT NULL,
    key         text NOT NULL,
    customer_id uuid NOT NULL REFERENCES cs.customers (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, key_kind, key)
);
CREATE INDEX customer_keys_customer_idx ON cs.customer_keys (customer_id);
COMMENT ON TABLE cs.customer_keys IS 'Maps the keys other systems use for a customer (Stripe customer, Zendesk organization, HubSpot company, email domain, old external ids) to cs.customers.id.';
COMMENT ON COLUMN cs.customer_keys.source IS 'System the key belongs to (cs.data_sources.system), or any for keys valid everywhere (domain, external_id).';
COMMENT ON COLUMN cs.customer_keys.key_kind IS 'What the key is: customer (stripe), organization (zendesk), company (hubspot), domain, external_id, or any name a csv source uses.';
COMMENT ON COLUMN cs.customer_keys.key IS 'The key value; domains in lower case.';
COMMENT ON COLUMN cs.customer_keys.customer_id IS 'The customer it maps to.';
COMMENT ON COLUMN cs.customer_keys.created_at IS 'When the mapping was added (by hand or learnt by a loader).';

CREATE TABLE cs.ingest_rejects (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text NOT NULL,
    payload      jsonb NOT NULL,
    reason       text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    times_seen   int NOT NULL DEFAULT 1,
    payload_hash text GENERATED ALWAYS AS (md5(payload::text)) STORED,
    CONSTRAINT ingest_rejects_once UNIQUE (source, payload_hash)
);
CREATE INDEX ingest_rejects_time_idx ON cs.ingest_rejects (received_at);
COMMENT ON TABLE cs.ingest_rejects IS 'Rows a loader could not load, with the reason; one row per distinct payload and source (a reload counts times_seen). A row that loads later is removed.';
COMMENT ON COLUMN cs.ingest_rejects.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.ingest_rejects.source IS 'Source name (cs.data_sources.name).';
COMMENT ON COLUMN cs.ingest_rejects.payload IS 'The rejected record as received (a JSON string when it was not valid JSON).';
COMMENT ON COLUMN cs.ingest_rejects.reason IS 'Why it was rejected.';
COMMENT ON COLUMN cs.ingest_rejects.received_at IS 'Last time it was received.';
COMMENT ON COLUMN cs.ingest_rejects.times_seen IS 'How often it was received.';
COMMENT ON COLUMN cs.ingest_rejects.payload_hash IS 'md5 of the payload, to recognise a reload.';

CREATE TABLE cs.source_activity (
    source    text NOT NULL,
    hour      timestamptz NOT NULL,
    accepted  bigint NOT NULL DEFAULT 0 CHECK (accepted >= 0),
    rejected  bigint NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    last_at   timestamptz NOT NULL,
    PRIMARY KEY (source, hour)
);
COMMENT ON TABLE cs.source_activity IS 'Rows received per source and hour: the basis of the freshness and volume checks.';
COMMENT ON COLUMN cs.source_activity.source IS 'Source name.';
COMMENT ON COLUMN cs.source_activity.hour IS 'Start of the hour.';
COMMENT ON COLUMN cs.source_activity.accepted IS 'Rows loaded (inserted, updated or already present).';
COMMENT ON COLUMN cs.source_activity.rejected IS 'Rows rejected.';
COMMENT ON COLUMN cs.source_activity.last_at IS 'Last row received in the hour.';

-- The web domain of a customer: resolves records by email domain and finds duplicates.
ALTER TABLE cs.customers ADD COLUMN domain text CHECK (domain = lower(btrim(domain)) AND domain <> '');
CREATE INDEX customers_domain_idx ON cs.customers (domain) WHERE domain IS NOT NULL;
COMMENT ON COLUMN cs.customers.domain IS 'Web domain of the account, lower case (for example acme.com); loaders resolve email addresses by it.';

-- Source ids on the signal tables without an external_id of their own.
-- Partial unique indexes: rows loaded directly (source NULL) cost nothing.
ALTER TABLE cs.support_tickets ADD COLUMN source text;
ALTER TABLE cs.invoices ADD COLUMN source text;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['usage_events', 'contacts', 'engagements', 'nps_responses', 'subscriptions'] LOOP
        EXECUTE format('ALTER TABLE cs.%I ADD COLUMN source text, ADD COLUMN source_id text', t);
        EXECUTE format('ALTER TABLE cs.%I ADD CONSTRAINT %I CHECK ((source IS NULL) = (source_id IS NULL))',
                       t, t || '_source_check');
        IF t = 'usage_events' THEN
            -- A unique index of a partitioned table must contain the partition key.
            EXECUTE 'CREATE UNIQUE INDEX usage_events_source_key ON cs.usage_events (source, source_id, occurred_at)
                      WHERE source IS NOT NULL';
        ELSE
            EXECUTE format('CREATE UNIQUE INDEX %I ON cs.%I (source, source_id) WHERE source IS NOT NULL', t || '_source_key', t);
        END IF;
        EXECUTE format('COMMENT ON COLUMN cs.%I.source IS %L', t, 'Data source the row was loaded from (cs.data_sources.name); NULL when loaded directly.');
        EXECUTE format('COMMENT ON COLUMN cs.%I.source_id IS %L', t, 'The row''s id in the source; loaders upsert on (source, source_id).');
    END LOOP;
END;
$$;
COMMENT ON COLUMN cs.support_tickets.source IS 'Data source the row was last loaded from; NULL when loaded directly. Loaders upsert on external_id.';
COMMENT ON COLUMN cs.invoices.source IS 'Data source the row was last loaded from; NULL when loaded directly. Loaders upsert on external_id.';

CREATE TYPE cs.ingest_result AS (inserted bigint, updated bigint, unchanged bigint, rejected bigint);
COMMENT ON TYPE cs.ingest_result IS 'Outcome of a load: rows inserted, updated, already present unchanged, and rejected.';

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

-- The customer a key of a system maps to: the system's own mapping, then a
-- mapping valid for any system, then (for external_id) cs.customers itself.
CREATE FUNCTION cs.resolve_customer(source text, key_kind text, key text)
RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
RETURN coalesce(
    (SELECT k.customer_id FROM cs.customer_keys k
      WHERE k.source = resolve_customer.source AND k.key_kind = resolve_customer.key_kind AND k.key = resolve_customer.key),
    (SELECT k.customer_id FROM cs.customer_keys k
      WHERE k.source = 'any' AND k.key_kind = resolve_customer.key_kind AND k.key = resolve_customer.key),
    CASE resolve_customer.key_kind
         WHEN 'external_id' THEN (SELECT c.id FROM cs.customers c WHERE c.external_id = resolve_customer.key)
         -- Two customers with one domain are a duplicate (see cs.data_quality): the oldest wins meanwhile.
         WHEN 'domain' THEN (SELECT c.id FROM cs.customers c WHERE c.domain = lower(resolve_customer.key)
                              ORDER BY c.created_at, c.id LIMIT 1) END);
COMMENT ON FUNCTION cs.resolve_customer(text, text, text) IS
    'Customer a key maps to: cs.customer_keys under the system, then under any, then cs.customers.external_id (key_kind external_id) or cs.customers.domain (key_kind domain); NULL when unknown.';

-- Lower-case domain of an email address or URL, without www.
CREATE FUNCTION cs.domain_of(address text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(regexp_replace(lower(btrim(
           CASE WHEN address LIKE '%@%' THEN split_part(address, '@', 2)
                ELSE split_part(regexp_replace(address, '^[a-zA-Z]+://', ''), '/', 1) END)), '^www\.', ''), '');
COMMENT ON FUNCTION cs.domain_of(text) IS 'Lower-case domain of an email address or URL (without www.), NULL when empty.';

-- A company name reduced for comparison: lower case, only letters and
-- digits, common legal suffixes dropped ("ACME, Inc." = "Acme Inc" = "acme").
CREATE FUNCTION cs.normalise_name(name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(regexp_replace(
           regexp_replace(lower(name), '[^a-z0-9]+', ' ', 'g'),
           '(\s(inc|incorporated|llc|ltd|limited|gmbh|corp|corporation|co|company|sa|sas|ag|plc|bv|nv|pty|srl|oy|ab))+\s*$|\s+', '', 'g'), '');
COMMENT ON FUNCTION cs.normalise_name(text) IS 'Company name reduced for duplicate detection: lower case, letters and digits only, trailing legal suffixes (inc, llc, ltd, gmbh, ...) removed.';

-- Text to timestamptz for the formats exports use (ISO 8601, "YYYY-MM-DD HH:MI[:SS]"
-- read as UTC, unix seconds); NULL for empty text, an error for anything else.
CREATE FUNCTION cs._parse_time(v text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
BEGIN
    v := nullif(btrim(v), '');
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF v ~ '^[0-9]{9,11}$' THEN
        RETURN to_timestamp(v::float8);
    ELSIF v !~ '^[0-9]' THEN
        -- not a date at all (and not one of the words now, today, infinity, epoch)
        RAISE EXCEPTION 'invalid time "%"', v USING ERRCODE = 'invalid_datetime_format';
    ELSIF v ~ '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$' THEN
        RETURN v::timestamptz;
    END IF;
    RETURN (v::timestamp) AT TIME ZONE 'UTC';
EXCEPTION WHEN data_exception OR invalid_text_representation OR datetime_field_overflow THEN
    RAISE EXCEPTION 'invalid time "%"', v USING ERRCODE = 'invalid_datetime_format';
END;
$$;
COMMENT ON FUNCTION cs._parse_time(text) IS 'Internal: a time as exports write it (ISO 8601 with zone, UTC without one, or unix seconds); NULL when empty.';

-- A time that cannot be right: before 2000 or more than a day ahead.
CREATE FUNCTION cs._check_time(what text, t timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF t < '2000-01-01' OR t > now() + interval '1 day' THEN
        RAISE EXCEPTION '% % is out of range', what, t USING ERRCODE = 'datetime_field_overflow';
    END IF;
    RETURN t;
END;
$$;
COMMENT ON FUNCTION cs._check_time(text, timestamptz) IS 'Internal: the time unchanged, or an out-of-range error when it is before 2000 or more than a day in the future.';

-- Records a key of a system for a customer, unless it maps elsewhere already.
CREATE FUNCTION cs._learn_key(source text, key_kind text, key text, customer_id uuid)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, cs
BEGIN ATOMIC
    INSERT INTO cs.customer_keys (source, key_kind, key, customer_id)
    SELECT _learn_key.source, _learn_key.key_kind, _learn_key.key, _learn_key.customer_id
     WHERE _learn_key.key IS NOT NULL AND _learn_key.customer_id IS NOT NULL
    ON CONFLICT DO NOTHING;
END;
COMMENT ON FUNCTION cs._learn_key(text, text, text, uuid) IS 'Internal: records a key of a system for a customer unless the key is mapped already.';

-- Counts rows received by a source in the current hour.
CREATE FUNCTION cs._note_activity(source text, accepted bigint, rejected bigint)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, cs
BEGIN ATOMIC
    INSERT INTO cs.source_activity AS a (source, hour, accepted, rejected, last_at)
    SELECT _note_activity.source, date_trunc('hour', now()), _note_activity.accepted, _note_activity.rejected, now()
     WHERE _note_activity.accepted + _note_activity.rejected > 0
    ON CONFLICT (source, hour) DO UPDATE
       SET accepted = a.accepted + excluded.accepted, rejected = a.rejected + excluded.rejected, last_at = excluded.last_at;
END;
COMMENT ON FUNCTION cs._note_activity(text, bigint, bigint) IS 'Internal: adds received rows to cs.source_activity for the current hour.';

-- Stores a rejected record (once per distinct payload).
CREATE FUNCTION cs._reject(source text, payload jsonb, reason text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, cs
BEGIN ATOMIC
    INSERT INTO cs.ingest_rejects AS r (source, payload, reason)
    VALUES (_reject.source, _reject.payload, _reject.reason)
    ON CONFLICT (source, payload_hash) DO UPDATE
       SET reason = excluded.reason, received_at = excluded.received_at, times_seen = r.times_seen + 1;
END;
COMMENT ON FUNCTION cs._reject(text, jsonb, text) IS 'Internal: records a rejected record with its reason; a reload of the same record counts times_seen.';

-- The loading source, or an error when it is unknown or disabled.
CREATE FUNCTION cs._source(name text)
RETURNS cs.data_sources
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    s cs.data_sources;
BEGIN
    SELECT * INTO s FROM cs.data_sources d WHERE d.name = _source.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown data source "%"', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Built-in sources: stripe_invoices, stripe_invoices_csv, zendesk_tickets, hubspot_companies, hubspot_contacts, mixpanel, amplitude; add others to cs.data_sources.';
    END IF;
    IF NOT s.enabled THEN
        RAISE EXCEPTION 'data source "%" is disabled', name USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN s;
END;
$$;
COMMENT ON FUNCTION cs._source(text) IS 'Internal: the cs.data_sources row of a source, or an error when it is unknown or disabled.';

-- The error a loader raises for a record it cannot map.
CREATE FUNCTION cs._unmappable(reason text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '%', reason USING ERRCODE = 'invalid_parameter_value';
END;
$$;
COMMENT ON FUNCTION cs._unmappable(text) IS 'Internal: raises the error that turns a record into a reject with the given reason.';

-- A numeric field of a record, or an out-of-range error when it is not a number.
CREATE FUNCTION cs._number(what text, v text)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    v := nullif(replace(btrim(v), ',', ''), '');
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$' THEN
        RAISE EXCEPTION '% "%" is not a number', what, v USING ERRCODE = 'invalid_text_representation';
    END IF;
    RETURN v::numeric;
END;
$$;
COMMENT ON FUNCTION cs._number(text, text) IS 'Internal: a number field (thousands separators allowed), NULL when empty, an error when not a number.';

------------------------------------------------------------------------------
-- Per-format loaders of one record.  Each returns inserted, updated or
-- unchanged, or raises an error whose message becomes the reject reason.
------------------------------------------------------------------------------

-- Upserts an invoice on its external id; the common end of both Stripe formats.
CREATE FUNCTION cs._upsert_invoice(src text, customer_id uuid, external_id text, amount numeric, issued_at date,
                                   due_date date, paid_at date, status text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ins boolean;
BEGIN
    IF amount IS NULL THEN
        PERFORM cs._unmappable('no amount');
    ELSIF amount < 0 THEN
        PERFORM cs._unmappable(format('amount %s is out of range (negative: a credit note, not an invoice)', amount));
    ELSIF amount >= 1e10 THEN
        PERFORM cs._unmappable(format('amount %s is out of range', amount));
    END IF;
    IF issued_at IS NULL THEN
        PERFORM cs._unmappable('no invoice date');
    END IF;
    PERFORM cs._check_time('invoice date', issued_at);
    INSERT INTO cs.invoices AS i (customer_id, external_id, amount, issued_at, due_date, paid_at, status, source)
    VALUES (customer_id, external_id, amount, issued_at, coalesce(due_date, issued_at), paid_at, status, src)
    ON CONFLICT ON CONSTRAINT invoices_external_id_key DO UPDATE
       SET customer_id = excluded.customer_id, amount = excluded.amount, issued_at = excluded.issued_at,
           due_date = excluded.due_date, paid_at = excluded.paid_at, status = excluded.status, source = excluded.source
     WHERE (i.customer_id, i.amount, i.issued_at, i.due_date, i.paid_at, i.status)
           IS DISTINCT FROM (excluded.customer_id, excluded.amount, excluded.issued_at, excluded.due_date, excluded.paid_at, excluded.status)
    RETURNING (xmax = 0) INTO ins;
    RETURN CASE WHEN ins IS NULL THEN 'unchanged' WHEN ins THEN 'inserted' ELSE 'updated' END;
END;
$$;
COMMENT ON FUNCTION cs._upsert_invoice(text, uuid, text, numeric, date, date, date, text) IS
    'Internal: range checks and upserts an invoice on its external id; returns inserted, updated or unchanged.';

-- The customer of a Stripe invoice: the Stripe customer id mapping, the
-- metadata key holding our external_id, then the email domain.  A match by
-- metadata or domain is remembered for the Stripe customer id.
CREATE FUNCTION cs._stripe_customer(sys text, stripe_customer text, meta_external_id text, email text)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c uuid;
BEGIN
    c := cs.resolve_customer(sys, 'customer', stripe_customer);
    IF c IS NULL AND meta_external_id IS NOT NULL THEN
        c := cs.resolve_customer(sys, 'external_id', meta_external_id);
    END IF;
    IF c IS NULL AND email IS NOT NULL THEN
        c := cs.resolve_customer(sys, 'domain', cs.domain_of(email));
    END IF;
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: Stripe customer %s (metadata external_id %s, email %s) maps to no customer',
                                      coalesce(stripe_customer, '(none)'), coalesce(meta_external_id, '(none)'), coalesce(email, '(none)')));
    END IF;
    PERFORM cs._learn_key(sys, 'customer', stripe_customer, c);
    RETURN c;
END;
$$;
COMMENT ON FUNCTION cs._stripe_customer(text, text, text, text) IS
    'Internal: customer of a Stripe invoice by Stripe customer id mapping, metadata external_id or email domain; remembers the Stripe id.';

-- Stripe amounts are in the smallest currency unit, except for zero-decimal currencies.
CREATE FUNCTION cs._stripe_amount(minor numeric, currency text)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN lower(currency) IN ('bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf',
                                     'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf')
            THEN minor ELSE round(minor / 100, 2) END;
COMMENT ON FUNCTION cs._stripe_amount(numeric, text) IS 'Internal: a Stripe amount in minor units as a major-unit amount (zero-decimal currencies unchanged).';

-- Stripe invoice status to cs.invoices status: an open invoice whose payment was attempted has failed.
CREATE FUNCTION cs._stripe_status(status text, attempted boolean)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    status := lower(btrim(status));
    IF status NOT IN ('draft', 'open', 'paid', 'void', 'uncollectible') THEN
        RAISE EXCEPTION 'unknown Stripe invoice status "%"', status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN CASE WHEN status = 'open' AND coalesce(attempted, false) THEN 'failed' ELSE status END;
END;
$$;
COMMENT ON FUNCTION cs._stripe_status(text, boolean) IS 'Internal: Stripe invoice status as a cs.invoices status (open and attempted = failed).';

-- One Stripe invoice object (API shape).
CREATE FUNCTION cs._ingest_stripe_invoice(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c      uuid;
    status text;
    issued date;
BEGIN
    IF p ->> 'object' IS DISTINCT FROM 'invoice' OR coalesce(p ->> 'id', '') = '' THEN
        PERFORM cs._unmappable('not a Stripe invoice object (object must be "invoice" with an id)');
    END IF;
    c := cs._stripe_customer(s.system, p ->> 'customer', p -> 'metadata' ->> (s.options ->> 'metadata_key'), p ->> 'customer_email');
    status := cs._stripe_status(p ->> 'status', (p ->> 'attempted')::boolean AND coalesce((p ->> 'attempt_count')::int, 0) > 0);
    issued := (to_timestamp((p ->> 'created')::float8) AT TIME ZONE 'UTC')::date;
    RETURN cs._upsert_invoice(s.name, c, p ->> 'id',
                              cs._stripe_amount(cs._number('total', coalesce(p ->> 'total', p ->> 'amount_due')), coalesce(p ->> 'currency', 'usd')),
                              issued,
                              (to_timestamp((p ->> 'due_date')::float8) AT TIME ZONE 'UTC')::date,
                              CASE WHEN status = 'paid'
                                   THEN coalesce((to_timestamp((p -> 'status_transitions' ->> 'paid_at')::float8) AT TIME ZONE 'UTC')::date, issued) END,
                              status);
END;
$$;
COMMENT ON FUNCTION cs._ingest_stripe_invoice(cs.data_sources, jsonb) IS 'Internal: loads one Stripe invoice object (API shape) into cs.invoices.';

-- One row of the Stripe Dashboard invoice export (CSV headers as keys; amounts in major units).
CREATE FUNCTION cs._ingest_stripe_invoice_csv(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c      uuid;
    status text;
    issued date;
    paid   boolean := lower(coalesce(p ->> 'Paid', '')) IN ('true', 't', 'yes', '1');
BEGIN
    IF coalesce(p ->> 'id', '') = '' THEN
        PERFORM cs._unmappable('no id column (not a Stripe invoice export row)');
    END IF;
    c := cs._stripe_customer(s.system, nullif(p ->> 'Customer', ''),
                             nullif(p ->> ((s.options ->> 'metadata_key') || ' (metadata)'), ''), nullif(p ->> 'Customer Email', ''));
    status := CASE WHEN nullif(p ->> 'Status', '') IS NOT NULL
                   THEN cs._stripe_status(p ->> 'Status', cs._number('Attempt Count', p ->> 'Attempt Count') > 0)
                   WHEN paid THEN 'paid'
                   ELSE 'open' END;
    issued := cs._parse_time(p ->> 'Date (UTC)')::date;
    RETURN cs._upsert_invoice(s.name, c, p ->> 'id', cs._number('Total', coalesce(nullif(p ->> 'Total', ''), p ->> 'Amount Due')),
                              issued, cs._parse_time(p ->> 'Due Date (UTC)')::date,
                              CASE WHEN status = 'paid' THEN coalesce(cs._parse_time(p ->> 'Paid At (UTC)')::date, issued) END,
                              status);
END;
$$;
COMMENT ON FUNCTION cs._ingest_stripe_invoice_csv(cs.data_sources, jsonb) IS 'Internal: loads one row of the Stripe Dashboard invoice export into cs.invoices.';

-- One Zendesk ticket object (API shape).
CREATE FUNCTION cs._ingest_zendesk_ticket(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c       uuid;
    st      text := lower(p ->> 'status');
    pr      text := coalesce(lower(p ->> 'priority'), 'normal');
    opened  timestamptz;
    closed  timestamptz;
    v_csat  smallint;
    ins     boolean;
BEGIN
    IF coalesce(p ->> 'id', '') = '' OR p ->> 'created_at' IS NULL THEN
        PERFORM cs._unmappable('not a Zendesk ticket (id and created_at are required)');
    END IF;
    c := cs.resolve_customer(s.system, 'organization', p ->> 'organization_id');
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: Zendesk organization %s maps to no customer',
                                      coalesce(p ->> 'organization_id', '(none)')));
    END IF;
    st := CASE st WHEN 'hold' THEN 'on_hold' ELSE st END;
    IF st IS NULL OR st NOT IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed') THEN
        PERFORM cs._unmappable(format('unknown Zendesk status "%s"', p ->> 'status'));
    END IF;
    IF pr NOT IN ('low', 'normal', 'high', 'urgent') THEN
        PERFORM cs._unmappable(format('unknown Zendesk priority "%s"', p ->> 'priority'));
    END IF;
    opened := cs._check_time('created_at', cs._parse_time(p ->> 'created_at'));
    IF st IN ('solved', 'closed') THEN
        closed := coalesce(cs._parse_time(p ->> 'solved_at'), cs._parse_time(p -> 'metric_set' ->> 'solved_at'),
                           cs._parse_time(p ->> 'updated_at'));
    END IF;
    v_csat := CASE p -> 'satisfaction_rating' ->> 'score' WHEN 'good' THEN 5 WHEN 'bad' THEN 1 END;
    INSERT INTO cs.support_tickets AS t (customer_id, external_id, opened_at, closed_at, priority, status, csat, subject, body, source)
    VALUES (c, 'zendesk:' || (p ->> 'id'), opened, closed, pr, st, v_csat, p ->> 'subject', p ->> 'description', s.name)
    ON CONFLICT ON CONSTRAINT support_tickets_external_id_key DO UPDATE
       SET customer_id = excluded.customer_id, opened_at = excluded.opened_at, closed_at = excluded.closed_at,
           priority = excluded.priority, status = excluded.status, csat = excluded.csat, subject = excluded.subject,
           body = excluded.body, source = excluded.source
     WHERE (t.customer_id, t.opened_at, t.closed_at, t.priority, t.status, t.csat, t.subject, t.body)
           IS DISTINCT FROM (excluded.customer_id, excluded.opened_at, excluded.closed_at, excluded.priority,
                             excluded.status, excluded.csat, excluded.subject, excluded.body)
    RETURNING (xmax = 0) INTO ins;
    RETURN CASE WHEN ins IS NULL THEN 'unchanged' WHEN ins THEN 'inserted' ELSE 'updated' END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_zendesk_ticket(cs.data_sources, jsonb) IS
    'Internal: loads one Zendesk ticket (API shape) into cs.support_tickets as external_id zendesk:<id>; customer by organization mapping.';

-- A HubSpot employee count as a size band.
CREATE FUNCTION cs._size_band(employees numeric)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN employees IS NULL THEN NULL
            WHEN employees <= 10 THEN '1-10' WHEN employees <= 50 THEN '11-50'
            WHEN employees <= 200 THEN '51-200' WHEN employees <= 500 THEN '201-500'
            WHEN employees <= 1000 THEN '501-1000' WHEN employees <= 5000 THEN '1001-5000'
            ELSE '5001+' END;
COMMENT ON FUNCTION cs._size_band(numeric) IS 'Internal: employee count as a size band (1-10, 11-50, ..., 5001+).';

-- One row of the HubSpot companies export: creates or updates the customer.
CREATE FUNCTION cs._ingest_hubspot_company(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    rid    text := nullif(btrim(p ->> 'Record ID'), '');
    nm     text := nullif(btrim(p ->> 'Company name'), '');
    dom    text := cs.domain_of(coalesce(p ->> 'Company Domain Name', p ->> 'Website URL'));
    v_emp    numeric := cs._number('Number of Employees', p ->> 'Number of Employees');
    v_mrr    numeric := cs._number('MRR', p ->> 'MRR');
    v_start date := cs._parse_time(p ->> 'Contract Start Date')::date;
    v_end   date := cs._parse_time(coalesce(p ->> 'Contract End Date', p ->> 'Renewal Date'))::date;
    c      uuid;
    res    text;
BEGIN
    IF rid IS NULL THEN
        PERFORM cs._unmappable('no Record ID');
    END IF;
    IF nm IS NULL THEN
        PERFORM cs._unmappable(format('company %s has no name', rid));
    END IF;
    IF v_emp < 0 OR v_emp >= 1e8 THEN
        PERFORM cs._unmappable(format('company %s: Number of Employees %s is out of range', rid, v_emp));
    END IF;
    IF v_mrr < 0 OR v_mrr >= 1e8 THEN
        PERFORM cs._unmappable(format('company %s: MRR %s is out of range', rid, v_mrr));
    END IF;
    IF v_end < v_start THEN
        PERFORM cs._unmappable(format('company %s: contract end %s before start %s', rid, v_end, v_start));
    END IF;
    c := coalesce(cs.resolve_customer(s.system, 'company', rid), cs.resolve_customer(s.system, 'external_id', rid));
    IF c IS NULL THEN
        INSERT INTO cs.customers (external_id, name, industry, size, mrr, contract_start_date, contract_end_date, domain)
        VALUES (rid, nm, nullif(p ->> 'Industry', ''), cs._size_band(v_emp), v_mrr, v_start, v_end, dom)
        RETURNING id INTO c;
        res := 'inserted';
    ELSE
        UPDATE cs.customers u
           SET name = nm, industry = coalesce(nullif(p ->> 'Industry', ''), u.industry),
               size = coalesce(cs._size_band(v_emp), u.size), mrr = coalesce(v_mrr, u.mrr),
               contract_start_date = coalesce(v_start, u.contract_start_date),
               contract_end_date = coalesce(v_end, u.contract_end_date), domain = coalesce(dom, u.domain)
         WHERE u.id = c
           AND (u.name, u.industry, u.size, u.mrr, u.contract_start_date, u.contract_end_date, u.domain)
               IS DISTINCT FROM (nm, coalesce(nullif(p ->> 'Industry', ''), u.industry), coalesce(cs._size_band(v_emp), u.size),
                                 coalesce(v_mrr, u.mrr), coalesce(v_start, u.contract_start_date), coalesce(v_end, u.contract_end_date),
                                 coalesce(dom, u.domain));
        res := CASE WHEN FOUND THEN 'updated' ELSE 'unchanged' END;
    END IF;
    PERFORM cs._learn_key(s.system, 'company', rid, c);
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs._ingest_hubspot_company(cs.data_sources, jsonb) IS
    'Internal: loads one row of the HubSpot companies export: creates the customer (external_id = Record ID, domain from Company Domain Name) or updates it, and learns its company id.';

-- One row of the HubSpot contacts export.
CREATE FUNCTION cs._ingest_hubspot_contact(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    rid   text := nullif(btrim(p ->> 'Record ID'), '');
    v_email text := nullif(lower(btrim(p ->> 'Email')), '');
    comp  text := nullif(btrim(split_part(coalesce(p ->> 'Associated Company IDs (Primary)', p ->> 'Associated Company IDs',
                                                   p ->> 'Associated Company ID', ''), ';', 1)), '');
    nm    text := nullif(btrim(concat_ws(' ', nullif(btrim(p ->> 'First Name'), ''), nullif(btrim(p ->> 'Last Name'), ''))), '');
    c     uuid;
    ins   boolean;
BEGIN
    IF rid IS NULL THEN
        PERFORM cs._unmappable('no Record ID');
    END IF;
    IF v_email IS NOT NULL AND v_email !~ '^[^@[:space:]]+@[^@[:space:]]+$' THEN
        PERFORM cs._unmappable(format('contact %s: invalid email "%s"', rid, v_email));
    END IF;
    c := cs.resolve_customer(s.system, 'company', comp);
    IF c IS NULL AND v_email IS NOT NULL THEN
        c := cs.resolve_customer(s.system, 'domain', cs.domain_of(v_email));
    END IF;
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: contact %s (company %s, email %s) maps to no customer',
                                      rid, coalesce(comp, '(none)'), coalesce(v_email, '(none)')));
    END IF;
    INSERT INTO cs.contacts AS t (customer_id, name, email, role, source, source_id)
    VALUES (c, coalesce(nm, v_email, 'contact ' || rid), v_email, nullif(btrim(p ->> 'Job Title'), ''), s.name, rid)
    ON CONFLICT (source, source_id) WHERE source IS NOT NULL DO UPDATE
       SET customer_id = excluded.customer_id, name = excluded.name, email = excluded.email, role = excluded.role
     WHERE (t.customer_id, t.name, t.email, t.role) IS DISTINCT FROM (excluded.customer_id, excluded.name, excluded.email, excluded.role)
    RETURNING (xmax = 0) INTO ins;
    RETURN CASE WHEN ins IS NULL THEN 'unchanged' WHEN ins THEN 'inserted' ELSE 'updated' END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_hubspot_contact(cs.data_sources, jsonb) IS
    'Internal: loads one row of the HubSpot contacts export into cs.contacts; customer by associated company id, then email domain.';

-- Validates the options of a csv source: target table and mapping.
CREATE FUNCTION cs._check_csv_options(s cs.data_sources)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    bad text;
    tgt text := s.options ->> 'target';
    m   jsonb := s.options -> 'mapping';
BEGIN
    IF tgt IS NULL OR tgt NOT IN ('customers', 'usage_events', 'support_tickets', 'invoices', 'engagements',
                                  'nps_responses', 'contacts', 'subscriptions') THEN
        RAISE EXCEPTION 'csv source "%": options.target must be a signal table, not %', s.name, coalesce(tgt, 'missing')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'One of customers, usage_events, support_tickets, invoices, engagements, nps_responses, contacts, subscriptions.';
    END IF;
    IF jsonb_typeof(m) IS DISTINCT FROM 'object' OR EXISTS (SELECT 1 FROM jsonb_each(m) e WHERE jsonb_typeof(e.value) <> 'string') THEN
        RAISE EXCEPTION 'csv source "%": options.mapping must be an object {"column": "CSV header"}', s.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT k INTO bad FROM jsonb_object_keys(m) k
     WHERE k IN ('id', 'customer_id', 'source', 'created_at', 'updated_at')
        OR NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = format('cs.%I', tgt)::regclass AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'csv source "%": cs.% has no loadable column "%"', s.name, tgt, bad
            USING ERRCODE = 'undefined_column',
                  HINT = 'Map target columns to headers; the customer comes from options.customer, the source from the source name.';
    END IF;
    IF tgt = 'customers' THEN
        IF NOT m ? 'external_id' OR NOT m ? 'name' THEN
            RAISE EXCEPTION 'csv source "%": loading customers needs external_id and name in the mapping', s.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        IF s.options ->> 'customer' IS NULL THEN
            RAISE EXCEPTION 'csv source "%": options.customer must name the header holding the customer key', s.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF tgt IN ('support_tickets', 'invoices') AND NOT m ? 'external_id' THEN
            RAISE EXCEPTION 'csv source "%": loading % needs external_id in the mapping (rows are upserted on it)', s.name, tgt
                USING ERRCODE = 'invalid_parameter_value';
        ELSIF tgt NOT IN ('support_tickets', 'invoices') AND NOT m ? 'source_id' THEN
            RAISE EXCEPTION 'csv source "%": loading % needs source_id in the mapping (rows are upserted on it)', s.name, tgt
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
END;
$$;
COMMENT ON FUNCTION cs._check_csv_options(cs.data_sources) IS 'Internal: errors when a csv source''s target or mapping is unusable.';

-- One row of a generic CSV: mapped columns, converted by the table's types.
CREATE FUNCTION cs._ingest_csv(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    tgt   text := s.options ->> 'target';
    m     jsonb := s.options -> 'mapping';
    rec   jsonb;
    cols  text[];
    c     uuid;
    ckey  text;
    conflict text;
    setl  text;
    ins   boolean;
    existed boolean;
BEGIN
    SELECT jsonb_object_agg(e.key, nullif(p ->> e.value, '')), array_agg(e.key ORDER BY e.key)
      INTO rec, cols
      FROM jsonb_each_text(m) e;
    IF tgt <> 'customers' THEN
        ckey := nullif(btrim(p ->> (s.options ->> 'customer')), '');
        c := cs.resolve_customer(s.system, coalesce(s.options ->> 'customer_key_kind', 'external_id'), ckey);
        IF c IS NULL THEN
            PERFORM cs._unmappable(format('unknown customer: %s "%s" maps to no customer',
                                          s.options ->> 'customer', coalesce(ckey, '(empty)')));
        END IF;
        rec := rec || jsonb_build_object('customer_id', c);
        cols := cols || ARRAY['customer_id'];
        IF tgt NOT IN ('support_tickets', 'invoices') AND rec ->> 'source_id' IS NULL THEN
            PERFORM cs._unmappable(format('no source id in "%s"', m ->> 'source_id'));
        END IF;
        rec := rec || jsonb_build_object('source', s.name);
        cols := cols || ARRAY['source'];
    END IF;
    conflict := CASE tgt WHEN 'customers' THEN '(external_id)'
                         WHEN 'support_tickets' THEN 'ON CONSTRAINT support_tickets_external_id_key'
                         WHEN 'invoices' THEN 'ON CONSTRAINT invoices_external_id_key'
                         WHEN 'usage_events' THEN '(source, source_id, occurred_at) WHERE source IS NOT NULL'
                         ELSE '(source, source_id) WHERE source IS NOT NULL' END;
    SELECT string_agg(format('%I = excluded.%I', x, x), ', ') INTO setl FROM unnest(cols) x;
    -- A partitioned table has no xmax to RETURN: look for the event first.
    IF tgt = 'usage_events' THEN
        existed := EXISTS (SELECT 1 FROM cs.usage_events e
                            WHERE e.source = s.name AND e.source_id = rec ->> 'source_id'
                              AND e.occurred_at = (rec ->> 'occurred_at')::timestamptz);
    END IF;
    EXECUTE format('INSERT INTO cs.%1$I AS t (%2$s) SELECT %2$s FROM jsonb_populate_record(NULL::cs.%1$I, $1)
                    ON CONFLICT %3$s DO UPDATE SET %4$s
                    WHERE (%5$s) IS DISTINCT FROM (%6$s)
                    RETURNING %7$s',
                   tgt,
                   (SELECT string_agg(format('%I', x), ', ') FROM unnest(cols) x),
                   conflict, setl,
                   (SELECT string_agg(format('t.%I', x), ', ') FROM unnest(cols) x),
                   (SELECT string_agg(format('excluded.%I', x), ', ') FROM unnest(cols) x),
                   CASE WHEN tgt = 'usage_events' THEN 'true' ELSE '(xmax = 0)' END)
       INTO ins USING rec;
    IF ins IS NOT NULL AND tgt = 'usage_events' THEN
        ins := NOT existed;
    END IF;
    RETURN CASE WHEN ins IS NULL THEN 'unchanged' WHEN ins THEN 'inserted' ELSE 'updated' END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_csv(cs.data_sources, jsonb) IS
    'Internal: loads one row of a generic CSV into the source''s target table through its mapping (values converted by the column types, constraints checked); upserts on external_id or (source, source_id).';

------------------------------------------------------------------------------
-- Events (the hot path: parsed in C)
------------------------------------------------------------------------------

-- A line as jsonb, or as a JSON string when it is not valid JSON.
CREATE FUNCTION cs._jsonb_or_string(line text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RETURN line::jsonb;
EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR character_not_in_repertoire THEN
    RETURN to_jsonb(line);
END;
$$;
COMMENT ON FUNCTION cs._jsonb_or_string(text) IS 'Internal: a text as jsonb, or as a JSON string when it does not parse.';

CREATE FUNCTION cs.parse_events(format text, lines text, customer_property text DEFAULT 'company_id',
                                feature_property text DEFAULT 'feature',
                                OUT line int, OUT customer_key text, OUT user_id text, OUT event text,
                                OUT feature text, OUT quantity float8, OUT occurred_at timestamptz,
                                OUT source_id text, OUT error text, OUT raw text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cs_parse_events'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs.parse_events(text, text, text, text) IS
    'Parses a chunk of Mixpanel or Amplitude NDJSON export: one row per non-blank line with the event fields, or error saying why the line cannot be loaded; raw is the line itself.';

-- Loads a chunk of NDJSON events of a mixpanel or amplitude source.
CREATE FUNCTION cs.ingest_events(source text, lines text)
RETURNS cs.ingest_result
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
#variable_conflict use_column
DECLARE
    s     cs.data_sources := cs._source(source);
    res   cs.ingest_result := (0, 0, 0, 0)::cs.ingest_result;
    n     bigint;
    total bigint;
BEGIN
    IF s.format NOT IN ('mixpanel', 'amplitude') THEN
        RAISE EXCEPTION 'data source "%" is not an event source (format %)', source, s.format
            USING ERRCODE = 'wrong_object_type', HINT = 'Use cs.ingest(source, payload) for records.';
    END IF;
    IF to_regclass('pg_temp.cs_ingest_events_parsed') IS NULL THEN
        CREATE TEMP TABLE cs_ingest_events_parsed (
        line int, customer_id uuid, user_id text, event text, feature text, quantity float8,
        occurred_at timestamptz, source_id text, error text, raw text) ON COMMIT DROP;
    END IF;
    TRUNCATE cs_ingest_events_parsed;
    INSERT INTO cs_ingest_events_parsed
    SELECT p.line,
           CASE WHEN p.error IS NULL THEN coalesce(ks.customer_id, ka.customer_id, c.id) END,
           p.user_id, p.event, p.feature, p.quantity, p.occurred_at,
           coalesce(p.source_id, 'md5:' || md5(p.raw)),
           coalesce(p.error,
                    CASE WHEN coalesce(ks.customer_id, ka.customer_id, c.id) IS NULL
                         THEN format('unknown customer: %s %s maps to no customer', s.options ->> 'customer_property', p.customer_key)
                         WHEN p.occurred_at < '2000-01-01' OR p.occurred_at > now() + interval '1 day'
                         THEN format('occurred_at %s is out of range', p.occurred_at) END),
           p.raw
      FROM cs.parse_events(s.format, lines, coalesce(s.options ->> 'customer_property', 'company_id'),
                           coalesce(s.options ->> 'feature_property', 'feature')) p
      LEFT JOIN cs.customer_keys ks ON ks.source = s.system AND ks.key_kind = 'customer' AND ks.key = p.customer_key
      LEFT JOIN cs.customer_keys ka ON ka.source = 'any' AND ka.key_kind = 'customer' AND ka.key = p.customer_key
      LEFT JOIN cs.customers c ON c.external_id = p.customer_key;

    -- Rejects: invalid JSON is kept as a JSON string.
    WITH bad AS (
        SELECT DISTINCT ON (md5(x.raw)) x.raw, x.error FROM cs_ingest_events_parsed x WHERE x.error IS NOT NULL
         ORDER BY md5(x.raw), x.line
    )
    INSERT INTO cs.ingest_rejects AS r (source, payload, reason)
    SELECT ingest_events.source, cs._jsonb_or_string(b.raw), b.error FROM bad b
    ON CONFLICT (source, payload_hash) DO UPDATE
       SET reason = excluded.reason, received_at = excluded.received_at, times_seen = r.times_seen + 1;
    SELECT count(*) INTO res.rejected FROM cs_ingest_events_parsed x WHERE x.error IS NOT NULL;

    -- The same event twice in one chunk is one event.  (RETURNING cannot read
    -- xmax of a partitioned table: count the events that exist already instead.)
    SELECT count(*) INTO n
      FROM (SELECT DISTINCT x.source_id, x.occurred_at FROM cs_ingest_events_parsed x WHERE x.error IS NULL) g
     WHERE EXISTS (SELECT 1 FROM cs.usage_events e
                    WHERE e.source = ingest_events.source AND e.source_id = g.source_id AND e.occurred_at = g.occurred_at);
    WITH good AS (
        SELECT DISTINCT ON (x.source_id, x.occurred_at) x.*
          FROM cs_ingest_events_parsed x WHERE x.error IS NULL
         ORDER BY x.source_id, x.occurred_at, x.line DESC
    ), up AS (
        INSERT INTO cs.usage_events AS e (customer_id, user_id, event, feature, quantity, occurred_at, source, source_id)
        SELECT g.customer_id, g.user_id, g.event, g.feature, g.quantity, g.occurred_at, ingest_events.source, g.source_id FROM good g
        ON CONFLICT (source, source_id, occurred_at) WHERE source IS NOT NULL DO UPDATE
           SET customer_id = excluded.customer_id, user_id = excluded.user_id, event = excluded.event,
               feature = excluded.feature, quantity = excluded.quantity
         WHERE (e.customer_id, e.user_id, e.event, e.feature, e.quantity)
               IS DISTINCT FROM (excluded.customer_id, excluded.user_id, excluded.event, excluded.feature, excluded.quantity)
        RETURNING 1
    )
    SELECT count(*) INTO res.updated FROM up;
    -- Every valid line counts: repeated lines of the chunk are unchanged.
    SELECT count(*) INTO total FROM cs_ingest_events_parsed x WHERE x.error IS NULL;
    res.inserted := (SELECT count(*) FROM (SELECT DISTINCT x.source_id, x.occurred_at
                                             FROM cs_ingest_events_parsed x WHERE x.error IS NULL) g) - n;
    res.updated := res.updated - res.inserted;
    res.unchanged := total - res.inserted - res.updated;
    -- Events that load now are no longer rejects.
    IF EXISTS (SELECT 1 FROM cs.ingest_rejects r WHERE r.source = ingest_events.source) THEN
        DELETE FROM cs.ingest_rejects r
         USING cs_ingest_events_parsed x
         WHERE x.error IS NULL AND r.source = ingest_events.source AND r.payload_hash = md5(cs._jsonb_or_string(x.raw)::text);
    END IF;
    PERFORM cs._note_activity(source, total, res.rejected);
    TRUNCATE cs_ingest_events_parsed;
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs.ingest_events(text, text) IS
    'Loads a chunk of NDJSON events (Mixpanel or Amplitude export) into cs.usage_events: parsed in C, customers resolved by cs.customer_keys (kind customer) or external_id, upserted on (source, $insert_id or uuid or a hash of the line, time); lines that cannot be loaded go to cs.ingest_rejects. Returns the counts.';

------------------------------------------------------------------------------
-- The entry points
------------------------------------------------------------------------------

-- Loads one record of a source, or the records of a list form: a JSON array,
-- {"tickets": [...]} (Zendesk), {"object": "list", "data": [...]} (Stripe),
-- a webhook envelope {"ticket": ...} or {"type": ..., "data": {"object": ...}}.
CREATE FUNCTION cs.ingest(source text, payload jsonb)
RETURNS cs.ingest_result
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    s      cs.data_sources := cs._source(source);
    res    cs.ingest_result := (0, 0, 0, 0)::cs.ingest_result;
    sub    cs.ingest_result;
    item   jsonb;
    status text;
    err    text;
    state  text;
BEGIN
    IF payload IS NULL THEN
        RAISE EXCEPTION 'payload must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF s.format IN ('mixpanel', 'amplitude') THEN
        IF jsonb_typeof(payload) = 'array' THEN
            RETURN cs.ingest_events(source, (SELECT string_agg(e::text, E'\n') FROM jsonb_array_elements(payload) e));
        END IF;
        RETURN cs.ingest_events(source, payload::text);
    END IF;
    IF s.format = 'csv' THEN
        PERFORM cs._check_csv_options(s);
    END IF;

    -- List forms and envelopes.
    IF jsonb_typeof(payload) = 'array' THEN
        FOR item IN SELECT e FROM jsonb_array_elements(payload) e LOOP
            sub := cs.ingest(source, item);
            res := (res.inserted + sub.inserted, res.updated + sub.updated, res.unchanged + sub.unchanged, res.rejected + sub.rejected)::cs.ingest_result;
        END LOOP;
        RETURN res;
    ELSIF s.format = 'zendesk_ticket' AND jsonb_typeof(payload -> 'tickets') = 'array' THEN
        RETURN cs.ingest(source, payload -> 'tickets');
    ELSIF s.format = 'zendesk_ticket' AND jsonb_typeof(payload -> 'ticket') = 'object' THEN
        payload := payload -> 'ticket';
    ELSIF s.format = 'stripe_invoice' AND payload ->> 'object' = 'list' AND jsonb_typeof(payload -> 'data') = 'array' THEN
        RETURN cs.ingest(source, payload -> 'data');
    ELSIF s.format = 'stripe_invoice' AND payload ->> 'object' = 'event' AND jsonb_typeof(payload -> 'data' -> 'object') = 'object' THEN
        payload := payload -> 'data' -> 'object';
    END IF;

    BEGIN
        IF jsonb_typeof(payload) <> 'object' THEN
            PERFORM cs._unmappable('record is not a JSON object');
        END IF;
        status := CASE s.format
            WHEN 'stripe_invoice' THEN cs._ingest_stripe_invoice(s, payload)
            WHEN 'stripe_invoice_csv' THEN cs._ingest_stripe_invoice_csv(s, payload)
            WHEN 'zendesk_ticket' THEN cs._ingest_zendesk_ticket(s, payload)
            WHEN 'hubspot_company' THEN cs._ingest_hubspot_company(s, payload)
            WHEN 'hubspot_contact' THEN cs._ingest_hubspot_contact(s, payload)
            WHEN 'csv' THEN cs._ingest_csv(s, payload)
        END;
    EXCEPTION
        WHEN query_canceled THEN
            RAISE;
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            -- Faults of the system or of its configuration are errors, not bad records.
            IF left(state, 2) IN ('42', 'XX', '53', '54', '55', '57', '58', '40', '25', '0A') THEN
                RAISE;
            END IF;
            PERFORM cs._reject(source, ingest.payload, err);
            PERFORM cs._note_activity(source, 0, 1);
            RETURN (0, 0, 0, 1)::cs.ingest_result;
    END;
    -- A record that loads now is no longer a reject.
    DELETE FROM cs.ingest_rejects r WHERE r.source = ingest.source AND r.payload_hash = md5(ingest.payload::text);
    PERFORM cs._note_activity(source, 1, 0);
    RETURN CASE status WHEN 'inserted' THEN (1, 0, 0, 0)::cs.ingest_result WHEN 'updated' THEN (0, 1, 0, 0)::cs.ingest_result
                       ELSE (0, 0, 1, 0)::cs.ingest_result END;
END;
$$;
COMMENT ON FUNCTION cs.ingest(text, jsonb) IS
    'Loads one record (webhook payload, API object, or a CSV row as {header: value}) of a data source, or every record of a list form (JSON array, Zendesk {"tickets": [...]}, Stripe list object) or envelope (Zendesk {"ticket": ...}, Stripe event); records that cannot be loaded go to cs.ingest_rejects with the reason. Returns inserted, updated, unchanged and rejected counts.';

-- Loads a text body: NDJSON events, one JSON document, or one JSON record per line.
CREATE FUNCTION cs.ingest_text(source text, body text)
RETURNS cs.ingest_result
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    s    cs.data_sources := cs._source(source);
    doc  jsonb;
    res  cs.ingest_result := (0, 0, 0, 0)::cs.ingest_result;
    sub  cs.ingest_result;
    ln   text;
BEGIN
    IF s.format IN ('mixpanel', 'amplitude') THEN
        RETURN cs.ingest_events(source, body);
    END IF;
    BEGIN
        doc := body::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        doc := NULL;
    END;
    IF doc IS NOT NULL THEN
        RETURN cs.ingest(source, doc);
    END IF;
    -- Not one document: one record per line.
    FOR ln IN SELECT l FROM regexp_split_to_table(body, E'\r?\n') l WHERE btrim(l) <> '' LOOP
        BEGIN
            doc := ln::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            PERFORM cs._reject(source, to_jsonb(ln), 'invalid JSON');
            PERFORM cs._note_activity(source, 0, 1);
            res.rejected := res.rejected + 1;
            CONTINUE;
        END;
        sub := cs.ingest(source, doc);
        res := (res.inserted + sub.inserted, res.updated + sub.updated, res.unchanged + sub.unchanged, res.rejected + sub.rejected)::cs.ingest_result;
    END LOOP;
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs.ingest_text(text, text) IS
    'Loads a text body of a source: NDJSON chunks for event sources; otherwise one JSON document (object, list, envelope) or, when the body is not one document, one JSON record per line (invalid lines are rejected). Returns the counts.';

-- source: src/sql/85_data_quality.sql
-- Data quality: is the data fresh, complete, free of duplicates and in range,
-- and does its volume look normal?  cs.data_quality shows every check;
-- cs.check_data_quality() (run hourly by the worker) raises alerts of type
-- data for the problems, assigned to the admin role, and resolves them when
-- the problem is gone.  Stale sources also lower the confidence of risk scores
-- (cs.data_freshness_factor).  cs.merge_customers() fixes a duplicate customer.

CREATE TABLE cs.data_quality_settings (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    description text NOT NULL
);
COMMENT ON TABLE cs.data_quality_settings IS 'Thresholds of the data-quality checks and who their alerts go to; admins edit the values.';
COMMENT ON COLUMN cs.data_quality_settings.name IS 'Setting name.';
COMMENT ON COLUMN cs.data_quality_settings.value IS 'Setting value (a number, except admin_role).';
COMMENT ON COLUMN cs.data_quality_settings.description IS 'What the setting controls.';

INSERT INTO cs.data_quality_settings (name, value, description) VALUES
    ('admin_role', 'cs_admin', 'Role data alerts are assigned to (cs.alerts.assigned_to).'),
    ('max_share_without_usage', '0.2', 'Largest acceptable share of active customers without a usage event in the last 30 days.'),
    ('max_share_without_invoices', '0.2', 'Largest acceptable share of active customers without any invoice.'),
    ('max_share_without_contract_dates', '0.1', 'Largest acceptable share of active customers missing a contract start or end date.'),
    ('volume_ratio', '3', 'Rows of the last 24 hours more than this many times (or less than 1/this of) the trailing median day is a volume problem.'),
    ('volume_history_days', '14', 'Days of history the volume median is taken over.'),
    ('volume_min_days', '7', 'Days with data needed before the volume check judges a source.'),
    ('future_tolerance_hours', '24', 'How far in the future a signal''s time may be before it counts as out of range.'),
    ('stale_confidence_penalty', '0.5', 'How much risk confidence is lost when every monitored source is stale (see cs.data_freshness_factor).');

-- A data-quality setting as a number.
CREATE FUNCTION cs._dq_setting(name text)
RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
RETURN (SELECT s.value::float8 FROM cs.data_quality_settings s WHERE s.name = _dq_setting.name);
COMMENT ON FUNCTION cs._dq_setting(text) IS 'Internal: a numeric data-quality setting.';

------------------------------------------------------------------------------
-- The checks
------------------------------------------------------------------------------

-- Freshness of every monitored source: time since its last row against the expectation.
CREATE VIEW cs.source_freshness WITH (security_invoker = true) AS
SELECT d.name AS source,
       d.expected_every,
       a.last_at,
       now() - a.last_at AS age,
       a.last_at IS NULL OR now() - a.last_at > d.expected_every AS stale
  FROM cs.data_sources d
  LEFT JOIN LATERAL (SELECT max(x.last_at) AS last_at FROM cs.source_activity x WHERE x.source = d.name) a ON true
 WHERE d.enabled AND d.expected_every IS NOT NULL;
COMMENT ON VIEW cs.source_freshness IS 'Monitored sources (enabled, with expected_every): when they last delivered a row and whether they are stale.';
COMMENT ON COLUMN cs.source_freshness.source IS 'Source name.';
COMMENT ON COLUMN cs.source_freshness.expected_every IS 'How often data is expected.';
COMMENT ON COLUMN cs.source_freshness.last_at IS 'Last row received (loaded or rejected); NULL when never.';
COMMENT ON COLUMN cs.source_freshness.age IS 'Time since the last row.';
COMMENT ON COLUMN cs.source_freshness.stale IS 'True when the last row is older than expected_every, or there never was one.';

-- Share of monitored sources that are stale turned into a confidence factor:
--   factor = 1 - stale_confidence_penalty * (stale sources / monitored sources)
-- 1 when no source is monitored or none is stale; with the default penalty 0.5,
-- every monitored source stale halves the confidence of new risk scores.
CREATE FUNCTION cs.data_freshness_factor()
RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
RETURN (SELECT CASE WHEN count(*) = 0 THEN 1.0
                    ELSE 1.0 - least(greatest(coalesce(cs._dq_setting('stale_confidence_penalty'), 0.5), 0), 1)
                               * count(*) FILTER (WHERE f.stale) / count(*) END
          FROM cs.source_freshness f);
COMMENT ON FUNCTION cs.data_freshness_factor() IS
    'Confidence factor 0-1 from source freshness: 1 - stale_confidence_penalty * stale/monitored sources; 1 when nothing is monitored. cs._score_risk multiplies risk confidence by it.';

CREATE VIEW cs.data_quality WITH (security_invoker = true) AS
WITH active AS (
    SELECT c.* FROM cs.customers c WHERE c.churned_at IS NULL
), completeness AS (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM cs.usage_events e
                                               WHERE e.customer_id = a.id AND e.occurred_at > now() - interval '30 days')) AS no_usage,
           count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM cs.invoices i WHERE i.customer_id = a.id)) AS no_invoices,
           count(*) FILTER (WHERE a.contract_start_date IS NULL OR a.contract_end_date IS NULL) AS no_contract
      FROM active a
), tol AS (
    SELECT now() + make_interval(hours => coalesce(cs._dq_setting('future_tolerance_hours'), 24)::int) AS horizon
), volume AS (
    SELECT d.name AS source,
           (SELECT coalesce(sum(x.accepted + x.rejected), 0) FROM cs.source_activity x
             WHERE x.source = d.name AND x.hour > now() - interval '24 hours') AS last_day,
           h.median, h.days
      FROM cs.data_sources d
     CROSS JOIN LATERAL (
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY w.n) AS median, count(*) FILTER (WHERE w.n > 0) AS days
          FROM (SELECT k, (SELECT coalesce(sum(x.accepted + x.rejected), 0) FROM cs.source_activity x
                            WHERE x.source = d.name
                              AND x.hour > now() - make_interval(days => k + 1)
                              AND x.hour <= now() - make_interval(days => k)) AS n
                  FROM generate_series(1, coalesce(cs._dq_setting('volume_history_days'), 14)::int) k) w) h
     WHERE d.enabled
)
-- freshness
SELECT 'freshness'::text AS check_name, f.source, f.source AS subject,
       extract(epoch FROM f.age) / 3600 AS value, extract(epoch FROM f.expected_every) / 3600 AS threshold,
       NOT f.stale AS ok, 'high'::text AS severity,
       CASE WHEN f.last_at IS NULL THEN format('%s never delivered a row (expected every %s)', f.source, f.expected_every)
            ELSE format('%s last delivered a row %s ago (expected every %s)', f.source, date_trunc('minute', f.age), f.expected_every) END AS detail
  FROM cs.source_freshness f
UNION ALL
-- completeness
SELECT 'completeness', NULL, x.subject, x.share, x.threshold, x.share IS NULL OR x.share <= x.threshold, 'medium',
       format('%s of %s active customers (%s%%) %s', x.k, c.n, round(100 * coalesce(x.share, 0))::int, x.what)
  FROM completeness c
 CROSS JOIN LATERAL (VALUES
        ('customers_without_usage', c.no_usage, c.no_usage::float8 / nullif(c.n, 0), cs._dq_setting('max_share_without_usage'),
         'have no usage event in the last 30 days'),
        ('customers_without_invoices', c.no_invoices, c.no_invoices::float8 / nullif(c.n, 0), cs._dq_setting('max_share_without_invoices'),
         'have no invoice'),
        ('customers_without_contract_dates', c.no_contract, c.no_contract::float8 / nullif(c.n, 0), cs._dq_setting('max_share_without_contract_dates'),
         'miss a contract start or end date')) x(subject, k, share, threshold, what)
UNION ALL
-- duplicates: the same source id at two times (usage events are unique per source id and time only)
SELECT 'duplicates', e.source, 'usage_events:' || e.source_id, e.n, 1, false, 'low',
       format('usage event %s of %s was loaded %s times with different times', e.source_id, e.source, e.n)
  FROM (SELECT u.source, u.source_id, count(*) AS n FROM cs.usage_events u
         WHERE u.source IS NOT NULL GROUP BY u.source, u.source_id HAVING count(*) > 1) e
UNION ALL
-- duplicates: the same contact email twice for a customer
SELECT 'duplicates', NULL, 'contacts:' || k.email, k.n, 1, false, 'low',
       format('contact %s appears %s times for customer %s', k.email, k.n, k.external_id)
  FROM (SELECT lower(t.email) AS email, c.external_id, count(*) AS n FROM cs.contacts t JOIN cs.customers c ON c.id = t.customer_id
         WHERE t.email IS NOT NULL GROUP BY lower(t.email), c.external_id HAVING count(*) > 1) k
UNION ALL
-- near-duplicate customers: same normalised name, or the same domain key
SELECT 'near_duplicate_customers', NULL, g.subject, g.n, 1, false, 'medium',
       format('%s customers look like one: %s', g.n, g.names)
  FROM (SELECT 'name:' || cs.normalise_name(c.name) AS subject, count(*) AS n,
               string_agg(format('%s (%s)', c.name, c.external_id), ', ' ORDER BY c.external_id) AS names
          FROM cs.customers c WHERE cs.normalise_name(c.name) IS NOT NULL
         GROUP BY cs.normalise_name(c.name) HAVING count(*) > 1
        UNION ALL
        SELECT 'domain:' || c.domain, count(*),
               string_agg(format('%s (%s)', c.name, c.external_id), ', ' ORDER BY c.external_id)
          FROM cs.customers c WHERE c.domain IS NOT NULL
         GROUP BY c.domain HAVING count(*) > 1) g
UNION ALL
-- out of range: signal times in the future (CHECK constraints catch the rest)
SELECT 'out_of_range', NULL, o.subject, o.n, 0, o.n = 0, 'medium',
       format('%s: %s rows dated in the future', o.tbl, o.n)
  FROM tol
 CROSS JOIN LATERAL (VALUES
        ('usage_events.occurred_at', 'cs.usage_events', (SELECT count(*) FROM cs.usage_events u WHERE u.occurred_at > tol.horizon)),
        ('support_tickets.opened_at', 'cs.support_tickets', (SELECT count(*) FROM cs.support_tickets t WHERE t.opened_at > tol.horizon)),
        ('invoices.issued_at', 'cs.invoices', (SELECT count(*) FROM cs.invoices i WHERE i.issued_at > tol.horizon)),
        ('engagements.occurred_at', 'cs.engagements', (SELECT count(*) FROM cs.engagements g WHERE g.occurred_at > tol.horizon)),
        ('nps_responses.responded_at', 'cs.nps_responses', (SELECT count(*) FROM cs.nps_responses r WHERE r.responded_at > tol.horizon))
     ) o(subject, tbl, n)
UNION ALL
-- rejects of the last 24 hours
SELECT 'rejects', r.source, r.source, r.n, 0, false, 'low',
       format('%s records of %s were rejected in the last 24 hours, for example: %s', r.n, r.source, r.example)
  FROM (SELECT x.source, count(*) AS n, min(x.reason) AS example FROM cs.ingest_rejects x
         WHERE x.received_at > now() - interval '24 hours' GROUP BY x.source) r
UNION ALL
-- volume: the last 24 hours against the trailing median day
SELECT 'volume', v.source, v.source, v.last_day, v.median,
       v.days < coalesce(cs._dq_setting('volume_min_days'), 7) OR v.median IS NULL OR v.median = 0
       OR (v.last_day <= v.median * cs._dq_setting('volume_ratio') AND v.last_day >= v.median / cs._dq_setting('volume_ratio')),
       'high',
       format('%s delivered %s rows in the last 24 hours against a median of %s per day over %s days',
              v.source, v.last_day, round(v.median::numeric, 1), v.days)
  FROM volume v
 WHERE v.days > 0;
COMMENT ON VIEW cs.data_quality IS 'Every data-quality check and its result: freshness per monitored source, completeness of customers, duplicates (source ids, contacts), near-duplicate customers, out-of-range times, recent rejects and volume per source. Rows with ok = false are problems; cs.check_data_quality() alerts on them.';
COMMENT ON COLUMN cs.data_quality.check_name IS 'freshness, completeness, duplicates, near_duplicate_customers, out_of_range, rejects or volume.';
COMMENT ON COLUMN cs.data_quality.source IS 'Data source concerned, when there is one.';
COMMENT ON COLUMN cs.data_quality.subject IS 'What was checked (source, measure, duplicated key); with check_name it identifies the alert.';
COMMENT ON COLUMN cs.data_quality.value IS 'Measured value: hours since the last row, share, count, or rows in the last 24 hours.';
COMMENT ON COLUMN cs.data_quality.threshold IS 'The value the measure is judged against: expected hours, largest share, median rows per day.';
COMMENT ON COLUMN cs.data_quality.ok IS 'False when the check found a problem.';
COMMENT ON COLUMN cs.data_quality.severity IS 'Severity of the data alert a problem raises.';
COMMENT ON COLUMN cs.data_quality.detail IS 'The finding in a sentence.';

-- Raises a data alert for every problem of cs.data_quality that has none open
-- (one per check for the list checks duplicates and near_duplicate_customers),
-- and resolves the open data alerts whose problem is gone.  Data alerts have
-- no customer and no rule: they are identified by risk_factors ->> 'check'
-- and ->> 'subject', and assigned to the admin_role setting.  Returns the
-- number of problems (rows of cs.data_quality that are not ok).
CREATE FUNCTION cs.check_data_quality()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    p      record;
    a      cs.alerts;
    admin  text := (SELECT s.value FROM cs.data_quality_settings s WHERE s.name = 'admin_role');
    n      bigint := 0;
BEGIN
    -- One checker at a time: two would raise the same alert twice.
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot.data_quality'));
    IF to_regclass('pg_temp.cs_dq_problems') IS NULL THEN
        CREATE TEMP TABLE cs_dq_problems ON COMMIT DROP AS SELECT * FROM cs.data_quality WITH NO DATA;
    END IF;
    TRUNCATE cs_dq_problems;
    INSERT INTO cs_dq_problems SELECT * FROM cs.data_quality q WHERE NOT q.ok;
    SELECT count(*) INTO n FROM cs_dq_problems;
    -- Findings of the list checks are many (one per duplicated key): one alert each check.
    INSERT INTO cs_dq_problems
    SELECT x.check_name, NULL, x.check_name, count(*), NULL, false, min(x.severity),
           format('%s findings, for example: %s', count(*),
                  array_to_string((array_agg(x.detail ORDER BY x.subject))[1:3], '; '))
      FROM cs_dq_problems x WHERE x.check_name IN ('duplicates', 'near_duplicate_customers')
     GROUP BY x.check_name;
    DELETE FROM cs_dq_problems x
     WHERE x.check_name IN ('duplicates', 'near_duplicate_customers') AND x.subject <> x.check_name;
    FOR p IN SELECT * FROM cs_dq_problems ORDER BY check_name, subject LOOP
        UPDATE cs.alerts al
           SET description = p.detail, last_fired_at = now(), fire_count = al.fire_count + 1, updated_at = now(),
               risk_factors = al.risk_factors || jsonb_build_object('value', p.value)
         WHERE al.alert_type = 'data' AND al.status IN ('open', 'acknowledged', 'snoozed')
           AND al.risk_factors ->> 'check' = p.check_name AND al.risk_factors ->> 'subject' = p.subject;
        IF NOT FOUND THEN
            INSERT INTO cs.alerts (alert_type, severity, title, description, risk_factors, assigned_to, last_fired_at)
            VALUES ('data', p.severity, left(format('Data quality: %s%s', replace(p.check_name, '_', ' '),
                                            CASE WHEN p.subject <> p.check_name THEN ' ' || p.subject END), 255),
                    p.detail,
                    jsonb_build_object('check', p.check_name, 'subject', p.subject, 'source', p.source,
                                       'value', p.value, 'threshold', p.threshold),
                    admin, now())
            RETURNING * INTO a;
            PERFORM cs._alert_event(a, 'created', NULL, NULL, jsonb_build_object('check', p.check_name));
        END IF;
    END LOOP;
    FOR a IN UPDATE cs.alerts al
                SET status = 'resolved', resolved_at = now(), updated_at = now(), updated_by = current_user
              WHERE al.alert_type = 'data' AND al.status IN ('open', 'acknowledged', 'snoozed')
                AND NOT EXISTS (SELECT 1 FROM cs_dq_problems x
                                 WHERE x.check_name = al.risk_factors ->> 'check' AND x.subject = al.risk_factors ->> 'subject')
             RETURNING al.*
    LOOP
        PERFORM cs._alert_event(a, 'auto_resolved', 'open', 'the data-quality problem is gone', NULL);
    END LOOP;
    TRUNCATE cs_dq_problems;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.check_data_quality() IS
    'Evaluates cs.data_quality: raises one alert of type data (no customer, assigned to the admin_role setting, identified by risk_factors check and subject) per problem without an open one (one per check for duplicates and near_duplicate_customers), refreshes open ones, and resolves those whose problem is gone. Returns the number of problems. The worker runs it hourly.';

------------------------------------------------------------------------------
-- Merging duplicate customers
------------------------------------------------------------------------------

CREATE TABLE cs.customer_merges (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kept_id           uuid NOT NULL,
    merged_id         uuid NOT NULL,
    merged_external_id text NOT NULL,
    merged_name       text NOT NULL,
    rows_moved        jsonb NOT NULL,
    merged_by         text NOT NULL DEFAULT current_user,
    merged_at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cs.customer_merges IS 'Audit of cs.merge_customers: which customer was merged into which, by whom, and how many rows moved per table.';
COMMENT ON COLUMN cs.customer_merges.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.customer_merges.kept_id IS 'The customer that remains.';
COMMENT ON COLUMN cs.customer_merges.merged_id IS 'The customer that was merged and deleted.';
COMMENT ON COLUMN cs.customer_merges.merged_external_id IS 'External id of the merged customer (it now maps to the kept one through cs.customer_keys).';
COMMENT ON COLUMN cs.customer_merges.merged_name IS 'Name of the merged customer.';
COMMENT ON COLUMN cs.customer_merges.rows_moved IS 'Rows moved (signals, alerts, actions, keys) or dropped (derived scores) per table.';
COMMENT ON COLUMN cs.customer_merges.merged_by IS 'Role that merged.';
COMMENT ON COLUMN cs.customer_merges.merged_at IS 'When.';

-- Moves everything of customer merge to customer keep and deletes merge.
CREATE FUNCTION cs.merge_customers(keep uuid, merge uuid)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    k      cs.customers;
    m      cs.customers;
    counts jsonb := '{}';
    n      bigint;
    t      text;
BEGIN
    IF keep IS NULL OR merge IS NULL THEN
        RAISE EXCEPTION 'both customers must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF keep = merge THEN
        RAISE EXCEPTION 'cannot merge customer % into itself', keep USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO k FROM cs.customers c WHERE c.id = keep FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', keep USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO m FROM cs.customers c WHERE c.id = merge FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', merge USING ERRCODE = 'no_data_found';
    END IF;
    IF k.parent_id = merge THEN
        RAISE EXCEPTION 'customer % is the parent of %', m.external_id, k.external_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Merge the other way round, or clear parent_id first.';
    END IF;

    -- Signals and history move.
    FOREACH t IN ARRAY ARRAY['usage_events', 'support_tickets', 'invoices', 'engagements', 'nps_responses', 'contacts',
                             'subscriptions', 'actions', 'opportunities'] LOOP
        EXECUTE format('UPDATE cs.%I SET customer_id = $1 WHERE customer_id = $2', t) USING keep, merge;
        GET DIAGNOSTICS n = ROW_COUNT;
        counts := counts || jsonb_build_object(t, n);
    END LOOP;
    -- Open alerts of a rule the kept customer has open already are resolved, the rest move.
    WITH dup AS (
        UPDATE cs.alerts a SET status = 'resolved', resolved_at = now(), updated_at = now(), updated_by = current_user
         WHERE a.customer_id = merge AND a.status IN ('open', 'acknowledged', 'snoozed')
           AND EXISTS (SELECT 1 FROM cs.alerts b WHERE b.customer_id = keep AND b.rule_id = a.rule_id
                          AND b.status IN ('open', 'acknowledged', 'snoozed'))
        RETURNING a.*)
    SELECT count(*) INTO n FROM dup;
    UPDATE cs.alerts a SET customer_id = keep WHERE a.customer_id = merge;
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('alerts', n);
    -- Keys: the merged customer's keys and external id now name the kept one.
    UPDATE cs.customer_keys ck SET customer_id = keep WHERE ck.customer_id = merge;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO cs.customer_keys (source, key_kind, key, customer_id) VALUES ('any', 'external_id', m.external_id, keep)
    ON CONFLICT (source, key_kind, key) DO UPDATE SET customer_id = excluded.customer_id;
    counts := counts || jsonb_build_object('customer_keys', n + 1);
    UPDATE cs.customers c SET parent_id = keep WHERE c.parent_id = merge AND c.id <> keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('subsidiaries', n);
    -- Derived rows are recomputed for the kept customer.
    FOREACH t IN ARRAY ARRAY['risk_assessments', 'customer_health_scores', 'customer_features', 'dirty_customers'] LOOP
        EXECUTE format('DELETE FROM cs.%I WHERE customer_id = $1', t) USING merge;
        GET DIAGNOSTICS n = ROW_COUNT;
        counts := counts || jsonb_build_object(t || '_dropped', n);
    END LOOP;
    IF to_regclass('cs.demo_ground_truth') IS NOT NULL THEN
        EXECUTE 'DELETE FROM cs.demo_ground_truth WHERE customer_id = $1' USING merge;
    END IF;
    DELETE FROM cs.customers c WHERE c.id = merge;
    -- What the kept customer lacks, the merged one may know.
    UPDATE cs.customers c
       SET industry = coalesce(c.industry, m.industry), size = coalesce(c.size, m.size), mrr = coalesce(c.mrr, m.mrr),
           contract_start_date = coalesce(c.contract_start_date, m.contract_start_date),
           contract_end_date = coalesce(c.contract_end_date, m.contract_end_date),
           segment = coalesce(c.segment, m.segment), csm = coalesce(c.csm, m.csm),
           seats_licensed = coalesce(c.seats_licensed, m.seats_licensed), domain = coalesce(c.domain, m.domain)
     WHERE c.id = keep;
    INSERT INTO cs.customer_merges (kept_id, merged_id, merged_external_id, merged_name, rows_moved)
    VALUES (keep, merge, m.external_id, m.name, counts);
    RETURN counts;
END;
$$;
COMMENT ON FUNCTION cs.merge_customers(uuid, uuid) IS
    'Merges a duplicate customer into another: moves its signals, actions, opportunities, alerts and keys, maps its external id to the kept customer, fills the kept customer''s missing attributes, drops its derived scores, deletes it and records the merge in cs.customer_merges; returns rows per table.';

-- source: src/sql/90_default_model.sql
-- The shipped churn model (models/churn_default.json, trained on generated demo
-- data by `make model`; models/README.md gives its training set and metrics) is
-- the champion from the start, so scores include churn risk without a step.
-- Replace it with cs.train_model on your own history and cs.deploy_model.
DO $$
DECLARE
    f  text := (SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/cscopilot/models/churn_default';
    model_id int;
BEGIN
    IF (pg_stat_file(f || '.json', true)).size IS NULL THEN
        -- Only while `make model` builds the file for the first time.
        RAISE WARNING 'the shipped churn model %.json is not installed', f
            USING HINT = 'Churn risk needs a deployed churn model: cs.train_model, then cs.deploy_model.';
        RETURN;
    END IF;
    model_id := cs.load_model_file('churn_default', 'churn', 'churn_default.json');
    -- training and held-out metrics written by `make model` beside the model
    IF (pg_stat_file(f || '.metrics', true)).size IS NOT NULL THEN
        UPDATE cs.models m
           SET metrics = pg_read_file(f || '.metrics')::jsonb,
               training_data = 'Generated demo data (cs.generate_demo_data), monthly observation dates, 90-day churn horizon; see models/README.md.'
         WHERE m.id = model_id;
    END IF;
    PERFORM cs.deploy_model('churn_default', (SELECT m.version FROM cs.models m WHERE m.id = model_id));
    -- Its training rows are not shipped: the drift reference is the current
    -- feature vectors when there are any, else none (cs.feature_drift says
    -- 'no reference' until cs.set_model_reference sets one).
    IF EXISTS (SELECT 1 FROM cs.customer_features) THEN
        PERFORM cs.set_model_reference('churn_default', (SELECT m.version FROM cs.models m WHERE m.id = model_id));
    END IF;
END;
$$;

-- source: src/sql/95_security.sql
-- Least privilege, row-level security and dump support, applied by loops over
-- the catalog so that every table, view and function of schema cs is covered,
-- whichever file created it.  This file runs last at CREATE EXTENSION and again
-- at the end of every upgrade script (the Makefile appends it), so it must stay
-- re-runnable: CREATE OR REPLACE, IF NOT EXISTS, DROP POLICY IF EXISTS.
--
-- Roles are cluster-wide and not members of the extension: DROP EXTENSION
-- leaves cscopilot_viewer, cscopilot_csm and cscopilot_admin in place (their
-- privileges on the dropped objects go with the objects), and a later CREATE
-- EXTENSION, in this or another database, reuses them.  Remove them with
-- DROP ROLE once no database uses the extension.

------------------------------------------------------------------------------
-- Group roles
------------------------------------------------------------------------------

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['cscopilot_viewer', 'cscopilot_csm', 'cscopilot_admin'] LOOP
        IF to_regrole(r) IS NULL THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    -- Each role has the rights of the one before: admin > csm > viewer.
    IF NOT pg_has_role('cscopilot_csm', 'cscopilot_viewer', 'MEMBER') THEN
        GRANT cscopilot_viewer TO cscopilot_csm;
    END IF;
    IF NOT pg_has_role('cscopilot_admin', 'cscopilot_csm', 'MEMBER') THEN
        GRANT cscopilot_csm TO cscopilot_admin;
    END IF;
END;
$$;

-- True when the current user is a member of cscopilot_admin (or a superuser).
CREATE OR REPLACE FUNCTION cs.is_admin() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
RETURN coalesce(pg_has_role(current_user, to_regrole('cscopilot_admin'), 'MEMBER'), false);
COMMENT ON FUNCTION cs.is_admin() IS
    'True when the current user is a member of cscopilot_admin or a superuser: row-level security then shows every customer.';

-- The role names the current user is a member of (itself included): the
-- values of cs.customers.csm it may see.  Row policies call it once per query
-- (as an InitPlan), not once per row.
CREATE OR REPLACE FUNCTION cs.member_roles() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
RETURN ARRAY(SELECT r.rolname::text FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER') ORDER BY 1);
COMMENT ON FUNCTION cs.member_roles() IS
    'Role names the current user is a member of, itself included: a CSM sees the customers whose csm is one of them (a team lead who is a member of the team''s roles sees the team).';

-- True when the current user may see the customer (RLS of cs.customers decides).
CREATE OR REPLACE FUNCTION cs.visible_customer(customer_id uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
RETURN EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = visible_customer.customer_id);
COMMENT ON FUNCTION cs.visible_customer(uuid) IS
    'True when the current user may see the customer: an admin always, a CSM when the customer''s csm is the CSM or a role the CSM is a member of.';

-- The user the alert lifecycle functions act for.  They are SECURITY DEFINER,
-- so current_user inside them is their owner; the caller is the role of SET
-- ROLE, else the session user (a SECURITY DEFINER function cannot SET ROLE, so
-- nothing between the session and the call can change it).  A call made from
-- inside someone else's SECURITY DEFINER function acts for the session's user,
-- not for that function's owner.
CREATE OR REPLACE FUNCTION cs.acting_user() RETURNS name
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
RETURN CASE WHEN current_setting('role') = 'none' THEN session_user ELSE current_setting('role')::name END;
COMMENT ON FUNCTION cs.acting_user() IS
    'The user the alert lifecycle, feedback and action functions act for and record: the role set by SET ROLE, else the session user.';

-- The rule of the row-level security policies, for a given user: an admin
-- sees every customer, anybody else the customers whose csm is a role they are
-- a member of; no customer (model and data alerts) is admin only.  Called by
-- the SECURITY DEFINER functions, which run as the owner and so bypass RLS.
CREATE OR REPLACE FUNCTION cs._user_sees_customer(who name, customer_id uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
RETURN coalesce(pg_has_role(who, to_regrole('cscopilot_admin'), 'MEMBER'), false)
    OR EXISTS (SELECT 1 FROM cs.customers c
                WHERE c.id = _user_sees_customer.customer_id
                  AND c.csm IN (SELECT r.rolname FROM pg_roles r WHERE pg_has_role(who, r.oid, 'MEMBER')));
COMMENT ON FUNCTION cs._user_sees_customer(name, uuid) IS
    'Internal: true when the user may see the customer under the row-level security rule (an admin always; a CSM when the customer''s csm is a role they are a member of; a NULL customer admins only).';

-- Refuses a caller who is not a CSM (or admin): the lifecycle, feedback and
-- action functions write as their owner, so they check the role themselves.
CREATE OR REPLACE FUNCTION cs._require_csm(what text) RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    who name := cs.acting_user();
BEGIN
    IF NOT coalesce(pg_has_role(who, to_regrole('cscopilot_csm'), 'MEMBER'), false) THEN
        RAISE EXCEPTION 'permission denied to %', what
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Role "%s" is not a member of cscopilot_csm.', who),
                  HINT = 'CSMs and admins work alerts; an admin can run SELECT cs.grant_role(''csm'', ...).';
    END IF;
    RETURN who;
END;
$$;
COMMENT ON FUNCTION cs._require_csm(text) IS
    'Internal: returns cs.acting_user() when it is a member of cscopilot_csm (admins are), raises insufficient_privilege naming the refused action otherwise.';

-- Grants one of the three group roles to a user; admins only.
CREATE OR REPLACE FUNCTION cs.grant_role(role text, member text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF role IS NULL OR member IS NULL THEN
        RAISE EXCEPTION 'role and member must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF role NOT IN ('viewer', 'csm', 'admin', 'cscopilot_viewer', 'cscopilot_csm', 'cscopilot_admin') THEN
        RAISE EXCEPTION 'unknown cscopilot role "%"', role
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The roles are viewer, csm and admin.';
    END IF;
    IF to_regrole(member) IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', member
            USING ERRCODE = 'undefined_object', HINT = 'CREATE ROLE it first (LOGIN for a person).';
    END IF;
    IF NOT cs.is_admin() THEN
        RAISE EXCEPTION 'only cscopilot_admin members may grant cscopilot roles'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('GRANT %I TO %I', CASE WHEN role LIKE 'cscopilot\_%' THEN role ELSE 'cscopilot_' || role END, member);
END;
$$;
COMMENT ON FUNCTION cs.grant_role(text, text) IS
    'Makes member a cscopilot viewer, csm or admin (GRANT cscopilot_<role> TO member); the caller needs the right to grant that role (superuser, CREATEROLE or ADMIN OPTION).';

------------------------------------------------------------------------------
-- Privileges: nothing to PUBLIC; viewer reads, csm works alerts, admin all
------------------------------------------------------------------------------

-- Functions a viewer or CSM may not call: they change configuration, rescore,
-- load or delete data, run SQL text, or are the internals of the SECURITY
-- DEFINER functions (_alert_transition would apply any transition).  Every
-- other function is executable by viewers; table privileges and row-level
-- security bound what it can do, except for the SECURITY DEFINER functions of
-- cs.csm_functions(), which check the caller themselves.
CREATE OR REPLACE FUNCTION cs.admin_only_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['refresh', 'refresh_all', 'refresh_batch', 'refresh_opportunities', '_refresh_customers',
             '_refresh_health_populations', 'compute_health', '_score_risk', 'evaluate_alerts',
             'measure_action_outcomes', 'train_model', 'load_model', 'load_model_file', 'deploy_model',
             'build_training_set', 'purge_customer', 'generate_demo_data', 'drop_demo_data',
             'ensure_usage_partitions', 'wake_worker', 'grant_role', '_run_job', '_start_due_job',
             '_record_failure', '_customer_failed', '_close_interrupted_runs', '_job_due',
             '_alert_transition', '_alert_event', '_user_sees_customer', '_refresh_text_signals',
             '_refresh_opportunity_stats'];
COMMENT ON FUNCTION cs.admin_only_functions() IS
    'Names of the functions of cs only cscopilot_admin may execute; every other function is executable by cscopilot_viewer and above.';

-- Tables of cs that only admins (and the owner) may read: internal caches of
-- derived data, which the functions that use them read only when the caller
-- may (cs.compute_features computes every text for viewers and CSMs).
CREATE OR REPLACE FUNCTION cs.internal_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['text_signals'];
COMMENT ON FUNCTION cs.internal_tables() IS
    'Names of the internal tables of cs (caches of derived data) that cscopilot_viewer and cscopilot_csm may not read; every other table and view is readable by viewers.';

-- What a CSM may write besides reading: nothing directly.  Alert lifecycle,
-- feedback and actions go through these SECURITY DEFINER functions, which
-- enforce the transition rules, check that the caller is a CSM who may see the
-- alert's customer, and record the caller as actor; direct writes would let a
-- CSM skip the rules, forge the event log (actor, time, event), or invent
-- action outcomes that cs.rank_playbooks learns from.
CREATE OR REPLACE FUNCTION cs.csm_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['acknowledge_alert', 'resolve_alert', 'dismiss_alert', 'snooze_alert', 'reassign_alert',
             'record_action', 'record_feedback'];
COMMENT ON FUNCTION cs.csm_functions() IS
    'Names of the SECURITY DEFINER functions through which cscopilot_csm members work alerts, record actions and give feedback; CSMs have no direct write privilege on any table.';

------------------------------------------------------------------------------
-- Row-level security
------------------------------------------------------------------------------
-- cs.customers: an admin sees every customer, anybody else the customers whose
-- csm is a role they are a member of.  Every other table with a customer_id
-- column follows cs.customers through a subquery (itself under its policy);
-- tables keyed by alert_id follow cs.alerts.  Admins have a policy of their
-- own, USING (true): permissive policies are OR-ed, so for an admin the
-- planner folds the predicate away (one policy with "is_admin() OR ..." kept
-- the subqueries in the plan, whose estimated cost switched JIT on and made
-- the overview view 6x slower).  A CSM's query hashes the visible ids once (a
-- hashed SubPlan), not one lookup per row.  Rows without a customer (model
-- and data alerts) are visible to admins only.
-- Table owners (the superuser who created the extension, and so the
-- background workers) are not subject to these policies.

CREATE OR REPLACE FUNCTION cs.rls_predicate(rel regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
BEGIN ATOMIC
    SELECT CASE
        WHEN rel = 'cs.customers'::regclass THEN
            'csm = ANY ((SELECT cs.member_roles())::text[])'
        WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = 'customer_id'
                        AND NOT a.attisdropped) THEN
            'customer_id IN (SELECT c.id FROM cs.customers c)'
        WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = 'alert_id'
                        AND NOT a.attisdropped) THEN
            'alert_id IN (SELECT a.id FROM cs.alerts a)'
        END;
END;
COMMENT ON FUNCTION cs.rls_predicate(regclass) IS
    'The row-level security predicate of a table of cs for users who are not admins: cs.customers by csm, tables with customer_id through cs.customers, tables with alert_id through cs.alerts; NULL for tables that are not customer-scoped.';

DO $$
DECLARE
    t record;
    pred text;
BEGIN
    FOR t IN SELECT c.oid::regclass AS rel
               FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
              ORDER BY c.relname
    LOOP
        pred := cs.rls_predicate(t.rel);
        CONTINUE WHEN pred IS NULL;
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t.rel);
        EXECUTE format('DROP POLICY IF EXISTS customer_scope ON %s', t.rel);
        EXECUTE format('DROP POLICY IF EXISTS admin_all ON %s', t.rel);
        EXECUTE format('CREATE POLICY customer_scope ON %s USING (%s) WITH CHECK (%s)', t.rel, pred, pred);
        EXECUTE format('COMMENT ON POLICY customer_scope ON %s IS %L', t.rel,
                       'Rows of customers whose csm is a role the user is a member of.');
        EXECUTE format('CREATE POLICY admin_all ON %s TO cscopilot_admin USING (true) WITH CHECK (true)', t.rel);
        EXECUTE format('COMMENT ON POLICY admin_all ON %s IS %L', t.rel,
                       'Members of cscopilot_admin see and change every row.');
    END LOOP;

    -- Views read with the privileges and policies of the user, not of their owner.
    FOR t IN SELECT c.oid::regclass AS rel FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind = 'v'
    LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', t.rel);
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- pg_dump: every table of the extension keeps its rows
------------------------------------------------------------------------------
-- pg_dump omits the rows of extension tables unless they are registered with
-- pg_extension_config_dump.  Every table and sequence of cs is, whole, except:
--   cs.dirty_customers: restoring the signal tables fires the load triggers,
--     which mark every restored customer dirty again; the dumped queue would
--     collide with those marks (so a restored database rescores everything).
--   cs._shipped_rows: it describes what CREATE EXTENSION shipped in this
--     database and is recomputed by the CREATE EXTENSION of the restore.
-- Rows the install script ships (feature catalog, health profiles, alert rules,
-- playbooks, the churn model) are dumped too, edits included.  The restore's
-- CREATE EXTENSION inserts the shipped rows again before the data comes back,
-- so cs._replace_shipped_rows, a statement trigger on every table, empties a
-- table that still holds exactly the shipped rows when pg_restore (or psql on
-- a plain dump, both run with row_security off) COPYs into it.

CREATE TABLE IF NOT EXISTS cs._shipped_rows (
    tab    text NOT NULL,
    digest text NOT NULL
);
COMMENT ON TABLE cs._shipped_rows IS
    'Digest of every row CREATE EXTENSION inserted into a table of cs; a restore replaces a table whose rows are still exactly these.';
COMMENT ON COLUMN cs._shipped_rows.tab IS 'Table name in schema cs.';
COMMENT ON COLUMN cs._shipped_rows.digest IS 'md5 of the row as jsonb.';

CREATE OR REPLACE FUNCTION cs._replace_shipped_rows() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    differs boolean;
BEGIN
    -- Cheap exits first: this runs before every INSERT and COPY statement.
    IF current_setting('row_security') <> 'off' OR current_query() !~* '^\s*copy\s' THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cs._shipped_rows s WHERE s.tab = TG_TABLE_NAME) THEN
        RETURN NULL;
    END IF;
    EXECUTE format($q$
        SELECT EXISTS (
            (SELECT md5(to_jsonb(t)::text) FROM cs.%1$I t EXCEPT ALL
             SELECT s.digest FROM cs._shipped_rows s WHERE s.tab = %2$L)
            UNION ALL
            (SELECT s.digest FROM cs._shipped_rows s WHERE s.tab = %2$L EXCEPT ALL
             SELECT md5(to_jsonb(t)::text) FROM cs.%1$I t))$q$, TG_TABLE_NAME, TG_TABLE_NAME) INTO differs;
    IF NOT differs THEN
        EXECUTE format('DELETE FROM cs.%I', TG_TABLE_NAME);
        DELETE FROM cs._shipped_rows s WHERE s.tab = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION cs._replace_shipped_rows() IS
    'Statement trigger: when a restore COPYs rows into a table that holds exactly the rows CREATE EXTENSION shipped, removes those first, so the dumped rows (edits included) replace them.';

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT c.oid::regclass AS rel, c.relname, c.relkind, c.relispartition
               FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p', 'S')
                AND c.relname NOT IN ('dirty_customers', '_shipped_rows')
                AND EXISTS (SELECT 1 FROM pg_depend d
                             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
                               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'cscopilot'))
              ORDER BY c.relname
    LOOP
        IF t.relkind <> 'p' THEN
            PERFORM pg_catalog.pg_extension_config_dump(t.rel, '');
        END IF;
        IF t.relkind = 'r' AND NOT t.relispartition THEN
            EXECUTE format('DROP TRIGGER IF EXISTS replace_shipped_rows ON %s', t.rel);
            EXECUTE format('CREATE TRIGGER replace_shipped_rows BEFORE INSERT ON %s
                            FOR EACH STATEMENT EXECUTE FUNCTION cs._replace_shipped_rows()', t.rel);
            EXECUTE format('COMMENT ON TRIGGER replace_shipped_rows ON %s IS %L', t.rel,
                           'Lets a restore replace the rows CREATE EXTENSION shipped with the dumped ones.');
        END IF;
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- Grants, last: they cover every object above and in the earlier files
------------------------------------------------------------------------------

DO $$
DECLARE
    o record;
BEGIN
    REVOKE ALL ON SCHEMA cs FROM PUBLIC;
    GRANT USAGE ON SCHEMA cs TO cscopilot_viewer;

    FOR o IN SELECT c.oid::regclass AS rel, c.relkind, c.relname = ANY (cs.internal_tables()) AS internal
               FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    LOOP
        -- Partitions are read and written through their parent, whose privileges
        -- and policies apply; nobody but their owner may address them directly.
        IF o.relkind = 'r' AND (SELECT c.relispartition FROM pg_class c WHERE c.oid = o.rel) THEN
            EXECUTE format('REVOKE ALL ON %s FROM PUBLIC, cscopilot_viewer, cscopilot_csm, cscopilot_admin', o.rel);
            CONTINUE;
        END IF;
        -- CSMs and viewers hold no privilege of their own (and none left from an
        -- older version: table-level REVOKE ALL also revokes column privileges).
        EXECUTE format('REVOKE ALL ON %s FROM PUBLIC, cscopilot_viewer, cscopilot_csm', o.rel);
        IF o.relkind = 'S' THEN
            EXECUTE format('GRANT SELECT ON SEQUENCE %s TO cscopilot_viewer', o.rel);
            EXECUTE format('GRANT SELECT, USAGE, UPDATE ON SEQUENCE %s TO cscopilot_admin', o.rel);
        ELSE
            IF NOT o.internal THEN
                EXECUTE format('GRANT SELECT ON %s TO cscopilot_viewer', o.rel);
            END IF;
            IF o.relkind IN ('r', 'p', 'f') THEN
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON %s TO cscopilot_admin', o.rel);
            ELSE
                EXECUTE format('GRANT SELECT ON %s TO cscopilot_admin', o.rel);
            END IF;
        END IF;
    END LOOP;


    FOR o IN SELECT p.oid::regprocedure AS fn, p.proname
               FROM pg_proc p WHERE p.pronamespace = 'cs'::regnamespace
    LOOP
        EXECUTE format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', o.fn);
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO cscopilot_admin', o.fn);
        IF o.proname = ANY (cs.admin_only_functions()) THEN
            EXECUTE format('REVOKE ALL ON ROUTINE %s FROM cscopilot_viewer', o.fn);
        ELSE
            EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO cscopilot_viewer', o.fn);
        END IF;
    END LOOP;

    FOR o IN SELECT t.oid::regtype AS typ
               FROM pg_type t
              WHERE t.typnamespace = 'cs'::regnamespace AND t.typtype IN ('d', 'e', 'r', 'm')
    LOOP
        EXECUTE format('REVOKE ALL ON TYPE %s FROM PUBLIC', o.typ);
        EXECUTE format('GRANT USAGE ON TYPE %s TO cscopilot_viewer', o.typ);
    END LOOP;
END;
$$;

-- source: src/sql/99_shipped_rows.sql
-- Remembers the rows this CREATE EXTENSION shipped (every table of cs that has
-- rows now: feature catalog, health profiles, alert rules, playbooks, the churn
-- model, ...), so that restoring a dump can replace them with the dumped rows
-- (cs._replace_shipped_rows in 95_security.sql).  Install only: upgrade
-- scripts do not run this file, since the rows of an existing database are
-- no longer what was shipped.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind = 'r' AND NOT c.relispartition
                AND c.relname <> '_shipped_rows'
              ORDER BY c.relname
    LOOP
        EXECUTE format('INSERT INTO cs._shipped_rows (tab, digest) SELECT %L, md5(to_jsonb(t)::text) FROM cs.%I t',
                       t.relname, t.relname);
    END LOOP;
END;
$$;
