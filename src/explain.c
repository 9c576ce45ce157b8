/*
 * explain.c
 *		Per-feature explanations of a prediction: exact TreeSHAP contributions
 *		computed by libxgboost (pred_contribs), as a table or as jsonb.
 *
 * Contributions are in margin space: the contributions of all features plus
 * the bias add up to the model's margin for the row.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
/* fmgrprotos.h declares a json_object() that clashes with jansson's. */
#define json_object pg_json_object
#include "utils/builtins.h"
#undef json_object
#include "utils/jsonb.h"
#include "utils/tuplestore.h"

#include <jansson.h>
#include <xgboost/c_api.h>

/*
 * The postgres executable exports its own json_object() (the SQL function),
 * which wins over jansson's at dynamic link time: never call json_object()
 * from here, make empty objects through json_pack (bound inside libjansson).
 */
#define CsJsonNewObject() json_pack("{}")

#include "model.h"

PG_FUNCTION_INFO_V1(cs_explain);
PG_FUNCTION_INFO_V1(cs_explain_json);

/* One feature's share, for sorting. */
typedef struct Contribution
{
	const char *feature;
	float		value;
	double		contribution;
} Contribution;

/* SHAP contributions of one row: contrib[0..n-1] per feature, contrib[n] the bias. */
void
CsModelContributions(CsModel *model, const float *x, int n, double *contrib)
{
	DMatrixHandle dm = NULL;

	if (n != model->num_features)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("model \"%s\" expects %d features, got %d",
						model->name ? model->name : "(unnamed)", model->num_features, n)));
	for (int i = 0; i < n; i++)
		if (isinf(x[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature %d is infinite", i + 1),
					 errhint("Use 'NaN' for a missing value; infinities are not valid features.")));
	if (model->booster == NULL)
		model->booster = CsBoosterFromJson(model->json, model->json_len);

	PG_TRY();
	{
		const bst_ulong *shape = NULL;
		bst_ulong	dim = 0;
		const float *out = NULL;
		bst_ulong	total = 1;

		CsXgbCheck(XGDMatrixCreateFromMat(x, 1, n, NAN, &dm), "create a matrix");
		CsXgbCheck(XGBoosterPredictFromDMatrix((BoosterHandle) model->booster, dm,
											   "{\"type\": 2, \"training\": false, "
											   "\"iteration_begin\": 0, \"iteration_end\": 0, "
											   "\"strict_shape\": false}",
											   &shape, &dim, &out),
				   "compute contributions");
		for (bst_ulong d = 0; d < dim; d++)
			total *= shape[d];
		if (total != (bst_ulong) n + 1)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("libxgboost returned %lu contributions for %d features",
							(unsigned long) total, n)));
		for (int i = 0; i <= n; i++)
			contrib[i] = out[i];
	}
	PG_FINALLY();
	{
		if (dm)
			XGDMatrixFree(dm);
	}
	PG_END_TRY();
}

/* Orders by absolute contribution, largest first, then by feature name. */
static int
ContributionCmp(const void *a, const void *b)
{
	const Contribution *ca = a;
	const Contribution *cb = b;
	double		fa = fabs(ca->contribution);
	double		fb = fabs(cb->contribution);

	if (fa != fb)
		return fa > fb ? -1 : 1;
	return strcmp(ca->feature, cb->feature);
}

/* Computes and sorts the contributions of one call; returns the bias and margin. */
static Contribution *
Explain(FunctionCallInfo fcinfo, CsModel **model, double *bias, double *margin)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	ArrayType  *features = PG_GETARG_ARRAYTYPE_P(1);
	CsModel    *m = CsModelForCall(fcinfo, name);
	const float *x = CsModelFeaturesFromArray(m, features);
	int			n = m->num_features;
	double	   *contrib = palloc(sizeof(double) * (n + 1));
	Contribution *out = palloc(sizeof(Contribution) * n);

	CsModelContributions(m, x, n, contrib);
	for (int i = 0; i < n; i++)
	{
		out[i].feature = m->feature_names[i];
		out[i].value = x[i];
		out[i].contribution = contrib[i];
	}
	qsort(out, n, sizeof(Contribution), ContributionCmp);
	*bias = contrib[n];
	*margin = CsModelMargin(m, x, n);
	*model = m;
	return out;
}

/* Checks top_k and caps it at the number of features. */
static int
TopK(int32 top_k, int n)
{
	if (top_k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("top_k must be at least 1")));
	return Min(top_k, n);
}

/* cs.explain(model, features, top_k): the top_k contributions as rows. */
Datum
cs_explain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CsModel    *m;
	double		bias,
				margin;
	Contribution *c;
	int			k;

	InitMaterializedSRF(fcinfo, 0);
	c = Explain(fcinfo, &m, &bias, &margin);
	k = TopK(PG_GETARG_INT32(2), m->num_features);
	for (int i = 0; i < k; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(c[i].feature);
		values[1] = Float4GetDatum(c[i].value);
		values[2] = Float8GetDatum(c[i].contribution);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* A JSON number, or null for NaN (JSON has no NaN). */
static json_t *
JsonNumberOrNull(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

/* cs.explain_json(model, features, top_k): contributions, bias and margin as jsonb. */
Datum
cs_explain_json(PG_FUNCTION_ARGS)
{
	CsModel    *m;
	double		bias,
				margin;
	Contribution *c = Explain(fcinfo, &m, &bias, &margin);
	int			k = TopK(PG_GETARG_INT32(2), m->num_features);
	json_t	   *volatile root = NULL;
	char	   *volatile text = NULL;
	Datum		result;

	PG_TRY();
	{
		json_t	   *factors;

		root = CsJsonNewObject();
		factors = json_array();
		if (root == NULL || factors == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		json_object_set_new(root, "factors", factors);
		for (int i = 0; i < k; i++)
		{
			json_t	   *f = CsJsonNewObject();

			if (f == NULL)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			json_object_set_new(f, "feature", json_string(c[i].feature));
			json_object_set_new(f, "value", JsonNumberOrNull(c[i].value));
			json_object_set_new(f, "contribution", JsonNumberOrNull(c[i].contribution));
			json_array_append_new(factors, f);
		}
		json_object_set_new(root, "model", json_string(m->name));
		json_object_set_new(root, "version", json_integer(m->version));
		json_object_set_new(root, "bias", JsonNumberOrNull(bias));
		json_object_set_new(root, "margin", JsonNumberOrNull(margin));
		json_object_set_new(root, "prediction",
							JsonNumberOrNull(CsModelPredict(m, (const float *) ARR_DATA_PTR(PG_GETARG_ARRAYTYPE_P(1)),
															m->num_features)));
		/* Every value is float32 at heart: 9 significant digits keep it exact. */
		text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
		if (text == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		result = DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
	}
	PG_FINALLY();
	{
		if (root)
			json_decref(root);
		if (text)
			free(text);
	}
	PG_END_TRY();
	PG_RETURN_DATUM(result);
}
