/*
 * explain.c
 *		Per-feature explanations of a prediction: exact TreeSHAP contributions,
 *		as a table or as jsonb.
 *
 * Contributions are in margin space: the contributions of all features plus
 * the bias add up to the model's margin for the row.
 *
 * The contributions are computed natively over the compiled trees with the
 * same algorithm as libxgboost's pred_contribs (Lundberg et al., "Consistent
 * individualized feature attribution for tree ensembles", algorithm 2), in
 * float and in the same order of operations.  Each model is checked at its
 * first explanation: the native values must agree with libxgboost's on probe
 * rows, or that model's explanations are computed by libxgboost itself.
 * Where a model's trees are small enough, per-leaf tables make a row cheaper
 * still (see ShapTableRow).  cscopilot.shap_method chooses among the three
 * for tests and comparisons.  The native paths save libxgboost's per-call
 * cost (a matrix and a predictor per row) and its path updates.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
/* fmgrprotos.h declares a json_object() that clashes with jansson's. */
#define json_object pg_json_object
#include "utils/builtins.h"
#undef json_object
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"

#include <jansson.h>
#include <xgboost/c_api.h>

/*
 * The postgres executable exports its own json_object() (the SQL function),
 * which wins over jansson's at dynamic link time: never call json_object()
 * from here, make empty objects through json_pack (bound inside libjansson).
 */
#define CsJsonNewObject() json_pack("{}")

#include "cscopilot.h"
#include "model.h"

PG_FUNCTION_INFO_V1(cs_explain);
PG_FUNCTION_INFO_V1(cs_explain_json);

/* One feature's share, for sorting. */
typedef struct Contribution
{
	const char *feature;
	float		value;
	double		contribution;
} Contribution;

/* Deepest trees explained natively (the walk's path buffer is quadratic). */
#define SHAP_MAX_WALK_DEPTH 256

/* Largest contribution difference from libxgboost tolerated on probe rows. */
#define SHAP_PROBE_TOLERANCE 1e-5

/* One feature on the path from the root to the current node. */
typedef struct ShapPathElement
{
	int			feature;		/* -1 for the root's element */
	float		zero_fraction;	/* share of cover flowing this way */
	float		one_fraction;	/* 1 when the row goes this way, else 0 */
	float		pweight;		/* permutation weight */
} ShapPathElement;

/* Adds a feature to the path (EXTEND). */
static void
ShapExtend(ShapPathElement *path, int depth, float zero_fraction, float one_fraction, int feature)
{
	path[depth].feature = feature;
	path[depth].zero_fraction = zero_fraction;
	path[depth].one_fraction = one_fraction;
	path[depth].pweight = depth == 0 ? 1.0f : 0.0f;
	for (int i = depth - 1; i >= 0; i--)
	{
		path[i + 1].pweight += one_fraction * path[i].pweight * (float) (i + 1) / (float) (depth + 1);
		path[i].pweight = zero_fraction * path[i].pweight * (float) (depth - i) / (float) (depth + 1);
	}
}

/* Removes the path element at index from the path (UNWIND). */
static void
ShapUnwind(ShapPathElement *path, int depth, int index)
{
	const float one_fraction = path[index].one_fraction;
	const float zero_fraction = path[index].zero_fraction;
	float		next_one_portion = path[depth].pweight;

	for (int i = depth - 1; i >= 0; i--)
	{
		if (one_fraction != 0)
		{
			const float tmp = path[i].pweight;

			path[i].pweight = next_one_portion * (float) (depth + 1) / ((float) (i + 1) * one_fraction);
			next_one_portion = tmp - path[i].pweight * zero_fraction * (float) (depth - i) / (float) (depth + 1);
		}
		else
			path[i].pweight = (path[i].pweight * (float) (depth + 1)) / (zero_fraction * (float) (depth - i));
	}
	for (int i = index; i < depth; i++)
	{
		path[i].feature = path[i + 1].feature;
		path[i].zero_fraction = path[i + 1].zero_fraction;
		path[i].one_fraction = path[i + 1].one_fraction;
	}
}

