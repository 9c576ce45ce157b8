-- Keys scoped by customer (issue 19): every key of a customer-keyed table holds
-- customer_id, so that Citus can distribute it; the rules that hold across
-- customers (one customer per external_id and per customer key, one row per
-- source record) are kept by the _global_key indexes on a single node and by
-- the loaders everywhere: a record whose customer changed in the source is
-- deleted under the old customer and inserted under the new one, never updated.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
\set VERBOSITY terse
SET timezone = 'UTC';

-- No key of a customer-keyed table lacks the distribution column but the
-- global ones cs.distribute() drops (and cs.alerts' own, which another change
-- of issue 19 reworks).
SELECT table_name, index_name, pg_get_indexdef(index_name) FROM cs._global_unique_indexes() ORDER BY 1, 2;
SELECT c.conrelid::regclass AS table_name, c.conname, pg_get_constraintdef(c.oid)
  FROM pg_constraint c
 WHERE c.contype IN ('p', 'u', 'x') AND c.connamespace = 'cs'::regnamespace
   AND c.conrelid IN ('cs.customers'::regclass, 'cs.customer_keys'::regclass, 'cs.support_tickets'::regclass,
                      'cs.invoices'::regclass)
 ORDER BY 1, 2;
SELECT i.indexrelid::regclass AS index_name, pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
 WHERE x.relname ~ '_source_key$' AND x.relnamespace = 'cs'::regnamespace
 ORDER BY 1;

INSERT INTO cs.customers (id, external_id, name) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'k-a', 'Alpha'),
    ('00000000-0000-0000-0000-00000000000b', 'k-b', 'Beta');
CREATE FUNCTION ext(id uuid) RETURNS text LANGUAGE sql AS $$ SELECT external_id FROM cs.customers WHERE id = $1 $$;
INSERT INTO cs.customer_keys (source, key_kind, key, customer_id) VALUES
    ('zendesk', 'organization', 'org-a', '00000000-0000-0000-0000-00000000000a'),
    ('zendesk', 'organization', 'org-b', '00000000-0000-0000-0000-00000000000b'),
    ('hubspot', 'company', 'hs-a', '00000000-0000-0000-0000-00000000000a'),
    ('hubspot', 'company', 'hs-b', '00000000-0000-0000-0000-00000000000b'),
    ('stripe', 'customer', 'cus_a', '00000000-0000-0000-0000-00000000000a'),
    ('stripe', 'customer', 'cus_b', '00000000-0000-0000-0000-00000000000b'),
    ('mixpanel', 'customer', 'mp-acme', '00000000-0000-0000-0000-00000000000a');

