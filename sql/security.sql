-- Least privilege and row-level security.  The first part asserts invariants
-- over the whole catalog, so an object added later that misses them fails
-- here; the second plays a viewer, two CSMs, a team lead and an admin.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET client_min_messages = notice;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

------------------------------------------------------------------------------
-- Invariants over the catalog (each query lists violations: expect none)
------------------------------------------------------------------------------

-- the three group roles exist, cannot log in, and nest admin > csm > viewer
SELECT rolname, rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname LIKE 'cscopilot\_%' ORDER BY 1;
SELECT pg_has_role('cscopilot_admin', 'cscopilot_csm', 'MEMBER') AS admin_is_csm,
       pg_has_role('cscopilot_csm', 'cscopilot_viewer', 'MEMBER') AS csm_is_viewer,
       pg_has_role('cscopilot_viewer', 'cscopilot_csm', 'MEMBER') AS viewer_is_csm;

-- every customer-scoped table (customer_id or alert_id column, or cs.customers) has RLS and a policy
SELECT c.relname AS without_rls
  FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND (c.relname = 'customers'
        OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname IN ('customer_id', 'alert_id')
                     AND NOT a.attisdropped))
   AND (NOT c.relrowsecurity OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid));
-- every policy is subquery-free (Citus refuses subqueries in policies of
-- distributed tables): customer-scoped tables filter on their own csm column
SELECT c.relname, p.polname, pg_get_expr(p.polqual, p.polrelid) AS policy_with_subquery
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = 'cs'::regnamespace
   AND (pg_get_expr(p.polqual, p.polrelid) ~* 'select' OR pg_get_expr(p.polwithcheck, p.polrelid) ~* 'select');
SELECT DISTINCT pg_get_expr(p.polqual, p.polrelid) AS customer_scope_predicate
  FROM pg_policy p WHERE p.polname = 'customer_scope'
   AND p.polrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'cs'::regnamespace);
-- every table with customer_id has a csm column stamped by the trigger
SELECT c.relname AS customer_table_without_csm_stamp
  FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND c.relname <> 'customers'
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_id' AND NOT a.attisdropped)
   AND (NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'csm' AND NOT a.attisdropped)
        OR NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'csm_stamp'
                         AND t.tgfoid = 'cs._stamp_csm()'::regprocedure));
-- and how many there are (a new one shows up here)
SELECT count(*) AS rls_tables FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relrowsecurity;

-- partitions are reachable only through their parent: nobody but the owner holds a privilege
SELECT c.relname AS partition_with_grants
  FROM pg_class c, aclexplode(c.relacl) x
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relispartition AND x.grantee <> c.relowner;

-- every view runs with the privileges and policies of its user; no materialized views
SELECT c.relname AS view_without_security_invoker, c.relkind
  FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('v', 'm')
   AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false);

-- nothing is granted to PUBLIC: schema, relations, functions, types
SELECT 'schema' AS kind, nspname::text AS name FROM pg_namespace, aclexplode(nspacl) x
 WHERE nspname = 'cs' AND x.grantee = 0
UNION ALL
SELECT 'relation', c.relname FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) x
 WHERE c.relnamespace = 'cs'::regnamespace AND x.grantee = 0
UNION ALL
SELECT 'function', p.oid::regprocedure::text FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x
 WHERE p.pronamespace = 'cs'::regnamespace AND x.grantee = 0
UNION ALL
SELECT 'type', t.typname FROM pg_type t, aclexplode(coalesce(t.typacl, acldefault('T', t.typowner))) x
 WHERE t.typnamespace = 'cs'::regnamespace AND t.typtype IN ('d', 'e', 'r', 'm') AND x.grantee = 0;

-- every relation is readable by viewers but the internal ones (admins only);
-- only admins write (CSMs through functions)
SELECT c.relname AS not_readable_by_viewer
  FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
   AND c.relname <> ALL (cs.internal_tables())
   AND NOT has_table_privilege('cscopilot_viewer', c.oid, 'SELECT');
