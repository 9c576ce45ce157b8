-- Install-once: tables of demo, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

------------------------------------------------------------------------------
-- Ground truth
------------------------------------------------------------------------------

CREATE TABLE cs.demo_ground_truth (
    customer_id   uuid PRIMARY KEY REFERENCES cs.customers (id),
    archetype     text NOT NULL CHECK (archetype IN ('stable', 'growing', 'seasonal', 'recovering', 'at_risk',
                                                     'declining_churn', 'sudden_churn',
                                                     'consumer_engaged', 'consumer_casual', 'consumer_fading',
                                                     'consumer_recovered')),
    churned_at    date,
    expanded_at   date,
    expansion_mrr numeric,
    health_start  float8 NOT NULL CHECK (health_start BETWEEN 0 AND 1),
    health_end    float8 NOT NULL CHECK (health_end BETWEEN 0 AND 1)
);
COMMENT ON TABLE cs.demo_ground_truth IS 'Hidden state of the customers made by cs.generate_demo_data(): what models and alerts are judged against. Never use it as a feature.';
COMMENT ON COLUMN cs.demo_ground_truth.customer_id IS 'The demo customer (cs.customers.id).';
COMMENT ON COLUMN cs.demo_ground_truth.archetype IS 'Story the customer follows: stable, growing (outgrows its seats, expands), seasonal (noisy), recovering (dip then recovery: a false alarm), at_risk (declining, churns after the window), declining_churn (declines 30-120 days, then churns) or sudden_churn (churns with few warning signs); for the consumer profile consumer_engaged or consumer_casual (high or middling engagement, no episode), consumer_fading (in a disengagement episode at churn or at end_date) or consumer_recovered (an episode that recovered).';
COMMENT ON COLUMN cs.demo_ground_truth.churned_at IS 'Churn date inside the window, as in cs.customers.churned_at; NULL for customers still active at end_date (at_risk ones churn later).';
COMMENT ON COLUMN cs.demo_ground_truth.expanded_at IS 'Date of the expansion (more seats or a new product) recorded in cs.subscriptions, or NULL.';
COMMENT ON COLUMN cs.demo_ground_truth.expansion_mrr IS 'MRR added by the expansion, or NULL.';
COMMENT ON COLUMN cs.demo_ground_truth.health_start IS 'Latent health (0-1) on the first day of the window (consumer profile: engagement, on the sign-up day for later sign-ups).';
COMMENT ON COLUMN cs.demo_ground_truth.health_end IS 'Latent health (0-1) on end_date, or on the churn date for churners.';
