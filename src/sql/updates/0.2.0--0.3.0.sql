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

-- Salesforce and Intercom loaders (src/sql/81_crm.sql): their formats, CRM
-- opportunities and parents waiting for their account
-- (src/sql/schema/81_crm.sql), and the shipped sources.
ALTER TABLE cs.data_sources DROP CONSTRAINT data_sources_format_check;
ALTER TABLE cs.data_sources
    ADD CONSTRAINT data_sources_format_check
        CHECK (format IN ('stripe_invoice', 'stripe_invoice_csv', 'zendesk_ticket',
                          'hubspot_company', 'hubspot_contact', 'mixpanel', 'amplitude', 'csv',
                          'salesforce_account', 'salesforce_contact', 'salesforce_opportunity',
                          'salesforce_task', 'intercom_conversation', 'intercom_company'));
COMMENT ON COLUMN cs.data_sources.format IS 'stripe_invoice (API JSON), stripe_invoice_csv (Dashboard export), zendesk_ticket (API JSON), hubspot_company, hubspot_contact (CSV exports), mixpanel, amplitude (NDJSON exports), csv (generic, with a column mapping in options), salesforce_account, salesforce_contact, salesforce_opportunity, salesforce_task (REST API JSON or Data Loader CSV), intercom_conversation or intercom_company (REST API JSON and webhooks).';
--@include src/sql/schema/81_crm.sql
--@include src/sql/setup/81_crm.sql
