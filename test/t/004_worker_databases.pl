# Several databases on one server: each listed database gets its own worker
# (started on reload); a listed database without the extension is reported
# once, and one that does not exist is retried slowly.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('multi');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cscopilot'
cscopilot.naptime = '30s'
max_worker_processes = 16
});
$node->start;
for my $db (qw(db1 db2 plain))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
}
for my $db (qw(db1 db2))
{
	$node->safe_psql($db, 'CREATE EXTENSION cscopilot');
	is($node->safe_psql($db, 'SELECT state FROM cs.worker_status'), 'not_configured', "$db: no worker yet");
}

$node->append_conf('postgresql.conf', "cscopilot.databases = 'db1, db2, plain, ghost'\n");
$node->reload;
for my $db (qw(db1 db2))
{
	ok($node->poll_query_until($db, "SELECT state = 'idle' FROM cs.worker_status WHERE database = current_database()"),
		"$db: worker started by the reload");
}
ok($node->poll_query_until('db1', "SELECT state = 'no_extension' FROM cs.worker_status WHERE database = 'plain'"),
	'plain: the worker waits for the extension');
is($node->safe_psql('db1', 'SELECT string_agg(database, \',\' ORDER BY database) FROM cs.worker_status'),
	'db1,db2,ghost,plain', 'one status row per database');
is($node->safe_psql('db1', "SELECT state FROM cs.worker_status WHERE database = 'ghost'"), 'stopped',
	'a database that does not exist has no running worker');
isnt($node->safe_psql('db1', "SELECT pid FROM cs.worker_status WHERE database = 'db1'"),
	$node->safe_psql('db1', "SELECT pid FROM cs.worker_status WHERE database = 'db2'"), 'two workers');

for my $db (qw(db1 db2))
{
	$node->safe_psql($db, qq{
		INSERT INTO cs.customers (external_id, name, segment, mrr, seats_licensed)
		SELECT '$db-' || i, 'Customer ' || i, 'smb', 100, 10 FROM generate_series(1, 5) i});
}
for my $db (qw(db1 db2))
{
	ok($node->poll_query_until($db, q{
		SELECT (SELECT count(DISTINCT customer_id) FROM cs.customer_health_scores) = 5
		   AND NOT EXISTS (SELECT 1 FROM cs.dirty_customers)}), "$db: load scored by its worker");
}
is($node->safe_psql('db1', "SELECT count(*) FROM cs.customers WHERE external_id LIKE 'db2-%'"), '0',
	'databases stay separate');
# Each worker scored its own five customers in batches, not the other's too.
ok($node->poll_query_until('db1', q{
	SELECT string_agg(database || ':' || customers_scored, ',' ORDER BY database) = 'db1:5,db2:5'
	  FROM cs.worker_status WHERE database IN ('db1', 'db2')}),
	'each worker scored exactly the five customers of its own database');

# The worker of "plain" checks for the extension on every wake-up (a reload
# wakes it) and sets its activity, with a new query_start, each time.  Once it
# has checked again, the log must still hold one report, not one per check.
my $plain_check = q{SELECT max(query_start) FROM pg_stat_activity
	WHERE backend_type = 'cscopilot worker' AND datname = 'plain' AND query = 'cscopilot: checking the extension'};
ok($node->poll_query_until('postgres', "SELECT ($plain_check) IS NOT NULL"), 'plain: the worker checked for the extension');
my $first_check = $node->safe_psql('postgres', $plain_check);
$node->reload;
ok($node->poll_query_until('postgres', "SELECT ($plain_check) > '$first_check'"),
	'plain: the worker checked again after a wake-up');

# The failure of "ghost" is in the log; the launcher reconsiders its workers at
# least every 5 s (and at once when one exits), so 6 s after the failure a
# launcher without back-off would have restarted it at least once more.
my $ghost_failed = qr/^(\S+ \S+ \S+) .*database "ghost" does not exist/m;
$node->wait_for_log(qr/database "ghost" does not exist/);
my ($ghost_at) = (slurp_file($node->logfile) =~ $ghost_failed);
ok(defined $ghost_at, 'ghost: the failure is logged with a time');
ok($node->poll_query_until('postgres', "SELECT now() > '$ghost_at'::timestamptz + interval '6 s'"),
	'ghost: six seconds passed since its worker failed');

my $log = slurp_file($node->logfile);
my @missing = ($log =~ /extension cscopilot is not installed in database "plain"/g);
is(scalar @missing, 1, 'the database without the extension is reported once');
is(scalar(grep { /FATAL/ && !/"ghost"/ } split /\n/, $log), 0, 'no other worker failed');
my @ghost = ($log =~ /database "ghost" does not exist/g);
cmp_ok(scalar @ghost, '<=', 2, 'a missing database is retried slowly, not in a crash loop');

# Dropping a database from the list stops its worker.
$node->append_conf('postgresql.conf', "cscopilot.databases = 'db1'\n");
$node->reload;
ok($node->poll_query_until('db1', "SELECT string_agg(database, ',') = 'db1' FROM cs.worker_status"),
	'workers of unlisted databases stop');
ok($node->poll_query_until('db2', "SELECT state = 'not_configured' FROM cs.worker_status WHERE database = current_database()"),
	'db2 says it is not configured');

# cscopilot.enabled = off stops the workers; on starts them again.
$node->append_conf('postgresql.conf', "cscopilot.enabled = off\n");
$node->reload;
ok($node->poll_query_until('db1', "SELECT state = 'disabled' AND pid IS NULL FROM cs.worker_status"),
	'enabled = off: the worker stops and says disabled');
$node->append_conf('postgresql.conf', "cscopilot.enabled = on\n");
$node->reload;
ok($node->poll_query_until('db1', "SELECT state = 'idle' AND pid IS NOT NULL FROM cs.worker_status"),
	'enabled = on: the worker runs again');

$node->stop;
done_testing();
