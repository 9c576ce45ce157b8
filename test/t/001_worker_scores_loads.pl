# A committed load is scored by the worker without any manual call, and a
# configuration reload changes the worker's naptime.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cscopilot'
cscopilot.databases = 'postgres'
cscopilot.naptime = '60s'
max_worker_processes = 16
track_commit_timestamp = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION cscopilot');

ok($node->poll_query_until('postgres',
	"SELECT state = 'idle' FROM cs.worker_status WHERE database = 'postgres'"),
	'the worker of the database is running and idle');

# Loads after the first scheduled jobs ran; the naptime is long, so only the
# wake-up at commit can score them within the timeout.
$node->safe_psql('postgres', q{
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed)
VALUES ('00000000-0000-0000-0000-000000000001', 'acme', 'Acme', 'smb', 100, 10);
INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
SELECT '00000000-0000-0000-0000-000000000001', 'u' || i % 5, 'login', now() - i * interval '1 hour'
  FROM generate_series(1, 50) i;
});
my $t0 = time;
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM cs.customer_health_scores WHERE customer_id = '00000000-0000-0000-0000-000000000001'"
	  . " AND NOT EXISTS (SELECT 1 FROM cs.dirty_customers)"),
	'the load is scored without a manual call');
cmp_ok(time - $t0, '<', 30, 'well before the 60 s naptime');
is($node->safe_psql('postgres', 'SELECT queue_depth FROM cs.worker_status'), '0', 'queue drained');

# Freshness: from the COMMIT of a small load to the COMMIT of its score
# (commit timestamps of the two rows), several times.
my @lat;
for my $i (1 .. 7)
{
	$node->safe_psql('postgres', qq{
		INSERT INTO cs.nps_responses (customer_id, score, responded_at)
		VALUES ('00000000-0000-0000-0000-000000000001', $i, now() - interval '$i seconds')});
	$node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT 1 FROM cs.dirty_customers)") or last;
	push @lat, $node->safe_psql('postgres', qq{
		SELECT round(extract(epoch FROM
		         (SELECT pg_xact_commit_timestamp(xmin) FROM cs.customer_health_scores ORDER BY calculated_at DESC LIMIT 1)
		       - (SELECT pg_xact_commit_timestamp(xmin) FROM cs.nps_responses WHERE score = $i)) * 1000, 1)});
}
@lat = sort { $a <=> $b } @lat;
note(sprintf('freshness: commit of load to commit of score, ms: %s; median %s',
	join(', ', @lat), $lat[$#lat / 2]));
is(scalar @lat, 7, 'seven small loads scored');
cmp_ok($lat[$#lat / 2], '>', 0, 'scores commit after their loads');

# The batches' durations are kept for monitoring: the last one, and their sum
# over at least the eight batches above.
my ($batches, $last, $total) = split /\|/, $node->safe_psql('postgres',
	'SELECT batches_total, last_batch_seconds, batch_seconds_total FROM cs.metrics_worker');
cmp_ok($batches, '>=', 8, "the worker counted its batches ($batches)");
ok($last > 0 && $total >= $last, "batch durations kept: last $last s, total $total s");

# A reload changes the naptime the worker uses.
is($node->safe_psql('postgres', 'SELECT naptime_ms FROM cs.worker_status'), '60000', 'naptime before reload');
$node->append_conf('postgresql.conf', "cscopilot.naptime = '250ms'\ncscopilot.batch_size = 7\n");
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT naptime_ms = 250 AND batch_size = 7 FROM cs.worker_status"),
	'naptime and batch size after reload');

# Without a wake-up (a commit that bypasses the triggers), the naptime poll finds the work.
$node->safe_psql('postgres', q{
	SET session_replication_role = replica;
	INSERT INTO cs.dirty_customers (customer_id) VALUES ('00000000-0000-0000-0000-000000000001');
});
ok($node->poll_query_until('postgres', "SELECT NOT EXISTS (SELECT 1 FROM cs.dirty_customers)"),
	'the naptime poll scores marks that no trigger announced');

# The scheduled jobs ran once and are recorded.
is($node->safe_psql('postgres', q{
	SELECT string_agg(job || ':' || status, ',' ORDER BY job) FROM cs.job_runs}),
	'action_outcomes:succeeded,data_quality:succeeded,full_rescore:succeeded,model_checks:succeeded,partitions:succeeded,retention:succeeded',
	'scheduled jobs recorded in cs.job_runs');

$node->stop;
done_testing();
