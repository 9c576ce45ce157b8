-- Alerts: message templates, structured rule conditions (validated, never SQL
-- text), severity grading, evaluation with deduplication on the partial unique
-- index, escalation, auto-resolution, cooldown, NOTIFY, and the lifecycle.
--
-- Condition grammar (jsonb), evaluated with SQL three-valued logic:
--   {"all": [c, ...]}  {"any": [c, ...]}  {"not": c}
--   {"feature": <cs.feature_catalog name>, "op": <op>, "value": <number>}
--   {"score": <score name>, "op": <op>, "value": <number>}
--   {"band": "red" | ["red", "yellow", ...]}
-- ops: < <= > >= = !=.  A comparison over a missing value (NaN feature, no
-- churn risk yet, no health band) is unknown: the rule does not fire, and an
-- open alert is not auto-resolved either (only a condition known to be false
-- clears it).

------------------------------------------------------------------------------
-- Templates
------------------------------------------------------------------------------

-- The placeholders templates may use, each filled by cs.template_values().
CREATE OR REPLACE FUNCTION cs.template_placeholders() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['name', 'external_id', 'csm', 'segment', 'mrr', 'overall_score', 'band', 'churn_risk',
             'top_driver', 'top_risk_factor', 'days_to_renewal', 'renewal_date', 'seat_utilisation',
             'seats_licensed', 'last_nps'];
COMMENT ON FUNCTION cs.template_placeholders() IS 'The {placeholders} message templates may use.';

