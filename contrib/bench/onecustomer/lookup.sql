-- Baseline: one random customer's rows fetched from each signal table through
-- its (customer_id, time) index, over the windows cs.compute_features reads,
-- with no computation (count(t.*) makes every row come from the heap).
\set n random(1, :accounts)
SELECT (SELECT count(c.*) FROM cs.customers c WHERE c.id = b.id),
       (SELECT count(u.*) FROM cs.usage_events u
         WHERE u.customer_id = b.id AND u.occurred_at > now() - interval '60 days' AND u.occurred_at <= now()),
       (SELECT count(t.*) FROM cs.support_tickets t WHERE t.customer_id = b.id AND t.opened_at <= now()),
       (SELECT count(i.*) FROM cs.invoices i WHERE i.customer_id = b.id AND i.issued_at <= now()::date),
       (SELECT count(e.*) FROM cs.engagements e WHERE e.customer_id = b.id AND e.occurred_at <= now()),
       (SELECT count(r.*) FROM cs.nps_responses r WHERE r.customer_id = b.id AND r.responded_at <= now()),
       (SELECT count(k.*) FROM cs.contacts k WHERE k.customer_id = b.id),
       (SELECT count(s.*) FROM cs.subscriptions s WHERE s.customer_id = b.id)
  FROM public.bench_customers b
 WHERE b.n = :n;
