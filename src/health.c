/*
 * health.c
 *		The per-customer health score behind cs.compute_health().
 *
 * cs._health_of(customer_id, segment, features, as_of) scores one feature
 * vector with the customer's profile (the profile of its segment, else the
 * default one) and returns the row cs.compute_health() returns for it.  The
 * first call of a query reads the profiles and the percentile populations once
 * (SPI) into a cache in fn_extra; every later row is arithmetic on that cache.
 *
 * The result is the one the set-based SQL formulation gives (see the comment
 * on cs.compute_health in src/sql/20_health.sql): per measure a normalised
 * score in [0,1] (thresholds, or the mid-rank percentile in the customer's
 * segment), per group the weighted mean of its present measures, overall the
 * weighted mean of the present groups; the drivers list the three present
 * measures that cost the most score, the missing ones (by name) and the share
 * of the weight they had.  The same float8 operators (with their overflow
 * checks) and the same float8 -> numeric -> round() conversions are used, so
 * every column, rounding and tie-break matches.  Sums run in profile order;
 * the SQL summed the group weights in its hash table's order, which can end
 * an ulp apart: far below the 15 digits float8 -> numeric keeps, it decides
 * only the order of two drivers whose impacts tie exactly in real arithmetic
 * (there the SQL's choice varied with the other customers of the batch).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/uuid.h"
#include "utils/varlena.h"

#include "cscopilot.h"

PG_FUNCTION_INFO_V1(cs_health_of);

/* Columns of cs.customer_health_scores, the row type returned. */
enum
{
	COL_ID,
	COL_CUSTOMER_ID,
	COL_OVERALL,
	COL_USAGE,
	COL_ENGAGEMENT,
	COL_SUPPORT,
	COL_PAYMENT,
	COL_CALCULATED_AT,
	COL_VERSION,
	COL_BAND,
	COL_DRIVERS,
	NUM_COLS
};

/* Groups with a sub-score column, in column order. */
static const char *const SubScoreGroups[] = {"usage", "engagement", "support", "payment"};

#define NUM_SUBSCORES lengthof(SubScoreGroups)

/* Drivers listed in drivers.top, and the impact they must exceed. */
#define TOP_DRIVERS 3
#define TOP_MIN_IMPACT 0.0005

/* A population of a percentile measure in one segment. */
typedef struct HealthPopulation
{
	char	   *segment;		/* NULL for customers without a segment */
	char	   *measure;
	Datum		raw;			/* the stored array, possibly a toast pointer */
	bool		loaded;
	const float8 *values;		/* ascending, once loaded */
	int			n;
} HealthPopulation;

/* A weighted measure of a profile (group weight and measure weight > 0). */
typedef struct HealthMeasure
{
	char	   *name;
	int			namelen;
	int			group;			/* index into the profile's groups */
	float8		mw;
	int			position;		/* 1-based index in the feature vector */
	bool		percentile;
	bool		lower_is_better;
	/* thresholds normalisation: raw arrays, parsed and checked at first use */
	ArrayType  *xa;
	ArrayType  *ya;
	bool		parsed;
	int			nthresholds;
	float8	   *xs;
	float8	   *ys;
} HealthMeasure;

typedef struct HealthGroup
{
	char	   *name;
	int			namelen;
	float8		gw;
	float8		mw_total;		/* sum of its measures' weights */
	int			subscore;		/* index into SubScoreGroups, or -1 */
} HealthGroup;

typedef struct HealthProfile
{
	int32		id;
	char	   *segment;		/* NULL for the default profile */
	Datum		version;		/* (name || ':v' || version)::varchar(50) */
	char	   *red_text;		/* bands ->> 'red' and ->> 'yellow', parsed at first use */
	char	   *yellow_text;
	bool		bands_parsed;
	Numeric		red;
	Numeric		yellow;
	int			ngroups;
	HealthGroup *groups;
	int			nmeasures;
	HealthMeasure *measures;	/* grouped, in profile order */
	int		   *by_name;		/* measure indices ordered by name, then profile order */
	int		   *name_rank;		/* position of each measure in by_name */
	float8		gw_total;		/* sum of the weights of groups with measures */
} HealthProfile;

/* What a segment value resolves to: its profile and that profile's populations. */
typedef struct HealthSegment
{
	char	   *segment;		/* NULL for customers without a segment */
	int			seglen;
	HealthProfile *profile;		/* NULL: no profile applies */
	HealthPopulation **pops;	/* per profile measure, NULL when none */
} HealthSegment;

