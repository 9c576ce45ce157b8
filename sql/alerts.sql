-- Alerts: rule validation, each default rule firing and its neighbour not firing,
-- severity, deduplication, escalation, NOTIFY payloads, auto-resolution, cooldown,
-- snooze, and every lifecycle transition with its invalid counterpart.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- start without the shipped churn model: this test's scores must not depend on it
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

------------------------------------------------------------------------------
-- rule validation: each bad rule is refused, naming the problem
------------------------------------------------------------------------------
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad1', 'risk', '{"feature": "logins_per_moon", "op": ">", "value": 1}');
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad2', 'risk', '{"feature": "last_nps", "op": "~", "value": 1}');
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad3', 'risk', '{"feature": "last_nps", "op": "<", "value": "6; DROP TABLE cs.alerts"}');
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad4', 'risk', '{"all": []}');
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad5', 'risk', '{"all": [{"band": "red"}, {"any": [{"score": "happiness", "op": ">", "value": 1}]}]}');
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad6', 'risk', '{"band": "purple"}');
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad7', 'risk', '{"sql": "true"}');
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad8', 'risk', '{"feature": "last_nps", "op": "<", "value": 6, "extra": 1}');
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad9', 'risk', '[{"band": "red"}]');
INSERT INTO cs.alert_rules (name, alert_type, condition, severity_metric, severity_thresholds)
VALUES ('bad10', 'risk', '{"band": "red"}', '{"feature": "last_nps", "direction": "lower"}', '{"low": 2, "high": 5}');
INSERT INTO cs.alert_rules (name, alert_type, condition, severity_thresholds) VALUES ('bad11', 'risk', '{"band": "red"}', '{"high": 1}');
INSERT INTO cs.alert_rules (name, alert_type, condition, severity_metric, severity_thresholds)
VALUES ('bad12', 'risk', '{"band": "red"}', '{"feature": "nope", "direction": "lower"}', '{"low": 2}');
INSERT INTO cs.alert_rules (name, alert_type, condition, title) VALUES ('bad13', 'risk', '{"band": "red"}', 'Hello {nickname}');
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad14', 'risk', '{"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"band": "red"}}}}}}}}}}}}}}}}}}');
-- an update is validated too and leaves the rule as it was
UPDATE cs.alert_rules SET condition = '{"feature": "last_nps", "op": "<=", "value": null}' WHERE name = 'nps_detractor';
SELECT name, alert_type, condition, severity_metric, severity_thresholds, base_severity, cooldown, auto_resolve
  FROM cs.alert_rules ORDER BY id;

-- condition evaluation in three-valued logic: missing values are unknown
SELECT cs.condition_holds(c::jsonb, '{"features": {"last_nps": 5, "tickets_30d": null}, "scores": {"churn_risk": 0.7}, "band": "red"}') AS holds, c
  FROM (VALUES ('{"feature": "last_nps", "op": "<=", "value": 6}'),
               ('{"feature": "last_nps", "op": ">", "value": 6}'),
               ('{"feature": "tickets_30d", "op": ">=", "value": 5}'),
               ('{"any": [{"feature": "tickets_30d", "op": ">=", "value": 5}, {"band": ["red", "yellow"]}]}'),
               ('{"all": [{"feature": "tickets_30d", "op": ">=", "value": 5}, {"band": "green"}]}'),
               ('{"all": [{"feature": "tickets_30d", "op": ">=", "value": 5}, {"band": "red"}]}'),
               ('{"not": {"score": "churn_risk", "op": "<", "value": 0.5}}'),
               ('{"score": "overall_score", "op": "!=", "value": 1}')) t(c);
-- the evaluator parses with the write-time check's parser: what a write refuses, it refuses alike
SELECT cs.condition_holds('{"band": "purple"}', '{}');
SELECT cs.condition_holds('{"all": [{"score": "happiness", "op": ">", "value": 1}]}', '{}');
SELECT cs.condition_holds((repeat('{"not": ', 17) || '{"band": "red"}' || repeat('}', 17))::jsonb, '{}');

------------------------------------------------------------------------------
-- one customer per rule firing, and its neighbour just on the other side
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.customer(n int, ext text, name text, csm text) RETURNS int LANGUAGE sql AS $$
    INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm)
    VALUES (('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, ext, name, 'smb', 1000 + n, 10, csm);
    SELECT 1;
$$;
-- the whole feature vector, by name; every other feature missing
CREATE FUNCTION pg_temp.setf(ext text, vals jsonb) RETURNS int LANGUAGE sql AS $$
    INSERT INTO cs.customer_features (customer_id, as_of, features)
    SELECT c.id, '2026-04-01',
           (SELECT array_agg(coalesce((vals ->> fc.name)::float4, 'NaN') ORDER BY fc.position) FROM cs.feature_catalog fc)
      FROM cs.customers c WHERE c.external_id = ext
    ON CONFLICT (customer_id) DO UPDATE SET features = excluded.features;
    SELECT 1;
$$;
SELECT sum(pg_temp.customer(n, ext, nm, csm)) AS customers FROM (VALUES
  (1, 'churn-hi', 'Churny', 'csm_a'), (2, 'churn-lo', 'Calm', 'csm_a'),
  (3, 'usage-hi', 'Dropper', 'csm_a'), (4, 'usage-lo', 'Steady', 'csm_a'),
  (5, 'pay-hi', 'Debtor', 'csm_b'), (6, 'pay-lo', 'Payer', 'csm_b'),
  (7, 'renew-hi', 'Renewing Red', 'csm_b'), (8, 'renew-lo', 'Renewing Later', 'csm_b'),
  (9, 'champ-hi', 'Orphaned', 'csm_b'), (10, 'champ-lo', 'Championed', 'csm_b'),
  (11, 'support-hi', 'Ticketer', 'csm_c'), (12, 'support-lo', 'Quiet', 'csm_c'),
  (13, 'nps-hi', 'Detractor', 'csm_c'), (14, 'nps-lo', 'Passive', 'csm_c'),
  (15, 'seats-hi', 'Full House', 'csm_c'), (16, 'seats-lo', 'Almost Full', 'csm_c'),
  (17, 'renew-yellow', 'Renewing Yellow', 'csm_b'), (18, 'renew-soon', 'Renewing Soon', 'csm_b')) t(n, ext, nm, csm);
SELECT sum(pg_temp.setf(ext, f::jsonb)) AS vectors FROM (VALUES
  ('churn-hi', '{}'), ('churn-lo', '{}'),
  ('usage-hi', '{"usage_trend_14d": -0.5}'), ('usage-lo', '{"usage_trend_14d": -0.49, "usage_trend_30d": -0.49}'),
  ('pay-hi', '{"days_overdue": 1, "late_or_failed_invoices_90d": 0}'), ('pay-lo', '{"days_overdue": 0, "late_or_failed_invoices_90d": 0}'),
  ('renew-hi', '{"days_to_renewal": 90}'), ('renew-lo', '{"days_to_renewal": 91}'),
  ('champ-hi', '{"champion_left_90d": 1}'), ('champ-lo', '{"champion_left_90d": 0}'),
  ('support-hi', '{"tickets_30d": 5, "open_high_priority_tickets": 0, "mean_csat_90d": 4}'),
  ('support-lo', '{"tickets_30d": 4, "open_high_priority_tickets": 1, "mean_csat_90d": 2.6}'),
  ('nps-hi', '{"last_nps": 6}'), ('nps-lo', '{"last_nps": 7}'),
  ('seats-hi', '{"seat_utilisation": 0.9}'), ('seats-lo', '{"seat_utilisation": 0.89}'),
  ('renew-yellow', '{"days_to_renewal": 60}'), ('renew-soon', '{"days_to_renewal": 30}')) t(ext, f);
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, risk_factors, created_at) VALUES
 ('00000000-0000-0000-0000-000000000001', 'churn', 0.40, '[]', '2026-03-01'),
 ('00000000-0000-0000-0000-000000000001', 'churn', 0.60,
  '[{"feature": "days_since_last_activity", "value": 30, "contribution": 0.8}, {"feature": "tickets_30d", "value": 6, "contribution": 0.3}]', '2026-04-01'),
 ('00000000-0000-0000-0000-000000000002', 'churn', 0.59, '[]', '2026-04-01'),
 -- a payment risk is not a churn risk
 ('00000000-0000-0000-0000-000000000002', 'payment', 0.99, '[]', '2026-04-02');
INSERT INTO cs.customer_health_scores (customer_id, overall_score, band, drivers, calculated_at) VALUES
 ('00000000-0000-0000-0000-000000000007', 0.30, 'red',
  '{"top": [{"measure": "usage_trend_30d", "group": "usage", "value": -0.6, "score": 0, "impact": 0.1}], "missing": []}', '2026-04-01'),
 ('00000000-0000-0000-0000-000000000008', 0.30, 'red', '{"top": []}', '2026-04-01'),
 ('00000000-0000-0000-0000-000000000017', 0.50, 'yellow', '{"top": []}', '2026-04-01'),
 ('00000000-0000-0000-0000-000000000018', 0.30, 'red', '{"top": []}', '2026-04-01');

-- Expected: churn-hi (0.60 >= 0.6, medium: below the high threshold 0.75), usage-hi (-0.5 <= -0.5;
-- usage_trend_30d missing so the base severity medium), pay-hi (1 day overdue: low, medium from 15),
-- renew-hi (90 days and red: high, critical from 30 days), champ-hi (high), support-hi (5 tickets;
-- 0 open high-priority: base medium), nps-hi (6: low), seats-hi (0.9: low, medium from 1.0).
-- renew-soon (30 days and red: critical).  None of the -lo neighbours fires, nor renew-yellow
-- (60 days but a yellow band).  Notifications print with the server PID, so they go
-- through a file and the PID is masked.
LISTEN cs_alerts;
\o notify.txt
SELECT * FROM cs.evaluate_alerts();
\o
\! sed -E 's/PID [0-9]+/PID N/' notify.txt
SELECT c.external_id, r.name AS rule, a.alert_type, a.severity, a.title, a.status, a.assigned_to, a.fire_count
  FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id JOIN cs.alert_rules r ON r.id = a.rule_id
 ORDER BY c.id, r.id;

-- why: condition terms with values, the latest churn model factors, the health drivers;
-- and the suggested playbooks (all at the prior 0.5: more matched factors first, then name)
SELECT c.external_id, jsonb_pretty(a.risk_factors) AS risk_factors
  FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id
 WHERE c.external_id IN ('churn-hi', 'renew-hi', 'seats-hi') ORDER BY c.id;
SELECT c.external_id, s ->> 'rank' AS rank, s ->> 'playbook' AS playbook, s -> 'matched' AS matched,
       s ->> 'effectiveness' AS effectiveness, s ->> 'message' AS message
  FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id, jsonb_array_elements(a.suggested_actions) s
 WHERE c.external_id IN ('churn-hi', 'seats-hi') ORDER BY c.id, (s ->> 'rank')::int;

------------------------------------------------------------------------------
-- deduplication and escalation
------------------------------------------------------------------------------
-- Re-evaluating changes nothing but the fire count: still one alert per customer and rule,
-- no notification.
SELECT * FROM cs.evaluate_alerts();
SELECT count(*) AS alerts, sum(fire_count) AS firings FROM cs.alerts;
-- The unique index, not luck, holds the line: a second unresolved alert is refused.
INSERT INTO cs.alerts (customer_id, rule_id, alert_type, severity, title)
SELECT customer_id, rule_id, alert_type, severity, 'duplicate' FROM cs.alerts WHERE customer_id = '00000000-0000-0000-0000-000000000013';
-- Worse: churn risk 0.92 escalates to critical (one notification), NPS 1 escalates the
-- detractor alert to high; a milder value later does not de-escalate.
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, risk_factors, created_at) VALUES
 ('00000000-0000-0000-0000-000000000001', 'churn', 0.92, '[{"feature": "days_since_last_activity", "value": 45, "contribution": 1.2}]', '2026-04-02');
