-- Billing loaders: Stripe subscriptions and customers, Chargebee customers,
-- subscriptions and invoices (src/sql/82_billing.sql).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
\set VERBOSITY terse
SET timezone = 'UTC';

\getenv abs_srcdir PG_ABS_SRCDIR
\set stripe_subs :abs_srcdir '/test/data/integrations/stripe_subscriptions.json'
\set stripe_events :abs_srcdir '/test/data/integrations/stripe_subscription_events.ndjson'
\set stripe_deleted :abs_srcdir '/test/data/integrations/stripe_subscription_deleted_event.json'
\set stripe_customers :abs_srcdir '/test/data/integrations/stripe_customers.json'
\set cb_customers :abs_srcdir '/test/data/integrations/chargebee_customers.json'
\set cb_subs :abs_srcdir '/test/data/integrations/chargebee_subscriptions.json'
\set cb_event :abs_srcdir '/test/data/integrations/chargebee_subscription_changed_event.json'
\set cb_invoices :abs_srcdir '/test/data/integrations/chargebee_invoices.json'

INSERT INTO cs.customers (external_id, name, domain) VALUES
    ('5001', 'Acme', 'acme.com'), ('5002', 'Globex', 'globex.io'), ('5003', 'Initech', 'initech.com');

CREATE FUNCTION subs(src text) RETURNS TABLE (customer varchar, source_id text, product text, seats int, mrr numeric,
                                                started_at date, ended_at date)
LANGUAGE sql AS $$
    SELECT c.external_id, s.source_id, s.product, s.seats, s.mrr, s.started_at, s.ended_at
      FROM cs.subscriptions s JOIN cs.customers c ON c.id = s.customer_id
     WHERE s.source = src ORDER BY 1, 2, 3, 6;
$$;
CREATE FUNCTION terms(src text) RETURNS TABLE (customer varchar, term_start date, term_end date, mrr numeric, seats int, source_id text)
LANGUAGE sql AS $$
    SELECT c.external_id, t.term_start, t.term_end, t.mrr, t.seats, t.source_id
      FROM cs.contract_terms t JOIN cs.customers c ON c.id = t.customer_id
     WHERE t.source = src ORDER BY 1, 2;
$$;
-- MRR of a customer on a day: its subscriptions in force that day
CREATE FUNCTION mrr_on(ext text, d date) RETURNS numeric
LANGUAGE sql AS $$
    SELECT coalesce(sum(s.mrr), 0) FROM cs.subscriptions s JOIN cs.customers c ON c.id = s.customer_id
     WHERE c.external_id = ext AND s.started_at <= d AND (s.ended_at IS NULL OR s.ended_at > d);
$$;

SELECT name, format, system, options FROM cs.data_sources WHERE system IN ('stripe', 'chargebee') ORDER BY name;

------------------------------------------------------------------------------
-- Stripe customers: keys by metadata external_id, email domain; unknown rejected
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('stripe_customers', pg_read_file(:'stripe_customers'));
SELECT * FROM cs.ingest_text('stripe_customers', pg_read_file(:'stripe_customers'));
SELECT k.key, c.external_id FROM cs.customer_keys k JOIN cs.customers c ON c.id = k.customer_id
 WHERE k.source = 'stripe' ORDER BY 1;
SELECT reason, times_seen FROM cs.ingest_rejects WHERE source = 'stripe_customers';

------------------------------------------------------------------------------
-- Stripe subscriptions: the API list (two items, a trial, an unknown customer, a bad quantity)
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('stripe_subscriptions', pg_read_file(:'stripe_subs'));
SELECT * FROM subs('stripe_subscriptions');
SELECT * FROM terms('stripe_subscriptions');
SELECT source_id, status, current_period_start, current_period_end, ends_on FROM cs.billing_subscriptions ORDER BY 1;
SELECT reason, times_seen FROM cs.ingest_rejects WHERE source = 'stripe_subscriptions' ORDER BY 1;
-- again: nothing changes, not even the state's time
CREATE TEMP TABLE before AS SELECT * FROM cs.billing_subscriptions;
SELECT * FROM cs.ingest_text('stripe_subscriptions', pg_read_file(:'stripe_subs'));
SELECT count(*) AS states_changed FROM (TABLE cs.billing_subscriptions EXCEPT TABLE before) x;
SELECT count(*) AS rows FROM cs.subscriptions;
-- the unknown customer's subscription loads once its customer exists, and leaves the rejects
INSERT INTO cs.customers (external_id, name) VALUES ('5004', 'Umbrella');
SELECT * FROM cs.ingest_text('stripe_subscriptions', pg_read_file(:'stripe_subs'));
SELECT * FROM subs('stripe_subscriptions') WHERE customer = '5004';
SELECT reason FROM cs.ingest_rejects WHERE source = 'stripe_subscriptions' ORDER BY 1;

