-- Health score: the per-customer C computation (cs._health_of behind cs.compute_health)
-- gives the rows of the set-based SQL query it replaced, on generated demo data and on
-- edge cases (missing values and populations, odd vectors, profile fallbacks).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- risk scores play no part in health
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

-- The SQL formulation cs.compute_health had before, kept here as the reference
-- (as of a point in time, with the populations of then).
CREATE FUNCTION sql_compute_health(ids uuid[], as_of timestamptz DEFAULT NULL)
RETURNS SETOF cs.customer_health_scores
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $fn$
DECLARE
    fv text;
    pop text;
BEGIN
    IF as_of IS NULL THEN
        fv := format('SELECT customer_id, features, as_of FROM cs.customer_features WHERE %s',
                     CASE WHEN ids IS NULL THEN 'true' ELSE 'customer_id = ANY ($1)' END);
    ELSE
        fv := 'SELECT customer_id, features, $2 AS as_of FROM cs.compute_features($1, $2)'
              || CASE WHEN ids IS NULL THEN ' WHERE customer_id IN (SELECT customer_id FROM cs._customer_starts() WHERE started_at <= $2)' ELSE '' END;
        -- as of a point in time: the populations of then, every customer that
        -- had started by then
        pop := $p$
        SELECT c.segment, pr.measure,
               array_agg(f.features[pr.position]::float8 ORDER BY f.features[pr.position]) AS sorted
          FROM (SELECT DISTINCT measure, position FROM prof WHERE method = 'percentile') pr
         CROSS JOIN cs.compute_features(NULL, $2) f
          JOIN cs._customer_starts() s ON s.customer_id = f.customer_id AND s.started_at <= $2
          JOIN cs.customers c ON c.id = f.customer_id
         WHERE f.features[pr.position] <> 'NaN'
         GROUP BY 1, 2
    $p$;
    END IF;
    RETURN QUERY EXECUTE format($q$
    WITH fv AS (%s),
    -- profiles exploded once: one row per (profile, measure) with its arrays
    prof AS MATERIALIZED (
        SELECT p.id AS profile_id, p.segment, g.key AS grp, (g.value ->> 'weight')::float8 AS gw,
               mm.key AS measure, mm.value::float8 AS mw, fc.position,
               p.normalisation -> mm.key ->> 'method' AS method,
               p.normalisation -> mm.key ->> 'direction' AS direction,
               ARRAY(SELECT jsonb_array_elements_text(p.normalisation -> mm.key -> 'thresholds')::float8) AS xs,
               ARRAY(SELECT jsonb_array_elements_text(p.normalisation -> mm.key -> 'scores')::float8) AS ys
          FROM cs.health_profiles p
         CROSS JOIN LATERAL jsonb_each(p.weights) g
         CROSS JOIN LATERAL jsonb_each_text(g.value -> 'measures') mm
          JOIN cs.feature_catalog fc ON fc.name = mm.key
    ), cust AS (
        SELECT fv.customer_id, fv.features, fv.as_of, c.segment,
               coalesce(ps.id, pd.id) AS profile_id
          FROM fv
          JOIN cs.customers c ON c.id = fv.customer_id
          LEFT JOIN cs.health_profiles ps ON ps.segment = c.segment
          LEFT JOIN cs.health_profiles pd ON pd.segment IS NULL
    ), pop AS (%s    ), scored AS (
        SELECT cu.customer_id, pr.grp, pr.gw, pr.measure, pr.mw, v.value,
               CASE WHEN v.value = 'NaN' THEN NULL
                    WHEN pr.method = 'percentile' THEN
                         CASE WHEN pr.direction = 'lower_is_better'
                              THEN 1 - cs.percentile_rank(pop.sorted, v.value)
                              ELSE cs.percentile_rank(pop.sorted, v.value) END
                    ELSE cs.interpolate(v.value, pr.xs, pr.ys)
               END AS s
          FROM cust cu
          JOIN prof pr ON pr.profile_id = cu.profile_id
         CROSS JOIN LATERAL (SELECT cu.features[pr.position]::float8 AS value) v
          LEFT JOIN pop ON pr.method = 'percentile' AND pop.segment IS NOT DISTINCT FROM cu.segment
                       AND pop.measure = pr.measure
         WHERE pr.gw > 0 AND pr.mw > 0
    ), grp AS (
        SELECT customer_id, grp, gw,
               sum(mw) AS mw_total,
               sum(mw) FILTER (WHERE s IS NOT NULL) AS mw_present,
               sum(mw * s) / nullif(sum(mw) FILTER (WHERE s IS NOT NULL), 0) AS gscore
          FROM scored GROUP BY customer_id, grp, gw
    ), tot AS (
        SELECT customer_id,
               sum(gw) AS gw_total,
               sum(gw) FILTER (WHERE gscore IS NOT NULL) AS gw_present,
               sum(gw * gscore) / nullif(sum(gw) FILTER (WHERE gscore IS NOT NULL), 0) AS overall,
               max(gscore) FILTER (WHERE grp = 'usage') AS usage,
               max(gscore) FILTER (WHERE grp = 'engagement') AS engagement,
               max(gscore) FILTER (WHERE grp = 'support') AS support,
               max(gscore) FILTER (WHERE grp = 'payment') AS payment
          FROM grp GROUP BY customer_id
    ), eff AS (
        SELECT s.customer_id, s.grp, s.measure, s.value, s.s,
               -- nominal share of the total weight, and the cost in score after redistribution
               (g.gw / t.gw_total) * (s.mw / g.mw_total) AS nominal,
               (g.gw / t.gw_present) * (s.mw / g.mw_present) * (1 - s.s) AS impact
          FROM scored s
          JOIN grp g USING (customer_id, grp)
          JOIN tot t USING (customer_id)
    ), ranked AS (
        SELECT eff.*, row_number() OVER (PARTITION BY customer_id ORDER BY impact DESC NULLS LAST, measure) AS rk
          FROM eff
    ), drv AS (
        SELECT customer_id,
               coalesce(jsonb_agg(jsonb_build_object('measure', measure, 'group', grp,
                                                     'value', round(value::numeric, 3),
                                                     'score', round(s::numeric, 3),
                                                     'impact', round(impact::numeric, 4))
                                  ORDER BY rk) FILTER (WHERE rk <= 3 AND impact > 0.0005), '[]') AS top,
               coalesce(jsonb_agg(measure ORDER BY measure) FILTER (WHERE s IS NULL), '[]') AS missing,
               round(coalesce(sum(nominal) FILTER (WHERE s IS NULL), 0)::numeric, 4) AS redistributed
          FROM ranked GROUP BY customer_id
    )
    SELECT NULL::uuid,
           cu.customer_id,
           round(t.overall::numeric, 2)::numeric(3,2),
           round(t.usage::numeric, 2)::numeric(3,2),
           round(t.engagement::numeric, 2)::numeric(3,2),
           round(t.support::numeric, 2)::numeric(3,2),
           round(t.payment::numeric, 2)::numeric(3,2),
           cu.as_of,
           (p.name || ':v' || p.version)::varchar(50),
           CASE WHEN t.overall IS NULL THEN NULL
                WHEN round(t.overall::numeric, 2) < (p.bands ->> 'red')::numeric THEN 'red'
                WHEN round(t.overall::numeric, 2) < (p.bands ->> 'yellow')::numeric THEN 'yellow'
                ELSE 'green' END,
           jsonb_build_object('top', coalesce(d.top, '[]'), 'missing', coalesce(d.missing, '[]'),
                              'redistributed_weight', coalesce(d.redistributed, 0)),
           NULL::text  -- csm: stamped by the table's trigger on insert
      FROM cust cu
      JOIN cs.health_profiles p ON p.id = cu.profile_id
      LEFT JOIN tot t USING (customer_id)
      LEFT JOIN drv d USING (customer_id)
    $q$, fv, coalesce(pop, $p$
        -- sorted populations of the segments' percentile measures: as of the
        -- last full refresh (cs.health_populations), else from the feature store
        SELECT hp.segment, hp.measure, hp.sorted FROM cs.health_populations hp
        UNION ALL
        SELECT c.segment, pr.measure,
               array_agg(f.features[pr.position]::float8 ORDER BY f.features[pr.position]) AS sorted
          FROM (SELECT DISTINCT measure, position FROM prof
                 WHERE method = 'percentile'
                   AND measure NOT IN (SELECT measure FROM cs.health_populations)) pr
         CROSS JOIN cs.customer_features f
          JOIN cs.customers c ON c.id = f.customer_id
         WHERE f.features[pr.position] <> 'NaN'
         GROUP BY 1, 2
$p$))
    USING ids, as_of;
