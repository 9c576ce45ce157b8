-- Usage metrics defined as data (cs.usage_metrics): validation, the feature
-- names of the vector (cs.feature_catalog then the enabled metrics in name
-- order), the spec the usage aggregate reads (src/metrics.c), proposals from
-- the events loaded, bulk point-in-time features, and the mapping of a
-- model's feature names to positions in a stored vector.

-- Checks a definition: name, aggregate, window, per, ratio_of (known, enabled,
-- no cycle), filters without NULL; specific SQLSTATEs before the constraints.
CREATE OR REPLACE FUNCTION cs._check_usage_metric() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    cur  text;
    seen int := 0;
BEGIN
    IF NEW.name IS NULL OR NEW.name !~ '^[a-z][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'invalid usage metric name "%"', NEW.name USING ERRCODE = 'invalid_name',
            HINT = 'Use lower-case letters, digits and underscores, starting with a letter.';
    END IF;
    IF EXISTS (SELECT 1 FROM cs.feature_catalog fc WHERE fc.name = NEW.name) THEN
        RAISE EXCEPTION 'usage metric "%" has the name of a cs.feature_catalog feature', NEW.name
            USING ERRCODE = 'duplicate_object';
    END IF;
    IF NEW.aggregate IS NULL OR NEW.aggregate NOT IN ('count', 'distinct_users', 'active_days', 'sum_quantity') THEN
        RAISE EXCEPTION 'invalid aggregate "%" for usage metric "%"', NEW.aggregate, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use count, distinct_users, active_days or sum_quantity.';
    END IF;
    IF NEW.window_days IS NULL OR NEW.window_days < 1 OR NEW.window_days > 365 THEN
        RAISE EXCEPTION 'window_days of usage metric "%" must be between 1 and 365, not %', NEW.name, NEW.window_days
            USING ERRCODE = 'numeric_value_out_of_range',
                  DETAIL = 'The refresh reads events up to 730 days back: 365 days and the previous window of a change.';
    END IF;
    IF NEW.per IS NOT NULL AND NEW.per NOT IN ('user', 'active_day') THEN
        RAISE EXCEPTION 'invalid per "%" for usage metric "%"', NEW.per, NEW.name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use NULL, user or active_day.';
    END IF;
    IF array_position(NEW.events, NULL) IS NOT NULL OR array_position(NEW.features, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'the events and features of usage metric "%" must not contain NULL', NEW.name
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Use a NULL array for every event or feature.';
    END IF;
    IF NEW.ratio_of IS NOT NULL THEN
        IF NEW.ratio_of = NEW.name THEN
            RAISE EXCEPTION 'usage metric "%" cannot be a ratio of itself', NEW.name USING ERRCODE = 'invalid_recursion';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM cs.usage_metrics m WHERE m.name = NEW.ratio_of) THEN
            RAISE EXCEPTION 'ratio_of of usage metric "%" names no usage metric: "%"', NEW.name, NEW.ratio_of
                USING ERRCODE = 'undefined_object';
        END IF;
        IF NEW.enabled AND NOT (SELECT m.enabled FROM cs.usage_metrics m WHERE m.name = NEW.ratio_of) THEN
            RAISE EXCEPTION 'usage metric "%" is a ratio of "%", which is disabled', NEW.name, NEW.ratio_of
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        cur := NEW.ratio_of;
        WHILE cur IS NOT NULL LOOP
            IF cur = NEW.name THEN
                RAISE EXCEPTION 'usage metrics "%" and "%" refer to each other in a cycle through ratio_of',
                    NEW.name, NEW.ratio_of USING ERRCODE = 'invalid_recursion';
            END IF;
            seen := seen + 1;
            EXIT WHEN seen > 10000;
            SELECT m.ratio_of INTO cur FROM cs.usage_metrics m WHERE m.name = cur;
        END LOOP;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.enabled AND NOT NEW.enabled
       AND EXISTS (SELECT 1 FROM cs.usage_metrics m WHERE m.ratio_of = NEW.name AND m.enabled) THEN
        RAISE EXCEPTION 'usage metric "%" cannot be disabled: enabled metrics are ratios of it', NEW.name
            USING ERRCODE = 'dependent_objects_still_exist';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION cs._check_usage_metric() IS
    'Internal: validates a cs.usage_metrics row (name, aggregate, window, per, filters, ratio_of known, enabled and without cycle) with specific SQLSTATEs.';

