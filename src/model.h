/*
 * model.h
 *		The model registry and native tree evaluator (model.c) and the
 *		per-backend model cache (modelcache.c), shared by explain.c, train.c
 *		and the scoring parts of the extension.
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

/*
 * One node of a compiled tree.  Children are adjacent: a row goes to left
 * when x < threshold, to left + 1 otherwise, and a missing (NaN) value goes
 * right when CS_NODE_MISSING_RIGHT is set in feature.  A leaf has left equal
 * to its own index and an infinite threshold, and its value in leaf.
 */
typedef struct CsTreeNode
{
	float		threshold;
	int32		left;
	uint32		feature;		/* split feature (0-based) | missing-right flag */
	float		leaf;
} CsTreeNode;

/* How a model's SHAP values are computed (explain.c). */
#define CS_SHAP_LIBXGBOOST	0	/* libxgboost's pred_contribs */
#define CS_SHAP_RECURSIVE	1	/* native TreeSHAP, libxgboost's algorithm */
#define CS_SHAP_TABLES		2	/* native, from precomputed per-leaf tables */

#define CS_NODE_MISSING_RIGHT	0x80000000u
#define CS_NODE_FEATURE_MASK	0x7fffffffu

/* How the summed margin turns into a prediction. */
typedef enum CsModelLink
{
	CS_LINK_IDENTITY,
	CS_LINK_LOGISTIC
} CsModelLink;

/* A compiled model: metadata, flat tree arrays and a lazily made booster. */
typedef struct CsModel
{
	int32		id;				/* cs.models.id, or 0 when not registered */
	int32		version;
	char	   *name;
	char	   *kind;
	char	   *objective;
	char	   *stamp;			/* identifies the cs.models row version */

	int			num_features;
	char	  **feature_names;	/* num_features names, or NULL when unknown */
	bool		has_json_feature_names; /* model JSON carried feature names */

	float		base_margin;	/* base_score in margin space */
	CsModelLink link;
	int			num_trees;
	int32	   *roots;			/* index of each tree's root in nodes */
	int32	   *depths;			/* depth of each tree (0: a single leaf) */
	int			num_nodes;
	CsTreeNode *nodes;

	/* TreeSHAP (explain.c): node covers, each tree's expected value */
	float	   *covers;			/* sum_hessian of each node, as nodes */
	float	   *tree_means;		/* cover-weighted mean leaf of each tree */
	int			max_depth;		/* deepest tree */
	/* how explanations may be computed, checked at the first one (explain.c) */
	bool		shap_walk_checked;
	bool		shap_walk_ok;	/* native TreeSHAP agreed with libxgboost */
	bool		shap_tables_checked;
	bool		shap_tables_ok; /* so did the per-leaf tables */
	struct CsShapTables *shap;	/* the per-leaf tables */

	char	   *json;			/* the model as XGBoost JSON (for libxgboost) */
	size_t		json_len;
	void	   *booster;		/* BoosterHandle, freed with mcxt */

	MemoryContext mcxt;			/* owns everything above */
} CsModel;

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
