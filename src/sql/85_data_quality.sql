-- Data quality: is the data fresh, complete, free of duplicates and in range,
-- and does its volume look normal?  cs.data_quality shows every check;
-- cs.check_data_quality() (run hourly by the worker) raises alerts of type
-- data for the problems, assigned to the admin role, and resolves them when
-- the problem is gone.  Stale sources also lower the confidence of risk scores
-- (cs.data_freshness_factor).  cs.merge_customers() fixes a duplicate customer.

-- A data-quality setting as a number.
CREATE OR REPLACE FUNCTION cs._dq_setting(name text)
RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
SELECT (SELECT s.value::float8 FROM cs.data_quality_settings s WHERE s.name = _dq_setting.name)
$$;
COMMENT ON FUNCTION cs._dq_setting(text) IS 'Internal: a numeric data-quality setting.';

------------------------------------------------------------------------------
-- The checks
------------------------------------------------------------------------------

-- Freshness of every monitored source: time since its last row against the expectation.
CREATE OR REPLACE VIEW cs.source_freshness WITH (security_invoker = true) AS
SELECT d.name AS source,
       d.expected_every,
       a.last_at,
       now() - a.last_at AS age,
       a.last_at IS NULL OR now() - a.last_at > d.expected_every AS stale
  FROM cs.data_sources d
  LEFT JOIN LATERAL (SELECT max(x.last_at) AS last_at FROM cs.source_activity x WHERE x.source = d.name) a ON true
 WHERE d.enabled AND d.expected_every IS NOT NULL;
COMMENT ON VIEW cs.source_freshness IS 'Monitored sources (enabled, with expected_every): when they last delivered a row and whether they are stale.';
COMMENT ON COLUMN cs.source_freshness.source IS 'Source name.';
COMMENT ON COLUMN cs.source_freshness.expected_every IS 'How often data is expected.';
COMMENT ON COLUMN cs.source_freshness.last_at IS 'Last row received (loaded or rejected); NULL when never.';
COMMENT ON COLUMN cs.source_freshness.age IS 'Time since the last row.';
COMMENT ON COLUMN cs.source_freshness.stale IS 'True when the last row is older than expected_every, or there never was one.';

-- Share of monitored sources that are stale turned into a confidence factor:
--   factor = 1 - stale_confidence_penalty * (stale sources / monitored sources)
-- 1 when no source is monitored or none is stale; with the default penalty 0.5,
-- every monitored source stale halves the confidence of new risk scores.
CREATE OR REPLACE FUNCTION cs.data_freshness_factor()
RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
SELECT (SELECT CASE WHEN count(*) = 0 THEN 1.0
                    ELSE 1.0 - least(greatest(coalesce(cs._dq_setting('stale_confidence_penalty'), 0.5), 0), 1)
                               * count(*) FILTER (WHERE f.stale) / count(*) END
          FROM cs.source_freshness f)
$$;
COMMENT ON FUNCTION cs.data_freshness_factor() IS
    'Confidence factor 0-1 from source freshness: 1 - stale_confidence_penalty * stale/monitored sources; 1 when nothing is monitored. cs._score_risk multiplies risk confidence by it.';

