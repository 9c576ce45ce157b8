# A customer whose refresh always fails is retried, parked after
# cscopilot.max_attempts failures and reported; the others are scored.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('poison');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cscopilot'
cscopilot.databases = 'postgres'
cscopilot.naptime = '200ms'
cscopilot.batch_size = 4
cscopilot.max_attempts = 3
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION cscopilot');
ok($node->poll_query_until('postgres', "SELECT state = 'idle' FROM cs.worker_status"), 'worker idle');

$node->safe_psql('postgres', q{
CREATE FUNCTION public.poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.customer_id = '00000000-0000-0000-0000-000000000007' THEN
        RAISE EXCEPTION 'poisoned customer';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER poison BEFORE INSERT ON cs.customer_health_scores FOR EACH ROW EXECUTE FUNCTION public.poison();
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(i::text, 2, '0'))::uuid, 'c' || i, 'Customer ' || i, 'smb', 100, 10
  FROM generate_series(1, 10) i;
});

ok($node->poll_query_until('postgres', 'SELECT parked = 1 AND queue_depth = 0 FROM cs.worker_status'),
	'the poison customer is parked, nothing else waits');
is($node->safe_psql('postgres', 'SELECT parked_customers FROM cs.worker_status'),
	'{00000000-0000-0000-0000-000000000007}', 'cs.worker_status names it');
is($node->safe_psql('postgres', 'SELECT attempts, last_error FROM cs.dirty_customers'),
	'3|poisoned customer', 'after max_attempts failures, with the error');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT customer_id) FROM cs.customer_health_scores'),
	'9', 'the nine other customers are scored');
like(slurp_file($node->logfile),
	qr/WARNING:  cscopilot: customer 00000000-0000-0000-0000-000000000007 parked after 3 failed refreshes: poisoned customer/,
	'a WARNING in the log');

# Fixed and unparked, it is scored.
$node->safe_psql('postgres', q{
	DROP TRIGGER poison ON cs.customer_health_scores;
	UPDATE cs.dirty_customers SET parked = false, attempts = 0;
	SELECT cs.wake_worker();
});
ok($node->poll_query_until('postgres', 'SELECT NOT EXISTS (SELECT 1 FROM cs.dirty_customers)'),
	'once fixed and unparked it is scored');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT customer_id) FROM cs.customer_health_scores'), '10',
	'all ten scored');

$node->stop;
done_testing();
