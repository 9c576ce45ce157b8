-- Demo data: deterministic for a seed, plausible volumes and shares, churners
-- decline before churn (sudden ones much less), nothing after churn, clear errors.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- start without the shipped churn model: this test's scores must not depend on it
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

-- SQLSTATE and message of a statement, or 'ok'
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

-- an ordered digest of every demo table (surrogate ids left out)
CREATE FUNCTION pg_temp.demo_digest() RETURNS TABLE (tbl text, nrows bigint, digest text) LANGUAGE sql AS $$
    -- first_seen_at left out: an invoice's issue date counts from midnight in
    -- the time zone of the session that loaded it
    SELECT 'customers', count(*), md5(string_agg((to_jsonb(c) - 'first_seen_at')::text, '|' ORDER BY c.external_id))
      FROM cs.customers c WHERE c.external_id LIKE 'demo-%'
    UNION ALL
    SELECT 'demo_ground_truth', count(*), md5(string_agg(g::text, '|' ORDER BY g.customer_id)) FROM cs.demo_ground_truth g
    UNION ALL
    SELECT 'subscriptions', count(*), md5(string_agg(x, '|' ORDER BY x))
      FROM (SELECT (customer_id, product, seats, mrr, started_at, ended_at)::text x FROM cs.subscriptions) s
    UNION ALL
    SELECT 'contacts', count(*), md5(string_agg(x, '|' ORDER BY x))
      FROM (SELECT (customer_id, name, email, role, is_champion, left_at)::text x FROM cs.contacts) s
    UNION ALL
    SELECT 'invoices', count(*), md5(string_agg(x, '|' ORDER BY x))
      FROM (SELECT (customer_id, external_id, amount, issued_at, due_date, paid_at, status)::text x FROM cs.invoices) s
    UNION ALL
    SELECT 'support_tickets', count(*), md5(string_agg(x, '|' ORDER BY x))
      FROM (SELECT (customer_id, external_id, opened_at, closed_at, priority, status, csat, subject, body)::text x
              FROM cs.support_tickets) s
    UNION ALL
    SELECT 'engagements', count(*), md5(string_agg(x, '|' ORDER BY x))
      FROM (SELECT (customer_id, kind, occurred_at, notes)::text x FROM cs.engagements) s
    UNION ALL
    SELECT 'nps_responses', count(*), md5(string_agg(x, '|' ORDER BY x))
      FROM (SELECT (customer_id, score, comment, responded_at)::text x FROM cs.nps_responses) s
    UNION ALL
    SELECT 'usage_events', count(*), md5(string_agg(x, '|' ORDER BY x))
      FROM (SELECT u::text x FROM cs.usage_events u) s
$$;

------------------------------------------------------------------------------
-- Determinism
------------------------------------------------------------------------------

SELECT cs.generate_demo_data(200, 90, 7, '2026-06-30') AS generated \gset
SELECT count(*) = 200 AS every_customer_dirty FROM cs.dirty_customers;
CREATE TEMP TABLE run1 AS SELECT * FROM pg_temp.demo_digest();
-- demo data exists: refused, nothing changes
SELECT pg_temp.try($$SELECT cs.generate_demo_data(10, 30, 1, '2026-06-30')$$);
-- dropping removes exactly what was generated
SELECT cs.drop_demo_data() = :generated AS dropped_all;
SELECT (SELECT count(*) FROM cs.customers) AS customers_left,
       (SELECT count(*) FROM cs.usage_events) AS usage_left,
       (SELECT count(*) FROM cs.dirty_customers) AS dirty_left;
SELECT cs.drop_demo_data() AS dropped_again;

-- same arguments in another session time zone: the same rows, ids and instants
SET TIME ZONE 'America/New_York';
SELECT cs.generate_demo_data(200, 90, 7, '2026-06-30') = :generated AS same_total;
SET TIME ZONE 'UTC';
CREATE TEMP TABLE run2 AS SELECT * FROM pg_temp.demo_digest();
SELECT cs.drop_demo_data() > 0 AS dropped;

