SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- start without the shipped churn model: this test's scores must not depend on it
DELETE FROM cs.models;
\set VERBOSITY terse
SET extra_float_digits = 0;

\getenv abs_srcdir PG_ABS_SRCDIR
\set tiny :abs_srcdir '/test/data/tiny_model.json'
\set tiny_ubj :abs_srcdir '/test/data/tiny_model.ubj'
\set tiny_v2 :abs_srcdir '/test/data/tiny_model_v2.json'
\set reg :abs_srcdir '/test/data/reg_model.json'
\set logitraw :abs_srcdir '/test/data/logitraw_model.json'
\set poisson :abs_srcdir '/test/data/poisson_model.json'
\set linear :abs_srcdir '/test/data/linear_model.json'
\set multiclass :abs_srcdir '/test/data/multiclass_model.json'
\set categorical :abs_srcdir '/test/data/categorical_model.json'

CREATE TEMP TABLE probe (id int, features float4[], expected float8, expected_margin float8);
-- Expected values computed by python3-xgboost 1.7.4 (test/data/make_models.py).
INSERT INTO probe VALUES
(1, '{0.5,-0.20000000298023224,1.0,0.30000001192092896,-1.0,0.0}'::float4[], 0.922420144, 2.47569275),
(2, '{NaN,NaN,NaN,NaN,NaN,NaN}'::float4[], 0.520935953, 0.0837927237),
(3, '{-2.0,1.5,NaN,-0.699999988079071,0.20000000298023224,1.100000023841858}'::float4[], 0.0224145297, -3.77537632),
(4, '{1.2000000476837158,NaN,0.4000000059604645,2.0,NaN,-0.5}'::float4[], 0.97049731, 3.49332857),
(5, '{0.0,0.0,0.0,0.0,0.0,0.0}'::float4[], 0.596740842, 0.39190349),
(6, '{3.0,-3.0,3.0,3.0,-3.0,3.0}'::float4[], 0.957066536, 3.10422206),
(7, '{-3.0,3.0,-3.0,-3.0,3.0,-3.0}'::float4[], 0.082096152, -2.4142015),
(8, '{0.10000000149011612,0.8999999761581421,-0.4000000059604645,NaN,1.7000000476837158,-1.2000000476837158}'::float4[], 0.0731410235, -2.53941202),
(9, '{NaN,-1.100000023841858,0.800000011920929,-0.8999999761581421,NaN,0.6000000238418579}'::float4[], 0.826605976, 1.56176138),
(10, '{-0.6000000238418579,0.25,1.899999976158142,0.05000000074505806,-0.30000001192092896,NaN}'::float4[], 0.106770627, -2.12416053),
(11, '{0.6884716749191284,0.34613746404647827,0.0,0.0,0.0,0.0}'::float4[], 0.808008552, 1.43712175);

------------------------------------------------------------------------------
-- Registry
------------------------------------------------------------------------------

SELECT cs.load_model('tiny', 'custom', pg_read_binary_file(:'tiny'),
                     '{logins,tickets,nps,seats_used,late_invoices,tenure}') AS tiny_id;
SELECT name, version, kind, objective, feature_names, status, length(model) > 1000 AS has_bytes
  FROM cs.models ORDER BY id;

-- Predictions agree with libxgboost (python) to 1e-6, NaN follows default_left.
SELECT id, round(cs.predict('tiny', features)::numeric, 6) AS prediction,
       abs(cs.predict('tiny', features) - expected) < 1e-6 AS ok,
       abs(cs.model_margin('tiny', features) - expected_margin) < 1e-5 AS margin_ok
  FROM probe ORDER BY id;

-- The UBJ copy loads as version 2 of the same name and predicts the same.
SELECT cs.load_model('tiny', 'custom', pg_read_binary_file(:'tiny_ubj'),
                     '{logins,tickets,nps,seats_used,late_invoices,tenure}') AS ubj_id;
