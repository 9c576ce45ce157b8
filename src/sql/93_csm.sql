-- The csm column of customer-scoped tables (src/sql/schema/93_csm.sql): the
-- customer's CSM copied onto every row, so that the row-level security policy
-- of every table is "csm = ANY (cs.member_roles())", with no subquery and no
-- function reading a table (Citus refuses both in the policies of distributed
-- tables: they would be nested distributed queries on the workers).
--
-- Kept right on a single node and on Citus by two kinds of triggers, both
-- created over the catalog so that a table added later follows:
--   csm_stamp (cs._stamp_csm, C, src/csm_stamp.c), BEFORE INSERT OR UPDATE OF
--     customer_id, csm on every table with a csm column: NEW.csm := the csm of
--     NEW.customer_id, read with one single-customer query (a router query on
--     Citus) under FOR KEY SHARE; writers cannot set another value.
--   customers_csm_upd / customers_csm_ins (cs._customers_csm_changed) on
--     cs.customers: when a customer's csm changes, one UPDATE ... WHERE
--     customer_id = <that customer> per table.
-- Concurrency: the change first locks the customer FOR UPDATE, which waits for
-- every transaction that stamped a row of that customer (they hold FOR KEY
-- SHARE on it) and makes later stamps wait for the change to commit, so a row
-- inserted concurrently ends up with the new csm either way
-- (specs/rls_csm.spec).

CREATE OR REPLACE FUNCTION cs._stamp_csm() RETURNS trigger
    AS 'MODULE_PATHNAME', 'cs_stamp_csm' LANGUAGE C;
COMMENT ON FUNCTION cs._stamp_csm() IS
    'Trigger (BEFORE INSERT OR UPDATE OF customer_id, csm, each row of every customer-scoped table): sets NEW.csm to the csm of NEW.customer_id''s customer (NULL without one), read under FOR KEY SHARE as the owner of cs.customers and cached while it cannot change.';

-- Feedback rows carry their alert's customer: taken from the alert when the
-- writer gives none (on a Citus cluster a row needs its customer before it
-- reaches a shard, so there the writer gives it, as cs.record_feedback does);
-- a customer that is not the alert's is refused by the foreign key
-- (customer_id, alert_id) -> cs.alerts.
CREATE OR REPLACE FUNCTION cs._alert_feedback_customer() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF NEW.customer_id IS NULL THEN
        NEW.customer_id := (SELECT a.customer_id FROM cs.alerts a WHERE a.id = NEW.alert_id);
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION cs._alert_feedback_customer() IS
    'Trigger (BEFORE INSERT OR UPDATE OF alert_id, customer_id on cs.alert_feedback): sets a missing customer_id to the alert''s customer.';
-- Named to fire before csm_stamp (BEFORE triggers fire in name order).
CREATE OR REPLACE TRIGGER alert_feedback_customer BEFORE INSERT OR UPDATE OF alert_id, customer_id ON cs.alert_feedback
    FOR EACH ROW EXECUTE FUNCTION cs._alert_feedback_customer();
COMMENT ON TRIGGER alert_feedback_customer ON cs.alert_feedback IS
    'Copies the alert''s customer onto the feedback: its csm and row-level security follow it.';

DO $$
DECLARE
    t record;
    upd text := '';
    ins text := '';
    stmt text;
