/*
 * train.c
 *		cs.train_model: trains an XGBoost model on the rows of a query through
 *		libxgboost's C API and registers it like cs.load_model.
 *
 * Validation split.  When the query has an as_of column (timestamptz or
 * date) the split is forward, in time: the validation rows are those of the
 * latest as_of values (whole dates, added from the latest back until they
 * make up validation_fraction of the rows), and the training rows are those
 * whose label window has closed before the first validation date:
 * as_of + horizon <= first validation as_of.  Rows in between (their label
 * overlaps the validation period) are dropped and counted.  The stored AUC,
 * log loss and Brier score are then forward figures, what a model trained
 * today will meet on later dates.  Without as_of the rows are split by a hash
 * of group_key (so a whole customer is either in or out) or of the row number.
 *
 * Boosting runs one round at a time with early stopping on the validation
 * metric, the model is cut back to its best round, and validation AUC, log
 * loss and Brier score are computed in C with the same native evaluator that
 * cs.predict uses.
 *
 * Survival.  With objective survival:aft the query gives label_lower and
 * label_upper (days from as_of to churn; equal for a churn seen, upper
 * +Infinity or NULL for a customer still there at the end of the data)
 * instead of label; they go to libxgboost as label_lower_bound and
 * label_upper_bound.  With as_of, no row is dropped for a gap: the training
 * rows' labels are censored at the first validation date instead, so nothing
 * the validation period revealed reaches training.  Early stopping follows
 * aft-nloglik, and the metrics add the validation concordance index
 * (survival.c) and the AFT distribution and scale.
 *
 * Leakage audit.  For a 0/1 label, every feature is scored alone on the
 * training rows: max(AUC, 1 - AUC) of its raw value, missing values forming
 * their own rank group (put below and above every value; the larger is kept).
 * A feature at or above cscopilot.leakage_auc is a suspect (it nearly predicts
 * the label by itself, the mark of a leak); cs.deploy_model refuses a model
 * with a suspect unless forced.  Whether the feature's information existed at
 * as_of comes from cs.feature_sources().
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
/* fmgrprotos.h declares a json_object() that clashes with jansson's. */
#define json_object pg_json_object
#include "utils/builtins.h"
#undef json_object
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include <jansson.h>
#include <xgboost/c_api.h>

#include "model.h"
#include "encode.h"
#include "calibrate.h"
#include "survival.h"

/* The server's json_object() shadows jansson's: make objects with json_pack. */
#define CsJsonNewObject() json_pack("{}")

PG_FUNCTION_INFO_V1(cs_train_model);

#define MAX_XGB_PARAMS 32

/* Settings read from the params argument. */
typedef struct TrainParams
{
	int			num_round;
	int			early_stopping_rounds;
	double		validation_fraction;
	char	   *objective;
	char	   *eval_metric;
	int			nparams;
	char	   *keys[MAX_XGB_PARAMS];	/* passed to XGBoosterSetParam */
	char	   *values[MAX_XGB_PARAMS];
	char	  **feature_names;
	int			num_feature_names;
	char	   *horizon;		/* interval text; NULL: cscopilot.outcome_horizon */
	int			num_monotone;	/* monotone_constraints: name -> -1, 0 or 1 */
	char	  **monotone_names;
	int		   *monotone_values;
	char	   *calibration;	/* isotonic, platt, none or auto (calibrate.c) */
	char	   *search;			/* parameter search as JSON text (search.c), or NULL */
} TrainParams;

/* The rows of the training query, split in two. */
typedef struct TrainData
{
	int			nf;
	int			ntrain;
	int			nvalid;
	float	   *xtrain;
	float	   *ytrain;
	float	   *xvalid;
	float	   *yvalid;
	float	   *ytrain_upper;	/* survival: upper bounds (y* are the lower ones) */
	float	   *yvalid_upper;
	int			censored_at_split;	/* survival: training labels cut at valid_from */
	double		positive_rate;
	bool		forward;		/* split by as_of (else hashed) */
	TimestampTz train_from;
	TimestampTz train_to;
	TimestampTz valid_from;
	TimestampTz valid_to;
	int			dropped;		/* rows in the gap, in neither set */
} TrainData;

/* XGBoost parameters that params may set, passed through as strings. */
static const char *const PassThrough[] = {
	"max_depth", "eta", "learning_rate", "seed", "nthread", "subsample", "colsample_bytree",
	"colsample_bylevel", "colsample_bynode", "min_child_weight", "lambda", "reg_lambda",
	"alpha", "reg_alpha", "gamma", "max_bin", "tree_method", "scale_pos_weight",
	"base_score", "max_delta_step", "grow_policy", "max_leaves",
	"aft_loss_distribution", "aft_loss_distribution_scale",
};

/* Raises the error for a bad params value. */
static void pg_attribute_noreturn()
ParamError(const char *key, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid training parameter \"%s\"", key),
			 errdetail("It must be %s.", expected)));
}

/* Adds or replaces an XGBoost parameter. */
static void
SetXgbParam(TrainParams *p, const char *key, const char *value)
{
	for (int i = 0; i < p->nparams; i++)
		if (strcmp(p->keys[i], key) == 0)
		{
			p->values[i] = pstrdup(value);
			return;
		}
	if (p->nparams >= MAX_XGB_PARAMS)
		elog(ERROR, "too many training parameters");
	p->keys[p->nparams] = pstrdup(key);
	p->values[p->nparams] = pstrdup(value);
	p->nparams++;
}

