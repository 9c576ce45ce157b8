/*
 * worker.c
 *		Background workers that keep scores fresh: a launcher and one scoring
 *		worker per database listed in cscopilot.databases.
 *
 * Design
 * ------
 * The launcher is a static background worker (registered from _PG_init when
 * the library is in shared_preload_libraries) without a database connection.
 * It reads cscopilot.databases, gives each database a slot in shared memory
 * and starts one dynamic worker per slot.  Dynamic workers never restart by
 * themselves (BGW_NEVER_RESTART): the launcher notices a stopped worker
 * through bgw_notify_pid and starts it again after WORKER_RESTART_DELAY_MS,
 * doubled up to MAX_RESTART_DELAY_MS while it keeps failing, so a database
 * that cannot be connected to does not crash-loop.  After a
 * crash (kill -9 of any backend) the postmaster reinitialises shared memory
 * and restarts the launcher, which starts every worker afresh.
 *
 * A scoring worker publishes its PGPROC latch in its slot.  Load triggers
 * call cs._wake_worker_at_commit(), which arms a transaction callback; at
 * commit the callback sets the latch of the worker of the current database,
 * so the worker wakes as soon as the new rows are visible and not before.
 * cscopilot.naptime is only the fallback poll interval.  Rows stamped ahead
 * of the server's clock make their customer's mark due later (see
 * cs._mark_dirty): when nothing is due the worker sleeps until the earliest
 * such mark is, if that comes before the naptime.
 *
 * Every unit of work (a batch of dirty customers, a scheduled job, the
 * bookkeeping of a failure) is one self-contained transaction: a crash loses
 * at most the unit in flight, never half of one.  An error in a unit is
 * caught, the transaction aborted, and the failure recorded in cs.job_runs
 * in a new transaction; the worker goes on.
 */
#include "postgres.h"

#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "cscopilot.h"

PG_FUNCTION_INFO_V1(cs_wake_worker_at_commit);
PG_FUNCTION_INFO_V1(cs_wake_worker);
PG_FUNCTION_INFO_V1(cs_worker_slots);
PG_FUNCTION_INFO_V1(cs_worker_batch_times);
PG_FUNCTION_INFO_V1(cs_workers_available);

/* Most databases one server can serve; more are refused with a warning. */
#define MAX_WORKER_SLOTS 32
/* Pause before the launcher restarts a worker that stopped ... */
#define WORKER_RESTART_DELAY_MS 10000
/* ... doubled, up to this, while it keeps stopping within a minute. */
#define MAX_RESTART_DELAY_MS 300000
/* How often a worker retries a database that lacks the extension. */
#define NO_EXTENSION_RETRY_MS 30000
/*
 * On a Citus cluster the load triggers fire on the workers' shards, whose
 * commits cannot set this worker's latch on the coordinator: it polls the
 * dirty queue at least this often instead, which keeps load-to-score under a
 * second there (BENCHMARKS.md, "Citus").
 */
#define DISTRIBUTED_POLL_MS 200
/* Longest pause of the launcher between checks of its workers. */
#define LAUNCHER_NAPTIME_MS 5000
/* Scheduled jobs run per wake-up at most; bounds a loop of failing jobs. */
#define MAX_JOBS_PER_ROUND 8

/* What a worker is doing, shown in cs.worker_status. */
typedef enum WorkerState
{
	WS_STOPPED = 0,
	WS_STARTING,
	WS_IDLE,
	WS_BATCH,
	WS_JOB,
	WS_NO_EXTENSION,
	WS_DISABLED
} WorkerState;

static const char *const WorkerStateNames[] = {
	"stopped", "starting", "idle", "batch", "job", "no_extension", "disabled"
};

/* One database served by a worker. */
typedef struct WorkerSlot
{
	bool		in_use;			/* assigned to a database by the launcher */
	char		dbname[NAMEDATALEN];
	Oid			dboid;			/* set by the worker once connected */
	pid_t		pid;			/* 0 while no worker runs */
	Latch	   *latch;			/* the worker's PGPROC latch, or NULL */
	WorkerState state;
	int			naptime_ms;		/* naptime in effect in the worker */
	int			batch_size;		/* batch size in effect in the worker */
	TimestampTz started_at;
	TimestampTz last_wake_at;	/* last wake-up by a committed load */
	TimestampTz last_batch_at;
	int64		last_batch_customers;
	bool		last_batch_failed;
	int64		batches;
	int64		customers_scored;
	double		last_batch_secs;	/* duration of the last batch */
	double		batch_secs_total;	/* summed over every batch since start */
} WorkerSlot;

