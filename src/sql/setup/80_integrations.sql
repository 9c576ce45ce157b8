-- Install-once, after every function, view and trigger exists: the rows
-- CREATE EXTENSION ships for integrations.  Changing them for databases already
-- installed needs a migration in src/sql/updates/<released>--<next>.sql too.

INSERT INTO cs.data_sources (name, format, system, options, description) VALUES
    ('stripe_invoices', 'stripe_invoice', 'stripe', '{"metadata_key": "external_id"}',
     'Stripe invoice objects as the API and webhooks return them (single object, event envelope or list).'),
    ('stripe_invoices_csv', 'stripe_invoice_csv', 'stripe', '{"metadata_key": "external_id"}',
     'Stripe Dashboard invoice export (CSV).'),
    ('zendesk_tickets', 'zendesk_ticket', 'zendesk', '{}',
     'Zendesk ticket objects as the API returns them (single, {"ticket": ...} or {"tickets": [...]}).'),
    ('hubspot_companies', 'hubspot_company', 'hubspot', '{}', 'HubSpot companies export (CSV).'),
    ('hubspot_contacts', 'hubspot_contact', 'hubspot', '{}', 'HubSpot contacts export (CSV).'),
    ('mixpanel', 'mixpanel', 'mixpanel', '{"customer_property": "company_id", "feature_property": "feature"}',
     'Mixpanel raw event export (NDJSON).'),
    ('amplitude', 'amplitude', 'amplitude', '{"customer_property": "company_id", "feature_property": "feature"}',
     'Amplitude event export (NDJSON).');
