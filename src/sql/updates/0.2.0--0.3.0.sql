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
-- Citus (issue 19): tasks reference alerts by (customer_id, id); the key comes first.
ALTER TABLE cs.alerts ADD CONSTRAINT alerts_customer_id_id_key UNIQUE (customer_id, id);
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

-- A schema that distributes (issue 19, src/sql/schema/00_signals.sql and the
-- others): keys that start with the customer, foreign keys between
-- customer-keyed tables that include it, no self-reference of cs.customers
-- (the trigger customers_parent_exists of src/sql/65_revenue.sql checks it).
ALTER TABLE cs.customers DROP CONSTRAINT customers_parent_id_fkey;
COMMENT ON COLUMN cs.customers.parent_id IS 'Parent account for subsidiaries, or NULL; an existing customer, checked by the trigger customers_parent_exists (no self-referencing foreign key, which Citus cannot distribute).';
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['support_tickets', 'invoices', 'engagements', 'nps_responses', 'contacts', 'subscriptions',
                             'opportunities', 'actions'] LOOP
        EXECUTE format('ALTER TABLE cs.%I DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (customer_id, id)',
                       t, t || '_pkey', t || '_pkey');
    END LOOP;
END;
$$;
CREATE INDEX opportunities_id_idx ON cs.opportunities (id);
ALTER TABLE cs.actions DROP CONSTRAINT actions_alert_id_fkey,
    ADD CONSTRAINT actions_alert_id_fkey FOREIGN KEY (customer_id, alert_id) REFERENCES cs.alerts (customer_id, id);

-- Calibrated probabilities and global explanations (src/calibrate.c,
-- src/sql/37_trust.sql): the calibration map of each model, and the stored
-- mean |SHAP| per input of each model version.
ALTER TABLE cs.models ADD COLUMN calibration jsonb;
COMMENT ON COLUMN cs.models.calibration IS 'Map from the raw predicted probability to a calibrated one, fitted on the validation rows at training: {"method": "isotonic", "x": [...], "y": [...]} (knots, linear between them) or {"method": "platt", "a", "b"}; NULL scores raw probabilities. cs.calibrate applies it.';
--@include src/sql/schema/37_global_explanations.sql
-- Expansion models (kind expansion: a classifier and an amount model, with a
-- champion and a challenger each), the alert rules and playbooks of the
-- downgrade and payment risks and of the expansion opportunity.
ALTER TABLE cs.models DROP CONSTRAINT models_kind_check;
ALTER TABLE cs.models
    ADD CONSTRAINT models_kind_check CHECK (kind IN ('churn', 'downgrade', 'payment', 'upsell', 'expansion', 'custom'));
COMMENT ON COLUMN cs.models.kind IS 'churn, downgrade, payment, upsell, expansion or custom. Kind expansion has two roles, each with its own champion: the classifier (probability of an MRR increase of at least cscopilot.expansion_share within the horizon) and, with a reg: objective, the amount model (the MRR increase).';
DROP INDEX cs.models_one_champion_per_kind;
CREATE UNIQUE INDEX models_one_champion_per_kind ON cs.models (kind, (kind = 'expansion' AND objective LIKE 'reg:%'))
    WHERE status = 'champion' AND kind <> 'custom';
DROP INDEX cs.models_one_challenger_per_kind;
CREATE UNIQUE INDEX models_one_challenger_per_kind ON cs.models (kind, (kind = 'expansion' AND objective LIKE 'reg:%'))
    WHERE status = 'challenger' AND kind <> 'custom';
-- The rows are those a fresh install checks; here the validation triggers are
-- still those of the version before, whose placeholders and scores lack the
-- new ones (the functions of this version come after this section).
ALTER TABLE cs.alert_rules DISABLE TRIGGER alert_rules_validate;
ALTER TABLE cs.playbooks DISABLE TRIGGER playbooks_validate;
--@include src/sql/setup/72_risk_playbooks.sql
ALTER TABLE cs.alert_rules ENABLE TRIGGER alert_rules_validate;
ALTER TABLE cs.playbooks ENABLE TRIGGER playbooks_validate;

