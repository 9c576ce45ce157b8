/*
 * cscopilot.h
 *		Declarations shared between the extension's source files.
 */
#ifndef CSCOPILOT_H
#define CSCOPILOT_H

#include "postgres.h"

#endif							/* CSCOPILOT_H */
