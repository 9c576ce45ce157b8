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
