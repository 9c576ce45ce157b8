/*
 * alerts.c
 *		The per-firing kernels of alert evaluation: a rule condition parsed
 *		and evaluated against a customer's context, the factors of a firing
 *		rule, and a message template filled from its placeholder values.
 *
 *		A condition has one parser, ParseCondition: the write-time check of
 *		cs.alert_rules (cs.validate_condition) and the evaluator
 *		(cs.condition_holds) both run it, so a condition accepted on write is
 *		exactly one the evaluator can run, with one nesting limit.  Only the
 *		feature names are checked at write time alone: they live in
 *		cs.feature_catalog, and an immutable evaluator reads no table (a
 *		feature its context lacks is unknown, like a missing value).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/varlena.h"

#include "cscopilot.h"

PG_FUNCTION_INFO_V1(cs_validate_condition);
PG_FUNCTION_INFO_V1(cs_condition_holds);
PG_FUNCTION_INFO_V1(cs_condition_scores);
PG_FUNCTION_INFO_V1(cs_condition_terms);
PG_FUNCTION_INFO_V1(cs_fill_template);

/* How deep all, any and not may nest, and how many terms a list may have. */
#define COND_MAX_DEPTH 16
#define COND_MAX_TERMS 100

/* The score names a condition may test (cs.condition_scores()). */
static const char *const CONDITION_SCORES[] = {
	"churn_risk", "overall_score", "usage_score", "engagement_score", "support_score", "payment_score",
	"opportunity_score", "opportunity_mrr", "downgrade_risk", "payment_risk", "expansion_score", "expansion_mrr"
};

/* The health bands a condition may test. */
static const char *const CONDITION_BANDS[] = {"red", "yellow", "green"};

/* The comparison operators, in CondOp order. */
static const char *const CONDITION_OPS[] = {"<", "<=", ">", ">=", "=", "!="};

#define NODE_HINT "Use {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}}, {\"feature\": f, \"op\": o, \"value\": n}, {\"score\": s, \"op\": o, \"value\": n} or {\"band\": b}."

/* Three-valued result of a condition. */
typedef enum
{
	COND_FALSE = 0,
	COND_TRUE = 1,
	COND_UNKNOWN = 2
} CondValue;

typedef enum
{
	NODE_ALL,
	NODE_ANY,
	NODE_NOT,
	NODE_BAND,
	NODE_FEATURE,
	NODE_SCORE
} CondKind;

typedef enum
{
	OP_LT,
	OP_LE,
	OP_GT,
	OP_GE,
	OP_EQ,
	OP_NE
} CondOp;

/* A parsed condition node: what the validation accepts and the evaluator runs. */
typedef struct CondNode
{
	CondKind	kind;
	int			nchildren;		/* all, any (n >= 1), not (1) */
	struct CondNode **children;
	char	   *name;			/* feature or score name */
	CondOp		op;
	double		value;
	int			bands;			/* bit i: CONDITION_BANDS[i] */
} CondNode;

/*
 * How a parse checks feature names: at write time against cs.feature_catalog
 * (the only part of the grammar that lives in a table), at evaluation not at
 * all (a feature the context lacks is unknown, as a missing value is).
 */
typedef struct CondParse
{
	bool		check_catalog;
	bool		spi_connected;
} CondParse;

/* The JSON text of a value, as jsonb's output (and RAISE's %) shows it. */
static char *
JsonText(JsonbValue *v)
{
	if (v == NULL)
		return pstrdup("<NULL>");
	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	return JsonbToCString(NULL, &JsonbValueToJsonb(v)->root, 0);
}

/* The value of key in an object container, or NULL when absent. */
static JsonbValue *
ObjectField(JsonbContainer *obj, const char *key, JsonbValue *buf)
{
	if (obj == NULL || !JsonContainerIsObject(obj))
		return NULL;
	return getKeyJsonValueFromContainer(obj, key, strlen(key), buf);
}

/* The container of an object or array value, NULL for scalars. */
static JsonbContainer *
ValueContainer(JsonbValue *v)
{
	if (v != NULL && v->type == jbvBinary)
		return v->val.binary.data;
	return NULL;
}

