/*
 * lifecycle.c
 *		Model lifecycle support in C: reference distributions of a model's
 *		inputs (for drift monitoring) and the lifecycle settings.
 *
 * A reference describes every input feature of the rows a model learnt from:
 * its missing rate (NaN or infinite values are missing) and, over the present
 * values, decile edges and the share of values in each bin.  Edge k (k = 1..9)
 * is the value at 0-based position floor(k * m / 10) of the m sorted present
 * values; repeated edges are kept once.  A value falls in bin b = the number
 * of edges <= value (0 .. number of edges), which is what PostgreSQL's
 * width_bucket(value, edges) returns, so cs.feature_drift bins the current
 * feature vectors exactly as the reference was binned.  Edges are written
 * with 17 significant digits: a float4 widened to float8 reads back exactly.
 *
 * Everything else of the lifecycle (outcome metrics, drift, champion and
 * challenger, retraining) is SQL in src/sql/38_lifecycle.sql.
 */
#include "postgres.h"

#include <float.h>
#include <limits.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "cscopilot.h"
#include "model.h"

PG_FUNCTION_INFO_V1(cs_feature_reference);

/* Number of bins of a reference distribution. */
#define REFERENCE_BINS 10

/* Orders doubles ascending. */
static int
DoubleCmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Appends an edge to a JSON buffer with enough digits to read back exactly. */
static void
AppendJsonDouble(StringInfo buf, double v)
{
	appendStringInfo(buf, "%.17g", v);
}

/*
 * The reference of every feature of one or two row-major matrices (nf
 * columns each) as a JSON array of {"position", "present", "missing_rate",
 * "edges", "shares"}; palloc'd text.
 */
char *
CsFeatureReferenceJson(const float *x1, int n1, const float *x2, int n2, int nf)
{
	StringInfoData buf;
	int			n = n1 + n2;
	double	   *work = palloc(sizeof(double) * Max(n, 1));

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (int f = 0; f < nf; f++)
	{
		double		edges[REFERENCE_BINS - 1];
		int64		counts[REFERENCE_BINS];
		int			nedges = 0;
		int			m = 0;

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < n; i++)
		{
			float		v = i < n1 ? x1[(size_t) i * nf + f] : x2[(size_t) (i - n1) * nf + f];

			if (isfinite(v))
				work[m++] = v;
		}
		qsort(work, m, sizeof(double), DoubleCmp);
		for (int k = 1; m > 0 && k < REFERENCE_BINS; k++)
		{
			double		e = work[(int64) k * m / REFERENCE_BINS];

			if (nedges == 0 || e > edges[nedges - 1])
				edges[nedges++] = e;
		}
		memset(counts, 0, sizeof(counts));
		for (int i = 0; i < m; i++)
		{
			int			b = 0;

			while (b < nedges && edges[b] <= work[i])
				b++;
			counts[b]++;
		}

		if (f > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfo(&buf, "{\"position\": %d, \"present\": %d, \"missing_rate\": %.15g",
						 f + 1, m, n > 0 ? (double) (n - m) / n : 0.0);
		appendStringInfoString(&buf, ", \"edges\": [");
		for (int k = 0; k < nedges; k++)
		{
			if (k > 0)
				appendStringInfoChar(&buf, ',');
			AppendJsonDouble(&buf, edges[k]);
		}
		appendStringInfoString(&buf, "], \"shares\": [");
		for (int b = 0; m > 0 && b <= nedges; b++)
		{
			if (b > 0)
				appendStringInfoChar(&buf, ',');
			appendStringInfo(&buf, "%.15g", (double) counts[b] / m);
		}
		appendStringInfoString(&buf, "]}");
	}
	appendStringInfoChar(&buf, ']');
	pfree(work);
	return buf.data;
}

/* Stores a reference (JSON array from CsFeatureReferenceJson) with model id through cs._store_reference. */
void
CsStoreReference(int32 id, const char *source, int64 rows, const char *json)
{
	Oid			types[4] = {INT4OID, TEXTOID, INT8OID, TEXTOID};
	Datum		values[4];

	values[0] = Int32GetDatum(id);
	values[1] = CStringGetTextDatum(source);
	values[2] = Int64GetDatum(rows);
	values[3] = CStringGetTextDatum(json);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT cs._store_reference($1, $2, $3, $4::jsonb)",
							  4, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not store the reference distribution of model %d", id);
	SPI_finish();
}

/*
 * cs._feature_reference(query): the reference of the feature vectors (column
 * features, float4[]) returned by query, as {"rows": n, "features": [...]}.
 */
Datum
cs_feature_reference(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	MemoryContext caller = CurrentMemoryContext;
	float	   *x = NULL;
	int			nf = -1;
	int64		n;
	int			fcol;
	TupleDesc	desc;
	char	   *json;
	char	   *result;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the reference query must be a SELECT"),
				 errhint("Return the feature vectors in a column named features (float4[]).")));
	desc = SPI_tuptable->tupdesc;
	fcol = SPI_fnumber(desc, "features");
	if (fcol <= 0 || SPI_gettypeid(desc, fcol) != FLOAT4ARRAYOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the reference query must return a column features of type real[]"),
				 errhint("For example: SELECT features FROM cs.build_training_set(ARRAY[date '2025-01-01']).")));
	n = (int64) SPI_processed;
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("the reference query returned no rows"),
				 errhint("A reference needs the feature vectors the model learnt from, or current ones.")));
	if (n > INT_MAX / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the reference query returned too many rows")));

	for (int64 r = 0; r < n; r++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[r], desc, fcol, &isnull);
		ArrayType  *a;
		int			len;

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("reference row %lld has NULL features", (long long) r + 1)));
		a = DatumGetArrayTypeP(d);
		if (ARR_NDIM(a) > 1 || ARR_HASNULL(a))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("reference row %lld: features must be a one-dimensional array without NULLs",
							(long long) r + 1),
					 errhint("Write a missing value as NaN.")));
		len = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
		if (nf < 0)
		{
			nf = len;
			if (nf == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("reference rows have no features")));
			x = palloc(sizeof(float) * (size_t) nf * n);
		}
		else if (len != nf)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("reference row %lld has %d features, the first row has %d", (long long) r + 1, len, nf)));
		memcpy(x + (size_t) r * nf, ARR_DATA_PTR(a), sizeof(float) * nf);
	}
	json = CsFeatureReferenceJson(x, (int) n, NULL, 0, nf);
	result = MemoryContextAlloc(caller, strlen(json) + 64);
	snprintf(result, strlen(json) + 64, "{\"rows\": %lld, \"features\": %s}", (long long) n, json);
	SPI_finish();
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(result)));
}
