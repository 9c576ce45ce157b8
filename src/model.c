/*
 * model.c
 *		Model compilation on the server, the registry (cs.load_model,
 *		cs.load_model_file) and the scoring functions (cs.predict,
 *		cs.model_margin).
 *
 * Design
 * ------
 * Models are stored in cs.models as the bytes users gave (XGBoost JSON or
 * UBJ).  Before a model is used it is compiled by modelparse.c, which checks
 * the JSON field by field and flattens it into the arrays the native
 * evaluator (modeleval.c) walks.  Those two files know nothing of the
 * server: CsModelBuild here gives the parser an allocator into the model's
 * own memory context and turns its errors into ereport, so an ERROR at any
 * later point frees everything with the context.
 *
 * Every compile also loads the model into libxgboost (only JSON that passed
 * the checks reaches it) and compares both on probe rows: random rows from a
 * fixed seed, with NaNs and with values equal to and next to every split
 * threshold.  A model they disagree on is refused, so cs.predict never
 * silently differs from XGBoost.
 *
 * Compiled models are cached per backend (modelcache.c), so the per-row
 * path of cs.predict is: find the call site's model, detoast the array,
 * check it, walk the trees.
 *
 * libxgboost is never touched in the postmaster (OpenMP after fork hangs):
 * everything here runs lazily in backends, with nthread = 1.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include <xgboost/c_api.h>

#include "model.h"

#define PROBE_RANDOM_ROWS 64
#define PROBE_THRESHOLD_ROWS 64
#define PROBE_TOLERANCE 1e-6

PG_FUNCTION_INFO_V1(cs_load_model);
PG_FUNCTION_INFO_V1(cs_load_model_file);
PG_FUNCTION_INFO_V1(cs_predict);
PG_FUNCTION_INFO_V1(cs_model_margin);

/* ------------------------------------------------------------------------
 * libxgboost helpers
 * ------------------------------------------------------------------------
 */

/* Raises an error carrying libxgboost's message when a call failed. */
void
CsXgbCheck(int rc, const char *what)
{
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("libxgboost failed to %s", what),
				 errdetail("%s", XGBGetLastError())));
}

/* Frees a booster when its model's memory context goes away. */
static void
BoosterFreeCallback(void *arg)
{
	CsModel    *model = (CsModel *) arg;

	if (model->booster)
		XGBoosterFree((BoosterHandle) model->booster);
	model->booster = NULL;
}

/* Creates a single-threaded booster from model JSON the caller has checked. */
void *
CsBoosterFromJson(const char *json, size_t len)
{
	BoosterHandle h = NULL;

	CsXgbCheck(XGBoosterCreate(NULL, 0, &h), "create a booster");
	if (XGBoosterLoadModelFromBuffer(h, json, len) != 0 ||
		XGBoosterSetParam(h, "nthread", "1") != 0)
	{
		char	   *msg = pstrdup(XGBGetLastError());

		XGBoosterFree(h);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("libxgboost could not load the model"),
				 errdetail("%s", msg)));
	}
	return h;
}

/* ------------------------------------------------------------------------
 * Compilation and its checks against libxgboost
 * ------------------------------------------------------------------------
 */

