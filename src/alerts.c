/*
 * alerts.c
 *		The per-firing kernels of alert evaluation: a rule condition evaluated
 *		against a customer's context, the factors of a firing rule, and a
 *		message template filled from its placeholder values.  A full evaluation calls them once per customer and
 *		rule, so they are C; the grammar is validated in SQL when a rule is
 *		written (cs.validate_condition, cs.check_template in
 *		src/sql/60_alerts.sql), and these functions still refuse anything
 *		outside it instead of guessing.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/varlena.h"

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