SELECT n AS internal_table, to_regclass('cs.' || n) IS NOT NULL AS exists,
       has_table_privilege('cscopilot_viewer', 'cs.' || n, 'SELECT') AS viewer_reads,
       has_table_privilege('cscopilot_csm', 'cs.' || n, 'SELECT') AS csm_reads,
       has_table_privilege('cscopilot_admin', 'cs.' || n, 'SELECT, INSERT, UPDATE, DELETE') AS admin_writes
  FROM unnest(cs.internal_tables()) n ORDER BY n;
SELECT r.rolname, c.relname, p.priv AS unexpected_write
  FROM pg_class c
 CROSS JOIN (VALUES ('cscopilot_viewer'), ('cscopilot_csm')) r (rolname)
 CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) p (priv)
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND has_table_privilege(r.rolname, c.oid, p.priv);
-- not even one column: a CSM changes alerts only through the lifecycle functions
SELECT c.relname, a.attname AS csm_writable_column
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p')
   AND (has_column_privilege('cscopilot_csm', c.oid, a.attnum, 'UPDATE')
        OR has_column_privilege('cscopilot_csm', c.oid, a.attnum, 'INSERT'))
 ORDER BY 1, 2;
SELECT c.relname AS admin_cannot_write
  FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND NOT has_table_privilege('cscopilot_admin', c.oid, 'INSERT, UPDATE, DELETE');

-- admins execute everything; viewers and CSMs everything but the admin-only list
SELECT p.oid::regprocedure AS admin_cannot_execute
  FROM pg_proc p WHERE p.pronamespace = 'cs'::regnamespace
   AND NOT has_function_privilege('cscopilot_admin', p.oid, 'EXECUTE');
SELECT p.oid::regprocedure AS wrong_viewer_execute
  FROM pg_proc p WHERE p.pronamespace = 'cs'::regnamespace
   AND has_function_privilege('cscopilot_viewer', p.oid, 'EXECUTE') = (p.proname = ANY (cs.admin_only_functions()));
SELECT n AS admin_only_name_without_function
  FROM unnest(cs.admin_only_functions()) n
 WHERE NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = 'cs'::regnamespace AND p.proname = n);

-- SECURITY DEFINER functions pin search_path, with pg_temp last
SELECT p.oid::regprocedure AS definer_without_search_path
  FROM pg_proc p
 WHERE p.pronamespace = 'cs'::regnamespace AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) s WHERE s LIKE 'search\_path=%pg\_temp');
-- and they are exactly the CSM's write paths
SELECT p.oid::regprocedure AS wrong_security_definer, p.prosecdef
  FROM pg_proc p
 WHERE p.pronamespace = 'cs'::regnamespace
   AND p.prosecdef <> (p.proname = ANY (cs.csm_functions()));
SELECT n AS csm_function_without_function
  FROM unnest(cs.csm_functions()) n
 WHERE NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = 'cs'::regnamespace AND p.proname = n);

-- pg_dump keeps the rows of every table and sequence, but the documented two
SELECT c.relname AS not_dumped
  FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'S')
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'cscopilot')::oid[])
 ORDER BY 1;
-- and every table that is not a partition lets a restore replace its shipped rows
SELECT c.relname AS without_restore_trigger
  FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind = 'r' AND NOT c.relispartition
   AND c.relname NOT IN ('dirty_customers', '_shipped_rows')
   AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'replace_shipped_rows');
SELECT tab, count(*) AS shipped_rows FROM cs._shipped_rows GROUP BY tab ORDER BY tab;

