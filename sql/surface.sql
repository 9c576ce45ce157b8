-- The public surface of the extension: every object it owns, with its kind,
-- its signature or definition summary, and who may use it.  An object added,
-- dropped, renamed, re-typed or re-granted shows up in the diff of this test's
-- output, so every change of the surface is a deliberate one.  (The owner's
-- own privileges and the grantor are left out: they name whoever installed
-- the extension.)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET client_min_messages = notice;

-- Privileges of an ACL other than the owner's, as grantee=privileges, sorted;
-- PUBLIC shows as "public".  NULL (the default: owner only) is "owner only".
CREATE FUNCTION pg_temp.grants(acl aclitem[], owner oid) RETURNS text
LANGUAGE sql STABLE
RETURN coalesce((SELECT string_agg(g, ' ' ORDER BY g)
                   FROM (SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END
                                || '=' || string_agg(a.privilege_type, ',' ORDER BY a.privilege_type) AS g
                           FROM aclexplode(acl) a
                          WHERE a.grantee <> owner
                          GROUP BY a.grantee) x),
                CASE WHEN acl IS NULL THEN 'default' ELSE 'owner only' END);

-- Relations: tables, partitioned tables, views, sequences (partitions of
-- cs.usage_events other than the default one come and go with the months).
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                      WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' ELSE c.relkind::text END AS kind,
       c.relname AS name,
       CASE WHEN c.relrowsecurity THEN 'rls' ELSE '' END AS rls,
       pg_temp.grants(c.relacl, c.relowner) AS grants
  FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
   AND NOT c.relispartition
UNION ALL
SELECT 'partition', c.relname, '', pg_temp.grants(c.relacl, c.relowner)
  FROM pg_class c
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relispartition AND c.relname = 'usage_events_default'
 ORDER BY 1, 2;

-- Columns of views, with their types: what BI tools read.
SELECT c.relname AS view, a.attnum AS n, a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind = 'v'
 ORDER BY 1, 2;

-- Functions, procedures and aggregates: signature, result, volatility,
-- parallel safety, security definer, and who may execute them.
SELECT CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                      WHEN 'w' THEN 'window' END AS kind,
       p.oid::regprocedure::text AS signature,
       pg_get_function_result(p.oid) AS result,
       CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END
       || CASE p.proparallel WHEN 's' THEN ' parallel safe' WHEN 'r' THEN ' parallel restricted' ELSE '' END
       || CASE WHEN p.prosecdef THEN ' security definer' ELSE '' END AS attributes,
       pg_temp.grants(p.proacl, p.proowner) AS grants
  FROM pg_proc p
 WHERE p.pronamespace = 'cs'::regnamespace
 ORDER BY 2;

-- Types of the extension's own (composite types of tables and views left out).
SELECT t.typname AS type, t.typtype AS kind, pg_temp.grants(t.typacl, t.typowner) AS grants
  FROM pg_type t
 WHERE t.typnamespace = 'cs'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
   AND t.typelem = 0
 ORDER BY 1;

-- Row-level security policies: table, name, command, roles.
SELECT c.relname AS table_name, p.polname AS policy, p.polcmd AS command,
       p.polroles::regrole[]::text AS roles
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = 'cs'::regnamespace
 ORDER BY 1, 2;

-- Every object is a member of the extension (nothing created outside it).
SELECT count(*) AS not_members
  FROM (SELECT 'pg_class'::regclass AS classid, c.oid AS objid FROM pg_class c
         WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT c.relispartition
        UNION ALL
        SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p WHERE p.pronamespace = 'cs'::regnamespace) o
 WHERE NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'e'
                      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'cscopilot'));

-- Roles the extension creates and their membership.
SELECT r.rolname AS role, r.rolcanlogin AS can_login,
       coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname)
                   FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                  WHERE m.member = r.oid AND g.rolname LIKE 'cscopilot%'), '') AS member_of
  FROM pg_roles r
 WHERE r.rolname LIKE 'cscopilot\_%'
 ORDER BY 1;
