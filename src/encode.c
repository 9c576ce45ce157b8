/*
 * encode.c
 *		Custom models over named, typed columns: the encoding cs.train_model
 *		learns from a query without a features column, and its application to
 *		a record or a jsonb object at scoring (cs.predict_row, cs.encode_row).
 *
 * Design
 * ------
 * Every column of the training query but label, group_key and as_of is an
 * input, taken by its type:
 *
 * - numeric (smallint, integer, bigint, real, double precision, numeric):
 *   one input, its value as float4; NULL (and numeric NaN) is missing (NaN);
 * - boolean: one input, 1 or 0; NULL is missing;
 * - category (text, varchar, char(n) without its padding, enums, any type of
 *   the string category): a vocabulary learnt from the training rows, sorted
 *   by bytes.  A value seen fewer than min_category_count times is folded
 *   into "other".  One-hot (the default) gives one input per vocabulary
 *   entry, named col=value, plus col=(other) when values were folded: the
 *   row's entry is 1, the others 0.  Ordinal gives one input, named col: the
 *   entry's position in the vocabulary (0-based), other the vocabulary's
 *   length.  NULL is missing: all of the column's inputs NaN.  A value never
 *   seen in training is missing too: XGBoost learnt a direction for missing
 *   values at every split, and an unseen value says as little as NULL, so it
 *   takes the same path (for one-hot, all indicators NaN, never all 0, which
 *   would be a row that is "none of the known values" and was never seen).
 *
 * The encoding is JSON kept in cs.models.encoding, so a record is scored by
 * column name, whatever its column order; columns the model does not use
 * are ignored, so a whole table row can be scored.  cs.train_model calls
 * CsEncodeTrainingQuery before anything else: it reads the query once
 * through a cursor to learn the vocabularies, then rewrites the query to
 * return the encoded features (through cs._encode_row) and the params to
 * name them, so the rest of training runs unchanged on a features column.
 *
 * At scoring the parsed encoding hangs off the cached CsModel (modelcache.c)
 * and is freed with it, and the mapping of a record type to the encoded
 * columns is kept for the last record type seen, so the per-row path
 * deforms the tuple and looks values up in sorted vocabularies.
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
/* fmgrprotos.h declares a json_object() that clashes with jansson's. */
#define json_object pg_json_object
#include "utils/builtins.h"
#undef json_object
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/typcache.h"

#include <jansson.h>
#include <xgboost/c_api.h>

#include "model.h"
#include "encode.h"

PG_FUNCTION_INFO_V1(cs_predict_row);
PG_FUNCTION_INFO_V1(cs_encode_row);
PG_FUNCTION_INFO_V1(cs__encode_row);
PG_FUNCTION_INFO_V1(cs__xgboost_predict);

#define FETCH_ROWS 10000
#define OTHER_SUFFIX "=(other)"

/* What a column is to the model. */
typedef enum EncKind
{
	ENC_NUMERIC,
	ENC_BOOLEAN,
	ENC_CATEGORY,
	ENC_UNSUPPORTED
} EncKind;

/* How a value of the record's type becomes a number or category bytes. */
typedef enum EncConv
{
	CONV_INT2,
	CONV_INT4,
	CONV_INT8,
	CONV_FLOAT4,
	CONV_FLOAT8,
	CONV_NUMERIC,
	CONV_BOOL,
	CONV_TEXT,					/* text, varchar: the bytes */
	CONV_BPCHAR,				/* char(n): the bytes without trailing blanks */
	CONV_OUTPUT					/* enums and other string types: the output function */
} EncConv;

/* A category value: bytes and length (no terminator needed). */
typedef struct CatKey
{
	const char *s;
	int			len;
} CatKey;

/* One encoded column. */
typedef struct EncColumn
{
	char	   *name;
	char	   *type;			/* SQL type it was trained as */
	EncKind		kind;
	bool		onehot;
	int			ncats;
	CatKey	   *cats;			/* vocabulary, sorted by bytes */
	int			nother;
	CatKey	   *other;			/* values folded into other, sorted */
	int			first;			/* index of its first input */
	int			ninputs;
	/* how the bound record type gives it */
	int			attno;			/* 0-based attribute */
	EncConv		conv;
	FmgrInfo	out;			/* for CONV_OUTPUT */
} EncColumn;

/* A parsed encoding, with the record type it is bound to. */
typedef struct CsEncoding
{
	MemoryContext mcxt;			/* owns everything here */
	int			ncols;
	EncColumn  *cols;
	int			ninputs;
	char	  **input_names;
	Oid			rectype;		/* bound record type, InvalidOid when none */
	int32		rectypmod;
	uint64		rectypeid;		/* RecordTypeIdentifier when bound */
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	float	   *x;				/* the encoded row */
} CsEncoding;

/* ------------------------------------------------------------------------
 * Types and categories
 * ------------------------------------------------------------------------
 */