typedef struct WorkerShared
{
	slock_t		mutex;
	WorkerSlot	slots[MAX_WORKER_SLOTS];
} WorkerShared;

/* Settings: defined in settings.c (see docs/workers.md). */

static WorkerShared *Shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Per-backend state of the wake-at-commit trigger. */
static bool WakeCallbackRegistered = false;
static bool WakePending = false;

/* The worker's own slot. */
static int	MySlot = -1;

PGDLLEXPORT void cs_launcher_main(Datum main_arg);
PGDLLEXPORT void cs_worker_main(Datum main_arg);

/* Asks for the shared memory of the worker slots. */
static void
WorkerShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
}

/* Creates (or, after a crash restart, recreates) the worker slots. */
static void
WorkerShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	Shared = ShmemInitStruct("cscopilot workers", sizeof(WorkerShared), &found);
	if (!found)
	{
		memset(Shared, 0, sizeof(WorkerShared));
		SpinLockInit(&Shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Registers the shared memory hooks and the launcher; only under shared_preload_libraries. */
void
RegisterWorkers(void)
{
	BackgroundWorker bgw;

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = WorkerShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = WorkerShmemStartup;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "cscopilot");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "cs_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "cscopilot launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "cscopilot launcher");
	RegisterBackgroundWorker(&bgw);
}

/* Fails with a hint when the workers' shared memory does not exist. */
static void
RequireWorkers(const char *what)
{
	if (Shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s requires cscopilot in shared_preload_libraries", what),
				 errdetail("The scoring workers run only when the library is preloaded at server start."),
				 errhint("Add cscopilot to shared_preload_libraries and restart, or call cs.refresh() yourself (for example from pg_cron).")));
}

/* The latch of the worker serving a database, or NULL; stamps the wake-up. */
static Latch *
WorkerLatchFor(Oid dboid)
{
	Latch	   *latch = NULL;
	int			i;

	if (Shared == NULL || !OidIsValid(dboid))
		return NULL;
	SpinLockAcquire(&Shared->mutex);
	for (i = 0; i < MAX_WORKER_SLOTS; i++)
	{
		WorkerSlot *s = &Shared->slots[i];

		if (s->in_use && s->dboid == dboid && s->pid != 0 && s->latch != NULL)
		{
			latch = s->latch;
			s->last_wake_at = GetCurrentTimestamp();
			break;
		}
	}
	SpinLockRelease(&Shared->mutex);
	return latch;
}

/* Sets the worker's latch once the transaction that loaded data has committed. */
static void
WakeAtCommitCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (WakePending)
			{
				Latch	   *latch;

				WakePending = false;
				/* A latch of an exited worker belongs to a PGPROC: a spurious wake-up at worst. */
				latch = WorkerLatchFor(MyDatabaseId);
				if (latch != NULL)
					SetLatch(latch);
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* Nothing committed (or COMMIT PREPARED comes later): the naptime poll covers it. */
			WakePending = false;
			break;
		default:
			break;
	}
}

/*
 * Statement trigger on the signal tables: wakes the database's worker when
 * the transaction commits.  Without preloaded workers it does nothing, so
 * loading never depends on them.
 */
Datum
cs_wake_worker_at_commit(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cs._wake_worker_at_commit() must be called as a trigger")));
	if (Shared != NULL)
	{
		if (!WakeCallbackRegistered)
		{
			RegisterXactCallback(WakeAtCommitCallback, NULL);
			WakeCallbackRegistered = true;
		}
		WakePending = true;
	}
	return PointerGetDatum(NULL);
}

/* cs.wake_worker(): wakes the worker of the current database now; false when none runs. */
Datum
cs_wake_worker(PG_FUNCTION_ARGS)
{
	Latch	   *latch;

	RequireWorkers("cs.wake_worker()");
	latch = WorkerLatchFor(MyDatabaseId);
	if (latch == NULL)
	{
		ereport(NOTICE,
				(errmsg("no cscopilot worker runs for database \"%s\"", get_database_name(MyDatabaseId)),
				 errhint("List the database in cscopilot.databases and reload the configuration.")));
		PG_RETURN_BOOL(false);
	}
	SetLatch(latch);
	PG_RETURN_BOOL(true);
}

