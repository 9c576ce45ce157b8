/*
 * model.c
 *		Model compilation, the native tree evaluator, the registry and
 *		cs.predict; the per-backend model cache is in modelcache.c.
 *
 * Design
 * ------
 * Models are stored in cs.models as the bytes users gave (XGBoost JSON or
 * UBJ).  Before a model is used it is compiled: the JSON (UBJ is decoded by a
 * bounds-checked reader here, libxgboost's own UBJ reader is not safe on
 * truncated input) is checked field by field with jansson and flattened into
 * one array of nodes plus the root of every tree.  The native evaluator walks
 * those arrays exactly like XGBoost's CPU predictor: float32 sums starting at
 * base_score in margin space, "x < threshold" goes left, NaN follows the
 * default direction, then the objective's link.
 *
 * Every compile also loads the model into libxgboost (only JSON that passed
 * the checks reaches it) and compares both on probe rows: random rows from a
 * fixed seed, with NaNs and with values equal to and next to every split
 * threshold.  A model they disagree on is refused, so cs.predict never
 * silently differs from XGBoost.
 *
 * Compiled models are cached per backend (modelcache.c), so the per-row
 * path of cs.predict is: find the call site's model, detoast the array,
 * check it, walk the trees.
 *
 * libxgboost is never touched in the postmaster (OpenMP after fork hangs):
 * everything here runs lazily in backends, with nthread = 1.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/array.h"
/* fmgrprotos.h declares a json_object() that clashes with jansson's. */
#define json_object pg_json_object
#include "utils/builtins.h"
#undef json_object
#include "utils/memutils.h"

#include <jansson.h>
#include <xgboost/c_api.h>

/*
 * The postgres executable exports its own json_object() (the SQL function),
 * which wins over jansson's at dynamic link time: never call json_object()
 * from here, make empty objects through json_pack (bound inside libjansson).
 */
#define CsJsonNewObject() json_pack("{}")

#include "model.h"

#define UBJ_MAX_DEPTH 64
#define PROBE_RANDOM_ROWS 64
#define PROBE_THRESHOLD_ROWS 64
#define PROBE_TOLERANCE 1e-6

PG_FUNCTION_INFO_V1(cs_load_model);
PG_FUNCTION_INFO_V1(cs_load_model_file);
PG_FUNCTION_INFO_V1(cs_predict);
PG_FUNCTION_INFO_V1(cs_model_margin);

/* Supported objectives and how their base_score and output are linked. */
typedef struct ObjectiveInfo
{
	const char *name;
	bool		logit_base;		/* base_score is a probability */
	CsModelLink link;
} ObjectiveInfo;

static const ObjectiveInfo Objectives[] = {
	{"binary:logistic", true, CS_LINK_LOGISTIC},
	{"reg:logistic", true, CS_LINK_LOGISTIC},
	{"binary:logitraw", false, CS_LINK_IDENTITY},
	{"reg:squarederror", false, CS_LINK_IDENTITY},
};

/* ------------------------------------------------------------------------
 * libxgboost helpers
 * ------------------------------------------------------------------------
 */

/* Raises an error carrying libxgboost's message when a call failed. */
void
CsXgbCheck(int rc, const char *what)
{
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("libxgboost failed to %s", what),
				 errdetail("%s", XGBGetLastError())));
}

/* Frees a booster when its model's memory context goes away. */
static void
BoosterFreeCallback(void *arg)
{
	CsModel    *model = (CsModel *) arg;

	if (model->booster)
		XGBoosterFree((BoosterHandle) model->booster);
	model->booster = NULL;
}

/* Creates a single-threaded booster from model JSON the caller has checked. */
void *
CsBoosterFromJson(const char *json, size_t len)
{
	BoosterHandle h = NULL;

	CsXgbCheck(XGBoosterCreate(NULL, 0, &h), "create a booster");
	if (XGBoosterLoadModelFromBuffer(h, json, len) != 0 ||
		XGBoosterSetParam(h, "nthread", "1") != 0)
	{
		char	   *msg = pstrdup(XGBGetLastError());

		XGBoosterFree(h);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("libxgboost could not load the model"),
				 errdetail("%s", msg)));
	}
	return h;
}

/* ------------------------------------------------------------------------
 * UBJ decoding (bounds-checked) into jansson values
 * ------------------------------------------------------------------------
 */

typedef struct UbjReader
{
	const uint8 *p;
	const uint8 *end;
	const char *error;
} UbjReader;

static json_t *UbjValue(UbjReader *r, uint8 marker, int depth);

/* Reads n raw bytes, or fails when fewer remain. */
static const uint8 *
UbjTake(UbjReader *r, size_t n)
{
	const uint8 *p = r->p;

	if ((size_t) (r->end - r->p) < n)
	{
		r->error = "unexpected end of data";
		return NULL;
	}
	r->p += n;
	return p;
}

/* Reads a big-endian unsigned integer of n bytes. */
static bool
UbjBigEndian(UbjReader *r, int n, uint64 *out)
{
	const uint8 *p = UbjTake(r, n);
	uint64		v = 0;

	if (p == NULL)
		return false;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	*out = v;
	return true;
}

/* Reads an integer of the given marker type. */
static bool
UbjInteger(UbjReader *r, uint8 marker, int64 *out)
{
	uint64		v;

	switch (marker)
	{
		case 'i':
			if (!UbjBigEndian(r, 1, &v))
				return false;
			*out = (int8) v;
			return true;
		case 'U':
			if (!UbjBigEndian(r, 1, &v))
				return false;
			*out = (uint8) v;
			return true;
		case 'I':
			if (!UbjBigEndian(r, 2, &v))
				return false;
			*out = (int16) v;
			return true;
		case 'l':
			if (!UbjBigEndian(r, 4, &v))
				return false;
			*out = (int32) v;
			return true;
		case 'L':
			if (!UbjBigEndian(r, 8, &v))
				return false;
			*out = (int64) v;
			return true;
		default:
			r->error = "expected an integer marker";
			return false;
	}
}