typedef struct HealthCache
{
	MemoryContext cxt;
	TupleDesc	tupdesc;
	int			nprofiles;
	HealthProfile *profiles;
	int			npops;
	HealthPopulation *pops;
	int			nsegments;
	int			maxsegments;
	HealthSegment *segments;
	int			last_segment;
	int			maxmeasures;
	int			maxgroups;
	/* per-row scratch, sized for the largest profile */
	float8	   *value;
	bool	   *value_null;
	float8	   *score;
	bool	   *score_null;
	float8	   *impact;
	bool	   *impact_null;
	float8	   *nominal;
	float8	   *gscore;
	bool	   *gscore_null;
	float8	   *mw_present;
	bool	   *mw_present_null;
	Datum		band_red;
	Datum		band_yellow;
	Datum		band_green;
} HealthCache;

/* Profiles and their weighted measures, in profile and then jsonb order. */
static const char *const ProfilesQuery =
"SELECT p.id, p.segment, (p.name || ':v' || p.version)::varchar(50), "
"       p.bands ->> 'red', p.bands ->> 'yellow' "
"  FROM cs.health_profiles p ORDER BY p.id";

static const char *const MeasuresQuery =
"SELECT p.id, g.key, (g.value ->> 'weight')::float8, mm.key, mm.value::float8, fc.position, "
"       p.normalisation -> mm.key ->> 'method', p.normalisation -> mm.key ->> 'direction', "
"       ARRAY(SELECT jsonb_array_elements_text(p.normalisation -> mm.key -> 'thresholds')::float8), "
"       ARRAY(SELECT jsonb_array_elements_text(p.normalisation -> mm.key -> 'scores')::float8) "
"  FROM cs.health_profiles p "
" CROSS JOIN LATERAL jsonb_each(p.weights) WITH ORDINALITY g(key, value, gi) "
" CROSS JOIN LATERAL jsonb_each_text(g.value -> 'measures') WITH ORDINALITY mm(key, value, mi) "
"  JOIN cs.feature_catalog fc ON fc.name = mm.key "
" ORDER BY p.id, g.gi, mm.mi";

/* The populations of the last full refresh. */
static const char *const StoredPopulationsQuery =
"SELECT hp.segment, hp.measure, hp.sorted FROM cs.health_populations hp";

/* Percentile measures without a stored population: taken from the feature store. */
static const char *const FeatureStorePopulationsQuery =
"SELECT c.segment, pr.measure, "
"       array_agg(f.features[pr.position]::float8 ORDER BY f.features[pr.position]) "
"  FROM (SELECT DISTINCT mm.key AS measure, fc.position "
"          FROM cs.health_profiles p "
"         CROSS JOIN LATERAL jsonb_each(p.weights) g "
"         CROSS JOIN LATERAL jsonb_each_text(g.value -> 'measures') mm "
"          JOIN cs.feature_catalog fc ON fc.name = mm.key "
"         WHERE p.normalisation -> mm.key ->> 'method' = 'percentile' "
"           AND mm.key NOT IN (SELECT measure FROM cs.health_populations)) pr "
" CROSS JOIN cs.customer_features f "
"  JOIN cs.customers c ON c.id = f.customer_id "
" WHERE f.features[pr.position] <> 'NaN' "
" GROUP BY 1, 2";

/* ---------------------------------------------------------------------------
 * Numeric output
 * ------------------------------------------------------------------------- */

/*
 * round(x::numeric, scale), as SQL computes it: float8 -> numeric keeps 15
 * significant digits, then rounds half away from zero.  Unless x lies within
 * the error of that conversion of a rounding tie, rounding x itself gives the
 * same digits, built directly; near a tie (or for huge, infinite or NaN
 * values) the SQL functions themselves decide.
 */
static Numeric
RoundFloat8(float8 x, int scale, bool *exact_int, int64 *digits)
{
	static const float8 pow10[] = {1.0, 10.0, 100.0, 1000.0, 10000.0};

	Assert(scale >= 0 && scale < lengthof(pow10));
	*exact_int = false;
	if (isfinite(x))
	{
		float8		y = x * pow10[scale];
		float8		ay = fabs(y);

		if (ay < 1e12)
		{
			float8		fl = floor(y);
			float8		frac = y - fl;	/* exact: |y| < 2^52 */

			/*
			 * The 15-digit decimal of x is within 5e-15 |y| of y (in units
			 * of the last kept digit), the product within 1.2e-16 |y|.
			 */
			if (fabs(frac - 0.5) > 1e-13 * (ay + 1.0))
			{
				int64		n = (int64) fl + (frac > 0.5 ? 1 : 0);

				*exact_int = true;
				*digits = n;
				return int64_div_fast_to_numeric(n, scale);
			}
		}
	}
	return DatumGetNumeric(DirectFunctionCall2(numeric_round,
											   DirectFunctionCall1(float8_numeric, Float8GetDatum(x)),
											   Int32GetDatum(scale)));
}