/* Classifies a column type, and says how its values convert. */
static EncKind
ClassifyType(Oid type, EncConv *conv)
{
	Oid			base = getBaseType(type);
	char		category;
	bool		preferred;

	switch (base)
	{
		case INT2OID:
			*conv = CONV_INT2;
			return ENC_NUMERIC;
		case INT4OID:
			*conv = CONV_INT4;
			return ENC_NUMERIC;
		case INT8OID:
			*conv = CONV_INT8;
			return ENC_NUMERIC;
		case FLOAT4OID:
			*conv = CONV_FLOAT4;
			return ENC_NUMERIC;
		case FLOAT8OID:
			*conv = CONV_FLOAT8;
			return ENC_NUMERIC;
		case NUMERICOID:
			*conv = CONV_NUMERIC;
			return ENC_NUMERIC;
		case BOOLOID:
			*conv = CONV_BOOL;
			return ENC_BOOLEAN;
		case TEXTOID:
		case VARCHAROID:
			*conv = CONV_TEXT;
			return ENC_CATEGORY;
		case BPCHAROID:
			*conv = CONV_BPCHAR;
			return ENC_CATEGORY;
		default:
			break;
	}
	get_type_category_preferred(base, &category, &preferred);
	if (category == TYPCATEGORY_STRING || category == TYPCATEGORY_ENUM)
	{
		*conv = CONV_OUTPUT;
		return ENC_CATEGORY;
	}
	return ENC_UNSUPPORTED;
}

/* The name of a kind, as stored in the encoding. */
static const char *
KindName(EncKind kind)
{
	switch (kind)
	{
		case ENC_NUMERIC:
			return "numeric";
		case ENC_BOOLEAN:
			return "boolean";
		case ENC_CATEGORY:
			return "category";
		default:
			return "unsupported";
	}
}

/* A numeric datum as double. */
static double
NumberValue(Datum d, EncConv conv)
{
	switch (conv)
	{
		case CONV_INT2:
			return DatumGetInt16(d);
		case CONV_INT4:
			return DatumGetInt32(d);
		case CONV_INT8:
			return (double) DatumGetInt64(d);
		case CONV_FLOAT4:
			return DatumGetFloat4(d);
		case CONV_FLOAT8:
			return DatumGetFloat8(d);
		case CONV_NUMERIC:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, d));
		default:
			elog(ERROR, "unexpected numeric conversion %d", (int) conv);
	}
	return 0;
}

/* A category datum's bytes (palloc'd in the current context when converted). */
static const char *
CategoryBytes(Datum d, EncConv conv, FmgrInfo *out, int *len)
{
	if (conv == CONV_TEXT || conv == CONV_BPCHAR)
	{
		text	   *t = DatumGetTextPP(d);
		const char *s = VARDATA_ANY(t);
		int			n = VARSIZE_ANY_EXHDR(t);

		/* char(n) pads with blanks that are not part of the value */
		if (conv == CONV_BPCHAR)
			while (n > 0 && s[n - 1] == ' ')
				n--;
		*len = n;
		return s;
	}
	else
	{
		char	   *s = OutputFunctionCall(out, d);

		*len = strlen(s);
		return s;
	}
}

/* Orders category values by bytes, a shorter prefix first. */
static int
CatCmp(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* qsort comparator of CatKey. */
static int
CatKeyCmp(const void *a, const void *b)
{
	const CatKey *ka = a;
	const CatKey *kb = b;

	return CatCmp(ka->s, ka->len, kb->s, kb->len);
}

/* Position of a value in a sorted array, or -1. */
static int
CatFind(const CatKey *arr, int n, const char *s, int len)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = CatCmp(s, len, arr[mid].s, arr[mid].len);

		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -1;
}

/* ------------------------------------------------------------------------
 * Encoding a row
 * ------------------------------------------------------------------------
 */

/* Sets all inputs of a column to missing. */
static inline void
EncodeMissing(const EncColumn *c, float *x)
{
	for (int i = 0; i < c->ninputs; i++)
		x[c->first + i] = NAN;
}

/* Encodes one category value: its vocabulary entry, other, or missing when unseen. */
static void
EncodeCategory(const EncColumn *c, const char *s, int len, float *x)
{
	int			code = CatFind(c->cats, c->ncats, s, len);

	if (code < 0 && c->nother > 0 && CatFind(c->other, c->nother, s, len) >= 0)
		code = c->ncats;
	if (code < 0)
	{
		EncodeMissing(c, x);
		return;
	}
	if (c->onehot)
	{
		for (int i = 0; i < c->ninputs; i++)
			x[c->first + i] = 0;
		x[c->first + code] = 1;
	}
	else
		x[c->first] = (float) code;
}

/* Stores a number, refusing infinities (NaN is missing). */
static inline void
EncodeNumber(const EncColumn *c, double v, float *x)
{
	float		f = (float) v;

	if (isinf(f))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value of column \"%s\" is infinite or out of the range of real", c->name),
				 errhint("Use NULL for a missing value.")));
	x[c->first] = f;
}

/* Raises the error for a column of the wrong type. */
static void pg_attribute_noreturn()
WrongType(const EncColumn *c, const char *given)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("column \"%s\" is %s, but the model was trained on it as %s (%s)",
					c->name, given, KindName(c->kind), c->type),
			 errhint("Cast the column to %s.", c->type)));
}

/* Identifies a record type's current columns (a table's change after ALTER TABLE). */
static uint64
RecordTypeIdentifier(Oid typid)
{
	/* a blessed RECORD typmod never changes within the backend */
	if (typid == RECORDOID)
		return 0;
	return lookup_type_cache(typid, TYPECACHE_TUPDESC)->tupDesc_identifier;
}

