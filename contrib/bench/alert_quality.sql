-- Alert quality on demo data with its ground truth (bench.sh, section alerts).
-- Replays the alert rules weekly over the generated window: at each date d, the
-- features, health and churn risk as of d (point-in-time, so no rule sees the
-- future), and every enabled rule's condition on them.  Opportunity scores are
-- not replayed (rules on them do not fire here).  Customers: every churner and a
-- :sample_pct % sample of the others.
--   recall: churners (with 120 days of history before churn) for which a risk
--           rule held at some weekly date between 90 and 30 days before churn
--   precision: customers for which a risk rule held at a date with 90 days of
--           follow-up: share that churned within 90 days, and share that churned
--           or were genuinely at risk (archetype at_risk, recovering or a churner)
--   opportunity: customers for which seat_upsell held: share that expanded after
\set QUIET on
SET jit = off;
SELECT min(occurred_at)::date AS first_day, max(occurred_at)::date AS last_day FROM cs.usage_events \gset
CREATE TEMP TABLE aq_customers AS
SELECT c.id, c.churned_at, g.archetype, g.expanded_at
  FROM cs.customers c JOIN cs.demo_ground_truth g ON g.customer_id = c.id
 WHERE c.churned_at IS NOT NULL OR abs(hashtext(c.id::text || 'aq')) % 100 < :sample_pct;
CREATE TEMP TABLE aq_dates AS
SELECT d::date AS d FROM generate_series(date :'first_day' + 60, date :'last_day', interval '7 days') d;
CREATE TEMP TABLE aq_features AS
SELECT x.d, f.customer_id, f.features
  FROM aq_dates x
 CROSS JOIN LATERAL cs.compute_features(ARRAY(SELECT id FROM aq_customers
                                               WHERE churned_at IS NULL OR churned_at > x.d), x.d::timestamptz) f;
CREATE TEMP TABLE aq_eval AS
SELECT f.d, f.customer_id, h.overall_score, h.band, f.features,
       cs.predict(cs.champion('churn'), f.features) AS churn_risk
  FROM aq_features f
  JOIN (SELECT x.d, h.* FROM aq_dates x
         CROSS JOIN LATERAL cs.compute_health(ARRAY(SELECT id FROM aq_customers
                                                     WHERE churned_at IS NULL OR churned_at > x.d), x.d::timestamptz) h) h
    ON h.d = f.d AND h.customer_id = f.customer_id;
CREATE TEMP TABLE aq_fired AS
SELECT e.d, e.customer_id, r.name AS rule, r.alert_type
  FROM aq_eval e
 CROSS JOIN cs.alert_rules r
 WHERE r.enabled
   AND cs.condition_holds(r.condition,
         jsonb_build_object('features', cs.feature_map(e.features),
                            'scores', jsonb_build_object('churn_risk', round(e.churn_risk::numeric, 2),
                                                         'overall_score', e.overall_score),
                            'band', e.band));
\set QUIET off
-- overall figures
WITH churners AS (
    SELECT a.id, EXISTS (SELECT 1 FROM aq_fired f WHERE f.customer_id = a.id AND f.alert_type = 'risk'
                            AND f.d BETWEEN a.churned_at - 90 AND a.churned_at - 30) AS warned
      FROM aq_customers a WHERE a.churned_at >= date :'first_day' + 120
), alerted AS (
    SELECT a.id, a.churned_at, a.archetype, min(f.d) AS first_fired
      FROM aq_fired f JOIN aq_customers a ON a.id = f.customer_id
     WHERE f.alert_type = 'risk' AND f.d <= date :'last_day' - 90
     GROUP BY a.id, a.churned_at, a.archetype
), upsell AS (
    SELECT a.id, a.expanded_at, min(f.d) AS first_fired
      FROM aq_fired f JOIN aq_customers a ON a.id = f.customer_id
     WHERE f.rule = 'seat_upsell' GROUP BY a.id, a.expanded_at
)
SELECT (SELECT count(*) FROM churners) AS churners,
       (SELECT round(avg(warned::int), 3) FROM churners) AS recall_30d_before,
       (SELECT count(*) FROM alerted) AS alerted,
       (SELECT round(avg((churned_at IS NOT NULL AND churned_at <= first_fired + 90)::int), 3) FROM alerted) AS precision_churned_90d,
       (SELECT round(avg((archetype IN ('declining_churn', 'sudden_churn', 'at_risk', 'recovering'))::int), 3)
          FROM alerted) AS precision_at_risk,
       (SELECT round(avg((archetype IN ('declining_churn', 'sudden_churn', 'at_risk', 'recovering'))::int), 3)
          FROM aq_customers) AS at_risk_base_rate,
       (SELECT count(*) FROM upsell) AS upsell_alerted,
       (SELECT round(avg((expanded_at > first_fired)::int), 3) FROM upsell) AS upsell_expanded,
       (SELECT round(avg((expanded_at IS NOT NULL)::int), 3) FROM aq_customers WHERE churned_at IS NULL) AS expansion_base_rate;
-- per rule
SELECT f.rule, count(DISTINCT f.customer_id) AS customers,
       round(avg((a.archetype IN ('declining_churn', 'sudden_churn', 'at_risk', 'recovering'))::int), 3) AS at_risk_share
  FROM aq_fired f JOIN aq_customers a ON a.id = f.customer_id
 GROUP BY f.rule ORDER BY f.rule;
