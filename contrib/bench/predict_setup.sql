-- Data and model of the predict benchmark: bench_rows, 200,000 rows of 30
-- features (1 in 17 missing), and model 'bench', 100 trees of depth 6.
-- Used by predict_bench.sql and by bench.sh (section predict).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS cscopilot;

DROP TABLE IF EXISTS bench_rows;
CREATE TABLE bench_rows AS
SELECT g AS id,
       array(SELECT CASE WHEN hashint4(g * 31 + j) % 17 = 0 THEN 'NaN'::float4
                         ELSE ((hashint4(g * 31 + j) % 10000) / 1000.0)::float4 END
               FROM generate_series(1, 30) j) AS features
  FROM generate_series(1, 200000) g;
VACUUM ANALYZE bench_rows;

-- 100 rounds, no early stopping: exactly 100 trees of depth 6.
DELETE FROM cs.models WHERE name = 'bench';
SELECT cs.train_model('bench', 'custom',
    $$SELECT features,
             (coalesce(nullif(features[1], 'NaN'), 0) + coalesce(nullif(features[2], 'NaN'), 0) * features[3] / 10
              + (hashint4(id) % 100) / 20.0 > 5) AS label
        FROM bench_rows WHERE id <= 50000$$,
    '{"max_depth": 6, "num_round": 100, "early_stopping_rounds": 0, "eta": 0.1}') AS bench_id;
SELECT (metrics->>'num_trees')::int AS trees, array_length(feature_names, 1) AS features
  FROM cs.models WHERE name = 'bench';
