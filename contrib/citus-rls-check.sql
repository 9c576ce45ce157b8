-- The csm mechanism of row-level security (src/csm_stamp.c, src/sql/93_csm.sql)
-- on a Citus cluster, on a hand-made pair of colocated distributed tables with
-- the extension's trigger function and the same policy shape:
--   bash contrib/citus-cluster.sh bash -c 'psql -X -v ON_ERROR_STOP=1 -f contrib/citus-rls-check.sql'
-- Each check prints a row; "ok" is true when it holds.
\set VERBOSITY terse
SET client_min_messages = warning;
SET citus.enable_unsafe_triggers = on;
CREATE SCHEMA cs;
CREATE TABLE cs.customers (id uuid PRIMARY KEY, csm text);
CREATE TABLE cs.events (customer_id uuid NOT NULL, n int NOT NULL, csm text, PRIMARY KEY (customer_id, n));
SELECT create_distributed_table('cs.customers', 'id');
SELECT create_distributed_table('cs.events', 'customer_id', colocate_with => 'cs.customers');

-- the same functions as the extension's: the C stamp, and the generated
-- propagation reduced to this one table
CREATE FUNCTION cs._stamp_csm() RETURNS trigger AS '$libdir/cscopilot', 'cs_stamp_csm' LANGUAGE C;
CREATE FUNCTION cs.member_roles() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles r
              WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') ORDER BY 1)
$$;
CREATE FUNCTION cs._customers_csm_changed() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, cs AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM cs.customers c WHERE c.id = NEW.id FOR UPDATE;
    UPDATE cs.events t SET csm = NEW.csm WHERE t.customer_id = NEW.id AND t.csm IS DISTINCT FROM NEW.csm;
    RETURN NULL;
END;
$$;
CREATE TRIGGER csm_stamp BEFORE INSERT OR UPDATE OF customer_id, csm ON cs.events
    FOR EACH ROW EXECUTE FUNCTION cs._stamp_csm();
CREATE TRIGGER customers_csm_upd AFTER UPDATE OF csm ON cs.customers
    FOR EACH ROW WHEN (OLD.csm IS DISTINCT FROM NEW.csm) EXECUTE FUNCTION cs._customers_csm_changed();
ALTER TABLE cs.customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE cs.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY customer_scope ON cs.customers USING (csm = ANY (cs.member_roles()));
CREATE POLICY customer_scope ON cs.events USING (csm = ANY (cs.member_roles()))
    WITH CHECK (csm = ANY (cs.member_roles()));
SELECT 'policies and triggers accepted' AS step,
       (SELECT count(*) FROM pg_policy WHERE polrelid IN ('cs.customers'::regclass, 'cs.events'::regclass)) = 2
       AND (SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('cs.customers'::regclass, 'cs.events'::regclass)
                                               AND NOT tgisinternal) = 2 AS ok;
-- the triggers exist on the shards, on the workers
SELECT 'triggers on every shard' AS step,
       bool_and(success AND result::int = 1) AS ok, count(*) AS shards
  FROM run_command_on_shards('cs.events',
       $$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND tgname LIKE 'csm_stamp%%'$$);

-- 40 customers, 4 CSMs
INSERT INTO cs.customers
SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(i), 12, '0'))::uuid, 'citus_csm_' || (i % 4)
  FROM generate_series(1, 40) i;

-- INSERT ... SELECT and multi-row INSERT: the csm written ('forged') is replaced by the customer's
INSERT INTO cs.events (customer_id, n, csm)
SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(1 + i % 40), 12, '0'))::uuid, i, 'forged'
  FROM generate_series(1, 400) i;
SELECT 'insert stamps csm' AS step, count(*) AS rows, count(*) FILTER (WHERE e.csm = c.csm) AS stamped,
       count(*) = count(*) FILTER (WHERE e.csm = c.csm) AS ok
  FROM cs.events e JOIN cs.customers c ON c.id = e.customer_id;