SELECT version, objective, status FROM cs.models WHERE name = 'tiny' ORDER BY version;
SELECT count(*) AS rows, bool_and(abs(cs.predict('tiny', features) - expected) < 1e-6) AS ubj_ok FROM probe;

-- Other objectives: identity link for squared error and logitraw.
SELECT cs.load_model('reg', 'custom', pg_read_binary_file(:'reg'), '{a,b,c,d,e,f}') > 0 AS reg_loaded;
SELECT cs.load_model('raw', 'custom', pg_read_binary_file(:'logitraw'), '{a,b,c,d,e,f}') > 0 AS raw_loaded;
SELECT id, round(cs.predict('reg', features)::numeric, 5) AS reg,
       round(cs.predict('raw', features)::numeric, 5) AS raw
  FROM probe WHERE id <= 3 ORDER BY id;
SELECT objective FROM cs.models WHERE name IN ('reg', 'raw') ORDER BY name;

-- Shipped model file, feature names taken from the model.
SELECT cs.load_model_file('shipped', 'custom', 'example_custom.json') > 0 AS shipped_loaded;
SELECT feature_names, training_data FROM cs.models WHERE name = 'shipped';
SELECT bool_and(abs(cs.predict('shipped', features) - expected) < 1e-6) AS shipped_ok FROM probe;
SELECT cs.load_model_file('x', 'custom', '../cscopilot.control');
SELECT cs.load_model_file('x', 'custom', 'sub/model.json');
SELECT cs.load_model_file('x', 'custom', 'no_such_model.json');

-- Scoring kinds need the feature catalog's names in position order.  The
-- shipped catalog has 30 features; this test swaps in a 6-feature catalog.
SELECT cs.load_model('churn1', 'churn', pg_read_binary_file(:'tiny'), '{a,b,c,d,e,f}');
DELETE FROM cs.feature_catalog;
SELECT cs.load_model('churn1', 'churn', pg_read_binary_file(:'tiny'), '{a,b,c,d,e,f}');
INSERT INTO cs.feature_catalog VALUES
    (1, 'logins', 'Logins', 'usage_events'), (2, 'tickets', 'Tickets', 'support_tickets'),
    (3, 'nps', 'NPS', 'nps_responses'), (4, 'seats_used', 'Seats used', 'usage_events'),
    (5, 'late_invoices', 'Late invoices', 'invoices'), (6, 'tenure', 'Tenure', 'customers');
SELECT cs.load_model('churn1', 'churn', pg_read_binary_file(:'tiny'), '{a,b,c,d,e,f}');
SELECT cs.load_model('churn1', 'churn', pg_read_binary_file(:'tiny'),
                     '{tickets,logins,nps,seats_used,late_invoices,tenure}');
SELECT cs.load_model('churn1', 'churn', pg_read_binary_file(:'tiny'),
                     '{logins,tickets,nps,seats_used,late_invoices,tenure}') > 0 AS churn_loaded;
SELECT cs.load_model('churn2', 'churn', pg_read_binary_file(:'tiny_v2'),
                     '{logins,tickets,nps,seats_used,late_invoices,tenure}') > 0 AS churn2_loaded;

-- Deploying: one champion per kind, the previous one retired.
SELECT cs.deploy_model('churn1', 1);
SELECT name, version, status FROM cs.models WHERE kind = 'churn' ORDER BY name;
SELECT cs.deploy_model('churn2', 1);
SELECT name, version, status FROM cs.models WHERE kind = 'churn' ORDER BY name;
SELECT cs.deploy_model('churn2', 7);
SELECT cs.deploy_model('nobody', 1);