/* A NUL-terminated copy of a string value, or NULL when v is not a string. */
static char *
ValueString(JsonbValue *v)
{
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Index of s in a list of names, or -1. */
static int
NameIndex(const char *s, const char *const *names, int n)
{
	if (s == NULL)
		return -1;
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* Sorts C strings as ORDER BY does on text: the database's default collation. */
static int
CollatedCmp(const void *a, const void *b)
{
	const char *sa = *(char *const *) a;
	const char *sb = *(char *const *) b;

	return varstr_cmp(sa, strlen(sa), sb, strlen(sb), DEFAULT_COLLATION_OID);
}

/* Whether name is a feature of cs.feature_catalog. */
static bool
FeatureKnown(CondParse *pc, const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			rc;

	if (!pc->check_catalog)
		return true;
	if (!pc->spi_connected)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		pc->spi_connected = true;
	}
	args[0] = CStringGetTextDatum(name);
	rc = SPI_execute_with_args("SELECT 1 FROM cs.feature_catalog WHERE name OPERATOR(pg_catalog.=) $1",
							   1, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", rc);
	return SPI_processed > 0;
}

/* Parses a comparison {"feature" | "score": name, "op": op, "value": number}. */
static void
ParseComparison(JsonbContainer *c, const char *path, CondNode *node, CondParse *pc)
{
	JsonbValue	buf;
	JsonbValue *v;
	char	   *s;
	int			i;

	if ((v = ObjectField(c, "feature", &buf)) != NULL)
	{
		node->kind = NODE_FEATURE;
		s = ValueString(v);
		if (s == NULL || !FeatureKnown(pc, s))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("condition at %s: unknown feature %s", path, JsonText(v)),
					 errhint("Features are the names in cs.feature_catalog.")));
	}
	else
	{
		StringInfoData names;

		v = ObjectField(c, "score", &buf);
		node->kind = NODE_SCORE;
		s = ValueString(v);
		if (NameIndex(s, CONDITION_SCORES, lengthof(CONDITION_SCORES)) < 0)
		{
			initStringInfo(&names);
			for (i = 0; i < lengthof(CONDITION_SCORES); i++)
				appendStringInfo(&names, "%s%s", i > 0 ? ", " : "", CONDITION_SCORES[i]);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("condition at %s: unknown score %s", path, JsonText(v)),
					 errhint("Scores are %s.", names.data)));
		}
	}
	node->name = s;

	v = ObjectField(c, "op", &buf);
	i = NameIndex(ValueString(v), CONDITION_OPS, lengthof(CONDITION_OPS));
	if (i < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("condition at %s: unknown operator %s", path, JsonText(v)),
				 errhint("Operators are <, <=, >, >=, = and !=.")));
	node->op = (CondOp) i;

	v = ObjectField(c, "value", &buf);
	if (v == NULL || v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("condition at %s: value must be a number, not %s", path, JsonText(v))));
	node->value = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

/* Parses {"band": b}: one band or a non-empty array of them. */
static void
ParseBand(JsonbValue *v, const char *path, CondNode *node)
{
	JsonbContainer *arr = ValueContainer(v);
	bool		ok;

	node->kind = NODE_BAND;
	node->bands = 0;
	if (v->type == jbvString)
	{
		int			i = NameIndex(ValueString(v), CONDITION_BANDS, lengthof(CONDITION_BANDS));

		ok = i >= 0;
		if (ok)
			node->bands = 1 << i;
	}
	else if (arr != NULL && JsonContainerIsArray(arr) && JsonContainerSize(arr) > 0)
	{
		uint32		n = JsonContainerSize(arr);

		ok = true;
		for (uint32 j = 0; j < n && ok; j++)
		{
			int			i = NameIndex(ValueString(getIthJsonbValueFromContainer(arr, j)),
									  CONDITION_BANDS, lengthof(CONDITION_BANDS));

			ok = i >= 0;
			if (ok)
				node->bands |= 1 << i;
		}
	}
	else
		ok = false;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("condition at %s: band must be red, yellow or green, or an array of them", path)));
}

/*
 * Parses a condition node (c NULL for a JSON scalar or SQL NULL) at path and
 * depth: the one definition of the grammar, used by the write-time
 * validation and by the evaluator.
 */
