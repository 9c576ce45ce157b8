-- Throughput of the text functions on short texts (support-ticket subjects and
-- sentences, 20 to 120 bytes), one backend, parallel query off.
--   psql -v n=200000 -v runs=3 -f contrib/bench/text.sql
-- Prints one line per function: name, texts, median seconds, texts per second.
\set QUIET on
SET max_parallel_workers_per_gather = 0;
SET jit = off;
CREATE TEMP TABLE bench_texts AS
SELECT g, (ARRAY['Login fails again, very frustrating!', 'Thanks, that worked :)',
                 'We were charged twice on our invoice.', 'How do I add a user to a second team?',
                 'The dashboard is really slow since the update.', 'Not happy with the support lately.',
                 'Great job, the team loves the new reports!', 'Export to CSV is missing the date column.',
                 'URGENT: production is down, please call me.', 'The API sync is not working but support was helpful.',
                 'Please cancel our subscription at renewal.', 'It is good, not great.'])[1 + g % 12]
          || ' #' || g AS body
  FROM generate_series(1, :n) g;
-- load the lexicon and warm the cache before timing
SELECT count(cs.sentiment(body)) FROM bench_texts WHERE g <= 10 \gset
CREATE TEMP TABLE bench_times (fn text, run int, secs float8);
CREATE FUNCTION pg_temp.time_it(fn text, q text, runs int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
BEGIN
    FOR r IN 1..runs LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        INSERT INTO bench_times VALUES (fn, r, extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
END $$;
\o /dev/null
SELECT pg_temp.time_it('baseline (length)', 'SELECT count(length(body)) FROM bench_texts', :runs);
SELECT pg_temp.time_it('cs.sentiment', 'SELECT count(cs.sentiment(body)) FROM bench_texts', :runs);
SELECT pg_temp.time_it('cs.tone', 'SELECT count(cs.tone(body)) FROM bench_texts', :runs);
SELECT pg_temp.time_it('cs.ticket_category', 'SELECT count(cs.ticket_category(body)) FROM bench_texts WHERE g <= ' || (:n / 10), :runs);
\o
\pset format unaligned
\pset tuples_only on
\pset fieldsep ' '
SELECT replace(fn, ' ', '_'), CASE WHEN fn = 'cs.ticket_category' THEN :n / 10 ELSE :n END AS texts,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY secs)::numeric, 4) AS secs,
       round((CASE WHEN fn = 'cs.ticket_category' THEN :n / 10 ELSE :n END
              / percentile_cont(0.5) WITHIN GROUP (ORDER BY secs))::numeric) AS texts_per_s
  FROM bench_times GROUP BY fn ORDER BY fn;
