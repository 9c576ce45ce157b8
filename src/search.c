/*
 * search.c
 *		Parameter search for cs.train_model (params "search"): every
 *		combination of the listed values of a few XGBoost parameters is
 *		trained on the training rows with early stopping on the validation
 *		rows (forward in time when the query has as_of), and the trial with
 *		the best validation metric at its best round wins.
 *
 * Trials run in a fixed order (parameter names sorted, the last varying
 * fastest), each with the same seed and one thread, so a search is
 * deterministic; ties go to the earlier trial.  cs.train_model then trains
 * the chosen combination as an ordinary model, which gives the same trees
 * as its trial.  Every trial (its parameters, best iteration, validation
 * metric, AUC and log loss) is returned for the metrics ("search_trials").
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"

#include <jansson.h>
#include <xgboost/c_api.h>

#include "model.h"
#include "calibrate.h"

/* At most this many combinations: a search is a few trials, not a grid of hundreds. */
#define SEARCH_MAX_TRIALS 24

/* Parameters a search may vary. */
static const char *const Searchable[] = {
	"max_depth", "eta", "learning_rate", "min_child_weight", "subsample", "colsample_bytree",
	"lambda", "alpha", "gamma", "max_delta_step",
};

/* Whether a larger value of the metric is better. */
static bool
SearchMetricMaximize(const char *metric)
{
	return strncmp(metric, "auc", 3) == 0 || strncmp(metric, "map", 3) == 0 ||
		strncmp(metric, "ndcg", 4) == 0 || strncmp(metric, "pre", 3) == 0;
}

/* The value of the last metric in an XGBoosterEvalOneIter string. */
static double
SearchParseEval(const char *eval)
{
	const char *colon = strrchr(eval, ':');

	return colon ? strtod(colon + 1, NULL) : NAN;
}

/* Area under the ROC curve of scores against 0/1 labels (ties averaged); NaN with one class. */
static const double *AucKeys;

static int
AucCmp(const void *a, const void *b)
{
	double		x = AucKeys[*(const int *) a],
				y = AucKeys[*(const int *) b];

	return x < y ? -1 : x > y ? 1 : 0;
}

static double
SearchAuc(const double *s, const float *y, int n)
{
	int		   *idx = palloc(sizeof(int) * Max(n, 1));
	double		pos = 0,
				rank_sum = 0;

	for (int i = 0; i < n; i++)
	{
		idx[i] = i;
		if (y[i] == 1)
			pos++;
	}
	AucKeys = s;
	qsort(idx, n, sizeof(int), AucCmp);
	AucKeys = NULL;
	for (int i = 0; i < n;)
	{
		int			j = i;

		while (j + 1 < n && s[idx[j + 1]] == s[idx[i]])
			j++;
		for (int k = i; k <= j; k++)
			if (y[idx[k]] == 1)
				rank_sum += (i + j) / 2.0 + 1;
		i = j + 1;
	}
	pfree(idx);
	if (pos == 0 || pos == n)
		return NAN;
	return (rank_sum - pos * (pos + 1) / 2) / (pos * (n - pos));
}

/* A JSON number, or null when not finite. */
static json_t *
json_real_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* A JSON number as the string libxgboost takes. */
static char *
SearchValueText(json_t *v)
{
	return json_is_integer(v) ? psprintf("%lld", (long long) json_integer_value(v))
		: psprintf("%.17g", json_number_value(v));
}

/* Raises the error for a bad "search" value. */
static void pg_attribute_noreturn()
SearchError(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid training parameter \"search\""),
			 errdetail("%s", detail),
			 errhint("For example: \"search\": {\"max_depth\": [3, 4, 6], \"eta\": [0.05, 0.1], \"min_child_weight\": [1, 5]}.")));
}

/* Compares two C strings for qsort. */
static int
StrCmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * Runs the search and returns the metrics' "search" object as JSON text
 * ({"trials": [...], "chosen": trial number, "metric", "max_trials"}); the
 * chosen values, as strings for XGBoosterSetParam, go to *chosen_keys and
 * *chosen_values.
 */