-- Account families that the triggers of cs.customers cannot guard on a Citus
-- cluster (a parent may live on another node): customers whose parent_id
-- names no customer, and customers that are their own ancestor.  On a single
-- node the triggers refuse both and this finds nothing.  The pairs with a
-- parent are read once (a query any node can answer), the ancestors walked in
-- memory: no recursive query, which Citus cannot distribute.
CREATE OR REPLACE FUNCTION cs._parent_problems()
RETURNS TABLE (check_name text, subject text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ids     uuid[];
    parents uuid[];
    names   text[];
    known   uuid[];
    pos     jsonb := '{}';
    i       int;
    j       int;
    steps   int;
    path    text;
BEGIN
    SELECT array_agg(c.id ORDER BY c.id), array_agg(c.parent_id ORDER BY c.id), array_agg(c.external_id::text ORDER BY c.id)
      INTO ids, parents, names
      FROM cs.customers c WHERE c.parent_id IS NOT NULL;
    IF ids IS NULL THEN
        RETURN;
    END IF;
    SELECT array_agg(c.id) INTO known FROM cs.customers c WHERE c.id = ANY (parents);
    FOR i IN 1 .. cardinality(ids) LOOP
        pos := pos || jsonb_build_object(ids[i]::text, i);
    END LOOP;
    FOR i IN 1 .. cardinality(ids) LOOP
        IF NOT parents[i] = ANY (coalesce(known, '{}')) THEN
            check_name := 'orphan_parent'; subject := 'customers:' || names[i];
            detail := format('customer %s names parent %s, which is not a customer', names[i], parents[i]);
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- walk up at most as many steps as there are children
        j := i; steps := 0; path := names[i];
        LOOP
            j := (pos ->> parents[j]::text)::int;
            EXIT WHEN j IS NULL;
            steps := steps + 1;
            path := path || ' -> ' || names[j];
            IF j = i THEN
                check_name := 'parent_cycle'; subject := 'customers:' || names[i];
                detail := format('customer %s is its own ancestor: %s', names[i], path);
                RETURN NEXT;
                EXIT;
            END IF;
            EXIT WHEN steps > cardinality(ids);
        END LOOP;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs._parent_problems() IS
    'Internal: customers whose parent_id names no customer (orphan_parent) and customers that are their own ancestor (parent_cycle), for cs.data_quality; what the triggers of cs.customers refuse on a single node and cannot check on the shards of a Citus cluster.';

CREATE OR REPLACE VIEW cs.data_quality WITH (security_invoker = true) AS
WITH completeness AS (
    -- the active customers read directly, not through a CTE: Citus pushes
    -- the correlated checks down only from a query of the table itself
    SELECT count(*) AS n,
           count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM cs.usage_events e
                                               WHERE e.customer_id = a.id AND e.occurred_at > now() - interval '30 days')) AS no_usage,
           count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM cs.invoices i WHERE i.customer_id = a.id)) AS no_invoices,
           count(*) FILTER (WHERE a.contract_start_date IS NULL OR a.contract_end_date IS NULL) AS no_contract
      FROM cs.customers a
     WHERE a.churned_at IS NULL
), tol AS (
    SELECT now() + make_interval(hours => coalesce(cs._dq_setting('future_tolerance_hours'), 24)::int) AS horizon
), volume AS (
    SELECT d.name AS source,
           (SELECT coalesce(sum(x.accepted + x.rejected), 0) FROM cs.source_activity x
             WHERE x.source = d.name AND x.hour > now() - interval '24 hours') AS last_day,
           h.median, h.days
      FROM cs.data_sources d
     CROSS JOIN LATERAL (
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY w.n) AS median, count(*) FILTER (WHERE w.n > 0) AS days
          FROM (SELECT k, (SELECT coalesce(sum(x.accepted + x.rejected), 0) FROM cs.source_activity x
                            WHERE x.source = d.name
                              AND x.hour > now() - make_interval(days => k + 1)
                              AND x.hour <= now() - make_interval(days => k)) AS n
                  FROM generate_series(1, coalesce(cs._dq_setting('volume_history_days'), 14)::int) k) w) h
     WHERE d.enabled
)
-- freshness
SELECT 'freshness'::text AS check_name, f.source, f.source AS subject,
       extract(epoch FROM f.age) / 3600 AS value, extract(epoch FROM f.expected_every) / 3600 AS threshold,
       NOT f.stale AS ok, 'high'::text AS severity,
       CASE WHEN f.last_at IS NULL THEN format('%s never delivered a row (expected every %s)', f.source, f.expected_every)
            ELSE format('%s last delivered a row %s ago (expected every %s)', f.source, date_trunc('minute', f.age), f.expected_every) END AS detail
  FROM cs.source_freshness f