/* Total permutation weight of the path if element index were unwound. */
static float
ShapUnwoundSum(const ShapPathElement *path, int depth, int index)
{
	const float one_fraction = path[index].one_fraction;
	const float zero_fraction = path[index].zero_fraction;
	float		next_one_portion = path[depth].pweight;
	float		total = 0;

	for (int i = depth - 1; i >= 0; i--)
	{
		if (one_fraction != 0)
		{
			const float tmp = next_one_portion * (float) (depth + 1) / ((float) (i + 1) * one_fraction);

			total += tmp;
			next_one_portion = path[i].pweight - tmp * zero_fraction * ((float) (depth - i) / (float) (depth + 1));
		}
		else if (zero_fraction != 0)
			total += (path[i].pweight / zero_fraction) / ((float) (depth - i) / (float) (depth + 1));
	}
	return total;
}

/*
 * TreeSHAP below node: adds each feature's contribution to phi.  parent_path
 * holds depth + 1 elements; this call's path goes right after them (the
 * buffer holds (max_depth + 2)(max_depth + 3) / 2 elements).
 */
static void
ShapRecurse(const CsModel *m, const float *x, float *phi, int node, int depth,
			ShapPathElement *parent_path, float parent_zero_fraction,
			float parent_one_fraction, int parent_feature)
{
	const CsTreeNode *nd = &m->nodes[node];
	ShapPathElement *path = parent_path + depth + 1;

	check_stack_depth();
	memcpy(path, parent_path, sizeof(ShapPathElement) * (depth + 1));
	ShapExtend(path, depth, parent_zero_fraction, parent_one_fraction, parent_feature);

	if (nd->left == node)
	{
		for (int i = 1; i <= depth; i++)
		{
			const float w = ShapUnwoundSum(path, depth, i);
			const ShapPathElement *el = &path[i];

			phi[el->feature] += w * (el->one_fraction - el->zero_fraction) * nd->leaf;
		}
	}
	else
	{
		int			feature = (int) (nd->feature & CS_NODE_FEATURE_MASK);
		float		v = x[feature];
		int			hot,
					cold;
		float		w = m->covers[node];
		float		hot_zero_fraction,
					cold_zero_fraction;
		float		incoming_zero_fraction = 1;
		float		incoming_one_fraction = 1;
		int			index;

		if (isnan(v))
			hot = (nd->feature & CS_NODE_MISSING_RIGHT) ? nd->left + 1 : nd->left;
		else
			hot = v < nd->threshold ? nd->left : nd->left + 1;
		cold = hot == nd->left ? nd->left + 1 : nd->left;
		hot_zero_fraction = m->covers[hot] / w;
		cold_zero_fraction = m->covers[cold] / w;

		/* a feature split on before: undo that split to redo it here */
		for (index = 0; index <= depth; index++)
			if (path[index].feature == feature)
				break;
		if (index <= depth)
		{
			incoming_zero_fraction = path[index].zero_fraction;
			incoming_one_fraction = path[index].one_fraction;
			ShapUnwind(path, depth, index);
			depth--;
		}
		ShapRecurse(m, x, phi, hot, depth + 1, path,
					hot_zero_fraction * incoming_zero_fraction, incoming_one_fraction, feature);
		ShapRecurse(m, x, phi, cold, depth + 1, path,
					cold_zero_fraction * incoming_zero_fraction, 0, feature);
	}
}

/*
 * Native TreeSHAP of one row of num_features values (NaN missing):
 * contrib[0..n-1] per feature and contrib[n] the bias, summed over the trees
 * in float like libxgboost's CPU predictor.
 */