/* Maps the encoded columns onto a record type; errors for a missing or mistyped column. */
static void
EncodingBind(CsEncoding *enc, Oid typid, int32 typmod)
{
	TupleDesc	desc = lookup_rowtype_tupdesc(typid, typmod);
	TupleDesc	copy = CreateTupleDescCopy(desc);
	int		   *attnos = palloc(sizeof(int) * enc->ncols);
	EncConv    *convs = palloc(sizeof(EncConv) * enc->ncols);
	MemoryContext old;

	ReleaseTupleDesc(desc);
	for (int i = 0; i < enc->ncols; i++)
	{
		EncColumn  *c = &enc->cols[i];
		int			found = -1;

		for (int a = 0; a < copy->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(copy, a);

			if (!att->attisdropped && strcmp(NameStr(att->attname), c->name) == 0)
			{
				found = a;
				break;
			}
		}
		if (found < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("the record has no column \"%s\", an input of the model", c->name),
					 errdetail("The model was trained on %d columns; each must be in the record, in any order.",
							   enc->ncols),
					 errhint("Alias an expression AS \"%s\" as in the training query.", c->name)));
		if (ClassifyType(TupleDescAttr(copy, found)->atttypid, &convs[i]) != c->kind)
			WrongType(c, format_type_be(TupleDescAttr(copy, found)->atttypid));
		attnos[i] = found;
	}

	/* Everything checked: bind. */
	enc->rectype = InvalidOid;
	old = MemoryContextSwitchTo(enc->mcxt);
	if (enc->desc)
	{
		FreeTupleDesc(enc->desc);
		pfree(enc->values);
		pfree(enc->nulls);
	}
	enc->desc = CreateTupleDescCopy(copy);
	enc->values = palloc(sizeof(Datum) * Max(copy->natts, 1));
	enc->nulls = palloc(sizeof(bool) * Max(copy->natts, 1));
	for (int i = 0; i < enc->ncols; i++)
	{
		EncColumn  *c = &enc->cols[i];

		c->attno = attnos[i];
		c->conv = convs[i];
		if (c->conv == CONV_OUTPUT)
		{
			Oid			outfn;
			bool		varlena;

			getTypeOutputInfo(TupleDescAttr(copy, c->attno)->atttypid, &outfn, &varlena);
			fmgr_info_cxt(outfn, &c->out, enc->mcxt);
		}
	}
	MemoryContextSwitchTo(old);
	FreeTupleDesc(copy);
	pfree(attnos);
	pfree(convs);
	enc->rectype = typid;
	enc->rectypmod = typmod;
	enc->rectypeid = RecordTypeIdentifier(typid);
}

/* Encodes a record into enc->x. */
static const float *
EncodeRecord(CsEncoding *enc, HeapTupleHeader th)
{
	Oid			typid = HeapTupleHeaderGetTypeId(th);
	int32		typmod = HeapTupleHeaderGetTypMod(th);
	HeapTupleData tuple;
	float	   *x = enc->x;

	if (typid != enc->rectype || typmod != enc->rectypmod || enc->rectype == InvalidOid ||
		RecordTypeIdentifier(typid) != enc->rectypeid)
		EncodingBind(enc, typid, typmod);
	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&(tuple.t_self));
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	heap_deform_tuple(&tuple, enc->desc, enc->values, enc->nulls);

	for (int i = 0; i < enc->ncols; i++)
	{
		const EncColumn *c = &enc->cols[i];
		Datum		d = enc->values[c->attno];

		if (enc->nulls[c->attno])
			EncodeMissing(c, x);
		else if (c->kind == ENC_NUMERIC)
			EncodeNumber(c, NumberValue(d, c->conv), x);
		else if (c->kind == ENC_BOOLEAN)
			x[c->first] = DatumGetBool(d) ? 1 : 0;
		else
		{
			int			len;
			const char *s = CategoryBytes(d, c->conv, (FmgrInfo *) &c->out, &len);

			EncodeCategory(c, s, len, x);
		}
	}
	return x;
}

/* The name of a jsonb value's type, for errors. */
static const char *
JsonbKindName(enum jbvType t)
{
	switch (t)
	{
		case jbvString:
			return "a jsonb string";
		case jbvNumeric:
			return "a jsonb number";
		case jbvBool:
			return "a jsonb boolean";
		default:
			return "a jsonb array or object";
	}
}

/* Encodes a jsonb object, keys being column names, into enc->x. */
static const float *
EncodeJsonb(CsEncoding *enc, Jsonb *jb)
{
	float	   *x = enc->x;

	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a jsonb record must be an object of column names and values")));
	for (int i = 0; i < enc->ncols; i++)
	{
		const EncColumn *c = &enc->cols[i];
		JsonbValue	key;
		JsonbValue *v;

		key.type = jbvString;
		key.val.string.val = c->name;
		key.val.string.len = strlen(c->name);
		v = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &key);
		if (v == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("the record has no key \"%s\", an input of the model", c->name),
					 errdetail("The model was trained on %d columns; each must be a key (null for missing).",
							   enc->ncols)));
		if (v->type == jbvNull)
			EncodeMissing(c, x);
		else if (c->kind == ENC_NUMERIC && v->type == jbvNumeric)
			EncodeNumber(c, DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
															   NumericGetDatum(v->val.numeric))), x);
		else if (c->kind == ENC_BOOLEAN && v->type == jbvBool)
			x[c->first] = v->val.boolean ? 1 : 0;
		else if (c->kind == ENC_CATEGORY && v->type == jbvString)
			EncodeCategory(c, v->val.string.val, v->val.string.len, x);
		else
			WrongType(c, JsonbKindName(v->type));
		pfree(v);
	}
	return x;
}

