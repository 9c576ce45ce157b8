-- Least privilege, row-level security and dump support, applied by loops over
-- the catalog so that every table, view and function of schema cs is covered,
-- whichever file created it.  This file runs last of the re-runnable files, at
-- CREATE EXTENSION (only the shipped rows of src/sql/setup/ come after it) and
-- at the end of every upgrade script, so it must stay re-runnable: CREATE OR
-- REPLACE, IF NOT EXISTS, DROP POLICY IF EXISTS.
--
-- Roles are cluster-wide and not members of the extension: DROP EXTENSION
-- leaves cscopilot_viewer, cscopilot_csm and cscopilot_admin in place (their
-- privileges on the dropped objects go with the objects), and a later CREATE
-- EXTENSION, in this or another database, reuses them.  Remove them with
-- DROP ROLE once no database uses the extension.

------------------------------------------------------------------------------
-- Group roles
------------------------------------------------------------------------------

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['cscopilot_viewer', 'cscopilot_csm', 'cscopilot_admin'] LOOP
        IF to_regrole(r) IS NULL THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    -- Each role has the rights of the one before: admin > csm > viewer.
    IF NOT pg_has_role('cscopilot_csm', 'cscopilot_viewer', 'MEMBER') THEN
        GRANT cscopilot_viewer TO cscopilot_csm;
    END IF;
    IF NOT pg_has_role('cscopilot_admin', 'cscopilot_csm', 'MEMBER') THEN
        GRANT cscopilot_csm TO cscopilot_admin;
    END IF;
END;
$$;

-- True when the current user is a member of cscopilot_admin (or a superuser).
CREATE OR REPLACE FUNCTION cs.is_admin() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
SELECT coalesce(pg_has_role(current_user, to_regrole('cscopilot_admin'), 'MEMBER'), false)
$$;
COMMENT ON FUNCTION cs.is_admin() IS
    'True when the current user is a member of cscopilot_admin or a superuser: row-level security then shows every customer.';

-- The role names the current user is a member of (itself included): the
-- values of csm it may see.  The row policies of cs.customers and of every
-- customer-scoped table call it without a subquery (Citus refuses subqueries
-- in policies of distributed tables); it has no SET clause and qualified names so that the planner
-- inlines it, and its ARRAY(SELECT ...) then runs once per query (an
-- InitPlan over the local catalog), not once per row.
CREATE OR REPLACE FUNCTION cs.member_roles() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles r
              WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') ORDER BY 1)
$$;
COMMENT ON FUNCTION cs.member_roles() IS
    'Role names the current user is a member of, itself included: a CSM sees the customers whose csm is one of them (a team lead who is a member of the team''s roles sees the team).';

-- True when the current user may see the customer (RLS of cs.customers decides).
CREATE OR REPLACE FUNCTION cs.visible_customer(customer_id uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
SELECT EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = visible_customer.customer_id)
$$;
COMMENT ON FUNCTION cs.visible_customer(uuid) IS
    'True when the current user may see the customer: an admin always, a CSM when the customer''s csm is the CSM or a role the CSM is a member of.';

-- The user the alert lifecycle functions act for.  They are SECURITY DEFINER,
-- so current_user inside them is their owner; the caller is the role of SET
-- ROLE, else the session user (a SECURITY DEFINER function cannot SET ROLE, so
-- nothing between the session and the call can change it).  A call made from
-- inside someone else's SECURITY DEFINER function acts for the session's user,
-- not for that function's owner.
CREATE OR REPLACE FUNCTION cs.acting_user() RETURNS name
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
SELECT CASE WHEN current_setting('role') = 'none' THEN session_user ELSE current_setting('role')::name END
$$;
COMMENT ON FUNCTION cs.acting_user() IS
    'The user the alert lifecycle, feedback and action functions act for and record: the role set by SET ROLE, else the session user.';