SELECT pg_temp.setf('nps-hi', '{"last_nps": 1}');
\o notify.txt
SELECT * FROM cs.evaluate_alerts(ARRAY['00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000013']::uuid[]);
\o
\! sed -E 's/PID [0-9]+/PID N/' notify.txt
SELECT pg_temp.setf('nps-hi', '{"last_nps": 5}');
SELECT * FROM cs.evaluate_alerts(ARRAY['00000000-0000-0000-0000-000000000013']::uuid[]);
SELECT c.external_id, a.severity, a.title, a.fire_count, a.escalated_at IS NOT NULL AS escalated
  FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id
 WHERE c.external_id IN ('churn-hi', 'nps-hi') ORDER BY c.id;

------------------------------------------------------------------------------
-- auto-resolution and cooldown
------------------------------------------------------------------------------
-- The champion is replaced (champion_left_90d 0): the alert resolves itself.  A missing
-- value (usage-hi loses its trend) is unknown, not cleared: that alert stays open.
SELECT pg_temp.setf('champ-hi', '{"champion_left_90d": 0}');
SELECT pg_temp.setf('usage-hi', '{}');
SELECT * FROM cs.evaluate_alerts(ARRAY['00000000-0000-0000-0000-000000000009', '00000000-0000-0000-0000-000000000003']::uuid[]);
SELECT c.external_id, a.status, a.resolved_at IS NOT NULL AS resolved FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id
 WHERE c.external_id IN ('champ-hi', 'usage-hi') ORDER BY c.id;
