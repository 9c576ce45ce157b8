-- The consumer demo profile: deterministic for a seed, monthly terms that are
-- contiguous and end unrenewed for churners, several event types, no B2B-only
-- signals, created_at left to the load time; and the b2b default unchanged.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

-- an ordered digest of what the consumer profile writes (created_at left out: the load time)
CREATE FUNCTION pg_temp.consumer_digest() RETURNS TABLE (tbl text, nrows bigint, digest text) LANGUAGE sql AS $$
    SELECT 'customers', count(*), md5(string_agg((c.id, c.external_id, c.name, c.mrr, c.contract_start_date,
                                                  c.contract_end_date, c.churned_at)::text, '|' ORDER BY c.external_id))
      FROM cs.customers c
    UNION ALL
    SELECT 'demo_ground_truth', count(*), md5(string_agg(g::text, '|' ORDER BY g.customer_id)) FROM cs.demo_ground_truth g
    UNION ALL
    SELECT 'contract_terms', count(*), md5(string_agg((t.customer_id, t.term_start, t.term_end, t.mrr, t.source)::text,
                                                      '|' ORDER BY t.customer_id, t.term_start))
      FROM cs.contract_terms t
    UNION ALL
    SELECT 'usage_events', count(*), md5(string_agg(x, '|' ORDER BY x))
      FROM (SELECT u::text x FROM cs.usage_events u) s
$$;

------------------------------------------------------------------------------
-- Arguments
------------------------------------------------------------------------------

SELECT pg_temp.try(stmt) FROM (VALUES
    ($$SELECT cs.generate_demo_data(10, 30, 1, '2026-06-30', NULL)$$),
    ($$SELECT cs.generate_demo_data(10, 30, 1, '2026-06-30', 'retail')$$),
    ($$SELECT cs.generate_demo_data(0, 30, 1, '2026-06-30', 'consumer')$$)
) v(stmt);
SELECT count(*) AS nothing_written FROM cs.customers;

------------------------------------------------------------------------------
-- Determinism
------------------------------------------------------------------------------

SELECT cs.generate_demo_data(400, 150, 3, '2026-06-30', 'consumer') AS generated \gset
CREATE TEMP TABLE run1 AS SELECT * FROM pg_temp.consumer_digest();
SELECT tbl, nrows FROM run1 ORDER BY tbl;
SELECT cs.drop_demo_data() = :generated AS dropped_all;
SELECT (SELECT count(*) FROM cs.contract_terms) AS terms_left, (SELECT count(*) FROM cs.usage_events) AS usage_left;
SET TIME ZONE 'Asia/Tokyo';
SELECT cs.generate_demo_data(400, 150, 3, '2026-06-30', 'consumer') = :generated AS same_total;
SET TIME ZONE 'UTC';
CREATE TEMP TABLE run2 AS SELECT * FROM pg_temp.consumer_digest();
SELECT bool_and(r1.nrows = r2.nrows AND r1.digest = r2.digest) AS same_rows
  FROM run1 r1 JOIN run2 r2 USING (tbl);
-- the same sums, by event type
SELECT event, count(*) AS n, sum(quantity)::bigint AS quantity, count(DISTINCT customer_id) > 0 AS used
  FROM cs.usage_events GROUP BY event ORDER BY event;

------------------------------------------------------------------------------
-- The shape of a consumer world
------------------------------------------------------------------------------

-- nothing B2B-only: no tickets, invoices, NPS, meetings, contacts, subscriptions, seats, CSMs
SELECT (SELECT count(*) FROM cs.support_tickets) AS tickets, (SELECT count(*) FROM cs.invoices) AS invoices,
       (SELECT count(*) FROM cs.nps_responses) AS nps, (SELECT count(*) FROM cs.engagements) AS engagements,
       (SELECT count(*) FROM cs.contacts) AS contacts, (SELECT count(*) FROM cs.subscriptions) AS subscriptions,
       (SELECT count(*) FROM cs.customers WHERE seats_licensed IS NOT NULL OR csm IS NOT NULL) AS with_seats_or_csm;

-- created_at is the load time, long after the history starts
SELECT bool_and(c.created_at > '2026-06-30'::date + 1) AS created_at_is_load_time,
       (SELECT min(term_start) FROM cs.contract_terms) < '2026-06-30'::date - 150 AS history_before_window
  FROM cs.customers c;

