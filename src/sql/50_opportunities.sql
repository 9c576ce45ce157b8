-- Opportunities: upsell propensity, cross-sell by co-occurrence lift, expected
-- MRR uplift and product adoption, regenerated for a set of customers by
-- cs.refresh_opportunities() (called at the end of cs._refresh_customers).

-- The feature vector as a JSON object keyed by feature name; NaN (missing) becomes null.
CREATE OR REPLACE FUNCTION cs.feature_map(features float4[]) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'cs_feature_map' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs.feature_map(float4[]) IS
    'The feature vector as a JSON object keyed by cs.feature_catalog name; missing (NaN) values are JSON null.';

-- Upsell scoring constants are documented in the function comment; they are
-- plain numbers here rather than settings because the formula is the contract.
-- Statistics over the whole customer base that opportunities use: cross-sell
-- lift between products and the adoption catalogue.  Taken by full refreshes,
-- the first step of the worker's full rescore, and whenever missing; partial
-- refreshes reuse them, which would otherwise rescan every subscription and
-- every feature vector to score a handful of customers.
CREATE OR REPLACE FUNCTION cs._refresh_opportunity_stats() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    PERFORM cs._refresh_lock();
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

-- Regenerates opportunities: the statistics of the whole population first
-- when asked for everyone (or when there are none yet), under the refresh lock
-- like every writer of results.
CREATE OR REPLACE FUNCTION cs.refresh_opportunities(ids uuid[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    PERFORM cs._refresh_lock();
    IF ids IS NULL THEN
        PERFORM cs._refresh_opportunity_stats();
    END IF;
    RETURN cs._score_opportunities(ids);
END;
$$;

-- The customers an expansion opportunity is scored for (all when ids is NULL):
-- not churned, with a stored vector, and no expansion opportunity a CSM has in
-- progress.  A PL/pgSQL function, so that the models scoring them run where
-- the refresh runs: on a Citus cluster these rows come from the shards, and
-- cs.predict, which reads cs.models, is not run inside a shard's query.
CREATE OR REPLACE FUNCTION cs._expansion_candidates(ids uuid[])
RETURNS TABLE (customer_id uuid, mrr numeric, features float4[], layout int)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT c.id, coalesce(c.mrr, 0)::numeric, cf.features, cf.layout
          FROM cs.customers c
          JOIN cs.customer_features cf ON cf.customer_id = c.id
         WHERE c.churned_at IS NULL AND %s
           AND NOT EXISTS (SELECT 1 FROM cs.opportunities o
                            WHERE o.customer_id = c.id %s AND o.kind = 'expansion'
                              AND o.product IS NULL AND o.status = 'in_progress')$q$,
        CASE WHEN ids IS NULL THEN 'true' ELSE 'c.id = ANY ($1)' END,
        CASE WHEN ids IS NULL THEN '' ELSE 'AND o.customer_id = ANY ($1)' END)
    USING ids;
END;
$$;
COMMENT ON FUNCTION cs._expansion_candidates(uuid[]) IS
    'Internal: the customers (all when NULL) the expansion models score: not churned, with a stored feature vector, without an expansion opportunity in progress; with their MRR and vector.';

-- Regenerates the open system opportunities of the given customers (all when
-- NULL) against the statistics of the last full refresh (taken now when there
-- are none); the refresh pipeline's stage.
CREATE OR REPLACE FUNCTION cs._score_opportunities(ids uuid[])
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
    q         text;
    ex        record;
    amt       record;
    ex_ok     boolean := false;
    amt_ok    boolean := false;
    ex_args   jsonb;
    added     bigint;
BEGIN
    -- Open system opportunities are regenerated; anything a CSM touched stays.
    DELETE FROM cs.opportunities o
     WHERE o.source = 'system' AND o.status = 'open'
       AND (ids IS NULL OR o.customer_id = ANY (ids));

    -- The model path: a champion model of kind upsell scored by cs.predict.
    -- Otherwise the documented formula.
    SELECT m.name INTO mname FROM cs.models m WHERE m.kind = 'upsell' AND m.status = 'champion';
    use_model := FOUND;

    -- The expansion champions: the classifier (probability of an expansion)
    -- and the amount model (reg: objective, the MRR increase), each used only
    -- while it applies to this data (checked again on a full refresh and when
    -- never checked, like the risk models; a batch reads the stored verdict).
    SELECT m.id, m.name, m.version, m.applicability INTO ex FROM cs.models m
     WHERE m.kind = 'expansion' AND m.status = 'champion' AND m.objective NOT LIKE 'reg:%';
    IF FOUND THEN
        ex_ok := (CASE WHEN ids IS NULL OR ex.applicability IS NULL THEN cs._check_applicability(ex.id)
                       ELSE ex.applicability ->> 'verdict' END) IS DISTINCT FROM 'not applicable';
    END IF;
    IF ex_ok THEN
        SELECT m.id, m.name, m.version, m.applicability INTO amt FROM cs.models m
         WHERE m.kind = 'expansion' AND m.status = 'champion' AND m.objective LIKE 'reg:%';
        IF FOUND THEN
            amt_ok := (CASE WHEN ids IS NULL OR amt.applicability IS NULL THEN cs._check_applicability(amt.id)
                            ELSE amt.applicability ->> 'verdict' END) IS DISTINCT FROM 'not applicable';
        END IF;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM cs.cross_sell_stats) OR NOT EXISTS (SELECT 1 FROM cs.adoption_stats) THEN
        PERFORM cs._refresh_opportunity_stats();
    END IF;

    -- Dynamic only to call cs.predict when a model is deployed and to filter
    -- by customer when given; no user text is interpolated.
    q := format($q$
    WITH base AS (
        SELECT c.id AS customer_id, c.mrr, c.seats_licensed AS seats, cf.features AS f, hh.health,
               %s AS model_score
          FROM cs.customers c
          JOIN cs.customer_features cf ON cf.customer_id = c.id%s
          -- the latest health, followed by customer_id alone: naming the
          -- customers here too made each index scan sort the whole list again,
          -- once per customer and partition (on a cluster, where this runs
          -- for a shard group of 3,000 customers: 5.0 s against 0.1 s)
          LEFT JOIN LATERAL (SELECT h.overall_score AS health FROM cs.customer_health_scores h
                              WHERE h.customer_id = c.id ORDER BY h.calculated_at DESC LIMIT 1) hh ON true
         WHERE c.churned_at IS NULL AND %s
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
          -- the formula gives way to a deployed (and applicable) expansion model
          FROM ups2 WHERE score >= 0.5 AND extra_seats > 0 AND (model_score IS NOT NULL OR NOT %s)
    ), active AS (
        -- the active products of each customer being refreshed, as one array:
        -- the candidates below then need no join and no sort per product
        SELECT s.customer_id, array_agg(DISTINCT s.product) AS products
          FROM cs.subscriptions s
          JOIN b ON b.customer_id = s.customer_id
         WHERE /*s*/ s.started_at <= current_date AND (s.ended_at IS NULL OR s.ended_at > current_date)
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
                        WHERE o.customer_id = a.customer_id AND o.kind = a.kind /*o*/
                          AND o.product IS NOT DISTINCT FROM a.product AND o.status = 'in_progress')
    $q$, CASE WHEN use_model THEN 'cs.predict_calibrated($2, cs._pick_features(cf.features, pos.positions))::float8' ELSE 'NULL::float8' END,
       -- the model's inputs by name: positions once per layout of stored vectors
       CASE WHEN use_model THEN ' JOIN cs._model_layout_positions($2) pos ON pos.layout = coalesce(cf.layout, 0)' ELSE '' END,
       CASE WHEN ids IS NULL THEN 'true' ELSE 'c.id = ANY ($1)' END,
       CASE WHEN ex_ok THEN 'true' ELSE 'false' END);
    -- Given customers: every table of the query names them, so that on a
    -- Citus cluster the whole statement goes to their shard.
    IF ids IS NOT NULL THEN
        q := replace(replace(q, '/*s*/', 's.customer_id = ANY ($1) AND'),
                     '/*o*/', 'AND o.customer_id = ANY ($1)');
    END IF;
    -- (on a Citus cluster with the parameters' values: Citus cannot plan a
    -- kept generic plan of a query on distributed tables)
    IF ids IS NULL OR cs._is_distributed() THEN
        EXECUTE q USING ids, mname;
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
        -- given customers: planning this took longer than running it for a few
        -- customers, so the same text runs from a generic plan kept for the session
        n := cs._exec_kept_plan(q, ids, mname);
    END IF;

    -- expansion: the classifier's probability as the score (raised from
    -- cscopilot.expansion_min_score), its top SHAP factors in the reasons, and
    -- as expected MRR the amount model's prediction (never below 0), or without
    -- one probability x MRR x cscopilot.expansion_share.
    IF ex_ok THEN
        ex_args := jsonb_build_object('model', ex.name, 'label', ex.name || ':v' || ex.version,
                                      'amount', CASE WHEN amt_ok THEN amt.name END,
                                      'amount_label', CASE WHEN amt_ok THEN amt.name || ':v' || amt.version END,
                                      'share', cs.setting('cscopilot.expansion_share')::float8,
                                      'min_score', cs.setting('cscopilot.expansion_min_score')::float8);
        -- dynamic only to join the amount model when one is deployed and to
        -- filter by customer when given; no user text is interpolated
        q := format($q$
        WITH e AS (
            SELECT cf.customer_id, cf.mrr, v.x,
                   -- the calibrated probability, as for the risks a CSM reads
                   cs.predict_calibrated($2 ->> 'model', v.x) AS p, %s AS amount
              FROM cs._expansion_candidates($1) cf
              JOIN cs._model_layout_positions($2 ->> 'model') pos ON pos.layout = coalesce(cf.layout, 0)%s
             CROSS JOIN LATERAL (SELECT cs._pick_features(cf.features, pos.positions) AS x) v
        ), m AS (
            SELECT e.*, round(e.p::numeric, 3) AS score,
                   round(CASE WHEN e.amount IS NOT NULL THEN greatest(e.amount, 0)::numeric
                              ELSE round(e.p::numeric, 3) * e.mrr * ($2 ->> 'share')::numeric END, 2) AS expected
              FROM e WHERE e.p >= ($2 ->> 'min_score')::float8
        )
        INSERT INTO cs.opportunities (customer_id, kind, score, expected_mrr, product, reasons, status, source)
        SELECT m.customer_id, 'expansion', m.score, m.expected, NULL,
               jsonb_build_object('probability', m.score, 'expected_mrr', m.expected,
                                  'scored_by', 'model ' || ($2 ->> 'label'),
                                  'amount_by', CASE WHEN m.amount IS NOT NULL THEN 'model ' || ($2 ->> 'amount_label')
                                                    ELSE 'probability x mrr x expansion_share' END,
                                  'mrr', m.mrr, 'expansion_share', ($2 ->> 'share')::float8,
                                  -- exact SHAP of the classifier (log-odds; positive raises the probability)
                                  'factors', cs.explain_json($2 ->> 'model', m.x, 5) -> 'factors'),
               'open', 'system'
          FROM m
        $q$,
           CASE WHEN amt_ok THEN 'cs.predict($2 ->> ''amount'', cs._pick_features(cf.features, apos.positions))'
                ELSE 'NULL::float8' END,
           CASE WHEN amt_ok
                THEN ' JOIN cs._model_layout_positions($2 ->> ''amount'') apos ON apos.layout = coalesce(cf.layout, 0)'
                ELSE '' END);
        IF ids IS NULL OR cs._is_distributed() THEN
            EXECUTE q USING ids, ex_args;
            GET DIAGNOSTICS added = ROW_COUNT;
        ELSE
            added := cs._exec_kept_plan(q, ids, ex_args);
        END IF;
        n := n + added;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._score_opportunities(uuid[]) IS
    'Internal: the opportunities stage of the refresh pipeline (see cs.refresh_opportunities), against the statistics of the last full refresh.';