static CondNode *
ParseCondition(JsonbContainer *c, const char *path, int depth, CondParse *pc)
{
	CondNode   *node = palloc0(sizeof(CondNode));
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	char	  **keys;
	int			nkeys = 0;
	JsonbValue	buf;
	JsonbValue *field;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	if (depth > COND_MAX_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("condition is nested too deeply at %s", path),
				 errhint("At most %d levels of all, any and not.", COND_MAX_DEPTH)));
	if (c == NULL || !JsonContainerIsObject(c))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("condition at %s must be a JSON object", path),
				 errhint(NODE_HINT)));

	keys = palloc(sizeof(char *) * Max(JsonContainerSize(c), 1));
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_KEY)
			keys[nkeys++] = pnstrdup(v.val.string.val, v.val.string.len);

#define HAS_KEY(k) (ObjectField(c, (k), &buf) != NULL)
	if (nkeys == 1 && (HAS_KEY("all") || HAS_KEY("any")))
	{
		const char *k = keys[0];
		JsonbContainer *list = ValueContainer(ObjectField(c, k, &buf));
		uint32		n;

		if (list == NULL || !JsonContainerIsArray(list) || JsonContainerSize(list) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("condition at %s.%s must be a non-empty array", path, k)));
		n = JsonContainerSize(list);
		if (n > COND_MAX_TERMS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("condition at %s.%s has more than %d terms", path, k, COND_MAX_TERMS)));
		node->kind = strcmp(k, "all") == 0 ? NODE_ALL : NODE_ANY;
		node->nchildren = n;
		node->children = palloc(sizeof(CondNode *) * n);
		for (uint32 i = 0; i < n; i++)
		{
			char	   *sub = psprintf("%s.%s[%u]", path, k, i);

			node->children[i] = ParseCondition(ValueContainer(getIthJsonbValueFromContainer(list, i)),
											   sub, depth + 1, pc);
			pfree(sub);
		}
	}
	else if (nkeys == 1 && HAS_KEY("not"))
	{
		char	   *sub = psprintf("%s.not", path);

		node->kind = NODE_NOT;
		node->nchildren = 1;
		node->children = palloc(sizeof(CondNode *));
		node->children[0] = ParseCondition(ValueContainer(ObjectField(c, "not", &buf)), sub, depth + 1, pc);
		pfree(sub);
	}
	else if (nkeys == 3 && HAS_KEY("op") && HAS_KEY("value") && (HAS_KEY("feature") || HAS_KEY("score")))
		ParseComparison(c, path, node, pc);
	else if (nkeys == 1 && (field = ObjectField(c, "band", &buf)) != NULL)
		ParseBand(field, path, node);
	else
	{
		StringInfoData list;

		qsort(keys, nkeys, sizeof(char *), CollatedCmp);
		initStringInfo(&list);
		for (int i = 0; i < nkeys; i++)
			appendStringInfo(&list, "%s%s", i > 0 ? ", " : "", keys[i]);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("condition at %s has unexpected keys %s", path, list.data),
				 errhint("A node is {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}}, {\"feature\": f, \"op\": o, \"value\": n}, {\"score\": s, \"op\": o, \"value\": n} or {\"band\": b}.")));
	}
#undef HAS_KEY
	for (int i = 0; i < nkeys; i++)
		pfree(keys[i]);
	pfree(keys);
	return node;
}

/* The root container of a condition datum, NULL for a scalar. */
static JsonbContainer *
ConditionRoot(Jsonb *cond)
{
	return cond == NULL || JB_ROOT_IS_SCALAR(cond) ? NULL : &cond->root;
}

/*
 * cs.validate_condition(cond jsonb, path text DEFAULT '$', depth int DEFAULT
 * 0) RETURNS void: raises an error naming the JSON path of the first
 * offending node unless cond is a condition over known features, scores and
 * bands.  The write-time check of cs.alert_rules.
 */
Datum
cs_validate_condition(PG_FUNCTION_ARGS)
{
	Jsonb	   *cond = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	char	   *path = PG_ARGISNULL(1) ? pstrdup("<NULL>") : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			depth = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	CondParse	pc = {.check_catalog = true,.spi_connected = false};

	(void) ParseCondition(ConditionRoot(cond), path, depth, &pc);
	if (pc.spi_connected)
		SPI_finish();
	PG_RETURN_VOID();
}

