# The workers start only once recovery has finished: nothing runs on a
# standby; after promotion the launcher starts and scores what is dirty.
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

# Customers loaded on the primary while its worker is stopped stay dirty and replicate.
$primary->append_conf('postgresql.conf', "cscopilot.enabled = off\n");
$primary->reload;
ok($primary->poll_query_until('postgres', "SELECT state = 'disabled' FROM cs.worker_status"), 'primary: worker off');
$primary->safe_psql('postgres', q{
	INSERT INTO cs.customers (external_id, name, segment, mrr, seats_licensed)
	SELECT 'c' || i, 'Customer ' || i, 'smb', 100, 10 FROM generate_series(1, 5) i});
$primary->wait_for_catchup($standby);

sleep(2);
is($standby->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('cscopilot launcher', 'cscopilot worker')}),
	'0', 'standby: no launcher, no worker');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM cs.dirty_customers'), '5', 'standby: the marks replicated');
unlike(slurp_file($standby->logfile), qr/cscopilot launcher started/, 'standby: the launcher never started');

$primary->stop;
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT EXISTS (SELECT 1 FROM cs.dirty_customers)'),
	'after promotion the worker starts and scores the dirty customers');
is($standby->safe_psql('postgres', 'SELECT count(DISTINCT customer_id) FROM cs.customer_health_scores'), '5',
	'all five scored');

$standby->stop;
done_testing();
