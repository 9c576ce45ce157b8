-- Install-once: tables of lifecycle, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.model_shadow_scores (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    customer_id   uuid NOT NULL,
    risk_type     varchar(50) NOT NULL CHECK (risk_type IN ('churn', 'downgrade', 'payment')),
    model_version varchar(50) NOT NULL,
    risk_score    numeric(3,2) NOT NULL CHECK (risk_score BETWEEN 0 AND 1),
    created_at    timestamptz NOT NULL
) PARTITION BY RANGE (created_at);
-- keys with the customer and the partition column (src/sql/schema/61_history.sql)
ALTER TABLE cs.model_shadow_scores
    ADD CONSTRAINT model_shadow_scores_pkey PRIMARY KEY (customer_id, id, created_at),
    ADD CONSTRAINT model_shadow_scores_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES cs.customers (id);
CREATE TABLE cs.model_shadow_scores_default PARTITION OF cs.model_shadow_scores DEFAULT;
CREATE INDEX model_shadow_scores_model_time_idx ON cs.model_shadow_scores (model_version, created_at);
COMMENT ON TABLE cs.model_shadow_scores IS 'Scores of the model not served while a challenger runs (the challenger in shadow, or the champion for customers of the A/B share): kept to judge both on the same outcomes, never shown in cs.risk_assessments or the views.  Range-partitioned by month on created_at (a default partition takes any date); cs.apply_retention drops months older than cscopilot.history_retention, keeping the latest score of every customer, risk type and model.';
COMMENT ON COLUMN cs.model_shadow_scores.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.model_shadow_scores.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.model_shadow_scores.risk_type IS 'churn, downgrade or payment.';
COMMENT ON COLUMN cs.model_shadow_scores.model_version IS 'Model name and version (name:vN) that produced the score.';
COMMENT ON COLUMN cs.model_shadow_scores.risk_score IS 'Predicted probability 0-1, rounded like cs.risk_assessments.risk_score.';
COMMENT ON COLUMN cs.model_shadow_scores.created_at IS 'Point in time of the feature vector scored (same as the served assessment).';
