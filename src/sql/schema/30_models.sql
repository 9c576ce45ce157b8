-- Install-once: tables of models, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.models (
    id          int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    version     int NOT NULL CHECK (version >= 1),
    kind        text NOT NULL CHECK (kind IN ('churn', 'downgrade', 'payment', 'upsell', 'expansion', 'survival', 'custom')),
    objective   text NOT NULL,
    feature_names text[] NOT NULL,
    model       bytea NOT NULL,
    metrics     jsonb NOT NULL DEFAULT '{}',
    training_data text,
    status      text NOT NULL DEFAULT 'candidate' CHECK (status IN ('candidate', 'challenger', 'champion', 'retired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    reference   jsonb,
    encoding    jsonb,
    applicability jsonb,
    calibration jsonb,
    CONSTRAINT models_name_version_key UNIQUE (name, version)
);
-- One champion per kind (custom models are addressed by name, one champion per name);
-- kind expansion has two roles, the classifier and the amount regressor (reg:
-- objectives), with a champion each.
CREATE UNIQUE INDEX models_one_champion_per_kind ON cs.models (kind, (kind = 'expansion' AND objective LIKE 'reg:%'))
    WHERE status = 'champion' AND kind <> 'custom';
CREATE UNIQUE INDEX models_one_champion_per_custom_name ON cs.models (name) WHERE status = 'champion' AND kind = 'custom';
-- One challenger per kind (custom models: per name), judged against the champion.
CREATE UNIQUE INDEX models_one_challenger_per_kind ON cs.models (kind, (kind = 'expansion' AND objective LIKE 'reg:%'))
    WHERE status = 'challenger' AND kind <> 'custom';
CREATE UNIQUE INDEX models_one_challenger_per_custom_name ON cs.models (name) WHERE status = 'challenger' AND kind = 'custom';
COMMENT ON TABLE cs.models IS 'Model registry: XGBoost models (JSON or UBJ bytes) with their features, metrics and status.';
COMMENT ON COLUMN cs.models.kind IS 'churn, downgrade, payment, upsell, expansion, survival (time to churn, objective survival:aft) or custom. Kind expansion has two roles, each with its own champion: the classifier (probability of an MRR increase of at least cscopilot.expansion_share within the horizon) and, with a reg: objective, the amount model (the MRR increase).';
COMMENT ON COLUMN cs.models.objective IS 'XGBoost objective, for example binary:logistic.';
COMMENT ON COLUMN cs.models.feature_names IS 'Input feature names in order; for scoring kinds the first names of cs.feature_catalog (all of them, or a prefix for a model registered before the catalog grew).';
COMMENT ON COLUMN cs.models.model IS 'The model as XGBoost JSON or UBJ bytes.';
COMMENT ON COLUMN cs.models.metrics IS 'Training and validation metrics.';
COMMENT ON COLUMN cs.models.training_data IS 'Description of the training data.';
COMMENT ON COLUMN cs.models.calibration IS 'Map from the raw predicted probability to a calibrated one, fitted on the validation rows at training: {"method": "isotonic", "x": [...], "y": [...]} (knots, linear between them) or {"method": "platt", "a", "b"}; NULL scores raw probabilities. cs.calibrate applies it.';
COMMENT ON COLUMN cs.models.status IS 'candidate, challenger (scored in shadow or on an A/B share, judged against the champion), champion (scores its kind) or retired.';
COMMENT ON COLUMN cs.models.reference IS 'Reference distribution of the inputs the model learnt from (missing rate, decile edges and bin shares per feature), for cs.feature_drift; NULL when unknown.';
COMMENT ON COLUMN cs.models.encoding IS 'For a custom model trained on named columns (src/encode.c): its input columns in order, each with name, type, kind (numeric, boolean or category), for a category its encoding (onehot or ordinal), vocabulary and other_values (folded into other), and the inputs it gives; cs.predict_row applies it to a record.  NULL for a model over a features array.';
COMMENT ON COLUMN cs.models.applicability IS 'Last applicability check (cs.model_applicability): verdict, unusable_gain_share, missing_or_constant; NULL until checked. A risk champion whose verdict is not applicable raises no risk alerts.';