/* Builds the probe rows: seeded random values, NaNs and split thresholds. */
float *
CsModelProbeRows(CsModel *m, int *nrows)
{
	int			n = PROBE_RANDOM_ROWS + PROBE_THRESHOLD_ROWS;
	int			nf = m->num_features;
	float	   *rows = palloc(sizeof(float) * n * nf);
	int		   *nsplits = palloc0(sizeof(int) * nf);
	float	  **splits = palloc0(sizeof(float *) * nf);
	pg_prng_state rng;

	/* Thresholds per feature. */
	for (int i = 0; i < m->num_nodes; i++)
		if (m->nodes[i].left != i)
			nsplits[m->nodes[i].feature & CS_NODE_FEATURE_MASK]++;
	for (int f = 0; f < nf; f++)
	{
		splits[f] = palloc(sizeof(float) * Max(nsplits[f], 1));
		nsplits[f] = 0;
	}
	for (int i = 0; i < m->num_nodes; i++)
		if (m->nodes[i].left != i)
		{
			int			f = m->nodes[i].feature & CS_NODE_FEATURE_MASK;

			splits[f][nsplits[f]++] = m->nodes[i].threshold;
		}

	pg_prng_seed(&rng, UINT64CONST(0x5eed0fc0ffee));
	for (int r = 0; r < n; r++)
	{
		bool		thresholds = r >= PROBE_RANDOM_ROWS;

		for (int f = 0; f < nf; f++)
		{
			double		u = pg_prng_double(&rng);
			float		v;

			if (u < 0.1)
				v = NAN;
			else if (nsplits[f] > 0 && (thresholds || u < 0.3))
			{
				float		s = splits[f][pg_prng_uint64_range(&rng, 0, nsplits[f] - 1)];
				double		w = pg_prng_double(&rng);

				if (w < 0.6)
					v = s;
				else if (w < 0.8)
					v = nextafterf(s, -INFINITY);
				else
					v = nextafterf(s, INFINITY);
			}
			else
				v = (float) ((pg_prng_double(&rng) - 0.5) * 20.0);
			rows[r * nf + f] = v;
		}
	}
	for (int f = 0; f < nf; f++)
		pfree(splits[f]);
	pfree(splits);
	pfree(nsplits);
	*nrows = n;
	return rows;
}

/* Refuses the model unless native and libxgboost predictions agree on probes. */
static void
CheckAgainstLibxgboost(CsModel *m)
{
	int			nrows;
	float	   *rows = CsModelProbeRows(m, &nrows);
	DMatrixHandle dm = NULL;
	bst_ulong	len = 0;
	const float *out = NULL;

	PG_TRY();
	{
		CsXgbCheck(XGDMatrixCreateFromMat(rows, nrows, m->num_features, NAN, &dm),
				   "create a matrix");
		CsXgbCheck(XGBoosterPredict((BoosterHandle) m->booster, dm, 0, 0, 0, &len, &out),
				   "predict");
		if ((int) len != nrows)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("libxgboost returned %d predictions for %d rows", (int) len, nrows)));
		for (int r = 0; r < nrows; r++)
		{
			double		native = CsModelNativeTransform(m, CsModelNativeMargin(m, rows + r * m->num_features));
			double		ref = out[r];

			if (!(fabs(native - ref) <= PROBE_TOLERANCE * Max(1.0, fabs(ref))))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("native evaluator disagrees with libxgboost on this model"),
						 errdetail("Probe row %d: native %.9g, libxgboost %.9g.", r, native, ref),
						 errhint("The model uses a feature of XGBoost that cscopilot does not evaluate; please report it.")));
		}
	}
	PG_FINALLY();
	{
		if (dm)
			XGDMatrixFree(dm);
	}
	PG_END_TRY();
	pfree(rows);
}

/* The parser's allocator: memory of the model's context, NULL instead of an error. */
static void *
ModelContextAlloc(void *arg, size_t size)
{
	if (size > MaxAllocHugeSize)
		return NULL;
	return MemoryContextAllocExtended((MemoryContext) arg, size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

/* Raises the error the parser recorded, with its SQLSTATE. */
static void pg_attribute_noreturn()
ReportModelError(const CsModelError *err)
{
	int			sqlstate;

	switch (err->status)
	{
		case CS_MODEL_INVALID:
			sqlstate = ERRCODE_INVALID_BINARY_REPRESENTATION;
			break;
		case CS_MODEL_UNSUPPORTED:
			sqlstate = ERRCODE_FEATURE_NOT_SUPPORTED;
			break;
		case CS_MODEL_NO_MEMORY:
			sqlstate = ERRCODE_OUT_OF_MEMORY;
			break;
		default:
			elog(ERROR, "model parser failed with status %d", (int) err->status);
	}
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg_internal("%s", err->message),
			 err->detail[0] ? errdetail_internal("%s", err->detail) : 0,
			 err->hint[0] ? errhint("%s", err->hint) : 0));
	pg_unreachable();
}