-- History that does not grow without bound (issue 19, src/sql/61_history.sql):
-- the worker's daily job retention;
-- cs.customer_health_scores, cs.risk_assessments, cs.model_shadow_scores and
-- cs.alert_events become range-partitioned by month, keyed by the customer
-- and the partition column, with a default partition; alert events carry
-- their alert's customer.  A table cannot become partitioned in place: each
-- old table is renamed, the partitioned one created with its columns (LIKE,
-- so columns added by earlier sections come along), the rows moved, and the
-- old one dropped with the views and functions that depend on it, which the
-- re-runnable files create again (grants, RLS and dump registration come from
-- 95_security.sql).  Objects of the user's own that depend on these tables
-- would be dropped with them: the update refuses instead.
DO $$
DECLARE
    deps text;
BEGIN
    WITH tabs AS (
        SELECT c.oid, c.reltype FROM pg_class c
         WHERE c.relnamespace = 'cs'::regnamespace
           AND c.relname IN ('customer_health_scores', 'risk_assessments', 'model_shadow_scores', 'alert_events')
    ), dep AS (
        SELECT CASE WHEN d.classid = 'pg_rewrite'::regclass THEN 'pg_class'::regclass ELSE d.classid END AS classid,
               CASE WHEN d.classid = 'pg_rewrite'::regclass THEN (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = d.objid)
                    ELSE d.objid END AS objid
          FROM pg_depend d
         WHERE d.deptype = 'n' AND (d.refobjid IN (SELECT oid FROM tabs) OR d.refobjid IN (SELECT reltype FROM tabs))
    )
    SELECT string_agg(DISTINCT pg_describe_object(dep.classid, dep.objid, 0), ', ') INTO deps
      FROM dep
     WHERE dep.objid NOT IN (SELECT oid FROM tabs)
       -- views, functions, and foreign keys of other tables into these (their
       -- own constraints, policies and triggers go with them)
       AND (dep.classid IN ('pg_class'::regclass, 'pg_proc'::regclass)
            OR (dep.classid = 'pg_constraint'::regclass
                AND (SELECT k.conrelid FROM pg_constraint k WHERE k.oid = dep.objid) NOT IN (SELECT oid FROM tabs)))
       AND NOT EXISTS (SELECT 1 FROM pg_depend e
                        WHERE e.classid = dep.classid AND e.objid = dep.objid AND e.deptype = 'e'
                          AND e.refobjid = (SELECT x.oid FROM pg_extension x WHERE x.extname = 'cscopilot'));
    IF deps IS NOT NULL THEN
        RAISE EXCEPTION 'objects outside the extension depend on the history tables: %', deps
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'cscopilot 0.3.0 partitions cs.customer_health_scores, cs.risk_assessments, cs.model_shadow_scores and cs.alert_events by month, which recreates them.',
                  HINT = 'Drop these objects, run ALTER EXTENSION cscopilot UPDATE, then create them again.';
    END IF;
END;
$$;

-- the old tables step aside, freeing the names of their indexes and sequences
DO $$
DECLARE
    t   text;
    i   record;
    seq text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customer_health_scores', 'risk_assessments', 'model_shadow_scores', 'alert_events'] LOOP
        EXECUTE format('ALTER TABLE cs.%I RENAME TO %I', t, t || '_old');
        FOR i IN SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                  WHERE x.indrelid = format('cs.%I', t || '_old')::regclass ORDER BY c.relname LOOP
            EXECUTE format('ALTER INDEX cs.%I RENAME TO %I', i.relname, i.relname || '_old');
        END LOOP;
        seq := pg_get_serial_sequence(format('cs.%I', t || '_old'), 'id');
        IF seq IS NOT NULL THEN
            EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', seq, t || '_old_id_seq');
        END IF;
    END LOOP;
END;
$$;

