/*
 * model.h
 *		The server side of models: compilation with libxgboost's check
 *		(model.c), the registry (model.c), the per-backend model cache
 *		(modelcache.c) and scoring, shared by explain.c, train.c, lifecycle.c
 *		and the scoring parts of the extension.  The model structure, its
 *		parser and its evaluator are in modelcore.h, without the server.
 *
 * A CsModel returned by CsModelLookup or CsModelChampion lives in the
 * backend's model cache.  It stays valid at least until the end of the
 * current transaction, even when cs.models changes meanwhile; do not keep it
 * across transactions, look it up again instead (that is cheap).
 */
#ifndef CS_MODEL_H
#define CS_MODEL_H

#include "postgres.h"

#include "utils/array.h"

#include "modelcore.h"

/* Registry and cache */
extern CsModel *CsModelLookup(const char *name);
extern CsModel *CsModelChampion(const char *kind);
extern CsModel *CsModelBuild(const char *data, size_t len, MemoryContext parent);
extern void CsModelFree(CsModel *model);
extern int32 CsModelRegister(const char *name, const char *kind,
							 const char *data, size_t len,
							 char **feature_names, int num_names,
							 const char *metrics_json, const char *training_data);

/* Reference distributions of model inputs (lifecycle.c) */
extern char *CsFeatureReferenceJson(const float *x1, int n1, const float *x2, int n2, int nf);
extern void CsStoreReference(int32 id, const char *source, int64 rows, const char *json);

/* Scoring */
extern int	CsModelNumFeatures(CsModel *model);
extern void CsModelCheckFeatures(CsModel *model, const float *x, int n);
extern double CsModelMargin(CsModel *model, const float *x, int n);
extern double CsModelPredict(CsModel *model, const float *x, int n);
extern void CsModelContributions(CsModel *model, const float *x, int n,
								 double *contrib);
extern int	cscopilot_shap_method;
extern const float *CsModelFeaturesFromArray(CsModel *model, ArrayType *features);
extern CsModel *CsModelForCall(FunctionCallInfo fcinfo, text *name);
extern float *CsModelProbeRows(CsModel *model, int *nrows);

/* libxgboost helpers */
extern void *CsBoosterFromJson(const char *json, size_t len);
extern void CsXgbCheck(int rc, const char *what);

#endif							/* CS_MODEL_H */