COMMENT ON FUNCTION cs.refresh_opportunities(uuid[]) IS
    'Regenerates the open system opportunities of the given customers (all when NULL) from the feature store; opportunities a CSM moved on, or entered, are kept. '
    'upsell: score = 0.5 x clamp((seat_utilisation - 0.7) / 0.5) + 0.25 x clamp(usage_trend_30d / 0.5) + 0.25 x health (0.5 when unknown), '
    'or the champion upsell model through cs.predict when one is deployed; raised when score >= 0.5 and extra seats > 0, where '
    'extra seats = ceil(1.2 x active_users_30d) - seats_licensed and expected_mrr = extra seats x (mrr / seats_licensed) x score. '
    'cross_sell: the product the customer lacks with the best lift(B|A) = P(B|A) / P(B) over active subscriptions, A a product it has, '
    'with at least 2 customers having both and P(B|A) >= 0.25; score = P(B|A), expected_mrr = mean MRR of B x score; lift and mean MRR are taken by full refreshes into cs.cross_sell_stats and reused by partial ones. '
    'adoption: feature_breadth_30d over the catalogue (the largest breadth in the feature store, at least 3) below 0.5; score = 1 - adoption. '
    'expansion, from the champion expansion classifier (kind expansion, not a reg: objective) while it applies to this data (cs.model_applicability): score = its probability, raised when at least cscopilot.expansion_min_score; '
    'expected_mrr = the prediction of the champion expansion amount model (kind expansion, reg: objective; at least 0) when one is deployed and applies, else score x mrr x cscopilot.expansion_share; '
    'reasons hold the top 5 SHAP factors of the classifier (factors), the probability and what gave the amount (amount_by). While an expansion classifier scores, the upsell formula raises no upsell (an upsell model still does). '
    'Returns the number of opportunities written.';

