-- Install-once: the billing sources CREATE EXTENSION ships (src/sql/82_billing.sql).
-- The same rows are added by src/sql/updates/0.2.0--0.3.0.sql.

INSERT INTO cs.data_sources (name, format, system, options, description) VALUES
    ('stripe_subscriptions', 'stripe_subscription', 'stripe', '{"metadata_key": "external_id"}',
     'Stripe subscription objects (list, single object or customer.subscription.* event) as subscription history.'),
    ('stripe_customers', 'stripe_customer', 'stripe', '{"metadata_key": "external_id"}',
     'Stripe customer objects (list, single object or customer.* event) as customer keys.'),
    ('chargebee_customers', 'chargebee_customer', 'chargebee', '{"metadata_key": "external_id"}',
     'Chargebee customers (API list, single object or event) as customer keys.'),
    ('chargebee_subscriptions', 'chargebee_subscription', 'chargebee', '{"metadata_key": "external_id"}',
     'Chargebee subscriptions (API list, single object or event) as subscription history and contract terms.'),
    ('chargebee_invoices', 'chargebee_invoice', 'chargebee', '{"metadata_key": "external_id"}',
     'Chargebee invoices (API list, single object or event) with their dunning status.');