------------------------------------------------------------------------------
-- A Stripe subscription updated three times: MRR history, point in time.
-- created 2024-01-10: 10 x 50.00/month              = 500.00
-- updated 2024-02-20: quantity 15                   = 750.00
-- updated 2024-03-15: price 540.00/year, 15 seats   = 15 x 540 / 12 = 675.00
-- updated 2024-04-01: cancel at period end (2025-03-15): 675.00 until then, 0 after
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('stripe_subscriptions', pg_read_file(:'stripe_events'));
SELECT * FROM subs('stripe_subscriptions') WHERE customer = '5003';
SELECT * FROM terms('stripe_subscriptions') WHERE customer = '5003';
SELECT d, mrr_on('5003', d) AS mrr,
       CASE WHEN d < '2024-01-10' THEN 0 WHEN d < '2024-02-20' THEN 500 WHEN d < '2024-03-15' THEN 750
            WHEN d < '2025-03-15' THEN 675 ELSE 0 END AS by_hand,
       (cs.features((SELECT id FROM cs.customers WHERE external_id = '5003'), d + interval '12 hours'))[27] AS feature_mrr
  FROM unnest('{2024-01-09, 2024-01-10, 2024-02-19, 2024-02-20, 2024-03-14, 2024-03-15, 2024-04-02, 2025-03-14, 2025-03-15}'::date[]) d
 ORDER BY d;
-- the same events again, and late (the created event after the updates): nothing changes
SELECT * FROM cs.ingest_text('stripe_subscriptions', pg_read_file(:'stripe_events'));
SELECT * FROM cs.ingest('stripe_subscriptions', (SELECT l::jsonb FROM regexp_split_to_table(pg_read_file(:'stripe_events'), E'\n') WITH ORDINALITY x(l, n) WHERE n = 1));
SELECT count(*) AS initech_rows FROM cs.subscriptions s JOIN cs.customers c ON c.id = s.customer_id WHERE c.external_id = '5003';
-- the deletion at the period end: the last subscription in force ended, a churn on that day
SELECT churned_at FROM cs.customers WHERE external_id = '5003';
SELECT * FROM cs.ingest('stripe_subscriptions', pg_read_file(:'stripe_deleted')::jsonb);
SELECT * FROM cs.ingest('stripe_subscriptions', pg_read_file(:'stripe_deleted')::jsonb);
SELECT * FROM subs('stripe_subscriptions') WHERE customer = '5003';
SELECT external_id, churned_at FROM cs.customers ORDER BY 1;
-- an event of another kind, bad values: rejected with the reason
SELECT * FROM cs.ingest('stripe_subscriptions', '{"object": "event", "type": "invoice.paid", "created": 1730000000, "data": {"object": {"object": "invoice"}}}');
SELECT * FROM cs.ingest('stripe_subscriptions', '{"object": "subscription", "id": "sub_X1", "customer": "cus_PAcme", "status": "zombie"}');
SELECT * FROM cs.ingest('stripe_subscriptions', '{"object": "subscription", "id": "sub_X2", "customer": "cus_PAcme", "status": "active",
    "start_date": 1730000000, "items": {"data": [{"quantity": 1, "price": {"id": "price_X", "product": "prod_X", "currency": "usd",
    "unit_amount": 1000, "recurring": {"interval": "fortnight", "interval_count": 1}}}]}}');
SELECT * FROM cs.ingest('stripe_subscriptions', '{"object": "subscription", "id": "sub_X3", "customer": "cus_PAcme", "status": "active",
    "start_date": 1730000000, "items": {"data": [{"quantity": 1, "price": {"id": "price_T", "product": "prod_T", "currency": "usd",
    "billing_scheme": "tiered", "unit_amount": null, "recurring": {"interval": "month", "interval_count": 1}}}]}}');
SELECT reason FROM cs.ingest_rejects WHERE source = 'stripe_subscriptions' ORDER BY 1;

