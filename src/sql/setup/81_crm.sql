-- Install-once: the Salesforce and Intercom sources CREATE EXTENSION ships
-- (loaders in src/sql/81_crm.sql).  Changing them for databases already
-- installed needs a migration in src/sql/updates/<released>--<next>.sql too.

INSERT INTO cs.data_sources (name, format, system, options, description) VALUES
    ('salesforce_accounts', 'salesforce_account', 'salesforce', '{}',
     'Salesforce Accounts: REST API query results (records) or Data Loader CSV export; customers, with ParentId as account family.'),
    ('salesforce_contacts', 'salesforce_contact', 'salesforce', '{}',
     'Salesforce Contacts: REST API query results (records) or Data Loader CSV export.'),
    ('salesforce_opportunities', 'salesforce_opportunity', 'salesforce', '{"amount_months": 12}',
     'Salesforce Opportunities: REST API query results (records) or Data Loader CSV export; stages onto opportunity statuses.'),
    ('salesforce_tasks', 'salesforce_task', 'salesforce', '{}',
     'Salesforce Tasks and Events: REST API query results (records) or Data Loader CSV export; completed activities as engagements.'),
    ('intercom_conversations', 'intercom_conversation', 'intercom', '{}',
     'Intercom conversations as the REST API and webhooks return them (object, conversation.list, notification_event).'),
    ('intercom_companies', 'intercom_company', 'intercom', '{}',
     'Intercom companies as the REST API and webhooks return them (object, list, notification_event).');
