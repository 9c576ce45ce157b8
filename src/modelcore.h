/*
 * modelcore.h
 *		The compiled model, its parser (modelparse.c) and its evaluator
 *		(modeleval.c): the part of the model code that does not need the
 *		server.
 *
 * This header includes no PostgreSQL header, and neither do modelparse.c and
 * modeleval.c: the fuzz targets (test/fuzz) link those two objects as they
 * are.  So nothing here raises an error or pallocs:
 *
 * - errors come back as a status and a CsModelError holding the message,
 *   detail and hint; model.c turns them into ereport with the SQLSTATE the
 *   status names;
 * - what the parser returns in the CsModel (node arrays, names, the JSON for
 *   libxgboost) comes from a CsAllocator the caller supplies, and must not
 *   raise an error either (model.c: palloc with MCXT_ALLOC_NO_OOM into the
 *   model's context, so an ERROR later frees it with the context);
 * - everything else (jansson values, work arrays) is malloc'd and freed
 *   before the parser returns, on every path.
 *
 * The CsModel structure is shared with the server side: the fields under
 * "server side" are filled and used by model.c, modelcache.c and explain.c
 * only, so they are typed without the server headers (mcxt is a
 * MemoryContext).
 */
#ifndef CS_MODELCORE_H
#define CS_MODELCORE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One node of a compiled tree.  Children are adjacent: a row goes to left
 * when x < threshold, to left + 1 otherwise, and a missing (NaN) value goes
 * right when CS_NODE_MISSING_RIGHT is set in feature.  A leaf has left equal
 * to its own index and an infinite threshold, and its value in leaf.
 */
typedef struct CsTreeNode
{
	float		threshold;
	int32_t		left;
	uint32_t	feature;		/* split feature (0-based) | missing-right flag */
	float		leaf;
} CsTreeNode;

#define CS_NODE_MISSING_RIGHT	0x80000000u
#define CS_NODE_FEATURE_MASK	0x7fffffffu

/* How a model's SHAP values are computed (explain.c). */
#define CS_SHAP_LIBXGBOOST	0	/* libxgboost's pred_contribs */
#define CS_SHAP_RECURSIVE	1	/* native TreeSHAP, libxgboost's algorithm */
#define CS_SHAP_TABLES		2	/* native, from precomputed per-leaf tables */

/* The parser's limits: larger models are refused. */
#define CS_MODEL_MAX_FEATURES	100000
#define CS_MODEL_MAX_TREES		1000000
#define CS_MODEL_MAX_TREE_NODES (1 << 24)

/* How the summed margin turns into a prediction. */
typedef enum CsModelLink
{
	CS_LINK_IDENTITY,
	CS_LINK_LOGISTIC,
	CS_LINK_EXP					/* survival:aft: a predicted time */
} CsModelLink;

/* The distribution of the AFT error term (survival:aft). */
typedef enum CsAftDistribution
{
	CS_AFT_NORMAL,
	CS_AFT_LOGISTIC,
	CS_AFT_EXTREME
} CsAftDistribution;