/* round(x::numeric, 2)::numeric(3,2): a score column. */
static Datum
ScoreDatum(float8 x)
{
	bool		exact;
	int64		n;
	Numeric		r = RoundFloat8(x, 2, &exact, &n);

	/* numeric(3,2) holds |value| < 10: apply the typmod (and its errors) otherwise */
	if (exact && n > -1000 && n < 1000)
		return NumericGetDatum(r);
	return DirectFunctionCall2(numeric, NumericGetDatum(r),
							   Int32GetDatum(((3 << 16) | 2) + VARHDRSZ));
}

/* round(x::numeric, scale) */
static Numeric
RoundedNumeric(float8 x, int scale)
{
	bool		exact;
	int64		n;

	return RoundFloat8(x, scale, &exact, &n);
}

/* A numeric as jsonb_build_object stores it: a number, or a string for NaN and infinities. */
static void
NumericJsonb(JsonbValue *jv, Numeric n)
{
	if (numeric_is_nan(n) || numeric_is_inf(n))
	{
		char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));

		jv->type = jbvString;
		jv->val.string.val = s;
		jv->val.string.len = strlen(s);
	}
	else
	{
		jv->type = jbvNumeric;
		jv->val.numeric = n;
	}
}

/* Pushes an object key (shared with alerts.c). */
void
CsJsonbPushKey(JsonbParseState **st, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
}

static void
PushString(JsonbParseState **st, JsonbIteratorToken tok, const char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = len;
	pushJsonbValue(st, tok, &v);
}

