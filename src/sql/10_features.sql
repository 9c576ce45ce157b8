-- Feature store: the catalog, point-in-time feature computation and the
-- current vector per customer.
--
-- Missing data is NaN, never a silent zero: usage features are NaN for a
-- customer with no usage event at all up to as_of (no product analytics for
-- it), averages are NaN when there is nothing to average, contract features are
-- NaN when the dates are unknown.  Counts of tickets or meetings are real zeros.

CREATE OR REPLACE FUNCTION cs.feature_vector(float8[]) RETURNS float4[]
    AS 'MODULE_PATHNAME', 'cs_feature_vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.feature_vector(float8[]) IS 'Converts values to a float4 feature vector; NULL and out-of-range values become NaN (missing).';

CREATE OR REPLACE FUNCTION cs.interpolate(x float8, thresholds float8[], scores float8[]) RETURNS float8
    AS 'MODULE_PATHNAME', 'cs_interpolate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.interpolate(float8, float8[], float8[]) IS 'Piecewise-linear map of x through (thresholds, scores), constant outside; NULL for NaN.';

CREATE OR REPLACE FUNCTION cs.percentile_rank(sorted float8[], x float8) RETURNS float8
    AS 'MODULE_PATHNAME', 'cs_percentile_rank' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.percentile_rank(float8[], float8) IS 'Mid-rank share of an ascending population below x, in [0,1]; NULL for NaN or an empty population.';

CREATE OR REPLACE FUNCTION cs._usage_summary_trans(internal, text, text, float8, timestamptz, timestamptz) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_summary_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION cs._usage_summary_final(internal) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'cs_usage_summary_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION cs._usage_summary_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_summary_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION cs._usage_summary_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'cs_usage_summary_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OR REPLACE FUNCTION cs._usage_summary_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_summary_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._usage_summary_combine(internal, internal) IS 'Internal: combine function of cs.usage_summary (parallel aggregation).';
COMMENT ON FUNCTION cs._usage_summary_serialize(internal) IS 'Internal: serializes a cs.usage_summary state for parallel aggregation.';
COMMENT ON FUNCTION cs._usage_summary_deserialize(bytea, internal) IS 'Internal: deserializes a cs.usage_summary state for parallel aggregation.';
CREATE OR REPLACE AGGREGATE cs.usage_summary(user_id text, feature text, quantity float8, occurred_at timestamptz, as_of timestamptz) (
    SFUNC = cs._usage_summary_trans, STYPE = internal, FINALFUNC = cs._usage_summary_final,
    COMBINEFUNC = cs._usage_summary_combine, SERIALFUNC = cs._usage_summary_serialize,
    DESERIALFUNC = cs._usage_summary_deserialize, PARALLEL = SAFE);
COMMENT ON FUNCTION cs._usage_summary_trans(internal, text, text, float8, timestamptz, timestamptz) IS 'Internal: transition function of cs.usage_summary.';
COMMENT ON FUNCTION cs._usage_summary_final(internal) IS 'Internal: final function of cs.usage_summary.';
COMMENT ON AGGREGATE cs.usage_summary(text, text, float8, timestamptz, timestamptz) IS
    'One-pass usage summary of a customer''s events up to as_of: {users 7d, users 30d, quantity 30d, quantity prior 30d, quantity 14d, quantity prior 14d, features 30d, active days 30d, days since last event}; windows are whole days counted back from as_of.';

-- The pipeline's queries for given customers, from generic plans kept for the
-- session (src/features.c): planning them cost more than running them.
CREATE OR REPLACE FUNCTION cs._run_kept_plan(query text, ids uuid[], arg anyelement) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cs_run_kept_plan' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._run_kept_plan(text, uuid[], anyelement) IS
    'Internal: the rows of a SELECT with parameters $1 (ids) and $2 (arg), run as the caller from a generic plan this session keeps for its text; the plan cache replans it when the objects, search_path or role it was made for change.';
