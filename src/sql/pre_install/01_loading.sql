-- Re-runnable, before the tables: functions of loading that table definitions
-- need (index expressions, install-time set-up).  Also runs in every upgrade.

------------------------------------------------------------------------------
-- Partitions
------------------------------------------------------------------------------

-- Creates the monthly partitions of cs.usage_events covering [from_date, to_date].
-- Rows of those months already in the default partition are moved into the new
-- partition, so creating a partition never fails because of earlier loads.
CREATE OR REPLACE FUNCTION cs.ensure_usage_partitions(from_date date, to_date date)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    m       date;
    part    text;
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
    m := date_trunc('month', from_date)::date;
    WHILE m <= to_date LOOP
        part := format('usage_events_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF to_regclass(format('cs.%I', part)) IS NULL THEN
            EXECUTE format('CREATE TABLE cs.%I (LIKE cs.usage_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('WITH moved AS (DELETE FROM cs.usage_events_default
                                             WHERE occurred_at >= %L AND occurred_at < %L RETURNING *)
                            INSERT INTO cs.%I SELECT * FROM moved',
                           m, (m + interval '1 month')::date, part);
            EXECUTE format('ALTER TABLE cs.usage_events ATTACH PARTITION cs.%I FOR VALUES FROM (%L) TO (%L)',
                           part, m, (m + interval '1 month')::date);
            created := created + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END;
$$;
COMMENT ON FUNCTION cs.ensure_usage_partitions(date, date) IS
    'Creates the missing monthly partitions of cs.usage_events for a date range, moving matching rows out of the default partition; returns how many it created.';