static void
ShapRecursiveRow(const CsModel *m, const float *x, float *contrib)
{
	int			n = m->num_features;
	int			maxd = m->max_depth + 2;
	ShapPathElement *path = palloc(sizeof(ShapPathElement) * (maxd * (maxd + 1)) / 2);
	float	   *tree = palloc(sizeof(float) * (n + 1));

	memset(contrib, 0, sizeof(float) * (n + 1));
	for (int t = 0; t < m->num_trees; t++)
	{
		memset(tree, 0, sizeof(float) * (n + 1));
		tree[n] += m->tree_means[t];
		ShapRecurse(m, x, tree, m->roots[t], 0, path, 1, 1, -1);
		for (int i = 0; i <= n; i++)
			contrib[i] += tree[i];
	}
	contrib[n] += m->base_margin;
	pfree(path);
	pfree(tree);
}

/*
 * Per-leaf tables.
 *
 * With path-dependent expectations, a leaf l adds to the SHAP value of each
 * distinct feature k on its path
 *
 *   v_l (o_k - z_k) sum over S within A - {k} of w(|S|, d) prod_{j not in S, j != k} z_j
 *
 * where d is the number of distinct features on the path, z_j the share of
 * the training cover that follows the path at the splits on feature j, o_j is
 * 1 when the row follows the path at all of them (else 0), A = {j : o_j = 1},
 * and w(s, d) = s! (d - s - 1)! / d! (Lundberg et al., equations 2 and 4 with
 * the cover-weighted expectations of algorithm 2).  The row enters only
 * through A, so for small d all 2^d cases can be tabled once per model: a
 * row then costs one mask and d additions per leaf instead of algorithm 2's
 * O(d^2) path updates per leaf.  The tables are exact sums, computed in
 * double and stored in float (the precision of XGBoost's leaves); each
 * model's tables are checked against libxgboost on the probe rows before
 * they are used.
 */
#define SHAP_TABLE_BUDGET	(1 << 21)	/* table entries (floats) per model: 8 MB */
#define SHAP_TABLE_MAX_D	12

typedef struct ShapLeaf
{
	int32		first_edge;		/* into edges */
	int32		n_edges;
	int32		d;				/* distinct features on the path */
	int32		first_feature;	/* into features: the d features */
	int64		table;			/* into values: 2^d rows of d values */
} ShapLeaf;

typedef struct ShapEdge
{
	int32		node;			/* the split */
	int16		right;			/* the path goes right */
	int16		k;				/* distinct feature number on the leaf's path */
} ShapEdge;

typedef struct CsShapTables
{
	int32	   *tree_leaves;	/* first leaf of each tree, num_trees + 1 */
	ShapLeaf   *leaves;
	ShapEdge   *edges;
	int32	   *features;
	float	   *values;
} CsShapTables;

/* Fills the 2^d x d table of one leaf (see above). */
static void
ShapFillTable(float *out, int d, const double *z, double leaf)
{
	double		w[SHAP_TABLE_MAX_D];
	double		e[SHAP_TABLE_MAX_D + 1];

	/* w(s, d) = 1 / (d * C(d - 1, s)) */
	for (int s = 0; s < d; s++)
	{
		double		c = 1;

		for (int i = 1; i <= s; i++)
			c = c * (d - 1 - s + i) / i;
		w[s] = 1.0 / (d * c);
	}
	for (int a = 0; a < (1 << d); a++)
		for (int k = 0; k < d; k++)
		{
			int			mlen = 0;
			double		zout = 1;
			double		sum = 0;

			e[0] = 1;
			for (int j = 0; j < d; j++)
			{
				if (j == k)
					continue;
				if (a & (1 << j))
				{
					/* elementary symmetric polynomials of the z in A - {k} */
					e[mlen + 1] = 0;
					for (int i = mlen + 1; i >= 1; i--)
						e[i] += e[i - 1] * z[j];
					mlen++;
				}
				else
					zout *= z[j];
			}
			/* the subsets S of size s leave mlen - s features of A out */
			for (int s2 = 0; s2 <= mlen; s2++)
				sum += w[s2] * e[mlen - s2];
			out[(size_t) a * d + k] = (float) (leaf * ((((a >> k) & 1) ? 1.0 : 0.0) - z[k]) * zout * sum);
		}
}