UNION ALL
-- completeness
SELECT 'completeness', NULL, x.subject, x.share, x.threshold, x.share IS NULL OR x.share <= x.threshold, 'medium',
       format('%s of %s active customers (%s%%) %s', x.k, c.n, round(100 * coalesce(x.share, 0))::int, x.what)
  FROM completeness c
 CROSS JOIN LATERAL (VALUES
        ('customers_without_usage', c.no_usage, c.no_usage::float8 / nullif(c.n, 0), cs._dq_setting('max_share_without_usage'),
         'have no usage event in the last 30 days'),
        ('customers_without_invoices', c.no_invoices, c.no_invoices::float8 / nullif(c.n, 0), cs._dq_setting('max_share_without_invoices'),
         'have no invoice'),
        ('customers_without_contract_dates', c.no_contract, c.no_contract::float8 / nullif(c.n, 0), cs._dq_setting('max_share_without_contract_dates'),
         'miss a contract start or end date')) x(subject, k, share, threshold, what)
UNION ALL
-- duplicates: the same source id at two times (usage events are unique per source id and time only)
SELECT 'duplicates', e.source, 'usage_events:' || e.source_id, e.n, 1, false, 'low',
       format('usage event %s of %s was loaded %s times with different times', e.source_id, e.source, e.n)
  FROM (SELECT u.source, u.source_id, count(*) AS n FROM cs.usage_events u
         WHERE u.source IS NOT NULL GROUP BY u.source, u.source_id HAVING count(*) > 1) e
UNION ALL
-- duplicates: the same contact email twice for a customer
SELECT 'duplicates', NULL, 'contacts:' || k.email, k.n, 1, false, 'low',
       format('contact %s appears %s times for customer %s', k.email, k.n, k.external_id)
  FROM (SELECT lower(t.email) AS email, c.external_id, count(*) AS n FROM cs.contacts t JOIN cs.customers c ON c.id = t.customer_id
         WHERE t.email IS NOT NULL GROUP BY lower(t.email), c.external_id HAVING count(*) > 1) k
UNION ALL
-- near-duplicate customers: same normalised name, or the same domain key
SELECT 'near_duplicate_customers', NULL, g.subject, g.n, 1, false, 'medium',
       format('%s customers look like one: %s', g.n, g.names)
  FROM (SELECT 'name:' || cs.normalise_name(c.name) AS subject, count(*) AS n,
               string_agg(format('%s (%s)', c.name, c.external_id), ', ' ORDER BY c.external_id) AS names
          FROM cs.customers c WHERE cs.normalise_name(c.name) IS NOT NULL
         GROUP BY cs.normalise_name(c.name) HAVING count(*) > 1
        UNION ALL
        SELECT 'domain:' || c.domain, count(*),
               string_agg(format('%s (%s)', c.name, c.external_id), ', ' ORDER BY c.external_id)
          FROM cs.customers c WHERE c.domain IS NOT NULL
         GROUP BY c.domain HAVING count(*) > 1) g
UNION ALL
-- out of range: signal times in the future (CHECK constraints catch the rest)
SELECT 'out_of_range', NULL, o.subject, o.n, 0, o.n = 0, 'medium',
       format('%s: %s rows dated in the future', o.tbl, o.n)
  -- (the horizon by an uncorrelated subquery: on a Citus cluster each count
  -- then goes to the shards as it is)
  FROM (VALUES
        ('usage_events.occurred_at', 'cs.usage_events', (SELECT count(*) FROM cs.usage_events u WHERE u.occurred_at > (SELECT horizon FROM tol))),
        ('support_tickets.opened_at', 'cs.support_tickets', (SELECT count(*) FROM cs.support_tickets t WHERE t.opened_at > (SELECT horizon FROM tol))),
        ('invoices.issued_at', 'cs.invoices', (SELECT count(*) FROM cs.invoices i WHERE i.issued_at > (SELECT horizon FROM tol))),
        ('engagements.occurred_at', 'cs.engagements', (SELECT count(*) FROM cs.engagements g WHERE g.occurred_at > (SELECT horizon FROM tol))),
        ('nps_responses.responded_at', 'cs.nps_responses', (SELECT count(*) FROM cs.nps_responses r WHERE r.responded_at > (SELECT horizon FROM tol)))
     ) o(subject, tbl, n)
