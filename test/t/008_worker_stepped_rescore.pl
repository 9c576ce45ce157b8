# The worker runs a full rescore in steps, one transaction each, and drains the
# dirty queue between them: a load committed during a rescore is scored before
# the rescore reaches its customer, and the rescore still covers everyone.
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
cscopilot.enabled = off
cscopilot.naptime = '60s'
cscopilot.batch_size = 10
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION cscopilot;
SELECT cs.generate_demo_data(600, 60, 5);
TRUNCATE cs.dirty_customers;
});
my $last = $node->safe_psql('postgres', 'SELECT id FROM cs.customers WHERE churned_at IS NULL ORDER BY id DESC LIMIT 1');

# Switch the worker on: the full rescore is due at once.
$node->safe_psql('postgres', "ALTER SYSTEM SET cscopilot.enabled = on; SELECT pg_reload_conf();");
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM cs.job_runs WHERE job = 'full_rescore' AND resume_after IS NOT NULL"),
	'a full rescore is under way in steps');

# A load for the customer the rescore reaches last; loaded is the start of its
# transaction, so before anything can score it.
my $loaded = $node->safe_psql('postgres', qq{
WITH l AS (INSERT INTO cs.usage_events (customer_id, user_id, event, occurred_at)
           VALUES ('$last', 'late', 'login', now()) RETURNING 1)
SELECT now() FROM l;
});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM cs.job_runs WHERE job = 'full_rescore' AND status = 'succeeded'"),
	'the full rescore finishes');

is($node->safe_psql('postgres', qq{
	SELECT min(h.calculated_at) < r.finished_at AND min(h.calculated_at) > '$loaded'
	  FROM cs.customer_health_scores h, cs.job_runs r
	 WHERE h.customer_id = '$last' AND h.calculated_at > '$loaded' AND r.job = 'full_rescore'
	 GROUP BY r.finished_at}),
	't', 'the load was scored while the rescore was still running');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM cs.customer_health_scores WHERE customer_id = '$last' AND calculated_at > '$loaded'}),
	'2', 'then the rescore refreshed that customer again')
  or diag($node->safe_psql('postgres', qq{SELECT calculated_at FROM cs.customer_health_scores WHERE customer_id = '$last' ORDER BY 1}) . " loaded $loaded; " . $node->safe_psql('postgres', 'SELECT started_at, finished_at FROM cs.job_runs WHERE id = 1'));
is($node->safe_psql('postgres', q{
	SELECT r.customers = (SELECT count(*) FROM cs.customers) AND r.customers > 10
	  FROM cs.job_runs r WHERE r.job = 'full_rescore'}),
	't', 'the rescore covered every customer, in more than one step');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cs.customers c
	 WHERE NOT EXISTS (SELECT 1 FROM cs.customer_health_scores h WHERE h.customer_id = c.id)}),
	'0', 'every customer has a health score');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cs.dirty_customers'), '0', 'queue drained');
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM cs.adoption_stats a, cs.job_runs r
	         WHERE r.job = 'full_rescore' AND a.computed_at BETWEEN r.started_at AND r.finished_at) = 1
	   AND (SELECT count(*) FROM cs.text_signals) > 0}),
	't', 'its first step took the opportunity statistics and filled the text-signal cache');

$node->stop;
done_testing();
