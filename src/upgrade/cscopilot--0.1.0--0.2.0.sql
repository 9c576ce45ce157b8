-- cscopilot 0.1.0 -> 0.2.0.  `make` builds cscopilot--0.1.0--0.2.0.sql from this
-- file followed by src/sql/95_security.sql, so that the roles, privileges,
-- row-level security and dump registrations cover every object this upgrade
-- adds.  Add here, in order, what changed in src/sql/ since 0.1.0 (new
-- objects, CREATE OR REPLACE of changed functions, ALTER TABLE); the upgrade
-- test (sql/upgrade.sql) compares the result with a fresh install and lists
-- what is missing.

\echo Use "ALTER EXTENSION cscopilot UPDATE TO '0.2.0'" to load this file. \quit
