-- cs.churn_risk of one random customer (bench.sh, section onecustomer).
\set n random(1, :accounts)
SELECT cs.churn_risk(b.id) FROM public.bench_customers b WHERE b.n = :n;
