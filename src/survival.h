/*
 * survival.h
 *		Survival models (survival.c): the concordance index, shared with
 *		cs.train_model's validation metrics.
 */
#ifndef CS_SURVIVAL_H
#define CS_SURVIVAL_H

#include <stdbool.h>

extern double CsConcordanceIndex(const double *pred_time, const double *time, const bool *event, int n);

#endif							/* CS_SURVIVAL_H */
