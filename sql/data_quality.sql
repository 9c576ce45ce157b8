SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
\set VERBOSITY terse
SET timezone = 'UTC';

CREATE FUNCTION problems() RETURNS TABLE (check_name text, subject text, detail text)
LANGUAGE sql AS $$
    SELECT q.check_name, q.subject, q.detail FROM cs.data_quality q WHERE NOT q.ok ORDER BY 1, 2;
$$;
CREATE FUNCTION data_alerts() RETURNS TABLE (chk text, subject text, severity text, status text, assigned_to text,
                                              has_customer boolean, fire_count int)
LANGUAGE sql AS $$
    SELECT a.risk_factors ->> 'check', a.risk_factors ->> 'subject', a.severity::text, a.status::text,
           a.assigned_to::text, a.customer_id IS NOT NULL, a.fire_count
      FROM cs.all_alerts a WHERE a.alert_type = 'data' ORDER BY 1, 2, a.created_at;
$$;

CREATE OR REPLACE FUNCTION pg_temp.event_log_faults(kind text) RETURNS TABLE (alerts bigint, status_not_last_event bigint, broken_chain bigint)
LANGUAGE sql AS $$
    -- the event log is true when the alert's status is the to_status of its
    -- last event, and every event after the creation starts from the status
    -- the one before it left
    SELECT count(*),
           count(*) FILTER (WHERE a.status IS DISTINCT FROM (SELECT e.to_status FROM cs.system_alert_events e
                                                              WHERE e.alert_id = a.id ORDER BY e.id DESC LIMIT 1)),
           coalesce(sum((SELECT count(*) FROM (SELECT e.event, e.from_status, lag(e.to_status) OVER (ORDER BY e.id) AS prev
                                                  FROM cs.system_alert_events e WHERE e.alert_id = a.id) x
                          WHERE x.event <> 'created' AND x.from_status IS DISTINCT FROM x.prev)), 0)
      FROM cs.system_alerts a WHERE a.alert_type = kind;
$$;

-- Clean data: three complete customers, fresh monitored sources with a steady volume
INSERT INTO cs.customers (id, external_id, name, domain, contract_start_date, contract_end_date, mrr) VALUES
    ('00000000-0000-0000-0000-000000000001', 'acme', 'Acme Corporation', 'acme.com', '2024-01-01', '2026-12-31', 1000),
    ('00000000-0000-0000-0000-000000000002', 'globex', 'Globex', 'globex.io', '2024-01-01', '2026-12-31', 2000),
    ('00000000-0000-0000-0000-000000000003', 'initech', 'Initech', 'initech.com', '2024-01-01', '2026-12-31', 500);
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at, source, source_id)
SELECT c.id, 'u1', 'login', now() - interval '1 day', 'mixpanel', 'ev-' || c.external_id FROM cs.customers c;
INSERT INTO cs.invoices (customer_id, external_id, amount, issued_at, due_date, status)
SELECT c.id, 'in-' || c.external_id, 100, current_date - 10, current_date + 20, 'open' FROM cs.customers c;
UPDATE cs.data_sources SET expected_every = '1 day' WHERE name IN ('mixpanel', 'stripe_invoices');
-- 14 days of about 100 rows a day per source, and 100 in the last 24 hours
INSERT INTO cs.source_activity (source, hour, accepted, rejected, last_at)
SELECT s, date_trunc('hour', now()) - make_interval(days => d, hours => 1), 100 + d % 3, 0,
       date_trunc('hour', now()) - make_interval(days => d, hours => 1)
  FROM unnest(ARRAY['mixpanel', 'stripe_invoices']) s, generate_series(0, 14) d;
SELECT check_name, subject,
       CASE WHEN check_name <> 'freshness' THEN round(value::numeric, 2) END AS value,  -- freshness: hours, depends on the clock
       round(threshold::numeric, 2) AS threshold, ok
  FROM cs.data_quality ORDER BY 1, 2;
SELECT * FROM problems();
SELECT cs.check_data_quality() AS problems_found;
SELECT * FROM data_alerts();
SELECT cs.data_freshness_factor();