/* Builds the tables of a model, or returns NULL when they would be too big. */
static CsShapTables *
ShapBuildTables(const CsModel *m)
{
	CsShapTables *tb;
	int64		n_leaves = 0,
				n_edges = 0,
				n_values = 0;
	int			maxd = m->max_depth;
	int32	   *stack_node = palloc(sizeof(int32) * (maxd + 1));
	int16	   *stack_right = palloc(sizeof(int16) * (maxd + 1));
	int32	   *stack_next = palloc(sizeof(int32) * (maxd + 1));
	int32		feat[SHAP_TABLE_MAX_D];
	double		z[SHAP_TABLE_MAX_D];
	int			pass;

	if (maxd > 62)
		return NULL;
	tb = palloc0(sizeof(CsShapTables));
	tb->tree_leaves = palloc(sizeof(int32) * (m->num_trees + 1));

	/* pass 0 sizes the arrays, pass 1 fills them */
	for (pass = 0; pass < 2; pass++)
	{
		int64		li = 0,
					ei = 0,
					fi = 0,
					vi = 0;

		if (pass == 1)
		{
			tb->leaves = palloc(sizeof(ShapLeaf) * Max(n_leaves, 1));
			tb->edges = palloc(sizeof(ShapEdge) * Max(n_edges, 1));
			tb->features = palloc(sizeof(int32) * Max(n_edges, 1));
			tb->values = palloc(sizeof(float) * Max(n_values, 1));
		}
		for (int t = 0; t < m->num_trees; t++)
		{
			int			top = 0;

			tb->tree_leaves[t] = (int32) li;
			/* depth first: stack_next is the next child to visit (0, 1, 2 = done) */
			stack_node[0] = m->roots[t];
			stack_next[0] = 0;
			while (top >= 0)
			{
				int32		node = stack_node[top];
				const CsTreeNode *nd = &m->nodes[node];

				if (nd->left == node)
				{
					int			d = 0;

					for (int i = 0; i < top; i++)
					{
						int32		f = (int32) (m->nodes[stack_node[i]].feature & CS_NODE_FEATURE_MASK);
						int32		child = m->nodes[stack_node[i]].left + stack_right[i];
						double		frac = (double) m->covers[child] / (double) m->covers[stack_node[i]];
						int			k;

						for (k = 0; k < d; k++)
							if (feat[k] == f)
								break;
						if (k == d)
						{
							if (d == SHAP_TABLE_MAX_D)
								goto too_big;
							feat[d] = f;
							z[d] = 1;
							d++;
						}
						z[k] *= frac;
						if (pass == 1)
						{
							tb->edges[ei + i].node = stack_node[i];
							tb->edges[ei + i].right = stack_right[i];
							tb->edges[ei + i].k = (int16) k;
						}
					}
					if (pass == 1)
					{
						ShapLeaf   *lf = &tb->leaves[li];

						lf->first_edge = (int32) ei;
						lf->n_edges = top;
						lf->d = d;
						lf->first_feature = (int32) fi;
						lf->table = vi;
						memcpy(tb->features + fi, feat, sizeof(int32) * d);
						ShapFillTable(tb->values + vi, d, z, (double) nd->leaf);
					}
					li++;
					ei += top;
					fi += d;
					vi += ((int64) d) << d;
					if (pass == 0 && vi > SHAP_TABLE_BUDGET)
						goto too_big;
					top--;
					continue;
				}
				if (stack_next[top] == 2)
				{
					top--;
					continue;
				}
				stack_right[top] = (int16) stack_next[top];
				stack_next[top]++;
				stack_node[top + 1] = nd->left + stack_right[top];
				stack_next[top + 1] = 0;
				top++;
			}
		}
		tb->tree_leaves[m->num_trees] = (int32) li;
		n_leaves = li;
		n_edges = ei;
		n_values = vi;
	}
	pfree(stack_node);
	pfree(stack_right);
	pfree(stack_next);
	return tb;

too_big:
	pfree(stack_node);
	pfree(stack_right);
	pfree(stack_next);
	pfree(tb->tree_leaves);
	pfree(tb);
	return NULL;
}