static void
PushNumeric(JsonbParseState **st, Numeric n)
{
	JsonbValue	v;

	NumericJsonb(&v, n);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* ---------------------------------------------------------------------------
 * Loading the profiles and populations
 * ------------------------------------------------------------------------- */

/*
 * Runs a read-only query of the cache load; SPI returns to its own context,
 * so switch back to the cache's for what is copied out of the result.
 */
static void
RunQuery(HealthCache *c, const char *sql)
{
	int			ret = SPI_execute(sql, true, 0);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	MemoryContextSwitchTo(c->cxt);
}

static char *
CopyText(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* Measure names in the database's default collation, as ORDER BY measure sorts them. */
static int
MeasureNameCmp(const void *a, const void *b, void *arg)
{
	HealthProfile *p = (HealthProfile *) arg;
	const HealthMeasure *ma = &p->measures[*(const int *) a];
	const HealthMeasure *mb = &p->measures[*(const int *) b];
	int			c = varstr_cmp(ma->name, ma->namelen, mb->name, mb->namelen, DEFAULT_COLLATION_OID);

	if (c != 0)
		return c;
	return (*(const int *) a > *(const int *) b) - (*(const int *) a < *(const int *) b);
}

static HealthProfile *
FindProfile(HealthCache *c, int32 id)
{
	for (int i = 0; i < c->nprofiles; i++)
		if (c->profiles[i].id == id)
			return &c->profiles[i];
	return NULL;
}

/* Reads the profiles and their weighted measures (SPI connected, cache context current). */
static bool
LoadProfiles(HealthCache *c)
{
	SPITupleTable *tt;
	TupleDesc	desc;
	bool		need_pops = false;

	RunQuery(c, ProfilesQuery);
	tt = SPI_tuptable;
	desc = tt->tupdesc;
	c->nprofiles = (int) SPI_processed;
	c->profiles = palloc0(sizeof(HealthProfile) * Max(c->nprofiles, 1));
	for (int i = 0; i < c->nprofiles; i++)
	{
		HeapTuple	tup = tt->vals[i];
		HealthProfile *p = &c->profiles[i];
		bool		isnull;
		Datum		d;

		p->id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		p->segment = CopyText(tup, desc, 2);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		p->version = isnull ? (Datum) 0 : datumCopy(d, false, -1);
		p->red_text = CopyText(tup, desc, 4);
		p->yellow_text = CopyText(tup, desc, 5);
	}

	RunQuery(c, MeasuresQuery);
	tt = SPI_tuptable;
	desc = tt->tupdesc;
	{
		uint64		nrows = SPI_processed;
		int		   *counts = palloc0(sizeof(int) * Max(c->nprofiles, 1));

		/* upper bounds for each profile's arrays */
		for (uint64 r = 0; r < nrows; r++)
		{
			bool		isnull;
			HealthProfile *p = FindProfile(c, DatumGetInt32(SPI_getbinval(tt->vals[r], desc, 1, &isnull)));

			if (p != NULL)
				counts[p - c->profiles]++;
		}
		for (int i = 0; i < c->nprofiles; i++)
		{
			c->profiles[i].groups = palloc0(sizeof(HealthGroup) * Max(counts[i], 1));
			c->profiles[i].measures = palloc0(sizeof(HealthMeasure) * Max(counts[i], 1));
		}

		for (uint64 r = 0; r < nrows; r++)
		{
			HeapTuple	tup = tt->vals[r];
			bool		isnull,
						gw_null,
						mw_null;
			HealthProfile *p = FindProfile(c, DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull)));
			char	   *gname;
			float8		gw,
						mw;
			char	   *method;
			HealthGroup *g;
			HealthMeasure *m;
			Datum		d;

			if (p == NULL)
				continue;
			gw = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &gw_null));
			mw = DatumGetFloat8(SPI_getbinval(tup, desc, 5, &mw_null));
			/* only measures with a positive group and measure weight are scored */
			if (gw_null || mw_null || !float8_gt(gw, 0.0) || !float8_gt(mw, 0.0))
				continue;
			method = CopyText(tup, desc, 7);
			if (method != NULL && strcmp(method, "percentile") == 0)
				need_pops = true;

			gname = CopyText(tup, desc, 2);
			if (p->ngroups == 0 || strcmp(p->groups[p->ngroups - 1].name, gname) != 0)
			{
				g = &p->groups[p->ngroups++];
				g->name = gname;
				g->namelen = strlen(gname);
				g->gw = gw;
				g->subscore = -1;
				for (int k = 0; k < (int) NUM_SUBSCORES; k++)
					if (strcmp(gname, SubScoreGroups[k]) == 0)
						g->subscore = k;
				/* sum(gw) over the groups, sum(mw) over each group's measures */
				p->gw_total = (p->ngroups == 1) ? gw : float8_pl(p->gw_total, gw);
				g->mw_total = mw;
			}
			else
			{
				g = &p->groups[p->ngroups - 1];
				g->mw_total = float8_pl(g->mw_total, mw);
			}

			m = &p->measures[p->nmeasures++];
			m->name = CopyText(tup, desc, 4);
			m->namelen = strlen(m->name);
			m->group = p->ngroups - 1;
			m->mw = mw;
			m->position = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
			m->percentile = (method != NULL && strcmp(method, "percentile") == 0);
			{
				char	   *dir = CopyText(tup, desc, 8);

				m->lower_is_better = (dir != NULL && strcmp(dir, "lower_is_better") == 0);
			}
			d = SPI_getbinval(tup, desc, 9, &isnull);
			m->xa = isnull ? NULL : DatumGetArrayTypePCopy(d);
			d = SPI_getbinval(tup, desc, 10, &isnull);
			m->ya = isnull ? NULL : DatumGetArrayTypePCopy(d);
		}
	}

	for (int i = 0; i < c->nprofiles; i++)
	{
		HealthProfile *p = &c->profiles[i];

		p->by_name = palloc(sizeof(int) * Max(p->nmeasures, 1));
		p->name_rank = palloc(sizeof(int) * Max(p->nmeasures, 1));
		for (int k = 0; k < p->nmeasures; k++)
			p->by_name[k] = k;
		qsort_arg(p->by_name, p->nmeasures, sizeof(int), MeasureNameCmp, p);
		for (int k = 0; k < p->nmeasures; k++)
			p->name_rank[p->by_name[k]] = k;
		c->maxmeasures = Max(c->maxmeasures, p->nmeasures);
		c->maxgroups = Max(c->maxgroups, p->ngroups);
	}
	return need_pops;
}

/* Appends the rows of a (segment, measure, sorted) query to the populations. */
static void
AddPopulations(HealthCache *c)
{
	SPITupleTable *tt = SPI_tuptable;
	TupleDesc	desc = tt->tupdesc;
	int			n = (int) SPI_processed;

	if (n == 0)
		return;
	if (c->pops == NULL)
		c->pops = palloc0(sizeof(HealthPopulation) * n);
	else
		c->pops = repalloc(c->pops, sizeof(HealthPopulation) * (c->npops + n));
	for (int i = 0; i < n; i++)
	{
		HealthPopulation *pop = &c->pops[c->npops++];
		bool		isnull;
		Datum		d;

		memset(pop, 0, sizeof(*pop));
		pop->segment = CopyText(tt->vals[i], desc, 1);
		pop->measure = CopyText(tt->vals[i], desc, 2);
		d = SPI_getbinval(tt->vals[i], desc, 3, &isnull);
		/* a stored population stays a toast pointer until a customer needs it */
		pop->raw = isnull ? (Datum) 0 : datumCopy(d, false, -1);
	}
}