UNION ALL
-- rejects of the last 24 hours
SELECT 'rejects', r.source, r.source, r.n, 0, false, 'low',
       format('%s records of %s were rejected in the last 24 hours, for example: %s', r.n, r.source, r.example)
  FROM (SELECT x.source, count(*) AS n, min(x.reason) AS example FROM cs.ingest_rejects x
         WHERE x.received_at > now() - interval '24 hours' GROUP BY x.source) r
UNION ALL
-- volume: the last 24 hours against the trailing median day
SELECT 'volume', v.source, v.source, v.last_day, v.median,
       v.days < coalesce(cs._dq_setting('volume_min_days'), 7) OR v.median IS NULL OR v.median = 0
       OR (v.last_day <= v.median * cs._dq_setting('volume_ratio') AND v.last_day >= v.median / cs._dq_setting('volume_ratio')),
       'high',
       format('%s delivered %s rows in the last 24 hours against a median of %s per day over %s days',
              v.source, v.last_day, round(v.median::numeric, 1), v.days)
  FROM volume v
 WHERE v.days > 0
UNION ALL
-- schema drift: fields a source's latest batch lacks or adds (cs.source_drift)
SELECT 'schema_drift', d.source, d.source, cardinality(d.missing) + cardinality(d.new_fields), 0, false,
       CASE WHEN cardinality(d.missing) > 0 THEN 'high' ELSE 'low' END, d.detail
  FROM cs.source_drift d
UNION ALL
-- account families: a parent that is no customer, a customer its own ancestor
SELECT p.check_name, NULL, p.subject, 1, 0, false, 'high', p.detail
  FROM cs._parent_problems() p;
COMMENT ON VIEW cs.data_quality IS 'Every data-quality check and its result: freshness per monitored source, completeness of customers, duplicates (source ids, contacts), near-duplicate customers, out-of-range times, recent rejects, volume per source, schema drift (fields a source stopped or started delivering) and broken account families (orphan_parent, parent_cycle: what the triggers of cs.customers cannot check on a Citus cluster). Rows with ok = false are problems; cs.check_data_quality() alerts on them.';
COMMENT ON COLUMN cs.data_quality.check_name IS 'freshness, completeness, duplicates, near_duplicate_customers, out_of_range, rejects, volume, schema_drift, orphan_parent or parent_cycle.';
COMMENT ON COLUMN cs.data_quality.source IS 'Data source concerned, when there is one.';
COMMENT ON COLUMN cs.data_quality.subject IS 'What was checked (source, measure, duplicated key); with check_name it identifies the alert.';
COMMENT ON COLUMN cs.data_quality.value IS 'Measured value: hours since the last row, share, count, rows in the last 24 hours, or missing plus new fields.';
COMMENT ON COLUMN cs.data_quality.threshold IS 'The value the measure is judged against: expected hours, largest share, median rows per day.';
COMMENT ON COLUMN cs.data_quality.ok IS 'False when the check found a problem.';
COMMENT ON COLUMN cs.data_quality.severity IS 'Severity of the data alert a problem raises.';
COMMENT ON COLUMN cs.data_quality.detail IS 'The finding in a sentence.';

-- Raises a data alert for every problem of cs.data_quality that has none open
-- (one per check for the list checks duplicates and near_duplicate_customers),
-- and resolves the open data alerts whose problem is gone.  Data alerts have
-- no customer and no rule: they are identified by risk_factors ->> 'check'
-- and ->> 'subject', and assigned to the admin_role setting.  Returns the
-- number of problems (rows of cs.data_quality that are not ok).
CREATE OR REPLACE FUNCTION cs.check_data_quality()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    admin  text := (SELECT s.value FROM cs.data_quality_settings s WHERE s.name = 'admin_role');
    n      bigint := 0;
