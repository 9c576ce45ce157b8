-- Numbered customer ids for pgbench's random picks (bench.sh, section dashboard).
DROP TABLE IF EXISTS public.bench_customers;
CREATE TABLE public.bench_customers AS
SELECT row_number() OVER (ORDER BY id)::int AS n, id, csm FROM cs.customers WHERE churned_at IS NULL;
CREATE UNIQUE INDEX ON public.bench_customers (n);
ANALYZE public.bench_customers;
SELECT count(*) FROM public.bench_customers;
