/*
 * cscopilot.c
 *		Module entry point: magic block, GUC registration and the pieces of
 *		start-up that every other file relies on.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "cscopilot.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Registers the settings and, under shared_preload_libraries, the workers. */
void
_PG_init(void)
{
	/* pg_upgrade loads libraries only to check them: do nothing there. */
	if (IsBinaryUpgrade)
		return;

	DefineSettings();
	MarkGUCPrefixReserved("cscopilot");
	RegisterWorkers();
}
