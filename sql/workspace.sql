-- The CSM's workspace: an account's timeline over a hand-made history, the
-- portfolio timeline, and the CSM's own work (engagements she logs, the stages
-- of her opportunities, actions without an alert) under her own role.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
DROP ROLE IF EXISTS regress_ws_alice;
DROP ROLE IF EXISTS regress_ws_bob;
DROP ROLE IF EXISTS regress_ws_vic;
SET client_min_messages = notice;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

-- runs a statement and shows the SQLSTATE and message of its error
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

CREATE ROLE regress_ws_alice;
CREATE ROLE regress_ws_bob;
CREATE ROLE regress_ws_vic;
SELECT cs.grant_role('csm', 'regress_ws_alice'), cs.grant_role('csm', 'regress_ws_bob'),
       cs.grant_role('viewer', 'regress_ws_vic');

INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm, contract_end_date) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 'w-a1', 'Acme',   'smb', 850, 20, 'regress_ws_alice', '2026-12-31'),
 ('00000000-0000-0000-0000-0000000000a2', 'w-a2', 'Apex',   'smb', 300, 10, 'regress_ws_alice', NULL),
 ('00000000-0000-0000-0000-0000000000b1', 'w-b1', 'Bolt',   'smb', 400, 10, 'regress_ws_bob', NULL);

------------------------------------------------------------------------------
-- A hand-made history of Acme, February to April 2026
------------------------------------------------------------------------------

-- a ticket opened before the timeline starts (only its closing is shown) and one inside it
INSERT INTO cs.support_tickets (customer_id, external_id, opened_at, closed_at, priority, status, csat, subject) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 'ZD-1', '2026-02-20 09:00', '2026-03-03 12:00', 'normal', 'solved', NULL, 'Login is slow'),
 ('00000000-0000-0000-0000-0000000000a1', 'ZD-2', '2026-03-02 09:00', '2026-03-04 21:00', 'high', 'solved', 4, 'Export fails');
-- an invoice paid 5 days late, one whose payment failed
INSERT INTO cs.invoices (customer_id, external_id, amount, issued_at, due_date, paid_at, status) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 'INV-1', 850, '2026-03-01', '2026-03-15', '2026-03-20', 'paid'),
 ('00000000-0000-0000-0000-0000000000a1', 'INV-2', 850, '2026-04-01', '2026-04-15', NULL, 'failed');
INSERT INTO cs.engagements (customer_id, kind, occurred_at, notes) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 'meeting', '2026-02-10 10:00', 'Before the timeline'),
 ('00000000-0000-0000-0000-0000000000a1', 'meeting', '2026-03-10 14:00', 'Kickoff with the new VP');
INSERT INTO cs.nps_responses (customer_id, score, comment, responded_at) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 4, 'Reports are slow', '2026-03-12 08:00'),
 ('00000000-0000-0000-0000-0000000000a2', 9, NULL, '2026-03-05 08:00');
-- usage by week (Mondays): 100 events by 2 users for three weeks, then 40
-- (down 60%), 45 (+12%: no change), then nothing from the week of 23 March
INSERT INTO cs.usage_events (customer_id, user_id, event, quantity, occurred_at)
SELECT '00000000-0000-0000-0000-0000000000a1', u, 'report_created', q, w + interval '1 day 10 hours'
  FROM (VALUES ('2026-02-16'::timestamptz, 'u1', 50), ('2026-02-16', 'u2', 50),
               ('2026-02-23', 'u1', 60), ('2026-02-23', 'u2', 40),
               ('2026-03-02', 'u1', 50), ('2026-03-02', 'u2', 50),
               ('2026-03-09', 'u1', 40),
               ('2026-03-16', 'u1', 45)) v(w, u, q);
-- health: green before the timeline, green, yellow, red
INSERT INTO cs.customer_health_scores (customer_id, overall_score, band, calculated_at) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 0.80, 'green',  '2026-02-25 03:00'),
 ('00000000-0000-0000-0000-0000000000a1', 0.75, 'green',  '2026-03-05 03:00'),
 ('00000000-0000-0000-0000-0000000000a1', 0.55, 'yellow', '2026-03-11 03:00'),
 ('00000000-0000-0000-0000-0000000000a1', 0.35, 'red',    '2026-03-20 03:00');
