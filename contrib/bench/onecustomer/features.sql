-- cs.features of one random customer (bench.sh, section onecustomer).
\set n random(1, :accounts)
SELECT cs.features(b.id) FROM public.bench_customers b WHERE b.n = :n;