-- The catalog grows at its end: a scoring model registered with the catalog's
-- first names keeps scoring current, longer vectors by their prefix; a custom
-- model takes exactly its own length, and a scoring model's names must still
-- be a prefix.
INSERT INTO cs.feature_catalog VALUES (7, 'sentiment', 'Sentiment', 'support_tickets');
SELECT cs.load_model('churn3', 'churn', pg_read_binary_file(:'tiny'),
                     '{logins,tickets,nps,seats_used,late_invoices,tenure}') > 0 AS prefix_loaded;
SELECT bool_and(cs.predict('churn3', features || '{-0.5}'::float4[]) = cs.predict('churn3', features)) AS prefix_scores,
       bool_and(cs.model_margin('churn3', features || '{-0.5}'::float4[]) = cs.model_margin('churn3', features)) AS prefix_margins
  FROM probe;
SELECT abs((cs.explain_json('churn3', features || '{-0.5}'::float4[], 3) -> 'prediction')::float8
           - cs.predict('churn3', features)) < 1e-6 AS prefix_explains
  FROM probe WHERE id = 1;
SELECT cs.predict('shipped', features || '{-0.5}'::float4[]) FROM probe WHERE id = 1;
SELECT cs.predict('churn3', features[1:5]) FROM probe WHERE id = 1;
SELECT cs.load_model('churn3', 'churn', pg_read_binary_file(:'tiny'),
                     '{logins,nps,tickets,seats_used,late_invoices,tenure}');
DELETE FROM cs.models WHERE name = 'churn3';
DELETE FROM cs.feature_catalog WHERE position = 7;

-- Bad model bytes and bad arguments.
SELECT cs.load_model('bad', 'custom', '\x00010203'::bytea, '{a}');
SELECT cs.load_model('bad', 'custom', ''::bytea, '{a}');
SELECT cs.load_model('bad', 'custom', convert_to('{"learner": {', 'UTF8'), '{a}');
SELECT cs.load_model('bad', 'custom', convert_to('{"learner": 1}', 'UTF8'), '{a}');
SELECT cs.load_model('bad', 'custom', substring(pg_read_binary_file(:'tiny') FROM 1 FOR 5000), '{a}');
SELECT cs.load_model('bad', 'custom', substring(pg_read_binary_file(:'tiny_ubj') FROM 1 FOR 5000), '{a}');
SELECT cs.load_model('bad', 'custom', substring(pg_read_binary_file(:'tiny_ubj') FROM 1 FOR 100), '{a}');
SELECT cs.load_model('bad', 'custom', '\x7b' || decode(repeat('ff', 64), 'hex'), '{a}');
SELECT cs.load_model('bad', 'custom', '\x7b4c7fffffffffffffff', '{a}');
-- Random bytes behind a '{' never crash: each is an error.
DO $$
DECLARE
    i int;
    errors int := 0;
BEGIN
    PERFORM setseed(0.42);
    FOR i IN 1..200 LOOP
        BEGIN
            PERFORM cs.load_model('bad', 'custom',
                '\x7b'::bytea || decode(string_agg(lpad(to_hex((random() * 255)::int), 2, '0'), ''), 'hex'),
                '{a}')
              FROM generate_series(1, 1 + (random() * 300)::int);
        EXCEPTION WHEN invalid_binary_representation THEN
            errors := errors + 1;
        END;
    END LOOP;
    RAISE WARNING 'random bytes: % of 200 rejected as corrupt', errors;
END;
$$;
-- Damaged trees: a child index out of range, a cycle.
SELECT cs.load_model('bad', 'custom',
    convert_to(replace(convert_from(pg_read_binary_file(:'tiny'), 'UTF8'), '"left_children":[1,', '"left_children":[99,'), 'UTF8'),
    '{a,b,c,d,e,f}');
SELECT cs.load_model('bad', 'custom',
    convert_to(replace(convert_from(pg_read_binary_file(:'tiny'), 'UTF8'), '"left_children":[1,', '"left_children":[0,'), 'UTF8'),
    '{a,b,c,d,e,f}');