END;
$fn$;

-- Rows of both formulations side by side: every column must be identical (also as
-- text, so that numeric scales show), except that two drivers whose impacts tie
-- exactly in real arithmetic may come in either order: which float8 sum comes out
-- an ulp larger depended on the SQL plan's hash-table order, not on the data.
CREATE FUNCTION health_differences(ids uuid[], as_of timestamptz DEFAULT NULL,
                                   OUT compared bigint, OUT differing bigint)
LANGUAGE sql
AS $$
    WITH o AS (SELECT * FROM sql_compute_health(ids, as_of)),
         n AS (SELECT * FROM cs.compute_health(ids, as_of))
    SELECT count(*),
           count(*) FILTER (WHERE o.customer_id IS NULL OR n.customer_id IS NULL
                               OR (o.id, o.overall_score, o.usage_score, o.engagement_score, o.support_score,
                                   o.payment_score, o.calculated_at, o.version, o.band, o.drivers - 'top')
                                  IS DISTINCT FROM
                                  (n.id, n.overall_score, n.usage_score, n.engagement_score, n.support_score,
                                   n.payment_score, n.calculated_at, n.version, n.band, n.drivers - 'top')
                               OR (o.overall_score, o.usage_score, o.engagement_score, o.support_score,
                                   o.payment_score, o.band, o.version, o.drivers - 'top')::text
                                  IS DISTINCT FROM
                                  (n.overall_score, n.usage_score, n.engagement_score, n.support_score,
                                   n.payment_score, n.band, n.version, n.drivers - 'top')::text
                               OR ((o.drivers -> 'top')::text IS DISTINCT FROM (n.drivers -> 'top')::text
                                   AND jsonb_path_query_array(o.drivers, '$.top[*].impact')::text
                                       IS DISTINCT FROM jsonb_path_query_array(n.drivers, '$.top[*].impact')::text))
      FROM o FULL JOIN n USING (customer_id)
