/*
 * calibrate.c
 *		Calibrated probabilities: the map from a model's raw probability to
 *		the observed frequency, fitted by cs.train_model on the validation
 *		rows (forward in time when the training query has as_of), stored in
 *		cs.models.calibration and applied by cs.calibrate.
 *
 * Methods.  "isotonic": pool-adjacent-violators over the validation rows
 * sorted by raw probability; the map keeps one knot per pooled block (mean
 * raw probability, mean label) and interpolates linearly between knots,
 * flat beyond the first and the last (as scikit-learn's IsotonicRegression).
 * "platt": p' = 1 / (1 + exp(-(a * logit(p) + b))), a and b by Newton's
 * method on Platt's smoothed targets.  "auto" (the default) takes the one
 * whose cross-fitted Brier score on the validation rows is lowest (isotonic
 * only with at least CALIBRATION_ISOTONIC_MIN rows of each class: it needs
 * many rows not to overfit), and none when neither beats the raw
 * probabilities.
 *
 * Honest figures.  The Brier score and the reliability table written to the
 * metrics are cross-fitted: the rows are split in two by position, each half
 * is calibrated by a map fitted on the other half, so no row judges a map it
 * helped fit.  The stored map is then fitted on all validation rows.
 *
 * cs.predict stays the raw model output (SHAP contributions add up to its
 * margin); the risks a CSM reads (cs._score_risk, cs.churn_risk) go through
 * cs.calibrate.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
/* fmgrprotos.h declares a json_object() that clashes with jansson's. */
#define json_object pg_json_object
#include "utils/builtins.h"
#undef json_object
#include "utils/memutils.h"

#include <jansson.h>

#include "model.h"
#include "calibrate.h"

PG_FUNCTION_INFO_V1(cs_calibrate);

/* Rows of each class the validation set needs for "auto" to pick isotonic. */
#define CALIBRATION_ISOTONIC_MIN 50

/* Clamp of raw probabilities before the logit (Platt). */
#define PLATT_EPS 1e-6

/* A JSON number, or null when not finite. */
static json_t *
CalJsonNum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* Index order of raw probabilities, ties by position (deterministic). */
static const double *SortKeys;

static int
IndexCmp(const void *a, const void *b)
{
	int			ia = *(const int *) a;
	int			ib = *(const int *) b;

	if (SortKeys[ia] < SortKeys[ib])
		return -1;
	if (SortKeys[ia] > SortKeys[ib])
		return 1;
	return ia - ib;
}

/* The rows of idx (n of them) sorted by raw probability p. */
static void
SortByScore(const double *p, int *idx, int n)
{
	SortKeys = p;
	qsort(idx, n, sizeof(int), IndexCmp);
	SortKeys = NULL;
}

/* Pool-adjacent-violators over the rows idx: the knots of a non-decreasing map. */
static void
IsotonicFit(const double *p, const float *y, const int *rows, int n, CsCalibration *c)
{
	int		   *idx = palloc(sizeof(int) * n);
	double	   *sx = palloc(sizeof(double) * n);	/* per block: sum of p */
	double	   *sy = palloc(sizeof(double) * n);	/* per block: sum of y */
	double	   *w = palloc(sizeof(double) * n);	/* per block: rows */
	int			nb = 0;

	memcpy(idx, rows, sizeof(int) * n);
	SortByScore(p, idx, n);
	for (int i = 0; i < n; i++)
	{
		int			r = idx[i];

		/* rows of equal raw probability form one block (the map is a function of p) */
		if (nb > 0 && sx[nb - 1] / w[nb - 1] == p[r])
		{
			sx[nb - 1] += p[r];
			sy[nb - 1] += y[r];
			w[nb - 1] += 1;
		}
		else
		{
			sx[nb] = p[r];
			sy[nb] = y[r];
			w[nb] = 1;
			nb++;
		}
		/* pool while the last block's mean label is below the one before */
		while (nb > 1 && sy[nb - 2] / w[nb - 2] >= sy[nb - 1] / w[nb - 1])
		{
			sx[nb - 2] += sx[nb - 1];
			sy[nb - 2] += sy[nb - 1];
			w[nb - 2] += w[nb - 1];
			nb--;
		}
	}
	c->method = CS_CALIBRATION_ISOTONIC;
	c->n = nb;
	c->x = palloc(sizeof(double) * Max(nb, 1));
	c->y = palloc(sizeof(double) * Max(nb, 1));
	for (int b = 0; b < nb; b++)
	{
		c->x[b] = sx[b] / w[b];
		c->y[b] = sy[b] / w[b];
	}
	pfree(idx);
	pfree(sx);
	pfree(sy);
	pfree(w);
}

