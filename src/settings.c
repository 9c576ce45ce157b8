/*
 * settings.c
 *		The cscopilot.* settings: one table, CsSettings, that both defines the
 *		GUCs at load time and answers cs.setting() and the cs.settings view.
 *		SQL reads a setting only through cs.setting(name); being C, calling it
 *		loads the library, so every setting is defined and its default is the
 *		one written here, never a second copy in SQL.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"

#include "cscopilot.h"
#include "model.h"

PG_FUNCTION_INFO_V1(cs_setting);
PG_FUNCTION_INFO_V1(cs_settings);

/* The variables the settings write; the worker and the explainer read them. */
bool		cscopilot_enabled = true;
char	   *cscopilot_databases = NULL;
int			cscopilot_naptime = 10000;
int			cscopilot_batch_size = 500;
int			cscopilot_full_rescore_interval = 86400;
int			cscopilot_max_batch_runtime = 60000;
int			cscopilot_max_attempts = 3;
int			cscopilot_retrain_interval = 0;
int			cscopilot_shap_method = CS_SHAP_TABLES;
static int	cscopilot_outcome_horizon = 90;
static double cscopilot_challenger_share = 0.0;
static double cscopilot_promotion_auc_margin = 0.02;
static int	cscopilot_promotion_min_outcomes = 200;
static int	cscopilot_retrain_observations = 12;
static char *cscopilot_admin_role = NULL;
static double cscopilot_leakage_auc = 0.95;
static double cscopilot_inapplicable_gain_share = 0.5;
static int	cscopilot_global_explain_customers = 20000;
static double cscopilot_expansion_share = 0.2;
static double cscopilot_expansion_min_score = 0.3;
static int	cscopilot_history_retention = 400 * 86400;
static double cscopilot_downgrade_share = 0.2;
static int	cscopilot_payment_overdue_days = 30;

static const struct config_enum_entry shap_method_options[] = {
	{"tables", CS_SHAP_TABLES, false},
	{"native", CS_SHAP_RECURSIVE, false},
	{"libxgboost", CS_SHAP_LIBXGBOOST, false},
	{NULL, 0, false}
};

typedef enum
{
	SETTING_BOOL,
	SETTING_INT,
	SETTING_REAL,
	SETTING_STRING,
	SETTING_ENUM
} SettingType;

/* One setting: its name, variable, default, bounds, context and description. */
typedef struct CsSetting
{
	const char *name;
	SettingType type;
	void	   *var;
	double		boot;			/* bool, int, real and enum defaults */
	const char *boot_string;	/* string default */
	double		min;
	double		max;
	const struct config_enum_entry *options;
	GucContext	context;
	int			flags;
	const char *short_desc;
	const char *long_desc;
} CsSetting;

/*
 * Every cscopilot.* setting (README: "Model lifecycle", "Background
 * workers"): USERSET for what a session may tune, SIGHUP for the workers.
 */
