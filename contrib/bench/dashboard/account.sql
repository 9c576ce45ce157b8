-- One account's detail: its overview row, its open alerts, and the SHAP explanation
-- of its stored churn score (the feature vector the score was computed from).
\set n random(1, :accounts)
SELECT o.*,
       (SELECT jsonb_agg(a.title) FROM cs.risk_alerts a WHERE a.customer_id = o.customer_id) AS alerts,
       (SELECT jsonb_agg(e) FROM cs.customer_features f,
               LATERAL cs.explain(cs.champion('churn'), f.features, 5) e
         WHERE f.customer_id = o.customer_id) AS explanation
  FROM public.bench_customers b JOIN cs.account_health_overview o ON o.customer_id = b.id
 WHERE b.n = :n;
