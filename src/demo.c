/*
 * demo.c
 *		cs.generate_demo_data(): a deterministic, realistic synthetic dataset.
 *
 * Design.  Every customer has a hidden health in [0,1] that follows a noisy,
 * mean-reverting random walk around an archetype-specific target path (stable,
 * growing, seasonal, recovering after a dip, at risk, declining then churning,
 * churning suddenly).  All observable signals (usage, tickets, invoices, CSM
 * touches, NPS, champion departures, expansions) are drawn from that health,
 * each channel with its own per-customer sensitivity and lag, so that churners
 * do not show every warning sign at once and some healthy customers look bad.
 *
 * Determinism.  Nothing uses random(): a small xoshiro256** generator is seeded
 * from (seed, customer index, stream, sub-stream) through splitmix64, so each
 * table, and each customer-day of usage, has its own independent stream and can
 * be regenerated on its own.  Ids are uuids hashed from (seed, index) and every
 * timestamp is computed in UTC from end_date, so the same arguments give
 * byte-identical data whatever the session's time zone.
 *
 * Speed.  One materialized set-returning function per table
 * (cs._demo_customers() ... cs._demo_usage()) rebuilds each customer's hidden
 * state from the seed (cheap) and writes its rows to a tuplestore;
 * cs.generate_demo_data() inserts each with one INSERT ... SELECT, and usage
 * (the bulk) with one per month, which keeps tuplestores and the load
 * trigger's transition table to a month and makes progress reports honest.
 * Within a month usage rows come in uuid order, so each monthly partition and
 * its (customer_id, occurred_at) index are filled almost sequentially.
 * Per-customer memory lives in a context reset per customer.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "cscopilot.h"

#define MAX_CUSTOMERS	10000000
#define MAX_DAYS		3650
/* Health is simulated this many days before the window so early churners have a history. */
#define PRE_DAYS		150
/* Daily churn hazard: about 11% of customers churn over 180 days. */
#define CHURN_HAZARD	0.000647
/* Scales every user's daily activity: about 3 usage rows per customer-day. */
#define ACTIVITY_SCALE	0.86

#define NSEGMENTS		3
#define NFEATURES		12
#define NPRODUCTS		5
#define NCSMS			10

typedef enum Archetype
{
	ARCH_STABLE,
	ARCH_GROWING,
	ARCH_SEASONAL,
	ARCH_RECOVERING,
	ARCH_AT_RISK,
	ARCH_DECLINING_CHURN,
	ARCH_SUDDEN_CHURN
} Archetype;

static const char *const ARCHETYPE_NAMES[] = {
	"stable", "growing", "seasonal", "recovering", "at_risk", "declining_churn", "sudden_churn"
};

/* Independent random streams, one per concern. */
typedef enum Stream
{
	STREAM_ID = 1,
	STREAM_PROFILE,
	STREAM_HEALTH,
	STREAM_USERS,
	STREAM_USAGE,
	STREAM_TICKETS,
	STREAM_INVOICES,
	STREAM_ENGAGEMENTS,
	STREAM_NPS,
	STREAM_CONTACTS,
	/* the consumer profile's own streams */
	STREAM_C_PROFILE,
	STREAM_C_PATH,
	STREAM_C_RENEWAL,
	STREAM_C_USAGE,
	/* contractions and payment trouble (drawn apart: churn stays as it was) */
	STREAM_OUTCOMES
} Stream;

typedef enum DemoKind
{
	KIND_CUSTOMERS,
	KIND_GROUND_TRUTH,
	KIND_SUBSCRIPTIONS,
	KIND_CONTACTS,
	KIND_INVOICES,
	KIND_TICKETS,
	KIND_ENGAGEMENTS,
	KIND_NPS,
	KIND_USAGE,
	KIND_C_CUSTOMERS,
	KIND_C_GROUND_TRUTH,
	KIND_C_TERMS,
	KIND_C_USAGE
} DemoKind;

static const int KIND_NATTS[] = {15, 7, 6, 6, 7, 9, 4, 4, 6, 7, 7, 4, 6};

static const char *const SEGMENTS[] = {"smb", "mid_market", "enterprise"};

static const char *const PRODUCTS[] = {"core", "analytics", "automation", "integrations", "premium_support"};
/* Price of each add-on relative to core. */
static const double PRODUCT_PRICE[] = {1.0, 0.25, 0.30, 0.15, 0.20};

/* The first three are core features every account uses; the rest show adoption breadth. */
static const char *const FEATURES[] = {
	"dashboard", "reports", "search", "exports", "alerts", "sharing",
	"workflows", "integrations", "api", "mobile", "admin", "ai_assistant"
};

static const char *const INDUSTRIES[] = {
	"software", "financial services", "healthcare", "retail", "manufacturing", "education",
	"logistics", "media", "professional services", "public sector", "telecommunications", "energy"
};

static const char *const NAME_PREFIXES[] = {
	"Northwind", "Bluepeak", "Silverline", "Redwood", "Brightpath", "Ironclad", "Greenfield",
	"Clearwater", "Summit", "Blackstone", "Lakeside", "Starling", "Harbor", "Granite", "Evergreen",
	"Copperleaf", "Highland", "Riverbend", "Sunrise", "Oakridge", "Westgate", "Pinecrest",
	"Stonebridge", "Maplewood"
};

static const char *const NAME_NOUNS[] = {
	"Logistics", "Analytics", "Health", "Retail", "Systems", "Foods", "Labs", "Media",
	"Capital", "Energy", "Learning", "Works", "Partners", "Networks", "Robotics", "Studios"
};

static const char *const FIRST_NAMES[] = {
	"Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "James",
	"Kemal", "Laura", "Marco", "Nina", "Omar", "Paula", "Quentin", "Rita", "Sven", "Tara"
};

static const char *const LAST_NAMES[] = {
	"Schmidt", "Garcia", "Nguyen", "Okafor", "Rossi", "Jensen", "Kowalski", "Dubois", "Silva",
	"Tanaka", "Murphy", "Novak", "Haddad", "Larsen", "Moreau", "Fischer", "Costa", "Ivanova",
	"Patel", "Brown"
};

static const char *const CHAMPION_ROLES[] = {
	"VP Operations", "Head of Customer Success", "Director of Analytics", "IT Manager", "Operations Manager"
};

static const char *const OTHER_ROLES[] = {
	"Analyst", "Finance Manager", "CTO", "Team Lead", "Procurement", "Engineer", "Sales Manager"
};

/* Ticket text by mood: 0 happy, 1 neutral, 2 frustrated, 3 angry. */
static const char *const TICKET_SUBJECTS[4][5] = {
	{"Question about %s", "How do I add a user to %s?", "Feature request for %s",
	 "Quick question on %s limits", "Can we book a training on %s?"},
	{"%s loads slowly", "%s sync delayed", "%s totals look off",
	 "Login issue when opening %s", "%s missing some columns"},
	{"Still waiting on the %s fix", "%s data missing again", "Third time reporting the %s bug",
	 "%s is getting slower every week", "%s keeps failing"},
	{"Unacceptable: %s down again", "Escalation: %s unusable", "Nothing works in %s",
	 "%s broken, we need an answer today", "Losing patience with %s"}
};

static const char *const TICKET_OPENERS[4][3] = {
	{"Hi team, thanks for the great product.", "Hello!", "Hi, quick one for you."},
	{"Hi,", "Hello support,", "Hi team,"},
	{"Hi, this is getting frustrating.", "We reported this before.", "Following up again."},
	{"This is unacceptable.", "We are very unhappy.", "I need an escalation now."}
};

static const char *const TICKET_ISSUES[4][3] = {
	{"Could you explain how %s works with several teams?", "We would like to roll %s out to more people.",
	 "Is there a way to automate %s?"},
	{"Since yesterday %s behaves oddly for some users.", "%s shows numbers that do not match our export.",
	 "Some users cannot open %s."},
	{"%s failed again this morning and the team lost time.", "The workaround for %s no longer helps.",
	 "Nobody has replied about %s for days."},
	{"%s has been unusable all week and our managers noticed.", "We pay for %s and it does not work.",
	 "Our team stopped using %s because it keeps breaking."}
};

/* Rare sentences of a customer thinking of leaving, more likely in angry tickets and before churn. */
static const char *const TICKET_CANCEL[] = {
	"Please tell us how to cancel at renewal.",
	"If this continues we will cancel our subscription.",
	"We are considering not renewing the contract.",
	"Our leadership is asking whether we should keep paying for this."
};

static const char *const TICKET_COMPETITOR[] = {
	"If this is not fixed we will look at alternative vendors.",
	"We are evaluating a competitor for next year.",
	"Another team here uses a cheaper competitor and likes it.",
	"We have a demo with another provider next week."
};

static const char *const TICKET_CLOSERS[4][3] = {
	{"Thanks a lot!", "Have a great day.", "Cheers."},
	{"Thanks.", "", "Let me know if you need more details."},
	{"Please look into it.", "We need this resolved.", ""},
	{"", "Fix it.", "We expect a call today."}
};

static const char *const NPS_LEAVING[] = {
	"We will probably cancel at the end of the term.", "We are looking at alternatives.",
	"Switching to a competitor that fits us better."
};

static const char *const NPS_COMMENTS[3][4] = {
	{"Too slow and buggy lately.", "Not worth the price for us.", "Hard to get the team to use it.",
	 "Support takes days to answer."},
	{"Good, but reporting could be better.", "Works fine, a bit pricey.", "Solid, missing a few integrations.",
	 "Does the job."},
	{"Great product, the team loves it.", "Saves us hours every week.", "Support is excellent.",
	 "Could not run our operations without it."}
};

static const char *const ENGAGEMENT_KINDS[] = {"meeting", "call", "email", "qbr", "training", "onsite"};

static const char *const ENGAGEMENT_NOTES[6][2][2] = {
	{{"Roadmap sync, customer asked about new features.", "Weekly check-in, adoption on track."},
	 {"Customer raised concerns about value.", "Check-in, sponsor distracted and short on time."}},
	{{"Call about rolling out to another team.", "Quick call, all good."},
	 {"Call about open escalations.", "Customer unhappy with support response times."}},
	{{"Sent release notes and tips.", "Shared best-practice guide."},
	 {"Follow-up on open issues, no reply yet.", "Reached out to re-engage the account."}},
	{{"QBR: reviewed goals, discussed expansion.", "QBR: strong adoption, renewal looks safe."},
	 {"QBR: usage down, customer questions ROI.", "QBR: renewal at risk, action plan agreed."}},
	{{"Training for new users.", "Advanced training on workflows."},
	 {"Re-onboarding training after low adoption.", "Training requested after complaints."}},
	{{"Onsite visit, met the executive sponsor.", "Onsite workshop with the ops team."},
	 {"Onsite to address escalation.", "Onsite rescue meeting with leadership."}}
};

/* Validated arguments plus derived dates. */
typedef struct DemoArgs
{
	int			customers;
	int			days;
	int			seed;
	DateADT		end_date;
	DateADT		start_date;		/* end_date - days: day index 0 */
} DemoArgs;

typedef struct Rng
{
	uint64		s[4];
} Rng;

/* A seat-pool user and how it behaves. */
typedef struct DemoUser
{
	double		p;				/* daily activity propensity on a good weekday */
	int			cls;			/* 0 dormant, 1 occasional, 2 regular, 3 power */
	int			hour;			/* typical hour of day (UTC) */
	int			join_day;		/* first day the user exists */
	int			leave_day;		/* first day the user is gone (a contraction), INT_MAX if never */
	Datum		user_id;
} DemoUser;