------------------------------------------------------------------------------
-- Freshness: a source silent for longer than expected
------------------------------------------------------------------------------
UPDATE cs.source_activity SET last_at = hour WHERE source = 'stripe_invoices';
DELETE FROM cs.source_activity WHERE source = 'stripe_invoices' AND hour > now() - interval '2 days';
SELECT source, expected_every, age > interval '1 day' AS older_than_expected, stale FROM cs.source_freshness ORDER BY 1;
SELECT check_name, subject FROM problems() WHERE check_name = 'freshness';
-- a source expected but never heard of
UPDATE cs.data_sources SET expected_every = '6 hours' WHERE name = 'zendesk_tickets';
SELECT check_name, subject, detail FROM problems() WHERE check_name = 'freshness' AND subject = 'zendesk_tickets';
UPDATE cs.data_sources SET expected_every = NULL WHERE name = 'zendesk_tickets';

-- stale sources lower risk confidence: 1 - 0.5 * stale / monitored
SELECT cs.data_freshness_factor();
SELECT round(cs.risk_confidence('{1,2,3,4}', 0.9)::numeric, 3) AS fresh,
       round(cs.risk_confidence('{1,2,3,4}', 0.9, cs.data_freshness_factor())::numeric, 3) AS one_of_two_stale;
-- scores computed now carry it (the shipped churn model scores the customers)
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-000000000001'::uuid]) > 0 AS refreshed;
SELECT abs(confidence_score - round((0.75 * cs.risk_confidence(f.features, r.risk_score::float8))::numeric, 2)) <= 0.01
       AS three_quarters_of_fresh
  FROM cs.risk_assessments r JOIN cs.customer_features f USING (customer_id)
 WHERE r.customer_id = '00000000-0000-0000-0000-000000000001' AND r.risk_type = 'churn';

------------------------------------------------------------------------------
-- Completeness: customers without usage, invoices or contract dates
------------------------------------------------------------------------------
INSERT INTO cs.customers (id, external_id, name) VALUES
    ('00000000-0000-0000-0000-000000000004', 'hooli', 'Hooli');
SELECT check_name, subject, detail FROM problems() WHERE check_name = 'completeness';

------------------------------------------------------------------------------
-- Duplicates: one source id at two times, one contact twice
------------------------------------------------------------------------------
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at, source, source_id)
VALUES ('00000000-0000-0000-0000-000000000001', 'u1', 'login', now() - interval '2 days', 'mixpanel', 'ev-acme');
INSERT INTO cs.contacts (customer_id, name, email) VALUES
    ('00000000-0000-0000-0000-000000000002', 'Hank Scorpio', 'hank@globex.io'),
    ('00000000-0000-0000-0000-000000000002', 'H. Scorpio', 'Hank@Globex.io');
SELECT check_name, subject, detail FROM problems() WHERE check_name = 'duplicates';

------------------------------------------------------------------------------
-- Out of range: a usage event dated next week (the CHECK constraints cannot know)
------------------------------------------------------------------------------
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
VALUES ('00000000-0000-0000-0000-000000000003', 'u1', 'login', now() + interval '7 days');
SELECT check_name, subject, detail FROM problems() WHERE check_name = 'out_of_range';
-- loaders reject such rows before they reach the tables
SELECT * FROM cs.ingest('mixpanel', jsonb_build_object('event', 'login', 'properties',
    jsonb_build_object('time', extract(epoch FROM now() + interval '7 days')::bigint, '$insert_id', 'future-1', 'company_id', 'acme')));
SELECT check_name, subject FROM problems() WHERE check_name = 'rejects';

------------------------------------------------------------------------------
-- Volume: ten times the usual rows in the last 24 hours
------------------------------------------------------------------------------
UPDATE cs.source_activity SET accepted = 1000 WHERE source = 'mixpanel' AND hour > now() - interval '24 hours';
SELECT check_name, subject, round(value::numeric) AS last_day, round(threshold::numeric) AS median
  FROM cs.data_quality WHERE check_name = 'volume' AND NOT ok;

------------------------------------------------------------------------------
-- Near-duplicate customers and the merge
------------------------------------------------------------------------------
INSERT INTO cs.customers (id, external_id, name, domain, industry) VALUES
    ('00000000-0000-0000-0000-000000000005', 'acme-old', 'ACME, Inc.', NULL, 'Software');
INSERT INTO cs.support_tickets (customer_id, external_id, opened_at) VALUES
    ('00000000-0000-0000-0000-000000000005', 'T-1', now() - interval '3 days');
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
VALUES ('00000000-0000-0000-0000-000000000005', 'u9', 'login', now() - interval '3 days');
INSERT INTO cs.customer_keys (source, key_kind, key, customer_id)
VALUES ('zendesk', 'organization', '42', '00000000-0000-0000-0000-000000000005');
SELECT check_name, subject, detail FROM problems() WHERE check_name = 'near_duplicate_customers';

