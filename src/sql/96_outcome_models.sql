-- The shipped downgrade, payment and expansion models (models/<name>.json,
-- trained by `make model` on generated demo data, each on its own outcome:
-- contrib/train-default-model.sh, models/README.md).  Each becomes the
-- champion of its kind when the kind has none (an upgrade keeps a champion of
-- the user's own and leaves the shipped model a candidate), so the refresh
-- scores downgrade and payment risk (cs.risk_assessments) and the expansion
-- model (kind expansion) raises expansion opportunities.  Re-runnable: CREATE
-- EXTENSION (through src/sql/setup/91_outcome_models.sql, once the feature
-- catalog is there) and every upgrade load a shipped model whose name is not
-- there yet.
DO $$
DECLARE
    dir text := (SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/cscopilot/models/';
    s   record;
    model_id int;
BEGIN
    -- CREATE EXTENSION runs the re-runnable files before src/sql/setup/ fills
    -- the feature catalog the models are checked against: there this block
    -- waits, and src/sql/setup/91_outcome_models.sql runs it again after.
    IF NOT EXISTS (SELECT 1 FROM cs.feature_catalog) THEN
        RETURN;
    END IF;
    FOR s IN SELECT * FROM (VALUES ('downgrade_default', 'downgrade', 'downgrade'),
                                   ('payment_default', 'payment', 'payment'),
                                   ('expansion_default', 'expansion', 'expansion')) v(name, kind, outcome)
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM cs.models m WHERE m.name = s.name);
        IF (pg_stat_file(dir || s.name || '.json', true)).size IS NULL THEN
            -- Only while `make model` builds the files for the first time.
            RAISE WARNING 'the shipped % model %.json is not installed', s.kind, dir || s.name
                USING HINT = 'Train one with cs.train_from_history(name, kind), then cs.deploy_model.';
            CONTINUE;
        END IF;
        model_id := cs.load_model_file(s.name, s.kind, s.name || '.json');
        IF (pg_stat_file(dir || s.name || '.metrics', true)).size IS NOT NULL THEN
            UPDATE cs.models m
               SET metrics = pg_read_file(dir || s.name || '.metrics')::jsonb,
                   -- the calibration `make model` fitted on the forward validation rows
                   calibration = nullif(pg_read_file(dir || s.name || '.metrics')::jsonb -> 'calibration_map', 'null'),
                   training_data = format('Generated demo data (cs.generate_demo_data), monthly observation dates, labels of cs.build_training_set(dates, ''90 days'', %L); see models/README.md.', s.outcome)
             WHERE m.id = model_id;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM cs.models m WHERE m.kind = s.kind AND m.status = 'champion') THEN
            PERFORM cs.deploy_model(s.name, (SELECT m.version FROM cs.models m WHERE m.id = model_id));
        END IF;
        -- No drift reference (cs.set_model_reference sets one): at CREATE
        -- EXTENSION there are no feature vectors, and in an upgrade the stored
        -- ones still have the old version's length until the next refresh.
    END LOOP;
END;
$$;

-- The churn model shipped with 0.2.0 (md5 below) is replaced by this
-- version's models/churn_default.json, registered as the next version of
-- churn_default with its metrics and calibration, wherever it is still the
-- champion; a champion of the user's own stays.  A champion that is already
-- this version's file (an upgrade from 0.1.0 loads the current file) gets the
-- calibration it was shipped with.  No-op at CREATE EXTENSION (no churn model
-- yet: src/sql/setup/90_default_model.sql loads it) and once done.
DO $$
DECLARE
    f        text := (SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/cscopilot/models/churn_default';
    champion cs.models;
    shipped  jsonb;
    model_id int;
BEGIN
    SELECT * INTO champion FROM cs.models m WHERE m.kind = 'churn' AND m.status = 'champion';
    IF champion.name IS DISTINCT FROM 'churn_default' OR (pg_stat_file(f || '.json', true)).size IS NULL
       OR (pg_stat_file(f || '.metrics', true)).size IS NULL THEN
        RETURN;
    END IF;
    shipped := pg_read_file(f || '.metrics')::jsonb;
    IF md5(champion.model) = 'cc4b08661cf27860b7e70691968eab23' THEN
        model_id := cs.load_model_file('churn_default', 'churn', 'churn_default.json');
        UPDATE cs.models m
           SET metrics = shipped,
               calibration = nullif(shipped -> 'calibration_map', 'null'),
               training_data = 'Generated demo data (cs.generate_demo_data), monthly observation dates, 90-day churn horizon; see models/README.md.'
         WHERE m.id = model_id;
        PERFORM cs.deploy_model('churn_default', (SELECT m.version FROM cs.models m WHERE m.id = model_id));
    ELSIF champion.calibration IS NULL AND md5(champion.model) = md5(pg_read_binary_file(f || '.json')) THEN
        UPDATE cs.models m SET calibration = nullif(shipped -> 'calibration_map', 'null'), metrics = shipped
         WHERE m.id = champion.id;
    END IF;
END;
$$;