/* Reads a length (marker and integer), checking it against what remains. */
static bool
UbjLength(UbjReader *r, size_t *out)
{
	const uint8 *m = UbjTake(r, 1);
	int64		v;

	if (m == NULL || !UbjInteger(r, *m, &v))
		return false;
	if (v < 0 || (uint64) v > (uint64) (r->end - r->p))
	{
		r->error = "length out of range";
		return false;
	}
	*out = (size_t) v;
	return true;
}

/* Reads an array or object header: optional $type and #count. */
static bool
UbjContainerHeader(UbjReader *r, uint8 *type, int64 *count)
{
	*type = 0;
	*count = -1;
	if (r->p < r->end && *r->p == '$')
	{
		const uint8 *t;

		r->p++;
		if ((t = UbjTake(r, 1)) == NULL)
			return false;
		*type = *t;
		if (r->p >= r->end || *r->p != '#')
		{
			r->error = "typed container without count";
			return false;
		}
	}
	if (r->p < r->end && *r->p == '#')
	{
		size_t		n;

		r->p++;
		if (!UbjLength(r, &n))
			return false;
		*count = n;
	}
	return true;
}

/* Reads an array after its '['. */
static json_t *
UbjArray(UbjReader *r, int depth)
{
	uint8		type;
	int64		count;
	json_t	   *arr;

	if (!UbjContainerHeader(r, &type, &count))
		return NULL;
	arr = json_array();
	if (arr == NULL)
	{
		r->error = "out of memory";
		return NULL;
	}
	for (int64 i = 0; count < 0 || i < count; i++)
	{
		const uint8 *m;
		json_t	   *v;

		if (count < 0)
		{
			if (r->p >= r->end)
			{
				r->error = "unterminated array";
				json_decref(arr);
				return NULL;
			}
			if (*r->p == ']')
			{
				r->p++;
				break;
			}
		}
		if (type)
			v = UbjValue(r, type, depth + 1);
		else if ((m = UbjTake(r, 1)) == NULL)
			v = NULL;
		else
			v = UbjValue(r, *m, depth + 1);
		if (v == NULL || json_array_append_new(arr, v) != 0)
		{
			if (r->error == NULL)
				r->error = "out of memory";
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* Reads an object after its '{'. */
static json_t *
UbjObject(UbjReader *r, int depth)
{
	uint8		type;
	int64		count;
	json_t	   *obj;

	if (!UbjContainerHeader(r, &type, &count))
		return NULL;
	obj = CsJsonNewObject();
	if (obj == NULL)
	{
		r->error = "out of memory";
		return NULL;
	}
	for (int64 i = 0; count < 0 || i < count; i++)
	{
		size_t		klen;
		const uint8 *k;
		const uint8 *m;
		char	   *key;
		json_t	   *v;

		if (count < 0)
		{
			if (r->p >= r->end)
			{
				r->error = "unterminated object";
				json_decref(obj);
				return NULL;
			}
			if (*r->p == '}')
			{
				r->p++;
				break;
			}
		}
		if (!UbjLength(r, &klen) || (k = UbjTake(r, klen)) == NULL)
		{
			json_decref(obj);
			return NULL;
		}
		if (type)
			v = UbjValue(r, type, depth + 1);
		else if ((m = UbjTake(r, 1)) == NULL)
			v = NULL;
		else
			v = UbjValue(r, *m, depth + 1);
		if (v == NULL)
		{
			json_decref(obj);
			return NULL;
		}
		key = pnstrdup((const char *) k, klen);
		/* json_object_set_new takes v even when it fails; a NUL in the key never gets there */
		if (strlen(key) != klen)
			json_decref(v);
		if (strlen(key) != klen || json_object_set_new(obj, key, v) != 0)
		{
			pfree(key);
			r->error = "invalid object key";
			json_decref(obj);
			return NULL;
		}
		pfree(key);
	}
	return obj;
}

/* Reads one value whose marker has been read. */
static json_t *
UbjValue(UbjReader *r, uint8 marker, int depth)
{
	uint64		bits;
	int64		iv;

	if (depth > UBJ_MAX_DEPTH)
	{
		r->error = "nesting too deep";
		return NULL;
	}
	switch (marker)
	{
		case 'Z':
			return json_null();
		case 'T':
			return json_true();
		case 'F':
			return json_false();
		case 'i':
		case 'U':
		case 'I':
		case 'l':
		case 'L':
			if (!UbjInteger(r, marker, &iv))
				return NULL;
			return json_integer(iv);
		case 'd':
			{
				uint32		b32;
				float		f;

				if (!UbjBigEndian(r, 4, &bits))
					return NULL;
				b32 = (uint32) bits;
				memcpy(&f, &b32, sizeof(f));
				if (isnan(f) || isinf(f))
				{
					r->error = "non-finite number";
					return NULL;
				}
				return json_real((double) f);
			}
		case 'D':
			{
				double		d;

				if (!UbjBigEndian(r, 8, &bits))
					return NULL;
				memcpy(&d, &bits, sizeof(d));
				if (isnan(d) || isinf(d))
				{
					r->error = "non-finite number";
					return NULL;
				}
				return json_real(d);
			}
		case 'C':
			{
				const uint8 *c = UbjTake(r, 1);

				if (c == NULL)
					return NULL;
				return json_stringn((const char *) c, 1);
			}
		case 'S':
			{
				size_t		len;
				const uint8 *s;
				json_t	   *v;

				if (!UbjLength(r, &len) || (s = UbjTake(r, len)) == NULL)
					return NULL;
				v = json_stringn((const char *) s, len);
				if (v == NULL)
					r->error = "invalid UTF-8 in string";
				return v;
			}
		case '[':
			return UbjArray(r, depth);
		case '{':
			return UbjObject(r, depth);
		default:
			r->error = "unknown or unsupported marker";
			return NULL;
	}
}

/* Decodes UBJ bytes into a jansson value, or raises invalid_binary_representation. */
static json_t *
UbjDecode(const char *data, size_t len)
{
	UbjReader	r;
	json_t	   *root;
	const uint8 *m;

	r.p = (const uint8 *) data;
	r.end = r.p + len;
	r.error = NULL;
	m = UbjTake(&r, 1);
	root = m ? UbjValue(&r, *m, 0) : NULL;
	if (root != NULL && r.p != r.end)
	{
		json_decref(root);
		root = NULL;
		r.error = "trailing bytes after the model";
	}
	if (root == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("could not decode model UBJ"),
				 errdetail("Decoding stopped at byte %d of %zu: %s.",
						   (int) ((const char *) r.p - data), len,
						   r.error ? r.error : "unknown error")));
	return root;
}

/* ------------------------------------------------------------------------
 * Model JSON checks and compilation
 * ------------------------------------------------------------------------
 */

/* Raises the error for a model JSON that lacks or misshapes a field. */
static void pg_attribute_noreturn()
ModelJsonError(const char *path, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("model JSON is not a valid XGBoost model"),
			 errdetail("Field %s is missing or is not %s.", path, expected)));
}

