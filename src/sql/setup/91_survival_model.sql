-- The shipped survival model (models/survival_default.json, trained on
-- generated demo data by `make model` after the churn model; models/README.md
-- gives its training set and concordance) is the survival champion from the
-- start, so cs.time_to_churn and the renewal forecast work without a step.
DO $$
DECLARE
    f  text := (SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/cscopilot/models/survival_default';
    model_id int;
BEGIN
    IF (pg_stat_file(f || '.json', true)).size IS NULL THEN
        -- Only while `make model` builds the file for the first time.
        RAISE WARNING 'the shipped survival model %.json is not installed', f
            USING HINT = 'Time to churn needs a deployed survival model: cs.train_model with objective survival:aft, then cs.deploy_model.';
        RETURN;
    END IF;
    model_id := cs.load_model_file('survival_default', 'survival', 'survival_default.json');
    IF (pg_stat_file(f || '.metrics', true)).size IS NOT NULL THEN
        UPDATE cs.models m
           SET metrics = pg_read_file(f || '.metrics')::jsonb,
               training_data = 'Generated demo data (cs.generate_demo_data), monthly observation dates, cs.build_survival_set (365 days at most); see models/README.md.'
         WHERE m.id = model_id;
    END IF;
    PERFORM cs.deploy_model('survival_default', (SELECT m.version FROM cs.models m WHERE m.id = model_id));
    IF EXISTS (SELECT 1 FROM cs.customer_features) THEN
        PERFORM cs.set_model_reference('survival_default', (SELECT m.version FROM cs.models m WHERE m.id = model_id));
    END IF;
END;
$$;
