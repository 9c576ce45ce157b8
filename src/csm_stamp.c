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
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
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
static SPIPlanPtr CsmLockPlan = NULL;
static SPIPlanPtr CsmReadPlan = NULL;
static bool CsmCallbackRegistered = false;

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
static Datum
LookupCsm(pg_uuid_t *id, bool *isnull)
{
	Datum		arg = UUIDPGetDatum(id);
	Datum		result = (Datum) 0;
	Oid			save_userid;
	int			save_sec_context;
	int			rc;

	*isnull = true;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (CsmLockPlan == NULL)
		CsmLockPlan = KeepPlan("SELECT 1 FROM cs.customers c WHERE c.id = $1 FOR KEY SHARE OF c");
	if (CsmReadPlan == NULL)
		CsmReadPlan = KeepPlan("SELECT c.csm FROM cs.customers c WHERE c.id = $1");
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(CustomersOwner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	rc = SPI_execute_plan(CsmLockPlan, &arg, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "csm lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
		rc = SPI_execute_snapshot(CsmReadPlan, &arg, NULL, GetLatestSnapshot(), InvalidSnapshot,
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
			Datum		value = LookupCsm(DatumGetUUIDP(customer), &isnull);

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
