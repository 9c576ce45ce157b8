-- Install-once: what each data source delivers, for schema drift detection
-- (src/sql/84_source_fields.sql).  CREATE EXTENSION runs this once; the
-- upgrade to 0.3.0 includes it; a later change needs an ALTER in
-- src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.source_fields (
    source        text NOT NULL REFERENCES cs.data_sources (name) ON DELETE CASCADE ON UPDATE CASCADE,
    field         text NOT NULL CHECK (field <> ''),
    position      int NOT NULL CHECK (position > 0),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    missing_since timestamptz,
    baseline      boolean NOT NULL,
    PRIMARY KEY (source, field)
);
COMMENT ON TABLE cs.source_fields IS
    'The fields (CSV headers, top-level JSON keys) each data source delivered: the accepted baseline and the latest batch. cs._note_fields keeps it; fields missing from the latest batch or new in it are schema drift (cs.source_drift, check schema_drift of cs.data_quality); cs.accept_source_fields makes the latest batch the baseline.';
COMMENT ON COLUMN cs.source_fields.source IS 'Source name (cs.data_sources.name).';
COMMENT ON COLUMN cs.source_fields.field IS 'CSV header or top-level JSON key, as delivered.';
COMMENT ON COLUMN cs.source_fields.position IS 'Position of the field in the batch that last delivered it (the CSV column; for JSON the key order of jsonb).';
COMMENT ON COLUMN cs.source_fields.first_seen_at IS 'Time of the load (transaction) that first delivered the field.';
COMMENT ON COLUMN cs.source_fields.last_seen_at IS 'Time of the latest load that delivered it.';
COMMENT ON COLUMN cs.source_fields.missing_since IS 'Time of the first load since last_seen_at that did not deliver it; NULL while the latest load delivers it.';
COMMENT ON COLUMN cs.source_fields.baseline IS 'Part of the accepted fields: those of the source''s first load, or accepted with cs.accept_source_fields. A field outside the baseline is new.';
