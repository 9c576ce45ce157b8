-- Re-runnable: account families (parent roll-ups) and revenue reporting
-- (MRR movements with NRR and GRR, renewal forecast, cohort retention).
--
-- Revenue is read from cs.subscriptions: a customer's MRR at a date is the sum
-- of the mrr of its subscriptions active that day (started_at <= d, ended_at
-- NULL or after d: ended_at is the first day without the subscription), and
-- zero from cs.customers.churned_at on.  Every report that depends on "today"
-- is a function of an as_of date, and its view calls it with current_date, so
-- tests and back-dated reports get the same figures.

------------------------------------------------------------------------------
-- Account families: no cycles in cs.customers.parent_id
------------------------------------------------------------------------------

-- What the foreign key customers.parent_id -> customers(id) guarded, without
-- the self-reference that Citus cannot distribute (issue 19): a parent_id
-- names an existing customer, and a customer that is a parent is neither
-- deleted nor renumbered while it has subsidiaries (SQLSTATE 23503, as the
-- foreign key raised).  AFTER row triggers run at the end of the statement, so
-- one statement may insert a parent with its subsidiaries, or delete both, as
-- with the foreign key.
CREATE OR REPLACE FUNCTION cs._customers_parent_exists() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    -- On a shard of a Citus cluster (customers_<shard id>) the parent may live
    -- on another node, which a trigger there cannot read: cs.data_quality's
    -- orphan_parent check reports what this refuses on a single node.
    IF TG_TABLE_NAME ~ '_[0-9]+$' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' AND NEW.parent_id IS DISTINCT FROM OLD.parent_id THEN
        IF NEW.parent_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = NEW.parent_id) THEN
            RAISE EXCEPTION 'parent % of customer % does not exist', NEW.parent_id, NEW.external_id
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'customers_parent_id_fkey',
                      HINT = 'Load the parent account first, or leave parent_id NULL.';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' OR TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
        IF EXISTS (SELECT 1 FROM cs.customers c WHERE c.parent_id = OLD.id) THEN
            RAISE EXCEPTION 'customer % is the parent of other customers', OLD.external_id
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'customers_parent_id_fkey',
                      HINT = 'Reassign or remove the subsidiaries first.';
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION cs._customers_parent_exists() IS
    'Trigger function of cs.customers: refuses (SQLSTATE 23503) a parent_id that names no customer, and the deletion or change of id of a customer that still has subsidiaries.';

CREATE OR REPLACE TRIGGER customers_parent_exists AFTER INSERT OR UPDATE OF parent_id, id OR DELETE ON cs.customers
    FOR EACH ROW EXECUTE FUNCTION cs._customers_parent_exists();
COMMENT ON TRIGGER customers_parent_exists ON cs.customers IS
    'Stands for the foreign key parent_id -> customers(id), which Citus cannot distribute: a parent must exist, and a parent with subsidiaries cannot be deleted or renumbered (SQLSTATE 23503).';

-- Refuses a parent_id that would make a customer its own ancestor.  It runs
-- after the row is written (an AFTER trigger fires at the end of the
-- statement), so it sees every row of the statement: one INSERT of X under Y
-- and Y under X is refused too.  Hierarchy changes take one transaction-level
-- advisory lock, so two concurrent updates (A under B, B under A) cannot each
-- miss the other's half of a cycle.  A customer as its own parent is refused
-- before, by the CHECK constraint customers_not_own_parent_check (also 23514).
CREATE OR REPLACE FUNCTION cs._customers_refuse_parent_cycle() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    path text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.parent_id IS NOT DISTINCT FROM OLD.parent_id AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    -- On a shard of a Citus cluster the ancestors live on other nodes:
    -- cs.data_quality's parent_cycle check reports a cycle there.
    IF TG_TABLE_NAME ~ '_[0-9]+$' THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('cscopilot.customer_hierarchy'));
    -- walk up from the new parent to the root; CYCLE stops on a cycle already in the data
    WITH RECURSIVE up(id, parent_id, external_id, level) AS (
        SELECT c.id, c.parent_id, c.external_id::text, 1 FROM cs.customers c WHERE c.id = NEW.parent_id
        UNION ALL
        SELECT c.id, c.parent_id, c.external_id::text, up.level + 1
          FROM up JOIN cs.customers c ON c.id = up.parent_id
         WHERE up.id <> NEW.id
    ) CYCLE id SET in_cycle USING visited
    SELECT string_agg(u.external_id, ' -> ' ORDER BY u.level) INTO path
      FROM up u
     WHERE NOT u.in_cycle
       AND u.level <= (SELECT min(x.level) FROM up x WHERE x.id = NEW.id AND NOT x.in_cycle);
    IF path IS NOT NULL THEN
        RAISE EXCEPTION 'parent of customer % would make a cycle', NEW.external_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'customers_parent_cycle',
                  DETAIL = format('Its new parent descends from it: %s -> %s.', NEW.external_id, path),
                  HINT = 'An account cannot be a subsidiary of its own subsidiary; change the other parent_id first.';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION cs._customers_refuse_parent_cycle() IS
    'Trigger function of cs.customers: refuses (SQLSTATE 23514) a parent_id that makes a customer its own ancestor.';