/* Platt scaling over the rows: logistic regression of the label on logit(p). */
static void
PlattFit(const double *p, const float *y, const int *rows, int n, CsCalibration *c)
{
	double		npos = 0,
				nneg = 0,
				tpos,
				tneg,
				a = 1,
				b = 0;

	for (int i = 0; i < n; i++)
	{
		if (y[rows[i]] >= 0.5)
			npos++;
		else
			nneg++;
	}
	/* Platt's targets: a little away from 0 and 1, so that separable rows keep a finite fit */
	tpos = (npos + 1) / (npos + 2);
	tneg = 1 / (nneg + 2);
	for (int it = 0; it < 100; it++)
	{
		double		g0 = 0,
					g1 = 0,
					h00 = 1e-12,
					h01 = 0,
					h11 = 1e-12,
					det,
					da,
					db;

		for (int i = 0; i < n; i++)
		{
			int			r = rows[i];
			double		pc = Min(Max(p[r], PLATT_EPS), 1 - PLATT_EPS);
			double		z = log(pc / (1 - pc));
			double		q = 1 / (1 + exp(-(a * z + b)));
			double		t = y[r] >= 0.5 ? tpos : tneg;
			double		d = q * (1 - q);

			/* fractional labels (reg:logistic) are their own targets */
			if (y[r] != 0 && y[r] != 1)
				t = y[r];
			g0 += (q - t) * z;
			g1 += (q - t);
			h00 += d * z * z;
			h01 += d * z;
			h11 += d;
		}
		det = h00 * h11 - h01 * h01;
		if (!(fabs(det) > 1e-18))
			break;
		da = (h11 * g0 - h01 * g1) / det;
		db = (h00 * g1 - h01 * g0) / det;
		a -= da;
		b -= db;
		if (fabs(da) < 1e-10 && fabs(db) < 1e-10)
			break;
	}
	c->method = CS_CALIBRATION_PLATT;
	c->a = isfinite(a) ? a : 1;
	c->b = isfinite(b) ? b : 0;
	c->n = 0;
}

/* Applies a calibration map to a raw probability. */
double
CsCalibrationApply(const CsCalibration *c, double p)
{
	if (c == NULL || isnan(p))
		return p;
	if (c->method == CS_CALIBRATION_PLATT)
	{
		double		pc = Min(Max(p, PLATT_EPS), 1 - PLATT_EPS);

		return 1 / (1 + exp(-(c->a * log(pc / (1 - pc)) + c->b)));
	}
	if (c->n == 0)
		return p;
	if (p <= c->x[0])
		return c->y[0];
	if (p >= c->x[c->n - 1])
		return c->y[c->n - 1];
	{
		int			lo = 0,
					hi = c->n - 1;

		/* x[lo] <= p < x[hi] */
		while (hi - lo > 1)
		{
			int			mid = (lo + hi) / 2;

			if (c->x[mid] <= p)
				lo = mid;
			else
				hi = mid;
		}
		return c->y[lo] + (c->y[hi] - c->y[lo]) * (p - c->x[lo]) / (c->x[hi] - c->x[lo]);
	}
}

/* Fits a map of the given method over the rows. */
static void
CalibrationFit(CsCalibrationMethod method, const double *p, const float *y, const int *rows, int n,
			   CsCalibration *c)
{
	memset(c, 0, sizeof(*c));
	if (method == CS_CALIBRATION_ISOTONIC)
		IsotonicFit(p, y, rows, n, c);
	else
		PlattFit(p, y, rows, n, c);
}