BEGIN
    -- A writer of alerts, like every other: the refresh lock first.  (It
    -- also keeps two checkers from raising the same alert twice.)
    PERFORM cs._refresh_lock();
    IF to_regclass('pg_temp.cs_dq_problems') IS NULL THEN
        CREATE TEMP TABLE cs_dq_problems ON COMMIT DROP AS SELECT * FROM cs.data_quality WITH NO DATA;
    END IF;
    TRUNCATE cs_dq_problems;
    INSERT INTO cs_dq_problems SELECT * FROM cs.data_quality q WHERE NOT q.ok;
    SELECT count(*) INTO n FROM cs_dq_problems;
    -- Findings of the list checks are many (one per duplicated key): one alert each check.
    INSERT INTO cs_dq_problems
    SELECT x.check_name, NULL, x.check_name, count(*), NULL, false, min(x.severity),
           format('%s findings, for example: %s', count(*),
                  array_to_string((array_agg(x.detail ORDER BY x.subject))[1:3], '; '))
      FROM cs_dq_problems x WHERE x.check_name IN ('duplicates', 'near_duplicate_customers')
     GROUP BY x.check_name;
    DELETE FROM cs_dq_problems x
     WHERE x.check_name IN ('duplicates', 'near_duplicate_customers') AND x.subject <> x.check_name;
    -- Raised, re-fired (escalated when worse) and resolved through the path
    -- every writer of alerts shares (src/sql/60_alerts.sql).
    PERFORM cs._raise_alerts(ARRAY(
        SELECT ROW(NULL, NULL, 'data', p.severity,
                   format('Data quality: %s%s', replace(p.check_name, '_', ' '),
                          CASE WHEN p.subject <> p.check_name THEN ' ' || p.subject END),
                   p.detail,
                   jsonb_build_object('check', p.check_name, 'subject', p.subject, 'source', p.source,
                                      'value', p.value, 'threshold', p.threshold),
                   NULL, admin, NULL, NULL, jsonb_build_object('check', p.check_name))::cs.alert_firing
          FROM cs_dq_problems p ORDER BY p.check_name, p.subject));
    PERFORM cs._resolve_alerts(ARRAY(
        SELECT al.id FROM cs.system_alerts al
         WHERE al.alert_type = 'data' AND al.status IN ('open', 'acknowledged', 'snoozed')
           AND cs._alert_key(al.alert_type, NULL, al.risk_factors) NOT IN
               (SELECT cs._alert_key('data', NULL, jsonb_build_object('check', x.check_name, 'subject', x.subject))
                  FROM cs_dq_problems x)),
        'the data-quality problem is gone');
    TRUNCATE cs_dq_problems;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.check_data_quality() IS
    'Evaluates cs.data_quality: raises one alert of type data (in cs.system_alerts: no customer, assigned to the admin_role setting, identified by risk_factors check and subject) per problem without an open one (one per check for duplicates and near_duplicate_customers), refreshes open ones, and resolves those whose problem is gone. Returns the number of problems. The worker runs it hourly.';

-- Copies the rows of one customer in a table of cs to another customer,
-- every column as it is (identity values too) but customer_id: how
-- cs.merge_customers moves rows on a Citus cluster, where a row's customer
-- cannot change.  Returns the rows copied.
CREATE OR REPLACE FUNCTION cs._copy_customer_rows(tab text, from_id uuid, to_id uuid) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    cols text;
    vals text;
    n    bigint;