/* SHAP values of one row from the tables: contrib[n] is the bias. */
static void
ShapTableRow(const CsModel *m, const float *x, double *contrib)
{
	const CsShapTables *tb = m->shap;
	int			n = m->num_features;
	double		bias = m->base_margin;

	memset(contrib, 0, sizeof(double) * (n + 1));
	for (int t = 0; t < m->num_trees; t++)
	{
		bias += m->tree_means[t];
		for (int l = tb->tree_leaves[t]; l < tb->tree_leaves[t + 1]; l++)
		{
			const ShapLeaf *lf = &tb->leaves[l];
			const ShapEdge *e = &tb->edges[lf->first_edge];
			const int32 *feat = &tb->features[lf->first_feature];
			const float *row;
			uint32		mask = (1u << lf->d) - 1;

			for (int i = 0; i < lf->n_edges; i++)
			{
				const CsTreeNode *nd = &m->nodes[e[i].node];
				float		v = x[nd->feature & CS_NODE_FEATURE_MASK];
				uint32		right = (uint32) (v >= nd->threshold) |
					((uint32) isnan(v) & (nd->feature >> 31));

				/* branch free: the directions are data, hard to predict */
				mask &= ~((right ^ (uint32) e[i].right) << e[i].k);
			}
			row = tb->values + lf->table + (int64) mask * lf->d;
			for (int k = 0; k < lf->d; k++)
				contrib[feat[k]] += row[k];
		}
	}
	contrib[n] = bias;
}

/* Whether contributions agree with libxgboost's reference on every probe row. */
static bool
ShapAgrees(CsModel *m, int mode, const float *rows, int nrows, const float *ref)
{
	int			n = m->num_features;
	double	   *mine = palloc(sizeof(double) * (n + 1));
	float	   *minef = palloc(sizeof(float) * (n + 1));
	bool		agree = true;

	for (int r = 0; r < nrows && agree; r++)
	{
		const float *x = rows + (size_t) r * n;
		const float *want = ref + (size_t) r * (n + 1);

		if (mode == CS_SHAP_TABLES)
			ShapTableRow(m, x, mine);
		else
		{
			ShapRecursiveRow(m, x, minef);
			for (int i = 0; i <= n; i++)
				mine[i] = minef[i];
		}
		for (int i = 0; i <= n; i++)
			if (!(fabs(mine[i] - want[i]) <= SHAP_PROBE_TOLERANCE * Max(1.0, fabs(want[i]))))
			{
				elog(LOG, "cscopilot: %s TreeSHAP differs from libxgboost on model \"%s\" "
					 "(probe row %d, feature %d: %.9g against %.9g); it uses libxgboost",
					 mode == CS_SHAP_TABLES ? "tabled" : "native", m->name ? m->name : "(unnamed)",
					 r, i, mine[i], want[i]);
				agree = false;
				break;
			}
	}
	pfree(mine);
	pfree(minef);
	return agree;
}

/* libxgboost's contributions for rows: nrows x (n + 1) floats (palloc'd). */
static float *
ShapReference(CsModel *m, const float *rows, int nrows)
{
	int			n = m->num_features;
	DMatrixHandle dm = NULL;
	float	   *copy = palloc(sizeof(float) * (size_t) nrows * (n + 1));

	if (m->booster == NULL)
		m->booster = CsBoosterFromJson(m->json, m->json_len);
	PG_TRY();
	{
		const bst_ulong *shape = NULL;
		bst_ulong	dim = 0;
		const float *out = NULL;
		bst_ulong	total = 1;

		CsXgbCheck(XGDMatrixCreateFromMat(rows, nrows, n, NAN, &dm), "create a matrix");
		CsXgbCheck(XGBoosterPredictFromDMatrix((BoosterHandle) m->booster, dm,
											   "{\"type\": 2, \"training\": false, "
											   "\"iteration_begin\": 0, \"iteration_end\": 0, "
											   "\"strict_shape\": false}",
											   &shape, &dim, &out),
				   "compute contributions");
		for (bst_ulong d = 0; d < dim; d++)
			total *= shape[d];
		if (total != (bst_ulong) nrows * (n + 1))
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("libxgboost returned %lu contributions for %d rows of %d features",
							(unsigned long) total, nrows, n)));
		memcpy(copy, out, sizeof(float) * (size_t) nrows * (n + 1));
	}
	PG_FINALLY();
	{
		if (dm)
			XGDMatrixFree(dm);
	}
	PG_END_TRY();
	return copy;
}