/* Encodes argument argno (a row or jsonb) of the call. */
static const float *
EncodeArg(FunctionCallInfo fcinfo, int argno, CsEncoding *enc)
{
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, argno);

	if (type == JSONBOID)
		return EncodeJsonb(enc, PG_GETARG_JSONB_P(argno));
	if (type == InvalidOid || !type_is_rowtype(type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the record to score must be a row or jsonb, not %s",
						type == InvalidOid ? "unknown" : format_type_be(type)),
				 errhint("Pass a table row, as in SELECT cs.predict_row('model', t) FROM t, or a jsonb object.")));
	return EncodeRecord(enc, PG_GETARG_HEAPTUPLEHEADER(argno));
}

/* ------------------------------------------------------------------------
 * The encoding as JSON
 * ------------------------------------------------------------------------
 */

/* Raises the error for a stored encoding that cannot be read. */
static void pg_attribute_noreturn()
BadEncoding(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid model encoding: %s", what)));
}

/* Reads a sorted, duplicate-free array of strings into CatKeys. */
static CatKey *
ParseCats(json_t *arr, int *n)
{
	CatKey	   *out;

	if (arr == NULL)
	{
		*n = 0;
		return NULL;
	}
	if (!json_is_array(arr))
		BadEncoding("vocabulary and other_values must be arrays");
	*n = json_array_size(arr);
	out = palloc(sizeof(CatKey) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		json_t	   *s = json_array_get(arr, i);
		char	   *copy;

		if (!json_is_string(s))
			BadEncoding("categories must be strings");
		out[i].len = json_string_length(s);
		copy = palloc(out[i].len + 1);
		memcpy(copy, json_string_value(s), out[i].len + 1);
		out[i].s = copy;
		if (i > 0 && CatCmp(out[i - 1].s, out[i - 1].len, out[i].s, out[i].len) >= 0)
			BadEncoding("categories must be sorted and distinct");
	}
	return out;
}

/* Parses encoding JSON into a new context under parent. */
static CsEncoding *
EncodingParse(const char *text, MemoryContext parent)
{
	MemoryContext mcxt = AllocSetContextCreate(parent, "cscopilot encoding", ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	json_t	   *volatile root = NULL;
	CsEncoding *enc = palloc0(sizeof(CsEncoding));

	enc->mcxt = mcxt;
	PG_TRY();
	{
		json_error_t jerr;
		json_t	   *cols;
		int			k = 0;

		root = json_loads(text, 0, &jerr);
		cols = json_object_get(root, "columns");
		if (!json_is_array(cols) || json_array_size(cols) == 0)
			BadEncoding("no columns");
		enc->ncols = json_array_size(cols);
		enc->cols = palloc0(sizeof(EncColumn) * enc->ncols);
		for (int i = 0; i < enc->ncols; i++)
		{
			json_t	   *jc = json_array_get(cols, i);
			EncColumn  *c = &enc->cols[i];
			const char *name = json_string_value(json_object_get(jc, "name"));
			const char *type = json_string_value(json_object_get(jc, "type"));
			const char *kind = json_string_value(json_object_get(jc, "kind"));
			json_t	   *inputs = json_object_get(jc, "inputs");

			if (name == NULL || type == NULL || kind == NULL || !json_is_array(inputs))
				BadEncoding("a column needs name, type, kind and inputs");
			c->name = pstrdup(name);
			c->type = pstrdup(type);
			c->first = enc->ninputs;
			if (strcmp(kind, "numeric") == 0 || strcmp(kind, "boolean") == 0)
			{
				c->kind = kind[0] == 'n' ? ENC_NUMERIC : ENC_BOOLEAN;
				c->ninputs = 1;
			}
			else if (strcmp(kind, "category") == 0)
			{
				const char *e = json_string_value(json_object_get(jc, "encoding"));

				c->kind = ENC_CATEGORY;
				if (e == NULL || (strcmp(e, "onehot") != 0 && strcmp(e, "ordinal") != 0))
					BadEncoding("a category's encoding must be onehot or ordinal");
				c->onehot = strcmp(e, "onehot") == 0;
				c->cats = ParseCats(json_object_get(jc, "vocabulary"), &c->ncats);
				c->other = ParseCats(json_object_get(jc, "other_values"), &c->nother);
				c->ninputs = c->onehot ? c->ncats + (c->nother > 0) : 1;
			}
			else
				BadEncoding("kind must be numeric, boolean or category");
			if ((int) json_array_size(inputs) != c->ninputs)
				BadEncoding("a column's inputs do not match its vocabulary");
			for (int j = 0; j < i; j++)
				if (strcmp(enc->cols[j].name, c->name) == 0)
					BadEncoding("a column appears twice");
			enc->ninputs += c->ninputs;
		}
		enc->input_names = palloc(sizeof(char *) * Max(enc->ninputs, 1));
		for (int i = 0; i < enc->ncols; i++)
		{
			json_t	   *inputs = json_object_get(json_array_get(cols, i), "inputs");

			for (int j = 0; j < enc->cols[i].ninputs; j++)
			{
				const char *s = json_string_value(json_array_get(inputs, j));

				if (s == NULL)
					BadEncoding("input names must be strings");
				enc->input_names[k++] = pstrdup(s);
			}
		}
		enc->x = palloc(sizeof(float) * Max(enc->ninputs, 1));
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
	json_decref(root);
	MemoryContextSwitchTo(old);
	return enc;
}

/* The encoding of a model, parsed once per cached model. */
static CsEncoding *
ModelEncoding(CsModel *m)
{
	if (!m->encoding_loaded)
	{
		Oid			t[1] = {INT4OID};
		Datum		v[1] = {Int32GetDatum(m->id)};
		char	   *text = NULL;
		CsEncoding *enc = NULL;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT encoding::text FROM cs.models WHERE id = $1",
								  1, t, v, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read cs.models");
		if (SPI_processed == 1)
			text = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		if (text != NULL)
		{
			enc = EncodingParse(text, m->mcxt);
			if (enc->ninputs != m->num_features)
				BadEncoding("its inputs do not match the model's features");
			for (int i = 0; i < enc->ninputs; i++)
				if (m->feature_names && strcmp(enc->input_names[i], m->feature_names[i]) != 0)
					BadEncoding("its input names do not match the model's feature names");
		}
		SPI_finish();
		m->encoding = enc;
		m->encoding_loaded = true;
	}
	if (m->encoding == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" has no encoding of named columns", m->name ? m->name : "(unnamed)"),
				 errdetail("It was trained or loaded on a features array."),
				 errhint("Score it with cs.predict(model, features float4[]).")));
	return (CsEncoding *) m->encoding;
}

