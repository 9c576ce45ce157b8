-- ALTER EXTENSION UPDATE from every released version: install the released
-- script (cscopilot--0.1.0.sql, then cscopilot--0.2.0.sql), load a little
-- data, update (0.1.0 goes through 0.2.0), and compare every schema object
-- with a fresh install of the current version.  Any difference is listed with
-- the version it came from and the side it is on: an object the upgrade script
-- misses shows up as "fresh only".
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot VERSION '0.1.0';
SET client_min_messages = notice;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

SELECT extversion FROM pg_extension WHERE extname = 'cscopilot';
SELECT version FROM pg_available_extension_versions WHERE name = 'cscopilot' ORDER BY 1;

-- Privileges as a sorted list: the order of the items of an ACL is that of the
-- grants, and an upgrade re-grants to roles that already hold privileges.
CREATE FUNCTION pg_temp.acl(a aclitem[]) RETURNS text LANGUAGE sql IMMUTABLE
RETURN (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(a) x)::text;

-- Everything an upgrade must reproduce, by name (no OIDs, no column numbers).
CREATE TEMP VIEW cs_objects (kind, name, definition) AS
SELECT 'relation', c.relname, concat_ws(' ', c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
       c.reloptions::text, pg_temp.acl(c.relacl), obj_description(c.oid, 'pg_class'))
  FROM pg_class c WHERE c.relnamespace = 'cs'::regnamespace
UNION ALL
SELECT 'column', c.relname || '.' || a.attname,
       concat_ws(' ', format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, a.attgenerated,
                 pg_get_expr(d.adbin, d.adrelid), pg_temp.acl(a.attacl), col_description(c.oid, a.attnum))
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT 'constraint', c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = 'cs'::regnamespace
UNION ALL
SELECT 'index', i.relname, pg_get_indexdef(i.oid)
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE i.relnamespace = 'cs'::regnamespace
UNION ALL
SELECT 'trigger', c.relname || '.' || t.tgname, concat_ws(' ', pg_get_triggerdef(t.oid), t.tgenabled,
       obj_description(t.oid, 'pg_trigger'))
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'cs'::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'policy', c.relname || '.' || p.polname,
       concat_ws(' ', p.polcmd, p.polpermissive, p.polroles::regrole[]::text, pg_get_expr(p.polqual, p.polrelid),
                 pg_get_expr(p.polwithcheck, p.polrelid), obj_description(p.oid, 'pg_policy'))
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = 'cs'::regnamespace
UNION ALL
SELECT 'view', c.relname, pg_get_viewdef(c.oid)
  FROM pg_class c WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('v', 'm')
UNION ALL
SELECT 'function', p.oid::regprocedure::text,
       concat_ws(' ', p.prokind, p.prorettype::regtype, p.provolatile, p.proparallel, p.prosecdef, p.proisstrict,
                 p.proretset, p.proconfig::text, pg_temp.acl(p.proacl), md5(p.prosrc), p.probin,
                 obj_description(p.oid, 'pg_proc'))
  FROM pg_proc p WHERE p.pronamespace = 'cs'::regnamespace
UNION ALL
SELECT 'type', t.typname, concat_ws(' ', t.typtype, pg_temp.acl(t.typacl))
  FROM pg_type t WHERE t.typnamespace = 'cs'::regnamespace
UNION ALL
SELECT 'member', pg_describe_object(d.classid, d.objid, d.objsubid), NULL
  FROM pg_depend d
 WHERE d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'cscopilot')
UNION ALL
SELECT 'dumped', cfg::regclass::text, cond
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u (cfg, cond)
 WHERE e.extname = 'cscopilot'
UNION ALL
SELECT 'schema', n.nspname, concat_ws(' ', pg_temp.acl(n.nspacl), obj_description(n.oid, 'pg_namespace'))
  FROM pg_namespace n WHERE n.nspname = 'cs';

