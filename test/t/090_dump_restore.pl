# pg_dump and pg_restore of a scored database into a fresh server keep
# configuration (edited shipped rows included), models, history and alerts,
# and the restored database scores identically.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $src = PostgreSQL::Test::Cluster->new('source');
$src->init;
$src->append_conf('postgresql.conf', "shared_preload_libraries = 'cscopilot'\n");
$src->start;
$src->safe_psql('postgres', q{
CREATE EXTENSION cscopilot;
SET client_min_messages = warning;
SELECT cs.generate_demo_data(120, 60, 11, '2026-06-30');
SELECT cs.refresh_all();
-- configuration: a shipped rule edited, a rule and a playbook added
UPDATE cs.alert_rules SET cooldown = '3 days', base_severity = 'high' WHERE name = 'usage_drop';
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('custom_red', 'risk', '{"band": "red"}');
INSERT INTO cs.playbooks (name, action, answers) VALUES ('custom_call', 'Call them', '{usage_trend_30d}');
-- a retrained churn model replaces the shipped champion
SELECT cs.train_model('churn_v2', 'churn',
  $$SELECT features, label, group_key FROM cs.build_training_set(ARRAY['2026-04-01', '2026-05-01']::date[], '30 days')$$,
  '{"num_round": 20, "max_depth": 3}');
SELECT cs.deploy_model('churn_v2', 1);
SELECT cs.refresh_all();
-- the alert lifecycle and feedback
SELECT cs.acknowledge_alert(id, 'on it') FROM cs.alerts WHERE status = 'open' ORDER BY id LIMIT 3;
SELECT cs.record_feedback(id, 'accuracy', 4) FROM cs.alerts WHERE status = 'acknowledged' ORDER BY id LIMIT 2;
-- alerts without a customer (cs.system_alerts, unique on an expression of cs._alert_key) and their events
SELECT cs._raise_alerts(ARRAY[ROW(NULL, NULL, 'data', 'low', 'Data quality: freshness s', NULL,
                                  '{"check": "freshness", "subject": "s"}', NULL, 'cs_admin', NULL, NULL, NULL)::cs.alert_firing]);
SELECT cs.acknowledge_alert(id, 'looking') FROM cs.system_alerts WHERE risk_factors ->> 'subject' = 's' AND status = 'open';
});

my $dump = $src->basedir . '/scored.dump';
$src->command_ok([ 'pg_dump', '-Fc', '-d', $src->connstr('postgres'), '-f', $dump ], 'pg_dump of the scored database');

my $dst = PostgreSQL::Test::Cluster->new('restored');
$dst->init;
$dst->append_conf('postgresql.conf', "shared_preload_libraries = 'cscopilot'\n");
$dst->start;
$dst->safe_psql('postgres', 'CREATE DATABASE crm');
$dst->command_ok([ 'pg_restore', '--exit-on-error', '-d', $dst->connstr('crm'), $dump ],
	'pg_restore into a fresh server, without errors');

# Every table the extension keeps, row for row (dirty_customers and
# _shipped_rows are not dumped, by design: see 95_security.sql).
my $tables = $src->safe_psql('postgres', q{
SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND c.relname NOT IN ('dirty_customers', '_shipped_rows')});
for my $t (split / /, $tables)
{
	my $q = "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM cs.$t t";
	is($dst->safe_psql('crm', $q), $src->safe_psql('postgres', $q), "cs.$t restored row for row");
}

is($dst->safe_psql('crm', q{SELECT name || ' v' || version FROM cs.models WHERE status = 'champion' AND kind = 'churn' ORDER BY name}),
	'churn_v2 v1', 'the retrained model is the champion after the restore');
is($dst->safe_psql('crm', q{SELECT cooldown || ' ' || base_severity FROM cs.alert_rules WHERE name = 'usage_drop'}),
	'3 days high', 'the edit of a shipped rule survives');
is($dst->safe_psql('crm', q{SELECT count(*) FROM cs.alert_rules WHERE name IN ('usage_drop', 'custom_red')}),
	'2', 'shipped rules are not duplicated, added ones are kept');

# The restored database scores identically (features at a fixed time, churn risk).
my $score = q{SELECT md5(string_agg(id || ':' || cs.features(id, '2026-06-30')::text || ':'
                 || round(cs.churn_risk(id)::numeric, 9), ',' ORDER BY id)) FROM cs.customers};
is($dst->safe_psql('crm', $score), $src->safe_psql('postgres', $score), 'identical features and churn risk');

# New rows get fresh ids (the identity sequences came back too), and a full refresh works.
$dst->safe_psql('crm', q{INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('after_restore', 'risk', '{"band": "red"}')});
is($dst->safe_psql('crm', q{SELECT count(DISTINCT id) = count(*) FROM cs.alert_rules}), 't', 'identity sequences restored');
is($dst->safe_psql('crm', 'SELECT cs.refresh_all() > 0'), 't', 'the restored database refreshes');

$src->stop;
$dst->stop;
done_testing();