static const CsSetting CsSettings[] = {
	/* the workers (worker.c, docs/workers.md) */
	{"cscopilot.enabled", SETTING_BOOL, &cscopilot_enabled, true, NULL, 0, 0, NULL, PGC_SIGHUP, 0,
		"Runs the cscopilot scoring workers.",
	"When off, the launcher stops the workers; cs.refresh() still works by hand."},
	{"cscopilot.databases", SETTING_STRING, &cscopilot_databases, 0, "", 0, 0, NULL, PGC_SIGHUP, GUC_LIST_INPUT,
		"Databases whose customers the workers keep scored (comma-separated).",
	"One scoring worker runs per listed database."},
	{"cscopilot.naptime", SETTING_INT, &cscopilot_naptime, 10000, NULL, 10, 3600 * 1000, NULL, PGC_SIGHUP, GUC_UNIT_MS,
		"Fallback poll interval of the scoring workers.",
	"Committed loads wake the worker at once; this bounds the delay otherwise."},
	{"cscopilot.batch_size", SETTING_INT, &cscopilot_batch_size, 500, NULL, 1, 1000000, NULL, PGC_SIGHUP, 0,
	"Dirty customers rescored per transaction by the workers.", NULL},
	{"cscopilot.full_rescore_interval", SETTING_INT, &cscopilot_full_rescore_interval, 86400, NULL, 0, INT_MAX, NULL,
		PGC_SIGHUP, GUC_UNIT_S,
	"Interval between full rescores of every customer; 0 turns them off.", NULL},
	{"cscopilot.max_batch_runtime", SETTING_INT, &cscopilot_max_batch_runtime, 60000, NULL, 0, INT_MAX, NULL,
		PGC_SIGHUP, GUC_UNIT_MS,
	"Time limit of one batch of the workers; 0 means none.", NULL},
	{"cscopilot.max_attempts", SETTING_INT, &cscopilot_max_attempts, 3, NULL, 1, 1000, NULL, PGC_SIGHUP, 0,
	"Failed refreshes after which a customer is parked.", NULL},
	{"cscopilot.retrain_interval", SETTING_INT, &cscopilot_retrain_interval, 0, NULL, 0, INT_MAX, NULL,
		PGC_SIGHUP, GUC_UNIT_S,
		"Interval between scheduled retrainings of the churn model; 0 turns them off.",
	"Each run is a job retrain in cs.job_runs (see cs.retrain)."},
	/* the model lifecycle (lifecycle.c, README "Model lifecycle") */
	{"cscopilot.outcome_horizon", SETTING_INT, &cscopilot_outcome_horizon, 90, NULL, 1, 3650, NULL, PGC_USERSET, 0,
		"Days after a prediction within which a churn counts as its outcome.",
	"Predictions younger than this are not judged yet; retraining labels churn within it."},
	{"cscopilot.challenger_share", SETTING_REAL, &cscopilot_challenger_share, 0.0, NULL, 0.0, 1.0, NULL, PGC_USERSET, 0,
		"Share of customers whose served risk comes from the challenger model (A/B split).",
	"0 scores the challenger in shadow only; customers are split by a hash of their id."},
	{"cscopilot.promotion_auc_margin", SETTING_REAL, &cscopilot_promotion_auc_margin, 0.02, NULL, 0.0, 1.0, NULL,
		PGC_USERSET, 0,
	"AUC by which a challenger must beat the champion on the same outcomes to be promoted.", NULL},
	{"cscopilot.promotion_min_outcomes", SETTING_INT, &cscopilot_promotion_min_outcomes, 200, NULL, 1, INT_MAX, NULL,
		PGC_USERSET, 0,
	"Judged predictions a challenger needs before the promotion policy decides.", NULL},
	{"cscopilot.retrain_observations", SETTING_INT, &cscopilot_retrain_observations, 12, NULL, 1, 120, NULL,
		PGC_USERSET, 0,
	"Monthly observation dates in a training set built by scheduled retraining.", NULL},
	{"cscopilot.admin_role", SETTING_STRING, &cscopilot_admin_role, 0, "", 0, 0, NULL, PGC_USERSET, 0,
		"Role that model alerts (drift) are assigned to.",
	"Empty means the owner of schema cs."},
	/* training on the user's own history (train.c, README "Training on your own history") */
	{"cscopilot.leakage_auc", SETTING_REAL, &cscopilot_leakage_auc, 0.95, NULL, 0.5, 1.0, NULL, PGC_USERSET, 0,
		"AUC of a feature alone on the training rows at which the leakage audit marks it suspect.",
	"cs.deploy_model refuses a model with a suspect feature unless forced."},
	{"cscopilot.inapplicable_gain_share", SETTING_REAL, &cscopilot_inapplicable_gain_share, 0.5, NULL, 0.0, 1.0,
		NULL, PGC_USERSET, 0,
		"Share of a model's gain importance on missing or constant inputs at which the model is not applicable.",
	"An inapplicable champion raises a model alert and no risk alerts (cs.model_applicability)."},
	/* global explanations (src/sql/37_trust.sql) */
	{"cscopilot.global_explain_customers", SETTING_INT, &cscopilot_global_explain_customers, 20000, NULL, 0, INT_MAX,
		NULL, PGC_USERSET, 0,
		"Customers whose exact SHAP values make a model's global explanation; 0 means all.",
	"A full refresh explains this many customers per scoring model, a deterministic sample (by md5 of the customer id) when there are more."},
	/* expansion opportunities (README "Expansion opportunities") */
	{"cscopilot.expansion_share", SETTING_REAL, &cscopilot_expansion_share, 0.2, NULL, 0.01, 100.0, NULL,
		PGC_USERSET, 0,
		"Share of its MRR by which a customer's MRR must grow within the horizon to count as an expansion.",
	"Labels of cs.build_training_set(kind => 'expansion') (its target is the MRR gained); without a deployed expansion amount model, an expansion opportunity expects MRR x this share x its probability."},
	{"cscopilot.expansion_min_score", SETTING_REAL, &cscopilot_expansion_min_score, 0.3, NULL, 0.0, 1.0, NULL,
		PGC_USERSET, 0,
		"Probability from the expansion model at which the refresh raises an expansion opportunity.", NULL},
	/* history retention (src/sql/61_history.sql, README "History and retention") */
	{"cscopilot.history_retention", SETTING_INT, &cscopilot_history_retention, 400 * 86400, NULL, 0, INT_MAX, NULL,
		PGC_SIGHUP, GUC_UNIT_S,
		"Age beyond which the worker drops monthly partitions of score and alert history; 0 keeps everything.",
	"The daily job retention runs cs.apply_retention(); every customer's latest score is kept whatever its age."},
	/* outcome labels beside churn (35_risk.sql cs._outcome, README "Outcomes beyond churn") */
	{"cscopilot.downgrade_share", SETTING_REAL, &cscopilot_downgrade_share, 0.2, NULL, 0.01, 1.0, NULL, PGC_USERSET, 0,
		"Share of MRR (or seats) lost within the horizon, by a customer who stays, that labels a downgrade.",
	"Labels of cs.build_training_set(kind => 'downgrade') and the outcomes of downgrade models."},
	{"cscopilot.payment_overdue_days", SETTING_INT, &cscopilot_payment_overdue_days, 30, NULL, 0, 3650, NULL,
		PGC_USERSET, 0,
		"Days past its due date an unpaid invoice must reach within the horizon to label a payment problem.",
	"A failed or uncollectible invoice due within the horizon counts too (kind => 'payment')."},
	/* explanations (explain.c) */
	{"cscopilot.shap_method", SETTING_ENUM, &cscopilot_shap_method, CS_SHAP_TABLES, NULL, 0, 0, shap_method_options,
		PGC_USERSET, 0,
		"How SHAP explanations are computed: tables, native or libxgboost.",
		"All three compute exact TreeSHAP. tables uses per-leaf tables where a model's fit "
		"(else native); native walks the trees like libxgboost; libxgboost calls its pred_contribs. "
	"A model whose native values disagree with libxgboost's on its probe rows always uses libxgboost."},
};

