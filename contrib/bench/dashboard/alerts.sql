-- The open risk alerts page: the 50 most severe by MRR at risk.
SELECT name, assigned_to, severity, rule, mrr_at_risk, churn_risk, band, top_suggestion
  FROM cs.risk_alerts
 ORDER BY severity_rank DESC, mrr_at_risk DESC
 LIMIT 50;