/* cs._workers_available(): whether the library was preloaded (the workers can run). */
Datum
cs_workers_available(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(Shared != NULL);
}

/* cs._worker_slots(): one row per database served by a worker (none when not preloaded). */
Datum
cs_worker_slots(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerSlot	copy[MAX_WORKER_SLOTS];
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (Shared == NULL)
		return (Datum) 0;

	SpinLockAcquire(&Shared->mutex);
	memcpy(copy, Shared->slots, sizeof(copy));
	SpinLockRelease(&Shared->mutex);

	for (i = 0; i < MAX_WORKER_SLOTS; i++)
	{
		WorkerSlot *s = &copy[i];
		Datum		values[12];
		bool		nulls[12];

		if (!s->in_use)
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(s->dbname);
		values[1] = Int32GetDatum((int32) s->pid);
		nulls[1] = (s->pid == 0);
		values[2] = CStringGetTextDatum(WorkerStateNames[s->pid == 0 && s->state != WS_DISABLED
														 ? WS_STOPPED : s->state]);
		values[3] = Int32GetDatum(s->naptime_ms);
		nulls[3] = (s->naptime_ms == 0);
		values[4] = Int32GetDatum(s->batch_size);
		nulls[4] = (s->batch_size == 0);
		values[5] = TimestampTzGetDatum(s->started_at);
		nulls[5] = (s->started_at == 0);
		values[6] = TimestampTzGetDatum(s->last_wake_at);
		nulls[6] = (s->last_wake_at == 0);
		values[7] = TimestampTzGetDatum(s->last_batch_at);
		nulls[7] = (s->last_batch_at == 0);
		values[8] = Int64GetDatum(s->last_batch_customers);
		nulls[8] = (s->last_batch_at == 0);
		values[9] = CStringGetTextDatum(s->last_batch_failed ? "failed" : "succeeded");
		nulls[9] = (s->last_batch_at == 0);
		values[10] = Int64GetDatum(s->batches);
		values[11] = Int64GetDatum(s->customers_scored);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* cs._worker_batch_times(): per database served, the last batch's duration and the sum over all batches. */
Datum
cs_worker_batch_times(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerSlot	copy[MAX_WORKER_SLOTS];
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (Shared == NULL)
		return (Datum) 0;

	SpinLockAcquire(&Shared->mutex);
	memcpy(copy, Shared->slots, sizeof(copy));
	SpinLockRelease(&Shared->mutex);

	for (i = 0; i < MAX_WORKER_SLOTS; i++)
	{
		WorkerSlot *s = &copy[i];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (!s->in_use)
			continue;
		values[0] = CStringGetTextDatum(s->dbname);
		values[1] = Float8GetDatum(s->last_batch_secs);
		nulls[1] = (s->last_batch_at == 0);
		values[2] = Float8GetDatum(s->batch_secs_total);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * Launcher
 * ------------------------------------------------------------------------
 */

/* Whether a database name is in a list of names. */
static bool
NameInList(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
	{
		if (strcmp((const char *) lfirst(lc), name) == 0)
			return true;
	}
	return false;
}

/* Starts the dynamic worker of a slot; false when no worker process is free. */
static bool
StartWorker(int slot, const char *dbname, BackgroundWorkerHandle **handle)
{
	BackgroundWorker bgw;
	MemoryContext old;
	bool		ok;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	/* The launcher restarts it, with a delay, so a broken database cannot crash-loop. */
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "cscopilot");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "cs_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "cscopilot worker for database %s", dbname);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "cscopilot worker");
	strlcpy(bgw.bgw_extra, dbname, BGW_EXTRALEN);
	bgw.bgw_main_arg = Int32GetDatum(slot);
	bgw.bgw_notify_pid = MyProcPid;
	/* The handle outlives the launcher's per-loop memory. */
	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&bgw, handle);
	MemoryContextSwitchTo(old);
	return ok;
}

/* Whether a worker handle refers to a worker that may still be running. */
static bool
WorkerAlive(BackgroundWorkerHandle *handle)
{
	pid_t		pid;

	if (handle == NULL)
		return false;
	return GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED;
}

/*
 * Brings the workers in line with the settings: starts missing ones (after a
 * delay for ones that stopped), stops those of databases no longer listed.
 */
static void
ReconcileWorkers(BackgroundWorkerHandle **handles, TimestampTz *next_start)
{
	char	   *raw = pstrdup(cscopilot_databases ? cscopilot_databases : "");
	List	   *names = NIL;
	ListCell   *lc;
	int			i;
	static bool warned_overflow = false;
	static bool warned_syntax = false;
	static int	restart_delay[MAX_WORKER_SLOTS];

	if (!SplitGUCList(raw, ',', &names))
	{
		if (!warned_syntax)
			ereport(WARNING,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid list syntax in cscopilot.databases")));
		warned_syntax = true;
		names = NIL;
	}
	else
		warned_syntax = false;

	/* Stop workers of databases no longer listed; free their slots once stopped. */
	for (i = 0; i < MAX_WORKER_SLOTS; i++)
	{
		WorkerSlot *s = &Shared->slots[i];
		bool		listed;

		if (!s->in_use)
			continue;
		listed = NameInList(names, s->dbname);
		if (listed && cscopilot_enabled)
			continue;
		if (WorkerAlive(handles[i]))
		{
			TerminateBackgroundWorker(handles[i]);
			continue;
		}
		if (handles[i])
			pfree(handles[i]);
		handles[i] = NULL;
		SpinLockAcquire(&Shared->mutex);
		if (listed)
			s->state = WS_DISABLED;	/* cscopilot.enabled is off */
		else
			memset(s, 0, sizeof(WorkerSlot));
		SpinLockRelease(&Shared->mutex);
	}

	/* Start a worker for every listed database that has none. */
	if (!cscopilot_enabled)
		names = NIL;
	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);
		int			slot = -1;
		int			free_slot = -1;

		if (strlen(name) == 0 || strlen(name) >= NAMEDATALEN)
			continue;
		for (i = 0; i < MAX_WORKER_SLOTS; i++)
		{
			if (Shared->slots[i].in_use && strcmp(Shared->slots[i].dbname, name) == 0)
				slot = i;
			else if (!Shared->slots[i].in_use && free_slot < 0)
				free_slot = i;
		}
		if (slot < 0)
		{
			if (free_slot < 0)
			{
				if (!warned_overflow)
					ereport(WARNING,
							(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
							 errmsg("cscopilot serves at most %d databases; \"%s\" has no worker",
									MAX_WORKER_SLOTS, name)));
				warned_overflow = true;
				continue;
			}
			slot = free_slot;
			SpinLockAcquire(&Shared->mutex);
			memset(&Shared->slots[slot], 0, sizeof(WorkerSlot));
			Shared->slots[slot].in_use = true;
			strlcpy(Shared->slots[slot].dbname, name, NAMEDATALEN);
			SpinLockRelease(&Shared->mutex);
			next_start[slot] = 0;
		}
		if (WorkerAlive(handles[slot]))
			continue;
		if (GetCurrentTimestamp() < next_start[slot])
			continue;
		if (handles[slot])
			pfree(handles[slot]);
		handles[slot] = NULL;
		if (!StartWorker(slot, name, &handles[slot]))
		{
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start the cscopilot worker for database \"%s\"", name),
					 errhint("Raise max_worker_processes.")));
			handles[slot] = NULL;
		}
		/* A worker that stopped soon after its last start is failing: back off. */
		if (next_start[slot] != 0 &&
			GetCurrentTimestamp() < TimestampTzPlusMilliseconds(next_start[slot], 60000))
			restart_delay[slot] = Min(restart_delay[slot] * 2, MAX_RESTART_DELAY_MS);
		else
			restart_delay[slot] = WORKER_RESTART_DELAY_MS;
		next_start[slot] = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), restart_delay[slot]);
	}
}

