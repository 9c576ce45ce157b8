-- Custom models on named, typed columns (src/encode.c): cs.train_model learns
-- the encoding of a query's columns (numbers, booleans, text categories,
-- NULLs), stores it with the model, and cs.predict_row applies it to a record.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET client_min_messages = notice;

-- Runs one statement and reports its outcome on one line.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st  text;
    msg text;
    r   text;
BEGIN
    EXECUTE q INTO r;
    RETURN 'ok: ' || coalesce(left(r, 60), 'NULL');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN st || ': ' || msg;
END;
$$;

-- A fixed table of accounts: a number, a boolean, two text categories, NULLs
-- in each; churn depends on plan, seats and annual.  Region latam is rare
-- (2 rows) and apac has 4.
CREATE TABLE accounts (
    id       int PRIMARY KEY,
    seats    int,
    annual   boolean,
    plan     text,
    region   varchar(10),
    opened   date,
    churned  boolean
);
INSERT INTO accounts
SELECT g,
       CASE WHEN g % 11 = 0 THEN NULL ELSE (hashint4(g) & 1023) % 60 END,
       CASE WHEN g % 13 = 0 THEN NULL ELSE hashint4(g * 3) % 3 = 0 END,
       CASE WHEN g % 17 = 0 THEN NULL ELSE (ARRAY['basic', 'pro', 'enterprise'])[(hashint4(g * 5) & 1023) % 3 + 1] END,
       CASE WHEN g IN (5, 50) THEN 'latam' WHEN g IN (7, 70, 170, 270) THEN 'apac'
            WHEN g % 19 = 0 THEN NULL WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END,
       date '2020-01-01' + g,
       NULL
  FROM generate_series(1, 600) g;
UPDATE accounts SET churned =
       (coalesce(plan, 'pro') = 'basic' AND coalesce(seats, 30) < 30)
    OR (NOT coalesce(annual, true) AND (hashint4(id * 7) & 1023) % 4 = 0)
    OR (hashint4(id * 11) & 1023) % 20 = 0;

-- One-hot (the default), folding categories seen fewer than 3 times into other.
SELECT cs.train_model('acct', 'custom',
    'SELECT seats, annual, plan, region, churned AS label, id AS group_key FROM accounts;',
    '{"num_round": 20, "max_depth": 3, "eta": 0.5, "seed": 1, "early_stopping_rounds": 0, "min_category_count": 3}') > 0
    AS trained;
-- The inputs, the stored encoding (vocabularies sorted by bytes), and what is
-- kept of the user's query and params.
SELECT feature_names, training_data, metrics->'params' AS params,
       (metrics->>'rows_train')::int + (metrics->>'rows_valid')::int AS rows
  FROM cs.models WHERE name = 'acct';
SELECT jsonb_pretty(encoding) FROM cs.models WHERE name = 'acct';
-- The model learnt the rule: plan=basic and seats matter most.
SELECT (metrics->>'auc')::float8 > 0.8 AS auc_ok,
       (SELECT k FROM jsonb_each_text(metrics->'feature_importance_gain') AS e(k, v)
         ORDER BY v::float8 DESC LIMIT 1) IN ('plan=basic', 'seats') AS top_input
  FROM cs.models WHERE name = 'acct';

-- Hand-encoded vectors, in the order of feature_names.
CREATE TEMP VIEW hand AS
SELECT a.*,
       ARRAY[coalesce(seats::float4, 'NaN'::float4),
             CASE WHEN annual IS NULL THEN 'NaN'::float4 WHEN annual THEN 1 ELSE 0 END,
             CASE WHEN plan IS NULL THEN 'NaN'::float4 WHEN plan = 'basic' THEN 1 ELSE 0 END,
             CASE WHEN plan IS NULL THEN 'NaN'::float4 WHEN plan = 'enterprise' THEN 1 ELSE 0 END,
             CASE WHEN plan IS NULL THEN 'NaN'::float4 WHEN plan = 'pro' THEN 1 ELSE 0 END,
             CASE WHEN region IS NULL THEN 'NaN'::float4 WHEN region = 'apac' THEN 1 ELSE 0 END,
             CASE WHEN region IS NULL THEN 'NaN'::float4 WHEN region = 'eu' THEN 1 ELSE 0 END,
             CASE WHEN region IS NULL THEN 'NaN'::float4 WHEN region = 'us' THEN 1 ELSE 0 END,
             CASE WHEN region IS NULL THEN 'NaN'::float4 WHEN region = 'latam' THEN 1 ELSE 0 END]::float4[] AS x
  FROM accounts a;
-- The encoding applied in C is the hand encoding (NaN = NaN in float4 comparison).
SELECT count(*) AS rows, count(*) FILTER (WHERE cs.encode_row('acct', h.a) = h.x) AS same_encoding
  FROM (SELECT a, x FROM hand, LATERAL (SELECT accounts FROM accounts WHERE accounts.id = hand.id) AS s(a)) h;