-- another seed: different data everywhere
SELECT cs.generate_demo_data(200, 90, 8, '2026-06-30') > 0 AS generated;
CREATE TEMP TABLE run3 AS SELECT * FROM pg_temp.demo_digest();
SELECT cs.drop_demo_data() > 0 AS dropped;

-- usage generated in day ranges (one INSERT per month) is the same as in one go
SELECT NOT EXISTS (
           (SELECT * FROM cs._demo_usage(50, 60, 3, '2026-06-30')
            EXCEPT ALL
            (SELECT * FROM cs._demo_usage(50, 60, 3, '2026-06-30', NULL, '2026-05-15')
             UNION ALL
             SELECT * FROM cs._demo_usage(50, 60, 3, '2026-06-30', '2026-05-16', NULL)))
           UNION ALL
           (SELECT * FROM cs._demo_usage(50, 60, 3, '2026-06-30', NULL, '2026-05-15')
            UNION ALL
            SELECT * FROM cs._demo_usage(50, 60, 3, '2026-06-30', '2026-05-16', NULL)
            EXCEPT ALL
            SELECT * FROM cs._demo_usage(50, 60, 3, '2026-06-30'))) AS ranges_add_up,
       (SELECT count(*) > 0 FROM cs._demo_usage(50, 60, 3, '2026-06-30')) AS has_rows;

SELECT r1.tbl, r1.nrows > 0 AS has_rows, r1.digest = r2.digest AS same_seed_same_data,
       r1.digest <> r3.digest AS other_seed_other_data
  FROM run1 r1 JOIN run2 r2 USING (tbl) JOIN run3 r3 USING (tbl)
 ORDER BY 1;

------------------------------------------------------------------------------
-- Bad arguments
------------------------------------------------------------------------------

SELECT pg_temp.try(stmt) FROM (VALUES
    ($$SELECT cs.generate_demo_data(0)$$),
    ($$SELECT cs.generate_demo_data(10000001)$$),
    ($$SELECT cs.generate_demo_data(10, 0)$$),
    ($$SELECT cs.generate_demo_data(10, 3651)$$),
    ($$SELECT cs.generate_demo_data(NULL)$$),
    ($$SELECT cs.generate_demo_data(10, 30, NULL)$$),
    ($$SELECT cs.generate_demo_data(10, 30, 1, NULL)$$),
    ($$SELECT cs.generate_demo_data(10, 30, 1, 'infinity')$$),
    ($$SELECT * FROM cs._demo_usage(10, -1, 1, '2026-06-30')$$)) v(stmt);
SELECT count(*) AS customers_after_errors FROM cs.customers;

------------------------------------------------------------------------------
-- A realistic dataset: 1500 customers x 180 days
------------------------------------------------------------------------------

SELECT cs.generate_demo_data(1500, 180, 42, '2026-06-30') > 0 AS generated;
\set start '''2026-01-01'''
\set end '''2026-06-30'''

-- volumes
SELECT count(*) = 1500 AS customers,
       (SELECT count(*) FROM cs.demo_ground_truth) = 1500 AS ground_truth,
       (SELECT count(*)::numeric / 1500 / 181 FROM cs.usage_events) BETWEEN 2.5 AND 3.5 AS usage_per_customer_day,
       (SELECT count(*)::numeric / 1500 FROM cs.support_tickets) BETWEEN 1 AND 10 AS tickets_per_customer,
       (SELECT count(*)::numeric / 1500 FROM cs.invoices) BETWEEN 4.5 AND 6.5 AS invoices_per_customer,
       (SELECT count(*)::numeric / 1500 FROM cs.engagements) BETWEEN 5 AND 30 AS engagements_per_customer,
       (SELECT count(DISTINCT customer_id)::numeric / 1500 FROM cs.nps_responses) BETWEEN 0.2 AND 0.5 AS nps_respondents,
       (SELECT count(*)::numeric / 1500 FROM cs.contacts) BETWEEN 2 AND 5 AS contacts_per_customer
  FROM cs.customers;