CREATE OR REPLACE VIEW cs.opportunity_pipeline WITH (security_invoker = true) AS
SELECT o.id AS opportunity_id,
       o.customer_id,
       c.name,
       c.segment,
       c.csm,
       o.kind,
       o.product,
       o.score,
       o.expected_mrr,
       o.status,
       o.source,
       o.reasons,
       h.band,
       o.created_at
  FROM cs.opportunities o
  JOIN cs.customers c ON c.id = o.customer_id
  LEFT JOIN LATERAL (SELECT s.band FROM cs.customer_health_scores s WHERE s.customer_id = o.customer_id
                      ORDER BY s.calculated_at DESC LIMIT 1) h ON true
 WHERE o.status IN ('open', 'in_progress') AND c.churned_at IS NULL
 ORDER BY o.expected_mrr DESC NULLS LAST, o.score DESC, o.id;
COMMENT ON VIEW cs.opportunity_pipeline IS 'Open and in-progress opportunities of active customers, largest expected MRR first.';
COMMENT ON COLUMN cs.opportunity_pipeline.opportunity_id IS 'The opportunity.';
COMMENT ON COLUMN cs.opportunity_pipeline.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.opportunity_pipeline.name IS 'Customer name.';
COMMENT ON COLUMN cs.opportunity_pipeline.segment IS 'Customer segment.';
COMMENT ON COLUMN cs.opportunity_pipeline.csm IS 'Owning CSM.';
COMMENT ON COLUMN cs.opportunity_pipeline.kind IS 'upsell, cross_sell, expansion or adoption.';
COMMENT ON COLUMN cs.opportunity_pipeline.product IS 'Product to offer (cross-sell).';
COMMENT ON COLUMN cs.opportunity_pipeline.score IS 'Propensity 0-1.';
COMMENT ON COLUMN cs.opportunity_pipeline.expected_mrr IS 'Expected MRR uplift.';
COMMENT ON COLUMN cs.opportunity_pipeline.status IS 'open or in_progress.';
COMMENT ON COLUMN cs.opportunity_pipeline.source IS 'system or csm.';
COMMENT ON COLUMN cs.opportunity_pipeline.reasons IS 'Why the opportunity was raised.';
COMMENT ON COLUMN cs.opportunity_pipeline.band IS 'Latest health band of the customer.';
COMMENT ON COLUMN cs.opportunity_pipeline.created_at IS 'When the opportunity was raised.';