-- Record scoring = scoring the hand-encoded vector = libxgboost's own prediction
-- (XGBoosterPredict, what python-xgboost calls) on it, to 1e-6.
CREATE TEMP TABLE scored AS
SELECT a.id, cs.predict_row('acct', a) AS by_row, cs.predict('acct', h.x) AS by_vector,
       cs.predict_row('acct', to_jsonb(a)) AS by_jsonb, h.x
  FROM accounts a JOIN hand h USING (id);
SELECT count(*) AS rows,
       count(*) FILTER (WHERE abs(by_row - by_vector) <= 1e-6) AS row_equals_vector,
       count(*) FILTER (WHERE abs(by_row - by_jsonb) <= 1e-6) AS row_equals_jsonb,
       count(DISTINCT round(by_row::numeric, 6)) > 5 AS varied
  FROM scored;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE abs(s.by_row - l.p) <= 1e-6) AS row_equals_libxgboost
  FROM unnest((SELECT array_agg(id ORDER BY id) FROM scored),
              cs._xgboost_predict('acct', (SELECT array_agg(x ORDER BY id) FROM scored))) AS l(id, p)
  JOIN scored s USING (id);
-- A row of several columns in another order, with extra columns: the same.
SELECT count(*) FILTER (WHERE abs(cs.predict_row('acct', r) - s.by_row) <= 1e-6) AS any_order
  FROM (SELECT id, 'x' AS junk, region, plan, churned AS label, annual, seats FROM accounts) r
  JOIN scored s USING (id);

-- Missing values: NULL, a category never seen, and a rare one folded into other.
SELECT round(cs.predict_row('acct', '{"seats": 5, "annual": false, "plan": null, "region": "eu"}'::jsonb)::numeric, 6)
     = round(cs.predict_row('acct', '{"seats": 5, "annual": false, "plan": "platinum", "region": "eu"}'::jsonb)::numeric, 6)
       AS unseen_is_null,
       cs.encode_row('acct', '{"seats": 5, "annual": false, "plan": "platinum", "region": "eu"}'::jsonb) AS unseen,
       cs.encode_row('acct', '{"seats": null, "annual": true, "plan": "basic", "region": "latam"}'::jsonb) AS rare_is_other,
       cs.encode_row('acct', '{"seats": 7, "annual": null, "plan": "pro", "region": "antarctica"}'::jsonb) AS unseen_region;
SELECT round(cs.predict_row('acct', r1)::numeric, 6) = round(cs.predict_row('acct', r2)::numeric, 6) AS unseen_is_null_in_row
  FROM (SELECT 5 AS seats, false AS annual, 'platinum'::text AS plan, 'eu'::text AS region) r1,
       (SELECT 5 AS seats, false AS annual, NULL::text AS plan, 'eu'::text AS region) r2;

-- Explanations of a record: those of its encoded vector.
SELECT count(*) AS rows FROM (
    SELECT * FROM cs.explain_row('acct', (SELECT a FROM accounts a WHERE id = 42), 9)
    EXCEPT
    SELECT * FROM cs.explain('acct', (SELECT x FROM hand WHERE id = 42), 9)) d;
SELECT (SELECT count(*) FROM cs.explain_row('acct', (SELECT a FROM accounts a WHERE id = 42), 3)) AS top3,
       abs((cs.explain_json_row('acct', (SELECT a FROM accounts a WHERE id = 42))->>'prediction')::float8
           - cs.predict_row('acct', (SELECT a FROM accounts a WHERE id = 42))) < 1e-6 AS json_prediction;

-- Ordinal: one input for plan, its position in the vocabulary (basic 0,
-- enterprise 1, pro 2); NULL and unseen are NaN.
SELECT cs.train_model('acct_ord', 'custom',
    'SELECT plan, seats, annual, churned AS label FROM accounts',
    '{"num_round": 20, "max_depth": 3, "eta": 0.5, "seed": 1, "early_stopping_rounds": 0, "encoding": {"plan": "ordinal"}}') > 0 AS trained;
SELECT feature_names, encoding->'columns'->0 AS plan FROM cs.models WHERE name = 'acct_ord';
SELECT p.plan, cs.encode_row('acct_ord', r) AS x
  FROM (VALUES ('basic'), ('enterprise'), ('pro'), (NULL), ('platinum')) AS p(plan),
       LATERAL (SELECT p.plan, 10 AS seats, true AS annual) r
 ORDER BY p.plan NULLS LAST;
SELECT count(*) FILTER (WHERE abs(cs.predict_row('acct_ord', a)
         - cs.predict('acct_ord', ARRAY[CASE a.plan WHEN 'basic' THEN 0 WHEN 'enterprise' THEN 1 WHEN 'pro' THEN 2
                                        ELSE 'NaN'::float4 END, coalesce(a.seats::float4, 'NaN'::float4),
                                        CASE WHEN a.annual THEN 1 WHEN NOT a.annual THEN 0 ELSE 'NaN'::float4 END]::float4[])) <= 1e-6)
       AS ordinal_matches
  FROM accounts a;
