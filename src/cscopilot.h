/*
 * cscopilot.h
 *		Declarations shared between the extension's source files.
 */
#ifndef CSCOPILOT_H
#define CSCOPILOT_H

#include "postgres.h"

/* worker.c */
extern void DefineWorkerSettings(void);
extern void RegisterWorkers(void);

/* lifecycle.c */
extern void DefineLifecycleSettings(void);

#endif							/* CSCOPILOT_H */
