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
    -- The first survival model anywhere (a new kind, on install and on upgrade):
    -- champion directly, as cs.deploy_model would make it; the upgrade runs
    -- this before the re-runnable scripts define cs.deploy_model(name, version, force).
    UPDATE cs.models m SET status = 'champion' WHERE m.id = model_id;
    -- No drift reference: its training rows are not shipped, and stored vectors
    -- met on an upgrade may be of an older layout (cs.set_model_reference sets one).
END;
$$;
