-- Next best action: playbooks, their learned effectiveness (Beta-Binomial),
-- the actions CSMs take and their measured outcomes; alert feedback and
-- quality; the reporting views.

------------------------------------------------------------------------------
-- Playbooks
------------------------------------------------------------------------------

CREATE FUNCTION cs.opportunity_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['upsell', 'cross_sell', 'expansion', 'adoption'];
COMMENT ON FUNCTION cs.opportunity_kinds() IS 'Opportunity kinds a playbook may answer.';

-- Refuses a playbook that answers unknown factors or uses unknown placeholders.
CREATE FUNCTION cs._validate_playbook() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    bad text;
BEGIN
    IF btrim(NEW.name) = '' OR btrim(NEW.action) = '' THEN
        RAISE EXCEPTION 'playbook name and action must not be blank' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(NEW.answers) = 0 THEN
        RAISE EXCEPTION 'playbook "%" must answer at least one risk factor or opportunity kind', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x INTO bad FROM unnest(NEW.answers) x
     WHERE x IS NULL OR NOT (x = ANY (cs.opportunity_kinds()) OR x = ANY (cs.condition_scores())
                             OR EXISTS (SELECT 1 FROM cs.feature_catalog fc WHERE fc.name = x))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'playbook "%" answers unknown factor "%"', NEW.name, bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Answers are cs.feature_catalog names, condition score names (cs.condition_scores()) or opportunity kinds.';
    END IF;
    PERFORM cs.check_template(NEW.template);
    RETURN NEW;
END;
$$;
CREATE TRIGGER playbooks_validate BEFORE INSERT OR UPDATE ON cs.playbooks
    FOR EACH ROW EXECUTE FUNCTION cs._validate_playbook();

INSERT INTO cs.playbooks (name, action, answers, template, outcome_window, description) VALUES
('executive_sponsor_call', 'Call the executive sponsor',
 '{churn_risk,overall_score,champion_left_90d,has_active_champion}',
 'Hello {name} team, I would like to set up a short call with your leadership to review the value you get from us and agree on priorities for the coming months. — {csm}',
 '30 days', 'Escalate the relationship to the sponsor when the account is at risk overall.'),
('usage_recovery_training', 'Offer a re-onboarding training',
 '{usage_trend_14d,usage_trend_30d,active_users_7d,active_users_30d,active_days_30d,days_since_last_activity,usage_score}',
 'Hello {name} team, we noticed your team uses the product less lately. Can we schedule a free training session to help you get more out of it? — {csm}',
 '30 days', 'Win back usage with a hands-on session.'),
('billing_outreach', 'Contact billing about the open invoice',
 '{days_overdue,late_or_failed_invoices_90d,payment_score}',
 'Hello {name} team, an invoice on your account is past due. Could you check with your finance team, or tell us if something needs fixing on our side? — {csm}',
 '30 days', 'Settle payment problems before they turn into churn.'),
('renewal_rescue_plan', 'Build a renewal rescue plan',
 '{days_to_renewal,churn_risk,overall_score}',
 'Hello {name} team, your renewal is in {days_to_renewal} days. I would like to walk through a success plan with you so the next term delivers what you need. — {csm}',
 '60 days', 'A joint plan with concrete goals ahead of a risky renewal.'),
('new_champion_onboarding', 'Find and onboard a new champion',
 '{champion_left_90d,has_active_champion}',
 'Hello {name} team, with the recent change in your team we would love to introduce the product to whoever now owns it. Who should we talk to? — {csm}',
 '45 days', 'Replace a departed champion before the account goes dark.'),
('support_escalation_review', 'Review open tickets with support leadership',
 '{tickets_30d,tickets_90d,open_high_priority_tickets,mean_csat_90d,mean_hours_to_close_90d,support_score}',
 'Hello {name} team, I am sorry about the recent support experience. I have escalated your open tickets and will follow up personally until they are solved. — {csm}',
 '30 days', 'Own the support backlog of an unhappy account.'),
('nps_detractor_followup', 'Call the detractor',
 '{last_nps,nps_trend}',
 'Hello {name} team, thank you for your feedback (you rated us {last_nps}). I would like to understand what we can do better. — {csm}',
 '30 days', 'Close the loop with a detractor.'),
('seat_expansion_offer', 'Offer additional seats',
 '{seat_utilisation,upsell}',
 'Hello {name} team, you are using {seat_utilisation} of your {seats_licensed} seats. We can add seats at your current price so nobody waits for access. — {csm}',
 '45 days', 'Turn high seat utilisation into an expansion.'),
('cross_sell_introduction', 'Introduce a complementary product',
 '{cross_sell,active_products}',
 'Hello {name} team, teams like yours often pair our products to do more. Could I show you a short demo? — {csm}',
 '45 days', 'Introduce the product similar customers adopted.'),
