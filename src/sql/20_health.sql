-- Composite health score: per-segment profiles, normalisation, weighting with
-- redistribution of missing inputs, drivers, history; cs.refresh(); the views.

------------------------------------------------------------------------------
-- Profiles
------------------------------------------------------------------------------

-- The one reader of a profile (ParseProfile, src/health.c) checks it: the
-- trigger below before it is written, the scorer when it loads it.
CREATE OR REPLACE FUNCTION cs._check_health_profile(name text, weights jsonb, bands jsonb, normalisation jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cs_check_health_profile'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._check_health_profile(text, jsonb, jsonb, jsonb) IS
    'Internal: true for a valid health profile (name, weights, bands, normalisation); else raises what is wrong with it (SQLSTATE 22023), as the scorer reads it.';

-- The measures the profiles rank by percentile, as the scorer reads them.
CREATE OR REPLACE FUNCTION cs._profile_percentile_measures()
RETURNS TABLE (measure text, "position" int)
AS 'MODULE_PATHNAME', 'cs_profile_percentile_measures'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._profile_percentile_measures() IS
    'Internal: each measure (feature name and position) some health profile normalises by percentile, whatever its weight, once.';

-- Refuses a malformed profile before it is written (never half-applied) and
-- bumps its version whenever its scoring changes.
CREATE OR REPLACE FUNCTION cs._validate_health_profile() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    PERFORM cs._check_health_profile(NEW.name, NEW.weights, NEW.bands, NEW.normalisation);
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
CREATE OR REPLACE TRIGGER health_profiles_validate BEFORE INSERT OR UPDATE ON cs.health_profiles
    FOR EACH ROW EXECUTE FUNCTION cs._validate_health_profile();

-- Retakes the percentile populations from the current feature store.
CREATE OR REPLACE FUNCTION cs._refresh_health_populations()
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, cs
AS $$
    SELECT cs._refresh_lock();
    DELETE FROM cs.health_populations;
    INSERT INTO cs.health_populations (segment, measure, sorted)
    SELECT c.segment, m.measure, array_agg(f.features[m.position]::float8 ORDER BY f.features[m.position])
      FROM cs._profile_percentile_measures() m
     CROSS JOIN cs.customer_features f
      JOIN cs.customers c ON c.id = f.customer_id
     WHERE f.features[m.position] <> 'NaN'
     GROUP BY 1, 2;
$$;
COMMENT ON FUNCTION cs._refresh_health_populations() IS 'Internal: retakes cs.health_populations from the feature store (run by full refreshes).';

-- Health scores for the given customers (all when ids is NULL) from their
-- stored feature vectors, or from vectors computed as of a point in time when
-- as_of is given.  Returns rows shaped like cs.customer_health_scores (id NULL).
--
-- Per measure: a normalised score in [0,1] (thresholds with linear
-- interpolation, or mid-rank percentile within the customer's segment).  Per
-- group: the weighted mean of its present measures.  Overall: the weighted
-- mean of present groups.  Weights of missing inputs are thereby redistributed
-- proportionally; drivers records which inputs were missing and what share of
-- the weight they had, and the present inputs that cost the most score
-- (effective weight x (1 - score)).  The per-customer arithmetic is C
-- (cs._health_of, src/health.c) over profiles and populations it reads once
-- per query.
--
-- Percentile populations: for stored vectors, those of the last full refresh
-- (cs.health_populations); as of a point in time, those of that time: the
-- feature vectors of every customer that had started by then
-- (cs._customer_starts), computed in one set-based pass, so that history is
-- never ranked against today's customers.
CREATE OR REPLACE FUNCTION cs._health_of(customer_id uuid, segment text, features float4[], as_of timestamptz,
                                         populations cs.health_populations[] DEFAULT NULL)
RETURNS cs.customer_health_scores
AS 'MODULE_PATHNAME', 'cs_health_of'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._health_of(uuid, text, float4[], timestamptz, cs.health_populations[]) IS
    'Internal: the cs.compute_health row of one customer from its segment and feature vector (a row of NULLs when no profile applies); reads the profiles once per query, and ranks percentiles within the given populations (the same for every row of a query), else within cs.health_populations.';

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
        fv := format('SELECT customer_id, features, as_of, NULL::cs.health_populations[] AS pops
                        FROM cs.customer_features WHERE %s',
                     CASE WHEN ids IS NULL THEN 'true' ELSE 'customer_id = ANY ($1)' END);
    ELSIF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp' USING ERRCODE = 'invalid_parameter_value';
    ELSIF NOT EXISTS (SELECT 1 FROM cs._profile_percentile_measures()) THEN
        -- nothing ranks by percentile: the given customers' vectors are enough
        fv := format('SELECT f.customer_id, f.features, $2 AS as_of, NULL::cs.health_populations[] AS pops
                        FROM cs.compute_features($1, $2) f %s',
                     CASE WHEN ids IS NULL THEN 'JOIN cs._customer_starts() s ON s.customer_id = f.customer_id
                                                WHERE s.started_at <= $2' ELSE '' END);
    ELSE
        -- every customer's vector as of then, once: the populations of that
        -- time, and the vectors of the customers asked for
        fv := format($f$
            WITH f AS MATERIALIZED (
                SELECT f.customer_id, f.features, s.started_at <= $2 AS started
                  FROM cs.compute_features(NULL, $2) f
                  JOIN cs._customer_starts() s ON s.customer_id = f.customer_id
            ), pops AS (
                SELECT array_agg(ROW(p.segment, p.measure, p.sorted, $2)::cs.health_populations) AS a
                  FROM (SELECT c.segment, m.measure,
                               array_agg(f.features[m.position]::float8 ORDER BY f.features[m.position]) AS sorted
                          FROM cs._profile_percentile_measures() m
                         CROSS JOIN f
                          JOIN cs.customers c ON c.id = f.customer_id
                         WHERE f.started AND f.features[m.position] <> 'NaN'
                         GROUP BY 1, 2) p
            )
            SELECT f.customer_id, f.features, $2 AS as_of, (SELECT a FROM pops) AS pops
              FROM f %s$f$,
            CASE WHEN ids IS NULL THEN 'WHERE f.started'
                 ELSE 'JOIN (SELECT DISTINCT i FROM unnest($1) i) i ON i.i = f.customer_id' END);
    END IF;
    -- One call per customer; the offset keeps (h).* from calling it once per column.
    -- The vectors first (MATERIALIZED): on a Citus cluster they are read on
    -- the shards and the scorer runs where the query began, since it reads the
    -- profiles and the feature catalog (a query nested in a shard's would be
    -- refused).
    RETURN QUERY EXECUTE format($q$
    WITH fv AS MATERIALIZED (
        SELECT fv.customer_id, c.segment, fv.features, fv.as_of, fv.pops
          FROM (%s) fv
          JOIN cs.customers c ON c.id = fv.customer_id
    )
    SELECT (h).*
      FROM (SELECT cs._health_of(fv.customer_id, fv.segment, fv.features, fv.as_of, fv.pops) AS h
              FROM fv
            OFFSET 0) s
     WHERE (h).customer_id IS NOT NULL
    $q$, fv)
    USING ids, as_of;
END;
$fn$;
COMMENT ON FUNCTION cs.compute_health(uuid[], timestamptz) IS
    'Health scores (not stored) for the given customers, or all when NULL: from stored feature vectors and the populations of the last full refresh; or, when as_of is given, from vectors as of then with percentiles ranked among every customer as of then (all customers that had started by then when ids is NULL).';

-- The health score of one customer from its current signals, without storing
-- it: its vector now, ranked within the populations of the last full refresh
-- (cheap: one customer's features).
CREATE OR REPLACE FUNCTION cs.health_score(customer_id uuid)
RETURNS cs.customer_health_scores
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
SET jit = off
AS $$
DECLARE
    r cs.customer_health_scores;
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT (h).* INTO r
      FROM (SELECT cs._health_of(f.customer_id, c.segment, f.features, now()) AS h
              FROM cs.compute_features(ARRAY[customer_id], now()) f
              JOIN cs.customers c ON c.id = f.customer_id
            OFFSET 0) s
     WHERE (h).customer_id IS NOT NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN r;
END;
$$;
COMMENT ON FUNCTION cs.health_score(uuid) IS
    'Health score of a customer computed now from its signals, percentiles ranked within the populations of the last full refresh (not stored; cs.refresh stores history). id is NULL.';

-- The health score of one customer as it was at a point in time: its vector
-- as of then, percentiles ranked among every customer as of then.
CREATE OR REPLACE FUNCTION cs.health_score(customer_id uuid, as_of timestamptz)
RETURNS cs.customer_health_scores
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    r cs.customer_health_scores;
BEGIN
    IF customer_id IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'customer_id and as_of must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT cs.is_admin() THEN
        -- the populations of then are every customer's vectors: under row-level
        -- security they would be the caller's book only, and rank wrongly
        RAISE EXCEPTION 'health as of a date is for admins'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'It ranks the customer among every customer as of that date.',
                  HINT = 'cs.health_score(customer_id) scores a customer now; cs.customer_health_scores holds its history (cs.backfill_health fills past weeks).';
    END IF;
    SELECT * INTO r FROM cs.compute_health(ARRAY[customer_id], as_of);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN r;
END;
$$;
COMMENT ON FUNCTION cs.health_score(uuid, timestamptz) IS
    'Health score of a customer as of a point in time: its signals then, percentiles ranked among every customer''s vector then (one feature pass over all customers; admins only). Not stored; id is NULL.';

-- Weekly health history for past weeks: for each of the last weeks (Mondays
-- 00:00, this week's first), the health of every customer that was a customer
-- then (started, not yet churned) and has no score in the week ending there,
-- from features and populations as of that Monday: one set-based feature pass
-- per week.  A second call adds nothing; real refreshes of a week are kept.
CREATE OR REPLACE FUNCTION cs.backfill_health(weeks int DEFAULT 12)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
SET jit = off
AS $$
DECLARE
    d timestamptz;
    todo uuid[];
    n bigint;
    total bigint := 0;
BEGIN
    IF weeks IS NULL OR weeks < 1 OR weeks > 520 THEN
        RAISE EXCEPTION 'weeks must be between 1 and 520' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM cs._refresh_lock();
    FOR k IN REVERSE weeks - 1 .. 0 LOOP
        d := date_trunc('week', now()) - make_interval(weeks => k);
        todo := ARRAY(SELECT s.customer_id
                        FROM cs._customer_starts() s
                        JOIN cs.customers c ON c.id = s.customer_id
                       WHERE s.started_at <= d AND (c.churned_at IS NULL OR c.churned_at > d)
                         AND NOT EXISTS (SELECT 1 FROM cs.customer_health_scores h
                                          WHERE h.customer_id = s.customer_id
                                            AND h.calculated_at > d - interval '7 days' AND h.calculated_at <= d)
                       ORDER BY s.customer_id);
        CONTINUE WHEN cardinality(todo) = 0;
        INSERT INTO cs.customer_health_scores (customer_id, overall_score, usage_score, engagement_score,
                                               support_score, payment_score, calculated_at, version, band, drivers)
        SELECT h.customer_id, h.overall_score, h.usage_score, h.engagement_score, h.support_score,
               h.payment_score, h.calculated_at, h.version, h.band, h.drivers
          FROM cs.compute_health(todo, d) h;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    RETURN total;
END;
$$;
COMMENT ON FUNCTION cs.backfill_health(int) IS
    'Writes weekly health history for the last weeks (at Monday 00:00 of each, this week''s included) from features and percentile populations as of then, for customers active then without a score in that week; returns the rows written. Idempotent: a second call adds nothing.';

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

-- Sparkline glyph for a score in [0,1]; a blank for no score.
CREATE OR REPLACE FUNCTION cs.spark(score numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN score IS NULL THEN ' '
            ELSE substr('▁▂▃▄▅▆▇█', 1 + least(7, greatest(0, floor(score * 8)::int)), 1) END
$$;
COMMENT ON FUNCTION cs.spark(numeric) IS 'One sparkline glyph (▁ to █) for a score in [0,1]; a blank when NULL.';

CREATE OR REPLACE FUNCTION cs._sparkline(at timestamptz, ts timestamptz[], scores numeric[]) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_sparkline' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._sparkline(timestamptz, timestamptz[], numeric[]) IS
    'Internal: twelve cs.spark() glyphs, oldest first, for the latest score at or before at minus 11, 10, ... 0 weeks, from ascending timestamps and their scores.';

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
COMMENT ON VIEW cs.account_health_overview IS 'One row per active customer: latest health, sub-scores, band, trend, 12-week sparkline, top driver and churn risk.';
COMMENT ON COLUMN cs.account_health_overview.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.account_health_overview.external_id IS 'Account id in the CRM.';
COMMENT ON COLUMN cs.account_health_overview.name IS 'Account name.';
COMMENT ON COLUMN cs.account_health_overview.csm IS 'Owning CSM (role name).';
COMMENT ON COLUMN cs.account_health_overview.segment IS 'Segment of the customer (any text).';
COMMENT ON COLUMN cs.account_health_overview.mrr IS 'Monthly recurring revenue.';
COMMENT ON COLUMN cs.account_health_overview.renewal_date IS 'Contract end date.';
COMMENT ON COLUMN cs.account_health_overview.overall_score IS 'Latest overall health 0-1.';
COMMENT ON COLUMN cs.account_health_overview.usage_score IS 'Latest usage sub-score 0-1.';
COMMENT ON COLUMN cs.account_health_overview.engagement_score IS 'Latest engagement sub-score 0-1.';
COMMENT ON COLUMN cs.account_health_overview.support_score IS 'Latest support sub-score 0-1.';
COMMENT ON COLUMN cs.account_health_overview.payment_score IS 'Latest payment sub-score 0-1.';
COMMENT ON COLUMN cs.account_health_overview.band IS 'red, yellow or green.';
COMMENT ON COLUMN cs.account_health_overview.trend_7d IS 'Change of overall health against the score 7 days earlier.';
COMMENT ON COLUMN cs.account_health_overview.trend_30d IS 'Change of overall health against the score 30 days earlier.';
COMMENT ON COLUMN cs.account_health_overview.trend_arrow IS '↑ or ↓ for a 7-day change of at least 0.05, → otherwise, · without history.';
COMMENT ON COLUMN cs.account_health_overview.sparkline IS 'Overall health at the end of each of the last 12 weeks, oldest first.';
COMMENT ON COLUMN cs.account_health_overview.top_driver IS 'The measure that pulls the health score down most.';
COMMENT ON COLUMN cs.account_health_overview.churn_risk IS 'Latest churn risk 0-1 (NULL until a churn model scores the customer).';
COMMENT ON COLUMN cs.account_health_overview.churn_risk_confidence IS 'Confidence 0-1 of the latest churn risk.';
COMMENT ON COLUMN cs.account_health_overview.top_risk_factor IS 'Feature raising the churn risk most (largest positive SHAP contribution).';
COMMENT ON COLUMN cs.account_health_overview.calculated_at IS 'When the latest health score was computed.';

CREATE OR REPLACE VIEW cs.health_trends WITH (security_invoker = true) AS
WITH weekly AS (
    SELECT h.customer_id, c.segment, date_trunc('week', h.calculated_at)::date AS week,
           (array_agg(h.overall_score ORDER BY h.calculated_at DESC))[1] AS overall_score,
           (array_agg(h.band ORDER BY h.calculated_at DESC))[1] AS band
      FROM cs.customer_health_scores h
      JOIN cs.customers c ON c.id = h.customer_id
     GROUP BY 1, 2, 3
)
SELECT 'customer'::text AS grain, customer_id, segment, week, overall_score, band, 1::bigint AS customers
  FROM weekly
UNION ALL
SELECT 'segment', NULL, segment, week, round(avg(overall_score), 2), NULL, count(*)
  FROM weekly GROUP BY segment, week;
COMMENT ON VIEW cs.health_trends IS 'Weekly health: per customer (its last score of the week) and per segment (mean of its customers).';
COMMENT ON COLUMN cs.health_trends.grain IS 'customer or segment.';
COMMENT ON COLUMN cs.health_trends.customer_id IS 'The customer (NULL for segment rows).';
COMMENT ON COLUMN cs.health_trends.segment IS 'Segment of the customer or of the row.';
COMMENT ON COLUMN cs.health_trends.week IS 'Monday of the week.';
COMMENT ON COLUMN cs.health_trends.overall_score IS 'Overall health: last of the week, or the segment mean.';
COMMENT ON COLUMN cs.health_trends.band IS 'Band of the last score of the week (customer rows).';
COMMENT ON COLUMN cs.health_trends.customers IS 'Customers behind the row.';
