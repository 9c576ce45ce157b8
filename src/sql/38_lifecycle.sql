-- Model lifecycle: outcome-based performance, calibration, input drift,
-- champion and challenger (shadow or A/B), the promotion policy, scheduled
-- retraining and model cards.  Reference distributions are computed in C
-- (src/lifecycle.c); everything else is SQL.
--
-- Outcomes.  A prediction (a row of cs.risk_assessments, or of
-- cs.model_shadow_scores for the model not served) made at time t is judged
-- once t is at least cscopilot.outcome_horizon days old, on the outcome of its
-- own kind (cs._outcome): a churn model on churn (cs.customers.churned_at)
-- within the horizon after t, a downgrade model on a downgrade, a payment
-- model on a failed or overdue invoice.  Predictions for customers that had
-- churned by t are left out.

------------------------------------------------------------------------------
-- Settings (read with cs.setting(): src/settings.c defines them and their defaults)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs._outcome_horizon() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT make_interval(days => cs.setting('cscopilot.outcome_horizon')::int)
$$;
COMMENT ON FUNCTION cs._outcome_horizon() IS 'The cscopilot.outcome_horizon setting as an interval.';

CREATE OR REPLACE FUNCTION cs._challenger_share() RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT cs.setting('cscopilot.challenger_share')::float8
$$;
COMMENT ON FUNCTION cs._challenger_share() IS 'The cscopilot.challenger_share setting.';

CREATE OR REPLACE FUNCTION cs._promotion_auc_margin() RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT cs.setting('cscopilot.promotion_auc_margin')::float8
$$;
COMMENT ON FUNCTION cs._promotion_auc_margin() IS 'The cscopilot.promotion_auc_margin setting.';

CREATE OR REPLACE FUNCTION cs._promotion_min_outcomes() RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT cs.setting('cscopilot.promotion_min_outcomes')::int
$$;
COMMENT ON FUNCTION cs._promotion_min_outcomes() IS 'The cscopilot.promotion_min_outcomes setting.';

CREATE OR REPLACE FUNCTION cs._admin_role() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT coalesce(nullif(cs.setting('cscopilot.admin_role'), ''),
                (SELECT n.nspowner::regrole::text FROM pg_catalog.pg_namespace n WHERE n.nspname = 'cs'))
$$;
COMMENT ON FUNCTION cs._admin_role() IS 'The role model alerts are assigned to: cscopilot.admin_role, else the owner of schema cs.';