-- COPY
COPY cs.events (customer_id, n, csm) FROM STDIN WITH (FORMAT csv);
00000000-0000-0000-0000-000000000001,1001,forged
00000000-0000-0000-0000-000000000002,1002,
00000000-0000-0000-0000-000000000003,1003,citus_csm_0
00000000-0000-0000-0000-000000000004,1004,forged
\.
SELECT 'copy stamps csm' AS step, count(*) AS rows, count(*) FILTER (WHERE e.csm = c.csm) AS stamped,
       count(*) = count(*) FILTER (WHERE e.csm = c.csm) AS ok
  FROM cs.events e JOIN cs.customers c ON c.id = e.customer_id WHERE e.n > 1000;

-- a csm change on one customer (router) and on several (multi-shard) propagates
UPDATE cs.customers SET csm = 'citus_csm_new' WHERE id = '00000000-0000-0000-0000-000000000001';
SELECT 'csm change propagates (one customer)' AS step, count(*) AS rows,
       bool_and(e.csm = 'citus_csm_new') AS ok
  FROM cs.events e WHERE e.customer_id = '00000000-0000-0000-0000-000000000001';
UPDATE cs.customers SET csm = 'citus_csm_9' WHERE csm = 'citus_csm_2';
SELECT 'csm change propagates (multi-shard)' AS step, count(*) AS rows,
       count(*) = count(*) FILTER (WHERE e.csm = c.csm) AS ok
  FROM cs.events e JOIN cs.customers c ON c.id = e.customer_id;
-- a direct UPDATE of csm is overwritten too
UPDATE cs.events SET csm = 'forged' WHERE customer_id = '00000000-0000-0000-0000-000000000005';
SELECT 'update of csm overwritten' AS step, bool_and(e.csm = c.csm) AS ok
  FROM cs.events e JOIN cs.customers c ON c.id = e.customer_id
 WHERE e.customer_id = '00000000-0000-0000-0000-000000000005';

-- a non-superuser sees exactly the rows of her customers through the policy
DROP ROLE IF EXISTS citus_csm_1;
CREATE ROLE citus_csm_1 LOGIN;
GRANT USAGE ON SCHEMA cs TO citus_csm_1;
GRANT SELECT ON cs.customers, cs.events TO citus_csm_1;
SELECT count(*) AS expected FROM cs.events e JOIN cs.customers c ON c.id = e.customer_id
 WHERE c.csm = 'citus_csm_1' \gset
SELECT count(*) AS expected_customers FROM cs.customers WHERE csm = 'citus_csm_1' \gset
SET ROLE citus_csm_1;
SELECT 'RLS: a CSM sees exactly her rows' AS step, count(*) AS seen, :expected AS expected,
       count(*) = :expected AND bool_and(csm = 'citus_csm_1') AS ok FROM cs.events;
SELECT 'RLS: a CSM sees exactly her customers' AS step, count(*) AS seen, :expected_customers AS expected,
       count(*) = :expected_customers AND bool_and(csm = 'citus_csm_1') AS ok FROM cs.customers;
-- her query is a router query with the policy's filter on the shard, no subplan
EXPLAIN (COSTS OFF) SELECT count(*) FROM cs.events WHERE customer_id = '00000000-0000-0000-0000-000000000005';
RESET ROLE;
-- move one of her customers away: she no longer sees its rows
UPDATE cs.customers SET csm = 'citus_csm_0' WHERE id = '00000000-0000-0000-0000-000000000005';
SET ROLE citus_csm_1;
SELECT 'RLS: after the move she sees none of its rows' AS step,
       count(*) FILTER (WHERE customer_id = '00000000-0000-0000-0000-000000000005') AS seen_of_moved,
       count(*) FILTER (WHERE customer_id = '00000000-0000-0000-0000-000000000005') = 0 AS ok FROM cs.events;
RESET ROLE;
DROP SCHEMA cs CASCADE;
DROP ROLE citus_csm_1;