-- Raises an error naming the first unknown placeholder of a template.
CREATE OR REPLACE FUNCTION cs.check_template(template text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    -- filling a template checks each of its placeholders (src/alerts.c)
    PERFORM cs._fill_template(template, '{}', cs.template_placeholders());
END;
$$;
COMMENT ON FUNCTION cs.check_template(text) IS 'Refuses a template with an unknown {placeholder} (invalid_parameter_value).';

-- The placeholder values of a customer from what alert evaluation has already
-- fetched: its row, its feature map, latest health and latest churn risk.
CREATE OR REPLACE FUNCTION cs._template_values(c cs.customers, fm jsonb, overall_score numeric, band text, drivers jsonb,
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
COMMENT ON FUNCTION cs.template_values(uuid) IS
    'Placeholder values of a customer: its fields, latest health and churn risk, and features (days_to_renewal, seat_utilisation as a percentage, last_nps) from the feature store.';

-- Fills a template from a values object in one pass; unknown values become n/a.
CREATE OR REPLACE FUNCTION cs._fill_template(template text, vals jsonb, placeholders text[]) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_fill_template' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._fill_template(text, jsonb, text[]) IS
    'Internal: replaces each {placeholder} of a template by its value in vals (n/a when missing or null), in one pass; a {name} not among placeholders is an error.';

CREATE OR REPLACE FUNCTION cs.fill_template(template text, vals jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN cs._fill_template(template, coalesce(vals, '{}'), cs.template_placeholders());
COMMENT ON FUNCTION cs.fill_template(text, jsonb) IS 'Replaces each {placeholder} of a template by its value in vals (n/a when missing); unknown placeholders are an error (invalid_parameter_value).';

CREATE OR REPLACE FUNCTION cs.render_template(template text, customer_id uuid) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    vals jsonb;
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'customer_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    vals := cs.template_values(customer_id);
    IF vals IS NULL THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN cs.fill_template(template, vals);
END;
$$;
COMMENT ON FUNCTION cs.render_template(text, uuid) IS
    'A message template with its {placeholders} filled from the customer''s fields, latest scores and features; unknown placeholders are an error, unknown values read n/a.';

------------------------------------------------------------------------------
-- Conditions
------------------------------------------------------------------------------

-- The grammar of a condition has one parser, in C (src/alerts.c): the
-- write-time check below and the evaluator (cs.condition_holds) both run it.
CREATE OR REPLACE FUNCTION cs.condition_scores() RETURNS text[]
    AS 'MODULE_PATHNAME', 'cs_condition_scores' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs.condition_scores() IS
    'Score names a condition may test: latest churn risk, latest health and sub-scores, best open opportunity score, total expected MRR of open opportunities.';

-- Refuses a malformed condition with the JSON path of the offending node.
CREATE OR REPLACE FUNCTION cs.validate_condition(cond jsonb, path text DEFAULT '$', depth int DEFAULT 0)
RETURNS void
    AS 'MODULE_PATHNAME', 'cs_validate_condition' LANGUAGE C STABLE;
COMMENT ON FUNCTION cs.validate_condition(jsonb, text, int) IS
    'Raises invalid_parameter_value, naming the JSON path, unless cond is a well-formed alert condition over known features, scores and bands (program_limit_exceeded beyond 16 levels of nesting or 100 terms in a list); path and depth name where cond sits in a larger document.';

-- Evaluates a validated condition against a context
-- {"features": {...}, "scores": {...}, "band": text}; NULL means unknown.
-- C (src/alerts.c): a full evaluation calls it for every customer and rule.
CREATE OR REPLACE FUNCTION cs.condition_holds(cond jsonb, ctx jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'cs_condition_holds' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.condition_holds(jsonb, jsonb) IS
    'Evaluates a validated alert condition against {"features": {...}, "scores": {...}, "band": b}: true, false, or NULL when it depends on a missing value; a malformed condition is an error (invalid_parameter_value).';

-- The factors of a firing rule and the names playbooks are ranked by (C: a
-- full evaluation builds them for every firing alert).
CREATE OR REPLACE FUNCTION cs._alert_factors(ctx jsonb, cfeatures text[], cscores text[], cband boolean, alert_type text,
                                  risk_factors jsonb, drivers jsonb, kinds jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'cs_alert_factors' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._alert_factors(jsonb, text[], text[], boolean, text, jsonb, jsonb, jsonb) IS
    'Internal: the factors of a firing rule as a jsonb array: the condition''s features, scores and band with their values in ctx (sorted by name), then for risk alerts the churn model''s factors (source churn_model) and the health drivers'' top (source health), for opportunity alerts the opportunities in kinds.';
CREATE OR REPLACE FUNCTION cs._factor_names(factors jsonb) RETURNS text[]
    AS 'MODULE_PATHNAME', 'cs_factor_names' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._factor_names(jsonb) IS
    'Internal: the distinct names of a factors array, sorted: per factor the first string among feature, score and kind (an opportunity''s numeric score is not a name, its kind is).';

-- Validates a rule on write: condition, title template, severity metric and thresholds.
CREATE OR REPLACE FUNCTION cs._validate_alert_rule() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m      jsonb := NEW.severity_metric;
    levels text[];
    vals   float8[];
    i      int;
BEGIN
    PERFORM cs.validate_condition(NEW.condition);
    PERFORM cs.check_template(NEW.title);
    IF jsonb_typeof(NEW.severity_thresholds) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'alert rule "%": severity_thresholds must be a JSON object', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(NEW.severity_thresholds) t
                WHERE t.key NOT IN ('low', 'medium', 'high', 'critical') OR jsonb_typeof(t.value) <> 'number') THEN
        RAISE EXCEPTION 'alert rule "%": severity_thresholds takes numbers for low, medium, high and critical', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF m IS NULL THEN
        IF NEW.severity_thresholds <> '{}' THEN
            RAISE EXCEPTION 'alert rule "%": severity thresholds need a severity_metric', NEW.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        IF jsonb_typeof(m) IS DISTINCT FROM 'object'
           OR NOT (ARRAY(SELECT jsonb_object_keys(m) ORDER BY 1) IN (ARRAY['direction', 'feature'], ARRAY['direction', 'score']))
           OR coalesce(m ->> 'direction', '') NOT IN ('higher', 'lower') THEN
            RAISE EXCEPTION 'alert rule "%": severity_metric must be {"feature" or "score": name, "direction": "higher" or "lower"}', NEW.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM cs.validate_condition(m - 'direction' || '{"op": ">=", "value": 0}', '$severity_metric');
        SELECT array_agg(l ORDER BY cs.severity_rank(l)), array_agg((NEW.severity_thresholds ->> l)::float8 ORDER BY cs.severity_rank(l))
          INTO levels, vals
          FROM jsonb_object_keys(NEW.severity_thresholds) l;
        IF levels IS NULL THEN
            RAISE EXCEPTION 'alert rule "%": a severity_metric needs at least one threshold', NEW.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR i IN 2 .. cardinality(vals) LOOP
            IF (m ->> 'direction' = 'higher' AND vals[i] <= vals[i - 1])
               OR (m ->> 'direction' = 'lower' AND vals[i] >= vals[i - 1]) THEN
                RAISE EXCEPTION 'alert rule "%": % threshold % is not % than the % threshold %', NEW.name, levels[i], vals[i],
                                m ->> 'direction', levels[i - 1], vals[i - 1]
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Thresholds must move strictly in the metric''s direction from low to critical.';
            END IF;
        END LOOP;
    END IF;
    RETURN NEW;
END;
$$;
CREATE OR REPLACE TRIGGER alert_rules_validate BEFORE INSERT OR UPDATE ON cs.alert_rules
    FOR EACH ROW EXECUTE FUNCTION cs._validate_alert_rule();

-- The severity of a firing rule: the most severe level whose threshold the
-- metric meets, never below the rule's base severity.
CREATE OR REPLACE FUNCTION cs.alert_severity(metric jsonb, thresholds jsonb, base text, ctx jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT l FROM (
          SELECT base AS l
          UNION ALL
          SELECT t.key FROM jsonb_each_text(thresholds) t,
                 LATERAL (SELECT CASE WHEN metric ? 'feature' THEN (ctx -> 'features' ->> (metric ->> 'feature'))::float8
                                      ELSE (ctx -> 'scores' ->> (metric ->> 'score'))::float8 END AS v) mv
           WHERE metric IS NOT NULL
             AND CASE metric ->> 'direction' WHEN 'higher' THEN mv.v >= t.value::float8
                                             ELSE mv.v <= t.value::float8 END) s
        ORDER BY cs.severity_rank(l) DESC LIMIT 1);
COMMENT ON FUNCTION cs.alert_severity(jsonb, jsonb, text, jsonb) IS
    'Severity of a firing rule in a context: the most severe level whose threshold the metric meets (>= for direction higher, <= for lower), at least the base severity.';

-- Logs an alert event and, for new and escalated alerts, notifies cs_alerts.
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
    -- like every writer of results: two evaluations would insert the same
    -- alerts' keys in different orders
    PERFORM cs._refresh_lock();
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
COMMENT ON FUNCTION cs.evaluate_alerts(uuid[]) IS
    'Evaluates the enabled risk and opportunity rules for the given customers (all when NULL) over their stored features, latest health, latest churn risk and open opportunities: '
    'reopens alerts whose snooze has passed, resolves those of churned customers, raises new alerts (unless a resolved or dismissed one is within the rule''s cooldown), updates and escalates open ones, '
    'and resolves open alerts of auto-resolving rules whose condition is now false. New and escalated alerts NOTIFY cs_alerts. Returns the counts.';

------------------------------------------------------------------------------
-- Lifecycle
--
--   open ──acknowledge──> acknowledged      open/acknowledged/snoozed ──resolve──> resolved
--   open/acknowledged/snoozed ──snooze──> snoozed ──(snooze passes, next evaluation)──> open
--   open/acknowledged/snoozed ──dismiss──> dismissed      snoozed ──acknowledge──> acknowledged
-- resolved and dismissed are final; reassigning keeps the status.
--
-- These functions are the only way for anybody but an admin to change an
-- alert: CSMs hold no UPDATE on cs.alerts and no INSERT on cs.alert_events.
-- They are SECURITY DEFINER (search_path pinned, pg_temp last), and
-- cs._alert_transition checks the caller: a member of cscopilot_csm (cs._require_csm) who may see
-- the alert's customer under the rule of the row-level security policies
-- (cs._user_sees_customer); an alert the caller may not see "does not exist",
-- as it did under RLS.  The caller (cs.acting_user()) is recorded as
-- updated_by and as the event's actor.
------------------------------------------------------------------------------

-- Applies one lifecycle transition under a row lock, or refuses it.
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