------------------------------------------------------------------------------
-- Chargebee customers: the id as external_id, the email domain, meta_data
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('chargebee_customers', pg_read_file(:'cb_customers'));
SELECT * FROM cs.ingest_text('chargebee_customers', pg_read_file(:'cb_customers'));
SELECT k.key, c.external_id FROM cs.customer_keys k JOIN cs.customers c ON c.id = k.customer_id
 WHERE k.source = 'chargebee' ORDER BY 1;
SELECT reason FROM cs.ingest_rejects WHERE source LIKE 'chargebee%' ORDER BY 1;

------------------------------------------------------------------------------
-- Chargebee subscriptions: the list (items with an annual addon and a one-time
-- charge, a catalog 1.0 plan that does not renew, a trial, a bad status)
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('chargebee_subscriptions', pg_read_file(:'cb_subs'));
SELECT * FROM cs.ingest_text('chargebee_subscriptions', pg_read_file(:'cb_subs'));
SELECT * FROM subs('chargebee_subscriptions');
SELECT * FROM terms('chargebee_subscriptions');
SELECT reason, times_seen FROM cs.ingest_rejects WHERE source = 'chargebee_subscriptions' ORDER BY 1;
-- the subscription_changed event: 12 -> 20 seats of growth on 2024-11-20
SELECT * FROM cs.ingest('chargebee_subscriptions', pg_read_file(:'cb_event')::jsonb);
SELECT * FROM cs.ingest('chargebee_subscriptions', pg_read_file(:'cb_event')::jsonb);
-- the list, older than the event, changes nothing
SELECT * FROM cs.ingest_text('chargebee_subscriptions', pg_read_file(:'cb_subs'));
SELECT * FROM subs('chargebee_subscriptions') WHERE customer = '5002';
SELECT mrr_on('5002', '2024-11-19') AS before_change, mrr_on('5002', '2024-11-20') AS after_change;
-- Umbrella's European company (meta_data external_id 5005) arrives: its rejected
-- customer and trial subscription load on the next pull
INSERT INTO cs.customers (external_id, name) VALUES ('5005', 'Umbrella EU');
SELECT * FROM cs.ingest_text('chargebee_customers', pg_read_file(:'cb_customers'));
SELECT * FROM cs.ingest_text('chargebee_subscriptions', pg_read_file(:'cb_subs'));
SELECT * FROM subs('chargebee_subscriptions') WHERE customer = '5005';
SELECT source, reason FROM cs.ingest_rejects WHERE source LIKE 'chargebee%' ORDER BY 1, 2;

------------------------------------------------------------------------------
-- Chargebee invoices: statuses and dunning mapped, a status we do not know rejected
------------------------------------------------------------------------------
SELECT * FROM cs.ingest_text('chargebee_invoices', pg_read_file(:'cb_invoices'));
SELECT * FROM cs.ingest_text('chargebee_invoices', pg_read_file(:'cb_invoices'));
SELECT c.external_id AS customer, i.external_id, i.amount, i.issued_at, i.due_date, i.paid_at, i.status, i.source
  FROM cs.invoices i JOIN cs.customers c ON c.id = i.customer_id ORDER BY i.external_id;
-- an invoice event: dunning recovered the payment
SELECT * FROM cs.ingest('chargebee_invoices', jsonb_build_object('id', 'ev_AzZTQ1Ue3Mt0002', 'event_type', 'payment_succeeded',
    'occurred_at', 1718000000, 'object', 'event', 'content', jsonb_build_object('invoice',
    (pg_read_file(:'cb_invoices')::jsonb -> 'list' -> 1 -> 'invoice')
      || '{"status": "paid", "dunning_status": "success", "paid_at": 1718000000, "amount_due": 0}')));
SELECT external_id, status, paid_at FROM cs.invoices WHERE external_id = 'chargebee:1042';
SELECT reason FROM cs.ingest_rejects WHERE source = 'chargebee_invoices';

-- an unknown Chargebee customer's invoice is a reject too
SELECT * FROM cs.ingest('chargebee_invoices', '{"invoice": {"id": "2001", "customer_id": "AzyNobody", "status": "paid", "total": 100, "date": 1730000000}}');
SELECT reason FROM cs.ingest_rejects WHERE payload -> 'invoice' ->> 'id' = '2001';

-- activity per source
SELECT source, sum(accepted) AS accepted, sum(rejected) AS rejected FROM cs.source_activity GROUP BY source ORDER BY source;