/* Main of the launcher: keeps one worker running per listed database. */
void
cs_launcher_main(Datum main_arg)
{
	BackgroundWorkerHandle *handles[MAX_WORKER_SLOTS];
	TimestampTz next_start[MAX_WORKER_SLOTS];
	MemoryContext loop_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	memset(handles, 0, sizeof(handles));
	memset(next_start, 0, sizeof(next_start));
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "cscopilot launcher", ALLOCSET_DEFAULT_SIZES);

	/*
	 * Slots of a previous launcher (one that exited without a crash, which
	 * would have reset shared memory) are kept: their workers have no handle
	 * here and are started again, and the old ones notice that they were
	 * superseded and exit.
	 */
	ereport(LOG, (errmsg("cscopilot launcher started")));
	MemoryContextSwitchTo(loop_cxt);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		ReconcileWorkers(handles, next_start);
		MemoryContextReset(loop_cxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 LAUNCHER_NAPTIME_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ------------------------------------------------------------------------
 * Scoring worker
 * ------------------------------------------------------------------------
 */

/* Publishes the worker's state in its slot. */
static void
SetState(WorkerState state)
{
	SpinLockAcquire(&Shared->mutex);
	Shared->slots[MySlot].state = state;
	Shared->slots[MySlot].naptime_ms = cscopilot_naptime;
	Shared->slots[MySlot].batch_size = cscopilot_batch_size;
	SpinLockRelease(&Shared->mutex);
}

/* Whether the slot still belongs to this worker (a restarted launcher may have replaced it). */
static bool
OwnSlot(void)
{
	bool		own;

	SpinLockAcquire(&Shared->mutex);
	own = Shared->slots[MySlot].in_use && Shared->slots[MySlot].pid == MyProcPid;
	SpinLockRelease(&Shared->mutex);
	return own;
}

/* Clears the worker's slot when it exits, so nobody sets a stale latch. */
static void
DetachSlot(int code, Datum arg)
{
	if (Shared == NULL || MySlot < 0)
		return;
	SpinLockAcquire(&Shared->mutex);
	if (Shared->slots[MySlot].pid == MyProcPid)
	{
		Shared->slots[MySlot].pid = 0;
		Shared->slots[MySlot].latch = NULL;
		Shared->slots[MySlot].state = WS_STOPPED;
	}
	SpinLockRelease(&Shared->mutex);
}

/* What a unit of work does inside its transaction, with SPI connected. */
typedef void (*UnitFn) (void *arg);

/*
 * Runs one unit of work in its own transaction.  On error: logs it, aborts
 * the transaction and returns false with the message in *error (in the
 * caller's memory context).
 */
static bool
RunUnit(const char *activity, UnitFn fn, void *arg, char **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, activity);
		fn(arg);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		RESUME_INTERRUPTS();
		if (error)
			*error = pstrdup(edata->message ? edata->message : "unknown error");
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	/* Commit and abort leave TopMemoryContext current. */
	MemoryContextSwitchTo(cxt);
	return ok;
}

