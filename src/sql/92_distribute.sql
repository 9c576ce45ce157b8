-- Citus: cs.distribute() turns the extension's tables into distributed and
-- reference tables on a Citus coordinator (README, "Running on Citus").
--
-- Which table becomes what is read from the catalog, as 95_security.sql reads
-- it for row-level security, so that a table added later follows the rule
-- without an edit here:
--   cs.customers                  distributed by id;
--   every table with customer_id  distributed by customer_id, colocated with
--                                 cs.customers (a customer's rows of every
--                                 table in the same shard group);
--   every other table             a reference table (a copy on every node):
--                                 configuration, models, the statistics that
--                                 need the whole population, the worker's log.
-- Reference tables come first, each after the tables it references, then
-- cs.customers, then the customer-keyed tables, again each after the tables it
-- references: Citus accepts a foreign key only to a table that is already a
-- reference table or a colocated distributed table.
--
-- The workers' shells.  Citus propagates CREATE EXTENSION cscopilot to every
-- node, so each worker has the extension's own copy of every table, created
-- by the same script.  For a table that belongs to an extension Citus creates
-- no shell on the workers and leaves its foreign keys and partitions alone: the
-- extension's copy IS the shell (metadata_sync.c, IsTableOwnedByExtension).
-- It is identical to the coordinator's because every node runs the same
-- install and update scripts.  What CREATE EXTENSION inserted into the workers'
-- copies (the shipped configuration rows and model) is never read there once
-- the table is distributed; it is left there, because the validation triggers
-- that run on the workers while a table is copied into its shards read the
-- workers' copies of the configuration (feature catalog) that are not yet
-- reference tables.

-- True when this database has Citus (the extension, not only the library).
CREATE OR REPLACE FUNCTION cs._citus_present() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$ SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') $$;
COMMENT ON FUNCTION cs._citus_present() IS
    'Internal: true when the Citus extension is installed in this database.';

-- Uniqueness across customers.  Citus refuses a unique index of a distributed
-- table that lacks the distribution column, so every key of a customer-keyed
-- table holds customer_id; where a rule must hold across customers (one
-- customer per cs.customers.external_id and per cs.customer_keys key, one row
-- per source record: external_id of tickets and invoices, (source, source_id)
-- of the signal tables and CRM opportunities) a single node keeps it by a
-- unique index named <table>_<what>_global_key as well.  cs.distribute() drops
-- those before it distributes a table; on the cluster the loaders keep the
-- rules themselves: a customer is created only when its external_id resolves
-- to none, a key is learnt only when unmapped, and a record whose customer
-- changed in the source is deleted under the old customer before it is
-- inserted under the new one (README, "Keys across customers").
CREATE OR REPLACE FUNCTION cs._global_unique_indexes()
RETURNS TABLE (table_name regclass, index_name regclass)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT t.oid::regclass, i.indexrelid::regclass
      FROM pg_index i
      JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_class x ON x.oid = i.indexrelid
     WHERE t.relnamespace = 'cs'::regnamespace AND t.relkind IN ('r', 'p') AND NOT t.relispartition
       AND i.indisunique
       -- distributed-to-be, as cs.distribution_plan() reads it, and lacking its distribution column
       AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = t.oid AND NOT a.attisdropped AND a.attnum = ANY (i.indkey::int2[])
                          AND a.attname = CASE WHEN t.oid = 'cs.customers'::regclass THEN 'id' ELSE 'customer_id' END)
       AND (t.oid = 'cs.customers'::regclass
            OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'customer_id' AND NOT a.attisdropped))
     ORDER BY t.relname, x.relname
$$;
COMMENT ON FUNCTION cs._global_unique_indexes() IS
    'Internal: every unique index of a table cs.distribute() distributes (cs.customers, and every table with customer_id) that lacks the distribution column: the <table>_<what>_global_key indexes that keep a key unique across customers on a single node (one customer per external_id and per customer key, one row per source record). cs.distribute() drops them, Citus cannot keep them; on a cluster the loaders keep those rules. Empty once they are dropped.';

-- True when cs.customers is a distributed table of Citus (cs.distribute() has
-- run): the refresh then works shard group by shard group.
CREATE OR REPLACE FUNCTION cs._is_distributed() RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = 'cs.customers'::regclass);
END;
$$;
COMMENT ON FUNCTION cs._is_distributed() IS
    'Internal: true when cs.customers is distributed by Citus (after cs.distribute()).';

