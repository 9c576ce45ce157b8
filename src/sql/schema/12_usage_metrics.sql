-- Usage metrics: definitions as data, computed by the usage scan of
-- cs.compute_features and appended, in name order, to the 36 features of
-- cs.feature_catalog (src/sql/12_usage_metrics.sql, src/metrics.c).
CREATE TABLE cs.usage_metrics (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    events      text[],
    features    text[],
    window_days int NOT NULL CHECK (window_days BETWEEN 1 AND 365),
    aggregate   text NOT NULL CHECK (aggregate IN ('count', 'distinct_users', 'active_days', 'sum_quantity')),
    per         text CHECK (per IN ('user', 'active_day')),
    ratio_of    text REFERENCES cs.usage_metrics (name),
    change      boolean NOT NULL DEFAULT false,
    enabled     boolean NOT NULL DEFAULT true,
    description text,
    created_by  text NOT NULL DEFAULT current_user,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cs.usage_metrics IS
    'Usage metric definitions: each enabled metric is a feature computed from cs.usage_events as of a point in time, appended after the cs.feature_catalog features in name order (cs.feature_names()).';
COMMENT ON COLUMN cs.usage_metrics.name IS 'Feature name (lower case, digits, underscores); not a cs.feature_catalog name.';
COMMENT ON COLUMN cs.usage_metrics.events IS 'Event names counted (cs.usage_events.event); NULL for every event.';
COMMENT ON COLUMN cs.usage_metrics.features IS 'Product features counted (cs.usage_events.feature); NULL for every event, whatever its feature.';
COMMENT ON COLUMN cs.usage_metrics.window_days IS 'Window: whole days counted back from as_of, 1 to 365.';
COMMENT ON COLUMN cs.usage_metrics.aggregate IS 'count (events), distinct_users, active_days (days with a matching event) or sum_quantity.';
COMMENT ON COLUMN cs.usage_metrics.per IS 'NULL, user (divided by the distinct users of the matching events in the window) or active_day (by their active days); 0 when there are none.';
COMMENT ON COLUMN cs.usage_metrics.ratio_of IS 'Another metric''s name: this metric divided by that one''s value in the same window (before its change); NaN when that is 0.';
COMMENT ON COLUMN cs.usage_metrics.change IS 'Relative change against the previous window of the same length: now / before - 1; 1 from nothing to something, 0 from nothing to nothing.';
COMMENT ON COLUMN cs.usage_metrics.enabled IS 'Whether the metric is computed and part of the feature vector.';
COMMENT ON COLUMN cs.usage_metrics.description IS 'What the metric measures.';
COMMENT ON COLUMN cs.usage_metrics.created_by IS 'Role that defined it.';
COMMENT ON COLUMN cs.usage_metrics.created_at IS 'When it was defined.';

-- The layouts of stored feature vectors: the feature names of each vector
-- of cs.customer_features, so that a reader maps names to positions for the
-- layout a vector was written with, whatever the metrics are now.
CREATE TABLE cs.feature_layouts (
    layout_id      int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    names          text[] NOT NULL UNIQUE,
    full_refresh_at timestamptz
);
COMMENT ON TABLE cs.feature_layouts IS
    'Feature-vector layouts of cs.customer_features (its column layout): the names of the vector''s elements in order.';
COMMENT ON COLUMN cs.feature_layouts.layout_id IS 'Layout id, as cs.customer_features.layout.';
COMMENT ON COLUMN cs.feature_layouts.names IS 'Feature names of the vector, in order (cs.feature_names() when it was written).';
COMMENT ON COLUMN cs.feature_layouts.full_refresh_at IS 'When a full refresh last stored every vector with this layout; the latest one is the layout of the store.';
