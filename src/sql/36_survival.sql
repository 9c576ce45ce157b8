-- Time to churn: survival models (kind survival, objective survival:aft).
-- Training rows with time bounds (cs.build_survival_set), the probability of
-- churning within a number of days (cs.survival_probability, src/survival.c),
-- the concordance index that judges them (cs.concordance_index) and, per
-- customer, the expected days to churn and the probability of churning
-- before the renewal date (cs.time_to_churn).  The renewal forecast
-- (65_revenue.sql) shows that probability as the risk of each renewal.

CREATE OR REPLACE FUNCTION cs.survival_probability(model text, features float4[], days float8)
RETURNS float8
AS 'MODULE_PATHNAME', 'cs_survival_probability'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.survival_probability(text, float4[], float8) IS
    'Probability 0-1 that the event (churn) comes within days of the feature vector''s date, by a survival:aft model (its champion version, else its latest; name:vN for a version): the CDF of the model''s AFT distribution (normal, logistic or extreme, read from the model with its scale) at (ln days - margin) / scale. 0 for days <= 0, 1 for +Infinity. cs.predict gives the model''s predicted time exp(margin) in days.';

CREATE OR REPLACE FUNCTION cs.concordance_index(predicted_days float8[], observed_days float8[], churned boolean[])
RETURNS float8
AS 'MODULE_PATHNAME', 'cs_concordance_index'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.concordance_index(float8[], float8[], boolean[]) IS
    'Harrell''s concordance index of predicted times to churn: over the pairs where one row churned (churned true) at an observed time before the other''s observed time (churn or censoring), the share where that row was predicted to churn sooner, ties in the prediction counting one half. 0.5 is chance, 1 a perfect ordering; NULL when no pair is comparable. One element per row in each array, no NULL or NaN.';

-- Where the data ends: the latest usage event (else churn) on record.
CREATE OR REPLACE FUNCTION cs._survival_data_end()
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT coalesce((SELECT max(e.occurred_at) FROM cs.usage_events e),
                    (SELECT max(c.churned_at) FROM cs.customers c));
$$;
COMMENT ON FUNCTION cs._survival_data_end() IS
    'Internal: the time the data is known up to, for censoring survival rows: the latest usage event, else the latest churn; NULL when neither exists.';

-- Point-in-time survival rows: for each observation date, every customer
-- active then (as cs.build_training_set), its features as of that date, and
-- the time to churn in days as bounds: equal when it churned by the data's
-- end and within max_days, else [days followed, +Infinity) (censored).
CREATE OR REPLACE FUNCTION cs.build_survival_set(observation_dates date[], max_days int DEFAULT 365,
                                                 data_end timestamptz DEFAULT NULL)
