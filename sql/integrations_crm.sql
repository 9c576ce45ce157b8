-- Salesforce (REST API query results and Data Loader CSV) and Intercom (REST
-- API lists and webhooks) loaders: every format loads, a second load changes
-- nothing, unknown customers wait in cs.ingest_rejects until they exist, bad
-- values are rejected with the reason.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
\set VERBOSITY terse
SET timezone = 'UTC';

\getenv abs_srcdir PG_ABS_SRCDIR
\set d :abs_srcdir '/test/data/integrations/'
\set acc_json :d 'salesforce_accounts.json'
\set acc_csv :d 'salesforce_accounts.csv'
\set con_json :d 'salesforce_contacts.json'
\set con_csv :d 'salesforce_contacts.csv'
\set opp_json :d 'salesforce_opportunities.json'
\set opp_csv :d 'salesforce_opportunities.csv'
\set tsk_json :d 'salesforce_tasks.json'
\set tsk_csv :d 'salesforce_tasks.csv'
\set ic_conv :d 'intercom_conversations.json'
\set ic_closed :d 'intercom_conversation_closed_webhook.json'
\set ic_comp :d 'intercom_companies.json'
\set ic_created :d 'intercom_company_created_webhook.json'

-- CSV files are staged as the command-line loader does (see sql/integrations.sql).
CREATE TEMP TABLE crm_stage (n bigint GENERATED ALWAYS AS IDENTITY, c1 text, c2 text, c3 text, c4 text, c5 text,
                         c6 text, c7 text, c8 text, c9 text, c10 text, c11 text, c12 text, c13 text, c14 text);
CREATE FUNCTION crm_load(src text) RETURNS TABLE (inserted bigint, updated bigint, unchanged bigint, rejected bigint)
LANGUAGE sql AS $$
    WITH h AS (SELECT array_remove(ARRAY[c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14], NULL) AS k
                 FROM crm_stage WHERE n = (SELECT min(n) FROM crm_stage)),
         r AS (SELECT cs.ingest(src, jsonb_object(h.k, (ARRAY[c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14])[1:cardinality(h.k)])) AS x
                 FROM crm_stage, h WHERE n > (SELECT min(n) FROM crm_stage) ORDER BY n)
    SELECT sum((x).inserted), sum((x).updated), sum((x).unchanged), sum((x).rejected) FROM r;
$$;
CREATE FUNCTION crm_ext(id uuid) RETURNS text LANGUAGE sql AS $$ SELECT external_id FROM cs.customers WHERE id = $1 $$;

SELECT name, format, system, options FROM cs.data_sources WHERE system IN ('salesforce', 'intercom') ORDER BY name;

------------------------------------------------------------------------------
-- Salesforce ids: 15 characters get the checksum suffix, 18 are checked
------------------------------------------------------------------------------
SELECT cs.salesforce_id('001Dn00000AcmeH'), cs.salesforce_id('001Dn00000AcmeHIAR'), cs.salesforce_id('001Dn00000AcmeHiar');
-- the 15 characters are case-sensitive: another case is another id (or an invalid one)
SELECT cs.salesforce_id('001dn00000acmeh'), cs.salesforce_id('001Dn00000ACMEH');
SELECT cs.salesforce_id('001dn00000acmehIAR');
SELECT cs.salesforce_id('001Dn00000AcmeHIAA');
SELECT cs.salesforce_id('001-n00000AcmeH');