CREATE TABLE cs.customer_health_scores (LIKE cs.customer_health_scores_old
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION)
    PARTITION BY RANGE (calculated_at);
ALTER TABLE cs.customer_health_scores
    ADD CONSTRAINT customer_health_scores_pkey PRIMARY KEY (customer_id, id, calculated_at),
    ADD CONSTRAINT customer_health_scores_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES cs.customers (id);
CREATE TABLE cs.customer_health_scores_default PARTITION OF cs.customer_health_scores DEFAULT;
CREATE INDEX customer_health_scores_customer_time_idx ON cs.customer_health_scores (customer_id, calculated_at DESC);
COMMENT ON TABLE cs.customer_health_scores IS 'Health score history: every calculation appends a row.  Range-partitioned by month on calculated_at (a default partition takes any date); cs.apply_retention drops months older than cscopilot.history_retention, keeping every customer''s latest score.';

CREATE TABLE cs.risk_assessments (LIKE cs.risk_assessments_old
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION)
    PARTITION BY RANGE (created_at);
ALTER TABLE cs.risk_assessments
    ADD CONSTRAINT risk_assessments_pkey PRIMARY KEY (customer_id, id, created_at),
    ADD CONSTRAINT risk_assessments_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES cs.customers (id);
CREATE TABLE cs.risk_assessments_default PARTITION OF cs.risk_assessments DEFAULT;
CREATE INDEX risk_assessments_customer_time_idx ON cs.risk_assessments (customer_id, risk_type, created_at DESC);
COMMENT ON TABLE cs.risk_assessments IS 'Risk predictions history with their explanations.  Range-partitioned by month on created_at (a default partition takes any date); cs.apply_retention drops months older than cscopilot.history_retention, keeping every customer''s latest assessment of each risk type.';

CREATE TABLE cs.model_shadow_scores (LIKE cs.model_shadow_scores_old
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION)
    PARTITION BY RANGE (created_at);
ALTER TABLE cs.model_shadow_scores
    ADD CONSTRAINT model_shadow_scores_pkey PRIMARY KEY (customer_id, id, created_at),
    ADD CONSTRAINT model_shadow_scores_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES cs.customers (id);
CREATE TABLE cs.model_shadow_scores_default PARTITION OF cs.model_shadow_scores DEFAULT;
CREATE INDEX model_shadow_scores_model_time_idx ON cs.model_shadow_scores (model_version, created_at);
COMMENT ON TABLE cs.model_shadow_scores IS 'Scores of the model not served while a challenger runs (the challenger in shadow, or the champion for customers of the A/B share): kept to judge both on the same outcomes, never shown in cs.risk_assessments or the views.  Range-partitioned by month on created_at (a default partition takes any date); cs.apply_retention drops months older than cscopilot.history_retention, keeping the latest score of every customer, risk type and model.';

CREATE TABLE cs.alert_events (LIKE cs.alert_events_old
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION)
    PARTITION BY RANGE (at);
ALTER TABLE cs.alert_events ADD COLUMN customer_id uuid;
ALTER TABLE cs.alert_events
    ADD CONSTRAINT alert_events_key UNIQUE (customer_id, id, at),
    ADD CONSTRAINT alert_events_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES cs.alerts (id) ON DELETE CASCADE;
CREATE TABLE cs.alert_events_default PARTITION OF cs.alert_events DEFAULT;
CREATE INDEX alert_events_alert_idx ON cs.alert_events (alert_id, id);
COMMENT ON TABLE cs.alert_events IS 'Audit trail of alerts: every creation, escalation and lifecycle transition, with who and when.  Range-partitioned by month on at (a default partition takes any date); cs.apply_retention drops months older than cscopilot.history_retention, keeping the latest event of every alert.';
COMMENT ON COLUMN cs.alert_events.customer_id IS 'The alert''s customer (NULL for model and data alerts), copied when the event is logged: the key and row-level security of the events follow the customer.';

