-- Next best action: templates, playbook validation, ranking by learned
-- effectiveness, actions and measured outcomes, feedback, alert quality, views.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- start without the shipped churn model: this test's scores must not depend on it
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

CREATE FUNCTION pg_temp.setf(ext text, vals jsonb) RETURNS int LANGUAGE sql AS $$
    INSERT INTO cs.customer_features (customer_id, as_of, features)
    SELECT c.id, '2026-04-01',
           (SELECT array_agg(coalesce((vals ->> fc.name)::float4, 'NaN') ORDER BY fc.position) FROM cs.feature_catalog fc)
      FROM cs.customers c WHERE c.external_id = ext
    ON CONFLICT (customer_id) DO UPDATE SET features = excluded.features;
    SELECT 1;
$$;
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm, contract_end_date) VALUES
 ('00000000-0000-0000-0000-0000000000d1', 'n-d1', 'Risky',   'smb',        5000, 10, 'csm_a', '2026-12-31'),
 ('00000000-0000-0000-0000-0000000000d2', 'n-d2', 'Grower',  'smb',        2000, 20, 'csm_a', NULL),
 ('00000000-0000-0000-0000-0000000000d3', 'n-d3', 'Wobbly',  'enterprise', 9000, 50, 'csm_b', NULL),
 ('00000000-0000-0000-0000-0000000000d4', 'n-d4', 'Fine',    'smb',        1000, 10, 'csm_b', NULL),
 ('00000000-0000-0000-0000-0000000000d5', 'n-d5', 'Leaver',  'smb',         500,  5, 'csm_b', NULL);
SELECT sum(pg_temp.setf(ext, f::jsonb)) AS vectors FROM (VALUES
  ('n-d1', '{"days_to_renewal": 60, "seat_utilisation": 0.75, "last_nps": 7}'),
  ('n-d2', '{"seat_utilisation": 1.25, "active_users_30d": 25, "usage_trend_30d": 0.5}'),
  ('n-d3', '{}'), ('n-d4', '{}'), ('n-d5', '{}')) t(ext, f);
INSERT INTO cs.customer_health_scores (customer_id, overall_score, band, drivers, calculated_at) VALUES
 ('00000000-0000-0000-0000-0000000000d1', 0.30, 'red', '{"top": [{"measure": "usage_trend_30d", "value": -0.6, "impact": 0.1}]}', '2026-04-01'),
 ('00000000-0000-0000-0000-0000000000d2', 0.80, 'green', '{"top": []}', '2026-04-01'),
 ('00000000-0000-0000-0000-0000000000d3', 0.50, 'yellow', '{"top": []}', '2026-04-01'),
 ('00000000-0000-0000-0000-0000000000d4', 0.90, 'green', '{"top": []}', '2026-04-01');
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, risk_factors, created_at) VALUES
 ('00000000-0000-0000-0000-0000000000d1', 'churn', 0.80, '[{"feature": "days_since_last_activity", "value": 30, "contribution": 0.9}]', '2026-04-01'),
 ('00000000-0000-0000-0000-0000000000d3', 'churn', 0.65, '[]', '2026-04-01'),
 ('00000000-0000-0000-0000-0000000000d5', 'churn', 0.70, '[]', '2026-04-01');

------------------------------------------------------------------------------
-- templates
------------------------------------------------------------------------------
SELECT cs.render_template('Hi {name} ({segment}, {external_id}), csm {csm}, mrr {mrr}, health {overall_score} {band}, churn {churn_risk}, '
                          'top driver {top_driver}, risk factor {top_risk_factor}, renewal in {days_to_renewal} days on {renewal_date}, '
                          'seats {seat_utilisation} of {seats_licensed}, nps {last_nps}.', '00000000-0000-0000-0000-0000000000d1');
-- unknown values read n/a; a placeholder may repeat
SELECT cs.render_template('{name}: churn {churn_risk}, nps {last_nps}, {name} again', '00000000-0000-0000-0000-0000000000d4');
SELECT cs.render_template('Dear {first_name}', '00000000-0000-0000-0000-0000000000d4');
SELECT cs.render_template('Hi {name}', '00000000-0000-0000-0000-00000000beef');
SELECT cs.render_template('Hi {name}', NULL);

------------------------------------------------------------------------------
-- playbook validation
------------------------------------------------------------------------------
INSERT INTO cs.playbooks (name, action, answers, template) VALUES ('bad1', 'x', '{vibes}', 'Hi {name}');
INSERT INTO cs.playbooks (name, action, answers, template) VALUES ('bad2', 'x', '{last_nps}', 'Hi {nickname}');
INSERT INTO cs.playbooks (name, action, answers, template) VALUES ('bad3', 'x', '{}', 'Hi {name}');
INSERT INTO cs.playbooks (name, action, answers, template) VALUES ('bad4', ' ', '{last_nps}', 'Hi {name}');
UPDATE cs.playbooks SET template = 'Hi {nickname}' WHERE name = 'billing_outreach';
SELECT name, action, answers, outcome_window FROM cs.playbooks ORDER BY id;