-- The champion leaves again within the rule's 30-day cooldown: no new alert.
SELECT pg_temp.setf('champ-hi', '{"champion_left_90d": 1}');
SELECT * FROM cs.evaluate_alerts(ARRAY['00000000-0000-0000-0000-000000000009']::uuid[]);
-- After the cooldown (the resolution moved 31 days back) a new alert opens beside the resolved one.
UPDATE cs.alerts SET resolved_at = resolved_at - interval '31 days' WHERE customer_id = '00000000-0000-0000-0000-000000000009';
\o notify.txt
SELECT * FROM cs.evaluate_alerts(ARRAY['00000000-0000-0000-0000-000000000009']::uuid[]);
\o
\! sed -E 's/PID [0-9]+/PID N/' notify.txt
SELECT a.status, a.fire_count FROM cs.alerts a WHERE a.customer_id = '00000000-0000-0000-0000-000000000009' ORDER BY a.created_at, a.status;
-- A rule that does not auto-resolve keeps its alert open when the condition clears.
UPDATE cs.alert_rules SET auto_resolve = false WHERE name = 'seat_upsell';
SELECT pg_temp.setf('seats-hi', '{"seat_utilisation": 0.5}');
SELECT * FROM cs.evaluate_alerts(ARRAY['00000000-0000-0000-0000-000000000015']::uuid[]);
SELECT status FROM cs.alerts WHERE customer_id = '00000000-0000-0000-0000-000000000015';