-- every problem raises one data alert for the admin role, without a customer
SELECT cs.check_data_quality() AS problems_found;
SELECT * FROM data_alerts();
-- they are alerts without a customer: in cs.system_alerts, none in cs.alerts
-- (whose customer_id is NOT NULL), with one created event each in their own log
SELECT (SELECT count(*) FROM cs.system_alerts WHERE alert_type = 'data') AS system_alerts,
       (SELECT count(*) FROM cs.alerts) AS customer_alerts,
       (SELECT count(*) FROM cs.system_alert_events WHERE event = 'created') AS created_events,
       (SELECT count(*) FROM cs.alert_events) AS customer_events;
-- the lists of duplicates raise one alert per check, with examples
SELECT title, description FROM cs.system_alerts WHERE risk_factors ->> 'check' = 'duplicates';
-- checking again raises nothing new
SELECT cs.check_data_quality() AS problems_found;
SELECT count(*) AS data_alerts, max(fire_count) AS max_fire_count FROM cs.system_alerts WHERE alert_type = 'data';

-- Data alerts take the path of every alert (src/sql/60_alerts.sql): an
-- acknowledge and a snooze stay through re-firing, and an alert less severe
-- than its problem is now escalates, as a rule alert does.
SELECT status, customer_id, acknowledge_alert.alert_type FROM cs.acknowledge_alert((SELECT id FROM cs.system_alerts WHERE risk_factors ->> 'check' = 'freshness'));
SELECT status FROM cs.snooze_alert((SELECT id FROM cs.system_alerts WHERE risk_factors ->> 'check' = 'rejects'), now() + interval '7 days');
UPDATE cs.system_alerts SET severity = 'low' WHERE risk_factors ->> 'check' = 'volume' AND risk_factors ->> 'subject' = 'mixpanel';
SELECT cs.check_data_quality() AS problems_found;
SELECT chk, subject, severity, status, fire_count FROM data_alerts() WHERE chk IN ('freshness', 'rejects', 'volume');
SELECT e.event, e.from_status, e.to_status, e.details FROM cs.system_alert_events e JOIN cs.system_alerts a ON a.id = e.alert_id
 WHERE a.risk_factors ->> 'check' = 'volume' AND a.risk_factors ->> 'subject' = 'mixpanel' ORDER BY e.id;
SELECT * FROM pg_temp.event_log_faults('data');

SELECT cs.merge_customers('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000005');
SELECT kept_id, merged_id, merged_external_id, merged_name, rows_moved ->> 'support_tickets' AS tickets,
       rows_moved ->> 'usage_events' AS events, merged_by = current_user AS by_me
  FROM cs.customer_merges;
SELECT external_id, name, industry FROM cs.customers WHERE id = '00000000-0000-0000-0000-000000000001';
SELECT count(*) AS acme_tickets FROM cs.support_tickets WHERE customer_id = '00000000-0000-0000-0000-000000000001';
-- the merged customer's keys and external id now resolve to the kept one
SELECT cs.resolve_customer('zendesk', 'organization', '42') = '00000000-0000-0000-0000-000000000001' AS org_moved,
       cs.resolve_customer('stripe', 'external_id', 'acme-old') = '00000000-0000-0000-0000-000000000001' AS old_id_maps;
SELECT cs.merge_customers('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001');
SELECT cs.merge_customers('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000005');

------------------------------------------------------------------------------
-- Fixing the problems resolves their alerts
------------------------------------------------------------------------------
UPDATE cs.source_activity SET accepted = 100 WHERE source = 'mixpanel' AND hour > now() - interval '24 hours';
SELECT cs._note_activity('stripe_invoices', 100, 0);
DELETE FROM cs.usage_events WHERE occurred_at > now() + interval '1 day'
    OR (source_id = 'ev-acme' AND occurred_at < now() - interval '36 hours');
DELETE FROM cs.contacts WHERE name = 'H. Scorpio';
DELETE FROM cs.ingest_rejects;
UPDATE cs.customers SET contract_start_date = '2024-01-01', contract_end_date = '2026-12-31' WHERE external_id = 'hooli';
INSERT INTO cs.invoices (customer_id, external_id, amount, issued_at, due_date, status)
VALUES ('00000000-0000-0000-0000-000000000004', 'in-hooli', 100, current_date - 10, current_date + 20, 'open');
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
VALUES ('00000000-0000-0000-0000-000000000004', 'u1', 'login', now() - interval '1 day');
SELECT * FROM problems();
SELECT cs.check_data_quality() AS problems_found;
SELECT chk, subject, status FROM data_alerts();
SELECT event, count(*) FROM cs.system_alert_events e JOIN cs.system_alerts a ON a.id = e.alert_id
 WHERE a.alert_type = 'data' GROUP BY event ORDER BY event;