/* The map as JSON: {"method": "isotonic", "x": [...], "y": [...]} or {"method": "platt", "a", "b"}. */
static json_t *
CalibrationJson(const CsCalibration *c)
{
	if (c->method == CS_CALIBRATION_PLATT)
		return json_pack("{s:s, s:o, s:o}", "method", "platt", "a", CalJsonNum(c->a), "b", CalJsonNum(c->b));
	else
	{
		json_t	   *xs = json_array();
		json_t	   *ys = json_array();

		for (int i = 0; i < c->n; i++)
		{
			json_array_append_new(xs, CalJsonNum(c->x[i]));
			json_array_append_new(ys, CalJsonNum(c->y[i]));
		}
		return json_pack("{s:s, s:o, s:o}", "method", "isotonic", "x", xs, "y", ys);
	}
}

/* Reads a stored map; raises data_corrupted when it is not one. */
static void
CalibrationFromText(const char *text, CsCalibration *c, MemoryContext mcxt)
{
	json_t	   *volatile root;
	json_error_t jerr;

	memset(c, 0, sizeof(*c));
	root = json_loads(text, 0, &jerr);
	PG_TRY();
	{
		const char *method = json_string_value(json_object_get(root, "method"));
		bool		ok = false;

		if (method && strcmp(method, "platt") == 0)
		{
			c->method = CS_CALIBRATION_PLATT;
			c->a = json_number_value(json_object_get(root, "a"));
			c->b = json_number_value(json_object_get(root, "b"));
			ok = json_is_number(json_object_get(root, "a")) && json_is_number(json_object_get(root, "b"));
		}
		else if (method && strcmp(method, "isotonic") == 0)
		{
			json_t	   *xs = json_object_get(root, "x");
			json_t	   *ys = json_object_get(root, "y");

			ok = json_is_array(xs) && json_is_array(ys) && json_array_size(xs) == json_array_size(ys) &&
				json_array_size(xs) > 0;
			if (ok)
			{
				c->method = CS_CALIBRATION_ISOTONIC;
				c->n = json_array_size(xs);
				c->x = MemoryContextAlloc(mcxt, sizeof(double) * c->n);
				c->y = MemoryContextAlloc(mcxt, sizeof(double) * c->n);
				for (int i = 0; i < c->n && ok; i++)
				{
					c->x[i] = json_number_value(json_array_get(xs, i));
					c->y[i] = json_number_value(json_array_get(ys, i));
					ok = json_is_number(json_array_get(xs, i)) && json_is_number(json_array_get(ys, i)) &&
						(i == 0 || (c->x[i] > c->x[i - 1] && c->y[i] >= c->y[i - 1]));
				}
			}
		}
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid calibration map"),
					 errdetail("A map is {\"method\": \"isotonic\", \"x\": [...], \"y\": [...]} with increasing x and non-decreasing y, or {\"method\": \"platt\", \"a\": number, \"b\": number}."),
					 errhint("Set cs.models.calibration to NULL to score with raw probabilities.")));
	}
	PG_FINALLY();
	{
		if (root)
			json_decref(root);
	}
	PG_END_TRY();
}

/* Parses the params value "calibration". */
CsCalibrationMethod
CsCalibrationMethodFromName(const char *s)
{
	if (s == NULL)
		return CS_CALIBRATION_AUTO;
	if (strcmp(s, "isotonic") == 0)
		return CS_CALIBRATION_ISOTONIC;
	if (strcmp(s, "platt") == 0)
		return CS_CALIBRATION_PLATT;
	if (strcmp(s, "none") == 0)
		return CS_CALIBRATION_NONE;
	if (strcmp(s, "auto") == 0)
		return CS_CALIBRATION_AUTO;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid training parameter \"calibration\""),
			 errdetail("It must be isotonic, platt, none or auto (the one with the lower cross-fitted Brier score, isotonic only with at least %d validation rows of each class; none when neither lowers it).",
					   CALIBRATION_ISOTONIC_MIN)));
	return CS_CALIBRATION_NONE;
}

