-- Benchmark of cs.predict: 200,000 rows, 100 trees of depth 6, 30 features.
-- Run against a scratch database with the extension installed:
--   psql -d scratch -f contrib/bench/predict_bench.sql
-- (contrib/bench/run_bench.sh also compares with libxgboost's batch predict).
-- Prints the median of 3 runs, in microseconds per row, single core.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS cscopilot;
SET max_parallel_workers_per_gather = 0;

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

CREATE OR REPLACE FUNCTION pg_temp.time_query(q text, runs int DEFAULT 3)
RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    times float8[] := '{}';
BEGIN
    EXECUTE q;                                       -- warm the cache and the model
    FOR i IN 1..runs LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        times := times || extract(epoch FROM clock_timestamp() - t0)::float8;
    END LOOP;
    RETURN (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(times) t);
END;
$$;

SELECT round((pg_temp.time_query('SELECT sum(cs.predict(''bench'', features)) FROM bench_rows') * 1e6 / 200000)::numeric, 3)
           AS predict_us_per_row,
       round((pg_temp.time_query('SELECT sum(array_length(features, 1)) FROM bench_rows') * 1e6 / 200000)::numeric, 3)
           AS scan_only_us_per_row;
