/*
 * features.c
 *		Small numeric kernels behind the feature store and the health score:
 *		feature vectors with NaN for missing values, piecewise-linear
 *		normalisation and percentile rank.  The set-based parts (which rows
 *		count for a point in time) are SQL in src/sql/10_features.sql.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "access/detoast.h"
#include "utils/array.h"
#include "utils/float.h"
#include "utils/timestamp.h"
#include "utils/numeric.h"
#include "lib/stringinfo.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"
#include "port/pg_bitutils.h"

#include "cscopilot.h"

PG_FUNCTION_INFO_V1(cs_feature_vector);
PG_FUNCTION_INFO_V1(cs_interpolate);
PG_FUNCTION_INFO_V1(cs_percentile_rank);
PG_FUNCTION_INFO_V1(cs_feature_map);

/* Largest array these kernels accept; guards palloc against absurd input. */
#define MAX_VECTOR_LENGTH 100000

/* Deconstructs a one-dimensional float8 array, NULL elements allowed. */
static int
Float8Elements(ArrayType *arr, Datum **values, bool **nulls, const char *what)
{
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	if (ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) > MAX_VECTOR_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has more than %d elements", what, MAX_VECTOR_LENGTH)));
	deconstruct_array(arr, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  values, nulls, &n);
	return n;
}

/* cs.feature_vector(float8[]): the float4[] feature vector, NULL becoming NaN. */
Datum
cs_feature_vector(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *values;
	bool	   *nulls;
	Datum	   *out;
	int			n;

	n = Float8Elements(arr, &values, &nulls, "feature values");
	out = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		float8		v = nulls[i] ? get_float8_nan() : DatumGetFloat8(values[i]);

		/* Overflow to infinity would poison every model: treat as missing. */
		if (isinf(v) || (!isnan(v) && fabs(v) > FLT_MAX))
			v = get_float8_nan();
		out[i] = Float4GetDatum((float4) v);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(out, n, FLOAT4OID, sizeof(float4), true,
										  TYPALIGN_INT));
}

/* Parsed threshold arrays of one cs.interpolate call site, reused while the input arrays repeat. */
typedef struct InterpCache
{
	int			n;
	Size		xbytes;			/* sizes and copies of the raw arrays they were parsed from */
	Size		ybytes;
	char	   *xraw;
	char	   *yraw;
	float8	   *xs;
	float8	   *ys;
} InterpCache;

/*
 * Parses and validates (thresholds, scores): non-empty, the same length, no
 * NULL or NaN, thresholds strictly increasing.  The arrays are allocated in
 * the current memory context.  Shared by cs.interpolate and the health score.
 */
int
ParseThresholds(ArrayType *xa, ArrayType *ya, float8 **xs, float8 **ys)
{
	Datum	   *xv,
			   *yv;
	bool	   *xn,
			   *yn;
	int			nx,
				ny;

	nx = Float8Elements(xa, &xv, &xn, "thresholds");
	ny = Float8Elements(ya, &yv, &yn, "scores");
	if (nx != ny || nx == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("thresholds and scores must be non-empty arrays of the same length"),
				 errdetail("There are %d thresholds and %d scores.", nx, ny)));
	for (int i = 0; i < nx; i++)
	{
		if (xn[i] || yn[i] || isnan(DatumGetFloat8(xv[i])) || isnan(DatumGetFloat8(yv[i])))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("thresholds and scores must not contain NULL or NaN")));
		if (i > 0 && DatumGetFloat8(xv[i]) <= DatumGetFloat8(xv[i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("thresholds must be strictly increasing")));
	}
	*xs = palloc(sizeof(float8) * nx);
	*ys = palloc(sizeof(float8) * nx);
	for (int i = 0; i < nx; i++)
	{
		(*xs)[i] = DatumGetFloat8(xv[i]);
		(*ys)[i] = DatumGetFloat8(yv[i]);
	}
	pfree(xv);
	pfree(yv);
	pfree(xn);
	pfree(yn);
	return nx;
}

/*
 * The piecewise-linear map through the points (xs, ys), constant beyond the
 * first and last point.  x must not be NaN.
 */
float8
InterpolateAt(const float8 *xs, const float8 *ys, int n, float8 x)
{
	if (x <= xs[0])
		return ys[0];
	for (int i = 1; i < n; i++)
	{
		if (x <= xs[i])
			return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1]);
	}
	return ys[n - 1];
}

