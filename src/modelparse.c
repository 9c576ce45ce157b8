/*
 * modelparse.c
 *		Model bytes (XGBoost JSON or UBJ) checked and compiled into a CsModel.
 *
 * Design
 * ------
 * Models are stored as the bytes users gave.  UBJ is decoded into jansson
 * values by the bounds-checked reader here (libxgboost's own UBJ reader is
 * not safe on truncated input), JSON by jansson.  The JSON is then checked
 * field by field and flattened into one array of nodes plus the root of
 * every tree, laid out for the evaluator (modeleval.c): breadth first, both
 * children of a node side by side, leaves pointing to themselves.  What
 * libxgboost reads later without checks (parents, per-node arrays) is
 * checked here too, because model.c hands it only JSON that passed.
 *
 * No server headers, no longjmp (modelcore.h): a failed check records the
 * error in the caller's CsModelError and returns false up to CsModelParse,
 * which frees the jansson values and the work arrays on every path.  The
 * results go into memory from the caller's allocator; the node arrays grow
 * in malloc'd memory while trees are compiled and are copied there once the
 * last tree is in.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "modelcore.h"

/*
 * The postgres executable exports its own json_object() (the SQL function),
 * which wins over jansson's at dynamic link time: never call json_object()
 * from here, make empty objects through json_pack (bound inside libjansson).
 */
#define CsJsonNewObject() json_pack("{}")

#define UBJ_MAX_DEPTH 64
#define CATEGORICAL_HINT "Train with numeric features only (enable_categorical off)."

/* Supported objectives and how their base_score and output are linked. */
typedef struct ObjectiveInfo
{
	const char *name;
	bool		logit_base;		/* base_score is a probability */
	CsModelLink link;			/* CS_LINK_EXP: base_score is a time, its log the margin */
} ObjectiveInfo;

static const ObjectiveInfo Objectives[] = {
	{"binary:logistic", true, CS_LINK_LOGISTIC},
	{"reg:logistic", true, CS_LINK_LOGISTIC},
	{"binary:logitraw", false, CS_LINK_IDENTITY},
	{"reg:squarederror", false, CS_LINK_IDENTITY},
	{"survival:aft", false, CS_LINK_EXP},
};

/* One compilation: the model, where results and errors go, the growing node arrays. */
typedef struct ParseState
{
	CsModel    *m;
	const CsAllocator *alloc;
	CsModelError *err;
	CsTreeNode *nodes;			/* malloc'd while trees are compiled */
	float	   *covers;
	size_t		capacity;
} ParseState;

/* ------------------------------------------------------------------------
 * Errors and allocation
 * ------------------------------------------------------------------------
 */

/* Records an error with its message (a format) and hint; returns false. */
static bool
__attribute__((format(printf, 4, 5)))
Fail(CsModelError *err, CsModelStatus status, const char *hint, const char *fmt,...)
{
	va_list		ap;

	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	err->detail[0] = '\0';
	snprintf(err->hint, sizeof(err->hint), "%s", hint ? hint : "");
	return false;
}

/* Adds a detail (a format) to the error just recorded; returns false. */
static bool
__attribute__((format(printf, 2, 3)))
Detail(CsModelError *err, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return false;
}

/* Records "not a valid XGBoost model" with a detail (a format); returns false. */
static bool
__attribute__((format(printf, 2, 3)))
Invalid(CsModelError *err, const char *fmt,...)
{
	va_list		ap;

	Fail(err, CS_MODEL_INVALID, NULL, "model JSON is not a valid XGBoost model");
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return false;
}

/* Records the error for a model JSON that lacks or misshapes a field. */
static bool
ModelJsonError(CsModelError *err, const char *path, const char *expected)
{
	return Invalid(err, "Field %s is missing or is not %s.", path, expected);
}

/* Records running out of memory; returns false. */
static bool
OutOfMemory(CsModelError *err)
{
	return Fail(err, CS_MODEL_NO_MEMORY, NULL, "out of memory");
}

/* Memory for a result, from the caller's allocator; NULL (error recorded) when none. */
static void *
ResultAlloc(ParseState *ps, size_t size)
{
	void	   *p = ps->alloc->alloc(ps->alloc->arg, size > 0 ? size : 1);

	if (p == NULL)
		OutOfMemory(ps->err);
	return p;
}

/* A copy of a string in result memory; NULL (error recorded) when none. */
static char *
ResultStrdup(ParseState *ps, const char *s)
{
	size_t		len = strlen(s);
	char	   *p = ResultAlloc(ps, len + 1);

	if (p != NULL)
		memcpy(p, s, len + 1);
	return p;
}

/* ------------------------------------------------------------------------
 * UBJ decoding (bounds-checked) into jansson values
 * ------------------------------------------------------------------------
 */