CREATE OR REPLACE TRIGGER customers_refuse_parent_cycle AFTER INSERT OR UPDATE OF parent_id, id ON cs.customers
    FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL) EXECUTE FUNCTION cs._customers_refuse_parent_cycle();
COMMENT ON TRIGGER customers_refuse_parent_cycle ON cs.customers IS
    'Keeps the account hierarchy a forest: a parent_id that would close a cycle is refused with SQLSTATE 23514 (a customer as its own parent by customers_not_own_parent_check).';

------------------------------------------------------------------------------
-- Account families: roll-ups
------------------------------------------------------------------------------

-- The members of every account family (a customer and every descendant
-- through parent_id, with their depth below it): the pairs with a parent read
-- once, the ancestors walked in memory; no recursive query, which Citus
-- cannot distribute.  A parent that is no customer (possible on a cluster,
-- cs.data_quality's orphan_parent) heads a family of its own; a cycle
-- (parent_cycle) stops the walk where it closes.
CREATE OR REPLACE FUNCTION cs._family_members()
RETURNS TABLE (family_id uuid, member_id uuid, level int)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ids     uuid[];
    parents uuid[];
    pos     jsonb := '{}';
    seen    jsonb;
    i       int;
    j       int;
    depth   int;
BEGIN
    SELECT array_agg(c.id ORDER BY c.id), array_agg(c.parent_id ORDER BY c.id) INTO ids, parents
      FROM cs.customers c WHERE c.parent_id IS NOT NULL;
    IF ids IS NULL THEN
        RETURN;
    END IF;
    FOR i IN 1 .. cardinality(ids) LOOP
        pos := pos || jsonb_build_object(ids[i]::text, i);
    END LOOP;
    FOR i IN 1 .. cardinality(ids) LOOP
        -- the customer in the family of each of its ancestors
        j := i; depth := 0; seen := jsonb_build_object(ids[i]::text, true);
        LOOP
            depth := depth + 1;
            EXIT WHEN seen ? parents[j]::text;
            family_id := parents[j]; member_id := ids[i]; level := depth;
            RETURN NEXT;
            seen := seen || jsonb_build_object(parents[j]::text, true);
            j := (pos ->> parents[j]::text)::int;
            EXIT WHEN j IS NULL;
        END LOOP;
    END LOOP;
    -- and every family's head, at level 0
    RETURN QUERY SELECT DISTINCT p, p, 0 FROM unnest(parents) p;
END;
$$;
COMMENT ON FUNCTION cs._family_members() IS
    'Internal: every account family (a customer with subsidiaries) and its members (itself at level 0, each descendant through parent_id at its depth); no recursive query.';

CREATE OR REPLACE VIEW cs.account_family_health WITH (security_invoker = true) AS
WITH members AS MATERIALIZED (
    SELECT f.family_id, f.member_id, f.level FROM cs._family_members() f
), facts AS (
    -- each member's latest health, churn risk and unresolved alerts, once
    SELECT c.id, c.mrr, c.churned_at IS NULL AS active,
           (SELECT s.overall_score FROM cs.customer_health_scores s WHERE s.customer_id = c.id
             ORDER BY s.calculated_at DESC LIMIT 1) AS score,
           (SELECT s.band FROM cs.customer_health_scores s WHERE s.customer_id = c.id
             ORDER BY s.calculated_at DESC LIMIT 1) AS band,
           (SELECT x.risk_score FROM cs.risk_assessments x WHERE x.customer_id = c.id AND x.risk_type = 'churn'
             ORDER BY x.created_at DESC LIMIT 1) AS churn_risk,
           (SELECT count(*) FROM cs.alerts a WHERE a.customer_id = c.id
               AND a.status IN ('open', 'acknowledged', 'snoozed')) AS open_alerts
      FROM cs.customers c
     WHERE c.id IN (SELECT m.member_id FROM members m)
), agg AS (
    SELECT m.family_id,
           max(m.level) AS depth,
           count(*) AS members,
           count(*) FILTER (WHERE f.active) AS active_members,
           coalesce(sum(f.mrr) FILTER (WHERE f.active), 0) AS family_mrr,
           count(*) FILTER (WHERE f.active AND f.score IS NOT NULL) AS scored_members,
           sum(coalesce(f.mrr, 0) * f.score) FILTER (WHERE f.active AND f.score IS NOT NULL) AS weighted_score,
           sum(coalesce(f.mrr, 0)) FILTER (WHERE f.active AND f.score IS NOT NULL) AS scored_mrr,
           avg(f.score) FILTER (WHERE f.active) AS mean_score,
           coalesce(sum(coalesce(f.mrr, 0) * f.churn_risk) FILTER (WHERE f.active), 0) AS mrr_at_risk,
           min(CASE f.band WHEN 'red' THEN 1 WHEN 'yellow' THEN 2 WHEN 'green' THEN 3 END) FILTER (WHERE f.active) AS worst,
           count(*) FILTER (WHERE f.active AND f.band = 'red') AS red_members,
           coalesce(sum(f.open_alerts) FILTER (WHERE f.active), 0) AS open_alerts
      FROM members m
      JOIN facts f ON f.id = m.member_id
     GROUP BY m.family_id
)
SELECT p.id AS customer_id,
       p.external_id,
       p.name,
       p.csm,
       p.segment,
       p.parent_id IS NULL AS top_level,
       a.depth,
       a.members,
       a.active_members,
       a.family_mrr,
       -- MRR-weighted over the scored active members; their plain mean when
       -- none of them has MRR
       round(CASE WHEN a.scored_mrr > 0 THEN a.weighted_score / a.scored_mrr ELSE a.mean_score END, 4) AS family_health,
       a.scored_members,
       round(a.mrr_at_risk, 2) AS mrr_at_risk,
       CASE a.worst WHEN 1 THEN 'red' WHEN 2 THEN 'yellow' WHEN 3 THEN 'green' END AS worst_band,
       a.red_members,
       a.open_alerts
  FROM agg a
  JOIN cs.customers p ON p.id = a.family_id;
COMMENT ON VIEW cs.account_family_health IS 'One row per customer with subsidiaries (at any depth): the family (the customer and every descendant through parent_id) rolled up: MRR-weighted health, MRR, MRR at risk, worst band, unresolved alerts. Figures count active members the reader may see (row-level security applies).';
COMMENT ON COLUMN cs.account_family_health.customer_id IS 'The parent customer heading the family.';
COMMENT ON COLUMN cs.account_family_health.external_id IS 'Account id of the parent in the CRM.';
COMMENT ON COLUMN cs.account_family_health.name IS 'Name of the parent.';
COMMENT ON COLUMN cs.account_family_health.csm IS 'CSM owning the parent (role name).';
COMMENT ON COLUMN cs.account_family_health.segment IS 'Segment of the parent.';
COMMENT ON COLUMN cs.account_family_health.top_level IS 'True when the parent has no parent itself (the root of its hierarchy); subsidiaries that have subsidiaries head families of their own too.';
COMMENT ON COLUMN cs.account_family_health.depth IS 'Levels below the parent: 1 with direct subsidiaries only, 2 with grand-subsidiaries, and so on.';
COMMENT ON COLUMN cs.account_family_health.members IS 'Customers in the family, the parent included, churned ones too.';
COMMENT ON COLUMN cs.account_family_health.active_members IS 'Members not churned (churned_at NULL); the figures below count only these.';
COMMENT ON COLUMN cs.account_family_health.family_mrr IS 'Total MRR (cs.customers.mrr) of the active members.';
COMMENT ON COLUMN cs.account_family_health.family_health IS 'Health of the family 0-1: the MRR-weighted mean of the active members'' latest overall scores (members without a score left out; the plain mean when the scored members have no MRR); NULL when none is scored.';
COMMENT ON COLUMN cs.account_family_health.scored_members IS 'Active members with a health score, the ones family_health weighs.';
COMMENT ON COLUMN cs.account_family_health.mrr_at_risk IS 'Sum over active members of MRR times latest churn risk (members without a churn risk count 0).';
COMMENT ON COLUMN cs.account_family_health.worst_band IS 'Worst latest health band among the active members: red, yellow or green; NULL when none is scored.';
COMMENT ON COLUMN cs.account_family_health.red_members IS 'Active members whose latest band is red.';
COMMENT ON COLUMN cs.account_family_health.open_alerts IS 'Unresolved (open, acknowledged, snoozed) alerts of the active members.';

------------------------------------------------------------------------------
-- Revenue: MRR movements, NRR and GRR
------------------------------------------------------------------------------

-- Checks the arguments of the as_of report functions.
CREATE OR REPLACE FUNCTION cs._check_report_window(as_of date, months int, max_months int) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF as_of IS NULL OR months IS NULL THEN
        RAISE EXCEPTION 'as_of and months must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF as_of IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION 'as_of must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF months < 1 OR months > max_months THEN
        RAISE EXCEPTION 'months must be between 1 and %, not %', max_months, months
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION cs._check_report_window(date, int, int) IS
    'Internal: raises 22004 for a NULL as_of or months, 22023 for an infinite as_of or months outside 1..max_months.';

CREATE OR REPLACE FUNCTION cs.revenue_retention_as_of(as_of date, months int DEFAULT 12)
RETURNS TABLE (month date, period_end date, dimension text, dimension_value text,
               starting_customers bigint, new_customers bigint, churned_customers bigint, ending_customers bigint,
               starting_mrr numeric, new_mrr numeric, expansion_mrr numeric, contraction_mrr numeric,
               churned_mrr numeric, ending_mrr numeric, nrr numeric, grr numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
-- compiling the plan costs more than running it
SET jit = off
AS $$
BEGIN
    PERFORM cs._check_report_window(as_of, months, 240);
    RETURN QUERY
    -- Only customers whose MRR can change within a month are looked at one by
    -- one: the others keep their MRR, so each group's starting MRR and
    -- customers are those on the first day of the first month plus the net
    -- changes of the months before.
    WITH b AS (
        SELECT g::date AS month, least((g + interval '1 month')::date, as_of) AS period_end
          FROM generate_series(date_trunc('month', as_of) - (months - 1) * interval '1 month',
                               date_trunc('month', as_of), interval '1 month') g
    ), p0 AS (
        SELECT min(b.month) AS d FROM b
    ), firsts AS (
        SELECT x.customer_id, min(x.started_at) AS first_start
          FROM cs.subscriptions x
         GROUP BY x.customer_id
    ), cust AS (
        SELECT c.id, c.segment, c.csm, c.churned_at,
               to_char(coalesce(f.first_start, c.contract_start_date, c.created_at::date), 'YYYY-MM') AS cohort
          FROM cs.customers c
          JOIN firsts f ON f.customer_id = c.id
    ), anchor AS (
        -- MRR of every customer on the first day of the first month
        SELECT x.customer_id, sum(x.mrr) AS mrr
          FROM cs.subscriptions x, p0
         WHERE x.started_at <= p0.d AND (x.ended_at IS NULL OR x.ended_at > p0.d)
         GROUP BY x.customer_id
    ), chg AS (
        -- customer-months with a subscription starting or ending, or a churn, after the first day
        SELECT x.customer_id, b.month, b.period_end
          FROM cs.subscriptions x
          JOIN b ON (x.started_at > b.month AND x.started_at <= b.period_end)
                 OR (x.ended_at > b.month AND x.ended_at <= b.period_end)
        UNION
        SELECT c.id, b.month, b.period_end
          FROM cs.customers c
          JOIN b ON c.churned_at > b.month AND c.churned_at <= b.period_end
    ), moved AS (
        SELECT k.customer_id, k.month,
               coalesce(sum(x.mrr) FILTER (WHERE x.started_at <= k.month
                                             AND (x.ended_at IS NULL OR x.ended_at > k.month)), 0) AS s,
               coalesce(sum(x.mrr) FILTER (WHERE x.started_at <= k.period_end
                                             AND (x.ended_at IS NULL OR x.ended_at > k.period_end)), 0) AS e,
               k.period_end
          FROM chg k
          JOIN cs.subscriptions x ON x.customer_id = k.customer_id
         GROUP BY k.customer_id, k.month, k.period_end
    ), mv AS (
        -- anchor rows (month NULL) and movement rows, churn applied
        SELECT NULL::date AS month, cu.segment, cu.csm, cu.cohort, true AS anchor,
               CASE WHEN cu.churned_at <= p0.d THEN 0 ELSE a.mrr END AS s, 0::numeric AS e
          FROM anchor a
          JOIN cust cu ON cu.id = a.customer_id
         CROSS JOIN p0
        UNION ALL
        SELECT m.month, cu.segment, cu.csm, cu.cohort, false,
               CASE WHEN cu.churned_at <= m.month THEN 0 ELSE m.s END,
               CASE WHEN cu.churned_at <= m.period_end THEN 0 ELSE m.e END
          FROM moved m
          JOIN cust cu ON cu.id = m.customer_id
    ), g AS (
        SELECT mv.month,
               CASE WHEN grouping(mv.segment) = 0 THEN 'segment'
                    WHEN grouping(mv.csm) = 0 THEN 'csm'
                    WHEN grouping(mv.cohort) = 0 THEN 'cohort'
                    ELSE 'all' END AS dimension,
               CASE WHEN grouping(mv.segment) = 0 THEN mv.segment
                    WHEN grouping(mv.csm) = 0 THEN mv.csm
                    WHEN grouping(mv.cohort) = 0 THEN mv.cohort
                    ELSE 'all' END AS dimension_value,
               count(*) FILTER (WHERE mv.anchor AND mv.s > 0) AS anchor_customers,
               coalesce(sum(mv.s) FILTER (WHERE mv.anchor), 0) AS anchor_mrr,
               count(*) FILTER (WHERE NOT mv.anchor AND mv.s = 0 AND mv.e > 0) AS new_customers,
               count(*) FILTER (WHERE NOT mv.anchor AND mv.s > 0 AND mv.e = 0) AS churned_customers,
               coalesce(sum(mv.e) FILTER (WHERE NOT mv.anchor AND mv.s = 0), 0) AS new_mrr,
               coalesce(sum(mv.e - mv.s) FILTER (WHERE NOT mv.anchor AND mv.s > 0 AND mv.e > mv.s), 0) AS expansion_mrr,
               coalesce(sum(mv.s - mv.e) FILTER (WHERE NOT mv.anchor AND mv.e > 0 AND mv.e < mv.s), 0) AS contraction_mrr,
               coalesce(sum(mv.s) FILTER (WHERE NOT mv.anchor AND mv.s > 0 AND mv.e = 0), 0) AS churned_mrr
          FROM mv
         WHERE mv.s > 0 OR mv.e > 0
         GROUP BY GROUPING SETS ((mv.month), (mv.month, mv.segment), (mv.month, mv.csm), (mv.month, mv.cohort))
    ), keys AS (
        SELECT DISTINCT g.dimension, g.dimension_value FROM g
    ), grid AS (
        SELECT b.month, b.period_end, k.dimension, k.dimension_value,
               coalesce(an.anchor_customers, 0) AS anchor_customers, coalesce(an.anchor_mrr, 0) AS anchor_mrr,
               coalesce(m.new_customers, 0) AS new_customers, coalesce(m.churned_customers, 0) AS churned_customers,
               coalesce(m.new_mrr, 0) AS new_mrr, coalesce(m.expansion_mrr, 0) AS expansion_mrr,
               coalesce(m.contraction_mrr, 0) AS contraction_mrr, coalesce(m.churned_mrr, 0) AS churned_mrr
          FROM b
         CROSS JOIN keys k
          LEFT JOIN g an ON an.month IS NULL AND an.dimension = k.dimension
                        AND an.dimension_value IS NOT DISTINCT FROM k.dimension_value
          LEFT JOIN g m ON m.month = b.month AND m.dimension = k.dimension
                       AND m.dimension_value IS NOT DISTINCT FROM k.dimension_value
    ), run AS (
        SELECT r.*,
               (r.anchor_customers + coalesce(sum(r.new_customers - r.churned_customers) OVER w, 0))::bigint AS starting_customers,
               r.anchor_mrr + coalesce(sum(r.new_mrr + r.expansion_mrr - r.contraction_mrr - r.churned_mrr) OVER w, 0)
                   AS starting_mrr
          FROM grid r
        WINDOW w AS (PARTITION BY r.dimension, r.dimension_value ORDER BY r.month
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    )
    SELECT r.month, r.period_end, r.dimension, r.dimension_value,
           r.starting_customers, r.new_customers, r.churned_customers,
           r.starting_customers + r.new_customers - r.churned_customers,
           r.starting_mrr, r.new_mrr, r.expansion_mrr, r.contraction_mrr, r.churned_mrr,
           r.starting_mrr + r.new_mrr + r.expansion_mrr - r.contraction_mrr - r.churned_mrr,
           round((r.starting_mrr + r.expansion_mrr - r.contraction_mrr - r.churned_mrr) / nullif(r.starting_mrr, 0), 4),
           round((r.starting_mrr - r.contraction_mrr - r.churned_mrr) / nullif(r.starting_mrr, 0), 4)
      FROM run r
     WHERE r.starting_customers > 0 OR r.new_customers > 0
     ORDER BY r.month, CASE r.dimension WHEN 'all' THEN 0 WHEN 'segment' THEN 1 WHEN 'csm' THEN 2 ELSE 3 END,
              r.dimension_value;
END;
$$;
COMMENT ON FUNCTION cs.revenue_retention_as_of(date, int) IS
    'MRR movements per month for the months months up to the month of as_of (that one until as_of), overall and by segment, CSM and signup cohort, from the subscription history at each month start; NRR and GRR. 22004 for NULL arguments, 22023 for months outside 1..240.';

CREATE OR REPLACE VIEW cs.revenue_retention WITH (security_invoker = true) AS
SELECT * FROM cs.revenue_retention_as_of(current_date, 12);
COMMENT ON VIEW cs.revenue_retention IS 'MRR movements, NRR and GRR of the last 12 months (the current one to date), overall and by segment, CSM and signup cohort: cs.revenue_retention_as_of(current_date). Counts the customers the reader may see.';
COMMENT ON COLUMN cs.revenue_retention.month IS 'First day of the month.';
COMMENT ON COLUMN cs.revenue_retention.period_end IS 'Day the month''s ending MRR is taken: the first day of the next month, or as_of (today) for the current month.';
COMMENT ON COLUMN cs.revenue_retention.dimension IS 'all, segment, csm or cohort: what dimension_value groups by.';
COMMENT ON COLUMN cs.revenue_retention.dimension_value IS 'all for dimension all; else the segment, the CSM role or the signup cohort (YYYY-MM of the first subscription start); NULL for customers without a segment or CSM.';
COMMENT ON COLUMN cs.revenue_retention.starting_customers IS 'Customers with MRR on the month''s first day.';
COMMENT ON COLUMN cs.revenue_retention.new_customers IS 'Customers without MRR on the first day and with MRR at period_end (new or reactivated).';
COMMENT ON COLUMN cs.revenue_retention.churned_customers IS 'Customers with MRR on the first day and none at period_end.';
COMMENT ON COLUMN cs.revenue_retention.ending_customers IS 'Customers with MRR at period_end.';
COMMENT ON COLUMN cs.revenue_retention.starting_mrr IS 'MRR on the month''s first day: subscriptions active that day, zero for customers churned by then.';
COMMENT ON COLUMN cs.revenue_retention.new_mrr IS 'MRR at period_end of the new customers.';
COMMENT ON COLUMN cs.revenue_retention.expansion_mrr IS 'MRR gained by customers who had MRR on both days.';
COMMENT ON COLUMN cs.revenue_retention.contraction_mrr IS 'MRR lost by customers who still had MRR at period_end.';
COMMENT ON COLUMN cs.revenue_retention.churned_mrr IS 'Starting MRR of the churned customers.';
COMMENT ON COLUMN cs.revenue_retention.ending_mrr IS 'MRR at period_end = starting + new + expansion - contraction - churned.';
COMMENT ON COLUMN cs.revenue_retention.nrr IS 'Net revenue retention of the month: (starting + expansion - contraction - churned) / starting; NULL without starting MRR.';
COMMENT ON COLUMN cs.revenue_retention.grr IS 'Gross revenue retention of the month: (starting - contraction - churned) / starting; NULL without starting MRR.';

------------------------------------------------------------------------------
-- Revenue: renewal forecast
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.renewal_forecast_as_of(as_of date)
RETURNS TABLE (customer_id uuid, external_id text, name text, csm text, segment text, renewal_date date,
               days_to_renewal int, horizon_days int, mrr numeric, churn_risk numeric, risk_weighted_mrr numeric,
               expected_mrr numeric, band text, churn_probability_by_renewal numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
-- compiling the plan costs more than running it
SET jit = off
AS $$
DECLARE
    -- the time-to-churn model (cs.time_to_churn), when one is deployed
    surv text := cs.champion('survival');
BEGIN
    PERFORM cs._check_report_window(as_of, 1, 1);
    -- The customers' rows first (MATERIALIZED), the survival model after: on
    -- a Citus cluster the rows come from the shards and the model, which
    -- reads cs.models, runs where the query began.
    RETURN QUERY
    WITH b AS MATERIALIZED (
        SELECT c.id, c.external_id, c.name, c.csm, c.segment, c.contract_end_date, c.mrr,
               r.risk_score, h.band, f.features, f.layout, f.as_of AS f_as_of
          FROM cs.customers c
          LEFT JOIN LATERAL (SELECT x.risk_score FROM cs.risk_assessments x
                              WHERE x.customer_id = c.id AND x.risk_type = 'churn' AND x.created_at < renewal_forecast_as_of.as_of + 1
                              ORDER BY x.created_at DESC LIMIT 1) r ON true
          LEFT JOIN LATERAL (SELECT s.band FROM cs.customer_health_scores s
                              WHERE s.customer_id = c.id AND s.calculated_at < renewal_forecast_as_of.as_of + 1
                              ORDER BY s.calculated_at DESC LIMIT 1) h ON true
          -- the stored vector dated by as_of, before the renewal date
          LEFT JOIN cs.customer_features f ON f.customer_id = c.id AND surv IS NOT NULL
                AND f.as_of < renewal_forecast_as_of.as_of + 1 AND f.as_of::date < c.contract_end_date
         WHERE c.contract_end_date BETWEEN renewal_forecast_as_of.as_of AND renewal_forecast_as_of.as_of + 90
           AND (c.churned_at IS NULL OR c.churned_at > renewal_forecast_as_of.as_of)
    )
    SELECT b.id, b.external_id::text, b.name::text, b.csm, b.segment, b.contract_end_date,
           b.contract_end_date - as_of,
           CASE WHEN b.contract_end_date - as_of <= 30 THEN 30 WHEN b.contract_end_date - as_of <= 60 THEN 60 ELSE 90 END,
           coalesce(b.mrr, 0)::numeric,
           b.risk_score::numeric,
           round(coalesce(b.mrr, 0) * b.risk_score, 2),
           round(coalesce(b.mrr, 0) * (1 - b.risk_score), 2),
           b.band,
           round(s.p::numeric, 2)
      FROM b
      -- churn before the renewal date
      LEFT JOIN LATERAL (SELECT cs.survival_probability(surv, cs._pick_features(b.features, pos.positions),
                                    extract(epoch FROM b.contract_end_date::timestamptz - b.f_as_of)::float8 / 86400) AS p
                           FROM cs._model_layout_positions(surv) pos
                          WHERE b.features IS NOT NULL AND pos.layout = coalesce(b.layout, 0)) s ON true
     ORDER BY b.contract_end_date, b.mrr DESC NULLS LAST, b.id;
END;
$$;
COMMENT ON FUNCTION cs.renewal_forecast_as_of(date) IS
    'Active customers whose contract ends within 90 days of as_of, with their MRR, latest churn risk and band at as_of, the risk-weighted MRR (MRR x churn risk, the expected loss) and expected renewal MRR, and the probability of churning before the renewal date by the survival model (cs.time_to_churn).';

CREATE OR REPLACE VIEW cs.renewal_forecast WITH (security_invoker = true) AS
SELECT * FROM cs.renewal_forecast_as_of(current_date);
COMMENT ON VIEW cs.renewal_forecast IS 'Renewals due in the next 90 days, soonest first, with MRR x churn risk as the expected loss: cs.renewal_forecast_as_of(current_date).';
COMMENT ON COLUMN cs.renewal_forecast.customer_id IS 'The customer.';
COMMENT ON COLUMN cs.renewal_forecast.external_id IS 'Account id in the CRM.';
COMMENT ON COLUMN cs.renewal_forecast.name IS 'Account name.';
COMMENT ON COLUMN cs.renewal_forecast.csm IS 'Owning CSM (role name).';
COMMENT ON COLUMN cs.renewal_forecast.segment IS 'Segment.';
COMMENT ON COLUMN cs.renewal_forecast.renewal_date IS 'Contract end date (cs.customers.contract_end_date).';
COMMENT ON COLUMN cs.renewal_forecast.days_to_renewal IS 'Days from as_of (today) to the renewal date, 0 to 90.';
COMMENT ON COLUMN cs.renewal_forecast.horizon_days IS '30, 60 or 90: the first window the renewal falls in (0-30, 31-60, 61-90 days).';
COMMENT ON COLUMN cs.renewal_forecast.mrr IS 'MRR up for renewal (cs.customers.mrr, 0 when unknown).';
COMMENT ON COLUMN cs.renewal_forecast.churn_risk IS 'Latest churn risk 0-1 at as_of; NULL when never scored.';
COMMENT ON COLUMN cs.renewal_forecast.risk_weighted_mrr IS 'MRR x churn risk: the MRR expected to be lost; NULL without a churn risk.';
COMMENT ON COLUMN cs.renewal_forecast.expected_mrr IS 'MRR x (1 - churn risk): the MRR expected to renew; NULL without a churn risk.';
COMMENT ON COLUMN cs.renewal_forecast.band IS 'Latest health band at as_of.';
COMMENT ON COLUMN cs.renewal_forecast.churn_probability_by_renewal IS 'The risk of this renewal: probability 0-1 that the customer churns before the renewal date, by the champion survival model on its stored feature vector (cs.time_to_churn; days counted from the vector''s date); NULL without a deployed survival model or a stored vector dated before the renewal and by as_of.';

CREATE OR REPLACE FUNCTION cs.renewal_forecast_summary_as_of(as_of date)
RETURNS TABLE (horizon_days int, dimension text, dimension_value text, renewals bigint, renewing_mrr numeric,
               risk_weighted_mrr numeric, expected_mrr numeric, unscored bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
AS $$
    SELECT h.days,
           CASE WHEN grouping(f.segment) = 0 THEN 'segment' WHEN grouping(f.csm) = 0 THEN 'csm' ELSE 'all' END,
           CASE WHEN grouping(f.segment) = 0 THEN f.segment WHEN grouping(f.csm) = 0 THEN f.csm ELSE 'all' END,
           count(f.customer_id),
           coalesce(sum(f.mrr), 0),
           coalesce(sum(f.risk_weighted_mrr), 0),
           -- customers never scored are expected to renew whole
           coalesce(sum(coalesce(f.expected_mrr, f.mrr)), 0),
           count(f.customer_id) FILTER (WHERE f.churn_risk IS NULL)
      FROM (VALUES (30), (60), (90)) h(days)
      JOIN cs.renewal_forecast_as_of(as_of) f ON f.days_to_renewal <= h.days
     GROUP BY GROUPING SETS ((h.days), (h.days, f.segment), (h.days, f.csm))
     ORDER BY 1, 2, 3;
$$;
COMMENT ON FUNCTION cs.renewal_forecast_summary_as_of(date) IS
    'Renewals within 30, 60 and 90 days of as_of (cumulative windows), overall and by segment and CSM: MRR up for renewal, risk-weighted MRR (expected loss) and expected renewal MRR (customers without a churn risk count as renewing).';

CREATE OR REPLACE VIEW cs.renewal_forecast_summary WITH (security_invoker = true) AS
SELECT * FROM cs.renewal_forecast_summary_as_of(current_date);
COMMENT ON VIEW cs.renewal_forecast_summary IS 'The renewal forecast of the next 30, 60 and 90 days (cumulative), overall and by segment and CSM: cs.renewal_forecast_summary_as_of(current_date).';
COMMENT ON COLUMN cs.renewal_forecast_summary.horizon_days IS '30, 60 or 90: renewals due within that many days (cumulative).';
COMMENT ON COLUMN cs.renewal_forecast_summary.dimension IS 'all, segment or csm.';
COMMENT ON COLUMN cs.renewal_forecast_summary.dimension_value IS 'all, or the segment or CSM role; NULL for customers without one.';
COMMENT ON COLUMN cs.renewal_forecast_summary.renewals IS 'Customers renewing within the horizon.';
COMMENT ON COLUMN cs.renewal_forecast_summary.renewing_mrr IS 'Their MRR.';
COMMENT ON COLUMN cs.renewal_forecast_summary.risk_weighted_mrr IS 'Sum of MRR x churn risk: the MRR expected to be lost.';
COMMENT ON COLUMN cs.renewal_forecast_summary.expected_mrr IS 'MRR expected to renew: renewing_mrr - risk_weighted_mrr.';
COMMENT ON COLUMN cs.renewal_forecast_summary.unscored IS 'Renewing customers without a churn risk (counted as renewing).';

------------------------------------------------------------------------------
-- Revenue: logo and MRR retention by signup cohort
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.cohort_retention_as_of(as_of date, months int DEFAULT 24)
RETURNS TABLE (cohort date, months_since_start int, measured_at date, customers bigint, retained_customers bigint,
               logo_retention numeric, starting_mrr numeric, mrr numeric, mrr_retention numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
-- compiling the plan costs more than running it
SET jit = off
AS $$
BEGIN
    PERFORM cs._check_report_window(as_of, months, 240);
    RETURN QUERY
    WITH firsts AS (
        SELECT s.customer_id, min(s.started_at) AS first_start,
               -- the day the last subscription ended, when none is open
               CASE WHEN bool_and(s.ended_at IS NOT NULL) THEN max(s.ended_at) END AS subs_end
          FROM cs.subscriptions s
         GROUP BY s.customer_id
    ), cust AS (
        -- (the start in a subquery, not a lateral one without FROM: Citus
        -- pushes down no stable function there)
        SELECT x.id, x.start_date, date_trunc('month', x.start_date)::date AS cohort, x.gone_at, x.churned_at
          FROM (SELECT c.id, coalesce(f.first_start, c.contract_start_date, c.created_at::date) AS start_date,
                       CASE WHEN c.churned_at IS NULL THEN f.subs_end
                            WHEN f.subs_end IS NULL THEN c.churned_at
                            ELSE least(c.churned_at, f.subs_end) END AS gone_at,
                       c.churned_at
                  FROM cs.customers c
                  LEFT JOIN firsts f ON f.customer_id = c.id) x
         WHERE x.start_date <= as_of
           AND x.start_date >= date_trunc('month', as_of) - (months - 1) * interval '1 month'
    ), pts AS (
        -- month k of a cohort is measured on the first day of the k-th month
        -- after the cohort's, up to as_of (month 0 at each customer's own start)
        SELECT cu.cohort, k, (cu.cohort + k * interval '1 month')::date AS d
          FROM (SELECT DISTINCT c.cohort FROM cust c) cu
         CROSS JOIN LATERAL generate_series(0, (extract(year FROM age(date_trunc('month', as_of), cu.cohort)) * 12
                                                + extract(month FROM age(date_trunc('month', as_of), cu.cohort)))::int) k
    ), logos AS (
        SELECT p.cohort, p.k, count(*) AS customers,
               count(*) FILTER (WHERE cu.gone_at IS NULL
                                   OR cu.gone_at > CASE WHEN p.k = 0 THEN cu.start_date ELSE p.d END) AS retained_customers
          FROM pts p
          JOIN cust cu ON cu.cohort = p.cohort
         GROUP BY p.cohort, p.k
    ), money AS (
        -- summed by cohort and month directly: no per-customer grouping
        SELECT p.cohort, p.k, sum(x.mrr) AS mrr
          FROM pts p
          JOIN cust cu ON cu.cohort = p.cohort
          JOIN cs.subscriptions x ON x.customer_id = cu.id
         CROSS JOIN LATERAL (SELECT CASE WHEN p.k = 0 THEN cu.start_date ELSE p.d END AS d) dd
         WHERE x.started_at <= dd.d AND (x.ended_at IS NULL OR x.ended_at > dd.d)
           AND (cu.churned_at IS NULL OR cu.churned_at > dd.d)
         GROUP BY p.cohort, p.k
    ), agg AS (
        SELECT l.cohort, l.k, (l.cohort + l.k * interval '1 month')::date AS measured_at, l.customers,
               l.retained_customers, coalesce(m.mrr, 0) AS mrr
          FROM logos l
          LEFT JOIN money m ON m.cohort = l.cohort AND m.k = l.k
    )
    SELECT a.cohort, a.k, a.measured_at,
           z.customers, a.retained_customers,
           round(a.retained_customers::numeric / z.customers, 4),
           z.mrr, a.mrr,
           round(a.mrr / nullif(z.mrr, 0), 4)
      FROM agg a
      JOIN agg z ON z.cohort = a.cohort AND z.k = 0
     ORDER BY a.cohort, a.k;
END;
$$;
COMMENT ON FUNCTION cs.cohort_retention_as_of(date, int) IS
    'Logo and MRR retention curves of the signup cohorts of the last months months up to as_of: per cohort month and months since start, the share of the cohort''s customers not gone and the share of its starting MRR still billed.';

CREATE OR REPLACE VIEW cs.cohort_retention WITH (security_invoker = true) AS
SELECT * FROM cs.cohort_retention_as_of(current_date, 24);
COMMENT ON VIEW cs.cohort_retention IS 'Logo and MRR retention by signup cohort (the month of the first subscription start, else the contract start, else created_at) for cohorts of the last 24 months: cs.cohort_retention_as_of(current_date).';
COMMENT ON COLUMN cs.cohort_retention.cohort IS 'First day of the signup month.';
COMMENT ON COLUMN cs.cohort_retention.months_since_start IS '0 at signup, then k for the first day of the k-th month after the signup month.';
COMMENT ON COLUMN cs.cohort_retention.measured_at IS 'cohort + months_since_start months (month 0 is measured at each customer''s own start).';
COMMENT ON COLUMN cs.cohort_retention.customers IS 'Customers of the cohort.';
COMMENT ON COLUMN cs.cohort_retention.retained_customers IS 'Customers not gone at measured_at: not churned (churned_at) and with a subscription still open or ended later. Never increases with months_since_start.';
COMMENT ON COLUMN cs.cohort_retention.logo_retention IS 'retained_customers / customers.';
COMMENT ON COLUMN cs.cohort_retention.starting_mrr IS 'MRR of the cohort at signup: each customer''s MRR on its first day.';
COMMENT ON COLUMN cs.cohort_retention.mrr IS 'MRR of the cohort''s customers at measured_at (expansion included).';
COMMENT ON COLUMN cs.cohort_retention.mrr_retention IS 'mrr / starting_mrr: net MRR retention of the cohort (above 1 when expansion outweighs losses).';