------------------------------------------------------------------------------
-- Accounts: the API's query result (a subsidiary before its parent), then the
-- Data Loader export (15-character ids of known accounts, a bad row)
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('salesforce_accounts', pg_read_file(:'acc_json'));
SELECT * FROM cs.ingest_text('salesforce_accounts', pg_read_file(:'acc_json'));   -- again: nothing changes
COPY crm_stage (c1, c2, c3, c4, c5, c6, c7, c8, c9) FROM :'acc_csv' WITH (FORMAT csv);
SELECT * FROM crm_load('salesforce_accounts');
SELECT * FROM crm_load('salesforce_accounts');
TRUNCATE crm_stage;
SELECT external_id, name, industry, size, domain, crm_ext(parent_id) AS parent FROM cs.customers ORDER BY external_id;
SELECT key_kind, key, crm_ext(customer_id) FROM cs.customer_keys WHERE source = 'salesforce' ORDER BY key;
SELECT crm_ext(customer_id), parent_key FROM cs.pending_parents;
-- account families as 65_revenue.sql rolls them up
SELECT external_id, members FROM cs.account_family_health ORDER BY 1;

------------------------------------------------------------------------------
-- Contacts
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('salesforce_contacts', pg_read_file(:'con_json'));
SELECT * FROM cs.ingest_text('salesforce_contacts', pg_read_file(:'con_json'));
COPY crm_stage (c1, c2, c3, c4, c5, c6, c7, c8, c9) FROM :'con_csv' WITH (FORMAT csv);
SELECT * FROM crm_load('salesforce_contacts');   -- Hank again, identical: unchanged
SELECT * FROM crm_load('salesforce_contacts');
TRUNCATE crm_stage;
SELECT crm_ext(customer_id), name, email, role, source_id FROM cs.contacts ORDER BY source_id;

------------------------------------------------------------------------------
-- Opportunities: stages onto statuses, amounts as MRR, close dates
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('salesforce_opportunities', pg_read_file(:'opp_json'));
SELECT * FROM cs.ingest_text('salesforce_opportunities', pg_read_file(:'opp_json'));
COPY crm_stage (c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12) FROM :'opp_csv' WITH (FORMAT csv);
SELECT * FROM crm_load('salesforce_opportunities');
SELECT * FROM crm_load('salesforce_opportunities');
TRUNCATE crm_stage;
SELECT crm_ext(customer_id), source_id, kind, status, score, expected_mrr, won_mrr, closed_at, created_at, reasons ->> 'stage' AS stage
  FROM cs.opportunities ORDER BY source_id;
-- a refresh regenerates system opportunities only: CRM rows stay
SELECT count(*) FROM cs.opportunities WHERE source = 'crm';
-- the stage moves on in Salesforce: the row is updated, once
SELECT * FROM cs.ingest('salesforce_opportunities', (pg_read_file(:'opp_json')::jsonb -> 'records' -> 0)
                        || '{"StageName": "Closed Won", "Probability": 100, "IsClosed": true, "IsWon": true, "CloseDate": "2026-11-30"}');
SELECT * FROM cs.ingest('salesforce_opportunities', (pg_read_file(:'opp_json')::jsonb -> 'records' -> 0)
                        || '{"StageName": "Closed Won", "Probability": 100, "IsClosed": true, "IsWon": true, "CloseDate": "2026-11-30"}');
SELECT status, won_mrr, closed_at FROM cs.opportunities WHERE source_id = '006Dn00000Opp01IAB';
-- a custom stage without IsClosed/IsWon, and options.stage_map for it
SELECT * FROM cs.ingest('salesforce_opportunities', '{"Id": "006Dn00000Opp04", "AccountId": "001Dn00000UmbrL", "StageName": "Verbal Commit", "Amount": "36000", "CloseDate": "2027-02-28"}');
UPDATE cs.data_sources SET options = options || '{"stage_map": {"Verbal Commit": "in_progress"}}' WHERE name = 'salesforce_opportunities';
SELECT * FROM cs.ingest('salesforce_opportunities', '{"Id": "006Dn00000Opp04", "AccountId": "001Dn00000UmbrL", "StageName": "Verbal Commit", "Amount": "36000", "CloseDate": "2027-02-28"}');
SELECT count(*) AS verbal_commit_rejects FROM cs.ingest_rejects WHERE reason LIKE '%Verbal Commit%';
-- the whole record again, as the CSV had it
SELECT * FROM cs.ingest('salesforce_opportunities', '{"Id": "006Dn00000Opp04", "AccountId": "001Dn00000UmbrL", "StageName": "Verbal Commit", "Amount": "36000", "Probability": "80", "CloseDate": "2027-02-28", "Type": "Existing Customer - Replacement", "Name": "Umbrella - EU rollout", "CreatedDate": "2026-10-01T12:00:00.000Z"}');