/* Refuses class weighting without calibration: weighted probabilities are not frequencies. */
void
CsCalibrationCheckParams(CsCalibrationMethod method, bool binary, const char *scale_pos_weight)
{
	if (scale_pos_weight == NULL || strtod(scale_pos_weight, NULL) == 1.0)
		return;
	if (method == CS_CALIBRATION_NONE || !binary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("scale_pos_weight needs a calibration"),
				 errdetail("Class weighting shifts the predicted probabilities away from observed frequencies; only a calibration fitted on unweighted validation rows brings them back."),
				 errhint("Use \"calibration\": \"isotonic\", \"platt\" or \"auto\" with a probability objective, or drop scale_pos_weight.")));
}

/* Mean squared error of probabilities q against labels. */
static double
Brier(const double *q, const float *y, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += (q[i] - y[i]) * (q[i] - y[i]);
	return n > 0 ? s / n : NAN;
}

/*
 * Cross-fitted calibration of the validation rows by a method: each half of
 * the rows is calibrated by the map fitted on the other half, into q.
 * Returns the Brier score of q.
 */
static double
CrossFitted(CsCalibrationMethod method, const double *p, const float *y, int n,
			int *const half[2], const int nhalf[2], double *q)
{
	for (int h = 0; h < 2; h++)
	{
		CsCalibration other;

		if (nhalf[1 - h] == 0)
		{
			for (int i = 0; i < nhalf[h]; i++)
				q[half[h][i]] = p[half[h][i]];
			continue;
		}
		CalibrationFit(method, p, y, half[1 - h], nhalf[1 - h], &other);
		for (int i = 0; i < nhalf[h]; i++)
			q[half[h][i]] = CsCalibrationApply(&other, p[half[h][i]]);
	}
	return Brier(q, y, n);
}

/*
 * Fits the calibration of a trained model on its validation rows: predicts
 * them with m, chooses the method, measures the Brier score and the
 * reliability by decile before and after (cross-fitted), adds them to
 * *metrics (JSON text, key "calibration") and returns the map as JSON text,
 * or NULL when there is none (calibration none, or one class).
 */
