-- The CSM's workspace: tasks (lifecycle, caller checks, errors), overdue tasks
-- as alerts, the digest (HTML: self-contained, escaped, with its SVG charts;
-- text; row-level security) and the outbox (claim, lease expiry, ack).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET TIME ZONE 'UTC';
\set VERBOSITY terse
DROP ROLE IF EXISTS regress_dg_ann;
DROP ROLE IF EXISTS regress_dg_ben;
DROP ROLE IF EXISTS regress_dg_vera;
CREATE ROLE regress_dg_ann;
CREATE ROLE regress_dg_ben;
CREATE ROLE regress_dg_vera;
SELECT cs.grant_role('csm', 'regress_dg_ann'), cs.grant_role('csm', 'regress_dg_ben'),
       cs.grant_role('viewer', 'regress_dg_vera');
-- runs a statement, returns its SQLSTATE and message (or ok)
CREATE FUNCTION public.regress_dg_try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    -- task ids are random: they are not part of the expected output
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g');
END;
$$;

-- Ann has three customers (one with markup in its name), Ben one.
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm, contract_end_date) VALUES
 ('00000000-0000-0000-0000-0000000000d1', 'd1', 'Acme <&> "Co"', 'smb', 1000, 10, 'regress_dg_ann', current_date + 30),
 ('00000000-0000-0000-0000-0000000000d2', 'd2', 'Beacon', 'smb', 500, 10, 'regress_dg_ann', current_date + 200),
 ('00000000-0000-0000-0000-0000000000d3', 'd3', 'Cobalt', 'smb', 800, 10, 'regress_dg_ann', current_date + 60),
 ('00000000-0000-0000-0000-0000000000d4', 'd4', 'Ben Corp', 'smb', 700, 10, 'regress_dg_ben', current_date + 10);
-- Twelve weeks of weekly health (Monday 00:00 of each week) and churn risk:
-- Acme falls into red, Beacon stays green, Cobalt is yellow, Ben Corp red.
INSERT INTO cs.customer_health_scores (customer_id, overall_score, band, calculated_at)
SELECT c.id, s.score, CASE WHEN s.score < 0.4 THEN 'red' WHEN s.score < 0.7 THEN 'yellow' ELSE 'green' END,
       date_trunc('week', current_date::timestamptz) - make_interval(weeks => k)
  FROM cs.customers c
 CROSS JOIN generate_series(0, 11) k
 CROSS JOIN LATERAL (SELECT CASE c.external_id WHEN 'd1' THEN 0.20 + 0.05 * k WHEN 'd2' THEN 0.85
                                               WHEN 'd3' THEN 0.55 ELSE 0.30 END::numeric(3,2) AS score) s;
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, created_at)
SELECT c.id, 'churn', CASE c.external_id WHEN 'd1' THEN 0.80 - 0.05 * k WHEN 'd2' THEN 0.10 WHEN 'd3' THEN 0.40 ELSE 0.60 END,
       date_trunc('week', current_date::timestamptz) - make_interval(weeks => k)
  FROM cs.customers c CROSS JOIN generate_series(0, 11) k;

------------------------------------------------------------------------------
-- Tasks
------------------------------------------------------------------------------
SET ROLE regress_dg_ann;
-- a task due tomorrow, and one already overdue (from a playbook step)
SELECT status, assigned_to, created_by, title, completed_at IS NULL AS not_completed
  FROM cs.create_task('00000000-0000-0000-0000-0000000000d1', 'Call the champion', now() + interval '1 day',
                      'About the drop in usage');
SELECT status, assigned_to, playbook, step
  FROM cs.create_task('00000000-0000-0000-0000-0000000000d3', 'Book the QBR', now() - interval '2 days',
                      playbook => (SELECT min(name) FROM cs.playbooks), step => 1);