/* Everything hidden and visible about one customer. */
typedef struct Customer
{
	int			idx;
	pg_uuid_t	id;
	Archetype	arch;
	int			segment;
	int			industry;
	int			name_prefix;
	int			name_noun;
	int			parent;			/* index or -1 */
	int			seats0;			/* seats before any expansion */
	int			seats;			/* current seats */
	double		mrr0;
	double		mrr;
	bool		has_product[NPRODUCTS];
	double		prod_mrr[NPRODUCTS];
	DateADT		prod_start[NPRODUCTS];
	int			churn_day;		/* day index of churn, -1 if none (may exceed days for at_risk) */
	int			decline_len;
	int			expand_day;		/* -1 if no expansion in the window */
	int			expand_product; /* product added, or -1 for more core seats */
	double		expansion_mrr;
	int			shrink_day;		/* day of a contraction (fewer seats), -1 if none */
	int			shrink_fade;	/* days before it over which the cut seats go idle */
	int			shrink_seats;	/* core seats after it */
	int			shrink_product; /* add-on dropped with it, or -1 */
	double		shrink_mrr;		/* MRR lost */
	int			trouble_day;	/* start of a payment crisis, -1 if none */
	int			user_pool;		/* users that may appear (exceeds seats for growers) */
	DateADT		first_start;
	DateADT		contract_start;
	DateADT		contract_end;
	/* hidden health path */
	double		base;
	double		drift;
	double		growth;
	double		season_amp;
	double		season_period;
	double		season_phase;
	double		sigma;
	int			dip_start;
	int			dip_len;
	double		dip_depth;
	double		floor_health;
	double		decline_shape;
	double		activity;		/* overall usage level */
	double		breadth;		/* share of features adopted when healthy */
	double		sens_usage;
	int			lag_usage;
	double		sens_tickets;
	int			lag_tickets;
	double		sens_nps;
	int			lag_nps;
	double		ticket_mult;
	bool		late_payer;
	bool		attentive_csm;
	bool		surveyed;
	int			feature_perm[NFEATURES];
	int			nhealth;
	double	   *health;			/* health[d + PRE_DAYS], d in [-PRE_DAYS, days] */
} Customer;

