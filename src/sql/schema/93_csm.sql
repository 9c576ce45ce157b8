-- Install-once: the customer's CSM on every customer-scoped table, the column
-- row-level security filters on (src/sql/93_csm.sql keeps it right,
-- src/sql/95_security.sql creates the policies).  It runs after every other
-- schema file, so it reaches every table of cs with a customer_id column, and
-- it is included as is by the upgrade script: every statement is IF NOT EXISTS.

-- Feedback follows its alert's customer; cs._alert_feedback_customer fills
-- it when not given (94_feedback_keys.sql makes it the key).
ALTER TABLE cs.alert_feedback ADD COLUMN IF NOT EXISTS customer_id uuid;
COMMENT ON COLUMN cs.alert_feedback.customer_id IS
    'The alert''s customer: row-level security and the csm follow it.';

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass
               FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND c.relname <> 'customers'
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_id'
                               AND NOT a.attisdropped)
              ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS csm text', t);
        EXECUTE format('COMMENT ON COLUMN %s.csm IS %L', t,
                       'csm of the row''s customer (cs.customers.csm), set by trigger cs._stamp_csm on every write and '
                       'kept in step when the customer''s csm changes; NULL (admins only) without a customer. '
                       'Row-level security filters on it.');
    END LOOP;
END;
$$;