typedef struct UbjReader
{
	const uint8_t *p;
	const uint8_t *end;
	const char *error;
} UbjReader;

static json_t *UbjValue(UbjReader *r, uint8_t marker, int depth);

/* Reads n raw bytes, or fails when fewer remain. */
static const uint8_t *
UbjTake(UbjReader *r, size_t n)
{
	const uint8_t *p = r->p;

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
UbjBigEndian(UbjReader *r, int n, uint64_t *out)
{
	const uint8_t *p = UbjTake(r, n);
	uint64_t	v = 0;

	if (p == NULL)
		return false;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	*out = v;
	return true;
}

/* Reads an integer of the given marker type. */
static bool
UbjInteger(UbjReader *r, uint8_t marker, int64_t *out)
{
	uint64_t	v;

	switch (marker)
	{
		case 'i':
			if (!UbjBigEndian(r, 1, &v))
				return false;
			*out = (int8_t) v;
			return true;
		case 'U':
			if (!UbjBigEndian(r, 1, &v))
				return false;
			*out = (uint8_t) v;
			return true;
		case 'I':
			if (!UbjBigEndian(r, 2, &v))
				return false;
			*out = (int16_t) v;
			return true;
		case 'l':
			if (!UbjBigEndian(r, 4, &v))
				return false;
			*out = (int32_t) v;
			return true;
		case 'L':
			if (!UbjBigEndian(r, 8, &v))
				return false;
			*out = (int64_t) v;
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
	const uint8_t *m = UbjTake(r, 1);
	int64_t		v;

	if (m == NULL || !UbjInteger(r, *m, &v))
		return false;
	if (v < 0 || (uint64_t) v > (uint64_t) (r->end - r->p))
	{
		r->error = "length out of range";
		return false;
	}
	*out = (size_t) v;
	return true;
}

/* Reads an array or object header: optional $type and #count. */
static bool
UbjContainerHeader(UbjReader *r, uint8_t *type, int64_t *count)
{
	*type = 0;
	*count = -1;
	if (r->p < r->end && *r->p == '$')
	{
		const uint8_t *t;

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
	uint8_t		type;
	int64_t		count;
	json_t	   *arr;

	if (!UbjContainerHeader(r, &type, &count))
		return NULL;
	arr = json_array();
	if (arr == NULL)
	{
		r->error = "out of memory";
		return NULL;
	}
	for (int64_t i = 0; count < 0 || i < count; i++)
	{
		const uint8_t *m;
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
	uint8_t		type;
	int64_t		count;
	json_t	   *obj;

	if (!UbjContainerHeader(r, &type, &count))
		return NULL;
	obj = CsJsonNewObject();
	if (obj == NULL)
	{
		r->error = "out of memory";
		return NULL;
	}
	for (int64_t i = 0; count < 0 || i < count; i++)
	{
		size_t		klen;
		const uint8_t *k;
		const uint8_t *m;
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
		key = malloc(klen + 1);
		if (key == NULL)
		{
			r->error = "out of memory";
			json_decref(v);
			json_decref(obj);
			return NULL;
		}
		memcpy(key, k, klen);
		key[klen] = '\0';
		/* json_object_set_new takes v even when it fails; a NUL in the key never gets there */
		if (strlen(key) != klen)
			json_decref(v);
		if (strlen(key) != klen || json_object_set_new(obj, key, v) != 0)
		{
			free(key);
			r->error = "invalid object key";
			json_decref(obj);
			return NULL;
		}
		free(key);
	}
	return obj;
}

/* Reads one value whose marker has been read. */
static json_t *
UbjValue(UbjReader *r, uint8_t marker, int depth)
{
	uint64_t	bits;
	int64_t		iv;

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
				uint32_t	b32;
				float		f;

				if (!UbjBigEndian(r, 4, &bits))
					return NULL;
				b32 = (uint32_t) bits;
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
				const uint8_t *c = UbjTake(r, 1);

				if (c == NULL)
					return NULL;
				return json_stringn((const char *) c, 1);
			}
		case 'S':
			{
				size_t		len;
				const uint8_t *s;
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

/* Decodes UBJ bytes into a jansson value, or NULL with the error recorded. */
json_t *
CsUbjDecode(const char *data, size_t len, CsModelError *err)
{
	UbjReader	r;
	json_t	   *root;
	const uint8_t *m;

	r.p = (const uint8_t *) data;
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
	{
		Fail(err, CS_MODEL_INVALID, NULL, "could not decode model UBJ");
		Detail(err, "Decoding stopped at byte %d of %zu: %s.",
			   (int) ((const char *) r.p - data), len,
			   r.error ? r.error : "unknown error");
	}
	return root;
}

/* ------------------------------------------------------------------------
 * Model JSON checks and compilation
 * ------------------------------------------------------------------------
 */

/* A member that must be an object, or NULL (error recorded). */
static json_t *
JsonObjectMember(CsModelError *err, json_t *obj, const char *key, const char *path)
{
	json_t	   *v = json_object_get(obj, key);

	if (!json_is_object(v))
	{
		ModelJsonError(err, path, "an object");
		return NULL;
	}
	return v;
}

/* A member that must be an array of exactly n elements (n < 0: any), or NULL (error recorded). */
static json_t *
JsonArrayMember(CsModelError *err, json_t *obj, const char *key, const char *path, int64_t n)
{
	json_t	   *v = json_object_get(obj, key);

	if (!json_is_array(v) || (n >= 0 && (int64_t) json_array_size(v) != n))
	{
		ModelJsonError(err, path, n >= 0 ? "an array of one element per node" : "an array");
		return NULL;
	}
	return v;
}

/*
 * Reads an integer stored as a JSON integer or a decimal string into *out;
 * an absent member reads as missing, unless missing is INT64_MIN.
 */
static bool
JsonIntMember(CsModelError *err, json_t *obj, const char *key, const char *path,
			  int64_t missing, int64_t *out)
{
	json_t	   *v = json_object_get(obj, key);
	char	   *end;
	long long	n;

	if (v == NULL)
	{
		if (missing == INT64_MIN)
			return ModelJsonError(err, path, "an integer");
		*out = missing;
		return true;
	}
	if (json_is_integer(v))
	{
		*out = json_integer_value(v);
		return true;
	}
	if (!json_is_string(v))
		return ModelJsonError(err, path, "an integer");
	errno = 0;
	n = strtoll(json_string_value(v), &end, 10);
	if (errno != 0 || end == json_string_value(v) || *end != '\0')
		return ModelJsonError(err, path, "an integer");
	*out = n;
	return true;
}

/* Reads a JSON array element as a number into *out, for node arrays. */
static bool
JsonNumberAt(CsModelError *err, json_t *arr, size_t i, const char *path, double *out)
{
	json_t	   *v = json_array_get(arr, i);

	if (json_is_number(v))
		*out = json_number_value(v);
	else if (json_is_boolean(v))
		*out = json_is_true(v) ? 1 : 0;
	else
		return ModelJsonError(err, path, "an array of numbers");
	return true;
}

/* A node as XGBoost stores it, before layout. */
typedef struct RawNode
{
	float		value;
	int32_t		left;
	int32_t		right;
	int32_t		feature;
	int32_t		parent;
	bool		default_left;
	float		cover;			/* sum_hessian */
} RawNode;

/* Checks the per-node arrays of one tree and reads them into raw. */
static bool
ReadTreeNodes(ParseState *ps, json_t *tree, int t, int64_t n, RawNode *raw)
{
	CsModelError *err = ps->err;
	int			num_features = ps->m->num_features;
	json_t	   *lefts,
			   *rights,
			   *parents,
			   *splits,
			   *conds,
			   *dleft,
			   *hess;

	if ((lefts = JsonArrayMember(err, tree, "left_children", "trees[].left_children", n)) == NULL ||
		(rights = JsonArrayMember(err, tree, "right_children", "trees[].right_children", n)) == NULL ||
		(splits = JsonArrayMember(err, tree, "split_indices", "trees[].split_indices", n)) == NULL ||
		(conds = JsonArrayMember(err, tree, "split_conditions", "trees[].split_conditions", n)) == NULL ||
		(dleft = JsonArrayMember(err, tree, "default_left", "trees[].default_left", n)) == NULL ||
		(parents = JsonArrayMember(err, tree, "parents", "trees[].parents", n)) == NULL ||
	/* libxgboost reads these too, and trusts what it reads: check them here. */
		JsonArrayMember(err, tree, "base_weights", "trees[].base_weights", n) == NULL ||
		JsonArrayMember(err, tree, "loss_changes", "trees[].loss_changes", n) == NULL ||
		(hess = JsonArrayMember(err, tree, "sum_hessian", "trees[].sum_hessian", n)) == NULL)
		return false;

	for (int64_t i = 0; i < n; i++)
	{
		RawNode    *nd = &raw[i];
		double		l,
					r,
					f,
					c,
					dl,
					cover;

		if (!JsonNumberAt(err, lefts, i, "trees[].left_children", &l) ||
			!JsonNumberAt(err, rights, i, "trees[].right_children", &r) ||
			!JsonNumberAt(err, splits, i, "trees[].split_indices", &f) ||
			!JsonNumberAt(err, conds, i, "trees[].split_conditions", &c))
			return false;
		if (!isfinite(c) || fabs(c) > FLT_MAX)
			return Invalid(err, "Tree %d node %lld has a non-finite value.", t, (long long) i);
		nd->value = (float) c;
		if (!JsonNumberAt(err, dleft, i, "trees[].default_left", &dl))
			return false;
		nd->default_left = dl != 0;
		/* only TreeSHAP reads covers; the probe check vets odd ones */
		if (!JsonNumberAt(err, hess, i, "trees[].sum_hessian", &cover))
			return false;
		nd->cover = (float) cover;
		if (l == -1)
		{
			if (r != -1)
				return Invalid(err, "Tree %d node %lld has one child.", t, (long long) i);
			nd->left = nd->right = -1;
			nd->feature = 0;
		}
		else
		{
			if (l != floor(l) || r != floor(r) || l < 1 || r < 1 || l >= n || r >= n || l == r)
				return Invalid(err, "Tree %d node %lld has children out of range.", t, (long long) i);
			if (f != floor(f) || f < 0 || f >= num_features)
				return Invalid(err, "Tree %d node %lld splits on feature %g of %d.",
							   t, (long long) i, f, num_features);
			nd->left = (int32_t) l;
			nd->right = (int32_t) r;
			nd->feature = (int32_t) f;
		}
	}

	/*
	 * Parents: the root has 2147483647 (XGBoost's invalid node id), every
	 * other node its real parent; libxgboost walks them without checks.
	 */
	for (int64_t i = 0; i < n; i++)
	{
		double		par;

		if (!JsonNumberAt(err, parents, i, "trees[].parents", &par))
			return false;
		if (i == 0 ? par != 2147483647 : (par != floor(par) || par < 0 || par >= n))
			return Invalid(err, "Tree %d node %lld has an invalid parent.", t, (long long) i);
		raw[i].parent = (int32_t) par;
	}
	for (int64_t i = 0; i < n; i++)
		if (raw[i].left >= 0 && (raw[raw[i].left].parent != i || raw[raw[i].right].parent != i))
			return Invalid(err, "Tree %d node %lld is not the parent its children name.", t, (long long) i);
	return true;
}

/*
 * Lays checked nodes out breadth first with both children of a node side by
 * side (right = left + 1), leaves pointing to themselves, at the end of the
 * node arrays.  Every node is reached from the root at most once, or this
 * is not a tree.  Returns the number of nodes laid out, or -1.
 */
static int64_t
LayOutTree(ParseState *ps, const RawNode *raw, int t, int64_t n, int *depth)
{
	int			base = ps->m->num_nodes;
	bool	   *seen = calloc(n, sizeof(bool));
	int32_t    *queue = malloc(sizeof(int32_t) * n);
	int32_t    *level = malloc(sizeof(int32_t) * n);
	int64_t		head = 0,
				tail = 0;

	*depth = 0;
	if (seen == NULL || queue == NULL || level == NULL)
	{
		OutOfMemory(ps->err);
		tail = -1;
		goto done;
	}
	queue[tail] = 0;
	level[tail++] = 0;
	seen[0] = true;
	while (head < tail)
	{
		int32_t		old = queue[head];
		int32_t		self = base + head;
		const RawNode *rn = &raw[old];
		CsTreeNode *nd = &ps->nodes[self];

		if (level[head] > *depth)
			*depth = level[head];
		ps->covers[self] = rn->cover;
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
			{
				Invalid(ps->err, "Tree %d is not a tree: a node is reached twice.", t);
				tail = -1;
				goto done;
			}
			seen[rn->left] = seen[rn->right] = true;
			nd->threshold = rn->value;
			nd->left = base + tail;
			nd->feature = (uint32_t) rn->feature | (rn->default_left ? 0 : CS_NODE_MISSING_RIGHT);
			nd->leaf = 0;
			queue[tail] = rn->left;
			level[tail++] = level[head] + 1;
			queue[tail] = rn->right;
			level[tail++] = level[head] + 1;
		}
		head++;
	}
done:
	free(seen);
	free(queue);
	free(level);
	return tail;
}

/*
 * The expected value of the tree laid out at base with count nodes, for
 * TreeSHAP: leaves weighted by cover, in float and in XGBoost's order (left
 * then right, divided by the node's cover).  Children come after their
 * parent, so one backward pass does.
 */
static bool
TreeMean(ParseState *ps, int base, int64_t count, float *out)
{
	float	   *mean = malloc(sizeof(float) * count);

	if (mean == NULL)
		return OutOfMemory(ps->err);
	for (int64_t k = count - 1; k >= 0; k--)
	{
		const CsTreeNode *nd = &ps->nodes[base + k];

		if (nd->left == base + k)
			mean[k] = nd->leaf;
		else
		{
			int			l = nd->left - base;
			float		v = mean[l] * ps->covers[base + l];

			v += mean[l + 1] * ps->covers[base + l + 1];
			v /= ps->covers[base + k];
			mean[k] = v;
		}
	}
	*out = mean[0];
	free(mean);
	return true;
}

/* Checks one tree and appends its nodes to the node arrays. */
static bool
CompileTree(ParseState *ps, json_t *tree, int t)
{
	CsModel    *m = ps->m;
	CsModelError *err = ps->err;
	json_t	   *param = JsonObjectMember(err, tree, "tree_param", "trees[].tree_param");
	int64_t		n,
				leafvec,
				v;
	static const char *const catfields[] = {"categories", "categories_nodes",
	"categories_segments", "categories_sizes"};
	json_t	   *stype,
			   *cats;
	RawNode    *raw;
	int64_t		count;
	int			depth;
	bool		ok;

	if (param == NULL ||
		!JsonIntMember(err, param, "num_nodes", "trees[].tree_param.num_nodes", INT64_MIN, &n) ||
		!JsonIntMember(err, param, "size_leaf_vector", "trees[].tree_param.size_leaf_vector", 0, &leafvec))
		return false;
	if (n < 1 || n > CS_MODEL_MAX_TREE_NODES)
		return ModelJsonError(err, "trees[].tree_param.num_nodes", "a positive node count");
	if (leafvec > 1)
	{
		Fail(err, CS_MODEL_UNSUPPORTED, NULL, "multi-target trees are not supported");
		return Detail(err, "Tree %d has leaf vectors of size %lld.", t, (long long) leafvec);
	}
	/* the per-node arrays come first in the order of checks, read further below */
	if (JsonArrayMember(err, tree, "left_children", "trees[].left_children", n) == NULL ||
		JsonArrayMember(err, tree, "right_children", "trees[].right_children", n) == NULL ||
		JsonArrayMember(err, tree, "split_indices", "trees[].split_indices", n) == NULL ||
		JsonArrayMember(err, tree, "split_conditions", "trees[].split_conditions", n) == NULL ||
		JsonArrayMember(err, tree, "default_left", "trees[].default_left", n) == NULL ||
		JsonArrayMember(err, tree, "parents", "trees[].parents", n) == NULL ||
		JsonArrayMember(err, tree, "base_weights", "trees[].base_weights", n) == NULL ||
		JsonArrayMember(err, tree, "loss_changes", "trees[].loss_changes", n) == NULL ||
		JsonArrayMember(err, tree, "sum_hessian", "trees[].sum_hessian", n) == NULL)
		return false;
	if (!JsonIntMember(err, tree, "id", "trees[].id", t, &v))
		return false;
	if (v != t)
		return ModelJsonError(err, "trees[].id", "the tree's position");
	if (!JsonIntMember(err, param, "num_feature", "trees[].tree_param.num_feature", m->num_features, &v))
		return false;
	if (v != m->num_features)
		return ModelJsonError(err, "trees[].tree_param.num_feature", "the model's feature count");
	if (!JsonIntMember(err, param, "num_deleted", "trees[].tree_param.num_deleted", 0, &v))
		return false;
	if (v < 0)
		return ModelJsonError(err, "trees[].tree_param.num_deleted", "a count");
	for (int c = 0; c < (int) (sizeof(catfields) / sizeof(catfields[0])); c++)
	{
		json_t	   *a = json_object_get(tree, catfields[c]);

		if (a != NULL && (!json_is_array(a) || json_array_size(a) > 0))
		{
			Fail(err, CS_MODEL_UNSUPPORTED, CATEGORICAL_HINT, "categorical splits are not supported");
			return Detail(err, "Tree %d has a non-empty %s.", t, catfields[c]);
		}
	}
	stype = json_object_get(tree, "split_type");
	cats = json_object_get(tree, "categories_nodes");
	if (json_is_array(cats) && json_array_size(cats) > 0)
	{
		Fail(err, CS_MODEL_UNSUPPORTED, CATEGORICAL_HINT, "categorical splits are not supported");
		return Detail(err, "Tree %d has categorical splits.", t);
	}
	if (stype != NULL)
	{
		if (!json_is_array(stype) || (int64_t) json_array_size(stype) != n)
			return ModelJsonError(err, "trees[].split_type", "an array of one element per node");
		for (int64_t i = 0; i < n; i++)
		{
			double		s;

			if (!JsonNumberAt(err, stype, i, "trees[].split_type", &s))
				return false;
			if (s != 0)
			{
				Fail(err, CS_MODEL_UNSUPPORTED, CATEGORICAL_HINT, "categorical splits are not supported");
				return Detail(err, "Tree %d node %lld is a categorical split.", t, (long long) i);
			}
		}
	}

	raw = malloc(sizeof(RawNode) * n);
	if (raw == NULL)
		return OutOfMemory(err);
	ok = ReadTreeNodes(ps, tree, t, n, raw);

	/* room for the whole tree at the end of the node arrays */
	if (ok && (size_t) m->num_nodes + n > ps->capacity)
	{
		size_t		capacity = ps->capacity;
		CsTreeNode *nodes;
		float	   *covers;

		while ((size_t) m->num_nodes + n > capacity)
			capacity *= 2;
		if (capacity > INT32_MAX ||
			(nodes = realloc(ps->nodes, sizeof(CsTreeNode) * capacity)) == NULL)
			ok = OutOfMemory(err);
		else
		{
			ps->nodes = nodes;
			if ((covers = realloc(ps->covers, sizeof(float) * capacity)) == NULL)
				ok = OutOfMemory(err);
			else
			{
				ps->covers = covers;
				ps->capacity = capacity;
			}
		}
	}
	count = ok ? LayOutTree(ps, raw, t, n, &depth) : -1;
	free(raw);
	if (count < 0 || !TreeMean(ps, m->num_nodes, count, &m->tree_means[t]))
		return false;

	m->roots[t] = m->num_nodes;
	m->depths[t] = depth;
	if (depth > m->max_depth)
		m->max_depth = depth;
	m->num_nodes += (int) count;
	return true;
}

/* Reads survival:aft's distribution and scale (aft_loss_param). */
static bool
CompileAftParam(ParseState *ps, json_t *obj)
{
	CsModel    *m = ps->m;
	CsModelError *err = ps->err;
	json_t	   *aft;
	const char *dist;
	const char *scale_str;
	char	   *end;

	if ((aft = JsonObjectMember(err, obj, "aft_loss_param", "learner.objective.aft_loss_param")) == NULL)
		return false;
	dist = json_string_value(json_object_get(aft, "aft_loss_distribution"));
	if (dist == NULL)
		return ModelJsonError(err, "learner.objective.aft_loss_param.aft_loss_distribution", "a string");
	if (strcmp(dist, "normal") == 0)
		m->aft_distribution = CS_AFT_NORMAL;
	else if (strcmp(dist, "logistic") == 0)
		m->aft_distribution = CS_AFT_LOGISTIC;
	else if (strcmp(dist, "extreme") == 0)
		m->aft_distribution = CS_AFT_EXTREME;
	else
		return ModelJsonError(err, "learner.objective.aft_loss_param.aft_loss_distribution",
							  "normal, logistic or extreme");
	scale_str = json_string_value(json_object_get(aft, "aft_loss_distribution_scale"));
	if (scale_str == NULL)
		return ModelJsonError(err, "learner.objective.aft_loss_param.aft_loss_distribution_scale",
							  "a number in a string");
	errno = 0;
	m->aft_scale = strtod(scale_str, &end);
	if (errno != 0 || end == scale_str || *end != '\0' || !isfinite(m->aft_scale) || !(m->aft_scale > 0))
		return ModelJsonError(err, "learner.objective.aft_loss_param.aft_loss_distribution_scale",
							  "a positive number in a string");
	return true;
}

/* Reads the learner's objective, feature count, base score and feature names. */
static bool
CompileLearner(ParseState *ps, json_t *learner, json_t *gb)
{
	CsModel    *m = ps->m;
	CsModelError *err = ps->err;
	json_t	   *lmp,
			   *obj,
			   *fnames,
			   *ftypes;
	const char *gbname;
	const char *objname;
	const char *base_str;
	const ObjectiveInfo *oi = NULL;
	int64_t		num_class,
				num_target,
				num_feature;
	float		base_score;
	char	   *end;

	gbname = json_string_value(json_object_get(gb, "name"));
	if (gbname == NULL)
		return ModelJsonError(err, "learner.gradient_booster.name", "a string");
	if (strcmp(gbname, "gbtree") != 0)
		return Fail(err, CS_MODEL_UNSUPPORTED, "Train the model with booster gbtree.",
					"booster \"%s\" is not supported", gbname);

	if ((obj = JsonObjectMember(err, learner, "objective", "learner.objective")) == NULL)
		return false;
	objname = json_string_value(json_object_get(obj, "name"));
	if (objname == NULL)
		return ModelJsonError(err, "learner.objective.name", "a string");
	for (size_t i = 0; i < sizeof(Objectives) / sizeof(Objectives[0]); i++)
		if (strcmp(objname, Objectives[i].name) == 0)
			oi = &Objectives[i];
	if (oi == NULL)
		return Fail(err, CS_MODEL_UNSUPPORTED,
					"Supported objectives are binary:logistic, binary:logitraw, reg:logistic, reg:squarederror and survival:aft.",
					"objective \"%s\" is not supported", objname);
	if ((m->objective = ResultStrdup(ps, objname)) == NULL)
		return false;
	m->link = oi->link;
	if (oi->link == CS_LINK_EXP && !CompileAftParam(ps, obj))
		return false;

	if ((lmp = JsonObjectMember(err, learner, "learner_model_param", "learner.learner_model_param")) == NULL ||
		!JsonIntMember(err, lmp, "num_class", "learner.learner_model_param.num_class", 0, &num_class) ||
		!JsonIntMember(err, lmp, "num_target", "learner.learner_model_param.num_target", 1, &num_target) ||
		!JsonIntMember(err, lmp, "num_feature", "learner.learner_model_param.num_feature", INT64_MIN, &num_feature))
		return false;
	if (num_class > 1 || num_target > 1)
	{
		Fail(err, CS_MODEL_UNSUPPORTED, NULL, "multi-class and multi-target models are not supported");
		return Detail(err, "The model has %lld classes and %lld targets.",
					  (long long) num_class, (long long) num_target);
	}
	if (num_feature < 1 || num_feature > CS_MODEL_MAX_FEATURES)
		return ModelJsonError(err, "learner.learner_model_param.num_feature", "a feature count between 1 and 100000");
	m->num_features = (int) num_feature;

	base_str = json_string_value(json_object_get(lmp, "base_score"));
	if (base_str == NULL)
		return ModelJsonError(err, "learner.learner_model_param.base_score", "a number in a string");
	errno = 0;
	base_score = strtof(base_str, &end);
	if (errno != 0 || end == base_str || *end != '\0' || !isfinite(base_score))
		return ModelJsonError(err, "learner.learner_model_param.base_score", "a number in a string");
	if (oi->logit_base)
	{
		if (!(base_score > 0.0f && base_score < 1.0f))
			return Invalid(err, "base_score %g is not a probability strictly between 0 and 1.", base_score);
		/* XGBoost's ProbToMargin, in float. */
		m->base_margin = -logf(1.0f / base_score - 1.0f);
	}
	else if (oi->link == CS_LINK_EXP)
	{
		if (!(base_score > 0.0f))
			return Invalid(err, "base_score %g of a survival model is not a positive time.", base_score);
		/* AFT's ProbToMargin, in float. */
		m->base_margin = logf(base_score);
	}
	else
		m->base_margin = base_score;

	fnames = json_object_get(learner, "feature_names");
	if (json_is_array(fnames) && json_array_size(fnames) > 0)
	{
		if ((int64_t) json_array_size(fnames) != num_feature)
			return ModelJsonError(err, "learner.feature_names", "an array of one name per feature");
		if ((m->feature_names = ResultAlloc(ps, sizeof(char *) * num_feature)) == NULL)
			return false;
		for (int i = 0; i < num_feature; i++)
		{
			const char *s = json_string_value(json_array_get(fnames, i));

			if (s == NULL)
				return ModelJsonError(err, "learner.feature_names", "an array of strings");
			if ((m->feature_names[i] = ResultStrdup(ps, s)) == NULL)
				return false;
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
			{
				Fail(err, CS_MODEL_UNSUPPORTED, CATEGORICAL_HINT, "categorical features are not supported");
				return Detail(err, "Feature %zu is categorical.", i + 1);
			}
		}
	}
	return true;
}

/* Fills the model's parsed fields from checked model JSON. */
static bool
CompileModelJson(ParseState *ps, json_t *root)
{
	CsModel    *m = ps->m;
	CsModelError *err = ps->err;
	json_t	   *learner,
			   *gb,
			   *gbmodel,
			   *gbparam,
			   *trees,
			   *tinfo;
	int64_t		num_trees;
	int			ntrees;

	if (!json_is_object(root))
		return ModelJsonError(err, "(root)", "an object");
	if ((learner = JsonObjectMember(err, root, "learner", "learner")) == NULL ||
		(gb = JsonObjectMember(err, learner, "gradient_booster", "learner.gradient_booster")) == NULL ||
		!CompileLearner(ps, learner, gb))
		return false;

	if ((gbmodel = JsonObjectMember(err, gb, "model", "learner.gradient_booster.model")) == NULL ||
		(trees = JsonArrayMember(err, gbmodel, "trees", "learner.gradient_booster.model.trees", -1)) == NULL)
		return false;
	tinfo = json_object_get(gbmodel, "tree_info");
	if (json_array_size(trees) > CS_MODEL_MAX_TREES)
		return ModelJsonError(err, "learner.gradient_booster.model.trees", "an array of at most 1000000 trees");
	if ((gbparam = JsonObjectMember(err, gbmodel, "gbtree_model_param",
									"learner.gradient_booster.model.gbtree_model_param")) == NULL ||
		!JsonIntMember(err, gbparam, "num_trees", "learner.gradient_booster.model.gbtree_model_param.num_trees",
					   INT64_MIN, &num_trees))
		return false;
	if (num_trees != (int64_t) json_array_size(trees))
		return ModelJsonError(err, "learner.gradient_booster.model.gbtree_model_param.num_trees", "the number of trees");
	if (tinfo != NULL)
	{
		if (!json_is_array(tinfo) || json_array_size(tinfo) != json_array_size(trees))
			return ModelJsonError(err, "learner.gradient_booster.model.tree_info", "an array of one element per tree");
		for (size_t i = 0; i < json_array_size(tinfo); i++)
		{
			double		group;

			if (!JsonNumberAt(err, tinfo, i, "learner.gradient_booster.model.tree_info", &group))
				return false;
			if (group != 0)
				return Fail(err, CS_MODEL_UNSUPPORTED, NULL, "multi-class models are not supported");
		}
	}

	ntrees = (int) json_array_size(trees);
	if ((m->roots = ResultAlloc(ps, sizeof(int32_t) * ntrees)) == NULL ||
		(m->depths = ResultAlloc(ps, sizeof(int32_t) * ntrees)) == NULL ||
		(m->tree_means = ResultAlloc(ps, sizeof(float) * ntrees)) == NULL)
		return false;
	m->num_trees = ntrees;
	m->num_nodes = 0;
	ps->capacity = 64;
	ps->nodes = malloc(sizeof(CsTreeNode) * ps->capacity);
	ps->covers = malloc(sizeof(float) * ps->capacity);
	if (ps->nodes == NULL || ps->covers == NULL)
		return OutOfMemory(err);
	for (int t = 0; t < ntrees; t++)
	{
		json_t	   *tree = json_array_get(trees, t);

		if (!json_is_object(tree))
			return ModelJsonError(err, "learner.gradient_booster.model.trees[]", "an object");
		if (!CompileTree(ps, tree, t))
			return false;
	}

	/* the node arrays move to result memory, at their final size */
	if ((m->nodes = ResultAlloc(ps, sizeof(CsTreeNode) * m->num_nodes)) == NULL ||
		(m->covers = ResultAlloc(ps, sizeof(float) * m->num_nodes)) == NULL)
		return false;
	memcpy(m->nodes, ps->nodes, sizeof(CsTreeNode) * m->num_nodes);
	memcpy(m->covers, ps->covers, sizeof(float) * m->num_nodes);
	return true;
}

/* Keeps the model's JSON for libxgboost: the bytes as given, or the UBJ re-encoded. */
static bool
KeepJson(ParseState *ps, json_t *root, const char *data, size_t len, bool is_json)
{
	CsModel    *m = ps->m;
	char	   *dumped = NULL;

	if (!is_json)
	{
		dumped = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
		if (dumped == NULL)
			return OutOfMemory(ps->err);
		data = dumped;
		len = strlen(dumped);
	}
	m->json = ResultAlloc(ps, len + 1);
	if (m->json != NULL)
	{
		memcpy(m->json, data, len);
		m->json[len] = '\0';
		m->json_len = len;
	}
	free(dumped);
	return m->json != NULL;
}

/*
 * Checks model bytes (XGBoost JSON or UBJ) and compiles them into m, which
 * the caller has zeroed.  On failure err says why; result memory handed out
 * so far belongs to the caller either way.
 */
CsModelStatus
CsModelParse(CsModel *m, const char *data, size_t len, const CsAllocator *alloc, CsModelError *err)
{
	ParseState	ps = {m, alloc, err, NULL, NULL, 0};
	json_t	   *root = NULL;
	size_t		i = 0;
	size_t		j;
	bool		is_json;
	bool		ok;

	err->status = CS_MODEL_OK;
	err->message[0] = err->detail[0] = err->hint[0] = '\0';

	while (i < len && isspace((unsigned char) data[i]))
		i++;
	if (i >= len || data[i] != '{')
	{
		Fail(err, CS_MODEL_INVALID,
			 "Save the model with save_model(\"model.json\") or save_model(\"model.ubj\"); the legacy binary format is not supported.",
			 "model is neither XGBoost JSON nor UBJ");
		Detail(err, "The model bytes do not start with an object.");
		return err->status;
	}

	/* JSON continues with a key string or '}', UBJ with a length marker. */
	j = i + 1;
	while (j < len && isspace((unsigned char) data[j]))
		j++;
	is_json = j < len && (data[j] == '"' || data[j] == '}' || j > i + 1);
	if (is_json)
	{
		json_error_t jerr;

		root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
		if (root == NULL)
		{
			Fail(err, CS_MODEL_INVALID, NULL, "could not parse model JSON");
			Detail(err, "%s at line %d, column %d.", jerr.text, jerr.line, jerr.column);
			return err->status;
		}
	}
	else if ((root = CsUbjDecode(data, len, err)) == NULL)
		return err->status;

	ok = CompileModelJson(&ps, root) && KeepJson(&ps, root, data, len, is_json);
	json_decref(root);
	free(ps.nodes);
	free(ps.covers);
	return ok ? CS_MODEL_OK : err->status;
}