-- churn risk: 0.20, 0.25 (a move of 0.05: no change), 0.55 (up 0.30); payment risk first assessed
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, risk_factors, model_version, created_at) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 'churn', 0.20, '[]', 'churn_v1', '2026-02-25 03:00'),
 ('00000000-0000-0000-0000-0000000000a1', 'churn', 0.25, '[]', 'churn_v1', '2026-03-11 03:00'),
 ('00000000-0000-0000-0000-0000000000a1', 'churn', 0.55,
  '[{"feature": "usage_trend_30d", "value": -0.6, "contribution": 0.9}, {"feature": "last_nps", "value": 4, "contribution": 0.4}]',
  'churn_v1', '2026-03-20 03:00'),
 ('00000000-0000-0000-0000-0000000000a1', 'payment', 0.60, '[]', 'payment_v1', '2026-04-16 03:00');
-- an alert, acknowledged, escalated and resolved, and the action it led to
INSERT INTO cs.alerts (id, customer_id, alert_type, severity, title, status, created_at, resolved_at) VALUES
 ('00000000-0000-0000-0000-00000000aa01', '00000000-0000-0000-0000-0000000000a1', 'risk', 'critical',
  'Churn risk high', 'resolved', '2026-03-20 10:00', '2026-04-02 09:00');
INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, actor, at, note, details, customer_id) VALUES
 ('00000000-0000-0000-0000-00000000aa01', 'created', NULL, 'open', 'postgres', '2026-03-20 10:00', NULL, '{"severity": "high"}', '00000000-0000-0000-0000-0000000000a1'),
 ('00000000-0000-0000-0000-00000000aa01', 'acknowledged', 'open', 'acknowledged', 'regress_ws_alice', '2026-03-21 09:00', 'calling them', NULL, '00000000-0000-0000-0000-0000000000a1'),
 ('00000000-0000-0000-0000-00000000aa01', 'escalated', 'acknowledged', 'acknowledged', 'postgres', '2026-03-22 10:00', NULL,
  '{"from": "high", "to": "critical"}', '00000000-0000-0000-0000-0000000000a1'),
 ('00000000-0000-0000-0000-00000000aa01', 'resolved', 'acknowledged', 'resolved', 'regress_ws_alice', '2026-04-02 09:00', 'sponsor on board', NULL, '00000000-0000-0000-0000-0000000000a1');
INSERT INTO cs.actions (alert_id, customer_id, playbook, taken_by, taken_at, outcome, outcome_at, outcome_source) VALUES
 ('00000000-0000-0000-0000-00000000aa01', '00000000-0000-0000-0000-0000000000a1', 'executive_sponsor_call',
  'regress_ws_alice', '2026-03-21 11:00', 'recovered', '2026-04-20 00:00', 'measured');
-- subscriptions: core replaced by a larger core on 15 March (a change), an add-on for a month
INSERT INTO cs.subscriptions (customer_id, product, seats, mrr, started_at, ended_at) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 'core',  10, 500, '2026-01-01', '2026-03-15'),
 ('00000000-0000-0000-0000-0000000000a1', 'core',  15, 750, '2026-03-15', NULL),
 ('00000000-0000-0000-0000-0000000000a1', 'addon',  5, 100, '2026-03-05', '2026-04-05');

-- Bolt, Bob's customer, has a history too
INSERT INTO cs.engagements (customer_id, kind, occurred_at, notes) VALUES
 ('00000000-0000-0000-0000-0000000000b1', 'call', '2026-03-03 10:00', 'Bob''s call');

------------------------------------------------------------------------------
-- Acme's timeline since 1 March, oldest first
------------------------------------------------------------------------------

SELECT occurred_at, kind, title, detail, source_table
  FROM cs.account_timeline('00000000-0000-0000-0000-0000000000a1', since => '2026-03-01');

