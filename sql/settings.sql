-- Settings: one table of cscopilot.* settings (src/settings.c) defines the GUCs,
-- answers cs.setting() (the one way SQL reads them) and lists them in cs.settings.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
\set VERBOSITY terse

-- every setting with its default, unit and context: the README's GUC tables
SELECT name, default_value, unit, context FROM cs.settings ORDER BY name;
-- what pg_settings says agrees, setting by setting
SELECT s.name FROM cs.settings s JOIN pg_settings p USING (name)
 WHERE (p.setting, p.boot_val, p.unit, p.context, p.short_desc) IS DISTINCT FROM
       (s.setting, s.default_value, s.unit, s.context, s.description);
SELECT count(*) AS settings FROM pg_settings WHERE name LIKE 'cscopilot.%';

-- cs.setting reads the session's value, in the base unit
SET cscopilot.challenger_share = 0.25;
SET cscopilot.outcome_horizon = 30;
SELECT cs.setting('cscopilot.challenger_share') AS share, cs.setting('cscopilot.outcome_horizon') AS horizon,
       cs._challenger_share(), cs._outcome_horizon();
SELECT name, setting FROM cs.settings WHERE setting IS DISTINCT FROM default_value ORDER BY name;
RESET cscopilot.challenger_share;
RESET cscopilot.outcome_horizon;
SELECT cs.setting('cscopilot.retrain_interval') AS retrain_interval, cs.setting('cscopilot.naptime') AS naptime,
       cs._max_attempts();
SELECT cs.setting('cscopilot.no_such_setting');
SELECT cs.setting('work_mem');
