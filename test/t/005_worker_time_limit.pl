# cscopilot.max_batch_runtime: a batch over the limit is cancelled, recorded
# and retried smaller; a customer over the limit on its own is parked.  Then
# the same database without shared_preload_libraries: loads and cs.refresh()
# work, the worker-only features say why they cannot.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('limit');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cscopilot'
cscopilot.databases = 'postgres'
cscopilot.naptime = '200ms'
cscopilot.batch_size = 16
cscopilot.max_batch_runtime = '400ms'
cscopilot.full_rescore_interval = 0
max_worker_processes = 16
});
$node->start;
# No churn model: this test times health scoring alone (see the slow trigger).
$node->safe_psql('postgres', 'CREATE EXTENSION cscopilot; DELETE FROM cs.models;');
ok($node->poll_query_until('postgres', "SELECT count(*) = 6 FROM cs.job_runs WHERE status <> 'running'"),
	'daily jobs done');

# 50 ms per score, one customer takes a whole second.
$node->safe_psql('postgres', q{
CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(CASE WHEN NEW.customer_id = '00000000-0000-0000-0000-000000000099' THEN 1 ELSE 0.05 END);
    RETURN NEW;
END $$;
CREATE TRIGGER slow BEFORE INSERT ON cs.customer_health_scores FOR EACH ROW EXECUTE FUNCTION public.slow();
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(i::text, 2, '0'))::uuid, 'c' || i, 'Customer ' || i, 'smb', 100, 10
  FROM generate_series(1, 20) i;
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed)
VALUES ('00000000-0000-0000-0000-000000000099', 'slow', 'Slow', 'smb', 100, 10);
});

ok($node->poll_query_until('postgres', 'SELECT queue_depth = 0 AND parked = 1 FROM cs.worker_status'),
	'the queue drains; the customer over the limit is parked');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT customer_id) FROM cs.customer_health_scores'), '20',
	'the twenty others are scored');
is($node->safe_psql('postgres', 'SELECT parked_customers FROM cs.worker_status'),
	'{00000000-0000-0000-0000-000000000099}', 'the slow one is reported');
is($node->safe_psql('postgres', q{
	SELECT count(*) > 0 AND bool_and(error = 'canceling statement due to statement timeout')
	  FROM cs.job_runs WHERE job = 'batch'}), 't', 'cancelled batches are recorded in cs.job_runs');
is($node->safe_psql('postgres', 'SELECT last_batch_status FROM cs.worker_status'), 'failed',
	'the last batch (the slow customer alone) failed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cs.customer_health_scores h GROUP BY customer_id HAVING count(*) > 1'),
	'', 'no customer scored twice');

# Without shared_preload_libraries.
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->restart;
is($node->safe_psql('postgres', 'SELECT state FROM cs.worker_status'), 'not_preloaded', 'status says not_preloaded');
my ($rc, $out, $err) = $node->psql('postgres', 'SELECT cs.wake_worker()');
like($err, qr/requires cscopilot in shared_preload_libraries.*\n.*\nHINT:.*pg_cron/s, 'cs.wake_worker() errors with a hint');
$node->safe_psql('postgres', q{
	INSERT INTO cs.nps_responses (customer_id, score, responded_at) VALUES ('00000000-0000-0000-0000-000000000001', 9, now())});
is($node->safe_psql('postgres', 'SELECT count(*) FROM cs.dirty_customers WHERE NOT parked'), '1', 'loads still mark customers dirty');
is($node->safe_psql('postgres', 'SELECT cs.refresh()'), '1', 'cs.refresh() by hand scores them');

$node->stop;
done_testing();
