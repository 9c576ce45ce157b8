# pgbench for a bounded time over loopback: loaders insert usage events, CSMs
# (under row-level security) acknowledge and resolve alerts, the worker
# rescores what the loads touched, and cs.refresh_all() runs alongside.
# No deadlock, no error but the expected ones (an alert another session moved
# on first), no duplicate unresolved alert, no lost lifecycle change.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seconds = $ENV{CONCURRENCY_SECONDS} || 15;
my $node = PostgreSQL::Test::Cluster->new('busy');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cscopilot'
cscopilot.databases = 'postgres'
cscopilot.naptime = '1s'
cscopilot.batch_size = 20
max_worker_processes = 16
deadlock_timeout = '100ms'
log_lock_waits = on
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION cscopilot;
SET client_min_messages = warning;
SELECT cs.generate_demo_data(80, 40, 5, current_date - 1);
SELECT cs.refresh_all();
CREATE ROLE bench_csm_a LOGIN;
CREATE ROLE bench_csm_b LOGIN;
SELECT cs.grant_role('csm', 'bench_csm_a'), cs.grant_role('csm', 'bench_csm_b');
UPDATE cs.customers c SET csm = CASE WHEN n % 2 = 0 THEN 'bench_csm_a' ELSE 'bench_csm_b' END
  FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM cs.customers) x WHERE x.id = c.id;
CREATE TABLE bench_ids AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM cs.customers;
-- what the CSM sessions did, and the errors they expected
CREATE TABLE bench_log (who text DEFAULT current_user, action text, alert_id uuid, outcome text);
GRANT INSERT ON bench_log TO cscopilot_csm;
-- One lifecycle step on a random visible alert; a state another session
-- changed first (55000) is expected, anything else propagates and aborts.
CREATE FUNCTION bench_step(action text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a uuid;
BEGIN
    SELECT id INTO a FROM cs.alerts
     WHERE status = CASE action WHEN 'ack' THEN 'open' ELSE 'acknowledged' END
     ORDER BY random() LIMIT 1;
    IF a IS NULL THEN
        RETURN;
    END IF;
    BEGIN
        IF action = 'ack' THEN
            PERFORM cs.acknowledge_alert(a, 'bench');
        ELSE
            PERFORM cs.resolve_alert(a, 'bench');
        END IF;
        INSERT INTO bench_log (action, alert_id, outcome) VALUES (action, a, 'done');
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        INSERT INTO bench_log (action, alert_id, outcome) VALUES (action, a, 'moved on');
    END;
END;
$$;
});
ok($node->poll_query_until('postgres',
	"SELECT state = 'idle' FROM cs.worker_status WHERE database = 'postgres'"), 'the worker runs');
my $alerts0 = $node->safe_psql('postgres', "SELECT count(*) FROM cs.alerts WHERE status = 'open'");
cmp_ok($alerts0, '>', 0, 'there are open alerts to work on');

my $dir = $node->basedir;
my %scripts = (
	'load.sql' => "\\set c random(1, 80)\nINSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at) "
	  . "SELECT id, 'u' || :c % 4, 'login', now() - random() * interval '5 days' FROM bench_ids WHERE n = :c;\n",
	'ack.sql' => "BEGIN;\nSET LOCAL ROLE bench_csm_a;\nSELECT bench_step('ack');\nCOMMIT;\n",
	'ack_b.sql' => "BEGIN;\nSET LOCAL ROLE bench_csm_b;\nSELECT bench_step('ack');\nCOMMIT;\n",
	'resolve.sql' => "BEGIN;\nSET LOCAL ROLE bench_csm_b;\nSELECT bench_step('resolve');\nCOMMIT;\n",
	'resolve_a.sql' => "BEGIN;\nSET LOCAL ROLE bench_csm_a;\nSELECT bench_step('resolve');\nCOMMIT;\n",
	'refresh.sql' => "SELECT cs.refresh_all();\n\\sleep 1 s\n");