/* Returns a member that must be an object. */
static json_t *
JsonObjectMember(json_t *obj, const char *key, const char *path)
{
	json_t	   *v = json_object_get(obj, key);

	if (!json_is_object(v))
		ModelJsonError(path, "an object");
	return v;
}

/* Returns a member that must be an array of exactly n elements (n < 0: any). */
static json_t *
JsonArrayMember(json_t *obj, const char *key, const char *path, int64 n)
{
	json_t	   *v = json_object_get(obj, key);

	if (!json_is_array(v) || (n >= 0 && (int64) json_array_size(v) != n))
		ModelJsonError(path, n >= 0 ? "an array of one element per node" : "an array");
	return v;
}

/* Returns an integer stored as a JSON integer or a decimal string. */
static int64
JsonIntMember(json_t *obj, const char *key, const char *path, int64 missing)
{
	json_t	   *v = json_object_get(obj, key);
	char	   *end;
	long long	n;

	if (v == NULL)
	{
		if (missing == PG_INT64_MIN)
			ModelJsonError(path, "an integer");
		return missing;
	}
	if (json_is_integer(v))
		return json_integer_value(v);
	if (!json_is_string(v))
		ModelJsonError(path, "an integer");
	errno = 0;
	n = strtoll(json_string_value(v), &end, 10);
	if (errno != 0 || end == json_string_value(v) || *end != '\0')
		ModelJsonError(path, "an integer");
	return n;
}

/* Returns a JSON array element as a number, for node arrays. */
static double
JsonNumberAt(json_t *arr, size_t i, const char *path)
{
	json_t	   *v = json_array_get(arr, i);

	if (json_is_number(v))
		return json_number_value(v);
	if (json_is_boolean(v))
		return json_is_true(v) ? 1 : 0;
	ModelJsonError(path, "an array of numbers");
}

/* A node as XGBoost stores it, before layout. */
typedef struct RawNode
{
	float		value;
	int32		left;
	int32		right;
	int32		feature;
	int32		parent;
	bool		default_left;
	float		cover;			/* sum_hessian */
} RawNode;

