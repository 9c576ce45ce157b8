-- cscopilot 0.1.0 -> 0.2.0.  `make` builds cscopilot--0.1.0--0.2.0.sql from this
-- file followed by src/sql/95_security.sql, so that the roles, privileges,
-- row-level security and dump registrations cover every object this upgrade
-- adds.  A line `--@include src/sql/<file>.sql` is replaced by that file: the
-- files new in 0.2.0 are installed by the upgrade exactly as by CREATE EXTENSION.
--
-- One section per file of src/sql/, in install order, with what changed there
-- since 0.1.0 (cscopilot--0.1.0.sql): new objects and comments as in
-- src/sql/; CREATE OR REPLACE of changed function bodies (copied unchanged:
-- sql/upgrade.sql compares their text with a fresh install); ALTER TABLE for
-- new columns and constraints; DROP + CREATE where a signature or a view's
-- column type changed; new shipped configuration rows, inserted unless the
-- user already has a row of that name.  The shipped rows of 0.1.0 are
-- unchanged in 0.2.0 (sql/upgrade.sql compares them too).  The test lists
-- anything that still differs from a fresh install.

\echo Use "ALTER EXTENSION cscopilot UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Schema: customers, model registry, alerts (src/sql/00_schema.sql)
------------------------------------------------------------------------------

-- A CSM's accounts, largest first (the account overview's page).
CREATE INDEX customers_csm_mrr_idx ON cs.customers (csm, mrr DESC);

ALTER TABLE cs.models DROP CONSTRAINT models_status_check,
    ADD CONSTRAINT models_status_check CHECK (status IN ('candidate', 'challenger', 'champion', 'retired')),
    ADD COLUMN reference jsonb;

-- One challenger per kind (custom models: per name), judged against the champion.
CREATE UNIQUE INDEX models_one_challenger_per_kind ON cs.models (kind) WHERE status = 'challenger' AND kind <> 'custom';

CREATE UNIQUE INDEX models_one_challenger_per_custom_name ON cs.models (name) WHERE status = 'challenger' AND kind = 'custom';
COMMENT ON COLUMN cs.models.feature_names IS 'Input feature names in order; for scoring kinds the first names of cs.feature_catalog (all of them, or a prefix for a model registered before the catalog grew).';
COMMENT ON COLUMN cs.models.status IS 'candidate, challenger (scored in shadow or on an A/B share, judged against the champion), champion (scores its kind) or retired.';
COMMENT ON COLUMN cs.models.reference IS 'Reference distribution of the inputs the model learnt from (missing rate, decile edges and bin shares per feature), for cs.feature_drift; NULL when unknown.';

ALTER TABLE cs.alerts ADD COLUMN mrr_at_risk numeric(10,2) NOT NULL DEFAULT 0 CHECK (mrr_at_risk >= 0);
-- Until an alert fires again, its MRR at risk is the customer's MRR now
-- (what cs.risk_alerts showed in 0.1.0).
UPDATE cs.alerts a SET mrr_at_risk = coalesce(c.mrr, 0) FROM cs.customers c
 WHERE c.id = a.customer_id AND coalesce(c.mrr, 0) > 0;
COMMENT ON COLUMN cs.alerts.mrr_at_risk IS 'MRR of the customer when the alert last fired (0 without a customer or MRR); stored so that the alert pages read the most severe, largest alerts from an index.';

------------------------------------------------------------------------------
-- Text signals (new in 0.2.0: src/sql/08_text.sql)
------------------------------------------------------------------------------

--@include src/sql/08_text.sql

------------------------------------------------------------------------------
-- Features: the text features 31-36 (their signals cached), parallel usage aggregation (src/sql/10_features.sql)
------------------------------------------------------------------------------

-- The usage aggregate gains parallel aggregation.
CREATE FUNCTION cs._usage_summary_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_summary_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION cs._usage_summary_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'cs_usage_summary_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION cs._usage_summary_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_summary_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._usage_summary_combine(internal, internal) IS 'Internal: combine function of cs.usage_summary (parallel aggregation).';
COMMENT ON FUNCTION cs._usage_summary_serialize(internal) IS 'Internal: serializes a cs.usage_summary state for parallel aggregation.';
COMMENT ON FUNCTION cs._usage_summary_deserialize(bytea, internal) IS 'Internal: deserializes a cs.usage_summary state for parallel aggregation.';
CREATE OR REPLACE AGGREGATE cs.usage_summary(user_id text, feature text, quantity float8, occurred_at timestamptz, as_of timestamptz) (
    SFUNC = cs._usage_summary_trans, STYPE = internal, FINALFUNC = cs._usage_summary_final,
    COMBINEFUNC = cs._usage_summary_combine, SERIALFUNC = cs._usage_summary_serialize,
    DESERIALFUNC = cs._usage_summary_deserialize, PARALLEL = SAFE);

INSERT INTO cs.feature_catalog (position, name, description, source) VALUES
 (31, 'ticket_sentiment_30d',       'Mean sentiment (cs.sentiment of subject and body, -1..1) of tickets with text opened in the last 30 days', 'support_tickets'),
 (32, 'ticket_sentiment_90d',       'Mean sentiment of tickets with text opened in the last 90 days', 'support_tickets'),
 (33, 'negative_ticket_share_90d',  'Share of tickets with text opened in the last 90 days whose sentiment is -0.1 or less (negative)', 'support_tickets'),
 (34, 'cancellation_mentions_90d',  'Tickets and NPS comments of the last 90 days in category cancellation_intent (cs.ticket_category); NaN without any text', 'support_tickets'),
 (35, 'competitor_mentions_90d',    'Tickets and NPS comments of the last 90 days in category competitor_mention; NaN without any text', 'support_tickets'),
 (36, 'nps_comment_sentiment',      'Sentiment of the most recent non-blank NPS comment', 'nps_responses');

-- Feature vectors for a set of customers (all of them when ids is NULL) as of a
-- point in time: only rows with timestamps at or before as_of count, so models
-- can be trained on history without leakage.  One query serves one customer
-- and a full refresh alike.
CREATE OR REPLACE FUNCTION cs.compute_features(ids uuid[], as_of timestamptz)
RETURNS TABLE (customer_id uuid, features float4[])
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
-- room for the per-customer hash aggregates of a full refresh
SET work_mem = '256MB'
-- the usage aggregate combines partial states: two workers took a full
-- refresh's features from 14.3 s to 10.4 s at 100,000 customers (the refresh
-- itself runs without parallel query, which slowed its other stages)
SET max_parallel_workers_per_gather = 2
AS $fn$
DECLARE
    f text;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A literal predicate gives the planner a plan per case: index scans for a
    -- few customers, hash aggregates over everything for a full refresh.
    f := CASE WHEN ids IS NULL THEN 'true' ELSE 'customer_id = ANY ($1)' END;
    RETURN QUERY EXECUTE format($q$
    WITH c AS (
        SELECT id, mrr, seats_licensed, contract_start_date, contract_end_date,
               least(contract_start_date, created_at::date) AS since
          FROM cs.customers WHERE %1$s
    ), u AS MATERIALIZED (
        SELECT customer_id,
               cs.usage_summary(user_id, feature, quantity, occurred_at, $2) AS us
          FROM cs.usage_events
         WHERE %2$s AND occurred_at > $2 - interval '60 days' AND occurred_at <= $2
         GROUP BY customer_id
    ), u_old AS (
        -- days since the last activity of customers silent for 60 days, by index
        SELECT q.id AS customer_id,
               (SELECT extract(epoch FROM $2 - max(e.occurred_at)) / 86400.0 FROM cs.usage_events e
                 WHERE e.customer_id = q.id AND e.occurred_at <= $2 - interval '60 days') AS days_since
          FROM (SELECT c.id FROM c WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.customer_id = c.id) OFFSET 0) q
    ), t AS (
        SELECT customer_id,
               count(*) FILTER (WHERE opened_at > $2 - interval '30 days') AS t30,
               count(*) AS t90,
               avg(csat) AS csat90,
               avg(extract(epoch FROM closed_at - opened_at) / 3600.0)
                   FILTER (WHERE closed_at <= $2) AS hours_to_close
          FROM cs.support_tickets
         WHERE %2$s AND opened_at > $2 - interval '90 days' AND opened_at <= $2
         GROUP BY customer_id
    ), t_open AS (
        SELECT customer_id, count(*) AS open_high
          FROM cs.support_tickets
         WHERE %2$s AND opened_at <= $2 AND (closed_at IS NULL OR closed_at > $2)
           AND priority IN ('high', 'urgent') AND status NOT IN ('solved', 'closed')
         GROUP BY customer_id
    ), mf AS (
        -- one query matching any positive rule of the two categories: the
        -- few texts it matches go through the rules
        SELECT string_agg('(' || query::text || ')', ' | ')::tsquery AS q,
               cs._text_signals_stamp() AS stamp
          FROM cs.text_category_filters
         WHERE category IN ('cancellation_intent', 'competitor_mention')
    ), tt AS (
        -- texts of the tickets of the last 90 days: subject and body as
        -- sentences; the cached signals of a text when it and the rules are
        -- those they were computed from, else computed here
        SELECT x.customer_id, x.opened_at,
               CASE WHEN ts.id IS NOT NULL THEN ts.sentiment ELSE cs.sentiment(txt) END AS sent,
               CASE WHEN ts.id IS NOT NULL THEN ts.categories
                    WHEN to_tsvector('english', cs._text_prefix(txt, 100000)) @@ mf.q
                    THEN cs._text_categories(txt, '{cancellation_intent,competitor_mention}') END AS cats
          FROM (SELECT id, customer_id, opened_at,
                       nullif(btrim(concat_ws('. ', nullif(btrim(subject), ''), nullif(btrim(body), ''))), '') AS txt
                  FROM cs.support_tickets
                 WHERE %2$s AND opened_at > $2 - interval '90 days' AND opened_at <= $2
                OFFSET 0) x  -- OFFSET 0: each text is built once, not once per use
         CROSS JOIN mf
          LEFT JOIN %3$s ts ON ts.source = 'ticket' AND ts.id = x.id
                AND ts.text_hash = hashtextextended(x.txt, 0) AND ts.rules_stamp = mf.stamp
         WHERE txt IS NOT NULL
    ), nc AS (
        SELECT r.customer_id,
               CASE WHEN ts.id IS NOT NULL THEN ts.categories
                    WHEN to_tsvector('english', cs._text_prefix(comment, 100000)) @@ mf.q
                    THEN cs._text_categories(comment, '{cancellation_intent,competitor_mention}') END AS cats
          FROM cs.nps_responses r CROSS JOIN mf
          LEFT JOIN %3$s ts ON ts.source = 'nps_comment' AND ts.id = r.id
                AND ts.text_hash = hashtextextended(r.comment, 0) AND ts.rules_stamp = mf.stamp
         WHERE %4$s AND responded_at > $2 - interval '90 days' AND responded_at <= $2
           AND btrim(comment) <> ''
    ), tx AS (
        SELECT customer_id,
               avg(sent) FILTER (WHERE src = 't' AND opened_at > $2 - interval '30 days') AS sent30,
               avg(sent) FILTER (WHERE src = 't') AS sent90,
               avg((sent <= -0.1)::int) FILTER (WHERE src = 't') AS neg_share,
               count(*) FILTER (WHERE 'cancellation_intent' = ANY (cats)) AS cancel90,
               count(*) FILTER (WHERE 'competitor_mention' = ANY (cats)) AS competitor90
          FROM (SELECT customer_id, 't' AS src, opened_at, sent, cats FROM tt
                UNION ALL
                SELECT customer_id, 'n', NULL, NULL, cats FROM nc) y
         GROUP BY customer_id
    ), i AS (
        SELECT customer_id,
               count(*) FILTER (WHERE due_date > ($2 - interval '90 days')::date AND due_date <= $2::date
                                  AND status <> 'void'
                                  AND (status = 'failed' OR paid_at IS NULL OR paid_at > due_date
                                       OR paid_at > $2::date)) AS late90,
               coalesce(max($2::date - due_date) FILTER (WHERE due_date < $2::date AND status NOT IN ('void', 'draft')
                                  AND (paid_at IS NULL OR paid_at > $2::date)), 0) AS overdue
          FROM cs.invoices
         WHERE %2$s AND issued_at <= $2::date
         GROUP BY customer_id
    ), e AS (
        SELECT customer_id,
               count(*) FILTER (WHERE occurred_at > $2 - interval '90 days'
                                  AND kind IN ('meeting', 'call', 'qbr', 'training', 'onsite')) AS meetings90,
               count(*) FILTER (WHERE occurred_at > $2 - interval '90 days' AND kind = 'qbr') AS qbr90,
               max(occurred_at) AS last_touch
          FROM cs.engagements
         WHERE %2$s AND occurred_at <= $2
         GROUP BY customer_id
    ), n AS (
        SELECT customer_id,
               (array_agg(score ORDER BY responded_at DESC, id DESC))[1] AS last_nps,
               (array_agg(score ORDER BY responded_at DESC, id DESC))[2] AS prev_nps,
               (array_agg(cs.sentiment(comment) ORDER BY responded_at DESC, id DESC)
                    FILTER (WHERE btrim(comment) <> ''))[1] AS comment_sent
          FROM cs.nps_responses
         WHERE %2$s AND responded_at <= $2
         GROUP BY customer_id
    ), k AS (
        SELECT customer_id,
               bool_or(is_champion AND left_at > $2 - interval '90 days' AND left_at <= $2) AS champion_left,
               bool_or(is_champion AND (left_at IS NULL OR left_at > $2)) AS champion_active
          FROM cs.contacts
         WHERE %2$s
         GROUP BY customer_id
    ), s AS (
        SELECT customer_id,
               sum(mrr) FILTER (WHERE started_at <= $2::date AND (ended_at IS NULL OR ended_at > $2::date)) AS mrr_now,
               sum(mrr) FILTER (WHERE started_at <= ($2 - interval '90 days')::date
                                  AND (ended_at IS NULL OR ended_at > ($2 - interval '90 days')::date)) AS mrr_then,
               count(DISTINCT product) FILTER (WHERE started_at <= $2::date
                                                 AND (ended_at IS NULL OR ended_at > $2::date)) AS products
          FROM cs.subscriptions
         WHERE %2$s
         GROUP BY customer_id
    )
    SELECT c.id,
           cs.feature_vector(ARRAY[
             -- us = {users 7d, users 30d, events 30d, events prior 30d, events 14d,
             --       events prior 14d, features 30d, active days 30d, days since last event}
             CASE WHEN u.us IS NOT NULL THEN u.us[1] WHEN uo.days_since IS NOT NULL THEN 0 END,
             CASE WHEN u.us IS NOT NULL THEN u.us[2] WHEN uo.days_since IS NOT NULL THEN 0 END,
             CASE WHEN c.seats_licensed > 0 AND (u.us IS NOT NULL OR uo.days_since IS NOT NULL)
                  THEN coalesce(u.us[2], 0) / c.seats_licensed END,
             CASE WHEN u.us[2] > 0 THEN u.us[3] / u.us[2] END,
             CASE WHEN u.us IS NOT NULL THEN u.us[7] WHEN uo.days_since IS NOT NULL THEN 0 END,
             coalesce(u.us[9], uo.days_since),
             CASE WHEN u.us[4] > 0 THEN u.us[3] / u.us[4] - 1
                  WHEN u.us IS NOT NULL THEN CASE WHEN u.us[3] > 0 THEN 1 ELSE 0 END
                  WHEN uo.days_since IS NOT NULL THEN 0 END,
             CASE WHEN u.us[6] > 0 THEN u.us[5] / u.us[6] - 1
                  WHEN u.us IS NOT NULL THEN CASE WHEN u.us[5] > 0 THEN 1 ELSE 0 END
                  WHEN uo.days_since IS NOT NULL THEN 0 END,
             CASE WHEN u.us IS NOT NULL THEN u.us[3] WHEN uo.days_since IS NOT NULL THEN 0 END,
             CASE WHEN u.us IS NOT NULL THEN u.us[8] WHEN uo.days_since IS NOT NULL THEN 0 END,
             coalesce(t.t30, 0),
             coalesce(t.t90, 0),
             coalesce(t_open.open_high, 0),
             t.csat90,
             t.hours_to_close,
             i.late90,
             i.overdue,
             coalesce(e.meetings90, 0),
             coalesce(e.qbr90, 0),
             extract(epoch FROM $2 - e.last_touch) / 86400.0,
             n.last_nps,
             n.last_nps - n.prev_nps,
             CASE WHEN k.customer_id IS NOT NULL THEN coalesce(k.champion_left, false)::int END,
             CASE WHEN k.customer_id IS NOT NULL THEN coalesce(k.champion_active, false)::int END,
             -- cs.customers holds only the current contract: before it began, the
             -- customer was in an earlier term of the same length, so the renewal
             -- then was the start of a later term (point-in-time; the current end
             -- date would tell the future: whether the customer renewed).
             CASE WHEN c.since <= $2::date THEN $2::date - c.since END,
             CASE WHEN c.contract_end_date IS NULL THEN NULL
                  WHEN c.contract_start_date IS NULL OR $2::date >= c.contract_start_date
                       THEN c.contract_end_date - $2::date
                  ELSE (c.contract_start_date - $2::date - 1)
                       %% greatest(c.contract_end_date - c.contract_start_date, 1) + 1 END,
             coalesce(s.mrr_now, c.mrr),
             CASE WHEN s.mrr_then > 0 THEN coalesce(s.mrr_now, 0) / s.mrr_then - 1 END,
             s.products,
             c.seats_licensed,
             tx.sent30,
             tx.sent90,
             tx.neg_share,
             tx.cancel90,
             tx.competitor90,
             n.comment_sent
           ]::float8[])
      FROM c
      LEFT JOIN u ON u.customer_id = c.id
      LEFT JOIN u_old uo ON uo.customer_id = c.id
      LEFT JOIN t ON t.customer_id = c.id
      LEFT JOIN t_open ON t_open.customer_id = c.id
      LEFT JOIN tx ON tx.customer_id = c.id
      LEFT JOIN i ON i.customer_id = c.id
      LEFT JOIN e ON e.customer_id = c.id
      LEFT JOIN n ON n.customer_id = c.id
      LEFT JOIN k ON k.customer_id = c.id
      LEFT JOIN s ON s.customer_id = c.id
    $q$, replace(f, 'customer_id', 'id'), f,
       -- the cache of text signals, for the users who may read it (it is
       -- internal: viewers and CSMs compute every text)
       CASE WHEN has_table_privilege('cs.text_signals', 'SELECT') THEN 'cs.text_signals'
            ELSE '(SELECT NULL::text AS source, NULL::bigint AS id, NULL::bigint AS text_hash,
                          NULL::bigint AS rules_stamp, NULL::float8 AS sentiment, NULL::text[] AS categories
                    WHERE false)' END,
       replace(f, 'customer_id', 'r.customer_id'))
    USING ids, as_of;