('adoption_workshop', 'Run a feature adoption workshop',
 '{adoption,feature_breadth_30d}',
 'Hello {name} team, you use a part of what your plan includes. A one-hour workshop could show your team the features that fit your goals. — {csm}',
 '30 days', 'Broaden feature adoption.');

------------------------------------------------------------------------------
-- Effectiveness and ranking
--
-- Each measured action is a Bernoulli trial for every factor it addressed
-- (cs.actions.factors): success when the outcome is recovered, renewed or
-- expanded, failure when churned or no_change.  With a Beta(2, 2) prior the
-- posterior mean of a (playbook, factor) is (2 + successes) / (4 + trials):
-- 0.5 with no evidence, moving towards the observed rate as trials accrue.
-- Ranking uses the posterior mean only, so it is deterministic.
------------------------------------------------------------------------------

CREATE VIEW cs.playbook_effectiveness WITH (security_invoker = true) AS
SELECT p.name AS playbook,
       f.factor,
       count(a.id) AS trials,
       count(a.id) FILTER (WHERE a.outcome IN ('recovered', 'renewed', 'expanded')) AS successes,
       count(a.id) FILTER (WHERE a.outcome IN ('churned', 'no_change')) AS failures,
       round((2 + count(a.id) FILTER (WHERE a.outcome IN ('recovered', 'renewed', 'expanded')))::numeric
             / (4 + count(a.id)), 3) AS effectiveness
  FROM cs.playbooks p
 CROSS JOIN LATERAL unnest(p.answers) f(factor)
  LEFT JOIN cs.actions a ON a.playbook = p.name AND a.outcome IS NOT NULL AND f.factor = ANY (a.factors)
 GROUP BY p.name, f.factor;
COMMENT ON VIEW cs.playbook_effectiveness IS 'Learned effectiveness per playbook and the factor it answers: Beta(2,2) posterior mean of success over measured actions.';
COMMENT ON COLUMN cs.playbook_effectiveness.playbook IS 'Playbook name.';
COMMENT ON COLUMN cs.playbook_effectiveness.factor IS 'Risk factor or opportunity kind the playbook answers.';
COMMENT ON COLUMN cs.playbook_effectiveness.trials IS 'Actions with an outcome that addressed this factor with this playbook.';
COMMENT ON COLUMN cs.playbook_effectiveness.successes IS 'Of them, recovered, renewed or expanded.';
COMMENT ON COLUMN cs.playbook_effectiveness.failures IS 'Of them, churned or no_change.';
COMMENT ON COLUMN cs.playbook_effectiveness.effectiveness IS 'Posterior mean (2 + successes) / (4 + trials) under a Beta(2,2) prior.';