-- everything inside the window; user ids and features look like the product's
SELECT (SELECT min(occurred_at) >= date :start AND max(occurred_at) < date :end + 1 FROM cs.usage_events) AS usage_in_window,
       (SELECT min(opened_at) >= date :start AND max(coalesce(closed_at, opened_at)) < date :end + 1 FROM cs.support_tickets) AS tickets_in_window,
       (SELECT min(issued_at) >= date :start AND max(issued_at) <= date :end FROM cs.invoices) AS invoices_in_window,
       (SELECT bool_and(user_id ~ '^u[0-9]{4}$') AND count(DISTINCT feature) BETWEEN 8 AND 12 FROM cs.usage_events) AS users_and_features,
       (SELECT count(DISTINCT external_id) = count(*) FROM cs.support_tickets) AS ticket_ids_unique;

-- segments: shares, seats and MRR ranges (before any expansion or contraction:
-- a contracted customer's core line ended while it stays a customer)
SELECT c.segment,
       round(count(*) / 1500.0, 1) AS share,
       bool_and(c.seats_licensed BETWEEN lo_seats AND hi_seats) AS seats_in_range,
       bool_and(c.mrr BETWEEN lo_mrr AND hi_mrr) AS mrr_in_range,
       count(DISTINCT c.csm) AS csms,
       count(DISTINCT c.industry) > 5 AS industries
  FROM cs.customers c JOIN cs.demo_ground_truth g ON g.customer_id = c.id
  JOIN (VALUES ('smb', 3, 20, 100, 1500), ('mid_market', 20, 100, 1500, 8000),
               ('enterprise', 100, 400, 8000, 60000)) r(segment, lo_seats, hi_seats, lo_mrr, hi_mrr)
    ON r.segment = c.segment
 WHERE g.expanded_at IS NULL
   AND (c.churned_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM cs.subscriptions s
                                               WHERE s.customer_id = c.id AND s.product = 'core' AND s.ended_at IS NOT NULL))
 GROUP BY c.segment
 ORDER BY c.segment;

-- archetypes and churn: a plausible B2B rate, a quarter of churners sudden
SELECT count(churned_at)::numeric / count(*) BETWEEN 0.08 AND 0.15 AS churn_rate_plausible,
       (count(*) FILTER (WHERE archetype = 'sudden_churn'))::numeric / count(churned_at) BETWEEN 0.15 AND 0.35 AS sudden_share,
       count(DISTINCT archetype) AS archetypes,
       bool_and((churned_at IS NOT NULL) = (archetype IN ('declining_churn', 'sudden_churn'))) AS churned_iff_churner,
       (SELECT bool_and(c.churned_at IS NOT DISTINCT FROM g.churned_at)
          FROM cs.customers c JOIN cs.demo_ground_truth g ON g.customer_id = c.id) AS churned_at_matches
  FROM cs.demo_ground_truth;

-- contracts: annual; most churners leave at renewal, the rest mid-term (their term runs
-- past churn), others' covers end_date, some renew within 90 days
SELECT bool_and(c.contract_end_date - c.contract_start_date <= 364) AS at_most_a_year,
       (count(*) FILTER (WHERE c.contract_end_date = c.churned_at))::numeric
         / nullif(count(*) FILTER (WHERE c.churned_at IS NOT NULL), 0) BETWEEN 0.5 AND 0.8 AS most_churn_at_renewal,
       bool_and(c.contract_end_date >= c.churned_at) FILTER (WHERE c.churned_at IS NOT NULL) AS churner_terms_reach_churn,
       bool_and(c.contract_end_date >= date :end) FILTER (WHERE c.churned_at IS NULL) AS others_cover_end,
       (count(*) FILTER (WHERE c.churned_at IS NULL AND c.contract_end_date < date :end + 90))::numeric
         / count(*) FILTER (WHERE c.churned_at IS NULL) BETWEEN 0.15 AND 0.35 AS renewing_within_90_days,
       count(c.parent_id) BETWEEN 5 AND 60 AS some_subsidiaries,
       bool_and(p.external_id < c.external_id) FILTER (WHERE c.parent_id IS NOT NULL) AS parents_earlier
  FROM cs.customers c LEFT JOIN cs.customers p ON p.id = c.parent_id;

