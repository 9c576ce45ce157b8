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
#include "utils/array.h"
#include "utils/float.h"

#include "cscopilot.h"

PG_FUNCTION_INFO_V1(cs_feature_vector);
PG_FUNCTION_INFO_V1(cs_interpolate);
PG_FUNCTION_INFO_V1(cs_percentile_rank);

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

/*
 * cs.interpolate(x, xs, ys): piecewise-linear map through the points (xs, ys),
 * constant beyond the first and last point; NULL for a missing (NaN) x.
 */
Datum
cs_interpolate(PG_FUNCTION_ARGS)
{
	float8		x = PG_GETARG_FLOAT8(0);
	Datum	   *xv,
			   *yv;
	bool	   *xn,
			   *yn;
	int			nx,
				ny;

	nx = Float8Elements(PG_GETARG_ARRAYTYPE_P(1), &xv, &xn, "thresholds");
	ny = Float8Elements(PG_GETARG_ARRAYTYPE_P(2), &yv, &yn, "scores");
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
	if (isnan(x))
		PG_RETURN_NULL();
	if (x <= DatumGetFloat8(xv[0]))
		PG_RETURN_FLOAT8(DatumGetFloat8(yv[0]));
	for (int i = 1; i < nx; i++)
	{
		float8		x0 = DatumGetFloat8(xv[i - 1]),
					x1 = DatumGetFloat8(xv[i]);

		if (x <= x1)
		{
			float8		y0 = DatumGetFloat8(yv[i - 1]),
						y1 = DatumGetFloat8(yv[i]);

			PG_RETURN_FLOAT8(y0 + (y1 - y0) * (x - x0) / (x1 - x0));
		}
	}
	PG_RETURN_FLOAT8(DatumGetFloat8(yv[nx - 1]));
}

/*
 * cs.percentile_rank(sorted, x): share of the population below x, counting
 * ties as half (mid-rank), in [0, 1]; NULL for a missing x or an empty
 * population.  sorted must be ascending without NULL or NaN.
 */
Datum
cs_percentile_rank(PG_FUNCTION_ARGS)
{
	float8		x = PG_GETARG_FLOAT8(1);
	Datum	   *v;
	bool	   *nulls;
	int			n,
				lo,
				hi,
				below,
				upto;

	n = Float8Elements(PG_GETARG_ARRAYTYPE_P(0), &v, &nulls, "population");
	if (isnan(x) || n == 0)
		PG_RETURN_NULL();
	/* first index with value >= x */
	lo = 0;
	hi = n;
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (DatumGetFloat8(v[mid]) < x)
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

		if (DatumGetFloat8(v[mid]) <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	upto = lo;
	PG_RETURN_FLOAT8((below + 0.5 * (upto - below)) / n);
}