-- One record of each kind, as the source has it, for a customer key.
CREATE FUNCTION ticket(org text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('id', 9001, 'organization_id', org, 'status', 'open', 'priority', 'high',
                              'subject', 'Export fails', 'description', 'The export stops at 50%',
                              'created_at', '2024-11-04T10:00:00Z') $$;
CREATE FUNCTION contact(company text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('Record ID', '701', 'First Name', 'Ada', 'Last Name', 'Byron', 'Email', 'ada@example.org',
                              'Job Title', 'CTO', 'Associated Company IDs', company) $$;
CREATE FUNCTION invoice(cus text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('object', 'invoice', 'id', 'in_77', 'customer', cus, 'total', 12000, 'currency', 'usd',
                              'status', 'paid', 'created', 1730800800, 'due_date', 1731405600,
                              'status_transitions', jsonb_build_object('paid_at', 1730887200)) $$;
CREATE FUNCTION load_all(org text, company text, cus text)
RETURNS TABLE (source text, inserted bigint, updated bigint, unchanged bigint, rejected bigint)
LANGUAGE sql AS $$
    SELECT 'zendesk_tickets', (r).* FROM (SELECT cs.ingest('zendesk_tickets', ticket(org)) AS r) x
    UNION ALL SELECT 'hubspot_contacts', (r).* FROM (SELECT cs.ingest('hubspot_contacts', contact(company)) AS r) x
    UNION ALL SELECT 'stripe_invoices', (r).* FROM (SELECT cs.ingest('stripe_invoices', invoice(cus)) AS r) x
$$;
CREATE FUNCTION rows_now() RETURNS TABLE (what text, customer text, n bigint) LANGUAGE sql AS $$
    SELECT 'ticket', ext(customer_id), count(*) FROM cs.support_tickets GROUP BY 2
    UNION ALL SELECT 'contact', ext(customer_id), count(*) FROM cs.contacts GROUP BY 2
    UNION ALL SELECT 'invoice', ext(customer_id), count(*) FROM cs.invoices GROUP BY 2
    UNION ALL SELECT 'event', ext(customer_id), count(*) FROM cs.usage_events GROUP BY 2
    UNION ALL SELECT 'nps', ext(customer_id), count(*) FROM cs.nps_responses GROUP BY 2
    ORDER BY 1, 2
$$;
CREATE FUNCTION dirty() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(ext(customer_id), ', ' ORDER BY ext(customer_id)), '(none)') FROM cs.dirty_customers
$$;

------------------------------------------------------------------------------
-- Loaded under Alpha; the same batch again changes nothing
------------------------------------------------------------------------------
SELECT * FROM load_all('org-a', 'hs-a', 'cus_a');
SELECT * FROM rows_now();
DELETE FROM cs.dirty_customers;
SELECT * FROM load_all('org-a', 'hs-a', 'cus_a');
SELECT dirty() AS dirty_after_reload;

------------------------------------------------------------------------------
-- Re-assigned to Beta in the source: one row each, under Beta, reported as
-- one update; both customers dirty; the ticket keeps its content
------------------------------------------------------------------------------
SELECT * FROM load_all('org-b', 'hs-b', 'cus_b');
SELECT * FROM rows_now();
SELECT dirty() AS dirty_after_move;
SELECT ext(customer_id), external_id, status, priority, subject FROM cs.support_tickets;
SELECT ext(customer_id), external_id, amount, status, paid_at FROM cs.invoices;
SELECT ext(customer_id), name, email, source, source_id FROM cs.contacts;
-- the moved batch again: nothing changes, nobody is dirty
DELETE FROM cs.dirty_customers;
SELECT * FROM load_all('org-b', 'hs-b', 'cus_b');
SELECT dirty() AS dirty_after_reload;
-- and back to Alpha with a change: still one row each
SELECT * FROM load_all('org-a', 'hs-a', 'cus_a');
SELECT * FROM rows_now();

------------------------------------------------------------------------------
-- Events: a key that now maps to Beta moves its events (deleted, inserted)
------------------------------------------------------------------------------
CREATE FUNCTION events() RETURNS text LANGUAGE sql AS $$
    SELECT '{"event": "Report Created", "properties": {"time": 1730800800, "distinct_id": "u-1", "$insert_id": "mp-k1", "company_id": "mp-acme"}}' || E'\n' ||
           '{"event": "Report Created", "properties": {"time": 1730804400, "distinct_id": "u-2", "$insert_id": "mp-k2", "company_id": "mp-acme"}}' || E'\n' ||
           '{"event": "Login", "properties": {"time": 1730804400, "distinct_id": "u-3", "$insert_id": "mp-k3", "company_id": "k-b"}}'
$$;
SELECT * FROM cs.ingest_events('mixpanel', events());
SELECT * FROM cs.ingest_events('mixpanel', events());
-- the key is re-mapped as loaders do it: deleted, inserted again
DELETE FROM cs.customer_keys WHERE source = 'mixpanel' AND key = 'mp-acme';
INSERT INTO cs.customer_keys (source, key_kind, key, customer_id)
VALUES ('mixpanel', 'customer', 'mp-acme', '00000000-0000-0000-0000-00000000000b');
DELETE FROM cs.dirty_customers;
SELECT * FROM cs.ingest_events('mixpanel', events());
SELECT dirty() AS dirty_after_move;
SELECT ext(customer_id), source_id, event FROM cs.usage_events ORDER BY source_id;
SELECT * FROM cs.ingest_events('mixpanel', events());

------------------------------------------------------------------------------
-- The generic CSV loader: a customer upserted on its id (found by
-- external_id), a row moved between customers
------------------------------------------------------------------------------
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('crm_accounts', 'csv', 'crm', '{"target": "customers", "mapping": {"external_id": "Account", "name": "Name"}}'),
    ('survey', 'csv', 'survey', '{"target": "nps_responses", "customer": "Account",
                                  "mapping": {"source_id": "Response", "score": "Score", "responded_at": "At"}}');
SELECT * FROM cs.ingest('crm_accounts', '{"Account": "k-c", "Name": "Gamma"}');
SELECT * FROM cs.ingest('crm_accounts', '{"Account": "k-c", "Name": "Gamma"}');
SELECT * FROM cs.ingest('crm_accounts', '{"Account": "k-c", "Name": "Gamma Ltd"}');
SELECT external_id, name FROM cs.customers ORDER BY external_id;
SELECT * FROM cs.ingest('survey', '{"Response": "r-1", "Score": "9", "At": "2024-11-02", "Account": "k-a"}');
DELETE FROM cs.dirty_customers;
SELECT * FROM cs.ingest('survey', '{"Response": "r-1", "Score": "9", "At": "2024-11-02", "Account": "k-c"}');
SELECT dirty() AS dirty_after_move;
SELECT * FROM cs.ingest('survey', '{"Response": "r-1", "Score": "9", "At": "2024-11-02", "Account": "k-c"}');
SELECT ext(customer_id), source_id, score FROM cs.nps_responses;

------------------------------------------------------------------------------
-- Uniqueness across customers on a single node: 23505
------------------------------------------------------------------------------
-- (the error's SQLSTATE, then the index with its name)
\set VERBOSITY sqlstate
INSERT INTO cs.customers (external_id, name) VALUES ('k-a', 'Alpha again');
INSERT INTO cs.customer_keys (source, key_kind, key, customer_id)
VALUES ('zendesk', 'organization', 'org-a', '00000000-0000-0000-0000-00000000000b');
\set VERBOSITY terse
INSERT INTO cs.customers (external_id, name) VALUES ('k-a', 'Alpha again');
INSERT INTO cs.customer_keys (source, key_kind, key, customer_id)
VALUES ('zendesk', 'organization', 'org-a', '00000000-0000-0000-0000-00000000000b');
INSERT INTO cs.support_tickets (customer_id, external_id, opened_at)
VALUES ('00000000-0000-0000-0000-00000000000b', 'zendesk:9001', '2024-11-04');
INSERT INTO cs.contacts (customer_id, name, source, source_id)
VALUES ('00000000-0000-0000-0000-00000000000b', 'Ada twice', 'hubspot_contacts', '701');
-- a loader learns a key only when it is unmapped: it never re-maps one
SELECT cs._learn_key('stripe', 'customer', 'cus_a', '00000000-0000-0000-0000-00000000000b');
SELECT key, ext(customer_id) FROM cs.customer_keys WHERE source = 'stripe' ORDER BY key;

------------------------------------------------------------------------------
-- Merging customers moves keys by delete and insert
------------------------------------------------------------------------------
SELECT (cs.merge_customers('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b')) ->> 'customer_keys' AS keys_moved;
SELECT source, key_kind, key, ext(customer_id) FROM cs.customer_keys ORDER BY 1, 2, 3;