-- usage declines before churn for most gradual churners, much less for sudden ones
WITH churners AS (
    SELECT g.customer_id, g.archetype, g.churned_at,
           (SELECT count(*) FROM cs.usage_events e WHERE e.customer_id = g.customer_id
               AND e.occurred_at >= g.churned_at - 30 AND e.occurred_at < g.churned_at) AS recent,
           (SELECT count(*) FROM cs.usage_events e WHERE e.customer_id = g.customer_id
               AND e.occurred_at >= g.churned_at - 120 AND e.occurred_at < g.churned_at - 90) AS before
      FROM cs.demo_ground_truth g
     WHERE g.churned_at >= date :start + 120)
SELECT archetype, count(*) >= 10 AS enough,
       (count(*) FILTER (WHERE recent < 0.7 * before))::numeric / count(*) >= 0.7 AS most_declined,
       (count(*) FILTER (WHERE recent < 0.7 * before))::numeric / count(*) <= 0.3 AS few_declined
  FROM churners GROUP BY archetype ORDER BY archetype;

-- nothing happens after churn
SELECT (SELECT count(*) FROM cs.usage_events e JOIN cs.customers c ON c.id = e.customer_id
         WHERE e.occurred_at >= c.churned_at) AS usage_after,
       (SELECT count(*) FROM cs.support_tickets t JOIN cs.customers c ON c.id = t.customer_id
         WHERE t.opened_at >= c.churned_at) AS tickets_after,
       (SELECT count(*) FROM cs.engagements t JOIN cs.customers c ON c.id = t.customer_id
         WHERE t.occurred_at >= c.churned_at) AS engagements_after,
       (SELECT count(*) FROM cs.nps_responses t JOIN cs.customers c ON c.id = t.customer_id
         WHERE t.responded_at >= c.churned_at) AS nps_after,
       (SELECT count(*) FROM cs.invoices t JOIN cs.customers c ON c.id = t.customer_id
         WHERE t.issued_at >= c.churned_at) AS invoices_after,
       (SELECT count(*) FROM cs.subscriptions s JOIN cs.customers c ON c.id = s.customer_id
         WHERE c.churned_at IS NOT NULL AND s.ended_at IS DISTINCT FROM c.churned_at) AS subscriptions_open;

-- growth: users beyond the licensed seats, expansions recorded in subscriptions
WITH active AS (
    SELECT customer_id, count(DISTINCT user_id) AS users
      FROM cs.usage_events WHERE occurred_at >= date :end - 30 GROUP BY customer_id),
over AS (
    SELECT g.archetype FROM active a JOIN cs.customers c ON c.id = a.customer_id
      JOIN cs.demo_ground_truth g ON g.customer_id = c.id
     WHERE a.users > c.seats_licensed)
