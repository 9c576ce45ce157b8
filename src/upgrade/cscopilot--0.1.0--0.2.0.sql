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