/* Runs a query with parameters; errors on failure; returns the first column of the first row. */
static Datum
RunQuery(const char *sql, int nargs, Oid *types, Datum *values, bool *isnull, int expected)
{
	int			rc;

	rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);
	if (rc != expected)
		elog(ERROR, "cscopilot worker query failed (%d): %s", rc, sql);
	if (SPI_processed < 1 || SPI_tuptable == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
}

typedef struct ExtensionCheck
{
	bool		present;
	bool		distributed;	/* cs.customers is a Citus distributed table */
} ExtensionCheck;

/* Unit: whether the extension is installed in this database. */
static void
CheckExtension(void *arg)
{
	ExtensionCheck *c = (ExtensionCheck *) arg;
	bool		isnull;
	Datum		d = (Datum) 0;

	(void) RunQuery("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'cscopilot'",
					0, NULL, NULL, &isnull, SPI_OK_SELECT);
	c->present = !isnull;
	c->distributed = false;
	/* only where Citus is installed, and an older version of cscopilot lacks the function */
	if (c->present)
		d = RunQuery("SELECT pg_catalog.to_regprocedure('cs._is_distributed()') IS NOT NULL "
					 "AND EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')",
					 0, NULL, NULL, &isnull, SPI_OK_SELECT);
	if (c->present && !isnull && DatumGetBool(d))
	{
		d = RunQuery("SELECT cs._is_distributed()", 0, NULL, NULL, &isnull, SPI_OK_SELECT);
		c->distributed = !isnull && DatumGetBool(d);
	}
}