/* splitmix64: seeds the generator from a few integers. */
static inline uint64
SplitMix64(uint64 *x)
{
	uint64		z = (*x += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* Seeds a stream from (seed, customer index, stream, sub-stream). */
static void
RngInit(Rng *r, int seed, int64 idx, Stream stream, int64 sub)
{
	uint64		x = (uint64) (int64) seed;
	uint64		h;

	h = SplitMix64(&x);
	x = h ^ ((uint64) idx * UINT64CONST(0xD1B54A32D192ED03));
	h = SplitMix64(&x);
	x = h ^ ((uint64) stream * UINT64CONST(0x8CB92BA72F3D8DD7)) ^ ((uint64) sub * UINT64CONST(0xABC98388FB8FAC03));
	for (int i = 0; i < 4; i++)
		r->s[i] = SplitMix64(&x);
}

/* Rotates x left by k bits. */
static inline uint64
Rotl(uint64 x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256**: the next 64 random bits. */
static inline uint64
RngNext(Rng *r)
{
	uint64	   *s = r->s;
	uint64		result = Rotl(s[1] * 5, 7) * 9;
	uint64		t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = Rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static inline double
RngUnif(Rng *r)
{
	return (RngNext(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [lo, hi). */
static inline double
RngRange(Rng *r, double lo, double hi)
{
	return lo + (hi - lo) * RngUnif(r);
}

/* Uniform integer in [lo, hi]. */
static inline int
RngInt(Rng *r, int lo, int hi)
{
	return lo + (int) (RngNext(r) % (uint64) (hi - lo + 1));
}

/* Log-uniform in [lo, hi): sizes are skewed towards the small end. */
static inline double
RngLogRange(Rng *r, double lo, double hi)
{
	return exp(RngRange(r, log(lo), log(hi)));
}

/* Standard normal (Box-Muller, one value per call). */
static double
RngNormal(Rng *r)
{
	double		u1 = ((RngNext(r) >> 11) + 1) * (1.0 / 9007199254740992.0);
	double		u2 = RngUnif(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Poisson count (Knuth for small means, normal approximation above). */
static int
RngPoisson(Rng *r, double lambda)
{
	if (lambda <= 0)
		return 0;
	if (lambda < 30)
	{
		double		l = exp(-lambda);
		double		p = 1.0;
		int			k = 0;

		do
		{
			k++;
			p *= RngUnif(r);
		} while (p > l);
		return k - 1;
	}
	return Max(0, (int) rint(lambda + sqrt(lambda) * RngNormal(r)));
}

/* Limits x to [lo, hi]. */
static inline double
Clamp(double x, double lo, double hi)
{
	return x < lo ? lo : (x > hi ? hi : x);
}

/* Timestamp (UTC) of day index d plus some seconds. */
static inline TimestampTz
DayTs(const DemoArgs *a, int d, int secs)
{
	return (TimestampTz) (a->start_date + d) * USECS_PER_DAY + (TimestampTz) secs * USECS_PER_SEC;
}

/* Rounds money to cents and returns it as numeric. */
static Datum
MoneyDatum(double x)
{
	char		buf[64];

	snprintf(buf, sizeof(buf), "%.2f", rint(x * 100.0) / 100.0);
	return DirectFunctionCall3(numeric_in, CStringGetDatum(buf), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* Checks the arguments shared by every demo function. */
static void
ParseDemoArgs(FunctionCallInfo fcinfo, int first, DemoArgs *a)
{
	static const char *const names[] = {"customers", "days", "seed", "end_date"};

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(first + i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", names[i])));
	a->customers = PG_GETARG_INT32(first);
	a->days = PG_GETARG_INT32(first + 1);
	a->seed = PG_GETARG_INT32(first + 2);
	a->end_date = PG_GETARG_DATEADT(first + 3);
	if (a->customers < 1 || a->customers > MAX_CUSTOMERS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("customers must be between 1 and %d, not %d", MAX_CUSTOMERS, a->customers)));
	if (a->days < 1 || a->days > MAX_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days must be between 1 and %d, not %d", MAX_DAYS, a->days)));
	if (DATE_NOT_FINITE(a->end_date) ||
		a->end_date < date2j(1990, 1, 1) - POSTGRES_EPOCH_JDATE ||
		a->end_date > date2j(2200, 1, 1) - POSTGRES_EPOCH_JDATE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("end_date must be a date between 1990-01-01 and 2200-01-01")));
	a->start_date = a->end_date - a->days;
}

/* The uuid of customer idx: a hash of (seed, idx) formatted as a version-4 uuid. */
static void
CustomerId(const DemoArgs *a, int idx, pg_uuid_t *id)
{
	Rng			r;
	uint64		hi,
				lo;

	RngInit(&r, a->seed, idx, STREAM_ID, 0);
	hi = RngNext(&r);
	lo = RngNext(&r);
	for (int i = 0; i < 8; i++)
	{
		id->data[i] = (unsigned char) (hi >> (56 - 8 * i));
		id->data[8 + i] = (unsigned char) (lo >> (56 - 8 * i));
	}
	id->data[6] = (id->data[6] & 0x0f) | 0x40;
	id->data[8] = (id->data[8] & 0x3f) | 0x80;
}

/* Segment of customer idx: the first draw of its profile stream. */
static int
CustomerSegment(const DemoArgs *a, int idx)
{
	Rng			r;
	double		u;

	RngInit(&r, a->seed, idx, STREAM_PROFILE, 0);
	u = RngUnif(&r);
	return u < 0.60 ? 0 : (u < 0.90 ? 1 : 2);
}

/* The health the customer's path is pulled towards on day d. */
static double
HealthTarget(const Customer *c, const DemoArgs *a, int d)
{
	double		t = c->base + c->drift * d;

	switch (c->arch)
	{
		case ARCH_GROWING:
			if (d > 0)
				t += c->growth * d / a->days;
			break;
		case ARCH_SEASONAL:
			t += c->season_amp * sin(2.0 * M_PI * (d + c->season_phase) / c->season_period);
			break;
		case ARCH_RECOVERING:
			if (d >= c->dip_start && d <= c->dip_start + c->dip_len)
			{
				double		x = (double) (d - c->dip_start) / c->dip_len;

				/* falls over 40% of the dip, recovers more slowly */
				t -= c->dip_depth * (x < 0.4 ? x / 0.4 : (1.0 - x) / 0.6);
			}
			break;
		case ARCH_AT_RISK:
		case ARCH_DECLINING_CHURN:
			if (d >= c->churn_day - c->decline_len)
			{
				double		x = Min(1.0, (double) (d - (c->churn_day - c->decline_len)) / c->decline_len);

				t -= (t - c->floor_health) * pow(x, c->decline_shape);
			}
			break;
		case ARCH_SUDDEN_CHURN:
			if (c->dip_len > 0 && d >= c->churn_day - c->dip_len)
				t -= c->dip_depth * (double) (d - (c->churn_day - c->dip_len)) / c->dip_len;
			break;
		case ARCH_STABLE:
			break;
	}
	return Clamp(t, 0.03, 0.97);
}

/* Health on day d (clamped to the simulated range). */
static inline double
HealthAt(const Customer *c, int d)
{
	int			i = d + PRE_DAYS;

	if (i < 0)
		i = 0;
	if (i >= c->nhealth)
		i = c->nhealth - 1;
	return c->health[i];
}

/* What a channel sees of health: deviations from baseline, scaled and lagged. */
static inline double
SignalAt(const Customer *c, int d, double sens, int lag)
{
	return Clamp(c->base + sens * (HealthAt(c, d - lag) - c->base), 0.01, 1.0);
}

/* True when the customer no longer exists as a customer on day d. */
static inline bool
IsGone(const Customer *c, int d)
{
	return c->churn_day >= 0 && (c->arch == ARCH_DECLINING_CHURN || c->arch == ARCH_SUDDEN_CHURN) &&
		d >= c->churn_day;
}

/* Rebuilds the full hidden and visible state of customer idx from the seed. */
static void
BuildCustomer(const DemoArgs *a, int idx, Customer *c)
{
	Rng			r;
	double		u,
				pchurn,
				unit_price,
				total,
				core_share;
	int			nproducts = 1;
	static const double seg_churn[NSEGMENTS] = {1.2, 0.9, 0.5};
	Rng			h;

	memset(c, 0, sizeof(*c));
	c->idx = idx;
	CustomerId(a, idx, &c->id);
	RngInit(&r, a->seed, idx, STREAM_PROFILE, 0);
	u = RngUnif(&r);			/* must stay the first draw: CustomerSegment() */
	c->segment = u < 0.60 ? 0 : (u < 0.90 ? 1 : 2);
	c->industry = RngInt(&r, 0, lengthof(INDUSTRIES) - 1);
	c->name_prefix = RngInt(&r, 0, lengthof(NAME_PREFIXES) - 1);
	c->name_noun = RngInt(&r, 0, lengthof(NAME_NOUNS) - 1);

	/* archetype: churners first (hazard over the window), then the others */
	pchurn = (1.0 - exp(-CHURN_HAZARD * a->days)) * seg_churn[c->segment];
	u = RngUnif(&r);
	if (u < pchurn)
		c->arch = RngUnif(&r) < 0.25 ? ARCH_SUDDEN_CHURN : ARCH_DECLINING_CHURN;
	else
	{
		u = RngUnif(&r);
		c->arch = u < 0.50 ? ARCH_STABLE : u < 0.65 ? ARCH_GROWING : u < 0.79 ? ARCH_SEASONAL :
			u < 0.92 ? ARCH_RECOVERING : ARCH_AT_RISK;
	}

	/* seats and price */
	switch (c->segment)
	{
		case 0:
			c->seats0 = (int) RngLogRange(&r, 3, 21);
			unit_price = RngRange(&r, 35, 75);
			total = Clamp(c->seats0 * unit_price, 100, 1500);
			break;
		case 1:
			c->seats0 = (int) RngLogRange(&r, 20, 101);
			unit_price = RngRange(&r, 60, 90);
			total = Clamp(c->seats0 * unit_price, 1500, 8000);
			break;
		default:
			c->seats0 = (int) RngLogRange(&r, 100, 401);
			unit_price = RngRange(&r, 80, 150);
			total = Clamp(c->seats0 * unit_price, 8000, 60000);
			break;
	}

	/* products, with co-occurrence: analytics pulls automation, automation pulls integrations */
	c->has_product[0] = true;
	c->has_product[1] = RngUnif(&r) < (c->segment == 2 ? 0.70 : 0.45);
	c->has_product[2] = RngUnif(&r) < (c->has_product[1] ? 0.55 : 0.15);
	c->has_product[3] = RngUnif(&r) < (c->has_product[2] ? 0.60 : 0.20) + (c->segment == 2 ? 0.15 : 0.0);
	c->has_product[4] = RngUnif(&r) < (c->segment == 2 ? 0.60 : c->segment == 1 ? 0.20 : 0.03);
	if (c->has_product[1] && c->has_product[2] && c->has_product[3] && c->has_product[4])
		c->has_product[c->segment == 2 ? 3 : 4] = false;	/* at most four products */
	core_share = 1.0;
	for (int p = 1; p < NPRODUCTS; p++)
		if (c->has_product[p])
		{
			core_share += PRODUCT_PRICE[p];
			nproducts++;
		}
	/* add-ons rounded to cents, core takes the rest so the lines add up exactly */
	total = rint(total * 100.0) / 100.0;
	c->prod_mrr[0] = total;
	for (int p = 1; p < NPRODUCTS; p++)
		if (c->has_product[p])
		{
			c->prod_mrr[p] = rint(total * PRODUCT_PRICE[p] / core_share * 100.0) / 100.0;
			c->prod_mrr[0] -= c->prod_mrr[p];
		}
	c->mrr0 = total;
	c->seats = c->seats0;
	c->mrr = c->mrr0;

	/* hidden health parameters */
	c->drift = RngNormal(&r) * 0.0003;
	c->sigma = RngRange(&r, 0.02, 0.035);
	c->churn_day = -1;
	c->expand_day = -1;
	c->expand_product = -1;
	switch (c->arch)
	{
		case ARCH_STABLE:
			c->base = RngRange(&r, 0.62, 0.92);
			break;
		case ARCH_GROWING:
			c->base = RngRange(&r, 0.68, 0.86);
			c->growth = RngRange(&r, 0.08, 0.18);
			c->drift = fabs(c->drift);
			break;
		case ARCH_SEASONAL:
			c->base = RngRange(&r, 0.50, 0.80);
			c->season_amp = RngRange(&r, 0.08, 0.18);
			c->season_period = RngUnif(&r) < 0.5 ? 91.0 : 365.0;
			c->season_phase = RngRange(&r, 0, c->season_period);
			c->sigma = RngRange(&r, 0.04, 0.06);
			break;
		case ARCH_RECOVERING:
			c->base = RngRange(&r, 0.60, 0.85);
			c->dip_len = RngInt(&r, 35, 80);
			c->dip_start = RngInt(&r, -30, Max(-30, a->days - c->dip_len));
			c->dip_depth = RngRange(&r, 0.25, 0.45);
			break;
		case ARCH_AT_RISK:
			c->base = RngRange(&r, 0.52, 0.80);
			c->churn_day = a->days + RngInt(&r, 10, 100);
			c->decline_len = RngInt(&r, 40, 120);
			c->floor_health = RngRange(&r, 0.08, 0.25);
			c->decline_shape = RngRange(&r, 0.7, 1.5);
			break;
		case ARCH_DECLINING_CHURN:
			c->base = RngRange(&r, 0.45, 0.80);
			c->churn_day = RngInt(&r, 1, a->days);
			/* most declines take one to three months, some up to four */
			c->decline_len = RngUnif(&r) < 0.8 ? RngInt(&r, 35, 90) : RngInt(&r, 90, 120);
			c->floor_health = RngRange(&r, 0.05, 0.20);
			c->decline_shape = RngRange(&r, 0.6, 1.3);
			break;
		case ARCH_SUDDEN_CHURN:
			c->base = RngRange(&r, 0.55, 0.85);
			c->churn_day = RngInt(&r, 1, a->days);
			/* a third show a small late dip; most show nothing */
			if (RngUnif(&r) < 0.35)
			{
				c->dip_len = RngInt(&r, 5, 20);
				c->dip_depth = RngRange(&r, 0.05, 0.20);
			}
			break;
	}

	/* channels: each sees health with its own sensitivity and lag */
	c->sens_usage = RngRange(&r, 0.55, 1.0);
	c->lag_usage = RngInt(&r, 0, 10);
	c->sens_tickets = RngRange(&r, 0.0, 1.0);
	c->lag_tickets = RngInt(&r, 0, 20);
	c->sens_nps = RngRange(&r, 0.3, 1.0);
	c->lag_nps = RngInt(&r, 0, 30);
	c->ticket_mult = RngLogRange(&r, 0.4, 2.5);
	c->late_payer = RngUnif(&r) < 0.08;
	c->attentive_csm = RngUnif(&r) < 0.40;
	c->surveyed = RngUnif(&r) < (c->segment == 2 ? 0.50 : 0.35);
	c->activity = RngLogRange(&r, 0.6, 1.6);
	c->breadth = RngRange(&r, 0.45, 1.0);
	for (int f = 0; f < NFEATURES; f++)
		c->feature_perm[f] = f;
	for (int f = NFEATURES - 1; f > 0; f--)
	{
		int			j = RngInt(&r, 0, f);
		int			tmp = c->feature_perm[f];

		/* core features stay in front, shuffled among themselves */
		if ((f < 3) != (j < 3))
			continue;
		c->feature_perm[f] = c->feature_perm[j];
		c->feature_perm[j] = tmp;
	}

	/*
	 * contracts: annual.  About two thirds of churners leave at renewal (the
	 * term ends on the churn day); the others cancel mid-term and their term
	 * runs past the churn day: the stored end date must not give churn away.
	 * Others' term covers end_date.
	 */
	if (IsGone(c, c->churn_day))
	{
		if (RngUnif(&r) < 0.65)
		{
			c->contract_end = a->start_date + c->churn_day;
			c->contract_start = c->contract_end - 364;
		}
		else
		{
			c->contract_start = a->start_date + c->churn_day - RngInt(&r, 30, 330);
			c->contract_end = c->contract_start + 364;
		}
	}
	else
	{
		c->contract_end = a->end_date + RngInt(&r, 0, 364);
		c->contract_start = c->contract_end - 364;
	}
	/* newer customers churn more: churners have shorter tenure on average */
	c->first_start = c->contract_start - 365 * RngInt(&r, 0, c->churn_day >= 0 ? 2 : 5);
	while (c->first_start > a->start_date - PRE_DAYS)
		c->first_start -= 365;
	for (int p = 0; p < NPRODUCTS; p++)
		c->prod_start[p] = (p == 0 || RngUnif(&r) < 0.5) ? c->first_start :
			c->first_start + 365 * RngInt(&r, 0, Max(0, (c->contract_start - c->first_start) / 365));

	/* parent: a few subsidiaries of an earlier mid-market or enterprise account */
	c->parent = -1;
	if (idx > 0 && RngUnif(&r) < 0.03)
	{
		int			j = (int) (RngNext(&r) % (uint64) idx);

		if (CustomerSegment(a, j) >= 1)
			c->parent = j;
	}

	/* growers outgrow their seats; most expand in the window, some not yet */
	if (c->arch == ARCH_GROWING)
	{
		c->user_pool = (int) ceil(c->seats0 * RngRange(&r, 1.25, 1.6));
		if (RngUnif(&r) < 0.6)
		{
			c->expand_day = RngInt(&r, (int) (a->days * 0.3), Max((int) (a->days * 0.3), a->days - 3));
			if (RngUnif(&r) < 0.5 && nproducts < 4)
			{
				/* cross-sell the most related missing product */
				static const int order[] = {2, 1, 3, 4};

				for (int k = 0; k < 4; k++)
					if (!c->has_product[order[k]])
					{
						c->expand_product = order[k];
						break;
					}
			}
			if (c->expand_product >= 0)
			{
				int			p = c->expand_product;

				c->expansion_mrr = rint(c->prod_mrr[0] * PRODUCT_PRICE[p] * 100.0) / 100.0;
				c->prod_mrr[p] = c->expansion_mrr;
			}
			else
			{
				int			more = (int) ceil(c->user_pool * RngRange(&r, 1.05, 1.2)) - c->seats0;

				c->expansion_mrr = rint(c->prod_mrr[0] * more / c->seats0 * 100.0) / 100.0;
				c->seats = c->seats0 + more;
			}
			c->mrr = c->mrr0 + c->expansion_mrr;
		}
	}
	else
		c->user_pool = c->seats0;

	/*
	 * Contractions and payment trouble, from their own stream.  A tenth of the
	 * customers who stay (not growing) cut core seats to half to three
	 * quarters, sometimes dropping an add-on too; the seats cut go idle one by
	 * one over the one to two and a half months before.  Late payers, and a few
	 * others, go through a payment crisis: invoices get later over the three
	 * months before it, then go unpaid for weeks or fail.
	 */
	{
		Rng			o;

		RngInit(&o, a->seed, idx, STREAM_OUTCOMES, 0);
		c->shrink_day = -1;
		c->shrink_product = -1;
		c->trouble_day = -1;
		if (!IsGone(c, c->churn_day) && c->arch != ARCH_GROWING && c->seats0 >= 4 && RngUnif(&o) < 0.10)
		{
			c->shrink_day = RngInt(&o, (int) (a->days * 0.2), Max((int) (a->days * 0.2), a->days - 3));
			c->shrink_fade = RngInt(&o, 30, 75);
			c->shrink_seats = Max(1, (int) ceil(c->seats0 * RngRange(&o, 0.5, 0.75)));
			c->shrink_mrr = rint(c->prod_mrr[0] * (c->seats0 - c->shrink_seats) / c->seats0 * 100.0) / 100.0;
			/*
			 * The add-on dropped must have started before the cut: an add-on
			 * bought later in the window (prod_start after the shrink day)
			 * would otherwise get a line that ends before it starts.
			 */
			if (RngUnif(&o) < 0.4)
				for (int p = NPRODUCTS - 1; p > 0; p--)
					if (c->has_product[p] && c->prod_start[p] < a->start_date + c->shrink_day)
					{
						c->shrink_product = p;
						c->shrink_mrr += c->prod_mrr[p];
						break;
					}
			c->seats = c->shrink_seats;
			c->mrr = c->mrr0 - c->shrink_mrr;
		}
		if (RngUnif(&o) < (c->late_payer ? 0.5 : 0.03))
			c->trouble_day = RngInt(&o, 30, Max(30, a->days - 20));
	}

	/* the hidden health path: mean-reverting noisy walk around the target */
	c->nhealth = PRE_DAYS + a->days + 1;
	c->health = palloc(sizeof(double) * c->nhealth);
	RngInit(&h, a->seed, idx, STREAM_HEALTH, 0);
	c->health[0] = Clamp(HealthTarget(c, a, -PRE_DAYS) + 0.05 * RngNormal(&h), 0.01, 0.99);
	for (int i = 1; i < c->nhealth; i++)
	{
		double		prev = c->health[i - 1];

		c->health[i] = Clamp(prev + 0.2 * (HealthTarget(c, a, i - PRE_DAYS) - prev) + c->sigma * RngNormal(&h),
							 0.01, 0.99);
	}
}

/* Activity multiplier of a calendar day: weekends and year-end holidays are quiet. */
static double
DayFactor(DateADT date)
{
	int			jd = date + POSTGRES_EPOCH_JDATE;
	int			dow = j2day(jd);
	int			y,
				m,
				d;

	j2date(jd, &y, &m, &d);
	if ((m == 12 && d >= 24) || (m == 1 && d == 1))
		return 0.25;
	if (dow == 0)
		return 0.08;
	if (dow == 6)
		return 0.12;
	return 1.0;
}

/* Writes one customers row. */
static void
EmitCustomer(const DemoArgs *a, const Customer *c, ReturnSetInfo *rsinfo)
{
	Datum		v[15];
	bool		n[15] = {0};
	char		buf[128];
	static const char *const sizes[NSEGMENTS][2] = {{"1-10", "11-50"}, {"51-200", "201-500"}, {"501-1000", "1001-5000"}};
	pg_uuid_t  *parent = NULL;

	v[0] = UUIDPGetDatum(&c->id);
	snprintf(buf, sizeof(buf), "demo-%06d", c->idx + 1);
	v[1] = CStringGetTextDatum(buf);
	snprintf(buf, sizeof(buf), "%s %s", NAME_PREFIXES[c->name_prefix], NAME_NOUNS[c->name_noun]);
	v[2] = CStringGetTextDatum(buf);
	v[3] = CStringGetTextDatum(INDUSTRIES[c->industry]);
	v[4] = CStringGetTextDatum(sizes[c->segment][c->seats0 > (c->segment == 0 ? 10 : c->segment == 1 ? 50 : 250)]);
	v[5] = MoneyDatum(c->mrr);
	v[6] = DateADTGetDatum(c->contract_start);
	v[7] = DateADTGetDatum(c->contract_end);
	v[8] = TimestampTzGetDatum((TimestampTz) c->first_start * USECS_PER_DAY);
	v[9] = TimestampTzGetDatum((TimestampTz) a->end_date * USECS_PER_DAY);
	v[10] = CStringGetTextDatum(SEGMENTS[c->segment]);
	snprintf(buf, sizeof(buf), "csm_%02d", c->idx % NCSMS + 1);
	v[11] = CStringGetTextDatum(buf);
	if (c->parent >= 0)
	{
		parent = palloc(sizeof(pg_uuid_t));
		CustomerId(a, c->parent, parent);
		v[12] = UUIDPGetDatum(parent);
	}
	else
		n[12] = true;
	v[13] = Int32GetDatum(c->seats);
	if (IsGone(c, c->churn_day))
		v[14] = DateADTGetDatum(a->start_date + c->churn_day);
	else
		n[14] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
}

/* Writes the customer's hidden state to the ground truth. */
static void
EmitGroundTruth(const DemoArgs *a, const Customer *c, ReturnSetInfo *rsinfo)
{
	Datum		v[7];
	bool		n[7] = {0};
	bool		gone = IsGone(c, c->churn_day);

	v[0] = UUIDPGetDatum(&c->id);
	v[1] = CStringGetTextDatum(ARCHETYPE_NAMES[c->arch]);
	if (gone)
		v[2] = DateADTGetDatum(a->start_date + c->churn_day);
	else
		n[2] = true;
	if (c->expand_day >= 0)
	{
		v[3] = DateADTGetDatum(a->start_date + c->expand_day);
		v[4] = MoneyDatum(c->expansion_mrr);
	}
	else
		n[3] = n[4] = true;
	v[5] = Float8GetDatum(rint(HealthAt(c, 0) * 1e6) / 1e6);
	v[6] = Float8GetDatum(rint(HealthAt(c, gone ? c->churn_day : a->days) * 1e6) / 1e6);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
}

/* Writes one subscriptions row. */
static void
PutSubscription(ReturnSetInfo *rsinfo, const Customer *c, int p, int seats, double mrr, DateADT start, DateADT end)
{
	Datum		v[6];
	bool		n[6] = {0};

	v[0] = UUIDPGetDatum(&c->id);
	v[1] = CStringGetTextDatum(PRODUCTS[p]);
	v[2] = Int32GetDatum(seats);
	v[3] = MoneyDatum(mrr);
	v[4] = DateADTGetDatum(start);
	if (end != DATEVAL_NOEND)
		v[5] = DateADTGetDatum(end);
	else
		n[5] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
}

/* Writes the customer's subscriptions, including an expansion. */
static void
EmitSubscriptions(const DemoArgs *a, const Customer *c, ReturnSetInfo *rsinfo)
{
	DateADT		end = IsGone(c, c->churn_day) ? a->start_date + c->churn_day : DATEVAL_NOEND;
	DateADT		expand = a->start_date + c->expand_day;

	for (int p = 0; p < NPRODUCTS; p++)
	{
		int			seats = (p == 4) ? 0 : (p == 3 ? Max(1, c->seats0 / 10) : c->seats0);

		if (!c->has_product[p])
			continue;
		if (p == 0 && c->expand_day >= 0 && c->expand_product < 0)
		{
			/* more seats: the old core line ends, a larger one starts */
			/* ended_at is the first day without it: no day between the two */
			PutSubscription(rsinfo, c, 0, c->seats0, c->prod_mrr[0], c->prod_start[0], expand);
			PutSubscription(rsinfo, c, 0, c->seats, c->prod_mrr[0] + c->expansion_mrr, expand, end);
		}
		else if (c->shrink_day >= 0 && p == 0)
		{
			/* a contraction: the core line ends, a smaller one starts */
			DateADT		shrink = a->start_date + c->shrink_day;

			PutSubscription(rsinfo, c, 0, c->seats0, c->prod_mrr[0], c->prod_start[0], shrink);
			PutSubscription(rsinfo, c, 0, c->shrink_seats,
							c->prod_mrr[0] - (c->shrink_mrr - (c->shrink_product >= 0 ? c->prod_mrr[c->shrink_product] : 0)),
							shrink, end);
		}
		else if (c->shrink_day >= 0 && p == c->shrink_product)
			PutSubscription(rsinfo, c, p, seats, c->prod_mrr[p], c->prod_start[p], a->start_date + c->shrink_day);
		else
			PutSubscription(rsinfo, c, p, seats, c->prod_mrr[p], c->prod_start[p], end);
	}
	if (c->expand_day >= 0 && c->expand_product >= 0)
		PutSubscription(rsinfo, c, c->expand_product, c->expand_product == 4 ? 0 : c->seats0,
						c->expansion_mrr, expand, end);
}

/* Writes the customer's contacts: usually one champion, who may leave. */
static void
EmitContacts(const DemoArgs *a, const Customer *c, ReturnSetInfo *rsinfo)
{
	Rng			r;
	int			ncontacts;
	bool		champion;
	char		domain[96];
	char	   *s;

	RngInit(&r, a->seed, c->idx, STREAM_CONTACTS, 0);
	ncontacts = c->segment == 0 ? RngInt(&r, 1, 3) : c->segment == 1 ? RngInt(&r, 2, 5) : RngInt(&r, 4, 9);
	champion = RngUnif(&r) < (c->segment == 0 ? 0.80 : c->segment == 1 ? 0.87 : 0.92);
	snprintf(domain, sizeof(domain), "%s-%s.example", NAME_PREFIXES[c->name_prefix], NAME_NOUNS[c->name_noun]);
	for (s = domain; *s; s++)
		*s = pg_ascii_tolower((unsigned char) *s);

	for (int k = 0; k < ncontacts; k++)
	{
		Datum		v[6];
		bool		n[6] = {0};
		char		buf[160];
		int			fn = RngInt(&r, 0, lengthof(FIRST_NAMES) - 1);
		int			ln = RngInt(&r, 0, lengthof(LAST_NAMES) - 1);
		bool		is_champion = champion && k == 0;
		int			left_day = INT_MIN;
		double		pleave;
		char	   *e;

		v[0] = UUIDPGetDatum(&c->id);
		snprintf(buf, sizeof(buf), "%s %s", FIRST_NAMES[fn], LAST_NAMES[ln]);
		v[1] = CStringGetTextDatum(buf);
		snprintf(buf, sizeof(buf), "%s.%s%d@%s", FIRST_NAMES[fn], LAST_NAMES[ln], k + 1, domain);
		for (e = buf; *e; e++)
			*e = pg_ascii_tolower((unsigned char) *e);
		v[2] = CStringGetTextDatum(buf);
		v[3] = CStringGetTextDatum(is_champion ? CHAMPION_ROLES[RngInt(&r, 0, lengthof(CHAMPION_ROLES) - 1)] :
								   OTHER_ROLES[RngInt(&r, 0, lengthof(OTHER_ROLES) - 1)]);
		v[4] = BoolGetDatum(is_champion);

		/* champions leave more often before churn, but healthy accounts lose them too */
		if (is_champion)
			pleave = c->arch == ARCH_DECLINING_CHURN ? 0.40 : c->arch == ARCH_AT_RISK ? 0.30 :
				c->arch == ARCH_RECOVERING ? 0.25 : c->arch == ARCH_SUDDEN_CHURN ? 0.15 : 0.05;
		else
			pleave = 0.05;
		if (RngUnif(&r) < pleave)
		{
			if (is_champion && (c->arch == ARCH_DECLINING_CHURN || c->arch == ARCH_AT_RISK))
				left_day = RngInt(&r, c->churn_day - c->decline_len, Max(c->churn_day - c->decline_len, c->churn_day - 10));
			else if (is_champion && c->arch == ARCH_RECOVERING)
				left_day = c->dip_start + RngInt(&r, -10, 10);
			else
				left_day = RngInt(&r, -60, a->days);
			if (left_day > a->days)
				left_day = INT_MIN;
		}
		if (left_day != INT_MIN)
			v[5] = TimestampTzGetDatum(DayTs(a, left_day, RngInt(&r, 8 * 3600, 18 * 3600)));
		else
			n[5] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);

		/* the account names a new champion after some departures */
		if (is_champion && left_day != INT_MIN && !IsGone(c, left_day + 30) && RngUnif(&r) < 0.35)
		{
			bool		n2[6] = {0};

			fn = RngInt(&r, 0, lengthof(FIRST_NAMES) - 1);
			ln = RngInt(&r, 0, lengthof(LAST_NAMES) - 1);
			snprintf(buf, sizeof(buf), "%s %s", FIRST_NAMES[fn], LAST_NAMES[ln]);
			v[1] = CStringGetTextDatum(buf);
			snprintf(buf, sizeof(buf), "%s.%s%d@%s", FIRST_NAMES[fn], LAST_NAMES[ln], ncontacts + 1, domain);
			for (e = buf; *e; e++)
				*e = pg_ascii_tolower((unsigned char) *e);
			v[2] = CStringGetTextDatum(buf);
			v[3] = CStringGetTextDatum(CHAMPION_ROLES[RngInt(&r, 0, lengthof(CHAMPION_ROLES) - 1)]);
			n2[5] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n2);
		}
	}
}

/* Writes monthly invoices: late or failed payments are likelier when unhealthy. */
static void
EmitInvoices(const DemoArgs *a, const Customer *c, ReturnSetInfo *rsinfo)
{
	Rng			r;
	int			y,
				m,
				dom,
				ey,
				em,
				ed,
				seq = 0;
	int			net = c->segment == 0 ? 14 : c->segment == 1 ? 30 : 45;
	bool		gone_ever = IsGone(c, c->churn_day);

	RngInit(&r, a->seed, c->idx, STREAM_INVOICES, 0);
	j2date(c->contract_start + POSTGRES_EPOCH_JDATE, &y, &m, &dom);
	dom = Min(dom, 28);
	j2date(a->start_date + POSTGRES_EPOCH_JDATE, &y, &m, &ed);
	j2date(a->end_date + POSTGRES_EPOCH_JDATE, &ey, &em, &ed);
	for (; y < ey || (y == ey && m <= em); m = (m == 12 ? 1 : m + 1), y = (m == 1 ? y + 1 : y))
	{
		DateADT		issued = date2j(y, m, dom) - POSTGRES_EPOCH_JDATE;
		int			d = issued - a->start_date;
		double		h,
					plate;
		int			pay;
		const char *status;
		Datum		v[7];
		bool		n[7] = {0};
		char		buf[64];

		if (issued < a->start_date || issued > a->end_date)
			continue;
		if (IsGone(c, d))
			break;
		h = HealthAt(c, d);
		seq++;
		v[0] = UUIDPGetDatum(&c->id);
		snprintf(buf, sizeof(buf), "demo-inv-%06d-%03d", c->idx + 1, seq);
		v[1] = CStringGetTextDatum(buf);
		v[2] = MoneyDatum((c->expand_day >= 0 && d >= c->expand_day) || (c->shrink_day >= 0 && d >= c->shrink_day) ?
						  c->mrr : c->mrr0);
		v[3] = DateADTGetDatum(issued);
		v[4] = DateADTGetDatum(issued + net);

		plate = c->late_payer ? 0.55 : 0.03 + 0.40 * pow(1.0 - h, 2.5);
		status = "paid";
		if (RngUnif(&r) < 0.01 + 0.12 * (1.0 - h) * (1.0 - h))
		{
			/* a failed charge: usually recovered late by a retry, else written off */
			if (RngUnif(&r) < 0.5 + 0.4 * h)
				pay = issued + net + RngInt(&r, 3, 25);
			else
			{
				status = issued < a->end_date - 60 ? "uncollectible" : "failed";
				pay = -1;
			}
		}
		else if (RngUnif(&r) < plate)
			pay = issued + net + 1 + (int) (8.0 * exp(0.7 * RngNormal(&r)));
		else
			pay = issued + RngInt(&r, 0, net);
		if (c->trouble_day >= 0 && d >= c->trouble_day - 90 && d < c->trouble_day + 75)
		{
			Rng			t;

			RngInit(&t, a->seed, c->idx, STREAM_OUTCOMES, seq);
			/*
			 * Each branch sets the status with the payment: a write-off drawn
			 * above must not keep its status once the crisis gives it a
			 * payment date (paid_at needs status paid).
			 */
			if (d < c->trouble_day)
			{
				/* the run-up: later and later */
				if (RngUnif(&t) < 0.75)
				{
					status = "paid";
					pay = issued + net + 1 + (int) ((90 - (c->trouble_day - d)) / 90.0 * 25.0) + RngInt(&t, 0, 8);
				}
			}
			else if (RngUnif(&t) < 0.35)
			{
				status = issued < a->end_date - 60 ? "uncollectible" : "failed";
				pay = -1;
			}
			else
			{
				status = "paid";
				pay = issued + net + RngInt(&t, 35, 90);
			}
		}
		if (pay >= 0)
		{
			if (gone_ever && pay > a->start_date + c->churn_day && RngUnif(&r) < 0.6)
			{
				status = "uncollectible";
				pay = -1;
			}
			else if (pay > a->end_date)
			{
				/* not paid yet: open, or failed when the retry is still pending */
				status = pay > issued + net + 2 && RngUnif(&r) < 0.3 ? "failed" : "open";
				pay = -1;
			}
		}
		if (pay >= 0)
			v[5] = DateADTGetDatum(pay);
		else
			n[5] = true;
		v[6] = CStringGetTextDatum(status);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
}

/* Writes support tickets: more, more urgent and angrier as health declines. */
static void
EmitTickets(const DemoArgs *a, const Customer *c, ReturnSetInfo *rsinfo)
{
	Rng			r;
	static const double seg_rate[NSEGMENTS] = {0.012, 0.03, 0.07};
	/* cumulative chance of low, normal, high (then urgent) by mood */
	static const double prio_cdf[4][3] = {
		{0.45, 0.90, 0.98}, {0.20, 0.75, 0.95}, {0.05, 0.50, 0.85}, {0.02, 0.25, 0.70}
	};
	TimestampTz now_ts = DayTs(a, a->days + 1, 0);
	int			seq = 0;

	RngInit(&r, a->seed, c->idx, STREAM_TICKETS, 0);
	for (int d = 0; d <= a->days && !IsGone(c, d); d++)
	{
		double		eff = SignalAt(c, d, c->sens_tickets, c->lag_tickets);
		double		rate = seg_rate[c->segment] * c->ticket_mult * (0.6 + 2.2 * (1.0 - eff));
		int			count;

		/* disengaged accounts go quiet rather than complain */
		if (eff < 0.2)
			rate *= 0.5;
		if (DayFactor(a->start_date + d) < 1.0)
			rate *= 0.3;
		count = RngPoisson(&r, rate);
		for (int k = 0; k < count; k++)
		{
			Datum		v[9];
			bool		n[9] = {0};
			char		buf[512];
			double		mood_h = eff + 0.15 * RngNormal(&r);
			int			mood = mood_h > 0.7 ? 0 : mood_h > 0.5 ? 1 : mood_h > 0.3 ? 2 : 3;
			double		shift = RngUnif(&r);
			/* cancellation and competitor sentences: rare, likelier when angry and before churn */
			static const double p_cancel[4] = {0.002, 0.005, 0.025, 0.07};
			static const double p_compet[4] = {0.003, 0.008, 0.03, 0.06};
			bool		leaving = c->churn_day >= 0 && c->churn_day - d >= 0 && c->churn_day - d <= 120;
			double		u = RngUnif(&r);
			int			prio;
			static const char *const prios[] = {"low", "normal", "high", "urgent"};
			static const double ttc_base[] = {60, 30, 12, 4};
			const char *feature = FEATURES[c->feature_perm[RngInt(&r, 0, NFEATURES - 1)]];
			TimestampTz opened = DayTs(a, d, RngInt(&r, 7 * 3600, 19 * 3600));
			TimestampTz closed;
			double		ttc_h;
			int			t;

			/* anyone has a bad day, and unhappy customers sometimes write calmly */
			if (shift < 0.10)
				mood = Min(mood + 1 + (shift < 0.03), 3);
			else if (shift > 0.92)
				mood = Max(mood - 1, 0);
			prio = u < prio_cdf[mood][0] ? 0 : u < prio_cdf[mood][1] ? 1 : u < prio_cdf[mood][2] ? 2 : 3;
			ttc_h = ttc_base[prio] * (1.0 + 2.0 * (1.0 - eff)) * exp(0.8 * RngNormal(&r));
			closed = opened + (TimestampTz) (ttc_h * 3600.0) * USECS_PER_SEC;

			seq++;
			v[0] = UUIDPGetDatum(&c->id);
			snprintf(buf, sizeof(buf), "demo-t-%06d-%04d", c->idx + 1, seq);
			v[1] = CStringGetTextDatum(buf);
			v[2] = TimestampTzGetDatum(opened);
			if (closed < now_ts)
			{
				v[3] = TimestampTzGetDatum(closed);
				v[5] = CStringGetTextDatum(RngUnif(&r) < 0.3 ? "solved" : "closed");
				/* csat: often not given, lower when unhappy or slow */
				if (RngUnif(&r) < 0.45)
				{
					int			csat = (int) rint(1.0 + 4.0 * eff - 0.3 * log1p(ttc_h / 24.0) + 0.8 * RngNormal(&r));

					v[6] = Int16GetDatum((int16) Clamp(csat, 1, 5));
				}
				else
					n[6] = true;
			}
			else
			{
				static const char *const open_status[] = {"new", "open", "pending", "on_hold"};

				n[3] = true;
				v[5] = CStringGetTextDatum(open_status[RngInt(&r, 0, 3)]);
				n[6] = true;
			}
			v[4] = CStringGetTextDatum(prios[prio]);
			t = RngInt(&r, 0, 4);
			snprintf(buf, sizeof(buf), TICKET_SUBJECTS[mood][t], feature);
			buf[0] = pg_ascii_toupper((unsigned char) buf[0]);
			v[7] = CStringGetTextDatum(buf);
			{
				char		issue[256];
				const char *cancel = "";
				const char *compet = "";
				const char *closer = TICKET_CLOSERS[mood][RngInt(&r, 0, 2)];

				snprintf(issue, sizeof(issue), TICKET_ISSUES[mood][RngInt(&r, 0, 2)], feature);
				issue[0] = pg_ascii_toupper((unsigned char) issue[0]);
				if (RngUnif(&r) < p_cancel[mood] * (leaving ? 3.0 : 1.0))
					cancel = TICKET_CANCEL[RngInt(&r, 0, lengthof(TICKET_CANCEL) - 1)];
				if (RngUnif(&r) < p_compet[mood] * (leaving ? 2.5 : 1.0))
					compet = TICKET_COMPETITOR[RngInt(&r, 0, lengthof(TICKET_COMPETITOR) - 1)];
				snprintf(buf, sizeof(buf), "%s %s%s%s%s%s%s%s", TICKET_OPENERS[mood][RngInt(&r, 0, 2)], issue,
						 *cancel ? " " : "", cancel, *compet ? " " : "", compet, *closer ? " " : "", closer);
			}
			v[8] = CStringGetTextDatum(buf);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
		}
	}
}

/* Writes one engagement row. */
static void
PutEngagement(const DemoArgs *a, const Customer *c, ReturnSetInfo *rsinfo, Rng *r, int kind, int d, double eff)
{
	Datum		v[4];
	bool		n[4] = {0};
	int			tone = eff + 0.1 * RngNormal(r) < 0.45 ? 1 : 0;

	v[0] = UUIDPGetDatum(&c->id);
	v[1] = CStringGetTextDatum(ENGAGEMENT_KINDS[kind]);
	v[2] = TimestampTzGetDatum(DayTs(a, d, RngInt(r, 8 * 3600, 18 * 3600)));
	v[3] = CStringGetTextDatum(ENGAGEMENT_NOTES[kind][tone][RngInt(r, 0, 1)]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
}

/* Writes CSM touches: fewer with disengaged customers, more outreach from attentive CSMs. */
static void
EmitEngagements(const DemoArgs *a, const Customer *c, ReturnSetInfo *rsinfo)
{
	Rng			r;
	/* daily rates per segment: meeting, call, email, -, training, onsite */
	static const double rates[NSEGMENTS][6] = {
		{1.0 / 120, 1.0 / 60, 1.0 / 21, 0, 1.0 / 200, 0},
		{1.0 / 45, 1.0 / 30, 1.0 / 12, 0, 1.0 / 120, 1.0 / 400},
		{1.0 / 14, 1.0 / 14, 1.0 / 6, 0, 1.0 / 60, 1.0 / 120}
	};
	int			qbr_phase;

	RngInit(&r, a->seed, c->idx, STREAM_ENGAGEMENTS, 0);
	qbr_phase = RngInt(&r, 0, 90);
	for (int d = 0; d <= a->days && !IsGone(c, d); d++)
	{
		double		h = HealthAt(c, d);
		double		respond = 0.3 + 0.9 * h;	/* will the customer take the meeting */
		double		outreach = (c->attentive_csm && h < 0.5) ? 2.5 : 0.6 + 0.6 * h;

		if (DayFactor(a->start_date + d) < 1.0)
			continue;
		for (int k = 0; k < 6; k++)
		{
			double		p = rates[c->segment][k];

			if (k == 3 || p == 0)
				continue;
			p *= (k == 2) ? outreach : (k == 1 ? 0.5 * (respond + outreach) : respond);
			if (RngUnif(&r) < p)
				PutEngagement(a, c, rsinfo, &r, k, d, h);
		}
		/* quarterly business reviews for larger accounts, skipped by disengaged ones */
		if (c->segment >= 1 && (d + qbr_phase) % 91 == 0 && RngUnif(&r) < 0.45 + 0.55 * h)
			PutEngagement(a, c, rsinfo, &r, 3, d, h);
	}
}

/* Writes NPS answers of surveyed customers: score follows lagged health plus noise. */
static void
EmitNps(const DemoArgs *a, const Customer *c, ReturnSetInfo *rsinfo)
{
	Rng			r;
	int			phase;

	if (!c->surveyed)
		return;
	RngInit(&r, a->seed, c->idx, STREAM_NPS, 0);
	phase = RngInt(&r, 0, 89);
	for (int d = phase; d <= a->days && !IsGone(c, d); d += 90)
	{
		double		eff = SignalAt(c, d, c->sens_nps, c->lag_nps);
		int			respondents = c->segment == 2 ? RngInt(&r, 1, 3) : 1;

		for (int k = 0; k < respondents; k++)
		{
			Datum		v[4];
			bool		n[4] = {0};
			int			score;
			/*
			 * Min() evaluates its arguments twice, so this draws once or twice;
			 * the second draw can pass end_date.  Kept for the same rows from
			 * the same seed, then clamped: no answer after end_date.
			 */
			int			day = Min(a->days, d + RngInt(&r, 0, 6));

			day = Min(day, a->days);

			if (RngUnif(&r) >= 0.35 + 0.35 * eff || IsGone(c, day))
				continue;
			score = (int) Clamp(rint(1.5 + 9.0 * eff + 1.3 * RngNormal(&r)), 0, 10);
			v[0] = UUIDPGetDatum(&c->id);
			v[1] = Int16GetDatum((int16) score);
			if (RngUnif(&r) < 0.6)
			{
				int			bucket = score <= 6 ? 0 : score <= 8 ? 1 : 2;
				double		u = RngUnif(&r);
				bool		leaving = c->churn_day >= 0 && c->churn_day - day >= 0 && c->churn_day - day <= 150;

				/* a comment does not always match the score */
				if (u < 0.12)
					bucket = RngInt(&r, 0, 2);
				if (bucket == 0 && RngUnif(&r) < (leaving ? 0.15 : 0.03))
					v[2] = CStringGetTextDatum(NPS_LEAVING[RngInt(&r, 0, lengthof(NPS_LEAVING) - 1)]);
				else
					v[2] = CStringGetTextDatum(NPS_COMMENTS[bucket][RngInt(&r, 0, 3)]);
			}
			else
				n[2] = true;
			v[3] = TimestampTzGetDatum(DayTs(a, day, RngInt(&r, 6 * 3600, 22 * 3600)));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
		}
	}
}

/* Draws the customer's seat pool: dormant, occasional, regular and power users. */
static DemoUser *
BuildUsers(const DemoArgs *a, const Customer *c)
{
	Rng			r;
	DemoUser   *users = palloc(sizeof(DemoUser) * c->user_pool);
	/* growers have broad adoption: few dormant seats */
	const double *mix;
	static const double normal_mix[] = {0.30, 0.75, 0.93};
	static const double growing_mix[] = {0.05, 0.45, 0.82};

	mix = c->arch == ARCH_GROWING ? growing_mix : normal_mix;
	RngInit(&r, a->seed, c->idx, STREAM_USERS, 0);
	for (int k = 0; k < c->user_pool; k++)
	{
		DemoUser   *u = &users[k];
		double		x = RngUnif(&r);
		char		buf[16];

		u->cls = x < mix[0] ? 0 : x < mix[1] ? 1 : x < mix[2] ? 2 : 3;
		switch (u->cls)
		{
			case 0:
				u->p = 0.004;
				break;
			case 1:
				u->p = RngRange(&r, 0.04, 0.12);
				break;
			case 2:
				u->p = RngRange(&r, 0.20, 0.40);
				break;
			default:
				u->p = RngRange(&r, 0.60, 0.90);
				break;
		}
		u->hour = RngInt(&r, 6, 17);
		/* users beyond the original seats join gradually over the window */
		u->join_day = k < c->seats0 ? INT_MIN :
			(int) ((double) (k - c->seats0 + 1) / (c->user_pool - c->seats0 + 1) * a->days * 0.85);
		/* before a contraction the seats to be cut go idle one by one */
		u->leave_day = c->shrink_day >= 0 && k >= c->shrink_seats ?
			c->shrink_day - c->shrink_fade +
			(int) ((double) (k - c->shrink_seats + 1) / (c->seats0 - c->shrink_seats + 1) * c->shrink_fade) : INT_MAX;
		snprintf(buf, sizeof(buf), "u%04d", k + 1);
		u->user_id = CStringGetTextDatum(buf);
	}
	return users;
}

/* Writes one row per active user-day for days [d0, d1]. */
static void
EmitUsageDays(const DemoArgs *a, const Customer *c, const DemoUser *users, int d0, int d1,
			  ReturnSetInfo *rsinfo, const Datum *feature_datums, Datum session)
{
	/* how strongly each class reacts to poor health: occasional users drop out first */
	static const double gamma[] = {1.0, 2.4, 1.6, 1.0};
	/* small accounts use their few seats intensely, large ones carry shelfware */
	static const double seg_activity[NSEGMENTS] = {3.0, 1.2, 0.55};
	static const double depth[] = {2.5, 2.0, 1.2, 0.7};
	static const double qmean[] = {2.0, 3.0, 8.0, 20.0};

	for (int d = d0; d <= d1; d++)
	{
		Rng			r;
		double		eff,
					dayf,
					pw[4];
		int			nfeat;

		if (IsGone(c, d))
			break;
		RngInit(&r, a->seed, c->idx, STREAM_USAGE, d);
		eff = SignalAt(c, d, c->sens_usage, c->lag_usage);
		dayf = DayFactor(a->start_date + d) * exp(0.2 * RngNormal(&r)) * c->activity * seg_activity[c->segment] * ACTIVITY_SCALE;
		for (int k = 0; k < 4; k++)
			pw[k] = pow(eff, gamma[k]) * dayf;
		nfeat = Min(NFEATURES, 2 + (int) rint(c->breadth * eff * (NFEATURES - 2)));
		for (int k = 0; k < c->user_pool; k++)
		{
			const DemoUser *u = &users[k];
			Datum		v[6];
			bool		n[6] = {0};
			int			f,
						hour;
			double		q;

			if (d < u->join_day || d >= u->leave_day || RngUnif(&r) >= u->p * pw[u->cls])
				continue;
			f = (int) (pow(RngUnif(&r), depth[u->cls]) * nfeat);
			q = rint(qmean[u->cls] * (0.5 + eff) * exp(0.5 * RngNormal(&r)));
			hour = (int) Clamp(u->hour + rint(1.5 * RngNormal(&r)), 0, 23);
			v[0] = UUIDPGetDatum(&c->id);
			v[1] = u->user_id;
			v[2] = session;
			v[3] = feature_datums[c->feature_perm[Min(f, nfeat - 1)]];
			v[4] = Float8GetDatum(Max(1.0, q));
			v[5] = TimestampTzGetDatum(DayTs(a, d, hour * 3600 + RngInt(&r, 0, 3599)));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
		}
	}
}

/*
 * The consumer profile (profile => 'consumer').
 *
 * A consumer app on monthly plans, unlike the B2B world above in the ways real
 * data is: an account per subscriber with one or a few users, staggered sign-ups
 * over the window, monthly terms of 28-31 days (cs.contract_terms) renewed
 * until one is not, ten event types of which only some follow the account's
 * hidden engagement, and nothing else (no tickets, invoices, NPS, seats,
 * meetings or contacts; created_at is left to the load time).
 *
 * Hidden state: engagement in [0,1], a mean-reverting walk around the
 * account's base level.  A disengagement episode starts at a random time
 * (exponential, mean C_ONSET_MEAN days after sign-up) and pulls engagement
 * down to a floor over two to eight weeks; some episodes recover.  At each
 * renewal the account leaves with a probability that depends only on its
 * mean engagement over the two weeks before (C_HAZARD*), never on the calendar
 * or on anything the features read directly.  Engagement drives add_friend and
 * send_message (down), remove_friend and help_view (up) and, weakly, how many
 * days users are active at all; page_view, search, notification_open,
 * upgrade_prompt and settings_change are noise with volume.
 */
#define C_PRE_DAYS		120		/* accounts present at the start signed up this long before, at most */
#define C_PRE_SHARE		0.45	/* share of accounts present at the start */
#define C_ONSET_MEAN	520.0	/* mean days from sign-up to a disengagement episode */
#define C_RECOVER_SHARE 0.30	/* episodes that recover */
#define C_HAZARD_BASE	0.004	/* renewal churn probability of an engaged account */
#define C_HAZARD_MAX	0.55	/* ... of a disengaged one */
#define C_HAZARD_MID	0.38	/* engagement at which the hazard is half way */
#define C_HAZARD_WIDTH	0.06
#define C_MAX_USERS		4

typedef enum CEvent
{
	CE_LOGIN,
	CE_PAGE_VIEW,
	CE_SEARCH,
	CE_NOTIFICATION_OPEN,
	CE_SEND_MESSAGE,
	CE_ADD_FRIEND,
	CE_REMOVE_FRIEND,
	CE_HELP_VIEW,
	CE_UPGRADE_PROMPT,
	CE_SETTINGS_CHANGE,
	C_NEVENTS
} CEvent;

static const char *const C_EVENTS[C_NEVENTS] = {
	"login", "page_view", "search", "notification_open", "send_message", "add_friend",
	"remove_friend", "help_view", "upgrade_prompt", "settings_change"
};

/* Screens of page_view rows. */
static const char *const C_SCREENS[] = {"feed", "profile", "chat", "explore", "settings"};

/* Monthly price of the basic, plus and family plans. */
static const double C_PLAN_PRICE[] = {4.99, 9.99, 14.99};

/* Everything hidden and visible about one consumer account. */
typedef struct Consumer
{
	int			idx;
	pg_uuid_t	id;
	int			first_name;
	int			last_name;
	int			plan;
	int			start_day;		/* day index of sign-up (negative: before the window) */
	int			churn_day;		/* day index of the renewal not made, -1 if none */
	int			nterms;
	DateADT    *term_start;		/* nterms + 1 boundaries: term k is [term_start[k], term_start[k + 1]) */
	int			nusers;
	double		user_p[C_MAX_USERS];	/* daily chance of being active when fully engaged */
	int			user_hour[C_MAX_USERS];
	double		base;			/* engagement the walk reverts to */
	double		social;			/* friending */
	double		chat;			/* messaging */
	double		browse;			/* page views per active day */
	double		notify;			/* notification opens per active day */
	int			onset;			/* first day of the episode, INT_MAX if none */
	int			decline_len;
	int			hold_len;		/* days at the floor before a recovery */
	bool		recovers;
	double		floor_e;
	double	   *e;				/* e[d - start_day], d in [start_day, days] */
} Consumer;

/* The date months after date d, on the same day of the month or the month's last day. */
static DateADT
AddMonths(DateADT d, int months)
{
	int			y,
				m,
				dd,
				mdays;

	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &dd);
	m += months;
	y += (m - 1) / 12;
	m = (m - 1) % 12 + 1;
	mdays = day_tab[isleap(y)][m - 1];
	return date2j(y, m, Min(dd, mdays)) - POSTGRES_EPOCH_JDATE;
}

/* Engagement the account is pulled towards on day d. */
static double
ConsumerTarget(const Consumer *c, int d)
{
	double		t = c->base + 0.08 * exp(-(d - c->start_day) / 30.0);	/* the first weeks' novelty */

	if (d >= c->onset)
	{
		int			x = d - c->onset;
		double		drop = c->base - c->floor_e;

		if (x < c->decline_len)
			t -= drop * x / c->decline_len;
		else if (!c->recovers || x < c->decline_len + c->hold_len)
			t -= drop;
		else
			t -= drop * Max(0.0, 1.0 - (x - c->decline_len - c->hold_len) / 30.0);
	}
	return Clamp(t, 0.02, 0.98);
}

/* Engagement on day d (clamped to the simulated range). */
static inline double
ConsumerE(const Consumer *c, int d, const DemoArgs *a)
{
	d = Max(c->start_day, Min(d, a->days));
	return c->e[d - c->start_day];
}

/* True when the account is a subscriber on day d. */
static inline bool
ConsumerLive(const Consumer *c, int d)
{
	return d >= c->start_day && (c->churn_day < 0 || d < c->churn_day);
}

/* Rebuilds the hidden and visible state of consumer account idx from the seed. */
static void
BuildConsumer(const DemoArgs *a, int idx, Consumer *c)
{
	Rng			r,
				h,
				ren;
	int			n;
	int			maxterms;
	DateADT		signup;

	memset(c, 0, sizeof(*c));
	c->idx = idx;
	CustomerId(a, idx, &c->id);
	RngInit(&r, a->seed, idx, STREAM_C_PROFILE, 0);
	c->first_name = RngInt(&r, 0, lengthof(FIRST_NAMES) - 1);
	c->last_name = RngInt(&r, 0, lengthof(LAST_NAMES) - 1);
	c->start_day = RngUnif(&r) < C_PRE_SHARE ? RngInt(&r, -C_PRE_DAYS, -1) : RngInt(&r, 0, Max(0, a->days - 1));
	{
		double		u = RngUnif(&r);

		c->plan = u < 0.62 ? 0 : u < 0.90 ? 1 : 2;
	}
	{
		double		u = RngUnif(&r);

		c->nusers = c->plan == 2 ? RngInt(&r, 2, C_MAX_USERS) : u < 0.85 ? 1 : 2;
	}
	for (int k = 0; k < c->nusers; k++)
	{
		c->user_p[k] = k == 0 ? RngRange(&r, 0.45, 0.95) : RngRange(&r, 0.15, 0.6);
		c->user_hour[k] = RngInt(&r, 7, 22);
	}
	c->base = RngRange(&r, 0.55, 0.95);
	c->social = RngLogRange(&r, 0.4, 2.0);
	c->chat = RngLogRange(&r, 0.3, 2.5);
	c->browse = RngLogRange(&r, 4.0, 40.0);
	c->notify = RngLogRange(&r, 0.3, 3.0);
	c->onset = c->start_day + 7 + (int) (-log(1.0 - RngUnif(&r)) * C_ONSET_MEAN);
	c->decline_len = RngInt(&r, 14, 56);
	c->hold_len = RngInt(&r, 10, 40);
	c->recovers = RngUnif(&r) < C_RECOVER_SHARE;
	c->floor_e = RngRange(&r, 0.05, 0.30);
	if (c->onset > a->days)
		c->onset = INT_MAX;

	/* the engagement path, from sign-up to the end of the window */
	n = a->days - c->start_day + 1;
	c->e = palloc(sizeof(double) * n);
	RngInit(&h, a->seed, idx, STREAM_C_PATH, 0);
	c->e[0] = Clamp(ConsumerTarget(c, c->start_day) + 0.05 * RngNormal(&h), 0.01, 0.99);
	for (int i = 1; i < n; i++)
		c->e[i] = Clamp(c->e[i - 1] + 0.25 * (ConsumerTarget(c, c->start_day + i) - c->e[i - 1]) +
						0.04 * RngNormal(&h), 0.01, 0.99);

	/*
	 * Monthly terms from sign-up.  Accounts present at the start renewed every
	 * term before it (they are the survivors); from the window on, each renewal
	 * is a draw on the engagement of the two weeks before it.
	 */
	signup = a->start_date + c->start_day;
	maxterms = (a->days - c->start_day) / 28 + 2;
	c->term_start = palloc(sizeof(DateADT) * (maxterms + 1));
	c->term_start[0] = signup;
	c->churn_day = -1;
	RngInit(&ren, a->seed, idx, STREAM_C_RENEWAL, 0);
	for (int k = 1; k <= maxterms; k++)
	{
		DateADT		b = AddMonths(signup, k);
		int			bd = b - a->start_date;

		c->term_start[k] = b;
		c->nterms = k;
		if (bd > a->days)
			break;				/* the term in force at end_date */
		if (bd > 0)
		{
			double		ebar = 0;
			double		p;

			for (int d = bd - 14; d < bd; d++)
				ebar += ConsumerE(c, d, a);
			ebar /= 14.0;
			p = C_HAZARD_BASE + C_HAZARD_MAX / (1.0 + exp((ebar - C_HAZARD_MID) / C_HAZARD_WIDTH));
			if (RngUnif(&ren) < p)
			{
				c->churn_day = bd;
				break;
			}
		}
	}
}

/* Writes one customers row of a consumer account. */
static void
EmitConsumerCustomer(const DemoArgs *a, const Consumer *c, ReturnSetInfo *rsinfo)
{
	Datum		v[7];
	bool		n[7] = {0};
	char		buf[128];

	v[0] = UUIDPGetDatum(&c->id);
	snprintf(buf, sizeof(buf), "demo-%06d", c->idx + 1);
	v[1] = CStringGetTextDatum(buf);
	snprintf(buf, sizeof(buf), "%s %c.", FIRST_NAMES[c->first_name], LAST_NAMES[c->last_name][0]);
	v[2] = CStringGetTextDatum(buf);
	v[3] = MoneyDatum(C_PLAN_PRICE[c->plan]);
	/* the current term, or the last one of a churned account */
	v[4] = DateADTGetDatum(c->term_start[c->nterms - 1]);
	v[5] = DateADTGetDatum(c->term_start[c->nterms]);
	if (c->churn_day >= 0)
		v[6] = DateADTGetDatum(a->start_date + c->churn_day);
	else
		n[6] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
}

/* Writes the account's monthly terms, the last one not renewed for a churned account. */
static void
EmitConsumerTerms(const DemoArgs *a, const Consumer *c, ReturnSetInfo *rsinfo)
{
	for (int k = 0; k < c->nterms; k++)
	{
		Datum		v[4];
		bool		n[4] = {0};

		v[0] = UUIDPGetDatum(&c->id);
		v[1] = DateADTGetDatum(c->term_start[k]);
		v[2] = DateADTGetDatum(c->term_start[k + 1]);
		v[3] = MoneyDatum(C_PLAN_PRICE[c->plan]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
}

/* Writes the account's hidden state to the ground truth. */
static void
EmitConsumerGroundTruth(const DemoArgs *a, const Consumer *c, ReturnSetInfo *rsinfo)
{
	Datum		v[7];
	bool		n[7] = {0};
	int			last = c->churn_day >= 0 ? c->churn_day : a->days;
	const char *arch;

	if (c->onset <= last)
		arch = c->recovers && last >= c->onset + c->decline_len + c->hold_len ? "consumer_recovered" : "consumer_fading";
	else
		arch = c->base >= 0.75 ? "consumer_engaged" : "consumer_casual";
	v[0] = UUIDPGetDatum(&c->id);
	v[1] = CStringGetTextDatum(arch);
	if (c->churn_day >= 0)
		v[2] = DateADTGetDatum(a->start_date + c->churn_day);
	else
		n[2] = true;
	n[3] = n[4] = true;
	v[5] = Float8GetDatum(rint(ConsumerE(c, Max(0, c->start_day), a) * 1e6) / 1e6);
	v[6] = Float8GetDatum(rint(ConsumerE(c, last, a) * 1e6) / 1e6);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
}

/* Writes one usage row of a consumer account. */
static inline void
PutConsumerEvent(const DemoArgs *a, const Consumer *c, ReturnSetInfo *rsinfo, Datum user, const Datum *events,
				 CEvent ev, Datum feature, double quantity, int d, int secs)
{
	Datum		v[6];
	bool		n[6] = {0};

	v[0] = UUIDPGetDatum(&c->id);
	v[1] = user;
	v[2] = events[ev];
	if (feature != (Datum) 0)
		v[3] = feature;
	else
		n[3] = true;
	v[4] = Float8GetDatum(quantity);
	v[5] = TimestampTzGetDatum(DayTs(a, d, Clamp(secs, 0, 86399)));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
}

/*
 * Writes the usage rows of days [d0, d1]: one row per event, except page_view
 * and send_message, one row per user-day with the count as quantity.
 */
static void
EmitConsumerDays(const DemoArgs *a, const Consumer *c, int d0, int d1, ReturnSetInfo *rsinfo,
				 const Datum *events, const Datum *screens)
{
	Datum		users[C_MAX_USERS];

	for (int k = 0; k < c->nusers; k++)
	{
		char		buf[32];

		snprintf(buf, sizeof(buf), "c%06d-%d", c->idx + 1, k + 1);
		users[k] = CStringGetTextDatum(buf);
	}
	for (int d = Max(d0, c->start_day); d <= d1 && ConsumerLive(c, d); d++)
	{
		Rng			r;
		double		e = ConsumerE(c, d, a);
		int			dow = j2day(a->start_date + d + POSTGRES_EPOCH_JDATE);
		double		dayf = (dow == 0 || dow == 6) ? 1.15 : 1.0;
		double		novelty = 1.0 + 2.0 * exp(-(d - c->start_day) / 45.0);

		RngInit(&r, a->seed, c->idx, STREAM_C_USAGE, d);
		for (int k = 0; k < c->nusers; k++)
		{
			int			secs = (int) ((c->user_hour[k] + 1.5 * RngNormal(&r)) * 3600.0);
			int			cnt;

			if (RngUnif(&r) >= c->user_p[k] * (0.55 + 0.45 * e) * dayf)
				continue;
			cnt = 1 + RngPoisson(&r, 0.4);
			for (int i = 0; i < cnt; i++)
				PutConsumerEvent(a, c, rsinfo, users[k], events, CE_LOGIN, (Datum) 0, 1, d, secs + 3600 * i);
			cnt = Max(1, RngPoisson(&r, c->browse * exp(0.3 * RngNormal(&r))));
			PutConsumerEvent(a, c, rsinfo, users[k], events, CE_PAGE_VIEW,
							 screens[RngInt(&r, 0, lengthof(C_SCREENS) - 1)], cnt, d, secs + 60);
			cnt = RngPoisson(&r, 0.5);
			for (int i = 0; i < cnt; i++)
				PutConsumerEvent(a, c, rsinfo, users[k], events, CE_SEARCH, (Datum) 0, 1, d, secs + 120 + 300 * i);
			cnt = RngPoisson(&r, c->notify);
			for (int i = 0; i < cnt; i++)
				PutConsumerEvent(a, c, rsinfo, users[k], events, CE_NOTIFICATION_OPEN, (Datum) 0, 1, d,
								 secs - 1800 + RngInt(&r, 0, 7200));
			cnt = RngPoisson(&r, 3.0 * c->chat * e * e);
			if (cnt > 0)
				PutConsumerEvent(a, c, rsinfo, users[k], events, CE_SEND_MESSAGE, (Datum) 0, cnt, d, secs + 600);
			cnt = RngPoisson(&r, 0.25 * c->social * e * e * novelty);
			for (int i = 0; i < cnt; i++)
				PutConsumerEvent(a, c, rsinfo, users[k], events, CE_ADD_FRIEND, (Datum) 0, 1, d, secs + 900 + 60 * i);
			cnt = RngPoisson(&r, 0.15 * c->social * (1.0 - e) * (1.0 - e));
			for (int i = 0; i < cnt; i++)
				PutConsumerEvent(a, c, rsinfo, users[k], events, CE_REMOVE_FRIEND, (Datum) 0, 1, d, secs + 1200 + 60 * i);
			cnt = RngPoisson(&r, 0.02 + 0.5 * Max(0.0, c->base - e));
			for (int i = 0; i < cnt; i++)
				PutConsumerEvent(a, c, rsinfo, users[k], events, CE_HELP_VIEW, (Datum) 0, 1, d, secs + 1500 + 60 * i);
			if (c->plan == 0)
			{
				cnt = RngPoisson(&r, 0.15);
				for (int i = 0; i < cnt; i++)
					PutConsumerEvent(a, c, rsinfo, users[k], events, CE_UPGRADE_PROMPT, (Datum) 0, 1, d, secs + 240 + 60 * i);
			}
			cnt = RngPoisson(&r, 0.04);
			for (int i = 0; i < cnt; i++)
				PutConsumerEvent(a, c, rsinfo, users[k], events, CE_SETTINGS_CHANGE, (Datum) 0, 1, d, secs + 1800 + 60 * i);
		}
	}
}

/* Orders customer indexes by uuid. */
static int
CompareByUuid(const void *x, const void *y, void *arg)
{
	const pg_uuid_t *ids = (const pg_uuid_t *) arg;

	return memcmp(ids[*(const int *) x].data, ids[*(const int *) y].data, UUID_LEN);
}

/* Last day index of the calendar month that contains day index d (at most days). */
static int
MonthEnd(const DemoArgs *a, int d)
{
	int			y,
				m,
				dd,
				y2,
				m2;

	j2date(a->start_date + d + POSTGRES_EPOCH_JDATE, &y, &m, &dd);
	while (d < a->days)
	{
		j2date(a->start_date + d + 1 + POSTGRES_EPOCH_JDATE, &y2, &m2, &dd);
		if (y2 != y || m2 != m)
			break;
		d++;
	}
	return d;
}

/* Writes the usage rows of days [dfrom, dto], month by month and in uuid order within a month. */
static void
EmitUsage(const DemoArgs *a, ReturnSetInfo *rsinfo, MemoryContext percust, int dfrom, int dto, bool consumer)
{
	pg_uuid_t  *ids = palloc(sizeof(pg_uuid_t) * a->customers);
	int		   *order = palloc(sizeof(int) * a->customers);
	Datum		feature_datums[NFEATURES];
	Datum		session = CStringGetTextDatum("session");
	Datum		c_events[C_NEVENTS];
	Datum		c_screens[lengthof(C_SCREENS)];

	for (int f = 0; f < NFEATURES; f++)
		feature_datums[f] = CStringGetTextDatum(FEATURES[f]);
	for (int f = 0; f < C_NEVENTS; f++)
		c_events[f] = CStringGetTextDatum(C_EVENTS[f]);
	for (int f = 0; f < lengthof(C_SCREENS); f++)
		c_screens[f] = CStringGetTextDatum(C_SCREENS[f]);
	for (int i = 0; i < a->customers; i++)
	{
		CustomerId(a, i, &ids[i]);
		order[i] = i;
	}
	qsort_arg(order, a->customers, sizeof(int), CompareByUuid, ids);

	for (int d0 = dfrom; d0 <= dto;)
	{
		int			d1 = Min(MonthEnd(a, d0), dto);

		for (int i = 0; i < a->customers; i++)
		{
			MemoryContext old;
			Customer	c;

			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(percust);
			old = MemoryContextSwitchTo(percust);
			if (consumer)
			{
				Consumer	cc;

				BuildConsumer(a, order[i], &cc);
				EmitConsumerDays(a, &cc, d0, d1, rsinfo, c_events, c_screens);
			}
			else
			{
				BuildCustomer(a, order[i], &c);
				if (!IsGone(&c, d0))
					EmitUsageDays(a, &c, BuildUsers(a, &c), d0, d1, rsinfo, feature_datums, session);
			}
			MemoryContextSwitchTo(old);
		}
		d0 = d1 + 1;
	}
	pfree(ids);
	pfree(order);
}

/* Runs one generator and fills the caller's tuplestore. */
static Datum
DemoRows(FunctionCallInfo fcinfo, DemoKind kind)
{
	DemoArgs	a;
	ReturnSetInfo *rsinfo;
	MemoryContext percust;

	ParseDemoArgs(fcinfo, 0, &a);
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (rsinfo->setDesc->natts != KIND_NATTS[kind])
		elog(ERROR, "demo generator %d returns %d columns, expected %d",
			 (int) kind, rsinfo->setDesc->natts, KIND_NATTS[kind]);

	percust = AllocSetContextCreate(CurrentMemoryContext, "cscopilot demo customer", ALLOCSET_DEFAULT_SIZES);
	if (kind == KIND_USAGE || kind == KIND_C_USAGE)
	{
		/* optional day range: one month per call keeps each INSERT and its tuplestore small */
		int			dfrom = PG_ARGISNULL(4) ? 0 : Max(0, PG_GETARG_DATEADT(4) - a.start_date);
		int			dto = PG_ARGISNULL(5) ? a.days : Min(a.days, PG_GETARG_DATEADT(5) - a.start_date);

		EmitUsage(&a, rsinfo, percust, dfrom, dto, kind == KIND_C_USAGE);
	}
	else if (kind >= KIND_C_CUSTOMERS)
	{
		for (int i = 0; i < a.customers; i++)
		{
			MemoryContext old;
			Consumer	c;

			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(percust);
			old = MemoryContextSwitchTo(percust);
			BuildConsumer(&a, i, &c);
			if (kind == KIND_C_CUSTOMERS)
				EmitConsumerCustomer(&a, &c, rsinfo);
			else if (kind == KIND_C_GROUND_TRUTH)
				EmitConsumerGroundTruth(&a, &c, rsinfo);
			else
				EmitConsumerTerms(&a, &c, rsinfo);
			MemoryContextSwitchTo(old);
		}
	}
	else
	{
		for (int i = 0; i < a.customers; i++)
		{
			MemoryContext old;
			Customer	c;

			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(percust);
			old = MemoryContextSwitchTo(percust);
			BuildCustomer(&a, i, &c);
			switch (kind)
			{
				case KIND_CUSTOMERS:
					EmitCustomer(&a, &c, rsinfo);
					break;
				case KIND_GROUND_TRUTH:
					EmitGroundTruth(&a, &c, rsinfo);
					break;
				case KIND_SUBSCRIPTIONS:
					EmitSubscriptions(&a, &c, rsinfo);
					break;
				case KIND_CONTACTS:
					EmitContacts(&a, &c, rsinfo);
					break;
				case KIND_INVOICES:
					EmitInvoices(&a, &c, rsinfo);
					break;
				case KIND_TICKETS:
					EmitTickets(&a, &c, rsinfo);
					break;
				case KIND_ENGAGEMENTS:
					EmitEngagements(&a, &c, rsinfo);
					break;
				case KIND_NPS:
					EmitNps(&a, &c, rsinfo);
					break;
				default:
					break;
			}
			MemoryContextSwitchTo(old);
		}
	}
	MemoryContextDelete(percust);
	return (Datum) 0;
}

/* One SQL-callable generator per table, all sharing DemoRows(). */
#define DEMO_SRF(fname, kind) \
	PG_FUNCTION_INFO_V1(fname); \
	Datum fname(PG_FUNCTION_ARGS) { return DemoRows(fcinfo, kind); }

DEMO_SRF(cs_demo_customers, KIND_CUSTOMERS)
DEMO_SRF(cs_demo_ground_truth, KIND_GROUND_TRUTH)
DEMO_SRF(cs_demo_subscriptions, KIND_SUBSCRIPTIONS)
DEMO_SRF(cs_demo_contacts, KIND_CONTACTS)
DEMO_SRF(cs_demo_invoices, KIND_INVOICES)
DEMO_SRF(cs_demo_tickets, KIND_TICKETS)
DEMO_SRF(cs_demo_engagements, KIND_ENGAGEMENTS)
DEMO_SRF(cs_demo_nps, KIND_NPS)
DEMO_SRF(cs_demo_usage, KIND_USAGE)
DEMO_SRF(cs_demo_consumer_customers, KIND_C_CUSTOMERS)
DEMO_SRF(cs_demo_consumer_ground_truth, KIND_C_GROUND_TRUTH)
DEMO_SRF(cs_demo_consumer_terms, KIND_C_TERMS)
DEMO_SRF(cs_demo_consumer_usage, KIND_C_USAGE)

/* One INSERT ... SELECT per table, in foreign-key order. */
typedef struct DemoPhase
{
	const char *label;
	const char *sql;
} DemoPhase;

static const DemoPhase DEMO_PHASES[] = {
	{"customers", "INSERT INTO cs.customers (id, external_id, name, industry, size, mrr, contract_start_date, "
	 "contract_end_date, created_at, updated_at, segment, csm, parent_id, seats_licensed, churned_at) "
	 "SELECT * FROM cs._demo_customers($1, $2, $3, $4)"},
	{"ground truth", "INSERT INTO cs.demo_ground_truth (customer_id, archetype, churned_at, expanded_at, "
	 "expansion_mrr, health_start, health_end) SELECT * FROM cs._demo_ground_truth($1, $2, $3, $4)"},
	/*
	 * The annual terms as they happened, from the first one (created_at, a
	 * whole number of years before the current contract) to the current one,
	 * whose end is the renewal date fixed when it began (a churner that
	 * cancelled mid-term keeps its scheduled end).
	 */
	{"contract terms", "INSERT INTO cs.contract_terms (customer_id, term_start, term_end, source) "
	 "SELECT c.id, CASE WHEN j = 0 THEN c.contract_start_date ELSE c.contract_start_date - 365 * j END, "
	 "CASE WHEN j = 0 THEN c.contract_end_date ELSE c.contract_start_date - 365 * (j - 1) END, 'demo' "
	 "FROM cs.customers c "
	 "CROSS JOIN LATERAL generate_series(0, (c.contract_start_date - (c.created_at AT TIME ZONE 'UTC')::date) / 365) j "
	 "WHERE c.external_id LIKE 'demo-%' "
	 /* one statement Citus pushes down to each shard (no UNION in the lateral) */
	 "ORDER BY c.id, j DESC"},
	{"subscriptions", "INSERT INTO cs.subscriptions (customer_id, product, seats, mrr, started_at, ended_at) "
	 "SELECT * FROM cs._demo_subscriptions($1, $2, $3, $4)"},
	{"contacts", "INSERT INTO cs.contacts (customer_id, name, email, role, is_champion, left_at) "
	 "SELECT * FROM cs._demo_contacts($1, $2, $3, $4)"},
	{"invoices", "INSERT INTO cs.invoices (customer_id, external_id, amount, issued_at, due_date, paid_at, status) "
	 "SELECT * FROM cs._demo_invoices($1, $2, $3, $4)"},
	{"support tickets", "INSERT INTO cs.support_tickets (customer_id, external_id, opened_at, closed_at, priority, "
	 "status, csat, subject, body) SELECT * FROM cs._demo_tickets($1, $2, $3, $4)"},
	{"engagements", "INSERT INTO cs.engagements (customer_id, kind, occurred_at, notes) "
	 "SELECT * FROM cs._demo_engagements($1, $2, $3, $4)"},
	{"nps responses", "INSERT INTO cs.nps_responses (customer_id, score, comment, responded_at) "
	 "SELECT * FROM cs._demo_nps($1, $2, $3, $4)"}
};

/* The consumer profile: accounts (created_at left to the load time), ground truth, monthly terms. */
static const DemoPhase DEMO_C_PHASES[] = {
	{"customers", "INSERT INTO cs.customers (id, external_id, name, mrr, contract_start_date, contract_end_date, "
	 "churned_at) SELECT * FROM cs._demo_consumer_customers($1, $2, $3, $4)"},
	{"ground truth", "INSERT INTO cs.demo_ground_truth (customer_id, archetype, churned_at, expanded_at, "
	 "expansion_mrr, health_start, health_end) SELECT * FROM cs._demo_consumer_ground_truth($1, $2, $3, $4)"},
	{"contract terms", "INSERT INTO cs.contract_terms (customer_id, term_start, term_end, mrr, source) "
	 "SELECT t.*, 'demo' FROM cs._demo_consumer_terms($1, $2, $3, $4) t"}
};

/* Usage events go in one statement per month, the bulk of the work. */
#define DEMO_USAGE_SQL "INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at) " \
	"SELECT * FROM cs._demo_usage($1, $2, $3, $4, $5, $6)"
#define DEMO_C_USAGE_SQL "INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at) " \
	"SELECT * FROM cs._demo_consumer_usage($1, $2, $3, $4, $5, $6)"

PG_FUNCTION_INFO_V1(cs_generate_demo_data);

/* Generates the whole demo dataset; returns the number of rows inserted. */
Datum
cs_generate_demo_data(PG_FUNCTION_ARGS)
{
	DemoArgs	a;
	Oid			argtypes[4] = {INT4OID, INT4OID, INT4OID, DATEOID};
	Datum		args[4];
	Oid			parttypes[2] = {DATEOID, DATEOID};
	Datum		partargs[2];
	int64		total = 0;
	int			ret;
	bool		consumer;
	const DemoPhase *phases;
	int			nphases;
	char	   *profile;

	ParseDemoArgs(fcinfo, 0, &a);
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("profile must not be NULL")));
	profile = text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (strcmp(profile, "b2b") != 0 && strcmp(profile, "consumer") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown demo profile \"%s\"", profile),
				 errhint("The profiles are b2b and consumer.")));
	consumer = strcmp(profile, "consumer") == 0;
	phases = consumer ? DEMO_C_PHASES : DEMO_PHASES;
	nphases = consumer ? lengthof(DEMO_C_PHASES) : lengthof(DEMO_PHASES);
	args[0] = Int32GetDatum(a.customers);
	args[1] = Int32GetDatum(a.days);
	args[2] = Int32GetDatum(a.seed);
	args[3] = DateADTGetDatum(a.end_date);

	SPI_connect();
	ret = SPI_execute("SELECT 1 FROM cs.customers WHERE external_id LIKE 'demo-%' "
					  "UNION ALL SELECT 1 FROM cs.demo_ground_truth LIMIT 1", true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("demo data already exists"),
				 errdetail("cs.customers has customers whose external_id starts with \"demo-\", or cs.demo_ground_truth is not empty."),
				 errhint("Remove the demo data with SELECT cs.drop_demo_data(); and generate again.")));

	partargs[0] = DateADTGetDatum(a.start_date);
	partargs[1] = DateADTGetDatum(a.end_date);
	ret = SPI_execute_with_args("SELECT cs.ensure_usage_partitions($1, $2)", 2, parttypes, partargs, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));

	for (int i = 0; i < nphases; i++)
	{
		ereport(NOTICE, (errmsg("generating %s", phases[i].label)));
		ret = SPI_execute_with_args(phases[i].sql, 4, argtypes, args, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
		ereport(NOTICE, (errmsg("%s: " UINT64_FORMAT " rows", phases[i].label, SPI_processed)));
		total += SPI_processed;
	}

	for (int d0 = 0; d0 <= a.days;)
	{
		int			d1 = MonthEnd(&a, d0);
		Oid			utypes[6] = {INT4OID, INT4OID, INT4OID, DATEOID, DATEOID, DATEOID};
		Datum		uargs[6] = {args[0], args[1], args[2], args[3],
		DateADTGetDatum(a.start_date + d0), DateADTGetDatum(a.start_date + d1)};

		ret = SPI_execute_with_args(consumer ? DEMO_C_USAGE_SQL : DEMO_USAGE_SQL, 6, utypes, uargs, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
		total += SPI_processed;
		ereport(NOTICE,
				(errmsg("usage events up to %s: " UINT64_FORMAT " rows, %d%% of days done",
						DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(a.start_date + d1))),
						SPI_processed, (int) (100L * (d1 + 1) / (a.days + 1)))));
		d0 = d1 + 1;
	}

	/* fresh statistics, so the first queries on the demo data plan well (owners only) */
	ret = SPI_execute("SELECT 1 FROM pg_catalog.pg_class WHERE oid = 'cs.usage_events'::pg_catalog.regclass "
					  "AND pg_catalog.pg_has_role(relowner, 'USAGE')", true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
	{
		ereport(NOTICE, (errmsg("analyzing")));
		ret = SPI_execute("ANALYZE cs.customers, cs.demo_ground_truth, cs.subscriptions, cs.contacts, cs.invoices, "
						  "cs.support_tickets, cs.engagements, cs.nps_responses, cs.contract_terms, cs.usage_events", false, 0);
		if (ret != SPI_OK_UTILITY)
			elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	}
	SPI_finish();
	PG_RETURN_INT64(total);
}