/* ------------------------------------------------------------------------
 * Learning an encoding (cs.train_model)
 * ------------------------------------------------------------------------
 */

/* A category counted in the training rows. */
typedef struct CatEntry
{
	CatKey		key;
	int64		count;
} CatEntry;

/* Hashes a CatKey's bytes. */
static uint32
CatHash(const void *key, Size keysize)
{
	const CatKey *k = key;

	return hash_bytes((const unsigned char *) k->s, k->len);
}

/* Compares two CatKeys for the hash table (0 when equal). */
static int
CatMatch(const void *a, const void *b, Size keysize)
{
	const CatKey *ka = a;
	const CatKey *kb = b;

	return ka->len == kb->len && memcmp(ka->s, kb->s, ka->len) == 0 ? 0 : 1;
}

/* A column of the training query while its encoding is learnt. */
typedef struct LearnColumn
{
	char	   *name;
	int			attno;			/* 1-based, for SPI */
	Oid			type;
	EncKind		kind;
	EncConv		conv;
	FmgrInfo	out;
	bool		onehot;
	HTAB	   *counts;
} LearnColumn;

/* Whether a column of the training query is not an input. */
static bool
ReservedColumn(const char *name)
{
	return strcmp(name, "label") == 0 || strcmp(name, "group_key") == 0 || strcmp(name, "as_of") == 0;
}

/* Appends a JSON array of category strings. */
static void
AppendCats(StringInfo buf, CatKey *cats, int n)
{
	appendStringInfoChar(buf, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, cats[i].s);
	}
	appendStringInfoChar(buf, ']');
}

/*
 * Reads min_category_count and encoding from params (ncols < 0: refuses them);
 * with apply, returns params without them and with feature_names.
 */
static char *
RewriteParams(const char *params_text, LearnColumn *cols, int ncols, int *min_count,
			  char **names, int nnames, bool apply)
{
	json_t	   *volatile root = NULL;
	char	   *volatile dumped = NULL;
	char	   *result = NULL;
	json_error_t jerr;

	root = json_loads(params_text, 0, &jerr);
	if (!json_is_object(root))
	{
		if (root)
			json_decref(root);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be a JSON object")));
	}
	PG_TRY();
	{
		json_t	   *mc = json_object_get(root, "min_category_count");
		json_t	   *enc = json_object_get(root, "encoding");

		/* ncols < 0: the query has a features column */
		if (ncols < 0)
		{
			if (mc || enc)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("training parameters \"encoding\" and \"min_category_count\" apply only to a training query without a features column"),
						 errhint("Return the columns themselves instead of features, or leave these parameters out.")));
			ncols = 0;
		}
		else if (json_object_get(root, "feature_names"))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature_names cannot be given for a training query without a features column"),
					 errdetail("The inputs are named after the columns: col for a number, a boolean or an ordinal category, col=value for a one-hot category.")));
		if (mc)
		{
			if (!json_is_integer(mc) || json_integer_value(mc) < 1 || json_integer_value(mc) > INT_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid training parameter \"min_category_count\""),
						 errdetail("It must be a positive integer.")));
			*min_count = (int) json_integer_value(mc);
		}
		if (enc)
		{
			const char *key;
			json_t	   *v;

			if (!json_is_object(enc))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid training parameter \"encoding\""),
						 errdetail("It must be an object of category column names and \"onehot\" or \"ordinal\".")));
			json_object_foreach(enc, key, v)
			{
				const char *s = json_string_value(v);
				LearnColumn *c = NULL;

				for (int i = 0; i < ncols; i++)
					if (strcmp(cols[i].name, key) == 0)
						c = &cols[i];
				if (c == NULL || c->kind != ENC_CATEGORY)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("params.encoding names \"%s\", which is not a category column of the training query", key),
							 errhint("Only text, varchar, char and enum columns take an encoding.")));
				if (s == NULL || (strcmp(s, "onehot") != 0 && strcmp(s, "ordinal") != 0))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid encoding for column \"%s\"", key),
							 errdetail("It must be \"onehot\" or \"ordinal\".")));
				c->onehot = strcmp(s, "onehot") == 0;
			}
		}
		if (apply)
		{
			json_t	   *arr = json_array();

			json_object_del(root, "min_category_count");
			json_object_del(root, "encoding");
			for (int i = 0; i < nnames; i++)
				json_array_append_new(arr, json_string(names[i]));
			json_object_set_new(root, "feature_names", arr);
			dumped = json_dumps(root, JSON_COMPACT);
			if (dumped == NULL)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			result = pstrdup(dumped);
		}
	}
	PG_FINALLY();
	{
		json_decref(root);
		if (dumped)
			free(dumped);
	}
	PG_END_TRY();
	return result;
}