DROP TRIGGER IF EXISTS usage_metrics_check ON cs.usage_metrics;
CREATE TRIGGER usage_metrics_check BEFORE INSERT OR UPDATE ON cs.usage_metrics
    FOR EACH ROW EXECUTE FUNCTION cs._check_usage_metric();

-- The names of the feature vector: the catalog's, then the enabled metrics.
CREATE OR REPLACE FUNCTION cs.feature_names() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT ARRAY(SELECT name FROM cs.feature_catalog ORDER BY position)
        || ARRAY(SELECT name FROM cs.usage_metrics WHERE enabled ORDER BY name COLLATE "C");
$$;
COMMENT ON FUNCTION cs.feature_names() IS
    'Names of the feature vector in order: the cs.feature_catalog features by position, then the enabled cs.usage_metrics in name order. cs.features, cs.compute_features and cs.customer_features use this order; models name their inputs with these names.';

-- The enabled metrics as the aggregate reads them: eight fields a metric.
CREATE OR REPLACE FUNCTION cs._usage_metric_spec() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    WITH m AS (
        SELECT um.*, row_number() OVER (ORDER BY um.name COLLATE "C") AS i
          FROM cs.usage_metrics um WHERE um.enabled
    )
    SELECT coalesce(array_agg(x.v ORDER BY m.i, x.k), '{}')
      FROM m
      LEFT JOIN m r ON r.name = m.ratio_of
     CROSS JOIN LATERAL (VALUES (1, m.name), (2, m.events::text), (3, m.features::text),
                                (4, m.window_days::text), (5, m.aggregate), (6, m.per),
                                (7, r.i::text), (8, CASE WHEN m.change THEN 't' ELSE 'f' END)) x(k, v);
$$;
COMMENT ON FUNCTION cs._usage_metric_spec() IS
    'Internal: the enabled usage metrics in name order as the usage metrics aggregate reads them: name, events, features, window_days, aggregate, per, ratio_of (1-based index), change, per metric.';

-- How many days back the usage scan must read for the enabled metrics.
CREATE OR REPLACE FUNCTION cs._usage_metric_lookback() RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    -- a change reads the previous window too, and so do the ratios it divides by
    SELECT coalesce(max(window_days) * CASE WHEN bool_or(change) THEN 2 ELSE 1 END, 0)
      FROM cs.usage_metrics WHERE enabled;
$$;
COMMENT ON FUNCTION cs._usage_metric_lookback() IS
    'Internal: days of events the usage scan reads for the enabled usage metrics (the longest window, twice when a metric compares with the previous window).';