/* Reads the params jsonb into TrainParams; unknown keys are errors. */
static void
ParseParams(TrainParams *p, const char *params_text)
{
	json_t	   *volatile root = NULL;
	json_error_t jerr;

	memset(p, 0, sizeof(*p));
	p->num_round = 100;
	p->early_stopping_rounds = 20;
	p->validation_fraction = 0.2;
	p->objective = "binary:logistic";
	SetXgbParam(p, "nthread", "1");
	SetXgbParam(p, "tree_method", "hist");
	SetXgbParam(p, "seed", "0");

	root = json_loads(params_text, 0, &jerr);
	if (!json_is_object(root))
	{
		if (root)
			json_decref(root);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be a JSON object")));
	}
	PG_TRY();
	{
		const char *key;
		json_t	   *v;

		json_object_foreach(root, key, v)
		{
			bool		known = false;

			if (strcmp(key, "num_round") == 0 || strcmp(key, "n_estimators") == 0)
			{
				if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000)
					ParamError(key, "an integer between 1 and 100000");
				p->num_round = (int) json_integer_value(v);
				continue;
			}
			if (strcmp(key, "early_stopping_rounds") == 0)
			{
				if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100000)
					ParamError(key, "an integer between 0 (off) and 100000");
				p->early_stopping_rounds = (int) json_integer_value(v);
				continue;
			}
			if (strcmp(key, "validation_fraction") == 0)
			{
				if (!json_is_number(v) || !(json_number_value(v) > 0 && json_number_value(v) < 1))
					ParamError(key, "a number between 0 and 1, exclusive");
				p->validation_fraction = json_number_value(v);
				continue;
			}
			if (strcmp(key, "objective") == 0)
			{
				const char *s = json_string_value(v);

				if (s == NULL || (strcmp(s, "binary:logistic") != 0 && strcmp(s, "reg:logistic") != 0 &&
								  strcmp(s, "binary:logitraw") != 0 && strcmp(s, "reg:squarederror") != 0 &&
								  strcmp(s, "survival:aft") != 0))
					ParamError(key, "one of binary:logistic, binary:logitraw, reg:logistic, reg:squarederror and survival:aft");
				p->objective = pstrdup(s);
				continue;
			}
			if (strcmp(key, "eval_metric") == 0)
			{
				const char *s = json_string_value(v);

				if (s == NULL || s[0] == '\0')
					ParamError(key, "a metric name such as logloss, auc or rmse");
				p->eval_metric = pstrdup(s);
				continue;
			}
			if (strcmp(key, "feature_names") == 0)
			{
				if (!json_is_array(v) || json_array_size(v) == 0)
					ParamError(key, "a non-empty array of strings");
				p->num_feature_names = json_array_size(v);
				p->feature_names = palloc(sizeof(char *) * p->num_feature_names);
				for (int i = 0; i < p->num_feature_names; i++)
				{
					const char *s = json_string_value(json_array_get(v, i));

					if (s == NULL)
						ParamError(key, "a non-empty array of strings");
					p->feature_names[i] = pstrdup(s);
				}
				continue;
			}
			if (strcmp(key, "horizon") == 0)
			{
				const char *str = json_string_value(v);
				Interval   *iv;

				if (str == NULL)
					ParamError(key, "an interval such as '90 days'");
				iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(str),
														   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
				if (iv->month < 0 || iv->day < 0 || iv->time < 0 ||
					(iv->month == 0 && iv->day == 0 && iv->time == 0))
					ParamError(key, "a positive interval such as '90 days'");
				p->horizon = pstrdup(str);
				continue;
			}
			if (strcmp(key, "monotone_constraints") == 0)
			{
				const char *fname;
				json_t	   *c;
				int			k = 0;

				if (!json_is_object(v))
					ParamError(key, "an object of feature names to -1 (never raises the prediction), 0 or 1 (never lowers it)");
				p->num_monotone = json_object_size(v);
				p->monotone_names = palloc(sizeof(char *) * Max(p->num_monotone, 1));
				p->monotone_values = palloc(sizeof(int) * Max(p->num_monotone, 1));
				json_object_foreach(v, fname, c)
				{
					if (!json_is_integer(c) || json_integer_value(c) < -1 || json_integer_value(c) > 1)
						ParamError(key, "an object of feature names to -1 (never raises the prediction), 0 or 1 (never lowers it)");
					p->monotone_names[k] = pstrdup(fname);
					p->monotone_values[k] = (int) json_integer_value(c);
					k++;
				}
				continue;
			}
			if (strcmp(key, "calibration") == 0)
			{
				CsCalibrationMethodFromName(json_string_value(v) ? json_string_value(v) : "");
				p->calibration = pstrdup(json_string_value(v));
				continue;
			}
			if (strcmp(key, "search") == 0)
			{
				char	   *st = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

				if (st == NULL)
					ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
				p->search = pstrdup(st);
				free(st);
				continue;
			}
			for (int i = 0; i < lengthof(PassThrough); i++)
				if (strcmp(key, PassThrough[i]) == 0)
					known = true;
			if (!known)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown training parameter \"%s\"", key),
						 errhint("Use num_round, early_stopping_rounds, validation_fraction, horizon, monotone_constraints, calibration, search, objective, eval_metric, feature_names, max_depth, eta, seed, nthread, subsample, colsample_bytree, min_child_weight, lambda, alpha, gamma, max_bin, tree_method, scale_pos_weight, base_score, aft_loss_distribution or aft_loss_distribution_scale.")));
			if (json_is_integer(v))
				SetXgbParam(p, key, psprintf("%lld", (long long) json_integer_value(v)));
			else if (json_is_real(v))
				SetXgbParam(p, key, psprintf("%.17g", json_real_value(v)));
			else if (json_is_string(v))
				SetXgbParam(p, key, json_string_value(v));
			else
				ParamError(key, "a number or a string");
		}
	}
	PG_FINALLY();
	{
		json_decref(root);
	}
	PG_END_TRY();

	if (p->eval_metric == NULL)
		p->eval_metric = strcmp(p->objective, "survival:aft") == 0 ? "aft-nloglik" :
			strcmp(p->objective, "reg:squarederror") == 0 ? "rmse" : "logloss";
	SetXgbParam(p, "objective", p->objective);
	SetXgbParam(p, "eval_metric", p->eval_metric);
}

/* Whether the objective is a survival one (labels are time bounds). */
static bool
IsSurvival(const TrainParams *p)
{
	return strcmp(p->objective, "survival:aft") == 0;
}

/* Converts a label datum of a supported type to double. */
static double
LabelValue(Datum d, Oid type)
{
	switch (type)
	{
		case BOOLOID:
			return DatumGetBool(d) ? 1.0 : 0.0;
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return (double) DatumGetInt64(d);
		case FLOAT4OID:
			return DatumGetFloat4(d);
		case FLOAT8OID:
			return DatumGetFloat8(d);
		case NUMERICOID:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, d));
		default:
			elog(ERROR, "unexpected label type %u", type);
	}
	return 0;
}

/* Compares two TimestampTz values. */
static int
TimestampCmp(const void *a, const void *b)
{
	TimestampTz ta = *(const TimestampTz *) a;
	TimestampTz tb = *(const TimestampTz *) b;

	return ta < tb ? -1 : ta > tb ? 1 : 0;
}