SELECT count(*) >= 20 AS some_over_seats,
       (count(*) FILTER (WHERE archetype = 'growing'))::numeric / count(*) >= 0.8 AS mostly_growers,
       (SELECT count(*) FILTER (WHERE expanded_at IS NOT NULL)::numeric / count(*) BETWEEN 0.4 AND 0.8
          FROM cs.demo_ground_truth WHERE archetype = 'growing') AS most_growers_expanded,
       (SELECT bool_and(EXISTS (SELECT 1 FROM cs.subscriptions s WHERE s.customer_id = g.customer_id
                                   AND s.started_at = g.expanded_at))
          FROM cs.demo_ground_truth g WHERE g.expanded_at IS NOT NULL) AS expansions_recorded,
       (SELECT bool_and(c.mrr = (SELECT sum(s.mrr) FROM cs.subscriptions s
                                  WHERE s.customer_id = c.id AND (s.ended_at IS NULL OR s.ended_at = c.churned_at)))
          FROM cs.customers c) AS mrr_is_sum_of_subscriptions
  FROM over;

-- products: 1-4 per customer, with co-occurrence (automation goes with analytics)
WITH p AS (
    SELECT customer_id, bool_or(product = 'analytics') AS analytics, bool_or(product = 'automation') AS automation,
           count(DISTINCT product) AS products
      FROM cs.subscriptions GROUP BY customer_id)
SELECT min(products) AS min_products, max(products) AS max_products,
       (avg(automation::int) FILTER (WHERE analytics)) / avg(automation::int) > 1.5 AS automation_lift
  FROM p;

-- signals follow health, with noise: tickets, csat, NPS, invoices, champions, weekends
WITH h AS (SELECT customer_id, archetype, health_end, churned_at IS NOT NULL AS churned FROM cs.demo_ground_truth)
SELECT (SELECT corr(n.score, h.health_end) > 0.3 FROM cs.nps_responses n JOIN h USING (customer_id)
         WHERE n.responded_at >= date :end - 60) AS nps_follows_health,
       (SELECT avg(t.csat) FILTER (WHERE h.churned) < avg(t.csat) FILTER (WHERE NOT h.churned)
          FROM cs.support_tickets t JOIN h USING (customer_id)) AS churners_lower_csat,
       (SELECT avg((t.body ~* 'cancel|competitor|vendors|keep paying')::int) FILTER (WHERE h.churned)
             > 2 * avg((t.body ~* 'cancel|competitor|vendors|keep paying')::int) FILTER (WHERE NOT h.churned)
          FROM cs.support_tickets t JOIN h USING (customer_id)) AS churners_angrier,
       (SELECT avg((i.status = 'failed' OR i.paid_at > i.due_date)::int) FILTER (WHERE h.archetype = 'declining_churn')
             > avg((i.status = 'failed' OR i.paid_at > i.due_date)::int) FILTER (WHERE h.archetype = 'stable')
           AND avg((i.paid_at > i.due_date)::int) FILTER (WHERE h.archetype = 'stable') > 0.01
          FROM cs.invoices i JOIN h USING (customer_id)) AS bad_payers_mostly_unhealthy,
       (SELECT count(DISTINCT customer_id) FILTER (WHERE is_champion)::numeric / 1500 BETWEEN 0.75 AND 0.95
          FROM cs.contacts) AS most_have_champion,
       (SELECT avg((left_at IS NOT NULL)::int) FILTER (WHERE h.churned)
             > 2 * avg((left_at IS NOT NULL)::int) FILTER (WHERE NOT h.churned)
           AND bool_or(left_at IS NOT NULL) FILTER (WHERE h.archetype = 'stable')
          FROM cs.contacts c JOIN h USING (customer_id) WHERE c.is_champion) AS champions_leave_before_churn,
       (SELECT count(*) FILTER (WHERE extract(isodow FROM occurred_at) >= 6) / 2.0
             < 0.3 * count(*) FILTER (WHERE extract(isodow FROM occurred_at) < 6) / 5.0
          FROM cs.usage_events) AS quiet_weekends,
       (SELECT bool_and(c.segment <> 'smb') FROM cs.engagements e JOIN cs.customers c ON c.id = e.customer_id
         WHERE e.kind = 'qbr') AS qbrs_for_larger_accounts;

SELECT cs.drop_demo_data() > 0 AS dropped;