/* Unit: marks job runs left 'running' by a worker that died as failed. */
static void
CloseInterruptedRuns(void *arg)
{
	bool		isnull;

	(void) RunQuery("SELECT cs._close_interrupted_runs()", 0, NULL, NULL, &isnull, SPI_OK_SELECT);
}

typedef struct BatchUnit
{
	int			batch_size;
	int64		customers;
	int64		next_due_ms;	/* after an empty batch: ms until a mark is due, -1 none */
} BatchUnit;

/* Unit: one batch of dirty customers, under the batch time limit. */
static void
RunBatch(void *arg)
{
	BatchUnit  *b = (BatchUnit *) arg;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	values[0] = Int32GetDatum(b->batch_size);
	if (cscopilot_max_batch_runtime > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, cscopilot_max_batch_runtime);
	d = RunQuery("SELECT cs.refresh_batch($1)", 1, types, values, &isnull, SPI_OK_SELECT);
	if (cscopilot_max_batch_runtime > 0)
		disable_timeout(STATEMENT_TIMEOUT, false);
	b->customers = isnull ? 0 : DatumGetInt64(d);
	b->next_due_ms = -1;
	if (b->customers == 0)
	{
		/* Marks of rows stamped ahead of the clock: wake when the first is due. */
		d = RunQuery("SELECT ceil(extract(epoch FROM min(due_at) - clock_timestamp()) * 1000)::int8"
					 " FROM cs.dirty_customers WHERE NOT parked",
					 0, NULL, NULL, &isnull, SPI_OK_SELECT);
		if (!isnull)
			b->next_due_ms = Max(DatumGetInt64(d), 0);
	}
}

typedef struct FailureUnit
{
	const char *job;
	const char *error;
	int			customers;		/* customers to blame (0: none) */
	int64		run_id;			/* job run to close, or 0 */
} FailureUnit;

/* Unit: records a failed batch or job in cs.job_runs (and blames a lone customer). */
static void
RecordFailure(void *arg)
{
	FailureUnit *f = (FailureUnit *) arg;
	Oid			types[4] = {TEXTOID, TEXTOID, INT4OID, INT8OID};
	Datum		values[4];
	bool		isnull;

	values[0] = CStringGetTextDatum(f->job);
	values[1] = CStringGetTextDatum(f->error);
	values[2] = Int32GetDatum(f->customers);
	values[3] = Int64GetDatum(f->run_id);
	(void) RunQuery("SELECT cs._record_failure($1, $2, $3, $4)", 4, types, values, &isnull, SPI_OK_SELECT);
}

typedef struct JobUnit
{
	char		job[NAMEDATALEN];
	int64		run_id;
	int			step_size;		/* customers per step of a full rescore */
	bool		more;			/* a stepped job has steps left */
} JobUnit;

/*
 * A full rescore step holds back loads committed meanwhile until it ends, so
 * steps are sized to take about this long (adapted after every step, between
 * 10 customers and cscopilot.batch_size).
 */
#define RESCORE_STEP_TARGET_MS 200
static int	rescore_step = 100;

/* Unit: picks the next due scheduled job and records its run as 'running'. */
static void
StartNextJob(void *arg)
{
	JobUnit    *j = (JobUnit *) arg;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	bool		isnull;

	values[0] = Int32GetDatum(cscopilot_full_rescore_interval);
	j->run_id = 0;
	(void) RunQuery("SELECT id, job FROM cs._start_due_job($1)", 1, types, values, &isnull, SPI_OK_SELECT);
	if (!isnull)
	{
		char	   *name;

		j->run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		strlcpy(j->job, name ? name : "", sizeof(j->job));
	}
}

/* Unit: runs a started job and closes its run. */
static void
RunJob(void *arg)
{
	JobUnit    *j = (JobUnit *) arg;
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	Datum		d;

	values[0] = Int64GetDatum(j->run_id);
	values[1] = Int32GetDatum(j->step_size);
	d = RunQuery("SELECT cs._run_job($1, $2)", 2, types, values, &isnull, SPI_OK_SELECT);
	j->more = !isnull && strcmp(TextDatumGetCString(d), "running") == 0;
}

