-- Re-runnable, before the tables: functions of alerts that table definitions
-- need (index expressions, install-time set-up).  Also runs in every upgrade.

CREATE OR REPLACE FUNCTION cs.severity_rank(severity text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT array_position(ARRAY['low', 'medium', 'high', 'critical'], severity)
$$;
COMMENT ON FUNCTION cs.severity_rank(text) IS 'Order of a severity: low 1, medium 2, high 3, critical 4.';