-- sign-ups keep arriving: accounts before the window and in each of its months
SELECT date_trunc('month', s)::date AS signup_month, count(*) > 5 AS some
  FROM (SELECT min(term_start) AS s FROM cs.contract_terms GROUP BY customer_id) f
 WHERE s >= '2026-02-01'
 GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE s < '2026-06-30'::date - 150) > 100 AS present_at_start
  FROM (SELECT min(term_start) AS s FROM cs.contract_terms GROUP BY customer_id) f;

-- monthly terms: 28-31 days, contiguous, one per month from sign-up
WITH t AS (
    SELECT customer_id, term_start, term_end,
           lead(term_start) OVER (PARTITION BY customer_id ORDER BY term_start) AS next_start
      FROM cs.contract_terms
)
SELECT bool_and(term_end - term_start BETWEEN 28 AND 31) AS monthly,
       bool_and(next_start IS NULL OR next_start = term_end) AS contiguous,
       count(DISTINCT customer_id) = 400 AS every_account_has_terms
  FROM t;

-- the customer row holds the current term, or a churner's last; a churner's last
-- term ends on its churn date and is not renewed; a survivor's covers end_date
WITH last AS (
    SELECT DISTINCT ON (customer_id) customer_id, term_start, term_end
      FROM cs.contract_terms ORDER BY customer_id, term_start DESC
)
SELECT bool_and(c.contract_start_date = l.term_start AND c.contract_end_date = l.term_end) AS customer_row_is_last_term,
       bool_and(c.churned_at IS NULL OR l.term_end = c.churned_at) AS churner_last_term_ends_at_churn,
       bool_and(c.churned_at IS NOT NULL OR l.term_end > '2026-06-30') AS survivor_term_covers_end_date,
       bool_and(c.churned_at IS NULL OR c.churned_at <= '2026-06-30') AS churn_inside_window
  FROM cs.customers c JOIN last l ON l.customer_id = c.id;

-- churn happens at a consumer rate (3-7% a month of the accounts subscribed)
WITH m AS (
    SELECT d,
           (SELECT count(*) FROM cs.contract_terms t WHERE t.term_start <= d AND t.term_end > d) AS live,
           (SELECT count(*) FROM cs.customers c WHERE c.churned_at > d AND c.churned_at <= d + 30) AS churned
      FROM (SELECT g::date AS d FROM generate_series('2026-02-01'::date, '2026-05-31'::date, '30 days') g) s
)
SELECT sum(churned) > 20 AS churn_happens,
       round(sum(churned)::numeric / sum(live), 2) BETWEEN 0.03 AND 0.07 AS monthly_rate_plausible
  FROM m;
SELECT bool_and((g.churned_at IS NOT DISTINCT FROM c.churned_at)) AS truth_matches_customers,
       count(DISTINCT g.archetype) AS archetypes
  FROM cs.demo_ground_truth g JOIN cs.customers c ON c.id = g.customer_id;

-- events only while subscribed; one to four users per account, mostly one
SELECT count(*) AS events_outside_subscription
  FROM cs.usage_events u JOIN cs.customers c ON c.id = u.customer_id
 WHERE u.occurred_at::date < (SELECT min(t.term_start) FROM cs.contract_terms t WHERE t.customer_id = c.id)
    OR u.occurred_at::date >= c.churned_at;
SELECT max(n) BETWEEN 2 AND 4 AS few_users, (count(*) FILTER (WHERE n = 1))::numeric / count(*) > 0.6 AS mostly_one
  FROM (SELECT customer_id, count(DISTINCT user_id) AS n FROM cs.usage_events GROUP BY customer_id) s;