/* Records a batch outcome, and how long it took since started, in the slot. */
static void
NoteBatch(int64 customers, bool failed, TimestampTz started)
{
	TimestampTz now = GetCurrentTimestamp();
	double		secs = (double) (now - started) / USECS_PER_SEC;

	SpinLockAcquire(&Shared->mutex);
	Shared->slots[MySlot].last_batch_secs = secs;
	Shared->slots[MySlot].batch_secs_total += secs;
	Shared->slots[MySlot].last_batch_at = now;
	Shared->slots[MySlot].last_batch_customers = customers;
	Shared->slots[MySlot].last_batch_failed = failed;
	Shared->slots[MySlot].batches++;
	if (!failed)
		Shared->slots[MySlot].customers_scored += customers;
	SpinLockRelease(&Shared->mutex);
}

/*
 * Drains the dirty queue batch by batch for at most one naptime.  A batch
 * that fails as a whole (time limit, lock trouble) halves the batch size
 * until batches succeed again; a lone customer that still fails is blamed
 * (attempts, then parking) so it cannot block the queue.  When nothing is
 * due, *next_due_ms says in how long the earliest mark stamped ahead of the
 * clock comes due (-1: none), so the worker wakes for it.
 */
static void
DrainQueue(MemoryContext cxt, int *effective_batch, long *next_due_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), cscopilot_naptime);

	*next_due_ms = -1;

	for (;;)
	{
		BatchUnit	b;
		char	   *error = NULL;
		TimestampTz started;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
			break;
		if (*effective_batch > cscopilot_batch_size || *effective_batch < 1)
			*effective_batch = cscopilot_batch_size;
		b.batch_size = *effective_batch;
		b.customers = 0;
		SetState(WS_BATCH);
		started = GetCurrentTimestamp();
		if (RunUnit("cscopilot: scoring a batch of dirty customers", RunBatch, &b, &error))
		{
			/* an empty queue is not a batch: the status keeps the last real one */
			if (b.customers > 0)
				NoteBatch(b.customers, false, started);
			if (*effective_batch < cscopilot_batch_size)
				*effective_batch = Min(cscopilot_batch_size, *effective_batch * 2);
			if (b.customers == 0)
			{
				*next_due_ms = (long) Min(b.next_due_ms, (int64) LONG_MAX);
				break;
			}
		}
		else
		{
			FailureUnit f;

			/* A statement timeout leaves the cancel flag set; it belongs to the batch. */
			QueryCancelPending = false;
			disable_timeout(STATEMENT_TIMEOUT, false);
			NoteBatch(0, true, started);
			f.job = "batch";
			f.error = error;
			f.customers = (*effective_batch == 1) ? 1 : 0;
			f.run_id = 0;
			(void) RunUnit("cscopilot: recording a failed batch", RecordFailure, &f, NULL);
			*effective_batch = Max(1, *effective_batch / 2);
			if (f.customers == 0)
				continue;		/* retry at once with a smaller batch */
			break;
		}
		MemoryContextReset(cxt);
		if (GetCurrentTimestamp() >= deadline)
		{
			/* More may be waiting: run the due jobs, then come straight back. */
			SetLatch(MyLatch);
			break;
		}
	}
}

/* Runs the scheduled jobs that are due, each in its own transactions. */
static void
RunDueJobs(void)
{
	int			n;

	for (n = 0; n < MAX_JOBS_PER_ROUND; n++)
	{
		JobUnit		j;
		char	   *error = NULL;
		TimestampTz started;

		CHECK_FOR_INTERRUPTS();
		/* a job may take a while: settings reloaded meanwhile apply to the next */
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		memset(&j, 0, sizeof(j));
		if (!RunUnit("cscopilot: checking scheduled jobs", StartNextJob, &j, NULL) || j.run_id == 0)
			return;
		SetState(WS_JOB);
		rescore_step = Max(10, Min(rescore_step, cscopilot_batch_size));
		j.step_size = rescore_step;
		started = GetCurrentTimestamp();
		if (RunUnit(psprintf("cscopilot: job %s", j.job), RunJob, &j, &error))
		{
			if (j.more)
			{
				long		ms = TimestampDifferenceMilliseconds(started, GetCurrentTimestamp());

				/* the next step sized for the target duration, changing by at most 2x */
				rescore_step = (int) Max(rescore_step / 2,
										 Min((int64) rescore_step * 2,
											 (int64) rescore_step * RESCORE_STEP_TARGET_MS / Max(ms, 1)));
				/* one step done: the dirty queue first, then the next step */
				SetLatch(MyLatch);
				return;
			}
		}
		else
		{
			FailureUnit f;

			QueryCancelPending = false;
			f.job = j.job;
			f.error = error;
			f.customers = 0;
			f.run_id = j.run_id;
			(void) RunUnit("cscopilot: recording a failed job", RecordFailure, &f, NULL);
		}
	}
}