/* Parses (thresholds, scores) into the call site's cache, unless they are the arrays it holds. */
static InterpCache *
InterpPrepare(FunctionCallInfo fcinfo, ArrayType *xa, ArrayType *ya)
{
	InterpCache *c = (InterpCache *) fcinfo->flinfo->fn_extra;
	MemoryContext cxt = fcinfo->flinfo->fn_mcxt;
	MemoryContext old;
	float8	   *xs,
			   *ys;
	int			n;

	/* A profile scores many customers with the same arrays: compare bytes. */
	if (c != NULL && c->xbytes == VARSIZE(xa) && c->ybytes == VARSIZE(ya) &&
		memcmp(c->xraw, xa, c->xbytes) == 0 && memcmp(c->yraw, ya, c->ybytes) == 0)
		return c;

	old = MemoryContextSwitchTo(cxt);
	n = ParseThresholds(xa, ya, &xs, &ys);
	MemoryContextSwitchTo(old);
	if (c == NULL)
		c = MemoryContextAllocZero(cxt, sizeof(InterpCache));
	else
	{
		pfree(c->xraw);
		pfree(c->yraw);
		pfree(c->xs);
		pfree(c->ys);
	}
	c->n = n;
	c->xbytes = VARSIZE(xa);
	c->ybytes = VARSIZE(ya);
	c->xraw = MemoryContextAlloc(cxt, c->xbytes);
	c->yraw = MemoryContextAlloc(cxt, c->ybytes);
	memcpy(c->xraw, xa, c->xbytes);
	memcpy(c->yraw, ya, c->ybytes);
	c->xs = xs;
	c->ys = ys;
	fcinfo->flinfo->fn_extra = c;
	return c;
}

/*
 * cs.interpolate(x, xs, ys): piecewise-linear map through the points (xs, ys),
 * constant beyond the first and last point; NULL for a missing (NaN) x.
 */
Datum
cs_interpolate(PG_FUNCTION_ARGS)
{
	float8		x = PG_GETARG_FLOAT8(0);
	InterpCache *c = InterpPrepare(fcinfo, PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_ARRAYTYPE_P(2));

	if (isnan(x))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(InterpolateAt(c->xs, c->ys, c->n, x));
}

/*
 * The populations one cs.percentile_rank call site has fetched, kept while
 * the same stored arrays repeat.  A query ranking customers of several
 * segments interleaves populations row by row, so one slot would miss on
 * almost every call: keep several, replaced round robin.
 */
#define PERCENTILE_CACHE_SLOTS 32

typedef struct PercentileSlot
{
	char		key[TOAST_POINTER_SIZE];	/* toast pointer of the array it came from */
	Size		keylen;
	float8	   *values;
	int			n;
} PercentileSlot;

typedef struct PercentileCache
{
	PercentileSlot slots[PERCENTILE_CACHE_SLOTS];
	int			used;
	int			next;			/* slot replaced next when all are used */
} PercentileCache;

/* Checks a population array: one dimension, no NULL; returns its element count. */
int
PopulationItems(ArrayType *arr)
{
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("population must be a one-dimensional array")));
	if (ARR_HASNULL(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("population must not contain NULL")));
	return ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
}

/*
 * Mid-rank share of the ascending population v[0..n-1] below x: values
 * below count fully, ties half.  x must not be NaN and n must be positive.
 */
