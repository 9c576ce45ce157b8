/*
 * fuzz_model.c: libFuzzer targets over the model parser and evaluator,
 * linked with src/modelparse.o and src/modeleval.o as they are built: no
 * server, no stubs (those files include no PostgreSQL header, modelcore.h).
 *
 *   FUZZ_UBJ    the bounds-checked UBJ reader (CsUbjDecode)
 *   FUZZ_MODEL  model bytes, JSON or UBJ, through the same checks and
 *               compilation as cs.load_model (CsModelParse), then the native
 *               evaluator on feature vectors with NaN, infinities, huge
 *               values and the input's own bytes as floats, each behind
 *               cs.predict's vector check (CsModelCheckVector), one of them
 *               a feature short
 *
 * The parser's results come from an allocator that records every block, so
 * a run frees them all and LeakSanitizer sees any jansson value or work
 * array the parser failed to free.  libxgboost is not called: it is
 * third-party code, and cs.load_model only hands it models that passed the
 * checks fuzzed here.  A refused model is an expected outcome; a crash, a
 * sanitizer report or a leak is a finding.
 */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "modelcore.h"

extern int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef FUZZ_UBJ
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	CsModelError err;
	json_t	   *root = CsUbjDecode((const char *) data, size, &err);

	if (root == NULL && (err.status != CS_MODEL_INVALID || err.message[0] == '\0'))
		abort();				/* a refusal always says why */
	if (root)
		json_decref(root);
	return 0;
}
#endif

#ifdef FUZZ_MODEL
/* Every block the parser's allocator handed out during one input. */
typedef struct Arena
{
	void	  **blocks;
	size_t		n;
	size_t		cap;
} Arena;

/* The parser's allocator: malloc, remembered for ArenaFree. */
static void *
ArenaAlloc(void *arg, size_t size)
{
	Arena	   *a = arg;
	void	   *p;

	if (a->n == a->cap)
	{
		size_t		cap = a->cap ? a->cap * 2 : 64;
		void	  **blocks = realloc(a->blocks, sizeof(void *) * cap);

		if (blocks == NULL)
			return NULL;
		a->blocks = blocks;
		a->cap = cap;
	}
	p = malloc(size);
	if (p != NULL)
		a->blocks[a->n++] = p;
	return p;
}

/* Frees every block of the arena and the arena's list. */
static void
ArenaFree(Arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->blocks[i]);
	free(a->blocks);
}

/* Evaluates the compiled model on n values when cs.predict's check lets them through. */
static void
Evaluate(const CsModel *m, const float *x, int n)
{
	volatile double p;

	if (CsModelCheckVector(m, x, n) != CS_VECTOR_OK)
		return;
	p = CsModelNativeTransform(m, CsModelNativeMargin(m, x));
	(void) p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Arena		arena = {NULL, 0, 0};
	CsAllocator alloc = {ArenaAlloc, &arena};
	CsModelError err;
	CsModel		m;
	bool		ok;

	memset(&m, 0, sizeof(m));
	ok = CsModelParse(&m, (const char *) data, size, &alloc, &err) == CS_MODEL_OK;
	if (!ok && err.message[0] == '\0')
		abort();				/* a refusal always says why */
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "model: %d features, %d trees%s%s\n", m.num_features, m.num_trees,
				ok ? "" : ", rejected: ", ok ? "" : err.message);

	if (ok)
	{
		int			n = m.num_features;
		float	   *x = malloc(sizeof(float) * n);
		const float specials[] = {0.0f, NAN, 1e30f, -1e30f, 1.0f, -1.0f, FLT_MIN, 0.5f};

		if (n < 1 || n > CS_MODEL_MAX_FEATURES || m.json == NULL || strlen(m.json) != m.json_len)
			abort();			/* the parser promised these */
		for (int k = 0; k < 8; k++)
		{
			for (int f = 0; f < n; f++)
				x[f] = specials[(k + f * (k + 1)) % 8];
			Evaluate(&m, x, n);
		}
		/* the input's own bytes as floats: any bit pattern, infinities included */
		for (int f = 0; f < n; f++)
		{
			uint32_t	bits = 0;

			for (int b = 0; b < 4; b++)
				bits = (bits << 8) | data[(f * 4 + b) % size];
			memcpy(&x[f], &bits, sizeof(float));
		}
		Evaluate(&m, x, n);
		/* one feature short: the check must refuse it before the evaluator reads */
		if (CsModelCheckVector(&m, x, n - 1) != CS_VECTOR_BAD_LENGTH)
			abort();
		free(x);
	}
	ArenaFree(&arena);
	return 0;
}
#endif
