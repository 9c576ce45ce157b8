# Scheduled retraining: with cscopilot.retrain_interval set, the worker runs
# the retrain job on its own, records every step in cs.job_runs and registers
# the new version as the challenger, not the champion; the daily model checks
# run too.  Turning the interval off stops further runs.
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
cscopilot.naptime = '1s'
cscopilot.enabled = off
max_worker_processes = 16
cscopilot.outcome_horizon = 60
cscopilot.retrain_observations = 3
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION cscopilot');
# History up to today, loaded while the worker is off.
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
SELECT cs.generate_demo_data(300, 200, 7, current_date);
});

$node->append_conf('postgresql.conf', "cscopilot.enabled = on\ncscopilot.retrain_interval = '1h'\n");
$node->reload;

ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM cs.job_runs WHERE job = 'retrain' AND status <> 'running'"),
	'the worker ran the retrain job');
is($node->safe_psql('postgres', q{
	SELECT status || ' ' || (SELECT string_agg(s ->> 'step', ',') FROM jsonb_array_elements(details -> 'steps') s)
	  FROM cs.job_runs WHERE job = 'retrain' ORDER BY id LIMIT 1}),
	'succeeded promotion_policy,build_training_set,train,register',
	'every step of the run is recorded');
is($node->safe_psql('postgres', q{
	SELECT string_agg(name || ':v' || version || ' ' || status, ', ' ORDER BY version) FROM cs.models WHERE kind = 'churn'}),
	'churn_default:v1 champion, churn_default:v2 challenger',
	'the new version is the challenger; the champion stays');
ok($node->safe_psql('postgres', q{
	SELECT reference IS NOT NULL AND metrics ? 'training_window' FROM cs.models WHERE version = 2}) eq 't',
	'the retrained model has a drift reference and its training window');
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM cs.job_runs WHERE job = 'model_checks' AND status = 'succeeded'"),
	'the daily model checks ran');

# Within the interval the job is not due again.
is($node->safe_psql('postgres', "SELECT count(*) FROM cs.job_runs WHERE job = 'retrain'"), '1',
	'one retrain run within the interval');

# Off again: no further runs even when the last one is old.  The same reload
# changes the naptime, which the worker shows in cs.worker_status once it has
# taken the reload.
$node->append_conf('postgresql.conf', "cscopilot.retrain_interval = 0\ncscopilot.naptime = '900ms'\n");
$node->reload;
ok($node->poll_query_until('postgres', "SELECT naptime_ms = 900 FROM cs.worker_status"),
	'the worker took the reload');
# Retraining and the hourly data-quality check both look old now.  The worker
# considers retrain before data_quality (cs._start_due_job), so a new
# data_quality run proves that it looked for due jobs and found retrain not due.
my $last_dq = $node->safe_psql('postgres', "SELECT coalesce(max(id), 0) FROM cs.job_runs WHERE job = 'data_quality'");
$node->safe_psql('postgres', q{UPDATE cs.job_runs SET started_at = started_at - interval '2 hours',
	finished_at = finished_at - interval '2 hours' WHERE job IN ('retrain', 'data_quality')});
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM cs.job_runs WHERE job = 'data_quality' AND id > $last_dq AND status <> 'running'"),
	'the worker ran the due jobs after the last retraining became old');
is($node->safe_psql('postgres', "SELECT count(*) FROM cs.job_runs WHERE job = 'retrain'"), '1',
	'no retraining while the interval is 0');

$node->stop;
done_testing();