char *
CsParamSearch(const char *search_json, const char *const *keys, const char *const *values, int nparams,
			  int num_round, int early_stopping_rounds, const char *eval_metric, const char *objective,
			  const float *xtrain, const float *ytrain, int ntrain,
			  const float *xvalid, const float *yvalid, int nvalid, int nf,
			  const char **names, int nnames,
			  char ***chosen_keys, char ***chosen_values, int *nchosen)
{
	json_t	   *volatile root = NULL;
	json_t	   *volatile out = NULL;
	char	   *volatile text = NULL;
	DMatrixHandle volatile dtrain = NULL;
	DMatrixHandle volatile dvalid = NULL;
	BoosterHandle volatile bst = NULL;
	json_error_t jerr;
	char	   *result = NULL;
	bool		maximize = SearchMetricMaximize(eval_metric);
	bool		regression = strcmp(objective, "reg:squarederror") == 0;
	bool		logitraw = strcmp(objective, "binary:logitraw") == 0;

	root = json_loads(search_json, 0, &jerr);
	PG_TRY();
	{
		int			nkeys;
		const char **skeys;
		json_t	  **arrays;
		int			ntrials = 1;
		json_t	   *trials = json_array();
		int			best_trial = -1;
		double		best_value = NAN;
		double	   *scores = palloc(sizeof(double) * Max(nvalid, 1));
		DMatrixHandle dmats[2];
		const char *evnames[1] = {"valid"};
		int			k = 0;
		const char *key;
		json_t	   *v;

		out = json_pack("{}");
		json_object_set_new(out, "trials", trials);
		if (!json_is_object(root) || json_object_size(root) == 0)
			SearchError("It must be a non-empty object of parameter names to arrays of values.");
		nkeys = json_object_size(root);
		skeys = palloc(sizeof(char *) * nkeys);
		arrays = palloc(sizeof(json_t *) * nkeys);
		json_object_foreach(root, key, v)
		{
			bool		known = false;

			for (int i = 0; i < lengthof(Searchable); i++)
				if (strcmp(key, Searchable[i]) == 0)
					known = true;
			if (!known)
				SearchError(psprintf("\"%s\" cannot be searched; use max_depth, eta, learning_rate, min_child_weight, subsample, colsample_bytree, lambda, alpha, gamma or max_delta_step (rounds come from early stopping).", key));
			if (!json_is_array(v) || json_array_size(v) == 0)
				SearchError(psprintf("\"%s\" must be a non-empty array of numbers.", key));
			for (size_t i = 0; i < json_array_size(v); i++)
				if (!json_is_number(json_array_get(v, i)))
					SearchError(psprintf("\"%s\" must be a non-empty array of numbers.", key));
			if (ntrials > SEARCH_MAX_TRIALS / (int) json_array_size(v) + 1)
				ntrials = SEARCH_MAX_TRIALS + 1;
			else
				ntrials *= (int) json_array_size(v);
			skeys[k++] = key;
		}
		if (ntrials > SEARCH_MAX_TRIALS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("parameter search has more than %d trials", SEARCH_MAX_TRIALS),
					 errdetail("Every combination of the listed values is one trial."),
					 errhint("List fewer values.")));
		qsort(skeys, nkeys, sizeof(char *), StrCmp);
		for (int i = 0; i < nkeys; i++)
			arrays[i] = json_object_get(root, skeys[i]);

		CsXgbCheck(XGDMatrixCreateFromMat(xtrain, ntrain, nf, NAN, (DMatrixHandle *) &dtrain),
				   "create the training matrix");
		CsXgbCheck(XGDMatrixSetFloatInfo(dtrain, "label", ytrain, ntrain), "set labels");
		CsXgbCheck(XGDMatrixSetStrFeatureInfo(dtrain, "feature_name", names, nnames), "set feature names");
		CsXgbCheck(XGDMatrixCreateFromMat(xvalid, nvalid, nf, NAN, (DMatrixHandle *) &dvalid),
				   "create the validation matrix");
		CsXgbCheck(XGDMatrixSetFloatInfo(dvalid, "label", yvalid, nvalid), "set labels");
		CsXgbCheck(XGDMatrixSetStrFeatureInfo(dvalid, "feature_name", names, nnames), "set feature names");
		dmats[0] = dtrain;
		dmats[1] = dvalid;

		for (int t = 0; t < ntrials; t++)
		{
			json_t	   *tparams = json_pack("{}");
			int			rest = t;
			int			best_iter = 0;
			double		best_score = NAN;
			double		logloss = 0,
						sq = 0;
			bst_ulong	out_len = 0;
			const bst_ulong *shape = NULL;
			bst_ulong	dim = 0;
			const float *preds = NULL;
			char	   *config;

			json_array_append_new(trials, json_pack("{s:i, s:o}", "trial", t + 1, "params", tparams));
			CsXgbCheck(XGBoosterCreate(dmats, 2, (BoosterHandle *) &bst), "create a booster");
			for (int i = 0; i < nparams; i++)
				if (XGBoosterSetParam(bst, keys[i], values[i]) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("libxgboost rejected training parameter \"%s\" = \"%s\"", keys[i], values[i]),
							 errdetail("%s", XGBGetLastError())));
			/* the last name varies fastest */
			for (int i = nkeys - 1; i >= 0; i--)
			{
				int			size = (int) json_array_size(arrays[i]);
				json_t	   *val = json_array_get(arrays[i], rest % size);
				char	   *s = SearchValueText(val);

				rest /= size;
				json_object_set(tparams, skeys[i], val);
				if (XGBoosterSetParam(bst, skeys[i], s) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("libxgboost rejected searched parameter \"%s\" = \"%s\"", skeys[i], s),
							 errdetail("%s", XGBGetLastError())));
			}
			for (int iter = 0; iter < num_round; iter++)
			{
				const char *eval;
				double		score;

				CHECK_FOR_INTERRUPTS();
				CsXgbCheck(XGBoosterUpdateOneIter(bst, iter, dtrain), "train");
				CsXgbCheck(XGBoosterEvalOneIter(bst, iter, &dmats[1], evnames, 1, &eval), "evaluate");
				score = SearchParseEval(eval);
				if (iter == 0 || early_stopping_rounds == 0 ||
					(maximize ? score > best_score : score < best_score))
				{
					best_score = score;
					best_iter = iter;
				}
				else if (early_stopping_rounds > 0 && iter - best_iter >= early_stopping_rounds)
					break;
			}
			/* probabilities of the validation rows at the best round */
			config = psprintf("{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": %d, \"strict_shape\": false}",
							  best_iter + 1);
			CsXgbCheck(XGBoosterPredictFromDMatrix(bst, dvalid, config, &shape, &dim, &preds), "predict");
			out_len = dim > 0 ? shape[0] : 0;
			for (int i = 0; i < nvalid && i < (int) out_len; i++)
			{
				double		pr = logitraw ? 1.0 / (1.0 + exp(-(double) preds[i])) : preds[i];
				double		pc = Min(Max(pr, 1e-15), 1 - 1e-15);

				scores[i] = pr;
				sq += (pr - yvalid[i]) * (pr - yvalid[i]);
				logloss -= yvalid[i] * log(pc) + (1 - yvalid[i]) * log(1 - pc);
			}
			XGBoosterFree(bst);
			bst = NULL;
			{
				json_t	   *trial = json_array_get(trials, t);

				json_object_set_new(trial, "best_iteration", json_integer(best_iter));
				json_object_set_new(trial, "valid_metric", isfinite(best_score) ? json_real(best_score) : json_null());
				if (regression)
					json_object_set_new(trial, "valid_rmse", json_real_or_null(sqrt(sq / nvalid)));
				else
				{
					json_object_set_new(trial, "valid_auc", json_real_or_null(SearchAuc(scores, yvalid, nvalid)));
					json_object_set_new(trial, "valid_logloss", json_real_or_null(logloss / nvalid));
				}
			}
			if (isfinite(best_score) &&
				(best_trial < 0 || (maximize ? best_score > best_value : best_score < best_value)))
			{
				best_trial = t;
				best_value = best_score;
			}
		}
		if (best_trial < 0)
			best_trial = 0;
		json_object_set_new(out, "chosen", json_integer(best_trial + 1));
		json_object_set_new(out, "metric", json_string(eval_metric));
		json_object_set_new(out, "max_trials", json_integer(SEARCH_MAX_TRIALS));
		{
			json_t	   *chosen = json_object_get(json_array_get(trials, best_trial), "params");

			*nchosen = nkeys;
			*chosen_keys = palloc(sizeof(char *) * nkeys);
			*chosen_values = palloc(sizeof(char *) * nkeys);
			for (int i = 0; i < nkeys; i++)
			{
				(*chosen_keys)[i] = pstrdup(skeys[i]);
				(*chosen_values)[i] = SearchValueText(json_object_get(chosen, skeys[i]));
			}
		}
		text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
		if (text == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		result = pstrdup(text);
		pfree(scores);
	}
	PG_FINALLY();
	{
		if (bst)
			XGBoosterFree(bst);
		if (dtrain)
			XGDMatrixFree(dtrain);
		if (dvalid)
			XGDMatrixFree(dvalid);
		if (root)
			json_decref(root);
		if (out)
			json_decref(out);
		if (text)
			free(text);
	}
	PG_END_TRY();
	return result;
}