float8
PercentileRankAt(const float8 *v, int n, float8 x)
{
	int			lo,
				hi,
				below;

	/* first index with value >= x */
	lo = 0;
	hi = n;
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	below = lo;
	/* first index with value > x */
	hi = n;
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (v[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (below + 0.5 * (lo - below)) / n;
}

/*
 * cs.percentile_rank(sorted, x): share of the population below x, counting
 * ties as half (mid-rank), in [0, 1]; NULL for a missing x or an empty
 * population.  sorted must be ascending (unsorted input gives a meaningless
 * rank, not an error: checking would cost as much as the search saves).
 *
 * Called once per customer with the same population of up to a whole
 * segment, so the search reads the array in place instead of deconstructing
 * it, and a population stored out of line (cs.health_populations) is fetched
 * once per call site rather than once per row.
 */
Datum
cs_percentile_rank(PG_FUNCTION_ARGS)
{
	struct varlena *raw = (struct varlena *) PG_GETARG_POINTER(0);
	float8		x = PG_GETARG_FLOAT8(1);
	const float8 *v;
	int			n;

	if (VARATT_IS_EXTERNAL_ONDISK(raw))
	{
		PercentileCache *c = (PercentileCache *) fcinfo->flinfo->fn_extra;
		Size		keylen = VARSIZE_EXTERNAL(raw);
		PercentileSlot *slot = NULL;
		int			i;

		if (c == NULL)
		{
			c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PercentileCache));
			fcinfo->flinfo->fn_extra = c;
		}
		for (i = 0; i < c->used; i++)
			if (c->slots[i].keylen == keylen && memcmp(c->slots[i].key, raw, keylen) == 0)
			{
				slot = &c->slots[i];
				break;
			}
		if (slot == NULL)
		{
			ArrayType  *arr = DatumGetArrayTypeP(PointerGetDatum(raw));
			int			items = PopulationItems(arr);

			if (c->used < PERCENTILE_CACHE_SLOTS)
				slot = &c->slots[c->used++];
			else
			{
				slot = &c->slots[c->next];
				c->next = (c->next + 1) % PERCENTILE_CACHE_SLOTS;
				pfree(slot->values);
			}
			slot->values = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(float8) * Max(items, 1));
			memcpy(slot->values, ARR_DATA_PTR(arr), sizeof(float8) * items);
			slot->n = items;
			memcpy(slot->key, raw, keylen);
			slot->keylen = keylen;
			pfree(arr);
		}
		v = slot->values;
		n = slot->n;
	}
	else
	{
		ArrayType  *arr = DatumGetArrayTypeP(PointerGetDatum(raw));

		n = PopulationItems(arr);
		v = (const float8 *) ARR_DATA_PTR(arr);
	}
	if (isnan(x) || n == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(PercentileRankAt(v, n, x));
}

/*
 * Usage summary aggregate.
 *
 * The usage features need several distinct counts (users in 7 and 30 days,
 * features and active days in 30 days) and windowed sums per customer.  As
 * SQL DISTINCT aggregates each of them sorts the whole input; this aggregate
 * gets them in one pass, with a small hash set per customer, so a full refresh
 * can hash-aggregate a seq scan of the recent partitions.
 *
 * Users and features are identified by a 64-bit hash of their text: two
 * different ids colliding within one customer has a probability of about
 * n^2 / 2^65, negligible for any real number of users.
 */
typedef struct HashSet64
{
	uint64	   *keys;			/* 0 = empty slot */
	int64	   *vals;
	int			size;			/* power of two */
	int			count;
} HashSet64;

typedef struct UsageState
{
	TimestampTz as_of;
	double		ev30;			/* quantity in (as_of - 30d, as_of] */
	double		ev_prev30;		/* quantity in (as_of - 60d, as_of - 30d] */
	double		ev14;
	double		ev_prev14;		/* quantity in (as_of - 28d, as_of - 14d] */
	TimestampTz last;			/* latest event at or before as_of */
	bool		any;
	uint32		days_mask;		/* bit k: activity in day k back from as_of */
	HashSet64	users;			/* user hash -> latest event time (30 days) */
	HashSet64	features;		/* feature hashes used in 30 days */
} UsageState;

#define USECS_PER_DAY_F ((int64) USECS_PER_DAY)

/* Inserts key (keeping the larger value) into an open-addressing set. */
static void
HashSetPut(HashSet64 *hs, uint64 key, int64 val, MemoryContext cxt)
{
	uint32		mask;
	uint32		i;

	if (key == 0)
		key = 1;
	if (hs->size == 0 || (hs->count + 1) * 10 > hs->size * 7)
	{
		HashSet64	old = *hs;
		int			newsize = hs->size ? hs->size * 2 : 16;

		hs->keys = MemoryContextAllocZero(cxt, sizeof(uint64) * newsize);
		hs->vals = MemoryContextAlloc(cxt, sizeof(int64) * newsize);
		hs->size = newsize;
		hs->count = 0;
		for (int j = 0; j < old.size; j++)
			if (old.keys[j] != 0)
				HashSetPut(hs, old.keys[j], old.vals[j], cxt);
		if (old.keys)
		{
			pfree(old.keys);
			pfree(old.vals);
		}
	}
	mask = hs->size - 1;
	i = (uint32) (key ^ (key >> 32)) & mask;
	while (hs->keys[i] != 0 && hs->keys[i] != key)
		i = (i + 1) & mask;
	if (hs->keys[i] == 0)
	{
		hs->keys[i] = key;
		hs->vals[i] = val;
		hs->count++;
	}
	else if (val > hs->vals[i])
		hs->vals[i] = val;
}