------------------------------------------------------------------------------
-- lifecycle: every transition, and its invalid counterpart
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.alert_of(ext text) RETURNS uuid LANGUAGE sql AS $$
    SELECT a.id FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id
     WHERE c.external_id = ext AND a.status IN ('open', 'acknowledged', 'snoozed');
$$;
\set pay '''00000000-0000-0000-0000-000000000005'''
SELECT pg_temp.alert_of('pay-hi') AS pay_alert \gset
SELECT pg_temp.alert_of('support-hi') AS support_alert \gset
SELECT pg_temp.alert_of('renew-hi') AS renew_alert \gset
SELECT pg_temp.alert_of('churn-hi') AS churn_alert \gset
-- acknowledge: open -> acknowledged; a second acknowledge is refused
SELECT status, updated_by = current_user AS by_me FROM cs.acknowledge_alert(:'pay_alert', 'calling them today');
SELECT status FROM cs.acknowledge_alert(:'pay_alert');
-- snooze: acknowledged -> snoozed; the end must lie in the future
SELECT status, snoozed_until > now() AS in_future FROM cs.snooze_alert(:'pay_alert', now() + interval '3 days');
SELECT status FROM cs.snooze_alert(:'pay_alert', now() - interval '1 day');
SELECT status FROM cs.snooze_alert(:'pay_alert', NULL);
-- reassign keeps the status (and the snooze); a blank assignee is refused
SELECT status, assigned_to, snoozed_until IS NOT NULL AS still_snoozed FROM cs.reassign_alert(:'pay_alert', 'csm_z');
SELECT status FROM cs.reassign_alert(:'pay_alert', ' ');
-- the snooze passes: the next evaluation reopens it
UPDATE cs.alerts SET snoozed_until = now() - interval '1 minute' WHERE id = :'pay_alert';
SELECT * FROM cs.evaluate_alerts(ARRAY[:pay]::uuid[]);
SELECT status, snoozed_until FROM cs.alerts WHERE id = :'pay_alert';
-- resolve: open -> resolved; resolving, dismissing, acknowledging, snoozing or reassigning it again is refused
SELECT status, resolved_at IS NOT NULL AS resolved FROM cs.resolve_alert(:'pay_alert', 'paid');
SELECT status FROM cs.resolve_alert(:'pay_alert');
SELECT status FROM cs.dismiss_alert(:'pay_alert');
SELECT status FROM cs.acknowledge_alert(:'pay_alert');
SELECT status FROM cs.snooze_alert(:'pay_alert', now() + interval '1 day');
SELECT status FROM cs.reassign_alert(:'pay_alert', 'csm_y');
-- dismiss: open -> dismissed; resolving a dismissed alert is refused
SELECT status FROM cs.dismiss_alert(:'support_alert', 'known issue, fixed in next release');
SELECT status FROM cs.resolve_alert(:'support_alert');
-- snoozed -> acknowledged, and snoozed -> resolved
SELECT status FROM cs.snooze_alert(:'renew_alert', now() + interval '1 day');
SELECT status FROM cs.acknowledge_alert(:'renew_alert');
SELECT status FROM cs.snooze_alert(:'churn_alert', now() + interval '1 day');
SELECT status FROM cs.resolve_alert(:'churn_alert');
-- the SQLSTATEs: a refused transition, a bad snooze, a bad condition
\set VERBOSITY sqlstate
SELECT status FROM cs.resolve_alert(:'support_alert');
SELECT status FROM cs.snooze_alert(:'renew_alert', now() - interval '1 day');
UPDATE cs.alert_rules SET condition = '{"band": "blue"}' WHERE name = 'nps_detractor';
\set VERBOSITY terse
-- unknown and NULL alerts
SELECT status FROM cs.resolve_alert('00000000-0000-0000-0000-00000000dead');
SELECT status FROM cs.resolve_alert(NULL);
-- the audit trail: who did what, in order (the times are now())
SELECT c.external_id, e.event, e.from_status, e.to_status, e.actor = current_user AS by_me, e.note,
       e.details - 'until' AS details
  FROM cs.alert_events e JOIN cs.alerts a ON a.id = e.alert_id JOIN cs.customers c ON c.id = a.customer_id
 WHERE c.external_id IN ('pay-hi', 'support-hi', 'renew-hi', 'churn-hi', 'champ-hi')
 ORDER BY e.id;