END;
$fn$;

------------------------------------------------------------------------------
-- Health: cs._health_of in C, the sparkline in C (src/sql/20_health.sql)
------------------------------------------------------------------------------

-- Refreshes run without parallel query (slower on the measured machine), and a
-- full refresh brings the cache of text signals up to date first.
CREATE OR REPLACE FUNCTION cs._refresh_customers(ids uuid[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
-- Parallel query made a full refresh slower, not faster: 67.0 s against 40.9 s
-- at 100,000 customers (make bench, 2 cores); only cs.compute_features, whose
-- usage aggregate combines partial states, sets two workers again.
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    n bigint;
    t timestamptz := now();
BEGIN
    -- A full refresh first brings the cache of text signals up to date, so
    -- that the features classify only the texts new or changed since the last.
    IF ids IS NULL THEN
        PERFORM cs._refresh_text_signals();
    END IF;
    INSERT INTO cs.customer_features AS cf (customer_id, as_of, features)
    SELECT f.customer_id, t, f.features FROM cs.compute_features(ids, t) f
    ON CONFLICT (customer_id) DO UPDATE SET as_of = excluded.as_of, features = excluded.features;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF ids IS NULL THEN
        PERFORM cs._refresh_health_populations();
    END IF;

    INSERT INTO cs.customer_health_scores (customer_id, overall_score, usage_score, engagement_score, support_score,
                                           payment_score, calculated_at, version, band, drivers)
    SELECT h.customer_id, h.overall_score, h.usage_score, h.engagement_score, h.support_score,
           h.payment_score, h.calculated_at, h.version, h.band, h.drivers
      FROM cs.compute_health(ids) h;

    -- Later stages, in dependency order: risk, opportunities, then alerts
    -- (which read health, churn risk and opportunities).
    PERFORM cs._score_risk(ids);
    PERFORM cs.refresh_opportunities(ids);
    PERFORM cs.evaluate_alerts(ids);
    RETURN n;
END;
$$;

CREATE FUNCTION cs._sparkline(at timestamptz, ts timestamptz[], scores numeric[]) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_sparkline' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._sparkline(timestamptz, timestamptz[], numeric[]) IS
    'Internal: twelve cs.spark() glyphs, oldest first, for the latest score at or before at minus 11, 10, ... 0 weeks, from ascending timestamps and their scores.';

-- The sparkline from one range scan of the history.
CREATE OR REPLACE VIEW cs.account_health_overview WITH (security_invoker = true) AS
SELECT c.id AS customer_id,
       c.external_id,
       c.name,
       c.csm,
       c.segment,
       c.mrr,
       c.contract_end_date AS renewal_date,
       h.overall_score,
       h.usage_score,
       h.engagement_score,
       h.support_score,
       h.payment_score,
       h.band,
       h.overall_score - (SELECT p.overall_score FROM cs.customer_health_scores p
                           WHERE p.customer_id = c.id AND p.calculated_at <= h.calculated_at - interval '7 days'
                           ORDER BY p.calculated_at DESC LIMIT 1) AS trend_7d,
       h.overall_score - (SELECT p.overall_score FROM cs.customer_health_scores p
                           WHERE p.customer_id = c.id AND p.calculated_at <= h.calculated_at - interval '30 days'
                           ORDER BY p.calculated_at DESC LIMIT 1) AS trend_30d,
       CASE WHEN h.overall_score IS NULL THEN NULL
            ELSE coalesce((SELECT CASE WHEN h.overall_score - p.overall_score >= 0.05 THEN '↑'
                                       WHEN h.overall_score - p.overall_score <= -0.05 THEN '↓'
                                       ELSE '→' END
                             FROM cs.customer_health_scores p
                            WHERE p.customer_id = c.id AND p.calculated_at <= h.calculated_at - interval '7 days'
                            ORDER BY p.calculated_at DESC LIMIT 1), '·') END AS trend_arrow,
       -- one range scan of the 12 weeks (and the score just before them)
       (SELECT cs._sparkline(h.calculated_at, array_agg(p.calculated_at ORDER BY p.calculated_at),
                             array_agg(p.overall_score ORDER BY p.calculated_at))
          FROM cs.customer_health_scores p
         WHERE p.customer_id = c.id AND p.calculated_at <= h.calculated_at
           AND p.calculated_at >= coalesce((SELECT q.calculated_at FROM cs.customer_health_scores q
                                             WHERE q.customer_id = c.id
                                               AND q.calculated_at <= h.calculated_at - interval '11 weeks'
                                             ORDER BY q.calculated_at DESC LIMIT 1), '-infinity')) AS sparkline,
       h.drivers -> 'top' -> 0 ->> 'measure' AS top_driver,
       r.risk_score AS churn_risk,
       r.confidence_score AS churn_risk_confidence,
       (SELECT x ->> 'feature' FROM jsonb_array_elements(r.risk_factors) x
         WHERE (x ->> 'contribution')::float8 > 0
         ORDER BY (x ->> 'contribution')::float8 DESC LIMIT 1) AS top_risk_factor,
       h.calculated_at
  FROM cs.customers c
  LEFT JOIN LATERAL (SELECT * FROM cs.customer_health_scores s WHERE s.customer_id = c.id
                      ORDER BY s.calculated_at DESC LIMIT 1) h ON true
  LEFT JOIN LATERAL (SELECT * FROM cs.risk_assessments a WHERE a.customer_id = c.id AND a.risk_type = 'churn'
                      ORDER BY a.created_at DESC LIMIT 1) r ON true
 WHERE c.churned_at IS NULL;


-- Composite health score: per-segment profiles, normalisation, weighting with
-- redistribution of missing inputs, drivers, history; cs.refresh(); the views.

------------------------------------------------------------------------------
-- Profiles
------------------------------------------------------------------------------

-- Refuses a malformed profile before it is written (never half-applied) and
-- bumps its version whenever its scoring changes.
CREATE OR REPLACE FUNCTION cs._validate_health_profile() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    g        record;
    m        record;
    norm     jsonb;
    total_gw float8 := 0;
    group_mw float8;
    red      float8;
    yellow   float8;
    xs       float8[];
    ys       float8[];
BEGIN
    IF jsonb_typeof(NEW.weights) IS DISTINCT FROM 'object' OR NEW.weights = '{}' THEN
        RAISE EXCEPTION 'health profile "%": weights must be a non-empty JSON object', NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use {"usage": {"weight": 0.4, "measures": {"seat_utilisation": 1}}, ...}.';
    END IF;
    FOR g IN SELECT key, value FROM jsonb_each(NEW.weights) LOOP
        IF g.key NOT IN ('usage', 'engagement', 'support', 'payment') THEN
            RAISE EXCEPTION 'health profile "%": unknown group "%"', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Groups are usage, engagement, support and payment.';
        END IF;
        IF jsonb_typeof(g.value -> 'weight') IS DISTINCT FROM 'number' OR (g.value ->> 'weight')::float8 < 0 THEN
            RAISE EXCEPTION 'health profile "%": group "%" needs a non-negative numeric weight', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(g.value -> 'measures') IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'health profile "%": group "%" needs a measures object', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        total_gw := total_gw + (g.value ->> 'weight')::float8;
        group_mw := 0;
        FOR m IN SELECT key, value FROM jsonb_each(g.value -> 'measures') LOOP
            IF NOT EXISTS (SELECT 1 FROM cs.feature_catalog WHERE name = m.key) THEN
                RAISE EXCEPTION 'health profile "%": measure "%" is not in cs.feature_catalog', NEW.name, m.key
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF jsonb_typeof(m.value) IS DISTINCT FROM 'number' OR m.value::text::float8 < 0 THEN
                RAISE EXCEPTION 'health profile "%": measure "%" needs a non-negative numeric weight', NEW.name, m.key
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            group_mw := group_mw + m.value::text::float8;
            norm := NEW.normalisation -> m.key;
            IF norm IS NULL THEN
                RAISE EXCEPTION 'health profile "%": measure "%" has no normalisation', NEW.name, m.key
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Add {"method": "thresholds", "thresholds": [...], "scores": [...]} or {"method": "percentile", "direction": "higher_is_better"}.';
            END IF;
            IF norm ->> 'method' = 'thresholds' THEN
                IF jsonb_typeof(norm -> 'thresholds') IS DISTINCT FROM 'array'
                   OR jsonb_typeof(norm -> 'scores') IS DISTINCT FROM 'array' THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" needs thresholds and scores arrays', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                BEGIN
                    xs := ARRAY(SELECT jsonb_array_elements_text(norm -> 'thresholds')::float8);
                    ys := ARRAY(SELECT jsonb_array_elements_text(norm -> 'scores')::float8);
                    PERFORM cs.interpolate(0, xs, ys);
                EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value OR null_value_not_allowed THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" has invalid thresholds or scores', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value',
                              DETAIL = 'Thresholds must be strictly increasing numbers, one score per threshold.';
                END;
                IF EXISTS (SELECT 1 FROM unnest(ys) y WHERE y < 0 OR y > 1) THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" has scores outside [0, 1]', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSIF norm ->> 'method' = 'percentile' THEN
                IF coalesce(norm ->> 'direction', '') NOT IN ('higher_is_better', 'lower_is_better') THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" needs direction higher_is_better or lower_is_better', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSE
                RAISE EXCEPTION 'health profile "%": measure "%" has unknown normalisation method "%"', NEW.name, m.key, norm ->> 'method'
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'Methods are thresholds and percentile.';
            END IF;
        END LOOP;
        IF (g.value ->> 'weight')::float8 > 0 AND group_mw = 0 THEN
            RAISE EXCEPTION 'health profile "%": group "%" has weight but no weighted measure', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF total_gw = 0 THEN
        RAISE EXCEPTION 'health profile "%": all group weights are zero', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(NEW.bands -> 'red') IS DISTINCT FROM 'number' OR jsonb_typeof(NEW.bands -> 'yellow') IS DISTINCT FROM 'number' THEN
        RAISE EXCEPTION 'health profile "%": bands need numeric red and yellow cut-offs', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    red := (NEW.bands ->> 'red')::float8;
    yellow := (NEW.bands ->> 'yellow')::float8;
    IF NOT (0 <= red AND red <= yellow AND yellow <= 1) THEN
        RAISE EXCEPTION 'health profile "%": bands must be ordered 0 <= red <= yellow <= 1 (got red %, yellow %)', NEW.name, red, yellow
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.weights, NEW.bands, NEW.normalisation, NEW.segment)
                            IS DISTINCT FROM (OLD.weights, OLD.bands, OLD.normalisation, OLD.segment) THEN
        NEW.version := OLD.version + 1;
    END IF;
    -- An insert keeps a given time (a restore brings the original one back).
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

-- Health scores for the given customers (all when ids is NULL) from their
-- stored feature vectors, or from vectors computed as of a point in time when
-- as_of is given.  Returns rows shaped like cs.customer_health_scores (id NULL).
--
-- Per measure: a normalised score in [0,1] (thresholds with linear
-- interpolation, or mid-rank percentile within the customer's segment over the
-- current feature store).  Per group: the weighted mean of its present
-- measures.  Overall: the weighted mean of present groups.  Weights of missing
-- inputs are thereby redistributed proportionally; drivers records which
-- inputs were missing and what share of the weight they had, and the present
-- inputs that cost the most score (effective weight x (1 - score)).  The
-- per-customer arithmetic is C (cs._health_of, src/health.c) over profiles and
-- populations it reads once per query.
CREATE FUNCTION cs._health_of(customer_id uuid, segment text, features float4[], as_of timestamptz)
RETURNS cs.customer_health_scores
AS 'MODULE_PATHNAME', 'cs_health_of'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._health_of(uuid, text, float4[], timestamptz) IS
    'Internal: the cs.compute_health row of one customer from its segment and feature vector (a row of NULLs when no profile applies); reads the profiles and percentile populations once per query.';

CREATE OR REPLACE FUNCTION cs.compute_health(ids uuid[], as_of timestamptz DEFAULT NULL)
RETURNS SETOF cs.customer_health_scores
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $fn$
DECLARE
    fv text;
BEGIN
    IF as_of IS NULL THEN
        fv := format('SELECT customer_id, features, as_of FROM cs.customer_features WHERE %s',
                     CASE WHEN ids IS NULL THEN 'true' ELSE 'customer_id = ANY ($1)' END);
    ELSE
        fv := 'SELECT customer_id, features, $2 AS as_of FROM cs.compute_features($1, $2)';
    END IF;
    -- One call per customer; the offset keeps (h).* from calling it once per column.
    RETURN QUERY EXECUTE format($q$
    SELECT (h).*
      FROM (SELECT cs._health_of(fv.customer_id, c.segment, fv.features, fv.as_of) AS h
              FROM (%s) fv
              JOIN cs.customers c ON c.id = fv.customer_id
            OFFSET 0) s
     WHERE (h).customer_id IS NOT NULL
    $q$, fv)
    USING ids, as_of;
END;
$fn$;

-- Refreshes the given customers, or every customer a load marked dirty.
CREATE OR REPLACE FUNCTION cs.refresh(customer_ids uuid[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    mark_ids uuid[];
    mark_ts  timestamptz[];
    todo     uuid[];
    n        bigint;
BEGIN
    -- One refresh at a time per database: concurrent refreshes upsert the
    -- same result rows and remove the same dirty marks in different orders.
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot'), 1);
    IF customer_ids IS NULL THEN
        SELECT array_agg(customer_id), array_agg(marked_at) INTO mark_ids, mark_ts
          FROM cs.dirty_customers WHERE NOT parked;
        todo := mark_ids;
    ELSE
        IF cardinality(customer_ids) > 10000000 THEN
            RAISE EXCEPTION 'too many customers in one refresh' USING ERRCODE = 'program_limit_exceeded';
        END IF;
        todo := ARRAY(SELECT DISTINCT x FROM unnest(customer_ids) x WHERE x IS NOT NULL);
        SELECT array_agg(d.customer_id), array_agg(d.marked_at) INTO mark_ids, mark_ts
          FROM cs.dirty_customers d WHERE d.customer_id = ANY (todo);
    END IF;
    IF coalesce(cardinality(todo), 0) = 0 THEN
        RETURN 0;
    END IF;
    n := cs._refresh_customers(todo);
    -- Remove only marks unchanged since they were read: a load that committed
    -- meanwhile changed marked_at, and its customer stays dirty.
    DELETE FROM cs.dirty_customers d
     USING unnest(mark_ids, mark_ts) AS m(id, ts)
     WHERE d.customer_id = m.id AND d.marked_at = m.ts;
    RETURN n;
END;
$$;

-- Refreshes every customer.
CREATE OR REPLACE FUNCTION cs.refresh_all()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    mark_ids uuid[];
    mark_ts  timestamptz[];
    n        bigint;
BEGIN
    -- One refresh at a time per database: concurrent refreshes upsert the
    -- same result rows and remove the same dirty marks in different orders.
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot'), 1);
    SELECT array_agg(customer_id), array_agg(marked_at) INTO mark_ids, mark_ts FROM cs.dirty_customers;
    n := cs._refresh_customers(NULL);
    DELETE FROM cs.dirty_customers d
     USING unnest(mark_ids, mark_ts) AS m(id, ts)
     WHERE d.customer_id = m.id AND d.marked_at = m.ts;
    RETURN n;
END;
$$;

------------------------------------------------------------------------------
-- Model registry (src/sql/30_models.sql)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.deploy_model(name text, version int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m cs.models;
BEGIN
    IF name IS NULL OR version IS NULL THEN
        RAISE EXCEPTION 'model name and version must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO m FROM cs.models AS x WHERE x.name = deploy_model.name AND x.version = deploy_model.version
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    -- One champion per kind; custom models have one champion per name.
    UPDATE cs.models AS x SET status = 'retired'
     WHERE x.status = 'champion' AND x.id <> m.id
       AND ((m.kind <> 'custom' AND x.kind = m.kind) OR (m.kind = 'custom' AND x.kind = 'custom' AND x.name = m.name));
    UPDATE cs.models AS x SET status = 'champion' WHERE x.id = m.id;
END;
$$;

------------------------------------------------------------------------------
-- Churn risk: confidence with data freshness, shadow scores (src/sql/35_risk.sql)
------------------------------------------------------------------------------

-- The same, times the freshness of the data sources (cs.data_freshness_factor(),
-- 1 when every monitored source is fresh): a score computed while sources are
-- stale is built on old signals and says so.
--   confidence = present_share * (0.5 + |p - 0.5|) * freshness
CREATE FUNCTION cs.risk_confidence(features float4[], probability float8, freshness float8)
RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN cs.present_share(features) * (0.5 + abs(probability - 0.5)) * least(greatest(freshness, 0), 1);
COMMENT ON FUNCTION cs.risk_confidence(float4[], float8, float8) IS
    'Confidence 0-1 of a risk prediction on possibly stale data: share of present inputs times (0.5 + distance of the probability from 0.5) times the freshness factor (clamped to 0-1).';

-- Scores the stored feature vectors of the given customers (all when NULL)
-- with the champion of every risk kind that has one, appending to
-- cs.risk_assessments, with the top SHAP factors for risks of at least
-- explain_min (below it, cs.explain_risk explains on demand).  When the kind
-- also has a challenger, the customers of the A/B share
-- (cs.in_challenger_arm) are served the challenger's score instead, and the
-- score of the model not served is kept in cs.model_shadow_scores, so both
-- models are judged on the same customers and prediction times.  Returns the
-- number of assessments written.
CREATE OR REPLACE FUNCTION cs._score_risk(ids uuid[], explain_min float8 DEFAULT 0.1)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m     record;
    ch    record;
    share float8;
    n     bigint := 0;
    added bigint;
    arm   boolean;
    served text;
    served_label text;
    other text;
    other_label text;
    fresh float8 := cs.data_freshness_factor();
BEGIN
    FOR m IN SELECT x.name, x.version, x.kind FROM cs.models x
              WHERE x.status = 'champion' AND x.kind IN ('churn', 'downgrade', 'payment')
              ORDER BY x.kind
    LOOP
        SELECT x.name, x.version INTO ch FROM cs.models x WHERE x.status = 'challenger' AND x.kind = m.kind;
        share := CASE WHEN FOUND THEN cs._challenger_share() ELSE 0 END;
        FOREACH arm IN ARRAY ARRAY[false, true] LOOP
            CONTINUE WHEN arm AND ch.name IS NULL;
            -- the champion by name (as before); the challenger by name:vN
            served := CASE WHEN arm THEN ch.name || ':v' || ch.version ELSE m.name END;
            served_label := CASE WHEN arm THEN ch.name || ':v' || ch.version ELSE m.name || ':v' || m.version END;
            INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, risk_factors, confidence_score,
                                             model_version, created_at)
            SELECT f.customer_id, m.kind, round(e.p::numeric, 2),
                   -- exact SHAP (about 35 us a row): stored only where a CSM will look
                   CASE WHEN e.p >= explain_min THEN cs.explain_json(served, f.features, 5) -> 'factors' END,
                   round(cs.risk_confidence(f.features, e.p, fresh)::numeric, 2), served_label, f.as_of
              FROM cs.customer_features f
             CROSS JOIN LATERAL (SELECT cs.predict(served, f.features) AS p) e
             WHERE (ids IS NULL OR f.customer_id = ANY (ids))
               AND cs.in_challenger_arm(f.customer_id, share) = arm;
            GET DIAGNOSTICS added = ROW_COUNT;
            n := n + added;
            CONTINUE WHEN ch.name IS NULL;
            -- the model not served, in shadow, at the same precision
            other := CASE WHEN arm THEN m.name ELSE ch.name || ':v' || ch.version END;
            other_label := CASE WHEN arm THEN m.name || ':v' || m.version ELSE ch.name || ':v' || ch.version END;
            INSERT INTO cs.model_shadow_scores (customer_id, risk_type, model_version, risk_score, created_at)
            SELECT f.customer_id, m.kind, other_label, round(cs.predict(other, f.features)::numeric, 2), f.as_of
              FROM cs.customer_features f
             WHERE (ids IS NULL OR f.customer_id = ANY (ids))
               AND cs.in_challenger_arm(f.customer_id, share) = arm;
        END LOOP;
    END LOOP;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._score_risk(uuid[], float8) IS 'Internal: appends risk assessments (score, confidence lowered by stale sources, model version, and the top SHAP factors when the risk is at least explain_min) for the stored feature vectors of the given customers (all when NULL) with every deployed risk champion, or its challenger for customers of the A/B share; the score of the model not served goes to cs.model_shadow_scores. Returns the number written.';

------------------------------------------------------------------------------
-- Model lifecycle (new in 0.2.0: src/sql/38_lifecycle.sql)
------------------------------------------------------------------------------

--@include src/sql/38_lifecycle.sql

------------------------------------------------------------------------------
-- Worker: steps of full rescores, new jobs (src/sql/40_worker.sql)
------------------------------------------------------------------------------

-- Background scoring: batches of dirty customers with poison-customer parking,
-- scheduled jobs and their history, the wake-at-commit triggers and the
-- worker status view.  The workers themselves are C (src/worker.c); all of
-- this also works without them (cs.refresh_batch can be called by hand or
-- from pg_cron).

------------------------------------------------------------------------------
-- Job history
------------------------------------------------------------------------------
ALTER TABLE cs.job_runs DROP CONSTRAINT job_runs_job_check,
    ADD CONSTRAINT job_runs_job_check CHECK (job IN ('batch', 'full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes',
                                               'model_checks', 'retrain', 'data_quality')),
    ADD COLUMN resume_after uuid,
    ADD COLUMN details jsonb;
COMMENT ON COLUMN cs.job_runs.job IS 'batch (failed batches only), full_rescore, daily_snapshot, partitions, action_outcomes, model_checks, retrain or data_quality.';
COMMENT ON COLUMN cs.job_runs.customers IS 'Customers the run refreshed (partitions it created, for partitions; problems found, for data_quality); NULL when not applicable.';
COMMENT ON COLUMN cs.job_runs.resume_after IS 'Full rescores and daily snapshots run by the worker in steps: the last customer id refreshed so far (customers go in id order); NULL before the first step.';
COMMENT ON COLUMN cs.job_runs.details IS 'What the run did, step by step: for retrain the steps of cs.retrain (policy, training set, training, registration), for model_checks the drift checks and promotion decisions.';

-- Refreshes up to batch_size dirty customers, oldest mark first, skipping
-- customers another transaction holds.  If the batch fails, its customers are
-- retried one by one, each in a subtransaction: the good ones are stored,
-- the failing ones get an attempt counted (and are parked after
-- cscopilot.max_attempts).  Cancellation (the batch time limit) is not caught.
CREATE OR REPLACE FUNCTION cs.refresh_batch(batch_size int) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    ids  uuid[];
    ts   timestamptz[];
    n    bigint := 0;
    i    int;
    err  text;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One refresh at a time per database: concurrent refreshes upsert the
    -- same result rows and remove the same dirty marks in different orders.
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot'), 1);
    SELECT array_agg(customer_id ORDER BY marked_at, customer_id), array_agg(marked_at ORDER BY marked_at, customer_id)
      INTO ids, ts
      FROM (SELECT d.customer_id, d.marked_at FROM cs.dirty_customers d
             WHERE NOT d.parked
             ORDER BY d.marked_at, d.customer_id
             LIMIT batch_size
               FOR UPDATE SKIP LOCKED) picked;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;

    BEGIN
        n := cs._refresh_customers(ids);
        -- The rows are locked, so the marks are unchanged; the rule stays the
        -- same as cs.refresh(): remove a mark only if it is the one read.
        DELETE FROM cs.dirty_customers d
         USING unnest(ids, ts) AS m(id, ts)
         WHERE d.customer_id = m.id AND d.marked_at = m.ts;
        RETURN n;
    EXCEPTION WHEN OTHERS THEN
        IF cardinality(ids) = 1 THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            PERFORM cs._customer_failed(ids[1], err);
            RETURN 0;
        END IF;
    END;

    -- One by one: find the poison customers, keep the work of the others.
    FOR i IN 1 .. cardinality(ids) LOOP
        BEGIN
            n := n + cs._refresh_customers(ARRAY[ids[i]]);
            DELETE FROM cs.dirty_customers d WHERE d.customer_id = ids[i] AND d.marked_at = ts[i];
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            PERFORM cs._customer_failed(ids[i], err);
        END;
    END LOOP;
    RETURN n;
END;
$$;

------------------------------------------------------------------------------
-- Scheduled jobs
------------------------------------------------------------------------------

-- Whether a job is due.  A job that failed is retried after ten minutes (or
-- its interval, when shorter); one that is running is not started twice.
CREATE OR REPLACE FUNCTION cs._job_due(job text, full_rescore_interval int) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    today timestamptz := date_trunc('day', now());
    retry interval := interval '10 minutes';
    kinds text[] := ARRAY[job];
    every int;
BEGIN
    IF job = 'full_rescore' THEN
        IF coalesce(full_rescore_interval, 0) <= 0 THEN
            RETURN false;
        END IF;
        retry := least(retry, make_interval(secs => full_rescore_interval));
        RETURN NOT EXISTS (SELECT 1 FROM cs.job_runs r WHERE r.job = 'full_rescore' AND r.database = current_database()
                              AND (r.status = 'running'
                                   OR (r.status = 'succeeded' AND r.started_at > now() - make_interval(secs => full_rescore_interval))
                                   OR (r.status = 'failed' AND r.started_at > now() - retry)));
    END IF;
    -- Data quality is checked hourly.
    IF job = 'data_quality' THEN
        RETURN NOT EXISTS (SELECT 1 FROM cs.job_runs r WHERE r.job = 'data_quality' AND r.database = current_database()
                              AND (r.status = 'running'
                                   OR (r.status IN ('succeeded', 'skipped') AND r.started_at > now() - interval '1 hour')
                                   OR (r.status = 'failed' AND r.started_at > now() - retry)));
    END IF;
    -- Scheduled retraining: every cscopilot.retrain_interval seconds (0 = never).
    IF job = 'retrain' THEN
        -- pg_settings has it in seconds (current_setting would say '1h')
        every := coalesce((SELECT s.setting::int FROM pg_settings s WHERE s.name = 'cscopilot.retrain_interval'), 0);
        IF every <= 0 THEN
            RETURN false;
        END IF;
        retry := least(retry, make_interval(secs => every));
        RETURN NOT EXISTS (SELECT 1 FROM cs.job_runs r WHERE r.job = 'retrain' AND r.database = current_database()
                              AND (r.status = 'running'
                                   OR (r.status IN ('succeeded', 'skipped') AND r.started_at > now() - make_interval(secs => every))
                                   OR (r.status = 'failed' AND r.started_at > now() - retry)));
    END IF;
    -- The daily snapshot is whatever full refresh ran today.
    IF job = 'daily_snapshot' THEN
        kinds := ARRAY['full_rescore', 'daily_snapshot'];
    END IF;
    RETURN NOT EXISTS (SELECT 1 FROM cs.job_runs r WHERE r.job = ANY (kinds) AND r.database = current_database()
                          AND (r.status = 'running'
                               OR (r.status IN ('succeeded', 'skipped') AND r.started_at >= today)
                               OR (r.status = 'failed' AND r.job = _job_due.job AND r.started_at > now() - retry)));
END;
$$;
COMMENT ON FUNCTION cs._job_due(text, int) IS
    'Whether a scheduled job is due: full_rescore every full_rescore_interval seconds (0 = never), retrain every cscopilot.retrain_interval seconds (0 = never), data_quality hourly, the others once per day; failed runs are retried after 10 minutes.';

-- Picks the first due job and records its run as running (its own
-- transaction, so the run is visible while it works); no row when none is due.
CREATE OR REPLACE FUNCTION cs._start_due_job(full_rescore_interval int) RETURNS TABLE (id bigint, job text)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    j text;
BEGIN
    -- Only one worker schedules jobs in a database at a time.
    IF NOT pg_try_advisory_xact_lock(hashtext('cscopilot.jobs')) THEN
        RETURN;
    END IF;
    -- A stepped full rescore under way goes on before anything new starts.
    RETURN QUERY SELECT r.id, r.job FROM cs.job_runs r
                  WHERE r.status = 'running' AND r.database = current_database()
                    AND r.job IN ('full_rescore', 'daily_snapshot') AND r.resume_after IS NOT NULL
                  ORDER BY r.id LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    FOREACH j IN ARRAY ARRAY['full_rescore', 'daily_snapshot', 'partitions', 'action_outcomes', 'model_checks', 'retrain',
                             'data_quality'] LOOP
        IF cs._job_due(j, full_rescore_interval) THEN
            RETURN QUERY INSERT INTO cs.job_runs AS r (job) VALUES (j) RETURNING r.id, r.job;
            RETURN;
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs._start_due_job(int) IS 'Returns the stepped full rescore under way, if any; else records the first due scheduled job as running and returns its run; nothing when no job is due.';

-- Runs a started job and closes its run (same transaction as the work).  With
-- step_size > 0 a full rescore (or daily snapshot) does one step of that many
-- customers and returns 'running' until none is left, so that the worker can
-- drain the dirty queue between steps and fresh loads never wait for a whole
-- rescore.
-- cs._run_job(bigint) became cs._run_job(bigint, int): steps of a run.
DROP FUNCTION cs._run_job(bigint);
CREATE FUNCTION cs._run_job(run_id bigint, step_size int DEFAULT 0) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    j      text;
    n      bigint;
    st     text := 'succeeded';
    res    text;
    after  uuid;
    done   bigint;
    ids    uuid[];
    job_details jsonb;
    err    text;
BEGIN
    SELECT r.job, r.resume_after, r.customers INTO j, after, done
      FROM cs.job_runs r WHERE r.id = run_id AND r.status = 'running' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job run % is not running', run_id USING ERRCODE = 'no_data_found';
    END IF;
    IF j IN ('full_rescore', 'daily_snapshot') AND coalesce(step_size, 0) > 0 THEN
        IF after IS NULL THEN
            -- First step.  Percentile normalisation ranks within the whole
            -- segment: with customers missing from the feature store (a new
            -- installation) compute everyone's features first, then retake the
            -- populations the steps rank against.  The texts classified since
            -- the last full rescore go into the text-signal cache, which the
            -- steps then read.
            PERFORM cs._refresh_text_signals();
            IF EXISTS (SELECT 1 FROM cs.customers c
                        WHERE NOT EXISTS (SELECT 1 FROM cs.customer_features f WHERE f.customer_id = c.id)) THEN
                INSERT INTO cs.customer_features AS cf (customer_id, as_of, features)
                SELECT f.customer_id, now(), f.features FROM cs.compute_features(NULL, now()) f
                ON CONFLICT (customer_id) DO UPDATE SET as_of = excluded.as_of, features = excluded.features;
            END IF;
            PERFORM cs._refresh_health_populations();
            PERFORM cs._refresh_opportunity_stats();
        END IF;
        ids := ARRAY(SELECT c.id FROM cs.customers c WHERE after IS NULL OR c.id > after ORDER BY c.id LIMIT step_size);
        IF cardinality(ids) > 0 THEN
            PERFORM cs.refresh(ids);
            UPDATE cs.job_runs r SET resume_after = ids[cardinality(ids)], customers = coalesce(done, 0) + cardinality(ids)
             WHERE r.id = run_id;
            RETURN 'running';
        END IF;
        n := coalesce(done, 0);
    ELSE
        CASE j
        WHEN 'full_rescore', 'daily_snapshot' THEN
            n := cs.refresh_all();
        WHEN 'partitions' THEN
            n := cs.ensure_usage_partitions(current_date, current_date + 90);
        WHEN 'action_outcomes' THEN
            -- Defined by a later part of the extension; skipped until it exists.
            IF to_regprocedure('cs.measure_action_outcomes()') IS NULL THEN
                st := 'skipped';
            ELSE
                EXECUTE 'SELECT cs.measure_action_outcomes()::text' INTO res;
                IF res ~ '^[0-9]+$' THEN
                    n := res::bigint;
                END IF;
            END IF;
        WHEN 'model_checks' THEN
            job_details := cs.run_model_checks();
        WHEN 'retrain' THEN
            -- cs.retrain does not raise for a failed step: it reports the steps
            job_details := cs.retrain('churn');
            st := job_details ->> 'status';
            err := job_details ->> 'error';
        WHEN 'data_quality' THEN
            n := cs.check_data_quality();
        ELSE
            RAISE EXCEPTION 'unknown job %', j USING ERRCODE = 'invalid_parameter_value';
        END CASE;
    END IF;
    UPDATE cs.job_runs r SET status = st, customers = n, finished_at = greatest(r.started_at, clock_timestamp()),
                             details = job_details, error = err
     WHERE r.id = run_id;
    RETURN st;
END;
$$;
COMMENT ON FUNCTION cs._run_job(bigint, int) IS
    'Runs a scheduled job recorded by cs._start_due_job (full_rescore and daily_snapshot: cs.refresh_all(), or with step_size > 0 one step of that many customers in id order, returning running until the last; partitions: 90 days ahead; action_outcomes: cs.measure_action_outcomes() when it exists; model_checks: cs.run_model_checks(); retrain: cs.retrain(''churn''), its steps in details; data_quality: cs.check_data_quality()) and closes its run; returns its status.';

------------------------------------------------------------------------------
-- Opportunities: the feature map in C, cross-sell statistics in a table (src/sql/50_opportunities.sql)
------------------------------------------------------------------------------

-- The feature map is C: alert evaluation builds one per customer.
CREATE OR REPLACE FUNCTION cs.feature_map(features float4[]) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'cs_feature_map' LANGUAGE C STABLE PARALLEL SAFE;

-- Cross-sell statistics over every customer's active subscriptions: taken by
-- full refreshes (and whenever missing), reused by partial ones, which would
-- otherwise rescan every subscription to score a handful of customers.
CREATE TABLE cs.cross_sell_stats (
    product_a   text NOT NULL,
    product_b   text NOT NULL,
    n_ab        float8 NOT NULL,
    confidence  float8 NOT NULL,
    lift        float8 NOT NULL,
    n_b         float8 NOT NULL,
    mean_mrr_b  numeric,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_a, product_b)
);
COMMENT ON TABLE cs.cross_sell_stats IS 'Product pairs with lift(B|A) > 0 over active subscriptions (at least 2 customers with both, P(B|A) >= 0.25), as of the last full refresh of opportunities; partial refreshes rank cross-sell candidates with them.';
COMMENT ON COLUMN cs.cross_sell_stats.product_a IS 'A product the customer has.';
COMMENT ON COLUMN cs.cross_sell_stats.product_b IS 'The product to offer.';
COMMENT ON COLUMN cs.cross_sell_stats.n_ab IS 'Customers with both products active.';
COMMENT ON COLUMN cs.cross_sell_stats.confidence IS 'P(B|A).';
COMMENT ON COLUMN cs.cross_sell_stats.lift IS 'P(B|A) / P(B).';
COMMENT ON COLUMN cs.cross_sell_stats.n_b IS 'Customers with B active.';
COMMENT ON COLUMN cs.cross_sell_stats.mean_mrr_b IS 'Mean MRR of the active subscriptions of B.';
COMMENT ON COLUMN cs.cross_sell_stats.computed_at IS 'When the statistics were taken.';

-- The adoption catalogue (the largest feature breadth in the feature store),
-- taken with the cross-sell statistics.
CREATE TABLE cs.adoption_stats (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    catalogue   float8,
    computed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cs.adoption_stats IS 'One row: the adoption catalogue as of the last full refresh of opportunities; partial refreshes score adoption against it.';
COMMENT ON COLUMN cs.adoption_stats.singleton IS 'Always true: the table holds one row.';
COMMENT ON COLUMN cs.adoption_stats.catalogue IS 'The most product features (feature_breadth_30d) any customer used in 30 days; NULL without any.';
COMMENT ON COLUMN cs.adoption_stats.computed_at IS 'When it was taken.';

-- Upsell scoring constants are documented in the function comment; they are
-- plain numbers here rather than settings because the formula is the contract.
-- Statistics over the whole customer base that opportunities use: cross-sell
-- lift between products and the adoption catalogue.  Taken by full refreshes,
-- the first step of the worker's full rescore, and whenever missing; partial
-- refreshes reuse them, which would otherwise rescan every subscription and
-- every feature vector to score a handful of customers.
CREATE FUNCTION cs._refresh_opportunity_stats() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    DELETE FROM cs.cross_sell_stats;
    WITH active AS (
        SELECT DISTINCT s.customer_id, s.product
          FROM cs.subscriptions s
          JOIN cs.customers c ON c.id = s.customer_id AND c.churned_at IS NULL
         WHERE s.started_at <= current_date AND (s.ended_at IS NULL OR s.ended_at > current_date)
    ), pmrr AS (
        -- mean MRR of each product's active subscriptions
        SELECT s.product, avg(s.mrr) AS mrr
          FROM cs.subscriptions s
         WHERE s.started_at <= current_date AND (s.ended_at IS NULL OR s.ended_at > current_date)
         GROUP BY s.product
    ), tot AS (
        SELECT count(DISTINCT customer_id)::float8 AS n FROM active
    ), prod AS (
        SELECT product, count(*)::float8 AS n_p FROM active GROUP BY product
    ), pair AS (
        -- lift(B|A) = P(B|A) / P(B) over customers with active subscriptions
        SELECT a.product AS pa, bb.product AS pb, count(*)::float8 AS n_ab,
               count(*) / pa.n_p AS confidence,
               (count(*) / pa.n_p) / (pb_.n_p / tot.n) AS lift, pb_.n_p AS n_b
          FROM active a
          JOIN active bb ON bb.customer_id = a.customer_id AND bb.product <> a.product
          JOIN prod pa ON pa.product = a.product
          JOIN prod pb_ ON pb_.product = bb.product
         CROSS JOIN tot
         GROUP BY a.product, bb.product, pa.n_p, pb_.n_p, tot.n
        HAVING count(*) >= 2 AND count(*) / pa.n_p >= 0.25
    )
    INSERT INTO cs.cross_sell_stats (product_a, product_b, n_ab, confidence, lift, n_b, mean_mrr_b)
    SELECT p.pa, p.pb, p.n_ab, p.confidence, p.lift, p.n_b, pm.mrr
      FROM pair p LEFT JOIN pmrr pm ON pm.product = p.pb;
    DELETE FROM cs.adoption_stats;
    INSERT INTO cs.adoption_stats (catalogue)
    SELECT max(cf.features[fc.position]) FILTER (WHERE cf.features[fc.position] <> 'NaN')
      FROM cs.customer_features cf, cs.feature_catalog fc WHERE fc.name = 'feature_breadth_30d';
END;
$$;
COMMENT ON FUNCTION cs._refresh_opportunity_stats() IS
    'Internal: retakes cs.cross_sell_stats and cs.adoption_stats from every customer''s active subscriptions and feature vector.';

CREATE OR REPLACE FUNCTION cs.refresh_opportunities(ids uuid[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    n         bigint;
    use_model boolean;
    mname     text;
BEGIN
    -- Open system opportunities are regenerated; anything a CSM touched stays.
    DELETE FROM cs.opportunities o
     WHERE o.source = 'system' AND o.status = 'open'
       AND (ids IS NULL OR o.customer_id = ANY (ids));

    -- The model path: a champion model of kind upsell scored by cs.predict,
    -- when the model part is installed.  Otherwise the documented formula.
    use_model := to_regprocedure('cs.predict(text, real[])') IS NOT NULL;
    IF use_model THEN
        SELECT m.name INTO mname FROM cs.models m WHERE m.kind = 'upsell' AND m.status = 'champion';
        use_model := FOUND;
    END IF;

    IF ids IS NULL OR NOT EXISTS (SELECT 1 FROM cs.cross_sell_stats)
       OR NOT EXISTS (SELECT 1 FROM cs.adoption_stats) THEN
        PERFORM cs._refresh_opportunity_stats();
    END IF;

    -- Dynamic only to call cs.predict when it exists; no user text is interpolated.
    EXECUTE format($q$
    WITH base AS (
        SELECT c.id AS customer_id, c.mrr, c.seats_licensed AS seats, cf.features AS f,
               (SELECT h.overall_score FROM cs.customer_health_scores h WHERE h.customer_id = c.id
                 ORDER BY h.calculated_at DESC LIMIT 1) AS health,
               %s AS model_score
          FROM cs.customers c
          JOIN cs.customer_features cf ON cf.customer_id = c.id
         WHERE c.churned_at IS NULL AND ($1 IS NULL OR c.id = ANY ($1))
    ), b AS (
        SELECT customer_id, mrr, seats, health, model_score,
               -- by catalog position (each looked up once); NaN (missing) is NULL
               nullif(f[(SELECT position FROM cs.feature_catalog WHERE name = 'seat_utilisation')], 'NaN')::float8 AS util,
               nullif(f[(SELECT position FROM cs.feature_catalog WHERE name = 'active_users_30d')], 'NaN')::float8 AS au,
               nullif(f[(SELECT position FROM cs.feature_catalog WHERE name = 'usage_trend_30d')], 'NaN')::float8 AS trend,
               nullif(f[(SELECT position FROM cs.feature_catalog WHERE name = 'feature_breadth_30d')], 'NaN')::float8 AS breadth
          FROM base
    ), ups AS (
        SELECT b.*,
               least(1, greatest(0, (util - 0.7) / 0.5)) AS s_util,
               least(1, greatest(0, coalesce(trend, 0) / 0.5)) AS s_growth,
               coalesce(health, 0.5) AS s_health,
               greatest(ceil(1.2 * au) - seats, 0) AS extra_seats
          FROM b WHERE util IS NOT NULL AND seats > 0
    ), ups2 AS (
        SELECT u.*,
               round(coalesce(model_score, 0.5 * s_util + 0.25 * s_growth + 0.25 * s_health)::numeric, 3) AS score
          FROM ups u
    ), upsell AS (
        SELECT customer_id, 'upsell'::text AS kind, score,
               round(extra_seats::numeric * coalesce(mrr, 0) / seats * score, 2) AS expected_mrr,
               NULL::text AS product,
               jsonb_build_object('seat_utilisation', round(util::numeric, 3),
                                  'usage_trend_30d', round(trend::numeric, 3),
                                  'health', health,
                                  'extra_seats', extra_seats,
                                  'price_per_seat', round(coalesce(mrr, 0) / seats, 2),
                                  'scored_by', CASE WHEN model_score IS NOT NULL THEN 'model ' || $2 ELSE 'formula' END) AS reasons
          FROM ups2 WHERE score >= 0.5 AND extra_seats > 0
    ), active AS (
        -- the active products of each customer being refreshed, as one array:
        -- the candidates below then need no join and no sort per product
        SELECT s.customer_id, array_agg(DISTINCT s.product) AS products
          FROM cs.subscriptions s
          JOIN b ON b.customer_id = s.customer_id
         WHERE s.started_at <= current_date AND (s.ended_at IS NULL OR s.ended_at > current_date)
         GROUP BY s.customer_id
    ), cand AS (
        SELECT DISTINCT ON (own.customer_id)
               own.customer_id, p.product_a AS pa, p.product_b AS pb, p.lift, p.confidence, p.n_ab, p.n_b, p.mean_mrr_b
          FROM active own
          JOIN cs.cross_sell_stats p ON p.product_a = ANY (own.products) AND p.lift > 1
         WHERE NOT (p.product_b = ANY (own.products))
         ORDER BY own.customer_id, p.lift DESC, p.confidence DESC, p.product_b, p.product_a
    ), cross_sell AS (
        SELECT c.customer_id, 'cross_sell'::text, round(c.confidence::numeric, 3),
               round(coalesce(c.mean_mrr_b, 0) * round(c.confidence::numeric, 3), 2),
               c.pb,
               jsonb_build_object('because_of', c.pa, 'lift', round(c.lift::numeric, 3),
                                  'confidence', round(c.confidence::numeric, 3),
                                  'customers_with_both', c.n_ab, 'customers_with_product', c.n_b)
          FROM cand c
    ), cat AS (
        -- the catalogue: the most product features any customer used in 30 days
        SELECT catalogue AS n FROM cs.adoption_stats
    ), adoption AS (
        SELECT b.customer_id, 'adoption'::text, round((1 - b.breadth / cat.n)::numeric, 3), NULL::numeric, NULL::text,
               jsonb_build_object('feature_breadth_30d', b.breadth, 'catalogue', cat.n,
                                  'adoption_score', round((b.breadth / cat.n)::numeric, 3))
          FROM b CROSS JOIN cat
         WHERE cat.n >= 3 AND b.breadth IS NOT NULL AND b.breadth / cat.n < 0.5
    ), alls AS (
        SELECT * FROM upsell UNION ALL SELECT * FROM cross_sell UNION ALL SELECT * FROM adoption
    )
    INSERT INTO cs.opportunities (customer_id, kind, score, expected_mrr, product, reasons, status, source)
    SELECT a.customer_id, a.kind, a.score, a.expected_mrr, a.product, a.reasons, 'open', 'system'
      FROM alls a
     WHERE NOT EXISTS (SELECT 1 FROM cs.opportunities o
                        WHERE o.customer_id = a.customer_id AND o.kind = a.kind
                          AND o.product IS NOT DISTINCT FROM a.product AND o.status = 'in_progress')
    $q$, CASE WHEN use_model THEN 'cs.predict($2, cf.features)::float8' ELSE 'NULL::float8' END)
    USING ids, mname;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.refresh_opportunities(uuid[]) IS
    'Regenerates the open system opportunities of the given customers (all when NULL) from the feature store; opportunities a CSM moved on, or entered, are kept. '
    'upsell: score = 0.5 x clamp((seat_utilisation - 0.7) / 0.5) + 0.25 x clamp(usage_trend_30d / 0.5) + 0.25 x health (0.5 when unknown), '
    'or the champion upsell model through cs.predict when one is deployed; raised when score >= 0.5 and extra seats > 0, where '
    'extra seats = ceil(1.2 x active_users_30d) - seats_licensed and expected_mrr = extra seats x (mrr / seats_licensed) x score. '
    'cross_sell: the product the customer lacks with the best lift(B|A) = P(B|A) / P(B) over active subscriptions, A a product it has, '
    'with at least 2 customers having both and P(B|A) >= 0.25; score = P(B|A), expected_mrr = mean MRR of B x score; lift and mean MRR are taken by full refreshes into cs.cross_sell_stats and reused by partial ones. '
    'adoption: feature_breadth_30d over the catalogue (the largest breadth in the feature store, at least 3) below 0.5; score = 1 - adoption. '
    'Returns the number of opportunities written.';

------------------------------------------------------------------------------
-- Alerts: set-based evaluation, conditions and templates in C (src/sql/60_alerts.sql)
------------------------------------------------------------------------------

-- Templates are checked by the C filler.
CREATE OR REPLACE FUNCTION cs.check_template(template text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    -- filling a template checks each of its placeholders (src/alerts.c)
    PERFORM cs._fill_template(template, '{}', cs.template_placeholders());
END;
$$;

-- The placeholder values of a customer from what alert evaluation has already
-- fetched: its row, its feature map, latest health and latest churn risk.
CREATE FUNCTION cs._template_values(c cs.customers, fm jsonb, overall_score numeric, band text, drivers jsonb,
                                    risk_score numeric, risk_factors jsonb)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object(
         'name', c.name, 'external_id', c.external_id, 'csm', c.csm, 'segment', c.segment,
         'mrr', c.mrr::text,
         'overall_score', overall_score::text,
         'band', band,
         'churn_risk', risk_score::text,
         'top_driver', drivers -> 'top' -> 0 ->> 'measure',
         'top_risk_factor', risk_factors -> 0 ->> 'feature',
         'days_to_renewal', round((fm ->> 'days_to_renewal')::numeric)::text,
         'renewal_date', to_char(c.contract_end_date, 'YYYY-MM-DD'),
         'seat_utilisation', round((fm ->> 'seat_utilisation')::numeric * 100)::text || '%',
         'seats_licensed', c.seats_licensed::text,
         'last_nps', round((fm ->> 'last_nps')::numeric)::text);
COMMENT ON FUNCTION cs._template_values(cs.customers, jsonb, numeric, text, jsonb, numeric, jsonb) IS
    'Internal: the placeholder values of cs.template_values() from a customer row, its feature map, latest health (score, band, drivers) and latest churn risk (score, factors).';

-- The placeholder values of one customer, as text (NULL when unknown).
CREATE OR REPLACE FUNCTION cs.template_values(customer_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN (SELECT cs._template_values(c, f.m, h.overall_score, h.band, h.drivers, r.risk_score, r.risk_factors)
      FROM cs.customers c
      LEFT JOIN LATERAL (SELECT cs.feature_map(cf.features) AS m FROM cs.customer_features cf
                          WHERE cf.customer_id = c.id) f ON true
      LEFT JOIN LATERAL (SELECT s.overall_score, s.band, s.drivers FROM cs.customer_health_scores s
                          WHERE s.customer_id = c.id ORDER BY s.calculated_at DESC LIMIT 1) h ON true
      LEFT JOIN LATERAL (SELECT a.risk_score, a.risk_factors FROM cs.risk_assessments a
                          WHERE a.customer_id = c.id AND a.risk_type = 'churn'
                          ORDER BY a.created_at DESC LIMIT 1) r ON true
     WHERE c.id = template_values.customer_id);
END;
$$;

-- Fills a template from a values object in one pass; unknown values become n/a.
CREATE FUNCTION cs._fill_template(template text, vals jsonb, placeholders text[]) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_fill_template' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._fill_template(text, jsonb, text[]) IS
    'Internal: replaces each {placeholder} of a template by its value in vals (n/a when missing or null), in one pass; a {name} not among placeholders is an error.';

CREATE OR REPLACE FUNCTION cs.fill_template(template text, vals jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN cs._fill_template(template, coalesce(vals, '{}'), cs.template_placeholders());
COMMENT ON FUNCTION cs.fill_template(text, jsonb) IS 'Replaces each {placeholder} of a template by its value in vals (n/a when missing); unknown placeholders are an error (invalid_parameter_value).';

-- Evaluates a validated condition against a context
-- {"features": {...}, "scores": {...}, "band": text}; NULL means unknown.
-- C (src/alerts.c): a full evaluation calls it for every customer and rule.
CREATE OR REPLACE FUNCTION cs.condition_holds(cond jsonb, ctx jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'cs_condition_holds' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.condition_holds(jsonb, jsonb) IS
    'Evaluates a validated alert condition against {"features": {...}, "scores": {...}, "band": b}: true, false, or NULL when it depends on a missing value; a malformed condition is an error (invalid_parameter_value).';

-- The open alerts pages (cs.risk_alerts): most severe, then largest, first.
CREATE INDEX alerts_open_rank_idx ON cs.alerts (alert_type, cs.severity_rank(severity) DESC, mrr_at_risk DESC, created_at, id)
    WHERE status IN ('open', 'acknowledged', 'snoozed');

------------------------------------------------------------------------------
-- Default rules
------------------------------------------------------------------------------
-- a rule the user made under the same name stays
INSERT INTO cs.alert_rules (name, alert_type, condition, severity_metric, severity_thresholds, base_severity, title, cooldown, description) VALUES
('cancellation_intent', 'risk',
 '{"feature": "cancellation_mentions_90d", "op": ">=", "value": 1}',
 '{"feature": "cancellation_mentions_90d", "direction": "higher"}', '{"critical": 2}', 'high',
 'Cancellation intent at {name}', '14 days',
 'A support ticket or NPS comment of the last 90 days talks about cancelling (cs.ticket_category: cancellation_intent).')
ON CONFLICT (name) DO NOTHING;

-- The factors of a firing rule and the names playbooks are ranked by (C: a
-- full evaluation builds them for every firing alert).
CREATE FUNCTION cs._alert_factors(ctx jsonb, cfeatures text[], cscores text[], cband boolean, alert_type text,
                                  risk_factors jsonb, drivers jsonb, kinds jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'cs_alert_factors' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._alert_factors(jsonb, text[], text[], boolean, text, jsonb, jsonb, jsonb) IS
    'Internal: the factors of a firing rule as a jsonb array: the condition''s features, scores and band with their values in ctx (sorted by name), then for risk alerts the churn model''s factors (source churn_model) and the health drivers'' top (source health), for opportunity alerts the opportunities in kinds.';
CREATE FUNCTION cs._factor_names(factors jsonb) RETURNS text[]
    AS 'MODULE_PATHNAME', 'cs_factor_names' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._factor_names(jsonb) IS
    'Internal: the distinct names of a factors array, sorted: per factor the first string among feature, score and kind (an opportunity''s numeric score is not a name, its kind is).';

-- cs.rank_playbooks(text[]) took a second argument: the alert's own terms first.
DROP FUNCTION cs.rank_playbooks(text[]);
-- Applicable playbooks for a set of factors, best first.  plpgsql rather than
-- SQL so that the plan is cached: alert evaluation calls it for every firing.
CREATE FUNCTION cs.rank_playbooks(factors text[], condition_terms text[] DEFAULT '{}')
RETURNS TABLE (rank int, playbook text, action text, matched text[], trials bigint, effectiveness numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN QUERY
    SELECT (row_number() OVER (ORDER BY coalesce(b.matched && condition_terms, false) DESC, b.effectiveness DESC,
                                        cardinality(b.matched) DESC, b.playbook))::int,
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
$$;
COMMENT ON FUNCTION cs.rank_playbooks(text[], text[]) IS
    'Enabled playbooks answering any of the factors, ranked first those answering any of condition_terms (an alert''s own condition terms), then by the best posterior mean effectiveness over the matched factors, then by how many factors they match, then by name.';

CREATE OR REPLACE FUNCTION cs.evaluate_alerts(ids uuid[] DEFAULT NULL)
RETURNS TABLE (created int, escalated int, refired int, resolved int, reopened int)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    a          cs.alerts;
    ts         timestamptz;
    aid        uuid;
    prev       text;
    n_resolved bigint;
    n_notified bigint;
BEGIN
    created := 0; escalated := 0; refired := 0; resolved := 0; reopened := 0;

    -- Snoozes that have passed: back to open.
    FOR a IN UPDATE cs.alerts al SET status = 'open', snoozed_until = NULL, updated_at = now(), updated_by = current_user
              WHERE al.status = 'snoozed' AND al.snoozed_until <= now()
                AND (ids IS NULL OR al.customer_id = ANY (ids))
             RETURNING al.*
    LOOP
        PERFORM cs._alert_event(a, 'reopened', 'snoozed', 'snooze ended', NULL);
        reopened := reopened + 1;
    END LOOP;

    -- A churned customer is past alerting: close what is still open.
    FOR aid, prev IN SELECT al.id, al.status FROM cs.alerts al JOIN cs.customers cu ON cu.id = al.customer_id
                      WHERE cu.churned_at IS NOT NULL AND al.status IN ('open', 'acknowledged', 'snoozed')
                        AND (ids IS NULL OR al.customer_id = ANY (ids))
                      ORDER BY al.id
                        FOR UPDATE OF al
    LOOP
        UPDATE cs.alerts al SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
                                updated_at = now(), updated_by = current_user
         WHERE al.id = aid RETURNING al.* INTO a;
        PERFORM cs._alert_event(a, 'auto_resolved', prev, 'customer churned', NULL);
        resolved := resolved + 1;
    END LOOP;

    -- Every rule against every customer at once: the context of each customer
    -- is built once, each (customer, rule) pair is decided by the C condition
    -- evaluator, and the writes are set-based.  Alert ids come from the
    -- sequence in (customer, rule) order, as a fresh database replays them.
    ts := clock_timestamp();
    WITH rinfo AS MATERIALIZED (
        -- per rule, once: the features and scores its condition names, and
        -- whether it tests the band
        SELECT r.*,
               ARRAY(SELECT DISTINCT x #>> '{}' FROM jsonb_path_query(r.condition, '$.**.feature') x) AS cfeatures,
               ARRAY(SELECT DISTINCT x #>> '{}' FROM jsonb_path_query(r.condition, '$.**.score') x) AS cscores,
               jsonb_path_exists(r.condition, '$.**.band') AS cband
          FROM cs.alert_rules r
         WHERE r.enabled AND r.alert_type IN ('risk', 'opportunity')
    ), ctx AS MATERIALIZED (
        -- each customer's context, and which rules hold for it (in rule id
        -- order): kept with the customer, so the pairs need no join back
        SELECT x.*, h.rule_ids, h.holds, h.autos FROM (
        SELECT cu.id AS customer_id, cu.csm, coalesce(cu.mrr, 0) AS mrr,
               jsonb_build_object(
                 'features', fm.m,
                 'scores', jsonb_build_object('churn_risk', rk.risk_score, 'overall_score', h.overall_score,
                                              'usage_score', h.usage_score, 'engagement_score', h.engagement_score,
                                              'support_score', h.support_score, 'payment_score', h.payment_score,
                                              'opportunity_score', o.best, 'opportunity_mrr', o.total),
                 'band', h.band) AS ctx,
               rk.risk_factors, h.drivers, o.kinds,
               cs._template_values(cu, fm.m, h.overall_score, h.band, h.drivers, rk.risk_score, rk.risk_factors) AS vals
          FROM cs.customers cu
          LEFT JOIN cs.customer_features cf ON cf.customer_id = cu.id
         -- OFFSET 0 keeps the map computed once per customer, not once per use
         CROSS JOIN LATERAL (SELECT cs.feature_map(coalesce(cf.features, '{}')) AS m OFFSET 0) fm
          LEFT JOIN LATERAL (SELECT s.* FROM cs.customer_health_scores s WHERE s.customer_id = cu.id
                              ORDER BY s.calculated_at DESC LIMIT 1) h ON true
          LEFT JOIN LATERAL (SELECT x.risk_score, x.risk_factors FROM cs.risk_assessments x
                              WHERE x.customer_id = cu.id AND x.risk_type = 'churn'
                              ORDER BY x.created_at DESC LIMIT 1) rk ON true
          LEFT JOIN LATERAL (SELECT max(op.score) AS best, sum(op.expected_mrr) AS total,
                                    jsonb_agg(jsonb_build_object('source', 'opportunity', 'kind', op.kind, 'score', op.score,
                                                                 'expected_mrr', op.expected_mrr, 'product', op.product)
                                              ORDER BY op.score DESC, op.kind, op.product) AS kinds
                               FROM cs.opportunities op
                              WHERE op.customer_id = cu.id AND op.status IN ('open', 'in_progress')) o ON true
         WHERE cu.churned_at IS NULL AND (ids IS NULL OR cu.id = ANY (ids))
        OFFSET 0) x
         CROSS JOIN LATERAL (SELECT array_agg(r.id ORDER BY r.id) AS rule_ids,
                                    array_agg(cs.condition_holds(r.condition, x.ctx) ORDER BY r.id) AS holds,
                                    array_agg(r.auto_resolve ORDER BY r.id) AS autos
                               FROM rinfo r) h
    ), ev AS (
        SELECT c.customer_id, e.rule_id, e.holds, e.auto_resolve
          FROM ctx c
         CROSS JOIN LATERAL unnest(c.rule_ids, c.holds, c.autos) AS e (rule_id, holds, auto_resolve)
    ), cleared AS (
        -- auto-resolving rules whose condition is now known to be false
        SELECT al.id, al.status AS was
          FROM cs.alerts al
          JOIN ev ON ev.customer_id = al.customer_id AND ev.rule_id = al.rule_id
         WHERE ev.holds IS FALSE AND ev.auto_resolve AND al.status IN ('open', 'acknowledged', 'snoozed')
         ORDER BY al.id
           FOR UPDATE OF al
    ), res AS (
        UPDATE cs.alerts al SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
                                updated_at = now(), updated_by = current_user
          FROM cleared
         WHERE al.id = cleared.id
        RETURNING al.id, al.status, cleared.was
    ), res_events AS (
        INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, note, details)
        SELECT id, 'auto_resolved', was, status, 'condition cleared', NULL FROM res
        RETURNING 1
    ), fire AS MATERIALIZED (
        -- Why: the terms of the condition with their current values, and for
        -- risk alerts the churn model's factors and the health drivers; for
        -- opportunity alerts the customer's opportunities.
        -- (only what the writes need: these rows are sorted and hashed below)
        SELECT ev.customer_id, ev.rule_id, ev.csm, ev.mrr, ev.vals, r.alert_type,
               r.title AS rtitle, r.name AS rname, r.description, r.cooldown,
               cs.alert_severity(r.severity_metric, r.severity_thresholds, r.base_severity, ev.ctx) AS sev,
               fx.factors, cs._factor_names(fx.factors) AS names, r.cfeatures || r.cscores AS terms
          FROM (SELECT c.*, e.rule_id
                  FROM ctx c
                 CROSS JOIN LATERAL unnest(c.rule_ids, c.holds) AS e (rule_id, holds)
                 WHERE e.holds) ev
          JOIN rinfo r ON r.id = ev.rule_id
         CROSS JOIN LATERAL (SELECT cs._alert_factors(ev.ctx, r.cfeatures, r.cscores, r.cband, r.alert_type,
                                                      ev.risk_factors, ev.drivers, ev.kinds) AS factors
                              OFFSET 0) fx
    ), ranked AS MATERIALIZED (
        -- the playbooks answering each distinct set of factors, ranked once:
        -- those answering a term of the rule's own condition (what the alert
        -- is about) first
        SELECT n.names, n.terms,
               jsonb_agg(jsonb_build_object('rank', k.rank, 'playbook', k.playbook, 'action', k.action,
                                            'matched', to_jsonb(k.matched), 'trials', k.trials,
                                            'effectiveness', k.effectiveness, 'template', p.template)
                         ORDER BY k.rank) AS items
          FROM (SELECT DISTINCT names, terms FROM fire) n
         CROSS JOIN LATERAL cs.rank_playbooks(n.names, n.terms) k
          JOIN cs.playbooks p ON p.name = k.playbook
         WHERE k.rank <= 3
         GROUP BY n.names, n.terms
    ), old AS (
        SELECT al.customer_id, al.rule_id, al.severity
          FROM cs.alerts al
          JOIN fire f ON f.customer_id = al.customer_id AND f.rule_id = al.rule_id
         WHERE al.status IN ('open', 'acknowledged', 'snoozed')
    ), up AS (
        -- The partial unique index decides between a new alert and the open
        -- one, also against a concurrent evaluation of the same customer.
        INSERT INTO cs.alerts AS al (id, customer_id, rule_id, alert_type, severity, title, description, risk_factors,
                                     suggested_actions, status, assigned_to, created_at, updated_at, updated_by,
                                     last_fired_at, fire_count, mrr_at_risk)
        SELECT md5(s.customer_id::text || ':' || s.rule_id || ':' || nextval('cs.alert_number'))::uuid,
               s.customer_id, s.rule_id, s.alert_type, s.sev,
               left(cs.fill_template(coalesce(s.rtitle, s.rname), s.vals), 255), s.description, s.factors,
               s.suggested, 'open', s.csm, now(), now(), current_user, now(), 1, s.mrr
          FROM (SELECT f.*,
                       (SELECT coalesce(jsonb_agg((e.x - 'template')
                                                  || jsonb_build_object('message', cs.fill_template(e.x ->> 'template', f.vals))
                                                  ORDER BY e.o), '[]')
                          FROM jsonb_array_elements(k.items) WITH ORDINALITY e(x, o)) AS suggested
                  FROM fire f
                  LEFT JOIN ranked k ON k.names = f.names AND k.terms = f.terms
                 WHERE NOT EXISTS (SELECT 1 FROM cs.alerts p
                                    WHERE p.customer_id = f.customer_id AND p.rule_id = f.rule_id
                                      AND p.status IN ('resolved', 'dismissed') AND p.resolved_at > now() - f.cooldown)
                 ORDER BY f.customer_id, f.rule_id) s
        ON CONFLICT (customer_id, rule_id) WHERE status IN ('open', 'acknowledged', 'snoozed') DO UPDATE
           SET severity = CASE WHEN cs.severity_rank(excluded.severity) > cs.severity_rank(al.severity)
                               THEN excluded.severity ELSE al.severity END,
               escalated_at = CASE WHEN cs.severity_rank(excluded.severity) > cs.severity_rank(al.severity)
                                   THEN ts ELSE al.escalated_at END,
               updated_at = CASE WHEN cs.severity_rank(excluded.severity) > cs.severity_rank(al.severity)
                                 THEN now() ELSE al.updated_at END,
               title = excluded.title,
               risk_factors = excluded.risk_factors,
               suggested_actions = excluded.suggested_actions,
               last_fired_at = excluded.last_fired_at,
               fire_count = al.fire_count + 1,
               mrr_at_risk = excluded.mrr_at_risk
        RETURNING al.*, (al.xmax = 0) AS inserted, (al.escalated_at IS NOT DISTINCT FROM ts AND al.xmax <> 0) AS esc
    ), up_events AS (
        INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, note, details)
        SELECT u.id, CASE WHEN u.inserted THEN 'created' ELSE 'escalated' END,
               CASE WHEN u.inserted THEN NULL ELSE u.status END, u.status, NULL,
               CASE WHEN u.inserted THEN jsonb_build_object('severity', u.severity)
                    ELSE jsonb_build_object('from', o.severity, 'to', u.severity) END
          FROM up u
          LEFT JOIN old o ON o.customer_id = u.customer_id AND o.rule_id = u.rule_id
         WHERE u.inserted OR u.esc
         ORDER BY u.customer_id, u.rule_id
        RETURNING 1
    ), notified AS (
        SELECT pg_notify('cs_alerts', jsonb_build_object('event', CASE WHEN n.inserted THEN 'created' ELSE 'escalated' END,
                                                         'alert_id', n.id, 'customer_id', n.customer_id,
                                                         'severity', n.severity, 'title', n.title,
                                                         'alert_type', n.alert_type, 'assigned_to', n.assigned_to)::text)
          FROM (SELECT * FROM up WHERE inserted OR esc ORDER BY customer_id, rule_id) n
    )
    -- (data-modifying CTEs always run; notified is read so that it runs too)
    SELECT (SELECT count(*) FROM up WHERE inserted),
           (SELECT count(*) FROM up WHERE esc),
           (SELECT count(*) FROM up WHERE NOT inserted AND NOT esc),
           (SELECT count(*) FROM res),
           (SELECT count(*) FROM notified)
      INTO created, escalated, refired, n_resolved, n_notified;
    resolved := resolved + n_resolved;
    RETURN NEXT;
END;
$$;
-- The lifecycle functions are the only way for anybody but an admin to change
-- an alert: SECURITY DEFINER, checking the caller (a CSM who may see the
-- alert's customer), recording the caller as actor; CSMs lose their direct
-- UPDATE on cs.alerts and INSERT on cs.alert_events (95_security.sql).
CREATE OR REPLACE FUNCTION cs._alert_event(a cs.alerts, ev text, from_status text, note text, details jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, actor, note, details)
    VALUES (a.id, ev, from_status, a.status, cs.acting_user(), note, details);
    IF ev IN ('created', 'escalated') THEN
        PERFORM pg_notify('cs_alerts', jsonb_build_object('event', ev, 'alert_id', a.id, 'customer_id', a.customer_id,
                                                          'severity', a.severity, 'title', a.title,
                                                          'alert_type', a.alert_type, 'assigned_to', a.assigned_to)::text);
    END IF;
END;
$$;
COMMENT ON FUNCTION cs._alert_event(cs.alerts, text, text, text, jsonb) IS
    'Internal: appends to cs.alert_events, with cs.acting_user() as actor, and sends NOTIFY cs_alerts for created and escalated alerts (delivered at commit).';

CREATE OR REPLACE FUNCTION cs._alert_transition(alert_id uuid, ev text, allowed text[], new_status text, note text,
                                     until timestamptz DEFAULT NULL, assignee text DEFAULT NULL)
RETURNS cs.alerts
LANGUAGE plpgsql
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    a    cs.alerts;
    prev text;
    details jsonb;
    who  name;
BEGIN
    who := cs._require_csm(CASE ev WHEN 'acknowledged' THEN 'acknowledge' WHEN 'resolved' THEN 'resolve'
                                   WHEN 'dismissed' THEN 'dismiss' WHEN 'snoozed' THEN 'snooze'
                                   ELSE 'reassign' END || ' alerts');
    IF alert_id IS NULL THEN
        RAISE EXCEPTION 'alert id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- An alert the caller may not see is neither locked nor found.
    SELECT * INTO a FROM cs.alerts al WHERE al.id = alert_id AND cs._user_sees_customer(who, al.customer_id) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT a.status = ANY (allowed) THEN
        RAISE EXCEPTION 'cannot % alert %: it is %',
                        CASE ev WHEN 'acknowledged' THEN 'acknowledge' WHEN 'resolved' THEN 'resolve' WHEN 'dismissed' THEN 'dismiss'
                                WHEN 'snoozed' THEN 'snooze' ELSE 'reassign' END, alert_id, a.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Only %s alerts can be %s.', array_to_string(allowed, ', '), ev);
    END IF;
    prev := a.status;
    details := CASE ev WHEN 'snoozed' THEN jsonb_build_object('until', until)
                       WHEN 'reassigned' THEN jsonb_build_object('from', a.assigned_to, 'to', assignee) END;
    UPDATE cs.alerts al
       SET status = coalesce(new_status, al.status),
           resolved_at = CASE WHEN new_status IN ('resolved', 'dismissed') THEN now() ELSE al.resolved_at END,
           snoozed_until = CASE WHEN new_status = 'snoozed' THEN until
                                WHEN new_status IS NULL THEN al.snoozed_until END,
           assigned_to = coalesce(assignee, al.assigned_to),
           updated_at = now(),
           updated_by = who
     WHERE al.id = alert_id
    RETURNING al.* INTO a;
    PERFORM cs._alert_event(a, ev, prev, note, details);
    RETURN a;
END;
$$;
COMMENT ON FUNCTION cs._alert_transition(uuid, text, text[], text, text, timestamptz, text) IS
    'Internal, called by the SECURITY DEFINER lifecycle functions: for a CSM who may see the alert''s customer (insufficient_privilege for others; an alert they may not see does not exist, no_data_found), moves the alert to a new status (NULL keeps it) if its current status allows it (object_not_in_prerequisite_state otherwise), stamps who and when, and logs the event.';

CREATE OR REPLACE FUNCTION cs.acknowledge_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
RETURN cs._alert_transition(id, 'acknowledged', ARRAY['open', 'snoozed'], 'acknowledged', note);
COMMENT ON FUNCTION cs.acknowledge_alert(uuid, text) IS 'Marks an open or snoozed alert acknowledged (the CSM is on it); returns the alert.';

CREATE OR REPLACE FUNCTION cs.resolve_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
RETURN cs._alert_transition(id, 'resolved', ARRAY['open', 'acknowledged', 'snoozed'], 'resolved', note);
COMMENT ON FUNCTION cs.resolve_alert(uuid, text) IS 'Resolves an unresolved alert (the problem was dealt with); the rule''s cooldown starts. Returns the alert.';

CREATE OR REPLACE FUNCTION cs.dismiss_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
RETURN cs._alert_transition(id, 'dismissed', ARRAY['open', 'acknowledged', 'snoozed'], 'dismissed', note);
COMMENT ON FUNCTION cs.dismiss_alert(uuid, text) IS 'Dismisses an unresolved alert (not worth acting on); the rule''s cooldown starts. Returns the alert.';

CREATE OR REPLACE FUNCTION cs.snooze_alert(id uuid, until timestamptz) RETURNS cs.alerts
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
BEGIN
    IF until IS NULL THEN
        RAISE EXCEPTION 'snooze end must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF until <= now() OR NOT isfinite(until) THEN
        RAISE EXCEPTION 'snooze end must be a finite time in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN cs._alert_transition(id, 'snoozed', ARRAY['open', 'acknowledged', 'snoozed'], 'snoozed', NULL, until);
END;
$$;
COMMENT ON FUNCTION cs.snooze_alert(uuid, timestamptz) IS 'Snoozes an unresolved alert until a future time; the first evaluation after it reopens the alert. Returns the alert.';

CREATE OR REPLACE FUNCTION cs.reassign_alert(id uuid, assignee text) RETURNS cs.alerts
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
BEGIN
    IF assignee IS NULL OR btrim(assignee) = '' THEN
        RAISE EXCEPTION 'assignee must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN cs._alert_transition(id, 'reassigned', ARRAY['open', 'acknowledged', 'snoozed'], NULL, NULL, NULL, assignee);
END;
$$;
COMMENT ON FUNCTION cs.reassign_alert(uuid, text) IS 'Assigns an unresolved alert to another CSM (role name), keeping its status. Returns the alert.';

------------------------------------------------------------------------------
-- Actions: new playbook, risk_alerts reads the stored MRR at risk (src/sql/70_actions.sql)
------------------------------------------------------------------------------

-- a playbook the user made under the same name stays
INSERT INTO cs.playbooks (name, action, answers, template, outcome_window, description) VALUES
('cancellation_save_call', 'Call the decision maker about the cancellation',
 '{cancellation_mentions_90d,competitor_mentions_90d,ticket_sentiment_30d,ticket_sentiment_90d,negative_ticket_share_90d,nps_comment_sentiment}',
 'Hello {name} team, I read that you are thinking about cancelling. Before you decide, I would like to hear what went wrong and what it would take to fix it. Do you have 30 minutes this week? — {csm}',
 '30 days', 'Talk to whoever decides the renewal as soon as a ticket or comment mentions cancelling, and agree on fixes.')
ON CONFLICT (name) DO NOTHING;

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------
-- Its mrr_at_risk column changed type (the alert's stored numeric(10,2)).
DROP VIEW cs.risk_alerts;
CREATE VIEW cs.risk_alerts WITH (security_invoker = true) AS
SELECT a.id AS alert_id,
       a.customer_id,
       c.name,
       c.segment,
       a.assigned_to,
       r.name AS rule,
       a.severity,
       cs.severity_rank(a.severity) AS severity_rank,
       a.status,
       a.title,
       a.mrr_at_risk,
       -- scalar subqueries, not lateral joins: the planner memoizes lateral
       -- lookups with a hash table sized for every open alert, which cost the
       -- alerts page more than its lookups (4x its time at 100,000 customers)
       (SELECT x.risk_score FROM cs.risk_assessments x WHERE x.customer_id = a.customer_id AND x.risk_type = 'churn'
         ORDER BY x.created_at DESC LIMIT 1) AS churn_risk,
       (SELECT s.band FROM cs.customer_health_scores s WHERE s.customer_id = a.customer_id
         ORDER BY s.calculated_at DESC LIMIT 1) AS band,
       (SELECT s.overall_score FROM cs.customer_health_scores s WHERE s.customer_id = a.customer_id
         ORDER BY s.calculated_at DESC LIMIT 1) AS overall_score,
       a.risk_factors AS drivers,
       a.suggested_actions -> 0 ->> 'playbook' AS top_suggestion,
       a.suggested_actions,
       a.snoozed_until,
       a.created_at,
       a.updated_at
  FROM cs.alerts a
  JOIN cs.customers c ON c.id = a.customer_id
  LEFT JOIN cs.alert_rules r ON r.id = a.rule_id
 WHERE a.alert_type = 'risk' AND a.status IN ('open', 'acknowledged', 'snoozed') AND c.churned_at IS NULL;
COMMENT ON VIEW cs.risk_alerts IS 'Unresolved risk alerts of active customers with their drivers and suggested playbooks. ORDER BY severity_rank DESC, mrr_at_risk DESC (LIMIT n) reads the most severe and largest first from an index.';
COMMENT ON COLUMN cs.risk_alerts.alert_id IS 'The alert.';
COMMENT ON COLUMN cs.risk_alerts.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.risk_alerts.name IS 'Customer name.';
COMMENT ON COLUMN cs.risk_alerts.segment IS 'Customer segment.';
COMMENT ON COLUMN cs.risk_alerts.assigned_to IS 'CSM the alert is assigned to.';
COMMENT ON COLUMN cs.risk_alerts.rule IS 'Rule that raised the alert.';
COMMENT ON COLUMN cs.risk_alerts.severity IS 'low, medium, high or critical.';
COMMENT ON COLUMN cs.risk_alerts.severity_rank IS 'Severity as a number for sorting: low 1 to critical 4.';
COMMENT ON COLUMN cs.risk_alerts.status IS 'open, acknowledged or snoozed.';
COMMENT ON COLUMN cs.risk_alerts.title IS 'Alert title.';
COMMENT ON COLUMN cs.risk_alerts.mrr_at_risk IS 'MRR of the customer when the alert last fired.';
COMMENT ON COLUMN cs.risk_alerts.churn_risk IS 'Latest churn risk 0-1 of the customer.';
COMMENT ON COLUMN cs.risk_alerts.band IS 'Latest health band.';
COMMENT ON COLUMN cs.risk_alerts.overall_score IS 'Latest overall health 0-1.';
COMMENT ON COLUMN cs.risk_alerts.drivers IS 'Why the alert fired: rule terms, churn model factors and health drivers.';
COMMENT ON COLUMN cs.risk_alerts.top_suggestion IS 'Best ranked playbook.';
COMMENT ON COLUMN cs.risk_alerts.suggested_actions IS 'Ranked playbooks with rendered messages.';
COMMENT ON COLUMN cs.risk_alerts.snoozed_until IS 'End of the snooze, for snoozed alerts.';
COMMENT ON COLUMN cs.risk_alerts.created_at IS 'When the alert was raised.';
COMMENT ON COLUMN cs.risk_alerts.updated_at IS 'Last change of the alert.';

-- Actions and feedback, too, are recorded only through SECURITY DEFINER
-- functions that check the caller and record them as taken_by and user_id; CSMs
-- lose their INSERT on cs.actions and cs.alert_feedback (95_security.sql).
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

CREATE OR REPLACE FUNCTION cs.record_feedback(alert_id uuid, feedback_type text, rating int, comments text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    fid uuid;
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
    IF NOT EXISTS (SELECT 1 FROM cs.alerts a WHERE a.id = record_feedback.alert_id
                      AND cs._user_sees_customer(who, a.customer_id)) THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO cs.alert_feedback (alert_id, user_id, feedback_type, rating, comments)
    VALUES (alert_id, who, feedback_type, rating, comments)
    RETURNING id INTO fid;
    RETURN fid;
END;
$$;
COMMENT ON FUNCTION cs.record_feedback(uuid, text, int, text) IS
    'Records the current user''s rating (1-5) of an alert''s accuracy, relevance or priority; returns the feedback id.';

------------------------------------------------------------------------------
-- Integrations (new in 0.2.0: src/sql/80_integrations.sql)
------------------------------------------------------------------------------

--@include src/sql/80_integrations.sql

------------------------------------------------------------------------------
-- Data quality (new in 0.2.0: src/sql/85_data_quality.sql)
------------------------------------------------------------------------------

--@include src/sql/85_data_quality.sql

------------------------------------------------------------------------------
-- The shipped churn model (src/sql/90_default_model.sql)
------------------------------------------------------------------------------

-- 0.2.0 ships models/churn_default.json retrained on the 36 features.  It is
-- registered as the next version of churn_default, with its metrics, and
-- deployed only when the churn champion is still the 0.1.0 model as shipped
-- (models/churn_default-0.1.0.json, md5 below); a champion of the user's own
-- stays, and the new version waits as a candidate.
DO $$
DECLARE
    f        text := (SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/cscopilot/models/churn_default';
    champion cs.models;
    model_id int;
BEGIN
    IF (pg_stat_file(f || '.json', true)).size IS NULL THEN
        RAISE WARNING 'the shipped churn model %.json is not installed', f
            USING HINT = 'Churn risk keeps the current champion; load a new one with cs.load_model_file or cs.train_model.';
        RETURN;
    END IF;
    SELECT * INTO champion FROM cs.models m WHERE m.kind = 'churn' AND m.status = 'champion';
    model_id := cs.load_model_file('churn_default', 'churn', 'churn_default.json');
    IF (pg_stat_file(f || '.metrics', true)).size IS NOT NULL THEN
        UPDATE cs.models m
           SET metrics = pg_read_file(f || '.metrics')::jsonb,
               training_data = 'Generated demo data (cs.generate_demo_data), monthly observation dates, 90-day churn horizon; see models/README.md.'
         WHERE m.id = model_id;
    END IF;
    IF champion.name = 'churn_default' AND md5(champion.model) = 'db2caab90053b26f1579c97c9ca9baca'
       AND cardinality(champion.feature_names) = 30 THEN
        -- No drift reference yet: the stored feature vectors have 0.1.0's 30
        -- features; cs.set_model_reference after the next cs.refresh_all() sets one.
        PERFORM cs.deploy_model('churn_default', (SELECT m.version FROM cs.models m WHERE m.id = model_id));
    ELSE
        RAISE WARNING 'churn model "%" version % stays the champion; the model shipped with 0.2.0 is churn_default version %, a candidate',
            champion.name, champion.version, (SELECT m.version FROM cs.models m WHERE m.id = model_id)
            USING HINT = 'Compare them with cs.compare_models(''churn''); deploy with cs.deploy_model.';
    END IF;
END;
$$;
