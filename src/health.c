/*
 * health.c
 *		The per-customer health score behind cs.compute_health().
 *
 * cs._health_of(customer_id, segment, features, as_of, populations) scores
 * one feature vector with the customer's profile (the profile of its segment,
 * whatever text it is, else the default one) and returns the row
 * cs.compute_health() returns for it.  The first call of a query reads the
 * profiles and the percentile populations once (SPI, or the populations given
 * as an argument for a score as of a past date) into a cache in fn_extra;
 * every later row is arithmetic on that cache.
 * The profiles' jsonb is read by ParseProfile, the one reader of a profile,
 * which also checks profiles on write (cs._check_health_profile).
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
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
#include "utils/uuid.h"
#include "utils/varlena.h"

#include "cscopilot.h"

PG_FUNCTION_INFO_V1(cs_health_of);
PG_FUNCTION_INFO_V1(cs_check_health_profile);
PG_FUNCTION_INFO_V1(cs_profile_percentile_measures);

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
	/* thresholds normalisation, as ParseProfile read and checked it */
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

/* The profiles, whole: ParseProfile reads their jsonb columns. */
static const char *const ProfilesQuery =
"SELECT p.id, p.segment, (p.name || ':v' || p.version)::varchar(50), "
"       p.name, p.weights, p.bands, p.normalisation "
"  FROM cs.health_profiles p ORDER BY p.id";

/* Columns of ProfilesQuery */
#define PROFILE_COL_ID 1
#define PROFILE_COL_SEGMENT 2
#define PROFILE_COL_VERSION 3
#define PROFILE_COL_NAME 4
#define PROFILE_COL_WEIGHTS 5
#define PROFILE_COL_BANDS 6
#define PROFILE_COL_NORMALISATION 7

/* The populations of the last full refresh. */
static const char *const StoredPopulationsQuery =
"SELECT hp.segment, hp.measure, hp.sorted FROM cs.health_populations hp";

/*
 * Percentile measures without a stored population, given as $1 (names) and
 * $2 (positions): taken from the feature store.
 */
static const char *const FeatureStorePopulationsQuery =
"SELECT c.segment, pr.measure, "
"       array_agg(f.features[pr.position]::float8 ORDER BY f.features[pr.position]) "
"  FROM unnest($1::text[], $2::int[]) pr(measure, position) "
" CROSS JOIN cs.customer_features f "
"  JOIN cs.customers c ON c.id = f.customer_id "
" WHERE f.features[pr.position] <> 'NaN' "
"   AND pr.measure NOT IN (SELECT measure FROM cs.health_populations) "
" GROUP BY 1, 2";

