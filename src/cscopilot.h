/*
 * cscopilot.h
 *		Declarations shared between the extension's source files.
 */
#ifndef CSCOPILOT_H
#define CSCOPILOT_H

#include "postgres.h"

#include "utils/array.h"

/* features.c: the normalisation kernels of cs.interpolate and cs.percentile_rank */
extern int	ParseThresholds(ArrayType *xa, ArrayType *ya, float8 **xs, float8 **ys);
extern float8 InterpolateAt(const float8 *xs, const float8 *ys, int n, float8 x);
extern int	PopulationItems(ArrayType *arr);
extern float8 PercentileRankAt(const float8 *v, int n, float8 x);

/* health.c: pushes a key of a jsonb object being built */
struct JsonbParseState;
extern void CsJsonbPushKey(struct JsonbParseState **st, const char *key);

/* worker.c */
extern void DefineWorkerSettings(void);
extern void RegisterWorkers(void);

/* lifecycle.c */
extern void DefineLifecycleSettings(void);

/* explain.c */
extern void DefineExplainSettings(void);

#endif							/* CSCOPILOT_H */