-- leading signs: in the 4 weeks up to a month before churn, churners make fewer
-- friends and messages and unfriend and read help more than the others at the same dates
WITH obs AS (
    SELECT c.id, c.churned_at - 30 AS d, true AS churner FROM cs.customers c WHERE c.churned_at >= '2026-03-01'
    UNION ALL
    SELECT c.id, x.d, false FROM cs.customers c
      CROSS JOIN (SELECT DISTINCT churned_at - 30 AS d FROM cs.customers WHERE churned_at >= '2026-03-01') x
     WHERE (c.churned_at IS NULL OR c.churned_at > x.d + 60)
       AND (SELECT min(t.term_start) FROM cs.contract_terms t WHERE t.customer_id = c.id) < x.d - 28
), n AS (
    SELECT churner, count(*) AS n FROM obs GROUP BY churner
), rates AS (
    SELECT o.churner, u.event, sum(u.quantity) / min(n.n) AS per_account
      FROM obs o JOIN n USING (churner)
      JOIN cs.usage_events u ON u.customer_id = o.id AND u.occurred_at >= o.d - 28 AND u.occurred_at < o.d
     GROUP BY 1, 2
)
SELECT event,
       CASE WHEN event IN ('add_friend', 'send_message')
            THEN max(per_account) FILTER (WHERE churner) < 0.8 * max(per_account) FILTER (WHERE NOT churner)
            ELSE max(per_account) FILTER (WHERE churner) > 1.5 * max(per_account) FILTER (WHERE NOT churner) END
           AS churners_differ
  FROM rates WHERE event IN ('add_friend', 'send_message', 'remove_friend', 'help_view')
 GROUP BY event ORDER BY event;

-- demo data exists: another generation is refused, whatever the profile
SELECT pg_temp.try($$SELECT cs.generate_demo_data(10, 30, 1, '2026-06-30')$$);
SELECT cs.drop_demo_data() > 0 AS dropped;

------------------------------------------------------------------------------
-- The b2b default: the same rows as before the profile existed, plus its annual contract terms
------------------------------------------------------------------------------

-- the checksum of this generation on the commit before the consumer profile,
-- renewed when the b2b profile gained contractions and payment crises
-- (computed with DateStyle ISO and time zone UTC)
SET DateStyle = 'ISO, MDY';
SELECT cs.generate_demo_data(60, 45, 11, '2026-06-30') AS b2b_total \gset
SELECT :b2b_total AS b2b_total;
SELECT md5(string_agg(x, '|' ORDER BY x)) = 'f677b31c1076e39a0ab429a63efca30c' AS b2b_unchanged FROM (
  SELECT 'c' || (c.id, c.external_id, c.name, c.industry, c.size, c.mrr, c.contract_start_date, c.contract_end_date,
                 c.created_at, c.updated_at, c.segment, c.csm, c.parent_id, c.seats_licensed, c.churned_at)::text x
    FROM cs.customers c
  UNION ALL SELECT 'g' || (g.customer_id, g.archetype, g.churned_at, g.expanded_at, g.expansion_mrr, g.health_start,
                           g.health_end)::text FROM cs.demo_ground_truth g
  UNION ALL SELECT 's' || (customer_id, product, seats, mrr, started_at, ended_at)::text FROM cs.subscriptions
  UNION ALL SELECT 'k' || (customer_id, name, email, role, is_champion, left_at)::text FROM cs.contacts
  UNION ALL SELECT 'i' || (customer_id, external_id, amount, issued_at, due_date, paid_at, status)::text FROM cs.invoices
  UNION ALL SELECT 't' || (customer_id, external_id, opened_at, closed_at, priority, status, csat, subject, body)::text
    FROM cs.support_tickets
  UNION ALL SELECT 'e' || (customer_id, kind, occurred_at, notes)::text FROM cs.engagements
  UNION ALL SELECT 'n' || (customer_id, score, comment, responded_at)::text FROM cs.nps_responses
  UNION ALL SELECT 'u' || (u.customer_id, u.user_id, u.event, u.feature, u.quantity, u.occurred_at, u.source,
                           u.source_id)::text FROM cs.usage_events u) s;
-- the same as naming the profile
SELECT cs.drop_demo_data() = :b2b_total AS dropped_all;
SELECT cs.generate_demo_data(60, 45, 11, '2026-06-30', 'b2b') = :b2b_total AS named_profile_same_total;
-- b2b annual terms: contiguous from the first (created_at) to the current contract
SELECT count(DISTINCT t.customer_id) = (SELECT count(*) FROM cs.customers) AS every_customer_has_terms,
       bool_and(t.term_end = coalesce(n.next_start, c.contract_end_date)) AS contiguous_to_current,
       bool_and(t.term_start >= (c.created_at AT TIME ZONE 'UTC')::date) AS none_before_first_start,
       count(*) AS b2b_terms
  FROM cs.contract_terms t JOIN cs.customers c ON c.id = t.customer_id
 CROSS JOIN LATERAL (SELECT min(t2.term_start) AS next_start FROM cs.contract_terms t2
                      WHERE t2.customer_id = t.customer_id AND t2.term_start > t.term_start) n;
SELECT cs.drop_demo_data() > 0 AS dropped;
