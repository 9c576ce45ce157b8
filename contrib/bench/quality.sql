-- Quality on demo data with its ground truth (run by bench.sh, section quality).
-- 1. Health 30 days before churn: AUC of (1 - overall health) separating customers
--    who churn 30 days later from customers who do not churn, each scored as of a
--    date (churners: churned_at - 30; others: a hashed date in the same range).
-- 2. The deployed churn model on the same dates (these customers were never
--    trained on): AUC of the churn probability for churn within 90 days.
-- Prints: health_auc, model_auc, rows.
\set QUIET on
SELECT min(occurred_at)::date + 120 AS first_day, max(occurred_at)::date AS last_day FROM cs.usage_events \gset
CREATE TEMP TABLE q AS
SELECT c.id, c.churned_at,
       CASE WHEN c.churned_at IS NOT NULL THEN c.churned_at - 30
            ELSE date :'first_day' + abs(hashtext(c.id::text)) % greatest(date :'last_day' - 90 - date :'first_day', 1)
       END AS as_of
  FROM cs.customers c
 WHERE (c.churned_at IS NULL AND abs(hashtext(c.id::text || 'q')) % 100 < :sample_pct)
    OR c.churned_at - 30 BETWEEN date :'first_day' AND date :'last_day';
CREATE TEMP TABLE hq AS
SELECT h.customer_id, h.overall_score::float8 AS health, d.as_of
  FROM (SELECT DISTINCT as_of FROM q) d
 CROSS JOIN LATERAL cs.compute_health(ARRAY(SELECT id FROM q WHERE q.as_of = d.as_of), d.as_of::timestamptz) h;
CREATE TEMP TABLE mq AS
SELECT q.id, (q.churned_at IS NOT NULL AND q.churned_at <= q.as_of + 90)::int AS label,
       cs.predict(cs.champion('churn'), cs.features(q.id, q.as_of::timestamptz)) AS p
  FROM q;
-- AUC by the Mann-Whitney statistic with average ranks for ties
CREATE FUNCTION pg_temp.auc(scores float8[], labels int[]) RETURNS float8 LANGUAGE sql AS $$
    WITH r AS (SELECT s, l, rank() OVER (ORDER BY s) + (count(*) OVER (PARTITION BY s) - 1) / 2.0 AS rk
                 FROM unnest(scores, labels) AS u(s, l) WHERE s IS NOT NULL),
         t AS (SELECT count(*) FILTER (WHERE l = 1) AS pos, count(*) FILTER (WHERE l = 0) AS neg,
                      sum(rk) FILTER (WHERE l = 1) AS rs FROM r)
    SELECT (rs - pos * (pos + 1) / 2.0) / nullif(pos * neg, 0) FROM t
$$;
\set QUIET off
SELECT round(pg_temp.auc((SELECT array_agg(1 - health ORDER BY q.id) FROM q JOIN hq ON hq.customer_id = q.id),
                         (SELECT array_agg((q.churned_at IS NOT NULL)::int ORDER BY q.id) FROM q JOIN hq ON hq.customer_id = q.id))::numeric, 4)
         AS health_auc,
       round(pg_temp.auc((SELECT array_agg(p ORDER BY id) FROM mq), (SELECT array_agg(label ORDER BY id) FROM mq))::numeric, 4)
         AS model_auc,
       (SELECT count(*) FROM q) AS rows,
       (SELECT count(*) FROM q WHERE churned_at IS NOT NULL) AS churners;
