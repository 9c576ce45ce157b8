-- Global explanations (src/sql/37_trust.sql): mean |SHAP| per feature of each
-- model version over the scored population, kept by a full refresh.
CREATE TABLE cs.model_global_explanations (
    model_id      int NOT NULL REFERENCES cs.models (id) ON DELETE CASCADE,
    feature       text NOT NULL,
    mean_abs_shap float8 NOT NULL,
    customers     bigint NOT NULL,
    population    bigint NOT NULL,
    computed_at   timestamptz NOT NULL,
    PRIMARY KEY (model_id, feature)
);
COMMENT ON TABLE cs.model_global_explanations IS 'Mean absolute SHAP contribution (log-odds) of each input of a model version over the scored customers, as of the last full refresh (cs.compute_global_explanations); read it through cs.global_explanations.';
COMMENT ON COLUMN cs.model_global_explanations.model_id IS 'The model version (cs.models.id).';
COMMENT ON COLUMN cs.model_global_explanations.feature IS 'Input feature name.';
COMMENT ON COLUMN cs.model_global_explanations.mean_abs_shap IS 'Mean over the explained customers of the absolute SHAP contribution of the feature, in margin (log-odds) space.';
COMMENT ON COLUMN cs.model_global_explanations.customers IS 'Customers explained (all, or the deterministic sample of cscopilot.global_explain_customers).';
COMMENT ON COLUMN cs.model_global_explanations.population IS 'Customers with a stored feature vector the model could score when it was computed.';
COMMENT ON COLUMN cs.model_global_explanations.computed_at IS 'When it was computed.';
