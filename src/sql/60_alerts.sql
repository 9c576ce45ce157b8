-- Alerts: message templates, structured rule conditions (validated, never SQL
-- text), severity grading, evaluation with deduplication on the partial unique
-- index, escalation, auto-resolution, cooldown, NOTIFY, and the lifecycle.
--
-- Condition grammar (jsonb), evaluated with SQL three-valued logic:
--   {"all": [c, ...]}  {"any": [c, ...]}  {"not": c}
--   {"feature": <cs.feature_catalog name>, "op": <op>, "value": <number>}
--   {"score": <score name>, "op": <op>, "value": <number>}   (cs.condition_scores())
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
AS $$
SELECT ARRAY['name', 'external_id', 'csm', 'segment', 'mrr', 'overall_score', 'band', 'churn_risk',
             'top_driver', 'top_risk_factor', 'days_to_renewal', 'renewal_date', 'seat_utilisation',
             'seats_licensed', 'last_nps', 'downgrade_risk', 'payment_risk', 'expansion_mrr']
$$;
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
AS $$
SELECT jsonb_build_object(
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
         'last_nps', round((fm ->> 'last_nps')::numeric)::text)
$$;
COMMENT ON FUNCTION cs._template_values(cs.customers, jsonb, numeric, text, jsonb, numeric, jsonb) IS
    'Internal: the placeholder values of cs.template_values() from a customer row, its feature map, latest health (score, band, drivers) and latest churn risk (score, factors).';