static void
LoadPopulations(HealthCache *c)
{
	bool		missing = false;

	RunQuery(c, StoredPopulationsQuery);
	AddPopulations(c);

	/*
	 * A weighted percentile measure without any stored population (none
	 * since the last full refresh): take every such measure's populations
	 * from the feature store, as the last full refresh would have.
	 */
	for (int i = 0; i < c->nprofiles && !missing; i++)
	{
		HealthProfile *p = &c->profiles[i];

		for (int k = 0; k < p->nmeasures && !missing; k++)
		{
			bool		stored = false;

			if (!p->measures[k].percentile)
				continue;
			for (int j = 0; j < c->npops && !stored; j++)
				stored = strcmp(c->pops[j].measure, p->measures[k].name) == 0;
			missing = !stored;
		}
	}
	if (missing)
	{
		RunQuery(c, FeatureStorePopulationsQuery);
		AddPopulations(c);
	}
}

/* Checks that the declared result is the row of cs.customer_health_scores. */
static void
CheckResultType(TupleDesc desc)
{
	static const Oid types[NUM_COLS] = {UUIDOID, UUIDOID, NUMERICOID, NUMERICOID, NUMERICOID,
		NUMERICOID, NUMERICOID, TIMESTAMPTZOID, VARCHAROID, TEXTOID, JSONBOID};
	int			live = 0;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (live >= NUM_COLS || att->atttypid != types[live])
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cs._health_of must return the row type of cs.customer_health_scores"),
					 errhint("Recreate the extension if cs.customer_health_scores was altered.")));
		live++;
	}
	if (live != NUM_COLS || desc->natts != NUM_COLS)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cs._health_of must return the row type of cs.customer_health_scores"),
				 errhint("Recreate the extension if cs.customer_health_scores was altered.")));
}

static HealthCache *
LoadCache(FunctionCallInfo fcinfo)
{
	MemoryContext cxt;
	MemoryContext old;
	HealthCache *c;
	TupleDesc	desc;
	bool		need_pops;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cs._health_of must be called in a context that accepts a row")));
	CheckResultType(desc);

	cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "cscopilot health profiles",
								ALLOCSET_DEFAULT_SIZES);
	c = MemoryContextAllocZero(cxt, sizeof(HealthCache));
	c->cxt = cxt;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	old = MemoryContextSwitchTo(cxt);
	c->tupdesc = BlessTupleDesc(CreateTupleDescCopy(desc));
	need_pops = LoadProfiles(c);
	if (need_pops)
		LoadPopulations(c);
	MemoryContextSwitchTo(old);
	SPI_finish();

	old = MemoryContextSwitchTo(cxt);
	{
		int			m = Max(c->maxmeasures, 1);
		int			g = Max(c->maxgroups, 1);

		c->value = palloc(sizeof(float8) * m);
		c->value_null = palloc(sizeof(bool) * m);
		c->score = palloc(sizeof(float8) * m);
		c->score_null = palloc(sizeof(bool) * m);
		c->impact = palloc(sizeof(float8) * m);
		c->impact_null = palloc(sizeof(bool) * m);
		c->nominal = palloc(sizeof(float8) * m);
		c->gscore = palloc(sizeof(float8) * g);
		c->gscore_null = palloc(sizeof(bool) * g);
		c->mw_present = palloc(sizeof(float8) * g);
		c->mw_present_null = palloc(sizeof(bool) * g);
	}
	c->band_red = CStringGetTextDatum("red");
	c->band_yellow = CStringGetTextDatum("yellow");
	c->band_green = CStringGetTextDatum("green");
	c->last_segment = -1;
	MemoryContextSwitchTo(old);
	return c;
}

