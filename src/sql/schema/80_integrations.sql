-- Install-once: tables of integrations, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE TABLE cs.data_sources (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    format         text NOT NULL CHECK (format IN ('stripe_invoice', 'stripe_invoice_csv', 'zendesk_ticket',
                                                   'hubspot_company', 'hubspot_contact', 'mixpanel', 'amplitude', 'csv',
                                                   -- billing (src/sql/82_billing.sql)
                                                   'stripe_subscription', 'stripe_customer', 'chargebee_customer',
                                                   'chargebee_subscription', 'chargebee_invoice',
                                                   -- Salesforce and Intercom (src/sql/81_crm.sql)
                                                   'salesforce_account', 'salesforce_contact', 'salesforce_opportunity',
                                                   'salesforce_task', 'intercom_conversation', 'intercom_company')),
    system         text NOT NULL CHECK (system ~ '^[a-z][a-z0-9_]*$' AND system <> 'any'),
    options        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    expected_every interval CHECK (expected_every > '0'),
    enabled        boolean NOT NULL DEFAULT true,
    description    text
);
COMMENT ON TABLE cs.data_sources IS 'Where data comes from: one row per loadable source, its format, options and how often data is expected.';
COMMENT ON COLUMN cs.data_sources.name IS 'Source name, passed to cs.ingest and the command-line loader.';
COMMENT ON COLUMN cs.data_sources.format IS 'stripe_invoice (API JSON), stripe_invoice_csv (Dashboard export), zendesk_ticket (API JSON), hubspot_company, hubspot_contact (CSV exports), mixpanel, amplitude (NDJSON exports), csv (generic, with a column mapping in options), salesforce_account, salesforce_contact, salesforce_opportunity, salesforce_task (REST API JSON or Data Loader CSV), intercom_conversation or intercom_company (REST API JSON and webhooks), stripe_subscription, stripe_customer, chargebee_customer, chargebee_subscription, chargebee_invoice (API JSON and webhooks).';
COMMENT ON COLUMN cs.data_sources.system IS 'The system the source''s ids belong to; cs.customer_keys are looked up under it (and under any).';
COMMENT ON COLUMN cs.data_sources.options IS 'Format options: customer_property and feature_property (events), metadata_key (Stripe), and for csv: target, mapping {column: header}, values {column: {source word: our word}}, customer (header), customer_key_kind.';
COMMENT ON COLUMN cs.data_sources.expected_every IS 'Data is expected at least this often; a longer silence is a freshness problem and lowers risk confidence. NULL: not monitored.';
COMMENT ON COLUMN cs.data_sources.enabled IS 'Disabled sources refuse loads and are not monitored.';
COMMENT ON COLUMN cs.data_sources.description IS 'Free text.';

CREATE TABLE cs.customer_keys (
    source      text NOT NULL,
    key_kind    text NOT NULL,
    key         text NOT NULL,
    customer_id uuid NOT NULL REFERENCES cs.customers (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Scoped by the customer (Citus); the key first, for lookups by key alone.
    PRIMARY KEY (source, key_kind, key, customer_id)
);
-- One customer per key on a single node (dropped by cs.distribute() on Citus,
-- where a key is only ever learnt when unmapped, and moved by delete and insert).
CREATE UNIQUE INDEX customer_keys_key_global_key ON cs.customer_keys (source, key_kind, key);
CREATE INDEX customer_keys_customer_idx ON cs.customer_keys (customer_id);
COMMENT ON TABLE cs.customer_keys IS 'Maps the keys other systems use for a customer (Stripe customer, Zendesk organization, HubSpot company, email domain, old external ids) to cs.customers.id.';
COMMENT ON COLUMN cs.customer_keys.source IS 'System the key belongs to (cs.data_sources.system), or any for keys valid everywhere (domain, external_id).';
COMMENT ON COLUMN cs.customer_keys.key_kind IS 'What the key is: customer (stripe), organization (zendesk), company (hubspot), domain, external_id, or any name a csv source uses.';
COMMENT ON COLUMN cs.customer_keys.key IS 'The key value; domains in lower case.';
COMMENT ON COLUMN cs.customer_keys.customer_id IS 'The customer it maps to; a key maps to one customer (a unique index on a single node, the loaders on a Citus cluster).';
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
-- Each key holds customer_id (Citus distributes by it), after the source's
-- id so that a loader finds a row by its source id alone; one row per source
-- id across customers is the _global_key, which cs.distribute() drops on Citus
-- (the loaders keep the rule there: a row that moves to another customer is
-- deleted under the old one first).  Subscriptions keep history under the
-- source id (src/sql/schema/82_billing.sql): no global key.
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
            EXECUTE 'CREATE UNIQUE INDEX usage_events_source_global_key ON cs.usage_events (source, source_id, occurred_at)
                      WHERE source IS NOT NULL';
            EXECUTE 'CREATE UNIQUE INDEX usage_events_source_key ON cs.usage_events (source, source_id, occurred_at, customer_id)
                      WHERE source IS NOT NULL';
        ELSIF t = 'subscriptions' THEN
            EXECUTE 'CREATE UNIQUE INDEX subscriptions_source_key ON cs.subscriptions (source, source_id) WHERE source IS NOT NULL';
        ELSE
            EXECUTE format('CREATE UNIQUE INDEX %I ON cs.%I (source, source_id) WHERE source IS NOT NULL', t || '_source_global_key', t);
            EXECUTE format('CREATE UNIQUE INDEX %I ON cs.%I (source, source_id, customer_id) WHERE source IS NOT NULL', t || '_source_key', t);
        END IF;
        EXECUTE format('COMMENT ON COLUMN cs.%I.source IS %L', t, 'Data source the row was loaded from (cs.data_sources.name); NULL when loaded directly.');
        EXECUTE format('COMMENT ON COLUMN cs.%I.source_id IS %L', t, 'The row''s id in the source; loaders upsert on (source, source_id, customer_id), one row per source id across customers.');
    END LOOP;
END;
$$;
COMMENT ON COLUMN cs.support_tickets.source IS 'Data source the row was last loaded from; NULL when loaded directly. Loaders upsert on external_id.';
COMMENT ON COLUMN cs.invoices.source IS 'Data source the row was last loaded from; NULL when loaded directly. Loaders upsert on external_id.';

CREATE TYPE cs.ingest_result AS (inserted bigint, updated bigint, unchanged bigint, rejected bigint);
COMMENT ON TYPE cs.ingest_result IS 'Outcome of a load: rows inserted, updated, already present unchanged, and rejected.';
