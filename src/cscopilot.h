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

/* settings.c: every cscopilot.* setting, and the variables the C code reads */
extern void DefineSettings(void);
extern bool cscopilot_enabled;
extern char *cscopilot_databases;
extern int	cscopilot_naptime;
extern int	cscopilot_batch_size;
extern int	cscopilot_full_rescore_interval;
extern int	cscopilot_max_batch_runtime;
extern int	cscopilot_max_attempts;
extern int	cscopilot_retrain_interval;

/* worker.c */
extern void RegisterWorkers(void);

#endif							/* CSCOPILOT_H */