/* Defines every cscopilot.* setting from CsSettings. */
void
DefineSettings(void)
{
	for (int i = 0; i < lengthof(CsSettings); i++)
	{
		const CsSetting *s = &CsSettings[i];

		switch (s->type)
		{
			case SETTING_BOOL:
				DefineCustomBoolVariable(s->name, s->short_desc, s->long_desc, (bool *) s->var, s->boot != 0,
										 s->context, s->flags, NULL, NULL, NULL);
				break;
			case SETTING_INT:
				DefineCustomIntVariable(s->name, s->short_desc, s->long_desc, (int *) s->var, (int) s->boot,
										(int) s->min, (int) s->max, s->context, s->flags, NULL, NULL, NULL);
				break;
			case SETTING_REAL:
				DefineCustomRealVariable(s->name, s->short_desc, s->long_desc, (double *) s->var, s->boot,
										 s->min, s->max, s->context, s->flags, NULL, NULL, NULL);
				break;
			case SETTING_STRING:
				DefineCustomStringVariable(s->name, s->short_desc, s->long_desc, (char **) s->var, s->boot_string,
										   s->context, s->flags, NULL, NULL, NULL);
				break;
			case SETTING_ENUM:
				DefineCustomEnumVariable(s->name, s->short_desc, s->long_desc, (int *) s->var, (int) s->boot,
										 s->options, s->context, s->flags, NULL, NULL, NULL);
				break;
		}
	}
}

/* The name of an enum value among a setting's options. */
static const char *
EnumName(const CsSetting *s, int value)
{
	for (const struct config_enum_entry *e = s->options; e->name != NULL; e++)
		if (e->val == value && !e->hidden)
			return e->name;
	return "";
}

/*
 * A setting's value as text in its base unit (as pg_settings.setting shows
 * it: 3600 for one hour of a GUC_UNIT_S setting); the default when current is
 * false.
 */
static char *
SettingText(const CsSetting *s, bool current)
{
	switch (s->type)
	{
		case SETTING_BOOL:
			return pstrdup((current ? *(bool *) s->var : s->boot != 0) ? "on" : "off");
		case SETTING_INT:
			return psprintf("%d", current ? *(int *) s->var : (int) s->boot);
		case SETTING_REAL:
			return psprintf("%g", current ? *(double *) s->var : s->boot);
		case SETTING_STRING:
			{
				char	   *v = current ? *(char **) s->var : (char *) s->boot_string;

				return pstrdup(v ? v : "");
			}
		case SETTING_ENUM:
			return pstrdup(EnumName(s, current ? *(int *) s->var : (int) s->boot));
	}
	return NULL;				/* not reached */
}

/* The unit of a setting's value, NULL for none. */
static const char *
SettingUnit(const CsSetting *s)
{
	if (s->flags & GUC_UNIT_MS)
		return "ms";
	if (s->flags & GUC_UNIT_S)
		return "s";
	return NULL;
}

/*
 * cs.setting(name text) RETURNS text: the current value of a cscopilot.*
 * setting, in its base unit; the one way SQL reads a setting.
 */
Datum
cs_setting(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	for (int i = 0; i < lengthof(CsSettings); i++)
		if (strcmp(CsSettings[i].name, name) == 0)
			PG_RETURN_TEXT_P(cstring_to_text(SettingText(&CsSettings[i], true)));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("unrecognized setting \"%s\"", name),
			 errhint("The settings are listed in cs.settings.")));
	PG_RETURN_NULL();			/* not reached */
}

/*
 * cs._settings() RETURNS TABLE (name, setting, default_value, unit, context,
 * description): every cscopilot.* setting, in CsSettings order.
 */
Datum
cs_settings(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < lengthof(CsSettings); i++)
	{
		const CsSetting *s = &CsSettings[i];
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		const char *unit = SettingUnit(s);

		values[0] = CStringGetTextDatum(s->name);
		values[1] = CStringGetTextDatum(SettingText(s, true));
		values[2] = CStringGetTextDatum(SettingText(s, false));
		if (unit)
			values[3] = CStringGetTextDatum(unit);
		else
			nulls[3] = true;
		values[4] = CStringGetTextDatum(s->context == PGC_SIGHUP ? "sighup" :
										s->context == PGC_POSTMASTER ? "postmaster" : "user");
		values[5] = CStringGetTextDatum(s->short_desc);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