/* 64-bit hash of a text datum. */
static uint64
TextHash64(text *t)
{
	return DatumGetUInt64(hash_any_extended((unsigned char *) VARDATA_ANY(t),
											VARSIZE_ANY_EXHDR(t), 0x5bd1e995));
}

PG_FUNCTION_INFO_V1(cs_usage_summary_trans);
PG_FUNCTION_INFO_V1(cs_usage_summary_final);

PG_FUNCTION_INFO_V1(cs_usage_summary_combine);
PG_FUNCTION_INFO_V1(cs_usage_summary_serialize);
PG_FUNCTION_INFO_V1(cs_usage_summary_deserialize);

/* Transition: (state, user_id, feature, quantity, occurred_at, as_of). */
Datum
cs_usage_summary_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	UsageState *st;
	TimestampTz ts,
				as_of;
	double		q;
	int64		age;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "cs_usage_summary_trans called in non-aggregate context");
	if (PG_ARGISNULL(4) || PG_ARGISNULL(5))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	ts = PG_GETARG_TIMESTAMPTZ(4);
	as_of = PG_GETARG_TIMESTAMPTZ(5);
	if (PG_ARGISNULL(0))
	{
		st = MemoryContextAllocZero(aggcxt, sizeof(UsageState));
		st->as_of = as_of;
	}
	else
		st = (UsageState *) PG_GETARG_POINTER(0);
	if (as_of != st->as_of)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be the same for every row of a usage summary")));
	if (ts > as_of)
		PG_RETURN_POINTER(st);

	q = PG_ARGISNULL(3) ? 1.0 : PG_GETARG_FLOAT8(3);
	age = as_of - ts;			/* microseconds, >= 0 */
	if (!st->any || ts > st->last)
		st->last = ts;
	st->any = true;

	if (age < 30 * USECS_PER_DAY_F)
	{
		st->ev30 += q;
		st->days_mask |= (uint32) 1 << (age / USECS_PER_DAY_F);
		if (!PG_ARGISNULL(1))
			HashSetPut(&st->users, TextHash64(PG_GETARG_TEXT_PP(1)), ts, aggcxt);
		if (!PG_ARGISNULL(2))
			HashSetPut(&st->features, TextHash64(PG_GETARG_TEXT_PP(2)), 0, aggcxt);
	}
	else if (age < 60 * USECS_PER_DAY_F)
		st->ev_prev30 += q;
	if (age < 14 * USECS_PER_DAY_F)
		st->ev14 += q;
	else if (age < 28 * USECS_PER_DAY_F)
		st->ev_prev14 += q;
	PG_RETURN_POINTER(st);
}

/*
 * Final: {active_users_7d, active_users_30d, events_30d, events_prev_30d,
 * events_14d, events_prev_14d, features_30d, active_days_30d,
 * days_since_last_event}.  Windows are half-open days counted back from as_of.
 */
Datum
cs_usage_summary_final(PG_FUNCTION_ARGS)
{
	UsageState *st;
	Datum		out[9];
	int			au7 = 0;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (UsageState *) PG_GETARG_POINTER(0);
	if (!st->any)
		PG_RETURN_NULL();
	for (int i = 0; i < st->users.size; i++)
		if (st->users.keys[i] != 0 && st->as_of - st->users.vals[i] < 7 * USECS_PER_DAY_F)
			au7++;
	out[0] = Float8GetDatum(au7);
	out[1] = Float8GetDatum(st->users.count);
	out[2] = Float8GetDatum(st->ev30);
	out[3] = Float8GetDatum(st->ev_prev30);
	out[4] = Float8GetDatum(st->ev14);
	out[5] = Float8GetDatum(st->ev_prev14);
	out[6] = Float8GetDatum(st->features.count);
	out[7] = Float8GetDatum(pg_popcount((const char *) &st->days_mask, sizeof(st->days_mask)));
	out[8] = Float8GetDatum((double) (st->as_of - st->last) / USECS_PER_DAY);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, 9, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}

