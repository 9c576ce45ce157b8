/*
 * ingest.c
 *		Parsing of product-analytics event exports (Mixpanel and Amplitude,
 *		newline-delimited JSON) into the columns of cs.usage_events.
 *
 * Event streams are the largest loads by far, so their lines are parsed here
 * with jansson instead of row by row in PL/pgSQL.  cs.parse_events() takes a
 * chunk of NDJSON text and returns one row per non-blank line: either the
 * extracted fields, or an error saying why the line cannot be loaded (the SQL
 * side turns those into cs.ingest_rejects rows, so nothing is dropped).  No
 * line can make the function fail: malformed JSON, missing fields and
 * out-of-range times are reported per line.  Customers are resolved and rows
 * stored by cs.ingest_events() in SQL.
 */
#include "postgres.h"

#include <math.h>
#include <stdio.h>

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
/* fmgrprotos.h declares a json_object() that clashes with jansson's. */
#define json_object pg_json_object
#include "utils/builtins.h"
#undef json_object
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include <jansson.h>

PG_FUNCTION_INFO_V1(cs_parse_events);

/* Output columns of cs.parse_events. */
#define PE_NATTS 10

/* Event fields of one line; NULL pointers are SQL NULLs. */
typedef struct ParsedEvent
{
	char	   *customer_key;
	char	   *user_id;
	char	   *event;
	char	   *feature;
	double		quantity;
	bool		has_time;
	TimestampTz occurred_at;
	char	   *source_id;
	char	   *error;
} ParsedEvent;

/* A JSON scalar as text (strings as they are, integers and reals printed), or NULL. */
static char *
JsonScalarText(json_t *v)
{
	if (v == NULL)
		return NULL;
	if (json_is_array(v))
		v = json_array_size(v) > 0 ? json_array_get(v, 0) : NULL;
	if (v == NULL)
		return NULL;
	if (json_is_string(v))
		return json_string_length(v) > 0 ? pnstrdup(json_string_value(v), json_string_length(v)) : NULL;
	if (json_is_integer(v))
		return psprintf("%lld", (long long) json_integer_value(v));
	if (json_is_real(v))
		return psprintf("%.17g", json_real_value(v));
	return NULL;
}

/* Looks a key up in an object member of root (or root itself when member is NULL). */
static json_t *
Member(json_t *root, const char *member, const char *key)
{
	json_t	   *o = member ? json_object_get(root, member) : root;

	if (o == NULL || !json_is_object(o) || key == NULL)
		return NULL;
	return json_object_get(o, key);
}

/* Unix seconds (or milliseconds, when too large for seconds) to a timestamp; false if out of range. */
static bool
UnixToTimestamp(double secs, TimestampTz *result)
{
	double		usecs;

	if (!isfinite(secs) || secs < 0)
		return false;
	if (secs > 1e11)			/* milliseconds since the epoch */
		secs /= 1000.0;
	usecs = secs * USECS_PER_SEC -
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC;
	if (usecs < (double) MIN_TIMESTAMP || usecs >= (double) END_TIMESTAMP)
		return false;
	*result = (TimestampTz) rint(usecs);
	return IS_VALID_TIMESTAMP(*result);
}

/*
 * "YYYY-MM-DD HH:MI:SS[.ffffff]" (or with a T, and an optional Z) in UTC, as
 * Amplitude exports event_time; false when it is not such a time.
 */