-- the refresh hook: cs.refresh evaluates alerts.  Payer's signals now have a 20-day overdue
-- invoice; the refresh recomputes its features from signals and raises a medium alert.
INSERT INTO cs.invoices (customer_id, amount, issued_at, due_date)
VALUES ('00000000-0000-0000-0000-000000000006', 100, current_date - 50, current_date - 20);
\o notify.txt
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-000000000006']::uuid[]);
\o
\! sed -E 's/PID [0-9]+/PID N/' notify.txt
SELECT r.name, a.severity, a.status FROM cs.alerts a JOIN cs.alert_rules r ON r.id = a.rule_id
 WHERE a.customer_id = '00000000-0000-0000-0000-000000000006';

-- A churned customer's open alerts are closed by the next evaluation.
UPDATE cs.customers SET churned_at = current_date WHERE external_id = 'renew-soon';
SELECT * FROM cs.evaluate_alerts(ARRAY['00000000-0000-0000-0000-000000000018']::uuid[]);
SELECT a.status, e.event, e.note FROM cs.alerts a JOIN cs.alert_events e ON e.alert_id = a.id
 WHERE a.customer_id = '00000000-0000-0000-0000-000000000018' ORDER BY e.id;

-- The factors of a firing rule (C) follow their SQL definition, also for odd
-- inputs: a churn factor that is not an object, a driver whose measure is a
-- number, names that sort differently by byte and by collation.
CREATE TEMP TABLE fx_cases (id int, ctx jsonb, cf text[], cs_ text[], cb boolean, at text,
                            rf jsonb, dr jsonb, kinds jsonb);
