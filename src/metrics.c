/*
 * metrics.c
 *		Usage metrics defined as data (cs.usage_metrics), computed by an
 *		aggregate that the same scan of cs.usage_events feeds as
 *		cs.usage_summary, and the picking of a model's inputs from a stored
 *		feature vector by name.
 *
 * cs.compute_features passes the enabled definitions as one constant text[]
 * (cs._usage_metric_spec(): eight fields per metric, in name order).  The
 * aggregate parses it once per backend (a small cache keyed by its bytes) and
 * keeps, per customer and metric, the window's and the previous window's
 * sums, distinct users (64-bit hashes, as cs.usage_summary) and active days
 * (a bitmap of whole days counted back from as_of).  The final function
 * composes them: per user or per active day, the ratio to another metric,
 * the relative change against the previous window.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "port/pg_bitutils.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cscopilot.h"

PG_FUNCTION_INFO_V1(cs_usage_metrics_trans);
PG_FUNCTION_INFO_V1(cs_usage_metrics_final);
PG_FUNCTION_INFO_V1(cs_usage_metrics_combine);
PG_FUNCTION_INFO_V1(cs_usage_metrics_serialize);
PG_FUNCTION_INFO_V1(cs_usage_metrics_deserialize);
PG_FUNCTION_INFO_V1(cs_usage_metrics_empty);
PG_FUNCTION_INFO_V1(cs_pick_features);

#define SPEC_FIELDS 8
#define MAX_METRICS 1000
#define MAX_WINDOW_DAYS 3660
#define DAY_USECS ((int64) USECS_PER_DAY)

typedef enum MetricAgg
{
	AGG_COUNT,
	AGG_DISTINCT_USERS,
	AGG_ACTIVE_DAYS,
	AGG_SUM_QUANTITY
} MetricAgg;

typedef enum MetricPer
{
	PER_NONE,
	PER_USER,
	PER_ACTIVE_DAY
} MetricPer;

typedef struct MetricDef
{
	int			nevents;		/* -1: every event */
	uint64	   *events;			/* hashes of the event names */
	int			nfeatures;		/* -1: every feature */
	uint64	   *features;
	int			window_days;
	MetricAgg	agg;
	MetricPer	per;
	int			ratio_of;		/* 0-based index, -1 for none */
	bool		change;
	bool		need_prev;		/* the previous window is read (change, or a changing metric's ratio) */
	bool		need_users;
	bool		need_days;
} MetricDef;

typedef struct MetricSpec
{
	Size		rawlen;
	char	   *raw;			/* the text[] bytes it was parsed from */
	int			n;
	MetricDef  *defs;
} MetricSpec;

typedef struct UserSet
{
	uint64	   *keys;			/* 0 = empty slot */
	int			size;
	int			count;
} UserSet;

typedef struct MetricAcc
{
	double		val[2];			/* count or quantity: window, previous window */
	UserSet		users[2];
	uint64	   *days;			/* bitmap of (need_prev ? 2 : 1) * window_days days */
} MetricAcc;

typedef struct MetricsState
{
	TimestampTz as_of;
	MetricSpec *spec;
	MetricAcc  *acc;
} MetricsState;

/* Specs parsed by this backend; kept for its life (definitions rarely change). */
#define MAX_CACHED_SPECS 16
static MetricSpec *CachedSpecs[MAX_CACHED_SPECS];
static int	NumCachedSpecs = 0;

/* 64-bit hash of a text. */
static uint64
Hash64(const char *s, int len)
{
	uint64		h = DatumGetUInt64(hash_any_extended((const unsigned char *) s, len, 0x5bd1e995));

	return h == 0 ? 1 : h;
}

/* Adds key to an open-addressing set. */
static void
UserSetAdd(UserSet *us, uint64 key, MemoryContext cxt)
{
	uint32		mask,
				i;

	if (us->size == 0 || (us->count + 1) * 10 > us->size * 7)
	{
		UserSet		old = *us;
		int			newsize = us->size ? us->size * 2 : 8;

		us->keys = MemoryContextAllocZero(cxt, sizeof(uint64) * newsize);
		us->size = newsize;
		us->count = 0;
		for (int j = 0; j < old.size; j++)
			if (old.keys[j] != 0)
				UserSetAdd(us, old.keys[j], cxt);
		if (old.keys)
			pfree(old.keys);
	}
	mask = us->size - 1;
	i = (uint32) (key ^ (key >> 32)) & mask;
	while (us->keys[i] != 0 && us->keys[i] != key)
		i = (i + 1) & mask;
	if (us->keys[i] == 0)
	{
		us->keys[i] = key;
		us->count++;
	}
}