-- The months of the rows kept so far, and a year back and three months ahead
-- as a fresh install has (src/sql/schema/61_history.sql); then the rows.
DO $$
DECLARE
    oldest timestamptz;
    t      text;
    cols   text;
    seq    text;
BEGIN
    SELECT min(x) INTO oldest
      FROM (SELECT min(calculated_at) AS x FROM cs.customer_health_scores_old
            UNION ALL SELECT min(created_at) FROM cs.risk_assessments_old
            UNION ALL SELECT min(created_at) FROM cs.model_shadow_scores_old
            UNION ALL SELECT min(at) FROM cs.alert_events_old) m;
    -- at most 20 years a call; older rows land in the default partitions
    PERFORM cs.ensure_history_partitions(
        greatest(least(coalesce(oldest, now()), date_trunc('month', now()) - interval '12 months'),
                 date_trunc('month', now()) - interval '19 years')::date,
        (date_trunc('month', now()) + interval '3 months')::date);
    FOREACH t IN ARRAY ARRAY['customer_health_scores', 'risk_assessments', 'model_shadow_scores', 'alert_events'] LOOP
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_attribute a
         WHERE a.attrelid = format('cs.%I', t || '_old')::regclass AND a.attnum > 0 AND NOT a.attisdropped;
        IF t = 'alert_events' THEN
            EXECUTE format('INSERT INTO cs.alert_events (%s, customer_id) OVERRIDING SYSTEM VALUE
                            SELECT %s, a.customer_id FROM cs.alert_events_old e JOIN cs.alerts a ON a.id = e.alert_id',
                           cols, (SELECT string_agg('e.' || c, ', ') FROM unnest(string_to_array(cols, ', ')) c));
        ELSE
            EXECUTE format('INSERT INTO cs.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM cs.%I', t, cols, cols, t || '_old');
        END IF;
        -- identities go on from where the old table was
        seq := pg_get_serial_sequence(format('cs.%I', t), 'id');
        IF seq IS NOT NULL THEN
            EXECUTE format('SELECT setval(%L, s.last_value, s.is_called) FROM cs.%I s', seq, t || '_old_id_seq');
        END IF;
        -- out of the extension first, so that pg_dump's list of its tables
        -- (pg_extension.extconfig) forgets them
        IF seq IS NOT NULL THEN
            EXECUTE format('ALTER EXTENSION cscopilot DROP SEQUENCE cs.%I', t || '_old_id_seq');
        END IF;
        EXECUTE format('ALTER EXTENSION cscopilot DROP TABLE cs.%I', t || '_old');
        EXECUTE format('DROP TABLE cs.%I CASCADE', t || '_old');
    END LOOP;
END;
$$;
ALTER TABLE cs.job_runs DROP CONSTRAINT job_runs_job_check,
    ADD CONSTRAINT job_runs_job_check CHECK (job IN ('batch', 'full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes',
                                                    'model_checks', 'retrain', 'data_quality', 'retention'));
COMMENT ON COLUMN cs.job_runs.job IS 'batch (failed batches only), full_rescore, daily_snapshot, partitions, action_outcomes, model_checks, retrain, data_quality or retention.';
COMMENT ON COLUMN cs.job_runs.customers IS 'Customers the run refreshed (partitions it created, for partitions; problems found, for data_quality; partitions dropped or swept, for retention); NULL when not applicable.';
COMMENT ON COLUMN cs.job_runs.details IS 'What the run did, step by step: for retrain the steps of cs.retrain (policy, training set, training, registration), for model_checks the drift checks and promotion decisions, for retention the partitions dropped (cs.apply_retention).';
-- Outcomes beyond churn (issue 21, src/sql/35_risk.sql): training sets label
-- downgrade, payment and expansion too (a kind argument, and the expansion
-- amount in a target column).
DROP FUNCTION cs.build_training_set(date[], interval);
-- The shipped downgrade, payment and expansion models are loaded by
-- src/sql/96_outcome_models.sql, re-run by every upgrade (once per name).
-- Time to churn (src/sql/36_survival.sql): survival models get their own kind,
-- and the shipped survival model is deployed.
ALTER TABLE cs.models DROP CONSTRAINT models_kind_check;
ALTER TABLE cs.models
    ADD CONSTRAINT models_kind_check
        CHECK (kind IN ('churn', 'downgrade', 'payment', 'upsell', 'expansion', 'survival', 'custom'));