/*
 * The forward split: marks the rows of the latest as_of values (whole dates,
 * at least validation_fraction of the rows) as validation, those whose
 * as_of + horizon is at most the first validation as_of as training, and the
 * rest (split[r] = 2) as dropped.
 */
static void
ForwardSplit(const TimestampTz *asof, uint64 n, double fraction, Interval *horizon, char *split, TrainData *td)
{
	TimestampTz *sorted = palloc(sizeof(TimestampTz) * n);
	uint64		k;
	double		need = fraction * (double) n;
	TimestampTz first_valid;

	memcpy(sorted, asof, sizeof(TimestampTz) * n);
	qsort(sorted, n, sizeof(TimestampTz), TimestampCmp);
	/* From the latest date back, whole dates, until the share is reached. */
	k = n;
	while (k > 0)
	{
		TimestampTz d = sorted[k - 1];

		while (k > 0 && sorted[k - 1] == d)
			k--;
		if ((double) (n - k) >= need)
			break;
	}
	if (k == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the forward split needs at least two as_of dates"),
				 errdetail("The validation rows are those of the latest dates, making up validation_fraction (%g) of the rows; the earlier dates are left for training.",
						   fraction),
				 errhint("Add observation dates, or use a smaller validation_fraction.")));
	first_valid = sorted[k];
	td->valid_from = first_valid;
	td->valid_to = sorted[n - 1];
	td->train_from = DT_NOEND;
	td->train_to = DT_NOBEGIN;
	td->dropped = 0;
	for (uint64 r = 0; r < n; r++)
	{
		TimestampTz label_end;

		if (asof[r] >= first_valid)
		{
			split[r] = 1;
			continue;
		}
		label_end = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(asof[r]),
															IntervalPGetDatum(horizon)));
		if (label_end <= first_valid)
		{
			split[r] = 0;
			td->train_from = Min(td->train_from, asof[r]);
			td->train_to = Max(td->train_to, asof[r]);
		}
		else
		{
			split[r] = 2;
			td->dropped++;
		}
	}
	pfree(sorted);
}

/*
 * Survival: the columns of the time bounds, label_lower (read like label)
 * and label_upper.
 */
static void
SurvivalColumns(TupleDesc desc, int *lcol, int *ucol)
{
	*lcol = SPI_fnumber(desc, "label_lower");
	*ucol = SPI_fnumber(desc, "label_upper");
	if (*lcol <= 0 || *ucol <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("a survival training query must return columns \"features\", \"label_lower\" and \"label_upper\""),
				 errdetail("label_lower and label_upper bound the time to the event from as_of, in days: equal when the event was seen, label_upper +Infinity (or NULL) when the row is censored."),
				 errhint("cs.build_survival_set returns them.")));
}

/*
 * Survival: reads label_upper of every row (NULL or +Infinity: censored),
 * checks lower <= upper and lower >= 0, and returns the upper bounds; the
 * positive rate becomes the share of rows with the event seen.
 */
static float *
ReadUpperBounds(TupleDesc desc, int ucol, const float *lower, uint64 n, MemoryContext mcxt, TrainData *td)
{
	Oid			utype = SPI_gettypeid(desc, ucol);
	float	   *upper = MemoryContextAllocHuge(mcxt, sizeof(float) * n);
	uint64		events = 0;

	if (utype != INT2OID && utype != INT4OID && utype != INT8OID &&
		utype != FLOAT4OID && utype != FLOAT8OID && utype != NUMERICOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"label_upper\" of the training query must be numeric, not %s",
						format_type_be(utype))));
	for (uint64 r = 0; r < n; r++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[r], desc, ucol, &isnull);
		double		u = isnull ? INFINITY : LabelValue(d, utype);

		/* compared in float, as libxgboost will see them */
		if (isnan(u) || (float) u < lower[r] || lower[r] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("survival labels of training row %llu are [%g, %g]",
							(unsigned long long) r + 1, lower[r], u),
					 errhint("label_lower must be at least 0 and label_upper at least label_lower (+Infinity when censored).")));
		upper[r] = (float) u;
		if (isfinite(u))
			events++;
	}
	if (events == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("all %llu survival training rows are censored", (unsigned long long) n),
				 errdetail("A survival model needs some rows whose event was seen (a finite label_upper).")));
	td->positive_rate = (double) events / (double) n;
	return upper;
}

/*
 * Survival, forward split: censors each training row's time at the first
 * validation date, so training learns nothing the validation period
 * revealed (instead of dropping the rows whose window overlaps it).
 */
static void
CensorAtSplit(const TimestampTz *asof, float *lower, float *upper, const char *split, uint64 n, TrainData *td)
{
	td->censored_at_split = 0;
	for (uint64 r = 0; r < n; r++)
	{
		float		window;

		if (split[r] != 0)
			continue;
		window = (float) ((double) (td->valid_from - asof[r]) / (double) USECS_PER_DAY);
		if (upper[r] > window)
		{
			/* still there at the cut: censored there */
			lower[r] = Min(lower[r], window);
			upper[r] = INFINITY;
			td->censored_at_split++;
		}
	}
}

/* Sets the labels of a matrix: label, or the survival time bounds. */
static void
SetLabels(DMatrixHandle dm, const float *y, const float *y_upper, int n)
{
	if (y_upper == NULL)
	{
		CsXgbCheck(XGDMatrixSetFloatInfo(dm, "label", y, n), "set labels");
		return;
	}
	CsXgbCheck(XGDMatrixSetFloatInfo(dm, "label_lower_bound", y, n), "set label lower bounds");
	CsXgbCheck(XGDMatrixSetFloatInfo(dm, "label_upper_bound", y_upper, n), "set label upper bounds");
}

