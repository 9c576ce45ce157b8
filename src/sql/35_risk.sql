-- Risk: churn (and downgrade, payment) risk from the champion model of each
-- kind, with exact SHAP explanations; point-in-time training sets.

CREATE OR REPLACE FUNCTION cs.present_share(features float4[]) RETURNS float8
    AS 'MODULE_PATHNAME', 'cs_present_share' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.present_share(float4[]) IS 'Share of a feature vector''s values that are present (not NaN); NULL for an empty vector.';

-- Confidence of a prediction in [0,1]: the share of the model's inputs that are
-- present (missing inputs make the prediction lean on defaults) times how far
-- the probability is from the undecided 0.5, mapped to [0.5, 1]:
--   confidence = present_share * (0.5 + |p - 0.5|)
-- A complete vector predicting 0.95 gets 0.95; half-missing at 0.5 gets 0.25.
CREATE OR REPLACE FUNCTION cs.risk_confidence(features float4[], probability float8)
RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT cs.present_share(features) * (0.5 + abs(probability - 0.5))
$$;
COMMENT ON FUNCTION cs.risk_confidence(float4[], float8) IS
    'Confidence 0-1 of a risk prediction: share of present (non-NaN) inputs times (0.5 + distance of the probability from 0.5).';

-- The same, times the freshness of the data sources (cs.data_freshness_factor(),
-- 1 when every monitored source is fresh): a score computed while sources are
-- stale is built on old signals and says so.
--   confidence = present_share * (0.5 + |p - 0.5|) * freshness
CREATE OR REPLACE FUNCTION cs.risk_confidence(features float4[], probability float8, freshness float8)
RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT cs.present_share(features) * (0.5 + abs(probability - 0.5)) * least(greatest(freshness, 0), 1)
$$;
COMMENT ON FUNCTION cs.risk_confidence(float4[], float8, float8) IS
    'Confidence 0-1 of a risk prediction on possibly stale data: share of present inputs times (0.5 + distance of the probability from 0.5) times the freshness factor (clamped to 0-1).';