/* The most thresholds (and scores) of a measure, as cs.interpolate accepts (features.c). */
#define MAX_THRESHOLDS 100000

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
 * Reading a profile
 *
 * ParseProfile is the one reader of a cs.health_profiles row: the write-time
 * check (cs._check_health_profile, run by the table's trigger), the scorer's
 * cache load and cs._profile_percentile_measures all go through it.  It checks
 * the whole profile, every group and measure whatever its weight, in the
 * order and with the errors the profile's author sees, and fills the scorer's
 * structures with the measures that count (positive group and measure weight,
 * in the feature catalog).  Numbers are converted as SQL's ->>, ::text and
 * ::float8 convert them (numeric_out, then float8in), so weights, thresholds
 * and scores are the very float8 values the SQL formulation used.
 * ------------------------------------------------------------------------- */

/* One feature of cs.feature_catalog. */
typedef struct CatalogFeature
{
	char	   *name;
	int			position;
} CatalogFeature;

/* cs.feature_catalog, sorted by name for lookups. */
typedef struct FeatureCatalog
{
	int			n;
	CatalogFeature *features;
} FeatureCatalog;

/* A measure of a profile that uses percentile normalisation, whatever its weight. */
typedef struct PercentileMeasure
{
	char	   *name;
	int			position;
} PercentileMeasure;

#define PROFILE_NAME(name) ((name) != NULL ? (name) : "<NULL>")

/* The four groups of a profile, with a sub-score column each. */
static bool
KnownGroup(const char *name, int len)
{
	for (int k = 0; k < (int) NUM_SUBSCORES; k++)
		if (strlen(SubScoreGroups[k]) == (size_t) len && memcmp(name, SubScoreGroups[k], len) == 0)
			return true;
	return false;
}

static int
CatalogFeatureCmp(const void *a, const void *b)
{
	return strcmp(((const CatalogFeature *) a)->name, ((const CatalogFeature *) b)->name);
}

/*
 * Reads cs.feature_catalog (SPI connected) into cat, allocated in cxt, which
 * is current on return.
 */
static void
LoadFeatureCatalog(FeatureCatalog *cat, MemoryContext cxt)
{
	int			ret = SPI_execute("SELECT name, position FROM cs.feature_catalog", true, 0);
	SPITupleTable *tt = SPI_tuptable;

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	MemoryContextSwitchTo(cxt);
	cat->n = (int) SPI_processed;
	cat->features = palloc(sizeof(CatalogFeature) * Max(cat->n, 1));
	for (int i = 0; i < cat->n; i++)
	{
		bool		isnull;

		cat->features[i].name = TextDatumGetCString(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		cat->features[i].position = DatumGetInt32(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
	}
	qsort(cat->features, cat->n, sizeof(CatalogFeature), CatalogFeatureCmp);
}

/* The feature's 1-based position in the vector, or 0 when the catalog lacks it. */
static int
CatalogPosition(const FeatureCatalog *cat, const char *name)
{
	CatalogFeature key;
	CatalogFeature *f;

	key.name = (char *) name;
	f = bsearch(&key, cat->features, cat->n, sizeof(CatalogFeature), CatalogFeatureCmp);
	return f ? f->position : 0;
}

/* jb -> key (NULL unless jb is an object that has the key), as a JsonbValue. */
static JsonbValue *
FieldOf(JsonbContainer *jc, const char *key)
{
	if (jc == NULL || !JsonContainerIsObject(jc))
		return NULL;
	return getKeyJsonValueFromContainer(jc, key, strlen(key), NULL);
}

/* The container of a JsonbValue that is a JSON object or array, else NULL. */
static JsonbContainer *
ContainerOf(JsonbValue *v)
{
	return (v != NULL && v->type == jbvBinary) ? v->val.binary.data : NULL;
}

static bool
IsObject(JsonbValue *v)
{
	return ContainerOf(v) != NULL && JsonContainerIsObject(ContainerOf(v));
}

static bool
IsArray(JsonbValue *v)
{
	return ContainerOf(v) != NULL && JsonContainerIsArray(ContainerOf(v));
}

/* A value as ->> gives it: a string unquoted, NULL for JSON null, else JSON text. */
static char *
JsonbValueText(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return NULL;
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
	return NULL;					/* keep compiler quiet */
}

/* A JSON number as float8, as (x ->> k)::float8 converts it (errors included). */
static float8
NumberFloat8(JsonbValue *v)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	float8		f = DatumGetFloat8(DirectFunctionCall1(float8in, CStringGetDatum(s)));

	pfree(s);
	return f;
}

/*
 * An element of a thresholds or scores array as jsonb_array_elements_text(..)::float8
 * converts it.  *isnull for JSON null; false when the text is no float8 (the
 * invalid_text_representation the check reports as invalid thresholds or
 * scores).  An out-of-range number raises its own error, as in SQL.
 */
static bool
ElementFloat8(JsonbValue *v, float8 *f, bool *isnull)
{
	char	   *s;
	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = true;

	*isnull = false;
	*f = 0.0;
	if (v->type == jbvNull)
	{
		*isnull = true;
		return true;
	}
	if (v->type == jbvNumeric)
	{
		*f = NumberFloat8(v);
		return true;
	}
	s = JsonbValueText(v);
	/* float8in allocates nothing but its message: catching its syntax error is safe */
	PG_TRY();
	{
		*f = DatumGetFloat8(DirectFunctionCall1(float8in, CStringGetDatum(s)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_INVALID_TEXT_REPRESENTATION)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	pfree(s);
	return ok;
}

/*
 * The elements of a JSON array as float8 (see ElementFloat8), allocated in the
 * current context; false at the first element that is no float8.
 */
static bool
ArrayFloat8(JsonbValue *arr, float8 **values, bool **nulls, int *n)
{
	JsonbContainer *jc = ContainerOf(arr);
	JsonbIterator *it = JsonbIteratorInit(jc);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			i = 0;

	*n = JsonContainerSize(jc);
	*values = palloc(sizeof(float8) * Max(*n, 1));
	*nulls = palloc(sizeof(bool) * Max(*n, 1));
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (!ElementFloat8(&v, &(*values)[i], &(*nulls)[i]))
			return false;
		i++;
	}
	return true;
}

/*
 * Whether (thresholds, scores) pass cs.interpolate's checks (ParseThresholds
 * in features.c): non-empty, the same length, no NULL or NaN, thresholds
 * strictly increasing.  Its element-count limit keeps its own error.
 */
static bool
ThresholdsValid(const float8 *xs, const bool *xn, int nx, const float8 *ys, const bool *yn, int ny)
{
	if (nx > MAX_THRESHOLDS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has more than %d elements", "thresholds", MAX_THRESHOLDS)));
	if (ny > MAX_THRESHOLDS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has more than %d elements", "scores", MAX_THRESHOLDS)));
	if (nx != ny || nx == 0)
		return false;
	for (int i = 0; i < nx; i++)
	{
		if (xn[i] || yn[i] || isnan(xs[i]) || isnan(ys[i]))
			return false;
		if (i > 0 && xs[i] <= xs[i - 1])
			return false;
	}
	return true;
}

/* Appends a measure to the scorer's structures, opening its group at its first measure. */
static void
AddScoredMeasure(HealthProfile *p, int *maxgroups, int *maxmeasures, bool *group_open,
				 const char *gname, int gnamelen, float8 gw, const char *mname, int mnamelen,
				 float8 mw, int position, bool percentile, bool lower_is_better,
				 float8 *xs, float8 *ys, int nthresholds)
{
	HealthGroup *g;
	HealthMeasure *m;

	if (!*group_open)
	{
		if (p->ngroups == *maxgroups)
		{
			*maxgroups = Max(4, *maxgroups * 2);
			p->groups = p->groups ? repalloc(p->groups, sizeof(HealthGroup) * *maxgroups)
				: palloc(sizeof(HealthGroup) * *maxgroups);
		}
		g = &p->groups[p->ngroups++];
		memset(g, 0, sizeof(*g));
		g->name = pnstrdup(gname, gnamelen);
		g->namelen = gnamelen;
		g->gw = gw;
		g->subscore = -1;
		for (int k = 0; k < (int) NUM_SUBSCORES; k++)
			if (strcmp(g->name, SubScoreGroups[k]) == 0)
				g->subscore = k;
		/* sum(gw) over the groups, sum(mw) over each group's measures, in profile order */
		p->gw_total = (p->ngroups == 1) ? gw : float8_pl(p->gw_total, gw);
		g->mw_total = mw;
		*group_open = true;
	}
	else
	{
		g = &p->groups[p->ngroups - 1];
		g->mw_total = float8_pl(g->mw_total, mw);
	}

	if (p->nmeasures == *maxmeasures)
	{
		*maxmeasures = Max(8, *maxmeasures * 2);
		p->measures = p->measures ? repalloc(p->measures, sizeof(HealthMeasure) * *maxmeasures)
			: palloc(sizeof(HealthMeasure) * *maxmeasures);
	}
	m = &p->measures[p->nmeasures++];
	memset(m, 0, sizeof(*m));
	m->name = pnstrdup(mname, mnamelen);
	m->namelen = mnamelen;
	m->group = p->ngroups - 1;
	m->mw = mw;
	m->position = position;
	m->percentile = percentile;
	m->lower_is_better = lower_is_better;
	if (!percentile)
	{
		m->xs = xs;
		m->ys = ys;
		m->nthresholds = nthresholds;
	}
}

/*
 * Reads one profile (name, weights, bands, normalisation; any may be NULL)
 * into p's groups, measures and band cut-offs, in the current memory context.
 * An invalid profile raises the error its author sees when writing it.  With
 * check, a measure the feature catalog lacks is an error too; without (the
 * scorer, after the catalog changed), it is left out of the scoring, as a
 * join with the catalog leaves it out.  When percentile is given, every
 * measure with percentile normalisation that the catalog has, whatever its
 * weight, is appended to it (PercentileMeasure).
 */
static void
ParseProfile(const char *name, Jsonb *weights, Jsonb *bands, Jsonb *normalisation,
			 const FeatureCatalog *cat, bool check, HealthProfile *p, List **percentile)
{
	JsonbIterator *git;
	JsonbValue	gkey,
				gval;
	JsonbIteratorToken tok;
	float8		total_gw = 0.0;
	int			maxgroups = 0,
				maxmeasures = 0;
	JsonbValue *red,
			   *yellow;
	float8		redf,
				yellowf;

	if (weights == NULL || !JB_ROOT_IS_OBJECT(weights) || JB_ROOT_COUNT(weights) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("health profile \"%s\": weights must be a non-empty JSON object", PROFILE_NAME(name)),
				 errhint("Use {\"usage\": {\"weight\": 0.4, \"measures\": {\"seat_utilisation\": 1}}, ...}.")));

	git = JsonbIteratorInit(&weights->root);
	while ((tok = JsonbIteratorNext(&git, &gkey, true)) != WJB_DONE)
	{
		char	   *gname;
		JsonbValue *wv,
				   *mv;
		float8		gw,
					group_mw = 0.0;
		bool		group_open = false;
		JsonbIterator *mit;
		JsonbValue	mkey,
					mval;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&git, &gval, true);
		Assert(tok == WJB_VALUE);
		gname = pnstrdup(gkey.val.string.val, gkey.val.string.len);
		if (!KnownGroup(gname, gkey.val.string.len))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("health profile \"%s\": unknown group \"%s\"", PROFILE_NAME(name), gname),
					 errhint("Groups are usage, engagement, support and payment.")));
		wv = FieldOf(ContainerOf(&gval), "weight");
		if (wv == NULL || wv->type != jbvNumeric || (gw = NumberFloat8(wv)) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("health profile \"%s\": group \"%s\" needs a non-negative numeric weight",
							PROFILE_NAME(name), gname)));
		mv = FieldOf(ContainerOf(&gval), "measures");
		if (!IsObject(mv))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("health profile \"%s\": group \"%s\" needs a measures object",
							PROFILE_NAME(name), gname)));
		total_gw = float8_pl(total_gw, gw);

		mit = JsonbIteratorInit(ContainerOf(mv));
		while ((tok = JsonbIteratorNext(&mit, &mkey, true)) != WJB_DONE)
		{
			char	   *mname;
			int			position;
			float8		mw;
			JsonbValue *norm,
					   *mv2;
			char	   *method;
			bool		is_percentile = false,
						lower_is_better = false;
			float8	   *xs = NULL,
					   *ys = NULL;
			int			nx = 0;

			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&mit, &mval, true);
			Assert(tok == WJB_VALUE);
			mname = pnstrdup(mkey.val.string.val, mkey.val.string.len);
			position = CatalogPosition(cat, mname);
			if (position == 0 && check)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("health profile \"%s\": measure \"%s\" is not in cs.feature_catalog",
								PROFILE_NAME(name), mname)));
			if (mval.type != jbvNumeric || (mw = NumberFloat8(&mval)) < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("health profile \"%s\": measure \"%s\" needs a non-negative numeric weight",
								PROFILE_NAME(name), mname)));
			group_mw = float8_pl(group_mw, mw);

			norm = normalisation ? FieldOf(&normalisation->root, mname) : NULL;
			if (norm == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("health profile \"%s\": measure \"%s\" has no normalisation",
								PROFILE_NAME(name), mname),
						 errhint("Add {\"method\": \"thresholds\", \"thresholds\": [...], \"scores\": [...]} or {\"method\": \"percentile\", \"direction\": \"higher_is_better\"}.")));
			mv2 = FieldOf(ContainerOf(norm), "method");
			method = mv2 ? JsonbValueText(mv2) : NULL;
			if (method != NULL && strcmp(method, "thresholds") == 0)
			{
				JsonbValue *th = FieldOf(ContainerOf(norm), "thresholds");
				JsonbValue *sc = FieldOf(ContainerOf(norm), "scores");
				bool	   *xn,
						   *yn;
				int			ny;

				if (!IsArray(th) || !IsArray(sc))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("health profile \"%s\": measure \"%s\" needs thresholds and scores arrays",
									PROFILE_NAME(name), mname)));
				if (!ArrayFloat8(th, &xs, &xn, &nx) || !ArrayFloat8(sc, &ys, &yn, &ny) ||
					!ThresholdsValid(xs, xn, nx, ys, yn, ny))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("health profile \"%s\": measure \"%s\" has invalid thresholds or scores",
									PROFILE_NAME(name), mname),
							 errdetail("Thresholds must be strictly increasing numbers, one score per threshold.")));
				for (int i = 0; i < ny; i++)
					if (ys[i] < 0 || ys[i] > 1)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("health profile \"%s\": measure \"%s\" has scores outside [0, 1]",
										PROFILE_NAME(name), mname)));
				pfree(xn);
				pfree(yn);
			}
			else if (method != NULL && strcmp(method, "percentile") == 0)
			{
				JsonbValue *dir = FieldOf(ContainerOf(norm), "direction");
				bool		higher = false;

				if (dir != NULL && dir->type == jbvString)
				{
					higher = (dir->val.string.len == strlen("higher_is_better") &&
							  memcmp(dir->val.string.val, "higher_is_better", dir->val.string.len) == 0);
					lower_is_better = (dir->val.string.len == strlen("lower_is_better") &&
									   memcmp(dir->val.string.val, "lower_is_better", dir->val.string.len) == 0);
				}
				if (!higher && !lower_is_better)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("health profile \"%s\": measure \"%s\" needs direction higher_is_better or lower_is_better",
									PROFILE_NAME(name), mname)));
				is_percentile = true;
				if (percentile != NULL && position != 0)
				{
					PercentileMeasure *pm = palloc(sizeof(PercentileMeasure));

					pm->name = pstrdup(mname);
					pm->position = position;
					*percentile = lappend(*percentile, pm);
				}
			}
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("health profile \"%s\": measure \"%s\" has unknown normalisation method \"%s\"",
								PROFILE_NAME(name), mname, PROFILE_NAME(method)),
						 errhint("Methods are thresholds and percentile.")));

			/* only measures with a positive group and measure weight are scored */
			if (p != NULL && position != 0 && float8_gt(gw, 0.0) && float8_gt(mw, 0.0))
				AddScoredMeasure(p, &maxgroups, &maxmeasures, &group_open,
								 gname, gkey.val.string.len, gw, mname, mkey.val.string.len,
								 mw, position, is_percentile, lower_is_better, xs, ys, nx);
			else if (xs != NULL)
			{
				pfree(xs);
				pfree(ys);
			}
			if (method != NULL)
				pfree(method);
			pfree(mname);
		}
		if (gw > 0 && group_mw == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("health profile \"%s\": group \"%s\" has weight but no weighted measure",
							PROFILE_NAME(name), gname)));
		pfree(gname);
	}
	if (total_gw == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("health profile \"%s\": all group weights are zero", PROFILE_NAME(name))));

	red = bands ? FieldOf(&bands->root, "red") : NULL;
	yellow = bands ? FieldOf(&bands->root, "yellow") : NULL;
	if (red == NULL || red->type != jbvNumeric || yellow == NULL || yellow->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("health profile \"%s\": bands need numeric red and yellow cut-offs", PROFILE_NAME(name))));
	redf = NumberFloat8(red);
	yellowf = NumberFloat8(yellow);
	if (!(0 <= redf && redf <= yellowf && yellowf <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("health profile \"%s\": bands must be ordered 0 <= red <= yellow <= 1 (got red %s, yellow %s)",
						PROFILE_NAME(name), float8out_internal(redf), float8out_internal(yellowf))));
	if (p != NULL)
	{
		/* bands ->> 'red' and ->> 'yellow': the scorer compares them as numeric */
		p->red_text = JsonbValueText(red);
		p->yellow_text = JsonbValueText(yellow);
	}
}