-- what a CSM may not do
SELECT regress_dg_try($$SELECT cs.create_task('00000000-0000-0000-0000-0000000000d4', 'Not mine', now())$$) AS other_csm;
SELECT regress_dg_try($$SELECT cs.create_task('00000000-0000-0000-0000-0000000000ff', 'Nobody', now())$$) AS unknown_customer;
SELECT regress_dg_try($$SELECT cs.create_task('00000000-0000-0000-0000-0000000000d1', '  ', now())$$) AS empty_title;
SELECT regress_dg_try($$SELECT cs.create_task('00000000-0000-0000-0000-0000000000d1', 'x', 'infinity')$$) AS infinite_due;
SELECT regress_dg_try($$SELECT cs.create_task('00000000-0000-0000-0000-0000000000d1', 'x', now(), assigned_to => 'regress_dg_ben')$$) AS assignee_blind;
SELECT regress_dg_try($$SELECT cs.create_task('00000000-0000-0000-0000-0000000000d1', 'x', now(), assigned_to => 'regress_dg_nobody')$$) AS assignee_unknown;
SELECT regress_dg_try($$SELECT cs.create_task('00000000-0000-0000-0000-0000000000d1', 'x', now(), playbook => 'no such playbook')$$) AS unknown_playbook;
SELECT regress_dg_try($$SELECT cs.create_task('00000000-0000-0000-0000-0000000000d1', 'x', now(), step => 2)$$) AS step_without_playbook;
SELECT regress_dg_try($$SELECT cs.complete_task('00000000-0000-0000-0000-000000000000')$$) AS unknown_task;
SELECT regress_dg_try($$SELECT cs.complete_task(NULL)$$) AS null_task;
-- no direct writes
SELECT regress_dg_try($$UPDATE cs.tasks SET status = 'done'$$) AS direct_update;
-- she sees her two tasks
SELECT c.name, t.title, t.status FROM cs.tasks t JOIN cs.customers c ON c.id = t.customer_id ORDER BY t.title;
RESET ROLE;

-- Ben may not touch Ann's tasks; a viewer may not create any
SELECT id AS champion FROM cs.tasks WHERE title = 'Call the champion' \gset
SET ROLE regress_dg_ben;
SELECT regress_dg_try(format('SELECT cs.complete_task(%L)', :'champion')) AS ben_completes;
SELECT regress_dg_try(format('SELECT cs.assign_task(%L, %L)', :'champion', 'regress_dg_ben')) AS ben_takes;
SELECT count(*) AS ben_sees_tasks FROM cs.tasks;
RESET ROLE;
SET ROLE regress_dg_vera;
SELECT regress_dg_try($$SELECT cs.create_task('00000000-0000-0000-0000-0000000000d1', 'x', now())$$) AS viewer_creates;
RESET ROLE;

-- The overdue task raised an alert at once; the other is not overdue yet.
SELECT c.name, a.alert_type, a.severity, a.status, a.title, a.assigned_to, a.mrr_at_risk,
       a.suggested_actions -> 0 ->> 'playbook' = (SELECT min(name) FROM cs.playbooks) AS suggests_the_playbook
  FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id ORDER BY a.title;