-- every row links to its source row (usage rows to the Monday of their week)
CREATE FUNCTION pg_temp.source_exists(tab text, id text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    found boolean;
BEGIN
    IF tab = 'usage_events' THEN
        RETURN EXISTS (SELECT 1 FROM cs.usage_events e
                        WHERE date_trunc('week', e.occurred_at) = id::timestamptz - interval '1 week');
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM cs.%I t WHERE t.id::text = $1)', tab) INTO found USING id;
    RETURN found;
END;
$$;
SELECT t.source_table, count(*) AS rows, bool_and(pg_temp.source_exists(t.source_table, t.source_id)) AS linked
  FROM cs.account_timeline('00000000-0000-0000-0000-0000000000a1', '2026-03-01') t
 GROUP BY 1 ORDER BY 1;

-- a later start leaves out what came before it, but still compares with it
SELECT occurred_at, kind, title
  FROM cs.account_timeline('00000000-0000-0000-0000-0000000000a1', '2026-03-20 03:00')
 WHERE kind IN ('health_band', 'risk_change', 'usage_change');

-- bad input
SELECT pg_temp.err($$SELECT * FROM cs.account_timeline(NULL)$$);
SELECT pg_temp.err($$SELECT * FROM cs.account_timeline('00000000-0000-0000-0000-0000000000a1', '-infinity')$$);
SELECT pg_temp.err($$SELECT * FROM cs.account_timeline('00000000-0000-0000-0000-0000000000ff')$$);

------------------------------------------------------------------------------
-- A CSM's timelines: her customers only
------------------------------------------------------------------------------

SET ROLE regress_ws_alice;
SELECT count(*) AS acme_rows FROM cs.account_timeline('00000000-0000-0000-0000-0000000000a1', '2026-03-01');
SELECT pg_temp.err($$SELECT * FROM cs.account_timeline('00000000-0000-0000-0000-0000000000b1', '2026-03-01')$$);
SELECT c.name, t.occurred_at, t.kind, t.title
  FROM cs.portfolio_timeline(since => '2026-03-01') t JOIN cs.customers c ON c.id = t.customer_id
 WHERE t.occurred_at < '2026-03-06';
-- Bob's portfolio is not hers to read
SELECT count(*) AS bobs_rows FROM cs.portfolio_timeline('regress_ws_bob', '2026-01-01');
RESET ROLE;
SELECT count(*) AS bobs_rows_for_admin FROM cs.portfolio_timeline('regress_ws_bob', '2026-01-01');

------------------------------------------------------------------------------
-- log_engagement
------------------------------------------------------------------------------

-- the kinds log_engagement accepts are exactly those of the table's CHECK
SELECT (SELECT array_agg(m[1] ORDER BY m[1])
          FROM regexp_matches(pg_get_constraintdef(k.oid), '''([a-z_]+)''', 'g') m)
       = (SELECT array_agg(x ORDER BY x) FROM unnest(cs.engagement_kinds()) x) AS kinds_agree
  FROM pg_constraint k WHERE k.conname = 'engagements_kind_check';

SET ROLE regress_ws_alice;
SELECT cs.log_engagement('00000000-0000-0000-0000-0000000000a1', 'meeting', '2026-03-25 15:00', 'Renewal prep') > 0 AS logged;
SELECT occurred_at, kind, title, detail
  FROM cs.account_timeline('00000000-0000-0000-0000-0000000000a1', '2026-03-01') WHERE kind = 'engagement';
