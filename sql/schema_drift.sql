SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
\set VERBOSITY terse
SET timezone = 'UTC';

\getenv abs_srcdir PG_ABS_SRCDIR
\set helpdesk :abs_srcdir '/test/data/integrations/helpdesk_tickets.csv'
\set zendesk :abs_srcdir '/test/data/integrations/zendesk_tickets.json'

-- CSV files are staged as the command-line loader does: positional text
-- columns, the header row first, every row handed to cs.ingest as
-- {header: value}, the whole file in one transaction (one batch); the header
-- is noted first, in column order (cs._note_fields).
CREATE TEMP TABLE stage (n bigint GENERATED ALWAYS AS IDENTITY, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 text);
CREATE FUNCTION pg_temp.load_stage(src text) RETURNS TABLE (inserted bigint, updated bigint, unchanged bigint, rejected bigint)
LANGUAGE sql AS $$
    SELECT cs._note_fields(src, array_remove(ARRAY[c1, c2, c3, c4, c5, c6, c7], NULL))
      FROM stage WHERE n = (SELECT min(n) FROM stage);
    WITH h AS (SELECT array_remove(ARRAY[c1, c2, c3, c4, c5, c6, c7], NULL) AS k
                 FROM stage WHERE n = (SELECT min(n) FROM stage)),
         r AS (SELECT cs.ingest(src, jsonb_object(h.k, (ARRAY[c1, c2, c3, c4, c5, c6, c7])[1:cardinality(h.k)])) AS x
                 FROM stage, h WHERE n > (SELECT min(n) FROM stage) ORDER BY n)
    SELECT sum((x).inserted), sum((x).updated), sum((x).unchanged), sum((x).rejected) FROM r;
$$;
CREATE TEMP VIEW tickets AS
SELECT c.external_id AS customer, t.external_id, t.opened_at, t.status, t.priority, t.subject
  FROM cs.support_tickets t JOIN cs.customers c ON c.id = t.customer_id;
CREATE TEMP VIEW drift AS
SELECT source, severity, value, detail FROM cs.data_quality WHERE check_name = 'schema_drift';
CREATE TEMP VIEW fields AS
SELECT source, field, position, baseline, missing_since IS NOT NULL AS missing FROM cs.source_fields;
-- the state of the source's fields, without the times
CREATE FUNCTION pg_temp.fields_digest(src text) RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(format('%s|%s|%s|%s|%s', field, position, baseline, first_seen_at, missing_since), ',' ORDER BY field))
      FROM cs.source_fields WHERE source = src;
$$;

INSERT INTO cs.customers (external_id, name) VALUES ('5001', 'Acme'), ('5002', 'Globex');

------------------------------------------------------------------------------
-- Value mapping: validated when the source is created or changed
------------------------------------------------------------------------------
-- a word our CHECK constraint does not accept (23514, naming the words)
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('helpdesk', 'csv', 'helpdesk', '{"target": "support_tickets", "customer": "Account",
      "mapping": {"external_id": "Ticket ID", "opened_at": "Opened", "status": "Status", "priority": "Priority", "subject": "Subject"},
      "values": {"status": {"Open": "open", "Pending": "waiting", "Resolved": "done"}}}');
\echo :LAST_ERROR_SQLSTATE
-- values of a column the mapping does not map (22023), of a column the table lacks (42703)
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('helpdesk', 'csv', 'helpdesk', '{"target": "support_tickets", "customer": "Account",
      "mapping": {"external_id": "Ticket ID", "opened_at": "Opened", "status": "Status"},
      "values": {"priority": {"P1": "urgent"}}}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('helpdesk', 'csv', 'helpdesk', '{"target": "support_tickets", "customer": "Account",
      "mapping": {"external_id": "Ticket ID", "opened_at": "Opened"}, "values": {"severity": {"P1": "urgent"}}}');
