-- A CSM's account overview: their 50 largest accounts with health, trend and risk.
\set c random(1, 10)
SELECT name, segment, mrr, renewal_date, overall_score, band, trend_arrow, sparkline, top_driver,
       churn_risk, top_risk_factor
  FROM cs.account_health_overview
 WHERE csm = 'csm_' || lpad(:c::text, 2, '0')
 ORDER BY mrr DESC
 LIMIT 50;