COMMENT ON COLUMN cs.models.kind IS 'churn, downgrade, payment, upsell, expansion, survival (time to churn, objective survival:aft) or custom. Kind expansion has two roles, each with its own champion: the classifier (probability of an MRR increase of at least cscopilot.expansion_share within the horizon) and, with a reg: objective, the amount model (the MRR increase).';
--@include src/sql/setup/91_survival_model.sql
-- Citus (issue 19): every key of a customer-keyed table holds customer_id
-- (src/sql/schema/00_signals.sql, 80_integrations.sql, 81_crm.sql); the keys
-- that must hold across customers become the <table>_<what>_global_key unique
-- indexes, which cs.distribute() drops on a cluster (cs._global_unique_indexes()).
-- An old unique index becomes the global one by a rename (no rebuild), its
-- partitions' indexes keep their names as a fresh install gives them.
ALTER TABLE cs.customers DROP CONSTRAINT customers_external_id_key;
CREATE UNIQUE INDEX customers_external_id_global_key ON cs.customers (external_id);
CREATE INDEX customers_external_id_idx ON cs.customers (external_id);
COMMENT ON COLUMN cs.customers.external_id IS 'The account id in the source system (CRM); one customer per external_id (a unique index on a single node, the loaders on a Citus cluster), used by loaders to resolve customers.';
ALTER TABLE cs.support_tickets DROP CONSTRAINT support_tickets_external_id_key;
ALTER TABLE cs.support_tickets ADD CONSTRAINT support_tickets_external_id_key UNIQUE (external_id, customer_id);
CREATE UNIQUE INDEX support_tickets_external_id_global_key ON cs.support_tickets (external_id);
COMMENT ON COLUMN cs.support_tickets.external_id IS 'Ticket id in the source system; one row per ticket id when given (unique with customer_id, and across customers on a single node).';
ALTER TABLE cs.invoices DROP CONSTRAINT invoices_external_id_key;
ALTER TABLE cs.invoices ADD CONSTRAINT invoices_external_id_key UNIQUE (external_id, customer_id);
CREATE UNIQUE INDEX invoices_external_id_global_key ON cs.invoices (external_id);
COMMENT ON COLUMN cs.invoices.external_id IS 'Invoice id in the billing system; one row per invoice id when given (unique with customer_id, and across customers on a single node).';
ALTER INDEX cs.usage_events_source_key RENAME TO usage_events_source_global_key;
CREATE UNIQUE INDEX usage_events_source_key ON cs.usage_events (source, source_id, occurred_at, customer_id)
    WHERE source IS NOT NULL;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['usage_events', 'contacts', 'engagements', 'nps_responses', 'subscriptions'] LOOP
        IF t NOT IN ('usage_events', 'subscriptions') THEN
            EXECUTE format('ALTER INDEX cs.%I RENAME TO %I', t || '_source_key', t || '_source_global_key');
            EXECUTE format('CREATE UNIQUE INDEX %I ON cs.%I (source, source_id, customer_id) WHERE source IS NOT NULL', t || '_source_key', t);
        END IF;
        EXECUTE format('COMMENT ON COLUMN cs.%I.source_id IS %L', t, 'The row''s id in the source; loaders upsert on (source, source_id, customer_id), one row per source id across customers.');
    END LOOP;