/* The current profiles, read (SPI connected) by ParseProfile into the current context. */
static SPITupleTable *
ProfileRows(void)
{
	int			ret = SPI_execute(ProfilesQuery, true, 0);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	return SPI_tuptable;
}

/* Jsonb column of a profile row, detoasted, or NULL. */
static Jsonb *
JsonbColumn(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : DatumGetJsonbP(d);
}

/* Frees a JsonbColumn result if detoasting copied it. */
static void
FreeJsonbColumn(HeapTuple tup, TupleDesc desc, int col, Jsonb *jb)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	if (jb != NULL && (Pointer) jb != DatumGetPointer(d))
		pfree(jb);
}

/* ParseProfile on row i of ProfileRows(). */
static void
ParseProfileRow(SPITupleTable *tt, uint64 i, const FeatureCatalog *cat, HealthProfile *p, List **percentile)
{
	HeapTuple	tup = tt->vals[i];
	TupleDesc	desc = tt->tupdesc;
	bool		isnull;
	Datum		name = SPI_getbinval(tup, desc, PROFILE_COL_NAME, &isnull);
	char	   *cname = isnull ? NULL : TextDatumGetCString(name);
	Jsonb	   *weights = JsonbColumn(tup, desc, PROFILE_COL_WEIGHTS);
	Jsonb	   *bands = JsonbColumn(tup, desc, PROFILE_COL_BANDS);
	Jsonb	   *normalisation = JsonbColumn(tup, desc, PROFILE_COL_NORMALISATION);

	ParseProfile(cname, weights, bands, normalisation, cat, false, p, percentile);
	/* the parsed profile keeps copies of what it needs: free the detoasted columns */
	FreeJsonbColumn(tup, desc, PROFILE_COL_WEIGHTS, weights);
	FreeJsonbColumn(tup, desc, PROFILE_COL_BANDS, bands);
	FreeJsonbColumn(tup, desc, PROFILE_COL_NORMALISATION, normalisation);
	if (cname != NULL)
		pfree(cname);
}