static bool
UtcStringToTimestamp(const char *s, TimestampTz *result)
{
	struct pg_tm tm;
	int			y, mo, d, h, mi, sec, n = 0;
	char		sep;
	fsec_t		fsec = 0;
	int			tz = 0;
	const char *p;
	int			digits = 0;

	if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &sec, &n) != 7 ||
		(sep != ' ' && sep != 'T'))
		return false;
	p = s + n;
	if (*p == '.')
	{
		int			frac = 0;

		for (p++; *p >= '0' && *p <= '9'; p++)
		{
			if (digits < 6)
			{
				frac = frac * 10 + (*p - '0');
				digits++;
			}
		}
		for (; digits < 6; digits++)
			frac *= 10;
		fsec = frac;
	}
	if (*p == 'Z')
		p++;
	else if (strncmp(p, "+00:00", 6) == 0)
		p += 6;
	if (*p != '\0')
		return false;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	/* Rejects 30 February and the like: the date must survive a round trip. */
	{
		int			jy, jm, jd;

		j2date(date2j(y, mo, d), &jy, &jm, &jd);
		if (jy != y || jm != mo || jd != d)
			return false;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y;
	tm.tm_mon = mo;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if (tm2timestamp(&tm, fsec, &tz, result) != 0)
		return false;
	return IS_VALID_TIMESTAMP(*result);
}

/*
 * Extracts the fields of one event.  Mixpanel: {"event", "properties":
 * {"time", "distinct_id", "$insert_id", ...}}.  Amplitude: {"event_type",
 * "event_time", "user_id", "device_id", "$insert_id", "uuid", "groups",
 * "event_properties", "user_properties"}.
 */
static void
ExtractEvent(json_t *root, bool amplitude, const char *customer_property,
			 const char *feature_property, ParsedEvent *ev)
{
	json_t	   *v;

	if (!json_is_object(root))
	{
		ev->error = pstrdup("line is not a JSON object");
		return;
	}
	if (amplitude)
	{
		ev->event = JsonScalarText(json_object_get(root, "event_type"));
		ev->user_id = JsonScalarText(json_object_get(root, "user_id"));
		if (ev->user_id == NULL)
			ev->user_id = JsonScalarText(json_object_get(root, "device_id"));
		ev->customer_key = JsonScalarText(Member(root, "groups", customer_property));
		if (ev->customer_key == NULL)
			ev->customer_key = JsonScalarText(Member(root, "event_properties", customer_property));
		if (ev->customer_key == NULL)
			ev->customer_key = JsonScalarText(Member(root, "user_properties", customer_property));
		ev->feature = JsonScalarText(Member(root, "event_properties", feature_property));
		ev->source_id = JsonScalarText(json_object_get(root, "$insert_id"));
		if (ev->source_id == NULL)
			ev->source_id = JsonScalarText(json_object_get(root, "uuid"));
		v = Member(root, "event_properties", "quantity");
		if (ev->event == NULL)
		{
			ev->error = pstrdup("no event_type");
			return;
		}
		{
			json_t	   *t = json_object_get(root, "event_time");

			if (t == NULL || !json_is_string(t))
			{
				ev->error = pstrdup("no event_time");
				return;
			}
			if (!UtcStringToTimestamp(json_string_value(t), &ev->occurred_at))
			{
				ev->error = psprintf("event_time \"%s\" is not a valid UTC time", json_string_value(t));
				return;
			}
			ev->has_time = true;
		}
	}
	else
	{
		json_t	   *props = json_object_get(root, "properties");
		json_t	   *t;

		ev->event = JsonScalarText(json_object_get(root, "event"));
		if (ev->event == NULL)
		{
			ev->error = pstrdup("no event name");
			return;
		}
		if (props == NULL || !json_is_object(props))
		{
			ev->error = pstrdup("no properties object");
			return;
		}
		ev->user_id = JsonScalarText(json_object_get(props, "distinct_id"));
		ev->customer_key = JsonScalarText(json_object_get(props, customer_property));
		ev->feature = JsonScalarText(json_object_get(props, feature_property));
		ev->source_id = JsonScalarText(json_object_get(props, "$insert_id"));
		v = json_object_get(props, "quantity");
		t = json_object_get(props, "time");
		if (t == NULL || !json_is_number(t))
		{
			ev->error = pstrdup("no numeric properties.time");
			return;
		}
		if (!UnixToTimestamp(json_number_value(t), &ev->occurred_at))
		{
			ev->error = psprintf("properties.time %.17g is out of range", json_number_value(t));
			return;
		}
		ev->has_time = true;
	}

	ev->quantity = 1.0;
	if (v != NULL && !json_is_null(v))
	{
		if (!json_is_number(v))
		{
			ev->error = pstrdup("quantity is not a number");
			return;
		}
		ev->quantity = json_number_value(v);
		if (!isfinite(ev->quantity) || ev->quantity < 0)
		{
			ev->error = psprintf("quantity %.17g is out of range (must be finite and not negative)", ev->quantity);
			return;
		}
	}
	if (ev->customer_key == NULL)
		ev->error = psprintf("no customer key (property \"%s\")", customer_property);
}