/* cs.condition_scores() RETURNS text[]: the score names a condition may test. */
Datum
cs_condition_scores(PG_FUNCTION_ARGS)
{
	Datum		names[lengthof(CONDITION_SCORES)];

	for (int i = 0; i < lengthof(CONDITION_SCORES); i++)
		names[i] = CStringGetTextDatum(CONDITION_SCORES[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(names, lengthof(CONDITION_SCORES), TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * A number of the context as float8: numbers as they are, numeric strings
 * parsed (as a ::float8 cast would), JSON null and absence unknown.
 */
static bool
ValueNumber(JsonbValue *v, double *out)
{
	if (v == NULL || v->type == jbvNull)
		return false;
	if (v->type == jbvNumeric)
	{
		*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
												  NumericGetDatum(v->val.numeric)));
		return true;
	}
	if (v->type == jbvString)
	{
		char	   *s = ValueString(v);

		*out = DatumGetFloat8(DirectFunctionCall1(float8in, CStringGetDatum(s)));
		pfree(s);
		return true;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("malformed alert condition"),
			 errdetail("a compared value in the context is neither a number nor null"),
			 errhint("Check the condition with cs.validate_condition().")));
	return false;				/* not reached */
}

/* Evaluates a parsed condition against a context in three-valued logic. */
static CondValue
Evaluate(CondNode *node, JsonbContainer *ctx)
{
	JsonbValue	cbuf,
				vbuf;
	JsonbValue *v;
	double		x,
				y;
	bool		r;

	CHECK_FOR_INTERRUPTS();
	switch (node->kind)
	{
		case NODE_ALL:
		case NODE_ANY:
			{
				/* false decides all, true decides any */
				bool		all = node->kind == NODE_ALL;
				CondValue	result = all ? COND_TRUE : COND_FALSE;

				for (int i = 0; i < node->nchildren; i++)
				{
					CondValue	ri = Evaluate(node->children[i], ctx);

					if (ri == COND_UNKNOWN)
						result = COND_UNKNOWN;
					else if ((ri == COND_TRUE) != all)
						return ri;
				}
				return result;
			}
		case NODE_NOT:
			{
				CondValue	inner = Evaluate(node->children[0], ctx);

				return inner == COND_UNKNOWN ? COND_UNKNOWN : (inner == COND_TRUE ? COND_FALSE : COND_TRUE);
			}
		case NODE_BAND:
			{
				char	   *band = ValueString(ObjectField(ctx, "band", &cbuf));
				int			i;

				if (band == NULL)
					return COND_UNKNOWN;
				i = NameIndex(band, CONDITION_BANDS, lengthof(CONDITION_BANDS));
				return i >= 0 && (node->bands & (1 << i)) ? COND_TRUE : COND_FALSE;
			}
		case NODE_FEATURE:
		case NODE_SCORE:
			break;
	}

	v = ObjectField(ValueContainer(ObjectField(ctx, node->kind == NODE_FEATURE ? "features" : "scores", &cbuf)),
					node->name, &vbuf);
	/* NaN is how features say "missing": it must not compare (NaN > x is true in SQL) */
	if (!ValueNumber(v, &x) || isnan(x))
		return COND_UNKNOWN;
	y = node->value;
	/* float8 comparison semantics: NaN equals NaN and sorts above everything */
	switch (node->op)
	{
		case OP_LT:
			r = float8_lt(x, y);
			break;
		case OP_LE:
			r = float8_le(x, y);
			break;
		case OP_GT:
			r = float8_gt(x, y);
			break;
		case OP_GE:
			r = float8_ge(x, y);
			break;
		case OP_EQ:
			r = float8_eq(x, y);
			break;
		default:
			r = float8_ne(x, y);
			break;
	}
	return r ? COND_TRUE : COND_FALSE;
}

/*
 * cs.condition_holds(cond jsonb, ctx jsonb) RETURNS boolean: true, false, or
 * NULL when the outcome depends on a missing value.  The condition is parsed
 * by the write-time validation's parser, so a malformed one raises the same
 * error it would have on write.
 */
Datum
cs_condition_holds(PG_FUNCTION_ARGS)
{
	Jsonb	   *cond = PG_GETARG_JSONB_P(0);
	Jsonb	   *ctx = PG_GETARG_JSONB_P(1);
	CondParse	pc = {.check_catalog = false,.spi_connected = false};
	CondNode   *node;
	CondValue	r;

	if (!JB_ROOT_IS_OBJECT(ctx))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alert context must be a JSON object"),
				 errhint("A context is {\"features\": {...}, \"scores\": {...}, \"band\": b}.")));
	node = ParseCondition(ConditionRoot(cond), "$", 0, &pc);
	r = Evaluate(node, &ctx->root);
	if (r == COND_UNKNOWN)
		PG_RETURN_NULL();
	PG_RETURN_BOOL(r == COND_TRUE);
}

