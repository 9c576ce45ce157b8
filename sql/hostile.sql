-- Hostile input to every public function: NULLs, empty and huge arrays, NaN
-- and infinities, out-of-range values, malformed JSON, truncated and random
-- model bytes, wrong feature counts, unknown ids.  Each case prints the
-- SQLSTATE and message it raised (or "ok" and a prefix of its result): the
-- errors must be specific and the server must survive every one.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET client_min_messages = notice;
SET TIME ZONE 'UTC';

-- Runs one statement and reports its outcome on one line.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st  text;
    msg text;
    r   text;
BEGIN
    EXECUTE q INTO r;
    RETURN 'ok: ' || coalesce(left(r, 40), 'NULL');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN st || ': ' || left(msg, 110);
END;
$$;

INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm)
VALUES ('00000000-0000-0000-0000-000000000001', 'h1', 'Hostile', 'smb', 100, 10, 'csm_h');
SELECT cs.refresh_all();
-- a known-good model, its bytes as UBJ (a fuzzing finding: a NUL in an object key), random bytes
CREATE TEMP TABLE m AS SELECT model FROM cs.models WHERE name = 'churn_default';
CREATE TEMP TABLE finding AS SELECT decode('7b6c000000076c6561726e65727b6c0000000a617474726962757465737b7d6c0000000d666561747572655f6e970700005b536c000000026631536c000000026632536c0000000266335d6c0000000d666561747572655f74797065735b5d6c000000106772616469656e745f626f6f737465727b6c000000056d6f64656c7b6c000000126762747265655f6d6f64656c5f706172616d7b6c000000116e756d5f706172616c6c656c5f74726565536c00000001316c000000096e756d5f7472656573536c00000001336c0000001073697a655f6c6561665f766563746f72536c00000001307d6c00000009747265655f696e666f5b4c00000000000000004c00000000000000004c00000000000000005d6c0000000574726565735b7b6c0000000c626173655f776569676874735b2464236c000000053e2cb90f3f20b363bf06fb593f0af8b03cf83e106c0000000a63617465676f726965735b5d6c0000001063617465676f726965735f6e6f6465735b5d6c0000001363617465676f726965735f7365676d656e74735b5d6c0000001063617465676f726965735f73697a65735b5d6c0000000c64656661756c745f6c6566745b4c00000000000000014c00000000000000004c00000000000000004c00000000000000004c00000000000000005d6c0000000269644c00000000000000006c0000000d6c6566745f6368696c6472656e5b4c00000000000000014c00000000000000034cffffffffffffffff4cffffffffffffffff4cffffffffffffffff5d6c0000000c6c6f73735f6368616e6765735b2464236c000000000000000000004c00000000000000024c00000000000000004c00000000000000005d6c0000000a73706c69745f747970655b4c00000000000000004c00000000000000004c00000000000000004c00000000000000004c00000000000000005d6c0000000b73756d5f6865737369616e5b2464236c00000005421d6282410d545c41f41ad740eff1e641b81e5d6c0000000a747265655f706172616d7b6c0000000b6e756d5f64656c65746564536c00000001306c0000000b6e756d5f66656174757265536c00000001336c000000096e756d5f6e6f646573536c00006c3500010000001073697a655f6c6561665f766563746f72536c00000001307d7d7b6c0000000c626173655f776569676874735b2464236c000000053dbfaeee3ef01617bedbbf053b52f90e3f0105216c0000000a63617465676f726965735b5d6c0000001063617465676f726965735f6e6f6465735b5d6c0000001363617465676f726965735f7365676d656e74735b5d6c0000001063617465676f726965735f73697a65735b5d6c0000000c64656661756c745f6c6566745b4c00000000000000014c00000000000000014c00000000000000004c00000000000000004c00000000000000005d6c0000000269644c00000000000000026c0000000d6c6566745f6368696c6472656e5b4c00000000000000014c00000000000000034cffffffffffffffff4cffffffffffffffff4cffffffffffffffff5d6c0000000c6c6f73735f6368616e6765735b2464236c0000000541b68bec41408d18900000000000000000000000006c00000007706172656e74735b4c000000007fffffff4c00000000000000004c00000000000000004c00000000000000014c00000000000000015d6c0000000e72696768745f6368696c6472656e5b4c00000000000000024c00000000000000044cffffffffffffffff4cffffffffffffffff4cffffffffffffffff5d6c0000001073706c69745f636f6e646974696f6e735b2464236c000000054040000040000000bedbbf053b52f90e3f0105216c0000000d73706c69745f696e64696365735b4c00000000000000024c00000000000000024c00000000000000004c00000000000000004c00000000000000005d6c0000000a73706c69745f747970655b4c00000000000000004c00000000000000004c00000000000000004c00000000000000004c00000000000000005d6c0000000b73756d5f6865737369616e5b2464236c000000054216db0941f68acf40dcad0e41b8b94440f7462e6c0000000a747265655f706172616d7b6c0000000b6e756d5f64656c65746564536c00000001306c0000000b6e756d5f66656174757265536c00000001336c000000096e756d5f6e6f646573536c00000001356c0000001073697a655f6c6561665f766563746f72536c00000001307d7d5d7d6c000000046e616d65536c000000066762747265657d6c000000136c6561726e65725f6d6f64656c5f706172616d7b6c0000000a626173655f73636f7265536c0000000435452d316c00000012626f6f73745f66726f6d5f61766572616765536c00000001316c000000096e756d5f636c617373536c00000001306c0000000b6e756d5f66656174757265536c00000001336c0000000a6e756d5f746172676574536c00000001317d6c000000096f626a6563746976657b6c000000046e616d65536c0000000f62696e6172793a6c6f6769737469636c0000000e7265675f6c6f73735f706172616d7b6c000000107363616c655f706f735f776569676874536c00000001317d7d7d6c0000000776657273696f6e5b4c00000000000000014c00000000000000074c00000000000000045d7d', 'hex') AS b;
CREATE TEMP TABLE rnd AS SELECT decode(string_agg(md5(g::text), '' ORDER BY g), 'hex') AS b FROM generate_series(1, 64) g;

