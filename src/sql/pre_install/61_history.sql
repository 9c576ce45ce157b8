-- Re-runnable, before the tables: the monthly partitions of the history
-- tables (cs.customer_health_scores, cs.risk_assessments,
-- cs.model_shadow_scores, cs.alert_events), which install and upgrade create
-- for the months around the current one.  Retention is in src/sql/61_history.sql.

-- The time-partitioned history tables: the partition column, and the columns
-- whose latest row retention keeps (one row per value of the key survives).
CREATE OR REPLACE FUNCTION cs.history_tables()
RETURNS TABLE (table_name text, time_column text, latest_key text[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    VALUES ('customer_health_scores', 'calculated_at', ARRAY['customer_id']),
           ('risk_assessments', 'created_at', ARRAY['customer_id', 'risk_type']),
           ('model_shadow_scores', 'created_at', ARRAY['customer_id', 'risk_type', 'model_version']),
           ('alert_events', 'at', ARRAY['customer_id', 'alert_id'])
$$;
COMMENT ON FUNCTION cs.history_tables() IS
    'The history tables partitioned by month: table name, partition column, and the key whose latest row cs.apply_retention always keeps (the latest health score per customer, risk assessment per customer and risk type, shadow score per customer, risk type and model, event per alert).';

-- Creates the monthly partitions of every history table covering [from_date,
-- to_date], moving rows of those months out of the default partition first,
-- as cs.ensure_usage_partitions does for cs.usage_events.  Creating and
-- attaching partitions needs the owner of the tables (the worker runs as it).
CREATE OR REPLACE FUNCTION cs.ensure_history_partitions(from_date date, to_date date)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    t       record;
    m       date;
    part    text;
    cols    text;
    created int := 0;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'partition range must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_date < from_date THEN
        RAISE EXCEPTION 'partition range is empty: % is before %', to_date, from_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_date - from_date > 366 * 20 THEN
        RAISE EXCEPTION 'partition range of % days is too large', to_date - from_date
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Create at most 20 years of monthly partitions per call.';
    END IF;
    FOR t IN SELECT h.table_name, h.time_column FROM cs.history_tables() h ORDER BY h.table_name LOOP
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_attribute a
         WHERE a.attrelid = format('cs.%I', t.table_name)::regclass AND a.attnum > 0 AND NOT a.attisdropped;
        m := date_trunc('month', from_date)::date;
        WHILE m <= to_date LOOP
            part := format('%s_y%sm%s', t.table_name, to_char(m, 'YYYY'), to_char(m, 'MM'));
            IF to_regclass(format('cs.%I', part)) IS NULL THEN
                EXECUTE format('CREATE TABLE cs.%I (LIKE cs.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                               part, t.table_name);
                EXECUTE format('WITH moved AS (DELETE FROM cs.%I WHERE %I >= %L AND %I < %L RETURNING *)
                                INSERT INTO cs.%I (%s) SELECT %s FROM moved',
                               t.table_name || '_default', t.time_column, m, t.time_column,
                               (m + interval '1 month')::date, part, cols, cols);
                EXECUTE format('ALTER TABLE cs.%I ATTACH PARTITION cs.%I FOR VALUES FROM (%L) TO (%L)',
                               t.table_name, part, m, (m + interval '1 month')::date);
                created := created + 1;
            END IF;
            m := (m + interval '1 month')::date;
        END LOOP;
    END LOOP;
    RETURN created;
END;
$$;
COMMENT ON FUNCTION cs.ensure_history_partitions(date, date) IS
    'Creates the missing monthly partitions of every history table (cs.history_tables()) for a date range, moving matching rows out of their default partitions; returns how many it created.  The worker''s partitions job creates 90 days ahead and a full refresh the month it writes; rows of a month without a partition go to the default partition.  Needs the owner of the tables.';
