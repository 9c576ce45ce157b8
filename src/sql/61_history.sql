-- History retention: the history tables (cs.history_tables(): health scores,
-- risk assessments, shadow scores, alert events) are range-partitioned by
-- month (src/sql/pre_install/61_history.sql creates the months), so old
-- history goes a month at a time: cs.apply_retention detaches and drops every
-- monthly partition that ends before now - cscopilot.history_retention.
--
-- What survives.  The views read the latest row of each customer
-- (cs.account_health_overview, the alert, revenue and workspace pages), so
-- a customer not rescored for longer than the retention must keep its last
-- score.  Before a partition is dropped its rows that are still the latest of
-- their key (cs.history_tables().latest_key: the customer for health; the
-- customer and risk type for risk; and the model for shadow scores; the alert
-- for events) are moved into the default partition, which no monthly
-- partition covers once that month is gone.  The default partition therefore
-- holds at most one row per key of such dormant customers (plus rows of months
-- that never had a partition); retention deletes its rows older than the
-- cut-off that a later row of the same key has superseded.  Keeping whole
-- partitions for a few dormant customers instead would keep every other row
-- of that month too, without bound.

-- Detaches and drops the monthly partitions of the history tables that end
-- before now - keep (cscopilot.history_retention when NULL), keeping the rows
-- still the latest of their key; returns what it dropped.
CREATE OR REPLACE FUNCTION cs.apply_retention(keep interval DEFAULT NULL)
RETURNS TABLE (table_name text, partition_name text, range_start timestamptz, range_end timestamptz,
               rows_dropped bigint, rows_kept bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    t       record;
    p       record;
    cutoff  timestamptz;
    cols    text;
    newer   text;
    n_all   bigint;
    n_kept  bigint;
    ext     oid := (SELECT e.oid FROM pg_extension e WHERE e.extname = 'cscopilot');
BEGIN
    -- Detaching and dropping partitions takes the tables' owner (the role that
    -- created the extension, which the worker runs as): say so before any work.
    IF NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_class c
                                       WHERE c.oid = 'cs.customer_health_scores'::regclass), 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to apply history retention'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Role "%s" does not own the history tables.', current_user),
                  HINT = 'Run it as the owner of the extension''s tables; the worker runs it daily (job retention).';
    END IF;
    IF keep IS NULL THEN
        -- in seconds; 0 keeps everything
        IF cs.setting('cscopilot.history_retention')::bigint <= 0 THEN
            RETURN;
        END IF;
        keep := make_interval(secs => cs.setting('cscopilot.history_retention')::bigint);
    ELSIF keep <= interval '0' THEN
        RAISE EXCEPTION 'retention must be positive: %', keep
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the age of the oldest history to keep, for example interval ''400 days''.';
    END IF;
    cutoff := now() - keep;
    -- Refreshes write these tables under the refresh lock: wait for the one
    -- running rather than deadlock with it over the partitions' locks.
    PERFORM cs._refresh_lock();
    FOR t IN SELECT h.table_name, h.time_column, h.latest_key FROM cs.history_tables() h ORDER BY h.table_name LOOP
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_attribute a
         WHERE a.attrelid = format('cs.%I', t.table_name)::regclass AND a.attnum > 0 AND NOT a.attisdropped;
        -- "a later row of the same key exists in x"
        newer := format('SELECT 1 FROM %%s x WHERE %s AND x.%I > r.%I',
                        (SELECT string_agg(format('x.%1$I = r.%1$I', k), ' AND ') FROM unnest(t.latest_key) k),
                        t.time_column, t.time_column);
        FOR p IN SELECT c.relname::text AS part, b.lo, b.hi, ext IS NOT NULL AND EXISTS (
                            SELECT 1 FROM pg_depend d
                             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
                               AND d.refobjid = ext) AS member
                   FROM pg_inherits i
                   JOIN pg_class c ON c.oid = i.inhrelid
                  CROSS JOIN LATERAL (
                        SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']*)''\)'))[1]::timestamptz AS lo,
                               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']*)''\)'))[1]::timestamptz AS hi) b
                  WHERE i.inhparent = format('cs.%I', t.table_name)::regclass
                    AND b.hi IS NOT NULL AND b.hi <= cutoff
                  ORDER BY b.hi, c.relname
        LOOP
            EXECUTE format('SELECT count(*) FROM cs.%I', p.part) INTO n_all;
            EXECUTE format('ALTER TABLE cs.%I DETACH PARTITION cs.%I', t.table_name, p.part);
            -- the latest rows of their key, over the partition and the rest of
            -- the table, go to the default partition (no partition covers the
            -- month any more)
            EXECUTE format('INSERT INTO cs.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM cs.%I r
                             WHERE NOT EXISTS (%s) AND NOT EXISTS (%s)',
                           t.table_name, cols, cols, p.part,
                           format(newer, format('cs.%I', p.part)), format(newer, format('cs.%I', t.table_name)));
            GET DIAGNOSTICS n_kept = ROW_COUNT;
            IF p.member THEN
                -- created by CREATE EXTENSION or an upgrade: a member until now
                EXECUTE format('ALTER EXTENSION cscopilot DROP TABLE cs.%I', p.part);
            END IF;
            EXECUTE format('DROP TABLE cs.%I', p.part);
            table_name := t.table_name;
            partition_name := p.part;
            range_start := p.lo;
            range_end := p.hi;
            rows_dropped := n_all - n_kept;
            rows_kept := n_kept;
            RETURN NEXT;
        END LOOP;
        -- the default partition: rows older than the cut-off that a later row
        -- of their key superseded
        EXECUTE format('DELETE FROM cs.%I r WHERE r.%I < %L AND EXISTS (%s)',
                       t.table_name || '_default', t.time_column, cutoff,
                       format(newer, format('cs.%I', t.table_name)));
        GET DIAGNOSTICS n_all = ROW_COUNT;
        IF n_all > 0 THEN
            table_name := t.table_name;
            partition_name := t.table_name || '_default';
            range_start := NULL;
            range_end := NULL;
            rows_dropped := n_all;
            rows_kept := NULL;
            RETURN NEXT;
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs.apply_retention(interval) IS
    'Admins only, as the owner of the tables (the worker''s role): detaches and drops the monthly partitions of the history tables (cs.history_tables()) that end before now - keep (NULL: cscopilot.history_retention; 0 there keeps everything), first moving into the default partition the rows still the latest of their key (every customer keeps its latest health score, risk assessment per risk type and shadow score per model; every alert its latest event); then deletes superseded rows older than the cut-off from the default partitions.  Returns one row per partition dropped (rows dropped, rows kept) and per default partition swept (rows deleted); idempotent.  The worker runs it daily (job retention).';
