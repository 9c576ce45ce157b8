-- Install-once: tables of lifecycle, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.model_shadow_scores (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id   uuid NOT NULL REFERENCES cs.customers (id),
    risk_type     varchar(50) NOT NULL CHECK (risk_type IN ('churn', 'downgrade', 'payment')),
    model_version varchar(50) NOT NULL,
    risk_score    numeric(3,2) NOT NULL CHECK (risk_score BETWEEN 0 AND 1),
    created_at    timestamptz NOT NULL
);
CREATE INDEX model_shadow_scores_model_time_idx ON cs.model_shadow_scores (model_version, created_at);
COMMENT ON TABLE cs.model_shadow_scores IS 'Scores of the model not served while a challenger runs (the challenger in shadow, or the champion for customers of the A/B share): kept to judge both on the same outcomes, never shown in cs.risk_assessments or the views.';
COMMENT ON COLUMN cs.model_shadow_scores.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.model_shadow_scores.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.model_shadow_scores.risk_type IS 'churn, downgrade or payment.';
COMMENT ON COLUMN cs.model_shadow_scores.model_version IS 'Model name and version (name:vN) that produced the score.';
COMMENT ON COLUMN cs.model_shadow_scores.risk_score IS 'Predicted probability 0-1, rounded like cs.risk_assessments.risk_score.';
COMMENT ON COLUMN cs.model_shadow_scores.created_at IS 'Point in time of the feature vector scored (same as the served assessment).';