------------------------------------------------------------------------------
-- alerts and their suggestions
------------------------------------------------------------------------------
-- Risky: churn 0.80 (high) and renewal in 60 days with red health (high); Grower: seats 125% (high);
-- Wobbly: churn 0.65 (medium); Leaver: churn 0.70 (medium); Fine: nothing.
SELECT * FROM cs.evaluate_alerts();
SELECT c.name, r.name AS rule, a.severity, a.status FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id
  JOIN cs.alert_rules r ON r.id = a.rule_id ORDER BY c.id, r.id;
\set risky_churn '(SELECT id FROM cs.alerts WHERE customer_id = ''00000000-0000-0000-0000-0000000000d1'' AND rule_id = 1)'
\set wobbly_churn '(SELECT id FROM cs.alerts WHERE customer_id = ''00000000-0000-0000-0000-0000000000d3'' AND rule_id = 1)'
\set leaver_churn '(SELECT id FROM cs.alerts WHERE customer_id = ''00000000-0000-0000-0000-0000000000d5'' AND rule_id = 1)'
\set grower_seats '(SELECT id FROM cs.alerts WHERE customer_id = ''00000000-0000-0000-0000-0000000000d2'')'
-- With no evidence every playbook sits at the Beta(2,2) prior mean 0.5: more matched factors
-- first, then name.  For churn_risk: executive_sponsor_call before renewal_rescue_plan.
SELECT * FROM cs.rank_playbooks('{churn_risk}');
-- An alert's own condition terms come first, whatever the other factors: for a usage
-- drop that also carries churn_risk, usage_recovery_training leads.
SELECT rank, playbook, matched FROM cs.rank_playbooks('{churn_risk,usage_trend_30d}', '{usage_trend_30d}');
SELECT s ->> 'rank' AS rank, s ->> 'playbook' AS playbook, s -> 'matched' AS matched, s ->> 'effectiveness' AS effectiveness, s ->> 'message' AS message
  FROM cs.alerts a, jsonb_array_elements(a.suggested_actions) s WHERE a.id = :risky_churn ORDER BY 1;

------------------------------------------------------------------------------
-- actions and outcomes
------------------------------------------------------------------------------
SELECT cs.record_action('00000000-0000-0000-0000-00000000beef', 'renewal_rescue_plan');
SELECT cs.record_action(:risky_churn, 'interpretive_dance');
SELECT cs.record_action(:risky_churn, 'renewal_rescue_plan', 'thrilled');
SELECT cs.record_action(NULL, 'renewal_rescue_plan');
-- act 1-4 wait for measurement, act 5 is reported at once, act 6 stays within its window
SELECT cs.record_action(:risky_churn, 'renewal_rescue_plan') AS act1;
SELECT cs.record_action(:wobbly_churn, 'renewal_rescue_plan') AS act2;
SELECT cs.record_action(:grower_seats, 'seat_expansion_offer') AS act3;
SELECT cs.record_action(:leaver_churn, 'executive_sponsor_call') AS act4;
SELECT cs.record_action(:wobbly_churn, 'executive_sponsor_call', 'no_change') AS act5;
SELECT cs.record_action(:risky_churn, 'usage_recovery_training') AS act6;
-- recording an action acknowledged the open alerts
SELECT c.name, a.status FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id WHERE a.rule_id = 1 ORDER BY c.id;
SELECT id, playbook, factors, health_at_action, band_at_action, renewal_date_at_action, outcome, outcome_source
  FROM cs.actions ORDER BY id;
-- nothing is due yet
SELECT cs.measure_action_outcomes();
-- 61 days later (actions 1-4 moved back): Risky renewed for a year, Wobbly's health rose
-- 0.50 -> 0.62 (>= +0.1: recovered), Grower bought another product (expanded), Leaver churned.
UPDATE cs.actions SET taken_at = taken_at - interval '61 days' WHERE id <= 4;
UPDATE cs.customers SET contract_end_date = '2027-12-31' WHERE external_id = 'n-d1';
INSERT INTO cs.customer_health_scores (customer_id, overall_score, band, drivers)
VALUES ('00000000-0000-0000-0000-0000000000d3', 0.62, 'yellow', '{"top": []}');
INSERT INTO cs.subscriptions (customer_id, product, mrr, started_at)
VALUES ('00000000-0000-0000-0000-0000000000d2', 'analytics', 300, current_date);
UPDATE cs.customers SET churned_at = current_date WHERE external_id = 'n-d5';
SELECT cs.measure_action_outcomes();
SELECT id, playbook, outcome, outcome_source FROM cs.actions ORDER BY id;
-- measured once only
SELECT cs.measure_action_outcomes();

