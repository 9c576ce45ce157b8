-- Training on the user's own history: where each feature's information comes
-- from (for the leakage audit of cs.train_model and the readiness report),
-- one-call training with a forward split (cs.train_from_history), and whether
-- a model applies to this database at all (cs.model_applicability): an
-- inapplicable champion raises a model alert and no risk alerts.

------------------------------------------------------------------------------
-- Where the features come from
------------------------------------------------------------------------------

-- point_in_time: true when the feature is computed from timestamped facts
-- (its value at a past as_of is what was known then), false when it reads an
-- undated current-state column (today's value leaks into every past date).
CREATE OR REPLACE FUNCTION cs.feature_sources()
RETURNS TABLE (feature text, source_table text, point_in_time boolean, basis text, load_next text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT * FROM (VALUES
     ('active_users_7d', 'usage_events', true, 'events dated by occurred_at', 'cs.usage_events (customer_id, user_id, occurred_at)'),
     ('active_users_30d', 'usage_events', true, 'events dated by occurred_at', 'cs.usage_events (customer_id, user_id, occurred_at)'),
     ('seat_utilisation', 'usage_events', false, 'active users over cs.customers.seats_licensed, today''s licence', 'cs.usage_events.user_id and cs.customers.seats_licensed'),
     ('events_per_active_user_30d', 'usage_events', true, 'events dated by occurred_at', 'cs.usage_events (user_id, quantity, occurred_at)'),
     ('feature_breadth_30d', 'usage_events', true, 'events dated by occurred_at', 'cs.usage_events.feature'),
     ('days_since_last_activity', 'usage_events', true, 'events dated by occurred_at', 'cs.usage_events (customer_id, occurred_at)'),
     ('usage_trend_30d', 'usage_events', true, 'events dated by occurred_at', 'cs.usage_events (quantity, occurred_at), 60 days of history'),
     ('usage_trend_14d', 'usage_events', true, 'events dated by occurred_at', 'cs.usage_events (quantity, occurred_at), 28 days of history'),
     ('events_30d', 'usage_events', true, 'events dated by occurred_at', 'cs.usage_events (quantity, occurred_at)'),
     ('active_days_30d', 'usage_events', true, 'events dated by occurred_at', 'cs.usage_events (customer_id, occurred_at)'),
     ('tickets_30d', 'support_tickets', true, 'tickets dated by opened_at', 'cs.support_tickets (customer_id, opened_at)'),
     ('tickets_90d', 'support_tickets', true, 'tickets dated by opened_at', 'cs.support_tickets (customer_id, opened_at)'),
     ('open_high_priority_tickets', 'support_tickets', true, 'opened_at and closed_at', 'cs.support_tickets (priority, opened_at, closed_at)'),
     ('mean_csat_90d', 'support_tickets', true, 'tickets dated by opened_at', 'cs.support_tickets.csat'),
     ('mean_hours_to_close_90d', 'support_tickets', true, 'opened_at and closed_at', 'cs.support_tickets.closed_at'),
     ('late_or_failed_invoices_90d', 'invoices', true, 'due_date and paid_at', 'cs.invoices (due_date, paid_at, status)'),
     ('days_overdue', 'invoices', true, 'due_date and paid_at', 'cs.invoices (due_date, paid_at)'),
     ('meetings_90d', 'engagements', true, 'engagements dated by occurred_at', 'cs.engagements (kind, occurred_at)'),
     ('qbrs_90d', 'engagements', true, 'engagements dated by occurred_at', 'cs.engagements (kind qbr, occurred_at)'),
     ('days_since_last_touch', 'engagements', true, 'engagements dated by occurred_at', 'cs.engagements (occurred_at)'),
     ('last_nps', 'nps_responses', true, 'answers dated by responded_at', 'cs.nps_responses (score, responded_at)'),
     ('nps_trend', 'nps_responses', true, 'answers dated by responded_at', 'cs.nps_responses (score, responded_at), two answers or more'),
     ('champion_left_90d', 'contacts', true, 'departures dated by left_at', 'cs.contacts (is_champion, left_at)'),
     ('has_active_champion', 'contacts', false, 'is_champion is today''s flag; contacts carry no start date', 'cs.contacts (is_champion, left_at)'),
     ('tenure_days', 'customers', true, 'start of the customer''s real history (terms, contract, activity)', 'cs.contract_terms (term_start) or cs.customers.contract_start_date'),
     ('days_to_renewal', 'customers', true, 'the term in force at as_of (cs.contract_terms)', 'cs.contract_terms (term_start, term_end)'),
     ('mrr', 'subscriptions', false, 'subscriptions dated by started_at and ended_at, else today''s cs.customers.mrr', 'cs.subscriptions (mrr, started_at, ended_at)'),
     ('mrr_change_90d', 'subscriptions', true, 'subscriptions dated by started_at and ended_at', 'cs.subscriptions (mrr, started_at, ended_at)'),
     ('active_products', 'subscriptions', true, 'subscriptions dated by started_at and ended_at', 'cs.subscriptions (product, started_at, ended_at)'),
     ('seats_licensed', 'customers', false, 'today''s cs.customers.seats_licensed', 'cs.customers.seats_licensed (or seats of cs.contract_terms)'),
     ('ticket_sentiment_30d', 'support_tickets', true, 'ticket text dated by opened_at', 'cs.support_tickets (subject, body)'),
     ('ticket_sentiment_90d', 'support_tickets', true, 'ticket text dated by opened_at', 'cs.support_tickets (subject, body)'),
     ('negative_ticket_share_90d', 'support_tickets', true, 'ticket text dated by opened_at', 'cs.support_tickets (subject, body)'),
     ('cancellation_mentions_90d', 'support_tickets', true, 'ticket and NPS text, dated', 'cs.support_tickets (subject, body) or cs.nps_responses.comment'),
     ('competitor_mentions_90d', 'support_tickets', true, 'ticket and NPS text, dated', 'cs.support_tickets (subject, body) or cs.nps_responses.comment'),
     ('nps_comment_sentiment', 'nps_responses', true, 'comments dated by responded_at', 'cs.nps_responses.comment')
    ) AS v (feature, source_table, point_in_time, basis, load_next)
    UNION ALL
    -- usage metrics (cs.usage_metrics): events dated by occurred_at
    SELECT m.name, 'usage_events', true, 'events dated by occurred_at (usage metric)',
           'cs.usage_events (customer_id, event, user_id, quantity, occurred_at)'
      FROM cs.usage_metrics m
$$;
COMMENT ON FUNCTION cs.feature_sources() IS
    'Per feature of cs.feature_catalog and per usage metric (cs.usage_metrics): the table it comes from, whether its information existed at as_of (point_in_time: computed from timestamped facts; false when it reads an undated current-state column), on what basis, and the table and columns to load to feed it. The leakage audit of cs.train_model and cs.readiness_report read it.';

------------------------------------------------------------------------------
-- Readiness
------------------------------------------------------------------------------

-- Per feature: the share of current (not churned) customers with a value, and
-- whether it varies; supported when at least 5% have a value and it takes two
-- values or more.  Unsupported features first, grouped by the table to load.
CREATE OR REPLACE FUNCTION cs.readiness_report()
RETURNS TABLE (feature text, "position" int, source_table text, present_share float8, varies boolean,
               supported boolean, load_next text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
AS $$
    -- every input a model can have (cs.feature_names(): the catalog, then the
    -- enabled usage metrics), found by name in each stored vector's layout
    WITH f AS (
        SELECT n.name, n.o::int AS pos FROM unnest(cs.feature_names()) WITH ORDINALITY AS n (name, o)
    ), ln AS (
        SELECT 0 AS layout, cs._layout_names(NULL) AS names
        UNION ALL
        SELECT l.layout_id, l.names FROM cs.feature_layouts l
    ), lpos AS (
        SELECT ln.layout, f.pos, array_position(ln.names, f.name) AS at FROM ln CROSS JOIN f
    ), st AS (
        SELECT lpos.pos, count(*) AS total,
               count(*) FILTER (WHERE x.v IS NOT NULL AND x.v <> 'NaN') AS present,
               min(x.v) FILTER (WHERE x.v IS NOT NULL AND x.v <> 'NaN') AS lo,
               max(x.v) FILTER (WHERE x.v IS NOT NULL AND x.v <> 'NaN') AS hi
          FROM cs.customer_features cf
          JOIN cs.customers c ON c.id = cf.customer_id AND c.churned_at IS NULL
          JOIN lpos ON lpos.layout = coalesce(cf.layout, 0)
         CROSS JOIN LATERAL (SELECT cf.features[lpos.at] AS v) x
         GROUP BY lpos.pos
    ), r AS (
        SELECT f.name, f.pos AS position, coalesce(s.source_table, fc.source) AS source_table,
               CASE WHEN st.total > 0 THEN st.present::float8 / st.total ELSE 0 END AS present_share,
               coalesce(st.lo < st.hi, false) AS varies, s.load_next
          FROM f
          LEFT JOIN cs.feature_catalog fc ON fc.name = f.name
          LEFT JOIN st ON st.pos = f.pos
          LEFT JOIN cs.feature_sources() s ON s.feature = f.name
    )
    SELECT r.name, r.position, r.source_table, round(r.present_share::numeric, 4)::float8, r.varies,
           r.present_share >= 0.05 AND r.varies,
           CASE WHEN NOT (r.present_share >= 0.05 AND r.varies)
                THEN coalesce(r.load_next, 'cs.' || r.source_table) END
      FROM r
     ORDER BY (r.present_share >= 0.05 AND r.varies), r.source_table, r.position
$$;
COMMENT ON FUNCTION cs.readiness_report() IS
    'Which features this database''s data supports, one row per input of cs.feature_names() (the catalog, then the enabled usage metrics) over the current customers'' stored features: source table, share of customers with a value, whether it varies, supported (at least 5% present and two values or more), and for an unsupported one what to load next (table and columns, from cs.feature_sources). Unsupported first, by table.';

------------------------------------------------------------------------------
-- Applicability of a model to this database
------------------------------------------------------------------------------

-- Per input of a model, weighted by its share of the gain importance (metrics
-- feature_importance_gain; equal weights when the model has none): its share
-- of present values and whether it varies over the current customers' stored
-- features.  An input is usable when at least 5% have a value and it takes
-- two values or more.  Verdict: not applicable when the unusable inputs carry
-- at least cscopilot.inapplicable_gain_share of the gain; no data when no
-- current customer has stored features.
CREATE OR REPLACE FUNCTION cs.model_applicability(name text, version int)
RETURNS TABLE (feature text, gain_share float8, present_share float8, varies boolean, usable boolean,
               unusable_gain_share float8, verdict text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m cs.models;
BEGIN
    SELECT * INTO m FROM cs.models AS x WHERE x.name = model_applicability.name AND x.version = model_applicability.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object', HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    RETURN QUERY
    WITH inp AS (
        SELECT f.n AS feature, f.o,
               coalesce((m.metrics -> 'feature_importance_gain' ->> f.n)::float8, 0) AS gain
          FROM unnest(m.feature_names) WITH ORDINALITY AS f (n, o)
    ), w AS (
        SELECT inp.*,
               CASE WHEN sum(inp.gain) OVER () > 0 THEN inp.gain / sum(inp.gain) OVER ()
                    ELSE 1.0 / count(*) OVER () END AS share
          FROM inp
    ), cur AS (
        SELECT cf.features, coalesce(cf.layout, 0) AS layout FROM cs.customer_features cf
          JOIN cs.customers c ON c.id = cf.customer_id AND c.churned_at IS NULL
    ), lpos AS (
        -- each input by name in each stored vector's layout (usage metrics
        -- follow the catalog; a name a layout lacks is missing there)
        SELECT ln.layout, w.o, array_position(ln.names, w.feature) AS at
          FROM (SELECT 0 AS layout, cs._layout_names(NULL) AS names
                UNION ALL
                SELECT l.layout_id, l.names FROM cs.feature_layouts l) ln
         CROSS JOIN w
    ), st AS (
        SELECT lpos.o, count(*) AS total,
               count(*) FILTER (WHERE x.v IS NOT NULL AND x.v <> 'NaN') AS present,
               min(x.v) FILTER (WHERE x.v IS NOT NULL AND x.v <> 'NaN') AS lo,
               max(x.v) FILTER (WHERE x.v IS NOT NULL AND x.v <> 'NaN') AS hi
          FROM cur JOIN lpos ON lpos.layout = cur.layout
         CROSS JOIN LATERAL (SELECT cur.features[lpos.at] AS v) x
         GROUP BY lpos.o
    ), r AS (
        SELECT w.feature, w.o, w.share,
               CASE WHEN st.total > 0 THEN st.present::float8 / st.total ELSE 0 END AS present,
               coalesce(st.lo < st.hi, false) AS varies
          FROM w LEFT JOIN st ON st.o = w.o
    ), u AS (
        SELECT r.*, r.present >= 0.05 AND r.varies AS usable FROM r
    ), tot AS (
        SELECT coalesce(sum(u.share) FILTER (WHERE NOT u.usable), 0) AS unusable FROM u
    )
    SELECT u.feature, round(u.share::numeric, 4)::float8, round(u.present::numeric, 4)::float8, u.varies, u.usable,
           round(tot.unusable::numeric, 4)::float8,
           CASE WHEN NOT EXISTS (SELECT 1 FROM cur) THEN 'no data'
                WHEN tot.unusable >= cs.setting('cscopilot.inapplicable_gain_share')::float8 THEN 'not applicable'
                ELSE 'applicable' END
      FROM u CROSS JOIN tot
     ORDER BY u.share DESC, u.o;
END;
$$;
COMMENT ON FUNCTION cs.model_applicability(text, int) IS
    'Whether a model applies to this database: per input, its share of the gain importance, share of current customers with a value, whether it varies, usable (>= 5% present and varying); and the verdict (the same on every row): not applicable when unusable inputs carry at least cscopilot.inapplicable_gain_share of the gain, applicable otherwise, no data without stored features.';

-- Computes a model's applicability, stores it (cs.models.applicability, only
-- when it changed: an update makes every backend reload its models) and, for
-- a champion, raises a model alert when it is not applicable or resolves the
-- open one when it is again.  Returns the verdict.
CREATE OR REPLACE FUNCTION cs._check_applicability(model_id int) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m       cs.models;
    label   text;
    verdict text;
    share   float8;
    missing jsonb;
    res     jsonb;
    open_id uuid;
BEGIN
    SELECT * INTO m FROM cs.models x WHERE x.id = model_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    label := m.name || ':v' || m.version;
    SELECT min(a.verdict), min(a.unusable_gain_share),
           coalesce(jsonb_agg(a.feature ORDER BY a.gain_share DESC, a.feature) FILTER (WHERE NOT a.usable AND a.gain_share > 0), '[]')
      INTO verdict, share, missing
      FROM cs.model_applicability(m.name, m.version) a;
    res := jsonb_build_object('verdict', verdict, 'unusable_gain_share', share, 'missing_or_constant', missing);
    IF m.applicability IS DISTINCT FROM res THEN
        UPDATE cs.models x SET applicability = res WHERE x.id = m.id;
    END IF;
    IF m.status <> 'champion' THEN
        RETURN verdict;
    END IF;
    -- the alerts of champions since replaced are over
    PERFORM cs._resolve_alerts(ARRAY(SELECT al.id FROM cs.system_alerts al
                                      WHERE al.alert_type = 'model'
                                        AND al.risk_factors ->> 'check' = 'applicability'
                                        AND al.status IN ('open', 'acknowledged', 'snoozed')
                                        AND NOT EXISTS (SELECT 1 FROM cs.models x
                                                         WHERE x.status = 'champion'
                                                           AND x.name || ':v' || x.version = al.risk_factors ->> 'model')),
                               'model replaced');
    IF verdict = 'not applicable' THEN
        PERFORM cs._raise_alerts(ARRAY[ROW(NULL, NULL, 'model', 'high',
                                           format('Model %s does not apply to this data', label),
                                           format('Inputs carrying %s%% of the importance of %s are missing or constant here (%s); its risk scores are flagged and raise no risk alerts. Train one on your own history: cs.train_from_history.',
                                                  round((share * 100)::numeric), label,
                                                  (SELECT string_agg(x, ', ') FROM jsonb_array_elements_text(missing) x)),
                                           jsonb_build_object('model', label, 'check', 'applicability',
                                                              'unusable_gain_share', share, 'features', missing),
                                           NULL, cs._admin_role(), NULL, NULL, NULL)::cs.alert_firing]);
    ELSE
        SELECT al.id INTO open_id FROM cs.system_alerts al
         WHERE al.alert_type = 'model'
           AND cs._alert_key(al.alert_type, NULL, al.risk_factors) = jsonb_build_array('model', label, 'applicability')
           AND al.status IN ('open', 'acknowledged', 'snoozed');
        IF FOUND THEN
            PERFORM cs._resolve_alerts(ARRAY[open_id], 'model applicable');
        END IF;
    END IF;
    RETURN verdict;
END;
$$;
COMMENT ON FUNCTION cs._check_applicability(int) IS
    'Internal: computes the applicability of model id (cs.model_applicability), stores it in cs.models.applicability when it changed, and for a champion raises a model alert (high, assigned to cscopilot.admin_role) when it is not applicable or resolves the open one. Returns the verdict.';

CREATE OR REPLACE FUNCTION cs.check_model_applicability()
RETURNS TABLE (model text, verdict text, unusable_gain_share float8)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m record;
BEGIN
    -- a writer of alerts, like every other: the refresh lock first
    PERFORM cs._refresh_lock();
    FOR m IN SELECT x.id, x.name, x.version FROM cs.models x
              WHERE x.status IN ('champion', 'challenger') AND x.kind IN ('churn', 'downgrade', 'payment', 'expansion')
              ORDER BY x.kind, x.status, x.name
    LOOP
        model := m.name || ':v' || m.version;
        verdict := cs._check_applicability(m.id);
        unusable_gain_share := (SELECT (x.applicability ->> 'unusable_gain_share')::float8 FROM cs.models x WHERE x.id = m.id);
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs.check_model_applicability() IS
    'Checks the applicability of every risk and expansion champion and challenger (cs.model_applicability), stores it, and raises (or resolves) a model alert for a champion that does not apply to this data. The daily model checks and every full refresh run it. Returns one row per model.';

------------------------------------------------------------------------------
-- One-call training on the user's own history
------------------------------------------------------------------------------

-- Observation dates: the last one a horizon before the latest fact (so its
-- labels are complete), then back weekly (every horizon when the horizon is a
-- week or less): weekly dates give more labelled rows and show each churn at
-- several distances before it happened, and the forward split keeps the
-- validation honest however close the dates are.  Back to 30 days after the
-- first fact (the feature windows need history), at most 52 dates, unless
-- observations says how many.
CREATE OR REPLACE FUNCTION cs.train_from_history(name text, kind text DEFAULT 'churn', horizon interval DEFAULT NULL,
                                                 params jsonb DEFAULT '{}', observations int DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    h        interval := coalesce(horizon, cs._outcome_horizon());
    step     interval;
    latest   timestamptz;
    earliest timestamptz;
    last_d   date;
    dates    date[];
    nrows    bigint;
    pos      bigint;
    p        jsonb;
    mid      int;
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'model name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cs.outcome_kind(train_from_history.kind) IS NULL THEN
        RAISE EXCEPTION 'cs.train_from_history trains churn, downgrade, payment, expansion or upsell models, not "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Each kind is labelled by its own outcome (cs.build_training_set, cs.label_definition); for other labels use cs.train_model over your own query with an as_of column.';
    END IF;
    IF h <= interval '0' THEN
        RAISE EXCEPTION 'horizon must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF observations IS NOT NULL AND observations < 2 THEN
        RAISE EXCEPTION 'observations must be at least 2' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'The forward split validates on the latest dates and trains on the earlier ones.';
    END IF;
    IF params IS NOT NULL AND jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    p := coalesce(params, '{}') || jsonb_build_object('horizon', h::text);

    SELECT greatest((SELECT max(e.occurred_at) FROM cs.usage_events e),
                    (SELECT max(t.opened_at) FROM cs.support_tickets t),
                    (SELECT max(i.issued_at)::timestamptz FROM cs.invoices i),
                    (SELECT max(g.occurred_at) FROM cs.engagements g),
                    (SELECT max(n.responded_at) FROM cs.nps_responses n),
                    (SELECT max(c.churned_at)::timestamptz FROM cs.customers c)),
           least((SELECT min(e.occurred_at) FROM cs.usage_events e),
                 (SELECT min(t.opened_at) FROM cs.support_tickets t),
                 (SELECT min(i.issued_at)::timestamptz FROM cs.invoices i),
                 (SELECT min(g.occurred_at) FROM cs.engagements g),
                 (SELECT min(n.responded_at) FROM cs.nps_responses n))
      INTO latest, earliest;
    IF latest IS NULL OR earliest IS NULL THEN
        RAISE EXCEPTION 'there is no history to train on'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Load dated facts first: cs.usage_events at least, and cs.customers.churned_at for the customers who left.';
    END IF;
    last_d := (latest - h)::date;
    step := CASE WHEN h > interval '7 days' THEN interval '7 days' ELSE h END;
    dates := ARRAY(SELECT d FROM (SELECT (last_d - k * step)::date AS d
                                    FROM generate_series(0, coalesce(observations, 52) - 1) k) x
                    WHERE observations IS NOT NULL OR x.d >= (earliest + interval '30 days')::date
                    ORDER BY d);
    IF cardinality(dates) < 2 THEN
        RAISE EXCEPTION 'the history is too short to train on: % observation date(s)', cardinality(dates)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Observation dates start 30 days after the first fact (%s) and end one horizon (%s) before the latest (%s).',
                                  earliest::date, h, latest::date),
                  HINT = 'Load more history, or use a shorter horizon.';
    END IF;

    IF to_regclass('pg_temp.cs_history_rows') IS NOT NULL THEN
        DROP TABLE pg_temp.cs_history_rows;
    END IF;
    CREATE TEMP TABLE cs_history_rows ON COMMIT DROP AS
        SELECT t.customer_id, t.as_of, t.features, t.label, t.group_key FROM cs.build_training_set(dates, h, cs.outcome_kind(train_from_history.kind)) t;
    SELECT count(*), coalesce(sum(t.label), 0) INTO nrows, pos FROM pg_temp.cs_history_rows t;
    IF pos < 10 OR nrows - pos < 10 THEN
        RAISE EXCEPTION 'too few rows of each class to train on: % with the outcome (%) and % without', pos,
                        cs.outcome_kind(train_from_history.kind), nrows - pos
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s observation dates from %s to %s, %s within %s.', cardinality(dates), dates[1],
                                  dates[cardinality(dates)], cs.outcome_kind(train_from_history.kind), h),
                  HINT = 'A model needs at least 10 of each: load the churned customers (cs.customers.churned_at) and more history, or use a longer horizon.';
    END IF;

    mid := cs.train_model(name, kind, 'SELECT features, label, group_key, as_of FROM pg_temp.cs_history_rows', p);
    UPDATE cs.models m
       SET training_data = format('cs.train_from_history: %s observation dates from %s to %s every %s, %s within %s; %s rows, %s positive',
                                  cardinality(dates), dates[1], dates[cardinality(dates)], step, cs.outcome_kind(train_from_history.kind), h,
                                  nrows, pos),
           metrics = m.metrics || jsonb_build_object('training_window',
                         jsonb_build_object('observation_dates', to_jsonb(dates), 'horizon', h::text, 'step', step::text,
                                            'rows', nrows, 'positives', pos),
                         'label', cs.label_definition(cs.outcome_kind(train_from_history.kind), h))
     WHERE m.id = mid;
    DROP TABLE pg_temp.cs_history_rows;
    RETURN mid;
END;
$$;
COMMENT ON FUNCTION cs.train_from_history(text, text, interval, jsonb, int) IS
    'Trains a churn, downgrade, payment, expansion or upsell (expansion) model on this database''s own history in one call: observation dates weekly (every horizon when it is a week or less) back from one horizon before the latest fact (at most 52, or observations), labels the kind''s own outcome within the horizon (cs.build_training_set, cs.label_definition), the forward split with a gap of one horizon (cs.train_model with as_of), leakage audit; registers the model as a candidate and returns its cs.models id. Errors with object_not_in_prerequisite_state when there is too little history or fewer than 10 rows of a class.';
