-- Held-out metrics of the predictions in table holdout(label, p) as one JSON
-- object: AUC (Mann-Whitney with average ranks), log loss, Brier score, base
-- rate, rows, and the lift of the top decile.
WITH r AS (
    SELECT label, p, rank() OVER (ORDER BY p) AS rk, count(*) OVER (PARTITION BY p) AS ties
      FROM holdout
), ranks AS (
    SELECT label, p, rk + (ties - 1) / 2.0 AS avg_rank FROM r
), s AS (
    SELECT count(*) AS n, sum(label) AS pos, sum(avg_rank) FILTER (WHERE label = 1) AS rank_sum,
           avg(-(label * ln(greatest(p, 1e-15)) + (1 - label) * ln(greatest(1 - p, 1e-15)))) AS logloss,
           avg((p - label) ^ 2) AS brier, avg(label) AS base_rate
      FROM ranks
), top AS (
    SELECT avg(label) AS top_rate FROM (SELECT label FROM holdout ORDER BY p DESC LIMIT (SELECT count(*) / 10 FROM holdout)) t
)
SELECT jsonb_pretty(jsonb_build_object(
         'rows', s.n,
         'positives', s.pos,
         'base_rate', round(s.base_rate::numeric, 4),
         'auc', round(((s.rank_sum - s.pos * (s.pos + 1) / 2.0) / (s.pos * (s.n - s.pos)))::numeric, 4),
         'log_loss', round(s.logloss::numeric, 4),
         'brier', round(s.brier::numeric, 4),
         'top_decile_lift', round((top.top_rate / s.base_rate)::numeric, 2)))
  FROM s, top;