\echo :LAST_ERROR_SQLSTATE
-- one source word (after trimming, in any case) mapped two ways (22023)
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('helpdesk', 'csv', 'helpdesk', '{"target": "support_tickets", "customer": "Account",
      "mapping": {"external_id": "Ticket ID", "opened_at": "Opened", "status": "Status"},
      "values": {"status": {"Open": "open", "OPEN ": "new"}}}');
\echo :LAST_ERROR_SQLSTATE
-- a column without fixed words: the words must be of its type (22P02)
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('helpdesk', 'csv', 'helpdesk', '{"target": "support_tickets", "customer": "Account",
      "mapping": {"external_id": "Ticket ID", "opened_at": "Opened", "csat": "Rating"},
      "values": {"csat": {"great": "5", "awful": "terrible"}}}');
\echo :LAST_ERROR_SQLSTATE
-- the mapping itself is checked at creation now too (it was only at load)
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('helpdesk', 'csv', 'helpdesk', '{"target": "support_tickets", "customer": "Account",
      "mapping": {"external_id": "Ticket ID", "opened_at": "Opened", "urgency": "Priority"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS sources_created FROM cs.data_sources WHERE name = 'helpdesk';

-- the real one
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('helpdesk', 'csv', 'helpdesk', '{"target": "support_tickets", "customer": "Account",
      "mapping": {"external_id": "Ticket ID", "opened_at": "Opened", "status": "Status", "priority": "Priority", "subject": "Subject"},
      "values": {"status": {"Open": "open", "Pending": "pending", "Resolved": "solved", "On Hold": "on_hold"},
                 "priority": {"P1": "urgent", "P2": "high", "P3": "normal", "P4": "low"}}}');
-- an update is checked as well
UPDATE cs.data_sources SET options = jsonb_set(options, '{values,priority,P4}', '"lowest"') WHERE name = 'helpdesk';
\echo :LAST_ERROR_SQLSTATE
SELECT options -> 'values' -> 'priority' ->> 'P4' AS p4 FROM cs.data_sources WHERE name = 'helpdesk';

------------------------------------------------------------------------------
-- A file with foreign vocabulary loads; unknown words are rejects with a reason
------------------------------------------------------------------------------
COPY stage (c1, c2, c3, c4, c5, c6) FROM :'helpdesk' WITH (FORMAT csv);
SELECT * FROM pg_temp.load_stage('helpdesk');
-- "resolved " and " p2 " matched after trimming, in any case; "Urgent" is our word as is
SELECT * FROM tickets ORDER BY external_id;
SELECT reason FROM cs.ingest_rejects WHERE source = 'helpdesk' ORDER BY reason;
-- the first load is the baseline: fields in column order, no finding
SELECT * FROM fields WHERE source = 'helpdesk' ORDER BY position;
SELECT * FROM drift;

-- the same file again: nothing changes, no finding
SELECT pg_temp.fields_digest('helpdesk') AS digest_before \gset
SELECT * FROM pg_temp.load_stage('helpdesk');
SELECT pg_temp.fields_digest('helpdesk') = :'digest_before' AS fields_unchanged;
SELECT count(*) AS rejects, max(times_seen) AS times_seen FROM cs.ingest_rejects WHERE source = 'helpdesk';
SELECT * FROM drift;
SELECT cs.check_data_quality() >= 0 AS checked;
SELECT count(*) AS data_alerts FROM cs.system_alerts WHERE alert_type = 'data' AND risk_factors ->> 'check' = 'schema_drift';

-- a mapping for the unknown word lets its row load, and removes its reject
UPDATE cs.data_sources SET options = jsonb_set(options, '{values,status,Escalated}', '"open"') WHERE name = 'helpdesk';
SELECT * FROM pg_temp.load_stage('helpdesk');
SELECT external_id, status, priority FROM tickets WHERE external_id = 'HD-105';
SELECT reason FROM cs.ingest_rejects WHERE source = 'helpdesk' ORDER BY reason;

------------------------------------------------------------------------------
-- Schema drift: the export renames "Priority" to "Prio"
------------------------------------------------------------------------------
UPDATE stage SET c5 = 'Prio' WHERE c5 = 'Priority';
UPDATE stage SET c5 = 'P2' WHERE c1 = 'HD-101';
-- every row is rejected (the priority is not loaded as empty, nor as the default)
SELECT * FROM pg_temp.load_stage('helpdesk');
SELECT external_id, status, priority FROM tickets WHERE external_id = 'HD-101';
SELECT DISTINCT reason FROM cs.ingest_rejects WHERE source = 'helpdesk' AND payload ? 'Prio';
-- the finding says renamed, and names the source and both fields
SELECT * FROM drift;
SELECT source, missing, new_fields, renamed FROM cs.source_drift;
-- the data alert, through the one alert path
SELECT cs.check_data_quality() > 0 AS problems;
SELECT customer_id, severity, title, description, status, assigned_to FROM cs.all_alerts
 WHERE alert_type = 'data' AND risk_factors ->> 'check' = 'schema_drift';
-- the same renamed file again: no new finding, no second alert
SELECT * FROM pg_temp.load_stage('helpdesk');
SELECT * FROM drift;
SELECT cs.check_data_quality() > 0 AS problems;
SELECT count(*) AS data_alerts, count(*) FILTER (WHERE status = 'open') AS open
  FROM cs.system_alerts WHERE alert_type = 'data' AND risk_factors ->> 'check' = 'schema_drift';

------------------------------------------------------------------------------
-- The field comes back (and a new one appears): only the new one is reported
------------------------------------------------------------------------------
UPDATE stage SET c5 = 'Priority' WHERE c5 = 'Prio';
UPDATE stage SET c7 = CASE WHEN c1 = 'Ticket ID' THEN 'Channel' ELSE 'email' END;
SELECT * FROM pg_temp.load_stage('helpdesk');
SELECT external_id, status, priority FROM tickets WHERE external_id = 'HD-101';
SELECT * FROM drift;
SELECT cs.check_data_quality() > 0 AS problems;
SELECT severity, description, status FROM cs.system_alerts WHERE alert_type = 'data' AND risk_factors ->> 'check' = 'schema_drift';

-- accepting the change: Channel joins the baseline, Prio is forgotten
SELECT cs.accept_source_fields('helpdesk');
SELECT * FROM fields WHERE source = 'helpdesk' ORDER BY position;
SELECT * FROM drift;
SELECT cs.check_data_quality() >= 0 AS checked;
SELECT status, resolved_at IS NOT NULL AS resolved,
       (SELECT array_agg(e.event ORDER BY e.id) FROM cs.system_alert_events e WHERE e.alert_id = a.id) AS events
  FROM cs.system_alerts a WHERE alert_type = 'data' AND risk_factors ->> 'check' = 'schema_drift';
-- now a file without Channel is the drift
UPDATE stage SET c7 = NULL;
SELECT * FROM pg_temp.load_stage('helpdesk');
SELECT * FROM drift;
SELECT cs.accept_source_fields('helpdesk');
SELECT * FROM drift;
SELECT cs.accept_source_fields('no_such_source');
\echo :LAST_ERROR_SQLSTATE

------------------------------------------------------------------------------
-- A required field missing rejects the whole batch (22P04)
------------------------------------------------------------------------------
SELECT source, count(*) AS rejects FROM cs.ingest_rejects GROUP BY source ORDER BY source;
SELECT count(*) AS tickets FROM cs.support_tickets;
SELECT pg_temp.fields_digest('helpdesk') AS digest_before \gset
UPDATE stage SET c1 = 'Ticket Number' WHERE c1 = 'Ticket ID';
UPDATE stage SET c3 = '2024-12-01 09:00' WHERE c1 = 'HD-104';
\set VERBOSITY default
SELECT * FROM pg_temp.load_stage('helpdesk');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
-- nothing of the batch stayed: no row, no reject, no field
SELECT source, count(*) AS rejects FROM cs.ingest_rejects GROUP BY source ORDER BY source;
SELECT count(*) AS tickets, count(*) FILTER (WHERE opened_at >= '2024-12-01') AS changed FROM cs.support_tickets;
SELECT pg_temp.fields_digest('helpdesk') = :'digest_before' AS fields_unchanged;
-- the customer header is required too
UPDATE stage SET c1 = 'Ticket ID' WHERE c1 = 'Ticket Number';
UPDATE stage SET c2 = 'Company' WHERE c2 = 'Account';
SELECT * FROM pg_temp.load_stage('helpdesk');
\echo :LAST_ERROR_SQLSTATE
UPDATE stage SET c2 = 'Account' WHERE c2 = 'Company';
TRUNCATE stage;
-- what a csv source requires: headers of NOT NULL columns without default, the id, the customer
SELECT cs._required_fields(d) FROM cs.data_sources d WHERE name = 'helpdesk';

------------------------------------------------------------------------------
-- JSON loaders: the keys of the records (Zendesk tickets)
------------------------------------------------------------------------------
INSERT INTO cs.customer_keys (source, key_kind, key, customer_id)
SELECT 'zendesk', 'organization', v.org, c.id FROM (VALUES ('509974', '5001'), ('509975', '5002')) v(org, ext)
  JOIN cs.customers c ON c.external_id = v.ext;
SELECT * FROM cs.ingest_text('zendesk_tickets', pg_read_file(:'zendesk'));
SELECT count(*) AS fields, bool_and(baseline) AS baseline FROM cs.source_fields WHERE source = 'zendesk_tickets';
SELECT * FROM drift;
-- the API renames "type" (a field the loader does not read) in every ticket: renamed, the records load unchanged
SELECT * FROM cs.ingest('zendesk_tickets',
    (SELECT jsonb_build_object('tickets', jsonb_agg((t - 'type') || jsonb_build_object('ticket_type', t -> 'type') ORDER BY t ->> 'id'))
       FROM jsonb_array_elements(pg_read_file(:'zendesk')::jsonb -> 'tickets') t));
SELECT * FROM drift;
-- one record without an optional key in a batch that has it elsewhere: no finding for it
SELECT * FROM cs.ingest('zendesk_tickets',
    (SELECT jsonb_build_object('tickets', jsonb_agg(CASE WHEN t ->> 'id' = '35436' THEN t - 'due_at' ELSE t END ORDER BY t ->> 'id'))
       FROM jsonb_array_elements(pg_read_file(:'zendesk')::jsonb -> 'tickets') t));
SELECT * FROM drift;
-- a batch in which no ticket has organization_id fails whole
SELECT * FROM cs.ingest('zendesk_tickets',
    (SELECT jsonb_build_object('tickets', jsonb_agg(t - 'organization_id' ORDER BY t ->> 'id'))
       FROM jsonb_array_elements(pg_read_file(:'zendesk')::jsonb -> 'tickets') t));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM drift;

-- event exports: the top-level keys of each chunk
SELECT * FROM cs.ingest_events('mixpanel', '{"event": "login", "properties": {"time": 1730900000, "distinct_id": "u-1", "$insert_id": "m-1", "company_id": "5001"}}');
SELECT * FROM fields WHERE source = 'mixpanel' ORDER BY position;
SELECT * FROM cs.ingest_events('mixpanel', '{"name": "login", "props": {"time": 1730900000, "company_id": "5001"}}');
\echo :LAST_ERROR_SQLSTATE

-- dropping a source forgets its fields
DELETE FROM cs.data_sources WHERE name = 'helpdesk';
SELECT count(*) AS helpdesk_fields FROM cs.source_fields WHERE source = 'helpdesk';