-- not on Bob's customer, not an unknown kind, not without a time
SELECT pg_temp.err($$SELECT cs.log_engagement('00000000-0000-0000-0000-0000000000b1', 'meeting', '2026-03-25 15:00')$$);
SELECT pg_temp.err($$SELECT cs.log_engagement('00000000-0000-0000-0000-0000000000a1', 'party')$$);
SELECT pg_temp.err($$SELECT cs.log_engagement('00000000-0000-0000-0000-0000000000a1', 'call', NULL)$$);
SELECT pg_temp.err($$SELECT cs.log_engagement('00000000-0000-0000-0000-0000000000a1', 'call', 'infinity')$$);
-- and never by writing the table
SELECT pg_temp.err($$INSERT INTO cs.engagements (customer_id, kind, occurred_at) VALUES ('00000000-0000-0000-0000-0000000000a1', 'call', now())$$);
RESET ROLE;
-- a viewer cannot log
SET ROLE regress_ws_vic;
SELECT pg_temp.err($$SELECT cs.log_engagement('00000000-0000-0000-0000-0000000000a1', 'meeting')$$);
RESET ROLE;
SELECT kind, notes, logged_by FROM cs.engagements
 WHERE customer_id = '00000000-0000-0000-0000-0000000000a1' ORDER BY occurred_at;

-- a meeting she logs now counts in meetings_90d after the refresh; a note does not
SELECT position AS meetings_pos FROM cs.feature_catalog WHERE name = 'meetings_90d' \gset
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-0000000000a1']::uuid[]) AS refreshed;
SELECT features[:meetings_pos] AS meetings_before FROM cs.customer_features
 WHERE customer_id = '00000000-0000-0000-0000-0000000000a1' \gset
SET ROLE regress_ws_alice;
SELECT cs.log_engagement('00000000-0000-0000-0000-0000000000a1', 'meeting', notes => 'Quick sync') > 0 AS logged;
SELECT cs.log_engagement('00000000-0000-0000-0000-0000000000a1', 'note', notes => 'They plan a reorg') > 0 AS logged;
RESET ROLE;
SELECT EXISTS (SELECT 1 FROM cs.dirty_customers WHERE customer_id = '00000000-0000-0000-0000-0000000000a1') AS marked_dirty;
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-0000000000a1']::uuid[]) AS refreshed;
SELECT f.features[:meetings_pos] - :meetings_before AS meetings_added,
       (cs.features('00000000-0000-0000-0000-0000000000a1'))[:meetings_pos] = f.features[:meetings_pos] AS features_agree
  FROM cs.customer_features f WHERE f.customer_id = '00000000-0000-0000-0000-0000000000a1';
SET ROLE regress_ws_alice;
SELECT kind, title, detail FROM cs.account_timeline('00000000-0000-0000-0000-0000000000a1', now() - interval '1 hour')
 WHERE kind = 'engagement';
RESET ROLE;

------------------------------------------------------------------------------
-- move_opportunity: open -> in_progress -> won or lost
------------------------------------------------------------------------------

INSERT INTO cs.opportunities (id, customer_id, kind, score, expected_mrr, status, source) VALUES
 ('00000000-0000-0000-0000-00000000a001', '00000000-0000-0000-0000-0000000000a1', 'upsell', 0.7, 250, 'open', 'csm'),
 ('00000000-0000-0000-0000-00000000a002', '00000000-0000-0000-0000-0000000000a1', 'cross_sell', 0.6, 100, 'open', 'csm'),
 ('00000000-0000-0000-0000-00000000b001', '00000000-0000-0000-0000-0000000000b1', 'upsell', 0.6, 100, 'open', 'csm');
SET ROLE regress_ws_alice;
SELECT pg_temp.err($$SELECT cs.move_opportunity('00000000-0000-0000-0000-00000000a001', 'won', 300)$$);
SELECT status, won_mrr, closed_at IS NULL AS still_open, updated_by
  FROM cs.move_opportunity('00000000-0000-0000-0000-00000000a001', 'in_progress');
SELECT pg_temp.err($$SELECT cs.move_opportunity('00000000-0000-0000-0000-00000000a001', 'won')$$);
SELECT pg_temp.err($$SELECT cs.move_opportunity('00000000-0000-0000-0000-00000000a001', 'won', -5)$$);
SELECT status, won_mrr, closed_at IS NOT NULL AS closed, updated_by
  FROM cs.move_opportunity('00000000-0000-0000-0000-00000000a001', 'won', 300);
