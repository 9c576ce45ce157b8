SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
\set VERBOSITY terse
SET timezone = 'UTC';

\getenv abs_srcdir PG_ABS_SRCDIR
\set companies :abs_srcdir '/test/data/integrations/hubspot_companies.csv'
\set contacts :abs_srcdir '/test/data/integrations/hubspot_contacts.csv'
\set stripe_json :abs_srcdir '/test/data/integrations/stripe_invoices.json'
\set stripe_event :abs_srcdir '/test/data/integrations/stripe_invoice_paid_event.json'
\set stripe_csv :abs_srcdir '/test/data/integrations/stripe_invoices.csv'
\set zendesk :abs_srcdir '/test/data/integrations/zendesk_tickets.json'
\set mixpanel :abs_srcdir '/test/data/integrations/mixpanel_events.ndjson'
\set amplitude :abs_srcdir '/test/data/integrations/amplitude_events.ndjson'
\set nps :abs_srcdir '/test/data/integrations/nps_survey.csv'

-- CSV files are staged as the command-line loader does: positional text
-- columns, the header row first, each row handed to cs.ingest as {header: value}.
CREATE TEMP TABLE stage (n bigint GENERATED ALWAYS AS IDENTITY, c1 text, c2 text, c3 text, c4 text, c5 text,
                         c6 text, c7 text, c8 text, c9 text, c10 text, c11 text, c12 text, c13 text, c14 text,
                         c15 text, c16 text, c17 text, c18 text);
CREATE FUNCTION load_stage(src text) RETURNS TABLE (inserted bigint, updated bigint, unchanged bigint, rejected bigint)
LANGUAGE sql AS $$
    WITH h AS (SELECT array_remove(ARRAY[c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18], NULL) AS k
                 FROM stage WHERE n = (SELECT min(n) FROM stage)),
         r AS (SELECT cs.ingest(src, jsonb_object(h.k, (ARRAY[c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18])[1:cardinality(h.k)])) AS x
                 FROM stage, h WHERE n > (SELECT min(n) FROM stage) ORDER BY n)
    SELECT sum((x).inserted), sum((x).updated), sum((x).unchanged), sum((x).rejected) FROM r;
$$;
CREATE FUNCTION counts() RETURNS TABLE (customers bigint, contacts bigint, invoices bigint, tickets bigint, events bigint, nps bigint, rejects bigint, keys bigint)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM cs.customers), (SELECT count(*) FROM cs.contacts), (SELECT count(*) FROM cs.invoices),
           (SELECT count(*) FROM cs.support_tickets), (SELECT count(*) FROM cs.usage_events),
           (SELECT count(*) FROM cs.nps_responses), (SELECT count(*) FROM cs.ingest_rejects), (SELECT count(*) FROM cs.customer_keys);
$$;

-- The built-in sources
SELECT name, format, system, options FROM cs.data_sources ORDER BY name;

------------------------------------------------------------------------------
-- HubSpot companies: customers by Record ID, domain, size band; bad rows rejected
------------------------------------------------------------------------------
COPY stage (c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11) FROM :'companies' WITH (FORMAT csv);
SELECT * FROM load_stage('hubspot_companies');
SELECT * FROM load_stage('hubspot_companies');   -- again: nothing changes
SELECT external_id, name, industry, size, mrr, domain, contract_start_date, contract_end_date
  FROM cs.customers ORDER BY external_id;
SELECT source, key_kind, key, (SELECT external_id FROM cs.customers c WHERE c.id = k.customer_id) AS customer
  FROM cs.customer_keys k ORDER BY 1, 2, 3;
-- an edited row updates the customer, once
UPDATE stage SET c11 = '2600' WHERE c1 = '5001';
SELECT * FROM load_stage('hubspot_companies');
SELECT * FROM load_stage('hubspot_companies');
SELECT mrr FROM cs.customers WHERE external_id = '5001';
TRUNCATE stage;

------------------------------------------------------------------------------
-- HubSpot contacts: by associated company, else email domain
------------------------------------------------------------------------------
COPY stage (c1, c2, c3, c4, c5, c6, c7, c8) FROM :'contacts' WITH (FORMAT csv);
SELECT * FROM load_stage('hubspot_contacts');
SELECT * FROM load_stage('hubspot_contacts');
SELECT c.external_id, t.name, t.email, t.role, t.source, t.source_id
  FROM cs.contacts t JOIN cs.customers c ON c.id = t.customer_id ORDER BY t.source_id;
TRUNCATE stage;

