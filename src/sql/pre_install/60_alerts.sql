-- Re-runnable, before the tables: functions of alerts that table definitions
-- need (index expressions, install-time set-up).  Also runs in every upgrade.

CREATE OR REPLACE FUNCTION cs.severity_rank(severity text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT array_position(ARRAY['low', 'medium', 'high', 'critical'], severity)
$$;
COMMENT ON FUNCTION cs.severity_rank(text) IS 'Order of a severity: low 1, medium 2, high 3, critical 4.';

-- The key of an alert without a rule: the unique index of cs.system_alerts
-- (src/sql/schema/62_system_alerts.sql) is built on it.
CREATE OR REPLACE FUNCTION cs._alert_key(alert_type text, rule_id int, risk_factors jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN rule_id IS NULL THEN
            CASE alert_type WHEN 'model' THEN
                                 CASE WHEN risk_factors ? 'check'
                                      THEN jsonb_build_array('model', risk_factors -> 'model', risk_factors -> 'check')
                                      ELSE jsonb_build_array('model', risk_factors -> 'model') END
                            WHEN 'data' THEN jsonb_build_array('data', risk_factors -> 'check', risk_factors -> 'subject')
                            WHEN 'task' THEN jsonb_build_array('task', risk_factors -> 'task_id') END
       END
$$;
COMMENT ON FUNCTION cs._alert_key(text, int, jsonb) IS
    'Internal: the key that identifies a model alert (risk_factors model, and check when there is one: applicability), data alert (risk_factors check and subject) or task alert (risk_factors task_id, with its customer) among the unresolved ones; NULL for rule alerts, whose key is (customer_id, rule_id).';