/* Collects the feature and score names a parsed condition tests, and whether it tests the band. */
static void
CollectTerms(const CondNode *node, ArrayBuildState **features, ArrayBuildState **scores, bool *band)
{
	switch (node->kind)
	{
		case NODE_ALL:
		case NODE_ANY:
		case NODE_NOT:
			for (int i = 0; i < node->nchildren; i++)
				CollectTerms(node->children[i], features, scores, band);
			break;
		case NODE_BAND:
			*band = true;
			break;
		case NODE_FEATURE:
			*features = accumArrayResult(*features, CStringGetTextDatum(node->name), false, TEXTOID,
										 CurrentMemoryContext);
			break;
		case NODE_SCORE:
			*scores = accumArrayResult(*scores, CStringGetTextDatum(node->name), false, TEXTOID,
									   CurrentMemoryContext);
			break;
	}
}

/*
 * cs._condition_terms(cond jsonb, OUT features text[], OUT scores text[], OUT
 * tests_band boolean): what a condition tests, in the order it names them,
 * read by the one parser (alert evaluation builds each rule's factors from it).
 */
Datum
cs_condition_terms(PG_FUNCTION_ARGS)
{
	Jsonb	   *cond = PG_GETARG_JSONB_P(0);
	CondParse	pc = {.check_catalog = false,.spi_connected = false};
	ArrayBuildState *features = NULL;
	ArrayBuildState *scores = NULL;
	bool		band = false;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "cs._condition_terms must return a composite type");
	CollectTerms(ParseCondition(ConditionRoot(cond), "$", 0, &pc), &features, &scores, &band);
	values[0] = features ? makeArrayResult(features, CurrentMemoryContext)
		: PointerGetDatum(construct_empty_array(TEXTOID));
	values[1] = scores ? makeArrayResult(scores, CurrentMemoryContext)
		: PointerGetDatum(construct_empty_array(TEXTOID));
	values[2] = BoolGetDatum(band);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* Appends the text of a placeholder value: strings as they are, JSON otherwise. */
