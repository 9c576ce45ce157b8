/*
 * xgb_batch.c
 *		Times libxgboost's batch predict (nthread = 1) of a model JSON over a
 *		CSV matrix (one row per line, NaN for missing), median of 3 runs, and
 *		prints microseconds per row.  Built and run by run_bench.sh:
 *		  cc -O2 -o xgb_batch xgb_batch.c -lxgboost && ./xgb_batch model.json rows.csv
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xgboost/c_api.h>

#define CHECK(call) do { if ((call) != 0) { fprintf(stderr, "%s: %s\n", #call, XGBGetLastError()); exit(1); } } while (0)

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	FILE	   *f;
	char	   *line = NULL;
	size_t		cap = 0;
	size_t		nrow = 0,
				ncol = 0,
				size = 1 << 20,
				n = 0;
	float	   *data = malloc(sizeof(float) * size);
	BoosterHandle bst;
	DMatrixHandle dm;
	double		times[3];
	double		sum = 0;

	if (argc != 3)
	{
		fprintf(stderr, "usage: %s model.json rows.csv\n", argv[0]);
		return 2;
	}
	f = fopen(argv[2], "r");
	if (!f)
	{
		perror(argv[2]);
		return 1;
	}
	while (getline(&line, &cap, f) > 0)
	{
		size_t		cols = 0;

		for (char *tok = strtok(line, ",\n"); tok; tok = strtok(NULL, ",\n"))
		{
			if (n == size)
				data = realloc(data, sizeof(float) * (size *= 2));
			data[n++] = strtof(tok, NULL);
			cols++;
		}
		ncol = cols;
		nrow++;
	}
	fclose(f);

	CHECK(XGBoosterCreate(NULL, 0, &bst));
	CHECK(XGBoosterLoadModel(bst, argv[1]));
	CHECK(XGBoosterSetParam(bst, "nthread", "1"));
	for (int run = -1; run < 3; run++)
	{
		bst_ulong	len;
		const float *out;
		double		t0;

		/* A new matrix each run: the booster caches predictions per matrix. */
		CHECK(XGDMatrixCreateFromMat_omp(data, nrow, ncol, NAN, &dm, 1));
		t0 = now();
		CHECK(XGBoosterPredict(bst, dm, 0, 0, 0, &len, &out));
		if (run >= 0)
			times[run] = now() - t0;
		sum = 0;
		for (bst_ulong i = 0; i < len; i++)
			sum += out[i];
		XGDMatrixFree(dm);
	}
	qsort(times, 3, sizeof(double), cmp);
	printf("libxgboost batch predict: %zu rows x %zu features, sum %.4f, median %.3f us/row\n",
		   nrow, ncol, sum, times[1] * 1e6 / nrow);
	XGBoosterFree(bst);
	return 0;
}
