-- Install-once: tables of risk, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.risk_assessments (
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    customer_id      uuid NOT NULL,
    risk_type        varchar(50) NOT NULL CHECK (risk_type IN ('churn', 'downgrade', 'payment')),
    risk_score       numeric(3,2) CHECK (risk_score BETWEEN 0 AND 1),
    risk_factors     jsonb,
    confidence_score numeric(3,2) CHECK (confidence_score BETWEEN 0 AND 1),
    model_version    varchar(50),
    created_at       timestamptz NOT NULL DEFAULT now(),
    model_applicable boolean NOT NULL DEFAULT true
) PARTITION BY RANGE (created_at);
-- keys with the customer and the partition column (src/sql/schema/61_history.sql)
ALTER TABLE cs.risk_assessments
    ADD CONSTRAINT risk_assessments_pkey PRIMARY KEY (customer_id, id, created_at),
    ADD CONSTRAINT risk_assessments_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES cs.customers (id);
CREATE TABLE cs.risk_assessments_default PARTITION OF cs.risk_assessments DEFAULT;
CREATE INDEX risk_assessments_customer_time_idx ON cs.risk_assessments (customer_id, risk_type, created_at DESC);
COMMENT ON TABLE cs.risk_assessments IS 'Risk predictions history with their explanations.  Range-partitioned by month on created_at (a default partition takes any date); cs.apply_retention drops months older than cscopilot.history_retention, keeping every customer''s latest assessment of each risk type.';
COMMENT ON COLUMN cs.risk_assessments.risk_type IS 'churn, downgrade or payment.';
COMMENT ON COLUMN cs.risk_assessments.risk_score IS 'Predicted probability 0-1.';
COMMENT ON COLUMN cs.risk_assessments.risk_factors IS 'Top contributions: feature, value, contribution (SHAP, log-odds).';
COMMENT ON COLUMN cs.risk_assessments.confidence_score IS 'Confidence 0-1 in the prediction.';
COMMENT ON COLUMN cs.risk_assessments.model_version IS 'Model name and version that produced the score.';
COMMENT ON COLUMN cs.risk_assessments.model_applicable IS 'False when the model that produced the score does not apply to this data (cs.model_applicability): the score raises no risk alerts.';