/* Runs the training query and splits its rows; allocations go to mcxt. */
static void
ReadTrainingData(const char *query, TrainParams *p, TrainData *td, MemoryContext mcxt, bool binary,
				 Interval *horizon)
{
	int			fcol,
				lcol,
				gcol,
				acol;
	Oid			ltype,
				atype = InvalidOid;
	TimestampTz *asof = NULL;
	TupleDesc	desc;
	uint64		n;
	uint64		threshold;
	char	   *is_valid;		/* 0 training, 1 validation, 2 dropped */
	float	   *x;
	float	   *y;
	float	   *yu = NULL;		/* survival: upper bounds */
	int			ucol = 0;
	int			positives = 0;
	double		first_label = 0;
	bool		varied = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("training query must be a SELECT that returns rows")));
	desc = SPI_tuptable->tupdesc;
	fcol = SPI_fnumber(desc, "features");
	lcol = SPI_fnumber(desc, "label");
	if (IsSurvival(p) && fcol > 0)
		SurvivalColumns(desc, &lcol, &ucol);
	gcol = SPI_fnumber(desc, "group_key");
	acol = SPI_fnumber(desc, "as_of");
	if (acol > 0)
	{
		atype = SPI_gettypeid(desc, acol);
		if (atype != TIMESTAMPTZOID && atype != DATEOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"as_of\" of the training query must be timestamptz or date, not %s",
							format_type_be(atype)),
					 errhint("as_of is the observation date of the row; it makes the validation split forward in time.")));
	}
	if (fcol <= 0 || lcol <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("training query must return columns \"features\" and \"label\""),
				 errhint("For example: SELECT features, churned AS label, customer_id AS group_key FROM ...")));
	if (SPI_gettypeid(desc, fcol) != FLOAT4ARRAYOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"features\" of the training query must be float4[], not %s",
						format_type_be(SPI_gettypeid(desc, fcol)))));
	ltype = SPI_gettypeid(desc, lcol);
	if (ltype != BOOLOID && ltype != INT2OID && ltype != INT4OID && ltype != INT8OID &&
		ltype != FLOAT4OID && ltype != FLOAT8OID && ltype != NUMERICOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"label\" of the training query must be boolean or numeric, not %s",
						format_type_be(ltype))));
	n = SPI_processed;
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("training query returned no rows")));
	if (n > INT_MAX / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training query returned too many rows")));

	threshold = (uint64) (p->validation_fraction * (double) PG_UINT32_MAX);
	td->ytrain_upper = td->yvalid_upper = NULL;
	td->censored_at_split = 0;
	is_valid = MemoryContextAlloc(mcxt, sizeof(char) * n);
	if (acol > 0)
		asof = MemoryContextAllocHuge(mcxt, sizeof(TimestampTz) * n);
	td->nf = -1;
	x = NULL;
	y = MemoryContextAllocHuge(mcxt, sizeof(float) * n);
	for (uint64 r = 0; r < n; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		bool		isnull;
		Datum		fd = SPI_getbinval(tup, desc, fcol, &isnull);
		ArrayType  *arr;
		int			len;
		double		label;
		uint32		h;

		CHECK_FOR_INTERRUPTS();
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("features of training row %llu is NULL", (unsigned long long) r + 1)));
		arr = DatumGetArrayTypeP(fd);
		if (ARR_NDIM(arr) != 1 || ARR_HASNULL(arr))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("features of training row %llu must be a one-dimensional array without NULL",
							(unsigned long long) r + 1),
					 errhint("Use 'NaN' for a missing value.")));
		len = ARR_DIMS(arr)[0];
		if (td->nf < 0)
		{
			td->nf = len;
			x = MemoryContextAllocHuge(mcxt, sizeof(float) * n * len);
		}
		else if (len != td->nf)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("training row %llu has %d features, the first row has %d",
							(unsigned long long) r + 1, len, td->nf)));
		memcpy(x + r * len, ARR_DATA_PTR(arr), sizeof(float) * len);
		if ((Pointer) arr != DatumGetPointer(fd))
			pfree(arr);
		for (int j = 0; j < len; j++)
			if (isinf(x[r * len + j]))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature %d of training row %llu is infinite", j + 1, (unsigned long long) r + 1)));

		fd = SPI_getbinval(tup, desc, lcol, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("label of training row %llu is NULL", (unsigned long long) r + 1)));
		label = LabelValue(fd, ltype);
		if (!isfinite(label))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("label of training row %llu is not finite", (unsigned long long) r + 1)));
		if (binary && (label < 0 || label > 1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("label of training row %llu is %g, outside [0, 1]", (unsigned long long) r + 1, label),
					 errhint("Objective %s needs labels between 0 and 1.", p->objective)));
		y[r] = (float) label;
		if (r == 0)
			first_label = label;
		else if (label != first_label)
			varied = true;
		if (label == 1)
			positives++;

		if (acol > 0)
		{
			Datum		ad = SPI_getbinval(tup, desc, acol, &isnull);

			if (isnull)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("as_of of training row %llu is NULL", (unsigned long long) r + 1)));
			asof[r] = atype == DATEOID ? DatumGetTimestampTz(DirectFunctionCall1(date_timestamptz, ad))
				: DatumGetTimestampTz(ad);
			if (TIMESTAMP_NOT_FINITE(asof[r]))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("as_of of training row %llu is infinite", (unsigned long long) r + 1)));
			continue;
		}
		if (gcol > 0)
		{
			char	   *g = SPI_getvalue(tup, desc, gcol);

			h = g ? hash_bytes((const unsigned char *) g, strlen(g)) : 0;
		}
		else
			h = hash_bytes_uint32((uint32) r);
		is_valid[r] = (uint64) h < threshold ? 1 : 0;
	}
	if (td->nf < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("training rows have no features")));
	if (!varied)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("all %llu training labels are %g", (unsigned long long) n, first_label),
				 errdetail("A model needs both classes (or varied values) to learn from.")));
	td->positive_rate = (double) positives / (double) n;
	if (IsSurvival(p))
		yu = ReadUpperBounds(desc, ucol, y, n, mcxt, td);
	td->forward = acol > 0;
	if (td->forward)
		ForwardSplit(asof, n, p->validation_fraction, horizon, is_valid, td);
	if (yu && td->forward)
		CensorAtSplit(asof, y, yu, is_valid, n, td);

	/* Split into two contiguous matrices. */
	td->ntrain = td->nvalid = 0;
	for (uint64 r = 0; r < n; r++)
	{
		if (is_valid[r] == 1)
			td->nvalid++;
		else if (is_valid[r] == 0)
			td->ntrain++;
	}
	if (td->forward && td->ntrain == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the forward split left no training rows"),
				 errdetail("Training rows need as_of + horizon (%s) at or before the first validation date %s; %d rows fall in that gap.",
						   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(horizon))),
						   DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(td->valid_from))),
						   td->dropped),
				 errhint("Use observation dates spanning more than one horizon, a shorter horizon, or a smaller validation_fraction.")));
	if (td->ntrain == 0 || td->nvalid == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the split left %d training and %d validation rows", td->ntrain, td->nvalid),
				 errhint("Use more rows, more distinct group_key values, or another validation_fraction.")));
	td->xtrain = MemoryContextAllocHuge(mcxt, sizeof(float) * td->ntrain * td->nf);
	td->xvalid = MemoryContextAllocHuge(mcxt, sizeof(float) * td->nvalid * td->nf);
	td->ytrain = MemoryContextAllocHuge(mcxt, sizeof(float) * td->ntrain);
	td->yvalid = MemoryContextAllocHuge(mcxt, sizeof(float) * td->nvalid);
	if (yu)
	{
		td->ytrain_upper = MemoryContextAllocHuge(mcxt, sizeof(float) * td->ntrain);
		td->yvalid_upper = MemoryContextAllocHuge(mcxt, sizeof(float) * td->nvalid);
	}
	{
		int			t = 0,
					v = 0;

		for (uint64 r = 0; r < n; r++)
		{
			if (is_valid[r] == 2)
				continue;
			if (is_valid[r] == 1)
			{
				memcpy(td->xvalid + (size_t) v * td->nf, x + r * td->nf, sizeof(float) * td->nf);
				if (yu)
					td->yvalid_upper[v] = yu[r];
				td->yvalid[v++] = y[r];
			}
			else
			{
				memcpy(td->xtrain + (size_t) t * td->nf, x + r * td->nf, sizeof(float) * td->nf);
				if (yu)
					td->ytrain_upper[t] = yu[r];
				td->ytrain[t++] = y[r];
			}
		}
	}
	pfree(x);
	pfree(y);
	if (yu)
		pfree(yu);
	pfree(is_valid);
	if (asof)
		pfree(asof);
	SPI_finish();
}