/* Checks one tree and appends its nodes to the model's node array. */
static void
CompileTree(CsModel *m, json_t *tree, int t, int *capacity)
{
	json_t	   *param = JsonObjectMember(tree, "tree_param", "trees[].tree_param");
	int64		n = JsonIntMember(param, "num_nodes", "trees[].tree_param.num_nodes", PG_INT64_MIN);
	int64		leafvec = JsonIntMember(param, "size_leaf_vector", "trees[].tree_param.size_leaf_vector", 0);
	static const char *const catfields[] = {"categories", "categories_nodes",
	"categories_segments", "categories_sizes"};
	json_t	   *lefts,
			   *rights,
			   *parents,
			   *splits,
			   *conds,
			   *dleft,
			   *hess,
			   *stype,
			   *cats;
	int			base = m->num_nodes;
	RawNode    *raw;
	bool	   *seen;
	int32	   *queue;
	int32	   *level;
	int			head,
				tail,
				depth;

	if (n < 1 || n > 1 << 24)
		ModelJsonError("trees[].tree_param.num_nodes", "a positive node count");
	if (leafvec > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("multi-target trees are not supported"),
				 errdetail("Tree %d has leaf vectors of size %lld.", t, (long long) leafvec)));
	lefts = JsonArrayMember(tree, "left_children", "trees[].left_children", n);
	rights = JsonArrayMember(tree, "right_children", "trees[].right_children", n);
	splits = JsonArrayMember(tree, "split_indices", "trees[].split_indices", n);
	conds = JsonArrayMember(tree, "split_conditions", "trees[].split_conditions", n);
	dleft = JsonArrayMember(tree, "default_left", "trees[].default_left", n);
	parents = JsonArrayMember(tree, "parents", "trees[].parents", n);
	/* libxgboost reads these too, and trusts what it reads: check them here. */
	(void) JsonArrayMember(tree, "base_weights", "trees[].base_weights", n);
	(void) JsonArrayMember(tree, "loss_changes", "trees[].loss_changes", n);
	hess = JsonArrayMember(tree, "sum_hessian", "trees[].sum_hessian", n);
	if (JsonIntMember(tree, "id", "trees[].id", t) != t)
		ModelJsonError("trees[].id", "the tree's position");
	if (JsonIntMember(param, "num_feature", "trees[].tree_param.num_feature", m->num_features) != m->num_features)
		ModelJsonError("trees[].tree_param.num_feature", "the model's feature count");
	if (JsonIntMember(param, "num_deleted", "trees[].tree_param.num_deleted", 0) < 0)
		ModelJsonError("trees[].tree_param.num_deleted", "a count");
	for (int c = 0; c < lengthof(catfields); c++)
	{
		json_t	   *a = json_object_get(tree, catfields[c]);

		if (a != NULL && (!json_is_array(a) || json_array_size(a) > 0))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("categorical splits are not supported"),
					 errdetail("Tree %d has a non-empty %s.", t, catfields[c]),
					 errhint("Train with numeric features only (enable_categorical off).")));
	}
	stype = json_object_get(tree, "split_type");
	cats = json_object_get(tree, "categories_nodes");
	if (json_is_array(cats) && json_array_size(cats) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("categorical splits are not supported"),
				 errdetail("Tree %d has categorical splits.", t),
				 errhint("Train with numeric features only (enable_categorical off).")));
	if (stype != NULL)
	{
		if (!json_is_array(stype) || (int64) json_array_size(stype) != n)
			ModelJsonError("trees[].split_type", "an array of one element per node");
		for (int64 i = 0; i < n; i++)
			if (JsonNumberAt(stype, i, "trees[].split_type") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("categorical splits are not supported"),
						 errdetail("Tree %d node %lld is a categorical split.", t, (long long) i),
						 errhint("Train with numeric features only (enable_categorical off).")));
	}

	raw = palloc(sizeof(RawNode) * n);
	for (int64 i = 0; i < n; i++)
	{
		RawNode    *nd = &raw[i];
		double		l = JsonNumberAt(lefts, i, "trees[].left_children");
		double		r = JsonNumberAt(rights, i, "trees[].right_children");
		double		f = JsonNumberAt(splits, i, "trees[].split_indices");
		double		c = JsonNumberAt(conds, i, "trees[].split_conditions");

		if (!isfinite(c) || fabs(c) > FLT_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("model JSON is not a valid XGBoost model"),
					 errdetail("Tree %d node %lld has a non-finite value.", t, (long long) i)));
		nd->value = (float) c;
		nd->default_left = JsonNumberAt(dleft, i, "trees[].default_left") != 0;
		/* only TreeSHAP reads covers; the probe check vets odd ones */
		nd->cover = (float) JsonNumberAt(hess, i, "trees[].sum_hessian");
		if (l == -1)
		{
			if (r != -1)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						 errmsg("model JSON is not a valid XGBoost model"),
						 errdetail("Tree %d node %lld has one child.", t, (long long) i)));
			nd->left = nd->right = -1;
			nd->feature = 0;
		}
		else
		{
			if (l != floor(l) || r != floor(r) || l < 1 || r < 1 || l >= n || r >= n || l == r)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						 errmsg("model JSON is not a valid XGBoost model"),
						 errdetail("Tree %d node %lld has children out of range.", t, (long long) i)));
			if (f != floor(f) || f < 0 || f >= m->num_features)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						 errmsg("model JSON is not a valid XGBoost model"),
						 errdetail("Tree %d node %lld splits on feature %g of %d.",
								   t, (long long) i, f, m->num_features)));
			nd->left = (int32) l;
			nd->right = (int32) r;
			nd->feature = (int32) f;
		}
	}

	/*
	 * Parents: the root has 2147483647 (XGBoost's invalid node id), every
	 * other node its real parent; libxgboost walks them without checks.
	 */
	for (int64 i = 0; i < n; i++)
	{
		double		par = JsonNumberAt(parents, i, "trees[].parents");

		if (i == 0 ? par != 2147483647 : (par != floor(par) || par < 0 || par >= n))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("model JSON is not a valid XGBoost model"),
					 errdetail("Tree %d node %lld has an invalid parent.", t, (long long) i)));
		raw[i].parent = (int32) par;
	}
	for (int64 i = 0; i < n; i++)
		if (raw[i].left >= 0 && (raw[raw[i].left].parent != i || raw[raw[i].right].parent != i))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("model JSON is not a valid XGBoost model"),
					 errdetail("Tree %d node %lld is not the parent its children name.", t, (long long) i)));

	while (m->num_nodes + n > *capacity)
	{
		*capacity *= 2;
		m->nodes = repalloc_huge(m->nodes, sizeof(CsTreeNode) * *capacity);
		m->covers = repalloc_huge(m->covers, sizeof(float) * *capacity);
	}

	/*
	 * Lay the tree out breadth first with both children of a node side by
	 * side (right = left + 1), leaves pointing to themselves.  Every node is
	 * reached from the root at most once, or this is not a tree.
	 */
	seen = palloc0(sizeof(bool) * n);
	queue = palloc(sizeof(int32) * n);
	level = palloc(sizeof(int32) * n);
	head = 0;
	tail = 0;
	queue[tail] = 0;
	level[tail++] = 0;
	seen[0] = true;
	depth = 0;
	while (head < tail)
	{
		int32		old = queue[head];
		int32		self = base + head;
		RawNode    *rn = &raw[old];
		CsTreeNode *nd = &m->nodes[self];

		depth = Max(depth, level[head]);
		m->covers[self] = rn->cover;
		if (rn->left < 0)
		{
			nd->threshold = INFINITY;
			nd->left = self;
			nd->feature = 0;
			nd->leaf = rn->value;
		}
		else
		{
			if (seen[rn->left] || seen[rn->right] || tail + 2 > n)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						 errmsg("model JSON is not a valid XGBoost model"),
						 errdetail("Tree %d is not a tree: a node is reached twice.", t)));
			seen[rn->left] = seen[rn->right] = true;
			nd->threshold = rn->value;
			nd->left = base + tail;
			nd->feature = (uint32) rn->feature | (rn->default_left ? 0 : CS_NODE_MISSING_RIGHT);
			nd->leaf = 0;
			queue[tail] = rn->left;
			level[tail++] = level[head] + 1;
			queue[tail] = rn->right;
			level[tail++] = level[head] + 1;
		}
		head++;
	}
	pfree(seen);
	pfree(queue);
	pfree(level);
	pfree(raw);

	/*
	 * The tree's expected value for TreeSHAP: leaves weighted by cover, in
	 * float and in XGBoost's order (left then right, divided by the node's
	 * cover).  Children come after their parent, so one backward pass does.
	 */
	{
		float	   *mean = palloc(sizeof(float) * tail);

		for (int k = tail - 1; k >= 0; k--)
		{
			const CsTreeNode *nd = &m->nodes[base + k];

			if (nd->left == base + k)
				mean[k] = nd->leaf;
			else
			{
				int			l = nd->left - base;
				float		v = mean[l] * m->covers[base + l];

				v += mean[l + 1] * m->covers[base + l + 1];
				v /= m->covers[base + k];
				mean[k] = v;
			}
		}
		m->tree_means[t] = mean[0];
		pfree(mean);
	}

	m->roots[t] = base;
	m->depths[t] = depth;
	m->max_depth = Max(m->max_depth, depth);
	m->num_nodes += tail;
}

