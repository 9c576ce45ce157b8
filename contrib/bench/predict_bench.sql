-- Benchmark of cs.predict: 200,000 rows, 100 trees of depth 6, 30 features.
-- Run against a scratch database with the extension installed:
--   psql -d scratch -f contrib/bench/predict_bench.sql
-- (make bench, section predict, also compares with libxgboost, PL/Python and a
-- client pipeline).  Prints the median of 3 runs, in microseconds per row, single core.
\ir predict_setup.sql
SET max_parallel_workers_per_gather = 0;

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
