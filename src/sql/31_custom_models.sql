-- Custom models on named, typed columns (src/encode.c): cs.train_model learns
-- an encoding from a training query without a features column and stores it in
-- cs.models.encoding; these functions apply it to a record or a jsonb object.
--
-- They are not overloads of cs.predict and cs.explain: a row argument is
-- polymorphic (anyelement), and next to the float4[] forms an untyped literal,
-- as in cs.predict('m', '{1,2,3}'), would become ambiguous.

CREATE OR REPLACE FUNCTION cs.predict_row(model text, rec anyelement)
RETURNS float8
AS 'MODULE_PATHNAME', 'cs_predict_row'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.predict_row(text, anyelement) IS
    'Prediction of a custom model trained on named columns for one record: a row (SELECT cs.predict_row(''m'', t) FROM t) or a jsonb object of column names and values.  The stored encoding is applied by column name in any order; other columns are ignored; NULL and a category unseen in training are missing.  A missing column raises 42703, a column of another kind 42804, a model without an encoding 42809.';

CREATE OR REPLACE FUNCTION cs.encode_row(model text, rec anyelement)
RETURNS float4[]
AS 'MODULE_PATHNAME', 'cs_encode_row'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.encode_row(text, anyelement) IS
    'The features a custom model trained on named columns sees for one record (a row or a jsonb object), in the order of its feature_names: cs.predict(model, cs.encode_row(model, rec)) = cs.predict_row(model, rec).  NaN is missing.';

CREATE OR REPLACE FUNCTION cs.explain_row(model text, rec anyelement, top_k int DEFAULT 5)
RETURNS TABLE (feature text, value float4, contribution float8)
LANGUAGE sql STABLE STRICT PARALLEL SAFE ROWS 5
AS $$
    SELECT e.feature, e.value, e.contribution
      FROM cs.explain(model, cs.encode_row(model, rec), top_k) AS e
$$;
COMMENT ON FUNCTION cs.explain_row(text, anyelement, int) IS
    'cs.explain for a record (a row or a jsonb object) of a custom model trained on named columns: the top_k encoded inputs (col, or col=value for a one-hot category) behind its prediction, with exact SHAP contributions in margin space.';

CREATE OR REPLACE FUNCTION cs.explain_json_row(model text, rec anyelement, top_k int DEFAULT 5)
RETURNS jsonb
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT cs.explain_json(model, cs.encode_row(model, rec), top_k)
$$;
COMMENT ON FUNCTION cs.explain_json_row(text, anyelement, int) IS
    'cs.explain_json for a record (a row or a jsonb object) of a custom model trained on named columns.';

CREATE OR REPLACE FUNCTION cs._encode_row(encoding jsonb, rec anyelement)
RETURNS float4[]
AS 'MODULE_PATHNAME', 'cs__encode_row'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._encode_row(jsonb, anyelement) IS
    'Internal: a record encoded with an encoding given as jsonb (the form of cs.models.encoding); cs.train_model computes the features of a training query of named columns with it.';

CREATE OR REPLACE FUNCTION cs._xgboost_predict(model text, rows float4[])
RETURNS float8[]
AS 'MODULE_PATHNAME', 'cs__xgboost_predict'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION cs._xgboost_predict(text, float4[]) IS
    'Internal, for tests: libxgboost''s own predictions (XGBoosterPredict, the library python-xgboost wraps) of the model called model for one feature vector or a two-dimensional array of rows; NaN is missing.';