char *
CsCalibrationTrain(CsModel *m, bool logitraw, CsCalibrationMethod method,
				   const float *x, const float *y, int n, int nf, char **metrics)
{
	double	   *p = palloc(sizeof(double) * Max(n, 1));
	double	   *q = palloc(sizeof(double) * Max(n, 1));
	int		   *rows = palloc(sizeof(int) * Max(n, 1));
	int		   *half[2];
	int			nhalf[2] = {0, 0};
	int			npos = 0,
				nneg = 0;
	CsCalibrationMethod chosen = method;
	json_t	   *volatile summary = NULL;
	json_t	   *volatile root = NULL;
	char	   *volatile text = NULL;
	char	   *map_text = NULL;
	const char *reason = NULL;
	double		auto_platt = NAN,
				auto_isotonic = NAN;

	half[0] = palloc(sizeof(int) * Max(n, 1));
	half[1] = palloc(sizeof(int) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		double		s = CsModelPredict(m, x + (size_t) i * nf, nf);

		if (logitraw)
			s = 1.0 / (1.0 + exp(-s));
		p[i] = s;
		rows[i] = i;
		half[i % 2][nhalf[i % 2]++] = i;
		if (y[i] >= 0.5)
			npos++;
		else
			nneg++;
	}
	if (chosen == CS_CALIBRATION_AUTO && npos > 0 && nneg > 0)
	{
		/*
		 * The method whose cross-fitted Brier score on the validation rows is
		 * lowest: Platt, or isotonic when there are enough rows of each class
		 * not to overfit; none when neither beats the raw probabilities (a
		 * model already calibrated is left alone rather than made worse).
		 */
		double		best = Brier(p, y, n);

		chosen = CS_CALIBRATION_NONE;
		auto_platt = CrossFitted(CS_CALIBRATION_PLATT, p, y, n, half, nhalf, q);
		if (auto_platt < best)
		{
			best = auto_platt;
			chosen = CS_CALIBRATION_PLATT;
		}
		if (npos >= CALIBRATION_ISOTONIC_MIN && nneg >= CALIBRATION_ISOTONIC_MIN)
		{
			auto_isotonic = CrossFitted(CS_CALIBRATION_ISOTONIC, p, y, n, half, nhalf, q);
			if (auto_isotonic < best)
			{
				best = auto_isotonic;
				chosen = CS_CALIBRATION_ISOTONIC;
			}
		}
		if (chosen == CS_CALIBRATION_NONE)
			reason = "no method lowers the cross-fitted Brier score of the validation rows";
	}
	else if (chosen == CS_CALIBRATION_AUTO)
		chosen = CS_CALIBRATION_PLATT;	/* one class: refused below */
	if (chosen != CS_CALIBRATION_NONE && (npos == 0 || nneg == 0))
	{
		if (method != CS_CALIBRATION_AUTO)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot calibrate on validation rows of one class"),
					 errdetail("The %d validation rows have %d positives.", n, npos),
					 errhint("Use more rows, another validation_fraction, or \"calibration\": \"none\".")));
		reason = "the validation rows have one class";
		chosen = CS_CALIBRATION_NONE;
	}

	PG_TRY();
	{
		json_error_t jerr;

		summary = json_pack("{}");
		json_object_set_new(summary, "method", json_string(chosen == CS_CALIBRATION_ISOTONIC ? "isotonic" :
															chosen == CS_CALIBRATION_PLATT ? "platt" : "none"));
		json_object_set_new(summary, "rows", json_integer(n));
		json_object_set_new(summary, "positives", json_integer(npos));
		json_object_set_new(summary, "brier_raw", CalJsonNum(Brier(p, y, n)));
		if (reason)
			json_object_set_new(summary, "skipped", json_string(reason));
		if (method == CS_CALIBRATION_AUTO && !isnan(auto_platt))
		{
			json_t	   *cand = json_pack("{s:o}", "platt", CalJsonNum(auto_platt));

			if (!isnan(auto_isotonic))
				json_object_set_new(cand, "isotonic", CalJsonNum(auto_isotonic));
			json_object_set_new(summary, "auto_candidates", cand);
		}
		if (chosen != CS_CALIBRATION_NONE)
		{
			CsCalibration fitted;
			json_t	   *rel = json_array();

			/* cross-fitted: each half calibrated by the map of the other */
			json_object_set_new(summary, "brier_calibrated",
								CalJsonNum(CrossFitted(chosen, p, y, n, half, nhalf, q)));
			json_object_set_new(summary, "cross_fitted", json_true());

			/* reliability by decile of the raw probability */
			SortByScore(p, rows, n);
			for (int d = 0; d < 10; d++)
			{
				int			lo = (int) ((int64) n * d / 10),
							hi = (int) ((int64) n * (d + 1) / 10);
				double		sp = 0,
							sq = 0,
							sy = 0;

				if (hi <= lo)
					continue;
				for (int i = lo; i < hi; i++)
				{
					sp += p[rows[i]];
					sq += q[rows[i]];
					sy += y[rows[i]];
				}
				json_array_append_new(rel, json_pack("{s:i, s:i, s:o, s:o, s:o}", "decile", d + 1, "n", hi - lo,
													 "mean_raw", CalJsonNum(sp / (hi - lo)),
													 "mean_calibrated", CalJsonNum(sq / (hi - lo)),
													 "observed_rate", CalJsonNum(sy / (hi - lo))));
			}
			json_object_set_new(summary, "reliability", rel);

			/* the stored map: fitted on every validation row */
			for (int i = 0; i < n; i++)
				rows[i] = i;
			CalibrationFit(chosen, p, y, rows, n, &fitted);
			if (chosen == CS_CALIBRATION_ISOTONIC)
				json_object_set_new(summary, "knots", json_integer(fitted.n));
			{
				json_t	   *map = CalibrationJson(&fitted);
				char	   *s = json_dumps(map, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));

				json_decref(map);
				if (s == NULL)
					ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
				map_text = pstrdup(s);
				free(s);
			}
		}
		root = json_loads(*metrics, 0, &jerr);
		if (!json_is_object(root))
			elog(ERROR, "metrics of the trained model are not a JSON object");
		json_object_set(root, "calibration", summary);
		text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
		if (text == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		*metrics = pstrdup(text);
	}
	PG_FINALLY();
	{
		if (summary)
			json_decref(summary);
		if (root)
			json_decref(root);
		if (text)
			free(text);
	}
	PG_END_TRY();
	pfree(p);
	pfree(q);
	pfree(rows);
	pfree(half[0]);
	pfree(half[1]);
	return map_text;
}