/* Compiles model bytes (JSON or UBJ) into a checked model in a new context. */
CsModel *
CsModelBuild(const char *data, size_t len, MemoryContext parent)
{
	MemoryContext mcxt;
	MemoryContext old;
	CsModel    *m;
	MemoryContextCallback *cb;
	CsAllocator alloc;
	CsModelError err;

	mcxt = AllocSetContextCreate(parent, "cscopilot model", ALLOCSET_SMALL_SIZES);
	m = MemoryContextAllocZero(mcxt, sizeof(CsModel));
	m->mcxt = mcxt;
	cb = MemoryContextAlloc(mcxt, sizeof(MemoryContextCallback));
	cb->func = BoosterFreeCallback;
	cb->arg = m;
	MemoryContextRegisterResetCallback(mcxt, cb);

	/* the parser never longjmps, and frees all it malloc'd before returning */
	alloc.alloc = ModelContextAlloc;
	alloc.arg = mcxt;
	if (CsModelParse(m, data, len, &alloc, &err) != CS_MODEL_OK)
	{
		MemoryContextDelete(mcxt);
		ReportModelError(&err);
	}

	old = MemoryContextSwitchTo(mcxt);
	PG_TRY();
	{
		m->booster = CsBoosterFromJson(m->json, m->json_len);
		CheckAgainstLibxgboost(m);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(mcxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return m;
}

/* Frees a compiled model and its booster. */
void
CsModelFree(CsModel *model)
{
	if (model)
		MemoryContextDelete(model->mcxt);
}

/* ------------------------------------------------------------------------
 * Evaluation API
 * ------------------------------------------------------------------------
 */

/* Number of input features the model expects. */
int
CsModelNumFeatures(CsModel *model)
{
	return model->num_features;
}

/* Checks a feature vector: its length and that no value is infinite. */
void
CsModelCheckFeatures(CsModel *m, const float *x, int n)
{
	int			bad = CsModelCheckVector(m, x, n);

	if (likely(bad == CS_VECTOR_OK))
		return;
	if (bad == CS_VECTOR_BAD_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("model \"%s\" expects %d features, got %d",
						m->name ? m->name : "(unnamed)", m->num_features, n)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("feature %d (%s) is infinite", bad + 1,
					m->feature_names ? m->feature_names[bad] : "unnamed"),
			 errhint("Use 'NaN' for a missing value; infinities are not valid features.")));
}

/* Margin (sum of trees plus base score) for one row; NaN means missing. */
double
CsModelMargin(CsModel *model, const float *x, int n)
{
	CsModelCheckFeatures(model, x, n);
	return (double) CsModelNativeMargin(model, x);
}

/* Prediction for one row: the margin through the objective's link. */
double
CsModelPredict(CsModel *model, const float *x, int n)
{
	CsModelCheckFeatures(model, x, n);
	return CsModelNativeTransform(model, CsModelNativeMargin(model, x));
}

/* Checks a float4[] argument and returns its values. */
const float *
CsModelFeaturesFromArray(CsModel *model, ArrayType *features)
{
	int			n;
	const float *x;

	if (ARR_NDIM(features) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional array"),
				 errdetail("The array has %d dimensions.", ARR_NDIM(features))));
	if (ARR_HASNULL(features))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("features must not contain NULL"),
				 errhint("Use 'NaN' for a missing value.")));
	if (ARR_ELEMTYPE(features) != FLOAT4OID)
		elog(ERROR, "features must be float4[]");
	n = ARR_NDIM(features) == 0 ? 0 : ARR_DIMS(features)[0];
	x = (const float *) ARR_DATA_PTR(features);

	/*
	 * Scoring kinds read cs.feature_catalog, which only grows at the end: a
	 * model trained before features were added reads the first num_features
	 * values of a current vector (registration checked its names are the
	 * catalog's prefix).
	 */
	if (n > model->num_features && model->kind != NULL && strcmp(model->kind, "custom") != 0)
		n = model->num_features;
	CsModelCheckFeatures(model, x, n);
	return x;
}

/* ------------------------------------------------------------------------
 * Registry
 * ------------------------------------------------------------------------
 */