-- Mutated tree fields never crash (libxgboost trusts parents, children...):
-- each mutated model is either refused or agrees with libxgboost.  The
-- mutation edits the JSON text in place: element e of array field in tree t.
CREATE FUNCTION pg_temp.mutate(txt text, t int, field text, e int, val text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    pos int := 0;
    off int;
    stop int;
BEGIN
    FOR k IN 0..t LOOP
        off := strpos(substr(txt, pos + 1), '"' || field || '":[');
        IF off = 0 THEN RETURN txt; END IF;
        pos := pos + off;
    END LOOP;
    pos := pos + length(field) + 3;            -- first character of element 0
    FOR k IN 1..e LOOP
        off := strpos(substr(txt, pos), ',');
        stop := strpos(substr(txt, pos), ']');
        IF off = 0 OR off > stop THEN RETURN txt; END IF;
        pos := pos + off;
    END LOOP;
    stop := pos;
    WHILE substr(txt, stop, 1) NOT IN (',', ']') LOOP stop := stop + 1; END LOOP;
    RETURN substr(txt, 1, pos - 1) || val || substr(txt, stop);
END;
$$;
CREATE TEMP TABLE tiny_json AS SELECT convert_from(pg_read_binary_file(:'tiny'), 'UTF8') AS j;
DO $$
DECLARE
    fields text[] := '{left_children,right_children,parents,split_indices,default_left,split_type,split_conditions,base_weights,sum_hessian,categories_nodes}';
    vals text[] := ARRAY['-1', '0', '1', '2', '6', '14', '15', '2147483647', '-2147483648', '1000000',
                         '1.5E0', '-2.5E-1', '"x"', 'null', '[]', 'true'];
    base text := (SELECT j FROM tiny_json);
    loaded int := 0;
    refused int := 0;
BEGIN
    PERFORM setseed(0.17);
    FOR i IN 1..400 LOOP
        BEGIN
            PERFORM cs.load_model('fuzz', 'custom',
                convert_to(pg_temp.mutate(base, (random() * 14)::int,
                                          fields[1 + (random() * (array_length(fields, 1) - 1))::int],
                                          (random() * 14)::int,
                                          vals[1 + (random() * (array_length(vals, 1) - 1))::int]), 'UTF8'),
                '{a,b,c,d,e,f}');
            loaded := loaded + 1;
        EXCEPTION WHEN invalid_binary_representation OR data_corrupted OR feature_not_supported OR data_exception THEN
            refused := refused + 1;
        END;
    END LOOP;
    RAISE WARNING 'mutated models: % loaded (and agree with libxgboost), % refused', loaded, refused;
END;
$$;
DELETE FROM cs.models WHERE name = 'fuzz';
SELECT cs.load_model('bad', 'custom', pg_read_binary_file(:'poisson'), '{a,b,c,d,e,f}');
SELECT cs.load_model('bad', 'custom', pg_read_binary_file(:'linear'), '{a,b,c,d,e,f}');
SELECT cs.load_model('bad', 'custom', pg_read_binary_file(:'multiclass'), '{a,b,c,d,e,f}');
SELECT cs.load_model('bad', 'custom', pg_read_binary_file(:'categorical'), '{a,b,c,d,e,f}');
SELECT cs.load_model('bad', 'custom', pg_read_binary_file(:'tiny'), '{a,b,c}');
SELECT cs.load_model('bad', 'custom', pg_read_binary_file(:'tiny'), '{a,b,c,d,e,a}');
SELECT cs.load_model('bad', 'custom', pg_read_binary_file(:'tiny'), '{a,b,c,d,e,NULL}');
SELECT cs.load_model('bad', 'custom', pg_read_binary_file(:'tiny'), '{{a,b,c},{d,e,f}}');
SELECT cs.load_model('bad', 'nonsense', pg_read_binary_file(:'tiny'), '{a,b,c,d,e,f}');
SELECT cs.load_model('bad', 'custom', NULL, '{a,b,c,d,e,f}');
SELECT cs.load_model('bad', 'custom',
    convert_to(regexp_replace(convert_from(pg_read_binary_file(:'tiny'), 'UTF8'), '"feature_names":\[[^]]*\]', '"feature_names":[]'), 'UTF8'));
-- Without feature names, the model's own.
SELECT cs.load_model('own_names', 'custom', pg_read_binary_file(:'tiny')) > 0 AS own_names;
SELECT feature_names FROM cs.models WHERE name = 'own_names';
SELECT count(*) AS bad_models FROM cs.models WHERE name = 'bad';

-- Bad feature vectors.
SELECT cs.predict('tiny', '{1,2,3}');
SELECT cs.predict('tiny', '{}');
SELECT cs.predict('tiny', '{1,2,3,4,5,Infinity}');
SELECT cs.predict('tiny', '{1,2,3,4,5,-Infinity}');
SELECT cs.predict('tiny', '{1,2,3,4,5,NULL}');
SELECT cs.predict('tiny', '{{1,2,3},{4,5,6}}');
SELECT cs.predict('nobody', '{1,2,3,4,5,6}');
SELECT cs.predict('tiny', NULL) IS NULL AS strict;

------------------------------------------------------------------------------
-- Cache invalidation within one session
------------------------------------------------------------------------------

SELECT cs.load_model('m', 'custom', pg_read_binary_file(:'tiny'), '{a,b,c,d,e,f}') > 0 AS m1;
SELECT round(cs.predict('m', features)::numeric, 6) AS m_v1 FROM probe WHERE id = 1;
SELECT cs.load_model('m', 'custom', pg_read_binary_file(:'tiny_v2'), '{a,b,c,d,e,f}') > 0 AS m2;
-- The latest version answers while there is no champion (v2 python: 0.82431978).
SELECT round(cs.predict('m', features)::numeric, 6) AS m_latest FROM probe WHERE id = 1;
SELECT cs.deploy_model('m', 1);
SELECT round(cs.predict('m', features)::numeric, 6) AS m_champion_v1 FROM probe WHERE id = 1;
SELECT cs.deploy_model('m', 2);
SELECT abs(cs.predict('m', features) - 0.82431978) < 1e-6 AS m_champion_v2 FROM probe WHERE id = 1;
-- A hand-made UPDATE of cs.models is seen too.
UPDATE cs.models SET status = 'retired' WHERE name = 'm' AND version = 2;
UPDATE cs.models SET status = 'champion' WHERE name = 'm' AND version = 1;
SELECT round(cs.predict('m', features)::numeric, 6) AS m_updated_v1 FROM probe WHERE id = 1;
-- Even when the model bytes of the champion row are replaced in place.
UPDATE cs.models SET model = pg_read_binary_file(:'tiny_v2') WHERE name = 'm' AND version = 1;
SELECT abs(cs.predict('m', features) - 0.82431978) < 1e-6 AS m_bytes_replaced FROM probe WHERE id = 1;
-- One statement, many rows, a cached call site.
SELECT count(*), round(avg(cs.predict('tiny', features))::numeric, 6) AS avg_prediction FROM probe;
-- Rolled back changes are forgotten again.
BEGIN;
UPDATE cs.models SET model = pg_read_binary_file(:'tiny') WHERE name = 'm' AND version = 1;
SELECT round(cs.predict('m', features)::numeric, 6) AS in_xact FROM probe WHERE id = 1;
ROLLBACK;
SELECT abs(cs.predict('m', features) - 0.82431978) < 1e-6 AS after_rollback FROM probe WHERE id = 1;

-- In parallel workers (temp tables are never scanned in parallel: copy).
CREATE TABLE model_probe AS SELECT * FROM probe;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET force_parallel_mode = regress;
SELECT count(*) AS rows, bool_and(abs(cs.predict('tiny', features) - expected) < 1e-6) AS parallel_ok,
       bool_and((SELECT count(*) FROM cs.explain('tiny', features, 2)) = 2) AS explain_ok
  FROM model_probe;
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP TABLE model_probe;

------------------------------------------------------------------------------
-- Explanations
------------------------------------------------------------------------------

SELECT feature, value, round(contribution::numeric, 4) AS contribution
  FROM cs.explain('tiny', (SELECT features FROM probe WHERE id = 1));
SELECT feature, value, round(contribution::numeric, 4) AS contribution
  FROM cs.explain('tiny', (SELECT features FROM probe WHERE id = 3), 2);
-- All contributions plus the bias add up to the margin, for every probe row.
SELECT p.id,
       abs((SELECT sum(contribution) FROM cs.explain('tiny', p.features, 100))
           + (cs.explain_json('tiny', p.features, 1)->>'bias')::float8
           - cs.model_margin('tiny', p.features)) < 1e-5 AS sums_to_margin
  FROM probe p ORDER BY p.id;
SELECT jsonb_array_length(j->'factors') AS factors, j->'factors'->0->>'feature' AS top_feature,
       j->>'model' AS model, (j->>'version')::int AS version,
       abs((j->>'margin')::float8 - expected_margin) < 1e-5 AS margin_ok,
       abs((j->>'prediction')::float8 - expected) < 1e-6 AS prediction_ok
  FROM probe, cs.explain_json('tiny', features, 3) AS j WHERE id = 1;
SELECT j->'factors' @> '[{"value": null}]' AS nan_is_null
  FROM probe, cs.explain_json('tiny', features, 6) AS j WHERE id = 2;
SELECT * FROM cs.explain('tiny', '{1,2,3,4,5,6}', 0);
SELECT * FROM cs.explain('tiny', '{1,2,3}');

-- Every method gives the same exact TreeSHAP values: the per-leaf tables (the
-- default) and the native tree walk against libxgboost's own pred_contribs,
-- for each objective, on 400 rows with missing values.
CREATE TEMP TABLE shap_rows AS
SELECT g AS id,
       ARRAY(SELECT CASE WHEN hashint4(g * 7 + i) % 5 = 0 THEN 'NaN'::float4
                         ELSE ((hashint4(g * 31 + i) % 400) / 100.0)::float4 END
               FROM generate_series(1, 6) i) AS features
  FROM generate_series(1, 400) g;
CREATE TEMP VIEW shap_all AS
SELECT m AS model, r.id, x.feature, x.contribution
  FROM unnest('{tiny,reg,raw,shipped}'::text[]) m, shap_rows r, cs.explain(m, r.features, 100) x
UNION ALL
SELECT m, r.id, '(bias)', (cs.explain_json(m, r.features, 1) ->> 'bias')::float8
  FROM unnest('{tiny,reg,raw,shipped}'::text[]) m, shap_rows r;
SET cscopilot.shap_method = libxgboost;
CREATE TEMP TABLE shap_lib AS SELECT * FROM shap_all;
SET cscopilot.shap_method = native;
CREATE TEMP TABLE shap_native AS SELECT * FROM shap_all;
RESET cscopilot.shap_method;
CREATE TEMP TABLE shap_tables AS SELECT * FROM shap_all;
SELECT l.model, count(*) AS shap_values,
       max(abs(n.contribution - l.contribution)) <= 1e-6 AS native_agrees,
       max(abs(t.contribution - l.contribution) / greatest(1, abs(l.contribution))) <= 1e-5 AS tables_agree,
       count(*) FILTER (WHERE l.contribution <> 0) > 400 AS nonzero
  FROM shap_lib l
  JOIN shap_native n USING (model, id, feature)
  JOIN shap_tables t USING (model, id, feature)
 GROUP BY l.model ORDER BY l.model;
SET cscopilot.shap_method = nonsense;

------------------------------------------------------------------------------
-- Training
------------------------------------------------------------------------------

-- Deterministic synthetic data: 5000 rows of 500 customers, label from a
-- noisy linear rule, feature 3 sometimes missing.
CREATE TEMP TABLE train_rows AS
SELECT g AS id, 'c' || (g % 500) AS customer,
       ARRAY[(hashint4(g) % 1000) / 100.0, (hashint4(g * 7) % 1000) / 100.0,
             CASE WHEN g % 13 = 0 THEN 'NaN' ELSE (hashint4(g * 13) % 1000) / 100.0 END,
             (hashint4(g * 17) % 1000) / 100.0]::float4[] AS features,
       ((hashint4(g) % 1000) / 100.0 + (hashint4(g * 7) % 1000) / 200.0
        + (hashint4(g * 31) % 300) / 100.0 > 0) AS label
  FROM generate_series(1, 5000) g;

SELECT cs.train_model('trained', 'custom',
    'SELECT features, label, customer AS group_key FROM train_rows',
    '{"max_depth": 3, "eta": 0.3, "num_round": 300, "seed": 1}') > 0 AS trained;
SELECT version, kind, objective, status, feature_names, training_data
  FROM cs.models WHERE name = 'trained';
SELECT (metrics->>'auc')::float8 > 0.95 AS auc_ok,
       (metrics->>'logloss')::float8 < 0.3 AS logloss_ok,
       (metrics->>'brier')::float8 < 0.1 AS brier_ok,
       abs((metrics->>'logloss')::float8 - (metrics->>'best_score')::float8) < 1e-4 AS logloss_matches_xgboost,
       (metrics->>'best_iteration')::int + 1 = (metrics->>'num_trees')::int AS cut_at_best,
       (metrics->>'num_trees')::int < 300 AS stopped_early,
       (metrics->>'rows_train')::int + (metrics->>'rows_valid')::int AS rows,
       (metrics->>'rows_valid')::int BETWEEN 500 AND 1500 AS valid_share_ok,
       round((metrics->>'positive_rate')::numeric, 4) AS positive_rate,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(metrics->'feature_importance_gain') k) AS importance,
       metrics->'params' AS params
  FROM cs.models WHERE name = 'trained';
