# The workers start only once recovery has finished: nothing runs on a
# standby; after promotion the launcher starts and scores what is dirty.
# The standby's postmaster starts the background workers allowed in recovery
# when it opens for read-only connections; the launcher, if it ran, would take
# a worker slot and log at once.  The evidence that enough time passed for
# that: the primary's worker runs a whole cycle after the standby opened, and
# after promotion the same log line does appear.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $conf = qq{
shared_preload_libraries = 'cscopilot'
cscopilot.databases = 'postgres'
cscopilot.naptime = '500ms'
max_worker_processes = 16
};
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION cscopilot');
ok($primary->poll_query_until('postgres', "SELECT state = 'idle' FROM cs.worker_status"), 'primary: worker idle');
$primary->backup('bk');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$standby->wait_for_log(qr/database system is ready to accept read-only connections/);
is($standby->safe_psql('postgres', 'SELECT cs._workers_available()'), 't',
	'standby: the library is preloaded, so the launcher is registered');
# Time for a launcher to show: the primary's worker (naptime 500ms) goes
# through a whole cycle after the standby opened.
my $standby_open = $standby->safe_psql('postgres', 'SELECT now()');
ok($primary->poll_query_until('postgres', qq{
	SELECT count(*) > 0 FROM pg_stat_activity
	 WHERE backend_type = 'cscopilot worker' AND query_start > '$standby_open' AND state = 'idle'}),
	'primary: its worker ran a cycle after the standby opened');

# Customers loaded on the primary while its worker is stopped stay dirty and replicate.
$primary->append_conf('postgresql.conf', "cscopilot.enabled = off\n");
$primary->reload;
ok($primary->poll_query_until('postgres', "SELECT state = 'disabled' FROM cs.worker_status"), 'primary: worker off');
$primary->safe_psql('postgres', q{
	INSERT INTO cs.customers (external_id, name, segment, mrr, seats_licensed)
	SELECT 'c' || i, 'Customer ' || i, 'smb', 100, 10 FROM generate_series(1, 5) i});
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('cscopilot launcher', 'cscopilot worker')}),
	'0', 'standby: no launcher, no worker');
# A launcher takes a slot for every listed database on its first round.
is($standby->safe_psql('postgres', 'SELECT count(*) FROM cs._worker_slots()'), '0',
	'standby: no launcher has taken a worker slot');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM cs.dirty_customers'), '5', 'standby: the marks replicated');
unlike(slurp_file($standby->logfile), qr/cscopilot launcher started/, 'standby: the launcher never started');

$primary->stop;
$standby->promote;
$standby->wait_for_log(qr/cscopilot launcher started/);
pass('after promotion the launcher starts (and says so in the log)');
ok($standby->poll_query_until('postgres', 'SELECT NOT EXISTS (SELECT 1 FROM cs.dirty_customers)'),
	'after promotion the worker starts and scores the dirty customers');
is($standby->safe_psql('postgres', 'SELECT count(DISTINCT customer_id) FROM cs.customer_health_scores'), '5',
	'all five scored');

$standby->stop;
done_testing();