-- The rule of the row-level security policies, for a given user: an admin
-- sees every customer, anybody else the customers whose csm is a role they are
-- a member of; no customer (model and data alerts) is admin only.  Called by
-- the SECURITY DEFINER functions, which run as the owner and so bypass RLS.
-- (PL/pgSQL, called with values: on a Citus cluster its lookup is a query of
-- one customer, which Citus routes to its shard; it must not be called inside
-- a query of a distributed table, which would nest a distributed query)
CREATE OR REPLACE FUNCTION cs._user_sees_customer(who name, customer_id uuid) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    owner text;
BEGIN
    IF coalesce(pg_has_role(who, to_regrole('cscopilot_admin'), 'MEMBER'), false) THEN
        RETURN true;
    END IF;
    IF customer_id IS NULL THEN
        RETURN false;
    END IF;
    SELECT c.csm INTO owner FROM cs.customers c WHERE c.id = _user_sees_customer.customer_id;
    RETURN coalesce(pg_has_role(who, to_regrole(owner), 'MEMBER'), false);
END;
$$;
COMMENT ON FUNCTION cs._user_sees_customer(name, uuid) IS
    'Internal: true when the user may see the customer under the row-level security rule (an admin always; a CSM when the customer''s csm is a role they are a member of; a NULL customer admins only).';

-- Refuses a caller who is not a CSM (or admin): the lifecycle, feedback and
-- action functions write as their owner, so they check the role themselves.
-- VOLATILE: on a cluster it changes the transaction's settings.
CREATE OR REPLACE FUNCTION cs._require_csm(what text) RETURNS name
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    who name := cs.acting_user();
BEGIN
    -- every CSM write starts here: on a Citus cluster its reads and writes
    -- then share one connection per node, as writes of the reference tables
    -- (model and data alerts, the outbox) after a read of the shards require
    PERFORM cs._one_connection_per_node();
    IF NOT coalesce(pg_has_role(who, to_regrole('cscopilot_csm'), 'MEMBER'), false) THEN
        RAISE EXCEPTION 'permission denied to %', what
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Role "%s" is not a member of cscopilot_csm.', who),
                  HINT = 'CSMs and admins work alerts; an admin can run SELECT cs.grant_role(''csm'', ...).';
    END IF;
    RETURN who;
END;
$$;
COMMENT ON FUNCTION cs._require_csm(text) IS
    'Internal: returns cs.acting_user() when it is a member of cscopilot_csm (admins are), raises insufficient_privilege naming the refused action otherwise; on a Citus cluster also makes the rest of the transaction use one connection per node.';