INSERT INTO fx_cases VALUES
 (1, '{"features": {"seats_licensed": 10, "seat_utilisation": 0.4}, "scores": {"churn_risk": 0.8}, "band": "red"}',
  '{seats_licensed,seat_utilisation}', '{churn_risk}', true, 'risk',
  '[{"feature": "mrr", "contribution": 0.5, "source": "mine"}, 3, [1, 2]]',
  '{"top": [{"measure": "nps", "value": 2, "impact": 0.1}, {"measure": 5}, "x"]}', NULL),
 (2, '{"features": {}}', '{days_overdue}', '{}', false, 'opportunity', '[{"feature": "a"}]', '{"top": []}',
  '[{"source": "opportunity", "kind": "upsell", "score": 0.7}, {"kind": "adoption"}]'),
 (3, NULL, NULL, NULL, NULL, 'risk', '{"not": "an array"}', '{"top": {"x": 1}}', NULL);
SELECT id, cs._alert_factors(ctx, cf, cs_, cb, at, rf, dr, kinds) = ref AS same_as_sql,
       cs._factor_names(cs._alert_factors(ctx, cf, cs_, cb, at, rf, dr, kinds)) AS names,
       jsonb_array_length(ref) AS factors
  FROM fx_cases c
 CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_agg(t.f ORDER BY t.ord, t.name), '[]') AS ref FROM (
        SELECT 1 AS ord, n.name, jsonb_build_object('source', 'rule', 'feature', n.name,
                                                    'value', c.ctx -> 'features' -> n.name) AS f
          FROM unnest(c.cf) n(name)
        UNION ALL
        SELECT 1, n.name, jsonb_build_object('source', 'rule', 'score', n.name, 'value', c.ctx -> 'scores' -> n.name)
          FROM unnest(c.cs_) n(name)
        UNION ALL
        SELECT 1, 'band', jsonb_build_object('source', 'rule', 'band', c.ctx -> 'band') WHERE c.cb
        UNION ALL
        SELECT 2, lpad(e.o::text, 4, '0'), jsonb_build_object('source', 'churn_model') || e.x
          FROM jsonb_array_elements(CASE WHEN c.at = 'risk' AND jsonb_typeof(c.rf) = 'array'
                                         THEN c.rf ELSE '[]' END) WITH ORDINALITY e(x, o)
        UNION ALL
        SELECT 3, lpad(e.o::text, 4, '0'),
               jsonb_build_object('source', 'health', 'feature', e.x ->> 'measure', 'value', e.x -> 'value',
                                  'impact', e.x -> 'impact')
          FROM jsonb_array_elements(CASE WHEN c.at = 'risk' AND jsonb_typeof(c.dr -> 'top') = 'array'
                                         THEN c.dr -> 'top' ELSE '[]' END) WITH ORDINALITY e(x, o)
        UNION ALL
        SELECT 4, lpad(e.o::text, 4, '0'), e.x
          FROM jsonb_array_elements(CASE WHEN c.at = 'opportunity' THEN coalesce(c.kinds, '[]')
                                         ELSE '[]' END) WITH ORDINALITY e(x, o)
    ) t) r
 ORDER BY id;