CREATE OR REPLACE FUNCTION cs._usage_metrics_trans(internal, text[], text, text, text, float8, timestamptz, timestamptz) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_metrics_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION cs._usage_metrics_final(internal) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'cs_usage_metrics_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION cs._usage_metrics_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_metrics_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION cs._usage_metrics_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'cs_usage_metrics_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OR REPLACE FUNCTION cs._usage_metrics_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'cs_usage_metrics_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._usage_metrics_trans(internal, text[], text, text, text, float8, timestamptz, timestamptz) IS 'Internal: transition function of cs.usage_metric_values.';
COMMENT ON FUNCTION cs._usage_metrics_final(internal) IS 'Internal: final function of cs.usage_metric_values.';
COMMENT ON FUNCTION cs._usage_metrics_combine(internal, internal) IS 'Internal: combine function of cs.usage_metric_values (parallel aggregation).';
COMMENT ON FUNCTION cs._usage_metrics_serialize(internal) IS 'Internal: serializes a cs.usage_metric_values state for parallel aggregation.';
COMMENT ON FUNCTION cs._usage_metrics_deserialize(bytea, internal) IS 'Internal: deserializes a cs.usage_metric_values state for parallel aggregation.';
CREATE OR REPLACE AGGREGATE cs.usage_metric_values(spec text[], event text, feature text, user_id text, quantity float8,
                                                   occurred_at timestamptz, as_of timestamptz) (
    SFUNC = cs._usage_metrics_trans, STYPE = internal, FINALFUNC = cs._usage_metrics_final,
    COMBINEFUNC = cs._usage_metrics_combine, SERIALFUNC = cs._usage_metrics_serialize,
    DESERIALFUNC = cs._usage_metrics_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE cs.usage_metric_values(text[], text, text, text, float8, timestamptz, timestamptz) IS
    'One-pass values of the usage metrics of spec (cs._usage_metric_spec()) over a customer''s events up to as_of, in spec order; windows are whole days counted back from as_of.';

CREATE OR REPLACE FUNCTION cs._usage_metrics_empty(spec text[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'cs_usage_metrics_empty' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._usage_metrics_empty(text[]) IS
    'Internal: the usage metric values of a customer with usage data but no event in any window (zeros; NaN for a ratio of zero).';

CREATE OR REPLACE FUNCTION cs._pick_features(features float4[], positions int[]) RETURNS float4[]
    AS 'MODULE_PATHNAME', 'cs_pick_features' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._pick_features(float4[], int[]) IS
    'Internal: the elements of features at the 1-based positions, NaN for a NULL or absent position: a model''s input vector from a stored vector.';

-- The current layout of feature vectors, registered on first use.
CREATE OR REPLACE FUNCTION cs._feature_layout() RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    nm text[] := cs.feature_names();
    id int;
BEGIN
    SELECT l.layout_id INTO id FROM cs.feature_layouts l WHERE l.names = nm;
    IF NOT FOUND THEN
        INSERT INTO cs.feature_layouts (names) VALUES (nm) ON CONFLICT (names) DO NOTHING;
        SELECT l.layout_id INTO id FROM cs.feature_layouts l WHERE l.names = nm;
    END IF;
    RETURN id;
END;
$$;
COMMENT ON FUNCTION cs._feature_layout() IS
    'Internal: the cs.feature_layouts id of cs.feature_names(), registering it when new.';

-- Whether the stored vectors were last written, in full, with another layout
-- than the current one (a usage metric was defined, changed or disabled since).
CREATE OR REPLACE FUNCTION cs._features_stale() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
AS $$
    SELECT coalesce((SELECT l.names IS DISTINCT FROM cs.feature_names() FROM cs.feature_layouts l
                      WHERE l.full_refresh_at IS NOT NULL
                      ORDER BY l.full_refresh_at DESC, l.layout_id DESC LIMIT 1), false);
$$;
COMMENT ON FUNCTION cs._features_stale() IS
    'Internal: true when the last full refresh stored vectors of another layout than cs.feature_names(), so the next refresh must be a full one.';

-- The names of a stored vector's layout (NULL: the catalog alone).
CREATE OR REPLACE FUNCTION cs._layout_names(layout int) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT coalesce((SELECT l.names FROM cs.feature_layouts l WHERE l.layout_id = _layout_names.layout),
                    ARRAY(SELECT fc.name FROM cs.feature_catalog fc ORDER BY fc.position));
$$;
COMMENT ON FUNCTION cs._layout_names(int) IS
    'Internal: the feature names of a cs.feature_layouts id; the cs.feature_catalog names for NULL (a vector stored without a layout).';

-- Positions of a model's inputs in a vector with the given names.
CREATE OR REPLACE FUNCTION cs._model_positions(model text, names text[]) RETURNS int[]
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT ARRAY(SELECT array_position(_model_positions.names, x.n) FROM unnest(m.feature_names) WITH ORDINALITY x(n, i) ORDER BY x.i)
      FROM (SELECT mo.feature_names FROM cs.models mo
             WHERE mo.name = _model_positions.model OR mo.name || ':v' || mo.version = _model_positions.model
             ORDER BY mo.name || ':v' || mo.version = _model_positions.model DESC, mo.status = 'champion' DESC,
                      mo.version DESC
             LIMIT 1) m;
$$;
COMMENT ON FUNCTION cs._model_positions(text, text[]) IS
    'Internal: for each input of a model (name: its champion, else latest version; name:vN: that version), its 1-based position in a vector of the given feature names, NULL when absent (the input is then missing).';

-- The positions of a model's inputs in every layout of stored vectors (0: no layout).
CREATE OR REPLACE FUNCTION cs._model_layout_positions(model text)
RETURNS TABLE (layout int, positions int[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT 0, cs._model_positions(model, cs._layout_names(NULL))
    UNION ALL
    SELECT l.layout_id, cs._model_positions(model, l.names) FROM cs.feature_layouts l;
$$;
COMMENT ON FUNCTION cs._model_layout_positions(text) IS
    'Internal: per stored-vector layout (0 for vectors without one), the positions of a model''s inputs; scoring computes them once per model and joins on coalesce(layout, 0).';

-- Feature vectors for many (customer, as_of) pairs in one call.
CREATE OR REPLACE FUNCTION cs.compute_features_at(customer_ids uuid[], as_ofs timestamptz[])
RETURNS TABLE (customer_id uuid, as_of timestamptz, features float4[])
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    missing uuid;
BEGIN
    IF customer_ids IS NULL OR as_ofs IS NULL THEN
        RAISE EXCEPTION 'customer_ids and as_ofs must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF cardinality(customer_ids) <> cardinality(as_ofs) THEN
        RAISE EXCEPTION 'customer_ids and as_ofs must have the same length'
            USING ERRCODE = 'array_subscript_error',
                  DETAIL = format('There are %s customer ids and %s dates.', cardinality(customer_ids), cardinality(as_ofs));
    END IF;
    IF array_position(customer_ids, NULL) IS NOT NULL OR array_position(as_ofs, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'customer_ids and as_ofs must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(as_ofs) t WHERE NOT isfinite(t)) THEN
        RAISE EXCEPTION 'as_ofs must be finite timestamps' USING ERRCODE = 'datetime_field_overflow';
    END IF;
    SELECT u INTO missing FROM unnest(customer_ids) u
     WHERE NOT EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = u) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', missing USING ERRCODE = 'no_data_found';
    END IF;
    -- one cs.compute_features call per distinct date, for all its customers
    RETURN QUERY
    WITH p AS (
        SELECT x.c, x.t, x.i FROM unnest(customer_ids, as_ofs) WITH ORDINALITY x(c, t, i)
    ), f AS (
        SELECT g.t, r.customer_id, r.features
          FROM (SELECT p.t, array_agg(DISTINCT p.c) AS ids FROM p GROUP BY p.t) g
         CROSS JOIN LATERAL cs.compute_features(g.ids, g.t) r
    )
    SELECT p.c, p.t, f.features FROM p JOIN f ON f.customer_id = p.c AND f.t = p.t ORDER BY p.i;
END;
$$;
COMMENT ON FUNCTION cs.compute_features_at(uuid[], timestamptz[]) IS
    'Point-in-time feature vectors (cs.feature_names() order) for many (customer, as_of) pairs, one row per pair in input order: exactly cs.features(customer, as_of) for each, computed with one cs.compute_features call per distinct date.';

-- Proposes and adds usage metrics for the event types of the events loaded.
CREATE OR REPLACE FUNCTION cs.propose_metrics(min_customer_share float8 DEFAULT 0.05, min_events bigint DEFAULT 100)
RETURNS TABLE (name text, definition jsonb, reason text)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    latest timestamptz;
    active bigint;
    r record;
    k record;
BEGIN
    IF min_customer_share IS NULL OR min_customer_share < 0 OR min_customer_share > 1 THEN
        RAISE EXCEPTION 'min_customer_share must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_events IS NULL OR min_events < 1 THEN
        RAISE EXCEPTION 'min_events must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the data's own clock, not now(): the same events propose the same metrics
    SELECT max(e.occurred_at) INTO latest FROM cs.usage_events e;
    IF latest IS NULL THEN
        RETURN;
    END IF;
    SELECT count(DISTINCT e.customer_id) INTO active FROM cs.usage_events e
     WHERE e.occurred_at > latest - interval '28 days';
    IF active = 0 THEN
        RETURN;
    END IF;
    -- per event type, over the 28 days before the latest event: volume, the
    -- share of active customers using it, and the spread of its count across
    -- the active customers (non-users count 0)
    FOR r IN
        WITH pc AS (
            SELECT e.event, e.customer_id, count(*)::float8 AS n
              FROM cs.usage_events e
             WHERE e.occurred_at > latest - interval '28 days'
             GROUP BY e.event, e.customer_id
        )
        SELECT pc.event, sum(pc.n)::bigint AS events, count(*) AS users,
               count(*)::float8 / active AS share,
               sqrt(greatest(sum(pc.n * pc.n) / active - (sum(pc.n) / active) ^ 2, 0)) AS sd,
               sum(pc.n) / active AS mean,
               left(regexp_replace(regexp_replace(lower(pc.event), '[^a-z0-9]+', '_', 'g'), '^_+|_+$', '', 'g'), 40) AS slug
          FROM pc
         GROUP BY pc.event
         ORDER BY pc.event COLLATE "C"
    LOOP
        CONTINUE WHEN r.events < min_events OR r.share < min_customer_share
                   -- a count the same for every customer tells nothing apart
                   OR r.sd <= 1e-9 * greatest(r.mean, 1) OR r.slug = '';
        IF r.slug !~ '^[a-z]' THEN
            r.slug := 'ev_' || r.slug;
        END IF;
        FOR k IN
            SELECT * FROM (VALUES
                (r.slug || '_28d', NULL::text, false, 'events in the last 28 days'),
                (r.slug || '_28d_change', NULL::text, true, 'relative change of the 28-day count against the 28 days before'),
                (r.slug || '_per_active_day_28d', 'active_day', false, 'events per day with the event in the last 28 days')
            ) v(mname, per, change, what)
        LOOP
            CONTINUE WHEN EXISTS (SELECT 1 FROM cs.usage_metrics m WHERE m.name = k.mname)
                       OR EXISTS (SELECT 1 FROM cs.feature_catalog fc WHERE fc.name = k.mname)
                       -- the same definition under another name
                       OR EXISTS (SELECT 1 FROM cs.usage_metrics m
                                   WHERE m.events = ARRAY[r.event] AND m.features IS NULL AND m.window_days = 28
                                     AND m.aggregate = 'count' AND m.per IS NOT DISTINCT FROM k.per
                                     AND m.ratio_of IS NULL AND m.change = k.change);
            INSERT INTO cs.usage_metrics (name, events, window_days, aggregate, per, change, description)
            VALUES (k.mname, ARRAY[r.event], 28, 'count', k.per, k.change,
                    format('%s: %s (proposed by cs.propose_metrics)', r.event, k.what));
            name := k.mname;
            definition := jsonb_build_object('events', ARRAY[r.event], 'window_days', 28, 'aggregate', 'count',
                                             'per', k.per, 'change', k.change);
            reason := format('event %s: %s events in the 28 days to %s, used by %s of %s active customers (%s%%), count per customer mean %s, sd %s',
                             r.event, r.events, to_char(latest AT TIME ZONE 'UTC', 'YYYY-MM-DD'), r.users, active,
                             round((100 * r.share)::numeric, 1), round(r.mean::numeric, 2), round(r.sd::numeric, 2));
            RETURN NEXT;
        END LOOP;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs.propose_metrics(float8, bigint) IS
    'Adds usage metrics for the event types of cs.usage_events that have volume (at least min_events in the 28 days before the latest event, used by at least min_customer_share of the customers active then) and vary across customers: per event type a 28-day count, its change against the 28 days before, and the count per active day; skips metrics already defined (by name or definition). Returns what it added, with the reason. Deterministic for the same events.';
