-- Install-once: tables of health, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

------------------------------------------------------------------------------
-- Configuration tables (admins)
------------------------------------------------------------------------------

CREATE TABLE cs.health_profiles (
    id          int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    segment     text,
    version     int NOT NULL DEFAULT 1 CHECK (version >= 1),
    weights     jsonb NOT NULL DEFAULT '{}',
    bands       jsonb NOT NULL DEFAULT '{"red": 0.4, "yellow": 0.7}',
    normalisation jsonb NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX health_profiles_segment_key ON cs.health_profiles (coalesce(segment, ''));
COMMENT ON TABLE cs.health_profiles IS 'Health score profiles: weights, band cut-offs and normalisation; one per segment, NULL segment is the default.';
COMMENT ON COLUMN cs.health_profiles.segment IS 'Segment the profile applies to, as cs.customers.segment spells it (any text); NULL for the default profile, which applies to every segment without its own.';
COMMENT ON COLUMN cs.health_profiles.version IS 'Profile version, stamped on every health score computed with it.';
COMMENT ON COLUMN cs.health_profiles.weights IS 'Weight per measure and group (non-negative, not all zero).';
COMMENT ON COLUMN cs.health_profiles.bands IS 'Band cut-offs: scores below red are red, below yellow yellow, else green.';
COMMENT ON COLUMN cs.health_profiles.normalisation IS 'Per-measure normalisation: thresholds or percentile rank.';

CREATE TABLE cs.customer_health_scores (
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    customer_id      uuid NOT NULL,
    overall_score    numeric(3,2) CHECK (overall_score BETWEEN 0 AND 1),
    usage_score      numeric(3,2) CHECK (usage_score BETWEEN 0 AND 1),
    engagement_score numeric(3,2) CHECK (engagement_score BETWEEN 0 AND 1),
    support_score    numeric(3,2) CHECK (support_score BETWEEN 0 AND 1),
    payment_score    numeric(3,2) CHECK (payment_score BETWEEN 0 AND 1),
    calculated_at    timestamptz NOT NULL DEFAULT now(),
    version          varchar(50),
    band             text CHECK (band IN ('red', 'yellow', 'green')),
    drivers          jsonb
) PARTITION BY RANGE (calculated_at);
-- keys with the customer and the partition column (src/sql/schema/61_history.sql)
ALTER TABLE cs.customer_health_scores
    ADD CONSTRAINT customer_health_scores_pkey PRIMARY KEY (customer_id, id, calculated_at),
    ADD CONSTRAINT customer_health_scores_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES cs.customers (id);
CREATE TABLE cs.customer_health_scores_default PARTITION OF cs.customer_health_scores DEFAULT;
CREATE INDEX customer_health_scores_customer_time_idx ON cs.customer_health_scores (customer_id, calculated_at DESC);
COMMENT ON TABLE cs.customer_health_scores IS 'Health score history: every calculation appends a row.  Range-partitioned by month on calculated_at (a default partition takes any date); cs.apply_retention drops months older than cscopilot.history_retention, keeping every customer''s latest score.';
COMMENT ON COLUMN cs.customer_health_scores.overall_score IS 'Weighted overall health 0-1.';
COMMENT ON COLUMN cs.customer_health_scores.usage_score IS 'Usage sub-score 0-1.';
COMMENT ON COLUMN cs.customer_health_scores.engagement_score IS 'Engagement sub-score 0-1.';
COMMENT ON COLUMN cs.customer_health_scores.support_score IS 'Support sub-score 0-1.';
COMMENT ON COLUMN cs.customer_health_scores.payment_score IS 'Payment sub-score 0-1.';
COMMENT ON COLUMN cs.customer_health_scores.calculated_at IS 'When the score was computed.';
COMMENT ON COLUMN cs.customer_health_scores.version IS 'Health profile name and version used.';
COMMENT ON COLUMN cs.customer_health_scores.band IS 'red, yellow or green, from the profile cut-offs.';
COMMENT ON COLUMN cs.customer_health_scores.drivers IS 'Inputs that pull the score down most, and weights redistributed for missing inputs.';

------------------------------------------------------------------------------
-- Computation
------------------------------------------------------------------------------

-- Sorted values of the percentile-normalised measures per segment, as of the
-- last full refresh, so that refreshing a few customers ranks them without
-- scanning the whole feature store.
CREATE TABLE cs.health_populations (
    segment     text,
    measure     text NOT NULL,
    sorted      float8[] NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX health_populations_key ON cs.health_populations (coalesce(segment, ''), measure);
COMMENT ON TABLE cs.health_populations IS 'Per segment and percentile-normalised measure, the sorted values of the feature store at the last full refresh; percentile ranks of later partial refreshes use them.';
COMMENT ON COLUMN cs.health_populations.segment IS 'Customer segment (NULL for customers without one).';
COMMENT ON COLUMN cs.health_populations.measure IS 'Feature name.';
COMMENT ON COLUMN cs.health_populations.sorted IS 'Present (non-NaN) values, ascending.';
COMMENT ON COLUMN cs.health_populations.computed_at IS 'When the population was taken.';
