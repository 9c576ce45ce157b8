-- cscopilot 0.1.0 -> 0.2.0.  `make` builds cscopilot--0.1.0--0.2.0.sql from this
-- file followed by src/sql/95_security.sql, so that the roles, privileges,
-- row-level security and dump registrations cover every object this upgrade
-- adds.  Add here, in order, what changed in src/sql/ since 0.1.0 (new
-- objects, CREATE OR REPLACE of changed functions, ALTER TABLE); the upgrade
-- test (sql/upgrade.sql) compares the result with a fresh install and lists
-- what is missing.

\echo Use "ALTER EXTENSION cscopilot UPDATE TO '0.2.0'" to load this file. \quit

-- cs.deploy_model: NULL name or version is null_value_not_allowed, not "does not exist".
CREATE OR REPLACE FUNCTION cs.deploy_model(name text, version int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m cs.models;
BEGIN
    IF name IS NULL OR version IS NULL THEN
        RAISE EXCEPTION 'model name and version must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO m FROM cs.models AS x WHERE x.name = deploy_model.name AND x.version = deploy_model.version
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" version % does not exist', name, version
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name, version, status FROM cs.models.';
    END IF;
    -- One champion per kind; custom models have one champion per name.
    UPDATE cs.models AS x SET status = 'retired'
     WHERE x.status = 'champion' AND x.id <> m.id
       AND ((m.kind <> 'custom' AND x.kind = m.kind) OR (m.kind = 'custom' AND x.kind = 'custom' AND x.name = m.name));
    UPDATE cs.models AS x SET status = 'champion' WHERE x.id = m.id;
END;
$$;

-- cs.condition_holds: a NaN (missing) value makes a comparison NULL, not true.
CREATE OR REPLACE FUNCTION cs.condition_holds(cond jsonb, ctx jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c      jsonb;
    r      boolean;
    result boolean;
    v      float8;
    x      float8;
BEGIN
    IF cond ? 'all' OR cond ? 'any' THEN
        result := cond ? 'all';
        FOR c IN SELECT jsonb_array_elements(coalesce(cond -> 'all', cond -> 'any')) LOOP
            r := cs.condition_holds(c, ctx);
            IF r IS NULL THEN
                result := NULL;
            ELSIF r <> (cond ? 'all') THEN
                RETURN r;     -- false decides all, true decides any
            END IF;
        END LOOP;
        RETURN result;
    ELSIF cond ? 'not' THEN
        RETURN NOT cs.condition_holds(cond -> 'not', ctx);
    ELSIF cond ? 'band' THEN
        IF ctx ->> 'band' IS NULL THEN
            RETURN NULL;
        END IF;
        RETURN CASE jsonb_typeof(cond -> 'band') WHEN 'string' THEN cond ->> 'band' = ctx ->> 'band'
                    ELSE (cond -> 'band') ? (ctx ->> 'band') END;
    END IF;
    v := CASE WHEN cond ? 'feature' THEN (ctx -> 'features' ->> (cond ->> 'feature'))::float8
              ELSE (ctx -> 'scores' ->> (cond ->> 'score'))::float8 END;
    -- NaN is how features say "missing": it must not compare (NaN > x is true in SQL).
    IF v IS NULL OR v = 'NaN' THEN
        RETURN NULL;
    END IF;
    x := (cond ->> 'value')::float8;
    RETURN CASE cond ->> 'op' WHEN '<' THEN v < x WHEN '<=' THEN v <= x WHEN '>' THEN v > x
                              WHEN '>=' THEN v >= x WHEN '=' THEN v = x WHEN '!=' THEN v <> x END;
END;
$$;

-- cs._validate_health_profile: an INSERT keeps a given updated_at, so a restore keeps the original.
CREATE OR REPLACE FUNCTION cs._validate_health_profile() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    g        record;
    m        record;
    norm     jsonb;
    total_gw float8 := 0;
    group_mw float8;
    red      float8;
    yellow   float8;
    xs       float8[];
    ys       float8[];
BEGIN
    IF jsonb_typeof(NEW.weights) IS DISTINCT FROM 'object' OR NEW.weights = '{}' THEN
        RAISE EXCEPTION 'health profile "%": weights must be a non-empty JSON object', NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use {"usage": {"weight": 0.4, "measures": {"seat_utilisation": 1}}, ...}.';
    END IF;
    FOR g IN SELECT key, value FROM jsonb_each(NEW.weights) LOOP
        IF g.key NOT IN ('usage', 'engagement', 'support', 'payment') THEN
            RAISE EXCEPTION 'health profile "%": unknown group "%"', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Groups are usage, engagement, support and payment.';
        END IF;
        IF jsonb_typeof(g.value -> 'weight') IS DISTINCT FROM 'number' OR (g.value ->> 'weight')::float8 < 0 THEN
            RAISE EXCEPTION 'health profile "%": group "%" needs a non-negative numeric weight', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(g.value -> 'measures') IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'health profile "%": group "%" needs a measures object', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        total_gw := total_gw + (g.value ->> 'weight')::float8;
        group_mw := 0;
        FOR m IN SELECT key, value FROM jsonb_each(g.value -> 'measures') LOOP
            IF NOT EXISTS (SELECT 1 FROM cs.feature_catalog WHERE name = m.key) THEN
                RAISE EXCEPTION 'health profile "%": measure "%" is not in cs.feature_catalog', NEW.name, m.key
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF jsonb_typeof(m.value) IS DISTINCT FROM 'number' OR m.value::text::float8 < 0 THEN
                RAISE EXCEPTION 'health profile "%": measure "%" needs a non-negative numeric weight', NEW.name, m.key
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            group_mw := group_mw + m.value::text::float8;
            norm := NEW.normalisation -> m.key;
            IF norm IS NULL THEN
                RAISE EXCEPTION 'health profile "%": measure "%" has no normalisation', NEW.name, m.key
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Add {"method": "thresholds", "thresholds": [...], "scores": [...]} or {"method": "percentile", "direction": "higher_is_better"}.';
            END IF;
            IF norm ->> 'method' = 'thresholds' THEN
                IF jsonb_typeof(norm -> 'thresholds') IS DISTINCT FROM 'array'
                   OR jsonb_typeof(norm -> 'scores') IS DISTINCT FROM 'array' THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" needs thresholds and scores arrays', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                BEGIN
                    xs := ARRAY(SELECT jsonb_array_elements_text(norm -> 'thresholds')::float8);
                    ys := ARRAY(SELECT jsonb_array_elements_text(norm -> 'scores')::float8);
                    PERFORM cs.interpolate(0, xs, ys);
                EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value OR null_value_not_allowed THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" has invalid thresholds or scores', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value',
                              DETAIL = 'Thresholds must be strictly increasing numbers, one score per threshold.';
                END;
                IF EXISTS (SELECT 1 FROM unnest(ys) y WHERE y < 0 OR y > 1) THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" has scores outside [0, 1]', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSIF norm ->> 'method' = 'percentile' THEN
                IF coalesce(norm ->> 'direction', '') NOT IN ('higher_is_better', 'lower_is_better') THEN
                    RAISE EXCEPTION 'health profile "%": measure "%" needs direction higher_is_better or lower_is_better', NEW.name, m.key
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSE
                RAISE EXCEPTION 'health profile "%": measure "%" has unknown normalisation method "%"', NEW.name, m.key, norm ->> 'method'
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'Methods are thresholds and percentile.';
            END IF;
        END LOOP;
        IF (g.value ->> 'weight')::float8 > 0 AND group_mw = 0 THEN
            RAISE EXCEPTION 'health profile "%": group "%" has weight but no weighted measure', NEW.name, g.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF total_gw = 0 THEN
        RAISE EXCEPTION 'health profile "%": all group weights are zero', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(NEW.bands -> 'red') IS DISTINCT FROM 'number' OR jsonb_typeof(NEW.bands -> 'yellow') IS DISTINCT FROM 'number' THEN
        RAISE EXCEPTION 'health profile "%": bands need numeric red and yellow cut-offs', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    red := (NEW.bands ->> 'red')::float8;
    yellow := (NEW.bands ->> 'yellow')::float8;
    IF NOT (0 <= red AND red <= yellow AND yellow <= 1) THEN
        RAISE EXCEPTION 'health profile "%": bands must be ordered 0 <= red <= yellow <= 1 (got red %, yellow %)', NEW.name, red, yellow
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
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

-- cs.refresh, cs.refresh_all, cs.refresh_batch: one refresh at a time per database (a manual
-- refresh_all and the worker's batch deadlocked on result rows and dirty marks).
CREATE OR REPLACE FUNCTION cs.refresh(customer_ids uuid[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    mark_ids uuid[];
    mark_ts  timestamptz[];
    todo     uuid[];
    n        bigint;
BEGIN
    -- One refresh at a time per database: concurrent refreshes upsert the
    -- same result rows and remove the same dirty marks in different orders.
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot'), 1);
    IF customer_ids IS NULL THEN
        SELECT array_agg(customer_id), array_agg(marked_at) INTO mark_ids, mark_ts
          FROM cs.dirty_customers WHERE NOT parked;
        todo := mark_ids;
    ELSE
        IF cardinality(customer_ids) > 10000000 THEN
            RAISE EXCEPTION 'too many customers in one refresh' USING ERRCODE = 'program_limit_exceeded';
        END IF;
        todo := ARRAY(SELECT DISTINCT x FROM unnest(customer_ids) x WHERE x IS NOT NULL);
        SELECT array_agg(d.customer_id), array_agg(d.marked_at) INTO mark_ids, mark_ts
          FROM cs.dirty_customers d WHERE d.customer_id = ANY (todo);
    END IF;
    IF coalesce(cardinality(todo), 0) = 0 THEN
        RETURN 0;
    END IF;
    n := cs._refresh_customers(todo);
    -- Remove only marks unchanged since they were read: a load that committed
    -- meanwhile changed marked_at, and its customer stays dirty.
    DELETE FROM cs.dirty_customers d
     USING unnest(mark_ids, mark_ts) AS m(id, ts)
     WHERE d.customer_id = m.id AND d.marked_at = m.ts;
    RETURN n;
END;
$$;

CREATE OR REPLACE FUNCTION cs.refresh_all()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    mark_ids uuid[];
    mark_ts  timestamptz[];
    n        bigint;
BEGIN
    -- One refresh at a time per database: concurrent refreshes upsert the
    -- same result rows and remove the same dirty marks in different orders.
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot'), 1);
    SELECT array_agg(customer_id), array_agg(marked_at) INTO mark_ids, mark_ts FROM cs.dirty_customers;
    n := cs._refresh_customers(NULL);
    DELETE FROM cs.dirty_customers d
     USING unnest(mark_ids, mark_ts) AS m(id, ts)
     WHERE d.customer_id = m.id AND d.marked_at = m.ts;
    RETURN n;
END;
$$;

CREATE OR REPLACE FUNCTION cs.refresh_batch(batch_size int) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    ids  uuid[];
    ts   timestamptz[];
    n    bigint := 0;
    i    int;
    err  text;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One refresh at a time per database: concurrent refreshes upsert the
    -- same result rows and remove the same dirty marks in different orders.
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot'), 1);
    SELECT array_agg(customer_id ORDER BY marked_at, customer_id), array_agg(marked_at ORDER BY marked_at, customer_id)
      INTO ids, ts
      FROM (SELECT d.customer_id, d.marked_at FROM cs.dirty_customers d
             WHERE NOT d.parked
             ORDER BY d.marked_at, d.customer_id
             LIMIT batch_size
               FOR UPDATE SKIP LOCKED) picked;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;

    BEGIN
        n := cs._refresh_customers(ids);
        -- The rows are locked, so the marks are unchanged; the rule stays the
        -- same as cs.refresh(): remove a mark only if it is the one read.
        DELETE FROM cs.dirty_customers d
         USING unnest(ids, ts) AS m(id, ts)
         WHERE d.customer_id = m.id AND d.marked_at = m.ts;
        RETURN n;
    EXCEPTION WHEN OTHERS THEN
        IF cardinality(ids) = 1 THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            PERFORM cs._customer_failed(ids[1], err);
            RETURN 0;
        END IF;
    END;

    -- One by one: find the poison customers, keep the work of the others.
    FOR i IN 1 .. cardinality(ids) LOOP
        BEGIN
            n := n + cs._refresh_customers(ARRAY[ids[i]]);
            DELETE FROM cs.dirty_customers d WHERE d.customer_id = ids[i] AND d.marked_at = ts[i];
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            PERFORM cs._customer_failed(ids[i], err);
        END;
    END LOOP;
    RETURN n;
END;
$$;