-- two days later the first task is overdue too (the worker's hourly job runs this)
SELECT cs._task_alerts(now() + interval '2 days') AS raised;
SELECT cs._task_alerts(now() + interval '2 days') AS raised_again;
SELECT c.name, a.title, a.status FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id ORDER BY a.title;

-- Lifecycle: assign, complete (resolves the alert), invalid transitions, reopen.
SET ROLE regress_dg_ann;
SELECT status, assigned_to FROM cs.assign_task((SELECT id FROM cs.tasks WHERE title = 'Book the QBR'), 'regress_dg_ann');
SELECT status, completed_by, note, completed_at IS NOT NULL AS completed
  FROM cs.complete_task((SELECT id FROM cs.tasks WHERE title = 'Book the QBR'), 'QBR booked for Friday');
SELECT regress_dg_try(format('SELECT cs.complete_task(%L)', (SELECT id FROM cs.tasks WHERE title = 'Book the QBR'))) AS complete_twice;
SELECT regress_dg_try(format('SELECT cs.assign_task(%L, %L)', (SELECT id FROM cs.tasks WHERE title = 'Book the QBR'), 'regress_dg_ann')) AS assign_done;
SELECT regress_dg_try(format('SELECT cs.reopen_task(%L)', (SELECT id FROM cs.tasks WHERE title = 'Call the champion'))) AS reopen_open;
RESET ROLE;
SELECT a.title, a.status, e.event, e.actor
  FROM cs.alerts a JOIN cs.alert_events e ON e.alert_id = a.id ORDER BY a.title, e.id;
-- reopened with a later due date: open, no alert; once that date passes, a new alert
SET ROLE regress_dg_ann;
SELECT status, completed_at IS NULL AS not_completed, due_at > now() + interval '6 days' AS due_later
  FROM cs.reopen_task((SELECT id FROM cs.tasks WHERE title = 'Book the QBR'), now() + interval '7 days');
RESET ROLE;
SELECT count(*) FILTER (WHERE status = 'open') AS open_qbr_alerts FROM cs.alerts WHERE title = 'Overdue task: Book the QBR';
SELECT cs._task_alerts(now() + interval '8 days') AS raised_after_new_due_date;
SELECT count(*) FILTER (WHERE status = 'open') AS open_qbr_alerts FROM cs.alerts WHERE title = 'Overdue task: Book the QBR';
-- back to now: the QBR task is not overdue, its new alert resolves
SELECT cs._task_alerts() AS raised_now;
SELECT title, status, count(*) FROM cs.alerts GROUP BY title, status ORDER BY title, status;

------------------------------------------------------------------------------
-- The digest
------------------------------------------------------------------------------
-- Ann's overdue task is back (due yesterday) for the digest.
SET ROLE regress_dg_ann;
SELECT status FROM cs.create_task('00000000-0000-0000-0000-0000000000d1', 'Send the <renewal> offer & terms',
                                  now() - interval '1 day');
CREATE TEMP TABLE dg AS SELECT cs.digest('regress_dg_ann') AS h, cs.digest_text('regress_dg_ann') AS t,
                               cs.digest_data('regress_dg_ann') AS d;
RESET ROLE;
-- what needs attention: Acme (red, high risk) then Cobalt (yellow); Beacon is green
SELECT x ->> 'name' AS name, x ->> 'band' AS band, x ->> 'risk_mrr' AS risk_mrr, jsonb_array_length(x -> 'health') AS weeks,
       (x -> 'health' ->> 0)::numeric > (x -> 'health' ->> 11)::numeric AS declining
  FROM dg, jsonb_array_elements(d -> 'attention') x;
SELECT d -> 'bands' AS bands, d ->> 'customers' AS customers, d ->> 'alerts_total' AS alerts,
       d ->> 'renewals_total' AS renewals, d ->> 'renewals_risk_mrr' AS renewals_risk_mrr,
       jsonb_array_length(d -> 'mrr_at_risk') AS mrr_weeks, d -> 'mrr_at_risk' ->> 11 AS mrr_at_risk_now,
       (d -> 'mrr_at_risk' ->> 0)::numeric < (d -> 'mrr_at_risk' ->> 11)::numeric AS risk_grew
  FROM dg;
SELECT x ->> 'customer' AS customer, x ->> 'title' AS title, x ->> 'overdue' AS overdue FROM dg, jsonb_array_elements(d -> 'tasks') x;
SELECT x ->> 'name' AS name, x ->> 'days' AS days, x ->> 'risk_mrr' AS risk_mrr FROM dg, jsonb_array_elements(d -> 'renewals') x;
-- self-contained: no script, no URL, no external resource
SELECT position('<script' IN lower(h)) = 0 AS no_script,
       h !~* 'https?:' AS no_http, position('//' IN h) = 0 AS no_double_slash,
       h !~* '\m(src|href|url)\s*[=(]' AS no_resources,
       h LIKE '<!DOCTYPE html>%</html>' AS whole_page
  FROM dg;
-- the charts and one sparkline per account needing attention
SELECT (length(h) - length(replace(h, '<svg', ''))) / 4 AS svgs,
       (length(h) - length(replace(h, '<polyline', ''))) / 9 AS polylines,
       (length(h) - length(replace(h, '<rect', ''))) / 5 AS bars,
       (length(h) - length(replace(h, '<polygon', ''))) / 8 AS areas
  FROM dg;
-- every text escaped
SELECT position('Acme &lt;&amp;&gt; &quot;Co&quot;' IN h) > 0 AS name_escaped,
       position('Acme <&>' IN h) = 0 AS no_raw_name,
       position('Send the &lt;renewal&gt; offer &amp; terms' IN h) > 0 AS task_escaped,
       h !~ '<(?!/?(html|head|meta|title|body|div|h1|h2|p|table|tr|th|td|svg|line|text|rect|polygon|polyline|span|b)\M|!DOCTYPE)' AS known_tags_only
  FROM dg;
-- the text part
SELECT position('OVERDUE' IN t) > 0 AS overdue_task, position('Acme <&> "Co"' IN t) > 0 AS raw_name,
       position('Renewals in the next 90 days' IN t) > 0 AS renewals, position('Ben Corp' IN t) = 0 AS not_bens
  FROM dg;
-- row-level security: Ann sees nothing of Ben's portfolio, an admin does
SET ROLE regress_dg_ann;
SELECT d ->> 'customers' AS customers, d -> 'attention' AS attention, position('Ben Corp' IN h) = 0 AS hidden
  FROM (SELECT cs.digest_data('regress_dg_ben') AS d, cs.digest('regress_dg_ben') AS h) x;
RESET ROLE;
SELECT d ->> 'customers' AS customers, position('Ben Corp' IN cs.digest('regress_dg_ben')) > 0 AS shown
  FROM (SELECT cs.digest_data('regress_dg_ben') AS d) x;
SELECT regress_dg_try($$SELECT cs.digest(NULL)$$) AS null_csm;
-- a digest of the past reads the scores of then: 13 weeks ago nothing was scored
SELECT d -> 'bands' AS bands, d ->> 'attention_total' AS attention
  FROM (SELECT cs.digest_data('regress_dg_ann', current_date - 7 * 13) AS d) x;

------------------------------------------------------------------------------
-- The outbox
------------------------------------------------------------------------------
-- every alert raised above was enqueued once, to its assignee
SELECT (SELECT count(*) FROM cs.alerts) AS alerts, count(*) AS messages,
       count(DISTINCT payload ->> 'alert_id') AS distinct_alerts, min(recipient) AS recipient
  FROM cs.outbox WHERE topic = 'alert';
SELECT cs.enqueue_digest('regress_dg_ann') IS NOT NULL AS digest_enqueued;
SELECT topic, recipient, subject LIKE 'Customer success digest for regress_dg_ann%' AS subject,
       payload ->> 'html' LIKE '<!DOCTYPE html>%' AS html, payload ->> 'text' LIKE 'Digest for%' AS text
  FROM cs.outbox WHERE topic = 'digest';
CREATE TEMP TABLE pending AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM cs.outbox;
SELECT count(*) AS pending FROM pending;
-- the mailer takes two at 10:00 for five minutes; Slack, at 10:01, the rest but those
SELECT p.n, o.topic, o.leased_by, o.attempts, o.leased_until
  FROM cs.outbox_claim('mailer', 2, '5 minutes', NULL, '2030-01-01 10:00+00') o JOIN pending p USING (id) ORDER BY p.n;
SELECT p.n, o.leased_by, o.attempts, o.leased_until
  FROM cs.outbox_claim('slack', 100, '5 minutes', ARRAY['alert'], '2030-01-01 10:01+00') o JOIN pending p USING (id) ORDER BY p.n;
-- the CRM, at 10:02, gets what is left: the digest, which Slack's topics left out
SELECT count(*) AS claimed FROM cs.outbox_claim('crm', 100, '5 minutes', NULL, '2030-01-01 10:02+00');
-- the mailer acknowledges its first message only, Slack all of its
SELECT cs.outbox_ack(ARRAY(SELECT id FROM pending WHERE n = 1)) AS acked_by_mailer;
SELECT cs.outbox_ack(ARRAY(SELECT o.id FROM cs.outbox o WHERE o.leased_by = 'slack')) AS acked_by_slack;
SELECT cs.outbox_ack(ARRAY(SELECT id FROM pending WHERE n = 1)) AS acked_twice;
-- at 10:05 the mailer's lease ended: the unacknowledged message comes back, to the CRM
SELECT p.n, o.topic, o.leased_by, o.attempts
  FROM cs.outbox_claim('crm', 100, '1 minute', NULL, '2030-01-01 10:05+00') o JOIN pending p USING (id) ORDER BY p.n;
SELECT count(*) AS claimed FROM cs.outbox_claim('crm', 100, '1 minute', NULL, '2030-01-01 10:05:30+00');
SELECT count(*) FILTER (WHERE acked_at IS NULL) AS unacknowledged, count(*) FILTER (WHERE acked_at IS NOT NULL) AS acknowledged
  FROM cs.outbox;
SELECT regress_dg_try($$SELECT cs.outbox_claim('', 1)$$) AS empty_consumer;
SELECT regress_dg_try($$SELECT cs.outbox_claim('x', 0)$$) AS zero_max;
SELECT regress_dg_try($$SELECT cs.outbox_claim('x', 1, '0 seconds')$$) AS zero_lease;
-- CSMs read neither the outbox nor claim from it
SET ROLE regress_dg_ann;
SELECT regress_dg_try($$SELECT count(*) FROM cs.outbox$$) AS csm_reads;
SELECT regress_dg_try($$SELECT cs.outbox_claim('me')$$) AS csm_claims;
RESET ROLE;

-- Deleting an alert keeps the tasks made for it, without the alert (the
-- trigger tasks_forget_alert, which stands for ON DELETE SET NULL)
INSERT INTO cs.tasks (customer_id, title, due_at, assigned_to, created_by, alert_id)
SELECT a.customer_id, 'About ' || a.title, now() + interval '1 day', 'regress_dg_ann', 'regress_dg_ann', a.id
  FROM cs.alerts a WHERE a.customer_id IS NOT NULL ORDER BY a.title LIMIT 1;
DELETE FROM cs.alerts a WHERE a.id = (SELECT t.alert_id FROM cs.tasks t WHERE t.title LIKE 'About %');
SELECT count(*) AS tasks_kept, count(alert_id) AS still_with_alert FROM cs.tasks WHERE title LIKE 'About %';

DROP TABLE dg, pending;
DROP FUNCTION public.regress_dg_try(text);
DROP EXTENSION cscopilot CASCADE;
DROP ROLE regress_dg_ann, regress_dg_ben, regress_dg_vera;