-- a little data in a released version (PL/pgSQL, like shipped_rows below)
CREATE FUNCTION pg_temp.load_data() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm) VALUES
     ('00000000-0000-0000-0000-000000000001', 'u1', 'Umbrella', 'smb', 100, 10, 'csm_u'),
     ('00000000-0000-0000-0000-000000000002', 'u2', 'Initech', 'mid_market', 900, 40, 'csm_u');
    INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
    SELECT '00000000-0000-0000-0000-000000000001', 'u' || (g % 3), 'login', now() - g * interval '1 day'
      FROM generate_series(1, 20) g;
    INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('custom_red', 'risk', '{"band": "red"}');
    INSERT INTO cs.alerts (customer_id, alert_type, severity, title)
    VALUES ('00000000-0000-0000-0000-000000000002', 'risk', 'high', 'Open before the upgrade');
    -- alerts without a customer (model, data), two of them unresolved for the
    -- same model, with their events and a rating
    INSERT INTO cs.alerts (id, alert_type, severity, title, risk_factors, status, created_at) VALUES
     ('00000000-0000-0000-0000-0000000000a1', 'model', 'high', 'Input drift (act) for model m:v1',
      '{"model": "m:v1", "drift": "act"}', 'open', now() - interval '2 days'),
     ('00000000-0000-0000-0000-0000000000a2', 'model', 'medium', 'Input drift (watch) for model m:v1',
      '{"model": "m:v1", "drift": "watch"}', 'acknowledged', now() - interval '1 day'),
     ('00000000-0000-0000-0000-0000000000a3', 'data', 'low', 'Data quality: freshness s',
      '{"check": "freshness", "subject": "s"}', 'resolved', now() - interval '3 days');
    INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, at) VALUES
     ('00000000-0000-0000-0000-0000000000a1', 'created', NULL, 'open', now() - interval '2 days'),
     ('00000000-0000-0000-0000-0000000000a2', 'created', NULL, 'open', now() - interval '1 day'),
     ('00000000-0000-0000-0000-0000000000a2', 'acknowledged', 'open', 'acknowledged', now() - interval '1 hour'),
     ('00000000-0000-0000-0000-0000000000a3', 'created', NULL, 'open', now() - interval '3 days'),
     ('00000000-0000-0000-0000-0000000000a3', 'resolved', 'open', 'resolved', now() - interval '2 days');
    INSERT INTO cs.alert_feedback (alert_id, feedback_type, rating) VALUES ('00000000-0000-0000-0000-0000000000a1', 'accuracy', 4);
    RETURN cs.refresh_all();
END;
$$;
SELECT pg_temp.load_data();

