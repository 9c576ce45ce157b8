-- Install-once: tables of features, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

------------------------------------------------------------------------------
-- Result tables (written by the extension)
------------------------------------------------------------------------------

CREATE TABLE cs.feature_catalog (
    position    int PRIMARY KEY CHECK (position >= 1),
    name        text NOT NULL UNIQUE,
    description text NOT NULL,
    source      text NOT NULL
);
COMMENT ON TABLE cs.feature_catalog IS 'The features of cs.customer_features.features, in array order.';
COMMENT ON COLUMN cs.feature_catalog.position IS '1-based index in the feature array.';
COMMENT ON COLUMN cs.feature_catalog.name IS 'Feature name, as models name their inputs.';
COMMENT ON COLUMN cs.feature_catalog.description IS 'What the feature measures.';
COMMENT ON COLUMN cs.feature_catalog.source IS 'Signal table the feature comes from.';

CREATE TABLE cs.customer_features (
    customer_id uuid PRIMARY KEY REFERENCES cs.customers (id),
    as_of       timestamptz NOT NULL,
    features    float4[] NOT NULL,
    layout      int
);
COMMENT ON TABLE cs.customer_features IS 'Feature store: the current feature vector per customer, in cs.feature_catalog order; NaN means missing.';
COMMENT ON COLUMN cs.customer_features.as_of IS 'Point in time the vector describes.';
COMMENT ON COLUMN cs.customer_features.features IS 'Feature values in the order of its layout (cs.feature_names() when stored); NaN for missing data.';
COMMENT ON COLUMN cs.customer_features.layout IS 'The cs.feature_layouts id naming the elements of features; NULL for cs.feature_catalog order alone (no usage metrics).';
