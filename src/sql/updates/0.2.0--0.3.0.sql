-- cscopilot 0.2.0 -> 0.3.0: schema changes and data migrations only.
--
-- `make` builds cscopilot--0.2.0--0.3.0.sql from src/sql/pre_install/*.sql,
-- this file, then every re-runnable file src/sql/[0-9]*.sql (95_security.sql
-- last), so functions, views, triggers, comments and grants need nothing here.
-- Put here what CREATE OR REPLACE cannot do, in the order it must happen:
-- ALTER TABLE for a new column (the same column in src/sql/schema/), new
-- tables and indexes, changes to shipped rows, and DROP of a function or
-- view whose signature or columns change, before the re-runnable files create
-- it again.  A schema file new in this version is included whole, written
-- once: "--@include src/sql/schema/<file>.sql".

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
--@include src/sql/schema/73_tasks.sql
--@include src/sql/schema/77_outbox.sql

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
--@include src/sql/schema/74_workspace.sql

-- Contract-term history (src/sql/schema/02_contract_terms.sql): point-in-time
-- renewal dates and customer start.
--@include src/sql/schema/02_contract_terms.sql

-- Billing loaders (src/sql/82_billing.sql): Stripe subscriptions and customers,
-- Chargebee customers, subscriptions and invoices; subscription history keyed
-- by customer, source id, product and start (src/sql/schema/82_billing.sql).
ALTER TABLE cs.data_sources DROP CONSTRAINT data_sources_format_check,
    ADD CONSTRAINT data_sources_format_check
        CHECK (format IN ('stripe_invoice', 'stripe_invoice_csv', 'zendesk_ticket',
                          'hubspot_company', 'hubspot_contact', 'mixpanel', 'amplitude', 'csv',
                          'stripe_subscription', 'stripe_customer', 'chargebee_customer',
                          'chargebee_subscription', 'chargebee_invoice'));
--@include src/sql/schema/82_billing.sql
--@include src/sql/setup/82_billing.sql

-- Usage metrics as data (src/sql/schema/12_usage_metrics.sql) and the layout
-- of each stored feature vector (NULL for vectors stored before: the catalog
-- alone).
--@include src/sql/schema/12_usage_metrics.sql
ALTER TABLE cs.customer_features ADD COLUMN layout int;
COMMENT ON COLUMN cs.customer_features.features IS 'Feature values in the order of its layout (cs.feature_names() when stored); NaN for missing data.';
COMMENT ON COLUMN cs.customer_features.layout IS 'The cs.feature_layouts id naming the elements of features; NULL for cs.feature_catalog order alone (no usage metrics).';

-- Custom models on named, typed columns (src/encode.c, src/sql/31_custom_models.sql):
-- the encoding a model learnt from its training query, applied at scoring.
ALTER TABLE cs.models ADD COLUMN encoding jsonb;
COMMENT ON COLUMN cs.models.encoding IS 'For a custom model trained on named columns (src/encode.c): its input columns in order, each with name, type, kind (numeric, boolean or category), for a category its encoding (onehot or ordinal), vocabulary and other_values (folded into other), and the inputs it gives; cs.predict_row applies it to a record.  NULL for a model over a features array.';

-- A second demo world (src/demo.c, src/sql/05_demo.sql): cs.generate_demo_data
-- takes a profile ('b2b', the default, or 'consumer'), and the consumer
-- profile's archetypes go to cs.demo_ground_truth.
DROP FUNCTION IF EXISTS cs.generate_demo_data(int, int, int, date);
ALTER TABLE cs.demo_ground_truth DROP CONSTRAINT demo_ground_truth_archetype_check;
ALTER TABLE cs.demo_ground_truth
    ADD CONSTRAINT demo_ground_truth_archetype_check
        CHECK (archetype IN ('stable', 'growing', 'seasonal', 'recovering', 'at_risk',
                             'declining_churn', 'sudden_churn',
                             'consumer_engaged', 'consumer_casual', 'consumer_fading',
                             'consumer_recovered'));
COMMENT ON COLUMN cs.demo_ground_truth.archetype IS 'Story the customer follows: stable, growing (outgrows its seats, expands), seasonal (noisy), recovering (dip then recovery: a false alarm), at_risk (declining, churns after the window), declining_churn (declines 30-120 days, then churns) or sudden_churn (churns with few warning signs); for the consumer profile consumer_engaged or consumer_casual (high or middling engagement, no episode), consumer_fading (in a disengagement episode at churn or at end_date) or consumer_recovered (an episode that recovered).';
COMMENT ON COLUMN cs.demo_ground_truth.health_start IS 'Latent health (0-1) on the first day of the window (consumer profile: engagement, on the sign-up day for later sign-ups).';

-- Training on the user's own history (src/sql/39_training.sql): the stored
-- applicability of a model, the flag on scores of an inapplicable model, and
-- cs.deploy_model(name, version, force).
ALTER TABLE cs.models ADD COLUMN applicability jsonb;
COMMENT ON COLUMN cs.models.applicability IS 'Last applicability check (cs.model_applicability): verdict, unusable_gain_share, missing_or_constant; NULL until checked. A risk champion whose verdict is not applicable raises no risk alerts.';
ALTER TABLE cs.risk_assessments ADD COLUMN model_applicable boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN cs.risk_assessments.model_applicable IS 'False when the model that produced the score does not apply to this data (cs.model_applicability): the score raises no risk alerts.';
DROP FUNCTION IF EXISTS cs.deploy_model(text, int);

-- Value mapping of csv sources and schema drift of every source
-- (src/sql/84_source_fields.sql): the fields each source delivered.
COMMENT ON COLUMN cs.data_sources.options IS 'Format options: customer_property and feature_property (events), metadata_key (Stripe), and for csv: target, mapping {column: header}, values {column: {source word: our word}}, customer (header), customer_key_kind.';
--@include src/sql/schema/84_source_fields.sql
-- Point in time for real (issue 18, src/sql/10_features.sql, 35_risk.sql,
-- 20_health.sql): a customer's start from its real history, not created_at;
-- the first activity kept by the load triggers (src/sql/01_loading.sql), taken
-- once here from the rows already loaded (the customers' update triggers of
-- the released version would mark every customer dirty and touch updated_at:
-- held off for this update, as the new ones hold off for a load's).
--@include src/sql/schema/86_customer_start.sql
COMMENT ON COLUMN cs.customers.created_at IS 'When the row was created (the load time): not when the customer started; features and training read the start from cs.contract_terms, contract_start_date, cs.subscriptions and first_seen_at.';
ALTER TABLE cs.customers DISABLE TRIGGER customers_touch_updated_at, DISABLE TRIGGER customers_mark_dirty_upd;
UPDATE cs.customers c SET first_seen_at = f.first
  FROM (SELECT x.customer_id, min(x.first) AS first
          FROM (SELECT customer_id, min(occurred_at) AS first FROM cs.usage_events GROUP BY 1
                UNION ALL SELECT customer_id, min(opened_at) FROM cs.support_tickets GROUP BY 1
                UNION ALL SELECT customer_id, min(issued_at)::timestamptz FROM cs.invoices GROUP BY 1
                UNION ALL SELECT customer_id, min(occurred_at) FROM cs.engagements GROUP BY 1
                UNION ALL SELECT customer_id, min(responded_at) FROM cs.nps_responses GROUP BY 1) x
         GROUP BY 1) f
 WHERE c.id = f.customer_id;
ALTER TABLE cs.customers ENABLE TRIGGER customers_touch_updated_at, ENABLE TRIGGER customers_mark_dirty_upd;

-- Segments are the user's own words: any text; a profile applies to the
-- segment it names, the default profile to every other.
ALTER TABLE cs.customers DROP CONSTRAINT customers_segment_check;
COMMENT ON COLUMN cs.customers.segment IS 'Segment in the user''s own words (any text, for example smb or prosumer); selects the health profile of that segment when there is one, else the default profile.';
ALTER TABLE cs.health_profiles DROP CONSTRAINT health_profiles_segment_check;
COMMENT ON COLUMN cs.health_profiles.segment IS 'Segment the profile applies to, as cs.customers.segment spells it (any text); NULL for the default profile, which applies to every segment without its own.';

-- Feature descriptions of the point-in-time tenure and renewal (unless edited).
UPDATE cs.feature_catalog SET description = 'Days since the customer started: its first contract term, contract, subscription or activity known at as_of (not created_at); NaN when none'
 WHERE name = 'tenure_days' AND description = 'Days since the customer started (earliest of created_at and contract start); NaN before';
UPDATE cs.feature_catalog SET description = 'Days until the contract term in force at as_of ends (cs.contract_terms, else the current contract once begun); NaN when unknown'
 WHERE name = 'days_to_renewal' AND description = 'Days until the contract term running at as_of ends (terms before the current one assumed of the same length)';

-- The health scorer takes the populations of a past date as an argument.
DROP FUNCTION cs._health_of(uuid, text, float4[], timestamptz);

-- Salesforce and Intercom loaders (src/sql/81_crm.sql): their formats, CRM
-- opportunities and parents waiting for their account
-- (src/sql/schema/81_crm.sql), and the shipped sources.
ALTER TABLE cs.data_sources DROP CONSTRAINT data_sources_format_check;
ALTER TABLE cs.data_sources
    ADD CONSTRAINT data_sources_format_check
        CHECK (format IN ('stripe_invoice', 'stripe_invoice_csv', 'zendesk_ticket',
                          'hubspot_company', 'hubspot_contact', 'mixpanel', 'amplitude', 'csv',
                          'stripe_subscription', 'stripe_customer', 'chargebee_customer',
                          'chargebee_subscription', 'chargebee_invoice',
                          'salesforce_account', 'salesforce_contact', 'salesforce_opportunity',
                          'salesforce_task', 'intercom_conversation', 'intercom_company'));
COMMENT ON COLUMN cs.data_sources.format IS 'stripe_invoice (API JSON), stripe_invoice_csv (Dashboard export), zendesk_ticket (API JSON), hubspot_company, hubspot_contact (CSV exports), mixpanel, amplitude (NDJSON exports), csv (generic, with a column mapping in options), salesforce_account, salesforce_contact, salesforce_opportunity, salesforce_task (REST API JSON or Data Loader CSV), intercom_conversation or intercom_company (REST API JSON and webhooks), stripe_subscription, stripe_customer, chargebee_customer, chargebee_subscription, chargebee_invoice (API JSON and webhooks).';
--@include src/sql/schema/81_crm.sql
--@include src/sql/setup/81_crm.sql

-- Time to churn (src/sql/36_survival.sql): survival models get their own kind,
-- and the shipped survival model is deployed.
ALTER TABLE cs.models DROP CONSTRAINT models_kind_check;
ALTER TABLE cs.models
    ADD CONSTRAINT models_kind_check
        CHECK (kind IN ('churn', 'downgrade', 'payment', 'upsell', 'survival', 'custom'));
COMMENT ON COLUMN cs.models.kind IS 'churn, downgrade, payment, upsell, survival (time to churn, objective survival:aft) or custom.';
--@include src/sql/setup/91_survival_model.sql