-- Effectiveness for churn_risk: renewal_rescue_plan 2 successes of 2: (2+2)/(4+2) = 0.667;
-- executive_sponsor_call 0 of 2 (churned, no_change): 2/6 = 0.333.  The ranking flips.
-- seat_expansion_offer for seat_utilisation: 1 of 1: 3/5 = 0.600.
SELECT * FROM cs.playbook_effectiveness WHERE trials > 0 ORDER BY playbook, factor;
SELECT * FROM cs.rank_playbooks('{churn_risk}');
-- Thompson sampling (opt-in, never used by alerts): the same playbooks, each with a draw in [0, 1]
-- from its posterior; the order varies from call to call.
SELECT playbook, trials, effectiveness, draw BETWEEN 0 AND 1 AS valid_draw FROM cs.sample_playbooks('{churn_risk}') ORDER BY playbook;
-- (the argument depends on g so that each row calls the function again)
SELECT count(DISTINCT s.playbook) > 1 AS order_varies
  FROM generate_series(1, 200) g,
       LATERAL cs.sample_playbooks(CASE WHEN g > 0 THEN '{churn_risk}'::text[] END) s
 WHERE s.rank = 1;
-- the next evaluation stores the new ranking on Risky's alert: the playbooks answering the
-- rule's own term (churn_risk) first, by effectiveness, then the others
SELECT * FROM cs.evaluate_alerts(ARRAY['00000000-0000-0000-0000-0000000000d1']::uuid[]);
SELECT s ->> 'rank' AS rank, s ->> 'playbook' AS playbook, s ->> 'trials' AS trials, s ->> 'effectiveness' AS effectiveness
  FROM cs.alerts a, jsonb_array_elements(a.suggested_actions) s WHERE a.id = :risky_churn ORDER BY 1;

------------------------------------------------------------------------------
-- feedback and alert quality
------------------------------------------------------------------------------
SELECT cs.record_feedback(:risky_churn, 'accuracy', 5, 'spot on') IS NOT NULL AS recorded;
SELECT cs.record_feedback(:wobbly_churn, 'accuracy', 2) IS NOT NULL AS recorded;
SELECT cs.record_feedback(:risky_churn, 'relevance', 4) IS NOT NULL AS recorded;
SELECT cs.record_feedback(:risky_churn, 'mood', 4);
SELECT cs.record_feedback(:risky_churn, 'accuracy', 0);
SELECT cs.record_feedback('00000000-0000-0000-0000-00000000beef', 'accuracy', 3);
SELECT cs.record_feedback(:risky_churn, 'accuracy', NULL);
SELECT feedback_type, rating, comments, user_id = current_user AS by_me FROM cs.alert_feedback ORDER BY created_at, rating;
-- churn_risk_high: 3 alerts; accuracy 5 and 2: precision 1/2 = 0.5; Leaver churned after its
-- alert: 1 of 3 = 0.333.  seat_upsell: Grower started a subscription after its alert: 1 of 1.
-- renewal_red_health: 1 alert, no ratings, not borne out (yet).
SELECT rule, alert_type, alerts, unresolved, dismissed, accuracy_ratings, feedback_precision, outcome_hits, outcome_precision
  FROM cs.alert_quality WHERE alerts > 0 ORDER BY rule_id;

------------------------------------------------------------------------------
-- views
------------------------------------------------------------------------------
-- Grower's upsell: s_util 1, s_growth 1, health 0.8: 0.5 + 0.25 + 0.2 = 0.95; extra seats
-- ceil(1.2 x 25) - 20 = 10 at 2000/20 = 100: 10 x 100 x 0.95 = 950.00.
SELECT cs.refresh_opportunities();
SELECT name, csm, kind, product, score, expected_mrr, status, band FROM cs.opportunity_pipeline;
-- Leaver churned: its alert is no longer in the risk list
SELECT name, rule, severity, status, mrr_at_risk, churn_risk, band, top_suggestion FROM cs.risk_alerts
 ORDER BY severity_rank DESC, mrr_at_risk DESC, created_at, alert_id;
SELECT name, rule, playbook, factors, taken_by = current_user AS by_me, outcome, outcome_source, playbook_effectiveness
  FROM cs.action_tracking ORDER BY action_id;
-- csm_a smb: Risky (5000, red, churn 0.80 and high alerts: at risk) and Grower (2000, green).
-- csm_b enterprise: Wobbly (9000, churn 0.65 >= 0.6: at risk; yellow by its latest score).
-- csm_b smb: Fine (1000, green); Leaver churned and is not counted.
SELECT * FROM cs.portfolio_summary;

-- every view column is documented
SELECT c.relname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'cs' AND c.relkind = 'v' AND a.attnum > 0 AND NOT a.attisdropped
   AND col_description(c.oid, a.attnum) IS NULL
 ORDER BY 1, 2;
-- and every function of this part
SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'cs' AND obj_description(p.oid, 'pg_proc') IS NULL AND p.prorettype <> 'trigger'::regtype
 ORDER BY 1::text;
