-- Model registry, scoring and explanations (src/model.c, src/explain.c, src/train.c).

------------------------------------------------------------------------------
-- Registry
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.load_model(name text, kind text, model bytea, feature_names text[] DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'cs_load_model'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cs.load_model(text, text, bytea, text[]) IS
    'Registers XGBoost model bytes (JSON or UBJ) as the next version of name, status candidate, after checking them (objective, feature count, feature names against cs.feature_catalog for scoring kinds, agreement of the native evaluator with libxgboost); feature_names default to the names stored in the model. Returns the new cs.models id.';

CREATE OR REPLACE FUNCTION cs.load_model_file(name text, kind text, filename text, feature_names text[] DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'cs_load_model_file'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cs.load_model_file(text, text, text, text[]) IS
    'Registers a model shipped with the extension (a file name in SHAREDIR/cscopilot/models, no directories); feature_names default to the names stored in the model. Returns the new cs.models id.';

CREATE OR REPLACE FUNCTION cs.deploy_model(name text, version int, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m        cs.models;
    suspects text[];
BEGIN
    IF name IS NULL OR version IS NULL THEN
        RAISE EXCEPTION 'model name and version must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO m FROM cs.models AS x WHERE x.name = deploy_model.name AND x.version = deploy_model.version
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    -- The leakage audit of cs.train_model: a feature that alone nearly
    -- predicts the label is most likely a leak.
    suspects := ARRAY(SELECT l ->> 'feature' FROM jsonb_array_elements(
                          CASE WHEN jsonb_typeof(m.metrics -> 'leakage') = 'array' THEN m.metrics -> 'leakage' ELSE '[]' END) l
                       WHERE (l ->> 'suspect')::boolean ORDER BY (l ->> 'auc_alone')::float8 DESC, l ->> 'feature');
    IF cardinality(suspects) > 0 THEN
        IF NOT coalesce(force, false) THEN
            RAISE EXCEPTION 'model "%" version % has features that alone nearly predict the label: %', name, version,
                            array_to_string(suspects, ', ')
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = format('Their AUC alone on the training rows is at least %s (cscopilot.leakage_auc): most likely they carry the outcome (a leak), see metrics -> ''leakage''.',
                                      coalesce(m.metrics ->> 'leakage_auc', cs.setting('cscopilot.leakage_auc'))),
                      HINT = 'Check that their values were known at as_of, retrain without them, or deploy anyway with cs.deploy_model(name, version, force => true).';
        END IF;
        UPDATE cs.models x
           SET metrics = x.metrics || jsonb_build_object('forced_deployments',
                             coalesce(x.metrics -> 'forced_deployments', '[]')
                             || jsonb_build_array(jsonb_build_object('at', now(), 'by', current_user, 'suspects', to_jsonb(suspects))))
         WHERE x.id = m.id;
    END IF;
    -- One champion per kind; custom models have one champion per name, and
    -- kind expansion one per role (classifier; amount model, reg: objective).
    UPDATE cs.models AS x SET status = 'retired'
     WHERE x.status = 'champion' AND x.id <> m.id
       AND ((m.kind <> 'custom' AND x.kind = m.kind
             AND (m.kind <> 'expansion' OR (x.objective LIKE 'reg:%') = (m.objective LIKE 'reg:%')))
            OR (m.kind = 'custom' AND x.kind = 'custom' AND x.name = m.name));
    -- applicability is checked again at the next scoring (cs._score_risk)
    UPDATE cs.models AS x SET status = 'champion', applicability = NULL WHERE x.id = m.id;
END;
$$;
COMMENT ON FUNCTION cs.deploy_model(text, int, boolean) IS
    'Makes a model version the champion: it then scores its kind (custom models: its name; kind expansion: its role, the classifier or the amount model with a reg: objective). The previous champion becomes retired. Refuses (object_not_in_prerequisite_state) a model whose leakage audit found suspect features unless force is true; a forced deployment is recorded in its metrics (forced_deployments).';

-- Every backend drops what it resolved from cs.models when the table changes.
CREATE OR REPLACE FUNCTION cs.models_invalidate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'cs_models_invalidate'
LANGUAGE C;
COMMENT ON FUNCTION cs.models_invalidate() IS
    'Statement trigger on cs.models: signals every backend to resolve model names again, so changes apply without reconnecting.';

CREATE OR REPLACE TRIGGER models_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cs.models
    FOR EACH STATEMENT EXECUTE FUNCTION cs.models_invalidate();

------------------------------------------------------------------------------
-- Scoring
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.predict(model text, features float4[])
RETURNS float8
AS 'MODULE_PATHNAME', 'cs_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.predict(text, float4[]) IS
    'Prediction of the model called model (its champion version, else its latest version) for one feature vector, in the order of its feature_names; NaN means missing. Probability for logistic objectives, margin for binary:logitraw, value for reg:squarederror.';

CREATE OR REPLACE FUNCTION cs.model_margin(model text, features float4[])
RETURNS float8
AS 'MODULE_PATHNAME', 'cs_model_margin'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.model_margin(text, float4[]) IS
    'Raw margin (base score plus the sum of the trees, before the logistic link) of the model called model for one feature vector.';

------------------------------------------------------------------------------
-- Explanations
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.explain(model text, features float4[], top_k int DEFAULT 5)
RETURNS TABLE (feature text, value float4, contribution float8)
AS 'MODULE_PATHNAME', 'cs_explain'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 5;
COMMENT ON FUNCTION cs.explain(text, float4[], int) IS
    'The top_k features behind a prediction: exact SHAP contributions in margin space, largest absolute contribution first (ties by name). All contributions plus the bias add up to cs.model_margin.';

CREATE OR REPLACE FUNCTION cs.explain_json(model text, features float4[], top_k int DEFAULT 5)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cs_explain_json'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.explain_json(text, float4[], int) IS
    'Like cs.explain, as jsonb: {"factors": [{"feature", "value", "contribution"}...], "bias", "margin", "prediction", "model", "version"}; a missing (NaN) value is null.';

------------------------------------------------------------------------------
-- Training
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.train_model(name text, kind text, training_query text, params jsonb DEFAULT '{}')
RETURNS int
AS 'MODULE_PATHNAME', 'cs_train_model'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION cs.train_model(text, text, text, jsonb) IS
    'Trains an XGBoost model on the rows of training_query (columns features float4[], label boolean or numeric, optional group_key for a split that keeps whole customers out) with early stopping on the validation split, and registers it as the next version of name (status candidate) with validation AUC, log loss, Brier score, feature importance, the leakage audit and params in metrics. With an as_of column (timestamptz or date) the split is forward: validation on the latest dates, training on rows whose label horizon (params horizon, default cscopilot.outcome_horizon) ends by the first of them; else hashed by group_key. params monotone_constraints maps feature names to -1, 0 or 1. Returns the cs.models id.';