SELECT cs._factor_names('{"a": 1}');

-- The event log of rule alerts is true (the same path raises and resolves
-- model and data alerts: sql/lifecycle.sql, sql/data_quality.sql)
CREATE OR REPLACE FUNCTION pg_temp.event_log_faults(kind text) RETURNS TABLE (alerts bigint, status_not_last_event bigint, broken_chain bigint)
LANGUAGE sql AS $$
    -- the event log is true when the alert's status is the to_status of its
    -- last event, and every event after the creation starts from the status
    -- the one before it left
    SELECT count(*),
           count(*) FILTER (WHERE a.status IS DISTINCT FROM (SELECT e.to_status FROM cs.alert_events e
                                                              WHERE e.alert_id = a.id ORDER BY e.id DESC LIMIT 1)),
           coalesce(sum((SELECT count(*) FROM (SELECT e.event, e.from_status, lag(e.to_status) OVER (ORDER BY e.id) AS prev
                                                  FROM cs.alert_events e WHERE e.alert_id = a.id) x
                          WHERE x.event <> 'created' AND x.from_status IS DISTINCT FROM x.prev)), 0)
      FROM cs.alerts a WHERE a.alert_type = kind;
$$;
SELECT 'risk' AS kind, * FROM pg_temp.event_log_faults('risk')
UNION ALL SELECT 'opportunity', * FROM pg_temp.event_log_faults('opportunity');

UNLISTEN cs_alerts;
\! rm -f notify.txt

------------------------------------------------------------------------------
-- Alerts without a customer (model and data alerts) are in cs.system_alerts,
-- raised, escalated and worked through the same functions as customer alerts
------------------------------------------------------------------------------
SELECT outcome FROM cs._raise_alerts(ARRAY[
    ROW(NULL, NULL, 'model', 'medium', 'Input drift (watch) for model m:v1', 'Inputs moved.',
        '{"model": "m:v1", "drift": "watch"}', NULL, 'cs_admin', NULL, NULL, NULL)::cs.alert_firing,
    ROW(NULL, NULL, 'data', 'low', 'Data quality: freshness s', 'Source s is late.',
        '{"check": "freshness", "subject": "s"}', NULL, 'cs_admin', NULL, NULL, NULL)::cs.alert_firing]) ORDER BY 1;
-- a worse firing of the same model escalates its one unresolved alert
SELECT outcome FROM cs._raise_alerts(ARRAY[
    ROW(NULL, NULL, 'model', 'high', 'Input drift (act) for model m:v1', 'Inputs moved more.',
        '{"model": "m:v1", "drift": "act"}', NULL, 'cs_admin', NULL, NULL, NULL)::cs.alert_firing]);
SELECT alert_type, severity, title, status, assigned_to, fire_count FROM cs.system_alerts ORDER BY alert_type;
-- none of them in cs.alerts; the views list and count them, without a customer
SELECT count(*) AS customer_alerts_of_type_model_or_data FROM cs.alerts WHERE alert_type NOT IN ('risk', 'opportunity', 'task');
SELECT alert_type, customer_id, rule_id, mrr_at_risk, severity, status FROM cs.all_alerts
 WHERE customer_id IS NULL ORDER BY alert_type;
SELECT (SELECT count(*) FROM cs.all_alerts) = (SELECT count(*) FROM cs.alerts) + 2 AS all_listed;
SELECT alert_type, severity, status, alerts, mrr_at_risk FROM cs.metrics_alerts
 WHERE alert_type IN ('model', 'data') AND alerts > 0 ORDER BY 1;
-- the outbox has a message for each
SELECT recipient, subject, payload ->> 'alert_type' AS alert_type, payload -> 'customer_id' AS customer_id,
       payload -> 'mrr_at_risk' AS mrr_at_risk
  FROM cs.outbox WHERE topic = 'alert' AND payload ->> 'alert_type' IN ('model', 'data') ORDER BY 3;
