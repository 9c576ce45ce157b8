/*
 * fuzz_model.c: libFuzzer targets over the model parsing code of src/model.c.
 *
 *   FUZZ_UBJ    the bounds-checked UBJ reader (UbjDecode)
 *   FUZZ_MODEL  model bytes, JSON or UBJ, through the same checks and
 *               compilation as cs.load_model, then the native evaluator on
 *               feature vectors with NaN, infinities, huge values and the
 *               input's own bytes as floats, the last one passed as a float4[]
 *               of 0, 1 or 2 dimensions through CsModelFeaturesFromArray
 *               (cs.predict's path)
 *
 * src/model.c is included whole so that its static functions are reachable;
 * pg_shim.c stands in for the server.  libxgboost is not called: it is
 * third-party code, and cs.load_model only hands it models that passed the
 * checks fuzzed here.  An ereport(ERROR) is an expected outcome; a crash, a
 * sanitizer report or a leak is a finding.
 */
#include "../../src/model.c"

extern void ShimResetAll(void);
extern int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef FUZZ_UBJ
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t	   *volatile root = NULL;

	PG_TRY();
	{
		root = UbjDecode((const char *) data, size);
	}
	PG_CATCH();
	{
		root = NULL;
	}
	PG_END_TRY();
	if (root)
		json_decref(root);
	ShimResetAll();
	return 0;
}
#endif

#ifdef FUZZ_MODEL
/* Evaluates the compiled model on one feature vector; errors are expected. */
static void
Evaluate(CsModel *m, const float *x)
{
	PG_TRY();
	{
		double		margin = CsModelMargin(m, x, m->num_features);
		double		p = CsModelPredict(m, x, m->num_features);

		(void) margin;
		(void) p;
	}
	PG_CATCH();
	{
	}
	PG_END_TRY();
}

/* A float4[] as the server would pass it: ndim 0, 1 or 2 (n x 1). */
static ArrayType *
FeatureArray(const float *x, int n, int ndim)
{
	Size		nbytes = ARR_OVERHEAD_NONULLS(ndim) + sizeof(float) * (ndim == 0 ? 0 : n);
	ArrayType  *a = palloc0(nbytes);

	SET_VARSIZE(a, nbytes);
	a->ndim = ndim;
	a->dataoffset = 0;
	a->elemtype = FLOAT4OID;
	if (ndim >= 1)
	{
		ARR_DIMS(a)[0] = n;
		ARR_LBOUND(a)[0] = 1;
		if (ndim == 2)
		{
			ARR_DIMS(a)[1] = 1;
			ARR_LBOUND(a)[1] = 1;
		}
		memcpy(ARR_DATA_PTR(a), x, sizeof(float) * n);
	}
	return a;
}

/* cs.predict's path: the array checks, then the evaluator. */
static void
EvaluateArray(CsModel *m, ArrayType *a)
{
	PG_TRY();
	{
		const float *x = CsModelFeaturesFromArray(m, a);

		(void) NativeMargin(m, x);
	}
	PG_CATCH();
	{
	}
	PG_END_TRY();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t	   *volatile root = NULL;
	CsModel    *volatile m = NULL;
	MemoryContext mcxt;
	const char *d = (const char *) data;
	size_t		i = 0;

	while (i < size && isspace((unsigned char) d[i]))
		i++;
	if (i >= size || d[i] != '{')
		return 0;				/* CsModelBuild rejects this up front */

	mcxt = AllocSetContextCreate(TopMemoryContext, "fuzz model", ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		size_t		j = i + 1;

		MemoryContextSwitchTo(mcxt);
		m = palloc0(sizeof(CsModel));
		m->mcxt = mcxt;
		/* the same JSON-or-UBJ decision as CsModelBuild */
		while (j < size && isspace((unsigned char) d[j]))
			j++;
		if (j < size && (d[j] == '"' || d[j] == '}' || j > i + 1))
		{
			json_error_t jerr;

			root = json_loadb(d, size, JSON_REJECT_DUPLICATES, &jerr);
			if (root == NULL)
				ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("could not parse model JSON")));
		}
		else
			root = UbjDecode(d, size);
		CompileModelJson(m, root);
	}
	PG_CATCH();
	{
		m = NULL;
	}
	PG_END_TRY();
	if (root)
		json_decref(root);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "model: %s\n", m ? psprintf("%d features, %d trees", m->num_features, m->num_trees) : "rejected");

	if (m != NULL && m->num_features > 0 && m->num_features <= 100000)
	{
		int			n = m->num_features;
		float	   *x = palloc(sizeof(float) * n);
		const float specials[] = {0.0f, NAN, 1e30f, -1e30f, 1.0f, -1.0f, FLT_MIN, 0.5f};

		for (int k = 0; k < 8; k++)
		{
			for (int f = 0; f < n; f++)
				x[f] = specials[(k + f * (k + 1)) % 8];
			Evaluate(m, x);
		}
		/* the input's own bytes as floats: any bit pattern, infinities included */
		for (int f = 0; f < n; f++)
		{
			uint32		bits = 0;

			for (int b = 0; b < 4; b++)
				bits = (bits << 8) | data[(f * 4 + b) % size];
			memcpy(&x[f], &bits, sizeof(float));
		}
		Evaluate(m, x);
		EvaluateArray(m, FeatureArray(x, n, data[size - 1] % 3));
		/* one feature short: the count check must catch it before the evaluator reads */
		EvaluateArray(m, FeatureArray(x, n - 1, 1));
	}
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextDelete(mcxt);
	ShimResetAll();
	return 0;
}
#endif