/* Hashes of the names in a text array literal; -1 (all) for NULL. */
static int
ParseNameList(const char *lit, uint64 **out, MemoryContext cxt)
{
	ArrayType  *arr;
	Datum	   *vals;
	bool	   *nulls;
	int			n,
				k = 0;

	if (lit == NULL)
	{
		*out = NULL;
		return -1;
	}
	arr = DatumGetArrayTypeP(OidFunctionCall3(F_ARRAY_IN, CStringGetDatum(lit),
											  ObjectIdGetDatum(TEXTOID), Int32GetDatum(-1)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &vals, &nulls, &n);
	*out = MemoryContextAlloc(cxt, sizeof(uint64) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (!nulls[i])
		{
			text	   *t = DatumGetTextPP(vals[i]);

			(*out)[k++] = Hash64(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		}
	return k;
}

/* Marks the metrics whose previous window is read: changing ones and, transitively, their ratios' bases. */
static void
MarkPrev(MetricSpec *s, int i, int depth)
{
	if (depth > s->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_RECURSION),
				 errmsg("usage metrics refer to each other in a cycle through ratio_of")));
	s->defs[i].need_prev = true;
	if (s->defs[i].ratio_of >= 0)
		MarkPrev(s, s->defs[i].ratio_of, depth + 1);
}

/* Parses the spec text[] (eight fields per metric) into a new MetricSpec in TopMemoryContext. */
static MetricSpec *
ParseSpec(ArrayType *arr)
{
	MemoryContext cxt = TopMemoryContext;
	MetricSpec *s;
	Datum	   *vals;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("usage metric spec must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &vals, &nulls, &n);
	if (n % SPEC_FIELDS != 0 || n / SPEC_FIELDS > MAX_METRICS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid usage metric spec"),
				 errdetail("The spec has %d fields, not a multiple of %d up to %d metrics.",
						   n, SPEC_FIELDS, MAX_METRICS)));
	s = MemoryContextAllocZero(cxt, sizeof(MetricSpec));
	s->n = n / SPEC_FIELDS;
	s->defs = MemoryContextAllocZero(cxt, sizeof(MetricDef) * Max(s->n, 1));
	for (int i = 0; i < s->n; i++)
	{
		MetricDef  *d = &s->defs[i];
		char	   *f[SPEC_FIELDS];

		for (int j = 0; j < SPEC_FIELDS; j++)
			f[j] = nulls[i * SPEC_FIELDS + j] ? NULL : TextDatumGetCString(vals[i * SPEC_FIELDS + j]);
		/* f: name, events, features, window_days, aggregate, per, ratio_of (1-based), change */
		d->nevents = ParseNameList(f[1], &d->events, cxt);
		d->nfeatures = ParseNameList(f[2], &d->features, cxt);
		d->window_days = f[3] ? atoi(f[3]) : 0;
		if (d->window_days < 1 || d->window_days > MAX_WINDOW_DAYS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("usage metric \"%s\": window_days %d is out of range", f[0] ? f[0] : "", d->window_days)));
		if (f[4] && strcmp(f[4], "count") == 0)
			d->agg = AGG_COUNT;
		else if (f[4] && strcmp(f[4], "distinct_users") == 0)
			d->agg = AGG_DISTINCT_USERS;
		else if (f[4] && strcmp(f[4], "active_days") == 0)
			d->agg = AGG_ACTIVE_DAYS;
		else if (f[4] && strcmp(f[4], "sum_quantity") == 0)
			d->agg = AGG_SUM_QUANTITY;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("usage metric \"%s\": invalid aggregate \"%s\"", f[0] ? f[0] : "", f[4] ? f[4] : "")));
		if (f[5] == NULL)
			d->per = PER_NONE;
		else if (strcmp(f[5], "user") == 0)
			d->per = PER_USER;
		else if (strcmp(f[5], "active_day") == 0)
			d->per = PER_ACTIVE_DAY;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("usage metric \"%s\": invalid per \"%s\"", f[0] ? f[0] : "", f[5])));
		d->ratio_of = f[6] ? atoi(f[6]) - 1 : -1;
		if (f[6] && (d->ratio_of < 0 || d->ratio_of >= s->n || d->ratio_of == i))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("usage metric \"%s\": invalid ratio_of index %s", f[0] ? f[0] : "", f[6])));
		d->change = f[7] != NULL && strcmp(f[7], "t") == 0;
		d->need_users = d->agg == AGG_DISTINCT_USERS || d->per == PER_USER;
		d->need_days = d->agg == AGG_ACTIVE_DAYS || d->per == PER_ACTIVE_DAY;
	}
	for (int i = 0; i < s->n; i++)
		if (s->defs[i].change)
			MarkPrev(s, i, 0);
	s->rawlen = VARSIZE(arr);
	s->raw = MemoryContextAlloc(cxt, s->rawlen);
	memcpy(s->raw, arr, s->rawlen);
	return s;
}