BEGIN
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
           string_agg(CASE WHEN a.attname = 'customer_id' THEN '$2' ELSE 'r.' || quote_ident(a.attname) END, ', '
                      ORDER BY a.attnum)
      INTO cols, vals
      FROM pg_attribute a
     WHERE a.attrelid = format('cs.%I', tab)::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
    EXECUTE format('INSERT INTO cs.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM cs.%I r WHERE r.customer_id = $1',
                   tab, cols, vals, tab)
       USING from_id, to_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._copy_customer_rows(text, uuid, uuid) IS
    'Internal: copies the rows of customer from_id in table cs.<tab> to customer to_id (identity values kept); cs.merge_customers on a Citus cluster, which deletes the originals after.';

-- Moves everything of customer merge to customer keep and deletes merge.
CREATE OR REPLACE FUNCTION cs.merge_customers(keep uuid, merge uuid)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    k      cs.customers;
    m      cs.customers;
    counts jsonb := '{}';
    n      bigint;
    t      text;
BEGIN
    IF keep IS NULL OR merge IS NULL THEN
        RAISE EXCEPTION 'both customers must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF keep = merge THEN
        RAISE EXCEPTION 'cannot merge customer % into itself', keep USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- It writes alerts (and scores): the refresh lock first, before any row lock.
    PERFORM cs._refresh_lock();
    SELECT * INTO k FROM cs.customers c WHERE c.id = keep FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', keep USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO m FROM cs.customers c WHERE c.id = merge FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', merge USING ERRCODE = 'no_data_found';
    END IF;
    IF k.parent_id = merge THEN
        RAISE EXCEPTION 'customer % is the parent of %', m.external_id, k.external_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Merge the other way round, or clear parent_id first.';
    END IF;

    -- Open alerts of a rule the kept customer has open already are resolved
    -- (the path every writer of alerts shares logs it), the rest move.  (The
    -- kept customer's rules read first: on a Citus cluster the two customers'
    -- alerts are on different shards.)
    PERFORM cs._resolve_alerts(ARRAY(
        SELECT a.id FROM cs.alerts a
         WHERE a.customer_id = merge AND a.status IN ('open', 'acknowledged', 'snoozed')
           AND a.rule_id = ANY (ARRAY(SELECT b.rule_id FROM cs.alerts b
                                       WHERE b.customer_id = keep AND b.status IN ('open', 'acknowledged', 'snoozed')))),
        'customer merged');
    IF cs._is_distributed() THEN
        -- On a Citus cluster a row's customer cannot change (it is the
        -- distribution column): each table's rows of the merged customer are
        -- copied under the kept one (ids kept) and then deleted, parents
        -- before children for the copies and the other way round for the
        -- deletes, so that every foreign key holds at every step.
        FOREACH t IN ARRAY ARRAY['usage_events', 'support_tickets', 'invoices', 'engagements', 'nps_responses', 'contacts',
                                 'subscriptions', 'contract_terms', 'opportunities', 'alerts', 'alert_events', 'alert_feedback',
                                 'actions', 'tasks'] LOOP
            n := cs._copy_customer_rows(t, merge, keep);
            IF t NOT IN ('alert_events', 'alert_feedback') THEN
                counts := counts || jsonb_build_object(t, n);
            END IF;
        END LOOP;
        FOREACH t IN ARRAY ARRAY['tasks', 'actions', 'alert_feedback', 'alert_events', 'alerts', 'opportunities', 'contract_terms',
                                 'subscriptions', 'contacts', 'nps_responses', 'engagements', 'invoices', 'support_tickets',
                                 'usage_events'] LOOP
            EXECUTE format('DELETE FROM cs.%I WHERE customer_id = $1', t) USING merge;
        END LOOP;
    ELSE
        -- Signals and history move.
        FOREACH t IN ARRAY ARRAY['usage_events', 'support_tickets', 'invoices', 'engagements', 'nps_responses', 'contacts',
                                 'subscriptions', 'contract_terms', 'actions', 'opportunities', 'tasks'] LOOP
            EXECUTE format('UPDATE cs.%I SET customer_id = $1 WHERE customer_id = $2', t) USING keep, merge;
            GET DIAGNOSTICS n = ROW_COUNT;
            counts := counts || jsonb_build_object(t, n);
        END LOOP;
        -- The events and feedback follow in the same statement: their foreign key to the
        -- alert's (customer_id, id) is checked at its end.
        WITH moved AS (
            UPDATE cs.alerts a SET customer_id = keep WHERE a.customer_id = merge RETURNING a.id
        ), events AS (
            UPDATE cs.alert_events e SET customer_id = keep WHERE e.customer_id = merge RETURNING 1
        ), feedback AS (
            UPDATE cs.alert_feedback f SET customer_id = keep WHERE f.customer_id = merge RETURNING 1
        )
        SELECT (SELECT count(*) FROM moved) + 0 * (SELECT count(*) FROM events) + 0 * (SELECT count(*) FROM feedback) INTO n;
        counts := counts || jsonb_build_object('alerts', n);
    END IF;
    -- Keys: the merged customer's keys and external id now name the kept one.
    -- A key that names another customer is deleted and inserted again, never
    -- updated in place (customer_id is the distribution column on Citus).
    WITH gone AS (
        DELETE FROM cs.customer_keys ck WHERE ck.customer_id = merge
        RETURNING ck.source, ck.key_kind, ck.key, ck.created_at
    )
    INSERT INTO cs.customer_keys (source, key_kind, key, customer_id, created_at)
    SELECT g.source, g.key_kind, g.key, keep, g.created_at FROM gone g;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM cs.customer_keys ck
     WHERE ck.source = 'any' AND ck.key_kind = 'external_id' AND ck.key = m.external_id AND ck.customer_id <> keep;
    INSERT INTO cs.customer_keys (source, key_kind, key, customer_id) VALUES ('any', 'external_id', m.external_id, keep)
    ON CONFLICT DO NOTHING;
    counts := counts || jsonb_build_object('customer_keys', n + 1);
    UPDATE cs.customers c SET parent_id = keep WHERE c.parent_id = merge AND c.id <> keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('subsidiaries', n);
    -- Derived rows are recomputed for the kept customer.
    FOREACH t IN ARRAY ARRAY['risk_assessments', 'model_shadow_scores', 'customer_health_scores', 'customer_features',
                             'dirty_customers'] LOOP
        EXECUTE format('DELETE FROM cs.%I WHERE customer_id = $1', t) USING merge;
        GET DIAGNOSTICS n = ROW_COUNT;
        counts := counts || jsonb_build_object(t || '_dropped', n);
    END LOOP;
    IF to_regclass('cs.demo_ground_truth') IS NOT NULL THEN
        EXECUTE 'DELETE FROM cs.demo_ground_truth WHERE customer_id = $1' USING merge;
    END IF;
    DELETE FROM cs.customers c WHERE c.id = merge;
    -- What the kept customer lacks, the merged one may know.
    UPDATE cs.customers c
       SET industry = coalesce(c.industry, m.industry), size = coalesce(c.size, m.size), mrr = coalesce(c.mrr, m.mrr),
           contract_start_date = coalesce(c.contract_start_date, m.contract_start_date),
           contract_end_date = coalesce(c.contract_end_date, m.contract_end_date),
           segment = coalesce(c.segment, m.segment), csm = coalesce(c.csm, m.csm),
           seats_licensed = coalesce(c.seats_licensed, m.seats_licensed), domain = coalesce(c.domain, m.domain)
     WHERE c.id = keep;
    INSERT INTO cs.customer_merges (kept_id, merged_id, merged_external_id, merged_name, rows_moved)
    VALUES (keep, merge, m.external_id, m.name, counts);
    RETURN counts;
END;
$$;
COMMENT ON FUNCTION cs.merge_customers(uuid, uuid) IS
    'Merges a duplicate customer into another: moves its signals, actions, opportunities, alerts and keys, maps its external id to the kept customer, fills the kept customer''s missing attributes, drops its derived scores, deletes it and records the merge in cs.customer_merges; returns rows per table.';