/* Checks the kind name. */
static void
CheckKind(const char *kind)
{
	static const char *const kinds[] = {"churn", "downgrade", "payment", "upsell", "expansion", "survival", "custom"};

	for (int i = 0; i < lengthof(kinds); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid model kind \"%s\"", kind),
			 errhint("Use churn, downgrade, payment, upsell, expansion, survival or custom.")));
}

/* Checks model name, feature names and catalog, then inserts a new version. */
int32
CsModelRegister(const char *name, const char *kind, const char *data, size_t len,
				char **feature_names, int num_names,
				const char *metrics_json, const char *training_data)
{
	CsModel    *m;
	Datum	   *elems;
	ArrayType  *names_arr;
	volatile int32 id = 0;
	bool		isnull;

	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model name must not be empty")));
	CheckKind(kind);

	m = CsModelBuild(data, len, CurrentMemoryContext);
	PG_TRY();
	{
		if (feature_names == NULL)
		{
			if (!m->has_json_feature_names)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("model has no feature names"),
						 errhint("Pass feature_names.")));
			feature_names = m->feature_names;
			num_names = m->num_features;
		}
		if (num_names != m->num_features)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model has %d features but %d feature names were given",
							m->num_features, num_names)));
		for (int i = 0; i < num_names; i++)
		{
			if (feature_names[i] == NULL || feature_names[i][0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature name %d is empty or NULL", i + 1)));
			for (int j = 0; j < i; j++)
				if (strcmp(feature_names[i], feature_names[j]) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("feature name \"%s\" appears twice", feature_names[i])));
		}

		elems = palloc(sizeof(Datum) * num_names);
		for (int i = 0; i < num_names; i++)
			elems[i] = CStringGetTextDatum(feature_names[i]);
		names_arr = construct_array(elems, num_names, TEXTOID, -1, false, TYPALIGN_INT);

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");

		if (strcmp(kind, "custom") != 0)
		{
			Oid			t[1] = {TEXTARRAYOID};
			Datum		v[1] = {PointerGetDatum(names_arr)};
			char	   *catalog;

			/*
			 * The first names of cs.feature_names() (the catalog, then the
			 * usage metrics): a model keeps working as the catalog grows, and
			 * scoring picks its inputs from stored vectors by name.
			 */
			bool		have_names;

			/* an older version's install script (upgrade path) has no cs.feature_names() */
			if (SPI_execute("SELECT to_regprocedure('cs.feature_names()') IS NOT NULL", true, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not look up cs.feature_names()");
			have_names = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			if (SPI_execute_with_args(have_names
									  ? "SELECT nullif(n, '{}')::text, coalesce(n[1:cardinality($1)] = $1, false) "
									  "FROM cs.feature_names() n"
									  : "SELECT n::text, coalesce(n[1:cardinality($1)] = $1, false) "
									  "FROM (SELECT array_agg(name ORDER BY position) AS n FROM cs.feature_catalog) c",
									  1, t, v, NULL, true, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not read cs.feature_names()");
			catalog = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			if (catalog == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("cs.feature_catalog is empty, so a %s model cannot be checked", kind),
						 errhint("Fill cs.feature_catalog first, or load the model with kind custom.")));
			if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature names of a %s model must be cs.feature_names() or its first names", kind),
						 errdetail("The feature names are %s.", catalog),
						 errhint("Pass the catalog's names in position order (a model may stop before the catalog's end), or use kind custom.")));
		}

		{
			Oid			t[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, BYTEAOID, TEXTOID, TEXTOID};
			Datum		v[7];
			char		n[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
			bytea	   *b = palloc(VARHDRSZ + len);

			SET_VARSIZE(b, VARHDRSZ + len);
			memcpy(VARDATA(b), data, len);
			v[0] = CStringGetTextDatum(name);
			v[1] = CStringGetTextDatum(kind);
			v[2] = CStringGetTextDatum(m->objective);
			v[3] = PointerGetDatum(names_arr);
			v[4] = PointerGetDatum(b);
			v[5] = metrics_json ? CStringGetTextDatum(metrics_json) : (Datum) 0;
			n[5] = metrics_json ? ' ' : 'n';
			v[6] = training_data ? CStringGetTextDatum(training_data) : (Datum) 0;
			n[6] = training_data ? ' ' : 'n';

			/* Serialise versions of one name. */
			if (SPI_execute_with_args("SELECT pg_advisory_xact_lock(hashtext('cs.models ' || $1))",
									  1, t, v, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not lock model name");
			if (SPI_execute_with_args("INSERT INTO cs.models (name, version, kind, objective, feature_names, "
									  "model, metrics, training_data) "
									  "SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, "
									  "coalesce($6::jsonb, '{}'), $7 FROM cs.models WHERE name = $1 "
									  "RETURNING id",
									  7, t, v, n, false, 0) != SPI_OK_INSERT_RETURNING)
				elog(ERROR, "could not insert into cs.models");
			id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		CsModelFree(m);
	}
	PG_END_TRY();
	return id;
}

/* Text array argument to C strings, rejecting multi-dimensional arrays. */
static char **
TextArrayToStrings(ArrayType *arr, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("feature_names must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
	return out;
}

/* cs.load_model(name, kind, model, feature_names): registers a new version. */
Datum
cs_load_model(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *kind;
	bytea	   *model;
	int			n = 0;
	char	  **names = NULL;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name, kind and model must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	model = PG_GETARG_BYTEA_PP(2);
	/* Without feature names, the model's own names are used. */
	if (!PG_ARGISNULL(3))
		names = TextArrayToStrings(PG_GETARG_ARRAYTYPE_P(3), &n);

	PG_RETURN_INT32(CsModelRegister(name, kind, VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model),
									names, n, NULL, NULL));
}

/* cs.load_model_file(name, kind, filename, feature_names): loads a shipped model. */
Datum
cs_load_model_file(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *kind;
	char	   *filename;
	char		sharepath[MAXPGPATH];
	char		path[MAXPGPATH];
	char	  **names = NULL;
	int			n = 0;
	FILE	   *f;
	StringInfoData buf;
	char		chunk[8192];
	size_t		got;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name, kind and filename must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	filename = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (!PG_ARGISNULL(3))
		names = TextArrayToStrings(PG_GETARG_ARRAYTYPE_P(3), &n);

	if (filename[0] == '\0' || strchr(filename, '/') != NULL ||
		strchr(filename, '\\') != NULL || strstr(filename, "..") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid model file name \"%s\"", filename),
				 errdetail("Only the name of a file in the shipped models directory is accepted."),
				 errhint("Use a plain file name such as \"example_custom.json\", or cs.load_model for other models.")));

	get_share_path(my_exec_path, sharepath);
	snprintf(path, sizeof(path), "%s/cscopilot/models/%s", sharepath, filename);
	f = AllocateFile(path, PG_BINARY_R);
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open shipped model file \"%s\": %m", filename)));
	initStringInfo(&buf);
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
	{
		if ((Size) buf.len + got > MaxAllocSize / 2)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("model file \"%s\" is too large", filename)));
		appendBinaryStringInfo(&buf, chunk, got);
	}
	if (ferror(f))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read shipped model file \"%s\": %m", filename)));
	FreeFile(f);

	PG_RETURN_INT32(CsModelRegister(name, kind, buf.data, buf.len, names, n, NULL,
									psprintf("shipped model file %s", filename)));
}

/* ------------------------------------------------------------------------
 * SQL scoring functions
 * ------------------------------------------------------------------------
 */

/* cs.predict(model, features): the model's prediction for one row. */
Datum
cs_predict(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	ArrayType  *features = PG_GETARG_ARRAYTYPE_P(1);
	CsModel    *m = CsModelForCall(fcinfo, name);
	const float *x = CsModelFeaturesFromArray(m, features);

	PG_RETURN_FLOAT8(CsModelNativeTransform(m, CsModelNativeMargin(m, x)));
}

/* cs.model_margin(model, features): the raw margin (sum of trees) for one row. */
Datum
cs_model_margin(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	ArrayType  *features = PG_GETARG_ARRAYTYPE_P(1);
	CsModel    *m = CsModelForCall(fcinfo, name);
	const float *x = CsModelFeaturesFromArray(m, features);

	PG_RETURN_FLOAT8((double) CsModelNativeMargin(m, x));
}