-- Both encodings learn the rule.
SELECT name, (metrics->>'auc')::float8 > 0.75 AS learnt FROM cs.models WHERE name LIKE 'acct%' ORDER BY name;

-- A model whose query has features works as before, and has no encoding.
SELECT cs.train_model('acct_vec', 'custom',
    'SELECT x AS features, churned AS label FROM hand',
    '{"num_round": 10, "max_depth": 3, "seed": 1}') > 0 AS trained;
SELECT feature_names, encoding IS NULL AS no_encoding, training_data FROM cs.models WHERE name = 'acct_vec';
SELECT count(*) FILTER (WHERE cs.predict('acct_vec', x) BETWEEN 0 AND 1) AS scored FROM hand;

-- Bad input: each raises a specific SQLSTATE.
\pset format unaligned
\pset tuples_only on
SELECT q || E'\n    -> ' || pg_temp.try(q) FROM (VALUES
 -- scoring: a missing column, a wrong type, a model without encoding, not a record
 ($q$SELECT cs.predict_row('acct', r) FROM (SELECT 5 AS seats, true AS annual, 'pro'::text AS plan) r$q$),
 ($q$SELECT cs.predict_row('acct', r) FROM (SELECT 5 AS seats, true AS annual, 'pro'::text AS plan, 3 AS region) r$q$),
 ($q$SELECT cs.predict_row('acct', r) FROM (SELECT '5'::text AS seats, true AS annual, 'pro'::text AS plan, 'eu'::text AS region) r$q$),
 ($q$SELECT cs.predict_row('acct', r) FROM (SELECT 5 AS seats, 1 AS annual, 'pro'::text AS plan, 'eu'::text AS region) r$q$),
 ($q$SELECT cs.predict_row('acct', '{"seats": "5", "annual": true, "plan": "pro", "region": "eu"}'::jsonb)$q$),
 ($q$SELECT cs.predict_row('acct', '{"seats": 5, "annual": true, "plan": "pro"}'::jsonb)$q$),
 ($q$SELECT cs.predict_row('acct', '[1, 2]'::jsonb)$q$),
 ($q$SELECT cs.predict_row('acct', '{"seats": 5}')$q$),
 ($q$SELECT cs.predict_row('acct', 5)$q$),
 ($q$SELECT cs.predict_row('acct_vec', a) FROM accounts a LIMIT 1$q$),
 ($q$SELECT cs.predict_row('nobody', a) FROM accounts a LIMIT 1$q$),
 ($q$SELECT cs.predict_row('acct', '{"seats": 1e300, "annual": true, "plan": "pro", "region": "eu"}'::jsonb)$q$),
 ($q$SELECT cs.predict('acct', ARRAY[1, 2, 3]::float4[])$q$),
 ($q$SELECT cs._xgboost_predict('acct', ARRAY[1, 2, 3]::float4[])$q$),
 -- training
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT seats, opened, churned AS label FROM accounts', '{}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT seats, plan FROM accounts', '{}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT seats, seats, churned AS label FROM accounts', '{}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT churned AS label, id AS group_key FROM accounts', '{}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT NULL::text AS nothing, seats, churned AS label FROM accounts', '{}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT plan, churned AS label FROM accounts WHERE false', '{}')$q$),
 ($q$SELECT cs.train_model('bad', 'churn', 'SELECT seats, churned AS label FROM accounts', '{}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT seats, plan, churned AS label FROM accounts', '{"encoding": {"seats": "ordinal"}}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT seats, plan, churned AS label FROM accounts', '{"encoding": {"plan": "binary"}}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT seats, plan, churned AS label FROM accounts', '{"min_category_count": 0}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT seats, plan, churned AS label FROM accounts', '{"feature_names": ["a", "b"]}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'SELECT x AS features, churned AS label FROM hand', '{"encoding": {"plan": "ordinal"}}')$q$),
 ($q$SELECT cs.train_model('bad', 'custom', 'DELETE FROM accounts', '{}')$q$)
) AS t(q);
\pset format aligned
\pset tuples_only off
-- Nothing was registered by the failures, and nothing was deleted.
SELECT count(*) AS bad_models FROM cs.models WHERE name = 'bad';
SELECT count(*) AS accounts FROM accounts;

-- A table rewritten after scoring (seats becomes bigint, then text): the
-- cached mapping of its row type follows it.
DROP VIEW hand;
ALTER TABLE accounts ALTER COLUMN seats TYPE bigint;
SELECT count(*) AS rows, count(*) FILTER (WHERE abs(cs.predict_row('acct', a) - s.by_row) <= 1e-6) AS same_after_alter
  FROM accounts a JOIN scored s USING (id);
ALTER TABLE accounts ALTER COLUMN seats TYPE text;
SELECT pg_temp.try($q$SELECT cs.predict_row('acct', a) FROM accounts a LIMIT 1$q$) AS seats_as_text;