-- Predictions of the trained model are probabilities and mostly right.
SELECT count(*) AS rows, bool_and(p BETWEEN 0 AND 1) AS in_unit_interval,
       avg(((p > 0.5) = label)::int) > 0.85 AS accurate
  FROM (SELECT cs.predict('trained', features) AS p, label FROM train_rows) s;
-- Other objectives, metrics and names.
SELECT cs.train_model('trained_reg', 'custom',
    'SELECT features, (features[1] * 2 + 1)::numeric AS label FROM train_rows',
    '{"objective": "reg:squarederror", "max_depth": 4, "num_round": 50, "eval_metric": "rmse",
      "validation_fraction": 0.3, "feature_names": ["a", "b", "c", "d"]}') > 0 AS trained_reg;
SELECT feature_names, (metrics->>'rmse')::float8 < 1 AS rmse_ok, metrics ? 'auc' AS has_auc
  FROM cs.models WHERE name = 'trained_reg';
SELECT cs.train_model('trained_auc', 'custom',
    'SELECT features, label::int AS label FROM train_rows',
    '{"num_round": 30, "eval_metric": "auc", "early_stopping_rounds": 5, "subsample": 0.8, "colsample_bytree": 0.9, "min_child_weight": 2, "lambda": 1.5}') > 0 AS trained_auc;