/* Fills model fields from checked model JSON. */
static void
CompileModelJson(CsModel *m, json_t *root)
{
	json_t	   *learner,
			   *gb,
			   *gbmodel,
			   *lmp,
			   *obj,
			   *trees,
			   *tinfo,
			   *fnames,
			   *ftypes;
	const char *gbname;
	const char *objname;
	const char *base_str;
	const ObjectiveInfo *oi = NULL;
	int64		num_class,
				num_target,
				num_feature;
	float		base_score;
	char	   *end;
	int			capacity;

	if (!json_is_object(root))
		ModelJsonError("(root)", "an object");
	learner = JsonObjectMember(root, "learner", "learner");
	gb = JsonObjectMember(learner, "gradient_booster", "learner.gradient_booster");
	gbname = json_string_value(json_object_get(gb, "name"));
	if (gbname == NULL)
		ModelJsonError("learner.gradient_booster.name", "a string");
	if (strcmp(gbname, "gbtree") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("booster \"%s\" is not supported", gbname),
				 errhint("Train the model with booster gbtree.")));

	obj = JsonObjectMember(learner, "objective", "learner.objective");
	objname = json_string_value(json_object_get(obj, "name"));
	if (objname == NULL)
		ModelJsonError("learner.objective.name", "a string");
	for (int i = 0; i < lengthof(Objectives); i++)
		if (strcmp(objname, Objectives[i].name) == 0)
			oi = &Objectives[i];
	if (oi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("objective \"%s\" is not supported", objname),
				 errhint("Supported objectives are binary:logistic, binary:logitraw, reg:logistic and reg:squarederror.")));
	m->objective = MemoryContextStrdup(m->mcxt, objname);
	m->link = oi->link;

	lmp = JsonObjectMember(learner, "learner_model_param", "learner.learner_model_param");
	num_class = JsonIntMember(lmp, "num_class", "learner.learner_model_param.num_class", 0);
	num_target = JsonIntMember(lmp, "num_target", "learner.learner_model_param.num_target", 1);
	num_feature = JsonIntMember(lmp, "num_feature", "learner.learner_model_param.num_feature", PG_INT64_MIN);
	if (num_class > 1 || num_target > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("multi-class and multi-target models are not supported"),
				 errdetail("The model has %lld classes and %lld targets.",
						   (long long) num_class, (long long) num_target)));
	if (num_feature < 1 || num_feature > 100000)
		ModelJsonError("learner.learner_model_param.num_feature", "a feature count between 1 and 100000");
	m->num_features = (int) num_feature;

	base_str = json_string_value(json_object_get(lmp, "base_score"));
	if (base_str == NULL)
		ModelJsonError("learner.learner_model_param.base_score", "a number in a string");
	errno = 0;
	base_score = strtof(base_str, &end);
	if (errno != 0 || end == base_str || *end != '\0' || !isfinite(base_score))
		ModelJsonError("learner.learner_model_param.base_score", "a number in a string");
	if (oi->logit_base)
	{
		if (!(base_score > 0.0f && base_score < 1.0f))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("model JSON is not a valid XGBoost model"),
					 errdetail("base_score %g is not a probability strictly between 0 and 1.", base_score)));
		/* XGBoost's ProbToMargin, in float. */
		m->base_margin = -logf(1.0f / base_score - 1.0f);
	}
	else
		m->base_margin = base_score;

	fnames = json_object_get(learner, "feature_names");
	if (json_is_array(fnames) && json_array_size(fnames) > 0)
	{
		if ((int64) json_array_size(fnames) != num_feature)
			ModelJsonError("learner.feature_names", "an array of one name per feature");
		m->feature_names = MemoryContextAlloc(m->mcxt, sizeof(char *) * num_feature);
		for (int i = 0; i < num_feature; i++)
		{
			const char *s = json_string_value(json_array_get(fnames, i));

			if (s == NULL)
				ModelJsonError("learner.feature_names", "an array of strings");
			m->feature_names[i] = MemoryContextStrdup(m->mcxt, s);
		}
		m->has_json_feature_names = true;
	}
	ftypes = json_object_get(learner, "feature_types");
	if (json_is_array(ftypes))
	{
		for (size_t i = 0; i < json_array_size(ftypes); i++)
		{
			const char *s = json_string_value(json_array_get(ftypes, i));

			if (s != NULL && strcmp(s, "c") == 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("categorical features are not supported"),
						 errdetail("Feature %zu is categorical.", i + 1),
						 errhint("Train with numeric features only (enable_categorical off).")));
		}
	}

	gbmodel = JsonObjectMember(gb, "model", "learner.gradient_booster.model");
	trees = JsonArrayMember(gbmodel, "trees", "learner.gradient_booster.model.trees", -1);
	tinfo = json_object_get(gbmodel, "tree_info");
	if (json_array_size(trees) > 1000000)
		ModelJsonError("learner.gradient_booster.model.trees", "an array of at most 1000000 trees");
	if (JsonIntMember(JsonObjectMember(gbmodel, "gbtree_model_param", "learner.gradient_booster.model.gbtree_model_param"),
					  "num_trees", "learner.gradient_booster.model.gbtree_model_param.num_trees", PG_INT64_MIN) !=
		(int64) json_array_size(trees))
		ModelJsonError("learner.gradient_booster.model.gbtree_model_param.num_trees", "the number of trees");
	if (tinfo != NULL)
	{
		if (!json_is_array(tinfo) || json_array_size(tinfo) != json_array_size(trees))
			ModelJsonError("learner.gradient_booster.model.tree_info", "an array of one element per tree");
		for (size_t i = 0; i < json_array_size(tinfo); i++)
			if (JsonNumberAt(tinfo, i, "learner.gradient_booster.model.tree_info") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("multi-class models are not supported")));
	}

	m->num_trees = (int) json_array_size(trees);
	m->roots = MemoryContextAlloc(m->mcxt, sizeof(int32) * Max(m->num_trees, 1));
	m->depths = MemoryContextAlloc(m->mcxt, sizeof(int32) * Max(m->num_trees, 1));
	m->tree_means = MemoryContextAlloc(m->mcxt, sizeof(float) * Max(m->num_trees, 1));
	capacity = 64;
	m->nodes = MemoryContextAlloc(m->mcxt, sizeof(CsTreeNode) * capacity);
	m->covers = MemoryContextAlloc(m->mcxt, sizeof(float) * capacity);
	m->num_nodes = 0;
	for (int t = 0; t < m->num_trees; t++)
	{
		json_t	   *tree = json_array_get(trees, t);

		if (!json_is_object(tree))
			ModelJsonError("learner.gradient_booster.model.trees[]", "an object");
		CompileTree(m, tree, t, &capacity);
	}
}

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
static inline float
NativeMargin(const CsModel *m, const float *x)
{
	const CsTreeNode *nodes = m->nodes;
	float		sum = m->base_margin;
	int			t = 0;

	for (; t + CS_TREE_GROUP <= m->num_trees; t += CS_TREE_GROUP)
	{
		int32		idx[CS_TREE_GROUP];
		int			steps = 0;

		for (int k = 0; k < CS_TREE_GROUP; k++)
		{
			idx[k] = m->roots[t + k];
			steps = Max(steps, m->depths[t + k]);
		}
		for (int d = 0; d < steps; d++)
			for (int k = 0; k < CS_TREE_GROUP; k++)
			{
				const CsTreeNode *nd = &nodes[idx[k]];
				float		v = x[nd->feature & CS_NODE_FEATURE_MASK];

				idx[k] = nd->left + ((int32) (v >= nd->threshold) |
									 ((int32) isnan(v) & (int32) (nd->feature >> 31)));
			}
		for (int k = 0; k < CS_TREE_GROUP; k++)
			sum += nodes[idx[k]].leaf;
	}
	for (; t < m->num_trees; t++)
	{
		int32		i = m->roots[t];

		for (int d = 0; d < m->depths[t]; d++)
		{
			const CsTreeNode *nd = &nodes[i];
			float		v = x[nd->feature & CS_NODE_FEATURE_MASK];

			i = nd->left + ((int32) (v >= nd->threshold) |
							((int32) isnan(v) & (int32) (nd->feature >> 31)));
		}
		sum += nodes[i].leaf;
	}
	return sum;
}