-- The rows an install ships in configuration tables (without ids and times), and
-- the churn champion: an upgrade must bring them to what a fresh install has.
-- (PL/pgSQL: no dependency on the extension's tables, which are dropped below.)
CREATE FUNCTION pg_temp.shipped_rows() RETURNS TABLE (tab text, "row" jsonb) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    SELECT 'feature_catalog', to_jsonb(t) FROM cs.feature_catalog t
    UNION ALL SELECT 'health_profiles', to_jsonb(t) - '{id,updated_at}'::text[] FROM cs.health_profiles t
    UNION ALL SELECT 'alert_rules', to_jsonb(t) - '{id,created_at,updated_at}'::text[] FROM cs.alert_rules t
    UNION ALL SELECT 'playbooks', to_jsonb(t) - '{id,created_at,updated_at}'::text[] FROM cs.playbooks t
    UNION ALL SELECT 'text_category_rules', to_jsonb(t) - '{id}'::text[] FROM cs.text_category_rules t
    UNION ALL SELECT 'text_category_filters', to_jsonb(t) FROM cs.text_category_filters t
    UNION ALL SELECT 'data_sources', to_jsonb(t) - '{id,created_at,updated_at}'::text[] FROM cs.data_sources t
    UNION ALL SELECT 'data_quality_settings', to_jsonb(t) FROM cs.data_quality_settings t
    UNION ALL SELECT 'churn champion', jsonb_build_object('name', m.name, 'objective', m.objective,
                         'features', m.feature_names, 'model', md5(m.model), 'metrics', m.metrics,
                         'training_data', m.training_data)
                FROM cs.models m WHERE m.kind = 'churn' AND m.status = 'champion';
END;
$$;

ALTER EXTENSION cscopilot UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'cscopilot';

-- the data came through; the retrained shipped model is the champion, the 0.1.0 one (as shipped) retired
SELECT (SELECT count(*) FROM cs.customers) AS customers, (SELECT count(*) FROM cs.usage_events) AS events,
       (SELECT count(*) FROM cs.alert_rules WHERE name = 'custom_red') AS custom_rule,
       (SELECT count(*) FROM cs.customer_health_scores) AS health_rows;
SELECT name, version, status, cardinality(feature_names) AS features FROM cs.models ORDER BY name, version;
-- an open alert's MRR at risk (a new column) is the customer's MRR, as cs.risk_alerts showed in 0.1.0
SELECT name, title, mrr_at_risk FROM cs.risk_alerts ORDER BY name COLLATE "C", title COLLATE "C";
-- alerts without a customer moved to cs.system_alerts with their ids and
-- events (the older of two unresolved alerts of one model resolved); every
-- alert left in cs.alerts has its customer
CREATE FUNCTION pg_temp.system_alerts() RETURNS TABLE (id uuid, alert_type text, status text, events text[], customer_alerts bigint,
                                                      feedback bigint)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    SELECT s.id, s.alert_type::text, s.status::text,
           ARRAY(SELECT e.event || ':' || coalesce(e.from_status, '') || '>' || e.to_status
                   FROM cs.system_alert_events e WHERE e.alert_id = s.id ORDER BY e.id),
           (SELECT count(*) FROM cs.alerts), (SELECT count(*) FROM cs.system_alert_feedback f WHERE f.alert_id = s.id)
      FROM cs.system_alerts s ORDER BY s.id;
END;
$$;
SELECT * FROM pg_temp.system_alerts();

CREATE TEMP TABLE upgraded AS SELECT '0.1.0' AS path, * FROM cs_objects;
CREATE TEMP TABLE upgraded_rows AS
SELECT '0.1.0' AS path, * FROM pg_temp.shipped_rows() AS r WHERE r.row ->> 'name' IS DISTINCT FROM 'custom_red';

-- the upgraded database refreshes and scores on the 36 features
SELECT cs.refresh_all() AS refreshed;
SELECT count(*) AS assessments, min(cardinality(f.features)) AS features
  FROM cs.risk_assessments r JOIN cs.customer_features f USING (customer_id)
 WHERE r.model_version = 'churn_default:v2';
CREATE TEMP TABLE upgraded_scores AS
SELECT c.id, round(cs.churn_risk(c.id)::numeric, 6) AS churn_risk,
       (SELECT round(h.overall_score, 4) FROM cs.customer_health_scores h WHERE h.customer_id = c.id
         ORDER BY h.calculated_at DESC LIMIT 1) AS health
  FROM cs.customers c;

-- the same from 0.2.0
SET client_min_messages = warning;
DROP EXTENSION cscopilot CASCADE;
CREATE EXTENSION cscopilot VERSION '0.2.0';
SET client_min_messages = notice;
SELECT pg_temp.load_data();
ALTER EXTENSION cscopilot UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'cscopilot';
SELECT (SELECT count(*) FROM cs.customers) AS customers, (SELECT count(*) FROM cs.usage_events) AS events,
       (SELECT count(*) FROM cs.alert_rules WHERE name = 'custom_red') AS custom_rule,
       (SELECT count(*) FROM cs.customer_health_scores) AS health_rows;
SELECT name, version, status, cardinality(feature_names) AS features FROM cs.models ORDER BY name, version;
SELECT * FROM pg_temp.system_alerts();
INSERT INTO upgraded SELECT '0.2.0', * FROM cs_objects;
INSERT INTO upgraded_rows SELECT '0.2.0', * FROM pg_temp.shipped_rows() AS r WHERE r.row ->> 'name' IS DISTINCT FROM 'custom_red';

SET client_min_messages = warning;
DROP EXTENSION cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET client_min_messages = notice;
CREATE TEMP TABLE fresh AS SELECT * FROM cs_objects;
CREATE TEMP TABLE fresh_rows AS SELECT * FROM pg_temp.shipped_rows() AS r;

SELECT count(*) > 500 AS many_objects FROM fresh;
SELECT path, count(*) = (SELECT count(*) FROM fresh) AS same_count FROM upgraded GROUP BY path ORDER BY path;
-- differences, per version upgraded from (none expected)
SELECT v.path, d.* FROM (SELECT DISTINCT path FROM upgraded) v, LATERAL (
  (SELECT 'upgraded only' AS side, u.kind, u.name, u.definition FROM upgraded u WHERE u.path = v.path
   EXCEPT SELECT 'upgraded only', * FROM fresh)
  UNION ALL
  (SELECT 'fresh only', * FROM fresh
   EXCEPT SELECT 'fresh only', u.kind, u.name, u.definition FROM upgraded u WHERE u.path = v.path)) d
ORDER BY d.kind, d.name, v.path, d.side;

-- the shipped rows: counts per table, then differences (none expected)
SELECT tab, count(*) FROM fresh_rows GROUP BY tab ORDER BY tab;
SELECT v.path, d.* FROM (SELECT DISTINCT path FROM upgraded_rows) v, LATERAL (
  (SELECT 'upgraded only' AS side, u.tab, u.row FROM upgraded_rows u WHERE u.path = v.path
   EXCEPT SELECT 'upgraded only', * FROM fresh_rows)
  UNION ALL
  (SELECT 'fresh only', * FROM fresh_rows
   EXCEPT SELECT 'fresh only', u.tab, u.row FROM upgraded_rows u WHERE u.path = v.path)) d
ORDER BY d.tab, v.path, d.side, d.row::text;

-- the same data in the fresh install scores as in the upgraded one
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm) VALUES
 ('00000000-0000-0000-0000-000000000001', 'u1', 'Umbrella', 'smb', 100, 10, 'csm_u'),
 ('00000000-0000-0000-0000-000000000002', 'u2', 'Initech', 'mid_market', 900, 40, 'csm_u');
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT '00000000-0000-0000-0000-000000000001', 'u' || (g % 3), 'login', now() - g * interval '1 day'
  FROM generate_series(1, 20) g;