static void
AppendValue(StringInfo out, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			appendBinaryStringInfo(out, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(out,
								   DatumGetCString(DirectFunctionCall1(numeric_out,
																	   NumericGetDatum(v->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(out, v->val.boolean ? "true" : "false");
			break;
		case jbvBinary:
			(void) JsonbToCString(out, v->val.binary.data, v->val.binary.len);
			break;
		default:
			appendStringInfoString(out, "n/a");
			break;
	}
}

/*
 * cs._fill_template(template text, vals jsonb, placeholders text[]) RETURNS
 * text: each {name} replaced, in one pass, by the value vals has for it (n/a
 * when vals has none or null); a {name} not among the placeholders is an
 * error.  A value is never itself searched for placeholders.
 */
Datum
cs_fill_template(PG_FUNCTION_ARGS)
{
	text	   *tmpl = PG_GETARG_TEXT_PP(0);
	Jsonb	   *vals = PG_GETARG_JSONB_P(1);
	ArrayType  *names = PG_GETARG_ARRAYTYPE_P(2);
	const char *s = VARDATA_ANY(tmpl);
	int			len = VARSIZE_ANY_EXHDR(tmpl);
	Datum	   *known;
	bool	   *known_null;
	int			nknown;
	StringInfoData out;
	int			i = 0;

	deconstruct_array(names, TEXTOID, -1, false, TYPALIGN_INT, &known, &known_null, &nknown);
	initStringInfo(&out);
	while (i < len)
	{
		int			j;
		int			k;
		bool		found = false;

		if (s[i] != '{')
		{
			/* copy up to the next brace */
			const char *brace = memchr(s + i, '{', len - i);
			int			stop = brace ? (int) (brace - s) : len;

			appendBinaryStringInfo(&out, s + i, stop - i);
			i = stop;
			continue;
		}
		/* a placeholder is {...} with no brace inside */
		for (j = i + 1; j < len && s[j] != '{' && s[j] != '}'; j++)
			;
		if (j >= len || s[j] == '{')
		{
			appendStringInfoChar(&out, '{');
			i++;
			continue;
		}
		for (k = 0; k < nknown; k++)
		{
			text	   *p;

			if (known_null[k])
				continue;
			p = DatumGetTextPP(known[k]);
			if (VARSIZE_ANY_EXHDR(p) == j - i - 1 && memcmp(VARDATA_ANY(p), s + i + 1, j - i - 1) == 0)
			{
				found = true;
				break;
			}
		}
		if (!found)
		{
			StringInfoData hint;

			initStringInfo(&hint);
			for (k = 0; k < nknown; k++)
				if (!known_null[k])
					appendStringInfo(&hint, "%s{%s}", hint.len > 0 ? ", " : "",
									 TextDatumGetCString(known[k]));
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown placeholder {%s} in template", pnstrdup(s + i + 1, j - i - 1)),
					 errhint("Placeholders are %s.", hint.data)));
		}
		if (JB_ROOT_IS_OBJECT(vals))
		{
			JsonbValue	buf;
			JsonbValue *v = getKeyJsonValueFromContainer(&vals->root, s + i + 1, j - i - 1, &buf);

			if (v != NULL)
				AppendValue(&out, v);
			else
				appendStringInfoString(&out, "n/a");
		}
		else
			appendStringInfoString(&out, "n/a");
		i = j + 1;
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/* ------------------------------------------------------------------------
 * Why an alert fires: its factors
 * ------------------------------------------------------------------------
 */

/* One factor before sorting: its group, its sort name and its value. */
typedef struct Factor
{
	int			ord;
	char	   *name;
	JsonbValue *value;			/* an object (or, rarely, any value) */
} Factor;

static int
FactorCmp(const void *a, const void *b)
{
	const Factor *fa = a;
	const Factor *fb = b;

	if (fa->ord != fb->ord)
		return fa->ord < fb->ord ? -1 : 1;
	/* ORDER BY name in SQL: the database's default collation */
	return varstr_cmp(fa->name, strlen(fa->name), fb->name, strlen(fb->name), DEFAULT_COLLATION_OID);
}

/* A JsonbValue for a whole jsonb datum (scalars unwrapped). */
static JsonbValue *
JsonbDatumValue(Jsonb *jb)
{
	JsonbValue *v = palloc(sizeof(JsonbValue));

	if (JB_ROOT_IS_SCALAR(jb))
	{
		if (!JsonbExtractScalar(&jb->root, v))
			elog(ERROR, "could not extract a jsonb scalar");
	}
	else
	{
		v->type = jbvBinary;
		v->val.binary.data = &jb->root;
		v->val.binary.len = VARSIZE(jb) - VARHDRSZ;
	}
	return v;
}

/* A JsonbValue for a container or scalar found inside a jsonb. */
static JsonbValue *
CopyValue(const JsonbValue *v)
{
	JsonbValue *out = palloc(sizeof(JsonbValue));

	*out = *v;
	return out;
}

static void
PushString(JsonbParseState **st, const char *s)
{
	JsonbValue	v;

	if (s == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) s;
		v.val.string.len = strlen(s);
	}
	(void) pushJsonbValue(st, WJB_VALUE, &v);
}

/* Pushes a value found in a container (a json null when absent). */
static void
PushFound(JsonbParseState **st, JsonbValue *v)
{
	JsonbValue	null;

	if (v == NULL)
	{
		null.type = jbvNull;
		v = &null;
	}
	(void) pushJsonbValue(st, WJB_VALUE, v);
}

/* Text of a value as ->> gives it: strings unquoted, null as NULL. */
static char *
ValueText(JsonbValue *v)
{
	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	return JsonbToCString(NULL, &JsonbValueToJsonb(v)->root, 0);
}

/* The elements of an array container (none for anything else). */
static JsonbValue **
ArrayElements(JsonbContainer *c, int *n)
{
	JsonbValue **out;
	int			cnt;

	*n = 0;
	if (c == NULL || !JsonContainerIsArray(c))
		return NULL;
	cnt = JsonContainerSize(c);
	out = palloc(sizeof(JsonbValue *) * Max(cnt, 1));
	for (int i = 0; i < cnt; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(c, i);

		if (e != NULL)
			out[(*n)++] = e;
	}
	return out;
}

static char *
Position(int o)
{
	return psprintf("%04d", o);
}

/*
 * cs._alert_factors(ctx, cfeatures, cscores, cband, alert_type, risk_factors,
 * drivers, kinds) RETURNS jsonb: the factors of a firing rule, in order:
 * the condition's terms with their values in ctx (by name), then for risk
 * alerts the churn model's factors and the health drivers ('top'), for
 * opportunity alerts the opportunities.  NULL arguments count as empty.
 */
PG_FUNCTION_INFO_V1(cs_alert_factors);

Datum
cs_alert_factors(PG_FUNCTION_ARGS)
{
	Jsonb	   *ctx = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	const char *atype = PG_ARGISNULL(4) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(4));
	bool		risk = strcmp(atype, "risk") == 0;
	bool		opportunity = strcmp(atype, "opportunity") == 0;
	JsonbContainer *root = ctx && !JB_ROOT_IS_SCALAR(ctx) ? &ctx->root : NULL;
	JsonbValue	buf,
				buf2;
	JsonbValue *features = ObjectField(root, "features", &buf);
	JsonbContainer *fc = features ? ValueContainer(CopyValue(features)) : NULL;
	JsonbValue *scores = ObjectField(root, "scores", &buf2);
	JsonbContainer *sc = scores ? ValueContainer(CopyValue(scores)) : NULL;
	Factor	   *f = NULL;
	int			nf = 0,
				cap = 16;
	JsonbParseState *st = NULL;
	JsonbValue *res;

	f = palloc(sizeof(Factor) * cap);

#define ADD_FACTOR(o, nm, val) \
	do { \
		if (nf == cap) { cap *= 2; f = repalloc(f, sizeof(Factor) * cap); } \
		f[nf].ord = (o); f[nf].name = (nm); f[nf].value = (val); nf++; \
	} while (0)

	/* the condition's terms */
	for (int which = 1; which <= 2; which++)
	{
		ArrayType  *arr;
		Datum	   *names;
		bool	   *nulls;
		int			n;

		if (PG_ARGISNULL(which))
			continue;
		arr = PG_GETARG_ARRAYTYPE_P(which);
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			char	   *name;
			JsonbValue	vbuf;
			JsonbValue *v;

			if (nulls[i])
				continue;
			name = TextDatumGetCString(names[i]);
			v = ObjectField(which == 1 ? fc : sc, name, &vbuf);
			st = NULL;
			(void) pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
			CsJsonbPushKey(&st, "source");
			PushString(&st, "rule");
			CsJsonbPushKey(&st, which == 1 ? "feature" : "score");
			PushString(&st, name);
			CsJsonbPushKey(&st, "value");
			PushFound(&st, v);
			ADD_FACTOR(1, name, pushJsonbValue(&st, WJB_END_OBJECT, NULL));
		}
	}
	if (!PG_ARGISNULL(3) && PG_GETARG_BOOL(3))
	{
		JsonbValue	vbuf;

		st = NULL;
		(void) pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		CsJsonbPushKey(&st, "source");
		PushString(&st, "rule");
		CsJsonbPushKey(&st, "band");
		PushFound(&st, ObjectField(root, "band", &vbuf));
		ADD_FACTOR(1, "band", pushJsonbValue(&st, WJB_END_OBJECT, NULL));
	}

	/* the churn model's factors */
	if (risk && !PG_ARGISNULL(5))
	{
		Jsonb	   *rf = PG_GETARG_JSONB_P(5);
		int			n;
		JsonbValue **el = ArrayElements(JB_ROOT_IS_SCALAR(rf) ? NULL : &rf->root, &n);

		for (int i = 0; i < n; i++)
		{
			JsonbContainer *ec = ValueContainer(el[i]);

			if (ec != NULL && JsonContainerIsObject(ec))
			{
				/* {'source': 'churn_model'} || x: x's own keys win */
				JsonbIterator *it = JsonbIteratorInit(ec);
				JsonbValue	v;
				JsonbIteratorToken tok;

				st = NULL;
				(void) pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
				CsJsonbPushKey(&st, "source");
				PushString(&st, "churn_model");
				while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
					if (tok == WJB_KEY || tok == WJB_VALUE)
						(void) pushJsonbValue(&st, tok, &v);
				ADD_FACTOR(2, Position(i + 1), pushJsonbValue(&st, WJB_END_OBJECT, NULL));
			}
			else
			{
				/* not an object: jsonb's || makes an array of both */
				Jsonb	   *src = JsonbValueToJsonb(el[i]);
				Datum		obj = DirectFunctionCall1(jsonb_in, CStringGetDatum("{\"source\": \"churn_model\"}"));
				Datum		cat = DirectFunctionCall2(jsonb_concat, obj, JsonbPGetDatum(src));

				ADD_FACTOR(2, Position(i + 1), JsonbDatumValue(DatumGetJsonbP(cat)));
			}
		}
	}

	/* the health drivers */
	if (risk && !PG_ARGISNULL(6))
	{
		Jsonb	   *dr = PG_GETARG_JSONB_P(6);
		JsonbValue	tbuf;
		JsonbValue *top = ObjectField(JB_ROOT_IS_SCALAR(dr) ? NULL : &dr->root, "top", &tbuf);
		int			n = 0;
		JsonbValue **el = top ? ArrayElements(ValueContainer(CopyValue(top)), &n) : NULL;

		for (int i = 0; i < n; i++)
		{
			JsonbContainer *ec = ValueContainer(el[i]);
			JsonbValue	b1,
						b2,
						b3;

			if (ec != NULL && !JsonContainerIsObject(ec))
				ec = NULL;
			st = NULL;
			(void) pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
			CsJsonbPushKey(&st, "source");
			PushString(&st, "health");
			CsJsonbPushKey(&st, "feature");
			PushString(&st, ValueText(ObjectField(ec, "measure", &b1)));
			CsJsonbPushKey(&st, "value");
			PushFound(&st, ObjectField(ec, "value", &b2));
			CsJsonbPushKey(&st, "impact");
			PushFound(&st, ObjectField(ec, "impact", &b3));
			ADD_FACTOR(3, Position(i + 1), pushJsonbValue(&st, WJB_END_OBJECT, NULL));
		}
	}

	/* the opportunities */
	if (opportunity && !PG_ARGISNULL(7))
	{
		Jsonb	   *k = PG_GETARG_JSONB_P(7);
		int			n;
		JsonbValue **el = ArrayElements(JB_ROOT_IS_SCALAR(k) ? NULL : &k->root, &n);

		if (JB_ROOT_IS_SCALAR(k) || JB_ROOT_IS_OBJECT(k))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot extract elements from an object or a scalar")));
		for (int i = 0; i < n; i++)
			ADD_FACTOR(4, Position(i + 1), el[i]);
	}
#undef ADD_FACTOR

	qsort(f, nf, sizeof(Factor), FactorCmp);
	st = NULL;
	(void) pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < nf; i++)
		(void) pushJsonbValue(&st, WJB_ELEM, f[i].value);
	res = pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

static int
CStringCmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * cs._factor_names(factors jsonb) RETURNS text[]: the distinct names (the
 * first string among 'feature', 'score' and 'kind' of each factor object:
 * a rule term's feature or score, a model factor's or driver's feature, an
 * opportunity's kind), sorted: the key that playbooks are ranked by.
 */
PG_FUNCTION_INFO_V1(cs_factor_names);

Datum
cs_factor_names(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	int			n,
				m = 0;
	JsonbValue **el;
	char	  **names;
	Datum	   *out;

	if (JB_ROOT_IS_SCALAR(jb) || JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot extract elements from an object or a scalar")));
	el = ArrayElements(&jb->root, &n);
	names = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		JsonbContainer *ec = ValueContainer(el[i]);
		static const char *const keys[] = {"feature", "score", "kind"};
		char	   *name = NULL;

		if (ec == NULL || !JsonContainerIsObject(ec))
			continue;
		/* names are strings: an opportunity's numeric score is not one */
		for (int k = 0; k < lengthof(keys) && name == NULL; k++)
		{
			JsonbValue	buf;

			name = ValueString(ObjectField(ec, keys[k], &buf));
		}
		if (name != NULL)
			names[m++] = name;
	}
	qsort(names, m, sizeof(char *), CStringCmp);
	out = palloc(sizeof(Datum) * Max(m, 1));
	n = 0;
	for (int i = 0; i < m; i++)
		if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
			out[n++] = CStringGetTextDatum(names[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, n, TEXTOID, -1, false, TYPALIGN_INT));
}