/* Feature names for a scoring kind: cs.feature_names() (the catalog, then the usage metrics). */
static char **
CatalogFeatureNames(int *n)
{
	char	  **names;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT unnest(cs.feature_names())", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read cs.feature_names()");
	*n = (int) SPI_processed;
	names = SPI_palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		char	   *s = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		names[i] = SPI_palloc(strlen(s) + 1);
		strcpy(names[i], s);
	}
	SPI_finish();
	return names;
}

/* Whether a bigger value of this XGBoost metric is better. */
static bool
MetricMaximize(const char *metric)
{
	return strncmp(metric, "auc", 3) == 0 || strncmp(metric, "map", 3) == 0 ||
		strncmp(metric, "ndcg", 4) == 0 || strncmp(metric, "pre", 3) == 0;
}

/* Reads the value of the last metric from an XGBoosterEvalOneIter line. */
static double
ParseEval(const char *line)
{
	const char *colon = strrchr(line, ':');

	if (colon == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not read the evaluation \"%s\"", line)));
	return strtod(colon + 1, NULL);
}

/* Compares (score, label) pairs by score. */
static int
ScoreCmp(const void *a, const void *b)
{
	double		sa = ((const double *) a)[0];
	double		sb = ((const double *) b)[0];

	return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/* ROC AUC by the rank sum, ties sharing their average rank; NaN with one class. */
static double
ComputeAuc(const double *scores, const float *labels, int n)
{
	double	   *pairs = palloc(sizeof(double) * 2 * n);
	double		pos = 0,
				rank_sum = 0;
	int			i = 0;

	for (int k = 0; k < n; k++)
	{
		pairs[2 * k] = scores[k];
		pairs[2 * k + 1] = labels[k];
		pos += labels[k] == 1;
	}
	qsort(pairs, n, sizeof(double) * 2, ScoreCmp);
	while (i < n)
	{
		int			j = i;
		double		avg;

		while (j + 1 < n && pairs[2 * (j + 1)] == pairs[2 * i])
			j++;
		avg = (i + j) / 2.0 + 1;
		for (int k = i; k <= j; k++)
			if (pairs[2 * k + 1] == 1)
				rank_sum += avg;
		i = j + 1;
	}
	pfree(pairs);
	if (pos == 0 || pos == n)
		return NAN;
	return (rank_sum - pos * (pos + 1) / 2) / (pos * (n - pos));
}

/*
 * The leakage audit: for each feature, max(AUC, 1 - AUC) of its value alone
 * against the 0/1 labels of the training rows, missing values ranked as one
 * group below every value and then above (the larger result is kept); NaN
 * with one class.
 */
static void
FeatureAucAlone(TrainData *td, double *auc_alone)
{
	double	   *scores = palloc(sizeof(double) * Max(td->ntrain, 1));

	for (int j = 0; j < td->nf; j++)
	{
		double		best = NAN;

		for (int side = 0; side < 2; side++)
		{
			double		a;

			for (int i = 0; i < td->ntrain; i++)
			{
				float		v = td->xtrain[(size_t) i * td->nf + j];

				scores[i] = isnan(v) ? (side == 0 ? -DBL_MAX : DBL_MAX) : v;
			}
			CHECK_FOR_INTERRUPTS();
			a = ComputeAuc(scores, td->ytrain, td->ntrain);
			if (isnan(a))
				continue;
			a = Max(a, 1 - a);
			if (isnan(best) || a > best)
				best = a;
		}
		auc_alone[j] = best;
	}
	pfree(scores);
}

/*
 * Whether each feature's information existed at as_of, from
 * cs.feature_sources(): "true", "false", or "unknown" for a name it does not
 * know (a custom feature).
 */
static char **
FeaturePointInTime(char **names, int nnames)
{
	char	  **pit = palloc(sizeof(char *) * Max(nnames, 1));
	MemoryContext outer = CurrentMemoryContext;

	for (int i = 0; i < nnames; i++)
		pit[i] = "unknown";
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT s.feature, s.point_in_time FROM cs.feature_sources() s", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read cs.feature_sources()");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		char	   *f = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
		char	   *v = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);

		if (f == NULL || v == NULL)
			continue;
		for (int i = 0; i < nnames; i++)
			if (strcmp(names[i], f) == 0)
				pit[i] = MemoryContextStrdup(outer, v[0] == 't' ? "true" : "false");
	}
	SPI_finish();
	return pit;
}

/* The cscopilot.leakage_auc setting. */
static double
LeakageThreshold(void)
{
	const char *v = GetConfigOption("cscopilot.leakage_auc", true, false);

	return v ? strtod(v, NULL) : 0.95;
}