SELECT cs.refresh_all() AS refreshed;
SELECT u.id, u.churn_risk IS NOT NULL AS scored,
       u.churn_risk = round(cs.churn_risk(u.id)::numeric, 6) AS same_risk,
       u.health IS NOT DISTINCT FROM (SELECT round(h.overall_score, 4) FROM cs.customer_health_scores h
                                       WHERE h.customer_id = u.id ORDER BY h.calculated_at DESC LIMIT 1) AS same_health
  FROM upgraded_scores u ORDER BY u.id;

-- A churn champion of the user's own stays the champion; the shipped model
-- arrives as a candidate.  Edited shipped rows, and a playbook of the user's
-- with the name of a new shipped one, stay as they are.
SET client_min_messages = warning;
DROP EXTENSION cscopilot CASCADE;
CREATE EXTENSION cscopilot VERSION '0.1.0';
SET client_min_messages = notice;
SELECT cs.load_model_file('my_churn', 'churn', 'churn_default-0.1.0.json') > 0 AS loaded;
SELECT cs.deploy_model('my_churn', 1);
UPDATE cs.alert_rules SET cooldown = '3 days' WHERE name = 'churn_risk_high';
INSERT INTO cs.playbooks (name, action, answers) VALUES ('cancellation_save_call', 'Our own save call', '{days_since_last_touch}');
ALTER EXTENSION cscopilot UPDATE;
SELECT name, version, status, cardinality(feature_names) AS features FROM cs.models ORDER BY name, version;
SELECT name, cooldown FROM cs.alert_rules WHERE name IN ('churn_risk_high', 'cancellation_intent') ORDER BY name;
SELECT name, action, template IS NULL AS own FROM cs.playbooks WHERE name = 'cancellation_save_call';