/* Parses one line into ev, freeing everything jansson allocated, also on error. */
static void
ParseLine(const char *line, size_t len, bool amplitude, const char *customer_property,
		  const char *feature_property, ParsedEvent *ev)
{
	json_error_t jerr;
	json_t	   *volatile root = NULL;

	memset(ev, 0, sizeof(*ev));
	root = json_loadb(line, len, 0, &jerr);
	if (root == NULL)
	{
		ev->error = psprintf("invalid JSON: %s (column %d)", jerr.text, jerr.column);
		return;
	}
	PG_TRY();
	{
		ExtractEvent(root, amplitude, customer_property, feature_property, ev);
	}
	PG_FINALLY();
	{
		json_decref(root);
	}
	PG_END_TRY();
}

/*
 * cs.parse_events(format text, lines text, customer_property text,
 * feature_property text): one row per non-blank line of an NDJSON chunk.
 */
Datum
cs_parse_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *format;
	char	   *customer_property;
	char	   *feature_property;
	text	   *lines;
	const char *p;
	const char *end;
	bool		amplitude;
	int			lineno = 0;
	MemoryContext percall;
	MemoryContext old;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("format, customer_property and feature_property must not be NULL")));
	format = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(format, "mixpanel") == 0)
		amplitude = false;
	else if (strcmp(format, "amplitude") == 0)
		amplitude = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown event export format \"%s\"", format),
				 errhint("Use mixpanel or amplitude.")));
	customer_property = text_to_cstring(PG_GETARG_TEXT_PP(2));
	feature_property = text_to_cstring(PG_GETARG_TEXT_PP(3));

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	lines = PG_GETARG_TEXT_PP(1);
	p = VARDATA_ANY(lines);
	end = p + VARSIZE_ANY_EXHDR(lines);

	percall = AllocSetContextCreate(CurrentMemoryContext, "cs.parse_events line", ALLOCSET_SMALL_SIZES);
	while (p < end)
	{
		const char *nl = memchr(p, '\n', end - p);
		const char *stop = nl ? nl : end;
		const char *s = p;
		const char *e = stop;
		ParsedEvent ev;
		Datum		values[PE_NATTS];
		bool		nulls[PE_NATTS];

		p = nl ? nl + 1 : end;
		lineno++;
		while (s < e && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (s == e)
			continue;

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(percall);
		ParseLine(s, e - s, amplitude, customer_property, feature_property, &ev);

		memset(nulls, true, sizeof(nulls));
		values[0] = Int32GetDatum(lineno);
		nulls[0] = false;
		if (ev.error == NULL)
		{
#define SET_TEXT(i, str) do { if ((str) != NULL) { values[i] = CStringGetTextDatum(str); nulls[i] = false; } } while (0)
			SET_TEXT(1, ev.customer_key);
			SET_TEXT(2, ev.user_id);
			SET_TEXT(3, ev.event);
			SET_TEXT(4, ev.feature);
			values[5] = Float8GetDatum(ev.quantity);
			nulls[5] = false;
			values[6] = TimestampTzGetDatum(ev.occurred_at);
			nulls[6] = false;
			SET_TEXT(7, ev.source_id);
		}
		else
			SET_TEXT(8, ev.error);
		/* The line itself: the reject's payload, the id of an event without one (hashed). */
		values[9] = PointerGetDatum(cstring_to_text_with_len(s, e - s));
		nulls[9] = false;
#undef SET_TEXT
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
		MemoryContextReset(percall);
	}
	MemoryContextDelete(percall);
	return (Datum) 0;
}
