/*
 * pg_stubs.c: server functions and variables src/model.c references on paths
 * the fuzz targets never take (SPI, catalog lookups, caches, libxgboost).
 * Each aborts, so reaching one is reported as a crash with its name.
 * Declared without the server headers on purpose: only the symbol matters.
 */
#include <stdio.h>
#include <stdlib.h>

#define STUB(name) \
	void name(void); \
	void name(void) { fprintf(stderr, "fuzz harness reached server function %s\n", #name); abort(); }

STUB(AllocateFile)
STUB(CacheInvalidateRelcacheByRelid)
STUB(CacheRegisterRelcacheCallback)
STUB(FreeFile)
STUB(MemoryContextSetParent)
STUB(RegisterXactCallback)
STUB(SPI_connect)
STUB(SPI_execute_with_args)
STUB(SPI_finish)
STUB(SPI_getbinval)
STUB(SPI_getvalue)
STUB(XGBGetLastError)
STUB(XGBoosterCreate)
STUB(XGBoosterFree)
STUB(XGBoosterLoadModelFromBuffer)
STUB(XGBoosterPredict)
STUB(XGBoosterSetParam)
STUB(XGDMatrixCreateFromMat)
STUB(XGDMatrixFree)
STUB(construct_array)
STUB(cstring_to_text)
STUB(deconstruct_array)
STUB(get_namespace_oid)
STUB(get_relname_relid)
STUB(get_share_path)
STUB(hash_create)
STUB(hash_search)
STUB(lappend)
STUB(list_free)
STUB(pg_detoast_datum)
STUB(pg_detoast_datum_packed)
STUB(pg_prng_double)
STUB(pg_prng_seed)
STUB(pg_prng_uint64_range)
STUB(text_to_cstring)

unsigned long SPI_processed;
void	   *SPI_tuptable;
char		my_exec_path[1024];
