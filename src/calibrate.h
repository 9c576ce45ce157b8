/*
 * calibrate.h
 *		Calibration of predicted probabilities (calibrate.c), fitted by
 *		cs.train_model and applied by cs.calibrate.
 */
#ifndef CS_CALIBRATE_H
#define CS_CALIBRATE_H

#include "model.h"

typedef enum CsCalibrationMethod
{
	CS_CALIBRATION_AUTO,
	CS_CALIBRATION_ISOTONIC,
	CS_CALIBRATION_PLATT,
	CS_CALIBRATION_NONE
} CsCalibrationMethod;

/* A calibration map: isotonic knots (x increasing, y non-decreasing) or Platt's a, b. */
typedef struct CsCalibration
{
	CsCalibrationMethod method;
	int			n;
	double	   *x;
	double	   *y;
	double		a;
	double		b;
} CsCalibration;

extern CsCalibrationMethod CsCalibrationMethodFromName(const char *s);
extern void CsCalibrationCheckParams(CsCalibrationMethod method, bool binary, const char *scale_pos_weight);
extern char *CsCalibrationTrain(CsModel *m, bool logitraw, CsCalibrationMethod method,
								const float *x, const float *y, int n, int nf, char **metrics);
extern void CsCalibrationStore(int32 id, const char *map_text);
extern double CsCalibrationApply(const CsCalibration *c, double p);
extern double CsCalibrationForModel(CsModel *m, double p);

/* Parameter search (search.c) */
extern char *CsParamSearch(const char *search_json, const char *const *keys, const char *const *values, int nparams,
						   int num_round, int early_stopping_rounds, const char *eval_metric, const char *objective,
						   const float *xtrain, const float *ytrain, int ntrain,
						   const float *xvalid, const float *yvalid, int nvalid, int nf,
						   const char **names, int nnames,
						   char ***chosen_keys, char ***chosen_values, int *nchosen);

extern char *CsMetricsWithSearch(const char *metrics, const char *search_text);

#endif							/* CS_CALIBRATE_H */
