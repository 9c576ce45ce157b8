-- What happens when data is loaded: monthly partitions of cs.usage_events,
-- the dirty queue that load triggers fill, and the rules for deleting customers.

-- The customers of ids that exist, in id order.  A query by the
-- distribution column only: inside a trigger on a shard of a Citus cluster it
-- reads the colocated shard of cs.customers on the same node (Citus refuses
-- joins of a trigger's transition table with a distributed table there, and
-- any query that needs another node).
-- PL/pgSQL, not SQL: Citus cannot plan a query of a SQL function's body that
-- uses the function's parameters.
CREATE OR REPLACE FUNCTION cs._existing_customers(ids uuid[]) RETURNS uuid[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    -- none: no query (a statement trigger fires for zero rows too, and on a
    -- cluster a query with nothing to prune on would go to every shard)
    IF coalesce(cardinality(ids), 0) = 0 THEN
        RETURN '{}';
    END IF;
    RETURN (SELECT coalesce(array_agg(c.id ORDER BY c.id), '{}') FROM cs.customers c WHERE c.id = ANY (ids));
END;
$$;
COMMENT ON FUNCTION cs._existing_customers(uuid[]) IS
    'Internal: the ids among the given ones that are rows of cs.customers, in id order (load triggers check and mark customers with it).';

-- Raises foreign_key_violation naming the first customer of ids that does
-- not exist (one set-based check per statement instead of a per-row foreign
-- key, which would dominate the cost of a bulk COPY).
CREATE OR REPLACE FUNCTION cs._require_customers(ids uuid[], what text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    known   uuid[] := cs._existing_customers(ids);
    unknown uuid;
BEGIN
    IF cardinality(known) = (SELECT count(DISTINCT x) FROM unnest(ids) x WHERE x IS NOT NULL) THEN
        RETURN;
    END IF;
    SELECT x INTO unknown FROM unnest(ids) x WHERE x IS NOT NULL AND x <> ALL (known) ORDER BY x LIMIT 1;
    RAISE EXCEPTION '% for unknown customer %', what, unknown
        USING ERRCODE = 'foreign_key_violation',
              DETAIL = format('Every %s must reference a row of cs.customers; nothing of this statement was loaded.', what),
              HINT = 'Load the customer first, or map the source id to cs.customers.id.';
END;
$$;
COMMENT ON FUNCTION cs._require_customers(uuid[], text) IS
    'Internal: raises foreign_key_violation when one of the ids is not a row of cs.customers (the usage-event load triggers'' check).';

-- Marks the customers of the inserted usage events dirty, after checking that
-- every one of them exists.
CREATE OR REPLACE FUNCTION cs._usage_events_inserted() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ids    uuid[];
    stamps timestamptz[];
BEGIN
    SELECT array_agg(customer_id), array_agg(occurred_at) INTO ids, stamps FROM new_rows;
    PERFORM cs._require_customers(ids, 'usage event');
    PERFORM cs._mark_dirty(ids, stamps);
    RETURN NULL;
END;
$$;

-- Same check for updated usage events; both the old and the new customer are dirty.
CREATE OR REPLACE FUNCTION cs._usage_events_updated() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ids    uuid[];
    stamps timestamptz[];
BEGIN
    SELECT array_agg(customer_id) INTO ids FROM new_rows;
    PERFORM cs._require_customers(ids, 'usage event');
    SELECT array_agg(x.customer_id), array_agg(x.occurred_at) INTO ids, stamps
      FROM (SELECT customer_id, occurred_at FROM new_rows
            UNION ALL
            SELECT customer_id, NULL FROM old_rows) x;
    PERFORM cs._mark_dirty(ids, stamps);
    RETURN NULL;
END;
$$;

-- Marks customers dirty: one mark per customer, due at once, or when the
-- earliest of its rows comes due if all are stamped ahead of the server's
-- clock; covered_at keeps the latest stamp.  Customers go in id order, so
-- that two loads touching the same customers lock their marks in the same
-- order.  A load marking a customer again bumps its generation, which tells a
-- refresh that read the older mark to keep it.  The update uses no function
-- (Citus requires immutable ones in ON CONFLICT on a distributed table).
--
-- The same pass keeps cs.customers.first_seen_at, the earliest stamp loaded
-- for a customer (its real start, as features and training read it, where
-- created_at is only the load time).  It is lowered only, so a load of newer
-- rows writes nothing.  Customer rows are locked before their marks, in id
-- order, as an UPDATE of cs.customers does (its trigger marks them after):
-- two loads, or a load and an update of customers, never wait for each other
-- the other way round.  FOR NO KEY UPDATE leaves the KEY SHARE locks of other
-- loads' foreign-key checks free.
CREATE OR REPLACE FUNCTION cs._mark_dirty(ids uuid[], stamps timestamptz[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    now_ts   timestamptz := clock_timestamp();
    m_ids    uuid[];
    m_now    boolean[];
    m_first  timestamptz[];
    m_latest timestamptz[];
    lower_ids uuid[];
BEGIN
    SELECT array_agg(m.id ORDER BY m.id), array_agg(m.present ORDER BY m.id),
           array_agg(m.first ORDER BY m.id), array_agg(m.latest ORDER BY m.id)
      INTO m_ids, m_now, m_first, m_latest
      FROM (SELECT x.id, bool_or(x.ts IS NULL OR x.ts <= now_ts) AS present,
                   min(x.ts) AS first, max(x.ts) AS latest
              FROM unnest(ids, stamps) AS x(id, ts)
             WHERE x.id IS NOT NULL
             GROUP BY x.id) m;
    IF m_ids IS NULL THEN
        RETURN;
    END IF;
    -- Every query below names the customers by the distribution column
    -- (c.id = ANY (m_ids)): inside a trigger on a shard of a Citus cluster
    -- they are the customers of that shard, and the queries read and write
    -- the colocated shards on the same node, as Citus requires there.
    IF stamps IS NOT NULL THEN
        SELECT array_agg(k.id ORDER BY k.id) INTO lower_ids
          FROM cs.customers k
          JOIN unnest(m_ids, m_first) AS m(id, first) ON m.id = k.id
         WHERE k.id = ANY (m_ids) AND m.first IS NOT NULL AND (k.first_seen_at IS NULL OR k.first_seen_at > m.first);
        IF lower_ids IS NOT NULL THEN
            PERFORM 1 FROM cs.customers k WHERE k.id = ANY (lower_ids) ORDER BY k.id FOR NO KEY UPDATE;
            UPDATE cs.customers c SET first_seen_at = m.first
              FROM unnest(m_ids, m_first) AS m(id, first)
             WHERE c.id = ANY (lower_ids) AND c.id = m.id
               AND (c.first_seen_at IS NULL OR c.first_seen_at > m.first);
        END IF;
    END IF;
    INSERT INTO cs.dirty_customers AS d (customer_id, marked_at, due_at, covered_at)
    SELECT m.id, now_ts,
           -- due at once, unless every row of the customer is stamped ahead
           CASE WHEN m.present THEN now_ts ELSE m.first END,
           greatest(now_ts, m.latest)
      FROM unnest(m_ids, m_now, m_first, m_latest) AS m(id, present, first, latest)
     ORDER BY m.id
    ON CONFLICT (customer_id) DO UPDATE
       SET generation = d.generation + 1,
           marked_at = greatest(d.marked_at, excluded.marked_at),
           due_at = least(d.due_at, excluded.due_at),
           covered_at = greatest(d.covered_at, excluded.covered_at);
END;
$$;
COMMENT ON FUNCTION cs._mark_dirty(uuid[], timestamptz[]) IS
    'Internal: marks the given customers dirty (load triggers call it); stamps are the times on the loaded rows (NULL when none), so that rows stamped ahead of the server''s clock make the mark due when their time comes, and cs.customers.first_seen_at is lowered to the earliest of them.';

-- Marks the customers of new rows dirty (signal tables with a real foreign
-- key); the trigger's argument names the column that stamps a row's time.
CREATE OR REPLACE FUNCTION cs._mark_dirty_new() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    EXECUTE format('SELECT cs._mark_dirty(array_agg(customer_id), array_agg(%s)) FROM new_rows',
                   coalesce(quote_ident(TG_ARGV[0]), 'NULL::timestamptz'));
    RETURN NULL;
END;
$$;

-- Marks the customers of deleted rows dirty (those that still exist).
CREATE OR REPLACE FUNCTION cs._mark_dirty_old() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    PERFORM cs._mark_dirty(cs._existing_customers(array_agg(o.customer_id)), NULL) FROM old_rows o;
    RETURN NULL;
END;
$$;

-- Marks the customers of updated rows dirty, before and after the update.
CREATE OR REPLACE FUNCTION cs._mark_dirty_both() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    EXECUTE format($q$
        SELECT cs._mark_dirty(array_agg(x.customer_id), array_agg(x.ts))
          FROM (SELECT customer_id, %s AS ts FROM new_rows
                UNION ALL
                SELECT o.customer_id, NULL FROM old_rows o
                 WHERE o.customer_id = ANY (cs._existing_customers((SELECT array_agg(customer_id) FROM old_rows)))) x$q$,
        coalesce(quote_ident(TG_ARGV[0]), 'NULL::timestamptz'));
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER usage_events_mark_dirty_ins AFTER INSERT ON cs.usage_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._usage_events_inserted();
CREATE OR REPLACE TRIGGER usage_events_mark_dirty_upd AFTER UPDATE ON cs.usage_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._usage_events_updated();
CREATE OR REPLACE TRIGGER usage_events_mark_dirty_del AFTER DELETE ON cs.usage_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._mark_dirty_old();

DO $$
DECLARE
    t text;
    stamp text;
BEGIN
    -- each table with the column that stamps a row's time (none for contacts
    -- subscriptions and contract terms, whose dates are facts, not the time of
    -- a load)
    FOR t, stamp IN VALUES ('support_tickets', 'opened_at'), ('invoices', 'issued_at'),
                           ('engagements', 'occurred_at'), ('nps_responses', 'responded_at'),
                           ('contacts', NULL), ('subscriptions', NULL), ('contract_terms', NULL)
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT ON cs.%I REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cs._mark_dirty_new(%s)', t || '_mark_dirty_ins', t, coalesce(quote_literal(stamp), ''));
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER UPDATE ON cs.%I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cs._mark_dirty_both(%s)', t || '_mark_dirty_upd', t, coalesce(quote_literal(stamp), ''));
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER DELETE ON cs.%I REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION cs._mark_dirty_old()', t || '_mark_dirty_del', t);
    END LOOP;
END;
$$;

-- New or changed customers are dirty too (contract dates, MRR and seats feed
-- features).  An update that only lowers first_seen_at comes from a load,
-- whose own marks carry the rows' stamps: it marks nothing more.
CREATE OR REPLACE FUNCTION cs._customers_mark_dirty() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM cs._mark_dirty(array_agg(id), NULL) FROM new_rows;
    ELSE
        PERFORM cs._mark_dirty(array_agg(n.id), NULL)
           FROM new_rows n
           LEFT JOIN old_rows o ON o.id = n.id
          WHERE o.id IS NULL OR n.first_seen_at IS NOT DISTINCT FROM o.first_seen_at
             OR (to_jsonb(n) - 'first_seen_at') IS DISTINCT FROM (to_jsonb(o) - 'first_seen_at');
    END IF;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE TRIGGER customers_mark_dirty_ins AFTER INSERT ON cs.customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._customers_mark_dirty();
CREATE OR REPLACE TRIGGER customers_mark_dirty_upd AFTER UPDATE ON cs.customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._customers_mark_dirty();

-- Keeps customers.updated_at current, except for an update that only lowered
-- first_seen_at (a load's).
CREATE OR REPLACE FUNCTION cs._touch_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.first_seen_at IS NOT DISTINCT FROM OLD.first_seen_at
       OR (to_jsonb(NEW) - 'first_seen_at' - 'updated_at') IS DISTINCT FROM (to_jsonb(OLD) - 'first_seen_at' - 'updated_at') THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;
CREATE OR REPLACE TRIGGER customers_touch_updated_at BEFORE UPDATE ON cs.customers
    FOR EACH ROW EXECUTE FUNCTION cs._touch_updated_at();

------------------------------------------------------------------------------
-- Deleting customers
------------------------------------------------------------------------------

-- Refuses to delete customers that still have usage events (the foreign keys
-- of the other signal tables refuse it already).
CREATE OR REPLACE FUNCTION cs._customers_guard_delete() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    victim text;
    ids    uuid[];
    hit    uuid;
BEGIN
    -- the deleted ids first, then the events by the distribution column only
    -- (a trigger on a shard of a Citus cluster reads the colocated shard of
    -- cs.usage_events, and no query there may read the transition table)
    SELECT array_agg(o.id) INTO ids FROM old_rows o;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT e.customer_id INTO hit FROM cs.usage_events e WHERE e.customer_id = ANY (ids) LIMIT 1;
    IF FOUND THEN
        SELECT o.external_id INTO victim FROM old_rows o WHERE o.id = hit;
        RAISE EXCEPTION 'customer % still has usage events', victim
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'Deleting a customer would silently drop its history.',
                  HINT = 'Use cs.purge_customer(id, reason) to remove a customer and all its data on purpose.';
    END IF;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE TRIGGER customers_guard_delete AFTER DELETE ON cs.customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cs._customers_guard_delete();

-- Removes a customer and every row about it, and records the removal.
CREATE OR REPLACE FUNCTION cs.purge_customer(customer_id uuid, reason text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ext    text;
    counts jsonb := '{}';
    n      bigint;
    t      text;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a reason is required to purge a customer' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.external_id INTO ext FROM cs.customers c WHERE c.id = purge_customer.customer_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', purge_customer.customer_id USING ERRCODE = 'no_data_found';
    END IF;
    IF EXISTS (SELECT 1 FROM cs.customers c WHERE c.parent_id = purge_customer.customer_id) THEN
        RAISE EXCEPTION 'customer % is the parent of other customers', ext
            USING ERRCODE = 'foreign_key_violation', HINT = 'Reassign or purge the subsidiaries first.';
    END IF;
    -- Children of alerts first, then everything keyed by customer.
    DELETE FROM cs.alert_feedback f USING cs.alerts a
     WHERE f.alert_id = a.id AND a.customer_id = purge_customer.customer_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('alert_feedback', n);
    FOREACH t IN ARRAY ARRAY['actions', 'alerts', 'opportunities', 'risk_assessments', 'customer_health_scores', 'demo_ground_truth',
                             'customer_features', 'dirty_customers', 'usage_events', 'support_tickets', 'invoices',
                             'engagements', 'nps_responses', 'contacts', 'subscriptions', 'contract_terms']
    LOOP
        EXECUTE format('DELETE FROM cs.%I WHERE customer_id = $1', t) USING purge_customer.customer_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        counts := counts || jsonb_build_object(t, n);
    END LOOP;
    DELETE FROM cs.customers c WHERE c.id = purge_customer.customer_id;
    INSERT INTO cs.customer_purges (customer_id, external_id, rows_deleted, reason)
    VALUES (purge_customer.customer_id, ext, counts, reason);
    RETURN counts;
END;
$$;
COMMENT ON FUNCTION cs.purge_customer(uuid, text) IS
    'Deletes a customer and all its signals, scores and alerts on purpose, and records the deletion in cs.customer_purges; returns rows deleted per table.';
