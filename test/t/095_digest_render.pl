# The digest renders in a browser: headless Chromium (Debian's chromium,
# installed by contrib/install-deps.sh) draws cs.digest to a PNG, and the
# regions of the two charts hold pixels of the charts' colours: the bars of
# the health bands (red, yellow, green) and the MRR-at-risk area and line.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $chromium = (grep { -x $_ } map { "$_/chromium" } split /:/, "$ENV{PATH}:/usr/bin")[0];
ok($chromium, 'chromium is installed (contrib/install-deps.sh installs it)')
  or BAIL_OUT('chromium is missing: run contrib/install-deps.sh');

my $node = PostgreSQL::Test::Cluster->new('digest');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION cscopilot;
SET client_min_messages = warning;
INSERT INTO cs.customers (external_id, name, segment, mrr, seats_licensed, csm, contract_end_date)
SELECT 'c' || i, 'Customer ' || i, 'smb', 200 + 37 * i, 10, 'csm_01', current_date + 9 * i
  FROM generate_series(1, 12) i;
-- twelve weeks of health and churn risk: a third red and falling, a third yellow, a third green
INSERT INTO cs.customer_health_scores (customer_id, overall_score, band, calculated_at)
SELECT c.id, s.v, CASE WHEN s.v < 0.4 THEN 'red' WHEN s.v < 0.7 THEN 'yellow' ELSE 'green' END,
       date_trunc('week', current_date::timestamptz) - make_interval(weeks => k)
  FROM cs.customers c CROSS JOIN generate_series(0, 11) k
 CROSS JOIN LATERAL (SELECT (CASE substr(c.external_id, 2)::int % 3 WHEN 0 THEN 0.15 + 0.04 * k
                                                                    WHEN 1 THEN 0.55 ELSE 0.85 END)::numeric(3,2) AS v) s;
INSERT INTO cs.risk_assessments (customer_id, risk_type, risk_score, created_at)
SELECT c.id, 'churn', CASE substr(c.external_id, 2)::int % 3 WHEN 0 THEN 0.85 - 0.06 * k WHEN 1 THEN 0.35 ELSE 0.05 END,
       date_trunc('week', current_date::timestamptz) - make_interval(weeks => k)
  FROM cs.customers c CROSS JOIN generate_series(0, 11) k;
});

my $dir = PostgreSQL::Test::Utils::tempdir;
my $html = "$dir/digest.html";
my $png = "$dir/digest.png";
$node->command_ok([ 'psql', '-X', '-At', '-d', $node->connstr('postgres'), '-c', "SELECT cs.digest('csm_01')", '-o', $html ],
	'cs.digest written to a file');
like(slurp_file($html), qr/<svg id="chart-bands".*<svg id="chart-mrr"/s, 'the page holds both charts');

mkdir "$dir/profile";
my ($stdout, $stderr);
my $ok = IPC::Run::run([ $chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
		'--disable-background-networking', '--disable-component-update', '--disable-sync',
		"--user-data-dir=$dir/profile", "--screenshot=$png", '--window-size=1200,1600', "file://$html" ],
	'>', \$stdout, '2>', \$stderr, IPC::Run::timeout(120));
ok($ok && -s $png, 'headless chromium rendered the digest to a PNG') or diag($stderr);

# Decodes the PNG (8-bit RGB or RGBA, no interlace) with the standard library
# and counts the pixels near each chart colour inside a region: the band chart
# on the left of the first 400 rows, the MRR chart on the right.
my $py = <<'PY';
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat = 8, b''
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
rows, prev, i = [], bytearray(stride), 0
for y in range(h):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line); prev = line
colours = {'red': (0xd9, 0x53, 0x4f), 'yellow': (0xf0, 0xad, 0x4e), 'green': (0x5c, 0xb8, 0x5c),
           'area': (0xf2, 0xb8, 0xb5), 'line': (0xc9, 0x30, 0x2c)}
regions = {'red': (0, 450), 'yellow': (0, 450), 'green': (0, 450), 'area': (420, w), 'line': (420, w)}
counts = dict.fromkeys(colours, 0)
nonwhite = 0
for y in range(min(h, 400)):
    line = rows[y]
    for x in range(w):
        px = line[x * bpp:x * bpp + 3]
        if px[0] < 240 or px[1] < 240 or px[2] < 240:
            nonwhite += 1
        for k, col in colours.items():
            if regions[k][0] <= x < regions[k][1] and all(abs(px[j] - col[j]) <= 6 for j in range(3)):
                counts[k] += 1
print(w, h, nonwhite, ' '.join('%s=%d' % (k, counts[k]) for k in sorted(counts)))
PY
open(my $fh, '>', "$dir/png.py") or die $!;
print $fh $py;
close $fh;
my $out = `python3 $dir/png.py $png 2>&1`;
like($out, qr/^1200 1600 \d+ /, 'the screenshot is 1200 x 1600') or diag($out);
my %n = $out =~ /(\w+)=(\d+)/g;
cmp_ok($n{$_} // 0, '>', 500, "the band chart draws $_ bars") for qw(red yellow green);
cmp_ok($n{area} // 0, '>', 2000, 'the MRR-at-risk chart draws its area');
cmp_ok($n{line} // 0, '>', 300, 'the MRR-at-risk chart draws its line');
note($out);

$node->stop;
done_testing();
