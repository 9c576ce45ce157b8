# Two sessions evaluate the same customer at the same time: one alert, not two.
# The second session's INSERT waits on the first one's uncommitted entry in the
# partial unique index (one unresolved alert per customer and rule) and, once
# the first commits, ON CONFLICT turns it into an update of that alert.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('alerts');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'cscopilot'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION cscopilot;
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm)
VALUES ('00000000-0000-0000-0000-000000000001', 'race', 'Race', 'smb', 100, 10, 'csm_a');
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score)
VALUES ('00000000-0000-0000-0000-000000000001', 'churn', 0.95);
});
my $eval = q{SELECT created || ',' || refired FROM cs.evaluate_alerts(ARRAY['00000000-0000-0000-0000-000000000001']::uuid[])};

my $s1 = $node->background_psql('postgres');
my $s2 = $node->background_psql('postgres');

$s1->query_safe('BEGIN');
is($s1->query_safe($eval), '1,0', 'session 1 raises the alert (not yet committed)');

# Session 2 evaluates too, and must wait for session 1.
$s2->query_until(qr/started/, "\\echo started\n$eval;\n");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%evaluate_alerts%'"),
	'session 2 waits on session 1');

$s1->query_safe('COMMIT');
like($s2->query_safe('SELECT 0'), qr/^0,1\n0$/, 'session 2 updates the alert session 1 committed');

is( $node->safe_psql(
		'postgres',
		'SELECT count(*) || \',\' || sum(fire_count) FROM cs.alerts'),
	'1,2',
	'one alert, fired twice');
is($node->safe_psql('postgres', q{SELECT string_agg(event, ',' ORDER BY id) FROM cs.alert_events}),
	'created', 'created once, no duplicate event');

$s1->quit;
$s2->quit;
$node->stop;
done_testing();