/* The segment's profile (its own, else the default) and populations, resolved once per segment. */
static HealthSegment *
SegmentOf(HealthCache *c, text *segment)
{
	const char *s = segment ? VARDATA_ANY(segment) : NULL;
	int			len = segment ? VARSIZE_ANY_EXHDR(segment) : 0;
	HealthSegment *hs;
	HealthProfile *own = NULL,
			   *dflt = NULL;
	MemoryContext old;

	if (c->last_segment >= 0)
	{
		hs = &c->segments[c->last_segment];
		if ((hs->segment == NULL) == (s == NULL) &&
			(s == NULL || (hs->seglen == len && memcmp(hs->segment, s, len) == 0)))
			return hs;
	}
	for (int i = 0; i < c->nsegments; i++)
	{
		hs = &c->segments[i];
		if ((hs->segment == NULL) == (s == NULL) &&
			(s == NULL || (hs->seglen == len && memcmp(hs->segment, s, len) == 0)))
		{
			c->last_segment = i;
			return hs;
		}
	}

	old = MemoryContextSwitchTo(c->cxt);
	if (c->nsegments == c->maxsegments)
	{
		c->maxsegments = Max(8, c->maxsegments * 2);
		c->segments = c->segments ? repalloc(c->segments, sizeof(HealthSegment) * c->maxsegments)
			: palloc(sizeof(HealthSegment) * c->maxsegments);
	}
	hs = &c->segments[c->nsegments];
	memset(hs, 0, sizeof(*hs));
	hs->segment = s ? pnstrdup(s, len) : NULL;
	hs->seglen = len;
	for (int i = 0; i < c->nprofiles; i++)
	{
		HealthProfile *p = &c->profiles[i];

		if (p->segment == NULL)
			dflt = p;
		else if (s != NULL && strlen(p->segment) == (size_t) len && memcmp(p->segment, s, len) == 0)
			own = p;
	}
	hs->profile = own ? own : dflt;
	if (hs->profile != NULL)
	{
		HealthProfile *p = hs->profile;

		hs->pops = palloc0(sizeof(HealthPopulation *) * Max(p->nmeasures, 1));
		for (int k = 0; k < p->nmeasures; k++)
		{
			if (!p->measures[k].percentile)
				continue;
			for (int j = 0; j < c->npops; j++)
			{
				HealthPopulation *pop = &c->pops[j];

				if ((pop->segment == NULL) == (hs->segment == NULL) &&
					(pop->segment == NULL || strcmp(pop->segment, hs->segment) == 0) &&
					strcmp(pop->measure, p->measures[k].name) == 0)
				{
					hs->pops[k] = pop;
					break;
				}
			}
		}
	}
	MemoryContextSwitchTo(old);
	c->last_segment = c->nsegments++;
	return hs;
}

/* The population's sorted values, fetched (and checked) at first use. */
static void
LoadPopulation(HealthCache *c, HealthPopulation *pop)
{
	MemoryContext old;
	ArrayType  *arr;

	if (pop->loaded)
		return;
	old = MemoryContextSwitchTo(c->cxt);
	arr = DatumGetArrayTypeP(pop->raw);
	MemoryContextSwitchTo(old);
	pop->n = PopulationItems(arr);
	pop->values = (const float8 *) ARR_DATA_PTR(arr);
	pop->loaded = true;
}

/* The measure's thresholds, parsed (and checked) at first use. */
static void
PrepareThresholds(HealthCache *c, HealthMeasure *m)
{
	MemoryContext old;
	ArrayType  *empty = NULL;

	if (m->parsed)
		return;
	old = MemoryContextSwitchTo(c->cxt);
	if (m->xa == NULL || m->ya == NULL)
		empty = construct_empty_array(FLOAT8OID);
	m->nthresholds = ParseThresholds(m->xa ? m->xa : empty, m->ya ? m->ya : empty, &m->xs, &m->ys);
	MemoryContextSwitchTo(old);
	m->parsed = true;
}

/* features[position] of each measure as float8; NULL where SQL's subscript gives NULL. */
static void
FeatureValues(HealthCache *c, HealthProfile *p, ArrayType *arr)
{
	int			n = 0,
				lb = 1;
	const float4 *data = NULL;
	Datum	   *elems = NULL;
	bool	   *enulls = NULL;

	if (arr != NULL && ARR_NDIM(arr) == 1)
	{
		n = ARR_DIMS(arr)[0];
		lb = ARR_LBOUND(arr)[0];
		if (ARR_HASNULL(arr))
		{
			int			ne;

			deconstruct_array(arr, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT,
							  &elems, &enulls, &ne);
		}
		else
			data = (const float4 *) ARR_DATA_PTR(arr);
	}
	for (int k = 0; k < p->nmeasures; k++)
	{
		int64		idx = (int64) p->measures[k].position - lb;

		if (idx < 0 || idx >= n)
			c->value_null[k] = true;
		else if (elems != NULL)
		{
			c->value_null[k] = enulls[idx];
			c->value[k] = enulls[idx] ? 0.0 : (float8) DatumGetFloat4(elems[idx]);
		}
		else
		{
			c->value_null[k] = false;
			c->value[k] = (float8) data[idx];
		}
	}
}

/* Whether driver a ranks before driver b: impact descending (NULLs last), then name. */
static bool
RanksBefore(HealthCache *c, HealthProfile *p, int a, int b)
{
	if (c->impact_null[a] != c->impact_null[b])
		return !c->impact_null[a];
	if (!c->impact_null[a])
	{
		int			cmp = float8_cmp_internal(c->impact[a], c->impact[b]);

		if (cmp != 0)
			return cmp > 0;
	}
	return p->name_rank[a] < p->name_rank[b];
}

/*
 * cs._health_of(customer_id, segment, features, as_of): the health row of one
 * customer, shaped like cs.customer_health_scores (id NULL); a row of NULLs
 * when no profile applies (neither the segment's nor a default one).
 */