/* For a training query without a features column: learns its encoding (see encode.h). */
CsTrainingEncoding *
CsEncodeTrainingQuery(const char *kind, char **query, char **params_text)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext batch;
	SPIPlanPtr	plan;
	List	   *sources;
	TupleDesc	desc;
	LearnColumn *cols;
	int			ncols = 0;
	int			min_count = 1;
	uint64		nrows = 0;
	Portal		portal;
	StringInfoData json;
	StringInfoData q;
	char	  **names;
	int			nnames = 0;
	CsTrainingEncoding *result;
	size_t		qlen;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(*query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	sources = SPI_plan_get_plan_sources(plan);
	if (list_length(sources) != 1 || !SPI_is_cursor_plan(plan))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("training query must be a SELECT that returns rows")));
	desc = ((CachedPlanSource *) linitial(sources))->resultDesc;

	/* A features column: the float4[] path, unchanged. */
	if (SPI_fnumber(desc, "features") > 0 || strcmp(kind, "custom") != 0)
	{
		bool		typed = SPI_fnumber(desc, "features") <= 0;

		SPI_finish();
		if (typed && (strcmp(kind, "churn") == 0 || strcmp(kind, "downgrade") == 0 ||
					  strcmp(kind, "payment") == 0 || strcmp(kind, "upsell") == 0 ||
					  strcmp(kind, "expansion") == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a %s model must be trained on a features column", kind),
					 errdetail("The scoring kinds read cs.features vectors, in the order of cs.feature_catalog."),
					 errhint("Use kind custom for a model over named columns, or return features float4[].")));
		if (!typed)
		{
			int			unused = 1;

			/* encoding params mean nothing here: say so rather than ignore them */
			(void) RewriteParams(*params_text, NULL, -1, &unused, NULL, 0, false);
		}
		return NULL;
	}
	if (SPI_fnumber(desc, "label") <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("training query must return a column \"label\""),
				 errhint("For example: SELECT features, churned AS label FROM ..., or for kind custom the columns themselves: SELECT plan, seats, churned AS label FROM accounts.")));

	/* The input columns. */
	cols = MemoryContextAllocZero(caller, sizeof(LearnColumn) * desc->natts);
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		LearnColumn *c = &cols[ncols];
		char	   *name = NameStr(att->attname);

		if (att->attisdropped || ReservedColumn(name))
			continue;
		for (int j = 0; j < ncols; j++)
			if (strcmp(cols[j].name, name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_AMBIGUOUS_COLUMN),
						 errmsg("column \"%s\" appears twice in the training query", name),
						 errhint("Give every column its own name with AS.")));
		c->name = MemoryContextStrdup(caller, name);
		c->attno = a + 1;
		c->type = att->atttypid;
		c->kind = ClassifyType(att->atttypid, &c->conv);
		c->onehot = true;
		if (c->kind == ENC_UNSUPPORTED)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of the training query is %s, which a model cannot take",
							name, format_type_be(att->atttypid)),
					 errhint("Inputs are numbers, booleans and text categories: cast the column (for example extract(epoch FROM ...) or ::text), or leave it out.")));
		if (c->kind == ENC_CATEGORY)
		{
			HASHCTL		ctl;

			memset(&ctl, 0, sizeof(ctl));
			ctl.keysize = sizeof(CatKey);
			ctl.entrysize = sizeof(CatEntry);
			ctl.hash = CatHash;
			ctl.match = CatMatch;
			ctl.hcxt = caller;
			c->counts = hash_create("cscopilot categories", 64, &ctl,
									HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
			if (c->conv == CONV_OUTPUT)
			{
				Oid			outfn;
				bool		varlena;

				getTypeOutputInfo(att->atttypid, &outfn, &varlena);
				fmgr_info_cxt(outfn, &c->out, caller);
			}
		}
		ncols++;
	}
	if (ncols == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("training query has no input columns"),
				 errhint("Return features float4[], or columns besides label, group_key and as_of.")));
	(void) RewriteParams(*params_text, cols, ncols, &min_count, NULL, 0, false);

	/* Count the categories, a batch of rows at a time. */
	batch = AllocSetContextCreate(caller, "cscopilot encoding batch", ALLOCSET_DEFAULT_SIZES);
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		MemoryContext old;

		SPI_cursor_fetch(portal, true, FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		nrows += SPI_processed;
		old = MemoryContextSwitchTo(batch);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];

			CHECK_FOR_INTERRUPTS();
			for (int i = 0; i < ncols; i++)
			{
				LearnColumn *c = &cols[i];
				bool		isnull;
				Datum		d;
				CatKey		key;
				CatEntry   *e;
				bool		found;

				if (c->kind != ENC_CATEGORY)
					continue;
				d = SPI_getbinval(tup, SPI_tuptable->tupdesc, c->attno, &isnull);
				if (isnull)
					continue;
				key.s = CategoryBytes(d, c->conv, &c->out, &key.len);
				e = hash_search(c->counts, &key, HASH_ENTER, &found);
				if (!found)
				{
					char	   *copy = MemoryContextAlloc(caller, key.len + 1);

					memcpy(copy, key.s, key.len);
					copy[key.len] = '\0';
					e->key.s = copy;
					e->key.len = key.len;
					e->count = 0;
				}
				e->count++;
			}
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	MemoryContextDelete(batch);
	if (nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("training query returned no rows")));

	/* The encoding and the input names. */
	initStringInfo(&json);
	names = NULL;
	appendStringInfo(&json, "{\"version\": 1, \"min_category_count\": %d, \"columns\": [", min_count);
	for (int i = 0; i < ncols; i++)
	{
		LearnColumn *c = &cols[i];
		CatKey	   *cats = NULL;
		CatKey	   *other = NULL;
		int			ncats = 0,
					nother = 0,
					ninputs;
		char	  **inputs;

		if (c->kind == ENC_CATEGORY)
		{
			long		n = hash_get_num_entries(c->counts);
			HASH_SEQ_STATUS seq;
			CatEntry   *e;

			cats = palloc(sizeof(CatKey) * Max(n, 1));
			other = palloc(sizeof(CatKey) * Max(n, 1));
			hash_seq_init(&seq, c->counts);
			while ((e = hash_seq_search(&seq)) != NULL)
			{
				if (e->count >= min_count)
					cats[ncats++] = e->key;
				else
					other[nother++] = e->key;
			}
			if (ncats + nother == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("column \"%s\" of the training query is NULL in every row", c->name),
						 errhint("Leave it out of the query.")));
			qsort(cats, ncats, sizeof(CatKey), CatKeyCmp);
			qsort(other, nother, sizeof(CatKey), CatKeyCmp);
			ninputs = c->onehot ? ncats + (nother > 0) : 1;
		}
		else
			ninputs = 1;

		inputs = palloc(sizeof(char *) * ninputs);
		if (c->kind == ENC_CATEGORY && c->onehot)
		{
			for (int j = 0; j < ncats; j++)
				inputs[j] = psprintf("%s=%s", c->name, cats[j].s);
			if (nother > 0)
				inputs[ncats] = psprintf("%s%s", c->name, OTHER_SUFFIX);
		}
		else
			inputs[0] = c->name;
		names = names ? repalloc(names, sizeof(char *) * (nnames + ninputs)) : palloc(sizeof(char *) * ninputs);
		for (int j = 0; j < ninputs; j++)
			names[nnames++] = inputs[j];

		appendStringInfoString(&json, i > 0 ? ", {\"name\": " : "{\"name\": ");
		escape_json(&json, c->name);
		appendStringInfoString(&json, ", \"type\": ");
		escape_json(&json, format_type_be(c->type));
		appendStringInfo(&json, ", \"kind\": \"%s\"", KindName(c->kind));
		if (c->kind == ENC_CATEGORY)
		{
			appendStringInfo(&json, ", \"encoding\": \"%s\", \"vocabulary\": ", c->onehot ? "onehot" : "ordinal");
			AppendCats(&json, cats, ncats);
			appendStringInfoString(&json, ", \"other_values\": ");
			AppendCats(&json, other, nother);
		}
		appendStringInfoString(&json, ", \"inputs\": [");
		for (int j = 0; j < ninputs; j++)
		{
			if (j > 0)
				appendStringInfoString(&json, ", ");
			escape_json(&json, inputs[j]);
		}
		appendStringInfoString(&json, "]}");
	}
	appendStringInfoString(&json, "]}");

	result = palloc(sizeof(CsTrainingEncoding));
	result->encoding_json = json.data;
	result->query = *query;
	result->params_text = *params_text;

	/* The query returns the encoded features beside the original columns. */
	qlen = strlen(*query);
	while (qlen > 0 && (isspace((unsigned char) (*query)[qlen - 1]) || (*query)[qlen - 1] == ';'))
		qlen--;
	initStringInfo(&q);
	appendStringInfo(&q, "SELECT cs._encode_row(%s::jsonb, q) AS features, q.* FROM (%.*s\n) AS q",
					 quote_literal_cstr(json.data), (int) qlen, *query);
	*query = q.data;
	*params_text = RewriteParams(result->params_text, cols, ncols, &min_count, names, nnames, true);
	return result;
}

