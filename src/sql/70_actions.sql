-- Next best action: playbooks, their learned effectiveness (Beta-Binomial),
-- the actions CSMs take and their measured outcomes; alert feedback and
-- quality; the reporting views.

------------------------------------------------------------------------------
-- Playbooks
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.opportunity_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY['upsell', 'cross_sell', 'expansion', 'adoption']
$$;
COMMENT ON FUNCTION cs.opportunity_kinds() IS 'Opportunity kinds a playbook may answer.';

-- Refuses a playbook that answers unknown factors or uses unknown placeholders.
CREATE OR REPLACE FUNCTION cs._validate_playbook() RETURNS trigger
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
CREATE OR REPLACE TRIGGER playbooks_validate BEFORE INSERT OR UPDATE ON cs.playbooks
    FOR EACH ROW EXECUTE FUNCTION cs._validate_playbook();

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

CREATE OR REPLACE VIEW cs.playbook_effectiveness WITH (security_invoker = true) AS
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

-- Applicable playbooks for a set of factors, best first.  plpgsql rather than
-- SQL so that the plan is cached: alert evaluation calls it for every firing.
-- The ranking over given playbooks and effectiveness rows: what alert
-- evaluation reads once per run (on a Citus cluster the effectiveness is a
-- query over the distributed cs.actions, too dear to repeat for every set of
-- factors).
CREATE OR REPLACE FUNCTION cs._rank_playbooks(factors text[], condition_terms text[], pbs cs.playbooks[],
                                              eff cs.playbook_effectiveness[])
RETURNS TABLE (rank int, playbook text, action text, matched text[], trials bigint, effectiveness numeric)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (row_number() OVER (ORDER BY coalesce(b.matched && condition_terms, false) DESC, b.effectiveness DESC,
                                        cardinality(b.matched) DESC, b.playbook))::int,
           b.playbook, b.action, b.matched, b.trials, b.effectiveness
      FROM (SELECT p.name AS playbook, p.action,
                   ARRAY(SELECT x FROM unnest(p.answers) x WHERE x = ANY (factors) ORDER BY x) AS matched,
                   best.trials, best.effectiveness
              FROM unnest(pbs) p
             CROSS JOIN LATERAL (SELECT e.trials, e.effectiveness FROM unnest(eff) e
                                  WHERE e.playbook = p.name AND e.factor = ANY (factors)
                                  ORDER BY e.effectiveness DESC, e.trials DESC LIMIT 1) best
             WHERE p.enabled AND p.answers && factors) b
     ORDER BY 1
$$;
COMMENT ON FUNCTION cs._rank_playbooks(text[], text[], cs.playbooks[], cs.playbook_effectiveness[]) IS
    'Internal: cs.rank_playbooks over the given playbooks and rows of cs.playbook_effectiveness (read once by the caller).';

CREATE OR REPLACE FUNCTION cs.rank_playbooks(factors text[], condition_terms text[] DEFAULT '{}')
RETURNS TABLE (rank int, playbook text, action text, matched text[], trials bigint, effectiveness numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN QUERY
    SELECT * FROM cs._rank_playbooks(factors, condition_terms,
                                     ARRAY(SELECT p FROM cs.playbooks p WHERE p.enabled AND p.answers && factors),
                                     ARRAY(SELECT e FROM cs.playbook_effectiveness e WHERE e.factor = ANY (factors)));
END;
$$;
COMMENT ON FUNCTION cs.rank_playbooks(text[], text[]) IS
    'Enabled playbooks answering any of the factors, ranked first those answering any of condition_terms (an alert''s own condition terms), then by the best posterior mean effectiveness over the matched factors, then by how many factors they match, then by name.';

-- Exploration for those who want it: one Thompson draw per playbook.  For
-- integer shape parameters a Beta(a, b) variate is the a-th smallest of
-- a + b - 1 uniform variates, which needs nothing but random().  Never used by
-- alert evaluation, whose suggestions stay deterministic.
CREATE OR REPLACE FUNCTION cs.sample_playbooks(factors text[])
RETURNS TABLE (rank int, playbook text, action text, matched text[], trials bigint, effectiveness numeric, draw float8)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN QUERY
    SELECT (row_number() OVER (ORDER BY d.draw DESC, d.playbook))::int, d.playbook, d.action, d.matched, d.trials,
           d.effectiveness, d.draw
      FROM (SELECT r.*,
                   (SELECT u FROM (SELECT random() AS u FROM generate_series(1, (4 + r.trials - 1)::int)) x
                     ORDER BY u OFFSET (2 + e.successes - 1) LIMIT 1) AS draw
              FROM cs.rank_playbooks(factors) r
              JOIN LATERAL (SELECT pe.successes FROM cs.playbook_effectiveness pe
                             WHERE pe.playbook = r.playbook AND pe.factor = ANY (factors)
                             ORDER BY pe.effectiveness DESC, pe.trials DESC LIMIT 1) e ON true) d
     ORDER BY 1;
END;
$$;
COMMENT ON FUNCTION cs.sample_playbooks(text[]) IS
    'Thompson sampling over the playbooks answering the factors: ranks them by one draw from each Beta(2 + successes, 2 + failures) posterior (of its best matched factor). Volatile; alert suggestions use the deterministic cs.rank_playbooks.';

-- The same from placeholder values already fetched (alert evaluation has them).
CREATE OR REPLACE FUNCTION cs.suggest_actions(factors text[], vals jsonb, max_suggestions int DEFAULT 3)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('rank', r.rank, 'playbook', r.playbook, 'action', r.action,
                                                         'matched', to_jsonb(r.matched), 'trials', r.trials,
                                                         'effectiveness', r.effectiveness,
                                                         'message', cs.fill_template(p.template, vals))
                                      ORDER BY r.rank), '[]')
              FROM cs.rank_playbooks(factors) r
              JOIN cs.playbooks p ON p.name = r.playbook
             WHERE r.rank <= max_suggestions);