------------------------------------------------------------------------------
-- Roles at work
------------------------------------------------------------------------------

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_cs_alice;
DROP ROLE IF EXISTS regress_cs_bob;
DROP ROLE IF EXISTS regress_cs_lead;
DROP ROLE IF EXISTS regress_cs_boss;
DROP ROLE IF EXISTS regress_cs_eve;
DROP ROLE IF EXISTS regress_cs_vic;
SET client_min_messages = notice;
CREATE ROLE regress_cs_alice;
CREATE ROLE regress_cs_bob;
CREATE ROLE regress_cs_lead IN ROLE regress_cs_alice, regress_cs_bob;
CREATE ROLE regress_cs_boss;
CREATE ROLE regress_cs_eve;
CREATE ROLE regress_cs_vic;
SELECT cs.grant_role('csm', 'regress_cs_alice'), cs.grant_role('csm', 'regress_cs_bob'),
       cs.grant_role('viewer', 'regress_cs_lead'), cs.grant_role('cscopilot_admin', 'regress_cs_boss'),
       cs.grant_role('viewer', 'regress_cs_vic');
SELECT cs.grant_role('root', 'regress_cs_eve');
SELECT cs.grant_role('admin', 'regress_cs_nobody');
SELECT cs.grant_role(NULL, 'regress_cs_eve');

INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm) VALUES
 ('00000000-0000-0000-0000-00000000000a', 'a1', 'Alpha', 'smb', 100, 10, 'regress_cs_alice'),
 ('00000000-0000-0000-0000-00000000000b', 'a2', 'Beta', 'smb', 200, 10, 'regress_cs_alice'),
 ('00000000-0000-0000-0000-00000000000c', 'b1', 'Gamma', 'smb', 300, 10, 'regress_cs_bob'),
 ('00000000-0000-0000-0000-00000000000d', 'v1', 'Delta', 'smb', 400, 10, 'regress_cs_vic'),
 ('00000000-0000-0000-0000-00000000000f', 'x1', 'Zeta', 'smb', 400, 10, 'nobody_in_particular'),
 ('00000000-0000-0000-0000-00000000000e', 'x2', 'Epsilon', 'smb', 500, 10, NULL);
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score)
SELECT id, 'churn', 0.95 FROM cs.customers;
INSERT INTO cs.engagements (customer_id, kind, occurred_at)
SELECT id, 'call', '2026-01-01' FROM cs.customers;
SELECT created FROM cs.evaluate_alerts(ARRAY(SELECT id FROM cs.customers));

-- a CSM sees their own customers in every customer-scoped table and view
SET ROLE regress_cs_alice;
SELECT name FROM cs.customers ORDER BY name;
SELECT (SELECT count(*) FROM cs.risk_assessments) AS risks, (SELECT count(*) FROM cs.engagements) AS engagements,
       (SELECT count(*) FROM cs.alerts) AS alerts, (SELECT count(*) FROM cs.alert_events) AS events,
       (SELECT count(*) FROM cs.risk_alerts) AS risk_alerts_view, (SELECT count(*) FROM cs.dirty_customers) AS dirty;
SELECT cs.visible_customer('00000000-0000-0000-0000-00000000000a') AS own, cs.visible_customer('00000000-0000-0000-0000-00000000000c') AS bobs;
RESET ROLE;

-- the team lead, a member of both CSM roles, sees and works both portfolios
SET ROLE regress_cs_lead;
SELECT name FROM cs.customers ORDER BY name;
SELECT (cs.snooze_alert(a.id, '2030-01-01')).status FROM cs.alerts a WHERE a.customer_id = '00000000-0000-0000-0000-00000000000c';
RESET ROLE;

-- a viewer reads their customers and cannot act on them
SET ROLE regress_cs_vic;
SELECT name FROM cs.customers ORDER BY name;
SELECT cs.acknowledge_alert(a.id) FROM cs.alerts a WHERE a.customer_id = '00000000-0000-0000-0000-00000000000d';
SELECT cs.record_feedback(a.id, 'accuracy', 5) FROM cs.alerts a WHERE a.customer_id = '00000000-0000-0000-0000-00000000000d';
RESET ROLE;