PG_FUNCTION_INFO_V1(cs_present_share);

/* cs.present_share(float4[]): share of elements that are not NaN (missing); NULL when empty. */
Datum
cs_present_share(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	int			n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	int			present = 0;
	const float4 *v;

	if (ARR_HASNULL(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("feature vectors must not contain NULL"),
				 errhint("Use 'NaN' for a missing value.")));
	if (n == 0)
		PG_RETURN_NULL();
	v = (const float4 *) ARR_DATA_PTR(arr);
	for (int i = 0; i < n; i++)
		if (!isnan(v[i]))
			present++;
	PG_RETURN_FLOAT8((float8) present / n);
}

/*
 * cs.feature_map(features float4[]) RETURNS jsonb: the vector as an object
 * keyed by cs.feature_catalog name, missing (NaN, or beyond the array) values
 * as JSON null, numbers as to_jsonb(real) writes them.  Alert evaluation builds
 * one per customer, so the catalog is read once per call site, not per row.
 */
typedef struct FeatureNames
{
	int			n;
	int		   *position;		/* 1-based array index of each name */
	char	  **name;
} FeatureNames;

static FeatureNames *
LoadFeatureNames(MemoryContext cxt)
{
	FeatureNames *fn;
	uint64		i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT position, name FROM cs.feature_catalog ORDER BY position", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read cs.feature_catalog");
	fn = MemoryContextAllocZero(cxt, sizeof(FeatureNames));
	fn->n = (int) SPI_processed;
	fn->position = MemoryContextAlloc(cxt, sizeof(int) * Max(fn->n, 1));
	fn->name = MemoryContextAlloc(cxt, sizeof(char *) * Max(fn->n, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		pos = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		fn->position[i] = isnull ? 0 : DatumGetInt32(pos);
		fn->name[i] = MemoryContextStrdup(cxt, name ? name : "");
	}
	SPI_finish();
	return fn;
}