-- The champion model name of a risk kind, or NULL when none is deployed.
CREATE OR REPLACE FUNCTION cs.champion(kind text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
SELECT (SELECT m.name FROM cs.models m WHERE m.kind = champion.kind AND m.status = 'champion'
         ORDER BY m.objective LIKE 'reg:%', m.created_at DESC LIMIT 1)
$$;
COMMENT ON FUNCTION cs.champion(text) IS 'Name of the champion model of a kind (churn, downgrade, payment, upsell, expansion: its classifier, not the amount model), or NULL.';

-- The champion of a kind, or a clear error when there is none.
CREATE OR REPLACE FUNCTION cs._require_champion(kind text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m text := cs.champion(kind);
BEGIN
    IF m IS NULL THEN
        RAISE EXCEPTION 'no % model is deployed', kind
            USING ERRCODE = 'undefined_object',
                  HINT = 'Train one with cs.train_model or load one with cs.load_model, then cs.deploy_model(name, version).';
    END IF;
    RETURN m;
END;
$$;

-- Churn probability of a customer now, from its current signals.
CREATE OR REPLACE FUNCTION cs.churn_risk(customer_id uuid)
RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
-- the model's inputs by name (cs.feature_names() has the catalog, then the metrics)
AS $$
    SELECT cs.calibrate(m.name, cs.predict(m.name, cs._pick_features(cs.features(churn_risk.customer_id, now()),
                                                                  cs._model_positions(m.name, cs.feature_names()))))
      FROM (SELECT cs._require_champion('churn') AS name) m;
$$;
COMMENT ON FUNCTION cs.churn_risk(uuid) IS
    'Churn probability 0-1 of a customer from its signals now, by the champion churn model, calibrated (cs.calibrate).';

-- The factors behind a customer's churn risk: exact SHAP contributions (log-odds).
CREATE OR REPLACE FUNCTION cs.explain_risk(customer_id uuid, top_k int DEFAULT 5)
RETURNS TABLE (feature text, value float4, contribution float8)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT e.feature, e.value, e.contribution
      FROM (SELECT cs._require_champion('churn') AS name) m
     CROSS JOIN LATERAL cs.explain(m.name, cs._pick_features(cs.features(explain_risk.customer_id, now()),
                                                            cs._model_positions(m.name, cs.feature_names())),
                                   explain_risk.top_k) e;
$$;
COMMENT ON FUNCTION cs.explain_risk(uuid, int) IS
    'Top contributions (SHAP, in log-odds; positive raises the risk) to a customer''s churn risk now: feature, its value, contribution. With every feature, contributions plus the bias sum to the model margin.';

-- Scores the stored feature vectors of the given customers (all when NULL)
-- with the champion of every risk kind that has one, appending to
-- cs.risk_assessments, with the top SHAP factors for risks of at least
-- explain_min (below it, cs.explain_risk explains on demand).  When the kind
-- also has a challenger, the customers of the A/B share
-- (cs.in_challenger_arm) are served the challenger's score instead, and the
-- score of the model not served is kept in cs.model_shadow_scores, so both
-- models are judged on the same customers and prediction times.  Returns the
-- number of assessments written.  Scores are calibrated (cs.calibrate); a
-- full refresh (ids NULL) also recomputes each scoring model's global
-- explanation (cs.compute_global_explanations).
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
    ok    boolean;
    ch_ok boolean;
BEGIN
    FOR m IN SELECT x.id, x.name, x.version, x.kind, x.applicability FROM cs.models x
              WHERE x.status = 'champion' AND x.kind IN ('churn', 'downgrade', 'payment')
              ORDER BY x.kind
    LOOP
        SELECT x.id, x.name, x.version, x.applicability INTO ch FROM cs.models x WHERE x.status = 'challenger' AND x.kind = m.kind;
        share := CASE WHEN FOUND THEN cs._challenger_share() ELSE 0 END;
        -- Whether each model applies to this data: checked again on a full
        -- refresh (one pass over the stored features) and when never checked;
        -- a batch reads the stored verdict.
        ok := CASE WHEN ids IS NULL OR m.applicability IS NULL THEN cs._check_applicability(m.id)
                   ELSE m.applicability ->> 'verdict' END IS DISTINCT FROM 'not applicable';
        IF ch.name IS NOT NULL THEN
            ch_ok := CASE WHEN ids IS NULL OR ch.applicability IS NULL THEN cs._check_applicability(ch.id)
                          ELSE ch.applicability ->> 'verdict' END IS DISTINCT FROM 'not applicable';
        END IF;
        FOREACH arm IN ARRAY ARRAY[false, true] LOOP
            CONTINUE WHEN arm AND ch.name IS NULL;
            -- the champion by name (as before); the challenger by name:vN
            served := CASE WHEN arm THEN ch.name || ':v' || ch.version ELSE m.name END;
            served_label := CASE WHEN arm THEN ch.name || ':v' || ch.version ELSE m.name || ':v' || m.version END;
            INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, risk_factors, confidence_score,
                                             model_version, created_at, model_applicable)
            SELECT f.customer_id, m.kind, round(e.p::numeric, 2),
                   -- exact SHAP (about 35 us a row): stored only where a CSM will look,
                   -- judged on the stored (rounded, calibrated) risk
                   CASE WHEN round(e.p::numeric, 2) >= explain_min THEN cs.explain_json(served, v.x, 5) -> 'factors' END,
                   round(cs.risk_confidence(v.x, e.p, fresh)::numeric, 2), served_label, f.as_of,
                   CASE WHEN arm THEN ch_ok ELSE ok END
              -- the stored vectors through a function: on a Citus cluster they are
              -- read on the shards, and the model runs where the refresh runs (it
              -- reads cs.models, which a query nested in a shard's could not)
              FROM cs._stored_vectors(ids) f
              -- the model's inputs by name, positions once per layout of stored vectors
              JOIN cs._model_layout_positions(served) pos ON pos.layout = coalesce(f.layout, 0)
             CROSS JOIN LATERAL (SELECT cs._pick_features(f.features, pos.positions) AS x) v
             -- the calibrated probability: a CSM reads "35%" literally (src/sql/37_trust.sql)
             CROSS JOIN LATERAL (SELECT cs.calibrate(served, cs.predict(served, v.x)) AS p) e
             WHERE cs.in_challenger_arm(f.customer_id, share) = arm;
            GET DIAGNOSTICS added = ROW_COUNT;
            n := n + added;
            CONTINUE WHEN ch.name IS NULL;
            -- the model not served, in shadow, at the same precision
            other := CASE WHEN arm THEN m.name ELSE ch.name || ':v' || ch.version END;
            other_label := CASE WHEN arm THEN m.name || ':v' || m.version ELSE ch.name || ':v' || ch.version END;
            INSERT INTO cs.model_shadow_scores (customer_id, risk_type, model_version, risk_score, created_at)
            SELECT f.customer_id, m.kind, other_label,
                   round(cs.calibrate(other, cs.predict(other, cs._pick_features(f.features, pos.positions)))::numeric, 2),
                   f.as_of
              FROM cs._stored_vectors(ids) f
              JOIN cs._model_layout_positions(other) pos ON pos.layout = coalesce(f.layout, 0)
             WHERE cs.in_challenger_arm(f.customer_id, share) = arm;
        END LOOP;
        -- a full refresh: what drives each model across the book (cs.global_explanations)
        IF ids IS NULL THEN
            PERFORM cs.compute_global_explanations(m.name, m.version);
            IF ch.name IS NOT NULL THEN
                PERFORM cs.compute_global_explanations(ch.name, ch.version);
            END IF;
        END IF;
    END LOOP;
    RETURN n;
END;
$$;

-- The stored feature vectors of the given customers (all when NULL).  A
-- PL/pgSQL function, so that a query that scores them with a model runs where
-- it was started: on a Citus cluster the vectors come from the shards, and the
-- model, which reads cs.models, is not run inside a shard's query (Citus
-- refuses a query nested there).
CREATE OR REPLACE FUNCTION cs._stored_vectors(ids uuid[])
RETURNS TABLE (customer_id uuid, features float4[], layout int, as_of timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF ids IS NULL THEN
        RETURN QUERY SELECT cf.customer_id, cf.features, cf.layout, cf.as_of FROM cs.customer_features cf;
    ELSE
        RETURN QUERY SELECT cf.customer_id, cf.features, cf.layout, cf.as_of FROM cs.customer_features cf
                      WHERE cf.customer_id = ANY (ids);
    END IF;
END;
$$;
COMMENT ON FUNCTION cs._stored_vectors(uuid[]) IS
    'Internal: the stored feature vectors (cs.customer_features) of the given customers, all when NULL; the scorers read them through it.';

-- When each customer started, from its real history: the earliest of its
-- first contract term, its current contract's start, its first subscription
-- and its first recorded activity (cs.customers.first_seen_at, kept by the
-- load triggers); NULL when none is known.  Never created_at, which is when
-- the row was loaded.  cs.compute_features reads the same facts (point in
-- time) for tenure_days.
CREATE OR REPLACE FUNCTION cs._customer_starts()
RETURNS TABLE (customer_id uuid, started_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT c.id, least(c.first_seen_at, c.contract_start_date::timestamptz,
                       t.first_start::timestamptz, s.first_started::timestamptz)
      FROM cs.customers c
      LEFT JOIN (SELECT ct.customer_id, min(ct.term_start) AS first_start
                   FROM cs.contract_terms ct GROUP BY ct.customer_id) t ON t.customer_id = c.id
      LEFT JOIN (SELECT su.customer_id, min(su.started_at) AS first_started
                   FROM cs.subscriptions su GROUP BY su.customer_id) s ON s.customer_id = c.id
$$;
COMMENT ON FUNCTION cs._customer_starts() IS
    'Internal: per customer, when it started from its real history (first contract term, contract start, first subscription, first activity), NULL when unknown; never created_at.';

-- The outcome of a customer within a horizon after as_of, for each kind a
-- model can predict (everything after as_of + horizon is ignored):
--   churn:     churned_at within (as_of, as_of + horizon];
--   downgrade: still a customer at as_of + horizon (not churned), and on some
--              day within the horizon its MRR (or its seats), from the
--              subscriptions active that day (started_at <= day < ended_at),
--              is at most (1 - cscopilot.downgrade_share) of what it was at as_of;
--   payment:   an invoice (not draft or void) failed or uncollectible with its
--              due date within the horizon, or still unpaid on the day it
--              becomes more than cscopilot.payment_overdue_days overdue
--              (due_date + days + 1), that day within the horizon;
--   expansion: on some day within the horizon its MRR is at least
--              (1 + cscopilot.expansion_share) of its MRR at as_of (> 0);
--              target is the largest MRR gained within the horizon (0 when none).
-- target is NULL for the other kinds.
CREATE OR REPLACE FUNCTION cs._outcome(kind text, customer_id uuid, as_of timestamptz, horizon interval,
                                       OUT label int, OUT target float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    d0      date := as_of::date;
    d1      date := (as_of + horizon)::date;
    churned boolean;
    share   float8;
    late    int;
    m0      numeric;
    s0      numeric;
    mmin    numeric;
    mmax    numeric;
    smin    numeric;
BEGIN
    SELECT c.churned_at IS NOT NULL AND c.churned_at <= as_of + horizon INTO churned
      FROM cs.customers c WHERE c.id = _outcome.customer_id;
    IF kind = 'churn' THEN
        label := churned::int;
        RETURN;
    ELSIF kind = 'payment' THEN
        late := cs.setting('cscopilot.payment_overdue_days')::int;
        label := EXISTS (SELECT 1 FROM cs.invoices i
                          WHERE i.customer_id = _outcome.customer_id AND i.status NOT IN ('draft', 'void')
                            AND ((i.status IN ('failed', 'uncollectible') AND i.due_date > d0 AND i.due_date <= d1)
                                 OR (i.due_date + late + 1 > d0 AND i.due_date + late + 1 <= d1
                                     AND (i.paid_at >= i.due_date + late + 1
                                          OR (i.paid_at IS NULL AND i.status <> 'paid')))))::int;
        RETURN;
    ELSIF kind NOT IN ('downgrade', 'expansion') THEN
        RAISE EXCEPTION 'unknown outcome kind "%"', kind USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Kinds: churn, downgrade, payment, expansion.';
    END IF;
    -- MRR and seats at as_of, then their lowest and highest on the days they
    -- change within the horizon (they hold between changes)
    WITH s AS (
        SELECT su.mrr, su.seats, su.started_at, su.ended_at FROM cs.subscriptions su
         WHERE su.customer_id = _outcome.customer_id AND su.started_at <= d1
    ), pts AS (
        SELECT d0 AS x
        UNION SELECT s.started_at FROM s WHERE s.started_at > d0
        UNION SELECT s.ended_at FROM s WHERE s.ended_at > d0 AND s.ended_at <= d1
    ), lv AS (
        SELECT pts.x,
               coalesce(sum(s.mrr) FILTER (WHERE s.started_at <= pts.x AND (s.ended_at IS NULL OR s.ended_at > pts.x)), 0) AS m,
               coalesce(sum(s.seats) FILTER (WHERE s.started_at <= pts.x AND (s.ended_at IS NULL OR s.ended_at > pts.x)), 0) AS st
          FROM pts LEFT JOIN s ON true
         GROUP BY pts.x
    )
    SELECT max(lv.m) FILTER (WHERE lv.x = d0), max(lv.st) FILTER (WHERE lv.x = d0),
           min(lv.m), max(lv.m), min(lv.st)
      INTO m0, s0, mmin, mmax, smin
      FROM lv;
    IF kind = 'downgrade' THEN
        share := cs.setting('cscopilot.downgrade_share')::float8;
        label := (NOT coalesce(churned, false)
                  AND ((m0 > 0 AND mmin <= m0 * (1 - share)::numeric) OR (s0 > 0 AND smin <= s0 * (1 - share)::numeric)))::int;
    ELSE
        share := cs.setting('cscopilot.expansion_share')::float8;
        label := (m0 > 0 AND mmax >= m0 * (1 + share)::numeric)::int;
        target := greatest(coalesce(mmax - m0, 0), 0)::float8;
    END IF;
END;
$$;
COMMENT ON FUNCTION cs._outcome(text, uuid, timestamptz, interval) IS
    'Internal: the outcome (label 0/1, and target: the MRR gained for expansion, else NULL) of a customer within horizon after as_of, for kind churn, downgrade (MRR or seats down by cscopilot.downgrade_share while staying a customer), payment (an invoice failed or more than cscopilot.payment_overdue_days overdue) or expansion (MRR up by cscopilot.expansion_share). Nothing after as_of + horizon counts.';

-- The definition of a kind's label with the settings in force, for model
-- cards and training records.
CREATE OR REPLACE FUNCTION cs.label_definition(kind text, horizon interval DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN jsonb_build_object('kind', kind) || CASE
        WHEN horizon IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('horizon', horizon::text) END || CASE kind
        WHEN 'churn' THEN jsonb_build_object('definition', 'churned (cs.customers.churned_at) within the horizon')
        WHEN 'downgrade' THEN jsonb_build_object(
            'definition', 'still a customer at the end of the horizon, and on some day within it MRR or seats (active cs.subscriptions) at most (1 - downgrade_share) of their value at the observation date',
            'downgrade_share', cs.setting('cscopilot.downgrade_share')::float8)
        WHEN 'payment' THEN jsonb_build_object(
            'definition', 'an invoice (cs.invoices, not draft or void) failed or uncollectible with its due date within the horizon, or still unpaid when it becomes more than payment_overdue_days overdue, that day within the horizon',
            'payment_overdue_days', cs.setting('cscopilot.payment_overdue_days')::int)
        WHEN 'expansion' THEN jsonb_build_object(
            'definition', 'on some day within the horizon MRR (active cs.subscriptions) at least (1 + expansion_share) of a positive MRR at the observation date; target: the largest MRR gained',
            'expansion_share', cs.setting('cscopilot.expansion_share')::float8)
        ELSE NULL END;
END;
$$;
COMMENT ON FUNCTION cs.label_definition(text, interval) IS
    'The definition of the labels of an outcome kind (churn, downgrade, payment, expansion) with the settings in force (cscopilot.downgrade_share, payment_overdue_days, expansion_share) and the horizon when given, as jsonb; NULL for an unknown kind. Written into model cards.';

-- The outcome kind a model kind is trained and judged on: upsell models
-- predict expansion.
CREATE OR REPLACE FUNCTION cs.outcome_kind(model_kind text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE model_kind WHEN 'upsell' THEN 'expansion' WHEN 'expansion' THEN 'expansion'
                           WHEN 'churn' THEN 'churn' WHEN 'downgrade' THEN 'downgrade' WHEN 'payment' THEN 'payment' END
$$;
COMMENT ON FUNCTION cs.outcome_kind(text) IS
    'The outcome a model kind is trained and judged on: churn, downgrade, payment and expansion their own, upsell expansion; NULL for custom models.';

-- Labelled point-in-time training rows: for each observation date, every
-- customer that was a customer then (started by then, from its real history:
-- cs._customer_starts) and had not churned yet, its features as of that date,
-- and the label of the kind (cs._outcome) within the horizon after it.
-- Customers are the group key, so a split by group holds out whole customers.
CREATE OR REPLACE FUNCTION cs.build_training_set(observation_dates date[], horizon interval DEFAULT '90 days',
                                                 kind text DEFAULT 'churn')
RETURNS TABLE (customer_id uuid, as_of timestamptz, features float4[], label int, group_key text, target float8)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    d date;
    starts_ids uuid[];
    starts_at timestamptz[];
    unknown bigint;
    k text := cs.outcome_kind(kind);
BEGIN
    IF observation_dates IS NULL OR cardinality(observation_dates) = 0 THEN
        RAISE EXCEPTION 'observation_dates must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF horizon IS NULL OR horizon <= '0' THEN
        RAISE EXCEPTION 'horizon must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(observation_dates, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'observation dates must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind = 'expansion' THEN
        k := 'expansion';
    ELSIF k IS NULL THEN
        RAISE EXCEPTION 'unknown label kind "%"', kind USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Kinds: churn, downgrade, payment, expansion (upsell models train on expansion).';
    END IF;
    SELECT array_agg(s.customer_id ORDER BY s.customer_id) FILTER (WHERE s.started_at IS NOT NULL),
           array_agg(s.started_at ORDER BY s.customer_id) FILTER (WHERE s.started_at IS NOT NULL),
           count(*) FILTER (WHERE s.started_at IS NULL)
      INTO starts_ids, starts_at, unknown
      FROM cs._customer_starts() s;
    IF unknown > 0 THEN
        RAISE NOTICE 'customers left out for want of a known start: %', unknown
            USING DETAIL = 'A customer is in a training set from its start: its first contract term, contract start, subscription or recorded activity. created_at, the time the row was loaded, is not used.',
                  HINT = 'Load contract terms into cs.contract_terms or set cs.customers.contract_start_date for these customers.';
    END IF;
    FOREACH d IN ARRAY observation_dates LOOP
        IF k = 'churn' THEN
            RETURN QUERY
            SELECT f.customer_id, d::timestamptz, f.features,
                   (c.churned_at IS NOT NULL AND c.churned_at <= d + horizon)::int,
                   f.customer_id::text, NULL::float8
              FROM cs.compute_features(
                       ARRAY(SELECT s.id FROM unnest(starts_ids, starts_at) AS s(id, started_at)
                              JOIN cs.customers c2 ON c2.id = s.id
                             WHERE s.started_at <= d::timestamptz
                               AND (c2.churned_at IS NULL OR c2.churned_at > d)), d::timestamptz) f
              JOIN cs.customers c ON c.id = f.customer_id;
        ELSE
            RETURN QUERY
            SELECT f.customer_id, d::timestamptz, f.features, o.label, f.customer_id::text, o.target
              FROM cs.compute_features(
                       ARRAY(SELECT s.id FROM unnest(starts_ids, starts_at) AS s(id, started_at)
                              JOIN cs.customers c2 ON c2.id = s.id
                             WHERE s.started_at <= d::timestamptz
                               AND (c2.churned_at IS NULL OR c2.churned_at > d)), d::timestamptz) f
             CROSS JOIN LATERAL cs._outcome(k, f.customer_id, d::timestamptz, horizon) o;
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs.build_training_set(date[], interval, text) IS
    'Point-in-time training rows: for each observation date, customers active then (started by then from their real history, not created_at; a NOTICE counts those without any known start), their features as of that date, and the label of kind within the horizon after it: churn (the default), downgrade, payment or expansion (upsell: expansion), defined by cs.label_definition and the settings cscopilot.downgrade_share, payment_overdue_days, expansion_share; target is the MRR gained for expansion, else NULL. group_key is the customer (hold out whole customers).';
COMMENT ON FUNCTION cs._require_champion(text) IS 'Internal: the champion model name of a kind, or an error saying how to deploy one.';
COMMENT ON FUNCTION cs._score_risk(uuid[], float8) IS 'Internal: appends risk assessments (score, confidence lowered by stale sources, model version, and the top SHAP factors when the risk is at least explain_min) for the stored feature vectors of the given customers (all when NULL) with every deployed risk champion (inputs picked from each stored vector by the model''s feature names), or its challenger for customers of the A/B share; the score of the model not served goes to cs.model_shadow_scores. A score from a model that does not apply to this data (cs.model_applicability, checked on full refreshes) is written with model_applicable false. Returns the number written.';