-- an admin sees everything, also customers without a CSM, and may configure
SET ROLE regress_cs_boss;
SELECT count(*) AS customers, (SELECT count(*) FROM cs.alerts) AS alerts FROM cs.customers;
UPDATE cs.alert_rules SET cooldown = '3 days' WHERE name = 'churn_risk_high';
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-00000000000e']::uuid[]);
RESET ROLE;

-- alert lifecycle within the own portfolio
SET ROLE regress_cs_alice;
SELECT (cs.acknowledge_alert(a.id, 'calling them')).status FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000a';
SELECT cs.record_feedback(a.id, 'accuracy', 5) IS NOT NULL AS feedback FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000a';
SELECT cs.record_action(a.id, 'executive_sponsor_call') IS NOT NULL AS action FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000b';
SELECT (cs.resolve_alert(a.id, 'saved')).status FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000a';
RESET ROLE;
-- the functions run as their owner but record the CSM
SELECT a.customer_id, e.event, e.actor, a.updated_by FROM cs.alert_events e JOIN cs.alerts a ON a.id = e.alert_id
 WHERE a.customer_id IN ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b')
 ORDER BY e.id;
SELECT user_id FROM cs.alert_feedback;
SELECT taken_by, playbook FROM cs.actions;

-- a malicious CSM: nothing outside the portfolio, no configuration, no SQL text, no escalation
SELECT a.id AS bobs_alert FROM cs.alerts a WHERE a.customer_id = '00000000-0000-0000-0000-00000000000c' \gset
INSERT INTO cs.system_alerts (id, alert_type, severity, title)
VALUES ('00000000-0000-0000-0000-0000000000f1', 'model', 'high', 'Model drift') RETURNING id AS model_alert \gset
SET ROLE regress_cs_alice;
\set VERBOSITY default
SELECT cs.acknowledge_alert(:'bobs_alert', 'mine now');
\set VERBOSITY terse
SELECT cs.resolve_alert(:'bobs_alert');
SELECT cs.dismiss_alert(:'bobs_alert');
SELECT cs.snooze_alert(:'bobs_alert', '2031-01-01');
SELECT cs.reassign_alert(:'bobs_alert', 'regress_cs_alice');
SELECT cs.record_action(:'bobs_alert', 'executive_sponsor_call');
SELECT cs.record_feedback(:'bobs_alert', 'accuracy', 1);
SELECT cs.acknowledge_alert(:'model_alert');
-- alerts without a customer are admins' only: a CSM reads none, the views
-- that list them too
SELECT (SELECT count(*) FROM cs.system_alerts) AS system_alerts, (SELECT count(*) FROM cs.system_alert_events) AS events,
       (SELECT count(*) FROM cs.all_alerts WHERE customer_id IS NULL) AS listed,
       (SELECT sum(alerts) FROM cs.metrics_alerts WHERE alert_type = 'model') AS counted;