Datum
cs_feature_map(PG_FUNCTION_ARGS)
{
	FeatureNames *fn = (FeatureNames *) fcinfo->flinfo->fn_extra;
	JsonbParseState *state = NULL;
	JsonbValue *res;
	float4	   *x = NULL;
	int			lb = 1,
				n = 0;

	if (fn == NULL)
	{
		fn = LoadFeatureNames(fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = fn;
	}
	if (!PG_ARGISNULL(0))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("features must be a one-dimensional array")));
		if (ARR_NDIM(arr) == 1 && !ARR_HASNULL(arr))
		{
			x = (float4 *) ARR_DATA_PTR(arr);
			n = ARR_DIMS(arr)[0];
			lb = ARR_LBOUND(arr)[0];
		}
		else if (ARR_NDIM(arr) == 1)
		{
			/* NULL elements: the slow, general way */
			Datum	   *values;
			bool	   *nulls;
			int			k;

			deconstruct_array(arr, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT, &values, &nulls, &n);
			x = palloc(sizeof(float4) * Max(n, 1));
			for (k = 0; k < n; k++)
				x[k] = nulls[k] ? get_float4_nan() : DatumGetFloat4(values[k]);
			lb = ARR_LBOUND(arr)[0];
		}
	}
	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < fn->n; i++)
	{
		JsonbValue	k,
					v;
		int			idx = fn->position[i] - lb;

		k.type = jbvString;
		k.val.string.val = fn->name[i];
		k.val.string.len = strlen(fn->name[i]);
		(void) pushJsonbValue(&state, WJB_KEY, &k);
		if (x == NULL || idx < 0 || idx >= n || isnan(x[idx]))
			v.type = jbvNull;
		else
		{
			char	   *txt = DatumGetCString(DirectFunctionCall1(float4out, Float4GetDatum(x[idx])));

			v.type = jbvNumeric;
			v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(txt),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
		}
		(void) pushJsonbValue(&state, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

/*
 * cs._sparkline(at timestamptz, ts timestamptz[], scores numeric[]) RETURNS
 * text: twelve glyphs, oldest first, for the overall health at the end of each
 * of the twelve weeks up to at: the latest score at or before at - w weeks
 * (w = 11..0), as cs.spark() draws it (a blank when there is none).  ts must
 * be ascending.  One index range scan feeds it, where twelve correlated
 * lookups per account did.
 */
PG_FUNCTION_INFO_V1(cs_sparkline);

Datum
cs_sparkline(PG_FUNCTION_ARGS)
{
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(0);
	ArrayType  *ts_arr = PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *sc_arr = PG_GETARG_ARRAYTYPE_P(2);
	static const char *const glyphs[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
	Datum	   *ts,
			   *sc;
	bool	   *ts_null,
			   *sc_null;
	int			nts,
				nsc;
	StringInfoData out;

	deconstruct_array(ts_arr, TIMESTAMPTZOID, sizeof(TimestampTz), true, TYPALIGN_DOUBLE, &ts, &ts_null, &nts);
	deconstruct_array(sc_arr, NUMERICOID, -1, false, TYPALIGN_INT, &sc, &sc_null, &nsc);
	if (nts != nsc)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("timestamps and scores must have the same length")));
	initStringInfo(&out);
	for (int w = 11; w >= 0; w--)
	{
		Interval	span;
		TimestampTz bound;
		int			lo = 0,
					hi = nts;

		memset(&span, 0, sizeof(span));
		span.day = 7 * w;
		bound = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
														TimestampTzGetDatum(at),
														IntervalPGetDatum(&span)));
		/* the first index with a timestamp after bound */
		while (lo < hi)
		{
			int			mid = lo + (hi - lo) / 2;

			if (!ts_null[mid] && DatumGetTimestampTz(ts[mid]) <= bound)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == 0 || sc_null[lo - 1])
			appendStringInfoChar(&out, ' ');
		else
		{
			double		s = DatumGetFloat8(DirectFunctionCall1(numeric_float8, sc[lo - 1]));
			int			g = (int) floor(s * 8);

			appendStringInfoString(&out, glyphs[Max(0, Min(7, g))]);
		}
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/*
 * Parallel aggregation: partial states of the same customer from several
 * workers are combined (sums added, sets merged, latest times kept), and
 * cross process boundaries serialized as bytea.
 */
static void
UsageMerge(UsageState *dst, const UsageState *src, MemoryContext cxt)
{
	if (src->as_of != dst->as_of)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be the same for every row of a usage summary")));
	dst->ev30 += src->ev30;
	dst->ev_prev30 += src->ev_prev30;
	dst->ev14 += src->ev14;
	dst->ev_prev14 += src->ev_prev14;
	if (src->any && (!dst->any || src->last > dst->last))
		dst->last = src->last;
	dst->any = dst->any || src->any;
	dst->days_mask |= src->days_mask;
	for (int i = 0; i < src->users.size; i++)
		if (src->users.keys[i] != 0)
			HashSetPut(&dst->users, src->users.keys[i], src->users.vals[i], cxt);
	for (int i = 0; i < src->features.size; i++)
		if (src->features.keys[i] != 0)
			HashSetPut(&dst->features, src->features.keys[i], src->features.vals[i], cxt);
}

Datum
cs_usage_summary_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	UsageState *dst;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "cs_usage_summary_combine called in non-aggregate context");
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	if (PG_ARGISNULL(0))
	{
		UsageState *src = (UsageState *) PG_GETARG_POINTER(1);

		dst = MemoryContextAllocZero(aggcxt, sizeof(UsageState));
		dst->as_of = src->as_of;
	}
	else
		dst = (UsageState *) PG_GETARG_POINTER(0);
	UsageMerge(dst, (UsageState *) PG_GETARG_POINTER(1), aggcxt);
	PG_RETURN_POINTER(dst);
}

/* Layout: the scalars, then the user (key, value) pairs, then the feature keys. */
typedef struct UsageWire
{
	TimestampTz as_of;
	double		ev30,
				ev_prev30,
				ev14,
				ev_prev14;
	TimestampTz last;
	int32		any;
	uint32		days_mask;
	int32		nusers;
	int32		nfeatures;
} UsageWire;