/* Applies the objective's link to a margin, in float like XGBoost. */
static inline double
NativeTransform(const CsModel *m, float margin)
{
	if (m->link == CS_LINK_LOGISTIC)
		return (double) (1.0f / (1.0f + expf(-margin)));
	return (double) margin;
}

/* Builds the probe rows: seeded random values, NaNs and split thresholds. */
float *
CsModelProbeRows(CsModel *m, int *nrows)
{
	int			n = PROBE_RANDOM_ROWS + PROBE_THRESHOLD_ROWS;
	int			nf = m->num_features;
	float	   *rows = palloc(sizeof(float) * n * nf);
	int		   *nsplits = palloc0(sizeof(int) * nf);
	float	  **splits = palloc0(sizeof(float *) * nf);
	pg_prng_state rng;

	/* Thresholds per feature. */
	for (int i = 0; i < m->num_nodes; i++)
		if (m->nodes[i].left != i)
			nsplits[m->nodes[i].feature & CS_NODE_FEATURE_MASK]++;
	for (int f = 0; f < nf; f++)
	{
		splits[f] = palloc(sizeof(float) * Max(nsplits[f], 1));
		nsplits[f] = 0;
	}
	for (int i = 0; i < m->num_nodes; i++)
		if (m->nodes[i].left != i)
		{
			int			f = m->nodes[i].feature & CS_NODE_FEATURE_MASK;

			splits[f][nsplits[f]++] = m->nodes[i].threshold;
		}

	pg_prng_seed(&rng, UINT64CONST(0x5eed0fc0ffee));
	for (int r = 0; r < n; r++)
	{
		bool		thresholds = r >= PROBE_RANDOM_ROWS;

		for (int f = 0; f < nf; f++)
		{
			double		u = pg_prng_double(&rng);
			float		v;

			if (u < 0.1)
				v = NAN;
			else if (nsplits[f] > 0 && (thresholds || u < 0.3))
			{
				float		s = splits[f][pg_prng_uint64_range(&rng, 0, nsplits[f] - 1)];
				double		w = pg_prng_double(&rng);

				if (w < 0.6)
					v = s;
				else if (w < 0.8)
					v = nextafterf(s, -INFINITY);
				else
					v = nextafterf(s, INFINITY);
			}
			else
				v = (float) ((pg_prng_double(&rng) - 0.5) * 20.0);
			rows[r * nf + f] = v;
		}
	}
	for (int f = 0; f < nf; f++)
		pfree(splits[f]);
	pfree(splits);
	pfree(nsplits);
	*nrows = n;
	return rows;
}

/* Refuses the model unless native and libxgboost predictions agree on probes. */
static void
CheckAgainstLibxgboost(CsModel *m)
{
	int			nrows;
	float	   *rows = CsModelProbeRows(m, &nrows);
	DMatrixHandle dm = NULL;
	bst_ulong	len = 0;
	const float *out = NULL;

	PG_TRY();
	{
		CsXgbCheck(XGDMatrixCreateFromMat(rows, nrows, m->num_features, NAN, &dm),
				   "create a matrix");
		CsXgbCheck(XGBoosterPredict((BoosterHandle) m->booster, dm, 0, 0, 0, &len, &out),
				   "predict");
		if ((int) len != nrows)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("libxgboost returned %d predictions for %d rows", (int) len, nrows)));
		for (int r = 0; r < nrows; r++)
		{
			double		native = NativeTransform(m, NativeMargin(m, rows + r * m->num_features));
			double		ref = out[r];

			if (!(fabs(native - ref) <= PROBE_TOLERANCE * Max(1.0, fabs(ref))))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("native evaluator disagrees with libxgboost on this model"),
						 errdetail("Probe row %d: native %.9g, libxgboost %.9g.", r, native, ref),
						 errhint("The model uses a feature of XGBoost that cscopilot does not evaluate; please report it.")));
		}
	}
	PG_FINALLY();
	{
		if (dm)
			XGDMatrixFree(dm);
	}
	PG_END_TRY();
	pfree(rows);
}