-- no direct writes, not even to the own alerts: no skipped transition, no forged history
UPDATE cs.alerts SET status = 'dismissed' WHERE id = :'bobs_alert';
UPDATE cs.alerts SET status = 'open', resolved_at = NULL WHERE customer_id = '00000000-0000-0000-0000-00000000000a';
UPDATE cs.alerts SET title = 'harmless' WHERE customer_id = '00000000-0000-0000-0000-00000000000a';
INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, actor, at)
SELECT a.id, 'resolved', 'open', 'resolved', 'regress_cs_bob', '2020-01-01' FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000b';
INSERT INTO cs.alert_feedback (alert_id, user_id, feedback_type, rating)
SELECT a.id, 'regress_cs_bob', 'accuracy', 1 FROM cs.alerts a WHERE a.customer_id = '00000000-0000-0000-0000-00000000000b';
INSERT INTO cs.actions (customer_id, playbook, outcome, outcome_source)
VALUES ('00000000-0000-0000-0000-00000000000b', 'executive_sponsor_call', 'recovered', 'measured');
SELECT cs._alert_transition(a.id, 'reopened', ARRAY['resolved'], 'open', NULL) FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000a';
-- the SQLSTATEs: 42501 for a direct write, P0002 (no such alert) for another portfolio's alert
\set VERBOSITY sqlstate
UPDATE cs.alerts SET status = 'resolved' WHERE customer_id = '00000000-0000-0000-0000-00000000000b';
SELECT cs.resolve_alert(:'bobs_alert');
\set VERBOSITY default
UPDATE cs.customers SET csm = 'regress_cs_alice' WHERE id = '00000000-0000-0000-0000-00000000000c';
INSERT INTO cs.customers (external_id, name, csm) VALUES ('evil', 'Evil', 'regress_cs_alice');
DELETE FROM cs.alert_events;
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('evil', 'risk', '{"band": "red"}');
UPDATE cs.health_profiles SET weights = '{}';
UPDATE cs.playbooks SET template = '{customer_name}';
DELETE FROM cs.models;
SELECT cs.deploy_model('churn_default', 1);
SELECT cs.train_model('evil', 'churn', 'SELECT features, true AS label FROM cs.customer_features');
SELECT cs.load_model('evil', 'churn', '\x00'::bytea);
SELECT cs.refresh_all();
SELECT cs.purge_customer('00000000-0000-0000-0000-00000000000a', 'gone');
SELECT cs.grant_role('admin', 'regress_cs_alice');
CREATE FUNCTION cs.is_admin() RETURNS boolean LANGUAGE sql RETURN true;
CREATE TABLE cs.trojan (x int);
SET row_security = off;
SELECT count(*) FROM cs.customers;
RESET row_security;
\set VERBOSITY terse
SELECT count(*) AS still_visible FROM cs.customers;
RESET ROLE;
SELECT status FROM cs.alerts WHERE id = :'bobs_alert';
SELECT a.customer_id, a.status, (SELECT count(*) FROM cs.alert_events e WHERE e.alert_id = a.id) AS events
  FROM cs.alerts a WHERE a.customer_id IN ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b')
 ORDER BY 1;
SELECT count(*) AS feedback, (SELECT count(*) FROM cs.actions) AS actions FROM cs.alert_feedback;

-- an alert without a customer (model, data) is the admins' to work
SET ROLE regress_cs_boss;
SELECT (cs.acknowledge_alert(:'model_alert', 'looking')).status, (cs.resolve_alert(:'model_alert')).updated_by;
SELECT event, from_status, to_status, actor, note FROM cs.system_alert_events WHERE alert_id = :'model_alert' ORDER BY id;
SELECT customer_id, alert_type, status, updated_by FROM cs.all_alerts WHERE id = :'model_alert';
RESET ROLE;

-- the group role itself owns no customer
SET ROLE cscopilot_viewer;
SELECT count(*) AS group_role_sees FROM cs.customers;
RESET ROLE;

-- SQL text an admin may store or pass is checked: conditions are structured, training runs read-only
SET ROLE regress_cs_boss;
INSERT INTO cs.alert_rules (name, alert_type, condition)
VALUES ('injection', 'risk', '{"feature": "x''); DROP TABLE cs.customers; --", "op": ">", "value": 1}');
INSERT INTO cs.playbooks (name, action, answers, template)
VALUES ('injection', 'call', '{usage_trend_30d}', 'Hello {name}''; DROP TABLE cs.customers; --');
SELECT cs.render_template(template, '00000000-0000-0000-0000-00000000000a') FROM cs.playbooks WHERE name = 'injection';
SELECT cs.train_model('dml', 'churn', 'DELETE FROM cs.alert_events RETURNING NULL::float4[] AS features, true AS label');
SELECT count(*) > 0 AS events_kept FROM cs.alert_events;
RESET ROLE;

-- a superuser, and the owner, see everything
SELECT count(*) AS superuser_sees FROM cs.customers;