END;
$$;
COMMENT ON COLUMN cs.subscriptions.source_id IS 'The subscription''s id in the source; billing loaders keep one row per product and version of it, unique with the customer, product and start.';
-- (cs.opportunities' keys are new in this version: src/sql/schema/81_crm.sql, included above.)
ALTER TABLE cs.customer_keys DROP CONSTRAINT customer_keys_pkey;
ALTER TABLE cs.customer_keys ADD PRIMARY KEY (source, key_kind, key, customer_id);
CREATE UNIQUE INDEX customer_keys_key_global_key ON cs.customer_keys (source, key_kind, key);
COMMENT ON COLUMN cs.customer_keys.customer_id IS 'The customer it maps to; a key maps to one customer (a unique index on a single node, the loaders on a Citus cluster).';

-- Alerts without a customer (issue 19): model and data alerts move from
-- cs.alerts to cs.system_alerts (and their events to cs.system_alert_events),
-- keeping their ids, so that cs.alerts.customer_id is NOT NULL and cs.alerts
-- and cs.alert_events are keyed by the customer (src/sql/schema/60_alerts.sql,
-- 62_system_alerts.sql).
--@include src/sql/schema/62_system_alerts.sql
-- At most one unresolved alert per key (the unique index of cs.system_alerts):
-- an older unresolved duplicate is resolved first, with its event.
WITH dup AS (
    SELECT a.id, a.status
      FROM (SELECT al.id, al.status,
                   row_number() OVER (PARTITION BY cs._alert_key(al.alert_type, NULL, al.risk_factors)
                                      ORDER BY al.created_at DESC, al.id DESC) AS n
              FROM cs.alerts al
             WHERE al.customer_id IS NULL AND al.status IN ('open', 'acknowledged', 'snoozed')) a
     WHERE a.n > 1
), res AS (
    UPDATE cs.alerts al SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
                            updated_at = now(), updated_by = current_user
      FROM dup WHERE al.id = dup.id
    RETURNING al.id, dup.status AS was
)
INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, note)
SELECT res.id, 'auto_resolved', res.was, 'resolved', 'duplicate of a newer alert (upgrade to 0.3.0)' FROM res;
INSERT INTO cs.system_alerts (id, alert_type, severity, title, description, risk_factors, suggested_actions, status,
                              assigned_to, snoozed_until, created_at, updated_at, updated_by, resolved_at,
                              last_fired_at, escalated_at, fire_count)
SELECT a.id, a.alert_type, a.severity, a.title, a.description, a.risk_factors, a.suggested_actions, a.status,
       a.assigned_to, a.snoozed_until, a.created_at, a.updated_at, a.updated_by, a.resolved_at,
       a.last_fired_at, a.escalated_at, a.fire_count
  FROM cs.alerts a WHERE a.customer_id IS NULL
 ORDER BY a.created_at, a.id;
INSERT INTO cs.system_alert_events (alert_id, event, from_status, to_status, actor, at, note, details)
SELECT e.alert_id, e.event, e.from_status, e.to_status, e.actor, e.at, e.note, e.details
  FROM cs.alert_events e JOIN cs.system_alerts s ON s.id = e.alert_id
 ORDER BY e.id;
DELETE FROM cs.alert_events e USING cs.system_alerts s WHERE e.alert_id = s.id;
-- Feedback keeps its rows (the alert_id of a model or data alert now names a
-- row of cs.system_alerts); cs.alerts (id) is no longer a key it can reference.
ALTER TABLE cs.alert_feedback DROP CONSTRAINT alert_feedback_alert_id_fkey;
DELETE FROM cs.alerts a WHERE a.customer_id IS NULL;
-- The keys: (customer_id, id), with the foreign keys that reference it.
ALTER TABLE cs.actions DROP CONSTRAINT actions_alert_id_fkey;
ALTER TABLE cs.tasks DROP CONSTRAINT tasks_alert_id_fkey;
ALTER TABLE cs.alert_events DROP CONSTRAINT alert_events_alert_id_fkey, DROP CONSTRAINT alert_events_key;
ALTER TABLE cs.alerts DROP CONSTRAINT alerts_pkey, DROP CONSTRAINT alerts_customer_id_id_key;
ALTER TABLE cs.alerts ALTER COLUMN customer_id SET NOT NULL,
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (customer_id, id),
    DROP CONSTRAINT alerts_alert_type_check,
    ADD CONSTRAINT alerts_alert_type_check CHECK (alert_type IN ('risk', 'opportunity', 'task'));