/* A compiled model: metadata, flat tree arrays and a lazily made booster. */
typedef struct CsModel
{
	/* filled by the parser (CsModelParse) */
	char	   *objective;
	int			num_features;
	char	  **feature_names;	/* num_features names, or NULL when unknown */
	bool		has_json_feature_names; /* model JSON carried feature names */

	float		base_margin;	/* base_score in margin space */
	CsModelLink link;
	/* survival:aft: ln T = margin + aft_scale * Z, Z of aft_distribution */
	CsAftDistribution aft_distribution;
	double		aft_scale;
	int			num_trees;
	int32_t    *roots;			/* index of each tree's root in nodes */
	int32_t    *depths;			/* depth of each tree (0: a single leaf) */
	int			num_nodes;
	CsTreeNode *nodes;

	/* TreeSHAP (explain.c): node covers, each tree's expected value */
	float	   *covers;			/* sum_hessian of each node, as nodes */
	float	   *tree_means;		/* cover-weighted mean leaf of each tree */
	int			max_depth;		/* deepest tree */

	char	   *json;			/* the model as XGBoost JSON (for libxgboost) */
	size_t		json_len;

	/* server side (model.c, modelcache.c, explain.c) */
	int32_t		id;				/* cs.models.id, or 0 when not registered */
	int32_t		version;
	char	   *name;
	char	   *kind;
	char	   *stamp;			/* identifies the cs.models row version */
	/* how explanations may be computed, checked at the first one (explain.c) */
	bool		shap_walk_checked;
	bool		shap_walk_ok;	/* native TreeSHAP agreed with libxgboost */
	bool		shap_tables_checked;
	bool		shap_tables_ok; /* so did the per-leaf tables */
	struct CsShapTables *shap;	/* the per-leaf tables */
	void	   *booster;		/* BoosterHandle, freed with mcxt */
	/* the encoding of named columns (encode.c), read at first use */
	bool		encoding_loaded;
	void	   *encoding;		/* CsEncoding in mcxt, NULL when none */
	struct MemoryContextData *mcxt; /* owns everything above */
} CsModel;

/* What went wrong; model.c maps each to its SQLSTATE. */
typedef enum CsModelStatus
{
	CS_MODEL_OK = 0,
	CS_MODEL_INVALID,			/* invalid_binary_representation */
	CS_MODEL_UNSUPPORTED,		/* feature_not_supported */
	CS_MODEL_NO_MEMORY			/* out_of_memory */
} CsModelStatus;

/* An error as ereport would report it; empty detail or hint means none. */
typedef struct CsModelError
{
	CsModelStatus status;
	char		message[1024];
	char		detail[1024];
	char		hint[512];
} CsModelError;

/*
 * Memory for the parser's results.  alloc returns size bytes, or NULL when
 * there is no memory; it must return (never longjmp), and the caller frees
 * what it handed out.
 */
typedef struct CsAllocator
{
	void	   *(*alloc) (void *arg, size_t size);
	void	   *arg;
} CsAllocator;

/* Parser (modelparse.c) */
extern CsModelStatus CsModelParse(CsModel *m, const char *data, size_t len,
								  const CsAllocator *alloc, CsModelError *err);
extern struct json_t *CsUbjDecode(const char *data, size_t len, CsModelError *err);

/*
 * Evaluator (modeleval.c).  Hidden: cs_predict calls it directly, not through
 * the shared library's PLT, as when it was static in the same file.
 */
#define CS_HIDDEN __attribute__((visibility("hidden")))
extern CS_HIDDEN float CsModelNativeMargin(const CsModel *m, const float *x);
extern CS_HIDDEN int CsModelCheckVector(const CsModel *m, const float *x, int n);

/* CsModelCheckVector's verdicts besides the index of an infinite value. */
#define CS_VECTOR_OK			(-1)
#define CS_VECTOR_BAD_LENGTH	(-2)

/* Applies the objective's link to a margin, in float like XGBoost. */
static inline double
CsModelNativeTransform(const CsModel *m, float margin)
{
	if (m->link == CS_LINK_LOGISTIC)
		return (double) (1.0f / (1.0f + expf(-margin)));
	if (m->link == CS_LINK_EXP)
		return (double) expf(margin);
	return (double) margin;
}

/*
 * survival:aft: the probability that the time is at most t (t > 0, in the
 * label's unit) given the margin, the CDF of the AFT distribution at
 * (ln t - margin) / scale, in double (xgboost's aft_loss.h).
 */
static inline double
CsAftCdf(CsAftDistribution dist, double scale, double margin, double t)
{
	double		z;

	if (!(t > 0))
		return 0.0;
	if (isinf(t))
		return 1.0;
	z = (log(t) - margin) / scale;
	switch (dist)
	{
		case CS_AFT_LOGISTIC:
			return 1.0 / (1.0 + exp(-z));
		case CS_AFT_EXTREME:
			return 1.0 - exp(-exp(z));
		case CS_AFT_NORMAL:
		default:
			return 0.5 * erfc(-z / sqrt(2.0));
	}
}

#endif							/* CS_MODELCORE_H */