------------------------------------------------------------------------------
-- Tasks and Events as engagements
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('salesforce_tasks', pg_read_file(:'tsk_json'));
SELECT * FROM cs.ingest_text('salesforce_tasks', pg_read_file(:'tsk_json'));
COPY crm_stage (c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14) FROM :'tsk_csv' WITH (FORMAT csv);
SELECT * FROM crm_load('salesforce_tasks');
SELECT * FROM crm_load('salesforce_tasks');
TRUNCATE crm_stage;
SELECT crm_ext(customer_id), source_id, kind, occurred_at, notes FROM cs.engagements ORDER BY source_id;
-- the open task is completed: it becomes an engagement; a future event is none
SELECT * FROM cs.ingest('salesforce_tasks', (pg_read_file(:'tsk_json')::jsonb -> 'records' -> 2)
                        || '{"Status": "Completed", "IsClosed": true, "CompletedDateTime": "2026-11-30T11:00:00.000+0000"}');
SELECT * FROM cs.ingest('salesforce_tasks', '{"attributes": {"type": "Event"}, "Id": "00UDn00000Evt02MAB", "AccountId": "001Dn00000AcmeHIAR", "Subject": "Renewal meeting", "StartDateTime": "2099-01-15T15:00:00.000+0000"}');
SELECT source_id, kind, occurred_at FROM cs.engagements WHERE source_id IN ('00TDn00000Tsk03MAB', '00UDn00000Evt02MAB');

------------------------------------------------------------------------------
-- Intercom companies: the list, then a company.created webhook
------------------------------------------------------------------------------
UPDATE cs.data_sources SET options = '{"mapping": {"segment": "custom_attributes.segment", "contract_end_date": "custom_attributes.renewal_date"}}'
 WHERE name = 'intercom_companies';
SELECT * FROM cs.ingest_text('intercom_companies', pg_read_file(:'ic_comp'));
SELECT * FROM cs.ingest_text('intercom_companies', pg_read_file(:'ic_comp'));
SELECT * FROM cs.ingest('intercom_companies', pg_read_file(:'ic_created')::jsonb);
SELECT * FROM cs.ingest('intercom_companies', pg_read_file(:'ic_created')::jsonb);
SELECT external_id, name, industry, size, mrr, domain, segment, contract_end_date
  FROM cs.customers WHERE id IN (SELECT customer_id FROM cs.customer_keys WHERE source = 'intercom') ORDER BY external_id;
-- a mapping to a column it may not fill is a configuration error
UPDATE cs.data_sources SET options = '{"mapping": {"mrr": "custom_attributes.mrr"}}' WHERE name = 'intercom_companies';
SELECT * FROM cs.ingest('intercom_companies', pg_read_file(:'ic_created')::jsonb);

------------------------------------------------------------------------------
-- Intercom conversations: the list, then a conversation.admin.closed webhook
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('intercom_conversations', pg_read_file(:'ic_conv'));
SELECT * FROM cs.ingest_text('intercom_conversations', pg_read_file(:'ic_conv'));
SELECT * FROM cs.ingest('intercom_conversations', pg_read_file(:'ic_closed')::jsonb);
SELECT * FROM cs.ingest('intercom_conversations', pg_read_file(:'ic_closed')::jsonb);
SELECT crm_ext(customer_id), external_id, opened_at, closed_at, priority, status, csat, subject, body
  FROM cs.support_tickets ORDER BY external_id;