-- the cache of text signals: an admin's full refresh fills and reads it; a
-- viewer's features are computed without it, and the same
INSERT INTO cs.support_tickets (customer_id, opened_at, subject, body) VALUES
 ('00000000-0000-0000-0000-00000000000d', now() - interval '1 day', 'Renewal', 'We will cancel and switch to a competitor.');
SET ROLE regress_cs_boss;
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT source, sentiment < 0 AS negative, categories FROM cs.text_signals ORDER BY source, id;
SELECT (f.features)[34:35] AS admin_mentions FROM cs.customer_features f
 WHERE f.customer_id = '00000000-0000-0000-0000-00000000000d';
RESET ROLE;
SET ROLE regress_cs_vic;
SELECT (cs.features('00000000-0000-0000-0000-00000000000d'))[34:35] AS viewer_mentions;
SELECT count(*) FROM cs.text_signals;
SELECT cs._refresh_text_signals();
RESET ROLE;
SET ROLE regress_cs_alice;
SELECT count(*) FROM cs.text_signals;
RESET ROLE;

-- The csm on every customer-scoped row follows its customer: moving Beta from
-- alice to bob moves its health scores, alerts, usage events and
-- opportunities at once, for both of them.
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at) VALUES
 ('00000000-0000-0000-0000-00000000000b', 'u1', 'login', '2026-01-01'),
 ('00000000-0000-0000-0000-00000000000b', 'u2', 'login', '2026-01-02'),
 ('00000000-0000-0000-0000-00000000000c', 'u3', 'login', '2026-01-03');
INSERT INTO cs.opportunities (customer_id, kind, score, source)
VALUES ('00000000-0000-0000-0000-00000000000b', 'upsell', 0.5, 'csm');
SET ROLE regress_cs_alice;
SELECT count(cs.record_feedback(a.id, 'priority', 3)) AS alice_feedback FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000b';
RESET ROLE;
CREATE TEMP VIEW beta_rows WITH (security_invoker = true) AS
SELECT (SELECT count(*) FROM cs.customer_health_scores WHERE customer_id = '00000000-0000-0000-0000-00000000000b') AS health,
       (SELECT count(*) FROM cs.alerts WHERE customer_id = '00000000-0000-0000-0000-00000000000b') AS alerts,
       (SELECT count(*) FROM cs.alert_events WHERE customer_id = '00000000-0000-0000-0000-00000000000b') AS alert_events,
       (SELECT count(*) FROM cs.alert_feedback WHERE customer_id = '00000000-0000-0000-0000-00000000000b') AS feedback,
       (SELECT count(*) FROM cs.usage_events WHERE customer_id = '00000000-0000-0000-0000-00000000000b') AS usage_events,
       (SELECT count(*) FROM cs.opportunities WHERE customer_id = '00000000-0000-0000-0000-00000000000b') AS opportunities,
       (SELECT count(*) FROM cs.actions WHERE customer_id = '00000000-0000-0000-0000-00000000000b') AS actions;
