/*
 * modelcache.c
 *		The per-backend cache of compiled models and the resolution of model
 *		names (CsModelLookup, CsModelChampion, CsModelForCall).
 *
 * Design
 * ------
 * Compiled models are cached per backend, keyed by cs.models.id, and
 * checked against the row's xmin and ctid when a name is resolved.  Names
 * are resolved again whenever cs.models changes: a statement trigger on it
 * (cs_models_invalidate) sends a relcache invalidation that every backend
 * sees, and our relcache callback bumps a generation counter that the
 * per-call-site caches in fn_extra compare against.  So the per-row path of
 * cs.predict resolves nothing: it compares one counter and a name.
 *
 * A model replaced in the cache may still be in use by a caller in this
 * transaction (model.h promises that much), so it goes to a graveyard freed
 * at transaction end.
 *
 * Call sites live as long as their query; a name resolved by one query is
 * also remembered for the backend (ResolvedNames), under the same generation
 * and role, so that a query run once per customer (cs.churn_risk, a refresh
 * of one customer) does not run the resolving query each time.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "model.h"

PG_FUNCTION_INFO_V1(cs_models_invalidate);

/* Cache entry: the compiled model for one cs.models id. */
typedef struct ModelCacheEntry
{
	int32		id;
	CsModel    *model;
} ModelCacheEntry;

/* Per call site state of cs.predict and cs.explain. */
typedef struct ModelCallCache
{
	uint64		generation;
	CsModel    *model;
	int			name_len;
	char	   *name;
} ModelCallCache;

/* A name resolved for this backend: valid while the generation and role are unchanged. */
typedef struct ResolvedName
{
	uint64		generation;
	Oid			userid;
	int32		id;
	CsModel    *model;
	int			name_len;
	char	   *name;			/* in ModelCacheContext */
} ResolvedName;

/* Names a backend remembers across queries; more are resolved each query. */
#define MAX_RESOLVED_NAMES 16

static ResolvedName ResolvedNames[MAX_RESOLVED_NAMES];
static int	NextResolvedName = 0;

static HTAB *ModelCache = NULL;
static MemoryContext ModelCacheContext = NULL;
static List *ModelGraveyard = NIL;	/* replaced models, freed at transaction end */
static uint64 ModelCacheGeneration = 1;
static Oid	ModelsRelid = InvalidOid;

/* ------------------------------------------------------------------------
 * Cache and invalidation
 * ------------------------------------------------------------------------
 */

/* Marks every resolved name stale when cs.models (or everything) changes. */
static void
ModelRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == ModelsRelid || ModelsRelid == InvalidOid)
		ModelCacheGeneration++;
}

/* Frees models replaced in the cache once no caller of this transaction can hold them. */
static void
ModelXactCallback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			foreach(lc, ModelGraveyard)
				CsModelFree((CsModel *) lfirst(lc));
			list_free(ModelGraveyard);
			ModelGraveyard = NIL;
			break;
		default:
			break;
	}
}

/* Creates the cache and registers the callbacks, once per backend. */
static void
ModelCacheInit(void)
{
	HASHCTL		ctl;

	if (ModelCache != NULL)
		return;
	ModelCacheContext = AllocSetContextCreate(TopMemoryContext, "cscopilot model cache",
											  ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(ModelCacheEntry);
	ctl.hcxt = ModelCacheContext;
	ModelCache = hash_create("cscopilot models", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(ModelRelcacheCallback, (Datum) 0);
	RegisterXactCallback(ModelXactCallback, NULL);
}

/* Resolves a model row with a query returning (id, version, stamp); NULL when none. */
static CsModel *
ModelResolve(const char *query, const char *arg)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int32		id,
				version;
	char	   *stamp;
	ModelCacheEntry *entry;
	bool		found;
	CsModel    *m = NULL;
	bool		isnull;

	ModelCacheInit();
	if (ModelsRelid == InvalidOid)
		ModelsRelid = get_relname_relid("models", get_namespace_oid("cs", false));

	values[0] = CStringGetTextDatum(arg);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(query, 1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not query cs.models");
	if (SPI_processed == 0)
	{
		SPI_finish();
		return NULL;
	}
	id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	stamp = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);

	entry = hash_search(ModelCache, &id, HASH_ENTER, &found);
	if (!found)
		entry->model = NULL;
	if (entry->model != NULL && entry->model->version == version &&
		strcmp(entry->model->stamp, stamp) == 0)
	{
		m = entry->model;
		SPI_finish();
		return m;
	}

	/* Not cached, or the row changed: compile it. */
	{
		Oid			idtype[1] = {INT4OID};
		Datum		idval[1] = {Int32GetDatum(id)};
		HeapTuple	tup;
		TupleDesc	desc;
		bytea	   *bytes;
		ArrayType  *names;
		Datum	   *elems;
		bool	   *nulls;
		int			nnames;
		MemoryContext old;

		if (SPI_execute_with_args("SELECT name, kind, model, feature_names FROM cs.models WHERE id = $1",
								  1, idtype, idval, NULL, true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "model %d vanished from cs.models", id);
		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		bytes = DatumGetByteaPP(SPI_getbinval(tup, desc, 3, &isnull));
		m = CsModelBuild(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes), CurTransactionContext);
		old = MemoryContextSwitchTo(m->mcxt);
		m->id = id;
		m->version = version;
		m->stamp = pstrdup(stamp);
		m->name = SPI_getvalue(tup, desc, 1);
		m->kind = SPI_getvalue(tup, desc, 2);
		names = DatumGetArrayTypeP(SPI_getbinval(tup, desc, 4, &isnull));
		deconstruct_array(names, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nnames);
		if (nnames != m->num_features)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("model %d has %d feature names for %d features",
							id, nnames, m->num_features)));
		m->feature_names = palloc(sizeof(char *) * nnames);
		for (int i = 0; i < nnames; i++)
			m->feature_names[i] = nulls[i] ? pstrdup("?") : TextDatumGetCString(elems[i]);
		MemoryContextSwitchTo(old);
		MemoryContextSetParent(m->mcxt, ModelCacheContext);
	}
	SPI_finish();

	/* The entry may have moved if the compile touched the hash: look again. */
	entry = hash_search(ModelCache, &id, HASH_ENTER, &found);
	if (found && entry->model != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(ModelCacheContext);

		ModelGraveyard = lappend(ModelGraveyard, entry->model);
		MemoryContextSwitchTo(old);
	}
	entry->model = m;
	return m;
}

