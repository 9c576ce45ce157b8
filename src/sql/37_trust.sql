-- Models a CSM can trust (src/calibrate.c, src/search.c): calibrated
-- probabilities and global explanations.  The parameter search is part of
-- cs.train_model (params "search").

-- The calibrated probability of a raw one, by the map stored with the model
-- (cs.models.calibration, fitted by cs.train_model on its validation rows).
CREATE OR REPLACE FUNCTION cs.calibrate(model text, p float8) RETURNS float8
    AS 'MODULE_PATHNAME', 'cs_calibrate' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.calibrate(text, float8) IS
    'The calibrated probability of a raw one (cs.predict) by the map stored with the model (cs.models.calibration: isotonic or Platt, fitted at training on the validation rows); p itself when the model has none; p outside [0, 1] or NaN is an error (22003). The model is resolved as by cs.predict (champion, else latest version; name:vN for one version).';

-- Calibrated probability of a feature vector: cs.calibrate(model, cs.predict(model, features)).
CREATE OR REPLACE FUNCTION cs.predict_calibrated(model text, features float4[]) RETURNS float8
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT cs.calibrate(model, cs.predict(model, features)) $$;
COMMENT ON FUNCTION cs.predict_calibrated(text, float4[]) IS
    'Calibrated probability of a feature vector: cs.calibrate(model, cs.predict(model, features)); the risk stored in cs.risk_assessments.';

-- Mean |SHAP| per input of one model version over the customers with stored
-- features: all of them, or when there are more than
-- cscopilot.global_explain_customers (0: no limit) that many, a
-- deterministic sample (smallest md5 of the customer id).  Replaces the
-- version's stored rows; returns the number of customers explained.
CREATE OR REPLACE FUNCTION cs.compute_global_explanations(name text, version int) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m      cs.models;
    lim    int := cs.setting('cscopilot.global_explain_customers')::int;
    served text;
    n      bigint;
BEGIN
    SELECT * INTO m FROM cs.models x
     WHERE x.name = compute_global_explanations.name AND x.version = compute_global_explanations.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object', HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    IF m.kind NOT IN ('churn', 'downgrade', 'payment', 'upsell') THEN
        RAISE EXCEPTION 'model "%" is a % model: global explanations are for models scoring customers', name, m.kind
            USING ERRCODE = 'wrong_object_type';
    END IF;
    served := m.name || ':v' || m.version;
    DELETE FROM cs.model_global_explanations g WHERE g.model_id = m.id;
    WITH scorable AS (
        SELECT f.customer_id, cs._pick_features(f.features, pos.positions) AS x
          FROM cs.customer_features f
          JOIN cs._model_layout_positions(served) pos ON pos.layout = coalesce(f.layout, 0)
    ), pop AS MATERIALIZED (
        SELECT s.customer_id, s.x FROM scorable s
         ORDER BY CASE WHEN lim > 0 THEN md5(s.customer_id::text) END
         LIMIT CASE WHEN lim > 0 THEN lim END
    ), sizes AS (
        SELECT (SELECT count(*) FROM pop) AS n, (SELECT count(*) FROM scorable) AS total
    )
    -- every input of every explained customer (top_k = all inputs)
    INSERT INTO cs.model_global_explanations (model_id, feature, mean_abs_shap, customers, population, computed_at)
    SELECT m.id, e.feature, sum(abs(e.contribution)) / min(z.n), min(z.n), min(z.total), now()
      FROM pop r
     CROSS JOIN LATERAL cs.explain(served, r.x, cardinality(m.feature_names)) e
     CROSS JOIN sizes z
     GROUP BY e.feature;
    SELECT coalesce(max(g.customers), 0) INTO n FROM cs.model_global_explanations g WHERE g.model_id = m.id;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.compute_global_explanations(text, int) IS
    'Computes and stores the global explanation of a model version (mean |SHAP| per input, log-odds) over the customers with stored features, all of them or a deterministic sample of cscopilot.global_explain_customers; returns the number of customers explained. A full refresh runs it for every scoring champion and challenger.';

CREATE OR REPLACE VIEW cs.global_explanations AS
SELECT m.name AS model, m.version, m.kind, g.feature, g.mean_abs_shap,
       row_number() OVER (PARTITION BY g.model_id ORDER BY g.mean_abs_shap DESC, g.feature)::int AS rank,
       g.customers, g.population, g.computed_at
  FROM cs.model_global_explanations g
  JOIN cs.models m ON m.id = g.model_id;
COMMENT ON VIEW cs.global_explanations IS 'What drives a model across the book (as BigQuery ML''s ML.GLOBAL_EXPLAIN): per model version and input, the mean absolute SHAP contribution over the scored customers at the last full refresh, ranked.';
COMMENT ON COLUMN cs.global_explanations.model IS 'Model name.';
COMMENT ON COLUMN cs.global_explanations.version IS 'Model version.';
COMMENT ON COLUMN cs.global_explanations.kind IS 'Model kind (churn, downgrade, payment, upsell).';
COMMENT ON COLUMN cs.global_explanations.feature IS 'Input feature name.';
COMMENT ON COLUMN cs.global_explanations.mean_abs_shap IS 'Mean absolute SHAP contribution in log-odds (margin) space; the larger, the more the input moves risk across customers.';
COMMENT ON COLUMN cs.global_explanations.rank IS 'Rank of the input within the model version, 1 = largest mean |SHAP| (ties by name).';
COMMENT ON COLUMN cs.global_explanations.customers IS 'Customers explained (a deterministic sample when there are more than cscopilot.global_explain_customers).';
COMMENT ON COLUMN cs.global_explanations.population IS 'Customers the model could score at the time.';
COMMENT ON COLUMN cs.global_explanations.computed_at IS 'When it was computed (the last full refresh, or cs.compute_global_explanations).';