Datum
cs_usage_summary_serialize(PG_FUNCTION_ARGS)
{
	UsageState *st = (UsageState *) PG_GETARG_POINTER(0);
	UsageWire	w;
	Size		len;
	bytea	   *out;
	char	   *p;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "cs_usage_summary_serialize called in non-aggregate context");
	memset(&w, 0, sizeof(w));
	w.as_of = st->as_of;
	w.ev30 = st->ev30;
	w.ev_prev30 = st->ev_prev30;
	w.ev14 = st->ev14;
	w.ev_prev14 = st->ev_prev14;
	w.last = st->last;
	w.any = st->any;
	w.days_mask = st->days_mask;
	w.nusers = st->users.count;
	w.nfeatures = st->features.count;
	len = sizeof(w) + (Size) w.nusers * 2 * sizeof(uint64) + (Size) w.nfeatures * sizeof(uint64);
	out = (bytea *) palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	p = VARDATA(out);
	memcpy(p, &w, sizeof(w));
	p += sizeof(w);
	for (int i = 0; i < st->users.size; i++)
		if (st->users.keys[i] != 0)
		{
			memcpy(p, &st->users.keys[i], sizeof(uint64));
			memcpy(p + sizeof(uint64), &st->users.vals[i], sizeof(int64));
			p += 2 * sizeof(uint64);
		}
	for (int i = 0; i < st->features.size; i++)
		if (st->features.keys[i] != 0)
		{
			memcpy(p, &st->features.keys[i], sizeof(uint64));
			p += sizeof(uint64);
		}
	PG_RETURN_BYTEA_P(out);
}

Datum
cs_usage_summary_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt;
	UsageState *st;
	UsageWire	w;
	const char *p = VARDATA_ANY(in);
	Size		len = VARSIZE_ANY_EXHDR(in);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "cs_usage_summary_deserialize called in non-aggregate context");
	if (len < sizeof(w))
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("invalid usage summary state")));
	memcpy(&w, p, sizeof(w));
	if (w.nusers < 0 || w.nfeatures < 0 ||
		len != sizeof(w) + (Size) w.nusers * 2 * sizeof(uint64) + (Size) w.nfeatures * sizeof(uint64))
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("invalid usage summary state")));
	p += sizeof(w);
	st = MemoryContextAllocZero(aggcxt, sizeof(UsageState));
	st->as_of = w.as_of;
	st->ev30 = w.ev30;
	st->ev_prev30 = w.ev_prev30;
	st->ev14 = w.ev14;
	st->ev_prev14 = w.ev_prev14;
	st->last = w.last;
	st->any = w.any != 0;
	st->days_mask = w.days_mask;
	for (int i = 0; i < w.nusers; i++)
	{
		uint64		k;
		int64		v;

		memcpy(&k, p, sizeof(uint64));
		memcpy(&v, p + sizeof(uint64), sizeof(int64));
		HashSetPut(&st->users, k, v, aggcxt);
		p += 2 * sizeof(uint64);
	}
	for (int i = 0; i < w.nfeatures; i++)
	{
		uint64		k;

		memcpy(&k, p, sizeof(uint64));
		HashSetPut(&st->features, k, 0, aggcxt);
		p += sizeof(uint64);
	}
	PG_RETURN_POINTER(st);
}

/* ------------------------------------------------------------------------
 * Kept plans of the pipeline's per-customer queries
 *
 * cs.compute_features builds one query text for one customer and for a full
 * refresh alike.  Run by EXECUTE it is planned on every call, and planning
 * that query (eleven CTEs over seven tables) takes 10-60 ms where running it
 * for one customer takes under 1 ms.  cs._run_kept_plan (a SELECT) and
 * cs._exec_kept_plan (a write) run such a text with a generic plan kept for
 * the session: the plan cache replans it by itself when a table, an index,
 * the search_path or the role (row-level security) it was made for changes,
 * so the results are those of the text run afresh.
 * ------------------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(cs_run_kept_plan);
PG_FUNCTION_INFO_V1(cs_exec_kept_plan);

/* Texts whose plans a backend keeps; a text beyond them is planned each call. */
#define MAX_KEPT_PLANS 16

typedef struct KeptPlan
{
	uint64		hash;
	Oid			argtype;		/* of $2 */
	char	   *query;			/* in TopMemoryContext */
	SPIPlanPtr	plan;			/* kept by SPI_keepplan */
} KeptPlan;

static KeptPlan KeptPlans[MAX_KEPT_PLANS];
static int	NumKeptPlans = 0;

