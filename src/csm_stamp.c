/*
 * csm_stamp.c
 *		The trigger that stamps every customer-scoped row with its customer's
 *		CSM, so that row-level security needs no subquery.
 *
 * Citus refuses subqueries in the policies of distributed tables, and a
 * policy that called a function reading cs.customers would be a nested
 * distributed query on the workers.  So every table with a customer_id
 * column carries the customer's csm (src/sql/schema/93_csm.sql) and its
 * policy is "csm = ANY (cs.member_roles())", like the policy of cs.customers.
 *
 * cs._stamp_csm() runs BEFORE INSERT and BEFORE UPDATE OF customer_id, csm:
 * it overwrites NEW.csm with cs.customers.csm of NEW.customer_id (NULL when
 * the customer is NULL or missing: admins only), so a writer cannot forge it.
 * The lookup is by one customer, "WHERE id = $1" (on Citus a router query to
 * the colocated shard): a FOR KEY SHARE lock, then a read of the latest
 * committed csm (LookupCsm).  The row lock is what makes a concurrent change
 * of csm safe: cs._customers_csm_changed() (src/sql/93_csm.sql) takes FOR
 * UPDATE on the customer before it rewrites the customer's rows, so it waits
 * for every transaction that stamped a row with the old value and then sees
 * that row, and a stamp taken during the change waits for it to commit and
 * reads the new value.
 *
 * The hot path is COPY into cs.usage_events: one lookup per row would double
 * its cost, so the values found are cached, per backend, for as long as they
 * cannot have changed: within one transaction (local transaction id) and one
 * command id.  Another transaction cannot change a cached customer's csm (the
 * KEY SHARE lock holds until commit); this transaction can only through a
 * statement that advances the command counter, which empties the cache, as
 * does the abort of a subtransaction (which releases the locks it took).  The
 * lookup itself advances the command counter (SPI increments it after a
 * locking query), so the command id is read again after each lookup.
 *
 * The lookup runs as the owner of cs.customers with row-level security off
 * for it, like PostgreSQL's own foreign-key checks: the stamp must be the
 * customer's csm whoever writes the row.
 *
 * On a Citus worker the trigger fires on a shard, and "cs.customers" there is
 * a distributed table: each lookup was a distributed query, planned by Citus
 * for one row (0.2 ms, and memory kept until commit), which made a refresh's
 * COPY of 3,000 health scores into a shard take 1.2 s.  A shard colocated with
 * cs.customers reads the colocated customers shard instead, which is on the
 * same node and holds every customer the shard can reference (CustomersTarget).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(cs_stamp_csm);

/* One cached customer: its csm as a text datum, or NULL. */
typedef struct CsmEntry
{
	pg_uuid_t	id;				/* hash key */
	bool		isnull;
	Datum		csm;			/* text, allocated in CsmContext */
} CsmEntry;

static MemoryContext CsmContext = NULL;
static HTAB *CsmCache = NULL;
static LocalTransactionId CsmLxid = InvalidLocalTransactionId;
static CommandId CsmCid = InvalidCommandId;
static bool CsmCallbackRegistered = false;

/* The customers relation a stamped relation reads: cs.customers, or on a
 * Citus worker the customers shard colocated with a stamped shard. */
typedef struct CsmTarget
{
	Oid			relid;			/* hash key: the stamped relation */
	Oid			customers;		/* the relation its lookups read */
} CsmTarget;

/* The two kept lookup plans of one customers relation. */
typedef struct CsmPlans
{
	Oid			customers;		/* hash key */
	SPIPlanPtr	lock;
	SPIPlanPtr	read;
} CsmPlans;

static HTAB *CsmTargets = NULL;
static HTAB *CsmPlanCache = NULL;

/* Column numbers of customer_id and csm in the last relation stamped. */
static Oid	CsmRelid = InvalidOid;
static int	CsmCustomerAttnum = 0;
static int	CsmCsmAttnum = 0;

