# Loads commit continuously while the worker runs stepped full rescores and
# drains the dirty queue, and other sessions call cs.refresh() and
# cs.refresh_all().  Some loads are stamped a few seconds ahead of the
# server's clock, as event pipelines on fast clocks do.  Afterwards every
# loaded customer's stored features were computed after its last load and
# equal a recomputation at their as_of, the queue is empty, and nothing
# deadlocked.  Bounded: REFRESH_LOAD_SECONDS (default 12) of load.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seconds = $ENV{REFRESH_LOAD_SECONDS} || 12;
my $node = PostgreSQL::Test::Cluster->new('refresh_load');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cscopilot'
cscopilot.databases = 'postgres'
cscopilot.naptime = '1s'
cscopilot.batch_size = 15
cscopilot.full_rescore_interval = '1s'
max_worker_processes = 16
deadlock_timeout = '100ms'
log_lock_waits = on
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION cscopilot;
SET client_min_messages = warning;
SELECT cs.generate_demo_data(60, 30, 11, current_date - 1);
SELECT cs.refresh_all();
CREATE TABLE load_ids AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM cs.customers;
-- when each load inserted its rows (its commit follows)
CREATE TABLE load_log (customer_id uuid, loaded_at timestamptz, stamped timestamptz);
});
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM cs.job_runs WHERE job = 'full_rescore' AND status = 'succeeded'"),
	'the worker completes full rescores');

my $dir = $node->basedir;
my %scripts = (
	# stamped with the transaction's start, the statement's clock, or up to
	# 3 seconds ahead of the server's clock
	'load.sql' => "\\set c random(1, 60)\n\\set ahead random(0, 2)\n"
	  . "BEGIN;\n"
	  . "INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at) "
	  . "SELECT id, 'u' || :c % 3, 'login', CASE :ahead WHEN 0 THEN now() WHEN 1 THEN clock_timestamp() "
	  . "ELSE clock_timestamp() + random() * interval '3 seconds' END FROM load_ids WHERE n = :c;\n"
	  . "INSERT INTO load_log SELECT id, clock_timestamp(), "
	  . "(SELECT max(occurred_at) FROM cs.usage_events e WHERE e.customer_id = l.id) FROM load_ids l WHERE n = :c;\n"
	  . "COMMIT;\n",
	'refresh.sql' => "SELECT cs.refresh();\n\\sleep 200 ms\n",
	'refresh_all.sql' => "SELECT cs.refresh_all();\n\\sleep 1 s\n");
for my $f (keys %scripts)
{
	open my $fh, '>', "$dir/$f" or die;
	print $fh $scripts{$f};
	close $fh;
}

my ($stdout, $stderr);
my $ok = IPC::Run::run(
	[
		'pgbench', '-n', '-T', $seconds, '-c', 4, '-j', 1,
		'-f', "$dir/load.sql\@20", '-f', "$dir/refresh.sql\@2", '-f', "$dir/refresh_all.sql\@1",
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'pgbench finished without an aborted client') or diag($stderr);
unlike($stderr, qr/aborted|deadlock|ERROR/i, 'no error in any session') or diag($stderr);
like($stdout, qr/number of transactions actually processed: [1-9]/, 'work was done');
note($stdout);

my $loads = $node->safe_psql('postgres', 'SELECT count(*) FROM load_log');
cmp_ok($loads, '>', 20, "loads committed during the run ($loads)");
cmp_ok($node->safe_psql('postgres',
	"SELECT count(*) FROM cs.job_runs WHERE job = 'full_rescore' AND started_at > (SELECT min(loaded_at) FROM load_log)"),
	'>', 0, 'full rescores ran during the loads');

# Marks of rows stamped ahead become due when their time comes; the worker
# takes them then, with no further load or call.
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM cs.dirty_customers'),
	'the queue drains by itself, marks stamped ahead included')
  or diag($node->safe_psql('postgres', q{
SELECT d.*, clock_timestamp() AS now, f.as_of, (SELECT max(occurred_at) FROM cs.usage_events e WHERE e.customer_id = d.customer_id)
  FROM cs.dirty_customers d LEFT JOIN cs.customer_features f USING (customer_id)}),
	$node->safe_psql('postgres', 'SELECT * FROM cs.worker_status'));

is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT customer_id, max(loaded_at) AS loaded_at, max(stamped) AS stamped
                        FROM load_log GROUP BY customer_id) l
  JOIN cs.customer_features f USING (customer_id)
 WHERE f.as_of < l.loaded_at OR f.as_of < l.stamped}),
	'0', 'every loaded customer was scored after its last load and its latest event');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT DISTINCT customer_id FROM load_log) l
  JOIN cs.customer_features f USING (customer_id)
 WHERE f.features IS DISTINCT FROM cs.features(l.customer_id, f.as_of)}),
	'0', 'every loaded customer\'s stored features equal a recomputation at their as_of');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT DISTINCT customer_id FROM load_log) l
 WHERE NOT EXISTS (SELECT 1 FROM cs.customer_features f WHERE f.customer_id = l.customer_id)}),
	'0', 'every loaded customer has features');

my $log = slurp_file($node->logfile);
unlike($log, qr/deadlock detected/, 'no deadlock in the server log');
unlike($log, qr/ERROR:/, 'no error in the server log');

$node->stop;
done_testing();
