-- What a CSM looks at first after `make demo`: scores, alerts and the reasons
-- behind them, then the raw signals they come from.
--   psql -f contrib/demo-report.sql      (run by `make demo` after scoring)
-- "Today" is the day the data was last updated (end_date for demo data).
\pset null '-'
\pset footer off
SET search_path = cs, pg_catalog;

SELECT coalesce(max(updated_at)::date, current_date) AS as_of FROM cs.customers \gset

\echo
\echo '== Portfolio per CSM: accounts, MRR, MRR at risk, health bands, open alerts'
SELECT csm, sum(accounts) AS accounts, to_char(sum(mrr), '999G999G990') AS mrr,
       to_char(sum(mrr_at_risk), '999G999G990') AS mrr_at_risk,
       sum(red) AS red, sum(yellow) AS yellow, sum(green) AS green, sum(open_alerts) AS open_alerts
  FROM cs.portfolio_summary GROUP BY csm ORDER BY sum(mrr_at_risk) DESC, csm;

\echo
\echo '== Red accounts renewing soonest: why they are red, their 12-week trend, churn risk'
SELECT name, segment, csm, to_char(mrr, '999G990') AS mrr, renewal_date,
       overall_score AS health, trend_arrow AS t, sparkline, top_driver,
       round(churn_risk, 2) AS churn_risk, top_risk_factor
  FROM cs.account_health_overview
 WHERE band = 'red' AND renewal_date >= date :'as_of'
 ORDER BY renewal_date, mrr DESC
 LIMIT 12;

\echo
\echo '== Open risk alerts by severity and MRR, with the suggested next action'
SELECT name, assigned_to AS csm, severity, rule, to_char(mrr_at_risk, '999G990') AS mrr,
       round(churn_risk, 2) AS churn_risk, band, top_suggestion
  FROM cs.risk_alerts
 ORDER BY severity_rank DESC, mrr_at_risk DESC, name
 LIMIT 15;

\echo
\echo '== Why the riskiest large account is at risk (SHAP contributions, log-odds; + raises risk)'
SELECT customer_id AS riskiest, name AS riskiest_name FROM cs.account_health_overview
 WHERE churn_risk IS NOT NULL AND mrr >= 1000 ORDER BY churn_risk DESC, mrr DESC LIMIT 1 \gset
\echo :riskiest_name
SELECT feature, round(value::numeric, 2) AS value, round(contribution::numeric, 3) AS contribution
  FROM cs.explain_risk(:'riskiest', 6);

\echo
\echo '== Opportunity pipeline: largest expected MRR'
SELECT name, csm, kind, product, round(score, 2) AS score, to_char(expected_mrr, '999G990') AS expected_mrr, band
  FROM cs.opportunity_pipeline WHERE status = 'open'
 ORDER BY expected_mrr DESC NULLS LAST, name LIMIT 10;

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