/* Compiles model bytes (JSON or UBJ) into a checked model in a new context. */
CsModel *
CsModelBuild(const char *data, size_t len, MemoryContext parent)
{
	MemoryContext mcxt;
	MemoryContext old;
	CsModel    *m;
	MemoryContextCallback *cb;
	size_t		i = 0;
	json_t	   *volatile root = NULL;

	while (i < len && isspace((unsigned char) data[i]))
		i++;
	if (i >= len || data[i] != '{')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("model is neither XGBoost JSON nor UBJ"),
				 errdetail("The model bytes do not start with an object."),
				 errhint("Save the model with save_model(\"model.json\") or save_model(\"model.ubj\"); the legacy binary format is not supported.")));

	mcxt = AllocSetContextCreate(parent, "cscopilot model", ALLOCSET_SMALL_SIZES);
	m = MemoryContextAllocZero(mcxt, sizeof(CsModel));
	m->mcxt = mcxt;
	cb = MemoryContextAlloc(mcxt, sizeof(MemoryContextCallback));
	cb->func = BoosterFreeCallback;
	cb->arg = m;
	MemoryContextRegisterResetCallback(mcxt, cb);

	old = MemoryContextSwitchTo(mcxt);
	PG_TRY();
	{
		size_t		j = i + 1;

		while (j < len && isspace((unsigned char) data[j]))
			j++;
		/* JSON continues with a key string or '}', UBJ with a length marker. */
		if (j < len && (data[j] == '"' || data[j] == '}' || j > i + 1))
		{
			json_error_t jerr;

			root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
			if (root == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						 errmsg("could not parse model JSON"),
						 errdetail("%s at line %d, column %d.", jerr.text, jerr.line, jerr.column)));
			CompileModelJson(m, root);
			m->json = palloc(len + 1);
			memcpy(m->json, data, len);
			m->json[len] = '\0';
			m->json_len = len;
		}
		else
		{
			char	   *dumped;

			root = UbjDecode(data, len);
			CompileModelJson(m, root);
			dumped = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
			if (dumped == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("out of memory")));
			m->json = pstrdup(dumped);
			m->json_len = strlen(dumped);
			free(dumped);
		}
		json_decref(root);
		root = NULL;

		m->booster = CsBoosterFromJson(m->json, m->json_len);
		CheckAgainstLibxgboost(m);
	}
	PG_CATCH();
	{
		if (root)
			json_decref(root);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(mcxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return m;
}

/* Frees a compiled model and its booster. */
void
CsModelFree(CsModel *model)
{
	if (model)
		MemoryContextDelete(model->mcxt);
}

/* ------------------------------------------------------------------------
 * Evaluation API
 * ------------------------------------------------------------------------
 */

/* Number of input features the model expects. */
int
CsModelNumFeatures(CsModel *model)
{
	return model->num_features;
}

/* Checks a feature vector: its length and that no value is infinite. */
void
CsModelCheckFeatures(CsModel *m, const float *x, int n)
{
	if (n != m->num_features)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("model \"%s\" expects %d features, got %d",
						m->name ? m->name : "(unnamed)", m->num_features, n)));
	for (int i = 0; i < n; i++)
		if (unlikely(isinf(x[i])))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature %d (%s) is infinite", i + 1,
							m->feature_names ? m->feature_names[i] : "unnamed"),
					 errhint("Use 'NaN' for a missing value; infinities are not valid features.")));
}

/* Margin (sum of trees plus base score) for one row; NaN means missing. */
double
CsModelMargin(CsModel *model, const float *x, int n)
{
	CsModelCheckFeatures(model, x, n);
	return (double) NativeMargin(model, x);
}

/* Prediction for one row: the margin through the objective's link. */
double
CsModelPredict(CsModel *model, const float *x, int n)
{
	CsModelCheckFeatures(model, x, n);
	return NativeTransform(model, NativeMargin(model, x));
}

/* Checks a float4[] argument and returns its values. */
const float *
CsModelFeaturesFromArray(CsModel *model, ArrayType *features)
{
	int			n;
	const float *x;

	if (ARR_NDIM(features) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional array"),
				 errdetail("The array has %d dimensions.", ARR_NDIM(features))));
	if (ARR_HASNULL(features))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("features must not contain NULL"),
				 errhint("Use 'NaN' for a missing value.")));
	if (ARR_ELEMTYPE(features) != FLOAT4OID)
		elog(ERROR, "features must be float4[]");
	n = ARR_NDIM(features) == 0 ? 0 : ARR_DIMS(features)[0];
	x = (const float *) ARR_DATA_PTR(features);

	/*
	 * Scoring kinds read cs.feature_catalog, which only grows at the end: a
	 * model trained before features were added reads the first num_features
	 * values of a current vector (registration checked its names are the
	 * catalog's prefix).
	 */
	if (n > model->num_features && model->kind != NULL && strcmp(model->kind, "custom") != 0)
		n = model->num_features;
	CsModelCheckFeatures(model, x, n);
	return x;
}

/* ------------------------------------------------------------------------
 * Registry
 * ------------------------------------------------------------------------
 */

/* Checks the kind name. */
static void
CheckKind(const char *kind)
{
	static const char *const kinds[] = {"churn", "downgrade", "payment", "upsell", "custom"};

	for (int i = 0; i < lengthof(kinds); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid model kind \"%s\"", kind),
			 errhint("Use churn, downgrade, payment, upsell or custom.")));
}

