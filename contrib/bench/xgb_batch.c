/*
 * xgb_batch.c
 *		Times libxgboost's batch predict (nthread = 1) of a model JSON over a
 *		CSV matrix (one row per line, NaN for missing), median of RUNS runs
 *		(default 3), and prints microseconds per row.  Each run builds a new
 *		matrix (untimed) since the booster caches predictions per matrix.  With
 *		SCORES, also writes the predictions there, one per line, in row order.
 *		Built and run by bench.sh (section predict):
 *		  cc -O2 -o xgb_batch xgb_batch.c -lxgboost -lm
 *		  ./xgb_batch model.json rows.csv [SCORES [RUNS]]
 *		The last line is machine-readable: "secs=<median predict seconds>
 *		matrix_secs=<median matrix build seconds>".
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

static double
median(double *v, int n)
{
	qsort(v, n, sizeof(double), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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
	int			runs = argc > 4 ? atoi(argv[4]) : 3;
	double	   *times,
			   *mtimes;
	double		sum = 0;

	if (argc < 3 || argc > 5 || runs < 1)
	{
		fprintf(stderr, "usage: %s model.json rows.csv [scores.out [runs]]\n", argv[0]);
		return 2;
	}
	times = malloc(sizeof(double) * runs);
	mtimes = malloc(sizeof(double) * runs);
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
	for (int run = -1; run < runs; run++)
	{
		bst_ulong	len;
		const float *out;
		double		t0,
					t1;

		/* A new matrix each run: the booster caches predictions per matrix. */
		t0 = now();
		CHECK(XGDMatrixCreateFromMat_omp(data, nrow, ncol, NAN, &dm, 1));
		t1 = now();
		CHECK(XGBoosterPredict(bst, dm, 0, 0, 0, &len, &out));
		if (run >= 0)
		{
			times[run] = now() - t1;
			mtimes[run] = t1 - t0;
		}
		sum = 0;
		for (bst_ulong i = 0; i < len; i++)
			sum += out[i];
		if (run == -1 && argc > 3)
		{
			FILE	   *s = fopen(argv[3], "w");

			if (!s)
			{
				perror(argv[3]);
				return 1;
			}
			for (bst_ulong i = 0; i < len; i++)
				fprintf(s, "%.17g\n", (double) out[i]);
			fclose(s);
		}
		XGDMatrixFree(dm);
	}
	{
		double		t = median(times, runs),
					mt = median(mtimes, runs);

		printf("libxgboost batch predict: %zu rows x %zu features, sum %.4f, median %.3f us/row (matrix build %.3f us/row)\n",
			   nrow, ncol, sum, t * 1e6 / nrow, mt * 1e6 / nrow);
		printf("secs=%.6f matrix_secs=%.6f\n", t, mt);
	}
	XGBoosterFree(bst);
	return 0;
}