GRANT SELECT ON beta_rows TO regress_cs_alice, regress_cs_bob;
SELECT 'owner' AS who, * FROM beta_rows;
SET ROLE regress_cs_alice;
SELECT 'alice before' AS who, * FROM beta_rows;
RESET ROLE;
SET ROLE regress_cs_bob;
SELECT 'bob before' AS who, * FROM beta_rows;
RESET ROLE;
UPDATE cs.customers SET csm = 'regress_cs_bob' WHERE id = '00000000-0000-0000-0000-00000000000b';
SET ROLE regress_cs_alice;
SELECT 'alice after' AS who, * FROM beta_rows;
SELECT cs.visible_customer('00000000-0000-0000-0000-00000000000b') AS alice_sees_beta;
RESET ROLE;
SET ROLE regress_cs_bob;
SELECT 'bob after' AS who, * FROM beta_rows;
SELECT cs.visible_customer('00000000-0000-0000-0000-00000000000b') AS bob_sees_beta;
RESET ROLE;
-- the SECURITY DEFINER functions follow the customer too
SET ROLE regress_cs_bob;
SELECT count(cs.record_feedback(a.id, 'relevance', 4)) AS bob_feedback FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000b';
RESET ROLE;
SET ROLE regress_cs_alice;
SELECT cs.record_feedback(a.id, 'relevance', 1) FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000b';
RESET ROLE;
-- a writer cannot set another csm: the customer's is stamped (insert and update)
SET ROLE regress_cs_boss;
INSERT INTO cs.engagements (customer_id, kind, occurred_at, csm)
VALUES ('00000000-0000-0000-0000-00000000000b', 'call', '2026-01-05', 'regress_cs_alice') RETURNING csm;
UPDATE cs.opportunities SET csm = 'regress_cs_alice' WHERE customer_id = '00000000-0000-0000-0000-00000000000b' RETURNING csm;
INSERT INTO cs.alert_feedback (alert_id, feedback_type, rating, csm)
SELECT a.id, 'accuracy', 3, 'regress_cs_alice' FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000b' RETURNING customer_id, csm;
-- feedback naming another customer than its alert's is refused (the foreign
-- key (customer_id, alert_id) -> cs.alerts)
\set VERBOSITY terse
INSERT INTO cs.alert_feedback (alert_id, customer_id, feedback_type, rating)
SELECT a.id, '00000000-0000-0000-0000-00000000000a', 'accuracy', 3 FROM cs.alerts a
 WHERE a.customer_id = '00000000-0000-0000-0000-00000000000b';
RESET ROLE;
-- model and data alerts have no customer: their feedback is not in
-- cs.alert_feedback (refused: no customer), but in cs.system_alert_feedback,
-- which an admin writes through cs.record_feedback and only admins read
INSERT INTO cs.alert_feedback (alert_id, feedback_type, rating) VALUES (:'model_alert', 'accuracy', 2);
\set VERBOSITY default
SELECT cs.record_feedback(:'model_alert', 'accuracy', 2) IS NOT NULL AS admin_rated_model_alert;
SELECT alert_id = :'model_alert' AS on_model_alert, rating FROM cs.system_alert_feedback;
SET ROLE regress_cs_alice;
SELECT count(*) AS alice_sees_model_feedback FROM cs.system_alert_feedback;
RESET ROLE;
-- every row of every stamped table carries its customer's csm (NULL without one)
DO $$
DECLARE
    t regclass;
    n bigint;
BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND c.relname <> 'customers'
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'csm')
              ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT count(*) FROM %s t LEFT JOIN cs.customers c ON c.id = t.customer_id
                         WHERE t.csm IS DISTINCT FROM c.csm', t) INTO n;
        IF n > 0 THEN
            RAISE NOTICE '% rows of % with another csm than their customer''s', n, t;
        END IF;
    END LOOP;
END;
$$;
-- a csm can change only in READ COMMITTED (a transaction snapshot would miss
-- rows loaded concurrently)
BEGIN ISOLATION LEVEL REPEATABLE READ;
UPDATE cs.customers SET csm = 'regress_cs_alice' WHERE id = '00000000-0000-0000-0000-00000000000b';
ROLLBACK;
DROP VIEW beta_rows;

DROP EXTENSION cscopilot CASCADE;
-- roles survive DROP EXTENSION (they are cluster-wide); CREATE EXTENSION reuses them
SELECT count(*) AS roles_left FROM pg_roles WHERE rolname LIKE 'cscopilot\_%';
CREATE EXTENSION cscopilot;
SELECT has_table_privilege('cscopilot_viewer', 'cs.customers', 'SELECT') AS viewer_reads_again;
DROP ROLE regress_cs_alice, regress_cs_bob, regress_cs_lead, regress_cs_boss, regress_cs_eve, regress_cs_vic;
