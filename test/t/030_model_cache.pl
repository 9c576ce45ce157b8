# A backend sees model changes made by other sessions without reconnecting:
# the statement trigger on cs.models sends a relcache invalidation that every
# backend's model cache listens to.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $data = "$ENV{TESTDIR}/data";
my $node = PostgreSQL::Test::Cluster->new('model_cache');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'cscopilot'");
$node->start;

my $row = q('{0.5,-0.2,1.0,0.3,-1.0,0.0}');
my $predict = "SELECT round(cs.predict('m', $row)::numeric, 6)";

$node->safe_psql('postgres', qq(
    CREATE EXTENSION cscopilot;
    SELECT cs.load_model('m', 'custom', pg_read_binary_file('$data/tiny_model.json'), '{a,b,c,d,e,f}');
    SELECT cs.deploy_model('m', 1);
));

my $session = $node->background_psql('postgres', on_error_stop => 0);
is($session->query_safe($predict), '0.922420', 'version 1 scores');

# Another session loads and deploys version 2.
$node->safe_psql('postgres', qq(
    SELECT cs.load_model('m', 'custom', pg_read_binary_file('$data/tiny_model_v2.json'), '{a,b,c,d,e,f}');
    SELECT cs.deploy_model('m', 2);
));
is($session->query_safe($predict), '0.824320', 'the open session sees the deployed version 2');

# A plain UPDATE from another session, back to version 1.
$node->safe_psql('postgres', q(
    UPDATE cs.models SET status = 'retired' WHERE name = 'm' AND version = 2;
    UPDATE cs.models SET status = 'champion' WHERE name = 'm' AND version = 1;
));
is($session->query_safe($predict), '0.922420', 'the open session sees the UPDATE');

# Deleting the model makes it unknown everywhere.
$node->safe_psql('postgres', "DELETE FROM cs.models WHERE name = 'm'");
my ($ret, $stdout, $stderr) = $node->psql('postgres', $predict);
like($stderr, qr/model "m" does not exist/, 'a new session finds no model');
$session->query("$predict");
like($session->{stderr}, qr/model "m" does not exist/, 'the open session finds no model either');

$session->quit;
$node->stop;
done_testing();