/* The parsed spec of a text[] datum, from the backend's cache when it was seen before. */
static MetricSpec *
SpecFor(Datum d)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	Size		len = VARSIZE(arr);
	MetricSpec *s;

	for (int i = 0; i < NumCachedSpecs; i++)
		if (CachedSpecs[i]->rawlen == len && memcmp(CachedSpecs[i]->raw, arr, len) == 0)
			return CachedSpecs[i];
	s = ParseSpec(arr);
	/* beyond the cache, a spec still lives as long as the backend: specs are few */
	if (NumCachedSpecs < MAX_CACHED_SPECS)
		CachedSpecs[NumCachedSpecs++] = s;
	return s;
}

/* Words of a metric's day bitmap. */
static int
DayWords(const MetricDef *d)
{
	return ((d->need_prev ? 2 : 1) * d->window_days + 63) / 64;
}

/* A new, empty state for spec. */
static MetricsState *
NewState(MetricSpec *spec, TimestampTz as_of, MemoryContext cxt)
{
	MetricsState *st = MemoryContextAllocZero(cxt, sizeof(MetricsState));

	st->as_of = as_of;
	st->spec = spec;
	st->acc = MemoryContextAllocZero(cxt, sizeof(MetricAcc) * Max(spec->n, 1));
	for (int i = 0; i < spec->n; i++)
		if (spec->defs[i].need_days)
			st->acc[i].days = MemoryContextAllocZero(cxt, sizeof(uint64) * DayWords(&spec->defs[i]));
	return st;
}

/* Whether h is one of the n hashes (n = -1: no filter). */
static inline bool
InList(const uint64 *list, int n, uint64 h, bool present)
{
	if (n < 0)
		return true;
	if (!present)
		return false;
	for (int i = 0; i < n; i++)
		if (list[i] == h)
			return true;
	return false;
}