-- The placeholder values of the new risks and of expansion, beside those of
-- cs._template_values (whose arguments are the churn risk's).
CREATE OR REPLACE FUNCTION cs._more_template_values(downgrade_risk numeric, payment_risk numeric, expansion_mrr numeric)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object('downgrade_risk', downgrade_risk::text, 'payment_risk', payment_risk::text,
                              'expansion_mrr', expansion_mrr::text);
$$;
COMMENT ON FUNCTION cs._more_template_values(numeric, numeric, numeric) IS
    'Internal: the placeholder values downgrade_risk, payment_risk (latest risks) and expansion_mrr (expected MRR of the open expansion opportunities), as text.';

-- The placeholder values of one customer, as text (NULL when unknown).
CREATE OR REPLACE FUNCTION cs.template_values(customer_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    RETURN (SELECT cs._template_values(c, f.m, h.overall_score, h.band, h.drivers, r.risk_score, r.risk_factors)
                   || cs._more_template_values(dg.risk_score, py.risk_score, ex.expected_mrr)
      FROM cs.customers c
      LEFT JOIN LATERAL (SELECT cs.feature_map(cf.features) AS m FROM cs.customer_features cf
                          WHERE cf.customer_id = c.id) f ON true
      LEFT JOIN LATERAL (SELECT s.overall_score, s.band, s.drivers FROM cs.customer_health_scores s
                          WHERE s.customer_id = c.id ORDER BY s.calculated_at DESC LIMIT 1) h ON true
      LEFT JOIN LATERAL (SELECT a.risk_score, a.risk_factors FROM cs.risk_assessments a
                          WHERE a.customer_id = c.id AND a.risk_type = 'churn'
                          ORDER BY a.created_at DESC LIMIT 1) r ON true
      LEFT JOIN LATERAL (SELECT a.risk_score FROM cs.risk_assessments a
                          WHERE a.customer_id = c.id AND a.risk_type = 'downgrade'
                          ORDER BY a.created_at DESC LIMIT 1) dg ON true
      LEFT JOIN LATERAL (SELECT a.risk_score FROM cs.risk_assessments a
                          WHERE a.customer_id = c.id AND a.risk_type = 'payment'
                          ORDER BY a.created_at DESC LIMIT 1) py ON true
      LEFT JOIN LATERAL (SELECT sum(o.expected_mrr) AS expected_mrr FROM cs.opportunities o
                          WHERE o.customer_id = c.id AND o.kind = 'expansion'
                            AND o.status IN ('open', 'in_progress')) ex ON true
     WHERE c.id = template_values.customer_id);
END;
$$;
COMMENT ON FUNCTION cs.template_values(uuid) IS
    'Placeholder values of a customer: its fields, latest health and churn, downgrade and payment risks, the expected MRR of its open expansion opportunities, and features (days_to_renewal, seat_utilisation as a percentage, last_nps) from the feature store.';

-- Fills a template from a values object in one pass; unknown values become n/a.
CREATE OR REPLACE FUNCTION cs._fill_template(template text, vals jsonb, placeholders text[]) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_fill_template' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._fill_template(text, jsonb, text[]) IS
    'Internal: replaces each {placeholder} of a template by its value in vals (n/a when missing or null), in one pass; a {name} not among placeholders is an error.';

CREATE OR REPLACE FUNCTION cs.fill_template(template text, vals jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT cs._fill_template(template, coalesce(vals, '{}'), cs.template_placeholders())
$$;
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
    'Score names a condition may test: latest churn risk, latest health and sub-scores, best open opportunity score, total expected MRR of open opportunities, latest downgrade and payment risks, score and expected MRR of the open expansion opportunity.';

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
-- What a condition tests, read by the same parser (C: src/alerts.c).
CREATE OR REPLACE FUNCTION cs._condition_terms(cond jsonb, OUT features text[], OUT scores text[], OUT tests_band boolean)
    AS 'MODULE_PATHNAME', 'cs_condition_terms' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._condition_terms(jsonb) IS
    'Internal: the feature and score names a condition tests (in the order it names them, repeats kept) and whether it tests the band, read by the one condition parser; a malformed condition is an error (invalid_parameter_value).';

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

-- The SHAP factors of the downgrade and payment models behind a risk rule
-- that tests their risk (scores downgrade_risk, payment_risk), each marked with
-- its source (downgrade_model, payment_model), in the order stored.
CREATE OR REPLACE FUNCTION cs._risk_model_factors(model_factors jsonb, cscores text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('source', replace(k.score, '_risk', '_model')) || f.x
                              ORDER BY k.ord, f.o), '[]')
      FROM unnest(ARRAY['downgrade_risk', 'payment_risk']) WITH ORDINALITY k(score, ord)
     CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(model_factors -> k.score) = 'array'
                                                  THEN model_factors -> k.score ELSE '[]' END) WITH ORDINALITY f(x, o)
     WHERE k.score = ANY (cscores);
$$;
COMMENT ON FUNCTION cs._risk_model_factors(jsonb, text[]) IS
    'Internal: for each of the downgrade_risk and payment_risk scores among cscores (a rule''s condition terms), the stored SHAP factors of that risk in model_factors ({"downgrade_risk": [...], "payment_risk": [...]}), each with source downgrade_model or payment_model, as one jsonb array.';

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
AS $$
SELECT (SELECT l FROM (
          SELECT base AS l
          UNION ALL
          SELECT t.key FROM jsonb_each_text(thresholds) t,
                 LATERAL (SELECT CASE WHEN metric ? 'feature' THEN (ctx -> 'features' ->> (metric ->> 'feature'))::float8
                                      ELSE (ctx -> 'scores' ->> (metric ->> 'score'))::float8 END AS v) mv
           WHERE metric IS NOT NULL
             AND CASE metric ->> 'direction' WHEN 'higher' THEN mv.v >= t.value::float8
                                             ELSE mv.v <= t.value::float8 END) s
        ORDER BY cs.severity_rank(l) DESC LIMIT 1)
$$;
COMMENT ON FUNCTION cs.alert_severity(jsonb, jsonb, text, jsonb) IS
    'Severity of a firing rule in a context: the most severe level whose threshold the metric meets (>= for direction higher, <= for lower), at least the base severity.';

------------------------------------------------------------------------------
-- The one path that writes alerts
--
-- Rules (cs.evaluate_alerts), model drift (cs.check_model_drift) and data
-- quality (cs.check_data_quality) raise, re-fire, escalate and resolve alerts
-- only through these functions, set-based, and the lifecycle functions log
-- their transitions through the same logger, so cs.alert_events is always
-- true: from_status is the status the alert had, to_status the status it has,
-- and the last event's to_status is the alert's status.
--
--   cs._raise_alerts(cs.alert_firing[])  the only INSERT INTO cs.alerts and cs.system_alerts
--   cs._resolve_alerts(uuid[], note)     auto-resolution
--   cs._log_alert_events(...)            the only INSERT INTO cs.alert_events and cs.system_alert_events
--
-- A firing with a customer writes cs.alerts, one without (model and data
-- alerts) cs.system_alerts; an alert id names an alert of either table.
-- An alert's key: (customer, rule) for rule alerts, where the partial unique
-- index alerts_one_open_per_rule holds at most one unresolved alert per key;
-- cs._alert_key for task alerts (with their customer) and for model and data
-- alerts (no customer, no rule; the unique index system_alerts_one_open_per_key).  Callers
-- take the refresh lock first (cs._refresh_lock), as every writer of
-- results does; these functions take it too, which costs nothing then.
------------------------------------------------------------------------------

-- The key of a model, data or task alert: cs._alert_key (src/sql/pre_install/60_alerts.sql).

-- An alert without a customer as a row of cs.alerts (customer_id and rule_id
-- NULL, mrr_at_risk 0): what the lifecycle functions return for it.
CREATE OR REPLACE FUNCTION cs._as_alert(s cs.system_alerts) RETURNS cs.alerts
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    -- by name, whatever the order of the columns of an upgraded cs.alerts
    SELECT jsonb_populate_record(NULL::cs.alerts, to_jsonb(s) || '{"mrr_at_risk": 0}');
$$;
COMMENT ON FUNCTION cs._as_alert(cs.system_alerts) IS
    'Internal: a model or data alert (cs.system_alerts) as a row of type cs.alerts, customer_id and rule_id NULL and mrr_at_risk 0, as the lifecycle functions return it.';

-- Appends events to cs.alert_events (customer alerts) and
-- cs.system_alert_events (model and data alerts), and notifies cs_alerts of
-- created and escalated alerts.
CREATE OR REPLACE FUNCTION cs._log_alert_events(alert_ids uuid[], events text[], from_statuses text[], note text,
                                                details jsonb[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ev_actor text;
    logged   bigint := 0;
    ev_count bigint;
    e_ids    uuid[];
    e_events text[];
    e_froms  text[];
    e_tos    text[];
    e_details jsonb[];
    e_customers uuid[];
    e_severities text[];
    e_titles text[];
    e_types  text[];
    e_assignees text[];
BEGIN
    IF cs._is_distributed() THEN
        -- On a Citus cluster: the alerts read in one query, then the events
        -- of customers' alerts written in one INSERT (Citus sends each row to
        -- its customer's shard) and those of model and data alerts in
        -- another, in the order of the set-based statement below.
        ev_actor := cs.acting_user();
        WITH x AS (
            SELECT x.*
              FROM unnest(_log_alert_events.alert_ids, _log_alert_events.events, _log_alert_events.from_statuses,
                          _log_alert_events.details) WITH ORDINALITY AS x (alert_id, event, from_status, details, ord)
        ), al AS MATERIALIZED (
            SELECT al.id, al.status, al.customer_id, al.rule_id, al.severity, al.title, al.alert_type, al.assigned_to
              FROM cs.alerts al WHERE al.id = ANY (_log_alert_events.alert_ids)
        ), sa AS MATERIALIZED (
            SELECT sa.id, sa.status, sa.severity, sa.title, sa.alert_type, sa.assigned_to
              FROM cs.system_alerts sa WHERE sa.id = ANY (_log_alert_events.alert_ids)
        )
        SELECT array_agg(y.alert_id ORDER BY y.o), array_agg(y.event ORDER BY y.o), array_agg(y.from_status ORDER BY y.o),
               array_agg(y.status ORDER BY y.o), array_agg(y.details ORDER BY y.o), array_agg(y.customer_id ORDER BY y.o),
               array_agg(y.severity ORDER BY y.o), array_agg(y.title ORDER BY y.o), array_agg(y.alert_type ORDER BY y.o),
               array_agg(y.assigned_to ORDER BY y.o)
          INTO e_ids, e_events, e_froms, e_tos, e_details, e_customers, e_severities, e_titles, e_types, e_assignees
          FROM (SELECT x.alert_id, x.event, x.from_status, x.details,
                       coalesce(al.status, sa.status) AS status, al.customer_id,
                       coalesce(al.severity, sa.severity) AS severity, coalesce(al.title, sa.title) AS title,
                       coalesce(al.alert_type, sa.alert_type) AS alert_type,
                       coalesce(al.assigned_to, sa.assigned_to) AS assigned_to,
                       row_number() OVER (ORDER BY al.customer_id IS NULL, al.customer_id, al.rule_id, x.ord) AS o
                  FROM x LEFT JOIN al ON al.id = x.alert_id LEFT JOIN sa ON sa.id = x.alert_id
                 WHERE al.id IS NOT NULL OR sa.id IS NOT NULL) y;
        INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, actor, note, details, customer_id)
        SELECT e.alert_id, e.event, e.from_status, e.to_status, ev_actor, _log_alert_events.note, e.details, e.customer_id
          FROM unnest(e_ids, e_events, e_froms, e_tos, e_details, e_customers) WITH ORDINALITY
               AS e (alert_id, event, from_status, to_status, details, customer_id, i)
         WHERE e.customer_id IS NOT NULL
         ORDER BY e.i;
        GET DIAGNOSTICS logged = ROW_COUNT;
        INSERT INTO cs.system_alert_events (alert_id, event, from_status, to_status, actor, note, details)
        SELECT e.alert_id, e.event, e.from_status, e.to_status, ev_actor, _log_alert_events.note, e.details
          FROM unnest(e_ids, e_events, e_froms, e_tos, e_details, e_customers) WITH ORDINALITY
               AS e (alert_id, event, from_status, to_status, details, customer_id, i)
         WHERE e.customer_id IS NULL
         ORDER BY e.i;
        GET DIAGNOSTICS ev_count = ROW_COUNT;
        logged := logged + ev_count;
        PERFORM pg_notify('cs_alerts', jsonb_build_object('event', e.event, 'alert_id', e.alert_id,
                                                          'customer_id', e.customer_id, 'severity', e.severity,
                                                          'title', e.title, 'alert_type', e.alert_type,
                                                          'assigned_to', e.assigned_to)::text)
           FROM unnest(e_ids, e_events, e_customers, e_severities, e_titles, e_types, e_assignees) WITH ORDINALITY
                AS e (alert_id, event, customer_id, severity, title, alert_type, assigned_to, i)
          WHERE e.event IN ('created', 'escalated')
          ORDER BY e.i;
        RETURN logged;
    END IF;
    WITH x AS MATERIALIZED (
        SELECT x.*
          FROM unnest(_log_alert_events.alert_ids, _log_alert_events.events, _log_alert_events.from_statuses,
                      _log_alert_events.details) WITH ORDINALITY AS x (alert_id, event, from_status, details, ord)
    ), e AS MATERIALIZED (
        SELECT x.alert_id, x.event, x.from_status, x.details, x.ord,
               al.status, al.customer_id, al.rule_id, al.severity, al.title, al.alert_type, al.assigned_to
          FROM x JOIN cs.alerts al ON al.id = x.alert_id
        UNION ALL
        SELECT x.alert_id, x.event, x.from_status, x.details, x.ord,
               sa.status, NULL::uuid, NULL::int, sa.severity, sa.title, sa.alert_type, sa.assigned_to
          FROM x JOIN cs.system_alerts sa ON sa.id = x.alert_id
    ), ins AS (
        -- to_status is read from the alert: what it is now, after the change
        INSERT INTO cs.alert_events (alert_id, event, from_status, to_status, actor, note, details, customer_id)
        SELECT e.alert_id, e.event, e.from_status, e.status, cs.acting_user(), _log_alert_events.note, e.details,
               e.customer_id
          FROM e WHERE e.customer_id IS NOT NULL ORDER BY e.customer_id, e.rule_id, e.ord
        RETURNING 1
    ), ins_system AS (
        INSERT INTO cs.system_alert_events (alert_id, event, from_status, to_status, actor, note, details)
        SELECT e.alert_id, e.event, e.from_status, e.status, cs.acting_user(), _log_alert_events.note, e.details
          FROM e WHERE e.customer_id IS NULL ORDER BY e.ord
        RETURNING 1
    ), notified AS (
        SELECT pg_notify('cs_alerts', jsonb_build_object('event', n.event, 'alert_id', n.alert_id,
                                                         'customer_id', n.customer_id, 'severity', n.severity,
                                                         'title', n.title, 'alert_type', n.alert_type,
                                                         'assigned_to', n.assigned_to)::text)
          FROM (SELECT * FROM e WHERE event IN ('created', 'escalated') ORDER BY customer_id, rule_id, ord) n
    )
    -- (data-modifying CTEs always run; notified is read so that it runs too)
    SELECT (SELECT count(*) FROM ins) + (SELECT count(*) FROM ins_system) + 0 * (SELECT count(*) FROM notified)
      INTO logged;
    RETURN logged;
END;
$$;
COMMENT ON FUNCTION cs._log_alert_events(uuid[], text[], text[], text, jsonb[]) IS
    'Internal, the only writer of cs.alert_events and cs.system_alert_events: logs event i of alert_ids[i] (an alert of a customer or without one) with from_statuses[i] and details[i], to_status the alert''s status now, actor cs.acting_user(), customer_id the alert''s, in (customer, rule) order; sends NOTIFY cs_alerts for created and escalated alerts (delivered at commit). Returns the events logged.';

-- Raises alerts: re-fires (and escalates) the unresolved alert of each
-- firing's key, creates one where there is none (unless the rule's cooldown
-- since its last resolved or dismissed alert has not passed), logs created
-- and escalated events.  One statement writes, whatever the number of
-- firings; the events follow in a second (to_status read from the alerts).
-- cs._raise_alerts on a Citus cluster: the same rules and outcomes as the
-- set-based statement, in statements Citus can run where the alerts are:
--   1. one read of the unresolved alerts of the firings' customers, and of
--      those resolved within the longest cooldown (no lock: every writer of
--      new alerts holds the refresh lock, and the UPDATE checks the status
--      again);
--   2. the matching, the escalations and the new ids, here, over those rows
--      (the ids of rule alerts from the sequence in (customer, rule) order, as
--      the set-based statement draws them);
--   3. one UPDATE of the re-fired alerts per shard group (a modification
--      joined with its values must target one shard), then one INSERT of the
--      new alerts, which Citus routes to their shards.
-- Firings without a customer (model and data alerts, a few a day) go to the
-- reference table cs.system_alerts one at a time.  The times are computed here,
-- not by functions in the statements (Citus runs no volatile function in a
-- distributed UPDATE).
CREATE OR REPLACE FUNCTION cs._raise_alerts_each(firings cs.alert_firing[])
RETURNS TABLE (alert_id uuid, outcome text)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    f        record;
    cur      record;
    g        record;
    arow     cs.alerts;
    ts       timestamptz := now();
    esc      boolean;
    new_id   uuid;
    pre      cs.alerts[];
    cids     uuid[];
    longest  interval;
    cool_since timestamptz;
    -- per firing of a customer, in (customer, rule, given) order
    fs       cs.alert_firing[];
    fo       bigint[];
    f_cur    uuid[];
    f_old    text[];
    f_cool   boolean[];
    f_new    uuid[];
    upd      bigint[] := '{}';
    upd_status text[] := '{}';
    ids      uuid[];
    outcomes text[];
    froms    text[];
    dets     jsonb[];
    ords     bigint[];
    msgs     jsonb[];
    names    text[];
    name_ids uuid[];
BEGIN
    PERFORM cs._refresh_lock();

    -- 1. the customers' alerts that decide a firing: unresolved ones, and the
    --    resolved or dismissed ones that may hold a rule's cooldown
    SELECT array_agg(DISTINCT x.customer_id), max(x.cooldown)
      INTO cids, longest
      FROM unnest(firings) x WHERE x.customer_id IS NOT NULL;
    -- (a value, not an expression of parameters: Citus sends it typed)
    cool_since := ts - longest;
    IF cids IS NOT NULL THEN
        -- (EXECUTE: Citus sends the values typed to the shards, which it
        -- cannot do for the variables of a multi-shard query)
        EXECUTE 'SELECT array_agg(al) FROM cs.alerts al
                  WHERE al.customer_id = ANY ($1)
                    AND (al.status IN (''open'', ''acknowledged'', ''snoozed'')
                         OR (al.status IN (''resolved'', ''dismissed'') AND al.resolved_at > $2))'
           INTO pre USING cids, cool_since;
    END IF;

    -- 2. per firing of a customer, in (customer, rule, given) order: the
    --    firing, its unresolved alert, whether the rule's cooldown holds, the
    --    severity it had; joins by customer over the rows read (a lookup per
    --    firing would read them all again), and arrays walked in step
    --    (unnest of several arrays), not subscripted (which walks an array of
    --    composites from its start)
    SELECT array_agg(m.f ORDER BY m.customer_id, m.rule_id, m.ord),
           array_agg(m.ord ORDER BY m.customer_id, m.rule_id, m.ord),
           array_agg(m.cur_id ORDER BY m.customer_id, m.rule_id, m.ord),
           array_agg(m.old_severity ORDER BY m.customer_id, m.rule_id, m.ord),
           array_agg(m.cooling ORDER BY m.customer_id, m.rule_id, m.ord)
      INTO fs, fo, f_cur, f_old, f_cool
      FROM (SELECT DISTINCT ON (x.ord) x.ord, x.customer_id, x.rule_id,
                   ROW(x.customer_id, x.rule_id, x.alert_type, x.severity, x.title, x.description, x.risk_factors,
                       x.suggested_actions, x.assigned_to, x.mrr_at_risk, x.cooldown, x.details)::cs.alert_firing AS f,
                   c.id AS cur_id, c.severity AS old_severity,
                   coalesce(x.rule_id IS NOT NULL AND x.cooldown IS NOT NULL AND cl.last_resolved > ts - x.cooldown,
                            false) AS cooling
              FROM unnest(firings) WITH ORDINALITY AS x (customer_id, rule_id, alert_type, severity, title, description,
                                                         risk_factors, suggested_actions, assigned_to, mrr_at_risk,
                                                         cooldown, details, ord)
              LEFT JOIN (SELECT p.* FROM unnest(pre) p WHERE p.status IN ('open', 'acknowledged', 'snoozed')) c
                     ON c.customer_id = x.customer_id
                    AND CASE WHEN x.rule_id IS NOT NULL THEN c.rule_id = x.rule_id
                             ELSE c.rule_id IS NULL AND c.alert_type = x.alert_type
                                  AND cs._alert_key(c.alert_type, c.rule_id, c.risk_factors)
                                      = cs._alert_key(x.alert_type, x.rule_id, x.risk_factors) END
              LEFT JOIN (SELECT p.customer_id, p.rule_id, max(p.resolved_at) AS last_resolved
                           FROM unnest(pre) p WHERE p.status IN ('resolved', 'dismissed')
                          GROUP BY p.customer_id, p.rule_id) cl
                     ON cl.customer_id = x.customer_id AND cl.rule_id = x.rule_id
             WHERE x.customer_id IS NOT NULL
             ORDER BY x.ord, c.created_at, c.id) m;
    -- (the sequence in that order, one number per rule firing outside its
    -- cooldown; a firing without a rule gets a random id)
    SELECT array_agg(CASE WHEN z.rule_id IS NULL THEN gen_random_uuid()
                          WHEN z.cooling THEN NULL
                          ELSE md5(z.customer_id::text || ':' || z.rule_id || ':' || nextval('cs.alert_number'))::uuid END
                     ORDER BY z.i)
      INTO f_new
      FROM (SELECT * FROM unnest(fs, f_cool) WITH ORDINALITY AS z (customer_id, rule_id, alert_type, severity, title, description, risk_factors, suggested_actions, assigned_to, mrr_at_risk, cooldown, details, cooling, i) ORDER BY i) z;

    -- 3a. re-fire: one UPDATE per shard group (a modification joined with
    --     its values must target one shard), with only that group's values
    --     (Citus writes them into the statement it sends); the severity never
    --     goes down, the status and assignee stay (a status changed meanwhile
    --     by a lifecycle call is checked again here)
    FOR g IN SELECT array_agg(DISTINCT z.customer_id) AS gids,
                    array_agg(z.o ORDER BY z.o) AS u_o, array_agg(z.customer_id ORDER BY z.o) AS u_customer,
                    array_agg(z.cur_id ORDER BY z.o) AS u_id,
                    array_agg(cs.severity_rank(z.severity) > cs.severity_rank(z.old) ORDER BY z.o) AS u_esc,
                    array_agg(z.severity ORDER BY z.o) AS u_severity, array_agg(z.title ORDER BY z.o) AS u_title,
                    array_agg(z.description ORDER BY z.o) AS u_description,
                    array_agg(z.risk_factors ORDER BY z.o) AS u_factors,
                    array_agg(z.suggested_actions ORDER BY z.o) AS u_actions,
                    array_agg(z.mrr_at_risk ORDER BY z.o) AS u_mrr
               FROM unnest(fs, fo, f_cur, f_old) AS z (customer_id, rule_id, alert_type, severity, title, description, risk_factors, suggested_actions, assigned_to, mrr_at_risk, cooldown, details, o, cur_id, old)
              WHERE z.cur_id IS NOT NULL
              GROUP BY pg_catalog.get_shard_id_for_distribution_column('cs.customers', z.customer_id)
              ORDER BY 1
    LOOP
        FOR cur IN
            UPDATE cs.alerts al
               SET severity = CASE WHEN u.esc THEN u.severity ELSE al.severity END,
                   escalated_at = CASE WHEN u.esc THEN ts ELSE al.escalated_at END,
                   updated_at = CASE WHEN u.esc THEN ts ELSE al.updated_at END,
                   title = left(coalesce(u.title, al.title), 255),
                   description = coalesce(u.description, al.description),
                   risk_factors = u.risk_factors, suggested_actions = u.suggested_actions,
                   last_fired_at = ts, fire_count = al.fire_count + 1,
                   mrr_at_risk = coalesce(u.mrr_at_risk, 0)
              FROM unnest(g.u_o, g.u_customer, g.u_id, g.u_esc, g.u_severity, g.u_title, g.u_description, g.u_factors,
                          g.u_actions, g.u_mrr)
                   AS u (o, customer_id, cur_id, esc, severity, title, description, risk_factors, suggested_actions,
                         mrr_at_risk)
             WHERE al.customer_id = ANY (g.gids) AND al.customer_id = u.customer_id AND al.id = u.cur_id
               AND al.status IN ('open', 'acknowledged', 'snoozed')
            RETURNING u.o, al.status
        LOOP
            upd := upd || cur.o;
            upd_status := upd_status || cur.status::text;
        END LOOP;
    END LOOP;

    -- 3b. a new alert for every other firing outside its cooldown, in one
    --     INSERT (Citus sends each row to its customer's shard); the outbox
    --     message of each is enqueued after it (the statement trigger does
    --     not enqueue on a shard)
    FOR arow IN
        INSERT INTO cs.alerts AS al (id, customer_id, rule_id, alert_type, severity, title, description, risk_factors,
                                     suggested_actions, status, assigned_to, created_at, updated_at, updated_by,
                                     last_fired_at, fire_count, mrr_at_risk)
        SELECT n.new_id, n.customer_id, n.rule_id, n.alert_type, n.severity, left(n.title, 255),
               n.description, n.risk_factors, n.suggested_actions, 'open', n.assigned_to, ts, ts,
               current_user, ts, 1, coalesce(n.mrr_at_risk, 0)
          FROM (SELECT z.*
                  FROM unnest(fs, fo, f_new, f_cool) WITH ORDINALITY
                       AS z (customer_id, rule_id, alert_type, severity, title, description, risk_factors, suggested_actions, assigned_to, mrr_at_risk, cooldown, details, o, new_id, cooling, i)
                 WHERE NOT z.cooling AND NOT z.o = ANY (upd)) n
         ORDER BY n.i
        -- (every writer holds the refresh lock: no other creates an alert
        -- meanwhile; if one did, its alert stands and this firing is dropped)
        ON CONFLICT (customer_id, rule_id) WHERE status IN ('open', 'acknowledged', 'snoozed') DO NOTHING
        RETURNING al.*
    LOOP
        msgs := msgs || to_jsonb(arow);
    END LOOP;

    -- what happened to each firing of a customer
    SELECT array_agg(r.id ORDER BY r.o), array_agg(r.outcome ORDER BY r.o), array_agg(r.from_status ORDER BY r.o),
           array_agg(r.details ORDER BY r.o), array_agg(r.o ORDER BY r.o)
      INTO ids, outcomes, froms, dets, ords
      FROM (SELECT z.cur_id AS id, z.o,
                   CASE WHEN cs.severity_rank(z.severity) > cs.severity_rank(z.old) THEN 'escalated' ELSE 'refired' END AS outcome,
                   u.status AS from_status,
                   jsonb_build_object('from', z.old, 'to', CASE WHEN cs.severity_rank(z.severity) > cs.severity_rank(z.old)
                                                                THEN z.severity ELSE z.old END) AS details
              FROM unnest(fs, fo, f_cur, f_old) AS z (customer_id, rule_id, alert_type, severity, title, description, risk_factors, suggested_actions, assigned_to, mrr_at_risk, cooldown, details, o, cur_id, old)
              JOIN unnest(upd, upd_status) AS u (o, status) ON u.o = z.o
            UNION ALL
            SELECT z.new_id, z.o, 'created', NULL,
                   jsonb_build_object('severity', z.severity) || coalesce(z.details, '{}')
              FROM unnest(fs, fo, f_new) AS z (customer_id, rule_id, alert_type, severity, title, description, risk_factors, suggested_actions, assigned_to, mrr_at_risk, cooldown, details, o, new_id)
             WHERE z.new_id IN (SELECT (m.j ->> 'id')::uuid FROM unnest(msgs) m (j))) r;

    -- firings without a customer: cs.system_alerts, one at a time
    FOR f IN SELECT x.*
               FROM unnest(firings) WITH ORDINALITY AS x (customer_id, rule_id, alert_type, severity, title, description,
                                                          risk_factors, suggested_actions, assigned_to, mrr_at_risk,
                                                          cooldown, details, ord)
              WHERE x.customer_id IS NULL
              ORDER BY x.rule_id, x.ord
    LOOP
        cur := NULL;
        SELECT sa.id, sa.severity, sa.status INTO cur FROM cs.system_alerts sa
         WHERE sa.alert_type = f.alert_type AND sa.status IN ('open', 'acknowledged', 'snoozed')
           AND cs._alert_key(sa.alert_type, NULL, sa.risk_factors) = cs._alert_key(f.alert_type, f.rule_id, f.risk_factors)
           FOR UPDATE;
        IF cur.id IS NOT NULL THEN
            esc := cs.severity_rank(f.severity) > cs.severity_rank(cur.severity);
            UPDATE cs.system_alerts al
               SET severity = CASE WHEN esc THEN f.severity ELSE al.severity END,
                   escalated_at = CASE WHEN esc THEN ts ELSE al.escalated_at END,
                   updated_at = CASE WHEN esc THEN ts ELSE al.updated_at END,
                   title = left(coalesce(f.title, al.title), 255),
                   description = coalesce(f.description, al.description),
                   risk_factors = f.risk_factors, suggested_actions = f.suggested_actions,
                   last_fired_at = ts, fire_count = al.fire_count + 1
             WHERE al.id = cur.id;
            ids := ids || cur.id;
            outcomes := outcomes || CASE WHEN esc THEN 'escalated' ELSE 'refired' END;
            froms := froms || cur.status::text;
            dets := dets || jsonb_build_object('from', cur.severity, 'to', CASE WHEN esc THEN f.severity ELSE cur.severity END);
            ords := ords || f.ord;
            CONTINUE;
        END IF;
        INSERT INTO cs.system_alerts AS al (id, alert_type, severity, title, description, risk_factors,
                                            suggested_actions, status, assigned_to, created_at, updated_at, updated_by,
                                            last_fired_at, fire_count)
        VALUES (gen_random_uuid(), f.alert_type, f.severity, left(f.title, 255), f.description, f.risk_factors,
                f.suggested_actions, 'open', f.assigned_to, ts, ts, current_user, ts, 1)
        ON CONFLICT DO NOTHING
        RETURNING al.id INTO new_id;
        CONTINUE WHEN new_id IS NULL;
        msgs := msgs || (SELECT to_jsonb(sa) FROM cs.system_alerts sa WHERE sa.id = new_id);
        ids := ids || new_id;
        outcomes := outcomes || 'created'::text;
        froms := froms || NULL::text;
        dets := dets || (jsonb_build_object('severity', f.severity) || coalesce(f.details, '{}'));
        ords := ords || f.ord;
    END LOOP;

    -- the outbox, in the order the statement trigger enqueues, with the
    -- customers' names (one read of them)
    cids := ARRAY(SELECT DISTINCT (m.j ->> 'customer_id')::uuid FROM unnest(msgs) m (j)
                   WHERE m.j ->> 'customer_id' IS NOT NULL);
    SELECT array_agg(cu.id), array_agg(cu.name::text) INTO name_ids, names
      FROM cs.customers cu WHERE cu.id = ANY (cids);
    names := ARRAY(SELECT c.name FROM unnest(msgs) WITH ORDINALITY m (j, i)
                     LEFT JOIN unnest(name_ids, names) c (id, name) ON c.id = (m.j ->> 'customer_id')::uuid
                    ORDER BY m.i);
    PERFORM cs._enqueue_alert(m.n, m.customer) FROM unnest(msgs, names) AS m (n, customer)
     ORDER BY m.n ->> 'created_at', m.n ->> 'id';
    -- in the order of the firings, as the set-based statement returns them
    SELECT array_agg(x.id ORDER BY x.o), array_agg(x.outcome ORDER BY x.o), array_agg(x.from_status ORDER BY x.o),
           array_agg(x.details ORDER BY x.o)
      INTO ids, outcomes, froms, dets
      FROM unnest(ids, outcomes, froms, dets, ords) AS x (id, outcome, from_status, details, o);
    PERFORM cs._log_alert_events(array_agg(e.id), array_agg(e.outcome), array_agg(e.from_status), NULL, array_agg(e.details))
       FROM unnest(ids, outcomes, froms, dets) AS e (id, outcome, from_status, details)
      WHERE e.outcome <> 'refired';
    RETURN QUERY SELECT x.id, x.outcome FROM unnest(ids, outcomes) AS x (id, outcome);
END;
$$;
COMMENT ON FUNCTION cs._raise_alerts_each(cs.alert_firing[]) IS
    'Internal: cs._raise_alerts on a Citus cluster: one read of the customers'' alerts, the matching and new ids where the refresh runs, one UPDATE of the re-fired alerts per shard group and one INSERT of the new ones; model and data alerts (cs.system_alerts) one at a time. Same outcomes and events as the set-based statement.';

CREATE OR REPLACE FUNCTION cs._raise_alerts(firings cs.alert_firing[])
RETURNS TABLE (alert_id uuid, outcome text)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ids      uuid[];
    outcomes text[];
    froms    text[];
    dets     jsonb[];
BEGIN
    PERFORM cs._refresh_lock();
    IF cs._is_distributed() THEN
        RETURN QUERY SELECT * FROM cs._raise_alerts_each(firings);
        RETURN;
    END IF;
    WITH f AS MATERIALIZED (
        SELECT x.*, x.o AS ord
          FROM unnest(firings) WITH ORDINALITY AS x (customer_id, rule_id, alert_type, severity, title, description,
                                                     risk_factors, suggested_actions, assigned_to, mrr_at_risk,
                                                     cooldown, details, o)
    ), cur AS (
        -- the unresolved alert of each firing's key
        SELECT f.ord, f.severity, f.title, f.description, f.risk_factors, f.suggested_actions, f.mrr_at_risk,
               al.id, al.severity AS old_severity, false AS system
          FROM f JOIN cs.alerts al ON al.customer_id = f.customer_id AND al.rule_id = f.rule_id
         WHERE al.status IN ('open', 'acknowledged', 'snoozed')
        UNION ALL
        SELECT f.ord, f.severity, f.title, f.description, f.risk_factors, f.suggested_actions, f.mrr_at_risk,
               al.id, al.severity, false
          FROM f JOIN cs.alerts al ON al.customer_id = f.customer_id AND al.alert_type = f.alert_type
                                  AND cs._alert_key(al.alert_type, al.rule_id, al.risk_factors)
                                      = cs._alert_key(f.alert_type, f.rule_id, f.risk_factors)
         WHERE f.rule_id IS NULL AND al.rule_id IS NULL
           AND al.status IN ('open', 'acknowledged', 'snoozed')
        UNION ALL
        -- alerts without a customer (model and data): cs.system_alerts
        SELECT f.ord, f.severity, f.title, f.description, f.risk_factors, f.suggested_actions, f.mrr_at_risk,
               sa.id, sa.severity, true
          FROM f JOIN cs.system_alerts sa ON sa.alert_type = f.alert_type
                                         AND cs._alert_key(sa.alert_type, NULL, sa.risk_factors)
                                             = cs._alert_key(f.alert_type, f.rule_id, f.risk_factors)
         WHERE f.customer_id IS NULL AND sa.status IN ('open', 'acknowledged', 'snoozed')
    ), up_customer AS (
        -- Re-fire: the severity never goes down; the status and an assignee
        -- a CSM set stay.  (A status changed meanwhile by a lifecycle call is
        -- checked again by the UPDATE.)
        UPDATE cs.alerts al
           SET severity = CASE WHEN cs.severity_rank(cur.severity) > cs.severity_rank(al.severity)
                               THEN cur.severity ELSE al.severity END,
               escalated_at = CASE WHEN cs.severity_rank(cur.severity) > cs.severity_rank(al.severity)
                                   THEN now() ELSE al.escalated_at END,
               updated_at = CASE WHEN cs.severity_rank(cur.severity) > cs.severity_rank(al.severity)
                                 THEN now() ELSE al.updated_at END,
               title = left(coalesce(cur.title, al.title), 255),
               description = coalesce(cur.description, al.description),
               risk_factors = cur.risk_factors,
               suggested_actions = cur.suggested_actions,
               last_fired_at = now(),
               fire_count = al.fire_count + 1,
               mrr_at_risk = coalesce(cur.mrr_at_risk, 0)
          FROM cur
         WHERE NOT cur.system AND al.id = cur.id AND al.status IN ('open', 'acknowledged', 'snoozed')
        RETURNING al.id, cur.ord, al.status, cur.old_severity, al.severity
    ), up_system AS (
        -- the same for alerts without a customer (no MRR)
        UPDATE cs.system_alerts al
           SET severity = CASE WHEN cs.severity_rank(cur.severity) > cs.severity_rank(al.severity)
                               THEN cur.severity ELSE al.severity END,
               escalated_at = CASE WHEN cs.severity_rank(cur.severity) > cs.severity_rank(al.severity)
                                   THEN now() ELSE al.escalated_at END,
               updated_at = CASE WHEN cs.severity_rank(cur.severity) > cs.severity_rank(al.severity)
                                 THEN now() ELSE al.updated_at END,
               title = left(coalesce(cur.title, al.title), 255),
               description = coalesce(cur.description, al.description),
               risk_factors = cur.risk_factors,
               suggested_actions = cur.suggested_actions,
               last_fired_at = now(),
               fire_count = al.fire_count + 1
          FROM cur
         WHERE cur.system AND al.id = cur.id AND al.status IN ('open', 'acknowledged', 'snoozed')
        RETURNING al.id, cur.ord, al.status, cur.old_severity, al.severity
    ), up AS (
        SELECT * FROM up_customer UNION ALL SELECT * FROM up_system
    ), s AS MATERIALIZED (
        -- A new alert for every other key.  Ids of rule alerts come from the
        -- sequence in (customer, rule) order, as a fresh database replays
        -- them: every firing outside its rule's cooldown draws a number, a
        -- re-firing too.
        SELECT CASE WHEN n.rule_id IS NOT NULL
                    THEN md5(n.customer_id::text || ':' || n.rule_id || ':' || nextval('cs.alert_number'))::uuid
                    ELSE gen_random_uuid() END AS id,
               n.*
          FROM (SELECT f.* FROM f
                 WHERE (f.cooldown IS NULL OR f.rule_id IS NULL
                        OR NOT EXISTS (SELECT 1 FROM cs.alerts p
                                        WHERE p.customer_id = f.customer_id AND p.rule_id = f.rule_id
                                          AND p.status IN ('resolved', 'dismissed') AND p.resolved_at > now() - f.cooldown))
                 ORDER BY f.customer_id, f.rule_id, f.ord) n
    ), ins AS (
        INSERT INTO cs.alerts AS al (id, customer_id, rule_id, alert_type, severity, title, description, risk_factors,
                                     suggested_actions, status, assigned_to, created_at, updated_at, updated_by,
                                     last_fired_at, fire_count, mrr_at_risk)
        SELECT s.id, s.customer_id, s.rule_id, s.alert_type, s.severity, left(s.title, 255), s.description,
               s.risk_factors, s.suggested_actions, 'open', s.assigned_to, now(), now(), current_user, now(), 1,
               coalesce(s.mrr_at_risk, 0)
          FROM s
         WHERE s.customer_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM up WHERE up.ord = s.ord)
         ORDER BY s.customer_id, s.rule_id, s.ord
        -- (every writer holds the refresh lock: no other creates an alert
        -- meanwhile; if one did, its alert stands and this firing is dropped)
        ON CONFLICT (customer_id, rule_id) WHERE status IN ('open', 'acknowledged', 'snoozed') DO NOTHING
        RETURNING al.id
    ), ins_system AS (
        -- (a firing without a customer has no rule: the CHECK on alert_type
        -- refuses any but model and data; a concurrent alert of the same key
        -- stands, as above)
        INSERT INTO cs.system_alerts AS al (id, alert_type, severity, title, description, risk_factors,
                                            suggested_actions, status, assigned_to, created_at, updated_at, updated_by,
                                            last_fired_at, fire_count)
        SELECT s.id, s.alert_type, s.severity, left(s.title, 255), s.description, s.risk_factors,
               s.suggested_actions, 'open', s.assigned_to, now(), now(), current_user, now(), 1
          FROM s
         WHERE s.customer_id IS NULL AND NOT EXISTS (SELECT 1 FROM up WHERE up.ord = s.ord)
         ORDER BY s.ord
        ON CONFLICT DO NOTHING
        RETURNING al.id
    ), done AS (
        SELECT up.id, up.ord,
               CASE WHEN cs.severity_rank(up.severity) > cs.severity_rank(up.old_severity)
                    THEN 'escalated' ELSE 'refired' END AS outcome,
               up.status AS from_status, jsonb_build_object('from', up.old_severity, 'to', up.severity) AS details
          FROM up
        UNION ALL
        SELECT s.id, s.ord, 'created', NULL, jsonb_build_object('severity', s.severity) || coalesce(s.details, '{}')
          FROM (SELECT ins.id FROM ins UNION ALL SELECT ins_system.id FROM ins_system) i JOIN s ON s.id = i.id
    )
    SELECT array_agg(d.id ORDER BY d.ord), array_agg(d.outcome ORDER BY d.ord),
           array_agg(d.from_status ORDER BY d.ord), array_agg(d.details ORDER BY d.ord)
      INTO ids, outcomes, froms, dets
      FROM done d;
    -- events of what changed: re-firing without escalation changes no status
    PERFORM cs._log_alert_events(array_agg(e.id), array_agg(e.outcome), array_agg(e.from_status), NULL, array_agg(e.details))
       FROM unnest(ids, outcomes, froms, dets) AS e (id, outcome, from_status, details)
      WHERE e.outcome <> 'refired';
    RETURN QUERY SELECT x.id, x.outcome FROM unnest(ids, outcomes) AS x (id, outcome);
END;
$$;
COMMENT ON FUNCTION cs._raise_alerts(cs.alert_firing[]) IS
    'Internal, the only writer of new alerts (rules, model drift, data quality): for each firing re-fires the unresolved alert of its key (customer and rule; task; model; data check and subject; firings without a customer in cs.system_alerts), escalating its severity when the firing is more severe and keeping its status and assignee, or creates an open alert unless the rule''s cooldown since its last resolved or dismissed alert has not passed; logs created and escalated events (cs._log_alert_events). Returns each alert written and created, escalated or refired.';

-- Auto-resolves alerts that are still unresolved: the condition that raised
-- them is gone.
CREATE OR REPLACE FUNCTION cs._resolve_alerts(alert_ids uuid[], note text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ids   uuid[];
    froms text[];
    ra    record;
    was_status text;
BEGIN
    PERFORM cs._refresh_lock();
    IF cs._is_distributed() THEN
        -- On a Citus cluster: each alert of a customer by its key (customer,
        -- id), in id order, locked and resolved on its own shard; the alerts
        -- without a customer (a reference table) in one statement.
        FOR ra IN SELECT al.customer_id, al.id FROM cs.alerts al
                  WHERE al.id = ANY (alert_ids) AND al.status IN ('open', 'acknowledged', 'snoozed')
                  ORDER BY al.id
        LOOP
            WITH cur AS (
                SELECT al.id, al.status FROM cs.alerts al
                 WHERE al.customer_id = ra.customer_id AND al.id = ra.id
                   AND al.status IN ('open', 'acknowledged', 'snoozed')
                   FOR UPDATE OF al
            )
            UPDATE cs.alerts al SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
                                    updated_at = now(), updated_by = current_user
              FROM cur
             WHERE al.customer_id = ra.customer_id AND al.id = cur.id
            RETURNING cur.status INTO was_status;
            IF was_status IS NOT NULL THEN
                ids := ids || ra.id;
                froms := froms || was_status;
            END IF;
        END LOOP;
        FOR ra IN WITH cur AS (
                     SELECT sa.id, sa.status FROM cs.system_alerts sa
                      WHERE sa.id = ANY (alert_ids) AND sa.status IN ('open', 'acknowledged', 'snoozed')
                      ORDER BY sa.id
                        FOR UPDATE OF sa
                 )
                 UPDATE cs.system_alerts sa SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
                                                updated_at = now(), updated_by = current_user
                   FROM cur
                  WHERE sa.id = cur.id
                 RETURNING sa.id, cur.status AS was
        LOOP
            ids := ids || ra.id;
            froms := froms || ra.was;
        END LOOP;
        IF ids IS NULL THEN
            RETURN 0;
        END IF;
        PERFORM cs._log_alert_events(ids, array_fill('auto_resolved'::text, ARRAY[cardinality(ids)]), froms, note);
        RETURN cardinality(ids);
    END IF;
    -- Locked in id order; the status read is the one the alert has under the
    -- lock (a CSM may have acknowledged or snoozed it meanwhile).
    WITH k AS MATERIALIZED (
        SELECT DISTINCT x FROM unnest(alert_ids) x
    ), cur AS (
        SELECT al.id, al.status
          FROM cs.alerts al
          JOIN k ON k.x = al.id
         WHERE al.status IN ('open', 'acknowledged', 'snoozed')
         ORDER BY al.id
           FOR UPDATE OF al
    ), cur_system AS (
        SELECT sa.id, sa.status
          FROM cs.system_alerts sa
          JOIN k ON k.x = sa.id
         WHERE sa.status IN ('open', 'acknowledged', 'snoozed')
         ORDER BY sa.id
           FOR UPDATE OF sa
    ), res AS (
        UPDATE cs.alerts al SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
                                updated_at = now(), updated_by = current_user
          FROM cur
         WHERE al.id = cur.id
        RETURNING al.id, cur.status AS was
    ), res_system AS (
        UPDATE cs.system_alerts sa SET status = 'resolved', resolved_at = now(), snoozed_until = NULL,
                                       updated_at = now(), updated_by = current_user
          FROM cur_system
         WHERE sa.id = cur_system.id
        RETURNING sa.id, cur_system.status AS was
    )
    SELECT array_agg(r.id), array_agg(r.was) INTO ids, froms
      FROM (SELECT * FROM res UNION ALL SELECT * FROM res_system) r;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM cs._log_alert_events(ids, array_fill('auto_resolved'::text, ARRAY[cardinality(ids)]), froms, note);
    RETURN cardinality(ids);
END;
$$;
COMMENT ON FUNCTION cs._resolve_alerts(uuid[], text) IS
    'Internal, the one auto-resolution of alerts (rules, churned or merged customers, model drift, data quality): resolves those of the given alerts (of customers or without one) that are still open, acknowledged or snoozed (clearing the snooze, stamping resolved_at), and logs auto_resolved events from the status each had, with the note. Returns how many it resolved.';

-- What the alert rules read of each customer not churned (all when ids is
-- NULL): its row, its stored vector, its latest health score, its latest
-- churn, downgrade and payment risks (NULL when the model does not apply to
-- this data) and its open opportunities.  A PL/pgSQL function, so that the
-- rules run where the evaluation runs: on a Citus cluster these rows come
-- from the shards (every table names the customers, so the query goes whole
-- to their shard), and the condition evaluator, which reads the feature
-- catalog, is not run inside a shard's query.
CREATE OR REPLACE FUNCTION cs._alert_inputs(ids uuid[])
RETURNS TABLE (cu cs.customers, features float4[], h cs.customer_health_scores,
               rk_score numeric, rk_factors jsonb, dg_score numeric, dg_factors jsonb,
               py_score numeric, py_factors jsonb,
               o_best numeric, o_total numeric, o_ex_best numeric, o_ex_total numeric, o_kinds jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    -- The customers are named on cs.customers and on the joined feature
    -- store; the correlated subqueries follow them by customer_id, the
    -- distribution column, so that Citus pushes the whole query down to the
    -- shards.  Naming them inside the subqueries too made each of their index
    -- scans sort the whole list again, once per customer and partition (a
    -- shard group of 3,000 customers: 5.4 s for the health scores alone,
    -- against 0.1 s without).
    f text := CASE WHEN ids IS NULL THEN '' ELSE ' AND %1$s.customer_id = ANY ($1)' END;
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT cu, cf.features, hh.h, rk.risk_score, rk.risk_factors, dg.risk_score, dg.risk_factors,
               py.risk_score, py.risk_factors, o.best, o.total, o.ex_best, o.ex_total, o.kinds
          FROM cs.customers cu
          LEFT JOIN cs.customer_features cf ON cf.customer_id = cu.id%1$s
          LEFT JOIN LATERAL (SELECT s AS h FROM cs.customer_health_scores s WHERE s.customer_id = cu.id%2$s
                              ORDER BY s.calculated_at DESC LIMIT 1) hh ON true
          -- a score from a model that does not apply to this data raises nothing
          LEFT JOIN LATERAL (SELECT CASE WHEN x.model_applicable THEN x.risk_score END AS risk_score,
                                    CASE WHEN x.model_applicable THEN x.risk_factors END AS risk_factors
                               FROM cs.risk_assessments x
                              WHERE x.customer_id = cu.id%3$s AND x.risk_type = 'churn'
                              ORDER BY x.created_at DESC LIMIT 1) rk ON true
          LEFT JOIN LATERAL (SELECT CASE WHEN x.model_applicable THEN x.risk_score END AS risk_score,
                                    CASE WHEN x.model_applicable THEN x.risk_factors END AS risk_factors
                               FROM cs.risk_assessments x
                              WHERE x.customer_id = cu.id%3$s AND x.risk_type = 'downgrade'
                              ORDER BY x.created_at DESC LIMIT 1) dg ON true
          LEFT JOIN LATERAL (SELECT CASE WHEN x.model_applicable THEN x.risk_score END AS risk_score,
                                    CASE WHEN x.model_applicable THEN x.risk_factors END AS risk_factors
                               FROM cs.risk_assessments x
                              WHERE x.customer_id = cu.id%3$s AND x.risk_type = 'payment'
                              ORDER BY x.created_at DESC LIMIT 1) py ON true
          LEFT JOIN LATERAL (SELECT max(op.score) AS best, sum(op.expected_mrr) AS total,
                                    max(op.score) FILTER (WHERE op.kind = 'expansion') AS ex_best,
                                    sum(op.expected_mrr) FILTER (WHERE op.kind = 'expansion') AS ex_total,
                                    jsonb_agg(jsonb_build_object('source', 'opportunity', 'kind', op.kind, 'score', op.score,
                                                                 'expected_mrr', op.expected_mrr, 'product', op.product)
                                              ORDER BY op.score DESC, op.kind, op.product) AS kinds
                               FROM cs.opportunities op
                              WHERE op.customer_id = cu.id%4$s AND op.status IN ('open', 'in_progress')) o ON true
         WHERE cu.churned_at IS NULL%5$s$q$,
        format(f, 'cf'), '', '', '',
        CASE WHEN ids IS NULL THEN '' ELSE ' AND cu.id = ANY ($1)' END)
    USING ids;
END;
$$;
COMMENT ON FUNCTION cs._alert_inputs(uuid[]) IS
    'Internal: what the alert rules read of each customer not churned (all when NULL): its row, stored vector, latest health score, latest churn, downgrade and payment risks (NULL when the model does not apply) and open opportunities.';

-- The unresolved alerts of the given customers (all when NULL), by rule.
CREATE OR REPLACE FUNCTION cs._open_alerts(ids uuid[])
RETURNS TABLE (id uuid, customer_id uuid, rule_id int)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF ids IS NULL THEN
        RETURN QUERY SELECT al.id, al.customer_id, al.rule_id FROM cs.alerts al
                      WHERE al.status IN ('open', 'acknowledged', 'snoozed');
    ELSE
        RETURN QUERY SELECT al.id, al.customer_id, al.rule_id FROM cs.alerts al
                      WHERE al.customer_id = ANY (ids) AND al.status IN ('open', 'acknowledged', 'snoozed');
    END IF;
END;
$$;
COMMENT ON FUNCTION cs._open_alerts(uuid[]) IS
    'Internal: the open, acknowledged or snoozed alerts of the given customers (all when NULL), with their rule.';

CREATE OR REPLACE FUNCTION cs.evaluate_alerts(ids uuid[] DEFAULT NULL)
RETURNS TABLE (created int, escalated int, refired int, resolved int, reopened int)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    aids      uuid[];
    clear_ids uuid[];
    firings   cs.alert_firing[];
    pb_rows   cs.playbooks[];
    eff_rows  cs.playbook_effectiveness[];
BEGIN
    -- like every writer of results: two evaluations would insert the same
    -- alerts' keys in different orders
    PERFORM cs._refresh_lock();
    created := 0; escalated := 0; refired := 0; resolved := 0; reopened := 0;

    -- Snoozes that have passed: back to open.
    WITH re AS (
        UPDATE cs.alerts al SET status = 'open', snoozed_until = NULL, updated_at = now(), updated_by = current_user
         WHERE al.status = 'snoozed' AND al.snoozed_until <= now()
           AND (ids IS NULL OR al.customer_id = ANY (ids))
        RETURNING al.id
    ), re_system AS (
        -- alerts without a customer: on a full evaluation
        UPDATE cs.system_alerts sa SET status = 'open', snoozed_until = NULL, updated_at = now(), updated_by = current_user
         WHERE ids IS NULL AND sa.status = 'snoozed' AND sa.snoozed_until <= now()
        RETURNING sa.id)
    SELECT array_agg(r.id) INTO aids FROM (SELECT re.id FROM re UNION ALL SELECT re_system.id FROM re_system) r;
    IF aids IS NOT NULL THEN
        reopened := cs._log_alert_events(aids, array_fill('reopened'::text, ARRAY[cardinality(aids)]),
                                         array_fill('snoozed'::text, ARRAY[cardinality(aids)]), 'snooze ended');
    END IF;

    -- A churned customer is past alerting: close what is still open.
    resolved := resolved + cs._resolve_alerts(ARRAY(SELECT al.id FROM cs.alerts al JOIN cs.customers cu ON cu.id = al.customer_id
                                                      WHERE cu.churned_at IS NOT NULL
                                                        AND al.status IN ('open', 'acknowledged', 'snoozed')
                                                        AND (ids IS NULL OR al.customer_id = ANY (ids))),
                                              'customer churned');

    -- The playbooks and what the feedback learnt of them, read once for every
    -- set of factors ranked below (on a Citus cluster the effectiveness is a
    -- query over the distributed cs.actions).
    pb_rows := ARRAY(SELECT p FROM cs.playbooks p WHERE p.enabled ORDER BY p.name);
    eff_rows := ARRAY(SELECT e FROM cs.playbook_effectiveness e ORDER BY e.playbook, e.factor);

    -- Every rule against every customer at once: the context of each customer
    -- is built once, each (customer, rule) pair is decided by the C condition
    -- evaluator; what fired and what cleared go to the shared path of all
    -- alert writers (cs._raise_alerts, cs._resolve_alerts), set-based.
    WITH rinfo AS MATERIALIZED (
        -- per rule, once: the features and scores its condition names, and
        -- whether it tests the band, as the one condition parser reads them
        SELECT r.*,
               ARRAY(SELECT DISTINCT x FROM unnest(t.features) x) AS cfeatures,
               ARRAY(SELECT DISTINCT x FROM unnest(t.scores) x) AS cscores,
               t.tests_band AS cband
          FROM cs.alert_rules r
         CROSS JOIN LATERAL cs._condition_terms(r.condition) t
         WHERE r.enabled AND r.alert_type IN ('risk', 'opportunity')
    ), ctx AS MATERIALIZED (
        -- each customer's context, and which rules hold for it (in rule id
        -- order): kept with the customer, so the pairs need no join back
        SELECT x.*, h.rule_ids, h.holds, h.autos FROM (
        SELECT (ai.cu).id AS customer_id, (ai.cu).csm, coalesce((ai.cu).mrr, 0) AS mrr,
               jsonb_build_object(
                 'features', fm.m,
                 'scores', jsonb_build_object('churn_risk', ai.rk_score, 'overall_score', (ai.h).overall_score,
                                              'usage_score', (ai.h).usage_score, 'engagement_score', (ai.h).engagement_score,
                                              'support_score', (ai.h).support_score, 'payment_score', (ai.h).payment_score,
                                              'opportunity_score', ai.o_best, 'opportunity_mrr', ai.o_total,
                                              'downgrade_risk', ai.dg_score, 'payment_risk', ai.py_score,
                                              'expansion_score', ai.o_ex_best, 'expansion_mrr', ai.o_ex_total),
                 'band', (ai.h).band) AS ctx,
               ai.rk_factors AS risk_factors, (ai.h).drivers AS drivers, ai.o_kinds AS kinds,
               jsonb_build_object('downgrade_risk', ai.dg_factors, 'payment_risk', ai.py_factors) AS model_factors,
               cs._template_values(ai.cu, fm.m, (ai.h).overall_score, (ai.h).band, (ai.h).drivers, ai.rk_score, ai.rk_factors)
               || cs._more_template_values(ai.dg_score, ai.py_score, ai.o_ex_total) AS vals
          -- the customers' inputs through a function: on a Citus cluster they
          -- are read on the shards, and the rules and the feature catalog are
          -- read here, not inside a shard's query
          FROM cs._alert_inputs(ids) ai
         -- OFFSET 0 keeps the map computed once per customer, not once per use
         CROSS JOIN LATERAL (SELECT cs.feature_map(coalesce(ai.features, '{}')) AS m OFFSET 0) fm
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
        SELECT al.id
          FROM cs._open_alerts(ids) al
          JOIN ev ON ev.customer_id = al.customer_id AND ev.rule_id = al.rule_id
         WHERE ev.holds IS FALSE AND ev.auto_resolve
    ), fire AS MATERIALIZED (
        -- Why: the terms of the condition with their current values, and for
        -- risk alerts the churn model's factors and the health drivers; for
        -- opportunity alerts the customer's opportunities; then the factors of
        -- the downgrade and payment models whose risk the condition tests.
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
                                                      ev.risk_factors, ev.drivers, ev.kinds)
                                    || cs._risk_model_factors(ev.model_factors, r.cscores) AS factors
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
         CROSS JOIN LATERAL cs._rank_playbooks(n.names, n.terms, pb_rows, eff_rows) k
          JOIN unnest(pb_rows) p ON p.name = k.playbook
         WHERE k.rank <= 3
         GROUP BY n.names, n.terms
    )
    SELECT (SELECT array_agg(cleared.id) FROM cleared),
           (SELECT array_agg(ROW(f.customer_id, f.rule_id, f.alert_type, f.sev,
                                 cs.fill_template(coalesce(f.rtitle, f.rname), f.vals), f.description, f.factors,
                                 (SELECT coalesce(jsonb_agg((e.x - 'template')
                                                            || jsonb_build_object('message', cs.fill_template(e.x ->> 'template', f.vals))
                                                            ORDER BY e.o), '[]')
                                    FROM jsonb_array_elements(k.items) WITH ORDINALITY e(x, o)),
                                 f.csm, f.mrr, f.cooldown, NULL)::cs.alert_firing
                             ORDER BY f.customer_id, f.rule_id)
              FROM fire f
              LEFT JOIN ranked k ON k.names = f.names AND k.terms = f.terms)
      INTO clear_ids, firings;

    resolved := resolved + cs._resolve_alerts(clear_ids, 'condition cleared');
    SELECT count(*) FILTER (WHERE r.outcome = 'created'), count(*) FILTER (WHERE r.outcome = 'escalated'),
           count(*) FILTER (WHERE r.outcome = 'refired')
      INTO created, escalated, refired
      FROM cs._raise_alerts(firings) r;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION cs.evaluate_alerts(uuid[]) IS
    'Evaluates the enabled risk and opportunity rules for the given customers (all when NULL) over their stored features, latest health, latest churn, downgrade and payment risks (each none when the model that scored it does not apply to this data) and open opportunities (expansion_score and expansion_mrr: those of kind expansion): '
    'reopens alerts whose snooze has passed (those without a customer too, when ids is NULL), resolves those of churned customers, raises new alerts (unless a resolved or dismissed one is within the rule''s cooldown), updates and escalates open ones, '
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
    sa   cs.system_alerts;
    prev text;
    details jsonb;
    who  name;
    ts   timestamptz;
BEGIN
    who := cs._require_csm(CASE ev WHEN 'acknowledged' THEN 'acknowledge' WHEN 'resolved' THEN 'resolve'
                                   WHEN 'dismissed' THEN 'dismiss' WHEN 'snoozed' THEN 'snooze'
                                   ELSE 'reassign' END || ' alerts');
    IF alert_id IS NULL THEN
        RAISE EXCEPTION 'alert id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- An alert the caller may not see is neither locked nor found.  Its
    -- customer first, then the row locked by its key (on a Citus cluster a
    -- row lock needs the shard: the customer).
    SELECT al.customer_id INTO a.customer_id FROM cs.alerts al WHERE al.id = alert_id;
    IF FOUND AND cs._user_sees_customer(who, a.customer_id) THEN
        SELECT * INTO a FROM cs.alerts al WHERE al.customer_id = a.customer_id AND al.id = alert_id FOR UPDATE;
    ELSE
        a := NULL;
    END IF;
    IF a.id IS NULL THEN
        -- an alert without a customer (model, data): admins only
        IF cs._user_sees_customer(who, NULL) THEN
            SELECT * INTO sa FROM cs.system_alerts x WHERE x.id = alert_id FOR UPDATE;
        END IF;
        IF sa.id IS NULL THEN
            RAISE EXCEPTION 'alert % does not exist', alert_id USING ERRCODE = 'no_data_found';
        END IF;
        a := cs._as_alert(sa);
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
    -- (the time as a value: Citus runs no function but immutable ones in a
    -- CASE of an UPDATE of its tables)
    ts := now();
    IF a.customer_id IS NOT NULL THEN
        UPDATE cs.alerts al
           SET status = coalesce(new_status, al.status),
               resolved_at = CASE WHEN new_status IN ('resolved', 'dismissed') THEN ts ELSE al.resolved_at END,
               snoozed_until = CASE WHEN new_status = 'snoozed' THEN until
                                    WHEN new_status IS NULL THEN al.snoozed_until END,
               assigned_to = coalesce(assignee, al.assigned_to),
               updated_at = ts,
               updated_by = who
         WHERE al.customer_id = a.customer_id AND al.id = alert_id
        RETURNING al.* INTO a;
    ELSE
        UPDATE cs.system_alerts x
           SET status = coalesce(new_status, x.status),
               resolved_at = CASE WHEN new_status IN ('resolved', 'dismissed') THEN ts ELSE x.resolved_at END,
               snoozed_until = CASE WHEN new_status = 'snoozed' THEN until
                                    WHEN new_status IS NULL THEN x.snoozed_until END,
               assigned_to = coalesce(assignee, x.assigned_to),
               updated_at = ts,
               updated_by = who
         WHERE x.id = alert_id
        RETURNING x.* INTO sa;
        a := cs._as_alert(sa);
    END IF;
    PERFORM cs._log_alert_events(ARRAY[a.id], ARRAY[ev], ARRAY[prev], note, ARRAY[details]);
    RETURN a;
END;
$$;
COMMENT ON FUNCTION cs._alert_transition(uuid, text, text[], text, text, timestamptz, text) IS
    'Internal, called by the SECURITY DEFINER lifecycle functions: for a CSM who may see the alert''s customer (insufficient_privilege for others; an alert they may not see does not exist, no_data_found; an alert without a customer, of cs.system_alerts, admins only), moves the alert to a new status (NULL keeps it) if its current status allows it (object_not_in_prerequisite_state otherwise), stamps who and when, and logs the event.';

CREATE OR REPLACE FUNCTION cs.acknowledge_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
SELECT cs._alert_transition(id, 'acknowledged', ARRAY['open', 'snoozed'], 'acknowledged', note)
$$;
COMMENT ON FUNCTION cs.acknowledge_alert(uuid, text) IS 'Marks an open or snoozed alert acknowledged (the CSM is on it); returns the alert.';

CREATE OR REPLACE FUNCTION cs.resolve_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
SELECT cs._alert_transition(id, 'resolved', ARRAY['open', 'acknowledged', 'snoozed'], 'resolved', note)
$$;
COMMENT ON FUNCTION cs.resolve_alert(uuid, text) IS 'Resolves an unresolved alert (the problem was dealt with); the rule''s cooldown starts. Returns the alert.';

CREATE OR REPLACE FUNCTION cs.dismiss_alert(id uuid, note text DEFAULT NULL) RETURNS cs.alerts
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
SELECT cs._alert_transition(id, 'dismissed', ARRAY['open', 'acknowledged', 'snoozed'], 'dismissed', note)
$$;
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

CREATE OR REPLACE VIEW cs.risk_alerts WITH (security_invoker = true) AS
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

-- Every alert, of a customer (cs.alerts) or without one (cs.system_alerts:
-- customer_id and rule_id NULL, mrr_at_risk 0), with the columns of cs.alerts.
-- Row-level security applies to both: a CSM sees the alerts of their
-- customers, an admin every alert.
CREATE OR REPLACE VIEW cs.all_alerts WITH (security_invoker = true) AS
SELECT a.id, a.customer_id, a.rule_id, a.alert_type, a.severity, a.title, a.description, a.risk_factors,
       a.suggested_actions, a.status, a.assigned_to, a.snoozed_until, a.created_at, a.updated_at, a.updated_by,
       a.resolved_at, a.last_fired_at, a.escalated_at, a.fire_count, a.mrr_at_risk
  FROM cs.alerts a
UNION ALL
SELECT s.id, NULL::uuid, NULL::int, s.alert_type, s.severity, s.title, s.description, s.risk_factors,
       s.suggested_actions, s.status, s.assigned_to, s.snoozed_until, s.created_at, s.updated_at, s.updated_by,
       s.resolved_at, s.last_fired_at, s.escalated_at, s.fire_count, 0::numeric(10,2)
  FROM cs.system_alerts s;
COMMENT ON VIEW cs.all_alerts IS 'Every alert: those of customers (cs.alerts) and those without a customer (model and data alerts, cs.system_alerts, admins only), with the columns of cs.alerts; the lifecycle functions take the id of either.';
COMMENT ON COLUMN cs.all_alerts.id IS 'The alert.';
COMMENT ON COLUMN cs.all_alerts.customer_id IS 'The customer; NULL for model and data alerts.';
COMMENT ON COLUMN cs.all_alerts.rule_id IS 'Rule that raised the alert; NULL for task, model and data alerts.';
COMMENT ON COLUMN cs.all_alerts.alert_type IS 'risk, opportunity, task, model or data.';
COMMENT ON COLUMN cs.all_alerts.severity IS 'low, medium, high or critical.';
COMMENT ON COLUMN cs.all_alerts.title IS 'Alert title.';
COMMENT ON COLUMN cs.all_alerts.description IS 'What the alert is about.';
COMMENT ON COLUMN cs.all_alerts.risk_factors IS 'Why the alert fired.';
COMMENT ON COLUMN cs.all_alerts.suggested_actions IS 'Ranked playbooks with rendered messages.';
COMMENT ON COLUMN cs.all_alerts.status IS 'open, acknowledged, snoozed, resolved or dismissed.';
COMMENT ON COLUMN cs.all_alerts.assigned_to IS 'Role the alert is assigned to.';
COMMENT ON COLUMN cs.all_alerts.snoozed_until IS 'End of the snooze.';
COMMENT ON COLUMN cs.all_alerts.created_at IS 'When the alert was raised.';
COMMENT ON COLUMN cs.all_alerts.updated_at IS 'Last change of the alert.';
COMMENT ON COLUMN cs.all_alerts.updated_by IS 'Role that made the last change.';
COMMENT ON COLUMN cs.all_alerts.resolved_at IS 'When the alert was resolved or dismissed.';
COMMENT ON COLUMN cs.all_alerts.last_fired_at IS 'Last evaluation or check that found the condition true.';
COMMENT ON COLUMN cs.all_alerts.escalated_at IS 'Last time a re-firing raised the severity.';
COMMENT ON COLUMN cs.all_alerts.fire_count IS 'Firings while the alert was unresolved.';
COMMENT ON COLUMN cs.all_alerts.mrr_at_risk IS 'MRR of the customer when the alert last fired; 0 for model and data alerts.';
