-- Canonical schema: constraints reject bad rows with a clear error, usage events
-- of any date load, deleting a customer never drops history silently.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET client_min_messages = notice;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

-- every table of the public contract exists in cs
SELECT c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'cs' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 ORDER BY 1;

-- not relocatable, in schema cs
SELECT extname, extrelocatable, extnamespace::regnamespace FROM pg_extension WHERE extname = 'cscopilot';

INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm, contract_start_date, contract_end_date)
VALUES ('00000000-0000-0000-0000-000000000001', 'acme', 'Acme', 'smb', 100, 10, 'csm_01', '2026-01-01', '2026-12-31'),
       ('00000000-0000-0000-0000-000000000002', 'globex', 'Globex', 'enterprise', 9000, 500, 'csm_02', NULL, NULL);

-- constraints on customers
INSERT INTO cs.customers (external_id, name, mrr) VALUES ('neg', 'Neg', -1);
-- (a segment is the user's own words: any text)
INSERT INTO cs.customers (external_id, name, segment) VALUES ('seg', 'Seg', 'huge') RETURNING segment;
DELETE FROM cs.customers WHERE external_id = 'seg';
INSERT INTO cs.customers (external_id, name, contract_start_date, contract_end_date) VALUES ('dt', 'Dt', '2026-02-01', '2026-01-01');
INSERT INTO cs.customers (external_id, name) VALUES ('acme', 'Acme again');
INSERT INTO cs.customers (external_id, name) VALUES ('blank', '  ');
INSERT INTO cs.customers (external_id, name, seats_licensed) VALUES ('seats', 'Seats', -5);
INSERT INTO cs.customers (external_id) VALUES ('noname');

-- constraints on signal tables
INSERT INTO cs.support_tickets (customer_id, opened_at, closed_at) VALUES ('00000000-0000-0000-0000-000000000001', '2026-03-02', '2026-03-01');
INSERT INTO cs.support_tickets (customer_id, opened_at, csat) VALUES ('00000000-0000-0000-0000-000000000001', '2026-03-02', 6);
INSERT INTO cs.support_tickets (customer_id, opened_at, priority) VALUES ('00000000-0000-0000-0000-000000000001', '2026-03-02', 'whenever');
INSERT INTO cs.support_tickets (customer_id, opened_at) VALUES ('00000000-0000-0000-0000-0000000000ff', '2026-03-02');
INSERT INTO cs.nps_responses (customer_id, score, responded_at) VALUES ('00000000-0000-0000-0000-000000000001', 11, now());
INSERT INTO cs.nps_responses (customer_id, score, responded_at) VALUES ('00000000-0000-0000-0000-000000000001', -1, now());
INSERT INTO cs.invoices (customer_id, amount, issued_at, due_date) VALUES ('00000000-0000-0000-0000-000000000001', -10, '2026-01-01', '2026-01-31');
INSERT INTO cs.invoices (customer_id, amount, issued_at, due_date) VALUES ('00000000-0000-0000-0000-000000000001', 10, '2026-01-31', '2026-01-01');
INSERT INTO cs.invoices (customer_id, amount, issued_at, due_date, status) VALUES ('00000000-0000-0000-0000-000000000001', 10, '2026-01-01', '2026-01-31', 'lost');
INSERT INTO cs.subscriptions (customer_id, product, seats, started_at) VALUES ('00000000-0000-0000-0000-000000000001', 'core', -1, '2026-01-01');
INSERT INTO cs.engagements (customer_id, kind, occurred_at) VALUES ('00000000-0000-0000-0000-000000000001', 'party', now());
INSERT INTO cs.contacts (customer_id, name, email) VALUES ('00000000-0000-0000-0000-000000000001', 'Ann', 'not an email');
INSERT INTO cs.usage_events (customer_id, event, quantity, occurred_at) VALUES ('00000000-0000-0000-0000-000000000001', 'login', -1, '2150-01-01');
INSERT INTO cs.usage_events (customer_id, event, quantity, occurred_at) VALUES ('00000000-0000-0000-0000-000000000001', 'login', 'NaN', '2150-01-01');

-- constraints on results and feedback
-- (dated before every monthly partition: the error names the default partition)
INSERT INTO cs.customer_health_scores (customer_id, overall_score, calculated_at) VALUES ('00000000-0000-0000-0000-000000000001', 1.5, '2000-01-01');
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, created_at) VALUES ('00000000-0000-0000-0000-000000000001', 'churn', -0.1, '2000-01-01');
INSERT INTO cs.alerts (customer_id, alert_type, severity, title) VALUES ('00000000-0000-0000-0000-000000000001', 'risk', 'apocalyptic', 't');
INSERT INTO cs.alerts (id, customer_id, alert_type, severity, title)
VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000001', 'risk', 'high', 'Churn risk');
INSERT INTO cs.alert_feedback (alert_id, feedback_type, rating) VALUES ('00000000-0000-0000-0000-0000000000a1', 'accuracy', 0);
INSERT INTO cs.alert_feedback (alert_id, feedback_type, rating) VALUES ('00000000-0000-0000-0000-0000000000a1', 'accuracy', 6);
INSERT INTO cs.alert_feedback (alert_id, feedback_type, rating) VALUES ('00000000-0000-0000-0000-0000000000a1', 'mood', 3);
INSERT INTO cs.alert_feedback (alert_id, feedback_type, rating) VALUES ('00000000-0000-0000-0000-0000000000a1', 'accuracy', 4);