/* Empties the cache (its memory with it). */
static void
ResetCsmCache(void)
{
	HASHCTL		ctl;

	if (CsmContext == NULL)
		CsmContext = AllocSetContextCreate(TopMemoryContext, "cscopilot csm cache",
										   ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(CsmContext);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(CsmEntry);
	ctl.hcxt = CsmContext;
	CsmCache = hash_create("cscopilot csm cache", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CsmLxid = InvalidLocalTransactionId;
	CsmCid = InvalidCommandId;
}

/* A subtransaction's abort releases the row locks that protect the cache. */
static void
CsmSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
				   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		CsmLxid = InvalidLocalTransactionId;
}

/* Owner of cs.customers: the lookup runs as it, as foreign-key checks do. */
static Oid
CustomersOwner(void)
{
	Oid			relid = RangeVarGetRelid(makeRangeVar("cs", "customers", -1), NoLock, false);
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* Prepares and keeps a plan of one uuid parameter. */
static SPIPlanPtr
KeepPlan(const char *sql)
{
	Oid			argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan = SPI_prepare(sql, 1, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/*
 * Reads the csm of one customer; *isnull when it has none or does not exist.
 *
 * Two steps.  First the row is locked FOR KEY SHARE (on every version of it,
 * as foreign-key checks lock it), which waits for a csm change in progress:
 * that change holds FOR UPDATE on its new version.  But a KEY SHARE lock does
 * not conflict with the change's own update, so the locking query returns the
 * version its snapshot saw, possibly the old csm.  Hence the value is read
 * again, after the lock, from the latest snapshot: a change committed by then
 * is seen, and a change not yet committed waits for this transaction before
 * it moves the customer's rows (this row included).
 */
/* A hash table for the backend's life, keyed by an Oid at the entry's start. */
static HTAB *
OidHash(const char *name, Size entrysize, long size)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = entrysize;
	ctl.hcxt = TopMemoryContext;
	return hash_create(name, size, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * The relation the lookups for rows of rel read, found once per relation and
 * backend (inside SPI): the customers shard colocated with rel when rel is a
 * shard of a table colocated with cs.customers on this node, else
 * cs.customers.  A shard is named after its table with "_<shard id>" appended
 * and listed in Citus's pg_dist_shard; shards of colocated tables that share
 * a hash range sit on the same node.
 */
static Oid
CustomersTarget(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			target;
	const char *name = RelationGetRelationName(rel);
	const char *suffix = strrchr(name, '_');
	CsmTarget  *entry;
	bool		found;

	if (CsmTargets == NULL)
		CsmTargets = OidHash("cscopilot csm targets", sizeof(CsmTarget), 64);
	entry = (CsmTarget *) hash_search(CsmTargets, &relid, HASH_FIND, NULL);
	/* (a shard moved away or dropped: found again) */
	if (entry != NULL && SearchSysCacheExists1(RELOID, ObjectIdGetDatum(entry->customers)))
		return entry->customers;

	target = RangeVarGetRelid(makeRangeVar("cs", "customers", -1), NoLock, false);

	/* (a shard id: at most 18 digits, within bigint, as a table's own name may end otherwise) */
	if (suffix != NULL && suffix[1] != '\0' && strlen(suffix + 1) <= 18 &&
		strspn(suffix + 1, "0123456789") == strlen(suffix + 1) &&
		OidIsValid(get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE)))
	{
		Oid			argtypes[2] = {INT8OID, OIDOID};
		Datum		args[2];
		int			rc;

		args[0] = DirectFunctionCall1(int8in, CStringGetDatum(suffix + 1));
		args[1] = ObjectIdGetDatum(relid);
		rc = SPI_execute_with_args(
			"SELECT pg_catalog.to_regclass(pg_catalog.shard_name(pc.logicalrelid, cu.shardid))::oid"
			"  FROM pg_catalog.pg_dist_shard s"
			"  JOIN pg_catalog.pg_dist_partition ps ON ps.logicalrelid = s.logicalrelid"
			"  JOIN pg_catalog.pg_dist_partition pc ON pc.logicalrelid = 'cs.customers'::pg_catalog.regclass"
			"   AND pc.colocationid = ps.colocationid"
			"  JOIN pg_catalog.pg_dist_shard cu ON cu.logicalrelid = pc.logicalrelid"
			"   AND cu.shardminvalue = s.shardminvalue"
			" WHERE s.shardid = $1"
			"   AND pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid)) = $2::pg_catalog.regclass",
			2, argtypes, args, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "csm shard lookup failed: %s", SPI_result_code_string(rc));
		if (SPI_processed > 0)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
				target = DatumGetObjectId(d);
		}
	}
	entry = (CsmTarget *) hash_search(CsmTargets, &relid, HASH_ENTER, &found);
	entry->customers = target;
	return target;
}

/* The kept lookup plans that read the customers relation target. */
static CsmPlans *
PlansFor(Oid target)
{
	CsmPlans   *plans;
	bool		found;

	if (CsmPlanCache == NULL)
		CsmPlanCache = OidHash("cscopilot csm plans", sizeof(CsmPlans), 16);
	plans = (CsmPlans *) hash_search(CsmPlanCache, &target, HASH_ENTER, &found);
	if (!found || plans->lock == NULL || plans->read == NULL)
	{
		char	   *rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(target)),
													 get_rel_name(target));

		plans->lock = NULL;
		plans->read = NULL;
		plans->lock = KeepPlan(psprintf("SELECT 1 FROM %s c WHERE c.id = $1 FOR KEY SHARE OF c", rel));
		plans->read = KeepPlan(psprintf("SELECT c.csm FROM %s c WHERE c.id = $1", rel));
	}
	return plans;
}

static Datum
LookupCsm(Relation rel, pg_uuid_t *id, bool *isnull)
{
	Datum		arg = UUIDPGetDatum(id);
	Datum		result = (Datum) 0;
	Oid			save_userid;
	int			save_sec_context;
	int			rc;
	CsmPlans   *plans;

	*isnull = true;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plans = PlansFor(CustomersTarget(rel));
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(CustomersOwner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	rc = SPI_execute_plan(plans->lock, &arg, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "csm lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
		rc = SPI_execute_snapshot(plans->read, &arg, NULL, GetLatestSnapshot(), InvalidSnapshot,
								  true, false, 1);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "csm lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0 && SPI_tuptable->tupdesc->natts == 1 &&
		SPI_tuptable->tupdesc->attrs[0].atttypid == TEXTOID)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);

		if (!*isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(CsmContext);

			result = PointerGetDatum(DatumGetTextPCopy(d));
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	return result;
}

/* Finds customer_id and csm in the relation, checking their types. */
static void
FindColumns(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			cust = SPI_fnumber(desc, "customer_id");
	int			csm = SPI_fnumber(desc, "csm");

	if (cust <= 0 || csm <= 0 ||
		TupleDescAttr(desc, cust - 1)->atttypid != UUIDOID ||
		TupleDescAttr(desc, csm - 1)->atttypid != TEXTOID)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("cs._stamp_csm() needs columns customer_id uuid and csm text in table \"%s\"",
						RelationGetRelationName(rel))));
	CsmRelid = RelationGetRelid(rel);
	CsmCustomerAttnum = cust;
	CsmCsmAttnum = csm;
}

