-- Settings: the cscopilot.* GUCs are defined in C from one table (src/settings.c),
-- and SQL reads them only through cs.setting(), which takes its values, and
-- defaults, from that table.

CREATE OR REPLACE FUNCTION cs.setting(name text) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_setting' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.setting(text) IS
    'The current value of a cscopilot.* setting as text, in its base unit (seconds or milliseconds, as pg_settings.setting); an unknown name is an error (undefined_object).';

CREATE OR REPLACE FUNCTION cs._settings()
RETURNS TABLE (name text, setting text, default_value text, unit text, context text, description text)
    AS 'MODULE_PATHNAME', 'cs_settings' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._settings() IS 'Internal: the rows of cs.settings.';

CREATE OR REPLACE VIEW cs.settings AS
SELECT s.name, s.setting, s.default_value, s.unit, s.context, s.description FROM cs._settings() s;
COMMENT ON VIEW cs.settings IS 'Every cscopilot.* setting with its current value and default (in its base unit), and when a change takes effect: user (at once, per session) or sighup (on reload).';
COMMENT ON COLUMN cs.settings.name IS 'Setting name (cscopilot.*).';
COMMENT ON COLUMN cs.settings.setting IS 'Current value in this session, in the base unit.';
COMMENT ON COLUMN cs.settings.default_value IS 'Value when nothing sets it, in the base unit.';
COMMENT ON COLUMN cs.settings.unit IS 'Unit of setting and default_value: s, ms, or NULL when unitless.';
COMMENT ON COLUMN cs.settings.context IS 'Who may change it and when it takes effect: user (SET, at once) or sighup (server configuration, on reload).';
COMMENT ON COLUMN cs.settings.description IS 'What the setting does.';