/* Main of a scoring worker for one database. */
void
cs_worker_main(Datum main_arg)
{
	char		dbname[BGW_EXTRALEN];
	MemoryContext loop_cxt;
	bool		warned_missing = false;
	bool		cleaned = false;
	int			effective_batch;

	MySlot = DatumGetInt32(main_arg);
	strlcpy(dbname, MyBgworkerEntry->bgw_extra, sizeof(dbname));

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (MySlot < 0 || MySlot >= MAX_WORKER_SLOTS || Shared == NULL)
		elog(FATAL, "cscopilot worker started with invalid slot %d", MySlot);

	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	pgstat_report_appname("cscopilot worker");

	SpinLockAcquire(&Shared->mutex);
	if (!Shared->slots[MySlot].in_use || strcmp(Shared->slots[MySlot].dbname, dbname) != 0)
	{
		SpinLockRelease(&Shared->mutex);
		proc_exit(0);			/* the database was dropped from the list meanwhile */
	}
	Shared->slots[MySlot].pid = MyProcPid;
	Shared->slots[MySlot].latch = &MyProc->procLatch;
	Shared->slots[MySlot].dboid = MyDatabaseId;
	Shared->slots[MySlot].started_at = GetCurrentTimestamp();
	Shared->slots[MySlot].state = WS_STARTING;
	SpinLockRelease(&Shared->mutex);
	before_shmem_exit(DetachSlot, (Datum) 0);

	ereport(LOG, (errmsg("cscopilot worker started for database \"%s\"", dbname)));
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "cscopilot worker", ALLOCSET_DEFAULT_SIZES);
	effective_batch = cscopilot_batch_size;

	for (;;)
	{
		ExtensionCheck ext;
		long		timeout;
		long		next_due_ms = -1;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!OwnSlot())
		{
			ereport(LOG, (errmsg("cscopilot worker for database \"%s\" was superseded, exiting", dbname)));
			proc_exit(0);
		}
		MemoryContextSwitchTo(loop_cxt);
		/* Read after the reload above, so a new naptime applies to this very wait. */
		timeout = cscopilot_naptime;

		ext.present = false;
		ext.distributed = false;
		if (!cscopilot_enabled)
			SetState(WS_DISABLED);
		else if (!RunUnit("cscopilot: checking the extension", CheckExtension, &ext, NULL) || !ext.present)
		{
			if (!warned_missing)
				ereport(LOG,
						(errmsg("cscopilot worker: extension cscopilot is not installed in database \"%s\"", dbname),
						 errhint("Run CREATE EXTENSION cscopilot there, or remove the database from cscopilot.databases; the worker checks again every %d seconds.",
								 Max(cscopilot_naptime, NO_EXTENSION_RETRY_MS) / 1000)));
			warned_missing = true;
			cleaned = false;
			SetState(WS_NO_EXTENSION);
			timeout = Max(cscopilot_naptime, NO_EXTENSION_RETRY_MS);
		}
		else
		{
			if (warned_missing)
				ereport(LOG, (errmsg("cscopilot worker: extension found in database \"%s\"", dbname)));
			warned_missing = false;
			if (!cleaned)
				cleaned = RunUnit("cscopilot: closing interrupted job runs", CloseInterruptedRuns, NULL, NULL);
			DrainQueue(loop_cxt, &effective_batch, &next_due_ms);
			RunDueJobs();
			SetState(WS_IDLE);
			/* a mark stamped ahead comes due before the naptime is over */
			if (next_due_ms >= 0)
				timeout = Max(10, Min(timeout, next_due_ms));
			if (ext.distributed)
				timeout = Min(timeout, DISTRIBUTED_POLL_MS);
		}
		MemoryContextReset(loop_cxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