/* The metrics JSON text with the search's trials ("search_trials") and its choice ("search"). */
char *
CsMetricsWithSearch(const char *metrics, const char *search_text)
{
	json_t	   *volatile root = NULL;
	json_t	   *volatile search = NULL;
	char	   *volatile text = NULL;
	char	   *result;
	json_error_t jerr;

	PG_TRY();
	{
		json_t	   *trials;
		json_int_t	chosen;

		root = json_loads(metrics, 0, &jerr);
		search = json_loads(search_text, 0, &jerr);
		if (!json_is_object(root) || !json_is_object(search))
			elog(ERROR, "metrics or search results are not JSON objects");
		trials = json_object_get(search, "trials");
		chosen = json_integer_value(json_object_get(search, "chosen"));
		json_object_set(root, "search_trials", trials);
		json_object_set_new(root, "search",
							json_pack("{s:I, s:O, s:O, s:O, s:i}", "chosen_trial", chosen,
									  "params", json_object_get(json_array_get(trials, chosen - 1), "params"),
									  "metric", json_object_get(search, "metric"),
									  "max_trials", json_object_get(search, "max_trials"),
									  "trials", (int) json_array_size(trials)));
		text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
		if (text == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		result = pstrdup(text);
	}
	PG_FINALLY();
	{
		if (root)
			json_decref(root);
		if (search)
			json_decref(search);
		if (text)
			free(text);
	}
	PG_END_TRY();
	return result;
}
