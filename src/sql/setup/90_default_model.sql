-- The shipped churn model (models/churn_default.json, trained on generated demo
-- data by `make model`; models/README.md gives its training set and metrics) is
-- the champion from the start, so scores include churn risk without a step.
-- Replace it with cs.train_model on your own history and cs.deploy_model.
DO $$
DECLARE
    f  text := (SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/cscopilot/models/churn_default';
    model_id int;
BEGIN
    IF (pg_stat_file(f || '.json', true)).size IS NULL THEN
        -- Only while `make model` builds the file for the first time.
        RAISE WARNING 'the shipped churn model %.json is not installed', f
            USING HINT = 'Churn risk needs a deployed churn model: cs.train_model, then cs.deploy_model.';
        RETURN;
    END IF;
    model_id := cs.load_model_file('churn_default', 'churn', 'churn_default.json');
    -- training and held-out metrics written by `make model` beside the model
    IF (pg_stat_file(f || '.metrics', true)).size IS NOT NULL THEN
        UPDATE cs.models m
           SET metrics = pg_read_file(f || '.metrics')::jsonb,
               -- the calibration `make model` fitted on the forward validation rows
               calibration = nullif(pg_read_file(f || '.metrics')::jsonb -> 'calibration_map', 'null'),
               training_data = 'Generated demo data (cs.generate_demo_data), monthly observation dates, 90-day churn horizon; see models/README.md.'
         WHERE m.id = model_id;
    END IF;
    PERFORM cs.deploy_model('churn_default', (SELECT m.version FROM cs.models m WHERE m.id = model_id));
    -- Its training rows are not shipped: the drift reference is the current
    -- feature vectors when there are any, else none (cs.feature_drift says
    -- 'no reference' until cs.set_model_reference sets one).
    IF EXISTS (SELECT 1 FROM cs.customer_features) THEN
        PERFORM cs.set_model_reference('churn_default', (SELECT m.version FROM cs.models m WHERE m.id = model_id));
    END IF;
END;
$$;