-- The probability at which a churn risk raises an alert: the threshold of the
-- churn_risk_high rule when it is a plain churn_risk >= x (or > x) condition,
-- else 0.6 (that rule's shipped threshold).  Used for precision and recall.
CREATE OR REPLACE FUNCTION cs.risk_alert_threshold() RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
SELECT coalesce((SELECT (r.condition ->> 'value')::float8 FROM cs.alert_rules r
                  WHERE r.name = 'churn_risk_high' AND r.enabled AND r.condition ->> 'score' = 'churn_risk'
                    AND r.condition ->> 'op' IN ('>=', '>')), 0.6)
$$;
COMMENT ON FUNCTION cs.risk_alert_threshold() IS
    'Risk at which an alert is raised, for precision and recall: the value of the churn_risk_high rule when its condition is churn_risk >= value (or >), else 0.6.';

------------------------------------------------------------------------------
-- Champion and challenger
------------------------------------------------------------------------------

-- Whether a customer is in the challenger arm of an A/B split of the given
-- share: a hash of its id, the same on every run, so a customer keeps its arm.
CREATE OR REPLACE FUNCTION cs.in_challenger_arm(customer_id uuid, share float8) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT share > 0 AND (hashtextextended(customer_id::text, 0) & 1073741823) / 1073741824.0 < share
$$;
COMMENT ON FUNCTION cs.in_challenger_arm(uuid, float8) IS
    'Whether the customer is served by the challenger under an A/B split giving it share (0-1) of the customers: a deterministic hash of the customer id.';

-- Makes a model version the challenger of its kind (custom: of its name); an
-- earlier challenger is retired.
CREATE OR REPLACE FUNCTION cs.set_challenger(name text, version int) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m cs.models;
BEGIN
    SELECT * INTO m FROM cs.models AS x WHERE x.name = set_challenger.name AND x.version = set_challenger.version
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object', HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    IF m.status = 'champion' THEN
        RAISE EXCEPTION 'model "%" version % is the champion', name, version
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A challenger is judged against the champion: pick another version.';
    END IF;
    -- kind expansion: one challenger per role (classifier; amount model, reg: objective)
    UPDATE cs.models AS x SET status = 'retired'
     WHERE x.status = 'challenger' AND x.id <> m.id
       AND ((m.kind <> 'custom' AND x.kind = m.kind
             AND (m.kind <> 'expansion' OR (x.objective LIKE 'reg:%') = (m.objective LIKE 'reg:%')))
            OR (m.kind = 'custom' AND x.kind = 'custom' AND x.name = m.name));
    UPDATE cs.models AS x SET status = 'challenger' WHERE x.id = m.id;
END;
$$;
COMMENT ON FUNCTION cs.set_challenger(text, int) IS
    'Makes a model version the challenger of its kind: it is scored beside the champion (in shadow, or served to the cscopilot.challenger_share of customers) and judged on the same outcomes. An earlier challenger is retired; cs.deploy_model promotes.';

------------------------------------------------------------------------------
-- Outcome metrics
------------------------------------------------------------------------------

-- Binary classification metrics of probabilities p against outcomes y (0/1):
--   auc: rank-sum (Mann-Whitney) AUC, tied scores sharing their mean rank;
--   log_loss: mean of -(y ln p + (1-y) ln(1-p)), p clamped to [1e-15, 1-1e-15];
--   brier: mean of (p - y)^2;
--   precision and recall of p >= threshold;
--   lift_top_decile: outcome rate among the top decile (scores at least the
--     ceil(n/10)-th highest score, ties included) over the overall rate.
CREATE OR REPLACE FUNCTION cs.classification_metrics(p float8[], y int[], threshold float8,
    OUT n bigint, OUT positives bigint, OUT auc float8, OUT log_loss float8, OUT brier float8,
    OUT "precision" float8, OUT recall float8, OUT lift_top_decile float8)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
WITH d AS (
    SELECT u.p, u.y FROM unnest(p, y) AS u(p, y) WHERE u.p IS NOT NULL AND u.y IS NOT NULL
), r AS (
    SELECT d.p, d.y,
           (rank() OVER (ORDER BY d.p) + (count(*) OVER (PARTITION BY d.p) - 1) / 2.0)::float8 AS midrank,
           least(greatest(d.p, 1e-15), 1 - 1e-15) AS pc
      FROM d
), a AS (
    SELECT count(*) AS n, coalesce(sum(r.y), 0) AS pos,
           sum(r.midrank) FILTER (WHERE r.y = 1) AS rank_sum,
           avg(-(r.y * ln(r.pc) + (1 - r.y) * ln(1 - r.pc))) AS ll,
           avg((r.p - r.y) ^ 2) AS br,
           count(*) FILTER (WHERE r.p >= threshold) AS flagged,
           count(*) FILTER (WHERE r.p >= threshold AND r.y = 1) AS tp
      FROM r
), cut AS (
    SELECT d.p FROM d ORDER BY d.p DESC
    OFFSET greatest(ceil((SELECT a.n FROM a) / 10.0)::bigint - 1, 0) LIMIT 1
), top AS (
    SELECT avg(d.y)::float8 AS rate FROM d WHERE d.p >= (SELECT cut.p FROM cut)
)
SELECT a.n, a.pos,
       CASE WHEN a.pos > 0 AND a.pos < a.n
            THEN (a.rank_sum - a.pos * (a.pos + 1) / 2.0) / (a.pos::float8 * (a.n - a.pos)) END,
       a.ll, a.br,
       CASE WHEN a.flagged > 0 THEN a.tp::float8 / a.flagged END,
       CASE WHEN a.pos > 0 THEN a.tp::float8 / a.pos END,
       CASE WHEN a.pos > 0 THEN (SELECT top.rate FROM top) / (a.pos::float8 / a.n) END
  FROM a
$$;
COMMENT ON FUNCTION cs.classification_metrics(float8[], int[], float8) IS
    'Metrics of probabilities p against 0/1 outcomes y: n, positives, AUC (ties share their mean rank; NULL with one class), log loss (p clamped to 1e-15), Brier score, precision and recall of p >= threshold, and lift of the top decile (scores at least the ceil(n/10)-th highest).';

-- Every judged prediction of every registered model: served and shadow scores
-- with their outcome; one row per model, customer and prediction time.
CREATE OR REPLACE VIEW cs.model_outcomes WITH (security_invoker = true) AS
WITH scores AS (
    SELECT ra.model_version, ra.risk_type, ra.customer_id, ra.created_at, ra.risk_score, 'served' AS scored
      FROM cs.risk_assessments ra
     WHERE ra.created_at <= now() - cs._outcome_horizon()
    UNION ALL
    SELECT s.model_version, s.risk_type, s.customer_id, s.created_at, s.risk_score, 'shadow'
      FROM cs.model_shadow_scores s
     WHERE s.created_at <= now() - cs._outcome_horizon()
), judged AS MATERIALIZED (
    -- the predictions with their customer's churn (on a Citus cluster read
    -- on the shards; the outcomes of the other kinds, which read the
    -- customer's history, are taken below, where the query began)
    SELECT DISTINCT ON (m.id, s.customer_id, s.created_at)
           m.id AS model_id, m.name, m.version, m.kind, s.customer_id, s.created_at, s.risk_score::float8 AS risk_score,
           (c.churned_at IS NOT NULL AND c.churned_at <= s.created_at + cs._outcome_horizon())::int AS churned,
           s.scored
      FROM scores s
      JOIN cs.models m ON m.name || ':v' || m.version = s.model_version AND m.kind = s.risk_type
      JOIN cs.customers c ON c.id = s.customer_id
     WHERE c.churned_at IS NULL OR c.churned_at > s.created_at
     ORDER BY m.id, s.customer_id, s.created_at, s.scored
)
SELECT j.name, j.version, j.kind, j.customer_id, j.created_at, j.risk_score, j.churned, j.scored,
       CASE WHEN j.kind = 'churn' THEN j.churned
            ELSE (cs._outcome(cs.outcome_kind(j.kind), j.customer_id, j.created_at, cs._outcome_horizon())).label END AS outcome
  FROM judged j
 ORDER BY j.model_id, j.customer_id, j.created_at, j.scored;
COMMENT ON VIEW cs.model_outcomes IS 'Predictions old enough to be judged (made at least cscopilot.outcome_horizon ago, customer not churned yet then), served or shadow, with their churn and the outcome of the model''s own kind.';
COMMENT ON COLUMN cs.model_outcomes.name IS 'Model name.';
COMMENT ON COLUMN cs.model_outcomes.version IS 'Model version.';
COMMENT ON COLUMN cs.model_outcomes.kind IS 'Risk kind the model predicts.';
COMMENT ON COLUMN cs.model_outcomes.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.model_outcomes.created_at IS 'Point in time of the prediction.';
COMMENT ON COLUMN cs.model_outcomes.risk_score IS 'Predicted probability.';
COMMENT ON COLUMN cs.model_outcomes.churned IS '1 when the customer churned within the horizon after the prediction, else 0.';
COMMENT ON COLUMN cs.model_outcomes.scored IS 'served (cs.risk_assessments) or shadow (cs.model_shadow_scores).';
COMMENT ON COLUMN cs.model_outcomes.outcome IS '1 when the outcome of the model''s kind happened within the horizon after the prediction (cs.label_definition: churn, downgrade, payment), else 0; what the model is judged on.';

CREATE OR REPLACE VIEW cs.model_performance WITH (security_invoker = true) AS
SELECT m.name, m.version, m.kind, m.status,
       cs._outcome_horizon() AS horizon,
       cs.risk_alert_threshold() AS threshold,
       coalesce(x.n, 0) AS n, coalesce(x.positives, 0) AS positives,
       x.auc, x.log_loss, x.brier, x."precision", x.recall, x.lift_top_decile,
       g.first_prediction, g.last_prediction,
       (m.metrics ->> 'auc')::float8 AS validation_auc
  FROM cs.models m
  LEFT JOIN LATERAL (SELECT array_agg(o.risk_score) AS p, array_agg(o.outcome) AS y,
                            min(o.created_at) AS first_prediction, max(o.created_at) AS last_prediction
                       FROM cs.model_outcomes o WHERE o.name = m.name AND o.version = m.version) g ON true
  LEFT JOIN LATERAL cs.classification_metrics(g.p, g.y, cs.risk_alert_threshold()) x ON true
 WHERE m.kind IN ('churn', 'downgrade', 'payment');
COMMENT ON VIEW cs.model_performance IS 'Per risk model version: metrics of its predictions against the real outcomes of its own kind (cs.model_outcomes.outcome: churn, downgrade or payment) beside its validation AUC.';
COMMENT ON COLUMN cs.model_performance.name IS 'Model name.';
COMMENT ON COLUMN cs.model_performance.version IS 'Model version.';
COMMENT ON COLUMN cs.model_performance.kind IS 'churn, downgrade or payment.';
COMMENT ON COLUMN cs.model_performance.status IS 'candidate, challenger, champion or retired.';
COMMENT ON COLUMN cs.model_performance.horizon IS 'Outcome horizon (cscopilot.outcome_horizon): predictions are judged once this old.';
COMMENT ON COLUMN cs.model_performance.threshold IS 'Alert threshold precision and recall are taken at (cs.risk_alert_threshold()).';
COMMENT ON COLUMN cs.model_performance.n IS 'Judged predictions.';
COMMENT ON COLUMN cs.model_performance.positives IS 'Judged predictions whose outcome (of the model''s kind) happened within the horizon.';
COMMENT ON COLUMN cs.model_performance.auc IS 'ROC AUC, tied scores sharing their mean rank; NULL with one class.';
COMMENT ON COLUMN cs.model_performance.log_loss IS 'Mean log loss (probabilities clamped to 1e-15).';
COMMENT ON COLUMN cs.model_performance.brier IS 'Brier score: mean squared error of the probability.';
COMMENT ON COLUMN cs.model_performance."precision" IS 'Share of predictions at or above the threshold whose outcome happened.';
COMMENT ON COLUMN cs.model_performance.recall IS 'Share of predictions whose outcome happened that are at or above the threshold.';
COMMENT ON COLUMN cs.model_performance.lift_top_decile IS 'Outcome rate of the top-scored decile over the overall outcome rate.';
COMMENT ON COLUMN cs.model_performance.first_prediction IS 'Earliest judged prediction.';
COMMENT ON COLUMN cs.model_performance.last_prediction IS 'Latest judged prediction.';
COMMENT ON COLUMN cs.model_performance.validation_auc IS 'AUC on the validation split at training (metrics.auc), for comparison.';

-- Predicted against the observed outcome of the model's kind by decile of the predicted probability
-- (ntile over the judged predictions ordered by score, customer, time).
CREATE OR REPLACE FUNCTION cs.model_calibration(name text, version int)
RETURNS TABLE (decile int, n bigint, mean_predicted float8, observed_rate float8, min_predicted float8, max_predicted float8)
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
AS $$
    SELECT b.decile, count(*), avg(b.risk_score), avg(b.outcome)::float8, min(b.risk_score), max(b.risk_score)
      FROM (SELECT o.risk_score, o.outcome,
                   ntile(10) OVER (ORDER BY o.risk_score, o.customer_id, o.created_at) AS decile
              FROM cs.model_outcomes o
             WHERE o.name = model_calibration.name AND o.version = model_calibration.version) b
     GROUP BY b.decile
     ORDER BY b.decile;
$$;
COMMENT ON FUNCTION cs.model_calibration(text, int) IS
    'Calibration of a model version on judged predictions: per decile of predicted probability, count, mean predicted, observed rate of the outcome of its kind, and the score range.';

------------------------------------------------------------------------------
-- Drift
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs._feature_reference(query text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'cs_feature_reference'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION cs._feature_reference(text) IS
    'Internal: reference distribution (per feature: missing rate, decile edges, bin shares) of the feature vectors (column features) a query returns, as {"rows", "features"}.';

-- Stores a reference with a model, naming each feature after the model's inputs.
CREATE OR REPLACE FUNCTION cs._store_reference(id int, source text, rows bigint, features jsonb) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, cs
AS $$
    UPDATE cs.models m
       SET reference = jsonb_build_object(
               'source', _store_reference.source, 'rows', _store_reference.rows, 'computed_at', now(),
               'features', (SELECT coalesce(jsonb_agg(f.e || jsonb_build_object('feature', m.feature_names[(f.e ->> 'position')::int])
                                                      ORDER BY (f.e ->> 'position')::int), '[]')
                              FROM jsonb_array_elements(_store_reference.features) f(e)))
     WHERE m.id = _store_reference.id;
$$;
COMMENT ON FUNCTION cs._store_reference(int, text, bigint, jsonb) IS
    'Internal: stores a reference distribution with model id (cs.models.reference), named after its feature_names.';

-- No SET search_path: the query is the caller's and resolves names as they
-- would (everything here is schema-qualified).
CREATE OR REPLACE FUNCTION cs.set_model_reference(name text, version int, training_query text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    m   cs.models;
    ref jsonb;
    q   text := coalesce(training_query, 'SELECT features FROM cs.customer_features');
BEGIN
    SELECT * INTO m FROM cs.models AS x WHERE x.name = set_model_reference.name AND x.version = set_model_reference.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object', HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    ref := cs._feature_reference(q);
    IF jsonb_array_length(ref -> 'features') <> cardinality(m.feature_names) THEN
        RAISE EXCEPTION 'the reference rows have % features, model "%" has %', jsonb_array_length(ref -> 'features'),
                        name, cardinality(m.feature_names)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Return the vectors the model takes, in its feature_names order.';
    END IF;
    PERFORM cs._store_reference(m.id, CASE WHEN training_query IS NULL THEN 'current features' ELSE 'query' END,
                                (ref ->> 'rows')::bigint, ref -> 'features');
    RETURN (SELECT x.reference FROM cs.models x WHERE x.id = m.id);
END;
$$;
COMMENT ON FUNCTION cs.set_model_reference(text, int, text) IS
    'Sets the reference distribution of a model version from the feature vectors (column features) of training_query, or from the current cs.customer_features when it is NULL; for models loaded from files. cs.train_model sets it from its training rows. Returns the reference.';

-- Population stability index (PSI) and missing-rate change per input of a
-- model, current cs.customer_features against the model's reference:
--   PSI = sum over bins of (cur - ref) * ln(cur / ref), shares of the present
--   values in the reference's decile bins, each floored at 0.0001.
-- A feature is 'watch' when PSI >= 0.1 or the missing rate moved by 0.1 or
-- more, 'act' at 0.25; else 'ok'.  Features are found in the feature vectors
-- by name (cs.feature_catalog).
CREATE OR REPLACE FUNCTION cs.feature_drift(name text, version int)
RETURNS TABLE (feature text, psi float8, reference_missing_rate float8, current_missing_rate float8,
               missing_rate_change float8, status text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ref jsonb;
BEGIN
    SELECT m.reference INTO ref FROM cs.models m WHERE m.name = feature_drift.name AND m.version = feature_drift.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object', HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    IF ref IS NULL THEN
        RETURN QUERY SELECT NULL::text, NULL::float8, NULL::float8, NULL::float8, NULL::float8, 'no reference'::text;
        RETURN;
    END IF;
    RETURN QUERY
    WITH r AS (
        SELECT e ->> 'feature' AS feature, o AS ord, (e ->> 'missing_rate')::float8 AS ref_missing,
               ARRAY(SELECT x::float8 FROM jsonb_array_elements_text(e -> 'edges') x) AS edges,
               ARRAY(SELECT x::float8 FROM jsonb_array_elements_text(e -> 'shares') x) AS shares,
               fc.position
          FROM jsonb_array_elements(ref -> 'features') WITH ORDINALITY AS j(e, o)
          LEFT JOIN cs.feature_catalog fc ON fc.name = j.e ->> 'feature'
    ), v AS (
        SELECT r.ord, cf.features[r.position]::float8 AS v
          FROM r JOIN cs.customer_features cf ON r.position IS NOT NULL
    ), cur AS (
        SELECT v.ord, count(*) AS total,
               count(*) FILTER (WHERE v.v NOT IN ('NaN', 'Infinity', '-Infinity')) AS present
          FROM v GROUP BY v.ord
    ), bins AS (
        SELECT v.ord, CASE WHEN cardinality(r.edges) > 0 THEN width_bucket(v.v, r.edges) ELSE 0 END AS b, count(*) AS k
          FROM v JOIN r ON r.ord = v.ord
         WHERE v.v NOT IN ('NaN', 'Infinity', '-Infinity')
         GROUP BY v.ord, 2
    ), psi AS (
        SELECT r.ord,
               sum((c_share - r_share) * ln(c_share / r_share)) AS psi
          FROM r
          JOIN cur ON cur.ord = r.ord AND cur.present > 0
         CROSS JOIN LATERAL generate_series(0, cardinality(r.edges)) AS g(b)
          LEFT JOIN bins ON bins.ord = r.ord AND bins.b = g.b
         CROSS JOIN LATERAL (SELECT greatest(coalesce(bins.k, 0)::float8 / cur.present, 0.0001) AS c_share,
                                    greatest(r.shares[g.b + 1], 0.0001) AS r_share) s
         WHERE cardinality(r.shares) > 0
         GROUP BY r.ord
    )
    SELECT r.feature, p.psi, r.ref_missing,
           CASE WHEN cur.total > 0 THEN 1 - cur.present::float8 / cur.total END,
           CASE WHEN cur.total > 0 THEN 1 - cur.present::float8 / cur.total - r.ref_missing END,
           CASE WHEN r.position IS NULL THEN 'not in feature store'
                WHEN cur.total IS NULL THEN 'no data'
                WHEN p.psi >= 0.25 OR abs(1 - cur.present::float8 / cur.total - r.ref_missing) >= 0.25 THEN 'act'
                WHEN p.psi >= 0.1 OR abs(1 - cur.present::float8 / cur.total - r.ref_missing) >= 0.1 THEN 'watch'
                ELSE 'ok' END
      FROM r
      LEFT JOIN cur ON cur.ord = r.ord
      LEFT JOIN psi p ON p.ord = r.ord
     ORDER BY r.ord;
END;
$$;
COMMENT ON FUNCTION cs.feature_drift(text, int) IS
    'Drift of each input of a model version, current cs.customer_features against its reference: PSI over the reference decile bins, missing rates and their change, and status ok, watch (PSI or missing-rate change >= 0.1) or act (>= 0.25); one row "no reference" when the model has none.';

-- The worst drift status of a model version: act, watch, ok, no data or no reference.
CREATE OR REPLACE FUNCTION cs.drift_status(name text, version int) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
AS $$
SELECT (SELECT d.status FROM cs.feature_drift(name, version) d
         ORDER BY array_position(ARRAY['act', 'watch', 'ok', 'no data', 'not in feature store', 'no reference'], d.status)
         LIMIT 1)
$$;
COMMENT ON FUNCTION cs.drift_status(text, int) IS 'Worst drift status over the inputs of a model version: act, watch, ok, no data, or no reference.';

-- Raises, escalates or resolves one model alert (type model, no customer,
-- assigned to cs._admin_role()) per champion and challenger, from its drift,
-- through the path every writer of alerts shares (cs._raise_alerts,
-- cs._resolve_alerts in src/sql/60_alerts.sql).
CREATE OR REPLACE FUNCTION cs.check_model_drift()
RETURNS TABLE (model text, drift text, flagged_features text[], alert text)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m       record;
    st      text;
    flagged jsonb;
    label   text;
    open_id uuid;
BEGIN
    -- a writer of alerts, like every other: the refresh lock first
    PERFORM cs._refresh_lock();
    FOR m IN SELECT x.name, x.version FROM cs.models x WHERE x.status IN ('champion', 'challenger')
              ORDER BY x.kind, x.status, x.name
    LOOP
        label := m.name || ':v' || m.version;
        st := cs.drift_status(m.name, m.version);
        SELECT coalesce(jsonb_agg(jsonb_build_object('feature', d.feature, 'psi', round(d.psi::numeric, 4),
                                                     'missing_rate_change', round(d.missing_rate_change::numeric, 4),
                                                     'status', d.status) ORDER BY d.psi DESC NULLS LAST), '[]')
          INTO flagged FROM cs.feature_drift(m.name, m.version) d WHERE d.status IN ('watch', 'act');
        model := label; drift := st;
        flagged_features := ARRAY(SELECT f ->> 'feature' FROM jsonb_array_elements(flagged) f);
        alert := NULL;
        IF st IN ('watch', 'act') THEN
            SELECT r.outcome INTO alert
              FROM cs._raise_alerts(ARRAY[ROW(NULL, NULL, 'model', CASE st WHEN 'act' THEN 'high' ELSE 'medium' END,
                                              format('Input drift (%s) for model %s', st, label),
                                              format('%s of the inputs of %s moved away from the data it learnt from (PSI or missing rate); check the data feeds, then retrain if the change is real.',
                                                     jsonb_array_length(flagged), label),
                                              jsonb_build_object('model', label, 'drift', st, 'features', flagged),
                                              NULL, cs._admin_role(), NULL, NULL, NULL)::cs.alert_firing]) r;
        ELSIF st = 'ok' THEN
            SELECT al.id INTO open_id FROM cs.system_alerts al
             WHERE al.alert_type = 'model'
               AND cs._alert_key(al.alert_type, NULL, al.risk_factors) = jsonb_build_array('model', label)
               AND al.status IN ('open', 'acknowledged', 'snoozed');
            IF FOUND AND cs._resolve_alerts(ARRAY[open_id], 'drift cleared') > 0 THEN
                alert := 'resolved';
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs.check_model_drift() IS
    'Checks the drift of every champion and challenger: raises a model alert (cs.system_alerts, assigned to cscopilot.admin_role) at watch (medium) or act (high), escalates or re-fires an open one, resolves it when the drift cleared. Returns one row per model.';

------------------------------------------------------------------------------
-- Comparison and promotion
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.compare_models(kind text)
RETURNS TABLE (role text, name text, version int, n bigint, positives bigint, auc float8, log_loss float8,
               brier float8, "precision" float8, recall float8, lift_top_decile float8)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    champ record;
    chall record;
BEGIN
    SELECT m.name, m.version INTO champ FROM cs.models m WHERE m.kind = compare_models.kind AND m.status = 'champion'
     ORDER BY m.id DESC LIMIT 1;
    SELECT m.name, m.version INTO chall FROM cs.models m WHERE m.kind = compare_models.kind AND m.status = 'challenger'
     ORDER BY m.id DESC LIMIT 1;
    IF champ.name IS NULL OR chall.name IS NULL THEN
        RAISE EXCEPTION '% has no % to compare', kind, CASE WHEN champ.name IS NULL THEN 'champion' ELSE 'challenger' END
            USING ERRCODE = 'undefined_object',
                  HINT = 'cs.deploy_model(name, version) sets the champion, cs.set_challenger(name, version) the challenger.';
    END IF;
    RETURN QUERY
    WITH pairs AS (
        SELECT a.risk_score AS pa, b.risk_score AS pb, a.outcome
          FROM cs.model_outcomes a
          JOIN cs.model_outcomes b ON b.customer_id = a.customer_id AND b.created_at = a.created_at
         WHERE a.name = champ.name AND a.version = champ.version
           AND b.name = chall.name AND b.version = chall.version
    ), agg AS (
        SELECT array_agg(pairs.pa) AS pa, array_agg(pairs.pb) AS pb, array_agg(pairs.outcome) AS y FROM pairs
    )
    SELECT 'champion', champ.name, champ.version, x.*
      FROM agg CROSS JOIN LATERAL cs.classification_metrics(agg.pa, agg.y, cs.risk_alert_threshold()) x
    UNION ALL
    SELECT 'challenger', chall.name, chall.version, x.*
      FROM agg CROSS JOIN LATERAL cs.classification_metrics(agg.pb, agg.y, cs.risk_alert_threshold()) x;
END;
$$;
COMMENT ON FUNCTION cs.compare_models(text) IS
    'Champion against challenger of a kind on the same judged predictions (same customers and prediction times): the metrics of cs.model_performance for each.';

-- The promotion policy: once the champion and challenger share at least
-- cscopilot.promotion_min_outcomes judged predictions (both classes present),
-- the challenger is promoted if its AUC beats the champion's by
-- cscopilot.promotion_auc_margin, else retired.  The decision is recorded in
-- the challenger's metrics (key promotion) and returned.
CREATE OR REPLACE FUNCTION cs.apply_promotion_policy(kind text) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    chall  cs.models;
    champ  cs.models;
    c1     record;
    c2     record;
    margin float8 := cs._promotion_auc_margin();
    need   int := cs._promotion_min_outcomes();
    res    jsonb;
BEGIN
    SELECT * INTO chall FROM cs.models m WHERE m.kind = apply_promotion_policy.kind AND m.status = 'challenger'
     ORDER BY m.id DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('kind', kind, 'decision', 'none', 'reason', 'no challenger');
    END IF;
    SELECT * INTO champ FROM cs.models m WHERE m.kind = apply_promotion_policy.kind AND m.status = 'champion'
     ORDER BY m.id DESC LIMIT 1;
    IF NOT FOUND THEN
        res := jsonb_build_object('decision', 'promoted', 'reason', 'no champion');
    ELSE
        SELECT * INTO c1 FROM cs.compare_models(kind) x WHERE x.role = 'champion';
        SELECT * INTO c2 FROM cs.compare_models(kind) x WHERE x.role = 'challenger';
        res := jsonb_build_object('champion', champ.name || ':v' || champ.version, 'outcomes', c1.n,
                                  'positives', c1.positives, 'champion_auc', round(c1.auc::numeric, 4),
                                  'challenger_auc', round(c2.auc::numeric, 4), 'margin', margin,
                                  'min_outcomes', need);
        IF c1.n < need OR c1.auc IS NULL OR c2.auc IS NULL THEN
            RETURN jsonb_build_object('kind', kind, 'challenger', chall.name || ':v' || chall.version,
                                      'decision', 'waiting',
                                      'reason', format('%s of %s outcomes with both classes', c1.n, need)) || res;
        END IF;
        IF c2.auc >= c1.auc + margin THEN
            res := res || jsonb_build_object('decision', 'promoted', 'reason', 'challenger AUC beats the champion by the margin');
        ELSE
            res := res || jsonb_build_object('decision', 'retired', 'reason', 'challenger AUC does not beat the champion by the margin');
        END IF;
    END IF;
    res := jsonb_build_object('kind', kind, 'challenger', chall.name || ':v' || chall.version, 'decided_at', now()) || res;
    UPDATE cs.models m SET metrics = m.metrics || jsonb_build_object('promotion', res) WHERE m.id = chall.id;
    IF res ->> 'decision' = 'promoted' THEN
        -- judged on outcomes observed after training: the leakage audit of its
        -- training rows does not hold it back (a forced deployment, recorded)
        PERFORM cs.deploy_model(chall.name, chall.version, force => true);
    ELSE
        UPDATE cs.models m SET status = 'retired' WHERE m.id = chall.id;
    END IF;
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs.apply_promotion_policy(text) IS
    'Applies the promotion policy to the challenger of a kind: waiting until champion and challenger share cscopilot.promotion_min_outcomes judged predictions, then promoted (cs.deploy_model) if its AUC beats the champion''s by cscopilot.promotion_auc_margin, else retired. Records the decision in the challenger''s metrics and returns it.';

------------------------------------------------------------------------------
-- Scheduled retraining and checks
------------------------------------------------------------------------------

-- Retrains a kind: applies the promotion policy to a pending challenger;
-- unless one is still collecting outcomes, builds a point-in-time training set
-- (cscopilot.retrain_observations monthly dates, the last one at least the
-- outcome horizon ago), trains the next version of the champion's name with
-- the champion's parameters, and registers it as the challenger (or deploys
-- it when there is no champion).  Never raises for a failed step: returns
-- {"status": succeeded | skipped | failed, "steps": [...], "error"}.
CREATE OR REPLACE FUNCTION cs.retrain(kind text DEFAULT 'churn') RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    steps   jsonb := '[]';
    step    text;
    horizon interval := cs._outcome_horizon();
    nobs    int := cs.setting('cscopilot.retrain_observations')::int;
    dates   date[];
    champ   cs.models;
    mname   text;
    params  jsonb;
    nrows   bigint;
    pos     bigint;
    mid     int;
    v       int;
    pending text;
    err     text;
BEGIN
    IF kind IS NULL OR kind NOT IN ('churn', 'downgrade', 'payment', 'expansion', 'upsell') THEN
        RAISE EXCEPTION 'cannot retrain kind "%"', kind USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Retraining labels each kind by its own outcome: churn, downgrade, payment, expansion or upsell (expansion).';
    END IF;
    step := 'promotion_policy';
    steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'at', clock_timestamp()) || cs.apply_promotion_policy(kind));
    SELECT m.name || ':v' || m.version INTO pending FROM cs.models m WHERE m.kind = retrain.kind AND m.status = 'challenger';
    IF pending IS NOT NULL THEN
        steps := steps || jsonb_build_array(jsonb_build_object('step', 'train', 'skipped',
                                                               format('challenger %s is still collecting outcomes', pending)));
        RETURN jsonb_build_object('status', 'skipped', 'steps', steps);
    END IF;
    BEGIN
        step := 'build_training_set';
        dates := ARRAY(SELECT (date_trunc('month', current_date - horizon) - make_interval(months => k))::date
                         FROM generate_series(nobs - 1, 0, -1) k);
        IF to_regclass('pg_temp.cs_retrain_rows') IS NOT NULL THEN
            DROP TABLE pg_temp.cs_retrain_rows;
        END IF;
        CREATE TEMP TABLE cs_retrain_rows ON COMMIT DROP AS
            SELECT t.features, t.label, t.group_key, t.as_of FROM cs.build_training_set(dates, horizon, cs.outcome_kind(retrain.kind)) t;
        SELECT count(*), coalesce(sum(t.label), 0) INTO nrows, pos FROM pg_temp.cs_retrain_rows t;
        steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'at', clock_timestamp(), 'rows', nrows,
                                                               'positives', pos, 'label', cs.label_definition(cs.outcome_kind(retrain.kind), horizon),
                                                               'observation_dates', to_jsonb(dates),
                                                               'horizon', horizon::text));
        IF pos < 10 OR nrows - pos < 10 THEN
            steps := steps || jsonb_build_array(jsonb_build_object('step', 'train', 'skipped',
                                                                   'fewer than 10 rows of each class'));
            RETURN jsonb_build_object('status', 'skipped', 'steps', steps);
        END IF;

        step := 'train';
        SELECT * INTO champ FROM cs.models m WHERE m.kind = retrain.kind AND m.status = 'champion' ORDER BY m.id DESC LIMIT 1;
        mname := coalesce(champ.name, kind || '_model');
        params := CASE WHEN jsonb_typeof(champ.metrics -> 'params') = 'object' THEN (champ.metrics -> 'params') - 'feature_names'
                       ELSE '{}' END || jsonb_build_object('horizon', horizon::text);
        -- as_of: the forward split, validated on the latest dates
        mid := cs.train_model(mname, kind, 'SELECT features, label, group_key, as_of FROM pg_temp.cs_retrain_rows', params);
        UPDATE cs.models m
           SET training_data = format('Scheduled retraining: cs.build_training_set(%L, %L, %L)', dates, horizon,
                                      cs.outcome_kind(retrain.kind)),
               metrics = m.metrics || jsonb_build_object('training_window',
                             jsonb_build_object('observation_dates', to_jsonb(dates), 'horizon', horizon::text,
                                                'rows', nrows, 'positives', pos),
                             'label', cs.label_definition(cs.outcome_kind(retrain.kind), horizon))
         WHERE m.id = mid
        RETURNING m.version INTO v;
        steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'at', clock_timestamp(), 'model', mname,
                                                               'version', v, 'params', params,
                                                               'validation_auc', (SELECT m.metrics -> 'auc' FROM cs.models m WHERE m.id = mid)));

        step := 'register';
        IF champ.id IS NULL THEN
            PERFORM cs.deploy_model(mname, v);
            steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'status', 'champion', 'reason', 'no champion'));
        ELSE
            PERFORM cs.set_challenger(mname, v);
            steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'status', 'challenger',
                                                                   'champion', champ.name || ':v' || champ.version));
        END IF;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        steps := steps || jsonb_build_array(jsonb_build_object('step', step, 'at', clock_timestamp(), 'error', err));
        RETURN jsonb_build_object('status', 'failed', 'steps', steps, 'error', format('%s: %s', step, err));
    END;
    RETURN jsonb_build_object('status', 'succeeded', 'steps', steps);