/* The kept plan of a query text, prepared (and kept, while there is room) on first use. */
static SPIPlanPtr
KeptPlanFor(text *query, Oid argtype, bool *transient)
{
	uint64		h = TextHash64(query);
	char	   *q = text_to_cstring(query);
	Oid			argtypes[2] = {UUIDARRAYOID, argtype};
	SPIPlanPtr	plan;

	*transient = false;
	for (int i = 0; i < NumKeptPlans; i++)
		if (KeptPlans[i].hash == h && KeptPlans[i].argtype == argtype &&
			strcmp(KeptPlans[i].query, q) == 0)
			return KeptPlans[i].plan;

	/* generic: a custom plan would replan every call, which is the cost avoided */
	plan = SPI_prepare_cursor(q, 2, argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed: %s", SPI_result_code_string(SPI_result));
	if (NumKeptPlans >= MAX_KEPT_PLANS)
	{
		*transient = true;
		return plan;
	}
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	KeptPlans[NumKeptPlans].hash = h;
	KeptPlans[NumKeptPlans].argtype = argtype;
	KeptPlans[NumKeptPlans].query = MemoryContextStrdup(TopMemoryContext, q);
	KeptPlans[NumKeptPlans].plan = plan;
	NumKeptPlans++;
	return plan;
}

/*
 * Runs the query (argument 0) with $1 = argument 1 (uuid[]) and $2 = argument
 * 2 (of any type) from its kept plan, in an SPI connection the caller
 * finishes; returns SPI's result code.
 */
static int
RunKeptPlan(FunctionCallInfo fcinfo, bool read_only, SPIPlanPtr *plan, bool *transient)
{
	Datum		values[2];
	char		nulls[2];
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 2);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query must not be NULL")));
	if (!OidIsValid(argtype))
		elog(ERROR, "could not determine the type of the second parameter");
	values[0] = PG_GETARG_DATUM(1);
	nulls[0] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[1] = PG_GETARG_DATUM(2);
	nulls[1] = PG_ARGISNULL(2) ? 'n' : ' ';
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	*plan = KeptPlanFor(PG_GETARG_TEXT_PP(0), argtype, transient);
	return SPI_execute_plan(*plan, values, nulls, read_only, 0);
}

/*
 * cs._run_kept_plan(query text, ids uuid[], arg anyelement) RETURNS SETOF
 * record: the rows of a SELECT with parameters $1 (ids) and $2 (arg), from a
 * generic plan kept for the session; the caller's column definition list
 * must match the query's columns.
 */
Datum
cs_run_kept_plan(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SPIPlanPtr	plan;
	bool		transient;
	TupleDesc	have;
	TupleDesc	want;
	int			ret;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	want = rsinfo->setDesc;
	/* read-only, like the STABLE callers: their snapshot, no command counter step */
	ret = RunKeptPlan(fcinfo, true, &plan, &transient);
	if (ret != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("the query of cs._run_kept_plan must be a SELECT")));
	have = SPI_tuptable->tupdesc;
	if (have->natts != want->natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("query returns %d columns, the column definition list has %d",
						have->natts, want->natts)));
	for (int i = 0; i < have->natts; i++)
		if (TupleDescAttr(have, i)->atttypid != TupleDescAttr(want, i)->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column %d of the query has type %s, the column definition list says %s",
							i + 1, format_type_be(TupleDescAttr(have, i)->atttypid),
							format_type_be(TupleDescAttr(want, i)->atttypid))));
	for (uint64 r = 0; r < SPI_processed; r++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[r]);
	if (transient)
		SPI_freeplan(plan);
	SPI_finish();
	return (Datum) 0;
}

/*
 * cs._exec_kept_plan(query text, ids uuid[], arg anyelement) RETURNS bigint:
 * runs an INSERT, UPDATE or DELETE with parameters $1 (ids) and $2 (arg) from
 * a generic plan kept for the session; returns the number of rows it wrote.
 */
Datum
cs_exec_kept_plan(PG_FUNCTION_ARGS)
{
	SPIPlanPtr	plan;
	bool		transient;
	int			ret;
	uint64		n;

	ret = RunKeptPlan(fcinfo, false, &plan, &transient);
	if (ret != SPI_OK_INSERT && ret != SPI_OK_UPDATE && ret != SPI_OK_DELETE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("the query of cs._exec_kept_plan must be an INSERT, UPDATE or DELETE without RETURNING")));
	n = SPI_processed;
	if (transient)
		SPI_freeplan(plan);
	SPI_finish();
	PG_RETURN_INT64((int64) n);
}