END;
$$;
COMMENT ON FUNCTION cs.suggest_actions(text[], jsonb, int) IS
    'Up to max_suggestions ranked playbooks for the factors, as JSON, with messages filled from placeholder values (cs.template_values).';

-- The ranked suggestions stored on an alert, with each message rendered for the customer.
CREATE OR REPLACE FUNCTION cs.suggest_actions(factors text[], customer_id uuid, max_suggestions int DEFAULT 3)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
AS $$
SELECT cs.suggest_actions(factors, cs.template_values(customer_id), max_suggestions)
$$;
COMMENT ON FUNCTION cs.suggest_actions(text[], uuid, int) IS
    'Up to max_suggestions ranked playbooks for the factors, as JSON with the action, matched factors, effectiveness and the message rendered for the customer.';

------------------------------------------------------------------------------
-- Actions and outcomes
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.record_action(alert_id uuid, playbook text, outcome text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    a   cs.alerts;
    p   cs.playbooks;
    h   record;
    fs  text[];
    aid bigint;
    who name := cs._require_csm('record actions');
BEGIN
    IF alert_id IS NULL OR playbook IS NULL THEN
        RAISE EXCEPTION 'alert id and playbook must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF outcome IS NOT NULL AND outcome NOT IN ('recovered', 'renewed', 'expanded', 'churned', 'no_change') THEN
        RAISE EXCEPTION 'unknown outcome "%"', outcome
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Outcomes are recovered, renewed, expanded, churned and no_change.';
    END IF;
    SELECT * INTO a FROM cs.alerts al WHERE al.id = record_action.alert_id;
    IF NOT FOUND OR NOT cs._user_sees_customer(who, a.customer_id) THEN
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
    INSERT INTO cs.actions (alert_id, customer_id, playbook, taken_by, outcome, outcome_at, outcome_source, factors,
                            health_at_action, band_at_action, renewal_date_at_action)
    SELECT a.id, a.customer_id, p.name, who, outcome, CASE WHEN outcome IS NOT NULL THEN now() END,
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

CREATE OR REPLACE FUNCTION cs.measure_action_outcomes()
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    n     int := 0;
    added int;
    grp   uuid[];
    ts    timestamptz := now();
BEGIN
    PERFORM cs._one_connection_per_node();
    -- On a Citus cluster the same statement runs once per shard group of the
    -- customers with unmeasured actions, every table it reads filtered to
    -- that group, so that Citus sends it whole (row locks included) to the
    -- node holding them; on a single node once, for everyone (grp NULL).
    FOR grp IN SELECT g FROM cs._shard_groups(ARRAY(SELECT DISTINCT a.customer_id FROM cs.actions a
                                                      WHERE a.outcome IS NULL)) g
    LOOP
        -- First match wins: churned, expanded, renewed, recovered, else no_change.
        UPDATE cs.actions ac
           SET outcome = m.outcome, outcome_at = greatest(ts, ac.taken_at), outcome_source = 'measured'
          FROM (SELECT a.customer_id, a.id,
                       CASE WHEN c.churned_at IS NOT NULL AND c.churned_at >= a.taken_at::date THEN 'churned'
                            WHEN EXISTS (SELECT 1 FROM cs.subscriptions s
                                          WHERE s.customer_id = a.customer_id AND s.started_at >= a.taken_at::date
                                            AND (grp IS NULL OR s.customer_id = ANY (grp))) THEN 'expanded'
                            WHEN c.contract_end_date > a.renewal_date_at_action THEN 'renewed'
                            WHEN (a.band_at_action = 'red' AND h.band IN ('yellow', 'green'))
                                 OR h.overall_score >= a.health_at_action + 0.1 THEN 'recovered'
                            ELSE 'no_change' END AS outcome
                  FROM cs.actions a
                  JOIN cs.customers c ON c.id = a.customer_id
                  LEFT JOIN cs.playbooks p ON p.name = a.playbook
                  LEFT JOIN LATERAL (SELECT s.overall_score, s.band FROM cs.customer_health_scores s
                                      WHERE s.customer_id = a.customer_id
                                        AND (grp IS NULL OR s.customer_id = ANY (grp))
                                      ORDER BY s.calculated_at DESC LIMIT 1) h ON true
                 WHERE a.outcome IS NULL
                   AND a.taken_at + coalesce(p.outcome_window, interval '30 days') <= ts
                   AND (grp IS NULL OR (a.customer_id = ANY (grp) AND c.id = ANY (grp)))
                 FOR UPDATE OF a SKIP LOCKED) m
         WHERE ac.customer_id = m.customer_id AND ac.id = m.id
           AND (grp IS NULL OR ac.customer_id = ANY (grp));
        GET DIAGNOSTICS added = ROW_COUNT;
        n := n + added;
    END LOOP;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.measure_action_outcomes() IS
    'Measures the outcome of actions whose playbook outcome window has passed: churned (churned since), expanded (a subscription started since), '
    'renewed (contract end moved later), recovered (health back from red to yellow or green, or up by 0.1 or more), else no_change. Returns how many were measured; safe to call periodically and concurrently.';

------------------------------------------------------------------------------
-- Feedback and alert quality
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.record_feedback(alert_id uuid, feedback_type text, rating int, comments text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    fid uuid;
    cust uuid;
    who name := cs._require_csm('record feedback');
BEGIN
    IF alert_id IS NULL OR feedback_type IS NULL OR rating IS NULL THEN
        RAISE EXCEPTION 'alert id, feedback type and rating must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF feedback_type NOT IN ('accuracy', 'relevance', 'priority') THEN
        RAISE EXCEPTION 'unknown feedback type "%"', feedback_type
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Feedback types are accuracy, relevance and priority.';
    END IF;
    IF rating NOT BETWEEN 1 AND 5 THEN
        RAISE EXCEPTION 'rating must be between 1 and 5, not %', rating USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT a.customer_id INTO cust FROM cs.alerts a WHERE a.id = record_feedback.alert_id;
    IF FOUND AND cs._user_sees_customer(who, cust) THEN
        INSERT INTO cs.alert_feedback (customer_id, alert_id, user_id, feedback_type, rating, comments)
        VALUES (cust, alert_id, who, feedback_type, rating, comments)
        RETURNING id INTO fid;
        RETURN fid;
    END IF;
    -- a model or data alert: admins only, as they alone see it
    IF EXISTS (SELECT 1 FROM cs.system_alerts s WHERE s.id = record_feedback.alert_id)
       AND cs._user_sees_customer(who, NULL) THEN
        INSERT INTO cs.system_alert_feedback (alert_id, user_id, feedback_type, rating, comments)
        VALUES (alert_id, who, feedback_type, rating, comments)
        RETURNING id INTO fid;
        RETURN fid;
    END IF;
    RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
END;
$$;
COMMENT ON FUNCTION cs.record_feedback(uuid, text, int, text) IS
    'Records the current user''s rating (1-5) of an alert''s accuracy, relevance or priority (in cs.alert_feedback; of a model or data alert, by an admin, in cs.system_alert_feedback); returns the feedback id.';

CREATE OR REPLACE VIEW cs.alert_quality WITH (security_invoker = true) AS
WITH per_alert AS (
    SELECT a.id, a.rule_id, a.status, a.created_at,
           CASE WHEN a.alert_type = 'risk' THEN c.churned_at IS NOT NULL AND c.churned_at >= a.created_at::date
                WHEN a.alert_type = 'opportunity' THEN EXISTS (SELECT 1 FROM cs.subscriptions s
                                                                WHERE s.customer_id = a.customer_id
                                                                  AND s.started_at >= a.created_at::date) END AS outcome_hit
      FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id
), fb AS (
    SELECT a.rule_id, count(*) AS ratings, count(*) FILTER (WHERE f.rating >= 4) AS accurate
      FROM cs.alert_feedback f JOIN cs.alerts a ON a.customer_id = f.customer_id AND a.id = f.alert_id
     WHERE f.feedback_type = 'accuracy'
     GROUP BY a.rule_id
)
SELECT r.id AS rule_id,
       r.name AS rule,
       r.alert_type,
       count(p.id) AS alerts,
       count(p.id) FILTER (WHERE p.status IN ('open', 'acknowledged', 'snoozed')) AS unresolved,
       count(p.id) FILTER (WHERE p.status = 'dismissed') AS dismissed,
       coalesce(max(fb.ratings), 0) AS accuracy_ratings,
       round(max(fb.accurate)::numeric / nullif(max(fb.ratings), 0), 3) AS feedback_precision,
       count(p.id) FILTER (WHERE p.outcome_hit) AS outcome_hits,
       round((count(p.id) FILTER (WHERE p.outcome_hit))::numeric / nullif(count(p.id), 0), 3) AS outcome_precision
  FROM cs.alert_rules r
  LEFT JOIN per_alert p ON p.rule_id = r.id
  LEFT JOIN fb ON fb.rule_id = r.id
 GROUP BY r.id, r.name, r.alert_type;
COMMENT ON VIEW cs.alert_quality IS 'Per rule: how many alerts it raised and how precise they were, by CSM feedback and by what happened to the customers.';
COMMENT ON COLUMN cs.alert_quality.rule_id IS 'The rule.';
COMMENT ON COLUMN cs.alert_quality.rule IS 'Rule name.';
COMMENT ON COLUMN cs.alert_quality.alert_type IS 'risk or opportunity.';
COMMENT ON COLUMN cs.alert_quality.alerts IS 'Alerts the rule raised.';
COMMENT ON COLUMN cs.alert_quality.unresolved IS 'Of them, open, acknowledged or snoozed.';
COMMENT ON COLUMN cs.alert_quality.dismissed IS 'Of them, dismissed by a CSM.';
COMMENT ON COLUMN cs.alert_quality.accuracy_ratings IS 'Accuracy ratings given on the rule''s alerts.';
COMMENT ON COLUMN cs.alert_quality.feedback_precision IS 'Share of accuracy ratings of 4 or 5; NULL without ratings.';
COMMENT ON COLUMN cs.alert_quality.outcome_hits IS 'Alerts borne out: the customer churned after a risk alert, or started a subscription after an opportunity alert.';
COMMENT ON COLUMN cs.alert_quality.outcome_precision IS 'outcome_hits over alerts; NULL without alerts.';

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

CREATE OR REPLACE VIEW cs.action_tracking WITH (security_invoker = true) AS
-- The actions with their customer and rule first, and the playbooks'
-- effectiveness (an aggregate over every customer's actions) apart, both
-- materialized: on a Citus cluster each is one distributed query, and the
-- per-action lookup runs where the query began.
WITH acts AS MATERIALIZED (
    SELECT ac.id, ac.alert_id, ac.customer_id, c.name, r.name AS rule, ac.playbook, ac.factors, ac.taken_by,
           ac.taken_at, ac.taken_at + coalesce(p.outcome_window, interval '30 days') AS outcome_due,
           ac.outcome, ac.outcome_source, ac.outcome_at
      FROM cs.actions ac
      JOIN cs.customers c ON c.id = ac.customer_id
      LEFT JOIN cs.alerts a ON a.customer_id = ac.customer_id AND a.id = ac.alert_id
      LEFT JOIN cs.alert_rules r ON r.id = a.rule_id
      LEFT JOIN cs.playbooks p ON p.name = ac.playbook
), eff AS MATERIALIZED (
    SELECT e.playbook, e.factor, e.effectiveness FROM cs.playbook_effectiveness e
)
SELECT ac.id AS action_id,
       ac.alert_id,
       ac.customer_id,
       ac.name,
       ac.rule,
       ac.playbook,
       ac.factors,
       ac.taken_by,
       ac.taken_at,
       ac.outcome_due,
       ac.outcome,
       ac.outcome_source,
       ac.outcome_at,
       (SELECT max(e.effectiveness) FROM eff e
         WHERE e.playbook = ac.playbook AND e.factor = ANY (ac.factors)) AS playbook_effectiveness
  FROM acts ac
 ORDER BY ac.taken_at DESC, ac.id DESC;
COMMENT ON VIEW cs.action_tracking IS 'Actions CSMs took, their outcome, and how effective their playbook has been for the factors they addressed.';
COMMENT ON COLUMN cs.action_tracking.action_id IS 'The action.';
COMMENT ON COLUMN cs.action_tracking.alert_id IS 'The alert it answered.';
COMMENT ON COLUMN cs.action_tracking.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.action_tracking.name IS 'Customer name.';
COMMENT ON COLUMN cs.action_tracking.rule IS 'Rule of the alert.';
COMMENT ON COLUMN cs.action_tracking.playbook IS 'Playbook applied.';
COMMENT ON COLUMN cs.action_tracking.factors IS 'Alert factors the playbook answers.';
COMMENT ON COLUMN cs.action_tracking.taken_by IS 'Role that took the action.';
COMMENT ON COLUMN cs.action_tracking.taken_at IS 'When.';
COMMENT ON COLUMN cs.action_tracking.outcome_due IS 'When the outcome gets measured (taken_at plus the playbook outcome window).';
COMMENT ON COLUMN cs.action_tracking.outcome IS 'recovered, renewed, expanded, churned or no_change; NULL until known.';
COMMENT ON COLUMN cs.action_tracking.outcome_source IS 'reported by the CSM or measured.';
COMMENT ON COLUMN cs.action_tracking.outcome_at IS 'When the outcome was recorded.';
COMMENT ON COLUMN cs.action_tracking.playbook_effectiveness IS 'Best posterior mean effectiveness of the playbook over the action''s factors.';

CREATE OR REPLACE VIEW cs.portfolio_summary WITH (security_invoker = true) AS
WITH cust AS (
    SELECT c.id, c.csm, c.segment, c.mrr, h.band, rk.risk_score,
           EXISTS (SELECT 1 FROM cs.alerts a WHERE a.customer_id = c.id AND a.alert_type = 'risk'
                      AND a.status IN ('open', 'acknowledged', 'snoozed') AND a.severity IN ('high', 'critical')) AS severe_alert,
           (SELECT count(*) FROM cs.alerts a WHERE a.customer_id = c.id
               AND a.status IN ('open', 'acknowledged', 'snoozed')) AS open_alerts
      FROM cs.customers c
      LEFT JOIN LATERAL (SELECT s.band FROM cs.customer_health_scores s WHERE s.customer_id = c.id
                          ORDER BY s.calculated_at DESC LIMIT 1) h ON true
      LEFT JOIN LATERAL (SELECT x.risk_score FROM cs.risk_assessments x WHERE x.customer_id = c.id AND x.risk_type = 'churn'
                          ORDER BY x.created_at DESC LIMIT 1) rk ON true
     WHERE c.churned_at IS NULL
)
SELECT csm,
       segment,
       count(*) AS accounts,
       coalesce(sum(mrr), 0) AS mrr,
       coalesce(sum(mrr) FILTER (WHERE severe_alert OR risk_score >= 0.6), 0) AS mrr_at_risk,
       count(*) FILTER (WHERE band = 'red') AS red,
       count(*) FILTER (WHERE band = 'yellow') AS yellow,
       count(*) FILTER (WHERE band = 'green') AS green,
       count(*) FILTER (WHERE band IS NULL) AS unscored,
       coalesce(sum(open_alerts), 0) AS open_alerts
  FROM cust
 GROUP BY csm, segment
 ORDER BY csm, segment;
COMMENT ON VIEW cs.portfolio_summary IS 'Per CSM and segment: active accounts, MRR, MRR at risk, health bands and unresolved alerts.';
COMMENT ON COLUMN cs.portfolio_summary.csm IS 'Owning CSM (role name).';
COMMENT ON COLUMN cs.portfolio_summary.segment IS 'Segment.';
COMMENT ON COLUMN cs.portfolio_summary.accounts IS 'Active (not churned) customers.';
COMMENT ON COLUMN cs.portfolio_summary.mrr IS 'Their total MRR.';
COMMENT ON COLUMN cs.portfolio_summary.mrr_at_risk IS 'MRR of customers with an unresolved high or critical risk alert or a latest churn risk of 0.6 or more.';
COMMENT ON COLUMN cs.portfolio_summary.red IS 'Customers whose latest health band is red.';
COMMENT ON COLUMN cs.portfolio_summary.yellow IS 'Customers whose latest health band is yellow.';
COMMENT ON COLUMN cs.portfolio_summary.green IS 'Customers whose latest health band is green.';
COMMENT ON COLUMN cs.portfolio_summary.unscored IS 'Customers without a health score yet.';
COMMENT ON COLUMN cs.portfolio_summary.open_alerts IS 'Unresolved (open, acknowledged, snoozed) alerts of these customers.';