/* Checks model name, feature names and catalog, then inserts a new version. */
int32
CsModelRegister(const char *name, const char *kind, const char *data, size_t len,
				char **feature_names, int num_names,
				const char *metrics_json, const char *training_data)
{
	CsModel    *m;
	Datum	   *elems;
	ArrayType  *names_arr;
	volatile int32 id = 0;
	bool		isnull;

	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model name must not be empty")));
	CheckKind(kind);

	m = CsModelBuild(data, len, CurrentMemoryContext);
	PG_TRY();
	{
		if (feature_names == NULL)
		{
			if (!m->has_json_feature_names)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("model has no feature names"),
						 errhint("Pass feature_names.")));
			feature_names = m->feature_names;
			num_names = m->num_features;
		}
		if (num_names != m->num_features)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model has %d features but %d feature names were given",
							m->num_features, num_names)));
		for (int i = 0; i < num_names; i++)
		{
			if (feature_names[i] == NULL || feature_names[i][0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature name %d is empty or NULL", i + 1)));
			for (int j = 0; j < i; j++)
				if (strcmp(feature_names[i], feature_names[j]) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("feature name \"%s\" appears twice", feature_names[i])));
		}

		elems = palloc(sizeof(Datum) * num_names);
		for (int i = 0; i < num_names; i++)
			elems[i] = CStringGetTextDatum(feature_names[i]);
		names_arr = construct_array(elems, num_names, TEXTOID, -1, false, TYPALIGN_INT);

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");

		if (strcmp(kind, "custom") != 0)
		{
			Oid			t[1] = {TEXTARRAYOID};
			Datum		v[1] = {PointerGetDatum(names_arr)};
			char	   *catalog;

			/* the catalog's first names: a model keeps working as the catalog grows */
			if (SPI_execute_with_args("SELECT array_agg(name ORDER BY position)::text, "
									  "coalesce((array_agg(name ORDER BY position))[1:cardinality($1)] = $1, false) "
									  "FROM cs.feature_catalog",
									  1, t, v, NULL, true, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not read cs.feature_catalog");
			catalog = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			if (catalog == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("cs.feature_catalog is empty, so a %s model cannot be checked", kind),
						 errhint("Fill cs.feature_catalog first, or load the model with kind custom.")));
			if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature names of a %s model must be cs.feature_catalog or its first names", kind),
						 errdetail("The catalog has %s.", catalog),
						 errhint("Pass the catalog's names in position order (a model may stop before the catalog's end), or use kind custom.")));
		}

		{
			Oid			t[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, BYTEAOID, TEXTOID, TEXTOID};
			Datum		v[7];
			char		n[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
			bytea	   *b = palloc(VARHDRSZ + len);

			SET_VARSIZE(b, VARHDRSZ + len);
			memcpy(VARDATA(b), data, len);
			v[0] = CStringGetTextDatum(name);
			v[1] = CStringGetTextDatum(kind);
			v[2] = CStringGetTextDatum(m->objective);
			v[3] = PointerGetDatum(names_arr);
			v[4] = PointerGetDatum(b);
			v[5] = metrics_json ? CStringGetTextDatum(metrics_json) : (Datum) 0;
			n[5] = metrics_json ? ' ' : 'n';
			v[6] = training_data ? CStringGetTextDatum(training_data) : (Datum) 0;
			n[6] = training_data ? ' ' : 'n';

			/* Serialise versions of one name. */
			if (SPI_execute_with_args("SELECT pg_advisory_xact_lock(hashtext('cs.models ' || $1))",
									  1, t, v, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not lock model name");
			if (SPI_execute_with_args("INSERT INTO cs.models (name, version, kind, objective, feature_names, "
									  "model, metrics, training_data) "
									  "SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, "
									  "coalesce($6::jsonb, '{}'), $7 FROM cs.models WHERE name = $1 "
									  "RETURNING id",
									  7, t, v, n, false, 0) != SPI_OK_INSERT_RETURNING)
				elog(ERROR, "could not insert into cs.models");
			id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		CsModelFree(m);
	}
	PG_END_TRY();
	return id;
}

/* Text array argument to C strings, rejecting multi-dimensional arrays. */
static char **
TextArrayToStrings(ArrayType *arr, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("feature_names must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
	return out;
}

/* cs.load_model(name, kind, model, feature_names): registers a new version. */
Datum
cs_load_model(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *kind;
	bytea	   *model;
	int			n = 0;
	char	  **names = NULL;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name, kind and model must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	model = PG_GETARG_BYTEA_PP(2);
	/* Without feature names, the model's own names are used. */
	if (!PG_ARGISNULL(3))
		names = TextArrayToStrings(PG_GETARG_ARRAYTYPE_P(3), &n);

	PG_RETURN_INT32(CsModelRegister(name, kind, VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model),
									names, n, NULL, NULL));
}

/* cs.load_model_file(name, kind, filename, feature_names): loads a shipped model. */
Datum
cs_load_model_file(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *kind;
	char	   *filename;
	char		sharepath[MAXPGPATH];
	char		path[MAXPGPATH];
	char	  **names = NULL;
	int			n = 0;
	FILE	   *f;
	StringInfoData buf;
	char		chunk[8192];
	size_t		got;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name, kind and filename must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	filename = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (!PG_ARGISNULL(3))
		names = TextArrayToStrings(PG_GETARG_ARRAYTYPE_P(3), &n);

	if (filename[0] == '\0' || strchr(filename, '/') != NULL ||
		strchr(filename, '\\') != NULL || strstr(filename, "..") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid model file name \"%s\"", filename),
				 errdetail("Only the name of a file in the shipped models directory is accepted."),
				 errhint("Use a plain file name such as \"example_custom.json\", or cs.load_model for other models.")));

	get_share_path(my_exec_path, sharepath);
	snprintf(path, sizeof(path), "%s/cscopilot/models/%s", sharepath, filename);
	f = AllocateFile(path, PG_BINARY_R);
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open shipped model file \"%s\": %m", filename)));
	initStringInfo(&buf);
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
	{
		if ((Size) buf.len + got > MaxAllocSize / 2)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("model file \"%s\" is too large", filename)));
		appendBinaryStringInfo(&buf, chunk, got);
	}
	if (ferror(f))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read shipped model file \"%s\": %m", filename)));
	FreeFile(f);

	PG_RETURN_INT32(CsModelRegister(name, kind, buf.data, buf.len, names, n, NULL,
									psprintf("shipped model file %s", filename)));
}

/* ------------------------------------------------------------------------
 * SQL scoring functions
 * ------------------------------------------------------------------------
 */

/* cs.predict(model, features): the model's prediction for one row. */
Datum
cs_predict(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	ArrayType  *features = PG_GETARG_ARRAYTYPE_P(1);
	CsModel    *m = CsModelForCall(fcinfo, name);
	const float *x = CsModelFeaturesFromArray(m, features);

	PG_RETURN_FLOAT8(NativeTransform(m, NativeMargin(m, x)));
}

/* cs.model_margin(model, features): the raw margin (sum of trees) for one row. */
Datum
cs_model_margin(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	ArrayType  *features = PG_GETARG_ARRAYTYPE_P(1);
	CsModel    *m = CsModelForCall(fcinfo, name);
	const float *x = CsModelFeaturesFromArray(m, features);

	PG_RETURN_FLOAT8((double) NativeMargin(m, x));
}