$$;

SELECT cs.generate_demo_data(300, 120, 7) > 0 AS generated;
SELECT cs.refresh_all();

-- all customers from the stored vectors, some of them, and as of a point in time
SELECT * FROM health_differences(NULL);
SELECT * FROM health_differences(ARRAY(SELECT id FROM cs.customers ORDER BY external_id LIMIT 40));
SELECT * FROM health_differences(ARRAY(SELECT id FROM cs.customers ORDER BY external_id LIMIT 60), now() - interval '20 days');
SELECT * FROM health_differences('{}');

-- the stored scores of the refresh are the C ones, and not vacuous
SELECT count(*) AS scored, count(*) FILTER (WHERE overall_score IS NOT NULL) > 0 AS some_overall,
       count(DISTINCT band) > 1 AS several_bands,
       count(*) FILTER (WHERE jsonb_array_length(drivers -> 'top') > 0) > 0 AS some_drivers
  FROM cs.customer_health_scores;

-- odd vectors: missing and NULL values, all NaN, short, shifted bounds, two-dimensional, empty
WITH t AS (SELECT customer_id, row_number() OVER (ORDER BY customer_id) AS k FROM cs.customer_features)
UPDATE cs.customer_features f SET features = CASE t.k
        WHEN 1 THEN array_fill('NaN'::float4, ARRAY[(SELECT count(*)::int FROM cs.feature_catalog)])
        WHEN 2 THEN f.features[1:5]
        WHEN 3 THEN '[3:5]={0.5,2,7}'::float4[]
        WHEN 4 THEN '{{1,2},{3,4}}'::float4[]
        WHEN 5 THEN '{}'::float4[]
        WHEN 6 THEN f.features[1:2] || NULL::float4 || f.features[4:]
        WHEN 7 THEN f.features[1:5] || 'Infinity'::float4 || f.features[7:]
        ELSE f.features END
  FROM t WHERE t.customer_id = f.customer_id AND t.k <= 7;