\pset format unaligned
\pset tuples_only on
SELECT q || E'\n    -> ' || pg_temp.try(q) FROM (VALUES
 -- cs.predict / cs.model_margin: the C entry points that read a features array
 ($$SELECT cs.predict(NULL, array_fill(1::float4, ARRAY[36]))$$),
 ($$SELECT cs.predict('churn_default', NULL)$$),
 ($$SELECT cs.predict('churn_default', '{}'::float4[])$$),
 ($$SELECT cs.predict('churn_default', array_fill(1::float4, ARRAY[35]))$$),
 ($$SELECT cs.predict('churn_default', array_fill(1::float4, ARRAY[1000000]))$$),
 ($$SELECT cs.predict('churn_default', array_fill(1::float4, ARRAY[5, 6]))$$),
 ($$SELECT cs.predict('churn_default', array_fill(1::float4, ARRAY[36], ARRAY[-7]))$$),
 ($$SELECT round(cs.predict('churn_default', array_fill('NaN'::float4, ARRAY[36]))::numeric, 6)$$),
 ($$SELECT cs.predict('churn_default', array_fill('Infinity'::float4, ARRAY[36]))$$),
 ($$SELECT cs.predict('churn_default', array_fill('-Infinity'::float4, ARRAY[36]))$$),
 ($$SELECT round(cs.predict('churn_default', array_fill(3.4e38::float4, ARRAY[36]))::numeric, 6)$$),
 ($$SELECT cs.predict('churn_default', array_cat(array_fill(1::float4, ARRAY[35]), ARRAY[NULL::float4]))$$),
 ($$SELECT cs.predict('no_such_model', array_fill(1::float4, ARRAY[36]))$$),
 ($$SELECT cs.predict('', array_fill(1::float4, ARRAY[36]))$$),
 ($$SELECT cs.predict(repeat('x', 10000), array_fill(1::float4, ARRAY[36]))$$),
 ($$SELECT cs.model_margin('churn_default', '{}'::float4[])$$),
 ($$SELECT cs.model_margin('churn_default', array_fill('Infinity'::float4, ARRAY[36]))$$),
 -- explanations
 ($$SELECT count(*) FROM cs.explain('churn_default', array_fill(1::float4, ARRAY[36]), 0)$$),
 ($$SELECT count(*) FROM cs.explain('churn_default', array_fill(1::float4, ARRAY[36]), -2147483648)$$),
 ($$SELECT count(*) FROM cs.explain('churn_default', array_fill(1::float4, ARRAY[36]), 2147483647)$$),
 ($$SELECT count(*) FROM cs.explain('churn_default', array_fill(1::float4, ARRAY[3]), 5)$$),
 ($$SELECT count(*) FROM cs.explain('churn_default', array_fill('Infinity'::float4, ARRAY[36]), 5)$$),
 ($$SELECT cs.explain_json('churn_default', '{}'::float4[], 5)$$),
 ($$SELECT cs.explain_json('no_such_model', array_fill(1::float4, ARRAY[36]), 5)$$),
 -- cs.load_model: model bytes
 ($$SELECT cs.load_model('h', 'churn', NULL)$$),
 ($$SELECT cs.load_model('h', 'churn', ''::bytea)$$),
 ($$SELECT cs.load_model('h', 'churn', '   '::bytea)$$),
 ($$SELECT cs.load_model('h', 'churn', '{'::bytea)$$),
 ($$SELECT cs.load_model('h', 'churn', '[1, 2]'::bytea)$$),
 ($$SELECT cs.load_model('h', 'churn', '{"learner": 1}'::bytea)$$),
 ($$SELECT cs.load_model('h', 'churn', '{"learner": {}, "learner": {}}'::bytea)$$),
 ($$SELECT cs.load_model('h', 'churn', convert_to('{"learner": {"gradient_booster": {"model": {"trees": [{"left_children": [99], "right_children": [99]}]}}}}', 'UTF8'))$$),
 ($$SELECT cs.load_model('h', 'churn', substr((SELECT model FROM m), 1, 4000))$$),
 ($$SELECT cs.load_model('h', 'churn', substr((SELECT model FROM m), 1, length((SELECT model FROM m)) - 1))$$),
 ($$SELECT cs.load_model('h', 'churn', (SELECT model FROM m) || '}'::bytea)$$),
 ($$SELECT cs.load_model('h', 'churn', (SELECT b FROM rnd))$$),
 ($$SELECT cs.load_model('h', 'churn', '\x7b'::bytea || (SELECT b FROM rnd))$$),
 ($$SELECT cs.load_model('h', 'churn', '\x7b6c7fffffff'::bytea)$$),
 ($$SELECT cs.load_model('h', 'churn', '\x7b23 4c 7fffffffffffffff'::bytea)$$),
 ($$SELECT cs.load_model('h', 'churn', decode('7b' || repeat('5b', 200), 'hex'))$$),
 ($$SELECT cs.load_model('h', 'churn', (SELECT b FROM finding))$$),
 ($$SELECT cs.load_model('h', 'no_such_kind', (SELECT model FROM m))$$),
 ($$SELECT cs.load_model('', 'churn', (SELECT model FROM m))$$),
 ($$SELECT cs.load_model('h', 'churn', (SELECT model FROM m), ARRAY['a', 'b'])$$),
 ($$SELECT cs.load_model('h', 'churn', (SELECT model FROM m), '{}'::text[])$$),
 ($$SELECT cs.load_model('h', 'churn', (SELECT model FROM m), array_fill(NULL::text, ARRAY[36]))$$),
 ($$SELECT cs.load_model_file('h', 'churn', '../../../etc/passwd')$$),
 ($$SELECT cs.load_model_file('h', 'churn', 'no_such_file.json')$$),
 ($$SELECT cs.load_model_file('h', 'churn', '')$$),
 ($$SELECT cs.load_model_file('h', 'churn', NULL)$$),
 ($$SELECT cs.deploy_model('no_such_model', 1)$$),
 ($$SELECT cs.deploy_model('churn_default', -1)$$),
 ($$SELECT cs.deploy_model(NULL, NULL)$$),
 -- cs.train_model: the training query and parameters
 ($$SELECT cs.train_model('h', 'custom', '', '{}')$$),
 ($$SELECT cs.train_model('h', 'custom', 'SELECT 1', '{}')$$),
 ($$SELECT cs.train_model('h', 'custom', 'not sql at all', '{}')$$),
 ($$SELECT cs.train_model('h', 'custom', 'SELECT NULL::float4[] AS features, true AS label WHERE false', '{}')$$),
 ($$SELECT cs.train_model('h', 'custom', 'SELECT NULL::float4[] AS features, true AS label', '{}')$$),
 ($$SELECT cs.train_model('h', 'churn', 'SELECT ARRAY[1, 2]::float4[] AS features, (g % 2 = 0) AS label FROM generate_series(1, 100) g', '{}')$$),
 ($$SELECT cs.train_model('h', 'custom', 'SELECT CASE WHEN g = 5 THEN ARRAY[1]::float4[] ELSE ARRAY[g, 1]::float4[] END AS features, (g % 2 = 0) AS label FROM generate_series(1, 100) g', '{}')$$),
 ($$SELECT cs.train_model('h', 'custom', 'SELECT ARRAY[g, 1]::float4[] AS features, NULL::boolean AS label FROM generate_series(1, 100) g', '{}')$$),
 ($$SELECT cs.train_model('h', 'custom', 'SELECT ARRAY[g, ''Infinity'']::float4[] AS features, (g % 2 = 0) AS label FROM generate_series(1, 100) g', '{}')$$),
 ($$SELECT cs.train_model('h', 'custom', 'SELECT ARRAY[g, 1]::float4[] AS features, (g % 2 = 0) AS label FROM generate_series(1, 100) g', '[1, 2]')$$),
 ($$SELECT cs.train_model('h', 'custom', 'SELECT ARRAY[g, 1]::float4[] AS features, (g % 2 = 0) AS label FROM generate_series(1, 100) g', '{"num_round": 1e12}')$$),
 ($$SELECT cs.train_model('h', 'custom', 'SELECT ARRAY[g, 1]::float4[] AS features, (g % 2 = 0) AS label FROM generate_series(1, 100) g', '{"no_such_param": 1}')$$),
 ($$SELECT cs.train_model('h', 'custom', 'DELETE FROM cs.alerts RETURNING NULL::float4[] AS features, true AS label', '{}')$$),
 -- array helpers in C
 ($$SELECT cs.feature_vector(NULL)$$),
 ($$SELECT cs.feature_vector('{}')$$),
 ($$SELECT cs.feature_vector(ARRAY[1e300, -1e300, 'NaN', 'Infinity']::float8[])$$),
 ($$SELECT cs.feature_vector(array_fill(1::float8, ARRAY[2, 2]))$$),
 ($$SELECT cs.interpolate(0.5, ARRAY[1, 2], ARRAY[1])$$),
 ($$SELECT cs.interpolate(0.5, '{}', '{}')$$),
 ($$SELECT cs.interpolate('NaN', ARRAY[1, 2], ARRAY[1, 2])$$),
 ($$SELECT cs.interpolate('Infinity', ARRAY[1, 2], ARRAY[0, 1])$$),
 ($$SELECT cs.interpolate(1, ARRAY[2, 1], ARRAY[1, 2])$$),
 ($$SELECT cs.interpolate(1, ARRAY['NaN', 1]::float8[], ARRAY[1, 2])$$),
 ($$SELECT cs.interpolate(1, ARRAY[1, NULL], ARRAY[1, 2])$$),
 ($$SELECT cs.percentile_rank('{}', 1)$$),
 ($$SELECT cs.percentile_rank(ARRAY[1, 2, 3], 'NaN')$$),
 ($$SELECT cs.percentile_rank(ARRAY[1, NULL, 3], 2)$$),
 ($$SELECT cs.percentile_rank(array_fill(1::float8, ARRAY[2, 2]), 1)$$),
 ($$SELECT cs.present_share('{}')$$),
 ($$SELECT cs.present_share(array_fill('NaN'::float4, ARRAY[36]))$$),
 ($$SELECT cs.risk_confidence('{}', 'NaN')$$),
 ($$SELECT cs.usage_summary(NULL, NULL, 'NaN', now(), now()) FROM (VALUES (1)) v$$),
 ($$SELECT cs.usage_summary('u', 'f', 1, 'infinity', '-infinity') FROM (VALUES (1)) v$$),
 -- customers: NULL and unknown ids
 ($$SELECT cs.features(NULL)$$),
 ($$SELECT cs.features('00000000-0000-0000-0000-00000000dead')$$),
 ($$SELECT cs.features('00000000-0000-0000-0000-000000000001', 'infinity')$$),
 ($$SELECT count(*) FROM cs.compute_features(NULL, NULL)$$),
 ($$SELECT cs.health_score('00000000-0000-0000-0000-00000000dead')$$),
 ($$SELECT cs.churn_risk('00000000-0000-0000-0000-00000000dead')$$),
 ($$SELECT count(*) FROM cs.explain_risk('00000000-0000-0000-0000-000000000001', 0)$$),
 ($$SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-00000000dead']::uuid[])$$),
 ($$SELECT cs.refresh('{}'::uuid[])$$),
 ($$SELECT cs.refresh_batch(0)$$),
 ($$SELECT cs.refresh_batch(-1)$$),
 ($$SELECT cs.purge_customer('00000000-0000-0000-0000-00000000dead', 'x')$$),
 ($$SELECT cs.build_training_set('{}'::date[])$$),
 ($$SELECT cs.build_training_set(ARRAY['infinity']::date[])$$),
 -- alerts and actions
 ($$SELECT cs.acknowledge_alert(NULL)$$),
 ($$SELECT cs.acknowledge_alert('00000000-0000-0000-0000-00000000dead')$$),
 ($$SELECT cs.resolve_alert('00000000-0000-0000-0000-00000000dead')$$),
 ($$SELECT cs.dismiss_alert('00000000-0000-0000-0000-00000000dead')$$),
 ($$SELECT cs.snooze_alert('00000000-0000-0000-0000-00000000dead', 'infinity')$$),
 ($$SELECT cs.reassign_alert('00000000-0000-0000-0000-00000000dead', '')$$),
 ($$SELECT cs.record_feedback('00000000-0000-0000-0000-00000000dead', 'accuracy', 6)$$),
 ($$SELECT cs.record_feedback('00000000-0000-0000-0000-00000000dead', 'taste', 3)$$),
 ($$SELECT cs.record_action('00000000-0000-0000-0000-00000000dead', 'x', 'won')$$),
 ($$SELECT cs.record_action(NULL, NULL)$$),
 -- conditions, severities and templates (stored by admins, checked on write)
 ($$SELECT cs.validate_condition('{"feature": "no_such_feature", "op": ">", "value": 1}')$$),
 ($$SELECT cs.validate_condition('{"feature": "usage_trend_30d", "op": "; DROP", "value": 1}')$$),
 ($$SELECT cs.validate_condition('{"feature": "usage_trend_30d", "op": ">", "value": "NaN"}')$$),
 ($$SELECT cs.validate_condition('{"all": []}')$$),
 ($$SELECT cs.validate_condition('[1, 2]')$$),
 ($$SELECT cs.validate_condition('null')$$),
 ($$SELECT cs.validate_condition(NULL)$$),
 ($$SELECT cs.validate_condition((repeat('{"not": ', 100) || '{"band": "red"}' || repeat('}', 100))::jsonb)$$),
 ($$SELECT cs.validate_condition('{"band": "red"')$$),
 ($$SELECT cs.condition_holds('{"band": "red"}', NULL)$$),
 ($$SELECT cs.condition_holds('{"feature": "usage_trend_30d", "op": ">", "value": 1}', '{"features": {"usage_trend_30d": "NaN"}}')$$),
 ($$SELECT cs.alert_severity('{"feature": "x"}', '{"high": "oops"}', 'medium', '{}')$$),
 ($$SELECT cs.check_template('Hello {no_such_placeholder}')$$),
 ($$SELECT cs.check_template('Hello {name')$$),
 ($$SELECT cs.fill_template('{name}', NULL)$$),
 ($$SELECT cs.fill_template(repeat('{name}', 10000), '{"name": "x"}')$$),
 ($$SELECT cs.render_template('{name}', '00000000-0000-0000-0000-00000000dead')$$),
 ($$SELECT cs.suggest_actions('{}'::text[], '{}'::jsonb, -1)$$),
 ($$SELECT cs.suggest_actions(NULL::text[], NULL::jsonb)$$),
 ($$SELECT count(*) FROM cs.rank_playbooks(ARRAY[NULL]::text[])$$),
 ($$SELECT cs.feature_map(array_fill(1::float4, ARRAY[3]))$$),
 ($$SELECT cs.feature_map(NULL)$$),
 ($$SELECT cs.spark('NaN')$$),
 ($$SELECT cs.spark(-5)$$),
 ($$SELECT cs.severity_rank('apocalyptic')$$),
 ($$SELECT cs.champion('no_such_kind')$$),
 -- loading and housekeeping
 ($$SELECT cs.ensure_usage_partitions('2026-01-01', '2025-01-01')$$),
 ($$SELECT cs.ensure_usage_partitions('0001-01-01', '9999-12-31')$$),
 ($$SELECT cs.ensure_usage_partitions(NULL, NULL)$$),
 ($$SELECT cs.generate_demo_data(0)$$),
 ($$SELECT cs.generate_demo_data(10, 0)$$),
 ($$SELECT cs.generate_demo_data(2147483647)$$),
 ($$SELECT cs.generate_demo_data(10, 10, 1, 'infinity')$$),
 ($$SELECT cs.grant_role('root', 'postgres')$$),
 ($$SELECT cs.visible_customer(NULL)$$)
) v (q);
\pset format aligned
\pset tuples_only off

-- the backend survived all of it and still scores
SELECT round(cs.predict('churn_default', array_fill(1::float4, ARRAY[36]))::numeric, 6) AS still_scores;
SELECT count(*) AS models FROM cs.models;
