# A load that commits while the worker scores the same customer is not lost:
# the customer stays (or becomes again) dirty and is scored with the new data.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('concurrent');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cscopilot'
cscopilot.databases = 'postgres'
cscopilot.naptime = '1s'
cscopilot.batch_size = 10
cscopilot.full_rescore_interval = 0
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION cscopilot');
ok($node->poll_query_until('postgres', "SELECT count(*) = 6 FROM cs.job_runs WHERE status <> 'running'"),
	'daily jobs done');

$node->safe_psql('postgres', q{
CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.1); RETURN NEW; END $$;
CREATE TRIGGER slow BEFORE INSERT ON cs.customer_health_scores FOR EACH ROW EXECUTE FUNCTION public.slow();
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(i::text, 2, '0'))::uuid, 'c' || i, 'Customer ' || i, 'smb', 100, 10
  FROM generate_series(1, 10) i;
});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'cscopilot: scoring a batch%' AND state = 'active'}),
	'the batch with customer 1 is running');

# This load waits for the batch (it holds customer 1's mark) and marks it again after.
$node->safe_psql('postgres', q{
	INSERT INTO cs.nps_responses (customer_id, score, responded_at)
	VALUES ('00000000-0000-0000-0000-000000000001', 9, now())});
ok($node->poll_query_until('postgres', 'SELECT NOT EXISTS (SELECT 1 FROM cs.dirty_customers)'), 'queue drained');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cs.customer_health_scores WHERE customer_id = '00000000-0000-0000-0000-000000000001'}),
	'2', 'customer 1 scored twice: by the batch and again after the load');
is($node->safe_psql('postgres', q{
	SELECT f.features[c.position] FROM cs.customer_features f, cs.feature_catalog c
	 WHERE c.name = 'last_nps' AND f.customer_id = '00000000-0000-0000-0000-000000000001'}),
	'9', 'its stored features include the concurrent load');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cs.customer_health_scores WHERE customer_id <> '00000000-0000-0000-0000-000000000001'}),
	'9', 'the others scored once');

$node->stop;
done_testing();