/* A timestamptz as JSON text. */
static json_t *
JsonTimestamp(TimestampTz t)
{
	if (TIMESTAMP_NOT_FINITE(t))
		return json_null();
	return json_string(DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(t))));
}

/* A JSON number, or null when not finite. */
static json_t *
JsonNum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/*
 * Survival metrics of the validation rows: the concordance index of the
 * predicted times (Harrell's C: a seen event time against later times), the
 * counts, and the AFT distribution and scale that turn a margin into a
 * probability (cs.survival_probability reads them from the model itself).
 */
static void
AddSurvivalMetrics(json_t *root, CsModel *m, TrainData *td)
{
	double	   *pred = palloc(sizeof(double) * Max(td->nvalid, 1));
	double	   *time = palloc(sizeof(double) * Max(td->nvalid, 1));
	bool	   *event = palloc(sizeof(bool) * Max(td->nvalid, 1));
	int			events = 0;
	double		sum_days = 0;
	static const char *const dist[] = {"normal", "logistic", "extreme"};

	for (int i = 0; i < td->nvalid; i++)
	{
		pred[i] = CsModelPredict(m, td->xvalid + (size_t) i * td->nf, td->nf);
		time[i] = td->yvalid[i];
		event[i] = isfinite(td->yvalid_upper[i]);
		events += event[i];
		sum_days += pred[i];
	}
	json_object_set_new(root, "concordance_index",
						JsonNum(CsConcordanceIndex(pred, time, event, td->nvalid)));
	json_object_set_new(root, "valid_events", json_integer(events));
	json_object_set_new(root, "valid_censored", json_integer(td->nvalid - events));
	json_object_set_new(root, "mean_predicted_days", JsonNum(td->nvalid ? sum_days / td->nvalid : NAN));
	json_object_set_new(root, "aft_loss_distribution", json_string(dist[m->aft_distribution]));
	json_object_set_new(root, "aft_loss_distribution_scale", JsonNum(m->aft_scale));
	json_object_set_new(root, "train_censored_at_split", json_integer(td->censored_at_split));
	pfree(pred);
	pfree(time);
	pfree(event);
}

/* Builds the metrics object of a trained model as JSON text. */
static char *
BuildMetrics(CsModel *m, TrainData *td, TrainParams *p, int best_iter, double best_score,
			 const char *params_text, char **imp_names, float *imp_scores, int n_imp,
			 char **names, double *auc_alone, char **pit, const char *horizon_text)
{
	double		leak_auc = LeakageThreshold();
	double	   *scores = palloc(sizeof(double) * td->nvalid);
	double		logloss = 0,
				brier = 0,
				sq = 0;
	bool		binary = strcmp(p->objective, "reg:squarederror") != 0 && !IsSurvival(p);
	bool		labels01 = true;
	json_t	   *volatile root = NULL;
	char	   *volatile text = NULL;
	char	   *result;

	for (int i = 0; i < td->nvalid; i++)
	{
		double		s = CsModelPredict(m, td->xvalid + (size_t) i * td->nf, td->nf);
		double		y = td->yvalid[i];

		if (strcmp(p->objective, "binary:logitraw") == 0)
			s = 1.0 / (1.0 + exp(-s));
		scores[i] = s;
		if (binary)
		{
			double		pc = Min(Max(s, 1e-15), 1 - 1e-15);

			logloss -= y * log(pc) + (1 - y) * log(1 - pc);
			brier += (s - y) * (s - y);
		}
		sq += (s - y) * (s - y);
		if (y != 0 && y != 1)
			labels01 = false;
	}

	PG_TRY();
	{
		json_t	   *imp = CsJsonNewObject();
		json_error_t jerr;

		root = CsJsonNewObject();
		if (binary)
		{
			json_object_set_new(root, "auc", JsonNum(labels01 ? ComputeAuc(scores, td->yvalid, td->nvalid) : NAN));
			json_object_set_new(root, "logloss", JsonNum(logloss / td->nvalid));
			json_object_set_new(root, "brier", JsonNum(brier / td->nvalid));
		}
		if (IsSurvival(p))
			AddSurvivalMetrics(root, m, td);
		else
			json_object_set_new(root, "rmse", JsonNum(sqrt(sq / td->nvalid)));
		json_object_set_new(root, "best_iteration", json_integer(best_iter));
		json_object_set_new(root, "num_trees", json_integer(m->num_trees));
		json_object_set_new(root, "eval_metric", json_string(p->eval_metric));
		json_object_set_new(root, "best_score", JsonNum(best_score));
		json_object_set_new(root, "rows_train", json_integer(td->ntrain));
		json_object_set_new(root, "rows_valid", json_integer(td->nvalid));
		json_object_set_new(root, "positive_rate", JsonNum(td->positive_rate));
		json_object_set_new(root, "split", json_string(td->forward ? "forward" : "hashed"));
		if (td->forward)
			json_object_set_new(root, "split_window",
								json_pack("{s:o, s:o, s:o, s:o, s:s, s:i}",
										  "train_from", JsonTimestamp(td->train_from),
										  "train_to", JsonTimestamp(td->train_to),
										  "valid_from", JsonTimestamp(td->valid_from),
										  "valid_to", JsonTimestamp(td->valid_to),
										  "gap", horizon_text,
										  "rows_dropped", td->dropped));
		if (auc_alone)
		{
			json_t	   *leak = json_array();
			json_t	   *suspects = json_array();

			for (int j = 0; j < td->nf; j++)
			{
				bool		suspect = isfinite(auc_alone[j]) && auc_alone[j] >= leak_auc;
				json_t	   *pitv = strcmp(pit[j], "unknown") == 0 ? json_string("unknown")
					: json_boolean(strcmp(pit[j], "true") == 0);

				json_array_append_new(leak, json_pack("{s:s, s:o, s:o, s:b}", "feature", names[j],
													  "auc_alone", JsonNum(auc_alone[j]),
													  "point_in_time", pitv, "suspect", suspect));
				if (suspect)
					json_array_append_new(suspects, json_string(names[j]));
			}
			json_object_set_new(root, "leakage", leak);
			json_object_set_new(root, "leakage_suspects", suspects);
			json_object_set_new(root, "leakage_auc", json_real(leak_auc));
		}
		for (int i = 0; i < n_imp; i++)
			json_object_set_new(imp, imp_names[i], JsonNum(imp_scores[i]));
		json_object_set_new(root, "feature_importance_gain", imp);
		json_object_set_new(root, "params", json_loads(params_text, 0, &jerr));
		text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
		if (text == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		result = pstrdup(text);
	}
	PG_FINALLY();
	{
		if (root)
			json_decref(root);
		if (text)
			free(text);
	}
	PG_END_TRY();
	pfree(scores);
	return result;
}

/*
 * Kind survival goes with objective survival:aft and back; its forward split
 * has no gap (training labels are censored at the validation start).
 */
static void
CheckSurvivalKind(const char *kind, TrainParams *p, Interval **horizon, char **horizon_text)
{
	bool		survival_kind = strcmp(kind, "survival") == 0;

	if (survival_kind != IsSurvival(p) && strcmp(kind, "custom") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model kind \"%s\" does not go with objective %s", kind, p->objective),
				 errhint(survival_kind ? "Train a survival model with params {\"objective\": \"survival:aft\"}."
						 : "Objective survival:aft trains a model of kind survival (or custom).")));
	if (!IsSurvival(p))
		return;
	*horizon = palloc0(sizeof(Interval));
	*horizon_text = "none: training labels are censored at the first validation date";
}

