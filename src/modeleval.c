/*
 * modeleval.c
 *		The native tree evaluator: margins of compiled models, and the check
 *		of a feature vector that must come before.
 *
 * Design
 * ------
 * The evaluator walks the flat arrays modelparse.c lays out exactly like
 * XGBoost's CPU predictor: float32 sums starting at base_score in margin
 * space, "x < threshold" goes left, NaN follows the default direction; the
 * objective's link is CsModelNativeTransform (modelcore.h).  model.c checks
 * every compiled model against libxgboost on probe rows before it is used.
 *
 * Nothing here reads outside the model's arrays for any model the parser
 * accepted and any vector CsModelCheckVector accepted, which is what the
 * fuzz targets check.  No server headers: see modelcore.h.
 */
#include <math.h>

#include "modelcore.h"

/*
 * Sums the trees for one row in float, like XGBoost's CPU predictor.
 *
 * Trees are walked CS_TREE_GROUP at a time in lock step, branch free: the
 * walks are independent, so the CPU overlaps their memory loads instead of
 * waiting on one chain of node loads and mispredicted branches.  A leaf
 * points to itself with an infinite threshold, so extra steps stay put.  The
 * leaves are still added in tree order, so the float sum is XGBoost's.
 */
#define CS_TREE_GROUP 8
float
CsModelNativeMargin(const CsModel *m, const float *x)
{
	const CsTreeNode *nodes = m->nodes;
	float		sum = m->base_margin;
	int			t = 0;

	for (; t + CS_TREE_GROUP <= m->num_trees; t += CS_TREE_GROUP)
	{
		int32_t		idx[CS_TREE_GROUP];
		int			steps = 0;

		for (int k = 0; k < CS_TREE_GROUP; k++)
		{
			idx[k] = m->roots[t + k];
			if (m->depths[t + k] > steps)
				steps = m->depths[t + k];
		}
		for (int d = 0; d < steps; d++)
			for (int k = 0; k < CS_TREE_GROUP; k++)
			{
				const CsTreeNode *nd = &nodes[idx[k]];
				float		v = x[nd->feature & CS_NODE_FEATURE_MASK];

				idx[k] = nd->left + ((int32_t) (v >= nd->threshold) |
									 ((int32_t) isnan(v) & (int32_t) (nd->feature >> 31)));
			}
		for (int k = 0; k < CS_TREE_GROUP; k++)
			sum += nodes[idx[k]].leaf;
	}
	for (; t < m->num_trees; t++)
	{
		int32_t		i = m->roots[t];

		for (int d = 0; d < m->depths[t]; d++)
		{
			const CsTreeNode *nd = &nodes[i];
			float		v = x[nd->feature & CS_NODE_FEATURE_MASK];

			i = nd->left + ((int32_t) (v >= nd->threshold) |
							((int32_t) isnan(v) & (int32_t) (nd->feature >> 31)));
		}
		sum += nodes[i].leaf;
	}
	return sum;
}

/*
 * Checks a feature vector of n values: CS_VECTOR_OK, CS_VECTOR_BAD_LENGTH
 * when n is not the model's feature count, or the index of the first
 * infinite value (NaN is a missing value, infinities are refused).
 */
int
CsModelCheckVector(const CsModel *m, const float *x, int n)
{
	if (n != m->num_features)
		return CS_VECTOR_BAD_LENGTH;
	for (int i = 0; i < n; i++)
		if (__builtin_expect(isinf(x[i]), 0))
			return i;
	return CS_VECTOR_OK;
}