/*
 * cs._stamp_csm(): BEFORE INSERT OR UPDATE row trigger that sets NEW.csm to
 * the csm of NEW.customer_id's customer.
 */
Datum
cs_stamp_csm(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	Datum		customer;
	bool		customer_null;
	Datum		current;
	bool		current_null;
	Datum		csm = (Datum) 0;
	bool		csm_null = true;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cs._stamp_csm() must be a BEFORE INSERT OR UPDATE row trigger")));

	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);
	/* the columns found last time, unless another table or an altered one */
	if (RelationGetRelid(trigdata->tg_relation) != CsmRelid ||
		CsmCustomerAttnum > desc->natts || CsmCsmAttnum > desc->natts ||
		strcmp(NameStr(TupleDescAttr(desc, CsmCustomerAttnum - 1)->attname), "customer_id") != 0 ||
		strcmp(NameStr(TupleDescAttr(desc, CsmCsmAttnum - 1)->attname), "csm") != 0)
		FindColumns(trigdata->tg_relation);

	customer = heap_getattr(tuple, CsmCustomerAttnum, desc, &customer_null);
	if (!customer_null)
	{
		CsmEntry   *entry;
		bool		found;

		if (!CsmCallbackRegistered)
		{
			RegisterSubXactCallback(CsmSubXactCallback, NULL);
			CsmCallbackRegistered = true;
		}
		/* Valid while nothing of this transaction can have changed a csm. */
		if (CsmCache == NULL || CsmLxid != MyProc->lxid || CsmCid != GetCurrentCommandId(false))
			ResetCsmCache();
		entry = (CsmEntry *) hash_search(CsmCache, DatumGetUUIDP(customer), HASH_FIND, NULL);
		if (entry == NULL)
		{
			bool		isnull;
			Datum		value = LookupCsm(trigdata->tg_relation, DatumGetUUIDP(customer), &isnull);

			entry = (CsmEntry *) hash_search(CsmCache, DatumGetUUIDP(customer), HASH_ENTER, &found);
			entry->isnull = isnull;
			entry->csm = value;
			CsmLxid = MyProc->lxid;
			CsmCid = GetCurrentCommandId(false);
		}
		csm_null = entry->isnull;
		csm = entry->csm;
	}

	current = heap_getattr(tuple, CsmCsmAttnum, desc, &current_null);
	if (current_null == csm_null &&
		(csm_null || DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, current, csm))))
		return PointerGetDatum(tuple);
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 1, &CsmCsmAttnum, &csm, &csm_null));
}