/*
 * Decides, at a model's first explanation, whether a native method may
 * explain it: the per-leaf tables (when they fit) or the tree walk is used
 * only after agreeing with libxgboost on every eighth probe row of the
 * model's compile check (16 rows: random values, NaNs, split thresholds).
 * Each method is checked when it is first wanted, so a session that explains
 * with the default method pays for one check.
 */
static void
ShapCheck(CsModel *m, int mode)
{
	int			nprobe;
	float	   *probe;
	float	   *rows;
	float	   *ref;
	int			nrows = 0;
	int			n = m->num_features;
	MemoryContext old;

	if (mode == CS_SHAP_TABLES ? m->shap_tables_checked : m->shap_walk_checked)
		return;
	/* absurdly deep trees: leave them to libxgboost */
	if (m->max_depth > SHAP_MAX_WALK_DEPTH)
	{
		m->shap_tables_checked = m->shap_walk_checked = true;
		return;
	}
	/* the tables live as long as the model */
	old = MemoryContextSwitchTo(m->mcxt);
	probe = CsModelProbeRows(m, &nprobe);
	rows = palloc(sizeof(float) * (size_t) nprobe * n);
	for (int r = 0; r < nprobe; r += 8)
		memcpy(rows + (size_t) (nrows++) * n, probe + (size_t) r * n, sizeof(float) * n);
	ref = ShapReference(m, rows, nrows);
	if (mode == CS_SHAP_TABLES)
	{
		m->shap = ShapBuildTables(m);
		m->shap_tables_ok = m->shap != NULL && ShapAgrees(m, CS_SHAP_TABLES, rows, nrows, ref);
		m->shap_tables_checked = true;
	}
	else
	{
		m->shap_walk_ok = ShapAgrees(m, CS_SHAP_RECURSIVE, rows, nrows, ref);
		m->shap_walk_checked = true;
	}
	pfree(ref);
	pfree(rows);
	pfree(probe);
	MemoryContextSwitchTo(old);
}

/* SHAP contributions of one row: contrib[0..n-1] per feature, contrib[n] the bias. */
void
CsModelContributions(CsModel *model, const float *x, int n, double *contrib)
{
	float	   *c;

	CsModelCheckFeatures(model, x, n);
	/* the cheapest method the setting allows and the model passed */
	if (cscopilot_shap_method == CS_SHAP_TABLES)
		ShapCheck(model, CS_SHAP_TABLES);
	if (cscopilot_shap_method == CS_SHAP_TABLES && model->shap_tables_ok)
	{
		ShapTableRow(model, x, contrib);
		return;
	}
	if (cscopilot_shap_method != CS_SHAP_LIBXGBOOST)
		ShapCheck(model, CS_SHAP_RECURSIVE);
	if (cscopilot_shap_method != CS_SHAP_LIBXGBOOST && model->shap_walk_ok)
	{
		c = palloc(sizeof(float) * (n + 1));
		ShapRecursiveRow(model, x, c);
	}
	else
		c = ShapReference(model, x, 1);
	for (int i = 0; i <= n; i++)
		contrib[i] = c[i];
	pfree(c);
}