-- The given customers by shard group: on a Citus cluster one array per shard
-- group (in shard order), for statements that must target one shard (a
-- modification joined with its values, row locks); on a single node one NULL,
-- meaning everyone at once.  Nothing when ids is empty.
CREATE OR REPLACE FUNCTION cs._shard_groups(ids uuid[]) RETURNS SETOF uuid[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF coalesce(cardinality(ids), 0) = 0 THEN
        RETURN;
    END IF;
    IF NOT cs._is_distributed() THEN
        RETURN NEXT NULL::uuid[];
        RETURN;
    END IF;
    -- (EXECUTE: the Citus function does not exist on a single node)
    RETURN QUERY EXECUTE
        'SELECT array_agg(DISTINCT x.c)
           FROM unnest($1) x (c)
          WHERE x.c IS NOT NULL
          GROUP BY pg_catalog.get_shard_id_for_distribution_column(''cs.customers'', x.c)
          ORDER BY pg_catalog.get_shard_id_for_distribution_column(''cs.customers'', x.c)'
        USING ids;
END;
$$;
COMMENT ON FUNCTION cs._shard_groups(uuid[]) IS
    'Internal: the given customers split by Citus shard group, one array per group; one NULL on a single node (everyone at once); nothing for no customers.';

-- What cs.distribute() makes of every table of cs, in the order it does it.
CREATE OR REPLACE FUNCTION cs.distribution_plan()
RETURNS TABLE (step int, table_name regclass, kind text, distribution_column text, colocate_with regclass)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    rels     oid[];
    kinds    text[];
    done     oid[] := '{}';
    progress boolean;
    i        int;
    n        int := 0;
    pass     text;
BEGIN
    SELECT array_agg(c.oid ORDER BY c.relname),
           array_agg(CASE WHEN c.oid = 'cs.customers'::regclass
                            OR EXISTS (SELECT 1 FROM pg_attribute a
                                        WHERE a.attrelid = c.oid AND a.attname = 'customer_id' AND NOT a.attisdropped)
                          THEN 'distributed' ELSE 'reference' END ORDER BY c.relname)
      INTO rels, kinds
      FROM pg_class c
     WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition;

    -- Reference tables, then distributed ones (cs.customers first of them),
    -- each pass taking every table whose referenced tables are all done.
    FOREACH pass IN ARRAY ARRAY['reference', 'distributed'] LOOP
        IF pass = 'distributed' THEN
            n := n + 1;
            step := n; table_name := 'cs.customers'::regclass; kind := 'distributed';
            distribution_column := 'id'; colocate_with := NULL;
            RETURN NEXT;
            done := done || 'cs.customers'::regclass::oid;
        END IF;
        LOOP
            progress := false;
            FOR i IN 1 .. coalesce(array_length(rels, 1), 0) LOOP
                CONTINUE WHEN kinds[i] <> pass OR rels[i] = ANY (done);
                CONTINUE WHEN EXISTS (SELECT 1 FROM pg_constraint f
                                       WHERE f.conrelid = rels[i] AND f.contype = 'f' AND f.confrelid <> rels[i]
                                         AND f.confrelid = ANY (rels) AND NOT f.confrelid = ANY (done));
                n := n + 1;
                step := n; table_name := rels[i]::regclass; kind := pass;
                distribution_column := CASE WHEN pass = 'distributed' THEN 'customer_id' END;
                colocate_with := CASE WHEN pass = 'distributed' THEN 'cs.customers'::regclass END;
                RETURN NEXT;
                done := done || rels[i];
                progress := true;
            END LOOP;
            EXIT WHEN NOT progress;
        END LOOP;
    END LOOP;

    -- Whatever is left references a table it cannot follow (a reference table
    -- referencing a distributed one, or a cycle): listed last, and
    -- cs.distribute() lets Citus say why it refuses.
    FOR i IN 1 .. coalesce(array_length(rels, 1), 0) LOOP
        CONTINUE WHEN rels[i] = ANY (done);
        n := n + 1;
        step := n; table_name := rels[i]::regclass; kind := kinds[i];
        distribution_column := CASE WHEN kinds[i] = 'distributed' THEN 'customer_id' END;
        colocate_with := CASE WHEN kinds[i] = 'distributed' THEN 'cs.customers'::regclass END;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs.distribution_plan() IS
    'What cs.distribute() does on a Citus coordinator, step by step: cs.customers distributed by id, every table with a customer_id column distributed by customer_id colocated with it, every other table of cs a reference table; reference tables first, each table after the tables its foreign keys reference. Needs no Citus.';

-- Distributes the extension's tables on a Citus coordinator; idempotent.
CREATE OR REPLACE FUNCTION cs.distribute()
RETURNS TABLE (table_name regclass, kind text, action text)
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    p        record;
    current  text;
    msg      text;
    state    text;
    detail   text;
    hint     text;
    coordinator   boolean;
    made     text[] := '{}';
BEGIN
    IF NOT cs._citus_present() THEN
        RAISE EXCEPTION 'Citus is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'cs.distribute() makes the tables of cs distributed and reference tables of a Citus cluster.',
                  HINT = 'On a single server there is nothing to distribute. On a Citus coordinator: shared_preload_libraries = ''citus,cscopilot'', CREATE EXTENSION citus, then cs.distribute().';
    END IF;
    IF NOT (SELECT c.relowner = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
                   OR (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
              FROM pg_class c WHERE c.oid = 'cs.customers'::regclass) THEN
        RAISE EXCEPTION 'only the owner of the extension''s tables may distribute them'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run cs.distribute() as the role that ran CREATE EXTENSION cscopilot (a superuser).';
    END IF;
    EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
    IF NOT coordinator THEN
        RAISE EXCEPTION 'cs.distribute() runs on the Citus coordinator only'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Connect to the coordinator, or register this node with citus_set_coordinator_host() first.';
    END IF;

    -- One table after another in one transaction: a distributed table with a
    -- foreign key to a reference table created in the same transaction needs
    -- sequential shard DDL.  The load triggers, the shipped-rows trigger of
    -- every table and the validation triggers go to the shards with the tables.
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    -- A reference table that a local table still references (alerts ->
    -- alert_rules before alerts is distributed) is made a reference table
    -- without Citus turning the local tables of its foreign-key graph into
    -- Citus local tables (which the extension's views and policies forbid);
    -- the referencing tables are distributed right after, in the same
    -- transaction, and their foreign keys then hold as distributed ->
    -- reference keys.
    PERFORM set_config('citus.enable_local_reference_table_foreign_keys', 'off', true);


    -- The unique indexes that keep a key unique across customers on a single
    -- node (cs._global_unique_indexes()): Citus can only keep keys that
    -- include the distribution column; on a cluster the loaders keep them.
    -- Only those the table does not depend on as a constraint: Citus says why
    -- it refuses anything else.
    FOR p IN SELECT g.table_name AS rel, g.index_name AS idx FROM cs._global_unique_indexes() g
              WHERE NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = g.index_name)
    LOOP
        EXECUTE format('DROP INDEX %s', p.idx);
        table_name := p.rel;
        kind := 'distributed';
        action := 'dropped the global unique index ' || p.idx::text;
        RETURN NEXT;
    END LOOP;

    FOR p IN SELECT * FROM cs.distribution_plan() ORDER BY step LOOP
        EXECUTE 'SELECT CASE d.partmethod WHEN ''h'' THEN ''distributed'' WHEN ''n'' THEN
                        CASE WHEN d.repmodel = ''t'' THEN ''reference'' ELSE ''citus local'' END END
                   FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = $1'
           INTO current USING p.table_name;
        table_name := p.table_name;
        kind := p.kind;
        IF current = p.kind THEN
            action := 'already ' || p.kind;
            RETURN NEXT;
            CONTINUE;
        ELSIF current IS NOT NULL THEN
            RAISE EXCEPTION 'table % is already a % table of Citus, cs.distribute() makes it a % table', p.table_name, current, p.kind
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Undo it with SELECT undistribute_table(...), then run cs.distribute() again.';
        END IF;
        BEGIN
            IF p.kind = 'reference' THEN
                EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING p.table_name;
            ELSE
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1, $2, colocate_with => $3)'
                    USING p.table_name, p.distribution_column, coalesce(p.colocate_with::text, 'none');
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL,
                                    hint = PG_EXCEPTION_HINT;
            RAISE EXCEPTION 'cannot make % a % table: %', p.table_name, p.kind, msg
                USING ERRCODE = state, DETAIL = coalesce(nullif(detail, ''), 'Step ' || p.step || ' of cs.distribution_plan().'),
                      HINT = coalesce(nullif(hint, ''), 'SELECT * FROM cs.distribution_plan() lists every step.');
        END;
        action := 'made ' || p.kind;
        made := made || p.table_name::text;
        RETURN NEXT;
    END LOOP;

    -- The coordinator's own rows were copied into the shards; its copies are
    -- shells from now on (emptied quietly: one NOTICE per cascaded table).
    msg := current_setting('client_min_messages');
    PERFORM set_config('client_min_messages', 'warning', true);
    -- Only the tables this call made: a second call takes no lock on the
    -- shells (the scoring worker may be writing through them).
    FOREACH current IN ARRAY made LOOP
        EXECUTE 'SELECT pg_catalog.truncate_local_data_after_distributing_table($1)' USING current::regclass;
    END LOOP;
    PERFORM set_config('client_min_messages', msg, true);
END;
$$;
COMMENT ON FUNCTION cs.distribute() IS
    'On a Citus coordinator, after CREATE EXTENSION cscopilot: makes cs.customers and every table with customer_id distributed tables colocated by customer, and every other table of cs a reference table, in the order of cs.distribution_plan(); returns what it did per table. Idempotent: tables already distributed as planned are left alone. Run by the extension''s owner; refuses with feature_not_supported where Citus is not installed.';

-- JIT off on the workers for the rest of the transaction.  A function's SET
-- clauses do not reach the workers, where the shard groups' statements run:
-- there JIT compiled each features query for about 4 s, on plans whose cost
-- estimates for a list of customers are pessimistic (even for one customer).
-- Citus sends a SET LOCAL to every worker the transaction uses, when
-- citus.propagate_set_commands is 'local' and the SET runs inside a query
-- (hence a function called by PERFORM).
CREATE OR REPLACE FUNCTION cs._workers_jit_off()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    SET LOCAL citus.propagate_set_commands = 'local';
    SET LOCAL jit = off;
    SET LOCAL citus.propagate_set_commands TO DEFAULT;
END;
$$;
COMMENT ON FUNCTION cs._workers_jit_off() IS
    'Internal: on a Citus cluster, turns JIT off on the workers for the rest of the transaction (a SET LOCAL Citus propagates); called by PERFORM from the cluster refresh.';

-- The refresh on a Citus cluster: the same stages as cs._refresh_customers,
-- run shard group by shard group.  Every query of a stage names the customers
-- of one shard group (customer_id = ANY (ids)), so Citus sends it whole to the
-- node that holds them: the events, tickets and invoices are read and
-- aggregated there, and only per-customer results (feature vectors, scores)
-- travel.  The population statistics (percentiles, cross-sell lift) are taken
-- once, between the features and the scores, from the stored vectors.
CREATE OR REPLACE FUNCTION cs._refresh_distributed(ids uuid[], as_of timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
SET jit = off
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    full_refresh boolean := ids IS NULL;
    g record;
    n bigint := 0;
    stamp timestamptz;
    lay int;
BEGIN
    PERFORM cs._workers_jit_off();
    PERFORM cs._refresh_lock();
    IF ids IS NOT NULL AND cs._features_stale() THEN
        full_refresh := true;
    END IF;
    IF full_refresh THEN
        PERFORM cs.ensure_history_partitions(as_of::date, as_of::date);
        PERFORM cs._refresh_text_signals();
        FOR g IN SELECT array_agg(c.id ORDER BY c.id) AS ids FROM cs.customers c
                  GROUP BY pg_catalog.get_shard_id_for_distribution_column('cs.customers', c.id) ORDER BY 1
        LOOP
            n := n + cs._store_features(g.ids, as_of);
        END LOOP;
        -- values, not functions: Citus runs no volatile function in an UPDATE
        stamp := clock_timestamp();
        lay := cs._feature_layout();
        UPDATE cs.feature_layouts SET full_refresh_at = stamp WHERE layout_id = lay;
        PERFORM cs._refresh_health_populations();
        PERFORM cs._refresh_opportunity_stats();
        -- what a full refresh of a single node checks again once, before the
        -- scores: whether each deployed model applies to this data (the
        -- shard groups' stages then read the stored verdicts)
        PERFORM cs._check_applicability(m.id) FROM cs.models m
          WHERE (m.status = 'champion' AND m.kind IN ('churn', 'downgrade', 'payment', 'expansion'))
             OR (m.status = 'challenger' AND m.kind IN ('churn', 'downgrade', 'payment'))
          ORDER BY m.id;
    END IF;
    FOR g IN SELECT array_agg(x ORDER BY x) AS ids
               FROM (SELECT c.id AS x FROM cs.customers c WHERE full_refresh
                     UNION
                     SELECT i FROM unnest(ids) i WHERE NOT full_refresh) s
              GROUP BY pg_catalog.get_shard_id_for_distribution_column('cs.customers', x) ORDER BY 1
    LOOP
        IF NOT full_refresh THEN
            n := n + cs._store_features(g.ids, as_of);
        END IF;
        INSERT INTO cs.customer_health_scores (customer_id, overall_score, usage_score, engagement_score, support_score,
                                               payment_score, calculated_at, version, band, drivers)
        SELECT h.customer_id, h.overall_score, h.usage_score, h.engagement_score, h.support_score,
               h.payment_score, h.calculated_at, h.version, h.band, h.drivers
          FROM cs.compute_health(g.ids) h;
        PERFORM cs._score_risk(g.ids);
        PERFORM cs._score_opportunities(g.ids);
        PERFORM cs.evaluate_alerts(g.ids);
    END LOOP;
    IF full_refresh THEN
        -- and after them, what drives each risk model across the book
        PERFORM cs.compute_global_explanations(m.name, m.version) FROM cs.models m
          WHERE m.status IN ('champion', 'challenger') AND m.kind IN ('churn', 'downgrade', 'payment')
          ORDER BY m.kind, m.status;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._refresh_distributed(uuid[], timestamptz) IS
    'Internal: cs._refresh_customers on a Citus cluster: features, health, risk, opportunities and alerts of the given customers (all when NULL, with the population statistics), one shard group at a time, each stage''s queries sent whole to the node holding the group.';