END;
$$;
COMMENT ON FUNCTION cs.retrain(text) IS
    'One retraining of a kind (churn, downgrade, payment or upsell): promotion policy for a pending challenger, then (unless a challenger is still collecting outcomes) a point-in-time training set of cscopilot.retrain_observations monthly dates labelled by the kind''s own outcome (cs.build_training_set with cs.outcome_kind; upsell: expansion), cs.train_model as the next version of the champion''s name with its parameters and the forward split (validated on the latest dates, a gap of one horizon), registered as challenger. Returns {"status", "steps", "error"}; the worker''s retrain job stores it in cs.job_runs.details.';

-- The daily model checks of the worker: drift alerts, then the promotion
-- policy for every kind with a challenger.
CREATE OR REPLACE FUNCTION cs.run_model_checks() RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    drift jsonb;
    promo jsonb;
    appl  jsonb;
BEGIN
    PERFORM cs._one_connection_per_node();
    SELECT coalesce(jsonb_agg(to_jsonb(d)), '[]') INTO drift FROM cs.check_model_drift() d;
    SELECT coalesce(jsonb_agg(to_jsonb(a)), '[]') INTO appl FROM cs.check_model_applicability() a;
    SELECT coalesce(jsonb_agg(cs.apply_promotion_policy(k.kind) ORDER BY k.kind), '[]') INTO promo
      FROM (SELECT DISTINCT m.kind FROM cs.models m WHERE m.status = 'challenger' AND m.kind <> 'custom') k;
    RETURN jsonb_build_object('drift', drift, 'applicability', appl, 'promotion', promo);