/* The model called name: its champion version, else its latest version; name:vN is that version. */
CsModel *
CsModelLookup(const char *name)
{
	CsModel    *m = ModelResolve("SELECT id, version, xmin::text || ctid::text FROM cs.models "
								 "WHERE name = $1 ORDER BY status = 'champion' DESC, version DESC LIMIT 1",
								 name);

	/* name:vN addresses one version, for example a challenger. */
	if (m == NULL)
		m = ModelResolve("SELECT id, version, xmin::text || ctid::text FROM cs.models "
						 "WHERE name || ':v' || version = $1 LIMIT 1",
						 name);
	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name),
				 errhint("Load it with cs.load_model or cs.train_model.")));
	return m;
}

/* The champion model of a kind, or NULL when the kind has none (custom: the newest champion). */
CsModel *
CsModelChampion(const char *kind)
{
	return ModelResolve("SELECT id, version, xmin::text || ctid::text FROM cs.models "
						"WHERE kind = $1 AND status = 'champion' ORDER BY id DESC LIMIT 1",
						kind);
}

/* The model this backend last resolved for a name, if cs.models and the role are unchanged since. */
static CsModel *
ResolvedNameLookup(const char *s, int len)
{
	for (int i = 0; i < MAX_RESOLVED_NAMES; i++)
	{
		ResolvedName *r = &ResolvedNames[i];
		ModelCacheEntry *entry;

		if (r->name == NULL || r->generation != ModelCacheGeneration || r->userid != GetUserId() ||
			r->name_len != len || memcmp(r->name, s, len) != 0)
			continue;
		/* still the cached model of its row (never one freed since) */
		entry = hash_search(ModelCache, &r->id, HASH_FIND, NULL);
		if (entry != NULL && entry->model == r->model)
			return r->model;
	}
	return NULL;
}

/* Remembers a resolution made at generation gen for the backend. */
static void
ResolvedNameRemember(const char *s, int len, CsModel *m, uint64 gen)
{
	ResolvedName *r = &ResolvedNames[NextResolvedName];

	NextResolvedName = (NextResolvedName + 1) % MAX_RESOLVED_NAMES;
	if (r->name)
		pfree(r->name);
	r->name = MemoryContextAlloc(ModelCacheContext, len + 1);
	memcpy(r->name, s, len);
	r->name[len] = '\0';
	r->name_len = len;
	r->model = m;
	r->id = m->id;
	r->userid = GetUserId();
	r->generation = gen;
}

/* The model for a call site, resolved again only after cs.models changed. */
CsModel *
CsModelForCall(FunctionCallInfo fcinfo, text *name)
{
	ModelCallCache *cc = (ModelCallCache *) fcinfo->flinfo->fn_extra;
	int			len = VARSIZE_ANY_EXHDR(name);
	const char *s = VARDATA_ANY(name);

	if (cc != NULL && cc->generation == ModelCacheGeneration &&
		cc->name_len == len && memcmp(cc->name, s, len) == 0)
		return cc->model;

	if (cc == NULL)
	{
		cc = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ModelCallCache));
		fcinfo->flinfo->fn_extra = cc;
	}
	/* Read the generation first: a change while resolving must resolve again. */
	cc->generation = 0;
	{
		uint64		gen = ModelCacheGeneration;
		char	   *cname = text_to_cstring(name);
		CsModel    *m = ModelCache ? ResolvedNameLookup(s, len) : NULL;

		if (m == NULL)
		{
			m = CsModelLookup(cname);
			ResolvedNameRemember(s, len, m, gen);
		}

		if (cc->name)
			pfree(cc->name);
		cc->name = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, cname);
		cc->name_len = len;
		cc->model = m;
		cc->generation = gen;
		pfree(cname);
	}
	return cc->model;
}

/* Statement trigger on cs.models: tells every backend to resolve models again. */
Datum
cs_models_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cs.models_invalidate must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	PG_RETURN_POINTER(NULL);
}