Datum
cs_health_of(PG_FUNCTION_ARGS)
{
	HealthCache *c = (HealthCache *) fcinfo->flinfo->fn_extra;
	HealthSegment *hs;
	HealthProfile *p;
	Datum		values[NUM_COLS];
	bool		nulls[NUM_COLS];
	float8		gw_present = 0.0,
				weighted = 0.0,
				overall = 0.0;
	bool		gw_present_null = true,
				weighted_null = true,
				overall_null = true;
	float8		subscore[NUM_SUBSCORES];
	bool		subscore_null[NUM_SUBSCORES];
	int			top[TOP_DRIVERS];
	int			ntop = 0;
	JsonbParseState *st = NULL;
	JsonbValue *drivers;

	if (c == NULL)
	{
		c = LoadCache(fcinfo);
		fcinfo->flinfo->fn_extra = c;
	}

	memset(nulls, true, sizeof(nulls));
	hs = SegmentOf(c, PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1));
	p = hs->profile;
	if (p == NULL || PG_ARGISNULL(0))
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(c->tupdesc, values, nulls)));

	values[COL_CUSTOMER_ID] = PG_GETARG_DATUM(0);
	nulls[COL_CUSTOMER_ID] = false;
	if (!PG_ARGISNULL(3))
	{
		values[COL_CALCULATED_AT] = PG_GETARG_DATUM(3);
		nulls[COL_CALCULATED_AT] = false;
	}
	if (p->version != (Datum) 0)
	{
		values[COL_VERSION] = p->version;
		nulls[COL_VERSION] = false;
	}

	/* normalised score per measure; NULL for a missing value or population */
	FeatureValues(c, p, PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2));
	for (int k = 0; k < p->nmeasures; k++)
	{
		HealthMeasure *m = &p->measures[k];
		float8		v = c->value[k];

		c->score_null[k] = true;
		if (c->value_null[k] || isnan(v))
			continue;
		if (m->percentile)
		{
			HealthPopulation *pop = hs->pops[k];
			float8		r;

			if (pop == NULL || pop->raw == (Datum) 0)
				continue;
			LoadPopulation(c, pop);
			if (pop->n == 0)
				continue;
			r = PercentileRankAt(pop->values, pop->n, v);
			c->score[k] = m->lower_is_better ? float8_mi(1.0, r) : r;
		}
		else
		{
			PrepareThresholds(c, m);
			c->score[k] = InterpolateAt(m->xs, m->ys, m->nthresholds, v);
		}
		c->score_null[k] = false;
	}

	/* per group: weighted mean of the present measures */
	for (int g = 0; g < p->ngroups; g++)
	{
		c->mw_present_null[g] = true;
		c->gscore_null[g] = true;
		c->gscore[g] = 0.0;		/* sum(mw * s) until divided */
	}
	for (int k = 0; k < p->nmeasures; k++)
	{
		HealthMeasure *m = &p->measures[k];
		int			g = m->group;

		if (c->score_null[k])
			continue;
		if (c->mw_present_null[g])
		{
			c->mw_present[g] = m->mw;
			c->gscore[g] = float8_mul(m->mw, c->score[k]);
			c->mw_present_null[g] = false;
		}
		else
		{
			c->mw_present[g] = float8_pl(c->mw_present[g], m->mw);
			c->gscore[g] = float8_pl(c->gscore[g], float8_mul(m->mw, c->score[k]));
		}
	}
	for (int i = 0; i < (int) NUM_SUBSCORES; i++)
		subscore_null[i] = true;
	for (int g = 0; g < p->ngroups; g++)
	{
		HealthGroup *grp = &p->groups[g];

		if (!c->mw_present_null[g] && c->mw_present[g] != 0.0)
		{
			c->gscore[g] = float8_div(c->gscore[g], c->mw_present[g]);
			c->gscore_null[g] = false;
		}
		if (grp->subscore >= 0)
		{
			subscore[grp->subscore] = c->gscore[g];
			subscore_null[grp->subscore] = c->gscore_null[g];
		}
		/* overall: weighted mean of the present groups */
		if (!c->gscore_null[g])
		{
			float8		term = float8_mul(grp->gw, c->gscore[g]);

			gw_present = gw_present_null ? grp->gw : float8_pl(gw_present, grp->gw);
			weighted = weighted_null ? term : float8_pl(weighted, term);
			gw_present_null = weighted_null = false;
		}
	}
	if (!gw_present_null && gw_present != 0.0)
	{
		overall = float8_div(weighted, gw_present);
		overall_null = false;
	}

	/* nominal share of each measure, and the score it costs after redistribution */
	for (int k = 0; k < p->nmeasures; k++)
	{
		HealthMeasure *m = &p->measures[k];
		HealthGroup *grp = &p->groups[m->group];

		c->nominal[k] = float8_mul(float8_div(grp->gw, p->gw_total), float8_div(m->mw, grp->mw_total));
		c->impact_null[k] = true;
		if (!gw_present_null && !c->mw_present_null[m->group])
		{
			float8		share = float8_mul(float8_div(grp->gw, gw_present),
										   float8_div(m->mw, c->mw_present[m->group]));

			if (!c->score_null[k])
			{
				c->impact[k] = float8_mul(share, float8_mi(1.0, c->score[k]));
				c->impact_null[k] = false;
			}
		}
	}

	/* the first three by impact, kept if their impact exceeds 0.0005 */
	for (int k = 0; k < p->nmeasures; k++)
	{
		int			pos = ntop;

		while (pos > 0 && RanksBefore(c, p, k, top[pos - 1]))
			pos--;
		if (pos >= TOP_DRIVERS)
			continue;
		if (ntop < TOP_DRIVERS)
			ntop++;
		memmove(&top[pos + 1], &top[pos], sizeof(int) * (ntop - 1 - pos));
		top[pos] = k;
	}

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	CsJsonbPushKey(&st, "top");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < ntop; i++)
	{
		int			k = top[i];
		HealthMeasure *m = &p->measures[k];
		HealthGroup *grp = &p->groups[m->group];

		if (c->impact_null[k] || !float8_gt(c->impact[k], TOP_MIN_IMPACT))
			continue;
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		CsJsonbPushKey(&st, "measure");
		PushString(&st, WJB_VALUE, m->name, m->namelen);
		CsJsonbPushKey(&st, "group");
		PushString(&st, WJB_VALUE, grp->name, grp->namelen);
		CsJsonbPushKey(&st, "value");
		PushNumeric(&st, RoundedNumeric(c->value[k], 3));
		CsJsonbPushKey(&st, "score");
		PushNumeric(&st, RoundedNumeric(c->score[k], 3));
		CsJsonbPushKey(&st, "impact");
		PushNumeric(&st, RoundedNumeric(c->impact[k], 4));
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);

	/* missing measures by name, and the nominal weight they had */
	CsJsonbPushKey(&st, "missing");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	{
		float8		redistributed = 0.0;
		bool		any = false;

		for (int i = 0; i < p->nmeasures; i++)
		{
			int			k = p->by_name[i];

			if (!c->score_null[k])
				continue;
			PushString(&st, WJB_ELEM, p->measures[k].name, p->measures[k].namelen);
			redistributed = any ? float8_pl(redistributed, c->nominal[k]) : c->nominal[k];
			any = true;
		}
		pushJsonbValue(&st, WJB_END_ARRAY, NULL);
		CsJsonbPushKey(&st, "redistributed_weight");
		if (p->nmeasures == 0)
			/* no input at all: the integer 0 */
			PushNumeric(&st, int64_to_numeric(0));
		else
			PushNumeric(&st, RoundedNumeric(redistributed, 4));
	}
	drivers = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	values[COL_DRIVERS] = JsonbPGetDatum(JsonbValueToJsonb(drivers));
	nulls[COL_DRIVERS] = false;

	/* scores, and the band of the rounded overall score */
	if (!overall_null)
	{
		Datum		o = ScoreDatum(overall);

		values[COL_OVERALL] = o;
		nulls[COL_OVERALL] = false;
		if (!p->bands_parsed)
		{
			MemoryContext old = MemoryContextSwitchTo(c->cxt);

			p->red = p->red_text == NULL ? NULL :
				DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(p->red_text),
													ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
			p->yellow = p->yellow_text == NULL ? NULL :
				DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(p->yellow_text),
													ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
			MemoryContextSwitchTo(old);
			p->bands_parsed = true;
		}
		if (p->red != NULL && DatumGetBool(DirectFunctionCall2(numeric_lt, o, NumericGetDatum(p->red))))
			values[COL_BAND] = c->band_red;
		else if (p->yellow != NULL && DatumGetBool(DirectFunctionCall2(numeric_lt, o, NumericGetDatum(p->yellow))))
			values[COL_BAND] = c->band_yellow;
		else
			values[COL_BAND] = c->band_green;
		nulls[COL_BAND] = false;
	}
	for (int i = 0; i < (int) NUM_SUBSCORES; i++)
	{
		if (subscore_null[i])
			continue;
		values[COL_USAGE + i] = ScoreDatum(subscore[i]);
		nulls[COL_USAGE + i] = false;
	}

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(c->tupdesc, values, nulls)));
}
