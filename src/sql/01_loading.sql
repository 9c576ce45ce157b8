-- What happens when data is loaded: monthly partitions of cs.usage_events,
-- the dirty queue that load triggers fill, and the rules for deleting customers.

-- Marks the customers of the inserted usage events dirty, after checking that
-- every one of them exists (one set-based check per statement instead of a
-- per-row foreign key, which would dominate the cost of a bulk COPY).
CREATE OR REPLACE FUNCTION cs._usage_events_inserted() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    unknown uuid;
BEGIN
    SELECT d.customer_id INTO unknown
      FROM (SELECT DISTINCT customer_id FROM new_rows) d
     WHERE NOT EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = d.customer_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'usage event for unknown customer %', unknown
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'Every usage event must reference a row of cs.customers; nothing of this statement was loaded.',
                  HINT = 'Load the customer first, or map the source id to cs.customers.id.';
    END IF;
    PERFORM cs._mark_dirty(array_agg(customer_id), array_agg(occurred_at)) FROM new_rows;
    RETURN NULL;
END;
$$;

-- Same check for updated usage events; both the old and the new customer are dirty.
CREATE OR REPLACE FUNCTION cs._usage_events_updated() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    unknown uuid;
BEGIN
    SELECT d.customer_id INTO unknown
      FROM (SELECT DISTINCT customer_id FROM new_rows) d
     WHERE NOT EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = d.customer_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'usage event for unknown customer %', unknown
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM cs._mark_dirty(array_agg(x.customer_id), array_agg(x.occurred_at))
       FROM (SELECT customer_id, occurred_at FROM new_rows
             UNION ALL
             SELECT customer_id, NULL FROM old_rows) x;
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
    IF stamps IS NOT NULL THEN
        UPDATE cs.customers c SET first_seen_at = l.first
          FROM (SELECT k.id, m.first
                  FROM unnest(m_ids, m_first) AS m(id, first)
                  JOIN cs.customers k ON k.id = m.id
                 WHERE m.first IS NOT NULL AND (k.first_seen_at IS NULL OR k.first_seen_at > m.first)
                 ORDER BY k.id
                   FOR NO KEY UPDATE OF k) l
         WHERE c.id = l.id;
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
    PERFORM cs._mark_dirty(array_agg(o.customer_id), NULL)
       FROM old_rows o
      WHERE EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = o.customer_id);
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
                 WHERE EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = o.customer_id)) x$q$,
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
BEGIN
    SELECT o.external_id INTO victim
      FROM old_rows o
     WHERE EXISTS (SELECT 1 FROM cs.usage_events e WHERE e.customer_id = o.id)
     LIMIT 1;
    IF FOUND THEN
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