------------------------------------------------------------------------------
-- Stripe invoices: API list object, then a webhook event, then the CSV export
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('stripe_invoices', pg_read_file(:'stripe_json'));
SELECT * FROM cs.ingest_text('stripe_invoices', pg_read_file(:'stripe_json'));
-- the invoice.paid webhook updates the failed invoice, once
SELECT * FROM cs.ingest('stripe_invoices', pg_read_file(:'stripe_event')::jsonb);
SELECT * FROM cs.ingest('stripe_invoices', pg_read_file(:'stripe_event')::jsonb);
COPY stage (c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18) FROM :'stripe_csv' WITH (FORMAT csv);
-- in_1Acme001 came through the API already and is identical: unchanged
SELECT * FROM load_stage('stripe_invoices_csv');
SELECT * FROM load_stage('stripe_invoices_csv');
TRUNCATE stage;
SELECT c.external_id AS customer, i.external_id, i.amount, i.issued_at, i.due_date, i.paid_at, i.status, i.source
  FROM cs.invoices i JOIN cs.customers c ON c.id = i.customer_id ORDER BY i.external_id;
-- Stripe customer ids learnt from metadata and email domain
SELECT key, (SELECT external_id FROM cs.customers c WHERE c.id = k.customer_id) AS customer
  FROM cs.customer_keys k WHERE source = 'stripe' ORDER BY key;

------------------------------------------------------------------------------
-- Zendesk tickets: the {"tickets": [...]} list form, organizations mapped by hand
------------------------------------------------------------------------------
INSERT INTO cs.customer_keys (source, key_kind, key, customer_id)
SELECT 'zendesk', 'organization', v.org, c.id FROM (VALUES ('509974', '5001'), ('509975', '5002')) v(org, ext)
  JOIN cs.customers c ON c.external_id = v.ext;
SELECT * FROM cs.ingest_text('zendesk_tickets', pg_read_file(:'zendesk'));
SELECT * FROM cs.ingest_text('zendesk_tickets', pg_read_file(:'zendesk'));
-- a single ticket webhook ({"ticket": ...}) changing the status
SELECT * FROM cs.ingest('zendesk_tickets', jsonb_build_object('ticket',
    (pg_read_file(:'zendesk')::jsonb -> 'tickets' -> 0) || '{"status": "solved", "updated_at": "2024-11-04T18:00:00Z"}'));
SELECT c.external_id AS customer, t.external_id, t.opened_at, t.closed_at, t.priority, t.status, t.csat, t.subject
  FROM cs.support_tickets t JOIN cs.customers c ON c.id = t.customer_id ORDER BY t.external_id;

------------------------------------------------------------------------------
-- Mixpanel and Amplitude NDJSON exports (parsed in C)
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_events('mixpanel', pg_read_file(:'mixpanel'));
SELECT * FROM cs.ingest_events('mixpanel', pg_read_file(:'mixpanel'));
SELECT * FROM cs.ingest_events('amplitude', pg_read_file(:'amplitude'));
SELECT * FROM cs.ingest_events('amplitude', pg_read_file(:'amplitude'));
SELECT c.external_id AS customer, e.user_id, e.event, e.feature, e.quantity, e.occurred_at, e.source, e.source_id
  FROM cs.usage_events e JOIN cs.customers c ON c.id = e.customer_id ORDER BY e.source, e.occurred_at, e.source_id;
-- what the parser makes of each line
SELECT line, customer_key, event, occurred_at, source_id, error
  FROM cs.parse_events('amplitude', pg_read_file(:'amplitude')) ORDER BY line;
-- a webhook-style single event
SELECT * FROM cs.ingest('mixpanel', '{"event": "Login", "properties": {"time": 1730900000, "distinct_id": "u-3", "$insert_id": "mp-0100", "company_id": "5003"}}');