SELECT key_kind, key, crm_ext(customer_id) FROM cs.customer_keys WHERE source = 'intercom' ORDER BY key_kind, key;

------------------------------------------------------------------------------
-- Rejects with their reasons; the unknown customer arrives, retries load
------------------------------------------------------------------------------
SELECT source, reason, times_seen FROM cs.ingest_rejects ORDER BY source, reason;
SELECT * FROM cs.ingest('salesforce_accounts', '{"attributes": {"type": "Account"}, "Id": "001Dn00000SoylNIAR", "Name": "Soylent", "Website": "https://soylent.example", "ParentId": null}');
SELECT * FROM cs.retry_rejects('salesforce_contacts');
SELECT * FROM cs.retry_rejects('salesforce_opportunities');
SELECT * FROM cs.retry_rejects('salesforce_tasks');
SELECT * FROM cs.retry_rejects('intercom_conversations');
SELECT source, reason, times_seen FROM cs.ingest_rejects ORDER BY source, reason;
SELECT 'contact' AS what, source_id FROM cs.contacts WHERE customer_id = (SELECT id FROM cs.customers WHERE external_id = '001Dn00000SoylNIAR')
UNION ALL SELECT 'opportunity', source_id FROM cs.opportunities WHERE customer_id = (SELECT id FROM cs.customers WHERE external_id = '001Dn00000SoylNIAR')
UNION ALL SELECT 'engagement', source_id FROM cs.engagements WHERE customer_id = (SELECT id FROM cs.customers WHERE external_id = '001Dn00000SoylNIAR')
UNION ALL SELECT 'ticket', external_id FROM cs.support_tickets WHERE customer_id = (SELECT id FROM cs.customers WHERE external_id = '001Dn00000SoylNIAR')
ORDER BY 1, 2;
-- everything again: nothing changes
SELECT * FROM cs.ingest_text('salesforce_accounts', pg_read_file(:'acc_json'));
SELECT * FROM cs.ingest_text('salesforce_contacts', pg_read_file(:'con_json'));
-- the old files say what they said: task Tsk03 open (its engagement goes), conversation 147 open again
SELECT * FROM cs.ingest_text('salesforce_tasks', pg_read_file(:'tsk_json'));
SELECT * FROM cs.ingest_text('intercom_conversations', pg_read_file(:'ic_conv'));
SELECT * FROM cs.ingest_text('intercom_conversations', pg_read_file(:'ic_conv'));

-- a config error is an error, not a reject
UPDATE cs.data_sources SET options = '{"type_map": {"Demo": "presentation"}}' WHERE name = 'salesforce_tasks';
SELECT * FROM cs.ingest('salesforce_tasks', '{"Id": "00TDn00000Tsk01MAB", "AccountId": "001Dn00000AcmeHIAR", "Type": "Demo", "Status": "Completed", "ActivityDate": "2026-10-05"}');

-- a deleted contact (queryAll, Data Loader "Export All") leaves
SELECT * FROM cs.ingest('salesforce_contacts', '{"Id": "003Dn00000HankS", "IsDeleted": "true"}');
SELECT count(*) FROM cs.contacts WHERE source_id = '003Dn00000HankSIAR';

-- a parent cycle is refused (23514), as a reject
SELECT * FROM cs.ingest('salesforce_accounts', '{"Id": "001Dn00000AcmeHIAR", "Name": "Acme Holdings", "ParentId": "001Dn00000AcmeEIAR"}');
SELECT reason FROM cs.ingest_rejects WHERE source = 'salesforce_accounts' AND payload ->> 'ParentId' = '001Dn00000AcmeEIAR';

SELECT source, sum(accepted) AS accepted, sum(rejected) AS rejected FROM cs.source_activity GROUP BY source ORDER BY source;
SELECT cs._strip_html('<p>One &amp; two</p><ul><li>three&nbsp;&lt;4&gt;</li></ul>');

DROP FUNCTION crm_load(text);
DROP FUNCTION crm_ext(uuid);
