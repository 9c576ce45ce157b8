# Freshness benchmark (not part of the suite): 2000 customers with 40000 usage
# events, then the time from the COMMIT of a one-row load to the COMMIT of
# the customer's new health score, nine times.
#   TESTS=schema PROVE_TESTS=bench/freshness.pl bash contrib/run-tests.sh
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('bench');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cscopilot'
cscopilot.databases = 'postgres'
track_commit_timestamp = on
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION cscopilot');
my $t = time;
$node->safe_psql('postgres', q{
INSERT INTO cs.customers (external_id, name, segment, mrr, seats_licensed)
SELECT 'c' || i, 'Customer ' || i, (ARRAY['smb','mid_market','enterprise'])[1 + i % 3], 100 + i, 10 + i % 50
  FROM generate_series(1, 2000) i;
INSERT INTO cs.usage_events (customer_id, user_id, event, feature, occurred_at)
SELECT c.id, 'u' || g % 7, 'login', 'f' || g % 5, now() - (g * interval '7 hours')
  FROM cs.customers c, generate_series(1, 20) g;
});
my $load = time - $t;
ok($node->poll_query_until('postgres', 'SELECT NOT EXISTS (SELECT 1 FROM cs.dirty_customers)'), 'bulk load scored');
note(sprintf('2000 customers + 40000 events: load %.2f s, scored by the worker %.2f s after the load returned', $load, time - $t - $load));
my @lat;
for my $i (1 .. 9)
{
	$node->safe_psql('postgres', qq{
		INSERT INTO cs.nps_responses (customer_id, score, responded_at)
		SELECT id, $i, now() FROM cs.customers WHERE external_id = 'c$i'});
	$node->poll_query_until('postgres', "SELECT NOT EXISTS (SELECT 1 FROM cs.dirty_customers)") or last;
	push @lat, $node->safe_psql('postgres', qq{
		SELECT round(extract(epoch FROM
		   (SELECT pg_xact_commit_timestamp(h.xmin) FROM cs.customer_health_scores h JOIN cs.customers c ON c.id = h.customer_id
		     WHERE c.external_id = 'c$i' ORDER BY h.calculated_at DESC LIMIT 1)
		 - (SELECT pg_xact_commit_timestamp(xmin) FROM cs.nps_responses WHERE score = $i)) * 1000, 1)});
}
@lat = sort { $a <=> $b } @lat;
note('freshness ms (2000 customers): ' . join(', ', @lat) . '; median ' . $lat[4]);
is(scalar @lat, 9, 'nine small loads scored');
$node->stop;
done_testing();
