-- COPY of :n usage events with the load triggers on, and with them off
-- (session_replication_role = replica skips them); alternating runs, the file
-- written once here; bench.sh times the runs.
\set QUIET on
SET client_min_messages = warning;
TRUNCATE cs.usage_events, cs.dirty_customers;
COPY (WITH ids AS (SELECT array_agg(id ORDER BY id) AS a, count(*) AS n FROM cs.customers)
      SELECT ids.a[1 + (g * 31) % ids.n], 'u' || (g % 50), 'session', 'feature_' || (g % 9), 1 + g % 7,
             date_trunc('month', now()) - interval '30 days' + make_interval(secs => (g::bigint * 7919) % (86400 * 60))
        FROM ids, generate_series(1, :n) g)
  TO :'file';