/*
 * cs._check_health_profile(name, weights, bands, normalisation): true for a
 * valid profile; else the error that explains what is wrong with it.
 */
Datum
cs_check_health_profile(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "cscopilot health profile check",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = CurrentMemoryContext;
	FeatureCatalog cat;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	LoadFeatureCatalog(&cat, cxt);
	SPI_finish();

	MemoryContextSwitchTo(cxt);
	ParseProfile(PG_ARGISNULL(0) ? NULL : TextDatumGetCString(PG_GETARG_DATUM(0)),
				 PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1),
				 PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
				 PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3),
				 &cat, true, NULL, NULL);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	PG_RETURN_BOOL(true);
}

/*
 * cs._profile_percentile_measures(): (measure, position) of every measure a
 * profile normalises by percentile, whatever its weight, once each.
 */
Datum
cs_profile_percentile_measures(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "cscopilot percentile measures",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = CurrentMemoryContext;
	FeatureCatalog cat;
	List	   *measures = NIL;
	ListCell   *lc;
	SPITupleTable *tt;
	uint64		nrows;

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	LoadFeatureCatalog(&cat, cxt);
	tt = ProfileRows();
	nrows = SPI_processed;
	MemoryContextSwitchTo(cxt);
	for (uint64 i = 0; i < nrows; i++)
		ParseProfileRow(tt, i, &cat, NULL, &measures);
	SPI_finish();

	MemoryContextSwitchTo(old);
	foreach(lc, measures)
	{
		PercentileMeasure *pm = (PercentileMeasure *) lfirst(lc);
		bool		seen = false;
		Datum		values[2];
		bool		nulls[2] = {false, false};

		for (ListCell *prev = list_head(measures); prev != lc && !seen; prev = lnext(measures, prev))
			seen = strcmp(((PercentileMeasure *) lfirst(prev))->name, pm->name) == 0;
		if (seen)
			continue;
		values[0] = CStringGetTextDatum(pm->name);
		values[1] = Int32GetDatum(pm->position);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextDelete(cxt);
	return (Datum) 0;
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

/* Reads the profiles with ParseProfile (SPI connected, cache context current). */
static bool
LoadProfiles(HealthCache *c)
{
	FeatureCatalog cat;
	SPITupleTable *tt;
	bool		need_pops = false;

	LoadFeatureCatalog(&cat, c->cxt);
	tt = ProfileRows();
	MemoryContextSwitchTo(c->cxt);
	c->nprofiles = (int) SPI_processed;
	c->profiles = palloc0(sizeof(HealthProfile) * Max(c->nprofiles, 1));
	for (int i = 0; i < c->nprofiles; i++)
	{
		HeapTuple	tup = tt->vals[i];
		TupleDesc	desc = tt->tupdesc;
		HealthProfile *p = &c->profiles[i];
		bool		isnull;
		Datum		d;

		p->id = DatumGetInt32(SPI_getbinval(tup, desc, PROFILE_COL_ID, &isnull));
		p->segment = CopyText(tup, desc, PROFILE_COL_SEGMENT);
		d = SPI_getbinval(tup, desc, PROFILE_COL_VERSION, &isnull);
		p->version = isnull ? (Datum) 0 : datumCopy(d, false, -1);
		ParseProfileRow(tt, i, &cat, p, NULL);
	}

	for (int i = 0; i < c->nprofiles; i++)
	{
		HealthProfile *p = &c->profiles[i];

		if (p->measures == NULL)
			p->measures = palloc0(sizeof(HealthMeasure));
		if (p->groups == NULL)
			p->groups = palloc0(sizeof(HealthGroup));
		p->by_name = palloc(sizeof(int) * Max(p->nmeasures, 1));
		p->name_rank = palloc(sizeof(int) * Max(p->nmeasures, 1));
		for (int k = 0; k < p->nmeasures; k++)
		{
			p->by_name[k] = k;
			if (p->measures[k].percentile)
				need_pops = true;
		}
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
		int			max = Max(c->maxmeasures, 1) * Max(c->nprofiles, 1);
		const char **seen = palloc(sizeof(char *) * max);
		Datum	   *names = palloc(sizeof(Datum) * max);
		Datum	   *positions = palloc(sizeof(Datum) * max);
		int			n = 0;
		Oid			argtypes[2] = {TEXTARRAYOID, INT4ARRAYOID};
		Datum		args[2];
		int			ret;

		/* the weighted percentile measures, once each */
		for (int i = 0; i < c->nprofiles; i++)
		{
			HealthProfile *p = &c->profiles[i];

			for (int k = 0; k < p->nmeasures; k++)
			{
				bool		dup = false;

				if (!p->measures[k].percentile)
					continue;
				for (int j = 0; j < n && !dup; j++)
					dup = strcmp(seen[j], p->measures[k].name) == 0;
				if (dup)
					continue;
				seen[n] = p->measures[k].name;
				names[n] = CStringGetTextDatum(p->measures[k].name);
				positions[n] = Int32GetDatum(p->measures[k].position);
				n++;
			}
		}
		args[0] = PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
		args[1] = PointerGetDatum(construct_array(positions, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
		ret = SPI_execute_with_args(FeatureStorePopulationsQuery, 2, argtypes, args, NULL, true, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
		MemoryContextSwitchTo(c->cxt);
		AddPopulations(c);
	}
}

/*
 * The populations given to the query (cs.compute_health as of a date takes
 * them from every customer's features then): an array of rows of
 * cs.health_populations, copied into the cache (its context current).
 */
static void
PopulationsFromArgument(HealthCache *c, ArrayType *arr)
{
	Oid			elemtype = ARR_ELEMTYPE(arr);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *elemnulls;
	int			n;

	if (ARR_NDIM(arr) > 1 || !type_is_rowtype(elemtype))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("populations must be a one-dimensional array of cs.health_populations rows")));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, &elems, &elemnulls, &n);
	c->pops = palloc0(sizeof(HealthPopulation) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTupleHeader th;
		HeapTupleData tup;
		TupleDesc	desc;
		HealthPopulation *pop;
		bool		isnull;
		Datum		d;

		if (elemnulls[i])
			continue;
		th = DatumGetHeapTupleHeader(elems[i]);
		desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(th), HeapTupleHeaderGetTypMod(th));
		if (desc->natts < 3 || TupleDescAttr(desc, 0)->atttypid != TEXTOID ||
			TupleDescAttr(desc, 1)->atttypid != TEXTOID || TupleDescAttr(desc, 2)->atttypid != FLOAT8ARRAYOID)
		{
			ReleaseTupleDesc(desc);
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("populations must be rows of (segment text, measure text, sorted float8[], ...)")));
		}
		tup.t_len = HeapTupleHeaderGetDatumLength(th);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = InvalidOid;
		tup.t_data = th;
		pop = &c->pops[c->npops];
		memset(pop, 0, sizeof(*pop));
		d = heap_getattr(&tup, 2, desc, &isnull);
		if (isnull)
		{
			ReleaseTupleDesc(desc);
			continue;
		}
		pop->measure = TextDatumGetCString(d);
		d = heap_getattr(&tup, 1, desc, &isnull);
		pop->segment = isnull ? NULL : TextDatumGetCString(d);
		d = heap_getattr(&tup, 3, desc, &isnull);
		pop->raw = isnull ? (Datum) 0 : datumCopy(d, false, -1);
		ReleaseTupleDesc(desc);
		c->npops++;
	}
	pfree(elems);
	pfree(elemnulls);
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
		if (live >= NUM_COLS)
		{
			live++;
			continue;
		}
		if (att->atttypid != types[live])
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cs._health_of must return the row type of cs.customer_health_scores"),
					 errhint("Recreate the extension if cs.customer_health_scores was altered.")));
		live++;
	}
	/* 0.3.0 adds csm (text) last; the trigger of the table sets it */
	if (live == NUM_COLS + 1 && desc->natts == NUM_COLS + 1 &&
		TupleDescAttr(desc, NUM_COLS)->atttypid == TEXTOID)
		return;
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
	if (need_pops && PG_NARGS() > 4 && !PG_ARGISNULL(4))
	{
		Datum		given = PG_GETARG_DATUM(4);
		ArrayType  *arr = DatumGetArrayTypeP(given);

		PopulationsFromArgument(c, arr);
		/* the rows are copied: a detoasted copy of the array is not needed */
		if ((Pointer) arr != DatumGetPointer(given))
			pfree(arr);
	}
	else if (need_pops)
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
 * cs._health_of(customer_id, segment, features, as_of, populations): the
 * health row of one customer, shaped like cs.customer_health_scores (id
 * NULL); a row of NULLs when no profile applies (neither the segment's nor a
 * default one).  Percentiles rank within the given populations (the same for
 * every row of a query), else within those of the last full refresh.
 */
Datum
cs_health_of(PG_FUNCTION_ARGS)
{
	HealthCache *c = (HealthCache *) fcinfo->flinfo->fn_extra;
	HealthSegment *hs;
	HealthProfile *p;
	Datum		values[NUM_COLS + 1];	/* + csm, NULL: src/csm_stamp.c stamps it */
	bool		nulls[NUM_COLS + 1];
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
			c->score[k] = InterpolateAt(m->xs, m->ys, m->nthresholds, v);
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
