# The command-line loader streams every fixture through COPY into the loaders:
# a second run of the same files changes nothing, and each run prints a
# progress line and a summary.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $src = $ENV{CSCOPILOT_SRC};
plan skip_all => 'CSCOPILOT_SRC (the source tree) is not set' unless $src && -x "$src/contrib/load/cscopilot-load";
my $loader = "$src/contrib/load/cscopilot-load";
my $data = "$ENV{TESTDIR}/data/integrations";

my $node = PostgreSQL::Test::Cluster->new('loader');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION cscopilot');
$node->safe_psql('postgres', q{
INSERT INTO cs.data_sources (name, format, system, options) VALUES
    ('nps_survey', 'csv', 'survey', '{"target": "nps_responses", "customer": "Account",
      "mapping": {"source_id": "Response ID", "score": "Score", "comment": "Comment", "responded_at": "Responded At"}}');
});

my @files = (
	[ 'hubspot_companies',   'hubspot_companies.csv' ],
	[ 'hubspot_contacts',    'hubspot_contacts.csv' ],
	[ 'stripe_invoices',     'stripe_invoices.json' ],
	[ 'stripe_invoices_csv', 'stripe_invoices.csv' ],
	[ 'zendesk_tickets',     'zendesk_tickets.json' ],
	[ 'mixpanel',            'mixpanel_events.ndjson' ],
	[ 'amplitude',           'amplitude_events.ndjson' ],
	[ 'nps_survey',          'nps_survey.csv' ]);

my $counts = q{SELECT concat_ws(',', (SELECT count(*) FROM cs.customers), (SELECT count(*) FROM cs.contacts),
	(SELECT count(*) FROM cs.invoices), (SELECT count(*) FROM cs.support_tickets), (SELECT count(*) FROM cs.usage_events),
	(SELECT count(*) FROM cs.nps_responses), (SELECT count(*) FROM cs.ingest_rejects))};

sub load_all
{
	my ($round) = @_;
	my %summary;
	for my $f (@files)
	{
		my ($source, $file) = @$f;
		my ($stdout, $stderr);
		my $ok = IPC::Run::run([ $loader, $source, "$data/$file", '-h', $node->host, '-p', $node->port, '-d', 'postgres' ],
			'>', \$stdout, '2>', \$stderr);
		ok($ok, "round $round: $source loads") or diag($stderr);
		$summary{$source} = $stdout;
	}
	return \%summary;
}

# Zendesk organizations are mapped by hand once the companies exist.
my $first = load_all(1);
$node->safe_psql('postgres', q{
INSERT INTO cs.customer_keys (source, key_kind, key, customer_id)
SELECT 'zendesk', 'organization', v.org, c.id FROM (VALUES ('509974', '5001'), ('509975', '5002')) v(org, ext)
  JOIN cs.customers c ON c.external_id = v.ext;
});
like($first->{hubspot_companies}, qr/^cscopilot-load: hubspot_companies: 7 rows: 4 inserted, 0 updated, 0 unchanged, 3 rejected$/m,
	'summary line of a CSV load');
like($first->{mixpanel}, qr/^cscopilot-load: mixpanel: 13 lines: 6 inserted, 0 updated, 1 unchanged, 5 rejected$/m,
	'summary line of an event load');

my $second = load_all(2);
like($second->{zendesk_tickets}, qr/3 inserted, 0 updated, 0 unchanged, 3 rejected/, 'tickets load once mapped');
my $after_two = $node->safe_psql('postgres', $counts);
my $third = load_all(3);
is($node->safe_psql('postgres', $counts), $after_two, 'loading every file again changes no count');
like($third->{stripe_invoices}, qr/0 inserted, 0 updated, 4 unchanged, 2 rejected/, 'Stripe invoices unchanged');
like($third->{amplitude}, qr/0 inserted, 0 updated, 2 unchanged, 5 rejected/, 'Amplitude events unchanged');
is($after_two, '4,4,6,3,8,2,24', 'customers, contacts, invoices, tickets, events, NPS responses, rejects');

# A progress line every CHUNK_LINES lines of an event file.
{
	my ($stdout, $stderr);
	local $ENV{CHUNK_LINES} = 5;
	IPC::Run::run([ $loader, 'mixpanel', "$data/mixpanel_events.ndjson", '-h', $node->host, '-p', $node->port, '-d', 'postgres' ],
		'>', \$stdout, '2>', \$stderr);
	like($stdout, qr/^cscopilot-load: mixpanel: 5 of 13 lines\ncscopilot-load: mixpanel: 10 of 13 lines\n/m, 'progress lines');
}

# Bad invocations.
{
	my ($stdout, $stderr);
	ok(!IPC::Run::run([ $loader, 'no_such_source', "$data/nps_survey.csv", '-h', $node->host, '-p', $node->port, '-d', 'postgres' ],
		'>', \$stdout, '2>', \$stderr), 'an unknown source fails');
	like($stderr, qr/no enabled data source "no_such_source"/, 'and says so');
	ok(!IPC::Run::run([ $loader, 'Bad;Name', "$data/nps_survey.csv" ], '>', \$stdout, '2>', \$stderr), 'an invalid source name fails');
}

$node->stop;
done_testing();