-- Grants one of the three group roles to a user; admins only.
CREATE OR REPLACE FUNCTION cs.grant_role(role text, member text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF role IS NULL OR member IS NULL THEN
        RAISE EXCEPTION 'role and member must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF role NOT IN ('viewer', 'csm', 'admin', 'cscopilot_viewer', 'cscopilot_csm', 'cscopilot_admin') THEN
        RAISE EXCEPTION 'unknown cscopilot role "%"', role
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The roles are viewer, csm and admin.';
    END IF;
    IF to_regrole(member) IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', member
            USING ERRCODE = 'undefined_object', HINT = 'CREATE ROLE it first (LOGIN for a person).';
    END IF;
    IF NOT cs.is_admin() THEN
        RAISE EXCEPTION 'only cscopilot_admin members may grant cscopilot roles'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('GRANT %I TO %I', CASE WHEN role LIKE 'cscopilot\_%' THEN role ELSE 'cscopilot_' || role END, member);
END;
$$;
COMMENT ON FUNCTION cs.grant_role(text, text) IS
    'Makes member a cscopilot viewer, csm or admin (GRANT cscopilot_<role> TO member); the caller needs the right to grant that role (superuser, CREATEROLE or ADMIN OPTION).';

------------------------------------------------------------------------------
-- Privileges: nothing to PUBLIC; viewer reads, csm works alerts, admin all
------------------------------------------------------------------------------

-- Functions a viewer or CSM may not call: they change configuration, rescore,
-- load or delete data, run SQL text, or are the internals of the SECURITY
-- DEFINER functions (_alert_transition would apply any transition).  Every
-- other function is executable by viewers; table privileges and row-level
-- security bound what it can do, except for the SECURITY DEFINER functions of
-- cs.csm_functions(), which check the caller themselves.
CREATE OR REPLACE FUNCTION cs.admin_only_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY['refresh', 'refresh_all', 'refresh_batch', 'refresh_opportunities', '_refresh_customers',
             '_refresh_health_populations', 'compute_health', 'backfill_health', '_score_risk', 'evaluate_alerts',
             'measure_action_outcomes', 'train_model', 'load_model', 'load_model_file', 'deploy_model',
             'build_training_set', 'purge_customer', 'generate_demo_data', 'drop_demo_data',
             'ensure_usage_partitions', 'wake_worker', 'grant_role', '_run_job', '_start_due_job',
             '_record_failure', '_customer_failed', '_close_interrupted_runs', '_job_due',
             '_alert_transition', '_log_alert_events', '_raise_alerts', '_resolve_alerts',
             '_user_sees_customer', '_refresh_text_signals',
             '_refresh_opportunity_stats', '_refresh_lock', '_store_features', '_refresh_statistics',
             '_settle_marks', '_score_opportunities', '_mark_dirty', '_next_stamp_after', '_exec_kept_plan',
             '_existing_customers', '_require_customers',
             -- tasks, outbox and digest (src/sql/73_tasks.sql, 77_outbox.sql, 78_digest.sql)
             '_task_alerts', '_task_for', '_task_assignee', '_outbox_alerts', 'outbox_claim', 'outbox_ack',
             'outbox_purge', 'enqueue_digest', '_check_health_profile',
             -- usage metrics (src/sql/12_usage_metrics.sql)
             'propose_metrics', '_feature_layout',
             -- the libxgboost oracle of the custom-model tests (src/sql/31_custom_models.sql)
             '_xgboost_predict',
             -- training on the user's own history (src/sql/39_training.sql)
             'train_from_history', '_check_applicability', 'check_model_applicability',
             -- schema drift of data sources (src/sql/84_source_fields.sql)
             'accept_source_fields',
             -- global explanations (src/sql/37_trust.sql)
             'compute_global_explanations',
             -- history partitions and retention (src/sql/61_history.sql)
             'ensure_history_partitions', 'apply_retention',
             -- Citus (src/sql/92_distribute.sql)
             'distribute', '_refresh_distributed', '_raise_alerts_each', '_enqueue_alert', '_copy_customer_rows',
             -- survival training rows (src/sql/36_survival.sql)
             'build_survival_set']
$$;
COMMENT ON FUNCTION cs.admin_only_functions() IS
    'Names of the functions of cs only cscopilot_admin may execute; every other function is executable by cscopilot_viewer and above.';

-- Tables of cs that only admins (and the owner) may read: internal caches of
-- derived data, which the functions that use them read only when the caller
-- may (cs.compute_features computes every text for viewers and CSMs).
CREATE OR REPLACE FUNCTION cs.internal_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY['text_signals',
             -- messages about every customer, for the senders (src/sql/77_outbox.sql)
             'outbox']
$$;
COMMENT ON FUNCTION cs.internal_tables() IS
    'Names of the internal tables of cs (caches of derived data) that cscopilot_viewer and cscopilot_csm may not read; every other table and view is readable by viewers.';

-- What a CSM may write besides reading: nothing directly.  Alert lifecycle,
-- feedback and actions go through these SECURITY DEFINER functions, which
-- enforce the transition rules, check that the caller is a CSM who may see the
-- alert's customer, and record the caller as actor; direct writes would let a
-- CSM skip the rules, forge the event log (actor, time, event), or invent
-- action outcomes that cs.rank_playbooks learns from.
CREATE OR REPLACE FUNCTION cs.csm_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY['acknowledge_alert', 'resolve_alert', 'dismiss_alert', 'snooze_alert', 'reassign_alert',
             'record_action', 'record_feedback',
             -- tasks (src/sql/73_tasks.sql)
             'create_task', 'assign_task', 'complete_task', 'reopen_task',
             -- the CSM's own work (src/sql/74_workspace.sql)
             'log_engagement', 'move_opportunity', 'record_customer_action']
$$;
COMMENT ON FUNCTION cs.csm_functions() IS
    'Names of the SECURITY DEFINER functions through which cscopilot_csm members work alerts, record actions, give feedback, work tasks, log engagements and move opportunities; CSMs have no direct write privilege on any table.';

------------------------------------------------------------------------------
-- Row-level security
------------------------------------------------------------------------------
-- An admin sees every row, anybody else the rows of the customers whose csm
-- is a role they are a member of.  cs.customers has the csm itself; every
-- other table with a customer_id column carries a copy of its customer's csm
-- (src/sql/93_csm.sql keeps it right), so every policy is the same predicate
-- on the row itself: no subquery and no function that reads a table, which
-- Citus refuses in the policies of distributed tables, and a CSM's scan needs
-- no join or hashed subplan.  Rows without a customer (model and data alerts,
-- their events and feedback; purged customers) have a NULL csm: admins only.
-- A table with a customer_id but no csm column (a mistake) gets "false":
-- admins only, never everyone.  Admins have a policy of their own, USING
-- (true): permissive policies are OR-ed, so for an admin the planner folds the
-- predicate away.
-- Table owners (the superuser who created the extension, and so the
-- background workers) are not subject to these policies.

CREATE OR REPLACE FUNCTION cs.rls_predicate(rel regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = 'csm'
                        AND NOT a.attisdropped)
             AND (rel = 'cs.customers'::regclass
                  OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = 'customer_id'
                                AND NOT a.attisdropped)) THEN
            'csm = ANY (cs.member_roles())'
        WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = rel AND a.attname IN ('customer_id', 'alert_id')
                        AND NOT a.attisdropped) THEN
            'false'
        END;