/* cs.train_model(name, kind, training_query, params): trains and registers a model. */
Datum
cs_train_model(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *params_text = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(3)));
	TrainParams p;
	TrainData	td;
	char	  **names;
	int			nnames;
	bool		binary;
	DMatrixHandle volatile dtrain = NULL;
	DMatrixHandle volatile dvalid = NULL;
	BoosterHandle volatile bst = NULL;
	BoosterHandle volatile best = NULL;
	char	   *volatile model_json = NULL;
	volatile size_t model_len = 0;
	volatile int best_iter = 0;
	volatile double best_score = NAN;
	char	  **volatile imp_names = NULL;
	float	   *volatile imp_scores = NULL;
	volatile int n_imp = 0;
	CsModel    *m;
	char	   *volatile metrics = NULL;
	int32		id;
	Interval   *horizon;
	char	   *horizon_text;
	double	   *auc_alone = NULL;
	char	  **pit = NULL;
	CsTrainingEncoding *encoding;
	char	   *search_text = NULL;
	bool		calibratable;
	char	   *volatile calibration = NULL;

	/* Named, typed columns instead of features: encode them (encode.c). */
	encoding = CsEncodeTrainingQuery(kind, &query, &params_text);

	ParseParams(&p, params_text);
	/* The label horizon: the gap of the forward split. */
	if (p.horizon)
		horizon_text = p.horizon;
	else
	{
		const char *days = GetConfigOption("cscopilot.outcome_horizon", true, false);

		horizon_text = psprintf("%s days", days ? days : "90");
	}
	horizon = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(horizon_text),
													ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	horizon_text = DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(horizon)));
	binary = strcmp(p.objective, "reg:squarederror") != 0 && !IsSurvival(&p);
	if (strcmp(kind, "churn") != 0 && strcmp(kind, "downgrade") != 0 && strcmp(kind, "payment") != 0 &&
		strcmp(kind, "upsell") != 0 && strcmp(kind, "expansion") != 0 && strcmp(kind, "custom") != 0 &&
		strcmp(kind, "survival") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid model kind \"%s\"", kind),
				 errhint("Use churn, downgrade, payment, upsell, expansion, survival or custom.")));
	CheckSurvivalKind(kind, &p, &horizon, &horizon_text);

	ReadTrainingData(query, &p, &td, CurrentMemoryContext, binary, horizon);

	/* Feature names: params, else the catalog for scoring kinds, else f1..fN. */
	if (p.feature_names)
	{
		names = p.feature_names;
		nnames = p.num_feature_names;
	}
	else if (strcmp(kind, "custom") != 0)
		names = CatalogFeatureNames(&nnames);
	else
	{
		nnames = td.nf;
		names = palloc(sizeof(char *) * nnames);
		for (int i = 0; i < nnames; i++)
			names[i] = psprintf("f%d", i + 1);
	}
	if (nnames != td.nf)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("training rows have %d features but there are %d feature names", td.nf, nnames),
				 errhint("For kind %s the names come from %s.", kind,
						 p.feature_names ? "params.feature_names" : "cs.feature_names()")));

	/* monotone_constraints by name, to libxgboost's "(c1,c2,...)" by position */
	if (p.num_monotone > 0)
	{
		int		   *c = palloc0(sizeof(int) * nnames);
		StringInfoData buf;

		for (int k = 0; k < p.num_monotone; k++)
		{
			int			pos = -1;

			for (int i = 0; i < nnames; i++)
				if (strcmp(names[i], p.monotone_names[k]) == 0)
					pos = i;
			if (pos < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("monotone_constraints names unknown feature \"%s\"", p.monotone_names[k]),
						 errhint("Use the model's feature names (%s).",
								 p.feature_names ? "params.feature_names" :
								 strcmp(kind, "custom") != 0 ? "cs.feature_catalog" : "f1, f2, ...")));
			c[pos] = p.monotone_values[k];
		}
		initStringInfo(&buf);
		appendStringInfoChar(&buf, '(');
		for (int i = 0; i < nnames; i++)
			appendStringInfo(&buf, i ? ",%d" : "%d", c[i]);
		appendStringInfoChar(&buf, ')');
		SetXgbParam(&p, "monotone_constraints", buf.data);
	}

	/* Class weighting only with a calibration (calibrate.c), for probability objectives. */
	calibratable = strcmp(p.objective, "binary:logistic") == 0 || strcmp(p.objective, "reg:logistic") == 0;
	{
		const char *spw = NULL;

		for (int i = 0; i < p.nparams; i++)
			if (strcmp(p.keys[i], "scale_pos_weight") == 0)
				spw = p.values[i];
		CsCalibrationCheckParams(CsCalibrationMethodFromName(p.calibration), calibratable, spw);
	}

	/* A parameter search (search.c): its chosen values become the parameters. */
	if (p.search)
	{
		char	  **ck,
				  **cv;
		int			nc;

		if (strcmp(p.objective, "binary:logistic") != 0 && strcmp(p.objective, "reg:logistic") != 0 &&
			strcmp(p.objective, "binary:logitraw") != 0 && strcmp(p.objective, "reg:squarederror") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("parameter search does not support objective %s", p.objective)));
		search_text = CsParamSearch(p.search, (const char *const *) p.keys, (const char *const *) p.values,
									p.nparams, p.num_round, p.early_stopping_rounds, p.eval_metric, p.objective,
									td.xtrain, td.ytrain, td.ntrain, td.xvalid, td.yvalid, td.nvalid, td.nf,
									(const char **) names, nnames, &ck, &cv, &nc);
		for (int i = 0; i < nc; i++)
			SetXgbParam(&p, ck[i], cv[i]);
	}

	/* The leakage audit, for 0/1 labels. */
	{
		bool		labels01 = binary;

		for (int i = 0; i < td.ntrain && labels01; i++)
			if (td.ytrain[i] != 0 && td.ytrain[i] != 1)
				labels01 = false;
		if (labels01)
		{
			auc_alone = palloc(sizeof(double) * td.nf);
			FeatureAucAlone(&td, auc_alone);
			pit = FeaturePointInTime(names, nnames);
		}
	}

	PG_TRY();
	{
		DMatrixHandle dmats[2];
		const char *evnames[1] = {"valid"};
		bool		maximize = MetricMaximize(p.eval_metric);
		bst_ulong	len;
		const char *buf;
		bst_ulong	nfeat_out = 0,
					dim = 0;
		const char **feat_out = NULL;
		const bst_ulong *shape = NULL;
		const float *scores_out = NULL;

		CsXgbCheck(XGDMatrixCreateFromMat(td.xtrain, td.ntrain, td.nf, NAN, (DMatrixHandle *) &dtrain),
				   "create the training matrix");
		SetLabels(dtrain, td.ytrain, td.ytrain_upper, td.ntrain);
		CsXgbCheck(XGDMatrixSetStrFeatureInfo(dtrain, "feature_name", (const char **) names, nnames),
				   "set feature names");
		CsXgbCheck(XGDMatrixCreateFromMat(td.xvalid, td.nvalid, td.nf, NAN, (DMatrixHandle *) &dvalid),
				   "create the validation matrix");
		SetLabels(dvalid, td.yvalid, td.yvalid_upper, td.nvalid);
		CsXgbCheck(XGDMatrixSetStrFeatureInfo(dvalid, "feature_name", (const char **) names, nnames),
				   "set feature names");
		dmats[0] = dtrain;
		dmats[1] = dvalid;
		CsXgbCheck(XGBoosterCreate(dmats, 2, (BoosterHandle *) &bst), "create a booster");
		for (int i = 0; i < p.nparams; i++)
			if (XGBoosterSetParam(bst, p.keys[i], p.values[i]) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("libxgboost rejected training parameter \"%s\" = \"%s\"", p.keys[i], p.values[i]),
						 errdetail("%s", XGBGetLastError())));

		for (int iter = 0; iter < p.num_round; iter++)
		{
			const char *eval;
			double		score;

			CHECK_FOR_INTERRUPTS();
			CsXgbCheck(XGBoosterUpdateOneIter(bst, iter, dtrain), "train");
			CsXgbCheck(XGBoosterEvalOneIter(bst, iter, &dmats[1], evnames, 1, &eval), "evaluate");
			score = ParseEval(eval);
			/* Without early stopping every round is kept. */
			if (iter == 0 || p.early_stopping_rounds == 0 ||
				(maximize ? score > best_score : score < best_score))
			{
				best_score = score;
				best_iter = iter;
			}
			else if (p.early_stopping_rounds > 0 && iter - best_iter >= p.early_stopping_rounds)
				break;
		}

		/* Keep the trees up to the best round. */
		CsXgbCheck(XGBoosterSlice(bst, 0, best_iter + 1, 1, (BoosterHandle *) &best), "cut the model");
		/* The booster does not take names from the matrix: give them for the saved model. */
		CsXgbCheck(XGBoosterSetStrFeatureInfo(best, "feature_name", (const char **) names, nnames),
				   "set feature names");
		CsXgbCheck(XGBoosterSaveModelToBuffer(best, "{\"format\": \"json\"}", &len, &buf), "save the model");
		model_json = palloc(len + 1);
		memcpy(model_json, buf, len);
		model_json[len] = '\0';
		model_len = len;

		CsXgbCheck(XGBoosterFeatureScore(best, "{\"importance_type\": \"gain\", \"feature_map\": \"\"}",
										 &nfeat_out, &feat_out, &dim, &shape, &scores_out),
				   "compute feature importance");
		n_imp = (int) nfeat_out;
		imp_names = palloc(sizeof(char *) * Max(n_imp, 1));
		imp_scores = palloc(sizeof(float) * Max(n_imp, 1));
		for (int i = 0; i < n_imp; i++)
		{
			imp_names[i] = pstrdup(feat_out[i]);
			imp_scores[i] = scores_out[i];
		}
	}
	PG_FINALLY();
	{
		if (best)
			XGBoosterFree(best);
		if (bst)
			XGBoosterFree(bst);
		if (dtrain)
			XGDMatrixFree(dtrain);
		if (dvalid)
			XGDMatrixFree(dvalid);
	}
	PG_END_TRY();

	/* Metrics with the evaluator cs.predict will use. */
	m = CsModelBuild(model_json, model_len, CurrentMemoryContext);
	PG_TRY();
	{
		metrics = BuildMetrics(m, &td, &p, best_iter, best_score, params_text,
							   imp_names, imp_scores, n_imp, names, auc_alone, pit, horizon_text);
		/* the map from raw to calibrated probability, on the validation rows */
		if (calibratable)
		{
			char	   *mt = metrics;

			calibration = CsCalibrationTrain(m, false,
											 CsCalibrationMethodFromName(p.calibration),
											 td.xvalid, td.yvalid, td.nvalid, td.nf, &mt);
			metrics = mt;
		}
		if (search_text)
			metrics = CsMetricsWithSearch(metrics, search_text);
	}
	PG_FINALLY();
	{
		CsModelFree(m);
	}
	PG_END_TRY();

	id = CsModelRegister(name, kind, model_json, model_len, names, nnames, metrics, query);
	if (encoding)
		CsEncodingStore(id, encoding);
	if (calibration)
		CsCalibrationStore(id, calibration);

	/* What the model learnt from, for drift monitoring (cs.feature_drift). */
	CsStoreReference(id, "training rows", (int64) td.ntrain + td.nvalid,
					 CsFeatureReferenceJson(td.xtrain, td.ntrain, td.xvalid, td.nvalid, td.nf));
	PG_RETURN_INT32(id);
}