/* Transition: (state, spec, event, feature, user_id, quantity, occurred_at, as_of). */
Datum
cs_usage_metrics_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MetricsState *st;
	TimestampTz ts,
				as_of;
	int64		day;
	double		q;
	uint64		eh = 0,
				fh = 0,
				uh = 0;
	bool		has_event = !PG_ARGISNULL(2),
				has_feature = !PG_ARGISNULL(3),
				has_user = !PG_ARGISNULL(4);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "cs_usage_metrics_trans called in non-aggregate context");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(6) || PG_ARGISNULL(7))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	ts = PG_GETARG_TIMESTAMPTZ(6);
	as_of = PG_GETARG_TIMESTAMPTZ(7);
	if (PG_ARGISNULL(0))
		st = NewState(SpecFor(PG_GETARG_DATUM(1)), as_of, aggcxt);
	else
		st = (MetricsState *) PG_GETARG_POINTER(0);
	if (as_of != st->as_of)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be the same for every row of a usage metrics aggregate")));
	if (ts > as_of)
		PG_RETURN_POINTER(st);
	day = (as_of - ts) / DAY_USECS;
	q = PG_ARGISNULL(5) ? 1.0 : PG_GETARG_FLOAT8(5);
	if (has_event)
	{
		text	   *t = PG_GETARG_TEXT_PP(2);

		eh = Hash64(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	if (has_feature)
	{
		text	   *t = PG_GETARG_TEXT_PP(3);

		fh = Hash64(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	if (has_user)
	{
		text	   *t = PG_GETARG_TEXT_PP(4);

		uh = Hash64(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	for (int i = 0; i < st->spec->n; i++)
	{
		const MetricDef *d = &st->spec->defs[i];
		MetricAcc  *a = &st->acc[i];
		int			w;

		if (day < d->window_days)
			w = 0;
		else if (d->need_prev && day < 2 * (int64) d->window_days)
			w = 1;
		else
			continue;
		if (!InList(d->events, d->nevents, eh, has_event) ||
			!InList(d->features, d->nfeatures, fh, has_feature))
			continue;
		a->val[w] += d->agg == AGG_SUM_QUANTITY ? q : 1.0;
		if (d->need_users && has_user)
			UserSetAdd(&a->users[w], uh, aggcxt);
		if (d->need_days)
			a->days[day / 64] |= (uint64) 1 << (day % 64);
	}
	PG_RETURN_POINTER(st);
}

/* Active days of window w (0: days [0, W), 1: [W, 2W)) of a metric. */
static int
ActiveDays(const MetricDef *d, const MetricAcc *a, int w)
{
	int			n = 0;

	for (int k = w * d->window_days; k < (w + 1) * d->window_days; k++)
		if (a->days[k / 64] & ((uint64) 1 << (k % 64)))
			n++;
	return n;
}

/* The value of metric i in window w before its change: aggregate, per, ratio. */
static double
RawValue(const MetricsState *st, int i, int w, int depth)
{
	const MetricDef *d = &st->spec->defs[i];
	const MetricAcc *a = &st->acc[i];
	double		v;

	if (depth > st->spec->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_RECURSION),
				 errmsg("usage metrics refer to each other in a cycle through ratio_of")));
	switch (d->agg)
	{
		case AGG_DISTINCT_USERS:
			v = a->users[w].count;
			break;
		case AGG_ACTIVE_DAYS:
			v = ActiveDays(d, a, w);
			break;
		default:
			v = a->val[w];
			break;
	}
	if (d->per != PER_NONE)
	{
		double		den = d->per == PER_USER ? a->users[w].count : ActiveDays(d, a, w);

		/* nothing used in the window: a real zero, not missing */
		v = den > 0 ? v / den : 0.0;
	}
	if (d->ratio_of >= 0)
	{
		double		den = RawValue(st, d->ratio_of, w, depth + 1);

		/* undefined when the base is zero (or missing): missing */
		v = (den != 0 && !isnan(den)) ? v / den : get_float8_nan();
	}
	return v;
}

/* The metric values in spec order as float8[]. */
static Datum
MetricValues(const MetricsState *st)
{
	int			n = st->spec->n;
	Datum	   *out = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		const MetricDef *d = &st->spec->defs[i];
		double		v = RawValue(st, i, 0, 0);

		if (d->change)
		{
			double		prev = RawValue(st, i, 1, 0);

			/* as the usage trend features: from nothing, 1 when there is use now, else 0 */
			if (isnan(v) || isnan(prev))
				v = get_float8_nan();
			else if (prev != 0)
				v = v / prev - 1;
			else
				v = v > 0 ? 1.0 : 0.0;
		}
		out[i] = Float8GetDatum(v);
	}
	return PointerGetDatum(construct_array(out, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/* Final: the metric values, in spec order. */
Datum
cs_usage_metrics_final(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(MetricValues((MetricsState *) PG_GETARG_POINTER(0)));
}

/*
 * cs._usage_metrics_empty(spec text[]) RETURNS float8[]: the values of a
 * customer with usage, but none in any metric's window (real zeros; NaN for
 * an undefined ratio).
 */
Datum
cs_usage_metrics_empty(PG_FUNCTION_ARGS)
{
	MetricsState *st = NewState(SpecFor(PG_GETARG_DATUM(0)), 0, CurrentMemoryContext);

	PG_RETURN_DATUM(MetricValues(st));
}

/* Combine: sums added, user sets merged, day bitmaps or-ed. */
Datum
cs_usage_metrics_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MetricsState *dst,
			   *src;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "cs_usage_metrics_combine called in non-aggregate context");
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	src = (MetricsState *) PG_GETARG_POINTER(1);
	if (PG_ARGISNULL(0))
		dst = NewState(src->spec, src->as_of, aggcxt);
	else
		dst = (MetricsState *) PG_GETARG_POINTER(0);
	if (dst->as_of != src->as_of || dst->spec != src->spec)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of and the spec must be the same for every row of a usage metrics aggregate")));
	for (int i = 0; i < dst->spec->n; i++)
	{
		MetricAcc  *a = &dst->acc[i],
				   *b = &src->acc[i];

		for (int w = 0; w < 2; w++)
		{
			a->val[w] += b->val[w];
			for (int k = 0; k < b->users[w].size; k++)
				if (b->users[w].keys[k] != 0)
					UserSetAdd(&a->users[w], b->users[w].keys[k], aggcxt);
		}
		if (a->days)
			for (int k = 0; k < DayWords(&dst->spec->defs[i]); k++)
				a->days[k] |= b->days[k];
	}
	PG_RETURN_POINTER(dst);
}

/* Appends n bytes to a growing buffer. */
static void
Put(StringInfo buf, const void *p, int n)
{
	appendBinaryStringInfo(buf, (const char *) p, n);
}

/*
 * Layout: as_of, spec length and bytes, then per metric: the two sums, the
 * two user sets (count, keys) and the day bitmap.
 */
Datum
cs_usage_metrics_serialize(PG_FUNCTION_ARGS)
{
	MetricsState *st = (MetricsState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	int32		len32 = (int32) st->spec->rawlen;
	bytea	   *out;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "cs_usage_metrics_serialize called in non-aggregate context");
	initStringInfo(&buf);
	Put(&buf, &st->as_of, sizeof(TimestampTz));
	Put(&buf, &len32, sizeof(int32));
	Put(&buf, st->spec->raw, len32);
	for (int i = 0; i < st->spec->n; i++)
	{
		MetricAcc  *a = &st->acc[i];

		Put(&buf, a->val, sizeof(a->val));
		for (int w = 0; w < 2; w++)
		{
			int32		c = a->users[w].count;

			Put(&buf, &c, sizeof(int32));
			for (int k = 0; k < a->users[w].size; k++)
				if (a->users[w].keys[k] != 0)
					Put(&buf, &a->users[w].keys[k], sizeof(uint64));
		}
		if (a->days)
			Put(&buf, a->days, sizeof(uint64) * DayWords(&st->spec->defs[i]));
	}
	out = (bytea *) palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(out, VARHDRSZ + buf.len);
	memcpy(VARDATA(out), buf.data, buf.len);
	pfree(buf.data);
	PG_RETURN_BYTEA_P(out);
}

/* Reads n bytes, or reports a damaged state. */
static const char *
Take(const char *p, const char *end, void *dst, Size n)
{
	if (p + n > end)
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("invalid usage metrics state")));
	memcpy(dst, p, n);
	return p + n;
}

Datum
cs_usage_metrics_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt;
	const char *p = VARDATA_ANY(in);
	const char *end = p + VARSIZE_ANY_EXHDR(in);
	TimestampTz as_of;
	int32		len32;
	ArrayType  *raw;
	MetricsState *st;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "cs_usage_metrics_deserialize called in non-aggregate context");
	p = Take(p, end, &as_of, sizeof(TimestampTz));
	p = Take(p, end, &len32, sizeof(int32));
	if (len32 < (int32) sizeof(ArrayType) || p + len32 > end)
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("invalid usage metrics state")));
	raw = palloc(len32);
	memcpy(raw, p, len32);
	p += len32;
	st = NewState(SpecFor(PointerGetDatum(raw)), as_of, aggcxt);
	for (int i = 0; i < st->spec->n; i++)
	{
		MetricAcc  *a = &st->acc[i];

		p = Take(p, end, a->val, sizeof(a->val));
		for (int w = 0; w < 2; w++)
		{
			int32		c;

			p = Take(p, end, &c, sizeof(int32));
			for (int k = 0; k < c; k++)
			{
				uint64		key;

				p = Take(p, end, &key, sizeof(uint64));
				UserSetAdd(&a->users[w], key, aggcxt);
			}
		}
		if (a->days)
			p = Take(p, end, a->days, sizeof(uint64) * DayWords(&st->spec->defs[i]));
	}
	if (p != end)
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("invalid usage metrics state")));
	PG_RETURN_POINTER(st);
}

