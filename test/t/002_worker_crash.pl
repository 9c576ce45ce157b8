# kill -9 of the worker in the middle of a batch: the server restarts its
# backends, the launcher starts the worker again, and no score is lost,
# duplicated or half-written; the queue is drained afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cscopilot'
cscopilot.databases = 'postgres'
cscopilot.naptime = '500ms'
cscopilot.batch_size = 40
cscopilot.full_rescore_interval = 0
restart_after_crash = on
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION cscopilot');
ok($node->poll_query_until('postgres', "SELECT state = 'idle' FROM cs.worker_status"), 'worker idle');
# Let the once-a-day jobs finish before the load, so that only batches write scores.
ok($node->poll_query_until('postgres', "SELECT count(*) = 6 FROM cs.job_runs WHERE status <> 'running'"),
	'daily jobs done');

# Slow scoring: 25 ms per stored score, so a batch of 40 takes about a second.
$node->safe_psql('postgres', q{
CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.025); RETURN NEW; END $$;
CREATE TRIGGER slow BEFORE INSERT ON cs.customer_health_scores FOR EACH ROW EXECUTE FUNCTION public.slow();
INSERT INTO cs.customers (external_id, name, segment, mrr, seats_licensed)
SELECT 'c' || i, 'Customer ' || i, 'smb', 100, 10 FROM generate_series(1, 200) i;
});

# Wait until at least one batch committed and the next one is running, then kill the worker.
ok($node->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM cs.customer_health_scores}), 'a first batch committed');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'cscopilot: scoring a batch%' AND state = 'active'}),
	'a batch is running');
my $old_pid = $node->safe_psql('postgres', 'SELECT pid FROM cs.worker_status');
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM cs.customer_health_scores');
ok(kill('KILL', $old_pid), "kill -9 of worker $old_pid");
note("scores committed before the kill: $before");

# The postmaster restarts all backends; the launcher then starts a new worker.
ok($node->poll_query_until('postgres', "SELECT pid IS NOT NULL AND pid <> $old_pid FROM cs.worker_status"),
	'a new worker runs after crash recovery');
ok($node->poll_query_until('postgres', 'SELECT NOT EXISTS (SELECT 1 FROM cs.dirty_customers)'),
	'the queue is drained after the restart');

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cs.customers c
	 WHERE (SELECT count(*) FROM cs.customer_health_scores h WHERE h.customer_id = c.id) <> 1}),
	'0', 'every customer has exactly one health score: none lost, none duplicated');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cs.customers c
	 WHERE NOT EXISTS (SELECT 1 FROM cs.customer_features f WHERE f.customer_id = c.id)}),
	'0', 'every customer has its features');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cs.customer_health_scores h JOIN cs.customer_features f USING (customer_id)
	 WHERE f.as_of <> h.calculated_at}),
	'0', 'features and scores of each customer come from the same transaction');
is($node->safe_psql('postgres', "SELECT count(*) FROM cs.job_runs WHERE status = 'running'"), '0',
	'no job run left running');
like(slurp_file($node->logfile), qr/terminated by signal 9: Killed/, 'the crash is in the log');

$node->stop;
done_testing();