CREATE OR REPLACE FUNCTION cs._exec_kept_plan(query text, ids uuid[], arg anyelement) RETURNS bigint
    AS 'MODULE_PATHNAME', 'cs_exec_kept_plan' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cs._exec_kept_plan(text, uuid[], anyelement) IS
    'Internal: runs an INSERT, UPDATE or DELETE with parameters $1 (ids) and $2 (arg) as the caller from a generic plan this session keeps for its text; returns the number of rows written.';

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
    q text;
    -- the enabled usage metrics (cs.usage_metrics), computed in the same scan
    spec text[] := cs._usage_metric_spec();
    back int := greatest(60, cs._usage_metric_lookback());
    spec_lit text := quote_literal(spec::text) || '::text[]';
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
    q := format($q$
    WITH c AS (
        SELECT id, mrr, seats_licensed, contract_start_date, contract_end_date, first_seen_at
          FROM cs.customers WHERE %1$s
    ), u AS MATERIALIZED (
        SELECT customer_id,
               cs.usage_summary(user_id, feature, quantity, occurred_at, $2)%5$s AS us%6$s
          FROM cs.usage_events
         WHERE %2$s AND occurred_at > $2 - interval '%7$s days' AND occurred_at <= $2
         GROUP BY customer_id
    ), u_old AS (
        -- days since the last activity of customers silent for 60 days, by index
        SELECT q.id AS customer_id,
               (SELECT extract(epoch FROM $2 - max(e.occurred_at)) / 86400.0 FROM cs.usage_events e
                 WHERE e.customer_id = q.id AND %10$s AND e.occurred_at <= $2 - interval '60 days') AS days_since
          FROM (SELECT c.id FROM c WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.customer_id = c.id%8$s) OFFSET 0) q
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
               %11$s::bigint AS stamp
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
                    -- (written out, cs._signal_categories_sql: the rules read in this query)
                    THEN %12$s END AS cats
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
                    THEN %13$s END AS cats
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
               -- a CSM's internal note is no touch of the customer
               max(occurred_at) FILTER (WHERE kind <> 'note') AS last_touch
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
                                                 AND (ended_at IS NULL OR ended_at > $2::date)) AS products,
               min(started_at) FILTER (WHERE started_at <= $2::date) AS first_started
          FROM cs.subscriptions
         WHERE %2$s
         GROUP BY customer_id
    ), ct AS (
        -- contract terms known at as_of (those started by then): the first
        -- one, and the renewal date of the one in force
        SELECT customer_id, min(term_start) AS first_start,
               min(term_end) FILTER (WHERE term_end > $2::date) AS renewal
          FROM cs.contract_terms
         WHERE %2$s AND term_start <= $2::date
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
             -- tenure: from the customer's first known fact at as_of (contract
             -- term, current contract, subscription or any activity), never
             -- from created_at (the load time); NaN when none is that old
             $2::date - least(ct.first_start,
                              CASE WHEN c.contract_start_date <= $2::date THEN c.contract_start_date END,
                              s.first_started,
                              CASE WHEN c.first_seen_at <= $2 THEN c.first_seen_at::date END),
             -- renewal: the term in force at as_of, else the current contract
             -- when it had begun by then; never extrapolated backwards from
             -- today's contract (its end would tell whether the customer renewed)
             coalesce(ct.renewal - $2::date,
                      CASE WHEN c.contract_start_date <= $2::date THEN c.contract_end_date - $2::date END),
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
           ]::float8[]%9$s)
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
      LEFT JOIN ct ON ct.customer_id = c.id
    $q$, replace(f, 'customer_id', 'id'), f,
       -- the cache of text signals, for the users who may read it (it is
       -- internal: viewers and CSMs compute every text)
       CASE WHEN has_table_privilege('cs.text_signals', 'SELECT') THEN 'cs.text_signals'
            ELSE '(SELECT NULL::text AS source, NULL::bigint AS id, NULL::bigint AS text_hash,
                          NULL::bigint AS rules_stamp, NULL::float8 AS sentiment, NULL::text[] AS categories
                    WHERE false)' END,
       replace(f, 'customer_id', 'r.customer_id'),
       -- usage metrics: the usage summary keeps its 60 days when the scan reads
       -- further back, and a customer with events only before the metrics'
       -- windows gets zeros (no event at all: NaN, as the usage features)
       CASE WHEN back > 60 THEN ' FILTER (WHERE occurred_at > $2 - interval ''60 days'')' ELSE '' END,
       CASE WHEN cardinality(spec) > 0
            THEN format(', cs.usage_metric_values(%s, event, feature, user_id, quantity, occurred_at, $2) AS um', spec_lit)
            ELSE '' END,
       back,
       CASE WHEN back > 60 THEN ' AND u.us IS NOT NULL' ELSE '' END,
       CASE WHEN cardinality(spec) > 0
            THEN format(' || CASE WHEN u.um IS NOT NULL THEN u.um WHEN u.us IS NOT NULL OR uo.days_since IS NOT NULL '
                        'THEN cs._usage_metrics_empty(%s) ELSE array_fill(NULL::float8, ARRAY[%s]) END',
                        spec_lit, cardinality(spec) / 8)
            ELSE '' END,
       -- the customers again inside the correlated subquery: on a Citus
       -- cluster every table of a query must name the shard's customers for
       -- the whole query to go to that shard
       replace(f, 'customer_id', 'e.customer_id'),
       -- read here, not inside the query: on a cluster that would be a query
       -- of reference tables nested in a shard's
       cs._text_signals_stamp(),
       cs._signal_categories_sql('txt'), cs._signal_categories_sql('comment'));
    -- On a Citus cluster the query goes to the shards of the given customers
    -- with the values of its parameters (Citus cannot plan a kept generic plan
    -- of a query on distributed tables); the stamp of the text-signal cache is
    -- read here, not inside the shard's query.
    IF ids IS NULL OR cs._is_distributed() THEN
        RETURN QUERY EXECUTE q USING ids, as_of;
    ELSE
        -- Given customers: planning the query took 10-60 ms a call where
        -- running it for one customer takes under 1 ms, so the same text runs
        -- from a generic plan kept for the session (index scans by customer).
        RETURN QUERY SELECT * FROM cs._run_kept_plan(q, ids, as_of) AS k(customer_id uuid, features float4[]);
    END IF;
END;
$fn$;
COMMENT ON FUNCTION cs.compute_features(uuid[], timestamptz) IS
    'Point-in-time feature vectors (cs.feature_names() order: cs.feature_catalog, then the enabled usage metrics; NaN for missing) for the given customers, or all when ids is NULL; only data stamped at or before as_of counts.';

-- The feature vector of one customer at a point in time.
CREATE OR REPLACE FUNCTION cs.features(customer_id uuid, as_of timestamptz DEFAULT now())
RETURNS float4[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    v float4[];
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT f.features INTO v FROM cs.compute_features(ARRAY[customer_id], as_of) f;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v;
END;
$$;
COMMENT ON FUNCTION cs.features(uuid, timestamptz) IS
    'The feature vector of a customer as of a point in time (default now), in cs.feature_names() order; NaN for missing data.';