END;
$$;
COMMENT ON FUNCTION cs.run_model_checks() IS
    'Model checks the worker runs daily (job model_checks): cs.check_model_drift(), cs.check_model_applicability(), then cs.apply_promotion_policy for each kind with a challenger; returns what happened.';

------------------------------------------------------------------------------
-- Model card
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.model_card(name text, version int) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m    cs.models;
    perf jsonb;
    cal  jsonb;
    dr   jsonb;
    ap   jsonb;
BEGIN
    SELECT * INTO m FROM cs.models AS x WHERE x.name = model_card.name AND x.version = model_card.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object', HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    SELECT to_jsonb(p) - 'name' - 'version' - 'kind' - 'status' - 'validation_auc' INTO perf
      FROM cs.model_performance p WHERE p.name = m.name AND p.version = m.version;
    SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.decile), '[]') INTO cal FROM cs.model_calibration(m.name, m.version) c;
    SELECT coalesce(jsonb_agg(to_jsonb(d)) FILTER (WHERE d.status IN ('watch', 'act')), '[]') INTO dr
      FROM cs.feature_drift(m.name, m.version) d;
    SELECT jsonb_build_object('verdict', min(a.verdict), 'unusable_gain_share', min(a.unusable_gain_share),
                              'inputs', jsonb_agg(to_jsonb(a) - 'verdict' - 'unusable_gain_share'
                                                  ORDER BY a.gain_share DESC, a.feature))
      INTO ap FROM cs.model_applicability(m.name, m.version) a;
    RETURN jsonb_build_object(
        'model', m.name, 'version', m.version, 'kind', m.kind, 'status', m.status, 'objective', m.objective,
        'created_at', m.created_at,
        'features', to_jsonb(m.feature_names),
        'label', coalesce(m.metrics -> 'label', cs.label_definition(cs.outcome_kind(m.kind))),
        'training', jsonb_build_object('data', m.training_data,
                                       'window', m.metrics -> 'training_window',
                                       'rows_train', m.metrics -> 'rows_train', 'rows_valid', m.metrics -> 'rows_valid',
                                       'positive_rate', m.metrics -> 'positive_rate'),
        'parameters', m.metrics -> 'params',
        'validation', jsonb_build_object('auc', m.metrics -> 'auc', 'log_loss', m.metrics -> 'logloss',
                                         'brier', m.metrics -> 'brier', 'best_iteration', m.metrics -> 'best_iteration',
                                         'holdout', m.metrics -> 'holdout',
                                         'split', m.metrics -> 'split', 'split_window', m.metrics -> 'split_window'),
        'leakage', jsonb_build_object('suspects', m.metrics -> 'leakage_suspects', 'threshold', m.metrics -> 'leakage_auc',
                                      'forced_deployments', m.metrics -> 'forced_deployments'),
        'applicability', ap,
        'top_features', (SELECT jsonb_agg(i.key ORDER BY i.value::float8 DESC, i.key)
                           FROM (SELECT * FROM jsonb_each_text(m.metrics -> 'feature_importance_gain')
                                  ORDER BY value::float8 DESC, key LIMIT 5) i),
        'outcomes', perf,
        'calibration', cal,
        -- reliability on the validation rows at training, before and after calibration (calibrate.c)
        'reliability', jsonb_build_object('method', coalesce(m.calibration ->> 'method', 'none'),
                                          'brier_raw', m.metrics -> 'calibration' -> 'brier_raw',
                                          'brier_calibrated', m.metrics -> 'calibration' -> 'brier_calibrated',
                                          'holdout', m.metrics -> 'calibration_holdout',
                                          'deciles', coalesce(m.metrics -> 'calibration' -> 'reliability', '[]')),
        'global_explanation', (SELECT jsonb_agg(jsonb_build_object('feature', g.feature, 'mean_abs_shap', round(g.mean_abs_shap::numeric, 4))
                                                ORDER BY g.rank)
                                 FROM cs.global_explanations g WHERE g.model = m.name AND g.version = m.version AND g.rank <= 10),
        'drift', jsonb_build_object('status', cs.drift_status(m.name, m.version),
                                    'reference', m.reference - 'features',
                                    'flagged', dr),
        'promotion', m.metrics -> 'promotion');
END;
$$;
COMMENT ON FUNCTION cs.model_card(text, int) IS
    'Readable summary of a model version as jsonb: features, the label (its outcome''s definition and settings, as trained, else as set now), training data and window, parameters, validation metrics (with the split: forward or hashed), the leakage audit''s suspects and forced deployments, applicability to this data (cs.model_applicability), outcome metrics (cs.model_performance) and calibration on judged predictions, reliability by decile on the validation rows before and after calibration (with the Brier scores), the top inputs of its global explanation, drift status with the flagged features, and the last promotion decision. jsonb_pretty() prints it.';