------------------------------------------------------------------------------
-- A generic CSV with a column mapping (an NPS survey tool's export)
------------------------------------------------------------------------------
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('nps_survey', 'csv', 'survey', '{"target": "nps_responses", "customer": "Account",
      "mapping": {"source_id": "Response ID", "score": "Score", "comment": "Comment", "responded_at": "Responded At"}}');
COPY stage (c1, c2, c3, c4, c5) FROM :'nps' WITH (FORMAT csv);
SELECT * FROM load_stage('nps_survey');
SELECT * FROM load_stage('nps_survey');
SELECT c.external_id, r.score, r.comment, r.responded_at, r.source_id
  FROM cs.nps_responses r JOIN cs.customers c ON c.id = r.customer_id ORDER BY r.source_id;
-- a mapping to a column that does not exist is a configuration error, refused when the source is changed
UPDATE cs.data_sources SET options = jsonb_set(options, '{mapping,rating}', '"Score"') WHERE name = 'nps_survey';
TRUNCATE stage;

-- customers and usage events through mappings too (usage events upsert on source id and time)
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('crm_accounts', 'csv', 'crm', '{"target": "customers",
      "mapping": {"external_id": "Account ID", "name": "Account Name", "domain": "Domain", "segment": "Segment"}}'),
    ('usage_csv', 'csv', 'warehouse', '{"target": "usage_events", "customer": "account",
      "mapping": {"source_id": "id", "event": "name", "occurred_at": "ts", "quantity": "n"}}');
SELECT * FROM cs.ingest('crm_accounts', '[{"Account ID": "7001", "Account Name": "Soylent", "Domain": "soylent.example", "Segment": "smb"},
                                          {"Account ID": "7002", "Account Name": " ", "Segment": "galactic"}]');
SELECT * FROM cs.ingest('crm_accounts', '{"Account ID": "7001", "Account Name": "Soylent", "Domain": "soylent.example", "Segment": "smb"}');
SELECT * FROM cs.ingest('crm_accounts', '{"Account ID": "7001", "Account Name": "Soylent Corp", "Domain": "soylent.example", "Segment": "smb"}');
SELECT external_id, name, domain, segment FROM cs.customers WHERE external_id LIKE '70%';
SELECT * FROM cs.ingest('usage_csv', '[{"id": "w-1", "account": "7001", "name": "export", "ts": "2024-11-09 08:00:00", "n": "2"},
                                       {"id": "w-2", "account": "7001", "name": "export", "ts": "2024-11-09 09:00:00", "n": "-1"}]');
SELECT * FROM cs.ingest('usage_csv', '{"id": "w-1", "account": "7001", "name": "export", "ts": "2024-11-09 08:00:00", "n": "2"}');
SELECT * FROM cs.ingest('usage_csv', '{"id": "w-1", "account": "7001", "name": "export", "ts": "2024-11-09 08:00:00", "n": "3"}');
SELECT event, quantity, occurred_at, source, source_id FROM cs.usage_events WHERE source = 'usage_csv';
SELECT source, reason FROM cs.ingest_rejects WHERE source IN ('crm_accounts', 'usage_csv') ORDER BY 1, 2;
DELETE FROM cs.ingest_rejects WHERE source IN ('crm_accounts', 'usage_csv');
DELETE FROM cs.usage_events WHERE source = 'usage_csv';
DELETE FROM cs.customers WHERE external_id = '7001';

------------------------------------------------------------------------------
-- Rejects, with reasons; nothing was dropped
------------------------------------------------------------------------------
SELECT source, reason, times_seen FROM cs.ingest_rejects ORDER BY source, reason;
-- a mapping added later lets the rejected Amplitude events load, and removes their rejects
INSERT INTO cs.customer_keys (source, key_kind, key, customer_id)
SELECT 'amplitude', 'customer', 'acme-amp', id FROM cs.customers WHERE external_id = '5001';
SELECT * FROM cs.ingest_events('amplitude', pg_read_file(:'amplitude'));
SELECT count(*) AS amplitude_unknown_customer_rejects FROM cs.ingest_rejects
 WHERE source = 'amplitude' AND reason LIKE 'unknown customer%';

-- everything again: counts stay as they are
SELECT * FROM counts();
SELECT * FROM cs.ingest_text('stripe_invoices', pg_read_file(:'stripe_json'));
SELECT * FROM cs.ingest_text('zendesk_tickets', pg_read_file(:'zendesk'));
SELECT * FROM cs.ingest_events('mixpanel', pg_read_file(:'mixpanel'));
SELECT * FROM cs.ingest_events('amplitude', pg_read_file(:'amplitude'));
SELECT * FROM counts();

-- one JSON record per line also works for record sources; a broken line is rejected
SELECT * FROM cs.ingest_text('zendesk_tickets', E'{"id": 1, "created_at": "2024-11-01T00:00:00Z", "status": "open", "organization_id": 509975}\n{"id": 2,');
SELECT reason FROM cs.ingest_rejects WHERE payload = to_jsonb('{"id": 2,'::text);

-- activity per source (the basis of freshness and volume checks)
SELECT source, sum(accepted) AS accepted, sum(rejected) AS rejected FROM cs.source_activity GROUP BY source ORDER BY source;

-- errors
SELECT * FROM cs.ingest('no_such_source', '{}');
SELECT * FROM cs.ingest_events('stripe_invoices', '{}');
SELECT * FROM cs.parse_events('segment', '{}');
UPDATE cs.data_sources SET enabled = false WHERE name = 'mixpanel';
SELECT * FROM cs.ingest('mixpanel', '{}');
SELECT cs.normalise_name('ACME, Inc.'), cs.normalise_name('Acme Corp'), cs.domain_of('https://www.Globex.io/about'), cs.domain_of('Ann@Initech.COM');
