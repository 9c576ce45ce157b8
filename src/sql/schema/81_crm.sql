-- Install-once: what the Salesforce and Intercom loaders (src/sql/81_crm.sql)
-- need beyond the tables of integrations.  CREATE EXTENSION runs this once; a
-- change here needs the same change, as ALTER, in src/sql/updates/.

-- Opportunities of a CRM (Salesforce) next to the generated and hand-made
-- ones: origin crm, and the source's id to upsert on.  Refreshes regenerate
-- only open system opportunities, so CRM rows stay as loaded.
ALTER TABLE cs.opportunities DROP CONSTRAINT opportunities_source_check;
ALTER TABLE cs.opportunities
    ADD CONSTRAINT opportunities_source_check CHECK (source IN ('system', 'csm', 'crm')),
    ADD COLUMN data_source text,
    ADD COLUMN source_id text,
    ADD CONSTRAINT opportunities_data_source_check CHECK ((data_source IS NULL) = (source_id IS NULL)),
    ADD CONSTRAINT opportunities_crm_source_check CHECK ((source = 'crm') = (data_source IS NOT NULL));
-- Scoped by the customer (Citus), the CRM's id first for lookups by it alone;
-- one row per CRM id across customers is the _global_key on a single node
-- (dropped by cs.distribute() on Citus, where the loader keeps the rule).
CREATE UNIQUE INDEX opportunities_source_global_key ON cs.opportunities (data_source, source_id) WHERE data_source IS NOT NULL;
CREATE UNIQUE INDEX opportunities_source_key ON cs.opportunities (data_source, source_id, customer_id) WHERE data_source IS NOT NULL;
COMMENT ON COLUMN cs.opportunities.source IS 'system for opportunities cs.refresh_opportunities generates (replaced on refresh while open), csm for ones entered by hand, crm for ones loaded from a CRM (data_source, source_id).';
COMMENT ON COLUMN cs.opportunities.data_source IS 'For source crm: the data source the row was loaded from (cs.data_sources.name); NULL otherwise.';
COMMENT ON COLUMN cs.opportunities.source_id IS 'For source crm: the opportunity''s id in the CRM; loaders upsert on (data_source, source_id, customer_id), one row per CRM id across customers.';

-- A loaded account whose parent account has not been loaded yet: the parent
-- is set when it arrives (account exports come in no particular order).
CREATE TABLE cs.pending_parents (
    customer_id uuid PRIMARY KEY REFERENCES cs.customers (id) ON DELETE CASCADE,
    source      text NOT NULL,
    key_kind    text NOT NULL,
    parent_key  text NOT NULL,
    noted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_parents_key_idx ON cs.pending_parents (source, key_kind, parent_key);
COMMENT ON TABLE cs.pending_parents IS 'Customers whose parent account (cs.customers.parent_id) is known only by a key no customer has yet; a loader sets parent_id when a customer with that key loads.';
COMMENT ON COLUMN cs.pending_parents.customer_id IS 'The subsidiary.';
COMMENT ON COLUMN cs.pending_parents.source IS 'System of the key (cs.customer_keys.source), for example salesforce.';
COMMENT ON COLUMN cs.pending_parents.key_kind IS 'Kind of the key (cs.customer_keys.key_kind), for example account.';
COMMENT ON COLUMN cs.pending_parents.parent_key IS 'The parent''s key, for example its 18-character Salesforce account id.';
COMMENT ON COLUMN cs.pending_parents.noted_at IS 'When the loader last saw the subsidiary with this parent.';
