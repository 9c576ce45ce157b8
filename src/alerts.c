/*
 * alerts.c
 *		The per-firing kernels of alert evaluation: a rule condition evaluated
 *		against a customer's context, and a message template filled from its
 *		placeholder values.  A full evaluation calls them once per customer and
 *		rule, so they are C; the grammar is validated in SQL when a rule is
 *		written (cs.validate_condition, cs.check_template in
 *		src/sql/60_alerts.sql), and these functions still refuse anything
 *		outside it instead of guessing.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "cscopilot.h"

PG_FUNCTION_INFO_V1(cs_condition_holds);
PG_FUNCTION_INFO_V1(cs_fill_template);

/* Three-valued result of a condition. */
typedef enum
{
	COND_FALSE = 0,
	COND_TRUE = 1,
	COND_UNKNOWN = 2
} CondValue;

static void
BadCondition(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("malformed alert condition"),
			 errdetail("%s", detail),
			 errhint("Check the condition with cs.validate_condition().")));
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
	BadCondition("a compared value in the context is neither a number nor null");
	return false;				/* not reached */
}

static CondValue Evaluate(JsonbContainer *cond, JsonbContainer *ctx, int depth);

/* {"all": [...]} and {"any": [...]}: false decides all, true decides any. */
static CondValue
EvaluateList(JsonbContainer *list, bool all, JsonbContainer *ctx, int depth)
{
	uint32		n,
				i;
	CondValue	result = all ? COND_TRUE : COND_FALSE;

	if (list == NULL || !JsonContainerIsArray(list) || JsonContainerSize(list) == 0)
		BadCondition("\"all\" and \"any\" take a non-empty array of conditions");
	n = JsonContainerSize(list);
	for (i = 0; i < n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(list, i);
		CondValue	r;

		r = Evaluate(ValueContainer(elem), ctx, depth + 1);
		if (r == COND_UNKNOWN)
			result = COND_UNKNOWN;
		else if ((r == COND_TRUE) != all)
			return r;
	}
	return result;
}

static CondValue
Evaluate(JsonbContainer *cond, JsonbContainer *ctx, int depth)
{
	JsonbValue	buf,
				cbuf,
				vbuf;
	JsonbValue *v;
	char	   *name;
	char	   *op;
	double		x,
				y;
	bool		r;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	if (depth > 64)
		BadCondition("the condition is nested more than 64 levels deep");
	if (cond == NULL || !JsonContainerIsObject(cond))
		BadCondition("every node of a condition is a JSON object");

	if ((v = ObjectField(cond, "all", &buf)) != NULL)
		return EvaluateList(ValueContainer(v), true, ctx, depth);
	if ((v = ObjectField(cond, "any", &buf)) != NULL)
		return EvaluateList(ValueContainer(v), false, ctx, depth);
	if ((v = ObjectField(cond, "not", &buf)) != NULL)
	{
		CondValue	inner = Evaluate(ValueContainer(v), ctx, depth + 1);

		return inner == COND_UNKNOWN ? COND_UNKNOWN : (inner == COND_TRUE ? COND_FALSE : COND_TRUE);
	}
	if ((v = ObjectField(cond, "band", &buf)) != NULL)
	{
		char	   *band = ValueString(ObjectField(ctx, "band", &cbuf));

		if (band == NULL)
			return COND_UNKNOWN;
		if (v->type == jbvString)
			r = (strlen(band) == (size_t) v->val.string.len &&
				 memcmp(band, v->val.string.val, v->val.string.len) == 0);
		else
		{
			JsonbContainer *arr = ValueContainer(v);
			JsonbValue	key;

			if (arr == NULL || !JsonContainerIsArray(arr))
				BadCondition("\"band\" is a string or an array of strings");
			key.type = jbvString;
			key.val.string.val = band;
			key.val.string.len = strlen(band);
			r = findJsonbValueFromContainer(arr, JB_FARRAY, &key) != NULL;
		}
		return r ? COND_TRUE : COND_FALSE;
	}

	/* a comparison: {"feature" | "score": name, "op": op, "value": number} */
	if ((v = ObjectField(cond, "feature", &buf)) != NULL)
		v = ObjectField(ValueContainer(ObjectField(ctx, "features", &cbuf)),
						(name = ValueString(v)) ? name : "", &vbuf);
	else if ((v = ObjectField(cond, "score", &buf)) != NULL)
		v = ObjectField(ValueContainer(ObjectField(ctx, "scores", &cbuf)),
						(name = ValueString(v)) ? name : "", &vbuf);
	else
		BadCondition("a node is all, any, not, band, or a feature or score comparison");
	/* NaN is how features say "missing": it must not compare (NaN > x is true in SQL) */
	if (!ValueNumber(v, &x) || isnan(x))
		return COND_UNKNOWN;

	v = ObjectField(cond, "value", &buf);
	if (v == NULL || v->type != jbvNumeric)
		BadCondition("a comparison's \"value\" is a number");
	y = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	op = ValueString(ObjectField(cond, "op", &buf));
	if (op == NULL)
		BadCondition("a comparison's \"op\" is one of <, <=, >, >=, =, !=");
	/* float8 comparison semantics: NaN equals NaN and sorts above everything */
	if (strcmp(op, "<") == 0)
		r = float8_lt(x, y);
	else if (strcmp(op, "<=") == 0)
		r = float8_le(x, y);
	else if (strcmp(op, ">") == 0)
		r = float8_gt(x, y);
	else if (strcmp(op, ">=") == 0)
		r = float8_ge(x, y);
	else if (strcmp(op, "=") == 0)
		r = float8_eq(x, y);
	else if (strcmp(op, "!=") == 0)
		r = float8_ne(x, y);
	else
	{
		BadCondition("a comparison's \"op\" is one of <, <=, >, >=, =, !=");
		r = false;				/* not reached */
	}
	return r ? COND_TRUE : COND_FALSE;
}

/*
 * cs.condition_holds(cond jsonb, ctx jsonb) RETURNS boolean: true, false, or
 * NULL when the outcome depends on a missing value.
 */
Datum
cs_condition_holds(PG_FUNCTION_ARGS)
{
	Jsonb	   *cond = PG_GETARG_JSONB_P(0);
	Jsonb	   *ctx = PG_GETARG_JSONB_P(1);
	CondValue	r;

	if (!JB_ROOT_IS_OBJECT(ctx))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alert context must be a JSON object"),
				 errhint("A context is {\"features\": {...}, \"scores\": {...}, \"band\": b}.")));
	r = Evaluate(JB_ROOT_IS_SCALAR(cond) ? NULL : &cond->root, &ctx->root, 0);
	if (r == COND_UNKNOWN)
		PG_RETURN_NULL();
	PG_RETURN_BOOL(r == COND_TRUE);
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