/* Orders by absolute contribution, largest first, then by feature name. */
static int
ContributionCmp(const void *a, const void *b)
{
	const Contribution *ca = a;
	const Contribution *cb = b;
	double		fa = fabs(ca->contribution);
	double		fb = fabs(cb->contribution);

	if (fa != fb)
		return fa > fb ? -1 : 1;
	return strcmp(ca->feature, cb->feature);
}

/* Computes and sorts the contributions of one call; returns the bias and margin. */
static Contribution *
Explain(FunctionCallInfo fcinfo, CsModel **model, double *bias, double *margin)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	ArrayType  *features = PG_GETARG_ARRAYTYPE_P(1);
	CsModel    *m = CsModelForCall(fcinfo, name);
	const float *x = CsModelFeaturesFromArray(m, features);
	int			n = m->num_features;
	double	   *contrib = palloc(sizeof(double) * (n + 1));
	Contribution *out = palloc(sizeof(Contribution) * n);

	CsModelContributions(m, x, n, contrib);
	for (int i = 0; i < n; i++)
	{
		out[i].feature = m->feature_names[i];
		out[i].value = x[i];
		out[i].contribution = contrib[i];
	}
	qsort(out, n, sizeof(Contribution), ContributionCmp);
	*bias = contrib[n];
	*margin = CsModelMargin(m, x, n);
	*model = m;
	return out;
}

/* Checks top_k and caps it at the number of features. */
static int
TopK(int32 top_k, int n)
{
	if (top_k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("top_k must be at least 1")));
	return Min(top_k, n);
}

/* cs.explain(model, features, top_k): the top_k contributions as rows. */
Datum
cs_explain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CsModel    *m;
	double		bias,
				margin;
	Contribution *c;
	int			k;

	InitMaterializedSRF(fcinfo, 0);
	c = Explain(fcinfo, &m, &bias, &margin);
	k = TopK(PG_GETARG_INT32(2), m->num_features);
	for (int i = 0; i < k; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(c[i].feature);
		values[1] = Float4GetDatum(c[i].value);
		values[2] = Float8GetDatum(c[i].contribution);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* A JSON number, or null for NaN (JSON has no NaN). */
static json_t *
JsonNumberOrNull(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

/* cs.explain_json(model, features, top_k): contributions, bias and margin as jsonb. */
Datum
cs_explain_json(PG_FUNCTION_ARGS)
{
	CsModel    *m;
	double		bias,
				margin;
	Contribution *c = Explain(fcinfo, &m, &bias, &margin);
	int			k = TopK(PG_GETARG_INT32(2), m->num_features);
	json_t	   *volatile root = NULL;
	char	   *volatile text = NULL;
	Datum		result;

	PG_TRY();
	{
		json_t	   *factors;

		root = CsJsonNewObject();
		factors = json_array();
		if (root == NULL || factors == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		json_object_set_new(root, "factors", factors);
		for (int i = 0; i < k; i++)
		{
			json_t	   *f = CsJsonNewObject();

			if (f == NULL)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			json_object_set_new(f, "feature", json_string(c[i].feature));
			json_object_set_new(f, "value", JsonNumberOrNull(c[i].value));
			json_object_set_new(f, "contribution", JsonNumberOrNull(c[i].contribution));
			json_array_append_new(factors, f);
		}
		json_object_set_new(root, "model", json_string(m->name));
		json_object_set_new(root, "version", json_integer(m->version));
		json_object_set_new(root, "bias", JsonNumberOrNull(bias));
		json_object_set_new(root, "margin", JsonNumberOrNull(margin));
		json_object_set_new(root, "prediction",
							JsonNumberOrNull(CsModelPredict(m, (const float *) ARR_DATA_PTR(PG_GETARG_ARRAYTYPE_P(1)),
															m->num_features)));
		/* Every value is float32 at heart: 9 significant digits keep it exact. */
		text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
		if (text == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		result = DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
	}
	PG_FINALLY();
	{
		if (root)
			json_decref(root);
		if (text)
			free(text);
	}
	PG_END_TRY();
	PG_RETURN_DATUM(result);
}