$$;
COMMENT ON FUNCTION cs.rls_predicate(regclass) IS
    'The row-level security predicate of a table of cs for users who are not admins: csm = ANY (cs.member_roles()) for cs.customers and every table with customer_id and csm columns, false (admins only) for a table with customer_id or alert_id but no csm; NULL for tables that are not customer-scoped.';

DO $$
DECLARE
    t record;
    pred text;
BEGIN
    FOR t IN SELECT c.oid::regclass AS rel
               FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
              ORDER BY c.relname
    LOOP
        pred := cs.rls_predicate(t.rel);
        CONTINUE WHEN pred IS NULL;
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t.rel);
        EXECUTE format('DROP POLICY IF EXISTS customer_scope ON %s', t.rel);
        EXECUTE format('DROP POLICY IF EXISTS admin_all ON %s', t.rel);
        EXECUTE format('CREATE POLICY customer_scope ON %s USING (%s) WITH CHECK (%s)', t.rel, pred, pred);
        EXECUTE format('COMMENT ON POLICY customer_scope ON %s IS %L', t.rel,
                       'Rows of customers whose csm is a role the user is a member of.');
        EXECUTE format('CREATE POLICY admin_all ON %s TO cscopilot_admin USING (true) WITH CHECK (true)', t.rel);
        EXECUTE format('COMMENT ON POLICY admin_all ON %s IS %L', t.rel,
                       'Members of cscopilot_admin see and change every row.');
    END LOOP;

    -- Views read with the privileges and policies of the user, not of their owner.
    FOR t IN SELECT c.oid::regclass AS rel FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind = 'v'
    LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', t.rel);
    END LOOP;
END;
$$;