/* Stores a fitted map with a registered model. */
void
CsCalibrationStore(int32 id, const char *map_text)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2] = {Int32GetDatum(id), CStringGetTextDatum(map_text)};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("UPDATE cs.models SET calibration = $2::jsonb WHERE id = $1",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not store the calibration of model %d", id);
	SPI_finish();
}

/* A map read from cs.models, for one model id and row version. */
typedef struct CalibrationCacheEntry
{
	int32		id;
	char	   *stamp;
	bool		has_map;
	CsCalibration map;
	MemoryContext mcxt;			/* holds stamp and the map */
} CalibrationCacheEntry;

/* cs.calibrate(model, p): the calibrated probability of a raw one (p itself without a map). */
Datum
cs_calibrate(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	double		p = PG_GETARG_FLOAT8(1);
	CsModel    *m;

	/* a probability: outside [0, 1] the Platt map's logit is undefined */
	if (isnan(p) || p < 0.0 || p > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("probability %g is not in [0, 1]", p),
				 errhint("Pass a raw probability, as cs.predict returns for a probability objective.")));
	m = CsModelForCall(fcinfo, name);
	PG_RETURN_FLOAT8(CsCalibrationForModel(m, p));
}

/* The backend's cache of maps by model id and row version. */
#define CALIBRATION_CACHE_SIZE 16
static CalibrationCacheEntry CalibrationCache[CALIBRATION_CACHE_SIZE];
static int	CalibrationCacheNext = 0;

/* Calibrates p with the map stored for model m (cs.models.calibration). */
double
CsCalibrationForModel(CsModel *m, double p)
{
	CalibrationCacheEntry *e = NULL;

	if (m == NULL || m->id == 0)
		return p;
	for (int i = 0; i < CALIBRATION_CACHE_SIZE; i++)
		if (CalibrationCache[i].mcxt != NULL && CalibrationCache[i].id == m->id &&
			strcmp(CalibrationCache[i].stamp, m->stamp) == 0)
		{
			e = &CalibrationCache[i];
			break;
		}
	if (e == NULL)
	{
		Oid			types[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(m->id)};
		char	   *map_text = NULL;

		e = &CalibrationCache[CalibrationCacheNext];
		CalibrationCacheNext = (CalibrationCacheNext + 1) % CALIBRATION_CACHE_SIZE;
		if (e->mcxt)
			MemoryContextDelete(e->mcxt);
		memset(e, 0, sizeof(*e));
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT calibration::text FROM cs.models WHERE id = $1",
								  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the calibration of model %d", m->id);
		if (SPI_processed == 1)
		{
			char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (s)
				map_text = MemoryContextStrdup(TopMemoryContext, s);
		}
		SPI_finish();
		e->mcxt = AllocSetContextCreate(TopMemoryContext, "cscopilot calibration", ALLOCSET_SMALL_SIZES);
		e->id = m->id;
		e->stamp = MemoryContextStrdup(e->mcxt, m->stamp);
		if (map_text)
		{
			PG_TRY();
			{
				CalibrationFromText(map_text, &e->map, e->mcxt);
				e->has_map = true;
			}
			PG_CATCH();
			{
				/* not cached: the next call reads the row again */
				MemoryContextDelete(e->mcxt);
				memset(e, 0, sizeof(*e));
				pfree(map_text);
				PG_RE_THROW();
			}
			PG_END_TRY();
			pfree(map_text);
		}
	}
	return e->has_map ? CsCalibrationApply(&e->map, p) : p;
}