BEGIN
    FOR t IN SELECT c.oid::regclass AS rel, format('cs.%I', c.relname) AS name,
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'alert_id'
                               AND NOT a.attisdropped) AS has_alert,
                    -- rows may exist before their customer only without a foreign key to it
                    NOT EXISTS (SELECT 1 FROM pg_constraint k
                                 WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confrelid = 'cs.customers'::regclass
                                   AND k.conkey[1] = (SELECT a.attnum FROM pg_attribute a
                                                       WHERE a.attrelid = c.oid AND a.attname = 'customer_id')) AS orphans
               FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND c.relname <> 'customers'
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'csm'
                               AND NOT a.attisdropped)
              ORDER BY c.relname
    LOOP
        -- alert_id too where it exists: cs.alert_feedback derives its customer from it
        EXECUTE format('CREATE OR REPLACE TRIGGER csm_stamp BEFORE INSERT OR UPDATE OF customer_id, csm%s ON %s
                        FOR EACH ROW EXECUTE FUNCTION cs._stamp_csm()',
                       CASE WHEN t.has_alert THEN ', alert_id' END, t.rel);
        EXECUTE format('COMMENT ON TRIGGER csm_stamp ON %s IS %L', t.rel,
                       'Sets csm to the customer''s csm (row-level security filters on it); a value written is overwritten.');
        stmt := format('UPDATE %s t SET csm = NEW.csm WHERE t.customer_id = NEW.id AND t.csm IS DISTINCT FROM NEW.csm;', t.name);
        upd := upd || E'\n    ' || stmt;
        IF t.orphans THEN
            ins := ins || E'\n        '
                   || format('UPDATE %s t SET csm = r.csm WHERE t.customer_id = r.id AND t.csm IS DISTINCT FROM r.csm;', t.name);
        END IF;
    END LOOP;

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION cs._customers_csm_inserted() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $body$
DECLARE
    r      record;
    purged uuid[];
BEGIN
    -- Only a customer purged and inserted again under the same id can have
    -- rows already, in the tables without a foreign key to cs.customers: one
    -- query per statement finds them.  (Per row, on each shard of a Citus
    -- cluster, the queries would be planned by Citus one customer at a time,
    -- and each plan's memory kept until the load commits: a worker ran out of
    -- memory inserting 100,000 customers.)  EXECUTE: Citus sends the values
    -- typed to the shard.
    EXECUTE 'SELECT array_agg(p.customer_id) FROM cs.customer_purges p WHERE p.customer_id = ANY ($1)'
       INTO purged USING ARRAY(SELECT n.id FROM new_rows n WHERE n.csm IS NOT NULL);
    FOR r IN SELECT n.id, n.csm FROM new_rows n WHERE n.csm IS NOT NULL AND n.id = ANY (purged) ORDER BY n.id LOOP%s
    END LOOP;
    RETURN NULL;
END;
$body$
$f$, ins);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION cs._customers_csm_changed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $body$
BEGIN
    -- Under a transaction snapshot the UPDATEs below would miss rows that
    -- concurrent loads commit meanwhile, which would keep the old csm.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'the csm of a customer can only be changed in a READ COMMITTED transaction'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = format('Customer %%s: the rows of every customer-scoped table follow its csm, which a '
                                  'transaction snapshot cannot guarantee against concurrent loads.', NEW.id),
                  HINT = 'Change cs.customers.csm in a READ COMMITTED transaction (the default).';
    END IF;
    -- Waits for the transactions that stamped rows with the old csm (they
    -- hold FOR KEY SHARE on the customer); later stamps wait for this one.
    PERFORM 1 FROM cs.customers c WHERE c.id = NEW.id FOR UPDATE;%s
    RETURN NULL;
END;
$body$
$f$, upd);
END;
$$;
COMMENT ON FUNCTION cs._customers_csm_changed() IS
    'Trigger (AFTER UPDATE OF csm, each row of cs.customers): sets csm on the customer''s rows of every customer-scoped table (one UPDATE per table, generated from the catalog); a change locks the customer FOR UPDATE first and is refused outside READ COMMITTED.';

COMMENT ON FUNCTION cs._customers_csm_inserted() IS
    'Trigger (AFTER INSERT, each statement on cs.customers): stamps the csm of new customers on the rows that were there before them, which only a purged customer inserted again under its id can have (tables without a foreign key to cs.customers); one lookup of cs.customer_purges per statement.';
CREATE OR REPLACE TRIGGER customers_csm_ins AFTER INSERT ON cs.customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._customers_csm_inserted();
COMMENT ON TRIGGER customers_csm_ins ON cs.customers IS
    'Stamps the csm of a new customer on rows that were there before it (tables without a foreign key to cs.customers).';
CREATE OR REPLACE TRIGGER customers_csm_upd AFTER UPDATE OF csm ON cs.customers
    FOR EACH ROW WHEN (OLD.csm IS DISTINCT FROM NEW.csm) EXECUTE FUNCTION cs._customers_csm_changed();
COMMENT ON TRIGGER customers_csm_upd ON cs.customers IS
    'Moves the customer''s rows of every customer-scoped table to its new csm: row-level security follows at once.';