-- Alerts without a customer (cs.system_alerts and their events, src/sql/schema/62_system_alerts.sql):
-- admins only, as the model and data alerts were when cs.alerts held them.
-- Viewers keep SELECT (views such as cs.all_alerts and cs.metrics_alerts read
-- the tables with the user's rights) and see no row: row-level security with
-- a policy for admins alone (the loop above gives system_alert_events, which
-- has alert_id, a customer_scope policy: dropped here).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['cs.system_alerts', 'cs.system_alert_events'] LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS customer_scope ON %s', t);
        EXECUTE format('DROP POLICY IF EXISTS admin_all ON %s', t);
        EXECUTE format('CREATE POLICY admin_all ON %s TO cscopilot_admin USING (true) WITH CHECK (true)', t);
        EXECUTE format('COMMENT ON POLICY admin_all ON %s IS %L', t,
                       'Alerts without a customer: members of cscopilot_admin alone see and change them.');
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- pg_dump: every table of the extension keeps its rows
------------------------------------------------------------------------------
-- pg_dump omits the rows of extension tables unless they are registered with
-- pg_extension_config_dump.  Every table and sequence of cs is, whole, except:
--   cs.dirty_customers: restoring the signal tables fires the load triggers,
--     which mark every restored customer dirty again; the dumped queue would
--     collide with those marks (so a restored database rescores everything).
--   cs._shipped_rows: it describes what CREATE EXTENSION shipped in this
--     database and is recomputed by the CREATE EXTENSION of the restore.
-- Rows the install script ships (feature catalog, health profiles, alert rules,
-- playbooks, the churn model) are dumped too, edits included.  The restore's
-- CREATE EXTENSION inserts the shipped rows again before the data comes back,
-- so cs._replace_shipped_rows, a statement trigger on every table, empties a
-- table that still holds exactly the shipped rows when pg_restore (or psql on
-- a plain dump, both run with row_security off) COPYs into it.

CREATE TABLE IF NOT EXISTS cs._shipped_rows (
    tab    text NOT NULL,
    digest text NOT NULL
);
COMMENT ON TABLE cs._shipped_rows IS
    'Digest of every row CREATE EXTENSION inserted into a table of cs; a restore replaces a table whose rows are still exactly these.';
COMMENT ON COLUMN cs._shipped_rows.tab IS 'Table name in schema cs.';
COMMENT ON COLUMN cs._shipped_rows.digest IS 'md5 of the row as jsonb.';

CREATE OR REPLACE FUNCTION cs._replace_shipped_rows() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    differs boolean;
BEGIN
    -- Cheap exits first: this runs before every INSERT and COPY statement,
    -- and on a Citus cluster on every shard (<table>_<shard id>), which a
    -- restore never writes directly.
    IF current_setting('row_security') <> 'off' OR current_query() !~* '^\s*copy\s'
       OR TG_TABLE_NAME ~ '_[0-9]+$' THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cs._shipped_rows s WHERE s.tab = TG_TABLE_NAME) THEN
        RETURN NULL;
    END IF;
    EXECUTE format($q$
        SELECT EXISTS (
            (SELECT md5(to_jsonb(t)::text) FROM cs.%1$I t EXCEPT ALL
             SELECT s.digest FROM cs._shipped_rows s WHERE s.tab = %2$L)
            UNION ALL
            (SELECT s.digest FROM cs._shipped_rows s WHERE s.tab = %2$L EXCEPT ALL
             SELECT md5(to_jsonb(t)::text) FROM cs.%1$I t))$q$, TG_TABLE_NAME, TG_TABLE_NAME) INTO differs;
    IF NOT differs THEN
        EXECUTE format('DELETE FROM cs.%I', TG_TABLE_NAME);
        DELETE FROM cs._shipped_rows s WHERE s.tab = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION cs._replace_shipped_rows() IS
    'Statement trigger: when a restore COPYs rows into a table that holds exactly the rows CREATE EXTENSION shipped, removes those first, so the dumped rows (edits included) replace them.';

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT c.oid::regclass AS rel, c.relname, c.relkind, c.relispartition
               FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p', 'S')
                AND c.relname NOT IN ('dirty_customers', '_shipped_rows')
                AND EXISTS (SELECT 1 FROM pg_depend d
                             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
                               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'cscopilot'))
              ORDER BY c.relname
    LOOP
        IF t.relkind <> 'p' THEN
            PERFORM pg_catalog.pg_extension_config_dump(t.rel, '');
        END IF;
        IF t.relkind = 'r' AND NOT t.relispartition THEN
            EXECUTE format('DROP TRIGGER IF EXISTS replace_shipped_rows ON %s', t.rel);
            EXECUTE format('CREATE TRIGGER replace_shipped_rows BEFORE INSERT ON %s
                            FOR EACH STATEMENT EXECUTE FUNCTION cs._replace_shipped_rows()', t.rel);
            EXECUTE format('COMMENT ON TRIGGER replace_shipped_rows ON %s IS %L', t.rel,
                           'Lets a restore replace the rows CREATE EXTENSION shipped with the dumped ones.');
        END IF;
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- Grants, last: they cover every object above and in the earlier files
------------------------------------------------------------------------------

DO $$
DECLARE
    o record;
BEGIN
    REVOKE ALL ON SCHEMA cs FROM PUBLIC;
    GRANT USAGE ON SCHEMA cs TO cscopilot_viewer;

    FOR o IN SELECT c.oid::regclass AS rel, c.relkind, c.relname = ANY (cs.internal_tables()) AS internal
               FROM pg_class c
              WHERE c.relnamespace = 'cs'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    LOOP
        -- Partitions are read and written through their parent, whose privileges
        -- and policies apply; nobody but their owner may address them directly.
        IF o.relkind = 'r' AND (SELECT c.relispartition FROM pg_class c WHERE c.oid = o.rel) THEN
            EXECUTE format('REVOKE ALL ON %s FROM PUBLIC, cscopilot_viewer, cscopilot_csm, cscopilot_admin', o.rel);
            CONTINUE;
        END IF;
        -- CSMs and viewers hold no privilege of their own (and none left from an
        -- older version: table-level REVOKE ALL also revokes column privileges).
        EXECUTE format('REVOKE ALL ON %s FROM PUBLIC, cscopilot_viewer, cscopilot_csm', o.rel);
        IF o.relkind = 'S' THEN
            EXECUTE format('GRANT SELECT ON SEQUENCE %s TO cscopilot_viewer', o.rel);
            EXECUTE format('GRANT SELECT, USAGE, UPDATE ON SEQUENCE %s TO cscopilot_admin', o.rel);
        ELSE
            IF NOT o.internal THEN
                EXECUTE format('GRANT SELECT ON %s TO cscopilot_viewer', o.rel);
            END IF;
            IF o.relkind IN ('r', 'p', 'f') THEN
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON %s TO cscopilot_admin', o.rel);
            ELSE
                EXECUTE format('GRANT SELECT ON %s TO cscopilot_admin', o.rel);
            END IF;
        END IF;
    END LOOP;


    FOR o IN SELECT p.oid::regprocedure AS fn, p.proname
               FROM pg_proc p WHERE p.pronamespace = 'cs'::regnamespace
    LOOP
        EXECUTE format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', o.fn);
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO cscopilot_admin', o.fn);
        IF o.proname = ANY (cs.admin_only_functions()) THEN
            EXECUTE format('REVOKE ALL ON ROUTINE %s FROM cscopilot_viewer', o.fn);
        ELSE
            EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO cscopilot_viewer', o.fn);
        END IF;
    END LOOP;

    FOR o IN SELECT t.oid::regtype AS typ
               FROM pg_type t
              WHERE t.typnamespace = 'cs'::regnamespace AND t.typtype IN ('d', 'e', 'r', 'm')
    LOOP
        EXECUTE format('REVOKE ALL ON TYPE %s FROM PUBLIC', o.typ);
        EXECUTE format('GRANT USAGE ON TYPE %s TO cscopilot_viewer', o.typ);
    END LOOP;
END;
$$;