RETURNS TABLE (customer_id uuid, as_of timestamptz, features float4[], label_lower float8, label_upper float8,
               churned boolean, group_key text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    known_to timestamptz := coalesce(data_end, cs._survival_data_end());
    late date;
BEGIN
    IF max_days IS NULL OR max_days < 1 THEN
        RAISE EXCEPTION 'max_days must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF known_to IS NULL THEN
        RAISE EXCEPTION 'cannot tell where the data ends'
            USING ERRCODE = 'no_data_found',
                  DETAIL = 'There are no usage events and no churned customers.',
                  HINT = 'Pass data_end, the time the data is known up to.';
    END IF;
    SELECT max(d) INTO late FROM unnest(observation_dates) d WHERE d::timestamptz >= known_to;
    IF late IS NOT NULL THEN
        RAISE EXCEPTION 'observation date % is not before the end of the data (%)', late, known_to
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Survival rows follow each customer from the date to the end of the data: use earlier dates.';
    END IF;
    -- the rows of cs.build_training_set (same customers, same features), relabelled
    RETURN QUERY
    SELECT t.customer_id, t.as_of, t.features,
           CASE WHEN ev.seen THEN ev.days ELSE least(fu.days, max_days) END,
           CASE WHEN ev.seen THEN ev.days ELSE 'Infinity'::float8 END,
           ev.seen, t.group_key
      FROM cs.build_training_set(observation_dates, '1 day') t
      JOIN cs.customers c ON c.id = t.customer_id
     CROSS JOIN LATERAL (SELECT extract(epoch FROM known_to - t.as_of)::float8 / 86400 AS days) fu
     CROSS JOIN LATERAL (SELECT c.churned_at IS NOT NULL AND c.churned_at <= known_to
                                AND c.churned_at <= t.as_of + make_interval(days => max_days) AS seen,
                                extract(epoch FROM c.churned_at - t.as_of)::float8 / 86400 AS days) ev;
END;
$$;
COMMENT ON FUNCTION cs.build_survival_set(date[], int, timestamptz) IS
    'Point-in-time survival training rows: for each observation date, customers active then (as cs.build_training_set: started by then, not churned), their features as of that date, and the days from the date to churn as bounds for a survival:aft model: label_lower = label_upper = the days when the customer churned by data_end and within max_days (churned true), else label_lower = the days followed (to data_end, at most max_days) and label_upper = +Infinity (censored). data_end defaults to the latest usage event (else churn) on record; nothing after it is read, and a date at or after it is refused. Columns as_of and group_key make cs.train_model''s split forward in time.';

-- The renewal date of a customer at a date: the end of the contract term in
-- force (cs.contract_terms), else the current contract's end.
CREATE OR REPLACE FUNCTION cs._renewal_date(customer_id uuid, as_of date)
RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT coalesce((SELECT min(ct.term_end) FROM cs.contract_terms ct
                      WHERE ct.customer_id = _renewal_date.customer_id
                        AND ct.term_start <= _renewal_date.as_of AND ct.term_end > _renewal_date.as_of),
                    (SELECT c.contract_end_date FROM cs.customers c WHERE c.id = _renewal_date.customer_id));
$$;
COMMENT ON FUNCTION cs._renewal_date(uuid, date) IS
    'Internal: a customer''s renewal date at a date: the end of the contract term in force then (cs.contract_terms), else cs.customers.contract_end_date; NULL when neither is known.';

-- The champion survival model, or an error saying how to get one.
CREATE OR REPLACE FUNCTION cs._require_survival_model()
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m text := cs.champion('survival');
BEGIN
    IF m IS NULL THEN
        RAISE EXCEPTION 'no survival model is deployed'
            USING ERRCODE = 'undefined_object',
                  DETAIL = 'Time to churn comes from the champion model of kind survival (objective survival:aft).',
                  HINT = 'Train one: SELECT cs.train_model(''my_survival'', ''survival'', ''SELECT features, label_lower, label_upper, group_key, as_of FROM cs.build_survival_set(...)'', ''{"objective": "survival:aft"}''), then cs.deploy_model(''my_survival'', 1); or deploy the shipped survival_default.';
    END IF;
    RETURN m;
END;
$$;
COMMENT ON FUNCTION cs._require_survival_model() IS
    'Internal: the champion survival model''s name, or an error (undefined_object) saying how to train and deploy one.';

-- Time to churn of a customer, from its stored feature vector.
CREATE OR REPLACE FUNCTION cs.time_to_churn(customer_id uuid)
RETURNS TABLE (expected_days float8, renewal_date date, churn_probability_by_renewal float8, model text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m   text;
    c   record;
    f   record;
    x   float4[];
    ren date;
BEGIN
    SELECT cu.id, cu.churned_at INTO c FROM cs.customers cu WHERE cu.id = time_to_churn.customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % not found', time_to_churn.customer_id USING ERRCODE = 'no_data_found';
    END IF;
    IF c.churned_at IS NOT NULL THEN
        RAISE EXCEPTION 'customer % churned at %', time_to_churn.customer_id, c.churned_at
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Time to churn is predicted for current customers only.';
    END IF;
    m := cs._require_survival_model();
    SELECT cf.as_of, cf.features, cf.layout INTO f FROM cs.customer_features cf
     WHERE cf.customer_id = time_to_churn.customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % has no stored feature vector', time_to_churn.customer_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Compute it with cs.refresh(ARRAY[customer_id]).';
    END IF;
    -- the model's inputs by name, from the vector's layout
    x := cs._pick_features(f.features, cs._model_positions(m, cs._layout_names(f.layout)));
    ren := cs._renewal_date(time_to_churn.customer_id, f.as_of::date);
    expected_days := cs.predict(m, x);
    renewal_date := ren;
    -- days from the vector's date to the renewal; none once the renewal is past
    churn_probability_by_renewal := CASE WHEN ren > f.as_of::date
        THEN cs.survival_probability(m, x, extract(epoch FROM ren::timestamptz - f.as_of)::float8 / 86400) END;
    model := m || ':v' || (SELECT mo.version FROM cs.models mo WHERE mo.name = m AND mo.status = 'champion');
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION cs.time_to_churn(uuid) IS
    'Time to churn of a current customer by the champion survival model, from its stored feature vector (cs.customer_features; days are counted from that vector''s as_of): expected_days, the model''s predicted time to churn (exp(margin), the centre of its AFT distribution: the median for normal and logistic), renewal_date (the contract term in force, else cs.customers.contract_end_date), churn_probability_by_renewal (probability 0-1 of churning before that date; NULL without a renewal date after the vector''s date) and model (name:vN). Errors: no_data_found for an unknown customer, object_not_in_prerequisite_state for a churned customer or one without a stored vector, undefined_object when no survival model is deployed.';