-- the acknowledged and the snoozed alert resolve from the status they had,
-- and the snooze is over
SELECT a.risk_factors ->> 'check' AS chk, e.from_status, e.to_status, a.status, a.snoozed_until IS NULL AS no_snooze,
       a.resolved_at IS NOT NULL AS resolved_at_set
  FROM cs.system_alerts a JOIN cs.system_alert_events e ON e.alert_id = a.id AND e.event = 'auto_resolved'
 WHERE a.risk_factors ->> 'check' IN ('freshness', 'rejects') ORDER BY 1;
SELECT * FROM pg_temp.event_log_faults('data');
SELECT cs.data_freshness_factor();

------------------------------------------------------------------------------
-- The worker's hourly job
------------------------------------------------------------------------------
SELECT cs._job_due('data_quality', 0) AS due;
INSERT INTO cs.job_runs (job) VALUES ('data_quality');
SELECT cs._run_job((SELECT max(id) FROM cs.job_runs));
SELECT job, status, customers AS problems FROM cs.job_runs ORDER BY id;
SELECT cs._job_due('data_quality', 0) AS due;

-- settings
SELECT name, value FROM cs.data_quality_settings ORDER BY name;

-- A merge moves the merged customer's tasks to the kept customer (they would
-- otherwise go with the merged customer's row).
INSERT INTO cs.customers (id, external_id, name) VALUES
    ('00000000-0000-0000-0000-0000000000f1', 'merge-task-keep', 'Keep Co'),
    ('00000000-0000-0000-0000-0000000000f2', 'merge-task-drop', 'Drop Co');
INSERT INTO cs.tasks (customer_id, title, due_at, assigned_to, created_by)
VALUES ('00000000-0000-0000-0000-0000000000f2', 'Call the champion', '2026-06-01', 'csm_01', 'csm_01');
SELECT cs.merge_customers('00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000f2') ->> 'tasks' AS tasks_moved;
SELECT customer_id, title FROM cs.tasks WHERE title = 'Call the champion';

-- Account families the triggers of cs.customers guard on a single node but
-- cannot on the shards of a Citus cluster: with the triggers off (as on a
-- shard), a parent that is no customer and a two-customer cycle are findings.
SELECT check_name, subject, detail FROM cs.data_quality WHERE check_name IN ('orphan_parent', 'parent_cycle');
ALTER TABLE cs.customers DISABLE TRIGGER customers_parent_exists, DISABLE TRIGGER customers_refuse_parent_cycle;
INSERT INTO cs.customers (id, external_id, name, parent_id) VALUES
    ('00000000-0000-0000-0000-0000000000a1', 'fam-orphan', 'Orphan Co', '00000000-0000-0000-0000-0000000000a9'),
    ('00000000-0000-0000-0000-0000000000a2', 'fam-x', 'X Co', '00000000-0000-0000-0000-0000000000a3'),
    ('00000000-0000-0000-0000-0000000000a3', 'fam-y', 'Y Co', '00000000-0000-0000-0000-0000000000a2'),
    ('00000000-0000-0000-0000-0000000000a4', 'fam-z', 'Z Co', '00000000-0000-0000-0000-0000000000a2');
ALTER TABLE cs.customers ENABLE TRIGGER customers_parent_exists, ENABLE TRIGGER customers_refuse_parent_cycle;
SELECT check_name, subject, ok, severity, detail FROM cs.data_quality
 WHERE check_name IN ('orphan_parent', 'parent_cycle') ORDER BY check_name, subject;

-- A merged customer's contract terms move with it (they would otherwise keep
-- it from being deleted).
INSERT INTO cs.customers (id, external_id, name) VALUES
    ('00000000-0000-0000-0000-0000000000b1', 'merge-term-keep', 'Keep Terms'),
    ('00000000-0000-0000-0000-0000000000b2', 'merge-term-drop', 'Drop Terms');
INSERT INTO cs.contract_terms (customer_id, term_start, term_end)
VALUES ('00000000-0000-0000-0000-0000000000b2', '2025-01-01', '2026-01-01');
SELECT cs.merge_customers('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000b2') ->> 'contract_terms' AS terms_moved;
SELECT customer_id, term_start FROM cs.contract_terms
 WHERE customer_id IN ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000b2');
