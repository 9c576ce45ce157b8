-- Remembers the rows this CREATE EXTENSION shipped (every table of cs that has
-- rows now: feature catalog, health profiles, alert rules, playbooks, the churn
-- model, ...), so that restoring a dump can replace them with the dumped rows
-- (cs._replace_shipped_rows in 95_security.sql).  Install only: upgrade
-- scripts do not run this file, since the rows of an existing database are
-- no longer what was shipped.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind = 'r' AND NOT c.relispartition
                AND c.relname <> '_shipped_rows'
              ORDER BY c.relname
    LOOP
        EXECUTE format('INSERT INTO cs._shipped_rows (tab, digest) SELECT %L, md5(to_jsonb(t)::text) FROM cs.%I t',
                       t.relname, t.relname);
    END LOOP;
END;
$$;
