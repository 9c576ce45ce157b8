-- cs.refresh of one random customer through the refresh pipeline (bench.sh, section onecustomer).
\set n random(1, :accounts)
SELECT cs.refresh(ARRAY[b.id]) FROM public.bench_customers b WHERE b.n = :n;
