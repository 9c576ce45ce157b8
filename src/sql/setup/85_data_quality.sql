-- Install-once, after every function, view and trigger exists: the rows
-- CREATE EXTENSION ships for data quality.  Changing them for databases already
-- installed needs a migration in src/sql/updates/<released>--<next>.sql too.

INSERT INTO cs.data_quality_settings (name, value, description) VALUES
    ('admin_role', 'cs_admin', 'Role data alerts are assigned to (cs.alerts.assigned_to).'),
    ('max_share_without_usage', '0.2', 'Largest acceptable share of active customers without a usage event in the last 30 days.'),
    ('max_share_without_invoices', '0.2', 'Largest acceptable share of active customers without any invoice.'),
    ('max_share_without_contract_dates', '0.1', 'Largest acceptable share of active customers missing a contract start or end date.'),
    ('volume_ratio', '3', 'Rows of the last 24 hours more than this many times (or less than 1/this of) the trailing median day is a volume problem.'),
    ('volume_history_days', '14', 'Days of history the volume median is taken over.'),
    ('volume_min_days', '7', 'Days with data needed before the volume check judges a source.'),
    ('future_tolerance_hours', '24', 'How far in the future a signal''s time may be before it counts as out of range.'),
    ('stale_confidence_penalty', '0.5', 'How much risk confidence is lost when every monitored source is stale (see cs.data_freshness_factor).');