-- Applicable playbooks for a set of factors, best first.
CREATE FUNCTION cs.rank_playbooks(factors text[])
RETURNS TABLE (rank int, playbook text, action text, matched text[], trials bigint, effectiveness numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
BEGIN ATOMIC
    SELECT (row_number() OVER (ORDER BY b.effectiveness DESC, cardinality(b.matched) DESC, b.playbook))::int,
           b.playbook, b.action, b.matched, b.trials, b.effectiveness
      FROM (SELECT p.name AS playbook, p.action,
                   ARRAY(SELECT x FROM unnest(p.answers) x WHERE x = ANY (factors) ORDER BY x) AS matched,
                   best.trials, best.effectiveness
              FROM cs.playbooks p
             CROSS JOIN LATERAL (SELECT e.trials, e.effectiveness FROM cs.playbook_effectiveness e
                                  WHERE e.playbook = p.name AND e.factor = ANY (factors)
                                  ORDER BY e.effectiveness DESC, e.trials DESC LIMIT 1) best
             WHERE p.enabled AND p.answers && factors) b
     ORDER BY 1;
END;
COMMENT ON FUNCTION cs.rank_playbooks(text[]) IS
    'Enabled playbooks answering any of the factors, ranked by the best posterior mean effectiveness over the matched factors, then by how many factors they match, then by name.';

-- The ranked suggestions stored on an alert, with each message rendered for the customer.
CREATE FUNCTION cs.suggest_actions(factors text[], customer_id uuid, max_suggestions int DEFAULT 3)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
BEGIN ATOMIC
    SELECT coalesce(jsonb_agg(jsonb_build_object('rank', r.rank, 'playbook', r.playbook, 'action', r.action,
                                                 'matched', to_jsonb(r.matched), 'trials', r.trials,
                                                 'effectiveness', r.effectiveness,
                                                 'message', cs.fill_template(p.template, cs.template_values(suggest_actions.customer_id)))
                              ORDER BY r.rank), '[]')
      FROM cs.rank_playbooks(factors) r
      JOIN cs.playbooks p ON p.name = r.playbook
     WHERE r.rank <= max_suggestions;
END;
COMMENT ON FUNCTION cs.suggest_actions(text[], uuid, int) IS
    'Up to max_suggestions ranked playbooks for the factors, as JSON with the action, matched factors, effectiveness and the message rendered for the customer.';

------------------------------------------------------------------------------
-- Actions and outcomes
------------------------------------------------------------------------------

CREATE FUNCTION cs.record_action(alert_id uuid, playbook text, outcome text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    a   cs.alerts;
    p   cs.playbooks;
    h   record;
    fs  text[];
    aid bigint;
BEGIN
    IF alert_id IS NULL OR playbook IS NULL THEN
        RAISE EXCEPTION 'alert id and playbook must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF outcome IS NOT NULL AND outcome NOT IN ('recovered', 'renewed', 'expanded', 'churned', 'no_change') THEN
        RAISE EXCEPTION 'unknown outcome "%"', outcome
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Outcomes are recovered, renewed, expanded, churned and no_change.';
    END IF;
    SELECT * INTO a FROM cs.alerts al WHERE al.id = record_action.alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO p FROM cs.playbooks pb WHERE pb.name = record_action.playbook;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'playbook "%" does not exist', playbook USING ERRCODE = 'no_data_found';
    END IF;
    -- What the outcome will teach about: the alert's factors this playbook answers.
    fs := ARRAY(SELECT DISTINCT y.x FROM jsonb_array_elements(coalesce(a.risk_factors, '[]')) f
                 CROSS JOIN LATERAL (SELECT coalesce(f ->> 'feature', f ->> 'score', f ->> 'kind') AS x) y
                 WHERE y.x = ANY (p.answers) ORDER BY y.x);
    SELECT s.overall_score, s.band INTO h FROM cs.customer_health_scores s
     WHERE s.customer_id = a.customer_id ORDER BY s.calculated_at DESC LIMIT 1;
    INSERT INTO cs.actions (alert_id, customer_id, playbook, outcome, outcome_at, outcome_source, factors,
                            health_at_action, band_at_action, renewal_date_at_action)
    SELECT a.id, a.customer_id, p.name, outcome, CASE WHEN outcome IS NOT NULL THEN now() END,
           CASE WHEN outcome IS NOT NULL THEN 'reported' END, fs, h.overall_score, h.band, c.contract_end_date
      FROM cs.customers c WHERE c.id = a.customer_id
    RETURNING id INTO aid;
    IF a.status = 'open' THEN
        PERFORM cs._alert_transition(a.id, 'acknowledged', ARRAY['open'], 'acknowledged', 'action: ' || p.name);
    END IF;
    RETURN aid;
END;
$$;
COMMENT ON FUNCTION cs.record_action(uuid, text, text) IS
    'Logs that the current user applied a playbook to an alert (acknowledging it if open), with the factors it addresses and the health and renewal date to measure against; an outcome given here is stored as reported. Returns the action id.';

CREATE FUNCTION cs.measure_action_outcomes()
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    n int;
BEGIN
    -- First match wins: churned, expanded, renewed, recovered, else no_change.
    UPDATE cs.actions ac
       SET outcome = m.outcome, outcome_at = greatest(now(), ac.taken_at), outcome_source = 'measured'
      FROM (SELECT a.id,
                   CASE WHEN c.churned_at IS NOT NULL AND c.churned_at >= a.taken_at::date THEN 'churned'
                        WHEN EXISTS (SELECT 1 FROM cs.subscriptions s
                                      WHERE s.customer_id = a.customer_id AND s.started_at >= a.taken_at::date) THEN 'expanded'
                        WHEN c.contract_end_date > a.renewal_date_at_action THEN 'renewed'
                        WHEN (a.band_at_action = 'red' AND h.band IN ('yellow', 'green'))
                             OR h.overall_score >= a.health_at_action + 0.1 THEN 'recovered'
                        ELSE 'no_change' END AS outcome
              FROM cs.actions a
              JOIN cs.customers c ON c.id = a.customer_id
              LEFT JOIN cs.playbooks p ON p.name = a.playbook
              LEFT JOIN LATERAL (SELECT s.overall_score, s.band FROM cs.customer_health_scores s
                                  WHERE s.customer_id = a.customer_id
                                  ORDER BY s.calculated_at DESC LIMIT 1) h ON true
             WHERE a.outcome IS NULL
               AND a.taken_at + coalesce(p.outcome_window, interval '30 days') <= now()
             FOR UPDATE OF a SKIP LOCKED) m
     WHERE ac.id = m.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.measure_action_outcomes() IS
    'Measures the outcome of actions whose playbook outcome window has passed: churned (churned since), expanded (a subscription started since), '
    'renewed (contract end moved later), recovered (health back from red to yellow or green, or up by 0.1 or more), else no_change. Returns how many were measured; safe to call periodically and concurrently.';