CREATE INDEX alerts_id_idx ON cs.alerts (id);
ALTER TABLE cs.alert_events ALTER COLUMN customer_id SET NOT NULL;
ALTER TABLE cs.alert_events
    ADD CONSTRAINT alert_events_pkey PRIMARY KEY (customer_id, id, at),
    ADD CONSTRAINT alert_events_alert_id_fkey FOREIGN KEY (customer_id, alert_id) REFERENCES cs.alerts (customer_id, id) ON DELETE CASCADE;
ALTER TABLE cs.actions
    ADD CONSTRAINT actions_alert_id_fkey FOREIGN KEY (customer_id, alert_id) REFERENCES cs.alerts (customer_id, id);
ALTER TABLE cs.tasks
    ADD CONSTRAINT tasks_alert_id_fkey FOREIGN KEY (customer_id, alert_id) REFERENCES cs.alerts (customer_id, id);
COMMENT ON TABLE cs.alerts IS 'Alerts of a customer raised by rules and overdue tasks; at most one unresolved alert per customer and rule. Model and data alerts, which have no customer, are in cs.system_alerts.';
COMMENT ON COLUMN cs.alerts.customer_id IS 'The customer the alert is about.';
COMMENT ON COLUMN cs.alerts.alert_type IS 'risk, opportunity or task (an overdue task, cs._task_alerts); model and data alerts are in cs.system_alerts.';
COMMENT ON COLUMN cs.alerts.mrr_at_risk IS 'MRR of the customer when the alert last fired (0 without MRR); stored so that the alert pages read the most severe, largest alerts from an index.';
COMMENT ON TABLE cs.alert_events IS 'Audit trail of the alerts of customers (cs.alerts; model and data alerts log to cs.system_alert_events): every creation, escalation and lifecycle transition, with who and when.  Range-partitioned by month on at (a default partition takes any date); cs.apply_retention drops months older than cscopilot.history_retention, keeping the latest event of every alert.';
COMMENT ON COLUMN cs.alert_events.customer_id IS 'The alert''s customer, copied when the event is logged: the key, the foreign key and row-level security of the events follow the customer.';
-- Row-level security without subqueries (issue 19, src/sql/93_csm.sql): every
-- customer-scoped table carries its customer's csm, and alert_feedback its
-- alert's customer.  Filled here for the rows already stored; the triggers
-- (created by the re-runnable files after this) keep them right from now on.
--@include src/sql/schema/93_csm.sql
UPDATE cs.alert_feedback f SET customer_id = a.customer_id FROM cs.alerts a WHERE a.id = f.alert_id;
-- Feedback on alerts that moved to cs.system_alerts moves to
-- cs.system_alert_feedback (ids kept); every other row has its customer, and
-- the key becomes (customer_id, id).
INSERT INTO cs.system_alert_feedback (id, alert_id, user_id, feedback_type, rating, comments, created_at)
SELECT f.id, f.alert_id, f.user_id, f.feedback_type, f.rating, f.comments, f.created_at
  FROM cs.alert_feedback f JOIN cs.system_alerts s ON s.id = f.alert_id;
DELETE FROM cs.alert_feedback f USING cs.system_alerts s WHERE s.id = f.alert_id;
--@include src/sql/schema/94_feedback_keys.sql
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass
               FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND c.relname <> 'customers'
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'csm'
                               AND NOT a.attisdropped)
    LOOP
        EXECUTE format('UPDATE %s t SET csm = c.csm FROM cs.customers c WHERE c.id = t.customer_id AND c.csm IS NOT NULL', t);
    END LOOP;
END;
$$;
