-- cs.distribute() and cs.distribution_plan() on a single node (no Citus);
-- make test-citus runs cs.distribute() on a real cluster.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS cscopilot;

-- Without Citus cs.distribute() refuses with feature_not_supported and changes nothing.
SET client_min_messages = notice;
DO $$
BEGIN
    PERFORM cs.distribute();
    RAISE EXCEPTION 'cs.distribute() ran without Citus';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END;
$$;
SET client_min_messages = warning;

-- The plan names every table of cs once (partitions go with their parent), in steps 1..n.
SELECT count(*) = (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'cs'::regnamespace
                      AND c.relkind IN ('r', 'p') AND NOT c.relispartition) AS every_table,
       count(DISTINCT table_name) = count(*) AS once,
       min(step) = 1 AND max(step) = count(*) AS steps
  FROM cs.distribution_plan();

-- cs.customers by id, first of the distributed tables; every table with a
-- customer_id column distributed by it and colocated with cs.customers; the
-- rest reference tables, all before the distributed ones.
SELECT table_name, kind, distribution_column, colocate_with
  FROM cs.distribution_plan()
 WHERE step = (SELECT min(step) FROM cs.distribution_plan() WHERE kind = 'distributed');
SELECT p.table_name, p.kind, p.distribution_column, p.colocate_with
  FROM cs.distribution_plan() p
 WHERE p.table_name <> 'cs.customers'::regclass
   AND (p.kind = 'distributed') IS DISTINCT FROM EXISTS (
           SELECT 1 FROM pg_attribute a WHERE a.attrelid = p.table_name AND a.attname = 'customer_id' AND NOT a.attisdropped)
    OR (p.kind = 'distributed' AND p.table_name <> 'cs.customers'::regclass
        AND (p.distribution_column, p.colocate_with) IS DISTINCT FROM ('customer_id', 'cs.customers'::regclass))
    OR (p.kind = 'reference' AND (p.distribution_column IS NOT NULL OR p.colocate_with IS NOT NULL));
-- (a reference table that references a distributed one cannot be, and is listed last)
SELECT max(step) FILTER (WHERE kind = 'reference' AND NOT EXISTS (
           SELECT 1 FROM pg_constraint f JOIN cs.distribution_plan() d ON d.table_name = f.confrelid
            WHERE f.conrelid = p.table_name AND f.contype = 'f' AND d.kind = 'distributed'))
       < min(step) FILTER (WHERE kind = 'distributed') AS reference_tables_first
  FROM cs.distribution_plan() p;

-- Foreign keys: every table comes after the tables it references, except a
-- reference table referencing a distributed one, which Citus cannot do at all
-- (cs.distribute() reports it from Citus).
SELECT f.conname, f.conrelid::regclass AS referencing, f.confrelid::regclass AS referenced
  FROM pg_constraint f
  JOIN cs.distribution_plan() a ON a.table_name = f.conrelid
  JOIN cs.distribution_plan() b ON b.table_name = f.confrelid
 WHERE f.contype = 'f' AND f.conrelid <> f.confrelid AND a.step < b.step
   AND NOT (a.kind = 'reference' AND b.kind = 'distributed')
 ORDER BY 1;

-- Viewers may read the plan; only admins may distribute.
SELECT has_function_privilege('cscopilot_viewer', 'cs.distribution_plan()', 'EXECUTE') AS viewer_plan,
       has_function_privilege('cscopilot_viewer', 'cs.distribute()', 'EXECUTE') AS viewer_distribute,
       has_function_privilege('cscopilot_admin', 'cs.distribute()', 'EXECUTE') AS admin_distribute;