for my $f (keys %scripts)
{
	open my $fh, '>', "$dir/$f" or die;
	print $fh $scripts{$f};
	close $fh;
}

my ($stdout, $stderr);
my $ok = IPC::Run::run(
	[
		'pgbench', '-n', '-T', $seconds, '-c', 5, '-j', 1,
		'-f', "$dir/load.sql\@10", '-f', "$dir/ack.sql\@4", '-f', "$dir/ack_b.sql\@4",
		'-f', "$dir/resolve.sql\@3", '-f', "$dir/resolve_a.sql\@3", '-f', "$dir/refresh.sql\@1",
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'pgbench finished without an aborted client') or diag($stderr);
unlike($stderr, qr/aborted|deadlock|ERROR/i, 'no unexpected error') or diag($stderr);
like($stdout, qr/number of transactions actually processed: [1-9]/, 'work was done');
note($stdout);

my $log = slurp_file($node->logfile);
unlike($log, qr/deadlock detected/, 'no deadlock in the server log');

my ($done, $moved) = split /\|/, $node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE outcome = 'done'), count(*) FILTER (WHERE outcome = 'moved on') FROM bench_log");
cmp_ok($done, '>', 0, "CSMs acknowledged and resolved alerts ($done, $moved expected conflicts)");

is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT customer_id, rule_id FROM cs.alerts WHERE status IN ('open', 'acknowledged', 'snoozed')
                       GROUP BY 1, 2 HAVING count(*) > 1) d}), '0', 'no duplicate unresolved alert');
# alerts without a customer (data quality, model drift: cs.system_alerts) are
# one per check and subject, or model
is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT alert_type, risk_factors ->> 'check', risk_factors ->> 'subject', risk_factors ->> 'model'
                        FROM cs.system_alerts WHERE status IN ('open', 'acknowledged', 'snoozed')
                       GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d}), '0', 'no duplicate unresolved data or model alert');

# Every lifecycle change a CSM committed is in the event log, by that CSM,
# and every alert's status is the one its last event recorded.
is($node->safe_psql('postgres', q{
SELECT count(*) FROM bench_log b
 WHERE b.outcome = 'done'
   AND NOT EXISTS (SELECT 1 FROM cs.alert_events e WHERE e.alert_id = b.alert_id AND e.actor = b.who
                     AND e.event = CASE b.action WHEN 'ack' THEN 'acknowledged' ELSE 'resolved' END)}),
	'0', 'no lost acknowledgement or resolution');
is($node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM cs.alerts a
         WHERE a.status IS DISTINCT FROM (SELECT e.to_status FROM cs.alert_events e WHERE e.alert_id = a.id ORDER BY e.id DESC LIMIT 1))
     + (SELECT count(*) FROM cs.system_alerts a
         WHERE a.status IS DISTINCT FROM (SELECT e.to_status FROM cs.system_alert_events e WHERE e.alert_id = a.id ORDER BY e.id DESC LIMIT 1))}),
	'0', 'every alert is in the state its last event says');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM bench_log b JOIN cs.customers c ON c.id = (SELECT customer_id FROM cs.alerts WHERE id = b.alert_id)
 WHERE c.csm <> b.who}), '0', 'CSMs only touched alerts of their own customers');

# The worker catches up with the loads.
# (a mark of a row stamped later than now is due when its time comes)
ok($node->poll_query_until('postgres',
	'SELECT count(*) = 0 FROM cs.dirty_customers WHERE NOT parked AND due_at <= clock_timestamp()'),
	'the worker drains the queue of every due mark after the run')
  or diag($node->safe_psql('postgres', 'SELECT d.*, clock_timestamp() FROM cs.dirty_customers d'),
	$node->safe_psql('postgres', 'SELECT * FROM cs.worker_status'));
is($node->safe_psql('postgres', 'SELECT count(*) FROM cs.dirty_customers WHERE parked'), '0', 'no customer parked');

$node->stop;
done_testing();
