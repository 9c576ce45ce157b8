/*
 * survival.c
 *		Survival models: the churn probability within a number of days from
 *		a survival:aft model (cs.survival_probability) and the concordance
 *		index (cs.concordance_index), also used by cs.train_model.
 *
 * An AFT model says ln T = margin + scale * Z, where T is the time to churn
 * in days from the feature vector's date and Z follows the model's
 * distribution (normal, logistic or extreme).  libxgboost predicts
 * exp(margin), the time at the centre of that distribution; the probability
 * of churning within t days is the CDF of Z at (ln t - margin) / scale.  The
 * distribution and scale are read from the model itself (aft_loss_param),
 * so a stored model is all scoring needs.
 *
 * Harrell's concordance index: over the pairs where one row's event was seen
 * at a time before the other's (event or censoring) time, the share where
 * the model predicted the earlier event to come sooner, ties in the
 * prediction counting one half.  Computed in O(n log n): rows by time, latest
 * first, a Fenwick tree counting the predictions of the later rows.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "model.h"
#include "survival.h"

PG_FUNCTION_INFO_V1(cs_survival_probability);
PG_FUNCTION_INFO_V1(cs_concordance_index);

typedef struct SurvRow
{
	double		time;
	double		pred;
	int			rank;			/* dense rank of pred, 1-based */
	bool		event;
} SurvRow;

/* Orders rows by time, latest first. */
static int
TimeDescCmp(const void *a, const void *b)
{
	double		ta = ((const SurvRow *) a)->time;
	double		tb = ((const SurvRow *) b)->time;

	return ta > tb ? -1 : ta < tb ? 1 : 0;
}

/* Orders row pointers by prediction. */
static int
PredCmp(const void *a, const void *b)
{
	double		pa = (*(SurvRow *const *) a)->pred;
	double		pb = (*(SurvRow *const *) b)->pred;

	return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/* The Fenwick tree's count of inserted predictions of rank at most r. */
static int64
FenwickSum(const int64 *tree, int r)
{
	int64		s = 0;

	for (; r > 0; r -= r & -r)
		s += tree[r];
	return s;
}

/*
 * Harrell's C of predicted times against observed times and whether the
 * event was seen; NaN when no pair is comparable.
 */
double
CsConcordanceIndex(const double *pred_time, const double *time, const bool *event, int n)
{
	SurvRow    *rows = palloc(sizeof(SurvRow) * Max(n, 1));
	SurvRow   **byp = palloc(sizeof(SurvRow *) * Max(n, 1));
	int64	   *tree;
	int			nranks = 0;
	int64		inserted = 0;
	double		concordant = 0,
				comparable = 0;

	for (int i = 0; i < n; i++)
	{
		rows[i].time = time[i];
		rows[i].pred = pred_time[i];
		rows[i].event = event[i];
	}
	qsort(rows, n, sizeof(SurvRow), TimeDescCmp);
	for (int i = 0; i < n; i++)
		byp[i] = &rows[i];
	qsort(byp, n, sizeof(SurvRow *), PredCmp);
	for (int i = 0; i < n; i++)
	{
		if (i == 0 || byp[i]->pred != byp[i - 1]->pred)
			nranks++;
		byp[i]->rank = nranks;
	}
	tree = palloc0(sizeof(int64) * (nranks + 1));
	for (int i = 0; i < n;)
	{
		int			j = i;

		/* rows of the same time: compared with the later ones only */
		while (j < n && rows[j].time == rows[i].time)
			j++;
		for (int k = i; k < j; k++)
		{
			int64		upto,
						below;

			if (!rows[k].event)
				continue;
			upto = FenwickSum(tree, rows[k].rank);
			below = FenwickSum(tree, rows[k].rank - 1);
			/* a later row predicted later agrees; an equal prediction counts half */
			concordant += (double) (inserted - upto) + 0.5 * (double) (upto - below);
			comparable += (double) inserted;
		}
		for (int k = i; k < j; k++)
		{
			for (int r = rows[k].rank; r <= nranks; r += r & -r)
				tree[r]++;
			inserted++;
		}
		i = j;
	}
	pfree(tree);
	pfree(byp);
	pfree(rows);
	return comparable > 0 ? concordant / comparable : NAN;
}

/* The elements of a one-dimensional array without NULL, or an error naming arg. */
static Datum *
ArrayElements(ArrayType *a, Oid type, const char *arg, int *n)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", arg)));
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	deconstruct_array(a, type, typlen, typbyval, typalign, &elems, &nulls, n);
	for (int i = 0; i < *n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("element %d of %s is NULL", i + 1, arg)));
	return elems;
}

/* cs.concordance_index(predicted_days, observed_days, churned): Harrell's C. */
Datum
cs_concordance_index(PG_FUNCTION_ARGS)
{
	int			np,
				nt,
				ne;
	Datum	   *p = ArrayElements(PG_GETARG_ARRAYTYPE_P(0), FLOAT8OID, "predicted_days", &np);
	Datum	   *t = ArrayElements(PG_GETARG_ARRAYTYPE_P(1), FLOAT8OID, "observed_days", &nt);
	Datum	   *e = ArrayElements(PG_GETARG_ARRAYTYPE_P(2), BOOLOID, "churned", &ne);
	double	   *pred;
	double	   *time;
	bool	   *event;
	double		c;

	if (np != nt || np != ne)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("predicted_days, observed_days and churned have %d, %d and %d elements", np, nt, ne),
				 errhint("Give one element per row in each.")));
	pred = palloc(sizeof(double) * Max(np, 1));
	time = palloc(sizeof(double) * Max(np, 1));
	event = palloc(sizeof(bool) * Max(np, 1));
	for (int i = 0; i < np; i++)
	{
		pred[i] = DatumGetFloat8(p[i]);
		time[i] = DatumGetFloat8(t[i]);
		event[i] = DatumGetBool(e[i]);
		if (isnan(pred[i]) || isnan(time[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("element %d of predicted_days or observed_days is NaN", i + 1)));
	}
	c = CsConcordanceIndex(pred, time, event, np);
	if (isnan(c))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(c);
}

/* cs.survival_probability(model, features, days): P(event within days) of a survival:aft model. */
Datum
cs_survival_probability(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	ArrayType  *features = PG_GETARG_ARRAYTYPE_P(1);
	double		days = PG_GETARG_FLOAT8(2);
	CsModel    *m = CsModelForCall(fcinfo, name);
	const float *x;

	if (m->link != CS_LINK_EXP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" is not a survival model", text_to_cstring(name)),
				 errdetail("Its objective is %s.", m->objective),
				 errhint("Use a model trained with objective survival:aft (kind survival).")));
	if (isnan(days))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days must not be NaN")));
	x = CsModelFeaturesFromArray(m, features);
	PG_RETURN_FLOAT8(CsAftCdf(m->aft_distribution, m->aft_scale, (double) CsModelNativeMargin(m, x), days));
}
