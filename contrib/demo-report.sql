-- What a CSM looks at first, from raw signals only (no scores yet).
--   psql -f contrib/demo-report.sql      (run by `make demo` after generating data)
-- "Today" is the day the data was last updated (end_date for demo data).
\pset null '-'
\pset footer off
SET search_path = cs, pg_catalog;

SELECT coalesce(max(updated_at)::date, current_date) AS as_of FROM cs.customers \gset

-- Usage per account: the last 30 days against the 30 days before.
CREATE TEMP TABLE report_usage AS
SELECT customer_id,
       count(*) FILTER (WHERE occurred_at >= date :'as_of' - 29) AS events_30d,
       count(*) FILTER (WHERE occurred_at < date :'as_of' - 29) AS events_prev_30d,
       count(DISTINCT user_id) FILTER (WHERE occurred_at >= date :'as_of' - 29) AS users_30d
  FROM cs.usage_events
 WHERE occurred_at >= date :'as_of' - 59 AND occurred_at < date :'as_of' + 1
 GROUP BY customer_id;
CREATE UNIQUE INDEX ON report_usage (customer_id);
ANALYZE report_usage;

\echo
\echo '== Portfolio by segment, as of' :as_of
SELECT CASE WHEN grouping(segment) = 1 THEN 'total' ELSE coalesce(segment, 'unknown') END AS segment,
       count(*) FILTER (WHERE churned_at IS NULL) AS accounts,
       to_char(sum(mrr) FILTER (WHERE churned_at IS NULL), '999G999G990') AS mrr,
       round(100.0 * sum(mrr) FILTER (WHERE churned_at IS NULL)
             / nullif((SELECT sum(mrr) FROM cs.customers WHERE churned_at IS NULL), 0), 1) AS mrr_pct,
       round(avg(seats_licensed) FILTER (WHERE churned_at IS NULL)) AS avg_seats,
       count(*) FILTER (WHERE churned_at > date :'as_of' - 90) AS churned_90d,
       to_char(sum(mrr) FILTER (WHERE churned_at > date :'as_of' - 90), '999G999G990') AS churned_mrr_90d,
       count(*) FILTER (WHERE churned_at IS NULL AND contract_end_date <= date :'as_of' + 90) AS renewing_90d
  FROM cs.customers
 GROUP BY ROLLUP (segment)
 ORDER BY grouping(segment), sum(mrr) FILTER (WHERE churned_at IS NULL) DESC NULLS LAST;

\echo
\echo '== The 15 largest accounts renewing within 90 days'
SELECT c.name, c.external_id, c.segment, c.csm,
       to_char(c.mrr, '999G999G990') AS mrr,
       c.contract_end_date AS renews, c.contract_end_date - date :'as_of' AS days_left,
       c.seats_licensed AS seats, coalesce(u.users_30d, 0) AS users_30d,
       coalesce(u.events_30d, 0) AS events_30d,
       CASE WHEN coalesce(u.events_prev_30d, 0) = 0 THEN NULL
            ELSE round(100.0 * (u.events_30d - u.events_prev_30d) / u.events_prev_30d) END AS usage_trend_pct,
       (SELECT count(*) FROM cs.support_tickets t WHERE t.customer_id = c.id AND t.closed_at IS NULL) AS open_tickets,
       (SELECT n.score FROM cs.nps_responses n WHERE n.customer_id = c.id
         ORDER BY n.responded_at DESC LIMIT 1) AS last_nps,
       EXISTS (SELECT 1 FROM cs.contacts p WHERE p.customer_id = c.id AND p.is_champion AND p.left_at IS NULL)
         AS has_champion
  FROM cs.customers c LEFT JOIN report_usage u ON u.customer_id = c.id
 WHERE c.churned_at IS NULL
   AND c.contract_end_date BETWEEN date :'as_of' AND date :'as_of' + 90
 ORDER BY c.mrr DESC, c.external_id
 LIMIT 15;