-- partition routing: an event of any date loads, into the month's partition or the default
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT '00000000-0000-0000-0000-000000000001', 'u1', 'login', ts
  FROM unnest(ARRAY[date_trunc('month', now()) + interval '3 days',
                    date_trunc('month', now()) - interval '5 months',
                    '1999-12-31 23:59:59+00'::timestamptz,
                    '2200-01-01 00:00:00+00'::timestamptz]) AS ts;
SELECT CASE WHEN tableoid::regclass::text = 'cs.usage_events_default' THEN 'default' ELSE 'monthly' END AS part,
       count(*)
  FROM cs.usage_events GROUP BY 1 ORDER BY 1;
-- partitions ahead exist: three months from now
SELECT to_regclass(format('cs.usage_events_y%sm%s', to_char(now() + interval '3 months', 'YYYY'),
                          to_char(now() + interval '3 months', 'MM'))) IS NOT NULL AS ahead;
-- creating a partition moves the rows the default partition held for that month
SELECT cs.ensure_usage_partitions('1999-12-01', '1999-12-31');
SELECT tableoid::regclass, count(*) FROM cs.usage_events WHERE occurred_at < '2000-01-01' GROUP BY 1;
SELECT cs.ensure_usage_partitions('1999-12-01', '1999-12-31');
SELECT cs.ensure_usage_partitions('2000-02-01', '2000-01-01');
SELECT cs.ensure_usage_partitions(NULL, '2000-01-01');

-- a usage event for an unknown customer is refused, and nothing of the statement is loaded
INSERT INTO cs.usage_events (customer_id, event, occurred_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'login', now()),
       ('00000000-0000-0000-0000-0000000000ff', 'login', now());
SELECT count(*) FROM cs.usage_events;

-- the dirty queue holds exactly the customers a load touched
TRUNCATE cs.dirty_customers;
INSERT INTO cs.nps_responses (customer_id, score, responded_at) VALUES ('00000000-0000-0000-0000-000000000002', 9, now());
SELECT c.external_id FROM cs.dirty_customers d JOIN cs.customers c ON c.id = d.customer_id ORDER BY 1;

-- deleting a customer with history is refused; purge_customer removes it on purpose, audited
DELETE FROM cs.customers WHERE external_id = 'acme';
DELETE FROM cs.alert_feedback; DELETE FROM cs.alerts;
DELETE FROM cs.customers WHERE external_id = 'acme';
SELECT cs.purge_customer('00000000-0000-0000-0000-000000000001', NULL);
SELECT cs.purge_customer('00000000-0000-0000-0000-0000000000ff', 'test');
SELECT cs.purge_customer('00000000-0000-0000-0000-000000000001', 'erasure request') ->> 'usage_events' AS events_deleted;
SELECT external_id, rows_deleted ->> 'usage_events' AS events, reason FROM cs.customer_purges;
SELECT external_id FROM cs.customers ORDER BY 1;
-- a purged customer inserted again under its id: the rows kept of it (the
-- purge record) take its csm, in a statement that inserts another customer too
INSERT INTO cs.customers (id, external_id, name, csm)
VALUES ('00000000-0000-0000-0000-000000000001', 'acme-again', 'Acme', 'carol'),
       ('00000000-0000-0000-0000-0000000000f1', 'newco', 'Newco', 'dave');
SELECT external_id, csm FROM cs.customer_purges ORDER BY external_id;
DELETE FROM cs.customers WHERE external_id IN ('acme-again', 'newco');

-- updated_at is maintained
UPDATE cs.customers SET updated_at = '2000-01-01', mrr = 9100 WHERE external_id = 'globex';
SELECT updated_at > '2020-01-01' AS touched FROM cs.customers WHERE external_id = 'globex';

-- every column of the loaded tables has a comment
SELECT c.relname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'cs' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
   AND c.relname IN ('customers', 'usage_events', 'support_tickets', 'invoices', 'engagements',
                     'nps_responses', 'contacts', 'subscriptions')
   AND col_description(c.oid, a.attnum) IS NULL
 ORDER BY 1, 2;