SELECT pg_temp.err($$SELECT cs.move_opportunity('00000000-0000-0000-0000-00000000a001', 'lost')$$);
SELECT pg_temp.err($$SELECT cs.move_opportunity('00000000-0000-0000-0000-00000000a002', 'bogus')$$);
SELECT pg_temp.err($$SELECT cs.move_opportunity('00000000-0000-0000-0000-00000000a002', 'lost', 5)$$);
SELECT pg_temp.err($$SELECT cs.move_opportunity('00000000-0000-0000-0000-00000000a002', 'open')$$);
SELECT status, won_mrr, closed_at IS NOT NULL AS closed
  FROM cs.move_opportunity('00000000-0000-0000-0000-00000000a002', 'dismissed');
SELECT pg_temp.err($$SELECT cs.move_opportunity('00000000-0000-0000-0000-00000000b001', 'in_progress')$$);
SELECT pg_temp.err($$SELECT cs.move_opportunity(NULL, 'lost')$$);
SELECT pg_temp.err($$UPDATE cs.opportunities SET status = 'won' WHERE id = '00000000-0000-0000-0000-00000000a002'$$);
SELECT kind, title, detail FROM cs.account_timeline('00000000-0000-0000-0000-0000000000a1', now() - interval '1 hour')
 WHERE kind LIKE 'opportunity%' ORDER BY kind;
RESET ROLE;
SELECT id, status, won_mrr FROM cs.opportunities ORDER BY id;
-- the refresh keeps what the CSM moved
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-0000000000a1']::uuid[]) AS refreshed;
SELECT id, status FROM cs.opportunities WHERE source = 'csm' ORDER BY id;

------------------------------------------------------------------------------
-- record_customer_action: an action without an alert
------------------------------------------------------------------------------

SET ROLE regress_ws_alice;
SELECT cs.record_customer_action('00000000-0000-0000-0000-0000000000a2', 'usage_recovery_training') > 0 AS recorded;
SELECT cs.record_customer_action('00000000-0000-0000-0000-0000000000a2', 'billing_outreach', 'renewed') > 0 AS recorded;
SELECT pg_temp.err($$SELECT cs.record_customer_action('00000000-0000-0000-0000-0000000000b1', 'billing_outreach')$$);
SELECT pg_temp.err($$SELECT cs.record_customer_action('00000000-0000-0000-0000-0000000000a2', 'no_such_playbook')$$);
SELECT pg_temp.err($$SELECT cs.record_customer_action('00000000-0000-0000-0000-0000000000a2', 'billing_outreach', 'great')$$);
SELECT kind, title, CASE kind WHEN 'action' THEN detail END AS detail
  FROM cs.account_timeline('00000000-0000-0000-0000-0000000000a2', now() - interval '1 hour')
 WHERE kind LIKE 'action%' ORDER BY kind, title;
RESET ROLE;
SELECT alert_id, playbook, taken_by, outcome, outcome_source, outcome_at IS NOT NULL AS has_outcome_time
  FROM cs.actions WHERE customer_id = '00000000-0000-0000-0000-0000000000a2' ORDER BY id;

-- an action without an alert teaches about the customer's churn factors the playbook answers
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, risk_factors, created_at) VALUES
 ('00000000-0000-0000-0000-0000000000a2', 'churn', 0.7,
  '[{"feature": "usage_trend_30d", "value": -0.5, "contribution": 0.8}, {"feature": "days_overdue", "value": 20, "contribution": 0.3}]',
  '2026-04-01');
SET ROLE regress_ws_alice;
SELECT cs.record_customer_action('00000000-0000-0000-0000-0000000000a2', 'usage_recovery_training') > 0 AS recorded;
RESET ROLE;
SELECT playbook, factors FROM cs.actions WHERE customer_id = '00000000-0000-0000-0000-0000000000a2' ORDER BY id DESC LIMIT 1;

DROP ROLE regress_ws_alice;
DROP ROLE regress_ws_bob;
DROP ROLE regress_ws_vic;