/* Stores the encoding, the user's query and params with the registered model. */
void
CsEncodingStore(int32 id, const CsTrainingEncoding *enc)
{
	Oid			t[4] = {INT4OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		v[4];

	v[0] = Int32GetDatum(id);
	v[1] = CStringGetTextDatum(enc->encoding_json);
	v[2] = CStringGetTextDatum(enc->query);
	v[3] = CStringGetTextDatum(enc->params_text);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("UPDATE cs.models SET encoding = $2::jsonb, training_data = $3, "
							  "metrics = jsonb_set(metrics, '{params}', $4::jsonb) WHERE id = $1",
							  4, t, v, NULL, false, 0) != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "could not store the encoding of model %d", id);
	SPI_finish();
}

/* ------------------------------------------------------------------------
 * SQL functions
 * ------------------------------------------------------------------------
 */

/* The encoded row as float4[]. */
static Datum
FloatArray(const float *x, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Float4GetDatum(x[i]);
	return PointerGetDatum(construct_array(d, n, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
}

/* cs.predict_row(model, rec): the model's prediction for a row or jsonb object. */
Datum
cs_predict_row(PG_FUNCTION_ARGS)
{
	CsModel    *m = CsModelForCall(fcinfo, PG_GETARG_TEXT_PP(0));
	CsEncoding *enc = ModelEncoding(m);
	const float *x = EncodeArg(fcinfo, 1, enc);

	PG_RETURN_FLOAT8(CsModelPredict(m, x, enc->ninputs));
}

/* cs.encode_row(model, rec): the features the model sees for a row or jsonb object. */
Datum
cs_encode_row(PG_FUNCTION_ARGS)
{
	CsModel    *m = CsModelForCall(fcinfo, PG_GETARG_TEXT_PP(0));
	CsEncoding *enc = ModelEncoding(m);

	PG_RETURN_DATUM(FloatArray(EncodeArg(fcinfo, 1, enc), enc->ninputs));
}

/* The encoding of a call site of cs._encode_row, parsed again when the argument changes. */
typedef struct EncodeCallCache
{
	Jsonb	   *arg;
	CsEncoding *enc;
} EncodeCallCache;

/* cs._encode_row(encoding, rec): a row encoded with an explicit encoding (training). */
Datum
cs__encode_row(PG_FUNCTION_ARGS)
{
	Jsonb	   *jenc = PG_GETARG_JSONB_P(0);
	EncodeCallCache *cc = fcinfo->flinfo->fn_extra;

	if (cc == NULL)
	{
		cc = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(EncodeCallCache));
		fcinfo->flinfo->fn_extra = cc;
	}
	if (cc->arg == NULL || VARSIZE(cc->arg) != VARSIZE(jenc) ||
		memcmp(cc->arg, jenc, VARSIZE(jenc)) != 0)
	{
		char	   *text = JsonbToCString(NULL, &jenc->root, VARSIZE(jenc));
		CsEncoding *enc = EncodingParse(text, fcinfo->flinfo->fn_mcxt);

		if (cc->enc)
			MemoryContextDelete(cc->enc->mcxt);
		if (cc->arg)
			pfree(cc->arg);
		cc->enc = enc;
		cc->arg = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, VARSIZE(jenc));
		memcpy(cc->arg, jenc, VARSIZE(jenc));
	}
	PG_RETURN_DATUM(FloatArray(EncodeArg(fcinfo, 1, cc->enc), cc->enc->ninputs));
}

