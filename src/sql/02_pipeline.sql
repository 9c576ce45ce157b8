-- The refresh pipeline: the one place that owns the order of a refresh and
-- its lock discipline.  cs.refresh, cs.refresh_all, the worker's batches
-- (cs.refresh_batch) and the steps of its full rescore (cs._run_job, which
-- calls cs.refresh and cs._refresh_statistics) all go through
-- cs._refresh_customers.  The stages live with their concern: features
-- (10_features), health (20_health), risk (35_risk), opportunities
-- (50_opportunities), alerts (60_alerts); load triggers mark customers dirty
-- in 01_loading.

-- The refresh lock.  Every writer of scores, statistics or dirty marks takes
-- it first and holds it to the end of its transaction, so refreshes (by
-- hand, the worker's batches and full-rescore steps, cs.refresh_all) run one
-- at a time per database, and none waits for a row another holds while
-- holding it the other way round.  Loads never take it.
-- On a Citus cluster: the rest of the transaction uses one connection per
-- node and no parallel query.  Its statements read what earlier ones wrote to
-- the same shards and write reference tables (models, statistics, the job
-- log) that distributed tables reference, which Citus refuses after a
-- parallel access; and a parallel worker cannot take part in a distributed
-- transaction.  Nothing on a single node.
CREATE OR REPLACE FUNCTION cs._one_connection_per_node() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF cs._is_distributed() THEN
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
        PERFORM set_config('citus.max_adaptive_executor_pool_size', '1', true);
        PERFORM set_config('max_parallel_workers_per_gather', '0', true);
    END IF;
END;
$$;
COMMENT ON FUNCTION cs._one_connection_per_node() IS
    'Internal: on a Citus cluster, makes the rest of the transaction use one connection per node and no parallel query (the refresh, the worker''s jobs); nothing on a single node.';

CREATE OR REPLACE FUNCTION cs._refresh_lock() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot'), 1);
    PERFORM cs._one_connection_per_node();
END;
$$;
COMMENT ON FUNCTION cs._refresh_lock() IS
    'Internal: takes the refresh lock of this database (a transaction-level advisory lock) that every writer of scores and statistics takes first; on a Citus cluster also makes the transaction use one connection per node.';

-- The order: load -> dirty mark -> features -> health -> risk ->
-- opportunities -> alerts, in cs._refresh_customers, with the statistics of
-- the whole population (text cache, percentile populations, opportunity
-- statistics) in cs._refresh_statistics, both under the refresh lock.
--
-- The dirty-queue protocol.  A refresh takes the lock, then fixes as_of as
-- the clock at that moment, then reads the marks it will settle (a snapshot
-- taken after as_of), then computes features as of as_of (a later snapshot).
-- Every load whose mark it read committed before that read, so its rows are
-- in the features' snapshot; a mark is removed only if its rows' latest stamp
-- (covered_at) is at or before as_of, and only if no load marked the customer
-- again meanwhile (generation unchanged, and not locked by a load in
-- progress: such a mark is skipped, so a refresh never waits for a load).
-- A mark whose rows are stamped after as_of stays, due when the next of them
-- comes due.

-- Stores the feature vectors of the given customers (all when NULL) as of a time.
CREATE OR REPLACE FUNCTION cs._store_features(ids uuid[], as_of timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    n bigint;
    -- the names of the vectors written (cs.feature_names()), stored with them
    lay int := cs._feature_layout();
BEGIN
    INSERT INTO cs.customer_features AS cf (customer_id, as_of, features, layout)
    SELECT f.customer_id, _store_features.as_of, f.features, lay FROM cs.compute_features(ids, _store_features.as_of) f
    ON CONFLICT (customer_id) DO UPDATE SET as_of = excluded.as_of, features = excluded.features, layout = excluded.layout;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF ids IS NULL THEN
        UPDATE cs.feature_layouts SET full_refresh_at = clock_timestamp() WHERE layout_id = lay;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._store_features(uuid[], timestamptz) IS
    'Internal: computes and stores the feature vectors of the given customers (all when NULL) as of a time, with their layout (cs.feature_layouts); a full store marks the layout as the store''s. Returns how many.';

-- The statistics of the whole population, in dependency order: the cache of
-- text signals (so that features classify only new or changed texts), the
-- features of every customer when asked, then the percentile populations and
-- the opportunity statistics taken from the feature store.
CREATE OR REPLACE FUNCTION cs._refresh_statistics(as_of timestamptz, with_features boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM cs._refresh_lock();
    PERFORM cs._refresh_text_signals();
    IF with_features THEN
        n := cs._store_features(NULL, as_of);
    END IF;
    PERFORM cs._refresh_health_populations();
    PERFORM cs._refresh_opportunity_stats();
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._refresh_statistics(timestamptz, boolean) IS
    'Internal: under the refresh lock, brings the text-signal cache up to date, stores the features of every customer as of a time when with_features, then retakes the percentile populations and the opportunity statistics; returns the number of feature vectors written.';

-- Recomputes and stores everything of the given customers (all when ids is
-- NULL) as of a time: features (with the population statistics, for all),
-- health, risk from the deployed champions, opportunities, then alerts
-- (which read health, churn risk and opportunities).
CREATE OR REPLACE FUNCTION cs._refresh_customers(ids uuid[], as_of timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
-- Parallel query made a full refresh slower, not faster: 67.0 s against 40.9 s
-- at 100,000 customers (make bench, 2 cores); only cs.compute_features, whose
-- usage aggregate combines partial states, sets two workers again.
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    n bigint;
BEGIN
    -- on a Citus cluster, shard group by shard group (src/sql/92_distribute.sql)
    IF cs._is_distributed() THEN
        RETURN cs._refresh_distributed(ids, as_of);
    END IF;
    PERFORM cs._refresh_lock();
    -- the usage metrics changed since the last full refresh: every stored
    -- vector has the old layout, so recompute them all
    IF ids IS NOT NULL AND cs._features_stale() THEN
        ids := NULL;
    END IF;
    IF ids IS NULL THEN
        -- the month a full refresh writes its history into, when the worker
        -- has not created it yet (cheap when it exists; src/sql/61_history.sql);
        -- a caller who does not own the tables writes to the default partition
        IF to_regclass(format('cs.customer_health_scores_y%s', to_char(as_of, 'YYYY"m"MM'))) IS NULL
           AND pg_has_role(current_user, (SELECT c.relowner FROM pg_class c
                                           WHERE c.oid = 'cs.customer_health_scores'::regclass), 'USAGE') THEN
            PERFORM cs.ensure_history_partitions(as_of::date, as_of::date);
        END IF;
        n := cs._refresh_statistics(as_of, true);
    ELSE
        n := cs._store_features(ids, as_of);
    END IF;
    INSERT INTO cs.customer_health_scores (customer_id, overall_score, usage_score, engagement_score, support_score,
                                           payment_score, calculated_at, version, band, drivers)
    SELECT h.customer_id, h.overall_score, h.usage_score, h.engagement_score, h.support_score,
           h.payment_score, h.calculated_at, h.version, h.band, h.drivers
      FROM cs.compute_health(ids) h;
    PERFORM cs._score_risk(ids);
    PERFORM cs._score_opportunities(ids);
    PERFORM cs.evaluate_alerts(ids);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._refresh_customers(uuid[], timestamptz) IS
    'Internal: the refresh pipeline. Under the refresh lock, recomputes and stores the features (as of the given time) and health of the given customers (all when NULL, with the population statistics; all as well when the usage metrics changed since the last full refresh), scores risk with the deployed champions, regenerates their opportunities and evaluates their alerts; returns the number of feature vectors written.';

-- Removes the marks a refresh as of as_of has settled: those read with the
-- given generations, unchanged since, not held by a load in progress, and
-- whose rows are all stamped at or before as_of.  The others stay; a mark with
-- rows stamped later becomes due when the next of them comes due.
CREATE OR REPLACE FUNCTION cs._settle_marks(ids uuid[], generations bigint[], as_of timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    n bigint;
    grp record;
    mk record;
    done uuid[];
BEGIN
    IF cs._is_distributed() THEN
        -- On a Citus cluster: shard group by shard group, the marks locked by
        -- a query on that group's shard (Citus locks rows only in a query on
        -- one shard); the next stamp of a mark stamped ahead is looked up here,
        -- not inside the shard's statement.
        n := 0;
        FOR grp IN SELECT array_agg(m.id ORDER BY m.id) AS ids, array_agg(m.generation ORDER BY m.id) AS gens
                   FROM unnest(ids, generations) AS m(id, generation)
                  GROUP BY pg_catalog.get_shard_id_for_distribution_column('cs.customers', m.id) ORDER BY 1
        LOOP
            done := '{}';
            FOR mk IN SELECT d.customer_id, d.covered_at
                       FROM cs.dirty_customers d
                       JOIN unnest(grp.ids, grp.gens) AS m(id, generation)
                         ON d.customer_id = m.id AND d.generation = m.generation
                      WHERE d.customer_id = ANY (grp.ids)
                      ORDER BY d.customer_id
                        FOR UPDATE OF d SKIP LOCKED
            LOOP
                IF mk.covered_at > as_of THEN
                    UPDATE cs.dirty_customers d
                       SET due_at = coalesce(cs._next_stamp_after(mk.customer_id, as_of), mk.covered_at)
                     WHERE d.customer_id = mk.customer_id;
                ELSE
                    done := done || mk.customer_id;
                END IF;
            END LOOP;
            IF cardinality(done) > 0 THEN
                DELETE FROM cs.dirty_customers d WHERE d.customer_id = ANY (done);
                n := n + cardinality(done);
            END IF;
        END LOOP;
        RETURN n;
    END IF;
    WITH held AS (
        SELECT d.customer_id, d.covered_at
          FROM cs.dirty_customers d
          JOIN unnest(ids, generations) AS m(id, generation)
            ON d.customer_id = m.id AND d.generation = m.generation
         ORDER BY d.customer_id
           FOR UPDATE OF d SKIP LOCKED
    ), later AS (
        UPDATE cs.dirty_customers d
           SET due_at = coalesce(cs._next_stamp_after(h.customer_id, as_of), h.covered_at)
          FROM held h
         WHERE d.customer_id = h.customer_id AND h.covered_at > as_of
    )
    DELETE FROM cs.dirty_customers d
     USING held h
     WHERE d.customer_id = h.customer_id AND h.covered_at <= as_of;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._settle_marks(uuid[], bigint[], timestamptz) IS
    'Internal: removes the dirty marks a refresh as of as_of has settled (read with these generations, unchanged since, not held by a load in progress, every row stamped at or before as_of); a mark with rows stamped later is kept, due when the next of them is. Returns the number removed.';

-- The earliest time after a point that is stamped on a signal row of a customer.
CREATE OR REPLACE FUNCTION cs._next_stamp_after(customer_id uuid, after timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
AS $$
    SELECT least((SELECT min(e.occurred_at) FROM cs.usage_events e
                   WHERE e.customer_id = _next_stamp_after.customer_id AND e.occurred_at > after),
                 (SELECT min(t.opened_at) FROM cs.support_tickets t
                   WHERE t.customer_id = _next_stamp_after.customer_id AND t.opened_at > after),
                 (SELECT min(i.issued_at) FROM cs.invoices i
                   WHERE i.customer_id = _next_stamp_after.customer_id AND i.issued_at > after),
                 (SELECT min(g.occurred_at) FROM cs.engagements g
                   WHERE g.customer_id = _next_stamp_after.customer_id AND g.occurred_at > after),
                 (SELECT min(r.responded_at) FROM cs.nps_responses r
                   WHERE r.customer_id = _next_stamp_after.customer_id AND r.responded_at > after));
$$;
COMMENT ON FUNCTION cs._next_stamp_after(uuid, timestamptz) IS
    'Internal: the earliest time after the given one stamped on a usage event, ticket, invoice, engagement or NPS response of the customer; NULL when none.';

-- Refreshes the given customers, or every customer whose mark is due.
CREATE OR REPLACE FUNCTION cs.refresh(customer_ids uuid[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    as_of    timestamptz;
    mark_ids uuid[];
    mark_gen bigint[];
    todo     uuid[];
    n        bigint;
BEGIN
    IF cardinality(customer_ids) > 10000000 THEN
        RAISE EXCEPTION 'too many customers in one refresh' USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM cs._refresh_lock();
    -- after the lock: loads that committed while the refresh waited count
    as_of := clock_timestamp();
    IF customer_ids IS NULL THEN
        SELECT array_agg(d.customer_id ORDER BY d.customer_id), array_agg(d.generation ORDER BY d.customer_id)
          INTO mark_ids, mark_gen
          FROM cs.dirty_customers d WHERE NOT d.parked AND d.due_at <= as_of;
        todo := mark_ids;
    ELSE
        todo := ARRAY(SELECT DISTINCT x FROM unnest(customer_ids) x WHERE x IS NOT NULL ORDER BY 1);
        SELECT array_agg(d.customer_id ORDER BY d.customer_id), array_agg(d.generation ORDER BY d.customer_id)
          INTO mark_ids, mark_gen
          FROM cs.dirty_customers d WHERE d.customer_id = ANY (todo);
    END IF;
    IF coalesce(cardinality(todo), 0) = 0 THEN
        RETURN 0;
    END IF;
    n := cs._refresh_customers(todo, as_of);
    PERFORM cs._settle_marks(mark_ids, mark_gen, as_of);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.refresh(uuid[]) IS
    'Recomputes features, health, risk, opportunities and alerts for the given customers, or for every customer whose dirty mark is due when NULL; returns the number of customers refreshed. A mark is removed only when the refresh counted every row that set it.';

-- Refreshes every customer.
CREATE OR REPLACE FUNCTION cs.refresh_all()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    as_of    timestamptz;
    mark_ids uuid[];
    mark_gen bigint[];
    n        bigint;
BEGIN
    PERFORM cs._refresh_lock();
    as_of := clock_timestamp();
    SELECT array_agg(d.customer_id ORDER BY d.customer_id), array_agg(d.generation ORDER BY d.customer_id)
      INTO mark_ids, mark_gen
      FROM cs.dirty_customers d;
    n := cs._refresh_customers(NULL, as_of);
    PERFORM cs._settle_marks(mark_ids, mark_gen, as_of);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.refresh_all() IS 'Recomputes every customer''s features and scores; returns the number of customers.';

-- Refreshes up to batch_size dirty customers whose marks are due, earliest
-- first, through the refresh pipeline (see cs.refresh).  If the batch fails,
-- its customers are retried one by one, each in a subtransaction: the good
-- ones are stored, the failing ones get an attempt counted (and are parked
-- after cscopilot.max_attempts).  Cancellation (the batch time limit) is not
-- caught.
CREATE OR REPLACE FUNCTION cs.refresh_batch(batch_size int) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
-- JIT compiles for about a second on these plans' (pessimistic) cost estimates,
-- which dominates refreshing a few customers.
SET jit = off
AS $$
DECLARE
    as_of timestamptz;
    ids   uuid[];
    gens  bigint[];
    n     bigint := 0;
    i     int;
    err   text;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM cs._refresh_lock();
    as_of := clock_timestamp();
    SELECT array_agg(p.customer_id ORDER BY p.due_at, p.customer_id), array_agg(p.generation ORDER BY p.due_at, p.customer_id)
      INTO ids, gens
      FROM (SELECT d.customer_id, d.generation, d.due_at FROM cs.dirty_customers d
             WHERE NOT d.parked AND d.due_at <= as_of
             ORDER BY d.due_at, d.customer_id
             LIMIT batch_size) p;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;

    BEGIN
        n := cs._refresh_customers(ids, as_of);
        PERFORM cs._settle_marks(ids, gens, as_of);
        RETURN n;
    EXCEPTION WHEN OTHERS THEN
        IF cardinality(ids) = 1 THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            PERFORM cs._customer_failed(ids[1], err);
            RETURN 0;
        END IF;
    END;

    -- One by one: find the poison customers, keep the work of the others.
    FOR i IN 1 .. cardinality(ids) LOOP
        BEGIN
            n := n + cs._refresh_customers(ARRAY[ids[i]], as_of);
            PERFORM cs._settle_marks(ARRAY[ids[i]], ARRAY[gens[i]], as_of);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            PERFORM cs._customer_failed(ids[i], err);
        END;
    END LOOP;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.refresh_batch(int) IS
    'Refreshes up to batch_size non-parked dirty customers whose marks are due (earliest first) and removes the marks it settled; customers that fail are retried one by one, counted in attempts and parked after cscopilot.max_attempts failures. Returns the number of customers refreshed.';