-- the lifecycle functions take their ids and return them as rows of cs.alerts
SELECT (a).alert_type, (a).status, (a).customer_id, (a).rule_id, (a).mrr_at_risk, (a).severity
  FROM (SELECT cs.acknowledge_alert(id, 'on it') AS a FROM cs.system_alerts WHERE alert_type = 'model') x;
SELECT (cs.reassign_alert(id, 'cs_data')).assigned_to FROM cs.system_alerts WHERE alert_type = 'data';
SELECT (cs.snooze_alert(id, now() + interval '1 day')).status FROM cs.system_alerts WHERE alert_type = 'data';
SELECT (cs.dismiss_alert(id, 'known outage')).status FROM cs.system_alerts WHERE alert_type = 'data';
SELECT (cs.resolve_alert(id, 'retrained')).status FROM cs.system_alerts WHERE alert_type = 'model';
SELECT alert_type, status, resolved_at IS NOT NULL AS resolved_at_set, snoozed_until, assigned_to, updated_by = current_user AS by_me
  FROM cs.system_alerts ORDER BY alert_type;
-- every event in their own log, none in the customers' one
SELECT a.alert_type, e.event, e.from_status, e.to_status, e.note, e.details - 'until' AS details, e.actor = current_user AS by_me
  FROM cs.system_alert_events e JOIN cs.system_alerts a ON a.id = e.alert_id ORDER BY a.alert_type, e.id;
SELECT count(*) AS customer_events_of_system_alerts FROM cs.alert_events e JOIN cs.system_alerts a ON a.id = e.alert_id;
-- the problem again after the resolution: a new alert
SELECT outcome FROM cs._raise_alerts(ARRAY[
    ROW(NULL, NULL, 'model', 'medium', 'Input drift (watch) for model m:v1', 'Inputs moved.',
        '{"model": "m:v1", "drift": "watch"}', NULL, 'cs_admin', NULL, NULL, NULL)::cs.alert_firing]);
SELECT status, count(*) FROM cs.system_alerts WHERE alert_type = 'model' GROUP BY status ORDER BY status;
\set VERBOSITY sqlstate
-- a resolved alert stays resolved (55000)
SELECT cs.resolve_alert(id) FROM cs.system_alerts WHERE alert_type = 'model' AND status = 'resolved';
-- an alert of cs.alerts needs its customer (23502)
INSERT INTO cs.alerts (alert_type, severity, title) VALUES ('risk', 'high', 'no customer');
-- a customer alert cannot be of type model or data (23514), nor can an alert without a customer be a risk alert
INSERT INTO cs.alerts (customer_id, alert_type, severity, title)
VALUES ('00000000-0000-0000-0000-000000000013', 'model', 'high', 'model alert of a customer');
SELECT cs._raise_alerts(ARRAY[ROW(NULL, NULL, 'risk', 'high', 'risk without a customer', NULL, '{}', NULL, NULL, NULL, NULL, NULL)::cs.alert_firing]);
-- one unresolved alert per key (23505)
INSERT INTO cs.system_alerts (alert_type, severity, title, risk_factors)
VALUES ('model', 'low', 'a second open drift alert', '{"model": "m:v1", "drift": "watch"}');
\set VERBOSITY terse

-- Merging customers moves the merged one's alerts with their events in one
-- statement (the events reference the alert's (customer_id, id))
SELECT count(*) AS alerts, (SELECT count(*) FROM cs.alert_events e WHERE e.customer_id = '00000000-0000-0000-0000-000000000013') AS events
  FROM cs.alerts WHERE customer_id = '00000000-0000-0000-0000-000000000013';
SELECT cs.merge_customers('00000000-0000-0000-0000-000000000009', '00000000-0000-0000-0000-000000000013') ->> 'alerts' AS alerts_moved;
SELECT (SELECT count(*) FROM cs.alerts WHERE customer_id = '00000000-0000-0000-0000-000000000013') AS left_behind,
       (SELECT count(*) FROM cs.alert_events e JOIN cs.alerts a ON a.customer_id = e.customer_id AND a.id = e.alert_id
         WHERE e.customer_id = '00000000-0000-0000-0000-000000000009') AS events_of_kept;