/*
 * cs._xgboost_predict(model, rows): libxgboost's own predictions (XGBoosterPredict)
 * for rows of features, to check the native evaluator and the encoding against
 * the library python-xgboost wraps.
 */
Datum
cs__xgboost_predict(PG_FUNCTION_ARGS)
{
	CsModel    *m = CsModelLookup(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	int			nrows,
				ncols;
	DMatrixHandle volatile dm = NULL;
	Datum	   *d = NULL;

	if (ARR_NDIM(arr) == 1)
	{
		nrows = 1;
		ncols = ARR_DIMS(arr)[0];
	}
	else if (ARR_NDIM(arr) == 2)
	{
		nrows = ARR_DIMS(arr)[0];
		ncols = ARR_DIMS(arr)[1];
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("rows must be one row (one dimension) or rows of features (two dimensions)")));
	if (ARR_HASNULL(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rows must not contain NULL"),
				 errhint("Use 'NaN' for a missing value.")));
	if (ncols != m->num_features)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("model \"%s\" expects %d features, got %d", m->name, m->num_features, ncols)));

	PG_TRY();
	{
		bst_ulong	len = 0;
		const float *out = NULL;

		CsXgbCheck(XGDMatrixCreateFromMat((const float *) ARR_DATA_PTR(arr), nrows, ncols, NAN,
										  (DMatrixHandle *) &dm), "create a matrix");
		CsXgbCheck(XGBoosterPredict((BoosterHandle) m->booster, dm, 0, 0, 0, &len, &out), "predict");
		if ((int) len != nrows)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("libxgboost returned %d predictions for %d rows", (int) len, nrows)));
		d = palloc(sizeof(Datum) * nrows);
		for (int i = 0; i < nrows; i++)
			d[i] = Float8GetDatum((double) out[i]);
	}
	PG_FINALLY();
	{
		if (dm)
			XGDMatrixFree(dm);
	}
	PG_END_TRY();
	PG_RETURN_ARRAYTYPE_P(construct_array(d, nrows, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
