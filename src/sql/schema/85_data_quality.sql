-- Install-once: tables of data quality, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.data_quality_settings (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    description text NOT NULL
);
COMMENT ON TABLE cs.data_quality_settings IS 'Thresholds of the data-quality checks and who their alerts go to; admins edit the values.';
COMMENT ON COLUMN cs.data_quality_settings.name IS 'Setting name.';
COMMENT ON COLUMN cs.data_quality_settings.value IS 'Setting value (a number, except admin_role).';
COMMENT ON COLUMN cs.data_quality_settings.description IS 'What the setting controls.';

------------------------------------------------------------------------------
-- Merging duplicate customers
------------------------------------------------------------------------------

CREATE TABLE cs.customer_merges (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kept_id           uuid NOT NULL,
    merged_id         uuid NOT NULL,
    merged_external_id text NOT NULL,
    merged_name       text NOT NULL,
    rows_moved        jsonb NOT NULL,
    merged_by         text NOT NULL DEFAULT current_user,
    merged_at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cs.customer_merges IS 'Audit of cs.merge_customers: which customer was merged into which, by whom, and how many rows moved per table.';
COMMENT ON COLUMN cs.customer_merges.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.customer_merges.kept_id IS 'The customer that remains.';
COMMENT ON COLUMN cs.customer_merges.merged_id IS 'The customer that was merged and deleted.';
COMMENT ON COLUMN cs.customer_merges.merged_external_id IS 'External id of the merged customer (it now maps to the kept one through cs.customer_keys).';
COMMENT ON COLUMN cs.customer_merges.merged_name IS 'Name of the merged customer.';
COMMENT ON COLUMN cs.customer_merges.rows_moved IS 'Rows moved (signals, alerts, actions, keys) or dropped (derived scores) per table.';
COMMENT ON COLUMN cs.customer_merges.merged_by IS 'Role that merged.';
COMMENT ON COLUMN cs.customer_merges.merged_at IS 'When.';