SELECT * FROM health_differences(NULL);
-- an infinite value is a driver's value as jsonb_build_object writes it: a string
SELECT h.drivers @? '$.top[*] ? (@.value == "Infinity")' AS infinite_value_driver
  FROM cs.customer_features f, cs.compute_health(ARRAY[f.customer_id]) h
 WHERE f.features[6] = 'Infinity';

-- populations: a measure without any stored population is taken from the feature
-- store; a segment without one leaves the measure missing
DELETE FROM cs.health_populations WHERE measure = 'seat_utilisation';
DELETE FROM cs.health_populations WHERE measure = 'active_days_30d' AND segment = 'smb';
SELECT * FROM health_differences(NULL);
SELECT count(*) FILTER (WHERE drivers -> 'missing' ? 'active_days_30d') = count(*) AS smb_miss_active_days
  FROM cs.compute_health(ARRAY(SELECT id FROM cs.customers WHERE segment = 'smb'));

-- customers without a segment use the default profile (and have no population)
UPDATE cs.customers SET segment = NULL
 WHERE id IN (SELECT id FROM cs.customers WHERE segment = 'mid_market' ORDER BY external_id LIMIT 10);
SELECT * FROM health_differences(NULL);

-- a profile with a measure in two groups, zero weights, a non-monotone threshold
-- curve, lower-is-better percentiles and equal band cut-offs
UPDATE cs.health_profiles SET
  weights = '{"usage": {"weight": 0.5, "measures": {"seat_utilisation": 1, "active_days_30d": 0, "usage_trend_30d": 2}},
              "engagement": {"weight": 0.3, "measures": {"seat_utilisation": 1, "last_nps": 1, "meetings_90d": 0.5}},
              "support": {"weight": 0, "measures": {"tickets_30d": 1}},
              "payment": {"weight": 0.2, "measures": {"days_overdue": 1, "late_or_failed_invoices_90d": 1}}}',
  bands = '{"red": 0.6, "yellow": 0.6}',
  normalisation = '{"seat_utilisation": {"method": "percentile", "direction": "lower_is_better"},
                    "active_days_30d": {"method": "percentile", "direction": "higher_is_better"},
                    "usage_trend_30d": {"method": "percentile", "direction": "higher_is_better"},
                    "last_nps": {"method": "thresholds", "thresholds": [0, 5, 10], "scores": [0, 1, 0.25]},
                    "meetings_90d": {"method": "thresholds", "thresholds": [0, 2], "scores": [0, 1]},
                    "tickets_30d": {"method": "thresholds", "thresholds": [0, 4], "scores": [1, 0]},
                    "days_overdue": {"method": "thresholds", "thresholds": [0, 30], "scores": [1, 0]},
                    "late_or_failed_invoices_90d": {"method": "thresholds", "thresholds": [0, 2], "scores": [1, 0]}}'
 WHERE name = 'default';
SELECT * FROM health_differences(NULL);
SELECT * FROM health_differences(ARRAY(SELECT id FROM cs.customers ORDER BY external_id LIMIT 60), now() - interval '20 days');

-- without the enterprise profile its customers fall back to the default one; without
-- a default profile, customers of segments without one get no row
DELETE FROM cs.health_profiles WHERE name = 'enterprise';
SELECT * FROM health_differences(NULL);
DELETE FROM cs.health_profiles WHERE name = 'default';
INSERT INTO cs.health_profiles (name, segment, weights, normalisation) VALUES
 ('smb only', 'smb', '{"support": {"weight": 1, "measures": {"tickets_30d": 1}}}',
  '{"tickets_30d": {"method": "percentile", "direction": "lower_is_better"}}');
SELECT compared = (SELECT count(*) FROM cs.customers WHERE segment = 'smb') AS compared_smb, differing
  FROM health_differences(NULL);
SELECT count(*) = (SELECT count(*) FROM cs.customers WHERE segment = 'smb') AS only_smb_scored
  FROM cs.compute_health(NULL);

-- one vector with every input missing: all weight redistributed, no score
SELECT h.id, h.overall_score, h.support_score, h.band, h.version, h.drivers
  FROM cs.customers c, cs._health_of(c.id, 'smb', NULL, '2026-01-01 00:00+00') h
 WHERE c.external_id = (SELECT min(external_id) FROM cs.customers);

DROP FUNCTION health_differences(uuid[], timestamptz);
DROP FUNCTION sql_compute_health(uuid[], timestamptz);