/*
 * cs._pick_features(features float4[], positions int[]) RETURNS float4[]: the
 * elements at the given 1-based positions; NaN for a NULL or out-of-range
 * position.  Builds a model's input vector from a stored vector by name
 * (positions from cs._model_positions, computed once per model and layout).
 */
Datum
cs_pick_features(PG_FUNCTION_ARGS)
{
	ArrayType  *fa = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *pa = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *pv;
	bool	   *pn;
	int			np,
				nf,
				lb;
	const float4 *x;
	Datum	   *out;

	if (ARR_NDIM(fa) > 1 || ARR_NDIM(pa) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features and positions must be one-dimensional arrays")));
	if (ARR_HASNULL(fa))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("features must not contain NULL"),
				 errhint("Use 'NaN' for a missing value.")));
	nf = ARR_NDIM(fa) == 0 ? 0 : ARR_DIMS(fa)[0];
	lb = ARR_NDIM(fa) == 0 ? 1 : ARR_LBOUND(fa)[0];
	x = (const float4 *) ARR_DATA_PTR(fa);
	deconstruct_array(pa, INT4OID, sizeof(int32), true, TYPALIGN_INT, &pv, &pn, &np);
	out = palloc(sizeof(Datum) * Max(np, 1));
	for (int i = 0; i < np; i++)
	{
		int			k = pn[i] ? -1 : DatumGetInt32(pv[i]) - lb;

		out[i] = Float4GetDatum(k >= 0 && k < nf ? x[k] : get_float4_nan());
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(out, np, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
}
