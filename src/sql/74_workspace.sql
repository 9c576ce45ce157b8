-- The CSM's workspace: an account's timeline (every dated fact about a
-- customer, in order, as Gainsight's Timeline shows it) and the functions
-- through which a CSM writes her own work: engagements she logs, the stages
-- of her opportunities, actions she takes without an alert.
--
-- The timelines run with the caller's privileges and row-level security
-- (SECURITY INVOKER): a CSM sees the timeline of her customers only.  Each of
-- their branches is a range scan of one customer's (customer_id, time) index
-- (src/sql/schema/74_workspace.sql adds the ones the tables lacked), so a
-- timeline costs what the customer's history since the given time holds, not
-- what the tables hold.
--
-- The write functions are SECURITY DEFINER, like the alert lifecycle
-- (src/sql/60_alerts.sql): CSMs hold no write privilege on any table, so the
-- functions check the caller themselves (cs._require_csm: a member of
-- cscopilot_csm, else insufficient_privilege; cs._user_sees_customer: a
-- customer she may not see "does not exist", no_data_found) and record her.

------------------------------------------------------------------------------
-- Timeline
------------------------------------------------------------------------------

-- What counts as a change in the timeline: a week's usage that differs from
-- the week before by at least this share (and by 5 events), and a risk score
-- that differs from the previous score of its type by at least this much.
CREATE OR REPLACE FUNCTION cs.timeline_thresholds() RETURNS TABLE (usage_change float8, usage_min_events float8, risk_change numeric)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT 0.30::float8, 5::float8, 0.10::numeric;
$$;
COMMENT ON FUNCTION cs.timeline_thresholds() IS
    'What cs.account_timeline reports as a change: weekly usage that moved by at least usage_change (a share, 0.30) and by usage_min_events events from the week before, and a risk score that moved by at least risk_change (0.10) from the previous score of its type.';

-- The timeline of a set of customers, in one query: each branch reads the
-- customers' rows by their (customer_id, time) index (customer_id = ANY), so
-- a portfolio costs one plan and one pass of the row-level security checks,
-- not one per customer.
CREATE OR REPLACE FUNCTION cs._timeline(customer_ids uuid[], since timestamptz)
RETURNS TABLE (customer_id uuid, occurred_at timestamptz, kind text, title text, detail text, source_table text, source_id text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
#variable_conflict use_column
DECLARE
    cids uuid[] := _timeline.customer_ids;
    t0   timestamptz := _timeline.since;
    th   record;
    -- usage weeks: the last complete week is the one before the current one
    wend timestamptz := date_trunc('week', now());
BEGIN
    IF cids IS NULL OR t0 IS NULL THEN
        RAISE EXCEPTION 'customer ids and since must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(t0) THEN
        RAISE EXCEPTION 'since must be a finite time, not %', t0 USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO th FROM cs.timeline_thresholds();

    RETURN QUERY
    WITH weeks AS (
        -- events and users per customer and complete week (Monday to Monday),
        -- from two weeks before since: the first week shown needs the one before
        SELECT e.customer_id, date_trunc('week', e.occurred_at) AS week, sum(e.quantity) AS events,
               count(DISTINCT e.user_id) AS users
          FROM cs.usage_events e
         WHERE e.customer_id = ANY (cids) AND e.occurred_at >= date_trunc('week', t0) - interval '2 weeks'
           AND e.occurred_at < wend
         GROUP BY 1, 2
    ), ev AS (
    -- support tickets, opened and closed
    SELECT t.customer_id AS cu, t.opened_at AS at, 'ticket_opened' AS k,
           'Ticket opened: ' || coalesce(nullif(btrim(left(t.subject, 120)), ''), t.external_id, 'ticket ' || t.id) AS ti,
           concat_ws(', ', t.priority || ' priority', 'ticket ' || t.external_id) AS de,
           'support_tickets' AS st, t.id::text AS sid
      FROM cs.support_tickets t
     WHERE t.customer_id = ANY (cids) AND t.opened_at >= t0
    UNION ALL
    SELECT t.customer_id AS cu, t.closed_at, 'ticket_closed',
           'Ticket closed: ' || coalesce(nullif(btrim(left(t.subject, 120)), ''), t.external_id, 'ticket ' || t.id),
           concat_ws(', ', t.status, 'CSAT ' || t.csat || '/5',
                     round(extract(epoch FROM t.closed_at - t.opened_at) / 86400, 1) || ' days open'),
           'support_tickets', t.id::text
      FROM cs.support_tickets t
     WHERE t.customer_id = ANY (cids) AND t.closed_at >= t0
    -- invoices: issued, paid, failed (the billing sources give no time of the
    -- failure: a failed or uncollectible invoice is dated at its due date)
    UNION ALL
    SELECT i.customer_id AS cu, i.issued_at::timestamptz, 'invoice_issued',
           'Invoice ' || coalesce(i.external_id || ' ', '') || 'issued: ' || i.amount,
           'due ' || to_char(i.due_date, 'YYYY-MM-DD') || ', ' || i.status,
           'invoices', i.id::text
      FROM cs.invoices i
     WHERE i.customer_id = ANY (cids) AND i.issued_at >= t0
    UNION ALL
    SELECT i.customer_id AS cu, i.paid_at::timestamptz, 'invoice_paid',
           'Invoice ' || coalesce(i.external_id || ' ', '') || 'paid: ' || i.amount,
           CASE WHEN i.paid_at > i.due_date THEN (i.paid_at - i.due_date) || ' days late' ELSE 'on time' END,
           'invoices', i.id::text
      FROM cs.invoices i
     WHERE i.customer_id = ANY (cids) AND i.paid_at >= t0
    UNION ALL
    SELECT i.customer_id AS cu, i.due_date::timestamptz, 'invoice_failed',
           'Invoice ' || coalesce(i.external_id || ' ', '') || i.status || ': ' || i.amount,
           'issued ' || to_char(i.issued_at, 'YYYY-MM-DD') || ', due ' || to_char(i.due_date, 'YYYY-MM-DD'),
           'invoices', i.id::text
      FROM cs.invoices i
     WHERE i.customer_id = ANY (cids) AND i.status IN ('failed', 'uncollectible') AND i.due_date >= t0
    -- meetings, calls, notes, ...
    UNION ALL
    SELECT g.customer_id AS cu, g.occurred_at, 'engagement',
           CASE g.kind WHEN 'qbr' THEN 'QBR' ELSE initcap(g.kind) END || coalesce(' logged by ' || g.logged_by, ''),
           g.notes,
           'engagements', g.id::text
      FROM cs.engagements g
     WHERE g.customer_id = ANY (cids) AND g.occurred_at >= t0
    UNION ALL
    SELECT n.customer_id AS cu, n.responded_at, 'nps',
           'NPS ' || n.score || CASE WHEN n.score >= 9 THEN ' (promoter)' WHEN n.score >= 7 THEN ' (passive)'
                                     ELSE ' (detractor)' END,
           n.comment,
           'nps_responses', n.id::text
      FROM cs.nps_responses n
     WHERE n.customer_id = ANY (cids) AND n.responded_at >= t0
    -- product usage, week by week: a week (Monday to Monday, dated at its end)
    -- whose events moved from the week before by the threshold
    UNION ALL
    SELECT u.customer_id AS cu, u.week + interval '1 week', 'usage_change',
           CASE WHEN u.prev = 0 THEN 'Usage started after a week without any'
                WHEN u.events = 0 THEN 'No usage in the week'
                ELSE 'Usage ' || CASE WHEN u.events > u.prev THEN 'up ' ELSE 'down ' END
                     || round(abs(u.events - u.prev) / u.prev * 100) || '% week over week' END,
           'week of ' || to_char(u.week, 'YYYY-MM-DD') || ': ' || trim_scale(round(u.events::numeric, 1))
               || ' events by ' || u.users || CASE u.users WHEN 1 THEN ' user' ELSE ' users' END
               || ' (week before: ' || trim_scale(round(u.prev::numeric, 1))
               || ' events by ' || u.prev_users || CASE u.prev_users WHEN 1 THEN ' user)' ELSE ' users)' END,
           'usage_events', to_char(u.week, 'YYYY-MM-DD')
      FROM (-- a week with events against the week before (none: 0)
            SELECT a.customer_id, a.week, a.events, a.users,
                   coalesce(p.events, 0) AS prev, coalesce(p.users, 0) AS prev_users
              FROM weeks a
              LEFT JOIN weeks p ON p.customer_id = a.customer_id AND p.week = a.week - interval '1 week'
             WHERE a.week > date_trunc('week', t0) - interval '2 weeks'
            UNION ALL
            -- a complete week without events after one with events
            SELECT a.customer_id, a.week + interval '1 week', 0, 0, a.events, a.users
              FROM weeks a
             WHERE a.week + interval '1 week' < wend
               AND NOT EXISTS (SELECT 1 FROM weeks n WHERE n.customer_id = a.customer_id
                                                      AND n.week = a.week + interval '1 week')) u
     WHERE u.week + interval '1 week' >= t0
       AND abs(u.events - u.prev) >= th.usage_min_events
       AND (u.prev = 0 OR abs(u.events - u.prev) >= th.usage_change * u.prev)
    -- health band changes: each score against the one before (the last one
    -- before since included); the first score of a customer sets its band
    UNION ALL
    SELECT h.customer_id AS cu, h.calculated_at, 'health_band',
           CASE WHEN h.prev_band IS NULL THEN 'Health first scored ' || h.band
                WHEN array_position(ARRAY['red', 'yellow', 'green'], h.band)
                     > array_position(ARRAY['red', 'yellow', 'green'], h.prev_band)
                THEN 'Health rose from ' || h.prev_band || ' to ' || h.band
                ELSE 'Health fell from ' || h.prev_band || ' to ' || h.band END,
           'overall ' || coalesce(h.overall_score::text, 'unknown') || coalesce(' (was ' || h.prev_score || ')', ''),
           'customer_health_scores', h.id::text
      FROM (SELECT s.*, lag(s.band) OVER w AS prev_band, lag(s.overall_score) OVER w AS prev_score
              FROM (SELECT s.customer_id, s.id, s.calculated_at, s.band, s.overall_score FROM cs.customer_health_scores s
                     WHERE s.customer_id = ANY (cids) AND s.calculated_at >= t0 AND s.band IS NOT NULL
                    UNION ALL
                    SELECT b.* FROM unnest(cids) c(id)
                     CROSS JOIN LATERAL (SELECT s.customer_id, s.id, s.calculated_at, s.band, s.overall_score
                                           FROM cs.customer_health_scores s
                                          WHERE s.customer_id = c.id AND s.calculated_at < t0 AND s.band IS NOT NULL
                                          ORDER BY s.calculated_at DESC LIMIT 1) b) s
            WINDOW w AS (PARTITION BY s.customer_id ORDER BY s.calculated_at, s.id)) h
     WHERE h.calculated_at >= t0 AND h.band IS DISTINCT FROM h.prev_band
    -- risk: each score against the previous one of its type, beyond the threshold
    UNION ALL
    SELECT r.customer_id AS cu, r.created_at, 'risk_change',
           initcap(r.risk_type) || ' risk ' || CASE WHEN r.risk_score > r.prev THEN 'up' ELSE 'down' END
               || ' from ' || r.prev || ' to ' || r.risk_score,
           concat_ws('; ', 'model ' || r.model_version,
                     'top factors: ' || (SELECT string_agg(f.x ->> 'feature', ', ' ORDER BY f.n)
                                           FROM jsonb_array_elements(CASE jsonb_typeof(r.risk_factors)
                                                                     WHEN 'array' THEN r.risk_factors END)
                                                WITH ORDINALITY f(x, n)
                                          WHERE f.n <= 3 AND f.x ->> 'feature' IS NOT NULL)),
           'risk_assessments', r.id::text
      FROM (SELECT ra.*, lag(ra.risk_score) OVER (PARTITION BY ra.customer_id, ra.risk_type ORDER BY ra.created_at, ra.id) AS prev
              FROM ((SELECT ra.* FROM cs.risk_assessments ra
                      WHERE ra.customer_id = ANY (cids) AND ra.created_at >= t0 AND ra.risk_score IS NOT NULL)
                    UNION ALL
                    SELECT b.* FROM unnest(cids) c(id) CROSS JOIN unnest(ARRAY['churn', 'downgrade', 'payment']) rt(risk_type)
                     CROSS JOIN LATERAL (SELECT ra.* FROM cs.risk_assessments ra
                                          WHERE ra.customer_id = c.id AND ra.risk_type = rt.risk_type
                                            AND ra.created_at < t0 AND ra.risk_score IS NOT NULL
                                          ORDER BY ra.created_at DESC LIMIT 1) b) ra) r
     WHERE r.created_at >= t0 AND abs(r.risk_score - r.prev) >= th.risk_change
    -- alerts raised, and their lifecycle (the creation event is the raise)
    UNION ALL
    SELECT a.customer_id AS cu, a.created_at, 'alert_raised', 'Alert raised: ' || a.title,
           concat_ws(', ', a.severity || ' ' || a.alert_type || ' alert', 'now ' || a.status),
           'alerts', a.id::text
      FROM cs.alerts a
     WHERE a.customer_id = ANY (cids) AND a.created_at >= t0
    UNION ALL
    SELECT a.customer_id AS cu, e.at, 'alert_' || e.event,
           'Alert ' || replace(e.event, '_', '-') || ' by ' || e.actor || ': ' || a.title,
           concat_ws('; ', e.note,
                     CASE e.event WHEN 'escalated' THEN 'severity ' || (e.details ->> 'from') || ' to ' || (e.details ->> 'to')
                                  WHEN 'snoozed' THEN 'until ' || (e.details ->> 'until')
                                  WHEN 'reassigned' THEN 'to ' || (e.details ->> 'to') END),
           'alert_events', e.id::text
      FROM cs.alerts a
     -- the events of each of the customer's alerts by its index (OFFSET 0
     -- keeps the planner from hashing the whole event table instead)
     CROSS JOIN LATERAL (SELECT e.* FROM cs.alert_events e
                          WHERE e.alert_id = a.id AND e.at >= t0 AND e.event <> 'created' OFFSET 0) e
     WHERE a.customer_id = ANY (cids)
    -- actions, and their outcomes when reported or measured
    UNION ALL
    SELECT ac.customer_id AS cu, ac.taken_at, 'action', 'Action by ' || ac.taken_by || ': ' || ac.playbook,
           concat_ws('; ', p.action, 'for alert: ' || al.title),
           'actions', ac.id::text
      FROM cs.actions ac
      LEFT JOIN cs.playbooks p ON p.name = ac.playbook
      LEFT JOIN cs.alerts al ON al.id = ac.alert_id
     WHERE ac.customer_id = ANY (cids) AND ac.taken_at >= t0
    UNION ALL
    SELECT ac.customer_id AS cu, ac.outcome_at, 'action_outcome', 'Action outcome: ' || replace(ac.outcome, '_', ' '),
           concat_ws(', ', 'playbook ' || ac.playbook, ac.outcome_source, 'action of ' || to_char(ac.taken_at, 'YYYY-MM-DD')),
           'actions', ac.id::text
      FROM cs.actions ac
     WHERE ac.customer_id = ANY (cids) AND ac.outcome_at >= t0 AND ac.outcome IS NOT NULL
    -- subscriptions: a row of a product that starts when (or the day after)
    -- another row of the product ends replaces it: a change, not an end and a start
    UNION ALL
    SELECT s.customer_id AS cu, s.started_at::timestamptz,
           CASE WHEN o.id IS NULL THEN 'subscription_started' ELSE 'subscription_changed' END,
           CASE WHEN o.id IS NULL THEN 'Subscription started: '
                WHEN s.mrr > o.mrr OR (s.mrr = o.mrr AND s.seats > o.seats) THEN 'Subscription expanded: '
                WHEN s.mrr < o.mrr OR s.seats < o.seats THEN 'Subscription reduced: '
                ELSE 'Subscription renewed: ' END || s.product,
           CASE WHEN o.id IS NULL THEN s.seats || ' seats, MRR ' || s.mrr
                ELSE 'seats ' || o.seats || ' to ' || s.seats || ', MRR ' || o.mrr || ' to ' || s.mrr END,
           'subscriptions', s.id::text
      FROM cs.subscriptions s
      LEFT JOIN LATERAL (SELECT o.id, o.seats, o.mrr FROM cs.subscriptions o
                          WHERE o.customer_id = s.customer_id AND o.product = s.product AND o.id <> s.id
                            AND o.ended_at BETWEEN s.started_at - 1 AND s.started_at
                          ORDER BY o.ended_at DESC, o.id DESC LIMIT 1) o ON true
     WHERE s.customer_id = ANY (cids) AND s.started_at >= t0
    UNION ALL
    SELECT s.customer_id AS cu, s.ended_at::timestamptz, 'subscription_ended', 'Subscription ended: ' || s.product,
           s.seats || ' seats, MRR ' || s.mrr,
           'subscriptions', s.id::text
      FROM cs.subscriptions s
     WHERE s.customer_id = ANY (cids) AND s.ended_at >= t0
       AND NOT EXISTS (SELECT 1 FROM cs.subscriptions n
                        WHERE n.customer_id = s.customer_id AND n.product = s.product AND n.id <> s.id
                          AND n.started_at BETWEEN s.ended_at AND s.ended_at + 1)
    -- opportunities the CSM closed (cs.move_opportunity)
    UNION ALL
    SELECT o.customer_id AS cu, o.closed_at, 'opportunity_' || o.status,
           'Opportunity ' || o.status || ': ' || replace(o.kind, '_', '-') || coalesce(' of ' || o.product, ''),
           concat_ws(', ', 'won MRR ' || o.won_mrr, 'expected MRR ' || o.expected_mrr, 'by ' || o.updated_by),
           'opportunities', o.id::text
      FROM cs.opportunities o
     WHERE o.customer_id = ANY (cids) AND o.closed_at >= t0
    )
    SELECT ev.cu, ev.at, ev.k, ev.ti, ev.de, ev.st, ev.sid
      FROM ev
     ORDER BY ev.at, ev.cu, ev.st, length(ev.sid), ev.sid, ev.k;
END;
$$;
COMMENT ON FUNCTION cs._timeline(uuid[], timestamptz) IS
    'Internal: the timeline of cs.account_timeline for a set of customers in one query, with the customer of each row, oldest first.';

CREATE OR REPLACE FUNCTION cs.account_timeline(customer_id uuid, since timestamptz DEFAULT now() - interval '90 days')
RETURNS TABLE (occurred_at timestamptz, kind text, title text, detail text, source_table text, source_id text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF account_timeline.customer_id IS NULL OR account_timeline.since IS NULL THEN
        RAISE EXCEPTION 'customer id and since must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- under the caller's row-level security: a customer she may not see does not exist
    IF NOT EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = account_timeline.customer_id) THEN
        RAISE EXCEPTION 'customer % does not exist', account_timeline.customer_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    SELECT t.occurred_at, t.kind, t.title, t.detail, t.source_table, t.source_id
      FROM cs._timeline(ARRAY[account_timeline.customer_id], account_timeline.since) t;
END;
$$;
COMMENT ON FUNCTION cs.account_timeline(uuid, timestamptz) IS
    'Every dated fact about a customer since a time, oldest first: tickets opened and closed, invoices issued, paid and failed (dated at the due date), '
    'engagements, NPS answers, weekly usage changes (cs.timeline_thresholds), health band changes, risk changes, alerts raised and their lifecycle events, '
    'actions and their outcomes, subscriptions started, changed (a row of a product replacing another) and ended, opportunities won, lost or dismissed. '
    'Each row has a kind, a title, a detail and its source row (table and id; for usage the Monday of the week). '
    'Runs under the caller''s row-level security: a customer she may not see does not exist (no_data_found).';

CREATE OR REPLACE FUNCTION cs.portfolio_timeline(csm text DEFAULT current_user,
                                                 since timestamptz DEFAULT now() - interval '7 days')
RETURNS TABLE (customer_id uuid, occurred_at timestamptz, kind text, title text, detail text,
               source_table text, source_id text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
AS $$
    SELECT t.customer_id, t.occurred_at, t.kind, t.title, t.detail, t.source_table, t.source_id
      FROM cs._timeline(ARRAY(SELECT c.id FROM cs.customers c WHERE c.csm = portfolio_timeline.csm),
                        portfolio_timeline.since) t;
$$;
COMMENT ON FUNCTION cs.portfolio_timeline(text, timestamptz) IS
    'cs.account_timeline of every customer whose csm is the given role (the caller by default) since a time (a week by default), oldest first, '
    'with the customer''s id; under the caller''s row-level security.';

------------------------------------------------------------------------------
-- The CSM's own work
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.engagement_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY['meeting', 'call', 'email', 'qbr', 'training', 'onsite', 'note', 'other']
$$;
COMMENT ON FUNCTION cs.engagement_kinds() IS
    'The kinds of cs.engagements (its CHECK constraint): meeting, call, email, qbr, training, onsite, note, other.';

CREATE OR REPLACE FUNCTION cs.log_engagement(customer_id uuid, kind text, occurred_at timestamptz DEFAULT now(),
                                             notes text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    who name := cs._require_csm('log engagements');
    eid bigint;
BEGIN
    IF log_engagement.customer_id IS NULL OR log_engagement.kind IS NULL OR log_engagement.occurred_at IS NULL THEN
        RAISE EXCEPTION 'customer id, kind and time must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT log_engagement.kind = ANY (cs.engagement_kinds()) THEN
        RAISE EXCEPTION 'unknown engagement kind "%"', log_engagement.kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Kinds are ' || array_to_string(cs.engagement_kinds(), ', ') || '.';
    END IF;
    IF NOT isfinite(log_engagement.occurred_at) THEN
        RAISE EXCEPTION 'an engagement needs a finite time, not %', log_engagement.occurred_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT cs._user_sees_customer(who, log_engagement.customer_id) THEN
        RAISE EXCEPTION 'customer % does not exist', log_engagement.customer_id USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO cs.engagements (customer_id, kind, occurred_at, notes, logged_by)
    VALUES (log_engagement.customer_id, log_engagement.kind, log_engagement.occurred_at, log_engagement.notes, who)
    RETURNING id INTO eid;
    RETURN eid;
END;
$$;
COMMENT ON FUNCTION cs.log_engagement(uuid, text, timestamptz, text) IS
    'Logs a meeting, call, email, QBR, training, onsite, note or other touch on one of the caller''s customers (no_data_found for others), as the caller (logged_by); '
    'returns the engagement id. The load trigger marks the customer dirty: the next refresh counts it in the features (meetings_90d for meetings, calls, QBRs, trainings and onsites).';

CREATE OR REPLACE FUNCTION cs.move_opportunity(id uuid, status text, won_mrr numeric DEFAULT NULL)
RETURNS cs.opportunities
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    who  name := cs._require_csm('move opportunities');
    o    cs.opportunities;
    -- the stages: open -> in_progress -> won or lost; open ones may be lost or dismissed
    next text[];
BEGIN
    IF move_opportunity.id IS NULL OR move_opportunity.status IS NULL THEN
        RAISE EXCEPTION 'opportunity id and status must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF move_opportunity.status NOT IN ('open', 'in_progress', 'won', 'lost', 'dismissed') THEN
        RAISE EXCEPTION 'unknown opportunity status "%"', move_opportunity.status
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Statuses are open, in_progress, won, lost and dismissed.';
    END IF;
    IF move_opportunity.status = 'won' AND move_opportunity.won_mrr IS NULL THEN
        RAISE EXCEPTION 'winning an opportunity needs the won MRR' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'SELECT cs.move_opportunity(id, ''won'', won_mrr => 250).';
    END IF;
    IF move_opportunity.status <> 'won' AND move_opportunity.won_mrr IS NOT NULL THEN
        RAISE EXCEPTION 'only a won opportunity has a won MRR' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF move_opportunity.won_mrr < 0 OR NOT round(move_opportunity.won_mrr, 2) <= 99999999.99 THEN
        RAISE EXCEPTION 'won MRR must be between 0 and 99999999.99, not %', move_opportunity.won_mrr
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- its customer first, then the row locked by its key (on a Citus cluster
    -- a row lock needs the shard: the customer)
    SELECT op.customer_id INTO o.customer_id FROM cs.opportunities op WHERE op.id = move_opportunity.id;
    IF FOUND AND cs._user_sees_customer(who, o.customer_id) THEN
        SELECT * INTO o FROM cs.opportunities op
         WHERE op.customer_id = o.customer_id AND op.id = move_opportunity.id FOR UPDATE;
    ELSE
        o := NULL;
    END IF;
    IF o.id IS NULL THEN
        RAISE EXCEPTION 'opportunity % does not exist', move_opportunity.id USING ERRCODE = 'no_data_found';
    END IF;
    next := CASE o.status WHEN 'open' THEN ARRAY['in_progress', 'lost', 'dismissed']
                          WHEN 'in_progress' THEN ARRAY['won', 'lost'] ELSE '{}' END;
    IF NOT move_opportunity.status = ANY (next) THEN
        RAISE EXCEPTION 'cannot move opportunity % from % to %', o.id, o.status, move_opportunity.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN cardinality(next) = 0 THEN format('A %s opportunity is closed.', o.status)
                                ELSE format('A %s opportunity moves to %s.', o.status, array_to_string(next, ', ')) END;
    END IF;
    UPDATE cs.opportunities op
       SET status = move_opportunity.status,
           won_mrr = move_opportunity.won_mrr,
           closed_at = CASE WHEN move_opportunity.status IN ('won', 'lost', 'dismissed') THEN now() END,
           updated_at = now(),
           updated_by = who
     WHERE op.id = o.id
    RETURNING op.* INTO o;
    RETURN o;
END;
$$;
COMMENT ON FUNCTION cs.move_opportunity(uuid, text, numeric) IS
    'Moves one of the caller''s opportunities (no_data_found for others) through its stages: open to in_progress, lost or dismissed; in_progress to won (with the won MRR) or lost; '
    'anything else is object_not_in_prerequisite_state. Stamps closed_at, updated_at and updated_by; returns the opportunity. A refresh keeps what a CSM moved.';

CREATE OR REPLACE FUNCTION cs.record_customer_action(customer_id uuid, playbook text, outcome text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    who name := cs._require_csm('record actions');
    p   cs.playbooks;
    h   record;
    fs  text[];
    aid bigint;
BEGIN
    IF record_customer_action.customer_id IS NULL OR record_customer_action.playbook IS NULL THEN
        RAISE EXCEPTION 'customer id and playbook must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF record_customer_action.outcome IS NOT NULL
       AND record_customer_action.outcome NOT IN ('recovered', 'renewed', 'expanded', 'churned', 'no_change') THEN
        RAISE EXCEPTION 'unknown outcome "%"', record_customer_action.outcome
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Outcomes are recovered, renewed, expanded, churned and no_change.';
    END IF;
    IF NOT cs._user_sees_customer(who, record_customer_action.customer_id) THEN
        RAISE EXCEPTION 'customer % does not exist', record_customer_action.customer_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO p FROM cs.playbooks pb WHERE pb.name = record_customer_action.playbook;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'playbook "%" does not exist', record_customer_action.playbook USING ERRCODE = 'no_data_found';
    END IF;
    -- What the outcome will teach about, without an alert's factors: the
    -- playbook's answers among the customer's latest churn factors and the
    -- kinds of its open opportunities.
    fs := ARRAY(SELECT DISTINCT x FROM (
                    SELECT f ->> 'feature' AS x
                      FROM (SELECT ra.risk_factors FROM cs.risk_assessments ra
                             WHERE ra.customer_id = record_customer_action.customer_id AND ra.risk_type = 'churn'
                             ORDER BY ra.created_at DESC LIMIT 1) r
                     CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof(r.risk_factors)
                                                             WHEN 'array' THEN r.risk_factors ELSE '[]' END) f
                    UNION ALL
                    SELECT o.kind FROM cs.opportunities o
                     WHERE o.customer_id = record_customer_action.customer_id AND o.status IN ('open', 'in_progress')) y
                 WHERE x = ANY (p.answers) ORDER BY x);
    SELECT s.overall_score, s.band INTO h FROM cs.customer_health_scores s
     WHERE s.customer_id = record_customer_action.customer_id ORDER BY s.calculated_at DESC LIMIT 1;
    INSERT INTO cs.actions (alert_id, customer_id, playbook, taken_by, outcome, outcome_at, outcome_source, factors,
                            health_at_action, band_at_action, renewal_date_at_action)
    SELECT NULL, c.id, p.name, who, record_customer_action.outcome,
           CASE WHEN record_customer_action.outcome IS NOT NULL THEN now() END,
           CASE WHEN record_customer_action.outcome IS NOT NULL THEN 'reported' END,
           fs, h.overall_score, h.band, c.contract_end_date
      FROM cs.customers c WHERE c.id = record_customer_action.customer_id
    RETURNING id INTO aid;
    RETURN aid;
END;
$$;
COMMENT ON FUNCTION cs.record_customer_action(uuid, text, text) IS
    'Logs that the caller applied a playbook to one of her customers (no_data_found for others) without an alert: the factors it addresses are the playbook''s answers among the '
    'customer''s latest churn factors and open opportunity kinds; health and renewal date are kept to measure against, and an outcome given here is stored as reported. Returns the action id.';