SELECT metrics->>'eval_metric' AS eval_metric, (metrics->>'auc')::float8 > 0.95 AS auc_ok
  FROM cs.models WHERE name = 'trained_auc';

-- A scoring kind takes its feature names from cs.feature_catalog.
SELECT cs.train_model('churn_trained', 'churn',
    'SELECT features || features[1:2] AS features, label FROM train_rows', '{"num_round": 5}') > 0 AS churn_trained;
SELECT kind, feature_names, status FROM cs.models WHERE name = 'churn_trained';

-- Training errors.
SELECT cs.train_model('t', 'custom', 'SELEC features', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features::float8[] AS features, label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features, label::text AS label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features, label FROM train_rows WHERE false', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features, true AS label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features, CASE WHEN id = 7 THEN NULL ELSE label END AS label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features, CASE WHEN id = 7 THEN ''Infinity''::float8 ELSE 0 END AS label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features, CASE WHEN id = 7 THEN ''NaN''::numeric ELSE 0 END AS label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features, id % 3 AS label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features[1:id % 2 + 1] AS features, label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT ARRAY[1, NULL]::float4[] AS features, label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT ARRAY[1, ''Infinity'']::float4[] AS features, label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features, label, ''one'' AS group_key FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'SELECT features, label FROM train_rows', '{"max_dept": 3}');
SELECT cs.train_model('t', 'custom', 'SELECT features, label FROM train_rows', '{"objective": "count:poisson"}');
SELECT cs.train_model('t', 'custom', 'SELECT features, label FROM train_rows', '{"validation_fraction": 1}');
SELECT cs.train_model('t', 'custom', 'SELECT features, label FROM train_rows', '{"max_depth": "deep"}');
SELECT cs.train_model('t', 'custom', 'SELECT features, label FROM train_rows', '[1]');
SELECT cs.train_model('t', 'churn', 'SELECT features, label FROM train_rows', '{}');
SELECT cs.train_model('t', 'custom', 'DELETE FROM train_rows RETURNING features, label', '{}');
SELECT count(*) AS untrained FROM cs.models WHERE name = 't';

------------------------------------------------------------------------------
-- SQLSTATEs of the main errors (terse output above shows only messages).
------------------------------------------------------------------------------

CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END;
$$;
SELECT pg_temp.sqlstate_of(q) AS error FROM (VALUES
    ($q$SELECT cs.load_model('bad', 'custom', '\x00010203'::bytea, '{a}')$q$),
    ($q$SELECT cs.load_model('bad', 'custom', '\x7b4c7fffffffffffffff', '{a}')$q$),
    ($q$SELECT cs.load_model('bad', 'custom', convert_to('{"learner": 1}', 'UTF8'), '{a}')$q$),
    ($q$SELECT cs.load_model('bad', 'custom', pg_read_binary_file('$q$ || :'poisson' || $q$'), '{a,b,c,d,e,f}')$q$),
    ($q$SELECT cs.load_model('bad', 'custom', pg_read_binary_file('$q$ || :'categorical' || $q$'), '{a,b,c,d,e,f}')$q$),
    ($q$SELECT cs.load_model('bad', 'custom', pg_read_binary_file('$q$ || :'tiny' || $q$'), '{a,b,c}')$q$),
    ($q$SELECT cs.load_model_file('x', 'custom', '../x.json')$q$),
    ($q$SELECT cs.deploy_model('nobody', 1)$q$),
    ($q$SELECT cs.predict('nobody', '{1,2,3,4,5,6}')$q$),
    ($q$SELECT cs.predict('tiny', '{1,2,3}')$q$),
    ($q$SELECT cs.predict('tiny', '{{1,2,3},{4,5,6}}')$q$),
    ($q$SELECT cs.predict('tiny', '{1,2,3,4,5,Infinity}')$q$),
    ($q$SELECT cs.predict('tiny', '{1,2,3,4,5,NULL}')$q$),
    ($q$SELECT cs.train_model('t', 'custom', 'SELECT features FROM train_rows')$q$),
    ($q$SELECT cs.train_model('t', 'custom', 'SELECT features, label FROM train_rows WHERE false')$q$),
    ($q$SELECT cs.train_model('t', 'custom', 'SELECT features, true AS label FROM train_rows')$q$)
) AS t(q);