\echo
\echo '== Biggest usage drops (active accounts, last 30 days vs the 30 before, at least 50 events before)'
SELECT c.name, c.external_id, c.segment, c.csm, to_char(c.mrr, '999G999G990') AS mrr,
       u.events_prev_30d, u.events_30d,
       round(100.0 * (u.events_30d - u.events_prev_30d) / u.events_prev_30d) AS usage_trend_pct,
       c.contract_end_date AS renews
  FROM report_usage u JOIN cs.customers c ON c.id = u.customer_id
 WHERE c.churned_at IS NULL AND u.events_prev_30d >= 50
   AND u.events_30d < 0.6 * u.events_prev_30d
 ORDER BY c.mrr * (u.events_prev_30d - u.events_30d) / u.events_prev_30d DESC, c.external_id
 LIMIT 15;

\echo
\echo '== Open urgent and high-priority tickets, oldest first'
SELECT c.name, c.csm, t.external_id, t.priority, t.status,
       round(extract(epoch FROM (date :'as_of' + 1) - t.opened_at) / 86400.0, 1) AS age_days,
       left(t.subject, 50) AS subject
  FROM cs.support_tickets t JOIN cs.customers c ON c.id = t.customer_id
 WHERE t.closed_at IS NULL AND t.priority IN ('urgent', 'high') AND c.churned_at IS NULL
 ORDER BY t.priority = 'urgent' DESC, t.opened_at, t.external_id
 LIMIT 15;

\echo
\echo '== Overdue and failed invoices by account'
SELECT c.name, c.external_id, c.csm,
       count(*) AS invoices,
       to_char(sum(i.amount), '999G999G990D00') AS amount_due,
       greatest(max(date :'as_of' - i.due_date), 0) AS max_days_overdue,
       string_agg(DISTINCT i.status, ', ') AS statuses
  FROM cs.invoices i JOIN cs.customers c ON c.id = i.customer_id
 WHERE c.churned_at IS NULL
   AND (i.status = 'failed' OR (i.status = 'open' AND i.due_date < date :'as_of'))
 GROUP BY c.id, c.name, c.external_id, c.csm
 ORDER BY sum(i.amount) DESC, c.external_id
 LIMIT 15;

\echo
\echo '== More active users than licensed seats (upsell conversations, by MRR of the extra seats)'
SELECT c.name, c.external_id, c.segment, c.csm, c.seats_licensed AS seats, u.users_30d,
       u.users_30d - c.seats_licensed AS over_by, to_char(c.mrr, '999G999G990') AS mrr
  FROM report_usage u JOIN cs.customers c ON c.id = u.customer_id
 WHERE c.churned_at IS NULL AND u.users_30d > c.seats_licensed
 ORDER BY (u.users_30d - c.seats_licensed) * c.mrr / greatest(c.seats_licensed, 1) DESC, c.external_id
 LIMIT 15;

\echo
\echo '== Book of business per CSM'
SELECT c.csm, count(*) AS accounts, to_char(sum(c.mrr), '999G999G990') AS mrr,
       count(*) FILTER (WHERE c.contract_end_date <= date :'as_of' + 90) AS renewing_90d,
       count(*) FILTER (WHERE u.events_prev_30d >= 20 AND u.events_30d < 0.6 * u.events_prev_30d) AS usage_dropping,
       count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM cs.contacts p WHERE p.customer_id = c.id
                                            AND p.is_champion AND p.left_at IS NULL)) AS no_champion,
       count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM cs.engagements e WHERE e.customer_id = c.id
                                            AND e.occurred_at >= date :'as_of' - 60)) AS no_touch_60d
  FROM cs.customers c LEFT JOIN report_usage u ON u.customer_id = c.id
 WHERE c.churned_at IS NULL
 GROUP BY c.csm
 ORDER BY c.csm;

DROP TABLE report_usage;
RESET search_path;
